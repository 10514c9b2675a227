/*
 * fence_select.c - which earlier leaders a new server must fence, from the
 * quorum blocks alone.  Pure: the caller reads the blocks.
 *
 * The rules are scoutfs's (quorum.c, scoutfs_quorum_fence_leaders):
 *  - a slot whose ELECT term is above its STOP term has an elected leader
 *    that may still be running;
 *  - a slot whose FENCE term is above its STOP term but below its ELECT
 *    term records an earlier server of that slot that never stopped,
 *    before the slot was elected again;
 *  - the greatest FENCE term anywhere says every leader before it was
 *    fenced by that server, so terms below it are skipped;
 *  - terms above ours are newer than us, and our own rid is us: skipped.
 * Added here: one target per rid (the same mount can appear as both
 * records), and a newer ELECT than ours is reported as superseded, because
 * a server that is no longer the newest leader must not serve at all; and
 * every block that cannot be read is a target by slot (a possible earlier
 * leader: quorum_fence_add_unreadable).
 */
#include "quorum/fence.h"


static void plan_add(struct quorum_fence_plan *plan, int slot, const struct bd_qevent *ev,
		     int event)
{
	for (int i = 0; i < plan->count; i++) {
		if (plan->target[i].rid == ev->rid) {
			if (ev->term > plan->target[i].term) {
				plan->target[i].term = ev->term;
				plan->target[i].slot = slot;
				plan->target[i].event = event;
			}
			return;
		}
	}
	if (plan->count < QUORUM_MAX_FENCE) {
		plan->target[plan->count] = (struct quorum_fence_target){
			.slot = slot, .rid = ev->rid, .term = ev->term, .event = event,
		};
		plan->count++;
	}
}

static bool present_slot(uint16_t present, int i)
{
	return bd_slot_nr_valid(i) && (present & (1u << i));
}

void quorum_fence_select(const struct bd_qblock *blocks, uint16_t present, uint64_t our_term,
			 uint64_t our_rid, struct quorum_fence_plan *plan)
{
	struct {
		int slot;
		const struct bd_qevent *ev;
		int event;
	} cand[QUORUM_MAX_FENCE];
	int ncand = 0;

	memset(plan, 0, sizeof(*plan));
	plan->superseded_slot = -1;

	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		const struct bd_qblock *b = &blocks[i];
		const struct bd_qevent *elect = &b->ev[FUSEFS_QEV_ELECT];
		const struct bd_qevent *fence = &b->ev[FUSEFS_QEV_FENCE];
		const struct bd_qevent *stop = &b->ev[FUSEFS_QEV_STOP];

		if (!present_slot(present, i))
			continue;
		if (elect->term > stop->term)
			cand[ncand++] = (typeof(cand[0])){ i, elect, FUSEFS_QEV_ELECT };
		if (fence->term > stop->term && fence->term < elect->term)
			cand[ncand++] = (typeof(cand[0])){ i, fence, FUSEFS_QEV_FENCE };
		plan->fenced_term = MAX(plan->fenced_term, fence->term);
		if (elect->term > our_term && elect->term > plan->superseded_term) {
			plan->superseded_term = elect->term;
			plan->superseded_slot = i;
		}
	}

	for (int c = 0; c < ncand; c++) {
		const struct bd_qevent *ev = cand[c].ev;

		if (ev->term == 0 || ev->rid == 0 || /* never written */
		    ev->term < plan->fenced_term ||  /* fenced by a later server */
		    ev->term > our_term ||           /* newer than us */
		    ev->rid == our_rid)              /* us */
			continue;
		plan_add(plan, cand[c].slot, ev, cand[c].event);
	}
}

void quorum_fence_add_unreadable(struct quorum_fence_plan *plan, uint16_t unreadable,
				 int our_slot)
{
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		if (!present_slot(unreadable, i) || i == our_slot || plan->count >= QUORUM_MAX_FENCE)
			continue;
		plan->target[plan->count++] = (struct quorum_fence_target){
			.slot = i, .rid = 0, .term = 0, .event = QUORUM_FENCE_UNREADABLE,
		};
	}
}

int quorum_find_leader(const struct bd_qblock *blocks, uint16_t present, uint64_t *term)
{
	int leader = -1;

	*term = 0;
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		const struct bd_qblock *b = &blocks[i];

		if (!present_slot(present, i))
			continue;
		if (b->ev[FUSEFS_QEV_ELECT].term > *term &&
		    b->ev[FUSEFS_QEV_ELECT].term > b->ev[FUSEFS_QEV_STOP].term) {
			*term = b->ev[FUSEFS_QEV_ELECT].term;
			leader = i;
		}
	}
	return leader;
}
