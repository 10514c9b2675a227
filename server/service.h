/*
 * service.h - the running service of one term: one thread that owns every
 * client connection and the store.
 *
 *   net.c       the thread: the listener, every connection (epoll),
 *               frames in and out, greetings, backpressure; after each
 *               round of reading it hands what arrived to the executor as
 *               one batch, in three stages, and sends what each stage
 *               released;
 *   exec.c      the executor: applies a batch's stages to the store (the
 *               reads against the committed state; the writes in one
 *               transaction and one commit - group commit: while a commit
 *               waits for the device, requests pile up in the sockets and
 *               make the next batch; then the connections that closed) and
 *               says whether each stage's replies may be released.  It
 *               never calls into net.c;
 *   dispatch.c  one request -> its op's handler -> the filesystem logic
 *               (fs.h) -> one reply: the op table's server half.
 *
 * The lease.  One callback (svc_config.lease_ok, the same one the store's
 * VFS asks before each device write) answers "do we still hold the
 * lease?"; the service asks it in exactly these places: net.c before it
 * admits a greeting, exec.c before it releases a batch's read replies and
 * before it releases its write replies (after the commit).  The term gate
 * and the VFS guard the commit itself (store.h; docs/store.md).
 *
 * Memory.  Each request holds the most its reply may take
 * (rpc_req_reply_budget) against its connection's limit until the reply is
 * sent, so requests that are small cannot pile up replies that are not.
 * A connection may have at most SVC_CONN_INFLIGHT_MAX requests and
 * SVC_CONN_BYTES_MAX of requests and replies queued, and all of them
 * together SVC_QUEUE_BYTES_MAX of requests; past either the thread stops
 * reading that connection, so a slow or hostile client costs at most that
 * much memory (limits.h).
 */
#ifndef FUSEFS_SERVER_SERVICE_H
#define FUSEFS_SERVER_SERVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/format.h"
#include "common/hist.h"
#include "server/coherence.h"
#include "server/proto.h"

struct store;
struct svc;
struct conn;

/* A mount as a fence needs it: its process on its host, and where it connected from. */
struct svc_mount_id {
	struct quorum_holder holder;  /* pid 0: it did not say */
	struct bd_addr addr;          /* family 0: not an IP connection */
};

/*
 * Fence a mount that was away past its grace while it held locks or open
 * files: 0 when it is fenced, else -errno with why.  Called on a thread
 * of its own (mount_fence.c), so it may take long; it gives up when
 * abort_fd becomes readable.
 */
typedef int (*svc_fence_fn)(void *arg, uint64_t rid, const struct svc_mount_id *who,
			    int abort_fd, char *why, size_t whylen);

/* Counters of the service, shown in the status xattrs. */
#define SVC_COUNTERS(X)        \
	X(conns_accepted)       \
	X(conns_closed)         \
	X(ungreeted_evicted)    \
	X(bad_frames)           \
	X(bad_requests)         \
	X(unauthenticated)      \
	X(requests)             \
	X(batches)              \
	X(commits)              \
	X(committed_requests)   \
	X(refused)              \
	X(purges)               \
	X(silent_closed)        \
	X(gone_mounts)          \
	X(gone_locks)           \
	X(fenced_mounts)        \
	X(mount_fence_failures) \
	X(locks_held)           /* (a gauge: lock ranges held now, over every mount) */ \
	X(lock_waiters)         /* (a gauge: mounts' blocked lock requests, per inode) */ \
	X(released_chunks)      \
	X(commit_us)            \
	X(batch_requests_max)   \
	X(replies_dropped)      \
	X(invals_sent)          \
	X(inval_items)          \
	X(inval_acks)           \
	X(inval_waits_expired)  \
	X(replies_held)

enum svc_counter {
#define X(n) SVC_##n,
	SVC_COUNTERS(X)
#undef X
	SVC_CTR_NR,
};

/* Written by the service's thread, read by anyone (relaxed: they are statistics). */
struct svc_counters {
	_Atomic uint64_t v[SVC_CTR_NR];
};

/*
 * Where a request's time goes at the server, per op (the stage table of
 * `make bench` and the counters xattr):
 *   queue   its frame read -> its batch's stage starts
 *   apply   its handler (fs and SQLite, inside the transaction for a write)
 *   commit  its batch's commit: the term gate, the log write and flush
 *   total   its frame read -> its reply handed to the socket
 * and per commit: the term gate's read, and the rest (COMMIT: log and flush).
 */
enum svc_stage { SVC_ST_QUEUE, SVC_ST_APPLY, SVC_ST_COMMIT, SVC_ST_TOTAL, SVC_STAGE_NR };

/* A service's statistics; the lifecycle keeps one across the terms it serves. */
struct svc_stats {
	struct svc_counters ctr;
	struct hist lat[SVC_STAGE_NR][RPC_OP_END];
	struct hist commit_gate;
	struct hist commit_log;
};

/*
 * "server_NAME VALUE" lines for the counters, then one line per stage and
 * op that ran: "lat server_STAGE OP n N p50_us X p99_us Y", and the
 * commit's parts.  Its length or -ERANGE.
 */
int svc_stats_text(const struct svc_stats *st, char *buf, size_t len);

static inline void svc_ctr_add(struct svc_counters *c, enum svc_counter n, uint64_t by)
{
	atomic_fetch_add_explicit(&c->v[n], by, memory_order_relaxed);
}

static inline void svc_ctr_set(struct svc_counters *c, enum svc_counter n, uint64_t v)
{
	atomic_store_explicit(&c->v[n], v, memory_order_relaxed);
}

static inline void svc_ctr_max(struct svc_counters *c, enum svc_counter n, uint64_t v)
{
	if (v > atomic_load_explicit(&c->v[n], memory_order_relaxed))
		atomic_store_explicit(&c->v[n], v, memory_order_relaxed);
}

struct svc_config {
	const struct bd_super *super;
	int slot;
	uint64_t rid;
	uint64_t term;
	/* Do we still hold the lease?  NULL: no lease to keep (tests). */
	bool (*lease_ok)(void *arg);
	void *lease_arg;
	int listen_fd;               /* bound and listening (the service owns it), or -1 */
	struct store *store;         /* open; the service's thread uses it alone */
	/* called (from the service's thread) when it cannot go on: fenced, device failure */
	void (*failed)(void *arg, int res);
	void *arg;
	struct svc_stats *stats;     /* where to count (the caller's, outliving the service) */
	/*
	 * How long a mount may cache what a reply tells it (coherence.h); 0
	 * turns the kernels' caches off.  It must end before any later server
	 * can serve: server.c keeps it under the lease's margin.
	 */
	uint32_t cache_ms;
	/*
	 * How long a mount that lost its connection keeps its open files (and
	 * its kept replies), and how long after the start the files left open
	 * under an earlier server wait for their mounts to name them again.
	 */
	uint32_t grace_ms;
	/* A mount's connection silent this long is closed (0: SRV_SILENT_MS). */
	uint32_t silent_ms;
	/*
	 * Fences a mount away past its grace that holds locks or open files;
	 * only once it is fenced do they go to others.  Tried again until it
	 * succeeds.  (It gets arg.)
	 */
	svc_fence_fn fence_mount;
};

int svc_start(const struct svc_config *cfg, struct svc **out);
/*
 * Stop: no new requests, the batch in progress finishes or fails, every
 * connection closes; the listener closes.  The store stays the caller's.
 */
void svc_stop(struct svc *s);
/*
 * Hand the service a connected stream socket, as if it had accepted it
 * (any thread; tests and in-process clients).  The service owns fd from
 * the call on, also when it fails (-errno).
 */
int svc_adopt(struct svc *s, int fd);
void svc_get_counters(struct svc *s, uint64_t out[SVC_CTR_NR]);

/* ---- fencing vanished mounts, on a thread of its own (mount_fence.c) ---- */

struct mfence;

struct mfence_config {
	svc_fence_fn fence;
	void *fence_arg;
	void (*wake)(void *arg);     /* a mount was fenced: mfence_done has it */
	void *wake_arg;
	struct svc_counters *ctr;    /* counts failed fences */
};

int mfence_start(const struct mfence_config *cfg, struct mfence **out);
/* Fence rid (who it is in who) until it is fenced.  0 or -ENOMEM. */
int mfence_add(struct mfence *f, uint64_t rid, const struct svc_mount_id *who);
/* The mounts fenced since the last call, at most max of them: how many. */
uint32_t mfence_done(struct mfence *f, uint64_t *rids, uint32_t max);
/* Abort a fence in progress, and stop (f may be NULL). */
void mfence_stop(struct mfence *f);

/* ---- between net.c and exec.c ---- */

/* A reply as the handlers build it: status, the op's fixed reply, a tail. */
struct svc_reply {
	uint32_t status;             /* positive errno or 0 */
	union rpc_reply_fixed fixed;
	uint32_t fixed_len;
	uint8_t *tail;               /* malloc'd, or NULL */
	uint32_t tail_len;
};

enum svc_req_kind {
	SVC_REQ_CALL,                /* a request frame */
	SVC_REQ_HOLDS,               /* a HOLDS frame: payload is rpc_hold[], rid the mount's */
	SVC_REQ_GONE,                /* the mount rid said goodbye, or was away past the grace */
	SVC_REQ_PURGE,               /* the grace after start is over: orphans nobody took back go */
};

/* A request taken off a connection: net.c's until it is sent or dropped. */
struct svc_req {
	struct svc_req *next;
	enum svc_req_kind kind;
	struct conn *conn;           /* net.c's: the connection it came on (NULL: none) */
	uint64_t rid;                /* the mount it is about */
	const struct svc_mount_id *who; /* a CALL's: who the mount is (its connection's) */
	bool fenced;                 /* a GONE mark's: the mount was fenced first */
	bool bye;                    /* a GONE mark's: the mount said goodbye (it resends nothing) */
	struct rpc_req req;          /* points into payload */
	uint8_t *payload;
	uint32_t payload_len;
	uint32_t budget;             /* reply bytes held against the connection's limit */
	struct svc_reply reply;      /* the executor's answer */
	mono_ns read_at;             /* its frame was read (the stage clock) */
	/* what it changed (names point into payload), for the other mounts' caches */
	struct coh_change changes[SVC_CHANGES_MAX];
	uint32_t nchanges;
	bool changes_overflow;       /* more than that: every other mount's grants are waited out */
	bool held;                   /* its reply waits for other mounts to drop their caches */
	uint32_t valid_ms;           /* what its reply lets the mount cache, and how long */
};

/* ---- the executor (exec.c) ---- */

struct exec;

/*
 * Rules the whole-system simulator undoes on purpose, to prove its checks
 * catch the loss (tests/wsim_main.c); always 0 in fusefs-mount.
 */
#define SVC_BREAK_NO_REPLY_CACHE 0x1u /* a resend is applied again, never answered from replies */
#define SVC_BREAK_PURGE_OPEN     0x2u /* the grace's purge deletes orphans mounts still hold */

struct fs_time;

struct exec_config {
	struct store *store;
	bool (*lease_ok)(void *arg);
	void *lease_arg;
	struct svc_stats *stats;
	/* the simulator only: its planted bugs (SVC_BREAK_*), and its clock (NULL: the system's) */
	uint32_t breaks;
	void (*now)(void *arg, struct fs_time *t);
	void *now_arg;
};

/* Set up, and recover what the previous server left.  0 or -errno with a log line. */
int exec_create(const struct exec_config *cfg, struct exec **out);
void exec_destroy(struct exec *e);
/* Does the request belong to a batch's writing stage? */
bool exec_req_writes(const struct svc_req *r);
/*
 * The stages of one batch, in this order.  Every request of a batch was
 * outstanding at the same time, so applying its reads first, against the
 * committed state, is as good a linearization as any.
 *
 * exec_reads: apply each; 0 with *release saying whether their replies may
 * go, or -EIO when the store could not be read (the device failed): none
 * of them may, and the service cannot go on (a client asks the next server).
 */
int exec_reads(struct exec *e, struct svc_req *const *reqs, uint32_t n, bool *release);
/*
 * exec_writes: apply each in arrival order, each in its own savepoint (a
 * failed one changes nothing), then one commit; a commit the store
 * refuses (store_refusal) is tried again one request at a time, and the
 * request that does not fit alone is answered with the refusal.  0 with
 * *release saying whether the replies may go; or -errno when the service
 * cannot go on (fenced, the device failed): nothing of the batch may be
 * released.
 */
int exec_writes(struct exec *e, struct svc_req *const *reqs, uint32_t n, bool *release);
/*
 * exec_marks: the mounts gone (their open files and kept replies
 * forgotten) and the purge after the grace, after everything the batch
 * had before them, and a commit for what that frees.  0 or -errno as
 * exec_writes.
 */
int exec_marks(struct exec *e, struct svc_req *const *reqs, uint32_t n);
/*
 * How long to wait for more writes before running the queued ones: half
 * the last commit's time (at most EXEC_LINGER_MAX_NS) when the last commit
 * carried several writes, so concurrent writers share commits; 0 for a
 * lone writer, who would only lose the time.
 */
mono_ns exec_linger_ns(const struct exec *e);
/* Requests of this many payload bytes at most make one batch. */
uint64_t exec_batch_bytes(const struct exec *e);
/*
 * Deleted files' data is released a bounded step per commit, in the
 * background: is a step due (idle: nothing else to run; else one is due
 * every EXEC_RELEASE_EVERY_NS under load)?
 */
bool exec_release_due(const struct exec *e, bool idle, mono_ns now);
/* Was the mount rid declared gone (it may not come back)?  Reads the store. */
bool exec_mount_was_gone(struct exec *e, uint64_t rid);
/* Does rid hold locks or open files (a fence must come before they go)?  Reads only. */
bool exec_mount_holds(struct exec *e, uint64_t rid);
/* The mounts that hold locks (*rids malloc'd).  Reads the store. */
int exec_lock_holders(struct exec *e, uint64_t **rids, uint32_t *n);
/* Who rid was when it took its locks: 0, -ENOENT or -errno.  Reads the store. */
int exec_mount_who(struct exec *e, uint64_t rid, struct svc_mount_id *who);
/* A mount whose lock waiters are to ask again now, about ino. */
struct svc_lock_wake {
	uint64_t rid, ino;
};
/*
 * The wakes the committed batch made (locks let go that mounts wait for),
 * at most max of them, taken: how many.  Discard: forget them all (0).
 */
uint32_t exec_lock_wakes(struct exec *e, struct svc_lock_wake *out, uint32_t max, bool discard);
/* The lock gauges (server_locks_held, server_lock_waiters) brought up to date (after a commit). */
void exec_lock_gauges(struct exec *e);
/* One step in a commit of its own.  0, or what stops the service (the device, the gate). */
int exec_release(struct exec *e);

/* ---- dispatch.c ---- */

struct dispatch;

/* The filesystem logic over the store, for one service (its thread). */
int dispatch_open(struct store *st, const struct exec_config *cfg, struct dispatch **out);
void dispatch_close(struct dispatch *d);
/*
 * Apply one request: its op's handler fills r->reply.  Returns 0 or the
 * operation's -errno (also in r->reply.status); the executor wraps a
 * writing request in a savepoint and rolls it back on an error.
 */
int dispatch_apply(struct dispatch *d, struct svc_req *r);
/* A mount names the files it holds open (after a greeting): they are its again. */
int dispatch_holds(struct dispatch *d, uint64_t rid, const struct rpc_hold *holds, uint32_t n);
/*
 * A mount is gone: its open files are closed, its locks released, and if
 * it held locks or was fenced it is recorded as gone for good: it may
 * never come back to act under them (a write).  Its kept replies are
 * forgotten when it said goodbye (bye) or is gone for good; a mount that
 * only went away may come back and resend, and must find them.  The locks
 * it held, or -errno.
 */
int dispatch_gone(struct dispatch *d, uint64_t rid, bool fenced, bool bye);
/* Delete the orphans no mount holds open (a write). */
int dispatch_purge(struct dispatch *d);
/* Does rid hold locks or open files?  Reads only. */
bool dispatch_mount_holds(struct dispatch *d, uint64_t rid);
/* The mounts that hold locks (*rids malloc'd).  Reads only. */
int dispatch_lock_holders(struct dispatch *d, uint64_t **rids, uint32_t *n);
/* Who rid was when it took its first lock.  0, -ENOENT or -errno.  Reads only. */
int dispatch_mount_who(struct dispatch *d, uint64_t rid, struct svc_mount_id *who);
/* Lock ranges held (read again only after locks changed), and mounts waiting per inode. */
void dispatch_lock_gauges(struct dispatch *d, uint64_t *held, uint64_t *waiters);
/* exec_lock_wakes' */
uint32_t dispatch_lock_wakes(struct dispatch *d, struct svc_lock_wake *out, uint32_t max,
			     bool discard);
/* Was rid declared gone, by this server or an earlier one?  Reads only. */
bool dispatch_was_gone(struct dispatch *d, uint64_t rid);
/* Is there deferred work that must not wait for another client's write? */
bool dispatch_must_write(const struct dispatch *d);
/* Writes that piggyback on a batch that commits anyway (deferred atimes, orphans). */
int dispatch_flush_deferred(struct dispatch *d);
/*
 * A writing transaction begins; it ends committed, or not: then what it
 * did outside the store is undone (the handles it took are closed, the
 * orphans its flush deleted are queued again).
 */
void dispatch_txn_begin(struct dispatch *d);
void dispatch_txn_end(struct dispatch *d, bool committed);
/* The deferred orphans are more than a transaction can take: leave them to a purge. */
void dispatch_drop_deferred(struct dispatch *d);
/* Is a deleted file's data waiting to be released?  1, 0 or -errno (reads only). */
int dispatch_release_pending(struct dispatch *d);
/* Release at most max chunks of it (a write): how many, or -errno. */
int dispatch_release(struct dispatch *d, uint32_t max);

#endif
