/*
 * fs.c - the filesystem's tables, inodes, permissions and names (see fs.h).
 * File data is in fs_data.c, extended attributes and recent replies in
 * fs_xattr.c; fs_priv.h is what they share.
 *
 * Permissions follow a local Linux filesystem: owner, group (with the
 * supplementary groups) or other bits; root passes every check but
 * execute, which needs some x bit on anything but a directory; search (x)
 * on the directory looked in; write and search on a directory to change
 * its entries; in a sticky directory only the entry's owner, the
 * directory's owner or root may remove or rename it.  New entries take
 * the caller's uid, and the caller's gid unless the directory is setgid
 * (then its gid, and a new directory inherits S_ISGID).
 *
 * Times: ctime on every change of an inode; a directory's mtime and ctime
 * when its entries change; atime is deferred (fs_atime_flush).
 */
#include "server/fs_priv.h"

#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static const char *const SQL[ST_NR] = {
	[ST_META_GET] = "SELECT v FROM meta WHERE k=?",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)",
	[ST_INODE_GET] = "SELECT gen, mode, uid, gid, size, nlink, atime_s, atime_ns, mtime_s, "
			 "mtime_ns, ctime_s, ctime_ns, rdev, flags, parent, next_cookie, bytes, "
			 "reserved, extents FROM inodes WHERE ino=?",
	[ST_INODE_PUT] = "INSERT OR REPLACE INTO inodes(ino, gen, mode, uid, gid, size, nlink, "
			 "atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, rdev, flags, "
			 "parent, next_cookie, bytes, reserved, extents) "
			 "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[ST_INODE_DEL] = "DELETE FROM inodes WHERE ino=?",
	[ST_DENT_GET] = "SELECT ino, cookie FROM dirents WHERE dir=? AND name=?",
	[ST_DENT_ADD] = "INSERT INTO dirents(dir, name, ino, type, cookie) VALUES(?,?,?,?,?)",
	[ST_DENT_DEL] = "DELETE FROM dirents WHERE dir=? AND name=?",
	[ST_DENT_SET_INO] = "UPDATE dirents SET ino=?, type=? WHERE dir=? AND name=?",
	[ST_DENT_ANY] = "SELECT 1 FROM dirents WHERE dir=? LIMIT 1",
	[ST_DENT_LIST] = "SELECT name, ino, type, cookie FROM dirents WHERE dir=? AND cookie>? "
			 "ORDER BY cookie",
	[ST_LINK_GET] = "SELECT target FROM symlinks WHERE ino=?",
	[ST_LINK_PUT] = "INSERT INTO symlinks(ino, target) VALUES(?,?)",
	[ST_LINK_DEL] = "DELETE FROM symlinks WHERE ino=?",
	[ST_CHUNK_RANGE] = "SELECT rowid, data FROM chunks WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
	[ST_CHUNK_GET] = "SELECT length(data) FROM chunks WHERE rowid=?",
	[ST_CHUNK_PUT] = "INSERT OR REPLACE INTO chunks(rowid, data) VALUES(?,?)",
	[ST_CHUNK_DEL_FROM] = "DELETE FROM chunks WHERE rowid BETWEEN ? AND ?",
	[ST_CHUNK_KEYS] = "SELECT rowid FROM chunks WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
	[ST_CHUNK_COUNT] = "SELECT count(*), coalesce(sum(n), 0) FROM (SELECT length(data) AS n "
			   "FROM chunks WHERE rowid BETWEEN ? AND ? LIMIT ?)",
	[ST_XATTR_GET] = "SELECT value FROM xattrs WHERE ino=? AND name=?",
	[ST_XATTR_PUT] = "INSERT OR REPLACE INTO xattrs(ino, name, value) VALUES(?,?,?)",
	[ST_XATTR_DEL] = "DELETE FROM xattrs WHERE ino=? AND name=?",
	[ST_XATTR_LIST] = "SELECT name FROM xattrs WHERE ino=? ORDER BY name",
	[ST_XATTR_DEL_ALL] = "DELETE FROM xattrs WHERE ino=?",
	[ST_LOCK_LIST] = "SELECT rid, owner, start, end, type, pid FROM locks WHERE ino=? AND kind=?",
	[ST_LOCK_PUT] = "INSERT INTO locks(ino, kind, rid, owner, start, end, type, pid) "
			"VALUES(?,?,?,?,?,?,?,?)",
	[ST_LOCK_DEL_OWNER] = "DELETE FROM locks WHERE ino=? AND kind=? AND rid=? AND owner=?",
	[ST_LOCK_DEL_RID] = "DELETE FROM locks WHERE rid=?",
	[ST_LOCK_DEL_INO] = "DELETE FROM locks WHERE ino=?",
	[ST_LOCK_RIDS] = "SELECT DISTINCT rid FROM locks",
	[ST_GONE_PUT] = "INSERT OR IGNORE INTO gone(rid, since) VALUES(?, ?)",
	[ST_GONE_GET] = "SELECT 1 FROM gone WHERE rid=?",
	[ST_LOCK_ANY_RID] = "SELECT 1 FROM locks WHERE rid=? LIMIT 1",
	[ST_LOCK_COUNT] = "SELECT count(*) FROM locks",
	[ST_LOCKER_PUT] = "INSERT OR IGNORE INTO lockers(rid, who) VALUES(?, ?)",
	[ST_LOCKER_GET] = "SELECT who FROM lockers WHERE rid=?",
	[ST_LOCKER_DEL] = "DELETE FROM lockers WHERE rid=?",
	[ST_ORPHAN_ADD] = "INSERT OR REPLACE INTO orphans(ino, since) VALUES(?,?)",
	[ST_ORPHAN_DEL] = "DELETE FROM orphans WHERE ino=?",
	[ST_ORPHAN_GET] = "SELECT 1 FROM orphans WHERE ino=?",
	[ST_ORPHAN_LIST] = "SELECT ino FROM orphans ORDER BY ino",
	[ST_REPLY_PUT] = "INSERT OR REPLACE INTO replies(client, req, status, payload) VALUES(?,?,?,?)",
	[ST_REPLY_GET] = "SELECT status, payload FROM replies WHERE client=? AND req=?",
	[ST_REPLY_TRIM] = "DELETE FROM replies WHERE client=? AND req<?",
	[ST_REPLY_FORGET] = "DELETE FROM replies WHERE client=?",
	[ST_PAGE_COUNT] = "PRAGMA page_count",
	[ST_FREE_COUNT] = "PRAGMA freelist_count",
	[ST_FREEING_ADD] = "INSERT INTO freeing(did, from_idx, to_idx) VALUES(?, ?, ?) "
			   "ON CONFLICT(did, from_idx) DO UPDATE SET to_idx=max(to_idx, excluded.to_idx)",
	[ST_FREEING_FIRST] = "SELECT did, from_idx, to_idx FROM freeing ORDER BY did, from_idx LIMIT 1",
	[ST_FREEING_DEL] = "DELETE FROM freeing WHERE did=? AND from_idx=?",
	[ST_FREEING_DEL_ALL] = "DELETE FROM freeing WHERE did=?",
	[ST_FREEING_ANY] = "SELECT 1 FROM freeing WHERE did=? LIMIT 1",
	[ST_SPARE_ADD] = "INSERT OR IGNORE INTO spare(did) VALUES(?)",
	[ST_SPARE_FIRST] = "SELECT did FROM spare ORDER BY did LIMIT 1",
	[ST_SPARE_DEL] = "DELETE FROM spare WHERE did=?",
	[ST_CHUNK_NTH] = "SELECT rowid FROM chunks WHERE rowid BETWEEN ? AND ? ORDER BY rowid "
			 "LIMIT 1 OFFSET ?",
};

static const char SCHEMA[] =
	"CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"CREATE TABLE inodes(ino INTEGER PRIMARY KEY, gen INTEGER NOT NULL, mode INTEGER NOT NULL,"
	" uid INTEGER NOT NULL, gid INTEGER NOT NULL, size INTEGER NOT NULL, nlink INTEGER NOT NULL,"
	" atime_s INTEGER NOT NULL, atime_ns INTEGER NOT NULL, mtime_s INTEGER NOT NULL,"
	" mtime_ns INTEGER NOT NULL, ctime_s INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
	" rdev INTEGER NOT NULL, flags INTEGER NOT NULL, parent INTEGER NOT NULL,"
	" next_cookie INTEGER NOT NULL, bytes INTEGER NOT NULL, reserved INTEGER NOT NULL,"
	" extents BLOB NOT NULL);"
	"CREATE TABLE dirents(dir INTEGER NOT NULL, name BLOB NOT NULL, ino INTEGER NOT NULL,"
	" type INTEGER NOT NULL, cookie INTEGER NOT NULL, PRIMARY KEY(dir, name)) WITHOUT ROWID;"
	"CREATE UNIQUE INDEX dirents_cookie ON dirents(dir, cookie);"
	"CREATE TABLE symlinks(ino INTEGER PRIMARY KEY, target BLOB NOT NULL);"
	"CREATE TABLE xattrs(ino INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL,"
	" PRIMARY KEY(ino, name)) WITHOUT ROWID;"
	"CREATE TABLE chunks(data BLOB NOT NULL);"
	"CREATE TABLE orphans(ino INTEGER PRIMARY KEY, since INTEGER NOT NULL);"
	"CREATE TABLE freeing(did INTEGER NOT NULL, from_idx INTEGER NOT NULL, to_idx INTEGER NOT NULL,"
	" PRIMARY KEY(did, from_idx)) WITHOUT ROWID;"
	"CREATE TABLE spare(did INTEGER PRIMARY KEY);"
	"CREATE TABLE locks(ino INTEGER NOT NULL, kind INTEGER NOT NULL, rid INTEGER NOT NULL,"
	" owner INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, type INTEGER NOT NULL,"
	" pid INTEGER NOT NULL, PRIMARY KEY(ino, kind, rid, owner, start)) WITHOUT ROWID;"
	"CREATE INDEX locks_rid ON locks(rid);"
	"CREATE TABLE gone(rid INTEGER PRIMARY KEY, since INTEGER NOT NULL);"
	"CREATE TABLE lockers(rid INTEGER PRIMARY KEY, who BLOB NOT NULL);"
	"CREATE TABLE replies(client INTEGER NOT NULL, req INTEGER NOT NULL, status INTEGER NOT NULL,"
	" payload BLOB, PRIMARY KEY(client, req)) WITHOUT ROWID;";

/* ---- statements ---- */

sqlite3_stmt *fs_st(struct fs *fs, enum fs_stmt id)
{
	sqlite3_stmt *s = fs->st[id];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

int fs_sql_err(struct fs *fs, int rc, const char *what)
{
	if (rc == SQLITE_FULL)
		return -ENOSPC;
	if (rc == SQLITE_NOMEM)
		return -ENOMEM;
	log_err("fs", "%s: %s", what, sqlite3_errmsg(fs->db));
	return -EIO;
}

/* Step a statement that returns no row. */
int fs_done(struct fs *fs, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : fs_sql_err(fs, rc, sqlite3_sql(s));
}

static int meta_get(struct fs *fs, const char *k, int64_t *v)
{
	sqlite3_stmt *s = fs_st(fs, ST_META_GET);
	int rc;

	sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return rc == SQLITE_ROW ? 0 : fs_sql_err(fs, rc, "reading meta");
}

static int meta_set(struct fs *fs, const char *k, int64_t v)
{
	sqlite3_stmt *s = fs_st(fs, ST_META_SET);

	sqlite3_bind_text(s, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, v);
	return fs_done(fs, s);
}

/* ---- time ---- */

void fs_now(struct fs *fs, struct fs_time *t)
{
	struct timespec ts;

	if (fs->hooks.now != NULL) {
		fs->hooks.now(fs->hooks.arg, t);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	t->sec = ts.tv_sec;
	t->nsec = (uint32_t)ts.tv_nsec;
}

/* ---- inodes ---- */

/*
 * inodes.extents: the map as little-endian (start, did) pairs of 32 bits,
 * empty for a file that never had data.  A map that breaks its rules
 * (fs_priv.h) is corrupt: -EIO.
 */
static int map_decode(struct fs_inode *in, const void *blob, int len)
{
	struct le32 w[FS_MAX_EXTENTS * 2];

	if (len < 0 || len % 8 != 0 || (size_t)len > sizeof(in->ext))
		return -EIO;
	in->next = (uint32_t)len / 8;
	if (len > 0)
		memcpy(w, blob, (size_t)len); /* (a blob need not be aligned) */
	for (uint32_t i = 0; i < in->next; i++) {
		in->ext[i].start = le32_to_cpu(w[2 * i]);
		in->ext[i].did = le32_to_cpu(w[2 * i + 1]);
		if (in->ext[i].did >= FS_MAX_DID ||
		    (i == 0 ? in->ext[i].start != 0 : in->ext[i].start <= in->ext[i - 1].start))
			return -EIO;
	}
	return 0;
}

static int map_encode(const struct fs_inode *in, struct le32 *w)
{
	if (in->next == 1 && in->ext[0].did == 0)
		return 0; /* a hole is no map */
	for (uint32_t i = 0; i < in->next; i++) {
		w[2 * i] = cpu_to_le32(in->ext[i].start);
		w[2 * i + 1] = cpu_to_le32(in->ext[i].did);
	}
	return (int)in->next * 8;
}

int fs_inode_get(struct fs *fs, uint64_t ino, struct fs_inode *in)
{
	sqlite3_stmt *s = fs_st(fs, ST_INODE_GET);
	struct fs_attr *a = &in->a;
	int rc, ret;

	if (ino == 0 || ino >= FS_MAX_INO)
		return -ENOENT;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return rc == SQLITE_DONE ? -ENOENT : fs_sql_err(fs, rc, "reading an inode");
	}
	memset(in, 0, sizeof(*in));
	a->ino = ino;
	a->gen = (uint64_t)sqlite3_column_int64(s, 0);
	a->mode = (uint32_t)sqlite3_column_int64(s, 1);
	a->uid = (uint32_t)sqlite3_column_int64(s, 2);
	a->gid = (uint32_t)sqlite3_column_int64(s, 3);
	a->size = (uint64_t)sqlite3_column_int64(s, 4);
	a->nlink = (uint32_t)sqlite3_column_int64(s, 5);
	a->atime = (struct fs_time){ sqlite3_column_int64(s, 6), (uint32_t)sqlite3_column_int64(s, 7) };
	a->mtime = (struct fs_time){ sqlite3_column_int64(s, 8), (uint32_t)sqlite3_column_int64(s, 9) };
	a->ctime = (struct fs_time){ sqlite3_column_int64(s, 10), (uint32_t)sqlite3_column_int64(s, 11) };
	a->rdev = (uint64_t)sqlite3_column_int64(s, 12);
	a->flags = (uint32_t)sqlite3_column_int64(s, 13);
	in->parent = (uint64_t)sqlite3_column_int64(s, 14);
	in->next_cookie = (uint64_t)sqlite3_column_int64(s, 15);
	in->bytes = (uint64_t)sqlite3_column_int64(s, 16);
	in->reserved = (uint64_t)sqlite3_column_int64(s, 17);
	a->blocks = (in->bytes + in->reserved + 511) / 512;
	ret = map_decode(in, sqlite3_column_blob(s, 18), sqlite3_column_bytes(s, 18));
	sqlite3_reset(s);
	if (ret < 0) {
		log_err("fs", "inode %" PRIu64 ": its data map is corrupt", ino);
		return ret;
	}
	fs_atime_pending(fs, ino, &a->atime);
	return 0;
}

static void changed(struct fs *fs, uint64_t ino, const char *name, size_t namelen)
{
	if (fs->hooks.changed != NULL)
		fs->hooks.changed(fs->hooks.arg, ino, name, namelen);
}

int fs_inode_put(struct fs *fs, struct fs_inode *in)
{
	sqlite3_stmt *s = fs_st(fs, ST_INODE_PUT);
	const struct fs_attr *a = &in->a;
	int64_t v[19] = {
		(int64_t)a->ino, (int64_t)a->gen, a->mode, a->uid, a->gid, (int64_t)a->size, a->nlink,
		a->atime.sec, a->atime.nsec, a->mtime.sec, a->mtime.nsec, a->ctime.sec, a->ctime.nsec,
		(int64_t)a->rdev, a->flags, (int64_t)in->parent, (int64_t)in->next_cookie,
		(int64_t)in->bytes, (int64_t)in->reserved,
	};
	struct le32 map[FS_MAX_EXTENTS * 2];
	int maplen = map_encode(in, map);

	for (int i = 0; i < 19; i++)
		sqlite3_bind_int64(s, i + 1, v[i]);
	sqlite3_bind_blob(s, 20, map, maplen, SQLITE_TRANSIENT);
	in->a.blocks = (in->bytes + in->reserved + 511) / 512;
	changed(fs, a->ino, NULL, 0);
	return fs_done(fs, s);
}

int fs_did_alloc(struct fs *fs, uint64_t *did)
{
	sqlite3_stmt *s = fs_st(fs, ST_SPARE_FIRST);
	int64_t next;
	int rc, ret;

	rc = sqlite3_step(s);
	*did = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (rc == SQLITE_ROW) {
		s = fs_st(fs, ST_SPARE_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)*did);
		return fs_done(fs, s);
	}
	if (rc != SQLITE_DONE)
		return fs_sql_err(fs, rc, "reading spare data ids");
	ret = meta_get(fs, "next_did", &next);
	if (ret < 0)
		return ret == -ENOENT ? -EIO : ret;
	if ((uint64_t)next >= FS_MAX_DID)
		return -ENOSPC;
	*did = (uint64_t)next;
	return meta_set(fs, "next_did", next + 1);
}

int fs_row_exists(struct fs *fs, enum fs_stmt id, int64_t key, const char *what)
{
	sqlite3_stmt *s = fs_st(fs, id);
	int rc;

	sqlite3_bind_int64(s, 1, key);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : fs_sql_err(fs, rc, what);
}

int fs_did_spare(struct fs *fs, uint64_t did)
{
	sqlite3_stmt *s = fs_st(fs, ST_SPARE_ADD);

	sqlite3_bind_int64(s, 1, (int64_t)did);
	return fs_done(fs, s);
}

/* A fresh inode number and generation, and one more inode counted. */
static int inode_alloc(struct fs *fs, uint64_t *ino, uint64_t *gen)
{
	int64_t next, g, count;
	int ret;

	ret = meta_get(fs, "next_ino", &next);
	if (ret == 0)
		ret = meta_get(fs, "generation", &g);
	if (ret == 0)
		ret = meta_get(fs, "inodes", &count);
	if (ret < 0)
		return ret == -ENOENT ? -EIO : ret;
	if ((uint64_t)next >= FS_MAX_INO)
		return -ENOSPC;
	*ino = (uint64_t)next;
	*gen = (uint64_t)g;
	ret = meta_set(fs, "next_ino", next + 1);
	if (ret == 0)
		ret = meta_set(fs, "inodes", count + 1);
	return ret;
}

/* Delete an inode and everything it owns. */
int fs_inode_delete(struct fs *fs, struct fs_inode *in)
{
	sqlite3_stmt *s;
	int64_t count;
	int ret;

	ret = fs_data_release(fs, in);
	if (ret < 0)
		return ret;
	s = fs_st(fs, ST_XATTR_DEL_ALL);
	sqlite3_bind_int64(s, 1, (int64_t)in->a.ino);
	ret = fs_done(fs, s);
	if (ret == 0) {
		s = fs_st(fs, ST_LINK_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)in->a.ino);
		ret = fs_done(fs, s);
	}
	if (ret == 0) {
		s = fs_st(fs, ST_ORPHAN_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)in->a.ino);
		ret = fs_done(fs, s);
	}
	if (ret == 0) {
		s = fs_st(fs, ST_LOCK_DEL_INO);
		sqlite3_bind_int64(s, 1, (int64_t)in->a.ino);
		ret = fs_done(fs, s);
	}
	if (ret == 0) {
		s = fs_st(fs, ST_INODE_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)in->a.ino);
		ret = fs_done(fs, s);
		changed(fs, in->a.ino, NULL, 0);
	}
	if (ret == 0)
		ret = meta_get(fs, "inodes", &count);
	if (ret == 0)
		ret = meta_set(fs, "inodes", count - 1);
	fs_atime_forget(fs, in->a.ino);
	return ret;
}

/* An inode lost a link: gone when none is left and nothing holds it open. */
static int inode_unlinked(struct fs *fs, struct fs_inode *in, const struct fs_time *now)
{
	if (in->a.nlink > 0) {
		in->a.ctime = *now;
		return fs_inode_put(fs, in);
	}
	if (fs->hooks.is_open != NULL && fs->hooks.is_open(fs->hooks.arg, in->a.ino)) {
		sqlite3_stmt *s = fs_st(fs, ST_ORPHAN_ADD);
		int ret;

		in->a.ctime = *now;
		ret = fs_inode_put(fs, in);
		if (ret < 0)
			return ret;
		sqlite3_bind_int64(s, 1, (int64_t)in->a.ino);
		sqlite3_bind_int64(s, 2, now->sec);
		return fs_done(fs, s);
	}
	return fs_inode_delete(fs, in);
}

/* ---- permissions ---- */

bool fs_in_group(const struct fs_cred *c, uint32_t gid)
{
	if (c->gid == gid)
		return true;
	for (uint32_t i = 0; i < c->ngroups && i < FS_GROUPS_MAX; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

/* mask: 4 read, 2 write, 1 execute/search. */
int fs_may(const struct fs_cred *c, const struct fs_attr *a, int mask)
{
	uint32_t bits;

	if (c->uid == 0) {
		if ((mask & 1) && !S_ISDIR(a->mode) && !(a->mode & 0111))
			return -EACCES;
		return 0;
	}
	if (c->uid == a->uid)
		bits = (a->mode >> 6) & 7;
	else if (fs_in_group(c, a->gid))
		bits = (a->mode >> 3) & 7;
	else
		bits = a->mode & 7;
	return ((int)bits & mask) == mask ? 0 : -EACCES;
}

/* May c remove or rename the entry for victim in dir (the sticky bit)? */
static bool sticky_allows(const struct fs_cred *c, const struct fs_attr *dir,
			  const struct fs_attr *victim)
{
	return !(dir->mode & S_ISVTX) || c->uid == 0 || c->uid == victim->uid || c->uid == dir->uid;
}

/* ---- names ---- */

static bool is_dot(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

static int name_check(const char *name, size_t len)
{
	if (len == 0)
		return -ENOENT;
	if (len > FS_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', len) != NULL || memchr(name, '\0', len) != NULL)
		return -EINVAL;
	return 0;
}

/* A directory we may look in: exists, is a directory, and c may search it. */
static int dir_get(struct fs *fs, const struct fs_cred *c, uint64_t ino, struct fs_inode *dir,
		   int mask)
{
	int ret = fs_inode_get(fs, ino, dir);

	if (ret < 0)
		return ret;
	if (!S_ISDIR(dir->a.mode))
		return -ENOTDIR;
	return fs_may(c, &dir->a, mask);
}

/* The inode name names in dir (the caller checked search permission). */
static int dent_get(struct fs *fs, uint64_t dir, const char *name, size_t len, uint64_t *ino)
{
	sqlite3_stmt *s = fs_st(fs, ST_DENT_GET);
	int rc;

	sqlite3_bind_int64(s, 1, (int64_t)dir);
	sqlite3_bind_blob(s, 2, name, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ino = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	return rc == SQLITE_ROW ? 0 : fs_sql_err(fs, rc, "looking up a name");
}

static int dent_add(struct fs *fs, struct fs_inode *dir, const char *name, size_t len,
		    uint64_t ino, uint32_t mode)
{
	sqlite3_stmt *s = fs_st(fs, ST_DENT_ADD);

	sqlite3_bind_int64(s, 1, (int64_t)dir->a.ino);
	sqlite3_bind_blob(s, 2, name, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)ino);
	sqlite3_bind_int64(s, 4, mode & S_IFMT);
	sqlite3_bind_int64(s, 5, (int64_t)dir->next_cookie++);
	changed(fs, dir->a.ino, name, len);
	return fs_done(fs, s);
}

static int dent_del(struct fs *fs, uint64_t dir, const char *name, size_t len)
{
	sqlite3_stmt *s = fs_st(fs, ST_DENT_DEL);

	sqlite3_bind_int64(s, 1, (int64_t)dir);
	sqlite3_bind_blob(s, 2, name, (int)len, SQLITE_STATIC);
	changed(fs, dir, name, len);
	return fs_done(fs, s);
}

static int dent_set(struct fs *fs, uint64_t dir, const char *name, size_t len, uint64_t ino,
		    uint32_t mode)
{
	sqlite3_stmt *s = fs_st(fs, ST_DENT_SET_INO);

	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, mode & S_IFMT);
	sqlite3_bind_int64(s, 3, (int64_t)dir);
	sqlite3_bind_blob(s, 4, name, (int)len, SQLITE_STATIC);
	changed(fs, dir, name, len);
	return fs_done(fs, s);
}

static int dir_is_empty(struct fs *fs, uint64_t dir)
{
	int ret = fs_row_exists(fs, ST_DENT_ANY, (int64_t)dir, "listing a directory");

	return ret < 0 ? ret : !ret;
}

/* Space: an operation that grew the database past the limit fails. */
int fs_space_check(struct fs *fs, uint64_t before, int ret)
{
	uint64_t after;

	if (ret < 0 || fs->space == 0)
		return ret;
	after = fs_used_bytes(fs);
	return after > before && after > fs->space ? -ENOSPC : ret;
}

int fs_lookup(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	      size_t namelen, struct fs_attr *out)
{
	struct fs_inode dir, in;
	uint64_t ino;
	int ret;

	ret = name_check(name, namelen);
	if (ret < 0)
		return ret;
	ret = dir_get(fs, c, parent, &dir, 1);
	if (ret < 0)
		return ret;
	if (namelen == 1 && name[0] == '.')
		ino = parent;
	else if (is_dot(name, namelen))
		ino = dir.parent;
	else if ((ret = dent_get(fs, parent, name, namelen, &ino)) < 0)
		return ret;
	ret = fs_inode_get(fs, ino, &in);
	if (ret == 0)
		*out = in.a;
	return ret == -ENOENT ? -EIO : ret; /* an entry without its inode: corrupt */
}

/* The permission bits the caller's umask takes away. */
static uint32_t umask_bits(const struct fs_cred *c)
{
	return c->umask & 0777;
}

/*
 * Make a new inode called name in parent: the checks every creation
 * shares, then the inode, then the entry.  mode carries the type.
 */
static int make_node(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
		     size_t namelen, uint32_t mode, uint64_t rdev, struct fs_inode *out)
{
	struct fs_inode dir;
	struct fs_time now;
	uint64_t ino, gen, existing;
	int ret;

	ret = name_check(name, namelen);
	if (ret < 0)
		return ret;
	ret = dir_get(fs, c, parent, &dir, 3);
	if (ret < 0)
		return ret;
	if (is_dot(name, namelen))
		return -EEXIST;
	ret = dent_get(fs, parent, name, namelen, &existing);
	if (ret == 0)
		return -EEXIST;
	if (ret != -ENOENT)
		return ret;
	if (dir.a.nlink == 0)
		return -ENOENT; /* the directory was removed */
	if (S_ISDIR(mode) && dir.a.nlink >= FS_LINK_MAX)
		return -EMLINK;
	ret = inode_alloc(fs, &ino, &gen);
	if (ret < 0)
		return ret;
	fs_now(fs, &now);
	memset(out, 0, sizeof(*out));
	out->a.ino = ino;
	out->a.gen = gen;
	out->a.mode = mode;
	out->a.uid = c->uid;
	out->a.gid = (dir.a.mode & S_ISGID) ? dir.a.gid : c->gid;
	if (S_ISDIR(mode) && (dir.a.mode & S_ISGID))
		out->a.mode |= S_ISGID;
	/* a non-member may not create a setgid file (as Linux inode_init_owner) */
	if (!S_ISDIR(mode) && (out->a.mode & S_ISGID) && c->uid != 0 &&
	    !fs_in_group(c, out->a.gid))
		out->a.mode &= ~(uint32_t)S_ISGID;
	out->a.nlink = S_ISDIR(mode) ? 2 : 1;
	out->a.rdev = rdev;
	out->a.atime = out->a.mtime = out->a.ctime = now;
	out->parent = S_ISDIR(mode) ? parent : 0;
	out->next_cookie = 3;
	ret = fs_inode_put(fs, out);
	if (ret == 0)
		ret = dent_add(fs, &dir, name, namelen, ino, mode);
	if (ret == 0) {
		if (S_ISDIR(mode))
			dir.a.nlink++;
		dir.a.mtime = dir.a.ctime = now;
		ret = fs_inode_put(fs, &dir);
	}
	return ret;
}

int fs_mknod(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	     size_t namelen, uint32_t mode, uint64_t rdev, struct fs_attr *out)
{
	uint64_t before = fs_used_bytes(fs);
	struct fs_inode in;
	int ret;

	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		break;
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	case S_IFCHR:
	case S_IFBLK:
		if (c->uid != 0)
			return -EPERM;
		break;
	case S_IFDIR:
		return -EPERM; /* mkdir makes directories (as Linux's mknod) */
	default:
		return -EINVAL;
	}
	if (!S_ISCHR(mode) && !S_ISBLK(mode))
		rdev = 0;
	ret = make_node(fs, c, parent, name, namelen, mode & (S_IFMT | (07777 & ~umask_bits(c))),
			rdev, &in);
	ret = fs_space_check(fs, before, ret);
	if (ret == 0)
		*out = in.a;
	return ret;
}

int fs_mkdir(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	     size_t namelen, uint32_t mode, struct fs_attr *out)
{
	uint64_t before = fs_used_bytes(fs);
	struct fs_inode in;
	int ret = make_node(fs, c, parent, name, namelen, S_IFDIR | (mode & 07777 & ~umask_bits(c)),
			    0, &in);

	ret = fs_space_check(fs, before, ret);
	if (ret == 0)
		*out = in.a;
	return ret;
}

int fs_symlink(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	       size_t namelen, const char *target, size_t targetlen, struct fs_attr *out)
{
	uint64_t before = fs_used_bytes(fs);
	struct fs_inode in;
	sqlite3_stmt *s;
	int ret;

	if (targetlen == 0)
		return -ENOENT;
	if (targetlen > FS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	ret = make_node(fs, c, parent, name, namelen, S_IFLNK | 0777, 0, &in);
	if (ret == 0) {
		s = fs_st(fs, ST_LINK_PUT);
		sqlite3_bind_int64(s, 1, (int64_t)in.a.ino);
		sqlite3_bind_blob(s, 2, target, (int)targetlen, SQLITE_STATIC);
		ret = fs_done(fs, s);
	}
	if (ret == 0) {
		in.a.size = targetlen;
		ret = fs_inode_put(fs, &in);
	}
	ret = fs_space_check(fs, before, ret);
	if (ret == 0)
		*out = in.a;
	return ret;
}

int fs_readlink(struct fs *fs, const struct fs_cred *c, uint64_t ino, char *buf, size_t cap,
		size_t *len)
{
	struct fs_inode in;
	sqlite3_stmt *s;
	int ret, rc;

	(void)c;
	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	if (!S_ISLNK(in.a.mode))
		return -EINVAL;
	s = fs_st(fs, ST_LINK_GET);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s, 0);

		if (n > cap) {
			ret = -ERANGE;
		} else {
			memcpy(buf, sqlite3_column_blob(s, 0), n);
			*len = n;
			fs_atime_touch(fs, &in);
		}
	} else {
		ret = rc == SQLITE_DONE ? -EIO : fs_sql_err(fs, rc, "reading a symlink");
	}
	sqlite3_reset(s);
	return ret;
}

int fs_link(struct fs *fs, const struct fs_cred *c, uint64_t ino, uint64_t newparent,
	    const char *name, size_t namelen, struct fs_attr *out)
{
	uint64_t before = fs_used_bytes(fs), existing;
	struct fs_inode dir, in;
	struct fs_time now;
	int ret;

	ret = name_check(name, namelen);
	if (ret < 0)
		return ret;
	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	if (S_ISDIR(in.a.mode))
		return -EPERM;
	ret = dir_get(fs, c, newparent, &dir, 3);
	if (ret < 0)
		return ret;
	if (is_dot(name, namelen))
		return -EEXIST;
	ret = dent_get(fs, newparent, name, namelen, &existing);
	if (ret == 0)
		return -EEXIST;
	if (ret != -ENOENT)
		return ret;
	if (dir.a.nlink == 0 || in.a.nlink == 0)
		return -ENOENT;
	if (in.a.nlink >= FS_LINK_MAX)
		return -EMLINK;
	fs_now(fs, &now);
	ret = dent_add(fs, &dir, name, namelen, ino, in.a.mode);
	if (ret == 0) {
		dir.a.mtime = dir.a.ctime = now;
		ret = fs_inode_put(fs, &dir);
	}
	if (ret == 0) {
		in.a.nlink++;
		in.a.ctime = now;
		ret = fs_inode_put(fs, &in);
	}
	ret = fs_space_check(fs, before, ret);
	if (ret == 0)
		*out = in.a;
	return ret;
}

/* The entry name in parent, its directory and its inode, for removal. */
static int victim_get(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
		      size_t namelen, struct fs_inode *dir, struct fs_inode *in)
{
	uint64_t ino;
	int ret = name_check(name, namelen);

	if (ret < 0)
		return ret;
	ret = dir_get(fs, c, parent, dir, 3);
	if (ret < 0)
		return ret;
	ret = dent_get(fs, parent, name, namelen, &ino);
	if (ret < 0)
		return ret;
	ret = fs_inode_get(fs, ino, in);
	if (ret < 0)
		return ret == -ENOENT ? -EIO : ret;
	return sticky_allows(c, &dir->a, &in->a) ? 0 : -EPERM;
}

int fs_unlink(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	      size_t namelen)
{
	struct fs_inode dir, in;
	struct fs_time now;
	int ret;

	if (is_dot(name, namelen))
		return -EISDIR; /* unlink(2) of "." and ".." (as Linux) */
	ret = victim_get(fs, c, parent, name, namelen, &dir, &in);
	if (ret < 0)
		return ret;
	if (S_ISDIR(in.a.mode))
		return -EISDIR;
	fs_now(fs, &now);
	ret = dent_del(fs, parent, name, namelen);
	if (ret == 0) {
		dir.a.mtime = dir.a.ctime = now;
		ret = fs_inode_put(fs, &dir);
	}
	if (ret == 0) {
		in.a.nlink--;
		ret = inode_unlinked(fs, &in, &now);
	}
	return ret;
}

int fs_rmdir(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	     size_t namelen)
{
	struct fs_inode dir, in;
	struct fs_time now;
	int ret;

	if (is_dot(name, namelen))
		return namelen == 1 ? -EINVAL : -ENOTEMPTY;
	ret = victim_get(fs, c, parent, name, namelen, &dir, &in);
	if (ret < 0)
		return ret;
	if (!S_ISDIR(in.a.mode))
		return -ENOTDIR;
	ret = dir_is_empty(fs, in.a.ino);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return -ENOTEMPTY;
	fs_now(fs, &now);
	ret = dent_del(fs, parent, name, namelen);
	if (ret == 0) {
		dir.a.nlink--;
		dir.a.mtime = dir.a.ctime = now;
		ret = fs_inode_put(fs, &dir);
	}
	if (ret == 0) {
		in.a.nlink = 0;
		ret = inode_unlinked(fs, &in, &now);
	}
	return ret;
}

/* Is dir ino an ancestor of (or equal to) dir of? Walks the parents, bounded. */
static int is_ancestor(struct fs *fs, uint64_t ino, uint64_t of)
{
	for (int depth = 0; depth < 100000; depth++) {
		struct fs_inode in;
		int ret;

		if (of == ino)
			return 1;
		if (of == FS_ROOT_INO)
			return 0;
		ret = fs_inode_get(fs, of, &in);
		if (ret < 0)
			return ret;
		of = in.parent;
	}
	return -ELOOP;
}

/*
 * A rename, as its check half found it: the two directories (nd may be
 * od), the entry that moves, and the one it replaces or exchanges with.
 */
struct rename_plan {
	uint64_t parent, newparent;
	const char *name, *newname;
	size_t namelen, newnamelen;
	uint32_t flags;
	struct fs_inode od, nd, src, dst;
	struct fs_inode *ndp;       /* &od when both names are in one directory */
	bool have_dst;
};

/* The entries: the source must exist; the target as the flags want it. */
static int rename_find(struct fs *fs, const struct fs_cred *c, struct rename_plan *p)
{
	uint64_t dst_ino;
	int ret = victim_get(fs, c, p->parent, p->name, p->namelen, &p->od, &p->src);

	if (ret < 0)
		return ret;
	p->ndp = &p->od;
	if (p->newparent != p->parent) {
		ret = dir_get(fs, c, p->newparent, &p->nd, 3);
		if (ret < 0)
			return ret;
		p->ndp = &p->nd;
	}
	ret = dent_get(fs, p->newparent, p->newname, p->newnamelen, &dst_ino);
	if (ret == -ENOENT)
		return p->flags & FS_RENAME_EXCHANGE ? -ENOENT : 0;
	if (ret < 0)
		return ret;
	if (p->flags & FS_RENAME_NOREPLACE)
		return -EEXIST;
	ret = fs_inode_get(fs, dst_ino, &p->dst);
	if (ret < 0)
		return ret == -ENOENT ? -EIO : ret;
	p->have_dst = true;
	return sticky_allows(c, &p->ndp->a, &p->dst.a) ? 0 : -EPERM;
}

/*
 * A directory that moves to another parent: not into its own subtree, and
 * its ".." is rewritten, which needs write permission on it.
 */
static int rename_moves_dir(struct fs *fs, const struct fs_cred *c, const struct fs_inode *dir,
			    uint64_t to)
{
	int ret = is_ancestor(fs, dir->a.ino, to);

	if (ret != 0)
		return ret < 0 ? ret : -EINVAL;
	return fs_may(c, &dir->a, 2);
}

/*
 * The check half: every rule, nothing written.  0 when the rename may go
 * ahead, 1 when it has nothing to do, or -errno.
 */
static int rename_check(struct fs *fs, const struct fs_cred *c, struct rename_plan *p)
{
	bool exchange = p->flags & FS_RENAME_EXCHANGE, moves = p->newparent != p->parent;
	int ret;

	if (p->flags & ~(uint32_t)(FS_RENAME_NOREPLACE | FS_RENAME_EXCHANGE) ||
	    (p->flags & FS_RENAME_NOREPLACE && exchange))
		return -EINVAL;
	if (is_dot(p->name, p->namelen) || is_dot(p->newname, p->newnamelen))
		return -EINVAL;
	ret = name_check(p->newname, p->newnamelen);
	if (ret == 0)
		ret = rename_find(fs, c, p);
	if (ret < 0)
		return ret;
	if (p->ndp->a.nlink == 0)
		return -ENOENT;
	/* a name onto itself, or onto another link of the same inode: nothing to do */
	if (p->have_dst && p->dst.a.ino == p->src.a.ino)
		return 1;
	if (moves && S_ISDIR(p->src.a.mode) && (ret = rename_moves_dir(fs, c, &p->src, p->newparent)))
		return ret;
	if (moves && exchange && S_ISDIR(p->dst.a.mode) &&
	    (ret = rename_moves_dir(fs, c, &p->dst, p->parent)))
		return ret;
	if (p->have_dst && !exchange) {
		if (S_ISDIR(p->src.a.mode) != S_ISDIR(p->dst.a.mode))
			return S_ISDIR(p->src.a.mode) ? -ENOTDIR : -EISDIR;
		if (S_ISDIR(p->dst.a.mode)) {
			ret = dir_is_empty(fs, p->dst.a.ino);
			if (ret <= 0)
				return ret < 0 ? ret : -ENOTEMPTY;
		}
	}
	if (!p->have_dst && moves && S_ISDIR(p->src.a.mode) && p->ndp->a.nlink >= FS_LINK_MAX)
		return -EMLINK;
	return 0;
}

/* Apply an exchange: both entries swap inodes; a directory moving each way carries a link. */
static int rename_exchange(struct fs *fs, struct rename_plan *p, const struct fs_time *now)
{
	bool src_dir = S_ISDIR(p->src.a.mode), dst_dir = S_ISDIR(p->dst.a.mode);
	int ret = dent_set(fs, p->parent, p->name, p->namelen, p->dst.a.ino, p->dst.a.mode);

	if (ret == 0)
		ret = dent_set(fs, p->newparent, p->newname, p->newnamelen, p->src.a.ino,
			       p->src.a.mode);
	if (ret == 0 && p->newparent != p->parent && src_dir != dst_dir) {
		p->od.a.nlink += src_dir ? (uint32_t)-1 : 1u;
		p->ndp->a.nlink += src_dir ? 1u : (uint32_t)-1;
	}
	if (dst_dir)
		p->dst.parent = p->parent;
	if (src_dir)
		p->src.parent = p->newparent;
	p->dst.a.ctime = *now;
	return ret == 0 ? fs_inode_put(fs, &p->dst) : ret;
}

/* Apply a move: the entry goes; a replaced inode loses its link (or goes, or stays an orphan). */
static int rename_move(struct fs *fs, struct rename_plan *p, const struct fs_time *now)
{
	int ret = dent_del(fs, p->parent, p->name, p->namelen);

	if (ret == 0 && p->have_dst)
		ret = dent_set(fs, p->newparent, p->newname, p->newnamelen, p->src.a.ino,
			       p->src.a.mode);
	else if (ret == 0)
		ret = dent_add(fs, p->ndp, p->newname, p->newnamelen, p->src.a.ino, p->src.a.mode);
	if (ret == 0 && S_ISDIR(p->src.a.mode)) {
		p->src.parent = p->newparent;
		if (p->newparent != p->parent) {
			p->od.a.nlink--;
			if (!p->have_dst)
				p->ndp->a.nlink++;
		} else if (p->have_dst) {
			p->od.a.nlink--; /* the replaced directory's ".." is gone */
		}
	}
	if (ret == 0 && p->have_dst) {
		/* a replaced directory goes (or stays an orphan while open), as a file */
		p->dst.a.nlink = S_ISDIR(p->dst.a.mode) ? 0 : p->dst.a.nlink - 1;
		ret = inode_unlinked(fs, &p->dst, now);
	}
	return ret;
}

int fs_rename(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	      size_t namelen, uint64_t newparent, const char *newname, size_t newnamelen,
	      uint32_t flags)
{
	struct rename_plan p = { .parent = parent, .newparent = newparent, .name = name,
				 .newname = newname, .namelen = namelen, .newnamelen = newnamelen,
				 .flags = flags };
	struct fs_time now;
	int ret = rename_check(fs, c, &p);

	if (ret != 0)
		return ret < 0 ? ret : 0;
	fs_now(fs, &now);
	ret = flags & FS_RENAME_EXCHANGE ? rename_exchange(fs, &p, &now) : rename_move(fs, &p, &now);
	p.src.a.ctime = now;
	if (ret == 0)
		ret = fs_inode_put(fs, &p.src);
	p.od.a.mtime = p.od.a.ctime = now;
	if (ret == 0)
		ret = fs_inode_put(fs, &p.od);
	if (ret == 0 && p.ndp != &p.od) {
		p.ndp->a.mtime = p.ndp->a.ctime = now;
		ret = fs_inode_put(fs, p.ndp);
	}
	return ret;
}

/* ---- attributes ---- */

int fs_getattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, struct fs_attr *out)
{
	struct fs_inode in;
	int ret;

	(void)c;
	ret = fs_inode_get(fs, ino, &in);
	if (ret == 0)
		*out = in.a;
	return ret;
}

/*
 * The one rule that clears the privilege bits (as Linux's
 * should_remove_suid): setuid always, setgid when the group may execute
 * (without group execute it marks mandatory locking, not privilege).  A
 * chown clears them for every caller; a write or truncate for every
 * caller but root.
 */
void fs_kill_priv(struct fs_attr *a)
{
	if (S_ISDIR(a->mode))
		return;
	a->mode &= ~(uint32_t)S_ISUID;
	if (a->mode & S_IXGRP)
		a->mode &= ~(uint32_t)S_ISGID;
}

/*
 * A chmod that only takes away the privilege bits fs_kill_priv would:
 * what the kernel sends for a writer or truncater who is not the owner
 * (Linux's file_remove_privs turns the kill into a chmod as the caller).
 * Whoever may write the file may ask it, as a write would do it anyway.
 */
static bool kills_priv_only(const struct fs_attr *a, uint32_t mode)
{
	struct fs_attr k = *a;

	fs_kill_priv(&k);
	return (mode & 07777) == (k.mode & 07777);
}

/* The check half of setattr: may c make these changes to a?  0 or -errno, nothing written. */
static int setattr_check(const struct fs_cred *c, const struct fs_attr *a,
			 const struct fs_setattr *sa)
{
	bool owner = c->uid == 0 || c->uid == a->uid;

	if (sa->valid & ~FS_SET_KNOWN || sa->atime.nsec >= NSEC_PER_SEC ||
	    sa->mtime.nsec >= NSEC_PER_SEC || sa->ctime.nsec >= NSEC_PER_SEC)
		return -EINVAL;
	/* as Linux's chown_ok and chgrp_ok: only the owner may "change" to the same ids */
	if ((sa->valid & FS_SET_UID) && c->uid != 0 && !(c->uid == a->uid && sa->uid == a->uid))
		return -EPERM;
	if ((sa->valid & FS_SET_GID) && c->uid != 0 &&
	    !(c->uid == a->uid && (sa->gid == a->gid || fs_in_group(c, sa->gid))))
		return -EPERM;
	if ((sa->valid & FS_SET_MODE) && !owner &&
	    !(kills_priv_only(a, sa->mode) &&
	      ((sa->valid & FS_SET_BY_WRITER) || fs_may(c, a, 2) == 0)))
		return -EPERM;
	if (sa->valid & (FS_SET_ATIME | FS_SET_MTIME)) {
		if (!owner)
			return -EPERM;
	} else if (sa->valid & (FS_SET_ATIME_NOW | FS_SET_MTIME_NOW)) {
		if (!owner && fs_may(c, a, 2) < 0)
			return -EACCES;
	}
	if (sa->valid & FS_SET_SIZE) {
		if (S_ISDIR(a->mode))
			return -EISDIR;
		if (!S_ISREG(a->mode))
			return -EINVAL;
		if (sa->size > FS_MAX_FILE_BYTES)
			return -EFBIG;
		return sa->valid & FS_SET_BY_WRITER ? 0 : fs_may(c, a, 2);
	}
	return 0;
}

/* Owners and mode: a chown clears the privilege bits, a chmod may not give away setgid. */
static void setattr_ids_mode(const struct fs_cred *c, struct fs_attr *a,
			     const struct fs_setattr *sa)
{
	bool chowned = ((sa->valid & FS_SET_UID) && sa->uid != a->uid) ||
		       ((sa->valid & FS_SET_GID) && sa->gid != a->gid);

	if (sa->valid & FS_SET_UID)
		a->uid = sa->uid;
	if (sa->valid & FS_SET_GID)
		a->gid = sa->gid;
	if (chowned && !(sa->valid & FS_SET_MODE))
		fs_kill_priv(a);
	if (sa->valid & FS_SET_MODE) {
		a->mode = (a->mode & S_IFMT) | (sa->mode & 07777);
		if (c->uid != 0 && !fs_in_group(c, a->gid))
			a->mode &= ~(uint32_t)S_ISGID;
	}
}

/* The times: explicit or now; ctime is now unless the owner sets it (FS_SET_CTIME). */
static void setattr_times(struct fs *fs, bool owner, struct fs_inode *in,
			  const struct fs_setattr *sa, const struct fs_time *now)
{
	if (sa->valid & FS_SET_ATIME_NOW)
		in->a.atime = *now;
	else if (sa->valid & FS_SET_ATIME)
		in->a.atime = sa->atime;
	if (sa->valid & (FS_SET_ATIME | FS_SET_ATIME_NOW))
		fs_atime_forget(fs, in->a.ino);
	if (sa->valid & FS_SET_MTIME_NOW)
		in->a.mtime = *now;
	else if (sa->valid & FS_SET_MTIME)
		in->a.mtime = sa->mtime;
	in->a.ctime = (sa->valid & FS_SET_CTIME) && owner ? sa->ctime : *now;
}

int fs_setattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, const struct fs_setattr *sa,
	       struct fs_attr *out)
{
	uint64_t before = fs_used_bytes(fs);
	struct fs_inode in;
	struct fs_time now;
	bool owner;
	int ret = fs_inode_get(fs, ino, &in);

	if (ret == 0)
		ret = setattr_check(c, &in.a, sa);
	if (ret < 0)
		return ret;
	owner = c->uid == 0 || c->uid == in.a.uid; /* as it was before a chown */
	fs_now(fs, &now);
	setattr_ids_mode(c, &in.a, sa);
	if (sa->valid & FS_SET_SIZE) {
		if (sa->size != in.a.size) {
			ret = fs_data_truncate(fs, &in, sa->size);
			if (ret < 0)
				return ret;
		}
		/* truncate(2) changes mtime even when the size stays */
		in.a.mtime = now;
		if (c->uid != 0)
			fs_kill_priv(&in.a);
	}
	setattr_times(fs, owner, &in, sa, &now);
	ret = fs_inode_put(fs, &in);
	ret = fs_space_check(fs, before, ret);
	if (ret == 0)
		*out = in.a;
	return ret;
}

int fs_access(struct fs *fs, const struct fs_cred *c, uint64_t ino, int mask)
{
	struct fs_inode in;
	int ret = fs_inode_get(fs, ino, &in);

	if (ret < 0 || mask == 0)
		return ret;
	return fs_may(c, &in.a, mask & 7);
}

int fs_statfs(struct fs *fs, struct fs_statfs *out)
{
	uint64_t used = fs_used_bytes(fs), total = fs->space;
	int64_t inodes = 0, next = 0;
	int ret = meta_get(fs, "inodes", &inodes);

	if (ret < 0)
		return ret;
	if (total == 0) /* no limit given: what the database holds so far */
		total = used;
	memset(out, 0, sizeof(*out));
	out->bsize = FS_STATFS_BSIZE;
	out->blocks = total / FS_STATFS_BSIZE;
	out->bfree = total > used ? (total - used) / FS_STATFS_BSIZE : 0;
	out->bavail = out->bfree;
	/* an inode costs about a quarter block: as many more as the free space holds, */
	out->ffree = out->bfree * 4;
	/* and as many numbers as are left (they are never used twice) */
	if (meta_get(fs, "next_ino", &next) == 0)
		out->ffree = MIN(out->ffree, FS_MAX_INO - MIN((uint64_t)next, FS_MAX_INO));
	out->files = (uint64_t)inodes + out->ffree;
	out->namemax = FS_NAME_MAX;
	return 0;
}

uint64_t fs_used_bytes(struct fs *fs)
{
	sqlite3_stmt *s;
	int64_t pages = 0, free_pages = 0, reserved;

	s = fs_st(fs, ST_PAGE_COUNT);
	if (sqlite3_step(s) == SQLITE_ROW)
		pages = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	s = fs_st(fs, ST_FREE_COUNT);
	if (sqlite3_step(s) == SQLITE_ROW)
		free_pages = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (meta_get(fs, "reserved", &reserved) < 0)
		reserved = 0;
	return (uint64_t)(pages - free_pages) * (uint64_t)fs->page_size + (uint64_t)reserved;
}

int fs_reserve(struct fs *fs, struct fs_inode *in, int64_t delta)
{
	int64_t total;
	int ret;

	if (delta == 0)
		return 0;
	if (delta < 0 && (uint64_t)-delta > in->reserved)
		delta = -(int64_t)in->reserved;
	ret = meta_get(fs, "reserved", &total);
	if (ret == 0)
		ret = meta_set(fs, "reserved", MAX(total + delta, 0));
	if (ret == 0)
		in->reserved = (uint64_t)((int64_t)in->reserved + delta);
	return ret;
}

void fs_set_space(struct fs *fs, uint64_t bytes)
{
	fs->space = bytes;
}

void fs_set_release_inline(struct fs *fs, uint64_t bytes)
{
	fs->inline_bytes = bytes;
}

/* ---- opening and creating ---- */

static int open_check(const struct fs_cred *c, const struct fs_attr *a, int flags)
{
	int acc = flags & O_ACCMODE, mask = 0;

	if (acc == O_RDONLY || acc == O_RDWR)
		mask |= 4;
	if (acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC))
		mask |= 2;
	if (S_ISDIR(a->mode) && (mask & 2))
		return -EISDIR;
	if (S_ISLNK(a->mode))
		return -ELOOP;
	return fs_may(c, a, mask);
}

int fs_open(struct fs *fs, const struct fs_cred *c, uint64_t ino, int flags, struct fs_attr *out)
{
	struct fs_inode in;
	struct fs_time now;
	int ret = fs_inode_get(fs, ino, &in);

	if (ret < 0)
		return ret;
	ret = open_check(c, &in.a, flags);
	if (ret < 0)
		return ret;
	if ((flags & O_TRUNC) && S_ISREG(in.a.mode)) {
		/* the times change even when the file was empty already (as Linux) */
		fs_now(fs, &now);
		ret = fs_data_truncate(fs, &in, 0);
		if (ret < 0)
			return ret;
		in.a.mtime = in.a.ctime = now;
		if (c->uid != 0)
			fs_kill_priv(&in.a);
		ret = fs_inode_put(fs, &in);
	}
	if (ret == 0)
		*out = in.a;
	return ret;
}

int fs_create(struct fs *fs, const struct fs_cred *c, uint64_t parent, const char *name,
	      size_t namelen, uint32_t mode, int flags, struct fs_attr *out)
{
	uint64_t before = fs_used_bytes(fs);
	struct fs_inode in;
	struct fs_attr a;
	int ret;

	/* an existing name needs no write permission on the directory: it is an open */
	ret = is_dot(name, namelen) ? -EEXIST : fs_lookup(fs, c, parent, name, namelen, &a);
	if (ret == 0 || ret == -EEXIST) {
		if (flags & O_EXCL)
			return -EEXIST;
		if (ret == -EEXIST || S_ISDIR(a.mode))
			return -EISDIR;
		return fs_space_check(fs, before, fs_open(fs, c, a.ino, flags, out));
	}
	if (ret != -ENOENT)
		return ret;
	ret = make_node(fs, c, parent, name, namelen, S_IFREG | (mode & 07777 & ~umask_bits(c)), 0,
			&in);
	ret = fs_space_check(fs, before, ret);
	if (ret == 0)
		*out = in.a;
	return ret;
}

/* ---- directories ---- */

int fs_readdir(struct fs *fs, const struct fs_cred *c, uint64_t ino, uint64_t cookie, bool plus,
	       fs_emit_fn emit, void *arg)
{
	struct fs_inode dir, in;
	sqlite3_stmt *s;
	int ret, rc;

	ret = dir_get(fs, c, ino, &dir, 4);
	if (ret < 0)
		return ret;
	fs_atime_touch(fs, &dir);
	if (cookie < 1) {
		if (emit(arg, ".", 1, ino, S_IFDIR, plus ? &dir.a : NULL, 1))
			return 0;
	}
	if (cookie < 2) {
		ret = plus ? fs_inode_get(fs, dir.parent, &in) : 0;
		if (ret < 0)
			return ret;
		if (emit(arg, "..", 2, dir.parent, S_IFDIR, plus ? &in.a : NULL, 2))
			return 0;
	}
	/*
	 * Statements are shared: collect this call's entries first when plus
	 * needs other statements between the rows.
	 */
	s = fs->st_readdir;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, (int64_t)MAX(cookie, 2));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = sqlite3_column_blob(s, 0);
		size_t len = (size_t)sqlite3_column_bytes(s, 0);
		uint64_t eino = (uint64_t)sqlite3_column_int64(s, 1);
		uint32_t type = (uint32_t)sqlite3_column_int64(s, 2);
		uint64_t ecookie = (uint64_t)sqlite3_column_int64(s, 3);
		const struct fs_attr *ap = NULL;

		if (plus) {
			ret = fs_inode_get(fs, eino, &in);
			if (ret < 0)
				break;
			ap = &in.a;
		}
		if (emit(arg, name, len, eino, type, ap, ecookie))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = fs_sql_err(fs, rc, "reading a directory");
	sqlite3_reset(s);
	return ret;
}

/* ---- orphans ---- */

int fs_orphan_is(struct fs *fs, uint64_t ino)
{
	return fs_row_exists(fs, ST_ORPHAN_GET, (int64_t)ino, "reading orphans");
}

int fs_orphan_release(struct fs *fs, uint64_t ino)
{
	sqlite3_stmt *s = fs_st(fs, ST_ORPHAN_GET);
	struct fs_inode in;
	int rc, ret;

	sqlite3_bind_int64(s, 1, (int64_t)ino);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return fs_sql_err(fs, rc, "reading orphans");
	if (fs->hooks.is_open != NULL && fs->hooks.is_open(fs->hooks.arg, ino))
		return 0;
	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	return in.a.nlink == 0 ? fs_inode_delete(fs, &in) : 0;
}

int fs_orphans_purge(struct fs *fs)
{
	sqlite3_stmt *s = fs_st(fs, ST_ORPHAN_LIST);
	uint64_t *inos = NULL;
	size_t n = 0, cap = 0;
	int rc, ret = 0, total = 0;

	/* the list first: releasing changes the table being read */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			uint64_t *bigger = realloc(inos, (cap ? cap * 2 : 64) * sizeof(*inos));

			if (bigger == NULL) {
				ret = -ENOMEM;
				break;
			}
			inos = bigger;
			cap = cap ? cap * 2 : 64;
		}
		inos[n++] = (uint64_t)sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	if (ret == 0 && rc != SQLITE_DONE)
		ret = fs_sql_err(fs, rc, "listing orphans");
	for (size_t i = 0; ret == 0 && i < n; i++) {
		if (fs->hooks.is_open && fs->hooks.is_open(fs->hooks.arg, inos[i]))
			continue; /* held: it stays */
		ret = fs_orphan_release(fs, inos[i]);
		total++;
	}
	free(inos);
	return ret < 0 ? ret : total;
}

/* ---- format and open ---- */

int fs_format(struct sqlite3 *db, const struct fs_format_opts *o)
{
	char sql[1024];
	char *msg = NULL;
	uint32_t mode = o->root_mode & 07777;

	if (sqlite3_exec(db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("fs", "creating the tables: %s", msg);
		sqlite3_free(msg);
		return -EIO;
	}
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meta(k, v) VALUES('version', %d), ('next_ino', 2), "
		 "('generation', 1), ('inodes', 1), ('next_did', 1), ('reserved', 0);"
		 "INSERT INTO inodes VALUES(1, 1, %u, %u, %u, 0, 2, %lld, %u, %lld, %u, %lld, %u, "
		 "0, 0, 1, 3, 0, 0, x'');",
		 FS_FORMAT_VERSION, S_IFDIR | mode, o->root_uid, o->root_gid,
		 (long long)o->now.sec, o->now.nsec, (long long)o->now.sec, o->now.nsec,
		 (long long)o->now.sec, o->now.nsec);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("fs", "creating the root directory: %s", msg);
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int fs_attach(struct sqlite3 *db, const struct fs_hooks *hooks, struct fs **out)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	int64_t version = 0, g;
	int ret = 0;

	*out = NULL;
	if (fs == NULL)
		return -ENOMEM;
	fs->db = db;
	if (hooks)
		fs->hooks = *hooks;
	for (int i = 0; i < ST_NR; i++) {
		if (sqlite3_prepare_v3(db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &fs->st[i], NULL) !=
		    SQLITE_OK) {
			log_err("fs", "the store has not got the filesystem's tables (%s): %s", SQL[i],
				sqlite3_errmsg(db));
			ret = -EIO;
			goto fail;
		}
	}
	if (sqlite3_prepare_v3(db, SQL[ST_DENT_LIST], -1, SQLITE_PREPARE_PERSISTENT,
			       &fs->st_readdir, NULL) != SQLITE_OK) {
		ret = -EIO;
		goto fail;
	}
	ret = meta_get(fs, "version", &version);
	if (ret == 0 && version != FS_FORMAT_VERSION) {
		log_err("fs", "the store holds filesystem format %" PRId64 ", this program reads %d",
			version, FS_FORMAT_VERSION);
		ret = -EIO;
	}
	if (ret < 0)
		goto fail;
	fs->page_size = 4096;
	fs->inline_bytes = FS_RELEASE_INLINE_BYTES;
	{
		sqlite3_stmt *s;

		if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &s, NULL) == SQLITE_OK) {
			if (sqlite3_step(s) == SQLITE_ROW)
				fs->page_size = (uint32_t)sqlite3_column_int64(s, 0);
			sqlite3_finalize(s);
		}
	}
	/* every mount of the store is a new generation of inode numbers' users */
	ret = meta_get(fs, "generation", &g);
	if (ret < 0)
		goto fail;
	*out = fs;
	return 0;
fail:
	fs_detach(fs);
	return ret == -ENOENT ? -EIO : ret;
}

void fs_detach(struct fs *fs)
{
	if (fs == NULL)
		return;
	for (int i = 0; i < ST_NR; i++)
		sqlite3_finalize(fs->st[i]);
	sqlite3_finalize(fs->st_readdir);
	free(fs->atimes);
	free(fs);
}
