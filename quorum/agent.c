/*
 * agent.c - the quorum agent: one thread with its own io_uring that drives
 * the pure election state machine (election.c) in a mount.
 *
 * The ring always holds: a RECVMSG on the slot's UDP socket, a READ on an
 * eventfd through which other threads hand in commands (server fenced or
 * down, heartbeat timeout changed, shutdown), and a TIMEOUT at the
 * machine's next deadline (moved with TIMEOUT_UPDATE) on CLOCK_BOOTTIME,
 * the clock mono_now() reads.  The machine's
 * actions add SENDMSGs (all of one step's sends go out in one submit) and
 * the read-modify-write of our own quorum block: an O_DIRECT READ, checks,
 * then a WRITE with RWF_DSYNC; only when the write completes is the machine
 * told the persist is done.  The thread blocks nowhere but in
 * io_uring_submit_and_wait.  The server starts and stops on its own thread
 * (server/), through quorum_server_ops, so heartbeats keep flowing while a
 * new server fences.
 *
 * Every step publishes a snapshot (state, counters, last messages, the
 * heartbeat delay table) under snap_lock for the status xattrs.
 */
#include "quorum/agent.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/sockaddr.h"
#include "common/prng.h"
#include "quorum/glue.h"
#include "common/thread.h"

#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING_ENTRIES 128
#define SEND_POOL 64
#define CMD_MAX 32
#define RECV_BYTES 128
/* the quorum socket's receive buffer: some 4,000 datagrams in flight (kernel accounting) */
#define QUORUM_RCVBUF_BYTES (4 << 20)
#define READY_TIMEOUT_MS 30000


enum ctx_kind {
	CTX_RECV, CTX_SEND, CTX_TIMEOUT, CTX_TIMEOUT_UPDATE, CTX_EVENTFD, CTX_BLOCK, CTX_CANCEL,
};

struct io_ctx {
	enum ctx_kind kind;
	bool pending; /* an SQE is out and its CQE has not come back */
};

/*
 * One transfer of our quorum block.  Its buffer and aio belong to the
 * device from submission to completion.  A transfer we gave up on
 * (abandoned: no answer within blk_timeout_ns) keeps them until its
 * completion comes back, and until then every persist fails at once with
 * -EBUSY: a write issued meanwhile could land before the abandoned one,
 * which would then put an older block back.
 */
struct blk_req {
	struct io_ctx io;
	struct bd_aio aio;
	void *buf;
	bool abandoned;
	mono_ns deadline; /* when we give up on it */
};

struct send_ctx {
	struct io_ctx io;
	uint8_t type;
	struct msghdr mh;
	struct iovec iov;
	struct sockaddr_storage ss;
	uint8_t buf[QUORUM_MSG_WIRE_BYTES];
};

enum cmd_type { CMD_FENCED, CMD_DOWN, CMD_SET_HB, CMD_SHUTDOWN };

struct cmd {
	enum cmd_type type;
	uint64_t term;
	int res;
	uint32_t ms;
};

struct quorum_agent {
	struct quorum_agent_config cfg;
	struct bd_super super;
	pthread_t thread;
	bool thread_started;
	struct io_uring ring;
	bool ring_ready;
	int efd;
	int inflight;
	atomic_bool exit_now; /* set by the stopping thread, read by ours */

	struct quorum_state st;
	struct quorum_input start_in; /* what the blocks said, read before the thread */
	struct quorum_glue glue;      /* blocks <-> the election (quorum/glue.c) */
	bool reserve_wanted;          /* our sequence numbers run low: write the block soon */
	struct quorum_codec codec;
	bool codec_ready;
	uint64_t rng;
	mono_ns deadline;

	/* standing operations */
	struct io_ctx recv_io;
	struct msghdr recv_mh;
	struct iovec recv_iov;
	struct sockaddr_storage recv_ss;
	uint8_t recv_buf[RECV_BYTES];
	struct io_ctx efd_io;
	uint64_t efd_val;
	struct io_ctx to_io;
	struct io_ctx to_upd_io;
	struct __kernel_timespec to_ts;
	mono_ns to_at; /* the deadline the armed TIMEOUT is set for */
	struct io_ctx cancel_io;

	struct send_ctx sends[SEND_POOL];

	/* the one quorum block read-modify-write in flight */
	struct blk_req blk;
	struct blk_req *blk_cur;      /* the transfer of the persist in flight, NULL: none */
	struct quorum_action persist;
	struct bd_qblock persist_qb;  /* the block being written */
	const char *io_what;          /* "reading" or "writing": what failed last */
	int io_err;                   /* ... and how */

	/*
	 * Commands from other threads.  Server reports queue in order (at most
	 * two per term are ever outstanding); a heartbeat timeout change and
	 * shutdown are single slots that coalesce, so nothing is ever dropped.
	 */
	pthread_mutex_t cmd_lock;
	struct cmd cmds[CMD_MAX];
	int ncmds;
	bool set_hb_pending;
	uint32_t set_hb_ms;
	bool shutdown_pending;

	/* the snapshot for status, and start/stop handshakes */
	pthread_mutex_t snap_lock;
	pthread_cond_t snap_cond;
	struct quorum_snapshot snap;
	bool begun;      /* our BEGIN is durable, or cannot be (begin_res says which) */
	int begin_res;
	bool finished;

	/* heartbeat delay recording (the seed's record_hb_delay) */
	mono_ns hb_prev;
	int hb_seen;
	int hb_role;
};

static const char *const SUB = "quorum";

/* ---- small helpers ---- */

static uint32_t agent_random(struct quorum_agent *a)
{
	return (uint32_t)prng_next(&a->rng);
}

static void ctr_add(struct quorum_agent *a, enum quorum_agent_counter c, uint64_t n)
{
	pthread_mutex_lock(&a->snap_lock);
	a->snap.ctr[c] += n;
	pthread_mutex_unlock(&a->snap_lock);
}

static struct io_uring_sqe *get_sqe(struct quorum_agent *a)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);

	if (sqe == NULL) {
		io_uring_submit(&a->ring);
		sqe = io_uring_get_sqe(&a->ring);
	}
	return sqe;
}

static void ctx_pending(struct quorum_agent *a, struct io_ctx *ctx)
{
	ctx->pending = true;
	a->inflight++;
}

static void sqe_ctx(struct quorum_agent *a, struct io_uring_sqe *sqe, struct io_ctx *ctx)
{
	io_uring_sqe_set_data(sqe, ctx);
	ctx_pending(a, ctx);
}

/* How long one transfer of our block may take before we give up on it. */
static int64_t blk_timeout_ns(const struct quorum_agent *a)
{
	return MAX((int64_t)2 * a->st.cfg.hb_timeout_ms, (int64_t)1000) * NSEC_PER_MSEC;
}

/* The request, if no transfer of it is out (an abandoned one may be), or NULL. */
static struct blk_req *blk_get(struct quorum_agent *a)
{
	return a->blk.io.pending ? NULL : &a->blk;
}

/* Queue a transfer of our quorum block from or into r->buf on the ring. */
static int blk_submit(struct quorum_agent *a, struct blk_req *r, enum bd_aio_op op)
{
	int ret;

	r->aio = (struct bd_aio){
		.op = op, .blkno = bd_quorum_blkno(a->cfg.slot), .nr_blocks = 1,
		.flags = op == BD_AIO_WRITE ? BD_WRITE_DURABLE : 0, .buf = r->buf,
	};
	ret = bd_aio_prep(a->cfg.dev, &a->ring, &r->aio, &r->io);
	if (ret < 0)
		return ret;
	r->io.kind = CTX_BLOCK;
	r->abandoned = false;
	r->deadline = mono_now() + blk_timeout_ns(a);
	ctx_pending(a, &r->io);
	a->blk_cur = r;
	return 0;
}

static void publish(struct quorum_agent *a)
{
	pthread_mutex_lock(&a->snap_lock);
	a->snap.st = a->st;
	a->snap.taken = mono_now();
	memcpy(a->snap.invalid, a->codec.invalid, sizeof(a->snap.invalid));
	pthread_mutex_unlock(&a->snap_lock);
}

static enum quorum_agent_counter send_counter(uint8_t type)
{
	static const enum quorum_agent_counter map[QMSG_TYPE_END] = {
		[QMSG_REQUEST_VOTE] = QCTR_send_request_vote, [QMSG_VOTE] = QCTR_send_vote,
		[QMSG_HEARTBEAT] = QCTR_send_heartbeat, [QMSG_RESIGNATION] = QCTR_send_resignation,
		[QMSG_PRE_VOTE] = QCTR_send_pre_vote, [QMSG_PRE_VOTE_REPLY] = QCTR_send_pre_vote_reply,
		[QMSG_HEARTBEAT_ACK] = QCTR_send_heartbeat_ack,
	};

	return map[type];
}

static enum quorum_agent_counter recv_counter(uint8_t type)
{
	return (enum quorum_agent_counter)(send_counter(type) + QCTR_recv_request_vote -
					   QCTR_send_request_vote);
}

/*
 * The seed's heartbeat delay table: the seconds between back-to-back
 * heartbeats sent (leader) or received (follower); anything else resets it.
 */
static void record_hb(struct quorum_agent *a, bool heartbeat)
{
	mono_ns now = mono_now();
	int64_t secs;

	if (!heartbeat || a->hb_role != (int)a->st.role) {
		a->hb_seen = heartbeat ? 1 : 0;
		a->hb_prev = now;
		a->hb_role = (int)a->st.role;
		return;
	}
	if (a->hb_seen++ == 0) {
		a->hb_prev = now;
		return;
	}
	secs = (now - a->hb_prev) / NSEC_PER_SEC;
	a->hb_prev = now;
	if (secs <= 0 || secs >= QUORUM_HB_DELAY_NR)
		return;
	pthread_mutex_lock(&a->snap_lock);
	a->snap.hb_delay_count[secs]++;
	a->snap.hb_delay_recent[secs] = now;
	if (secs > a->snap.hb_delay_max) {
		a->snap.hb_delay_max = (int)secs;
		if (secs >= 3)
			log_info(SUB, "longest heartbeat %s delay so far: %" PRId64 " s",
				 a->st.role == QROLE_LEADER ? "send" : "receive", secs);
	}
	pthread_mutex_unlock(&a->snap_lock);
}

/* ---- the machine ---- */

static void apply_actions(struct quorum_agent *a, const struct quorum_actions *out);

static void agent_step(struct quorum_agent *a, struct quorum_input *in)
{
	struct quorum_actions out;

	in->random = agent_random(a);
	quorum_step(&a->st, in, mono_now(), &out);
	a->deadline = out.deadline;
	ctr_add(a, QCTR_steps, 1);
	apply_actions(a, &out);
	publish(a);
	if (a->reserve_wanted) {
		struct quorum_input more = { .type = QIN_RESERVE };

		a->reserve_wanted = false;
		agent_step(a, &more);
	}
}

/* ---- sends ---- */

static void send_one(struct quorum_agent *a, int to, const struct quorum_msg *m)
{
	struct send_ctx *sc = NULL;
	struct io_uring_sqe *sqe;
	struct quorum_msg msg = *m;
	socklen_t sslen;

	msg.to = (uint8_t)to;
	for (int i = 0; i < SEND_POOL; i++)
		if (!a->sends[i].io.pending) {
			sc = &a->sends[i];
			break;
		}
	if (sc == NULL) {
		ctr_add(a, QCTR_send_pool_exhausted, 1);
		if (m->type == QMSG_HEARTBEAT)
			ctr_add(a, QCTR_heartbeat_sends_dropped, 1);
		return;
	}
	if (quorum_msg_encode(&a->codec, &msg, sc->buf, sizeof(sc->buf)) < 0 ||
	    bd_addr_to_sockaddr(&a->super.slots[to], &sc->ss, &sslen) < 0) {
		ctr_add(a, QCTR_send_error, 1);
		a->reserve_wanted |= a->codec.tx_seq >= a->codec.tx_limit;
		return;
	}
	if (quorum_glue_seq_low(&a->glue, a->codec.tx_seq))
		a->reserve_wanted = true;
	sqe = get_sqe(a);
	if (sqe == NULL) {
		ctr_add(a, QCTR_send_error, 1);
		return;
	}
	sc->io.kind = CTX_SEND;
	sc->type = msg.type;
	sc->iov.iov_base = sc->buf;
	sc->iov.iov_len = sizeof(sc->buf);
	memset(&sc->mh, 0, sizeof(sc->mh));
	sc->mh.msg_name = &sc->ss;
	sc->mh.msg_namelen = sslen;
	sc->mh.msg_iov = &sc->iov;
	sc->mh.msg_iovlen = 1;
	io_uring_prep_sendmsg(sqe, a->cfg.udp_fd, &sc->mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	sqe_ctx(a, sqe, &sc->io);

	pthread_mutex_lock(&a->snap_lock);
	a->snap.ctr[send_counter(msg.type)]++;
	a->snap.last_send[to] = (struct quorum_last_msg){ msg.type, msg.term, mono_now() };
	pthread_mutex_unlock(&a->snap_lock);
}

static void on_send_done(struct quorum_agent *a, struct send_ctx *sc, int res)
{
	if (res != (int)sizeof(sc->buf)) {
		ctr_add(a, QCTR_send_error, 1);
		if (sc->type == QMSG_HEARTBEAT)
			ctr_add(a, QCTR_heartbeat_sends_dropped, 1);
	}
}

/* ---- our quorum block: read, check, modify, write durably ---- */

static void persist_finish(struct quorum_agent *a, int res)
{
	struct quorum_input in = { .type = QIN_PERSIST_DONE };
	bool begin = a->persist.events & (1u << FUSEFS_QEV_BEGIN);

	a->blk_cur = NULL;
	if (res < 0) {
		a->io_err = res;
		ctr_add(a, QCTR_block_io_errors, 1);
	}
	/* start-up waits for BEGIN durable; a transient failure is retried meanwhile */
	if (begin && (res == 0 || quorum_error_is_permanent(res))) {
		pthread_mutex_lock(&a->snap_lock);
		a->begun = true;
		a->begin_res = res;
		pthread_cond_broadcast(&a->snap_cond);
		pthread_mutex_unlock(&a->snap_lock);
	}
	/* number nothing above what is reserved on disk */
	quorum_codec_set_limit(&a->codec, a->glue.seq_reserved);
	in.persist.res = res;
	agent_step(a, &in);
}

static void persist_fail(struct quorum_agent *a, const char *what, int res)
{
	a->io_what = what;
	persist_finish(a, res);
}

static void persist_start(struct quorum_agent *a, const struct quorum_action *act)
{
	struct blk_req *r = blk_get(a);
	int ret;

	a->persist = *act;
	ret = r != NULL ? blk_submit(a, r, BD_AIO_READ) : -EBUSY;
	if (ret < 0)
		persist_fail(a, r != NULL ? "queueing a read of" : "waiting for an earlier transfer of",
			     ret);
}

static void on_block_read(struct quorum_agent *a, struct blk_req *r, int res)
{
	const struct quorum_action *p = &a->persist;
	struct bd_qblock *qb = &a->persist_qb;
	uint64_t sec;
	uint32_t nsec;
	char why[200];
	bool readable;
	int ret;

	ret = bd_aio_finish(a->cfg.dev, &r->aio, res);
	ctr_add(a, QCTR_block_reads, 1);
	if (ret < 0) {
		persist_fail(a, "reading", ret);
		return;
	}
	readable = bd_qblock_decode(r->buf, a->super.fsid, bd_quorum_blkno(a->cfg.slot), qb, why,
				    sizeof(why)) == 0;
	wall_now(&sec, &nsec);
	ret = quorum_glue_persist(&a->glue, p, sec, nsec, readable, qb);
	if (ret == -EEXIST) {
		log_err(SUB, "slot %d: quorum block BEGIN rid changed to %016" PRIx64
			" (expected %016" PRIx64 "): another mount is using quorum slot %d",
			a->cfg.slot, qb->ev[FUSEFS_QEV_BEGIN].rid,
			quorum_glue_expected_begin_rid(&a->glue, p), a->cfg.slot);
		persist_fail(a, "checking", ret);
		return;
	}
	if (ret < 0) {
		persist_fail(a, "repairing", ret);
		return;
	}
	if (ret == QGLUE_UNCHANGED) {
		persist_finish(a, 0);
		return;
	}
	if (ret == QGLUE_REPAIR) {
		log_warn(SUB, "slot %d: our quorum block failed verification (%s); rewriting it "
			 "whole from what this mount last wrote", a->cfg.slot, why);
		ctr_add(a, QCTR_block_repairs, 1);
	}
	bd_qblock_encode(qb, a->super.fsid, bd_quorum_blkno(a->cfg.slot), r->buf);
	ret = blk_submit(a, r, BD_AIO_WRITE);
	if (ret < 0)
		persist_fail(a, "queueing a write of", ret);
}

static void on_block_written(struct quorum_agent *a, struct blk_req *r, int res)
{
	int ret = bd_aio_finish(a->cfg.dev, &r->aio, res);

	if (ret < 0) {
		persist_fail(a, "writing", ret);
		return;
	}
	ctr_add(a, QCTR_block_writes, 1);
	quorum_glue_written(&a->glue, &a->persist_qb);
	persist_finish(a, 0);
}

static void on_block_done(struct quorum_agent *a, struct blk_req *r, int res)
{
	if (r->abandoned || r != a->blk_cur)
		return; /* we gave up on it already: its buffer is free again, nothing else */
	if (r->aio.op == BD_AIO_READ)
		on_block_read(a, r, res);
	else
		on_block_written(a, r, res);
}

/* A transfer past its deadline: give up on it, as a failed write. */
static void check_block_timeout(struct quorum_agent *a)
{
	struct blk_req *r = a->blk_cur;

	if (r == NULL || mono_now() < r->deadline)
		return;
	r->abandoned = true;
	ctr_add(a, QCTR_block_io_timeouts, 1);
	persist_fail(a, r->aio.op == BD_AIO_READ ? "reading" : "writing", -ETIMEDOUT);
}

/* ---- actions ---- */

static void log_note(struct quorum_agent *a, const struct quorum_action *act)
{
	const struct quorum_state *st = &a->st;

	switch (act->note) {
	case QNOTE_PREVOTE: /* every election timeout while cut off: too chatty for info */
	case QNOTE_HB_TIMEOUT_SET:
		log_debug(SUB, "slot %d term %" PRIu64 ": %s (%" PRId64 ")", a->cfg.slot, st->term,
			  quorum_note_text(act->note), act->a);
		break;
	case QNOTE_ELECTED:
		log_info(SUB, "slot %d: elected leader in term %" PRId64 " with %" PRId64 " votes",
			 a->cfg.slot, act->a, act->b);
		break;
	case QNOTE_GREATER_TERM:
		log_info(SUB, "slot %d: term %" PRId64 " from slot %" PRId64 ", now %s", a->cfg.slot,
			 act->a, act->b, quorum_role_name(st->role));
		break;
	case QNOTE_VOTED:
		log_info(SUB, "slot %d: voted for slot %" PRId64 " in term %" PRId64, a->cfg.slot,
			 act->b, act->a);
		break;
	case QNOTE_SERVER_DOWN:
		log_info(SUB, "slot %d: server of term %" PRId64 " stopped%s%s", a->cfg.slot, act->a,
			 act->b ? ": " : "", act->b ? errstr((int)act->b) : "");
		break;
	case QNOTE_PERSIST_FAILED: /* QACT_FAILED says it */
		log_debug(SUB, "slot %d: %s: %s", a->cfg.slot, quorum_note_text(act->note),
			  errstr((int)act->a));
		break;
	case QNOTE_DEVICE_FAILED:
		if (act->a == -ETIMEDOUT)
			log_err(SUB, "slot %d: %s our quorum block (blkno %" PRIu64 ") got no answer "
				"within %" PRId64 " ms; out of elections, retrying every %" PRId64
				"..%d ms until the device answers", a->cfg.slot,
				a->io_what ? a->io_what : "writing", bd_quorum_blkno(a->cfg.slot),
				blk_timeout_ns(a) / NSEC_PER_MSEC, act->b, QUORUM_DEV_RETRY_MAX_MS);
		else
			log_err(SUB, "slot %d: %s our quorum block (blkno %" PRIu64 ") failed: %s; out "
				"of elections, retrying every %" PRId64 "..%d ms until the device answers",
				a->cfg.slot, a->io_what ? a->io_what : "writing",
				bd_quorum_blkno(a->cfg.slot), errstr((int)act->a), act->b,
				QUORUM_DEV_RETRY_MAX_MS);
		break;
	case QNOTE_DEVICE_OK:
		log_info(SUB, "slot %d: our quorum block is written again after %" PRId64 " ms and %"
			 PRId64 " failed attempts; back in elections", a->cfg.slot, act->a, act->b);
		break;
	default:
		log_info(SUB, "slot %d term %" PRIu64 ": %s", a->cfg.slot, st->term,
			 quorum_note_text(act->note));
		break;
	}
}

static void apply_actions(struct quorum_agent *a, const struct quorum_actions *out)
{
	for (int k = 0; k < out->count; k++) {
		const struct quorum_action *act = &out->act[k];

		switch (act->type) {
		case QACT_PERSIST:
			persist_start(a, act);
			break;
		case QACT_SEND:
			for (int to = 0; to < FUSEFS_QUORUM_MAX_SLOTS; to++) {
				if (to == a->cfg.slot || !bd_slot_present(&a->super, to) ||
				    (act->to != QSEND_ALL && act->to != to))
					continue;
				send_one(a, to, &act->msg);
			}
			if (act->msg.type == QMSG_HEARTBEAT)
				record_hb(a, true);
			break;
		case QACT_START_SERVER:
			log_info(SUB, "slot %d: starting server for term %" PRIu64
				 ": fencing earlier leaders", a->cfg.slot, act->term);
			a->cfg.server.start(a->cfg.server.arg, a, act->term);
			break;
		case QACT_SERVE:
			a->cfg.server.serve(a->cfg.server.arg, a, act->term);
			break;
		case QACT_STOP_SERVER:
			log_info(SUB, "slot %d: stopping server of term %" PRIu64, a->cfg.slot, act->term);
			a->cfg.server.stop(a->cfg.server.arg, a, act->term);
			break;
		case QACT_NOTE:
			log_note(a, act);
			break;
		case QACT_DONE:
			log_info(SUB, "slot %d: left the quorum cleanly (END recorded)", a->cfg.slot);
			pthread_mutex_lock(&a->snap_lock);
			a->finished = true;
			pthread_cond_broadcast(&a->snap_cond);
			pthread_mutex_unlock(&a->snap_lock);
			break;
		case QACT_FAILED:
			log_err(SUB, "slot %d: quorum failed (%s); this mount no longer takes part "
				"in elections; remount it to restore", a->cfg.slot, errstr((int)act->a));
			pthread_mutex_lock(&a->snap_lock);
			a->snap.failed = true;
			a->snap.fail_res = (int)act->a;
			pthread_cond_broadcast(&a->snap_cond);
			pthread_mutex_unlock(&a->snap_lock);
			break;
		}
	}
}

/* ---- standing operations ---- */

static void arm_recv(struct quorum_agent *a)
{
	struct io_uring_sqe *sqe;

	if (a->recv_io.pending || a->exit_now)
		return;
	sqe = get_sqe(a);
	if (sqe == NULL)
		return;
	a->recv_io.kind = CTX_RECV;
	a->recv_iov.iov_base = a->recv_buf;
	a->recv_iov.iov_len = sizeof(a->recv_buf);
	memset(&a->recv_mh, 0, sizeof(a->recv_mh));
	a->recv_mh.msg_name = &a->recv_ss;
	a->recv_mh.msg_namelen = sizeof(a->recv_ss);
	a->recv_mh.msg_iov = &a->recv_iov;
	a->recv_mh.msg_iovlen = 1;
	io_uring_prep_recvmsg(sqe, a->cfg.udp_fd, &a->recv_mh, 0);
	sqe_ctx(a, sqe, &a->recv_io);
}

static void arm_eventfd(struct quorum_agent *a)
{
	struct io_uring_sqe *sqe;

	if (a->efd_io.pending || a->exit_now)
		return;
	sqe = get_sqe(a);
	if (sqe == NULL)
		return;
	a->efd_io.kind = CTX_EVENTFD;
	io_uring_prep_read(sqe, a->efd, &a->efd_val, sizeof(a->efd_val), 0);
	sqe_ctx(a, sqe, &a->efd_io);
}

static void ns_to_ts(mono_ns t, struct __kernel_timespec *ts)
{
	ts->tv_sec = t / NSEC_PER_SEC;
	ts->tv_nsec = t % NSEC_PER_SEC;
}

/* Keep one absolute TIMEOUT at the machine's deadline. */
static void arm_timeout(struct quorum_agent *a)
{
	struct io_uring_sqe *sqe;
	mono_ns at = a->deadline;

	if (a->blk_cur != NULL)
		at = MIN(at, a->blk_cur->deadline); /* give up on a transfer in time */
	if (a->exit_now || at == INT64_MAX || a->to_upd_io.pending)
		return;
	if (a->to_io.pending && a->to_at == at)
		return;
	sqe = get_sqe(a);
	if (sqe == NULL)
		return;
	ns_to_ts(at, &a->to_ts);
	if (a->to_io.pending) {
		a->to_upd_io.kind = CTX_TIMEOUT_UPDATE;
		/* the timeout keeps the clock it was armed with; a clock flag here is EINVAL */
		io_uring_prep_timeout_update(sqe, &a->to_ts, (uint64_t)(uintptr_t)&a->to_io,
					     IORING_TIMEOUT_ABS);
		sqe_ctx(a, sqe, &a->to_upd_io);
	} else {
		a->to_io.kind = CTX_TIMEOUT;
		io_uring_prep_timeout(sqe, &a->to_ts, 0, IORING_TIMEOUT_ABS | IORING_TIMEOUT_BOOTTIME);
		sqe_ctx(a, sqe, &a->to_io);
	}
	a->to_at = at;
}

/* ---- completions ---- */

static void on_recv(struct quorum_agent *a, int res)
{
	struct quorum_input in = { .type = QIN_MSG };

	if (res < 0) {
		if (res != -ECANCELED && res != -EINTR && res != -EAGAIN)
			ctr_add(a, QCTR_recv_error, 1);
		return;
	}
	if (quorum_msg_decode(&a->codec, a->recv_buf, (size_t)res, &in.msg) < 0) {
		ctr_add(a, QCTR_recv_invalid, 1);
		publish(a);
		return;
	}
	pthread_mutex_lock(&a->snap_lock);
	a->snap.ctr[recv_counter(in.msg.type)]++;
	a->snap.last_recv[in.msg.from] =
		(struct quorum_last_msg){ in.msg.type, in.msg.term, mono_now() };
	pthread_mutex_unlock(&a->snap_lock);
	agent_step(a, &in);
	if (in.msg.type == QMSG_HEARTBEAT && a->st.role != QROLE_LEADER)
		record_hb(a, true);
}

static void on_commands(struct quorum_agent *a)
{
	struct cmd cmds[CMD_MAX + 2];
	int n;

	pthread_mutex_lock(&a->cmd_lock);
	n = a->ncmds;
	memcpy(cmds, a->cmds, sizeof(cmds[0]) * (size_t)n);
	a->ncmds = 0;
	if (a->set_hb_pending)
		cmds[n++] = (struct cmd){ .type = CMD_SET_HB, .ms = a->set_hb_ms };
	if (a->shutdown_pending)
		cmds[n++] = (struct cmd){ .type = CMD_SHUTDOWN };
	a->set_hb_pending = false;
	a->shutdown_pending = false;
	pthread_mutex_unlock(&a->cmd_lock);

	for (int i = 0; i < n; i++) {
		struct quorum_input in;

		memset(&in, 0, sizeof(in));
		switch (cmds[i].type) {
		case CMD_FENCED:
			in.type = QIN_SERVER_FENCED;
			in.server.term = cmds[i].term;
			break;
		case CMD_DOWN:
			in.type = QIN_SERVER_DOWN;
			in.server.term = cmds[i].term;
			in.server.res = cmds[i].res;
			break;
		case CMD_SET_HB:
			in.type = QIN_SET_HB_TIMEOUT;
			in.hb_timeout_ms = cmds[i].ms;
			break;
		case CMD_SHUTDOWN:
			in.type = QIN_SHUTDOWN;
			break;
		}
		agent_step(a, &in);
	}
}

static void handle_cqe(struct quorum_agent *a, struct io_uring_cqe *cqe)
{
	struct io_ctx *ctx = io_uring_cqe_get_data(cqe);
	struct quorum_input in;

	if (ctx == NULL)
		return;
	ctx->pending = false;
	a->inflight--;
	if (a->exit_now)
		return;
	switch (ctx->kind) {
	case CTX_RECV:
		on_recv(a, cqe->res);
		break;
	case CTX_SEND:
		on_send_done(a, (struct send_ctx *)ctx, cqe->res);
		break;
	case CTX_TIMEOUT:
		/* -ETIME: it fired; any wakeup is fine for the machine */
		a->to_at = INT64_MAX;
		check_block_timeout(a);
		memset(&in, 0, sizeof(in));
		in.type = QIN_TIMER;
		agent_step(a, &in);
		break;
	case CTX_TIMEOUT_UPDATE:
		/* -ENOENT: the timeout fired first, and its CQE re-arms it */
		if (cqe->res < 0 && cqe->res != -ENOENT)
			log_err(SUB, "slot %d: moving the timeout failed: %s", a->cfg.slot,
				errstr(cqe->res));
		break;
	case CTX_EVENTFD:
		if (cqe->res == (int)sizeof(a->efd_val))
			on_commands(a);
		break;
	case CTX_BLOCK:
		on_block_done(a, (struct blk_req *)ctx, cqe->res);
		break;
	case CTX_CANCEL:
		break;
	}
}

/* Cancel everything still out and wait (bounded) for the completions. */
static void drain_ring(struct quorum_agent *a)
{
	struct io_uring_sqe *sqe = get_sqe(a);
	mono_ns give_up = mono_now() + 5 * NSEC_PER_SEC;

	if (sqe != NULL) {
		io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
		a->cancel_io.kind = CTX_CANCEL;
		sqe_ctx(a, sqe, &a->cancel_io);
		io_uring_submit(&a->ring);
	}
	while (a->inflight > 0 && mono_now() < give_up) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };
		struct io_uring_cqe *cqe;

		if (io_uring_wait_cqe_timeout(&a->ring, &cqe, &ts) == 0) {
			handle_cqe(a, cqe);
			io_uring_cqe_seen(&a->ring, cqe);
		}
	}
}

static void *agent_main(void *arg)
{
	struct quorum_agent *a = arg;

	agent_step(a, &a->start_in);
	while (!a->exit_now) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		arm_recv(a);
		arm_eventfd(a);
		arm_timeout(a);
		ret = io_uring_submit_and_wait(&a->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			/* the ring itself failed: we can no longer keep our promises */
			log_err(SUB, "slot %d: io_uring wait failed: %s; this mount no longer takes "
				"part in elections", a->cfg.slot, errstr(ret));
			if (a->st.srv != QSRV_DOWN)
				a->cfg.server.stop(a->cfg.server.arg, a, a->st.srv_term);
			pthread_mutex_lock(&a->snap_lock);
			a->snap.failed = true;
			a->snap.fail_res = ret;
			pthread_cond_broadcast(&a->snap_cond);
			pthread_mutex_unlock(&a->snap_lock);
			break;
		}
		io_uring_for_each_cqe(&a->ring, head, cqe) {
			handle_cqe(a, cqe);
			seen++;
		}
		io_uring_cq_advance(&a->ring, seen);
	}
	drain_ring(a);
	return NULL;
}

/* ---- commands from other threads ---- */

static void push_cmd(struct quorum_agent *a, struct cmd c)
{
	uint64_t one = 1;
	bool lost = false;

	pthread_mutex_lock(&a->cmd_lock);
	if (c.type == CMD_SET_HB) {
		a->set_hb_pending = true;
		a->set_hb_ms = c.ms;
	} else if (c.type == CMD_SHUTDOWN) {
		a->shutdown_pending = true;
	} else if (a->ncmds < CMD_MAX) {
		a->cmds[a->ncmds++] = c;
	} else {
		lost = true; /* cannot happen: at most two server reports per term */
	}
	pthread_mutex_unlock(&a->cmd_lock);
	if (lost)
		log_err(SUB, "slot %d: server report queue overflowed; dropped report %d for term %"
			PRIu64, a->cfg.slot, c.type, c.term);
	/* an eventfd counter only fails to add at 2^64-1: the wakeup is pending anyway */
	if (write(a->efd, &one, sizeof(one)) != sizeof(one))
		log_debug(SUB, "slot %d: eventfd write: %s", a->cfg.slot, strerror(errno));
}

void quorum_agent_server_fenced(struct quorum_agent *a, uint64_t term)
{
	push_cmd(a, (struct cmd){ .type = CMD_FENCED, .term = term });
}

void quorum_agent_server_down(struct quorum_agent *a, uint64_t term, int res)
{
	push_cmd(a, (struct cmd){ .type = CMD_DOWN, .term = term, .res = res });
}

int quorum_agent_set_hb_timeout(struct quorum_agent *a, uint32_t ms)
{
	if (!quorum_hb_timeout_valid(ms))
		return -EINVAL;
	push_cmd(a, (struct cmd){ .type = CMD_SET_HB, .ms = ms });
	pthread_mutex_lock(&a->snap_lock);
	a->snap.st.cfg.hb_timeout_ms = ms; /* visible at once; the thread applies it */
	pthread_mutex_unlock(&a->snap_lock);
	return 0;
}

uint32_t quorum_agent_hb_timeout(struct quorum_agent *a)
{
	uint32_t ms;

	pthread_mutex_lock(&a->snap_lock);
	ms = a->snap.st.cfg.hb_timeout_ms;
	pthread_mutex_unlock(&a->snap_lock);
	return ms;
}

void quorum_agent_snapshot(struct quorum_agent *a, struct quorum_snapshot *out)
{
	pthread_mutex_lock(&a->snap_lock);
	*out = a->snap;
	pthread_mutex_unlock(&a->snap_lock);
}

void quorum_agent_count(struct quorum_agent *a, enum quorum_agent_counter c)
{
	ctr_add(a, c, 1);
}

bool quorum_agent_may_serve(struct quorum_agent *a, uint64_t term)
{
	bool ok;

	pthread_mutex_lock(&a->snap_lock);
	ok = a->snap.st.srv_term == term && quorum_may_serve(&a->snap.st, mono_now());
	pthread_mutex_unlock(&a->snap_lock);
	return ok;
}

/* ---- start and stop ---- */

int quorum_bind_slot(const struct bd_super *s, int slot, int *fd_out, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	char addr[BD_ADDR_STRLEN];
	socklen_t len;
	int fd, ret, one = 1, rcvbuf = QUORUM_RCVBUF_BYTES;

	*fd_out = -1;
	bd_addr_format(&s->slots[slot], addr, sizeof(addr));
	if (bd_addr_to_sockaddr(&s->slots[slot], &ss, &len) < 0) {
		snprintf(why, whylen, "quorum slot %d has no usable address", slot);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0) {
		ret = -errno;
		snprintf(why, whylen, "quorum slot %d: UDP socket: %s", slot, errstr(ret));
		return ret;
	}
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/*
	 * Room for a burst: the kernel's default buffer holds a couple of
	 * hundred datagrams, so a flood of junk would push real heartbeats
	 * out with it.  (Beyond rmem_max only with CAP_NET_ADMIN: then what
	 * the kernel allows.)
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		ret = -errno;
		snprintf(why, whylen, "quorum slot %d address %s: cannot bind: %s", slot, addr,
			 errstr(ret));
		close(fd);
		return ret;
	}
	*fd_out = fd;
	return 0;
}

int quorum_slot_check_free(const struct bd_qblock *qb, int slot, const struct quorum_holder *self,
			   char *why, size_t whylen)
{
	if (!quorum_block_ended(qb) && quorum_holder_alive_here(qb, self)) {
		snprintf(why, whylen, "quorum slot %d is already mounted by pid %" PRIu64
			 " (rid %016" PRIx64 ") on this host; unmount it first", slot, qb->holder_pid,
			 qb->holder_rid);
		return -EBUSY;
	}
	return 0;
}

/*
 * Read every block (ours must be readable: it holds our vote and promise),
 * check the slot is ours to take, note who held it before, and prepare
 * what QIN_START tells the machine.  All before the thread exists, so the
 * start-up timeout covers everything the thread does.
 */
/*
 * Our own block failed verification and the mount asked for the repair:
 * rebuild it from the other slots' blocks (quorum_glue_rebuild, safety
 * argument in docs/quorum.md) and write it durably before anything else.
 */
static int repair_own_block(struct quorum_agent *a, struct bd_qblock *blocks, uint16_t *ok,
			    const char *bad, char *why, size_t whylen)
{
	const int slot = a->cfg.slot;
	struct bd_qblock nb;
	uint64_t sec;
	uint32_t nsec;
	void *buf;
	int ret;

	wall_now(&sec, &nsec);
	ret = quorum_glue_rebuild(&a->glue, blocks, *ok, bd_present_mask(&a->super),
				  QUORUM_HB_TIMEOUT_MAX_MS, sec * (uint64_t)NSEC_PER_SEC + nsec, &nb);
	if (ret < 0) {
		snprintf(why, whylen, "%s; quorum_repair cannot rebuild it: another slot's quorum "
			 "block is unreadable too, and the rebuilt term must come from all of them",
			 bad);
		return ret;
	}
	buf = bd_alloc(1);
	if (buf == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	bd_qblock_encode(&nb, a->super.fsid, bd_quorum_blkno(slot), buf);
	ret = bd_write(a->cfg.dev, bd_quorum_blkno(slot), buf, 1, BD_WRITE_DURABLE);
	bd_free(buf);
	if (ret < 0) {
		snprintf(why, whylen, "quorum_repair: writing the rebuilt quorum block of slot %d "
			 "(blkno %" PRIu64 ") failed: %s", slot, bd_quorum_blkno(slot), errstr(ret));
		return ret;
	}
	log_warn(SUB, "slot %d: rebuilt our unreadable quorum block (%s) from the other slots' "
		 "blocks: term %" PRIu64 " with our vote in it spent; this mount keeps the longest "
		 "promise it may have made (%d s) before it votes or campaigns, unless its leader "
		 "resigns first", slot, bad, nb.vote_term, QUORUM_HB_TIMEOUT_MAX_MS / 1000);
	blocks[slot] = nb;
	*ok |= (uint16_t)(1u << slot);
	return 0;
}

static int read_start_state(struct quorum_agent *a, char *why, size_t whylen)
{
	struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS];
	char bwhy[FUSEFS_QUORUM_MAX_SLOTS][BD_QBLOCK_WHY_LEN];
	int res[FUSEFS_QUORUM_MAX_SLOTS];
	const int slot = a->cfg.slot;
	const struct bd_qblock *own = &blocks[slot];
	uint16_t ok;
	int ret;

	ok = bd_read_qblocks_each(a->cfg.dev, &a->super, blocks, res, bwhy);
	if (res[slot] == -EBADMSG && a->cfg.repair) {
		ret = repair_own_block(a, blocks, &ok, bwhy[slot], why, whylen);
		if (ret < 0)
			return ret;
	} else if (res[slot] == -EBADMSG) {
		snprintf(why, whylen, "%s; mount with -o quorum_repair to rebuild it from the other "
			 "slots' blocks (fusefs-mount(8))", bwhy[slot]);
		return res[slot];
	} else if (res[slot] < 0) {
		snprintf(why, whylen, "cannot read our own quorum block: %s", bwhy[slot]);
		return res[slot];
	}
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if (res[i] < 0 && i != slot)
			log_warn(SUB, "slot %d: %s; a new leader will fence slot %d as a possible "
				 "earlier leader", slot, bwhy[i], i);
	ret = quorum_slot_check_free(own, slot, &a->cfg.self, why, whylen);
	if (ret < 0)
		return ret;
	ret = quorum_glue_start(&a->glue, blocks, ok, &a->start_in);
	if (ret < 0) {
		snprintf(why, whylen, "cannot read our own quorum block");
		return ret;
	}
	if (a->glue.prev_holder_elsewhere)
		log_warn(SUB, "slot %d: the last mount (rid %016" PRIx64 " on %s) did not "
			 "unmount cleanly and ran on another host; if it was a leader it will be "
			 "fenced", slot, own->holder_rid, own->holder_host);
	return 0;
}

static void agent_release(struct quorum_agent *a)
{
	if (a->inflight > 0) {
		/* a stuck O_DIRECT transfer may still use our buffers: keep them */
		log_err(SUB, "slot %d: %d I/O operations did not complete; leaking their buffers",
			a->cfg.slot, a->inflight);
		return;
	}
	if (a->ring_ready)
		io_uring_queue_exit(&a->ring);
	if (a->efd >= 0)
		close(a->efd);
	if (a->cfg.udp_fd >= 0)
		close(a->cfg.udp_fd);
	if (a->codec_ready)
		quorum_codec_free(&a->codec);
	bd_free(a->blk.buf);
	pthread_mutex_destroy(&a->cmd_lock);
	pthread_mutex_destroy(&a->snap_lock);
	pthread_cond_destroy(&a->snap_cond);
	free(a);
}

/* A deadline ms from now on the clock snap_cond waits on. */
static struct timespec deadline_in(int ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* A new agent's memory, locks and election state (nothing outside touched yet).  NULL: no memory. */
static struct quorum_agent *agent_alloc(const struct quorum_agent_config *cfg)
{
	struct quorum_config qcfg = {
		.our_slot = cfg->slot,
		.present_mask = bd_present_mask(cfg->super),
		.votes_needed = quorum_votes_needed(bd_slots_present_count(cfg->super)),
		.hb_timeout_ms = cfg->hb_timeout_ms,
	};
	struct quorum_agent *a = calloc(1, sizeof(*a));
	pthread_condattr_t cattr;

	if (a == NULL)
		return NULL;
	a->cfg = *cfg;
	a->super = *cfg->super;
	a->cfg.super = &a->super;
	a->efd = -1;
	a->to_at = INT64_MAX;
	a->deadline = INT64_MAX;
	pthread_mutex_init(&a->cmd_lock, NULL);
	pthread_mutex_init(&a->snap_lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->snap_cond, &cattr);
	pthread_condattr_destroy(&cattr);
	a->snap.member = true;
	a->snap.slot = cfg->slot;
	a->snap.rid = cfg->rid;
	quorum_init(&a->st, &qcfg);
	quorum_glue_init(&a->glue, cfg->slot, cfg->rid, &cfg->self);
	a->snap.st = a->st;
	return a;
}

/* The start state read, the codec, the eventfd and the ring.  0 or -errno with why. */
static int agent_prepare(struct quorum_agent *a, char *why, size_t whylen)
{
	int ret;

	a->blk.buf = bd_alloc(1);
	if (a->blk.buf == NULL || RAND_bytes((unsigned char *)&a->rng, sizeof(a->rng)) != 1) {
		snprintf(why, whylen, "out of memory or randomness");
		return -ENOMEM;
	}
	ret = read_start_state(a, why, whylen);
	if (ret < 0)
		return ret;
	ret = quorum_codec_init(&a->codec, &a->super, a->cfg.slot, a->cfg.rid, a->glue.seq_base);
	if (ret < 0) {
		snprintf(why, whylen, "message authentication setup failed: %s", errstr(ret));
		return ret;
	}
	a->codec_ready = true;
	quorum_codec_set_limit(&a->codec, a->glue.seq_base); /* nothing before BEGIN */
	a->efd = eventfd(0, EFD_CLOEXEC);
	if (a->efd < 0) {
		ret = -errno;
		snprintf(why, whylen, "eventfd: %s", errstr(ret));
		return ret;
	}
	ret = io_uring_queue_init(RING_ENTRIES, &a->ring, 0);
	if (ret < 0) {
		snprintf(why, whylen, "io_uring setup failed: %s", errstr(ret));
		return ret;
	}
	a->ring_ready = true;
	return 0;
}

/*
 * The thread is running: wait until BEGIN is durable.  0, or -errno with
 * why, and the thread stopped again.
 */
static int agent_wait_begun(struct quorum_agent *a, char *why, size_t whylen)
{
	struct timespec until = deadline_in(READY_TIMEOUT_MS);
	int ret;

	pthread_mutex_lock(&a->snap_lock);
	while (!a->begun && !a->snap.failed)
		if (pthread_cond_timedwait(&a->snap_cond, &a->snap_lock, &until) == ETIMEDOUT)
			break;
	ret = a->begun ? a->begin_res : a->snap.failed ? a->snap.fail_res : -ETIMEDOUT;
	pthread_mutex_unlock(&a->snap_lock);
	if (ret == 0)
		return 0;
	a->exit_now = true;
	push_cmd(a, (struct cmd){ .type = CMD_SHUTDOWN });
	pthread_join(a->thread, NULL);
	a->thread_started = false;
	if (ret == -ETIMEDOUT && a->io_err < 0)
		snprintf(why, whylen, "quorum slot %d: recording BEGIN in our quorum block: the "
			 "device still fails after %d s (%s)", a->cfg.slot, READY_TIMEOUT_MS / 1000,
			 errstr(a->io_err));
	else
		snprintf(why, whylen, "quorum slot %d: recording BEGIN in our quorum block failed: %s",
			 a->cfg.slot, errstr(ret));
	return ret;
}

int quorum_agent_start(const struct quorum_agent_config *cfg, struct quorum_agent **out,
		       char *why, size_t whylen)
{
	struct quorum_agent *a = agent_alloc(cfg);
	int ret;

	*out = NULL;
	if (a == NULL) {
		close(cfg->udp_fd);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	ret = agent_prepare(a, why, whylen);
	if (ret < 0)
		goto fail;
	ret = thread_start(&a->thread, agent_main, a);
	if (ret < 0) {
		snprintf(why, whylen, "cannot start the quorum thread: %s", errstr(ret));
		goto fail;
	}
	a->thread_started = true;
	ret = agent_wait_begun(a, why, whylen);
	if (ret < 0)
		goto fail;
	*out = a;
	return 0;
fail:
	agent_release(a);
	return ret;
}

void quorum_agent_shutdown(struct quorum_agent *a, int timeout_ms)
{
	struct timespec until;

	if (a == NULL || !a->thread_started)
		return;
	push_cmd(a, (struct cmd){ .type = CMD_SHUTDOWN });
	until = deadline_in(timeout_ms);
	pthread_mutex_lock(&a->snap_lock);
	while (!a->finished && !a->snap.failed)
		if (pthread_cond_timedwait(&a->snap_cond, &a->snap_lock, &until) == ETIMEDOUT)
			break;
	if (!a->finished && !a->snap.failed)
		log_warn(SUB, "slot %d: leaving the quorum did not finish within %d ms", a->cfg.slot,
			 timeout_ms);
	pthread_mutex_unlock(&a->snap_lock);
	a->exit_now = true;
	push_cmd(a, (struct cmd){ .type = CMD_SHUTDOWN }); /* wake the thread */
	pthread_join(a->thread, NULL);
	a->thread_started = false;
}

void quorum_agent_free(struct quorum_agent *a)
{
	if (a == NULL)
		return;
	if (a->thread_started)
		quorum_agent_shutdown(a, 10000);
	agent_release(a);
}
