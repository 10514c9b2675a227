/*
 * client.c - the client side of the server protocol (see client.h).
 *
 * Locks: c->lock guards the connection state and the slots; c->send_lock
 * serializes frames onto the socket and the send codec.  Lock order:
 * send_lock, then lock.  The receiver thread takes only lock.
 *
 * A call's slot: its life and request id are the calls table's (calls.h,
 * which asserts every edge and keeps the rules a resend relies on); its
 * caller's side (the call, the result, the condition it waits on) is
 * struct slot here, by the same index.
 *
 * Coherence.  The receiver takes frames in order; an INVAL goes to the
 * inval thread with the slots that were DONE or HELD when it came (replies
 * received before it).  The thread waits until each of those was handed
 * on (FREE), so a reply that predates the INVAL can never reach the kernel
 * after it; then it drops what the INVAL names (cfg.inval) and acks.
 */
#include "fuse/client.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/sockaddr.h"
#include "common/hist.h"
#include "common/thread.h"
#include "fuse/calls.h"
#include "fuse/holds.h"
#include "quorum/fence.h"
#include "server/proto.h"

#include <assert.h>
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
#define SLOTS CALLS_MAX
/* a frame the server does not take in this long drops the connection */
#define SEND_TIMEOUT_MS 30000


/* An INVAL waiting for the inval thread, with the replies it must come after. */
struct inval_msg {
	struct inval_msg *next;
	uint64_t gen;                /* the connection it came on */
	uint64_t seq;                /* 0: a new connection: drop everything */
	uint8_t *items;
	uint32_t len;
	uint32_t nbar;
	uint32_t bar_idx[RPC_CLIENT_INFLIGHT_MAX];
	uint64_t bar_req[RPC_CLIENT_INFLIGHT_MAX];
};


enum rpc_stage { RPC_ST_SEND, RPC_ST_WAIT, RPC_ST_WAKE, RPC_ST_TOTAL, RPC_STAGE_NR };

/* What a call's slot has beside its place in the calls table (calls.h): its caller's side. */
struct slot {
	mono_ns sent_at;
	mono_ns done_at;     /* its reply was taken */
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
	bool gone;               /* a server declared us gone: every call fails with EIO */
	pthread_t rx;
	bool rx_joinable;
	pthread_t watch;
	bool watch_started;
	pthread_cond_t watch_cond;
	int server_slot;             /* the server connected to, and its term */
	uint64_t server_term;
	pthread_mutex_t send_lock;
	struct srv_codec tx;      /* the current connection's frames to the server (send_lock) */
	struct calls calls;          /* each call's state and request id (calls.h) */
	struct slot slots[SLOTS];    /* and its caller's side, by the same index */
	struct rpc_client_stats stats;
	mono_ns logged_down_at;
	struct hist lat[RPC_STAGE_NR][RPC_OP_END];
	/* coherence: INVALs for the inval thread (under lock) */
	struct inval_msg *iq_head, *iq_tail;
	uint32_t iq_len;
	pthread_cond_t iq_cond;      /* the queue grew or shrank; a held slot was freed */
	pthread_t inval_thread;
	bool inval_started;
	/* the handles this mount chose, and the ones it holds open now (under lock) */
	mono_ns lost_at;             /* the connection went (0: it did not, or we are back) */
	uint64_t next_fh;
	struct holds holds;          /* named again after every new connection (holds.h) */
};

/* ---- slots ---- */

/* The calls-table entry of a slot. */
static struct call_slot *cs(struct rpc_client *c, const struct slot *s)
{
	return &c->calls.slot[s - c->slots];
}

/* Move a slot along its life (the lock held): calls_set, and who waits for it is told. */
static void slot_set(struct rpc_client *c, struct slot *s, enum call_state to)
{
	calls_set(&c->calls, (uint32_t)(s - c->slots), to);
	if (to == CALL_FREE) {
		s->call = NULL;
		pthread_cond_broadcast(&c->state_cond);
		pthread_cond_broadcast(&c->iq_cond);
	} else if (to == CALL_DONE) {
		pthread_cond_signal(&s->cond);
	}
}

/* A sent call's answer is in: done, or freed when its caller gave up. */
static void slot_finish(struct rpc_client *c, struct slot *s, int result)
{
	if (cs(c, s)->state == CALL_ABANDONED) {
		slot_set(c, s, CALL_FREE);
		return;
	}
	s->result = result;
	s->done_at = mono_now();
	slot_set(c, s, CALL_DONE);
}

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

/* A TCP connection to addr, non-blocking, connected before deadline.  0 with *fd or -errno. */
static int tcp_connect(const struct bd_addr *addr, mono_ns deadline, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, ret, err = 0, one = 1;

	ret = bd_addr_to_sockaddr(addr, &ss, &sslen);
	if (ret < 0)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		goto fail;
	}
	ret = wait_fd(fd, POLLOUT, deadline);
	if (ret < 0)
		goto fail;
	sslen = sizeof(err);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sslen);
	if (err != 0) {
		ret = -err;
		goto fail;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return ret;
}

/*
 * Greet over a connected non-blocking fd as rid: the server's answer in r.
 * With tx and rx, a greeting it accepted also gives the connection's
 * session codecs there (the caller frees them).  0 or -errno.
 */
static int greet_fd(const struct bd_super *super, uint64_t rid, int fd, mono_ns deadline,
		    struct srv_greeting_reply *r, struct srv_codec *tx, struct srv_codec *rx)
{
	uint8_t frame[SRV_FRAME_HDR_BYTES + HMAC_SHA256_BYTES +
		      MAX(sizeof(struct srv_greeting_wire), sizeof(struct srv_greeting_reply_wire))];
	struct srv_greeting g = { .fsid = super->fsid, .client_rid = rid, .version = SRV_PROTO_VERSION };
	struct srv_greeting_wire gw;
	struct srv_codec codec;
	const uint8_t *pl;
	uint32_t type, plen;
	ssize_t n;
	int ret = srv_nonce(g.nonce);

	if (quorum_holder_self(&g.who) < 0) /* (then a server cannot fence us locally: it says so) */
		memset(&g.who, 0, sizeof(g.who));
	if (ret == 0)
		ret = srv_codec_init(&codec, super);
	if (ret < 0)
		return ret;
	srv_greeting_encode(&g, &gw);
	n = srv_frame_encode(&codec, SRV_MSG_GREETING, &gw, sizeof(gw), frame, sizeof(frame));
	ret = n < 0 ? (int)n : srv_io_full(fd, frame, (size_t)n, true, deadline);
	if (ret == 0) {
		n = (ssize_t)srv_frame_bytes(&codec, sizeof(struct srv_greeting_reply_wire));
		ret = srv_io_full(fd, frame, (size_t)n, false, deadline);
	}
	if (ret == 0) {
		n = srv_frame_decode(&codec, frame, (size_t)n, &type, &pl, &plen);
		if (n < 0 || type != SRV_MSG_GREETING_REPLY ||
		    srv_greeting_reply_decode(pl, plen, r) < 0)
			ret = n == -EPERM ? -EPERM : -EBADMSG;
	}
	if (ret == 0 && tx != NULL && r->status == SRV_GREET_OK &&
	    r->version == SRV_PROTO_VERSION) {
		ret = srv_codec_session(tx, &codec, true, g.nonce, r->nonce);
		if (ret == 0 && (ret = srv_codec_session(rx, &codec, false, g.nonce, r->nonce)) < 0)
			srv_codec_free(tx);
	}
	srv_codec_free(&codec);
	return ret;
}

/*
 * A greeted connection, ready for requests: blocking, and found dead
 * within stall_ms when it stops answering - a server host that vanished,
 * or a network that drops its packets: keepalive probes every second
 * while nothing is in flight, and TCP_USER_TIMEOUT while something is
 * unacknowledged.  Every send is bounded too (a server that stops reading
 * that long is lost).  The calls on a lost connection are sent again.
 * Retransmissions keep a short, linear timeout (a thin stream: calls and
 * replies are a few packets at a time), so a lossy network costs a
 * retransmission or two, not a backoff that outlasts stall_ms and drops a
 * healthy connection.
 */
static void conn_ready(int fd, uint32_t stall_ms)
{
	int one = 1, idle = 1, intvl = 1, cnt = (int)MAX(stall_ms / 1000, 1u);
	unsigned int user_ms = stall_ms;
	struct timeval send_to = { .tv_sec = SEND_TIMEOUT_MS / 1000 };

	if (stall_ms > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
	setsockopt(fd, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_to, sizeof(send_to));
}

/* Connect to addr and greet as rid (the connection is closed again): the answer in r. */
static int greet_addr(const struct bd_super *super, uint64_t rid, const struct bd_addr *addr,
		      struct srv_greeting_reply *r)
{
	mono_ns deadline = mono_now() + GREET_TIMEOUT_MS * NSEC_PER_MSEC;
	int fd = -1, ret = tcp_connect(addr, deadline, &fd);

	if (ret == 0)
		ret = greet_fd(super, rid, fd, deadline, r, NULL, NULL);
	if (fd >= 0)
		close(fd);
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
	ret = greet_addr(super, rid, &super->slots[slot], &r);
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

/* The production dial: the server the quorum blocks name, over TCP. */
static int dial_quorum(struct rpc_client *c, int *fd, char *why, size_t whylen)
{
	mono_ns deadline = mono_now() + GREET_TIMEOUT_MS * NSEC_PER_MSEC;
	char addr[BD_ADDR_STRLEN];
	uint64_t term;
	int slot = find_server(c->cfg.dev, &c->super, &term), ret;

	if (slot < 0) {
		snprintf(why, whylen, "the quorum blocks name no server (no leader elected yet)");
		return -EHOSTDOWN;
	}
	bd_addr_format(&c->super.slots[slot], addr, sizeof(addr));
	ret = tcp_connect(&c->super.slots[slot], deadline, fd);
	if (ret < 0) {
		snprintf(why, whylen, "server %s (slot %d, term %" PRIu64 ") unreachable: %s", addr,
			 slot, term, errstr(ret));
		return -EHOSTDOWN;
	}
	pthread_mutex_lock(&c->lock);
	c->server_slot = slot;
	c->server_term = term;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/*
 * One attempt: a server dialled and greeted.  0 with *fd ready for
 * requests and its session's codecs in tx and rx, or -errno and why.
 */
static int connect_once(struct rpc_client *c, int *fd_out, struct srv_codec *tx,
			struct srv_codec *rx, char *why, size_t whylen)
{
	mono_ns deadline = mono_now() + GREET_TIMEOUT_MS * NSEC_PER_MSEC;
	struct srv_greeting_reply r;
	int fd = -1, ret;

	ret = c->cfg.dial ? c->cfg.dial(c->cfg.dial_arg, &fd, why, whylen) :
			    dial_quorum(c, &fd, why, whylen);
	if (ret < 0)
		return -EHOSTDOWN; /* no server reachable now: tried again until the call's wait ends */
	ret = greet_fd(&c->super, c->cfg.rid, fd, deadline, &r, tx, rx);
	if (ret < 0)
		snprintf(why, whylen, "the server did not answer the greeting: %s", errstr(ret));
	else if (r.status == SRV_GREET_GONE)
		snprintf(why, whylen, "the server (term %" PRIu64 ") declared this mount gone: it was "
			 "away past its grace, and the locks and open files it held went to others",
			 r.term);
	else if (r.status != SRV_GREET_OK)
		snprintf(why, whylen, "the server (term %" PRIu64 ") %s", r.term,
			 r.status == SRV_GREET_WRONG_FS ? "serves another filesystem" :
			 "is not serving yet");
	else if (r.version != SRV_PROTO_VERSION)
		snprintf(why, whylen, "the server speaks protocol %u, we speak %d", r.version,
			 SRV_PROTO_VERSION);
	if (ret < 0 || r.status != SRV_GREET_OK) {
		close(fd);
		if (ret == 0 && r.status == SRV_GREET_GONE)
			return -ESTALE;
		return ret < 0 || r.status != SRV_GREET_WRONG_FS ? -EHOSTDOWN : -EINVAL;
	}
	if (r.version != SRV_PROTO_VERSION) {
		close(fd);
		return -EPROTO;
	}
	/* (from here tx and rx are made: whoever takes fd takes them) */
	conn_ready(fd, c->cfg.stall_ms ? c->cfg.stall_ms : 10000);
	*fd_out = fd;
	return 0;
}

/* ---- open files ---- */

/* What a call that succeeded took or dropped (the lock held). */
static void holds_noted(struct rpc_client *c, const struct rpc_call *call)
{
	if (holds_note(&c->holds, call->op, call->fixed, call->reply_fixed) < 0)
		log_err(SUB, "out of memory: a handle will not be named to a new server");
}

uint64_t rpc_client_new_fh(struct rpc_client *c)
{
	uint64_t fh;

	pthread_mutex_lock(&c->lock);
	fh = ++c->next_fh;
	pthread_mutex_unlock(&c->lock);
	return fh;
}

static int send_all(int fd, struct iovec *iov, int n);

/*
 * Name every file this mount holds open on a new connection, before any
 * request goes on it (the lock held; nobody else can use fd yet).
 */
static int holds_send(struct rpc_client *c, int fd)
{
	struct rpc_hold *batch = malloc(RPC_HOLDS_PER_FRAME * sizeof(*batch));
	uint32_t n, cursor = 0;
	int ret = batch ? 0 : -ENOMEM;

	while (ret == 0 && (n = holds_next(&c->holds, &cursor, batch, RPC_HOLDS_PER_FRAME)) > 0) {
		struct iovec piece = { batch, n * sizeof(*batch) }, iov[3];
		struct srv_frame_hdr fh;
		uint8_t tag[HMAC_SHA256_BYTES];
		ssize_t len = srv_frame_seal(&c->tx, SRV_MSG_HOLDS, &piece, 1, &fh, tag);

		iov[0] = (struct iovec){ &fh, sizeof(fh) };
		iov[1] = piece;
		iov[2] = (struct iovec){ tag, c->tx.auth ? sizeof(tag) : 0 };
		ret = len < 0 ? (int)len : send_all(fd, iov, 3);
	}
	free(batch);
	return ret;
}

/* ---- the receiver ---- */

struct rx_arg {
	struct rpc_client *c;
	int fd;
	uint64_t gen;
	struct srv_codec rx;      /* the connection's frames from the server (its thread's alone) */
};

/* The connection of generation gen is gone: fail what was sent on it. */
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
	if (c->gen == gen && c->lost_at == 0)
		c->lost_at = mono_now();
	/* what was in flight on it is sent again, with the same ids, by its callers */
	for (uint32_t i = 0; i < SLOTS; i++) {
		struct slot *s = &c->slots[i];
		enum call_state to = calls_after_loss(&c->calls, i, gen);

		if (to == c->calls.slot[i].state)
			continue;
		slot_set(c, s, to);
		if (to == CALL_WAITING) {
			c->stats.resent++;
			pthread_cond_signal(&s->cond);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* A reply's result for its call (copied into the call's buffers): 0 or -errno. */
static int reply_result(const struct rpc_reply *r, struct rpc_call *call)
{
	uint32_t fixed = rpc_op_reply_fixed_bytes(r->op);

	if (r->op != call->op)
		return -EPROTO;
	if (r->status != 0)
		return -(int)r->status;
	if (r->tail_len > call->reply_tail_cap)
		return -EPROTO;
	if (fixed > 0 && call->reply_fixed != NULL)
		memcpy(call->reply_fixed, r->fixed, fixed);
	if (r->tail_len > 0)
		memcpy(call->reply_tail, r->tail, r->tail_len);
	call->reply_tail_len = r->tail_len;
	call->valid_ms = r->valid_ms;
	return 0;
}

/* ---- coherence ---- */

/*
 * Queue an INVAL (payload after its header: items) for the inval thread,
 * behind the replies received so far (the lock held).  A full queue waits.
 */
static void inval_queue_locked(struct rpc_client *c, uint64_t gen, uint64_t seq,
			       const uint8_t *items, uint32_t len)
{
	struct inval_msg *m = calloc(1, sizeof(*m));

	while (c->iq_len >= RPC_CLIENT_INVALS_MAX && !c->stopping)
		pthread_cond_wait(&c->iq_cond, &c->lock);
	if (m != NULL && len > 0 && (m->items = malloc(len)) == NULL) {
		free(m);
		m = NULL;
	}
	if (m == NULL) {
		log_err(SUB, "out of memory for an INVAL: the server waits its grants out instead");
		return;
	}
	m->gen = gen;
	m->seq = seq;
	m->len = len;
	if (len > 0)
		memcpy(m->items, items, len);
	for (uint32_t i = 0; i < SLOTS; i++)
		if (c->calls.slot[i].state == CALL_DONE || c->calls.slot[i].state == CALL_HELD) {
			m->bar_idx[m->nbar] = i;
			m->bar_req[m->nbar++] = c->calls.slot[i].req_id;
		}
	if (c->iq_tail)
		c->iq_tail->next = m;
	else
		c->iq_head = m;
	c->iq_tail = m;
	c->iq_len++;
	pthread_cond_broadcast(&c->iq_cond);
}

/* An INVAL frame's payload from the receiver: checked, queued.  0 or -EBADMSG. */
static int inval_take(struct rpc_client *c, uint64_t gen, const uint8_t *pl, uint32_t plen)
{
	struct rpc_inval_hdr h;
	struct rpc_inval it;
	uint32_t pos = 0, n = 0;
	int r;

	if (plen < sizeof(h))
		return -EBADMSG;
	memcpy(&h, pl, sizeof(h));
	while ((r = rpc_inval_next(pl + sizeof(h), plen - (uint32_t)sizeof(h), &pos, &it)) == 0)
		n++;
	if (r < 0 || n != le32_to_cpu(h.count) || le32_to_cpu(h.reserved) != 0)
		return -EBADMSG;
	if (c->cfg.inval == NULL)
		return 0; /* we cache nothing: the server's grants said 0... or it is wrong; no ack */
	pthread_mutex_lock(&c->lock);
	inval_queue_locked(c, gen, le64_to_cpu(h.seq), pl + sizeof(h), plen - (uint32_t)sizeof(h));
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Wait (the lock held) until every reply m must come after was handed on; bounded. */
static void inval_barrier_locked(struct rpc_client *c, const struct inval_msg *m)
{
	struct timespec until;

	mono_deadline_ts(&until, 10000);
	for (uint32_t i = 0; i < m->nbar && !c->stopping; i++) {
		const struct call_slot *s = &c->calls.slot[m->bar_idx[i]];

		while ((s->state == CALL_DONE || s->state == CALL_HELD) && s->req_id == m->bar_req[i] &&
		       !c->stopping)
			if (pthread_cond_timedwait(&c->iq_cond, &c->lock, &until) == ETIMEDOUT) {
				log_err(SUB, "a reply was not handed on within 10 s; applying an INVAL "
					"behind it anyway");
				return;
			}
	}
}

static int send_frame_on(struct rpc_client *c, uint64_t gen, uint32_t type, const void *pl,
			 uint32_t len);

/* Apply one INVAL: every item to cfg.inval, then the ack on the connection it came on. */
static void inval_apply(struct rpc_client *c, const struct inval_msg *m)
{
	struct rpc_inval_ack ack = { .seq = cpu_to_le64(m->seq) };
	struct rpc_inval it = { .kind = 0 };
	uint32_t pos = 0, n = 0;

	if (m->seq == 0) { /* a new connection: what the old one let us cache is not trusted */
		c->cfg.inval(c->cfg.inval_arg, &it);
		return;
	}
	while (rpc_inval_next(m->items, m->len, &pos, &it) == 0) {
		c->cfg.inval(c->cfg.inval_arg, &it);
		n++;
	}
	send_frame_on(c, m->gen, SRV_MSG_INVAL_ACK, &ack, sizeof(ack));
	pthread_mutex_lock(&c->lock);
	c->stats.invals++;
	c->stats.inval_items += n;
	pthread_mutex_unlock(&c->lock);
}

static void *inval_main(void *arg)
{
	struct rpc_client *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct inval_msg *m = c->iq_head;

		if (m == NULL) {
			pthread_cond_wait(&c->iq_cond, &c->lock);
			continue;
		}
		inval_barrier_locked(c, m);
		c->iq_head = m->next;
		if (c->iq_head == NULL)
			c->iq_tail = NULL;
		c->iq_len--;
		pthread_cond_broadcast(&c->iq_cond);
		pthread_mutex_unlock(&c->lock);
		inval_apply(c, m);
		free(m->items);
		free(m);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Hand a reply to the call waiting for it. */
static void deliver(struct rpc_client *c, const struct rpc_reply *r, uint64_t gen)
{
	int i;

	pthread_mutex_lock(&c->lock);
	i = calls_for_reply(&c->calls, r->req_id, gen);
	if (i < 0)
		c->stats.bad_replies++;
	else
		slot_finish(c, &c->slots[i],
			    c->calls.slot[i].state == CALL_SENT ? reply_result(r, c->slots[i].call) : 0);
	pthread_mutex_unlock(&c->lock);
}

/* Every whole reply frame in buf[0..have): handed over.  Bytes taken, or -1 for a bad frame. */
static ssize_t rx_frames(struct rpc_client *c, struct rx_arg *a, const uint8_t *buf,
			 size_t have, size_t cap)
{
	size_t at = 0;

	while (have - at >= SRV_FRAME_HDR_BYTES) {
		ssize_t total = srv_frame_total(&a->rx, buf + at);
		const uint8_t *pl;
		uint32_t type, plen;
		struct rpc_reply r;

		if (total < 0 || (size_t)total > cap)
			return -1;
		if (have - at < (size_t)total)
			break;
		if (srv_frame_decode(&a->rx, buf + at, (size_t)total, &type, &pl, &plen) < 0)
			return -1;
		if (type == SRV_MSG_INVAL) {
			if (inval_take(c, a->gen, pl, plen) < 0)
				return -1;
		} else if (type == SRV_MSG_LOCK_FREED && plen == sizeof(struct rpc_lock_freed)) {
			struct rpc_lock_freed f;

			memcpy(&f, pl, sizeof(f));
			if (c->cfg.lock_freed != NULL)
				c->cfg.lock_freed(c->cfg.lock_freed_arg, le64_to_cpu(f.ino));
		} else if (type == SRV_MSG_REPLY && rpc_reply_decode(pl, plen, &r) == 0) {
			deliver(c, &r, a->gen);
		} else {
			return -1;
		}
		at += (size_t)total;
	}
	return (ssize_t)at;
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
	size_t cap = srv_frame_bytes(&a.rx, SRV_FRAME_MAX_PAYLOAD) + 65536;
	uint8_t *buf = malloc(cap);
	const char *why = "out of memory";
	size_t have = 0;

	free(arg);
	while (buf != NULL) {
		ssize_t n = recv(a.fd, buf + have, cap - have, 0), took;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			why = n == 0 ? "the server closed it" : strerror(errno);
			break;
		}
		have += (size_t)n;
		took = rx_frames(c, &a, buf, have, cap);
		if (took < 0) {
			why = "a frame that failed its checks";
			break;
		}
		memmove(buf, buf + took, have - (size_t)took);
		have -= (size_t)took;
	}
	free(buf);
	srv_codec_free(&a.rx);
	conn_lost(c, a.gen, why);
	pthread_mutex_lock(&c->send_lock); /* no send is writing to it any more */
	close(a.fd);
	pthread_mutex_unlock(&c->send_lock);
	return NULL;
}

/*
 * A new connection's receiver started and the connection made current,
 * with its session's codecs (taken: freed here on a failure); the lock
 * and the send lock held.
 */
static int conn_take(struct rpc_client *c, int fd, struct srv_codec *tx, struct srv_codec *rx)
{
	struct rx_arg *a = malloc(sizeof(*a));
	int ret;

	srv_codec_free(&c->tx);
	c->tx = *tx;
	ret = a == NULL ? -ENOMEM : holds_send(c, fd);
	if (ret < 0) {
		free(a);
		srv_codec_free(rx);
		close(fd);
		return ret;
	}
	c->gen++;
	*a = (struct rx_arg){ c, fd, c->gen, *rx };
	ret = thread_start(&c->rx, rx_main, a);
	if (ret < 0) {
		srv_codec_free(&a->rx);
		free(a);
		close(fd);
		return ret;
	}
	c->rx_joinable = true;
	c->fd = fd;
	c->stats.connects++;
	if (c->lost_at != 0) {
		c->stats.failovers++;
		c->stats.last_failover_ms = (uint64_t)(mono_now() - c->lost_at) / NSEC_PER_MSEC;
		log_info(SUB, "connected again %" PRIu64 " ms after the connection was lost; what was "
			 "in flight goes again", c->stats.last_failover_ms);
		c->lost_at = 0;
	}
	if (c->cfg.inval != NULL && c->stats.connects > 1)
		inval_queue_locked(c, c->gen, 0, NULL, 0);
	if (c->stats.connects == 1)
		log_info(SUB, "connected to the server");
	return 0;
}

/*
 * One connection attempt by this thread, the lock held on entry and exit:
 * the old receiver joined, then connect_once unlocked.  0, or -errno.
 */
static int connect_locked(struct rpc_client *c, char *why, size_t whylen)
{
	struct srv_codec tx, rx;
	int fd = -1, ret;

	c->connecting = true;
	if (c->rx_joinable) {
		pthread_t t = c->rx;

		c->rx_joinable = false;
		pthread_mutex_unlock(&c->lock);
		pthread_join(t, NULL);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	ret = connect_once(c, &fd, &tx, &rx, why, whylen);
	if (ret == -EHOSTDOWN) {
		struct timespec pause = { 0, RETRY_MS * 1000000L };

		nanosleep(&pause, NULL);
	}
	pthread_mutex_lock(&c->send_lock); /* (the order: send_lock, lock) the send codec changes */
	pthread_mutex_lock(&c->lock);
	c->connecting = false;
	pthread_cond_broadcast(&c->state_cond);
	if (ret == 0)
		ret = conn_take(c, fd, &tx, &rx);
	pthread_mutex_unlock(&c->send_lock);
	return ret;
}

/* Say, at most every 5 s, why no server answered a call in its time. */
static void log_down(struct rpc_client *c, const char *why)
{
	mono_ns now = mono_now();

	if (now - c->logged_down_at <= 5 * NSEC_PER_SEC)
		return;
	if (c->lost_at != 0)
		log_warn(SUB, "no server for %" PRId64 " ms since the connection was lost: %s",
			 (now - c->lost_at) / NSEC_PER_MSEC, why[0] ? why : "still connecting");
	else
		log_warn(SUB, "no server answered yet: %s", why[0] ? why : "still connecting");
	c->logged_down_at = now;
}

/* A server declared us gone (the lock held): said once, and for good. */
static void went_gone(struct rpc_client *c, const char *why)
{
	if (!c->gone)
		log_err(SUB, "mount %016" PRIx64 ": %s; every call fails with EIO from now on: "
			"unmount and mount again", c->cfg.rid, why);
	c->gone = true;
}

/*
 * Make sure there is a connection, waiting until deadline.  Called with
 * the lock held; returns with it held.  0 with the generation, or -errno.
 */
static int ensure_connected(struct rpc_client *c, mono_ns deadline, uint64_t *gen, char *why,
			    size_t whylen)
{
	int ret = 0;

	if (whylen > 0)
		why[0] = '\0';
	while (c->fd < 0) {
		struct timespec ts;

		if (c->stopping)
			return -ESHUTDOWN;
		if (c->gone)
			return -EIO;
		if (mono_now() >= deadline) {
			ret = -EHOSTDOWN;
			break;
		}
		if (c->connecting) { /* another thread dials: wait for it */
			mono_deadline_ts(&ts, RETRY_MS);
			pthread_cond_timedwait(&c->state_cond, &c->lock, &ts);
			continue;
		}
		ret = connect_locked(c, why, whylen);
		if (ret == -ESTALE) { /* for good: what it held is others' now */
			went_gone(c, why);
			return -EIO;
		}
		if (ret < 0 && ret != -EHOSTDOWN)
			break; /* not worth retrying: another filesystem, protocol, memory */
	}
	if (c->fd >= 0) {
		*gen = c->gen;
		return 0;
	}
	log_down(c, why);
	return ret < 0 ? ret : -EHOSTDOWN;
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

/* All of iov onto the socket; a closed peer is -EPIPE, never a SIGPIPE to the process. */
static int send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);

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

/* A small frame on connection gen, if it is still the current one.  0 or -errno. */
static int send_frame_on(struct rpc_client *c, uint64_t gen, uint32_t type, const void *pl,
			 uint32_t len)
{
	struct iovec piece = { (void *)pl, len }, iov[3];
	struct srv_frame_hdr fh;
	uint8_t tag[HMAC_SHA256_BYTES];
	ssize_t n;
	int fd, ret = -ENOTCONN;

	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	fd = c->gen == gen ? c->fd : -1;
	pthread_mutex_unlock(&c->lock);
	n = fd < 0 ? -ENOTCONN : srv_frame_seal(&c->tx, type, &piece, 1, &fh, tag);
	if (n >= 0) {
		iov[0] = (struct iovec){ &fh, sizeof(fh) };
		iov[1] = piece;
		iov[2] = (struct iovec){ tag, c->tx.auth ? sizeof(tag) : 0 };
		ret = send_all(fd, iov, 3);
		if (ret < 0)
			shutdown(fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&c->send_lock);
	return ret;
}

/* Write a call's frame on fd (the send lock held). */
static int send_frame(struct rpc_client *c, int fd, const struct rpc_req *r,
		      const struct rpc_call *call)
{
	struct le32 groups[RPC_GROUPS_MAX];
	struct rpc_req_hdr h;
	struct srv_frame_hdr fh;
	uint8_t tag[HMAC_SHA256_BYTES];
	struct iovec iov[7];
	ssize_t n;

	rpc_req_hdr_encode(r, &h, groups);
	iov[1] = (struct iovec){ &h, sizeof(h) };
	iov[2] = (struct iovec){ groups, 4 * r->ngroups };
	iov[3] = (struct iovec){ (void *)call->fixed, rpc_op_fixed_bytes(call->op) };
	iov[4] = (struct iovec){ (void *)call->tail1, call->tail1_len };
	iov[5] = (struct iovec){ (void *)call->tail2, call->tail2_len };
	n = srv_frame_seal(&c->tx, SRV_MSG_REQUEST, iov + 1, 5, &fh, tag);
	if (n < 0)
		return (int)n;
	iov[0] = (struct iovec){ &fh, sizeof(fh) };
	iov[6] = (struct iovec){ tag, c->tx.auth ? sizeof(tag) : 0 };
	return send_all(fd, iov, 7);
}

/*
 * Send a waiting call on connection gen: 0 (the slot is SENT), -EAGAIN
 * when that connection went before a byte of it left (the slot still
 * WAITING), or -errno of a failed send (SENT: the receiver fails it).
 */
static int send_call(struct rpc_client *c, struct slot *s, uint64_t gen)
{
	struct rpc_call *call = s->call;
	struct rpc_req r = {
		.req_id = cs(c, s)->req_id, .client_rid = c->cfg.rid, .op = call->op, .uid = call->uid,
		.gid = call->gid, .pid = call->pid, .ngroups = MIN(call->ngroups, RPC_GROUPS_MAX),
		.tail1_len = call->tail1_len, .tail2_len = call->tail2_len,
	};
	int fd, ret;

	for (uint32_t i = 0; i < r.ngroups; i++)
		r.groups[i] = call->groups[i];
	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	fd = c->gen == gen ? c->fd : -1;
	if (fd >= 0) { /* from here a lost connection fails it */
		r.oldest_req_id = calls_sent(&c->calls, (uint32_t)(s - c->slots), gen);
		s->sent_at = mono_now();
	}
	pthread_mutex_unlock(&c->lock);
	ret = fd < 0 ? -EAGAIN : send_frame(c, fd, &r, call);
	if (ret < 0 && fd >= 0)
		shutdown(fd, SHUT_RDWR); /* the receiver sees it and fails what is in flight */
	pthread_mutex_unlock(&c->send_lock);
	return ret;
}

/* A free slot for call, waiting for one until deadline (the lock held).  NULL: none. */
static struct slot *slot_take(struct rpc_client *c, struct rpc_call *call, mono_ns deadline)
{
	struct timespec until;
	struct slot *s;
	int i;

	while (c->calls.nfree == 0 && !c->stopping && mono_now() < deadline) {
		mono_deadline_ts(&until, 1000);
		pthread_cond_timedwait(&c->state_cond, &c->lock, &until);
	}
	if (c->stopping || (i = calls_take(&c->calls)) < 0)
		return NULL;
	c->stats.max_in_flight = MAX(c->stats.max_in_flight, (uint64_t)(SLOTS - c->calls.nfree));
	s = &c->slots[i];
	s->call = call;
	s->sent_at = 0;
	return s;
}

/*
 * Get a waiting call onto a connection (the lock held): 0 once it went out
 * (SENT; a send that failed is noticed by the receiver and sent again), or
 * -errno when no server took it before deadline (the slot is freed).
 */
static int call_send(struct rpc_client *c, struct slot *s, mono_ns deadline)
{
	char why[256];
	uint64_t gen;
	int ret;

	for (;;) {
		ret = ensure_connected(c, deadline, &gen, why, sizeof(why));
		if (ret < 0) {
			slot_set(c, s, CALL_FREE);
			return ret;
		}
		pthread_mutex_unlock(&c->lock);
		ret = send_call(c, s, gen);
		pthread_mutex_lock(&c->lock);
		if (ret != -EAGAIN) /* (-EAGAIN: a reconnect raced us, nothing left: again) */
			return 0;
	}
}

#define RESEND 1

/*
 * Wait for a sent call's answer (the lock held): its result (the slot
 * freed or held), RESEND when its connection was lost and it must go
 * again, or -ETIMEDOUT past deadline (abandoned: the slot frees when the
 * reply comes or the connection goes).
 */
static int call_wait(struct rpc_client *c, struct slot *s, mono_ns deadline)
{
	struct timespec until;
	int ret;

	while (cs(c, s)->state == CALL_SENT) {
		if (deadline == INT64_MAX) {
			pthread_cond_wait(&s->cond, &c->lock);
			continue;
		}
		mono_deadline_ts(&until, MAX((deadline - mono_now()) / NSEC_PER_MSEC, 0));
		if (pthread_cond_timedwait(&s->cond, &c->lock, &until) == ETIMEDOUT &&
		    cs(c, s)->state == CALL_SENT && mono_now() >= deadline) {
			slot_set(c, s, CALL_ABANDONED);
			return -ETIMEDOUT;
		}
	}
	if (cs(c, s)->state == CALL_WAITING)
		return RESEND;
	ret = s->result;
	if (s->sent_at != 0) {
		mono_ns now = mono_now();

		hist_add(&c->lat[RPC_ST_WAIT][s->call->op], s->done_at - s->sent_at);
		hist_add(&c->lat[RPC_ST_WAKE][s->call->op], now - s->done_at);
	}
	if (s->call->hold) {
		s->call->slot = (uint32_t)(s - c->slots) + 1;
		slot_set(c, s, CALL_HELD);
	} else {
		slot_set(c, s, CALL_FREE);
	}
	return ret;
}

/*
 * When a call gives up: its own wait, or the mount's.  A hard mount
 * (the default) waits as long as it takes, across failovers; a soft one
 * fails after failover_ms.
 */
static mono_ns call_deadline(const struct rpc_client *c, const struct rpc_call *call, mono_ns t0)
{
	if (call->wait_ms != 0)
		return t0 + (mono_ns)call->wait_ms * NSEC_PER_MSEC;
	if (c->cfg.soft)
		return t0 + (mono_ns)c->cfg.failover_ms * NSEC_PER_MSEC;
	return INT64_MAX;
}

int rpc_client_call(struct rpc_client *c, struct rpc_call *call)
{
	mono_ns t0 = mono_now(), deadline = call_deadline(c, call, t0);
	struct slot *s;
	int ret = rpc_req_check(call->op, call->fixed, call->tail1, call->tail1_len, call->tail2,
				call->tail2_len);

	if (ret < 0)
		return ret;
	call->reply_tail_len = 0;
	call->valid_ms = 0;
	call->slot = 0;
	pthread_mutex_lock(&c->lock);
	c->stats.calls++;
	s = slot_take(c, call, deadline);
	ret = s == NULL ? (c->stopping ? -ESHUTDOWN : -EHOSTDOWN) : RESEND;
	for (int sends = 0; ret == RESEND; sends++) {
		ret = call_send(c, s, deadline);
		if (ret == 0 && sends == 0)
			hist_add(&c->lat[RPC_ST_SEND][call->op], s->sent_at - t0);
		if (ret == 0)
			ret = call_wait(c, s, deadline);
	}
	if (ret == 0 || call->op == RPC_RELEASE)
		holds_noted(c, call);
	pthread_mutex_unlock(&c->lock);
	hist_add(&c->lat[RPC_ST_TOTAL][call->op], mono_now() - t0);
	return ret;
}

void rpc_client_call_end(struct rpc_client *c, struct rpc_call *call)
{
	if (call->slot == 0)
		return;
	pthread_mutex_lock(&c->lock);
	slot_set(c, &c->slots[call->slot - 1], CALL_FREE);
	pthread_mutex_unlock(&c->lock);
	call->slot = 0;
}

int rpc_client_lat_text(struct rpc_client *c, char *buf, size_t len)
{
	static const char *const names[RPC_STAGE_NR] = {
		[RPC_ST_SEND] = "send", [RPC_ST_WAIT] = "wait", [RPC_ST_WAKE] = "wake",
		[RPC_ST_TOTAL] = "total",
	};
	struct strbuf sb;

	strbuf_init(&sb, buf, len);
	for (int g = 0; g < RPC_STAGE_NR; g++)
		for (uint32_t op = RPC_LOOKUP; op < RPC_OP_END; op++) {
			const struct hist *h = &c->lat[g][op];
			uint64_t n = hist_count(h);

			if (n > 0)
				strbuf_addf(&sb, "lat client_%s %s n %" PRIu64 " p50_us %.1f p99_us %.1f\n",
					    names[g], rpc_op_name(op), n,
					    (double)hist_quantile(h, 0.5) / 1000.0,
					    (double)hist_quantile(h, 0.99) / 1000.0);
		}
	return sb.truncated ? -ERANGE : (int)sb.len;
}

/* ---- the watchdog ---- */

/*
 * A server that was paused (SIGSTOP, a VM stall) keeps its connections
 * open: its kernel still answers, so nothing breaks by itself while the
 * cluster elects another.  While a call has waited more than STALL_MS,
 * the watchdog reads the quorum blocks every WATCH_MS, and when they name
 * another server than ours it drops the connection (the calls on it fail,
 * later ones connect to the new server).  Without a device (a dial of the
 * caller's) there are no blocks to read, and nothing to watch.
 */
#define WATCH_MS 500
static_assert(WATCH_MS <= SRV_ALIVE_MS, "the watch thread says alive often enough");
#define STALL_MS 1000

/* Has a call on connection gen waited past STALL_MS?  (The lock held.) */
static bool stalled_locked(struct rpc_client *c, uint64_t gen, mono_ns now)
{
	for (uint32_t i = 0; c->fd >= 0 && i < SLOTS; i++)
		if (c->calls.slot[i].state == CALL_SENT && c->calls.slot[i].gen == gen &&
		    now - c->slots[i].sent_at > STALL_MS * NSEC_PER_MSEC)
			return true;
	return false;
}

static void *watch_main(void *arg)
{
	struct rpc_client *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct timespec until;
		uint64_t gen = c->gen, term = 0;

		if (c->cfg.dev != NULL && stalled_locked(c, gen, mono_now())) {
			int our_slot = c->server_slot, slot;
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
		/*
		 * A mount that holds files open names them to the next server
		 * within its grace, calls or not: an idle one dials here.
		 */
		if (c->fd < 0 && !c->connecting && !c->gone && c->holds.used > 0 && c->lost_at != 0) {
			char why[256];

			if (connect_locked(c, why, sizeof(why)) == -ESTALE)
				went_gone(c, why);
		}
		/* alive: a server closes a connection silent for SRV_SILENT_MS */
		if (c->fd >= 0) {
			uint64_t g = c->gen;

			pthread_mutex_unlock(&c->lock);
			send_frame_on(c, g, SRV_MSG_ALIVE, NULL, 0);
			pthread_mutex_lock(&c->lock);
		}
		mono_deadline_ts(&until, WATCH_MS);
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
	calls_init(&c->calls);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_cond_init(&c->state_cond, &ca);
	pthread_cond_init(&c->watch_cond, &ca);
	pthread_cond_init(&c->iq_cond, &ca);
	for (uint32_t i = 0; i < SLOTS; i++)
		pthread_cond_init(&c->slots[i].cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = srv_codec_init(&c->tx, &c->super); /* (each connection's replaces it) */
	if (ret == 0) {
		ret = thread_start(&c->watch, watch_main, c);
		c->watch_started = ret == 0;
	}
	if (ret == 0 && cfg->inval != NULL) {
		ret = thread_start(&c->inval_thread, inval_main, c);
		c->inval_started = ret == 0;
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
	if (c->fd >= 0) /* we unmount: the server may forget us now */
		send_frame_on(c, c->gen, SRV_MSG_BYE, NULL, 0);
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	pthread_cond_broadcast(&c->state_cond);
	pthread_cond_broadcast(&c->watch_cond);
	pthread_cond_broadcast(&c->iq_cond);
	pthread_mutex_unlock(&c->lock);
	if (c->watch_started)
		pthread_join(c->watch, NULL);
	if (c->inval_started)
		pthread_join(c->inval_thread, NULL);
	while (c->iq_head != NULL) {
		struct inval_msg *m = c->iq_head;

		c->iq_head = m->next;
		free(m->items);
		free(m);
	}
	if (c->rx_joinable)
		pthread_join(c->rx, NULL); /* it closes the connection */
	srv_codec_free(&c->tx);
	for (uint32_t i = 0; i < SLOTS; i++)
		pthread_cond_destroy(&c->slots[i].cond);
	pthread_cond_destroy(&c->state_cond);
	pthread_cond_destroy(&c->watch_cond);
	pthread_cond_destroy(&c->iq_cond);
	holds_free(&c->holds);
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
