/*
 * quorum.h - the public face of quorum/: wire messages, the election state
 * machine, fence selection, and (in agent.h terms below) the io_uring agent
 * that drives the machine in a mount.
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
#ifndef FUSEFS_QUORUM_H
#define FUSEFS_QUORUM_H

#include <stdbool.h>
#include <stdint.h>

#include "blockdev/format.h"
#include "common/common.h"
#include "common/hmac.h"

struct bd_dev;

/* ---- timings ---- */

#define QUORUM_ELECT_MIN_MS 250
#define QUORUM_ELECT_VAR_MS 100
#define QUORUM_HB_IVAL_MS 100
#define QUORUM_HB_TIMEOUT_MIN_MS 500
#define QUORUM_HB_TIMEOUT_MAX_MS 60000
#define QUORUM_HB_TIMEOUT_DEFAULT_MS 10000

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

/* ---- messages ---- */

enum quorum_msg_type {
	QMSG_REQUEST_VOTE = 1,
	QMSG_VOTE,
	QMSG_HEARTBEAT,
	QMSG_RESIGNATION,
	QMSG_PRE_VOTE,
	QMSG_PRE_VOTE_REPLY,
	QMSG_HEARTBEAT_ACK,
	QMSG_TYPE_END, /* one past the last */
};

#define QMSG_F_GRANTED 0x01 /* PRE_VOTE_REPLY: the pre-vote is granted */

static inline bool quorum_msg_type_valid(unsigned type)
{
	return type >= QMSG_REQUEST_VOTE && type < QMSG_TYPE_END;
}

const char *quorum_msg_type_name(unsigned type);

/*
 * A message as the election sees it.  term is always the sender's current
 * term.  arg: PRE_VOTE and PRE_VOTE_REPLY carry the proposed term,
 * HEARTBEAT and HEARTBEAT_ACK the leader's monotonic send time (echoed).
 * timeout_ms: HEARTBEAT_ACK carries the follower's heartbeat timeout.
 */
struct quorum_msg {
	uint8_t type;
	uint8_t from;
	uint8_t to;     /* the destination slot: set by the sender per datagram */
	uint8_t flags;
	uint32_t timeout_ms;
	uint64_t term;
	uint64_t arg;
	uint64_t rid;   /* filled by the encoder / decoder */
	uint64_t seq;
};

/* Why the decoder rejected a message; each has a counter. */
#define QUORUM_INVALID_REASONS(X) \
	X(wrong_length)           \
	X(bad_version)            \
	X(bad_crc)                \
	X(bad_tag)                \
	X(other_fsid)             \
	X(unknown_type)           \
	X(bad_slot)               \
	X(from_self)              \
	X(wrong_dest)             \
	X(old_seq)

enum quorum_invalid {
#define X(n) QINV_##n,
	QUORUM_INVALID_REASONS(X)
#undef X
	QINV_NR,
};

const char *quorum_invalid_name(int reason);

#define QUORUM_MSG_WIRE_BYTES 88

/*
 * Encoder and decoder state of one member: the fsid, which slots exist,
 * the message authentication key (when the filesystem has it on), our
 * next sequence number, the greatest sequence number seen per sender, and
 * the rejection counters.
 */
struct quorum_codec {
	uint64_t fsid;
	int our_slot;
	uint16_t present_mask;
	bool auth;
	struct hmac_ctx mac;
	uint64_t rid;
	uint64_t tx_seq;
	uint64_t rx_seq[FUSEFS_QUORUM_MAX_SLOTS];
	uint64_t invalid[QINV_NR];
};

/* The range of sequence numbers one mount reserves (see seq_hwm in format.h). */
#define QUORUM_SEQ_RANGE ((uint64_t)1 << 40)

/*
 * Set up for the filesystem s, as slot our_slot, with our rid, and our
 * sequence numbers starting above seq_base (the block's seq_hwm).  0 or -errno.
 */
int quorum_codec_init(struct quorum_codec *c, const struct bd_super *s, int our_slot,
		      uint64_t rid, uint64_t seq_base);
void quorum_codec_free(struct quorum_codec *c);
/* Encode m (its rid and seq are set here) into buf of QUORUM_MSG_WIRE_BYTES. */
int quorum_msg_encode(struct quorum_codec *c, struct quorum_msg *m, void *buf, size_t len);
/*
 * Decode and validate len bytes.  Never reads outside buf.  0, or
 * -(QINV_* + 1) after bumping that reason's counter.
 */
int quorum_msg_decode(struct quorum_codec *c, const void *buf, size_t len, struct quorum_msg *m);

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
};

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
	X(persists)

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
	uint16_t vote_bits;      /* candidate: (pre-)votes received in this round */
	mono_ns deadline;        /* follower, candidate: start an election then */
	mono_ns retry_at;        /* candidate: ask again those who did not answer */
	int leader_slot;         /* the leader we hear from, -1: none */
	bool leader_same_term;   /* ... and it leads our own term (not a lower one) */
	mono_ns sticky_until;    /* heard a live leader: refuse (pre-)votes until */
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
	bool request_sent;       /* candidate: REQUEST_VOTE sent for term */
	bool vote_sent;          /* follower: VOTE sent for vote_for in term */

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
	QACT_PERSIST,      /* write our quorum block durably, then QIN_PERSIST_DONE */
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
	QNOTE_PERSIST_FAILED,     /* a: res */
	QNOTE_HB_TIMEOUT_SET,     /* a: ms */
};

const char *quorum_note_text(int note);

struct quorum_action {
	enum quorum_action_type type;
	int to;                        /* QACT_SEND: slot or QSEND_ALL */
	struct quorum_msg msg;         /* QACT_SEND */
	struct quorum_image image;     /* QACT_PERSIST: the fields to write */
	uint32_t events;               /* QACT_PERSIST: bit per event to stamp */
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

/* ---- fence selection ---- */

#define QUORUM_MAX_FENCE (2 * FUSEFS_QUORUM_MAX_SLOTS)

struct quorum_fence_target {
	int slot;
	uint64_t rid;
	uint64_t term;
	int event; /* FUSEFS_QEV_ELECT or FUSEFS_QEV_FENCE: the record found */
};

struct quorum_fence_plan {
	int count;
	struct quorum_fence_target target[QUORUM_MAX_FENCE];
	uint64_t fenced_term;     /* greatest FENCE term found */
	uint64_t superseded_term; /* an ELECT above ours was found (0: none) */
	int superseded_slot;
};

/*
 * From the quorum blocks of the present slots (blocks[i] valid where
 * present has bit i), and our term and rid: the earlier leaders to fence.
 * Candidates are elected leaders not yet stopped (ELECT above STOP) and
 * recorded servers older than a later election of their slot (FENCE above
 * STOP, below ELECT).  Skipped: terms below the greatest FENCE (already
 * fenced), terms above ours, and our own rid.  One target per rid.  When a
 * block shows an ELECT above our term, superseded_term says so: a newer
 * leader exists and ours must not serve.
 */
void quorum_fence_select(const struct bd_qblock *blocks, uint16_t present, uint64_t our_term,
			 uint64_t our_rid, struct quorum_fence_plan *plan);

/*
 * The current server per the blocks: the slot with the greatest ELECT term
 * that has not stopped, or -1.
 */
int quorum_find_leader(const struct bd_qblock *blocks, uint16_t present, uint64_t *term);

/* ---- the mount holding a slot, and local processes (holder.c) ---- */

struct quorum_holder {
	uint64_t pid;
	uint64_t start_ticks;  /* /proc/PID/stat field 22 */
	uint64_t pidns;        /* inode of /proc/self/ns/pid: pids mean this namespace's */
	uint8_t boot_id[FUSEFS_BOOT_ID_BYTES];
	char host[FUSEFS_HOSTNAME_BYTES];
};

/* Who we are: pid, process start time, boot id, host name.  0 or -errno. */
int quorum_holder_self(struct quorum_holder *h);
/* Does the process pid exist (not a zombie) and did it start at start_ticks? */
bool quorum_process_matches(uint64_t pid, uint64_t start_ticks);
/* Did the block's holder run on this host (same boot id and pid namespace)? */
bool quorum_holder_same_host(const struct bd_qblock *qb, const struct quorum_holder *self);
/* Is the block's holder a live process on this host? */
bool quorum_holder_alive_here(const struct bd_qblock *qb, const struct quorum_holder *self);
/*
 * May we take the slot whose block is qb: is its last mount not still
 * running on this host?  0, or -EBUSY with one line in why.
 */
int quorum_slot_check_free(const struct bd_qblock *qb, int slot, const struct quorum_holder *self,
			   char *why, size_t whylen);
/* The slot's last mount ended cleanly (END written after its BEGIN). */
bool quorum_block_ended(const struct bd_qblock *qb);

/* ---- fencing an earlier leader (fence_run.c) ---- */

struct quorum_fence_request {
	int slot;
	uint64_t rid;
	uint64_t term;
	struct bd_addr addr;   /* the slot's address */
	const char *reason;    /* "quorum_block_leader" */
	/* from the slot's quorum block, when the holder is the target */
	bool holder_known;
	struct quorum_holder holder;
	bool replaced;         /* the slot was remounted since: prev_holder_rid == rid */
};

struct quorum_fence_config {
	const char *fence_cmd;       /* NULL: the built-in local fencer */
	uint32_t timeout_ms;
	struct quorum_holder self;   /* to recognise this host */
};

/*
 * Fence one earlier leader.  With fence_cmd, run it with FUSEFS_FENCE_* (and
 * SCOUTFS_FENCED_REQ_*) in its environment, log its output, and take exit 0
 * as fenced.  Without, fence a leader of this host by killing its process
 * (after checking its start time) and waiting until it is gone.  Gives up
 * at the deadline, or when abort_fd (an eventfd, -1 for none) becomes
 * readable.  0 when fenced, else -errno with the reason in why.
 */
int quorum_fence_run(const struct quorum_fence_request *req, const struct quorum_fence_config *cfg,
		     int abort_fd, char *why, size_t whylen);

/* ---- the quorum agent (agent.c): the election in a mount ---- */

/* Agent counters, beyond the election's own and the codec's rejections. */
#define QUORUM_AGENT_COUNTERS(X)   \
	X(send_request_vote)        \
	X(send_vote)                \
	X(send_heartbeat)           \
	X(send_resignation)         \
	X(send_pre_vote)            \
	X(send_pre_vote_reply)      \
	X(send_heartbeat_ack)       \
	X(recv_request_vote)        \
	X(recv_vote)                \
	X(recv_heartbeat)           \
	X(recv_resignation)         \
	X(recv_pre_vote)            \
	X(recv_pre_vote_reply)      \
	X(recv_heartbeat_ack)       \
	X(recv_invalid)             \
	X(recv_error)               \
	X(send_error)               \
	X(heartbeat_sends_dropped)  \
	X(send_pool_exhausted)      \
	X(block_writes)             \
	X(block_write_errors)       \
	X(steps)                    \
	X(fences_started)           \
	X(fences_succeeded)         \
	X(fences_failed)

enum quorum_agent_counter {
#define X(n) QCTR_##n,
	QUORUM_AGENT_COUNTERS(X)
#undef X
	QCTR_NR,
};

struct quorum_last_msg {
	uint8_t type;
	uint64_t term;
	mono_ns at;
};

#define QUORUM_HB_DELAY_NR (QUORUM_HB_TIMEOUT_MAX_MS / 1000)

/* Everything the status xattrs show, copied under a lock after each step. */
struct quorum_snapshot {
	bool member;
	int slot;
	uint64_t rid;
	mono_ns taken;
	struct quorum_state st;
	bool failed;
	int fail_res;
	struct quorum_last_msg last_send[FUSEFS_QUORUM_MAX_SLOTS];
	struct quorum_last_msg last_recv[FUSEFS_QUORUM_MAX_SLOTS];
	uint64_t hb_delay_count[QUORUM_HB_DELAY_NR];
	mono_ns hb_delay_recent[QUORUM_HB_DELAY_NR];
	int hb_delay_max;
	uint64_t ctr[QCTR_NR];
	uint64_t invalid[QINV_NR];
};

struct quorum_agent;

/*
 * How the agent drives the server, which runs on its own thread.  Called
 * on the quorum thread: they must not block.  The server reports back to
 * the agent it is given.
 */
struct quorum_server_ops {
	void (*start)(void *arg, struct quorum_agent *a, uint64_t term);
	void (*serve)(void *arg, struct quorum_agent *a, uint64_t term);
	void (*stop)(void *arg, struct quorum_agent *a, uint64_t term);
	void *arg;
};

struct quorum_agent_config {
	struct bd_dev *dev;
	const struct bd_super *super;
	int slot;
	uint64_t rid;
	uint32_t hb_timeout_ms;
	int udp_fd;                   /* bound to the slot's address; the agent owns it */
	struct quorum_holder self;
	struct quorum_server_ops server;
};

/*
 * Bind the slot's UDP address: 0 and the socket, or -errno with why.  Done
 * first, so a mount that cannot bind fails before anything is written.
 */
int quorum_bind_slot(const struct bd_super *s, int slot, int *fd, char *why, size_t whylen);
/*
 * Check the slot is ours to take (its holder is not alive on this host),
 * start the quorum thread and wait until BEGIN is durable.  0 or -errno
 * with one line in why.
 */
int quorum_agent_start(const struct quorum_agent_config *cfg, struct quorum_agent **out,
		       char *why, size_t whylen);
/* Unmount: stop the server, resign, write STOP and END, end the thread. */
void quorum_agent_shutdown(struct quorum_agent *a, int timeout_ms);
void quorum_agent_free(struct quorum_agent *a);
/* From the server thread. */
void quorum_agent_server_fenced(struct quorum_agent *a, uint64_t term);
void quorum_agent_server_down(struct quorum_agent *a, uint64_t term, int res);
/* 0, or -EINVAL out of range (the old value stays).  Never lost. */
int quorum_agent_set_hb_timeout(struct quorum_agent *a, uint32_t ms);
uint32_t quorum_agent_hb_timeout(struct quorum_agent *a);
void quorum_agent_snapshot(struct quorum_agent *a, struct quorum_snapshot *snap);
/* Count something the server did (fences). */
void quorum_agent_count(struct quorum_agent *a, enum quorum_agent_counter c);
/* May our server answer clients right now (leader of term, lease valid)? */
bool quorum_agent_may_serve(struct quorum_agent *a, uint64_t term);

/* ---- status text (status.c) ---- */

/* The seed's status file text, plus our lease and server lines. */
int quorum_status_text(const struct quorum_snapshot *snap, mono_ns now, char *buf, size_t len);
int quorum_status_json(const struct quorum_snapshot *snap, mono_ns now, char *buf, size_t len);
int quorum_counters_text(const struct quorum_snapshot *snap, char *buf, size_t len);

#endif
