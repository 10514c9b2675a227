/*
 * fs_lock.c - file locks held by the server, in the store (see fs.h).
 *
 * A lock is (inode, kind, owner, range, type): kind is POSIX (fcntl) or
 * FLOCK, and they never conflict with each other, as on Linux.  An owner
 * is (mount rid, the kernel's lock owner id): for fcntl the process's
 * files table, for flock the open file description.  So two processes on
 * two mounts meet exactly as two processes on one host do.
 *
 * The rules, over the locks of one inode and kind (an owner's locks never
 * overlap one another):
 *  - a request conflicts with another owner's lock that overlaps it when
 *    either is a write lock;
 *  - setting a lock replaces what its owner held over the range (so a
 *    lock converts in place, and an unlock splits what it cuts), and
 *    then merges with the owner's overlapping or adjacent locks of the
 *    same type, as POSIX says.
 * lock_apply is that arithmetic on arrays, free of the store; fs_setlk
 * reads an inode's locks, applies and writes back the owner's.
 */
#include "server/fs_priv.h"

#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

static bool overlaps(const struct fs_lock *a, const struct fs_lock *b)
{
	return a->start <= b->end && b->start <= a->end;
}

static bool same_owner(const struct fs_lock *a, const struct fs_lock *b)
{
	return a->rid == b->rid && a->owner == b->owner;
}

const struct fs_lock *fs_lock_conflict(const struct fs_lock *held, uint32_t n,
				       const struct fs_lock *want)
{
	for (uint32_t i = 0; i < n; i++)
		if (!same_owner(&held[i], want) && overlaps(&held[i], want) &&
		    (held[i].type == F_WRLCK || want->type == F_WRLCK))
			return &held[i];
	return NULL;
}

uint32_t fs_lock_apply(const struct fs_lock *mine, uint32_t n, const struct fs_lock *want,
		       struct fs_lock *out)
{
	struct fs_lock w = *want;
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct fs_lock *l = &mine[i];
		bool touches = l->end + 1 == w.start || w.end + 1 == l->start;

		if (w.type != F_UNLCK && l->type == w.type && (overlaps(l, &w) || touches)) {
			w.start = MIN(w.start, l->start); /* one lock of the two */
			w.end = MAX(w.end, l->end);
			continue;
		}
		if (!overlaps(l, want)) {
			out[k++] = *l;
			continue;
		}
		if (l->start < want->start) { /* what is left of it on either side */
			out[k] = *l;
			out[k++].end = want->start - 1;
		}
		if (l->end > want->end) {
			out[k] = *l;
			out[k++].start = want->end + 1;
		}
	}
	if (w.type != F_UNLCK)
		out[k++] = w;
	return k;
}

/* ---- in the store ---- */

/* The locks of one inode and kind, all owners (*held: malloc'd). */
static int locks_read(struct fs *fs, uint64_t ino, uint32_t kind, struct fs_lock **held,
		      uint32_t *n)
{
	sqlite3_stmt *s = fs_st(fs, ST_LOCK_LIST);
	struct fs_lock *v = NULL;
	uint32_t cap = 0;
	int rc;

	*n = 0;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, kind);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			struct fs_lock *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (nv == NULL) {
				sqlite3_reset(s);
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[*n] = (struct fs_lock){
			.rid = (uint64_t)sqlite3_column_int64(s, 0),
			.owner = (uint64_t)sqlite3_column_int64(s, 1),
			.start = (uint64_t)sqlite3_column_int64(s, 2),
			.end = (uint64_t)sqlite3_column_int64(s, 3),
			.type = (uint32_t)sqlite3_column_int64(s, 4),
			.pid = (uint32_t)sqlite3_column_int64(s, 5),
		};
		(*n)++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return fs_sql_err(fs, rc, "reading locks");
	}
	*held = v;
	return 0;
}

/* A request checked, and the locks of its inode and kind (*held: malloc'd). */
static int locks_for(struct fs *fs, uint64_t ino, uint32_t kind, const struct fs_lock *l,
		     struct fs_lock **held, uint32_t *n)
{
	struct fs_inode in;
	int ret;

	if (l->type != F_RDLCK && l->type != F_WRLCK && l->type != F_UNLCK)
		return -EINVAL;
	if (l->start > l->end || l->end > FS_LOCK_END)
		return -EINVAL;
	ret = fs_inode_get(fs, ino, &in);
	return ret < 0 ? ret : locks_read(fs, ino, kind, held, n);
}

/* ---- who waits for whom: deadlocks ---- */

static struct fs_lock_wait *wait_find(struct fs_lock_waits *ws, uint64_t rid, uint64_t owner)
{
	for (uint32_t i = 0; i < ws->n; i++)
		if (ws->w[i].rid == rid && ws->w[i].owner == owner)
			return &ws->w[i];
	return NULL;
}

/* (rid, owner)'s wait, if it was said recently enough to still hold. */
static struct fs_lock_wait *wait_of(struct fs_lock_waits *ws, uint64_t rid, uint64_t owner,
				    mono_ns now)
{
	struct fs_lock_wait *w = wait_find(ws, rid, owner);

	return w != NULL && now - w->at <= FS_LOCK_WAIT_STALE_NS ? w : NULL;
}

static void wait_remove(struct fs_lock_waits *ws, uint32_t i)
{
	ws->w[i] = ws->w[--ws->n];
}

/* Forget what is stale; true when there is room for one more. */
static bool wait_room(struct fs_lock_waits *ws, mono_ns now)
{
	if (ws->n < ws->cap)
		return true;
	for (uint32_t i = 0; i < ws->n;)
		if (now - ws->w[i].at > FS_LOCK_WAIT_STALE_NS)
			wait_remove(ws, i);
		else
			i++;
	if (ws->n < ws->cap)
		return true;
	if (ws->cap < FS_LOCK_WAITS_MAX) {
		uint32_t cap = ws->cap ? MIN(ws->cap * 2, (uint32_t)FS_LOCK_WAITS_MAX) : 16;
		struct fs_lock_wait *w = realloc(ws->w, cap * sizeof(*w));

		if (w != NULL) {
			ws->w = w;
			ws->cap = cap;
			return true;
		}
	}
	return false;
}

bool fs_lock_wait(struct fs_lock_waits *ws, uint64_t rid, uint64_t owner, uint64_t on_rid,
		  uint64_t on_owner, mono_ns now)
{
	uint64_t r = on_rid, o = on_owner;
	struct fs_lock_wait *w;

	/* follow the waits from the owner in the way: back to us is a cycle */
	for (uint32_t steps = 0; steps <= ws->n; steps++) {
		if (r == rid && o == owner) {
			fs_lock_wait_end(ws, rid, owner);
			return true;
		}
		w = wait_of(ws, r, o, now);
		if (w == NULL)
			break;
		r = w->on_rid;
		o = w->on_owner;
	}
	w = wait_find(ws, rid, owner); /* (stale or not: renewed) */
	if (w == NULL) {
		if (!wait_room(ws, now))
			return false;
		w = &ws->w[ws->n++];
	}
	*w = (struct fs_lock_wait){ .rid = rid, .owner = owner, .on_rid = on_rid,
				    .on_owner = on_owner, .at = now };
	return false;
}

void fs_lock_wait_end(struct fs_lock_waits *ws, uint64_t rid, uint64_t owner)
{
	for (uint32_t i = 0; i < ws->n; i++)
		if (ws->w[i].rid == rid && ws->w[i].owner == owner) {
			wait_remove(ws, i);
			return;
		}
}

void fs_lock_wait_drop_rid(struct fs_lock_waits *ws, uint64_t rid)
{
	for (uint32_t i = 0; i < ws->n;)
		if (ws->w[i].rid == rid)
			wait_remove(ws, i);
		else
			i++;
}

void fs_lock_waits_free(struct fs_lock_waits *ws)
{
	free(ws->w);
	*ws = (struct fs_lock_waits){ 0 };
}

/* ---- the store's ---- */

int fs_getlk(struct fs *fs, uint64_t ino, uint32_t kind, struct fs_lock *l)
{
	struct fs_lock *held = NULL;
	const struct fs_lock *c;
	uint32_t n;
	int ret = locks_for(fs, ino, kind, l, &held, &n);

	if (ret < 0)
		return ret;
	c = l->type == F_UNLCK ? NULL : fs_lock_conflict(held, n, l);
	if (c != NULL)
		*l = *c;
	else
		l->type = F_UNLCK;
	free(held);
	return 0;
}

int fs_setlk(struct fs *fs, uint64_t ino, uint32_t kind, const struct fs_lock *l)
{
	struct fs_lock *held = NULL, *mine = NULL, *out = NULL;
	uint32_t n, nmine = 0, nout;
	sqlite3_stmt *s;
	int ret = locks_for(fs, ino, kind, l, &held, &n);

	if (ret < 0)
		return ret;
	if (l->type != F_UNLCK && fs_lock_conflict(held, n, l) != NULL) {
		free(held);
		return -EAGAIN;
	}
	mine = malloc((n + 2) * sizeof(*mine));
	out = malloc((n + 2) * sizeof(*out));
	if (mine == NULL || out == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		if (same_owner(&held[i], l))
			mine[nmine++] = held[i];
	nout = fs_lock_apply(mine, nmine, l, out);
	if (n - nmine + nout > FS_LOCKS_PER_INODE_MAX) {
		ret = -ENOLCK;
		goto out;
	}
	s = fs_st(fs, ST_LOCK_DEL_OWNER);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, kind);
	sqlite3_bind_int64(s, 3, (int64_t)l->rid);
	sqlite3_bind_int64(s, 4, (int64_t)l->owner);
	ret = fs_done(fs, s);
	for (uint32_t i = 0; ret == 0 && i < nout; i++) {
		s = fs_st(fs, ST_LOCK_PUT);
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		sqlite3_bind_int64(s, 2, kind);
		sqlite3_bind_int64(s, 3, (int64_t)out[i].rid);
		sqlite3_bind_int64(s, 4, (int64_t)out[i].owner);
		sqlite3_bind_int64(s, 5, (int64_t)out[i].start);
		sqlite3_bind_int64(s, 6, (int64_t)out[i].end);
		sqlite3_bind_int64(s, 7, out[i].type);
		sqlite3_bind_int64(s, 8, out[i].pid);
		ret = fs_done(fs, s);
	}
out:
	free(held);
	free(mine);
	free(out);
	return ret;
}

int fs_locks_drop_client(struct fs *fs, uint64_t rid)
{
	sqlite3_stmt *s = fs_st(fs, ST_LOCK_DEL_RID);
	int ret, n;

	sqlite3_bind_int64(s, 1, (int64_t)rid);
	ret = fs_done(fs, s);
	if (ret < 0)
		return ret;
	ret = sqlite3_changes(fs->db);
	s = fs_st(fs, ST_LOCKER_DEL);
	sqlite3_bind_int64(s, 1, (int64_t)rid);
	n = fs_done(fs, s);
	return n < 0 ? n : ret;
}

int fs_locks_count(struct fs *fs, uint64_t *n)
{
	sqlite3_stmt *s = fs_st(fs, ST_LOCK_COUNT);
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : fs_sql_err(fs, rc, "counting locks");
}

int fs_locks_held_by(struct fs *fs, uint64_t rid)
{
	return fs_row_exists(fs, ST_LOCK_ANY_RID, (int64_t)rid, "reading a mount's locks");
}

int fs_locker_note(struct fs *fs, uint64_t rid, const void *who, size_t len)
{
	sqlite3_stmt *s = fs_st(fs, ST_LOCKER_PUT);

	sqlite3_bind_int64(s, 1, (int64_t)rid);
	sqlite3_bind_blob(s, 2, who, (int)len, SQLITE_STATIC);
	return fs_done(fs, s);
}

int fs_locker_get(struct fs *fs, uint64_t rid, void *who, size_t len)
{
	sqlite3_stmt *s = fs_st(fs, ST_LOCKER_GET);
	int rc, ret = -ENOENT;

	sqlite3_bind_int64(s, 1, (int64_t)rid);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && (size_t)sqlite3_column_bytes(s, 0) == len) {
		memcpy(who, sqlite3_column_blob(s, 0), len);
		ret = 0;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		ret = fs_sql_err(fs, rc, "reading who a mount is");
	}
	sqlite3_reset(s);
	return ret;
}

int fs_locks_rids(struct fs *fs, uint64_t **rids, uint32_t *n)
{
	sqlite3_stmt *s = fs_st(fs, ST_LOCK_RIDS);
	uint64_t *v = NULL;
	uint32_t cap = 0;
	int rc;

	*n = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			uint64_t *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (nv == NULL) {
				sqlite3_reset(s);
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[(*n)++] = (uint64_t)sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return fs_sql_err(fs, rc, "listing the mounts that hold locks");
	}
	*rids = v;
	return 0;
}

int fs_client_gone(struct fs *fs, uint64_t rid)
{
	sqlite3_stmt *s = fs_st(fs, ST_GONE_PUT);
	struct fs_time now;

	fs_now(fs, &now);
	sqlite3_bind_int64(s, 1, (int64_t)rid);
	sqlite3_bind_int64(s, 2, now.sec);
	return fs_done(fs, s);
}

int fs_client_was_gone(struct fs *fs, uint64_t rid)
{
	return fs_row_exists(fs, ST_GONE_GET, (int64_t)rid, "reading gone mounts");
}
