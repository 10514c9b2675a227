/*
 * mount.h - what every FUSE request handler of a mount needs, and the
 * operations table (ops.c).
 */
#ifndef FUSEFS_FUSE_MOUNT_H
#define FUSEFS_FUSE_MOUNT_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"
#include "quorum/agent.h"

/* What every FUSE request handler needs. */
struct mount_ctx {
	struct bd_dev *dev;
	struct bd_super super;
	uint64_t rid;
	int slot;                    /* -1: plain client */
	struct quorum_agent *agent;  /* NULL: plain client */
	uid_t uid;
	gid_t gid;
	struct timespec mounted;
};

extern const struct fuse_lowlevel_ops mount_fuse_ops;

#endif
