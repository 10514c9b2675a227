/*
 * dev_mem.c - the in-memory device for tests, with seeded faults.
 *
 * It keeps two images: what reads see (cur) and what would survive a power
 * loss (durable).  A write lands in cur and marks its blocks dirty; a
 * durable write or a flush copies dirty blocks to durable.  bd_mem_crash()
 * decides the fate of every dirty block - lost, kept, or torn at 512-byte
 * sector granularity, as SQLite's test6.c does - and leaves both images
 * equal, as a machine that rebooted would find its disk.
 *
 * Faults: the N-th call (and optionally every later one) or any call
 * touching a block range fails with a chosen errno, and every call can be
 * made to take delay_ms (a slow or stalled device), or held until released
 * (bd_mem_hold: a test decides exactly when a write lands; one held past
 * the I/O timeout fails with -ETIMEDOUT and is counted lost, as a real
 * device's may still land).  A failed write changes nothing.  Asynchronous transfers complete through the caller's ring: a
 * timeout SQE models the latency, and the transfer happens when its
 * completion is handled, so a stalled write is not visible before then.
 */
#include "blockdev/dev.h"

#include "common/prng.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SECTOR 512u

struct dev_mem {
	struct bd_dev dev;
	pthread_mutex_t lock;
	uint8_t *cur;
	uint8_t *durable;
	uint8_t *dirty_map;    /* a byte per block: 1 when cur and durable differ */
	uint64_t *dirty_list;  /* the dirty blocks, each once */
	uint64_t dirty_count;
	struct bd_mem_faults faults;
	uint64_t calls;
	uint64_t rng;
	bool held;             /* synchronous writes and flushes wait (bd_mem_hold) */
	uint32_t held_waiters;
	pthread_cond_t held_cond;
};

static struct dev_mem *M(struct bd_dev *dev)
{
	return (struct dev_mem *)dev;
}

static uint8_t *blk(uint8_t *img, uint64_t blkno)
{
	return img + blkno * FUSEFS_BLOCK_SIZE;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Count a call and decide whether it fails.  Called with the lock held. */
static int fault(struct dev_mem *m, unsigned op, uint64_t blkno, unsigned nr_blocks)
{
	const struct bd_mem_faults *f = &m->faults;
	int err = f->err ? f->err : -EIO;
	uint64_t nr = ++m->calls;

	if (f->fail_nth && (nr == f->fail_nth || (f->fail_after_nth && nr > f->fail_nth)))
		return err;
	if ((f->fail_ops & op) && op != BD_FAULT_FLUSH && blkno < f->fail_hi &&
	    blkno + nr_blocks > f->fail_lo)
		return err;
	if ((f->fail_ops & op) && op == BD_FAULT_FLUSH && f->fail_hi > f->fail_lo)
		return err;
	return 0;
}

static uint32_t delay_of(struct dev_mem *m)
{
	uint32_t ms;

	pthread_mutex_lock(&m->lock);
	ms = m->faults.delay_ms;
	pthread_mutex_unlock(&m->lock);
	return ms;
}

static void mark_dirty(struct dev_mem *m, uint64_t blkno)
{
	if (m->dirty_map[blkno])
		return;
	m->dirty_map[blkno] = 1;
	m->dirty_list[m->dirty_count++] = blkno;
}

/* Make every dirty block durable (or, with lose, drop it). */
static void settle(struct dev_mem *m, enum bd_crash_mode mode)
{
	for (uint64_t i = 0; i < m->dirty_count; i++) {
		uint64_t b = m->dirty_list[i];
		enum bd_crash_mode fate = mode;

		if (fate == BD_CRASH_RANDOM)
			fate = (enum bd_crash_mode)(prng_next(&m->rng) % 3);
		switch (fate) {
		case BD_CRASH_LOST:
			memcpy(blk(m->cur, b), blk(m->durable, b), FUSEFS_BLOCK_SIZE);
			break;
		case BD_CRASH_TORN:
			for (unsigned s = 0; s < FUSEFS_BLOCK_SIZE / SECTOR; s++)
				if (prng_next(&m->rng) & 1)
					memcpy(blk(m->cur, b) + s * SECTOR, blk(m->durable, b) + s * SECTOR,
					       SECTOR);
			/* what is left in cur is what reached the medium */
			__attribute__((fallthrough));
		case BD_CRASH_KEPT:
		case BD_CRASH_RANDOM:
			memcpy(blk(m->durable, b), blk(m->cur, b), FUSEFS_BLOCK_SIZE);
			break;
		}
		m->dirty_map[b] = 0;
	}
	m->dirty_count = 0;
}

static int do_read(struct dev_mem *m, uint64_t blkno, void *buf, unsigned nr_blocks)
{
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = fault(m, BD_FAULT_READ, blkno, nr_blocks);
	if (ret == 0)
		memcpy(buf, blk(m->cur, blkno), (size_t)nr_blocks * FUSEFS_BLOCK_SIZE);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int do_write(struct dev_mem *m, uint64_t blkno, const void *buf, unsigned nr_blocks,
		    unsigned flags)
{
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = fault(m, BD_FAULT_WRITE, blkno, nr_blocks);
	if (ret == 0) {
		memcpy(blk(m->cur, blkno), buf, (size_t)nr_blocks * FUSEFS_BLOCK_SIZE);
		for (unsigned i = 0; i < nr_blocks; i++) {
			if (flags & BD_WRITE_DURABLE) {
				memcpy(blk(m->durable, blkno + i), blk(m->cur, blkno + i),
				       FUSEFS_BLOCK_SIZE);
				/* stays listed if dirty; settle() then copies equal data */
			} else {
				mark_dirty(m, blkno + i);
			}
		}
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mem_read(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks)
{
	uint32_t ms = delay_of(M(dev));

	if (ms)
		sleep_ms(ms);
	return do_read(M(dev), blkno, buf, nr_blocks);
}

/*
 * While the device is held, a write or flush waits for the release - at
 * most the device's I/O timeout, and then fails with -ETIMEDOUT, as the
 * production device's bounded waits do.
 */
static int hold_wait(struct dev_mem *m)
{
	struct timespec until;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += m->dev.io_timeout_ms / 1000 + 1;
	pthread_mutex_lock(&m->lock);
	m->held_waiters++;
	while (m->held && ret == 0)
		if (pthread_cond_timedwait(&m->held_cond, &m->lock, &until) == ETIMEDOUT && m->held)
			ret = -ETIMEDOUT;
	m->held_waiters--;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mem_write(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks,
		     unsigned flags)
{
	uint32_t ms = delay_of(M(dev));
	int ret = hold_wait(M(dev));

	if (ret < 0) {
		/* dropped here; a real device's may land at any later time */
		bd_count_lost_write(dev);
		return ret;
	}
	if (ms)
		sleep_ms(ms);
	return do_write(M(dev), blkno, buf, nr_blocks, flags);
}

static int mem_flush(struct bd_dev *dev)
{
	struct dev_mem *m = M(dev);
	uint32_t ms = delay_of(m);
	int ret = hold_wait(m);

	if (ret < 0)
		return ret;
	if (ms)
		sleep_ms(ms);
	pthread_mutex_lock(&m->lock);
	ret = fault(m, BD_FAULT_FLUSH, 0, 0);
	if (ret == 0)
		settle(m, BD_CRASH_KEPT);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mem_aio_prep(struct bd_dev *dev, struct io_uring *ring, struct bd_aio *aio,
			void *user_data)
{
	uint32_t ms = delay_of(M(dev));
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (sqe == NULL) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
		if (sqe == NULL)
			return -EBUSY;
	}
	if (ms == 0) {
		io_uring_prep_nop(sqe);
	} else {
		aio->ts.tv_sec = ms / 1000;
		aio->ts.tv_nsec = (long long)(ms % 1000) * 1000000LL;
		io_uring_prep_timeout(sqe, &aio->ts, 0, 0);
	}
	io_uring_sqe_set_data(sqe, user_data);
	return 0;
}

static int mem_aio_finish(struct bd_dev *dev, struct bd_aio *aio, int res)
{
	if (res < 0 && res != -ETIME)
		return res; /* cancelled */
	if (aio->op == BD_AIO_READ)
		return do_read(M(dev), aio->blkno, aio->buf, aio->nr_blocks);
	return do_write(M(dev), aio->blkno, aio->buf, aio->nr_blocks, aio->flags);
}

static void mem_close(struct bd_dev *dev)
{
	struct dev_mem *m = M(dev);

	free(m->cur);
	free(m->durable);
	free(m->dirty_map);
	free(m->dirty_list);
	pthread_cond_destroy(&m->held_cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct bd_dev_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.flush = mem_flush,
	.aio_prep = mem_aio_prep,
	.aio_finish = mem_aio_finish,
	.close = mem_close,
};

int bd_mem_open(uint64_t size_blocks, uint32_t sector_size, uint64_t seed, struct bd_dev **out)
{
	struct dev_mem *m;
	size_t bytes = (size_t)size_blocks * FUSEFS_BLOCK_SIZE;

	*out = NULL;
	if (size_blocks == 0 || (sector_size != 512 && sector_size != 4096))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->dev.ops = &mem_ops;
	m->dev.size_blocks = size_blocks;
	m->dev.logical_block_size = sector_size;
	m->dev.io_timeout_ms = BD_IO_TIMEOUT_DEFAULT_MS;
	snprintf(m->dev.path, sizeof(m->dev.path), "mem:%llu", (unsigned long long)size_blocks);
	m->rng = seed;
	pthread_mutex_init(&m->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&m->held_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	m->cur = calloc(1, bytes);
	m->durable = calloc(1, bytes);
	m->dirty_map = calloc(1, (size_t)size_blocks);
	m->dirty_list = calloc((size_t)size_blocks, sizeof(uint64_t));
	if (m->cur == NULL || m->durable == NULL || m->dirty_map == NULL || m->dirty_list == NULL) {
		mem_close(&m->dev);
		return -ENOMEM;
	}
	*out = &m->dev;
	return 0;
}

void bd_mem_set_faults(struct bd_dev *dev, const struct bd_mem_faults *f)
{
	struct dev_mem *m = M(dev);

	pthread_mutex_lock(&m->lock);
	m->faults = *f;
	pthread_mutex_unlock(&m->lock);
}

uint64_t bd_mem_calls(struct bd_dev *dev)
{
	struct dev_mem *m = M(dev);
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	n = m->calls;
	pthread_mutex_unlock(&m->lock);
	return n;
}

uint64_t bd_mem_crash(struct bd_dev *dev, enum bd_crash_mode mode)
{
	struct dev_mem *m = M(dev);
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	n = m->dirty_count;
	settle(m, mode);
	pthread_mutex_unlock(&m->lock);
	return n;
}

void bd_mem_peek(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks)
{
	struct dev_mem *m = M(dev);

	pthread_mutex_lock(&m->lock);
	memcpy(buf, blk(m->cur, blkno), (size_t)nr_blocks * FUSEFS_BLOCK_SIZE);
	pthread_mutex_unlock(&m->lock);
}

void bd_mem_poke(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks)
{
	struct dev_mem *m = M(dev);

	pthread_mutex_lock(&m->lock);
	memcpy(blk(m->cur, blkno), buf, (size_t)nr_blocks * FUSEFS_BLOCK_SIZE);
	memcpy(blk(m->durable, blkno), buf, (size_t)nr_blocks * FUSEFS_BLOCK_SIZE);
	pthread_mutex_unlock(&m->lock);
}

void bd_mem_hold(struct bd_dev *dev, bool hold)
{
	struct dev_mem *m = M(dev);

	pthread_mutex_lock(&m->lock);
	m->held = hold;
	pthread_cond_broadcast(&m->held_cond);
	pthread_mutex_unlock(&m->lock);
}

uint32_t bd_mem_held_waiters(struct bd_dev *dev)
{
	struct dev_mem *m = M(dev);
	uint32_t n;

	pthread_mutex_lock(&m->lock);
	n = m->held_waiters;
	pthread_mutex_unlock(&m->lock);
	return n;
}
