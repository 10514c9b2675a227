/*
 * u64map.c - counts by 64-bit key: open addressing with linear probing
 * and backward-shift deletion, grown at three quarters full.
 */
#include "common/u64map.h"

#include "common/common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct slot {
	uint64_t ino;   /* 0: empty */
	uint64_t count;
};

struct u64map {
	pthread_mutex_t lock;
	struct slot *slots;
	uint64_t cap;   /* a power of two */
	uint64_t used;
};

static uint64_t hash(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static struct slot *find(struct u64map *n, uint64_t ino)
{
	uint64_t mask = n->cap - 1;

	for (uint64_t i = hash(ino) & mask, probes = 0; probes < n->cap; i = (i + 1) & mask, probes++) {
		if (n->slots[i].ino == ino || n->slots[i].ino == 0)
			return &n->slots[i];
	}
	return NULL; /* cannot happen below 3/4 full */
}

static int grow(struct u64map *n)
{
	struct slot *old = n->slots;
	uint64_t old_cap = n->cap;

	n->slots = calloc(old_cap * 2, sizeof(*n->slots));
	if (n->slots == NULL) {
		n->slots = old;
		return -ENOMEM;
	}
	n->cap = old_cap * 2;
	for (uint64_t i = 0; i < old_cap; i++)
		if (old[i].ino != 0)
			*find(n, old[i].ino) = old[i];
	free(old);
	return 0;
}

static void remove_at(struct u64map *n, struct slot *s)
{
	uint64_t mask = n->cap - 1;
	uint64_t i = (uint64_t)(s - n->slots), j = i;

	n->slots[i].ino = 0;
	n->used--;
	for (;;) {
		uint64_t home;

		j = (j + 1) & mask;
		if (n->slots[j].ino == 0)
			return;
		home = hash(n->slots[j].ino) & mask;
		/* move j back to i unless its home lies cyclically in (i, j] */
		if ((i <= j) ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		n->slots[i] = n->slots[j];
		n->slots[j].ino = 0;
		i = j;
	}
}

int u64map_create(struct u64map **out)
{
	struct u64map *n = calloc(1, sizeof(*n));

	*out = NULL;
	if (n == NULL)
		return -ENOMEM;
	n->cap = 1024;
	n->slots = calloc(n->cap, sizeof(*n->slots));
	if (n->slots == NULL) {
		free(n);
		return -ENOMEM;
	}
	pthread_mutex_init(&n->lock, NULL);
	*out = n;
	return 0;
}

void u64map_destroy(struct u64map *n)
{
	if (n == NULL)
		return;
	pthread_mutex_destroy(&n->lock);
	free(n->slots);
	free(n);
}

int u64map_add(struct u64map *n, uint64_t ino)
{
	struct slot *s;
	int ret = 0;

	if (ino == 0)
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	if ((n->used + 1) * 4 > n->cap * 3)
		ret = grow(n);
	if (ret == 0) {
		s = find(n, ino);
		if (s->ino == 0) {
			s->ino = ino;
			s->count = 0;
			n->used++;
		}
		s->count++;
	}
	pthread_mutex_unlock(&n->lock);
	return ret;
}

int u64map_sub(struct u64map *n, uint64_t ino, uint64_t count)
{
	struct slot *s;
	int ret = 0;

	pthread_mutex_lock(&n->lock);
	s = find(n, ino);
	if (s == NULL || s->ino == 0) {
		ret = -ENOENT;
	} else if (s->count < count) {
		ret = -ERANGE;
		remove_at(n, s);
	} else {
		s->count -= count;
		if (s->count == 0)
			remove_at(n, s);
	}
	pthread_mutex_unlock(&n->lock);
	return ret;
}

uint64_t u64map_get(struct u64map *n, uint64_t ino)
{
	struct slot *s;
	uint64_t c = 0;

	pthread_mutex_lock(&n->lock);
	s = find(n, ino);
	if (s != NULL && s->ino == ino)
		c = s->count;
	pthread_mutex_unlock(&n->lock);
	return c;
}

uint64_t u64map_size(struct u64map *n)
{
	uint64_t v;

	pthread_mutex_lock(&n->lock);
	v = n->used;
	pthread_mutex_unlock(&n->lock);
	return v;
}

uint64_t u64map_keys(struct u64map *m, uint64_t *out, uint64_t max)
{
	uint64_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (uint64_t i = 0; i < m->cap && n < max; i++)
		if (m->slots[i].ino != 0)
			out[n++] = m->slots[i].ino;
	pthread_mutex_unlock(&m->lock);
	return n;
}
