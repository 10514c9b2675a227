/*
 * ops.c - the FUSE low-level operations.  Until the metadata server serves
 * files, the filesystem is an empty root directory; its extended
 * attributes show the quorum (status_xattr.c).
 *
 * Every handler ends in exactly one reply; errors are positive errnos to
 * libfuse.
 */
#include "fuse/mount.h"

#include "fuse/status.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#define XATTR_MAX (64 * 1024)
#define ROOT_INO FUSE_ROOT_ID

static struct mount_ctx *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void root_attr(struct mount_ctx *fs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ROOT_INO;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = FUSEFS_BLOCK_SIZE;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mounted;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	root_attr(ctx_of(req), &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)name;
	fuse_reply_err(req, parent == ROOT_INO ? ENOENT : ENOTDIR);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const char *const names[] = { ".", ".." };
	char buf[512];
	size_t used = 0;
	struct stat st;

	(void)fi;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	root_attr(ctx_of(req), &st);
	for (off_t i = off; i < 2; i++) {
		size_t n = fuse_add_direntry(req, buf + used, MIN(size, sizeof(buf)) - used, names[i],
					     &st, i + 1);

		if (used + n > MIN(size, sizeof(buf)))
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = { .f_bsize = FUSEFS_BLOCK_SIZE, .f_frsize = FUSEFS_BLOCK_SIZE,
			      .f_namemax = 255 };

	(void)ino;
	fuse_reply_statfs(req, &sv);
}

static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)mask;
	fuse_reply_err(req, ino == ROOT_INO ? 0 : ENOENT);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = NULL;
	int n;

	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (size > 0 && (buf = malloc(size)) == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = status_xattr_get(ctx_of(req), fuse_req_ctx(req)->pid, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, -n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char buf[1024];
	size_t used;

	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	used = status_xattr_list(ctx_of(req), buf, sizeof(buf));
	if (size == 0)
		fuse_reply_xattr(req, used);
	else if (used > size || used > sizeof(buf))
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, used);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)flags;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_err(req, -status_xattr_set(ctx_of(req), fuse_req_ctx(req)->uid, name, value, size));
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)name;
	fuse_reply_err(req, ino == ROOT_INO ? EPERM : ENOENT);
}

const struct fuse_lowlevel_ops mount_fuse_ops = {
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.access = fs_access,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
};
