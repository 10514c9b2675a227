/*
 * fs_data.c - file data in chunks (see fs.h).
 *
 * Chunk i of inode n is the row with rowid n << 32 | i, holding bytes
 * [i * FS_CHUNK_BYTES, ...) of the file, at most FS_CHUNK_BYTES of them.
 * Invariant: no byte a chunk holds past the file's size is anything but
 * zero, and what no chunk holds reads as zero.  So a hole (an absent
 * chunk, or the part past a short one) reads as zeros, growing a file is
 * only a new size, and shrinking it drops whole chunks and cuts the last.
 *
 * A write inside what a chunk already holds goes in place through
 * incremental blob I/O (only the pages it touches are rewritten); anything
 * else rewrites the chunk.
 */
#include "server/fs_priv.h"

#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/stat.h>

#define IDX_MASK 0xffffffffull

static int64_t key(uint64_t ino, uint64_t idx)
{
	return (int64_t)(ino << 32 | idx);
}

/* The stored length of chunk idx of ino, or -1 when there is none. */
static int chunk_len(struct fs *fs, uint64_t ino, uint64_t idx, int64_t *len)
{
	sqlite3_stmt *s = fs_st(fs, ST_CHUNK_GET);
	int rc;

	sqlite3_bind_int64(s, 1, key(ino, idx));
	rc = sqlite3_step(s);
	*len = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fs_sql_err(fs, rc, "reading a chunk");
}

static int chunk_put(struct fs *fs, uint64_t ino, uint64_t idx, const void *data, size_t len)
{
	sqlite3_stmt *s = fs_st(fs, ST_CHUNK_PUT);

	sqlite3_bind_int64(s, 1, key(ino, idx));
	sqlite3_bind_blob(s, 2, data, (int)len, SQLITE_STATIC);
	return fs_done(fs, s);
}

/* Write len bytes at off of an existing chunk's blob, which holds them. */
static int chunk_write_in_place(struct fs *fs, uint64_t ino, uint64_t idx, const void *data,
				int len, int off)
{
	sqlite3_blob *b = NULL;
	int rc;

	rc = sqlite3_blob_open(fs->db, "main", "chunks", "data", key(ino, idx), 1, &b);
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_write(b, data, len, off);
	if (b != NULL && sqlite3_blob_close(b) != SQLITE_OK && rc == SQLITE_OK)
		rc = SQLITE_IOERR;
	return rc == SQLITE_OK ? 0 : fs_sql_err(fs, rc, "writing a chunk in place");
}

/* The whole blob of chunk idx into buf (which holds FS_CHUNK_BYTES). */
static int chunk_read_all(struct fs *fs, uint64_t ino, uint64_t idx, uint8_t *buf, int len)
{
	sqlite3_blob *b = NULL;
	int rc;

	rc = sqlite3_blob_open(fs->db, "main", "chunks", "data", key(ino, idx), 0, &b);
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_read(b, buf, len, 0);
	if (b != NULL)
		sqlite3_blob_close(b);
	return rc == SQLITE_OK ? 0 : fs_sql_err(fs, rc, "reading a chunk");
}

/*
 * Bytes [a, b) of chunk idx become data (NULL: zeros), growing the chunk
 * to b when it is shorter; in->bytes follows.
 */
static int chunk_update(struct fs *fs, struct fs_inode *in, uint64_t idx, const uint8_t *data,
			uint32_t a, uint32_t b)
{
	static const uint8_t zeros[FS_CHUNK_BYTES];
	uint8_t *buf;
	int64_t elen;
	int ret;

	ret = chunk_len(fs, in->a.ino, idx, &elen);
	if (ret < 0)
		return ret;
	if (elen >= (int64_t)b)
		return chunk_write_in_place(fs, in->a.ino, idx, data ? data : zeros, (int)(b - a),
					    (int)a);
	if (a == 0 && data != NULL) {
		ret = chunk_put(fs, in->a.ino, idx, data, b);
	} else {
		buf = calloc(1, FS_CHUNK_BYTES);
		if (buf == NULL)
			return -ENOMEM;
		ret = elen > 0 ? chunk_read_all(fs, in->a.ino, idx, buf, (int)elen) : 0;
		if (ret == 0 && data != NULL)
			memcpy(buf + a, data, b - a);
		if (ret == 0)
			ret = chunk_put(fs, in->a.ino, idx, buf, b);
		free(buf);
	}
	if (ret == 0)
		in->bytes += b - (uint64_t)MAX(elen, 0);
	return ret;
}

int fs_data_truncate_chunks(struct fs *fs, struct fs_inode *in, uint64_t size)
{
	uint64_t first = (size + FS_CHUNK_BYTES - 1) >> FS_CHUNK_SHIFT;
	uint32_t cut = (uint32_t)(size & (FS_CHUNK_BYTES - 1));
	sqlite3_stmt *s;
	int64_t gone = 0, elen;
	int ret, rc;

	/* the bytes that go, then the chunks */
	s = fs_st(fs, ST_CHUNK_BYTES);
	sqlite3_bind_int64(s, 1, key(in->a.ino, first));
	sqlite3_bind_int64(s, 2, key(in->a.ino, IDX_MASK));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		gone = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return fs_sql_err(fs, rc, "summing chunks");
	s = fs_st(fs, ST_CHUNK_DEL_FROM);
	sqlite3_bind_int64(s, 1, key(in->a.ino, first));
	sqlite3_bind_int64(s, 2, key(in->a.ino, IDX_MASK));
	ret = fs_done(fs, s);
	if (ret < 0)
		return ret;
	in->bytes -= MIN((uint64_t)gone, in->bytes);
	/* the chunk the new end falls in keeps only what lies before it */
	if (cut == 0)
		return 0;
	ret = chunk_len(fs, in->a.ino, size >> FS_CHUNK_SHIFT, &elen);
	if (ret < 0 || elen <= (int64_t)cut)
		return ret;
	{
		uint8_t *buf = malloc(FS_CHUNK_BYTES);

		if (buf == NULL)
			return -ENOMEM;
		ret = chunk_read_all(fs, in->a.ino, size >> FS_CHUNK_SHIFT, buf, (int)cut);
		if (ret == 0)
			ret = chunk_put(fs, in->a.ino, size >> FS_CHUNK_SHIFT, buf, cut);
		free(buf);
	}
	if (ret == 0)
		in->bytes -= (uint64_t)elen - cut;
	return ret;
}

int fs_data_release(struct fs *fs, struct fs_inode *in)
{
	sqlite3_stmt *s;

	if (in->bytes <= FS_RELEASE_INLINE_BYTES)
		return fs_data_truncate_chunks(fs, in, 0);
	/* (its number is never used again, so its chunks can wait) */
	s = fs_st(fs, ST_FREEING_ADD);
	sqlite3_bind_int64(s, 1, (int64_t)in->a.ino);
	return fs_done(fs, s);
}

int fs_release_pending(struct fs *fs, uint64_t *ino)
{
	sqlite3_stmt *s = fs_st(fs, ST_FREEING_FIRST);
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		*ino = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : fs_sql_err(fs, rc, "listing deleted files");
}

int fs_release_step(struct fs *fs, uint32_t max)
{
	sqlite3_stmt *s;
	int64_t upto = key(0, IDX_MASK);
	uint64_t ino;
	int rc, ret, n;

	ret = fs_release_pending(fs, &ino);
	if (ret <= 0 || max == 0)
		return ret;
	/* up to the max-th chunk left, or all of them */
	s = fs_st(fs, ST_CHUNK_NTH);
	sqlite3_bind_int64(s, 1, key(ino, 0));
	sqlite3_bind_int64(s, 2, key(ino, IDX_MASK));
	sqlite3_bind_int64(s, 3, max - 1);
	rc = sqlite3_step(s);
	upto = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : key(ino, IDX_MASK);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_sql_err(fs, rc, "finding a deleted file's chunks");
	s = fs_st(fs, ST_CHUNK_DEL_FROM);
	sqlite3_bind_int64(s, 1, key(ino, 0));
	sqlite3_bind_int64(s, 2, upto);
	ret = fs_done(fs, s);
	n = sqlite3_changes(fs->db);
	if (ret == 0 && rc == SQLITE_DONE) { /* that was the last of it */
		s = fs_st(fs, ST_FREEING_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		ret = fs_done(fs, s);
	}
	return ret < 0 ? ret : n;
}

int fs_data_truncate(struct fs *fs, struct fs_inode *in, uint64_t size)
{
	int ret = 0;

	if (size < in->a.size)
		ret = fs_data_truncate_chunks(fs, in, size);
	if (ret == 0)
		in->a.size = size;
	return ret;
}

int fs_read(struct fs *fs, uint64_t ino, uint64_t off, size_t len, void *buf, size_t *got)
{
	struct fs_inode in;
	sqlite3_stmt *s;
	uint8_t *out = buf;
	int ret, rc;

	*got = 0;
	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	if (S_ISDIR(in.a.mode))
		return -EISDIR;
	if (!S_ISREG(in.a.mode))
		return -EINVAL;
	if (off >= in.a.size || len == 0)
		return 0;
	len = (size_t)MIN((uint64_t)len, in.a.size - off);
	memset(out, 0, len);
	s = fs_st(fs, ST_CHUNK_RANGE);
	sqlite3_bind_int64(s, 1, key(ino, off >> FS_CHUNK_SHIFT));
	sqlite3_bind_int64(s, 2, key(ino, (off + len - 1) >> FS_CHUNK_SHIFT));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t idx = (uint64_t)sqlite3_column_int64(s, 0) & IDX_MASK;
		const uint8_t *data = sqlite3_column_blob(s, 1);
		uint64_t cs = idx << FS_CHUNK_SHIFT;
		uint64_t ce = cs + (uint64_t)sqlite3_column_bytes(s, 1);
		uint64_t from = MAX(off, cs), to = MIN(off + len, ce);

		if (from < to)
			memcpy(out + (from - off), data + (from - cs), to - from);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return fs_sql_err(fs, rc, "reading file data");
	*got = len;
	fs_atime_touch(fs, &in);
	return 0;
}

int fs_write(struct fs *fs, const struct fs_cred *c, uint64_t ino, uint64_t off, int flags,
	     const void *buf, size_t len, struct fs_attr *out)
{
	uint64_t before = fs_used_bytes(fs), end;
	const uint8_t *data = buf;
	struct fs_inode in;
	struct fs_time now;
	int ret;

	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	if (S_ISDIR(in.a.mode))
		return -EISDIR;
	if (!S_ISREG(in.a.mode))
		return -EINVAL;
	if (flags & O_APPEND)
		off = in.a.size; /* where the file ends now, in the order writes are applied */
	end = off + len;
	if (end < off || end > FS_MAX_FILE_BYTES)
		return -EFBIG;
	if (len == 0) {
		*out = in.a;
		return 0;
	}
	for (uint64_t at = off; at < end && ret == 0;) {
		uint64_t idx = at >> FS_CHUNK_SHIFT;
		uint32_t a = (uint32_t)(at & (FS_CHUNK_BYTES - 1));
		uint32_t b = (uint32_t)MIN((uint64_t)FS_CHUNK_BYTES, end - (idx << FS_CHUNK_SHIFT));

		ret = chunk_update(fs, &in, idx, data + (at - off), a, b);
		at = (idx << FS_CHUNK_SHIFT) + b;
	}
	if (ret < 0)
		return ret;
	fs_now(fs, &now);
	in.a.size = MAX(in.a.size, end);
	in.a.mtime = in.a.ctime = now;
	if (c->uid != 0)
		fs_kill_priv(&in.a);
	ret = fs_inode_put(fs, &in);
	ret = fs_space_check(fs, before, ret);
	if (ret == 0)
		*out = in.a;
	return ret;
}

int fs_fallocate(struct fs *fs, const struct fs_cred *c, uint64_t ino, int mode, uint64_t off,
		 uint64_t len, bool writer)
{
	uint64_t before = fs_used_bytes(fs), end = off + len;
	bool punch = mode & FALLOC_FL_PUNCH_HOLE;
	struct fs_inode in;
	struct fs_time now;
	int ret;

	if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE &&
	    mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (len == 0 || end < off)
		return -EINVAL;
	if (end > FS_MAX_FILE_BYTES)
		return -EFBIG;
	ret = fs_inode_get(fs, ino, &in);
	if (ret < 0)
		return ret;
	if (S_ISDIR(in.a.mode))
		return -EISDIR;
	if (!S_ISREG(in.a.mode))
		return -ENODEV;
	ret = writer ? 0 : fs_may(c, &in.a, 2);
	if (ret < 0)
		return ret;
	for (uint64_t at = off; at < end && ret == 0;) {
		uint64_t idx = at >> FS_CHUNK_SHIFT, cs = idx << FS_CHUNK_SHIFT;
		uint32_t a = (uint32_t)(at - cs);
		uint32_t b = (uint32_t)MIN((uint64_t)FS_CHUNK_BYTES, end - cs);
		int64_t elen;

		at = cs + b;
		ret = chunk_len(fs, ino, idx, &elen);
		if (ret < 0)
			break;
		if (!punch) {
			/* allocated: the chunk holds (zeros) up to the end of the range */
			if (elen < (int64_t)b)
				ret = chunk_update(fs, &in, idx, NULL, (uint32_t)MAX(elen, 0), b);
		} else if (elen > 0) {
			if (a == 0 && b >= (uint64_t)elen) {
				sqlite3_stmt *s = fs_st(fs, ST_CHUNK_DEL_FROM);

				sqlite3_bind_int64(s, 1, key(ino, idx));
				sqlite3_bind_int64(s, 2, key(ino, idx));
				ret = fs_done(fs, s);
				in.bytes -= MIN((uint64_t)elen, in.bytes);
			} else if (a < (uint64_t)elen) {
				ret = chunk_update(fs, &in, idx, NULL, a, (uint32_t)MIN((int64_t)b, elen));
			}
		}
	}
	if (ret < 0)
		return ret;
	fs_now(fs, &now);
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > in.a.size) {
		in.a.size = end;
		in.a.mtime = now;
	}
	if (punch)
		in.a.mtime = now;
	in.a.ctime = now;
	ret = fs_inode_put(fs, &in);
	return fs_space_check(fs, before, ret);
}
