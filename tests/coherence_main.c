/*
 * fusefs-coherence - kernel caches through two or more mounts of one
 * filesystem: random operations on one mount, each followed at once by a
 * check on another, with the other mounts' caches kept warm, so a stale
 * attribute, entry, negative entry, directory listing, xattr or file
 * content shows.
 *
 *   fusefs-coherence [-n OPS] [-s SEED] DIR DIR2 [DIR3...]
 *
 * Each DIRi is the same directory seen through another mount.  The model
 * is what the filesystem must hold: a flat directory of up to NAMES names,
 * files (content, mode, an xattr) and subdirectories.  Prints the seed and
 * the first difference, and exits 1 on it; 0 when every check held.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#define NAMES 12
#define MOUNTS_MAX 4
#define CONTENT_MAX 64

struct node {
	bool exists;
	bool dir;
	mode_t mode;
	char data[CONTENT_MAX];
	size_t len;
	char xattr[16];          /* "" : none */
	long mtime_sec;          /* set explicitly by utimes, or -1 */
};

static struct node model[NAMES];
static const char *mounts[MOUNTS_MAX];
static int nmounts;
static uint64_t rng;
static long step;

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng % n;
}

static void path_of(char *out, size_t len, int m, int i)
{
	snprintf(out, len, "%s/n%d", mounts[m], i);
}

static void fail(const char *what, int m, int i, const char *detail)
{
	fprintf(stderr, "fusefs-coherence: step %ld: %s of n%d through %s: %s (seed in argv)\n", step,
		what, i, mounts[m], detail);
	exit(1);
}

/* ---- operations (on mount m), each kept in the model ---- */

static int write_file(const char *p, const char *data, size_t len, int flags)
{
	int fd = open(p, O_WRONLY | flags, 0644);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/* Create, or truncate and rewrite (then the mode and the xattr stay). */
static void op_create(int m, int i)
{
	char p[4096], data[CONTENT_MAX];
	struct node *nd = &model[i];
	size_t len = (size_t)snprintf(data, sizeof(data), "step %ld n%d", step, i);

	path_of(p, sizeof(p), m, i);
	if (write_file(p, data, len, O_CREAT | O_TRUNC) < 0)
		fail("create", m, i, strerror(errno));
	if (!nd->exists)
		*nd = (struct node){ .exists = true, .mode = 0644 };
	memcpy(nd->data, data, len);
	nd->len = len;
	nd->mtime_sec = -1;
}

static void op_append(int m, int i)
{
	char p[4096], more[16];
	struct node *nd = &model[i];
	size_t n = (size_t)snprintf(more, sizeof(more), "+%ld", step % 1000);

	if (nd->len + n >= CONTENT_MAX)
		return;
	path_of(p, sizeof(p), m, i);
	if (write_file(p, more, n, O_APPEND) < 0)
		fail("append", m, i, strerror(errno));
	memcpy(nd->data + nd->len, more, n);
	nd->len += n;
	nd->mtime_sec = -1;
}

static void op_mkdir(int m, int i)
{
	char p[4096];

	path_of(p, sizeof(p), m, i);
	if (mkdir(p, 0755) < 0)
		fail("mkdir", m, i, strerror(errno));
	model[i] = (struct node){ .exists = true, .dir = true, .mode = 0755, .mtime_sec = -1 };
}

static void op_remove(int m, int i)
{
	char p[4096];

	path_of(p, sizeof(p), m, i);
	if ((model[i].dir ? rmdir(p) : unlink(p)) < 0)
		fail("remove", m, i, strerror(errno));
	model[i].exists = false;
}

static void op_rename(int m, int i, int j)
{
	char p[4096], q[4096];

	if (i == j || (model[j].exists && model[j].dir != model[i].dir))
		return;
	path_of(p, sizeof(p), m, i);
	path_of(q, sizeof(q), m, j);
	if (rename(p, q) < 0)
		fail("rename", m, i, strerror(errno));
	model[j] = model[i];
	model[i].exists = false;
}

static void op_chmod(int m, int i)
{
	char p[4096];
	mode_t mode = model[i].dir ? 0700 | (mode_t)rnd(0100) : 0600 | (mode_t)rnd(0100);

	path_of(p, sizeof(p), m, i);
	if (chmod(p, mode) < 0)
		fail("chmod", m, i, strerror(errno));
	model[i].mode = mode;
}

static void op_utimes(int m, int i)
{
	char p[4096];
	long sec = 1000000000L + (long)rnd(100000000);
	struct timeval tv[2] = { { sec, 0 }, { sec, 0 } };

	path_of(p, sizeof(p), m, i);
	if (utimes(p, tv) < 0)
		fail("utimes", m, i, strerror(errno));
	model[i].mtime_sec = sec;
}

static void op_xattr(int m, int i)
{
	char p[4096], v[16];

	path_of(p, sizeof(p), m, i);
	if (model[i].xattr[0] && rnd(2)) {
		if (removexattr(p, "user.c") < 0)
			fail("removexattr", m, i, strerror(errno));
		model[i].xattr[0] = '\0';
		return;
	}
	snprintf(v, sizeof(v), "v%ld", step);
	if (setxattr(p, "user.c", v, strlen(v), 0) < 0)
		fail("setxattr", m, i, strerror(errno));
	snprintf(model[i].xattr, sizeof(model[i].xattr), "%s", v);
}

/* One random operation through mount m. */
static void random_op(int m)
{
	int i = (int)rnd(NAMES), j = (int)rnd(NAMES);
	struct node *nd = &model[i];

	if (!nd->exists) {
		if (rnd(4) == 0)
			op_mkdir(m, i);
		else
			op_create(m, i);
		return;
	}
	switch (rnd(nd->dir ? 5 : 8)) {
	case 0: op_remove(m, i); break;
	case 1: op_rename(m, i, j); break;
	case 2: op_chmod(m, i); break;
	case 3: op_utimes(m, i); break;
	case 4: op_xattr(m, i); break;
	case 5: op_append(m, i); break;
	case 6: op_create(m, i); break;
	default: op_append(m, i); break;
	}
}

/* ---- checks (on mount m) ---- */

static void check_one(int m, int i)
{
	char p[4096], buf[CONTENT_MAX + 8], detail[256];
	const struct node *nd = &model[i];
	struct stat st;
	ssize_t n;
	int fd;

	path_of(p, sizeof(p), m, i);
	if (lstat(p, &st) < 0) {
		if (nd->exists || errno != ENOENT)
			fail("stat", m, i, nd->exists ? "gone, but it is there" : strerror(errno));
		return;
	}
	if (!nd->exists)
		fail("stat", m, i, "still there, but it was removed");
	if (S_ISDIR(st.st_mode) != nd->dir || (st.st_mode & 07777) != nd->mode) {
		snprintf(detail, sizeof(detail), "mode %o, want %o (%s)", st.st_mode & 07777, nd->mode,
			 nd->dir ? "dir" : "file");
		fail("stat", m, i, detail);
	}
	if (nd->mtime_sec >= 0 && st.st_mtime != nd->mtime_sec)
		fail("stat", m, i, "an old mtime");
	n = getxattr(p, "user.c", buf, sizeof(buf) - 1);
	if ((n < 0) != (nd->xattr[0] == '\0') ||
	    (n >= 0 && ((size_t)n != strlen(nd->xattr) || memcmp(buf, nd->xattr, (size_t)n))))
		fail("getxattr", m, i, n < 0 ? "missing" : "another value");
	if (nd->dir)
		return;
	if ((size_t)st.st_size != nd->len) {
		snprintf(detail, sizeof(detail), "size %lld, want %zu", (long long)st.st_size, nd->len);
		fail("stat", m, i, detail);
	}
	fd = open(p, O_RDONLY);
	if (fd < 0)
		fail("open", m, i, strerror(errno));
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != (ssize_t)nd->len || memcmp(buf, nd->data, nd->len) != 0)
		fail("read", m, i, "other content");
}

static void check_listing(int m)
{
	bool seen[NAMES] = { false };
	struct dirent *de;
	DIR *d = opendir(mounts[m]);

	if (d == NULL)
		fail("opendir", m, 0, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		int i;

		if (de->d_name[0] != 'n')
			continue;
		i = atoi(de->d_name + 1);
		if (i < 0 || i >= NAMES || !model[i].exists)
			fail("readdir", m, i, "lists a name that was removed");
		seen[i] = true;
	}
	closedir(d);
	for (int i = 0; i < NAMES; i++)
		if (model[i].exists && !seen[i])
			fail("readdir", m, i, "misses a name");
}

int main(int argc, char **argv)
{
	long ops = 1000;
	uint64_t seed = 1;
	int c;

	while ((c = getopt(argc, argv, "n:s:")) != -1) {
		if (c == 'n')
			ops = atol(optarg);
		else if (c == 's')
			seed = strtoull(optarg, NULL, 0);
		else
			return 2;
	}
	for (; optind < argc && nmounts < MOUNTS_MAX; optind++)
		mounts[nmounts++] = argv[optind];
	if (nmounts < 2) {
		fprintf(stderr, "usage: fusefs-coherence [-n OPS] [-s SEED] DIR DIR2 [DIR3...]\n");
		return 2;
	}
	rng = seed * 0x9e3779b97f4a7c15ull + 1;
	umask(022);
	for (step = 0; step < ops; step++) {
		int m = (int)rnd((uint64_t)nmounts), o = (m + 1 + (int)rnd((uint64_t)nmounts - 1)) % nmounts;

		/* warm the other mounts' caches with what is about to change */
		for (int k = 0; k < nmounts; k++)
			if (k != m)
				for (int i = 0; i < NAMES; i++) {
					struct stat st;
					char p[4096];

					path_of(p, sizeof(p), k, i);
					lstat(p, &st);
				}
		random_op(m);
		for (int i = 0; i < NAMES; i++)
			check_one(o, i);
		check_listing(o);
	}
	printf("fusefs-coherence: %ld operations over %d mounts, each checked at once on another: "
	       "nothing stale (seed %llu)\n", ops, nmounts, (unsigned long long)seed);
	return 0;
}
