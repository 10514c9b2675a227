/*
 * msg.c - encode, decode and validate quorum messages.
 *
 * Wire format, 88 bytes, little-endian:
 *
 *   offset  size  field
 *        0     8  fsid        the filesystem's fsid
 *        8     8  term        the sender's current term
 *       16     8  arg         proposed term (PRE_VOTE*), send time (HEARTBEAT*)
 *       24     8  seq         sender's sequence number, rising across restarts
 *       32     8  rid         sender's mount rid
 *       40     4  timeout_ms  HEARTBEAT_ACK: the acker's heartbeat timeout
 *       44     1  version     QUORUM_WIRE_VERSION
 *       45     1  type        enum quorum_msg_type
 *       46     1  from        sender slot
 *       47     1  flags       QMSG_F_*
 *       48     1  to          destination slot: a datagram is for one member
 *       49     3  zero
 *       52     4  crc         crc32c of bytes 0..51
 *       56    32  tag         HMAC-SHA256 of bytes 0..55 (zeros without auth,
 *                             and then required to be zero: one encoding only)
 *
 * The decoder checks, in order: length, crc, tag, version, fsid, type,
 * sender slot (in range and present), not from our own slot, addressed to
 * us (so an authenticated message cannot be redirected to another member,
 * say a VOTE to another candidate), and a sequence number above the last
 * one accepted from that slot.  The first
 * failure bumps its counter; nothing is logged per message.
 */
#include "quorum/msg.h"

#include "blockdev/codec.h"
#include "blockdev/crc32c.h"

#include <assert.h>
#include <errno.h>

#define QUORUM_WIRE_VERSION 1

struct quorum_wire {
	struct le64 fsid;
	struct le64 term;
	struct le64 arg;
	struct le64 seq;
	struct le64 rid;
	struct le32 timeout_ms;
	uint8_t version;
	uint8_t type;
	uint8_t from;
	uint8_t flags;
	uint8_t to;
	uint8_t zero[3];
	struct le32 crc;
	uint8_t tag[HMAC_SHA256_BYTES];
};

static_assert(sizeof(struct quorum_wire) == QUORUM_MSG_WIRE_BYTES, "wire size");
static_assert(offsetof(struct quorum_wire, crc) == 52, "crc offset");
static_assert(offsetof(struct quorum_wire, tag) == 56, "tag offset");

#define CRC_BYTES offsetof(struct quorum_wire, crc)
#define TAG_BYTES offsetof(struct quorum_wire, tag)

const char *quorum_msg_type_name(unsigned type)
{
	static const char *const names[] = {
		[QMSG_REQUEST_VOTE] = "request_vote", [QMSG_VOTE] = "vote",
		[QMSG_HEARTBEAT] = "heartbeat",       [QMSG_RESIGNATION] = "resignation",
		[QMSG_PRE_VOTE] = "pre_vote",         [QMSG_PRE_VOTE_REPLY] = "pre_vote_reply",
		[QMSG_HEARTBEAT_ACK] = "heartbeat_ack",
	};

	return quorum_msg_type_valid(type) ? names[type] : "invalid";
}

const char *quorum_invalid_name(int reason)
{
	static const char *const names[] = {
#define X(n) #n,
		QUORUM_INVALID_REASONS(X)
#undef X
	};

	return reason >= 0 && reason < QINV_NR ? names[reason] : "invalid";
}

int quorum_codec_init(struct quorum_codec *c, const struct bd_super *s, int our_slot,
		      uint64_t rid, uint64_t seq_base)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->fsid = s->fsid;
	c->our_slot = our_slot;
	c->rid = rid;
	c->tx_seq = seq_base;
	c->tx_limit = UINT64_MAX;
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if (bd_slot_present(s, i))
			c->present_mask |= (uint16_t)(1u << i);
	c->auth = (s->flags & FUSEFS_SUPER_FLAG_AUTH) != 0;
	if (c->auth) {
		ret = hmac_init(&c->mac, s->cluster_secret, sizeof(s->cluster_secret),
				"fusefs quorum message key v1");
		if (ret < 0)
			return ret;
	}
	return 0;
}

void quorum_codec_set_limit(struct quorum_codec *c, uint64_t limit)
{
	c->tx_limit = limit;
}

void quorum_codec_free(struct quorum_codec *c)
{
	if (c->auth)
		hmac_free(&c->mac);
}

int quorum_msg_encode(struct quorum_codec *c, struct quorum_msg *m, void *buf, size_t len)
{
	struct quorum_wire w;
	int ret;

	if (len < sizeof(w) || c->tx_seq >= c->tx_limit)
		return -ENOSPC;
	m->rid = c->rid;
	m->seq = ++c->tx_seq;
	memset(&w, 0, sizeof(w));
	w.fsid = cpu_to_le64(c->fsid);
	w.term = cpu_to_le64(m->term);
	w.arg = cpu_to_le64(m->arg);
	w.seq = cpu_to_le64(m->seq);
	w.rid = cpu_to_le64(m->rid);
	w.timeout_ms = cpu_to_le32(m->timeout_ms);
	w.version = QUORUM_WIRE_VERSION;
	w.type = m->type;
	w.from = m->from;
	w.flags = m->flags;
	w.to = m->to;
	w.crc = cpu_to_le32(bd_crc32c(&w, CRC_BYTES));
	if (c->auth) {
		ret = hmac_sha256(&c->mac, &w, TAG_BYTES, w.tag);
		if (ret < 0)
			return ret;
	}
	memcpy(buf, &w, sizeof(w));
	return (int)sizeof(w);
}

static int reject(struct quorum_codec *c, enum quorum_invalid why)
{
	c->invalid[why]++;
	return -((int)why + 1);
}

int quorum_msg_decode(struct quorum_codec *c, const void *buf, size_t len, struct quorum_msg *m)
{
	static const uint8_t zero[3], zero_tag[HMAC_SHA256_BYTES];
	uint8_t tag[HMAC_SHA256_BYTES];
	struct quorum_wire w;
	uint64_t seq;

	if (len != sizeof(w))
		return reject(c, QINV_wrong_length);
	memcpy(&w, buf, sizeof(w));
	if (le32_to_cpu(w.crc) != bd_crc32c(&w, CRC_BYTES))
		return reject(c, QINV_bad_crc);
	if (c->auth) {
		if (hmac_sha256(&c->mac, &w, TAG_BYTES, tag) < 0 ||
		    !hmac_equal(tag, w.tag, sizeof(tag)))
			return reject(c, QINV_bad_tag);
	} else if (!(c->breaks & QCODEC_BREAK_ANY_TAG) &&
		   memcmp(w.tag, zero_tag, sizeof(zero_tag)) != 0) {
		return reject(c, QINV_bad_tag); /* without authentication the tag is all zero */
	}
	if (w.version != QUORUM_WIRE_VERSION || memcmp(w.zero, zero, sizeof(zero)) != 0)
		return reject(c, QINV_bad_version);
	if (le64_to_cpu(w.fsid) != c->fsid)
		return reject(c, QINV_other_fsid);
	if (!quorum_msg_type_valid(w.type))
		return reject(c, QINV_unknown_type);
	if (!bd_slot_nr_valid(w.from) || !(c->present_mask & (1u << w.from)))
		return reject(c, QINV_bad_slot);
	if (w.from == c->our_slot)
		return reject(c, QINV_from_self);
	if (w.to != c->our_slot)
		return reject(c, QINV_wrong_dest);
	seq = le64_to_cpu(w.seq);
	if (seq <= c->rx_seq[w.from])
		return reject(c, QINV_old_seq);
	c->rx_seq[w.from] = seq;

	memset(m, 0, sizeof(*m));
	m->type = w.type;
	m->from = w.from;
	m->flags = w.flags;
	m->to = w.to;
	m->timeout_ms = le32_to_cpu(w.timeout_ms);
	m->term = le64_to_cpu(w.term);
	m->arg = le64_to_cpu(w.arg);
	m->seq = seq;
	m->rid = le64_to_cpu(w.rid);
	return 0;
}
