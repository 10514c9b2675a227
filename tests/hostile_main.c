/*
 * fusefs-hostile - a hostile client for the server's TCP port: random
 * bytes, truncated frames, oversized lengths, frames that fail their crc
 * or their HMAC, authentic frames carrying malformed requests, a greeting
 * with the wrong filesystem, and slow clients that stop mid-frame.  Each
 * attempt is its own connection; the server must close each one and keep
 * serving everybody else.
 *
 *   fusefs-hostile DEVICE ADDR PORT ROUNDS
 *
 * DEVICE gives the fsid and the cluster secret, so some frames are
 * authentic (a buggy client, not just a stranger).  Prints what it did;
 * exits 0 when every connection was closed by the server within a bound
 * (a server that answered a malformed request as if it were fine, or kept
 * a bad connection open, is a failure).
 */
#include "blockdev/blocks.h"
#include "blockdev/dev.h"
#include "common/common.h"
#include "common/prng.h"
#include "server/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define CLOSE_WAIT_MS 3000

static struct sockaddr_in addr;
static struct srv_codec codec;
static struct bd_super super;
static uint64_t rng = 0x5eed;

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/*
 * Did the server close the connection within the bound?  Replies it sends
 * first are read and counted (a GREETING_REPLY is fine).
 */
static bool closed_by_server(int fd, int *frames)
{
	mono_ns until = mono_now() + CLOSE_WAIT_MS * NSEC_PER_MSEC;
	uint8_t buf[4096];

	*frames = 0;
	while (mono_now() < until) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return true;
		(*frames)++;
	}
	return false;
}

static size_t frame(uint32_t type, const void *payload, uint32_t len, uint8_t *out, size_t cap)
{
	ssize_t n = srv_frame_encode(&codec, type, payload, len, out, cap);

	return n < 0 ? 0 : (size_t)n;
}

static size_t greeting(uint64_t fsid, uint8_t *out, size_t cap)
{
	struct srv_greeting g = { .fsid = fsid, .client_rid = 77, .version = SRV_PROTO_VERSION };
	struct srv_greeting_wire w;

	srv_greeting_encode(&g, &w);
	return frame(SRV_MSG_GREETING, &w, sizeof(w), out, cap);
}

int main(int argc, char **argv)
{
	static uint8_t buf[SRV_FRAME_MAX_PAYLOAD + 256];
	struct bd_dev *dev;
	char why[512];
	int rounds, failures = 0, attempts = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: fusefs-hostile DEVICE ADDR PORT ROUNDS\n");
		return 2;
	}
	if (bd_open(argv[1], false, &dev, why, sizeof(why)) < 0 ||
	    bd_read_super(dev, &super, why, sizeof(why)) < 0) {
		fprintf(stderr, "fusefs-hostile: %s\n", why);
		return 1;
	}
	bd_close(dev);
	if (srv_codec_init(&codec, &super) < 0)
		return 1;
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
		fprintf(stderr, "fusefs-hostile: bad address %s\n", argv[2]);
		return 2;
	}
	rounds = atoi(argv[4]);
	for (int r = 0; r < rounds; r++) {
		for (int kind = 0; kind < 9; kind++) {
			int fd = dial(), frames;
			size_t n = 0, g;
			const char *what = "";

			if (fd < 0) {
				printf("FAIL: cannot connect to %s:%s: %s\n", argv[2], argv[3], strerror(errno));
				return 1;
			}
			switch (kind) {
			case 0:
				what = "random bytes";
				n = 1 + prng_below(&rng, 2000);
				for (size_t i = 0; i < n; i++)
					buf[i] = (uint8_t)prng_next(&rng);
				send_all(fd, buf, n);
				break;
			case 1:
				what = "an oversized length";
				n = greeting(super.fsid, buf, sizeof(buf));
				buf[8] = buf[9] = buf[10] = buf[11] = 0xff;
				send_all(fd, buf, 16);
				break;
			case 2:
				what = "a flipped bit (crc)";
				n = greeting(super.fsid, buf, sizeof(buf));
				buf[16 + prng_below(&rng, 24)] ^= 1;
				send_all(fd, buf, n);
				break;
			case 3:
				what = "a wrong key (HMAC)";
				{
					struct bd_super other = super;
					struct srv_codec saved = codec;

					other.cluster_secret[0] ^= 0x55;
					other.flags |= FUSEFS_SUPER_FLAG_AUTH;
					srv_codec_init(&codec, &other);
					n = greeting(super.fsid, buf, sizeof(buf));
					srv_codec_free(&codec);
					codec = saved;
				}
				send_all(fd, buf, n);
				break;
			case 4:
				what = "a greeting, then a malformed request";
				g = greeting(super.fsid, buf, sizeof(buf));
				{
					uint8_t bad[200];

					for (size_t i = 0; i < sizeof(bad); i++)
						bad[i] = (uint8_t)prng_next(&rng);
					n = frame(SRV_MSG_REQUEST, bad, 40 + (uint32_t)prng_below(&rng, 160),
						  buf + g, sizeof(buf) - g);
				}
				send_all(fd, buf, g + n);
				break;
			case 5:
				what = "another filesystem's greeting";
				n = greeting(super.fsid ^ 1, buf, sizeof(buf));
				send_all(fd, buf, n);
				break;
			case 6:
				what = "a truncated frame, then silence";
				n = greeting(super.fsid, buf, sizeof(buf));
				send_all(fd, buf, 1 + prng_below(&rng, n - 1));
				/* the server may wait for the rest; we hang up */
				shutdown(fd, SHUT_WR);
				break;
			case 7:
				what = "a request before any greeting";
				{
					uint8_t req[100] = { 0 };

					n = frame(SRV_MSG_REQUEST, req, sizeof(req), buf, sizeof(buf));
				}
				send_all(fd, buf, n);
				break;
			case 8:
				what = "a greeting with a request that lies about its tails";
				g = greeting(super.fsid, buf, sizeof(buf));
				{
					struct rpc_req q = { .req_id = 1, .client_rid = 77, .op = RPC_LOOKUP,
							     .tail1_len = 1000000 };
					struct rpc_req_hdr h;
					struct le32 groups[RPC_GROUPS_MAX];
					uint8_t pl[sizeof(h) + 8 + 4];

					rpc_req_hdr_encode(&q, &h, groups);
					memcpy(pl, &h, sizeof(h));
					memset(pl + sizeof(h), 0, 12);
					n = frame(SRV_MSG_REQUEST, pl, sizeof(pl), buf + g, sizeof(buf) - g);
				}
				send_all(fd, buf, g + n);
				break;
			}
			attempts++;
			if (!closed_by_server(fd, &frames)) {
				printf("FAIL: %s: the server kept the connection open\n", what);
				failures++;
			} else if (r == 0) {
				printf("  %s: closed by the server (%d replies first)\n", what, frames);
			}
			close(fd);
		}
	}
	srv_codec_free(&codec);
	printf("fusefs-hostile: %d connections, %d not closed by the server\n", attempts, failures);
	return failures ? 1 : 0;
}
