/*
 * fusefs-mkfs - make a fusefs filesystem on a metadata device: the super
 * block and quorum blocks (blockdev/), then the store with its root
 * directory (server/), and the super block last.
 */
#include "blockdev/tools.h"
#include "common/common.h"
#include "server/fs.h"
#include "server/store.h"

#include <errno.h>
#include <getopt.h>
#include <time.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fusefs-mkfs -Q NR,ADDR,PORT [-Q ...] [--force] [--no-auth] DEVICE\n"
		"\n"
		"Make a fusefs filesystem on DEVICE (a block device or a regular file).\n"
		"\n"
		"  -Q, --quorum-slot NR,ADDR,PORT  configure quorum slot NR (0..14) at the\n"
		"                                  IPv4 or IPv6 unicast ADDR and PORT\n"
		"  -f, --force                     overwrite an existing fusefs filesystem\n"
		"      --no-auth                   do not authenticate quorum messages\n"
		"      --root-uid UID, --root-gid GID, --root-mode MODE\n"
		"                                  owner and mode of the root directory\n"
		"                                  (default: whoever runs mkfs, 0755)\n"
		"  -h, --help                      show this help\n");
}

static int fill(struct sqlite3 *db, void *arg)
{
	return fs_format(db, arg);
}

static int format_store(void *arg, struct bd_dev *dev, const struct bd_super *s, char *why,
			size_t whylen)
{
	return store_create(dev, s, fill, arg, why, whylen);
}

/* One option of getopt_long's into the settings.  0, 1 (stop: exit 1) or 2 (usage: exit 2). */
static int take_option(int c, struct bd_super *s, struct bd_mkfs_opts *opts,
		       struct fs_format_opts *fo)
{
	char why[512], *end;
	unsigned long m;
	uint64_t v;

	switch (c) {
	case 'Q':
		if (bd_mkfs_add_slot(s, optarg, why, sizeof(why)) == 0)
			return 0;
		fprintf(stderr, "fusefs-mkfs: %s\n", why);
		return 1;
	case 'f':
		opts->force = true;
		return 0;
	case 'A':
		opts->no_auth = true;
		return 0;
	case 'U':
	case 'G':
		if (parse_u64(optarg, 0, UINT32_MAX - 1, &v) < 0) {
			fprintf(stderr, "fusefs-mkfs: --root-%s %s: not a number 0..%u\n",
				c == 'U' ? "uid" : "gid", optarg, UINT32_MAX - 1);
			return 1;
		}
		*(c == 'U' ? &fo->root_uid : &fo->root_gid) = (uint32_t)v;
		return 0;
	case 'M':
		m = strtoul(optarg, &end, 8);
		if (optarg[0] == '\0' || *end != '\0' || m > 07777) {
			fprintf(stderr, "fusefs-mkfs: --root-mode %s: not an octal mode 0..7777\n", optarg);
			return 1;
		}
		fo->root_mode = (uint32_t)m;
		return 0;
	default:
		usage(stderr);
		return 2;
	}
}

/* The command line into the settings: -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct bd_super *s, struct bd_mkfs_opts *opts,
		      struct fs_format_opts *fo)
{
	static const struct option longopts[] = {
		{ "quorum-slot", required_argument, NULL, 'Q' },
		{ "force", no_argument, NULL, 'f' },
		{ "no-auth", no_argument, NULL, 'A' },
		{ "root-uid", required_argument, NULL, 'U' },
		{ "root-gid", required_argument, NULL, 'G' },
		{ "root-mode", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret;

	while ((c = getopt_long(argc, argv, "Q:fh", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		ret = take_option(c, s, opts, fo);
		if (ret != 0)
			return ret;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "fusefs-mkfs: %s\n",
			optind == argc ? "missing DEVICE" : "more than one DEVICE given");
		usage(stderr);
		return 2;
	}
	if (bd_slots_present_count(s) == 0) {
		fprintf(stderr, "fusefs-mkfs: at least one quorum slot is required (-Q NR,ADDR,PORT)\n");
		return 1;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct fs_format_opts fo = { .root_uid = getuid(), .root_gid = getgid(), .root_mode = 0755 };
	struct bd_mkfs_opts opts = { .format_store = format_store, .format_arg = &fo };
	struct timespec ts;
	struct bd_super s;
	struct bd_dev *dev = NULL;
	char why[512];
	char list[64];
	int ret;

	memset(&s, 0, sizeof(s));
	ret = parse_args(argc, argv, &s, &opts, &fo);
	if (ret >= 0)
		return ret;
	ret = bd_open(argv[optind], true, &dev, why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "fusefs-mkfs: %s\n", why);
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	fo.now = (struct fs_time){ ts.tv_sec, (uint32_t)ts.tv_nsec };
	ret = bd_mkfs(dev, &s, &opts, why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "fusefs-mkfs: %s\n", why);
		bd_close(dev);
		return 1;
	}
	printf("made fusefs filesystem on %s: fsid %016" PRIx64 ", %" PRIu64
	       " blocks, quorum slots %s, authentication %s, root directory %o owned by %u:%u\n",
	       argv[optind], s.fsid, s.total_blocks, bd_slots_present_list(&s, list, sizeof(list)),
	       opts.no_auth ? "off" : "on", fo.root_mode, fo.root_uid, fo.root_gid);
	bd_close(dev);
	return 0;
}
