/*
 * fusefs-fsbench - filesystem operations per second in a directory, for
 * the benchmark table (scripts/bench-fs.sh runs it on fusefs mounts and on
 * libfuse's passthrough_ll, and prints them side by side).
 *
 *   fusefs-fsbench DIR [DIR2]      one "name value unit" line per figure
 *
 * With DIR2 (another mount of the same filesystem), the concurrent create
 * figures spread their threads over both.  "cold" figures drop the
 * kernel's caches first (needs root; else they are marked warm); "warm"
 * ones repeat what was just done.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NFILES 2000
#define NSMALL 1000
#define SEQ_MB 256

static const char *dir1, *dir2;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "fusefs-fsbench: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void out(const char *name, double v, const char *unit)
{
	printf("%s %.1f %s\n", name, v, unit);
	fflush(stdout);
}

static bool drop_caches(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return false;
	if (write(fd, "3", 1) != 1) {
		close(fd);
		return false;
	}
	close(fd);
	return true;
}

static void path(char *buf, size_t len, const char *base, const char *sub, int i)
{
	snprintf(buf, len, "%s/%s/%d", base, sub, i);
}

static void mkdir_p(const char *base, const char *sub)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/%s", base, sub);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		die("mkdir", p);
}

struct worker {
	const char *base;
	char sub[64];
	int n;
	pthread_t t;
};

static void *create_worker(void *arg)
{
	struct worker *w = arg;
	char p[4096];

	for (int i = 0; i < w->n; i++) {
		int fd;

		path(p, sizeof(p), w->base, w->sub, i);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			die("create", p);
		close(fd);
	}
	return NULL;
}

/* Creates per second with `threads` threads, alternating over the two dirs. */
static double concurrent_creates(int threads, int total)
{
	struct worker w[64];
	double t0;

	for (int i = 0; i < threads; i++) {
		w[i].base = (i % 2 && dir2) ? dir2 : dir1;
		snprintf(w[i].sub, sizeof(w[i].sub), "cc%d.%d", threads, i);
		mkdir_p(w[i].base, w[i].sub);
		w[i].n = total / threads;
	}
	t0 = now();
	for (int i = 0; i < threads; i++)
		pthread_create(&w[i].t, NULL, create_worker, &w[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(w[i].t, NULL);
	return (double)(total / threads * threads) / (now() - t0);
}

/* The small files written before, each opened, read and closed: files per second. */
static double read_small_files(char *buf)
{
	double t0 = now();
	char p[4096];

	for (int i = 0; i < NSMALL; i++) {
		int fd;

		path(p, sizeof(p), dir1, "s", i);
		fd = open(p, O_RDONLY);
		if (fd < 0 || read(fd, buf, 4096) != 4096)
			die("read", p);
		close(fd);
	}
	return NSMALL / (now() - t0);
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	char p[4096], q[4200];
	double t0;
	bool cold;
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: fusefs-fsbench DIR [DIR2]\n");
		return 2;
	}
	dir1 = argv[1];
	dir2 = argc == 3 ? argv[2] : NULL;
	memset(buf, 0x5a, sizeof(buf));
	mkdir_p(dir1, "c");

	t0 = now();
	for (int i = 0; i < NFILES; i++) {
		path(p, sizeof(p), dir1, "c", i);
		fd = open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			die("create", p);
		close(fd);
	}
	out("creates", NFILES / (now() - t0), "/s");

	cold = drop_caches();
	t0 = now();
	for (int i = 0; i < NFILES; i++) {
		struct stat st;

		path(p, sizeof(p), dir1, "c", i);
		if (stat(p, &st) < 0)
			die("stat", p);
	}
	out(cold ? "stats_cold" : "stats_cold(warm)", NFILES / (now() - t0), "/s");
	t0 = now();
	for (int i = 0; i < NFILES; i++) {
		struct stat st;

		path(p, sizeof(p), dir1, "c", i);
		if (stat(p, &st) < 0)
			die("stat", p);
	}
	out("stats_warm", NFILES / (now() - t0), "/s");
	for (int pass = 0; pass < 2; pass++) { /* names that are not there, the second time */
		t0 = now();
		for (int i = 0; i < NFILES; i++) {
			struct stat st;

			path(p, sizeof(p), dir1, "c", i);
			snprintf(q, sizeof(q), "%s.none", p);
			if (stat(q, &st) == 0 || errno != ENOENT)
				die("stat of a missing name", q);
		}
	}
	out("lookups_neg_warm", NFILES / (now() - t0), "/s");

	{
		int entries = 0;
		DIR *d;
		struct dirent *e;

		snprintf(p, sizeof(p), "%s/c", dir1);
		t0 = now();
		for (int r = 0; r < 5; r++) {
			d = opendir(p);
			if (d == NULL)
				die("opendir", p);
			while ((e = readdir(d)) != NULL)
				entries++;
			closedir(d);
		}
		out("readdir_entries", entries / (now() - t0), "/s");
	}

	t0 = now();
	for (int i = 0; i < NFILES; i++) {
		path(p, sizeof(p), dir1, "c", i);
		snprintf(q, sizeof(q), "%s.r", p);
		if (rename(p, q) < 0)
			die("rename", p);
	}
	out("renames", NFILES / (now() - t0), "/s");

	t0 = now();
	for (int i = 0; i < NFILES; i++) {
		path(p, sizeof(p), dir1, "c", i);
		snprintf(q, sizeof(q), "%s.r", p);
		if (unlink(q) < 0)
			die("unlink", q);
	}
	out("unlinks", NFILES / (now() - t0), "/s");

	mkdir_p(dir1, "m");
	t0 = now();
	for (int i = 0; i < NFILES; i++) {
		path(p, sizeof(p), dir1, "m", i);
		if (mkdir(p, 0755) < 0)
			die("mkdir", p);
	}
	out("mkdirs", NFILES / (now() - t0), "/s");
	t0 = now();
	for (int i = 0; i < NFILES; i++) {
		path(p, sizeof(p), dir1, "m", i);
		if (rmdir(p) < 0)
			die("rmdir", p);
	}
	out("rmdirs", NFILES / (now() - t0), "/s");

	mkdir_p(dir1, "s");
	t0 = now();
	for (int i = 0; i < NSMALL; i++) {
		path(p, sizeof(p), dir1, "s", i);
		fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, 4096) != 4096)
			die("write", p);
		close(fd);
	}
	out("file_writes_4k", NSMALL / (now() - t0), "/s");
	drop_caches();
	out("file_reads_4k", read_small_files(buf), "/s");
	out("file_reads_4k_warm", read_small_files(buf), "/s"); /* again: what the kernel kept */

	snprintf(p, sizeof(p), "%s/seq", dir1);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		die("open", p);
	t0 = now();
	for (int i = 0; i < SEQ_MB; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			die("write", p);
	if (fsync(fd) < 0)
		die("fsync", p);
	out("seq_write_fsync", SEQ_MB / (now() - t0), "MB/s");
	close(fd);
	drop_caches();
	fd = open(p, O_RDONLY);
	t0 = now();
	for (int i = 0; i < SEQ_MB; i++)
		if (read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			die("read", p);
	out("seq_read", SEQ_MB / (now() - t0), "MB/s");
	close(fd);

	snprintf(p, sizeof(p), "%s/fsync", dir1);
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	t0 = now();
	for (int i = 0; i < NSMALL; i++)
		if (pwrite(fd, buf, 4096, (off_t)i * 4096) != 4096 || fsync(fd) < 0)
			die("write+fsync", p);
	out("write_fsync_4k", NSMALL / (now() - t0), "/s");
	close(fd);

	out("creates_1_thread", concurrent_creates(1, 800), "/s");
	out("creates_4_threads", concurrent_creates(4, 1600), "/s");
	out("creates_16_threads", concurrent_creates(16, 3200), "/s");
	return 0;
}
