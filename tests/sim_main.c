/*
 * fusefs-sim - run the real election code (quorum_step, the message codec,
 * fence selection, and the glue between the election and the quorum blocks
 * that the daemon uses, sequence-number reservation included) for 1..15
 * members against simulated time, a simulated network and a simulated
 * disk, all from one seed, and check the election invariants of design.md
 * section 10 after every step.
 *
 * Everything random comes from one PRNG seeded by --seed, and events are
 * processed in (time, sequence) order, so a seed always replays the same
 * run.  A run has five phases:
 *
 *   cold start  members start within 200 ms on a calm network;
 *   chaos       loss, delay, duplication, reordering, corruption,
 *               partitions that come and go, one-way links, crashes at any
 *               step and between a step's actions (an unfinished write is
 *               kept or lost at random), clean unmounts, restarts, pauses,
 *               disk stalls and write errors, clock-rate differences up to
 *               1%, heartbeat timeouts changed at run time;
 *   heal        everything repaired and restarted;
 *   failover    the leader is killed; a new one must be elected within the
 *               heartbeat timeout + 1 s;
 *   rejoin      a follower is cut off for 2.5 heartbeat timeouts (and is
 *               sometimes restarted meanwhile), then returns; the leader
 *               must not change, from the cut to the end.
 *
 * Invariants checked after every step:
 *   I1 with 3+ slots, at most one leader per term;
 *   I2 a slot's term on disk never decreases; a slot never votes for two
 *      candidates in one term, on disk or on the wire, across restarts;
 *   I3 a server starts serving only when no other server is serving (every
 *      earlier leader was fenced first);
 *   I4 with 3+ slots, no two leaders' leases overlap in simulated time;
 *   I5 a connected majority elects a leader within heartbeat timeout + 1 s;
 *   I6 a rejoining member does not depose a healthy leader.
 * A violation prints the seed and the trace leading to it and exits 1.
 */
#include "common/prng.h"
#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/crc32c.h"
#include "blockdev/dev.h"
#include "blockdev/tools.h"
#include "quorum/agent.h"
#include "quorum/election.h"
#include "quorum/fence.h"
#include "quorum/glue.h"
#include "quorum/holder.h"
#include "quorum/msg.h"
#include "quorum/status.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define MS(x) ((int64_t)(x) * NSEC_PER_MSEC)
#define NEVER INT64_MAX
#define MAXN FUSEFS_QUORUM_MAX_SLOTS
#define MAX_EVENTS (1 << 16)
#define BACKLOG 64
#define TRACE_LINES 400
#define TRACE_LEN 160
#define MAX_TERMS 100000

/* ---- PRNG: splitmix64, one stream per run ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	return prng_next(&rng_state);
}

static uint64_t rng_below(uint64_t n)
{
	return n ? rng_next() % n : 0;
}

static int64_t rng_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t)rng_below((uint64_t)(hi - lo + 1));
}

static bool rng_chance(double p)
{
	return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0) < p;
}

/* ---- options ---- */

static struct {
	uint64_t first_seed;
	uint64_t seeds;
	int members[8];
	int nmembers;
	uint32_t breaks;
	bool expect_violation;
	bool trace_live;
	bool figures;
	bool calm; /* no chaos phase */
	int hb_fixed_ms;
	bool quiet;
} opt = { .seeds = 1, .members = { 3 }, .nmembers = 1 };

/* ---- events ---- */

enum ev_type {
	E_TIMER, E_DELIVER, E_PERSIST, E_FENCE, E_SERVER_DOWN,
	E_CRASH, E_RESTART, E_PAUSE, E_RESUME, E_NET, E_HB_CHANGE, E_PHASE, E_CHECK,
	E_UNMOUNT,
};

struct event {
	int64_t t;
	uint64_t seq;
	enum ev_type type;
	int m;          /* member */
	int inc;        /* member incarnation the event belongs to */
	uint64_t gen;   /* timer / server generation */
	int from;
	int64_t arg;
	union {
		uint8_t bytes[QUORUM_MSG_WIRE_BYTES];
		struct quorum_msg msg;
	};
};

static struct event heap[MAX_EVENTS];
static int heap_len;
static uint64_t heap_seq;

static bool ev_before(const struct event *a, const struct event *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void push(struct event e)
{
	int i;

	if (heap_len >= MAX_EVENTS)
		die("event queue full (%d): the simulation exceeded its bound", MAX_EVENTS);
	e.seq = heap_seq++;
	i = heap_len++;
	while (i > 0 && ev_before(&e, &heap[(i - 1) / 2])) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = e;
}

static struct event pop(void)
{
	struct event top = heap[0], last = heap[--heap_len];
	int i = 0;

	for (;;) {
		int c = 2 * i + 1;

		if (c >= heap_len)
			break;
		if (c + 1 < heap_len && ev_before(&heap[c + 1], &heap[c]))
			c++;
		if (!ev_before(&heap[c], &last))
			break;
		heap[i] = heap[c];
		i = c;
	}
	heap[i] = last;
	return top;
}

/* ---- the world ---- */

enum srv_state { SRV_NONE, SRV_FENCING, SRV_UP, SRV_STOPPING };

struct member {
	int slot;
	bool alive;
	bool paused;
	int inc;
	uint64_t rid;
	double rate;       /* local clock = offset + t * rate */
	int64_t offset;
	uint32_t hb_ms;
	struct quorum_state st;
	struct quorum_glue glue;
	struct quorum_codec codec;
	bool codec_ready;
	uint64_t timer_gen;
	int64_t timer_at;
	/* the one write in flight */
	bool persisting;
	struct bd_qblock pblk;
	/* server */
	enum srv_state srv;
	uint64_t srv_term;
	uint64_t srv_gen;
	int fences_left;
	/* events held while paused */
	struct event backlog[BACKLOG];
	int nbacklog;
	/* invariant bookkeeping */
	int64_t lease_end;  /* true time our current lease interval ends */
	bool leading;
	uint64_t lead_term;
};

enum phase { PH_COLD, PH_CHAOS, PH_HEAL, PH_FAILOVER, PH_REJOIN, PH_END };

static const char *const phase_names[] = {
	"cold start", "chaos", "heal", "failover", "rejoin", "end",
};

static struct world {
	uint64_t seed;
	int n;
	int64_t now;
	struct member m[MAXN];
	struct bd_super super;
	struct bd_qblock disk[MAXN];
	bool blocked[MAXN][MAXN]; /* from -> to */
	bool use_codec;
	int hb_max_ms;
	enum phase phase;
	/* fault intensities for the chaos phase */
	double p_loss, p_dup, p_corrupt, p_crash_step, p_write_err;
	int64_t delay_max;
	bool chaos_on;
	uint64_t rid_next;
	/* invariant state */
	int16_t *leader_of_term;  /* [MAX_TERMS]: slot + 1, 0 none */
	int8_t (*disk_vote)[MAX_TERMS]; /* per slot: voted slot + 1 */
	int8_t (*wire_vote)[MAX_TERMS];
	/* phase bookkeeping */
	int64_t first_leader_at;
	int64_t kill_at;
	uint64_t killed_term;
	int64_t failover_at;
	int rejoin_slot;
	int rejoin_leader;
	uint64_t rejoin_term;
	bool rejoin_watch;
	int settle_tries;
	int violations;
	char first_violation[256];
	uint64_t steps;
	/* trace ring */
	char trace[TRACE_LINES][TRACE_LEN];
	int trace_next;
	int trace_count;
} W;

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void trace(const char *fmt, ...)
{
	char *line = W.trace[W.trace_next];
	int n;
	va_list ap;

	n = snprintf(line, TRACE_LEN, "[%9.3f ms] ", (double)W.now / 1e6);
	va_start(ap, fmt);
	vsnprintf(line + n, TRACE_LEN - (size_t)n, fmt, ap);
	va_end(ap);
	if (opt.trace_live)
		printf("%s\n", line);
	W.trace_next = (W.trace_next + 1) % TRACE_LINES;
	if (W.trace_count < TRACE_LINES)
		W.trace_count++;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fusefs-sim: seed %" PRIu64 ": ", W.seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void violation(const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	trace("VIOLATION: %s", what);
	if (W.violations++ == 0)
		snprintf(W.first_violation, sizeof(W.first_violation), "%s", what);
	if (opt.expect_violation && opt.quiet)
		return;
	printf("\nfusefs-sim: VIOLATION with seed %" PRIu64 " (%d members, phase %s, t=%.3f ms): %s\n",
	       W.seed, W.n, phase_names[W.phase], (double)W.now / 1e6, what);
	printf("replay: fusefs-sim --seed %" PRIu64 " --members %d%s --trace\n", W.seed, W.n,
	       opt.breaks ? " --break ..." : "");
	printf("last %d events:\n", W.trace_count);
	for (int i = 0; i < W.trace_count; i++) {
		int k = (W.trace_next - W.trace_count + i + TRACE_LINES) % TRACE_LINES;

		printf("  %s\n", W.trace[k]);
	}
}

static int64_t local_at(const struct member *m, int64_t t)
{
	return m->offset + (int64_t)((double)t * m->rate);
}

static int64_t local_now(const struct member *m)
{
	return local_at(m, W.now);
}

static int64_t true_time(const struct member *m, int64_t local)
{
	double t;

	if (local == NEVER)
		return NEVER;
	t = ceil((double)(local - m->offset) / m->rate);
	if (t > 9.0e18)
		return NEVER;
	/* float rounding: step forward until the local clock has really got there */
	for (int64_t tt = (int64_t)t;; tt++)
		if (local_at(m, tt) >= local)
			return tt;
}

/* ---- invariants that watch state after every step ---- */

static void check_leadership(struct member *m)
{
	const struct quorum_state *st = &m->st;
	bool leading = st->role == QROLE_LEADER;

	if (leading && (!m->leading || m->lead_term != st->term)) {
		if (st->term >= MAX_TERMS)
			die("term %" PRIu64 " beyond the simulator's table", st->term);
		if (W.n >= 3 && W.leader_of_term[st->term] &&
		    W.leader_of_term[st->term] != m->slot + 1)
			violation("I1: slots %d and %d both leaders in term %" PRIu64,
				  W.leader_of_term[st->term] - 1, m->slot, st->term);
		W.leader_of_term[st->term] = (int16_t)(m->slot + 1);
		if (W.first_leader_at < 0)
			W.first_leader_at = W.now;
		if (W.kill_at >= 0 && W.failover_at < 0 && st->term > W.killed_term)
			W.failover_at = W.now;
	}
	if (W.rejoin_watch && m->slot == W.rejoin_leader &&
	    (!leading || st->term != W.rejoin_term))
		violation("I6: healthy leader slot %d (term %" PRIu64 ") deposed when slot %d rejoined"
			  " (now %s, term %" PRIu64 ")", m->slot, W.rejoin_term, W.rejoin_slot,
			  quorum_role_name(st->role), st->term);
	m->leading = leading;
	m->lead_term = st->term;
}

/* I4: a lease interval may only begin once every other lease has ended. */
static void check_lease(struct member *m)
{
	bool valid = m->alive && quorum_lease_valid(&m->st, local_now(m));

	if (!valid) {
		if (m->lease_end > W.now)
			m->lease_end = W.now; /* stepped down before its lease ran out */
		return;
	}
	if (m->lease_end <= W.now && W.n >= 3) {
		for (int i = 0; i < W.n; i++) {
			if (i != m->slot && W.m[i].lease_end > W.now)
				violation("I4: slot %d's lease begins while slot %d's runs until %.3f ms",
					  m->slot, i, (double)W.m[i].lease_end / 1e6);
		}
	}
	m->lease_end = true_time(m, m->st.lease_until);
}

static void check_votes_on_disk(int slot, const struct bd_qblock *old, const struct bd_qblock *nb)
{
	if (nb->ev[FUSEFS_QEV_TERM].term < old->ev[FUSEFS_QEV_TERM].term)
		violation("I2: slot %d's TERM on disk went from %" PRIu64 " to %" PRIu64, slot,
			  old->ev[FUSEFS_QEV_TERM].term, nb->ev[FUSEFS_QEV_TERM].term);
	if (nb->vote_term < old->vote_term)
		violation("I2: slot %d's vote term on disk went from %" PRIu64 " to %" PRIu64, slot,
			  old->vote_term, nb->vote_term);
	if (bd_qblock_greatest_term(nb) < bd_qblock_greatest_term(old))
		violation("I2: slot %d's greatest term on disk went from %" PRIu64 " to %" PRIu64, slot,
			  bd_qblock_greatest_term(old), bd_qblock_greatest_term(nb));
	if (nb->vote_slot >= 0 && nb->vote_term > 0) {
		int8_t *v = &W.disk_vote[slot][nb->vote_term % MAX_TERMS];

		if (*v && *v != nb->vote_slot + 1)
			violation("I2: slot %d stored votes for slots %d and %d in term %" PRIu64, slot,
				  *v - 1, nb->vote_slot, nb->vote_term);
		*v = (int8_t)(nb->vote_slot + 1);
	}
}

static void check_wire_vote(int from, int to, uint64_t term)
{
	int8_t *v = &W.wire_vote[from][term % MAX_TERMS];

	if (*v && *v != to + 1)
		violation("I2: slot %d sent VOTEs to slots %d and %d in term %" PRIu64, from, *v - 1,
			  to, term);
	*v = (int8_t)(to + 1);
}

/* I3: when a server starts serving, no other may be serving. */
static void check_serve(struct member *m)
{
	for (int i = 0; i < W.n; i++) {
		struct member *o = &W.m[i];

		if (i != m->slot && o->alive && o->srv == SRV_UP)
			violation("I3: slot %d serves term %" PRIu64 " while slot %d still serves term %"
				  PRIu64 " (not fenced)", m->slot, m->srv_term, i, o->srv_term);
	}
}

/* ---- the network ---- */

static void net_send(struct member *m, int to, struct quorum_msg *msg)
{
	struct event e = { .type = E_DELIVER, .m = to, .from = m->slot };
	int copies = 1;

	msg->to = (uint8_t)to;
	if (msg->type == QMSG_VOTE)
		check_wire_vote(m->slot, to, msg->term);
	if (msg->type == QMSG_REQUEST_VOTE)
		check_wire_vote(m->slot, m->slot, msg->term); /* a candidate votes for itself */
	if (W.use_codec) {
		if (quorum_msg_encode(&m->codec, msg, e.bytes, sizeof(e.bytes)) < 0)
			die("encode failed");
	} else {
		e.msg = *msg;
	}
	if (W.blocked[m->slot][to])
		return;
	if (W.chaos_on) {
		if (rng_chance(W.p_loss))
			return;
		if (rng_chance(W.p_dup))
			copies = 2;
	}
	for (int c = 0; c < copies; c++) {
		struct event d = e;
		int64_t delay = rng_range(MS(1) / 10, MS(2));

		if (W.chaos_on) {
			delay += rng_below((uint64_t)W.delay_max);
			if (W.use_codec && rng_chance(W.p_corrupt))
				d.bytes[rng_below(sizeof(d.bytes))] ^= (uint8_t)(1u << rng_below(8));
		}
		d.t = W.now + delay;
		push(d);
	}
}

/* ---- member steps ---- */

static void member_step(struct member *m, struct quorum_input *in);

static void persist_start(struct member *m, const struct quorum_action *a)
{
	struct bd_qblock nb = W.disk[m->slot];
	struct event e = { .type = E_PERSIST, .m = m->slot, .inc = m->inc };

	/* the agent's read-modify-write, through the same glue */
	if (quorum_glue_persist(&m->glue, a, (uint64_t)(W.now / NSEC_PER_SEC), 0, true, &nb) < 0) {
		violation("glue: slot %d rid %" PRIx64 " finds BEGIN rid %" PRIx64 " on its block",
			  m->slot, m->rid, nb.ev[FUSEFS_QEV_BEGIN].rid);
		return;
	}
	m->pblk = nb;
	m->persisting = true;
	e.t = W.now + rng_range(MS(1) / 5, MS(3));
	if (W.chaos_on && rng_chance(0.02))
		e.t += rng_range(MS(50), MS(600)); /* a stalled device */
	if (W.chaos_on && rng_chance(W.p_write_err))
		e.arg = -EIO;
	push(e);
}

static void server_start(struct member *m, uint64_t term)
{
	struct quorum_fence_plan plan;
	struct event e = { .m = m->slot, .inc = m->inc };

	m->srv = SRV_FENCING;
	m->srv_term = term;
	m->srv_gen++;
	e.gen = m->srv_gen;
	quorum_fence_select(W.disk, (uint16_t)((1u << W.n) - 1), term, m->rid, &plan);
	if (plan.superseded_term) {
		trace("slot %d server term %" PRIu64 ": superseded by slot %d term %" PRIu64,
		      m->slot, term, plan.superseded_slot, plan.superseded_term);
		e.type = E_SERVER_DOWN;
		e.t = W.now + MS(1);
		e.arg = -ESTALE;
		push(e);
		return;
	}
	m->fences_left = plan.count;
	for (int i = 0; i < plan.count; i++) {
		e.type = E_FENCE;
		e.from = plan.target[i].slot;
		e.arg = (int64_t)plan.target[i].rid;
		e.t = W.now + rng_range(MS(5), W.chaos_on ? MS(800) : MS(50));
		trace("slot %d server term %" PRIu64 ": fencing slot %d rid %" PRIx64 " (term %" PRIu64
		      ")", m->slot, term, plan.target[i].slot, plan.target[i].rid, plan.target[i].term);
		push(e);
	}
	if (plan.count == 0) {
		struct quorum_input in = { .type = QIN_SERVER_FENCED };

		in.server.term = term;
		member_step(m, &in);
	}
}

static void server_stop(struct member *m, int res)
{
	struct event e = { .type = E_SERVER_DOWN, .m = m->slot, .inc = m->inc };

	m->srv = SRV_STOPPING;
	e.gen = ++m->srv_gen;
	e.arg = res;
	e.t = W.now + rng_range(MS(1), MS(20));
	push(e);
}

static void member_gone(struct member *m, const char *why);

static void apply_actions(struct member *m, const struct quorum_actions *out)
{
	for (int k = 0; k < out->count && m->alive; k++) {
		const struct quorum_action *a = &out->act[k];
		struct quorum_msg msg;

		/* a crash between two of one step's actions: the rest never happen */
		if (k > 0 && W.chaos_on && rng_chance(W.p_crash_step / 2)) {
			member_gone(m, "crash between actions");
			return;
		}

		switch (a->type) {
		case QACT_PERSIST:
			persist_start(m, a);
			break;
		case QACT_SEND:
			for (int to = 0; to < W.n; to++) {
				if (to == m->slot || (a->to != QSEND_ALL && a->to != to))
					continue;
				msg = a->msg;
				net_send(m, to, &msg);
			}
			break;
		case QACT_START_SERVER:
			trace("slot %d: start server term %" PRIu64, m->slot, a->term);
			server_start(m, a->term);
			break;
		case QACT_SERVE:
			trace("slot %d: server term %" PRIu64 " serving", m->slot, a->term);
			check_serve(m);
			m->srv = SRV_UP;
			break;
		case QACT_STOP_SERVER:
			trace("slot %d: stop server term %" PRIu64, m->slot, a->term);
			server_stop(m, 0);
			break;
		case QACT_NOTE:
			trace("slot %d term %" PRIu64 " %s: %s (%" PRId64 ", %" PRId64 ")", m->slot,
			      m->st.term, quorum_role_name(m->st.role), quorum_note_text(a->note), a->a,
			      a->b);
			break;
		case QACT_DONE:
			member_gone(m, "done (unmounted)");
			break;
		case QACT_FAILED:
			member_gone(m, "failed");
			break;
		}
	}
}

static void member_step(struct member *m, struct quorum_input *in)
{
	struct quorum_actions out;

	if (!m->alive)
		return;
	in->random = (uint32_t)rng_next();
	quorum_step(&m->st, in, local_now(m), &out);
	W.steps++;
	apply_actions(m, &out);
	if (!m->alive)
		return;
	/* a crash at any step: after the step's actions went out */
	if (W.chaos_on && rng_chance(W.p_crash_step)) {
		struct event e = { .type = E_CRASH, .m = m->slot, .t = W.now };

		push(e);
	}
	if (out.deadline != NEVER) {
		int64_t at = true_time(m, out.deadline);

		if (at < W.now)
			at = W.now;
		if (at != m->timer_at) {
			struct event e = { .type = E_TIMER, .m = m->slot, .inc = m->inc };

			m->timer_at = at;
			e.gen = ++m->timer_gen;
			e.t = at;
			push(e);
		}
	}
	check_leadership(m);
	check_lease(m);
}

static void member_start(struct member *m)
{
	struct quorum_config cfg = {
		.our_slot = m->slot,
		.present_mask = (uint16_t)((1u << W.n) - 1),
		.votes_needed = quorum_votes_needed(W.n),
		.hb_timeout_ms = m->hb_ms,
		.breaks = opt.breaks,
	};
	struct quorum_holder self = { .pid = 1000 + (uint64_t)m->slot, .start_ticks = (uint64_t)m->inc };
	struct quorum_input in;

	m->alive = true;
	m->paused = false;
	m->inc++;
	m->rid = W.rid_next++;
	m->persisting = false;
	m->srv = SRV_NONE;
	m->srv_gen++;
	m->timer_gen++;
	m->timer_at = -1;
	m->nbacklog = 0;
	m->leading = false;
	quorum_init(&m->st, &cfg);
	/* what the agent reads from the blocks at start, through the same glue */
	self.boot_id[0] = (uint8_t)(m->slot + 1); /* each slot on a host of its own */
	quorum_glue_init(&m->glue, m->slot, m->rid, &self);
	if (quorum_glue_start(&m->glue, W.disk, (uint16_t)((1u << W.n) - 1), &in) < 0)
		die("slot %d: own block unreadable at start", m->slot);
	if (W.use_codec) {
		if (m->codec_ready)
			quorum_codec_free(&m->codec);
		/* sequence numbers from the disk, as the agent takes them */
		if (quorum_codec_init(&m->codec, &W.super, m->slot, m->rid, m->glue.seq_base) < 0)
			die("codec init failed");
		m->codec_ready = true;
	}
	trace("slot %d: start (incarnation %d, rid %" PRIx64 ", hb timeout %u ms)", m->slot, m->inc,
	      m->rid, m->hb_ms);
	member_step(m, &in);
}

static void member_crash(struct member *m, const char *why)
{
	if (!m->alive)
		return;
	trace("slot %d: %s%s", m->slot, why, m->persisting ? " (a write was in flight)" : "");
	if (m->persisting && rng_chance(0.5)) {
		/* the write reached the disk before the crash */
		check_votes_on_disk(m->slot, &W.disk[m->slot], &m->pblk);
		W.disk[m->slot] = m->pblk;
	}
	m->alive = false;
	m->paused = false;
	m->persisting = false;
	m->srv = SRV_NONE;
	if (m->lease_end > W.now)
		m->lease_end = W.now;
	m->leading = false;
	if (W.rejoin_watch && m->slot == W.rejoin_leader)
		violation("I6: healthy leader slot %d was %s while slot %d rejoined", m->slot, why,
			  W.rejoin_slot);
}

/* The member's process is gone; like a real cluster, it is remounted soon. */
static void member_gone(struct member *m, const char *why)
{
	struct event r = { .type = E_RESTART, .m = m->slot };

	member_crash(m, why);
	r.inc = m->inc;
	r.t = W.now + rng_range(MS(10), W.chaos_on ? MS(2000) : MS(300));
	push(r);
}

/* ---- event handling ---- */

static void deliver(struct member *m, const struct event *e)
{
	struct quorum_input in = { .type = QIN_MSG };

	if (W.use_codec) {
		if (quorum_msg_decode(&m->codec, e->bytes, sizeof(e->bytes), &in.msg) < 0)
			return;
	} else {
		in.msg = e->msg;
	}
	member_step(m, &in);
}

static void handle_member_event(struct member *m, struct event *e)
{
	struct quorum_input in;

	memset(&in, 0, sizeof(in));
	switch (e->type) {
	case E_TIMER:
		if (e->gen != m->timer_gen)
			return;
		m->timer_at = -1;
		in.type = QIN_TIMER;
		member_step(m, &in);
		break;
	case E_DELIVER:
		deliver(m, e);
		break;
	case E_PERSIST:
		if (!m->persisting)
			return;
		m->persisting = false;
		in.type = QIN_PERSIST_DONE;
		in.persist.res = (int)e->arg;
		if (e->arg == 0) {
			check_votes_on_disk(m->slot, &W.disk[m->slot], &m->pblk);
			W.disk[m->slot] = m->pblk;
		} else {
			trace("slot %d: quorum block write failed", m->slot);
		}
		member_step(m, &in);
		break;
	case E_FENCE: {
		struct member *victim = NULL;
		bool ok = !W.chaos_on || rng_chance(0.9);

		if (e->gen != m->srv_gen || m->srv != SRV_FENCING)
			return;
		for (int i = 0; i < W.n; i++)
			if (W.m[i].alive && W.m[i].rid == (uint64_t)e->arg)
				victim = &W.m[i];
		if (!ok) {
			trace("slot %d: fencing rid %" PRIx64 " failed", m->slot, (uint64_t)e->arg);
			server_stop(m, -ETIMEDOUT);
			return;
		}
		if (victim != NULL && victim != m)
			member_gone(victim, "fenced (killed)");
		if (--m->fences_left == 0) {
			in.type = QIN_SERVER_FENCED;
			in.server.term = m->srv_term;
			member_step(m, &in);
		}
		break;
	}
	case E_SERVER_DOWN:
		if (e->gen != m->srv_gen)
			return;
		m->srv = SRV_NONE;
		in.type = QIN_SERVER_DOWN;
		in.server.term = m->srv_term;
		in.server.res = (int)e->arg;
		member_step(m, &in);
		break;
	case E_UNMOUNT:
		in.type = QIN_SHUTDOWN;
		member_step(m, &in);
		break;
	case E_HB_CHANGE:
		in.type = QIN_SET_HB_TIMEOUT;
		in.hb_timeout_ms = (uint32_t)e->arg;
		m->hb_ms = (uint32_t)e->arg;
		member_step(m, &in);
		break;
	default:
		break;
	}
}

static int current_leader(void)
{
	int leader = -1;
	uint64_t term = 0;

	for (int i = 0; i < W.n; i++)
		if (W.m[i].alive && !W.m[i].paused && W.m[i].st.role == QROLE_LEADER &&
		    W.m[i].st.term >= term) {
			term = W.m[i].st.term;
			leader = i;
		}
	return leader;
}

static bool all_alive(void)
{
	for (int i = 0; i < W.n; i++)
		if (!W.m[i].alive || W.m[i].paused)
			return false;
	return true;
}

static void heal_network(void)
{
	memset(W.blocked, 0, sizeof(W.blocked));
}

static void isolate(int slot)
{
	for (int i = 0; i < W.n; i++) {
		W.blocked[slot][i] = true;
		W.blocked[i][slot] = true;
	}
}

static void random_network_fault(void)
{
	int kind = (int)rng_below(4);

	heal_network();
	if (kind == 0) {
		trace("net: healed");
		return;
	}
	if (kind == 1) {
		/* a partition into two sides */
		uint16_t side = (uint16_t)rng_below(1u << W.n);

		for (int a = 0; a < W.n; a++)
			for (int b = 0; b < W.n; b++)
				if (((side >> a) & 1) != ((side >> b) & 1))
					W.blocked[a][b] = true;
		trace("net: partition, side mask 0x%x", side);
	} else if (kind == 2) {
		/* some one-way links */
		int links = (int)rng_range(1, W.n);

		for (int k = 0; k < links; k++) {
			int a = (int)rng_below((uint64_t)W.n), b = (int)rng_below((uint64_t)W.n);

			W.blocked[a][b] = true;
		}
		trace("net: %d one-way links down", links);
	} else {
		int s = (int)rng_below((uint64_t)W.n);

		isolate(s);
		trace("net: slot %d isolated", s);
	}
}

static void schedule_chaos(int64_t start, int64_t end)
{
	for (int64_t t = start; t < end; t += rng_range(MS(300), MS(2500))) {
		struct event e = { .type = E_NET, .t = t };

		push(e);
	}
	for (int i = 0; i < W.n; i++) {
		int64_t t = start + rng_range(0, MS(2000));

		while (t < end) {
			struct event e = { .m = i, .t = t };
			int what = (int)rng_below(3);

			if (what == 0) {
				e.type = rng_chance(0.5) ? E_CRASH : E_UNMOUNT;
			} else if (what == 1) {
				e.type = E_PAUSE;
				e.arg = rng_range(MS(50), MS(3 * W.hb_max_ms));
			} else {
				e.type = E_HB_CHANGE;
				e.arg = rng_range(500, W.hb_max_ms);
			}
			push(e);
			t += rng_range(MS(800), MS(5000));
		}
	}
}

static void phase_begin(enum phase ph)
{
	struct event next = { .type = E_PHASE };
	int leader;

	W.phase = ph;
	trace("=== phase: %s ===", phase_names[ph]);
	switch (ph) {
	case PH_COLD:
		W.chaos_on = false;
		for (int i = 0; i < W.n; i++) {
			struct event e = { .type = E_RESTART, .m = i, .t = rng_range(0, MS(200)) };

			push(e);
		}
		next.t = MS(3000);
		break;
	case PH_CHAOS:
		if (opt.calm) {
			next.t = W.now;
			break;
		}
		W.chaos_on = true;
		schedule_chaos(W.now, W.now + MS(8000));
		next.t = W.now + MS(8000);
		break;
	case PH_HEAL:
		W.chaos_on = false;
		heal_network();
		for (int i = 0; i < W.n; i++) {
			struct member *m = &W.m[i];

			if (m->paused) {
				struct event e = { .type = E_RESUME, .m = i, .t = W.now };

				push(e);
			} else if (!m->alive) {
				struct event e = { .type = E_RESTART, .m = i, .inc = m->inc,
						   .t = W.now + rng_range(0, MS(100)) };

				push(e);
			}
		}
		/* I5: a leader within the heartbeat timeout + 1 s of a calm, whole cluster
		 * (a restarted member waits one heartbeat timeout when the blocks show a leader,
		 * and a member may have just heard from a leader that is now gone) */
		next.t = W.now + MS(W.hb_max_ms) * 2 + MS(1200);
		{
			struct event c = { .type = E_CHECK, .t = next.t - MS(1), .arg = PH_HEAL };

			push(c);
		}
		break;
	case PH_FAILOVER:
		leader = current_leader();
		if (W.n == 1) {
			next.t = W.now;
			break;
		}
		if (leader < 0 || !all_alive()) {
			/* measure from a whole, settled cluster: wait for it (bounded) */
			if (W.settle_tries++ >= 5) {
				violation("I5: no settled leader in a whole, calm cluster after %d tries",
					  W.settle_tries);
				next.t = W.now;
				break;
			}
			next.t = W.now + MS(W.hb_max_ms) + MS(1000);
			next.arg = PH_FAILOVER;
			push(next);
			return;
		}
		W.kill_at = W.now;
		W.killed_term = W.m[leader].st.term;
		W.failover_at = -1;
		member_crash(&W.m[leader], "killed to measure failover");
		{
			struct event c = { .type = E_CHECK, .t = W.now + MS(W.hb_max_ms) + MS(1000),
					   .arg = PH_FAILOVER };

			push(c);
		}
		next.t = W.now + MS(W.hb_max_ms) + MS(1500);
		break;
	case PH_REJOIN:
		/* restart the killed leader first, then cut off a follower */
		for (int i = 0; i < W.n; i++)
			if (!W.m[i].alive)
				member_start(&W.m[i]);
		leader = current_leader();
		if (W.n < 3 || leader < 0) {
			next.t = W.now;
			break;
		}
		W.rejoin_slot = (leader + 1 + (int)rng_below((uint64_t)W.n - 1)) % W.n;
		isolate(W.rejoin_slot);
		W.rejoin_leader = leader;
		W.rejoin_term = W.m[leader].st.term;
		W.rejoin_watch = true;
		trace("rejoin: slot %d cut off; leader slot %d term %" PRIu64 " must stay",
		      W.rejoin_slot, leader, W.rejoin_term);
		if (rng_chance(0.5)) {
			/* it also restarts while cut off, and comes back with what the disk says */
			struct event r = { .type = E_RESTART, .m = W.rejoin_slot,
					   .t = W.now + MS(W.hb_max_ms) };

			member_crash(&W.m[W.rejoin_slot], "crash while cut off");
			r.inc = W.m[W.rejoin_slot].inc;
			push(r);
		}
		{
			struct event c = { .type = E_CHECK, .t = W.now + MS(W.hb_max_ms) * 5 / 2,
					   .arg = PH_REJOIN };

			push(c);
		}
		next.t = W.now + MS(W.hb_max_ms) * 5 / 2 + MS(W.hb_max_ms) * 2 + MS(500);
		break;
	case PH_END:
		return;
	}
	next.arg = ph + 1;
	push(next);
}

static void handle_check(const struct event *e)
{
	int leader = current_leader();

	switch ((enum phase)e->arg) {
	case PH_HEAL:
		if (leader < 0 && W.n >= 1)
			violation("I5: no leader %d ms after the cluster was healed and whole",
				  2 * W.hb_max_ms + 1200);
		break;
	case PH_FAILOVER:
		if (W.failover_at < 0)
			violation("I5: no new leader within heartbeat timeout + 1 s (%d ms) of killing "
				  "the leader of term %" PRIu64, W.hb_max_ms + 1000, W.killed_term);
		break;
	case PH_REJOIN:
		heal_network();
		if (leader != W.rejoin_leader)
			violation("I6: leader changed from slot %d to %d while slot %d was cut off",
				  W.rejoin_leader, leader, W.rejoin_slot);
		trace("rejoin: slot %d back", W.rejoin_slot);
		break;
	default:
		break;
	}
}

static void handle_event(struct event *e)
{
	struct member *m = (e->m >= 0 && e->m < W.n) ? &W.m[e->m] : NULL;

	switch (e->type) {
	case E_PHASE:
		if ((enum phase)e->arg != PH_REJOIN)
			W.rejoin_watch = false;
		phase_begin((enum phase)e->arg);
		return;
	case E_CHECK:
		handle_check(e);
		return;
	case E_NET:
		if (W.chaos_on)
			random_network_fault();
		return;
	case E_CRASH:
		if (!W.chaos_on || !m->alive)
			return;
		member_gone(m, "crash");
		return;
	case E_UNMOUNT:
		if (!W.chaos_on || !m->alive || m->st.shutting_down)
			return;
		trace("slot %d: clean unmount", m->slot);
		e->inc = m->inc; /* for whoever is mounted now; held like any event if paused */
		break;
	case E_RESTART:
		if (m->alive || e->inc != m->inc)
			return; /* already restarted since this was scheduled */
		member_start(m);
		return;
	case E_PAUSE:
		if (!W.chaos_on || !m->alive || m->paused)
			return;
		trace("slot %d: paused for %.0f ms", m->slot, (double)e->arg / 1e6);
		m->paused = true;
		{
			struct event r = { .type = E_RESUME, .m = e->m, .inc = m->inc, .t = W.now + e->arg };

			push(r);
		}
		return;
	case E_RESUME:
		if (!m->alive || !m->paused)
			return;
		m->paused = false;
		trace("slot %d: resumed with %d queued events", m->slot, m->nbacklog);
		{
			int n = m->nbacklog;
			struct event held[BACKLOG];

			memcpy(held, m->backlog, sizeof(held[0]) * (size_t)n);
			m->nbacklog = 0;
			/* the burst: a timer first (that is how a woken process sees time), then the rest */
			for (int i = 0; i < n && m->alive; i++) {
				if (held[i].type == E_TIMER)
					continue;
				handle_member_event(m, &held[i]);
			}
			if (m->alive) {
				struct quorum_input in = { .type = QIN_TIMER };

				m->timer_at = -1;
				member_step(m, &in);
			}
		}
		return;
	default:
		break;
	}
	if (m == NULL || !m->alive)
		return;
	if (e->type != E_DELIVER && e->type != E_HB_CHANGE && e->inc != m->inc)
		return; /* belongs to an earlier incarnation */
	if (m->paused) {
		if (m->nbacklog < BACKLOG)
			m->backlog[m->nbacklog++] = *e;
		return; /* a full socket buffer drops the rest */
	}
	handle_member_event(m, e);
}

/* ---- one run ---- */

struct run_result {
	char violation[256];
	int64_t first_leader;
	int64_t failover;
	int violations;
	uint64_t steps;
};

static void world_free(void)
{
	for (int i = 0; i < W.n; i++)
		if (W.m[i].codec_ready)
			quorum_codec_free(&W.m[i].codec);
	free(W.leader_of_term);
	free(W.disk_vote);
	free(W.wire_vote);
}

static struct run_result run(uint64_t seed, int n)
{
	struct run_result r;

	memset(&W, 0, sizeof(W));
	heap_len = 0;
	heap_seq = 0;
	rng_state = seed * 0x2545f4914f6cdd1dull + 1;
	W.seed = seed;
	W.n = n;
	W.first_leader_at = -1;
	W.kill_at = -1;
	W.failover_at = -1;
	W.rid_next = 0x100;
	W.leader_of_term = calloc(MAX_TERMS, sizeof(*W.leader_of_term));
	W.disk_vote = calloc(MAXN, sizeof(*W.disk_vote));
	W.wire_vote = calloc(MAXN, sizeof(*W.wire_vote));
	if (!W.leader_of_term || !W.disk_vote || !W.wire_vote)
		die("out of memory");

	W.use_codec = rng_chance(0.5);
	W.super.fsid = rng_next() | 1;
	W.super.flags = rng_chance(0.5) ? FUSEFS_SUPER_FLAG_AUTH : 0;
	for (int i = 0; i < FUSEFS_CLUSTER_SECRET_BYTES; i++)
		W.super.cluster_secret[i] = (uint8_t)rng_next();
	for (int i = 0; i < n; i++) {
		bd_addr_parse("127.0.0.1", (uint16_t)(7000 + i), &W.super.slots[i]);
		W.disk[i].vote_slot = -1;
	}
	W.hb_max_ms = opt.hb_fixed_ms ? opt.hb_fixed_ms : (int)rng_range(500, 4000);
	W.p_loss = (double)rng_range(0, 30) / 100.0;
	W.p_dup = (double)rng_range(0, 10) / 100.0;
	W.p_corrupt = (double)rng_range(0, 5) / 100.0;
	W.p_crash_step = (double)rng_range(0, 20) / 10000.0;
	W.p_write_err = (double)rng_range(0, 5) / 1000.0;
	W.delay_max = rng_range(MS(1), MS(100));
	for (int i = 0; i < n; i++) {
		struct member *m = &W.m[i];

		m->slot = i;
		m->hb_ms = opt.hb_fixed_ms ? (uint32_t)opt.hb_fixed_ms :
					     (uint32_t)rng_range(500, W.hb_max_ms);
		/* clocks run at rates within 1% of each other, from arbitrary offsets */
		m->rate = opt.calm || opt.figures ? 1.0 : 1.0 + (double)rng_range(-50, 50) / 10000.0;
		m->offset = rng_range(0, MS(1000000));
	}
	trace("seed %" PRIu64 ": %d members, codec %s, auth %s, hb max %d ms, loss %.2f dup %.2f "
	      "delay <%" PRId64 " ms", seed, n, W.use_codec ? "on" : "off",
	      W.super.flags ? "on" : "off", W.hb_max_ms, W.p_loss, W.p_dup, W.delay_max / MS(1));

	phase_begin(PH_COLD);
	while (heap_len > 0 && W.phase != PH_END) {
		struct event e = pop();

		W.now = e.t;
		handle_event(&e);
		if (W.violations && !opt.trace_live)
			break;
		if (W.steps > 50000000)
			die("more than 50M steps: the run does not settle");
	}

	r.first_leader = W.first_leader_at;
	r.failover = W.failover_at >= 0 && W.kill_at >= 0 ? W.failover_at - W.kill_at : -1;
	r.violations = W.violations;
	snprintf(r.violation, sizeof(r.violation), "%s", W.first_violation);
	r.steps = W.steps;
	world_free();
	return r;
}

/* ---- figures ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void print_row(const char *what, int n, int64_t *v, int count)
{
	if (count == 0) {
		printf("%-24s %3d  %8s\n", what, n, "-");
		return;
	}
	qsort(v, (size_t)count, sizeof(*v), cmp_i64);
	printf("%-24s %3d  %8d %8.1f %8.1f %8.1f %8.1f\n", what, n, count, (double)v[0] / 1e6,
	       (double)v[count / 2] / 1e6, (double)v[(count * 99) / 100] / 1e6,
	       (double)v[count - 1] / 1e6);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fusefs-sim [options]\n"
		"  --seed S            run only seed S (replay)\n"
		"  --seeds N           run N seeds starting at --first (default 1)\n"
		"  --first S           first seed (default 0)\n"
		"  --members N[,N...]  member counts, used round-robin by seed (default 3)\n"
		"  --break MODE        no-vote-persist | no-prevote | no-lease |\n"
		"                      no-restart-promise (repeatable)\n"
		"  --expect-violation  succeed only if some seed finds a violation\n"
		"  --calm              no chaos phase\n"
		"  --figures           print election and failover times (calm runs)\n"
		"  --hb-timeout MS     every member's heartbeat timeout (default: random 500..2000)\n"
		"  --trace             print every event as it happens\n"
		"  --quiet             print only the summary\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "seeds", required_argument, NULL, 'n' },
		{ "first", required_argument, NULL, 'F' },
		{ "members", required_argument, NULL, 'm' },
		{ "break", required_argument, NULL, 'b' },
		{ "expect-violation", no_argument, NULL, 'e' },
		{ "calm", no_argument, NULL, 'c' },
		{ "figures", no_argument, NULL, 'f' },
		{ "hb-timeout", required_argument, NULL, 'h' },
		{ "trace", no_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t found_seed = 0, total_steps = 0;
	char found_what[256] = "";
	int failures = 0, c;
	int64_t *cold = NULL, *fail = NULL;
	int ncold = 0, nfail = 0;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *tok, *save = NULL;

		switch (c) {
		case 's':
			opt.first_seed = strtoull(optarg, NULL, 10);
			opt.seeds = 1;
			break;
		case 'n':
			opt.seeds = strtoull(optarg, NULL, 10);
			break;
		case 'F':
			opt.first_seed = strtoull(optarg, NULL, 10);
			break;
		case 'm':
			opt.nmembers = 0;
			for (tok = strtok_r(optarg, ",", &save); tok && opt.nmembers < 8;
			     tok = strtok_r(NULL, ",", &save)) {
				int n = atoi(tok);

				if (n < 1 || n > MAXN) {
					fprintf(stderr, "fusefs-sim: --members %s: each must be 1..%d\n", tok, MAXN);
					return 2;
				}
				opt.members[opt.nmembers++] = n;
			}
			break;
		case 'b':
			if (!strcmp(optarg, "no-vote-persist"))
				opt.breaks |= QBREAK_NO_VOTE_PERSIST;
			else if (!strcmp(optarg, "no-prevote"))
				opt.breaks |= QBREAK_NO_PREVOTE;
			else if (!strcmp(optarg, "no-lease"))
				opt.breaks |= QBREAK_NO_LEASE;
			else if (!strcmp(optarg, "no-restart-promise"))
				opt.breaks |= QBREAK_NO_RESTART_PROMISE;
			else {
				fprintf(stderr, "fusefs-sim: --break %s: unknown mode\n", optarg);
				return 2;
			}
			break;
		case 'e':
			opt.expect_violation = true;
			opt.quiet = true;
			break;
		case 'c':
			opt.calm = true;
			break;
		case 'f':
			opt.figures = true;
			opt.calm = true;
			break;
		case 'h':
			opt.hb_fixed_ms = atoi(optarg);
			if (!quorum_hb_timeout_valid((uint64_t)opt.hb_fixed_ms)) {
				fprintf(stderr, "fusefs-sim: --hb-timeout %s: must be %d..%d\n", optarg,
					QUORUM_HB_TIMEOUT_MIN_MS, QUORUM_HB_TIMEOUT_MAX_MS);
				return 2;
			}
			break;
		case 't':
			opt.trace_live = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'H':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	cold = calloc(opt.seeds + 1, sizeof(*cold));
	fail = calloc(opt.seeds + 1, sizeof(*fail));
	for (int k = 0; k < opt.nmembers; k++) {
		ncold = nfail = 0;
		for (uint64_t i = 0; i < opt.seeds; i++) {
			uint64_t seed = opt.first_seed + i;
			int n = opt.figures ? opt.members[k] : opt.members[seed % (uint64_t)opt.nmembers];
			struct run_result r;

			if (!opt.figures && k > 0)
				break;
			r = run(seed, n);
			total_steps += r.steps;
			if (r.violations) {
				failures++;
				if (!found_what[0]) {
					found_seed = seed;
					snprintf(found_what, sizeof(found_what), "%s", r.violation);
				}
				if (opt.expect_violation)
					break;
			}
			if (r.first_leader >= 0)
				cold[ncold++] = r.first_leader;
			if (r.failover >= 0)
				fail[nfail++] = r.failover;
		}
		if (opt.figures) {
			if (k == 0)
				printf("%-24s %3s  %8s %8s %8s %8s %8s\n", "figure (ms)", "N", "runs", "min",
				       "median", "p99", "max");
			print_row("cold start to leader", opt.members[k], cold, ncold);
			print_row("leader death to leader", opt.members[k], fail, nfail);
		}
	}
	free(cold);
	free(fail);

	if (opt.expect_violation) {
		if (failures) {
			printf("fusefs-sim: break mode caught: seed %" PRIu64 ": %s\n", found_seed,
			       found_what);
			return 0;
		}
		printf("fusefs-sim: break mode NOT caught in %" PRIu64 " seeds\n", opt.seeds);
		return 1;
	}
	if (!opt.figures)
		printf("fusefs-sim: %" PRIu64 " seeds from %" PRIu64 ", %" PRIu64 " steps, %d with violations\n",
		       opt.seeds, opt.first_seed, total_steps, failures);
	return failures ? 1 : 0;
}
