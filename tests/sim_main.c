/*
 * fusefs-sim - run the real election code (quorum_step, the message codec,
 * fence selection, and the glue between the election and the quorum blocks
 * that the daemon uses, sequence-number reservation and repair included)
 * for 1..15 members against simulated time, a simulated network and a
 * simulated device, all from one seed, and check the invariants of
 * design.md section 10 after every step and at random instants between.
 *
 * Everything random comes from one PRNG seeded by --seed, and events are
 * processed in (time, sequence) order, so a seed always replays the same
 * run.  A run has five phases:
 *
 *   cold start  members start within 200 ms on a calm network;
 *   chaos       loss, delay, duplication, reordering, corruption, replays
 *               and misdelivered copies of datagrams, partitions that come
 *               and go, one-way links, crashes at any step and between a
 *               step's actions, crashes while a block write is out (the
 *               in-memory device loses, keeps or tears it), clean
 *               unmounts, restarts, pauses, device stalls (some longer
 *               than the agent waits), write errors, bursts of I/O errors
 *               on one member's path or on all, quorum blocks that rot (a
 *               flipped bit, one block at a time), clock-rate differences
 *               up to 1%, heartbeat timeouts changed at run time;
 *   heal        everything repaired and restarted (mounts refused over a
 *               bad block are remounted with the repair);
 *   failover    the leader is killed, cut off, cut off one way (it hears
 *               nothing, or nobody hears it) or its quorum thread hangs;
 *               a new one must be elected in time;
 *   rejoin      a follower is cut off for 2.5 heartbeat timeouts (and is
 *               sometimes restarted meanwhile), then returns; the leader
 *               must not change, from the cut to the end.
 * A quarter of the runs have a slow device: every I/O takes up to 9/10 of
 * the heartbeat timeout (which every member then shares).
 *
 * Invariants (docs/quorum.md, "What the simulator checks"):
 *   I1 with 3+ slots, at most one leader per term;
 *   I2 a slot's terms on disk never decrease; a slot never votes for two
 *      candidates in one term, on disk or on the wire, across restarts;
 *   I3 a server starts serving only when no other server is serving (every
 *      earlier leader, unreadable blocks included, was fenced first);
 *   I4 with 3+ slots, no two leaders' leases overlap in simulated time, and
 *      at no instant (probed between steps) may two servers serve;
 *   I5 liveness: a whole cluster serves within its bound after healing,
 *      a leader is elected within its bound after the old one dies;
 *   I6 a rejoining member does not depose a healthy leader;
 *   I7 persist before you speak: every message, server start and serve
 *      is backed by what the member's last completed write put on disk;
 *   I8 the codec against an oracle: a corrupted, misdelivered or stale
 *      datagram is rejected for that reason and any other is accepted; an
 *      incarnation's sequence numbers rise above all earlier ones';
 *   I9 no transient fault ends a membership, and every running member's
 *      block verifies at the end (bad blocks are repaired).
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
	int latency_ms;          /* -1: each run picks; else every I/O takes about this */
	bool stats;
	bool no_unreadable_fence; /* break: the server fences only readable leaders */
	bool no_mount_repair;    /* break: a mount over a bad block is never repaired */
	uint32_t codec_breaks;   /* QCODEC_BREAK_* */
	bool quiet;
} opt = { .seeds = 1, .members = { 3 }, .nmembers = 1, .latency_ms = -1 };

/* ---- events ---- */

enum ev_type {
	E_TIMER, E_DELIVER, E_PERSIST, E_FENCE, E_SERVER_DOWN,
	E_CRASH, E_RESTART, E_PAUSE, E_RESUME, E_NET, E_HB_CHANGE, E_PHASE, E_CHECK,
	E_UNMOUNT, E_PROBE, E_ROT, E_BURST, E_IO_LATE,
};

/* E_PERSIST phases (in from) */
enum { P_READ, P_WRITE, P_DONE };

/* E_DELIVER flags (in arg) */
#define D_CORRUPT 0x1  /* a bit flipped on the way */
#define D_REPLAY 0x2   /* a copy the network kept and sends again */
#define D_MISSENT 0x4  /* a copy delivered to a member it was not for */
#define D_FOREIGN 0x8  /* from a member of another filesystem on the same network */

struct event {
	int64_t t;
	uint64_t seq;
	enum ev_type type;
	int m;          /* member */
	int inc;        /* member incarnation the event belongs to */
	uint64_t gen;   /* timer / server generation; E_DELIVER: the datagram's seq */
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
	/* the one persist in flight, and the device as this member reaches it */
	bool persisting;
	struct quorum_action pact;
	struct bd_qblock pblk;     /* the block its write carries */
	enum { W_NONE, W_INFLIGHT, W_ABANDONED } write_state;
	struct bd_qblock durable;  /* our block as our last completed write left it */
	int64_t path_fail_until;   /* this member's path to the device fails until */
	int64_t io_busy_until;     /* a transfer the agent gave up on is out until */
	bool refused;              /* the last mount was refused over our bad block */
	bool reserve_wanted;       /* its sequence numbers run low (as the agent's) */
	bool thread_stalled;       /* paused is only the quorum thread: the server still answers */
	uint64_t pause_gen;        /* which pause an E_RESUME ends */
	uint64_t rx_shadow[MAXN];  /* the codec oracle: greatest seq accepted per sender */
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
	struct bd_dev *dev;        /* the shared device: the quorum blocks as bytes */
	struct bd_qblock shadow[MAXN]; /* each slot's block as last seen verifying */
	int64_t lat;               /* the device's latency per I/O this run */
	bool slow;                 /* a slow-device run */
	int64_t all_fail_until;    /* every member's path fails until */
	double p_rot, p_replay, p_long_stall;
	uint64_t seq_floor[MAXN];  /* sequence numbers earlier incarnations of a slot used */
	uint64_t seq_range;        /* numbers per reservation this run; 0: the daemon's */
	uint64_t seq_sent_max[MAXN];
	struct event replay_ring[64];
	int replay_count;
	int64_t heal_at;
	int64_t serving_at;        /* the first serving leader after healing */
	uint64_t repairs, refusals, rots, bursts, timeouts_io;
	/* I10: the promise each slot's acks made (local time of its clock), to which leader */
	struct { int64_t until; int leader; uint64_t term; } promise[MAXN];
	uint64_t max_vote_term[MAXN]; /* the greatest term each slot voted in, on the wire */
	struct quorum_codec foreign;  /* another filesystem's member, on the same network */
	bool foreign_ready;
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
	int rejoin_tries;
	int failover_how;          /* 0 killed, 1 cut off, 2 quorum thread hung, 3 deaf, 4 mute */
	int64_t failover_extra;    /* what the way it failed adds to the bound */
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
		/* elected only by votes cast for it in its own term (on the wire) */
		{
			int votes = 0;

			for (int i = 0; i < W.n; i++)
				votes += i == m->slot ? m->durable.vote_term == st->term &&
							       m->durable.vote_slot == m->slot :
							W.wire_vote[i][st->term % MAX_TERMS] == m->slot + 1;
			if (votes < st->cfg.votes_needed && !(opt.breaks & QBREAK_NO_VOTE_PERSIST))
				violation("I1: slot %d leads term %" PRIu64 " with %d votes cast for it in "
					  "that term, %d needed", m->slot, st->term, votes,
					  st->cfg.votes_needed);
		}
		/* the lease claim itself: nobody is elected while another's lease runs */
		for (int i = 0; i < W.n && W.n >= 3; i++)
			if (i != m->slot && W.m[i].lease_end > W.now && st->term > W.m[i].lead_term)
				violation("I4: slot %d elected in term %" PRIu64 " while slot %d's lease runs "
					  "until %.3f ms", m->slot, st->term, i,
					  (double)W.m[i].lease_end / 1e6);
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
static bool disk_read(int slot, struct bd_qblock *qb);

static void check_serve(struct member *m)
{
	for (int i = 0; i < W.n; i++) {
		struct bd_qblock qb;

		/* a server that is no longer the newest leader does not serve (3+ slots:
		 * with two, fencing settles it) */
		if (W.n >= 3 && disk_read(i, &qb) && qb.ev[FUSEFS_QEV_ELECT].term > m->srv_term)
			violation("I3: slot %d serves term %" PRIu64 " though slot %d was elected in term %"
				  PRIu64, m->slot, m->srv_term, i, qb.ev[FUSEFS_QEV_ELECT].term);
	}
	for (int i = 0; i < W.n; i++) {
		struct member *o = &W.m[i];

		if (i != m->slot && o->alive && o->srv == SRV_UP)
			violation("I3: slot %d serves term %" PRIu64 " while slot %d still serves term %"
				  PRIu64 " (not fenced)", m->slot, m->srv_term, i, o->srv_term);
	}
}

/* I4 at an instant between steps: with 3+ slots, at most one server may serve. */
static void probe_serving(void)
{
	int serving = -1;

	if (W.n < 3)
		return;
	for (int i = 0; i < W.n; i++) {
		struct member *m = &W.m[i];

		if (!m->alive || (m->paused && !m->thread_stalled) || m->srv != SRV_UP ||
		    !quorum_may_serve(&m->st, local_now(m)))
			continue;
		/* the answer is about this instant: no lease left, no serving (a step may
		 * be far off: the quorum thread can hang while the server answers) */
		if (W.now >= m->lease_end)
			violation("I4: slot %d may serve at %.3f ms, its lease ended at %.3f ms", i,
				  (double)W.now / 1e6, (double)m->lease_end / 1e6);
		if (serving >= 0)
			violation("I4: slots %d and %d may both serve at %.3f ms (terms %" PRIu64
				  " and %" PRIu64 ")", serving, i, (double)W.now / 1e6,
				  W.m[serving].st.term, m->st.term);
		serving = i;
	}
}

/* I7: a message goes out only with what it says already on our disk. */
static void check_sent(const struct member *m, int to, const struct quorum_msg *msg)
{
	const struct bd_qblock *d = &m->durable;

	if (d->ev[FUSEFS_QEV_BEGIN].rid != m->rid)
		violation("I7: slot %d sent %s before its BEGIN was durable", m->slot,
			  quorum_msg_type_name(msg->type));
	if (msg->term > d->ev[FUSEFS_QEV_TERM].term)
		violation("I7: slot %d sent %s with term %" PRIu64 ", its disk has %" PRIu64,
			  m->slot, quorum_msg_type_name(msg->type), msg->term,
			  d->ev[FUSEFS_QEV_TERM].term);
	if (msg->type == QMSG_VOTE && (d->vote_term != msg->term || d->vote_slot != to))
		violation("I7: slot %d sent a VOTE for slot %d in term %" PRIu64 ", its disk has a "
			  "vote for %d in %" PRIu64, m->slot, to, msg->term, d->vote_slot,
			  d->vote_term);
	if (msg->type == QMSG_REQUEST_VOTE && (d->vote_term != msg->term || d->vote_slot != m->slot))
		violation("I7: slot %d asked for votes in term %" PRIu64 " before its own vote was "
			  "durable", m->slot, msg->term);
	if (msg->type == QMSG_HEARTBEAT_ACK && msg->timeout_ms > d->hb_timeout_ms)
		violation("I7: slot %d promised %u ms, its disk holds %u", m->slot, msg->timeout_ms,
			  d->hb_timeout_ms);
}

/*
 * I10: a member keeps the promise its acks made (docs/quorum.md, rule 3 and
 * "Promises survive crashes"): until it runs out, on the member's own clock
 * and across restarts, it asks for no pre-vote, grants none, campaigns not
 * and votes not - unless the leader it promised resigned, or a newer
 * leader's heartbeat moved it.  And a member that voted for another
 * candidate in a term does not back an older leader afterwards.
 */
static void check_promises(struct member *m, int to, const struct quorum_msg *msg)
{
	bool electing = msg->type == QMSG_PRE_VOTE || msg->type == QMSG_REQUEST_VOTE ||
			msg->type == QMSG_VOTE ||
			(msg->type == QMSG_PRE_VOTE_REPLY && (msg->flags & QMSG_F_GRANTED));

	if (msg->type == QMSG_VOTE && to == W.promise[m->slot].leader)
		electing = false; /* a vote for the leader we back, durable only now */
	if (electing && local_now(m) < W.promise[m->slot].until)
		violation("I10: slot %d sent %s%s %.0f ms before the promise it made to slot %d's "
			  "lease (term %" PRIu64 ") runs out", m->slot, quorum_msg_type_name(msg->type),
			  msg->type == QMSG_PRE_VOTE_REPLY ? " (granted)" : "",
			  (double)(W.promise[m->slot].until - local_now(m)) / 1e6,
			  W.promise[m->slot].leader, W.promise[m->slot].term);
	if (msg->type == QMSG_HEARTBEAT_ACK) {
		const struct bd_qblock *d = &m->durable;

		if (msg->term < d->vote_term && d->vote_slot >= 0 && d->vote_slot != m->slot &&
		    d->vote_slot != to)
			violation("I10: slot %d backs slot %d's term %" PRIu64 " after voting for slot %d "
				  "in term %" PRIu64, m->slot, to, msg->term, d->vote_slot, d->vote_term);
		W.promise[m->slot].until = MAX(W.promise[m->slot].until,
					       local_now(m) + MS(msg->timeout_ms));
		W.promise[m->slot].leader = to;
		W.promise[m->slot].term = msg->term;
	}
	if (msg->type == QMSG_VOTE)
		W.max_vote_term[m->slot] = MAX(W.max_vote_term[m->slot], msg->term);
}

/* What frees a member of its promise: its leader resigned, or a newer one leads. */
static void promise_released(const struct member *m, const struct quorum_input *in)
{
	const struct quorum_msg *msg = &in->msg;

	if (in->type != QIN_MSG)
		return;
	/* (a leader of a greater term existed: the promised one's lease ended before it) */
	if ((msg->type == QMSG_RESIGNATION && msg->from == W.promise[m->slot].leader) ||
	    ((msg->type == QMSG_HEARTBEAT || msg->type == QMSG_RESIGNATION) &&
	     msg->term > W.promise[m->slot].term))
		W.promise[m->slot].until = 0;
}

/* ---- the device: quorum blocks as bytes, the paths members reach it by ---- */

static uint8_t dbuf[FUSEFS_BLOCK_SIZE] __attribute__((aligned(4096)));

/* The sim's wall clock, as a real one would read (for timestamps, repairs). */
static uint64_t wall_ns(void)
{
	return 1700000000ull * (uint64_t)NSEC_PER_SEC + (uint64_t)W.now;
}

/* Read slot's block from the device: true when it verifies. */
static bool disk_read(int slot, struct bd_qblock *qb)
{
	char why[160];

	if (bd_read(W.dev, bd_quorum_blkno(slot), dbuf, 1) < 0)
		die("in-memory device read failed");
	if (bd_qblock_decode((const void *)dbuf, W.super.fsid, bd_quorum_blkno(slot), qb, why,
			     sizeof(why)) == 0)
		return true;
	memset(qb, 0, sizeof(*qb));
	qb->vote_slot = -1;
	return false;
}

/* I2 on whatever the device now holds for slot (unless the write is a repair). */
static void disk_note(int slot, bool check)
{
	struct bd_qblock nb;

	if (!disk_read(slot, &nb))
		return; /* torn: the next reader sees a bad block */
	if (check)
		check_votes_on_disk(slot, &W.shadow[slot], &nb);
	W.shadow[slot] = nb;
}

static void disk_write(int slot, const struct bd_qblock *qb, bool durable)
{
	bd_qblock_encode(qb, W.super.fsid, bd_quorum_blkno(slot), (void *)dbuf);
	if (bd_write(W.dev, bd_quorum_blkno(slot), dbuf, 1, durable ? BD_WRITE_DURABLE : 0) < 0)
		die("in-memory device write failed");
}

static bool path_failing(const struct member *m)
{
	return W.now < m->path_fail_until || W.now < W.all_fail_until;
}

/* How long the agent waits for one transfer (agent.c blk_timeout_ns). */
static int64_t io_timeout(const struct member *m)
{
	return MAX(MS(2 * (int64_t)m->st.cfg.hb_timeout_ms), MS(1000));
}

static int64_t io_latency(void)
{
	int64_t l = W.lat + rng_range(0, W.lat / 8 + MS(1) / 5);

	if (W.chaos_on && rng_chance(0.02))
		l += rng_range(MS(50), MS(600)); /* a stall */
	if (W.chaos_on && rng_chance(W.p_long_stall))
		l += rng_range(MS(2 * W.hb_max_ms), MS(3 * W.hb_max_ms)); /* longer than the agent waits */
	return l;
}

/* ---- the network ---- */

static void net_send(struct member *m, int to, struct quorum_msg *msg)
{
	struct event e = { .type = E_DELIVER, .m = to, .from = m->slot };
	int copies = 1;

	msg->to = (uint8_t)to;
	check_sent(m, to, msg);
	check_promises(m, to, msg);
	if (msg->type == QMSG_VOTE)
		check_wire_vote(m->slot, to, msg->term);
	if (msg->type == QMSG_REQUEST_VOTE)
		check_wire_vote(m->slot, m->slot, msg->term); /* a candidate votes for itself */
	if (W.use_codec) {
		if (quorum_msg_encode(&m->codec, msg, e.bytes, sizeof(e.bytes)) < 0) {
			/* out of reserved numbers: the agent drops it and asks for more */
			m->reserve_wanted = true;
			trace("slot %d: no sequence numbers reserved for a %s", m->slot,
			      quorum_msg_type_name(msg->type));
			return;
		}
		if (quorum_glue_seq_low(&m->glue, m->codec.tx_seq))
			m->reserve_wanted = true;
		/* I8: an incarnation's numbers rise above every earlier one's */
		if (msg->seq <= W.seq_floor[m->slot])
			violation("I8: slot %d (rid %" PRIx64 ") sent seq %" PRIu64 ", not above %" PRIu64
				  " an earlier mount of the slot used", m->slot, m->rid, msg->seq,
				  W.seq_floor[m->slot]);
		W.seq_sent_max[m->slot] = MAX(W.seq_sent_max[m->slot], msg->seq);
		e.gen = msg->seq;
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
			if (W.use_codec && rng_chance(W.p_corrupt)) {
				d.bytes[rng_below(sizeof(d.bytes))] ^= (uint8_t)(1u << rng_below(8));
				d.arg |= D_CORRUPT;
			}
		}
		d.t = W.now + delay;
		push(d);
	}
	/* the network keeps copies, and sends some again later, or to someone else */
	W.replay_ring[W.replay_count++ % ARRAY_SIZE(W.replay_ring)] = e;
	if (W.chaos_on && rng_chance(W.p_replay)) {
		struct event r = W.replay_ring[rng_below(MIN((uint64_t)W.replay_count,
							    ARRAY_SIZE(W.replay_ring)))];

		r.arg = D_REPLAY;
		if (W.use_codec && rng_chance(0.3)) {
			r.m = (int)rng_below((uint64_t)W.n);
			if (r.m != (int)r.bytes[48])
				r.arg |= D_MISSENT;
		}
		r.t = W.now + rng_range(MS(1), MS(3000));
		push(r);
	}
	/* and a member of another filesystem talks on the same ports */
	if (W.use_codec && W.chaos_on && rng_chance(W.p_replay / 2)) {
		struct event f = e;
		struct quorum_msg fm = *msg;

		W.foreign.our_slot = m->slot;
		if (quorum_msg_encode(&W.foreign, &fm, f.bytes, sizeof(f.bytes)) > 0) {
			f.arg = D_FOREIGN;
			f.gen = fm.seq;
			f.t = W.now + rng_range(MS(1), MS(50));
			push(f);
		}
	}
}

/* ---- member steps ---- */

static void member_step(struct member *m, struct quorum_input *in);

/*
 * The agent's persist, phase by phase (agent.c): a read of our block, the
 * glue's verdict, a durable write; each transfer takes the device's
 * latency, fails while the member's path fails, and is given up on after
 * io_timeout (the transfer then still completes - a write still lands -
 * and until it does the agent starts no other: -EBUSY).
 */
static void persist_event(struct member *m, int phase, int64_t at, int res)
{
	struct event e = { .type = E_PERSIST, .m = m->slot, .inc = m->inc, .from = phase,
			   .arg = res, .t = at };

	push(e);
}

static void persist_start(struct member *m, const struct quorum_action *a)
{
	int64_t lat = io_latency();

	m->pact = *a;
	m->persisting = true;
	m->write_state = W_NONE;
	if (W.now < m->io_busy_until) {
		persist_event(m, P_DONE, W.now, -EBUSY);
		return;
	}
	if (lat > io_timeout(m)) {
		m->io_busy_until = W.now + lat;
		W.timeouts_io++;
		persist_event(m, P_DONE, W.now + io_timeout(m), -ETIMEDOUT);
		return;
	}
	persist_event(m, P_READ, W.now + lat, 0);
}

/* The read came back: what the glue makes of it, then the write. */
static int persist_read_done(struct member *m)
{
	struct bd_qblock nb;
	bool readable;
	int64_t lat;
	int ret;

	if (path_failing(m))
		return -EIO;
	readable = disk_read(m->slot, &nb);
	ret = quorum_glue_persist(&m->glue, &m->pact, wall_ns() / (uint64_t)NSEC_PER_SEC, 0, readable,
				  &nb);
	if (ret == -EEXIST)
		violation("glue: slot %d rid %" PRIx64 " finds BEGIN rid %" PRIx64 " on its block",
			  m->slot, m->rid, nb.ev[FUSEFS_QEV_BEGIN].rid);
	if (ret < 0)
		return ret;
	if (ret == QGLUE_UNCHANGED)
		return 0;
	if (ret == QGLUE_REPAIR)
		trace("slot %d: our block failed verification: rewriting it from memory", m->slot);
	m->pblk = nb;
	lat = io_latency();
	if (lat > io_timeout(m)) {
		/* given up on, but the write is out and will land */
		struct event late = { .type = E_IO_LATE, .m = m->slot, .inc = m->inc, .t = W.now + lat };

		m->write_state = W_ABANDONED;
		m->io_busy_until = W.now + lat;
		W.timeouts_io++;
		push(late);
		persist_event(m, P_DONE, W.now + io_timeout(m), -ETIMEDOUT);
		return 1;
	}
	m->write_state = W_INFLIGHT;
	persist_event(m, P_WRITE, W.now + lat,
		      W.chaos_on && rng_chance(W.p_write_err) ? -EIO : 0);
	return 1;
}

/* The write came back: it landed unless the path failed. */
static int persist_write_done(struct member *m, int res)
{
	m->write_state = W_NONE;
	if (res < 0 || path_failing(m))
		return res < 0 ? res : -EIO;
	disk_write(m->slot, &m->pblk, true);
	disk_note(m->slot, true);
	quorum_glue_written(&m->glue, &m->pblk);
	m->durable = m->pblk;
	if (W.use_codec)
		quorum_codec_set_limit(&m->codec, m->glue.seq_reserved);
	return 0;
}

static void server_start(struct member *m, uint64_t term)
{
	struct bd_qblock blocks[MAXN];
	const uint16_t present = (uint16_t)((1u << W.n) - 1);
	uint16_t readable = 0;
	struct quorum_fence_plan plan;
	struct event e = { .m = m->slot, .inc = m->inc };

	/* I7: ELECT is on the disk before the server starts */
	if (m->durable.ev[FUSEFS_QEV_ELECT].term != term)
		violation("I7: slot %d starts its server for term %" PRIu64 ", its disk's ELECT is %"
			  PRIu64, m->slot, term, m->durable.ev[FUSEFS_QEV_ELECT].term);
	m->srv = SRV_FENCING;
	m->srv_term = term;
	m->srv_gen++;
	e.gen = m->srv_gen;
	e.type = E_SERVER_DOWN;
	e.t = W.now + MS(1);
	if (path_failing(m)) {
		trace("slot %d server term %" PRIu64 ": cannot read the quorum blocks", m->slot, term);
		e.arg = -EIO;
		push(e);
		return;
	}
	for (int i = 0; i < W.n; i++)
		if (disk_read(i, &blocks[i]))
			readable |= (uint16_t)(1u << i);
	quorum_fence_select(blocks, readable, term, m->rid, &plan);
	if (plan.superseded_term) {
		trace("slot %d server term %" PRIu64 ": superseded by slot %d term %" PRIu64,
		      m->slot, term, plan.superseded_slot, plan.superseded_term);
		e.arg = -ESTALE;
		push(e);
		return;
	}
	if (!opt.no_unreadable_fence)
		quorum_fence_add_unreadable(&plan, present & ~readable, m->slot);
	m->fences_left = plan.count;
	for (int i = 0; i < plan.count; i++) {
		e.type = E_FENCE;
		e.from = plan.target[i].slot;
		e.arg = (int64_t)plan.target[i].rid; /* 0: by slot, its block is unreadable */
		e.t = W.now + rng_range(MS(5), W.chaos_on ? MS(800) : MS(50));
		trace("slot %d server term %" PRIu64 ": fencing slot %d rid %" PRIx64 " (term %" PRIu64
		      "%s)", m->slot, term, plan.target[i].slot, plan.target[i].rid, plan.target[i].term,
		      plan.target[i].event == QUORUM_FENCE_UNREADABLE ? ", block unreadable" : "");
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

static void member_crash(struct member *m, const char *why);
static void member_gone(struct member *m, const char *why);
static void restart_later(struct member *m, int64_t delay, bool repair);

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
			if (m->durable.ev[FUSEFS_QEV_FENCE].term != a->term)
				violation("I7: slot %d serves term %" PRIu64 ", its disk's FENCE is %"
					  PRIu64, m->slot, a->term, m->durable.ev[FUSEFS_QEV_FENCE].term);
			check_serve(m);
			m->srv = SRV_UP;
			if (W.heal_at >= 0 && W.serving_at < 0)
				W.serving_at = W.now;
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
			/* I9: nothing the simulator does is beyond retrying */
			violation("I9: slot %d left the quorum for good: %s", m->slot,
				  errstr((int)a->a));
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
	promise_released(m, in);
	quorum_step(&m->st, in, local_now(m), &out);
	W.steps++;
	if (in->type == QIN_START && m->st.term < in->start.greatest_term)
		violation("I2: slot %d started in term %" PRIu64 " below the greatest on disk, %" PRIu64,
			  m->slot, m->st.term, in->start.greatest_term);
	if (m->st.role == QROLE_LEADER && m->st.dev_failing)
		violation("I9: slot %d still leads with its device failing (%s)", m->slot,
			  errstr(m->st.dev_err));
	apply_actions(m, &out);
	if (!m->alive)
		return;
	if (m->reserve_wanted) {
		struct quorum_input more = { .type = QIN_RESERVE };

		m->reserve_wanted = false;
		member_step(m, &more);
		return;
	}
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

/* Remount slot m after delay (the operator's doing when repair is set). */
static void restart_later(struct member *m, int64_t delay, bool repair)
{
	struct event r = { .type = E_RESTART, .m = m->slot, .inc = m->inc, .arg = repair };

	r.t = W.now + delay;
	push(r);
}

/*
 * A mount over our own block that fails verification: the operator's
 * quorum_repair (glue.c quorum_glue_rebuild, as the agent runs it).  The
 * rebuilt block's spent vote is a marker, not a vote, and a dead
 * incarnation's own candidacy above the rebuilt term had no voters (every
 * voter's block would show that term): the vote records are told so.
 */
static bool repair_block(struct member *m, struct bd_qblock *blocks, uint16_t *readable)
{
	struct bd_qblock nb;
	uint64_t g;

	if (quorum_glue_rebuild(&m->glue, blocks, *readable, (uint16_t)((1u << W.n) - 1),
				(uint32_t)W.hb_max_ms, wall_ns(), &nb) < 0) {
		trace("slot %d: quorum_repair refused: another block is unreadable too", m->slot);
		return false;
	}
	g = nb.vote_term;
	trace("slot %d: quorum_repair rebuilds its block at term %" PRIu64, m->slot, g);
	if (g < W.max_vote_term[m->slot] || nb.vote_slot != m->slot)
		violation("I2: slot %d's rebuilt block (vote term %" PRIu64 ", slot %d) could vote "
			  "again in term %" PRIu64 ", where it voted", m->slot, g, nb.vote_slot,
			  W.max_vote_term[m->slot]);
	disk_write(m->slot, &nb, true);
	disk_note(m->slot, false);
	if (g < MAX_TERMS)
		W.disk_vote[m->slot][g] = (int8_t)(m->slot + 1);
	for (uint64_t t = g + 1; t < MAX_TERMS; t++) {
		if (W.wire_vote[m->slot][t] == m->slot + 1)
			W.wire_vote[m->slot][t] = 0;
		if (W.disk_vote[m->slot][t] == m->slot + 1)
			W.disk_vote[m->slot][t] = 0;
	}
	blocks[m->slot] = nb;
	*readable |= (uint16_t)(1u << m->slot);
	W.repairs++;
	return true;
}

static void member_start(struct member *m, bool repair)
{
	struct quorum_config cfg = {
		.our_slot = m->slot,
		.present_mask = (uint16_t)((1u << W.n) - 1),
		.votes_needed = quorum_votes_needed(W.n),
		.hb_timeout_ms = m->hb_ms,
		.breaks = opt.breaks,
	};
	struct quorum_holder self = { .pid = 1000 + (uint64_t)m->slot, .start_ticks = (uint64_t)m->inc };
	struct bd_qblock blocks[MAXN];
	uint16_t readable = 0;
	struct quorum_input in;

	if (path_failing(m)) {
		trace("slot %d: mount failed: its path to the device fails", m->slot);
		restart_later(m, rng_range(MS(200), MS(1000)), repair);
		return;
	}
	for (int i = 0; i < W.n; i++)
		if (disk_read(i, &blocks[i]))
			readable |= (uint16_t)(1u << i);
	m->rid = W.rid_next++;
	self.boot_id[0] = (uint8_t)(m->slot + 1); /* each slot on a host of its own */
	quorum_glue_init(&m->glue, m->slot, m->rid, &self);
	if (W.seq_range)
		m->glue.seq_range = W.seq_range; /* reservations run out, and are extended */
	if (!(readable & (1u << m->slot))) {
		if (!repair) {
			trace("slot %d: mount refused: its quorum block fails verification", m->slot);
			W.refusals++;
			m->refused = true;
			if (!opt.no_mount_repair)
				restart_later(m, W.chaos_on ? rng_range(MS(300), MS(2000)) :
							      rng_range(MS(50), MS(300)), true);
			return;
		}
		if (!repair_block(m, blocks, &readable)) {
			restart_later(m, rng_range(MS(300), MS(1000)), true);
			return;
		}
	}
	m->refused = false;
	m->alive = true;
	m->paused = false;
	m->inc++;
	m->persisting = false;
	m->write_state = W_NONE;
	m->io_busy_until = 0;
	m->srv = SRV_NONE;
	m->srv_gen++;
	m->timer_gen++;
	m->timer_at = -1;
	m->nbacklog = 0;
	m->leading = false;
	memset(m->rx_shadow, 0, sizeof(m->rx_shadow));
	quorum_init(&m->st, &cfg);
	/* what the agent reads from the blocks at start, through the same glue */
	if (quorum_glue_start(&m->glue, blocks, readable, &in) < 0)
		die("slot %d: own block unreadable at start", m->slot);
	m->durable = blocks[m->slot];
	W.seq_floor[m->slot] = W.seq_sent_max[m->slot];
	if (W.use_codec) {
		if (m->codec_ready)
			quorum_codec_free(&m->codec);
		/* sequence numbers from the disk, as the agent takes them */
		if (quorum_codec_init(&m->codec, &W.super, m->slot, m->rid, m->glue.seq_base) < 0)
			die("codec init failed");
		m->codec.breaks = opt.codec_breaks;
		quorum_codec_set_limit(&m->codec, m->glue.seq_base); /* nothing before BEGIN */
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
	trace("slot %d: %s%s", m->slot, why,
	      m->write_state != W_NONE ? " (a block write was out)" : "");
	if (m->write_state != W_NONE) {
		/* the write was out: the device loses it, keeps it or tears it */
		disk_write(m->slot, &m->pblk, false);
		bd_mem_crash(W.dev, BD_CRASH_RANDOM);
		disk_note(m->slot, true);
		m->write_state = W_NONE;
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
	member_crash(m, why);
	restart_later(m, rng_range(MS(10), W.chaos_on ? MS(2000) : MS(300)), false);
}

/* ---- event handling ---- */

/*
 * I8: what the codec must make of a datagram, from what the network did to
 * it and what this member's codec accepted since it started.  Returns the
 * expected rejection (QINV_*), or -1 for "accepted".
 */
static int codec_expect(const struct member *m, const struct event *e)
{
	if (e->arg & D_CORRUPT)
		return QINV_NR; /* rejected, for whichever check the flipped bit breaks */
	if (e->arg & D_FOREIGN)
		return (W.super.flags & FUSEFS_SUPER_FLAG_AUTH) ? QINV_bad_tag : QINV_other_fsid;
	if (e->from == m->slot)
		return QINV_from_self;
	if (e->arg & D_MISSENT)
		return QINV_wrong_dest;
	if (e->gen <= m->rx_shadow[e->from])
		return QINV_old_seq;
	return -1;
}

static void deliver(struct member *m, const struct event *e)
{
	struct quorum_input in = { .type = QIN_MSG };

	if (W.use_codec) {
		int want = codec_expect(m, e);
		int got = quorum_msg_decode(&m->codec, e->bytes, sizeof(e->bytes), &in.msg);

		got = got < 0 ? -got - 1 : -1;
		if ((want == -1) != (got == -1) || (want != QINV_NR && want != got))
			violation("I8: slot %d's codec %s a datagram from slot %d seq %" PRIu64 "%s%s%s, "
				  "expected %s", m->slot, got == -1 ? "accepted" : quorum_invalid_name(got),
				  e->from, e->gen, e->arg & D_CORRUPT ? " (corrupted)" : "",
				  e->arg & D_REPLAY ? " (replayed)" : "",
				  e->arg & D_MISSENT ? " (misdelivered)" : "",
				  want == -1 ? "accepted" : want == QINV_NR ? "any rejection" :
				  quorum_invalid_name(want));
		if (got != -1)
			return;
		m->rx_shadow[e->from] = e->gen;
	} else {
		if (e->arg & (D_CORRUPT | D_MISSENT | D_FOREIGN))
			return;
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
	case E_PERSIST: {
		int res = (int)e->arg;

		if (!m->persisting)
			return;
		if (e->from == P_READ) {
			res = persist_read_done(m);
			if (res > 0)
				return; /* the write is out */
		} else if (e->from == P_WRITE) {
			res = persist_write_done(m, res);
		}
		m->persisting = false;
		if (res < 0)
			trace("slot %d: quorum block I/O failed: %s", m->slot, errstr(res));
		in.type = QIN_PERSIST_DONE;
		in.persist.res = res;
		member_step(m, &in);
		break;
	}
	case E_IO_LATE:
		/* a write the agent gave up on lands after all (or the crash decided) */
		if (m->write_state == W_ABANDONED) {
			m->write_state = W_NONE;
			disk_write(m->slot, &m->pblk, true);
			disk_note(m->slot, true);
			trace("slot %d: a write it gave up on landed late", m->slot);
		}
		break;
	case E_FENCE: {
		struct member *victim = NULL;
		bool ok = !W.chaos_on || rng_chance(0.9);

		if (e->gen != m->srv_gen || m->srv != SRV_FENCING)
			return;
		for (int i = 0; i < W.n; i++)
			if (W.m[i].alive && W.m[i].rid == (uint64_t)e->arg)
				victim = &W.m[i];
		if (e->arg == 0 && W.m[e->from].alive)
			victim = &W.m[e->from]; /* by slot: whoever runs there */
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

/* A settled cluster: every member mounted (BEGIN durable) and following leader. */
static bool all_follow(int leader)
{
	for (int i = 0; i < W.n; i++) {
		const struct quorum_state *st = &W.m[i].st;

		if (!W.m[i].alive || W.m[i].paused || !st->begun)
			return false;
		if (i != leader && (st->leader_slot != leader || st->durable.term < st->term))
			return false;
	}
	return true;
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

/* Every link into slot (deaf: it sends, hears nothing) or out of it (mute) down. */
static void cut_one_way(int slot, bool deaf)
{
	for (int i = 0; i < W.n; i++)
		if (deaf)
			W.blocked[i][slot] = true;
		else
			W.blocked[slot][i] = true;
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

/*
 * A quorum block rots: one bit flips on the medium.  One bad block at a
 * time (the single fault design.md promises to ride out); half the time the
 * leader's, and then sometimes the leader is also paused (a hung host whose
 * block went bad: it must be fenced by slot before anyone serves).
 */
static void rot_block(void)
{
	struct bd_qblock qb;
	int slot = (int)rng_below((uint64_t)W.n), leader = -1;
	uint64_t bit;

	for (int i = 0; i < W.n; i++)
		if (!disk_read(i, &qb))
			return;
	for (int i = 0; i < W.n; i++)
		if (W.m[i].alive && !W.m[i].paused && W.m[i].st.role == QROLE_LEADER)
			leader = i;
	if (leader >= 0 && rng_chance(0.5))
		slot = leader;
	bd_mem_peek(W.dev, bd_quorum_blkno(slot), dbuf, 1);
	bit = rng_below(FUSEFS_BLOCK_SIZE * 8);
	dbuf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	bd_mem_poke(W.dev, bd_quorum_blkno(slot), dbuf, 1);
	W.rots++;
	trace("device: slot %d's block rots (bit %" PRIu64 ")", slot, bit);
	if (slot == leader && rng_chance(0.4)) {
		struct event p = { .type = E_PAUSE, .m = slot, .t = W.now,
				   .arg = rng_range(MS(W.hb_max_ms), MS(3 * W.hb_max_ms)) };

		push(p);
	}
}

static void schedule_chaos(int64_t start, int64_t end)
{
	/* device faults: blocks that rot, bursts of I/O errors on one path or all */
	for (int64_t t = start + rng_range(0, MS(3000)); t < end && W.p_rot > 0;
	     t += rng_range(MS(500), (int64_t)((double)MS(4000) / W.p_rot))) {
		struct event e = { .type = E_ROT, .t = t };

		push(e);
	}
	for (int64_t t = start + rng_range(0, MS(4000)); t < end; t += rng_range(MS(1500), MS(6000))) {
		struct event e = { .type = E_BURST, .t = t, .m = rng_chance(0.4) ? -1 :
								    (int)rng_below((uint64_t)W.n) };

		e.arg = rng_range(MS(50), MS(3000));
		push(e);
	}
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
			} else if (!W.slow) {
				e.type = E_HB_CHANGE;
				e.arg = rng_range(500, W.hb_max_ms);
			} else {
				e.type = E_PAUSE; /* a slow run keeps every timeout at its maximum */
				e.arg = rng_range(MS(50), MS(W.hb_max_ms));
			}
			push(e);
			t += rng_range(MS(800), MS(5000));
		}
	}
}

/*
 * The liveness bounds (docs/quorum.md, "Liveness"), for the slowest I/O
 * this run's device takes (its latency plus jitter; stalls stop with the
 * chaos).  From a healed, whole cluster to a serving leader: two heartbeat
 * timeouts (a restarted member keeps its promise, then waits one when the
 * blocks show a leader), a device retry (1 s), an operator's repair, and
 * the election and the server's writes, each a whole number of I/Os with
 * timeouts stretched by the measured write time.  From a leader's death to
 * the next election: a heartbeat timeout, a second, and the writes of one
 * candidacy and its votes.
 */
static int64_t io_max(void)
{
	return W.lat + W.lat / 8 + MS(1) / 5;
}

static int64_t heal_bound(void)
{
	return MS(2 * W.hb_max_ms) + MS(2500) + 40 * io_max();
}

static int64_t failover_bound(void)
{
	return MS(W.hb_max_ms) + MS(1000) + 20 * io_max() + W.failover_extra;
}

/*
 * A leader cut off one way still reaches the others with its pre-votes,
 * and each of them holds its own election back once for that proposal:
 * an election timeout and three writes, at the member's estimate of a
 * write (which earlier stalls may have raised well past io_max).
 */
static int64_t one_way_extra(void)
{
	int64_t est = 0;

	for (int i = 0; i < W.n; i++)
		est = MAX(est, W.m[i].st.persist_est_ns);
	return MS(QUORUM_ELECT_MIN_MS + QUORUM_ELECT_VAR_MS) + 3 * est;
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
		W.all_fail_until = 0;
		/* measured from when the device answers in time again: a stalled transfer may
		 * still be out */
		W.heal_at = W.now;
		for (int i = 0; i < W.n; i++) {
			W.m[i].path_fail_until = 0;
			W.heal_at = MAX(W.heal_at, W.m[i].io_busy_until);
		}
		W.serving_at = -1;
		for (int i = 0; i < W.n; i++) {
			struct member *m = &W.m[i];

			if (m->paused) {
				struct event e = { .type = E_RESUME, .m = i, .t = W.now,
						   .gen = m->pause_gen };

				push(e);
			} else if (!m->alive) {
				struct event e = { .type = E_RESTART, .m = i, .inc = m->inc,
						   .t = W.now + rng_range(0, MS(100)) };

				push(e);
			}
		}
		/* I5: a serving leader within the bound of a calm, whole cluster */
		next.t = W.heal_at + heal_bound() + MS(1);
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
		W.failover_extra = 0;
		W.failover_at = -1;
		/*
		 * the leader dies, or is cut off (both ways, or only its way in, or
		 * only its way out), or its quorum thread hangs (its server still
		 * answering): every way, another leads in time, and the old one
		 * stops serving
		 */
		W.failover_how = (int)rng_below(opt.calm ? 1 : W.n >= 3 ? 5 : 3);
		/* (two members cannot elect around one that is half there: no majority) */
		if (W.failover_how == 0) {
			member_crash(&W.m[leader], "killed to measure failover");
		} else if (W.failover_how == 1) {
			isolate(leader);
			trace("slot %d: cut off to measure failover", leader);
		} else if (W.failover_how >= 3) {
			W.failover_extra = W.failover_how == 3 ? one_way_extra() : 0;
			cut_one_way(leader, W.failover_how == 3);
			trace("slot %d: its way %s cut to measure failover", leader,
			      W.failover_how == 3 ? "in" : "out");
		} else {
			struct event r = { .type = E_RESUME, .m = leader, .inc = W.m[leader].inc,
					   .t = W.now + failover_bound() + MS(400),
					   .gen = ++W.m[leader].pause_gen };

			W.m[leader].paused = true;
			W.m[leader].thread_stalled = true;
			trace("slot %d: quorum thread hangs to measure failover", leader);
			push(r);
		}
		{
			struct event c = { .type = E_CHECK, .t = W.now + failover_bound(),
					   .arg = PH_FAILOVER };

			push(c);
		}
		next.t = W.now + failover_bound() + MS(500);
		break;
	case PH_REJOIN:
		if (W.failover_how == 1 || W.failover_how >= 3)
			heal_network();
		/* restart the killed leader first, and once every mount is complete (its
		 * BEGIN durable) and a leader leads, cut off a follower */
		for (int i = 0; i < W.n; i++)
			if (!W.m[i].alive)
				member_start(&W.m[i], false);
		leader = current_leader();
		if (W.n >= 3 && (leader < 0 || !all_follow(leader)) && W.rejoin_tries++ < 20) {
			next.t = W.now + MAX(4 * io_max(), MS(100));
			next.arg = PH_REJOIN;
			push(next);
			return;
		}
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
		/* I9: every running member's block verifies (bad ones were repaired) */
		for (int i = 0; i < W.n; i++) {
			struct bd_qblock qb;

			if (W.m[i].alive && !disk_read(i, &qb))
				violation("I9: slot %d runs with a quorum block that fails verification",
					  i);
			if (!W.m[i].alive && W.m[i].refused)
				violation("I9: slot %d cannot mount: its quorum block was never repaired", i);
			/* each ELECT of a member no longer leading got its STOP */
			if (W.m[i].alive && W.m[i].st.role != QROLE_LEADER && W.m[i].srv == SRV_NONE &&
			    disk_read(i, &qb) && qb.ev[FUSEFS_QEV_ELECT].rid == W.m[i].rid &&
			    qb.ev[FUSEFS_QEV_ELECT].term > qb.ev[FUSEFS_QEV_STOP].term &&
			    W.m[i].st.want.ev_term[FUSEFS_QEV_STOP] < qb.ev[FUSEFS_QEV_ELECT].term)
				violation("I7: slot %d's server of term %" PRIu64 " is down, but its block "
					  "records no STOP, nor means to", i, qb.ev[FUSEFS_QEV_ELECT].term);
		}
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
		if (leader < 0 || W.m[leader].srv != SRV_UP)
			violation("I5: no serving leader %.0f ms after the cluster was healed and whole "
				  "(device I/O up to %.0f ms)", (double)heal_bound() / 1e6,
				  (double)io_max() / 1e6);
		break;
	case PH_FAILOVER:
		if (W.failover_how == 1 || W.failover_how >= 3)
			heal_network(); /* the cut-off leader comes back, and must not unseat anyone */
		if (W.failover_at < 0)
			violation("I5: no new leader within %.0f ms of killing the leader of term %"
				  PRIu64 " (device I/O up to %.0f ms)", (double)failover_bound() / 1e6,
				  W.killed_term, (double)io_max() / 1e6);
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
	struct member *m = (e->m >= 0 && e->m < W.n) ? &W.m[e->m] : &W.m[0];

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
	case E_PROBE:
		probe_serving();
		e->t = W.now + rng_range(MS(1), MS(40));
		push(*e);
		return;
	case E_ROT:
		if (W.chaos_on)
			rot_block();
		return;
	case E_BURST:
		if (!W.chaos_on)
			return;
		W.bursts++;
		if (e->m < 0) {
			W.all_fail_until = MAX(W.all_fail_until, W.now + e->arg);
			trace("device: every path fails for %.0f ms", (double)e->arg / 1e6);
		} else {
			m->path_fail_until = MAX(m->path_fail_until, W.now + e->arg);
			trace("device: slot %d's path fails for %.0f ms", e->m, (double)e->arg / 1e6);
		}
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
		member_start(m, e->arg != 0);
		return;
	case E_PAUSE:
		if (!W.chaos_on || !m->alive || m->paused)
			return;
		m->thread_stalled = rng_chance(0.4);
		trace("slot %d: %s for %.0f ms", m->slot,
		      m->thread_stalled ? "quorum thread stalled (its server still answers)" : "paused",
		      (double)e->arg / 1e6);
		m->paused = true;
		{
			struct event r = { .type = E_RESUME, .m = e->m, .inc = m->inc, .t = W.now + e->arg,
					   .gen = ++m->pause_gen };

			push(r);
		}
		return;
	case E_RESUME:
		if (!m->alive || !m->paused || e->gen != m->pause_gen)
			return; /* not this pause's end */
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
	bool slow;
	uint64_t repairs, rots;
	int64_t heal_to_serving;
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
	bd_close(W.dev);
	if (W.foreign_ready)
		quorum_codec_free(&W.foreign);
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
	for (int i = 0; i < n; i++)
		bd_addr_parse("127.0.0.1", (uint16_t)(7000 + i), &W.super.slots[i]);
	if (bd_mem_open(FUSEFS_STORE_BLKNO, 512, rng_next(), &W.dev) < 0)
		die("cannot make the in-memory device");
	for (int i = 0; i < n; i++) {
		struct bd_qblock empty = { .vote_slot = -1 }; /* as mkfs leaves it */

		disk_write(i, &empty, true);
		W.shadow[i] = empty;
	}
	W.hb_max_ms = opt.hb_fixed_ms ? opt.hb_fixed_ms : (int)rng_range(500, 4000);
	/* the device: fast mostly; a quarter of the runs slow, up to 9/10 of the timeout per I/O */
	W.slow = opt.latency_ms < 0 && !opt.figures && rng_chance(0.25);
	if (opt.latency_ms >= 0)
		W.lat = MS(opt.latency_ms);
	else if (W.slow)
		W.lat = rng_range(MS(W.hb_max_ms) / 20, MS(W.hb_max_ms) * 9 / 10);
	else
		W.lat = rng_range(MS(1) / 5, MS(3));
	W.p_rot = (double)rng_range(0, 100) / 100.0;
	W.p_replay = (double)rng_range(0, 3) / 100.0;
	W.p_long_stall = (double)rng_range(0, 3) / 1000.0;
	/* small reservations, extended as they run low: at least two broadcasts' worth, as
	 * the daemon's 2^20 is for it */
	W.seq_range = !W.slow && rng_chance(0.3) ? (uint64_t)rng_range(4 * n, 4 * n + 200) : 0;
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
			   W.slow ? (uint32_t)W.hb_max_ms : (uint32_t)rng_range(500, W.hb_max_ms);
		/* clocks run at rates within 1% of each other, from arbitrary offsets */
		m->rate = opt.calm || opt.figures ? 1.0 : 1.0 + (double)rng_range(-50, 50) / 10000.0;
		m->offset = rng_range(0, MS(1000000));
	}
	{
		struct bd_super other = W.super; /* another filesystem: its own fsid and secret */

		other.fsid ^= 0x5a5a;
		other.cluster_secret[0] ^= 1;
		if (quorum_codec_init(&W.foreign, &other, 0, 0xf0f0, 0) < 0)
			die("codec init failed");
		W.foreign_ready = true;
	}
	trace("seed %" PRIu64 ": %d members, codec %s, auth %s, hb max %d ms, loss %.2f dup %.2f "
	      "delay <%" PRId64 " ms, device I/O %.1f ms", seed, n, W.use_codec ? "on" : "off",
	      W.super.flags ? "on" : "off", W.hb_max_ms, W.p_loss, W.p_dup, W.delay_max / MS(1),
	      (double)W.lat / 1e6);

	W.heal_at = -1;
	phase_begin(PH_COLD);
	{
		struct event probe = { .type = E_PROBE, .t = MS(1) };

		push(probe);
	}
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
	r.slow = W.slow;
	r.repairs = W.repairs;
	r.rots = W.rots;
	r.heal_to_serving = W.serving_at >= 0 ? W.serving_at - W.heal_at : -1;
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
		"                      no-restart-promise | no-device-retry | no-slow-device |\n"
		"                      no-check | no-unreadable-fence | no-mount-repair |\n"
		"                      any-tag (repeatable)\n"
		"  --expect-violation  succeed only if some seed finds a violation\n"
		"  --calm              no chaos phase\n"
		"  --figures           print election and failover times (calm runs)\n"
		"  --hb-timeout MS     every member's heartbeat timeout (default: random 500..4000)\n"
		"  --latency-ms MS     every device I/O takes about MS (default: a quarter of the\n"
		"                      runs slow, up to 9/10 of the timeout, the rest fast)\n"
		"  --stats             print how many runs were slow, blocks rotted and repaired\n"
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
		{ "latency-ms", required_argument, NULL, 'L' },
		{ "stats", no_argument, NULL, 'S' },
		{ "trace", no_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t found_seed = 0, total_steps = 0, slow_runs = 0, rots = 0, repairs = 0;
	int64_t slow_heal_max = 0;
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
			else if (!strcmp(optarg, "no-device-retry"))
				opt.breaks |= QBREAK_NO_DEVICE_RETRY;
			else if (!strcmp(optarg, "no-slow-device"))
				opt.breaks |= QBREAK_NO_SLOW_DEVICE;
			else if (!strcmp(optarg, "no-check"))
				opt.breaks |= QBREAK_NO_CHECK;
			else if (!strcmp(optarg, "no-unreadable-fence"))
				opt.no_unreadable_fence = true;
			else if (!strcmp(optarg, "no-mount-repair"))
				opt.no_mount_repair = true;
			else if (!strcmp(optarg, "any-tag"))
				opt.codec_breaks |= QCODEC_BREAK_ANY_TAG;
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
		case 'L':
			opt.latency_ms = atoi(optarg);
			if (opt.latency_ms < 0 || opt.latency_ms > QUORUM_HB_TIMEOUT_MAX_MS) {
				fprintf(stderr, "fusefs-sim: --latency-ms %s: must be 0..%d\n", optarg,
					QUORUM_HB_TIMEOUT_MAX_MS);
				return 2;
			}
			break;
		case 'S':
			opt.stats = true;
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
			slow_runs += r.slow;
			rots += r.rots;
			repairs += r.repairs;
			if (r.slow)
				slow_heal_max = MAX(slow_heal_max, r.heal_to_serving);
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
	if (opt.stats)
		printf("fusefs-sim: %" PRIu64 " runs with a slow device (longest heal to serving %.0f ms), "
		       "%" PRIu64 " blocks rotted, %" PRIu64 " rebuilt at a mount\n", slow_runs,
		       (double)slow_heal_max / 1e6, rots, repairs);
	return failures ? 1 : 0;
}
