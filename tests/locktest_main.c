/*
 * locktest_main.c - fusefs-locktest: fcntl locks and SQLite, one step at
 * a time, for scripts/test-locks.sh (two mounts, one program each side).
 *
 *   fusefs-locktest hold FILE r|w START LEN     F_SETLKW, print "held", keep
 *                                               it until killed
 *   fusefs-locktest try FILE r|w START LEN      F_SETLK: "ok" or "EAGAIN"
 *   fusefs-locktest wait FILE r|w START LEN     F_SETLKW: "locked MS"
 *   fusefs-locktest getlk FILE r|w START LEN    F_GETLK: "unlocked" or
 *                                               "TYPE START LEN PID"
 *   fusefs-locktest intr FILE r|w START LEN MS  F_SETLKW, SIGALRM after MS
 *                                               (no SA_RESTART): "EINTR"
 *   fusefs-locktest split FILE                  lock 0-99, unlock 40-59,
 *                                               then "held" until killed
 *   fusefs-locktest sqlite DB ROWS TAG          insert ROWS rows, each in its
 *                                               own transaction
 *   fusefs-locktest sqlcheck DB                 "ROWS ok" (count, integrity)
 *   fusefs-locktest closetwo FILE               open it twice, lock through
 *                                               one, close the other: "closed",
 *                                               then wait until killed
 *   fusefs-locktest flockcount FILE COUNTER N   N times: flock FILE, add one
 *                                               to the number in COUNTER
 *   fusefs-locktest bench FILE N               N uncontended lock/unlock
 *                                               pairs: "pairs/s"
 *   fusefs-locktest cross FILE A B GO          lock byte A, say "held", once
 *                                               the file GO exists F_SETLKW
 *                                               byte B: "locked" or
 *                                               "EDEADLK" (then exit)
 *
 * Exit 0 when the step did what it says, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static struct flock lk(const char *type, const char *start, const char *len)
{
	struct flock l = { .l_type = (short)(type[0] == 'w' ? F_WRLCK : type[0] == 'r' ? F_RDLCK
											  : F_UNLCK),
			   .l_whence = SEEK_SET, .l_start = atoll(start), .l_len = atoll(len) };
	return l;
}

/* Until a signal ends the process (its descriptors close, and its locks go with them). */
static void wait_killed(void)
{
	for (;;)
		pause();
}

static void on_alarm(int sig)
{
	(void)sig;
}

static int usage(void)
{
	fprintf(stderr, "usage: fusefs-locktest hold|try|wait|getlk|intr|split|sqlite|flockcount|bench ...\n");
	return 2;
}

static int sqlite_rows(const char *path, int rows, const char *tag)
{
	sqlite3 *db;
	char sql[128];
	char *msg = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK) {
		fprintf(stderr, "locktest: %s: %s\n", path, sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_busy_timeout(db, 60000);
	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS t(tag TEXT, n INTEGER)", NULL, NULL,
			 &msg) != SQLITE_OK)
		goto fail;
	for (int i = 0; i < rows; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO t VALUES('%s', %d)", tag, i);
		if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
			goto fail;
	}
	sqlite3_close(db);
	return 0;
fail:
	fprintf(stderr, "locktest: %s: %s\n", path, msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_close(db);
	return 1;
}

static int sqlcheck(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	long long rows = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		return 1;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		rows = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		printf("%lld %s\n", rows, (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return 0;
}

static int flockcount(const char *file, const char *counter, int n)
{
	for (int i = 0; i < n; i++) {
		int fd = open(file, O_RDWR | O_CREAT, 0644), c;
		char b[32] = { 0 };
		FILE *f;

		if (fd < 0 || flock(fd, LOCK_EX) < 0) {
			perror("locktest: flock");
			return 1;
		}
		f = fopen(counter, "r+");
		if (f == NULL || fread(b, 1, sizeof(b) - 1, f) == 0) {
			perror("locktest: reading the counter");
			return 1;
		}
		c = atoi(b);
		rewind(f);
		fprintf(f, "%d\n", c + 1);
		if (fclose(f) != 0) {
			perror("locktest: writing the counter");
			return 1;
		}
		close(fd); /* (the flock goes with it) */
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct flock l;
	int fd;

	if (argc < 3)
		return usage();
	if (strcmp(argv[1], "sqlite") == 0)
		return argc == 5 ? sqlite_rows(argv[2], atoi(argv[3]), argv[4]) : usage();
	if (strcmp(argv[1], "sqlcheck") == 0)
		return sqlcheck(argv[2]);
	if (strcmp(argv[1], "flockcount") == 0)
		return argc == 5 ? flockcount(argv[2], argv[3], atoi(argv[4])) : usage();
	fd = open(argv[2], O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	if (strcmp(argv[1], "split") == 0) {
		l = lk("w", "0", "100");
		if (fcntl(fd, F_SETLK, &l) < 0)
			return perror("locktest: split: lock"), 1;
		l = lk("u", "40", "20");
		if (fcntl(fd, F_SETLK, &l) < 0)
			return perror("locktest: split: unlock"), 1;
		printf("held\n");
		fflush(stdout);
		wait_killed();
		return 0;
	}
	if (strcmp(argv[1], "closetwo") == 0) {
		int fd2 = open(argv[2], O_RDWR);

		l = lk("w", "0", "0");
		if (fd2 < 0 || fcntl(fd, F_SETLK, &l) < 0)
			return perror("locktest: closetwo"), 1;
		close(fd2); /* POSIX: the process's locks on the file go */
		printf("closed\n");
		fflush(stdout);
		wait_killed();
		return 0;
	}
	if (strcmp(argv[1], "bench") == 0) {
		int n = atoi(argv[3]);
		long long t0 = now_ms();

		for (int i = 0; i < n; i++) {
			l = lk("w", "0", "0");
			if (fcntl(fd, F_SETLK, &l) < 0)
				return perror("locktest: bench"), 1;
			l.l_type = F_UNLCK;
			if (fcntl(fd, F_SETLK, &l) < 0)
				return perror("locktest: bench"), 1;
		}
		printf("%lld\n", (long long)n * 1000 / (now_ms() - t0 > 0 ? now_ms() - t0 : 1));
		return 0;
	}
	if (argc < 6)
		return usage();
	l = lk(argv[3], argv[4], argv[5]);
	if (strcmp(argv[1], "hold") == 0) {
		if (fcntl(fd, F_SETLKW, &l) < 0)
			return perror("locktest: hold"), 1;
		printf("held\n");
		fflush(stdout);
		wait_killed();
		return 0;
	}
	if (strcmp(argv[1], "try") == 0) {
		if (fcntl(fd, F_SETLK, &l) == 0)
			return printf("ok\n"), 0;
		if (errno == EAGAIN || errno == EACCES)
			return printf("EAGAIN\n"), 0;
		return perror("locktest: try"), 1;
	}
	if (strcmp(argv[1], "cross") == 0 && argc == 6) {
		struct flock b = lk("w", argv[4], "1");

		l = lk("w", argv[3], "1");
		if (fcntl(fd, F_SETLK, &l) < 0)
			return perror("locktest: cross"), 1;
		printf("held\n");
		fflush(stdout);
		for (int i = 0; i < 2000 && access(argv[5], F_OK) != 0; i++)
			usleep(10000);
		if (fcntl(fd, F_SETLKW, &b) == 0)
			printf("locked\n");
		else if (errno == EDEADLK)
			printf("EDEADLK\n");
		else
			return perror("locktest: cross"), 1;
		return 0;
	}
	if (strcmp(argv[1], "wait") == 0) {
		long long t0 = now_ms();

		if (fcntl(fd, F_SETLKW, &l) < 0)
			return perror("locktest: wait"), 1;
		printf("locked %lld\n", now_ms() - t0);
		return 0;
	}
	if (strcmp(argv[1], "getlk") == 0) {
		if (fcntl(fd, F_GETLK, &l) < 0)
			return perror("locktest: getlk"), 1;
		if (l.l_type == F_UNLCK)
			printf("unlocked\n");
		else
			printf("%c %lld %lld %d\n", l.l_type == F_WRLCK ? 'w' : 'r',
			       (long long)l.l_start, (long long)l.l_len, (int)l.l_pid);
		return 0;
	}
	if (strcmp(argv[1], "intr") == 0 && argc == 7) {
		struct sigaction sa = { .sa_handler = on_alarm }; /* (no SA_RESTART) */
		struct itimerval it = { .it_value = { .tv_sec = atoi(argv[6]) / 1000,
						      .tv_usec = (atoi(argv[6]) % 1000) * 1000 } };

		sigaction(SIGALRM, &sa, NULL);
		setitimer(ITIMER_REAL, &it, NULL);
		if (fcntl(fd, F_SETLKW, &l) == 0)
			return printf("locked\n"), 1;
		if (errno == EINTR)
			return printf("EINTR\n"), 0;
		return perror("locktest: intr"), 1;
	}
	return usage();
}
