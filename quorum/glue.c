/*
 * glue.c - the election's persist actions into quorum blocks, and quorum
 * blocks into the election's start input.  Pure (see glue.h); the agent
 * and the simulator both call it, so they write identical blocks.
 *
 * Message sequence numbers (docs/quorum.md, "Messages"): each block keeps
 * seq_hwm, the sequence numbers its slot may have used.  A mount starts its
 * numbers at the seq_hwm it read, its BEGIN raises seq_hwm by
 * QUORUM_SEQ_RANGE, and whenever half of what is reserved is used it
 * reserves another range with its next write; nothing is numbered above
 * what is durable.  So the next mount starts above anything this one can
 * have sent, whatever the wall clock does.  Only a block rebuilt by the
 * repair has lost its seq_hwm: it takes the wall clock's nanoseconds since
 * the epoch, which the slot's numbers never overtake (they rise by one per
 * message, and by QUORUM_SEQ_RANGE at most per mount).
 */
#include "quorum/glue.h"

#include "quorum/fence.h"
#include "quorum/msg.h"

#include <errno.h>

#define EV_BIT(ev) (1u << (ev))

void quorum_glue_init(struct quorum_glue *g, int slot, uint64_t rid,
		      const struct quorum_holder *self)
{
	memset(g, 0, sizeof(*g));
	g->slot = slot;
	g->rid = rid;
	g->self = *self;
	g->seq_range = QUORUM_SEQ_RANGE;
}

bool quorum_block_ended(const struct bd_qblock *qb)
{
	return qb->ev[FUSEFS_QEV_END].write_nr >= qb->ev[FUSEFS_QEV_BEGIN].write_nr;
}

bool quorum_holder_same_host(const struct bd_qblock *qb, const struct quorum_holder *self)
{
	return qb->holder_pid != 0 &&
	       memcmp(qb->holder_boot_id, self->boot_id, FUSEFS_BOOT_ID_BYTES) == 0 &&
	       qb->holder_pidns == self->pidns;
}

static bool slot_in(uint16_t mask, int slot)
{
	return bd_slot_nr_valid(slot) && (mask & (1u << slot)) != 0;
}

/* What the election controls of a block, as the election sees it. */
static void image_of(const struct bd_qblock *qb, struct quorum_image *img)
{
	memset(img, 0, sizeof(*img));
	img->term = qb->ev[FUSEFS_QEV_TERM].term;
	img->vote_term = qb->vote_term;
	img->vote_slot = qb->vote_slot;
	img->hb_ms = qb->hb_timeout_ms;
	for (int e = 0; e < FUSEFS_QEV_NR; e++)
		img->ev_term[e] = qb->ev[e].term;
}

int quorum_glue_start(struct quorum_glue *g, const struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS],
		      uint16_t readable, struct quorum_input *in)
{
	const struct bd_qblock *own = &blocks[g->slot];
	uint64_t leader_term;

	if (!slot_in(readable, g->slot))
		return -EIO;

	g->begin_rid_seen = own->ev[FUSEFS_QEV_BEGIN].rid;
	g->seq_base = own->seq_hwm;
	g->prev_holder_rid = 0;
	g->prev_holder_elsewhere = false;
	if (own->holder_rid != 0) {
		/* gone for sure when it ended, or when it ran here (the caller checked it is dead) */
		if (quorum_block_ended(own) || quorum_holder_same_host(own, &g->self))
			g->prev_holder_rid = own->holder_rid;
		else
			g->prev_holder_elsewhere = true;
	}

	memset(in, 0, sizeof(*in));
	in->type = QIN_START;
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if (slot_in(readable, i))
			in->start.greatest_term = MAX(in->start.greatest_term,
						      bd_qblock_greatest_term(&blocks[i]));
	image_of(own, &in->start.own);
	g->mem = *own;
	g->have_mem = true;
	in->start.prev_unclean = !quorum_block_ended(own);
	in->start.leader_recorded = quorum_find_leader(blocks, readable, &leader_term) >= 0;
	return 0;
}

uint64_t quorum_glue_expected_begin_rid(const struct quorum_glue *g,
					const struct quorum_action *act)
{
	/* our BEGIN replaces the one we saw at start; after it, the block is ours */
	return (act->events & EV_BIT(FUSEFS_QEV_BEGIN)) ? g->begin_rid_seen : g->rid;
}

int quorum_glue_persist(const struct quorum_glue *g, const struct quorum_action *act,
			uint64_t ts_sec, uint32_t ts_nsec, bool readable, struct bd_qblock *qb)
{
	const struct quorum_image *img = &act->image;
	int result = QGLUE_WRITE;

	if (!readable) {
		if (!g->have_mem)
			return -EIO;
		*qb = g->mem; /* rule: rebuilt whole from what we hold */
		result = QGLUE_REPAIR;
	}
	/* one mount per slot: nobody else may have begun on it since we did (a BEGIN of
	 * ours whose write we took for failed may have landed after all) */
	if (qb->ev[FUSEFS_QEV_BEGIN].rid != quorum_glue_expected_begin_rid(g, act) &&
	    qb->ev[FUSEFS_QEV_BEGIN].rid != g->rid)
		return -EEXIST;
	if (act->check && result == QGLUE_WRITE && g->have_mem && qb->seq == g->mem.seq &&
	    qb->write_nr == g->mem.write_nr && g->seq_wanted <= qb->seq_hwm)
		return QGLUE_UNCHANGED;

	for (int ev = 0; ev < FUSEFS_QEV_NR; ev++) {
		if (!(act->events & EV_BIT(ev)))
			continue;
		bd_qblock_set_event(qb, ev, g->rid,
				    ev == FUSEFS_QEV_TERM ? img->term : img->ev_term[ev], ts_sec, ts_nsec);
	}
	qb->vote_term = img->vote_term;
	qb->vote_slot = img->vote_slot;
	qb->hb_timeout_ms = img->hb_ms;
	if (act->events & EV_BIT(FUSEFS_QEV_BEGIN)) {
		qb->holder_rid = g->rid;
		qb->holder_pid = g->self.pid;
		qb->holder_start_ticks = g->self.start_ticks;
		memcpy(qb->holder_boot_id, g->self.boot_id, sizeof(qb->holder_boot_id));
		memcpy(qb->holder_host, g->self.host, sizeof(qb->holder_host));
		qb->holder_pidns = g->self.pidns;
		qb->prev_holder_rid = g->prev_holder_rid;
		qb->seq_hwm = g->seq_base + g->seq_range; /* our first range is taken */
	}
	if (qb->ev[FUSEFS_QEV_BEGIN].rid == g->rid || (act->events & EV_BIT(FUSEFS_QEV_BEGIN)))
		qb->seq_hwm = MAX(qb->seq_hwm, g->seq_wanted); /* and more, once begun */
	qb->seq++;
	return result;
}

void quorum_glue_written(struct quorum_glue *g, const struct bd_qblock *qb)
{
	g->mem = *qb;
	g->have_mem = true;
	if (qb->ev[FUSEFS_QEV_BEGIN].rid == g->rid)
		g->seq_reserved = MAX(g->seq_reserved, qb->seq_hwm);
}

bool quorum_glue_seq_low(struct quorum_glue *g, uint64_t tx_seq)
{
	if (g->seq_reserved == 0 || tx_seq + g->seq_range / 2 <= g->seq_reserved ||
	    g->seq_wanted > g->seq_reserved)
		return false; /* not begun, plenty left, or asked for already */
	g->seq_wanted = MAX(g->seq_reserved, tx_seq) + g->seq_range;
	return true;
}

int quorum_glue_rebuild(const struct quorum_glue *g,
			const struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS], uint16_t readable,
			uint16_t present, uint32_t max_promise_ms, uint64_t wall_ns,
			struct bd_qblock *out)
{
	uint64_t greatest = 0, hwm = wall_ns;
	uint64_t ts_sec = wall_ns / (uint64_t)NSEC_PER_SEC;
	uint32_t ts_nsec = (uint32_t)(wall_ns % (uint64_t)NSEC_PER_SEC);

	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		if (!slot_in(present, i) || i == g->slot)
			continue;
		if (!slot_in(readable, i))
			return -ENODATA;
		greatest = MAX(greatest, bd_qblock_greatest_term(&blocks[i]));
		hwm = MAX(hwm, blocks[i].seq_hwm);
	}
	memset(out, 0, sizeof(*out));
	/* BEGIN without END: the mount that follows keeps the promise below */
	bd_qblock_set_event(out, FUSEFS_QEV_BEGIN, g->rid, greatest, ts_sec, ts_nsec);
	bd_qblock_set_event(out, FUSEFS_QEV_TERM, g->rid, greatest, ts_sec, ts_nsec);
	out->vote_term = greatest;
	out->vote_slot = g->slot; /* our vote in the greatest term is spent */
	out->hb_timeout_ms = max_promise_ms;
	out->seq_hwm = hwm;
	out->seq = 1;
	return 0;
}
