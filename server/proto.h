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
 *   payload                len bytes (at most SRV_FRAME_MAX_PAYLOAD, limits.h)
 *   tag                    32 bytes of HMAC-SHA256 over header and payload,
 *                          only when the filesystem has authentication on,
 *                          keyed from the cluster secret ("fusefs rpc frame key v1")
 *
 * Sessions.  The greeting and its reply each carry a random nonce, and
 * every later frame of the connection is tagged with a key of that
 * connection and direction alone (srv_codec_session: derived from the
 * frame key and both nonces) over its place in the stream (a count of the
 * frames before it that way) and its bytes.  A frame recorded on one
 * connection is refused on any other, and on its own one when replayed,
 * dropped or reordered.  A greeting itself can be replayed, but only opens
 * a connection whose frames the replayer cannot tag.
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
#include "quorum/holder.h"
#include "server/limits.h"

#define SRV_FRAME_MAGIC 0x50525346u /* "FSRP" */
#define SRV_PROTO_VERSION 6
#define SRV_NONCE_BYTES 16

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
	SRV_MSG_INVAL = 5,         /* server -> client: struct rpc_inval_hdr, items (coherence) */
	SRV_MSG_INVAL_ACK = 6,     /* client -> server: struct rpc_inval_ack, once they are dropped */
	SRV_MSG_HOLDS = 7,         /* client -> server: struct rpc_hold... it holds open (no reply) */
	SRV_MSG_BYE = 8,           /* client -> server: unmounting; forget it now (no payload) */
	SRV_MSG_ALIVE = 9,         /* client -> server: still here (no payload; SRV_ALIVE_MS) */
	SRV_MSG_LOCK_FREED = 10,   /* server -> client: struct rpc_lock_freed (its waiters ask now) */
};

/*
 * A mount says it is alive every SRV_ALIVE_MS while connected; a server
 * closes a connection it has heard nothing on for SRV_SILENT_MS (a mount
 * stopped or cut off, whose kernel still answers TCP), and the mount is
 * away from then: past the grace it is gone, and its locks go to others.
 */
#define SRV_ALIVE_MS 500
#define SRV_SILENT_MS 5000

/*
 * HOLDS: right after a greeting, a mount names the files it holds open
 * (each a handle it chose, the inode, the open flags), so a new server or
 * a new connection keeps them; several frames when they do not fit one.
 */
struct rpc_hold {
	struct le64 fh;
	struct le64 ino;
	struct le32 flags;
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_hold) == 24, "hold");
static_assert(RPC_HOLDS_PER_FRAME * sizeof(struct rpc_hold) <= SRV_FRAME_MAX_PAYLOAD,
	      "a full HOLDS frame fits");

enum srv_greeting_status {
	SRV_GREET_OK = 0,
	SRV_GREET_NOT_SERVING = 1, /* reachable, but not the leader with a lease */
	SRV_GREET_WRONG_FS = 2,
	SRV_GREET_GONE = 3,        /* this mount was away past its grace: what it held went */
};

/*
 * GREETING: a client introduces itself, with who it is (its process on
 * its host), so that a server can fence it if it vanishes holding locks.
 */
struct srv_greeting_wire {
	struct le64 fsid;
	struct le64 client_rid;
	struct le32 version;
	struct le32 reserved;
	uint8_t nonce[SRV_NONCE_BYTES]; /* the client's half of the session's key */
	struct le64 pid;
	struct le64 start_ticks;
	struct le64 pidns;
	uint8_t boot_id[FUSEFS_BOOT_ID_BYTES];
	char host[FUSEFS_HOSTNAME_BYTES];  /* NUL-terminated */
};
static_assert(sizeof(struct srv_greeting_wire) == 144, "greeting");
static_assert(offsetof(struct srv_greeting_wire, pid) == 40, "greeting pid");
static_assert(offsetof(struct srv_greeting_wire, host) == 80, "greeting host");

/* GREETING_REPLY: who serves, in which term, and whether it serves now. */
struct srv_greeting_reply_wire {
	struct le64 fsid;
	struct le64 server_rid;
	struct le64 term;
	struct le32 slot;
	struct le32 status;
	struct le32 version;
	struct le32 reserved;
	uint8_t nonce[SRV_NONCE_BYTES]; /* the server's half */
};
static_assert(sizeof(struct srv_greeting_reply_wire) == 56, "greeting reply");

/* Decoded (host order) views. */
struct srv_greeting {
	uint64_t fsid;
	uint64_t client_rid;
	uint32_t version;
	uint8_t nonce[SRV_NONCE_BYTES];
	struct quorum_holder who;
};

struct srv_greeting_reply {
	uint64_t fsid;
	uint64_t server_rid;
	uint64_t term;
	uint32_t slot;
	uint32_t status;
	uint32_t version;
	uint8_t nonce[SRV_NONCE_BYTES];
};

struct srv_codec {
	uint64_t fsid;
	bool auth;
	bool session;            /* one direction of one connection: frames counted */
	uint64_t seq;            /* the next frame's place in it */
	struct hmac_ctx mac;
};

int srv_codec_init(struct srv_codec *c, const struct bd_super *s);
void srv_codec_free(struct srv_codec *c);
/*
 * The codec of one direction of a greeted connection (to_server: the
 * client's frames), from the filesystem's codec and the two greetings'
 * nonces.  Without authentication it only counts.  0 or -errno.  A session
 * codec is used by one thread at a time, for every frame that way in order.
 */
int srv_codec_session(struct srv_codec *out, const struct srv_codec *fs, bool to_server,
		      const uint8_t client_nonce[SRV_NONCE_BYTES],
		      const uint8_t server_nonce[SRV_NONCE_BYTES]);
/* A fresh random nonce (OpenSSL's RAND_bytes).  0 or -EIO. */
int srv_nonce(uint8_t out[SRV_NONCE_BYTES]);
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
/*
 * 0, or -EBADMSG when len is not a greeting's size (an older version's, which
 * names nobody, is taken) or reserved is not zero.
 */
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
 *   the op's fixed part         its request struct (the op table below)
 *   tail1, tail2                byte strings: names, a symlink target, data,
 *                               an xattr value, as the op's row says
 *
 * A REPLY's payload: struct rpc_reply_hdr (the request id and a status: 0
 * or a positive errno), then, when the status is 0, the op's reply struct
 * and its reply tail.  The decoders check that the lengths add up
 * exactly, that each tail is within the op's limits, and that names hold
 * no NUL or '/'.
 *
 * Every struct is little-endian with its size and offsets checked here.
 */

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
static_assert(offsetof(struct rpc_req_hdr, op) == 24, "request header: op");
static_assert(offsetof(struct rpc_req_hdr, tail1_len) == 48, "request header: tails");

struct rpc_reply_hdr {
	struct le64 req_id;
	struct le32 status;   /* 0 or a positive errno */
	struct le32 op;
	/*
	 * How long the mount may cache what this reply says (attributes,
	 * entries, a negative entry, file data), counted from when it sent the
	 * request: the server tracks it and makes the mount drop it before any
	 * change is acknowledged (docs/coherence.md).  0: not at all.
	 */
	struct le32 valid_ms;
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_reply_hdr) == 24, "reply header");
static_assert(offsetof(struct rpc_reply_hdr, op) == 12, "reply header: op");
static_assert(offsetof(struct rpc_reply_hdr, valid_ms) == 16, "reply header: validity");

/*
 * INVAL: drop what the kernel may cache of these inodes' attributes and of
 * these names, then answer INVAL_ACK with the same seq.  Items follow the
 * header, each padded to 8 bytes.
 */
enum rpc_inval_kind {
	RPC_INVAL_INODE = 1,  /* ino's attributes (and so its data, at the next read) */
	RPC_INVAL_ENTRY = 2,  /* the name in directory ino (a positive or negative entry) */
};

struct rpc_inval_hdr {
	struct le64 seq;
	struct le32 count;
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_inval_hdr) == 16, "inval header");

struct rpc_inval_item {
	struct le64 ino;
	struct le16 kind;     /* enum rpc_inval_kind */
	struct le16 namelen;  /* RPC_INVAL_ENTRY: the name follows, padded to 8 */
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_inval_item) == 16, "inval item");

struct rpc_inval_ack {
	struct le64 seq;
};
static_assert(sizeof(struct rpc_inval_ack) == 8, "inval ack");

/* Bytes an item with a name of namelen takes. */
static inline uint32_t rpc_inval_item_bytes(uint32_t namelen)
{
	return (uint32_t)sizeof(struct rpc_inval_item) + ((namelen + 7u) & ~7u);
}

/* An item as decoded; name points into the frame. */
struct rpc_inval {
	uint32_t kind;
	uint64_t ino;
	const char *name;
	uint32_t namelen;
};

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
static_assert(offsetof(struct rpc_attr, atime_nsec) == 64, "attr: times");
static_assert(offsetof(struct rpc_attr, mode) == 76, "attr: mode");
static_assert(offsetof(struct rpc_attr, flags) == 92, "attr: flags last");

/* No fixed reply: the status says it all (or the reply is its tail alone). */
struct rpc_none {};
static_assert(sizeof(struct rpc_none) == 0, "none");

struct rpc_ino {
	struct le64 ino;
};
static_assert(sizeof(struct rpc_ino) == 8, "ino");

struct rpc_entry {
	struct rpc_attr attr;    /* attr.ino, attr.gen name the entry */
};
static_assert(sizeof(struct rpc_entry) == 96, "entry");

/* setattr's valid bits (the values of fs.h's FS_SET_*, checked there) */
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
	struct le64 fh;          /* ftruncate and friends: the handle it came through; 0: none */
};
static_assert(sizeof(struct rpc_setattr) == 80, "setattr");
static_assert(offsetof(struct rpc_setattr, atime_nsec) == 40, "setattr: nsecs");
static_assert(offsetof(struct rpc_setattr, valid) == 52, "setattr: valid");
static_assert(offsetof(struct rpc_setattr, fh) == 72, "setattr: fh last");

/* MKNOD, MKDIR, CREATE */
struct rpc_make {
	struct le64 parent;
	struct le64 rdev;
	struct le32 mode;
	struct le32 umask;       /* the caller's: the server applies it */
	struct le32 flags;       /* CREATE: the open flags */
	struct le32 reserved;
	struct le64 fh;          /* CREATE: the handle the mount chose for it (handles.h) */
};
static_assert(sizeof(struct rpc_make) == 40, "make");
static_assert(offsetof(struct rpc_make, fh) == 32, "make: fh");
static_assert(offsetof(struct rpc_make, mode) == 16, "make: mode");
static_assert(offsetof(struct rpc_make, flags) == 24, "make: flags");

/* rename's flags: Linux's RENAME_* values (fs.h's FS_RENAME_* are the same) */
#define RPC_RENAME_NOREPLACE 0x1u
#define RPC_RENAME_EXCHANGE 0x2u

struct rpc_rename {
	struct le64 parent;
	struct le64 newparent;
	struct le32 flags;       /* passed on as they came: the filesystem refuses unknown ones */
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_rename) == 24, "rename");
static_assert(offsetof(struct rpc_rename, flags) == 16, "rename: flags");

struct rpc_link {
	struct le64 ino;
	struct le64 newparent;
};
static_assert(sizeof(struct rpc_link) == 16, "link");
static_assert(offsetof(struct rpc_link, newparent) == 8, "link: newparent");

struct rpc_open {
	struct le64 ino;
	struct le32 flags;       /* O_ACCMODE, O_TRUNC, O_APPEND as on Linux */
	struct le32 reserved;
	struct le64 fh;          /* the handle the mount chose for it (handles.h) */
};
static_assert(sizeof(struct rpc_open) == 24, "open");
static_assert(offsetof(struct rpc_open, flags) == 8, "open: flags");
static_assert(offsetof(struct rpc_open, fh) == 16, "open: fh");

struct rpc_opened {
	struct le64 fh;          /* the handle (the one asked for): holds an unlinked file alive */
	struct le32 flags;       /* RPC_OPENED_*: set by the service as it releases the reply */
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_opened) == 16, "opened");
static_assert(offsetof(struct rpc_opened, flags) == 8, "opened: flags");

/*
 * The file's data did not change since this mount's kernel last started
 * caching it (docs/coherence.md): its cached pages may stay (keep_cache).
 */
#define RPC_OPENED_KEEP_CACHE 1u

/* CREATE's reply: the new entry and the handle it is open with. */
struct rpc_created {
	struct rpc_entry entry;
	struct rpc_opened opened;
};
static_assert(sizeof(struct rpc_created) == 112, "created");
static_assert(offsetof(struct rpc_created, opened) == 96, "created: the handle after the entry");

struct rpc_io {
	struct le64 ino;
	struct le64 fh;
	struct le64 offset;
	struct le32 size;        /* READ: bytes wanted; WRITE: must equal tail1_len */
	struct le32 flags;       /* WRITE: the open flags (O_APPEND: at the end of file) */
};
static_assert(sizeof(struct rpc_io) == 32, "io");
static_assert(offsetof(struct rpc_io, size) == 24, "io: size");

struct rpc_written {
	struct rpc_attr attr;
	struct le32 size;
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_written) == 104, "written");
static_assert(offsetof(struct rpc_written, size) == 96, "written: size");

struct rpc_release {
	struct le64 ino;
	struct le64 fh;
};
static_assert(sizeof(struct rpc_release) == 16, "release");
static_assert(offsetof(struct rpc_release, fh) == 8, "release: fh");

struct rpc_fallocate {
	struct le64 ino;
	struct le64 offset;
	struct le64 length;
	struct le32 mode;        /* 0, KEEP_SIZE, PUNCH_HOLE | KEEP_SIZE, ZERO_RANGE [| KEEP_SIZE] */
	struct le32 reserved;
	struct le64 fh;          /* the handle it came through */
};
static_assert(sizeof(struct rpc_fallocate) == 40, "fallocate");
static_assert(offsetof(struct rpc_fallocate, mode) == 24, "fallocate: mode");

struct rpc_readdir {
	struct le64 ino;
	struct le64 cookie;      /* entries after this one; 0: from the start */
	struct le32 size;        /* reply bytes at most */
	struct le32 plus;        /* 1: each entry carries its attributes */
};
static_assert(sizeof(struct rpc_readdir) == 24, "readdir");
static_assert(offsetof(struct rpc_readdir, size) == 16, "readdir: size");

/* One directory entry in a READDIR reply, then the name, padded to 8. */
struct rpc_dirent {
	struct le64 ino;
	struct le64 cookie;      /* pass it to continue after this entry */
	struct le32 mode;        /* the file type bits */
	struct le16 namelen;
	struct le16 has_attr;    /* an rpc_attr follows the padded name */
};
static_assert(sizeof(struct rpc_dirent) == 24, "dirent");
static_assert(offsetof(struct rpc_dirent, namelen) == 20, "dirent: namelen");

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
static_assert(offsetof(struct rpc_statfs, bsize) == 40, "statfs: bsize");

struct rpc_xattr {
	struct le64 ino;
	struct le32 size;        /* GETXATTR/LISTXATTR: buffer size, 0 asks the size */
	struct le32 flags;       /* SETXATTR: XATTR_CREATE, XATTR_REPLACE */
};
static_assert(sizeof(struct rpc_xattr) == 16, "xattr");
static_assert(offsetof(struct rpc_xattr, size) == 8, "xattr: size");

struct rpc_xsize {
	struct le32 size;
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_xsize) == 8, "xsize");

struct rpc_access {
	struct le64 ino;
	struct le32 mask;
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_access) == 16, "access");
static_assert(offsetof(struct rpc_access, mask) == 8, "access: mask");

/*
 * A file lock (GETLK asks, and is answered with the lock in the way or
 * type F_UNLCK; SETLK sets or, with F_UNLCK, removes).  The owner is the
 * kernel's lock owner on the mount that sends it; the range is inclusive.
 */
struct rpc_lock {
	struct le64 ino;
	struct le64 owner;
	struct le64 start;
	struct le64 end;          /* at most INT64_MAX: to the end of the file */
	struct le32 type;         /* F_RDLCK, F_WRLCK, F_UNLCK */
	struct le32 pid;          /* the process's on its mount; a reply's: 0 if on another mount */
	struct le32 flags;        /* RPC_LOCK_FLOCK: a flock lock, else fcntl */
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_lock) == 48, "lock");
static_assert(offsetof(struct rpc_lock, type) == 32, "lock: type");
static_assert(offsetof(struct rpc_lock, flags) == 40, "lock: flags");
#define RPC_LOCK_FLOCK 1u
/*
 * GETLK from a blocked F_SETLKW that keeps asking (at least every
 * RPC_LOCK_WAIT_ASK_MS): the server notes whom it waits for, and answers
 * EDEADLK when that wait closes a cycle.  With RPC_LOCK_WAIT_END too, the
 * wait is over (interrupted): the note goes.
 */
#define RPC_LOCK_WAITING 2u
#define RPC_LOCK_WAIT_END 4u
#define RPC_LOCK_FLAGS (RPC_LOCK_FLOCK | RPC_LOCK_WAITING | RPC_LOCK_WAIT_END)
#define RPC_LOCK_WAIT_ASK_MS 100

/*
 * LOCK_FREED: a lock on ino that a waiter of this mount waits for was let
 * go (committed): ask again now rather than at the next turn.  A hint: a
 * waiter that misses it still asks every RPC_LOCK_WAIT_ASK_MS.
 */
struct rpc_lock_freed {
	struct le64 ino;
};
static_assert(sizeof(struct rpc_lock_freed) == 8, "lock freed");

/* LSEEK: SEEK_DATA or SEEK_HOLE from offset; the reply's offset is where. */
struct rpc_lseek {
	struct le64 ino;
	struct le64 fh;
	struct le64 offset;
	struct le32 whence;
	struct le32 reserved;
};
static_assert(sizeof(struct rpc_lseek) == 32, "lseek");
static_assert(offsetof(struct rpc_lseek, whence) == 24, "lseek: whence");

/* COPY: copy_file_range done by the server (at most FS_COPY_MAX a call; reply: rpc_written). */
struct rpc_copy {
	struct le64 ino_in;
	struct le64 fh_in;
	struct le64 off_in;
	struct le64 ino_out;
	struct le64 fh_out;
	struct le64 off_out;
	struct le64 len;
};
static_assert(sizeof(struct rpc_copy) == 56, "copy");
static_assert(offsetof(struct rpc_copy, len) == 48, "copy: len");

/*
 * ---- the op table ----
 *
 * One row per op: the wire rules (proto.c), the executor's
 * classification, the reply budget and the replay set are all lookups in
 * it.  Adding an op is one row here (at the end: a row's place is its
 * number on the wire), one handler do_NAME in server/dispatch.c (the
 * compiler asks for it) and the FUSE handler in fuse/ops.c that calls it.
 * Two facts live elsewhere, each in one place, because they are about
 * what a reply means rather than how it travels: what the mount's kernel
 * may cache from a reply (coh_reply in server/coherence.c; an op not
 * named there grants nothing) and, for the two ops that take a handle
 * (OPEN, CREATE; tests/unit_proto.c keeps it to those), where the handle
 * is in the request (retake in server/dispatch.c, holds_note in
 * fuse/holds.c).
 *
 * Columns:
 *   request, reply  the fixed parts' structs (rpc_none: nothing)
 *   tail1, tail2    NONE, NAME (a file name), PATH (a symlink target),
 *                   DATA (write data; its length is rpc_io.size), XNAME,
 *                   XVALUE
 *   store           READS; WRITES (runs in the batch's transaction and
 *                   needs its commit); TRUNCS (an rpc_open that writes
 *                   only when its flags carry O_TRUNC)
 *   handle          NONE, TAKES or DROPS an open-file handle (the
 *                   open-like ops: their state belongs to a connection)
 *   replay          1: a resend of one that wrote is answered from the
 *                   store's replies table (only ops that may write and
 *                   have no reply tail; a handle it takes is named by the
 *                   request, so the kept answer names it too)
 *   reply tail      NONE; UPTO(max); ASKED(struct, field, max): the
 *                   request's le32 field asks for at most max bytes
 */
#define RPC_RTAIL_NONE 0, 0
#define RPC_RTAIL_UPTO(max) (max), 0
#define RPC_RTAIL_ASKED(st, field, max) (max), (uint32_t)offsetof(struct st, field) + 1

/* X(OP,      name,        request,       reply,       tail1, tail2,  store,  handle, replay, reply tail) */
#define RPC_OPS(X)                                                                                        \
	X(LOOKUP,      lookup,      rpc_ino,       rpc_entry,   NAME,  NONE,   READS,  NONE,  0, RPC_RTAIL_NONE) \
	X(GETATTR,     getattr,     rpc_ino,       rpc_attr,    NONE,  NONE,   READS,  NONE,  0, RPC_RTAIL_NONE) \
	X(SETATTR,     setattr,     rpc_setattr,   rpc_attr,    NONE,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(MKNOD,       mknod,       rpc_make,      rpc_entry,   NAME,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(MKDIR,       mkdir,       rpc_make,      rpc_entry,   NAME,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(UNLINK,      unlink,      rpc_ino,       rpc_none,    NAME,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(RMDIR,       rmdir,       rpc_ino,       rpc_none,    NAME,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(SYMLINK,     symlink,     rpc_ino,       rpc_entry,   NAME,  PATH,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(READLINK,    readlink,    rpc_ino,       rpc_none,    NONE,  NONE,   READS,  NONE,  0,                 \
	  RPC_RTAIL_UPTO(RPC_PATH_MAX))                                                                      \
	X(RENAME,      rename,      rpc_rename,    rpc_none,    NAME,  NAME,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(LINK,        link,        rpc_link,      rpc_entry,   NAME,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(OPEN,        open,        rpc_open,      rpc_opened,  NONE,  NONE,   TRUNCS, TAKES, 1, RPC_RTAIL_NONE) \
	X(CREATE,      create,      rpc_make,      rpc_created, NAME,  NONE,   WRITES, TAKES, 1, RPC_RTAIL_NONE) \
	X(READ,        read,        rpc_io,        rpc_none,    NONE,  NONE,   READS,  NONE,  0,                 \
	  RPC_RTAIL_ASKED(rpc_io, size, RPC_IO_MAX))                                                         \
	X(WRITE,       write,       rpc_io,        rpc_written, DATA,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(RELEASE,     release,     rpc_release,   rpc_none,    NONE,  NONE,   READS,  DROPS, 0, RPC_RTAIL_NONE) \
	X(FALLOCATE,   fallocate,   rpc_fallocate, rpc_none,    NONE,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(READDIR,     readdir,     rpc_readdir,   rpc_none,    NONE,  NONE,   READS,  NONE,  0,                 \
	  RPC_RTAIL_ASKED(rpc_readdir, size, RPC_READDIR_MAX))                                               \
	X(STATFS,      statfs,      rpc_ino,       rpc_statfs,  NONE,  NONE,   READS,  NONE,  0, RPC_RTAIL_NONE) \
	X(GETXATTR,    getxattr,    rpc_xattr,     rpc_xsize,   XNAME, NONE,   READS,  NONE,  0,                 \
	  RPC_RTAIL_ASKED(rpc_xattr, size, RPC_XATTR_SIZE_MAX))                                              \
	X(SETXATTR,    setxattr,    rpc_xattr,     rpc_none,    XNAME, XVALUE, WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(LISTXATTR,   listxattr,   rpc_xattr,     rpc_xsize,   NONE,  NONE,   READS,  NONE,  0,                 \
	  RPC_RTAIL_ASKED(rpc_xattr, size, RPC_XATTR_SIZE_MAX))                                              \
	X(REMOVEXATTR, removexattr, rpc_xattr,     rpc_none,    XNAME, NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(ACCESS,      access,      rpc_access,    rpc_none,    NONE,  NONE,   READS,  NONE,  0, RPC_RTAIL_NONE) \
	X(GETLK,       getlk,       rpc_lock,      rpc_lock,    NONE,  NONE,   READS,  NONE,  0, RPC_RTAIL_NONE) \
	X(SETLK,       setlk,       rpc_lock,      rpc_none,    NONE,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE) \
	X(LSEEK,       lseek,       rpc_lseek,     rpc_lseek,   NONE,  NONE,   READS,  NONE,  0, RPC_RTAIL_NONE) \
	X(COPY,        copy,        rpc_copy,      rpc_written, NONE,  NONE,   WRITES, NONE,  1, RPC_RTAIL_NONE)

enum rpc_op {
	RPC_OP_NONE = 0,
#define X(op, ...) RPC_##op,
	RPC_OPS(X)
#undef X
	RPC_OP_END, /* one past the last */
};

enum rpc_tail { RPC_TAIL_NONE, RPC_TAIL_NAME, RPC_TAIL_PATH, RPC_TAIL_DATA, RPC_TAIL_XNAME,
		RPC_TAIL_XVALUE };
enum rpc_store { RPC_STORE_READS, RPC_STORE_WRITES, RPC_STORE_TRUNCS };
enum rpc_handle { RPC_HANDLE_NONE, RPC_HANDLE_TAKES, RPC_HANDLE_DROPS };

/* A row of the table. */
struct rpc_op_info {
	const char *name;
	uint32_t fixed_bytes;        /* the request's fixed part */
	uint32_t reply_fixed_bytes;  /* the reply's */
	uint8_t tail1, tail2;        /* enum rpc_tail */
	uint8_t store;               /* enum rpc_store */
	uint8_t handle;              /* enum rpc_handle */
	bool replay;
	uint32_t reply_tail_max;     /* bytes of reply tail at most */
	uint32_t reply_tail_asked;   /* 1 + the offset of the le32 that asks for fewer; 0: none */
};

/* Every op's reply and request fixed parts, for buffers that hold any. */
union rpc_reply_fixed {
#define X(op, name, req, rep, ...) struct rep name;
	RPC_OPS(X)
#undef X
};
union rpc_req_fixed {
#define X(op, name, req, rep, ...) struct req name;
	RPC_OPS(X)
#undef X
};
static_assert(sizeof(struct rpc_req_hdr) + 4 * RPC_GROUPS_MAX + sizeof(union rpc_req_fixed) <=
	      SRV_FRAME_MAX_PAYLOAD - RPC_IO_MAX, "a largest write fits a frame");
static_assert(sizeof(struct rpc_reply_hdr) + sizeof(union rpc_reply_fixed) <=
	      SRV_FRAME_MAX_PAYLOAD - RPC_IO_MAX, "a largest read's reply fits a frame");

static inline bool rpc_op_valid(uint32_t op)
{
	return op > RPC_OP_NONE && op < RPC_OP_END;
}

/* The op's row, or NULL for an op that is not valid. */
const struct rpc_op_info *rpc_op_info(uint32_t op);
const char *rpc_op_name(uint32_t op);
/* The size of an op's fixed request part (0 for an unknown op). */
uint32_t rpc_op_fixed_bytes(uint32_t op);
/* The size of an op's fixed reply part (what comes before a reply's tail). */
uint32_t rpc_op_reply_fixed_bytes(uint32_t op);

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

/*
 * Is a request of op with this fixed part and these tails well formed?
 * 0, or what is wrong as the errno a caller would get for it:
 * -ENAMETOOLONG (a name or target too long), -ERANGE (an xattr name),
 * -E2BIG (an xattr value), -EFBIG (write data), -EINVAL (an empty or
 * malformed tail, an unknown op, data whose length is not its size).  The
 * client checks what it sends with it, the decoder what it takes.
 */
int rpc_req_check(uint32_t op, const void *fixed, const void *tail1, uint32_t tail1_len,
		  const void *tail2, uint32_t tail2_len);
/* Does the request change the store (and so run in a batch's transaction)? */
bool rpc_req_writes(const struct rpc_req *q);
/* The most reply tail the request may get (its op's limit, or less if it asked for less). */
uint32_t rpc_req_reply_tail_max(const struct rpc_req *q);
/* The most its whole reply frame may take on the wire (for the server's accounting). */
uint32_t rpc_req_reply_budget(const struct rpc_req *q);

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
	uint32_t valid_ms;
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

/*
 * The next item of an INVAL payload at *pos (start after the header): 0,
 * 1 at the end, -EBADMSG for a malformed one.  Never reads outside it.
 */
int rpc_inval_next(const uint8_t *payload, uint32_t len, uint32_t *pos, struct rpc_inval *out);

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
