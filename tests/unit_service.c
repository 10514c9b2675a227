/*
 * unit_service.c - the request path without root, FUSE or a network:
 * the product's client, service, executor, dispatch, filesystem and store
 * in one process on the in-memory device (tests/harness.h), over
 * socketpairs.
 *
 *   every_op           each op of the table through the client API, with
 *                      the POSIX results it promises (and every op used);
 *   reads_first        a read and a write in one batch: the read is
 *                      answered while the write's commit is held on the
 *                      device, the write only once it is durable;
 *   replayed           a resent request is answered from the replies
 *                      table by its own (client, request id), not redone;
 *   fenced             a newer ELECT on the device: the commit is refused
 *                      at the term gate, nothing reaches the device, no
 *                      reply is released, the service says it failed;
 *   crash_mid_batch    the device dies at each call of a commit in turn
 *                      and loses, keeps or tears what was not durable:
 *                      after a restart every acknowledged change is there
 *                      and the one in flight is whole or absent;
 *   backpressure       a client that does not read its replies is stopped
 *                      at its connection's limit while others are served,
 *                      and gets every reply once it reads;
 *   hostile            a garbage frame, an unknown op, an oversized first
 *                      frame: each closes its own connection, nothing else;
 *   lease              without the lease no greeting is accepted;
 *   replay_refused     a recorded frame sent again is refused;
 *   stage_table        every stage's histogram counts the calls it saw;
 *   coherence_inval, coherence_stopped_mount, keep_cache_while_unchanged
 *                      a change's reply waits for every other mount that
 *                      may cache what it changed to drop it, or for its
 *                      grant to run out; open keeps pages only unchanged;
 *   silent_mount_gone  a vanished lock holder is fenced, then gone;
 *   resend_reply_lost, failed_commit_unanswered, failed_read_unanswered,
 *   refused_alone, release_resumes
 *                      exactly once across lost replies, failed commits
 *                      and reads, a transaction too big, a release resumed;
 *   open_files_survive, open_files_survive_a_reset, open_file_unlinked_in_grace
 *                      open files (unlinked ones too) across a new server
 *                      and a reset.
 */
#include "tests/unit.h"

#include "common/common.h"
#include "fuse/client.h"
#include "server/service.h"
#include "server/fs.h"
#include "tests/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define ROOT 1
#define WAIT_MS 10000 /* every bounded wait here; a pass takes far less */

static struct harness h;

static void setup(void)
{
	char why[256];

	log_mute(true);
	ck_assert_msg(harness_start(&h, 7, why, sizeof(why)) == 0, "%s", why);
}

static struct srv_codec codec;
static bool codec_ready;
/* the session of the raw connection greeted last: its frames to the server, and from it */
static struct srv_codec raw_tx, raw_rx;
static bool raw_session;

static void raw_session_end(void)
{
	if (raw_session) {
		srv_codec_free(&raw_tx);
		srv_codec_free(&raw_rx);
	}
	raw_session = false;
}

static void teardown(void)
{
	raw_session_end();
	if (codec_ready)
		srv_codec_free(&codec);
	codec_ready = false;
	harness_destroy(&h);
	log_mute(false);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait, bounded, until *v reaches want. */
static bool wait_count(atomic_int *v, int want)
{
	for (int i = 0; i < WAIT_MS / 10; i++) {
		if (atomic_load(v) >= want)
			return true;
		sleep_ms(10);
	}
	return false;
}

static uint64_t counter(enum svc_counter n)
{
	uint64_t v[SVC_CTR_NR];

	svc_get_counters(h.svc, v);
	return v[n];
}

/* Wait, bounded, until the service's counter k reaches n (counted across restarts). */
static void wait_counter(enum svc_counter k, uint64_t n)
{
	for (int i = 0; i < WAIT_MS / 5 && counter(k) < n; i++)
		sleep_ms(5);
	ck_assert_uint_ge(counter(k), n);
}

/* ---- calls through the client ---- */

static uint32_t ops_used[RPC_OP_END];

struct out {
	union rpc_reply_fixed fixed;
	uint8_t tail[1 << 20];
	uint32_t tail_len;
};

static struct out o;

/* One call as uid (0: root), the reply in o. */
static int call_as(struct rpc_client *c, uint32_t uid, uint32_t op, const void *fixed,
		   const void *t1, size_t l1, const void *t2, size_t l2, uint32_t tail_cap)
{
	struct rpc_call k = { .op = op, .uid = uid, .gid = uid, .fixed = fixed, .tail1 = t1,
			      .tail1_len = (uint32_t)l1, .tail2 = t2, .tail2_len = (uint32_t)l2,
			      .reply_fixed = &o.fixed, .reply_tail = o.tail,
			      .reply_tail_cap = tail_cap };
	int ret;

	memset(&o.fixed, 0, sizeof(o.fixed));
	ret = rpc_client_call(c, &k);
	o.tail_len = k.reply_tail_len;
	if (rpc_op_valid(op))
		ops_used[op]++;
	return ret;
}

static int call(struct rpc_client *c, uint32_t op, const void *fixed, const char *n1,
		const char *n2)
{
	return call_as(c, 0, op, fixed, n1, n1 ? strlen(n1) : 0, n2, n2 ? strlen(n2) : 0, 0);
}

static uint64_t entry_ino(void)
{
	return le64_to_cpu(o.fixed.lookup.attr.ino);
}

static uint32_t entry_mode(void)
{
	return le32_to_cpu(o.fixed.lookup.attr.mode);
}

static int make(struct rpc_client *c, uint32_t op, uint64_t parent, const char *name,
		uint32_t mode, uint32_t umask, uint32_t flags)
{
	struct rpc_make m = { .parent = cpu_to_le64(parent), .mode = cpu_to_le32(mode),
			      .umask = cpu_to_le32(umask), .flags = cpu_to_le32(flags) };

	return call(c, op, &m, name, NULL);
}

static int getattr(struct rpc_client *c, uint64_t ino)
{
	struct rpc_ino f = { .ino = cpu_to_le64(ino) };

	return call(c, RPC_GETATTR, &f, NULL, NULL);
}

static uint64_t attr_size(void)
{
	return le64_to_cpu(o.fixed.getattr.size);
}

static int lookup(struct rpc_client *c, uint64_t parent, const char *name)
{
	struct rpc_ino f = { .ino = cpu_to_le64(parent) };

	return call(c, RPC_LOOKUP, &f, name, NULL);
}

static int io(struct rpc_client *c, uint32_t op, uint64_t ino, uint64_t fh, uint64_t off,
	      const char *data, uint32_t size, uint32_t flags)
{
	struct rpc_io f = { .ino = cpu_to_le64(ino), .fh = cpu_to_le64(fh),
			    .offset = cpu_to_le64(off), .size = cpu_to_le32(size),
			    .flags = cpu_to_le32(flags) };

	return call_as(c, 0, op, &f, data, data ? size : 0, NULL, 0, op == RPC_READ ? size : 0);
}

static int name_op(struct rpc_client *c, uint32_t op, uint64_t parent, const char *name)
{
	struct rpc_ino f = { .ino = cpu_to_le64(parent) };

	return call(c, op, &f, name, NULL);
}

/* The names of a READDIR reply in o, joined by spaces. */
static void readdir_names(char *out, size_t len)
{
	struct rpc_dirent d;
	const struct rpc_attr *a;
	const char *name;
	uint32_t pos = 0;
	size_t at = 0;

	out[0] = '\0';
	while (rpc_dirent_next(o.tail, o.tail_len, &pos, &d, &name, &a) == 0)
		at += (size_t)snprintf(out + at, len - at, "%s%.*s", at ? " " : "",
				       (int)le16_to_cpu(d.namelen), name);
}

/* Names and files: make, look up, link, rename, remove. */
static void names_through_client(struct rpc_client *c, uint64_t *dir, uint64_t *file,
				 uint64_t *fh)
{
	char longname[RPC_NAME_MAX + 2];
	struct rpc_link lk;
	struct rpc_rename rn;

	ck_assert_int_eq(make(c, RPC_MKDIR, ROOT, "d", 0777, 022, 0), 0);
	*dir = entry_ino();
	ck_assert_uint_eq(entry_mode(), S_IFDIR | 0755); /* the server applied the umask */
	ck_assert_int_eq(lookup(c, ROOT, "d"), 0);
	ck_assert_uint_eq(entry_ino(), *dir);
	ck_assert_int_eq(lookup(c, ROOT, "nope"), -ENOENT);
	ck_assert_int_eq(make(c, RPC_CREATE, *dir, "f", 0666, 022, O_CREAT | O_EXCL | O_RDWR), 0);
	*file = le64_to_cpu(o.fixed.create.entry.attr.ino);
	*fh = le64_to_cpu(o.fixed.create.opened.fh);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.create.entry.attr.mode), S_IFREG | 0644);
	ck_assert_int_eq(make(c, RPC_CREATE, *dir, "f", 0666, 0, O_CREAT | O_EXCL | O_RDWR), -EEXIST);
	ck_assert_int_eq(make(c, RPC_MKNOD, *dir, "p", S_IFIFO | 0644, 0, 0), 0);
	ck_assert_uint_eq(entry_mode(), S_IFIFO | 0644);
	ck_assert_int_eq(call(c, RPC_SYMLINK, &(struct rpc_ino){ cpu_to_le64(*dir) }, "l", "f"), 0);
	ck_assert_int_eq(call_as(c, 0, RPC_READLINK, &(struct rpc_ino){ cpu_to_le64(entry_ino()) },
				 NULL, 0, NULL, 0, RPC_PATH_MAX), 0);
	ck_assert_uint_eq(o.tail_len, 1);
	ck_assert_int_eq(o.tail[0], 'f');
	lk = (struct rpc_link){ .ino = cpu_to_le64(*file), .newparent = cpu_to_le64(*dir) };
	ck_assert_int_eq(call(c, RPC_LINK, &lk, "g", NULL), 0);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.link.attr.nlink), 2);
	rn = (struct rpc_rename){ .parent = cpu_to_le64(*dir), .newparent = cpu_to_le64(*dir),
				  .flags = cpu_to_le32(RPC_RENAME_NOREPLACE) };
	ck_assert_int_eq(call(c, RPC_RENAME, &rn, "g", "f"), -EEXIST);
	rn.flags = cpu_to_le32(4); /* RENAME_WHITEOUT: not ours to do */
	ck_assert_int_eq(call(c, RPC_RENAME, &rn, "g", "h"), -EINVAL);
	rn.flags = cpu_to_le32(0);
	ck_assert_int_eq(call(c, RPC_RENAME, &rn, "g", "h"), 0);
	/* what the wire would refuse is refused before it is sent, with POSIX's errno */
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(lookup(c, ROOT, longname), -ENAMETOOLONG);
}

/* Data: writes, appends at the server's end of file, reads, sizes, truncation. */
static void data_through_client(struct rpc_client *c, uint64_t file, uint64_t fh)
{
	struct rpc_fallocate fa = { .ino = cpu_to_le64(file), .length = cpu_to_le64(65536) };
	struct rpc_open op = { .ino = cpu_to_le64(file), .flags = cpu_to_le32(O_WRONLY | O_TRUNC) };
	struct rpc_release rl = { .ino = cpu_to_le64(file), .fh = cpu_to_le64(fh) };
	struct le64 fh2;

	ck_assert_int_eq(io(c, RPC_WRITE, file, fh, 0, "hello", 5, O_RDWR), 0);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.write.size), 5);
	/* an append's offset is the server's end of file, whatever the client sent */
	ck_assert_int_eq(io(c, RPC_WRITE, file, fh, 0, " world", 6, O_RDWR | O_APPEND), 0);
	ck_assert_uint_eq(le64_to_cpu(o.fixed.write.attr.size), 11);
	ck_assert_int_eq(io(c, RPC_READ, file, fh, 0, NULL, 100, 0), 0);
	ck_assert_uint_eq(o.tail_len, 11);
	ck_assert(memcmp(o.tail, "hello world", 11) == 0);
	ck_assert_int_eq(call(c, RPC_FALLOCATE, &fa, NULL, NULL), 0);
	ck_assert_int_eq(getattr(c, file), 0);
	ck_assert_uint_eq(attr_size(), 65536);
	{
		/* holes by the chunk, and a copy the server makes */
		struct rpc_lseek sk = { .ino = cpu_to_le64(file), .fh = cpu_to_le64(fh),
					.offset = cpu_to_le64(5), .whence = cpu_to_le32(SEEK_DATA) };
		struct rpc_copy cp = { .ino_in = cpu_to_le64(file), .fh_in = cpu_to_le64(fh),
				       .ino_out = cpu_to_le64(file), .fh_out = cpu_to_le64(fh),
				       .off_out = cpu_to_le64(40000), .len = cpu_to_le64(11) };

		ck_assert_int_eq(call(c, RPC_LSEEK, &sk, NULL, NULL), 0);
		ck_assert_uint_eq(le64_to_cpu(o.fixed.lseek.offset), 5);
		sk.whence = cpu_to_le32(SEEK_HOLE);
		ck_assert_int_eq(call(c, RPC_LSEEK, &sk, NULL, NULL), 0);
		ck_assert_uint_eq(le64_to_cpu(o.fixed.lseek.offset), FS_CHUNK_BYTES);
		ck_assert_int_eq(call(c, RPC_COPY, &cp, NULL, NULL), 0);
		ck_assert_uint_eq(le32_to_cpu(o.fixed.copy.size), 11);
		sk.whence = cpu_to_le32(SEEK_DATA);
		sk.offset = cpu_to_le64(FS_CHUNK_BYTES);
		ck_assert_int_eq(call(c, RPC_LSEEK, &sk, NULL, NULL), 0);
		ck_assert_uint_eq(le64_to_cpu(o.fixed.lseek.offset), 2 * FS_CHUNK_BYTES);
		ck_assert_int_eq(io(c, RPC_READ, file, fh, 40000, NULL, 11, 0), 0);
		ck_assert(memcmp(o.tail, "hello world", 11) == 0);
		cp.off_out = cpu_to_le64(5); /* overlapping */
		ck_assert_int_eq(call(c, RPC_COPY, &cp, NULL, NULL), -EINVAL);
		sk.offset = cpu_to_le64(65536);
		ck_assert_int_eq(call(c, RPC_LSEEK, &sk, NULL, NULL), -ENXIO);
	}
	ck_assert_int_eq(call(c, RPC_OPEN, &op, NULL, NULL), 0);
	fh2 = o.fixed.open.fh;
	ck_assert_int_eq(getattr(c, file), 0);
	ck_assert_uint_eq(attr_size(), 0);
	ck_assert_int_eq(call(c, RPC_RELEASE, &rl, NULL, NULL), 0);
	rl.fh = fh2;
	ck_assert_int_eq(call(c, RPC_RELEASE, &rl, NULL, NULL), 0);
}

/* Attributes, access, xattrs, statfs. */
static void attrs_through_client(struct rpc_client *c, uint64_t file)
{
	struct rpc_setattr sa = { .ino = cpu_to_le64(file), .valid = cpu_to_le32(RPC_SET_MODE),
				  .mode = cpu_to_le32(0600) };
	struct rpc_access ac = { .ino = cpu_to_le64(file), .mask = cpu_to_le32(W_OK) };
	struct rpc_xattr x = { .ino = cpu_to_le64(file) };

	ck_assert_int_eq(call(c, RPC_SETATTR, &sa, NULL, NULL), 0);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.setattr.mode), S_IFREG | 0600);
	/* the filesystem judges a time's nanoseconds */
	sa.valid = cpu_to_le32(RPC_SET_MTIME);
	sa.mtime_nsec = cpu_to_le32(2000000000u);
	ck_assert_int_eq(call(c, RPC_SETATTR, &sa, NULL, NULL), -EINVAL);
	ck_assert_int_eq(call_as(c, 1000, RPC_ACCESS, &ac, NULL, 0, NULL, 0, 0), -EACCES);
	ck_assert_int_eq(call(c, RPC_ACCESS, &ac, NULL, NULL), 0);
	ck_assert_int_eq(call_as(c, 0, RPC_SETXATTR, &x, "user.k", 6, "v", 1, 0), 0);
	ck_assert_int_eq(call(c, RPC_GETXATTR, &x, "user.k", NULL), 0);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.getxattr.size), 1);
	x.size = cpu_to_le32(16);
	ck_assert_int_eq(call_as(c, 0, RPC_GETXATTR, &x, "user.k", 6, NULL, 0, 16), 0);
	ck_assert_uint_eq(o.tail_len, 1);
	ck_assert_int_eq(call_as(c, 0, RPC_LISTXATTR, &x, NULL, 0, NULL, 0, 16), 0);
	ck_assert_uint_eq(o.tail_len, 7);
	ck_assert(memcmp(o.tail, "user.k", 7) == 0);
	ck_assert_int_eq(call(c, RPC_REMOVEXATTR, &x, "user.k", NULL), 0);
	ck_assert_int_eq(call_as(c, 0, RPC_GETXATTR, &x, "user.k", 6, NULL, 0, 16), -ENODATA);
	ck_assert_int_eq(call(c, RPC_STATFS, &(struct rpc_ino){ cpu_to_le64(ROOT) }, NULL, NULL), 0);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.statfs.namemax), 255);
	ck_assert_uint_gt(le64_to_cpu(o.fixed.statfs.bfree), 0);
}

/* Locks: owners on one mount and another meet, GETLK's pid only on its own mount. */
static void locks_through_client(struct rpc_client *c, uint64_t file)
{
	struct rpc_lock l = { .ino = cpu_to_le64(file), .owner = cpu_to_le64(1),
			      .start = cpu_to_le64(0), .end = cpu_to_le64(99),
			      .type = cpu_to_le32(F_WRLCK), .pid = cpu_to_le32(4321) };
	struct rpc_client *c2;

	ck_assert_int_eq(call(c, RPC_SETLK, &l, NULL, NULL), 0);
	l.owner = cpu_to_le64(2);
	l.start = cpu_to_le64(50);
	l.end = cpu_to_le64(INT64_MAX);
	ck_assert_int_eq(call(c, RPC_SETLK, &l, NULL, NULL), -EAGAIN);
	ck_assert_int_eq(call(c, RPC_GETLK, &l, NULL, NULL), 0);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.getlk.type), F_WRLCK);
	ck_assert_uint_eq(le64_to_cpu(o.fixed.getlk.end), 99);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.getlk.pid), 4321);
	ck_assert_int_eq(harness_client(&h, 0xc2, &c2), 0);
	ck_assert_int_eq(call(c2, RPC_GETLK, &l, NULL, NULL), 0);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.getlk.type), F_WRLCK);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.getlk.pid), 0); /* (not a process of its host) */
	l.start = cpu_to_le64(100); /* past it: free */
	ck_assert_int_eq(call(c2, RPC_SETLK, &l, NULL, NULL), 0);
	l.flags = cpu_to_le32(8); /* not a flag of ours */
	ck_assert_int_eq(call(c2, RPC_SETLK, &l, NULL, NULL), -EINVAL);
	rpc_client_destroy(c2);
	l = (struct rpc_lock){ .ino = cpu_to_le64(file), .owner = cpu_to_le64(1),
			       .end = cpu_to_le64(INT64_MAX), .type = cpu_to_le32(F_UNLCK) };
	ck_assert_int_eq(call(c, RPC_SETLK, &l, NULL, NULL), 0);
}

START_TEST(every_op)
{
	struct rpc_readdir rd = { .size = cpu_to_le32(4096), .plus = cpu_to_le32(1) };
	struct rpc_client *c;
	uint64_t dir, file, fh;
	char names[256];

	memset(ops_used, 0, sizeof(ops_used));
	ck_assert_int_eq(harness_client(&h, 0xc1, &c), 0);
	names_through_client(c, &dir, &file, &fh);
	data_through_client(c, file, fh);
	attrs_through_client(c, file);
	locks_through_client(c, file);
	rd.ino = cpu_to_le64(dir);
	ck_assert_int_eq(call_as(c, 0, RPC_READDIR, &rd, NULL, 0, NULL, 0, 4096), 0);
	readdir_names(names, sizeof(names));
	ck_assert_str_eq(names, ". .. f p l h");
	ck_assert_int_eq(name_op(c, RPC_RMDIR, ROOT, "d"), -ENOTEMPTY);
	for (const char *const *n = (const char *const[]){ "f", "p", "l", "h", NULL }; *n; n++)
		ck_assert_int_eq(name_op(c, RPC_UNLINK, dir, *n), 0);
	ck_assert_int_eq(name_op(c, RPC_RMDIR, ROOT, "d"), 0);
	ck_assert_int_eq(lookup(c, ROOT, "d"), -ENOENT);
	for (uint32_t op = RPC_LOOKUP; op < RPC_OP_END; op++)
		ck_assert_msg(ops_used[op] > 0, "op %s never ran", rpc_op_name(op));
	rpc_client_destroy(c);
}
END_TEST

/* ---- raw frames ---- */

/* The test's frame codec, made once per test (teardown frees it). */
static void codec_open(void)
{
	if (!codec_ready)
		ck_assert_int_eq(srv_codec_init(&codec, &h.super), 0);
	codec_ready = true;
}

/* Frame a request into buf: its length. */
static size_t raw_request(uint8_t *buf, size_t cap, uint64_t rid, uint64_t req_id, uint32_t op,
			  const void *fixed, const void *t1, uint32_t l1)
{
	struct rpc_req r = { .req_id = req_id, .client_rid = rid, .oldest_req_id = req_id, .op = op,
			     .tail1_len = l1 };
	struct le32 groups[RPC_GROUPS_MAX];
	struct rpc_req_hdr hdr;
	struct srv_frame_hdr fh;
	uint8_t tag[HMAC_SHA256_BYTES];
	struct iovec pieces[3] = { { &hdr, sizeof(hdr) },
				   { (void *)fixed, rpc_op_fixed_bytes(op) },
				   { (void *)t1, l1 } };
	ssize_t n;
	size_t at = 0;

	rpc_req_hdr_encode(&r, &hdr, groups);
	n = srv_frame_seal(raw_session ? &raw_tx : &codec, SRV_MSG_REQUEST, pieces, 3, &fh, tag);
	ck_assert_int_gt(n, 0);
	ck_assert_uint_le((size_t)n, cap);
	memcpy(buf, &fh, sizeof(fh));
	at = sizeof(fh);
	for (int i = 0; i < 3; i++) {
		if (pieces[i].iov_len)
			memcpy(buf + at, pieces[i].iov_base, pieces[i].iov_len);
		at += pieces[i].iov_len;
	}
	if (codec.auth)
		memcpy(buf + at, tag, sizeof(tag));
	return (size_t)n;
}

static void raw_write(int fd, const void *buf, size_t len)
{
	ck_assert_int_eq(srv_io_full(fd, (void *)buf, len, true, mono_now() + WAIT_MS * NSEC_PER_MSEC),
			 0);
}

/* The next frame on fd within ms: 0 with its payload in buf, -ETIMEDOUT, or -ECONNRESET. */
static int raw_frame(int fd, uint8_t *buf, size_t cap, int ms, uint32_t *type,
		     const uint8_t **pl, uint32_t *plen)
{
	mono_ns deadline = mono_now() + ms * NSEC_PER_MSEC;
	ssize_t total;
	int ret = srv_io_full(fd, buf, SRV_FRAME_HDR_BYTES, false, deadline);

	if (ret < 0)
		return ret;
	total = srv_frame_total(&codec, buf);
	ck_assert_int_gt(total, 0);
	ck_assert_uint_le((size_t)total, cap);
	ret = srv_io_full(fd, buf + SRV_FRAME_HDR_BYTES, (size_t)total - SRV_FRAME_HDR_BYTES, false,
			  deadline);
	if (ret < 0)
		return ret;
	ck_assert_int_eq(srv_frame_decode(raw_session ? &raw_rx : &codec, buf, (size_t)total, type,
					  pl, plen), total);
	return 0;
}

static int raw_reply(int fd, int ms, struct rpc_reply *r)
{
	static uint8_t buf[SRV_FRAME_MAX_PAYLOAD + 256];
	const uint8_t *pl;
	uint32_t type, plen;
	int ret = raw_frame(fd, buf, sizeof(buf), ms, &type, &pl, &plen);

	if (ret < 0)
		return ret;
	ck_assert_uint_eq(type, SRV_MSG_REPLY);
	ck_assert_int_eq(rpc_reply_decode(pl, plen, r), 0);
	return 0;
}

/* One request on fd, as rid, and its reply (within WAIT_MS): the reply's status. */
static uint32_t raw_call(int fd, uint64_t rid, uint64_t req_id, uint32_t op, const void *fixed,
			 const void *t1, uint32_t l1, struct rpc_reply *r)
{
	uint8_t buf[1024];

	raw_write(fd, buf, raw_request(buf, sizeof(buf), rid, req_id, op, fixed, t1, l1));
	ck_assert_int_eq(raw_reply(fd, WAIT_MS, r), 0);
	return r->status;
}

/* A raw connection that greeted as rid: the greeting's status. */
static uint32_t raw_greet(int *fd, uint64_t rid)
{
	struct srv_greeting g = { .fsid = h.super.fsid, .client_rid = rid, .version = SRV_PROTO_VERSION };
	struct srv_greeting_wire w;
	struct srv_greeting_reply r;
	uint8_t buf[256];
	const uint8_t *pl;
	uint32_t type, plen;
	ssize_t n;

	codec_open();
	raw_session_end();
	ck_assert_int_eq(harness_raw(&h, fd), 0);
	ck_assert_int_eq(srv_nonce(g.nonce), 0);
	srv_greeting_encode(&g, &w);
	n = srv_frame_encode(&codec, SRV_MSG_GREETING, &w, sizeof(w), buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	raw_write(*fd, buf, (size_t)n);
	ck_assert_int_eq(raw_frame(*fd, buf, sizeof(buf), WAIT_MS, &type, &pl, &plen), 0);
	ck_assert_uint_eq(type, SRV_MSG_GREETING_REPLY);
	ck_assert_int_eq(srv_greeting_reply_decode(pl, plen, &r), 0);
	if (r.status == SRV_GREET_OK) {
		ck_assert_int_eq(srv_codec_session(&raw_tx, &codec, true, g.nonce, r.nonce), 0);
		ck_assert_int_eq(srv_codec_session(&raw_rx, &codec, false, g.nonce, r.nonce), 0);
		raw_session = true;
	}
	return r.status;
}

static void raw_close(int fd)
{
	close(fd);
}

/* Wait, bounded, until the device holds n writers. */
static void wait_held(uint32_t n)
{
	for (int i = 0; i < WAIT_MS / 5 && bd_mem_held_waiters(h.dev) < n; i++)
		sleep_ms(5);
	ck_assert_uint_ge(bd_mem_held_waiters(h.dev), n);
}

START_TEST(reads_first)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	struct rpc_ino at = { .ino = cpu_to_le64(ROOT) };
	uint8_t buf[1024];
	struct rpc_reply r;
	size_t n;
	int fd;

	ck_assert_uint_eq(raw_greet(&fd, 0xa1), SRV_GREET_OK);
	/* one write carries both frames: they are read in one round and make one batch */
	n = raw_request(buf, sizeof(buf), 0xa1, 1, RPC_MKDIR, &mk, "w", 1);
	n += raw_request(buf + n, sizeof(buf) - n, 0xa1, 2, RPC_GETATTR, &at, NULL, 0);
	bd_mem_hold(h.dev, true);
	raw_write(fd, buf, n);
	ck_assert_int_eq(raw_reply(fd, WAIT_MS, &r), 0);
	ck_assert_uint_eq(r.req_id, 2); /* the read, answered while the commit is held */
	ck_assert_uint_eq(r.status, 0);
	wait_held(1);
	ck_assert_int_eq(raw_reply(fd, 100, &r), -ETIMEDOUT); /* not before it is durable */
	bd_mem_hold(h.dev, false);
	ck_assert_int_eq(raw_reply(fd, WAIT_MS, &r), 0);
	ck_assert_uint_eq(r.req_id, 1);
	ck_assert_uint_eq(r.status, 0);
	raw_close(fd);
}
END_TEST

/*
 * A mount that goes silent holding a lock: its connection is closed after
 * silent_ms, and past its grace it is fenced - and only once the fence
 * succeeds does the lock go to another mount (while the fence fails, the
 * lock stays held and the mount is told "not serving").  Then it is
 * refused at its next greeting, by this server and by the next one.  A
 * silent mount that held nothing is not fenced and may come back.  And a
 * lock holder that does not come back to the next server is fenced by it
 * at the end of its start's grace.
 */
START_TEST(silent_mount_gone)
{
	struct rpc_lock l = { .owner = cpu_to_le64(1), .end = cpu_to_le64(INT64_MAX),
			      .type = cpu_to_le32(F_WRLCK) };
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	uint64_t gone0 = counter(SVC_gone_mounts), fenced0 = counter(SVC_fenced_mounts);
	uint64_t failed0 = counter(SVC_mount_fence_failures);
	struct rpc_client *c;
	struct rpc_reply r;
	char why[256];
	int fd, fd2, ret = -EAGAIN, fences0;

	harness_halt(&h, false);
	h.silent_ms = 1500; /* (a client says alive every 500 ms) */
	h.grace_ms = 300;
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	ck_assert_int_eq(harness_client(&h, 0xd2, &c), 0);
	ck_assert_int_eq(make(c, RPC_MKNOD, ROOT, "locked", S_IFREG | 0644, 0, 0), 0);
	l.ino = cpu_to_le64(entry_ino());
	ck_assert_uint_eq(raw_greet(&fd, 0xd1), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd, 0xd1, 1, RPC_SETLK, &l, NULL, 0, &r), 0);
	ck_assert_int_eq(call(c, RPC_SETLK, &l, NULL, NULL), -EAGAIN);
	/* 0xd1 says nothing more: closed, away; its fence fails twice, and the lock stays */
	atomic_store(&h.fence_fails, true);
	wait_counter(SVC_mount_fence_failures, failed0 + 2);
	ck_assert_uint_ge(counter(SVC_mount_fence_failures), failed0 + 2);
	ck_assert_int_eq(call(c, RPC_SETLK, &l, NULL, NULL), -EAGAIN);
	ck_assert_uint_eq(counter(SVC_gone_mounts), gone0);
	ck_assert_uint_eq(raw_greet(&fd2, 0xd1), SRV_GREET_NOT_SERVING);
	raw_close(fd2);
	/* the fence works: fenced, then gone, and the lock is free */
	atomic_store(&h.fence_fails, false);
	for (int i = 0; i < WAIT_MS / 20 && ret == -EAGAIN; i++) {
		sleep_ms(20);
		ret = call(c, RPC_SETLK, &l, NULL, NULL);
	}
	ck_assert_int_eq(ret, 0);
	ck_assert_uint_eq(atomic_load(&h.fenced_rid), 0xd1);
	ck_assert_uint_eq(counter(SVC_fenced_mounts), fenced0 + 1);
	ck_assert_uint_eq(counter(SVC_gone_mounts), gone0 + 1);
	ck_assert_int_lt(raw_reply(fd, WAIT_MS, &r), 0); /* (its connection was closed) */
	raw_close(fd);
	ck_assert_uint_eq(raw_greet(&fd, 0xd1), SRV_GREET_GONE);
	raw_close(fd);
	/*
	 * One that held nothing is not fenced, and is let back; the call it
	 * had in flight, sent again, is answered from the kept replies and not
	 * applied twice (found by fusefs-wsim: they were forgotten with it).
	 */
	fences0 = atomic_load(&h.fences);
	ck_assert_uint_eq(raw_greet(&fd2, 0xd3), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd2, 0xd3, 7, RPC_MKDIR, &mk, "away", 4, &r), 0);
	shutdown(fd2, SHUT_RDWR); /* (the harness keeps a second descriptor of the client's end) */
	raw_close(fd2);
	sleep_ms(h.grace_ms + 200); /* (past its grace: nothing may happen, so nothing to wait for) */
	ck_assert_int_eq(atomic_load(&h.fences), fences0);
	ck_assert_uint_eq(raw_greet(&fd2, 0xd3), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd2, 0xd3, 7, RPC_MKDIR, &mk, "away", 4, &r), 0);
	raw_close(fd2);
	l.type = cpu_to_le32(F_UNLCK);
	ck_assert_int_eq(call(c, RPC_SETLK, &l, NULL, NULL), 0);
	l.type = cpu_to_le32(F_WRLCK);
	rpc_client_destroy(c);
	/* 0xd4 holds a lock and does not come back to the next server */
	l.owner = cpu_to_le64(4);
	l.start = cpu_to_le64(1000);
	l.end = cpu_to_le64(1999);
	ck_assert_uint_eq(raw_greet(&fd, 0xd4), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd, 0xd4, 1, RPC_SETLK, &l, NULL, 0, &r), 0);
	raw_close(fd);
	harness_halt(&h, false);
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	/* the next server knows 0xd1 was gone: it is in the store */
	ck_assert_uint_eq(raw_greet(&fd, 0xd1), SRV_GREET_GONE);
	raw_close(fd);
	wait_counter(SVC_fenced_mounts, fenced0 + 2);
	ck_assert_uint_eq(counter(SVC_fenced_mounts), fenced0 + 2);
	ck_assert_uint_eq(atomic_load(&h.fenced_rid), 0xd4);
	ck_assert_int_eq(harness_client(&h, 0xd5, &c), 0);
	l.owner = cpu_to_le64(5);
	ret = -EAGAIN;
	for (int i = 0; i < WAIT_MS / 20 && ret == -EAGAIN; i++) {
		ret = call(c, RPC_SETLK, &l, NULL, NULL);
		if (ret == -EAGAIN)
			sleep_ms(20);
	}
	ck_assert_int_eq(ret, 0);
	rpc_client_destroy(c);
	ck_assert_uint_eq(raw_greet(&fd, 0xd4), SRV_GREET_GONE);
	raw_close(fd);
}
END_TEST

START_TEST(replayed)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	struct rpc_reply r;
	uint64_t ino, ino_y;
	int fd;

	ck_assert_uint_eq(raw_greet(&fd, 0xb1), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd, 0xb1, 10, RPC_MKDIR, &mk, "x", 1, &r), 0);
	ino = le64_to_cpu(((const struct rpc_entry *)r.fixed)->attr.ino);
	/* the same request again: its kept result, not EEXIST */
	ck_assert_uint_eq(raw_call(fd, 0xb1, 10, RPC_MKDIR, &mk, "x", 1, &r), 0);
	ck_assert_uint_eq(le64_to_cpu(((const struct rpc_entry *)r.fixed)->attr.ino), ino);
	raw_close(fd);

	/* another mount's request of the same id is its own: done, not answered from 0xb1's */
	ck_assert_uint_eq(raw_greet(&fd, 0xb2), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd, 0xb2, 10, RPC_MKDIR, &mk, "y", 1, &r), 0);
	ino_y = le64_to_cpu(((const struct rpc_entry *)r.fixed)->attr.ino);
	ck_assert_uint_ne(ino_y, ino);
	ck_assert_uint_eq(raw_call(fd, 0xb2, 10, RPC_MKDIR, &mk, "y", 1, &r), 0);
	ck_assert_uint_eq(le64_to_cpu(((const struct rpc_entry *)r.fixed)->attr.ino), ino_y);
	raw_close(fd);

	/* each keeps its own: 0xb1's id 10, resent on a new connection, is still x */
	ck_assert_uint_eq(raw_greet(&fd, 0xb1), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd, 0xb1, 10, RPC_MKDIR, &mk, "x", 1, &r), 0);
	ck_assert_uint_eq(le64_to_cpu(((const struct rpc_entry *)r.fixed)->attr.ino), ino);
	/* another request id is another request */
	ck_assert_uint_eq(raw_call(fd, 0xb1, 11, RPC_MKDIR, &mk, "x", 1, &r), EEXIST);
	raw_close(fd);
}
END_TEST

START_TEST(fenced)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	struct bd_stats before, after;
	struct rpc_client *c;
	uint8_t buf[1024];
	struct rpc_reply r;
	char why[256];
	int fd;

	ck_assert_uint_eq(raw_greet(&fd, 0xc1), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd, 0xc1, 1, RPC_MKDIR, &mk, "before", 6, &r), 0);
	harness_elect(&h, 1, HARNESS_TERM + 2);
	bd_get_stats(h.dev, &before);
	raw_write(fd, buf, raw_request(buf, sizeof(buf), 0xc1, 2, RPC_MKDIR, &mk, "after", 5));
	ck_assert(wait_count(&h.failures, 1));
	ck_assert_int_eq(atomic_load(&h.failed_res), -ESTALE);
	bd_get_stats(h.dev, &after);
	ck_assert_uint_eq(after.writes, before.writes); /* nothing reached the device */
	ck_assert_uint_eq(after.flushes, before.flushes);
	ck_assert_int_eq(raw_reply(fd, 100, &r), -ETIMEDOUT); /* and nothing was answered */
	harness_halt(&h, true);
	ck_assert_int_eq(raw_reply(fd, WAIT_MS, &r), -ECONNRESET);
	raw_close(fd);
	/* served again (the newer leader gone from the blocks): the refused change is not there */
	harness_elect(&h, 1, 0);
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	ck_assert_int_eq(harness_client(&h, 0xc2, &c), 0);
	ck_assert_int_eq(lookup(c, ROOT, "before"), 0);
	ck_assert_int_eq(lookup(c, ROOT, "after"), -ENOENT);
	rpc_client_destroy(c);
}
END_TEST

/*
 * No reply of a batch whose commit failed reaches a client: two mkdirs in
 * one batch, and each kind of device call their commit makes failing with
 * EIO (the term gate's read of the quorum blocks, the log's one durable
 * write): the service stops and neither is answered, not even as the
 * connection goes.  (The gate refusing is the test "fenced".)
 */
START_TEST(failed_commit_unanswered)
{
	static const struct {
		const char *what;
		unsigned ops;
		uint64_t lo, hi;
	} faults[] = {
		{ "the gate's read", BD_FAULT_READ, FUSEFS_QUORUM_BLKNO,
		  FUSEFS_QUORUM_BLKNO + FUSEFS_QUORUM_BLOCKS },
		{ "the log's durable write", BD_FAULT_WRITE, 0, UINT64_MAX },
	};
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	uint8_t buf[2048];
	struct rpc_reply r;
	char why[256];
	size_t n;
	int fd, ret;

	for (size_t k = 0; k < ARRAY_SIZE(faults); k++) {
		struct bd_mem_faults f = { .fail_ops = faults[k].ops, .fail_lo = faults[k].lo,
					   .fail_hi = faults[k].hi, .err = -EIO };
		uint64_t rid = 0xe100 + k;

		ck_assert_uint_eq(raw_greet(&fd, rid), SRV_GREET_OK);
		n = raw_request(buf, sizeof(buf), rid, 1, RPC_MKDIR, &mk, "p", 1);
		n += raw_request(buf + n, sizeof(buf) - n, rid, 2, RPC_MKDIR, &mk, "q", 1);
		bd_mem_set_faults(h.dev, &f);
		raw_write(fd, buf, n);
		ck_assert_msg(wait_count(&h.failures, 1), "%s failed: the service did not stop",
			      faults[k].what);
		ck_assert_int_eq(atomic_load(&h.failed_res), -EIO);
		ret = raw_reply(fd, 100, &r);
		ck_assert_msg(ret == -ETIMEDOUT, "%s failed, yet request %llu was answered %u",
			      faults[k].what, ret == 0 ? (unsigned long long)r.req_id : 0ULL,
			      ret == 0 ? r.status : 0u);
		harness_halt(&h, true);
		ck_assert_int_eq(raw_reply(fd, WAIT_MS, &r), -ECONNRESET);
		raw_close(fd);
		f = (struct bd_mem_faults){ 0 };
		bd_mem_set_faults(h.dev, &f);
		atomic_store(&h.failures, 0);
		ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "after %s: %s",
			      faults[k].what, why);
	}
}
END_TEST

/*
 * One crash: ten acknowledged mkdirs, then the device fails from its k-th
 * call on while one more is in flight, the service stops, the device
 * crashes (mode), the store is served again.
 */
static void crash_at(int k, enum bd_crash_mode mode)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	struct bd_mem_faults f = { .fail_after_nth = true };
	struct rpc_client *c;
	char name[32], why[256];
	uint8_t buf[1024];
	struct rpc_reply r;
	bool acked;
	int fd, ret;

	/* (every client a rid of its own, as every mount has: a (rid, request id) seen before is a resend) */
	ck_assert_int_eq(harness_client(&h, 0xd100 + (uint64_t)k, &c), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "k%d-%d", k, i);
		ck_assert_int_eq(make(c, RPC_MKDIR, ROOT, name, 0755, 0, 0), 0);
	}
	rpc_client_destroy(c);
	ck_assert_uint_eq(raw_greet(&fd, 0xd200 + (uint64_t)k), SRV_GREET_OK);
	f.fail_nth = bd_mem_calls(h.dev) + (uint64_t)k;
	bd_mem_set_faults(h.dev, &f);
	snprintf(name, sizeof(name), "k%d-x", k);
	raw_write(fd, buf, raw_request(buf, sizeof(buf), 0xd200 + (uint64_t)k, 1, RPC_MKDIR, &mk, name,
				       (uint32_t)strlen(name)));
	/* (the first client's grants are waited out: it is gone without a word) */
	ret = -ETIMEDOUT;
	for (int i = 0; i < WAIT_MS / 50 && ret == -ETIMEDOUT && atomic_load(&h.failures) == 0; i++)
		ret = raw_reply(fd, 50, &r);
	acked = ret == 0 && r.status == 0;
	ck_assert(acked || wait_count(&h.failures, 1));
	harness_halt(&h, true);
	raw_close(fd);
	bd_mem_crash(h.dev, mode);
	f = (struct bd_mem_faults){ 0 };
	bd_mem_set_faults(h.dev, &f);
	atomic_store(&h.failures, 0);
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "k %d mode %d: %s", k, mode, why);
	ck_assert_int_eq(harness_client(&h, 0xd300 + (uint64_t)k, &c), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "k%d-%d", k, i);
		ck_assert_msg(lookup(c, ROOT, name) == 0, "k %d mode %d: %s lost", k, mode, name);
	}
	snprintf(name, sizeof(name), "k%d-x", k);
	ret = lookup(c, ROOT, name);
	ck_assert_msg(ret == 0 || (!acked && ret == -ENOENT), "k %d mode %d: %s: %d (acked %d)", k,
		      mode, name, ret, acked);
	if (ret == 0) /* whole: a directory with its two links */
		ck_assert_uint_eq(le32_to_cpu(o.fixed.lookup.attr.nlink), 2);
	rpc_client_destroy(c);
}

START_TEST(crash_mid_batch)
{
	static const enum bd_crash_mode modes[] = { BD_CRASH_LOST, BD_CRASH_TORN, BD_CRASH_KEPT,
						    BD_CRASH_RANDOM };

	/* the commit of one mkdir takes a few device calls: fail each, and one past them */
	for (int k = 1; k <= 8; k++)
		crash_at(k, modes[k % 4]);
}
END_TEST

START_TEST(backpressure)
{
	enum { NREADS = 40 };
	struct rpc_io rd = { .size = cpu_to_le32(RPC_IO_MAX) };
	static char data[RPC_IO_MAX];
	struct rpc_client *c;
	uint64_t file, fh, taken;
	uint8_t buf[256];
	struct rpc_reply r;
	int fd;

	ck_assert_int_eq(harness_client(&h, 0xe1, &c), 0);
	ck_assert_int_eq(make(c, RPC_CREATE, ROOT, "big", 0644, 0, O_CREAT | O_RDWR), 0);
	file = le64_to_cpu(o.fixed.create.entry.attr.ino);
	fh = le64_to_cpu(o.fixed.create.opened.fh);
	memset(data, 'z', sizeof(data));
	ck_assert_int_eq(io(c, RPC_WRITE, file, fh, 0, data, RPC_IO_MAX, O_RDWR), 0);
	ck_assert_uint_eq(raw_greet(&fd, 0xe2), SRV_GREET_OK);
	rd.ino = cpu_to_le64(file);
	taken = counter(SVC_requests);
	for (uint64_t i = 1; i <= NREADS; i++)
		raw_write(fd, buf, raw_request(buf, sizeof(buf), 0xe2, i, RPC_READ, &rd, NULL, 0));
	/* the greedy connection is stopped; another is served meanwhile */
	ck_assert_int_eq(getattr(c, file), 0);
	ck_assert_uint_eq(attr_size(), RPC_IO_MAX);
	ck_assert_uint_le(counter(SVC_requests) - taken - 1,
			  SVC_CONN_BYTES_MAX / rpc_req_reply_budget(&(struct rpc_req){
				  .op = RPC_READ, .fixed = &rd }) + 1);
	/* and it gets every reply once it reads */
	for (int i = 1; i <= NREADS; i++) {
		ck_assert_int_eq(raw_reply(fd, WAIT_MS, &r), 0);
		ck_assert_uint_eq(r.req_id, (uint64_t)i);
		ck_assert_uint_eq(r.tail_len, RPC_IO_MAX);
	}
	raw_close(fd);
	rpc_client_destroy(c);
}
END_TEST

/* A connection that must be closed by the service: it reads EOF within the wait. */
static void assert_closed(int fd)
{
	struct rpc_reply r;

	ck_assert_int_eq(raw_reply(fd, WAIT_MS, &r), -ECONNRESET);
	raw_close(fd);
}

START_TEST(hostile)
{
	struct rpc_ino at = { .ino = cpu_to_le64(ROOT) };
	struct {
		struct rpc_req_hdr hdr;
		struct rpc_ino ino;
	} unknown;
	struct le32 groups[RPC_GROUPS_MAX];
	struct rpc_client *c;
	uint8_t buf[1024];
	uint64_t bad;
	size_t n;
	int fd;

	ck_assert_int_eq(harness_client(&h, 0xf1, &c), 0);
	bad = counter(SVC_bad_frames) + counter(SVC_bad_requests);
	/* garbage after a greeting */
	ck_assert_uint_eq(raw_greet(&fd, 0xf2), SRV_GREET_OK);
	memset(buf, 0xa5, 64);
	raw_write(fd, buf, 64);
	assert_closed(fd);
	/* a well framed, authenticated request of an unknown op */
	ck_assert_uint_eq(raw_greet(&fd, 0xf3), SRV_GREET_OK);
	rpc_req_hdr_encode(&(struct rpc_req){ .req_id = 1, .client_rid = 0xf3, .op = RPC_OP_END },
			   &unknown.hdr, groups);
	unknown.ino = at;
	n = (size_t)srv_frame_encode(&raw_tx, SRV_MSG_REQUEST, &unknown, sizeof(unknown), buf,
				     sizeof(buf));
	raw_write(fd, buf, n);
	assert_closed(fd);
	/* a request in another client's name */
	ck_assert_uint_eq(raw_greet(&fd, 0xf4), SRV_GREET_OK);
	raw_write(fd, buf, raw_request(buf, sizeof(buf), 0xf5, 1, RPC_GETATTR, &at, NULL, 0));
	assert_closed(fd);
	/* a first frame that claims more than a greeting */
	raw_session_end();
	ck_assert_int_eq(harness_raw(&h, &fd), 0);
	raw_write(fd, buf, raw_request(buf, sizeof(buf), 0xf6, 1, RPC_WRITE, &(struct rpc_io){ 0 },
				       NULL, 0));
	assert_closed(fd);
	ck_assert_uint_ge(counter(SVC_bad_frames) + counter(SVC_bad_requests), bad + 4);
	/* nothing else was touched */
	ck_assert_int_eq(getattr(c, ROOT), 0);
	rpc_client_destroy(c);
}
END_TEST

/*
 * Sessions: a request recorded on one connection and replayed - on a new
 * connection greeted as the same mount, or on its own after later frames
 * - is refused (the connection closed, nothing applied), also once its
 * reply row was trimmed, when applying it again would make a change.
 */
START_TEST(replay_refused)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	struct rpc_ino root = { .ino = cpu_to_le64(ROOT) };
	struct rpc_client *c;
	struct rpc_reply r;
	uint8_t rec[512];
	size_t nrec;
	uint64_t unauth;
	int fd;

	ck_assert_int_eq(harness_client(&h, 0x71, &c), 0);
	ck_assert_uint_eq(raw_greet(&fd, 0x72), SRV_GREET_OK);
	nrec = raw_request(rec, sizeof(rec), 0x72, 1, RPC_MKDIR, &mk, "rp", 2);
	raw_write(fd, rec, nrec);
	ck_assert_int_eq(raw_reply(fd, WAIT_MS, &r), 0);
	ck_assert_uint_eq(r.status, 0);
	/* id 2 says id 1 is answered (its reply row goes); then the change is undone */
	ck_assert_uint_eq(raw_call(fd, 0x72, 2, RPC_RMDIR, &root, "rp", 2, &r), 0);
	unauth = counter(SVC_unauthenticated);
	/* on its own connection, again */
	raw_write(fd, rec, nrec);
	assert_closed(fd);
	ck_assert_uint_eq(counter(SVC_unauthenticated), unauth + 1);
	/* on a new connection of the same mount */
	ck_assert_uint_eq(raw_greet(&fd, 0x72), SRV_GREET_OK);
	raw_write(fd, rec, nrec);
	assert_closed(fd);
	ck_assert_uint_eq(counter(SVC_unauthenticated), unauth + 2);
	ck_assert_int_eq(lookup(c, ROOT, "rp"), -ENOENT); /* applied neither time */
	rpc_client_destroy(c);
}
END_TEST

START_TEST(lease)
{
	int fd;

	atomic_store(&h.lease, false);
	ck_assert_uint_eq(raw_greet(&fd, 0x11), SRV_GREET_NOT_SERVING);
	assert_closed(fd);
	atomic_store(&h.lease, true);
	ck_assert_uint_eq(raw_greet(&fd, 0x12), SRV_GREET_OK);
	raw_close(fd);
}
END_TEST

/*
 * Coherence: what a mount was told it may cache (a name, positive or not;
 * an inode's attributes) is dropped by it before another mount's change
 * of it returns; the writer itself is not told.
 */
START_TEST(coherence_inval)
{
	struct harness_invals ia, ib;
	struct rpc_client *a, *b;
	uint64_t dir;

	harness_invals_init(&ia);
	harness_invals_init(&ib);
	ck_assert_int_eq(harness_client_iv(&h, 0x61, &ia, &a), 0);
	ck_assert_int_eq(harness_client_iv(&h, 0x62, &ib, &b), 0);
	/* b may cache that "x" is not there, and the root's attributes */
	ck_assert_int_eq(lookup(b, ROOT, "x"), -ENOENT);
	ck_assert_int_eq(getattr(b, ROOT), 0);
	ck_assert_uint_eq(rpc_op_valid(RPC_GETATTR), 1);
	ck_assert_int_eq(make(a, RPC_MKDIR, ROOT, "x", 0755, 0, 0), 0);
	dir = entry_ino();
	/* as a's mkdir returned, b had dropped both (the last item: the root, or the name) */
	pthread_mutex_lock(&ib.lock);
	ck_assert_uint_ge(ib.count, 2);
	pthread_mutex_unlock(&ib.lock);
	ck_assert_uint_eq(ia.count, 0);
	/* b looks again: it may cache the new entry; a's rmdir makes it drop it */
	ck_assert_int_eq(lookup(b, ROOT, "x"), 0);
	ck_assert_uint_eq(entry_ino(), dir);
	ck_assert_int_eq(name_op(a, RPC_RMDIR, ROOT, "x"), 0);
	pthread_mutex_lock(&ib.lock);
	ck_assert_uint_ge(ib.count, 3);
	ck_assert_uint_eq(ib.last.kind == RPC_INVAL_ENTRY || ib.last.kind == RPC_INVAL_INODE, 1);
	pthread_mutex_unlock(&ib.lock);
	ck_assert_uint_eq(ia.count, 0);
	ck_assert_uint_ge(counter(SVC_inval_acks), 2);
	ck_assert_uint_eq(counter(SVC_inval_waits_expired), 0);
	rpc_client_destroy(a);
	rpc_client_destroy(b);
}
END_TEST

/*
 * A mount that does not answer (stopped) costs a writer at most what it
 * was granted: the write returns once the grant ran out, not before.
 */
START_TEST(coherence_stopped_mount)
{
	struct harness_invals ia, ib;
	struct rpc_client *a, *b;
	mono_ns t0, took;
	char why[256];

	harness_halt(&h, false);
	h.cache_ms = 300;
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	harness_invals_init(&ia);
	harness_invals_init(&ib);
	ck_assert_int_eq(harness_client_iv(&h, 0x71, &ia, &a), 0);
	ck_assert_int_eq(harness_client_iv(&h, 0x72, &ib, &b), 0);
	ck_assert_int_eq(getattr(b, ROOT), 0);
	pthread_mutex_lock(&ib.lock);
	ib.block = true;
	pthread_mutex_unlock(&ib.lock);
	t0 = mono_now();
	ck_assert_int_eq(make(a, RPC_MKDIR, ROOT, "y", 0755, 0, 0), 0);
	took = mono_now() - t0;
	ck_assert_int_le(took, 3 * 300 * NSEC_PER_MSEC); /* bounded by the grant, not a hang */
	ck_assert_int_ge(took, 200 * NSEC_PER_MSEC);     /* and not before it ran out */
	ck_assert_uint_ge(counter(SVC_inval_waits_expired), 1);
	pthread_mutex_lock(&ib.lock);
	ib.block = false;
	pthread_mutex_unlock(&ib.lock);
	rpc_client_destroy(a);
	rpc_client_destroy(b);
}
END_TEST

/* Open ino on c: the handle, and whether the server said keep_cache. */
static uint64_t open_fh(struct rpc_client *c, uint64_t ino, uint32_t flags, bool *keep)
{
	uint64_t fh = rpc_client_new_fh(c);
	struct rpc_open f = { .ino = cpu_to_le64(ino), .flags = cpu_to_le32(flags),
			      .fh = cpu_to_le64(fh) };

	ck_assert_int_eq(call(c, RPC_OPEN, &f, NULL, NULL), 0);
	ck_assert_uint_eq(le64_to_cpu(o.fixed.open.fh), fh);
	*keep = (le32_to_cpu(o.fixed.open.flags) & RPC_OPENED_KEEP_CACHE) != 0;
	return fh;
}

/* Open ino on c (flags) and close it again: whether the server said keep_cache. */
static bool open_keeps(struct rpc_client *c, uint64_t ino, uint32_t flags)
{
	bool keep;
	struct rpc_release r = { .ino = cpu_to_le64(ino),
				 .fh = cpu_to_le64(open_fh(c, ino, flags, &keep)) };

	ck_assert_int_eq(call(c, RPC_RELEASE, &r, NULL, NULL), 0);
	return keep;
}

/*
 * A mount's kernel keeps a file's cached pages across an open only while
 * nobody changed the file since that mount's last open dropped them: any
 * other mount's change ends it, and the mount's own change too unless its
 * kernel made it through its pages (a buffered write, a setattr).
 */
START_TEST(keep_cache_while_unchanged)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0644),
			       .flags = cpu_to_le32(O_CREAT | O_RDWR) };
	struct rpc_setattr sa = { .valid = cpu_to_le32(RPC_SET_SIZE), .size = cpu_to_le64(2) };
	struct rpc_client *a, *b;
	uint64_t ino, fha, fhb;
	bool keep;

	ck_assert_int_eq(harness_client(&h, 0x81, &a), 0);
	ck_assert_int_eq(harness_client(&h, 0x82, &b), 0);
	fha = rpc_client_new_fh(a);
	mk.fh = cpu_to_le64(fha);
	ck_assert_int_eq(call(a, RPC_CREATE, &mk, "k", NULL), 0);
	ino = le64_to_cpu(o.fixed.create.entry.attr.ino);
	ck_assert_uint_eq(le32_to_cpu(o.fixed.create.opened.flags), 0);
	ck_assert_int_eq(io(a, RPC_WRITE, ino, fha, 0, "one", 3, O_RDWR), 0);
	ck_assert(!open_keeps(a, ino, O_RDONLY)); /* the first open drops what a had */
	ck_assert(open_keeps(a, ino, O_RDONLY));
	ck_assert(open_keeps(a, ino, O_RDWR));
	fhb = open_fh(b, ino, O_RDWR, &keep);
	ck_assert(!keep);
	ck_assert(open_keeps(b, ino, O_RDONLY));
	/* b's buffered write: a's pages are stale; b's own kernel wrote its pages */
	ck_assert_int_eq(io(b, RPC_WRITE, ino, fhb, 0, "two", 3, O_RDWR), 0);
	ck_assert(open_keeps(b, ino, O_RDONLY));
	ck_assert(!open_keeps(a, ino, O_RDONLY));
	ck_assert(open_keeps(a, ino, O_RDONLY));
	/* a direct (O_APPEND) write went past a's pages: nobody keeps them */
	ck_assert_int_eq(io(a, RPC_WRITE, ino, fha, 0, "3", 1, O_RDWR | O_APPEND), 0);
	ck_assert(!open_keeps(a, ino, O_RDONLY));
	ck_assert(!open_keeps(b, ino, O_RDONLY));
	/* a truncate through a's kernel: a keeps, b does not */
	sa.ino = cpu_to_le64(ino);
	ck_assert(open_keeps(a, ino, O_RDONLY));
	ck_assert_int_eq(call(a, RPC_SETATTR, &sa, NULL, NULL), 0);
	ck_assert(open_keeps(a, ino, O_RDONLY));
	ck_assert(!open_keeps(b, ino, O_RDONLY));
	/* an O_TRUNC open is a change of its own; neither it nor a direct open vouches */
	ck_assert(!open_keeps(a, ino, O_RDWR | O_TRUNC));
	ck_assert(!open_keeps(a, ino, O_RDONLY));
	ck_assert(open_keeps(a, ino, O_RDONLY));
	ck_assert(!open_keeps(b, ino, O_RDONLY | O_DIRECT));
	ck_assert(!open_keeps(b, ino, O_RDONLY));
	ck_assert(open_keeps(b, ino, O_RDONLY));
	rpc_client_destroy(a);
	rpc_client_destroy(b);
}
END_TEST

/* A mkdir in a thread of its own (a hard call waits as long as it takes). */
struct bg_mkdir {
	struct rpc_client *c;
	const char *name;
	int ret;
	pthread_t t;
};

static void *bg_mkdir_main(void *arg)
{
	struct bg_mkdir *b = arg;
	struct rpc_make m = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	union rpc_reply_fixed f;
	struct rpc_call k = { .op = RPC_MKDIR, .fixed = &m, .tail1 = b->name,
			      .tail1_len = (uint32_t)strlen(b->name), .reply_fixed = &f };

	b->ret = rpc_client_call(b->c, &k);
	return NULL;
}

static struct rpc_client_stats client_stats(struct rpc_client *c)
{
	struct rpc_client_stats st;

	rpc_client_get_stats(c, &st);
	return st;
}

/*
 * The reply of a committed change is lost with its connection: the call
 * is sent again with its id, answered from the replies table, and the
 * change is there once.
 */
START_TEST(resend_reply_lost)
{
	struct bg_mkdir b = { .name = "r" };
	struct rpc_client *c;

	ck_assert_int_eq(harness_client(&h, 0x81, &c), 0);
	ck_assert_int_eq(getattr(c, ROOT), 0);
	b.c = c;
	bd_mem_hold(h.dev, true);
	ck_assert_int_eq(pthread_create(&b.t, NULL, bg_mkdir_main, &b), 0);
	wait_held(1);           /* its commit is on its way to the device */
	harness_cut(&h);        /* and its connection goes */
	bd_mem_hold(h.dev, false);
	pthread_join(b.t, NULL);
	ck_assert_int_eq(b.ret, 0); /* not EEXIST: the kept answer */
	ck_assert_uint_ge(client_stats(c).resent, 1);
	ck_assert_uint_ge(client_stats(c).failovers, 1);
	ck_assert_int_eq(lookup(c, ROOT, "r"), 0);
	ck_assert_int_eq(make(c, RPC_MKDIR, ROOT, "r", 0755, 0, 0), -EEXIST); /* a new request is new */
	rpc_client_destroy(c);
}
END_TEST

/* A file CREATEd by c through a new handle (*fh), given content, then unlinked: an orphan c holds. */
static uint64_t orphan_held(struct rpc_client *c, const char *name, const char *content,
			    uint64_t *fh)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0644),
			       .flags = cpu_to_le32(O_CREAT | O_RDWR) };
	uint64_t ino;

	*fh = rpc_client_new_fh(c);
	mk.fh = cpu_to_le64(*fh);
	ck_assert_int_eq(call_as(c, 0, RPC_CREATE, &mk, name, (uint32_t)strlen(name), NULL, 0, 0), 0);
	ino = le64_to_cpu(o.fixed.create.entry.attr.ino);
	ck_assert_int_eq(io(c, RPC_WRITE, ino, *fh, 0, content, (uint32_t)strlen(content), O_RDWR),
			 0);
	ck_assert_int_eq(name_op(c, RPC_UNLINK, ROOT, name), 0);
	return ino;
}

/*
 * A new server (the same store): a mount's open files are its again,
 * an unlinked one among them survives the new server's purge of orphans,
 * and goes with its last close.
 */
START_TEST(open_files_survive)
{
	struct rpc_client *c;
	struct rpc_release rl;
	uint64_t ino, fh, purges;
	char why[256];

	ck_assert_int_eq(harness_client(&h, 0x91, &c), 0);
	purges = counter(SVC_purges);
	ino = orphan_held(c, "held", "kept", &fh);
	/* another server takes over the store */
	harness_halt(&h, false);
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	ck_assert_int_eq(getattr(c, ROOT), 0); /* reconnects, names its open files */
	wait_counter(SVC_purges, purges + 1);  /* the new server's purge has run */
	ck_assert_int_eq(io(c, RPC_READ, ino, fh, 0, NULL, 16, 0), 0);
	ck_assert_uint_eq(o.tail_len, 4);
	ck_assert(memcmp(o.tail, "kept", 4) == 0);
	rl = (struct rpc_release){ .ino = cpu_to_le64(ino), .fh = cpu_to_le64(fh) };
	ck_assert_int_eq(call(c, RPC_RELEASE, &rl, NULL, NULL), 0);
	ck_assert_int_eq(make(c, RPC_MKDIR, ROOT, "after", 0755, 0, 0), 0); /* a commit reaps it */
	ck_assert_int_eq(getattr(c, ino), -ENOENT);
	rpc_client_destroy(c);
}
END_TEST


/*
 * A file open on a mount (and not unlinked) when a new server takes over:
 * another mount unlinks it in the new server's grace, before the holder
 * named its open files again.  The inode stays, an orphan the holder may
 * take back; when nobody names it by the end of the grace, the purge
 * deletes it (found by fusefs-wsim: the unlink deleted it at once).
 */
START_TEST(open_file_unlinked_in_grace)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0644),
			       .flags = cpu_to_le32(O_CREAT | O_RDWR), .fh = cpu_to_le64(77) };
	struct rpc_client *b;
	struct rpc_reply r;
	char why[256];
	uint64_t ino, purges;
	int fd;

	ck_assert_uint_eq(raw_greet(&fd, 0xa1), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd, 0xa1, 1, RPC_CREATE, &mk, "graced", 6, &r), 0);
	ino = le64_to_cpu(((const struct rpc_created *)r.fixed)->entry.attr.ino);
	/* a new server, whose grace outlasts what follows; the holder stays away */
	harness_halt(&h, false);
	raw_close(fd);
	h.grace_ms = 3000;
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	purges = counter(SVC_purges);
	ck_assert_int_eq(harness_client(&h, 0xa2, &b), 0);
	ck_assert_int_eq(name_op(b, RPC_UNLINK, ROOT, "graced"), 0);
	ck_assert_int_eq(lookup(b, ROOT, "graced"), -ENOENT);
	ck_assert_int_eq(getattr(b, ino), 0); /* kept: its holder may still name it */
	ck_assert_uint_eq(counter(SVC_purges), purges);
	wait_counter(SVC_purges, purges + 1);
	ck_assert_int_eq(make(b, RPC_MKDIR, ROOT, "after-grace", 0755, 0, 0), 0);
	ck_assert_int_eq(getattr(b, ino), -ENOENT); /* nobody named it: purged */
	rpc_client_destroy(b);
}
END_TEST

/*
 * The device fails a read the store needs for a request: the request is
 * not answered EIO (the store's failure is not the file's), the service
 * stops, and the call completes on the next server (found by the
 * integration test's burst of EIO: a program saw the error).
 */
static uint64_t write_mib(struct rpc_client *c, const char *name, uint64_t fh, uint32_t n);

START_TEST(failed_read_unanswered)
{
	struct bd_mem_faults f = { .fail_ops = BD_FAULT_READ, .fail_lo = 0, .fail_hi = UINT64_MAX,
				   .err = -EIO };
	struct rpc_client *c;
	struct rpc_reply r;
	struct rpc_io rd = { .offset = cpu_to_le64(RPC_IO_MAX * 6), .size = cpu_to_le32(RPC_IO_MAX) };
	uint8_t buf[1024];
	char why[256];
	uint64_t fh;
	int fd, ret;

	/* a file of 8 MiB: a fresh server has not read its end yet */
	ck_assert_int_eq(harness_client(&h, 0xa3, &c), 0);
	fh = rpc_client_new_fh(c);
	rd.ino = cpu_to_le64(write_mib(c, "big", fh, 8));
	rpc_client_destroy(c);
	harness_halt(&h, false);
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	ck_assert_uint_eq(raw_greet(&fd, 0xa4), SRV_GREET_OK);
	bd_mem_set_faults(h.dev, &f);
	raw_write(fd, buf, raw_request(buf, sizeof(buf), 0xa4, 1, RPC_READ, &rd, NULL, 0));
	ck_assert_msg(wait_count(&h.failures, 1), "the device failed a read: the service did not stop");
	ck_assert_int_eq(atomic_load(&h.failed_res), -EIO);
	ret = raw_reply(fd, 100, &r);
	ck_assert_msg(ret != 0, "the read the device failed was answered %u", r.status);
	harness_halt(&h, true);
	raw_close(fd);
	f = (struct bd_mem_faults){ 0 };
	bd_mem_set_faults(h.dev, &f);
	atomic_store(&h.failures, 0);
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	ck_assert_uint_eq(raw_greet(&fd, 0xa4), SRV_GREET_OK);
	ck_assert_uint_eq(raw_call(fd, 0xa4, 1, RPC_READ, &rd, NULL, 0, &r), 0);
	ck_assert_uint_eq(r.tail_len, RPC_IO_MAX);
	ck_assert_uint_eq(r.tail[0], 'x');
	raw_close(fd);
}
END_TEST

/*
 * A connection reset with no failover, under a file unlinked while open:
 * the same server takes the mount's handles back from its HOLDS, and the
 * file stays readable and writable through them.
 */
START_TEST(open_files_survive_a_reset)
{
	struct rpc_client *c;
	struct rpc_release rl;
	uint64_t ino, fh;

	ck_assert_int_eq(harness_client(&h, 0x95, &c), 0);
	ino = orphan_held(c, "reset", "before", &fh);
	for (int cut = 0; cut < 3; cut++) {
		uint64_t failovers = client_stats(c).failovers;

		harness_cut(&h);
		ck_assert_int_eq(io(c, RPC_WRITE, ino, fh, 6, "+", 1, O_RDWR), 0);
		ck_assert_uint_gt(client_stats(c).failovers, failovers); /* it did reconnect */
	}
	ck_assert_int_eq(io(c, RPC_READ, ino, fh, 0, NULL, 16, 0), 0);
	ck_assert_uint_eq(o.tail_len, 7);
	ck_assert(memcmp(o.tail, "before+", 7) == 0);
	rl = (struct rpc_release){ .ino = cpu_to_le64(ino), .fh = cpu_to_le64(fh) };
	ck_assert_int_eq(call(c, RPC_RELEASE, &rl, NULL, NULL), 0);
	/* gone with its last close, once the start's grace is over (until then a
	 * mount that has not named its files again may hold it too) */
	wait_counter(SVC_purges, 1);
	ck_assert_int_eq(make(c, RPC_MKDIR, ROOT, "after-reset", 0755, 0, 0), 0);
	ck_assert_int_eq(getattr(c, ino), -ENOENT);
	rpc_client_destroy(c);
}
END_TEST

/* A file of n MiB named name, written through fh (kept open), its inode. */
static uint64_t write_mib(struct rpc_client *c, const char *name, uint64_t fh, uint32_t n)
{
	static char chunk[RPC_IO_MAX];
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0644),
			       .flags = cpu_to_le32(O_CREAT | O_RDWR), .fh = cpu_to_le64(fh) };
	uint64_t ino;

	memset(chunk, 'x', sizeof(chunk));
	ck_assert_int_eq(call_as(c, 0, RPC_CREATE, &mk, name, (uint32_t)strlen(name), NULL, 0, 0), 0);
	ino = le64_to_cpu(o.fixed.create.entry.attr.ino);
	for (uint64_t i = 0; i < n; i++)
		ck_assert_int_eq(io(c, RPC_WRITE, ino, fh, i * RPC_IO_MAX, chunk, RPC_IO_MAX, O_RDWR), 0);
	return ino;
}

static uint64_t used_bytes(struct rpc_client *c)
{
	ck_assert_int_eq(call(c, RPC_STATFS, &(struct rpc_ino){ cpu_to_le64(ROOT) }, NULL, NULL), 0);
	return (le64_to_cpu(o.fixed.statfs.blocks) - le64_to_cpu(o.fixed.statfs.bfree)) *
	       le32_to_cpu(o.fixed.statfs.bsize);
}

/*
 * Deleting a file bigger than what is released at once: the unlink is
 * one small commit, the data goes in bounded steps after it, and a
 * server that fails in the middle (its device failing, then crashing with
 * the unsynced writes lost) leaves the rest to the next, which finishes
 * it: every chunk released once, and the space back.
 */
START_TEST(release_resumes)
{
	struct bd_mem_faults f = { 0 };
	struct rpc_client *c;
	uint64_t before, full;
	char why[256];

	ck_assert_int_eq(harness_client(&h, 0xf1, &c), 0);
	before = used_bytes(c);
	write_mib(c, "big", rpc_client_new_fh(c), 12);
	full = used_bytes(c);
	ck_assert_uint_ge(full, before + (12u << 20));
	/* every device call slow from here: the next step cannot end before the fault below */
	f.delay_ms = 20;
	bd_mem_set_faults(h.dev, &f);
	ck_assert_int_eq(name_op(c, RPC_UNLINK, ROOT, "big"), 0);
	ck_assert_int_eq(lookup(c, ROOT, "big"), -ENOENT);
	rpc_client_destroy(c);
	/* one step done (256 of 768 chunks), then the device fails under the next */
	wait_counter(SVC_released_chunks, 256);
	f.fail_nth = bd_mem_calls(h.dev) + 1;
	f.fail_after_nth = true;
	bd_mem_set_faults(h.dev, &f);
	ck_assert(wait_count(&h.failures, 1));
	ck_assert_uint_lt(counter(SVC_released_chunks), 768);
	harness_halt(&h, true);
	bd_mem_crash(h.dev, BD_CRASH_LOST);
	f = (struct bd_mem_faults){ 0 };
	bd_mem_set_faults(h.dev, &f);
	atomic_store(&h.failures, 0);
	ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
	/* the next server finishes it: 768 in all, not one twice */
	wait_counter(SVC_released_chunks, 768);
	ck_assert_int_eq(harness_client(&h, 0xf2, &c), 0);
	for (int i = 0; i < WAIT_MS / 5 && used_bytes(c) > before + (1u << 20); i++)
		sleep_ms(5);
	ck_assert_uint_le(used_bytes(c), before + (1u << 20));
	ck_assert_uint_eq(counter(SVC_released_chunks), 768);
	rpc_client_destroy(c);
}
END_TEST

/*
 * A device that runs out of room (a thin volume, a file on a full disk:
 * its writes fail with ENOSPC) refuses transactions, and that is the
 * requests' answer, not the service's end: a batch of two mkdirs is
 * refused, each alone, and answered ENOSPC; reads are served meanwhile;
 * once the device has room the next writes commit - on three leaders in
 * turn.  Before that, a file bigger than what is released at once,
 * unlinked while open, goes at the goodbye in a small commit, and its data
 * in bounded steps after it.
 */
START_TEST(refused_alone)
{
	struct rpc_make mk = { .parent = cpu_to_le64(ROOT), .mode = cpu_to_le32(0755) };
	struct bd_mem_faults full = { .fail_ops = BD_FAULT_WRITE, .fail_hi = UINT64_MAX,
				      .err = -ENOSPC };
	struct rpc_client *c;
	struct rpc_reply r;
	uint8_t buf[1024];
	uint64_t seen;
	char why[256];
	int fd;

	ck_assert_int_eq(harness_client(&h, 0xa1, &c), 0);
	write_mib(c, "orphan", rpc_client_new_fh(c), 5);
	ck_assert_int_eq(name_op(c, RPC_UNLINK, ROOT, "orphan"), 0);
	rpc_client_destroy(c);
	/* its 320 chunks, a bounded step at a time */
	wait_counter(SVC_released_chunks, 5u * RPC_IO_MAX / (16u << 10));
	seen = counter(SVC_refused);
	ck_assert_uint_eq(seen, 0);
	for (int leader = 0; leader < 3; leader++) {
		uint64_t rid = 0xb1 + (uint64_t)leader;
		char a[8], b[8];
		int got = 0;

		if (leader > 0) {
			harness_halt(&h, false);
			ck_assert_msg(harness_serve(&h, why, sizeof(why)) == 0, "%s", why);
		}
		snprintf(a, sizeof(a), "a%d", leader);
		snprintf(b, sizeof(b), "b%d", leader);
		bd_mem_set_faults(h.dev, &full);
		/* one write carries both: one batch */
		ck_assert_uint_eq(raw_greet(&fd, rid), SRV_GREET_OK);
		size_t n = raw_request(buf, sizeof(buf), rid, 1, RPC_MKDIR, &mk, a, 2);
		n += raw_request(buf + n, sizeof(buf) - n, rid, 2, RPC_MKDIR, &mk, b, 2);
		raw_write(fd, buf, n);
		for (int i = 0; i < 2; i++) {
			ck_assert_int_eq(raw_reply(fd, WAIT_MS, &r), 0);
			ck_assert_uint_eq(r.status, ENOSPC);
			got |= 1 << r.req_id;
		}
		ck_assert_int_eq(got, 6);
		ck_assert_uint_ge(counter(SVC_refused), seen + 2);
		seen = counter(SVC_refused);
		ck_assert_int_eq(atomic_load(&h.failures), 0);
		/* reads go on; with room again, so do writes */
		ck_assert_uint_eq(raw_call(fd, rid, 3, RPC_GETATTR,
					       &(struct rpc_ino){ cpu_to_le64(ROOT) }, NULL, 0, &r), 0);
		bd_mem_set_faults(h.dev, &(struct bd_mem_faults){ 0 });
		ck_assert_uint_eq(raw_call(fd, rid, 4, RPC_MKDIR, &mk, a, 2, &r), 0);
		raw_close(fd);
		ck_assert_int_eq(atomic_load(&h.failures), 0);
	}
	/* nothing of the refused requests happened; everything else did */
	ck_assert_int_eq(harness_client(&h, 0xa2, &c), 0);
	ck_assert_int_eq(lookup(c, ROOT, "a2"), 0);
	ck_assert_int_eq(lookup(c, ROOT, "b2"), -ENOENT);
	rpc_client_destroy(c);
}
END_TEST

/* The stage table: every stage of a request that ran is counted, at both ends. */
START_TEST(stage_table)
{
	static char text[65536];
	struct rpc_client *c;
	struct hist hh;

	memset(&hh, 0, sizeof(hh));
	ck_assert_uint_eq(hist_quantile(&hh, 0.5), 0);
	for (int i = 1; i <= 100; i++)
		hist_add(&hh, i * 1000); /* 1..100 us */
	ck_assert_uint_eq(hist_count(&hh), 100);
	ck_assert_uint_ge(hist_quantile(&hh, 0.5), 42000);
	ck_assert_uint_le(hist_quantile(&hh, 0.5), 60000);
	ck_assert_uint_ge(hist_quantile(&hh, 0.99), 85000);
	ck_assert_uint_le(hist_quantile(&hh, 0.99), 120000);

	ck_assert_int_eq(harness_client(&h, 0x51, &c), 0);
	ck_assert_int_eq(make(c, RPC_MKDIR, ROOT, "s", 0755, 0, 0), 0);
	ck_assert_int_eq(getattr(c, ROOT), 0);
	ck_assert_int_gt(svc_stats_text(h.stats, text, sizeof(text)), 0);
	for (const char *const *l = (const char *const[]){ "lat server_queue mkdir n 1",
		"lat server_apply getattr n 1", "lat server_commit mkdir n 1",
		"lat server_total mkdir n 1", "lat server_commit_gate n ", "server_commits ", NULL };
	     *l; l++)
		ck_assert_msg(strstr(text, *l) != NULL, "no \"%s\" in:\n%s", *l, text);
	ck_assert_ptr_null(strstr(text, "server_commit getattr"));
	ck_assert_int_gt(rpc_client_lat_text(c, text, sizeof(text)), 0);
	for (const char *const *l = (const char *const[]){ "lat client_send mkdir n 1",
		"lat client_wait getattr n 1", "lat client_wake mkdir n 1", "lat client_total getattr n 1",
		NULL }; *l; l++)
		ck_assert_msg(strstr(text, *l) != NULL, "no \"%s\" in:\n%s", *l, text);
	rpc_client_destroy(c);
}
END_TEST

Suite *suite_service(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("request path");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_op);
	tcase_add_test(tc, reads_first);
	tcase_add_test(tc, replayed);
	tcase_add_test(tc, silent_mount_gone);
	tcase_add_test(tc, fenced);
	tcase_add_test(tc, failed_commit_unanswered);
	tcase_add_test(tc, crash_mid_batch);
	tcase_add_test(tc, backpressure);
	tcase_add_test(tc, hostile);
	tcase_add_test(tc, lease);
	tcase_add_test(tc, replay_refused);
	tcase_add_test(tc, stage_table);
	tcase_add_test(tc, coherence_inval);
	tcase_add_test(tc, coherence_stopped_mount);
	tcase_add_test(tc, keep_cache_while_unchanged);
	tcase_add_test(tc, resend_reply_lost);
	tcase_add_test(tc, open_files_survive);
	tcase_add_test(tc, open_files_survive_a_reset);
	tcase_add_test(tc, open_file_unlinked_in_grace);
	tcase_add_test(tc, failed_read_unanswered);
	tcase_add_test(tc, refused_alone);
	tcase_add_test(tc, release_resumes);
	suite_add_tcase(s, tc);
	return s;
}
