/*
 * fs_xattr.c - extended attributes, the results of recent requests, and
 * deferred access times (see fs.h).
 *
 * Namespaces as Linux has them, without ACLs or security modules:
 *   user.*      regular files and directories only; reading needs read
 *               permission, changing needs write permission (and, in a
 *               sticky directory, ownership);
 *   trusted.*   root only: others read ENODATA, change EPERM, list nothing;
 *   security.*  anyone reads; the owner or root changes;
 *   system.*    and anything else: EOPNOTSUPP.
 *
 * Access times follow relatime: a read records one when the old atime is
 * not after mtime or ctime, or is a day old.  It is kept in memory (and
 * shown by getattr) until fs_atime_flush writes it in a batch that commits
 * anyway: reading never forces a commit.  A crash loses at most those
 * access times, never anything else.
 */
#include "server/fs_priv.h"

#include "common/common.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>

enum xns { XNS_USER, XNS_TRUSTED, XNS_SECURITY, XNS_OTHER };

static enum xns ns_of(const char *name)
{
	if (strncmp(name, "user.", 5) == 0)
		return XNS_USER;
	if (strncmp(name, "trusted.", 8) == 0)
		return XNS_TRUSTED;
	if (strncmp(name, "security.", 9) == 0)
		return XNS_SECURITY;
	return XNS_OTHER;
}

/* May c read (write false) or change (write true) the attribute name of in? */
static int xattr_perm(struct fs *fs, const struct fs_cred *c, const struct fs_inode *in,
		      const char *name, bool write)
{
	size_t len = strlen(name);

	if (len == 0)
		return -EINVAL;
	if (len > FS_XATTR_NAME_MAX)
		return -ERANGE;
	switch (ns_of(name)) {
	case XNS_USER:
		if (!S_ISREG(in->a.mode) && !S_ISDIR(in->a.mode))
			return write ? -EPERM : -ENODATA;
		if (write && S_ISDIR(in->a.mode) && (in->a.mode & S_ISVTX) && c->uid != 0 &&
		    c->uid != in->a.uid)
			return -EPERM;
		return fs_may(c, &in->a, write ? 2 : 4);
	case XNS_TRUSTED:
		if (c->uid != 0)
			return write ? -EPERM : -ENODATA;
		return 0;
	case XNS_SECURITY:
		if (write && c->uid != 0 && c->uid != in->a.uid)
			return -EPERM;
		return 0;
	case XNS_OTHER:
		break;
	}
	(void)fs;
	return -EOPNOTSUPP;
}

int fs_getxattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, const char *name,
		void *buf, size_t size)
{
	struct fs_inode in;
	sqlite3_stmt *s;
	int ret, rc;

	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	ret = xattr_perm(fs, c, &in, name, false);
	if (ret < 0)
		return ret;
	s = fs_st(fs, ST_XATTR_GET);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(s, 0);

		if (size == 0)
			ret = n;
		else if ((size_t)n > size)
			ret = -ERANGE;
		else {
			if (n > 0)
				memcpy(buf, sqlite3_column_blob(s, 0), (size_t)n);
			ret = n;
		}
	} else {
		ret = rc == SQLITE_DONE ? -ENODATA : fs_sql_err(fs, rc, "reading an xattr");
	}
	sqlite3_reset(s);
	return ret;
}

int fs_setxattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, const char *name,
		const void *value, size_t size, int flags)
{
	uint64_t before = fs_used_bytes(fs);
	struct fs_inode in;
	sqlite3_stmt *s;
	bool exists;
	int ret, rc;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (size > FS_XATTR_SIZE_MAX)
		return -E2BIG;
	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	ret = xattr_perm(fs, c, &in, name, true);
	if (ret < 0)
		return ret;
	s = fs_st(fs, ST_XATTR_GET);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_sql_err(fs, rc, "reading an xattr");
	exists = rc == SQLITE_ROW;
	if ((flags & XATTR_CREATE) && exists)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && !exists)
		return -ENODATA;
	s = fs_st(fs, ST_XATTR_PUT);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, size ? value : "", (int)size, SQLITE_STATIC);
	ret = fs_done(fs, s);
	if (ret == 0) {
		fs_now(fs, &in.a.ctime);
		ret = fs_inode_put(fs, &in);
	}
	return fs_space_check(fs, before, ret);
}

int fs_listxattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, char *buf, size_t size)
{
	struct fs_inode in;
	sqlite3_stmt *s;
	size_t used = 0;
	int ret, rc;

	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	s = fs_st(fs, ST_XATTR_LIST);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = sqlite3_column_blob(s, 0);
		size_t n = (size_t)sqlite3_column_bytes(s, 0);

		if (c->uid != 0 && n >= 8 && strncmp(name, "trusted.", 8) == 0)
			continue;
		if (size > 0 && used + n + 1 <= size) {
			memcpy(buf + used, name, n);
			buf[used + n] = '\0';
		}
		used += n + 1;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return fs_sql_err(fs, rc, "listing xattrs");
	if (size > 0 && used > size)
		return -ERANGE;
	if (used > FS_XATTR_LIST_MAX)
		return -E2BIG;
	return (int)used;
}

int fs_removexattr(struct fs *fs, const struct fs_cred *c, uint64_t ino, const char *name)
{
	struct fs_inode in;
	sqlite3_stmt *s;
	int ret;

	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	ret = xattr_perm(fs, c, &in, name, true);
	if (ret < 0)
		return ret;
	s = fs_st(fs, ST_XATTR_DEL);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_blob(s, 2, name, (int)strlen(name), SQLITE_STATIC);
	ret = fs_done(fs, s);
	if (ret < 0)
		return ret;
	if (sqlite3_changes(fs->db) == 0)
		return -ENODATA;
	fs_now(fs, &in.a.ctime);
	return fs_inode_put(fs, &in);
}

/* ---- results of recent requests ---- */

int fs_reply_put(struct fs *fs, uint64_t client, uint64_t req, uint32_t status,
		 const void *payload, size_t len)
{
	sqlite3_stmt *s = fs_st(fs, ST_REPLY_PUT);

	sqlite3_bind_int64(s, 1, (int64_t)client);
	sqlite3_bind_int64(s, 2, (int64_t)req);
	sqlite3_bind_int64(s, 3, status);
	sqlite3_bind_blob(s, 4, len ? payload : "", (int)len, SQLITE_STATIC);
	return fs_done(fs, s);
}

int fs_reply_get(struct fs *fs, uint64_t client, uint64_t req, uint32_t *status, void *buf,
		 size_t cap, size_t *len)
{
	sqlite3_stmt *s = fs_st(fs, ST_REPLY_GET);
	int ret = 0, rc;

	sqlite3_bind_int64(s, 1, (int64_t)client);
	sqlite3_bind_int64(s, 2, (int64_t)req);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(s, 1);

		*status = (uint32_t)sqlite3_column_int64(s, 0);
		*len = n;
		if (n > cap)
			ret = -ERANGE;
		else if (n > 0)
			memcpy(buf, sqlite3_column_blob(s, 1), n);
	} else {
		ret = rc == SQLITE_DONE ? -ENOENT : fs_sql_err(fs, rc, "reading a reply");
	}
	sqlite3_reset(s);
	return ret;
}

int fs_reply_trim(struct fs *fs, uint64_t client, uint64_t oldest)
{
	sqlite3_stmt *s = fs_st(fs, ST_REPLY_TRIM);

	sqlite3_bind_int64(s, 1, (int64_t)client);
	sqlite3_bind_int64(s, 2, (int64_t)oldest);
	return fs_done(fs, s);
}

int fs_reply_forget_client(struct fs *fs, uint64_t client)
{
	sqlite3_stmt *s = fs_st(fs, ST_REPLY_FORGET);

	sqlite3_bind_int64(s, 1, (int64_t)client);
	return fs_done(fs, s);
}

/* ---- deferred access times ---- */

static struct fs_atime *atime_find(struct fs *fs, uint64_t ino)
{
	for (uint32_t i = 0; i < fs->natimes; i++)
		if (fs->atimes[i].ino == ino)
			return &fs->atimes[i];
	return NULL;
}

void fs_atime_pending(struct fs *fs, uint64_t ino, struct fs_time *atime)
{
	struct fs_atime *p = fs->natimes ? atime_find(fs, ino) : NULL;

	if (p != NULL)
		*atime = p->t;
}

void fs_atime_forget(struct fs *fs, uint64_t ino)
{
	struct fs_atime *p = fs->natimes ? atime_find(fs, ino) : NULL;

	if (p != NULL)
		*p = fs->atimes[--fs->natimes];
}

static bool time_le(const struct fs_time *a, const struct fs_time *b)
{
	return a->sec < b->sec || (a->sec == b->sec && a->nsec <= b->nsec);
}

void fs_atime_touch(struct fs *fs, struct fs_inode *in)
{
	struct fs_time now;
	struct fs_atime *p;

	fs_now(fs, &now);
	if (!time_le(&in->a.atime, &in->a.mtime) && !time_le(&in->a.atime, &in->a.ctime) &&
	    now.sec - in->a.atime.sec < 24 * 3600)
		return; /* relatime: recent enough */
	p = atime_find(fs, in->a.ino);
	if (p == NULL) {
		if (fs->atimes == NULL)
			fs->atimes = calloc(FS_ATIME_MAX, sizeof(*fs->atimes));
		if (fs->atimes == NULL || fs->natimes >= FS_ATIME_MAX)
			return; /* full: this access time waits for the next read after a flush */
		p = &fs->atimes[fs->natimes++];
		p->ino = in->a.ino;
	}
	p->t = now;
	in->a.atime = now;
}

int fs_atime_flush(struct fs *fs)
{
	int ret = 0;

	while (fs->natimes > 0 && ret == 0) {
		struct fs_inode in;
		uint64_t ino = fs->atimes[fs->natimes - 1].ino;

		ret = fs_inode_get(fs, ino, &in); /* comes with the pending atime */
		if (ret == 0)
			ret = fs_inode_put(fs, &in);
		else if (ret == -ENOENT)
			ret = 0;
		fs->natimes--;
	}
	return ret;
}
