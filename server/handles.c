/*
 * handles.c - the open files of every mount (see handles.h): an open
 * addressing table keyed by (rid, fh), with tombstones, rehashed past 70%
 * used or dead; and two count maps, handles per mount and per inode.
 */
#include "server/handles.h"

#include "common/u64map.h"
#include "server/limits.h"

#include <errno.h>
#include <stdlib.h>

enum { H_EMPTY, H_USED, H_TOMB };

struct hent {
	uint64_t rid, fh, ino;
	uint8_t state;
	bool writer;
};

struct handles {
	struct hent *tab;
	uint32_t cap, used, tombs;
	struct u64map *per_rid;  /* rid -> handles */
	struct u64map *per_ino;  /* ino -> handles */
};

static uint32_t hash(uint64_t rid, uint64_t fh, uint32_t cap)
{
	uint64_t x = (rid * 0x9e3779b97f4a7c15ull) ^ (fh * 0xc2b2ae3d27d4eb4full);

	return (uint32_t)((x ^ (x >> 29)) & (cap - 1));
}

int handles_create(struct handles **out)
{
	struct handles *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (h == NULL)
		return -ENOMEM;
	h->cap = 256;
	h->tab = calloc(h->cap, sizeof(*h->tab));
	if (h->tab == NULL || u64map_create(&h->per_rid) < 0 || u64map_create(&h->per_ino) < 0) {
		handles_destroy(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

void handles_destroy(struct handles *h)
{
	if (h == NULL)
		return;
	u64map_destroy(h->per_rid);
	u64map_destroy(h->per_ino);
	free(h->tab);
	free(h);
}

static struct hent *find(const struct handles *h, uint64_t rid, uint64_t fh)
{
	for (uint32_t i = hash(rid, fh, h->cap), n = 0; n < h->cap; i = (i + 1) & (h->cap - 1), n++) {
		struct hent *e = &h->tab[i];

		if (e->state == H_EMPTY)
			return NULL;
		if (e->state == H_USED && e->rid == rid && e->fh == fh)
			return e;
	}
	return NULL;
}

static int rehash(struct handles *h, uint32_t cap)
{
	struct hent *tab = calloc(cap, sizeof(*tab));

	if (tab == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < h->cap; i++) {
		uint32_t j;

		if (h->tab[i].state != H_USED)
			continue;
		for (j = hash(h->tab[i].rid, h->tab[i].fh, cap); tab[j].state != H_EMPTY;
		     j = (j + 1) & (cap - 1))
			;
		tab[j] = h->tab[i];
	}
	free(h->tab);
	h->tab = tab;
	h->cap = cap;
	h->tombs = 0;
	return 0;
}

int handles_open(struct handles *h, uint64_t rid, uint64_t fh, uint64_t ino, bool writer)
{
	struct hent *e = find(h, rid, fh);
	uint32_t i;

	if (e != NULL)
		return e->ino == ino ? 0 : -EBADF;
	if (u64map_get(h->per_rid, rid) >= FS_HANDLES_PER_CONN_MAX)
		return -EMFILE;
	if ((uint64_t)(h->used + h->tombs + 1) * 10 > (uint64_t)h->cap * 7 &&
	    rehash(h, (h->used + 1) * 2 > h->cap / 2 ? h->cap * 2 : h->cap) < 0)
		return -ENOMEM;
	if (u64map_add(h->per_ino, ino) < 0)
		return -ENOMEM;
	if (u64map_add(h->per_rid, rid) < 0) {
		u64map_sub(h->per_ino, ino, 1);
		return -ENOMEM;
	}
	for (i = hash(rid, fh, h->cap); h->tab[i].state == H_USED; i = (i + 1) & (h->cap - 1))
		;
	if (h->tab[i].state == H_TOMB)
		h->tombs--;
	h->tab[i] = (struct hent){ .rid = rid, .fh = fh, .ino = ino, .state = H_USED,
				   .writer = writer };
	h->used++;
	return 1;
}

/* Drop e: 1 when it was its inode's last handle. */
static int drop(struct handles *h, struct hent *e)
{
	uint64_t ino = e->ino;

	u64map_sub(h->per_rid, e->rid, 1);
	u64map_sub(h->per_ino, ino, 1);
	*e = (struct hent){ .state = H_TOMB };
	h->used--;
	h->tombs++;
	return u64map_get(h->per_ino, ino) == 0 ? 1 : 0;
}

int handles_close(struct handles *h, uint64_t rid, uint64_t fh, uint64_t ino)
{
	struct hent *e = find(h, rid, fh);

	if (e == NULL || e->ino != ino)
		return 0;
	return drop(h, e);
}

bool handles_writes(const struct handles *h, uint64_t rid, uint64_t fh, uint64_t ino)
{
	const struct hent *e = find(h, rid, fh);

	return e != NULL && e->ino == ino && e->writer;
}

bool handles_ino_open(const struct handles *h, uint64_t ino)
{
	return u64map_get(h->per_ino, ino) > 0;
}

void handles_close_rid(struct handles *h, uint64_t rid, void (*last)(void *arg, uint64_t ino),
		       void *arg)
{
	if (u64map_get(h->per_rid, rid) == 0)
		return;
	for (uint32_t i = 0; i < h->cap; i++) {
		struct hent *e = &h->tab[i];
		uint64_t ino = e->ino;

		if (e->state == H_USED && e->rid == rid && drop(h, e) == 1)
			last(arg, ino);
	}
	if (h->tombs > h->cap / 4)
		rehash(h, h->cap);
}

uint64_t handles_count(const struct handles *h)
{
	return h->used;
}

uint64_t handles_of(const struct handles *h, uint64_t rid)
{
	return u64map_get(h->per_rid, rid);
}
