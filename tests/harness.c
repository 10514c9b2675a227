/*
 * harness.c - the request path in one process (see harness.h).
 */
#include "tests/harness.h"

#include "blockdev/codec.h"
#include "blockdev/tools.h"
#include "fuse/client.h"
#include "server/fs.h"
#include "server/service.h"
#include "server/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int format_fill(struct sqlite3 *db, void *arg)
{
	const struct fs_format_opts *o = arg;

	return fs_format(db, o);
}

static int format_store(void *arg, struct bd_dev *dev, const struct bd_super *s, char *why,
			size_t whylen)
{
	return store_create(dev, s, format_fill, arg, why, whylen);
}

static bool lease_cb(void *arg)
{
	return atomic_load(&((struct harness *)arg)->lease);
}

static void failed_cb(void *arg, int res)
{
	struct harness *h = arg;

	atomic_store(&h->failed_res, res);
	atomic_fetch_add(&h->failures, 1);
}

/* The in-memory fence: it fences (records the rid) unless told to fail. */
static int fence_cb(void *arg, uint64_t rid, const struct svc_mount_id *who, int abort_fd,
		    char *why, size_t whylen)
{
	struct harness *h = arg;

	(void)who;
	(void)abort_fd;
	atomic_fetch_add(&h->fences, 1);
	if (atomic_load(&h->fence_fails)) {
		snprintf(why, whylen, "the harness's fence was told to fail");
		return -EHOSTUNREACH;
	}
	atomic_store(&h->fenced_rid, rid);
	snprintf(why, whylen, "the harness's fence recorded it");
	return 0;
}

int harness_serve(struct harness *h, char *why, size_t whylen)
{
	struct store_config scfg = { .dev = h->dev, .super = &h->super, .term = HARNESS_TERM,
				     .lease_ok = lease_cb, .lease_arg = h };
	struct svc_config vcfg = { .super = &h->super, .slot = 0, .rid = 0x5e5e, .term = HARNESS_TERM,
				   .lease_ok = lease_cb, .lease_arg = h, .listen_fd = -1,
				   .failed = failed_cb, .arg = h, .stats = h->stats,
				   .cache_ms = h->cache_ms, .grace_ms = h->grace_ms,
				   .silent_ms = h->silent_ms, .fence_mount = fence_cb };
	struct svc *svc;
	int ret = store_open(&scfg, &h->store, why, whylen);

	if (ret < 0)
		return ret;
	vcfg.store = h->store;
	ret = svc_start(&vcfg, &svc);
	if (ret == 0) {
		pthread_mutex_lock(&h->svc_lock);
		h->svc = svc;
		pthread_mutex_unlock(&h->svc_lock);
	}
	if (ret < 0) {
		snprintf(why, whylen, "svc_start: %s", errstr(ret));
		store_close(h->store);
		h->store = NULL;
	}
	return ret;
}

int harness_mkfs(struct bd_dev *dev, const struct fs_time *now, struct bd_super *super, char *why,
		 size_t whylen)
{
	struct fs_format_opts fo = { .root_mode = 0777, .now = *now };
	struct bd_mkfs_opts mo = { .format_store = format_store, .format_arg = &fo };
	int ret;

	memset(super, 0, sizeof(*super));
	ret = bd_mkfs_add_slot(super, "0,127.0.0.1,7101", why, whylen);
	if (ret == 0)
		ret = bd_mkfs_add_slot(super, "1,127.0.0.1,7102", why, whylen);
	if (ret == 0)
		ret = bd_mkfs_add_slot(super, "2,127.0.0.1,7103", why, whylen);
	if (ret == 0)
		ret = bd_mkfs(dev, super, &mo, why, whylen);
	return ret;
}

int harness_start(struct harness *h, uint64_t seed, char *why, size_t whylen)
{
	struct timespec ts;
	struct fs_time now;
	int ret;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->svc_lock, NULL);
	atomic_store(&h->lease, true);
	h->cache_ms = 1000;
	h->grace_ms = 500;
	h->silent_ms = 60000;
	h->stats = calloc(1, sizeof(*h->stats));
	if (h->stats == NULL)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (struct fs_time){ ts.tv_sec, (uint32_t)ts.tv_nsec };
	ret = bd_mem_open(HARNESS_DEV_BLOCKS, 512, seed, &h->dev);
	if (ret == 0)
		ret = harness_mkfs(h->dev, &now, &h->super, why, whylen);
	if (ret == 0)
		ret = harness_serve(h, why, whylen);
	if (ret < 0)
		harness_destroy(h);
	return ret;
}

void harness_halt(struct harness *h, bool abandon)
{
	struct svc *svc;

	pthread_mutex_lock(&h->svc_lock); /* (no dial adopts into it from here) */
	svc = h->svc;
	h->svc = NULL;
	pthread_mutex_unlock(&h->svc_lock);
	svc_stop(svc);
	if (h->store != NULL) {
		if (abandon)
			store_abandon(h->store);
		else
			store_close(h->store);
	}
	h->store = NULL;
}

void harness_destroy(struct harness *h)
{
	harness_cut(h);
	harness_halt(h, false);
	if (h->dev != NULL)
		bd_close(h->dev);
	h->dev = NULL;
	free(h->stats);
	h->stats = NULL;
}

/* The client's dial: a socketpair whose other end the service adopts. */
static int dial_pair(void *arg, int *fd, char *why, size_t whylen)
{
	return harness_raw(arg, fd) == 0 ? 0 : (snprintf(why, whylen, "no socketpair"), -EHOSTDOWN);
}

int harness_raw(struct harness *h, int *fd)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* (a second descriptor of the client's end: shutting it down cuts the connection) */
	if (h->nends < ARRAY_SIZE(h->ends) && (h->ends[h->nends] = dup(sv[0])) >= 0)
		h->nends++;
	/* (a client's watch thread may dial while no service runs: refused, as a closed port) */
	pthread_mutex_lock(&h->svc_lock);
	ret = h->svc ? svc_adopt(h->svc, sv[1]) : (close(sv[1]), -ECONNREFUSED);
	pthread_mutex_unlock(&h->svc_lock);
	if (ret < 0) {
		close(sv[0]);
		return ret;
	}
	*fd = sv[0];
	return 0;
}

void harness_invals_init(struct harness_invals *iv)
{
	memset(iv, 0, sizeof(*iv));
	pthread_mutex_init(&iv->lock, NULL);
}

static void record_inval(void *arg, const struct rpc_inval *it)
{
	struct harness_invals *iv = arg;
	struct timespec pause = { 0, 5 * 1000000L };

	for (int i = 0; i < 2000; i++) { /* a stopped mount, for at most 10 s */
		bool block;

		pthread_mutex_lock(&iv->lock);
		block = iv->block;
		pthread_mutex_unlock(&iv->lock);
		if (!block)
			break;
		nanosleep(&pause, NULL);
	}
	pthread_mutex_lock(&iv->lock);
	iv->count++;
	iv->last = *it;
	memcpy(iv->last_name, it->name ? it->name : "", it->name ? it->namelen : 0);
	iv->last_name[it->name ? it->namelen : 0] = '\0';
	iv->last.name = iv->last_name;
	pthread_mutex_unlock(&iv->lock);
}

int harness_client_iv(struct harness *h, uint64_t rid, struct harness_invals *iv,
		      struct rpc_client **out)
{
	static struct harness_invals sink = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct rpc_client_config cfg = { .super = &h->super, .rid = rid, .wait_ms = 5000,
					 .dial = dial_pair, .dial_arg = h, .inval = record_inval,
					 .inval_arg = iv ? iv : &sink };

	return rpc_client_create(&cfg, out);
}

void harness_cut(struct harness *h)
{
	for (uint32_t i = 0; i < h->nends; i++) {
		shutdown(h->ends[i], SHUT_RDWR);
		close(h->ends[i]);
	}
	h->nends = 0;
}

int harness_client(struct harness *h, uint64_t rid, struct rpc_client **out)
{
	return harness_client_iv(h, rid, NULL, out);
}

void harness_poke_elect(struct bd_dev *dev, uint64_t fsid, int slot, uint64_t term)
{
	struct fusefs_quorum_block *b = bd_alloc(1);
	struct bd_qblock qb = { .vote_slot = -1 };

	bd_qblock_set_event(&qb, FUSEFS_QEV_ELECT, 0x1234, term, 0, 0);
	bd_qblock_encode(&qb, fsid, bd_quorum_blkno(slot), b);
	bd_mem_poke(dev, bd_quorum_blkno(slot), b, 1);
	bd_free(b);
}

void harness_elect(struct harness *h, int slot, uint64_t term)
{
	harness_poke_elect(h->dev, h->super.fsid, slot, term);
}
