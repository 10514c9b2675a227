/*
 * server.c - the metadata server's lifecycle thread.
 *
 * Commands arrive from the quorum thread (never blocking it) on a small
 * queue with an eventfd.  STOP also writes abort_efd, which a fence in
 * progress watches, so stopping never waits for a fence agent.  Commands
 * are applied in order; each START or a failure is answered with exactly
 * one FENCED or DOWN for its term, each STOP of a running server with one
 * DOWN.
 *
 * SERVE opens the store (recovering what the previous server left) and
 * starts the service (service.h): one thread for the connections and the
 * executor.
 * STOP, or the service failing (fenced by the term gate, the device),
 * stops it and closes the store - abandoned, writing nothing more, when
 * fenced or failed.
 */
#include "server/server.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/sockaddr.h"
#include "common/thread.h"
#include "quorum/fence.h"
#include "server/fence.h"
#include "server/proto.h"
#include "server/service.h"
#include "server/store.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *const SUB = "server";

#define CMD_MAX 32

enum srv_cmd_type { SC_START, SC_SERVE, SC_STOP, SC_FAILED, SC_EXIT };

struct srv_cmd {
	enum srv_cmd_type type;
	uint64_t term;
	int res;
};

enum srv_phase { PH_IDLE, PH_FENCED, PH_SERVING };

struct server {
	struct server_config cfg;
	struct bd_super super;
	char fence_cmd[4096];
	struct quorum_agent *agent; /* set with the first command, under lock */
	pthread_t thread;
	bool thread_started;
	int cmd_efd;
	int abort_efd;
	pthread_mutex_t lock;
	struct srv_cmd cmds[CMD_MAX];
	int ncmds;
	/* the thread's own */
	enum srv_phase phase;
	uint64_t term;
	struct store *store;  /* open while serving */
	struct svc *svc;      /* running while serving */
	struct svc_stats *stats;  /* every term's service counts here */
};

static void efd_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		log_err(SUB, "eventfd write failed: %s", strerror(errno));
}

static void efd_clear(int fd)
{
	uint64_t v;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (poll(&p, 1, 0) == 1 && read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

static void push_res(struct server *s, struct quorum_agent *a, enum srv_cmd_type type,
		     uint64_t term, int res)
{
	pthread_mutex_lock(&s->lock);
	if (a != NULL)
		s->agent = a;
	if (s->ncmds < CMD_MAX)
		s->cmds[s->ncmds++] = (struct srv_cmd){ type, term, res };
	else
		log_err(SUB, "command queue full; dropped command %d for term %" PRIu64, type, term);
	pthread_mutex_unlock(&s->lock);
	efd_signal(s->cmd_efd);
}

static void push(struct server *s, struct quorum_agent *a, enum srv_cmd_type type, uint64_t term)
{
	push_res(s, a, type, term, 0);
}

static void op_start(void *arg, struct quorum_agent *a, uint64_t term)
{
	push(arg, a, SC_START, term);
}

static void op_serve(void *arg, struct quorum_agent *a, uint64_t term)
{
	push(arg, a, SC_SERVE, term);
}

static void op_stop(void *arg, struct quorum_agent *a, uint64_t term)
{
	struct server *s = arg;

	efd_signal(s->abort_efd); /* a fence in progress gives up at once */
	push(s, a, SC_STOP, term);
}

struct quorum_server_ops server_ops(struct server *s)
{
	return (struct quorum_server_ops){ .start = op_start, .serve = op_serve, .stop = op_stop,
					   .arg = s };
}

static struct quorum_agent *agent_of(struct server *s)
{
	struct quorum_agent *a;

	pthread_mutex_lock(&s->lock);
	a = s->agent;
	pthread_mutex_unlock(&s->lock);
	return a;
}

static void count(struct server *s, enum quorum_agent_counter c)
{
	struct quorum_agent *a = agent_of(s);

	if (a)
		quorum_agent_count(a, c);
}

/* ---- fencing ---- */

static int fence_one(struct server *s, const struct quorum_fence_target *t,
		     const struct bd_qblock *blocks, const char *unreadable_why, uint64_t term)
{
	const struct bd_qblock *b = &blocks[t->slot];
	const bool unreadable = t->event == QUORUM_FENCE_UNREADABLE;
	struct quorum_fence_config fcfg = {
		.fence_cmd = s->fence_cmd[0] ? s->fence_cmd : NULL,
		.timeout_ms = s->cfg.fence_timeout_ms,
		.self = s->cfg.self,
	};
	struct quorum_fence_request req = {
		.slot = t->slot, .rid = t->rid, .term = t->term,
		.addr = s->super.slots[t->slot],
		.reason = unreadable ? "quorum_block_unreadable" : "quorum_block_leader",
		.detail = unreadable ? unreadable_why : NULL,
		.holder_known = !unreadable && b->holder_rid == t->rid && b->holder_pid != 0,
		.replaced = !unreadable && b->prev_holder_rid == t->rid && b->holder_rid != t->rid,
	};
	char addr[BD_ADDR_STRLEN], why[512];
	mono_ns started = mono_now();
	int ret;

	if (req.holder_known) {
		req.holder.pid = b->holder_pid;
		req.holder.start_ticks = b->holder_start_ticks;
		req.holder.pidns = b->holder_pidns;
		memcpy(req.holder.boot_id, b->holder_boot_id, sizeof(req.holder.boot_id));
		memcpy(req.holder.host, b->holder_host, sizeof(req.holder.host));
	}
	bd_addr_format(&req.addr, addr, sizeof(addr));
	if (unreadable)
		log_info(SUB, "term %" PRIu64 ": fencing slot %d addr %s as a possible earlier leader "
			 "(%s) with %s", term, t->slot, addr, unreadable_why,
			 fcfg.fence_cmd ? fcfg.fence_cmd : "the local fencer");
	else
		log_info(SUB, "term %" PRIu64 ": fencing earlier leader rid %016" PRIx64 " slot %d "
			 "addr %s term %" PRIu64 " (%s) with %s", term, t->rid, t->slot, addr, t->term,
			 t->event == FUSEFS_QEV_ELECT ? "elected, not stopped" :
							"earlier server of its slot",
			 fcfg.fence_cmd ? fcfg.fence_cmd : "the local fencer");
	count(s, QCTR_fences_started);
	ret = quorum_fence_run(&req, &fcfg, s->abort_efd, why, sizeof(why));
	if (ret == 0) {
		log_info(SUB, "term %" PRIu64 ": fenced rid %016" PRIx64 " slot %d addr %s term %" PRIu64
			 " in %" PRId64 " ms: %s", term, t->rid, t->slot, addr, t->term,
			 (mono_now() - started) / NSEC_PER_MSEC, why[0] ? why : "fence_cmd exited 0");
		count(s, QCTR_fences_succeeded);
	} else {
		log_err(SUB, "term %" PRIu64 ": fencing rid %016" PRIx64 " slot %d addr %s term %" PRIu64
			" failed: %s", term, t->rid, t->slot, addr, t->term, why);
		count(s, QCTR_fences_failed);
	}
	return ret;
}

/*
 * The service's: fence a mount that vanished holding locks or open files
 * (on the service's fence thread), with the same agent as earlier leaders,
 * told it is a client.
 */
static int fence_mount_cb(void *arg, uint64_t rid, const struct svc_mount_id *who, int abort_fd,
			  char *why, size_t whylen)
{
	struct server *s = arg;
	struct quorum_fence_config fcfg = {
		.fence_cmd = s->fence_cmd[0] ? s->fence_cmd : NULL,
		.timeout_ms = s->cfg.fence_timeout_ms,
		.self = s->cfg.self,
	};
	struct quorum_fence_request req = {
		.slot = -1, .rid = rid, .addr = who->addr, .reason = "client",
		.holder_known = who->holder.pid != 0, .holder = who->holder,
	};
	char addr[BD_ADDR_STRLEN];

	pthread_mutex_lock(&s->lock);
	req.term = s->term;
	pthread_mutex_unlock(&s->lock);
	bd_addr_format(&req.addr, addr, sizeof(addr));
	log_info(SUB, "term %" PRIu64 ": fencing mount %016" PRIx64 " (pid %" PRIu64 " on %s, from "
		 "%s) with %s", req.term, rid, who->holder.pid, who->holder.host[0] ?
		 who->holder.host : "an unknown host", who->addr.family ? addr : "a local socket",
		 fcfg.fence_cmd ? fcfg.fence_cmd : "the local fencer");
	return quorum_fence_run(&req, &fcfg, abort_fd, why, whylen);
}

/* Fence every earlier leader the blocks name.  0 when all are fenced. */
static int fence_earlier(struct server *s, uint64_t term)
{
	struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS];
	char why[FUSEFS_QUORUM_MAX_SLOTS][BD_QBLOCK_WHY_LEN];
	int res[FUSEFS_QUORUM_MAX_SLOTS];
	const int slot = s->cfg.slot;
	uint16_t present = bd_present_mask(&s->super), ok, unreadable;
	struct quorum_fence_plan plan;
	int ret;

	ok = bd_read_qblocks_each(s->cfg.dev, &s->super, blocks, res, why);
	if (res[slot] < 0 && res[slot] != -EBADMSG) {
		/* our own path to the device fails: nothing read now says anything */
		log_err(SUB, "term %" PRIu64 ": cannot fence: %s", term, why[slot]);
		return res[slot];
	}
	unreadable = present & ~ok;
	quorum_fence_select(blocks, ok, term, s->cfg.rid, &plan);
	if (plan.superseded_term) {
		log_warn(SUB, "term %" PRIu64 ": not serving: slot %d was elected in newer term %"
			 PRIu64, term, plan.superseded_slot, plan.superseded_term);
		return -ESTALE;
	}
	quorum_fence_add_unreadable(&plan, unreadable, slot);
	if (plan.count == 0)
		log_info(SUB, "term %" PRIu64 ": no earlier leader to fence", term);
	for (int i = 0; i < plan.count; i++) {
		ret = fence_one(s, &plan.target[i], blocks, why[plan.target[i].slot], term);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- serving ---- */

/*
 * bind(2), waiting (5 s at most) while the address is in use: a listener
 * of our slot's previous process may still be going away.  0 or -errno.
 */
static int bind_waiting(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct timespec pause = { 0, 50 * 1000000L };

	for (int tries = 0; bind(fd, sa, len) < 0; tries++) {
		if (errno != EADDRINUSE || tries >= 100)
			return -errno;
		nanosleep(&pause, NULL);
	}
	return 0;
}

static int listen_on_slot(struct server *s, uint64_t term, int *fd_out)
{
	struct sockaddr_storage ss;
	char addr[BD_ADDR_STRLEN];
	socklen_t len;
	int fd, one = 1, ret;

	bd_addr_format(&s->super.slots[s->cfg.slot], addr, sizeof(addr));
	ret = bd_addr_to_sockaddr(&s->super.slots[s->cfg.slot], &ss, &len);
	if (ret < 0)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	ret = bind_waiting(fd, (struct sockaddr *)&ss, len);
	if (ret == 0 && listen(fd, 128) < 0)
		ret = -errno;
	if (ret < 0) {
		log_err(SUB, "term %" PRIu64 ": cannot listen on %s: %s", term, addr, errstr(ret));
		close(fd);
		return ret;
	}
	log_info(SUB, "term %" PRIu64 ": serving on %s (tcp)", term, addr);
	*fd_out = fd;
	return 0;
}

/*
 * The lease, asked by the service and the store alike (one mechanism:
 * service.h and docs/store.md list where): the agent's, for the term
 * being served.
 */
static bool lease_holds(void *arg)
{
	struct server *s = arg;
	struct quorum_agent *a = agent_of(s);

	return a != NULL && quorum_agent_may_serve(a, s->term);
}

/*
 * How long mounts may cache what the service tells them: a tenth of the
 * heartbeat timeout, at most a second.  Every grant is made while our
 * lease holds (the release of each reply asks it), and the lease ends at
 * least a fifth of the timeout before any other member can be elected
 * (docs/quorum.md), so what we granted has run out before a later server
 * serves (docs/coherence.md).
 */
static uint32_t cache_ms_of(struct server *s)
{
	struct quorum_agent *a = agent_of(s);

	return a == NULL ? 0 : MIN(1000u, quorum_agent_hb_timeout(a) / 10);
}

/*
 * How long a mount that lost its connection keeps its open files, and how
 * long the files an earlier server left open wait for their mounts: three
 * heartbeat timeouts (a failover and a reconnect fit in it), at least 10 s.
 */
static uint32_t grace_ms_of(struct server *s)
{
	struct quorum_agent *a = agent_of(s);

	if (s->cfg.grace_ms != 0)
		return s->cfg.grace_ms;
	return MAX(10000u, a == NULL ? 0 : 3 * quorum_agent_hb_timeout(a));
}

/* From the executor: the service cannot go on. */
static void svc_failed_cb(void *arg, int res)
{
	struct server *s = arg;

	push_res(s, NULL, SC_FAILED, s->term, res);
}

/*
 * FENCE is durable: open the store (recovering what the previous server
 * left), listen, and start the service.  0 or -errno with a log line.
 */
static int do_serve(struct server *s, uint64_t term)
{
	struct store_config scfg = {
		.dev = s->cfg.dev, .super = &s->super, .term = term,
		.lease_ok = lease_holds, .lease_arg = s,
	};
	struct svc_config vcfg = {
		.super = &s->super, .slot = s->cfg.slot, .rid = s->cfg.rid, .term = term,
		.lease_ok = lease_holds, .lease_arg = s, .failed = svc_failed_cb, .arg = s,
		.stats = s->stats, .cache_ms = cache_ms_of(s), .grace_ms = grace_ms_of(s),
		.fence_mount = fence_mount_cb,
	};
	mono_ns t0 = mono_now();
	char why[512];
	int fd = -1, ret;

	ret = store_open(&scfg, &s->store, why, sizeof(why));
	if (ret < 0) {
		log_err(SUB, "term %" PRIu64 ": cannot open the store: %s", term, why);
		return ret;
	}
	log_info(SUB, "term %" PRIu64 ": store open (recovered) in %" PRId64 " ms", term,
		 (mono_now() - t0) / NSEC_PER_MSEC);
	ret = listen_on_slot(s, term, &fd);
	if (ret == 0) {
		vcfg.listen_fd = fd;
		vcfg.store = s->store;
		struct svc *v = NULL;

		ret = svc_start(&vcfg, &v);
		pthread_mutex_lock(&s->lock);
		s->svc = v;
		pthread_mutex_unlock(&s->lock);
		if (ret < 0)
			log_err(SUB, "term %" PRIu64 ": cannot start the service: %s", term, errstr(ret));
	}
	if (ret < 0) {
		store_close(s->store);
		s->store = NULL;
	}
	return ret;
}

/* ---- the thread ---- */

/*
 * A device write this process gave up on (timed out, never came back) may
 * still land at any later time, over what a newer leader wrote since, and
 * nothing here can call it back.  So this process must neither record STOP
 * for its term (which tells the next leader it need not fence us) nor serve
 * again: it fences itself.  By default the process exits at once; the next
 * leader finds our ELECT without a STOP and fences us, and a fence waits
 * until we have exited, which waits for every transfer we had outstanding
 * (docs/store.md, "The term gate and writes already in flight").
 */
static void fence_self_if_writes_lost(struct server *s, uint64_t term)
{
	struct bd_stats st;

	bd_get_stats(s->cfg.dev, &st);
	if (st.lost_writes == 0)
		return;
	log_err(SUB, "term %" PRIu64 ": %" PRIu64 " write(s) to %s timed out and may still land: "
		"this member fences itself: it exits now (mount it again once the device answers "
		"in time)", term, st.lost_writes, bd_path(s->cfg.dev));
	_exit(EXIT_FAILURE);
}

static void report_down(struct server *s, uint64_t term, int res)
{
	struct quorum_agent *a = agent_of(s);

	if (s->svc != NULL) {
		struct svc *v = s->svc;

		pthread_mutex_lock(&s->lock);
		s->svc = NULL;
		pthread_mutex_unlock(&s->lock);
		svc_stop(v);
	}
	if (s->store != NULL) {
		struct store_stats st;

		store_get_stats(s->store, &st);
		if (st.fenced || res < 0)
			store_abandon(s->store); /* write nothing more */
		else
			store_close(s->store);
		s->store = NULL;
	}
	s->phase = PH_IDLE;
	fence_self_if_writes_lost(s, term); /* before DOWN: no STOP may be recorded */
	if (a)
		quorum_agent_server_down(a, term, res);
}

static void do_start(struct server *s, uint64_t term)
{
	struct quorum_agent *a;
	int ret;

	if (s->phase != PH_IDLE) /* a server of an older term still up: stop it first */
		report_down(s, s->term, 0);
	s->term = term;
	fence_self_if_writes_lost(s, term);
	ret = fence_earlier(s, term);
	if (ret < 0) {
		report_down(s, term, ret);
		return;
	}
	s->phase = PH_FENCED;
	a = agent_of(s);
	if (a)
		quorum_agent_server_fenced(a, term);
}

static bool run_cmd(struct server *s, const struct srv_cmd *c)
{
	switch (c->type) {
	case SC_START:
		do_start(s, c->term);
		break;
	case SC_SERVE:
		if (s->phase == PH_FENCED && s->term == c->term) {
			int ret = do_serve(s, c->term);

			if (ret < 0)
				report_down(s, c->term, ret);
			else
				s->phase = PH_SERVING;
		}
		break;
	case SC_FAILED:
		if (s->phase == PH_SERVING && s->term == c->term) {
			log_err(SUB, "term %" PRIu64 ": the service failed (%s); stopping it", c->term,
				errstr(c->res));
			report_down(s, c->term, c->res);
		}
		break;
	case SC_STOP:
		efd_clear(s->abort_efd);
		if (s->phase != PH_IDLE && s->term == c->term) {
			log_info(SUB, "term %" PRIu64 ": stopped", c->term);
			report_down(s, c->term, 0);
		}
		break;
	case SC_EXIT:
		if (s->phase != PH_IDLE)
			report_down(s, s->term, -ESHUTDOWN);
		return false;
	}
	return true;
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	bool running = true;

	while (running) {
		struct pollfd p = { .fd = s->cmd_efd, .events = POLLIN };
		struct srv_cmd cmds[CMD_MAX];
		int n;

		if (poll(&p, 1, 1000) < 0) {
			if (errno != EINTR)
				log_warn(SUB, "poll: %s", strerror(errno));
			continue;
		}
		if (!(p.revents & POLLIN))
			continue;
		efd_clear(s->cmd_efd);
		pthread_mutex_lock(&s->lock);
		n = s->ncmds;
		memcpy(cmds, s->cmds, sizeof(cmds[0]) * (size_t)n);
		s->ncmds = 0;
		pthread_mutex_unlock(&s->lock);
		for (int i = 0; i < n && running; i++)
			running = run_cmd(s, &cmds[i]);
	}
	return NULL;
}

int server_counters_text(struct server *s, char *buf, size_t len)
{
	return svc_stats_text(s->stats, buf, len);
}

int server_create(const struct server_config *cfg, struct server **out)
{
	struct server *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (s == NULL)
		return -ENOMEM;
	s->cfg = *cfg;
	s->super = *cfg->super;
	s->cfg.super = &s->super;
	if (cfg->fence_cmd)
		snprintf(s->fence_cmd, sizeof(s->fence_cmd), "%s", cfg->fence_cmd);
	s->cfg.fence_cmd = NULL;
	s->stats = calloc(1, sizeof(*s->stats));
	s->cmd_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->abort_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&s->lock, NULL);
	if (s->stats == NULL || s->cmd_efd < 0 || s->abort_efd < 0) {
		ret = s->stats == NULL ? -ENOMEM : -EMFILE;
		goto fail;
	}
	ret = thread_start(&s->thread, server_main, s);
	if (ret < 0)
		goto fail;
	s->thread_started = true;
	*out = s;
	return 0;
fail:
	server_destroy(s);
	return ret;
}

void server_destroy(struct server *s)
{
	if (s == NULL)
		return;
	if (s->thread_started) {
		efd_signal(s->abort_efd);
		push(s, NULL, SC_EXIT, 0);
		pthread_join(s->thread, NULL);
	}
	if (s->cmd_efd >= 0)
		close(s->cmd_efd);
	if (s->abort_efd >= 0)
		close(s->abort_efd);
	pthread_mutex_destroy(&s->lock);
	free(s->stats);
	free(s);
}
