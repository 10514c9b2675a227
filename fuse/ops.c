/*
 * ops.c - the FUSE low-level operations.  Each forwards to the metadata
 * server over the client connection (client.h) and answers the kernel
 * with exactly one reply; errors go to libfuse as positive errnos.
 *
 * Caches: attributes, entries and negative entries are cached for as long
 * as the server granted (each reply's valid_ms, counted from the call's
 * start), and dropped earlier when the server says another mount changed
 * them (mount_inval, from the client's inval thread; docs/coherence.md).
 * File data goes through the page cache without writeback (every write
 * reaches the server before write(2) returns); with FUSE's automatic
 * invalidation a changed mtime or size drops cached pages, and every open
 * drops them too (keep_cache off): data is coherent at the latest on the
 * next open, as NFS's close-to-open promises.
 *
 * Lookup counts are balanced as passthrough_ll does: every entry reply
 * (lookup, create, mknod, mkdir, symlink, link, readdirplus) adds one in
 * the mount's count table (u64map), every forget subtracts.  The root's status xattrs are answered
 * here (status_xattr.c); every other xattr, the root's included, is the
 * server's.
 *
 * Adding an op: a row in server/proto.h's op table, its handler do_NAME
 * in server/dispatch.c, and here the FUSE handler that fills the op's
 * request struct and calls it.  What the wire would refuse (a name too
 * long...) the client refuses before sending, with the errno POSIX gives.
 *
 * Credentials: the caller's uid, gid and pid go with every request.  The
 * supplementary groups are read (from /proc, which costs) only when the
 * server refused a request with EACCES or EPERM; the request is then sent
 * once more with them.  A refused request changed nothing, so this is safe.
 */
#include "fuse/mount.h"

#include "fuse/client.h"
#include "common/u64map.h"
#include "fuse/status.h"
#include "server/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

static_assert(RPC_RENAME_NOREPLACE == RENAME_NOREPLACE && RPC_RENAME_EXCHANGE == RENAME_EXCHANGE,
	      "rename's flags go to the server as the kernel gives them");

#define ROOT_INO FUSE_ROOT_ID
#define TIMEOUT 0.0 /* what is not the server's to grant (the root's fallback) is not cached */
/* how long the root's attributes and xattr names wait for a server before the fallback */
#define ROOT_WAIT_MS 1000

static struct mount_ctx *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- calls ---- */

/*
 * A call whose reply the handler hands to the kernel: held (client.h)
 * until the handler's scope ends, so no INVAL behind the reply can be
 * applied before the kernel has it.  Declare one with CALL(k).
 */
struct call {
	struct rpc_call c;
	uint32_t groups[RPC_GROUPS_MAX];
	struct rpc_client *client;   /* set by call_init: what the scope's end releases */
	mono_ns t0;                  /* when it began: the kernel's cache time counts from here */
};

static void call_end(struct call *k)
{
	if (k->client != NULL)
		rpc_client_call_end(k->client, &k->c);
}

#define CALL(k) struct call k __attribute__((cleanup(call_end))) = { .client = NULL }

static void call_init(struct call *k, fuse_req_t req, uint32_t op, const void *fixed)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);

	memset(k, 0, sizeof(*k));
	k->client = ctx_of(req)->client;
	k->t0 = mono_now();
	k->c.hold = true;
	k->c.op = op;
	k->c.uid = fc->uid;
	k->c.gid = fc->gid;
	k->c.pid = (uint32_t)fc->pid;
	k->c.groups = k->groups;
	k->c.fixed = fixed;
}

static void call_tails(struct call *k, const void *t1, size_t l1, const void *t2, size_t l2)
{
	k->c.tail1 = t1;
	k->c.tail1_len = (uint32_t)l1;
	k->c.tail2 = t2;
	k->c.tail2_len = (uint32_t)l2;
}

/*
 * The caller's supplementary groups into the call (read from /proc, which
 * costs: only when they may matter).  Whether there are any.
 */
static bool call_groups(fuse_req_t req, struct call *k)
{
	gid_t g[RPC_GROUPS_MAX];
	int n;

	if (k->c.uid == 0 || k->c.ngroups > 0)
		return false;
	n = fuse_req_getgroups(req, RPC_GROUPS_MAX, g);
	if (n <= 0)
		return false;
	k->c.ngroups = (uint32_t)MIN(n, RPC_GROUPS_MAX);
	for (uint32_t i = 0; i < k->c.ngroups; i++)
		k->groups[i] = g[i];
	return true;
}

/*
 * A mode with setgid is kept only for a member of the file's group, which
 * may be a supplementary group: those go with such a request at once (a
 * refusal would not tell, the bit would just be dropped).
 */
static void call_groups_for_mode(fuse_req_t req, struct call *k, mode_t mode)
{
	if (mode & S_ISGID)
		call_groups(req, k);
}

/* The call's result: 0 or a negative errno; retried once with the groups. */
static int call_run(fuse_req_t req, struct call *k)
{
	struct mount_ctx *m = ctx_of(req);
	int ret = rpc_client_call(m->client, &k->c);

	if ((ret == -EACCES || ret == -EPERM) && call_groups(req, k)) {
		rpc_client_call_end(m->client, &k->c); /* (the refused reply: nothing to hand on) */
		ret = rpc_client_call(m->client, &k->c);
	}
	/* transport trouble reads as an I/O error to programs */
	if (ret == -EHOSTDOWN || ret == -ETIMEDOUT || ret == -EPROTO || ret == -ESHUTDOWN)
		ret = -EIO;
	return ret;
}

/*
 * How long the kernel may cache what the call's reply said: what the
 * server granted, counted from when the call began (the server's grant
 * began later, so the kernel's ends first).
 */
static double call_valid_s(const struct call *k)
{
	double left = (double)k->c.valid_ms / 1000.0 - (double)(mono_now() - k->t0) / 1e9;

	return left > 0 ? left : 0.0;
}

static void attr_to_stat(const struct rpc_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = le64_to_cpu(a->ino);
	st->st_size = (off_t)le64_to_cpu(a->size);
	st->st_blocks = (blkcnt_t)le64_to_cpu(a->blocks);
	st->st_rdev = (dev_t)le64_to_cpu(a->rdev);
	st->st_mode = le32_to_cpu(a->mode);
	st->st_uid = le32_to_cpu(a->uid);
	st->st_gid = le32_to_cpu(a->gid);
	st->st_nlink = le32_to_cpu(a->nlink);
	st->st_blksize = FUSEFS_BLOCK_SIZE;
	st->st_atim.tv_sec = (time_t)le64_to_cpu(a->atime_sec);
	st->st_atim.tv_nsec = le32_to_cpu(a->atime_nsec);
	st->st_mtim.tv_sec = (time_t)le64_to_cpu(a->mtime_sec);
	st->st_mtim.tv_nsec = le32_to_cpu(a->mtime_nsec);
	st->st_ctim.tv_sec = (time_t)le64_to_cpu(a->ctime_sec);
	st->st_ctim.tv_nsec = le32_to_cpu(a->ctime_nsec);
}

/* The kernel holds one more lookup on ino (the root is pinned, never counted). */
/*
 * An open whose reply the kernel did not take: give its handle back, as the
 * caller of the open (k), without the request, which the reply freed.
 */
static void give_back(struct mount_ctx *m, const struct call *opened, uint64_t ino,
		      struct le64 fh)
{
	struct rpc_release r = { .ino = cpu_to_le64(ino), .fh = fh };
	struct call k = *opened;

	k.c.groups = k.groups;
	k.c.op = RPC_RELEASE;
	k.c.fixed = &r;
	k.c.tail1 = k.c.tail2 = NULL;
	k.c.tail1_len = k.c.tail2_len = 0;
	k.c.reply_fixed = NULL;
	k.c.reply_tail = NULL;
	k.c.reply_tail_cap = 0;
	k.c.hold = false;
	rpc_client_call(m->client, &k.c);
}

/*
 * The lookup counts take the mount, not the request: a fuse_reply_*() frees
 * the request even when the kernel did not take the reply, and that is
 * exactly when a count must be undone.
 */
static int node_ref(struct mount_ctx *m, uint64_t ino)
{
	return ino == ROOT_INO ? 0 : u64map_add(m->nodes, ino);
}

static void node_forget(struct mount_ctx *m, uint64_t ino, uint64_t n)
{
	int ret;

	if (ino == ROOT_INO)
		return;
	ret = u64map_sub(m->nodes, ino, n);
	if (ret < 0)
		log_err("fuse", "forget of node %" PRIu64 " by %" PRIu64 " is more than the kernel "
			"was given (%s): lookup counts are out of balance", ino, n, errstr(ret));
}

static void entry_of(const struct rpc_attr *a, struct fuse_entry_param *e, double valid_s)
{
	memset(e, 0, sizeof(*e));
	e->ino = le64_to_cpu(a->ino);
	e->generation = le64_to_cpu(a->gen);
	attr_to_stat(a, &e->attr);
	e->attr_timeout = valid_s;
	e->entry_timeout = valid_s;
}

/* Answer with an entry the kernel will hold: one more lookup on it. */
static void reply_entry(fuse_req_t req, const struct rpc_attr *a, double valid_s)
{
	struct fuse_entry_param e;

	struct mount_ctx *m = ctx_of(req);

	entry_of(a, &e, valid_s);
	if (node_ref(m, e.ino) < 0) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (fuse_reply_entry(req, &e) != 0) /* the kernel did not take it */
		node_forget(m, e.ino, 1);
}

/* Run a call whose reply is an entry, and answer the kernel with it. */
static void entry_call(fuse_req_t req, struct call *k)
{
	struct rpc_entry out;
	int ret;

	k->c.reply_fixed = &out;
	ret = call_run(req, k);
	if (ret == -ENOENT && k->c.op == RPC_LOOKUP && k->c.valid_ms > 0) {
		/* a name that is not there, for as long as the server watches it for us */
		struct fuse_entry_param e = { .ino = 0, .entry_timeout = call_valid_s(k) };

		fuse_reply_entry(req, &e);
	} else if (ret < 0) {
		fuse_reply_err(req, -ret);
	} else {
		reply_entry(req, &out.attr, call_valid_s(k));
	}
}

static void name_call(fuse_req_t req, uint32_t op, fuse_ino_t parent, const char *name,
		      bool want_entry)
{
	struct rpc_ino f = { .ino = cpu_to_le64(parent) };
	CALL(k);

	call_init(&k, req, op, &f);
	call_tails(&k, name, strlen(name), NULL, 0);
	if (want_entry)
		entry_call(req, &k);
	else
		fuse_reply_err(req, -call_run(req, &k));
}

/* ---- names ---- */

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	name_call(req, RPC_LOOKUP, parent, name, true);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(ctx_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(ctx_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void make(fuse_req_t req, uint32_t op, fuse_ino_t parent, const char *name, mode_t mode,
		 dev_t rdev)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct rpc_make f = { .parent = cpu_to_le64(parent), .rdev = cpu_to_le64(rdev),
			      .mode = cpu_to_le32(mode), .umask = cpu_to_le32(fc->umask) };
	CALL(k);

	call_init(&k, req, op, &f);
	call_tails(&k, name, strlen(name), NULL, 0);
	call_groups_for_mode(req, &k, mode);
	entry_call(req, &k);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make(req, RPC_MKNOD, parent, name, mode, rdev);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make(req, RPC_MKDIR, parent, name, mode | S_IFDIR, 0);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	name_call(req, RPC_UNLINK, parent, name, false);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	name_call(req, RPC_RMDIR, parent, name, false);
}

static void fs_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct rpc_ino f = { .ino = cpu_to_le64(parent) };
	CALL(k);

	call_init(&k, req, RPC_SYMLINK, &f);
	call_tails(&k, name, strlen(name), target, strlen(target));
	entry_call(req, &k);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct rpc_ino f = { .ino = cpu_to_le64(ino) };
	char buf[RPC_PATH_MAX + 1];
	CALL(k);
	int ret;

	call_init(&k, req, RPC_READLINK, &f);
	k.c.reply_tail = buf;
	k.c.reply_tail_cap = RPC_PATH_MAX;
	ret = call_run(req, &k);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	buf[k.c.reply_tail_len] = '\0';
	fuse_reply_readlink(req, buf);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	/* the flags go as the kernel gave them: the server's filesystem refuses what it lacks */
	struct rpc_rename f = { .parent = cpu_to_le64(parent), .newparent = cpu_to_le64(newparent),
				.flags = cpu_to_le32(flags) };
	CALL(k);
	int ret;

	call_init(&k, req, RPC_RENAME, &f);
	call_tails(&k, name, strlen(name), newname, strlen(newname));
	ret = call_run(req, &k);
	fuse_reply_err(req, -ret);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct rpc_link f = { .ino = cpu_to_le64(ino), .newparent = cpu_to_le64(newparent) };
	CALL(k);

	call_init(&k, req, RPC_LINK, &f);
	call_tails(&k, newname, strlen(newname), NULL, 0);
	entry_call(req, &k);
}

/* ---- attributes ---- */

/*
 * With no server to ask, the root still answers, so that its status xattrs
 * can be read while there is no leader (getfattr stats the path first):
 * with the attributes a server last gave this mount, never cached.  Only a
 * mount that never reached a server (a member before the first election)
 * shows a placeholder: an empty directory owned by whoever mounted.
 */
static void root_fallback(fuse_req_t req)
{
	struct mount_ctx *m = ctx_of(req);
	struct stat st;

	pthread_mutex_lock(&m->root_lock);
	st = m->root_st;
	if (!m->root_known) {
		memset(&st, 0, sizeof(st));
		st.st_ino = ROOT_INO;
		st.st_mode = S_IFDIR | 0755;
		st.st_nlink = 2;
		st.st_uid = m->uid;
		st.st_gid = m->gid;
		st.st_blksize = FUSEFS_BLOCK_SIZE;
		st.st_atim = st.st_mtim = st.st_ctim = m->mounted;
	}
	pthread_mutex_unlock(&m->root_lock);
	fuse_reply_attr(req, &st, TIMEOUT);
}

/* The root's attributes as a server gave them: what root_fallback answers. */
static void root_remember(struct mount_ctx *m, const struct stat *st)
{
	pthread_mutex_lock(&m->root_lock);
	m->root_st = *st;
	m->root_known = true;
	pthread_mutex_unlock(&m->root_lock);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rpc_ino f = { .ino = cpu_to_le64(ino) };
	struct rpc_attr out;
	struct stat st;
	CALL(k);
	int ret;

	(void)fi;
	call_init(&k, req, RPC_GETATTR, &f);
	k.c.reply_fixed = &out;
	if (ino == ROOT_INO)
		k.c.wait_ms = ROOT_WAIT_MS;
	ret = call_run(req, &k);
	if (ret == -EIO && ino == ROOT_INO) {
		root_fallback(req);
		return;
	}
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	attr_to_stat(&out, &st);
	if (ino == ROOT_INO)
		root_remember(ctx_of(req), &st);
	fuse_reply_attr(req, &st, call_valid_s(&k));
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct rpc_setattr f = { .ino = cpu_to_le64(ino) };
	struct rpc_attr out;
	struct stat st;
	CALL(k);
	uint32_t valid = 0;
	int ret;

	/* through an open descriptor (ftruncate): the server checks the handle, not the mode */
	if (fi != NULL)
		f.fh = cpu_to_le64(fi->fh);
	if (to_set & FUSE_SET_ATTR_MODE) {
		valid |= RPC_SET_MODE;
		f.mode = cpu_to_le32(attr->st_mode);
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		valid |= RPC_SET_UID;
		f.uid = cpu_to_le32(attr->st_uid);
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		valid |= RPC_SET_GID;
		f.gid = cpu_to_le32(attr->st_gid);
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		valid |= RPC_SET_SIZE;
		f.size = cpu_to_le64((uint64_t)attr->st_size);
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		valid |= RPC_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		valid |= RPC_SET_ATIME;
		f.atime_sec = cpu_to_le64((uint64_t)attr->st_atim.tv_sec);
		f.atime_nsec = cpu_to_le32((uint32_t)attr->st_atim.tv_nsec);
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		valid |= RPC_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		valid |= RPC_SET_MTIME;
		f.mtime_sec = cpu_to_le64((uint64_t)attr->st_mtim.tv_sec);
		f.mtime_nsec = cpu_to_le32((uint32_t)attr->st_mtim.tv_nsec);
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		valid |= RPC_SET_CTIME;
		f.ctime_sec = cpu_to_le64((uint64_t)attr->st_ctim.tv_sec);
		f.ctime_nsec = cpu_to_le32((uint32_t)attr->st_ctim.tv_nsec);
	}
	f.valid = cpu_to_le32(valid);
	call_init(&k, req, RPC_SETATTR, &f);
	if (to_set & FUSE_SET_ATTR_MODE)
		call_groups_for_mode(req, &k, attr->st_mode);
	k.c.reply_fixed = &out;
	ret = call_run(req, &k);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	attr_to_stat(&out, &st);
	fuse_reply_attr(req, &st, call_valid_s(&k));
}

static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct rpc_access f = { .ino = cpu_to_le64(ino), .mask = cpu_to_le32((uint32_t)mask) };
	CALL(k);

	call_init(&k, req, RPC_ACCESS, &f);
	fuse_reply_err(req, -call_run(req, &k));
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct rpc_ino f = { .ino = cpu_to_le64(ino) };
	struct rpc_statfs out;
	struct statvfs sv;
	CALL(k);
	int ret;

	call_init(&k, req, RPC_STATFS, &f);
	k.c.reply_fixed = &out;
	ret = call_run(req, &k);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = le32_to_cpu(out.bsize);
	sv.f_frsize = le32_to_cpu(out.bsize);
	sv.f_blocks = le64_to_cpu(out.blocks);
	sv.f_bfree = le64_to_cpu(out.bfree);
	sv.f_bavail = le64_to_cpu(out.bavail);
	sv.f_files = le64_to_cpu(out.files);
	sv.f_ffree = le64_to_cpu(out.ffree);
	sv.f_favail = le64_to_cpu(out.ffree);
	sv.f_namemax = le32_to_cpu(out.namemax);
	fuse_reply_statfs(req, &sv);
}

/* ---- files ---- */

/*
 * An O_APPEND open bypasses the page cache: each write(2) is one request,
 * which the server places at its end of file, so appends from several
 * mounts never tear (the page cache would split a write at page edges).
 * An O_DIRECT open bypasses it too, as the program asked.
 */
static void open_reply(struct fuse_file_info *fi, const struct rpc_opened *o)
{
	fi->fh = le64_to_cpu(o->fh);
	fi->direct_io = (fi->flags & (O_APPEND | O_DIRECT)) != 0;
	/* the server vouches that nobody changed the data since we last dropped it */
	fi->keep_cache = !fi->direct_io && (le32_to_cpu(o->flags) & RPC_OPENED_KEEP_CACHE);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rpc_open f = { .ino = cpu_to_le64(ino), .flags = cpu_to_le32((uint32_t)fi->flags),
			      .fh = cpu_to_le64(rpc_client_new_fh(ctx_of(req)->client)) };
	struct rpc_opened out;
	struct mount_ctx *m;
	CALL(k);
	int ret;

	call_init(&k, req, RPC_OPEN, &f);
	k.c.reply_fixed = &out;
	ret = call_run(req, &k);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	open_reply(fi, &out);
	m = ctx_of(req);
	if (fuse_reply_open(req, fi) != 0)
		give_back(m, &k, ino, out.fh); /* the open was interrupted */
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct rpc_make f = { .parent = cpu_to_le64(parent), .mode = cpu_to_le32(mode),
			      .umask = cpu_to_le32(fc->umask),
			      .flags = cpu_to_le32((uint32_t)fi->flags),
			      .fh = cpu_to_le64(rpc_client_new_fh(ctx_of(req)->client)) };
	struct rpc_created out;
	struct fuse_entry_param e;
	struct mount_ctx *m;
	CALL(k);
	int ret;

	call_init(&k, req, RPC_CREATE, &f);
	call_tails(&k, name, strlen(name), NULL, 0);
	call_groups_for_mode(req, &k, mode);
	k.c.reply_fixed = &out;
	ret = call_run(req, &k);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	entry_of(&out.entry.attr, &e, call_valid_s(&k));
	open_reply(fi, &out.opened);
	m = ctx_of(req);
	if (node_ref(m, e.ino) < 0) {
		fuse_reply_err(req, ENOMEM);
		give_back(m, &k, e.ino, out.opened.fh);
		return;
	}
	if (fuse_reply_create(req, &e, fi) != 0) {
		node_forget(m, e.ino, 1);
		give_back(m, &k, e.ino, out.opened.fh);
	}
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct rpc_io f = { .ino = cpu_to_le64(ino), .fh = cpu_to_le64(fi->fh),
			    .offset = cpu_to_le64((uint64_t)off) };
	CALL(k);
	void *buf;
	int ret;

	size = MIN(size, (size_t)RPC_IO_MAX);
	f.size = cpu_to_le32((uint32_t)size);
	buf = malloc(size ? size : 1);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	call_init(&k, req, RPC_READ, &f);
	k.c.reply_tail = buf;
	k.c.reply_tail_cap = (uint32_t)size;
	ret = call_run(req, &k);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, buf, k.c.reply_tail_len);
	free(buf);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct rpc_io f = { .ino = cpu_to_le64(ino), .fh = cpu_to_le64(fi->fh),
			    .offset = cpu_to_le64((uint64_t)off) };
	struct rpc_written out;
	CALL(k);
	int ret;

	if (size > RPC_IO_MAX)
		size = RPC_IO_MAX; /* a short write; the kernel sends the rest */
	f.size = cpu_to_le32((uint32_t)size);
	f.flags = cpu_to_le32((uint32_t)fi->flags);
	call_init(&k, req, RPC_WRITE, &f);
	call_tails(&k, buf, size, NULL, 0);
	k.c.reply_fixed = &out;
	ret = call_run(req, &k);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, le32_to_cpu(out.size));
}

/* Every write is durable when it returns: flush and fsync have nothing to do. */
/* ---- locks (the server holds them: server/fs_lock.c, docs/locks.md) ---- */

static struct rpc_lock lock_req(fuse_ino_t ino, uint64_t owner, uint32_t type, uint64_t start,
				uint64_t len, uint32_t pid, uint32_t flags)
{
	uint64_t end = len == 0 || start + len - 1 > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX
									   : start + len - 1;

	return (struct rpc_lock){ .ino = cpu_to_le64(ino), .owner = cpu_to_le64(owner),
				  .start = cpu_to_le64(start), .end = cpu_to_le64(end),
				  .type = cpu_to_le32(type), .pid = cpu_to_le32(pid),
				  .flags = cpu_to_le32(flags) };
}

/* A call with a fixed request and reply and nothing cached: its result. */
static int fixed_call(fuse_req_t req, uint32_t op, const void *f, void *out)
{
	CALL(k);

	call_init(&k, req, op, f);
	k.c.reply_fixed = out;
	return call_run(req, &k);
}

int mount_lock_try(fuse_req_t req, const struct rpc_lock *want, bool give_up)
{
	struct rpc_lock in_way, f = *want;
	int ret;

	/* asked with GETLK (a read: no commit), saying it waits, until free; then taken */
	f.flags = cpu_to_le32(le32_to_cpu(f.flags) | RPC_LOCK_WAITING |
			      (give_up ? RPC_LOCK_WAIT_END : 0));
	ret = fixed_call(req, RPC_GETLK, &f, &in_way);
	if (give_up)
		return -EINTR;
	if (ret == 0)
		ret = le32_to_cpu(in_way.type) == F_UNLCK ? fixed_call(req, RPC_SETLK, want, NULL)
							  : -EAGAIN;
	return ret;
}

/*
 * Set a lock, or answer that it cannot be had now.  With wait, a lock
 * another owner holds parks the request with the mount's waiters
 * (lock_wait.c), which answer it once the lock is ours, on EDEADLK, or on
 * a signal (EINTR).  The server holds no waiter, so an interrupted or
 * vanished waiter leaves nothing behind.  1 when parked (answered later),
 * else the result to answer now.
 */
static int lock_set(fuse_req_t req, const struct rpc_lock *f, bool wait)
{
	struct mount_ctx *m = ctx_of(req);
	int ret = fixed_call(req, RPC_SETLK, f, NULL);

	if (ret != -EAGAIN || !wait)
		return ret;
	__atomic_add_fetch(&m->lock_waits, 1, __ATOMIC_RELAXED);
	ret = lock_waiters_park(m->waiters, req, f);
	return ret < 0 ? ret : 1;
}

static void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct rpc_lock f = lock_req(ino, fi->lock_owner, (uint32_t)lock->l_type,
				     (uint64_t)lock->l_start, (uint64_t)lock->l_len,
				     (uint32_t)lock->l_pid, 0), out;
	uint64_t start, end;
	int ret = fixed_call(req, RPC_GETLK, &f, &out);

	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	start = le64_to_cpu(out.start);
	end = le64_to_cpu(out.end);
	lock->l_type = (short)le32_to_cpu(out.type);
	lock->l_whence = SEEK_SET;
	lock->l_start = (off_t)start;
	lock->l_len = end >= (uint64_t)INT64_MAX ? 0 : (off_t)(end - start + 1);
	lock->l_pid = (pid_t)le32_to_cpu(out.pid);
	fuse_reply_lock(req, lock);
}

static void fs_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct rpc_lock f = lock_req(ino, fi->lock_owner, (uint32_t)lock->l_type,
				     (uint64_t)lock->l_start, (uint64_t)lock->l_len,
				     (uint32_t)fuse_req_ctx(req)->pid, 0);
	int ret;

	if (lock->l_type != F_UNLCK && u64map_get(ctx_of(req)->locked, ino) == 0)
		u64map_add(ctx_of(req)->locked, ino); /* (before: a flush racing it unlocks) */
	ret = lock_set(req, &f, sleep != 0);
	if (ret <= 0)
		fuse_reply_err(req, -ret);
}

/*
 * A flock belongs to the open file description, and our handle (fh) is
 * exactly that. The kernel's lock_owner for a flock is the address of the
 * struct file, which the next open may get again while the last one's
 * RELEASE (sent in the background) is still on its way: keyed by it, the
 * new open's flock was "already held" and the late RELEASE then dropped it
 * under its holder. Keyed by fh, the new flock waits for that RELEASE.
 */
static uint64_t flock_owner(const struct fuse_file_info *fi)
{
	return fi->fh;
}

static void fs_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	uint32_t type = (op & LOCK_UN) ? F_UNLCK : (op & LOCK_EX) ? F_WRLCK : F_RDLCK;
	struct rpc_lock f = lock_req(ino, flock_owner(fi), type, 0, 0,
				     (uint32_t)fuse_req_ctx(req)->pid, RPC_LOCK_FLOCK);
	int ret = lock_set(req, &f, !(op & LOCK_NB));

	if (ret <= 0)
		fuse_reply_err(req, -ret);
}

/*
 * Every close(2) flushes, and POSIX says a process's fcntl locks on the
 * file go with any of its descriptors' close: the owner's locks go on the
 * server (only on inodes this mount ever locked: a flush costs no call).
 */
static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rpc_lock f = lock_req(ino, fi->lock_owner, F_UNLCK, 0, 0, 0, 0);
	int ret = 0;

	if (u64map_get(ctx_of(req)->locked, ino) > 0)
		ret = lock_set(req, &f, false);
	fuse_reply_err(req, ret == -EIO ? EIO : 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rpc_release f = { .ino = cpu_to_le64(ino), .fh = cpu_to_le64(fi->fh) };
	CALL(k);

	if (fi->flock_release) { /* the open file description's last close: its flock goes */
		struct rpc_lock u = lock_req(ino, flock_owner(fi), F_UNLCK, 0, 0, 0, RPC_LOCK_FLOCK);

		lock_set(req, &u, false);
	}
	call_init(&k, req, RPC_RELEASE, &f);
	call_run(req, &k); /* nothing the kernel could do about an error */
	fuse_reply_err(req, 0);
}

static void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct rpc_fallocate f = { .ino = cpu_to_le64(ino), .offset = cpu_to_le64((uint64_t)off),
				   .length = cpu_to_le64((uint64_t)len),
				   .mode = cpu_to_le32((uint32_t)mode), .fh = cpu_to_le64(fi->fh) };
	CALL(k);

	call_init(&k, req, RPC_FALLOCATE, &f);
	fuse_reply_err(req, -call_run(req, &k));
}

/* SEEK_DATA and SEEK_HOLE are the server's (it knows the holes); the rest the kernel's. */
static void fs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct rpc_lseek f = { .ino = cpu_to_le64(ino), .fh = cpu_to_le64(fi->fh),
			       .offset = cpu_to_le64((uint64_t)off),
			       .whence = cpu_to_le32((uint32_t)whence) }, out;
	int ret;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = fixed_call(req, RPC_LSEEK, &f, &out);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_lseek(req, (off_t)le64_to_cpu(out.offset));
}

/* copy_file_range: the server copies (no data through here), at most 1 MiB a call. */
static void fs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct rpc_copy f = { .ino_in = cpu_to_le64(ino_in), .fh_in = cpu_to_le64(fi_in->fh),
			      .off_in = cpu_to_le64((uint64_t)off_in),
			      .ino_out = cpu_to_le64(ino_out), .fh_out = cpu_to_le64(fi_out->fh),
			      .off_out = cpu_to_le64((uint64_t)off_out),
			      .len = cpu_to_le64((uint64_t)len) };
	struct rpc_written out;
	int ret;

	if (flags != 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = fixed_call(req, RPC_COPY, &f, &out);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_write(req, le32_to_cpu(out.size));
}

/* ---- directories ---- */

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fi->fh = 0;
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

/* A readdir reply being filled for the kernel. */
struct dir_out {
	fuse_req_t req;
	bool plus;
	char *buf;
	size_t size, used;
	/* what readdirplus counted, undone if the kernel never gets it */
	uint64_t *counted;
	size_t ncounted;
	double valid_s;            /* how long the kernel may keep the entries */
};

/*
 * Add one entry of the server's reply to the kernel's buffer: 0, or 1
 * when it does not fit (or cannot be counted) and the buffer is done.
 */
static int dir_add(struct dir_out *o, const struct rpc_dirent *d, const char *name,
		   const struct rpc_attr *ap)
{
	char nm[RPC_NAME_MAX + 1];
	off_t next = (off_t)le64_to_cpu(d->cookie);
	size_t n;

	memcpy(nm, name, le16_to_cpu(d->namelen));
	nm[le16_to_cpu(d->namelen)] = '\0';
	if (!o->plus) {
		struct stat st = { .st_ino = le64_to_cpu(d->ino), .st_mode = le32_to_cpu(d->mode) };

		n = fuse_add_direntry(o->req, NULL, 0, nm, &st, 0);
		if (o->used + n > o->size)
			return 1;
		fuse_add_direntry(o->req, o->buf + o->used, o->size - o->used, nm, &st, next);
	} else {
		struct fuse_entry_param e;
		bool dots = strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0;

		memset(&e, 0, sizeof(e));
		if (ap != NULL && !dots) {
			struct rpc_attr a;

			memcpy(&a, ap, sizeof(a));
			entry_of(&a, &e, o->valid_s);
		} else {
			e.attr.st_ino = le64_to_cpu(d->ino);
			e.attr.st_mode = le32_to_cpu(d->mode);
		}
		n = fuse_add_direntry_plus(o->req, NULL, 0, nm, &e, 0);
		if (o->used + n > o->size)
			return 1;
		if (e.ino != 0 && node_ref(ctx_of(o->req), e.ino) < 0)
			return 1;
		if (e.ino != 0)
			o->counted[o->ncounted++] = e.ino;
		fuse_add_direntry_plus(o->req, o->buf + o->used, o->size - o->used, nm, &e, next);
	}
	o->used += n;
	return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	uint32_t cap = (uint32_t)MIN(size, (size_t)RPC_READDIR_MAX), pos = 0;
	struct rpc_readdir f = { .ino = cpu_to_le64(ino), .cookie = cpu_to_le64((uint64_t)off),
				 .size = cpu_to_le32(cap), .plus = cpu_to_le32(plus ? 1 : 0) };
	/* (an entry takes more than 128 bytes, so this many counts are enough) */
	struct dir_out o = { .req = req, .plus = plus, .size = size, .buf = malloc(size ? size : 1),
			     .counted = plus ? malloc(sizeof(uint64_t) * (size / 128 + 1)) : NULL };
	struct mount_ctx *m = ctx_of(req);
	uint8_t *tail = malloc(cap ? cap : 1);
	CALL(k);
	int ret = -ENOMEM, r = 0;

	if (o.buf != NULL && tail != NULL && (!plus || o.counted != NULL)) {
		call_init(&k, req, RPC_READDIR, &f);
		k.c.reply_tail = tail;
		k.c.reply_tail_cap = cap;
		ret = call_run(req, &k);
		o.valid_s = call_valid_s(&k);
	}
	while (ret == 0 && r == 0) {
		struct rpc_dirent d;
		const struct rpc_attr *ap;
		const char *name;

		r = rpc_dirent_next(tail, k.c.reply_tail_len, &pos, &d, &name, &ap);
		if (r < 0)
			ret = -EIO;
		else if (r == 0)
			r = dir_add(&o, &d, name, ap);
	}
	if (ret < 0 || fuse_reply_buf(req, o.buf, o.used) != 0) {
		if (ret < 0)
			fuse_reply_err(req, -ret);
		for (size_t i = 0; i < o.ncounted; i++)
			node_forget(m, o.counted[i], 1);
	}
	free(o.buf);
	free(tail);
	free(o.counted);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, false);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, true);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

/* ---- extended attributes ---- */

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct rpc_xattr f = { .ino = cpu_to_le64(ino),
			       .size = cpu_to_le32((uint32_t)MIN(size, (size_t)RPC_XATTR_SIZE_MAX)) };
	struct rpc_xsize out;
	char *buf = NULL;
	CALL(k);
	int ret;

	if (ino == ROOT_INO && status_xattr_is_ours(name)) {
		if (size > 0 && (buf = malloc(size)) == NULL) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		ret = status_xattr_get(ctx_of(req), fuse_req_ctx(req)->pid, name, buf, size);
		if (ret < 0)
			fuse_reply_err(req, -ret);
		else if (size == 0)
			fuse_reply_xattr(req, (size_t)ret);
		else
			fuse_reply_buf(req, buf, (size_t)ret);
		free(buf);
		return;
	}
	if (size > 0 && (buf = malloc(size)) == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	call_init(&k, req, RPC_GETXATTR, &f);
	call_tails(&k, name, strlen(name), NULL, 0);
	k.c.reply_fixed = &out;
	k.c.reply_tail = buf;
	k.c.reply_tail_cap = (uint32_t)MIN(size, (size_t)RPC_XATTR_SIZE_MAX);
	ret = call_run(req, &k);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else if (size == 0)
		fuse_reply_xattr(req, le32_to_cpu(out.size));
	else
		fuse_reply_buf(req, buf, k.c.reply_tail_len);
	free(buf);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mount_ctx *m = ctx_of(req);
	struct rpc_xattr f = { .ino = cpu_to_le64(ino) };
	struct rpc_xsize out;
	size_t ours = ino == ROOT_INO ? status_xattr_list(m, NULL, 0) : 0, theirs;
	char *buf;
	CALL(k);
	int ret;

	/* the server's names (all of them: ours are added below) */
	buf = malloc(RPC_XATTR_SIZE_MAX + ours + 1);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	f.size = cpu_to_le32(RPC_XATTR_SIZE_MAX);
	call_init(&k, req, RPC_LISTXATTR, &f);
	k.c.reply_fixed = &out;
	k.c.reply_tail = buf;
	k.c.reply_tail_cap = RPC_XATTR_SIZE_MAX;
	if (ino == ROOT_INO)
		k.c.wait_ms = ROOT_WAIT_MS;
	ret = call_run(req, &k);
	if (ret == -EIO && ino == ROOT_INO) {
		ret = 0; /* no server: the status names alone */
		k.c.reply_tail_len = 0;
	}
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		free(buf);
		return;
	}
	theirs = k.c.reply_tail_len;
	if (ours > 0)
		status_xattr_list(m, buf + theirs, ours);
	if (size == 0)
		fuse_reply_xattr(req, theirs + ours);
	else if (theirs + ours > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, theirs + ours);
	free(buf);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct rpc_xattr f = { .ino = cpu_to_le64(ino), .flags = cpu_to_le32((uint32_t)flags) };
	CALL(k);

	if (ino == ROOT_INO && status_xattr_is_ours(name)) {
		fuse_reply_err(req, -status_xattr_set(ctx_of(req), fuse_req_ctx(req)->uid, name,
						      value, size));
		return;
	}
	call_init(&k, req, RPC_SETXATTR, &f);
	call_tails(&k, name, strlen(name), value, size);
	fuse_reply_err(req, -call_run(req, &k));
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct rpc_xattr f = { .ino = cpu_to_le64(ino) };
	CALL(k);

	if (ino == ROOT_INO && status_xattr_is_ours(name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	call_init(&k, req, RPC_REMOVEXATTR, &f);
	call_tails(&k, name, strlen(name), NULL, 0);
	fuse_reply_err(req, -call_run(req, &k));
}

/* ---- coherence ---- */

/*
 * The server says another mount changed something this kernel may cache
 * (client.c's inval thread calls this, never a request handler).  An
 * inode's attributes only (offset -1): its cached data goes when the
 * kernel next sees a changed mtime or size (FUSE_CAP_AUTO_INVAL_DATA), and
 * at every open (keep_cache off).  ENOENT (not cached) is no error.
 */
void mount_inval(void *arg, const struct rpc_inval *it)
{
	struct mount_ctx *m = arg;
	uint64_t *inos;
	uint64_t n;

	if (m->se == NULL)
		return;
	if (it->kind == RPC_INVAL_INODE) {
		fuse_lowlevel_notify_inval_inode(m->se, it->ino, -1, 0);
	} else if (it->kind == RPC_INVAL_ENTRY) {
		fuse_lowlevel_notify_inval_entry(m->se, it->ino, it->name, it->namelen);
	} else { /* a new connection: every inode the kernel holds */
		n = u64map_size(m->nodes) + 64;
		inos = malloc(n * sizeof(*inos));
		if (inos == NULL)
			return;
		n = u64map_keys(m->nodes, inos, n);
		fuse_lowlevel_notify_inval_inode(m->se, ROOT_INO, -1, 0);
		for (uint64_t i = 0; i < n; i++)
			fuse_lowlevel_notify_inval_inode(m->se, inos[i], -1, 0);
		free(inos);
	}
}

/* ---- session ---- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* every change goes through the server: no writeback caching here */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* locks are the server's, so they hold across mounts */
	if (conn->capable & FUSE_CAP_POSIX_LOCKS)
		conn->want |= FUSE_CAP_POSIX_LOCKS;
	if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
		conn->want |= FUSE_CAP_FLOCK_LOCKS;
	/*
	 * The server clears setuid/setgid on a write, a truncate or a chown
	 * (fs_kill_priv).  Even so Linux 6.x sends the kill of a buffered
	 * write or a truncate as a chmod from the caller, which the server
	 * allows a writer when it takes away nothing but those bits.
	 */
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV)
		conn->want |= FUSE_CAP_HANDLE_KILLPRIV;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_write = RPC_IO_MAX;
	conn->max_readahead = RPC_IO_MAX;
}

const struct fuse_lowlevel_ops mount_fuse_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.getlk = fs_getlk,
	.setlk = fs_setlk,
	.flock = fs_flock,
	.release = fs_release,
	.fsync = fs_fsync,
	.fallocate = fs_fallocate,
	.lseek = fs_lseek,
	.copy_file_range = fs_copy_file_range,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.fsyncdir = fs_fsyncdir,
	.statfs = fs_statfs,
	.access = fs_access,
	.getxattr = fs_getxattr,
	.setxattr = fs_setxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
};
