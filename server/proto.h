/*
 * proto.h - the protocol between mounts and the metadata server: frames
 * and the message catalogue, as little-endian structs whose every size and
 * offset the compiler checks (the quorum messages' style), plus bounded
 * blocking socket helpers.
 *
 * A frame on the wire:
 *
 *   struct srv_frame_hdr   16 bytes: magic "FSRP", type, payload length,
 *                          crc32c over the header's first 12 bytes and the payload
 *   payload                len bytes (at most SRV_FRAME_MAX_PAYLOAD)
 *   tag                    32 bytes of HMAC-SHA256 over header and payload,
 *                          only when the filesystem has authentication on,
 *                          keyed from the cluster secret ("fusefs rpc frame key v1")
 *
 * Decoders never read outside the bytes they are given and check every
 * length against the frame; reserved fields must be zero.
 */
#ifndef FUSEFS_SERVER_PROTO_H
#define FUSEFS_SERVER_PROTO_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockdev/format.h"
#include "common/common.h"
#include "common/hmac.h"

#define SRV_FRAME_MAGIC 0x50525346u /* "FSRP" */
/* The largest payload: a 1 MiB read or write plus its headers. */
#define SRV_FRAME_MAX_PAYLOAD ((1u << 20) + 4096)
#define SRV_PROTO_VERSION 2

struct srv_frame_hdr {
	struct le32 magic;
	struct le32 type;
	struct le32 len;
	struct le32 crc;
};

#define SRV_FRAME_HDR_BYTES ((uint32_t)sizeof(struct srv_frame_hdr))
static_assert(sizeof(struct srv_frame_hdr) == 16, "frame header");
static_assert(offsetof(struct srv_frame_hdr, crc) == 12, "crc last");

enum srv_msg_type {
	SRV_MSG_GREETING = 1,
	SRV_MSG_GREETING_REPLY = 2,
	SRV_MSG_REQUEST = 3,       /* struct rpc_req_hdr, the op's fixed part, two tails */
	SRV_MSG_REPLY = 4,         /* struct rpc_reply_hdr, then the op's reply */
};

enum srv_greeting_status {
	SRV_GREET_OK = 0,
	SRV_GREET_NOT_SERVING = 1, /* reachable, but not the leader with a lease */
	SRV_GREET_WRONG_FS = 2,
};

/* GREETING: a client introduces itself. */
struct srv_greeting_wire {
	struct le64 fsid;
	struct le64 client_rid;
	struct le32 version;
	struct le32 reserved;
};
static_assert(sizeof(struct srv_greeting_wire) == 24, "greeting");

/* GREETING_REPLY: who serves, in which term, and whether it serves now. */
struct srv_greeting_reply_wire {
	struct le64 fsid;
	struct le64 server_rid;
	struct le64 term;
	struct le32 slot;
	struct le32 status;
	struct le32 version;
	struct le32 reserved;
};
static_assert(sizeof(struct srv_greeting_reply_wire) == 40, "greeting reply");

/* Decoded (host order) views. */
struct srv_greeting {
	uint64_t fsid;
	uint64_t client_rid;
	uint32_t version;
};

struct srv_greeting_reply {
	uint64_t fsid;
	uint64_t server_rid;
	uint64_t term;
	uint32_t slot;
	uint32_t status;
	uint32_t version;
};

struct srv_codec {
	uint64_t fsid;
	bool auth;
	struct hmac_ctx mac;
};

int srv_codec_init(struct srv_codec *c, const struct bd_super *s);
void srv_codec_free(struct srv_codec *c);
/* Bytes a frame with len payload bytes takes on the wire. */
size_t srv_frame_bytes(const struct srv_codec *c, uint32_t len);
/*
 * From a frame's first SRV_FRAME_HDR_BYTES: the whole frame's length on the
 * wire, or -EBADMSG (bad magic, payload too long).  Lets a reader know how
 * much to read before the crc can be checked.
 */
ssize_t srv_frame_total(const struct srv_codec *c, const void *hdr);
/* Encode a frame into out; returns its length or -errno. */
ssize_t srv_frame_encode(struct srv_codec *c, uint32_t type, const void *payload, uint32_t len,
			 void *out, size_t outlen);
/*
 * Decode the frame at the start of buf: its total length, or -EAGAIN when
 * more bytes are needed, or -EBADMSG (bad magic, length, crc) / -EPERM
 * (bad tag).  Never reads outside buf.
 */
ssize_t srv_frame_decode(struct srv_codec *c, const void *buf, size_t len, uint32_t *type,
			 const uint8_t **payload, uint32_t *plen);

void srv_greeting_encode(const struct srv_greeting *g, struct srv_greeting_wire *out);
/* 0, or -EBADMSG when len is not the greeting's size or reserved is not zero. */
int srv_greeting_decode(const void *in, uint32_t len, struct srv_greeting *g);
void srv_greeting_reply_encode(const struct srv_greeting_reply *r,
			       struct srv_greeting_reply_wire *out);
int srv_greeting_reply_decode(const void *in, uint32_t len, struct srv_greeting_reply *r);

/*
 * ---- requests and replies ----
 *
 * A REQUEST's payload:
 *
 *   struct rpc_req_hdr          56 bytes: request id, client rid, the oldest
 *                               request id the client still waits for, op,
 *                               the caller's uid, gid, pid, group count, and
 *                               the lengths of the two tails
 *   groups                      ngroups x le32 (at most RPC_GROUPS_MAX)
 *   the op's fixed part         rpc_op_fixed_bytes(op) bytes (struct rpc_<op>)
 *   tail1, tail2                byte strings: names, a symlink target, data,
 *                               an xattr value, as the op says
 *
 * A REPLY's payload: struct rpc_reply_hdr (the request id and a status: 0
 * or a positive errno), then, when the status is 0, the op's reply.  The
 * decoder checks that the lengths add up exactly, that each tail is within
 * the op's limits, and that names hold no NUL or '/'.
 */

enum rpc_op {
	RPC_LOOKUP = 1,   /* rpc_ino + name            -> rpc_entry */
	RPC_GETATTR,      /* rpc_ino                   -> rpc_attr */
	RPC_SETATTR,      /* rpc_setattr               -> rpc_attr */
	RPC_MKNOD,        /* rpc_make + name           -> rpc_entry */
	RPC_MKDIR,        /* rpc_make + name           -> rpc_entry */
	RPC_UNLINK,       /* rpc_ino + name            -> - */
	RPC_RMDIR,        /* rpc_ino + name            -> - */
	RPC_SYMLINK,      /* rpc_ino + name + target   -> rpc_entry */
	RPC_READLINK,     /* rpc_ino                   -> target */
	RPC_RENAME,       /* rpc_rename + name + newname -> - */
	RPC_LINK,         /* rpc_link + newname        -> rpc_entry */
	RPC_OPEN,         /* rpc_open                  -> rpc_opened */
	RPC_CREATE,       /* rpc_make + name           -> rpc_entry, rpc_opened */
	RPC_READ,         /* rpc_io                    -> data */
	RPC_WRITE,        /* rpc_io + data             -> rpc_written */
	RPC_RELEASE,      /* rpc_release               -> - */
	RPC_FALLOCATE,    /* rpc_fallocate             -> - */
	RPC_READDIR,      /* rpc_readdir               -> rpc_dirent... */
	RPC_STATFS,       /* rpc_ino                   -> rpc_statfs */
	RPC_GETXATTR,     /* rpc_xattr + name          -> value, or rpc_xsize when size is 0 */
	RPC_SETXATTR,     /* rpc_xattr + name + value  -> - */
	RPC_LISTXATTR,    /* rpc_xattr                 -> names, or rpc_xsize when size is 0 */
	RPC_REMOVEXATTR,  /* rpc_xattr + name          -> - */
	RPC_ACCESS,       /* rpc_access                -> - */
	RPC_OP_END,       /* one past the last */
};

static inline bool rpc_op_valid(uint32_t op)
{
	return op >= RPC_LOOKUP && op < RPC_OP_END;
}

const char *rpc_op_name(uint32_t op);
/* Does the op change the filesystem (and so need a commit)? */
bool rpc_op_writes(uint32_t op);

#define RPC_GROUPS_MAX 32
#define RPC_NAME_MAX 255
#define RPC_PATH_MAX 4095        /* a symlink target */
#define RPC_XATTR_NAME_MAX 255
#define RPC_XATTR_SIZE_MAX 65536
#define RPC_IO_MAX (1u << 20)    /* the largest read or write */
#define RPC_READDIR_MAX (1u << 17)

struct rpc_req_hdr {
	struct le64 req_id;
	struct le64 client_rid;
	struct le64 oldest_req_id;  /* replies to requests below it may be forgotten */
	struct le32 op;
	struct le32 uid;
	struct le32 gid;
	struct le32 pid;
	struct le32 ngroups;
	struct le32 reserved;
	struct le32 tail1_len;
	struct le32 tail2_len;
};
static_assert(sizeof(struct rpc_req_hdr) == 56, "request header");

struct rpc_reply_hdr {
	struct le64 req_id;
	struct le32 status;   /* 0 or a positive errno */
	struct le32 op;
};
static_assert(sizeof(struct rpc_reply_hdr) == 16, "reply header");

/* An inode's attributes as the server sends them. */
struct rpc_attr {
	struct le64 ino;
	struct le64 gen;
	struct le64 size;
	struct le64 blocks;      /* 512-byte units */
	struct le64 rdev;
	struct le64 atime_sec;
	struct le64 mtime_sec;
	struct le64 ctime_sec;
	struct le32 atime_nsec;
	struct le32 mtime_nsec;
	struct le32 ctime_nsec;
	struct le32 mode;
	struct le32 uid;
	struct le32 gid;
	struct le32 nlink;
	struct le32 flags;
};
static_assert(sizeof(struct rpc_attr) == 96, "attr");

struct rpc_ino {
	struct le64 ino;
};

struct rpc_entry {
	struct rpc_attr attr;    /* attr.ino, attr.gen name the entry */
};

#define RPC_SET_MODE      0x001u
#define RPC_SET_UID       0x002u
#define RPC_SET_GID       0x004u
#define RPC_SET_SIZE      0x008u
#define RPC_SET_ATIME     0x010u
#define RPC_SET_MTIME     0x020u
#define RPC_SET_ATIME_NOW 0x040u
#define RPC_SET_MTIME_NOW 0x080u
#define RPC_SET_CTIME     0x100u
#define RPC_SET_KNOWN     0x1ffu

struct rpc_setattr {
	struct le64 ino;
	struct le64 size;
	struct le64 atime_sec;
	struct le64 mtime_sec;
	struct le64 ctime_sec;
	struct le32 atime_nsec;
	struct le32 mtime_nsec;
	struct le32 ctime_nsec;
	struct le32 valid;       /* RPC_SET_* */
	struct le32 mode;
	struct le32 uid;
	struct le32 gid;
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_setattr) == 72, "setattr");

/* MKNOD, MKDIR, CREATE */
struct rpc_make {
	struct le64 parent;
	struct le64 rdev;
	struct le32 mode;
	struct le32 umask;
	struct le32 flags;       /* CREATE: the open flags */
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_make) == 32, "make");

#define RPC_RENAME_NOREPLACE 0x1u
#define RPC_RENAME_EXCHANGE 0x2u

struct rpc_rename {
	struct le64 parent;
	struct le64 newparent;
	struct le32 flags;       /* RPC_RENAME_* */
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_rename) == 24, "rename");

struct rpc_link {
	struct le64 ino;
	struct le64 newparent;
};

struct rpc_open {
	struct le64 ino;
	struct le32 flags;       /* O_ACCMODE, O_TRUNC, O_APPEND as on Linux */
	struct le32 reserved;
};

struct rpc_opened {
	struct le64 fh;          /* the server's handle: holds an unlinked file alive */
};

struct rpc_io {
	struct le64 ino;
	struct le64 fh;
	struct le64 offset;
	struct le32 size;        /* READ: bytes wanted; WRITE: must equal tail1_len */
	struct le32 flags;
};
static_assert(sizeof(struct rpc_io) == 32, "io");

struct rpc_written {
	struct rpc_attr attr;
	struct le32 size;
	struct le32 reserved;
};

struct rpc_release {
	struct le64 ino;
	struct le64 fh;
};

struct rpc_fallocate {
	struct le64 ino;
	struct le64 offset;
	struct le64 length;
	struct le32 mode;        /* 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | KEEP_SIZE */
	struct le32 reserved;
};

struct rpc_readdir {
	struct le64 ino;
	struct le64 cookie;      /* entries after this one; 0: from the start */
	struct le32 size;        /* reply bytes at most */
	struct le32 plus;        /* 1: each entry carries its attributes */
};

/* One directory entry in a READDIR reply, then the name, padded to 8. */
struct rpc_dirent {
	struct le64 ino;
	struct le64 cookie;      /* pass it to continue after this entry */
	struct le32 mode;        /* the file type bits */
	struct le16 namelen;
	struct le16 has_attr;    /* an rpc_attr follows the padded name */
};
static_assert(sizeof(struct rpc_dirent) == 24, "dirent");

struct rpc_statfs {
	struct le64 blocks;
	struct le64 bfree;
	struct le64 bavail;
	struct le64 files;
	struct le64 ffree;
	struct le32 bsize;
	struct le32 namemax;
};
static_assert(sizeof(struct rpc_statfs) == 48, "statfs");

struct rpc_xattr {
	struct le64 ino;
	struct le32 size;        /* GETXATTR/LISTXATTR: buffer size, 0 asks the size */
	struct le32 flags;       /* SETXATTR: XATTR_CREATE, XATTR_REPLACE */
};

struct rpc_xsize {
	struct le32 size;
	struct le32 reserved;
};

struct rpc_access {
	struct le64 ino;
	struct le32 mask;
	struct le32 reserved;
};

/* A request as decoded: pointers into the frame's payload. */
struct rpc_req {
	uint64_t req_id;
	uint64_t client_rid;
	uint64_t oldest_req_id;
	uint32_t op;
	uint32_t uid, gid, pid;
	uint32_t ngroups;
	uint32_t groups[RPC_GROUPS_MAX];
	const void *fixed;        /* rpc_op_fixed_bytes(op) bytes */
	const uint8_t *tail1;
	uint32_t tail1_len;
	const uint8_t *tail2;
	uint32_t tail2_len;
};

/* The size of an op's fixed request part. */
uint32_t rpc_op_fixed_bytes(uint32_t op);
/* The size of an op's fixed reply part (what comes before a reply's tail). */
uint32_t rpc_op_reply_fixed_bytes(uint32_t op);

/*
 * Decode a REQUEST payload.  0, or -EBADMSG naming nothing: an unknown op,
 * lengths that do not add up, a tail beyond the op's limit, a name with a
 * NUL or '/', or reserved fields not zero.  Never reads outside payload.
 */
int rpc_req_decode(const void *payload, uint32_t len, struct rpc_req *out);
/*
 * Lay out a request's header into hdr (groups follow it in the frame: the
 * caller passes them as their own piece).  The op's fixed part and tails
 * come after.
 */
void rpc_req_hdr_encode(const struct rpc_req *r, struct rpc_req_hdr *hdr,
			struct le32 groups[RPC_GROUPS_MAX]);

/* A reply as decoded. */
struct rpc_reply {
	uint64_t req_id;
	uint32_t status;
	uint32_t op;
	const void *fixed;        /* rpc_op_reply_fixed_bytes(op), when status is 0 */
	const uint8_t *tail;
	uint32_t tail_len;
};

/* Decode a REPLY payload; -EBADMSG when it is short or the op unknown. */
int rpc_reply_decode(const void *payload, uint32_t len, struct rpc_reply *out);

/*
 * Encode a whole frame from pieces, without copying them: fills hdr (and
 * tag when authenticating) so that hdr, the pieces and tag, written in
 * that order, are the frame.  Returns the frame's length or -errno.
 */
struct iovec;
ssize_t srv_frame_seal(struct srv_codec *c, uint32_t type, const struct iovec *pieces, int n,
		       struct srv_frame_hdr *hdr, uint8_t tag[HMAC_SHA256_BYTES]);

/* The next READDIR entry at *pos of a reply tail: 0, 1 at the end, -EBADMSG. */
int rpc_dirent_next(const uint8_t *tail, uint32_t len, uint32_t *pos, struct rpc_dirent *d,
		    const char **name, const struct rpc_attr **attr);
/* Bytes an entry with a name of namelen takes in a READDIR reply. */
static inline uint32_t rpc_dirent_bytes(uint32_t namelen, bool attr)
{
	return (uint32_t)sizeof(struct rpc_dirent) + ((namelen + 7u) & ~7u) +
	       (attr ? (uint32_t)sizeof(struct rpc_attr) : 0u);
}

/*
 * Send or receive exactly len bytes on a non-blocking socket before
 * deadline (monotonic).  0, -ETIMEDOUT, -ECONNRESET or -errno.
 */
int srv_io_full(int fd, void *buf, size_t len, bool writing, mono_ns deadline);

#endif
