/*
 * dev.c - whole-block device I/O.  The device (a regular file or a block
 * device) is opened with O_DIRECT; buffers are 4096-aligned; every
 * transfer is whole 4096-byte blocks through io_uring.  Writes carry
 * RWF_DSYNC, so a completed write is durable: O_DIRECT alone only skips
 * the page cache, it does not flush a volatile device cache.
 *
 * A short transfer or an I/O error is returned as an error, never retried:
 * the caller decides.  EINTR from waiting on the ring is the only thing
 * retried, because it says nothing about the I/O itself.
 */
#include "blockdev/blockdev.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct bd_dev {
	int fd;
	uint64_t size_blocks;
	struct io_uring ring;
	bool ring_ready;
	pthread_mutex_t lock; /* serializes use of ring */
	char path[4096];
};

void *bd_alloc(size_t nr_blocks)
{
	void *buf = NULL;

	if (posix_memalign(&buf, FUSEFS_BLOCK_SIZE, nr_blocks * FUSEFS_BLOCK_SIZE) != 0)
		return NULL;
	memset(buf, 0, nr_blocks * FUSEFS_BLOCK_SIZE);
	return buf;
}

void bd_free(void *buf)
{
	free(buf);
}

static int dev_geometry(struct bd_dev *dev, char *why, size_t whylen)
{
	struct stat st;
	uint64_t bytes;
	int lbs;

	if (fstat(dev->fd, &st) < 0) {
		int err = -errno;

		snprintf(why, whylen, "%s: stat failed: %s", dev->path, errstr(err));
		return err;
	}
	if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(dev->fd, BLKGETSIZE64, &bytes) < 0) {
			int err = -errno;

			snprintf(why, whylen, "%s: BLKGETSIZE64 failed: %s", dev->path, errstr(err));
			return err;
		}
		if (ioctl(dev->fd, BLKSSZGET, &lbs) < 0) {
			int err = -errno;

			snprintf(why, whylen, "%s: BLKSSZGET failed: %s", dev->path, errstr(err));
			return err;
		}
		if (lbs <= 0 || FUSEFS_BLOCK_SIZE % (unsigned)lbs != 0) {
			snprintf(why, whylen, "%s: logical block size %d does not divide %u",
				 dev->path, lbs, FUSEFS_BLOCK_SIZE);
			return -EINVAL;
		}
	} else {
		snprintf(why, whylen, "%s: not a regular file or block device", dev->path);
		return -ENOTBLK;
	}
	dev->size_blocks = bytes / FUSEFS_BLOCK_SIZE;
	return 0;
}

int bd_open(const char *path, bool writable, struct bd_dev **out, char *why, size_t whylen)
{
	struct bd_dev *dev;
	int ret;

	*out = NULL;
	dev = calloc(1, sizeof(*dev));
	if (dev == NULL) {
		snprintf(why, whylen, "%s: out of memory", path);
		return -ENOMEM;
	}
	dev->fd = -1;
	snprintf(dev->path, sizeof(dev->path), "%s", path);
	pthread_mutex_init(&dev->lock, NULL);

	dev->fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (dev->fd < 0) {
		ret = -errno;
		if (ret == -EINVAL)
			snprintf(why, whylen, "%s: the filesystem holding it does not support "
				 "O_DIRECT (tmpfs does not); use a file on ext4/xfs or a block device",
				 path);
		else
			snprintf(why, whylen, "%s: open failed: %s", path, errstr(ret));
		goto out_free;
	}
	ret = dev_geometry(dev, why, whylen);
	if (ret < 0)
		goto out_free;

	ret = io_uring_queue_init(4, &dev->ring, 0);
	if (ret < 0) {
		snprintf(why, whylen, "%s: io_uring setup failed: %s", path, errstr(ret));
		goto out_free;
	}
	dev->ring_ready = true;
	*out = dev;
	return 0;

out_free:
	bd_close(dev);
	return ret;
}

void bd_close(struct bd_dev *dev)
{
	if (dev == NULL)
		return;
	if (dev->ring_ready)
		io_uring_queue_exit(&dev->ring);
	if (dev->fd >= 0)
		close(dev->fd);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

const char *bd_path(const struct bd_dev *dev)
{
	return dev->path;
}

uint64_t bd_size_blocks(const struct bd_dev *dev)
{
	return dev->size_blocks;
}

void bd_prep_read(struct io_uring_sqe *sqe, const struct bd_dev *dev, uint64_t blkno,
		  void *buf, unsigned nr_blocks)
{
	io_uring_prep_read(sqe, dev->fd, buf, nr_blocks * FUSEFS_BLOCK_SIZE,
			   blkno << FUSEFS_BLOCK_SHIFT);
}

void bd_prep_write(struct io_uring_sqe *sqe, const struct bd_dev *dev, uint64_t blkno,
		   const void *buf, unsigned nr_blocks)
{
	io_uring_prep_write(sqe, dev->fd, buf, nr_blocks * FUSEFS_BLOCK_SIZE,
			    blkno << FUSEFS_BLOCK_SHIFT);
	sqe->rw_flags = RWF_DSYNC;
}

int bd_io_result(int res, unsigned nr_blocks)
{
	if (res < 0)
		return res;
	if ((unsigned)res != nr_blocks * FUSEFS_BLOCK_SIZE)
		return -EIO;
	return 0;
}

static int dev_sync_io(struct bd_dev *dev, bool write, uint64_t blkno, void *buf,
		       unsigned nr_blocks)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int ret;

	if (((uintptr_t)buf & (FUSEFS_BLOCK_SIZE - 1)) != 0 || nr_blocks == 0)
		return -EINVAL;
	if (blkno >= dev->size_blocks || nr_blocks > dev->size_blocks - blkno)
		return -ERANGE;

	pthread_mutex_lock(&dev->lock);
	if (!dev->ring_ready) {
		ret = -EIO;
		goto out;
	}
	sqe = io_uring_get_sqe(&dev->ring);
	if (sqe == NULL) {
		ret = -EBUSY;
		goto out;
	}
	if (write)
		bd_prep_write(sqe, dev, blkno, buf, nr_blocks);
	else
		bd_prep_read(sqe, dev, blkno, buf, nr_blocks);
	ret = io_uring_submit(&dev->ring);
	if (ret == 1) {
		do {
			ret = io_uring_wait_cqe(&dev->ring, &cqe);
		} while (ret == -EINTR);
	} else if (ret >= 0) {
		ret = -EIO;
	}
	if (ret < 0) {
		/*
		 * The ring itself failed: an SQE or CQE may be left behind for the
		 * next caller.  Start over with a fresh ring (the old one's request,
		 * if any, is cancelled when its ring is torn down).
		 */
		io_uring_queue_exit(&dev->ring);
		if (io_uring_queue_init(4, &dev->ring, 0) < 0)
			dev->ring_ready = false;
		goto out;
	}
	ret = bd_io_result(cqe->res, nr_blocks);
	io_uring_cqe_seen(&dev->ring, cqe);
out:
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

int bd_read(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks)
{
	return dev_sync_io(dev, false, blkno, buf, nr_blocks);
}

int bd_write(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks)
{
	return dev_sync_io(dev, true, blkno, (void *)buf, nr_blocks);
}

int bd_read_super(struct bd_dev *dev, struct bd_super *out, char *why, size_t whylen)
{
	struct fusefs_super_block *blk;
	int ret;

	if (dev->size_blocks <= FUSEFS_SUPER_BLKNO) {
		snprintf(why, whylen, "%s: device too small to hold a super block", dev->path);
		return -EIO;
	}
	blk = bd_alloc(1);
	if (blk == NULL)
		return -ENOMEM;
	ret = bd_read(dev, FUSEFS_SUPER_BLKNO, blk, 1);
	if (ret < 0) {
		snprintf(why, whylen, "%s: reading super block failed: %s", dev->path, errstr(ret));
		goto out;
	}
	ret = bd_super_decode(blk, out, why, whylen);
	if (ret == 0 && out->total_blocks > dev->size_blocks) {
		snprintf(why, whylen, "%s: super block says %" PRIu64 " blocks but the device has %"
			 PRIu64, dev->path, out->total_blocks, dev->size_blocks);
		ret = -EIO;
	}
out:
	bd_free(blk);
	return ret;
}

int bd_read_qblock(struct bd_dev *dev, const struct bd_super *s, int slot_nr,
		   struct bd_qblock *out, char *why, size_t whylen)
{
	struct fusefs_quorum_block *blk;
	char cwhy[160];
	int ret;

	if (!bd_slot_nr_valid(slot_nr))
		return -EINVAL;
	blk = bd_alloc(1);
	if (blk == NULL)
		return -ENOMEM;
	ret = bd_read(dev, bd_quorum_blkno(slot_nr), blk, 1);
	if (ret < 0) {
		snprintf(why, whylen, "quorum block of slot %d: read failed: %s", slot_nr,
			 errstr(ret));
		goto out;
	}
	ret = bd_qblock_decode(blk, s->fsid, bd_quorum_blkno(slot_nr), out, cwhy, sizeof(cwhy));
	if (ret < 0)
		snprintf(why, whylen, "quorum block of slot %d: %s", slot_nr, cwhy);
out:
	bd_free(blk);
	return ret;
}

uint16_t bd_present_mask(const struct bd_super *s)
{
	uint16_t mask = 0;

	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if (bd_slot_present(s, i))
			mask |= (uint16_t)(1u << i);
	return mask;
}

uint16_t bd_read_qblocks(struct bd_dev *dev, const struct bd_super *s,
			 struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS], char *why, size_t whylen)
{
	uint16_t ok = 0;
	char one[256];

	if (whylen > 0)
		why[0] = '\0';
	memset(blocks, 0, sizeof(blocks[0]) * FUSEFS_QUORUM_MAX_SLOTS);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		blocks[i].vote_slot = -1;
		if (!bd_slot_present(s, i))
			continue;
		if (bd_read_qblock(dev, s, i, &blocks[i], one, sizeof(one)) == 0) {
			ok |= (uint16_t)(1u << i);
			continue;
		}
		memset(&blocks[i], 0, sizeof(blocks[i]));
		blocks[i].vote_slot = -1;
		if (whylen > 0 && why[0] == '\0')
			snprintf(why, whylen, "%s", one);
	}
	return ok;
}

