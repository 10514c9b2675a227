/*
 * coherence.c - grants and the holders a change breaks (see coherence.h).
 *
 * The table maps (kind, ino) to the mounts holding a grant on it, each
 * with its expiry: open addressing with linear probing and tombstones,
 * rehashed when more than 70% of it is used or dead.  A mount's grant on
 * an entry is renewed in place; expired holders are dropped when their
 * entry is looked at and by coh_sweep, a bounded step of the service's
 * loop.
 */
#include "server/coherence.h"

#include "server/service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

enum { SLOT_EMPTY, SLOT_USED, SLOT_TOMB };

/* The third kind of entry, beside RPC_INVAL_INODE and _ENTRY: vouched-for pages. */
enum { COH_PAGES = 3 };

struct holder {
	uint64_t rid;
	mono_ns expiry;
};

struct gent {
	uint8_t state;
	uint8_t kind;
	uint16_t n, cap;   /* holders */
	uint64_t ino;
	struct holder *h;
};

struct coh {
	uint32_t valid_ms;
	struct gent *tab;
	uint32_t cap;      /* a power of two */
	uint32_t used, tombs;
	uint64_t grants;   /* holders over every entry */
	uint32_t sweep_at; /* where coh_sweep goes on */
};

static uint32_t hash(uint32_t kind, uint64_t ino, uint32_t cap)
{
	uint64_t x = (ino ^ ((uint64_t)kind << 61)) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(x >> 32) & (cap - 1);
}

int coh_create(uint32_t valid_ms, struct coh **out)
{
	struct coh *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	c->valid_ms = valid_ms;
	c->cap = 1024;
	c->tab = calloc(c->cap, sizeof(*c->tab));
	if (c->tab == NULL) {
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void coh_destroy(struct coh *c)
{
	if (c == NULL)
		return;
	for (uint32_t i = 0; i < c->cap; i++)
		free(c->tab[i].h);
	free(c->tab);
	free(c);
}

uint32_t coh_valid_ms(const struct coh *c)
{
	return c->valid_ms;
}

uint64_t coh_grants(const struct coh *c)
{
	return c->grants;
}

static struct gent *find(struct coh *c, uint32_t kind, uint64_t ino)
{
	for (uint32_t i = hash(kind, ino, c->cap), n = 0; n < c->cap; i = (i + 1) & (c->cap - 1), n++) {
		struct gent *g = &c->tab[i];

		if (g->state == SLOT_EMPTY)
			return NULL;
		if (g->state == SLOT_USED && g->kind == kind && g->ino == ino)
			return g;
	}
	return NULL;
}

/* Rebuild the table at cap (live entries only).  0 or -ENOMEM (the old one stays). */
static int rehash(struct coh *c, uint32_t cap)
{
	struct gent *tab = calloc(cap, sizeof(*tab));

	if (tab == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->cap; i++) {
		struct gent *g = &c->tab[i];
		uint32_t j;

		if (g->state != SLOT_USED)
			continue;
		for (j = hash(g->kind, g->ino, cap); tab[j].state != SLOT_EMPTY; j = (j + 1) & (cap - 1))
			;
		tab[j] = *g;
	}
	free(c->tab);
	c->tab = tab;
	c->cap = cap;
	c->tombs = 0;
	c->sweep_at = 0;
	return 0;
}

/* The entry for (kind, ino), made when absent.  NULL: no memory. */
static struct gent *get(struct coh *c, uint32_t kind, uint64_t ino)
{
	struct gent *g = find(c, kind, ino);
	uint32_t i;

	if (g != NULL)
		return g;
	if ((uint64_t)(c->used + c->tombs + 1) * 10 > (uint64_t)c->cap * 7 &&
	    rehash(c, c->used * 2 + 2 > c->cap / 2 ? c->cap * 2 : c->cap) < 0)
		return NULL;
	for (i = hash(kind, ino, c->cap); c->tab[i].state == SLOT_USED; i = (i + 1) & (c->cap - 1))
		;
	if (c->tab[i].state == SLOT_TOMB)
		c->tombs--;
	c->tab[i] = (struct gent){ .state = SLOT_USED, .kind = (uint8_t)kind, .ino = ino };
	c->used++;
	return &c->tab[i];
}

static void gent_drop(struct coh *c, struct gent *g)
{
	free(g->h);
	*g = (struct gent){ .state = SLOT_TOMB };
	c->used--;
	c->tombs++;
}

/* Forget g's holders that expired (g itself too when none is left). */
static uint32_t gent_expire(struct coh *c, struct gent *g, mono_ns now)
{
	uint32_t gone = 0;

	for (uint16_t i = 0; i < g->n;) {
		if (g->h[i].expiry > now) {
			i++;
			continue;
		}
		g->h[i] = g->h[--g->n];
		c->grants--;
		gone++;
	}
	if (g->n == 0)
		gent_drop(c, g);
	return gone;
}

/* rid's holder of g, or NULL. */
static struct holder *holder_find(struct gent *g, uint64_t rid)
{
	for (uint16_t i = 0; i < g->n; i++)
		if (g->h[i].rid == rid)
			return &g->h[i];
	return NULL;
}

/* rid holds (kind, ino) until expiry (renewed if it did).  false: no room. */
static bool grant_until(struct coh *c, uint64_t rid, uint32_t kind, uint64_t ino, mono_ns expiry)
{
	struct holder *held;
	struct gent *g;

	if (c->grants >= SVC_GRANTS_MAX || (g = get(c, kind, ino)) == NULL)
		return false;
	if ((held = holder_find(g, rid)) != NULL) {
		held->expiry = expiry;
		return true;
	}
	if (g->n == g->cap) {
		uint16_t cap = g->cap ? (uint16_t)(g->cap * 2) : 2;
		struct holder *h = g->cap < 32768 ? realloc(g->h, cap * sizeof(*h)) : NULL;

		if (h == NULL) {
			if (g->n == 0)
				gent_drop(c, g);
			return false;
		}
		g->h = h;
		g->cap = cap;
	}
	g->h[g->n++] = (struct holder){ rid, expiry };
	c->grants++;
	return true;
}

static bool grant(struct coh *c, uint64_t rid, uint32_t kind, uint64_t ino, mono_ns now)
{
	return grant_until(c, rid, kind, ino, now + (mono_ns)c->valid_ms * NSEC_PER_MSEC);
}

/* Drop g's holders (all, or all but rid) without telling them. */
static void gent_forget(struct coh *c, struct gent *g, bool keep_rid, uint64_t rid)
{
	for (uint16_t i = 0; i < g->n;) {
		if (keep_rid && g->h[i].rid == rid) {
			i++;
			continue;
		}
		g->h[i] = g->h[--g->n];
		c->grants--;
	}
	if (g->n == 0)
		gent_drop(c, g);
}

/*
 * rid's OPEN o is released: may its kernel keep the file's cached pages?
 * Not for a truncating open (a write: nothing to keep) nor a direct one
 * (its kernel neither uses nor drops them); a plain one that finds none
 * vouched for drops them, and vouches for them from now on.
 */
static bool keep_pages(struct coh *c, uint64_t rid, const struct rpc_open *o, mono_ns now)
{
	uint64_t ino = le64_to_cpu(o->ino);
	struct gent *g;

	if (le32_to_cpu(o->flags) & (O_TRUNC | O_APPEND | O_DIRECT))
		return false;
	g = find(c, COH_PAGES, ino);
	if (g != NULL)
		gent_expire(c, g, now);
	if (g != NULL && g->state == SLOT_USED && holder_find(g, rid) != NULL)
		return true;
	/* (no room: nothing vouched for, and the next open drops them again) */
	grant_until(c, rid, COH_PAGES, ino, now + (mono_ns)COH_PAGES_MS * NSEC_PER_MSEC);
	return false;
}

void coh_forget_pages(struct coh *c)
{
	for (uint32_t i = 0; i < c->cap; i++)
		if (c->tab[i].state == SLOT_USED && c->tab[i].kind == COH_PAGES)
			gent_forget(c, &c->tab[i], false, 0);
}

void coh_change(struct coh *c, uint64_t rid, const struct coh_change *ch, mono_ns now,
		coh_holder_fn fn, void *arg)
{
	/* a name's change breaks the directory's entry grants; an inode's, its own */
	uint32_t kind = ch->kind;
	struct gent *g;

	if (kind == RPC_INVAL_INODE && (g = find(c, COH_PAGES, ch->ino)) != NULL)
		gent_forget(c, g, ch->writer_pages, rid);
	g = find(c, kind, ch->ino);
	if (g == NULL)
		return;
	gent_expire(c, g, now);
	if (g->state != SLOT_USED)
		return;
	for (uint16_t i = 0; i < g->n;) {
		if (g->h[i].rid == rid) {
			i++;
			continue;
		}
		fn(arg, g->h[i].rid, g->h[i].expiry, ch);
		if (kind == RPC_INVAL_INODE) {
			g->h[i] = g->h[--g->n];
			c->grants--;
		} else {
			i++;
		}
	}
	if (g->n == 0)
		gent_drop(c, g);
}

uint32_t coh_sweep(struct coh *c, mono_ns now, uint32_t max)
{
	uint32_t gone = 0;

	for (uint32_t n = 0; n < max && n < c->cap; n++) {
		struct gent *g = &c->tab[c->sweep_at];

		c->sweep_at = (c->sweep_at + 1) & (c->cap - 1);
		if (g->state == SLOT_USED)
			gone += gent_expire(c, g, now);
	}
	if (c->tombs > c->cap / 4)
		rehash(c, c->cap);
	return gone;
}

/* ---- what a reply grants ---- */

/* An entry reply's inode, and its name's directory. */
static bool grant_entry(struct coh *c, uint64_t rid, uint64_t dir, const struct rpc_attr *a,
			mono_ns now)
{
	return grant(c, rid, RPC_INVAL_INODE, le64_to_cpu(a->ino), now) &&
	       grant(c, rid, RPC_INVAL_ENTRY, dir, now);
}

/* A readdirplus reply: the directory's names and every entry's attributes. */
static bool grant_dirents(struct coh *c, uint64_t rid, uint64_t dir, const struct svc_reply *r,
			  mono_ns now)
{
	struct rpc_dirent d;
	const struct rpc_attr *a;
	const char *name;
	uint32_t pos = 0;
	bool ok = grant(c, rid, RPC_INVAL_ENTRY, dir, now);

	while (ok && rpc_dirent_next(r->tail, r->tail_len, &pos, &d, &name, &a) == 0)
		if (a != NULL) {
			struct rpc_attr at;

			memcpy(&at, a, sizeof(at));
			ok = grant(c, rid, RPC_INVAL_INODE, le64_to_cpu(at.ino), now);
		}
	return ok;
}

/* The le64 at the start of a request's fixed part: the inode or directory most ops name. */
static uint64_t first_ino(const struct rpc_req *q)
{
	struct le64 v;

	memcpy(&v, q->fixed, sizeof(v));
	return le64_to_cpu(v);
}

uint32_t coh_reply(struct coh *c, uint64_t rid, const struct rpc_req *q,
		   struct svc_reply *r, mono_ns now)
{
	const union rpc_reply_fixed *f = &r->fixed;
	bool ok;

	if (c->valid_ms == 0)
		return 0;
	if (r->status != 0) /* only a name that is not there is worth remembering */
		return q->op == RPC_LOOKUP && r->status == ENOENT &&
		       grant(c, rid, RPC_INVAL_ENTRY, first_ino(q), now) ? c->valid_ms : 0;
	switch (q->op) {
	case RPC_LOOKUP: case RPC_MKNOD: case RPC_MKDIR: case RPC_SYMLINK:
		ok = grant_entry(c, rid, first_ino(q), &f->lookup.attr, now);
		break;
	case RPC_LINK: {
		struct rpc_link l;

		memcpy(&l, q->fixed, sizeof(l));
		ok = grant_entry(c, rid, le64_to_cpu(l.newparent), &f->link.attr, now);
		break;
	}
	case RPC_CREATE:
		ok = grant_entry(c, rid, first_ino(q), &f->create.entry.attr, now);
		break;
	case RPC_GETATTR: case RPC_SETATTR:
		ok = grant(c, rid, RPC_INVAL_INODE, le64_to_cpu(f->getattr.ino), now);
		break;
	case RPC_WRITE:
		ok = grant(c, rid, RPC_INVAL_INODE, le64_to_cpu(f->write.attr.ino), now);
		break;
	case RPC_READ:
		ok = grant(c, rid, RPC_INVAL_INODE, first_ino(q), now);
		break;
	case RPC_READDIR:
		ok = grant_dirents(c, rid, first_ino(q), r, now);
		break;
	case RPC_OPEN: {
		struct rpc_open o;

		memcpy(&o, q->fixed, sizeof(o));
		if (keep_pages(c, rid, &o, now))
			r->fixed.open.flags = cpu_to_le32(RPC_OPENED_KEEP_CACHE);
		ok = false; /* (no attributes: the header's validity says nothing) */
		break;
	}
	default:
		ok = false; /* nothing the kernel keeps */
		break;
	}
	return ok ? c->valid_ms : 0;
}
