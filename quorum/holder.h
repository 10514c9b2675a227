/*
 * holder.h - the mount holding a quorum slot (process, host) and checks
 * on local processes, for taking a slot and for the local fencer.
 */
#ifndef FUSEFS_QUORUM_HOLDER_H
#define FUSEFS_QUORUM_HOLDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/format.h"

/* ---- the mount holding a slot, and local processes (holder.c) ---- */

struct quorum_holder {
	uint64_t pid;
	uint64_t start_ticks;  /* /proc/PID/stat field 22 */
	uint64_t pidns;        /* inode of /proc/self/ns/pid: pids mean this namespace's */
	uint8_t boot_id[FUSEFS_BOOT_ID_BYTES];
	char host[FUSEFS_HOSTNAME_BYTES];
};

/* Who we are: pid, process start time, boot id, host name.  0 or -errno. */
int quorum_holder_self(struct quorum_holder *h);
/* The start time of the live (not zombie) process pid: 0, or -ESRCH or -errno. */
int quorum_process_start(uint64_t pid, uint64_t *start_ticks);
/* Does the process pid exist (not a zombie) and did it start at start_ticks? */
bool quorum_process_matches(uint64_t pid, uint64_t start_ticks);
/* Is the block's holder a live process on this host? */
bool quorum_holder_alive_here(const struct bd_qblock *qb, const struct quorum_holder *self);
/*
 * Was the block's holder a process on this host that is no longer running?
 * (The kernel may still be tearing down its io_uring, and with it the
 * sockets it held, after the process itself is gone.)
 */
bool quorum_holder_gone_here(const struct bd_qblock *qb, const struct quorum_holder *self);
/*
 * May we take the slot whose block is qb: is its last mount not still
 * running on this host?  0, or -EBUSY with one line in why.
 */
int quorum_slot_check_free(const struct bd_qblock *qb, int slot, const struct quorum_holder *self,
			   char *why, size_t whylen);

#endif
