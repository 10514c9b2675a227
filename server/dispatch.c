/*
 * dispatch.c - one request to the filesystem logic (fs.h) and back: the
 * executor's translation between the wire (proto.h) and fs calls.
 *
 * Open files: OPEN and CREATE hand out a handle (fh) that the executor
 * keeps until RELEASE or until the connection goes; while any handle holds
 * an inode, its last unlink keeps it as an orphan (fs.h), and the last
 * release deletes it.  A new server deletes the orphans left by the old
 * one when it starts (open files do not yet survive a failover).
 *
 * Results of writing requests are kept in the store's replies table, in
 * the same savepoint as the change, and a request that arrives again with
 * the same (client, request id) gets the kept reply instead of being
 * applied twice.  Each request says the oldest id its client still waits
 * for; older results are dropped.
 */
#include "server/service.h"

#include "common/common.h"
#include "common/u64map.h"
#include "server/fs.h"
#include "server/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

struct handle {
	uint64_t ino;
	const struct conn *conn;
	uint32_t gen;
	bool used;
};

struct dispatch {
	struct store *store;
	struct fs *fs;
	struct u64map *open_inos;  /* ino -> handles on it */
	struct u64map *conn_handles; /* connection -> handles it holds */
	struct handle *handles;
	uint32_t nhandles;         /* slots in use or free */
	uint32_t cap;
	uint32_t *free;            /* free slot indexes */
	uint32_t nfree;
	uint32_t gen;
	/* orphans whose last handle went: deleted in the next writing batch */
	uint64_t reap[256];
	uint32_t nreap;
};

static bool is_open(void *arg, uint64_t ino)
{
	return u64map_get(((struct dispatch *)arg)->open_inos, ino) > 0;
}

int dispatch_open(struct store *st, struct dispatch **out)
{
	struct dispatch *d = calloc(1, sizeof(*d));
	struct fs_hooks hooks = { .is_open = is_open };
	int ret;

	*out = NULL;
	if (d == NULL)
		return -ENOMEM;
	d->store = st;
	hooks.arg = d;
	ret = u64map_create(&d->open_inos);
	if (ret == 0)
		ret = u64map_create(&d->conn_handles);
	if (ret == 0)
		ret = fs_attach(store_db(st), &hooks, &d->fs);
	if (ret < 0) {
		dispatch_close(d);
		return ret;
	}
	fs_set_space(d->fs, store_space_bytes(st));
	*out = d;
	return 0;
}

void dispatch_close(struct dispatch *d)
{
	if (d == NULL)
		return;
	fs_detach(d->fs);
	u64map_destroy(d->open_inos);
	u64map_destroy(d->conn_handles);
	free(d->handles);
	free(d->free);
	free(d);
}

int dispatch_start(struct dispatch *d)
{
	int ret = fs_orphans_purge(d->fs);

	if (ret > 0)
		log_info("server", "deleted %d files left unlinked but open by the previous server", ret);
	return ret < 0 ? ret : 0;
}

/* ---- handles ---- */

#define DISPATCH_CONN_HANDLES_MAX (1u << 16)

static uint64_t conn_key(const struct conn *c)
{
	return (uint64_t)(uintptr_t)c;
}

static int handle_new(struct dispatch *d, const struct conn *c, uint64_t ino, uint64_t *fh)
{
	uint32_t idx;

	/* one connection cannot take the table (a mount keeps far fewer open) */
	if (u64map_get(d->conn_handles, conn_key(c)) >= DISPATCH_CONN_HANDLES_MAX)
		return -EMFILE;
	if (d->nfree > 0) {
		idx = d->free[--d->nfree];
	} else {
		if (d->nhandles == d->cap) {
			uint32_t cap = d->cap ? d->cap * 2 : 256;
			struct handle *h = realloc(d->handles, cap * sizeof(*h));
			uint32_t *f = realloc(d->free, cap * sizeof(*f));

			if (h != NULL)
				d->handles = h;
			if (f != NULL)
				d->free = f;
			if (h == NULL || f == NULL)
				return -ENOMEM;
			d->cap = cap;
		}
		idx = d->nhandles++;
	}
	if (u64map_add(d->open_inos, ino) < 0) {
		d->free[d->nfree++] = idx;
		return -ENOMEM;
	}
	if (u64map_add(d->conn_handles, conn_key(c)) < 0) {
		u64map_sub(d->open_inos, ino, 1);
		d->free[d->nfree++] = idx;
		return -ENOMEM;
	}
	d->handles[idx] = (struct handle){ .ino = ino, .conn = c, .gen = ++d->gen, .used = true };
	*fh = (uint64_t)d->handles[idx].gen << 32 | (idx + 1);
	return 0;
}

/*
 * Let go of a handle.  Releasing writes nothing by itself (a close must
 * not cost a commit): an orphan whose last handle this was is queued and
 * deleted in the next writing batch, which the executor then runs soon.
 */
static int handle_drop(struct dispatch *d, uint32_t idx)
{
	uint64_t ino = d->handles[idx].ino;
	int ret;

	d->handles[idx].used = false;
	d->free[d->nfree++] = idx;
	u64map_sub(d->open_inos, ino, 1);
	u64map_sub(d->conn_handles, conn_key(d->handles[idx].conn), 1);
	if (u64map_get(d->open_inos, ino) > 0)
		return 0;
	ret = fs_orphan_is(d->fs, ino);
	if (ret <= 0)
		return ret;
	if (d->nreap == ARRAY_SIZE(d->reap))
		return 0; /* full: the next server's start deletes it */
	d->reap[d->nreap++] = ino;
	return 0;
}

static int handle_release(struct dispatch *d, const struct conn *c, uint64_t fh, uint64_t ino)
{
	uint32_t idx = (uint32_t)(fh & 0xffffffffu);

	if (idx == 0 || idx > d->nhandles)
		return 0; /* not ours: a handle of an earlier server */
	idx--;
	if (!d->handles[idx].used || d->handles[idx].gen != (uint32_t)(fh >> 32) ||
	    d->handles[idx].conn != c || d->handles[idx].ino != ino)
		return 0;
	return handle_drop(d, idx);
}

int dispatch_conn_closed(struct dispatch *d, const struct conn *c)
{
	int ret = 0;

	for (uint32_t i = 0; i < d->nhandles; i++)
		if (d->handles[i].used && d->handles[i].conn == c) {
			int r = handle_drop(d, i);

			if (ret == 0)
				ret = r;
		}
	return ret;
}

int dispatch_flush_deferred(struct dispatch *d)
{
	int ret = 0;

	while (d->nreap > 0 && ret == 0)
		ret = fs_orphan_release(d->fs, d->reap[--d->nreap]);
	return ret == 0 ? fs_atime_flush(d->fs) : ret;
}

bool dispatch_writes(const struct dispatch *d, const struct svc_req *r)
{
	(void)d;
	if (r->conn_closed)
		return false;
	switch (r->req.op) {
	case RPC_OPEN: {
		struct rpc_open f;

		memcpy(&f, r->req.fixed, sizeof(f));
		return (le32_to_cpu(f.flags) & O_TRUNC) != 0;
	}
	case RPC_RELEASE:
		return false;
	default:
		return rpc_op_writes(r->req.op);
	}
}

bool dispatch_must_write(const struct dispatch *d)
{
	return d->nreap > 0;
}

/* ---- encoding ---- */

static void attr_out(const struct fs_attr *a, struct rpc_attr *w)
{
	*w = (struct rpc_attr){
		.ino = cpu_to_le64(a->ino), .gen = cpu_to_le64(a->gen), .size = cpu_to_le64(a->size),
		.blocks = cpu_to_le64(a->blocks), .rdev = cpu_to_le64(a->rdev),
		.atime_sec = cpu_to_le64((uint64_t)a->atime.sec),
		.mtime_sec = cpu_to_le64((uint64_t)a->mtime.sec),
		.ctime_sec = cpu_to_le64((uint64_t)a->ctime.sec),
		.atime_nsec = cpu_to_le32(a->atime.nsec), .mtime_nsec = cpu_to_le32(a->mtime.nsec),
		.ctime_nsec = cpu_to_le32(a->ctime.nsec), .mode = cpu_to_le32(a->mode),
		.uid = cpu_to_le32(a->uid), .gid = cpu_to_le32(a->gid), .nlink = cpu_to_le32(a->nlink),
		.flags = cpu_to_le32(a->flags),
	};
}

static int reply_attr(struct svc_reply *r, const struct fs_attr *a)
{
	struct rpc_attr w;

	attr_out(a, &w);
	memcpy(r->fixed, &w, sizeof(w));
	r->fixed_len = sizeof(w);
	return 0;
}

static int tail_alloc(struct svc_reply *r, size_t n)
{
	r->tail = malloc(n ? n : 1);
	return r->tail ? 0 : -ENOMEM;
}

struct rd_ctx {
	struct svc_reply *r;
	uint32_t cap;
	bool plus;
};

static int rd_emit(void *arg, const char *name, size_t namelen, uint64_t ino, uint32_t mode,
		   const struct fs_attr *attr, uint64_t cookie)
{
	struct rd_ctx *x = arg;
	bool with_attr = x->plus && attr != NULL;
	uint32_t need = rpc_dirent_bytes((uint32_t)namelen, with_attr);
	struct rpc_dirent d = {
		.ino = cpu_to_le64(ino), .cookie = cpu_to_le64(cookie), .mode = cpu_to_le32(mode),
		.namelen = cpu_to_le16((uint16_t)namelen), .has_attr = cpu_to_le16(with_attr ? 1 : 0),
	};
	uint8_t *p;

	if (x->r->tail_len + need > x->cap)
		return 1;
	p = x->r->tail + x->r->tail_len;
	memset(p, 0, need);
	memcpy(p, &d, sizeof(d));
	memcpy(p + sizeof(d), name, namelen);
	if (with_attr) {
		struct rpc_attr w;

		attr_out(attr, &w);
		memcpy(p + need - sizeof(w), &w, sizeof(w));
	}
	x->r->tail_len += need;
	return 0;
}

/* The NUL-terminated copy of an xattr name from a tail. */
static void xname(char out[RPC_XATTR_NAME_MAX + 1], const struct rpc_req *q)
{
	memcpy(out, q->tail1, q->tail1_len);
	out[q->tail1_len] = '\0';
}

/* ---- the operations ---- */

#define FIXED(type, var) type var; memcpy(&var, q->fixed, sizeof(var))

static int apply(struct dispatch *d, const struct svc_req *sr, const struct fs_cred *c,
		 struct svc_reply *r)
{
	const struct rpc_req *q = &sr->req;
	const char *n1 = (const char *)q->tail1, *n2 = (const char *)q->tail2;
	struct fs_attr a;
	char xn[RPC_XATTR_NAME_MAX + 1];
	int ret;

	switch (q->op) {
	case RPC_LOOKUP: {
		FIXED(struct rpc_ino, f);
		ret = fs_lookup(d->fs, c, le64_to_cpu(f.ino), n1, q->tail1_len, &a);
		return ret < 0 ? ret : reply_attr(r, &a);
	}
	case RPC_GETATTR: {
		FIXED(struct rpc_ino, f);
		ret = fs_getattr(d->fs, c, le64_to_cpu(f.ino), &a);
		return ret < 0 ? ret : reply_attr(r, &a);
	}
	case RPC_SETATTR: {
		FIXED(struct rpc_setattr, f);
		struct fs_setattr sa = {
			.valid = le32_to_cpu(f.valid), .mode = le32_to_cpu(f.mode),
			.uid = le32_to_cpu(f.uid), .gid = le32_to_cpu(f.gid), .size = le64_to_cpu(f.size),
			.atime = { (int64_t)le64_to_cpu(f.atime_sec), le32_to_cpu(f.atime_nsec) },
			.mtime = { (int64_t)le64_to_cpu(f.mtime_sec), le32_to_cpu(f.mtime_nsec) },
			.ctime = { (int64_t)le64_to_cpu(f.ctime_sec), le32_to_cpu(f.ctime_nsec) },
		};

		if (sa.valid & ~RPC_SET_KNOWN || sa.atime.nsec >= 1000000000u ||
		    sa.mtime.nsec >= 1000000000u)
			return -EINVAL;
		ret = fs_setattr(d->fs, c, le64_to_cpu(f.ino), &sa, &a);
		return ret < 0 ? ret : reply_attr(r, &a);
	}
	case RPC_MKNOD:
	case RPC_MKDIR: {
		FIXED(struct rpc_make, f);
		uint32_t mode = le32_to_cpu(f.mode) & ~(le32_to_cpu(f.umask) & 0777);

		if (q->op == RPC_MKDIR)
			ret = fs_mkdir(d->fs, c, le64_to_cpu(f.parent), n1, q->tail1_len, mode, &a);
		else
			ret = fs_mknod(d->fs, c, le64_to_cpu(f.parent), n1, q->tail1_len, mode,
				       le64_to_cpu(f.rdev), &a);
		return ret < 0 ? ret : reply_attr(r, &a);
	}
	case RPC_UNLINK: {
		FIXED(struct rpc_ino, f);
		return fs_unlink(d->fs, c, le64_to_cpu(f.ino), n1, q->tail1_len);
	}
	case RPC_RMDIR: {
		FIXED(struct rpc_ino, f);
		return fs_rmdir(d->fs, c, le64_to_cpu(f.ino), n1, q->tail1_len);
	}
	case RPC_SYMLINK: {
		FIXED(struct rpc_ino, f);
		ret = fs_symlink(d->fs, c, le64_to_cpu(f.ino), n1, q->tail1_len, n2, q->tail2_len, &a);
		return ret < 0 ? ret : reply_attr(r, &a);
	}
	case RPC_READLINK: {
		FIXED(struct rpc_ino, f);
		size_t len = 0;

		ret = tail_alloc(r, RPC_PATH_MAX);
		if (ret == 0)
			ret = fs_readlink(d->fs, c, le64_to_cpu(f.ino), (char *)r->tail, RPC_PATH_MAX,
					  &len);
		r->tail_len = (uint32_t)len;
		return ret;
	}
	case RPC_RENAME: {
		FIXED(struct rpc_rename, f);
		uint32_t fl = le32_to_cpu(f.flags), ff = 0;

		if (fl & ~(RPC_RENAME_NOREPLACE | RPC_RENAME_EXCHANGE))
			return -EINVAL;
		if (fl & RPC_RENAME_NOREPLACE)
			ff |= FS_RENAME_NOREPLACE;
		if (fl & RPC_RENAME_EXCHANGE)
			ff |= FS_RENAME_EXCHANGE;
		return fs_rename(d->fs, c, le64_to_cpu(f.parent), n1, q->tail1_len,
				 le64_to_cpu(f.newparent), n2, q->tail2_len, ff);
	}
	case RPC_LINK: {
		FIXED(struct rpc_link, f);
		ret = fs_link(d->fs, c, le64_to_cpu(f.ino), le64_to_cpu(f.newparent), n1, q->tail1_len,
			      &a);
		return ret < 0 ? ret : reply_attr(r, &a);
	}
	case RPC_OPEN: {
		FIXED(struct rpc_open, f);
		struct rpc_opened o;
		uint64_t fh;

		ret = fs_open(d->fs, c, le64_to_cpu(f.ino), (int)le32_to_cpu(f.flags), &a);
		if (ret == 0)
			ret = handle_new(d, sr->conn, a.ino, &fh);
		if (ret < 0)
			return ret;
		o.fh = cpu_to_le64(fh);
		memcpy(r->fixed, &o, sizeof(o));
		r->fixed_len = sizeof(o);
		return 0;
	}
	case RPC_CREATE: {
		FIXED(struct rpc_make, f);
		uint32_t mode = le32_to_cpu(f.mode) & ~(le32_to_cpu(f.umask) & 0777);
		struct rpc_opened o;
		uint64_t fh;

		ret = fs_create(d->fs, c, le64_to_cpu(f.parent), n1, q->tail1_len, mode,
				(int)le32_to_cpu(f.flags), &a);
		if (ret == 0)
			ret = handle_new(d, sr->conn, a.ino, &fh);
		if (ret < 0)
			return ret;
		reply_attr(r, &a);
		o.fh = cpu_to_le64(fh);
		memcpy(r->fixed + sizeof(struct rpc_entry), &o, sizeof(o));
		r->fixed_len = sizeof(struct rpc_entry) + sizeof(o);
		return 0;
	}
	case RPC_READ: {
		FIXED(struct rpc_io, f);
		uint32_t size = MIN(le32_to_cpu(f.size), RPC_IO_MAX);
		size_t got = 0;

		ret = tail_alloc(r, size);
		if (ret == 0)
			ret = fs_read(d->fs, le64_to_cpu(f.ino), le64_to_cpu(f.offset), size, r->tail,
				      &got);
		r->tail_len = (uint32_t)got;
		return ret;
	}
	case RPC_WRITE: {
		FIXED(struct rpc_io, f);
		struct rpc_written w = { .size = cpu_to_le32(q->tail1_len) };
		uint64_t off = le64_to_cpu(f.offset);

		if (le32_to_cpu(f.flags) & O_APPEND) {
			ret = fs_getattr(d->fs, c, le64_to_cpu(f.ino), &a);
			if (ret < 0)
				return ret;
			off = a.size;
		}
		ret = fs_write(d->fs, c, le64_to_cpu(f.ino), off, q->tail1, q->tail1_len, &a);
		if (ret < 0)
			return ret;
		attr_out(&a, &w.attr);
		memcpy(r->fixed, &w, sizeof(w));
		r->fixed_len = sizeof(w);
		return 0;
	}
	case RPC_RELEASE: {
		FIXED(struct rpc_release, f);
		return handle_release(d, sr->conn, le64_to_cpu(f.fh), le64_to_cpu(f.ino));
	}
	case RPC_FALLOCATE: {
		FIXED(struct rpc_fallocate, f);
		return fs_fallocate(d->fs, c, le64_to_cpu(f.ino), (int)le32_to_cpu(f.mode),
				    le64_to_cpu(f.offset), le64_to_cpu(f.length));
	}
	case RPC_READDIR: {
		FIXED(struct rpc_readdir, f);
		struct rd_ctx x = { .r = r, .cap = MIN(le32_to_cpu(f.size), RPC_READDIR_MAX),
				    .plus = le32_to_cpu(f.plus) != 0 };

		ret = tail_alloc(r, x.cap);
		if (ret == 0)
			ret = fs_readdir(d->fs, c, le64_to_cpu(f.ino), le64_to_cpu(f.cookie), x.plus,
					 rd_emit, &x);
		return ret;
	}
	case RPC_STATFS: {
		struct fs_statfs sf;
		struct rpc_statfs w;

		ret = fs_statfs(d->fs, &sf);
		if (ret < 0)
			return ret;
		w = (struct rpc_statfs){
			.blocks = cpu_to_le64(sf.blocks), .bfree = cpu_to_le64(sf.bfree),
			.bavail = cpu_to_le64(sf.bavail), .files = cpu_to_le64(sf.files),
			.ffree = cpu_to_le64(sf.ffree), .bsize = cpu_to_le32((uint32_t)sf.bsize),
			.namemax = cpu_to_le32(sf.namemax),
		};
		memcpy(r->fixed, &w, sizeof(w));
		r->fixed_len = sizeof(w);
		return 0;
	}
	case RPC_GETXATTR:
	case RPC_LISTXATTR: {
		FIXED(struct rpc_xattr, f);
		uint32_t size = MIN(le32_to_cpu(f.size), RPC_XATTR_SIZE_MAX);
		struct rpc_xsize w;

		ret = tail_alloc(r, size);
		if (ret < 0)
			return ret;
		if (q->op == RPC_GETXATTR) {
			xname(xn, q);
			ret = fs_getxattr(d->fs, c, le64_to_cpu(f.ino), xn, r->tail, size);
		} else {
			ret = fs_listxattr(d->fs, c, le64_to_cpu(f.ino), (char *)r->tail, size);
		}
		if (ret < 0)
			return ret;
		w = (struct rpc_xsize){ .size = cpu_to_le32((uint32_t)ret) };
		memcpy(r->fixed, &w, sizeof(w));
		r->fixed_len = sizeof(w);
		r->tail_len = size ? (uint32_t)ret : 0;
		return 0;
	}
	case RPC_SETXATTR: {
		FIXED(struct rpc_xattr, f);
		xname(xn, q);
		return fs_setxattr(d->fs, c, le64_to_cpu(f.ino), xn, q->tail2, q->tail2_len,
				   (int)le32_to_cpu(f.flags));
	}
	case RPC_REMOVEXATTR: {
		FIXED(struct rpc_xattr, f);
		xname(xn, q);
		return fs_removexattr(d->fs, c, le64_to_cpu(f.ino), xn);
	}
	case RPC_ACCESS: {
		FIXED(struct rpc_access, f);
		return fs_access(d->fs, c, le64_to_cpu(f.ino), (int)(le32_to_cpu(f.mask) & 7));
	}
	}
	return -EINVAL;
}

int dispatch_apply(struct dispatch *d, const struct svc_req *sr, struct svc_reply *r)
{
	const struct rpc_req *q = &sr->req;
	struct fs_cred c = { .uid = q->uid, .gid = q->gid, .ngroups = q->ngroups };
	bool writes = rpc_op_writes(q->op) && q->op != RPC_OPEN && q->op != RPC_CREATE &&
		      q->op != RPC_RELEASE;
	int ret;

	for (uint32_t i = 0; i < q->ngroups && i < FS_GROUPS_MAX; i++)
		c.groups[i] = q->groups[i];
	/*
	 * A writing request seen before (a resend): its kept result.  (Opens
	 * are not kept: their handle belongs to a connection that is gone.)
	 */
	if (writes) {
		size_t len = 0;
		uint32_t status;

		ret = fs_reply_get(d->fs, q->client_rid, q->req_id, &status, r->fixed,
				   sizeof(r->fixed), &len);
		if (ret == 0) {
			r->status = status;
			r->fixed_len = (uint32_t)len;
			return status ? -(int)status : 0;
		}
		fs_reply_trim(d->fs, q->client_rid, q->oldest_req_id);
	}
	ret = apply(d, sr, &c, r);
	if (ret < 0)
		r->status = (uint32_t)-ret;
	if (writes && ret == 0)
		ret = fs_reply_put(d->fs, q->client_rid, q->req_id, 0, r->fixed, r->fixed_len);
	return ret;
}
