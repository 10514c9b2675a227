/*
 * blocks.h - reading the super block and the quorum blocks from a device
 * and verifying them (dev.h + codec.h).  A block that fails verification
 * is an error naming the block and the check; nothing is written on the
 * strength of a bad read.
 */
#ifndef FUSEFS_BLOCKS_H
#define FUSEFS_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"

/* Read and decode the super block; also checks it fits the device. */
int bd_read_super(struct bd_dev *dev, struct bd_super *out, char *why, size_t whylen);
/*
 * Read and decode one slot's quorum block: 0, the read's error, or
 * -EBADMSG when the block was read but failed verification.
 */
int bd_read_qblock(struct bd_dev *dev, const struct bd_super *s, int slot_nr,
		   struct bd_qblock *out, char *why, size_t whylen);
/*
 * Read every present slot's quorum block into blocks[] (by slot number).
 * Returns the mask of slots read and verified; a slot that failed is zeroed
 * and the first failure's reason is in why (empty when none failed).
 */
uint16_t bd_read_qblocks(struct bd_dev *dev, const struct bd_super *s,
			 struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS], char *why, size_t whylen);

#define BD_QBLOCK_WHY_LEN 200

/*
 * The same, with every present slot's result in res[] (as bd_read_qblock
 * returns it; 0 for an absent slot) and its reason in why[].
 */
uint16_t bd_read_qblocks_each(struct bd_dev *dev, const struct bd_super *s,
			      struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS],
			      int res[FUSEFS_QUORUM_MAX_SLOTS],
			      char why[FUSEFS_QUORUM_MAX_SLOTS][BD_QBLOCK_WHY_LEN]);

#endif
