/*
 * election.c - the quorum election as a pure state machine.
 *
 * quorum_step() takes the state, one input and the time, and produces the
 * new state and an ordered list of actions.  It reads no clock, does no
 * I/O, allocates nothing and keeps no globals; randomness arrives with the
 * input.  The quorum agent (quorum/agent.c) and the simulator
 * (tests/sim_main.c) drive it.  docs/quorum.md is the long-form design;
 * the rules this file enforces:
 *
 *  1. Terms never go backwards, and a term is durable (QACT_PERSIST done)
 *     before any message carries it: send_msg() drops a message whose term is
 *     not yet durable; the messages that matter (REQUEST_VOTE, VOTE) are
 *     sent from flush_sends() once their persist completes.
 *  2. A vote is durable before the VOTE goes out, so a member never votes
 *     twice in a term, even across a crash (the seed's follower did not
 *     store its vote).
 *  3. Pre-vote (Raft thesis 9.6): a member asks PRE_VOTE for term+1 before
 *     raising its term, and raises it only with a majority of grants.
 *  4. Stickiness: a member that heard its leader within its heartbeat
 *     timeout (sticky_until) refuses pre-votes and votes and does not adopt
 *     a greater term from REQUEST_VOTE, VOTE or PRE_VOTE_REPLY.  Only a
 *     HEARTBEAT or RESIGNATION of a greater term moves it.  A member whose
 *     term got ahead of a healthy leader's (a failed candidacy, or the
 *     greatest term on disk at start) follows that lower-term leader - acks
 *     it and stays sticky - as long as it voted for nobody else in its term
 *     or in any term above that leader's, and follows no leader of its own
 *     term; so it still backs the lease, and never the lease of a leader
 *     older than one it may have helped elect.
 *  5. Leader lease: each HEARTBEAT carries the leader's send time; the ACK
 *     echoes it with the follower's heartbeat timeout H_f, and buys a lease
 *     until send time + 4/5 H_f.  The leader holds a lease while a majority
 *     (itself included) has unexpired acks, and steps down the moment it
 *     has none (checked first in every step, so a paused leader that
 *     resumes gives up before it acts).  Rule 4 makes every acker refuse
 *     other candidates for H_f after the heartbeat, so the lease always
 *     ends before another member can be elected.
 *  6. The server starts only once ELECT is durable, serves only once FENCE
 *     is durable and a lease holds, and STOP is recorded for every ELECT once the server is
 *     down, so fence selection never mistakes a stopped leader for a
 *     running one.
 *  7. A member leaving cleanly writes END only once every promise its acks
 *     made has run out (sticky_until): END tells the next mount of the slot
 *     that nothing is outstanding.
 *  8. Nothing is sent before BEGIN is durable: BEGIN reserves the range of
 *     sequence numbers the messages carry (quorum/glue.c).
 *  9. A failed write of our block (an I/O error, a timeout) makes us step
 *     down and stay out of elections - no candidacy, no votes, no pre-vote
 *     grants - retrying the write with a backoff of 100 ms doubling to 1 s
 *     (always 100 ms while our last ELECT lacks its STOP);  the first write that succeeds brings us back.  Only what retrying
 *     cannot fix (another mount on our slot) ends our membership.  In a
 *     steady role (a leader with a lease, a follower of a live leader) we
 *     read our block back every min(H, 2 s), so a block gone bad is
 *     rewritten from memory and a device gone bad is noticed.
 * 10. Slow devices (docs/quorum.md, "Slow devices"): a candidacy's round is
 *     timed from when its term and vote are durable, not from when it
 *     started; a vote's from when it is durable; a round lasts an election
 *     timeout plus twice the time our writes take (persist_est_ns), and the
 *     timeout's random spread grows by that time too; a member that grants
 *     a pre-vote holds off its own election for as long as the candidacy
 *     it backs needs.
 */
#include "quorum/election.h"

#include "common/prng.h"

#include <assert.h>

#define MS(x) ((mono_ns)(x) * NSEC_PER_MSEC)
#define NEVER INT64_MAX

/* Image bits beyond the events: the vote or promise fields changed. */
#define IMG_FIELDS (1u << FUSEFS_QEV_NR)
#define EV_BIT(ev) (1u << (ev))

/*
 * The heartbeat timeout our acks promise: never more than what is on our
 * disk, nor than what a write in flight is about to put there, so a
 * restart knows how long to keep the promise (rule 5).  (The simulator's
 * I10 found the second: a write lowering the timeout, issued before a
 * raise, completed after an ack that promised the raised one.)
 */
static uint32_t promise_ms(const struct quorum_state *st)
{
	uint32_t ms = MIN(st->cfg.hb_timeout_ms, st->durable.hb_ms);

	if (st->persist_busy)
		ms = MIN(ms, st->inflight.hb_ms);
	return ms;
}

/* One step's context: everything a handler needs, passed as one pointer. */
struct step {
	struct quorum_state *st;
	const struct quorum_input *in;
	mono_ns now;
	struct quorum_actions *out;
	uint32_t draws;
};

static uint16_t slot_bit(int slot)
{
	return (uint16_t)(1u << slot);
}

static int bit_count(uint16_t bits)
{
	return __builtin_popcount(bits);
}

static bool broken(const struct quorum_state *st, uint32_t what)
{
	return (st->cfg.breaks & what) != 0;
}

/* Independent random numbers from the input's one random value. */
static uint32_t rnd(struct step *s)
{
	uint64_t state = ((uint64_t)s->in->random << 32) + 0x9e3779b97f4a7c15ull * s->draws++;

	return (uint32_t)prng_next(&state);
}

/* How long our writes take, as far as round lengths are concerned. */
static int64_t persist_est(const struct quorum_state *st)
{
	return broken(st, QBREAK_NO_SLOW_DEVICE) ? 0 : st->persist_est_ns;
}

/* 250 ms plus a random spread of 100 ms plus the time our writes take. */
static int64_t election_timeout_len(struct step *s)
{
	uint64_t spread = (uint64_t)MS(QUORUM_ELECT_VAR_MS) + (uint64_t)persist_est(s->st);
	uint64_t r = rnd(s);

	r = r << 32 | rnd(s);
	return MS(QUORUM_ELECT_MIN_MS) + (int64_t)(r % spread);
}

static mono_ns election_timeout(struct step *s)
{
	if (broken(s->st, QBREAK_NO_SLOW_DEVICE))
		return s->now + MS(QUORUM_ELECT_MIN_MS + rnd(s) % QUORUM_ELECT_VAR_MS);
	return s->now + election_timeout_len(s);
}

/*
 * A voting round from the moment our request (or vote) is durable: an
 * election timeout plus two writes - a voter's vote write, and one it may
 * have had in flight when our request came.
 */
static mono_ns round_end(struct step *s)
{
	return election_timeout(s) + 2 * persist_est(s->st);
}

static mono_ns hb_timeout_ns(const struct quorum_state *st)
{
	return MS(st->cfg.hb_timeout_ms);
}

/* How often a steady member reads its block back (rule 9). */
static int64_t check_ival(const struct quorum_state *st)
{
	return MS(MIN(st->cfg.hb_timeout_ms, (uint32_t)QUORUM_CHECK_MAX_MS));
}

/* ---- actions ---- */

static struct quorum_action *emit(struct step *s, enum quorum_action_type type)
{
	struct quorum_action *a;

	assert(s->out->count < QUORUM_MAX_ACTIONS);
	a = &s->out->act[s->out->count++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	return a;
}

static void note(struct step *s, int code, int64_t a, int64_t b)
{
	struct quorum_action *act = emit(s, QACT_NOTE);

	act->note = code;
	act->a = a;
	act->b = b;
}

/*
 * Send a message carrying term.  Rule 1: a term that is not yet durable is
 * never sent; such a message is dropped (everything here is retried by
 * timers or by flush_sends()).
 */
static void send_msg(struct step *s, int to, uint8_t type, uint64_t term, uint64_t arg,
		 uint8_t flags)
{
	struct quorum_state *st = s->st;
	struct quorum_action *a;

	if (term > st->durable.term || !st->begun)
		return;
	a = emit(s, QACT_SEND);
	a->to = to;
	a->msg.type = type;
	a->msg.from = (uint8_t)st->cfg.our_slot;
	a->msg.term = term;
	a->msg.arg = arg;
	a->msg.flags = flags;
	a->msg.timeout_ms = promise_ms(st);
}

static void want_event(struct quorum_state *st, int ev, uint64_t term)
{
	st->want.ev_term[ev] = term;
	st->want_events |= EV_BIT(ev);
}

static void want_term(struct quorum_state *st, uint64_t term)
{
	if (term > st->want.term) {
		st->want.term = term;
		st->want_events |= EV_BIT(FUSEFS_QEV_TERM);
	}
}

static void want_vote(struct quorum_state *st, uint64_t term, int slot)
{
	st->want.vote_term = term;
	st->want.vote_slot = slot;
	st->want_events |= IMG_FIELDS;
}

static void lease_update(struct step *s);

/* ---- roles ---- */

static bool role_edge_legal(enum quorum_role from, enum quorum_role to)
{
	switch (to) {
	case QROLE_FOLLOWER:
		return true;
	case QROLE_CANDIDATE:
		return from == QROLE_FOLLOWER || from == QROLE_CANDIDATE;
	case QROLE_LEADER:
		return from == QROLE_CANDIDATE;
	}
	return false;
}

/* Every role change goes through here: check the edge, clear the old role. */
static void become(struct step *s, enum quorum_role to)
{
	struct quorum_state *st = s->st;

	assert(role_edge_legal(st->role, to));
	if (st->role == QROLE_LEADER && to != QROLE_LEADER) {
		st->lease_until = 0;
		memset(st->ack_lease, 0, sizeof(st->ack_lease));
		st->leader_slot = -1;
		st->leader_same_term = false;
	}
	st->role = to;
	if (to != QROLE_CANDIDATE && st->deadline == NEVER)
		st->deadline = election_timeout(s); /* a candidacy waiting on its write */
	st->prevote = false;
	if (to != QROLE_LEADER)
		st->vote_bits = 0; /* a leader keeps the votes that elected it, for status */
	st->request_sent = false;
}

static bool votes_won(const struct quorum_state *st)
{
	return bit_count(st->vote_bits) >= st->cfg.votes_needed;
}

/* Heard a live leader recently (or are one): refuse (pre-)votes (rule 4). */
static bool sticky(const struct step *s)
{
	const struct quorum_state *st = s->st;

	if (broken(st, QBREAK_NO_PREVOTE))
		return false;
	return st->role == QROLE_LEADER || s->now < st->sticky_until;
}

/* Adopt a greater term as a follower; a leader steps down. */
static void set_term(struct step *s, uint64_t term, int from)
{
	struct quorum_state *st = s->st;

	assert(term > st->term);
	become(s, QROLE_FOLLOWER);
	st->term = term;
	st->vote_for = -1;
	st->vote_sent = false;
	st->leader_slot = -1;
	st->leader_same_term = false;
	want_term(st, term);
	st->ctr.term_follower++;
	note(s, QNOTE_GREATER_TERM, (int64_t)term, from);
}

static void become_leader(struct step *s)
{
	struct quorum_state *st = s->st;

	become(s, QROLE_LEADER);
	st->leader_slot = st->cfg.our_slot;
	st->elected_at = s->now;
	st->lease_until = 0;
	st->my_elect_term = st->term;
	want_event(st, FUSEFS_QEV_ELECT, st->term);
	st->ctr.elected++;
	note(s, QNOTE_ELECTED, (int64_t)st->term, bit_count(st->vote_bits));
	/* tell everyone at once; the term is durable, we were its candidate */
	send_msg(s, QSEND_ALL, QMSG_HEARTBEAT, st->term, (uint64_t)s->now, 0);
	st->hb_next = s->now + MS(QUORUM_HB_IVAL_MS);
	st->ctr.heartbeats_sent++;
	lease_update(s);
}

static void start_candidacy(struct step *s)
{
	struct quorum_state *st = s->st;

	become(s, QROLE_CANDIDATE);
	st->term++;
	st->vote_for = st->cfg.our_slot;
	st->leader_slot = -1;
	want_term(st, st->term);
	want_vote(st, st->term, st->cfg.our_slot);
	/* the round starts once term and vote are durable (flush_sends), however long that takes */
	st->deadline = broken(st, QBREAK_NO_SLOW_DEVICE) ? election_timeout(s) : NEVER;
	st->ctr.elections_started++;
	note(s, QNOTE_CANDIDATE, (int64_t)st->term, 0);
	/* REQUEST_VOTE goes out from flush_sends() once term and vote are durable */
}

/* Election timeout: ask for pre-votes (or, broken, go straight to a vote). */
static void start_prevote(struct step *s)
{
	struct quorum_state *st = s->st;

	if (s->now < st->sticky_until && !broken(st, QBREAK_NO_PREVOTE)) {
		/* we promised a leader not to elect anyone until then, us included */
		st->deadline = st->sticky_until + MS(rnd(s) % QUORUM_ELECT_VAR_MS);
		return;
	}

	if (st->dev_failing) {
		/* rule 9: no election while our block cannot be written */
		st->deadline = MAX(s->now, st->dev_retry_at) + MS(QUORUM_ELECT_MIN_MS);
		return;
	}
	if (st->srv != QSRV_DOWN) {
		st->deadline = election_timeout(s);
		st->ctr.candidate_server_stopping++;
		note(s, QNOTE_ELECTION_DEFERRED, (int64_t)st->term, st->srv);
		return;
	}
	if (broken(st, QBREAK_NO_PREVOTE)) {
		start_candidacy(s);
		return;
	}
	become(s, QROLE_CANDIDATE);
	st->prevote = true;
	st->vote_bits = slot_bit(st->cfg.our_slot);
	st->deadline = election_timeout(s);
	st->ctr.prevotes_started++;
	note(s, QNOTE_PREVOTE, (int64_t)st->term + 1, 0);
	st->retry_at = s->now + MS(QUORUM_HB_IVAL_MS);
	if (votes_won(st))
		start_candidacy(s);
	else
		send_msg(s, QSEND_ALL, QMSG_PRE_VOTE, st->term, st->term + 1, 0);
}

/* Leave leadership without a greater term: lease lost, or server gone. */
static void step_down(struct step *s, bool resign)
{
	struct quorum_state *st = s->st;

	become(s, QROLE_FOLLOWER);
	st->deadline = election_timeout(s);
	if (resign) {
		send_msg(s, QSEND_ALL, QMSG_RESIGNATION, st->term, 0, 0);
		note(s, QNOTE_RESIGNED, (int64_t)st->term, 0);
	}
}

/* ---- the lease ---- */

static void lease_update(struct step *s)
{
	struct quorum_state *st = s->st;
	mono_ns best[FUSEFS_QUORUM_MAX_SLOTS];
	int need = st->cfg.votes_needed - 1; /* acks needed besides our own */
	int n = 0;

	if (st->role != QROLE_LEADER)
		return;
	if (need <= 0 || broken(st, QBREAK_NO_LEASE)) {
		st->lease_until = NEVER;
		return;
	}
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if ((st->cfg.present_mask & slot_bit(i)) && i != st->cfg.our_slot)
			best[n++] = st->ack_lease[i];
	/* the need-th largest ack lease: until then, need followers back us */
	for (int i = 0; i < need && i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (best[j] > best[i]) {
				mono_ns t = best[i];

				best[i] = best[j];
				best[j] = t;
			}
	st->lease_until = need <= n ? best[need - 1] : 0;
}

/* When a leader without a fresh lease must give up. */
static mono_ns leader_check_at(const struct quorum_state *st)
{
	mono_ns grace = st->elected_at + quorum_lease_ns(st->cfg.hb_timeout_ms);

	if (st->cfg.votes_needed <= 1 || broken(st, QBREAK_NO_LEASE))
		return NEVER;
	return MAX(grace, st->lease_until);
}

static void check_lease(struct step *s)
{
	struct quorum_state *st = s->st;

	if (st->role != QROLE_LEADER || s->now < leader_check_at(st))
		return;
	st->ctr.lease_lost++;
	note(s, QNOTE_LEASE_LOST, (int64_t)st->term, 0);
	step_down(s, true);
}

/*
 * Rule 6: the server serves once FENCE is durable - and only with a lease.
 * A leader elected and then cut off has none; by the time its fencing is
 * recorded another may have been elected in a greater term.  Without a
 * lease it waits (the acks of its first heartbeats normally came long
 * before), and steps down when its grace runs out (check_lease).
 */
static void maybe_serve(struct step *s)
{
	struct quorum_state *st = s->st;

	if (st->srv == QSRV_RECORDING && st->durable.ev_term[FUSEFS_QEV_FENCE] == st->srv_term &&
	    st->role == QROLE_LEADER && st->term == st->srv_term && !st->shutting_down &&
	    quorum_lease_valid(st, s->now)) {
		st->srv = QSRV_UP;
		emit(s, QACT_SERVE)->term = st->srv_term;
	}
}

/* ---- messages ---- */

static void on_prevote_request(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;
	bool grant;

	if (m->arg != m->term + 1)
		return; /* a pre-vote proposes the sender's next term */
	grant = m->arg > st->term && !sticky(s) && !st->dev_failing;
	if (grant) {
		st->ctr.prevotes_granted++;
		/*
		 * rule 10: the candidacy we back needs a write and a round - once
		 * per proposal: asked again, it did not hear us, and we may run
		 */
		if (!broken(st, QBREAK_NO_SLOW_DEVICE) && st->role == QROLE_FOLLOWER &&
		    (st->deferred_slot != m->from || st->deferred_term != m->arg)) {
			st->deadline = MAX(st->deadline, round_end(s) + persist_est(st));
			st->deferred_slot = m->from;
			st->deferred_term = m->arg;
		}
	} else {
		st->ctr.prevotes_refused++;
	}
	send_msg(s, m->from, QMSG_PRE_VOTE_REPLY, st->term, m->arg, grant ? QMSG_F_GRANTED : 0);
}

static void on_prevote_reply(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;

	if (st->role != QROLE_CANDIDATE || !st->prevote || m->arg != st->term + 1 ||
	    !(m->flags & QMSG_F_GRANTED))
		return;
	st->vote_bits |= slot_bit(m->from);
	if (votes_won(st))
		start_candidacy(s);
}

static void on_request_vote(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;

	if (st->role != QROLE_FOLLOWER)
		return; /* candidates voted for themselves, leaders do not vote */
	if (sticky(s)) {
		st->ctr.votes_refused_sticky++;
		return;
	}
	if (st->dev_failing) {
		st->ctr.votes_refused_device++; /* a vote we cannot make durable */
		return;
	}
	if (st->vote_for == -1) {
		st->vote_for = m->from;
		st->vote_sent = false;
		st->other_vote_term = st->term;
		st->other_vote_slot = m->from;
		if (!broken(st, QBREAK_NO_VOTE_PERSIST))
			want_vote(st, st->term, m->from);
		st->deadline = election_timeout(s);
		if (!broken(st, QBREAK_NO_SLOW_DEVICE))
			st->deadline = MAX(st->deadline, round_end(s) + persist_est(st));
		st->ctr.votes_granted++;
		note(s, QNOTE_VOTED, (int64_t)st->term, m->from);
	} else if (st->vote_for == m->from) {
		st->vote_sent = false; /* the candidate asks again: our VOTE was lost */
	}
}

static void on_vote(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;

	if (st->role != QROLE_CANDIDATE || st->prevote || !st->request_sent)
		return;
	st->vote_bits |= slot_bit(m->from);
	if (votes_won(st))
		become_leader(s);
}

/* Follow the heartbeat's sender: promise (rule 5) and acknowledge. */
static void follow(struct step *s, const struct quorum_msg *m, bool same_term)
{
	struct quorum_state *st = s->st;

	st->leader_slot = m->from;
	st->leader_same_term = same_term;
	st->sticky_until = MAX(st->sticky_until, s->now + hb_timeout_ns(st));
	st->deadline = MAX(st->sticky_until, s->now + hb_timeout_ns(st)) +
		       MS(rnd(s) % QUORUM_ELECT_VAR_MS);
	/* the ack carries the leader's term, so it counts in its lease */
	if (promise_ms(st) > 0)
		send_msg(s, m->from, QMSG_HEARTBEAT_ACK, m->term, m->arg, 0);
}

static void on_heartbeat(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;

	if (st->role == QROLE_LEADER) {
		/* two leaders in one term: only possible with one or two slots */
		st->ctr.leader_conflicts++;
		note(s, QNOTE_LEADER_CONFLICT, (int64_t)st->term, m->from);
		if (m->from > st->cfg.our_slot)
			return; /* the lower slot keeps it; the other yields */
		step_down(s, false);
	} else if (st->role == QROLE_CANDIDATE) {
		become(s, QROLE_FOLLOWER);
	}
	follow(s, m, true);
}

/*
 * A heartbeat from a leader of a lower term.  If we voted for nobody else
 * in our term and follow no leader of our own, that leader is as good as
 * ours: follow it (rule 4).  A vote for another slot in our term rules this
 * out for the rest of the term, so a voter for a newer leader never backs
 * an older one's lease.
 */
static void on_lower_heartbeat(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;

	if (broken(st, QBREAK_NO_PREVOTE) || st->role == QROLE_LEADER ||
	    (st->vote_for != -1 && st->vote_for != st->cfg.our_slot) ||
	    (st->other_vote_term > m->term && st->other_vote_slot != m->from) ||
	    (st->leader_same_term && s->now < st->sticky_until)) {
		st->ctr.stale_msgs++;
		return;
	}
	if (st->role == QROLE_CANDIDATE)
		become(s, QROLE_FOLLOWER); /* our candidacy is over: we back this leader */
	st->ctr.lower_leader_followed++;
	follow(s, m, false);
}

static void on_heartbeat_ack(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;
	mono_ns sent = (mono_ns)m->arg;
	mono_ns lease;

	if (st->role != QROLE_LEADER || m->term != st->term || sent > s->now || sent < 0 ||
	    !quorum_hb_timeout_valid(m->timeout_ms))
		return;
	lease = sent + quorum_lease_ns(m->timeout_ms);
	if (lease > st->ack_lease[m->from])
		st->ack_lease[m->from] = lease;
	st->ctr.acks_counted++;
	lease_update(s);
	maybe_serve(s);
}

static void on_resignation(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;

	if (st->role != QROLE_FOLLOWER ||
	    (st->leader_slot != -1 && st->leader_slot != m->from) ||
	    (m->term < st->term && (st->leader_slot != m->from || st->leader_same_term)))
		return;
	/* the leader of our term gave up its lease: elect promptly */
	st->leader_slot = -1;
	st->sticky_until = 0;
	st->deadline = election_timeout(s);
	st->ctr.recv_resignation++;
	note(s, QNOTE_LEADER_RESIGNED, (int64_t)st->term, m->from);
}

static bool msg_may_adopt(const struct step *s, uint8_t type)
{
	switch (type) {
	case QMSG_HEARTBEAT:
	case QMSG_RESIGNATION:
		return true; /* a greater-term leader exists or existed */
	case QMSG_REQUEST_VOTE:
	case QMSG_VOTE:
	case QMSG_PRE_VOTE_REPLY:
		return !sticky(s);
	default:
		return false; /* PRE_VOTE, HEARTBEAT_ACK never move our term */
	}
}

static void on_msg(struct step *s, const struct quorum_msg *m)
{
	struct quorum_state *st = s->st;

	if (!bd_slot_nr_valid(m->from) || m->from == st->cfg.our_slot ||
	    !(st->cfg.present_mask & slot_bit(m->from)))
		return;
	if (m->type == QMSG_PRE_VOTE) {
		on_prevote_request(s, m);
		return;
	}
	if (m->type == QMSG_HEARTBEAT_ACK) {
		on_heartbeat_ack(s, m);
		return;
	}
	/* a member behind us may grant our pre-vote; match on the proposal */
	if (m->type == QMSG_PRE_VOTE_REPLY && m->term < st->term) {
		on_prevote_reply(s, m);
		return;
	}
	if (m->type == QMSG_HEARTBEAT && m->term < st->term) {
		on_lower_heartbeat(s, m);
		return;
	}
	if (m->type == QMSG_RESIGNATION && m->term < st->term) {
		on_resignation(s, m);
		return;
	}
	if (m->term < st->term) {
		st->ctr.stale_msgs++;
		return;
	}
	if (m->term > st->term) {
		if (!msg_may_adopt(s, m->type)) {
			if (m->type == QMSG_REQUEST_VOTE)
				st->ctr.votes_refused_sticky++;
			return;
		}
		set_term(s, m->term, m->from);
	}
	switch (m->type) {
	case QMSG_REQUEST_VOTE:
		on_request_vote(s, m);
		break;
	case QMSG_VOTE:
		on_vote(s, m);
		break;
	case QMSG_HEARTBEAT:
		on_heartbeat(s, m);
		break;
	case QMSG_RESIGNATION:
		on_resignation(s, m);
		break;
	case QMSG_PRE_VOTE_REPLY:
		on_prevote_reply(s, m);
		break;
	default:
		break;
	}
}

/* ---- other inputs ---- */

static void on_start(struct step *s)
{
	struct quorum_state *st = s->st;
	const struct quorum_image *own = &s->in->start.own;

	st->durable = *own;
	st->want = *own;
	st->term = MAX(MAX(own->term, own->vote_term), s->in->start.greatest_term);
	st->vote_for = (own->vote_term == st->term && bd_slot_nr_valid(own->vote_slot)) ?
			       own->vote_slot : -1;
	/* the disk keeps our latest vote only: under a candidacy of ours, an earlier
	 * vote for another may lie in any lower term, for anyone */
	if (bd_slot_nr_valid(own->vote_slot) && own->vote_slot != st->cfg.our_slot) {
		st->other_vote_term = own->vote_term;
		st->other_vote_slot = own->vote_slot;
	} else if (own->vote_slot == st->cfg.our_slot && own->vote_term > 0) {
		st->other_vote_term = own->vote_term - 1;
		st->other_vote_slot = -1;
	}
	st->role = QROLE_FOLLOWER;
	st->leader_slot = -1;
	st->deadline = s->in->start.leader_recorded ? s->now + hb_timeout_ns(st) :
						      election_timeout(s);
	st->promise_lower_at = s->now;
	if (s->in->start.prev_unclean && own->hb_ms > 0 &&
	    !broken(st, QBREAK_NO_VOTE_PERSIST | QBREAK_NO_RESTART_PROMISE)) {
		/* our last incarnation may have promised a leader: keep the promise */
		st->sticky_until = s->now + MS(own->hb_ms);
		st->promise_lower_at = st->sticky_until;
		st->deadline = MAX(st->deadline, st->sticky_until) + MS(rnd(s) % QUORUM_ELECT_VAR_MS);
	}
	want_term(st, st->term);
	want_event(st, FUSEFS_QEV_BEGIN, st->term);
	st->check_at = s->now + check_ival(st);
	st->started = true;
	note(s, QNOTE_STARTED, (int64_t)st->term, st->vote_for);
}

/* Rule 9: a write failed; step down and retry, unless retrying cannot help. */
static void on_persist_failed(struct step *s, int res)
{
	struct quorum_state *st = s->st;
	uint32_t backoff_ms;

	st->ctr.device_failures++;
	if (quorum_error_is_permanent(res) || broken(st, QBREAK_NO_DEVICE_RETRY)) {
		/* we cannot keep our promises without our block: leave the quorum */
		st->failed = true;
		st->fail_res = res;
		note(s, QNOTE_PERSIST_FAILED, res, 0);
		if (st->role != QROLE_FOLLOWER)
			become(s, QROLE_FOLLOWER);
		return;
	}
	if (!st->dev_failing) {
		st->dev_failing = true;
		st->dev_since = s->now;
		st->dev_retries = 0;
		st->dev_outages++;
	}
	st->dev_err = res;
	st->dev_retries++;
	backoff_ms = MIN((uint32_t)QUORUM_DEV_RETRY_MAX_MS,
			 (uint32_t)QUORUM_DEV_RETRY_MIN_MS << MIN(st->dev_retries - 1, 4u));
	/*
	 * A durable ELECT without its STOP makes the next leader fence us: it
	 * cannot tell our stopped server from a running one.  Retry at the
	 * shortest interval so the STOP lands as soon as the device answers,
	 * ahead of the election the others start then.
	 */
	if (st->durable.ev_term[FUSEFS_QEV_ELECT] > st->durable.ev_term[FUSEFS_QEV_STOP])
		backoff_ms = QUORUM_DEV_RETRY_MIN_MS;
	st->dev_retry_at = s->now + MS(backoff_ms);
	/* what the failed write carried is wanted again, whole */
	st->want_events |= st->inflight_events | IMG_FIELDS;
	if (st->dev_retries == 1)
		note(s, QNOTE_DEVICE_FAILED, res, backoff_ms);
	if (st->role == QROLE_LEADER)
		step_down(s, true); /* our server stops with the role (reconcile_server) */
	else if (st->role == QROLE_CANDIDATE)
		become(s, QROLE_FOLLOWER);
	st->deadline = MAX(st->deadline, st->dev_retry_at);
}

static void on_persist_done(struct step *s)
{
	struct quorum_state *st = s->st;
	int res = s->in->persist.res;
	int64_t took = s->now - st->persist_started;

	if (!st->persist_busy)
		return;
	st->persist_busy = false;
	if (res < 0) {
		on_persist_failed(s, res);
		return;
	}
	st->durable = st->inflight;
	if (st->inflight_events & EV_BIT(FUSEFS_QEV_BEGIN))
		st->begun = true;
	/* rule 10: a vote that took long to write still gets its round (before the
	 * timers of this step can start an election of our own instead of sending it) */
	if (st->role == QROLE_FOLLOWER && st->vote_for >= 0 && st->vote_for != st->cfg.our_slot &&
	    st->durable.vote_term == st->term && st->durable.vote_slot == st->vote_for &&
	    !st->vote_sent && !broken(st, QBREAK_NO_SLOW_DEVICE))
		st->deadline = MAX(st->deadline, round_end(s));
	/* how long writes take, for round lengths: rise at once, decay slowly */
	if (!st->inflight_check && took >= 0) {
		if (took > st->persist_est_ns)
			st->persist_est_ns = took;
		else
			st->persist_est_ns -= (st->persist_est_ns - took) / 8;
		st->persist_est_ns = MIN(st->persist_est_ns, MS(2 * QUORUM_HB_TIMEOUT_MAX_MS));
	}
	if (st->dev_failing) {
		st->dev_failing = false;
		st->ctr.device_recoveries++;
		note(s, QNOTE_DEVICE_OK, (s->now - st->dev_since) / NSEC_PER_MSEC, st->dev_retries);
		st->deadline = MAX(st->deadline, election_timeout(s));
	}
	maybe_serve(s);
}

static void on_server_fenced(struct step *s)
{
	struct quorum_state *st = s->st;

	if (st->srv != QSRV_FENCING || s->in->server.term != st->srv_term)
		return;
	st->srv = QSRV_RECORDING;
	want_event(st, FUSEFS_QEV_FENCE, st->srv_term);
}

static void on_server_down(struct step *s)
{
	struct quorum_state *st = s->st;

	if (st->srv == QSRV_DOWN || s->in->server.term != st->srv_term)
		return;
	st->srv = QSRV_DOWN;
	note(s, QNOTE_SERVER_DOWN, (int64_t)st->srv_term, s->in->server.res);
	if (st->role == QROLE_LEADER && st->term == st->srv_term) {
		/* it stopped on its own (or fencing failed): let another lead */
		st->ctr.server_shutdown++;
		step_down(s, true);
	} else if (st->shutting_down && st->term == st->srv_term) {
		/* we stopped it to unmount: now that it is down, resign */
		send_msg(s, QSEND_ALL, QMSG_RESIGNATION, st->term, 0, 0);
		note(s, QNOTE_RESIGNED, (int64_t)st->term, 0);
	}
}

static void on_shutdown(struct step *s)
{
	struct quorum_state *st = s->st;

	if (st->shutting_down)
		return;
	st->shutting_down = true;
	if (st->role == QROLE_LEADER) {
		/* resign now if no server runs; else once it is down */
		bool serverless = st->srv == QSRV_DOWN;

		become(s, QROLE_FOLLOWER);
		if (serverless) {
			send_msg(s, QSEND_ALL, QMSG_RESIGNATION, st->term, 0, 0);
			note(s, QNOTE_RESIGNED, (int64_t)st->term, 0);
		}
	} else if (st->role == QROLE_CANDIDATE) {
		become(s, QROLE_FOLLOWER);
	}
}

/* ---- after every input ---- */

/*
 * A candidate asks again, every heartbeat interval, the members that have
 * not answered, so one lost datagram does not cost a whole election round.
 */
static void resend_requests(struct step *s)
{
	struct quorum_state *st = s->st;

	st->retry_at = s->now + MS(QUORUM_HB_IVAL_MS);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		if (!(st->cfg.present_mask & slot_bit(i)) || (st->vote_bits & slot_bit(i)))
			continue;
		if (st->prevote)
			send_msg(s, i, QMSG_PRE_VOTE, st->term, st->term + 1, 0);
		else if (st->request_sent)
			send_msg(s, i, QMSG_REQUEST_VOTE, st->term, 0, 0);
	}
}

/* A steady role, where a check of our block costs an election nothing. */
static bool steady(const struct step *s)
{
	const struct quorum_state *st = s->st;

	if (!st->begun || st->dev_failing || st->shutting_down)
		return false;
	if (st->role == QROLE_LEADER)
		return quorum_lease_valid(st, s->now);
	return st->role == QROLE_FOLLOWER && st->leader_slot >= 0 && s->now < st->sticky_until;
}

static void run_timers(struct step *s)
{
	struct quorum_state *st = s->st;

	if (!st->started || st->shutting_down || st->failed)
		return;
	if (s->now >= st->check_at && !broken(st, QBREAK_NO_CHECK)) {
		st->check_at = s->now + check_ival(st);
		if (steady(s) && !st->persist_busy && st->want_events == 0)
			st->check_wanted = true;
	}
	if (st->role == QROLE_LEADER) {
		if (s->now >= st->hb_next) {
			send_msg(s, QSEND_ALL, QMSG_HEARTBEAT, st->term, (uint64_t)s->now, 0);
			st->hb_next = s->now + MS(QUORUM_HB_IVAL_MS);
			st->ctr.heartbeats_sent++;
		}
		lease_update(s);
	} else if (s->now >= st->deadline) {
		start_prevote(s);
	} else if (st->role == QROLE_CANDIDATE && s->now >= st->retry_at) {
		resend_requests(s);
	}
}

/* Messages that wait for a persist (rules 1 and 2). */
static void flush_sends(struct step *s)
{
	struct quorum_state *st = s->st;
	const struct quorum_image *d = &st->durable;
	const int self = st->cfg.our_slot;

	if (st->role == QROLE_CANDIDATE && !st->prevote && !st->request_sent &&
	    d->term >= st->term && d->vote_term == st->term && d->vote_slot == self) {
		st->request_sent = true;
		st->vote_bits |= slot_bit(self);
		st->retry_at = s->now + MS(QUORUM_HB_IVAL_MS);
		if (!broken(st, QBREAK_NO_SLOW_DEVICE))
			st->deadline = round_end(s); /* rule 10: the round starts now */
		send_msg(s, QSEND_ALL, QMSG_REQUEST_VOTE, st->term, 0, 0);
		if (votes_won(st))
			become_leader(s);
	}
	if (st->role == QROLE_FOLLOWER && st->vote_for >= 0 && st->vote_for != self &&
	    !st->vote_sent && d->term >= st->term &&
	    (st->leader_slot < 0 || st->leader_slot == st->vote_for) && /* not lost meanwhile */
	    (broken(st, QBREAK_NO_VOTE_PERSIST) ||
	     (d->vote_term == st->term && d->vote_slot == st->vote_for))) {
		st->vote_sent = true;
		if (!broken(st, QBREAK_NO_SLOW_DEVICE))
			st->deadline = MAX(st->deadline, round_end(s));
		send_msg(s, st->vote_for, QMSG_VOTE, st->term, 0, 0);
	}
}

/* Start, stop and record our server to match our role (rule 6). */
static void reconcile_server(struct step *s)
{
	struct quorum_state *st = s->st;
	bool lead = st->role == QROLE_LEADER && !st->shutting_down && !st->failed;
	uint64_t elect = st->my_elect_term;

	if (st->srv == QSRV_DOWN && lead && elect == st->term && st->srv_term != st->term &&
	    st->durable.ev_term[FUSEFS_QEV_ELECT] == st->term) {
		st->srv = QSRV_FENCING;
		st->srv_term = st->term;
		emit(s, QACT_START_SERVER)->term = st->term;
	}
	if ((st->srv == QSRV_FENCING || st->srv == QSRV_RECORDING || st->srv == QSRV_UP) &&
	    !(lead && st->srv_term == st->term)) {
		st->srv = QSRV_STOPPING;
		emit(s, QACT_STOP_SERVER)->term = st->srv_term;
	}
	if (st->srv != QSRV_DOWN)
		return;
	/* each of our ELECTs gets its STOP once no server of ours can run */
	if (elect > st->want.ev_term[FUSEFS_QEV_STOP] && !(lead && elect == st->term))
		want_event(st, FUSEFS_QEV_STOP, elect);
	/* unmounting: END once our promises ran out (rule 7), with any STOP */
	if (st->shutting_down && !st->end_requested &&
	    (s->now >= st->sticky_until || broken(st, QBREAK_NO_RESTART_PROMISE))) {
		st->end_requested = true;
		want_event(st, FUSEFS_QEV_END, st->term);
	}
}

/*
 * Keep the promised timeout on disk at least as large as any promise that
 * may be outstanding: raise it at once, lower it only when none is.
 */
static void reconcile_promise(struct step *s)
{
	struct quorum_state *st = s->st;
	uint32_t want = st->cfg.hb_timeout_ms;

	if (want > st->want.hb_ms || (want < st->want.hb_ms && s->now >= st->promise_lower_at)) {
		st->want.hb_ms = want;
		st->want_events |= IMG_FIELDS;
	}
}

static void flush_persist(struct step *s)
{
	struct quorum_state *st = s->st;
	struct quorum_action *a;
	bool check;

	if (st->persist_busy || st->failed)
		return;
	if (st->dev_failing) {
		if (s->now < st->dev_retry_at)
			return;
		st->want_events |= IMG_FIELDS; /* retry with a real write */
	}
	check = st->want_events == 0 && st->check_wanted;
	if (st->want_events == 0 && !check)
		return;
	a = emit(s, QACT_PERSIST);
	a->image = st->want;
	a->events = st->want_events & ~IMG_FIELDS;
	a->check = check;
	st->inflight = st->want;
	st->inflight_events = st->want_events;
	st->inflight_check = check;
	st->check_wanted = false;
	st->want_events = 0;
	st->persist_busy = true;
	st->persist_started = s->now;
	if (check)
		st->ctr.checks++;
	else
		st->ctr.persists++;
}

static void finish(struct step *s)
{
	struct quorum_state *st = s->st;

	if (st->failed && !st->done) {
		if (st->srv != QSRV_DOWN && st->srv != QSRV_STOPPING) {
			st->srv = QSRV_STOPPING;
			emit(s, QACT_STOP_SERVER)->term = st->srv_term;
		}
		st->done = true;
		emit(s, QACT_FAILED)->a = st->fail_res;
		return;
	}
	if (st->shutting_down && st->end_requested && !st->done && !st->persist_busy &&
	    st->want_events == 0 && st->srv == QSRV_DOWN) {
		st->done = true;
		emit(s, QACT_DONE);
	}
}

static mono_ns role_deadline(const struct quorum_state *st)
{
	if (st->shutting_down)
		return st->end_requested || st->srv != QSRV_DOWN ? NEVER : st->sticky_until;
	if (st->role == QROLE_LEADER)
		return MIN(st->hb_next, leader_check_at(st));
	if (st->role == QROLE_CANDIDATE && (st->prevote || st->request_sent))
		return MIN(st->deadline, st->retry_at);
	return st->deadline;
}

static mono_ns next_deadline(const struct quorum_state *st)
{
	mono_ns at;

	if (!st->started || st->done || st->failed)
		return NEVER;
	at = role_deadline(st);
	if (st->dev_failing && !st->persist_busy)
		at = MIN(at, st->dev_retry_at);
	if (!st->shutting_down && !broken(st, QBREAK_NO_CHECK))
		at = MIN(at, st->check_at);
	return at;
}

/* ---- public ---- */

void quorum_init(struct quorum_state *st, const struct quorum_config *cfg)
{
	memset(st, 0, sizeof(*st));
	st->cfg = *cfg;
	st->role = QROLE_FOLLOWER;
	st->vote_for = -1;
	st->other_vote_slot = -1;
	st->leader_slot = -1;
	st->deferred_slot = -1;
	st->durable.vote_slot = -1;
	st->want.vote_slot = -1;
	st->srv = QSRV_DOWN;
}

void quorum_step(struct quorum_state *st, const struct quorum_input *in, mono_ns now,
		 struct quorum_actions *out)
{
	struct step s = { .st = st, .in = in, .now = now, .out = out };

	out->count = 0;
	if (st->done || (!st->started && in->type != QIN_START)) {
		/* after we left, still keep our view of our server true */
		if (st->done && in->type == QIN_SERVER_DOWN && st->srv != QSRV_DOWN &&
		    in->server.term == st->srv_term)
			st->srv = QSRV_DOWN;
		out->deadline = next_deadline(st);
		return;
	}
	/* a leader that cannot show a lease gives up before it does anything */
	if (!st->failed)
		check_lease(&s);

	switch (in->type) {
	case QIN_START:
		if (!st->started)
			on_start(&s);
		break;
	case QIN_MSG:
		if (!st->shutting_down && !st->failed)
			on_msg(&s, &in->msg);
		break;
	case QIN_TIMER:
		break;
	case QIN_PERSIST_DONE:
		on_persist_done(&s);
		break;
	case QIN_SERVER_FENCED:
		on_server_fenced(&s);
		break;
	case QIN_SERVER_DOWN:
		on_server_down(&s);
		break;
	case QIN_SET_HB_TIMEOUT:
		if (quorum_hb_timeout_valid(in->hb_timeout_ms)) {
			/* acks already sent keep their promise; the disk keeps it as long */
			st->promise_lower_at = MAX(st->promise_lower_at,
						   now + MS(promise_ms(st)));
			st->cfg.hb_timeout_ms = in->hb_timeout_ms;
			note(&s, QNOTE_HB_TIMEOUT_SET, in->hb_timeout_ms, 0);
		}
		break;
	case QIN_SHUTDOWN:
		on_shutdown(&s);
		break;
	case QIN_RESERVE:
		st->want_events |= IMG_FIELDS; /* the glue adds the reservation to the write */
		break;
	}

	if (!st->failed) {
		run_timers(&s);
		flush_sends(&s);
		reconcile_server(&s);
		if (st->started && !st->shutting_down)
			reconcile_promise(&s);
		flush_persist(&s);
	}
	finish(&s);
	out->deadline = next_deadline(st);
}

bool quorum_lease_valid(const struct quorum_state *st, mono_ns now)
{
	return st->role == QROLE_LEADER && !st->failed && now < st->lease_until;
}

bool quorum_may_serve(const struct quorum_state *st, mono_ns now)
{
	return st->srv == QSRV_UP && st->srv_term == st->term && quorum_lease_valid(st, now);
}

const char *quorum_role_name(int role)
{
	static const char *const names[] = {
		[QROLE_FOLLOWER] = "follower", [QROLE_CANDIDATE] = "candidate",
		[QROLE_LEADER] = "leader",
	};

	return role >= 0 && role < (int)ARRAY_SIZE(names) ? names[role] : "invalid";
}

const char *quorum_server_state_name(int srv)
{
	static const char *const names[] = {
		[QSRV_DOWN] = "down", [QSRV_FENCING] = "fencing", [QSRV_RECORDING] = "recording_fence",
		[QSRV_UP] = "up", [QSRV_STOPPING] = "stopping",
	};

	return srv >= 0 && srv < (int)ARRAY_SIZE(names) ? names[srv] : "invalid";
}

const char *quorum_note_text(int note)
{
	static const char *const text[] = {
		[QNOTE_STARTED] = "started",
		[QNOTE_PREVOTE] = "election timeout, asking for pre-votes",
		[QNOTE_CANDIDATE] = "pre-vote passed, candidate",
		[QNOTE_ELECTED] = "elected leader",
		[QNOTE_GREATER_TERM] = "saw a greater term, follower",
		[QNOTE_VOTED] = "voted",
		[QNOTE_LEASE_LOST] = "lost the leader lease (no majority acknowledged), stepping down",
		[QNOTE_LEADER_CONFLICT] = "heard another leader in our term",
		[QNOTE_SERVER_DOWN] = "server stopped",
		[QNOTE_RESIGNED] = "resigned leadership",
		[QNOTE_ELECTION_DEFERRED] = "election deferred: our server is still stopping",
		[QNOTE_LEADER_RESIGNED] = "leader resigned, electing promptly",
		[QNOTE_PERSIST_FAILED] = "writing our quorum block failed",
		[QNOTE_HB_TIMEOUT_SET] = "heartbeat timeout changed",
		[QNOTE_DEVICE_FAILED] = "our quorum block cannot be written: out of elections, retrying",
		[QNOTE_DEVICE_OK] = "our quorum block is written again: back in elections",
	};

	return note >= 0 && note < (int)ARRAY_SIZE(text) && text[note] ? text[note] : "?";
}
