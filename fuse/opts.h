/*
 * opts.h - fusefs-mount's command line: our -o options through fuse_opt,
 * -f, -d, -h, -V, and the mount(8) argument forms.
 */
#ifndef FUSEFS_FUSE_OPTS_H
#define FUSEFS_FUSE_OPTS_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define FENCE_TIMEOUT_DEFAULT_MS 15000
#define FENCE_TIMEOUT_MIN_MS 100
#define FENCE_TIMEOUT_MAX_MS 600000
#define SERVER_WAIT_DEFAULT_MS 30000
#define SERVER_WAIT_MIN_MS 100
#define SERVER_WAIT_MAX_MS 3600000
#define GRACE_MIN_MS 1000
#define GRACE_MAX_MS 3600000

struct mount_opts {
	char *device;          /* metadev_path=, or DEVICE before MOUNTPOINT */
	char *mountpoint;
	int slot_nr;           /* -1: a plain client */
	uint32_t hb_timeout_ms;
	char *fence_cmd;
	uint32_t fence_timeout_ms;
	uint32_t server_wait_ms;  /* waiting for a server: a plain client's mount */
	bool soft;             /* soft: a call fails after failover_timeout_ms; hard: it waits */
	uint32_t failover_timeout_ms;
	uint32_t grace_ms;     /* 0: the server's default */
	bool repair;           /* quorum_repair: rebuild our unreadable quorum block */
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

#endif
