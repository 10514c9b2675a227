/*
 * client.h - the client side of the server protocol: find the server the
 * quorum blocks name, keep one connection to it, and carry requests and
 * replies (server/proto.h) for the FUSE operations.
 *
 * Many threads call at once: each call gets a request id and a slot, its
 * frame goes out under the send lock, and a receiver thread hands each
 * reply to the slot that waits for it, so requests from all FUSE threads
 * are in flight together on the one connection.
 *
 * When there is no connection (at start, or after the server went away) a
 * call connects first: it dials (the server the quorum blocks name, over
 * TCP; or the config's dial, the transport seam tests use), greets it, and
 * retries every RETRY_MS until the server serves or wait_ms has passed
 * (then -EHOSTDOWN, with the reason logged once).  A call in flight when
 * the connection breaks is sent again, with the same request id, on the
 * next connection (to the same server or a new one): the server answers a
 * resend of a change from its replies table instead of applying it twice.
 *
 * Every wait is bounded.  Functions return 0 or a negative errno; a call's
 * result is the server's status as a negative errno.
 */
#ifndef FUSEFS_FUSE_CLIENT_H
#define FUSEFS_FUSE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"
#include "server/proto.h"

struct rpc_client;

struct rpc_client_config {
	struct bd_dev *dev;            /* for the quorum blocks; may be NULL with dial */
	const struct bd_super *super;
	uint64_t rid;
	uint32_t wait_ms;   /* how long rpc_client_connect waits for a server to answer */
	/*
	 * A hard mount (soft false, the default) lets every call wait as long
	 * as it takes, sent again with its id to each new server; a soft one
	 * fails a call with -ETIMEDOUT (or -EHOSTDOWN) after failover_ms.
	 */
	bool soft;
	uint32_t failover_ms;
	/* a connection that answers nothing (no ack, no keepalive) this long is lost */
	uint32_t stall_ms;
	/*
	 * The transport seam: make a connected stream socket to a server (it
	 * is then greeted as any other).  0 with *fd, or -errno with why.
	 * NULL: the server the quorum blocks name, over TCP.
	 */
	int (*dial)(void *arg, int *fd, char *why, size_t whylen);
	void *dial_arg;
	/*
	 * Cache coherence: called from a thread of its own with each item of
	 * the server's INVALs (drop what the kernel caches of it; kind 0: of
	 * every inode, after a new connection), only once every reply received
	 * before the INVAL was handed on (rpc_call.hold); then the server is
	 * told.  NULL: nothing is cached, nothing to drop.
	 */
	void (*inval)(void *arg, const struct rpc_inval *it);
	void *inval_arg;
	/*
	 * A lock on ino that a waiter of ours waits for was let go (the
	 * receiver's thread calls it: it must not block).  NULL: not told.
	 */
	void (*lock_freed)(void *arg, uint64_t ino);
	void *lock_freed_arg;
};

/* One call.  The caller fills the request part and the reply buffers. */
struct rpc_call {
	uint32_t op;
	uint32_t uid, gid, pid;
	uint32_t ngroups;
	const uint32_t *groups;
	const void *fixed;         /* the op's request struct (the op table, proto.h) */
	const void *tail1;
	uint32_t tail1_len;
	const void *tail2;
	uint32_t tail2_len;
	/* the reply: its fixed part (rpc_op_reply_fixed_bytes(op)) and tail */
	void *reply_fixed;
	void *reply_tail;          /* may be NULL when reply_tail_cap is 0 */
	uint32_t reply_tail_cap;
	uint32_t reply_tail_len;   /* set: bytes of tail received */
	uint32_t wait_ms;          /* waiting for a server: 0 is the mount's server_wait_ms */
	uint32_t valid_ms;         /* set: how long the reply may be cached (from the call's start) */
	/*
	 * The caller hands the reply on (to the kernel) after the call returns:
	 * it must then call rpc_client_call_end, and until it has, no INVAL that
	 * came behind the reply is applied.
	 */
	bool hold;
	uint32_t slot;             /* set: what rpc_client_call_end releases (0: nothing) */
};

/* Set up (no connection yet: the first call makes it).  0 or -errno. */
int rpc_client_create(const struct rpc_client_config *cfg, struct rpc_client **out);
void rpc_client_destroy(struct rpc_client *c);

/*
 * Connect now, waiting up to wait_ms for a server that serves: 0, or
 * -errno with why (no server recorded, unreachable, not serving yet).
 */
int rpc_client_connect(struct rpc_client *c, char *why, size_t whylen);

/*
 * Send call and wait for its reply: 0, the server's error (-ENOENT...),
 * what rpc_req_check says of a request the wire would refuse
 * (-ENAMETOOLONG, -ERANGE, -E2BIG...; nothing is sent), -EIO when the
 * connection broke with the call in flight, -EHOSTDOWN when no server
 * answered within wait_ms, -EPROTO for a reply that does not fit the
 * buffers given.
 */
int rpc_client_call(struct rpc_client *c, struct rpc_call *call);
/*
 * A new handle number for an OPEN or CREATE (rpc_open.fh, rpc_make.fh):
 * the mount names its open files, so every server and connection knows
 * them by the same name; the client names them again to a new one.
 */
uint64_t rpc_client_new_fh(struct rpc_client *c);
/* A held call's reply was handed on (any result; nothing when nothing is held). */
void rpc_client_call_end(struct rpc_client *c, struct rpc_call *call);

/*
 * The server in use, per the quorum blocks, checked with a greeting:
 * "ADDR term T rid R serving", "... not serving (...)", "... unreachable: ..."
 * or "none".  Returns the text length or -errno.
 */
int rpc_server_text(struct bd_dev *dev, const struct bd_super *super, uint64_t rid, char *buf,
		    size_t len);

struct rpc_client_stats {
	uint64_t calls;
	uint64_t connects;
	uint64_t disconnects;
	uint64_t bad_replies;
	uint64_t max_in_flight;   /* the most calls waiting at once */
	uint64_t invals;          /* INVALs applied, and their items */
	uint64_t inval_items;
	uint64_t resent;          /* calls sent again after a connection was lost */
	uint64_t failovers;       /* connections made again after one was lost */
	uint64_t last_failover_ms;/* from the loss to the new connection, the last time */
};

void rpc_client_get_stats(struct rpc_client *c, struct rpc_client_stats *out);

/*
 * Where a call's time goes at the client, per op: "lat client_STAGE OP n N
 * p50_us X p99_us Y" lines, the stages being
 *   send   the call made -> its frame written (a slot, a connection, the socket)
 *   wait   its frame written -> its reply taken by the receiver (the wire
 *          and the server: the server's "total" is the part it spends)
 *   wake   its reply taken -> the caller running again
 *   total  the call made -> the caller has its result
 * Its length or -ERANGE.
 */
int rpc_client_lat_text(struct rpc_client *c, char *buf, size_t len);

#endif
