/*
 * proto.c - frames and the message catalogue, both sides (see proto.h).
 */
#include "server/proto.h"

#include "blockdev/crc32c.h"

#include <errno.h>
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

/* ---- requests and replies ---- */

enum tail_kind { T_NONE, T_NAME, T_PATH, T_DATA, T_XNAME, T_XVALUE };

struct op_rule {
	const char *name;
	uint32_t fixed;
	uint32_t reply_fixed;
	uint8_t tail1, tail2;
	bool writes;
};

#define R(op, n, fx, rfx, t1, t2, w) [op] = { n, fx, rfx, t1, t2, w }
static const struct op_rule rules[RPC_OP_END] = {
	R(RPC_LOOKUP, "lookup", sizeof(struct rpc_ino), sizeof(struct rpc_entry), T_NAME, T_NONE, false),
	R(RPC_GETATTR, "getattr", sizeof(struct rpc_ino), sizeof(struct rpc_attr), T_NONE, T_NONE, false),
	R(RPC_SETATTR, "setattr", sizeof(struct rpc_setattr), sizeof(struct rpc_attr), T_NONE, T_NONE, true),
	R(RPC_MKNOD, "mknod", sizeof(struct rpc_make), sizeof(struct rpc_entry), T_NAME, T_NONE, true),
	R(RPC_MKDIR, "mkdir", sizeof(struct rpc_make), sizeof(struct rpc_entry), T_NAME, T_NONE, true),
	R(RPC_UNLINK, "unlink", sizeof(struct rpc_ino), 0, T_NAME, T_NONE, true),
	R(RPC_RMDIR, "rmdir", sizeof(struct rpc_ino), 0, T_NAME, T_NONE, true),
	R(RPC_SYMLINK, "symlink", sizeof(struct rpc_ino), sizeof(struct rpc_entry), T_NAME, T_PATH, true),
	R(RPC_READLINK, "readlink", sizeof(struct rpc_ino), 0, T_NONE, T_NONE, false),
	R(RPC_RENAME, "rename", sizeof(struct rpc_rename), 0, T_NAME, T_NAME, true),
	R(RPC_LINK, "link", sizeof(struct rpc_link), sizeof(struct rpc_entry), T_NAME, T_NONE, true),
	R(RPC_OPEN, "open", sizeof(struct rpc_open), sizeof(struct rpc_opened), T_NONE, T_NONE, true),
	R(RPC_CREATE, "create", sizeof(struct rpc_make),
	  sizeof(struct rpc_entry) + sizeof(struct rpc_opened), T_NAME, T_NONE, true),
	R(RPC_READ, "read", sizeof(struct rpc_io), 0, T_NONE, T_NONE, false),
	R(RPC_WRITE, "write", sizeof(struct rpc_io), sizeof(struct rpc_written), T_DATA, T_NONE, true),
	R(RPC_RELEASE, "release", sizeof(struct rpc_release), 0, T_NONE, T_NONE, true),
	R(RPC_FALLOCATE, "fallocate", sizeof(struct rpc_fallocate), 0, T_NONE, T_NONE, true),
	R(RPC_READDIR, "readdir", sizeof(struct rpc_readdir), 0, T_NONE, T_NONE, false),
	R(RPC_STATFS, "statfs", sizeof(struct rpc_ino), sizeof(struct rpc_statfs), T_NONE, T_NONE, false),
	R(RPC_GETXATTR, "getxattr", sizeof(struct rpc_xattr), sizeof(struct rpc_xsize), T_XNAME, T_NONE,
	  false),
	R(RPC_SETXATTR, "setxattr", sizeof(struct rpc_xattr), 0, T_XNAME, T_XVALUE, true),
	R(RPC_LISTXATTR, "listxattr", sizeof(struct rpc_xattr), sizeof(struct rpc_xsize), T_NONE, T_NONE,
	  false),
	R(RPC_REMOVEXATTR, "removexattr", sizeof(struct rpc_xattr), 0, T_XNAME, T_NONE, true),
	R(RPC_ACCESS, "access", sizeof(struct rpc_access), 0, T_NONE, T_NONE, false),
};
#undef R

const char *rpc_op_name(uint32_t op)
{
	return rpc_op_valid(op) ? rules[op].name : "unknown";
}

bool rpc_op_writes(uint32_t op)
{
	return rpc_op_valid(op) && rules[op].writes;
}

uint32_t rpc_op_fixed_bytes(uint32_t op)
{
	return rpc_op_valid(op) ? rules[op].fixed : 0;
}

uint32_t rpc_op_reply_fixed_bytes(uint32_t op)
{
	return rpc_op_valid(op) ? rules[op].reply_fixed : 0;
}

/* Is a tail of this kind and length well formed? */
static bool tail_ok(enum tail_kind k, const uint8_t *t, uint32_t len)
{
	switch (k) {
	case T_NONE:
		return len == 0;
	case T_NAME:
		if (len == 0 || len > RPC_NAME_MAX || memchr(t, '/', len) != NULL)
			return false;
		return memchr(t, '\0', len) == NULL;
	case T_PATH:
		return len > 0 && len <= RPC_PATH_MAX && memchr(t, '\0', len) == NULL;
	case T_DATA:
		return len <= RPC_IO_MAX;
	case T_XNAME:
		return len > 0 && len <= RPC_XATTR_NAME_MAX && memchr(t, '\0', len) == NULL;
	case T_XVALUE:
		return len <= RPC_XATTR_SIZE_MAX;
	}
	return false;
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
	fixed = rules[out->op].fixed;
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
	if (!tail_ok(rules[out->op].tail1, out->tail1, out->tail1_len) ||
	    !tail_ok(rules[out->op].tail2, out->tail2, out->tail2_len))
		return -EBADMSG;
	if (out->op == RPC_WRITE) {
		struct rpc_io io;

		memcpy(&io, out->fixed, sizeof(io));
		if (le32_to_cpu(io.size) != out->tail1_len)
			return -EBADMSG;
	}
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
	if (!rpc_op_valid(out->op) || out->status > 4095)
		return -EBADMSG;
	fixed = out->status == 0 ? rules[out->op].reply_fixed : 0;
	if (len - sizeof(h) < fixed)
		return -EBADMSG;
	out->fixed = p + sizeof(h);
	out->tail = p + sizeof(h) + fixed;
	out->tail_len = len - (uint32_t)sizeof(h) - fixed;
	if (out->status != 0 && out->tail_len != 0)
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
		if (hmac_sha256_iov(&c->mac, all, n + 1, tag) < 0)
			return -EIO;
	}
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
