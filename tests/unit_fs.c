/*
 * unit_fs.c - the filesystem logic (server/fs.h) against an in-memory
 * SQLite database: one test (or a few) per POSIX rule, each asserting the
 * errno or the result, as issue 9 "The operations" lists them.
 *
 * Every test gets a fresh database (":memory:", BEGIN, fs_format,
 * fs_attach), a fake clock it advances by hand (hooks.now), so times are
 * exact, and a small set of inode numbers it declares open (hooks.is_open).
 * Operations that are expected to fail and must leave nothing behind run
 * the way the engine runs them: SAVEPOINT op ... RELEASE op, or ROLLBACK TO
 * op on error.
 *
 * Two randomized tests check whole behaviours against a model: file data
 * (writes, truncates, hole punches, allocations against an in-memory copy,
 * every read compared) and the namespace (random creations, links,
 * removals and renames; after each, a walk of the tree checks link counts,
 * "." and "..", the inode count, and that a failed operation changed
 * nothing).  FUSEFS_SEED picks another seed; FUSEFS_TRACE=1 prints the
 * data operations.  Every failure message names the seed and the step.
 *
 * What is asserted is the contract (fs.h, POSIX, what Linux does), not the
 * implementation.  The TCase "fixed_bugs" holds the tests that first showed
 * the implementation wrong (all fixed since); each says which rule it holds
 * the code to.
 *
 * Not tested here: EMLINK for subdirectories (65000 mkdirs; the rule is the
 * same as for links, which is tested), and what the engine's batches do
 * around these calls (unit_store.c).
 */
#include "tests/unit.h"

#include "common/common.h"
#include "common/prng.h"
#include "server/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- the fixture: a database, a clock, the open inodes ---- */

#define OPEN_MAX 16
#define T0_SEC 1700000000

static sqlite3 *db;
static struct fs *fs;
static struct fs_time clock_now;
static uint64_t open_inos[OPEN_MAX];
static uint32_t open_count;

static const struct fs_cred ROOT = { .uid = 0, .gid = 0 };
/* Three users, each in a group of their own; STAFF is a group none is in by default. */
static const struct fs_cred ALICE = { .uid = 1000, .gid = 1000 };
static const struct fs_cred BOB = { .uid = 1001, .gid = 1001 };
static const struct fs_cred CAROL = { .uid = 1002, .gid = 1002 };
#define STAFF 500u

static void fake_now(void *arg, struct fs_time *t)
{
	(void)arg;
	*t = clock_now;
}

static bool fake_is_open(void *arg, uint64_t ino)
{
	(void)arg;
	for (uint32_t i = 0; i < open_count; i++)
		if (open_inos[i] == ino)
			return true;
	return false;
}

static void set_open(uint64_t ino)
{
	ck_assert_uint_lt(open_count, OPEN_MAX);
	open_inos[open_count++] = ino;
}

static void set_closed(uint64_t ino)
{
	for (uint32_t i = 0; i < open_count; i++)
		if (open_inos[i] == ino)
			open_inos[i] = open_inos[--open_count];
}

/* The clock moves on by a second and some nanoseconds, so every change shows. */
static void tick(void)
{
	clock_now.sec += 1;
	clock_now.nsec = (clock_now.nsec + 1234567) % 1000000000u;
}

static const struct fs_hooks HOOKS = { .now = fake_now, .is_open = fake_is_open, .arg = NULL };

static void setup(void)
{
	struct fs_format_opts o = { .root_uid = 0, .root_gid = 0, .root_mode = 0777,
				    .now = { T0_SEC, 500 } };

	clock_now = o.now;
	open_count = 0;
	ck_assert_int_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(fs_format(db, &o), 0);
	ck_assert_int_eq(fs_attach(db, &HOOKS, &fs), 0);
	tick();
}

static void teardown(void)
{
	fs_detach(fs);
	fs = NULL;
	sqlite3_close(db);
	db = NULL;
}

/* ---- helpers ---- */

/*
 * Checks for helpers and hot loops.  Check records a mark point (a write
 * to the parent) for every ck_assert that passes; these only act when one
 * fails, so a loop of 65000 operations stays fast.
 */
#define ok(expr)                                                              \
	do {                                                                  \
		if (!(expr))                                                  \
			ck_abort_msg("Assertion '%s' failed", #expr);          \
	} while (0)
#define ok_msg(expr, ...)                                                     \
	do {                                                                  \
		if (!(expr))                                                  \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)
#define ok_eq(a, b)                                                           \
	do {                                                                  \
		long long a_ = (long long)(a), b_ = (long long)(b);           \
		if (a_ != b_)                                                 \
			ck_abort_msg("Assertion '%s == %s' failed: %lld, %lld", \
				     #a, #b, a_, b_);                         \
	} while (0)

/* A name and its length, as every name operation takes them. */
#define N(s) (s), strlen(s)

static void sql(const char *q)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, q, NULL, NULL, &msg);

	if (rc != SQLITE_OK)
		ck_abort_msg("%s: %s", q, msg ? msg : "?");
	sqlite3_free(msg);
}

/* One operation the way the engine runs it: undone entirely when it fails. */
static int op_end(int ret)
{
	sql(ret < 0 ? "ROLLBACK TO op; RELEASE op" : "RELEASE op");
	return ret;
}
#define OP(call) (sql("SAVEPOINT op"), op_end(call))

static struct fs_cred with_groups(struct fs_cred c, uint32_t g1, uint32_t g2)
{
	c.ngroups = 0;
	if (g1 != 0)
		c.groups[c.ngroups++] = g1;
	if (g2 != 0)
		c.groups[c.ngroups++] = g2;
	return c;
}

static struct fs_attr getattr(uint64_t ino)
{
	struct fs_attr a;

	ok_eq(fs_getattr(fs, &ROOT, ino, &a), 0);
	return a;
}

/* The inode name names in parent, or 0 when there is none. */
static uint64_t lookup(uint64_t parent, const char *name)
{
	struct fs_attr a;
	int ret = fs_lookup(fs, &ROOT, parent, N(name), &a);

	if (ret != 0 && ret != -ENOENT)
		ck_abort_msg("lookup %s: %d", name, ret);
	return ret == 0 ? a.ino : 0;
}

static uint64_t mkfile(const struct fs_cred *c, uint64_t parent, const char *name, uint32_t mode)
{
	struct fs_attr a;

	ok_eq(fs_mknod(fs, c, parent, N(name), S_IFREG | mode, 0, &a), 0);
	return a.ino;
}

static uint64_t mkdir_(const struct fs_cred *c, uint64_t parent, const char *name, uint32_t mode)
{
	struct fs_attr a;

	ok_eq(fs_mkdir(fs, c, parent, N(name), mode, &a), 0);
	return a.ino;
}

/* A directory made by root and given to c with mode. */
static uint64_t dir_for(const struct fs_cred *c, const char *name, uint32_t mode)
{
	struct fs_setattr sa = { .valid = FS_SET_UID | FS_SET_GID | FS_SET_MODE, .uid = c->uid,
				 .gid = c->gid, .mode = mode };
	struct fs_attr a;
	uint64_t ino = mkdir_(&ROOT, FS_ROOT_INO, name, 0755);

	ck_assert_int_eq(fs_setattr(fs, &ROOT, ino, &sa, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | mode);
	return ino;
}

static void chmod_(uint64_t ino, uint32_t mode)
{
	struct fs_setattr sa = { .valid = FS_SET_MODE, .mode = mode };
	struct fs_attr a;

	ck_assert_int_eq(fs_setattr(fs, &ROOT, ino, &sa, &a), 0);
}

static void write_(uint64_t ino, uint64_t off, const void *buf, size_t len)
{
	struct fs_attr a;

	ok_eq(fs_write(fs, &ROOT, ino, off, 0, buf, len, &a), 0);
}

static void truncate_(uint64_t ino, uint64_t size)
{
	struct fs_setattr sa = { .valid = FS_SET_SIZE, .size = size };
	struct fs_attr a;

	ok_eq(fs_setattr(fs, &ROOT, ino, &sa, &a), 0);
	ok_eq(a.size, size);
}

/* Read exactly len bytes at off (asserting that many come back). */
static void read_(uint64_t ino, uint64_t off, void *buf, size_t len)
{
	size_t got = 0;

	ok_eq(fs_read(fs, ino, off, len, buf, &got), 0);
	ok_eq(got, len);
}

static bool all_zero(const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static bool time_eq(struct fs_time a, struct fs_time b)
{
	return a.sec == b.sec && a.nsec == b.nsec;
}

#define ck_assert_time_eq(a, b)                                                               \
	do {                                                                                  \
		struct fs_time a_ = (a), b_ = (b);                                           \
		ck_assert_msg(time_eq(a_, b_), "%s = %" PRId64 ".%09u, %s = %" PRId64 ".%09u", \
			      #a, a_.sec, a_.nsec, #b, b_.sec, b_.nsec);                     \
	} while (0)

/* Inodes in use, as statfs counts them. */
static uint64_t inodes_used(void)
{
	struct fs_statfs st;

	ok_eq(fs_statfs(fs, &st), 0);
	ok(st.files >= st.ffree);
	return st.files - st.ffree;
}

static void integrity_ok(void)
{
	sqlite3_stmt *s;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "ok");
	sqlite3_finalize(s);
}

/* A name of len bytes, all 'n' (static: one at a time). */
static const char *long_name(size_t len)
{
	static char name[FS_NAME_MAX + 2];

	ck_assert_uint_le(len, FS_NAME_MAX + 1);
	memset(name, 'n', len);
	name[len] = '\0';
	return name;
}

/* ---- readdir collection ---- */

#define DENT_MAX 512

struct dent {
	char name[FS_NAME_MAX + 1];
	uint64_t ino;
	uint32_t mode;
	uint64_t cookie;
	bool has_attr;
	struct fs_attr attr;
};

struct dents {
	struct dent e[DENT_MAX];
	uint32_t count;
	uint32_t limit; /* take at most this many (0: all) */
};

static int collect(void *arg, const char *name, size_t namelen, uint64_t ino, uint32_t mode,
		   const struct fs_attr *attr, uint64_t cookie)
{
	struct dents *d = arg;
	struct dent *e;

	if ((d->limit != 0 && d->count >= d->limit) || d->count >= DENT_MAX)
		return 1;
	ok(namelen <= FS_NAME_MAX);
	e = &d->e[d->count++];
	memcpy(e->name, name, namelen);
	e->name[namelen] = '\0';
	e->ino = ino;
	e->mode = mode;
	e->cookie = cookie;
	e->has_attr = attr != NULL;
	if (attr != NULL)
		e->attr = *attr;
	return 0;
}

static const struct dent *dent_find(const struct dents *d, const char *name)
{
	for (uint32_t i = 0; i < d->count; i++)
		if (strcmp(d->e[i].name, name) == 0)
			return &d->e[i];
	return NULL;
}

/* ================================================================ */
/* names: format, lookup, creation, removal                         */
/* ================================================================ */

START_TEST(format_makes_root)
{
	struct fs_attr a = getattr(FS_ROOT_INO), b;

	ck_assert_uint_eq(a.ino, FS_ROOT_INO);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0777);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_uint_eq(a.uid, 0);
	ck_assert_uint_eq(a.gid, 0);
	ck_assert_time_eq(a.mtime, ((struct fs_time){ T0_SEC, 500 }));
	ck_assert_time_eq(a.ctime, ((struct fs_time){ T0_SEC, 500 }));
	ck_assert_uint_ne(a.gen, 0);
	/* the root's "." and ".." are the root */
	ck_assert_int_eq(fs_lookup(fs, &ROOT, FS_ROOT_INO, N("."), &b), 0);
	ck_assert_uint_eq(b.ino, FS_ROOT_INO);
	ck_assert_int_eq(fs_lookup(fs, &ROOT, FS_ROOT_INO, N(".."), &b), 0);
	ck_assert_uint_eq(b.ino, FS_ROOT_INO);
}
END_TEST

START_TEST(format_takes_owner_and_mode)
{
	struct fs_format_opts o = { .root_uid = 1000, .root_gid = 100, .root_mode = 01777,
				    .now = { 42, 7 } };
	struct fs *fs2;
	struct fs_attr a;
	sqlite3 *db2;

	ck_assert_int_eq(sqlite3_open(":memory:", &db2), SQLITE_OK);
	ck_assert_int_eq(fs_format(db2, &o), 0);
	ck_assert_int_eq(fs_attach(db2, NULL, &fs2), 0);
	ck_assert_int_eq(fs_getattr(fs2, &ROOT, FS_ROOT_INO, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 01777);
	ck_assert_uint_eq(a.uid, 1000);
	ck_assert_uint_eq(a.gid, 100);
	ck_assert_time_eq(a.atime, o.now);
	fs_detach(fs2);
	sqlite3_close(db2);
}
END_TEST

START_TEST(attach_refuses_unformatted)
{
	struct fs *fs2 = NULL;
	sqlite3 *db2;

	ck_assert_int_eq(sqlite3_open(":memory:", &db2), SQLITE_OK);
	log_mute(true);
	ck_assert_int_eq(fs_attach(db2, &HOOKS, &fs2), -EIO);
	log_mute(false);
	sqlite3_close(db2);
}
END_TEST

START_TEST(enoent_missing_names_and_parents)
{
	struct fs_attr a;
	size_t len;
	char buf[16];
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	const uint64_t gone = 9999;

	ck_assert_int_eq(fs_lookup(fs, &ROOT, FS_ROOT_INO, N("missing"), &a), -ENOENT);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, gone, &a), -ENOENT);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, 0, &a), -ENOENT);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("missing")), -ENOENT);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N("missing")), -ENOENT);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("missing"), FS_ROOT_INO, N("x"), 0),
			 -ENOENT);
	ck_assert_int_eq(fs_link(fs, &ROOT, gone, FS_ROOT_INO, N("x"), &a), -ENOENT);
	ck_assert_int_eq(fs_readlink(fs, &ROOT, gone, buf, sizeof(buf), &len), -ENOENT);
	ck_assert_int_eq(fs_open(fs, &ROOT, gone, O_RDONLY, &a), -ENOENT);
	ck_assert_int_eq(fs_access(fs, &ROOT, gone, F_OK), -ENOENT);
	/* operations in a parent that does not exist */
	ck_assert_int_eq(fs_lookup(fs, &ROOT, gone, N("x"), &a), -ENOENT);
	ck_assert_int_eq(fs_mknod(fs, &ROOT, gone, N("x"), S_IFREG | 0644, 0, &a), -ENOENT);
	ck_assert_int_eq(fs_mkdir(fs, &ROOT, gone, N("x"), 0755, &a), -ENOENT);
	ck_assert_int_eq(fs_symlink(fs, &ROOT, gone, N("x"), N("t"), &a), -ENOENT);
	ck_assert_int_eq(fs_create(fs, &ROOT, gone, N("x"), 0644, O_RDWR, &a), -ENOENT);
	ck_assert_int_eq(fs_link(fs, &ROOT, f, gone, N("x"), &a), -ENOENT);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, gone, N("x")), -ENOENT);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, gone, N("x")), -ENOENT);
	ck_assert_int_eq(fs_rename(fs, &ROOT, gone, N("x"), FS_ROOT_INO, N("y"), 0), -ENOENT);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), gone, N("y"), 0), -ENOENT);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), f);
}
END_TEST

START_TEST(enotdir_through_a_file)
{
	struct dents d = { .count = 0 };
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	ck_assert_int_eq(fs_lookup(fs, &ROOT, f, N("x"), &a), -ENOTDIR);
	ck_assert_int_eq(fs_mknod(fs, &ROOT, f, N("x"), S_IFREG | 0644, 0, &a), -ENOTDIR);
	ck_assert_int_eq(fs_mkdir(fs, &ROOT, f, N("x"), 0755, &a), -ENOTDIR);
	ck_assert_int_eq(fs_create(fs, &ROOT, f, N("x"), 0644, O_RDWR, &a), -ENOTDIR);
	ck_assert_int_eq(fs_readdir(fs, &ROOT, f, 0, false, collect, &d), -ENOTDIR);
	ck_assert_uint_eq(d.count, 0);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N("f")), -ENOTDIR);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), f, N("x"), 0), -ENOTDIR);
	/* a directory over a file */
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), FS_ROOT_INO, N("f"), 0),
			 -ENOTDIR);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), f);
}
END_TEST

START_TEST(eexist_every_creation)
{
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	const char *const names[] = { "f", "d", ".", ".." };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *n = names[i];

		ck_assert_msg(fs_mknod(fs, &ROOT, FS_ROOT_INO, N(n), S_IFIFO | 0644, 0, &a) == -EEXIST,
			      "mknod %s", n);
		ck_assert_msg(fs_mkdir(fs, &ROOT, FS_ROOT_INO, N(n), 0755, &a) == -EEXIST, "mkdir %s", n);
		ck_assert_msg(fs_symlink(fs, &ROOT, FS_ROOT_INO, N(n), N("t"), &a) == -EEXIST,
			      "symlink %s", n);
		ck_assert_msg(fs_link(fs, &ROOT, f, FS_ROOT_INO, N(n), &a) == -EEXIST, "link %s", n);
		ck_assert_msg(fs_create(fs, &ROOT, FS_ROOT_INO, N(n), 0644, O_CREAT | O_EXCL | O_RDWR,
					&a) == -EEXIST, "create O_EXCL %s", n);
	}
	/* nothing was replaced */
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), f);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "d"), d);
	ck_assert_uint_eq(getattr(f).nlink, 1);
	ck_assert_uint_eq(getattr(FS_ROOT_INO).nlink, 3);
}
END_TEST

START_TEST(enametoolong_256_but_255_works)
{
	struct fs_attr a;
	struct dents d = { .count = 0 };
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	char n255[FS_NAME_MAX + 1], n256[FS_NAME_MAX + 2];

	memcpy(n255, long_name(255), sizeof(n255));
	memcpy(n256, long_name(256), sizeof(n256));
	ck_assert_int_eq(fs_lookup(fs, &ROOT, FS_ROOT_INO, N(n256), &a), -ENAMETOOLONG);
	ck_assert_int_eq(fs_mknod(fs, &ROOT, FS_ROOT_INO, N(n256), S_IFREG, 0, &a), -ENAMETOOLONG);
	ck_assert_int_eq(fs_mkdir(fs, &ROOT, FS_ROOT_INO, N(n256), 0755, &a), -ENAMETOOLONG);
	ck_assert_int_eq(fs_symlink(fs, &ROOT, FS_ROOT_INO, N(n256), N("t"), &a), -ENAMETOOLONG);
	ck_assert_int_eq(fs_link(fs, &ROOT, f, FS_ROOT_INO, N(n256), &a), -ENAMETOOLONG);
	ck_assert_int_eq(fs_create(fs, &ROOT, FS_ROOT_INO, N(n256), 0644, O_RDWR, &a),
			 -ENAMETOOLONG);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N(n256)), -ENAMETOOLONG);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N(n256)), -ENAMETOOLONG);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N(n256), 0),
			 -ENAMETOOLONG);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N(n256), FS_ROOT_INO, N("g"), 0),
			 -ENAMETOOLONG);
	/* 255 bytes is a name like any other */
	ck_assert_int_eq(fs_mknod(fs, &ROOT, FS_ROOT_INO, N(n255), S_IFREG | 0644, 0, &a), 0);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, n255), a.ino);
	ck_assert_int_eq(fs_readdir(fs, &ROOT, FS_ROOT_INO, 0, false, collect, &d), 0);
	ck_assert_ptr_nonnull(dent_find(&d, n255));
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N(n255), FS_ROOT_INO, N("g"), 0), 0);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("g"), FS_ROOT_INO, N(n255), 0), 0);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N(n255)), 0);
	ck_assert_int_eq(fs_mkdir(fs, &ROOT, FS_ROOT_INO, N(n255), 0755, &a), 0);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N(n255)), 0);
	/* the same for a symlink's target: 4095 bytes, not 4096 */
	{
		char *t = malloc(FS_SYMLINK_MAX + 1);

		ck_assert_ptr_nonnull(t);
		memset(t, 't', FS_SYMLINK_MAX + 1);
		ck_assert_int_eq(fs_symlink(fs, &ROOT, FS_ROOT_INO, N("s1"), t, FS_SYMLINK_MAX + 1, &a),
				 -ENAMETOOLONG);
		ck_assert_int_eq(fs_symlink(fs, &ROOT, FS_ROOT_INO, N("s1"), t, FS_SYMLINK_MAX, &a), 0);
		ck_assert_uint_eq(a.size, FS_SYMLINK_MAX);
		free(t);
	}
}
END_TEST

START_TEST(names_with_slash_or_empty_refused)
{
	struct fs_attr a;
	const char with_nul[] = { 'a', '\0', 'b' };

	ck_assert_int_lt(fs_mknod(fs, &ROOT, FS_ROOT_INO, N("a/b"), S_IFREG | 0644, 0, &a), 0);
	ck_assert_int_lt(fs_mknod(fs, &ROOT, FS_ROOT_INO, with_nul, sizeof(with_nul), S_IFREG, 0, &a),
			 0);
	ck_assert_int_lt(fs_mkdir(fs, &ROOT, FS_ROOT_INO, "", 0, 0755, &a), 0);
	ck_assert_int_eq(fs_lookup(fs, &ROOT, FS_ROOT_INO, "", 0, &a), -ENOENT);
	ck_assert_uint_eq(inodes_used(), 1);
}
END_TEST

/* A name is its bytes: case, high bytes, and dots beyond "." and ".." are plain names. */
START_TEST(names_are_bytes)
{
	static const char *const names[] = { "a", "A", "\xc3\xa9", "e\xcc\x81", "...", ".a", "..a",
					      "a.", " ", "\x01" };
	uint64_t ino[ARRAY_SIZE(names)];
	struct dents d = { .count = 0 };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		ino[i] = mkfile(&ROOT, FS_ROOT_INO, names[i], 0644);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		ck_assert_uint_eq(lookup(FS_ROOT_INO, names[i]), ino[i]);
		for (size_t j = 0; j < i; j++)
			ck_assert_uint_ne(ino[i], ino[j]);
	}
	ck_assert_int_eq(fs_readdir(fs, &ROOT, FS_ROOT_INO, 0, false, collect, &d), 0);
	ck_assert_uint_eq(d.count, ARRAY_SIZE(names) + 2);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		ck_assert_uint_eq(dent_find(&d, names[i])->ino, ino[i]);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("A")), 0);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "a"), ino[0]);
}
END_TEST

START_TEST(mknod_every_type)
{
	static const struct {
		uint32_t mode;
		uint64_t rdev;
		const char *name;
	} kinds[] = {
		{ S_IFREG | 0640, 0, "reg" },
		{ S_IFIFO | 0600, 0, "fifo" },
		{ S_IFSOCK | 0755, 0, "sock" },
		{ S_IFCHR | 0620, 0x0501, "chr" },
		{ S_IFBLK | 0660, 0x0801, "blk" },
	};
	struct dents d = { .count = 0 };
	struct fs_attr a;

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		ck_assert_int_eq(fs_mknod(fs, &ROOT, FS_ROOT_INO, N(kinds[i].name), kinds[i].mode,
					  kinds[i].rdev, &a), 0);
		ck_assert_uint_eq(a.mode, kinds[i].mode);
		ck_assert_uint_eq(a.rdev, kinds[i].rdev);
		ck_assert_uint_eq(a.nlink, 1);
		ck_assert_uint_eq(a.size, 0);
		ck_assert_uint_eq(getattr(a.ino).mode, kinds[i].mode);
	}
	/* mode without a type is a regular file */
	ck_assert_int_eq(fs_mknod(fs, &ROOT, FS_ROOT_INO, N("plain"), 0644, 0, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0644);
	/* mkdir makes directories, not mknod */
	ck_assert_int_lt(fs_mknod(fs, &ROOT, FS_ROOT_INO, N("dir"), S_IFDIR | 0755, 0, &a), 0);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "dir"), 0);
	/* readdir reports each entry's type */
	ck_assert_int_eq(fs_readdir(fs, &ROOT, FS_ROOT_INO, 0, false, collect, &d), 0);
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct dent *e = dent_find(&d, kinds[i].name);

		ck_assert_ptr_nonnull(e);
		ck_assert_uint_eq(e->mode & S_IFMT, kinds[i].mode & S_IFMT);
	}
}
END_TEST

START_TEST(mknod_device_needs_root)
{
	struct fs_attr a;
	uint64_t d = dir_for(&ALICE, "home", 0755);

	ck_assert_int_eq(fs_mknod(fs, &ALICE, d, N("c"), S_IFCHR | 0600, 0x0101, &a), -EPERM);
	ck_assert_int_eq(fs_mknod(fs, &ALICE, d, N("b"), S_IFBLK | 0600, 0x0101, &a), -EPERM);
	ck_assert_uint_eq(lookup(d, "c"), 0);
	ck_assert_int_eq(fs_mknod(fs, &ALICE, d, N("p"), S_IFIFO | 0600, 0, &a), 0);
	ck_assert_uint_eq(a.uid, ALICE.uid);
	ck_assert_uint_eq(a.gid, ALICE.gid);
	ck_assert_int_eq(fs_mknod(fs, &ALICE, d, N("s"), S_IFSOCK | 0600, 0, &a), 0);
	ck_assert_int_eq(fs_mknod(fs, &ROOT, d, N("c"), S_IFCHR | 0600, 0x0101, &a), 0);
}
END_TEST

START_TEST(mkdir_and_rmdir_link_counts)
{
	struct fs_attr a;
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0750);

	a = getattr(d);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0750);
	ck_assert_uint_eq(getattr(FS_ROOT_INO).nlink, 3);
	mkdir_(&ROOT, d, "s1", 0755);
	mkdir_(&ROOT, d, "s2", 0755);
	mkfile(&ROOT, d, "f", 0644); /* a file adds no link */
	ck_assert_uint_eq(getattr(d).nlink, 4);
	ck_assert_int_eq(fs_lookup(fs, &ROOT, lookup(d, "s1"), N(".."), &a), 0);
	ck_assert_uint_eq(a.ino, d);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, d, N("s1")), 0);
	ck_assert_uint_eq(getattr(d).nlink, 3);
	ck_assert_uint_eq(lookup(d, "s1"), 0);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, d, N("s2")), 0);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, d, N("f")), 0);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N("d")), 0);
	ck_assert_uint_eq(getattr(FS_ROOT_INO).nlink, 2);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, d, &a), -ENOENT);
	ck_assert_uint_eq(inodes_used(), 1);
}
END_TEST

START_TEST(rmdir_rules)
{
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	uint64_t e = mkdir_(&ROOT, FS_ROOT_INO, "e", 0755);

	mkfile(&ROOT, d, "f", 0644);
	mkdir_(&ROOT, e, "sub", 0755);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N("d")), -ENOTEMPTY);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N("e")), -ENOTEMPTY);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, d, N("f")), -ENOTDIR);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, d, N(".")), -EINVAL);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, d, N("..")), -ENOTEMPTY);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "d"), d);
	ck_assert_uint_eq(getattr(FS_ROOT_INO).nlink, 4);
	/* unlink refuses a directory */
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("d")), -EISDIR);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, e, N("sub")), -EISDIR);
	ck_assert_uint_eq(lookup(e, "sub") != 0, 1);
}
END_TEST

START_TEST(symlink_and_readlink)
{
	char buf[64];
	size_t len = 0;
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);

	ck_assert_int_eq(fs_symlink(fs, &ALICE, d, N("s"), N("../some/where"), &a), -EACCES);
	ck_assert_uint_eq(lookup(d, "s"), 0);
	ck_assert_int_eq(fs_symlink(fs, &ROOT, FS_ROOT_INO, N("s"), N("../some/where"), &a), 0);
	ck_assert_uint_eq(a.mode, S_IFLNK | 0777);
	ck_assert_uint_eq(a.size, strlen("../some/where"));
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_int_eq(fs_readlink(fs, &ROOT, a.ino, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(len, strlen("../some/where"));
	ck_assert_int_eq(memcmp(buf, "../some/where", len), 0);
	ck_assert_int_eq(fs_readlink(fs, &ROOT, a.ino, buf, 5, &len), -ERANGE);
	/* readlink of anything else */
	ck_assert_int_eq(fs_readlink(fs, &ROOT, f, buf, sizeof(buf), &len), -EINVAL);
	ck_assert_int_eq(fs_readlink(fs, &ROOT, FS_ROOT_INO, buf, sizeof(buf), &len), -EINVAL);
	/* an empty target is no target */
	ck_assert_int_eq(fs_symlink(fs, &ROOT, FS_ROOT_INO, N("e"), "", 0, &a), -ENOENT);
	/* a symlink is not opened (O_NOFOLLOW semantics: the kernel resolves links) */
	ck_assert_int_eq(fs_open(fs, &ROOT, lookup(FS_ROOT_INO, "s"), O_RDONLY, &a), -ELOOP);
	/* removed with unlink */
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("s")), 0);
	ck_assert_uint_eq(inodes_used(), 3);
}
END_TEST

START_TEST(link_rules)
{
	struct fs_attr a;
	uint8_t buf[4];
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	write_(f, 0, "data", 4);
	tick();
	ck_assert_int_eq(fs_link(fs, &ROOT, f, d, N("g"), &a), 0);
	ck_assert_uint_eq(a.ino, f);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_time_eq(a.ctime, clock_now);
	ck_assert_time_eq(getattr(d).mtime, clock_now);
	ck_assert_time_eq(getattr(d).ctime, clock_now);
	ck_assert_uint_eq(lookup(d, "g"), f);
	/* no hard link to a directory */
	ck_assert_int_eq(fs_link(fs, &ROOT, d, FS_ROOT_INO, N("d2"), &a), -EPERM);
	ck_assert_uint_eq(getattr(d).nlink, 2);
	/* unlinking one name leaves the other, and the inode's ctime moves */
	tick();
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f")), 0);
	a = getattr(f);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_time_eq(a.ctime, clock_now);
	read_(f, 0, buf, 4);
	ck_assert_int_eq(memcmp(buf, "data", 4), 0);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, d, N("g")), 0);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, f, &a), -ENOENT);
}
END_TEST

/*
 * FS_LINK_MAX links to one file: the next link is EMLINK.  In memory this
 * is ~65000 small inserts, well under a second natively.
 */
START_TEST(emlink_at_link_max)
{
	char name[32];
	struct fs_attr a;
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	uint64_t f = mkfile(&ROOT, d, "f", 0644);

	for (uint32_t i = 1; i < FS_LINK_MAX; i++) {
		snprintf(name, sizeof(name), "l%u", i);
		ok_eq(fs_link(fs, &ROOT, f, d, N(name), &a), 0);
	}
	ck_assert_uint_eq(a.nlink, FS_LINK_MAX);
	ck_assert_int_eq(OP(fs_link(fs, &ROOT, f, d, N("one-more"), &a)), -EMLINK);
	ck_assert_uint_eq(getattr(f).nlink, FS_LINK_MAX);
	ck_assert_uint_eq(lookup(d, "one-more"), 0);
	/* one fewer makes room again */
	ck_assert_int_eq(fs_unlink(fs, &ROOT, d, N("l1")), 0);
	ck_assert_int_eq(fs_link(fs, &ROOT, f, d, N("one-more"), &a), 0);
	ck_assert_uint_eq(a.nlink, FS_LINK_MAX);
}
END_TEST

START_TEST(inode_numbers_never_reused)
{
	struct fs *fs2;
	struct fs_attr a;
	uint64_t prev = FS_ROOT_INO, first;

	first = mkfile(&ROOT, FS_ROOT_INO, "a", 0644);
	ok(first > FS_ROOT_INO);
	ok(getattr(first).gen != 0);
	for (int i = 0; i < 50; i++) {
		uint64_t ino;

		if (i % 3 == 0) {
			ino = mkdir_(&ROOT, FS_ROOT_INO, "x", 0755);
		} else if (i % 3 == 1) {
			ino = mkfile(&ROOT, FS_ROOT_INO, "x", 0644);
		} else {
			ok_eq(fs_symlink(fs, &ROOT, FS_ROOT_INO, N("x"), N("t"), &a), 0);
			ino = a.ino;
		}
		ok(ino > prev);
		ok(getattr(ino).gen != 0);
		prev = ino;
		if (i % 3 == 0)
			ok_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N("x")), 0);
		else
			ok_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("x")), 0);
		ok_eq(fs_getattr(fs, &ROOT, ino, &a), -ENOENT);
	}
	/* nor after the filesystem is attached again */
	fs_detach(fs);
	fs = NULL;
	ok_eq(fs_attach(db, &HOOKS, &fs2), 0);
	fs = fs2;
	ok(mkfile(&ROOT, FS_ROOT_INO, "y", 0644) > prev);
}
END_TEST

/* ================================================================ */
/* rename                                                           */
/* ================================================================ */

START_TEST(rename_moves_and_times)
{
	struct fs_attr a;
	uint64_t p1 = mkdir_(&ROOT, FS_ROOT_INO, "p1", 0755);
	uint64_t p2 = mkdir_(&ROOT, FS_ROOT_INO, "p2", 0755);
	uint64_t f = mkfile(&ROOT, p1, "f", 0644);
	struct fs_time before = getattr(f).mtime;

	tick();
	ck_assert_int_eq(fs_rename(fs, &ROOT, p1, N("f"), p2, N("g"), 0), 0);
	ck_assert_uint_eq(lookup(p1, "f"), 0);
	ck_assert_uint_eq(lookup(p2, "g"), f);
	a = getattr(f);
	ck_assert_time_eq(a.ctime, clock_now);
	ck_assert_time_eq(a.mtime, before); /* the file's data did not change */
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_time_eq(getattr(p1).mtime, clock_now);
	ck_assert_time_eq(getattr(p1).ctime, clock_now);
	ck_assert_time_eq(getattr(p2).mtime, clock_now);
	ck_assert_time_eq(getattr(p2).ctime, clock_now);
	/* a file moving adds no link to either parent */
	ck_assert_uint_eq(getattr(p1).nlink, 2);
	ck_assert_uint_eq(getattr(p2).nlink, 2);
	/* within one directory */
	tick();
	ck_assert_int_eq(fs_rename(fs, &ROOT, p2, N("g"), p2, N("h"), 0), 0);
	ck_assert_uint_eq(lookup(p2, "h"), f);
	ck_assert_uint_eq(lookup(p2, "g"), 0);
	ck_assert_time_eq(getattr(p2).mtime, clock_now);
	ck_assert_time_eq(getattr(f).ctime, clock_now);
}
END_TEST

START_TEST(rename_file_over_file)
{
	uint8_t buf[3];
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t g = mkfile(&ROOT, FS_ROOT_INO, "g", 0644);
	uint64_t h = mkfile(&ROOT, FS_ROOT_INO, "h", 0644);
	uint64_t used = inodes_used();

	write_(f, 0, "new", 3);
	write_(g, 0, "old", 3);
	ck_assert_int_eq(fs_link(fs, &ROOT, h, FS_ROOT_INO, N("h2"), &a), 0);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("g"), 0), 0);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "g"), f);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), 0);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, g, &a), -ENOENT); /* the old inode is gone */
	ck_assert_uint_eq(inodes_used(), used - 1);
	read_(f, 0, buf, 3);
	ck_assert_int_eq(memcmp(buf, "new", 3), 0);
	/* replacing one of two links only drops a link, and moves the target's ctime */
	tick();
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("g"), FS_ROOT_INO, N("h2"), 0), 0);
	a = getattr(h);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_time_eq(a.ctime, clock_now);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "h2"), f);
}
END_TEST

START_TEST(rename_same_inode_is_noop)
{
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	struct fs_time t;

	ck_assert_int_eq(fs_link(fs, &ROOT, f, FS_ROOT_INO, N("g"), &a), 0);
	t = getattr(FS_ROOT_INO).mtime;
	tick();
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("f"), 0), 0);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("g"), 0), 0);
	/* POSIX: "return successfully and perform no other action" */
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), f);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "g"), f);
	ck_assert_uint_eq(getattr(f).nlink, 2);
	ck_assert_time_eq(getattr(FS_ROOT_INO).mtime, t);
	/* a directory onto itself */
	mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), FS_ROOT_INO, N("d"), 0), 0);
	ck_assert_uint_eq(getattr(FS_ROOT_INO).nlink, 3);
}
END_TEST

START_TEST(rename_noreplace)
{
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t g = mkfile(&ROOT, FS_ROOT_INO, "g", 0644);

	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("g"),
				      FS_RENAME_NOREPLACE)), -EEXIST);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), f);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "g"), g);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("h"),
				   FS_RENAME_NOREPLACE), 0);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "h"), f);
	/* NOREPLACE onto the same name: it exists */
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("h"), FS_ROOT_INO, N("h"),
				      FS_RENAME_NOREPLACE)), -EEXIST);
	/* both flags at once make no sense */
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("h"), FS_ROOT_INO, N("g"),
				   FS_RENAME_NOREPLACE | FS_RENAME_EXCHANGE), -EINVAL);
}
END_TEST

START_TEST(rename_exchange)
{
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t g = mkfile(&ROOT, FS_ROOT_INO, "g", 0644);

	tick();
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("g"),
				   FS_RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), g);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "g"), f);
	ck_assert_time_eq(getattr(f).ctime, clock_now);
	ck_assert_time_eq(getattr(g).ctime, clock_now);
	ck_assert_uint_eq(getattr(f).nlink, 1);
	ck_assert_uint_eq(getattr(g).nlink, 1);
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("missing"),
				      FS_RENAME_EXCHANGE)), -ENOENT);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), g);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "missing"), 0);
}
END_TEST

START_TEST(rename_exchange_dir_and_file_across_parents)
{
	struct fs_attr a;
	uint64_t p1 = mkdir_(&ROOT, FS_ROOT_INO, "p1", 0755);
	uint64_t p2 = mkdir_(&ROOT, FS_ROOT_INO, "p2", 0755);
	uint64_t d = mkdir_(&ROOT, p1, "d", 0755);
	uint64_t f = mkfile(&ROOT, p2, "f", 0644);

	ck_assert_uint_eq(getattr(p1).nlink, 3);
	ck_assert_uint_eq(getattr(p2).nlink, 2);
	tick();
	ck_assert_int_eq(fs_rename(fs, &ROOT, p1, N("d"), p2, N("f"), FS_RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(lookup(p1, "d"), f);
	ck_assert_uint_eq(lookup(p2, "f"), d);
	ck_assert_uint_eq(getattr(p1).nlink, 2);
	ck_assert_uint_eq(getattr(p2).nlink, 3);
	ck_assert_uint_eq(getattr(d).nlink, 2);
	ck_assert_uint_eq(getattr(f).nlink, 1);
	/* the directory's ".." followed it */
	ck_assert_int_eq(fs_lookup(fs, &ROOT, d, N(".."), &a), 0);
	ck_assert_uint_eq(a.ino, p2);
	ck_assert_time_eq(getattr(p1).mtime, clock_now);
	ck_assert_time_eq(getattr(p2).mtime, clock_now);
	/* two directories across parents: the counts stay */
	mkdir_(&ROOT, p1, "e", 0755);
	ck_assert_int_eq(fs_rename(fs, &ROOT, p1, N("e"), p2, N("f"), FS_RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(getattr(p1).nlink, 3);
	ck_assert_uint_eq(getattr(p2).nlink, 3);
	ck_assert_int_eq(fs_lookup(fs, &ROOT, d, N(".."), &a), 0);
	ck_assert_uint_eq(a.ino, p1);
}
END_TEST

START_TEST(rename_dir_across_parents)
{
	struct fs_attr a;
	uint64_t p1 = mkdir_(&ROOT, FS_ROOT_INO, "p1", 0755);
	uint64_t p2 = mkdir_(&ROOT, FS_ROOT_INO, "p2", 0755);
	uint64_t d = mkdir_(&ROOT, p1, "d", 0755);

	mkfile(&ROOT, d, "inside", 0644);
	ck_assert_int_eq(fs_rename(fs, &ROOT, p1, N("d"), p2, N("d"), 0), 0);
	ck_assert_uint_eq(getattr(p1).nlink, 2);
	ck_assert_uint_eq(getattr(p2).nlink, 3);
	ck_assert_uint_eq(getattr(d).nlink, 2);
	ck_assert_int_eq(fs_lookup(fs, &ROOT, d, N(".."), &a), 0);
	ck_assert_uint_eq(a.ino, p2);
	ck_assert_uint_ne(lookup(d, "inside"), 0);
	/* over an empty directory in another parent: it is gone, the counts are right */
	{
		uint64_t e = mkdir_(&ROOT, p1, "e", 0755);

		ck_assert_uint_eq(getattr(p1).nlink, 3);
		ck_assert_int_eq(fs_rename(fs, &ROOT, p2, N("d"), p1, N("e"), 0), 0);
		ck_assert_int_eq(fs_getattr(fs, &ROOT, e, &a), -ENOENT);
		ck_assert_uint_eq(lookup(p1, "e"), d);
		ck_assert_uint_eq(getattr(p1).nlink, 3);
		ck_assert_uint_eq(getattr(p2).nlink, 2);
	}
	/* over an empty directory in the same parent */
	mkdir_(&ROOT, p1, "f", 0755);
	ck_assert_uint_eq(getattr(p1).nlink, 4);
	ck_assert_int_eq(fs_rename(fs, &ROOT, p1, N("e"), p1, N("f"), 0), 0);
	ck_assert_uint_eq(getattr(p1).nlink, 3);
	ck_assert_uint_eq(lookup(p1, "f"), d);
	ck_assert_uint_eq(inodes_used(), 5);
}
END_TEST

START_TEST(rename_errors)
{
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	uint64_t full = mkdir_(&ROOT, FS_ROOT_INO, "full", 0755);
	uint64_t sub = mkdir_(&ROOT, d, "sub", 0755);
	uint64_t deep = mkdir_(&ROOT, sub, "deep", 0755);

	mkfile(&ROOT, full, "x", 0644);
	/* a file over a directory, a directory over a file */
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("d"), 0)),
			 -EISDIR);
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), FS_ROOT_INO, N("f"), 0)),
			 -ENOTDIR);
	/* over a directory that is not empty */
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), FS_ROOT_INO, N("full"), 0)),
			 -ENOTEMPTY);
	/* into its own subtree, at any depth, or into itself */
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), d, N("x"), 0)), -EINVAL);
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), sub, N("x"), 0)), -EINVAL);
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), deep, N("x"), 0)), -EINVAL);
	/* "." and ".." on either side */
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, d, N("."), FS_ROOT_INO, N("x"), 0)), -EINVAL);
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, d, N(".."), FS_ROOT_INO, N("x"), 0)), -EINVAL);
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), d, N("."), 0)), -EINVAL);
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), d, N(".."), 0)), -EINVAL);
	/* nothing moved */
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), f);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "d"), d);
	ck_assert_uint_eq(lookup(d, "sub"), sub);
	ck_assert_uint_eq(lookup(sub, "deep"), deep);
	ck_assert_uint_eq(lookup(deep, "x"), 0);
	ck_assert_uint_eq(getattr(FS_ROOT_INO).nlink, 4);
	/* a deeper directory may move up, out of it */
	ck_assert_int_eq(fs_rename(fs, &ROOT, sub, N("deep"), FS_ROOT_INO, N("deep"), 0), 0);
	ck_assert_uint_eq(getattr(FS_ROOT_INO).nlink, 5);
	ck_assert_uint_eq(getattr(sub).nlink, 2);
}
END_TEST

START_TEST(rename_exchange_into_own_subtree)
{
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	uint64_t sub = mkdir_(&ROOT, d, "sub", 0755);
	uint64_t deep = mkdir_(&ROOT, sub, "deep", 0755);

	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, FS_ROOT_INO, N("d"), sub, N("deep"),
				      FS_RENAME_EXCHANGE)), -EINVAL);
	ck_assert_int_eq(OP(fs_rename(fs, &ROOT, sub, N("deep"), FS_ROOT_INO, N("d"),
				      FS_RENAME_EXCHANGE)), -EINVAL);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "d"), d);
	ck_assert_uint_eq(lookup(sub, "deep"), deep);
}
END_TEST

/* ================================================================ */
/* permissions                                                      */
/* ================================================================ */

START_TEST(search_permission)
{
	struct fs_attr a;
	struct fs_cred staff = with_groups(BOB, STAFF, 0);
	uint64_t d = dir_for(&ALICE, "d", 0750);
	struct fs_setattr sa = { .valid = FS_SET_GID, .gid = STAFF };

	ck_assert_int_eq(fs_setattr(fs, &ROOT, d, &sa, &a), 0);
	mkfile(&ROOT, d, "f", 0644);
	/* others: no x */
	ck_assert_int_eq(fs_lookup(fs, &CAROL, d, N("f"), &a), -EACCES);
	ck_assert_int_eq(fs_lookup(fs, &CAROL, d, N("."), &a), -EACCES);
	/* the group, through a supplementary group */
	ck_assert_int_eq(fs_lookup(fs, &staff, d, N("f"), &a), 0);
	ck_assert_int_eq(fs_lookup(fs, &BOB, d, N("f"), &a), -EACCES);
	/* the owner; read without search is not enough */
	ck_assert_int_eq(fs_lookup(fs, &ALICE, d, N("f"), &a), 0);
	chmod_(d, 0640);
	ck_assert_int_eq(fs_lookup(fs, &ALICE, d, N("f"), &a), -EACCES);
	ck_assert_int_eq(fs_mknod(fs, &ALICE, d, N("g"), S_IFREG | 0600, 0, &a), -EACCES);
	/* root needs no bits on a directory */
	chmod_(d, 0);
	ck_assert_int_eq(fs_lookup(fs, &ROOT, d, N("f"), &a), 0);
	ck_assert_int_eq(fs_mknod(fs, &ROOT, d, N("g"), S_IFREG | 0600, 0, &a), 0);
}
END_TEST

START_TEST(dir_write_permission)
{
	struct fs_attr a;
	uint64_t d = dir_for(&ALICE, "d", 0755);
	uint64_t mine = dir_for(&BOB, "mine", 0755);
	uint64_t f = mkfile(&ALICE, d, "f", 0666);

	mkdir_(&ALICE, d, "sub", 0777);
	/* bob cannot change alice's directory */
	ck_assert_int_eq(fs_mknod(fs, &BOB, d, N("x"), S_IFREG | 0644, 0, &a), -EACCES);
	ck_assert_int_eq(fs_create(fs, &BOB, d, N("x"), 0644, O_CREAT | O_RDWR, &a), -EACCES);
	ck_assert_int_eq(fs_mkdir(fs, &BOB, d, N("x"), 0755, &a), -EACCES);
	ck_assert_int_eq(fs_symlink(fs, &BOB, d, N("x"), N("t"), &a), -EACCES);
	ck_assert_int_eq(fs_link(fs, &BOB, f, d, N("x"), &a), -EACCES);
	ck_assert_int_eq(fs_unlink(fs, &BOB, d, N("f")), -EACCES);
	ck_assert_int_eq(fs_rmdir(fs, &BOB, d, N("sub")), -EACCES);
	ck_assert_int_eq(fs_rename(fs, &BOB, d, N("f"), d, N("g"), 0), -EACCES);
	ck_assert_int_eq(fs_rename(fs, &BOB, d, N("f"), mine, N("g"), 0), -EACCES);
	ck_assert_int_eq(fs_link(fs, &BOB, f, mine, N("g"), &a), 0); /* his own directory */
	ck_assert_int_eq(fs_rename(fs, &BOB, mine, N("g"), d, N("g"), 0), -EACCES);
	ck_assert_uint_eq(lookup(d, "f"), f);
	ck_assert_uint_eq(lookup(d, "x"), 0);
	/* alice can, and so can bob once the directory is writable to all */
	ck_assert_int_eq(fs_unlink(fs, &ALICE, d, N("f")), 0);
	chmod_(d, 0777);
	ck_assert_int_eq(fs_rename(fs, &BOB, mine, N("g"), d, N("g"), 0), 0);
	ck_assert_int_eq(fs_rmdir(fs, &BOB, d, N("sub")), 0);
	/* write without search is not enough */
	chmod_(d, 0666);
	ck_assert_int_eq(fs_mknod(fs, &BOB, d, N("y"), S_IFREG | 0644, 0, &a), -EACCES);
}
END_TEST

START_TEST(open_permission)
{
	struct fs_attr a;
	uint64_t d = dir_for(&ALICE, "d", 0755);
	uint64_t ro = mkfile(&ALICE, d, "ro", 0444);
	uint64_t wo = mkfile(&ALICE, d, "wo", 0200);

	ck_assert_int_eq(fs_open(fs, &ALICE, ro, O_RDONLY, &a), 0);
	ck_assert_int_eq(fs_open(fs, &ALICE, ro, O_WRONLY, &a), -EACCES);
	ck_assert_int_eq(fs_open(fs, &ALICE, ro, O_RDWR, &a), -EACCES);
	ck_assert_int_eq(fs_open(fs, &ALICE, ro, O_RDONLY | O_TRUNC, &a), -EACCES);
	ck_assert_int_eq(fs_open(fs, &ALICE, wo, O_WRONLY, &a), 0);
	ck_assert_int_eq(fs_open(fs, &ALICE, wo, O_RDONLY, &a), -EACCES);
	ck_assert_int_eq(fs_open(fs, &BOB, wo, O_WRONLY, &a), -EACCES);
	ck_assert_int_eq(fs_open(fs, &BOB, ro, O_RDONLY, &a), 0);
	/* root reads and writes either */
	ck_assert_int_eq(fs_open(fs, &ROOT, ro, O_RDWR, &a), 0);
	ck_assert_int_eq(fs_open(fs, &ROOT, wo, O_RDWR, &a), 0);
	/* a directory opens for reading only */
	ck_assert_int_eq(fs_open(fs, &ALICE, d, O_RDONLY, &a), 0);
	ck_assert_int_eq(fs_open(fs, &ALICE, d, O_WRONLY, &a), -EISDIR);
	ck_assert_int_eq(fs_open(fs, &ALICE, d, O_RDWR, &a), -EISDIR);
	ck_assert_int_eq(fs_open(fs, &ROOT, d, O_RDWR, &a), -EISDIR);
	/* create (not exclusive) of an existing file checks its bits like open */
	chmod_(d, 0777);
	ck_assert_int_eq(fs_create(fs, &BOB, d, N("ro"), 0644, O_CREAT | O_WRONLY, &a), -EACCES);
}
END_TEST

/*
 * Moving a directory to another parent rewrites its "..": that needs write
 * permission on the directory itself (Linux vfs_rename), even for its owner.
 */
START_TEST(rename_dir_across_needs_write_on_it)
{
	uint64_t p1 = mkdir_(&ROOT, FS_ROOT_INO, "p1", 0777);
	uint64_t p2 = mkdir_(&ROOT, FS_ROOT_INO, "p2", 0777);
	uint64_t d = mkdir_(&ALICE, p1, "d", 0555);

	ck_assert_int_eq(OP(fs_rename(fs, &ALICE, p1, N("d"), p2, N("d"), 0)), -EACCES);
	ck_assert_uint_eq(lookup(p1, "d"), d);
	ck_assert_uint_eq(getattr(p1).nlink, 3);
	ck_assert_int_eq(fs_rename(fs, &ALICE, p1, N("d"), p1, N("e"), 0), 0);
	ck_assert_int_eq(fs_rename(fs, &ROOT, p1, N("e"), p2, N("e"), 0), 0);
	chmod_(d, 0755);
	ck_assert_int_eq(fs_rename(fs, &ALICE, p2, N("e"), p1, N("d"), 0), 0);
	ck_assert_uint_eq(lookup(p1, "d"), d);
}
END_TEST

/* The owner's bits apply to the owner even when group or other bits allow more. */
START_TEST(permission_classes_are_exclusive)
{
	struct fs_attr a;
	struct fs_cred staff = with_groups(BOB, 77, STAFF);
	uint64_t d = dir_for(&ALICE, "d", 0755);
	uint64_t f = mkfile(&ALICE, d, "f", 0077);
	struct fs_setattr sa = { .valid = FS_SET_GID, .gid = STAFF };

	ck_assert_int_eq(fs_setattr(fs, &ROOT, f, &sa, &a), 0);
	ck_assert_int_eq(fs_access(fs, &ALICE, f, R_OK), -EACCES);
	ck_assert_int_eq(fs_access(fs, &staff, f, R_OK | W_OK | X_OK), 0);
	ck_assert_int_eq(fs_access(fs, &CAROL, f, R_OK | W_OK | X_OK), 0);
	chmod_(f, 0707);
	ck_assert_int_eq(fs_access(fs, &staff, f, R_OK), -EACCES);
	ck_assert_int_eq(fs_access(fs, &CAROL, f, R_OK), 0);
	ck_assert_int_eq(fs_open(fs, &staff, f, O_RDONLY, &a), -EACCES);
	/* bit by bit */
	chmod_(f, 0640);
	ck_assert_int_eq(fs_access(fs, &ALICE, f, R_OK | W_OK), 0);
	ck_assert_int_eq(fs_access(fs, &ALICE, f, X_OK), -EACCES);
	ck_assert_int_eq(fs_access(fs, &staff, f, R_OK), 0);
	ck_assert_int_eq(fs_access(fs, &staff, f, W_OK), -EACCES);
	ck_assert_int_eq(fs_access(fs, &BOB, f, R_OK), -EACCES);
	ck_assert_int_eq(fs_access(fs, &CAROL, f, F_OK), 0);
}
END_TEST

START_TEST(root_bypass_but_exec_needs_a_bit)
{
	struct fs_attr a;
	uint8_t buf[2];
	uint64_t f = mkfile(&ALICE, FS_ROOT_INO, "f", 0);
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0);

	ck_assert_int_eq(fs_access(fs, &ROOT, f, R_OK | W_OK), 0);
	ck_assert_int_eq(fs_open(fs, &ROOT, f, O_RDWR, &a), 0);
	ck_assert_int_eq(fs_write(fs, &ROOT, f, 0, 0, "hi", 2, &a), 0);
	read_(f, 0, buf, 2);
	ck_assert_int_eq(fs_access(fs, &ROOT, f, X_OK), -EACCES);
	chmod_(f, 0001);
	ck_assert_int_eq(fs_access(fs, &ROOT, f, X_OK), 0);
	chmod_(f, 0010);
	ck_assert_int_eq(fs_access(fs, &ROOT, f, X_OK), 0);
	ck_assert_int_eq(fs_access(fs, &ALICE, f, X_OK), -EACCES);
	/* a directory: search needs no bit for root */
	ck_assert_int_eq(fs_access(fs, &ROOT, d, R_OK | W_OK | X_OK), 0);
	ck_assert_int_eq(fs_access(fs, &ALICE, d, X_OK), -EACCES);
	ck_assert_int_eq(fs_access(fs, &ALICE, d, F_OK), 0);
}
END_TEST

START_TEST(chmod_chown_need_ownership)
{
	struct fs_attr a;
	struct fs_cred staff = with_groups(ALICE, STAFF, 0);
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0666);
	struct fs_setattr sa = { .valid = FS_SET_UID | FS_SET_GID, .uid = ALICE.uid,
				 .gid = ALICE.gid };

	ck_assert_int_eq(fs_setattr(fs, &ROOT, f, &sa, &a), 0);
	ck_assert_uint_eq(a.uid, ALICE.uid);
	/* chmod by someone else, even with write permission */
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 0777 };
	ck_assert_int_eq(fs_setattr(fs, &BOB, f, &sa, &a), -EPERM);
	ck_assert_uint_eq(getattr(f).mode, S_IFREG | 0666);
	ck_assert_int_eq(fs_setattr(fs, &ALICE, f, &sa, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0777);
	/* chown to another user: root only, even for the owner */
	sa = (struct fs_setattr){ .valid = FS_SET_UID, .uid = BOB.uid };
	ck_assert_int_eq(fs_setattr(fs, &BOB, f, &sa, &a), -EPERM);
	ck_assert_int_eq(fs_setattr(fs, &ALICE, f, &sa, &a), -EPERM);
	ck_assert_uint_eq(getattr(f).uid, ALICE.uid);
	/* chgrp: the owner, to a group the owner is in */
	sa = (struct fs_setattr){ .valid = FS_SET_GID, .gid = STAFF };
	ck_assert_int_eq(fs_setattr(fs, &ALICE, f, &sa, &a), -EPERM);
	ck_assert_int_eq(fs_setattr(fs, &BOB, f, &sa, &a), -EPERM);
	ck_assert_uint_eq(getattr(f).gid, ALICE.gid);
	ck_assert_int_eq(fs_setattr(fs, &staff, f, &sa, &a), 0);
	ck_assert_uint_eq(a.gid, STAFF);
	/* and root to anything */
	sa = (struct fs_setattr){ .valid = FS_SET_UID | FS_SET_GID, .uid = 4242, .gid = 4343 };
	ck_assert_int_eq(fs_setattr(fs, &ROOT, f, &sa, &a), 0);
	ck_assert_uint_eq(a.uid, 4242);
	ck_assert_uint_eq(a.gid, 4343);
}
END_TEST

START_TEST(utimes_permissions)
{
	struct fs_attr a;
	uint64_t f = mkfile(&ALICE, FS_ROOT_INO, "f", 0666);
	uint64_t g = mkfile(&ALICE, FS_ROOT_INO, "g", 0644);
	struct fs_setattr expl = { .valid = FS_SET_ATIME | FS_SET_MTIME, .atime = { 1000, 1 },
				   .mtime = { 2000, 999999999 } };
	struct fs_setattr now = { .valid = FS_SET_ATIME_NOW | FS_SET_MTIME_NOW };

	tick();
	/* explicit times: the owner (or root) only, write permission is not enough */
	ck_assert_int_eq(fs_setattr(fs, &BOB, f, &expl, &a), -EPERM);
	ck_assert_int_eq(fs_setattr(fs, &ALICE, f, &expl, &a), 0);
	ck_assert_time_eq(a.atime, expl.atime);
	ck_assert_time_eq(a.mtime, expl.mtime);
	ck_assert_time_eq(a.ctime, clock_now);
	a = getattr(f);
	ck_assert_time_eq(a.atime, expl.atime);
	ck_assert_time_eq(a.mtime, expl.mtime);
	/* "now": write permission is enough */
	tick();
	ck_assert_int_eq(fs_setattr(fs, &BOB, f, &now, &a), 0);
	ck_assert_time_eq(a.atime, clock_now);
	ck_assert_time_eq(a.mtime, clock_now);
	ck_assert_int_eq(fs_setattr(fs, &BOB, g, &now, &a), -EACCES);
	ck_assert_int_eq(fs_setattr(fs, &ALICE, g, &now, &a), 0);
	/* one set, the other omitted (UTIME_OMIT) */
	tick();
	expl.valid = FS_SET_MTIME;
	ck_assert_int_eq(fs_setattr(fs, &ALICE, f, &expl, &a), 0);
	ck_assert_time_eq(a.mtime, expl.mtime);
	ck_assert_time_eq(a.atime, getattr(g).atime); /* both were "now" a tick ago */
	ck_assert_int_eq(fs_setattr(fs, &ROOT, g, &expl, &a), 0);
	ck_assert_time_eq(a.mtime, expl.mtime);
}
END_TEST

START_TEST(sticky_directory)
{
	struct fs_attr a;
	uint64_t t = dir_for(&ALICE, "tmp", 01777);

	mkfile(&BOB, t, "bobs", 0666);
	mkfile(&BOB, t, "bobs2", 0666);
	mkfile(&BOB, t, "bobs3", 0666);
	mkfile(&CAROL, t, "carols", 0666);
	mkdir_(&BOB, t, "bobsdir", 0777);
	/* carol cannot remove or rename bob's entries, nor replace them */
	ck_assert_int_eq(fs_unlink(fs, &CAROL, t, N("bobs")), -EPERM);
	ck_assert_int_eq(fs_rmdir(fs, &CAROL, t, N("bobsdir")), -EPERM);
	ck_assert_int_eq(fs_rename(fs, &CAROL, t, N("bobs"), t, N("mine"), 0), -EPERM);
	ck_assert_int_eq(OP(fs_rename(fs, &CAROL, t, N("carols"), t, N("bobs"), 0)), -EPERM);
	ck_assert_uint_ne(lookup(t, "bobs"), 0);
	ck_assert_uint_ne(lookup(t, "carols"), 0);
	/* but her own */
	ck_assert_int_eq(fs_rename(fs, &CAROL, t, N("carols"), t, N("hers"), 0), 0);
	/* the file's owner may */
	ck_assert_int_eq(fs_unlink(fs, &BOB, t, N("bobs")), 0);
	/* the directory's owner may */
	ck_assert_int_eq(fs_unlink(fs, &ALICE, t, N("bobs2")), 0);
	ck_assert_int_eq(fs_rmdir(fs, &ALICE, t, N("bobsdir")), 0);
	/* root may */
	ck_assert_int_eq(fs_rename(fs, &ROOT, t, N("bobs3"), t, N("moved"), 0), 0);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, t, N("moved")), 0);
	/* creating in a sticky directory is as usual */
	ck_assert_int_eq(fs_mknod(fs, &CAROL, t, N("new"), S_IFREG | 0600, 0, &a), 0);
}
END_TEST

START_TEST(setgid_directory_inheritance)
{
	struct fs_attr a;
	struct fs_cred staff = with_groups(ALICE, STAFF, 0);
	uint64_t d = dir_for(&ALICE, "shared", 02775);
	struct fs_setattr sa = { .valid = FS_SET_GID, .gid = STAFF };

	ck_assert_int_eq(fs_setattr(fs, &staff, d, &sa, &a), 0);
	ck_assert_uint_eq(a.mode & S_ISGID, S_ISGID);
	chmod_(d, 02777);
	ck_assert_int_eq(fs_mknod(fs, &BOB, d, N("f"), S_IFREG | 0644, 0, &a), 0);
	ck_assert_uint_eq(a.gid, STAFF);
	ck_assert_uint_eq(a.uid, BOB.uid);
	ck_assert_uint_eq(a.mode & S_ISGID, 0);
	ck_assert_int_eq(fs_mkdir(fs, &BOB, d, N("sub"), 0755, &a), 0);
	ck_assert_uint_eq(a.gid, STAFF);
	ck_assert_uint_eq(a.mode, S_IFDIR | S_ISGID | 0755);
	/* and on down */
	ck_assert_int_eq(fs_create(fs, &BOB, a.ino, N("deeper"), 0600, O_CREAT | O_RDWR, &a), 0);
	ck_assert_uint_eq(a.gid, STAFF);
	ck_assert_int_eq(fs_symlink(fs, &BOB, d, N("l"), N("t"), &a), 0);
	ck_assert_uint_eq(a.gid, STAFF);
	/* without setgid the creator's group */
	chmod_(d, 0777);
	ck_assert_int_eq(fs_mkdir(fs, &BOB, d, N("plain"), 0755, &a), 0);
	ck_assert_uint_eq(a.gid, BOB.gid);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0755);
}
END_TEST

START_TEST(write_clears_setuid_setgid)
{
	struct fs_attr a;
	uint64_t d = dir_for(&ALICE, "d", 0755);
	uint64_t f = mkfile(&ALICE, d, "f", 06755);
	uint64_t g = mkfile(&ALICE, d, "g", 02644); /* setgid without group x: a lock mark */
	uint64_t h = mkfile(&ALICE, d, "h", 06777);
	uint64_t r = mkfile(&ROOT, d, "r", 06755);
	struct fs_setattr sa = { .valid = FS_SET_SIZE, .size = 1 };

	ck_assert_uint_eq(getattr(f).mode, S_IFREG | 06755);
	ck_assert_int_eq(fs_write(fs, &ALICE, f, 0, 0, "x", 1, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0755);
	ck_assert_uint_eq(getattr(f).mode, S_IFREG | 0755);
	ck_assert_int_eq(fs_write(fs, &ALICE, g, 0, 0, "x", 1, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 02644);
	/* root writes and the bits stay */
	ck_assert_int_eq(fs_write(fs, &ROOT, r, 0, 0, "x", 1, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 06755);
	/* a truncate by someone else clears them too */
	ck_assert_int_eq(fs_setattr(fs, &BOB, h, &sa, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0777);
	/* O_TRUNC of a non-empty file is a truncate */
	ck_assert_int_eq(fs_write(fs, &ROOT, r, 0, 0, "xyz", 3, &a), 0);
	chmod_(r, 06777);
	ck_assert_int_eq(fs_open(fs, &BOB, r, O_WRONLY | O_TRUNC, &a), 0);
	ck_assert_uint_eq(a.size, 0);
	ck_assert_uint_eq(getattr(r).mode, S_IFREG | 0777);
}
END_TEST

/*
 * The kernel sends the kill of a non-owner's buffered write or truncate
 * as a chmod from that caller: allowed when it takes away nothing but the
 * privilege bits and the caller may write; any other chmod stays the
 * owner's.
 */
START_TEST(writer_may_chmod_away_privileges)
{
	struct fs_attr a;
	uint64_t d = dir_for(&ALICE, "d", 0755);
	uint64_t w = mkfile(&ALICE, d, "w", 06777);
	uint64_t ro = mkfile(&ALICE, d, "ro", 06755);
	struct fs_setattr sa = { .valid = FS_SET_MODE, .mode = 0777 };

	sa.mode = 0775; /* more than the bits */
	ck_assert_int_eq(fs_setattr(fs, &BOB, w, &sa, &a), -EPERM);
	sa.mode = 04777; /* setgid only, with setuid left */
	ck_assert_int_eq(fs_setattr(fs, &BOB, w, &sa, &a), -EPERM);
	sa.mode = 0777;
	ck_assert_int_eq(fs_setattr(fs, &BOB, w, &sa, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0777);
	/* one who may not write it may not */
	sa.mode = 0755;
	ck_assert_int_eq(fs_setattr(fs, &BOB, ro, &sa, &a), -EPERM);
	ck_assert_uint_eq(getattr(ro).mode, S_IFREG | 06755);
	/* unless through a descriptor open for writing (the open decided) */
	sa.valid |= FS_SET_BY_WRITER;
	ck_assert_int_eq(fs_setattr(fs, &BOB, ro, &sa, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0755);
}
END_TEST

START_TEST(chown_clears_setuid_setgid)
{
	struct fs_attr a;
	struct fs_cred staff = with_groups(ALICE, STAFF, 0);
	uint64_t f = mkfile(&ALICE, FS_ROOT_INO, "f", 06755);
	uint64_t g = mkfile(&ALICE, FS_ROOT_INO, "g", 06755);
	uint64_t d = mkdir_(&ALICE, FS_ROOT_INO, "d", 0755);
	struct fs_setattr sa = { .valid = FS_SET_UID, .uid = BOB.uid };

	chmod_(d, 02755);

	tick();
	ck_assert_int_eq(fs_setattr(fs, &ROOT, f, &sa, &a), 0);
	ck_assert_uint_eq(a.uid, BOB.uid);
	ck_assert_uint_eq(a.mode, S_IFREG | 0755);
	ck_assert_time_eq(a.ctime, clock_now);
	sa = (struct fs_setattr){ .valid = FS_SET_GID, .gid = STAFF };
	ck_assert_int_eq(fs_setattr(fs, &staff, g, &sa, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0755);
	/* a directory keeps its setgid bit */
	ck_assert_int_eq(fs_setattr(fs, &staff, d, &sa, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 02755);
}
END_TEST

START_TEST(chmod_setgid_needs_the_group)
{
	struct fs_attr a;
	uint64_t f = mkfile(&ALICE, FS_ROOT_INO, "f", 0755);
	struct fs_setattr sa = { .valid = FS_SET_GID, .gid = STAFF };

	ck_assert_int_eq(fs_setattr(fs, &ROOT, f, &sa, &a), 0);
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 06755 };
	ck_assert_int_eq(fs_setattr(fs, &ALICE, f, &sa, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 04755);
	{
		struct fs_cred staff = with_groups(ALICE, STAFF, 0);

		ck_assert_int_eq(fs_setattr(fs, &staff, f, &sa, &a), 0);
		ck_assert_uint_eq(a.mode, S_IFREG | 06755);
	}
}
END_TEST

START_TEST(supplementary_groups)
{
	struct fs_attr a;
	struct fs_cred many = BOB;
	uint64_t d = dir_for(&ALICE, "d", 0770);
	struct fs_setattr sa = { .valid = FS_SET_GID, .gid = STAFF };

	ck_assert_int_eq(fs_setattr(fs, &ROOT, d, &sa, &a), 0);
	ck_assert_int_eq(fs_mknod(fs, &BOB, d, N("f"), S_IFREG | 0644, 0, &a), -EACCES);
	/* the group anywhere in the list */
	many.ngroups = FS_GROUPS_MAX;
	for (uint32_t i = 0; i < FS_GROUPS_MAX; i++)
		many.groups[i] = 2000 + i;
	many.groups[FS_GROUPS_MAX - 1] = STAFF;
	ck_assert_int_eq(fs_mknod(fs, &many, d, N("f"), S_IFREG | 0644, 0, &a), 0);
	ck_assert_uint_eq(a.gid, BOB.gid); /* the new file takes the primary group */
	ck_assert_int_eq(fs_access(fs, &many, d, R_OK | W_OK | X_OK), 0);
	many.groups[FS_GROUPS_MAX - 1] = 1;
	ck_assert_int_eq(fs_access(fs, &many, d, X_OK), -EACCES);
	/* the primary group counts as well */
	many = BOB;
	many.gid = STAFF;
	ck_assert_int_eq(fs_access(fs, &many, d, X_OK), 0);
}
END_TEST

START_TEST(truncate_rules)
{
	struct fs_attr a;
	uint64_t f = mkfile(&ALICE, FS_ROOT_INO, "f", 0644);
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0777);
	uint64_t p = 0;
	struct fs_setattr sa = { .valid = FS_SET_SIZE, .size = 10 };

	ck_assert_int_eq(fs_setattr(fs, &BOB, f, &sa, &a), -EACCES);
	ck_assert_uint_eq(getattr(f).size, 0);
	ck_assert_int_eq(fs_setattr(fs, &ALICE, f, &sa, &a), 0);
	ck_assert_uint_eq(a.size, 10);
	ck_assert_int_eq(fs_setattr(fs, &ROOT, d, &sa, &a), -EISDIR);
	ck_assert_int_eq(fs_mknod(fs, &ROOT, FS_ROOT_INO, N("p"), S_IFIFO | 0666, 0, &a), 0);
	p = a.ino;
	ck_assert_int_lt(fs_setattr(fs, &ROOT, p, &sa, &a), 0);
	/* read and write of a directory */
	{
		uint8_t b[4];
		size_t got;

		ck_assert_int_eq(fs_read(fs, d, 0, sizeof(b), b, &got), -EISDIR);
		ck_assert_int_eq(fs_write(fs, &ROOT, d, 0, 0, "x", 1, &a), -EISDIR);
	}
}
END_TEST

/* ================================================================ */
/* times                                                            */
/* ================================================================ */

START_TEST(new_inode_times)
{
	struct fs_attr a;
	struct fs_time t;

	clock_now = (struct fs_time){ 1800000000, 123456789 };
	t = clock_now;
	ck_assert_int_eq(fs_mknod(fs, &ROOT, FS_ROOT_INO, N("f"), S_IFREG | 0644, 0, &a), 0);
	ck_assert_time_eq(a.atime, t);
	ck_assert_time_eq(a.mtime, t);
	ck_assert_time_eq(a.ctime, t);
	a = getattr(a.ino);
	ck_assert_time_eq(a.atime, t);
	ck_assert_time_eq(a.mtime, t);
	ck_assert_time_eq(a.ctime, t);
}
END_TEST

START_TEST(ctime_on_every_metadata_change)
{
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	struct fs_time m = getattr(f).mtime;
	struct fs_setattr sa;

#define CHANGED(call)                                                   \
	do {                                                            \
		tick();                                                 \
		ck_assert_int_eq(call, 0);                              \
		ck_assert_time_eq(getattr(f).ctime, clock_now);         \
		ck_assert_time_eq(getattr(f).mtime, m);                 \
	} while (0)

	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 0600 };
	CHANGED(fs_setattr(fs, &ROOT, f, &sa, &a));
	sa = (struct fs_setattr){ .valid = FS_SET_UID | FS_SET_GID, .uid = 5, .gid = 6 };
	CHANGED(fs_setattr(fs, &ROOT, f, &sa, &a));
	sa = (struct fs_setattr){ .valid = FS_SET_ATIME, .atime = { 5, 5 } };
	CHANGED(fs_setattr(fs, &ROOT, f, &sa, &a));
	CHANGED(fs_setxattr(fs, &ROOT, f, "user.a", "v", 1, 0));
	CHANGED(fs_setxattr(fs, &ROOT, f, "user.a", "w", 1, XATTR_REPLACE));
	CHANGED(fs_removexattr(fs, &ROOT, f, "user.a"));
	CHANGED(fs_link(fs, &ROOT, f, FS_ROOT_INO, N("g"), &a));
	CHANGED(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("g")));
	CHANGED(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("h"), 0));
#undef CHANGED
	/* explicit mtime moves ctime to now as well */
	tick();
	sa = (struct fs_setattr){ .valid = FS_SET_MTIME, .mtime = { 77, 0 } };
	ck_assert_int_eq(fs_setattr(fs, &ROOT, f, &sa, &a), 0);
	ck_assert_time_eq(getattr(f).ctime, clock_now);
	/* failures change nothing */
	tick();
	sa = (struct fs_setattr){ .valid = FS_SET_MODE, .mode = 0777 };
	ck_assert_int_eq(OP(fs_setattr(fs, &BOB, f, &sa, &a)), -EPERM);
	ck_assert_int_eq(OP(fs_setxattr(fs, &ROOT, f, "user.b", "v", 1, XATTR_REPLACE)), -ENODATA);
	ck_assert_int_lt(getattr(f).ctime.sec, clock_now.sec);
}
END_TEST

START_TEST(dir_times_when_entries_change)
{
	struct fs_attr a;
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0777);
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	struct dents ds = { .count = 0 };
	struct fs_time before;

#define DIR_CHANGED(call)                                               \
	do {                                                            \
		tick();                                                 \
		ck_assert_int_eq(call, 0);                              \
		ck_assert_time_eq(getattr(d).mtime, clock_now);         \
		ck_assert_time_eq(getattr(d).ctime, clock_now);         \
	} while (0)

	DIR_CHANGED(fs_mknod(fs, &ROOT, d, N("n"), S_IFREG | 0644, 0, &a));
	DIR_CHANGED(fs_mkdir(fs, &ROOT, d, N("m"), 0755, &a));
	DIR_CHANGED(fs_symlink(fs, &ROOT, d, N("s"), N("t"), &a));
	DIR_CHANGED(fs_create(fs, &ROOT, d, N("c"), 0644, O_CREAT | O_RDWR, &a));
	DIR_CHANGED(fs_link(fs, &ROOT, f, d, N("l"), &a));
	DIR_CHANGED(fs_unlink(fs, &ROOT, d, N("l")));
	DIR_CHANGED(fs_rmdir(fs, &ROOT, d, N("m")));
	DIR_CHANGED(fs_rename(fs, &ROOT, d, N("n"), d, N("n2"), 0));
	DIR_CHANGED(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), d, N("f"), 0));
	DIR_CHANGED(fs_rename(fs, &ROOT, d, N("f"), FS_ROOT_INO, N("f"), 0));
#undef DIR_CHANGED
	/* the parent of a removed subdirectory loses a link */
	ck_assert_uint_eq(getattr(d).nlink, 2);
	/* looking does not change it */
	before = getattr(d).mtime;
	tick();
	ck_assert_int_eq(fs_lookup(fs, &ROOT, d, N("c"), &a), 0);
	ck_assert_int_eq(fs_readdir(fs, &ROOT, d, 0, true, collect, &ds), 0);
	ck_assert_int_eq(fs_lookup(fs, &ROOT, d, N("nothing"), &a), -ENOENT);
	ck_assert_time_eq(getattr(d).mtime, before);
	ck_assert_time_eq(getattr(d).ctime, before);
	/* a failed creation does not either */
	ck_assert_int_eq(OP(fs_mknod(fs, &ROOT, d, N("c"), S_IFREG | 0644, 0, &a)), -EEXIST);
	ck_assert_time_eq(getattr(d).mtime, before);
}
END_TEST

START_TEST(file_times_on_write_and_truncate)
{
	struct fs_attr a;
	uint8_t b[8];
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	tick();
	ck_assert_int_eq(fs_write(fs, &ROOT, f, 0, 0, "abcdef", 6, &a), 0);
	ck_assert_time_eq(a.mtime, clock_now);
	ck_assert_time_eq(a.ctime, clock_now);
	ck_assert_time_eq(getattr(f).mtime, clock_now);
	tick();
	truncate_(f, 3);
	ck_assert_time_eq(getattr(f).mtime, clock_now);
	ck_assert_time_eq(getattr(f).ctime, clock_now);
	tick();
	truncate_(f, 100);
	ck_assert_time_eq(getattr(f).mtime, clock_now);
	ck_assert_time_eq(getattr(f).ctime, clock_now);
	/* a read changes neither */
	tick();
	read_(f, 0, b, 3);
	ck_assert_int_lt(getattr(f).mtime.sec, clock_now.sec);
	ck_assert_int_lt(getattr(f).ctime.sec, clock_now.sec);
	/* O_TRUNC of a file with data */
	tick();
	ck_assert_int_eq(fs_open(fs, &ROOT, f, O_WRONLY | O_TRUNC, &a), 0);
	ck_assert_uint_eq(a.size, 0);
	ck_assert_time_eq(getattr(f).mtime, clock_now);
	ck_assert_time_eq(getattr(f).ctime, clock_now);
	/* fallocate changes ctime */
	tick();
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, 0, 0, 100, false), 0);
	ck_assert_time_eq(getattr(f).ctime, clock_now);
}
END_TEST

/* The stored attributes, as a second filesystem on the same database sees them. */
static struct fs_attr stored_attr(uint64_t ino)
{
	struct fs *fs2;
	struct fs_attr a;

	ck_assert_int_eq(fs_attach(db, &HOOKS, &fs2), 0);
	ck_assert_int_eq(fs_getattr(fs2, &ROOT, ino, &a), 0);
	fs_detach(fs2);
	return a;
}

START_TEST(atime_is_deferred)
{
	uint8_t b[4];
	struct fs_time t0, t1;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	write_(f, 0, "abcd", 4);
	t0 = getattr(f).atime;
	tick();
	t1 = clock_now;
	read_(f, 0, b, 4);
	/* shown at once, stored only when flushed */
	ck_assert_time_eq(getattr(f).atime, t1);
	ck_assert_time_eq(stored_attr(f).atime, t0);
	tick();
	ck_assert_int_eq(fs_atime_flush(fs), 0);
	ck_assert_time_eq(stored_attr(f).atime, t1);
	ck_assert_time_eq(getattr(f).atime, t1);
	/* and the read changed nothing else */
	ck_assert_time_eq(stored_attr(f).mtime, getattr(f).mtime);
	ck_assert_int_lt(getattr(f).ctime.sec, t1.sec);
	/* relatime: a second read soon after does not move it */
	tick();
	read_(f, 0, b, 4);
	ck_assert_time_eq(getattr(f).atime, t1);
	/* a day later it does */
	clock_now.sec += 24 * 3600 + 1;
	read_(f, 0, b, 4);
	ck_assert_time_eq(getattr(f).atime, clock_now);
	/* a write makes the next read record one */
	tick();
	ck_assert_int_eq(fs_atime_flush(fs), 0);
	write_(f, 0, "x", 1);
	tick();
	read_(f, 0, b, 1);
	ck_assert_time_eq(getattr(f).atime, clock_now);
	/* an explicit atime wins over the pending one */
	{
		struct fs_setattr sa = { .valid = FS_SET_ATIME, .atime = { 3, 3 } };
		struct fs_attr a;

		ck_assert_int_eq(fs_setattr(fs, &ROOT, f, &sa, &a), 0);
		ck_assert_int_eq(fs_atime_flush(fs), 0);
		ck_assert_time_eq(getattr(f).atime, sa.atime);
		ck_assert_time_eq(stored_attr(f).atime, sa.atime);
	}
	/* a flush after the file is gone is fine */
	tick();
	write_(f, 0, "y", 1);
	read_(f, 0, b, 1);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f")), 0);
	ck_assert_int_eq(fs_atime_flush(fs), 0);
}
END_TEST

/* ================================================================ */
/* files                                                            */
/* ================================================================ */

START_TEST(sparse_holes_read_zeros)
{
	static uint8_t b[3 * FS_CHUNK_BYTES];
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	const uint64_t at = 5 * (uint64_t)FS_CHUNK_BYTES + 100;
	size_t got;

	write_(f, at, "tail", 4);
	a = getattr(f);
	ck_assert_uint_eq(a.size, at + 4);
	/* only what was written takes room: far less than the size */
	ck_assert_uint_le(a.blocks * 512, 2 * (uint64_t)FS_CHUNK_BYTES);
	memset(b, 0xee, sizeof(b));
	read_(f, 0, b, sizeof(b));
	ck_assert(all_zero(b, sizeof(b)));
	memset(b, 0xee, sizeof(b));
	read_(f, at - 1000, b, 1004);
	ck_assert(all_zero(b, 1000));
	ck_assert_int_eq(memcmp(b + 1000, "tail", 4), 0);
	/* reads stop at the end of the file */
	ck_assert_int_eq(fs_read(fs, f, at, 100, b, &got), 0);
	ck_assert_uint_eq(got, 4);
	ck_assert_int_eq(fs_read(fs, f, at + 4, 100, b, &got), 0);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(fs_read(fs, f, at + 4000000, 100, b, &got), 0);
	ck_assert_uint_eq(got, 0);
	/* growing by truncate is a hole too */
	truncate_(f, at + 4 + 3 * FS_CHUNK_BYTES);
	memset(b, 0xee, sizeof(b));
	read_(f, at + 4, b, sizeof(b));
	ck_assert(all_zero(b, sizeof(b)));
}
END_TEST

START_TEST(truncate_down_then_up_reads_zeros)
{
	static uint8_t b[2 * FS_CHUNK_BYTES], want[2 * FS_CHUNK_BYTES];
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	memset(want, 0x5a, sizeof(want));
	write_(f, 0, want, sizeof(want));
	/* cut inside the first chunk, then grow past both */
	truncate_(f, 1000);
	truncate_(f, sizeof(b) + 10);
	read_(f, 0, b, sizeof(b));
	ck_assert_int_eq(memcmp(b, want, 1000), 0);
	ck_assert(all_zero(b + 1000, sizeof(b) - 1000));
	/* exactly at a chunk boundary */
	write_(f, 0, want, sizeof(want));
	truncate_(f, FS_CHUNK_BYTES);
	truncate_(f, sizeof(b));
	read_(f, 0, b, sizeof(b));
	ck_assert_int_eq(memcmp(b, want, FS_CHUNK_BYTES), 0);
	ck_assert(all_zero(b + FS_CHUNK_BYTES, FS_CHUNK_BYTES));
	/* to zero */
	truncate_(f, 0);
	ck_assert_uint_eq(getattr(f).blocks, 0);
	truncate_(f, 10);
	read_(f, 0, b, 10);
	ck_assert(all_zero(b, 10));
}
END_TEST

START_TEST(files_beyond_4gib)
{
	uint8_t b[64];
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	const uint64_t four = (uint64_t)1 << 32;

	/* across the 4 GiB line, and well past it */
	ck_assert_int_eq(fs_write(fs, &ROOT, f, four - 3, 0, "across", 6, &a), 0);
	ck_assert_uint_eq(a.size, four + 3);
	ck_assert_int_eq(fs_write(fs, &ROOT, f, 5 * four + 7, 0, "far", 3, &a), 0);
	ck_assert_uint_eq(a.size, 5 * four + 10);
	read_(f, four - 3, b, 6);
	ck_assert_int_eq(memcmp(b, "across", 6), 0);
	read_(f, 5 * four + 7, b, 3);
	ck_assert_int_eq(memcmp(b, "far", 3), 0);
	read_(f, 3 * four, b, sizeof(b));
	ck_assert(all_zero(b, sizeof(b)));
	/* and nothing leaked to the bytes 4 GiB below (a 32-bit offset would put them there) */
	read_(f, 7, b, 3);
	ck_assert(all_zero(b, 3));
	read_(f, 0, b, 3);
	ck_assert(all_zero(b, 3));
	ck_assert_uint_le(getattr(f).blocks * 512, 4 * (uint64_t)FS_CHUNK_BYTES);
	/* truncating back below 4 GiB keeps what is below */
	truncate_(f, four - 1);
	read_(f, four - 3, b, 2);
	ck_assert_int_eq(memcmp(b, "ac", 2), 0);
	/* a second file's data is its own */
	{
		uint64_t g = mkfile(&ROOT, FS_ROOT_INO, "g", 0644);

		truncate_(g, 6 * four);
		read_(g, 5 * four + 7, b, 3);
		ck_assert(all_zero(b, 3));
	}
}
END_TEST

START_TEST(efbig_past_max_file_size)
{
	uint8_t b[4];
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	struct fs_setattr sa = { .valid = FS_SET_SIZE, .size = FS_MAX_FILE_BYTES + 1 };

	ck_assert_int_eq(OP(fs_write(fs, &ROOT, f, FS_MAX_FILE_BYTES - 1, 0, "ab", 2, &a)), -EFBIG);
	ck_assert_int_eq(OP(fs_write(fs, &ROOT, f, FS_MAX_FILE_BYTES, 0, "a", 1, &a)), -EFBIG);
	ck_assert_int_eq(OP(fs_write(fs, &ROOT, f, UINT64_MAX - 1, 0, "ab", 2, &a)), -EFBIG);
	ck_assert_int_eq(OP(fs_setattr(fs, &ROOT, f, &sa, &a)), -EFBIG);
	ck_assert_int_eq(OP(fs_fallocate(fs, &ROOT, f, FALLOC_FL_KEEP_SIZE, FS_MAX_FILE_BYTES - 1,
					 2, false)), -EFBIG);
	ck_assert_uint_eq(getattr(f).size, 0);
	/* up to the limit works */
	ck_assert_int_eq(fs_write(fs, &ROOT, f, FS_MAX_FILE_BYTES - 2, 0, "ab", 2, &a), 0);
	ck_assert_uint_eq(a.size, FS_MAX_FILE_BYTES);
	read_(f, FS_MAX_FILE_BYTES - 2, b, 2);
	ck_assert_int_eq(memcmp(b, "ab", 2), 0);
	sa.size = FS_MAX_FILE_BYTES;
	ck_assert_int_eq(fs_setattr(fs, &ROOT, f, &sa, &a), 0);
}
END_TEST

START_TEST(reads_across_chunk_boundaries)
{
	static uint8_t want[4 * FS_CHUNK_BYTES + 100], got[sizeof(want)];
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t seed = 7;

	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)prng_next(&seed);
	/* written in odd pieces that straddle the chunk edges */
	for (size_t off = 0; off < sizeof(want);) {
		size_t n = 1 + (size_t)prng_below(&seed, FS_CHUNK_BYTES + 5000);

		n = MIN(n, sizeof(want) - off);
		write_(f, off, want + off, n);
		off += n;
	}
	for (int i = 0; i < 300; i++) {
		uint64_t off = prng_below(&seed, sizeof(want));
		size_t n = (size_t)prng_below(&seed, sizeof(want) - off) + 1;

		read_(f, off, got, n);
		ok_msg(memcmp(got, want + off, n) == 0, "read %zu at %" PRIu64, n, off);
	}
	read_(f, 0, got, sizeof(got));
	ok_eq(memcmp(got, want, sizeof(want)), 0);
	/* stored: the bytes written, give or take a chunk's rounding */
	ok(getattr(f).blocks * 512 >= sizeof(want));
	ok(getattr(f).blocks * 512 <= sizeof(want) + FS_CHUNK_BYTES);
}
END_TEST

/*
 * A model test: thousands of random writes, truncates, hole punches and
 * allocations on one file, each followed by a random read compared with an
 * in-memory copy; the whole file is compared now and then.  The seed comes
 * from FUSEFS_SEED when set, and every failure names it.
 */
#define MODEL_MAX (12 * FS_CHUNK_BYTES + 777)
#define MODEL_OPS 3000

static uint64_t release_all(void);
static uint64_t count_rows(const char *table);

/*
 * tiny: ranges of more than one chunk go through the file's map and the
 * background release (fs_set_release_inline), with release steps run
 * between the operations - a release never touches what the file holds.
 */
static void model_run(bool tiny)
{
	uint8_t *model = calloc(1, MODEL_MAX), *buf = malloc(MODEL_MAX), *data = malloc(MODEL_MAX);
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t seed = getenv("FUSEFS_SEED") ? strtoull(getenv("FUSEFS_SEED"), NULL, 0) : 12345;
	uint64_t st = seed, size = 0;
	bool trace = getenv("FUSEFS_TRACE") != NULL;
	struct fs_attr a;

	ok(model && buf && data);
	if (tiny)
		fs_set_release_inline(fs, FS_CHUNK_BYTES);
	for (int op = 0; op < MODEL_OPS; op++) {
		uint64_t kind = prng_below(&st, 100);
		uint64_t off = prng_below(&st, MODEL_MAX);
		uint64_t len;

		/* lengths: small, around a chunk, or big */
		switch (prng_below(&st, 3)) {
		case 0: len = 1 + prng_below(&st, 64); break;
		case 1: len = FS_CHUNK_BYTES - 32 + prng_below(&st, 64); break;
		default: len = 1 + prng_below(&st, 3 * FS_CHUNK_BYTES); break;
		}
		len = MIN(len, MODEL_MAX - off);
		if (len == 0)
			len = 1, off = MODEL_MAX - 1;
		if (kind < 55) {
			for (uint64_t i = 0; i < len; i++)
				data[i] = (uint8_t)(prng_next(&st) | 1);
			if (trace)
				printf("%4d write %" PRIu64 " at %" PRIu64 "\n", op, len, off);
			ok_eq(fs_write(fs, &ROOT, f, off, 0, data, len, &a), 0);
			memcpy(model + off, data, len);
			size = MAX(size, off + len);
		} else if (kind < 70) {
			uint64_t to = prng_below(&st, 4) == 0 ? prng_below(&st, 100)
							      : prng_below(&st, MODEL_MAX + 1);

			if (trace)
				printf("%4d truncate to %" PRIu64 "\n", op, to);
			truncate_(f, to);
			if (to < size)
				memset(model + to, 0, size - to);
			size = to;
		} else if (kind < 88) {
			if (trace)
				printf("%4d punch %" PRIu64 " at %" PRIu64 "\n", op, len, off);
			ok_eq(fs_fallocate(fs, &ROOT, f,
						      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
						      len, false), 0);
			if (off < size)
				memset(model + off, 0, MIN(len, size - off));
		} else if (kind < 91) {
			if (trace)
				printf("%4d zero range %" PRIu64 " at %" PRIu64 "\n", op, len, off);
			ok_eq(fs_fallocate(fs, &ROOT, f, FALLOC_FL_ZERO_RANGE, off, len, false), 0);
			if (off < size)
				memset(model + off, 0, MIN(len, size - off));
			size = MAX(size, off + len);
		} else if (kind < 94) {
			if (trace)
				printf("%4d allocate (keep size) %" PRIu64 " at %" PRIu64 "\n", op, len, off);
			ok_eq(fs_fallocate(fs, &ROOT, f, FALLOC_FL_KEEP_SIZE, off, len, false), 0);
		} else {
			if (trace)
				printf("%4d allocate %" PRIu64 " at %" PRIu64 "\n", op, len, off);
			ok_eq(fs_fallocate(fs, &ROOT, f, 0, off, len, false), 0);
			size = MAX(size, off + len);
		}
		if (tiny && prng_below(&st, 3) == 0)
			ok(fs_release_step(fs, 1 + (uint32_t)prng_below(&st, 3)) >= 0);
		a = getattr(f);
		ok_msg(a.size == size, "seed %" PRIu64 " op %d: size %" PRIu64 ", model %" PRIu64,
			      seed, op, a.size, size);
		/* stored bytes never exceed what was ever in reach */
		ok_msg(a.blocks * 512 <= (uint64_t)MODEL_MAX + FS_CHUNK_BYTES,
			      "seed %" PRIu64 " op %d: %" PRIu64 " blocks", seed, op, a.blocks);
		{
			uint64_t roff = prng_below(&st, size + 100);
			uint64_t rlen = 1 + prng_below(&st, 2 * FS_CHUNK_BYTES);
			size_t want = roff < size ? (size_t)MIN(size - roff, rlen) : 0;
			size_t got = 99;

			if (trace)
				printf("     read %zu at %" PRIu64 " (size %" PRIu64 ")\n", want, roff, size);

			ok_eq(fs_read(fs, f, roff, want ? want : 10, buf, &got), 0);
			ok_msg(got == want, "seed %" PRIu64 " op %d: read %zu, want %zu", seed, op,
				      got, want);
			ok_msg(memcmp(buf, model + roff, want) == 0,
				      "seed %" PRIu64 " op %d: %zu bytes at %" PRIu64 " differ", seed,
				      op, want, roff);
		}
		if (op % 250 == 249 && size > 0) {
			read_(f, 0, buf, size);
			ok_msg(memcmp(buf, model, size) == 0, "seed %" PRIu64 " op %d: file differs",
				      seed, op);
		}
	}
	if (tiny) {
		release_all();
		read_(f, 0, buf, size);
		ok_msg(memcmp(buf, model, size) == 0, "seed %" PRIu64 ": file differs at the end", seed);
	}
	truncate_(f, 0);
	ok_eq(getattr(f).blocks, 0);
	if (tiny) { /* and nothing is left behind: every chunk released once */
		ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f")), 0);
		release_all();
		ck_assert_uint_eq(count_rows("chunks"), 0);
		ck_assert_uint_eq(count_rows("freeing"), 0);
		integrity_ok();
	}
	free(model);
	free(buf);
	free(data);
}

START_TEST(random_ops_match_model)
{
	model_run(false);
}
END_TEST

START_TEST(random_ops_through_the_map)
{
	model_run(true);
}
END_TEST

START_TEST(st_blocks_follow_stored_bytes)
{
	static uint8_t b[4 * FS_CHUNK_BYTES];
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	struct fs_attr a;

	ck_assert_uint_eq(getattr(f).blocks, 0);
	memset(b, 1, sizeof(b));
	write_(f, 0, b, 512);
	ck_assert_uint_eq(getattr(f).blocks, 1);
	write_(f, 0, b, sizeof(b));
	ck_assert_uint_eq(getattr(f).blocks, sizeof(b) / 512);
	/* overwriting takes no more */
	write_(f, 100, b, 1000);
	ck_assert_uint_eq(getattr(f).blocks, sizeof(b) / 512);
	/* punching a whole chunk gives it back */
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      FS_CHUNK_BYTES, FS_CHUNK_BYTES, false), 0);
	a = getattr(f);
	ck_assert_uint_eq(a.blocks, 3 * FS_CHUNK_BYTES / 512);
	ck_assert_uint_eq(a.size, sizeof(b));
	/* truncating gives back what lies past the end */
	truncate_(f, FS_CHUNK_BYTES / 2);
	ck_assert_uint_eq(getattr(f).blocks, FS_CHUNK_BYTES / 2 / 512);
	truncate_(f, 0);
	ck_assert_uint_eq(getattr(f).blocks, 0);
	/* a directory, a symlink: no data blocks to speak of */
	ck_assert_uint_eq(getattr(FS_ROOT_INO).blocks, 0);
}
END_TEST

/* Write len bytes of v at off, a MiB at a time. */
static void fill(uint64_t ino, uint64_t off, uint8_t v, uint64_t len)
{
	static uint8_t b[1 << 20];

	memset(b, v, sizeof(b));
	for (uint64_t at = 0; at < len; at += sizeof(b))
		write_(ino, off + at, b, (size_t)MIN((uint64_t)sizeof(b), len - at));
}

/* Is [off, off + len) of ino all v? */
static bool holds(uint64_t ino, uint64_t off, uint8_t v, uint64_t len)
{
	static uint8_t b[1 << 20];

	for (uint64_t at = 0; at < len; at += sizeof(b)) {
		size_t n = (size_t)MIN((uint64_t)sizeof(b), len - at);

		read_(ino, off + at, b, n);
		for (size_t i = 0; i < n; i++)
			if (b[i] != v)
				return false;
	}
	return true;
}

static uint64_t count_rows(const char *table)
{
	sqlite3_stmt *s;
	char q[64];
	uint64_t n;

	snprintf(q, sizeof(q), "SELECT count(*) FROM %s", table);
	ck_assert_int_eq(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	n = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* Release everything dropped; how many chunks that was. */
static uint64_t release_all(void)
{
	uint64_t did, n = 0;
	int ret;

	for (int i = 0; i < 100000 && fs_release_pending(fs, &did) == 1; i++) {
		ret = fs_release_step(fs, 100);
		ck_assert_int_ge(ret, 0);
		n += (uint64_t)ret;
	}
	ck_assert_int_eq(fs_release_pending(fs, &did), 0);
	return n;
}

/*
 * A big file's data is dropped at once and released in bounded steps: cut
 * to a small size (the tail becomes a hole in the file's map) or to zero,
 * or deleted; what was dropped never shows through again (grown back, the
 * file reads zeros), every chunk is released once, and the freed data id
 * serves the next file.
 */
START_TEST(big_data_dropped_at_once)
{
	const uint64_t big = 6u << 20, head = 100u << 10, chunks = big / FS_CHUNK_BYTES;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644), g, did;
	uint64_t before = fs_used_bytes(fs);

	fill(f, 0, 0x11, big);
	ck_assert_int_eq(fs_release_pending(fs, &did), 0);
	/* cut to a small head: the rest waits for release */
	truncate_(f, head);
	ck_assert_int_eq(fs_release_pending(fs, &did), 1);
	ck_assert(holds(f, 0, 0x11, head));
	ck_assert_uint_eq(getattr(f).blocks, head / 512);
	truncate_(f, big);
	ck_assert(holds(f, 0, 0x11, head));
	ck_assert(holds(f, head, 0, big - head));
	ck_assert_uint_eq(release_all(), chunks - (head + FS_CHUNK_BYTES - 1) / FS_CHUNK_BYTES);
	/* cut to zero: all of it at once */
	fill(f, 0, 0x22, big);
	truncate_(f, 0);
	ck_assert_uint_eq(getattr(f).blocks, 0);
	truncate_(f, big);
	ck_assert(holds(f, 0, 0, big));
	ck_assert_uint_eq(release_all(), chunks);
	/* deleted: the same, and its data id serves the next file clean */
	fill(f, 0, 0x33, big);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f")), 0);
	g = mkfile(&ROOT, FS_ROOT_INO, "g", 0644);
	fill(g, big - 10, 0x44, 10);
	ck_assert(holds(g, 0, 0, big - 10));
	ck_assert(holds(g, big - 10, 0x44, 10));
	ck_assert_uint_eq(release_all(), chunks);
	ck_assert(holds(g, big - 10, 0x44, 10));
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("g")), 0);
	ck_assert_uint_le(fs_used_bytes(fs), before + (64u << 10));
	/* cut big to a size still big: the tail goes in steps, the head stays */
	{
		const uint64_t cut = (6u << 20) + 100, at8 = 8u << 20, mib = 1u << 20;
		uint8_t b4[4096];

		f = mkfile(&ROOT, FS_ROOT_INO, "two", 0644);
		fill(f, 0, 0x11, 2 * big);
		truncate_(f, cut);
		ck_assert(holds(f, 0, 0x11, cut));
		ck_assert_uint_eq(getattr(f).blocks, (cut + 511) / 512);
		truncate_(f, 2 * big); /* grown back: nothing of the tail shows */
		ck_assert(holds(f, cut, 0, 2 * big - cut));
		fill(f, at8, 0x22, mib); /* past the cut: a new data id */
		memset(b4, 0x33, sizeof(b4));
		write_(f, mib, b4, sizeof(b4)); /* before it: the first */
		ck_assert(holds(f, 0, 0x11, mib));
		ck_assert(holds(f, mib, 0x33, sizeof(b4)));
		ck_assert(holds(f, mib + sizeof(b4), 0x11, cut - mib - sizeof(b4)));
		ck_assert(holds(f, cut, 0, at8 - cut));
		ck_assert(holds(f, at8, 0x22, mib));
		ck_assert(holds(f, at8 + mib, 0, 2 * big - at8 - mib));
		ck_assert_uint_eq(release_all(), 2 * chunks - (cut >> FS_CHUNK_SHIFT) - 1);
		ck_assert(holds(f, at8, 0x22, mib));
		/* cut into the first part: the new part goes whole, the first past the cut */
		truncate_(f, 2 * mib);
		ck_assert(holds(f, 0, 0x11, mib));
		ck_assert(holds(f, mib, 0x33, sizeof(b4)));
		ck_assert(holds(f, mib + sizeof(b4), 0x11, mib - sizeof(b4)));
		/* (the big part counted by its span: its one short chunk as whole) */
		ck_assert_uint_le(getattr(f).blocks, 2 * mib / 512);
		ck_assert_uint_ge(getattr(f).blocks, (2 * mib - FS_CHUNK_BYTES) / 512);
		truncate_(f, 2 * big);
		ck_assert(holds(f, 2 * mib, 0, 2 * big - 2 * mib));
		ck_assert_uint_eq(release_all(), mib / FS_CHUNK_BYTES + (cut >> FS_CHUNK_SHIFT) + 1 -
						 2 * mib / FS_CHUNK_BYTES);
		/* and deleted: the rest, few chunks, in the same commit */
		ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("two")), 0);
		ck_assert_uint_eq(release_all(), 0);
		ck_assert_uint_le(fs_used_bytes(fs), before + (64u << 10));
	}
	/* a big allocation writes nothing (it reads as zeros anyway) but reserves the room */
	{
		const uint64_t four = (uint64_t)1 << 32;
		uint64_t pages;

		g = mkfile(&ROOT, FS_ROOT_INO, "h", 0644);
		pages = fs_used_bytes(fs);
		ck_assert_int_eq(fs_fallocate(fs, &ROOT, g, 0, 0, four, false), 0);
		ck_assert_uint_eq(getattr(g).size, four);
		ck_assert_uint_eq(getattr(g).blocks, four / 512);
		ck_assert_uint_ge(fs_used_bytes(fs), pages + four);
		ck_assert_uint_le(fs_used_bytes(fs), pages + four + (64u << 10));
		ck_assert(holds(g, four - (1u << 20), 0, 1u << 20));
		/* again over the same range: nothing more */
		ck_assert_int_eq(fs_fallocate(fs, &ROOT, g, 0, 0, four, false), 0);
		ck_assert_uint_le(fs_used_bytes(fs), pages + four + (64u << 10));
		/* writing into it uses the reservation up: the total stays */
		fill(g, 0, 0x66, 1u << 20);
		ck_assert_uint_eq(getattr(g).blocks, four / 512);
		ck_assert_uint_le(fs_used_bytes(fs), pages + four + (2u << 20));
		/* cut, the reservation past the end goes; deleted, all of it */
		truncate_(g, 2u << 20);
		ck_assert_uint_eq(getattr(g).blocks, (2u << 20) / 512);
		ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("h")), 0);
		ck_assert_uint_le(fs_used_bytes(fs), pages + (1u << 20));
	}
}
END_TEST

/*
 * Inode numbers use the 64-bit space: past 2^31 (where chunk keys used to
 * stop them) files are made, hold data and read back; at the end of the
 * space a create fails with ENOSPC, and statfs counts no free inode.
 */
static uint64_t map_bytes(uint64_t ino)
{
	sqlite3_stmt *s;
	uint64_t n;

	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT length(extents) FROM inodes WHERE ino=?", -1,
					    &s, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	n = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

#define PUNCH (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

/*
 * Big holes punched and a file cut twice, each cut above the last: what
 * goes is released in the background (none of it in the commit), what
 * stays reads as before, and a write into a hole takes a new data id the
 * release leaves alone.  With the file's map full, a punch is done in its
 * own commit and is still right.
 */
START_TEST(big_punches_and_cuts_through_the_map)
{
	const uint64_t mib = 1u << 20, c = FS_CHUNK_BYTES;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644), g, did;

	fill(f, 0, 0x11, 40 * mib);
	ck_assert_int_eq(OP(fs_fallocate(fs, &ROOT, f, PUNCH, 10 * mib + 100, 10 * mib, false)), 0);
	ck_assert_int_eq(fs_release_pending(fs, &did), 1);
	ck_assert(holds(f, 0, 0x11, 10 * mib + 100));
	ck_assert(holds(f, 10 * mib + 100, 0, 10 * mib));
	ck_assert(holds(f, 20 * mib + 100, 0x11, 20 * mib - 100));
	fill(f, 15 * mib, 0x22, mib); /* into the hole, before its release */
	/* the whole chunks inside the punch, every one released, none in the commit */
	ck_assert_uint_eq(release_all(), (20 * mib + 100) / c - (10 * mib + 100 + c - 1) / c);
	ck_assert(holds(f, 10 * mib + 100, 0, 5 * mib - 100));
	ck_assert(holds(f, 15 * mib, 0x22, mib));
	ck_assert(holds(f, 16 * mib, 0, 4 * mib + 100));
	/* cut, grown by writing, cut again above the first cut: both tails released */
	truncate_(f, 30 * mib);
	fill(f, 30 * mib, 0x33, 20 * mib);
	truncate_(f, 40 * mib);
	ck_assert_uint_eq(release_all(), 2 * (10 * mib / c));
	ck_assert(holds(f, 0, 0x11, 10 * mib + 100));
	ck_assert(holds(f, 15 * mib, 0x22, mib));
	ck_assert(holds(f, 20 * mib + 100, 0x11, 10 * mib - 100));
	ck_assert(holds(f, 30 * mib, 0x33, 10 * mib));
	ck_assert_uint_eq(getattr(f).size, 40 * mib);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f")), 0);
	release_all();
	ck_assert_uint_eq(count_rows("chunks"), 0);

	/* the map full: punches of two chunks in four, past its 64 extents */
	fs_set_release_inline(fs, c);
	g = mkfile(&ROOT, FS_ROOT_INO, "g", 0644);
	fill(g, 0, 0x44, 400 * c);
	for (uint64_t i = 0; i < 100; i++)
		ck_assert_int_eq(OP(fs_fallocate(fs, &ROOT, g, PUNCH, (4 * i + 1) * c, 2 * c, false)), 0);
	ck_assert_uint_ge(map_bytes(g), (FS_MAX_EXTENTS - 1) * 8); /* (no room for two more) */
	release_all();
	for (uint64_t i = 0; i < 100; i++) {
		ck_assert(holds(g, 4 * i * c, 0x44, c));
		ck_assert(holds(g, (4 * i + 1) * c, 0, 2 * c));
		ck_assert(holds(g, (4 * i + 3) * c, 0x44, c));
	}
	ck_assert_uint_eq(getattr(g).blocks, 200 * c / 512);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("g")), 0);
	release_all();
	ck_assert_uint_eq(count_rows("chunks"), 0);
	ck_assert_uint_eq(count_rows("freeing"), 0);
	integrity_ok();
}
END_TEST

/*
 * Deadlocks are found only when real: a wait that closes a cycle of
 * fresh waits, across mounts (owners are (rid, owner)), and never through
 * a wait that ended, went stale, or belongs to a mount gone.
 */
START_TEST(lock_waits_find_real_deadlocks)
{
	struct fs_lock_waits ws = { 0 };
	const mono_ns t = 1000 * NSEC_PER_SEC, stale = FS_LOCK_WAIT_STALE_NS;

	/* A(1,7) waits for B(2,7): noted; B waits for A: a cycle */
	ck_assert(!fs_lock_wait(&ws, 1, 7, 2, 7, t));
	ck_assert(!fs_lock_wait(&ws, 1, 7, 2, 7, t + 1)); /* (asked again: renewed, once) */
	ck_assert_uint_eq(ws.n, 1);
	ck_assert(fs_lock_wait(&ws, 2, 7, 1, 7, t + 2));
	ck_assert_uint_eq(ws.n, 1); /* (the refused wait is not kept) */
	/* the same owner id on another mount is another owner */
	ck_assert(!fs_lock_wait(&ws, 3, 7, 1, 8, t + 3));
	/* a chain A -> B -> C; C waits for A: a cycle; for D: none */
	ck_assert(!fs_lock_wait(&ws, 2, 7, 3, 9, t + 4));
	ck_assert(!fs_lock_wait(&ws, 3, 9, 4, 1, t + 5));
	ck_assert(fs_lock_wait(&ws, 3, 9, 1, 7, t + 6));
	/* a wait that ended is no edge */
	fs_lock_wait_end(&ws, 2, 7);
	ck_assert(!fs_lock_wait(&ws, 3, 9, 1, 7, t + 7));
	fs_lock_wait_end(&ws, 3, 9);
	/* a stale wait is no edge (its waiter stopped asking) */
	ck_assert(!fs_lock_wait(&ws, 5, 1, 6, 1, t));
	ck_assert(!fs_lock_wait(&ws, 6, 1, 5, 1, t + stale + 1));
	/* a gone mount's waits go */
	ck_assert(!fs_lock_wait(&ws, 8, 1, 9, 1, t + 10));
	fs_lock_wait_drop_rid(&ws, 8);
	ck_assert(!fs_lock_wait(&ws, 9, 1, 8, 1, t + 11));
	/* many waits: room grows to the cap, and past it no wait is called a deadlock */
	for (uint64_t i = 0; i < FS_LOCK_WAITS_MAX + 10; i++)
		ck_assert(!fs_lock_wait(&ws, 100 + i, 1, 101 + i, 1, t + 12));
	ck_assert_uint_eq(ws.n, FS_LOCK_WAITS_MAX);
	/* once they are stale they make room */
	ck_assert(!fs_lock_wait(&ws, 99, 1, 98, 1, t + 12 + stale + 1));
	ck_assert_uint_le(ws.n, FS_LOCK_WAITS_MAX);
	fs_lock_waits_free(&ws);
}
END_TEST

/*
 * Locks: random fcntl lock and unlock requests of three owners (two on one
 * mount, one on another) over 64 bytes, against a byte model: a request is
 * refused exactly when another owner's lock is in its way, and after each
 * one every owner's locks cover what the model says, never overlap, and
 * are merged (no two of one type overlap or touch).
 */
#define LK_BYTES 64
START_TEST(locks_match_model)
{
	static const uint64_t RID[3] = { 7, 7, 9 }, OWNER[3] = { 100, 101, 100 };
	uint8_t model[3][LK_BYTES] = { { 0 } }; /* 0, F_RDLCK + 1, F_WRLCK + 1 */
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "locked", 0644), st = 4242;

	for (int op = 0; op < 4000; op++) {
		uint32_t who = (uint32_t)prng_below(&st, 3), t = (uint32_t)prng_below(&st, 3);
		uint64_t a = prng_below(&st, LK_BYTES), b = a + prng_below(&st, LK_BYTES - a);
		uint32_t type = t == 0 ? F_UNLCK : t == 1 ? F_RDLCK : F_WRLCK;
		struct fs_lock l = { .rid = RID[who], .owner = OWNER[who], .start = a, .end = b,
				     .type = type, .pid = 1000 + who }, g = l;
		bool blocked = false;
		sqlite3_stmt *q;
		uint8_t seen[3][LK_BYTES] = { { 0 } };

		for (uint64_t i = a; i <= b && type != F_UNLCK; i++)
			for (uint32_t o = 0; o < 3; o++)
				if (o != who && model[o][i] &&
				    (type == F_WRLCK || model[o][i] == F_WRLCK + 1))
					blocked = true;
		ok_eq(fs_getlk(fs, f, FS_LOCK_POSIX, &g), 0);
		ok_msg((g.type != F_UNLCK) == blocked, "op %d: getlk says %u, blocked %d", op, g.type,
		       blocked);
		if (blocked) /* what it names is in the way */
			ok(g.start <= b && a <= g.end && (g.rid != l.rid || g.owner != l.owner));
		ok_eq(fs_setlk(fs, f, FS_LOCK_POSIX, &l), blocked ? -EAGAIN : 0);
		if (!blocked)
			memset(&model[who][a], type == F_UNLCK ? 0 : (int)type + 1, b - a + 1);
		ok(sqlite3_prepare_v2(db, "SELECT rid, owner, start, end, type FROM locks "
				      "WHERE ino=? AND kind=0 ORDER BY rid, owner, start", -1, &q,
				      NULL) == SQLITE_OK);
		sqlite3_bind_int64(q, 1, (int64_t)f);
		{
			int64_t prev_o = -1, prev_end = -2, prev_type = -1;

			while (sqlite3_step(q) == SQLITE_ROW) {
				uint64_t r = (uint64_t)sqlite3_column_int64(q, 0);
				uint64_t ow = (uint64_t)sqlite3_column_int64(q, 1);
				int64_t s0 = sqlite3_column_int64(q, 2), e0 = sqlite3_column_int64(q, 3);
				int64_t ty = sqlite3_column_int64(q, 4);
				int o = r == 9 ? 2 : ow == 100 ? 0 : 1;

				ok_msg(s0 <= e0 && e0 < LK_BYTES, "op %d: a lock [%lld, %lld]", op,
				       (long long)s0, (long long)e0);
				if (o == prev_o) {
					ok_msg(s0 > prev_end, "op %d: owner %d's locks overlap", op, o);
					ok_msg(s0 > prev_end + 1 || ty != prev_type,
					       "op %d: owner %d's locks not merged", op, o);
				}
				for (int64_t i = s0; i <= e0; i++)
					seen[o][i] = (uint8_t)(ty + 1);
				prev_o = o, prev_end = e0, prev_type = ty;
			}
		}
		sqlite3_finalize(q);
		ok_msg(memcmp(seen, model, sizeof(seen)) == 0, "op %d: the locks differ from the model",
		       op);
	}
	/* to the end of the file, flock beside fcntl, and a mount gone */
	{
		struct fs_lock w = { .rid = 7, .owner = 5, .start = 0, .end = FS_LOCK_END,
				     .type = F_WRLCK, .pid = 1 };
		struct fs_lock other = { .rid = 9, .owner = 5, .start = 0, .end = FS_LOCK_END,
					 .type = F_WRLCK, .pid = 2 };

		ck_assert_int_eq(fs_setlk(fs, f, FS_LOCK_FLOCK, &w), 0);
		ck_assert_int_eq(fs_setlk(fs, f, FS_LOCK_FLOCK, &other), -EAGAIN);
		ck_assert_int_ge(fs_locks_drop_client(fs, 9), 0); /* (its fcntl locks) */
		w.start = 1000, w.type = F_WRLCK;
		ck_assert_int_eq(fs_setlk(fs, f, FS_LOCK_POSIX, &w), 0); /* flock does not conflict */
		ck_assert_int_eq(fs_setlk(fs, f, FS_LOCK_FLOCK, &other), -EAGAIN);
		ck_assert_int_ge(fs_locks_drop_client(fs, 7), 2);
		ck_assert_int_eq(fs_setlk(fs, f, FS_LOCK_FLOCK, &other), 0);
		other.start = 5, other.end = 1;
		ck_assert_int_eq(fs_setlk(fs, f, FS_LOCK_POSIX, &other), -EINVAL);
		other.start = 0, other.end = FS_LOCK_END + 1;
		ck_assert_int_eq(fs_setlk(fs, f, FS_LOCK_POSIX, &other), -EINVAL);
		ck_assert_uint_eq(count_rows("locks"), 1);
		/* and a deleted file's locks go with it */
		ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("locked")), 0);
		ck_assert_uint_eq(count_rows("locks"), 0);
	}
}
END_TEST

START_TEST(inode_numbers_past_2_31)
{
	char q[128];
	uint64_t f;
	struct fs_statfs st;

	snprintf(q, sizeof(q), "UPDATE meta SET v=%" PRIu64 " WHERE k='next_ino'",
		 ((uint64_t)1 << 31) + 5);
	sql(q);
	f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	ck_assert_uint_eq(f, ((uint64_t)1 << 31) + 5);
	fill(f, 0, 0x55, 100000);
	ck_assert(holds(f, 0, 0x55, 100000));
	ck_assert_uint_eq(getattr(f).ino, f);
	snprintf(q, sizeof(q), "UPDATE meta SET v=%" PRIu64 " WHERE k='next_ino'", FS_MAX_INO - 1);
	sql(q);
	fs_set_space(fs, (uint64_t)1 << 30); /* (room for many more, but one number left) */
	ck_assert_int_eq(fs_statfs(fs, &st), 0);
	ck_assert_uint_eq(st.ffree, 1);
	ck_assert_uint_eq(mkfile(&ROOT, FS_ROOT_INO, "last", 0644), FS_MAX_INO - 1);
	ck_assert_int_eq(fs_statfs(fs, &st), 0);
	ck_assert_uint_eq(st.ffree, 0);
	ck_assert_uint_eq(st.files, 3);
	{
		struct fs_attr a;

		ck_assert_int_eq(fs_mknod(fs, &ROOT, FS_ROOT_INO, N("none"), S_IFREG | 0644, 0, &a),
				 -ENOSPC);
	}
	fs_set_space(fs, 0);
}
END_TEST

START_TEST(fallocate_modes)
{
	static uint8_t b[2 * FS_CHUNK_BYTES];
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	struct fs_attr a;

	/* default: size grows, and the range is allocated */
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, 0, 0, 2 * FS_CHUNK_BYTES, false), 0);
	a = getattr(f);
	ck_assert_uint_eq(a.size, 2 * FS_CHUNK_BYTES);
	ck_assert_uint_ge(a.blocks, 2 * FS_CHUNK_BYTES / 512);
	read_(f, 0, b, sizeof(b));
	ck_assert(all_zero(b, sizeof(b)));
	/* inside the file it neither shrinks nor grows it */
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, 0, 10, 10, false), 0);
	ck_assert_uint_eq(getattr(f).size, 2 * FS_CHUNK_BYTES);
	/* KEEP_SIZE: allocated past the end, size unchanged */
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, FALLOC_FL_KEEP_SIZE, 2 * FS_CHUNK_BYTES,
				      FS_CHUNK_BYTES, false), 0);
	a = getattr(f);
	ck_assert_uint_eq(a.size, 2 * FS_CHUNK_BYTES);
	ck_assert_uint_ge(a.blocks, 3 * FS_CHUNK_BYTES / 512);
	/* what lay past the end reads as zeros once the file grows over it */
	truncate_(f, 3 * FS_CHUNK_BYTES);
	read_(f, 2 * FS_CHUNK_BYTES, b, FS_CHUNK_BYTES);
	ck_assert(all_zero(b, FS_CHUNK_BYTES));
	/* PUNCH_HOLE|KEEP_SIZE zeroes the range and keeps the size */
	memset(b, 0x77, sizeof(b));
	write_(f, 0, b, sizeof(b));
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100,
				      FS_CHUNK_BYTES, false), 0);
	ck_assert_uint_eq(getattr(f).size, 3 * FS_CHUNK_BYTES);
	read_(f, 0, b, sizeof(b));
	ck_assert_uint_eq(b[99], 0x77);
	ck_assert(all_zero(b + 100, FS_CHUNK_BYTES));
	ck_assert_uint_eq(b[100 + FS_CHUNK_BYTES], 0x77);
	/* past the end: nothing to punch, size stays */
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      10 * FS_CHUNK_BYTES, 100, false), 0);
	ck_assert_uint_eq(getattr(f).size, 3 * FS_CHUNK_BYTES);
	/* zeroing a range: what was there reads zeros, the room is reserved, the size may grow */
	{
		static uint8_t z[2 * FS_CHUNK_BYTES];

		memset(z, 0x55, sizeof(z));
		write_(f, 0, z, sizeof(z));
		ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					      10, FS_CHUNK_BYTES, false), 0);
		read_(f, 0, z, sizeof(z));
		ck_assert_uint_eq(z[9], 0x55);
		ck_assert(all_zero(z + 10, FS_CHUNK_BYTES));
		ck_assert_uint_eq(z[10 + FS_CHUNK_BYTES], 0x55);
		ck_assert_uint_ge(getattr(f).blocks * 512, 2 * FS_CHUNK_BYTES); /* (reserved) */
		ck_assert_uint_eq(getattr(f).size, 3 * FS_CHUNK_BYTES);
		ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, FALLOC_FL_ZERO_RANGE,
					      3 * FS_CHUNK_BYTES, 100, false), 0);
		ck_assert_uint_eq(getattr(f).size, 3 * FS_CHUNK_BYTES + 100);
		truncate_(f, 3 * FS_CHUNK_BYTES);
	}
	/* every other mode is not supported */
	{
		static const int other[] = {
			FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE,
			FALLOC_FL_INSERT_RANGE, FALLOC_FL_UNSHARE_RANGE,
		};

		for (size_t i = 0; i < ARRAY_SIZE(other); i++)
			ck_assert_msg(fs_fallocate(fs, &ROOT, f, other[i], 0, 4096, false) == -EOPNOTSUPP,
				      "mode %#x", other[i]);
	}
	ck_assert_uint_eq(getattr(f).size, 3 * FS_CHUNK_BYTES);
	/* a zero length, a directory */
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, f, 0, 0, 0, false), -EINVAL);
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, d, 0, 0, 10, false), -EISDIR);
	ck_assert_int_eq(fs_fallocate(fs, &ROOT, 9999, 0, 0, 10, false), -ENOENT);
	/* it needs write permission */
	ck_assert_int_eq(fs_fallocate(fs, &ALICE, f, 0, 0, 10, false), -EACCES);
}
END_TEST

START_TEST(create_and_open_flags)
{
	struct fs_attr a, b;
	uint8_t buf[4];
	uint64_t f;

	ck_assert_int_eq(fs_create(fs, &ROOT, FS_ROOT_INO, N("f"), 0640, O_CREAT | O_RDWR, &a), 0);
	f = a.ino;
	ck_assert_uint_eq(a.mode, S_IFREG | 0640);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), f);
	write_(f, 0, "data", 4);
	/* again without O_EXCL: the same file, as it is */
	ck_assert_int_eq(fs_create(fs, &ROOT, FS_ROOT_INO, N("f"), 0600, O_CREAT | O_RDWR, &b), 0);
	ck_assert_uint_eq(b.ino, f);
	ck_assert_uint_eq(b.size, 4);
	ck_assert_uint_eq(b.mode, S_IFREG | 0640);
	/* with O_EXCL: EEXIST */
	ck_assert_int_eq(fs_create(fs, &ROOT, FS_ROOT_INO, N("f"), 0600,
				   O_CREAT | O_EXCL | O_RDWR, &b), -EEXIST);
	/* with O_TRUNC: emptied */
	ck_assert_int_eq(fs_create(fs, &ROOT, FS_ROOT_INO, N("f"), 0600,
				   O_CREAT | O_TRUNC | O_WRONLY, &b), 0);
	ck_assert_uint_eq(b.ino, f);
	ck_assert_uint_eq(b.size, 0);
	ck_assert_uint_eq(getattr(f).size, 0);
	/* open with O_TRUNC as well; then the old bytes never come back */
	write_(f, 0, "data", 4);
	ck_assert_int_eq(fs_open(fs, &ROOT, f, O_RDWR | O_TRUNC, &a), 0);
	ck_assert_uint_eq(a.size, 0);
	truncate_(f, 4);
	read_(f, 0, buf, 4);
	ck_assert(all_zero(buf, 4));
	/* a new file takes the caller's ids */
	{
		uint64_t d = dir_for(&ALICE, "d", 0777);

		ck_assert_int_eq(fs_create(fs, &BOB, d, N("g"), 0666, O_CREAT | O_WRONLY, &a), 0);
		ck_assert_uint_eq(a.uid, BOB.uid);
		ck_assert_uint_eq(a.gid, BOB.gid);
		/* the creator may write what he made, whatever its mode (as open(2) with O_CREAT) */
		ck_assert_int_eq(fs_create(fs, &BOB, d, N("h"), 0, O_CREAT | O_WRONLY, &a), 0);
	}
}
END_TEST

START_TEST(statfs_counts)
{
	static uint8_t b[256 * 1024];
	struct fs_statfs s0, s1, s2;
	uint64_t f;

	fs_set_space(fs, 64u << 20);
	ck_assert_int_eq(fs_statfs(fs, &s0), 0);
	ck_assert_uint_eq(s0.namemax, FS_NAME_MAX);
	ck_assert_uint_gt(s0.bsize, 0);
	ck_assert_uint_eq(s0.blocks * s0.bsize, 64u << 20);
	ck_assert_uint_le(s0.bfree, s0.blocks);
	ck_assert_uint_le(s0.bavail, s0.bfree);
	ck_assert_uint_gt(s0.bfree, 0);
	ck_assert_uint_eq(s0.files - s0.ffree, 1); /* the root */
	for (int i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		mkfile(&ROOT, FS_ROOT_INO, name, 0644);
	}
	ck_assert_int_eq(fs_statfs(fs, &s1), 0);
	ck_assert_uint_eq(s1.files - s1.ffree, 21);
	ck_assert_uint_le(s1.bfree, s0.bfree);
	f = lookup(FS_ROOT_INO, "f0");
	memset(b, 0xab, sizeof(b));
	write_(f, 0, b, sizeof(b));
	ck_assert_int_eq(fs_statfs(fs, &s2), 0);
	ck_assert_uint_le(s2.bfree + sizeof(b) / s2.bsize, s1.bfree);
	ck_assert_uint_lt(s2.ffree, s1.ffree + 1);
	/* removing gives back */
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f0")), 0);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f1")), 0);
	ck_assert_int_eq(fs_statfs(fs, &s2), 0);
	ck_assert_uint_eq(s2.files - s2.ffree, 19);
	ck_assert_uint_ge(s2.bfree + 8, s1.bfree); /* about what it was before the write */
	/* without a limit the counts still add up */
	fs_set_space(fs, 0);
	ck_assert_int_eq(fs_statfs(fs, &s2), 0);
	ck_assert_uint_eq(s2.files - s2.ffree, 19);
	ck_assert_uint_le(s2.bfree, s2.blocks);
}
END_TEST

/*
 * rm -rf of many entries on a full store: created while there was room,
 * then the limit put at what is used, every unlink and rmdir succeeds (a
 * delete never grows the store) and leaves room.  FUSEFS_UNIT_ENTRIES
 * sets how many (20,000 by default; make test runs the "million" case
 * with a million, CK_RUN_CASE=million).
 */
START_TEST(full_store_empties)
{
	const char *env = getenv("FUSEFS_UNIT_ENTRIES");
	long n = env ? strtol(env, NULL, 10) : 20000, per = 1000, topped = 0;
	struct fs_attr a;
	int ret = 0;
	char name[64];
	uint64_t before = fs_used_bytes(fs);

	ck_assert_int_gt(n, 0);
	for (long d = 0; d * per < n; d++) {
		uint64_t dir;

		snprintf(name, sizeof(name), "d%ld", d);
		dir = mkdir_(&ROOT, FS_ROOT_INO, name, 0755);
		for (long i = d * per; i < MIN(n, (d + 1) * per); i++) {
			snprintf(name, sizeof(name), "entry-with-a-name-of-some-length-%ld", i);
			ck_assert_int_eq(OP(fs_mknod(fs, &ROOT, dir, N(name), S_IFREG | 0644, 0, &a)), 0);
		}
	}
	/* full: the limit where it stands, and the pages left topped up until ENOSPC */
	fs_set_space(fs, fs_used_bytes(fs));
	for (; topped < 100000 && ret == 0; topped++) {
		snprintf(name, sizeof(name), "topping-%ld", topped);
		ret = OP(fs_mknod(fs, &ROOT, FS_ROOT_INO, N(name), S_IFREG | 0644, 0, &a));
	}
	ck_assert_int_eq(ret, -ENOSPC);
	topped--; /* (the last was refused) */
	for (long d = 0; d * per < n; d++) {
		uint64_t dir;

		snprintf(name, sizeof(name), "d%ld", d);
		dir = lookup(FS_ROOT_INO, name);
		for (long i = d * per; i < MIN(n, (d + 1) * per); i++) {
			snprintf(name, sizeof(name), "entry-with-a-name-of-some-length-%ld", i);
			ck_assert_int_eq(OP(fs_unlink(fs, &ROOT, dir, N(name))), 0);
		}
		snprintf(name, sizeof(name), "d%ld", d);
		ck_assert_int_eq(OP(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N(name))), 0);
	}
	for (long i = 0; i < topped; i++) {
		snprintf(name, sizeof(name), "topping-%ld", i);
		ck_assert_int_eq(OP(fs_unlink(fs, &ROOT, FS_ROOT_INO, N(name))), 0);
	}
	ck_assert_int_eq(OP(fs_mkdir(fs, &ROOT, FS_ROOT_INO, N("more"), 0755, &a)), 0);
	ck_assert_uint_le(fs_used_bytes(fs), MAX(before, (uint64_t)1) * 4);
	fs_set_space(fs, 0);
	integrity_ok();
}
END_TEST

/*
 * A small space limit: writes and creates fail with ENOSPC, rolled back
 * they leave the store as it was, and removing a file makes room.
 */
START_TEST(enospc_and_room_again)
{
	static uint8_t b[64 * 1024], got[64 * 1024];
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "big", 0644);
	uint64_t off = 0, limit = fs_used_bytes(fs) + (1u << 20);
	int ret = 0, i;

	fs_set_space(fs, limit);
	memset(b, 0x3c, sizeof(b));
	for (i = 0; i < 100 && (ret = OP(fs_write(fs, &ROOT, f, off, 0, b, sizeof(b), &a))) == 0; i++)
		off += sizeof(b);
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_uint_gt(off, 0);
	ck_assert_uint_le(fs_used_bytes(fs), limit);
	/* the failed write left nothing: size and data as before */
	a = getattr(f);
	ck_assert_uint_eq(a.size, off);
	ck_assert_uint_le(a.blocks * 512, off);
	read_(f, off - sizeof(got), got, sizeof(got));
	ck_assert_int_eq(memcmp(got, b, sizeof(got)), 0);
	integrity_ok();
	/* so do a big xattr and an allocation, leaving nothing */
	ck_assert_int_eq(OP(fs_setxattr(fs, &ROOT, f, "user.big", b, sizeof(b) - 1, 0)), -ENOSPC);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.big", NULL, 0), -ENODATA);
	ck_assert_int_eq(OP(fs_fallocate(fs, &ROOT, f, 0, off, 1u << 20, false)), -ENOSPC);
	ck_assert_uint_eq(getattr(f).size, off);
	ck_assert_int_eq(OP(fs_fallocate(fs, &ROOT, f, FALLOC_FL_KEEP_SIZE, off, 1u << 20, false)), -ENOSPC);
	ck_assert_uint_le(getattr(f).blocks * 512, off);
	/* creating files fails too, sooner or later, and leaves no half file */
	{
		uint64_t used = inodes_used();
		char name[48];
		int n = 0;

		for (i = 0; i < 5000; i++) {
			snprintf(name, sizeof(name), "small-file-with-a-long-name-%d", i);
			ret = OP(fs_mknod(fs, &ROOT, FS_ROOT_INO, N(name), S_IFREG | 0644, 0, &a));
			if (ret < 0)
				break;
			n++;
		}
		ck_assert_int_eq(ret, -ENOSPC);
		ck_assert_uint_eq(lookup(FS_ROOT_INO, name), 0);
		ck_assert_uint_eq(inodes_used(), used + (uint64_t)n);
		ret = OP(fs_mkdir(fs, &ROOT, FS_ROOT_INO, N(name), 0755, &a));
		ck_assert(ret == 0 || ret == -ENOSPC);
	}
	integrity_ok();
	/* removing the big file makes room */
	ck_assert_int_eq(OP(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("big"))), 0);
	f = mkfile(&ROOT, FS_ROOT_INO, "again", 0644);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(OP(fs_write(fs, &ROOT, f, (uint64_t)i * sizeof(b), 0, b, sizeof(b), &a)),
				 0);
	read_(f, 3 * sizeof(b), got, sizeof(got));
	ck_assert_int_eq(memcmp(got, b, sizeof(got)), 0);
	integrity_ok();
}
END_TEST

/* ================================================================ */
/* extended attributes                                              */
/* ================================================================ */

START_TEST(xattr_set_get_list_remove)
{
	char buf[256];
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.a", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "user.a", "one", 3, 0), 0);
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "user.b", "", 0, 0), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.a", buf, sizeof(buf)), 3);
	ck_assert_int_eq(memcmp(buf, "one", 3), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.b", NULL, 0), 0);
	/* (reading the empty value into a buffer: see bug_getxattr_empty_value) */
	/* size 0 asks for the length; too small a buffer is ERANGE */
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.a", NULL, 0), 3);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.a", buf, 2), -ERANGE);
	/* replace */
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "user.a", "three", 5, 0), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.a", buf, sizeof(buf)), 5);
	ck_assert_int_eq(memcmp(buf, "three", 5), 0);
	/* XATTR_CREATE on an existing name, XATTR_REPLACE on a missing one */
	ck_assert_int_eq(OP(fs_setxattr(fs, &ROOT, f, "user.a", "x", 1, XATTR_CREATE)), -EEXIST);
	ck_assert_int_eq(OP(fs_setxattr(fs, &ROOT, f, "user.c", "x", 1, XATTR_REPLACE)), -ENODATA);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.a", buf, sizeof(buf)), 5);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.c", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "user.c", "x", 1, XATTR_CREATE), 0);
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "user.c", "yy", 2, XATTR_REPLACE), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.c", buf, sizeof(buf)), 2);
	/* list: every name, NUL-terminated */
	{
		const size_t want = sizeof("user.a") + sizeof("user.b") + sizeof("user.c");
		int n = fs_listxattr(fs, &ROOT, f, buf, sizeof(buf));
		bool seen[3] = { false, false, false };

		ck_assert_int_eq(n, (int)want);
		for (int i = 0; i < n; i += (int)strlen(buf + i) + 1) {
			ck_assert_uint_eq(strlen(buf + i), 6);
			ck_assert_int_eq(strncmp(buf + i, "user.", 5), 0);
			ck_assert(buf[i + 5] >= 'a' && buf[i + 5] <= 'c');
			ck_assert(!seen[buf[i + 5] - 'a']);
			seen[buf[i + 5] - 'a'] = true;
		}
		ck_assert_int_eq(fs_listxattr(fs, &ROOT, f, NULL, 0), (int)want);
		ck_assert_int_eq(fs_listxattr(fs, &ROOT, f, buf, want - 1), -ERANGE);
	}
	/* remove */
	ck_assert_int_eq(fs_removexattr(fs, &ROOT, f, "user.a"), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.a", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(OP(fs_removexattr(fs, &ROOT, f, "user.a")), -ENODATA);
	ck_assert_int_eq(fs_listxattr(fs, &ROOT, f, NULL, 0),
			 (int)(sizeof("user.b") + sizeof("user.c")));
	/* on a directory too; a missing inode is ENOENT */
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, FS_ROOT_INO, "user.d", "v", 1, 0), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, FS_ROOT_INO, "user.d", buf, sizeof(buf)), 1);
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, 9999, "user.d", "v", 1, 0), -ENOENT);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, 9999, "user.d", buf, sizeof(buf)), -ENOENT);
	ck_assert_int_eq(fs_listxattr(fs, &ROOT, 9999, buf, sizeof(buf)), -ENOENT);
	ck_assert_int_eq(fs_removexattr(fs, &ROOT, 9999, "user.d"), -ENOENT);
	/* they go with the inode: a new file never shows them */
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f")), 0);
	f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	ck_assert_int_eq(fs_listxattr(fs, &ROOT, f, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(xattr_limits)
{
	char name[FS_XATTR_NAME_MAX + 2];
	uint8_t *v = malloc(FS_XATTR_SIZE_MAX + 1), *out = malloc(FS_XATTR_SIZE_MAX);
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	ck_assert(v != NULL && out != NULL);
	memset(v, 0x42, FS_XATTR_SIZE_MAX + 1);
	/* values: 64 KiB works, one more byte is E2BIG */
	ck_assert_int_eq(OP(fs_setxattr(fs, &ROOT, f, "user.big", v, FS_XATTR_SIZE_MAX + 1, 0)),
			 -E2BIG);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.big", NULL, 0), -ENODATA);
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "user.big", v, FS_XATTR_SIZE_MAX, 0), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.big", NULL, 0), FS_XATTR_SIZE_MAX);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.big", out, FS_XATTR_SIZE_MAX),
			 FS_XATTR_SIZE_MAX);
	ck_assert_int_eq(memcmp(out, v, FS_XATTR_SIZE_MAX), 0);
	/* names: 255 bytes work, 256 are ERANGE */
	memcpy(name, "user.", 5);
	memset(name + 5, 'x', sizeof(name) - 5);
	name[FS_XATTR_NAME_MAX] = '\0';
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, name, "v", 1, 0), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, name, out, 10), 1);
	name[FS_XATTR_NAME_MAX] = 'x';
	name[FS_XATTR_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(OP(fs_setxattr(fs, &ROOT, f, name, "v", 1, 0)), -ERANGE);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, name, out, 10), -ERANGE);
	ck_assert_int_eq(fs_removexattr(fs, &ROOT, f, name), -ERANGE);
	free(v);
	free(out);
}
END_TEST

START_TEST(xattr_permissions)
{
	char buf[64];
	struct fs_attr a;
	uint64_t d = dir_for(&ALICE, "d", 0755);
	uint64_t f = mkfile(&ALICE, d, "f", 0644);
	uint64_t t = dir_for(&ALICE, "t", 01777);
	uint64_t s;

	ck_assert_int_eq(fs_symlink(fs, &ALICE, d, N("s"), N("t"), &a), 0);
	s = a.ino;
	ck_assert_int_eq(fs_setxattr(fs, &ALICE, f, "user.a", "v", 1, 0), 0);
	/* user.*: reading needs read permission, changing needs write permission */
	ck_assert_int_eq(fs_getxattr(fs, &BOB, f, "user.a", buf, sizeof(buf)), 1);
	ck_assert_int_eq(fs_setxattr(fs, &BOB, f, "user.a", "w", 1, 0), -EACCES);
	ck_assert_int_eq(fs_removexattr(fs, &BOB, f, "user.a"), -EACCES);
	chmod_(f, 0600);
	ck_assert_int_eq(fs_getxattr(fs, &BOB, f, "user.a", buf, sizeof(buf)), -EACCES);
	ck_assert_int_eq(fs_getxattr(fs, &ALICE, f, "user.a", buf, sizeof(buf)), 1);
	/* user.* on a symlink: none to read, none may be set */
	ck_assert_int_eq(fs_setxattr(fs, &ALICE, s, "user.a", "v", 1, 0), -EPERM);
	ck_assert_int_eq(fs_getxattr(fs, &ALICE, s, "user.a", buf, sizeof(buf)), -ENODATA);
	/* a sticky directory's user.* is its owner's */
	ck_assert_int_eq(fs_setxattr(fs, &BOB, t, "user.a", "v", 1, 0), -EPERM);
	ck_assert_int_eq(fs_setxattr(fs, &ALICE, t, "user.a", "v", 1, 0), 0);
	/* trusted.*: root only, and hidden from others */
	ck_assert_int_eq(fs_setxattr(fs, &ALICE, f, "trusted.t", "v", 1, 0), -EPERM);
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "trusted.t", "v", 1, 0), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ALICE, f, "trusted.t", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "trusted.t", buf, sizeof(buf)), 1);
	ck_assert_int_eq(fs_listxattr(fs, &ALICE, f, buf, sizeof(buf)), (int)sizeof("user.a"));
	ck_assert_int_eq(fs_listxattr(fs, &ROOT, f, buf, sizeof(buf)),
			 (int)(sizeof("user.a") + sizeof("trusted.t")));
	/* security.*: anyone reads, the owner changes */
	ck_assert_int_eq(fs_setxattr(fs, &BOB, f, "security.s", "v", 1, 0), -EPERM);
	ck_assert_int_eq(fs_setxattr(fs, &ALICE, f, "security.s", "v", 1, 0), 0);
	ck_assert_int_eq(fs_getxattr(fs, &BOB, f, "security.s", buf, sizeof(buf)), 1);
	/* no other namespace */
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "bogus.x", "v", 1, 0), -EOPNOTSUPP);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "bogus.x", buf, sizeof(buf)), -EOPNOTSUPP);
}
END_TEST

/* ================================================================ */
/* readdir                                                          */
/* ================================================================ */

START_TEST(readdir_dots_first_and_plus)
{
	static struct dents d, p;
	uint64_t dir = mkdir_(&ROOT, FS_ROOT_INO, "dir", 0755);
	uint64_t f = mkfile(&ROOT, dir, "f", 0644);
	uint64_t s = mkdir_(&ROOT, dir, "s", 0700);
	struct fs_attr a;

	ck_assert_int_eq(fs_symlink(fs, &ROOT, dir, N("l"), N("target"), &a), 0);
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(fs_readdir(fs, &ROOT, dir, 0, false, collect, &d), 0);
	ck_assert_uint_eq(d.count, 5);
	ck_assert_str_eq(d.e[0].name, ".");
	ck_assert_uint_eq(d.e[0].ino, dir);
	ck_assert_uint_eq(d.e[0].mode & S_IFMT, S_IFDIR);
	ck_assert_str_eq(d.e[1].name, "..");
	ck_assert_uint_eq(d.e[1].ino, FS_ROOT_INO);
	ck_assert_uint_eq(d.e[1].mode & S_IFMT, S_IFDIR);
	for (uint32_t i = 0; i < d.count; i++) {
		ck_assert(!d.e[i].has_attr);
		if (i > 0)
			ck_assert_uint_gt(d.e[i].cookie, d.e[i - 1].cookie);
	}
	ck_assert_uint_eq(dent_find(&d, "f")->ino, f);
	ck_assert_uint_eq(dent_find(&d, "f")->mode & S_IFMT, S_IFREG);
	ck_assert_uint_eq(dent_find(&d, "s")->ino, s);
	ck_assert_uint_eq(dent_find(&d, "s")->mode & S_IFMT, S_IFDIR);
	ck_assert_uint_eq(dent_find(&d, "l")->mode & S_IFMT, S_IFLNK);
	/* plus: each entry's attributes, as getattr has them */
	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(fs_readdir(fs, &ROOT, dir, 0, true, collect, &p), 0);
	ck_assert_uint_eq(p.count, d.count);
	for (uint32_t i = 0; i < p.count; i++) {
		struct fs_attr g = getattr(p.e[i].ino);

		ck_assert(p.e[i].has_attr);
		ck_assert_str_eq(p.e[i].name, d.e[i].name);
		ck_assert_uint_eq(p.e[i].cookie, d.e[i].cookie);
		ck_assert_uint_eq(p.e[i].attr.ino, p.e[i].ino);
		ck_assert_uint_eq(p.e[i].attr.mode, g.mode);
		ck_assert_uint_eq(p.e[i].attr.nlink, g.nlink);
		ck_assert_uint_eq(p.e[i].attr.size, g.size);
		ck_assert_uint_eq(p.e[i].attr.gen, g.gen);
	}
	/* the root's ".." is the root */
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(fs_readdir(fs, &ROOT, FS_ROOT_INO, 0, true, collect, &d), 0);
	ck_assert_str_eq(d.e[1].name, "..");
	ck_assert_uint_eq(d.e[1].ino, FS_ROOT_INO);
	/* reading needs read permission */
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(fs_readdir(fs, &ALICE, s, 0, false, collect, &d), -EACCES);
	ck_assert_int_eq(fs_readdir(fs, &ALICE, dir, 0, false, collect, &d), 0);
}
END_TEST

START_TEST(readdir_resumes_after_a_refused_entry)
{
	static struct dents all, part;
	char name[16];
	uint64_t cookie = 0;
	uint32_t n = 0;

	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "e%02d", i);
		mkfile(&ROOT, FS_ROOT_INO, name, 0644);
	}
	memset(&all, 0, sizeof(all));
	ok_eq(fs_readdir(fs, &ROOT, FS_ROOT_INO, 0, false, collect, &all), 0);
	ok_eq(all.count, 22);
	/* one entry per call: the refused entry comes first next time */
	for (int calls = 0; calls < 100; calls++) {
		memset(&part, 0, sizeof(part));
		part.limit = 1;
		ok_eq(fs_readdir(fs, &ROOT, FS_ROOT_INO, cookie, calls % 2 == 1, collect,
					    &part), 0);
		if (part.count == 0)
			break;
		ok(n < all.count);
		ok(strcmp(part.e[0].name, all.e[n].name) == 0);
		ok_eq(part.e[0].cookie, all.e[n].cookie);
		cookie = part.e[0].cookie;
		n++;
	}
	ok_eq(n, all.count);
}
END_TEST

/*
 * Cookies stay valid while the directory changes between calls: an entry
 * that exists throughout is returned exactly once, and no entry twice.
 */
START_TEST(readdir_cookies_stable_under_change)
{
	static struct dents page;
	enum { START = 150, PAGE = 7 };
	static bool present[1000], removed[1000], seen[1000];
	uint64_t st = 99, cookie = 0;
	uint32_t next = START;
	char name[16];

	memset(present, 0, sizeof(present));
	memset(removed, 0, sizeof(removed));
	memset(seen, 0, sizeof(seen));
	for (uint32_t i = 0; i < START; i++) {
		snprintf(name, sizeof(name), "n%u", i);
		mkfile(&ROOT, FS_ROOT_INO, name, 0644);
		present[i] = true;
	}
	for (int calls = 0; calls < 500; calls++) {
		memset(&page, 0, sizeof(page));
		page.limit = PAGE;
		ok_eq(fs_readdir(fs, &ROOT, FS_ROOT_INO, cookie, calls % 3 == 0, collect,
					    &page), 0);
		for (uint32_t i = 0; i < page.count; i++) {
			unsigned k;

			ok(page.e[i].cookie > cookie);
			cookie = page.e[i].cookie;
			if (page.e[i].name[0] == '.')
				continue;
			ok_eq(sscanf(page.e[i].name, "n%u", &k), 1);
			ok(k < ARRAY_SIZE(seen));
			ok_msg(!seen[k], "%s returned twice", page.e[i].name);
			ok_msg(present[k], "%s returned after it was removed", page.e[i].name);
			seen[k] = true;
		}
		if (page.count < PAGE)
			break;
		/* between calls: remove two random entries, add three, rename one */
		for (int j = 0; j < 2; j++) {
			uint32_t k = (uint32_t)prng_below(&st, next);

			if (!present[k])
				continue;
			snprintf(name, sizeof(name), "n%u", k);
			ok_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N(name)), 0);
			present[k] = false;
			removed[k] = true;
		}
		for (int j = 0; j < 3 && next < ARRAY_SIZE(present); j++) {
			snprintf(name, sizeof(name), "n%u", next);
			mkfile(&ROOT, FS_ROOT_INO, name, 0644);
			present[next++] = true;
		}
	}
	for (uint32_t k = 0; k < START; k++)
		ok_msg(removed[k] || seen[k], "n%u existed throughout but was not returned", k);
}
END_TEST

/* ================================================================ */
/* the namespace under random operations                            */
/* ================================================================ */

/*
 * A walk of the whole tree from the root checks the invariants every
 * namespace operation must keep, and sums the tree up so a failed (rolled
 * back) operation can be shown to have changed nothing:
 *   - every directory is reached by exactly one name; its "." is itself
 *     and its ".." the directory holding it;
 *   - a directory's nlink is 2 plus its subdirectories;
 *   - anything else has as many links as names;
 *   - statfs counts exactly the inodes reached (nothing here is open).
 */
#define NS_NODES 256

struct ns_node {
	uint64_t ino;
	uint64_t parent; /* directories: the one holding it */
	uint32_t mode;
	uint32_t names;  /* entries naming it */
	uint32_t subdirs;
};

struct ns_tree {
	struct ns_node n[NS_NODES];
	uint32_t count;
	uint64_t hash;   /* of every (dir, name, ino) and every inode's nlink */
};

static struct ns_node *ns_node(struct ns_tree *t, uint64_t ino)
{
	for (uint32_t i = 0; i < t->count; i++)
		if (t->n[i].ino == ino)
			return &t->n[i];
	ok(t->count < NS_NODES);
	t->n[t->count] = (struct ns_node){ .ino = ino };
	return &t->n[t->count++];
}

static uint64_t ns_mix(uint64_t h, uint64_t v)
{
	uint64_t s = h ^ v;

	return prng_next(&s);
}

static void ns_walk(struct ns_tree *t)
{
	static struct dents d;
	uint64_t queue[NS_NODES];
	uint32_t head = 0, tail = 0;

	t->count = 0;
	t->hash = 0;
	*ns_node(t, FS_ROOT_INO) = (struct ns_node){ .ino = FS_ROOT_INO, .parent = FS_ROOT_INO,
						     .mode = S_IFDIR, .names = 1 };
	queue[tail++] = FS_ROOT_INO;
	while (head < tail) {
		uint64_t dir = queue[head++];

		d.count = 0;
		d.limit = 0;
		ok_eq(fs_readdir(fs, &ROOT, dir, 0, true, collect, &d), 0);
		ok(d.count < DENT_MAX);
		ok(strcmp(d.e[0].name, ".") == 0);
		ok_eq(d.e[0].ino, dir);
		ok(strcmp(d.e[1].name, "..") == 0);
		ok_eq(d.e[1].ino, ns_node(t, dir)->parent);
		for (uint32_t i = 2; i < d.count; i++) {
			struct ns_node *n = ns_node(t, d.e[i].ino);

			ok_eq(d.e[i].mode & S_IFMT, d.e[i].attr.mode & S_IFMT);
			n->mode = d.e[i].attr.mode;
			n->names++;
			t->hash = ns_mix(t->hash, dir);
			t->hash = ns_mix(t->hash, d.e[i].ino);
			for (const char *c = d.e[i].name; *c; c++)
				t->hash = ns_mix(t->hash, (uint8_t)*c);
			if (S_ISDIR(n->mode)) {
				ok_msg(n->names == 1, "directory %" PRIu64 " has two names", n->ino);
				n->parent = dir;
				ns_node(t, dir)->subdirs++;
				ok(tail < NS_NODES);
				queue[tail++] = n->ino;
			}
		}
	}
	for (uint32_t i = 0; i < t->count; i++) {
		struct ns_node *n = &t->n[i];
		struct fs_attr a = getattr(n->ino);

		if (S_ISDIR(n->mode))
			ok_msg(a.nlink == 2 + n->subdirs, "dir %" PRIu64 ": nlink %u, %u subdirs",
				      n->ino, a.nlink, n->subdirs);
		else
			ok_msg(a.nlink == n->names, "%" PRIu64 ": nlink %u, %u names", n->ino,
				      a.nlink, n->names);
		t->hash = ns_mix(t->hash, a.nlink);
	}
	ok_eq(inodes_used(), t->count);
}

/* The inode name names in dir per the walk, or NULL. */
static const struct ns_node *ns_lookup(struct ns_tree *t, uint64_t dir, const char *name)
{
	uint64_t ino = lookup(dir, name);

	return ino == 0 ? NULL : ns_node(t, ino);
}

/* Has directory ino no entries (every name in these tests is one of the pool's)? */
static bool ns_empty(uint64_t ino, const char *const *pool, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (lookup(ino, pool[i]) != 0)
			return false;
	return true;
}

/* Is ino dir or below it? */
static bool ns_under(struct ns_tree *t, uint64_t ino, uint64_t dir)
{
	for (int depth = 0; depth < NS_NODES; depth++) {
		if (ino == dir)
			return true;
		if (ino == FS_ROOT_INO)
			return false;
		ino = ns_node(t, ino)->parent;
	}
	ck_abort_msg("a loop in the parents");
	return false;
}

/* The errors an operation may give (several rules may apply at once: any of them). */
struct ns_expect {
	int err[6];
	uint32_t count;
};

static void ns_may(struct ns_expect *e, bool when, int err)
{
	if (when && e->count < ARRAY_SIZE(e->err))
		e->err[e->count++] = err;
}

static bool ns_allowed(const struct ns_expect *e, int ret)
{
	if (e->count == 0)
		return ret == 0;
	for (uint32_t i = 0; i < e->count; i++)
		if (ret == e->err[i])
			return true;
	return false;
}

START_TEST(random_namespace_ops_keep_invariants)
{
	static const char *const pool[] = { "a", "b", "c", "d" };
	static struct ns_tree before, after;
	uint64_t seed = getenv("FUSEFS_SEED") ? strtoull(getenv("FUSEFS_SEED"), NULL, 0) : 4242;
	uint64_t st = seed;
	int done[8] = { 0 };

	ns_walk(&before);
	for (int op = 0; op < 1500; op++) {
		struct ns_expect e = { .count = 0 };
		/* weights that keep the tree small and its directories often empty */
		static const uint8_t kinds[] = { 0, 1, 2, 2, 3, 4, 4, 5, 5, 5, 6, 7, 7 };
		uint64_t kind = kinds[prng_below(&st, ARRAY_SIZE(kinds))];
		/* two places: a directory of the tree and a name from the pool */
		uint64_t d1 = before.n[prng_below(&st, before.count)].ino;
		uint64_t d2 = before.n[prng_below(&st, before.count)].ino;
		const char *n1 = pool[prng_below(&st, ARRAY_SIZE(pool))];
		const char *n2 = pool[prng_below(&st, ARRAY_SIZE(pool))];
		const struct ns_node *s, *t;
		uint32_t flags = 0;
		struct fs_attr a;
		int ret;

		if (!S_ISDIR(ns_node(&before, d1)->mode))
			d1 = FS_ROOT_INO;
		if (!S_ISDIR(ns_node(&before, d2)->mode))
			d2 = FS_ROOT_INO;
		s = ns_lookup(&before, d1, n1);
		t = ns_lookup(&before, d2, n2);
		tick();
		switch (kind) {
		case 0:
		case 1:
			ns_may(&e, s != NULL, -EEXIST);
			ret = OP(fs_mknod(fs, &ROOT, d1, N(n1), S_IFREG | 0644, 0, &a));
			break;
		case 2:
			ns_may(&e, s != NULL, -EEXIST);
			ret = OP(fs_mkdir(fs, &ROOT, d1, N(n1), 0755, &a));
			break;
		case 3: {
			/* a link to some file of the tree, or to the root (EPERM) */
			const struct ns_node *x = &before.n[prng_below(&st, before.count)];

			ns_may(&e, S_ISDIR(x->mode), -EPERM);
			ns_may(&e, t != NULL, -EEXIST);
			ret = OP(fs_link(fs, &ROOT, x->ino, d2, N(n2), &a));
			break;
		}
		case 4:
			ns_may(&e, s == NULL, -ENOENT);
			ns_may(&e, s != NULL && S_ISDIR(s->mode), -EISDIR);
			ret = OP(fs_unlink(fs, &ROOT, d1, N(n1)));
			break;
		case 5:
			ns_may(&e, s == NULL, -ENOENT);
			ns_may(&e, s != NULL && !S_ISDIR(s->mode), -ENOTDIR);
			ns_may(&e, s != NULL && S_ISDIR(s->mode) &&
				   !ns_empty(s->ino, pool, ARRAY_SIZE(pool)), -ENOTEMPTY);
			ret = OP(fs_rmdir(fs, &ROOT, d1, N(n1)));
			break;
		default:
			flags = kind == 6 ? 0 : prng_below(&st, 2) ? FS_RENAME_NOREPLACE
								     : FS_RENAME_EXCHANGE;
			ns_may(&e, s == NULL, -ENOENT);
			if (s == NULL)
				goto rename;
			ns_may(&e, (flags & FS_RENAME_NOREPLACE) && t != NULL, -EEXIST);
			ns_may(&e, (flags & FS_RENAME_EXCHANGE) && t == NULL, -ENOENT);
			if (t != NULL && t->ino == s->ino)
				goto rename; /* the same file: nothing to do, or EEXIST */
			ns_may(&e, S_ISDIR(s->mode) && ns_under(&before, d2, s->ino), -EINVAL);
			if (t != NULL && (flags & FS_RENAME_EXCHANGE)) {
				ns_may(&e, S_ISDIR(t->mode) && ns_under(&before, d1, t->ino), -EINVAL);
			} else if (t != NULL) {
				bool empty = S_ISDIR(t->mode) && ns_empty(t->ino, pool, ARRAY_SIZE(pool));

				ns_may(&e, S_ISDIR(s->mode) && !S_ISDIR(t->mode), -ENOTDIR);
				ns_may(&e, !S_ISDIR(s->mode) && S_ISDIR(t->mode), -EISDIR);
				ns_may(&e, S_ISDIR(t->mode) && !empty, -ENOTEMPTY);
				/* the target is an ancestor of the source: not empty, or EINVAL */
				ns_may(&e, S_ISDIR(t->mode) && ns_under(&before, d1, t->ino), -EINVAL);
			}
rename:
			ret = OP(fs_rename(fs, &ROOT, d1, N(n1), d2, N(n2), flags));
			break;
		}
		ok_msg(ns_allowed(&e, ret),
			      "seed %" PRIu64 " op %d: kind %" PRIu64 " %" PRIu64 "/%s %" PRIu64
			      "/%s flags %u: %d (%u errors allowed, first %d)", seed, op, kind, d1, n1,
			      d2, n2, flags, ret, e.count, e.count ? e.err[0] : 0);
		ns_walk(&after);
		if (ret < 0) {
			ok_msg(after.hash == before.hash && after.count == before.count,
				      "seed %" PRIu64 " op %d: failed with %d but changed the tree", seed,
				      op, ret);
		} else if (kind >= 6) {
			/* what a rename must have done */
			uint64_t sn = lookup(d1, n1), tn = lookup(d2, n2);

			if (t != NULL && t->ino == s->ino) {
				ok_eq(sn, s->ino);
				ok_eq(tn, s->ino);
			} else if (flags & FS_RENAME_EXCHANGE) {
				ok_eq(sn, t->ino);
				ok_eq(tn, s->ino);
			} else {
				ok_eq(sn, 0);
				ok_eq(tn, s->ino);
			}
		} else if (kind == 4 || kind == 5) {
			ok_eq(lookup(d1, n1), 0);
		} else {
			ok(lookup(kind == 3 ? d2 : d1, kind == 3 ? n2 : n1) != 0);
		}
		done[kind] += ret == 0;
		before = after;
	}
	/* every kind of operation succeeded now and then */
	for (int k = 0; k < 8; k++)
		ok_msg(done[k] >= 3, "seed %" PRIu64 ": kind %d succeeded only %d times", seed, k,
		       done[k]);
}
END_TEST

/* ================================================================ */
/* orphans                                                          */
/* ================================================================ */

START_TEST(orphan_kept_while_open)
{
	uint8_t b[4];
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t used;

	write_(f, 0, "live", 4);
	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "user.x", "v", 1, 0), 0);
	used = inodes_used();
	set_open(f);
	tick();
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("f")), 0);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "f"), 0);
	/* still there for who holds it */
	a = getattr(f);
	ck_assert_uint_eq(a.nlink, 0);
	ck_assert_time_eq(a.ctime, clock_now);
	read_(f, 0, b, 4);
	ck_assert_int_eq(memcmp(b, "live", 4), 0);
	ck_assert_int_eq(fs_write(fs, &ROOT, f, 4, 0, "more", 4, &a), 0);
	ck_assert_uint_eq(a.size, 8);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.x", b, sizeof(b)), 1);
	ck_assert_uint_eq(inodes_used(), used);
	/* it cannot be linked back */
	ck_assert_int_eq(OP(fs_link(fs, &ROOT, f, FS_ROOT_INO, N("back"), &a)), -ENOENT);
	/* released while something still holds it: stays */
	ck_assert_int_eq(fs_orphan_release(fs, f), 0);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, f, &a), 0);
	/* the last holder lets go: gone, with everything it had */
	set_closed(f);
	ck_assert_int_eq(fs_orphan_release(fs, f), 0);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, f, &a), -ENOENT);
	ck_assert_uint_eq(inodes_used(), used - 1);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.x", b, sizeof(b)), -ENOENT);
	/* release of what is no orphan does nothing */
	ck_assert_int_eq(fs_orphan_release(fs, FS_ROOT_INO), 0);
	ck_assert_int_eq(fs_orphan_release(fs, f), 0);
	/* unlinked while not open: gone at once */
	f = mkfile(&ROOT, FS_ROOT_INO, "g", 0644);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("g")), 0);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, f, &a), -ENOENT);
	/* an open file with another link is no orphan */
	f = mkfile(&ROOT, FS_ROOT_INO, "h", 0644);
	ck_assert_int_eq(fs_link(fs, &ROOT, f, FS_ROOT_INO, N("h2"), &a), 0);
	set_open(f);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("h")), 0);
	set_closed(f);
	ck_assert_int_eq(fs_orphan_release(fs, f), 0);
	ck_assert_uint_eq(getattr(f).nlink, 1);
}
END_TEST

START_TEST(orphan_by_rename_over)
{
	uint8_t b[3];
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);
	uint64_t g = mkfile(&ROOT, FS_ROOT_INO, "g", 0644);

	write_(g, 0, "old", 3);
	set_open(g);
	ck_assert_int_eq(fs_rename(fs, &ROOT, FS_ROOT_INO, N("f"), FS_ROOT_INO, N("g"), 0), 0);
	ck_assert_uint_eq(lookup(FS_ROOT_INO, "g"), f);
	a = getattr(g);
	ck_assert_uint_eq(a.nlink, 0);
	read_(g, 0, b, 3);
	ck_assert_int_eq(memcmp(b, "old", 3), 0);
	set_closed(g);
	ck_assert_int_eq(fs_orphan_release(fs, g), 0);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, g, &a), -ENOENT);
}
END_TEST

START_TEST(orphans_purge_removes_unheld)
{
	struct fs_attr a;
	uint64_t ino[5];
	char name[8];
	uint64_t used = inodes_used();

	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "o%d", i);
		ino[i] = mkfile(&ROOT, FS_ROOT_INO, name, 0644);
		set_open(ino[i]);
		ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N(name)), 0);
	}
	ck_assert_uint_eq(inodes_used(), used + 5);
	/* all held: nothing goes */
	ck_assert_int_eq(fs_orphans_purge(fs), 0);
	ck_assert_uint_eq(inodes_used(), used + 5);
	/* a new server: nothing is open any more */
	open_count = 0;
	ck_assert_int_eq(fs_orphans_purge(fs), 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(fs_getattr(fs, &ROOT, ino[i], &a), -ENOENT);
	ck_assert_uint_eq(inodes_used(), used);
	ck_assert_int_eq(fs_orphans_purge(fs), 0);
}
END_TEST

/* ================================================================ */
/* results of recent requests                                       */
/* ================================================================ */

START_TEST(replies_table)
{
	uint8_t buf[64];
	uint32_t status = 0;
	size_t len = 0;

	ck_assert_int_eq(fs_reply_get(fs, 7, 1, &status, buf, sizeof(buf), &len), -ENOENT);
	ck_assert_int_eq(fs_reply_put(fs, 7, 1, 0, "first", 5), 0);
	ck_assert_int_eq(fs_reply_put(fs, 7, 2, (uint32_t)ENOENT, NULL, 0), 0);
	ck_assert_int_eq(fs_reply_put(fs, 7, 3, 0, "third", 5), 0);
	ck_assert_int_eq(fs_reply_put(fs, 8, 1, 0, "other", 5), 0);
	ck_assert_int_eq(fs_reply_get(fs, 7, 1, &status, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(status, 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(memcmp(buf, "first", 5), 0);
	ck_assert_int_eq(fs_reply_get(fs, 7, 2, &status, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(status, ENOENT);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(fs_reply_get(fs, 8, 1, &status, buf, sizeof(buf), &len), 0);
	ck_assert_int_eq(memcmp(buf, "other", 5), 0);
	/* too small a buffer: ERANGE, and the length it needs */
	len = 0;
	ck_assert_int_eq(fs_reply_get(fs, 7, 3, &status, buf, 2, &len), -ERANGE);
	ck_assert_uint_eq(len, 5);
	/* a retried put of the same request replaces the result */
	ck_assert_int_eq(fs_reply_put(fs, 8, 1, 3, "again", 5), 0);
	ck_assert_int_eq(fs_reply_get(fs, 8, 1, &status, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(status, 3);
	ck_assert_int_eq(memcmp(buf, "again", 5), 0);
	/* trim: everything below oldest goes, oldest itself stays */
	ck_assert_int_eq(fs_reply_trim(fs, 7, 3), 0);
	ck_assert_int_eq(fs_reply_get(fs, 7, 1, &status, buf, sizeof(buf), &len), -ENOENT);
	ck_assert_int_eq(fs_reply_get(fs, 7, 2, &status, buf, sizeof(buf), &len), -ENOENT);
	ck_assert_int_eq(fs_reply_get(fs, 7, 3, &status, buf, sizeof(buf), &len), 0);
	ck_assert_int_eq(memcmp(buf, "third", 5), 0);
	ck_assert_int_eq(fs_reply_get(fs, 8, 1, &status, buf, sizeof(buf), &len), 0);
	/* large numbers are numbers like any other */
	ck_assert_int_eq(fs_reply_put(fs, UINT64_MAX - 1, UINT64_MAX - 2, 5, "x", 1), 0);
	ck_assert_int_eq(fs_reply_get(fs, UINT64_MAX - 1, UINT64_MAX - 2, &status, buf, sizeof(buf),
				      &len), 0);
	ck_assert_uint_eq(status, 5);
	/* forget a client: all of its results, no one else's */
	ck_assert_int_eq(fs_reply_forget_client(fs, 7), 0);
	ck_assert_int_eq(fs_reply_get(fs, 7, 3, &status, buf, sizeof(buf), &len), -ENOENT);
	ck_assert_int_eq(fs_reply_get(fs, 8, 1, &status, buf, sizeof(buf), &len), 0);
	/* a put inside an operation that then fails is rolled back with it */
	sql("SAVEPOINT op");
	ck_assert_int_eq(fs_reply_put(fs, 9, 1, 0, "x", 1), 0);
	op_end(-EIO);
	ck_assert_int_eq(fs_reply_get(fs, 9, 1, &status, buf, sizeof(buf), &len), -ENOENT);
}
END_TEST

/* ================================================================ */
/* bugs these tests found, fixed since                              */
/* ================================================================ */

/*
 * create(2) without O_EXCL on a name that is a directory: open(2) with
 * O_CREAT says EISDIR.  The lead's fs_create opens the directory.
 */
START_TEST(bug_create_over_existing_dir)
{
	struct fs_attr a;

	mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);
	ck_assert_int_eq(fs_create(fs, &ROOT, FS_ROOT_INO, N("d"), 0644, O_CREAT | O_RDONLY, &a),
			 -EISDIR);
}
END_TEST

/*
 * create without O_EXCL of an existing file in a directory the caller may
 * not write: nothing needs creating, so it is an open (open(2) with
 * O_CREAT on an existing file needs no write permission on the directory).
 */
START_TEST(bug_create_existing_in_readonly_dir)
{
	struct fs_attr a;
	uint64_t d = dir_for(&ALICE, "d", 0755);
	uint64_t f = mkfile(&ALICE, d, "f", 0666);

	ck_assert_int_eq(fs_create(fs, &BOB, d, N("f"), 0644, O_CREAT | O_RDWR, &a), 0);
	ck_assert_uint_eq(a.ino, f);
}
END_TEST

/*
 * fs_orphans_purge: "delete every orphan nothing holds open".  With an
 * open orphan of a lower number than an unheld one, the unheld one stays.
 */
START_TEST(bug_purge_stops_at_first_open_orphan)
{
	struct fs_attr a;
	uint64_t held = mkfile(&ROOT, FS_ROOT_INO, "held", 0644);
	uint64_t free_ = mkfile(&ROOT, FS_ROOT_INO, "free", 0644);

	set_open(held);
	set_open(free_);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("held")), 0);
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N("free")), 0);
	set_closed(free_);
	ck_assert_int_eq(fs_orphans_purge(fs), 1);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, free_, &a), -ENOENT);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, held, &a), 0);
}
END_TEST

/*
 * POSIX open(): "If O_TRUNC is set and the file did previously exist,
 * upon successful completion, open() shall mark for update the last data
 * modification and last file status change timestamps" - also when it was
 * empty already (Linux does).
 */
START_TEST(bug_open_trunc_of_empty_file_times)
{
	struct fs_attr a;
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	tick();
	ck_assert_int_eq(fs_open(fs, &ROOT, f, O_WRONLY | O_TRUNC, &a), 0);
	ck_assert_time_eq(getattr(f).mtime, clock_now);
	ck_assert_time_eq(getattr(f).ctime, clock_now);
}
END_TEST

/*
 * chown(2) by someone who is not the owner is EPERM even when the new
 * owner or group equals the old one (Linux chown_ok/chgrp_ok); it must not
 * touch the file's ctime.
 */
START_TEST(bug_chown_to_same_ids_by_non_owner)
{
	struct fs_attr a;
	uint64_t f = mkfile(&ALICE, FS_ROOT_INO, "f", 0666);
	struct fs_setattr sa = { .valid = FS_SET_UID, .uid = ALICE.uid };

	tick();
	ck_assert_int_eq(OP(fs_setattr(fs, &BOB, f, &sa, &a)), -EPERM);
	sa = (struct fs_setattr){ .valid = FS_SET_GID, .gid = ALICE.gid };
	ck_assert_int_eq(OP(fs_setattr(fs, &BOB, f, &sa, &a)), -EPERM);
	ck_assert_int_lt(getattr(f).ctime.sec, clock_now.sec);
}
END_TEST

/*
 * POSIX rmdir(): when a process has the directory open, "the directory
 * shall not be removed until all references to the directory are closed"
 * (and no new entries may be created in it).  fs_rmdir deletes it at once.
 */
START_TEST(bug_rmdir_of_open_dir_deletes_it)
{
	struct fs_attr a;
	uint64_t d = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);

	set_open(d);
	ck_assert_int_eq(fs_rmdir(fs, &ROOT, FS_ROOT_INO, N("d")), 0);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, d, &a), 0);
	ck_assert_uint_eq(a.nlink, 0);
	ck_assert_int_eq(fs_mknod(fs, &ROOT, d, N("x"), S_IFREG | 0644, 0, &a), -ENOENT);
	set_closed(d);
	ck_assert_int_eq(fs_orphan_release(fs, d), 0);
	ck_assert_int_eq(fs_getattr(fs, &ROOT, d, &a), -ENOENT);
}
END_TEST

/*
 * An empty value read into a buffer: fs_getxattr passes the NULL that
 * sqlite3_column_blob returns for a zero-length blob to memcpy, which is
 * undefined behaviour (UBSan: "null pointer passed as argument 2").  Fails
 * only under SAN=1.
 */
START_TEST(bug_getxattr_empty_value)
{
	char buf[8];
	uint64_t f = mkfile(&ROOT, FS_ROOT_INO, "f", 0644);

	ck_assert_int_eq(fs_setxattr(fs, &ROOT, f, "user.e", "", 0, 0), 0);
	ck_assert_int_eq(fs_getxattr(fs, &ROOT, f, "user.e", buf, sizeof(buf)), 0);
}
END_TEST

/*
 * POSIX readdir(): "mark for update the last data access timestamp of the
 * directory each time the directory is actually read"; Linux does (with
 * relatime: when the atime is not after the mtime).  fs_readdir never does.
 */
START_TEST(bug_readdir_atime)
{
	static struct dents d;
	uint64_t dir = mkdir_(&ROOT, FS_ROOT_INO, "d", 0755);

	mkfile(&ROOT, dir, "f", 0644);
	tick();
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(fs_readdir(fs, &ROOT, dir, 0, false, collect, &d), 0);
	ck_assert_time_eq(getattr(dir).atime, clock_now);
}
END_TEST

/* The same for readlink() ("mark for update the last data access timestamp"). */
START_TEST(bug_readlink_atime)
{
	char buf[8];
	size_t len;
	struct fs_attr a;

	ck_assert_int_eq(fs_symlink(fs, &ROOT, FS_ROOT_INO, N("s"), N("t"), &a), 0);
	tick();
	ck_assert_int_eq(fs_readlink(fs, &ROOT, a.ino, buf, sizeof(buf), &len), 0);
	ck_assert_time_eq(getattr(a.ino).atime, clock_now);
}
END_TEST

/* unlink(".") is EISDIR on Linux (unlink(2)); fs_unlink says EINVAL. */
START_TEST(bug_unlink_dot_is_eisdir)
{
	ck_assert_int_eq(fs_unlink(fs, &ROOT, FS_ROOT_INO, N(".")), -EISDIR);
}
END_TEST

Suite *suite_fs(void)
{
	Suite *s = suite_create("fs");
	TCase *tc;

#define TC(name)                                                      \
	do {                                                          \
		tc = tcase_create(name);                              \
		tcase_add_checked_fixture(tc, setup, teardown);       \
		tcase_set_timeout(tc, 120);                           \
		suite_add_tcase(s, tc);                               \
	} while (0)

	TC("names");
	tcase_add_test(tc, format_makes_root);
	tcase_add_test(tc, format_takes_owner_and_mode);
	tcase_add_test(tc, attach_refuses_unformatted);
	tcase_add_test(tc, enoent_missing_names_and_parents);
	tcase_add_test(tc, enotdir_through_a_file);
	tcase_add_test(tc, eexist_every_creation);
	tcase_add_test(tc, enametoolong_256_but_255_works);
	tcase_add_test(tc, names_with_slash_or_empty_refused);
	tcase_add_test(tc, names_are_bytes);
	tcase_add_test(tc, mknod_every_type);
	tcase_add_test(tc, mknod_device_needs_root);
	tcase_add_test(tc, mkdir_and_rmdir_link_counts);
	tcase_add_test(tc, rmdir_rules);
	tcase_add_test(tc, symlink_and_readlink);
	tcase_add_test(tc, link_rules);
	tcase_add_test(tc, emlink_at_link_max);
	tcase_add_test(tc, inode_numbers_never_reused);

	TC("rename");
	tcase_add_test(tc, rename_moves_and_times);
	tcase_add_test(tc, rename_file_over_file);
	tcase_add_test(tc, rename_same_inode_is_noop);
	tcase_add_test(tc, rename_noreplace);
	tcase_add_test(tc, rename_exchange);
	tcase_add_test(tc, rename_exchange_dir_and_file_across_parents);
	tcase_add_test(tc, rename_dir_across_parents);
	tcase_add_test(tc, rename_errors);
	tcase_add_test(tc, rename_exchange_into_own_subtree);

	TC("permissions");
	tcase_add_test(tc, search_permission);
	tcase_add_test(tc, dir_write_permission);
	tcase_add_test(tc, open_permission);
	tcase_add_test(tc, rename_dir_across_needs_write_on_it);
	tcase_add_test(tc, permission_classes_are_exclusive);
	tcase_add_test(tc, root_bypass_but_exec_needs_a_bit);
	tcase_add_test(tc, chmod_chown_need_ownership);
	tcase_add_test(tc, utimes_permissions);
	tcase_add_test(tc, sticky_directory);
	tcase_add_test(tc, setgid_directory_inheritance);
	tcase_add_test(tc, write_clears_setuid_setgid);
	tcase_add_test(tc, writer_may_chmod_away_privileges);
	tcase_add_test(tc, chown_clears_setuid_setgid);
	tcase_add_test(tc, chmod_setgid_needs_the_group);
	tcase_add_test(tc, supplementary_groups);
	tcase_add_test(tc, truncate_rules);

	TC("times");
	tcase_add_test(tc, new_inode_times);
	tcase_add_test(tc, ctime_on_every_metadata_change);
	tcase_add_test(tc, dir_times_when_entries_change);
	tcase_add_test(tc, file_times_on_write_and_truncate);
	tcase_add_test(tc, atime_is_deferred);

	TC("files");
	tcase_add_test(tc, sparse_holes_read_zeros);
	tcase_add_test(tc, truncate_down_then_up_reads_zeros);
	tcase_add_test(tc, files_beyond_4gib);
	tcase_add_test(tc, efbig_past_max_file_size);
	tcase_add_test(tc, reads_across_chunk_boundaries);
	tcase_add_test(tc, random_ops_match_model);
	tcase_add_test(tc, random_ops_through_the_map);
	tcase_add_test(tc, st_blocks_follow_stored_bytes);
	tcase_add_test(tc, fallocate_modes);
	tcase_add_test(tc, big_data_dropped_at_once);
	tcase_add_test(tc, big_punches_and_cuts_through_the_map);
	tcase_add_test(tc, locks_match_model);
	tcase_add_test(tc, lock_waits_find_real_deadlocks);
	tcase_add_test(tc, inode_numbers_past_2_31);
	tcase_add_test(tc, create_and_open_flags);
	tcase_add_test(tc, statfs_counts);
	tcase_add_test(tc, enospc_and_room_again);

	/* make test runs this one alone with FUSEFS_UNIT_ENTRIES=1000000 */
	TC("million");
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, full_store_empties);

	TC("xattr");
	tcase_add_test(tc, xattr_set_get_list_remove);
	tcase_add_test(tc, xattr_limits);
	tcase_add_test(tc, xattr_permissions);

	TC("readdir");
	tcase_add_test(tc, readdir_dots_first_and_plus);
	tcase_add_test(tc, readdir_resumes_after_a_refused_entry);
	tcase_add_test(tc, readdir_cookies_stable_under_change);

	TC("namespace");
	tcase_add_test(tc, random_namespace_ops_keep_invariants);

	TC("orphans");
	tcase_add_test(tc, orphan_kept_while_open);
	tcase_add_test(tc, orphan_by_rename_over);
	tcase_add_test(tc, orphans_purge_removes_unheld);

	TC("replies");
	tcase_add_test(tc, replies_table);

	{
		TC("fixed_bugs");
		tcase_add_test(tc, bug_create_over_existing_dir);
		tcase_add_test(tc, bug_create_existing_in_readonly_dir);
		tcase_add_test(tc, bug_purge_stops_at_first_open_orphan);
		tcase_add_test(tc, bug_open_trunc_of_empty_file_times);
		tcase_add_test(tc, bug_chown_to_same_ids_by_non_owner);
		tcase_add_test(tc, bug_rmdir_of_open_dir_deletes_it);
		tcase_add_test(tc, bug_unlink_dot_is_eisdir);
		tcase_add_test(tc, bug_getxattr_empty_value);
		tcase_add_test(tc, bug_readdir_atime);
		tcase_add_test(tc, bug_readlink_atime);
	}
#undef TC
	return s;
}
