/*
 * opts.c - fusefs-mount's command line, through libfuse's fuse_opt.
 * Every refusal is one line naming the option and the allowed values.
 */
#include "fuse/opts.h"

#include "blockdev/format.h"
#include "common/common.h"
#include "quorum/election.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	KEY_DEVICE, KEY_SLOT, KEY_HB, KEY_FENCE_CMD, KEY_FENCE_TIMEOUT, KEY_SERVER_WAIT,
	KEY_REPAIR, KEY_SOFT, KEY_HARD, KEY_FAILOVER_TIMEOUT, KEY_GRACE, KEY_FOREGROUND, KEY_DEBUG,
	KEY_HELP,
	KEY_VERSION,
};

static const struct fuse_opt opt_spec[] = {
	FUSE_OPT_KEY("metadev_path=", KEY_DEVICE),
	FUSE_OPT_KEY("quorum_slot_nr=", KEY_SLOT),
	FUSE_OPT_KEY("quorum_heartbeat_timeout_ms=", KEY_HB),
	FUSE_OPT_KEY("fence_cmd=", KEY_FENCE_CMD),
	FUSE_OPT_KEY("fence_timeout_ms=", KEY_FENCE_TIMEOUT),
	FUSE_OPT_KEY("server_wait_ms=", KEY_SERVER_WAIT),
	FUSE_OPT_KEY("quorum_repair", KEY_REPAIR),
	FUSE_OPT_KEY("soft", KEY_SOFT),
	FUSE_OPT_KEY("hard", KEY_HARD),
	FUSE_OPT_KEY("failover_timeout_ms=", KEY_FAILOVER_TIMEOUT),
	FUSE_OPT_KEY("grace_ms=", KEY_GRACE),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END,
};

struct parse_ctx {
	struct mount_opts *o;
	char *why;
	size_t whylen;
	int err;
	char *positional[2];
	int npositional;
	char slot_seen[32];
};

static int fail(struct parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err == 0) {
		va_start(ap, fmt);
		vsnprintf(c->why, c->whylen, fmt, ap);
		va_end(ap);
		c->err = -EINVAL;
	}
	return -1;
}

static const char *value_of(const char *arg)
{
	const char *eq = strchr(arg, '=');

	return eq ? eq + 1 : "";
}

static int set_string(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -1;
}

/* A "name=milliseconds" option within [min, max]; the error names it as given. */
static int set_ms(struct parse_ctx *c, const char *arg, uint64_t min, uint64_t max, uint32_t *dst)
{
	const char *v = value_of(arg);
	uint64_t n;

	if (parse_u64(v, min, max, &n) < 0)
		return fail(c, "%s: out of range %" PRIu64 "..%" PRIu64, arg, min, max);
	*dst = (uint32_t)n;
	return 0;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse_ctx *c = data;
	struct mount_opts *o = c->o;
	const char *v = value_of(arg);
	uint64_t n;

	(void)outargs;
	switch (key) {
	case KEY_DEVICE:
		return set_string(&o->device, v) < 0 ? fail(c, "out of memory") : 0;
	case KEY_SLOT:
		if (c->slot_seen[0])
			return fail(c, "quorum_slot_nr given twice (%s and %s)", c->slot_seen, v);
		snprintf(c->slot_seen, sizeof(c->slot_seen), "%s", v);
		if (parse_u64(v, 0, UINT32_MAX, &n) < 0 || !bd_slot_nr_valid((long)n))
			return fail(c, "quorum_slot_nr=%s: not a slot number 0..%d", v,
				    FUSEFS_QUORUM_MAX_SLOTS - 1);
		o->slot_nr = (int)n;
		return 0;
	case KEY_HB:
		return set_ms(c, arg, QUORUM_HB_TIMEOUT_MIN_MS, QUORUM_HB_TIMEOUT_MAX_MS,
			      &o->hb_timeout_ms);
	case KEY_FENCE_CMD:
		if (v[0] != '/' || access(v, X_OK) < 0)
			return fail(c, "fence_cmd=%s: not an executable file given by absolute path", v);
		return set_string(&o->fence_cmd, v) < 0 ? fail(c, "out of memory") : 0;
	case KEY_FENCE_TIMEOUT:
		return set_ms(c, arg, FENCE_TIMEOUT_MIN_MS, FENCE_TIMEOUT_MAX_MS,
			      &o->fence_timeout_ms);
	case KEY_SERVER_WAIT:
		return set_ms(c, arg, SERVER_WAIT_MIN_MS, SERVER_WAIT_MAX_MS, &o->server_wait_ms);
	case KEY_FAILOVER_TIMEOUT:
		return set_ms(c, arg, SERVER_WAIT_MIN_MS, SERVER_WAIT_MAX_MS,
			      &o->failover_timeout_ms);
	case KEY_GRACE:
		return set_ms(c, arg, GRACE_MIN_MS, GRACE_MAX_MS, &o->grace_ms);
	case KEY_REPAIR:
		o->repair = true;
		return 0;
	case KEY_SOFT:
	case KEY_HARD:
		o->soft = key == KEY_SOFT;
		return 0;
	case KEY_FOREGROUND:
		o->foreground = true;
		return 0;
	case KEY_DEBUG:
		o->debug = true;
		o->foreground = true;
		return 1; /* libfuse prints its requests too */
	case KEY_HELP:
		o->help = true;
		return 0;
	case KEY_VERSION:
		o->version = true;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (c->npositional >= 2)
			return fail(c, "unexpected argument '%s' (usage: [DEVICE] MOUNTPOINT)", arg);
		c->positional[c->npositional++] = strdup(arg);
		return 0;
	default:
		return 1; /* libfuse's own options (allow_other, ...) */
	}
}

int mount_opts_parse(int argc, char **argv, struct mount_opts *o, char *why, size_t whylen)
{
	struct parse_ctx c = { .o = o, .why = why, .whylen = whylen };
	char *dev = NULL;

	memset(o, 0, sizeof(*o));
	o->slot_nr = -1;
	o->hb_timeout_ms = QUORUM_HB_TIMEOUT_DEFAULT_MS;
	o->fence_timeout_ms = FENCE_TIMEOUT_DEFAULT_MS;
	o->server_wait_ms = SERVER_WAIT_DEFAULT_MS;
	o->failover_timeout_ms = SERVER_WAIT_DEFAULT_MS;
	o->fuse_args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	why[0] = '\0';

	if (fuse_opt_parse(&o->fuse_args, &c, opt_spec, opt_proc) < 0 && c.err == 0) {
		snprintf(why, whylen, "invalid arguments");
		c.err = -EINVAL;
	}
	if (c.err == 0 && !o->help && !o->version) {
		if (c.npositional == 2) {
			dev = c.positional[0];
			o->mountpoint = c.positional[1];
			c.positional[0] = c.positional[1] = NULL;
		} else if (c.npositional == 1) {
			o->mountpoint = c.positional[0];
			c.positional[0] = NULL;
		}
		if (dev && o->device && strcmp(dev, o->device) != 0) {
			fail(&c, "two devices given: %s and metadev_path=%s", dev, o->device);
		} else if (dev) {
			free(o->device);
			o->device = dev;
			dev = NULL;
		}
		if (c.err == 0 && o->mountpoint == NULL)
			fail(&c, "no MOUNTPOINT given");
		else if (c.err == 0 && (o->device == NULL || o->device[0] == '\0'))
			fail(&c, "no metadata device: give -o metadev_path=DEVICE, or DEVICE before "
				 "MOUNTPOINT");
		else if (c.err == 0 && o->repair && o->slot_nr < 0)
			fail(&c, "quorum_repair: only a quorum member has a quorum block to repair "
				 "(give quorum_slot_nr)");
	}
	free(dev);
	for (int i = 0; i < 2; i++)
		free(c.positional[i]);
	if (c.err)
		mount_opts_free(o);
	return c.err;
}

void mount_opts_free(struct mount_opts *o)
{
	free(o->device);
	free(o->mountpoint);
	free(o->fence_cmd);
	fuse_opt_free_args(&o->fuse_args);
	o->device = o->mountpoint = o->fence_cmd = NULL;
}

void mount_usage(FILE *f)
{
	fprintf(f,
		"usage: fusefs-mount [-f] [-d] -o metadev_path=DEVICE[,OPTIONS] MOUNTPOINT\n"
		"       fusefs-mount DEVICE MOUNTPOINT [-o OPTIONS]\n"
		"\n"
		"Mount the fusefs filesystem on the metadata device DEVICE.\n"
		"\n"
		"  -f                             stay in the foreground (log to stderr)\n"
		"  -d                             debug: foreground, and log every request\n"
		"  -o metadev_path=DEVICE         the metadata device (or give DEVICE first)\n"
		"  -o quorum_slot_nr=N            take quorum slot N and join the election;\n"
		"                                 without it the mount is a plain client\n"
		"  -o quorum_heartbeat_timeout_ms=MS\n"
		"                                 how long without a leader's heartbeat before\n"
		"                                 an election (%d..%d, default %d)\n"
		"  -o fence_cmd=PATH              fence agent for earlier leaders (default: the\n"
		"                                 local fencer, for leaders on this host)\n"
		"  -o fence_timeout_ms=MS         deadline for each fence (%d..%d, default %d)\n"
		"  -o quorum_repair               if our slot's quorum block fails verification,\n"
		"                                 rebuild it from the other slots' blocks\n"
		"  -o server_wait_ms=MS           how long a plain client's mount waits for a\n"
		"                                 server to answer (%d..%d, default %d)\n"
		"  -o hard                        operations wait for a server as long as it\n"
		"                                 takes, across failovers (the default)\n"
		"  -o soft,failover_timeout_ms=MS an operation no server answered within MS\n"
		"                                 fails with EIO (%d..%d, default %d)\n"
		"  -o grace_ms=MS                 when this member serves: how long a mount\n"
		"                                 that lost its connection keeps its open files\n"
		"                                 (%d..%d, default 3 heartbeat timeouts, >= 10 s)\n"
		"  -o allow_other, ...            libfuse's mount options\n"
		"  -h, --help                     this help\n"
		"  -V, --version                  version\n",
		QUORUM_HB_TIMEOUT_MIN_MS, QUORUM_HB_TIMEOUT_MAX_MS, QUORUM_HB_TIMEOUT_DEFAULT_MS,
		FENCE_TIMEOUT_MIN_MS, FENCE_TIMEOUT_MAX_MS, FENCE_TIMEOUT_DEFAULT_MS,
		SERVER_WAIT_MIN_MS, SERVER_WAIT_MAX_MS, SERVER_WAIT_DEFAULT_MS,
		SERVER_WAIT_MIN_MS, SERVER_WAIT_MAX_MS, SERVER_WAIT_DEFAULT_MS,
		GRACE_MIN_MS, GRACE_MAX_MS);
}
