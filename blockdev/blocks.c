/*
 * blocks.c - read and verify the super block and the quorum blocks.
 */
#include "blockdev/blocks.h"

#include "blockdev/codec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

int bd_read_super(struct bd_dev *dev, struct bd_super *out, char *why, size_t whylen)
{
	struct fusefs_super_block *blk;
	int ret;

	if (bd_size_blocks(dev) <= FUSEFS_SUPER_BLKNO) {
		snprintf(why, whylen, "%s: device too small to hold a super block", bd_path(dev));
		return -EIO;
	}
	blk = bd_alloc(1);
	if (blk == NULL)
		return -ENOMEM;
	ret = bd_read(dev, FUSEFS_SUPER_BLKNO, blk, 1);
	if (ret < 0) {
		snprintf(why, whylen, "%s: reading super block failed: %s", bd_path(dev), errstr(ret));
		goto out;
	}
	ret = bd_super_decode(blk, out, why, whylen);
	if (ret == 0 && out->total_blocks > bd_size_blocks(dev)) {
		snprintf(why, whylen, "%s: super block says %" PRIu64 " blocks but the device has %"
			 PRIu64, bd_path(dev), out->total_blocks, bd_size_blocks(dev));
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
	if (ret < 0) {
		snprintf(why, whylen, "quorum block of slot %d: %s", slot_nr, cwhy);
		ret = -EBADMSG;
	}
out:
	bd_free(blk);
	return ret;
}

uint16_t bd_read_qblocks_each(struct bd_dev *dev, const struct bd_super *s,
			      struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS],
			      int res[FUSEFS_QUORUM_MAX_SLOTS],
			      char why[FUSEFS_QUORUM_MAX_SLOTS][BD_QBLOCK_WHY_LEN])
{
	uint16_t ok = 0;

	memset(blocks, 0, sizeof(blocks[0]) * FUSEFS_QUORUM_MAX_SLOTS);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		blocks[i].vote_slot = -1;
		res[i] = 0;
		why[i][0] = '\0';
		if (!bd_slot_present(s, i))
			continue;
		res[i] = bd_read_qblock(dev, s, i, &blocks[i], why[i], BD_QBLOCK_WHY_LEN);
		if (res[i] == 0) {
			ok |= (uint16_t)(1u << i);
			continue;
		}
		memset(&blocks[i], 0, sizeof(blocks[i]));
		blocks[i].vote_slot = -1;
	}
	return ok;
}

uint16_t bd_read_qblocks(struct bd_dev *dev, const struct bd_super *s,
			 struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS], char *why, size_t whylen)
{
	char each[FUSEFS_QUORUM_MAX_SLOTS][BD_QBLOCK_WHY_LEN];
	int res[FUSEFS_QUORUM_MAX_SLOTS];
	uint16_t ok = bd_read_qblocks_each(dev, s, blocks, res, each);

	if (whylen > 0)
		why[0] = '\0';
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS && whylen > 0; i++)
		if (res[i] < 0) {
			snprintf(why, whylen, "%s", each[i]);
			break;
		}
	return ok;
}
