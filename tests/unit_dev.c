/*
 * unit_dev.c - the device interface: the in-memory device's faults and
 * crash modes (the store's crash tests rest on them), asynchronous
 * transfers through a ring, and the production device's durability calls.
 */
#include "tests/unit.h"

#include "blockdev/dev.h"
#include "common/common.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <unistd.h>

#define NBLK 64

static void fill(uint8_t *b, unsigned nr_blocks, uint8_t v)
{
	memset(b, v, (size_t)nr_blocks * FUSEFS_BLOCK_SIZE);
}

static bool all_eq(const uint8_t *b, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

static struct bd_dev *mem(uint64_t seed)
{
	struct bd_dev *d;

	ck_assert_int_eq(bd_mem_open(NBLK, 512, seed, &d), 0);
	return d;
}

START_TEST(mem_round_trip_and_stats)
{
	struct bd_dev *d = mem(1);
	uint8_t w[2 * FUSEFS_BLOCK_SIZE], r[2 * FUSEFS_BLOCK_SIZE];
	struct bd_stats st;

	ck_assert_uint_eq(bd_size_blocks(d), NBLK);
	ck_assert_uint_eq(bd_logical_block_size(d), 512);
	fill(w, 2, 0x5a);
	w[17] = 3;
	ck_assert_int_eq(bd_write(d, 10, w, 2, 0), 0);
	ck_assert_int_eq(bd_read(d, 10, r, 2), 0);
	ck_assert_mem_eq(w, r, sizeof(w));
	ck_assert_int_eq(bd_write(d, 12, w, 1, BD_WRITE_DURABLE), 0);
	ck_assert_int_eq(bd_flush(d), 0);
	/* refused before reaching the device, and counted as errors */
	ck_assert_int_eq(bd_read(d, NBLK, r, 1), -ERANGE);
	ck_assert_int_eq(bd_write(d, NBLK - 1, w, 2, 0), -ERANGE);
	ck_assert_int_eq(bd_read(d, 0, r, 0), -EINVAL);
	bd_get_stats(d, &st);
	ck_assert_uint_eq(st.reads, 3);
	ck_assert_uint_eq(st.read_blocks, 2 + 1 + 0);
	ck_assert_uint_eq(st.writes, 3);
	ck_assert_uint_eq(st.durable_writes, 1);
	ck_assert_uint_eq(st.flushes, 1);
	ck_assert_uint_eq(st.errors, 3);
	/* the refused calls never reached the device's fault counter */
	ck_assert_uint_eq(bd_mem_calls(d), 4);
	bd_close(d);
}
END_TEST

/* Unsynced writes are lost at a crash; durable ones and flushed ones are not. */
START_TEST(mem_crash_lost)
{
	struct bd_dev *d = mem(2);
	uint8_t b[FUSEFS_BLOCK_SIZE];

	fill(b, 1, 1);
	ck_assert_int_eq(bd_write(d, 1, b, 1, 0), 0);
	ck_assert_int_eq(bd_flush(d), 0);
	fill(b, 1, 2);
	ck_assert_int_eq(bd_write(d, 2, b, 1, BD_WRITE_DURABLE), 0);
	fill(b, 1, 3);
	ck_assert_int_eq(bd_write(d, 1, b, 1, 0), 0); /* overwrites flushed data, unsynced */
	ck_assert_int_eq(bd_write(d, 3, b, 1, 0), 0);
	ck_assert_int_eq(bd_read(d, 1, b, 1), 0);
	ck_assert(all_eq(b, sizeof(b), 3)); /* reads see unsynced data before the crash */

	ck_assert_uint_eq(bd_mem_crash(d, BD_CRASH_LOST), 2);
	ck_assert_int_eq(bd_read(d, 1, b, 1), 0);
	ck_assert(all_eq(b, sizeof(b), 1));
	ck_assert_int_eq(bd_read(d, 2, b, 1), 0);
	ck_assert(all_eq(b, sizeof(b), 2));
	ck_assert_int_eq(bd_read(d, 3, b, 1), 0);
	ck_assert(all_eq(b, sizeof(b), 0));
	/* nothing is left unsynced after a crash */
	ck_assert_uint_eq(bd_mem_crash(d, BD_CRASH_LOST), 0);
	bd_close(d);
}
END_TEST

/* A durable write after an unsynced one to the same block wins at the crash. */
START_TEST(mem_durable_supersedes_unsynced)
{
	struct bd_dev *d = mem(3);
	uint8_t b[FUSEFS_BLOCK_SIZE];

	fill(b, 1, 7);
	ck_assert_int_eq(bd_write(d, 5, b, 1, 0), 0);
	fill(b, 1, 8);
	ck_assert_int_eq(bd_write(d, 5, b, 1, BD_WRITE_DURABLE), 0);
	bd_mem_crash(d, BD_CRASH_LOST);
	ck_assert_int_eq(bd_read(d, 5, b, 1), 0);
	ck_assert(all_eq(b, sizeof(b), 8));
	bd_close(d);
}
END_TEST

START_TEST(mem_crash_kept)
{
	struct bd_dev *d = mem(4);
	uint8_t b[FUSEFS_BLOCK_SIZE];

	fill(b, 1, 9);
	ck_assert_int_eq(bd_write(d, 7, b, 1, 0), 0);
	ck_assert_uint_eq(bd_mem_crash(d, BD_CRASH_KEPT), 1);
	ck_assert_int_eq(bd_read(d, 7, b, 1), 0);
	ck_assert(all_eq(b, sizeof(b), 9));
	bd_close(d);
}
END_TEST

/*
 * Torn: every 512-byte sector of an unsynced block is wholly old or wholly
 * new, and across blocks both happen; the sectors of a synced block never tear.
 */
START_TEST(mem_crash_torn_sectors)
{
	struct bd_dev *d = mem(5);
	uint8_t b[FUSEFS_BLOCK_SIZE];
	unsigned old_sectors = 0, new_sectors = 0, mixed_blocks = 0;

	fill(b, 1, 0xee);
	ck_assert_int_eq(bd_write(d, 0, b, 1, BD_WRITE_DURABLE), 0);
	for (uint64_t i = 1; i < NBLK; i++) {
		fill(b, 1, 0x11);
		ck_assert_int_eq(bd_write(d, i, b, 1, 0), 0);
	}
	ck_assert_uint_eq(bd_mem_crash(d, BD_CRASH_TORN), NBLK - 1);
	ck_assert_int_eq(bd_read(d, 0, b, 1), 0);
	ck_assert(all_eq(b, sizeof(b), 0xee));
	for (uint64_t i = 1; i < NBLK; i++) {
		unsigned o = 0, n = 0;

		ck_assert_int_eq(bd_read(d, i, b, 1), 0);
		for (unsigned s = 0; s < FUSEFS_BLOCK_SIZE / 512; s++) {
			if (all_eq(b + s * 512, 512, 0))
				o++;
			else if (all_eq(b + s * 512, 512, 0x11))
				n++;
			else
				ck_abort_msg("block %lu sector %u is neither old nor new", (unsigned long)i, s);
		}
		old_sectors += o;
		new_sectors += n;
		mixed_blocks += o > 0 && n > 0;
	}
	ck_assert_uint_gt(old_sectors, 0);
	ck_assert_uint_gt(new_sectors, 0);
	ck_assert_uint_gt(mixed_blocks, 0);
	bd_close(d);
}
END_TEST

/* The same seed tears the same way: crash tests replay. */
START_TEST(mem_crash_replays_by_seed)
{
	uint8_t a[NBLK * FUSEFS_BLOCK_SIZE / 8], c[NBLK * FUSEFS_BLOCK_SIZE / 8];
	uint8_t b[FUSEFS_BLOCK_SIZE];

	for (int run = 0; run < 2; run++) {
		struct bd_dev *d = mem(42);

		for (uint64_t i = 0; i < NBLK / 8; i++) {
			fill(b, 1, (uint8_t)(i + 1));
			ck_assert_int_eq(bd_write(d, i, b, 1, 0), 0);
		}
		bd_mem_crash(d, BD_CRASH_RANDOM);
		bd_mem_peek(d, 0, run ? c : a, NBLK / 8);
		bd_close(d);
	}
	ck_assert_mem_eq(a, c, sizeof(a));
}
END_TEST

START_TEST(mem_fail_nth)
{
	struct bd_dev *d = mem(6);
	struct bd_mem_faults f = { .fail_nth = 3 };
	uint8_t b[FUSEFS_BLOCK_SIZE];

	bd_mem_set_faults(d, &f);
	fill(b, 1, 1);
	ck_assert_int_eq(bd_write(d, 1, b, 1, 0), 0);
	ck_assert_int_eq(bd_read(d, 1, b, 1), 0);
	fill(b, 1, 2);
	ck_assert_int_eq(bd_write(d, 1, b, 1, 0), -EIO); /* the third call */
	ck_assert_int_eq(bd_read(d, 1, b, 1), 0);
	ck_assert(all_eq(b, sizeof(b), 1)); /* a failed write changed nothing */
	ck_assert_int_eq(bd_flush(d), 0);

	f = (struct bd_mem_faults){ .fail_nth = bd_mem_calls(d) + 2, .fail_after_nth = true,
				    .err = -ENOSPC };
	bd_mem_set_faults(d, &f);
	ck_assert_int_eq(bd_flush(d), 0);
	ck_assert_int_eq(bd_flush(d), -ENOSPC);
	ck_assert_int_eq(bd_read(d, 1, b, 1), -ENOSPC);
	f = (struct bd_mem_faults){ 0 };
	bd_mem_set_faults(d, &f);
	ck_assert_int_eq(bd_read(d, 1, b, 1), 0);
	bd_close(d);
}
END_TEST

START_TEST(mem_fail_range)
{
	struct bd_dev *d = mem(7);
	struct bd_mem_faults f = { .fail_ops = BD_FAULT_READ, .fail_lo = 10, .fail_hi = 12 };
	uint8_t b[4 * FUSEFS_BLOCK_SIZE];

	bd_mem_set_faults(d, &f);
	ck_assert_int_eq(bd_read(d, 8, b, 2), 0);  /* 8, 9 */
	ck_assert_int_eq(bd_read(d, 9, b, 2), -EIO); /* touches 10 */
	ck_assert_int_eq(bd_read(d, 11, b, 1), -EIO);
	ck_assert_int_eq(bd_read(d, 12, b, 4), 0);
	ck_assert_int_eq(bd_write(d, 10, b, 1, 0), 0); /* only reads fail */
	ck_assert_int_eq(bd_flush(d), 0);
	f.fail_ops = BD_FAULT_WRITE | BD_FAULT_FLUSH;
	bd_mem_set_faults(d, &f);
	ck_assert_int_eq(bd_write(d, 11, b, 1, 0), -EIO);
	ck_assert_int_eq(bd_flush(d), -EIO);
	ck_assert_int_eq(bd_read(d, 11, b, 1), 0);
	bd_close(d);
}
END_TEST

START_TEST(mem_delay)
{
	struct bd_dev *d = mem(8);
	struct bd_mem_faults f = { .delay_ms = 50 };
	uint8_t b[FUSEFS_BLOCK_SIZE];
	mono_ns t0;

	bd_mem_set_faults(d, &f);
	t0 = mono_now();
	ck_assert_int_eq(bd_read(d, 1, b, 1), 0);
	ck_assert_int_eq(bd_flush(d), 0);
	ck_assert_int_ge(mono_now() - t0, 100 * NSEC_PER_MSEC);
	bd_close(d);
}
END_TEST

/*
 * A write held past the I/O timeout fails with -ETIMEDOUT and is counted
 * lost (a real device's may still land: the server fences itself on it);
 * a held flush that times out has nothing to land and is not.
 */
START_TEST(mem_held_write_counted_lost)
{
	struct bd_dev *d = mem(9);
	uint8_t b[FUSEFS_BLOCK_SIZE];
	struct bd_stats st;

	memset(b, 0x5a, sizeof(b));
	bd_set_io_timeout(d, 1); /* held waits give up after it plus a second */
	bd_mem_hold(d, true);
	ck_assert_int_eq(bd_write(d, 3, b, 1, 0), -ETIMEDOUT);
	ck_assert_int_eq(bd_flush(d), -ETIMEDOUT);
	bd_mem_hold(d, false);
	ck_assert_int_eq(bd_write(d, 4, b, 1, 0), 0);
	bd_get_stats(d, &st);
	ck_assert_uint_eq(st.timeouts, 2);
	ck_assert_uint_eq(st.lost_writes, 1);
	bd_close(d);
}
END_TEST

/* Asynchronous transfers on a caller's ring, for either device. */
static int aio_run(struct bd_dev *d, struct io_uring *ring, struct bd_aio *aio)
{
	struct io_uring_cqe *cqe;
	int tag = 77, ret;

	ret = bd_aio_prep(d, ring, aio, &tag);
	if (ret < 0)
		return ret;
	ck_assert_int_eq(io_uring_submit(ring), 1);
	ck_assert_int_eq(io_uring_wait_cqe(ring, &cqe), 0);
	ck_assert_ptr_eq(io_uring_cqe_get_data(cqe), &tag);
	ret = bd_aio_finish(d, aio, cqe->res);
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

START_TEST(mem_aio_through_ring)
{
	struct bd_dev *d = mem(9);
	struct bd_mem_faults f = { .delay_ms = 30 };
	struct io_uring ring;
	uint8_t *b = bd_alloc(1), peek[FUSEFS_BLOCK_SIZE];
	struct bd_aio aio = { .op = BD_AIO_WRITE, .blkno = 4, .nr_blocks = 1,
			      .flags = BD_WRITE_DURABLE, .buf = b };
	struct io_uring_cqe *cqe;
	int tag = 1;
	mono_ns t0;

	ck_assert_int_eq(io_uring_queue_init(8, &ring, 0), 0);
	fill(b, 1, 0x42);
	bd_mem_set_faults(d, &f);
	t0 = mono_now();
	ck_assert_int_eq(bd_aio_prep(d, &ring, &aio, &tag), 0);
	ck_assert_int_eq(io_uring_submit(&ring), 1);
	/* a write is not on the device before its completion is handled */
	bd_mem_peek(d, 4, peek, 1);
	ck_assert(all_eq(peek, sizeof(peek), 0));
	ck_assert_int_eq(io_uring_wait_cqe(&ring, &cqe), 0);
	ck_assert_int_ge(mono_now() - t0, 30 * NSEC_PER_MSEC);
	ck_assert_int_eq(bd_aio_finish(d, &aio, cqe->res), 0);
	io_uring_cqe_seen(&ring, cqe);
	bd_mem_crash(d, BD_CRASH_LOST); /* durable */
	bd_mem_peek(d, 4, peek, 1);
	ck_assert(all_eq(peek, sizeof(peek), 0x42));

	/* a read of a failing range fails through the same path */
	f = (struct bd_mem_faults){ .fail_ops = BD_FAULT_READ, .fail_lo = 4, .fail_hi = 5 };
	bd_mem_set_faults(d, &f);
	aio = (struct bd_aio){ .op = BD_AIO_READ, .blkno = 4, .nr_blocks = 1, .buf = b };
	ck_assert_int_eq(aio_run(d, &ring, &aio), -EIO);
	/* an unaligned buffer is refused before anything is queued */
	aio.buf = (uint8_t *)b + 8;
	ck_assert_int_eq(bd_aio_prep(d, &ring, &aio, &tag), -EINVAL);
	io_uring_queue_exit(&ring);
	bd_free(b);
	bd_close(d);
}
END_TEST

/* The production device: writes, a flush, async through a ring, stats. */
START_TEST(uring_flush_and_aio)
{
	const char *path = test_make_file("dev-uring.img", 64 * FUSEFS_BLOCK_SIZE);
	struct bd_dev *d;
	struct io_uring ring;
	uint8_t *b = bd_alloc(2), r[2 * FUSEFS_BLOCK_SIZE];
	struct bd_aio aio = { .op = BD_AIO_WRITE, .blkno = 20, .nr_blocks = 2, .buf = b };
	struct bd_stats st;
	char why[256];

	if (path == NULL)
		return;
	ck_assert_int_eq(bd_open(path, true, &d, why, sizeof(why)), 0);
	ck_assert(bd_logical_block_size(d) == 512 || bd_logical_block_size(d) == 4096);
	fill(b, 2, 0x3c);
	ck_assert_int_eq(bd_write(d, 3, b, 2, 0), 0);
	ck_assert_int_eq(bd_flush(d), 0);
	ck_assert_int_eq(io_uring_queue_init(8, &ring, 0), 0);
	fill(b, 2, 0x4d);
	ck_assert_int_eq(aio_run(d, &ring, &aio), 0);
	aio = (struct bd_aio){ .op = BD_AIO_READ, .blkno = 3, .nr_blocks = 2, .buf = b };
	ck_assert_int_eq(aio_run(d, &ring, &aio), 0);
	ck_assert(all_eq(b, 2 * FUSEFS_BLOCK_SIZE, 0x3c));
	ck_assert_int_eq(bd_read(d, 20, r, 2), 0);
	ck_assert(all_eq(r, sizeof(r), 0x4d));
	/* a transfer past the end of the device is refused, sync or async */
	aio.blkno = 63;
	ck_assert_int_eq(aio_run(d, &ring, &aio), -ERANGE);
	bd_get_stats(d, &st);
	ck_assert_uint_eq(st.writes, 2);
	ck_assert_uint_eq(st.reads, 2);
	ck_assert_uint_eq(st.flushes, 1);
	io_uring_queue_exit(&ring);
	bd_free(b);
	bd_close(d);
}
END_TEST

Suite *suite_dev(void)
{
	Suite *s = suite_create("dev");
	TCase *tc = tcase_create("mem");

	tcase_add_test(tc, mem_round_trip_and_stats);
	tcase_add_test(tc, mem_crash_lost);
	tcase_add_test(tc, mem_durable_supersedes_unsynced);
	tcase_add_test(tc, mem_crash_kept);
	tcase_add_test(tc, mem_crash_torn_sectors);
	tcase_add_test(tc, mem_crash_replays_by_seed);
	tcase_add_test(tc, mem_fail_nth);
	tcase_add_test(tc, mem_fail_range);
	tcase_add_test(tc, mem_delay);
	tcase_add_test(tc, mem_held_write_counted_lost);
	tcase_add_test(tc, mem_aio_through_ring);
	suite_add_tcase(s, tc);
	tc = tcase_create("uring");
	tcase_add_test(tc, uring_flush_and_aio);
	suite_add_tcase(s, tc);
	return s;
}
