/*
 * fs_priv.h - inside the filesystem logic: what fs.c, fs_data.c and
 * fs_xattr.c share.  Not for other modules.
 */
#ifndef FUSEFS_FS_PRIV_H
#define FUSEFS_FS_PRIV_H

#include "server/fs.h"

#include <sqlite3.h>

#define FS_STATFS_BSIZE 4096

enum fs_stmt {
	ST_META_GET, ST_META_SET,
	ST_INODE_GET, ST_INODE_PUT, ST_INODE_DEL,
	ST_DENT_GET, ST_DENT_ADD, ST_DENT_DEL, ST_DENT_SET_INO, ST_DENT_ANY, ST_DENT_LIST,
	ST_LINK_GET, ST_LINK_PUT, ST_LINK_DEL,
	ST_CHUNK_RANGE, ST_CHUNK_GET, ST_CHUNK_PUT, ST_CHUNK_DEL_FROM,
	ST_CHUNK_COUNT, ST_CHUNK_KEYS,
	ST_XATTR_GET, ST_XATTR_PUT, ST_XATTR_DEL, ST_XATTR_LIST, ST_XATTR_DEL_ALL,
	ST_LOCK_LIST, ST_LOCK_PUT, ST_LOCK_DEL_OWNER, ST_LOCK_DEL_RID, ST_LOCK_DEL_INO,
	ST_LOCK_RIDS, ST_GONE_PUT, ST_GONE_GET, ST_LOCK_ANY_RID, ST_LOCK_COUNT, ST_LOCKER_PUT, ST_LOCKER_GET,
	ST_LOCKER_DEL,
	ST_ORPHAN_ADD, ST_ORPHAN_DEL, ST_ORPHAN_GET, ST_ORPHAN_LIST,
	ST_REPLY_PUT, ST_REPLY_GET, ST_REPLY_TRIM, ST_REPLY_FORGET,
	ST_PAGE_COUNT, ST_FREE_COUNT,
	ST_FREEING_ADD, ST_FREEING_FIRST, ST_FREEING_DEL, ST_FREEING_DEL_ALL, ST_FREEING_ANY,
	ST_CHUNK_NTH, ST_SPARE_ADD, ST_SPARE_FIRST, ST_SPARE_DEL,
	ST_NR,
};

struct fs_atime {
	uint64_t ino;
	struct fs_time t;
};

struct fs {
	sqlite3 *db;
	struct fs_hooks hooks;
	sqlite3_stmt *st[ST_NR];
	sqlite3_stmt *st_readdir;  /* its own: readdir runs others between its rows */
	uint64_t space;            /* 0: no limit */
	uint32_t page_size;
	uint64_t inline_bytes;     /* FS_RELEASE_INLINE_BYTES but in tests */
	struct fs_atime *atimes;   /* deferred access times */
	uint32_t natimes;
};

/* An inode as stored: the attributes and what only the store needs. */
struct fs_inode {
	struct fs_attr a;
	uint64_t parent;           /* directories: the one that holds them */
	uint64_t next_cookie;      /* directories: the next entry's cookie */
	uint64_t bytes;            /* data bytes stored in chunks */
	uint64_t reserved;         /* bytes fallocate promised past what is stored */
	/*
	 * The file's map: chunk index -> data id.  Extent i covers chunks
	 * [ext[i].start, ext[i + 1].start) (the last, to 2^32) and keeps them
	 * under data id ext[i].did (0: a hole; its first write takes an id).
	 * ext[0].start is 0; next is 0 or 1 for a file that never had data.
	 * A range the map stopped naming may still be in `freeing`: its chunks
	 * under that id are never read or written again (fs_data.c).
	 */
	uint32_t next;
	struct fs_extent {
		uint32_t start, did;
	} ext[FS_MAX_EXTENTS];
};

/* The statement id, reset and unbound. */
sqlite3_stmt *fs_st(struct fs *fs, enum fs_stmt id);
int fs_done(struct fs *fs, sqlite3_stmt *s);
/* Does statement id, its one parameter bound to key, find a row?  1, 0 or -errno. */
int fs_row_exists(struct fs *fs, enum fs_stmt id, int64_t key, const char *what);
int fs_sql_err(struct fs *fs, int rc, const char *what);
void fs_now(struct fs *fs, struct fs_time *t);
int fs_inode_get(struct fs *fs, uint64_t ino, struct fs_inode *in);
int fs_inode_put(struct fs *fs, struct fs_inode *in);
int fs_inode_delete(struct fs *fs, struct fs_inode *in);
bool fs_in_group(const struct fs_cred *c, uint32_t gid);
int fs_may(const struct fs_cred *c, const struct fs_attr *a, int mask);
int fs_space_check(struct fs *fs, uint64_t before, int ret);
/* Clear setuid, and setgid with group execute (fs.c says who triggers it). */
void fs_kill_priv(struct fs_attr *a);

/* fs_data.c: the size becomes size (chunks past it go, the last is cut). */
int fs_data_truncate(struct fs *fs, struct fs_inode *in, uint64_t size);
/* A deleted inode's data: dropped now when small, else queued for fs_release_step. */
int fs_data_release(struct fs *fs, struct fs_inode *in);
/* A data id for a file's chunks: a spare one, else a fresh one; -ENOSPC past FS_MAX_DID. */
int fs_did_alloc(struct fs *fs, uint64_t *did);
/*
 * in's reservation (and the filesystem's, which fs_used_bytes counts as
 * used) grows or shrinks by delta, never below zero.  The caller puts in.
 */
int fs_reserve(struct fs *fs, struct fs_inode *in, int64_t delta);
/* A data id with no chunks left: free to be used again. */
int fs_did_spare(struct fs *fs, uint64_t did);

/* fs_xattr.c: deferred access times */
void fs_atime_pending(struct fs *fs, uint64_t ino, struct fs_time *atime);
void fs_atime_forget(struct fs *fs, uint64_t ino);
void fs_atime_touch(struct fs *fs, struct fs_inode *in);

#endif
