/*
 * fileops_main.c - fusefs-fileops: the file operations modern programs use,
 * one at a time, for scripts/test-fileops.sh to run on fusefs and on a
 * local filesystem and compare.
 *
 *   fusefs-fileops copy SRC DST       copy_file_range all of SRC to DST (made
 *                                     or cut to empty): "BYTES CALLS"
 *   fusefs-fileops map FILE           SEEK_DATA / SEEK_HOLE from 0 to the end:
 *                                     "data START END" lines
 *   fusefs-fileops zero FILE OFF LEN [keep]   fallocate ZERO_RANGE
 *   fusefs-fileops punch FILE OFF LEN         fallocate PUNCH_HOLE | KEEP_SIZE
 *   fusefs-fileops direct FILE        O_DIRECT: 1 MiB written and read back
 *                                     aligned: "ok"
 *   fusefs-fileops tmpfile DIR        O_TMPFILE in DIR: "ok" (written, read
 *                                     back), or "unsupported" (EOPNOTSUPP)
 *
 * Exit 0 when the step did what it says, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what, const char *path)
{
	fprintf(stderr, "fusefs-fileops: %s %s: %s\n", what, path, strerror(errno));
	return 1;
}

static int copy(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	long long total = 0, calls = 0;
	ssize_t n;

	if (in < 0 || out < 0)
		return fail("open", in < 0 ? src : dst);
	while ((n = copy_file_range(in, NULL, out, NULL, 64 << 20, 0)) > 0) {
		total += n;
		calls++;
	}
	if (n < 0)
		return fail("copy_file_range", dst);
	printf("%lld %lld\n", total, calls);
	return close(out) == 0 ? 0 : fail("close", dst);
}

static int map(const char *path)
{
	int fd = open(path, O_RDONLY);
	off_t at = 0, data, hole;

	if (fd < 0)
		return fail("open", path);
	for (int i = 0; i < 100000; i++) {
		data = lseek(fd, at, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			return 0;
		if (data < 0)
			return fail("SEEK_DATA", path);
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return fail("SEEK_HOLE", path);
		printf("data %lld %lld\n", (long long)data, (long long)hole);
		at = hole;
	}
	return 1;
}

static int falloc(const char *path, int mode, const char *off, const char *len)
{
	int fd = open(path, O_RDWR);

	if (fd < 0)
		return fail("open", path);
	if (fallocate(fd, mode, atoll(off), atoll(len)) < 0)
		return fail("fallocate", path);
	return close(fd) == 0 ? 0 : fail("close", path);
}

static int direct(const char *path)
{
	const size_t n = 1 << 20;
	void *w = NULL, *r = NULL;
	int fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0644);

	if (fd < 0)
		return fail("open O_DIRECT", path);
	if (posix_memalign(&w, 4096, n) != 0 || posix_memalign(&r, 4096, n) != 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		((unsigned char *)w)[i] = (unsigned char)(i * 7 + 3);
	if (pwrite(fd, w, n, 0) != (ssize_t)n)
		return fail("O_DIRECT pwrite", path);
	if (pread(fd, r, n, 0) != (ssize_t)n)
		return fail("O_DIRECT pread", path);
	if (memcmp(w, r, n) != 0) {
		fprintf(stderr, "fusefs-fileops: %s: O_DIRECT read back differs\n", path);
		return 1;
	}
	printf("ok\n");
	free(w);
	free(r);
	return close(fd) == 0 ? 0 : fail("close", path);
}

static int tmpfile_in(const char *dir)
{
	char buf[6] = "";
	int fd = open(dir, O_TMPFILE | O_RDWR, 0600);

	if (fd < 0 && errno == EOPNOTSUPP) {
		printf("unsupported\n");
		return 0;
	}
	if (fd < 0)
		return fail("open O_TMPFILE in", dir);
	if (pwrite(fd, "hello", 5, 0) != 5 || pread(fd, buf, 5, 0) != 5 || strcmp(buf, "hello"))
		return fail("write and read back an O_TMPFILE in", dir);
	printf("ok\n");
	return close(fd) == 0 ? 0 : fail("close", dir);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "copy") == 0)
		return copy(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "map") == 0)
		return map(argv[2]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "zero") == 0)
		return falloc(argv[2], FALLOC_FL_ZERO_RANGE | (argc == 6 ? FALLOC_FL_KEEP_SIZE : 0),
			      argv[3], argv[4]);
	if (argc == 5 && strcmp(argv[1], "punch") == 0)
		return falloc(argv[2], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "direct") == 0)
		return direct(argv[2]);
	if (argc == 3 && strcmp(argv[1], "tmpfile") == 0)
		return tmpfile_in(argv[2]);
	fprintf(stderr, "usage: fusefs-fileops copy|map|zero|punch|direct|tmpfile ...\n");
	return 2;
}
