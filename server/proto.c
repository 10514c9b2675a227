/*
 * proto.c - frames and the message catalogue, both sides (see proto.h).
 */
#include "server/proto.h"

#include "blockdev/crc32c.h"

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

ssize_t srv_frame_total(const struct srv_codec *c, const void *hdr)
{
	struct srv_frame_hdr h;

	memcpy(&h, hdr, sizeof(h));
	if (le32_to_cpu(h.magic) != SRV_FRAME_MAGIC || le32_to_cpu(h.len) > SRV_FRAME_MAX_PAYLOAD)
		return -EBADMSG;
	return (ssize_t)srv_frame_bytes(c, le32_to_cpu(h.len));
}

ssize_t srv_frame_encode(struct srv_codec *c, uint32_t type, const void *payload, uint32_t len,
			 void *out, size_t outlen)
{
	uint8_t *o = out;
	struct srv_frame_hdr h = {
		.magic = cpu_to_le32(SRV_FRAME_MAGIC), .type = cpu_to_le32(type),
		.len = cpu_to_le32(len),
	};

	if (len > SRV_FRAME_MAX_PAYLOAD || outlen < srv_frame_bytes(c, len))
		return -ENOSPC;
	memcpy(o + SRV_FRAME_HDR_BYTES, payload, len);
	h.crc = cpu_to_le32(frame_crc((const uint8_t *)&h, o + SRV_FRAME_HDR_BYTES, len));
	memcpy(o, &h, sizeof(h));
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
	struct srv_frame_hdr h;
	ssize_t total;
	uint32_t n;

	if (len < SRV_FRAME_HDR_BYTES)
		return -EAGAIN;
	total = srv_frame_total(c, b);
	if (total < 0)
		return total;
	if (len < (size_t)total)
		return -EAGAIN;
	memcpy(&h, b, sizeof(h));
	n = le32_to_cpu(h.len);
	if (le32_to_cpu(h.crc) != frame_crc(b, b + SRV_FRAME_HDR_BYTES, n))
		return -EBADMSG;
	if (c->auth && (hmac_sha256(&c->mac, b, SRV_FRAME_HDR_BYTES + n, tag) < 0 ||
			!hmac_equal(tag, b + SRV_FRAME_HDR_BYTES + n, sizeof(tag))))
		return -EPERM;
	*type = le32_to_cpu(h.type);
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

void srv_greeting_encode(const struct srv_greeting *g, struct srv_greeting_wire *out)
{
	*out = (struct srv_greeting_wire){
		.fsid = cpu_to_le64(g->fsid), .client_rid = cpu_to_le64(g->client_rid),
		.version = cpu_to_le32(g->version),
	};
}

int srv_greeting_decode(const void *in, uint32_t len, struct srv_greeting *g)
{
	struct srv_greeting_wire w;

	if (len != sizeof(w))
		return -EBADMSG;
	memcpy(&w, in, sizeof(w));
	if (le32_to_cpu(w.reserved) != 0)
		return -EBADMSG;
	g->fsid = le64_to_cpu(w.fsid);
	g->client_rid = le64_to_cpu(w.client_rid);
	g->version = le32_to_cpu(w.version);
	return 0;
}

void srv_greeting_reply_encode(const struct srv_greeting_reply *r,
			       struct srv_greeting_reply_wire *out)
{
	*out = (struct srv_greeting_reply_wire){
		.fsid = cpu_to_le64(r->fsid), .server_rid = cpu_to_le64(r->server_rid),
		.term = cpu_to_le64(r->term), .slot = cpu_to_le32(r->slot),
		.status = cpu_to_le32(r->status), .version = cpu_to_le32(r->version),
	};
}

int srv_greeting_reply_decode(const void *in, uint32_t len, struct srv_greeting_reply *r)
{
	struct srv_greeting_reply_wire w;

	if (len != sizeof(w))
		return -EBADMSG;
	memcpy(&w, in, sizeof(w));
	if (le32_to_cpu(w.reserved) != 0)
		return -EBADMSG;
	r->fsid = le64_to_cpu(w.fsid);
	r->server_rid = le64_to_cpu(w.server_rid);
	r->term = le64_to_cpu(w.term);
	r->slot = le32_to_cpu(w.slot);
	r->status = le32_to_cpu(w.status);
	r->version = le32_to_cpu(w.version);
	return 0;
}
