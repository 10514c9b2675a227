/*
 * unit_agent.c - the quorum agent itself (quorum/agent.c), in process:
 * agents on 127.0.0.1 UDP ports, the in-memory device completing their
 * block I/O through their rings (bd_aio), a stand-in server that fences at
 * once, and a test socket in slot 2's place that sees what the agents send
 * it and can speak for slot 2.  Each test is bounded (seconds).
 *
 *  - a block write is reported done only when it is on the device;
 *  - a remounted member's message sequence numbers rise above the last
 *    mount's (they come from the disk);
 *  - a persist that fails with EIO makes the member step down with one log
 *    line, sends nothing carrying the term it could not write, and it
 *    rejoins on its own once the device works;
 *  - a device that stalls for 5 s does not stop the leader's heartbeats
 *    (the largest gap is printed).
 */
#include "tests/unit.h"

#include "blockdev/codec.h"
#include "blockdev/dev.h"
#include "blockdev/sockaddr.h"
#include "blockdev/tools.h"
#include "quorum/agent.h"
#include "quorum/election.h"
#include "quorum/msg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEV_BLOCKS 6144
#define SNIFF 2 /* the slot the test socket stands in for */

struct fx {
	struct bd_dev *dev;
	struct bd_super super;
	struct quorum_agent *ag[2];
	uint64_t rid[2];
	int sniff_fd;
	struct quorum_codec sniff;
	bool sniff_ready;
};

static void ms_sleep(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t ms_since(mono_ns t)
{
	return (mono_now() - t) / NSEC_PER_MSEC;
}

/* Three consecutive free UDP ports on 127.0.0.1, the first returned. */
static uint16_t free_ports(void)
{
	for (int tries = 0; tries < 50; tries++) {
		uint16_t base = (uint16_t)(21000 + (unsigned)(getpid() * 37 + tries * 101) % 30000);
		int fds[3] = { -1, -1, -1 }, ok = 0;

		for (int i = 0; i < 3; i++) {
			struct sockaddr_in sin = { .sin_family = AF_INET,
						   .sin_port = htons((uint16_t)(base + i)),
						   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

			fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
			if (fds[i] >= 0 && bind(fds[i], (struct sockaddr *)&sin, sizeof(sin)) == 0)
				ok++;
		}
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (ok == 3)
			return base;
	}
	ck_abort_msg("no three free UDP ports on 127.0.0.1");
	return 0;
}

/* The stand-in server: fenced at once, down at once. */
static void srv_start(void *arg, struct quorum_agent *a, uint64_t term)
{
	(void)arg;
	quorum_agent_server_fenced(a, term);
}

static void srv_serve(void *arg, struct quorum_agent *a, uint64_t term)
{
	(void)arg;
	(void)a;
	(void)term;
}

static void srv_stop(void *arg, struct quorum_agent *a, uint64_t term)
{
	(void)arg;
	quorum_agent_server_down(a, term, 0);
}

static void fx_make(struct fx *f)
{
	struct bd_mkfs_opts mo = { .format_store = NULL };
	uint16_t port = free_ports();
	char why[256], arg[64];
	int ret;

	memset(f, 0, sizeof(*f));
	f->sniff_fd = -1;
	log_mute(true); /* the agents' own lines; the EIO test reads them where it needs */
	ck_assert_int_eq(bd_mem_open(DEV_BLOCKS, 512, 7, &f->dev), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(arg, sizeof(arg), "%d,127.0.0.1,%u", i, port + i);
		ck_assert_int_eq(bd_mkfs_add_slot(&f->super, arg, why, sizeof(why)), 0);
	}
	ck_assert_msg(bd_mkfs(f->dev, &f->super, &mo, why, sizeof(why)) == 0, "%s", why);
	ret = quorum_bind_slot(&f->super, SNIFF, &f->sniff_fd, why, sizeof(why));
	ck_assert_msg(ret == 0, "%s", why);
	ck_assert_int_eq(quorum_codec_init(&f->sniff, &f->super, SNIFF, 0x5eed, 1ull << 50), 0);
	f->sniff_ready = true;
}

static struct quorum_agent *fx_start(struct fx *f, int slot, uint32_t hb_ms, int *res)
{
	struct quorum_agent_config cfg = {
		.dev = f->dev, .super = &f->super, .slot = slot, .hb_timeout_ms = hb_ms,
		.server = { .start = srv_start, .serve = srv_serve, .stop = srv_stop },
	};
	struct quorum_agent *a = NULL;
	char why[512];

	cfg.rid = ((uint64_t)getpid() << 20) + (uint64_t)mono_now() % 1000000 + (uint64_t)slot;
	ck_assert_int_eq(quorum_holder_self(&cfg.self), 0);
	ck_assert_msg(quorum_bind_slot(&f->super, slot, &cfg.udp_fd, why, sizeof(why)) == 0, "%s",
		      why);
	*res = quorum_agent_start(&cfg, &a, why, sizeof(why));
	ck_assert_msg(*res == 0, "agent %d: %s", slot, why);
	f->ag[slot] = a;
	f->rid[slot] = cfg.rid;
	return a;
}

static void fx_stop(struct fx *f, int slot)
{
	if (f->ag[slot] == NULL)
		return;
	log_mute(true); /* a follower would wait out its promises: do not */
	quorum_agent_shutdown(f->ag[slot], 300);
	quorum_agent_free(f->ag[slot]);
	f->ag[slot] = NULL;
}

static void fx_free(struct fx *f)
{
	for (int i = 0; i < 2; i++)
		fx_stop(f, i);
	if (f->sniff_ready)
		quorum_codec_free(&f->sniff);
	if (f->sniff_fd >= 0)
		close(f->sniff_fd);
	bd_close(f->dev);
	log_mute(false);
}

/* The next message for slot 2 within ms, decoded; false on timeout. */
static bool sniff(struct fx *f, int ms, struct quorum_msg *m, int *reject)
{
	uint8_t buf[256];
	struct pollfd p = { .fd = f->sniff_fd, .events = POLLIN };
	ssize_t n;
	int ret;

	*reject = 0;
	if (poll(&p, 1, ms) != 1)
		return false;
	n = recv(f->sniff_fd, buf, sizeof(buf), 0);
	if (n <= 0)
		return false;
	ret = quorum_msg_decode(&f->sniff, buf, (size_t)n, m);
	if (ret < 0)
		*reject = -ret; /* QINV_* + 1 */
	return true;
}

/* Send m as slot 2 to slot `to`. */
static void speak(struct fx *f, int to, struct quorum_msg m)
{
	uint8_t buf[QUORUM_MSG_WIRE_BYTES];
	struct sockaddr_storage ss;
	socklen_t len;

	m.from = SNIFF;
	m.to = (uint8_t)to;
	ck_assert_int_gt(quorum_msg_encode(&f->sniff, &m, buf, sizeof(buf)), 0);
	ck_assert_int_eq(bd_addr_to_sockaddr(&f->super.slots[to], &ss, &len), 0);
	ck_assert_int_eq(sendto(f->sniff_fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, len),
			 (ssize_t)sizeof(buf));
}

static void snap(struct fx *f, int slot, struct quorum_snapshot *s)
{
	quorum_agent_snapshot(f->ag[slot], s);
}

/* The slot of a leader whose (stand-in) server is up, within ms; -1 if none. */
static int wait_leader(struct fx *f, int ms)
{
	mono_ns start = mono_now();
	struct quorum_snapshot *s = malloc(sizeof(*s));
	int leader = -1;

	ck_assert_ptr_nonnull(s);
	while (leader < 0 && ms_since(start) < ms) {
		for (int i = 0; i < 2 && leader < 0; i++) {
			if (f->ag[i] == NULL)
				continue;
			snap(f, i, s);
			if (s->st.role == QROLE_LEADER && s->st.srv == QSRV_UP)
				leader = i;
		}
		if (leader < 0)
			ms_sleep(20);
	}
	free(s);
	return leader;
}

/*
 * A write is reported done only once the device has it: with every I/O
 * taking 300 ms, start-up (which waits for BEGIN) takes a read and a
 * write, and then the block on the device holds our BEGIN.
 */
START_TEST(write_done_only_when_on_the_device)
{
	struct fusefs_quorum_block *blk = bd_alloc(1);
	struct bd_mem_faults slow = { .delay_ms = 300 };
	struct bd_qblock qb;
	struct fx f;
	mono_ns t0;
	char why[200];
	int res;

	fx_make(&f);
	bd_mem_set_faults(f.dev, &slow);
	t0 = mono_now();
	fx_start(&f, 0, 10000, &res);
	ck_assert_int_ge(ms_since(t0), 550);
	bd_mem_peek(f.dev, bd_quorum_blkno(0), blk, 1);
	ck_assert_msg(bd_qblock_decode(blk, f.super.fsid, bd_quorum_blkno(0), &qb, why,
				       sizeof(why)) == 0, "%s", why);
	ck_assert_uint_eq(qb.ev[FUSEFS_QEV_BEGIN].rid, f.rid[0]);
	ck_assert_uint_eq(qb.holder_rid, f.rid[0]);
	bd_mem_set_faults(f.dev, &(struct bd_mem_faults){ 0 });
	fx_free(&f);
	bd_free(blk);
}
END_TEST

/*
 * A remounted member's messages are not taken for replays: its sequence
 * numbers start above everything the last mount of the slot sent (they
 * come from the block's seq_hwm, not from a clock or zero).
 */
START_TEST(sequence_numbers_rise_across_remounts)
{
	struct quorum_msg m;
	uint64_t first_seq = 0;
	struct fx f;
	int res, rej, got = 0;

	fx_make(&f);
	fx_start(&f, 0, 2000, &res);
	/* alone, it asks for pre-votes every election timeout */
	for (int i = 0; i < 40 && got < 3; i++)
		if (sniff(&f, 100, &m, &rej)) {
			ck_assert_msg(rej == 0, "rejected: %s", quorum_invalid_name(rej - 1));
			if (m.from == 0 && m.type == QMSG_PRE_VOTE) {
				got++;
				first_seq = m.seq;
			}
		}
	ck_assert_int_eq(got, 3);
	fx_stop(&f, 0);
	fx_start(&f, 0, 2000, &res);
	got = 0;
	for (int i = 0; i < 40 && got < 1; i++)
		if (sniff(&f, 100, &m, &rej)) {
			ck_assert_msg(rej == 0, "the remounted member's message was rejected: %s",
				      quorum_invalid_name(rej - 1));
			got += m.from == 0;
		}
	ck_assert_int_eq(got, 1);
	ck_assert_uint_gt(m.seq, first_seq);
	ck_assert_uint_eq(f.sniff.invalid[QINV_old_seq], 0);
	fx_free(&f);
}
END_TEST

/*
 * A persist that fails with EIO: the leader, deposed by a greater term it
 * then cannot write, steps down and says so in one line; nothing it sends
 * carries that term while the device fails; once it works again the member
 * writes the term, rejoins, and a leader serves again.
 */
START_TEST(eio_steps_down_one_line_no_unwritten_term_rejoins)
{
	struct quorum_snapshot *s = malloc(sizeof(*s));
	char logpath[] = "/tmp/fusefs-agent-log.XXXXXX";
	struct bd_mem_faults eio = { .fail_ops = BD_FAULT_WRITE | BD_FAULT_READ };
	struct quorum_msg m;
	uint64_t bad_term;
	int res, rej, leader, logfd, saved_stderr, lines = 0;
	struct fx f;
	mono_ns t0;
	char line[1024];
	FILE *lf;

	ck_assert_ptr_nonnull(s);
	fx_make(&f);
	fx_start(&f, 0, 1000, &res);
	fx_start(&f, 1, 1000, &res);
	leader = wait_leader(&f, 5000);
	ck_assert_int_ge(leader, 0);
	snap(&f, leader, s);
	bad_term = s->st.term + 5;

	logfd = mkstemp(logpath);
	ck_assert_int_ge(logfd, 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(logfd, 2);
	log_mute(false);

	/* the leader's block fails; slot 2 claims a greater term */
	eio.fail_lo = bd_quorum_blkno(leader);
	eio.fail_hi = eio.fail_lo + 1;
	bd_mem_set_faults(f.dev, &eio);
	speak(&f, leader, (struct quorum_msg){ .type = QMSG_HEARTBEAT, .term = bad_term, .arg = 1 });
	t0 = mono_now();
	while (ms_since(t0) < 1500)
		if (sniff(&f, 50, &m, &rej) && rej == 0 && m.from == leader)
			ck_assert_msg(m.term < bad_term, "slot %d sent %s with term %lu, not written",
				      leader, quorum_msg_type_name(m.type), (unsigned long)m.term);
	snap(&f, leader, s);
	ck_assert_int_ne(s->st.role, QROLE_LEADER);
	ck_assert_int_eq(s->st.srv, QSRV_DOWN);
	ck_assert(s->st.dev_failing);
	ck_assert_int_eq(s->st.dev_err, -EIO);
	ck_assert_uint_ge(s->st.dev_retries, 2);
	ck_assert(!s->failed);
	ck_assert_uint_lt(s->st.durable.term, bad_term);

	/* the device works again: it writes the term and is back within a retry */
	bd_mem_set_faults(f.dev, &(struct bd_mem_faults){ 0 });
	t0 = mono_now();
	do {
		ms_sleep(20);
		snap(&f, leader, s);
	} while (s->st.dev_failing && ms_since(t0) < 3000);
	ck_assert(!s->st.dev_failing);
	ck_assert_uint_ge(s->st.durable.term, bad_term);
	ck_assert_int_ge(wait_leader(&f, 6000), 0);

	log_mute(true);
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	lf = fdopen(logfd, "r");
	ck_assert_ptr_nonnull(lf);
	rewind(lf);
	while (fgets(line, sizeof(line), lf) != NULL) {
		if (strstr(line, "our quorum block (blkno") && strstr(line, "failed:")) {
			lines++;
			ck_assert_msg(strstr(line, "Input/output error") && strstr(line, "retrying"),
				      "unclear: %s", line);
		}
	}
	fclose(lf);
	unlink(logpath);
	ck_assert_int_eq(lines, 1);
	fx_free(&f);
	free(s);
}
END_TEST

/*
 * A device that stalls for 5 s does not stop the leader's heartbeats: the
 * largest gap between heartbeats it sends while its own block write hangs.
 */
START_TEST(stalled_device_heartbeats_flow)
{
	struct quorum_snapshot *s = malloc(sizeof(*s));
	struct bd_mem_faults stall = { .delay_ms = 5000 };
	int64_t gap = 0, last = -1, beats = 0;
	struct quorum_msg m;
	int res, rej, leader;
	struct fx f;
	mono_ns t0;

	ck_assert_ptr_nonnull(s);
	fx_make(&f);
	fx_start(&f, 0, 10000, &res);
	fx_start(&f, 1, 10000, &res);
	leader = wait_leader(&f, 5000);
	ck_assert_int_ge(leader, 0);
	/* a write of the leader's block that hangs for 5 s (a raised promise must be written) */
	bd_mem_set_faults(f.dev, &stall);
	ck_assert_int_eq(quorum_agent_set_hb_timeout(f.ag[leader], 12000), 0);
	ms_sleep(100);
	bd_mem_set_faults(f.dev, &(struct bd_mem_faults){ 0 });
	t0 = mono_now();
	while (ms_since(t0) < 5000) {
		if (!sniff(&f, 100, &m, &rej) || rej != 0 || m.from != leader ||
		    m.type != QMSG_HEARTBEAT)
			continue;
		if (last >= 0)
			gap = MAX(gap, ms_since(t0) - last);
		last = ms_since(t0);
		beats++;
	}
	fprintf(stderr, "agent: largest gap between heartbeats during a 5 s device stall: %"
		PRId64 " ms (%" PRId64 " heartbeats)\n", gap, beats);
	ck_assert_int_ge(beats, 40);
	ck_assert_int_lt(gap, 400);
	/* the write went through after the stall, and leadership held */
	t0 = mono_now();
	do {
		ms_sleep(50);
		snap(&f, leader, s);
	} while (s->st.durable.hb_ms != 12000 && ms_since(t0) < 2000);
	ck_assert_uint_eq(s->st.durable.hb_ms, 12000);
	ck_assert_int_eq(s->st.role, QROLE_LEADER);
	fx_free(&f);
	free(s);
}
END_TEST

Suite *suite_agent(void)
{
	Suite *s = suite_create("agent");
	TCase *tc = tcase_create("device");

	tcase_set_timeout(tc, 40);
	tcase_add_test(tc, write_done_only_when_on_the_device);
	tcase_add_test(tc, sequence_numbers_rise_across_remounts);
	tcase_add_test(tc, eio_steps_down_one_line_no_unwritten_term_rejoins);
	tcase_add_test(tc, stalled_device_heartbeats_flow);
	suite_add_tcase(s, tc);
	return s;
}
