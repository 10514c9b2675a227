/*
 * calls.h - a mount's calls in flight, by slot: each call's life and its
 * request id, the rules that make a resend safe.  Pure: no locks, no I/O.
 * client.c keeps one under its lock, with its waiters beside it; the
 * whole-system simulator (tests/wsim_main.c) runs the same table for its
 * clients.
 *
 *   FREE --take--> WAITING --sent--> SENT --reply--> DONE --taken--> FREE
 *                   ^  |                 |  \--its deadline passed--> ABANDONED --reply, or lost--> FREE
 *                   |  +--no server within its deadline--> FREE
 *                   +-------connection lost: sent again, same id-------+
 *   DONE --taken by a caller that holds it--> HELD --its end--> FREE
 *
 * The rules: a call keeps its request id for its whole life, so a resend
 * after a lost connection or a failover is known to the server (its
 * replies table answers it, docs/failover.md); every request carries the
 * oldest id still waiting for a reply, below which the server may forget
 * its kept replies; and a reply counts only for the call that sent it, on
 * the connection it went out on.
 */
#ifndef FUSEFS_FUSE_CALLS_H
#define FUSEFS_FUSE_CALLS_H

#include <stdint.h>

#include "server/limits.h"

#define CALLS_MAX RPC_CLIENT_INFLIGHT_MAX
_Static_assert((CALLS_MAX & (CALLS_MAX - 1)) == 0, "a request id's low bits name its slot");

enum call_state { CALL_FREE, CALL_WAITING, CALL_SENT, CALL_DONE, CALL_ABANDONED, CALL_HELD,
		  CALL_STATE_NR };

struct call_slot {
	enum call_state state;
	uint64_t req_id;
	uint64_t gen;                /* the connection it went out on */
};

struct calls {
	struct call_slot slot[CALLS_MAX];
	uint32_t nfree;
	uint64_t seq;
};

/* Every slot free. */
void calls_init(struct calls *t);
/* A free slot made WAITING, with a new request id whose low bits name it: its index, or -1. */
int calls_take(struct calls *t);
/* Move slot i along its life; an edge the diagram above lacks is a bug (asserted). */
void calls_set(struct calls *t, uint32_t i, enum call_state to);
/* Slot i goes out on connection gen (WAITING -> SENT): the oldest id its request carries. */
uint64_t calls_sent(struct calls *t, uint32_t i, uint64_t gen);
/* The oldest request id a call still waits for, or below when none is older. */
uint64_t calls_oldest(const struct calls *t, uint64_t below);
/* The slot a reply for req_id on connection gen is for (SENT or ABANDONED), or -1. */
int calls_for_reply(const struct calls *t, uint64_t req_id, uint64_t gen);
/*
 * Connection gen was lost: what slot i becomes (its own state when the
 * loss is not its business): a SENT call WAITING, to go again with its id;
 * an ABANDONED one FREE.
 */
enum call_state calls_after_loss(const struct calls *t, uint32_t i, uint64_t gen);

#endif
