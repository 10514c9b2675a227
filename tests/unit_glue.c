/*
 * unit_glue.c - the glue between the election and the quorum blocks
 * (quorum/glue.c): the start input from the blocks, the block written for
 * each persist, the one-mount-per-slot check, and the reservation of
 * message sequence numbers that makes a remounted member's numbers rise.
 */
#include "tests/unit.h"

#include "blockdev/codec.h"
#include "quorum/election.h"
#include "quorum/glue.h"
#include "quorum/msg.h"

#include <errno.h>
#include <stdio.h>

static struct bd_qblock blk[FUSEFS_QUORUM_MAX_SLOTS];

static void reset(void)
{
	memset(blk, 0, sizeof(blk));
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		blk[i].vote_slot = -1;
}

static struct quorum_holder holder(uint8_t host, uint64_t pid)
{
	struct quorum_holder h = { .pid = pid, .start_ticks = 77, .pidns = 4026531836ull };

	h.boot_id[0] = host;
	snprintf(h.host, sizeof(h.host), "host%u", host);
	return h;
}

static struct quorum_action persist_act(uint32_t events, uint64_t term)
{
	struct quorum_action a = { .type = QACT_PERSIST, .events = events };

	a.image.term = term;
	a.image.vote_slot = -1;
	for (int e = 0; e < FUSEFS_QEV_NR; e++)
		a.image.ev_term[e] = term;
	a.image.hb_ms = 2000;
	return a;
}

#define EVB(e) (1u << (e))

START_TEST(start_input_from_blocks)
{
	struct quorum_holder me = holder(1, 100);
	struct quorum_glue g;
	struct quorum_input in;

	reset();
	/* our slot 1: term 6, voted for 2 in 6, promised 3000 ms, mounted and not ended */
	bd_qblock_set_event(&blk[1], FUSEFS_QEV_BEGIN, 0xb1, 4, 1, 0);
	bd_qblock_set_event(&blk[1], FUSEFS_QEV_TERM, 0xb1, 6, 1, 0);
	blk[1].vote_term = 6;
	blk[1].vote_slot = 2;
	blk[1].hb_timeout_ms = 3000;
	blk[1].seq_hwm = 5ull << 40;
	blk[1].holder_rid = 0xb1;
	blk[1].holder_pid = 55;
	blk[1].holder_boot_id[0] = 1; /* this host */
	blk[1].holder_pidns = me.pidns;
	/* slot 0 leads in term 8; slot 2 is unreadable and would say 20 */
	bd_qblock_set_event(&blk[0], FUSEFS_QEV_ELECT, 0xa0, 8, 1, 0);
	bd_qblock_set_event(&blk[2], FUSEFS_QEV_TERM, 0xc0, 20, 1, 0);

	quorum_glue_init(&g, 1, 0xbeef, &me);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x3, &in), 0);
	ck_assert_int_eq(in.type, QIN_START);
	ck_assert_uint_eq(in.start.greatest_term, 8);
	ck_assert_uint_eq(in.start.own.term, 6);
	ck_assert_uint_eq(in.start.own.vote_term, 6);
	ck_assert_int_eq(in.start.own.vote_slot, 2);
	ck_assert_uint_eq(in.start.own.hb_ms, 3000);
	ck_assert_uint_eq(in.start.own.ev_term[FUSEFS_QEV_BEGIN], 4);
	ck_assert(in.start.prev_unclean);
	ck_assert(in.start.leader_recorded);
	ck_assert_uint_eq(g.seq_base, 5ull << 40);
	ck_assert_uint_eq(g.begin_rid_seen, 0xb1);
	ck_assert_uint_eq(g.prev_holder_rid, 0xb1); /* it ran here, and is gone */
	ck_assert(!g.prev_holder_elsewhere);

	/* the same block from another host, unclean: not known to be gone */
	blk[1].holder_boot_id[0] = 9;
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x3, &in), 0);
	ck_assert_uint_eq(g.prev_holder_rid, 0);
	ck_assert(g.prev_holder_elsewhere);
	/* ... but once it ended cleanly it is gone wherever it ran */
	bd_qblock_set_event(&blk[1], FUSEFS_QEV_END, 0xb1, 6, 1, 0);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x3, &in), 0);
	ck_assert(!in.start.prev_unclean);
	ck_assert_uint_eq(g.prev_holder_rid, 0xb1);

	/* with no leader recorded, and our own block unreadable */
	bd_qblock_set_event(&blk[0], FUSEFS_QEV_STOP, 0xa0, 8, 1, 0);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x3, &in), 0);
	ck_assert(!in.start.leader_recorded);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x1, &in), -EIO);
}
END_TEST

START_TEST(persist_stamps_what_was_asked)
{
	struct quorum_holder me = holder(1, 100);
	struct quorum_glue g;
	struct quorum_input in;
	struct quorum_action a;
	struct bd_qblock qb;

	reset();
	quorum_glue_init(&g, 0, 0xaa, &me);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x7, &in), 0);
	qb = blk[0];
	a = persist_act(EVB(FUSEFS_QEV_BEGIN) | EVB(FUSEFS_QEV_TERM), 3);
	a.image.vote_term = 3;
	a.image.vote_slot = 2;
	a.image.hb_ms = 4000;
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1700000000, 5, true, &qb), 0);
	ck_assert_uint_eq(qb.seq, 1);
	ck_assert_uint_eq(qb.write_nr, 2);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_BEGIN].rid, 0xaa);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_BEGIN].ts_sec, 1700000000);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_BEGIN].ts_nsec, 5);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_TERM].term, 3);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_ELECT].rid, 0); /* not asked for */
	ck_assert_uint_eq(qb.vote_term, 3);
	ck_assert_int_eq(qb.vote_slot, 2);
	ck_assert_uint_eq(qb.hb_timeout_ms, 4000);
	ck_assert_uint_eq(qb.holder_rid, 0xaa);
	ck_assert_uint_eq(qb.holder_pid, 100);
	ck_assert_str_eq(qb.holder_host, "host1");
	ck_assert(!quorum_block_ended(&qb));

	/* ELECT then STOP, each in its own write; END ends the mount */
	a = persist_act(EVB(FUSEFS_QEV_ELECT), 4);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1700000001, 0, true, &qb), 0);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_ELECT].term, 4);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_ELECT].write_nr, 3);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_TERM].term, 3); /* untouched */
	a = persist_act(EVB(FUSEFS_QEV_STOP) | EVB(FUSEFS_QEV_END), 4);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1700000002, 0, true, &qb), 0);
	ck_assert(quorum_block_ended(&qb));
	ck_assert_uint_eq(qb.seq, 3);
}
END_TEST

/* One mount per slot: a BEGIN by anyone else since ours stops every write. */
START_TEST(persist_refuses_another_mounts_block)
{
	struct quorum_holder me = holder(1, 100);
	struct quorum_glue g;
	struct quorum_input in;
	struct quorum_action a;
	struct bd_qblock qb, before;

	reset();
	bd_qblock_set_event(&blk[0], FUSEFS_QEV_BEGIN, 0x11, 1, 1, 0);
	quorum_glue_init(&g, 0, 0xaa, &me);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x7, &in), 0);
	/* our BEGIN replaces the one seen at start */
	qb = blk[0];
	a = persist_act(EVB(FUSEFS_QEV_BEGIN), 1);
	ck_assert_uint_eq(quorum_glue_expected_begin_rid(&g, &a), 0x11);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1, 0, true, &qb), 0);
	/* after it, the block must stay ours */
	a = persist_act(EVB(FUSEFS_QEV_TERM), 2);
	ck_assert_uint_eq(quorum_glue_expected_begin_rid(&g, &a), 0xaa);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 2, 0, true, &qb), 0);
	bd_qblock_set_event(&qb, FUSEFS_QEV_BEGIN, 0x22, 2, 3, 0); /* someone else mounted */
	before = qb;
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 4, 0, true, &qb), -EEXIST);
	ck_assert_mem_eq(&qb, &before, sizeof(qb));
	/* a second BEGIN of ours over someone else's is refused too */
	a = persist_act(EVB(FUSEFS_QEV_BEGIN), 2);
	g.begin_rid_seen = 0x11;
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 4, 0, true, &qb), -EEXIST);
}
END_TEST

/*
 * Message sequence numbers come from the disk: a mount's BEGIN reserves
 * a range above the one it started from, and the next mount of the slot
 * starts above it, so its messages are never taken for replays.
 */
START_TEST(sequence_numbers_rise_across_remounts)
{
	struct quorum_holder me = holder(1, 100);
	struct quorum_codec tx1, tx2, rx;
	struct bd_super sb;
	struct quorum_glue g;
	struct quorum_input in;
	struct quorum_action a;
	struct quorum_msg m, got;
	uint8_t buf[QUORUM_MSG_WIRE_BYTES];

	memset(&sb, 0, sizeof(sb));
	sb.fsid = 0x1234;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(bd_addr_parse("127.0.0.1", (uint16_t)(7100 + i), &sb.slots[i]), 0);
	reset();
	blk[0].seq_hwm = 1000;

	/* first mount of slot 0 */
	quorum_glue_init(&g, 0, 0xaa, &me);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x7, &in), 0);
	ck_assert_uint_eq(g.seq_base, 1000);
	a = persist_act(EVB(FUSEFS_QEV_BEGIN), 1);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1, 0, true, &blk[0]), 0);
	ck_assert_uint_eq(blk[0].seq_hwm, 1000 + QUORUM_SEQ_RANGE);
	/* later writes of this mount leave the reservation alone */
	a = persist_act(EVB(FUSEFS_QEV_TERM), 2);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1, 0, true, &blk[0]), 0);
	ck_assert_uint_eq(blk[0].seq_hwm, 1000 + QUORUM_SEQ_RANGE);

	ck_assert_int_eq(quorum_codec_init(&tx1, &sb, 0, 0xaa, g.seq_base), 0);
	ck_assert_int_eq(quorum_codec_init(&rx, &sb, 1, 0xbb, 0), 0);
	memset(&m, 0, sizeof(m));
	m.type = QMSG_HEARTBEAT;
	m.from = 0;
	m.to = 1;
	m.term = 2;
	for (int i = 0; i < 50; i++) {
		ck_assert_int_gt(quorum_msg_encode(&tx1, &m, buf, sizeof(buf)), 0);
		ck_assert_int_eq(quorum_msg_decode(&rx, buf, sizeof(buf), &got), 0);
	}
	ck_assert_uint_gt(got.seq, 1000);

	/* the slot is mounted again (after a crash: no END): its numbers start above */
	quorum_glue_init(&g, 0, 0xcc, &me);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x7, &in), 0);
	ck_assert_uint_eq(g.seq_base, 1000 + QUORUM_SEQ_RANGE);
	ck_assert_int_eq(quorum_codec_init(&tx2, &sb, 0, 0xcc, g.seq_base), 0);
	ck_assert_int_gt(quorum_msg_encode(&tx2, &m, buf, sizeof(buf)), 0);
	ck_assert_int_eq(quorum_msg_decode(&rx, buf, sizeof(buf), &got), 0);
	ck_assert_uint_gt(got.seq, 1000 + QUORUM_SEQ_RANGE);
	ck_assert_uint_eq(rx.invalid[QINV_old_seq], 0);
	a = persist_act(EVB(FUSEFS_QEV_BEGIN), 2);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1, 0, true, &blk[0]), 0);
	ck_assert_uint_eq(blk[0].seq_hwm, 1000 + 2 * QUORUM_SEQ_RANGE);
	quorum_codec_free(&tx1);
	quorum_codec_free(&tx2);
	quorum_codec_free(&rx);
}
END_TEST

/*
 * Repair from memory: a block that reads back bad is rebuilt from our copy
 * of what we last wrote; a check of a block as we left it writes nothing.
 */
START_TEST(repair_from_memory_and_checks)
{
	struct quorum_holder me = holder(1, 100);
	struct quorum_glue g;
	struct quorum_input in;
	struct quorum_action a;
	struct bd_qblock qb, garbage;

	reset();
	quorum_glue_init(&g, 0, 0xaa, &me);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x7, &in), 0);
	qb = blk[0];
	a = persist_act(EVB(FUSEFS_QEV_BEGIN) | EVB(FUSEFS_QEV_TERM), 3);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1, 0, true, &qb), QGLUE_WRITE);
	quorum_glue_written(&g, &qb);
	a = persist_act(EVB(FUSEFS_QEV_ELECT), 4);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 2, 0, true, &qb), QGLUE_WRITE);
	quorum_glue_written(&g, &qb);
	ck_assert_uint_eq(qb.seq, 2);

	/* a check of the block as we left it */
	a = persist_act(0, 4);
	a.check = true;
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 3, 0, true, &qb), QGLUE_UNCHANGED);
	ck_assert_uint_eq(qb.seq, 2);
	/* the same check over garbage: rebuilt from memory, whole */
	memset(&garbage, 0x5a, sizeof(garbage));
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 3, 0, false, &garbage), QGLUE_REPAIR);
	ck_assert_uint_eq(garbage.seq, 3);
	ck_assert_uint_eq(garbage.ev[FUSEFS_QEV_BEGIN].rid, 0xaa);
	ck_assert_uint_eq(garbage.ev[FUSEFS_QEV_ELECT].term, 4);
	ck_assert_uint_eq(garbage.ev[FUSEFS_QEV_ELECT].write_nr, qb.ev[FUSEFS_QEV_ELECT].write_nr);
	ck_assert_uint_eq(garbage.seq_hwm, qb.seq_hwm);
	ck_assert_str_eq(garbage.holder_host, "host1");
	/* a new event over garbage: from memory, with the event */
	memset(&garbage, 0xa5, sizeof(garbage));
	a = persist_act(EVB(FUSEFS_QEV_FENCE), 4);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 4, 0, false, &garbage), QGLUE_REPAIR);
	ck_assert_uint_eq(garbage.ev[FUSEFS_QEV_FENCE].term, 4);
	ck_assert_uint_eq(garbage.ev[FUSEFS_QEV_TERM].term, 3);
	/* a check of a block that changed under us (a write that failed but landed) writes */
	qb.seq++;
	qb.write_nr++;
	a = persist_act(0, 4);
	a.check = true;
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 5, 0, true, &qb), QGLUE_WRITE);
	/* no copy at all: nothing to repair from */
	g.have_mem = false;
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 5, 0, false, &garbage), -EIO);
}
END_TEST

/*
 * Rebuilding our unreadable block at a mount: term and spent vote from the
 * greatest readable term, the longest promise kept, sequence numbers above
 * anything the lost block can have reserved.
 */
START_TEST(rebuild_from_the_other_blocks)
{
	struct quorum_holder me = holder(1, 100);
	struct quorum_glue g;
	struct quorum_input in;
	struct bd_qblock nb;
	struct quorum_state st;
	struct quorum_config cfg = { .our_slot = 1, .present_mask = 0x7, .votes_needed = 2,
				     .hb_timeout_ms = 2000 };
	struct quorum_actions out;
	const uint64_t wall = 1700000000ull * 1000000000ull;

	reset();
	bd_qblock_set_event(&blk[0], FUSEFS_QEV_TERM, 0xa0, 7, 1, 0);
	blk[0].vote_term = 9; /* slot 0 voted in 9 */
	blk[0].vote_slot = 2;
	bd_qblock_set_event(&blk[2], FUSEFS_QEV_TERM, 0xc0, 9, 1, 0); /* candidate of 9 */
	blk[2].seq_hwm = wall + 5;
	quorum_glue_init(&g, 1, 0xbb, &me);
	/* another block unreadable too: the argument does not hold, refused */
	ck_assert_int_eq(quorum_glue_rebuild(&g, blk, 0x1, 0x7, 60000, wall, &nb), -ENODATA);
	ck_assert_int_eq(quorum_glue_rebuild(&g, blk, 0x5, 0x7, 60000, wall, &nb), 0);
	ck_assert_uint_eq(nb.ev[FUSEFS_QEV_TERM].term, 9);
	ck_assert_uint_eq(nb.vote_term, 9);
	ck_assert_int_eq(nb.vote_slot, 1);
	ck_assert_uint_eq(nb.hb_timeout_ms, 60000);
	ck_assert(!quorum_block_ended(&nb));
	ck_assert_uint_eq(nb.seq_hwm, wall + 5);
	ck_assert_uint_eq(nb.ev[FUSEFS_QEV_ELECT].term, 0);
	ck_assert_uint_eq(nb.holder_rid, 0); /* no holder known: the next BEGIN records ours */

	/* the mount on it: term 9, no vote to give in 9, sticky for the promise */
	blk[1] = nb;
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x7, &in), 0);
	ck_assert_uint_ge(g.seq_base, wall + 5);
	ck_assert(in.start.prev_unclean);
	quorum_init(&st, &cfg);
	in.random = 1;
	quorum_step(&st, &in, 1000000000, &out);
	ck_assert_uint_eq(st.term, 9);
	ck_assert_int_eq(st.vote_for, 1);
	ck_assert_int_ge(st.sticky_until, 1000000000 + 60000ll * 1000000);
	/* the BEGIN of that mount goes over the rebuilt one */
	ck_assert_int_eq(out.act[out.count - 1].type, QACT_PERSIST);
	ck_assert_int_eq(quorum_glue_persist(&g, &out.act[out.count - 1], 1, 0, true, &blk[1]),
			 QGLUE_WRITE);
	ck_assert_uint_eq(blk[1].seq_hwm, g.seq_base + QUORUM_SEQ_RANGE);
}
END_TEST

/*
 * Reservations: BEGIN takes the first range; half-way through, the glue
 * asks for another, which the next write (QIN_RESERVE makes one) carries;
 * the codec numbers nothing above what is durable.
 */
START_TEST(sequence_reservations_extend)
{
	struct quorum_holder me = holder(1, 100);
	struct quorum_codec tx;
	struct bd_super sb;
	struct quorum_glue g;
	struct quorum_input in;
	struct quorum_action a;
	struct quorum_msg m;
	uint8_t buf[QUORUM_MSG_WIRE_BYTES];
	int sent = 0;

	memset(&sb, 0, sizeof(sb));
	sb.fsid = 0x1234;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(bd_addr_parse("127.0.0.1", (uint16_t)(7100 + i), &sb.slots[i]), 0);
	reset();
	blk[0].seq_hwm = 500;
	quorum_glue_init(&g, 0, 0xaa, &me);
	g.seq_range = 100;
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x7, &in), 0);
	ck_assert_int_eq(quorum_codec_init(&tx, &sb, 0, 0xaa, g.seq_base), 0);
	quorum_codec_set_limit(&tx, g.seq_base); /* nothing before BEGIN */
	memset(&m, 0, sizeof(m));
	m.type = QMSG_HEARTBEAT;
	m.to = 1;
	ck_assert_int_eq(quorum_msg_encode(&tx, &m, buf, sizeof(buf)), -ENOSPC);
	ck_assert(!quorum_glue_seq_low(&g, tx.tx_seq)); /* not begun: nothing to extend */

	a = persist_act(EVB(FUSEFS_QEV_BEGIN), 1);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1, 0, true, &blk[0]), QGLUE_WRITE);
	quorum_glue_written(&g, &blk[0]);
	ck_assert_uint_eq(g.seq_reserved, 600);
	quorum_codec_set_limit(&tx, g.seq_reserved);
	while (quorum_msg_encode(&tx, &m, buf, sizeof(buf)) > 0) {
		sent++;
		if (quorum_glue_seq_low(&g, tx.tx_seq))
			break;
	}
	ck_assert_int_eq(sent, 51); /* past half the range */
	ck_assert_uint_eq(g.seq_wanted, 700);
	ck_assert(!quorum_glue_seq_low(&g, tx.tx_seq)); /* asked once */
	/* the rest of the range, then no more until the write lands */
	while (quorum_msg_encode(&tx, &m, buf, sizeof(buf)) > 0)
		sent++;
	ck_assert_int_eq(sent, 100);
	/* a check alone would write nothing: with a reservation wanted, it writes */
	a = persist_act(0, 1);
	a.check = true;
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 2, 0, true, &blk[0]), QGLUE_WRITE);
	ck_assert_uint_eq(blk[0].seq_hwm, 700);
	quorum_glue_written(&g, &blk[0]);
	quorum_codec_set_limit(&tx, g.seq_reserved);
	ck_assert_int_gt(quorum_msg_encode(&tx, &m, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(tx.tx_seq, 601);
	quorum_codec_free(&tx);
}
END_TEST

/* A BEGIN of ours that we took for failed but landed does not lock us out. */
START_TEST(our_own_landed_begin_is_ours)
{
	struct quorum_holder me = holder(1, 100);
	struct quorum_glue g;
	struct quorum_input in;
	struct quorum_action a;
	struct bd_qblock landed;

	reset();
	bd_qblock_set_event(&blk[0], FUSEFS_QEV_BEGIN, 0x11, 1, 1, 0);
	quorum_glue_init(&g, 0, 0xaa, &me);
	ck_assert_int_eq(quorum_glue_start(&g, blk, 0x7, &in), 0);
	landed = blk[0];
	a = persist_act(EVB(FUSEFS_QEV_BEGIN), 1);
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 1, 0, true, &landed), QGLUE_WRITE);
	/* the write timed out, but landed; the retry carries BEGIN again */
	ck_assert_int_eq(quorum_glue_persist(&g, &a, 2, 0, true, &landed), QGLUE_WRITE);
	ck_assert_uint_eq(landed.ev[FUSEFS_QEV_BEGIN].rid, 0xaa);
}
END_TEST

Suite *suite_glue(void)
{
	Suite *s = suite_create("glue");
	TCase *tc = tcase_create("blocks");

	tcase_add_test(tc, start_input_from_blocks);
	tcase_add_test(tc, persist_stamps_what_was_asked);
	tcase_add_test(tc, persist_refuses_another_mounts_block);
	tcase_add_test(tc, sequence_numbers_rise_across_remounts);
	tcase_add_test(tc, repair_from_memory_and_checks);
	tcase_add_test(tc, rebuild_from_the_other_blocks);
	tcase_add_test(tc, sequence_reservations_extend);
	tcase_add_test(tc, our_own_landed_begin_is_ours);
	suite_add_tcase(s, tc);
	return s;
}
