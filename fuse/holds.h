/*
 * holds.h - the files a mount holds open on the server, each by the handle
 * (fh) the mount chose for it.  A call that succeeded is noted (OPEN and
 * CREATE take a handle, RELEASE drops it), and after every greeting the
 * mount names all of them again in HOLDS frames, so that a new connection
 * or a new server keeps them (docs/failover.md).
 *
 * Pure: no locks, no I/O.  client.c keeps one under its lock; the
 * whole-system simulator (tests/wsim_main.c) runs the same code for its
 * clients, as the agent and the election simulator share quorum/glue.c.
 */
#ifndef FUSEFS_FUSE_HOLDS_H
#define FUSEFS_FUSE_HOLDS_H

#include <stdbool.h>
#include <stdint.h>

#include "server/proto.h"

struct hold {
	uint64_t fh;          /* 0: an empty slot */
	uint64_t ino;
	uint32_t flags;
	bool dead;            /* released: a tombstone */
};

/* An open-addressing table by fh; zeroed is empty. */
struct holds {
	struct hold *tab;
	uint32_t cap, used, dead;
};

/*
 * What a call that succeeded (op, its request's fixed part, its reply's)
 * did to the mount's handles.  0, or -ENOMEM: the handle is held, but
 * would not be named to a new server.
 */
int holds_note(struct holds *h, uint32_t op, const void *fixed, const void *reply_fixed);
/*
 * The next held files, at most max of them, into out as HOLDS names them,
 * from *cursor on (start it at 0): how many; 0 once every one was given.
 */
uint32_t holds_next(const struct holds *h, uint32_t *cursor, struct rpc_hold *out, uint32_t max);
void holds_free(struct holds *h);

#endif
