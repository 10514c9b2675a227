/*
 * msg.h - quorum messages: the message as the election sees it, and the
 * wire codec (fixed 88-byte datagrams, crc32c, HMAC-SHA256 when the
 * filesystem has authentication on, per-sender sequence numbers).
 */
#ifndef FUSEFS_QUORUM_MSG_H
#define FUSEFS_QUORUM_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/format.h"
#include "common/hmac.h"

/* ---- messages ---- */

enum quorum_msg_type {
	QMSG_REQUEST_VOTE = 1,
	QMSG_VOTE,
	QMSG_HEARTBEAT,
	QMSG_RESIGNATION,
	QMSG_PRE_VOTE,
	QMSG_PRE_VOTE_REPLY,
	QMSG_HEARTBEAT_ACK,
	QMSG_TYPE_END, /* one past the last */
};

#define QMSG_F_GRANTED 0x01 /* PRE_VOTE_REPLY: the pre-vote is granted */

static inline bool quorum_msg_type_valid(unsigned type)
{
	return type >= QMSG_REQUEST_VOTE && type < QMSG_TYPE_END;
}

const char *quorum_msg_type_name(unsigned type);

/*
 * A message as the election sees it.  term is always the sender's current
 * term.  arg: PRE_VOTE and PRE_VOTE_REPLY carry the proposed term,
 * HEARTBEAT and HEARTBEAT_ACK the leader's monotonic send time (echoed).
 * timeout_ms: HEARTBEAT_ACK carries the follower's heartbeat timeout.
 */
struct quorum_msg {
	uint8_t type;
	uint8_t from;
	uint8_t to;     /* the destination slot: set by the sender per datagram */
	uint8_t flags;
	uint32_t timeout_ms;
	uint64_t term;
	uint64_t arg;
	uint64_t rid;   /* filled by the encoder / decoder */
	uint64_t seq;
};

/* Why the decoder rejected a message; each has a counter. */
#define QUORUM_INVALID_REASONS(X) \
	X(wrong_length)           \
	X(bad_version)            \
	X(bad_crc)                \
	X(bad_tag)                \
	X(other_fsid)             \
	X(unknown_type)           \
	X(bad_slot)               \
	X(from_self)              \
	X(wrong_dest)             \
	X(old_seq)

enum quorum_invalid {
#define X(n) QINV_##n,
	QUORUM_INVALID_REASONS(X)
#undef X
	QINV_NR,
};

const char *quorum_invalid_name(int reason);

#define QUORUM_MSG_WIRE_BYTES 88

/*
 * Encoder and decoder state of one member: the fsid, which slots exist,
 * the message authentication key (when the filesystem has it on), our
 * next sequence number, the greatest sequence number seen per sender, and
 * the rejection counters.
 */
struct quorum_codec {
	uint64_t fsid;
	int our_slot;
	uint16_t present_mask;
	bool auth;
	struct hmac_ctx mac;
	uint64_t rid;
	uint64_t tx_seq;
	uint64_t tx_limit;  /* no message is numbered above this (the durable reservation) */
	uint64_t rx_seq[FUSEFS_QUORUM_MAX_SLOTS];
	uint64_t invalid[QINV_NR];
	uint32_t breaks; /* QCODEC_BREAK_*: the simulator only; always 0 in fusefs-mount */
};

/* A deliberate codec bug, for the simulator to prove its checks. */
#define QCODEC_BREAK_ANY_TAG 0x1u /* without authentication, accept any tag bytes */

/*
 * The sequence numbers one reservation of seq_hwm takes (see seq_hwm in
 * format.h and quorum/glue.c).  Small, so that the numbers a slot uses rise
 * no faster than the wall clock's nanoseconds, which a repair falls back on;
 * a mount extends its reservation before it runs out.
 */
#define QUORUM_SEQ_RANGE ((uint64_t)1 << 20)

/*
 * Set up for the filesystem s, as slot our_slot, with our rid, and our
 * sequence numbers starting above seq_base (the block's seq_hwm), with no
 * limit until quorum_codec_set_limit().  0 or -errno.
 */
int quorum_codec_init(struct quorum_codec *c, const struct bd_super *s, int our_slot,
		      uint64_t rid, uint64_t seq_base);
/* Number no message above limit (what is reserved on disk): encoding then fails -ENOSPC. */
void quorum_codec_set_limit(struct quorum_codec *c, uint64_t limit);
void quorum_codec_free(struct quorum_codec *c);
/*
 * Encode m (its rid and seq are set here) into buf of QUORUM_MSG_WIRE_BYTES;
 * -ENOSPC when the buffer is short or the sequence numbers reserved ran out.
 */
int quorum_msg_encode(struct quorum_codec *c, struct quorum_msg *m, void *buf, size_t len);
/*
 * Decode and validate len bytes.  Never reads outside buf.  0, or
 * -(QINV_* + 1) after bumping that reason's counter.
 */
int quorum_msg_decode(struct quorum_codec *c, const void *buf, size_t len, struct quorum_msg *m);

#endif
