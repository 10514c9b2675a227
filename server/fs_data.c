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

static int64_t key(uint64_t did, uint64_t idx)
{
	return (int64_t)(did << 32 | idx);
}

/* The stored length of chunk idx of data id did, or -1 when there is none. */
static int chunk_len(struct fs *fs, uint64_t did, uint64_t idx, int64_t *len)
{
	sqlite3_stmt *s = fs_st(fs, ST_CHUNK_GET);
	int rc;

	sqlite3_bind_int64(s, 1, key(did, idx));
	rc = sqlite3_step(s);
	*len = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fs_sql_err(fs, rc, "reading a chunk");
}

static int chunk_put(struct fs *fs, uint64_t did, uint64_t idx, const void *data, size_t len)
{
	sqlite3_stmt *s = fs_st(fs, ST_CHUNK_PUT);

	sqlite3_bind_int64(s, 1, key(did, idx));
	sqlite3_bind_blob(s, 2, data, (int)len, SQLITE_STATIC);
	return fs_done(fs, s);
}

/* Write len bytes at off of an existing chunk's blob, which holds them. */
static int chunk_write_in_place(struct fs *fs, uint64_t did, uint64_t idx, const void *data,
				int len, int off)
{
	sqlite3_blob *b = NULL;
	int rc;

	rc = sqlite3_blob_open(fs->db, "main", "chunks", "data", key(did, idx), 1, &b);
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_write(b, data, len, off);
	if (b != NULL && sqlite3_blob_close(b) != SQLITE_OK && rc == SQLITE_OK)
		rc = SQLITE_IOERR;
	return rc == SQLITE_OK ? 0 : fs_sql_err(fs, rc, "writing a chunk in place");
}

/* The whole blob of chunk idx into buf (which holds FS_CHUNK_BYTES). */
static int chunk_read_all(struct fs *fs, uint64_t did, uint64_t idx, uint8_t *buf, int len)
{
	sqlite3_blob *b = NULL;
	int rc;

	rc = sqlite3_blob_open(fs->db, "main", "chunks", "data", key(did, idx), 0, &b);
	if (rc == SQLITE_OK)
		rc = sqlite3_blob_read(b, buf, len, 0);
	if (b != NULL)
		sqlite3_blob_close(b);
	return rc == SQLITE_OK ? 0 : fs_sql_err(fs, rc, "reading a chunk");
}

/* The data id that holds chunk idx of in (0: none yet). */
static uint64_t did_of(const struct fs_inode *in, uint64_t idx)
{
	return in->base_did != 0 && idx < in->base_end ? in->base_did : in->did;
}

/* The same, made when chunk idx is to be written and there is none (the caller puts the inode). */
static int did_to_write(struct fs *fs, struct fs_inode *in, uint64_t idx, uint64_t *did)
{
	int ret = 0;

	*did = did_of(in, idx);
	if (*did == 0) {
		ret = fs_did_alloc(fs, &in->did);
		*did = in->did;
	}
	return ret;
}

/* The stored bytes of chunks [first, last] of data id did (0: none). */
static int did_bytes(struct fs *fs, uint64_t did, uint64_t first, uint64_t last, uint64_t *bytes)
{
	sqlite3_stmt *s;
	int rc;

	*bytes = 0;
	if (did == 0 || first > last)
		return 0;
	s = fs_st(fs, ST_CHUNK_BYTES);
	sqlite3_bind_int64(s, 1, key(did, first));
	sqlite3_bind_int64(s, 2, key(did, last));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*bytes = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : fs_sql_err(fs, rc, "summing chunks");
}

/* The stored bytes of chunks [first, last] of in, in whichever data id holds each. */
static int stored_bytes(struct fs *fs, const struct fs_inode *in, uint64_t first, uint64_t last,
			uint64_t *bytes)
{
	uint64_t b = 0, split = in->base_did ? in->base_end : 0;
	int ret = 0;

	*bytes = 0;
	if (first < split)
		ret = did_bytes(fs, in->base_did, first, MIN(last, split - 1), &b);
	if (ret == 0 && last >= split)
		ret = did_bytes(fs, in->did, MAX(first, split), last, bytes);
	*bytes += b;
	return ret;
}

/* Delete chunks [first, last] of data id did. */
static int did_delete(struct fs *fs, uint64_t did, uint64_t first, uint64_t last)
{
	sqlite3_stmt *s;

	if (did == 0 || first > last)
		return 0;
	s = fs_st(fs, ST_CHUNK_DEL_FROM);
	sqlite3_bind_int64(s, 1, key(did, first));
	sqlite3_bind_int64(s, 2, key(did, last));
	return fs_done(fs, s);
}

/* Chunks [from, ...) of data id did go to be released in bounded steps (from 0: all of it). */
static int did_drop(struct fs *fs, uint64_t did, uint64_t from)
{
	sqlite3_stmt *s;

	if (did == 0)
		return 0;
	s = fs_st(fs, ST_FREEING_ADD);
	sqlite3_bind_int64(s, 1, (int64_t)did);
	sqlite3_bind_int64(s, 2, (int64_t)from);
	return fs_done(fs, s);
}

/*
 * Bytes [a, b) of chunk idx become data (NULL: zeros), growing the chunk
 * to b when it is shorter; in->bytes follows.
 */
static int chunk_update(struct fs *fs, struct fs_inode *in, uint64_t idx, const uint8_t *data,
			uint32_t a, uint32_t b)
{
	static const uint8_t zeros[FS_CHUNK_BYTES];
	uint64_t did;
	uint8_t *buf;
	int64_t elen;
	int ret;

	ret = did_to_write(fs, in, idx, &did);
	if (ret == 0)
		ret = chunk_len(fs, did, idx, &elen);
	if (ret < 0)
		return ret;
	if (elen >= (int64_t)b)
		return chunk_write_in_place(fs, did, idx, data ? data : zeros, (int)(b - a), (int)a);
	if (a == 0 && data != NULL) {
		ret = chunk_put(fs, did, idx, data, b);
	} else {
		buf = calloc(1, FS_CHUNK_BYTES);
		if (buf == NULL)
			return -ENOMEM;
		ret = elen > 0 ? chunk_read_all(fs, did, idx, buf, (int)elen) : 0;
		if (ret == 0 && data != NULL)
			memcpy(buf + a, data, b - a);
		if (ret == 0)
			ret = chunk_put(fs, did, idx, buf, b);
		free(buf);
	}
	if (ret == 0 && (int64_t)b > elen) {
		uint64_t grew = b - (uint64_t)MAX(elen, 0);

		in->bytes += grew;
		ret = fs_reserve(fs, in, -(int64_t)MIN(grew, in->reserved)); /* (what it was for) */
	}
	return ret;
}

/* The chunk size>>SHIFT keeps only its bytes before size (a cut inside it). */
static int cut_chunk(struct fs *fs, struct fs_inode *in, uint64_t size)
{
	uint64_t idx = size >> FS_CHUNK_SHIFT, did = did_of(in, idx);
	uint32_t cut = (uint32_t)(size & (FS_CHUNK_BYTES - 1));
	int64_t elen;
	uint8_t *buf;
	int ret;

	if (cut == 0 || did == 0)
		return 0;
	ret = chunk_len(fs, did, idx, &elen);
	if (ret < 0 || elen <= (int64_t)cut)
		return ret;
	buf = malloc(FS_CHUNK_BYTES);
	if (buf == NULL)
		return -ENOMEM;
	ret = chunk_read_all(fs, did, idx, buf, (int)cut);
	if (ret == 0)
		ret = chunk_put(fs, did, idx, buf, cut);
	free(buf);
	if (ret == 0)
		in->bytes -= MIN((uint64_t)elen - cut, in->bytes);
	return ret;
}

int fs_data_truncate_chunks(struct fs *fs, struct fs_inode *in, uint64_t size)
{
	uint64_t first = (size + FS_CHUNK_BYTES - 1) >> FS_CHUNK_SHIFT, gone;
	uint64_t split = in->base_did ? in->base_end : 0;
	int ret;

	/* the bytes that go, then the chunks, in both data ids */
	ret = stored_bytes(fs, in, first, IDX_MASK, &gone);
	if (ret == 0 && first < split)
		ret = did_delete(fs, in->base_did, first, split - 1);
	if (ret == 0)
		ret = did_delete(fs, in->did, MAX(first, split), IDX_MASK);
	if (ret < 0)
		return ret;
	in->bytes -= MIN(gone, in->bytes);
	return cut_chunk(fs, in, size);
}

/* All of in's data goes to be released at once; a new data id comes at its next write. */
static int data_drop_all(struct fs *fs, struct fs_inode *in)
{
	int ret = did_drop(fs, in->did, 0);

	if (ret == 0)
		ret = did_drop(fs, in->base_did, 0);
	in->did = in->base_did = in->base_end = 0;
	in->bytes = 0;
	return ret;
}

int fs_data_release(struct fs *fs, struct fs_inode *in)
{
	uint64_t did = in->did;
	int ret = fs_reserve(fs, in, -(int64_t)in->reserved);

	if (ret < 0)
		return ret;
	if (in->bytes > FS_RELEASE_INLINE_BYTES || in->base_did != 0)
		return data_drop_all(fs, in);
	ret = fs_data_truncate_chunks(fs, in, 0);
	return ret < 0 || did == 0 ? ret : fs_did_spare(fs, did);
}

int fs_release_pending(struct fs *fs, uint64_t *did)
{
	sqlite3_stmt *s = fs_st(fs, ST_FREEING_FIRST);
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		*did = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : fs_sql_err(fs, rc, "listing dropped data");
}

int fs_release_step(struct fs *fs, uint32_t max)
{
	sqlite3_stmt *s = fs_st(fs, ST_FREEING_FIRST);
	uint64_t did, from;
	int64_t upto;
	int rc, ret, n;

	rc = sqlite3_step(s);
	did = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	from = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 1) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : fs_sql_err(fs, rc, "listing dropped data");
	if (max == 0)
		return 0;
	/* up to the max-th chunk left, or all of them */
	s = fs_st(fs, ST_CHUNK_NTH);
	sqlite3_bind_int64(s, 1, key(did, from));
	sqlite3_bind_int64(s, 2, key(did, IDX_MASK));
	sqlite3_bind_int64(s, 3, max - 1);
	rc = sqlite3_step(s);
	upto = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : key(did, IDX_MASK);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_sql_err(fs, rc, "finding dropped data");
	s = fs_st(fs, ST_CHUNK_DEL_FROM);
	sqlite3_bind_int64(s, 1, key(did, from));
	sqlite3_bind_int64(s, 2, upto);
	ret = fs_done(fs, s);
	n = sqlite3_changes(fs->db);
	if (ret == 0 && rc == SQLITE_DONE) { /* that was the last of it */
		s = fs_st(fs, ST_FREEING_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)did);
		ret = fs_done(fs, s);
		if (ret == 0 && from == 0) /* the whole id: free to be used again */
			ret = fs_did_spare(fs, did);
	}
	return ret < 0 ? ret : n;
}

/*
 * Chunks [lo, hi] of data id old move to a new data id, which becomes
 * in's did (a bounded copy: at most FS_RELEASE_INLINE_BYTES), and old goes
 * to be released whole.
 */
static int move_to_new_did(struct fs *fs, struct fs_inode *in, uint64_t old, uint64_t lo,
			   uint64_t hi)
{
	uint64_t did;
	sqlite3_stmt *s;
	int ret = fs_did_alloc(fs, &did);

	if (ret < 0)
		return ret;
	if (lo <= hi) {
		s = fs_st(fs, ST_CHUNK_COPY);
		sqlite3_bind_int64(s, 1, key(did, 0) - key(old, 0));
		sqlite3_bind_int64(s, 2, key(old, lo));
		sqlite3_bind_int64(s, 3, key(old, hi));
		ret = fs_done(fs, s);
	}
	if (ret == 0)
		ret = did_drop(fs, old, 0);
	in->did = did;
	return ret;
}

/*
 * Cutting a file to size: what goes is released in bounded steps whatever
 * its size, so no cut is a big commit.  A cut into the base drops all of
 * did and the base past the cut.  Otherwise, within did's part (from split
 * on): a small tail is deleted now; a small rest is moved to a new data id
 * and the old one released; a big tail of a big rest, the first time, makes
 * did the base up to the cut (its chunks past it released) and the file
 * takes a new did for what comes after.  Only a second such cut, above an
 * earlier one, deletes its tail in the commit (docs/store.md).
 */
static int cut_big(struct fs *fs, struct fs_inode *in, uint64_t size, uint64_t first)
{
	uint64_t split = in->base_did ? in->base_end : 0, end = first << FS_CHUNK_SHIFT;
	uint64_t rest_span = end - MIN(end, split << FS_CHUNK_SHIFT), kept, rest, tail;
	int ret = 0;

	/*
	 * What stays and what goes: summed exactly where that is a bounded
	 * read (at most FS_RELEASE_INLINE_BYTES of span), else bounded by the
	 * span and what the file stores - summing a big part would read every
	 * chunk of it.  (So after a big cut of a sparse file, st_blocks may
	 * count a little off.)
	 */
	if (end <= FS_RELEASE_INLINE_BYTES)
		ret = stored_bytes(fs, in, 0, first - 1, &kept);
	else
		kept = in->bytes - MIN(in->bytes, in->a.size > end ? in->a.size - end : 0);
	if (ret == 0 && rest_span <= FS_RELEASE_INLINE_BYTES)
		ret = did_bytes(fs, in->did, split, first - 1, &rest);
	else
		rest = MIN(in->bytes, rest_span);
	if (ret < 0)
		return ret;
	tail = in->bytes - MIN(kept, in->bytes);

	if (in->base_did != 0 && first <= split) {
		ret = did_drop(fs, in->did, 0);
		if (ret == 0)
			ret = did_drop(fs, in->base_did, first);
		in->did = 0;
		in->base_end = first;
		in->bytes -= tail;
		return ret < 0 ? ret : cut_chunk(fs, in, size);
	}
	if (tail <= FS_RELEASE_INLINE_BYTES || (in->base_did != 0 && rest > FS_RELEASE_INLINE_BYTES))
		return fs_data_truncate_chunks(fs, in, size);
	in->bytes -= tail;
	if (rest <= FS_RELEASE_INLINE_BYTES) {
		ret = move_to_new_did(fs, in, in->did, split, first - 1);
		return ret < 0 ? ret : cut_chunk(fs, in, size);
	}
	in->base_did = in->did;
	in->base_end = first;
	in->did = 0;
	ret = did_drop(fs, in->base_did, first);
	return ret < 0 ? ret : cut_chunk(fs, in, size);
}

int fs_data_truncate(struct fs *fs, struct fs_inode *in, uint64_t size)
{
	uint64_t first = (size + FS_CHUNK_BYTES - 1) >> FS_CHUNK_SHIFT;
	int ret = 0;

	if (size < in->a.size && (in->did != 0 || in->base_did != 0)) {
		if (size == 0 && (in->bytes > FS_RELEASE_INLINE_BYTES || in->base_did != 0))
			ret = data_drop_all(fs, in);
		else if (in->bytes > FS_RELEASE_INLINE_BYTES || in->base_did != 0)
			ret = cut_big(fs, in, size, first);
		else
			ret = fs_data_truncate_chunks(fs, in, size);
	}
	if (ret == 0 && in->reserved > 0 && size < in->a.size) /* (past the new end it is gone) */
		ret = fs_reserve(fs, in, -(int64_t)(in->reserved -
						   MIN(in->reserved, size - MIN(size, in->bytes))));
	if (ret == 0)
		in->a.size = size;
	return ret;
}

static int read_range(struct fs *fs, const struct fs_inode *in, uint64_t off, size_t len,
		      uint8_t *out);

int fs_read(struct fs *fs, uint64_t ino, uint64_t off, size_t len, void *buf, size_t *got)
{
	struct fs_inode in;
	uint8_t *out = buf;
	int ret;

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
	ret = read_range(fs, &in, off, len, out);
	if (ret < 0)
		return ret;
	*got = len;
	fs_atime_touch(fs, &in);
	return 0;
}

/* Chunks of one data id over [off, off + len) into out (zeroed already). */
static int read_did(struct fs *fs, uint64_t did, uint64_t off, size_t len, uint8_t *out)
{
	sqlite3_stmt *s;
	int rc;

	if (did == 0 || len == 0)
		return 0;
	s = fs_st(fs, ST_CHUNK_RANGE);
	sqlite3_bind_int64(s, 1, key(did, off >> FS_CHUNK_SHIFT));
	sqlite3_bind_int64(s, 2, key(did, (off + len - 1) >> FS_CHUNK_SHIFT));
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
	return rc == SQLITE_DONE ? 0 : fs_sql_err(fs, rc, "reading file data");
}

/* in's data over [off, off + len) into out (zeroed already): the base's part, then did's. */
static int read_range(struct fs *fs, const struct fs_inode *in, uint64_t off, size_t len,
		      uint8_t *out)
{
	uint64_t split = in->base_did ? in->base_end << FS_CHUNK_SHIFT : 0;
	size_t in_base = off < split ? (size_t)MIN((uint64_t)len, split - off) : 0;
	int ret = read_did(fs, in->base_did, off, in_base, out);

	return ret < 0 ? ret : read_did(fs, in->did, off + in_base, len - in_base, out + in_base);
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

/*
 * Allocating [off, end): what no chunk holds reads as zeros already, so
 * nothing is written (a 4 GiB fallocate is one small commit).  The room is
 * reserved instead: the file's reservation (counted as used in statfs and
 * in every space check, and in st_blocks) grows by what the range does not
 * store, up to what the file spans, and its writes use it up.
 */
static int allocate(struct fs *fs, struct fs_inode *in, uint64_t off, uint64_t end)
{
	uint64_t held = 0, want = end - off, need, span;
	int ret = stored_bytes(fs, in, off >> FS_CHUNK_SHIFT, (end - 1) >> FS_CHUNK_SHIFT, &held);

	if (ret < 0 || held >= want)
		return ret;
	span = MAX(in->a.size, end);
	need = MIN(want - held, span - MIN(span, in->bytes + in->reserved));
	if (need == 0)
		return 0;
	if (fs->space && fs_used_bytes(fs) + need > fs->space)
		return -ENOSPC;
	return fs_reserve(fs, in, (int64_t)need);
}

/* Bytes [a, b) of chunk idx read as zeros: a chunk wholly inside goes. */
static int zero_part(struct fs *fs, struct fs_inode *in, uint64_t idx, uint32_t a, uint32_t b)
{
	uint64_t did = did_of(in, idx);
	int64_t elen;
	int ret = did ? chunk_len(fs, did, idx, &elen) : 0;

	if (ret < 0 || did == 0 || elen <= (int64_t)a)
		return ret;
	if (a == 0 && (int64_t)b >= elen) {
		ret = did_delete(fs, did, idx, idx);
		if (ret == 0)
			in->bytes -= MIN((uint64_t)elen, in->bytes);
		return ret;
	}
	return chunk_update(fs, in, idx, NULL, a, (uint32_t)MIN((int64_t)b, elen));
}

/* Punching [off, end): its edge chunks cut, the whole ones between deleted at once. */
static int punch(struct fs *fs, struct fs_inode *in, uint64_t off, uint64_t end)
{
	uint64_t first = off >> FS_CHUNK_SHIFT, last = (end - 1) >> FS_CHUNK_SHIFT;
	uint64_t whole_from = first + ((off & (FS_CHUNK_BYTES - 1)) != 0);
	uint64_t whole_to = (end >> FS_CHUNK_SHIFT); /* (exclusive) */
	int ret = 0;

	if (whole_from > first || whole_to <= first) /* the first chunk, cut */
		ret = zero_part(fs, in, first, (uint32_t)(off - (first << FS_CHUNK_SHIFT)),
				(uint32_t)MIN((uint64_t)FS_CHUNK_BYTES, end - (first << FS_CHUNK_SHIFT)));
	if (ret == 0 && whole_to > whole_from) {
		uint64_t gone;
		uint64_t split = in->base_did ? in->base_end : 0;

		ret = stored_bytes(fs, in, whole_from, whole_to - 1, &gone);
		if (ret == 0 && whole_from < split)
			ret = did_delete(fs, in->base_did, whole_from, MIN(whole_to, split) - 1);
		if (ret == 0 && whole_to > split)
			ret = did_delete(fs, in->did, MAX(whole_from, split), whole_to - 1);
		if (ret == 0)
			in->bytes -= MIN(gone, in->bytes);
	}
	if (ret == 0 && last != first && last >= whole_to) /* the last chunk, cut */
		ret = zero_part(fs, in, last, 0, (uint32_t)(end - (last << FS_CHUNK_SHIFT)));
	return ret;
}

int fs_fallocate(struct fs *fs, const struct fs_cred *c, uint64_t ino, int mode, uint64_t off,
		 uint64_t len, bool writer)
{
	uint64_t before = fs_used_bytes(fs), end = off + len;
	bool punching = mode & FALLOC_FL_PUNCH_HOLE;
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
	if (!punching)
		ret = allocate(fs, &in, off, end);
	else if (in.did != 0)
		ret = punch(fs, &in, off, end);
	if (ret < 0)
		return ret;
	fs_now(fs, &now);
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > in.a.size) {
		in.a.size = end;
		in.a.mtime = now;
	}
	if (punching)
		in.a.mtime = now;
	in.a.ctime = now;
	ret = fs_inode_put(fs, &in);
	return fs_space_check(fs, before, ret);
}
