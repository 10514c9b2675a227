/*
 * service.h - inside server/: the running service of one term.
 *
 *   net.c       the service's one thread: the TCP listener and every
 *               client connection (epoll), frames in and out, greetings,
 *               backpressure; after each round of reading it runs what
 *               arrived as one batch;
 *   exec.c      the executor: applies a batch to the store in arrival
 *               order, commits it once (group commit: while a commit
 *               waits for the device, requests pile up in the sockets and
 *               make the next batch), and only then releases its replies;
 *   dispatch.c  one request -> the filesystem logic (fs.h) -> one reply.
 *
 * Requests go through a bounded queue; replies go straight to the socket,
 * or, when it is full, into the connection's output queue.  Each request
 * holds the most its reply may take (a read's size) against its
 * connection's limit until the reply is built, so requests that are small
 * cannot pile up replies that are not.  A connection may have at most
 * CONN_MAX_INFLIGHT requests and CONN_MAX_BYTES of requests and replies
 * queued; past either the net thread stops reading it, so a slow or
 * hostile client costs at most that much memory.
 */
#ifndef FUSEFS_SERVER_SERVICE_H
#define FUSEFS_SERVER_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"
#include "server/proto.h"

struct quorum_agent;
struct store;
struct fs;
struct svc;
struct conn;

#define CONN_MAX_INFLIGHT 256
#define CONN_MAX_BYTES (8u << 20)
#define SVC_MAX_BYTES (32u << 20)     /* requests queued over all connections */
#define SVC_MAX_CONNS 1024

/* Counters of the service, shown in the status xattrs. */
#define SVC_COUNTERS(X)        \
	X(conns_accepted)       \
	X(conns_closed)         \
	X(bad_frames)           \
	X(bad_requests)         \
	X(unauthenticated)      \
	X(requests)             \
	X(batches)              \
	X(commits)              \
	X(committed_requests)   \
	X(commit_us)            \
	X(batch_requests_max)   \
	X(replies_dropped)

enum svc_counter {
#define X(n) SVC_##n,
	SVC_COUNTERS(X)
#undef X
	SVC_CTR_NR,
};

struct svc_config {
	struct bd_dev *dev;
	const struct bd_super *super;
	int slot;
	uint64_t rid;
	uint64_t term;
	struct quorum_agent *agent;  /* for the lease; NULL: none (tests) */
	int listen_fd;               /* bound and listening; the service owns it */
	struct store *store;         /* open; the service uses it from the executor only */
	/* called (from the executor) when the service cannot go on: fenced, device failure */
	void (*failed)(void *arg, int res);
	void *arg;
};

/* A request taken off a connection, owned by the executor until replied. */
struct svc_req {
	struct svc_req *next;
	struct conn *conn;
	struct rpc_req req;          /* points into payload */
	uint8_t *payload;
	uint32_t payload_len;
	uint32_t budget;             /* reply bytes held against the connection's limit */
	bool conn_closed;            /* not a request: the connection went away */
};

/* A reply being built by dispatch: header, fixed part, tail. */
struct svc_reply {
	uint32_t status;             /* positive errno or 0 */
	uint8_t fixed[sizeof(struct rpc_entry) + sizeof(struct rpc_opened) + 64];
	uint32_t fixed_len;
	uint8_t *tail;               /* malloc'd, or NULL */
	uint32_t tail_len;
};

int svc_start(const struct svc_config *cfg, struct svc **out);
/* Stop: no new requests, the batch in progress finishes or fails, connections close. */
void svc_stop(struct svc *s);
bool svc_may_serve(struct svc *s);
void svc_get_counters(struct svc *s, uint64_t out[SVC_CTR_NR]);

/* ---- between net.c and exec.c ---- */

/* Queue a request for the executor (net thread). */
void exec_submit(struct svc *s, struct svc_req *r);
/* Hand a finished reply to its connection (executor); NULL reply: drop. */
void net_reply(struct svc *s, struct conn *c, const struct svc_req *r, struct svc_reply *reply);
/* The executor is done with a request's connection. */
void net_conn_put(struct svc *s, struct conn *c);
/* The client rid of a connection (its greeting). */
uint64_t net_conn_rid(const struct conn *c);
void svc_count(struct svc *s, enum svc_counter c, uint64_t n);
void svc_count_max(struct svc *s, enum svc_counter c, uint64_t v);

/* ---- the executor (exec.c) ---- */

struct exec;

/* Set up, and recover what the previous server left.  0 or -errno. */
int exec_create(struct svc *s, struct exec **out);
void exec_destroy(struct exec *e);
/*
 * Apply what is queued (one batch, one commit when anything writes) and
 * answer it.  0, or -errno when the service cannot go on.
 */
int exec_batch(struct exec *e);
/* Take up to max requests and max_bytes of them (at least one) off the queue; NULL: none. */
struct svc_req *svc_take(struct svc *s, uint32_t max, size_t max_bytes);
bool svc_queued(struct svc *s);
bool svc_queued_writes(struct svc *s);
/*
 * How long to wait for more writes before committing the queued ones: half
 * the last commit's time (at most LINGER_MAX_NS) when the last commit
 * carried several writes, so concurrent writers share commits; 0 for a
 * lone writer, who would only lose the time.
 */
mono_ns exec_linger_ns(struct exec *e);
bool svc_stopping(struct svc *s);
struct dispatch *svc_dispatch(struct svc *s);
struct store *svc_store(struct svc *s);
/* Tell the lifecycle the service cannot go on. */
void svc_failed(struct svc *s, int res);

/* ---- dispatch.c ---- */

struct dispatch;

/* The filesystem logic over the store, for one service (executor thread). */
int dispatch_open(struct store *st, struct dispatch **out);
void dispatch_close(struct dispatch *d);
/*
 * Apply one request inside the open batch; fill reply.  Returns 0 or the
 * operation's -errno (already in reply->status); the executor wraps the
 * call in a savepoint and rolls it back on an error.
 */
int dispatch_apply(struct dispatch *d, const struct svc_req *r, struct svc_reply *reply);
/* First thing, inside a batch: what the previous server left (orphans). */
int dispatch_start(struct dispatch *d);
/* A connection went away: release its open files (reaping orphans). */
int dispatch_conn_closed(struct dispatch *d, const struct conn *c);
/* Does the request change the store (and so need the batch to commit)? */
bool dispatch_writes(const struct dispatch *d, const struct svc_req *r);
/* Is there deferred work that must not wait for another client's write? */
bool dispatch_must_write(const struct dispatch *d);
/* Writes that piggyback on a batch that commits anyway (deferred atimes, orphans). */
int dispatch_flush_deferred(struct dispatch *d);

#endif
