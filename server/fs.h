/*
 * fs.h - the filesystem: POSIX rules over the store's tables, one function
 * per operation.  Pure logic over an SQLite handle: no FUSE, no sockets,
 * no device; the caller (the server's executor) owns the transaction and
 * wraps each operation in a savepoint, so an operation that fails leaves
 * nothing behind.  Every function returns 0 or a negative errno.
 *
 * The tables (fs_format creates them; docs/store.md lists them):
 *   meta      format version, next inode number, generation, inode count
 *   inodes    ino, gen, mode, uid, gid, size, nlink, times (ns), rdev,
 *             flags, parent (directories), next readdir cookie, data bytes,
 *             bytes reserved, the map: chunk ranges -> data ids
 *   dirents   (dir, name) -> ino, type, cookie: a stable per-directory
 *             cookie, so readdir offsets stay valid while entries change
 *   symlinks  ino -> target
 *   xattrs    (ino, name) -> value
 *   chunks    rowid (did << 32 | index) -> data: FS_CHUNK_BYTES of a file;
 *             an absent chunk, or the part past a short one, reads as zeros;
 *             did is the data id the file's map names for that range, so
 *             a file can drop any range at once by making it a hole
 *   orphans   inodes unlinked while open, kept until their last release
 *   freeing   (data id, from) -> to: chunk ranges no map names, still
 *             being released, a bounded number per commit
 *             (fs_release_step); a whole id is spare after
 *   spare     data ids free to be used again
 *   replies   (client rid, request id) -> status, payload: recent results,
 *             so a request retried after a failover is answered, not redone
 *
 * Inode numbers are never reused (and carry a generation besides), so an
 * old node id can never name a new file.
 */
#ifndef FUSEFS_FS_H
#define FUSEFS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "server/limits.h"

struct sqlite3;
struct fs;

#define FS_ROOT_INO 1
#define FS_FORMAT_VERSION 4
/*
 * File data chunk: 16 KiB.  A chunk is one row whose blob spills into four
 * overflow pages, so a 1 MiB write is 64 rows; a 4 KiB write inside an
 * existing chunk rewrites one page in place (incremental blob I/O), and an
 * append rewrites at most the chunk's 16 KiB (docs/store.md).
 */
#define FS_CHUNK_SHIFT 14
#define FS_CHUNK_BYTES (1u << FS_CHUNK_SHIFT)

struct fs_time {
	int64_t sec;
	uint32_t nsec;
};

struct fs_attr {
	uint64_t ino;
	uint64_t gen;
	uint64_t size;
	uint64_t blocks;   /* 512-byte units of stored data */
	uint64_t rdev;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint32_t flags;
	struct fs_time atime, mtime, ctime;
};

/* Who asks: the caller's ids, its supplementary groups and its umask (the making ops apply it). */
struct fs_cred {
	uint32_t uid;
	uint32_t gid;
	uint32_t umask;
	uint32_t ngroups;
	uint32_t groups[FS_GROUPS_MAX];
};

struct fs_hooks {
	/* the time now (wall clock); NULL: the system's */
	void (*now)(void *arg, struct fs_time *t);
	/* is the inode open somewhere (then its last unlink keeps it as an orphan)? */
	bool (*is_open)(void *arg, uint64_t ino);
	/*
	 * What an operation changes, as it changes it (for cache coherence):
	 * an inode written or deleted (name NULL), or a name in directory ino
	 * added, removed or pointed elsewhere.  NULL: nobody asks.
	 */
	void (*changed)(void *arg, uint64_t ino, const char *name, size_t namelen);
	void *arg;
};

struct fs_format_opts {
	uint32_t root_uid;
	uint32_t root_gid;
	uint32_t root_mode;   /* permission bits */
	struct fs_time now;
};

#define FS_SET_MODE      0x001u
#define FS_SET_UID       0x002u
#define FS_SET_GID       0x004u
#define FS_SET_SIZE      0x008u
#define FS_SET_ATIME     0x010u
#define FS_SET_MTIME     0x020u
#define FS_SET_ATIME_NOW 0x040u
#define FS_SET_MTIME_NOW 0x080u
#define FS_SET_CTIME     0x100u
/* the caller holds the file open for writing: the open decided, not the mode (ftruncate) */
#define FS_SET_BY_WRITER 0x200u
#define FS_SET_KNOWN     0x3ffu

struct fs_setattr {
	uint32_t valid;   /* FS_SET_* */
	uint32_t mode, uid, gid;
	uint64_t size;
	struct fs_time atime, mtime, ctime;
};

struct fs_statfs {
	uint64_t bsize;
	uint64_t blocks, bfree, bavail;
	uint64_t files, ffree;
	uint32_t namemax;
};

/* rename's flags: Linux's RENAME_* values; any other bit is EINVAL */
#define FS_RENAME_NOREPLACE 0x1u
#define FS_RENAME_EXCHANGE 0x2u

/* Create the tables and the root directory (inside the caller's transaction). */
int fs_format(struct sqlite3 *db, const struct fs_format_opts *o);
/* Prepare for operations on a formatted database: -EIO with a log line when not ours. */
int fs_attach(struct sqlite3 *db, const struct fs_hooks *hooks, struct fs **out);
void fs_detach(struct fs *fs);
/*
 * The bytes the database may use (0: no limit): an operation that grows it
 * past them fails with -ENOSPC; removing files makes room again.
 */
void fs_set_space(struct fs *fs, uint64_t bytes);
/* Tests: data ranges bigger than this go to the background (FS_RELEASE_INLINE_BYTES). */
void fs_set_release_inline(struct fs *fs, uint64_t bytes);
/* The bytes the database uses now (its pages less the free ones). */
uint64_t fs_used_bytes(struct fs *fs);

/* ---- names ---- */
/*
 * The making ops (mknod, mkdir, create) take mode less the caller's umask
 * (c->umask); a symlink is always 0777.
 */
int fs_lookup(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	      size_t namelen, struct fs_attr *out);
int fs_mknod(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	     size_t namelen, uint32_t mode, uint64_t rdev, struct fs_attr *out);
int fs_mkdir(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	     size_t namelen, uint32_t mode, struct fs_attr *out);
int fs_symlink(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	       size_t namelen, const char *target, size_t targetlen, struct fs_attr *out);
int fs_link(struct fs *fs, const struct fs_cred *c, uint64_t ino, uint64_t newparent,
	    const char *name, size_t namelen, struct fs_attr *out);
int fs_unlink(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	      size_t namelen);
int fs_rmdir(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	     size_t namelen);
int fs_rename(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	      size_t namelen, uint64_t newparent, const char *newname, size_t newnamelen,
	      uint32_t flags);
/* The target into buf (not terminated); its length in *len.  -ERANGE when it does not fit. */
int fs_readlink(struct fs *fs, const struct fs_cred *c, uint64_t ino, char *buf, size_t cap,
		size_t *len);

/* ---- attributes ---- */
int fs_getattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, struct fs_attr *out);
/* -EINVAL for valid bits beyond FS_SET_KNOWN or a time's nsec past a second. */
int fs_setattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, const struct fs_setattr *sa,
	       struct fs_attr *out);
/* access(2): mask of R_OK, W_OK, X_OK (F_OK is 0). */
int fs_access(struct fs *fs, const struct fs_cred *c, uint64_t ino, int mask);
int fs_statfs(struct fs *fs, struct fs_statfs *out);

/* ---- files ---- */
/*
 * Create name in parent and open it (flags as open(2): O_EXCL, O_TRUNC,
 * the access mode); without O_EXCL an existing file is opened instead.
 */
int fs_create(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	      size_t namelen, uint32_t mode, int flags, struct fs_attr *out);
/* Check the access mode of open(2) flags against ino, and apply O_TRUNC. */
int fs_open(struct fs *fs, const struct fs_cred *c, uint64_t ino, int flags, struct fs_attr *out);
/* Read up to len bytes at off into buf; *got is how many (short at end of file). */
int fs_read(struct fs *fs, uint64_t ino, uint64_t off, size_t len, void *buf, size_t *got);
/*
 * Write len bytes at off, or at the end of the file when flags (the open's)
 * carry O_APPEND.  A caller that is not root clears setuid/setgid.
 */
int fs_write(struct fs *fs, const struct fs_cred *c, uint64_t ino, uint64_t off, int flags,
	     const void *buf, size_t len, struct fs_attr *out);
/*
 * mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE.
 * writer: the caller holds the file open for writing (the open decided).
 */
/*
 * lseek SEEK_DATA / SEEK_HOLE from off, in whole chunks (a chunk holding
 * any byte is data; the end of the file is a hole): -ENXIO at or past the
 * end, or no data after off.  Reads only.
 */
int fs_lseek(struct fs *fs, uint64_t ino, uint64_t off, int whence, uint64_t *out);
/*
 * copy_file_range within the store: up to len bytes (at most
 * FS_COPY_MAX per call: a short copy is the caller's to go on with) from
 * in at off_in to out at off_out, one write.  *copied 0 at in's end.
 */
int fs_copy_range(struct fs *fs, const struct fs_cred *c, uint64_t in, uint64_t off_in,
		  uint64_t out, uint64_t off_out, uint64_t len, uint64_t *copied,
		  struct fs_attr *attr);
int fs_fallocate(struct fs *fs, const struct fs_cred *c, uint64_t ino, int mode, uint64_t off,
		 uint64_t len, bool writer);

/* ---- directories ---- */
/*
 * Entries of ino after cookie (0: from the start; "." and ".." come first,
 * as cookies 1 and 2), in cookie order, each given to emit with the cookie
 * to continue after it; with plus, its attributes too (else attr is NULL).
 * emit returns nonzero to stop (the entry was not taken).
 */
typedef int (*fs_emit_fn)(void *arg, const char *name, size_t namelen, uint64_t ino,
			  uint32_t mode, const struct fs_attr *attr, uint64_t cookie);
int fs_readdir(struct fs *fs, const struct fs_cred *c, uint64_t ino, uint64_t cookie, bool plus,
	       fs_emit_fn emit, void *arg);

/* ---- extended attributes ---- */
/* The value into buf (size 0: just its length).  Its length, or -errno (-ERANGE, -ENODATA). */
int fs_getxattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, const char *name,
		void *buf, size_t size);
/* flags: XATTR_CREATE, XATTR_REPLACE. */
int fs_setxattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, const char *name,
		const void *value, size_t size, int flags);
/* The names, each NUL-terminated (size 0: the length).  Its length, or -ERANGE. */
int fs_listxattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, char *buf, size_t size);
int fs_removexattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, const char *name);

/* ---- open files and orphans ---- */
/* Is ino an orphan (unlinked, kept while open)?  1, 0 or -errno.  Reads only. */
int fs_orphan_is(struct fs *fs, uint64_t ino);
/* The last handle on ino was released: an orphan goes now. */
int fs_orphan_release(struct fs *fs, uint64_t ino);
/* Delete every orphan nothing holds open (a new server's recovery); how many, or -errno. */
int fs_orphans_purge(struct fs *fs);

/*
 * ---- file locks (fs_lock.c) ----
 * fcntl (FS_LOCK_POSIX) and flock (FS_LOCK_FLOCK) locks, held in the
 * store, so they hold across mounts and failovers.  An owner is (rid, the
 * kernel's lock owner); ranges are inclusive, end at most FS_LOCK_END.
 */
#define FS_LOCK_POSIX 0u
#define FS_LOCK_FLOCK 1u
#define FS_LOCK_END ((uint64_t)INT64_MAX)

struct fs_lock {
	uint64_t rid, owner;
	uint64_t start, end;
	uint32_t type;               /* F_RDLCK, F_WRLCK, F_UNLCK */
	uint32_t pid;                /* the holder's, on its mount */
};

/* The first of held that another owner's want conflicts with, or NULL.  Pure. */
const struct fs_lock *fs_lock_conflict(const struct fs_lock *held, uint32_t n,
				       const struct fs_lock *want);
/*
 * An owner's locks (mine: disjoint) after want is set over them (F_UNLCK:
 * removed), into out (room for n + 2): how many.  Pure.
 */
uint32_t fs_lock_apply(const struct fs_lock *mine, uint32_t n, const struct fs_lock *want,
		       struct fs_lock *out);
/*
 * Who waits for whom: blocked fcntl lock owners that keep asking, kept in
 * memory (after a failover the waiters say it again).  A wait closing a
 * cycle is a deadlock, and only then.  An entry not renewed within
 * FS_LOCK_WAIT_STALE_NS is forgotten (its waiter went away).  Pure.
 */
#define FS_LOCK_WAIT_STALE_NS (500 * NSEC_PER_MSEC)

struct fs_lock_waits {
	struct fs_lock_wait {
		uint64_t rid, owner;         /* the waiter */
		uint64_t on_rid, on_owner;   /* the owner of a lock in its way */
		mono_ns at;
	} *w;
	uint32_t n, cap;
};

/*
 * (rid, owner) waits for (on_rid, on_owner) as of now: true when that
 * closes a cycle of waits (the wait is then not kept), false when noted
 * (or there is no room: waits too many to follow are not called deadlocks).
 */
bool fs_lock_wait(struct fs_lock_waits *ws, uint64_t rid, uint64_t owner, uint64_t on_rid,
		  uint64_t on_owner, mono_ns now);
/* (rid, owner) waits no more: it has the lock, or gave up. */
void fs_lock_wait_end(struct fs_lock_waits *ws, uint64_t rid, uint64_t owner);
/* Every wait of a mount's owners goes (it is gone). */
void fs_lock_wait_drop_rid(struct fs_lock_waits *ws, uint64_t rid);
void fs_lock_waits_free(struct fs_lock_waits *ws);
/* F_GETLK: l becomes the first lock conflicting with it, or its type F_UNLCK.  Reads only. */
int fs_getlk(struct fs *fs, uint64_t ino, uint32_t kind, struct fs_lock *l);
/* F_SETLK: 0, -EAGAIN on a conflict (nothing changes), -ENOLCK past the limit. */
int fs_setlk(struct fs *fs, uint64_t ino, uint32_t kind, const struct fs_lock *l);
/* A mount gone: every lock it held goes, and its record.  How many, or -errno. */
int fs_locks_drop_client(struct fs *fs, uint64_t rid);
/* How many locks (ranges) are held, over every mount.  Reads only. */
int fs_locks_count(struct fs *fs, uint64_t *n);
/* Does rid hold any lock?  1, 0 or -errno.  Reads only. */
int fs_locks_held_by(struct fs *fs, uint64_t rid);
/*
 * Who a mount that holds locks is (an opaque record of len bytes, for a
 * fence after a failover): kept from its first lock until it is gone.
 */
int fs_locker_note(struct fs *fs, uint64_t rid, const void *who, size_t len);
/* rid's record into who (len bytes): 0, -ENOENT, or -errno.  Reads only. */
int fs_locker_get(struct fs *fs, uint64_t rid, void *who, size_t len);
/* The mounts that hold locks (*rids: malloc'd). */
int fs_locks_rids(struct fs *fs, uint64_t **rids, uint32_t *n);
/*
 * A mount declared gone (away past its grace): recorded for good, so no
 * server lets it back to act on what it no longer holds.
 */
int fs_client_gone(struct fs *fs, uint64_t rid);
/* Was it?  1, 0 or -errno.  Reads only. */
int fs_client_was_gone(struct fs *fs, uint64_t rid);

/* ---- deleted files' data, released in the background ---- */
/* Is dropped data waiting to be released?  1 (its data id in *did), 0 or -errno.  Reads only. */
int fs_release_pending(struct fs *fs, uint64_t *did);
/*
 * Release at most max chunks of the first range waiting (a write, bounded
 * whatever the range's size): how many, or -errno.  The step that finds
 * none left of the range ends its release.
 */
int fs_release_step(struct fs *fs, uint32_t max);

/* ---- deferred access times ---- */
/* Write the access times reads recorded (in a batch that commits anyway). */
int fs_atime_flush(struct fs *fs);

/* ---- results of recent requests ---- */
int fs_reply_put(struct fs *fs, uint64_t client, uint64_t req, uint32_t status,
		 const void *payload, size_t len);
/* 0 and the result when known; -ENOENT when not.  *len is the payload's length. */
int fs_reply_get(struct fs *fs, uint64_t client, uint64_t req, uint32_t *status, void *buf,
		 size_t cap, size_t *len);
/* The client waits for nothing below oldest: forget those. */
int fs_reply_trim(struct fs *fs, uint64_t client, uint64_t oldest);
int fs_reply_forget_client(struct fs *fs, uint64_t client);

#endif
