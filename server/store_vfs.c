/*
 * store_vfs.c - an SQLite VFS whose files are fixed regions of the
 * metadata device.
 *
 *   "fusefs.db"          the database region
 *   "fusefs.db-wal"      the log region (SQLite's write-ahead log)
 *   "fusefs.db-journal"  the log region too: a rollback journal is only
 *                        ever used while mkfs creates the database, never
 *                        at the same time as the log
 *
 * Nothing else can be opened: no temporary files, no shared-memory file
 * (the store runs SQLite in exclusive locking mode, which keeps the WAL
 * index in heap memory), nothing next to the device and nothing in /tmp.
 *
 * Sizes.  A region is fixed; a file's logical size is what SQLite wrote:
 *  - the database's at open is the size in its header (page count times
 *    page size, bytes 28..31 and 16..17), which SQLite keeps current in
 *    the same transaction as any change of size; 0 when there is no
 *    database yet;
 *  - the log's at open is the whole region when block 0 holds a WAL (or
 *    journal) header, else 0.  SQLite's recovery reads frames until the
 *    first whose salt or checksum does not match, so older frames left
 *    further on are never mistaken for new ones.
 * A write beyond a region is SQLITE_FULL.
 *
 * Writes.  SQLite writes pages (4096 bytes, aligned) to the database and
 * frames (24 + 4096 bytes, not aligned) to the log.  Each file keeps one
 * run of contiguous dirty blocks in memory; a write that extends the run
 * joins it, anything else writes the run out first.  Partially written
 * blocks are completed from the device (or from the last block written
 * out, kept for the frame that starts inside it) before they join the run.
 * xSync writes the run out and then flushes the device: only after the
 * flush is anything promised durable, as SQLite expects.  (When the run
 * holds everything written since the last sync, as it does for a commit
 * that fits in it, xSync is one durable write instead: RWF_DSYNC.)  Rewriting the
 * unchanged bytes of a block with the same values is why the VFS can
 * claim SQLITE_IOCAP_POWERSAFE_OVERWRITE: a write torn at sector
 * granularity leaves every sector either old or new, and for bytes SQLite
 * did not change both are equal.  The sector size reported is the
 * device's logical block size.
 *
 * Fencing.  Before every device write or flush the VFS asks may_write (the
 * server's lease); the first "no" fences the VFS for good: every later
 * write fails and nothing more reaches the device.
 */
#include "server/store_vfs.h"

#include "common/common.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define RUN_MAX_BLOCKS 256 /* 1 MiB written out at a time at most */
/*
 * Block caches, direct-mapped, one per region, holding what was last
 * written or read there.  The log's: a checkpoint reads back the frames it
 * copies into the database, and without it every frame would be a device
 * read; the log is written in order, so it holds everything since the
 * last checkpoint (store.c checkpoints well before CACHE_BLOCKS frames).
 * The database's: a miss reads up to READ_AHEAD_MAX blocks at once, so the
 * pages of a file's chunks, which are mostly neighbours, come in one read.
 * The window starts at READ_AHEAD_MIN and doubles while each miss falls
 * at or a little past the end of the last read (a file read in order: its
 * chunks' pages lie mostly in order, a few other pages between them), so
 * a big sequential read costs one device read per MiB, and a lookup's
 * miss elsewhere still reads 128 KiB.
 */
#define CACHE_BLOCKS 2048 /* 8 MiB each */
#define READ_AHEAD_MIN 32
#define READ_AHEAD_MAX 256
#define BLK FUSEFS_BLOCK_SIZE

static const char *const SUB = "store";

enum vkind { VK_DB, VK_WAL, VK_JOURNAL };

struct svfs {
	sqlite3_vfs vfs;
	sqlite3_vfs *base; /* the default VFS, for time, randomness and sleep */
	char name[64];
	struct bd_dev *dev;
	struct bd_store_layout layout;
	bool read_only;
	bool (*may_write)(void *arg);
	void *arg;
	atomic_bool fenced;
	atomic_bool read_failed;  /* the device failed a read (sticky) */
	struct svfs_stats stats;
	struct vfile *open_log; /* the open WAL or journal, if any */
	struct bcache {
		uint8_t *data;      /* CACHE_BLOCKS blocks */
		uint64_t *tag;      /* the region block each holds, or UINT64_MAX */
	} cache[2];             /* [0] the database region, [1] the log region */
	uint8_t *ra;            /* READ_AHEAD_MAX blocks for read-ahead */
	uint64_t ra_next;       /* the database block after the last read-ahead */
	uint32_t ra_window;     /* its next size, READ_AHEAD_MIN..READ_AHEAD_MAX */
};

struct vfile {
	sqlite3_file base;
	struct svfs *v;
	enum vkind kind;
	uint64_t region_blkno;
	uint64_t region_blocks;
	int64_t size;          /* logical size in bytes */
	int64_t frontier;      /* log: the end of the newest generation's writes */
	bool unsynced;         /* runs were written out since the last sync */
	int lock;
	/* the dirty run: blocks [run_blk, run_blk + run_n) of the region */
	uint8_t *run;
	uint64_t run_blk;
	uint32_t run_n;
	/* the last block written out, for a write that starts inside it */
	uint8_t *tail;
	uint64_t tail_blk;
	bool tail_valid;
	/* a scratch buffer for reads */
	uint8_t *scratch;
	size_t scratch_blocks;
};

static const uint8_t WAL_MAGIC_BE[3] = { 0x37, 0x7f, 0x06 }; /* 0x377f0682 or 0x377f0683 */
static const uint8_t JOURNAL_MAGIC[8] = { 0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7 };
static const char DB_MAGIC[16] = "SQLite format 3";

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- device access ---- */

static int sqlite_err(int err, int ioerr)
{
	if (err == -ENOSPC || err == -ERANGE)
		return SQLITE_FULL;
	if (err == -ENOMEM)
		return SQLITE_IOERR_NOMEM;
	return ioerr;
}

/* May we write now?  The first refusal fences the VFS for good. */
static bool write_allowed(struct svfs *v)
{
	if (v->read_only || atomic_load(&v->fenced))
		return false;
	if (v->may_write != NULL && !v->may_write(v->arg)) {
		if (!atomic_exchange(&v->fenced, true))
			log_warn(SUB, "the lease is gone: fenced, writing nothing more to %s",
				 bd_path(v->dev));
		return false;
	}
	return true;
}

static struct bcache *cache_of(struct vfile *f)
{
	return &f->v->cache[f->kind == VK_DB ? 0 : 1];
}

static void cache_put(struct bcache *c, uint64_t blk, const uint8_t *data)
{
	uint32_t slot = (uint32_t)(blk % CACHE_BLOCKS);

	memcpy(c->data + (size_t)slot * BLK, data, BLK);
	c->tag[slot] = blk;
}

static bool cache_get(struct bcache *c, uint64_t blk, uint8_t *out)
{
	uint32_t slot = (uint32_t)(blk % CACHE_BLOCKS);

	if (c->tag[slot] != blk)
		return false;
	memcpy(out, c->data + (size_t)slot * BLK, BLK);
	return true;
}

/* Write the run out; durable: as a durable write (no flush needed after it). */
static int run_write(struct vfile *f, bool durable)
{
	struct svfs *v = f->v;
	int ret;

	if (f->run_n == 0)
		return SQLITE_OK;
	if (!write_allowed(v)) {
		v->stats.refused++;
		return SQLITE_IOERR_WRITE;
	}
	ret = bd_write(v->dev, f->region_blkno + f->run_blk, f->run, f->run_n,
		       durable ? BD_WRITE_DURABLE : 0);
	if (ret < 0) {
		log_err(SUB, "%s: writing %u blocks at block %" PRIu64 " of the %s region failed: %s",
			bd_path(v->dev), f->run_n, f->run_blk, f->kind == VK_DB ? "database" : "log",
			errstr(ret));
		return sqlite_err(ret, SQLITE_IOERR_WRITE);
	}
	if (f->kind == VK_DB) {
		v->stats.db_writes++;
		v->stats.db_bytes += (uint64_t)f->run_n * BLK;
	} else {
		v->stats.log_writes++;
		v->stats.log_bytes += (uint64_t)f->run_n * BLK;
	}
	for (uint32_t i = 0; i < f->run_n; i++)
		cache_put(cache_of(f), f->run_blk + i, f->run + (size_t)i * BLK);
	memcpy(f->tail, f->run + (size_t)(f->run_n - 1) * BLK, BLK);
	f->tail_blk = f->run_blk + f->run_n - 1;
	f->tail_valid = true;
	f->run_n = 0;
	if (!durable)
		f->unsynced = true;
	return SQLITE_OK;
}

static int run_flush(struct vfile *f)
{
	return run_write(f, false);
}

static int dev_read(struct vfile *f, uint64_t blk, uint32_t n, uint8_t *buf)
{
	int ret = bd_read(f->v->dev, f->region_blkno + blk, buf, n);

	if (f->kind == VK_DB)
		f->v->stats.db_reads++;
	else
		f->v->stats.log_reads++;


	if (ret < 0) {
		atomic_store(&f->v->read_failed, true);
		log_err(SUB, "%s: reading %u blocks at block %" PRIu64 " of the %s region failed: %s",
			bd_path(f->v->dev), n, blk, f->kind == VK_DB ? "database" : "log", errstr(ret));
		return sqlite_err(ret, SQLITE_IOERR_READ);
	}
	return SQLITE_OK;
}

static bool in_run(const struct vfile *f, uint64_t blk)
{
	return f->run_n > 0 && blk >= f->run_blk && blk < f->run_blk + f->run_n;
}

/* The current content of block blk (not in the run) into buf. */
/*
 * The current content of block blk, which a write covers only in part.
 * at_frontier: the block's only other bytes lie past the end of a write
 * that extends the log - an older generation's frames or room for the
 * next frame, never read - so they may as well be zeros.  (The log is
 * written in order from its header at offset 0; SQLite rewrites a frame
 * of the open transaction in place only before the frontier.)
 */
static int block_fetch(struct vfile *f, uint64_t blk, uint8_t *buf, bool at_frontier)
{
	if (f->tail_valid && blk == f->tail_blk) {
		memcpy(buf, f->tail, BLK);
		return SQLITE_OK;
	}
	if (cache_get(cache_of(f), blk, buf))
		return SQLITE_OK;
	if ((int64_t)(blk * BLK) >= f->size || (f->kind != VK_DB && at_frontier)) {
		memset(buf, 0, BLK); /* nothing SQLite reads */
		return SQLITE_OK;
	}
	return dev_read(f, blk, 1, buf);
}

/*
 * A miss at block b: read it and the blocks after it (up to the window, the
 * logical end and the region's end) in one read, into the cache.  Blocks
 * the run holds are newer than the device's: not cached from the read.
 */
static int read_ahead(struct vfile *f, uint64_t b, uint8_t *dst)
{
	struct svfs *v = f->v;
	uint64_t size_blocks = ((uint64_t)f->size + BLK - 1) / BLK, end;
	int rc;

	if (f->kind == VK_DB) {
		bool onward = b >= v->ra_next && b - v->ra_next < READ_AHEAD_MAX;

		v->ra_window = onward ? MIN(v->ra_window * 2, READ_AHEAD_MAX) : READ_AHEAD_MIN;
		end = MIN(b + v->ra_window, f->region_blocks);
	} else {
		end = b + 1; /* the log is read back only by checkpoints: the cache has it */
	}
	end = MAX(MIN(end, size_blocks), b + 1);
	rc = dev_read(f, b, (uint32_t)(end - b), v->ra);
	if (rc != SQLITE_OK)
		return rc;
	if (f->kind == VK_DB)
		v->ra_next = end;
	for (uint64_t i = b; i < end; i++)
		if (!in_run(f, i))
			cache_put(cache_of(f), i, v->ra + (i - b) * BLK);
	memcpy(dst, v->ra, BLK);
	return SQLITE_OK;
}

/* ---- io methods ---- */

static int v_close(sqlite3_file *file)
{
	struct vfile *f = (struct vfile *)file;
	int rc = SQLITE_OK;

	if (f->run_n > 0 && !atomic_load(&f->v->fenced))
		rc = run_flush(f);
	if (f->v->open_log == f)
		f->v->open_log = NULL;
	bd_free(f->run);
	bd_free(f->tail);
	free(f->scratch);
	return rc;
}

static int v_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
	struct vfile *f = (struct vfile *)file;
	uint8_t *o = out;
	int64_t avail = f->size - off;
	uint64_t first, last, nblk;
	int rc;

	if (amt <= 0 || off < 0)
		return SQLITE_IOERR_READ;
	if (avail <= 0) {
		memset(out, 0, (size_t)amt);
		return SQLITE_IOERR_SHORT_READ;
	}
	if (avail < amt) {
		rc = v_read(file, out, (int)avail, off);
		if (rc != SQLITE_OK)
			return rc;
		memset(o + avail, 0, (size_t)(amt - avail));
		return SQLITE_IOERR_SHORT_READ;
	}
	first = (uint64_t)off / BLK;
	last = ((uint64_t)off + (uint64_t)amt - 1) / BLK;
	nblk = last - first + 1;
	if (f->scratch_blocks < nblk) {
		free(f->scratch);
		f->scratch = malloc(nblk * BLK);
		f->scratch_blocks = f->scratch ? nblk : 0;
		if (f->scratch == NULL)
			return SQLITE_IOERR_NOMEM;
	}
	/* what the run, the tail or the cache hold; the rest from the device */
	for (uint64_t b = first; b <= last; b++) {
		uint8_t *dst = f->scratch + (b - first) * BLK;

		if (in_run(f, b))
			memcpy(dst, f->run + (b - f->run_blk) * BLK, BLK);
		else if (f->tail_valid && b == f->tail_blk)
			memcpy(dst, f->tail, BLK);
		else if (!cache_get(cache_of(f), b, dst) && (rc = read_ahead(f, b, dst)) != SQLITE_OK)
			return rc;
	}
	memcpy(out, f->scratch + (uint64_t)off % BLK, (size_t)amt);
	return SQLITE_OK;
}

static int v_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
	struct vfile *f = (struct vfile *)file;
	const uint8_t *d = data;
	uint64_t first, last;
	bool frontier;
	int rc;

	if (amt <= 0 || off < 0)
		return SQLITE_IOERR_WRITE;
	if ((uint64_t)off + (uint64_t)amt > f->region_blocks * BLK) {
		log_err(SUB, "%s: the %s region is full (%" PRIu64 " blocks)", bd_path(f->v->dev),
			f->kind == VK_DB ? "database" : "log", f->region_blocks);
		return SQLITE_FULL;
	}
	if (f->v->read_only || atomic_load(&f->v->fenced)) {
		f->v->stats.refused++;
		return SQLITE_IOERR_WRITE;
	}
	first = (uint64_t)off / BLK;
	last = ((uint64_t)off + (uint64_t)amt - 1) / BLK;
	if (last - first + 1 > RUN_MAX_BLOCKS)
		return SQLITE_IOERR_WRITE; /* SQLite never writes that much at once */

	/* join the run, or write it out and start a new one here */
	if (f->run_n == 0 || first < f->run_blk || first > f->run_blk + f->run_n ||
	    last >= f->run_blk + RUN_MAX_BLOCKS) {
		rc = run_flush(f);
		if (rc != SQLITE_OK)
			return rc;
		f->run_blk = first;
	}
	/* a write at 0 starts the log's new generation (its header) */
	if (f->kind != VK_DB && off == 0)
		f->frontier = 0;
	frontier = f->kind != VK_DB && off + amt >= f->frontier;
	/* blocks new to the run start as what is there now */
	for (uint64_t b = f->run_blk + f->run_n; b <= last; b++) {
		uint8_t *dst = f->run + (b - f->run_blk) * BLK;
		uint64_t bstart = b * BLK;
		bool whole = bstart >= (uint64_t)off && bstart + BLK <= (uint64_t)off + (uint64_t)amt;

		if (!whole) {
			rc = block_fetch(f, b, dst, bstart >= (uint64_t)off && frontier);
			if (rc != SQLITE_OK)
				return rc;
		}
		f->run_n++;
	}
	memcpy(f->run + ((uint64_t)off - f->run_blk * BLK), d, (size_t)amt);
	if (off + amt > f->frontier)
		f->frontier = off + amt;
	if (off + amt > f->size)
		f->size = off + amt;
	/* a block written again is no longer what the tail holds */
	if (f->tail_valid && f->tail_blk >= first && f->tail_blk <= last)
		f->tail_valid = false;
	return SQLITE_OK;
}

static int v_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct vfile *f = (struct vfile *)file;

	if (size < 0 || (uint64_t)size > f->region_blocks * BLK)
		return SQLITE_IOERR_TRUNCATE;
	if (f->kind != VK_DB && size > 0)
		return SQLITE_OK; /* a log region never shrinks; SQLite only asks to save space */
	if (size == 0 && f->kind != VK_DB) {
		/* an empty log: its header goes, in the next write-out */
		static const uint8_t zero[64];
		int rc = v_write(file, zero, sizeof(zero), 0);

		if (rc != SQLITE_OK)
			return rc;
	}
	f->size = size;
	return SQLITE_OK;
}

static int v_sync(sqlite3_file *file, int flags)
{
	struct vfile *f = (struct vfile *)file;
	struct svfs *v = f->v;
	int rc, ret;

	(void)flags;
	/*
	 * Everything since the last sync is in the run (a commit's frames,
	 * usually): one durable write makes it so, no flush round trip after.
	 */
	if (!f->unsynced && f->run_n > 0) {
		rc = run_write(f, true);
		if (rc == SQLITE_OK)
			v->stats.syncs++;
		return rc;
	}
	rc = run_flush(f);
	if (rc != SQLITE_OK)
		return rc;
	if (!write_allowed(v)) {
		v->stats.refused++;
		return SQLITE_IOERR_FSYNC;
	}
	ret = bd_flush(v->dev);
	if (ret < 0) {
		log_err(SUB, "%s: flush failed: %s", bd_path(v->dev), errstr(ret));
		return SQLITE_IOERR_FSYNC;
	}
	f->unsynced = false;
	v->stats.syncs++;
	return SQLITE_OK;
}

static int v_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	*size = ((struct vfile *)file)->size;
	return SQLITE_OK;
}

/* One writer, made sure of by fencing: locks only record the level. */
static int v_lock(sqlite3_file *file, int level)
{
	((struct vfile *)file)->lock = level;
	return SQLITE_OK;
}

static int v_unlock(sqlite3_file *file, int level)
{
	((struct vfile *)file)->lock = level;
	return SQLITE_OK;
}

static int v_check_reserved(sqlite3_file *file, int *out)
{
	*out = ((struct vfile *)file)->lock >= SQLITE_LOCK_RESERVED;
	return SQLITE_OK;
}

static int v_file_control(sqlite3_file *file, int op, void *arg)
{
	(void)file;
	(void)arg;
	if (op == SQLITE_FCNTL_SIZE_HINT)
		return SQLITE_OK; /* regions are fixed */
	return SQLITE_NOTFOUND;
}

static int v_sector_size(sqlite3_file *file)
{
	return (int)bd_logical_block_size(((struct vfile *)file)->v->dev);
}

static int v_device_characteristics(sqlite3_file *file)
{
	(void)file;
	return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods vfile_methods = {
	.iVersion = 1,
	.xClose = v_close,
	.xRead = v_read,
	.xWrite = v_write,
	.xTruncate = v_truncate,
	.xSync = v_sync,
	.xFileSize = v_file_size,
	.xLock = v_lock,
	.xUnlock = v_unlock,
	.xCheckReservedLock = v_check_reserved,
	.xFileControl = v_file_control,
	.xSectorSize = v_sector_size,
	.xDeviceCharacteristics = v_device_characteristics,
};

/* ---- the VFS ---- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int kind_of(const char *name, enum vkind *k)
{
	if (name == NULL)
		return -1;
	if (ends_with(name, SVFS_DB_NAME "-wal"))
		*k = VK_WAL;
	else if (ends_with(name, SVFS_DB_NAME "-journal"))
		*k = VK_JOURNAL;
	else if (ends_with(name, SVFS_DB_NAME))
		*k = VK_DB;
	else
		return -1;
	return 0;
}

/* Block 0 of the log region: does it start a WAL or a journal? */
static int log_header(struct svfs *v, bool *wal, bool *journal)
{
	uint8_t *b = bd_alloc(1);
	int ret;

	if (b == NULL)
		return -ENOMEM;
	ret = bd_read(v->dev, v->layout.log_blkno, b, 1);
	if (ret == 0) {
		*wal = memcmp(b, WAL_MAGIC_BE, 3) == 0 && (b[3] == 0x82 || b[3] == 0x83);
		*journal = memcmp(b, JOURNAL_MAGIC, sizeof(JOURNAL_MAGIC)) == 0;
	}
	bd_free(b);
	return ret;
}

/* The database's size from its header in block 0 of its region. */
static int db_size(struct svfs *v, int64_t *size)
{
	uint8_t *b = bd_alloc(1);
	uint32_t page, pages;
	int ret;

	if (b == NULL)
		return -ENOMEM;
	*size = 0;
	ret = bd_read(v->dev, v->layout.db_blkno, b, 1);
	if (ret == 0 && memcmp(b, DB_MAGIC, sizeof(DB_MAGIC)) == 0) {
		page = (uint32_t)b[16] << 8 | b[17];
		if (page == 1)
			page = 65536;
		pages = be32(b + 28);
		/* the header's count is valid when the two change counters agree */
		if (be32(b + 24) != be32(b + 92) || page < 512 || (page & (page - 1)) != 0)
			*size = (int64_t)(v->layout.db_blocks * BLK);
		else
			*size = (int64_t)pages * page;
		if ((uint64_t)*size > v->layout.db_blocks * BLK) {
			log_err(SUB, "%s: database region: size check failed: the database header says "
				"%" PRIu32 " pages of %" PRIu32 " bytes, the region holds %" PRIu64
				" blocks", bd_path(v->dev), pages, page, v->layout.db_blocks);
			ret = -EIO;
		}
	}
	bd_free(b);
	return ret;
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
		    int *out_flags)
{
	struct svfs *v = vfs->pAppData;
	struct vfile *f = (struct vfile *)file;
	enum vkind kind;
	bool wal = false, journal = false;
	int ret;

	memset(f, 0, sizeof(*f));
	if (kind_of(name, &kind) < 0 || (flags & SQLITE_OPEN_DELETEONCLOSE)) {
		log_err(SUB, "SQLite asked for a file the store does not have: %s",
			name ? name : "(temporary)");
		return SQLITE_CANTOPEN;
	}
	if (v->read_only && (flags & SQLITE_OPEN_READWRITE) && kind == VK_DB)
		flags = (flags & ~SQLITE_OPEN_READWRITE) | SQLITE_OPEN_READONLY;
	f->v = v;
	f->kind = kind;
	f->run = bd_alloc(RUN_MAX_BLOCKS);
	f->tail = bd_alloc(1);
	if (f->run == NULL || f->tail == NULL) {
		bd_free(f->run);
		bd_free(f->tail);
		return SQLITE_NOMEM;
	}
	if (kind == VK_DB) {
		f->region_blkno = v->layout.db_blkno;
		f->region_blocks = v->layout.db_blocks;
		ret = db_size(v, &f->size);
	} else {
		f->region_blkno = v->layout.log_blkno;
		f->region_blocks = v->layout.log_blocks;
		ret = log_header(v, &wal, &journal);
		if ((kind == VK_WAL && wal) || (kind == VK_JOURNAL && journal))
			f->size = (int64_t)(f->region_blocks * BLK);
		v->open_log = f;
	}
	if (ret < 0) {
		if (v->open_log == f)
			v->open_log = NULL;
		bd_free(f->run);
		bd_free(f->tail);
		return SQLITE_IOERR_READ;
	}
	if (out_flags)
		*out_flags = flags;
	f->base.pMethods = &vfile_methods;
	return SQLITE_OK;
}

/* Deleting the log: make its header invalid, durably. */
static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	struct svfs *v = vfs->pAppData;
	enum vkind kind;
	uint8_t *b;
	int ret;

	(void)sync_dir;
	if (kind_of(name, &kind) < 0 || kind == VK_DB)
		return SQLITE_IOERR_DELETE;
	if (v->read_only)
		return SQLITE_OK;
	if (!write_allowed(v)) {
		v->stats.refused++;
		return SQLITE_IOERR_DELETE;
	}
	b = bd_alloc(1);
	if (b == NULL)
		return SQLITE_IOERR_NOMEM;
	ret = bd_write(v->dev, v->layout.log_blkno, b, 1, BD_WRITE_DURABLE);
	if (ret == 0)
		cache_put(&v->cache[1], 0, b);
	bd_free(b);
	if (ret < 0) {
		log_err(SUB, "%s: clearing the log header failed: %s", bd_path(v->dev), errstr(ret));
		return SQLITE_IOERR_DELETE;
	}
	v->stats.log_writes++;
	v->stats.log_bytes += BLK;
	return SQLITE_OK;
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	struct svfs *v = vfs->pAppData;
	bool wal = false, journal = false;
	enum vkind kind;
	int64_t size;

	*out = 0;
	if (kind_of(name, &kind) < 0)
		return SQLITE_OK;
	if (flags == SQLITE_ACCESS_READWRITE && v->read_only)
		return SQLITE_OK;
	if (kind == VK_DB) {
		if (db_size(v, &size) < 0)
			return SQLITE_IOERR_ACCESS;
		*out = size > 0;
		return SQLITE_OK;
	}
	if (v->open_log != NULL) { /* what the open file says, not the device */
		*out = v->open_log->kind == kind && v->open_log->size > 0;
		return SQLITE_OK;
	}
	if (log_header(v, &wal, &journal) < 0)
		return SQLITE_IOERR_ACCESS;
	*out = kind == VK_WAL ? wal : journal;
	return SQLITE_OK;
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	if ((int)strlen(name) >= n)
		return SQLITE_CANTOPEN;
	memcpy(out, name, strlen(name) + 1);
	return SQLITE_OK;
}

static int vfs_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	sqlite3_vfs *base = ((struct svfs *)vfs->pAppData)->base;

	return base->xRandomness(base, n, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int us)
{
	sqlite3_vfs *base = ((struct svfs *)vfs->pAppData)->base;

	return base->xSleep(base, us);
}

static int vfs_current_time(sqlite3_vfs *vfs, double *out)
{
	sqlite3_vfs *base = ((struct svfs *)vfs->pAppData)->base;

	return base->xCurrentTime(base, out);
}

static int vfs_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	if (n > 0)
		out[0] = '\0';
	return 0;
}

static void svfs_free(struct svfs *v)
{
	for (int i = 0; i < 2; i++) {
		free(v->cache[i].data);
		free(v->cache[i].tag);
	}
	bd_free(v->ra);
	free(v);
}

int svfs_create(struct bd_dev *dev, const struct bd_store_layout *l, bool read_only,
		bool (*may_write)(void *arg), void *arg, struct svfs **out)
{
	static atomic_uint serial;
	struct svfs *v;
	int rc;

	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	v->base = sqlite3_vfs_find(NULL);
	if (v->base == NULL) {
		free(v);
		return -ENOSYS;
	}
	for (int i = 0; i < 2; i++) {
		v->cache[i].data = malloc((size_t)CACHE_BLOCKS * BLK);
		v->cache[i].tag = malloc(CACHE_BLOCKS * sizeof(*v->cache[i].tag));
		if (v->cache[i].tag != NULL)
			memset(v->cache[i].tag, 0xff, CACHE_BLOCKS * sizeof(*v->cache[i].tag));
	}
	v->ra = bd_alloc(READ_AHEAD_MAX);
	v->ra_window = READ_AHEAD_MIN;
	if (v->cache[0].data == NULL || v->cache[0].tag == NULL || v->cache[1].data == NULL ||
	    v->cache[1].tag == NULL || v->ra == NULL) {
		svfs_free(v);
		return -ENOMEM;
	}
	v->dev = dev;
	v->layout = *l;
	v->read_only = read_only;
	v->may_write = may_write;
	v->arg = arg;
	snprintf(v->name, sizeof(v->name), "fusefs-%u", atomic_fetch_add(&serial, 1));
	v->vfs = (sqlite3_vfs){
		.iVersion = 1,
		.szOsFile = sizeof(struct vfile),
		.mxPathname = 256,
		.zName = v->name,
		.pAppData = v,
		.xOpen = vfs_open,
		.xDelete = vfs_delete,
		.xAccess = vfs_access,
		.xFullPathname = vfs_full_pathname,
		.xRandomness = vfs_randomness,
		.xSleep = vfs_sleep,
		.xCurrentTime = vfs_current_time,
		.xGetLastError = vfs_last_error,
	};
	rc = sqlite3_vfs_register(&v->vfs, 0);
	if (rc != SQLITE_OK) {
		svfs_free(v);
		return -ENOMEM;
	}
	*out = v;
	return 0;
}

void svfs_destroy(struct svfs *v)
{
	if (v == NULL)
		return;
	sqlite3_vfs_unregister(&v->vfs);
	svfs_free(v);
}

const char *svfs_name(const struct svfs *v)
{
	return v->name;
}

void svfs_fence(struct svfs *v)
{
	atomic_store(&v->fenced, true);
}

bool svfs_fenced(const struct svfs *v)
{
	return atomic_load(&v->fenced);
}

bool svfs_read_failed(const struct svfs *v)
{
	return atomic_load(&v->read_failed);
}

void svfs_get_stats(const struct svfs *v, struct svfs_stats *out)
{
	*out = v->stats;
}
