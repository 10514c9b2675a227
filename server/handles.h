/*
 * handles.h - inside server/: the open files of every mount, as the
 * service knows them.
 *
 * A handle is named by its mount (rid) and a number the mount chose (fh),
 * so no two servers or connections can confuse them: a mount that comes
 * back to a new server (or a new connection) names the same handles again
 * (HOLDS), and a resent OPEN or CREATE names the handle it made the first
 * time.  While any handle holds an inode, its last unlink keeps it as an
 * orphan (fs.h).  Pure bookkeeping: no I/O.  One thread.
 */
#ifndef FUSEFS_SERVER_HANDLES_H
#define FUSEFS_SERVER_HANDLES_H

#include <stdbool.h>
#include <stdint.h>

struct handles;

int handles_create(struct handles **out);
void handles_destroy(struct handles *h);
/*
 * (rid, fh) opens ino.  1; 0 when it already does (a resend); -EMFILE
 * past FS_HANDLES_PER_CONN_MAX for the mount; -EBADF when (rid, fh)
 * already names another inode; -ENOMEM.
 */
int handles_open(struct handles *h, uint64_t rid, uint64_t fh, uint64_t ino, bool writer);
/*
 * (rid, fh) on ino is closed: 1 when it was ino's last handle, 0 when not
 * (or it named nothing: a handle of a mount gone and forgotten).
 */
int handles_close(struct handles *h, uint64_t rid, uint64_t fh, uint64_t ino);
/* Does (rid, fh) hold ino open for writing? */
bool handles_writes(const struct handles *h, uint64_t rid, uint64_t fh, uint64_t ino);
/* Is ino open anywhere? */
bool handles_ino_open(const struct handles *h, uint64_t ino);
/* Every handle of rid closed; last(arg, ino) for each inode whose last it was. */
void handles_close_rid(struct handles *h, uint64_t rid, void (*last)(void *arg, uint64_t ino),
		       void *arg);
/* Handles open now. */
uint64_t handles_count(const struct handles *h);
/* Handles rid holds open now. */
uint64_t handles_of(const struct handles *h, uint64_t rid);

#endif
