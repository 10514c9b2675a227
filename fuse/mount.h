/*
 * mount.h - what every FUSE request handler of a mount needs, and the
 * operations table (ops.c): every operation is forwarded to the server.
 */
#ifndef FUSEFS_FUSE_MOUNT_H
#define FUSEFS_FUSE_MOUNT_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"
#include "quorum/agent.h"

/* What every FUSE request handler needs. */
struct rpc_client;
struct u64map;
struct server;
struct lock_waiters;

struct mount_ctx {
	struct bd_dev *dev;
	struct bd_super super;
	uint64_t rid;
	int slot;                    /* -1: plain client */
	struct quorum_agent *agent;  /* NULL: plain client */
	struct server *server;       /* NULL: plain client */
	struct rpc_client *client;   /* the filesystem, through the server */
	struct u64map *nodes;         /* the kernel's lookup counts */
	struct u64map *locked;        /* inodes this mount took fcntl locks on (flush unlocks) */
	uint64_t lock_waits;          /* lock requests that had to wait (__atomic) */
	uint64_t lock_waiting;        /* and those waiting now */
	struct lock_waiters *waiters; /* where they wait (lock_wait.c) */
	struct fuse_session *se;      /* set once the session exists (for its notifications) */
	uid_t uid;
	gid_t gid;
	struct timespec mounted;
	pthread_mutex_t root_lock;    /* guards the two below */
	bool root_known;              /* a server gave us the root's attributes */
	struct stat root_st;          /* the last it gave */
};

extern const struct fuse_lowlevel_ops mount_fuse_ops;

/* ---- blocking lock requests, parked off the worker threads (lock_wait.c) ---- */

struct rpc_lock;
/*
 * Ask for the lock once more: 0 when it is the request's, -EAGAIN to wait
 * on, or why not.  give_up: the wait is over (interrupted): say so.
 */
typedef int (*lock_try_fn)(fuse_req_t req, const struct rpc_lock *want, bool give_up);

/* The mount's: GETLK until the lock is free (or the server says EDEADLK), then SETLK. */
int mount_lock_try(fuse_req_t req, const struct rpc_lock *want, bool give_up);
/* waiting: the mount's gauge of requests waiting now (__atomic). */
int lock_waiters_create(lock_try_fn try_lock, uint64_t *waiting, struct lock_waiters **out);
/*
 * Park req (its lock is taken): from now on the waiters' thread answers
 * it.  0, or -errno and req is still the caller's to answer.
 */
int lock_waiters_park(struct lock_waiters *lw, fuse_req_t req, const struct rpc_lock *want);
/* A lock on ino was let go: its waiters ask again now (any thread; it does not block). */
void lock_waiters_wake(struct lock_waiters *lw, uint64_t ino);
/* The client's lock_freed callback (client.h), arg the mount_ctx. */
void mount_lock_freed(void *arg, uint64_t ino);
/* Answer every waiter EINTR and stop (lw may be NULL). */
void lock_waiters_destroy(struct lock_waiters *lw);

struct rpc_inval;
/* The client's inval callback (client.h): drop what the kernel caches of it. */
void mount_inval(void *arg, const struct rpc_inval *it);

#endif
