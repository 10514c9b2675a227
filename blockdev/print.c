/*
 * print.c - print the super block and the quorum blocks for people.
 */
#include "blockdev/tools.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"

#include <errno.h>
#include <inttypes.h>
#include <time.h>

static char *fmt_time(uint64_t sec, uint32_t nsec, char *buf, size_t len)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char day[32];

	if (sec == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
	if (nsec == 0)
		snprintf(buf, len, "%s UTC", day);
	else
		snprintf(buf, len, "%s.%03u UTC", day, nsec / 1000000);
	return buf;
}

static void print_super(const struct bd_super *s, FILE *f)
{
	char when[64], addr[BD_ADDR_STRLEN];

	fprintf(f, "super block (blkno %d)\n", FUSEFS_SUPER_BLKNO);
	fprintf(f, "  fsid            %016" PRIx64 "\n", s->fsid);
	fprintf(f, "  format version  %" PRIu64 "\n", s->format_version);
	fprintf(f, "  flags           0x%" PRIx64 " (authentication %s)\n", s->flags,
		(s->flags & FUSEFS_SUPER_FLAG_AUTH) ? "on" : "off");
	fprintf(f, "  total blocks    %" PRIu64 " (%" PRIu64 " MiB)\n", s->total_blocks,
		s->total_blocks * FUSEFS_BLOCK_SIZE >> 20);
	fprintf(f, "  layout          super %d, quorum %" PRIu64 "..%" PRIu64 ", store %" PRIu64
		"..%" PRIu64 "\n", FUSEFS_SUPER_BLKNO, s->quorum_blkno,
		s->quorum_blkno + s->quorum_blocks - 1, s->store_blkno,
		s->store_blkno + s->store_blocks - 1);
	fprintf(f, "  made            %s\n", fmt_time(s->mkfs_sec, 0, when, sizeof(when)));
	fprintf(f, "  quorum config   version %" PRIu64 ", %d slots\n", s->qconf_version,
		bd_slots_present_count(s));
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if (bd_slot_present(s, i))
			fprintf(f, "    slot %-2d  %s\n", i,
				bd_addr_format(&s->slots[i], addr, sizeof(addr)));
}

static void print_qblock(int slot, const struct bd_qblock *qb, FILE *f)
{
	char when[64];
	char boot[2 * FUSEFS_BOOT_ID_BYTES + 1];

	fprintf(f, "\nquorum block of slot %d (blkno %" PRIu64 "): write_nr %" PRIu64 "\n", slot,
		bd_quorum_blkno(slot), qb->write_nr);
	fprintf(f, "  %-6s %-16s %10s %9s  %s\n", "event", "rid", "term", "write_nr", "time");
	for (int e = 0; e < FUSEFS_QEV_NR; e++) {
		const struct bd_qevent *ev = &qb->ev[e];

		if (ev->rid == 0 && ev->write_nr == 0) {
			fprintf(f, "  %-6s -\n", bd_qevent_name(e));
			continue;
		}
		fprintf(f, "  %-6s %016" PRIx64 " %10" PRIu64 " %9" PRIu64 "  %s\n",
			bd_qevent_name(e), ev->rid, ev->term, ev->write_nr,
			fmt_time(ev->ts_sec, ev->ts_nsec, when, sizeof(when)));
	}
	if (qb->hb_timeout_ms)
		fprintf(f, "  heartbeat timeout promised %u ms\n", qb->hb_timeout_ms);
	if (qb->vote_slot >= 0)
		fprintf(f, "  vote   term %" PRIu64 " for slot %d\n", qb->vote_term, qb->vote_slot);
	else
		fprintf(f, "  vote   none\n");
	if (qb->holder_pid != 0) {
		for (int i = 0; i < FUSEFS_BOOT_ID_BYTES; i++)
			snprintf(boot + 2 * i, 3, "%02x", qb->holder_boot_id[i]);
		fprintf(f, "  holder rid %016" PRIx64 " pid %" PRIu64 " (start %" PRIu64
			") on %s, boot id %s\n", qb->holder_rid, qb->holder_pid, qb->holder_start_ticks,
			qb->holder_host[0] ? qb->holder_host : "?", boot);
	}
}

/* The store's regions, from its header: 0, or 1 when the header is bad. */
static int print_store_header(struct bd_dev *dev, const struct bd_super *s, FILE *f)
{
	struct fusefs_store_header *h = bd_alloc(1);
	struct bd_store_layout l;
	char why[256];
	int ret;

	if (h == NULL)
		return 1;
	ret = bd_read(dev, FUSEFS_STORE_HDR_BLKNO, h, 1);
	if (ret < 0)
		snprintf(why, sizeof(why), "read failed: %s", errstr(ret));
	else
		ret = bd_store_header_decode(h, s, &l, why, sizeof(why));
	bd_free(h);
	if (ret < 0) {
		fprintf(f, "\nstore header (blkno %d): BAD: %s\n", FUSEFS_STORE_HDR_BLKNO, why);
		return 1;
	}
	fprintf(f, "\nstore (header blkno %d)\n", FUSEFS_STORE_HDR_BLKNO);
	fprintf(f, "  log region      blkno %" PRIu64 "..%" PRIu64 " (%" PRIu64 " MiB)\n",
		l.log_blkno, l.log_blkno + l.log_blocks - 1, l.log_blocks / 256);
	fprintf(f, "  database region blkno %" PRIu64 "..%" PRIu64 " (%" PRIu64 " MiB), pages of %u"
		" bytes\n", l.db_blkno, l.db_blkno + l.db_blocks - 1, l.db_blocks / 256, l.page_size);
	return 0;
}

int bd_print(struct bd_dev *dev, FILE *f)
{
	struct bd_super s;
	struct bd_qblock qb;
	char why[256];
	int bad = 0;
	int ret;

	ret = bd_read_super(dev, &s, why, sizeof(why));
	if (ret < 0) {
		fprintf(f, "super block (blkno %d): BAD: %s\n", FUSEFS_SUPER_BLKNO, why);
		return ret == -EIO ? 1 : ret;
	}
	print_super(&s, f);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		if (!bd_slot_present(&s, i))
			continue;
		ret = bd_read_qblock(dev, &s, i, &qb, why, sizeof(why));
		if (ret < 0) {
			fprintf(f, "\nquorum block of slot %d (blkno %" PRIu64 "): BAD: %s\n", i,
				bd_quorum_blkno(i), why);
			bad++;
			continue;
		}
		print_qblock(i, &qb, f);
	}
	bad += print_store_header(dev, &s, f);
	return bad;
}
