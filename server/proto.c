/*
 * proto.c - frames and the message catalogue, both sides (see proto.h).
 */
#include "server/proto.h"

#include "blockdev/crc32c.h"

#include <errno.h>
#include <openssl/rand.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

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

int srv_codec_session(struct srv_codec *out, const struct srv_codec *fs, bool to_server,
		      const uint8_t client_nonce[SRV_NONCE_BYTES],
		      const uint8_t server_nonce[SRV_NONCE_BYTES])
{
	char label[64 + 4 * SRV_NONCE_BYTES + 1];
	int at;

	memset(out, 0, sizeof(*out));
	out->fsid = fs->fsid;
	out->auth = fs->auth;
	out->session = true;
	if (!fs->auth)
		return 0;
	at = snprintf(label, sizeof(label), "fusefs rpc session v1 %s ", to_server ? "c2s" : "s2c");
	for (int i = 0; i < SRV_NONCE_BYTES; i++)
		at += snprintf(label + at, sizeof(label) - (size_t)at, "%02x", client_nonce[i]);
	for (int i = 0; i < SRV_NONCE_BYTES; i++)
		at += snprintf(label + at, sizeof(label) - (size_t)at, "%02x", server_nonce[i]);
	return hmac_init(&out->mac, fs->mac.key, sizeof(fs->mac.key), label);
}

int srv_nonce(uint8_t out[SRV_NONCE_BYTES])
{
	return RAND_bytes(out, SRV_NONCE_BYTES) == 1 ? 0 : -EIO;
}

/* A frame's tag: over its place in the session (if any), then its bytes. */
static int frame_tag(struct srv_codec *c, const struct iovec *frame, int n,
		     uint8_t tag[HMAC_SHA256_BYTES])
{
	struct iovec all[17];
	struct le64 seq = cpu_to_le64(c->seq);
	int k = 0;

	if (n + 1 > (int)ARRAY_SIZE(all))
		return -EINVAL;
	if (c->session)
		all[k++] = (struct iovec){ &seq, sizeof(seq) };
	memcpy(all + k, frame, sizeof(frame[0]) * (size_t)n);
	return hmac_sha256_iov(&c->mac, all, n + k, tag) < 0 ? -EIO : 0;
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
	if (c->auth) {
		struct iovec frame = { o, SRV_FRAME_HDR_BYTES + len };

		if (frame_tag(c, &frame, 1, o + SRV_FRAME_HDR_BYTES + len) < 0)
			return -EIO;
	}
	c->seq++;
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
	if (c->auth) {
		struct iovec frame = { (void *)b, SRV_FRAME_HDR_BYTES + n };

		if (frame_tag(c, &frame, 1, tag) < 0 ||
		    !hmac_equal(tag, b + SRV_FRAME_HDR_BYTES + n, sizeof(tag)))
			return -EPERM;
	}
	c->seq++;
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
		.version = cpu_to_le32(g->version), .pid = cpu_to_le64(g->who.pid),
		.start_ticks = cpu_to_le64(g->who.start_ticks), .pidns = cpu_to_le64(g->who.pidns),
	};
	memcpy(out->nonce, g->nonce, sizeof(out->nonce));
	memcpy(out->boot_id, g->who.boot_id, sizeof(out->boot_id));
	snprintf(out->host, sizeof(out->host), "%s", g->who.host);
}

/* A greeting of an older version ends after its nonce: it names nobody. */
#define GREETING_V4_BYTES offsetof(struct srv_greeting_wire, pid)

int srv_greeting_decode(const void *in, uint32_t len, struct srv_greeting *g)
{
	struct srv_greeting_wire w = { 0 };

	if (len != sizeof(w) && len != GREETING_V4_BYTES)
		return -EBADMSG;
	memcpy(&w, in, len);
	if (le32_to_cpu(w.reserved) != 0 || memchr(w.host, '\0', sizeof(w.host)) == NULL)
		return -EBADMSG;
	*g = (struct srv_greeting){
		.fsid = le64_to_cpu(w.fsid), .client_rid = le64_to_cpu(w.client_rid),
		.version = le32_to_cpu(w.version),
		.who = { .pid = le64_to_cpu(w.pid), .start_ticks = le64_to_cpu(w.start_ticks),
			 .pidns = le64_to_cpu(w.pidns) },
	};
	memcpy(g->nonce, w.nonce, sizeof(g->nonce));
	memcpy(g->who.boot_id, w.boot_id, sizeof(g->who.boot_id));
	memcpy(g->who.host, w.host, sizeof(g->who.host));
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
	memcpy(out->nonce, r->nonce, sizeof(out->nonce));
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
	memcpy(r->nonce, w.nonce, sizeof(r->nonce));
	return 0;
}

/* ---- requests and replies ---- */

static const struct rpc_op_info ops[RPC_OP_END] = {
#define X(op, nm, req, rep, t1, t2, st, hd, rp, rtail)                                       \
	[RPC_##op] = { .name = #nm, .fixed_bytes = sizeof(struct req),                       \
		       .reply_fixed_bytes = sizeof(struct rep), .tail1 = RPC_TAIL_##t1,      \
		       .tail2 = RPC_TAIL_##t2, .store = RPC_STORE_##st, .handle = RPC_HANDLE_##hd, \
		       .replay = rp, rtail },
	RPC_OPS(X)
#undef X
};

const struct rpc_op_info *rpc_op_info(uint32_t op)
{
	return rpc_op_valid(op) ? &ops[op] : NULL;
}

const char *rpc_op_name(uint32_t op)
{
	return rpc_op_valid(op) ? ops[op].name : "unknown";
}

uint32_t rpc_op_fixed_bytes(uint32_t op)
{
	return rpc_op_valid(op) ? ops[op].fixed_bytes : 0;
}

uint32_t rpc_op_reply_fixed_bytes(uint32_t op)
{
	return rpc_op_valid(op) ? ops[op].reply_fixed_bytes : 0;
}

/* Is a tail of this kind and length well formed?  0 or the errno it would be. */
static int tail_check(enum rpc_tail k, const uint8_t *t, uint32_t len)
{
	switch (k) {
	case RPC_TAIL_NONE:
		return len == 0 ? 0 : -EINVAL;
	case RPC_TAIL_NAME:
		if (len > RPC_NAME_MAX)
			return -ENAMETOOLONG;
		return len > 0 && memchr(t, '/', len) == NULL && memchr(t, '\0', len) == NULL ?
			       0 : -EINVAL;
	case RPC_TAIL_PATH:
		if (len > RPC_PATH_MAX)
			return -ENAMETOOLONG;
		return len > 0 && memchr(t, '\0', len) == NULL ? 0 : -EINVAL;
	case RPC_TAIL_DATA:
		return len <= RPC_IO_MAX ? 0 : -EFBIG;
	case RPC_TAIL_XNAME:
		if (len > RPC_XATTR_NAME_MAX)
			return -ERANGE;
		return len > 0 && memchr(t, '\0', len) == NULL ? 0 : -EINVAL;
	case RPC_TAIL_XVALUE:
		return len <= RPC_XATTR_SIZE_MAX ? 0 : -E2BIG;
	}
	return -EINVAL;
}

/* The le32 at byte off of a fixed part. */
static uint32_t fixed_le32(const void *fixed, uint32_t off)
{
	struct le32 v;

	memcpy(&v, (const uint8_t *)fixed + off, sizeof(v));
	return le32_to_cpu(v);
}

int rpc_req_check(uint32_t op, const void *fixed, const void *tail1, uint32_t tail1_len,
		  const void *tail2, uint32_t tail2_len)
{
	const struct rpc_op_info *o = rpc_op_info(op);
	int ret;

	if (o == NULL)
		return -EINVAL;
	ret = tail_check(o->tail1, tail1, tail1_len);
	if (ret == 0)
		ret = tail_check(o->tail2, tail2, tail2_len);
	/* write data is exactly what rpc_io.size says */
	if (ret == 0 && o->tail1 == RPC_TAIL_DATA &&
	    fixed_le32(fixed, offsetof(struct rpc_io, size)) != tail1_len)
		ret = -EINVAL;
	return ret;
}

bool rpc_req_writes(const struct rpc_req *q)
{
	const struct rpc_op_info *o = rpc_op_info(q->op);

	if (o == NULL)
		return false;
	switch ((enum rpc_store)o->store) {
	case RPC_STORE_READS:
		return false;
	case RPC_STORE_WRITES:
		return true;
	case RPC_STORE_TRUNCS:
		return (fixed_le32(q->fixed, offsetof(struct rpc_open, flags)) & O_TRUNC) != 0;
	}
	return true;
}

uint32_t rpc_req_reply_tail_max(const struct rpc_req *q)
{
	const struct rpc_op_info *o = rpc_op_info(q->op);

	if (o == NULL)
		return 0;
	if (o->reply_tail_asked == 0)
		return o->reply_tail_max;
	return MIN(fixed_le32(q->fixed, o->reply_tail_asked - 1), o->reply_tail_max);
}

uint32_t rpc_req_reply_budget(const struct rpc_req *q)
{
	return SRV_FRAME_HDR_BYTES + (uint32_t)sizeof(struct rpc_reply_hdr) +
	       rpc_op_reply_fixed_bytes(q->op) + rpc_req_reply_tail_max(q) + HMAC_SHA256_BYTES;
}

int rpc_req_decode(const void *payload, uint32_t len, struct rpc_req *out)
{
	const uint8_t *p = payload;
	struct rpc_req_hdr h;
	uint64_t need;
	uint32_t fixed;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, p, sizeof(h));
	memset(out, 0, sizeof(*out));
	out->req_id = le64_to_cpu(h.req_id);
	out->client_rid = le64_to_cpu(h.client_rid);
	out->oldest_req_id = le64_to_cpu(h.oldest_req_id);
	out->op = le32_to_cpu(h.op);
	out->uid = le32_to_cpu(h.uid);
	out->gid = le32_to_cpu(h.gid);
	out->pid = le32_to_cpu(h.pid);
	out->ngroups = le32_to_cpu(h.ngroups);
	out->tail1_len = le32_to_cpu(h.tail1_len);
	out->tail2_len = le32_to_cpu(h.tail2_len);
	if (!rpc_op_valid(out->op) || out->ngroups > RPC_GROUPS_MAX || le32_to_cpu(h.reserved) != 0)
		return -EBADMSG;
	fixed = ops[out->op].fixed_bytes;
	/* 64-bit sum: no length can wrap it */
	need = (uint64_t)sizeof(h) + 4ull * out->ngroups + fixed + out->tail1_len + out->tail2_len;
	if (need != len)
		return -EBADMSG;
	p += sizeof(h);
	for (uint32_t i = 0; i < out->ngroups; i++) {
		struct le32 g;

		memcpy(&g, p + 4 * i, 4);
		out->groups[i] = le32_to_cpu(g);
	}
	p += 4 * out->ngroups;
	out->fixed = p;
	p += fixed;
	out->tail1 = p;
	out->tail2 = p + out->tail1_len;
	if (rpc_req_check(out->op, out->fixed, out->tail1, out->tail1_len, out->tail2,
			  out->tail2_len) < 0)
		return -EBADMSG;
	return 0;
}

void rpc_req_hdr_encode(const struct rpc_req *r, struct rpc_req_hdr *hdr,
			struct le32 groups[RPC_GROUPS_MAX])
{
	*hdr = (struct rpc_req_hdr){
		.req_id = cpu_to_le64(r->req_id), .client_rid = cpu_to_le64(r->client_rid),
		.oldest_req_id = cpu_to_le64(r->oldest_req_id), .op = cpu_to_le32(r->op),
		.uid = cpu_to_le32(r->uid), .gid = cpu_to_le32(r->gid), .pid = cpu_to_le32(r->pid),
		.ngroups = cpu_to_le32(r->ngroups), .tail1_len = cpu_to_le32(r->tail1_len),
		.tail2_len = cpu_to_le32(r->tail2_len),
	};
	for (uint32_t i = 0; i < r->ngroups && i < RPC_GROUPS_MAX; i++)
		groups[i] = cpu_to_le32(r->groups[i]);
}

int rpc_reply_decode(const void *payload, uint32_t len, struct rpc_reply *out)
{
	const uint8_t *p = payload;
	struct rpc_reply_hdr h;
	uint32_t fixed;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, p, sizeof(h));
	out->req_id = le64_to_cpu(h.req_id);
	out->status = le32_to_cpu(h.status);
	out->op = le32_to_cpu(h.op);
	out->valid_ms = le32_to_cpu(h.valid_ms);
	if (!rpc_op_valid(out->op) || out->status > 4095 || le32_to_cpu(h.reserved) != 0)
		return -EBADMSG;
	fixed = out->status == 0 ? ops[out->op].reply_fixed_bytes : 0;
	if (len - sizeof(h) < fixed)
		return -EBADMSG;
	out->fixed = p + sizeof(h);
	out->tail = p + sizeof(h) + fixed;
	out->tail_len = len - (uint32_t)sizeof(h) - fixed;
	if (out->tail_len > (out->status == 0 ? ops[out->op].reply_tail_max : 0))
		return -EBADMSG;
	return 0;
}

ssize_t srv_frame_seal(struct srv_codec *c, uint32_t type, const struct iovec *pieces, int n,
		       struct srv_frame_hdr *hdr, uint8_t tag[HMAC_SHA256_BYTES])
{
	struct iovec all[16];
	uint64_t len = 0;
	uint32_t crc;

	if (n + 1 > (int)ARRAY_SIZE(all))
		return -EINVAL;
	for (int i = 0; i < n; i++)
		len += pieces[i].iov_len;
	if (len > SRV_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	*hdr = (struct srv_frame_hdr){
		.magic = cpu_to_le32(SRV_FRAME_MAGIC), .type = cpu_to_le32(type),
		.len = cpu_to_le32((uint32_t)len),
	};
	crc = bd_crc32c(hdr, 12);
	for (int i = 0; i < n; i++)
		crc = bd_crc32c_update(crc, pieces[i].iov_base, pieces[i].iov_len);
	hdr->crc = cpu_to_le32(crc);
	if (c->auth) {
		all[0] = (struct iovec){ .iov_base = hdr, .iov_len = sizeof(*hdr) };
		memcpy(all + 1, pieces, sizeof(pieces[0]) * (size_t)n);
		if (frame_tag(c, all, n + 1, tag) < 0)
			return -EIO;
	}
	c->seq++;
	return (ssize_t)srv_frame_bytes(c, (uint32_t)len);
}

int rpc_dirent_next(const uint8_t *tail, uint32_t len, uint32_t *pos, struct rpc_dirent *d,
		    const char **name, const struct rpc_attr **attr)
{
	uint32_t at = *pos, need;

	if (at == len)
		return 1;
	if (at > len || len - at < sizeof(*d))
		return -EBADMSG;
	memcpy(d, tail + at, sizeof(*d));
	if (le16_to_cpu(d->namelen) == 0 || le16_to_cpu(d->namelen) > RPC_NAME_MAX ||
	    le16_to_cpu(d->has_attr) > 1)
		return -EBADMSG;
	need = rpc_dirent_bytes(le16_to_cpu(d->namelen), le16_to_cpu(d->has_attr) != 0);
	if (len - at < need)
		return -EBADMSG;
	*name = (const char *)tail + at + sizeof(*d);
	*attr = le16_to_cpu(d->has_attr) ?
		(const struct rpc_attr *)(tail + at + need - sizeof(struct rpc_attr)) : NULL;
	*pos = at + need;
	return 0;
}

int rpc_inval_next(const uint8_t *payload, uint32_t len, uint32_t *pos, struct rpc_inval *out)
{
	struct rpc_inval_item it;
	uint32_t at = *pos, namelen, need;

	if (at == len)
		return 1;
	if (at > len || len - at < sizeof(it))
		return -EBADMSG;
	memcpy(&it, payload + at, sizeof(it));
	namelen = le16_to_cpu(it.namelen);
	out->kind = le16_to_cpu(it.kind);
	out->ino = le64_to_cpu(it.ino);
	if (le32_to_cpu(it.reserved) != 0 || namelen > RPC_NAME_MAX ||
	    (out->kind == RPC_INVAL_ENTRY) != (namelen > 0) ||
	    (out->kind != RPC_INVAL_ENTRY && out->kind != RPC_INVAL_INODE))
		return -EBADMSG;
	need = rpc_inval_item_bytes(namelen);
	if (len - at < need)
		return -EBADMSG;
	out->name = (const char *)payload + at + sizeof(it);
	out->namelen = namelen;
	*pos = at + need;
	return 0;
}
