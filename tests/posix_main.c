/*
 * fusefs-posix - POSIX behaviour on a mounted cluster, through two mounts:
 * every change is made through mount A and checked through mount B (and
 * the other way), with the error cases programs meet.  Run as root; the
 * EACCES/EPERM checks run in a child that drops to an unprivileged uid.
 *
 *   fusefs-posix MOUNT_A MOUNT_B
 *
 * Prints one line per check ("ok: ..." or "FAIL: ..."), and exits 1 when
 * any failed.  Works in a fresh directory it makes under both mounts and
 * removes at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static int failed, passed;
static char A[PATH_MAX / 2], B[PATH_MAX / 2];

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf(ok ? "  ok: " : "  FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (ok)
		passed++;
	else
		failed++;
}

/* Expect a call to fail with errno e (ret is its result). */
#define EXPECT_ERR(call, e, what)                                                          \
	do {                                                                               \
		errno = 0;                                                                 \
		long r_ = (long)(call);                                                    \
		int err_ = errno;                                                          \
		check(r_ == -1 && err_ == (e), "%s: %s (got %ld, %s)", what, strerrorname_np(e), \
		      r_, err_ ? strerrorname_np(err_) : "no error");                      \
	} while (0)

#define EXPECT_OK(call, what)                                                              \
	do {                                                                               \
		errno = 0;                                                                 \
		long r_ = (long)(call);                                                    \
		check(r_ >= 0, "%s (got %ld, %s)", what, r_, r_ < 0 ? strerror(errno) : "ok");  \
	} while (0)

static const char *pa(const char *rel)
{
	static char buf[8][PATH_MAX + 8];
	static int n;
	char *p = buf[n++ % 8];

	snprintf(p, PATH_MAX + 8, "%.*s/%.*s", PATH_MAX / 2, A, PATH_MAX / 2 - 8, rel);
	return p;
}

static const char *pb(const char *rel)
{
	static char buf[8][PATH_MAX + 8];
	static int n;
	char *p = buf[n++ % 8];

	snprintf(p, PATH_MAX + 8, "%.*s/%.*s", PATH_MAX / 2, B, PATH_MAX / 2 - 8, rel);
	return p;
}

static int write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static ssize_t read_file(const char *path, void *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap);
	close(fd);
	return n;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void names_and_entries(void)
{
	char name255[256], name256[257], buf[64];
	struct stat sa, sb;

	printf("names and entries\n");
	EXPECT_OK(mkdir(pa("d"), 0755), "mkdir d on A");
	check(stat(pb("d"), &sb) == 0 && S_ISDIR(sb.st_mode), "d is a directory on B");
	EXPECT_ERR(mkdir(pb("d"), 0755), EEXIST, "mkdir d again on B");
	EXPECT_OK(write_file(pb("d/f"), "hello", 5), "create d/f on B");
	check(read_file(pa("d/f"), buf, sizeof(buf)) == 5 && memcmp(buf, "hello", 5) == 0,
	      "d/f reads hello on A");
	EXPECT_ERR(open(pa("d/f"), O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST, "O_EXCL on an existing file");
	EXPECT_ERR(open(pa("missing/x"), O_RDONLY), ENOENT, "open in a missing directory");
	EXPECT_ERR(stat(pb("d/nothing"), &sb), ENOENT, "stat a missing name");
	EXPECT_ERR(open(pa("d/f/x"), O_CREAT | O_WRONLY, 0644), ENOTDIR, "a file as a directory");
	EXPECT_ERR(rmdir(pa("d")), ENOTEMPTY, "rmdir a non-empty directory");
	EXPECT_ERR(unlink(pb("d")), EISDIR, "unlink a directory");
	EXPECT_ERR(rmdir(pa("d/f")), ENOTDIR, "rmdir a file");
	EXPECT_ERR(open(pa("d"), O_WRONLY), EISDIR, "open a directory for writing");
	memset(name255, 'n', 255);
	name255[255] = '\0';
	memset(name256, 'n', 256);
	name256[256] = '\0';
	snprintf(buf, sizeof(buf), "d/");
	{
		char p[PATH_MAX + 300];

		snprintf(p, sizeof(p), "%s/d/%s", A, name255);
		EXPECT_OK(write_file(p, "x", 1), "a 255-byte name");
		snprintf(p, sizeof(p), "%s/d/%s", B, name255);
		check(exists(p), "the 255-byte name is seen on B");
		EXPECT_OK(unlink(p), "unlink the 255-byte name on B");
		snprintf(p, sizeof(p), "%s/d/%s", A, name256);
		EXPECT_ERR(open(p, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG, "a 256-byte name");
		EXPECT_ERR(mkdir(p, 0755), ENAMETOOLONG, "mkdir with a 256-byte name");
	}
	/* rename */
	EXPECT_OK(rename(pa("d/f"), pa("d/g")), "rename d/f to d/g on A");
	check(!exists(pb("d/f")) && exists(pb("d/g")), "B sees the new name only");
	EXPECT_OK(mkdir(pa("d/sub"), 0755), "mkdir d/sub");
	EXPECT_ERR(rename(pa("d"), pa("d/sub/inside")), EINVAL, "rename a directory into itself");
	EXPECT_ERR(rename(pa("d/sub"), pa("d/g")), ENOTDIR, "rename a directory over a file");
	EXPECT_ERR(rename(pa("d/g"), pa("d/sub")), EISDIR, "rename a file over a directory");
	EXPECT_OK(write_file(pa("d/h"), "other", 5), "create d/h");
	EXPECT_OK(rename(pa("d/h"), pa("d/g")), "rename d/h over d/g");
	check(read_file(pb("d/g"), buf, sizeof(buf)) == 5 && memcmp(buf, "other", 5) == 0,
	      "d/g has d/h's content on B");
	EXPECT_OK(write_file(pa("d/h"), "h", 1), "create d/h again");
	EXPECT_ERR(renameat2(AT_FDCWD, pa("d/h"), AT_FDCWD, pa("d/g"), RENAME_NOREPLACE), EEXIST,
		   "RENAME_NOREPLACE over an existing name");
	EXPECT_OK(renameat2(AT_FDCWD, pa("d/h"), AT_FDCWD, pa("d/g"), RENAME_EXCHANGE),
		  "RENAME_EXCHANGE d/h and d/g");
	check(read_file(pb("d/h"), buf, sizeof(buf)) == 5 && read_file(pb("d/g"), buf, 1) == 1,
	      "the exchange is seen on B");
	EXPECT_OK(mkdir(pa("d/sub2"), 0755), "mkdir d/sub2");
	EXPECT_OK(write_file(pa("d/sub2/x"), "x", 1), "create d/sub2/x");
	EXPECT_ERR(rename(pa("d/sub"), pa("d/sub2")), ENOTEMPTY, "rename over a non-empty directory");
	EXPECT_OK(rename(pa("d/sub2"), pa("d/sub/moved")), "move a directory across parents");
	check(stat(pa("d"), &sa) == 0 && sa.st_nlink == 3, "d has nlink 3 (., .., sub) (got %lu)",
	      (unsigned long)sa.st_nlink);
	check(stat(pb("d/sub"), &sb) == 0 && sb.st_nlink == 3, "d/sub has nlink 3 (got %lu)",
	      (unsigned long)sb.st_nlink);
	/* links, symlinks, special files */
	EXPECT_OK(link(pa("d/g"), pa("d/g2")), "hard link d/g2");
	check(stat(pb("d/g"), &sb) == 0 && sb.st_nlink == 2, "nlink 2 on B");
	check(stat(pb("d/g2"), &sa) == 0 && sa.st_ino == sb.st_ino, "the same inode on B");
	EXPECT_ERR(link(pa("d"), pa("d/dirlink")), EPERM, "hard link to a directory");
	EXPECT_OK(symlink("g", pa("d/sym")), "symlink d/sym -> g");
	{
		char t[64];
		ssize_t n = readlink(pb("d/sym"), t, sizeof(t));

		check(n == 1 && t[0] == 'g', "readlink on B");
		check(read_file(pb("d/sym"), t, sizeof(t)) == 1, "read through the symlink on B");
	}
	EXPECT_ERR(readlink(pa("d/g"), buf, sizeof(buf)), EINVAL, "readlink of a file");
	EXPECT_OK(symlink("loop2", pa("d/loop1")), "symlink loop1");
	EXPECT_OK(symlink("loop1", pa("d/loop2")), "symlink loop2");
	EXPECT_ERR(open(pb("d/loop1"), O_RDONLY), ELOOP, "a symlink loop");
	EXPECT_OK(mkfifo(pa("d/fifo"), 0644), "mkfifo");
	check(stat(pb("d/fifo"), &sb) == 0 && S_ISFIFO(sb.st_mode), "a fifo on B");
	EXPECT_OK(mknod(pa("d/null"), S_IFCHR | 0666, makedev(1, 3)), "mknod a character device");
	check(stat(pb("d/null"), &sb) == 0 && S_ISCHR(sb.st_mode) && sb.st_rdev == (dev_t)makedev(1, 3),
	      "the device on B");
	{
		/* readdir sees everything, once, on the other mount */
		DIR *dir = opendir(pb("d"));
		int n = 0, dots = 0;
		struct dirent *e;

		while (dir && (e = readdir(dir)) != NULL) {
			n++;
			dots += strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
		}
		if (dir)
			closedir(dir);
		check(n == 11 && dots == 2, "readdir of d on B: 11 entries with . and .. (got %d)", n);
	}
}

static void data_and_attributes(void)
{
	static char big[1 << 20];
	char buf[64];
	struct stat st;
	int fd;

	printf("data and attributes\n");
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 4096);
	fd = open(pa("data"), O_RDWR | O_CREAT, 0600);
	check(fd >= 0 && pwrite(fd, big, sizeof(big), 0) == (ssize_t)sizeof(big), "a 1 MiB write");
	if (fd >= 0)
		close(fd);
	{
		static char back[1 << 20];
		int fb = open(pb("data"), O_RDONLY);
		ssize_t n = fb >= 0 ? pread(fb, back, sizeof(back), 0) : -1;

		check(n == (ssize_t)sizeof(back) && memcmp(back, big, sizeof(big)) == 0,
		      "read back on B byte for byte");
		n = fb >= 0 ? pread(fb, back, 100, 12345) : -1;
		check(n == 100 && memcmp(back, big + 12345, 100) == 0, "a read at an odd offset");
		if (fb >= 0)
			close(fb);
	}
	/* sparse, beyond 4 GiB */
	fd = open(pa("sparse"), O_RDWR | O_CREAT, 0644);
	check(fd >= 0 && pwrite(fd, "end", 3, (5LL << 30) + 1) == 3, "a write at 5 GiB");
	if (fd >= 0)
		close(fd);
	check(stat(pb("sparse"), &st) == 0 && st.st_size == (5LL << 30) + 4, "size beyond 4 GiB on B");
	check(st.st_blocks < 1024, "the hole takes no space (%lld blocks)", (long long)st.st_blocks);
	fd = open(pb("sparse"), O_RDONLY);
	{
		char z[4096];
		bool zero = fd >= 0 && pread(fd, z, sizeof(z), 3LL << 30) == (ssize_t)sizeof(z);

		for (size_t i = 0; zero && i < sizeof(z); i++)
			zero = z[i] == 0;
		check(zero, "the hole reads as zeros");
		check(fd >= 0 && pread(fd, buf, 3, (5LL << 30) + 1) == 3 && memcmp(buf, "end", 3) == 0,
		      "the data past the hole");
	}
	if (fd >= 0)
		close(fd);
	/* truncate, attributes, times */
	EXPECT_OK(truncate(pa("data"), 10), "truncate to 10 bytes");
	check(stat(pb("data"), &st) == 0 && st.st_size == 10, "B sees size 10");
	EXPECT_OK(truncate(pb("data"), 20000), "truncate up to 20000 on B");
	fd = open(pa("data"), O_RDONLY);
	{
		char z[100];
		bool zero = fd >= 0 && pread(fd, z, 100, 19900) == 100;

		for (int i = 0; zero && i < 100; i++)
			zero = z[i] == 0;
		check(zero, "the extension reads as zeros on A");
	}
	if (fd >= 0)
		close(fd);
	EXPECT_OK(chmod(pa("data"), 0640), "chmod 640 on A");
	check(stat(pb("data"), &st) == 0 && (st.st_mode & 07777) == 0640, "B sees mode 640");
	EXPECT_OK(chown(pa("data"), 1234, 5678), "chown 1234:5678 on A");
	check(stat(pb("data"), &st) == 0 && st.st_uid == 1234 && st.st_gid == 5678, "B sees the owner");
	{
		struct timespec ts[2] = { { 1000000000, 123456789 }, { 1100000000, 987654321 } };

		EXPECT_OK(utimensat(AT_FDCWD, pa("data"), ts, 0), "utimensat on A");
		check(stat(pb("data"), &st) == 0 && st.st_mtim.tv_sec == 1100000000 &&
		      st.st_mtim.tv_nsec == 987654321 && st.st_atim.tv_sec == 1000000000,
		      "B sees the times to the nanosecond");
	}
	EXPECT_OK(fallocate(open(pa("falloc"), O_RDWR | O_CREAT, 0644), 0, 0, 100000), "fallocate");
	check(stat(pb("falloc"), &st) == 0 && st.st_size == 100000 && st.st_blocks >= 100000 / 512,
	      "fallocate gave size and blocks on B");
	/* xattrs */
	EXPECT_OK(setxattr(pa("data"), "user.color", "blue", 4, 0), "setxattr on A");
	check(getxattr(pb("data"), "user.color", buf, sizeof(buf)) == 4 && memcmp(buf, "blue", 4) == 0,
	      "getxattr on B");
	EXPECT_ERR(setxattr(pa("data"), "user.color", "red", 3, XATTR_CREATE), EEXIST, "XATTR_CREATE on an existing one");
	EXPECT_ERR(setxattr(pa("data"), "user.shape", "x", 1, XATTR_REPLACE), ENODATA, "XATTR_REPLACE on a missing one");
	EXPECT_ERR(getxattr(pb("data"), "user.color", buf, 2), ERANGE, "a buffer too small");
	check(listxattr(pb("data"), buf, sizeof(buf)) == 11 && strcmp(buf, "user.color") == 0, "listxattr on B");
	EXPECT_OK(removexattr(pb("data"), "user.color"), "removexattr on B");
	EXPECT_ERR(getxattr(pa("data"), "user.color", buf, sizeof(buf)), ENODATA, "gone on A");
	{
		struct statvfs sv;

		check(statvfs(pb("."), &sv) == 0 && sv.f_blocks > 0 && sv.f_bfree <= sv.f_blocks &&
		      sv.f_namemax == 255, "statvfs");
	}
	/* open and unlinked: still readable through the open descriptor */
	fd = open(pa("doomed"), O_RDWR | O_CREAT, 0644);
	check(fd >= 0 && write(fd, "still here", 10) == 10, "write doomed");
	EXPECT_OK(unlink(pb("doomed")), "unlink doomed on B while A holds it open");
	check(fd >= 0 && pread(fd, buf, 10, 0) == 10 && memcmp(buf, "still here", 10) == 0,
	      "an unlinked open file still reads");
	check(fd >= 0 && fstat(fd, &st) == 0 && st.st_nlink == 0, "and has nlink 0");
	if (fd >= 0)
		close(fd);
	check(!exists(pa("doomed")), "gone after close");
}

/*
 * Appends from two mounts at once: 4 writers, 2 on each mount, each
 * appending RECS records of 128 bytes with O_APPEND after a 64-byte head
 * (so every 32nd record straddles a page edge).  Every record must come
 * out whole, once.
 */
#define APPEND_RECS 500
#define APPEND_LEN 128
#define APPEND_HEAD 64

static void appends_two_mounts(void)
{
	char rec[APPEND_LEN + 1], *buf;
	int counts[4] = { 0 }, bad = 0;
	pid_t pids[4];
	struct stat st;
	int fd;

	memset(rec, '#', APPEND_HEAD);
	write_file(pa("appends"), rec, APPEND_HEAD);
	for (int w = 0; w < 4; w++) {
		pids[w] = fork();
		if (pids[w] != 0)
			continue;
		fd = open(w % 2 ? pb("appends") : pa("appends"), O_WRONLY | O_APPEND);
		for (int i = 0; fd >= 0 && i < APPEND_RECS; i++) {
			memset(rec, '.', APPEND_LEN);
			snprintf(rec, sizeof(rec), "w%d r%05d ", w, i);
			rec[strlen(rec)] = '.';
			rec[APPEND_LEN - 1] = '\n';
			if (write(fd, rec, APPEND_LEN) != APPEND_LEN)
				_exit(1);
		}
		_exit(fd >= 0 ? 0 : 1);
	}
	for (int w = 0; w < 4; w++) {
		int status;

		if (waitpid(pids[w], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	}
	check(bad == 0, "4 appenders on two mounts wrote every record");
	check(stat(pb("appends"), &st) == 0 && st.st_size == APPEND_HEAD + 4 * APPEND_RECS * APPEND_LEN,
	      "the file holds exactly its head and 4 x %d records", APPEND_RECS);
	buf = malloc(4 * APPEND_RECS * APPEND_LEN);
	fd = open(pa("appends"), O_RDONLY);
	if (buf == NULL || fd < 0 || pread(fd, buf, 4 * APPEND_RECS * APPEND_LEN, APPEND_HEAD) !=
	    4 * APPEND_RECS * APPEND_LEN) {
		check(false, "read the appended records back");
	} else {
		for (int r = 0; r < 4 * APPEND_RECS; r++) {
			const char *p = buf + r * APPEND_LEN;
			int w, i;

			if (sscanf(p, "w%d r%05d ", &w, &i) != 2 || w < 0 || w > 3 ||
			    p[APPEND_LEN - 1] != '\n' || memchr(p, '\n', APPEND_LEN - 1) != NULL)
				bad++;
			else
				counts[w]++;
		}
		check(bad == 0 && counts[0] == APPEND_RECS && counts[1] == APPEND_RECS &&
		      counts[2] == APPEND_RECS && counts[3] == APPEND_RECS,
		      "every record whole and there once (%d torn)", bad);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
}

/*
 * As the same user (uid 65534, gid 65534, supplementary group 4242): what
 * a local filesystem lets it do that a naive server refused.
 */
static void as_user_privileges(void)
{
	struct stat st;
	int fd;

	/* a write to someone else's setuid/setgid file it may write: allowed, and the bits go */
	fd = open(pa("suid"), O_WRONLY | O_APPEND);
	check(fd >= 0 && write(fd, "x", 1) == 1, "write to another's setuid file we may write");
	if (fd >= 0)
		close(fd);
	memset(&st, 0, sizeof(st));
	stat(pb("suid"), &st);
	check((st.st_mode & 07777) == 0777, "and its setuid and setgid bits are cleared (mode %o)",
	      st.st_mode & 07777);
	/* the same through the page cache, and a truncate through a descriptor */
	fd = open(pa("suid2"), O_WRONLY);
	check(fd >= 0 && pwrite(fd, "y", 1, 0) == 1 && fsync(fd) == 0,
	      "a buffered write to another's setuid file");
	if (fd >= 0)
		close(fd);
	memset(&st, 0, sizeof(st));
	stat(pb("suid2"), &st);
	check((st.st_mode & 07777) == 0777, "clears its bits too (mode %o)", st.st_mode & 07777);
	fd = open(pa("suid3"), O_WRONLY);
	check(fd >= 0 && ftruncate(fd, 0) == 0, "ftruncate of another's setuid file");
	if (fd >= 0)
		close(fd);
	memset(&st, 0, sizeof(st));
	stat(pb("suid3"), &st);
	check((st.st_mode & 07777) == 0777 && st.st_size == 0, "clears its bits too (mode %o)",
	      st.st_mode & 07777);
	/* through a descriptor open for writing, the open decided, not the mode */
	fd = open(pa("mine/ro"), O_CREAT | O_RDWR, 0444);
	check(fd >= 0 && ftruncate(fd, 10) == 0, "ftruncate of a file we created 0444, through its descriptor");
	check(fd >= 0 && posix_fallocate(fd, 0, 100) == 0, "posix_fallocate through that descriptor");
	if (fd >= 0)
		close(fd);
	EXPECT_ERR(truncate(pa("mine/ro"), 5), EACCES, "truncate of it by name");
	/* setgid for a group we are in only as a supplementary group */
	EXPECT_OK(write_file(pa("mine/g"), "g", 1), "create a file");
	EXPECT_OK(chown(pa("mine/g"), -1, 4242), "give it our supplementary group");
	EXPECT_OK(chmod(pa("mine/g"), 02775), "chmod 2775");
	memset(&st, 0, sizeof(st));
	stat(pb("mine/g"), &st);
	check((st.st_mode & 07777) == 02775, "keeps setgid for a supplementary group's member (mode %o)",
	      st.st_mode & 07777);
	fd = open(pa("sgid/h"), O_CREAT | O_WRONLY, 02775);
	if (fd >= 0)
		close(fd);
	check(stat(pb("sgid/h"), &st) == 0 && st.st_gid == 4242 && (st.st_mode & S_ISGID),
	      "a file made setgid in a setgid directory of our supplementary group keeps it");
}

/* As an unprivileged user (in a child): permission errors. */
static void as_user(void)
{
	char buf[16];
	int fd;

	printf("permissions (uid 65534, supplementary group 4242)\n");
	EXPECT_ERR(mkdir(pa("priv/x"), 0755), EACCES, "mkdir in a directory we may not write");
	EXPECT_ERR(open(pb("priv/secret"), O_RDONLY), EACCES, "open a file we may not read");
	EXPECT_ERR(chmod(pa("priv/secret"), 0777), EPERM, "chmod someone else's file");
	EXPECT_ERR(chown(pa("mine/f"), 0, 0), EPERM, "chown to root");
	EXPECT_ERR(unlink(pb("sticky/roots")), EPERM, "unlink another's file in a sticky directory");
	EXPECT_OK(write_file(pa("sticky/mine"), "m", 1), "create our own file in the sticky directory");
	EXPECT_OK(unlink(pb("sticky/mine")), "unlink our own file there");
	EXPECT_ERR(open(pa("noexec/f"), O_RDONLY), EACCES, "a directory we may not search");
	EXPECT_ERR(mknod(pa("mine/dev"), S_IFCHR | 0600, makedev(1, 3)), EPERM, "mknod a device");
	fd = open(pa("mine/f"), O_WRONLY);
	check(fd >= 0 && write(fd, "w", 1) == 1, "write our own file");
	if (fd >= 0)
		close(fd);
	EXPECT_ERR(setxattr(pa("priv/secret"), "user.x", "1", 1, 0), EACCES, "setxattr without write permission");
	EXPECT_ERR(setxattr(pa("mine/f"), "trusted.x", "1", 1, 0), EPERM, "setxattr trusted.* as a user");
	(void)buf;
	as_user_privileges();
}

int main(int argc, char **argv)
{
	char dir[64];
	pid_t pid;
	int status;

	if (argc != 3) {
		fprintf(stderr, "usage: fusefs-posix MOUNT_A MOUNT_B\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "posix.%d", getpid());
	if (strlen(argv[1]) > 1000 || strlen(argv[2]) > 1000) {
		fprintf(stderr, "fusefs-posix: mount paths too long\n");
		return 2;
	}
	snprintf(A, sizeof(A), "%s/%s", argv[1], dir);
	snprintf(B, sizeof(B), "%s/%s", argv[2], dir);
	if (mkdir(A, 0755) < 0) {
		fprintf(stderr, "fusefs-posix: mkdir %s: %s\n", A, strerror(errno));
		return 1;
	}
	umask(022);
	names_and_entries();
	data_and_attributes();

	/* the scene for the unprivileged checks */
	mkdir(pa("priv"), 0755);
	write_file(pa("priv/secret"), "s", 1);
	chmod(pa("priv/secret"), 0600);
	mkdir(pa("mine"), 0755);
	chown(pa("mine"), 65534, 65534);
	write_file(pa("mine/f"), "f", 1);
	chown(pa("mine/f"), 65534, 65534);
	mkdir(pa("sticky"), 01777);
	chmod(pa("sticky"), 01777);
	write_file(pa("sticky/roots"), "r", 1);
	mkdir(pa("noexec"), 0700);
	write_file(pa("noexec/f"), "f", 1);
	chmod(pa("noexec"), 0700);
	for (const char *const *n = (const char *const[]){ "suid", "suid2", "suid3", NULL }; *n; n++) {
		write_file(pa(*n), "s", 1);
		chmod(pa(*n), 06777);
	}
	mkdir(pa("sgid"), 0777);
	chown(pa("sgid"), 0, 4242);
	chmod(pa("sgid"), 02777);
	appends_two_mounts();
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		gid_t supp = 4242;

		if (setgroups(1, &supp) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0) {
			printf("  FAIL: cannot drop to uid 65534: %s\n", strerror(errno));
			_exit(1);
		}
		as_user();
		_exit(failed ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		failed++;
	{
		char cmd[PATH_MAX + 32];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", A);
		if (system(cmd) != 0)
			check(false, "removing %s", A);
		else
			check(!exists(B), "the test directory is gone on B too");
	}
	printf("fusefs-posix: %d passed, %d failed (the unprivileged child's count is in its lines)\n",
	       passed, failed);
	return failed ? 1 : 0;
}
