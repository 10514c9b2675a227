/*
 * net.c - the service's thread: the TCP listener and every client
 * connection on one epoll, and after each round of reading, the batch of
 * what arrived (exec.c).  See service.h.
 *
 * A connection must first send a GREETING; a reply with status OK (the
 * right filesystem, and our lease holds) attaches it, anything else is
 * answered and the connection closed.  After that only REQUEST frames are
 * taken.  A frame that fails its checks (magic, length, crc, HMAC) or a
 * request that fails rpc_req_decode closes that one connection with a log
 * line and a counter; nothing else is affected.
 *
 * Locks: svc->lock guards the request queue, every connection's output
 * queue and accounting, and the counters.  The executor takes it to hand
 * in replies; the net thread to take them out.
 */
#include "server/service.h"

#include "common/common.h"
#include "common/thread.h"
#include "quorum/agent.h"
#include "server/store.h"

#include <errno.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *const SUB = "server";

#define IN_START (64u << 10)
/* a greeting frame, with room for its tag */
#define GREETING_FRAME_MAX (SRV_FRAME_HDR_BYTES + sizeof(struct srv_greeting_wire) + 64)
/* a connection that has not greeted by then is closed */
#define GREET_TIMEOUT_NS (5 * NSEC_PER_SEC)
#define EPOLL_BATCH 64

struct outbuf {
	struct outbuf *next;
	size_t len;
	size_t off;
	uint8_t data[];
};

struct conn {
	struct svc *svc;
	int fd;
	uint64_t id;
	uint64_t rid;
	char peer[64];
	bool greeted;
	bool closed;
	bool close_after_flush;
	bool reading;         /* EPOLLIN armed */
	bool writing;         /* EPOLLOUT armed */
	bool dirty;           /* on the svc's dirty list */
	mono_ns accepted_at;  /* a connection that does not greet in time goes */
	int refs;             /* the net thread's, plus one per request with the executor */
	uint8_t *in;
	size_t in_len;
	size_t in_cap;
	uint32_t inflight;
	size_t bytes;         /* of requests with the executor and replies not yet sent */
	struct outbuf *out_head, *out_tail;
	struct conn *next_dirty;
	struct conn *prev, *next; /* all connections */
};

/* The service; exec.c reaches its executor half through svc_exec_*. */
struct svc {
	struct svc_config cfg;
	struct bd_super super;
	pthread_mutex_t lock;
	struct svc_req *q_head, *q_tail;
	size_t q_bytes;
	uint32_t q_writes;      /* queued requests whose op may write */
	int epfd;
	int wake_fd;
	bool wake_pending;
	pthread_t net_thread;
	bool net_started;
	atomic_bool stopping;
	struct conn *conns;
	uint32_t nconns;
	uint64_t next_conn_id;
	struct conn *dirty;
	bool paused_global;     /* some connection stopped reading for SVC_MAX_BYTES */
	mono_ns greet_sweep_at; /* next look for connections that never greeted */
	uint64_t ctr[SVC_CTR_NR];
	struct srv_codec net_codec;
	struct srv_codec exec_codec;
	struct dispatch *disp;
};

/* ---- counters ---- */

void svc_count(struct svc *s, enum svc_counter c, uint64_t n)
{
	pthread_mutex_lock(&s->lock);
	s->ctr[c] += n;
	pthread_mutex_unlock(&s->lock);
}

void svc_count_max(struct svc *s, enum svc_counter c, uint64_t v)
{
	pthread_mutex_lock(&s->lock);
	if (v > s->ctr[c])
		s->ctr[c] = v;
	pthread_mutex_unlock(&s->lock);
}

void svc_get_counters(struct svc *s, uint64_t out[SVC_CTR_NR])
{
	pthread_mutex_lock(&s->lock);
	memcpy(out, s->ctr, sizeof(s->ctr));
	pthread_mutex_unlock(&s->lock);
}

bool svc_may_serve(struct svc *s)
{
	return !atomic_load(&s->stopping) &&
	       (s->cfg.agent == NULL || quorum_agent_may_serve(s->cfg.agent, s->cfg.term));
}

uint64_t net_conn_rid(const struct conn *c)
{
	return c->rid;
}

/* ---- connections ---- */

static void wake(struct svc *s)
{
	uint64_t one = 1;

	if (write(s->wake_fd, &one, sizeof(one)) != sizeof(one))
		log_debug(SUB, "wake: %s", strerror(errno));
}

static void conn_free_locked(struct svc *s, struct conn *c)
{
	struct outbuf *o = c->out_head;

	while (o != NULL) {
		struct outbuf *next = o->next;

		free(o);
		o = next;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	free(c->in);
	free(c);
}

void net_conn_put(struct svc *s, struct conn *c)
{
	pthread_mutex_lock(&s->lock);
	if (--c->refs == 0)
		conn_free_locked(s, c);
	pthread_mutex_unlock(&s->lock);
}

static void epoll_set(struct svc *s, struct conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	/* (a peer's half-close is news only while we read: armed alone it would fire on and on) */
	ev.events = (c->reading ? EPOLLIN | EPOLLRDHUP : 0) | (c->writing ? EPOLLOUT : 0);
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/*
 * Close a connection (net thread): no more reading or writing; the
 * executor learns of it in order, behind the requests it already has, so
 * it can release the connection's open files.
 */
static void conn_close(struct svc *s, struct conn *c, const char *why)
{
	struct svc_req *r;

	if (c->closed)
		return;
	if (why != NULL)
		log_warn(SUB, "term %" PRIu64 ": closing connection %" PRIu64 " from %s: %s",
			 s->cfg.term, c->id, c->peer, why);
	r = calloc(1, sizeof(*r));
	/* closed first, under the lock: the executor sends on c->fd only while it is not */
	pthread_mutex_lock(&s->lock);
	c->closed = true;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	s->ctr[SVC_conns_closed]++;
	if (r != NULL && c->greeted) {
		r->conn = c;
		r->conn_closed = true;
		c->refs++;
		if (s->q_tail)
			s->q_tail->next = r;
		else
			s->q_head = r;
		s->q_tail = r;
		r = NULL;
	}
	if (--c->refs == 0)
		conn_free_locked(s, c);
	pthread_mutex_unlock(&s->lock);
	free(r);
}

/* Queue bytes to send (net thread or executor, under the lock). */
static void out_append_locked(struct svc *s, struct conn *c, struct outbuf *o)
{
	o->next = NULL;
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->bytes += o->len;
	if (!c->dirty) {
		c->dirty = true;
		c->refs++; /* the dirty list's reference */
		c->next_dirty = s->dirty;
		s->dirty = c;
	}
}

/*
 * Whether a connection may hand the executor more requests: below its own
 * limits and the service's.  Called with the lock held.
 */
static bool conn_may_read_locked(struct svc *s, struct conn *c)
{
	if (c->close_after_flush || c->inflight >= CONN_MAX_INFLIGHT || c->bytes >= CONN_MAX_BYTES)
		return false;
	if (s->q_bytes >= SVC_MAX_BYTES) {
		s->paused_global = true; /* svc_resume_paused() looks again */
		return false;
	}
	return true;
}

static void conn_frames(struct svc *s, struct conn *c);
static void sock_keepalive(int fd);

/* Write what can be written now (net thread). */
static void conn_flush(struct svc *s, struct conn *c)
{
	pthread_mutex_lock(&s->lock);
	while (!c->closed && c->out_head != NULL) {
		struct outbuf *o = c->out_head;
		ssize_t n;

		pthread_mutex_unlock(&s->lock);
		n = send(c->fd, o->data + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		pthread_mutex_lock(&s->lock);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			pthread_mutex_unlock(&s->lock);
			conn_close(s, c, NULL); /* the peer went away */
			return;
		}
		o->off += (size_t)n;
		if (o->off < o->len)
			continue;
		c->out_head = o->next;
		if (c->out_head == NULL)
			c->out_tail = NULL;
		c->bytes -= o->len;
		free(o);
	}
	{
		bool want_out = c->out_head != NULL;
		bool want_in = conn_may_read_locked(s, c);
		bool done = c->close_after_flush && c->out_head == NULL;
		bool resumed = !c->closed && want_in && !c->reading;

		if (!c->closed && (want_out != c->writing || want_in != c->reading)) {
			c->writing = want_out;
			c->reading = want_in;
			epoll_set(s, c);
		}
		pthread_mutex_unlock(&s->lock);
		if (done)
			conn_close(s, c, NULL);
		else if (resumed && c->in_len > 0)
			conn_frames(s, c); /* frames already read raise no EPOLLIN */
	}
}

static struct outbuf *frame_out(struct srv_codec *codec, uint32_t type, const struct iovec *pieces,
				int n)
{
	struct srv_frame_hdr h;
	uint8_t tag[HMAC_SHA256_BYTES];
	ssize_t total = srv_frame_seal(codec, type, pieces, n, &h, tag);
	struct outbuf *o;
	size_t at;

	if (total < 0)
		return NULL;
	o = malloc(sizeof(*o) + (size_t)total);
	if (o == NULL)
		return NULL;
	o->len = (size_t)total;
	o->off = 0;
	memcpy(o->data, &h, sizeof(h));
	at = sizeof(h);
	for (int i = 0; i < n; i++) {
		if (pieces[i].iov_len == 0)
			continue;
		memcpy(o->data + at, pieces[i].iov_base, pieces[i].iov_len);
		at += pieces[i].iov_len;
	}
	if (codec->auth)
		memcpy(o->data + at, tag, sizeof(tag));
	return o;
}

void net_reply(struct svc *s, struct conn *c, const struct svc_req *r, struct svc_reply *reply)
{
	struct rpc_reply_hdr h = { .req_id = cpu_to_le64(r->req.req_id),
				   .status = cpu_to_le32(reply ? reply->status : 0),
				   .op = cpu_to_le32(r->req.op) };
	struct iovec pieces[3] = {
		{ &h, sizeof(h) },
		{ reply ? reply->fixed : NULL, reply && reply->status == 0 ? reply->fixed_len : 0 },
		{ reply ? reply->tail : NULL, reply && reply->status == 0 ? reply->tail_len : 0 },
	};
	struct outbuf *o = reply ? frame_out(&s->exec_codec, SRV_MSG_REPLY, pieces, 3) : NULL;
	bool need_wake = false;

	pthread_mutex_lock(&s->lock);
	c->inflight--;
	c->bytes -= r->budget;
	if (o != NULL && c->closed) {
		s->ctr[SVC_replies_dropped]++;
		free(o);
		o = NULL;
	} else if (reply != NULL && o == NULL) {
		s->ctr[SVC_replies_dropped]++;
	}
	/* nothing queued before it: straight onto the socket, no hop through the net thread */
	if (o != NULL && c->out_head == NULL) {
		ssize_t n = send(c->fd, o->data, o->len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n == (ssize_t)o->len) {
			free(o);
			o = NULL;
		} else if (n > 0) {
			o->off = (size_t)n;
		}
	}
	if (o != NULL)
		out_append_locked(s, c, o); /* the net thread writes the rest */
	/* the net thread re-arms reading once the connection is below its limits */
	if (!c->closed && !c->reading && !c->dirty) {
		c->dirty = true;
		c->refs++; /* the dirty list's reference */
		c->next_dirty = s->dirty;
		s->dirty = c;
	}
	if (s->dirty != NULL && !s->wake_pending) {
		s->wake_pending = true;
		need_wake = true;
	}
	pthread_mutex_unlock(&s->lock);
	if (need_wake)
		wake(s);
}

/* ---- frames in ---- */

static void send_greeting_reply(struct svc *s, struct conn *c, uint32_t status)
{
	struct srv_greeting_reply r = {
		.fsid = s->super.fsid, .server_rid = s->cfg.rid, .term = s->cfg.term,
		.slot = (uint32_t)s->cfg.slot, .status = status, .version = SRV_PROTO_VERSION,
	};
	struct srv_greeting_reply_wire w;
	struct iovec piece = { &w, sizeof(w) };
	struct outbuf *o;

	srv_greeting_reply_encode(&r, &w);
	o = frame_out(&s->net_codec, SRV_MSG_GREETING_REPLY, &piece, 1);
	if (o == NULL) {
		conn_close(s, c, "out of memory");
		return;
	}
	pthread_mutex_lock(&s->lock);
	out_append_locked(s, c, o);
	pthread_mutex_unlock(&s->lock);
}

static void on_greeting(struct svc *s, struct conn *c, const uint8_t *pl, uint32_t plen)
{
	struct srv_greeting g;
	uint32_t status;

	if (srv_greeting_decode(pl, plen, &g) < 0) {
		svc_count(s, SVC_bad_frames, 1);
		conn_close(s, c, "a malformed greeting");
		return;
	}
	if (g.fsid != s->super.fsid)
		status = SRV_GREET_WRONG_FS;
	else if (!svc_may_serve(s))
		status = SRV_GREET_NOT_SERVING;
	else
		status = SRV_GREET_OK;
	send_greeting_reply(s, c, status);
	if (status == SRV_GREET_OK && g.version == SRV_PROTO_VERSION && g.client_rid != 0) {
		c->greeted = true;
		c->rid = g.client_rid;
	} else {
		c->close_after_flush = true;
	}
}

/* The most a request's reply may take. */
static uint32_t reply_budget(const struct rpc_req *q)
{
	uint32_t base = (uint32_t)(SRV_FRAME_HDR_BYTES + sizeof(struct rpc_reply_hdr) +
				   sizeof(struct rpc_entry) + sizeof(struct rpc_opened) +
				   HMAC_SHA256_BYTES);

	switch (q->op) {
	case RPC_READ: {
		struct rpc_io io;

		memcpy(&io, q->fixed, sizeof(io));
		return base + MIN(le32_to_cpu(io.size), RPC_IO_MAX);
	}
	case RPC_READDIR: {
		struct rpc_readdir rd;

		memcpy(&rd, q->fixed, sizeof(rd));
		return base + MIN(le32_to_cpu(rd.size), RPC_READDIR_MAX);
	}
	case RPC_GETXATTR:
	case RPC_LISTXATTR: {
		struct rpc_xattr x;

		memcpy(&x, q->fixed, sizeof(x));
		return base + MIN(le32_to_cpu(x.size), RPC_XATTR_SIZE_MAX);
	}
	case RPC_READLINK:
		return base + RPC_PATH_MAX;
	default:
		return base;
	}
}

static void on_request(struct svc *s, struct conn *c, const uint8_t *pl, uint32_t plen)
{
	struct svc_req *r = malloc(sizeof(*r));
	uint8_t *copy = malloc(plen ? plen : 1);

	if (r == NULL || copy == NULL) {
		free(r);
		free(copy);
		conn_close(s, c, "out of memory");
		return;
	}
	memcpy(copy, pl, plen);
	memset(r, 0, sizeof(*r));
	if (rpc_req_decode(copy, plen, &r->req) < 0 || r->req.client_rid != c->rid) {
		free(r);
		free(copy);
		svc_count(s, SVC_bad_requests, 1);
		conn_close(s, c, "a request that fails its checks");
		return;
	}
	r->conn = c;
	r->payload = copy;
	r->payload_len = plen;
	r->budget = reply_budget(&r->req);
	pthread_mutex_lock(&s->lock);
	c->refs++;
	c->inflight++;
	c->bytes += plen + r->budget;
	s->q_bytes += plen;
	s->q_writes += rpc_op_writes(r->req.op);
	s->ctr[SVC_requests]++;
	if (s->q_tail)
		s->q_tail->next = r;
	else
		s->q_head = r;
	s->q_tail = r;
	pthread_mutex_unlock(&s->lock);
}

/* Take every whole frame out of the input buffer. */
static void conn_frames(struct svc *s, struct conn *c)
{
	size_t at = 0;

	while (!c->closed && !c->close_after_flush && c->in_len - at >= SRV_FRAME_HDR_BYTES) {
		ssize_t total = srv_frame_total(&s->net_codec, c->in + at), n;
		const uint8_t *pl;
		uint32_t type, plen;
		bool may;

		/* each frame counts against the limits: past them the rest waits in c->in */
		pthread_mutex_lock(&s->lock);
		may = conn_may_read_locked(s, c);
		if (!may && c->reading) {
			c->reading = false;
			epoll_set(s, c);
		}
		pthread_mutex_unlock(&s->lock);
		if (!may)
			break;

		if (total < 0) {
			svc_count(s, SVC_bad_frames, 1);
			conn_close(s, c, "a frame with a bad magic or an oversized length");
			return;
		}
		if (c->in_len - at < (size_t)total)
			break;
		n = srv_frame_decode(&s->net_codec, c->in + at, (size_t)total, &type, &pl, &plen);
		if (n < 0) {
			svc_count(s, n == -EPERM ? SVC_unauthenticated : SVC_bad_frames, 1);
			conn_close(s, c, n == -EPERM ? "a frame that fails authentication" :
				   "a frame that fails its crc");
			return;
		}
		if (!c->greeted && type == SRV_MSG_GREETING) {
			on_greeting(s, c, pl, plen);
		} else if (c->greeted && type == SRV_MSG_REQUEST) {
			on_request(s, c, pl, plen);
		} else {
			svc_count(s, SVC_bad_frames, 1);
			conn_close(s, c, "a frame of the wrong type");
			return;
		}
		at += (size_t)total;
	}
	if (c->closed)
		return;
	memmove(c->in, c->in + at, c->in_len - at);
	c->in_len -= at;
}

static void conn_read(struct svc *s, struct conn *c)
{
	for (int rounds = 0; rounds < 16 && !c->closed && c->reading; rounds++) {
		size_t want;
		ssize_t n;

		/* room for the frame being read, up to the largest frame */
		if (c->in_len >= SRV_FRAME_HDR_BYTES) {
			ssize_t total = srv_frame_total(&s->net_codec, c->in);

			/* before its greeting a peer gets no more room than a greeting takes */
			if (!c->greeted && total > (ssize_t)GREETING_FRAME_MAX) {
				svc_count(s, SVC_bad_frames, 1);
				conn_close(s, c, "a first frame larger than a greeting");
				return;
			}
			want = total > 0 ? (size_t)total : c->in_cap;
		} else {
			want = IN_START;
		}
		if (want > c->in_cap) {
			uint8_t *bigger = realloc(c->in, want);

			if (bigger == NULL) {
				conn_close(s, c, "out of memory");
				return;
			}
			c->in = bigger;
			c->in_cap = want;
		}
		if (c->in_len == c->in_cap) {
			conn_frames(s, c);
			continue;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_close(s, c, NULL);
			return;
		}
		c->in_len += (size_t)n;
		conn_frames(s, c);
		conn_flush(s, c); /* greeting replies; and the read limits */
	}
}

static void accept_all(struct svc *s)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct epoll_event ev;
		struct conn *c;
		int one = 1;
		int fd = accept4(s->cfg.listen_fd, (struct sockaddr *)&ss, &len,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn(SUB, "term %" PRIu64 ": accept: %s", s->cfg.term, strerror(errno));
			return;
		}
		if (s->nconns >= SVC_MAX_CONNS || (c = calloc(1, sizeof(*c))) == NULL) {
			log_warn(SUB, "term %" PRIu64 ": too many connections (%u); refusing one",
				 s->cfg.term, s->nconns);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		sock_keepalive(fd);
		c->accepted_at = mono_now();
		c->svc = s;
		c->fd = fd;
		c->refs = 1;
		c->reading = true;
		c->id = ++s->next_conn_id;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &in->sin_addr, c->peer, sizeof(c->peer));
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &in6->sin6_addr, c->peer, sizeof(c->peer));
		}
		pthread_mutex_lock(&s->lock);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		s->ctr[SVC_conns_accepted]++;
		pthread_mutex_unlock(&s->lock);
		ev = (struct epoll_event){ .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			conn_close(s, c, "epoll");
	}
}

/* Connections with new output or freed room: write and re-arm them. */
static void flush_dirty(struct svc *s)
{
	for (;;) {
		struct conn *c;

		pthread_mutex_lock(&s->lock);
		c = s->dirty;
		if (c != NULL) {
			s->dirty = c->next_dirty;
			c->dirty = false; /* its reference is ours now */
		}
		s->wake_pending = false;
		pthread_mutex_unlock(&s->lock);
		if (c == NULL)
			return;
		if (!c->closed)
			conn_flush(s, c);
		net_conn_put(s, c);
	}
}

/*
 * A peer that vanished (its host lost power) is noticed in about 20 s, and
 * its open files are released with its connection.
 */
static void sock_keepalive(int fd)
{
	int on = 1, idle = 10, intvl = 3, cnt = 3;
	unsigned int user_ms = 20000;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
}

/* Once the queue is below its limit, connections it paused read again. */
static void resume_paused(struct svc *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->paused_global && s->q_bytes < SVC_MAX_BYTES) {
		s->paused_global = false;
		for (struct conn *c = s->conns; c != NULL; c = c->next)
			if (!c->closed && !c->reading && !c->dirty) {
				c->dirty = true;
				c->refs++; /* the dirty list's reference */
				c->next_dirty = s->dirty;
				s->dirty = c;
			}
	}
	pthread_mutex_unlock(&s->lock);
	flush_dirty(s);
}

/* Close connections that did not greet within GREET_TIMEOUT_NS (once a second). */
static void sweep_ungreeted(struct svc *s)
{
	struct conn *late[64];
	mono_ns now = mono_now();
	int n = 0;

	if (now < s->greet_sweep_at)
		return;
	s->greet_sweep_at = now + NSEC_PER_SEC;
	pthread_mutex_lock(&s->lock);
	for (struct conn *c = s->conns; c != NULL && n < (int)ARRAY_SIZE(late); c = c->next)
		if (!c->closed && !c->greeted && now - c->accepted_at > GREET_TIMEOUT_NS) {
			c->refs++;
			late[n++] = c;
		}
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < n; i++) {
		conn_close(s, late[i], "no greeting within 5 s");
		net_conn_put(s, late[i]);
	}
}

static void *net_main(void *arg)
{
	struct svc *s = arg;
	struct epoll_event evs[EPOLL_BATCH];
	struct exec *e = NULL;
	bool failed = false;
	mono_ns linger_until = 0;
	int ret;

	ret = exec_create(s, &e);
	if (ret < 0) {
		svc_failed(s, ret);
		failed = true;
	}
	while (!atomic_load(&s->stopping)) {
		/*
		 * With requests waiting, only look what else came, then run them -
		 * or, when writes wait and commits have been carrying several, linger
		 * a little for more to share the commit (exec_linger_ns).
		 */
		mono_ns now = mono_now(), left = linger_until - now;
		struct timespec to = { 0, 0 };
		int n;

		if (!svc_queued(s) || failed)
			to.tv_nsec = 200 * NSEC_PER_MSEC;
		else if (left > 0)
			to.tv_nsec = (long)left;
		n = epoll_pwait2(s->epfd, evs, EPOLL_BATCH, &to, NULL);

		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &s->cfg.listen_fd) {
				accept_all(s);
			} else if (p == &s->wake_fd) {
				uint64_t v;

				if (read(s->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_debug(SUB, "wake read: %s", strerror(errno));
			} else {
				struct conn *c = p;

				if (c->closed)
					continue;
				/* our own reference: closing it below must not free it under us */
				pthread_mutex_lock(&s->lock);
				c->refs++;
				pthread_mutex_unlock(&s->lock);
				if (evs[i].events & (EPOLLERR | EPOLLHUP))
					conn_close(s, c, NULL);
				if (!c->closed && (evs[i].events & EPOLLOUT))
					conn_flush(s, c);
				if (!c->closed && (evs[i].events & (EPOLLIN | EPOLLRDHUP)))
					conn_read(s, c);
				net_conn_put(s, c);
			}
		}
		flush_dirty(s);
		sweep_ungreeted(s);
		if (!failed && svc_queued(s)) {
			if (linger_until == 0 && svc_queued_writes(s)) {
				mono_ns linger = exec_linger_ns(e);

				if (linger > 0) {
					linger_until = mono_now() + linger;
					continue;
				}
			}
			if (linger_until != 0 && mono_now() < linger_until)
				continue;
			linger_until = 0;
			ret = exec_batch(e);
			if (ret < 0) {
				svc_failed(s, ret); /* the lifecycle stops us; nothing more is applied */
				failed = true;
			}
			resume_paused(s);
		}
	}
	exec_destroy(e);
	/* stopping: every connection goes */
	for (;;) {
		struct conn *c;

		pthread_mutex_lock(&s->lock);
		for (c = s->conns; c != NULL && c->closed; c = c->next)
			;
		if (c != NULL)
			c->refs++;
		pthread_mutex_unlock(&s->lock);
		if (c == NULL)
			break;
		conn_close(s, c, NULL);
		net_conn_put(s, c);
	}
	return NULL;
}

/* ---- start and stop ---- */

int svc_start(const struct svc_config *cfg, struct svc **out)
{
	struct svc *s = calloc(1, sizeof(*s));
	struct epoll_event ev;
	int ret;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	s->cfg = *cfg;
	s->super = *cfg->super;
	s->cfg.super = &s->super;
	s->epfd = -1;
	s->wake_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	ret = srv_codec_init(&s->net_codec, &s->super);
	if (ret == 0)
		ret = srv_codec_init(&s->exec_codec, &s->super);
	if (ret == 0)
		ret = dispatch_open(cfg->store, &s->disp);
	if (ret < 0)
		goto fail;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epfd < 0 || s->wake_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &s->cfg.listen_fd };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, cfg->listen_fd, &ev) < 0) {
		ret = -errno;
		goto fail;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &s->wake_fd };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = thread_start(&s->net_thread, net_main, s);
	if (ret < 0)
		goto fail;
	s->net_started = true;
	*out = s;
	return 0;
fail:
	svc_stop(s);
	return ret;
}

void svc_stop(struct svc *s)
{
	if (s == NULL)
		return;
	atomic_store(&s->stopping, true);
	if (s->wake_fd >= 0)
		wake(s);
	if (s->net_started)
		pthread_join(s->net_thread, NULL);
	/* requests the executor never took */
	while (s->q_head != NULL) {
		struct svc_req *r = s->q_head;

		s->q_head = r->next;
		free(r->payload);
		free(r);
	}
	while (s->conns != NULL)
		conn_free_locked(s, s->conns);
	dispatch_close(s->disp);
	srv_codec_free(&s->net_codec);
	srv_codec_free(&s->exec_codec);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->cfg.listen_fd >= 0)
		close(s->cfg.listen_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- the executor's side of the queue (exec.c) ---- */

struct svc_req *svc_take(struct svc *s, uint32_t max, size_t max_bytes)
{
	struct svc_req *head = NULL, **tail = &head;
	size_t bytes = 0;
	uint32_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (s->q_head != NULL && n < max &&
	       (n == 0 || bytes + s->q_head->payload_len <= max_bytes)) {
		struct svc_req *r = s->q_head;

		s->q_head = r->next;
		if (s->q_head == NULL)
			s->q_tail = NULL;
		r->next = NULL;
		*tail = r;
		tail = &r->next;
		bytes += r->payload_len;
		s->q_bytes -= r->payload_len;
		if (!r->conn_closed && rpc_op_writes(r->req.op))
			s->q_writes--;
		if (r->conn != NULL && !r->conn_closed)
			r->conn->bytes -= r->payload_len;
		n++;
	}
	pthread_mutex_unlock(&s->lock);
	return head;
}

bool svc_queued_writes(struct svc *s)
{
	bool q;

	pthread_mutex_lock(&s->lock);
	q = s->q_writes > 0;
	pthread_mutex_unlock(&s->lock);
	return q;
}

bool svc_queued(struct svc *s)
{
	bool q;

	pthread_mutex_lock(&s->lock);
	q = s->q_head != NULL;
	pthread_mutex_unlock(&s->lock);
	return q;
}

bool svc_stopping(struct svc *s)
{
	return atomic_load(&s->stopping);
}

struct dispatch *svc_dispatch(struct svc *s)
{
	return s->disp;
}

struct store *svc_store(struct svc *s)
{
	return s->cfg.store;
}

void svc_failed(struct svc *s, int res)
{
	if (s->cfg.failed)
		s->cfg.failed(s->cfg.arg, res);
}
