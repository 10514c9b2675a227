/*
 * status.h - the status xattrs a mount shows on its root
 * (user.fusefs.quorum.status and friends; see status_xattr.c).
 */
#ifndef FUSEFS_FUSE_STATUS_H
#define FUSEFS_FUSE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fuse/mount.h"

/* Is name one of the status xattrs? */
bool status_xattr_is_ours(const char *name);
/*
 * The value of the status xattr name for the caller pid: with size 0 its
 * length (the value is kept a second for the caller's following fetch, so
 * both see one value); else copied to out.  Length, -ENODATA (not ours),
 * -ERANGE (size too small) or -ENOMEM.
 */
int status_xattr_get(struct mount_ctx *m, pid_t pid, const char *name, char *out, size_t size);
/* The names, each NUL-terminated, into buf when they fit; the bytes they take. */
size_t status_xattr_list(struct mount_ctx *m, char *buf, size_t size);
/* setxattr of a status xattr by uid caller: 0, -EPERM, -ENOTSUP or -EINVAL. */
int status_xattr_set(struct mount_ctx *m, uid_t caller, const char *name, const char *value,
		     size_t size);

#endif
