/*
 * dev_uring.c - the production device: a regular file or block device
 * opened with O_DIRECT, every transfer whole 4096-byte blocks through
 * io_uring.  O_DIRECT only skips the page cache; durability comes from
 * RWF_DSYNC on a write that asks for it, or from bd_flush (an io_uring
 * fdatasync), which covers every write completed before it.
 *
 * Synchronous calls share one ring under a mutex and copy through a bounce
 * buffer the device owns.  Every wait is bounded by the device's I/O
 * timeout: on expiry the request is cancelled, and if it still does not
 * complete the ring and the bounce buffer are abandoned (leaked, never
 * reused) and a fresh ring is made, so a transfer that finishes late can
 * write only into memory nobody uses.
 *
 * A short transfer or an I/O error is returned as an error, never retried:
 * the caller decides.  EINTR from waiting on the ring is the only thing
 * retried, because it says nothing about the I/O itself.
 */
#include "blockdev/dev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNC_RING_ENTRIES 4
/* after a timeout, how long a cancelled request may take to come back */
#define CANCEL_GRACE_MS 1000

struct dev_uring {
	struct bd_dev dev;
	int fd;
	pthread_mutex_t lock; /* serializes use of ring and bounce */
	struct io_uring ring;
	bool ring_ready;
	void *bounce;
	size_t bounce_blocks;
};

static struct dev_uring *U(struct bd_dev *dev)
{
	return (struct dev_uring *)dev;
}

static int io_result(int res, unsigned nr_blocks)
{
	if (res < 0)
		return res;
	if ((unsigned)res != nr_blocks * FUSEFS_BLOCK_SIZE)
		return -EIO;
	return 0;
}

/* Give up on the ring and its bounce buffer: a request may still use them. */
static void abandon_ring(struct dev_uring *u)
{
	u->bounce = NULL; /* leaked on purpose */
	u->bounce_blocks = 0;
	if (u->ring_ready)
		io_uring_queue_exit(&u->ring);
	u->ring_ready = io_uring_queue_init(SYNC_RING_ENTRIES, &u->ring, 0) == 0;
}

static void *bounce(struct dev_uring *u, unsigned nr_blocks)
{
	if (u->bounce_blocks < nr_blocks) {
		bd_free(u->bounce);
		u->bounce = bd_alloc(nr_blocks);
		u->bounce_blocks = u->bounce ? nr_blocks : 0;
	}
	return u->bounce;
}

static int wait_ms(struct io_uring *ring, struct io_uring_cqe **cqe, int ms)
{
	struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000LL };
	int ret;

	do {
		ret = io_uring_wait_cqe_timeout(ring, cqe, &ts);
	} while (ret == -EINTR);
	return ret;
}

/*
 * Submit the one prepared SQE and wait for its CQE within the I/O timeout.
 * Called with the lock held; returns the CQE's res, or -errno.  A write
 * that never comes back is counted lost: it may land later, at any time.
 */
static int submit_wait(struct dev_uring *u, bool sqe_write)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int ret, res;

	ret = io_uring_submit(&u->ring);
	if (ret != 1) {
		abandon_ring(u);
		return ret < 0 ? ret : -EIO;
	}
	ret = wait_ms(&u->ring, &cqe, u->dev.io_timeout_ms);
	if (ret == 0) {
		res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		return res;
	}
	if (ret != -ETIME) {
		abandon_ring(u);
		if (sqe_write)
			bd_count_lost_write(&u->dev);
		return ret;
	}
	/* timed out: cancel it and wait a little for both completions */
	bool orig_back = false, cancel_back = false;

	sqe = io_uring_get_sqe(&u->ring);
	if (sqe != NULL) {
		io_uring_prep_cancel64(sqe, 1, 0);
		io_uring_sqe_set_data64(sqe, 2);
		if (io_uring_submit(&u->ring) != 1)
			cancel_back = true; /* nothing to wait for */
	}
	while (sqe != NULL && !(orig_back && cancel_back) &&
	       wait_ms(&u->ring, &cqe, CANCEL_GRACE_MS) == 0) {
		if (cqe->user_data == 1)
			orig_back = true;
		else
			cancel_back = true;
		io_uring_cqe_seen(&u->ring, cqe);
	}
	/* a request that never came back may still write into the bounce buffer */
	if (!(orig_back && cancel_back)) {
		abandon_ring(u);
		if (!orig_back && sqe_write)
			bd_count_lost_write(&u->dev); /* and onto the device, at any time */
	}
	return -ETIMEDOUT;
}

static int sync_io(struct bd_dev *dev, bool write, uint64_t blkno, void *buf, unsigned nr_blocks,
		   unsigned flags)
{
	struct dev_uring *u = U(dev);
	struct io_uring_sqe *sqe;
	size_t bytes = (size_t)nr_blocks * FUSEFS_BLOCK_SIZE;
	void *b;
	int ret;

	pthread_mutex_lock(&u->lock);
	b = bounce(u, nr_blocks);
	if (!u->ring_ready || b == NULL) {
		ret = u->ring_ready ? -ENOMEM : -EIO;
		goto out;
	}
	sqe = io_uring_get_sqe(&u->ring);
	if (sqe == NULL) {
		ret = -EBUSY;
		goto out;
	}
	if (write) {
		memcpy(b, buf, bytes);
		io_uring_prep_write(sqe, u->fd, b, (unsigned)bytes, blkno << FUSEFS_BLOCK_SHIFT);
		if (flags & BD_WRITE_DURABLE)
			sqe->rw_flags = RWF_DSYNC;
	} else {
		io_uring_prep_read(sqe, u->fd, b, (unsigned)bytes, blkno << FUSEFS_BLOCK_SHIFT);
	}
	io_uring_sqe_set_data64(sqe, 1);
	ret = io_result(submit_wait(u, write), nr_blocks);
	if (ret == 0 && !write)
		memcpy(buf, b, bytes);
out:
	pthread_mutex_unlock(&u->lock);
	return ret;
}

static int ur_read(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks)
{
	return sync_io(dev, false, blkno, buf, nr_blocks, 0);
}

static int ur_write(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks,
		    unsigned flags)
{
	return sync_io(dev, true, blkno, (void *)buf, nr_blocks, flags);
}

static int ur_flush(struct bd_dev *dev)
{
	struct dev_uring *u = U(dev);
	struct io_uring_sqe *sqe;
	int ret;

	pthread_mutex_lock(&u->lock);
	sqe = u->ring_ready ? io_uring_get_sqe(&u->ring) : NULL;
	if (sqe == NULL) {
		ret = -EIO;
	} else {
		io_uring_prep_fsync(sqe, u->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, 1);
		ret = submit_wait(u, false);
		ret = ret > 0 ? 0 : ret;
	}
	pthread_mutex_unlock(&u->lock);
	return ret;
}

static int ur_aio_prep(struct bd_dev *dev, struct io_uring *ring, struct bd_aio *aio,
		       void *user_data)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	unsigned bytes = aio->nr_blocks * FUSEFS_BLOCK_SIZE;

	if (sqe == NULL) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
		if (sqe == NULL)
			return -EBUSY;
	}
	if (aio->op == BD_AIO_WRITE) {
		io_uring_prep_write(sqe, U(dev)->fd, aio->buf, bytes, aio->blkno << FUSEFS_BLOCK_SHIFT);
		if (aio->flags & BD_WRITE_DURABLE)
			sqe->rw_flags = RWF_DSYNC;
	} else {
		io_uring_prep_read(sqe, U(dev)->fd, aio->buf, bytes, aio->blkno << FUSEFS_BLOCK_SHIFT);
	}
	io_uring_sqe_set_data(sqe, user_data);
	return 0;
}

static int ur_aio_finish(struct bd_dev *dev, struct bd_aio *aio, int res)
{
	(void)dev;
	return io_result(res, aio->nr_blocks);
}

static void ur_close(struct bd_dev *dev)
{
	struct dev_uring *u = U(dev);

	if (u->ring_ready)
		io_uring_queue_exit(&u->ring);
	if (u->fd >= 0)
		close(u->fd);
	bd_free(u->bounce);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static const struct bd_dev_ops uring_ops = {
	.read = ur_read,
	.write = ur_write,
	.flush = ur_flush,
	.aio_prep = ur_aio_prep,
	.aio_finish = ur_aio_finish,
	.close = ur_close,
};

/* The alignment O_DIRECT needs on a regular file: statx knows since 6.1. */
static uint32_t file_dio_align(int fd)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align > 0)
		return stx.stx_dio_offset_align;
	return 512;
}

static int geometry(struct dev_uring *u, char *why, size_t whylen)
{
	const char *path = u->dev.path;
	struct stat st;
	uint64_t bytes;
	int lbs;

	if (fstat(u->fd, &st) < 0) {
		int err = -errno;

		snprintf(why, whylen, "%s: stat failed: %s", path, errstr(err));
		return err;
	}
	if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
		lbs = (int)file_dio_align(u->fd);
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(u->fd, BLKGETSIZE64, &bytes) < 0) {
			int err = -errno;

			snprintf(why, whylen, "%s: BLKGETSIZE64 failed: %s", path, errstr(err));
			return err;
		}
		if (ioctl(u->fd, BLKSSZGET, &lbs) < 0) {
			int err = -errno;

			snprintf(why, whylen, "%s: BLKSSZGET failed: %s", path, errstr(err));
			return err;
		}
	} else {
		snprintf(why, whylen, "%s: not a regular file or block device", path);
		return -ENOTBLK;
	}
	if (lbs <= 0 || FUSEFS_BLOCK_SIZE % (unsigned)lbs != 0) {
		snprintf(why, whylen, "%s: logical block size %d does not divide %u", path, lbs,
			 FUSEFS_BLOCK_SIZE);
		return -EINVAL;
	}
	u->dev.size_blocks = bytes / FUSEFS_BLOCK_SIZE;
	u->dev.logical_block_size = (uint32_t)lbs;
	return 0;
}

int bd_open(const char *path, bool writable, struct bd_dev **out, char *why, size_t whylen)
{
	struct dev_uring *u;
	int ret;

	*out = NULL;
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		snprintf(why, whylen, "%s: out of memory", path);
		return -ENOMEM;
	}
	u->dev.ops = &uring_ops;
	u->dev.io_timeout_ms = BD_IO_TIMEOUT_DEFAULT_MS;
	snprintf(u->dev.path, sizeof(u->dev.path), "%s", path);
	u->fd = -1;
	pthread_mutex_init(&u->lock, NULL);

	u->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (u->fd < 0) {
		ret = -errno;
		if (ret == -EINVAL)
			snprintf(why, whylen, "%s: the filesystem holding it does not support "
				 "O_DIRECT (tmpfs does not); use a file on ext4/xfs or a block device",
				 path);
		else
			snprintf(why, whylen, "%s: open failed: %s", path, errstr(ret));
		goto fail;
	}
	ret = geometry(u, why, whylen);
	if (ret < 0)
		goto fail;
	ret = io_uring_queue_init(SYNC_RING_ENTRIES, &u->ring, 0);
	if (ret < 0) {
		snprintf(why, whylen, "%s: io_uring setup failed: %s", path, errstr(ret));
		goto fail;
	}
	u->ring_ready = true;
	*out = &u->dev;
	return 0;

fail:
	ur_close(&u->dev);
	return ret;
}
