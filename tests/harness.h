/*
 * harness.h - the request path in one process: the service (server/
 * service.h) over the store on the in-memory device, and clients
 * (fuse/client.h) connected to it over socketpairs through the service's
 * door (svc_adopt) and the client's dial seam.  No root, no FUSE, no
 * network: what runs is the product's own client, service, executor,
 * dispatch, filesystem logic, store and VFS, with the device's faults
 * (crashes, failed calls, held writes) in the test's hands.
 *
 * Used by the Check suite "service" (unit_service.c); built to be driven
 * by a whole-system simulator too: nothing in it is Check's.
 *
 * Functions return 0 or a negative errno, with why filled on failure.
 */
#ifndef FUSEFS_TESTS_HARNESS_H
#define FUSEFS_TESTS_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"
#include "server/proto.h"

struct store;
struct svc;
struct rpc_client;
struct svc_stats;

#define HARNESS_DEV_BLOCKS 8192 /* 32 MiB */
#define HARNESS_TERM 3          /* the term the service serves in */

struct harness {
	struct bd_dev *dev;
	struct bd_super super;
	struct store *store;
	struct svc *svc;             /* NULL between harness_halt and harness_serve */
	pthread_mutex_t svc_lock;    /* svc as the clients' dials see it (they run on their threads) */
	atomic_bool lease;           /* what the lease callback answers (true at start) */
	atomic_int failures;         /* times the service said it cannot go on */
	atomic_int failed_res;       /* and the last reason */
	struct svc_stats *stats;     /* every service's, across restarts */
	uint32_t cache_ms;           /* the grants' validity (1000 at start; set before serving) */
	uint32_t grace_ms;           /* a mount's grace (500 at start; set before serving) */
	uint32_t silent_ms;          /* a silent connection's end (60 s at start: raw test ends are silent) */
	/* the service's fence for vanished mounts: in memory, told to fail or not */
	atomic_bool fence_fails;     /* true: every fence fails (as with no agent to reach) */
	atomic_int fences;           /* fences tried */
	_Atomic uint64_t fenced_rid; /* the last mount fenced */
	int ends[64];                /* the client ends of the socketpairs, again, to cut them */
	uint32_t nends;
};

/* What a harness client's kernel would have been told to drop (client.h's inval). */
struct harness_invals {
	pthread_mutex_t lock;
	uint32_t count;
	struct rpc_inval last;
	char last_name[RPC_NAME_MAX + 1];
	bool block;                  /* true: the callback waits until it is false (a stopped mount) */
};

struct fs_time;

/* A fresh filesystem on dev, made at now: quorum slots 0..2 on 127.0.0.1:7101..7103. */
int harness_mkfs(struct bd_dev *dev, const struct fs_time *now, struct bd_super *super, char *why,
		 size_t whylen);
/* A fresh filesystem on a new in-memory device, and a service serving it. */
int harness_start(struct harness *h, uint64_t seed, char *why, size_t whylen);
/*
 * Stop the service and close the store (abandoned, writing nothing, when
 * abandon is true: what a crash or a fenced server leaves).  The device
 * stays, for harness_serve again.
 */
void harness_halt(struct harness *h, bool abandon);
/* Open the store on the device as it is and serve it again (after harness_halt). */
int harness_serve(struct harness *h, char *why, size_t whylen);
/* Everything gone, the device too. */
void harness_destroy(struct harness *h);

/*
 * A client of rid that reaches the service through a new socketpair per
 * connection; its INVALs are counted in iv (NULL: a harness-wide sink).
 */
int harness_client(struct harness *h, uint64_t rid, struct rpc_client **out);
int harness_client_iv(struct harness *h, uint64_t rid, struct harness_invals *iv,
		      struct rpc_client **out);
void harness_invals_init(struct harness_invals *iv);
/* One end of a socketpair the service adopted, nothing sent yet (blocking). */
int harness_raw(struct harness *h, int *fd);

/* Cut every connection made so far, as a network would (both ends see it break). */
void harness_cut(struct harness *h);

/* Write a quorum block for slot with an ELECT in term (the term gate reads it). */
void harness_elect(struct harness *h, int slot, uint64_t term);
/* The same on any in-memory device of filesystem fsid. */
void harness_poke_elect(struct bd_dev *dev, uint64_t fsid, int slot, uint64_t term);

#endif
