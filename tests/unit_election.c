/*
 * unit_election.c - every transition of the election state machine, one
 * input at a time, plus a few whole-cluster scenarios from the seed's
 * comments (split votes, a member ahead by one term, the two-slot split)
 * on a tiny deterministic cluster.
 */
#include "tests/unit.h"

#include "quorum/agent.h"
#include "quorum/election.h"
#include "quorum/fence.h"
#include "quorum/holder.h"
#include "quorum/msg.h"
#include "quorum/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define MS(x) ((mono_ns)(x) * NSEC_PER_MSEC)
#define T0 MS(1000000)

/* ---- one member, driven by hand ---- */

struct h {
	struct quorum_state st;
	struct quorum_actions out;
	mono_ns now;
	uint32_t rnd;
};

static void h_init(struct h *h, int slot, int nslots, uint32_t hb_ms)
{
	struct quorum_config cfg = {
		.our_slot = slot,
		.present_mask = (uint16_t)((1u << nslots) - 1),
		.votes_needed = quorum_votes_needed(nslots),
		.hb_timeout_ms = hb_ms,
	};

	memset(h, 0, sizeof(*h));
	quorum_init(&h->st, &cfg);
	h->now = T0;
	h->rnd = 7;
}

static void h_step(struct h *h, struct quorum_input in)
{
	in.random = h->rnd++;
	quorum_step(&h->st, &in, h->now, &h->out);
}

static void h_start(struct h *h, uint64_t own_term, uint64_t greatest, bool leader_recorded)
{
	struct quorum_input in = { .type = QIN_START };

	in.start.own.term = own_term;
	in.start.own.vote_slot = -1;
	in.start.greatest_term = greatest;
	in.start.leader_recorded = leader_recorded;
	h_step(h, in);
}

static void h_msg(struct h *h, uint8_t type, int from, uint64_t term, uint64_t arg, uint8_t flags)
{
	struct quorum_input in = { .type = QIN_MSG };

	in.msg.type = type;
	in.msg.from = (uint8_t)from;
	in.msg.term = term;
	in.msg.arg = arg;
	in.msg.flags = flags;
	in.msg.timeout_ms = 2000;
	h_step(h, in);
}

static void h_ack(struct h *h, int from, uint64_t term, mono_ns sent, uint32_t timeout_ms)
{
	struct quorum_input in = { .type = QIN_MSG };

	in.msg.type = QMSG_HEARTBEAT_ACK;
	in.msg.from = (uint8_t)from;
	in.msg.term = term;
	in.msg.arg = (uint64_t)sent;
	in.msg.timeout_ms = timeout_ms;
	h_step(h, in);
}

static void h_simple(struct h *h, enum quorum_input_type type)
{
	struct quorum_input in = { .type = type };

	h_step(h, in);
}

static void h_timer_at(struct h *h, mono_ns now)
{
	h->now = now;
	h_simple(h, QIN_TIMER);
}

static void h_persist_done(struct h *h, int res)
{
	struct quorum_input in = { .type = QIN_PERSIST_DONE };

	in.persist.res = res;
	h_step(h, in);
}

static void h_server(struct h *h, enum quorum_input_type type, uint64_t term, int res)
{
	struct quorum_input in = { .type = type };

	in.server.term = term;
	in.server.res = res;
	h_step(h, in);
}

static const struct quorum_action *find_act(const struct h *h, enum quorum_action_type type)
{
	for (int i = 0; i < h->out.count; i++)
		if (h->out.act[i].type == type)
			return &h->out.act[i];
	return NULL;
}

static int act_index(const struct h *h, enum quorum_action_type type)
{
	for (int i = 0; i < h->out.count; i++)
		if (h->out.act[i].type == type)
			return i;
	return -1;
}

static const struct quorum_action *find_send(const struct h *h, uint8_t type)
{
	for (int i = 0; i < h->out.count; i++)
		if (h->out.act[i].type == QACT_SEND && h->out.act[i].msg.type == type)
			return &h->out.act[i];
	return NULL;
}

static bool has_note(const struct h *h, int code)
{
	for (int i = 0; i < h->out.count; i++)
		if (h->out.act[i].type == QACT_NOTE && h->out.act[i].note == code)
			return true;
	return false;
}

/* Start a member and complete its BEGIN write. */
static void h_started(struct h *h, uint64_t term)
{
	h_start(h, term, term, false);
	ck_assert_ptr_nonnull(find_act(h, QACT_PERSIST));
	h_persist_done(h, 0);
}

/* Drive a member of a 3-slot cluster to leader in term+1, server up. */
static void h_make_leader(struct h *h, uint64_t term)
{
	h_started(h, term);
	h_timer_at(h, h->out.deadline);
	ck_assert(h->st.prevote);
	h_msg(h, QMSG_PRE_VOTE_REPLY, (h->st.cfg.our_slot + 1) % 3, term, term + 1, QMSG_F_GRANTED);
	ck_assert(!h->st.prevote);
	h_persist_done(h, 0);
	h_msg(h, QMSG_VOTE, (h->st.cfg.our_slot + 1) % 3, term + 1, 0, 0);
	ck_assert_int_eq(h->st.role, QROLE_LEADER);
	h_persist_done(h, 0);
	ck_assert_ptr_nonnull(find_act(h, QACT_START_SERVER));
	/* the voter acks the heartbeat sent at election: a lease */
	h_ack(h, (h->st.cfg.our_slot + 1) % 3, term + 1, h->now, 2000);
	h_server(h, QIN_SERVER_FENCED, term + 1, 0);
	h_persist_done(h, 0);
	ck_assert_ptr_nonnull(find_act(h, QACT_SERVE));
}

/* ---- tests ---- */

START_TEST(votes_needed_table)
{
	static const int want[16] = { 1, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8 };

	for (int n = 1; n <= 15; n++)
		ck_assert_int_eq(quorum_votes_needed(n), want[n]);
}
END_TEST

START_TEST(hb_timeout_range)
{
	ck_assert(!quorum_hb_timeout_valid(499));
	ck_assert(quorum_hb_timeout_valid(500));
	ck_assert(quorum_hb_timeout_valid(60000));
	ck_assert(!quorum_hb_timeout_valid(60001));
	ck_assert_int_eq(quorum_lease_ns(2000), MS(1600));
}
END_TEST

START_TEST(nothing_before_start)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_msg(&h, QMSG_REQUEST_VOTE, 1, 5, 0, 0);
	ck_assert_int_eq(h.out.count, 0);
	h_timer_at(&h, T0 + MS(100000));
	ck_assert_int_eq(h.out.count, 0);
}
END_TEST

START_TEST(start_takes_greatest_term)
{
	struct h h;
	const struct quorum_action *p;

	h_init(&h, 0, 3, 2000);
	h_start(&h, 3, 4, false); /* we are a term behind another slot */
	ck_assert_uint_eq(h.st.term, 4);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert(p->events & (1u << FUSEFS_QEV_BEGIN));
	ck_assert(p->events & (1u << FUSEFS_QEV_TERM));
	ck_assert_uint_eq(p->image.term, 4);
	ck_assert_int_ge(h.out.deadline, T0 + MS(QUORUM_ELECT_MIN_MS));
	ck_assert_int_lt(h.out.deadline, T0 + MS(QUORUM_ELECT_MIN_MS + QUORUM_ELECT_VAR_MS));

	/* with a running leader in the blocks, wait a heartbeat timeout first */
	h_init(&h, 0, 3, 2000);
	h_start(&h, 4, 4, true);
	p = find_act(&h, QACT_PERSIST);
	ck_assert(!(p->events & (1u << FUSEFS_QEV_TERM)));
	ck_assert_int_eq(h.out.deadline, T0 + MS(2000));
}
END_TEST

START_TEST(restart_keeps_persisted_vote)
{
	struct h h;
	struct quorum_input in = { .type = QIN_START };

	h_init(&h, 0, 3, 2000);
	in.start.own.term = 6;
	in.start.own.vote_term = 6;
	in.start.own.vote_slot = 2;
	in.start.greatest_term = 6;
	h_step(&h, in);
	ck_assert_int_eq(h.st.vote_for, 2);
	h_persist_done(&h, 0);
	/* another candidate in the same term gets nothing */
	h_msg(&h, QMSG_REQUEST_VOTE, 1, 6, 0, 0);
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	ck_assert_int_eq(h.st.vote_for, 2);
	/* the one we voted for asking again gets its vote again */
	h_msg(&h, QMSG_REQUEST_VOTE, 2, 6, 0, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_VOTE));
}
END_TEST

START_TEST(timeout_asks_prevote_without_raising_term)
{
	struct h h;
	const struct quorum_action *a;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 5);
	h_timer_at(&h, h.out.deadline - 1);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	h_timer_at(&h, h.out.deadline);
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	ck_assert(h.st.prevote);
	ck_assert_uint_eq(h.st.term, 5);
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
	a = find_send(&h, QMSG_PRE_VOTE);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->to, QSEND_ALL);
	ck_assert_uint_eq(a->msg.term, 5);
	ck_assert_uint_eq(a->msg.arg, 6);
}
END_TEST

START_TEST(prevote_majority_persists_term_before_requesting)
{
	struct h h;
	const struct quorum_action *p;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 5);
	h_timer_at(&h, h.out.deadline);
	/* a refusal and a grant for another round change nothing */
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 0, 5, 6, 0);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 2, 5, 9, QMSG_F_GRANTED);
	ck_assert(h.st.prevote);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 2, 5, 6, QMSG_F_GRANTED);
	ck_assert(!h.st.prevote);
	ck_assert_uint_eq(h.st.term, 6);
	ck_assert_int_eq(h.st.vote_for, 1);
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->image.term, 6);
	ck_assert_uint_eq(p->image.vote_term, 6);
	ck_assert_int_eq(p->image.vote_slot, 1);
	/* rule 1: no REQUEST_VOTE until term and vote are durable */
	ck_assert_ptr_null(find_send(&h, QMSG_REQUEST_VOTE));
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_REQUEST_VOTE));
	ck_assert_uint_eq(find_send(&h, QMSG_REQUEST_VOTE)->msg.term, 6);
}
END_TEST

START_TEST(candidate_elected_records_elect_before_server)
{
	struct h h;
	int persist_idx, hb_idx;

	h_init(&h, 0, 3, 2000);
	h_started(&h, 2);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 1, 2, 3, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	/* a vote for another term, or before REQUEST_VOTE, is not counted */
	h_msg(&h, QMSG_VOTE, 2, 3, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
	persist_idx = act_index(&h, QACT_PERSIST);
	hb_idx = act_index(&h, QACT_SEND);
	ck_assert_int_ge(persist_idx, 0);
	ck_assert_int_ge(hb_idx, 0);
	ck_assert(find_act(&h, QACT_PERSIST)->events & (1u << FUSEFS_QEV_ELECT));
	ck_assert_ptr_nonnull(find_send(&h, QMSG_HEARTBEAT));
	ck_assert(has_note(&h, QNOTE_ELECTED));
	/* the server waits for ELECT to be durable */
	ck_assert_ptr_null(find_act(&h, QACT_START_SERVER));
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_START_SERVER));
	ck_assert_uint_eq(find_act(&h, QACT_START_SERVER)->term, 3);
	ck_assert_int_eq(h.st.srv, QSRV_FENCING);
	/* fenced: FENCE is recorded, and only then does it serve */
	h_server(&h, QIN_SERVER_FENCED, 3, 0);
	ck_assert(find_act(&h, QACT_PERSIST)->events & (1u << FUSEFS_QEV_FENCE));
	ck_assert_ptr_null(find_act(&h, QACT_SERVE));
	h_persist_done(&h, 0);
	/* ... and only with a lease: no follower has acked yet (cut off at election) */
	ck_assert_ptr_null(find_act(&h, QACT_SERVE));
	ck_assert_int_eq(h.st.srv, QSRV_RECORDING);
	h.now += MS(50);
	h_ack(&h, 2, 3, h.now - MS(49), 2000);
	ck_assert_ptr_nonnull(find_act(&h, QACT_SERVE));
	ck_assert_int_eq(h.st.srv, QSRV_UP);
	ck_assert(quorum_may_serve(&h.st, h.now));
}
END_TEST

/* A leader cut off before any ack never serves; its grace ends in a step-down. */
START_TEST(leader_without_lease_never_serves)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_started(&h, 2);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 1, 2, 3, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_VOTE, 2, 3, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
	h_persist_done(&h, 0);
	h_server(&h, QIN_SERVER_FENCED, 3, 0);
	h_persist_done(&h, 0);
	ck_assert_ptr_null(find_act(&h, QACT_SERVE));
	/* an ack of an older term is no lease either */
	h_ack(&h, 1, 2, h.now, 2000);
	ck_assert_ptr_null(find_act(&h, QACT_SERVE));
	for (int i = 0; i < 100 && h.st.role == QROLE_LEADER; i++) {
		h_timer_at(&h, h.out.deadline);
		ck_assert_ptr_null(find_act(&h, QACT_SERVE));
	}
	ck_assert_int_ne(h.st.role, QROLE_LEADER);
	ck_assert(has_note(&h, QNOTE_LEASE_LOST));
	ck_assert_ptr_nonnull(find_act(&h, QACT_STOP_SERVER));
}
END_TEST

START_TEST(single_slot_elects_itself)
{
	struct h h;

	h_init(&h, 0, 1, 2000);
	h_started(&h, 0);
	h_timer_at(&h, h.out.deadline);
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	ck_assert(!h.st.prevote);
	ck_assert_uint_eq(h.st.term, 1);
	h_persist_done(&h, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_START_SERVER));
	/* alone, its lease never runs out */
	h_timer_at(&h, h.now + MS(60000));
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
	ck_assert(quorum_lease_valid(&h.st, h.now));
}
END_TEST

START_TEST(follower_vote_durable_before_sent)
{
	struct h h;
	const struct quorum_action *p;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 4);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 5, 0, 0);
	ck_assert_uint_eq(h.st.term, 5);
	ck_assert_int_eq(h.st.vote_for, 0);
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->image.term, 5);
	ck_assert_uint_eq(p->image.vote_term, 5);
	ck_assert_int_eq(p->image.vote_slot, 0);
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_VOTE));
	ck_assert_int_eq(find_send(&h, QMSG_VOTE)->to, 0);
	/* another candidate in the same term: no second vote */
	h_msg(&h, QMSG_REQUEST_VOTE, 1, 5, 0, 0);
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
}
END_TEST

/*
 * The vote alone: the term is durable already, so only the vote is written.
 * The VOTE waits for that write (a check on the term alone would let it
 * out at once).
 */
START_TEST(vote_durable_before_sent_term_already_durable)
{
	struct h h;
	const struct quorum_action *p;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 5); /* term 5 is durable, no vote in it */
	ck_assert_uint_eq(h.st.durable.term, 5);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 5, 0, 0);
	ck_assert_int_eq(h.st.vote_for, 0);
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->image.vote_term, 5);
	ck_assert_int_eq(p->image.vote_slot, 0);
	ck_assert(!(p->events & (1u << FUSEFS_QEV_TERM))); /* nothing new about the term */
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	/* the candidate asks again and time passes while the write is out */
	h.now += MS(50);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 5, 0, 0);
	h_timer_at(&h, h.now + MS(10));
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_VOTE));
	ck_assert_int_eq(find_send(&h, QMSG_VOTE)->to, 0);
	ck_assert_uint_eq(find_send(&h, QMSG_VOTE)->msg.term, 5);
}
END_TEST

/* A failed vote write never lets the VOTE out. */
START_TEST(vote_not_sent_when_its_write_fails)
{
	struct h h;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 5);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 5, 0, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_PERSIST));
	h_persist_done(&h, -EIO);
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	for (int i = 0; i < 20; i++) {
		h_timer_at(&h, h.now + MS(100));
		ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
		if (find_act(&h, QACT_PERSIST))
			h_persist_done(&h, -EIO);
	}
}
END_TEST

START_TEST(broken_vote_persist_sends_undurable_vote)
{
	struct h h;

	h_init(&h, 2, 3, 2000);
	h.st.cfg.breaks = QBREAK_NO_VOTE_PERSIST;
	h_started(&h, 4);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 5, 0, 0);
	ck_assert_uint_eq(find_act(&h, QACT_PERSIST)->image.vote_term, 0);
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_VOTE));
}
END_TEST

/* A member that owes no STOP backs off 100 ms doubling to 1 s. */
START_TEST(device_failure_backoff_doubles)
{
	static const int64_t backoff_ms[] = { 100, 200, 400, 800, 1000, 1000 };
	struct h h;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 3);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 4, 0, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_PERSIST));
	for (size_t i = 0; i < ARRAY_SIZE(backoff_ms); i++) {
		h_persist_done(&h, -EIO);
		ck_assert_int_eq(h.st.dev_retry_at - h.now, MS(backoff_ms[i]));
		h_timer_at(&h, h.st.dev_retry_at);
		ck_assert_ptr_nonnull(find_act(&h, QACT_PERSIST));
	}
	h_persist_done(&h, 0);
	ck_assert(!h.st.dev_failing);
}
END_TEST

START_TEST(sticky_follower_refuses_and_keeps_term)
{
	struct h h;
	const struct quorum_action *a;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 7);
	h_msg(&h, QMSG_HEARTBEAT, 0, 7, 123, 0);
	ck_assert_int_eq(h.st.leader_slot, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_HEARTBEAT_ACK));
	ck_assert_uint_eq(find_send(&h, QMSG_HEARTBEAT_ACK)->msg.arg, 123);
	ck_assert_uint_eq(find_send(&h, QMSG_HEARTBEAT_ACK)->msg.timeout_ms, 2000);

	h.now += MS(1999);
	h_msg(&h, QMSG_PRE_VOTE, 1, 9, 10, 0);
	a = find_send(&h, QMSG_PRE_VOTE_REPLY);
	ck_assert_ptr_nonnull(a);
	ck_assert(!(a->msg.flags & QMSG_F_GRANTED));
	ck_assert_uint_eq(a->msg.term, 7);
	/* a rejoining member's greater-term vote request does not move us */
	h_msg(&h, QMSG_REQUEST_VOTE, 1, 10, 0, 0);
	ck_assert_uint_eq(h.st.term, 7);
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
	ck_assert_uint_eq(h.st.ctr.votes_refused_sticky, 1);

	/* a heartbeat timeout after the heartbeat, it grants */
	h.now += MS(1);
	h_msg(&h, QMSG_PRE_VOTE, 1, 9, 10, 0);
	ck_assert(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED);
	ck_assert_uint_eq(h.st.term, 7); /* a pre-vote never moves the term */
}
END_TEST

/*
 * A candidate whose way in is cut (it sends, hears nothing) asks for the
 * same pre-vote round after round.  A follower holds its own election
 * back for that proposal once, not again and again: otherwise the others
 * never elect and the cluster has no leader for as long as the cut lasts
 * (found by the integration test's one-way cut, in namespaces).
 */
START_TEST(deaf_candidate_holds_election_off_once)
{
	struct h h;
	mono_ns first;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 7);
	h.now += MS(2500); /* no leader heard for a while */
	h_msg(&h, QMSG_PRE_VOTE, 0, 7, 8, 0);
	ck_assert(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED);
	first = h.out.deadline;
	ck_assert_int_gt(first, h.now);
	/* the same proposal again and again, each round: granted, not waited for again */
	for (int i = 0; i < 50 && h.now + MS(100) < first; i++) {
		h.now += MS(100);
		h_msg(&h, QMSG_PRE_VOTE, 0, 7, 8, 0);
		ck_assert(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED);
		ck_assert_int_eq(h.out.deadline, first);
	}
	/* so it runs itself when that wait ends */
	h_timer_at(&h, first);
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	ck_assert(h.st.prevote);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_PRE_VOTE));
}
END_TEST

START_TEST(prevote_grant_needs_greater_proposal)
{
	struct h h;
	const struct quorum_action *a;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 7);
	h_msg(&h, QMSG_PRE_VOTE, 1, 6, 7, 0); /* behind: proposes our own term */
	a = find_send(&h, QMSG_PRE_VOTE_REPLY);
	ck_assert(!(a->msg.flags & QMSG_F_GRANTED));
	ck_assert_uint_eq(a->msg.term, 7); /* tells it our term, so it catches up */
	h_msg(&h, QMSG_PRE_VOTE, 1, 7, 9, 0); /* malformed: not term + 1 */
	ck_assert_ptr_null(find_send(&h, QMSG_PRE_VOTE_REPLY));
}
END_TEST

START_TEST(refused_prevote_with_greater_term_catches_up)
{
	struct h h;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 3);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 0, 8, 4, 0);
	ck_assert_uint_eq(h.st.term, 8);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert_uint_eq(find_act(&h, QACT_PERSIST)->image.term, 8);
}
END_TEST

START_TEST(greater_heartbeat_adopts_and_acks_once_durable)
{
	struct h h;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 3);
	h_msg(&h, QMSG_HEARTBEAT, 2, 5, 42, 0);
	ck_assert_uint_eq(h.st.term, 5);
	ck_assert_int_eq(h.st.leader_slot, 2);
	/* the ack would carry term 5, which is not yet durable: not sent */
	ck_assert_ptr_null(find_send(&h, QMSG_HEARTBEAT_ACK));
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_HEARTBEAT, 2, 5, 43, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_HEARTBEAT_ACK));
	/* and the next election waits a heartbeat timeout plus jitter */
	ck_assert_int_ge(h.out.deadline, h.now + MS(2000));
	ck_assert_int_lt(h.out.deadline, h.now + MS(2000 + QUORUM_ELECT_VAR_MS));
}
END_TEST

START_TEST(stale_messages_ignored)
{
	struct h h;
	struct quorum_input in = { .type = QIN_START };

	/* a member that voted for slot 0 in term 5 */
	h_init(&h, 1, 3, 2000);
	in.start.own.term = 5;
	in.start.own.vote_term = 5;
	in.start.own.vote_slot = 0;
	in.start.greatest_term = 5;
	h_step(&h, in);
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_HEARTBEAT, 2, 4, 1, 0);
	h_msg(&h, QMSG_REQUEST_VOTE, 2, 4, 0, 0);
	h_msg(&h, QMSG_VOTE, 2, 4, 0, 0);
	ck_assert_int_eq(h.out.count, 0);
	ck_assert_uint_eq(h.st.ctr.stale_msgs, 3);
	ck_assert_int_eq(h.st.leader_slot, -1);
	/* from ourselves, or from a slot that is not configured */
	h_msg(&h, QMSG_HEARTBEAT, 1, 9, 1, 0);
	h_msg(&h, QMSG_HEARTBEAT, 5, 9, 1, 0);
	ck_assert_uint_eq(h.st.term, 5);
}
END_TEST

/* A member ahead of a healthy leader's term follows it rather than lock it out. */
START_TEST(ahead_member_follows_lower_leader)
{
	struct h h;
	const struct quorum_action *ack;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 7); /* took term 7 from the blocks, voted for nobody */
	h_msg(&h, QMSG_HEARTBEAT, 0, 6, 99, 0);
	ack = find_send(&h, QMSG_HEARTBEAT_ACK);
	ck_assert_ptr_nonnull(ack);
	ck_assert_uint_eq(ack->msg.term, 6); /* the leader's term: it counts in its lease */
	ck_assert_uint_eq(ack->msg.arg, 99);
	ck_assert_uint_eq(h.st.term, 7);     /* ours never goes down */
	ck_assert_int_eq(h.st.leader_slot, 0);
	ck_assert(!h.st.leader_same_term);
	ck_assert_uint_eq(h.st.ctr.lower_leader_followed, 1);
	/* and it is sticky: refuses pre-votes for its own term's successor */
	h.now += MS(1000);
	h_msg(&h, QMSG_PRE_VOTE, 2, 7, 8, 0);
	ck_assert(!(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED));
	/* the lower leader resigns: elect promptly */
	h_msg(&h, QMSG_RESIGNATION, 0, 6, 0, 0);
	ck_assert_int_eq(h.st.sticky_until, 0);
	/* a leader of our own term takes precedence over lower ones */
	h_msg(&h, QMSG_HEARTBEAT, 2, 7, 5, 0);
	ck_assert(h.st.leader_same_term);
	h_msg(&h, QMSG_HEARTBEAT, 0, 6, 100, 0);
	ck_assert_ptr_null(find_send(&h, QMSG_HEARTBEAT_ACK));
	ck_assert_int_eq(h.st.leader_slot, 2);
}
END_TEST

START_TEST(failed_candidate_follows_lower_leader)
{
	struct h h;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 5);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 2, 5, 6, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	ck_assert_uint_eq(h.st.term, 6);
	/* a leader won term 5 after all: our candidacy in 6 gives way */
	h_msg(&h, QMSG_HEARTBEAT, 0, 5, 1, 0);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_HEARTBEAT_ACK));
	/* a late vote for our old candidacy elects nobody */
	h_msg(&h, QMSG_VOTE, 2, 6, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
}
END_TEST

/*
 * Found by the simulator's promise check: a member that voted for another
 * candidate in some term, and moved on to a greater term of its own, must
 * still not back a leader older than that vote.  Nor, after a restart,
 * one older than the term below its candidacy on disk.
 */
START_TEST(voter_never_backs_a_leader_older_than_its_vote)
{
	struct h h;
	struct quorum_input in = { .type = QIN_START };

	h_init(&h, 0, 3, 2000);
	h_started(&h, 1);
	h_msg(&h, QMSG_REQUEST_VOTE, 1, 2, 0, 0); /* votes for slot 1 in term 2 */
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_VOTE));
	h_msg(&h, QMSG_RESIGNATION, 1, 2, 0, 0);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 2, 2, 3, QMSG_F_GRANTED); /* its own candidacy in 3 */
	h_persist_done(&h, 0);
	ck_assert_int_eq(h.st.vote_for, 0);
	h_msg(&h, QMSG_HEARTBEAT, 2, 1, 7, 0); /* a leader of term 1 */
	ck_assert_ptr_null(find_send(&h, QMSG_HEARTBEAT_ACK));
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	/* the one it voted for, at a lower term than ours, it may still back */
	h_msg(&h, QMSG_HEARTBEAT, 1, 2, 8, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_HEARTBEAT_ACK));

	/* after a restart over a candidacy of term 5 on disk */
	h_init(&h, 0, 3, 2000);
	in.start.own.term = 5;
	in.start.own.vote_term = 5;
	in.start.own.vote_slot = 0;
	in.start.greatest_term = 5;
	h_step(&h, in);
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_HEARTBEAT, 1, 3, 1, 0); /* older than anything it may have voted in */
	ck_assert_ptr_null(find_send(&h, QMSG_HEARTBEAT_ACK));
	h_msg(&h, QMSG_HEARTBEAT, 1, 4, 1, 0); /* term 4 is the oldest vote it cannot rule out */
	ck_assert_ptr_nonnull(find_send(&h, QMSG_HEARTBEAT_ACK));
}
END_TEST

/* A vote still being written when another leader of its term appears is not sent. */
START_TEST(late_vote_for_a_loser_not_sent)
{
	struct h h;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 4);
	h_msg(&h, QMSG_HEARTBEAT, 1, 4, 1, 0); /* follows slot 1 ... */
	h_msg(&h, QMSG_RESIGNATION, 1, 4, 0, 0); /* ... which resigns */
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 4, 0, 0); /* votes for slot 0 in term 4 */
	ck_assert_int_eq(h.st.vote_for, 0);
	h_msg(&h, QMSG_HEARTBEAT, 1, 4, 2, 0); /* slot 1 leads term 4 after all */
	h_persist_done(&h, 0);
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
}
END_TEST

/* A sticky follower refuses a REQUEST_VOTE of its own term too, not only greater ones. */
START_TEST(sticky_follower_refuses_same_term_request)
{
	struct h h;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 4);
	h_msg(&h, QMSG_HEARTBEAT, 0, 5, 1, 0); /* learns term 5 from its leader: no vote cast */
	h_persist_done(&h, 0);
	ck_assert_int_eq(h.st.vote_for, -1);
	h_msg(&h, QMSG_REQUEST_VOTE, 1, 5, 0, 0); /* a candidate of the same term */
	ck_assert_int_eq(h.st.vote_for, -1);
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
	ck_assert_uint_eq(h.st.ctr.votes_refused_sticky, 1);
}
END_TEST

START_TEST(prevote_grant_from_member_behind_counts)
{
	struct h h;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 7);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 0, 4, 8, QMSG_F_GRANTED);
	ck_assert(!h.st.prevote);
	ck_assert_uint_eq(h.st.term, 8);
}
END_TEST

START_TEST(leader_lease_from_acks)
{
	struct h h;
	mono_ns elected;

	h_init(&h, 0, 5, 2000);
	h_started(&h, 1);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 1, 1, 2, QMSG_F_GRANTED);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 2, 1, 2, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_VOTE, 1, 2, 0, 0);
	h_msg(&h, QMSG_VOTE, 2, 2, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
	elected = h.now;
	ck_assert(!quorum_lease_valid(&h.st, h.now)); /* no acks yet */

	/* one ack of a heartbeat sent at elected: not a majority of 5 */
	h.now += MS(5);
	h_ack(&h, 1, 2, elected, 2000);
	ck_assert(!quorum_lease_valid(&h.st, h.now));
	/* a second: lease until send time + 4/5 of the smaller timeout */
	h_ack(&h, 3, 2, elected, 1000);
	ck_assert(quorum_lease_valid(&h.st, h.now));
	ck_assert_int_eq(h.st.lease_until, elected + MS(800));
	/* bogus acks count for nothing */
	h_ack(&h, 4, 2, h.now + MS(1), 2000);  /* sent in the future */
	h_ack(&h, 4, 2, elected, 100);         /* timeout out of range */
	h_ack(&h, 4, 1, elected, 2000);        /* another term */
	ck_assert_int_eq(h.st.lease_until, elected + MS(800));
	ck_assert_int_eq(h.st.ack_lease[4], 0);
}
END_TEST

START_TEST(leader_without_acks_steps_down)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	/* heartbeats go out every 100 ms, nobody acks */
	for (int i = 0; i < 15; i++) {
		h_timer_at(&h, h.out.deadline);
		ck_assert_int_eq(h.st.role, QROLE_LEADER);
	}
	h_timer_at(&h, h.st.elected_at + quorum_lease_ns(2000));
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert(has_note(&h, QNOTE_LEASE_LOST));
	ck_assert_ptr_nonnull(find_send(&h, QMSG_RESIGNATION));
	ck_assert_ptr_nonnull(find_act(&h, QACT_STOP_SERVER));
	ck_assert_ptr_null(find_send(&h, QMSG_HEARTBEAT));
	/* STOP is recorded once the server is down */
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
	h_server(&h, QIN_SERVER_DOWN, 2, 0);
	ck_assert(find_act(&h, QACT_PERSIST)->events & (1u << FUSEFS_QEV_STOP));
	ck_assert_uint_eq(find_act(&h, QACT_PERSIST)->image.ev_term[FUSEFS_QEV_STOP], 2);
}
END_TEST

START_TEST(paused_leader_checks_lease_before_acting)
{
	struct h h;
	mono_ns sent;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	sent = h.now;
	h_ack(&h, 1, 2, sent, 2000);
	ck_assert(quorum_may_serve(&h.st, h.now));
	/* paused for 5 s; the first thing it does on waking is give up */
	h.now += MS(5000);
	h_msg(&h, QMSG_REQUEST_VOTE, 2, 2, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert_int_eq(h.out.act[0].type, QACT_NOTE);
	ck_assert_int_eq(h.out.act[0].note, QNOTE_LEASE_LOST);
	ck_assert_ptr_null(find_send(&h, QMSG_HEARTBEAT));
	ck_assert(!quorum_may_serve(&h.st, h.now));
}
END_TEST

/*
 * Whether the server may serve is a function of the time asked, not of
 * the last step: a lease that runs out between two steps is over at once.
 */
START_TEST(may_serve_ends_with_lease_between_steps)
{
	struct h h;
	mono_ns sent, until;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	sent = h.now;
	h_ack(&h, 1, 2, sent, 2000);
	until = sent + quorum_lease_ns(2000);
	ck_assert_int_eq(h.st.lease_until, until);
	/* no step from here on: only the time asked about changes */
	ck_assert(quorum_lease_valid(&h.st, h.now));
	ck_assert(quorum_may_serve(&h.st, h.now));
	ck_assert(quorum_may_serve(&h.st, until - 1));
	ck_assert(!quorum_lease_valid(&h.st, until));
	ck_assert(!quorum_may_serve(&h.st, until));
	ck_assert(!quorum_may_serve(&h.st, until + MS(5000)));
	/* and a step at the end of the lease gives up leadership */
	h_timer_at(&h, until);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
}
END_TEST

/* Serving needs the server up in our term, as well as the lease. */
START_TEST(may_serve_needs_server_up)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_started(&h, 1);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 1, 1, 2, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_VOTE, 1, 2, 0, 0);
	h_persist_done(&h, 0); /* ELECT durable: fencing */
	h_ack(&h, 1, 2, h.now, 2000);
	ck_assert(quorum_lease_valid(&h.st, h.now));
	ck_assert(!quorum_may_serve(&h.st, h.now)); /* fencing, not up */
	h_server(&h, QIN_SERVER_FENCED, 2, 0);
	ck_assert(!quorum_may_serve(&h.st, h.now)); /* FENCE not yet durable */
	h_persist_done(&h, 0);
	ck_assert(quorum_may_serve(&h.st, h.now));
}
END_TEST

/*
 * Messages of a term below ours count for nothing where they would
 * matter: a candidate is not elected by old votes, a member that has not
 * voted in its term does not vote for an old candidate, a leader's lease
 * is not extended by old acks, and an old pre-vote grant for another
 * proposal is not counted.
 */
START_TEST(old_term_messages_not_counted)
{
	struct h h;

	/* a candidate in term 6 with its REQUEST_VOTE out, one vote short */
	h_init(&h, 0, 3, 2000);
	h_started(&h, 5);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 1, 5, 6, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	ck_assert(h.st.request_sent);
	ck_assert_uint_eq(h.st.term, 6);
	h_msg(&h, QMSG_VOTE, 1, 5, 0, 0);
	h_msg(&h, QMSG_VOTE, 2, 4, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	ck_assert_uint_eq(h.st.vote_bits, 1u << 0);
	h_msg(&h, QMSG_VOTE, 2, 6, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);

	/* a follower in term 5 that has not voted: an old candidate gets nothing */
	h_init(&h, 1, 3, 2000);
	h_started(&h, 5);
	ck_assert_int_eq(h.st.vote_for, -1);
	h_msg(&h, QMSG_REQUEST_VOTE, 2, 4, 0, 0);
	ck_assert_int_eq(h.st.vote_for, -1);
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	ck_assert_uint_eq(h.st.ctr.stale_msgs, 1);
	/* ... and still votes for a candidate of its own term afterwards */
	h_msg(&h, QMSG_REQUEST_VOTE, 2, 5, 0, 0);
	ck_assert_int_eq(h.st.vote_for, 2);

	/* a leader in term 2: acks of term 1 buy no lease */
	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1); /* with slot 1's ack of term 2 */
	{
		mono_ns lease = h.st.lease_until, ack1 = h.st.ack_lease[1];

		h.now += MS(100);
		h_ack(&h, 1, 1, h.now, 2000);
		h_ack(&h, 2, 1, h.now, 2000);
		ck_assert_int_eq(h.st.lease_until, lease);
		ck_assert_int_eq(h.st.ack_lease[1], ack1);
		ck_assert_int_eq(h.st.ack_lease[2], 0);
	}
	/* an old-term heartbeat does not make it yield */
	h_msg(&h, QMSG_HEARTBEAT, 1, 1, 5, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);

	/* a pre-voting member: a grant for an older proposal is not counted */
	h_init(&h, 1, 3, 2000);
	h_started(&h, 5);
	h_timer_at(&h, h.out.deadline);
	ck_assert(h.st.prevote);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 0, 4, 5, QMSG_F_GRANTED);
	ck_assert(h.st.prevote);
	ck_assert_uint_eq(h.st.term, 5);
}
END_TEST

START_TEST(leader_keeps_lease_with_acks)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	for (int i = 0; i < 100; i++) {
		mono_ns sent = h.now;

		h_ack(&h, 2, 2, sent, 2000);
		h_timer_at(&h, h.out.deadline);
		ck_assert_int_eq(h.st.role, QROLE_LEADER);
		ck_assert(quorum_may_serve(&h.st, h.now));
	}
	/* and sticky: a rejoining member's greater term does not depose it */
	h_msg(&h, QMSG_REQUEST_VOTE, 1, 9, 0, 0);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 1, 9, 3, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
	ck_assert_uint_eq(h.st.term, 2);
}
END_TEST

START_TEST(broken_lease_never_steps_down)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h.st.cfg.breaks = QBREAK_NO_LEASE;
	h_make_leader(&h, 1);
	h_timer_at(&h, h.now + MS(60000));
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
}
END_TEST

START_TEST(greater_heartbeat_deposes_leader)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	h_msg(&h, QMSG_HEARTBEAT, 1, 3, 1, 0);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert_uint_eq(h.st.term, 3);
	ck_assert_ptr_nonnull(find_act(&h, QACT_STOP_SERVER));
	ck_assert_ptr_null(find_send(&h, QMSG_RESIGNATION));
}
END_TEST

START_TEST(resignation_starts_prompt_election)
{
	struct h h;

	h_init(&h, 1, 3, 10000);
	h_started(&h, 4);
	h_msg(&h, QMSG_HEARTBEAT, 0, 4, 1, 0);
	ck_assert_int_ge(h.st.deadline, h.now + MS(10000));
	h_msg(&h, QMSG_RESIGNATION, 2, 4, 0, 0); /* not our leader */
	ck_assert_int_ge(h.st.deadline, h.now + MS(10000));
	h_msg(&h, QMSG_RESIGNATION, 0, 4, 0, 0);
	ck_assert_int_lt(h.out.deadline, h.now + MS(QUORUM_ELECT_MIN_MS + QUORUM_ELECT_VAR_MS));
	ck_assert_int_eq(h.st.sticky_until, 0);
	ck_assert(has_note(&h, QNOTE_LEADER_RESIGNED));
	/* now it grants pre-votes at once */
	h_msg(&h, QMSG_PRE_VOTE, 2, 4, 5, 0);
	ck_assert(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED);
}
END_TEST

START_TEST(election_waits_for_server_down)
{
	struct h h;
	mono_ns due;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	h_msg(&h, QMSG_HEARTBEAT, 1, 3, 1, 0); /* deposed: server stopping */
	ck_assert_int_eq(h.st.srv, QSRV_STOPPING);
	due = h.st.deadline;
	h.now += MS(10000);
	h_timer_at(&h, h.now);
	ck_assert(has_note(&h, QNOTE_ELECTION_DEFERRED));
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert_int_gt(h.st.deadline, due);
	h_server(&h, QIN_SERVER_DOWN, 2, 0);
	h_timer_at(&h, h.out.deadline);
	ck_assert(h.st.prevote);
}
END_TEST

START_TEST(server_failure_resigns_and_records_stop)
{
	struct h h;
	const struct quorum_action *p;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	h_server(&h, QIN_SERVER_DOWN, 2, -ETIMEDOUT);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_RESIGNATION));
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->image.ev_term[FUSEFS_QEV_STOP], 2);
	/* a down report for another term is ignored */
	h_server(&h, QIN_SERVER_DOWN, 1, 0);
	ck_assert_int_eq(h.out.count, 0);
}
END_TEST

START_TEST(fencing_failure_never_serves)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_started(&h, 1);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 1, 1, 2, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_VOTE, 1, 2, 0, 0);
	h_persist_done(&h, 0);
	ck_assert_int_eq(h.st.srv, QSRV_FENCING);
	h_server(&h, QIN_SERVER_DOWN, 2, -ETIMEDOUT); /* fence agent failed */
	ck_assert_int_eq(h.st.srv, QSRV_DOWN);
	ck_assert_ptr_null(find_act(&h, QACT_SERVE));
	ck_assert_ptr_nonnull(find_send(&h, QMSG_RESIGNATION));
}
END_TEST

START_TEST(shutdown_leader_stops_resigns_stop_end)
{
	struct h h;
	const struct quorum_action *p;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	h_simple(&h, QIN_SHUTDOWN);
	ck_assert_ptr_nonnull(find_act(&h, QACT_STOP_SERVER));
	ck_assert_ptr_null(find_send(&h, QMSG_RESIGNATION)); /* not while serving */
	ck_assert_int_eq(h.out.deadline, INT64_MAX);
	h_server(&h, QIN_SERVER_DOWN, 2, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_RESIGNATION));
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert(p->events & (1u << FUSEFS_QEV_STOP));
	ck_assert(p->events & (1u << FUSEFS_QEV_END));
	ck_assert_int_lt(act_index(&h, QACT_SEND), act_index(&h, QACT_PERSIST));
	ck_assert_ptr_null(find_act(&h, QACT_DONE));
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_DONE));
	ck_assert(h.st.done);
}
END_TEST

/* Rule 7: a clean END only once the acks' promises ran out. */
START_TEST(shutdown_end_waits_for_promises)
{
	struct h h;
	mono_ns acked;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 3);
	h_msg(&h, QMSG_HEARTBEAT, 0, 3, 1, 0);
	acked = h.now;
	h.now += MS(300);
	h_simple(&h, QIN_SHUTDOWN);
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
	ck_assert_int_eq(h.out.deadline, acked + MS(2000));
	h_timer_at(&h, acked + MS(1999));
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
	h_timer_at(&h, acked + MS(2000));
	ck_assert(find_act(&h, QACT_PERSIST)->events & (1u << FUSEFS_QEV_END));
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_DONE));
}
END_TEST

START_TEST(promise_lowered_after_old_promises_expire)
{
	struct h h;
	struct quorum_input in = { .type = QIN_SET_HB_TIMEOUT };
	mono_ns changed;

	h_init(&h, 1, 3, 5000);
	h_started(&h, 2);
	ck_assert_uint_eq(h.st.durable.hb_ms, 5000);
	h_msg(&h, QMSG_HEARTBEAT, 0, 2, 1, 0);
	in.hb_timeout_ms = 1000;
	h_step(&h, in);
	changed = h.now;
	/* heartbeats keep coming; the disk keeps 5000 until those acks are old */
	for (int i = 1; i <= 49; i++) {
		const struct quorum_action *p;

		h.now = changed + MS(100) * i;
		h_msg(&h, QMSG_HEARTBEAT, 0, 2, 1, 0);
		ck_assert_uint_eq(find_send(&h, QMSG_HEARTBEAT_ACK)->msg.timeout_ms, 1000);
		p = find_act(&h, QACT_PERSIST);
		if (p != NULL) {
			/* only the periodic read-back, which keeps the promise as it is */
			ck_assert(p->check);
			ck_assert_uint_eq(p->events, 0);
			ck_assert_uint_eq(p->image.hb_ms, 5000);
			h_persist_done(&h, 0);
		}
	}
	h.now = changed + MS(5000);
	h_msg(&h, QMSG_HEARTBEAT, 0, 2, 1, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_PERSIST));
	ck_assert_uint_eq(find_act(&h, QACT_PERSIST)->image.hb_ms, 1000);
	/*
	 * A raise while that write is in flight: until it lands, acks promise no
	 * more than it carries, for a crash right after it leaves 1000 on disk.
	 */
	in.hb_timeout_ms = 3000;
	h_step(&h, in);
	h.now += MS(10);
	h_msg(&h, QMSG_HEARTBEAT, 0, 2, 1, 0);
	ck_assert_uint_eq(find_send(&h, QMSG_HEARTBEAT_ACK)->msg.timeout_ms, 1000);
	/* once it lands, the raise is written at once */
	h_persist_done(&h, 0);
	ck_assert_uint_eq(find_act(&h, QACT_PERSIST)->image.hb_ms, 3000);
	h_msg(&h, QMSG_HEARTBEAT, 0, 2, 1, 0);
	ck_assert_uint_eq(find_send(&h, QMSG_HEARTBEAT_ACK)->msg.timeout_ms, 1000);
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_HEARTBEAT, 0, 2, 1, 0);
	ck_assert_uint_eq(find_send(&h, QMSG_HEARTBEAT_ACK)->msg.timeout_ms, 3000);
	/* raising takes effect on disk at once */
	in.hb_timeout_ms = 8000;
	h_step(&h, in);
	ck_assert_uint_eq(find_act(&h, QACT_PERSIST)->image.hb_ms, 8000);
}
END_TEST

START_TEST(no_serve_after_stepping_down)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_started(&h, 1);
	h_timer_at(&h, h.out.deadline);
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 1, 1, 2, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	h_msg(&h, QMSG_VOTE, 1, 2, 0, 0);
	h_persist_done(&h, 0);
	h_server(&h, QIN_SERVER_FENCED, 2, 0); /* FENCE write in flight */
	h_msg(&h, QMSG_HEARTBEAT, 2, 3, 1, 0); /* deposed meanwhile */
	h_persist_done(&h, 0);
	ck_assert_ptr_null(find_act(&h, QACT_SERVE));
	ck_assert_int_eq(h.st.srv, QSRV_STOPPING);
}
END_TEST

START_TEST(shutdown_follower_writes_end)
{
	struct h h;
	const struct quorum_action *p;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 0);
	h_simple(&h, QIN_SHUTDOWN);
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->events, 1u << FUSEFS_QEV_END);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 3, 0, 0); /* ignored while leaving */
	ck_assert_int_eq(h.out.count, 0);
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_DONE));
}
END_TEST

/* Only what retrying cannot fix ends membership: another mount on our slot. */
START_TEST(persist_failure_leaves_quorum)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	h_server(&h, QIN_SERVER_DOWN, 2, 0);
	h_persist_done(&h, -EEXIST);
	ck_assert_ptr_nonnull(find_act(&h, QACT_FAILED));
	ck_assert_int_eq(find_act(&h, QACT_FAILED)->a, -EEXIST);
	ck_assert(has_note(&h, QNOTE_PERSIST_FAILED));
	h_msg(&h, QMSG_REQUEST_VOTE, 1, 9, 0, 0);
	ck_assert_int_eq(h.out.count, 0);
	ck_assert_int_eq(h.out.deadline, INT64_MAX);
}
END_TEST

/*
 * A write that fails with an I/O error: the leader steps down (resigns,
 * stops its server) with one note, stays out of elections, and retries
 * every 100 ms while its STOP is not on disk (the next leader would fence
 * it otherwise); the first write that succeeds brings it back, and it then
 * campaigns again.
 */
START_TEST(device_failure_steps_down_retries_rejoins)
{
	static const int64_t backoff_ms[] = { 100, 100, 100, 100, 100, 100, 100 };
	const struct quorum_action *p;
	mono_ns failed_at;
	struct h h;
	int notes = 0;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	h.now = h.st.check_at - MS(1000);
	h_ack(&h, 1, 2, h.now, 2000);
	/* the periodic read-back of our block fails */
	h_timer_at(&h, h.st.check_at);
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert(p->check);
	h_persist_done(&h, -EIO);
	failed_at = h.now;
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert(h.st.dev_failing);
	ck_assert_int_eq(h.st.dev_err, -EIO);
	ck_assert(has_note(&h, QNOTE_DEVICE_FAILED));
	ck_assert_ptr_nonnull(find_send(&h, QMSG_RESIGNATION));
	ck_assert_ptr_nonnull(find_act(&h, QACT_STOP_SERVER));
	ck_assert_ptr_null(find_act(&h, QACT_FAILED));
	ck_assert(!quorum_may_serve(&h.st, h.now));
	h_server(&h, QIN_SERVER_DOWN, 2, 0);
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST)); /* the STOP waits for the retry */

	for (size_t i = 0; i < ARRAY_SIZE(backoff_ms); i++) {
		/* out of elections meanwhile: no vote, no pre-vote grant, no candidacy */
		h.now += MS(10);
		h_msg(&h, QMSG_REQUEST_VOTE, 1, 2, 0, 0);
		ck_assert_int_eq(h.st.vote_for, 0); /* still its own vote of term 2 */
		h_msg(&h, QMSG_PRE_VOTE, 2, 2, 3, 0);
		ck_assert(!(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED));
		ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
		ck_assert_int_le(h.out.deadline, h.st.dev_retry_at);
		h_timer_at(&h, h.st.dev_retry_at - 1);
		ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
		h_timer_at(&h, h.st.dev_retry_at);
		p = find_act(&h, QACT_PERSIST);
		ck_assert_ptr_nonnull(p);
		ck_assert(!p->check);
		ck_assert(p->events & (1u << FUSEFS_QEV_STOP));
		notes += has_note(&h, QNOTE_DEVICE_FAILED);
		h_persist_done(&h, -EIO);
		notes += has_note(&h, QNOTE_DEVICE_FAILED);
		ck_assert_int_eq(h.st.dev_retry_at - h.now, MS(backoff_ms[i]));
	}
	ck_assert_int_eq(notes, 0); /* one note for the whole outage */
	ck_assert_uint_eq(h.st.dev_retries, ARRAY_SIZE(backoff_ms) + 1);
	ck_assert_int_eq(h.st.dev_since, failed_at);
	/* the device answers again */
	h_timer_at(&h, h.st.dev_retry_at);
	ck_assert_ptr_nonnull(find_act(&h, QACT_PERSIST));
	h_persist_done(&h, 0);
	ck_assert(!h.st.dev_failing);
	ck_assert(has_note(&h, QNOTE_DEVICE_OK));
	ck_assert_uint_eq(h.st.durable.ev_term[FUSEFS_QEV_STOP], 2);
	ck_assert_uint_eq(h.st.ctr.device_recoveries, 1);
	h_timer_at(&h, h.st.deadline);
	ck_assert(h.st.prevote); /* campaigns again */
}
END_TEST

/* A vote whose write fails is never sent, and the member votes no more. */
START_TEST(device_failure_during_vote)
{
	struct h h;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 3);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 4, 0, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_PERSIST));
	h_persist_done(&h, -ETIMEDOUT);
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	ck_assert(h.st.dev_failing);
	/* the retry carries term and vote again; once durable, the VOTE may go */
	h_timer_at(&h, h.st.dev_retry_at);
	ck_assert_uint_eq(find_act(&h, QACT_PERSIST)->image.vote_term, 4);
	ck_assert_int_eq(find_act(&h, QACT_PERSIST)->image.vote_slot, 0);
	ck_assert_ptr_null(find_send(&h, QMSG_VOTE));
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_VOTE));
}
END_TEST

/* Rule 8: nothing goes out before BEGIN (our sequence numbers) is durable. */
START_TEST(nothing_sent_before_begin_durable)
{
	struct h h;

	h_init(&h, 1, 3, 2000);
	h_start(&h, 3, 3, false);
	h_msg(&h, QMSG_PRE_VOTE, 0, 3, 4, 0);
	ck_assert_ptr_null(find_send(&h, QMSG_PRE_VOTE_REPLY));
	h_timer_at(&h, h.out.deadline); /* an election timeout while BEGIN is out */
	ck_assert_ptr_null(find_send(&h, QMSG_PRE_VOTE));
	h_persist_done(&h, 0);
	ck_assert(h.st.begun);
	h_msg(&h, QMSG_PRE_VOTE, 0, 3, 4, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_PRE_VOTE_REPLY));
}
END_TEST

/*
 * In a steady role the member reads its block back every min(H, 2 s); not
 * while an election may need its writes.
 */
START_TEST(steady_members_check_their_block)
{
	const struct quorum_action *p;
	struct h h;

	h_init(&h, 1, 3, 5000);
	h_started(&h, 3);
	/* no leader heard: no check */
	h_timer_at(&h, h.now + MS(2000));
	ck_assert_ptr_null(find_act(&h, QACT_PERSIST));
	h_msg(&h, QMSG_HEARTBEAT, 0, 3, 1, 0);
	h_timer_at(&h, h.st.check_at);
	p = find_act(&h, QACT_PERSIST);
	ck_assert_ptr_nonnull(p);
	ck_assert(p->check);
	ck_assert_uint_eq(p->events, 0);
	ck_assert_uint_eq(p->image.term, 3);
	ck_assert_int_eq(h.st.check_at, h.now + MS(2000));
	h_persist_done(&h, 0);
	ck_assert_uint_eq(h.st.ctr.checks, 1);
	/* a check that fails is a device failure like any other */
	h_msg(&h, QMSG_HEARTBEAT, 0, 3, 2, 0);
	h_timer_at(&h, h.st.check_at);
	ck_assert(find_act(&h, QACT_PERSIST)->check);
	h_persist_done(&h, -EIO);
	ck_assert(h.st.dev_failing);
	/* still acks its leader: the promise on disk is unchanged */
	h_msg(&h, QMSG_HEARTBEAT, 0, 3, 3, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_HEARTBEAT_ACK));
}
END_TEST

/* After the member left the quorum, its status still follows its server. */
START_TEST(server_down_recorded_after_leaving)
{
	struct h h;

	h_init(&h, 0, 3, 2000);
	h_make_leader(&h, 1);
	h.now = h.st.check_at - MS(1000);
	h_ack(&h, 1, 2, h.now, 2000);
	h_timer_at(&h, h.st.check_at);
	h_persist_done(&h, -EEXIST); /* another mount took our slot */
	ck_assert_ptr_nonnull(find_act(&h, QACT_STOP_SERVER));
	ck_assert_ptr_nonnull(find_act(&h, QACT_FAILED));
	ck_assert_int_eq(h.st.srv, QSRV_STOPPING);
	h_server(&h, QIN_SERVER_DOWN, 2, 0);
	ck_assert_int_eq(h.st.srv, QSRV_DOWN);
	ck_assert_int_eq(h.out.count, 0);
}
END_TEST

/*
 * Slow writes: a candidacy's round starts when its term and vote are
 * durable, however long that took, and lasts a timeout plus two writes.
 */
START_TEST(slow_device_round_from_durability)
{
	struct h h;
	mono_ns asked;

	h_init(&h, 1, 3, 2000);
	h_start(&h, 3, 3, false);
	h.now += MS(1500); /* BEGIN takes 1.5 s */
	h_persist_done(&h, 0);
	ck_assert_int_eq(h.st.persist_est_ns, MS(1500));
	h_timer_at(&h, h.out.deadline);
	ck_assert(h.st.prevote);
	/* the spread of the timeout grew with the writes' time */
	h_msg(&h, QMSG_PRE_VOTE_REPLY, 0, 3, 4, QMSG_F_GRANTED);
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	ck_assert_int_eq(h.st.deadline, INT64_MAX); /* nothing to time out while writing */
	asked = h.now;
	h_timer_at(&h, asked + MS(1400));
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	ck_assert(!h.st.prevote);
	h.now = asked + MS(1500);
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_REQUEST_VOTE));
	ck_assert_int_ge(h.st.deadline, h.now + MS(QUORUM_ELECT_MIN_MS) + 2 * MS(1500));
	ck_assert_int_lt(h.st.deadline, h.now + MS(QUORUM_ELECT_MIN_MS + QUORUM_ELECT_VAR_MS) +
					     3 * MS(1500));
	/* a vote that took a write arrives within the round */
	h_timer_at(&h, h.now + MS(2900));
	ck_assert_int_eq(h.st.role, QROLE_CANDIDATE);
	h_msg(&h, QMSG_VOTE, 2, 4, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
}
END_TEST

/* A candidacy still waiting on its write that ends any other way times out again. */
START_TEST(candidate_waiting_on_write_keeps_a_deadline)
{
	struct h h;

	for (int how = 0; how < 2; how++) {
		h_init(&h, 1, 3, 2000);
		h_started(&h, 5);
		h_timer_at(&h, h.out.deadline);
		h_msg(&h, QMSG_PRE_VOTE_REPLY, 0, 5, 6, QMSG_F_GRANTED);
		ck_assert_int_eq(h.st.deadline, INT64_MAX);
		if (how == 0)
			h_msg(&h, QMSG_PRE_VOTE_REPLY, 2, 9, 10, 0); /* a greater term */
		else
			h_persist_done(&h, -EIO);                     /* its write failed */
		ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
		ck_assert_int_lt(h.st.deadline, h.now + MS(10000));
		ck_assert_int_lt(h.out.deadline, h.now + MS(10000));
	}
}
END_TEST

/*
 * Found on real processes with 1 s per I/O: a vote whose write outlasts the
 * deadline set when it was cast is still sent, instead of the voter starting
 * its own election in the step that completes the write.
 */
START_TEST(slow_vote_write_still_sent)
{
	struct h h;

	h_init(&h, 2, 3, 2000);
	h_started(&h, 3); /* fast writes so far: a small estimate */
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 3, 0, 0);
	ck_assert_ptr_nonnull(find_act(&h, QACT_PERSIST));
	h.now = h.st.deadline + MS(2000); /* the vote write took far longer */
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_VOTE));
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	ck_assert_int_gt(h.st.deadline, h.now);
}
END_TEST

/* A voter and a pre-vote granter hold off their own elections for a round. */
START_TEST(slow_device_backers_hold_off)
{
	struct h h;

	h_init(&h, 2, 3, 2000);
	h_start(&h, 3, 3, true); /* a leader on record: wait H before campaigning */
	h.now += MS(1000);
	h_persist_done(&h, 0);
	ck_assert_int_eq(h.st.role, QROLE_FOLLOWER);
	h_msg(&h, QMSG_PRE_VOTE, 0, 3, 4, 0);
	ck_assert(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED);
	ck_assert_int_ge(h.st.deadline, h.now + MS(QUORUM_ELECT_MIN_MS) + 3 * MS(1000));
	h.now += MS(1000);
	h_msg(&h, QMSG_REQUEST_VOTE, 0, 4, 0, 0);
	ck_assert_int_ge(h.st.deadline, h.now + MS(QUORUM_ELECT_MIN_MS) + 3 * MS(1000));
	h.now += MS(1000);
	h_persist_done(&h, 0);
	ck_assert_ptr_nonnull(find_send(&h, QMSG_VOTE));
	ck_assert_int_ge(h.st.deadline, h.now + MS(QUORUM_ELECT_MIN_MS) + 2 * MS(1000));
}
END_TEST

START_TEST(set_hb_timeout_validated)
{
	struct h h;
	struct quorum_input in = { .type = QIN_SET_HB_TIMEOUT };

	h_init(&h, 0, 3, 2000);
	h_started(&h, 0);
	in.hb_timeout_ms = 100;
	h_step(&h, in);
	ck_assert_uint_eq(h.st.cfg.hb_timeout_ms, 2000);
	in.hb_timeout_ms = 700;
	h_step(&h, in);
	ck_assert_uint_eq(h.st.cfg.hb_timeout_ms, 700);
	h_msg(&h, QMSG_HEARTBEAT, 1, 0, 1, 0);
	ck_assert_uint_eq(find_send(&h, QMSG_HEARTBEAT_ACK)->msg.timeout_ms, 700);
}
END_TEST

START_TEST(lowered_timeout_keeps_old_promise)
{
	struct h h;
	struct quorum_input in = { .type = QIN_SET_HB_TIMEOUT };
	mono_ns first;

	h_init(&h, 1, 3, 2000);
	h_started(&h, 0);
	h_msg(&h, QMSG_HEARTBEAT, 0, 0, 1, 0); /* acked with 2000 ms */
	first = h.now;
	in.hb_timeout_ms = 500;
	h_step(&h, in);
	h.now += MS(100);
	h_msg(&h, QMSG_HEARTBEAT, 0, 0, 2, 0);
	/* still refuses until 2000 ms after the first heartbeat */
	h.now = first + MS(1999);
	h_msg(&h, QMSG_PRE_VOTE, 2, 0, 1, 0);
	ck_assert(!(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED));
	h.now = first + MS(2000);
	h_msg(&h, QMSG_PRE_VOTE, 2, 0, 1, 0);
	ck_assert(find_send(&h, QMSG_PRE_VOTE_REPLY)->msg.flags & QMSG_F_GRANTED);
}
END_TEST

START_TEST(two_leaders_same_term_higher_slot_yields)
{
	struct h lo, hi;

	h_init(&lo, 0, 2, 2000);
	h_init(&hi, 1, 2, 2000);
	h_started(&lo, 0);
	h_started(&hi, 0);
	h_timer_at(&lo, lo.out.deadline);
	h_persist_done(&lo, 0);
	h_timer_at(&hi, hi.out.deadline);
	h_persist_done(&hi, 0);
	ck_assert_int_eq(lo.st.role, QROLE_LEADER);
	ck_assert_int_eq(hi.st.role, QROLE_LEADER);
	ck_assert_uint_eq(lo.st.term, hi.st.term);
	h_msg(&lo, QMSG_HEARTBEAT, 1, 1, 1, 0);
	ck_assert_int_eq(lo.st.role, QROLE_LEADER);
	h_msg(&hi, QMSG_HEARTBEAT, 0, 1, 1, 0);
	ck_assert_int_eq(hi.st.role, QROLE_FOLLOWER);
	ck_assert_int_eq(hi.st.leader_slot, 0);
	ck_assert(has_note(&hi, QNOTE_LEADER_CONFLICT));
}
END_TEST

START_TEST(actions_bounded)
{
	struct h h;

	/* the busiest step: a leader losing its lease with the server up */
	h_init(&h, 0, 15, 500);
	h_started(&h, 0);
	h_timer_at(&h, h.out.deadline);
	for (int i = 1; i < 8; i++)
		h_msg(&h, QMSG_PRE_VOTE_REPLY, i, 0, 1, QMSG_F_GRANTED);
	h_persist_done(&h, 0);
	for (int i = 1; i < 8; i++)
		h_msg(&h, QMSG_VOTE, i, 1, 0, 0);
	ck_assert_int_eq(h.st.role, QROLE_LEADER);
	ck_assert_int_le(h.out.count, QUORUM_MAX_ACTIONS);
}
END_TEST

/* ---- a tiny deterministic cluster for scenarios ---- */

#define CL_MAX 5
#define CL_QUEUE 512

struct cl_msg {
	int to;
	mono_ns at;
	struct quorum_msg msg;
};

struct cl {
	int n;
	struct h m[CL_MAX];
	bool down[CL_MAX];
	mono_ns persist_at[CL_MAX]; /* 0: none in flight */
	struct cl_msg q[CL_QUEUE];
	int qlen;
	mono_ns now;
	int64_t persist_ns;         /* how long a write takes */
	int leader_of_term[64];
};

static void cl_apply(struct cl *c, int i)
{
	struct h *h = &c->m[i];

	for (int k = 0; k < h->out.count; k++) {
		const struct quorum_action *a = &h->out.act[k];

		switch (a->type) {
		case QACT_PERSIST:
			c->persist_at[i] = c->now + c->persist_ns;
			break;
		case QACT_SEND:
			for (int to = 0; to < c->n; to++) {
				if (to == i || (a->to != QSEND_ALL && a->to != to))
					continue;
				ck_assert_int_lt(c->qlen, CL_QUEUE);
				c->q[c->qlen++] = (struct cl_msg){ to, c->now + MS(1), a->msg };
			}
			break;
		case QACT_START_SERVER: {
			struct quorum_input in = { .type = QIN_SERVER_FENCED };

			in.server.term = a->term;
			h_step(h, in);
			cl_apply(c, i);
			return;
		}
		default:
			break;
		}
	}
	if (h->st.role == QROLE_LEADER) {
		uint64_t t = h->st.term;

		ck_assert_uint_lt(t, 64);
		ck_assert_msg(c->leader_of_term[t] == -1 || c->leader_of_term[t] == i,
			      "two leaders in term %lu", (unsigned long)t);
		c->leader_of_term[t] = i;
	}
}

static void cl_init_with(struct cl *c, int n, const uint64_t *terms, uint32_t hb_ms,
			int64_t persist_ns, uint32_t breaks, uint32_t seed);

static void cl_init(struct cl *c, int n, const uint64_t *terms)
{
	cl_init_with(c, n, terms, 1000, MS(1), 0, 0);
}

static void cl_init_with(struct cl *c, int n, const uint64_t *terms, uint32_t hb_ms,
			 int64_t persist_ns, uint32_t breaks, uint32_t seed)
{
	uint64_t greatest = 0;

	memset(c, 0, sizeof(*c));
	c->n = n;
	c->now = T0;
	for (int t = 0; t < 64; t++)
		c->leader_of_term[t] = -1;
	for (int i = 0; i < n; i++)
		greatest = MAX(greatest, terms[i]);
	c->persist_ns = persist_ns;
	for (int i = 0; i < n; i++) {
		h_init(&c->m[i], i, n, hb_ms);
		c->m[i].st.cfg.breaks = breaks;
		c->m[i].rnd = 1000u * (unsigned)i + 1 + seed * 7919u;
		c->m[i].now = c->now;
		h_start(&c->m[i], terms[i], greatest, false);
		cl_apply(c, i);
	}
}

/* Run 1 ms at a time until `until`; messages and writes take 1 ms. */
static void cl_run(struct cl *c, mono_ns until)
{
	while (c->now < until) {
		c->now += MS(1);
		for (int i = 0; i < c->n; i++) {
			struct h *h = &c->m[i];

			h->now = c->now;
			if (c->down[i])
				continue;
			if (c->persist_at[i] && c->persist_at[i] <= c->now) {
				c->persist_at[i] = 0;
				h_persist_done(h, 0);
				cl_apply(c, i);
			}
			if (h->out.deadline <= c->now || h->st.deadline <= c->now) {
				h_simple(h, QIN_TIMER);
				cl_apply(c, i);
			}
		}
		for (int k = 0; k < c->qlen;) {
			struct cl_msg m = c->q[k];
			struct quorum_input in = { .type = QIN_MSG };

			if (m.at > c->now) {
				k++;
				continue;
			}
			c->q[k] = c->q[--c->qlen];
			if (c->down[m.to])
				continue;
			in.msg = m.msg;
			h_step(&c->m[m.to], in);
			cl_apply(c, m.to);
		}
	}
}

static int cl_leader(const struct cl *c)
{
	int leader = -1;

	for (int i = 0; i < c->n; i++)
		if (!c->down[i] && c->m[i].st.role == QROLE_LEADER) {
			ck_assert_int_eq(leader, -1);
			leader = i;
		}
	return leader;
}

START_TEST(cluster_elects_and_fails_over)
{
	static const uint64_t terms[3] = { 0, 0, 0 };
	struct cl c;
	int first, second;

	cl_init(&c, 3, terms);
	cl_run(&c, T0 + MS(1000));
	first = cl_leader(&c);
	ck_assert_int_ge(first, 0);
	ck_assert(quorum_may_serve(&c.m[first].st, c.now));
	/* followers keep it: a long quiet stretch changes nothing */
	cl_run(&c, T0 + MS(10000));
	ck_assert_int_eq(cl_leader(&c), first);
	/* it dies; another is elected within the heartbeat timeout + 1 s */
	c.down[first] = true;
	cl_run(&c, c.now + MS(2000));
	second = cl_leader(&c);
	ck_assert_int_ge(second, 0);
	ck_assert_int_ne(second, first);
	ck_assert_uint_gt(c.m[second].st.term, c.m[first].st.term);
}
END_TEST

/* The seed's split vote: two candidates in one term, neither a majority. */
START_TEST(cluster_split_vote_resolves)
{
	static const uint64_t terms[4] = { 3, 3, 3, 3 };
	struct cl c;
	struct quorum_input in = { .type = QIN_MSG };
	int leader;

	cl_init(&c, 4, terms);
	/* complete BEGIN writes, then make 0 and 1 candidates in term 4 at once */
	cl_run(&c, T0 + MS(2));
	for (int i = 0; i < 2; i++) {
		in.msg = (struct quorum_msg){ .type = QMSG_PRE_VOTE_REPLY, .from = (uint8_t)(i ^ 1),
					      .term = 3, .arg = 4, .flags = QMSG_F_GRANTED };
		h_simple(&c.m[i], QIN_TIMER);
		c.m[i].st.deadline = c.now; /* force the timeout */
		h_simple(&c.m[i], QIN_TIMER);
		cl_apply(&c, i);
		in.msg.from = 2;
		h_step(&c.m[i], in);
		in.msg.from = 3;
		h_step(&c.m[i], in);
		cl_apply(&c, i);
		ck_assert_uint_eq(c.m[i].st.term, 4);
		ck_assert_int_eq(c.m[i].st.vote_for, i);
	}
	/* 2 votes for 0, 3 for 1: 2 + 2, no majority of 3 in term 4 */
	cl_run(&c, T0 + MS(3000));
	leader = cl_leader(&c);
	ck_assert_int_ge(leader, 0);
	ck_assert_uint_ge(c.m[leader].st.term, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_le(c.m[i].st.term, c.m[leader].st.term);
}
END_TEST

/* The seed's case: N-1 members at term T-1 and one at T start together. */
START_TEST(cluster_member_ahead_at_start)
{
	static const uint64_t terms[3] = { 6, 7, 6 };
	struct cl c;
	int leader;

	cl_init(&c, 3, terms);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(c.m[i].st.term, 7);
	cl_run(&c, T0 + MS(1500));
	leader = cl_leader(&c);
	ck_assert_int_ge(leader, 0);
	ck_assert_uint_eq(c.m[leader].st.term, 8);
}
END_TEST

/* A member cut off for a long time rejoins and does not depose the leader. */
START_TEST(cluster_rejoin_keeps_leader)
{
	static const uint64_t terms[3] = { 0, 0, 0 };
	struct cl c;
	int leader, lost;
	uint64_t term;

	cl_init(&c, 3, terms);
	cl_run(&c, T0 + MS(1000));
	leader = cl_leader(&c);
	term = c.m[leader].st.term;
	lost = (leader + 1) % 3;
	c.down[lost] = true; /* its timers do not run, it hears nothing */
	cl_run(&c, c.now + MS(5000));
	/* it comes back having missed everything, times out and asks around */
	c.down[lost] = false;
	c.m[lost].st.deadline = c.now;
	cl_run(&c, c.now + MS(5000));
	ck_assert_int_eq(cl_leader(&c), leader);
	ck_assert_uint_eq(c.m[leader].st.term, term);
	ck_assert_uint_eq(c.m[lost].st.term, term);
	ck_assert_int_eq(c.m[lost].st.leader_slot, leader);
}
END_TEST

/*
 * Slow devices: every write takes a large fraction of the heartbeat
 * timeout (here up to 3/4 of it, where a candidate's write alone outlasts
 * several election timeouts).  Elections still converge, for each of
 * several random streams; with rounds timed from their start (the
 * no-slow-device break) they do not.
 */
static int slow_cluster_elects_within(int n, int64_t persist_ns, uint32_t breaks, uint32_t seed,
				      mono_ns limit)
{
	static const uint64_t terms[CL_MAX] = { 0 };
	struct cl *c = calloc(1, sizeof(*c));
	int leader = -1;
	mono_ns start;

	ck_assert_ptr_nonnull(c);
	cl_init_with(c, n, terms, 2000, persist_ns, breaks, seed);
	start = c->now;
	while (c->now - start < limit) {
		cl_run(c, c->now + MS(100));
		leader = cl_leader(c);
		if (leader >= 0 && c->m[leader].st.srv == QSRV_UP)
			break;
		leader = -1;
	}
	free(c);
	return leader;
}

START_TEST(cluster_slow_device_converges)
{
	static const int64_t persist_ms[] = { 500, 1000, 1500 };

	for (size_t p = 0; p < ARRAY_SIZE(persist_ms); p++)
		for (uint32_t seed = 1; seed <= 4; seed++)
			for (int n = 3; n <= 5; n += 2)
				ck_assert_msg(slow_cluster_elects_within(n, MS(persist_ms[p]), 0, seed,
									 MS(30000)) >= 0,
					      "no serving leader in 30 s: %d members, writes of %ld ms, "
					      "seed %u", n, (long)persist_ms[p], seed);
}
END_TEST

START_TEST(cluster_slow_device_break_livelocks)
{
	ck_assert_int_lt(slow_cluster_elects_within(3, MS(1000), QBREAK_NO_SLOW_DEVICE, 1,
						    MS(30000)), 0);
}
END_TEST

Suite *suite_election(void)
{
	Suite *s = suite_create("election");
	TCase *tc = tcase_create("transitions");

	tcase_add_test(tc, votes_needed_table);
	tcase_add_test(tc, hb_timeout_range);
	tcase_add_test(tc, nothing_before_start);
	tcase_add_test(tc, start_takes_greatest_term);
	tcase_add_test(tc, restart_keeps_persisted_vote);
	tcase_add_test(tc, timeout_asks_prevote_without_raising_term);
	tcase_add_test(tc, deaf_candidate_holds_election_off_once);
	tcase_add_test(tc, prevote_majority_persists_term_before_requesting);
	tcase_add_test(tc, candidate_elected_records_elect_before_server);
	tcase_add_test(tc, leader_without_lease_never_serves);
	tcase_add_test(tc, single_slot_elects_itself);
	tcase_add_test(tc, follower_vote_durable_before_sent);
	tcase_add_test(tc, vote_durable_before_sent_term_already_durable);
	tcase_add_test(tc, vote_not_sent_when_its_write_fails);
	tcase_add_test(tc, broken_vote_persist_sends_undurable_vote);
	tcase_add_test(tc, sticky_follower_refuses_and_keeps_term);
	tcase_add_test(tc, prevote_grant_needs_greater_proposal);
	tcase_add_test(tc, refused_prevote_with_greater_term_catches_up);
	tcase_add_test(tc, greater_heartbeat_adopts_and_acks_once_durable);
	tcase_add_test(tc, stale_messages_ignored);
	tcase_add_test(tc, ahead_member_follows_lower_leader);
	tcase_add_test(tc, failed_candidate_follows_lower_leader);
	tcase_add_test(tc, voter_never_backs_a_leader_older_than_its_vote);
	tcase_add_test(tc, late_vote_for_a_loser_not_sent);
	tcase_add_test(tc, sticky_follower_refuses_same_term_request);
	tcase_add_test(tc, prevote_grant_from_member_behind_counts);
	tcase_add_test(tc, leader_lease_from_acks);
	tcase_add_test(tc, leader_without_acks_steps_down);
	tcase_add_test(tc, paused_leader_checks_lease_before_acting);
	tcase_add_test(tc, may_serve_ends_with_lease_between_steps);
	tcase_add_test(tc, may_serve_needs_server_up);
	tcase_add_test(tc, old_term_messages_not_counted);
	tcase_add_test(tc, leader_keeps_lease_with_acks);
	tcase_add_test(tc, broken_lease_never_steps_down);
	tcase_add_test(tc, greater_heartbeat_deposes_leader);
	tcase_add_test(tc, resignation_starts_prompt_election);
	tcase_add_test(tc, election_waits_for_server_down);
	tcase_add_test(tc, server_failure_resigns_and_records_stop);
	tcase_add_test(tc, fencing_failure_never_serves);
	tcase_add_test(tc, shutdown_leader_stops_resigns_stop_end);
	tcase_add_test(tc, shutdown_end_waits_for_promises);
	tcase_add_test(tc, promise_lowered_after_old_promises_expire);
	tcase_add_test(tc, no_serve_after_stepping_down);
	tcase_add_test(tc, shutdown_follower_writes_end);
	tcase_add_test(tc, persist_failure_leaves_quorum);
	tcase_add_test(tc, device_failure_steps_down_retries_rejoins);
	tcase_add_test(tc, device_failure_during_vote);
	tcase_add_test(tc, device_failure_backoff_doubles);
	tcase_add_test(tc, nothing_sent_before_begin_durable);
	tcase_add_test(tc, steady_members_check_their_block);
	tcase_add_test(tc, server_down_recorded_after_leaving);
	tcase_add_test(tc, slow_device_round_from_durability);
	tcase_add_test(tc, slow_device_backers_hold_off);
	tcase_add_test(tc, slow_vote_write_still_sent);
	tcase_add_test(tc, candidate_waiting_on_write_keeps_a_deadline);
	tcase_add_test(tc, set_hb_timeout_validated);
	tcase_add_test(tc, lowered_timeout_keeps_old_promise);
	tcase_add_test(tc, two_leaders_same_term_higher_slot_yields);
	tcase_add_test(tc, actions_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("cluster");
	tcase_add_test(tc, cluster_elects_and_fails_over);
	tcase_add_test(tc, cluster_split_vote_resolves);
	tcase_add_test(tc, cluster_member_ahead_at_start);
	tcase_add_test(tc, cluster_rejoin_keeps_leader);
	tcase_add_test(tc, cluster_slow_device_converges);
	tcase_add_test(tc, cluster_slow_device_break_livelocks);
	suite_add_tcase(s, tc);
	return s;
}
