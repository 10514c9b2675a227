/*
 * bench_store.c - the store and the filesystem logic without FUSE or TCP:
 * operations per second on a metadata file on the local disk, one
 * operation per commit and batches of 64; device writes and flushes per
 * commit; the term gate's read.
 */
#include "tests/bench.h"

#include "blockdev/dev.h"
#include "blockdev/tools.h"
#include "common/common.h"
#include "server/fs.h"
#include "server/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_BLOCKS (256 * 1024) /* 1 GiB */

static int fill(struct sqlite3 *db, void *arg)
{
	return fs_format(db, arg);
}

struct env {
	struct bd_dev *dev;
	struct bd_super super;
	struct store *st;
	struct fs *fs;
	struct fs_cred cred;
	char path[256];
};

static int env_open(struct env *e)
{
	struct fs_format_opts fo = { .root_mode = 0755 };
	struct bd_mkfs_opts mo = { .format_store = NULL };
	struct store_config cfg;
	char why[512];
	int fd;

	snprintf(e->path, sizeof(e->path), "/var/tmp/fusefs-bench-store.%d", getpid());
	fd = open(e->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -errno;
	/* a written file, as a device is: no block allocation inside the timed loops */
	if (posix_fallocate(fd, 0, (off_t)FILE_BLOCKS * 4096) != 0) {
		close(fd);
		return -ENOSPC;
	}
	close(fd);
	if (bd_open(e->path, true, &e->dev, why, sizeof(why)) < 0 ||
	    bd_mkfs_add_slot(&e->super, "0,127.0.0.1,7999", why, sizeof(why)) < 0) {
		fprintf(stderr, "bench: %s\n", why);
		return -EIO;
	}
	mo.format_store = NULL;
	if (bd_mkfs(e->dev, &e->super, &mo, why, sizeof(why)) < 0 ||
	    store_create(e->dev, &e->super, fill, &fo, why, sizeof(why)) < 0) {
		fprintf(stderr, "bench: %s\n", why);
		return -EIO;
	}
	cfg = (struct store_config){ .dev = e->dev, .super = &e->super, .term = 1 };
	if (store_open(&cfg, &e->st, why, sizeof(why)) < 0 ||
	    fs_attach(store_db(e->st), NULL, &e->fs) < 0) {
		fprintf(stderr, "bench: %s\n", why);
		return -EIO;
	}
	fs_set_space(e->fs, store_space_bytes(e->st));
	return 0;
}

static void env_close(struct env *e)
{
	fs_detach(e->fs);
	store_close(e->st);
	bd_close(e->dev);
	unlink(e->path);
}

enum op { OP_CREATE, OP_STAT, OP_RENAME, OP_UNLINK, OP_WRITE4K, OP_WRITE1M, OP_NR };

static const char *const op_names[OP_NR] = {
	"create", "stat", "rename", "unlink", "4 KiB write", "1 MiB write",
};

static int do_op(struct env *e, enum op op, int i, uint64_t dir, uint64_t file)
{
	static char buf[1 << 20];
	char name[32], name2[32];
	struct fs_attr a;

	snprintf(name, sizeof(name), "f%d", i);
	snprintf(name2, sizeof(name2), "g%d", i);
	switch (op) {
	case OP_CREATE:
		return fs_create(e->fs, &e->cred, dir, name, strlen(name), 0644, O_CREAT | O_WRONLY, &a);
	case OP_STAT:
		return fs_lookup(e->fs, &e->cred, dir, name, strlen(name), &a);
	case OP_RENAME:
		return fs_rename(e->fs, &e->cred, dir, name, strlen(name), dir, name2, strlen(name2), 0);
	case OP_UNLINK:
		return fs_unlink(e->fs, &e->cred, dir, name2, strlen(name2));
	case OP_WRITE4K:
		return fs_write(e->fs, &e->cred, file, (uint64_t)i * 4096, 0, buf, 4096, &a);
	case OP_WRITE1M:
		return fs_write(e->fs, &e->cred, file, (uint64_t)(i % 256) << 20, 0, buf, sizeof(buf), &a);
	case OP_NR:
		break;
	}
	return -EINVAL;
}

/* n operations, batch of them per commit; ops per second. */
static double run(struct env *e, enum op op, int n, int batch, uint64_t dir, uint64_t file)
{
	mono_ns t0 = mono_now();

	for (int i = 0; i < n; i += batch) {
		bool writes = op != OP_STAT;

		if (writes && store_begin(e->st) < 0)
			return -1;
		for (int j = i; j < i + batch && j < n; j++) {
			int ret;

			if (writes)
				store_op_begin(e->st);
			ret = do_op(e, op, j, dir, file);
			if (writes)
				ret = store_op_end(e->st, ret);
			if (ret < 0) {
				fprintf(stderr, "bench: %s %d: %s\n", op_names[op], j, errstr(ret));
				if (writes)
					store_rollback(e->st);
				return -1;
			}
		}
		if (writes && store_commit(e->st) < 0)
			return -1;
	}
	return n / ((double)(mono_now() - t0) / 1e9);
}

void bench_store(void)
{
	static const int counts[OP_NR] = { 2000, 2000, 2000, 2000, 2000, 200 };
	struct env e;
	struct fs_attr d1, d64, f1, f64;
	struct store_stats s0, s1;
	struct bd_stats b0, b1;
	double one[OP_NR], many[OP_NR];

	memset(&e, 0, sizeof(e));
	if (env_open(&e) < 0) {
		printf("%-44s %14s\n", "store", "skipped (cannot make a file in /var/tmp)");
		return;
	}
	store_begin(e.st);
	fs_mkdir(e.fs, &e.cred, FS_ROOT_INO, "one", 3, 0755, &d1);
	fs_mkdir(e.fs, &e.cred, FS_ROOT_INO, "many", 4, 0755, &d64);
	fs_create(e.fs, &e.cred, FS_ROOT_INO, "f1", 2, 0644, O_CREAT | O_WRONLY, &f1);
	fs_create(e.fs, &e.cred, FS_ROOT_INO, "f64", 3, 0644, O_CREAT | O_WRONLY, &f64);
	store_commit(e.st);

	store_get_stats(e.st, &s0);
	bd_get_stats(e.dev, &b0);
	for (int op = 0; op < OP_NR; op++)
		one[op] = run(&e, (enum op)op, counts[op], 1, d1.ino, f1.ino);
	store_get_stats(e.st, &s1);
	bd_get_stats(e.dev, &b1);
	for (int op = 0; op < OP_NR; op++)
		many[op] = run(&e, (enum op)op, counts[op], op == OP_WRITE1M ? 4 : 64, d64.ino, f64.ino);

	printf("\nstore: operations per second on a metadata file (one per commit | 64 per commit;\n"
	       "  1 MiB writes: 4 per commit, a batch's limit)\n");
	for (int op = 0; op < OP_NR; op++)
		printf("  %-20s %12.0f | %12.0f\n", op_names[op], one[op], many[op]);
	{
		double commits = (double)(s1.commits - s0.commits);

		printf("  per commit (one op each): %.2f device writes, %.2f flushes, %.2f blocks written, "
		       "%.2f reads (%.2f blocks)\n",
		       (b1.writes - b0.writes) / commits, (b1.flushes - b0.flushes) / commits,
		       (b1.write_blocks - b0.write_blocks) / commits, (b1.reads - b0.reads) / commits,
		       (b1.read_blocks - b0.read_blocks) / commits);
		printf("  reads per commit: %.2f from the log, %.2f from the database\n",
		       (s1.log_reads - s0.log_reads) / commits, (s1.db_reads - s0.db_reads) / commits);
		printf("  term gate: one read of the quorum blocks, %.1f us on average\n",
		       (double)(s1.gate_ns - s0.gate_ns) / (double)(s1.gate_reads - s0.gate_reads) / 1e3);
		printf("  checkpoints %" PRIu64 "\n", s1.checkpoints);
	}
	env_close(&e);
}
