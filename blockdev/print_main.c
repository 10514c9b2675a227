/*
 * fusefs-print - print a fusefs metadata device's super and quorum blocks.
 * Exit status: 0 when every block verified, 1 when any block was bad or
 * the device could not be read, 2 for usage errors.
 */
#include "blockdev/tools.h"

#include <stdio.h>

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
