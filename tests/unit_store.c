/*
 * unit_store.c - the store engine on the in-memory device: create, open,
 * batches with per-operation savepoints, the term gate, and crash safety
 * at every device call of a run (each call in turn fails and the device
 * then loses, keeps or tears what was not yet durable): after reopening,
 * every acknowledged commit is there and nothing else but the one in flight.
 */
#include "tests/unit.h"

#include "blockdev/codec.h"
#include "blockdev/dev.h"
#include "blockdev/tools.h"
#include "common/prng.h"
#include "server/fs.h"
#include "server/store.h"
#include "tests/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#define DEV_BLOCKS 6144 /* 24 MiB: the smallest layout plus room */

struct fixture {
	struct bd_dev *dev;
	struct bd_super super;
};

static int kv_fill(sqlite3 *db, void *arg)
{
	(void)arg;
	return sqlite3_exec(db, "CREATE TABLE kv(k INTEGER PRIMARY KEY, v BLOB NOT NULL);", NULL,
			    NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static void fixture_make(struct fixture *fx, uint64_t seed, uint32_t sector)
{
	struct bd_mkfs_opts mo = { .format_store = NULL };
	char why[256];

	memset(fx, 0, sizeof(*fx));
	ck_assert_int_eq(bd_mem_open(DEV_BLOCKS, sector, seed, &fx->dev), 0);
	ck_assert_int_eq(bd_mkfs_add_slot(&fx->super, "0,127.0.0.1,7001", why, sizeof(why)), 0);
	ck_assert_int_eq(bd_mkfs_add_slot(&fx->super, "1,127.0.0.1,7002", why, sizeof(why)), 0);
	ck_assert_int_eq(bd_mkfs_add_slot(&fx->super, "2,127.0.0.1,7003", why, sizeof(why)), 0);
	ck_assert_msg(bd_mkfs(fx->dev, &fx->super, &mo, why, sizeof(why)) == 0, "%s", why);
	ck_assert_msg(store_create(fx->dev, &fx->super, kv_fill, NULL, why, sizeof(why)) == 0, "%s",
		      why);
}

static struct store *open_store(struct fixture *fx, uint64_t term)
{
	struct store_config cfg = { .dev = fx->dev, .super = &fx->super, .term = term };
	struct store *st;
	char why[256];
	int ret = store_open(&cfg, &st, why, sizeof(why));

	ck_assert_msg(ret == 0, "store_open: %s", why);
	return st;
}

static int kv_put(struct store *st, int64_t k, const void *v, int len)
{
	sqlite3_stmt *s;
	int rc;

	ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), "INSERT OR REPLACE INTO kv VALUES(?,?)", -1,
					    &s, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, k);
	sqlite3_bind_blob(s, 2, v, len, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : rc == SQLITE_FULL ? -ENOSPC : -EIO;
}

static int kv_del(struct store *st, int64_t k)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "DELETE FROM kv WHERE k=%" PRId64, k);
	return sqlite3_exec(store_db(st), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* The value of k: its length (-1 when absent) and first byte. */
static int kv_get(struct store *st, int64_t k, int *first)
{
	sqlite3_stmt *s;
	int len = -1;

	ck_assert_int_eq(sqlite3_prepare_v2(store_db(st), "SELECT v FROM kv WHERE k=?", -1, &s,
					    NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, k);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const uint8_t *b = sqlite3_column_blob(s, 0);

		len = sqlite3_column_bytes(s, 0);
		*first = len > 0 ? b[0] : -1;
		for (int i = 0; i < len; i++)
			if (b[i] != b[0])
				*first = -2; /* values are one repeated byte: this one is damaged */
	}
	sqlite3_finalize(s);
	return len;
}

START_TEST(create_open_commit_reopen)
{
	struct fixture fx;
	struct store *st;
	struct store_stats ss;
	uint8_t v[5000];
	int first;

	fixture_make(&fx, 1, 512);
	st = open_store(&fx, 0);
	memset(v, 7, sizeof(v));
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_int_eq(store_op_begin(st), 0);
	ck_assert_int_eq(store_op_end(st, kv_put(st, 1, v, sizeof(v))), 0);
	/* a failed operation rolls back alone; the rest of the batch commits */
	ck_assert_int_eq(store_op_begin(st), 0);
	ck_assert_int_eq(kv_put(st, 2, v, 10), 0);
	ck_assert_int_eq(store_op_end(st, -EEXIST), -EEXIST);
	ck_assert_int_eq(store_op_begin(st), 0);
	ck_assert_int_eq(store_op_end(st, kv_put(st, 3, v, 3)), 0);
	ck_assert_int_eq(store_commit(st), 0);
	store_get_stats(st, &ss);
	ck_assert_uint_eq(ss.commits, 1);
	ck_assert_uint_eq(ss.ops, 3);
	ck_assert_uint_eq(ss.ops_failed, 1);
	ck_assert_uint_ge(ss.syncs, 1);
	store_close(st);

	st = open_store(&fx, 0);
	ck_assert_int_eq(kv_get(st, 1, &first), (int)sizeof(v));
	ck_assert_int_eq(first, 7);
	ck_assert_int_eq(kv_get(st, 2, &first), -1);
	ck_assert_int_eq(kv_get(st, 3, &first), 3);
	store_close(st);
	bd_close(fx.dev);
}
END_TEST

/* A committed batch survives a crash that loses everything unsynced. */
START_TEST(commit_is_durable)
{
	struct fixture fx;
	struct store *st;
	uint8_t v[100];
	int first;

	fixture_make(&fx, 2, 4096);
	st = open_store(&fx, 0);
	memset(v, 9, sizeof(v));
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(store_begin(st), 0);
		ck_assert_int_eq(store_op_begin(st), 0);
		ck_assert_int_eq(store_op_end(st, kv_put(st, i, v, sizeof(v))), 0);
		ck_assert_int_eq(store_commit(st), 0);
	}
	/* an open batch at the crash is simply gone */
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_int_eq(kv_put(st, 999, v, 10), 0);
	bd_mem_crash(fx.dev, BD_CRASH_LOST);
	store_abandon(st);
	st = open_store(&fx, 0);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(kv_get(st, i, &first), (int)sizeof(v));
	ck_assert_int_eq(kv_get(st, 999, &first), -1);
	store_close(st);
	bd_close(fx.dev);
}
END_TEST

static void write_elect(struct fixture *fx, int slot, uint64_t term)
{
	harness_poke_elect(fx->dev, fx->super.fsid, slot, term);
}

static bool lease_flag;

static bool lease_ok(void *arg)
{
	(void)arg;
	return lease_flag;
}

/*
 * A commit of the store st (term 5, a newer term on the device now) is
 * refused with -ESTALE, writes nothing, and so is every later batch.
 */
static void stale_commit_refused(struct fixture *fx, struct store *st)
{
	struct bd_stats before, after;
	uint8_t v[10] = { 0 };

	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_int_eq(store_op_begin(st), 0);
	ck_assert_int_eq(store_op_end(st, kv_put(st, 2, v, sizeof(v))), 0);
	bd_get_stats(fx->dev, &before);
	ck_assert_int_eq(store_commit(st), -ESTALE);
	bd_get_stats(fx->dev, &after);
	ck_assert_uint_eq(after.writes, before.writes);
	ck_assert_uint_eq(after.flushes, before.flushes);
	/* and never again */
	ck_assert_int_eq(store_begin(st), -ESTALE);
	store_close(st);
	bd_get_stats(fx->dev, &after);
	ck_assert_uint_eq(after.writes, before.writes);
}

/*
 * The gate refuses a stale leader's commit also when the newer leader has
 * already stopped again (its block shows ELECT, FENCE, STOP and END of the
 * newer term): the newer term happened, whatever became of its server.
 */
START_TEST(term_gate_refuses_after_newer_leader_stopped)
{
	struct fixture fx;
	struct store *st;
	struct bd_qblock qb = { .vote_slot = -1 };
	struct fusefs_quorum_block *b = bd_alloc(1);
	uint8_t v[10] = { 0 };
	char why[256];

	fixture_make(&fx, 3, 512);
	write_elect(&fx, 1, 5);
	st = open_store(&fx, 5);
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_int_eq(store_op_begin(st), 0);
	ck_assert_int_eq(store_op_end(st, kv_put(st, 1, v, sizeof(v))), 0);
	ck_assert_int_eq(store_commit(st), 0);
	/* while we were paused, slot 2 led term 6, served, stopped and unmounted */
	for (int ev = FUSEFS_QEV_BEGIN; ev <= FUSEFS_QEV_END; ev++)
		bd_qblock_set_event(&qb, ev, 0x5678, 6, 0, 0);
	bd_qblock_encode(&qb, fx.super.fsid, bd_quorum_blkno(2), b);
	bd_mem_poke(fx.dev, bd_quorum_blkno(2), b, 1);
	bd_free(b);
	ck_assert_int_eq(store_gate_check(fx.dev, &fx.super, 5, why, sizeof(why)), -ESTALE);
	ck_assert_msg(strstr(why, "slot 2 was elected in term 6") != NULL, "%s", why);
	stale_commit_refused(&fx, st);
	bd_close(fx.dev);
}
END_TEST

/* A newer ELECT on the device, or a lost lease: nothing is committed or written. */
START_TEST(term_gate_refuses)
{
	struct store_config cfg;
	struct fixture fx;
	struct store *st;
	struct bd_stats before, after;
	char why[256];
	uint8_t v[10] = { 0 };
	int first;

	fixture_make(&fx, 3, 512);
	write_elect(&fx, 1, 5);
	ck_assert_int_eq(store_gate_check(fx.dev, &fx.super, 5, why, sizeof(why)), 0);
	ck_assert_int_eq(store_gate_check(fx.dev, &fx.super, 4, why, sizeof(why)), -ESTALE);
	ck_assert_msg(strstr(why, "slot 1 was elected in term 5") != NULL, "%s", why);

	/* serving in term 5: commits go through */
	st = open_store(&fx, 5);
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_int_eq(store_op_begin(st), 0);
	ck_assert_int_eq(store_op_end(st, kv_put(st, 1, v, sizeof(v))), 0);
	ck_assert_int_eq(store_commit(st), 0);
	/* slot 2 is elected in term 6 while we were paused */
	write_elect(&fx, 2, 6);
	stale_commit_refused(&fx, st);

	/* a lost lease: same */
	memset(&cfg, 0, sizeof(cfg));
	cfg = (struct store_config){ .dev = fx.dev, .super = &fx.super, .term = 6,
				     .lease_ok = lease_ok };
	lease_flag = true;
	ck_assert_int_eq(store_open(&cfg, &st, why, sizeof(why)), 0);
	ck_assert_int_eq(kv_get(st, 1, &first), 10);
	ck_assert_int_eq(kv_get(st, 2, &first), -1);
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_int_eq(store_op_begin(st), 0);
	ck_assert_int_eq(store_op_end(st, kv_put(st, 3, v, sizeof(v))), 0);
	lease_flag = false;
	bd_get_stats(fx.dev, &before);
	ck_assert_int_eq(store_commit(st), -ESTALE);
	store_close(st);
	bd_get_stats(fx.dev, &after);
	ck_assert_uint_eq(after.writes, before.writes);
	ck_assert_uint_eq(after.flushes, before.flushes);
	bd_close(fx.dev);
}
END_TEST

/*
 * Crash at every device call, in each mode.  A fixed workload of batches (random puts
 * of random sizes and deletes, some large enough to checkpoint) runs once
 * to count its device calls; then, for each call number N, a fresh device
 * runs it with call N and every later one failing (the machine stopped
 * there), the device crashes with the given mode, and the reopened store
 * must hold exactly the acknowledged batches, or those plus the one in
 * flight.
 */
#define KEYS 40
#define BATCHES 120

struct model {
	int len[KEYS];   /* -1: absent */
	int byte[KEYS];
};

static void model_apply(struct model *m, uint64_t *rng, bool apply_to_store, struct store *st,
			int *ret)
{
	int nops = 1 + (int)prng_below(rng, 6);

	for (int i = 0; i < nops; i++) {
		int k = (int)prng_below(rng, KEYS);
		bool del = prng_below(rng, 5) == 0;
		int len = 1 + (int)prng_below(rng, prng_below(rng, 4) == 0 ? 200000 : 3000);
		int byte = (int)prng_below(rng, 255) + 1;
		uint8_t *v;

		if (apply_to_store && *ret == 0) {
			v = malloc((size_t)len);
			memset(v, byte, (size_t)len);
			if (store_op_begin(st) < 0)
				*ret = -EIO;
			else
				*ret = store_op_end(st, del ? kv_del(st, k) : kv_put(st, k, v, len));
			free(v);
		}
		m->len[k] = del ? -1 : len;
		m->byte[k] = del ? 0 : byte;
	}
}

static struct store_stats last_run;

static bool model_matches(struct store *st, const struct model *m)
{
	for (int k = 0; k < KEYS; k++) {
		int first = -1, len = kv_get(st, k, &first);

		if (len != m->len[k] || (len > 0 && first != m->byte[k]))
			return false;
	}
	return true;
}

/* Run the workload; returns the number of batches acknowledged. */
static int run_workload(struct fixture *fx, uint64_t seed, struct model *acked,
			struct model *inflight)
{
	struct store_config cfg = { .dev = fx->dev, .super = &fx->super };
	struct store *st;
	uint64_t rng = seed;
	char why[256];
	int n = 0;

	for (int k = 0; k < KEYS; k++)
		acked->len[k] = inflight->len[k] = -1;
	if (store_open(&cfg, &st, why, sizeof(why)) < 0)
		return 0; /* the machine stopped while opening */
	for (int b = 0; b < BATCHES; b++) {
		int ret = store_begin(st);

		*inflight = *acked;
		model_apply(inflight, &rng, true, st, &ret);
		if (ret == 0)
			ret = store_commit(st);
		else
			store_rollback(st);
		if (ret < 0)
			break;
		*acked = *inflight;
		n++;
	}
	store_get_stats(st, &last_run);
	store_abandon(st);
	return n;
}

static void crash_everywhere(enum bd_crash_mode mode, uint32_t sector, uint64_t first)
{
	struct fixture fx;
	struct model acked, inflight;
	uint64_t calls0, calls;
	int runs = 0, with_inflight = 0;

	/* count the calls of a clean run */
	fixture_make(&fx, 10, sector);
	calls0 = bd_mem_calls(fx.dev);
	ck_assert_int_eq(run_workload(&fx, 77, &acked, &inflight), BATCHES);
	calls = bd_mem_calls(fx.dev) - calls0;
	{
		/* the workload goes through checkpoints and log restarts */
		struct store *st = open_store(&fx, 0);
		struct store_stats ss;

		ck_assert(model_matches(st, &acked));
		store_get_stats(st, &ss);
		ck_assert_uint_gt(ss.db_pages, 100);
		ck_assert_uint_ge(last_run.checkpoints, 2);
		store_close(st);
	}
	bd_close(fx.dev);

	/* every crash point in every mode; FUSEFS_QUICK (valgrind) thins them */
	uint64_t stride = getenv("FUSEFS_QUICK") ? 29 : 1;

	log_mute(true); /* every crash point logs the failing calls */
	for (uint64_t n = first; n <= calls; n += stride) {
		struct bd_mem_faults f;
		struct store *st;
		int got;

		fixture_make(&fx, 100 + n, sector);
		f = (struct bd_mem_faults){ .fail_nth = bd_mem_calls(fx.dev) + n, .fail_after_nth = true };
		bd_mem_set_faults(fx.dev, &f);
		got = run_workload(&fx, 77, &acked, &inflight);
		bd_mem_crash(fx.dev, mode);
		f = (struct bd_mem_faults){ 0 };
		bd_mem_set_faults(fx.dev, &f);
		st = open_store(&fx, 0);
		if (!model_matches(st, &acked)) {
			ck_assert_msg(got < BATCHES && model_matches(st, &inflight),
				      "crash at call %" PRIu64 " (mode %d): the store holds neither the %d "
				      "acknowledged batches nor those plus the one in flight", n, mode, got);
			with_inflight++;
		}
		/* and it still works */
		ck_assert_int_eq(store_begin(st), 0);
		ck_assert_int_eq(store_op_begin(st), 0);
		ck_assert_int_eq(store_op_end(st, kv_put(st, 0, "x", 1)), 0);
		ck_assert_int_eq(store_commit(st), 0);
		store_close(st);
		bd_close(fx.dev);
		runs++;
	}
	log_mute(false);
	fprintf(stderr, "store crash test: mode %d, sector %u: %d crash points of %" PRIu64
		" device calls (%" PRIu64 " checkpoints), %d kept the batch in flight\n", mode, sector,
		runs, calls, last_run.checkpoints, with_inflight);
}

START_TEST(crash_lost_everywhere)
{
	crash_everywhere(BD_CRASH_LOST, 512, 1);
}
END_TEST

START_TEST(crash_torn_everywhere)
{
	crash_everywhere(BD_CRASH_TORN, 512, 1);
}
END_TEST

START_TEST(crash_random_everywhere)
{
	crash_everywhere(BD_CRASH_RANDOM, 4096, 1);
}
END_TEST

START_TEST(crash_kept_everywhere)
{
	crash_everywhere(BD_CRASH_KEPT, 512, 1);
}
END_TEST

static int fs_fill(sqlite3 *db, void *arg)
{
	return fs_format(db, arg);
}

/*
 * A full device: writes fail with ENOSPC and change nothing, the store
 * still commits, and removing files makes room again.
 */
START_TEST(full_device)
{
	static uint8_t buf[1 << 20];
	struct fs_format_opts fo = { .root_mode = 0755 };
	struct bd_mkfs_opts mo = { .force = false };
	struct store_config cfg;
	struct fixture fx;
	struct store *st;
	struct fs *fs;
	struct fs_cred root = { 0 };
	struct fs_attr a;
	char why[256], name[16];
	int written = 0, ret = 0;

	memset(&fx, 0, sizeof(fx));
	memset(buf, 0x77, sizeof(buf));
	ck_assert_int_eq(bd_mem_open(DEV_BLOCKS, 512, 5, &fx.dev), 0);
	ck_assert_int_eq(bd_mkfs_add_slot(&fx.super, "0,127.0.0.1,7001", why, sizeof(why)), 0);
	ck_assert_msg(bd_mkfs(fx.dev, &fx.super, &mo, why, sizeof(why)) == 0, "%s", why);
	ck_assert_msg(store_create(fx.dev, &fx.super, fs_fill, &fo, why, sizeof(why)) == 0, "%s", why);
	cfg = (struct store_config){ .dev = fx.dev, .super = &fx.super };
	ck_assert_int_eq(store_open(&cfg, &st, why, sizeof(why)), 0);
	ck_assert_int_eq(fs_attach(store_db(st), NULL, &fs), 0);
	fs_set_space(fs, store_space_bytes(st));

	/* 1 MiB files, one per commit, until the store says no */
	for (int i = 0; i < 100 && ret == 0; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(store_begin(st), 0);
		ck_assert_int_eq(store_op_begin(st), 0);
		ret = fs_create(fs, &root, FS_ROOT_INO, name, strlen(name), 0644, O_CREAT | O_WRONLY, &a);
		if (ret == 0)
			ret = fs_write(fs, &root, a.ino, 0, 0, buf, sizeof(buf), &a);
		ck_assert_int_eq(store_op_end(st, ret), ret);
		ck_assert_int_eq(store_commit(st), 0); /* the failed one rolled back alone */
		if (ret == 0)
			written++;
	}
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_int_gt(written, 5);
	/* what failed left nothing: the name does not exist */
	snprintf(name, sizeof(name), "f%d", written);
	ck_assert_int_eq(fs_lookup(fs, &root, FS_ROOT_INO, name, strlen(name), &a), -ENOENT);
	/* remove a few files: room again, and it survives a reopen */
	ck_assert_int_eq(store_begin(st), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(store_op_begin(st), 0);
		ck_assert_int_eq(store_op_end(st, fs_unlink(fs, &root, FS_ROOT_INO, name, strlen(name))), 0);
	}
	ck_assert_int_eq(store_commit(st), 0);
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_int_eq(store_op_begin(st), 0);
	ret = fs_create(fs, &root, FS_ROOT_INO, "again", 5, 0644, O_CREAT | O_WRONLY, &a);
	if (ret == 0)
		ret = fs_write(fs, &root, a.ino, 0, 0, buf, sizeof(buf), &a);
	ck_assert_int_eq(store_op_end(st, ret), 0);
	ck_assert_int_eq(store_commit(st), 0);
	fs_detach(fs);
	store_close(st);
	ck_assert_int_eq(store_open(&cfg, &st, why, sizeof(why)), 0);
	ck_assert_int_eq(fs_attach(store_db(st), NULL, &fs), 0);
	ck_assert_int_eq(fs_lookup(fs, &root, FS_ROOT_INO, "again", 5, &a), 0);
	ck_assert_uint_eq(a.size, sizeof(buf));
	fs_detach(fs);
	store_close(st);
	bd_close(fx.dev);
}
END_TEST

Suite *suite_store(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("engine");

	tcase_add_test(tc, create_open_commit_reopen);
	tcase_add_test(tc, commit_is_durable);
	tcase_add_test(tc, term_gate_refuses);
	tcase_add_test(tc, term_gate_refuses_after_newer_leader_stopped);
	tcase_add_test(tc, full_device);
	suite_add_tcase(s, tc);
	tc = tcase_create("crash");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, crash_lost_everywhere);
	tcase_add_test(tc, crash_torn_everywhere);
	tcase_add_test(tc, crash_random_everywhere);
	tcase_add_test(tc, crash_kept_everywhere);
	suite_add_tcase(s, tc);
	return s;
}
