/*
 * fence.h - fencing one earlier leader, or a mount that vanished holding
 * locks: a fence command, or the built-in local fencer.  Its only caller
 * is the server lifecycle (server.c).
 */
#ifndef FUSEFS_SERVER_FENCE_H
#define FUSEFS_SERVER_FENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/format.h"
#include "quorum/holder.h"

/* ---- fencing an earlier leader (fence_run.c) ---- */

struct quorum_fence_request {
	int slot;              /* -1: a plain client mount */
	uint64_t rid;
	uint64_t term;
	struct bd_addr addr;   /* the slot's address */
	const char *reason;    /* "quorum_block_leader", "quorum_block_unreadable" or "client" */
	const char *detail;    /* unreadable: which check failed, for the agent; or NULL */
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
 * (after checking its start time) and waiting until it is gone.  A slot
 * whose block is unreadable names no process: the local fencer then finds
 * the process holding the slot's UDP address on this host (in our network
 * namespace), and takes an address of this host that nobody holds as a
 * slot with no running member.  Gives up
 * at the deadline, or when abort_fd (an eventfd, -1 for none) becomes
 * readable.  0 when fenced, else -errno with the reason in why.
 */
int quorum_fence_run(const struct quorum_fence_request *req, const struct quorum_fence_config *cfg,
		     int abort_fd, char *why, size_t whylen);

#endif
