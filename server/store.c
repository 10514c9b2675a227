/*
 * store.c - the store: SQLite on the device's store regions (through
 * store_vfs.c), batches of operations committed as one transaction, and
 * the term gate in front of every commit.  See store.h and docs/store.md.
 *
 * SQLite runs with:
 *   locking_mode=EXCLUSIVE  one connection, no shared-memory file;
 *   journal_mode=WAL        a commit appends frames to the log region;
 *   synchronous=FULL        and flushes the device before COMMIT returns,
 *                           so "committed" means durable;
 *   cache_spill=OFF         no page of an open batch reaches the device
 *                           before the term gate has passed;
 *   temp_store=MEMORY       no temporary files;
 *   secure_delete=OFF       a freed page is not rewritten with zeros
 *                           (Debian builds SQLite with it on, which makes
 *                           a delete write as much as it frees);
 * and checkpoints (wal_hook) once the log holds a quarter of its region
 * (at most 1 MiB), so the log never fills while a batch of at most another
 * quarter (store_batch_bytes) is appended.
 */
#include "server/store.h"

#include "blockdev/codec.h"
#include "common/common.h"
#include "server/store_vfs.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const SUB = "store";

#define CACHE_KIB_DEFAULT (8 * 1024)

struct store {
	struct store_config cfg;
	struct bd_super super;
	struct bd_store_layout layout;
	uint64_t db_max_bytes;  /* the most the database can hold (SQLite's page limit) */
	struct svfs *vfs;
	sqlite3 *db;
	bool in_batch;
	bool op_lost;          /* an operation's savepoint could not be closed */
	bool broken;      /* a commit failed on the device: reopen to know what stuck */
	uint32_t op_depth;
	struct store_stats stats;
	mono_ns last_gate_ns;  /* the last commit's term gate */
	sqlite3_stmt *begin, *commit, *rollback, *sp, *sp_release, *sp_rollback;
	void *gate_buf;
};

/* ---- helpers ---- */

static int exec(sqlite3 *db, const char *sql, char *why, size_t whylen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		snprintf(why, whylen, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
	return 0;
}

static int step_once(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_FULL)
		return -ENOSPC;
	if (rc == SQLITE_NOMEM)
		return -ENOMEM;
	log_err(SUB, "%s: %s", sqlite3_sql(s), sqlite3_errmsg(st->db));
	return -EIO;
}

static int read_layout(struct bd_dev *dev, const struct bd_super *s, struct bd_store_layout *l,
		       char *why, size_t whylen)
{
	struct fusefs_store_header *h = bd_alloc(1);
	char cwhy[256];
	int ret;

	if (h == NULL)
		return -ENOMEM;
	ret = bd_read(dev, FUSEFS_STORE_HDR_BLKNO, h, 1);
	if (ret < 0)
		snprintf(why, whylen, "%s: reading the store header (block %d) failed: %s",
			 bd_path(dev), FUSEFS_STORE_HDR_BLKNO, errstr(ret));
	else if ((ret = bd_store_header_decode(h, s, l, cwhy, sizeof(cwhy))) < 0)
		snprintf(why, whylen, "%s: store header: %s", bd_path(dev), cwhy);
	bd_free(h);
	return ret;
}

static bool vfs_may_write(void *arg)
{
	struct store *st = arg;

	return st->cfg.lease_ok == NULL || st->cfg.lease_ok(st->cfg.lease_arg);
}

/*
 * Checkpoint past this many frames: a quarter of the log region, and at
 * most 256 (1 MiB), so the frames a checkpoint copies are still in the
 * VFS's log cache instead of being read back from the device, and one
 * checkpoint - which every request waits for - stays short: the scattered
 * pages a big delete's release frees took 40-100 ms to copy at 1024
 * frames, 10-30 ms at 256 (bench-space.sh).
 */
static uint64_t checkpoint_frames(const struct store *st)
{
	return MIN(st->layout.log_blocks / 4, (uint64_t)256);
}

/*
 * After each commit: checkpoint once the log holds checkpoint_frames
 * (what wal_autocheckpoint does, counted here).
 */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct store *st = arg;
	int log = 0, done = 0;

	(void)name;
	st->stats.log_frames = (uint64_t)frames;
	if ((uint64_t)frames < checkpoint_frames(st))
		return SQLITE_OK;
	if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) == SQLITE_OK)
		st->stats.checkpoints++;
	return SQLITE_OK; /* a failed checkpoint is retried after the next commit */
}

/*
 * SQLite's own limit on the database: its largest page count (a build
 * setting; 2^30 - 1 in Debian's 3.40) times the page size, 4 TiB with our
 * 4 KiB pages.  A region larger than that cannot be used past it.
 */
static uint64_t db_max_bytes(sqlite3 *db)
{
	sqlite3_stmt *s = NULL;
	int64_t pages = 0, size = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA max_page_count", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		pages = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		size = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

static int open_db(struct store *st, bool create, char *why, size_t whylen)
{
	char sql[256];
	int flags = st->cfg.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	int rc, ret;

	ret = svfs_create(st->cfg.dev, &st->layout, st->cfg.read_only, vfs_may_write, st, &st->vfs);
	if (ret < 0) {
		snprintf(why, whylen, "cannot register the store's SQLite VFS: %s", errstr(ret));
		return ret;
	}
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(SVFS_DB_NAME, &st->db, flags | SQLITE_OPEN_NOMUTEX, svfs_name(st->vfs));
	if (rc != SQLITE_OK) {
		snprintf(why, whylen, "%s: opening the store's database failed: %s",
			 bd_path(st->cfg.dev), st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		return -EIO;
	}
	sqlite3_extended_result_codes(st->db, 1);
	snprintf(sql, sizeof(sql),
		 "PRAGMA locking_mode=EXCLUSIVE; %s PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
		 "PRAGMA cache_spill=OFF; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=0; "
		 "PRAGMA secure_delete=OFF; PRAGMA cache_size=-%u;", create ? "PRAGMA page_size=4096;" : "",
		 st->cfg.cache_kib ? st->cfg.cache_kib : CACHE_KIB_DEFAULT);
	if (st->cfg.read_only)
		snprintf(sql, sizeof(sql), "PRAGMA locking_mode=EXCLUSIVE; PRAGMA temp_store=MEMORY; "
			 "PRAGMA mmap_size=0;");
	ret = exec(st->db, sql, why, whylen);
	if (ret < 0)
		return ret;
	if (!st->cfg.read_only)
		sqlite3_wal_hook(st->db, wal_hook, st);
	st->db_max_bytes = db_max_bytes(st->db);
	/* read the schema now: recovery runs here, and a corrupt database says so */
	return exec(st->db, "SELECT count(*) FROM sqlite_schema;", why, whylen);
}

static int prepare(struct store *st, char *why, size_t whylen)
{
	static const char *const sql[] = {
		"BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "SAVEPOINT op", "RELEASE op",
		"ROLLBACK TO op",
	};
	sqlite3_stmt **out[] = { &st->begin, &st->commit, &st->rollback, &st->sp, &st->sp_release,
				 &st->sp_rollback };

	for (size_t i = 0; i < ARRAY_SIZE(sql); i++) {
		if (sqlite3_prepare_v2(st->db, sql[i], -1, out[i], NULL) != SQLITE_OK) {
			snprintf(why, whylen, "preparing %s: %s", sql[i], sqlite3_errmsg(st->db));
			return -EIO;
		}
	}
	return 0;
}

static struct store *store_alloc(const struct store_config *cfg)
{
	struct store *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->cfg = *cfg;
	st->super = *cfg->super;
	st->cfg.super = &st->super;
	st->gate_buf = bd_alloc(FUSEFS_QUORUM_BLOCKS);
	if (st->gate_buf == NULL) {
		free(st);
		return NULL;
	}
	return st;
}

static void store_free(struct store *st)
{
	sqlite3_stmt *stmts[] = { st->begin, st->commit, st->rollback, st->sp, st->sp_release,
				  st->sp_rollback };

	for (size_t i = 0; i < ARRAY_SIZE(stmts); i++)
		sqlite3_finalize(stmts[i]);
	if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
		log_err(SUB, "closing the store's database: %s", sqlite3_errmsg(st->db));
	svfs_destroy(st->vfs);
	bd_free(st->gate_buf);
	free(st);
}

/* ---- open, create, close ---- */

int store_open(const struct store_config *cfg, struct store **out, char *why, size_t whylen)
{
	struct store *st;
	int ret;

	*out = NULL;
	st = store_alloc(cfg);
	if (st == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	ret = read_layout(cfg->dev, cfg->super, &st->layout, why, whylen);
	if (ret == 0)
		ret = open_db(st, false, why, whylen);
	if (ret == 0)
		ret = prepare(st, why, whylen);
	if (ret < 0) {
		store_free(st);
		return ret;
	}
	*out = st;
	return 0;
}

int store_create(struct bd_dev *dev, const struct bd_super *s,
		 int (*fill)(struct sqlite3 *db, void *arg), void *arg, char *why, size_t whylen)
{
	struct store_config cfg = { .dev = dev, .super = s };
	struct store *st = store_alloc(&cfg);
	int ret;

	if (st == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	ret = read_layout(dev, s, &st->layout, why, whylen);
	if (ret == 0)
		ret = open_db(st, true, why, whylen);
	if (ret == 0)
		ret = exec(st->db, "BEGIN IMMEDIATE", why, whylen);
	if (ret == 0 && fill != NULL) {
		ret = fill(st->db, arg);
		if (ret < 0)
			snprintf(why, whylen, "%s: filling the new store failed: %s", bd_path(dev),
				 errstr(ret));
	}
	if (ret == 0)
		ret = exec(st->db, "COMMIT", why, whylen);
	/* leave it checkpointed: a new filesystem starts with an empty log */
	if (ret == 0)
		ret = exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE);", why, whylen);
	store_free(st);
	return ret;
}

void store_abandon(struct store *st)
{
	if (st == NULL)
		return;
	svfs_fence(st->vfs);
	st->in_batch = false;
	store_free(st);
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->in_batch)
		store_rollback(st);
	store_free(st);
}

struct sqlite3 *store_db(struct store *st)
{
	return st->db;
}

uint64_t store_space_bytes(const struct store *st)
{
	uint64_t region = MIN(st->layout.db_blocks * FUSEFS_BLOCK_SIZE, st->db_max_bytes);
	uint64_t reserve = MIN(MAX(region / 16, (uint64_t)4 << 20), (uint64_t)1 << 30);

	return region > reserve ? region - reserve : 0;
}

uint64_t store_batch_bytes(const struct store *st)
{
	return MIN(st->layout.log_blocks * FUSEFS_BLOCK_SIZE / 4, (uint64_t)4 << 20);
}

/* ---- the term gate ---- */

static int gate_check(struct bd_dev *dev, const struct bd_super *s, uint64_t term, void *buf,
		      char *why, size_t whylen)
{
	int first = FUSEFS_QUORUM_MAX_SLOTS, last = -1, ret;

	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if (bd_slot_present(s, i)) {
			first = MIN(first, i);
			last = i;
		}
	if (last < 0)
		return 0;
	/* one read of the configured slots' blocks (they are contiguous on the device) */
	ret = bd_read(dev, bd_quorum_blkno(first), buf, (unsigned)(last - first + 1));
	if (ret < 0) {
		snprintf(why, whylen, "reading the quorum blocks failed: %s", errstr(ret));
		return ret;
	}
	for (int i = first; i <= last; i++) {
		const struct fusefs_quorum_block *b =
			(const void *)((uint8_t *)buf + (size_t)(i - first) * FUSEFS_BLOCK_SIZE);
		struct bd_qblock qb;
		char bwhy[160];

		if (!bd_slot_present(s, i))
			continue;
		/*
		 * A block that does not verify cannot show a newer leader: a new
		 * leader's ELECT is a fresh, whole write of its own block.
		 */
		if (bd_qblock_decode(b, s->fsid, bd_quorum_blkno(i), &qb, bwhy, sizeof(bwhy)) < 0)
			continue;
		if (qb.ev[FUSEFS_QEV_ELECT].term > term) {
			snprintf(why, whylen, "slot %d was elected in term %" PRIu64 ", above ours (%" PRIu64
				 ")", i, qb.ev[FUSEFS_QEV_ELECT].term, term);
			return -ESTALE;
		}
	}
	return 0;
}

int store_gate_check(struct bd_dev *dev, const struct bd_super *s, uint64_t term, char *why,
		     size_t whylen)
{
	void *blocks = bd_alloc(FUSEFS_QUORUM_BLOCKS);
	int ret;

	if (blocks == NULL)
		return -ENOMEM;
	ret = gate_check(dev, s, term, blocks, why, whylen);
	bd_free(blocks);
	return ret;
}

static void fence(struct store *st, const char *why)
{
	if (!st->stats.fenced)
		log_warn(SUB, "term %" PRIu64 ": not committing, and writing nothing more: %s",
			 st->cfg.term, why);
	st->stats.fenced = true;
	svfs_fence(st->vfs);
}

/* ---- batches ---- */

int store_begin(struct store *st)
{
	int ret;

	if (st->stats.fenced)
		return -ESTALE;
	if (st->broken)
		return -EIO;
	if (st->in_batch)
		return -EBUSY;
	ret = step_once(st, st->begin);
	if (ret == 0) {
		st->in_batch = true;
		st->op_lost = false;
	}
	return ret;
}

int store_op_begin(struct store *st)
{
	if (!st->in_batch)
		return -EINVAL;
	return step_once(st, st->sp);
}

int store_op_end(struct store *st, int ret)
{
	st->stats.ops++;
	if (ret < 0) {
		st->stats.ops_failed++;
		if (step_once(st, st->sp_rollback) < 0) {
			st->op_lost = true;
			return -EIO;
		}
	}
	if (step_once(st, st->sp_release) < 0) {
		st->op_lost = true;
		return -EIO;
	}
	/*
	 * SQLite may have rolled the whole transaction back: after a full
	 * store that is the op's own answer (the batch goes again without it),
	 * after anything else a failure of the store.
	 */
	if (sqlite3_get_autocommit(st->db)) {
		st->op_lost = true;
		return store_refusal(ret) ? ret : -EIO;
	}
	return ret;
}

bool store_refusal(int err)
{
	return err == -ENOSPC || err == -ENOMEM;
}

bool store_batch_intact(const struct store *st)
{
	return st->in_batch && !st->op_lost;
}

bool store_read_failed(const struct store *st)
{
	return svfs_read_failed(st->vfs);
}

void store_rollback(struct store *st)
{
	if (!st->in_batch)
		return;
	if (!sqlite3_get_autocommit(st->db) && step_once(st, st->rollback) < 0)
		log_err(SUB, "rolling back a batch failed: %s", sqlite3_errmsg(st->db));
	st->in_batch = false;
}

int store_commit(struct store *st)
{
	char why[256];
	int ret;

	if (!st->in_batch)
		return -EINVAL;
	if (st->cfg.term != 0) {
		mono_ns t0 = mono_now();

		ret = gate_check(st->cfg.dev, &st->super, st->cfg.term, st->gate_buf, why, sizeof(why));
		st->last_gate_ns = mono_now() - t0;
		st->stats.gate_reads++;
		st->stats.gate_ns += (uint64_t)st->last_gate_ns;
		if (ret == -ESTALE)
			fence(st, why);
		if (ret < 0) {
			if (ret != -ESTALE)
				log_err(SUB, "term gate: %s; abandoning the batch", why);
			store_rollback(st);
			return ret;
		}
	}
	/* the lease: the VFS asks it before each device write the commit makes */
	ret = step_once(st, st->commit);
	if (ret < 0) {
		if (svfs_fenced(st->vfs)) {
			fence(st, "our lease went while committing");
			ret = -ESTALE;
		} else if (store_refusal(ret)) {
			/*
			 * More than the log region (or memory) can take: SQLite
			 * rolled it back, and the frames it wrote follow the last
			 * commit frame, so neither it nor a recovery reads them.
			 */
			log_warn(SUB, "a transaction was refused: %s", sqlite3_errmsg(st->db));
		} else {
			/* the device failed: what reached it is known only after recovery */
			st->broken = true;
			log_err(SUB, "commit failed (%s): the store must be reopened",
				sqlite3_errmsg(st->db));
		}
		store_rollback(st);
		st->in_batch = false;
		return ret;
	}
	st->in_batch = false;
	st->stats.commits++;
	return 0;
}

mono_ns store_last_gate_ns(const struct store *st)
{
	return st->last_gate_ns;
}

int store_checkpoint(struct store *st)
{
	int log = 0, done = 0, rc;

	if (st->stats.fenced)
		return -ESTALE;
	rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
	if (rc != SQLITE_OK) {
		log_err(SUB, "checkpoint failed: %s", sqlite3_errmsg(st->db));
		return rc == SQLITE_FULL ? -ENOSPC : -EIO;
	}
	st->stats.checkpoints++;
	return 0;
}

static int64_t pragma_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

void store_get_stats(struct store *st, struct store_stats *out)
{
	struct svfs_stats v;

	*out = st->stats;
	svfs_get_stats(st->vfs, &v);
	out->log_writes = v.log_writes;
	out->db_writes = v.db_writes;
	out->syncs = v.syncs;
	out->log_reads = v.log_reads;
	out->db_reads = v.db_reads;
	out->db_pages = (uint64_t)MAX(pragma_int(st->db, "PRAGMA page_count"), 0);
	out->free_pages = (uint64_t)MAX(pragma_int(st->db, "PRAGMA freelist_count"), 0);
}

