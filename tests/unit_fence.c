/*
 * unit_fence.c - fence selection: which earlier leaders a new server must
 * fence, by the scoutfs rules, and the current leader per the blocks.
 */
#include "tests/unit.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/crc32c.h"
#include "blockdev/dev.h"
#include "blockdev/tools.h"
#include "quorum/agent.h"
#include "quorum/election.h"
#include "quorum/fence.h"
#include "quorum/holder.h"
#include "quorum/msg.h"
#include "quorum/status.h"

static struct bd_qblock blk[FUSEFS_QUORUM_MAX_SLOTS];

static void reset(void)
{
	memset(blk, 0, sizeof(blk));
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		blk[i].vote_slot = -1;
}

static void ev(int slot, int event, uint64_t rid, uint64_t term)
{
	bd_qblock_set_event(&blk[slot], event, rid, term, 1, 0);
}

static const struct quorum_fence_target *target_for(const struct quorum_fence_plan *p,
						     uint64_t rid)
{
	for (int i = 0; i < p->count; i++)
		if (p->target[i].rid == rid)
			return &p->target[i];
	return NULL;
}

START_TEST(nothing_to_fence_on_fresh_fs)
{
	struct quorum_fence_plan p;

	reset();
	quorum_fence_select(blk, 0x7, 1, 0xa, &p);
	ck_assert_int_eq(p.count, 0);
	ck_assert_uint_eq(p.fenced_term, 0);
	ck_assert_uint_eq(p.superseded_term, 0);
}
END_TEST

START_TEST(running_leader_fenced_stopped_not)
{
	struct quorum_fence_plan p;

	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 3); /* elected at 3, never stopped */
	ev(1, FUSEFS_QEV_ELECT, 0xb, 2);
	ev(1, FUSEFS_QEV_STOP, 0xb, 2);  /* elected at 2 and stopped */
	ev(2, FUSEFS_QEV_ELECT, 0xc, 5); /* us */
	quorum_fence_select(blk, 0x7, 5, 0xc, &p);
	ck_assert_int_eq(p.count, 1);
	ck_assert_uint_eq(p.target[0].rid, 0xa);
	ck_assert_uint_eq(p.target[0].term, 3);
	ck_assert_int_eq(p.target[0].slot, 0);
	ck_assert_int_eq(p.target[0].event, FUSEFS_QEV_ELECT);
}
END_TEST

START_TEST(already_fenced_terms_skipped)
{
	struct quorum_fence_plan p;

	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 2); /* old leader, crashed */
	ev(1, FUSEFS_QEV_ELECT, 0xb, 4); /* fenced it at 4, then crashed */
	ev(1, FUSEFS_QEV_FENCE, 0xb, 4);
	quorum_fence_select(blk, 0x7, 6, 0xc, &p);
	/* 0xa is below the greatest FENCE; 0xb at 4 itself must be fenced */
	ck_assert_int_eq(p.count, 1);
	ck_assert_uint_eq(p.target[0].rid, 0xb);
	ck_assert_uint_eq(p.fenced_term, 4);
}
END_TEST

START_TEST(newer_and_self_skipped_superseded_reported)
{
	struct quorum_fence_plan p;

	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 9); /* newer than us */
	ev(1, FUSEFS_QEV_ELECT, 0xc, 7); /* us */
	quorum_fence_select(blk, 0x3, 7, 0xc, &p);
	ck_assert_int_eq(p.count, 0);
	ck_assert_uint_eq(p.superseded_term, 9);
	ck_assert_int_eq(p.superseded_slot, 0);
}
END_TEST

/*
 * A newer leader that has since stopped still supersedes us: a server
 * that is no longer the newest leader must not serve, whether or not the
 * newer one still runs.
 */
START_TEST(newer_stopped_leader_still_supersedes)
{
	struct quorum_fence_plan p;

	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 9); /* newer than us ... */
	ev(0, FUSEFS_QEV_FENCE, 0xa, 9);
	ev(0, FUSEFS_QEV_STOP, 0xa, 9);  /* ... and stopped since */
	ev(1, FUSEFS_QEV_ELECT, 0xc, 7); /* us */
	ev(2, FUSEFS_QEV_ELECT, 0xb, 5); /* an older leader, never stopped */
	quorum_fence_select(blk, 0x7, 7, 0xc, &p);
	ck_assert_uint_eq(p.superseded_term, 9);
	ck_assert_int_eq(p.superseded_slot, 0);
	/* a newer ELECT that stopped, on the slot of a still older one */
	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 8);
	ev(0, FUSEFS_QEV_STOP, 0xa, 8);
	quorum_fence_select(blk, 0x3, 6, 0xc, &p);
	ck_assert_uint_eq(p.superseded_term, 8);
	ck_assert_int_eq(p.count, 0);
	/* equal to ours is not newer */
	quorum_fence_select(blk, 0x3, 8, 0xc, &p);
	ck_assert_uint_eq(p.superseded_term, 0);
	ck_assert_int_eq(p.superseded_slot, -1);
}
END_TEST

/* A server that fenced and then stopped still fenced everything before it. */
START_TEST(fence_of_stopped_server_still_counts)
{
	struct quorum_fence_plan p;

	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 3); /* crashed leader of term 3 */
	ev(1, FUSEFS_QEV_ELECT, 0xb, 5); /* fenced it at 5 ... */
	ev(1, FUSEFS_QEV_FENCE, 0xb, 5);
	ev(1, FUSEFS_QEV_STOP, 0xb, 5);  /* ... and stopped cleanly */
	quorum_fence_select(blk, 0x7, 6, 0xc, &p);
	ck_assert_uint_eq(p.fenced_term, 5);
	ck_assert_int_eq(p.count, 0);
	ck_assert_uint_eq(p.superseded_term, 0);
}
END_TEST

START_TEST(earlier_server_of_reelected_slot)
{
	struct quorum_fence_plan p;

	reset();
	/* slot 0's mount 0xa served at term 3 and vanished without STOP;
	 * slot 0 was remounted as 0xd and elected at term 5 */
	ev(0, FUSEFS_QEV_ELECT, 0xa, 3);
	ev(0, FUSEFS_QEV_FENCE, 0xa, 3);
	ev(0, FUSEFS_QEV_ELECT, 0xd, 5);
	quorum_fence_select(blk, 0x3, 6, 0xe, &p);
	ck_assert_int_eq(p.count, 2);
	ck_assert_ptr_nonnull(target_for(&p, 0xa));
	ck_assert_int_eq(target_for(&p, 0xa)->event, FUSEFS_QEV_FENCE);
	ck_assert_ptr_nonnull(target_for(&p, 0xd));
	ck_assert_uint_eq(target_for(&p, 0xd)->term, 5);
}
END_TEST

START_TEST(one_target_per_rid)
{
	struct quorum_fence_plan p;

	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 3);
	ev(0, FUSEFS_QEV_FENCE, 0xa, 3);
	ev(0, FUSEFS_QEV_ELECT, 0xa, 5); /* the same mount elected again */
	quorum_fence_select(blk, 0x3, 6, 0xe, &p);
	ck_assert_int_eq(p.count, 1);
	ck_assert_uint_eq(p.target[0].term, 5);
}
END_TEST

START_TEST(absent_slots_ignored)
{
	struct quorum_fence_plan p;

	reset();
	ev(4, FUSEFS_QEV_ELECT, 0xa, 3);
	quorum_fence_select(blk, 0x7, 6, 0xe, &p);
	ck_assert_int_eq(p.count, 0);
}
END_TEST

/* The seed's two-slot split: both elected themselves in one term. */
START_TEST(two_slot_split_each_fences_other)
{
	struct quorum_fence_plan p0, p1;

	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 4);
	ev(1, FUSEFS_QEV_ELECT, 0xb, 4);
	quorum_fence_select(blk, 0x3, 4, 0xa, &p0);
	quorum_fence_select(blk, 0x3, 4, 0xb, &p1);
	ck_assert_int_eq(p0.count, 1);
	ck_assert_uint_eq(p0.target[0].rid, 0xb);
	ck_assert_int_eq(p1.count, 1);
	ck_assert_uint_eq(p1.target[0].rid, 0xa);
	/* once one has fenced and recorded FENCE, the other's view changes */
	ev(0, FUSEFS_QEV_FENCE, 0xa, 4);
	quorum_fence_select(blk, 0x3, 4, 0xb, &p1);
	ck_assert_int_eq(p1.count, 1); /* term 4 is not below the FENCE: fenced */
	ck_assert_uint_eq(p1.target[0].rid, 0xa);
}
END_TEST

/* Unreadable blocks are possible earlier leaders: one target per slot, ours excepted. */
START_TEST(unreadable_blocks_fenced_by_slot)
{
	struct quorum_fence_plan p;

	reset();
	ev(0, FUSEFS_QEV_ELECT, 0xa, 3); /* an earlier leader on record */
	/* slots 1 (us), 2 and 4 unreadable; their entries in blk[] are zero */
	quorum_fence_select(blk, 0x1 | 0x8, 6, 0xb, &p);
	ck_assert_int_eq(p.count, 1);
	quorum_fence_add_unreadable(&p, 0x2 | 0x4 | 0x10, 1);
	ck_assert_int_eq(p.count, 3);
	ck_assert_uint_eq(p.target[0].rid, 0xa);
	ck_assert_int_eq(p.target[1].slot, 2);
	ck_assert_int_eq(p.target[1].event, QUORUM_FENCE_UNREADABLE);
	ck_assert_uint_eq(p.target[1].rid, 0);
	ck_assert_uint_eq(p.target[1].term, 0);
	ck_assert_int_eq(p.target[2].slot, 4);
	/* nothing unreadable, nothing added */
	quorum_fence_add_unreadable(&p, 0, 1);
	ck_assert_int_eq(p.count, 3);
	/* fifteen unreadable slots fit with fifteen readable targets */
	p.count = QUORUM_MAX_FENCE - FUSEFS_QUORUM_MAX_SLOTS;
	quorum_fence_add_unreadable(&p, 0x7fff, -1);
	ck_assert_int_eq(p.count, QUORUM_MAX_FENCE);
}
END_TEST

START_TEST(find_leader_greatest_running)
{
	uint64_t term;

	reset();
	ck_assert_int_eq(quorum_find_leader(blk, 0x7, &term), -1);
	ev(0, FUSEFS_QEV_ELECT, 0xa, 3);
	ev(2, FUSEFS_QEV_ELECT, 0xb, 5);
	ck_assert_int_eq(quorum_find_leader(blk, 0x7, &term), 2);
	ck_assert_uint_eq(term, 5);
	ev(2, FUSEFS_QEV_STOP, 0xb, 5);
	ck_assert_int_eq(quorum_find_leader(blk, 0x7, &term), 0);
	ck_assert_uint_eq(term, 3);
	ck_assert_int_eq(quorum_find_leader(blk, 0x6, &term), -1);
}
END_TEST

Suite *suite_fence(void)
{
	Suite *s = suite_create("fence_select");
	TCase *tc = tcase_create("rules");

	tcase_add_test(tc, nothing_to_fence_on_fresh_fs);
	tcase_add_test(tc, running_leader_fenced_stopped_not);
	tcase_add_test(tc, already_fenced_terms_skipped);
	tcase_add_test(tc, newer_and_self_skipped_superseded_reported);
	tcase_add_test(tc, newer_stopped_leader_still_supersedes);
	tcase_add_test(tc, fence_of_stopped_server_still_counts);
	tcase_add_test(tc, earlier_server_of_reelected_slot);
	tcase_add_test(tc, one_target_per_rid);
	tcase_add_test(tc, absent_slots_ignored);
	tcase_add_test(tc, two_slot_split_each_fences_other);
	tcase_add_test(tc, unreadable_blocks_fenced_by_slot);
	tcase_add_test(tc, find_leader_greatest_running);
	suite_add_tcase(s, tc);
	return s;
}
