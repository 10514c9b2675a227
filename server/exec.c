/*
 * exec.c - the executor: what the service's thread does with the requests
 * it has read (net.c runs a batch after each round of reading).
 *
 * It takes every request queued so far (up to BATCH_MAX, and at most the
 * store's batch size in bytes) and applies them:
 *  - the reads first, without a transaction, against the committed state,
 *    answered at once (every request of a batch was outstanding at the
 *    same time, so reads first is as good a linearization as any);
 *  - then the writes, in arrival order, as one transaction, each in its
 *    own savepoint (a failed one changes nothing, the others go on), then
 *    one commit - the term gate, one WAL append, one flush - and only then
 *    their replies, so nobody ever sees a change that is not durable.
 * So concurrent requests from all clients share one commit (group commit).
 *
 * The lease is checked before a batch runs and again before its replies
 * are released; without it nothing is answered (the quorum agent stops the
 * service shortly).  A commit that fails - fenced by the term gate, or the
 * device - releases no reply of its batch and ends the service: the
 * lifecycle closes every connection, so no client takes a reply that was
 * never made durable for a success.
 */
#include "server/service.h"

#include "common/common.h"
#include "server/store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

static const char *const SUB = "server";

#define BATCH_MAX 512

struct item {
	struct svc_req *r;
	struct svc_reply reply;
};

/* Release (or drop, when ok is false) the replies of a batch, and free it. */
static void finish(struct svc *s, struct item *items, uint32_t n, bool ok)
{
	for (uint32_t i = 0; i < n; i++) {
		struct svc_req *r = items[i].r;

		if (!r->conn_closed)
			net_reply(s, r->conn, r, ok ? &items[i].reply : NULL);
		net_conn_put(s, r->conn);
		free(items[i].reply.tail);
		items[i].reply.tail = NULL;
		free(r->payload);
		free(r);
	}
}

/* Apply one request; in a writing batch inside its own savepoint. 0 or the batch is lost. */
static int apply(struct store *st, struct dispatch *d, bool writes, struct item *it)
{
	int ret, rc;

	memset(&it->reply, 0, sizeof(it->reply));
	if (writes) {
		ret = store_op_begin(st);
		if (ret < 0)
			return ret;
	}
	if (it->r->conn_closed)
		rc = dispatch_conn_closed(d, it->r->conn);
	else
		rc = dispatch_apply(d, it->r, &it->reply);
	if (rc < 0 && it->reply.status == 0)
		it->reply.status = (uint32_t)-rc;
	if (rc < 0) {
		free(it->reply.tail);
		it->reply.tail = NULL;
		it->reply.tail_len = 0;
	}
	if (!writes)
		return 0;
	store_op_end(st, rc);
	return store_batch_intact(st) ? 0 : -EIO;
}

/*
 * The end of a writing batch: the deferred writes (in their own savepoint:
 * if they fail, the batch still commits without them), then the commit.
 * On an error the batch is rolled back.
 */
static int deferred_and_commit(struct store *st, struct dispatch *d)
{
	int ret = store_op_begin(st);

	if (ret == 0) {
		store_op_end(st, dispatch_flush_deferred(d));
		if (!store_batch_intact(st))
			ret = -EIO;
	}
	if (ret < 0) {
		store_rollback(st);
		return ret;
	}
	return store_commit(st);
}

struct exec {
	struct svc *svc;
	struct store *st;
	struct dispatch *d;
	struct item items[BATCH_MAX];   /* a batch's reads */
	struct item witems[BATCH_MAX];  /* and its writes */
	struct item citems[BATCH_MAX];  /* connections closed, behind their requests */
	uint32_t last_writes;           /* writes the last commit carried */
	mono_ns last_commit_ns;         /* and how long it took */
};

#define LINGER_MAX_NS (500 * 1000)

mono_ns exec_linger_ns(struct exec *e)
{
	if (e->last_writes < 2)
		return 0;
	return MIN(e->last_commit_ns / 2, (mono_ns)LINGER_MAX_NS);
}

int exec_create(struct svc *s, struct exec **out)
{
	struct exec *e = calloc(1, sizeof(*e));
	int ret;

	*out = NULL;
	if (e == NULL)
		return -ENOMEM;
	e->svc = s;
	e->st = svc_store(s);
	e->d = svc_dispatch(s);
	/* recovery: what the previous server left behind */
	ret = store_begin(e->st);
	if (ret == 0) {
		ret = dispatch_start(e->d);
		if (ret == 0)
			ret = store_commit(e->st);
		else
			store_rollback(e->st);
	}
	if (ret < 0) {
		log_err(SUB, "executor: recovering the store failed: %s", errstr(ret));
		free(e);
		return ret;
	}
	*out = e;
	return 0;
}

void exec_destroy(struct exec *e)
{
	free(e);
}

int exec_batch(struct exec *e)
{
	struct svc *s = e->svc;
	struct store *st = e->st;
	struct dispatch *d = e->d;
	struct item *reads = e->items, *writes = e->witems, *closes = e->citems;
	struct svc_req *list = svc_take(s, BATCH_MAX, store_batch_bytes(st));
	uint32_t nr = 0, nw = 0, nc = 0;
	bool ok;
	int ret = 0;

	if (list == NULL)
		return 0;
	for (struct svc_req *r = list, *next; r != NULL; r = next) {
		next = r->next;
		if (r->conn_closed)
			closes[nc++] = (struct item){ .r = r };
		else if (dispatch_writes(d, r))
			writes[nw++] = (struct item){ .r = r };
		else
			reads[nr++] = (struct item){ .r = r };
	}
	/*
	 * Every request of a batch was outstanding at once, so any order of
	 * them is a linearization: the reads go first, against the committed
	 * state, and are answered at once; they never wait for the commit.
	 */
	ok = svc_may_serve(s);
	for (uint32_t i = 0; ok && i < nr; i++)
		apply(st, d, false, &reads[i]);
	finish(s, reads, nr, ok && svc_may_serve(s));
	if (nw > 0) {
		mono_ns t0 = mono_now();

		if (ok)
			ret = store_begin(st);
		for (uint32_t i = 0; ok && ret == 0 && i < nw; i++)
			ret = apply(st, d, true, &writes[i]);
		if (ok && ret == 0)
			ret = deferred_and_commit(st, d);
		else if (ret < 0)
			store_rollback(st);
		if (ret == 0 && ok) {
			svc_count(s, SVC_commits, 1);
			svc_count(s, SVC_committed_requests, nw);
			e->last_writes = nw;
			e->last_commit_ns = mono_now() - t0;
			svc_count(s, SVC_commit_us, (uint64_t)e->last_commit_ns / 1000);
		}
		finish(s, writes, nw, ok && ret == 0 && svc_may_serve(s));
	}
	/*
	 * A closed connection's handles go after everything it sent, the
	 * batch's opens and creates included (its marker was queued behind
	 * them): what it held open is released, and nothing is left naming it.
	 */
	for (uint32_t i = 0; i < nc; i++)
		apply(st, d, false, &closes[i]);
	finish(s, closes, nc, false);
	svc_count(s, SVC_batches, 1);
	svc_count_max(s, SVC_batch_requests_max, nr + nw);
	/* orphans released by reads and closes go now, in their own commit */
	if (ret == 0 && ok && dispatch_must_write(d)) {
		ret = store_begin(st);
		if (ret == 0)
			ret = deferred_and_commit(st, d);
	}
	if (ret < 0)
		log_err(SUB, "executor: a batch of %u writes failed to commit (%s); the service "
			"stops and none of them is answered", nw, errstr(ret));
	return ret;
}
