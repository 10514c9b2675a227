/*
 * fusefs-faultfs - a fault-injecting file for the real-process device-fault
 * tests (scripts/test-faults.sh): a FUSE filesystem with two files,
 *
 *   MOUNTPOINT/disk  reads, writes and fsyncs pass through to BACKING_FILE,
 *                    unless a fault says otherwise; opened with direct_io,
 *                    so O_DIRECT works and nothing is cached in between
 *                    (several fusefs-mount processes can share it as their
 *                    metadata device, as hosts share a SAN device);
 *   MOUNTPOINT/ctl   write "key=value" lines to set faults, read it for the
 *                    settings and what was done:
 *                      eio=0|1        every read, write and fsync of disk
 *                                     fails with EIO (a path failover);
 *                      delay_ms=N     every read, write and fsync of disk
 *                                     first waits N ms (a slow device);
 *                      flip=OFFSET    flip the lowest bit of the byte at
 *                                     OFFSET of disk (a block gone bad);
 *                                     atomic with respect to disk I/O.
 *
 *   fusefs-faultfs [-f] [-d] [-o FUSE_OPTION] BACKING_FILE MOUNTPOINT
 *
 * The delay comes first and the error after it, so a failing path also
 * takes its time.  Requests run on up to 64 threads, so one delayed
 * request does not hold up the others (as on a real device queue).
 *
 * libfuse low-level API, the rules of libfuse's passthrough_ll.c: one
 * reply per request, fuse_reply_err with a positive errno.  Inode numbers
 * are fixed (root, disk, ctl); lookups of them need no counting because
 * nothing is ever forgotten or freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INO_DISK 2
#define INO_CTL 3
#define CTL_MAX 4096
#define DELAY_MAX_MS 600000
#define THREADS_MAX 64
#define MIN_SIZE(a, b) ((a) < (b) ? (a) : (b))

struct faultfs {
	int fd;                 /* the backing file */
	char backing[PATH_MAX];
	/* I/O on disk holds io_lock shared; a flip holds it exclusive */
	pthread_rwlock_t io_lock;
	/* faults and counters, under lock */
	pthread_mutex_t lock;
	bool eio;
	uint32_t delay_ms;
	uint64_t reads, writes, fsyncs, injected, flips;
};

enum op { OP_READ, OP_WRITE, OP_FSYNC };

static struct faultfs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Count one disk operation and apply the faults: 0, or -EIO to fail it. */
static int fault_gate(struct faultfs *f, enum op op)
{
	uint32_t delay;
	bool eio;

	pthread_mutex_lock(&f->lock);
	if (op == OP_READ)
		f->reads++;
	else if (op == OP_WRITE)
		f->writes++;
	else
		f->fsyncs++;
	delay = f->delay_ms;
	eio = f->eio;
	pthread_mutex_unlock(&f->lock);
	if (delay > 0)
		sleep_ms(delay);
	if (!eio)
		return 0;
	pthread_mutex_lock(&f->lock);
	eio = f->eio; /* the fault may have cleared while we waited */
	if (eio)
		f->injected++;
	pthread_mutex_unlock(&f->lock);
	return eio ? -EIO : 0;
}

static int ctl_text(struct faultfs *f, char *buf, size_t len)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = snprintf(buf, len,
		     "backing %s\neio %d\ndelay_ms %u\nreads %" PRIu64 "\nwrites %" PRIu64
		     "\nfsyncs %" PRIu64 "\ninjected %" PRIu64 "\nflips %" PRIu64 "\n",
		     f->backing, f->eio, f->delay_ms, f->reads, f->writes, f->fsyncs, f->injected,
		     f->flips);
	pthread_mutex_unlock(&f->lock);
	return n < 0 ? 0 : (int)((size_t)n < len ? (size_t)n : len - 1);
}

/* Flip the lowest bit of the byte at off of the backing file. */
static int flip_bit(struct faultfs *f, uint64_t off)
{
	uint8_t b;
	int ret = 0;

	pthread_rwlock_wrlock(&f->io_lock);
	if (pread(f->fd, &b, 1, (off_t)off) != 1) {
		ret = errno ? -errno : -ERANGE;
	} else {
		b ^= 1;
		if (pwrite(f->fd, &b, 1, (off_t)off) != 1)
			ret = errno ? -errno : -EIO;
	}
	pthread_rwlock_unlock(&f->io_lock);
	if (ret == 0) {
		pthread_mutex_lock(&f->lock);
		f->flips++;
		pthread_mutex_unlock(&f->lock);
	}
	return ret;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
		return false;
	*out = v;
	return true;
}

/* One "key=value" command: 0, or -EINVAL with the reason on stderr. */
static int ctl_command(struct faultfs *f, char *line)
{
	char *eq = strchr(line, '=');
	uint64_t v;

	if (eq == NULL) {
		fprintf(stderr, "fusefs-faultfs: ctl: '%s': expected key=value\n", line);
		return -EINVAL;
	}
	*eq = '\0';
	if (strcmp(line, "eio") == 0 && parse_u64(eq + 1, 1, &v)) {
		pthread_mutex_lock(&f->lock);
		f->eio = v != 0;
		pthread_mutex_unlock(&f->lock);
	} else if (strcmp(line, "delay_ms") == 0 && parse_u64(eq + 1, DELAY_MAX_MS, &v)) {
		pthread_mutex_lock(&f->lock);
		f->delay_ms = (uint32_t)v;
		pthread_mutex_unlock(&f->lock);
	} else if (strcmp(line, "flip") == 0 && parse_u64(eq + 1, INT64_MAX, &v)) {
		int ret = flip_bit(f, v);

		if (ret < 0) {
			fprintf(stderr, "fusefs-faultfs: ctl: flip=%" PRIu64 ": %s\n", v,
				strerror(-ret));
			return ret;
		}
	} else {
		fprintf(stderr, "fusefs-faultfs: ctl: '%s=%s': unknown key or bad value (eio=0|1, "
			"delay_ms=0..%d, flip=OFFSET)\n", line, eq + 1, DELAY_MAX_MS);
		return -EINVAL;
	}
	fprintf(stderr, "fusefs-faultfs: ctl: %s=%s\n", line, eq + 1);
	return 0;
}

/* ---- FUSE operations ---- */

static int stat_of(struct faultfs *f, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 4096;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (ino == INO_DISK) {
		struct stat b;

		if (fstat(f->fd, &b) < 0)
			return -errno;
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = b.st_size;
		st->st_blocks = b.st_blocks;
	} else if (ino == INO_CTL) {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = CTL_MAX;
	} else {
		return -ENOENT;
	}
	return 0;
}

static void ff_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	fuse_ino_t ino;
	int ret;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (strcmp(name, "disk") == 0)
		ino = INO_DISK;
	else if (strcmp(name, "ctl") == 0)
		ino = INO_CTL;
	else {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.generation = 1;
	ret = stat_of(FS(req), ino, &e.attr);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	fuse_reply_entry(req, &e);
}

static void ff_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int ret = stat_of(FS(req), ino, &st);

	(void)fi;
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, 0);
}

static void ff_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const struct { const char *name; fuse_ino_t ino; mode_t mode; } ents[] = {
		{ ".", FUSE_ROOT_ID, S_IFDIR }, { "..", FUSE_ROOT_ID, S_IFDIR },
		{ "disk", INO_DISK, S_IFREG }, { "ctl", INO_CTL, S_IFREG },
	};
	char buf[512];
	size_t used = 0;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (off_t i = off; i >= 0 && i < (off_t)(sizeof(ents) / sizeof(ents[0])); i++) {
		struct stat st = { .st_ino = ents[i].ino, .st_mode = ents[i].mode };
		size_t n = fuse_add_direntry(req, buf + used, MIN_SIZE(size, sizeof(buf)) - used,
					     ents[i].name, &st, i + 1);

		if (used + n > MIN_SIZE(size, sizeof(buf)))
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void ff_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != INO_DISK && ino != INO_CTL) {
		fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
		return;
	}
	fi->direct_io = 1; /* no page cache: every read and write reaches us */
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static void ff_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct faultfs *f = FS(req);
	char *buf;
	ssize_t n;
	int ret;

	(void)fi;
	if (ino == INO_CTL) {
		char text[CTL_MAX];
		int len = ctl_text(f, text, sizeof(text));

		if (off >= len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, text + off, MIN_SIZE(size, (size_t)(len - off)));
		return;
	}
	ret = fault_gate(f, OP_READ);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	buf = malloc(size ? size : 1);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_rwlock_rdlock(&f->io_lock);
	n = pread(f->fd, buf, size, off);
	ret = n < 0 ? -errno : 0;
	pthread_rwlock_unlock(&f->io_lock);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void ff_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct faultfs *f = FS(req);
	ssize_t n;
	int ret;

	(void)fi;
	if (ino == INO_CTL) {
		char cmd[256];
		char *line, *save = NULL;

		if (size >= sizeof(cmd)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		memcpy(cmd, data, size);
		cmd[size] = '\0';
		ret = 0;
		for (line = strtok_r(cmd, "\n", &save); line != NULL && ret == 0;
		     line = strtok_r(NULL, "\n", &save))
			ret = ctl_command(f, line);
		if (ret < 0)
			fuse_reply_err(req, -ret);
		else
			fuse_reply_write(req, size);
		return;
	}
	ret = fault_gate(f, OP_WRITE);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	pthread_rwlock_rdlock(&f->io_lock);
	n = pwrite(f->fd, data, size, off);
	ret = n < 0 ? -errno : 0;
	pthread_rwlock_unlock(&f->io_lock);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, (size_t)n);
}

static void ff_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct faultfs *f = FS(req);
	int ret = 0;

	(void)datasync;
	(void)fi;
	if (ino == INO_DISK) {
		ret = fault_gate(f, OP_FSYNC);
		if (ret == 0 && fdatasync(f->fd) < 0)
			ret = -errno;
	}
	fuse_reply_err(req, -ret);
}

static void ff_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void ff_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ff_ops = {
	.lookup = ff_lookup,
	.getattr = ff_getattr,
	.readdir = ff_readdir,
	.open = ff_open,
	.read = ff_read,
	.write = ff_write,
	.fsync = ff_fsync,
	.flush = ff_flush,
	.release = ff_release,
};

/* ---- main ---- */

struct args {
	const char *backing;
	int nonopts;
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct args *a = data;

	(void)outargs;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (a->nonopts++ == 0) {
		a->backing = arg;
		return 0; /* ours; the second is the mount point, for fuse_parse_cmdline */
	}
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: fusefs-faultfs [-f] [-d] [-o FUSE_OPTION] BACKING_FILE MOUNTPOINT\n"
		"  MOUNTPOINT/disk passes I/O through to BACKING_FILE; write key=value lines\n"
		"  to MOUNTPOINT/ctl: eio=0|1, delay_ms=N, flip=OFFSET\n");
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = { 0 };
	struct fuse_loop_config *loop = NULL;
	struct fuse_session *se = NULL;
	struct faultfs f = { .fd = -1 };
	struct args a = { 0 };
	bool mounted = false, handlers = false;
	int status = 1;

	pthread_mutex_init(&f.lock, NULL);
	pthread_rwlock_init(&f.io_lock, NULL);
	if (fuse_opt_parse(&args, &a, NULL, opt_proc) < 0 || fuse_parse_cmdline(&args, &cmd) < 0)
		goto out;
	if (cmd.show_help || a.backing == NULL || cmd.mountpoint == NULL) {
		usage();
		status = cmd.show_help ? 0 : 2;
		goto out;
	}
	if (realpath(a.backing, f.backing) == NULL) {
		fprintf(stderr, "fusefs-faultfs: %s: %s\n", a.backing, strerror(errno));
		goto out;
	}
	f.fd = open(f.backing, O_RDWR | O_CLOEXEC);
	if (f.fd < 0) {
		fprintf(stderr, "fusefs-faultfs: open %s: %s\n", f.backing, strerror(errno));
		goto out;
	}
	se = fuse_session_new(&args, &ff_ops, sizeof(ff_ops), &f);
	if (se == NULL)
		goto out;
	if (fuse_set_signal_handlers(se) < 0)
		goto out;
	handlers = true;
	if (fuse_session_mount(se, cmd.mountpoint) < 0)
		goto out;
	mounted = true;
	if (fuse_daemonize(cmd.foreground) < 0)
		goto out;
	loop = fuse_loop_cfg_create();
	if (loop == NULL) {
		fprintf(stderr, "fusefs-faultfs: out of memory\n");
		goto out;
	}
	fuse_loop_cfg_set_clone_fd(loop, 0);
	fuse_loop_cfg_set_max_threads(loop, THREADS_MAX);
	status = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;

out:
	if (loop != NULL)
		fuse_loop_cfg_destroy(loop);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se != NULL)
		fuse_session_destroy(se);
	if (f.fd >= 0)
		close(f.fd);
	free(cmd.mountpoint);
	fuse_opt_free_args(&args);
	pthread_rwlock_destroy(&f.io_lock);
	pthread_mutex_destroy(&f.lock);
	return status;
}
