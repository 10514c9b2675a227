/*
 * server.h - the metadata server's lifecycle in the elected leader's
 * process.
 *
 * Lifecycle (one thread, driven by the quorum agent through
 * quorum_server_ops): START(term) reads every quorum block, fences each
 * earlier leader fence selection names, and reports FENCED; SERVE(term),
 * once FENCE is durable, listens on TCP at the slot's address; STOP(term)
 * closes everything and reports DOWN.  A fencing failure, a newer leader in
 * the blocks, or a listener that cannot bind also report DOWN, and the
 * leader resigns.  Clients are answered only while the leader holds its
 * lease (quorum_agent_may_serve).  The protocol is in proto.h.
 */
#ifndef FUSEFS_SERVER_H
#define FUSEFS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"
#include "quorum/agent.h"
#include "quorum/holder.h"

/* ---- lifecycle ---- */

struct server;

struct server_config {
	struct bd_dev *dev;
	const struct bd_super *super;
	int slot;
	uint64_t rid;
	const char *fence_cmd;     /* NULL: the local fencer */
	uint32_t fence_timeout_ms;
	uint32_t grace_ms;         /* a gone mount's grace (0: 3 heartbeat timeouts, >= 10 s) */
	struct quorum_holder self;
};

int server_create(const struct server_config *cfg, struct server **out);
struct quorum_server_ops server_ops(struct server *s);
void server_destroy(struct server *s);
/*
 * "server_NAME VALUE" lines: the service's counters (connections, bad
 * frames, batches, commits, requests committed...) over every term this
 * mount served, then its stage table ("lat server_STAGE OP n N p50_us X
 * p99_us Y", service.h).  Its length or -ERANGE.
 */
int server_counters_text(struct server *s, char *buf, size_t len);

#endif
