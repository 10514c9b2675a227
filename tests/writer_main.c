/*
 * fusefs-writer - a program that must not notice failovers: it writes
 * through one mount while the servers come and go, and a reader on
 * another mount checks it never sees anything go backwards.
 *
 *   fusefs-writer -w DIR STOPFILE [PROGRESS]
 *                                    write until STOPFILE exists; print the
 *                                    number of steps acknowledged, and keep
 *                                    it in PROGRESS (a file elsewhere) as it
 *                                    goes, with the longest step's ms after
 *                                    it (the writer's longest stall)
 *   fusefs-writer -r DIR STOPFILE    read until STOPFILE exists
 *   fusefs-writer -c DIR STEPS       check what STEPS acknowledged steps left
 *   fusefs-writer -a DIR STEPS       audit the log while a writer runs: its
 *                                    records are 0, 1, 2, ... and at least
 *                                    STEPS (what it had acknowledged before)
 *   fusefs-writer -p DIR STOPFILE OUT  probe: one call after another (mkdir,
 *                                    rmdir: each one request) until STOPFILE
 *                                    exists, appending "START_MS END_MS" of
 *                                    each (wall clock) to OUT; -l: LOOKUPs of
 *                                    names that are not there, 5 ms apart
 *   fusefs-writer -n DIR COUNT       make COUNT empty files, 1,000 to a
 *                                    directory (DIR/d<k>/f<i>), with 4
 *                                    threads; print how many a second
 *   fusefs-writer -u DIR STOPFILE    hold a file unlinked while open: create
 *                                    DIR/held (HELD_BYTES), unlink it, print
 *                                    "held", then until STOPFILE exists write
 *                                    and read it back through the descriptor;
 *                                    at the end check all of it and close it
 *
 * A step i: create f<i> with O_CREAT|O_EXCL (a resend applied twice would
 * fail with EEXIST) and write "i" into it; append record i to "log"
 * (O_APPEND) and fsync it; rename f<i> to g<i>; unlink g<i-8>.  Any error
 * ends the program with status 1 and the error.  The reader reads "log"
 * over and over: its records must be 0, 1, 2, ... with none missing or
 * twice, and never fewer than it saw before.  The check wants exactly
 * records 0..STEPS-1 (or one more: the step in flight when it stopped),
 * g<i> for the last 8 steps and no f<i>.
 */
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

#define KEEP 8
#define REC 16 /* "%15ld\n" */

static const char *dir;

static void die(const char *what, long i)
{
	fprintf(stderr, "fusefs-writer: step %ld: %s: %s\n", i, what, strerror(errno));
	exit(1);
}

static void path(char *out, size_t len, const char *fmt, long i)
{
	char name[64];

	snprintf(name, sizeof(name), fmt, i);
	snprintf(out, len, "%s/%s", dir, name);
}

static bool stop_asked(const char *stopfile)
{
	return access(stopfile, F_OK) == 0;
}

static void step(long i, int logfd)
{
	char p[4096], q[4096], rec[REC + 1];
	int fd;

	path(p, sizeof(p), "f%ld", i);
	fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0)
		die("create f<i> with O_EXCL", i);
	if (snprintf(rec, sizeof(rec), "%15ld\n", i % 1000000000000000L) != REC)
		die("format record", i);
	if (write(fd, rec, REC) != REC || close(fd) < 0)
		die("write f<i>", i);
	if (write(logfd, rec, REC) != REC)
		die("append to log", i);
	if (fsync(logfd) < 0)
		die("fsync log", i);
	path(q, sizeof(q), "g%ld", i);
	if (rename(p, q) < 0)
		die("rename f<i> to g<i>", i);
	if (i >= KEEP) {
		path(q, sizeof(q), "g%ld", i - KEEP);
		if (unlink(q) < 0)
			die("unlink g<i-8>", i);
	}
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int writer(const char *stopfile, const char *progress)
{
	char p[4096], count[64];
	int logfd, progfd = -1;
	long i = 0;
	long long longest = 0; /* the longest step, ms */

	if (progress) {
		progfd = open(progress, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (progfd < 0)
			die("open the progress file", 0);
	}

	path(p, sizeof(p), "log", 0);
	logfd = open(p, O_CREAT | O_WRONLY | O_APPEND, 0644);
	if (logfd < 0)
		die("open log", 0);
	for (; !stop_asked(stopfile); i++) {
		long long t0 = mono_ms(), took;

		step(i, logfd);
		took = mono_ms() - t0;
		if (took > longest)
			longest = took;
		/* fixed width: a reader never sees a shorter number's leftovers */
		snprintf(count, sizeof(count), "%15ld %15lld\n", i + 1, longest);
		if (progfd >= 0 && pwrite(progfd, count, 32, 0) != 32)
			die("write the progress file", i);
	}
	close(logfd);
	if (progfd >= 0)
		close(progfd);
	printf("%ld\n", i);
	return 0;
}

/* The log's records: how many, or -1 (with why) when they are not 0, 1, 2, ... */
static long read_log(char *why, size_t whylen)
{
	static char buf[REC * 200000];
	char p[4096];
	ssize_t n;
	int fd;

	path(p, sizeof(p), "log", 0);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return errno == ENOENT ? 0 : (snprintf(why, whylen, "open log: %s", strerror(errno)), -1);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n % REC != 0) {
		snprintf(why, whylen, "log of %zd bytes, not whole records", n);
		return -1;
	}
	for (long r = 0; r < n / REC; r++)
		if (strtol(buf + r * REC, NULL, 10) != r || buf[r * REC + REC - 1] != '\n') {
			snprintf(why, whylen, "record %ld is not %ld (missing, twice, or torn)", r, r);
			return -1;
		}
	return n / REC;
}

static int reader(const char *stopfile)
{
	long seen = 0, reads = 0;
	char why[256];

	while (!stop_asked(stopfile)) {
		long n = read_log(why, sizeof(why));

		if (n < 0 || n < seen) {
			fprintf(stderr, "fusefs-writer: reader: %s\n",
				n < 0 ? why : "the log has fewer records than it had");
			return 1;
		}
		seen = n;
		reads++;
		usleep(20000);
	}
	printf("%ld reads, %ld records at the last\n", reads, seen);
	return 0;
}

static int audit(long steps)
{
	char why[256];
	long n = read_log(why, sizeof(why));

	if (n < 0 || n < steps) {
		fprintf(stderr, "fusefs-writer: audit: %s\n",
			n < 0 ? why : "fewer records than steps acknowledged");
		if (n >= 0)
			fprintf(stderr, "fusefs-writer: audit: %ld records, %ld steps acknowledged\n", n,
				steps);
		return 1;
	}
	printf("%ld records, %ld acknowledged before: none lost, none twice\n", n, steps);
	return 0;
}

static int check(long steps)
{
	char why[256], p[4096];
	long n = read_log(why, sizeof(why));

	if (n < 0 || n < steps || n > steps + 1) {
		fprintf(stderr, "fusefs-writer: check: %s\n", n < 0 ? why : "records lost or extra");
		if (n >= 0)
			fprintf(stderr, "fusefs-writer: check: %ld records, %ld steps acknowledged\n", n,
				steps);
		return 1;
	}
	for (long i = 0; i < steps; i++) {
		struct stat st;
		bool want_g = i >= steps - KEEP;

		path(p, sizeof(p), "f%ld", i);
		if (stat(p, &st) == 0) {
			fprintf(stderr, "fusefs-writer: check: f%ld is still there\n", i);
			return 1;
		}
		path(p, sizeof(p), "g%ld", i);
		if ((stat(p, &st) == 0) != want_g) {
			fprintf(stderr, "fusefs-writer: check: g%ld %s\n", i,
				want_g ? "is missing" : "should have been unlinked");
			return 1;
		}
	}
	printf("%ld steps, %ld records: every acknowledged one there exactly once\n", steps, n);
	return 0;
}

#define HELD_BYTES (4 << 20)
#define HELD_BLOCK 4096

/* Block b of the held file as its generation gen writes it. */
static void held_block(uint8_t *out, long b, long gen)
{
	for (int k = 0; k < HELD_BLOCK; k++)
		out[k] = (uint8_t)(b * 31 + gen * 7 + k);
}

static int holder(const char *stopfile)
{
	static uint8_t model[HELD_BYTES], buf[HELD_BYTES];
	long gen = 0, rounds = 0;
	char p[4096];
	int fd;

	for (long b = 0; b < HELD_BYTES / HELD_BLOCK; b++)
		held_block(model + b * HELD_BLOCK, b, 0);
	path(p, sizeof(p), "held", 0);
	fd = open(p, O_CREAT | O_EXCL | O_RDWR, 0644);
	if (fd < 0)
		die("create held", 0);
	if (pwrite(fd, model, HELD_BYTES, 0) != HELD_BYTES || fsync(fd) < 0)
		die("write held", 0);
	if (unlink(p) < 0)
		die("unlink held", 0);
	printf("held\n");
	fflush(stdout);
	for (; !stop_asked(stopfile); rounds++) {
		long b = rounds % (HELD_BYTES / HELD_BLOCK);

		if (pread(fd, buf, HELD_BLOCK, b * HELD_BLOCK) != HELD_BLOCK ||
		    memcmp(buf, model + b * HELD_BLOCK, HELD_BLOCK) != 0)
			die("read back a block of the unlinked file", rounds);
		held_block(model + b * HELD_BLOCK, b, ++gen);
		if (pwrite(fd, model + b * HELD_BLOCK, HELD_BLOCK, b * HELD_BLOCK) != HELD_BLOCK ||
		    fsync(fd) < 0)
			die("write a block of the unlinked file", rounds);
		usleep(20000);
	}
	if (pread(fd, buf, HELD_BYTES, 0) != HELD_BYTES || memcmp(buf, model, HELD_BYTES) != 0)
		die("read all of the unlinked file at the end", rounds);
	if (close(fd) < 0)
		die("close the unlinked file", rounds);
	printf("%ld rounds\n", rounds);
	return 0;
}

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int probe(const char *stopfile, const char *out, bool lookups)
{
	FILE *f = fopen(out, "w");
	char p[4096];
	long i = 0;

	if (f == NULL)
		die("open the probe's output", 0);
	setvbuf(f, NULL, _IOLBF, 0);
	for (; !stop_asked(stopfile); i++) {
		long long t0 = wall_ms();
		struct stat st;
		int ret;

		path(p, sizeof(p), lookups ? "absent%ld" : "p%ld", i / 2);
		if (lookups)
			ret = stat(p, &st) == 0 || errno != ENOENT ? -1 : 0;
		else
			ret = i % 2 == 0 ? mkdir(p, 0755) : rmdir(p);
		if (ret < 0)
			die(lookups ? "stat (want ENOENT)" : i % 2 == 0 ? "mkdir" : "rmdir", i);
		fprintf(f, "%lld %lld\n", t0, wall_ms());
		if (lookups)
			usleep(5000);
	}
	fclose(f);
	return 0;
}

/* Entries for -n: thread t of 4 makes directories t, t + 4, ... of the COUNT / 1000. */
static long n_count;

static void *entries_main(void *arg)
{
	long t = (long)arg;
	char p[512];

	for (long d = t; d * 1000 < n_count; d += 4) {
		snprintf(p, sizeof(p), "%s/d%ld", dir, d);
		if (mkdir(p, 0755) < 0)
			die("mkdir", d);
		for (long i = d * 1000; i < n_count && i < (d + 1) * 1000; i++) {
			int fd;

			snprintf(p, sizeof(p), "%s/d%ld/f%ld", dir, d, i);
			fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd < 0)
				die("create", i);
			close(fd);
		}
	}
	return NULL;
}

static int entries(long count)
{
	struct timespec a, b;
	pthread_t th[4];

	n_count = count;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long t = 0; t < 4; t++)
		if (pthread_create(&th[t], NULL, entries_main, (void *)t) != 0)
			die("pthread_create", t);
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.0f\n", (double)count / ((double)(b.tv_sec - a.tv_sec) +
					 (double)(b.tv_nsec - a.tv_nsec) / 1e9));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "-n") == 0) {
		dir = argv[2];
		return entries(atol(argv[3]));
	}
	if (argc == 5 && (strcmp(argv[1], "-p") == 0 || strcmp(argv[1], "-l") == 0)) {
		dir = argv[2];
		return probe(argv[3], argv[4], argv[1][1] == 'l');
	}
	if (argc != 4 && !(argc == 5 && strcmp(argv[1], "-w") == 0)) {
		fprintf(stderr,
			"usage: fusefs-writer -w DIR STOPFILE [PROGRESS] | -r DIR STOPFILE | "
			"-c|-a DIR STEPS | -u DIR STOPFILE | -p|-l DIR STOPFILE OUT | -n DIR COUNT\n");
		return 2;
	}
	dir = argv[2];
	if (strcmp(argv[1], "-w") == 0)
		return writer(argv[3], argc == 5 ? argv[4] : NULL);
	if (strcmp(argv[1], "-r") == 0)
		return reader(argv[3]);
	if (strcmp(argv[1], "-c") == 0)
		return check(atol(argv[3]));
	if (strcmp(argv[1], "-a") == 0)
		return audit(atol(argv[3]));
	if (strcmp(argv[1], "-u") == 0)
		return holder(argv[3]);
	return 2;
}
