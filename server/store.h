/*
 * store.h - the filesystem's store on the metadata device: SQLite through
 * a VFS of our own (store_vfs.c) that maps the database and its
 * write-ahead log onto the fixed regions the store header names, doing
 * every read and write through blockdev/.  docs/store.md explains the
 * layout, what a commit writes in which order, and why an acknowledged
 * commit survives a crash at any instant.
 *
 * One writer: the server's executor thread owns a store.  It applies a
 * batch of operations, each inside store_op_begin/store_op_end (a
 * SAVEPOINT, so an operation that fails changes nothing and the rest of
 * the batch still commits), then store_commit makes the whole batch
 * durable in one WAL append and one flush.
 *
 * The term gate: before a batch is made durable, store_commit reads the
 * quorum blocks with O_DIRECT and checks that no slot has recorded an
 * ELECT in a term greater than the one we serve in.  The lease is asked
 * by the VFS, before every device write (the commit's and a checkpoint's),
 * through the one callback lease_ok.  If either fails, the batch is
 * abandoned and the store is fenced: it writes nothing more, ever (every
 * later call that would write returns -ESTALE).  What is left of the
 * window is the time between the VFS's check and the write reaching the
 * device (docs/store.md).
 */
#ifndef FUSEFS_STORE_H
#define FUSEFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"
#include "common/common.h"

struct sqlite3;
struct store;

struct store_config {
	struct bd_dev *dev;
	const struct bd_super *super;
	/*
	 * The term we serve in: store_commit refuses once any quorum block
	 * shows an ELECT above it.  0 turns the gate off (mkfs, print, tests).
	 */
	uint64_t term;
	/* Does our lease still hold?  NULL: no lease to check. */
	bool (*lease_ok)(void *arg);
	void *lease_arg;
	bool read_only;
	/* page cache in KiB (0: the default, 8 MiB) */
	uint32_t cache_kib;
};

struct store_stats {
	uint64_t commits;         /* batches made durable */
	uint64_t ops;             /* operations in them */
	uint64_t ops_failed;      /* operations rolled back inside a batch */
	uint64_t gate_reads;      /* quorum block reads by the term gate */
	uint64_t gate_ns;         /* time spent in them */
	uint64_t checkpoints;     /* WAL checkpoints */
	uint64_t log_frames;      /* frames in the log after the last commit */
	uint64_t log_writes;      /* device writes into the log region */
	uint64_t db_writes;       /* device writes into the database region */
	uint64_t syncs;           /* device flushes */
	uint64_t log_reads;       /* device reads from the log region */
	uint64_t db_reads;        /* device reads from the database region */
	uint64_t db_pages;        /* pages in the database */
	uint64_t free_pages;      /* of which on SQLite's free list */
	bool fenced;
};

/*
 * Open the store of the filesystem s on dev: verify the store header,
 * open the database (recovering the write-ahead log left by a crash).
 * Fails with one line in why naming the region and the check that failed.
 */
int store_open(const struct store_config *cfg, struct store **out, char *why, size_t whylen);
/*
 * Make the store's database on a device mkfs has just laid out: open it
 * empty, run fill inside one transaction (the schema and the root
 * directory), commit and checkpoint.  0 or -errno with one line in why.
 */
int store_create(struct bd_dev *dev, const struct bd_super *s,
		 int (*fill)(struct sqlite3 *db, void *arg), void *arg, char *why, size_t whylen);
/* Close: checkpoint (unless fenced or read-only) and release everything. */
void store_close(struct store *st);

/*
 * Close without writing anything more to the device: what a crash leaves
 * (tests), or a fenced server's exit.
 */
void store_abandon(struct store *st);

/* The database handle, for the filesystem logic (server/fs.h). */
struct sqlite3 *store_db(struct store *st);

/*
 * The bytes the database may grow to: its region (at most SQLite's page
 * limit: 4 TiB) less what a checkpoint and the free-list need (a
 * sixteenth, at least 4 MiB, at most 1 GiB); the filesystem logic refuses
 * (ENOSPC) beyond.
 */
uint64_t store_space_bytes(const struct store *st);

/*
 * The most a batch should change, in bytes of pages: a quarter of the log
 * region, so the log never fills between checkpoints.
 */
uint64_t store_batch_bytes(const struct store *st);

/* Begin a batch (a transaction).  -ESTALE when fenced, -EBUSY when one is open. */
int store_begin(struct store *st);
/* Begin one operation of the batch (a savepoint). */
int store_op_begin(struct store *st);
/*
 * End the operation that returned ret: keep it (ret >= 0) or roll it back.
 * Returns ret, or -EIO when the rollback itself failed (the batch is then
 * lost and the caller must store_rollback); a batch SQLite rolled back
 * because the op found the store full is lost too, with the op's -ENOSPC.
 */
int store_op_end(struct store *st, int ret);
/*
 * Whether the batch is still whole: every operation's savepoint closed and
 * the transaction open.  When not, the caller must store_rollback - an
 * operation that failed with -EIO itself cannot tell otherwise.
 */
bool store_batch_intact(const struct store *st);
/*
 * Has the device failed a read since the open?  An operation's -EIO is then
 * the device's, not its file's (a corrupt one): the server cannot go on.
 */
bool store_read_failed(const struct store *st);
/*
 * Make the batch durable: the term gate, then COMMIT (the WAL frames and
 * one flush).  0; -ESTALE when the gate failed (the batch is abandoned and
 * the store fenced); a refusal (store_refusal: the batch is more than the
 * log region or memory can take; it is rolled back and the store goes on);
 * or -EIO when the device failed (the batch is abandoned; whether it
 * reached the device is unknown until reopen, and the store takes no more).
 */
int store_commit(struct store *st);
/*
 * Is err a refusal of what a batch asked (-ENOSPC, -ENOMEM), after which
 * the store still takes smaller batches, and not a failure of the store?
 */
bool store_refusal(int err);
/* Abandon the open batch. */
void store_rollback(struct store *st);
/* How long the last commit's term gate took (its read of the quorum blocks). */
mono_ns store_last_gate_ns(const struct store *st);

/*
 * Checkpoint the log into the database region now (the executor calls it
 * when idle; commits also checkpoint on their own past a threshold).
 */
int store_checkpoint(struct store *st);

void store_get_stats(struct store *st, struct store_stats *out);

/*
 * The term gate's check, exposed for tests: 0 when no quorum block shows
 * an ELECT above term, -ESTALE (with the slot and term in why) when one
 * does, -EIO when the blocks could not be read.
 */
int store_gate_check(struct bd_dev *dev, const struct bd_super *s, uint64_t term, char *why,
		     size_t whylen);

#endif
