/*
 * agent.h - the quorum agent: one thread with its own io_uring that drives
 * the election in a mount (UDP messages, timers, our quorum block), and the
 * snapshot of its state the status xattrs show.
 */
#ifndef FUSEFS_QUORUM_AGENT_H
#define FUSEFS_QUORUM_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"
#include "quorum/election.h"
#include "quorum/holder.h"
#include "quorum/msg.h"

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
	X(block_reads)              \
	X(block_writes)             \
	X(block_io_errors)          \
	X(block_io_timeouts)        \
	X(block_repairs)            \
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
	bool repair;                  /* rebuild our block if it fails verification (quorum_repair) */
};

/*
 * Bind the slot's UDP address: 0 and the socket, or -errno with why.  Done
 * first, so a mount that cannot bind fails before anything is written.
 */
int quorum_bind_slot(const struct bd_super *s, int slot, int *fd, char *why, size_t whylen);
/*
 * Check the slot is ours to take (its holder is not alive on this host),
 * start the quorum thread and wait until BEGIN is durable (a device that
 * fails meanwhile is retried for up to 30 s).  Our own block failing
 * verification is -EBADMSG with the repair named in why, unless
 * cfg->repair asks for it.  0 or -errno with one line in why.
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

#endif
