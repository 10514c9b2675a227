/*
 * blockdev.h - the public face of blockdev/: crc32c, slot addresses, the
 * decoded (host order) views of the super and quorum blocks with their
 * encode/decode/verify, and whole-block O_DIRECT device I/O via io_uring.
 *
 * Conventions: functions return 0 or a negative errno.  Verification
 * failures return -EIO and, when given a reason buffer, fill it with one
 * line naming the block and the check that failed, with expected and
 * actual values.
 */
#ifndef FUSEFS_BLOCKDEV_H
#define FUSEFS_BLOCKDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "blockdev/format.h"

struct io_uring;
struct io_uring_sqe;

/* ---- crc32c (Castagnoli), standard init ~0 and final xor ~0 ---- */

uint32_t bd_crc32c(const void *buf, size_t len);
/* Continue a crc: bd_crc32c(ab) == bd_crc32c_update(bd_crc32c(a)... ) */
uint32_t bd_crc32c_update(uint32_t crc, const void *buf, size_t len);
/* The two implementations, exposed for tests and benchmarks. */
uint32_t bd_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t bd_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool bd_crc32c_hw_available(void);

/* ---- quorum slot addresses ---- */

bool bd_addr_is_unicast(const struct bd_addr *a);
/* Why a is not unicast ("multicast", ...), or NULL when it is. */
const char *bd_addr_why_not_unicast(const struct bd_addr *a);
bool bd_port_is_usable(uint16_t port);
bool bd_addr_equal(const struct bd_addr *a, const struct bd_addr *b);
/* Parse "1.2.3.4" or "::1" (brackets allowed) plus a port. */
int bd_addr_parse(const char *host, uint16_t port, struct bd_addr *out);
/* "1.2.3.4:7000" or "[::1]:7000"; returns buf. */
char *bd_addr_format(const struct bd_addr *a, char *buf, size_t len);
/* Host-only text, without port. */
char *bd_addr_host(const struct bd_addr *a, char *buf, size_t len);
int bd_addr_to_sockaddr(const struct bd_addr *a, struct sockaddr_storage *ss, socklen_t *len);
void bd_addr_from_sockaddr(const struct sockaddr_storage *ss, struct bd_addr *a);
#define BD_ADDR_STRLEN 64

/*
 * Check the slot configuration: at least one slot, every address unicast,
 * every port usable, no two slots with the same address and port.
 */
int bd_qconf_check(const struct bd_super *s, char *why, size_t whylen);

void bd_super_encode(const struct bd_super *s, struct fusefs_super_block *out);
/* Verify (crc, magic, blkno, version) and decode; then check the layout. */
int bd_super_decode(const struct fusefs_super_block *in, struct bd_super *out,
		    char *why, size_t whylen);

/* ---- quorum blocks ---- */


void bd_qblock_encode(const struct bd_qblock *qb, uint64_t fsid, uint64_t blkno,
		      struct fusefs_quorum_block *out);
int bd_qblock_decode(const struct fusefs_quorum_block *in, uint64_t fsid, uint64_t blkno,
		     struct bd_qblock *out, char *why, size_t whylen);


/* ---- generic block header ---- */

/* Fill the header and compute the crc; the block is ready to write. */
void bd_block_seal(void *block, uint32_t magic, uint64_t fsid, uint64_t blkno, uint64_t seq);

/* ---- device I/O ---- */

struct bd_dev;

/*
 * Open a regular file or block device with O_DIRECT.  Fails with a
 * logged-ready message in why (for example when the filesystem holding a
 * file refuses O_DIRECT, as tmpfs does).
 */
int bd_open(const char *path, bool writable, struct bd_dev **out, char *why, size_t whylen);
void bd_close(struct bd_dev *dev);
const char *bd_path(const struct bd_dev *dev);
uint64_t bd_size_blocks(const struct bd_dev *dev);

/* 4096-aligned buffers for O_DIRECT. */
void *bd_alloc(size_t nr_blocks);
void bd_free(void *buf);

/*
 * Synchronous whole-block I/O through the device's own ring (serialized
 * by a mutex, so any thread may call).  A write is durable (RWF_DSYNC)
 * before it returns.  A short transfer is -EIO.
 */
int bd_read(struct bd_dev *dev, uint64_t blkno, void *buf, unsigned nr_blocks);
int bd_write(struct bd_dev *dev, uint64_t blkno, const void *buf, unsigned nr_blocks);

/* For other rings (the quorum agent): prepare the same operations. */
void bd_prep_read(struct io_uring_sqe *sqe, const struct bd_dev *dev, uint64_t blkno,
		  void *buf, unsigned nr_blocks);
void bd_prep_write(struct io_uring_sqe *sqe, const struct bd_dev *dev, uint64_t blkno,
		   const void *buf, unsigned nr_blocks);
/* Turn a completion's res into 0 or -errno (short transfer: -EIO). */
int bd_io_result(int res, unsigned nr_blocks);

/* Read and decode the super block / one slot's quorum block. */
int bd_read_super(struct bd_dev *dev, struct bd_super *out, char *why, size_t whylen);
int bd_read_qblock(struct bd_dev *dev, const struct bd_super *s, int slot_nr,
		   struct bd_qblock *out, char *why, size_t whylen);
/*
 * Read every present slot's quorum block into blocks[] (by slot number).
 * Returns the mask of slots read and verified; a slot that failed is zeroed
 * and the first failure's reason is in why (empty when none failed).
 */
uint16_t bd_read_qblocks(struct bd_dev *dev, const struct bd_super *s,
			 struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS], char *why, size_t whylen);
/* The mask of a super block's present slots. */
uint16_t bd_present_mask(const struct bd_super *s);

/* ---- making a filesystem (fusefs-mkfs) ---- */

/*
 * Parse one "-Q NR,ADDR,PORT" argument into s->slots, refusing a slot
 * number outside 0..14, a slot given twice, a non-unicast address, an
 * unusable port, or an address and port another slot already has.
 */
int bd_mkfs_add_slot(struct bd_super *s, const char *arg, char *why, size_t whylen);

struct bd_mkfs_opts {
	bool force;     /* overwrite an existing fusefs filesystem */
	bool no_auth;   /* make without message authentication */
};

/*
 * Write a new filesystem with the slots in s (fsid, secret, layout are
 * filled here).  The old super block is invalidated first and the new one
 * written last, so an interrupted mkfs leaves no filesystem, never a
 * half-made one.
 */
int bd_mkfs(struct bd_dev *dev, struct bd_super *s, const struct bd_mkfs_opts *opts,
	    char *why, size_t whylen);

/* ---- printing (fusefs-print) ---- */

/*
 * Print the super block and the quorum block of every present slot to f.
 * A block that fails verification is printed as BAD with the reason and
 * the rest are still printed.  Returns the number of bad blocks (0 when
 * all verified) or a negative errno when the device could not be read.
 */
int bd_print(struct bd_dev *dev, FILE *f);

#endif
