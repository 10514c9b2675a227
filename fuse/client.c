/*
 * client.c - the client side of the server protocol (see client.h).
 *
 * Locks: c->lock guards the connection state and the slots; c->send_lock
 * serializes frames onto the socket and the send codec.  Lock order:
 * send_lock, then lock.  The receiver thread takes only lock.
 */
#include "fuse/client.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/sockaddr.h"
#include "common/thread.h"
#include "quorum/fence.h"
#include "server/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char *const SUB = "client";

#define GREET_TIMEOUT_MS 1000
#define RETRY_MS 100
#define SLOT_BITS 8
#define SLOTS (1u << SLOT_BITS)
/* a call whose reply never comes gives up after this (the connection is then reset) */
#define CALL_TIMEOUT_MS 120000
/* a frame the server does not take in this long drops the connection */
#define SEND_TIMEOUT_MS 30000

struct slot {
	bool busy;
	bool sent;
	bool done;
	bool abandoned;      /* its caller gave up: drop the reply, free the slot */
	uint64_t req_id;
	uint64_t gen;        /* the connection it went out on */
	mono_ns sent_at;
	struct rpc_call *call;
	int result;
	pthread_cond_t cond;
};

struct rpc_client {
	struct rpc_client_config cfg;
	struct bd_super super;
	pthread_mutex_t lock;
	pthread_cond_t state_cond;   /* a connection came or went; a slot freed */
	int fd;                      /* -1: not connected */
	uint64_t gen;                /* bumped with every connection */
	bool connecting;
	bool stopping;
	pthread_t rx;
	bool rx_joinable;
	pthread_t watch;
	bool watch_started;
	pthread_cond_t watch_cond;
	int server_slot;             /* the server connected to, and its term */
	uint64_t server_term;
	pthread_mutex_t send_lock;
	struct srv_codec tx;
	struct srv_codec rx_codec;
	uint64_t seq;
	uint32_t free_slots;
	struct slot slots[SLOTS];
	struct rpc_client_stats stats;
	mono_ns logged_down_at;
};

/* ---- connecting ---- */

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

/*
 * Connect to addr and greet as rid.  On 0 the reply is in r and, when fd
 * is not NULL and the server serves, the connection stays open in *fd
 * (blocking, ready for requests).  Otherwise -errno.
 */
static int greet(const struct bd_super *super, uint64_t rid, const struct bd_addr *addr,
		 struct srv_greeting_reply *r, int *fd_out)
{
	mono_ns deadline = mono_now() + GREET_TIMEOUT_MS * NSEC_PER_MSEC;
	uint8_t frame[SRV_FRAME_HDR_BYTES + sizeof(struct srv_greeting_reply_wire) + HMAC_SHA256_BYTES];
	struct srv_greeting g = { .fsid = super->fsid, .client_rid = rid, .version = SRV_PROTO_VERSION };
	struct srv_greeting_wire gw;
	struct sockaddr_storage ss;
	struct srv_codec codec;
	const uint8_t *pl;
	uint32_t type, plen;
	socklen_t sslen;
	ssize_t n;
	int fd = -1, ret, err = 0, one = 1;

	ret = srv_codec_init(&codec, super);
	if (ret < 0)
		return ret;
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
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
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
	if (n < 0 || type != SRV_MSG_GREETING_REPLY || srv_greeting_reply_decode(pl, plen, r) < 0) {
		ret = n == -EPERM ? -EPERM : -EBADMSG;
		goto out;
	}
	if (fd_out != NULL && r->status == SRV_GREET_OK && r->version == SRV_PROTO_VERSION) {
		int idle = 5, intvl = 1, cnt = 5;
		struct timeval send_to = { .tv_sec = SEND_TIMEOUT_MS / 1000 };

		/* a server host that vanishes without a FIN is noticed within ~10 s */
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		/* a send is bounded too: a server that stops reading for this long is lost */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_to, sizeof(send_to));
		*fd_out = fd;
		fd = -1;
	}
out:
	if (fd >= 0)
		close(fd);
	srv_codec_free(&codec);
	return ret;
}

/* The server the blocks name: its slot and term, or -ENOENT. */
static int find_server(struct bd_dev *dev, const struct bd_super *super, uint64_t *term)
{
	struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS];
	char why[200];
	uint16_t ok = bd_read_qblocks(dev, super, blocks, why, sizeof(why));
	int slot = quorum_find_leader(blocks, ok, term);

	return slot < 0 ? -ENOENT : slot;
}

int rpc_server_text(struct bd_dev *dev, const struct bd_super *super, uint64_t rid, char *buf,
		    size_t len)
{
	struct srv_greeting_reply r;
	char addr[BD_ADDR_STRLEN];
	uint64_t term;
	int slot, ret, n;

	slot = find_server(dev, super, &term);
	if (slot < 0)
		return snprintf(buf, len, "none\n");
	bd_addr_format(&super->slots[slot], addr, sizeof(addr));
	ret = greet(super, rid, &super->slots[slot], &r, NULL);
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

/* One attempt: the server the blocks name, greeted.  0 with *fd, or -errno and why. */
static int connect_once(struct rpc_client *c, int *fd, int *slot_out, uint64_t *term_out,
			char *why, size_t whylen)
{
	struct srv_greeting_reply r;
	char addr[BD_ADDR_STRLEN];
	uint64_t term;
	int slot, ret;

	slot = find_server(c->cfg.dev, &c->super, &term);
	if (slot < 0) {
		snprintf(why, whylen, "the quorum blocks name no server (no leader elected yet)");
		return -EHOSTDOWN;
	}
	bd_addr_format(&c->super.slots[slot], addr, sizeof(addr));
	ret = greet(&c->super, c->cfg.rid, &c->super.slots[slot], &r, fd);
	if (ret < 0) {
		snprintf(why, whylen, "server %s (slot %d, term %" PRIu64 ") unreachable: %s", addr,
			 slot, term, errstr(ret));
		return -EHOSTDOWN;
	}
	if (r.status != SRV_GREET_OK) {
		snprintf(why, whylen, "server %s (slot %d, term %" PRIu64 ") %s", addr, slot, r.term,
			 r.status == SRV_GREET_WRONG_FS ? "serves another filesystem" :
			 "is not serving yet");
		return r.status == SRV_GREET_WRONG_FS ? -EINVAL : -EHOSTDOWN;
	}
	if (r.version != SRV_PROTO_VERSION) {
		snprintf(why, whylen, "server %s speaks protocol %u, we speak %d", addr, r.version,
			 SRV_PROTO_VERSION);
		return -EPROTO;
	}
	*slot_out = slot;
	*term_out = term;
	return 0;
}

/* ---- the receiver ---- */

struct rx_arg {
	struct rpc_client *c;
	int fd;
	uint64_t gen;
};

/* The connection of generation gen is gone: fail what was sent on it. */
static void slot_free_locked(struct rpc_client *c, struct slot *s);

static void conn_lost(struct rpc_client *c, uint64_t gen, const char *why)
{
	pthread_mutex_lock(&c->lock);
	if (c->gen == gen && c->fd >= 0) {
		if (!c->stopping)
			log_warn(SUB, "lost the connection to the server: %s", why);
		shutdown(c->fd, SHUT_RDWR);
		c->fd = -1; /* closed by its receiver, once no send can be using it */
		c->stats.disconnects++;
		pthread_cond_broadcast(&c->state_cond);
	}
	for (uint32_t i = 0; i < SLOTS; i++) {
		struct slot *s = &c->slots[i];

		if (s->busy && s->sent && s->abandoned && s->gen == gen) {
			slot_free_locked(c, s); /* its caller gave up; no reply comes now */
		} else if (s->busy && s->sent && !s->done && s->gen == gen) {
			s->done = true;
			s->result = -EIO;
			c->stats.in_flight_failed++;
			pthread_cond_signal(&s->cond);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

static void slot_free_locked(struct rpc_client *c, struct slot *s)
{
	s->busy = s->sent = s->done = s->abandoned = false;
	s->call = NULL;
	c->free_slots++;
	pthread_cond_broadcast(&c->state_cond);
}

/* Hand a reply to the call waiting for it. */
static void deliver(struct rpc_client *c, const struct rpc_reply *r, uint64_t gen)
{
	struct slot *s = &c->slots[r->req_id & (SLOTS - 1)];
	struct rpc_call *call;
	uint32_t fixed = rpc_op_reply_fixed_bytes(r->op);

	pthread_mutex_lock(&c->lock);
	if (!s->busy || !s->sent || s->done || s->req_id != r->req_id || s->gen != gen) {
		c->stats.bad_replies++;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (s->abandoned) {
		slot_free_locked(c, s);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	call = s->call;
	if (r->op != call->op) {
		s->result = -EPROTO;
	} else if (r->status != 0) {
		s->result = -(int)r->status;
	} else if (r->tail_len > call->reply_tail_cap) {
		s->result = -EPROTO;
	} else {
		if (fixed > 0 && call->reply_fixed != NULL)
			memcpy(call->reply_fixed, r->fixed, fixed);
		if (r->tail_len > 0)
			memcpy(call->reply_tail, r->tail, r->tail_len);
		call->reply_tail_len = r->tail_len;
		s->result = 0;
	}
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&c->lock);
}

/*
 * The receiver: one recv takes whatever has arrived (several replies at
 * once under load), every whole frame in the buffer is handed over, and
 * what is left of a frame moves to the front for the next recv.
 */
static void *rx_main(void *arg)
{
	struct rx_arg a = *(struct rx_arg *)arg;
	struct rpc_client *c = a.c;
	size_t cap = srv_frame_bytes(&c->rx_codec, SRV_FRAME_MAX_PAYLOAD) + 65536;
	uint8_t *buf = malloc(cap);
	const char *why = "out of memory";
	size_t have = 0;

	free(arg);
	while (buf != NULL) {
		size_t at = 0;
		ssize_t n = recv(a.fd, buf + have, cap - have, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			why = n == 0 ? "the server closed it" : strerror(errno);
			break;
		}
		have += (size_t)n;
		while (have - at >= SRV_FRAME_HDR_BYTES) {
			ssize_t total = srv_frame_total(&c->rx_codec, buf + at);
			const uint8_t *pl;
			uint32_t type, plen;
			struct rpc_reply r;

			if (total < 0 || (size_t)total > cap) {
				why = "a malformed frame";
				goto out;
			}
			if (have - at < (size_t)total)
				break;
			if (srv_frame_decode(&c->rx_codec, buf + at, (size_t)total, &type, &pl, &plen) < 0 ||
			    type != SRV_MSG_REPLY || rpc_reply_decode(pl, plen, &r) < 0) {
				why = "a frame that failed its checks";
				goto out;
			}
			deliver(c, &r, a.gen);
			at += (size_t)total;
		}
		if (at > 0) {
			memmove(buf, buf + at, have - at);
			have -= at;
		}
	}
out:
	free(buf);
	conn_lost(c, a.gen, why);
	pthread_mutex_lock(&c->send_lock); /* no send is writing to it any more */
	close(a.fd);
	pthread_mutex_unlock(&c->send_lock);
	return NULL;
}

/*
 * Make sure there is a connection, waiting until deadline.  Called with
 * the lock held; returns with it held.  0 with the generation, or -errno.
 */
static int ensure_connected(struct rpc_client *c, mono_ns deadline, uint64_t *gen, char *why,
			    size_t whylen)
{
	int ret = -EHOSTDOWN;

	if (whylen > 0)
		why[0] = '\0';
	while (c->fd < 0) {
		struct timespec ts;
		uint64_t term = 0;
		int fd = -1, slot = -1;

		if (c->stopping)
			return -ESHUTDOWN;
		if (mono_now() >= deadline)
			goto down;
		if (c->connecting) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += RETRY_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->state_cond, &c->lock, &ts);
			continue;
		}
		c->connecting = true;
		if (c->rx_joinable) {
			pthread_t t = c->rx;

			c->rx_joinable = false;
			pthread_mutex_unlock(&c->lock);
			pthread_join(t, NULL);
			pthread_mutex_lock(&c->lock);
		}
		pthread_mutex_unlock(&c->lock);
		ret = connect_once(c, &fd, &slot, &term, why, whylen);
		if (ret < 0 && ret != -EINVAL && ret != -EPROTO) {
			struct timespec pause = { 0, RETRY_MS * 1000000L };

			nanosleep(&pause, NULL);
		}
		pthread_mutex_lock(&c->lock);
		c->connecting = false;
		pthread_cond_broadcast(&c->state_cond);
		if (ret == -EINVAL || ret == -EPROTO)
			goto fail;
		if (ret == 0) {
			struct rx_arg *a = malloc(sizeof(*a));

			c->gen++;
			if (a == NULL || (*a = (struct rx_arg){ c, fd, c->gen },
					  thread_start(&c->rx, rx_main, a) < 0)) {
				free(a);
				close(fd);
				ret = -ENOMEM;
				goto fail;
			}
			c->rx_joinable = true;
			c->fd = fd;
			c->server_slot = slot;
			c->server_term = term;
			c->stats.connects++;
			log_info(SUB, "connected to the server");
		}
	}
	*gen = c->gen;
	return 0;
down:
	ret = -EHOSTDOWN;
fail:
	if (mono_now() - c->logged_down_at > 5 * NSEC_PER_SEC) {
		log_warn(SUB, "no server answered within %u ms: %s", c->cfg.wait_ms,
			 why[0] ? why : "still connecting");
		c->logged_down_at = mono_now();
	}
	return ret;
}

int rpc_client_connect(struct rpc_client *c, char *why, size_t whylen)
{
	mono_ns deadline = mono_now() + (int64_t)c->cfg.wait_ms * NSEC_PER_MSEC;
	uint64_t gen;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = ensure_connected(c, deadline, &gen, why, whylen);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* ---- calls ---- */

static int send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* The oldest request id still waiting for its reply (or next_id). */
static uint64_t oldest_locked(struct rpc_client *c, uint64_t next_id)
{
	uint64_t oldest = next_id;

	for (uint32_t i = 0; i < SLOTS; i++)
		if (c->slots[i].busy && c->slots[i].req_id < oldest)
			oldest = c->slots[i].req_id;
	return oldest;
}

static int send_call(struct rpc_client *c, struct slot *s, uint64_t gen)
{
	struct rpc_call *call = s->call;
	struct rpc_req r = {
		.req_id = s->req_id, .client_rid = c->cfg.rid, .op = call->op, .uid = call->uid,
		.gid = call->gid, .pid = call->pid, .ngroups = MIN(call->ngroups, RPC_GROUPS_MAX),
		.tail1_len = call->tail1_len, .tail2_len = call->tail2_len,
	};
	struct le32 groups[RPC_GROUPS_MAX];
	struct rpc_req_hdr h;
	struct srv_frame_hdr fh;
	uint8_t tag[HMAC_SHA256_BYTES];
	struct iovec iov[7];
	ssize_t n;
	int fd, ret;

	for (uint32_t i = 0; i < r.ngroups; i++)
		r.groups[i] = call->groups[i];
	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	fd = c->gen == gen ? c->fd : -1;
	if (fd < 0) {
		/* the connection went before a byte of this call left: try the next one */
		pthread_mutex_unlock(&c->lock);
		ret = -EAGAIN;
		goto out;
	}
	r.oldest_req_id = oldest_locked(c, s->req_id);
	s->gen = gen;
	s->sent = true; /* from here a lost connection fails it */
	s->sent_at = mono_now();
	pthread_mutex_unlock(&c->lock);
	rpc_req_hdr_encode(&r, &h, groups);
	iov[1] = (struct iovec){ &h, sizeof(h) };
	iov[2] = (struct iovec){ groups, 4 * r.ngroups };
	iov[3] = (struct iovec){ (void *)call->fixed, rpc_op_fixed_bytes(call->op) };
	iov[4] = (struct iovec){ (void *)call->tail1, call->tail1_len };
	iov[5] = (struct iovec){ (void *)call->tail2, call->tail2_len };
	n = srv_frame_seal(&c->tx, SRV_MSG_REQUEST, iov + 1, 5, &fh, tag);
	if (n < 0) {
		ret = (int)n;
		goto out;
	}
	iov[0] = (struct iovec){ &fh, sizeof(fh) };
	iov[6] = (struct iovec){ tag, c->tx.auth ? sizeof(tag) : 0 };
	ret = send_all(fd, iov, 7);
	if (ret < 0)
		shutdown(fd, SHUT_RDWR); /* the receiver sees it and fails what is in flight */
out:
	pthread_mutex_unlock(&c->send_lock);
	return ret;
}

int rpc_client_call(struct rpc_client *c, struct rpc_call *call)
{
	mono_ns deadline = mono_now() +
			   (int64_t)(call->wait_ms ? call->wait_ms : c->cfg.wait_ms) * NSEC_PER_MSEC;
	struct slot *s = NULL;
	struct timespec until;
	char why[256];
	uint64_t gen;
	int ret;

	if (!rpc_op_valid(call->op))
		return -EINVAL;
	call->reply_tail_len = 0;
	pthread_mutex_lock(&c->lock);
	c->stats.calls++;
	/* a slot (bounded: at most SLOTS calls in flight) */
	while (c->free_slots == 0 && !c->stopping && mono_now() < deadline) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&c->state_cond, &c->lock, &until);
	}
	if (c->stopping || c->free_slots == 0) {
		pthread_mutex_unlock(&c->lock);
		return c->stopping ? -ESHUTDOWN : -EHOSTDOWN;
	}
	for (uint32_t i = 0; i < SLOTS; i++)
		if (!c->slots[i].busy) {
			s = &c->slots[i];
			break;
		}
	c->free_slots--;
	if (SLOTS - c->free_slots > c->stats.max_in_flight)
		c->stats.max_in_flight = SLOTS - c->free_slots;
	s->busy = true;
	s->sent = s->done = s->abandoned = false;
	s->call = call;
	s->req_id = (++c->seq << SLOT_BITS) | (uint64_t)(s - c->slots);
	for (int tries = 0;; tries++) {
		ret = ensure_connected(c, deadline, &gen, why, sizeof(why));
		if (ret < 0) {
			slot_free_locked(c, s);
			pthread_mutex_unlock(&c->lock);
			return ret;
		}
		pthread_mutex_unlock(&c->lock);
		ret = send_call(c, s, gen);
		pthread_mutex_lock(&c->lock);
		/* never sent (a reconnect raced us): a bounded number of new tries */
		if (ret != -EAGAIN || tries >= 8 || mono_now() >= deadline)
			break;
	}
	if (ret == -EAGAIN)
		ret = -EIO;
	if (ret < 0 && !s->done) {
		s->done = true;
		s->result = -EIO;
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += CALL_TIMEOUT_MS / 1000;
	while (!s->done) {
		if (pthread_cond_timedwait(&s->cond, &c->lock, &until) == ETIMEDOUT && !s->done) {
			/* no reply in minutes: give up; the slot frees when it comes */
			uint64_t sgen = s->gen;

			log_err(SUB, "%s: no reply after %d s; failing it and resetting the connection",
				rpc_op_name(call->op), CALL_TIMEOUT_MS / 1000);
			s->abandoned = true;
			pthread_mutex_unlock(&c->lock);
			conn_lost(c, sgen, "a call had no reply"); /* frees the slot */
			return -ETIMEDOUT;
		}
	}
	ret = s->result;
	slot_free_locked(c, s);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* ---- the watchdog ---- */

/*
 * A server that was paused (SIGSTOP, a VM stall) keeps its connections
 * open: its kernel still answers, so nothing breaks by itself while the
 * cluster elects another.  While a call has waited more than STALL_MS,
 * the watchdog reads the quorum blocks every WATCH_MS, and when they name
 * another server than ours it drops the connection (the calls on it fail,
 * later ones connect to the new server).
 */
#define WATCH_MS 500
#define STALL_MS 1000

static void *watch_main(void *arg)
{
	struct rpc_client *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct timespec until;
		bool stalled = false;
		mono_ns now = mono_now();
		uint64_t gen = c->gen, term = 0;
		int slot;

		for (uint32_t i = 0; c->fd >= 0 && i < SLOTS && !stalled; i++)
			stalled = c->slots[i].busy && c->slots[i].sent && !c->slots[i].done &&
				  c->slots[i].gen == gen && now - c->slots[i].sent_at > STALL_MS * NSEC_PER_MSEC;
		if (stalled) {
			int our_slot = c->server_slot;
			uint64_t our_term = c->server_term;

			pthread_mutex_unlock(&c->lock);
			slot = find_server(c->cfg.dev, &c->super, &term);
			if (slot >= 0 && (slot != our_slot || term != our_term)) {
				char why[128];

				snprintf(why, sizeof(why), "the quorum blocks name a newer server (slot %d, "
					 "term %" PRIu64 ")", slot, term);
				conn_lost(c, gen, why);
			}
			pthread_mutex_lock(&c->lock);
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += WATCH_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->watch_cond, &c->lock, &until);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- set up and tear down ---- */

int rpc_client_create(const struct rpc_client_config *cfg, struct rpc_client **out)
{
	struct rpc_client *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	int ret;

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	c->cfg = *cfg;
	c->super = *cfg->super;
	c->cfg.super = &c->super;
	c->fd = -1;
	c->free_slots = SLOTS;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_cond_init(&c->state_cond, &ca);
	pthread_cond_init(&c->watch_cond, &ca);
	for (uint32_t i = 0; i < SLOTS; i++)
		pthread_cond_init(&c->slots[i].cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = srv_codec_init(&c->tx, &c->super);
	if (ret == 0)
		ret = srv_codec_init(&c->rx_codec, &c->super);
	if (ret == 0) {
		ret = thread_start(&c->watch, watch_main, c);
		c->watch_started = ret == 0;
	}
	if (ret < 0) {
		rpc_client_destroy(c);
		return ret;
	}
	*out = c;
	return 0;
}

void rpc_client_destroy(struct rpc_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	pthread_cond_broadcast(&c->state_cond);
	pthread_cond_broadcast(&c->watch_cond);
	pthread_mutex_unlock(&c->lock);
	if (c->watch_started)
		pthread_join(c->watch, NULL);
	if (c->rx_joinable)
		pthread_join(c->rx, NULL); /* it closes the connection */
	srv_codec_free(&c->tx);
	srv_codec_free(&c->rx_codec);
	for (uint32_t i = 0; i < SLOTS; i++)
		pthread_cond_destroy(&c->slots[i].cond);
	pthread_cond_destroy(&c->state_cond);
	pthread_cond_destroy(&c->watch_cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->send_lock);
	free(c);
}

void rpc_client_get_stats(struct rpc_client *c, struct rpc_client_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}
