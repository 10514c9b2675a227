/*
 * fs_data.c - file data in chunks (see fs.h).
 *
 * Chunk i of a file is the row with rowid did << 32 | i, did the data id
 * the file's map names for i (fs_priv.h), holding bytes
 * [i * FS_CHUNK_BYTES, ...) of the file, at most FS_CHUNK_BYTES of them.
 * Invariant: no byte a chunk holds past the file's size is anything but
 * zero, and no chunk lies past it; what no chunk holds reads as zero.  So
 * a hole (an absent chunk, the part past a short one, a range the map
 * names no id for) reads as zeros, growing a file is only a new size, and
 * shrinking it lets go of whole chunks (unmap) and cuts the last.
 *
 * A write inside what a chunk already holds goes in place through
 * incremental blob I/O (only the pages it touches are rewritten); anything
 * else rewrites the chunk.
 */
#include "server/fs_priv.h"

#include "common/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDX_MASK 0xffffffffull
#define IDX_END ((uint64_t)1 << 32) /* past the last chunk index */

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

/* ---- the map (fs_priv.h): chunk index -> data id ---- */

/* A file that never had data has one hole. */
static void map_ready(struct fs_inode *in)
{
	if (in->next == 0) {
		in->next = 1;
		in->ext[0] = (struct fs_extent){ 0, 0 };
	}
}

/* Where extent i ends (exclusive). */
static uint64_t ext_end(const struct fs_inode *in, uint32_t i)
{
	return i + 1 < in->next ? in->ext[i + 1].start : IDX_END;
}

/* The extent holding chunk idx (in->next >= 1). */
static uint32_t ext_at(const struct fs_inode *in, uint64_t idx)
{
	uint32_t lo = 0, hi = in->next; /* ext[lo].start <= idx, and idx < ext[hi].start */

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (in->ext[mid].start <= idx)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The data id that holds chunk idx of in (0: none yet). */
static uint64_t did_of(const struct fs_inode *in, uint64_t idx)
{
	return in->next ? in->ext[ext_at(in, idx)].did : 0;
}

/* The same, made when chunk idx is to be written in a hole (the caller puts the inode). */
static int did_to_write(struct fs *fs, struct fs_inode *in, uint64_t idx, uint64_t *did)
{
	uint32_t i;
	int ret;

	map_ready(in);
	i = ext_at(in, idx);
	if (in->ext[i].did == 0) {
		ret = fs_did_alloc(fs, did);
		if (ret < 0)
			return ret;
		in->ext[i].did = (uint32_t)*did;
	}
	*did = in->ext[i].did;
	return 0;
}

/* The extents a hole over [a, b) adds: a boundary at each end where there is none. */
static uint32_t hole_cost(const struct fs_inode *in, uint64_t a, uint64_t b)
{
	return (in->ext[ext_at(in, a)].start != a) +
	       (b < IDX_END && in->ext[ext_at(in, b)].start != b);
}

/* An extent boundary at idx: the extent holding it splits in two (the caller made room). */
static void ext_split(struct fs_inode *in, uint64_t idx)
{
	uint32_t i = ext_at(in, idx);

	if (in->ext[i].start == idx)
		return;
	memmove(&in->ext[i + 2], &in->ext[i + 1], (in->next - i - 1) * sizeof(in->ext[0]));
	in->ext[i + 1] = (struct fs_extent){ (uint32_t)idx, in->ext[i].did };
	in->next++;
}

/* Neighbouring holes become one. */
static void map_merge_holes(struct fs_inode *in)
{
	uint32_t n = 1;

	for (uint32_t i = 1; i < in->next; i++)
		if (in->ext[i].did != 0 || in->ext[n - 1].did != 0)
			in->ext[n++] = in->ext[i];
	in->next = n;
}

static bool map_names(const struct fs_inode *in, uint64_t did)
{
	for (uint32_t i = 0; i < in->next; i++)
		if (in->ext[i].did == did)
			return true;
	return false;
}

/* ---- chunks by data id ---- */

/*
 * The chunks of [from, to) of data id did and the bytes they store,
 * counted up to max chunks (so the count reads at most that many rows;
 * ALL_CHUNKS: every one).
 */
#define ALL_CHUNKS ((uint64_t)INT64_MAX)
static int did_count(struct fs *fs, uint64_t did, uint64_t from, uint64_t to, uint64_t max,
		     uint64_t *chunks, uint64_t *bytes)
{
	sqlite3_stmt *s;
	int rc;

	*chunks = *bytes = 0;
	if (did == 0 || from >= to || max == 0)
		return 0;
	s = fs_st(fs, ST_CHUNK_COUNT);
	sqlite3_bind_int64(s, 1, key(did, from));
	sqlite3_bind_int64(s, 2, key(did, to - 1));
	sqlite3_bind_int64(s, 3, (int64_t)max);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*chunks = (uint64_t)sqlite3_column_int64(s, 0);
		*bytes = (uint64_t)sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : fs_sql_err(fs, rc, "counting chunks");
}

/* The same over [from, to) of in's map, whichever ids hold it. */
static int held_upto(struct fs *fs, const struct fs_inode *in, uint64_t from, uint64_t to,
		     uint64_t max, uint64_t *chunks)
{
	int ret = 0;

	*chunks = 0;
	for (uint32_t i = ext_at(in, from);
	     ret == 0 && i < in->next && in->ext[i].start < to && *chunks < max; i++) {
		uint64_t c, b;

		ret = did_count(fs, in->ext[i].did, MAX(from, in->ext[i].start),
				MIN(to, ext_end(in, i)), max - *chunks, &c, &b);
		*chunks += c;
	}
	return ret;
}

/* The stored bytes of chunks [first, last] of in, in whichever data id holds each. */
static int stored_bytes(struct fs *fs, const struct fs_inode *in, uint64_t first, uint64_t last,
			uint64_t *bytes)
{
	int ret = 0;

	*bytes = 0;
	if (in->next == 0 || first > last)
		return 0;
	for (uint32_t i = ext_at(in, first); ret == 0 && i < in->next && in->ext[i].start <= last; i++) {
		uint64_t c, b;

		ret = did_count(fs, in->ext[i].did, MAX(first, in->ext[i].start),
				MIN(last + 1, ext_end(in, i)), ALL_CHUNKS, &c, &b);
		*bytes += b;
	}
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

/*
 * Chunks [from, to) of data id did go to be released in bounded steps;
 * [0, IDX_END) is all of it, and the id is spare after.
 */
static int did_drop(struct fs *fs, uint64_t did, uint64_t from, uint64_t to)
{
	sqlite3_stmt *s = fs_st(fs, ST_FREEING_ADD);

	sqlite3_bind_int64(s, 1, (int64_t)did);
	sqlite3_bind_int64(s, 2, (int64_t)from);
	sqlite3_bind_int64(s, 3, (int64_t)to);
	return fs_done(fs, s);
}

/*
 * A data id no map names any more, its chunks deleted or being released:
 * spare now, or once `freeing` is done with it.
 */
static int did_forget(struct fs *fs, uint64_t did)
{
	int ret = fs_row_exists(fs, ST_FREEING_ANY, (int64_t)did, "reading freeing");

	if (ret < 0)
		return ret;
	return ret ? did_drop(fs, did, 0, IDX_END) : fs_did_spare(fs, did);
}

/* Chunks [a, b) deleted in this commit, from whichever ids hold them; in->bytes follows. */
static int delete_now(struct fs *fs, struct fs_inode *in, uint64_t a, uint64_t b)
{
	uint64_t gone;
	int ret;

	ret = stored_bytes(fs, in, a, b - 1, &gone);
	for (uint32_t i = ext_at(in, a); ret == 0 && i < in->next && in->ext[i].start < b; i++)
		ret = did_delete(fs, in->ext[i].did, MAX(a, in->ext[i].start),
				 MIN(b, ext_end(in, i)) - 1);
	if (ret == 0)
		in->bytes -= MIN(gone, in->bytes);
	return ret;
}

/*
 * Chunks [a, b) of in go, wherever they are held.  A range holding at
 * most fs->inline_bytes worth of chunks (counted by reading at most that
 * many rows) is deleted in this commit and stays in the map.  A bigger one
 * becomes a hole in the map, and its chunks go to `freeing` under the ids
 * that held them, released in later commits of bounded size; an id the map
 * no longer names goes whole.  So no cut, punch or delete is a big commit,
 * whatever the file's size.  Only with no room in the map for the hole is
 * a big range deleted in the commit.  in->bytes follows, exactly but for
 * an extent's part holding more than the inline bound, counted by its span
 * (summing it would read every chunk of it; after a big cut of a sparse
 * file st_blocks may count low).
 */
static int unmap(struct fs *fs, struct fs_inode *in, uint64_t a, uint64_t b)
{
	uint64_t end = MIN(b, (in->a.size + FS_CHUNK_BYTES - 1) >> FS_CHUNK_SHIFT);
	uint64_t few = fs->inline_bytes >> FS_CHUNK_SHIFT, dropped[FS_MAX_EXTENTS], gone = 0, n;
	uint32_t ndropped = 0;
	int ret;

	if (in->next == 0 || a >= end) /* (no chunk lies past the size) */
		return 0;
	ret = held_upto(fs, in, a, end, few + 1, &n);
	if (ret < 0)
		return ret;
	if (n <= few || in->next + hole_cost(in, a, b) > FS_MAX_EXTENTS)
		return delete_now(fs, in, a, end);
	ext_split(in, a);
	if (b < IDX_END)
		ext_split(in, b);
	for (uint32_t i = ext_at(in, a); ret == 0 && i < in->next && in->ext[i].start < b; i++) {
		uint64_t did = in->ext[i].did, from = in->ext[i].start, to = MIN(end, ext_end(in, i));
		uint64_t bytes;

		if (did == 0)
			continue;
		dropped[ndropped++] = did;
		in->ext[i].did = 0;
		ret = did_count(fs, did, from, to, few + 1, &n, &bytes);
		if (ret == 0 && n > 0)
			ret = did_drop(fs, did, from, to);
		gone += n > few ? (to - from) << FS_CHUNK_SHIFT : bytes;
	}
	map_merge_holes(in);
	for (uint32_t k = 0; ret == 0 && k < ndropped; k++)
		if (!map_names(in, dropped[k]))
			ret = did_drop(fs, dropped[k], 0, IDX_END);
	in->bytes -= MIN(in->bytes, gone);
	if (in->next == 1 && in->ext[0].did == 0)
		in->bytes = 0;
	return ret;
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

/* A deleted inode's data: all of it goes (unmap), and the ids it named are forgotten. */
int fs_data_release(struct fs *fs, struct fs_inode *in)
{
	int ret = fs_reserve(fs, in, -(int64_t)in->reserved);

	if (ret == 0)
		ret = unmap(fs, in, 0, IDX_END);
	for (uint32_t i = 0; ret == 0 && i < in->next; i++) /* (deleted now: small) */
		if (in->ext[i].did != 0)
			ret = did_forget(fs, in->ext[i].did);
	in->next = 0;
	in->bytes = 0;
	return ret;
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

/*
 * The first range waiting in `freeing` loses up to max chunks.  Rows are
 * left as they are until their range is empty, so a step that is lost
 * with its commit is simply done again; a whole id's row, once empty,
 * takes every other row of that id with it (its ranges are inside) and
 * makes the id spare.
 */
int fs_release_step(struct fs *fs, uint32_t max)
{
	sqlite3_stmt *s = fs_st(fs, ST_FREEING_FIRST);
	uint64_t did, from, to;
	int64_t upto;
	int rc, ret, n;

	rc = sqlite3_step(s);
	did = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	from = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 1) : 0;
	to = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 2) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : fs_sql_err(fs, rc, "listing dropped data");
	if (max == 0)
		return 0;
	if (to <= from || to > IDX_END) {
		log_err("fs", "freeing: data id %" PRIu64 " has a bad range [%" PRIu64 ", %" PRIu64
			")", did, from, to);
		return -EIO;
	}
	/* up to the max-th chunk left, or all of them */
	s = fs_st(fs, ST_CHUNK_NTH);
	sqlite3_bind_int64(s, 1, key(did, from));
	sqlite3_bind_int64(s, 2, key(did, to - 1));
	sqlite3_bind_int64(s, 3, max - 1);
	rc = sqlite3_step(s);
	upto = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : key(did, to - 1);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fs_sql_err(fs, rc, "finding dropped data");
	s = fs_st(fs, ST_CHUNK_DEL_FROM);
	sqlite3_bind_int64(s, 1, key(did, from));
	sqlite3_bind_int64(s, 2, upto);
	ret = fs_done(fs, s);
	n = sqlite3_changes(fs->db);
	if (ret == 0 && rc == SQLITE_DONE) { /* that was the last of the range */
		bool whole = from == 0 && to == IDX_END;

		s = fs_st(fs, whole ? ST_FREEING_DEL_ALL : ST_FREEING_DEL);
		sqlite3_bind_int64(s, 1, (int64_t)did);
		if (!whole)
			sqlite3_bind_int64(s, 2, (int64_t)from);
		ret = fs_done(fs, s);
		if (ret == 0 && whole)
			ret = fs_did_spare(fs, did);
	}
	return ret < 0 ? ret : n;
}

int fs_data_truncate(struct fs *fs, struct fs_inode *in, uint64_t size)
{
	int ret = 0;

	if (size < in->a.size) {
		ret = unmap(fs, in, (size + FS_CHUNK_BYTES - 1) >> FS_CHUNK_SHIFT, IDX_END);
		if (ret == 0)
			ret = cut_chunk(fs, in, size);
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

/* in's data over [off, off + len) into out (zeroed already), extent by extent. */
static int read_range(struct fs *fs, const struct fs_inode *in, uint64_t off, size_t len,
		      uint8_t *out)
{
	uint64_t end = off + len;
	int ret = 0;

	if (in->next == 0)
		return 0;
	for (uint32_t i = ext_at(in, off >> FS_CHUNK_SHIFT);
	     ret == 0 && i < in->next && ((uint64_t)in->ext[i].start << FS_CHUNK_SHIFT) < end; i++) {
		uint64_t from = MAX(off, (uint64_t)in->ext[i].start << FS_CHUNK_SHIFT);
		uint64_t to = MIN(end, ext_end(in, i) << FS_CHUNK_SHIFT);

		ret = read_did(fs, in->ext[i].did, from, (size_t)(to - from), out + (from - off));
	}
	return ret;
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
	if (ret == 0 && whole_to > whole_from)
		ret = unmap(fs, in, whole_from, whole_to);
	if (ret == 0 && last != first && last >= whole_to) /* the last chunk, cut */
		ret = zero_part(fs, in, last, 0, (uint32_t)(end - (last << FS_CHUNK_SHIFT)));
	return ret;
}

int fs_fallocate(struct fs *fs, const struct fs_cred *c, uint64_t ino, int mode, uint64_t off,
		 uint64_t len, bool writer)
{
	uint64_t before = fs_used_bytes(fs), end = off + len;
	bool punching = mode & FALLOC_FL_PUNCH_HOLE, zeroing = mode & FALLOC_FL_ZERO_RANGE;
	struct fs_inode in;
	struct fs_time now;
	int ret;

	if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE &&
	    mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) && mode != FALLOC_FL_ZERO_RANGE &&
	    mode != (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
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
	if (punching || zeroing) /* (zeroing: what was there goes, and the room is kept) */
		ret = punch(fs, &in, off, end);
	if (ret == 0 && !punching)
		ret = allocate(fs, &in, off, end);
	if (ret < 0)
		return ret;
	fs_now(fs, &now);
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > in.a.size) {
		in.a.size = end;
		in.a.mtime = now;
	}
	if (punching || zeroing)
		in.a.mtime = now;
	in.a.ctime = now;
	ret = fs_inode_put(fs, &in);
	return fs_space_check(fs, before, ret);
}

/* The first chunk at or after idx that in holds (*found false: none). */
static int next_data(struct fs *fs, const struct fs_inode *in, uint64_t idx, uint64_t *at,
		     bool *found)
{
	*found = false;
	for (uint32_t i = in->next ? ext_at(in, idx) : 0; i < in->next; i++) {
		sqlite3_stmt *s;
		int rc;

		if (in->ext[i].did == 0)
			continue;
		s = fs_st(fs, ST_CHUNK_NTH);
		sqlite3_bind_int64(s, 1, key(in->ext[i].did, MAX(idx, in->ext[i].start)));
		sqlite3_bind_int64(s, 2, key(in->ext[i].did, ext_end(in, i) - 1));
		sqlite3_bind_int64(s, 3, 0);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			*at = (uint64_t)sqlite3_column_int64(s, 0) & IDX_MASK;
		sqlite3_reset(s);
		if (rc == SQLITE_ROW) {
			*found = true;
			return 0;
		}
		if (rc != SQLITE_DONE)
			return fs_sql_err(fs, rc, "seeking data");
	}
	return 0;
}

/* The first chunk at or after idx that in does not hold (below 2^32). */
static int next_hole(struct fs *fs, const struct fs_inode *in, uint64_t idx, uint64_t *at)
{
	*at = idx;
	for (uint32_t i = in->next ? ext_at(in, idx) : 0; i < in->next; i++) {
		sqlite3_stmt *s;
		int rc;

		if (in->ext[i].did == 0)
			return 0; /* (a hole in the map) */
		s = fs_st(fs, ST_CHUNK_KEYS);
		sqlite3_bind_int64(s, 1, key(in->ext[i].did, *at));
		sqlite3_bind_int64(s, 2, key(in->ext[i].did, ext_end(in, i) - 1));
		while ((rc = sqlite3_step(s)) == SQLITE_ROW &&
		       ((uint64_t)sqlite3_column_int64(s, 0) & IDX_MASK) == *at)
			(*at)++;
		sqlite3_reset(s);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return fs_sql_err(fs, rc, "seeking a hole");
		if (*at < ext_end(in, i))
			return 0;
	}
	return 0;
}

int fs_lseek(struct fs *fs, uint64_t ino, uint64_t off, int whence, uint64_t *out)
{
	struct fs_inode in;
	uint64_t at;
	bool found;
	int ret = fs_inode_get(fs, ino, &in);

	if (ret < 0)
		return ret;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off >= in.a.size)
		return -ENXIO;
	if (whence == SEEK_DATA) {
		ret = next_data(fs, &in, off >> FS_CHUNK_SHIFT, &at, &found);
		if (ret < 0)
			return ret;
		if (!found || (at << FS_CHUNK_SHIFT) >= in.a.size)
			return -ENXIO;
		*out = MAX(off, at << FS_CHUNK_SHIFT);
		return 0;
	}
	ret = next_hole(fs, &in, off >> FS_CHUNK_SHIFT, &at);
	if (ret < 0)
		return ret;
	*out = MAX(off, MIN(at << FS_CHUNK_SHIFT, in.a.size));
	return 0;
}

int fs_copy_range(struct fs *fs, const struct fs_cred *c, uint64_t in, uint64_t off_in,
		  uint64_t out, uint64_t off_out, uint64_t len, uint64_t *copied,
		  struct fs_attr *attr)
{
	size_t n = (size_t)MIN(len, FS_COPY_MAX), got = 0;
	uint8_t *buf;
	int ret;

	*copied = 0;
	if (in == out && off_in < off_out + n && off_out < off_in + n)
		return -EINVAL; /* (overlapping, as copy_file_range says) */
	buf = malloc(n ? n : 1);
	if (buf == NULL)
		return -ENOMEM;
	ret = fs_read(fs, in, off_in, n, buf, &got);
	if (ret == 0 && got > 0)
		ret = fs_write(fs, c, out, off_out, 0, buf, got, attr);
	else if (ret == 0)
		ret = fs_getattr(fs, c, out, attr);
	free(buf);
	if (ret == 0)
		*copied = got;
	return ret;
}
