/*
 * fence.h - which earlier leaders a new server must fence, and which
 * server the blocks name: pure functions of the quorum blocks.
 */
#ifndef FUSEFS_QUORUM_FENCE_H
#define FUSEFS_QUORUM_FENCE_H

#include <stdint.h>

#include "blockdev/format.h"

/* ---- fence selection ---- */

#define QUORUM_MAX_FENCE (2 * FUSEFS_QUORUM_MAX_SLOTS)

struct quorum_fence_target {
	int slot;
	uint64_t rid;
	uint64_t term;
	int event; /* FUSEFS_QEV_ELECT or FUSEFS_QEV_FENCE: the record found;
		    * QUORUM_FENCE_UNREADABLE: the block could not be read (rid, term 0) */
};

#define QUORUM_FENCE_UNREADABLE FUSEFS_QEV_NR

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
 * Add a target for every slot in unreadable but ours: a block that cannot
 * be read or fails verification may record a leader that still runs, so
 * it is fenced as one (by slot; its rid and term are unknown).  The
 * selection above cannot see such a slot's ELECT, so it cannot say either
 * whether that leader is newer than us: fencing it is what keeps the rule
 * "nothing serves before every possible earlier leader is fenced".
 */
void quorum_fence_add_unreadable(struct quorum_fence_plan *plan, uint16_t unreadable,
				 int our_slot);

/*
 * The current server per the blocks: the slot with the greatest ELECT term
 * that has not stopped, or -1.
 */
int quorum_find_leader(const struct bd_qblock *blocks, uint16_t present, uint64_t *term);

#endif
