/*
 * limits.h - every bound of the filesystem, the wire and the service, in
 * one place, with the compiler checking that they fit together: the wire
 * carries anything the filesystem accepts, a frame holds the largest
 * request and reply, and a connection's and the service's queues hold at
 * least the largest frame.
 *
 * Three families:
 *   FS_*    what the filesystem logic (fs.h) accepts: POSIX's limits here;
 *   RPC_*   what a request or reply may carry on the wire (proto.h); a
 *           decoder refuses more as a malformed frame, so each RPC_ bound
 *           equals its FS_ bound and the filesystem's own error
 *           (ENAMETOOLONG, ERANGE, E2BIG) is the one a caller sees;
 *   SVC_*   what the service (service.h) and the client queue.
 */
#ifndef FUSEFS_SERVER_LIMITS_H
#define FUSEFS_SERVER_LIMITS_H

#include <assert.h>
#include <stdint.h>

/* ---- the filesystem ---- */

#define FS_NAME_MAX 255              /* bytes in one name */
#define FS_SYMLINK_MAX 4095          /* bytes in a symlink's target */
#define FS_XATTR_NAME_MAX 255
#define FS_XATTR_SIZE_MAX 65536      /* bytes in one xattr value */
#define FS_XATTR_LIST_MAX 65536      /* bytes of one inode's names, NUL-terminated */
#define FS_LINK_MAX 65000            /* links to one inode */
#define FS_GROUPS_MAX 32             /* supplementary groups a request carries */
#define FS_MAX_FILE_BYTES ((uint64_t)1 << 44)  /* 16 TiB */
#define FS_MAX_INO ((uint64_t)1 << 62)         /* (the kernel's are 64-bit) */
#define FS_MAX_DID ((uint64_t)1 << 31)         /* chunk keys hold did << 32; reused */
/*
 * A deleted file with more data than this is released in the background,
 * at most FS_RELEASE_STEP_CHUNKS chunks (4 MiB) per commit, so no commit
 * outgrows the log region whatever the file's size (docs/store.md).
 */
#define FS_RELEASE_INLINE_BYTES ((uint64_t)4 << 20)
#define FS_RELEASE_STEP_CHUNKS 256u
/*
 * Extents in a file's map (chunk ranges, each with its data id): a big cut
 * or punch makes a hole in the map, up to two more extents.  With the map
 * full, a range is deleted in its own commit whatever its size.
 */
#define FS_MAX_EXTENTS 64u
#define FS_LOCKS_PER_INODE_MAX 4096u /* locks on one inode of one kind (ENOLCK past) */
#define FS_COPY_MAX ((uint64_t)1 << 20) /* bytes one copy_file_range call copies at most */
#define FS_ATIME_MAX 4096            /* deferred access times waiting for a commit */
#define FS_LOCK_WAITS_MAX 4096       /* lock waits the deadlock check remembers */
#define FS_HANDLES_PER_CONN_MAX (1u << 16)  /* open files one connection may hold */

/* ---- the wire ---- */

#define RPC_NAME_MAX FS_NAME_MAX
#define RPC_PATH_MAX FS_SYMLINK_MAX
#define RPC_XATTR_NAME_MAX FS_XATTR_NAME_MAX
#define RPC_XATTR_SIZE_MAX FS_XATTR_SIZE_MAX
#define RPC_GROUPS_MAX FS_GROUPS_MAX
#define RPC_IO_MAX (1u << 20)        /* the largest read or write */
#define RPC_READDIR_MAX (1u << 17)   /* the largest readdir reply */
#define RPC_HOLDS_PER_FRAME 4096     /* open files named in one HOLDS frame (proto.h checks it fits) */
/*
 * The largest payload: a 1 MiB write plus its request header, groups and
 * fixed part (proto.h checks the fixed parts fit in the 4 KiB), or a 1 MiB
 * read's reply with its headers.
 */
#define SRV_FRAME_MAX_PAYLOAD (RPC_IO_MAX + 4096u)

static_assert(RPC_XATTR_SIZE_MAX >= FS_XATTR_LIST_MAX, "a listxattr reply fits");
static_assert(RPC_READDIR_MAX < SRV_FRAME_MAX_PAYLOAD, "a readdir reply fits a frame");
static_assert(RPC_XATTR_SIZE_MAX + RPC_XATTR_NAME_MAX < SRV_FRAME_MAX_PAYLOAD,
	      "a setxattr fits a frame");
static_assert(RPC_PATH_MAX + RPC_NAME_MAX < SRV_FRAME_MAX_PAYLOAD, "a symlink fits a frame");

/* ---- the service and the client ---- */

#define SVC_CONN_INFLIGHT_MAX 256    /* requests of one connection with the executor */
#define SVC_CONN_BYTES_MAX (8u << 20)   /* one connection's queued requests and replies */
#define SVC_QUEUE_BYTES_MAX (32u << 20) /* requests queued over every connection */
#define SVC_CONNS_MAX 1024            /* open connections */
#define SVC_UNGREETED_PER_PEER 16     /* from one address, not greeted yet */
#define SVC_ACCEPT_ROUND 64           /* connections accepted in one round of the loop */
#define SVC_BATCH_MAX 512            /* requests in one batch */
#define SVC_REAP_MAX 256             /* orphans released, waiting for the next commit */
#define SVC_CHANGES_MAX 16           /* inodes and names one request changes (a rename: 6) */
#define RPC_CLIENT_INFLIGHT_MAX 256  /* calls one client has in flight */
#define SVC_GONE_PENDING_MAX 256     /* vanished mounts waiting for their GONE mark's commit */
#define SVC_GRANTS_MAX (1u << 20)    /* cache grants held (coherence.h); past it nothing is granted */
#define RPC_CLIENT_INVALS_MAX 1024   /* INVALs a client keeps queued (its receiver waits past it) */

static_assert(SVC_CONN_BYTES_MAX >= 2 * SRV_FRAME_MAX_PAYLOAD,
	      "a connection holds a largest request and its reply");
static_assert(SVC_QUEUE_BYTES_MAX >= 2 * SVC_CONN_BYTES_MAX,
	      "more than one connection fits the service's queue");
static_assert(SVC_BATCH_MAX >= SVC_CONN_INFLIGHT_MAX, "one connection's requests fit one batch");
static_assert(RPC_CLIENT_INFLIGHT_MAX <= SVC_CONN_INFLIGHT_MAX,
	      "a client's calls in flight never pause its connection on the count alone");

#endif
