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
#define SRV_FRAME_MAX_PAYLOAD 4096
#define SRV_PROTO_VERSION 1

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
 * Send or receive exactly len bytes on a non-blocking socket before
 * deadline (monotonic).  0, -ETIMEDOUT, -ECONNRESET or -errno.
 */
int srv_io_full(int fd, void *buf, size_t len, bool writing, mono_ns deadline);

#endif
