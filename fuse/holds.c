/*
 * holds.c - the files a mount holds open (see holds.h).
 */
#include "fuse/holds.h"

#include "common/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hold_hash(uint64_t fh, uint32_t cap)
{
	return (uint32_t)((fh * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static struct hold *hold_find(const struct holds *h, uint64_t fh)
{
	for (uint32_t i = hold_hash(fh, h->cap), n = 0; h->cap && n < h->cap;
	     i = (i + 1) & (h->cap - 1), n++) {
		if (h->tab[i].fh == 0)
			return NULL;
		if (h->tab[i].fh == fh && !h->tab[i].dead)
			return &h->tab[i];
	}
	return NULL;
}

/* Rebuild the table with room for twice what it holds, tombstones gone.  0 or -ENOMEM. */
static int holds_grow(struct holds *h)
{
	uint32_t cap = h->cap ? h->cap : 64;
	struct hold *t;

	while ((uint64_t)(h->used + 1) * 2 > cap)
		cap *= 2;
	t = calloc(cap, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < h->cap; i++) {
		uint32_t j;

		if (h->tab[i].fh == 0 || h->tab[i].dead)
			continue;
		for (j = hold_hash(h->tab[i].fh, cap); t[j].fh != 0; j = (j + 1) & (cap - 1))
			;
		t[j] = h->tab[i];
	}
	free(h->tab);
	h->tab = t;
	h->cap = cap;
	h->dead = 0;
	return 0;
}

int holds_note(struct holds *h, uint32_t op, const void *fixed, const void *reply_fixed)
{
	uint64_t fh = 0, ino = 0;
	uint32_t flags = 0;
	struct hold *found;

	if (op == RPC_OPEN) {
		struct rpc_open o;

		memcpy(&o, fixed, sizeof(o));
		fh = le64_to_cpu(o.fh), ino = le64_to_cpu(o.ino), flags = le32_to_cpu(o.flags);
	} else if (op == RPC_CREATE && reply_fixed != NULL) {
		struct rpc_make m;
		struct rpc_created r;

		memcpy(&m, fixed, sizeof(m));
		memcpy(&r, reply_fixed, sizeof(r));
		fh = le64_to_cpu(m.fh), ino = le64_to_cpu(r.entry.attr.ino), flags = le32_to_cpu(m.flags);
	} else if (op == RPC_RELEASE) {
		struct rpc_release rl;

		memcpy(&rl, fixed, sizeof(rl));
		found = hold_find(h, le64_to_cpu(rl.fh));
		if (found != NULL) {
			found->dead = true;
			h->used--;
			h->dead++;
		}
		return 0;
	}
	if (fh == 0 || hold_find(h, fh) != NULL)
		return 0;
	if ((uint64_t)(h->used + h->dead + 1) * 10 > (uint64_t)h->cap * 7 && holds_grow(h) < 0)
		return -ENOMEM;
	for (uint32_t i = hold_hash(fh, h->cap);; i = (i + 1) & (h->cap - 1))
		if (h->tab[i].fh == 0) {
			h->tab[i] = (struct hold){ .fh = fh, .ino = ino, .flags = flags };
			h->used++;
			return 0;
		}
}

uint32_t holds_next(const struct holds *h, uint32_t *cursor, struct rpc_hold *out, uint32_t max)
{
	uint32_t n = 0;

	for (; *cursor < h->cap && n < max; (*cursor)++) {
		const struct hold *x = &h->tab[*cursor];

		if (x->fh != 0 && !x->dead)
			out[n++] = (struct rpc_hold){ .fh = cpu_to_le64(x->fh), .ino = cpu_to_le64(x->ino),
						      .flags = cpu_to_le32(x->flags) };
	}
	return n;
}

void holds_free(struct holds *h)
{
	free(h->tab);
	*h = (struct holds){ 0 };
}
