/*
 * fusefs-crashtest - the store under SIGKILL at random instants.
 *
 *   fusefs-crashtest FILE KILLS [SEED]
 *
 * A child process opens the store on FILE (a real file, O_DIRECT, through
 * the production device) and applies batches of random filesystem
 * operations - writes of random sizes at random offsets, truncates,
 * renames, unlinks - committing each batch and then reporting its number
 * on a pipe.  The parent kills it with SIGKILL at a random instant, reopens
 * the store itself, and checks that the whole content (every name and every
 * byte) equals an in-memory model replaying the acknowledged batches - or
 * those plus the one batch in flight, which may or may not have reached the
 * device.  Then it starts the next child from there, KILLS times.
 *
 * Batch k's operations come from a PRNG seeded with (SEED, k), so parent
 * and child derive the same ones.  Prints a summary; exits 1 on the first
 * mismatch, naming the kill, the batch and the file.
 */
#include "blockdev/dev.h"
#include "blockdev/tools.h"
#include "common/common.h"
#include "common/prng.h"
#include "server/fs.h"
#include "server/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NFILES 12
#define MAXSIZE (96 * 1024)
#define OPS_PER_BATCH 6

struct model {
	uint32_t size[NFILES];   /* 0xffffffff: absent */
	uint8_t data[NFILES][MAXSIZE];
};

static uint64_t seed_base;
static struct bd_super super;

static void name_of(int i, char *buf)
{
	snprintf(buf, 16, "f%02d", i);
}

/* Fill len bytes of data from a stream seeded with s. */
static void pattern(uint8_t *p, uint32_t len, uint64_t s)
{
	for (uint32_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			s = prng_next(&s) ^ i;
		p[i] = (uint8_t)(s >> (8 * (i & 7)));
	}
}

enum kind { K_WRITE, K_TRUNC, K_RENAME, K_UNLINK };

struct op {
	enum kind kind;
	int a, b;
	uint32_t off, len;
	uint64_t seed;
};

static void batch_ops(uint64_t k, struct op ops[OPS_PER_BATCH])
{
	uint64_t rng = seed_base * 0x9e3779b97f4a7c15ull + k;

	for (int i = 0; i < OPS_PER_BATCH; i++) {
		uint64_t r = prng_below(&rng, 10);

		ops[i].kind = r < 6 ? K_WRITE : r < 7 ? K_TRUNC : r < 9 ? K_RENAME : K_UNLINK;
		ops[i].a = (int)prng_below(&rng, NFILES);
		ops[i].b = (int)prng_below(&rng, NFILES);
		ops[i].off = (uint32_t)prng_below(&rng, MAXSIZE / 2);
		ops[i].len = 1 + (uint32_t)prng_below(&rng, MAXSIZE / 2);
		ops[i].seed = prng_next(&rng);
	}
}

/* The model's side of an operation (always succeeds; matches fs below). */
static void model_apply(struct model *m, const struct op *o)
{
	static uint8_t buf[MAXSIZE];
	uint32_t *sz = &m->size[o->a];

	switch (o->kind) {
	case K_WRITE:
		if (*sz == UINT32_MAX)
			*sz = 0;
		if (o->off > *sz)
			memset(m->data[o->a] + *sz, 0, o->off - *sz);
		pattern(buf, o->len, o->seed);
		memcpy(m->data[o->a] + o->off, buf, o->len);
		*sz = MAX(*sz, o->off + o->len);
		break;
	case K_TRUNC:
		if (*sz == UINT32_MAX)
			break;
		if (o->off > *sz)
			memset(m->data[o->a] + *sz, 0, o->off - *sz);
		*sz = o->off;
		break;
	case K_RENAME:
		if (*sz == UINT32_MAX || o->a == o->b)
			break;
		m->size[o->b] = *sz;
		memcpy(m->data[o->b], m->data[o->a], *sz);
		*sz = UINT32_MAX;
		break;
	case K_UNLINK:
		*sz = UINT32_MAX;
		break;
	}
}

static const struct fs_cred root;

/* The store's side.  0, or -errno when the operation failed (a bug). */
static int fs_apply(struct fs *fs, const struct op *o)
{
	static uint8_t buf[MAXSIZE];
	char a[16], b[16];
	struct fs_attr at;
	struct fs_setattr sa = { .valid = FS_SET_SIZE };
	int ret;

	name_of(o->a, a);
	name_of(o->b, b);
	switch (o->kind) {
	case K_WRITE:
		ret = fs_create(fs, &root, FS_ROOT_INO, a, 3, 0644, O_CREAT | O_WRONLY, &at);
		if (ret < 0)
			return ret;
		pattern(buf, o->len, o->seed);
		return fs_write(fs, &root, at.ino, o->off, 0, buf, o->len, &at);
	case K_TRUNC:
		ret = fs_lookup(fs, &root, FS_ROOT_INO, a, 3, &at);
		if (ret == -ENOENT)
			return 0;
		sa.size = o->off;
		return ret < 0 ? ret : fs_setattr(fs, &root, at.ino, &sa, &at);
	case K_RENAME:
		if (o->a == o->b)
			return 0;
		ret = fs_rename(fs, &root, FS_ROOT_INO, a, 3, FS_ROOT_INO, b, 3, 0);
		return ret == -ENOENT ? 0 : ret;
	case K_UNLINK:
		ret = fs_unlink(fs, &root, FS_ROOT_INO, a, 3);
		return ret == -ENOENT ? 0 : ret;
	}
	return -EINVAL;
}

static int open_store(const char *path, struct bd_dev **dev, struct store **st, struct fs **fs)
{
	struct store_config cfg;
	char why[512];

	if (bd_open(path, true, dev, why, sizeof(why)) < 0) {
		fprintf(stderr, "crashtest: %s\n", why);
		return -EIO;
	}
	cfg = (struct store_config){ .dev = *dev, .super = &super };
	if (store_open(&cfg, st, why, sizeof(why)) < 0) {
		fprintf(stderr, "crashtest: store_open: %s\n", why);
		bd_close(*dev);
		return -EIO;
	}
	if (fs_attach(store_db(*st), NULL, fs) < 0) {
		store_close(*st);
		bd_close(*dev);
		return -EIO;
	}
	return 0;
}

/* The child: batches from `from` on, each acknowledged on fd, until killed. */
static void child(const char *path, uint64_t from, int fd)
{
	struct bd_dev *dev;
	struct store *st;
	struct fs *fs;

	log_mute(true);
	if (open_store(path, &dev, &st, &fs) < 0)
		_exit(3);
	for (uint64_t k = from;; k++) {
		struct op ops[OPS_PER_BATCH];
		int ret = store_begin(st);

		batch_ops(k, ops);
		for (int i = 0; ret == 0 && i < OPS_PER_BATCH; i++) {
			ret = store_op_begin(st);
			if (ret == 0)
				ret = store_op_end(st, fs_apply(fs, &ops[i]));
		}
		if (ret == 0)
			ret = store_commit(st);
		if (ret < 0) {
			fprintf(stderr, "crashtest: child: batch %" PRIu64 ": %s\n", k, errstr(ret));
			_exit(4);
		}
		if (write(fd, &k, sizeof(k)) != sizeof(k))
			_exit(5);
	}
}

/* Does the store hold exactly what the model does?  -1 and why when not. */
static int compare(struct fs *fs, const struct model *m, char *why, size_t whylen)
{
	static uint8_t buf[MAXSIZE + 1];

	for (int i = 0; i < NFILES; i++) {
		char name[16];
		struct fs_attr a;
		size_t got = 0;
		int ret;

		name_of(i, name);
		ret = fs_lookup(fs, &root, FS_ROOT_INO, name, 3, &a);
		if (m->size[i] == UINT32_MAX) {
			if (ret != -ENOENT) {
				snprintf(why, whylen, "%s exists (%s) but should not", name, errstr(ret));
				return -1;
			}
			continue;
		}
		if (ret < 0 || a.size != m->size[i]) {
			snprintf(why, whylen, "%s: %s, size %" PRIu64 ", want %u", name,
				 ret < 0 ? errstr(ret) : "found", ret < 0 ? 0 : a.size, m->size[i]);
			return -1;
		}
		ret = fs_read(fs, a.ino, 0, sizeof(buf), buf, &got);
		if (ret < 0 || got != m->size[i] || memcmp(buf, m->data[i], got) != 0) {
			snprintf(why, whylen, "%s: its %u bytes differ", name, m->size[i]);
			return -1;
		}
	}
	return 0;
}

static int fill(struct sqlite3 *db, void *arg)
{
	return fs_format(db, arg);
}

int main(int argc, char **argv)
{
	static struct model acked, inflight;
	struct fs_format_opts fo = { .root_mode = 0755 };
	struct bd_mkfs_opts mo = { .force = false };
	uint64_t next = 1, rng;
	int kills, with_inflight = 0, total_batches = 0;
	struct bd_dev *dev;
	char why[512];
	mono_ns t0 = mono_now();
	int fd;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: fusefs-crashtest FILE KILLS [SEED]\n");
		return 2;
	}
	kills = atoi(argv[2]);
	seed_base = argc == 4 ? strtoull(argv[3], NULL, 0) : (uint64_t)time(NULL);
	rng = seed_base;
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, 64 << 20) != 0) {
		fprintf(stderr, "crashtest: cannot make %s\n", argv[1]);
		return 1;
	}
	close(fd);
	if (bd_open(argv[1], true, &dev, why, sizeof(why)) < 0 ||
	    bd_mkfs_add_slot(&super, "0,127.0.0.1,7990", why, sizeof(why)) < 0 ||
	    bd_mkfs(dev, &super, &mo, why, sizeof(why)) < 0 ||
	    store_create(dev, &super, fill, &fo, why, sizeof(why)) < 0) {
		fprintf(stderr, "crashtest: %s\n", why);
		return 1;
	}
	bd_close(dev);
	for (int i = 0; i < NFILES; i++)
		acked.size[i] = UINT32_MAX;

	for (int kill_nr = 1; kill_nr <= kills; kill_nr++) {
		struct store *st;
		struct fs *fs;
		int pipefd[2], status;
		uint64_t k, last = next - 1;
		pid_t pid;
		struct timespec pause;

		if (pipe(pipefd) < 0)
			return 1;
		pid = fork();
		if (pid == 0) {
			close(pipefd[0]);
			child(argv[1], next, pipefd[1]);
		}
		close(pipefd[1]);
		/* let it run a random while: from the middle of opening to a few dozen batches */
		pause.tv_sec = 0;
		pause.tv_nsec = (long)(prng_below(&rng, 150) * 1000000 + prng_below(&rng, 1000000));
		nanosleep(&pause, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		while (read(pipefd[0], &k, sizeof(k)) == sizeof(k))
			last = k;
		close(pipefd[0]);
		if (WIFEXITED(status)) {
			fprintf(stderr, "crashtest: kill %d: the child exited %d before the kill\n",
				kill_nr, WEXITSTATUS(status));
			return 1;
		}
		/* the model: every acknowledged batch; and one more, the one in flight */
		for (; next <= last; next++) {
			struct op ops[OPS_PER_BATCH];

			batch_ops(next, ops);
			for (int i = 0; i < OPS_PER_BATCH; i++)
				model_apply(&acked, &ops[i]);
			total_batches++;
		}
		inflight = acked;
		{
			struct op ops[OPS_PER_BATCH];

			batch_ops(next, ops);
			for (int i = 0; i < OPS_PER_BATCH; i++)
				model_apply(&inflight, &ops[i]);
		}
		if (open_store(argv[1], &dev, &st, &fs) < 0) {
			fprintf(stderr, "crashtest: kill %d: the store does not open after the kill\n",
				kill_nr);
			return 1;
		}
		if (compare(fs, &acked, why, sizeof(why)) < 0) {
			char why2[512];

			if (compare(fs, &inflight, why2, sizeof(why2)) < 0) {
				fprintf(stderr, "crashtest: kill %d after batch %" PRIu64 " (seed %" PRIu64
					"): the store is neither the acknowledged state (%s) nor that plus "
					"the batch in flight (%s)\n", kill_nr, next - 1, seed_base, why, why2);
				return 1;
			}
			/* the batch in flight made it: it is the state from now on */
			acked = inflight;
			next++;
			total_batches++;
			with_inflight++;
		}
		fs_detach(fs);
		store_close(st);
		bd_close(dev);
	}
	printf("fusefs-crashtest: %d SIGKILLs at random instants over %d batches in %.1f s "
	       "(seed %" PRIu64 "): every acknowledged batch was there after each, and the batch "
	       "in flight %d times\n", kills, total_batches, (double)(mono_now() - t0) / 1e9,
	       seed_base, with_inflight);
	unlink(argv[1]);
	return 0;
}
