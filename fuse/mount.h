/*
 * mount.h - the public face of fuse/: fusefs-mount's options, the FUSE
 * operations, and the client side of the server protocol.
 */
#ifndef FUSEFS_MOUNT_H
#define FUSEFS_MOUNT_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "blockdev/format.h"
#include "quorum/quorum.h"

#define FENCE_TIMEOUT_DEFAULT_MS 15000
#define FENCE_TIMEOUT_MIN_MS 100
#define FENCE_TIMEOUT_MAX_MS 600000

struct mount_opts {
	char *device;          /* metadev_path=, or DEVICE before MOUNTPOINT */
	char *mountpoint;
	int slot_nr;           /* -1: a plain client */
	uint32_t hb_timeout_ms;
	char *fence_cmd;
	uint32_t fence_timeout_ms;
	bool foreground;
	bool debug;
	bool help;
	bool version;
	struct fuse_args fuse_args; /* what is left for libfuse */
};

/*
 * Parse fusefs-mount's command line: our -o options (through fuse_opt),
 * -f, -d, -h, -V, and one or two positionals (MOUNTPOINT, or DEVICE
 * MOUNTPOINT as mount(8) passes them).  libfuse's own options are kept in
 * fuse_args.  0, or -EINVAL with one line in why.
 */
int mount_opts_parse(int argc, char **argv, struct mount_opts *o, char *why, size_t whylen);
void mount_opts_free(struct mount_opts *o);
void mount_usage(FILE *f);

/* What every FUSE request handler needs. */
struct fs_ctx {
	struct bd_dev *dev;
	struct bd_super super;
	uint64_t rid;
	int slot;                    /* -1: plain client */
	struct quorum_agent *agent;  /* NULL: plain client */
	uid_t uid;
	gid_t gid;
	struct timespec mounted;
};

extern const struct fuse_lowlevel_ops fs_ops;

/*
 * The server in use, per the quorum blocks, checked with a greeting:
 * "ADDR term T rid R serving", "... not serving (...)", "... unreachable: ..."
 * or "none".  Returns the text length or -errno.
 */
int fsclient_server_text(struct fs_ctx *fs, char *buf, size_t len);

#endif
