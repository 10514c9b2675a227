/*
 * fusefs-print - print a fusefs metadata device's super and quorum blocks,
 * the store's regions and, when the store opens read-only, its inode and
 * block counts.  Exit status: 0 when every block verified, 1 when any
 * block was bad or the device could not be read, 2 for usage errors.
 */
#include "blockdev/blocks.h"
#include "blockdev/tools.h"
#include "common/common.h"
#include "server/fs.h"
#include "server/store.h"

#include <inttypes.h>
#include <stdio.h>

/* The store: its regions, and what it holds (read-only; a live store may be mid-change). */
static void print_store(struct bd_dev *dev, FILE *f)
{
	struct store_config cfg = { .dev = dev, .read_only = true };
	struct bd_super s;
	struct store *st;
	struct fs *fs;
	struct fs_statfs sf;
	char why[512];

	if (bd_read_super(dev, &s, why, sizeof(why)) < 0)
		return;
	cfg.super = &s;
	log_mute(true);
	if (store_open(&cfg, &st, why, sizeof(why)) < 0) {
		log_mute(false);
		fprintf(f, "store: cannot open it read-only: %s\n", why);
		return;
	}
	if (fs_attach(store_db(st), NULL, &fs) == 0) {
		fs_set_space(fs, store_space_bytes(st));
		if (fs_statfs(fs, &sf) == 0)
			fprintf(f, "store: %" PRIu64 " inodes, %" PRIu64 " of %" PRIu64
				" blocks of %" PRIu64 " bytes used, %" PRIu64 " free\n",
				sf.files - sf.ffree, sf.blocks - sf.bfree, sf.blocks, sf.bsize, sf.bfree);
		fs_detach(fs);
	} else {
		fprintf(f, "store: the database holds no filesystem tables\n");
	}
	store_abandon(st);
	log_mute(false);
}

int main(int argc, char **argv)
{
	struct bd_dev *dev;
	char why[512];
	int ret;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: fusefs-print DEVICE\n\n"
		       "Print the super block and every configured slot's quorum block.\n"
		       "A block that fails verification is reported with the reason.\n");
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: fusefs-print DEVICE\n");
		return 2;
	}
	ret = bd_open(argv[1], false, &dev, why, sizeof(why));
	if (ret < 0) {
		fprintf(stderr, "fusefs-print: %s\n", why);
		return 1;
	}
	ret = bd_print(dev, stdout);
	if (ret >= 0)
		print_store(dev, stdout);
	bd_close(dev);
	if (ret < 0) {
		fprintf(stderr, "fusefs-print: %s: %s\n", argv[1], errstr(ret));
		return 1;
	}
	if (ret > 0) {
		fprintf(stderr, "fusefs-print: %s: %d bad block%s\n", argv[1], ret,
			ret == 1 ? "" : "s");
		return 1;
	}
	return 0;
}
