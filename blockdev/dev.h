/*
 * dev.h - the metadata device, behind a small ops table.
 *
 * Two implementations:
 *  - the production one (dev_uring.c): a regular file or block device
 *    opened with O_DIRECT, every transfer through io_uring, writes durable
 *    only when asked (RWF_DSYNC) or after bd_flush (fdatasync);
 *  - an in-memory one for tests (dev_mem.c) with seeded faults: EIO on the
 *    N-th call or on a block range, latency, and at a simulated crash the
 *    writes not yet made durable lost, kept or torn at sector granularity
 *    (the idea of SQLite's test6.c).
 *
 * Units: whole 4096-byte blocks (FUSEFS_BLOCK_SIZE), addressed by blkno
 * from the start of the device.  Buffers may have any alignment: the
 * production device copies through aligned bounce buffers it owns, so a
 * transfer that never completes can never scribble on the caller's memory.
 *
 * Durability: bd_write(..., BD_WRITE_DURABLE) returns once that write is on
 * stable storage.  A plain bd_write may sit in a volatile cache until the
 * next bd_flush, which makes every write completed before it durable.  So a
 * group commit is "write several blocks, then one flush".
 *
 * Bounds: every synchronous wait of the production device ends within the
 * device's I/O timeout (bd_set_io_timeout; 30 s by default) with -ETIMEDOUT.
 * The transfer may still complete later; its bounce buffer is then leaked,
 * never reused.
 *
 * Asynchronous use (the quorum agent's ring): bd_aio_prep queues one
 * transfer on the caller's io_uring with the caller's user_data; when that
 * CQE arrives the caller passes its res to bd_aio_finish, which returns 0
 * or -errno.  The in-memory device completes through the same ring (a
 * timeout SQE that models the latency), so the agent's completion path is
 * the one production runs.
 *
 * Every function returns 0 or a negative errno.  Thread safety: any thread
 * may call the synchronous functions; one aio is owned by one ring thread.
 */
#ifndef FUSEFS_DEV_H
#define FUSEFS_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/time_types.h>

#include "blockdev/format.h"

struct io_uring;

#define BD_WRITE_DURABLE 0x1u

#define BD_IO_TIMEOUT_DEFAULT_MS 30000

/* What a device has done, for tests and benchmarks. */
struct bd_stats {
	uint64_t reads;          /* calls, sync and async */
	uint64_t read_blocks;
	uint64_t writes;
	uint64_t write_blocks;
	uint64_t durable_writes; /* writes with BD_WRITE_DURABLE */
	uint64_t flushes;
	uint64_t errors;         /* calls that returned an error */
	uint64_t timeouts;       /* synchronous waits that gave up */
	uint64_t lost_writes;    /* writes given up on that never came back: they may still land */
};

enum bd_aio_op { BD_AIO_READ, BD_AIO_WRITE };

/* One asynchronous transfer; fields below "private" belong to the device. */
struct bd_aio {
	enum bd_aio_op op;
	uint64_t blkno;
	unsigned nr_blocks;
	unsigned flags;      /* BD_WRITE_DURABLE for writes */
	void *buf;           /* must be 4096-aligned (bd_alloc) for async use */
	/* private: the in-memory device's latency timer (read at submit) */
	struct __kernel_timespec ts;
};

struct bd_dev;

struct bd_dev_ops {
	int (*read)(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks);
	int (*write)(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks,
		     unsigned flags);
	int (*flush)(struct bd_dev *dev);
	int (*aio_prep)(struct bd_dev *dev, struct io_uring *ring, struct bd_aio *aio,
			void *user_data);
	int (*aio_finish)(struct bd_dev *dev, struct bd_aio *aio, int res);
	void (*close)(struct bd_dev *dev);
};

/* The common part of every device; implementations embed it first. */
struct bd_dev {
	const struct bd_dev_ops *ops;
	uint64_t size_blocks;
	uint32_t logical_block_size; /* the device's real sector size: 512 or 4096 */
	int io_timeout_ms;
	char path[256];
	/* stats are kept under the implementation's own lock */
	struct bd_stats stats;
};

/*
 * Open a regular file or block device with O_DIRECT.  On failure why holds
 * one line naming the device and the cause (tmpfs refuses O_DIRECT, a
 * logical block size that does not divide 4096, ...).
 */
int bd_open(const char *path, bool writable, struct bd_dev **out, char *why, size_t whylen);
void bd_close(struct bd_dev *dev);

static inline const char *bd_path(const struct bd_dev *dev)
{
	return dev->path;
}

static inline uint64_t bd_size_blocks(const struct bd_dev *dev)
{
	return dev->size_blocks;
}

static inline uint32_t bd_logical_block_size(const struct bd_dev *dev)
{
	return dev->logical_block_size;
}

void bd_set_io_timeout(struct bd_dev *dev, int ms);
void bd_get_stats(struct bd_dev *dev, struct bd_stats *out);
/* For implementations: a write given up on (-ETIMEDOUT) that may still land. */
void bd_count_lost_write(struct bd_dev *dev);

/*
 * Whole-block transfers.  -EINVAL for zero blocks, -ERANGE beyond the end
 * of the device, -EIO for an I/O error or a short transfer, -ETIMEDOUT
 * when the device did not answer within its I/O timeout.
 */
int bd_read(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks);
int bd_write(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks,
	     unsigned flags);
/* Make every write completed so far durable. */
int bd_flush(struct bd_dev *dev);

/* Queue aio on ring with user_data; see the top of this file. */
int bd_aio_prep(struct bd_dev *dev, struct io_uring *ring, struct bd_aio *aio, void *user_data);
/* The transfer's result from its CQE's res: 0 or -errno. */
int bd_aio_finish(struct bd_dev *dev, struct bd_aio *aio, int res);

/* 4096-aligned, zeroed buffers. */
void *bd_alloc(size_t nr_blocks);
void bd_free(void *buf);

/* ---- the in-memory device (tests) ---- */

/* What unsynced writes become at a simulated crash. */
enum bd_crash_mode {
	BD_CRASH_LOST,   /* every write not yet durable is lost */
	BD_CRASH_KEPT,   /* every write reached the medium */
	BD_CRASH_TORN,   /* each 512-byte sector of each unsynced block is old or new */
	BD_CRASH_RANDOM, /* each unsynced block lost, kept or torn */
};

#define BD_FAULT_READ 0x1u
#define BD_FAULT_WRITE 0x2u
#define BD_FAULT_FLUSH 0x4u
#define BD_FAULT_ALL (BD_FAULT_READ | BD_FAULT_WRITE | BD_FAULT_FLUSH)

struct bd_mem_faults {
	/* fail the call numbered fail_nth (1-based, counting every call) */
	uint64_t fail_nth;
	bool fail_after_nth;  /* ... and every call after it */
	/* fail calls of kinds fail_ops touching blocks [fail_lo, fail_hi); a flush
	 * touches every block, so it fails whenever the range is not empty */
	unsigned fail_ops;
	uint64_t fail_lo, fail_hi;
	int err;              /* the error returned; -EIO when 0 */
	uint32_t delay_ms;    /* every call takes this long (a slow or stalled device) */
};

/*
 * A zeroed in-memory device of size_blocks blocks.  sector_size is the
 * logical block size it reports (512 or 4096); seed drives torn writes.
 */
int bd_mem_open(uint64_t size_blocks, uint32_t sector_size, uint64_t seed, struct bd_dev **out);
/* Replace the fault settings (any thread, any time). */
void bd_mem_set_faults(struct bd_dev *dev, const struct bd_mem_faults *f);
/*
 * Hold synchronous writes and flushes (they wait, at most the device's I/O
 * timeout, then fail with -ETIMEDOUT) until released; and how many wait
 * now.  Reads and the asynchronous transfers are not held.
 */
void bd_mem_hold(struct bd_dev *dev, bool hold);
uint32_t bd_mem_held_waiters(struct bd_dev *dev);
/* Calls made so far (what fail_nth counts). */
uint64_t bd_mem_calls(struct bd_dev *dev);
/*
 * Simulate a power loss: unsynced writes become what mode says, then the
 * device holds only durable data and answers again.  Returns how many
 * unsynced blocks there were.
 */
uint64_t bd_mem_crash(struct bd_dev *dev, enum bd_crash_mode mode);
/* Copy blocks in or out directly, bypassing faults and durability (tests). */
void bd_mem_peek(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks);
void bd_mem_poke(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks);

#endif
