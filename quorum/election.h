/*
 * election.h - the election: a pure state machine.
 *
 * The election is a pure function, quorum_step(state, input, now) ->
 * (state, actions): no clock reads, no I/O, no globals, no allocation.  Two
 * drivers run it: the quorum agent in fusefs-mount and the deterministic
 * simulator in tests/.  See docs/quorum.md for the protocol and its proof
 * obligations; the short version:
 *
 *  - Roles follower, candidate, leader.  A follower that hears no leader
 *    for its heartbeat timeout (or hears its leader resign) first asks for
 *    PRE_VOTEs; only when a majority would vote does it raise its term and
 *    ask for real VOTEs (Raft thesis 9.6).
 *  - A member that heard a live leader within its heartbeat timeout refuses
 *    pre-votes and votes and does not adopt greater terms from them, so a
 *    member rejoining with a greater term cannot depose a healthy leader.
 *  - Persist before you speak: a term is durable before any message
 *    carries it, a vote before the VOTE is sent, ELECT before the server
 *    starts, FENCE before the server serves.  The machine asks for writes
 *    (QACT_PERSIST) and acts on their completion (QIN_PERSIST_DONE).
 *  - Leader lease (check-quorum): followers acknowledge heartbeats; the
 *    leader holds a lease only while a majority acknowledged a heartbeat it
 *    sent within the lease, and steps down when it has none.  The lease
 *    ends before any other member can be elected (docs/quorum.md).  The
 *    timeout a follower promises is on its disk, so the promise survives a
 *    crash: a member restarting after an unclean end stays sticky for it.
 */
#ifndef FUSEFS_ELECTION_H
#define FUSEFS_ELECTION_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "blockdev/format.h"
#include "common/common.h"
#include "quorum/msg.h"

/* ---- timings ---- */

#define QUORUM_ELECT_MIN_MS 250
#define QUORUM_ELECT_VAR_MS 100
#define QUORUM_HB_IVAL_MS 100
#define QUORUM_HB_TIMEOUT_MIN_MS 500
#define QUORUM_HB_TIMEOUT_MAX_MS 60000
#define QUORUM_HB_TIMEOUT_DEFAULT_MS 10000
/* a member whose device fails retries its block write this often (doubling) */
#define QUORUM_DEV_RETRY_MIN_MS 100
#define QUORUM_DEV_RETRY_MAX_MS 1000
/* a member in a steady role reads its block back at least this often */
#define QUORUM_CHECK_MAX_MS 2000

static inline bool quorum_hb_timeout_valid(uint64_t ms)
{
	return ms >= QUORUM_HB_TIMEOUT_MIN_MS && ms <= QUORUM_HB_TIMEOUT_MAX_MS;
}

/*
 * The lease a heartbeat acknowledgement buys, for a follower whose
 * heartbeat timeout is hb_timeout_ms: four fifths of it.  The fifth held
 * back covers clock-rate differences of up to 1% between members (which
 * need 2%) and the time between the lease running out and the leader's
 * server noticing (at least 18% of the timeout, 90 ms at the 500 ms
 * minimum).  docs/quorum.md derives the bound.
 */
static inline int64_t quorum_lease_ns(uint32_t hb_timeout_ms)
{
	return (int64_t)hb_timeout_ms * NSEC_PER_MSEC * 4 / 5;
}

/* A strict majority of the present slots; 1 with one or two slots. */
static inline int quorum_votes_needed(int present_count)
{
	return present_count < 3 ? 1 : present_count / 2 + 1;
}

/* ---- election state machine ---- */

enum quorum_role { QROLE_FOLLOWER, QROLE_CANDIDATE, QROLE_LEADER };
const char *quorum_role_name(int role);

/* Our view of our own server, which runs outside the quorum thread. */
enum quorum_server_state {
	QSRV_DOWN,      /* not running */
	QSRV_FENCING,   /* started: fencing earlier leaders */
	QSRV_RECORDING, /* fenced; FENCE being made durable */
	QSRV_UP,        /* FENCE durable: serving while the lease holds */
	QSRV_STOPPING,  /* asked to stop, not yet down */
};
const char *quorum_server_state_name(int st);

/* Deliberate protocol bugs, for the simulator to prove its checks. */
enum {
	/* the seed's bug: a vote is never stored, and a restart remembers nothing
	 * of its voting (no vote, no restart promise) */
	QBREAK_NO_VOTE_PERSIST = 1 << 0,
	QBREAK_NO_PREVOTE = 1 << 1,        /* no pre-vote and no stickiness */
	QBREAK_NO_LEASE = 1 << 2,          /* leaders never check their lease */
	QBREAK_NO_RESTART_PROMISE = 1 << 3, /* a restart forgets the acks it sent */
	QBREAK_NO_DEVICE_RETRY = 1 << 4,   /* a failed block write leaves the quorum for good */
	QBREAK_NO_SLOW_DEVICE = 1 << 5,    /* rounds timed from their start, not from durability */
	QBREAK_NO_CHECK = 1 << 6,          /* no periodic read-back of our block (no repair) */
};

/*
 * A device error retrying cannot fix: another mount has begun on our slot.
 * Everything else (EIO, a timeout) is retried with backoff.
 */
static inline bool quorum_error_is_permanent(int res)
{
	return res == -EEXIST;
}

struct quorum_config {
	int our_slot;
	uint16_t present_mask;
	int votes_needed;
	uint32_t hb_timeout_ms;
	uint32_t breaks; /* QBREAK_*: the simulator only; always 0 in fusefs-mount */
};

/* Counters the election keeps (messages are counted by the agent). */
#define QUORUM_ELECTION_COUNTERS(X) \
	X(elections_started)        \
	X(prevotes_started)         \
	X(prevotes_granted)         \
	X(prevotes_refused)         \
	X(votes_granted)            \
	X(votes_refused_sticky)     \
	X(elected)                  \
	X(term_follower)            \
	X(candidate_server_stopping) \
	X(lease_lost)               \
	X(server_shutdown)          \
	X(recv_resignation)         \
	X(heartbeats_sent)          \
	X(acks_counted)             \
	X(stale_msgs)               \
	X(lower_leader_followed)    \
	X(leader_conflicts)         \
	X(persists)                 \
	X(checks)                   \
	X(device_failures)          \
	X(device_recoveries)        \
	X(votes_refused_device)

struct quorum_election_counters {
#define X(n) uint64_t n;
	QUORUM_ELECTION_COUNTERS(X)
#undef X
};

/* The part of our quorum block the election controls. */
struct quorum_image {
	uint64_t term;                   /* TERM event */
	uint64_t vote_term;
	int vote_slot;                   /* -1: none */
	uint64_t ev_term[FUSEFS_QEV_NR]; /* term recorded with each event */
	uint32_t hb_ms;                  /* heartbeat timeout we may have promised */
};

struct quorum_state {
	struct quorum_config cfg;

	enum quorum_role role;
	bool prevote;            /* candidate: still asking for pre-votes */
	uint64_t term;
	int vote_for;            /* our vote in term, -1: none */
	uint64_t other_vote_term; /* the last term we voted for another slot in ... */
	int other_vote_slot;     /* ... and for whom (-1: not known, after a restart) */
	uint16_t vote_bits;      /* candidate: (pre-)votes received in this round */
	mono_ns deadline;        /* follower, candidate: start an election then */
	mono_ns retry_at;        /* candidate: ask again those who did not answer */
	int leader_slot;         /* the leader we hear from, -1: none */
	bool leader_same_term;   /* ... and it leads our own term (not a lower one) */
	mono_ns sticky_until;    /* heard a live leader: refuse (pre-)votes until */
	/*
	 * The pre-vote proposal (slot, term) we last held our own election
	 * back for.  Asked again for the same one, we grant but do not wait
	 * again: a candidate that never hears our grants (its way in is cut)
	 * would otherwise hold every election off for good.
	 */
	int deferred_slot;
	uint64_t deferred_term;
	mono_ns promise_lower_at; /* the promise on disk may drop to our timeout then */

	/* leader */
	mono_ns elected_at;
	mono_ns hb_next;
	mono_ns ack_lease[FUSEFS_QUORUM_MAX_SLOTS]; /* lease each follower's last ack buys */
	mono_ns lease_until;     /* our lease; 0: none */

	/* persistence: durable <= inflight <= want */
	struct quorum_image durable;
	struct quorum_image want;
	uint32_t want_events;    /* events to stamp in the next write */
	bool persist_busy;
	struct quorum_image inflight;
	uint32_t inflight_events;
	bool inflight_check;     /* the write in flight is a check (QACT_PERSIST.check) */
	bool check_wanted;       /* a check is due */
	mono_ns check_at;        /* next check of our block, in a steady role */
	mono_ns persist_started; /* when the write in flight was asked for */
	int64_t persist_est_ns;  /* how long our writes take: recent maximum, decaying */
	bool begun;              /* BEGIN is durable: our sequence numbers are reserved */
	bool request_sent;       /* candidate: REQUEST_VOTE sent for term */
	bool vote_sent;          /* follower: VOTE sent for vote_for in term */

	/* our device: writes failing since dev_since (docs/quorum.md, "Device faults") */
	bool dev_failing;
	int dev_err;             /* the last error */
	mono_ns dev_since;
	mono_ns dev_retry_at;    /* the next attempt */
	uint32_t dev_retries;    /* failed attempts in this outage */
	uint64_t dev_outages;    /* outages so far */

	/* server */
	enum quorum_server_state srv;
	uint64_t srv_term;
	uint64_t my_elect_term;  /* our last election in this incarnation, 0: none */
	bool end_requested;

	bool started;
	bool shutting_down;
	bool done;
	bool failed;
	int fail_res;

	struct quorum_election_counters ctr;
};

enum quorum_input_type {
	QIN_START,          /* once, first: what the blocks say */
	QIN_MSG,            /* a validated message */
	QIN_TIMER,          /* a deadline passed (any wakeup is fine) */
	QIN_PERSIST_DONE,   /* the QACT_PERSIST in flight completed */
	QIN_SERVER_FENCED,  /* our server fenced every earlier leader */
	QIN_SERVER_DOWN,    /* our server stopped (by request or on its own) */
	QIN_SET_HB_TIMEOUT, /* change our heartbeat timeout */
	QIN_SHUTDOWN,       /* unmount: stop the server, resign, write STOP, END */
	QIN_RESERVE,        /* write our block soon: the driver needs more sequence numbers */
};

struct quorum_input {
	enum quorum_input_type type;
	uint32_t random; /* fresh random bits with every input */
	union {
		struct {
			struct quorum_image own; /* our block as read */
			uint64_t greatest_term;  /* over every block */
			bool leader_recorded;    /* the blocks show a running leader */
			bool prev_unclean;       /* our slot's last mount did not END */
		} start;
		struct quorum_msg msg;
		struct {
			int res;
		} persist;
		struct {
			uint64_t term;
			int res;
		} server;
		uint32_t hb_timeout_ms;
	};
};

enum quorum_action_type {
	QACT_PERSIST,      /* write our quorum block durably, then QIN_PERSIST_DONE;
			    * with check set: read it back, and write it (from memory
			    * if it fails verification) only if it is not ours as left */
	QACT_SEND,         /* send msg to slot `to`, or to every other slot */
	QACT_START_SERVER, /* start our server for term: fence, then QIN_SERVER_FENCED */
	QACT_SERVE,        /* FENCE is durable: the server may accept clients */
	QACT_STOP_SERVER,  /* stop our server, then QIN_SERVER_DOWN */
	QACT_NOTE,         /* something worth a log line (see quorum_note_text) */
	QACT_DONE,         /* shutdown finished: END is durable */
	QACT_FAILED,       /* cannot continue (res): no longer a member */
};

#define QSEND_ALL (-1)

enum quorum_note {
	QNOTE_STARTED,
	QNOTE_PREVOTE,            /* a: term proposed */
	QNOTE_CANDIDATE,          /* a: term */
	QNOTE_ELECTED,            /* a: term, b: votes */
	QNOTE_GREATER_TERM,       /* a: new term, b: from slot */
	QNOTE_VOTED,              /* a: term, b: for slot */
	QNOTE_LEASE_LOST,         /* a: term */
	QNOTE_LEADER_CONFLICT,    /* a: term, b: other leader's slot */
	QNOTE_SERVER_DOWN,        /* a: term, b: res */
	QNOTE_RESIGNED,           /* a: term */
	QNOTE_ELECTION_DEFERRED,  /* server still stopping */
	QNOTE_LEADER_RESIGNED,    /* a: term, b: slot */
	QNOTE_PERSIST_FAILED,     /* a: res (permanent: we leave the quorum) */
	QNOTE_HB_TIMEOUT_SET,     /* a: ms */
	QNOTE_DEVICE_FAILED,      /* a: res, b: ms to the first retry */
	QNOTE_DEVICE_OK,          /* a: ms the outage lasted, b: failed attempts */
	QNOTE_NR,                 /* one past the last */
};

const char *quorum_note_text(int note);

struct quorum_action {
	enum quorum_action_type type;
	int to;                        /* QACT_SEND: slot or QSEND_ALL */
	struct quorum_msg msg;         /* QACT_SEND */
	struct quorum_image image;     /* QACT_PERSIST: the fields to write */
	uint32_t events;               /* QACT_PERSIST: bit per event to stamp */
	bool check;                    /* QACT_PERSIST: a periodic check, nothing new */
	uint64_t term;                 /* server actions */
	int note;                      /* QACT_NOTE */
	int64_t a, b;                  /* QACT_NOTE arguments; QACT_FAILED: a = res */
};

#define QUORUM_MAX_ACTIONS 16

struct quorum_actions {
	int count;
	struct quorum_action act[QUORUM_MAX_ACTIONS];
	mono_ns deadline; /* call quorum_step with QIN_TIMER at or after this */
};

/* Set up a state; nothing happens until QIN_START. */
void quorum_init(struct quorum_state *st, const struct quorum_config *cfg);
/*
 * Apply one input at time now.  Actions come out in the order the driver
 * must perform them.  Never fails: bad inputs (stale, duplicated, out of
 * place) are ignored and counted.
 */
void quorum_step(struct quorum_state *st, const struct quorum_input *in, mono_ns now,
		 struct quorum_actions *out);

/* Does the leader hold a lease at now?  (Always false for non-leaders.) */
bool quorum_lease_valid(const struct quorum_state *st, mono_ns now);
/* Is our server allowed to serve clients at now? */
bool quorum_may_serve(const struct quorum_state *st, mono_ns now);

#endif
