/*
 * status_xattr.c - the status xattrs on the root of every mount:
 *
 *   user.fusefs.quorum.status     the seed's status text (members)
 *   user.fusefs.quorum.json       the same as one JSON object
 *   user.fusefs.quorum.is_leader  0 or 1
 *   user.fusefs.server            the server in use per the blocks, greeted
 *   user.fusefs.rid               this mount's rid
 *   user.fusefs.counters          "name value" lines
 *   user.fusefs.quorum_heartbeat_timeout_ms   read, and set with setfattr
 *
 * Values are computed when asked; they never reach the server's store.
 */
#include "fuse/status.h"

#include "fuse/client.h"
#include "common/u64map.h"
#include "quorum/status.h"
#include "server/server.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define XATTR_MAX (64 * 1024)

enum xattr_id {
	XA_STATUS, XA_JSON, XA_IS_LEADER, XA_SERVER, XA_RID, XA_COUNTERS, XA_HB_TIMEOUT, XA_NR,
};

static const char *const xattr_names[XA_NR] = {
	[XA_STATUS] = "user.fusefs.quorum.status",
	[XA_JSON] = "user.fusefs.quorum.json",
	[XA_IS_LEADER] = "user.fusefs.quorum.is_leader",
	[XA_SERVER] = "user.fusefs.server",
	[XA_RID] = "user.fusefs.rid",
	[XA_COUNTERS] = "user.fusefs.counters",
	[XA_HB_TIMEOUT] = "user.fusefs.quorum_heartbeat_timeout_ms",
};

static int xattr_find(const char *name)
{
	for (int i = 0; i < XA_NR; i++)
		if (strcmp(name, xattr_names[i]) == 0)
			return i;
	return -1;
}

/* The mount's and its client's counters, into buf.  Their length or -ERANGE. */
static int client_counters_text(struct mount_ctx *fs, char *buf, size_t len)
{
	struct rpc_client_stats cs;
	int m;

	rpc_client_get_stats(fs->client, &cs);
	m = snprintf(buf, len, "client_calls %" PRIu64 "\nclient_connects %" PRIu64
		     "\nclient_disconnects %" PRIu64 "\nclient_resent %" PRIu64
		     "\nclient_failovers %" PRIu64 "\nclient_last_failover_ms %" PRIu64
		     "\nclient_invals %" PRIu64 "\nclient_inval_items %" PRIu64
		     "\nclient_max_in_flight %" PRIu64 "\nkernel_nodes %" PRIu64
		     "\nmount_lock_waits %" PRIu64 "\nmount_lock_waiting %" PRIu64 "\n",
		     cs.calls, cs.connects, cs.disconnects, cs.resent, cs.failovers,
		     cs.last_failover_ms, cs.invals, cs.inval_items, cs.max_in_flight,
		     u64map_size(fs->nodes), __atomic_load_n(&fs->lock_waits, __ATOMIC_RELAXED),
		     __atomic_load_n(&fs->lock_waiting, __ATOMIC_RELAXED));
	return m < 0 || (size_t)m >= len ? -ERANGE : m;
}

/* The text of one of our xattrs, into buf.  Its length or -errno. */
static int xattr_value(struct mount_ctx *fs, int id, char *buf, size_t len)
{
	struct quorum_snapshot *snap = NULL;
	mono_ns now = mono_now();
	int n;

	if (fs->agent != NULL && (id == XA_STATUS || id == XA_JSON || id == XA_IS_LEADER ||
				  id == XA_COUNTERS)) {
		snap = malloc(sizeof(*snap));
		if (snap == NULL)
			return -ENOMEM;
		quorum_agent_snapshot(fs->agent, snap);
	}
	switch (id) {
	case XA_STATUS:
		n = snap ? quorum_status_text(snap, now, buf, len) :
			   snprintf(buf, len, "quorum_slot_nr none\nrole client\n");
		break;
	case XA_JSON:
		n = snap ? quorum_status_json(snap, now, buf, len) :
			   snprintf(buf, len, "{\"slot\":null,\"rid\":\"%016" PRIx64 "\",\"role\":\"client\","
				    "\"is_leader\":false}\n", fs->rid);
		break;
	case XA_IS_LEADER:
		n = snprintf(buf, len, "%d", snap && snap->st.role == QROLE_LEADER);
		break;
	case XA_SERVER:
		n = rpc_server_text(fs->dev, &fs->super, fs->rid, buf, len);
		break;
	case XA_RID:
		n = snprintf(buf, len, "%016" PRIx64, fs->rid);
		break;
	case XA_COUNTERS:
		n = snap ? quorum_counters_text(snap, buf, len) :
			   snprintf(buf, len, "plain_client 1\n");
		if (n >= 0 && (size_t)n < len && fs->server != NULL) {
			int m = server_counters_text(fs->server, buf + n, len - (size_t)n);

			n = m < 0 ? m : n + m;
		}
		if (n >= 0 && (size_t)n < len && fs->client != NULL) {
			int m = client_counters_text(fs, buf + n, len - (size_t)n);

			n = m < 0 ? m : n + m;
		}
		if (n >= 0 && (size_t)n < len && fs->client != NULL) {
			int m = rpc_client_lat_text(fs->client, buf + n, len - (size_t)n);

			n = m < 0 ? m : n + m;
		}
		break;
	case XA_HB_TIMEOUT:
		n = fs->agent ? snprintf(buf, len, "%u", quorum_agent_hb_timeout(fs->agent)) : -ENODATA;
		break;
	default:
		n = -ENODATA;
		break;
	}
	free(snap);
	return n;
}

/*
 * Our values change all the time, yet callers ask for the size and then
 * fetch: a value computed for a size query is kept for the same caller's
 * fetch, so both see one value.  For up to 5 s: with no server, the kernel's
 * getattr of the root before each call takes a second (the fallback), and a
 * value that changed its length in between made the fetch fail with ERANGE.
 */
#define XCACHE_SLOTS 8
#define XCACHE_KEEP_NS (5 * NSEC_PER_SEC)

static struct {
	pthread_mutex_t lock;
	struct xcache_entry {
		pid_t pid;
		int id;
		mono_ns at;
		int len;
		char *buf;
	} e[XCACHE_SLOTS];
	int next;
} xcache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int xcache_take(pid_t pid, int id, char *buf)
{
	int n = -1;

	pthread_mutex_lock(&xcache.lock);
	for (int i = 0; i < XCACHE_SLOTS; i++) {
		struct xcache_entry *e = &xcache.e[i];

		if (e->buf && e->pid == pid && e->id == id && mono_now() - e->at < XCACHE_KEEP_NS) {
			memcpy(buf, e->buf, (size_t)e->len);
			n = e->len;
			free(e->buf);
			e->buf = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&xcache.lock);
	return n;
}

static void xcache_put(pid_t pid, int id, const char *buf, int len)
{
	struct xcache_entry *e;
	char *copy = malloc((size_t)len + 1);

	if (copy == NULL)
		return;
	memcpy(copy, buf, (size_t)len);
	pthread_mutex_lock(&xcache.lock);
	e = &xcache.e[xcache.next];
	xcache.next = (xcache.next + 1) % XCACHE_SLOTS;
	free(e->buf);
	*e = (struct xcache_entry){ .pid = pid, .id = id, .at = mono_now(), .len = len, .buf = copy };
	pthread_mutex_unlock(&xcache.lock);
}

bool status_xattr_is_ours(const char *name)
{
	return xattr_find(name) >= 0;
}

int status_xattr_get(struct mount_ctx *m, pid_t pid, const char *name, char *out, size_t size)
{
	int id = xattr_find(name);
	char *buf;
	int n;

	if (id < 0)
		return -ENODATA;
	buf = malloc(XATTR_MAX);
	if (buf == NULL)
		return -ENOMEM;
	n = size > 0 ? xcache_take(pid, id, buf) : -1;
	if (n < 0)
		n = xattr_value(m, id, buf, XATTR_MAX);
	if (n >= 0 && size == 0)
		xcache_put(pid, id, buf, n);
	if (n >= 0 && size > 0) {
		if ((size_t)n > size)
			n = -ERANGE;
		else
			memcpy(out, buf, (size_t)n);
	}
	free(buf);
	return n;
}

size_t status_xattr_list(struct mount_ctx *m, char *buf, size_t size)
{
	size_t used = 0;

	for (int i = 0; i < XA_NR; i++) {
		size_t n = strlen(xattr_names[i]) + 1;

		if (i == XA_HB_TIMEOUT && m->agent == NULL)
			continue;
		if (used + n <= size)
			memcpy(buf + used, xattr_names[i], n);
		used += n;
	}
	return used;
}

int status_xattr_set(struct mount_ctx *m, uid_t caller, const char *name, const char *value,
		     size_t size)
{
	char text[32];
	uint64_t ms;
	int id = xattr_find(name);

	if (id < 0)
		return -ENOTSUP;
	if (id != XA_HB_TIMEOUT)
		return -EPERM;
	if (m->agent == NULL)
		return -ENOTSUP; /* a plain client has no heartbeat timeout */
	if (caller != 0 && caller != m->uid)
		return -EPERM; /* with allow_other, not for every user */
	while (size > 0 && (value[size - 1] == '\n' || value[size - 1] == '\0'))
		size--;
	if (size == 0 || size >= sizeof(text))
		return -EINVAL;
	memcpy(text, value, size);
	text[size] = '\0';
	if (parse_u64(text, 0, UINT32_MAX, &ms) < 0 ||
	    quorum_agent_set_hb_timeout(m->agent, (uint32_t)ms) < 0)
		return -EINVAL;
	log_info("fuse", "quorum_heartbeat_timeout_ms set to %" PRIu64, ms);
	return 0;
}
