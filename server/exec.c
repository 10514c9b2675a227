/*
 * exec.c - the executor: the stages of a batch, applied to the store
 * (service.h).  net.c drives it; it never calls back.
 *
 *  - reads: against the committed state, without a transaction; their
 *    replies may go at once, before any write of the batch is durable;
 *  - writes: in arrival order, as one transaction, each in its own
 *    savepoint (a failed one changes nothing, the others go on), then
 *    one commit - the term gate, one WAL append, one flush - and only then
 *    may their replies go, so nobody ever sees a change that is not
 *    durable.  Concurrent requests from all clients share one commit;
 *  - marks: mounts gone (their open files closed, their kept replies
 *    forgotten) and the purge of orphans after the start's grace, with a
 *    commit for what that frees.
 *
 * The lease is asked once per stage, just before its replies would be
 * released (lease_holds).  A commit that fails - fenced by the term gate
 * or the VFS's lease check, or the device - releases no reply of its batch
 * and ends the service: the lifecycle closes every connection, so no
 * client takes a reply that was never made durable.  A transaction the
 * store refuses (store_refusal: larger than the log region, the device
 * full) is the requests' own failure, not the service's: they go again
 * one per transaction, and only the one that asks too much is answered
 * with the refusal (one_by_one).
 */
#include "server/service.h"

#include "common/common.h"
#include "server/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

static const char *const SUB = "server";

#define EXEC_LINGER_MAX_NS (500 * 1000)
/* under load, a step of releasing deleted files' data at least this often */
#define EXEC_RELEASE_EVERY_NS (100 * NSEC_PER_MSEC)
/* and each step about this long, its size adjusted to the device */
#define EXEC_RELEASE_STEP_NS (10 * NSEC_PER_MSEC)

struct exec {
	struct exec_config cfg;
	struct store *st;
	struct dispatch *d;
	uint32_t last_writes;           /* writes the last commit carried */
	mono_ns last_commit_ns;         /* and how long it took */
	mono_ns txn_commit_ns;          /* the last transaction's commit (write_txn) */
	bool release_more;              /* deleted files' data may be waiting (exec_release) */
	mono_ns release_next;           /* under load, the next step is due then */
	uint32_t release_chunks;        /* chunks a step releases (halved when refused) */
	uint32_t release_quick;         /* quick steps in a row at that size */
};

static bool lease_holds(const struct exec *e)
{
	return e->cfg.lease_ok == NULL || e->cfg.lease_ok(e->cfg.lease_arg);
}

bool exec_req_writes(const struct svc_req *r)
{
	return r->kind == SVC_REQ_CALL && rpc_req_writes(&r->req);
}

mono_ns exec_linger_ns(const struct exec *e)
{
	if (e->last_writes < 2)
		return 0;
	return MIN(e->last_commit_ns / 2, (mono_ns)EXEC_LINGER_MAX_NS);
}

uint64_t exec_batch_bytes(const struct exec *e)
{
	return store_batch_bytes(e->st);
}

/* Forget a reply's tail: a failed request answers with its status alone. */
static void reply_clear_tail(struct svc_reply *r)
{
	free(r->tail);
	r->tail = NULL;
	r->tail_len = 0;
}

/* Apply one request, its time in the stage table: the queue before it, the handler itself. */
static int apply_timed(struct exec *e, struct svc_req *r, mono_ns stage_start)
{
	mono_ns t0 = mono_now();
	int rc = dispatch_apply(e->d, r);

	hist_add(&e->cfg.stats->lat[SVC_ST_QUEUE][r->req.op], stage_start - r->read_at);
	hist_add(&e->cfg.stats->lat[SVC_ST_APPLY][r->req.op], mono_now() - t0);
	return rc;
}

/* A commit's time, for each of its requests and for its parts. */
static void count_commit(struct exec *e, struct svc_req *const *reqs, uint32_t n, mono_ns ns)
{
	mono_ns gate = store_last_gate_ns(e->st);

	for (uint32_t i = 0; i < n; i++)
		hist_add(&e->cfg.stats->lat[SVC_ST_COMMIT][reqs[i]->req.op], ns);
	hist_add(&e->cfg.stats->commit_gate, gate);
	hist_add(&e->cfg.stats->commit_log, ns - gate);
}

/*
 * The end of one request's savepoint: 0 while the transaction is whole,
 * else the refusal that cost it (store_refusal) or -EIO.
 */
static int savepoint_end(struct exec *e, int rc)
{
	int ret = store_op_end(e->st, rc);

	if (store_batch_intact(e->st))
		return 0;
	return store_refusal(ret) ? ret : -EIO;
}

/* Apply one request of the writing stage in its own savepoint.  0, or the batch is lost. */
static int apply_in_savepoint(struct exec *e, struct svc_req *r, mono_ns stage_start)
{
	int ret = store_op_begin(e->st), rc;

	if (ret < 0)
		return ret;
	rc = apply_timed(e, r, stage_start);
	if (rc < 0)
		reply_clear_tail(&r->reply);
	return savepoint_end(e, rc);
}

/*
 * The end of a writing transaction: the deferred writes (in their own
 * savepoint: if they fail, the batch still commits without them), then
 * the commit.  On an error the transaction is rolled back.
 */
static int deferred_and_commit(struct exec *e)
{
	int ret = store_op_begin(e->st);

	if (ret == 0)
		ret = savepoint_end(e, dispatch_flush_deferred(e->d));
	if (ret < 0) {
		store_rollback(e->st);
		return ret;
	}
	return store_commit(e->st);
}

typedef int (*apply_fn)(struct exec *e, struct svc_req *r, mono_ns stage_start);

/*
 * One writing transaction: reqs, each in its savepoint, then (with_deferred)
 * the deferred writes, then the commit.  0, or -errno with nothing of it
 * left, in the store or in the dispatcher's memory.
 */
static int write_txn(struct exec *e, apply_fn apply, struct svc_req *const *reqs, uint32_t n,
		     bool with_deferred, mono_ns t0)
{
	int ret = store_begin(e->st);

	if (ret < 0)
		return ret;
	dispatch_txn_begin(e->d);
	for (uint32_t i = 0; ret == 0 && i < n; i++)
		ret = apply(e, reqs[i], t0);
	if (ret == 0) {
		mono_ns commit_at = mono_now();

		ret = with_deferred ? deferred_and_commit(e) : store_commit(e->st);
		e->txn_commit_ns = mono_now() - commit_at;
	} else {
		store_rollback(e->st);
	}
	dispatch_txn_end(e->d, ret == 0);
	if (ret == 0) {
		svc_ctr_add(&e->cfg.stats->ctr, SVC_commits, 1);
		e->release_more = true; /* (it may have deleted a big file) */
	}
	return ret;
}

/* A request made again from the start: nothing of its last attempt stays in its reply. */
static void req_reset(struct svc_req *r)
{
	reply_clear_tail(&r->reply);
	r->reply.status = 0;
	r->reply.fixed_len = 0;
	r->nchanges = 0;
	r->changes_overflow = false;
}

/*
 * A transaction of several requests, or of requests and deferred work, was
 * refused (store_refusal: more than the log region or the device can
 * take).  Each request goes again in a transaction of its own: the one
 * that asks too much gets the refusal as its answer and the rest commit;
 * then the deferred work alone, left to a later purge if it is what does
 * not fit.  Returns only what stops the service.
 */
static int one_by_one(struct exec *e, apply_fn apply, struct svc_req *const *reqs, uint32_t n,
		      mono_ns t0)
{
	uint32_t refused = 0;
	int ret;

	for (uint32_t i = 0; i < n; i++) {
		req_reset(reqs[i]);
		ret = write_txn(e, apply, &reqs[i], 1, false, t0);
		if (ret < 0 && !store_refusal(ret))
			return ret;
		if (ret < 0) {
			req_reset(reqs[i]);
			reqs[i]->reply.status = (uint32_t)-ret;
			refused++;
		}
	}
	ret = write_txn(e, apply, NULL, 0, true, t0);
	if (store_refusal(ret)) {
		dispatch_drop_deferred(e->d);
		refused++;
		ret = 0;
	}
	svc_ctr_add(&e->cfg.stats->ctr, SVC_refused, refused);
	if (refused > 0)
		log_warn(SUB, "executor: a batch of %u requests and deferred work was more than the "
			 "store can take in one transaction: %u parts refused, the rest committed",
			 n, refused);
	return ret;
}

int exec_create(const struct exec_config *cfg, struct exec **out)
{
	struct exec *e = calloc(1, sizeof(*e));
	int ret;

	*out = NULL;
	if (e == NULL)
		return -ENOMEM;
	e->cfg = *cfg;
	e->st = cfg->store;
	e->release_more = true; /* what an earlier server left half-released goes on */
	e->release_chunks = 16; /* (grown to FS_RELEASE_STEP_CHUNKS while steps are quick) */
	/*
	 * (Recovery is the store's open; the files an earlier server left open
	 * wait for their mounts' HOLDS until the grace's PURGE.)
	 */
	ret = dispatch_open(e->st, cfg, &e->d);
	if (ret < 0) {
		log_err(SUB, "executor: setting up the filesystem failed: %s", errstr(ret));
		exec_destroy(e);
		return ret;
	}
	*out = e;
	return 0;
}

void exec_destroy(struct exec *e)
{
	if (e == NULL)
		return;
	dispatch_close(e->d);
	free(e);
}

int exec_reads(struct exec *e, struct svc_req *const *reqs, uint32_t n, bool *release)
{
	mono_ns t0 = mono_now();
	int failed = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct svc_req *r = reqs[i];
		int ret;

		if (r->kind == SVC_REQ_HOLDS) {
			dispatch_holds(e->d, r->rid, (const struct rpc_hold *)r->payload,
				       r->payload_len / (uint32_t)sizeof(struct rpc_hold));
			continue;
		}
		ret = apply_timed(e, r, t0);
		if (ret < 0)
			reply_clear_tail(&r->reply);
		/* (the device failed a read: not the request's answer, and the rest waits) */
		if (ret == -EIO && store_read_failed(e->st)) {
			failed = ret;
			break;
		}
	}
	*release = failed == 0 && lease_holds(e);
	if (failed < 0)
		log_err(SUB, "executor: the store could not be read (%s); the service stops and "
			"the reads of the batch are not answered", errstr(failed));
	return failed;
}

int exec_writes(struct exec *e, struct svc_req *const *reqs, uint32_t n, bool *release)
{
	mono_ns t0 = mono_now();
	int ret;

	*release = false;
	if (n == 0)
		return 0;
	ret = write_txn(e, apply_in_savepoint, reqs, n, true, t0);
	if (store_refusal(ret))
		ret = one_by_one(e, apply_in_savepoint, reqs, n, t0);
	if (ret < 0) {
		log_err(SUB, "executor: a batch of %u writes failed to commit (%s); the service stops "
			"and none of them is answered", n, errstr(ret));
		return ret;
	}
	e->last_writes = n;
	e->last_commit_ns = mono_now() - t0;
	svc_ctr_add(&e->cfg.stats->ctr, SVC_committed_requests, n);
	svc_ctr_add(&e->cfg.stats->ctr, SVC_commit_us, (uint64_t)e->last_commit_ns / 1000);
	count_commit(e, reqs, n, e->txn_commit_ns);
	*release = lease_holds(e);
	return 0;
}

/* One mark in its own savepoint.  0, or the transaction is lost. */
static int mark_in_savepoint(struct exec *e, struct svc_req *r, mono_ns stage_start)
{
	int ret = store_op_begin(e->st);

	(void)stage_start;
	if (ret < 0)
		return ret;
	if (r->kind == SVC_REQ_PURGE)
		svc_ctr_add(&e->cfg.stats->ctr, SVC_purges, 1);
	if (r->kind == SVC_REQ_GONE) {
		ret = dispatch_gone(e->d, r->rid, r->fenced, r->bye);
		if (ret > 0 || (ret == 0 && r->fenced)) {
			svc_ctr_add(&e->cfg.stats->ctr, SVC_gone_mounts, 1);
			svc_ctr_add(&e->cfg.stats->ctr, SVC_gone_locks, (uint64_t)ret);
			log_info(SUB, "mount %016" PRIx64 " was away past its grace%s: it is gone, and "
				 "its %d locks go to others", r->rid, r->fenced ? " and is fenced" : "",
				 ret);
		}
		return savepoint_end(e, MIN(ret, 0));
	}
	return savepoint_end(e, dispatch_purge(e->d));
}

bool exec_mount_was_gone(struct exec *e, uint64_t rid)
{
	return dispatch_was_gone(e->d, rid);
}

bool exec_mount_holds(struct exec *e, uint64_t rid)
{
	return dispatch_mount_holds(e->d, rid);
}

int exec_lock_holders(struct exec *e, uint64_t **rids, uint32_t *n)
{
	return dispatch_lock_holders(e->d, rids, n);
}

int exec_mount_who(struct exec *e, uint64_t rid, struct svc_mount_id *who)
{
	return dispatch_mount_who(e->d, rid, who);
}

void exec_lock_gauges(struct exec *e)
{
	uint64_t held, waiters;

	dispatch_lock_gauges(e->d, &held, &waiters);
	svc_ctr_set(&e->cfg.stats->ctr, SVC_locks_held, held);
	svc_ctr_set(&e->cfg.stats->ctr, SVC_lock_waiters, waiters);
}

uint32_t exec_lock_wakes(struct exec *e, struct svc_lock_wake *out, uint32_t max, bool discard)
{
	return dispatch_lock_wakes(e->d, out, max, discard);
}

int exec_marks(struct exec *e, struct svc_req *const *reqs, uint32_t n)
{
	int ret;

	if (n == 0 && !dispatch_must_write(e->d))
		return 0;
	/* what they free, and orphans released by reads, go now, in a commit of their own */
	ret = write_txn(e, mark_in_savepoint, reqs, n, true, mono_now());
	if (store_refusal(ret))
		ret = one_by_one(e, mark_in_savepoint, reqs, n, mono_now());
	if (ret < 0)
		log_err(SUB, "executor: releasing what gone mounts held failed to commit (%s); the "
			"service stops", errstr(ret));
	return ret;
}

/* ---- releasing deleted files' data ---- */

bool exec_release_due(const struct exec *e, bool idle, mono_ns now)
{
	return e->release_more && (idle || now >= e->release_next);
}

int exec_release(struct exec *e)
{
	mono_ns t0 = mono_now(), took;
	int ret = dispatch_release_pending(e->d), n;

	e->release_next = mono_now() + EXEC_RELEASE_EVERY_NS;
	if (ret <= 0) {
		e->release_more = false;
		return ret;
	}
	ret = store_begin(e->st);
	if (ret < 0)
		return ret;
	ret = store_op_begin(e->st);
	n = ret < 0 ? ret : dispatch_release(e->d, e->release_chunks);
	if (ret == 0)
		ret = savepoint_end(e, MIN(n, 0));
	if (ret == 0 && n < 0)
		ret = n;
	if (ret == 0)
		ret = store_commit(e->st);
	else
		store_rollback(e->st);
	if (store_refusal(ret)) {
		/* a smaller step next time; at one chunk, wait for the next commit */
		if (e->release_chunks == 1)
			e->release_more = false;
		e->release_chunks = MAX(e->release_chunks / 2, 1u);
		log_warn(SUB, "executor: releasing deleted files' data was refused (%s); steps of %u "
			 "chunks now", errstr(ret), e->release_chunks);
		return 0;
	}
	if (ret < 0) {
		log_err(SUB, "executor: releasing deleted files' data failed to commit (%s); the "
			"service stops", errstr(ret));
		return ret;
	}
	svc_ctr_add(&e->cfg.stats->ctr, SVC_commits, 1);
	svc_ctr_add(&e->cfg.stats->ctr, SVC_released_chunks, (uint64_t)n);
	/* a step is what keeps every other request waiting: about EXEC_RELEASE_STEP_NS each */
	took = mono_now() - t0;
	if (took > EXEC_RELEASE_STEP_NS * 3 / 2 && e->release_chunks > 8) {
		e->release_chunks /= 2;
		e->release_quick = 0;
	} else if (took < EXEC_RELEASE_STEP_NS / 3 && (uint32_t)n == e->release_chunks &&
		   ++e->release_quick >= 16 && e->release_chunks < FS_RELEASE_STEP_CHUNKS) {
		e->release_chunks *= 2; /* (only after many quick ones: some steps are slower) */
		e->release_quick = 0;
	}
	return 0;
}
