/*
 * coherence.h - what each mount's kernel may cache, and who must drop
 * what before a change is acknowledged (docs/coherence.md).
 *
 * A grant is (mount rid, kind, ino) with an expiry: INODE grants cover an
 * inode's attributes (and, through them, its cached data: the kernel drops
 * pages whose mtime or size changed), ENTRY grants cover the names of a
 * directory, positive and negative.  A reply released to a mount records
 * the grants it carries (coh_reply) and tells the mount how long it may
 * cache them; the kernel's timeout starts before the server's, so it ends
 * first.  A committed change names what it touched (inodes written,
 * names added, removed or replaced); coh_change hands every other holder
 * of a grant it breaks to the caller, which sends that mount an INVAL and
 * holds the change's reply until the mount acknowledged or its grant ran
 * out.  The writer's own kernel keeps itself coherent (it applied the op).
 * PAGES records say which mounts' cached file pages are still good, so an
 * open may keep them: a mount's kernel keeps them across an open only when
 * nothing changed them since that mount last dropped them.  A plain OPEN
 * released without keep_cache makes the kernel drop them, so from then on
 * they are vouched for (until COH_PAGES_MS or a change).  Every INODE
 * change ends every other mount's vouching, and the writer's own unless
 * its kernel changed its pages alike (coh_change.writer_pages).
 *
 * Pure logic: no I/O, no clock (the caller passes now).  One thread.
 */
#ifndef FUSEFS_SERVER_COHERENCE_H
#define FUSEFS_SERVER_COHERENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "server/proto.h"

struct coh;
struct svc_reply;


/*
 * How long a mount's cached pages are vouched for after an open that
 * dropped them, while nobody changes the file (COH_PAGES below).
 */
#define COH_PAGES_MS 60000u

/* What a change touched: an inode's attributes, or a name in a directory. */
struct coh_change {
	uint32_t kind;        /* RPC_INVAL_INODE or RPC_INVAL_ENTRY */
	bool writer_pages;    /* INODE: the writer's own kernel changed its cached
				 pages the same way (a buffered write, a setattr) */
	uint64_t ino;         /* the inode, or the directory */
	const char *name;     /* ENTRY: the name (not terminated) */
	uint32_t namelen;
};

/* valid_ms: how long a grant lasts (0: caching off, nothing is granted). */
int coh_create(uint32_t valid_ms, struct coh **out);
void coh_destroy(struct coh *c);
uint32_t coh_valid_ms(const struct coh *c);
/* Grants held now (expired ones may still count until swept). */
uint64_t coh_grants(const struct coh *c);

/*
 * A reply to rid's request q is being released at now: record the grants
 * it carries, and for a plain OPEN say in it whether the mount's kernel
 * may keep the file's cached pages (RPC_OPENED_KEEP_CACHE; PAGES below).
 * Returns the validity for its header: coh_valid_ms, or 0 when it carries
 * none or the table is full.
 */
uint32_t coh_reply(struct coh *c, uint64_t rid, const struct rpc_req *q,
		   struct svc_reply *r, mono_ns now);

/*
 * A change by rid, committed: fn is called once for every other mount
 * whose unexpired grant it breaks, with that grant's expiry.  The inode
 * grants it breaks are gone (the mount must ask again); entry grants stay.
 */
typedef void (*coh_holder_fn)(void *arg, uint64_t rid, mono_ns expiry,
			      const struct coh_change *ch);
void coh_change(struct coh *c, uint64_t rid, const struct coh_change *ch, mono_ns now,
		coh_holder_fn fn, void *arg);

/* A change whose inodes are not known: no mount's pages are vouched for. */
void coh_forget_pages(struct coh *c);

/* Forget expired grants, looking at no more than max of them.  How many went. */
uint32_t coh_sweep(struct coh *c, mono_ns now, uint32_t max);

#endif
