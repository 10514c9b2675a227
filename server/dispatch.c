/*
 * dispatch.c - the op table's server half: one handler per op, do_NAME,
 * each a translation between the op's wire structs (proto.h) and one call
 * of the filesystem logic (fs.h).  The POSIX rules are fs.h's alone; a
 * handler only decodes, calls and encodes.
 *
 * Open files: ops that take a handle (OPEN, CREATE) hand out an fh that
 * this file keeps until RELEASE or until the connection goes; while any
 * handle holds an inode, its last unlink keeps it as an orphan (fs.h), and
 * the last release deletes it.  A new server takes back the open files its
 * mounts name again in their HOLDS; the orphans no mount named by the end
 * of its start's grace are deleted then (dispatch_purge).
 *
 * Results of the ops the table marks replay are kept in the store's
 * replies table, in the same savepoint as the change, and a request that
 * arrives again with the same (client, request id) gets the kept reply
 * instead of being applied twice.  Each request says the oldest id its
 * client still waits for; older results are dropped.
 */
#include "server/service.h"

#include "common/common.h"
#include "common/u64map.h"
#include "server/fs.h"
#include "server/handles.h"
#include "server/store.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdlib.h>

/* The wire's bits are the filesystem's: dispatch passes them through. */
static_assert(RPC_SET_MODE == FS_SET_MODE && RPC_SET_UID == FS_SET_UID &&
	      RPC_SET_GID == FS_SET_GID && RPC_SET_SIZE == FS_SET_SIZE &&
	      RPC_SET_ATIME == FS_SET_ATIME && RPC_SET_MTIME == FS_SET_MTIME &&
	      RPC_SET_ATIME_NOW == FS_SET_ATIME_NOW && RPC_SET_MTIME_NOW == FS_SET_MTIME_NOW &&
	      RPC_SET_CTIME == FS_SET_CTIME, "setattr bits");
static_assert(RPC_RENAME_NOREPLACE == FS_RENAME_NOREPLACE &&
	      RPC_RENAME_EXCHANGE == FS_RENAME_EXCHANGE, "rename flags");

struct dispatch {
	struct store *store;
	struct fs *fs;
	struct handles *handles;     /* every mount's open files */
	/* orphans whose last handle went: deleted in the next writing batch */
	uint64_t reap[SVC_REAP_MAX];
	uint32_t nreap;
	uint32_t nreap_flushed;      /* nreap before the open transaction's flush */
	/* handles the open writing transaction took: closed again if it does not commit */
	struct taken {
		uint64_t rid, fh, ino;
	} *taken;
	uint32_t ntaken, taken_cap;
	bool in_txn;
	struct svc_req *cur;         /* the request being applied: what it changes goes there */
	struct fs_lock_waits waits;  /* blocked fcntl lock owners that keep asking: deadlocks */
	/* mounts with a blocked lock request on an inode, as their asking says */
	struct sleeper {
		uint64_t rid, ino;
		mono_ns at;
	} *sleepers;
	uint32_t nsleepers, capsleepers;
	/* who is to be told that a lock it waits for was let go, once that commits */
	struct svc_lock_wake *wakes;
	uint32_t nwakes, capwakes;
	bool locks_changed;          /* since the gauge last counted them */
	uint64_t locks_held;         /* (the gauge) */
	uint32_t breaks;             /* SVC_BREAK_*: the simulator's planted bugs */
	bool purging;                /* dispatch_purge runs */
	bool grace_over;             /* the start's grace ended (dispatch_purge ran) */
	void (*now)(void *arg, struct fs_time *t); /* the simulator's clock, or NULL */
	void *now_arg;
};

static void clock_now(void *arg, struct fs_time *t)
{
	struct dispatch *d = arg;

	d->now(d->now_arg, t);
}

/*
 * Is ino open on some mount?  Until the start's grace ends, any file may
 * be: a mount that held it under an earlier server may not have named it
 * again yet.  So until then a last unlink always keeps the inode, as an
 * orphan, and the grace's purge deletes the ones nobody named.
 */
static bool is_open(void *arg, uint64_t ino)
{
	struct dispatch *d = arg;

	if (d->purging && (d->breaks & SVC_BREAK_PURGE_OPEN))
		return false;
	if (!d->grace_over && !d->purging)
		return true;
	return handles_ino_open(d->handles, ino);
}

/*
 * Whether the writer's own kernel changed its cached pages of what q
 * changed just as the server did: it does for a write through the page
 * cache and for a setattr (a truncate cuts its pages too); not for a
 * direct write (O_APPEND and O_DIRECT opens), nor for what the server does
 * on its own (copy_file_range, fallocate, an O_TRUNC open).
 */
static bool writer_pages(const struct rpc_req *q)
{
	struct rpc_io io;

	if (q->op == RPC_SETATTR)
		return true;
	if (q->op != RPC_WRITE)
		return false;
	memcpy(&io, q->fixed, sizeof(io));
	return (le32_to_cpu(io.flags) & (O_APPEND | O_DIRECT)) == 0;
}

/* The filesystem changed something for the request being applied: note it (once). */
static void on_changed(void *arg, uint64_t ino, const char *name, size_t namelen)
{
	struct svc_req *r = ((struct dispatch *)arg)->cur;
	struct coh_change ch = { .kind = name ? RPC_INVAL_ENTRY : RPC_INVAL_INODE, .ino = ino,
				 .name = name, .namelen = (uint32_t)namelen };

	if (r == NULL)
		return; /* deferred work (access times, orphans): nothing a kernel caches */
	ch.writer_pages = name == NULL && writer_pages(&r->req);
	for (uint32_t i = 0; i < r->nchanges; i++)
		if (r->changes[i].kind == ch.kind && r->changes[i].ino == ino &&
		    r->changes[i].namelen == ch.namelen &&
		    (name == NULL || memcmp(r->changes[i].name, name, namelen) == 0))
			return;
	if (r->nchanges < SVC_CHANGES_MAX)
		r->changes[r->nchanges++] = ch;
	else
		r->changes_overflow = true;
}

int dispatch_open(struct store *st, const struct exec_config *cfg, struct dispatch **out)
{
	struct dispatch *d = calloc(1, sizeof(*d));
	struct fs_hooks hooks = { .now = cfg->now ? clock_now : NULL, .is_open = is_open,
				  .changed = on_changed };
	int ret;

	*out = NULL;
	if (d == NULL)
		return -ENOMEM;
	d->store = st;
	d->breaks = cfg->breaks;
	d->now = cfg->now;
	d->now_arg = cfg->now_arg;
	d->locks_changed = true; /* (the gauge counts what an earlier server left) */
	hooks.arg = d;
	ret = handles_create(&d->handles);
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
	handles_destroy(d->handles);
	fs_lock_waits_free(&d->waits);
	free(d->sleepers);
	free(d->wakes);
	free(d->taken);
	free(d);
}

/* ---- open files ---- */

/*
 * An inode lost its last handle: an orphan is queued and deleted in the
 * next writing batch (a close must not cost a commit of its own; the
 * executor then runs that batch soon).  A full queue leaves it to the
 * next purge.
 */
static void last_closed(void *arg, uint64_t ino)
{
	struct dispatch *d = arg;

	if (!d->grace_over) /* (until then every file may be open: the purge takes it) */
		return;
	if (fs_orphan_is(d->fs, ino) > 0 && d->nreap < ARRAY_SIZE(d->reap))
		d->reap[d->nreap++] = ino;
}

static bool opens_for_writing(int flags)
{
	return (flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR;
}

/* (rid, fh) opens ino; in a writing transaction, noted so that it can be undone. */
static int take(struct dispatch *d, uint64_t rid, uint64_t fh, uint64_t ino, int flags)
{
	int ret = handles_open(d->handles, rid, fh, ino, opens_for_writing(flags));

	if (ret <= 0 || !d->in_txn)
		return ret < 0 ? ret : 0;
	if (d->ntaken == d->taken_cap) {
		uint32_t cap = d->taken_cap ? d->taken_cap * 2 : 16;
		struct taken *t = realloc(d->taken, cap * sizeof(*t));

		if (t == NULL) {
			handles_close(d->handles, rid, fh, ino);
			return -ENOMEM;
		}
		d->taken = t;
		d->taken_cap = cap;
	}
	d->taken[d->ntaken++] = (struct taken){ .rid = rid, .fh = fh, .ino = ino };
	return 0;
}

void dispatch_txn_begin(struct dispatch *d)
{
	d->in_txn = true;
	d->ntaken = 0;
	d->nreap_flushed = d->nreap;
}

void dispatch_txn_end(struct dispatch *d, bool committed)
{
	if (!committed) {
		/* what it opened is not there (CREATE) or not truncated: its handles go */
		for (uint32_t i = d->ntaken; i-- > 0;)
			handles_close(d->handles, d->taken[i].rid, d->taken[i].fh, d->taken[i].ino);
		/* the orphans its flush deleted are queued again (access times it wrote are lost) */
		d->nreap = MAX(d->nreap, d->nreap_flushed);
	}
	d->in_txn = false;
	d->ntaken = 0;
}

void dispatch_drop_deferred(struct dispatch *d)
{
	if (d->nreap > 0)
		log_warn("server", "%u orphans could not be deleted now; the next purge tries again",
			 d->nreap);
	d->nreap = 0;
}

int dispatch_holds(struct dispatch *d, uint64_t rid, const struct rpc_hold *holds, uint32_t n)
{
	uint32_t refused = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct rpc_hold h;

		memcpy(&h, &holds[i], sizeof(h));
		if (handles_open(d->handles, rid, le64_to_cpu(h.fh), le64_to_cpu(h.ino),
				 opens_for_writing((int)le32_to_cpu(h.flags))) < 0)
			refused++;
	}
	if (refused > 0)
		log_warn("server", "mount %016" PRIx64 ": %u of the %u files it holds open could not be "
			 "taken back", rid, refused, n);
	return 0;
}

/* ---- lock waiters: who is told when a lock is let go ---- */

/* rid has a waiter blocked on ino (it asked just now). */
static void sleeper_note(struct dispatch *d, uint64_t rid, uint64_t ino, mono_ns now)
{
	struct sleeper *sl;

	for (uint32_t i = 0; i < d->nsleepers; i++)
		if (d->sleepers[i].rid == rid && d->sleepers[i].ino == ino) {
			d->sleepers[i].at = now;
			return;
		}
	for (uint32_t i = 0; i < d->nsleepers;) /* (the stale go: they stopped asking) */
		if (now - d->sleepers[i].at > FS_LOCK_WAIT_STALE_NS)
			d->sleepers[i] = d->sleepers[--d->nsleepers];
		else
			i++;
	if (d->nsleepers == d->capsleepers) {
		uint32_t cap = d->capsleepers ? d->capsleepers * 2 : 16;

		if (cap > FS_LOCK_WAITS_MAX ||
		    (sl = realloc(d->sleepers, cap * sizeof(*sl))) == NULL)
			return; /* (then it is not told, and asks again in its turn) */
		d->sleepers = sl;
		d->capsleepers = cap;
	}
	d->sleepers[d->nsleepers++] = (struct sleeper){ .rid = rid, .ino = ino, .at = now };
}

/* A lock on ino (0: on any inode) was let go: its sleepers are to be told. */
static void sleepers_wake(struct dispatch *d, uint64_t ino)
{
	for (uint32_t i = 0; i < d->nsleepers;) {
		struct sleeper *sl = &d->sleepers[i];
		struct svc_lock_wake *w;

		if (ino != 0 && sl->ino != ino) {
			i++;
			continue;
		}
		if (d->nwakes == d->capwakes) {
			uint32_t cap = d->capwakes ? d->capwakes * 2 : 16;

			if ((w = realloc(d->wakes, cap * sizeof(*w))) == NULL)
				return;
			d->wakes = w;
			d->capwakes = cap;
		}
		d->wakes[d->nwakes++] = (struct svc_lock_wake){ .rid = sl->rid, .ino = sl->ino };
		*sl = d->sleepers[--d->nsleepers]; /* (told once: it notes itself again) */
	}
}

void dispatch_lock_gauges(struct dispatch *d, uint64_t *held, uint64_t *waiters)
{
	mono_ns now = mono_now();

	if (d->locks_changed && fs_locks_count(d->fs, &d->locks_held) == 0)
		d->locks_changed = false;
	*held = d->locks_held;
	*waiters = 0;
	for (uint32_t i = 0; i < d->nsleepers; i++)
		*waiters += now - d->sleepers[i].at <= FS_LOCK_WAIT_STALE_NS;
}

uint32_t dispatch_lock_wakes(struct dispatch *d, struct svc_lock_wake *out, uint32_t max,
			     bool discard)
{
	uint32_t n = discard ? 0 : MIN(max, d->nwakes);

	if (discard)
		d->nwakes = 0;
	if (n == 0)
		return 0;
	memcpy(out, d->wakes, n * sizeof(*out));
	memmove(d->wakes, d->wakes + n, (d->nwakes - n) * sizeof(*out));
	d->nwakes -= n;
	return n;
}

int dispatch_gone(struct dispatch *d, uint64_t rid, bool fenced, bool bye)
{
	int ret, dropped;
	bool for_good;

	handles_close_rid(d->handles, rid, last_closed, d);
	fs_lock_wait_drop_rid(&d->waits, rid);
	ret = dropped = fs_locks_drop_client(d->fs, rid);
	if (dropped > 0) {
		sleepers_wake(d, 0);
		d->locks_changed = true;
	}
	for_good = ret > 0 || (ret == 0 && fenced);
	if (for_good) /* it may never act on what it held again */
		ret = fs_client_gone(d->fs, rid);
	/*
	 * (A mount away past its grace that held nothing may come back, its
	 * calls in flight with it: their kept replies stay, at most its window
	 * of calls, so a resend is answered and never applied twice; found by
	 * fusefs-wsim.)
	 */
	if (ret >= 0 && (bye || for_good))
		ret = fs_reply_forget_client(d->fs, rid);
	return ret < 0 ? ret : dropped;
}

bool dispatch_was_gone(struct dispatch *d, uint64_t rid)
{
	return fs_client_was_gone(d->fs, rid) == 1;
}

int dispatch_purge(struct dispatch *d)
{
	int ret;

	d->purging = true;
	ret = fs_orphans_purge(d->fs);
	d->purging = false;
	d->grace_over = true;

	if (ret > 0)
		log_info("server", "deleted %d files left unlinked but open that no mount took back", ret);
	return ret < 0 ? ret : 0;
}

bool dispatch_mount_holds(struct dispatch *d, uint64_t rid)
{
	/* (an error reading says it holds: it is fenced rather than robbed) */
	return handles_of(d->handles, rid) > 0 || fs_locks_held_by(d->fs, rid) != 0;
}

int dispatch_lock_holders(struct dispatch *d, uint64_t **rids, uint32_t *n)
{
	return fs_locks_rids(d->fs, rids, n);
}

/*
 * Who a mount is, as the store keeps it (lockers.who): little-endian, so
 * that any later server reads it.
 */
struct who_rec {
	struct le64 pid;
	struct le64 start_ticks;
	struct le64 pidns;
	uint8_t boot_id[FUSEFS_BOOT_ID_BYTES];
	char host[FUSEFS_HOSTNAME_BYTES];
	uint8_t family;
	uint8_t pad;
	struct le16 port;
	uint8_t addr[16];
	uint8_t pad2[4];
};
static_assert(sizeof(struct who_rec) == 128, "who record");

static void who_encode(const struct svc_mount_id *w, struct who_rec *r)
{
	*r = (struct who_rec){ .pid = cpu_to_le64(w->holder.pid),
			       .start_ticks = cpu_to_le64(w->holder.start_ticks),
			       .pidns = cpu_to_le64(w->holder.pidns), .family = w->addr.family,
			       .port = cpu_to_le16(w->addr.port) };
	memcpy(r->boot_id, w->holder.boot_id, sizeof(r->boot_id));
	memcpy(r->host, w->holder.host, sizeof(r->host));
	r->host[sizeof(r->host) - 1] = '\0';
	memcpy(r->addr, w->addr.bytes, sizeof(r->addr));
}

int dispatch_mount_who(struct dispatch *d, uint64_t rid, struct svc_mount_id *w)
{
	struct who_rec r;
	int ret = fs_locker_get(d->fs, rid, &r, sizeof(r));

	if (ret < 0)
		return ret;
	*w = (struct svc_mount_id){
		.holder = { .pid = le64_to_cpu(r.pid), .start_ticks = le64_to_cpu(r.start_ticks),
			    .pidns = le64_to_cpu(r.pidns) },
		.addr = { .family = r.family, .port = le16_to_cpu(r.port) },
	};
	memcpy(w->holder.boot_id, r.boot_id, sizeof(r.boot_id));
	memcpy(w->holder.host, r.host, sizeof(r.host));
	w->holder.host[sizeof(w->holder.host) - 1] = '\0';
	memcpy(w->addr.bytes, r.addr, sizeof(r.addr));
	return 0;
}

int dispatch_flush_deferred(struct dispatch *d)
{
	int ret = 0;

	d->nreap_flushed = d->nreap;
	while (d->nreap > 0 && ret == 0)
		ret = fs_orphan_release(d->fs, d->reap[--d->nreap]);
	return ret == 0 ? fs_atime_flush(d->fs) : ret;
}

int dispatch_release_pending(struct dispatch *d)
{
	uint64_t ino;

	return fs_release_pending(d->fs, &ino);
}

int dispatch_release(struct dispatch *d, uint32_t max)
{
	return fs_release_step(d->fs, max);
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

static struct fs_time time_in(struct le64 sec, struct le32 nsec)
{
	return (struct fs_time){ (int64_t)le64_to_cpu(sec), le32_to_cpu(nsec) };
}

/* ---- the handlers ---- */

/* What every handler gets besides its op's request and reply structs. */
struct op_ctx {
	struct dispatch *d;
	struct fs *fs;
	const struct rpc_req *q;
	const char *name1, *name2;   /* the tails (not terminated: their lengths are q's) */
	uint64_t rid;                /* the mount's: its handles are named by it */
	const struct svc_mount_id *who; /* who the mount is (NULL: not known) */
	struct fs_cred cred;
	struct svc_reply *reply;     /* for a reply tail */
};

/* A reply tail of up to the most the request may get. */
static int tail_alloc(struct op_ctx *x)
{
	uint32_t n = rpc_req_reply_tail_max(x->q);

	x->reply->tail = malloc(n ? n : 1);
	return x->reply->tail ? 0 : -ENOMEM;
}

/* An entry's reply from an fs call's result. */
static int entry_out(int ret, const struct fs_attr *a, struct rpc_entry *out)
{
	if (ret == 0)
		attr_out(a, &out->attr);
	return ret;
}

#define X(op, name, req, rep, ...) \
	static int do_##name(struct op_ctx *x, const struct req *in, struct rep *out);
RPC_OPS(X)
#undef X

static int do_lookup(struct op_ctx *x, const struct rpc_ino *in, struct rpc_entry *out)
{
	struct fs_attr a;

	return entry_out(fs_lookup(x->fs, &x->cred, le64_to_cpu(in->ino), x->name1, x->q->tail1_len,
				   &a), &a, out);
}

static int do_getattr(struct op_ctx *x, const struct rpc_ino *in, struct rpc_attr *out)
{
	struct fs_attr a;
	int ret = fs_getattr(x->fs, &x->cred, le64_to_cpu(in->ino), &a);

	if (ret == 0)
		attr_out(&a, out);
	return ret;
}

static int do_setattr(struct op_ctx *x, const struct rpc_setattr *in, struct rpc_attr *out)
{
	struct fs_setattr sa = {
		.valid = le32_to_cpu(in->valid), .mode = le32_to_cpu(in->mode),
		.uid = le32_to_cpu(in->uid), .gid = le32_to_cpu(in->gid), .size = le64_to_cpu(in->size),
		.atime = time_in(in->atime_sec, in->atime_nsec),
		.mtime = time_in(in->mtime_sec, in->mtime_nsec),
		.ctime = time_in(in->ctime_sec, in->ctime_nsec),
	};
	struct fs_attr a;
	int ret;

	if (sa.valid & ~RPC_SET_KNOWN)
		return -EINVAL;
	if (handles_writes(x->d->handles, x->rid, le64_to_cpu(in->fh), le64_to_cpu(in->ino)))
		sa.valid |= FS_SET_BY_WRITER;
	ret = fs_setattr(x->fs, &x->cred, le64_to_cpu(in->ino), &sa, &a);
	if (ret == 0)
		attr_out(&a, out);
	return ret;
}

static int do_mknod(struct op_ctx *x, const struct rpc_make *in, struct rpc_entry *out)
{
	struct fs_attr a;

	x->cred.umask = le32_to_cpu(in->umask);
	return entry_out(fs_mknod(x->fs, &x->cred, le64_to_cpu(in->parent), x->name1,
				  x->q->tail1_len, le32_to_cpu(in->mode), le64_to_cpu(in->rdev), &a),
			 &a, out);
}

static int do_mkdir(struct op_ctx *x, const struct rpc_make *in, struct rpc_entry *out)
{
	struct fs_attr a;

	x->cred.umask = le32_to_cpu(in->umask);
	return entry_out(fs_mkdir(x->fs, &x->cred, le64_to_cpu(in->parent), x->name1,
				  x->q->tail1_len, le32_to_cpu(in->mode), &a), &a, out);
}

static int do_unlink(struct op_ctx *x, const struct rpc_ino *in, struct rpc_none *out)
{
	(void)out;
	return fs_unlink(x->fs, &x->cred, le64_to_cpu(in->ino), x->name1, x->q->tail1_len);
}

static int do_rmdir(struct op_ctx *x, const struct rpc_ino *in, struct rpc_none *out)
{
	(void)out;
	return fs_rmdir(x->fs, &x->cred, le64_to_cpu(in->ino), x->name1, x->q->tail1_len);
}

static int do_symlink(struct op_ctx *x, const struct rpc_ino *in, struct rpc_entry *out)
{
	struct fs_attr a;

	return entry_out(fs_symlink(x->fs, &x->cred, le64_to_cpu(in->ino), x->name1,
				    x->q->tail1_len, x->name2, x->q->tail2_len, &a), &a, out);
}

static int do_readlink(struct op_ctx *x, const struct rpc_ino *in, struct rpc_none *out)
{
	size_t len = 0;
	int ret = tail_alloc(x);

	(void)out;
	if (ret == 0)
		ret = fs_readlink(x->fs, &x->cred, le64_to_cpu(in->ino), (char *)x->reply->tail,
				  rpc_req_reply_tail_max(x->q), &len);
	x->reply->tail_len = (uint32_t)len;
	return ret;
}

static int do_rename(struct op_ctx *x, const struct rpc_rename *in, struct rpc_none *out)
{
	(void)out;
	return fs_rename(x->fs, &x->cred, le64_to_cpu(in->parent), x->name1, x->q->tail1_len,
			 le64_to_cpu(in->newparent), x->name2, x->q->tail2_len,
			 le32_to_cpu(in->flags));
}

static int do_link(struct op_ctx *x, const struct rpc_link *in, struct rpc_entry *out)
{
	struct fs_attr a;

	return entry_out(fs_link(x->fs, &x->cred, le64_to_cpu(in->ino), le64_to_cpu(in->newparent),
				 x->name1, x->q->tail1_len, &a), &a, out);
}

static int do_open(struct op_ctx *x, const struct rpc_open *in, struct rpc_opened *out)
{
	int flags = (int)le32_to_cpu(in->flags);
	struct fs_attr a;
	int ret = fs_open(x->fs, &x->cred, le64_to_cpu(in->ino), flags, &a);

	if (ret == 0)
		ret = take(x->d, x->rid, le64_to_cpu(in->fh), a.ino, flags);
	out->fh = in->fh;
	return ret;
}

static int do_create(struct op_ctx *x, const struct rpc_make *in, struct rpc_created *out)
{
	int flags = (int)le32_to_cpu(in->flags);
	struct fs_attr a;
	int ret;

	x->cred.umask = le32_to_cpu(in->umask);
	ret = fs_create(x->fs, &x->cred, le64_to_cpu(in->parent), x->name1, x->q->tail1_len,
			le32_to_cpu(in->mode), flags, &a);
	if (ret == 0)
		ret = take(x->d, x->rid, le64_to_cpu(in->fh), a.ino, flags);
	if (ret == 0) {
		attr_out(&a, &out->entry.attr);
		out->opened.fh = in->fh;
	}
	return ret;
}

static int do_read(struct op_ctx *x, const struct rpc_io *in, struct rpc_none *out)
{
	size_t got = 0;
	int ret = tail_alloc(x);

	(void)out;
	if (ret == 0)
		ret = fs_read(x->fs, le64_to_cpu(in->ino), le64_to_cpu(in->offset),
			      rpc_req_reply_tail_max(x->q), x->reply->tail, &got);
	x->reply->tail_len = (uint32_t)got;
	return ret;
}

static int do_write(struct op_ctx *x, const struct rpc_io *in, struct rpc_written *out)
{
	struct fs_attr a;
	int ret = fs_write(x->fs, &x->cred, le64_to_cpu(in->ino), le64_to_cpu(in->offset),
			   (int)le32_to_cpu(in->flags), x->q->tail1, x->q->tail1_len, &a);

	if (ret == 0) {
		attr_out(&a, &out->attr);
		out->size = cpu_to_le32(x->q->tail1_len);
	}
	return ret;
}

static int do_release(struct op_ctx *x, const struct rpc_release *in, struct rpc_none *out)
{
	(void)out;
	if (handles_close(x->d->handles, x->rid, le64_to_cpu(in->fh), le64_to_cpu(in->ino)) == 1)
		last_closed(x->d, le64_to_cpu(in->ino));
	return 0;
}

static int do_fallocate(struct op_ctx *x, const struct rpc_fallocate *in, struct rpc_none *out)
{
	(void)out;
	return fs_fallocate(x->fs, &x->cred, le64_to_cpu(in->ino), (int)le32_to_cpu(in->mode),
			    le64_to_cpu(in->offset), le64_to_cpu(in->length),
			    handles_writes(x->d->handles, x->rid, le64_to_cpu(in->fh),
					   le64_to_cpu(in->ino)));
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

static int do_readdir(struct op_ctx *x, const struct rpc_readdir *in, struct rpc_none *out)
{
	struct rd_ctx rd = { .r = x->reply, .cap = rpc_req_reply_tail_max(x->q),
			     .plus = le32_to_cpu(in->plus) != 0 };
	int ret = tail_alloc(x);

	(void)out;
	if (ret == 0)
		ret = fs_readdir(x->fs, &x->cred, le64_to_cpu(in->ino), le64_to_cpu(in->cookie),
				 rd.plus, rd_emit, &rd);
	return ret;
}

static int do_statfs(struct op_ctx *x, const struct rpc_ino *in, struct rpc_statfs *out)
{
	struct fs_statfs sf;
	int ret = fs_statfs(x->fs, &sf);

	(void)in;
	if (ret < 0)
		return ret;
	*out = (struct rpc_statfs){
		.blocks = cpu_to_le64(sf.blocks), .bfree = cpu_to_le64(sf.bfree),
		.bavail = cpu_to_le64(sf.bavail), .files = cpu_to_le64(sf.files),
		.ffree = cpu_to_le64(sf.ffree), .bsize = cpu_to_le32((uint32_t)sf.bsize),
		.namemax = cpu_to_le32(sf.namemax),
	};
	return 0;
}

/* An xattr name (tail1) as the C string the xattr calls take. */
static const char *xname(const struct op_ctx *x, char buf[RPC_XATTR_NAME_MAX + 1])
{
	memcpy(buf, x->q->tail1, x->q->tail1_len);
	buf[x->q->tail1_len] = '\0';
	return buf;
}

/* What getxattr and listxattr answer: the length, and the bytes when a buffer was given. */
static int xattr_out(struct op_ctx *x, int ret, struct rpc_xsize *out)
{
	if (ret < 0)
		return ret;
	out->size = cpu_to_le32((uint32_t)ret);
	x->reply->tail_len = rpc_req_reply_tail_max(x->q) ? (uint32_t)ret : 0;
	return 0;
}

static int do_getxattr(struct op_ctx *x, const struct rpc_xattr *in, struct rpc_xsize *out)
{
	char name[RPC_XATTR_NAME_MAX + 1];
	int ret = tail_alloc(x);

	if (ret == 0)
		ret = fs_getxattr(x->fs, &x->cred, le64_to_cpu(in->ino), xname(x, name), x->reply->tail,
				  rpc_req_reply_tail_max(x->q));
	return xattr_out(x, ret, out);
}

static int do_listxattr(struct op_ctx *x, const struct rpc_xattr *in, struct rpc_xsize *out)
{
	int ret = tail_alloc(x);

	if (ret == 0)
		ret = fs_listxattr(x->fs, &x->cred, le64_to_cpu(in->ino), (char *)x->reply->tail,
				   rpc_req_reply_tail_max(x->q));
	return xattr_out(x, ret, out);
}

static int do_setxattr(struct op_ctx *x, const struct rpc_xattr *in, struct rpc_none *out)
{
	char name[RPC_XATTR_NAME_MAX + 1];

	(void)out;
	return fs_setxattr(x->fs, &x->cred, le64_to_cpu(in->ino), xname(x, name), x->q->tail2,
			   x->q->tail2_len, (int)le32_to_cpu(in->flags));
}

static int do_removexattr(struct op_ctx *x, const struct rpc_xattr *in, struct rpc_none *out)
{
	char name[RPC_XATTR_NAME_MAX + 1];

	(void)out;
	return fs_removexattr(x->fs, &x->cred, le64_to_cpu(in->ino), xname(x, name));
}

static int do_access(struct op_ctx *x, const struct rpc_access *in, struct rpc_none *out)
{
	(void)out;
	return fs_access(x->fs, &x->cred, le64_to_cpu(in->ino), (int)(le32_to_cpu(in->mask) & 7));
}

/*
 * The table: each op's request copied out of the frame (aligned), its
 * handler run, its reply struct kept as the reply's fixed part.
 */
/* A lock as the wire gives it, owned by the sender's mount. */
static int lock_in(const struct op_ctx *x, const struct rpc_lock *in, struct fs_lock *l,
		   uint32_t *kind)
{
	uint32_t flags = le32_to_cpu(in->flags);

	if (flags & ~RPC_LOCK_FLAGS)
		return -EINVAL;
	*kind = flags & RPC_LOCK_FLOCK ? FS_LOCK_FLOCK : FS_LOCK_POSIX;
	*l = (struct fs_lock){ .rid = x->rid, .owner = le64_to_cpu(in->owner),
			       .start = le64_to_cpu(in->start), .end = le64_to_cpu(in->end),
			       .type = le32_to_cpu(in->type), .pid = le32_to_cpu(in->pid) };
	return 0;
}

static int do_getlk(struct op_ctx *x, const struct rpc_lock *in, struct rpc_lock *out)
{
	const uint32_t flags = le32_to_cpu(in->flags);
	const uint64_t owner = le64_to_cpu(in->owner);
	struct fs_lock_waits *ws = &x->d->waits;
	struct fs_lock l;
	uint32_t kind;
	int ret = lock_in(x, in, &l, &kind);

	if (ret == 0)
		ret = fs_getlk(x->fs, le64_to_cpu(in->ino), kind, &l);
	if (ret < 0)
		return ret;
	/* a blocked F_SETLKW asking again: whom it waits for, and is that a cycle? */
	if ((flags & RPC_LOCK_WAITING) && !(flags & RPC_LOCK_WAIT_END) && l.type != F_UNLCK)
		sleeper_note(x->d, x->rid, le64_to_cpu(in->ino), mono_now());
	if (!(flags & RPC_LOCK_WAITING) || kind != FS_LOCK_POSIX)
		; /* (an F_GETLK: a question, nothing more) */
	else if ((flags & RPC_LOCK_WAIT_END) || l.type == F_UNLCK)
		fs_lock_wait_end(ws, x->rid, owner);
	else if (fs_lock_wait(ws, x->rid, owner, l.rid, l.owner, mono_now()))
		return -EDEADLK;
	*out = (struct rpc_lock){ .ino = in->ino, .owner = cpu_to_le64(l.owner),
				  .start = cpu_to_le64(l.start), .end = cpu_to_le64(l.end),
				  .type = cpu_to_le32(l.type), .flags = in->flags,
				  /* a pid means something only on its own mount */
				  .pid = cpu_to_le32(l.rid == x->rid ? l.pid : 0) };
	return 0;
}

static int do_setlk(struct op_ctx *x, const struct rpc_lock *in, struct rpc_none *out)
{
	struct fs_lock l;
	struct who_rec w;
	uint32_t kind;
	int ret = lock_in(x, in, &l, &kind);

	(void)out;
	if (ret == 0)
		ret = fs_setlk(x->fs, le64_to_cpu(in->ino), kind, &l);
	if (ret == 0) {
		fs_lock_wait_end(&x->d->waits, x->rid, l.owner); /* (its wait, if any, is over) */
		x->d->locks_changed = true;
	}
	if (ret == 0 && l.type != F_WRLCK) /* (an unlock, or a write lock turned read) */
		sleepers_wake(x->d, le64_to_cpu(in->ino));
	if (ret == 0 && l.type != F_UNLCK && x->who != NULL) {
		/* who it is, kept with its locks: a later server may have to fence it */
		who_encode(x->who, &w);
		ret = fs_locker_note(x->fs, x->rid, &w, sizeof(w));
	}
	return ret;
}

static int do_lseek(struct op_ctx *x, const struct rpc_lseek *in, struct rpc_lseek *out)
{
	uint64_t at;
	int ret = fs_lseek(x->fs, le64_to_cpu(in->ino), le64_to_cpu(in->offset),
			   (int)le32_to_cpu(in->whence), &at);

	if (ret < 0)
		return ret;
	*out = *in;
	out->offset = cpu_to_le64(at);
	return 0;
}

static int do_copy(struct op_ctx *x, const struct rpc_copy *in, struct rpc_written *out)
{
	uint64_t ino_out = le64_to_cpu(in->ino_out), copied;
	struct fs_attr a;
	int ret;

	if (!handles_writes(x->d->handles, x->rid, le64_to_cpu(in->fh_out), ino_out))
		return -EBADF; /* (the out file's handle must be open for writing) */
	ret = fs_copy_range(x->fs, &x->cred, le64_to_cpu(in->ino_in), le64_to_cpu(in->off_in),
			    ino_out, le64_to_cpu(in->off_out), le64_to_cpu(in->len), &copied, &a);
	if (ret < 0)
		return ret;
	attr_out(&a, &out->attr);
	out->size = cpu_to_le32((uint32_t)copied);
	return 0;
}

typedef int (*run_fn)(struct op_ctx *x);

#define X(op, name, req, rep, ...)                                     \
	static int run_##name(struct op_ctx *x)                        \
	{                                                              \
		struct req in;                                         \
		struct rep out;                                        \
		int ret;                                               \
                                                                       \
		memcpy(&in, x->q->fixed, sizeof(in));                  \
		memset(&out, 0, sizeof(out));                          \
		ret = do_##name(x, &in, &out);                         \
		if (ret == 0) {                                        \
			memcpy(&x->reply->fixed, &out, sizeof(out));   \
			x->reply->fixed_len = sizeof(out);             \
		}                                                      \
		return ret;                                            \
	}
RPC_OPS(X)
#undef X

static const run_fn handlers[RPC_OP_END] = {
#define X(op, name, ...) [RPC_##op] = run_##name,
	RPC_OPS(X)
#undef X
};

/* ---- one request ---- */

/* A resend of a request whose result the replies table keeps: that result.  1, 0 or -errno. */
static int replayed(struct dispatch *d, const struct rpc_req *q, struct svc_reply *r)
{
	size_t len = 0;
	uint32_t status;
	int ret = fs_reply_get(d->fs, q->client_rid, q->req_id, &status, &r->fixed,
			       sizeof(r->fixed), &len);

	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	r->status = status;
	r->fixed_len = (uint32_t)len;
	return 1;
}

/*
 * A resent OPEN or CREATE answered from the replies table: the handle it
 * made the first time (on an earlier server, maybe) is made again, named
 * as the request names it.
 */
static void retake(struct dispatch *d, const struct rpc_req *q, const struct svc_reply *r)
{
	uint64_t fh, ino;
	int flags;

	if (q->op == RPC_CREATE) {
		struct rpc_make m;

		memcpy(&m, q->fixed, sizeof(m));
		fh = le64_to_cpu(m.fh);
		flags = (int)le32_to_cpu(m.flags);
		ino = le64_to_cpu(r->fixed.create.entry.attr.ino);
	} else {
		struct rpc_open o;

		assert(q->op == RPC_OPEN); /* (the only other op that takes a handle) */
		memcpy(&o, q->fixed, sizeof(o));
		fh = le64_to_cpu(o.fh);
		flags = (int)le32_to_cpu(o.flags);
		ino = le64_to_cpu(o.ino);
	}
	take(d, q->client_rid, fh, ino, flags);
}

int dispatch_apply(struct dispatch *d, struct svc_req *sr)
{
	const struct rpc_req *q = &sr->req;
	const struct rpc_op_info *info = rpc_op_info(q->op);
	struct op_ctx x = {
		.d = d, .fs = d->fs, .q = q, .rid = q->client_rid, .who = sr->who,
		.reply = &sr->reply,
		.name1 = (const char *)q->tail1, .name2 = (const char *)q->tail2,
		.cred = { .uid = q->uid, .gid = q->gid, .ngroups = MIN(q->ngroups, FS_GROUPS_MAX) },
	};
	bool replay;
	int ret;

	if (info == NULL) {
		ret = -EINVAL;
		goto out;
	}
	memcpy(x.cred.groups, q->groups, sizeof(x.cred.groups[0]) * x.cred.ngroups);
	replay = info->replay && rpc_req_writes(q) && !(d->breaks & SVC_BREAK_NO_REPLY_CACHE);
	if (replay) {
		ret = replayed(d, q, &sr->reply);
		if (ret > 0 && info->handle == RPC_HANDLE_TAKES && sr->reply.status == 0)
			retake(d, q, &sr->reply);
		if (ret != 0)
			goto out;
		fs_reply_trim(d->fs, q->client_rid, q->oldest_req_id);
	}
	d->cur = sr;
	ret = handlers[q->op](&x);
	d->cur = NULL;
	if (ret < 0) { /* rolled back: it changed nothing */
		sr->nchanges = 0;
		sr->changes_overflow = false;
	}
	if (replay && ret == 0)
		ret = fs_reply_put(d->fs, q->client_rid, q->req_id, 0, &sr->reply.fixed,
				   sr->reply.fixed_len);
out:
	if (ret > 0) /* answered from the replies table */
		ret = sr->reply.status ? -(int)sr->reply.status : 0;
	if (ret < 0)
		sr->reply.status = (uint32_t)-ret;
	return ret;
}
