/*
 * mkfs.c - make a filesystem: validate the slot arguments and write the
 * super block and zeroed, valid quorum blocks.
 */
#include "blockdev/tools.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int bd_mkfs_add_slot(struct bd_super *s, const char *arg, char *why, size_t whylen)
{
	char buf[128];
	char *nr_str, *host, *port_str, *save = NULL;
	const char *reason;
	struct bd_addr addr;
	uint64_t nr, port;
	char a1[BD_ADDR_STRLEN];

	if (strlen(arg) >= sizeof(buf)) {
		snprintf(why, whylen, "-Q %.32s...: too long", arg);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	nr_str = strtok_r(buf, ",", &save);
	host = strtok_r(NULL, ",", &save);
	port_str = strtok_r(NULL, ",", &save);
	if (nr_str == NULL || host == NULL || port_str == NULL || strtok_r(NULL, ",", &save)) {
		snprintf(why, whylen, "-Q %s: expected NR,ADDR,PORT", arg);
		return -EINVAL;
	}
	if (parse_u64(nr_str, 0, UINT32_MAX, &nr) < 0 || !bd_slot_nr_valid((long)nr)) {
		snprintf(why, whylen, "-Q %s: slot number %s is out of range 0..%d", arg, nr_str,
			 FUSEFS_QUORUM_MAX_SLOTS - 1);
		return -ERANGE;
	}
	if (parse_u64(port_str, 0, UINT16_MAX, &port) < 0) {
		snprintf(why, whylen, "-Q %s: port %s is not a number in 1..65534", arg, port_str);
		return -EINVAL;
	}
	if (!bd_port_is_usable((uint16_t)port)) {
		snprintf(why, whylen, "-Q %s: port %" PRIu64 " is not usable (use 1..65534)", arg,
			 port);
		return -EINVAL;
	}
	if (bd_addr_parse(host, (uint16_t)port, &addr) < 0) {
		snprintf(why, whylen, "-Q %s: %s is not an IPv4 or IPv6 address", arg, host);
		return -EINVAL;
	}
	reason = bd_addr_why_not_unicast(&addr);
	if (reason != NULL) {
		snprintf(why, whylen, "-Q %s: address %s is not unicast: it is %s", arg, host, reason);
		return -EINVAL;
	}
	if (bd_slot_present(s, (long)nr)) {
		snprintf(why, whylen, "-Q %s: slot %" PRIu64 " is given twice", arg, nr);
		return -EEXIST;
	}
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		if (bd_slot_present(s, i) && bd_addr_equal(&s->slots[i], &addr)) {
			snprintf(why, whylen, "-Q %s: slots %d and %" PRIu64 " have the same address %s",
				 arg, i, nr, bd_addr_format(&addr, a1, sizeof(a1)));
			return -EEXIST;
		}
	}
	s->slots[nr] = addr;
	return 0;
}

static int rand_bytes(void *buf, size_t len)
{
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

/* Is there a fusefs super block here?  Only a fully valid one counts. */
static bool dev_holds_fusefs(struct bd_dev *dev, uint64_t *fsid)
{
	struct bd_super old;
	char why[256];

	if (bd_read_super(dev, &old, why, sizeof(why)) < 0)
		return false;
	*fsid = old.fsid;
	return true;
}

/* May mkfs write here?  The slots, the size, and (without force) no filesystem already. */
static int mkfs_check(struct bd_dev *dev, const struct bd_super *s, bool force, char *why,
		      size_t whylen)
{
	const uint64_t total = bd_size_blocks(dev);
	uint64_t old_fsid;
	int ret = bd_qconf_check(s, why, whylen);

	if (ret < 0)
		return ret;
	if (total < FUSEFS_MIN_TOTAL_BLOCKS) {
		snprintf(why, whylen, "%s: device has %" PRIu64 " blocks (%" PRIu64
			 " KiB) but the layout needs at least %d blocks (%d KiB)", bd_path(dev),
			 total, total * 4, FUSEFS_MIN_TOTAL_BLOCKS, FUSEFS_MIN_TOTAL_BLOCKS * 4);
		return -ENOSPC;
	}
	if (!force && dev_holds_fusefs(dev, &old_fsid)) {
		snprintf(why, whylen, "%s already holds a fusefs filesystem (fsid %016" PRIx64
			 "); use --force to overwrite it", bd_path(dev), old_fsid);
		return -EEXIST;
	}
	return 0;
}

/* The new super block's fields: the layout, a random fsid and cluster secret. */
static int super_fill(struct bd_super *s, uint64_t total, bool no_auth, char *why, size_t whylen)
{
	int ret;

	s->format_version = FUSEFS_FORMAT_VERSION;
	s->flags = no_auth ? 0 : FUSEFS_SUPER_FLAG_AUTH;
	s->total_blocks = total;
	s->quorum_blkno = FUSEFS_QUORUM_BLKNO;
	s->quorum_blocks = FUSEFS_QUORUM_BLOCKS;
	s->store_blkno = FUSEFS_STORE_BLKNO;
	s->store_blocks = total - FUSEFS_STORE_BLKNO;
	s->mkfs_sec = (uint64_t)time(NULL);
	s->qconf_version = 1;
	s->seq = 1;
	do {
		ret = rand_bytes(&s->fsid, sizeof(s->fsid));
	} while (ret == 0 && s->fsid == 0);
	if (ret == 0)
		ret = rand_bytes(s->cluster_secret, sizeof(s->cluster_secret));
	if (ret < 0)
		snprintf(why, whylen, "OpenSSL RAND_bytes failed to make an fsid and secret");
	return ret;
}

/*
 * The writes, each durable, in the order that never leaves a mix of old
 * and new that verifies: the old super block invalidated, zeroed quorum
 * blocks, the store's header and empty regions.  blk holds 16 blocks.
 */
static int mkfs_write_regions(struct bd_dev *dev, const struct bd_super *s, void *blk)
{
	struct bd_store_layout layout;
	struct bd_qblock qb;
	int ret;

	memset(blk, 0, FUSEFS_BLOCK_SIZE);
	ret = bd_write(dev, FUSEFS_SUPER_BLKNO, blk, 1, BD_WRITE_DURABLE);
	memset(&qb, 0, sizeof(qb));
	qb.vote_slot = -1;
	for (int i = 0; ret == 0 && i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		bd_qblock_encode(&qb, s->fsid, bd_quorum_blkno(i), blk);
		ret = bd_write(dev, bd_quorum_blkno(i), blk, 1, BD_WRITE_DURABLE);
	}
	if (ret < 0)
		return ret;
	bd_store_layout(s, &layout);
	bd_store_header_encode(s, &layout, blk);
	ret = bd_write(dev, FUSEFS_STORE_HDR_BLKNO, blk, 1, BD_WRITE_DURABLE);
	memset(blk, 0, 16 * FUSEFS_BLOCK_SIZE);
	if (ret == 0)
		ret = bd_write(dev, layout.log_blkno, blk, 16, BD_WRITE_DURABLE);
	if (ret == 0)
		ret = bd_write(dev, layout.db_blkno, blk, 16, BD_WRITE_DURABLE);
	return ret;
}

int bd_mkfs(struct bd_dev *dev, struct bd_super *s, const struct bd_mkfs_opts *opts,
	    char *why, size_t whylen)
{
	void *blk;
	int ret = mkfs_check(dev, s, opts->force, why, whylen);

	if (ret == 0)
		ret = super_fill(s, bd_size_blocks(dev), opts->no_auth, why, whylen);
	if (ret < 0)
		return ret;
	blk = bd_alloc(16);
	if (blk == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	ret = mkfs_write_regions(dev, s, blk);
	if (ret == 0 && opts->format_store != NULL) {
		ret = opts->format_store(opts->format_arg, dev, s, why, whylen);
		if (ret < 0) {
			bd_free(blk);
			return ret;
		}
	}
	/* the super block last: only now is this a filesystem */
	if (ret == 0) {
		bd_super_encode(s, blk);
		ret = bd_write(dev, FUSEFS_SUPER_BLKNO, blk, 1, BD_WRITE_DURABLE);
	}
	if (ret < 0)
		snprintf(why, whylen, "%s: write failed: %s", bd_path(dev), errstr(ret));
	bd_free(blk);
	return ret;
}
