/*
 * client.h - the client side of the server protocol: find the server the
 * quorum blocks name and talk to it.  Every wait is bounded.
 */
#ifndef FUSEFS_FUSE_CLIENT_H
#define FUSEFS_FUSE_CLIENT_H

#include <stddef.h>

#include "fuse/mount.h"

/*
 * The server in use, per the quorum blocks, checked with a greeting:
 * "ADDR term T rid R serving", "... not serving (...)", "... unreachable: ..."
 * or "none".  Returns the text length or -errno.
 */
int fsclient_server_text(struct mount_ctx *fs, char *buf, size_t len);

#endif
