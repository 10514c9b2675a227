/*
 * net.c - the service's one thread: the listener, every client connection
 * on one epoll, and after each round of reading the batch of what arrived,
 * run through the executor's stages (exec.c) with each stage's replies
 * sent as soon as it releases them.  See service.h.
 *
 * Nothing here is shared with another thread but the counters (atomic)
 * and the door: a socketpair through which svc_adopt hands in descriptors
 * (SCM_RIGHTS) and svc_stop wakes the loop.  So there is no lock.
 *
 * A connection must first send a GREETING; a reply with status OK (the
 * right filesystem, and our lease holds) lets it send requests, anything
 * else is answered and the connection closed once the answer is out.  A
 * frame that fails its checks (magic, length, crc, HMAC) or a request that
 * fails rpc_req_decode closes that one connection with a log line and a
 * counter; nothing else is affected.
 *
 * A connection's life (conn_set_state asserts every edge):
 *
 *   GREETING --greeted--> SERVING --+
 *       |  \--refused--> DRAINING --+--> CLOSED --(no request of it left)--> freed
 *       \---------------------------/
 *
 * A closed connection's requests still queued run and their replies are
 * dropped.  It is freed at the end of a loop round, once nothing names it,
 * so an epoll event of the same round never meets freed memory.
 *
 * Mounts.  What a mount holds (open files, kept replies) is its rid's,
 * not a connection's: when its last connection closes it keeps them for
 * the grace (svc_config.grace_ms) and may come back and name its open
 * files again (HOLDS); past the grace, or at once when it said goodbye
 * (BYE), a GONE mark makes the executor forget them.  A new service
 * purges the orphans no mount took back once the grace after its start is
 * over (PURGE).
 */
#include "server/service.h"

#include "blockdev/sockaddr.h"
#include "common/common.h"
#include "common/thread.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *const SUB = "server";

#define IN_START (64u << 10)
/* a greeting frame, with room for its tag */
#define GREETING_FRAME_MAX (SRV_FRAME_HDR_BYTES + sizeof(struct srv_greeting_wire) + 64)
/* a connection that has not greeted by then is closed */
#define GREET_TIMEOUT_NS (5 * NSEC_PER_SEC)
#define CLOSE_LOG_BURST 20
#define CLOSE_LOG_WINDOW_NS (10 * NSEC_PER_SEC)
#define EPOLL_BATCH 64
#define IDLE_WAIT_NS (200 * NSEC_PER_MSEC)

enum conn_state { CONN_GREETING, CONN_SERVING, CONN_DRAINING, CONN_CLOSED, CONN_STATE_NR };

struct outbuf {
	struct outbuf *next;
	size_t len;
	size_t off;
	uint8_t data[];
};

struct conn {
	enum conn_state state;
	int fd;
	uint64_t id;
	uint64_t rid;
	char peer[64];
	struct svc_mount_id who; /* its greeting's process, and the address it came from */
	mono_ns accepted_at;  /* a connection that does not greet in time goes */
	mono_ns heard_at;     /* its last frame: one silent for SRV_SILENT_MS goes */
	uint32_t events;      /* what epoll watches for it now */
	uint8_t *in;
	size_t in_len;
	size_t in_cap;
	uint32_t inflight;    /* its requests queued or in a batch */
	size_t bytes;         /* of requests queued and replies not yet sent */
	struct outbuf *out_head, *out_tail;
	/* after its greeting: its session's codecs, frames from it and to it (proto.h) */
	struct srv_codec rx, tx;
	bool session;
	bool touched;         /* on the round's list of connections to look at again */
	struct conn *next_touched;
	struct conn *prev, *next; /* every connection not yet freed */
};

/*
 * The requests of one batch, taken off the queue in arrival order (at
 * most SVC_BATCH_MAX and the executor's batch bytes, at least one) and
 * sorted into the executor's stages.
 */
struct batch {
	struct svc_req *reads[SVC_BATCH_MAX];
	struct svc_req *writes[SVC_BATCH_MAX];
	struct svc_req *marks[SVC_BATCH_MAX];
	uint32_t nreads, nwrites, nmarks;
};

struct svc {
	struct svc_config cfg;
	struct bd_super super;
	struct svc_stats *st;       /* cfg.stats, or own_st */
	struct svc_stats *own_st;
	struct srv_codec codec;
	struct exec *exec;
	int epfd;
	int door[2];            /* [0] the thread reads; [1] svc_adopt and svc_stop write */
	pthread_t thread;
	bool started;
	atomic_bool stopping;
	bool failed;            /* the executor cannot go on: no more batches */
	struct svc_req *q_head, *q_tail;
	size_t q_bytes;         /* payload bytes queued over every connection */
	uint32_t q_writes;      /* queued requests that write */
	struct conn *conns;
	uint32_t nconns;        /* in the list: open, or closed and not yet reaped */
	uint32_t nopen;         /* open */
	struct {
		mono_ns window_end;
		uint32_t said, unsaid;
	} close_log;            /* closing lines said and left unsaid in this window */
	uint64_t next_conn_id;
	struct conn *touched;
	bool paused_global;     /* some connection stopped reading for SVC_QUEUE_BYTES_MAX */
	mono_ns greet_sweep_at; /* next look for connections that never greeted */
	mono_ns linger_until;   /* waiting this long for more writes to share a commit */
	struct batch batch;     /* the one being run */
	struct coh *coh;        /* what every mount may cache (NULL: caching off) */
	uint64_t inval_seq;
	struct wait_group *groups; /* replies held for other mounts' acks, oldest first */
	mono_ns groups_next;    /* when a held group is next due */
	struct mount_seen *mounts; /* every mount with a connection, or within its grace */
	struct mfence *fence;   /* fences mounts away past their grace (NULL: no fence_mount) */
	/* mounts being fenced, or whose GONE mark has not run yet */
	uint64_t gone_pending[SVC_GONE_PENDING_MAX];
	uint32_t ngone_pending;
	uint32_t nmounts, capmounts;
	mono_ns purge_at;       /* the start's grace ends (0: the purge is queued) */
	mono_ns mounts_next;    /* when mounts_sweep next has something to do */
};

/* A mount (rid) as the service has seen it. */
struct mount_seen {
	uint64_t rid;
	uint32_t conns;         /* greeted connections open now */
	mono_ns away_since;     /* the last one closed */
	struct svc_mount_id who; /* as its last greeting said */
};

/*
 * Replies held until the mounts told to drop what they cache (one INVAL
 * each, all with seq) have acknowledged, or until the grants they were
 * told about ran out, whichever is first; a mount with no connection is
 * waited out to its grants' expiry.
 */
struct wait_group {
	struct wait_group *next;
	uint64_t seq;
	uint64_t *rids;          /* the mounts that were sent the INVAL */
	bool *acked;
	uint32_t nrids, unacked;
	mono_ns unreachable_until; /* the grants of mounts we could not tell */
	mono_ns deadline;        /* every grant broken has run out by then */
	struct svc_req **reqs;
	uint32_t nreqs;
};

/* markers for the two descriptors that are not connections */
static const char LISTENER = 'L', DOOR = 'D';

void svc_get_counters(struct svc *s, uint64_t out[SVC_CTR_NR])
{
	for (int i = 0; i < SVC_CTR_NR; i++)
		out[i] = atomic_load_explicit(&s->st->ctr.v[i], memory_order_relaxed);
}

/* The admission stage's lease check (service.h): may we greet clients now? */
static bool may_serve(struct svc *s)
{
	return !atomic_load(&s->stopping) &&
	       (s->cfg.lease_ok == NULL || s->cfg.lease_ok(s->cfg.lease_arg));
}

/* ---- connections ---- */

static void conn_set_state(struct conn *c, enum conn_state to)
{
	static const bool legal[CONN_STATE_NR][CONN_STATE_NR] = {
		[CONN_GREETING] = { [CONN_SERVING] = true, [CONN_DRAINING] = true,
				    [CONN_CLOSED] = true },
		[CONN_SERVING] = { [CONN_CLOSED] = true },
		[CONN_DRAINING] = { [CONN_CLOSED] = true },
	};

	assert(legal[c->state][to]);
	c->state = to;
}

static bool conn_open(const struct conn *c)
{
	return c->state != CONN_CLOSED;
}

/* Look at c again at the end of this stage (its output, its read limits). */
static void touch(struct svc *s, struct conn *c)
{
	if (c->touched)
		return;
	c->touched = true;
	c->next_touched = s->touched;
	s->touched = c;
}

static void queue_push(struct svc *s, struct svc_req *r)
{
	r->next = NULL;
	if (s->q_tail)
		s->q_tail->next = r;
	else
		s->q_head = r;
	s->q_tail = r;
}

static void out_free_all(struct conn *c)
{
	while (c->out_head != NULL) {
		struct outbuf *o = c->out_head;

		c->out_head = o->next;
		free(o);
	}
	c->out_tail = NULL;
}

static void mount_away(struct svc *s, uint64_t rid, mono_ns now);

/* Close a connection: no more reading or writing.  Its mount may come back within the grace. */
/*
 * Whether to say a closing line now: at most CLOSE_LOG_BURST a window of
 * CLOSE_LOG_WINDOW_NS, so that a peer making bad connections by the
 * thousand cannot fill the log; what went unsaid is counted in one line
 * when the window ends (and in the counters, always).
 */
static bool close_log_pass(struct svc *s, mono_ns now)
{
	if (now >= s->close_log.window_end) {
		if (s->close_log.unsaid > 0)
			log_warn(SUB, "term %" PRIu64 ": %u more connections closed in the last %d s "
				 "(server_conns_closed counts them all)", s->cfg.term,
				 s->close_log.unsaid, (int)(CLOSE_LOG_WINDOW_NS / NSEC_PER_SEC));
		s->close_log.window_end = now + CLOSE_LOG_WINDOW_NS;
		s->close_log.said = 0;
		s->close_log.unsaid = 0;
	}
	if (s->close_log.said < CLOSE_LOG_BURST) {
		s->close_log.said++;
		return true;
	}
	s->close_log.unsaid++;
	return false;
}

static void conn_close(struct svc *s, struct conn *c, const char *why)
{
	bool greeted = c->state == CONN_SERVING;

	if (!conn_open(c))
		return;
	if (why != NULL && close_log_pass(s, mono_now()))
		log_warn(SUB, "term %" PRIu64 ": closing connection %" PRIu64 " from %s: %s",
			 s->cfg.term, c->id, c->peer, why);
	s->nopen--;
	conn_set_state(c, CONN_CLOSED);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	out_free_all(c);
	if (c->session) {
		srv_codec_free(&c->rx);
		srv_codec_free(&c->tx);
		c->session = false;
	}
	svc_ctr_add(&s->st->ctr, SVC_conns_closed, 1);
	if (greeted)
		mount_away(s, c->rid, mono_now());
}

/*
 * May a connection hand the executor more requests?  Below its own
 * limits and the service's.
 */
static bool conn_may_read(struct svc *s, struct conn *c)
{
	if (c->state != CONN_GREETING && c->state != CONN_SERVING)
		return false;
	if (c->inflight >= SVC_CONN_INFLIGHT_MAX || c->bytes >= SVC_CONN_BYTES_MAX)
		return false;
	if (s->q_bytes >= SVC_QUEUE_BYTES_MAX) {
		s->paused_global = true; /* resume_paused() looks again */
		return false;
	}
	return true;
}

static void conn_frames(struct svc *s, struct conn *c);
static void on_inval_ack(struct svc *s, struct conn *c, const uint8_t *pl, uint32_t plen);

/* Arm epoll for what the connection wants now; read frames it already has once it may. */
static void conn_update(struct svc *s, struct conn *c)
{
	uint32_t want;
	bool may_read;

	if (!conn_open(c))
		return;
	if (c->state == CONN_DRAINING && c->out_head == NULL) {
		conn_close(s, c, NULL);
		return;
	}
	may_read = conn_may_read(s, c);
	/* (a peer's half-close is news only while we read: armed alone it would fire on and on) */
	want = (may_read ? EPOLLIN | EPOLLRDHUP : 0) | (c->out_head != NULL ? EPOLLOUT : 0);
	if (want != c->events) {
		struct epoll_event ev = { .events = want, .data.ptr = c };

		epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
		c->events = want;
	}
	/* frames already read raise no EPOLLIN */
	if (may_read && c->in_len >= SRV_FRAME_HDR_BYTES)
		conn_frames(s, c);
}

/* Write what can be written now. */
static void conn_flush(struct svc *s, struct conn *c)
{
	while (conn_open(c) && c->out_head != NULL) {
		struct outbuf *o = c->out_head;
		ssize_t n = send(c->fd, o->data + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
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
	conn_update(s, c);
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
	o->next = NULL;
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

/* Queue o behind what c has to send (it is written at the end of the stage). */
static void out_append(struct svc *s, struct conn *c, struct outbuf *o)
{
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->bytes += o->len;
	touch(s, c);
}

/*
 * A request is done: its reply goes (when released and its connection is
 * still open) or is dropped, and the request is freed.
 */
static void req_done(struct svc *s, struct svc_req *r, bool release, mono_ns now)
{
	struct conn *c = r->conn;
	struct svc_reply *reply = &r->reply;
	struct rpc_reply_hdr h = { .req_id = cpu_to_le64(r->req.req_id),
				   .status = cpu_to_le32(reply->status),
				   .op = cpu_to_le32(r->req.op), .valid_ms = cpu_to_le32(r->valid_ms) };
	struct iovec pieces[3] = {
		{ &h, sizeof(h) },
		{ &reply->fixed, reply->status == 0 ? reply->fixed_len : 0 },
		{ reply->tail, reply->status == 0 ? reply->tail_len : 0 },
	};
	struct outbuf *o = NULL;

	if (r->kind == SVC_REQ_CALL) { /* (a call has a connection; marks may not) */
		c->bytes -= r->budget;
		if (release && conn_open(c))
			o = frame_out(&c->tx, SRV_MSG_REPLY, pieces, 3);
		if (o != NULL) {
			out_append(s, c, o);
			hist_add(&s->st->lat[SVC_ST_TOTAL][r->req.op], now - r->read_at);
		} else {
			svc_ctr_add(&s->st->ctr, SVC_replies_dropped, 1);
		}
	}
	if (c != NULL) {
		c->inflight--;
		touch(s, c);
	}
	free(reply->tail);
	free(r->payload);
	free(r);
}

/* The stage's replies are out: write them, and re-arm what they freed room on. */
static void flush_touched(struct svc *s)
{
	while (s->touched != NULL) {
		struct conn *c = s->touched;

		s->touched = c->next_touched;
		c->touched = false;
		conn_flush(s, c);
	}
}

/* ---- mounts ---- */

static struct mount_seen *mount_find(struct svc *s, uint64_t rid)
{
	for (uint32_t i = 0; i < s->nmounts; i++)
		if (s->mounts[i].rid == rid)
			return &s->mounts[i];
	return NULL;
}

/* A mark for the executor that is about a mount, not a connection. */
static struct svc_req *queue_mark(struct svc *s, enum svc_req_kind kind, uint64_t rid)
{
	struct svc_req *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		log_err(SUB, "term %" PRIu64 ": out of memory: mount %016" PRIx64 " is forgotten only "
			"when the service stops", s->cfg.term, rid);
		return NULL;
	}
	r->kind = kind;
	r->rid = rid;
	queue_push(s, r);
	return r;
}

static bool gone_is_pending(const struct svc *s, uint64_t rid)
{
	for (uint32_t i = 0; i < s->ngone_pending; i++)
		if (s->gone_pending[i] == rid)
			return true;
	return false;
}

/*
 * A mount's greeting, as far as being gone goes: OK; GONE when the store
 * says it was declared gone; NOT_SERVING (ask again) while its GONE mark
 * has not run yet, so it cannot slip back in before the store decides.
 */
static uint32_t mount_gone_status(struct svc *s, uint64_t rid)
{
	if (gone_is_pending(s, rid))
		return SRV_GREET_NOT_SERVING;
	return exec_mount_was_gone(s->exec, rid) ? SRV_GREET_GONE : SRV_GREET_OK;
}

/* rid's GONE mark has run: the store answers for it. */
static void gone_settled(struct svc *s, uint64_t rid)
{
	for (uint32_t i = 0; i < s->ngone_pending; i++)
		if (s->gone_pending[i] == rid) {
			s->gone_pending[i] = s->gone_pending[--s->ngone_pending];
			return;
		}
}

/* A connection of rid greeted.  false: no memory to keep track (it is refused). */
static bool mount_here(struct svc *s, uint64_t rid, const struct svc_mount_id *who)
{
	struct mount_seen *m = mount_find(s, rid);

	if (m == NULL) {
		if (s->nmounts == s->capmounts) {
			uint32_t cap = s->capmounts ? s->capmounts * 2 : 16;
			struct mount_seen *ms = realloc(s->mounts, cap * sizeof(*ms));

			if (ms == NULL)
				return false;
			s->mounts = ms;
			s->capmounts = cap;
		}
		m = &s->mounts[s->nmounts++];
		*m = (struct mount_seen){ .rid = rid };
	}
	m->conns++;
	m->who = *who;
	return true;
}

static void mount_away(struct svc *s, uint64_t rid, mono_ns now)
{
	struct mount_seen *m = mount_find(s, rid);

	if (m != NULL && m->conns > 0 && --m->conns == 0)
		m->away_since = now;
}

/*
 * rid goes: its GONE mark is queued (fenced: it was fenced first, and is
 * recorded as gone for good; bye: it said goodbye).  Until the mark runs,
 * greetings of rid are answered "not serving".
 */
static void gone_queue(struct svc *s, uint64_t rid, bool fenced, bool bye)
{
	struct svc_req *r = queue_mark(s, SVC_REQ_GONE, rid);

	if (r == NULL)
		return;
	r->fenced = fenced;
	r->bye = bye;
	if (!gone_is_pending(s, rid) && s->ngone_pending < SVC_GONE_PENDING_MAX)
		s->gone_pending[s->ngone_pending++] = rid;
}

/*
 * rid vanished holding locks or open files (the store and the executor
 * say): fence it first, and only then let what it held go.  Its greetings
 * are answered "not serving" meanwhile.  false: it holds nothing, or
 * there is nothing to fence with, so it may go at once.
 */
static bool fence_first(struct svc *s, uint64_t rid, const struct svc_mount_id *who)
{
	if (s->fence == NULL || !exec_mount_holds(s->exec, rid))
		return false;
	if (gone_is_pending(s, rid))
		return true;
	if (s->ngone_pending == SVC_GONE_PENDING_MAX || mfence_add(s->fence, rid, who) < 0) {
		log_err(SUB, "term %" PRIu64 ": out of memory: mount %016" PRIx64 " is fenced only "
			"when the service stops", s->cfg.term, rid);
		return true; /* (what it holds stays held: never given away unfenced) */
	}
	s->gone_pending[s->ngone_pending++] = rid;
	return true;
}

/* Mounts fenced since last looked: what they held goes now. */
static void fenced_take(struct svc *s)
{
	uint64_t rids[32];
	uint32_t n;

	while (s->fence != NULL && (n = mfence_done(s->fence, rids, ARRAY_SIZE(rids))) > 0)
		for (uint32_t i = 0; i < n; i++) {
			svc_ctr_add(&s->st->ctr, SVC_fenced_mounts, 1);
			gone_queue(s, rids[i], true, false);
		}
}

/*
 * The mount is gone now: forgotten here, and by the executor (once fenced,
 * if it must be).  bye: it said goodbye (else it was away past its grace,
 * and may be fenced).
 */
static void mount_gone(struct svc *s, struct mount_seen *m, bool bye)
{
	if (bye || !fence_first(s, m->rid, &m->who))
		gone_queue(s, m->rid, false, bye);
	*m = s->mounts[--s->nmounts];
}

/*
 * The start's grace is over: the purge of orphans nobody took back, and
 * every mount that held locks under an earlier server and has not come
 * back goes (fenced first, as who the store recorded when it locked).
 */
static void queue_purge(struct svc *s)
{
	uint64_t *rids = NULL;
	uint32_t n = 0;

	queue_mark(s, SVC_REQ_PURGE, 0);
	if (exec_lock_holders(s->exec, &rids, &n) < 0) {
		log_err(SUB, "term %" PRIu64 ": the mounts holding locks cannot be read: those that "
			"did not come back keep them until the next server", s->cfg.term);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct svc_mount_id who;

		if (mount_find(s, rids[i]) != NULL || gone_is_pending(s, rids[i]))
			continue;
		log_info(SUB, "term %" PRIu64 ": mount %016" PRIx64 " held locks and did not come back "
			 "within the grace: it goes", s->cfg.term, rids[i]);
		if (exec_mount_who(s->exec, rids[i], &who) < 0)
			memset(&who, 0, sizeof(who)); /* (a fence agent can still be told its rid) */
		if (!fence_first(s, rids[i], &who))
			gone_queue(s, rids[i], false, false);
	}
	free(rids);
}

/*
 * Mounts away past the grace are gone; the start's grace ends in a purge.
 * Returns how long until the next of those may be due.
 */
static mono_ns mounts_sweep(struct svc *s, mono_ns now)
{
	mono_ns grace = (mono_ns)s->cfg.grace_ms * NSEC_PER_MSEC, next = IDLE_WAIT_NS;

	for (uint32_t i = 0; i < s->nmounts;) {
		struct mount_seen *m = &s->mounts[i];

		if (m->conns == 0 && now - m->away_since >= grace) {
			mount_gone(s, m, false);
			continue;
		}
		if (m->conns == 0)
			next = MIN(next, m->away_since + grace - now);
		i++;
	}
	if (s->purge_at != 0 && now >= s->purge_at) {
		queue_purge(s);
		s->purge_at = 0;
	} else if (s->purge_at != 0) {
		next = MIN(next, s->purge_at - now);
	}
	return next;
}

/* ---- frames in ---- */

/*
 * Answer a greeting (g: its nonce), and for one that may go on, start the
 * connection's session: its frames from here on carry tags of its own.
 */
static void send_greeting_reply(struct svc *s, struct conn *c, const struct srv_greeting *g,
				uint32_t status)
{
	struct srv_greeting_reply r = {
		.fsid = s->super.fsid, .server_rid = s->cfg.rid, .term = s->cfg.term,
		.slot = (uint32_t)s->cfg.slot, .status = status, .version = SRV_PROTO_VERSION,
	};
	struct srv_greeting_reply_wire w;
	struct iovec piece = { &w, sizeof(w) };
	struct outbuf *o;

	if (srv_nonce(r.nonce) < 0) {
		conn_close(s, c, "no random nonce for its session");
		return;
	}
	srv_greeting_reply_encode(&r, &w);
	o = frame_out(&s->codec, SRV_MSG_GREETING_REPLY, &piece, 1);
	if (o == NULL) {
		conn_close(s, c, "out of memory");
		return;
	}
	out_append(s, c, o);
	if (status != SRV_GREET_OK)
		return;
	if (srv_codec_session(&c->rx, &s->codec, true, g->nonce, r.nonce) < 0) {
		conn_close(s, c, "its session's key could not be made");
		return;
	}
	if (srv_codec_session(&c->tx, &s->codec, false, g->nonce, r.nonce) < 0) {
		srv_codec_free(&c->rx);
		conn_close(s, c, "its session's key could not be made");
		return;
	}
	c->session = true;
}

static void on_greeting(struct svc *s, struct conn *c, const uint8_t *pl, uint32_t plen)
{
	struct srv_greeting g;
	uint32_t status;

	if (srv_greeting_decode(pl, plen, &g) < 0) {
		svc_ctr_add(&s->st->ctr, SVC_bad_frames, 1);
		conn_close(s, c, "a malformed greeting");
		return;
	}
	if (g.fsid != s->super.fsid)
		status = SRV_GREET_WRONG_FS;
	else if (!may_serve(s))
		status = SRV_GREET_NOT_SERVING;
	else
		status = g.client_rid != 0 ? mount_gone_status(s, g.client_rid) : SRV_GREET_OK;
	send_greeting_reply(s, c, &g, status);
	if (!conn_open(c))
		return;
	c->who.holder = g.who;
	if (status == SRV_GREET_OK && c->session && g.version == SRV_PROTO_VERSION &&
	    g.client_rid != 0 && mount_here(s, g.client_rid, &c->who)) {
		conn_set_state(c, CONN_SERVING);
		c->rid = g.client_rid;
	} else {
		conn_set_state(c, CONN_DRAINING);
	}
}

static void on_request(struct svc *s, struct conn *c, const uint8_t *pl, uint32_t plen)
{
	struct svc_req *r = calloc(1, sizeof(*r));
	uint8_t *copy = malloc(plen ? plen : 1);

	if (r == NULL || copy == NULL) {
		free(r);
		free(copy);
		conn_close(s, c, "out of memory");
		return;
	}
	memcpy(copy, pl, plen);
	if (rpc_req_decode(copy, plen, &r->req) < 0 || r->req.client_rid != c->rid) {
		free(r);
		free(copy);
		svc_ctr_add(&s->st->ctr, SVC_bad_requests, 1);
		conn_close(s, c, "a request that fails its checks");
		return;
	}
	r->kind = SVC_REQ_CALL;
	r->conn = c;
	r->rid = c->rid;
	r->who = &c->who;
	r->payload = copy;
	r->payload_len = plen;
	r->budget = rpc_req_reply_budget(&r->req);
	r->read_at = mono_now();
	c->inflight++;
	c->bytes += plen + r->budget;
	s->q_bytes += plen;
	s->q_writes += exec_req_writes(r);
	svc_ctr_add(&s->st->ctr, SVC_requests, 1);
	queue_push(s, r);
}

/* The files a mount holds open, named again: queued in order with its requests. */
static void on_holds(struct svc *s, struct conn *c, const uint8_t *pl, uint32_t plen)
{
	struct svc_req *r;

	if (plen == 0 || plen % sizeof(struct rpc_hold) != 0 ||
	    plen / sizeof(struct rpc_hold) > RPC_HOLDS_PER_FRAME) {
		svc_ctr_add(&s->st->ctr, SVC_bad_frames, 1);
		conn_close(s, c, "a malformed HOLDS frame");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL || (r->payload = malloc(plen)) == NULL) {
		free(r);
		conn_close(s, c, "out of memory");
		return;
	}
	memcpy(r->payload, pl, plen);
	r->payload_len = plen;
	r->kind = SVC_REQ_HOLDS;
	r->conn = c;
	r->rid = c->rid;
	c->inflight++;
	c->bytes += plen;
	s->q_bytes += plen;
	queue_push(s, r);
}

/* One whole frame of a connection's: taken, or it closed the connection. */
static void conn_frame(struct svc *s, struct conn *c, const uint8_t *frame, size_t len)
{
	const uint8_t *pl;
	uint32_t type, plen;
	ssize_t n = srv_frame_decode(c->session ? &c->rx : &s->codec, frame, len, &type, &pl, &plen);

	if (n >= 0)
		c->heard_at = mono_now();
	if (n < 0) {
		svc_ctr_add(&s->st->ctr, n == -EPERM ? SVC_unauthenticated : SVC_bad_frames, 1);
		conn_close(s, c, n == -EPERM ? "a frame that fails authentication" :
			   "a frame that fails its crc");
	} else if (c->state == CONN_SERVING && type == SRV_MSG_ALIVE && plen == 0) {
		/* (heard) */
	} else if (c->state == CONN_GREETING && type == SRV_MSG_GREETING) {
		on_greeting(s, c, pl, plen);
	} else if (c->state == CONN_SERVING && type == SRV_MSG_REQUEST) {
		on_request(s, c, pl, plen);
	} else if (c->state == CONN_SERVING && type == SRV_MSG_INVAL_ACK) {
		on_inval_ack(s, c, pl, plen);
	} else if (c->state == CONN_SERVING && type == SRV_MSG_HOLDS) {
		on_holds(s, c, pl, plen);
	} else if (c->state == CONN_SERVING && type == SRV_MSG_BYE && plen == 0) {
		struct mount_seen *m = mount_find(s, c->rid);

		conn_close(s, c, NULL); /* it unmounts: what it held goes now */
		if (m != NULL && m->conns == 0)
			mount_gone(s, m, true);
	} else {
		svc_ctr_add(&s->st->ctr, SVC_bad_frames, 1);
		conn_close(s, c, "a frame of the wrong type");
	}
}

/*
 * Take every whole frame out of the input buffer while the connection may
 * read: each frame counts against the limits, past them the rest waits in
 * c->in until replies free room (conn_update comes back here).
 */
static void conn_frames(struct svc *s, struct conn *c)
{
	size_t at = 0;

	while (conn_may_read(s, c) && c->in_len - at >= SRV_FRAME_HDR_BYTES) {
		ssize_t total = srv_frame_total(&s->codec, c->in + at);

		if (total < 0) {
			svc_ctr_add(&s->st->ctr, SVC_bad_frames, 1);
			conn_close(s, c, "a frame with a bad magic or an oversized length");
			return;
		}
		if (c->in_len - at < (size_t)total)
			break;
		conn_frame(s, c, c->in + at, (size_t)total);
		at += (size_t)total;
	}
	if (!conn_open(c))
		return;
	memmove(c->in, c->in + at, c->in_len - at);
	c->in_len -= at;
}

/* Room in the input buffer for the frame being read, up to the largest frame.  0 or closed. */
static int conn_in_room(struct svc *s, struct conn *c)
{
	size_t want = IN_START;

	if (c->in_len >= SRV_FRAME_HDR_BYTES) {
		ssize_t total = srv_frame_total(&s->codec, c->in);

		/* before its greeting a peer gets no more room than a greeting takes */
		if (c->state == CONN_GREETING && total > (ssize_t)GREETING_FRAME_MAX) {
			svc_ctr_add(&s->st->ctr, SVC_bad_frames, 1);
			conn_close(s, c, "a first frame larger than a greeting");
			return -EBADMSG;
		}
		want = total > 0 ? (size_t)total : c->in_cap;
	}
	if (want > c->in_cap) {
		uint8_t *bigger = realloc(c->in, want);

		if (bigger == NULL) {
			conn_close(s, c, "out of memory");
			return -ENOMEM;
		}
		c->in = bigger;
		c->in_cap = want;
	}
	return 0;
}

static void conn_read(struct svc *s, struct conn *c)
{
	for (int rounds = 0; rounds < 16 && conn_may_read(s, c); rounds++) {
		ssize_t n;

		if (conn_in_room(s, c) < 0)
			return;
		if (c->in_len == c->in_cap) {
			conn_frames(s, c);
			continue;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			conn_close(s, c, NULL);
			return;
		}
		c->in_len += (size_t)n;
		conn_frames(s, c);
	}
	touch(s, c); /* greeting replies; and the read limits */
}

/* ---- new connections ---- */

/*
 * A peer that vanished (its host lost power) is noticed in about 20 s, and
 * its open files are released with its connection.
 */
static void sock_keepalive(int fd)
{
	int on = 1, idle = 10, intvl = 3, cnt = 3;
	unsigned int user_ms = 20000;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, &on, sizeof(on)); /* (client.c) */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
}

static void peer_name(int fd, char *out, size_t len, struct bd_addr *addr)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	snprintf(out, len, "a local socket");
	memset(addr, 0, sizeof(*addr));
	if (getpeername(fd, (struct sockaddr *)&ss, &sslen) < 0)
		return;
	if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
		bd_addr_from_sockaddr(&ss, addr);
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)len);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)len);
}

/*
 * Room for a new connection from peer.  Connections that have not greeted
 * yet give way, the oldest first: past SVC_UNGREETED_PER_PEER from the
 * same address, and any of them when SVC_CONNS_MAX are open; one that
 * greeted never does.  So whoever can reach the port without the secret
 * cannot keep a mount from connecting.  False when every open connection
 * has greeted and there is no room.
 */
static bool make_room(struct svc *s, const char *peer)
{
	struct conn *oldest_here = NULL, *oldest = NULL;
	uint32_t here = 0;

	/* (the list is newest first: the last one seen is the oldest) */
	for (struct conn *c = s->conns; c != NULL; c = c->next) {
		if (c->state != CONN_GREETING)
			continue;
		oldest = c;
		if (strcmp(c->peer, peer) == 0) {
			oldest_here = c;
			here++;
		}
	}
	if (here >= SVC_UNGREETED_PER_PEER) {
		svc_ctr_add(&s->st->ctr, SVC_ungreeted_evicted, 1);
		conn_close(s, oldest_here, "evicted: too many connections from there not greeting");
		if (oldest == oldest_here)
			oldest = NULL;
	}
	if (s->nopen < SVC_CONNS_MAX)
		return true;
	if (oldest == NULL || !conn_open(oldest))
		return false;
	svc_ctr_add(&s->st->ctr, SVC_ungreeted_evicted, 1);
	conn_close(s, oldest, "evicted: the connection table is full");
	return true;
}

/* A new connection on fd (non-blocking), waiting for its greeting. */
static void conn_add(struct svc *s, int fd)
{
	struct epoll_event ev;
	char peer[sizeof(((struct conn *)NULL)->peer)];
	struct bd_addr addr;
	struct conn *c;

	peer_name(fd, peer, sizeof(peer), &addr);
	if (!make_room(s, peer) || (c = calloc(1, sizeof(*c))) == NULL) {
		if (close_log_pass(s, mono_now()))
			log_warn(SUB, "term %" PRIu64 ": %u connections open, all greeted; refusing "
				 "one from %s", s->cfg.term, s->nopen, peer);
		close(fd);
		return;
	}
	c->state = CONN_GREETING;
	c->fd = fd;
	c->id = ++s->next_conn_id;
	c->accepted_at = c->heard_at = mono_now();
	c->events = EPOLLIN | EPOLLRDHUP;
	memcpy(c->peer, peer, sizeof(c->peer));
	c->who.addr = addr;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->nopen++;
	svc_ctr_add(&s->st->ctr, SVC_conns_accepted, 1);
	ev = (struct epoll_event){ .events = c->events, .data.ptr = c };
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		conn_close(s, c, "epoll");
}

/* Take what waits on the listening socket: SVC_ACCEPT_ROUND at most a round (the rest next). */
static void accept_all(struct svc *s)
{
	for (int i = 0; i < SVC_ACCEPT_ROUND; i++) {
		int fd = accept4(s->cfg.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn(SUB, "term %" PRIu64 ": accept: %s", s->cfg.term, strerror(errno));
			return;
		}
		sock_keepalive(fd);
		conn_add(s, fd);
	}
}

static int fcntl_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* What came through the door: descriptors to adopt, or a wake-up. */
static void door_read(struct svc *s)
{
	for (;;) {
		char byte, cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &byte, 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;
		int fd;

		if (recvmsg(s->door[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0) {
			fenced_take(s); /* (the fence thread's wake-up) */
			return;
		}
		cm = CMSG_FIRSTHDR(&mh);
		if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue; /* a wake-up */
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		if (atomic_load(&s->stopping) || fcntl_nonblock(fd) < 0)
			close(fd);
		else
			conn_add(s, fd);
	}
}

int svc_adopt(struct svc *s, int fd)
{
	char byte = 'A', cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int ret = 0;

	memset(cbuf, 0, sizeof(cbuf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	if (sendmsg(s->door[1], &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
		ret = -errno;
	close(fd); /* the door holds its own copy until the thread takes it */
	return ret;
}

/* ---- the batch ---- */

static void batch_take(struct svc *s, struct batch *b)
{
	uint64_t max_bytes = exec_batch_bytes(s->exec), bytes = 0;
	uint32_t n = 0;

	b->nreads = b->nwrites = b->nmarks = 0;
	while (s->q_head != NULL && n < SVC_BATCH_MAX &&
	       (n == 0 || bytes + s->q_head->payload_len <= max_bytes)) {
		struct svc_req *r = s->q_head;
		bool writes = exec_req_writes(r);

		s->q_head = r->next;
		if (s->q_head == NULL)
			s->q_tail = NULL;
		r->next = NULL;
		bytes += r->payload_len;
		s->q_bytes -= r->payload_len;
		s->q_writes -= writes;
		if (r->conn != NULL)
			r->conn->bytes -= r->payload_len;
		if (r->kind == SVC_REQ_GONE || r->kind == SVC_REQ_PURGE)
			b->marks[b->nmarks++] = r;
		else if (writes)
			b->writes[b->nwrites++] = r;
		else
			b->reads[b->nreads++] = r;
		n++;
	}
}

/* What a reply released now lets its mount cache: recorded, and its validity. */
static void grant(struct svc *s, struct svc_req *r, mono_ns now)
{
	r->valid_ms = 0;
	if (s->coh != NULL && r->kind == SVC_REQ_CALL && conn_open(r->conn))
		r->valid_ms = coh_reply(s->coh, r->conn->rid, &r->req, &r->reply, now);
}

static void batch_done(struct svc *s, struct svc_req *const *reqs, uint32_t n, bool release)
{
	mono_ns now = mono_now();

	for (uint32_t i = 0; i < n; i++) {
		if (release)
			grant(s, reqs[i], now);
		req_done(s, reqs[i], release, now);
	}
	flush_touched(s);
}

/* ---- coherence: telling other mounts what to drop ---- */

/* One mount's INVAL being built for a batch's writes. */
struct inval_to {
	uint64_t rid;
	mono_ns expiry;          /* the latest of its grants being broken */
	uint8_t *items;
	uint32_t len, cap, count;
};

struct inval_batch {
	struct svc *s;
	struct svc_req *r;       /* the write whose changes are being looked at */
	struct inval_to *to;
	uint32_t nto, capto;
	mono_ns deadline;
	bool nomem;
};

static struct inval_to *inval_to_of(struct inval_batch *ib, uint64_t rid)
{
	for (uint32_t i = 0; i < ib->nto; i++)
		if (ib->to[i].rid == rid)
			return &ib->to[i];
	if (ib->nto == ib->capto) {
		uint32_t cap = ib->capto ? ib->capto * 2 : 4;
		struct inval_to *to = realloc(ib->to, cap * sizeof(*to));

		if (to == NULL)
			return NULL;
		ib->to = to;
		ib->capto = cap;
	}
	ib->to[ib->nto] = (struct inval_to){ .rid = rid };
	return &ib->to[ib->nto++];
}

/* coh_change's holder: the write waits for it, and it is told what to drop. */
static void on_holder(void *arg, uint64_t rid, mono_ns expiry, const struct coh_change *ch)
{
	struct inval_batch *ib = arg;
	struct inval_to *to = inval_to_of(ib, rid);
	uint32_t need = rpc_inval_item_bytes(ch->namelen);
	struct rpc_inval_item it = { .ino = cpu_to_le64(ch->ino),
				     .kind = cpu_to_le16((uint16_t)ch->kind),
				     .namelen = cpu_to_le16((uint16_t)ch->namelen) };

	ib->r->held = true;
	ib->deadline = MAX(ib->deadline, expiry);
	if (to == NULL) {
		ib->nomem = true; /* it cannot be told: waited out instead */
		return;
	}
	to->expiry = MAX(to->expiry, expiry);
	if (to->len + need > to->cap) {
		uint32_t cap = MAX(to->cap * 2, to->len + need + 256);
		uint8_t *items = realloc(to->items, cap);

		if (items == NULL) {
			ib->nomem = true;
			return;
		}
		to->items = items;
		to->cap = cap;
	}
	memset(to->items + to->len, 0, need);
	memcpy(to->items + to->len, &it, sizeof(it));
	if (ch->namelen > 0)
		memcpy(to->items + to->len + sizeof(it), ch->name, ch->namelen);
	to->len += need;
	to->count++;
}

/* Send one mount its INVAL on every connection it has: how many got it. */
static uint32_t inval_send(struct svc *s, const struct inval_to *to, uint64_t seq)
{
	struct rpc_inval_hdr h = { .seq = cpu_to_le64(seq), .count = cpu_to_le32(to->count) };
	struct iovec pieces[2] = { { &h, sizeof(h) }, { to->items, to->len } };
	uint32_t sent = 0;

	for (struct conn *c = s->conns; c != NULL; c = c->next) {
		struct outbuf *o;

		if (c->state != CONN_SERVING || c->rid != to->rid)
			continue;
		o = frame_out(&c->tx, SRV_MSG_INVAL, pieces, 2);
		if (o == NULL)
			continue;
		out_append(s, c, o);
		sent++;
	}
	if (sent > 0) {
		svc_ctr_add(&s->st->ctr, SVC_invals_sent, 1);
		svc_ctr_add(&s->st->ctr, SVC_inval_items, to->count);
	}
	return sent;
}

static void group_free(struct wait_group *g)
{
	free(g->rids);
	free(g->acked);
	free(g->reqs);
	free(g);
}

/*
 * The held replies of a batch's writes, and the mounts told: a wait group
 * (or, out of memory, the thread waits every grant out and the replies are
 * no longer held - none is released early).  The caller releases what is
 * not held, after this.
 */
static void group_make(struct svc *s, struct inval_batch *ib, struct svc_req *const *reqs,
		       uint32_t n)
{
	struct wait_group *g = calloc(1, sizeof(*g)), **tail;
	uint64_t seq = ++s->inval_seq;

	if (g != NULL) {
		g->rids = calloc(ib->nto + 1, sizeof(*g->rids));
		g->acked = calloc(ib->nto + 1, sizeof(*g->acked));
		g->reqs = calloc(n, sizeof(*g->reqs));
	}
	while (g == NULL || g->rids == NULL || g->acked == NULL || g->reqs == NULL) {
		/* no memory to wait politely: hold the thread until every grant ran out */
		mono_ns left = ib->deadline - mono_now();
		struct timespec ts = { left / NSEC_PER_SEC, left % NSEC_PER_SEC };

		if (g != NULL)
			group_free(g);
		if (left > 0)
			nanosleep(&ts, NULL);
		for (uint32_t i = 0; i < n; i++)
			reqs[i]->held = false; /* the caller releases them with the others */
		return;
	}
	g->seq = seq;
	g->deadline = ib->deadline;
	for (uint32_t i = 0; i < ib->nto; i++) {
		if (!ib->nomem && inval_send(s, &ib->to[i], seq) > 0) {
			g->rids[g->nrids++] = ib->to[i].rid;
			g->unacked++;
		} else {
			g->unreachable_until = MAX(g->unreachable_until, ib->to[i].expiry);
		}
	}
	if (ib->nomem)
		g->unreachable_until = ib->deadline;
	for (uint32_t i = 0; i < n; i++)
		if (reqs[i]->held)
			g->reqs[g->nreqs++] = reqs[i];
	svc_ctr_add(&s->st->ctr, SVC_replies_held, g->nreqs);
	for (tail = &s->groups; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = g;
}

/*
 * The writes' replies.  Every reply's grants are recorded first, then
 * each write's changes are looked up against every grant (this batch's
 * included); a write that broke another mount's grant is held until that
 * mount dropped what it cached, the others go now.  A held reply grants
 * nothing: by the time it is released, a later change may already have
 * told its mount to drop what it would carry.
 */
static void writes_done(struct svc *s, struct svc_req *const *reqs, uint32_t n, bool release)
{
	struct inval_batch ib = { .s = s };
	mono_ns now = mono_now();
	bool any_held = false;

	if (!release || s->coh == NULL) {
		batch_done(s, reqs, n, release);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		grant(s, reqs[i], now);
	for (uint32_t i = 0; i < n; i++) {
		struct svc_req *r = reqs[i];

		ib.r = r;
		r->held = r->changes_overflow;
		if (r->changes_overflow) { /* what it touched is not known: every grant is waited out */
			ib.deadline = MAX(ib.deadline, now + (mono_ns)coh_valid_ms(s->coh) * NSEC_PER_MSEC);
			coh_forget_pages(s->coh);
		}
		for (uint32_t k = 0; k < r->nchanges; k++)
			coh_change(s->coh, r->req.client_rid, &r->changes[k], now, on_holder, &ib);
		any_held |= r->held;
	}
	for (uint32_t i = 0; i < n; i++)
		if (reqs[i]->held)
			reqs[i]->valid_ms = 0;
	/* (the group takes the held ones before the others' replies free them) */
	if (any_held)
		group_make(s, &ib, reqs, n);
	for (uint32_t i = 0; i < n; i++)
		if (!reqs[i]->held)
			req_done(s, reqs[i], true, now);
	for (uint32_t i = 0; i < ib.nto; i++)
		free(ib.to[i].items);
	free(ib.to);
	flush_touched(s);
}

/* A mount acknowledged an INVAL. */
static void on_inval_ack(struct svc *s, struct conn *c, const uint8_t *pl, uint32_t plen)
{
	struct rpc_inval_ack a;
	uint64_t seq;

	if (plen != sizeof(a)) {
		svc_ctr_add(&s->st->ctr, SVC_bad_frames, 1);
		conn_close(s, c, "a malformed inval ack");
		return;
	}
	memcpy(&a, pl, sizeof(a));
	seq = le64_to_cpu(a.seq);
	svc_ctr_add(&s->st->ctr, SVC_inval_acks, 1);
	for (struct wait_group *g = s->groups; g != NULL; g = g->next) {
		if (g->seq != seq)
			continue;
		for (uint32_t i = 0; i < g->nrids; i++)
			if (g->rids[i] == c->rid && !g->acked[i]) {
				g->acked[i] = true;
				g->unacked--;
			}
		return;
	}
}

/*
 * Release the groups that are done (acknowledged and past the unreachable
 * mounts' grants, or past every grant); *next is when to look again.
 */
static void groups_poll(struct svc *s, mono_ns now, mono_ns *next)
{
	struct wait_group **p = &s->groups;

	*next = INT64_MAX;
	while (*p != NULL) {
		struct wait_group *g = *p;
		bool acked = g->unacked == 0 && now >= g->unreachable_until;

		if (!acked && now < g->deadline) {
			*next = MIN(*next, g->unacked == 0 ? g->unreachable_until : g->deadline);
			p = &g->next;
			continue;
		}
		if (!acked)
			svc_ctr_add(&s->st->ctr, SVC_inval_waits_expired, 1);
		*p = g->next;
		for (uint32_t i = 0; i < g->nreqs; i++)
			req_done(s, g->reqs[i], true, now);
		group_free(g);
	}
	flush_touched(s);
}

/* The executor cannot go on: no more batches; the lifecycle stops us. */
static void fail(struct svc *s, int res)
{
	s->failed = true;
	if (s->cfg.failed)
		s->cfg.failed(s->cfg.arg, res);
}

/* Run one batch through the executor's stages, each stage's replies sent as it ends. */
/*
 * Tell the mounts whose lock waiters wait for a lock the batch let go
 * (committed: send; not: forget).
 */
static void lock_wakes_send(struct svc *s, bool committed)
{
	struct svc_lock_wake w[64];
	uint32_t n;

	while ((n = exec_lock_wakes(s->exec, w, ARRAY_SIZE(w), !committed)) > 0) {
		for (uint32_t i = 0; i < n; i++)
			for (struct conn *c = s->conns; c != NULL; c = c->next) {
				struct rpc_lock_freed f = { .ino = cpu_to_le64(w[i].ino) };
				struct iovec piece = { &f, sizeof(f) };
				struct outbuf *o;

				if (c->state != CONN_SERVING || c->rid != w[i].rid)
					continue;
				o = frame_out(&c->tx, SRV_MSG_LOCK_FREED, &piece, 1);
				if (o == NULL)
					continue; /* (a hint: its waiters ask again in their turn) */
				out_append(s, c, o);
				touch(s, c);
			}
		flush_touched(s);
	}
}

static void run_batch(struct svc *s)
{
	struct batch *b = &s->batch;
	bool release;
	int ret;

	batch_take(s, b);
	svc_ctr_add(&s->st->ctr, SVC_batches, 1);
	svc_ctr_max(&s->st->ctr, SVC_batch_requests_max, b->nreads + b->nwrites);
	ret = exec_reads(s->exec, b->reads, b->nreads, &release);
	batch_done(s, b->reads, b->nreads, ret == 0 && release);
	if (ret == 0)
		ret = exec_writes(s->exec, b->writes, b->nwrites, &release);
	writes_done(s, b->writes, b->nwrites, ret == 0 && release);
	if (ret == 0)
		ret = exec_marks(s->exec, b->marks, b->nmarks);
	for (uint32_t i = 0; ret == 0 && i < b->nmarks; i++) /* (the store knows them now) */
		if (b->marks[i]->kind == SVC_REQ_GONE)
			gone_settled(s, b->marks[i]->rid);
	batch_done(s, b->marks, b->nmarks, false);
	lock_wakes_send(s, ret == 0);
	if (ret == 0)
		exec_lock_gauges(s->exec);
	if (ret < 0)
		fail(s, ret);
}

/* ---- the loop ---- */

/* Once the queue is below its limit, the connections it paused read again. */
static void resume_paused(struct svc *s)
{
	if (!s->paused_global || s->q_bytes >= SVC_QUEUE_BYTES_MAX)
		return;
	s->paused_global = false;
	for (struct conn *c = s->conns; c != NULL; c = c->next)
		touch(s, c);
	flush_touched(s);
}

/*
 * Close connections that did not greet within GREET_TIMEOUT_NS, and
 * mounts' connections silent for SRV_SILENT_MS (looked at once a second).
 */
static void sweep_quiet(struct svc *s, mono_ns now)
{
	mono_ns silent;

	if (now < s->greet_sweep_at)
		return;
	silent = (mono_ns)(s->cfg.silent_ms ? s->cfg.silent_ms : SRV_SILENT_MS) * NSEC_PER_MSEC;
	s->greet_sweep_at = now + NSEC_PER_SEC;
	if (s->close_log.unsaid > 0 && now >= s->close_log.window_end)
		close_log_pass(s, now); /* says what went unsaid (and counts itself in a new window) */
	for (struct conn *c = s->conns; c != NULL; c = c->next) {
		if (c->state == CONN_GREETING && now - c->accepted_at > GREET_TIMEOUT_NS)
			conn_close(s, c, "no greeting within 5 s");
		else if (c->state == CONN_SERVING && now - c->heard_at > silent) {
			svc_ctr_add(&s->st->ctr, SVC_silent_closed, 1);
			conn_close(s, c, "silent too long (a mount stopped or cut off)");
		}
	}
}

/* Free the closed connections nothing names any more. */
static void reap_closed(struct svc *s)
{
	struct conn *c = s->conns, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		if (conn_open(c) || c->inflight > 0 || c->touched)
			continue;
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
}

/*
 * Is the queue to run now?  With writes queued while commits have been
 * carrying several, wait a little for more to share the commit
 * (exec_linger_ns); *wait_ns says how long the loop may sleep.
 */
static bool batch_due(struct svc *s, mono_ns now, mono_ns *wait_ns)
{
	*wait_ns = MIN(IDLE_WAIT_NS, MAX(s->greet_sweep_at - now, 0));
	if (s->groups != NULL)
		*wait_ns = MIN(*wait_ns, MAX(s->groups_next - now, 0));
	*wait_ns = MIN(*wait_ns, MAX(s->mounts_next - now, 0));
	if (s->failed || s->q_head == NULL)
		return false;
	if (s->linger_until == 0 && s->q_writes > 0) {
		mono_ns linger = exec_linger_ns(s->exec);

		if (linger > 0)
			s->linger_until = now + linger;
	}
	if (s->linger_until != 0 && now < s->linger_until) {
		*wait_ns = MIN(*wait_ns, s->linger_until - now);
		return false;
	}
	s->linger_until = 0;
	*wait_ns = 0;
	return true;
}

static void handle_event(struct svc *s, const struct epoll_event *ev)
{
	struct conn *c = ev->data.ptr;

	if (ev->data.ptr == &LISTENER) {
		accept_all(s);
		return;
	}
	if (ev->data.ptr == &DOOR) {
		door_read(s);
		return;
	}
	if (ev->events & (EPOLLERR | EPOLLHUP))
		conn_close(s, c, NULL);
	if (conn_open(c) && (ev->events & EPOLLOUT))
		conn_flush(s, c);
	if (conn_open(c) && (ev->events & (EPOLLIN | EPOLLRDHUP)))
		conn_read(s, c);
}

static void loop_round(struct svc *s)
{
	struct epoll_event evs[EPOLL_BATCH];
	mono_ns wait_ns, now;
	bool due;
	struct timespec to;
	int n;

	due = batch_due(s, mono_now(), &wait_ns);
	if (due) {
		run_batch(s);
		resume_paused(s);
		wait_ns = 0; /* only look what else came meanwhile */
	}
	/* deleted files' data: a bounded step when idle, and now and then under load */
	if (!s->failed && exec_release_due(s->exec, !due && s->q_head == NULL, mono_now())) {
		int ret = exec_release(s->exec);

		if (ret < 0)
			fail(s, ret);
		wait_ns = 0;
	}
	to = (struct timespec){ wait_ns / NSEC_PER_SEC, wait_ns % NSEC_PER_SEC };
	n = epoll_pwait2(s->epfd, evs, EPOLL_BATCH, &to, NULL);
	/* a kernel (or valgrind) without it: milliseconds, rounded up */
	if (n < 0 && errno == ENOSYS)
		n = epoll_wait(s->epfd, evs, EPOLL_BATCH,
			       (int)((wait_ns + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC));
	for (int i = 0; i < n; i++)
		handle_event(s, &evs[i]);
	flush_touched(s);
	now = mono_now();
	if (s->groups != NULL)
		groups_poll(s, now, &s->groups_next);
	if (s->coh != NULL)
		coh_sweep(s->coh, now, 256);
	s->mounts_next = now + mounts_sweep(s, now);
	sweep_quiet(s, now);
	reap_closed(s);
}

/* Stopping: every connection closes, and what is still queued goes unanswered. */
static void shut_all(struct svc *s)
{
	for (struct conn *c = s->conns; c != NULL; c = c->next)
		conn_close(s, c, NULL);
	while (s->groups != NULL) {
		struct wait_group *g = s->groups;

		s->groups = g->next;
		for (uint32_t i = 0; i < g->nreqs; i++)
			req_done(s, g->reqs[i], false, 0);
		group_free(g);
	}
	while (s->q_head != NULL) {
		struct svc_req *r = s->q_head;

		s->q_head = r->next;
		req_done(s, r, false, 0);
	}
	s->q_tail = NULL;
	flush_touched(s);
	reap_closed(s);
}

static void *svc_main(void *arg)
{
	struct svc *s = arg;
	struct exec_config ec = { .store = s->cfg.store, .lease_ok = s->cfg.lease_ok,
				  .lease_arg = s->cfg.lease_arg, .stats = s->st };
	int ret = exec_create(&ec, &s->exec);

	if (ret < 0)
		fail(s, ret);
	while (!atomic_load(&s->stopping))
		loop_round(s);
	shut_all(s);
	exec_destroy(s->exec);
	s->exec = NULL;
	return NULL;
}

/* ---- start and stop ---- */

static int epoll_add(struct svc *s, int fd, const void *marker)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = (void *)marker };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* The fence thread's: a mount was fenced (fenced_take has it). */
static void fence_wake(void *arg)
{
	struct svc *s = arg;
	char byte = 'F';

	if (send(s->door[1], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
		log_debug(SUB, "waking the service: %s", strerror(errno));
}

int svc_start(const struct svc_config *cfg, struct svc **out)
{
	struct svc *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	s->cfg = *cfg;
	s->super = *cfg->super;
	s->cfg.super = &s->super;
	s->door[0] = s->door[1] = -1;
	s->epfd = -1;
	s->st = cfg->stats;
	s->purge_at = mono_now() + (mono_ns)cfg->grace_ms * NSEC_PER_MSEC;
	if (s->purge_at == 0)
		s->purge_at = 1;
	if (s->st == NULL) {
		s->own_st = calloc(1, sizeof(*s->own_st));
		s->st = s->own_st;
		if (s->st == NULL) {
			free(s);
			return -ENOMEM;
		}
	}
	ret = srv_codec_init(&s->codec, &s->super);
	if (ret == 0 && cfg->cache_ms > 0)
		ret = coh_create(cfg->cache_ms, &s->coh);
	if (ret < 0)
		goto fail;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s->door) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = epoll_add(s, s->door[0], &DOOR);
	if (ret == 0 && cfg->listen_fd >= 0)
		ret = epoll_add(s, cfg->listen_fd, &LISTENER);
	if (ret == 0 && cfg->fence_mount != NULL) {
		struct mfence_config fc = { .fence = cfg->fence_mount, .fence_arg = cfg->arg,
					    .wake = fence_wake, .wake_arg = s, .ctr = &s->st->ctr };

		ret = mfence_start(&fc, &s->fence);
	}
	if (ret == 0)
		ret = thread_start(&s->thread, svc_main, s);
	if (ret < 0)
		goto fail;
	s->started = true;
	*out = s;
	return 0;
fail:
	svc_stop(s);
	return ret;
}

void svc_stop(struct svc *s)
{
	char byte = 'W';

	if (s == NULL)
		return;
	atomic_store(&s->stopping, true);
	if (s->door[1] >= 0 && send(s->door[1], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
		log_debug(SUB, "waking the service: %s", strerror(errno));
	if (s->started)
		pthread_join(s->thread, NULL);
	/* (after the thread that takes its results; before the door it wakes through closes) */
	mfence_stop(s->fence); /* a fence in progress is abandoned: what it guards stays held */
	srv_codec_free(&s->codec);
	for (int i = 0; i < 2; i++)
		if (s->door[i] >= 0)
			close(s->door[i]);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->cfg.listen_fd >= 0)
		close(s->cfg.listen_fd);
	coh_destroy(s->coh);
	free(s->mounts);
	free(s->own_st);
	free(s);
}

/* ---- statistics ---- */

static const char *const stage_names[SVC_STAGE_NR] = {
	[SVC_ST_QUEUE] = "queue", [SVC_ST_APPLY] = "apply", [SVC_ST_COMMIT] = "commit",
	[SVC_ST_TOTAL] = "total",
};

/* "lat NAME n N p50_us X p99_us Y" for a histogram that counted anything. */
static void hist_line(struct strbuf *sb, const char *name, const char *op, const struct hist *h)
{
	uint64_t n = hist_count(h);

	if (n == 0)
		return;
	strbuf_addf(sb, "lat %s%s%s n %" PRIu64 " p50_us %.1f p99_us %.1f\n", name, op ? " " : "",
		    op ? op : "", n, (double)hist_quantile(h, 0.5) / 1000.0,
		    (double)hist_quantile(h, 0.99) / 1000.0);
}

int svc_stats_text(const struct svc_stats *st, char *buf, size_t len)
{
	static const char *const names[SVC_CTR_NR] = {
#define X(n) #n,
		SVC_COUNTERS(X)
#undef X
	};
	struct strbuf sb;
	char name[32];

	strbuf_init(&sb, buf, len);
	for (int i = 0; i < SVC_CTR_NR; i++)
		strbuf_addf(&sb, "server_%s %" PRIu64 "\n", names[i],
			    atomic_load_explicit(&st->ctr.v[i], memory_order_relaxed));
	for (int g = 0; g < SVC_STAGE_NR; g++) {
		snprintf(name, sizeof(name), "server_%s", stage_names[g]);
		for (uint32_t op = RPC_LOOKUP; op < RPC_OP_END; op++)
			hist_line(&sb, name, rpc_op_name(op), &st->lat[g][op]);
	}
	hist_line(&sb, "server_commit_gate", NULL, &st->commit_gate);
	hist_line(&sb, "server_commit_log", NULL, &st->commit_log);
	return sb.truncated ? -ERANGE : (int)sb.len;
}
