/*
 * client.c - the client side of the server protocol: find the server the
 * quorum blocks name and check it with a greeting.  Every wait is bounded.
 */
#include "fuse/client.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/sockaddr.h"
#include "quorum/fence.h"
#include "server/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define GREET_TIMEOUT_MS 1000

static int wait_fd(int fd, short events, mono_ns deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	mono_ns left = deadline - mono_now();
	int n;

	if (left <= 0)
		return -ETIMEDOUT;
	n = poll(&p, 1, (int)(left / NSEC_PER_MSEC) + 1);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Connect to addr, greet, read the reply.  0 or -errno. */
static int greet(struct mount_ctx *fs, const struct bd_addr *addr, struct srv_greeting_reply *r)
{
	mono_ns deadline = mono_now() + GREET_TIMEOUT_MS * NSEC_PER_MSEC;
	uint8_t frame[SRV_FRAME_HDR_BYTES + sizeof(struct srv_greeting_reply_wire) + HMAC_SHA256_BYTES];
	struct srv_greeting_wire gw;
	struct srv_greeting g = { .fsid = fs->super.fsid, .client_rid = fs->rid,
				  .version = SRV_PROTO_VERSION };
	struct sockaddr_storage ss;
	struct srv_codec codec;
	const uint8_t *pl;
	uint32_t type, plen;
	socklen_t sslen;
	ssize_t n;
	int fd, ret, err = 0;

	ret = srv_codec_init(&codec, &fs->super);
	if (ret < 0)
		return ret;
	fd = -1;
	ret = bd_addr_to_sockaddr(addr, &ss, &sslen);
	if (ret < 0)
		goto out;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		goto out;
	}
	ret = wait_fd(fd, POLLOUT, deadline);
	if (ret < 0)
		goto out;
	sslen = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sslen);
	if (err != 0) {
		ret = -err;
		goto out;
	}
	srv_greeting_encode(&g, &gw);
	n = srv_frame_encode(&codec, SRV_MSG_GREETING, &gw, sizeof(gw), frame, sizeof(frame));
	ret = n < 0 ? (int)n : srv_io_full(fd, frame, (size_t)n, true, deadline);
	if (ret < 0)
		goto out;
	n = (ssize_t)srv_frame_bytes(&codec, sizeof(struct srv_greeting_reply_wire));
	ret = srv_io_full(fd, frame, (size_t)n, false, deadline);
	if (ret < 0)
		goto out;
	n = srv_frame_decode(&codec, frame, (size_t)n, &type, &pl, &plen);
	if (n < 0 || type != SRV_MSG_GREETING_REPLY || srv_greeting_reply_decode(pl, plen, r) < 0)
		ret = n == -EPERM ? -EPERM : -EBADMSG;
out:
	if (fd >= 0)
		close(fd);
	srv_codec_free(&codec);
	return ret;
}

int fsclient_server_text(struct mount_ctx *fs, char *buf, size_t len)
{
	struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS];
	struct srv_greeting_reply r;
	char addr[BD_ADDR_STRLEN], why[200];
	uint16_t ok;
	uint64_t term;
	int slot, ret, n;

	ok = bd_read_qblocks(fs->dev, &fs->super, blocks, why, sizeof(why)); /* a bad block names no server */
	slot = quorum_find_leader(blocks, ok, &term);
	if (slot < 0)
		return snprintf(buf, len, "none\n");
	bd_addr_format(&fs->super.slots[slot], addr, sizeof(addr));
	ret = greet(fs, &fs->super.slots[slot], &r);
	if (ret < 0)
		n = snprintf(buf, len, "%s term %" PRIu64 " unreachable: %s\n", addr, term, errstr(ret));
	else if (r.status == SRV_GREET_OK)
		n = snprintf(buf, len, "%s term %" PRIu64 " rid %016" PRIx64 " serving\n", addr,
			     r.term, r.server_rid);
	else
		n = snprintf(buf, len, "%s term %" PRIu64 " rid %016" PRIx64 " not serving (%s)\n",
			     addr, r.term, r.server_rid,
			     r.status == SRV_GREET_WRONG_FS ? "another filesystem" : "no lease yet");
	return n < (int)len ? n : -ERANGE;
}
