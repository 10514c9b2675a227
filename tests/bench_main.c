/*
 * fusefs-bench - micro-benchmarks, printed as a table: crc32c (hardware
 * and table), the quorum message codec, the election step, and durable
 * quorum block writes.  Wall-clock figures; run on an idle machine.
 */
#include "tests/bench.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/crc32c.h"
#include "blockdev/dev.h"
#include "blockdev/tools.h"
#include "quorum/agent.h"
#include "quorum/election.h"
#include "quorum/fence.h"
#include "quorum/holder.h"
#include "quorum/msg.h"
#include "quorum/status.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static double secs_since(mono_ns t0)
{
	return (double)(mono_now() - t0) / 1e9;
}

static void row(const char *what, double value, const char *unit)
{
	printf("%-44s %14.2f  %s\n", what, value, unit);
}

static void bench_crc(void)
{
	static uint8_t buf[1 << 20];
	volatile uint32_t sink = 0;
	mono_ns t0;
	int reps = 200;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7);
	t0 = mono_now();
	for (int r = 0; r < reps; r++)
		sink ^= bd_crc32c_hw(~0u, buf, sizeof(buf));
	row(bd_crc32c_hw_available() ? "crc32c, SSE4.2, 1 MiB buffers" :
				       "crc32c, hardware path (table: no SSE4.2)",
	    reps * (double)sizeof(buf) / secs_since(t0) / 1e9, "GB/s");
	t0 = mono_now();
	for (int r = 0; r < reps / 4; r++)
		sink ^= bd_crc32c_sw(~0u, buf, sizeof(buf));
	row("crc32c, slicing-by-8 table, 1 MiB buffers",
	    reps / 4 * (double)sizeof(buf) / secs_since(t0) / 1e9, "GB/s");
	t0 = mono_now();
	for (int r = 0; r < 100000; r++)
		sink ^= bd_crc32c(buf, FUSEFS_BLOCK_SIZE);
	row("crc32c of one 4 KiB block (dispatched)", secs_since(t0) / 100000 * 1e9, "ns");
	(void)sink;
}

static void bench_codec(bool auth)
{
	struct bd_super s;
	struct quorum_codec tx, rx;
	uint8_t buf[QUORUM_MSG_WIRE_BYTES];
	struct quorum_msg m = { .type = QMSG_HEARTBEAT, .from = 0, .to = 1, .term = 5 }, out;
	int n = 200000;
	mono_ns t0;

	memset(&s, 0, sizeof(s));
	s.fsid = 1;
	s.flags = auth ? FUSEFS_SUPER_FLAG_AUTH : 0;
	bd_addr_parse("127.0.0.1", 1, &s.slots[0]);
	bd_addr_parse("127.0.0.1", 2, &s.slots[1]);
	quorum_codec_init(&tx, &s, 0, 1, 1);
	quorum_codec_init(&rx, &s, 1, 2, 1);
	t0 = mono_now();
	for (int i = 0; i < n; i++) {
		quorum_msg_encode(&tx, &m, buf, sizeof(buf));
		if (quorum_msg_decode(&rx, buf, sizeof(buf), &out) < 0)
			abort();
	}
	row(auth ? "message encode+decode, HMAC-SHA256" : "message encode+decode, crc only",
	    secs_since(t0) / n * 1e9, "ns");
	quorum_codec_free(&tx);
	quorum_codec_free(&rx);
}

static void bench_step(void)
{
	struct quorum_config cfg = { .our_slot = 1, .present_mask = 0x7, .votes_needed = 2,
				     .hb_timeout_ms = 2000 };
	struct quorum_state st;
	struct quorum_actions out;
	struct quorum_input in = { .type = QIN_START };
	mono_ns now = 1000 * NSEC_PER_SEC, t0;
	int n = 1000000;

	quorum_init(&st, &cfg);
	in.start.own.vote_slot = -1;
	quorum_step(&st, &in, now, &out);
	in = (struct quorum_input){ .type = QIN_PERSIST_DONE };
	quorum_step(&st, &in, now, &out);
	t0 = mono_now();
	for (int i = 0; i < n; i++) {
		in = (struct quorum_input){ .type = QIN_MSG, .random = (uint32_t)i };
		in.msg = (struct quorum_msg){ .type = QMSG_HEARTBEAT, .from = 0, .term = 0,
					      .arg = (uint64_t)now };
		now += 100 * NSEC_PER_MSEC;
		quorum_step(&st, &in, now, &out);
	}
	row("election step, follower handling a heartbeat", secs_since(t0) / n * 1e9, "ns");
	printf("%-44s %14zu  %s\n", "election state size", sizeof(st), "bytes");
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void bench_block_write(void)
{
	const char *dirs[] = { "/var/tmp", "/tmp", "." };
	char path[256], why[256];
	struct bd_dev *dev = NULL;
	int64_t lat[300];
	void *blk;
	FILE *f;
	int n = (int)(sizeof(lat) / sizeof(lat[0]));

	for (size_t d = 0; d < 3 && dev == NULL; d++) {
		snprintf(path, sizeof(path), "%s/fusefs-bench.%d.img", dirs[d], (int)getpid());
		f = fopen(path, "w");
		if (f == NULL)
			continue;
		if (ftruncate(fileno(f), 1 << 20) < 0)
			perror("ftruncate");
		fclose(f);
		if (bd_open(path, true, &dev, why, sizeof(why)) < 0)
			unlink(path);
	}
	if (dev == NULL) {
		printf("%-44s %14s  %s\n", "durable 4 KiB block write", "skipped", "(no O_DIRECT dir)");
		return;
	}
	blk = bd_alloc(1);
	for (int i = 0; i < n; i++) {
		mono_ns t0 = mono_now();

		if (bd_write(dev, (uint64_t)(i % 64), blk, 1, BD_WRITE_DURABLE) < 0)
			abort();
		lat[i] = mono_now() - t0;
	}
	qsort(lat, (size_t)n, sizeof(lat[0]), cmp_i64);
	row("durable 4 KiB write (O_DIRECT+RWF_DSYNC) p50", (double)lat[n / 2] / 1e3, "us");
	row("durable 4 KiB write (O_DIRECT+RWF_DSYNC) p99", (double)lat[n * 99 / 100] / 1e3, "us");
	bd_free(blk);
	bd_close(dev);
	unlink(path);
}

int main(void)
{
	printf("%-44s %14s  %s\n", "benchmark", "value", "unit");
	bench_crc();
	bench_codec(false);
	bench_codec(true);
	bench_step();
	bench_block_write();
	bench_store();
	return 0;
}
