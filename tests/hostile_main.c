/*
 * fusefs-hostile - a hostile client for the server's TCP port: random
 * bytes, truncated frames, oversized lengths, frames that fail their crc
 * or their HMAC, authentic frames carrying malformed requests, a greeting
 * with the wrong filesystem, and slow clients that stop mid-frame.  Each
 * attempt is its own connection; the server must close each one and keep
 * serving everybody else.
 *
 *   fusefs-hostile DEVICE ADDR PORT ROUNDS
 *   fusefs-hostile DEVICE ADDR PORT --flood CONNS WRITES
 *   fusefs-hostile DEVICE ADDR PORT --idle CONNS SECONDS FROM
 *   fusefs-hostile DEVICE ADDR,ADDR... PORT --udp SECONDS
 *
 * --udp is a stranger without the cluster secret flooding the quorum
 * ports: for SECONDS, as fast as one core sends, datagrams of the quorum
 * message's size to every ADDR:PORT - half random bytes, half messages
 * encoded properly for this filesystem (its fsid, a slot, a high term) but
 * signed with a secret of the stranger's own, so only the HMAC tells them
 * apart.  It prints how many it sent; the members must not notice.
 *
 * --idle is a stranger who holds the port's connections: CONNS
 * connections from the address FROM (another loopback address than the
 * mounts', as another host would be) that never greet, each dialled again
 * as soon as the server closes it, for SECONDS.  It prints how many the
 * server closed; the mounts must go on working meanwhile.
 *
 * --flood is a greedy client rather than a broken one: CONNS connections,
 * each greeted properly, each sending WRITES 1 MiB writes (to a handle that
 * does not exist) as fast as the server takes them before reading a single
 * reply - more than the service's queue limit holds.  Every request must be
 * answered within a bound: a connection the server stopped reading must be
 * read again once there is room.
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
#include "quorum/msg.h"
#include "server/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
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

/* ---- --flood ---- */

#define FLOOD_WRITE (1u << 20)
#define FLOOD_DEADLINE_MS 60000

struct flooder {
	pthread_t thread;
	int fd;
	uint64_t rid;
	int writes;
	int answered;
	const char *failed;
	struct srv_codec tx, rx; /* its session's (an HMAC context is not shared between threads) */
};

static bool recv_full(int fd, void *buf, size_t len, mono_ns until)
{
	uint8_t *p = buf;

	while (len > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (mono_now() >= until)
			return false;
		if (poll(&pf, 1, 100) <= 0)
			continue;
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* One frame's payload into buf: its type, or -1. */
static int recv_frame(struct srv_codec *cd, int fd, uint8_t *buf, size_t cap, const uint8_t **pl,
		      uint32_t *plen, mono_ns until)
{
	ssize_t total;
	uint32_t type;

	if (!recv_full(fd, buf, SRV_FRAME_HDR_BYTES, until))
		return -1;
	total = srv_frame_total(cd, buf);
	if (total < (ssize_t)SRV_FRAME_HDR_BYTES || (size_t)total > cap ||
	    !recv_full(fd, buf + SRV_FRAME_HDR_BYTES, (size_t)total - SRV_FRAME_HDR_BYTES, until) ||
	    srv_frame_decode(cd, buf, (size_t)total, &type, pl, plen) < 0)
		return -1;
	return (int)type;
}

/*
 * Greet on fd and wait for the answer: true, with the session's codec for
 * our frames in tx, when it was accepted.
 */
static bool greet_session(int fd, struct srv_codec *tx)
{
	struct srv_greeting g = { .fsid = super.fsid, .client_rid = 77, .version = SRV_PROTO_VERSION };
	struct srv_greeting_wire w;
	struct srv_greeting_reply rep;
	uint8_t b[512];
	const uint8_t *pl;
	uint32_t plen;

	if (srv_nonce(g.nonce) < 0)
		return false;
	srv_greeting_encode(&g, &w);
	send_all(fd, b, frame(SRV_MSG_GREETING, &w, sizeof(w), b, sizeof(b)));
	if (recv_frame(&codec, fd, b, sizeof(b), &pl, &plen, mono_now() + 5 * NSEC_PER_SEC) !=
		    SRV_MSG_GREETING_REPLY ||
	    srv_greeting_reply_decode(pl, plen, &rep) < 0 || rep.status != SRV_GREET_OK)
		return false;
	return srv_codec_session(tx, &codec, true, g.nonce, rep.nonce) == 0;
}

static void *flood_main(void *arg)
{
	struct flooder *f = arg;
	static const uint8_t zeros[FLOOD_WRITE];
	mono_ns until = mono_now() + (mono_ns)FLOOD_DEADLINE_MS * NSEC_PER_MSEC;
	struct timeval to = { .tv_sec = 20 }; /* one send may wait this long */
	uint8_t *buf = malloc(SRV_FRAME_MAX_PAYLOAD + 256);

	if (buf == NULL) {
		f->failed = "out of memory";
		return NULL;
	}
	setsockopt(f->fd, SOL_SOCKET, SO_SNDTIMEO, &to, sizeof(to));
	for (int i = 0; i < f->writes; i++) {
		struct rpc_io io = { .ino = cpu_to_le64(1), .fh = cpu_to_le64(0xdead0000u + (uint64_t)i),
				     .size = cpu_to_le32(FLOOD_WRITE) };
		struct rpc_req q = { .req_id = (uint64_t)i + 1, .client_rid = f->rid,
				     .oldest_req_id = (uint64_t)i + 1, .op = RPC_WRITE,
				     .tail1_len = FLOOD_WRITE };
		struct rpc_req_hdr h;
		struct le32 groups[RPC_GROUPS_MAX];
		struct srv_frame_hdr fh;
		uint8_t tag[HMAC_SHA256_BYTES];
		struct iovec iov[5] = {
			{ &h, sizeof(h) }, { &io, sizeof(io) }, { (void *)zeros, FLOOD_WRITE },
		};
		ssize_t total;

		rpc_req_hdr_encode(&q, &h, groups);
		total = srv_frame_seal(&f->tx, SRV_MSG_REQUEST, iov, 3, &fh, tag);
		if (total < 0) {
			f->failed = "sealing a frame failed";
			break;
		}
		memmove(iov + 1, iov, 3 * sizeof(iov[0]));
		iov[0] = (struct iovec){ &fh, sizeof(fh) };
		iov[4] = (struct iovec){ tag, f->tx.auth ? sizeof(tag) : 0 };
		{
			struct msghdr m = { .msg_iov = iov, .msg_iovlen = 5 };
			ssize_t left = total;

			while (left > 0) {
				ssize_t n = sendmsg(f->fd, &m, MSG_NOSIGNAL);

				if (n <= 0 || mono_now() >= until) {
					f->failed = "the server stopped taking requests (send timed out)";
					goto out;
				}
				left -= n;
				while (m.msg_iovlen > 0 && (size_t)n >= m.msg_iov[0].iov_len) {
					n -= (ssize_t)m.msg_iov[0].iov_len;
					m.msg_iov++;
					m.msg_iovlen--;
				}
				if (m.msg_iovlen > 0) {
					m.msg_iov[0].iov_base = (uint8_t *)m.msg_iov[0].iov_base + n;
					m.msg_iov[0].iov_len -= (size_t)n;
				}
			}
		}
	}
	while (f->answered < f->writes) {
		const uint8_t *pl;
		uint32_t plen;
		struct rpc_reply r;

		if (recv_frame(&f->rx, f->fd, buf, SRV_FRAME_MAX_PAYLOAD + 256, &pl, &plen, until) !=
			    SRV_MSG_REPLY ||
		    rpc_reply_decode(pl, plen, &r) < 0 || r.op != RPC_WRITE || r.status == 0) {
			f->failed = "a reply did not come, or was not an error for a bad handle";
			break;
		}
		f->answered++;
	}
out:
	free(buf);
	return NULL;
}

/* A connection from the address from; -1 when it cannot be made. */
static int dial_from(const struct sockaddr_in *from)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && (bind(fd, (const struct sockaddr *)from, sizeof(*from)) < 0 ||
			connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int idle(int conns, int seconds, const char *from_addr)
{
	struct sockaddr_in from = { .sin_family = AF_INET };
	struct rlimit rl;
	struct pollfd *p = calloc((size_t)conns, sizeof(*p));
	mono_ns end = mono_now() + (mono_ns)seconds * NSEC_PER_SEC;
	long closed = 0, failed = 0;
	int open = 0;

	if (p == NULL || inet_pton(AF_INET, from_addr, &from.sin_addr) != 1) {
		fprintf(stderr, "fusefs-hostile: --idle: bad address %s\n", from_addr);
		free(p);
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 64) {
		rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)conns + 64);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (int i = 0; i < conns; i++)
		p[i] = (struct pollfd){ .fd = -1 };
	while (mono_now() < end) {
		/* (re)dial what is not open, then wait for the server to close some */
		for (int i = 0; i < conns; i++) {
			if (p[i].fd >= 0)
				continue;
			p[i].fd = dial_from(&from);
			p[i].events = POLLIN | POLLRDHUP;
			if (p[i].fd < 0)
				failed++;
			else
				open++;
		}
		if (poll(p, (nfds_t)conns, 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < conns; i++)
			if (p[i].fd >= 0 && p[i].revents != 0) {
				close(p[i].fd);
				p[i].fd = -1;
				closed++;
			}
	}
	for (int i = 0; i < conns; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	free(p);
	printf("%d connections that never greet from %s for %d s: %d dialled, %ld closed by the "
	       "server, %ld dials failed\n", conns, from_addr, seconds, open, closed, failed);
	return 0;
}

static int flood(const char *host, const char *port, int conns, int writes)
{
	struct flooder *fs = calloc((size_t)conns, sizeof(*fs));
	mono_ns t0 = mono_now();
	int failures = 0, answered = 0;

	if (fs == NULL)
		return 1;
	for (int i = 0; i < conns; i++) {
		static uint8_t g[512];
		struct srv_greeting gr = { .fsid = super.fsid, .client_rid = 5000 + (uint64_t)i,
					   .version = SRV_PROTO_VERSION };
		struct srv_greeting_wire w;
		struct srv_greeting_reply rep;
		const uint8_t *pl;
		uint32_t plen;
		size_t n;

		fs[i].fd = dial();
		fs[i].rid = gr.client_rid;
		fs[i].writes = writes;
		if (fs[i].fd < 0 || srv_nonce(gr.nonce) < 0) {
			printf("FAIL: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
			return 1;
		}
		srv_greeting_encode(&gr, &w);
		n = frame(SRV_MSG_GREETING, &w, sizeof(w), g, sizeof(g));
		send_all(fs[i].fd, g, n);
		if (recv_frame(&codec, fs[i].fd, g, sizeof(g), &pl, &plen,
			       mono_now() + 5 * NSEC_PER_SEC) != SRV_MSG_GREETING_REPLY ||
		    srv_greeting_reply_decode(pl, plen, &rep) < 0 || rep.status != SRV_GREET_OK) {
			printf("FAIL: connection %d: no greeting reply, or a refusal\n", i);
			return 1;
		}
		if (srv_codec_session(&fs[i].tx, &codec, true, gr.nonce, rep.nonce) < 0 ||
		    srv_codec_session(&fs[i].rx, &codec, false, gr.nonce, rep.nonce) < 0)
			return 1;
	}
	for (int i = 0; i < conns; i++)
		if (pthread_create(&fs[i].thread, NULL, flood_main, &fs[i]) != 0)
			return 1;
	for (int i = 0; i < conns; i++) {
		pthread_join(fs[i].thread, NULL);
		answered += fs[i].answered;
		if (fs[i].failed != NULL) {
			printf("FAIL: connection %d: %s after %d of %d replies\n", i, fs[i].failed,
			       fs[i].answered, writes);
			failures++;
		}
		close(fs[i].fd);
		srv_codec_free(&fs[i].tx);
		srv_codec_free(&fs[i].rx);
	}
	free(fs);
	printf("fusefs-hostile --flood: %d connections x %d 1 MiB writes, %d answered in %.1f s\n",
	       conns, writes, answered, (double)(mono_now() - t0) / 1e9);
	return failures ? 1 : 0;
}

/* --udp: forged and random quorum datagrams at every addr:port for secs. */
static int udp_flood(char *addrs, int port, int secs)
{
	struct sockaddr_in to[FUSEFS_QUORUM_MAX_SLOTS];
	struct bd_super forged = super;
	struct quorum_codec qc;
	uint8_t dgram[64][QUORUM_MSG_WIRE_BYTES];
	struct mmsghdr mm[64];
	struct iovec iov[64];
	uint64_t sent = 0;
	mono_ns end = mono_now() + (mono_ns)secs * NSEC_PER_SEC;
	int n = 0, fd = socket(AF_INET, SOCK_DGRAM, 0);

	for (char *a = strtok(addrs, ","); a != NULL && n < FUSEFS_QUORUM_MAX_SLOTS;
	     a = strtok(NULL, ",")) {
		to[n] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		if (inet_pton(AF_INET, a, &to[n].sin_addr) != 1) {
			fprintf(stderr, "fusefs-hostile: bad address %s\n", a);
			return 2;
		}
		n++;
	}
	rng ^= (uint64_t)mono_now(); /* (a secret nobody has) */
	for (size_t i = 0; i < sizeof(forged.cluster_secret); i++)
		forged.cluster_secret[i] = (uint8_t)prng_next(&rng);
	if (fd < 0 || n == 0 || quorum_codec_init(&qc, &forged, 0, prng_next(&rng), 0) < 0)
		return 1;
	for (int i = 0; i < 64; i++) {
		struct quorum_msg m = { .type = QMSG_HEARTBEAT, .from = (uint8_t)(i % 3),
					.to = (uint8_t)((i + 1) % 3), .term = 1000000 + (uint64_t)i,
					.timeout_ms = 2000 };

		if (i % 2 == 0 || quorum_msg_encode(&qc, &m, dgram[i], sizeof(dgram[i])) < 0)
			for (size_t k = 0; k < sizeof(dgram[i]); k++)
				dgram[i][k] = (uint8_t)prng_next(&rng);
		iov[i] = (struct iovec){ dgram[i], sizeof(dgram[i]) };
	}
	while (mono_now() < end) {
		for (int t = 0; t < n; t++) {
			int got;

			for (int i = 0; i < 64; i++)
				mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &to[t],
								       .msg_namelen = sizeof(to[t]),
								       .msg_iov = &iov[i],
								       .msg_iovlen = 1 } };
			got = sendmmsg(fd, mm, 64, 0);
			if (got > 0)
				sent += (uint64_t)got;
		}
	}
	quorum_codec_free(&qc);
	close(fd);
	printf("%llu datagrams sent in %d s\n", (unsigned long long)sent, secs);
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[SRV_FRAME_MAX_PAYLOAD + 256];
	struct bd_dev *dev;
	char why[512];
	int rounds, failures = 0, attempts = 0;

	bool flooding = argc == 7 && strcmp(argv[4], "--flood") == 0;
	bool idling = argc == 8 && strcmp(argv[4], "--idle") == 0;
	bool udp = argc == 6 && strcmp(argv[4], "--udp") == 0;

	if (argc != 5 && !flooding && !idling && !udp) {
		fprintf(stderr, "usage: fusefs-hostile DEVICE ADDR PORT ROUNDS\n"
				"       fusefs-hostile DEVICE ADDR PORT --flood CONNS WRITES\n"
				"       fusefs-hostile DEVICE ADDR PORT --idle CONNS SECONDS FROM\n"
				"       fusefs-hostile DEVICE ADDR,ADDR... PORT --udp SECONDS\n");
		return 2;
	}
	if (bd_open(argv[1], false, &dev, why, sizeof(why)) < 0 ||
	    bd_read_super(dev, &super, why, sizeof(why)) < 0) {
		fprintf(stderr, "fusefs-hostile: %s\n", why);
		return 1;
	}
	bd_close(dev);
	if (udp)
		return udp_flood(argv[2], atoi(argv[3]), atoi(argv[5]));
	if (srv_codec_init(&codec, &super) < 0)
		return 1;
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(argv[3]));
	if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
		fprintf(stderr, "fusefs-hostile: bad address %s\n", argv[2]);
		return 2;
	}
	if (idling) {
		int ret = idle(atoi(argv[5]), atoi(argv[6]), argv[7]);

		srv_codec_free(&codec);
		return ret;
	}
	if (flooding) {
		int ret = flood(argv[2], argv[3], atoi(argv[5]), atoi(argv[6]));

		srv_codec_free(&codec);
		return ret;
	}
	rounds = atoi(argv[4]);
	{
		/* a peer that connects and says nothing goes once the greeting's time is up */
		int fd = dial();
		mono_ns t0 = mono_now();
		bool closed = false;

		if (fd < 0) {
			printf("FAIL: cannot connect to %s:%s: %s\n", argv[2], argv[3], strerror(errno));
			return 1;
		}
		for (int i = 0; i < 100 && !closed; i++) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			uint8_t b;

			closed = poll(&p, 1, 100) > 0 && recv(fd, &b, 1, 0) <= 0;
		}
		close(fd);
		attempts++;
		if (!closed) {
			printf("FAIL: silence: the server kept the connection open for 10 s\n");
			failures++;
		} else {
			printf("  silence: closed by the server after %.1f s\n",
			       (double)(mono_now() - t0) / 1e9);
		}
	}
	for (int r = 0; r < rounds; r++) {
		for (int kind = 0; kind < 9; kind++) {
			int fd = dial(), frames;
			struct srv_codec tx;
			size_t n = 0;
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
				what = "a greeting, then a malformed request (authentic)";
				if (greet_session(fd, &tx)) {
					uint8_t bad[200];

					for (size_t i = 0; i < sizeof(bad); i++)
						bad[i] = (uint8_t)prng_next(&rng);
					ssize_t len = srv_frame_encode(&tx, SRV_MSG_REQUEST, bad,
								       40 + (uint32_t)prng_below(&rng, 160),
								       buf, sizeof(buf));

					send_all(fd, buf, len > 0 ? (size_t)len : 0);
					srv_codec_free(&tx);
				}
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
				what = "a greeting, then a request that lies about its tails (authentic)";
				if (greet_session(fd, &tx)) {
					struct rpc_req q = { .req_id = 1, .client_rid = 77, .op = RPC_LOOKUP,
							     .tail1_len = 1000000 };
					struct rpc_req_hdr h;
					struct le32 groups[RPC_GROUPS_MAX];
					uint8_t pl[sizeof(h) + 8 + 4];

					rpc_req_hdr_encode(&q, &h, groups);
					memcpy(pl, &h, sizeof(h));
					memset(pl + sizeof(h), 0, 12);
					ssize_t len = srv_frame_encode(&tx, SRV_MSG_REQUEST, pl, sizeof(pl),
								       buf, sizeof(buf));

					send_all(fd, buf, len > 0 ? (size_t)len : 0);
					srv_codec_free(&tx);
				}
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
