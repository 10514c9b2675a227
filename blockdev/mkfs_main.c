/*
 * fusefs-mkfs - make a fusefs filesystem on a metadata device.
 */
#include "blockdev/tools.h"

#include <getopt.h>
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
		"  -h, --help                      show this help\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quorum-slot", required_argument, NULL, 'Q' },
		{ "force", no_argument, NULL, 'f' },
		{ "no-auth", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bd_mkfs_opts opts = { 0 };
	struct bd_super s;
	struct bd_dev *dev = NULL;
	char why[512];
	char list[64];
	int c, ret;

	memset(&s, 0, sizeof(s));
	while ((c = getopt_long(argc, argv, "Q:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'Q':
			if (bd_mkfs_add_slot(&s, optarg, why, sizeof(why)) < 0) {
				fprintf(stderr, "fusefs-mkfs: %s\n", why);
				return 1;
			}
			break;
		case 'f':
			opts.force = true;
			break;
		case 'A':
			opts.no_auth = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "fusefs-mkfs: %s\n",
			optind == argc ? "missing DEVICE" : "more than one DEVICE given");
		usage(stderr);
		return 2;
	}
	if (bd_slots_present_count(&s) == 0) {
		fprintf(stderr, "fusefs-mkfs: at least one quorum slot is required (-Q NR,ADDR,PORT)\n");
		return 1;
	}

	ret = bd_open(argv[optind], true, &dev, why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "fusefs-mkfs: %s\n", why);
		return 1;
	}
	ret = bd_mkfs(dev, &s, &opts, why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "fusefs-mkfs: %s\n", why);
		bd_close(dev);
		return 1;
	}
	printf("made fusefs filesystem on %s: fsid %016" PRIx64 ", %" PRIu64
	       " blocks, quorum slots %s, authentication %s\n",
	       argv[optind], s.fsid, s.total_blocks, bd_slots_present_list(&s, list, sizeof(list)),
	       opts.no_auth ? "off" : "on");
	bd_close(dev);
	return 0;
}
