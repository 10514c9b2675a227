/*
 * dev.c - what every device shares: argument checks, statistics, aligned
 * buffers, and the dispatch through the ops table.  The checks live here,
 * once, so both implementations refuse the same things the same way.
 */
#include "blockdev/dev.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

void *bd_alloc(size_t nr_blocks)
{
	void *buf = NULL;

	if (nr_blocks == 0 || posix_memalign(&buf, FUSEFS_BLOCK_SIZE, nr_blocks * FUSEFS_BLOCK_SIZE) != 0)
		return NULL;
	memset(buf, 0, nr_blocks * FUSEFS_BLOCK_SIZE);
	return buf;
}

void bd_free(void *buf)
{
	free(buf);
}

static bool range_ok(const struct bd_dev *dev, uint64_t blkno, unsigned nr_blocks)
{
	return blkno < dev->size_blocks && nr_blocks <= dev->size_blocks - blkno;
}

static int check(const struct bd_dev *dev, uint64_t blkno, unsigned nr_blocks)
{
	if (nr_blocks == 0)
		return -EINVAL;
	return range_ok(dev, blkno, nr_blocks) ? 0 : -ERANGE;
}

static int account(struct bd_dev *dev, int ret, uint64_t *calls, uint64_t *blocks,
		   unsigned nr_blocks)
{
	pthread_mutex_lock(&stats_lock);
	(*calls)++;
	if (blocks)
		*blocks += nr_blocks;
	if (ret < 0)
		dev->stats.errors++;
	if (ret == -ETIMEDOUT)
		dev->stats.timeouts++;
	pthread_mutex_unlock(&stats_lock);
	return ret;
}

void bd_get_stats(struct bd_dev *dev, struct bd_stats *out)
{
	pthread_mutex_lock(&stats_lock);
	*out = dev->stats;
	pthread_mutex_unlock(&stats_lock);
}

void bd_count_lost_write(struct bd_dev *dev)
{
	pthread_mutex_lock(&stats_lock);
	dev->stats.lost_writes++;
	pthread_mutex_unlock(&stats_lock);
}

void bd_set_io_timeout(struct bd_dev *dev, int ms)
{
	dev->io_timeout_ms = ms > 0 ? ms : BD_IO_TIMEOUT_DEFAULT_MS;
}

int bd_read(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks)
{
	int ret = check(dev, blkno, nr_blocks);

	if (ret == 0)
		ret = dev->ops->read(dev, blkno, buf, nr_blocks);
	return account(dev, ret, &dev->stats.reads, &dev->stats.read_blocks, nr_blocks);
}

int bd_write(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks,
	     unsigned flags)
{
	int ret = check(dev, blkno, nr_blocks);

	if (ret == 0)
		ret = dev->ops->write(dev, blkno, buf, nr_blocks, flags);
	if (flags & BD_WRITE_DURABLE)
		account(dev, 0, &dev->stats.durable_writes, NULL, 0);
	return account(dev, ret, &dev->stats.writes, &dev->stats.write_blocks, nr_blocks);
}

int bd_flush(struct bd_dev *dev)
{
	return account(dev, dev->ops->flush(dev), &dev->stats.flushes, NULL, 0);
}

int bd_aio_prep(struct bd_dev *dev, struct io_uring *ring, struct bd_aio *aio, void *user_data)
{
	int ret = check(dev, aio->blkno, aio->nr_blocks);

	if (ret == 0 && ((uintptr_t)aio->buf & (FUSEFS_BLOCK_SIZE - 1)) != 0)
		ret = -EINVAL;
	if (ret == 0)
		ret = dev->ops->aio_prep(dev, ring, aio, user_data);
	return ret;
}

int bd_aio_finish(struct bd_dev *dev, struct bd_aio *aio, int res)
{
	int ret = dev->ops->aio_finish(dev, aio, res);

	if (aio->op == BD_AIO_READ)
		return account(dev, ret, &dev->stats.reads, &dev->stats.read_blocks, aio->nr_blocks);
	if (aio->flags & BD_WRITE_DURABLE)
		account(dev, 0, &dev->stats.durable_writes, NULL, 0);
	return account(dev, ret, &dev->stats.writes, &dev->stats.write_blocks, aio->nr_blocks);
}

void bd_close(struct bd_dev *dev)
{
	if (dev != NULL)
		dev->ops->close(dev);
}
