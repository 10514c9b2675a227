/*
 * proto.c - frames and the greeting, both sides.
 *
 * Frame header (16 bytes, little-endian): magic "FSRP", type, payload
 * length (at most SRV_FRAME_MAX_PAYLOAD), crc32c of bytes 0..11 followed by
 * the payload.  Then the payload, then with authentication a 32-byte
 * HMAC-SHA256 of header and payload.
 *
 * Greeting payload (24 bytes): fsid, client rid, protocol version, zero.
 * Reply payload (40 bytes): fsid, server rid, term, slot, status, version, zero.
 */
#include "server/server.h"

#include "blockdev/blockdev.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

int srv_codec_init(struct srv_codec *c, const struct bd_super *s)
{
	memset(c, 0, sizeof(*c));
	c->fsid = s->fsid;
	c->auth = (s->flags & FUSEFS_SUPER_FLAG_AUTH) != 0;
	if (!c->auth)
		return 0;
	return hmac_init(&c->mac, s->cluster_secret, sizeof(s->cluster_secret),
			 "fusefs rpc frame key v1");
}

void srv_codec_free(struct srv_codec *c)
{
	if (c->auth)
		hmac_free(&c->mac);
}

size_t srv_frame_bytes(const struct srv_codec *c, uint32_t len)
{
	return SRV_FRAME_HDR_BYTES + len + (c->auth ? HMAC_SHA256_BYTES : 0);
}

static uint32_t frame_crc(const uint8_t *hdr, const uint8_t *payload, uint32_t len)
{
	return bd_crc32c_update(bd_crc32c(hdr, 12), payload, len);
}

static void put32(uint8_t *p, uint32_t v)
{
	struct le32 x = cpu_to_le32(v);

	memcpy(p, &x, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	struct le64 x = cpu_to_le64(v);

	memcpy(p, &x, 8);
}

static uint32_t get32(const uint8_t *p)
{
	struct le32 x;

	memcpy(&x, p, 4);
	return le32_to_cpu(x);
}

static uint64_t get64(const uint8_t *p)
{
	struct le64 x;

	memcpy(&x, p, 8);
	return le64_to_cpu(x);
}

ssize_t srv_frame_encode(struct srv_codec *c, uint32_t type, const void *payload, uint32_t len,
			 void *out, size_t outlen)
{
	uint8_t *o = out;

	if (len > SRV_FRAME_MAX_PAYLOAD || outlen < srv_frame_bytes(c, len))
		return -ENOSPC;
	put32(o, SRV_FRAME_MAGIC);
	put32(o + 4, type);
	put32(o + 8, len);
	memcpy(o + SRV_FRAME_HDR_BYTES, payload, len);
	put32(o + 12, frame_crc(o, o + SRV_FRAME_HDR_BYTES, len));
	if (c->auth && hmac_sha256(&c->mac, o, SRV_FRAME_HDR_BYTES + len,
				   o + SRV_FRAME_HDR_BYTES + len) < 0)
		return -EIO;
	return (ssize_t)srv_frame_bytes(c, len);
}

ssize_t srv_frame_decode(struct srv_codec *c, const void *buf, size_t len, uint32_t *type,
			 const uint8_t **payload, uint32_t *plen)
{
	const uint8_t *b = buf;
	uint8_t tag[HMAC_SHA256_BYTES];
	uint32_t n;

	if (len < SRV_FRAME_HDR_BYTES)
		return -EAGAIN;
	if (get32(b) != SRV_FRAME_MAGIC)
		return -EBADMSG;
	n = get32(b + 8);
	if (n > SRV_FRAME_MAX_PAYLOAD)
		return -EBADMSG;
	if (len < srv_frame_bytes(c, n))
		return -EAGAIN;
	if (get32(b + 12) != frame_crc(b, b + SRV_FRAME_HDR_BYTES, n))
		return -EBADMSG;
	if (c->auth && (hmac_sha256(&c->mac, b, SRV_FRAME_HDR_BYTES + n, tag) < 0 ||
			!hmac_equal(tag, b + SRV_FRAME_HDR_BYTES + n, sizeof(tag))))
		return -EPERM;
	*type = get32(b + 4);
	*payload = b + SRV_FRAME_HDR_BYTES;
	*plen = n;
	return (ssize_t)srv_frame_bytes(c, n);
}

int srv_io_full(int fd, void *buf, size_t len, bool writing, mono_ns deadline)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd p = { .fd = fd, .events = writing ? POLLOUT : POLLIN };
		mono_ns left = deadline - mono_now();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)(left / NSEC_PER_MSEC) + 1) != 1)
			return -ETIMEDOUT;
		n = writing ? send(fd, (char *)buf + done, len - done, MSG_NOSIGNAL) :
			      recv(fd, (char *)buf + done, len - done, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		done += (size_t)n;
	}
	return 0;
}

void srv_greeting_encode(const struct srv_greeting *g, uint8_t out[24])
{
	memset(out, 0, 24);
	put64(out, g->fsid);
	put64(out + 8, g->client_rid);
	put32(out + 16, g->version);
}

int srv_greeting_decode(const uint8_t *in, uint32_t len, struct srv_greeting *g)
{
	if (len != 24)
		return -EBADMSG;
	g->fsid = get64(in);
	g->client_rid = get64(in + 8);
	g->version = get32(in + 16);
	return 0;
}

void srv_greeting_reply_encode(const struct srv_greeting_reply *r, uint8_t out[40])
{
	memset(out, 0, 40);
	put64(out, r->fsid);
	put64(out + 8, r->server_rid);
	put64(out + 16, r->term);
	put32(out + 24, r->slot);
	put32(out + 28, r->status);
	put32(out + 32, r->version);
}

int srv_greeting_reply_decode(const uint8_t *in, uint32_t len, struct srv_greeting_reply *r)
{
	if (len != 40)
		return -EBADMSG;
	r->fsid = get64(in);
	r->server_rid = get64(in + 8);
	r->term = get64(in + 16);
	r->slot = get32(in + 24);
	r->status = get32(in + 28);
	r->version = get32(in + 32);
	return 0;
}
