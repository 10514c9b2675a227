/*
 * tools.h - the library side of fusefs-mkfs and fusefs-print.
 */
#ifndef FUSEFS_TOOLS_H
#define FUSEFS_TOOLS_H

#include <stdbool.h>
#include <stdio.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"

/*
 * Parse one "-Q NR,ADDR,PORT" argument into s->slots, refusing a slot
 * number outside 0..14, a slot given twice, a non-unicast address, an
 * unusable port, or an address and port another slot already has.
 */
int bd_mkfs_add_slot(struct bd_super *s, const char *arg, char *why, size_t whylen);

struct bd_mkfs_opts {
	bool force;     /* overwrite an existing fusefs filesystem */
	bool no_auth;   /* make without message authentication */
	/*
	 * Fill the store (server/), called once its regions are laid out and
	 * zeroed and before the super block is written; NULL leaves it empty.
	 */
	int (*format_store)(void *arg, struct bd_dev *dev, const struct bd_super *s, char *why,
			    size_t whylen);
	void *format_arg;
};

/*
 * Write a new filesystem with the slots in s (fsid, secret, layout are
 * filled here).  The old super block is invalidated first and the new one
 * written last, so an interrupted mkfs leaves no filesystem, never a
 * half-made one.  In between: zeroed quorum blocks, the store header, the
 * start of the log region zeroed (an empty log), then format_store.
 */
int bd_mkfs(struct bd_dev *dev, struct bd_super *s, const struct bd_mkfs_opts *opts,
	    char *why, size_t whylen);

/*
 * Print the super block and the quorum block of every present slot to f.
 * A block that fails verification is printed as BAD with the reason and
 * the rest are still printed.  Returns the number of bad blocks (0 when
 * all verified) or a negative errno when the device could not be read.
 */
int bd_print(struct bd_dev *dev, FILE *f);

#endif
