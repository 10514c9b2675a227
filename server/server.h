/*
 * server.h - the public face of server/: the metadata server's lifecycle
 * in the elected leader's process, and the frame protocol it speaks.
 *
 * Lifecycle (one thread, driven by the quorum agent through
 * quorum_server_ops): START(term) reads every quorum block, fences each
 * earlier leader fence selection names, and reports FENCED; SERVE(term),
 * once FENCE is durable, listens on TCP at the slot's address; STOP(term)
 * closes everything and reports DOWN.  A fencing failure, a newer leader in
 * the blocks, or a listener that cannot bind also report DOWN, and the
 * leader resigns.  Clients are answered only while the leader holds its
 * lease (quorum_agent_may_serve).
 *
 * Frames: a 16-byte header (magic, type, payload length, crc32c over the
 * header's first 12 bytes and the payload), the payload, and, when the
 * filesystem has authentication on, a 32-byte HMAC-SHA256 tag over header
 * and payload, keyed from the cluster secret ("fusefs rpc frame key v1").
 */
#ifndef FUSEFS_SERVER_H
#define FUSEFS_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockdev/format.h"
#include "common/hmac.h"
#include "quorum/quorum.h"

#define SRV_FRAME_MAGIC 0x50525346u /* "FSRP" */
#define SRV_FRAME_HDR_BYTES 16
#define SRV_FRAME_MAX_PAYLOAD 4096
#define SRV_PROTO_VERSION 1

enum srv_msg_type {
	SRV_MSG_GREETING = 1,
	SRV_MSG_GREETING_REPLY = 2,
};

enum srv_greeting_status {
	SRV_GREET_OK = 0,
	SRV_GREET_NOT_SERVING = 1, /* reachable, but not the leader with a lease */
	SRV_GREET_WRONG_FS = 2,
};

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

/*
 * Send or receive exactly len bytes on a non-blocking socket before
 * deadline (monotonic).  0, -ETIMEDOUT, -ECONNRESET or -errno.
 */
int srv_io_full(int fd, void *buf, size_t len, bool writing, mono_ns deadline);

void srv_greeting_encode(const struct srv_greeting *g, uint8_t out[24]);
int srv_greeting_decode(const uint8_t *in, uint32_t len, struct srv_greeting *g);
void srv_greeting_reply_encode(const struct srv_greeting_reply *r, uint8_t out[40]);
int srv_greeting_reply_decode(const uint8_t *in, uint32_t len, struct srv_greeting_reply *r);

/* ---- lifecycle ---- */

struct server;

struct server_config {
	struct bd_dev *dev;
	const struct bd_super *super;
	int slot;
	uint64_t rid;
	const char *fence_cmd;     /* NULL: the local fencer */
	uint32_t fence_timeout_ms;
	struct quorum_holder self;
};

int server_create(const struct server_config *cfg, struct server **out);
struct quorum_server_ops server_ops(struct server *s);
void server_destroy(struct server *s);

#endif
