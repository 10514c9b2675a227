/*
 * mount_fence.c - fencing mounts that vanished holding locks or open
 * files, on a thread of its own so the service never waits for a fence.
 *
 * The service adds a mount (its rid and who it is); the thread calls the
 * configured fence (svc_config.fence_mount) for it, again and again with
 * a growing pause while it fails, until it succeeds or the service stops.
 * A mount fenced is handed back through mfence_done, and the thread wakes
 * the service with the wake callback.  Stopping signals abort_fd, which a
 * fence in progress watches, and joins the thread: it never waits for a
 * fence agent to finish.
 */
#include "server/service.h"

#include "common/thread.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

static const char *const SUB = "server";

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000

struct mfence_job {
	struct mfence_job *next;
	uint64_t rid;
	struct svc_mount_id who;
	mono_ns due;         /* not tried again before */
	uint32_t retry_ms;
	uint32_t failures;
};

struct mfence {
	struct mfence_config cfg;
	pthread_t thread;
	int abort_fd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	struct mfence_job *todo;  /* not fenced yet */
	uint64_t *done;           /* fenced, not yet taken */
	uint32_t ndone, capdone;
};

/* The job due first, or NULL; *wait_ns how long until it is due. */
static struct mfence_job *next_due(struct mfence *f, mono_ns now, mono_ns *wait_ns)
{
	struct mfence_job *best = NULL;

	for (struct mfence_job *j = f->todo; j != NULL; j = j->next)
		if (best == NULL || j->due < best->due)
			best = j;
	*wait_ns = best == NULL ? -1 : MAX(best->due - now, 0);
	return best != NULL && best->due <= now ? best : NULL;
}

static void unlink_job(struct mfence *f, struct mfence_job *job)
{
	for (struct mfence_job **p = &f->todo; *p != NULL; p = &(*p)->next)
		if (*p == job) {
			*p = job->next;
			return;
		}
}

/* Run one fence (unlocked); 0 when the mount is fenced. */
static int run_one(struct mfence *f, struct mfence_job *job)
{
	char why[512] = "";
	int ret = f->cfg.fence(f->cfg.fence_arg, job->rid, &job->who, f->abort_fd, why, sizeof(why));

	if (ret == 0) {
		log_info(SUB, "fenced mount %016" PRIx64 " (away past its grace%s): %s", job->rid,
			 job->failures ? ", after failures" : "", why[0] ? why : "done");
		return 0;
	}
	svc_ctr_add(f->cfg.ctr, SVC_mount_fence_failures, 1);
	/* the first failure, and then one line every RETRY_MAX_MS */
	if (job->failures == 0 || job->retry_ms == RETRY_MAX_MS)
		log_err(SUB, "fencing mount %016" PRIx64 " failed: %s; its locks and open files stay "
			"held, and it is tried again (every %u ms at most)", job->rid, why,
			(unsigned)RETRY_MAX_MS);
	return ret < 0 ? ret : -EIO;
}

static void *mfence_thread(void *arg)
{
	struct mfence *f = arg;

	pthread_mutex_lock(&f->lock);
	while (!f->stopping) {
		mono_ns wait_ns;
		struct mfence_job *job = next_due(f, mono_now(), &wait_ns);
		int ret;

		if (job == NULL) {
			struct timespec until;

			if (wait_ns < 0) {
				pthread_cond_wait(&f->cond, &f->lock);
				continue;
			}
			mono_deadline_ts(&until, (uint32_t)(wait_ns / NSEC_PER_MSEC + 1));
			pthread_cond_timedwait(&f->cond, &f->lock, &until);
			continue;
		}
		pthread_mutex_unlock(&f->lock);
		ret = run_one(f, job);
		pthread_mutex_lock(&f->lock);
		if (ret < 0) {
			job->failures++;
			job->retry_ms = MIN(job->retry_ms ? job->retry_ms * 2 : RETRY_MIN_MS,
					    (uint32_t)RETRY_MAX_MS);
			job->due = mono_now() + (mono_ns)job->retry_ms * NSEC_PER_MSEC;
			continue;
		}
		unlink_job(f, job);
		if (f->ndone == f->capdone) {
			uint32_t cap = f->capdone ? f->capdone * 2 : 8;
			uint64_t *d = realloc(f->done, cap * sizeof(*d));

			if (d == NULL) { /* tried again: fencing twice is harmless */
				job->next = f->todo;
				f->todo = job;
				job->due = mono_now() + RETRY_MIN_MS * NSEC_PER_MSEC;
				continue;
			}
			f->done = d;
			f->capdone = cap;
		}
		f->done[f->ndone++] = job->rid;
		free(job);
		pthread_mutex_unlock(&f->lock);
		f->cfg.wake(f->cfg.wake_arg);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int mfence_start(const struct mfence_config *cfg, struct mfence **out)
{
	struct mfence *f = calloc(1, sizeof(*f));
	pthread_condattr_t ca;
	int ret;

	if (f == NULL)
		return -ENOMEM;
	f->cfg = *cfg;
	f->abort_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->abort_fd < 0) {
		ret = -errno;
		free(f);
		return ret;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = thread_start(&f->thread, mfence_thread, f);
	if (ret < 0) {
		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->lock);
		close(f->abort_fd);
		free(f);
		return ret;
	}
	*out = f;
	return 0;
}

int mfence_add(struct mfence *f, uint64_t rid, const struct svc_mount_id *who)
{
	struct mfence_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return -ENOMEM;
	job->rid = rid;
	job->who = *who;
	pthread_mutex_lock(&f->lock);
	job->next = f->todo;
	f->todo = job;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

uint32_t mfence_done(struct mfence *f, uint64_t *rids, uint32_t max)
{
	uint32_t n;

	pthread_mutex_lock(&f->lock);
	n = MIN(max, f->ndone);
	if (n > 0) {
		memcpy(rids, f->done, n * sizeof(*rids));
		memmove(f->done, f->done + n, (f->ndone - n) * sizeof(*rids));
		f->ndone -= n;
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

void mfence_stop(struct mfence *f)
{
	uint64_t one = 1;

	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (write(f->abort_fd, &one, sizeof(one)) != sizeof(one))
		log_warn(SUB, "could not abort a mount's fence in progress");
	pthread_join(f->thread, NULL);
	while (f->todo != NULL) {
		struct mfence_job *j = f->todo;

		f->todo = j->next;
		free(j);
	}
	free(f->done);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	close(f->abort_fd);
	free(f);
}
