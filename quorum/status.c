/*
 * status.c - the quorum status as the seed's sysfs status text, as one
 * JSON object, and the counters as "name value" lines.  All three are
 * built from one snapshot, so they agree with each other.
 */
#include "quorum/status.h"

#include <errno.h>
#include <inttypes.h>

/* The seed's server_event: ELECT while the server starts, FENCE once up. */
static int server_event(const struct quorum_state *st)
{
	switch (st->srv) {
	case QSRV_FENCING:
	case QSRV_RECORDING:
	case QSRV_STOPPING:
		return FUSEFS_QEV_ELECT;
	case QSRV_UP:
		return FUSEFS_QEV_FENCE;
	default:
		return 0;
	}
}

static uint64_t server_start_term(const struct quorum_state *st)
{
	return st->srv == QSRV_DOWN ? 0 : st->srv_term;
}

static mono_ns next_timeout(const struct quorum_state *st)
{
	return st->role == QROLE_LEADER ? st->hb_next : st->deadline;
}

/* Signed seconds with nanoseconds, as the seed prints them. */
static void add_secs(struct strbuf *sb, mono_ns ns)
{
	const char *sign = ns < 0 ? "-" : "";

	if (ns < 0)
		ns = -ns;
	strbuf_addf(sb, "%s%" PRId64 ".%09" PRId64, sign, ns / NSEC_PER_SEC, ns % NSEC_PER_SEC);
}

/* The seed's "last_send to N term T type X secs_since S" lines. */
static void add_last_lines(struct strbuf *sb, const char *what, const struct quorum_last_msg *l,
			   mono_ns now)
{
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		if (l[i].term == 0 && l[i].type == 0)
			continue;
		strbuf_addf(sb, "%s %d term %" PRIu64 " type %u secs_since ", what, i, l[i].term,
			    l[i].type);
		add_secs(sb, now - l[i].at);
		strbuf_addf(sb, "\n");
	}
}

static int finish(const struct strbuf *sb)
{
	return sb->truncated ? -ERANGE : (int)sb->len;
}

int quorum_status_text(const struct quorum_snapshot *snap, mono_ns now, char *buf, size_t len)
{
	const struct quorum_state *st = &snap->st;
	mono_ns lease_left = st->lease_until == INT64_MAX ? INT64_MAX : st->lease_until - now;
	struct strbuf sb;

	strbuf_init(&sb, buf, len);
	strbuf_addf(&sb, "quorum_slot_nr %d\n", snap->slot);
	strbuf_addf(&sb, "term %" PRIu64 "\n", st->term);
	strbuf_addf(&sb, "server_start_term %" PRIu64 "\n", server_start_term(st));
	strbuf_addf(&sb, "server_event %d\n", server_event(st));
	strbuf_addf(&sb, "role %d (%s)\n", st->role, quorum_role_name(st->role));
	strbuf_addf(&sb, "vote_for %d\n", st->vote_for);
	strbuf_addf(&sb, "vote_bits 0x%x (count %d)\n", st->vote_bits,
		    __builtin_popcount(st->vote_bits));
	strbuf_addf(&sb, "timeout_in_secs ");
	add_secs(&sb, next_timeout(st) == INT64_MAX ? 0 : next_timeout(st) - now);
	strbuf_addf(&sb, "\n");
	add_last_lines(&sb, "last_send to", snap->last_send, now);
	add_last_lines(&sb, "last_recv from", snap->last_recv, now);
	if (snap->hb_delay_max > 0)
		strbuf_addf(&sb, "HB Delay(s) Count Secs Since\n");
	for (int i = 1; i <= snap->hb_delay_max && i < QUORUM_HB_DELAY_NR; i++) {
		if (snap->hb_delay_count[i] == 0)
			continue;
		strbuf_addf(&sb, "%11d %9" PRIu64 " ", i, snap->hb_delay_count[i]);
		add_secs(&sb, now - snap->hb_delay_recent[i]);
		strbuf_addf(&sb, "\n");
	}
	/* ours, beyond the seed */
	strbuf_addf(&sb, "leader_slot %d\n", st->leader_slot);
	strbuf_addf(&sb, "prevote %d\n", st->role == QROLE_CANDIDATE && st->prevote);
	strbuf_addf(&sb, "server_state %s\n", quorum_server_state_name(st->srv));
	strbuf_addf(&sb, "lease_valid %d\n", quorum_lease_valid(st, now));
	if (quorum_lease_valid(st, now)) {
		strbuf_addf(&sb, "lease_secs_left ");
		if (lease_left == INT64_MAX)
			strbuf_addf(&sb, "unbounded");
		else
			add_secs(&sb, lease_left);
		strbuf_addf(&sb, "\n");
	}
	strbuf_addf(&sb, "hb_timeout_ms %u\n", st->cfg.hb_timeout_ms);
	/* our device: its state now, since when, how it fails, how often we tried */
	strbuf_addf(&sb, "device_state %s\n", st->dev_failing ? "failing" : "ok");
	if (st->dev_failing) {
		strbuf_addf(&sb, "device_failing_secs ");
		add_secs(&sb, now - st->dev_since);
		strbuf_addf(&sb, "\ndevice_last_error %s\n", errstr(st->dev_err));
		strbuf_addf(&sb, "device_retries %u\n", st->dev_retries);
		strbuf_addf(&sb, "device_next_retry_secs ");
		add_secs(&sb, st->dev_retry_at - now);
		strbuf_addf(&sb, "\n");
	}
	strbuf_addf(&sb, "device_outages %" PRIu64 "\n", st->dev_outages);
	strbuf_addf(&sb, "write_ms_estimate %" PRId64 "\n", st->persist_est_ns / NSEC_PER_MSEC);
	if (snap->failed)
		strbuf_addf(&sb, "failed %s\n", errstr(snap->fail_res));
	return finish(&sb);
}

static void json_secs(struct strbuf *sb, const char *key, mono_ns ns, bool comma)
{
	strbuf_addf(sb, "\"%s\":", key);
	add_secs(sb, ns);
	if (comma)
		strbuf_addf(sb, ",");
}

static void json_last(struct strbuf *sb, const char *key, const struct quorum_last_msg *l,
		      mono_ns now)
{
	bool first = true;

	strbuf_addf(sb, "\"%s\":[", key);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		if (l[i].term == 0 && l[i].type == 0)
			continue;
		strbuf_addf(sb, "%s{\"slot\":%d,\"term\":%" PRIu64 ",\"type\":\"%s\",", first ? "" : ",",
			    i, l[i].term, quorum_msg_type_name(l[i].type));
		json_secs(sb, "secs_since", now - l[i].at, false);
		strbuf_addf(sb, "}");
		first = false;
	}
	strbuf_addf(sb, "],");
}

int quorum_status_json(const struct quorum_snapshot *snap, mono_ns now, char *buf, size_t len)
{
	const struct quorum_state *st = &snap->st;
	bool first = true;
	struct strbuf sb;

	strbuf_init(&sb, buf, len);
	strbuf_addf(&sb, "{\"slot\":%d,\"rid\":\"%016" PRIx64 "\",\"term\":%" PRIu64 ",", snap->slot,
		    snap->rid, st->term);
	strbuf_addf(&sb, "\"role\":\"%s\",\"prevote\":%s,\"is_leader\":%s,", quorum_role_name(st->role),
		    st->role == QROLE_CANDIDATE && st->prevote ? "true" : "false",
		    st->role == QROLE_LEADER ? "true" : "false");
	strbuf_addf(&sb, "\"server_start_term\":%" PRIu64 ",\"server_event\":%d,"
		    "\"server_state\":\"%s\",", server_start_term(st), server_event(st),
		    quorum_server_state_name(st->srv));
	strbuf_addf(&sb, "\"vote_for\":%d,\"vote_bits\":%u,\"vote_count\":%d,\"leader_slot\":%d,",
		    st->vote_for, st->vote_bits, __builtin_popcount(st->vote_bits), st->leader_slot);
	json_secs(&sb, "timeout_in_secs",
		  next_timeout(st) == INT64_MAX ? 0 : next_timeout(st) - now, true);
	strbuf_addf(&sb, "\"lease_valid\":%s,", quorum_lease_valid(st, now) ? "true" : "false");
	strbuf_addf(&sb, "\"hb_timeout_ms\":%u,\"failed\":%s,", st->cfg.hb_timeout_ms,
		    snap->failed ? "true" : "false");
	strbuf_addf(&sb, "\"device\":{\"state\":\"%s\",", st->dev_failing ? "failing" : "ok");
	if (st->dev_failing) {
		json_secs(&sb, "failing_secs", now - st->dev_since, true);
		strbuf_addf(&sb, "\"last_error\":\"%s\",\"retries\":%u,", errstr(st->dev_err),
			    st->dev_retries);
	}
	strbuf_addf(&sb, "\"outages\":%" PRIu64 ",\"write_ms_estimate\":%" PRId64 "},",
		    st->dev_outages, st->persist_est_ns / NSEC_PER_MSEC);
	json_last(&sb, "last_send", snap->last_send, now);
	json_last(&sb, "last_recv", snap->last_recv, now);
	strbuf_addf(&sb, "\"hb_delay\":[");
	for (int i = 1; i <= snap->hb_delay_max && i < QUORUM_HB_DELAY_NR; i++) {
		if (snap->hb_delay_count[i] == 0)
			continue;
		strbuf_addf(&sb, "%s{\"secs\":%d,\"count\":%" PRIu64 ",", first ? "" : ",", i,
			    snap->hb_delay_count[i]);
		json_secs(&sb, "secs_since", now - snap->hb_delay_recent[i], false);
		strbuf_addf(&sb, "}");
		first = false;
	}
	strbuf_addf(&sb, "],\"counters\":{");
	first = true;
#define X(n)                                                                                  \
	strbuf_addf(&sb, "%s\"%s\":%" PRIu64, first ? "" : ",", #n, snap->ctr[QCTR_##n]);      \
	first = false;
	QUORUM_AGENT_COUNTERS(X)
#undef X
#define X(n) strbuf_addf(&sb, ",\"%s\":%" PRIu64, #n, st->ctr.n);
	QUORUM_ELECTION_COUNTERS(X)
#undef X
#define X(n) strbuf_addf(&sb, ",\"invalid_%s\":%" PRIu64, #n, snap->invalid[QINV_##n]);
	QUORUM_INVALID_REASONS(X)
#undef X
	strbuf_addf(&sb, "}}\n");
	return finish(&sb);
}

int quorum_counters_text(const struct quorum_snapshot *snap, char *buf, size_t len)
{
	struct strbuf sb;

	strbuf_init(&sb, buf, len);
#define X(n) strbuf_addf(&sb, "%s %" PRIu64 "\n", #n, snap->ctr[QCTR_##n]);
	QUORUM_AGENT_COUNTERS(X)
#undef X
#define X(n) strbuf_addf(&sb, "%s %" PRIu64 "\n", #n, snap->st.ctr.n);
	QUORUM_ELECTION_COUNTERS(X)
#undef X
#define X(n) strbuf_addf(&sb, "invalid_%s %" PRIu64 "\n", #n, snap->invalid[QINV_##n]);
	QUORUM_INVALID_REASONS(X)
#undef X
	return finish(&sb);
}
