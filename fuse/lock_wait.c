/*
 * lock_wait.c - blocking lock requests (F_SETLKW, flock without LOCK_NB),
 * parked off the FUSE worker threads.
 *
 * A request whose lock is taken is parked here and its handler returns at
 * once, so a thousand waiters hold no worker thread between them and the
 * mount keeps serving.  One thread per mount asks again for each waiter
 * when it is due (after 1 ms, doubling to LOCK_WAIT_MAX_MS), and answers
 * the request itself: 0 once the lock is the waiter's, EDEADLK when the
 * server says the wait would deadlock, EINTR when the kernel interrupts it
 * (a signal to the program: the kernel restarts the call or hands the
 * program EINTR, never ERESTARTSYS).
 *
 * Locks.  The kernel's interrupt callback runs holding the request's lock
 * and takes ours, so this thread never calls into libfuse for a request
 * (fuse_req_interrupt_func, a reply) while it holds ours.
 */
#include "fuse/mount.h"

#include "common/common.h"
#include "common/thread.h"
#include "server/proto.h"

#include <errno.h>
#include <stdlib.h>

#define LOCK_WAIT_MIN_MS 1
#define LOCK_WAIT_MAX_MS RPC_LOCK_WAIT_ASK_MS

struct lock_waiter {
	struct lock_waiter *next;
	struct lock_waiters *lw;
	fuse_req_t req;
	struct rpc_lock want;
	mono_ns due;
	uint32_t pause_ms;
	bool interrupted;     /* under the waiters' lock */
};

struct lock_waiters {
	lock_try_fn try_lock;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started;
	bool stopping;
	struct lock_waiter *list;
	uint64_t *waiting;    /* the mount's gauge (__atomic) */
};

static void interrupted_cb(fuse_req_t req, void *arg)
{
	struct lock_waiter *w = arg;
	struct lock_waiters *lw = w->lw;

	(void)req;
	pthread_mutex_lock(&lw->lock);
	w->interrupted = true;
	pthread_cond_signal(&lw->cond);
	pthread_mutex_unlock(&lw->lock);
}

/* Take the waiter due first (interrupted ones are due at once) off the list, or NULL. */
static struct lock_waiter *take_due(struct lock_waiters *lw, mono_ns now, mono_ns *wait_ns)
{
	struct lock_waiter **best = NULL, *w;

	for (struct lock_waiter **p = &lw->list; *p != NULL; p = &(*p)->next)
		if (best == NULL || (*p)->interrupted || (*p)->due < (*best)->due) {
			best = p;
			if ((*p)->interrupted)
				break;
		}
	if (best == NULL) {
		*wait_ns = -1;
		return NULL;
	}
	w = *best;
	if (!w->interrupted && w->due > now) {
		*wait_ns = w->due - now;
		return NULL;
	}
	*best = w->next;
	return w;
}

/* The waiter's answer is res: sent, and it is forgotten. */
static void finish(struct lock_waiters *lw, struct lock_waiter *w, int res)
{
	fuse_req_interrupt_func(w->req, NULL, NULL); /* (returns once no callback runs) */
	fuse_reply_err(w->req, -res);
	__atomic_sub_fetch(lw->waiting, 1, __ATOMIC_RELAXED);
	free(w);
}

static void *waiters_main(void *arg)
{
	struct lock_waiters *lw = arg;

	pthread_mutex_lock(&lw->lock);
	while (!lw->stopping || lw->list != NULL) {
		mono_ns wait_ns;
		struct lock_waiter *w = lw->stopping ? lw->list : take_due(lw, mono_now(), &wait_ns);
		bool interrupted;
		int ret;

		if (w == NULL) {
			struct timespec until;

			if (wait_ns < 0) {
				pthread_cond_wait(&lw->cond, &lw->lock);
			} else {
				mono_deadline_ts(&until, (uint32_t)(wait_ns / NSEC_PER_MSEC + 1));
				pthread_cond_timedwait(&lw->cond, &lw->lock, &until);
			}
			continue;
		}
		if (lw->stopping)
			lw->list = w->next;
		interrupted = w->interrupted || lw->stopping;
		pthread_mutex_unlock(&lw->lock);
		/* (an interrupted waiter tells the server it waits no more) */
		ret = lw->stopping ? -EINTR : lw->try_lock(w->req, &w->want, interrupted);
		if (ret != -EAGAIN) {
			finish(lw, w, ret);
			pthread_mutex_lock(&lw->lock);
			continue;
		}
		w->pause_ms = MIN(w->pause_ms * 2, (uint32_t)LOCK_WAIT_MAX_MS);
		w->due = mono_now() + (mono_ns)w->pause_ms * NSEC_PER_MSEC;
		pthread_mutex_lock(&lw->lock);
		w->next = lw->list;
		lw->list = w;
	}
	pthread_mutex_unlock(&lw->lock);
	return NULL;
}

int lock_waiters_create(lock_try_fn try_lock, uint64_t *waiting, struct lock_waiters **out)
{
	struct lock_waiters *lw = calloc(1, sizeof(*lw));
	pthread_condattr_t ca;

	if (lw == NULL)
		return -ENOMEM;
	lw->try_lock = try_lock;
	lw->waiting = waiting;
	pthread_mutex_init(&lw->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lw->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = lw;
	return 0;
}

int lock_waiters_park(struct lock_waiters *lw, fuse_req_t req, const struct rpc_lock *want)
{
	struct lock_waiter *w = calloc(1, sizeof(*w));
	int ret = 0;

	if (w == NULL)
		return -ENOLCK;
	w->lw = lw;
	w->req = req;
	w->want = *want;
	w->pause_ms = LOCK_WAIT_MIN_MS;
	w->due = mono_now() + LOCK_WAIT_MIN_MS * NSEC_PER_MSEC;
	/* before the thread can see it (an interrupt already in runs the callback now) */
	fuse_req_interrupt_func(req, interrupted_cb, w);
	pthread_mutex_lock(&lw->lock);
	if (lw->stopping)
		ret = -EINTR;
	else if (!lw->started && (ret = thread_start(&lw->thread, waiters_main, lw)) == 0)
		lw->started = true;
	if (ret == 0) {
		w->next = lw->list;
		lw->list = w;
		__atomic_add_fetch(lw->waiting, 1, __ATOMIC_RELAXED);
		pthread_cond_signal(&lw->cond);
	}
	pthread_mutex_unlock(&lw->lock);
	if (ret < 0) {
		fuse_req_interrupt_func(req, NULL, NULL);
		free(w);
		return ret == -EINTR ? ret : -ENOLCK;
	}
	return 0;
}

void lock_waiters_wake(struct lock_waiters *lw, uint64_t ino)
{
	mono_ns now = mono_now();
	bool any = false;

	pthread_mutex_lock(&lw->lock);
	for (struct lock_waiter *w = lw->list; w != NULL; w = w->next)
		if (le64_to_cpu(w->want.ino) == ino) {
			w->due = now;
			w->pause_ms = LOCK_WAIT_MIN_MS; /* (asked often again: someone may beat it) */
			any = true;
		}
	if (any)
		pthread_cond_signal(&lw->cond);
	pthread_mutex_unlock(&lw->lock);
}

void mount_lock_freed(void *arg, uint64_t ino)
{
	struct mount_ctx *m = arg;

	if (m->waiters != NULL)
		lock_waiters_wake(m->waiters, ino);
}

void lock_waiters_destroy(struct lock_waiters *lw)
{
	if (lw == NULL)
		return;
	pthread_mutex_lock(&lw->lock);
	lw->stopping = true;
	pthread_cond_signal(&lw->cond);
	pthread_mutex_unlock(&lw->lock);
	if (lw->started)
		pthread_join(lw->thread, NULL);
	pthread_cond_destroy(&lw->cond);
	pthread_mutex_destroy(&lw->lock);
	free(lw);
}
