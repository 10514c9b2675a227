/*
 * unit_blockdev.c - crc32c vectors and implementation agreement, format
 * round trips, every verification failure, slot and address validation,
 * mkfs refusals, aligned device I/O and printing a corrupted device.
 */
#include "tests/unit.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "blockdev/sockaddr.h"
#include "blockdev/crc32c.h"
#include "blockdev/dev.h"
#include "blockdev/tools.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- crc32c ---- */

/* RFC 3720 appendix B.4, plus the common "123456789" check value. */
START_TEST(crc32c_vectors)
{
	uint8_t buf[48];

	memset(buf, 0, 32);
	ck_assert_uint_eq(bd_crc32c(buf, 32), 0x8a9136aa);
	memset(buf, 0xff, 32);
	ck_assert_uint_eq(bd_crc32c(buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(bd_crc32c(buf, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	ck_assert_uint_eq(bd_crc32c(buf, 32), 0x113fdb5c);

	static const uint8_t iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	ck_assert_uint_eq(bd_crc32c(iscsi_read, sizeof(iscsi_read)), 0xd9963a56);
	ck_assert_uint_eq(bd_crc32c("123456789", 9), 0xe3069283);
	ck_assert_uint_eq(bd_crc32c("", 0), 0);

	/* the same vectors through each implementation directly */
	memset(buf, 0, 32);
	ck_assert_uint_eq(~bd_crc32c_sw(~0u, buf, 32), 0x8a9136aa);
	ck_assert_uint_eq(~bd_crc32c_hw(~0u, buf, 32), 0x8a9136aa);
	ck_assert_uint_eq(~bd_crc32c_sw(~0u, iscsi_read, 48), 0xd9963a56);
	ck_assert_uint_eq(~bd_crc32c_hw(~0u, iscsi_read, 48), 0xd9963a56);
}
END_TEST

START_TEST(crc32c_hw_sw_agree)
{
	static uint8_t buf[4096 + 8];
	unsigned int seed = 12345;

	if (!bd_crc32c_hw_available())
		fprintf(stderr, "note: no SSE4.2 here; hardware crc32c falls back to the table\n");
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand_r(&seed);
	/* every length 0..4096, at every alignment 0..7 in turn */
	for (size_t len = 0; len <= 4096; len++) {
		const uint8_t *p = buf + (len % 8);
		uint32_t init = (uint32_t)rand_r(&seed);

		ck_assert_uint_eq(bd_crc32c_sw(init, p, len), bd_crc32c_hw(init, p, len));
	}
}
END_TEST

START_TEST(crc32c_update_continues)
{
	const char *s = "the quick brown fox jumps over the lazy dog";
	size_t n = strlen(s);

	for (size_t cut = 0; cut <= n; cut++)
		ck_assert_uint_eq(bd_crc32c_update(bd_crc32c(s, cut), s + cut, n - cut),
				  bd_crc32c(s, n));
}
END_TEST

/* ---- slots and addresses ---- */

START_TEST(slot_nr_valid_edges)
{
	ck_assert(!bd_slot_nr_valid(-1));
	ck_assert(bd_slot_nr_valid(0));
	ck_assert(bd_slot_nr_valid(FUSEFS_QUORUM_MAX_SLOTS - 1));
	ck_assert(!bd_slot_nr_valid(FUSEFS_QUORUM_MAX_SLOTS));
}
END_TEST

/* The whole truth table of addr_is_unicast, one named case per row. */
START_TEST(addr_unicast_table)
{
	static const struct {
		const char *host;
		bool unicast;
	} rows[] = {
		{ "127.0.0.1", true },       { "10.1.2.3", true },        { "192.168.0.255", true },
		{ "223.255.255.254", true }, { "1.0.0.0", true },         { "0.0.0.0", false },
		{ "0.1.2.3", false },        { "224.0.0.1", false },      { "239.255.255.255", false },
		{ "240.0.0.1", false },      { "255.255.255.255", false }, { "::1", true },
		{ "fe80::1", true },         { "2001:db8::5", true },     { "[::1]", true },
		{ "::", false },             { "ff02::1", false },        { "ff05::2", false },
	};
	struct bd_addr a;

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		ck_assert_int_eq(bd_addr_parse(rows[i].host, 7000, &a), 0);
		ck_assert_msg(bd_addr_is_unicast(&a) == rows[i].unicast, "%s", rows[i].host);
		ck_assert_msg((bd_addr_why_not_unicast(&a) == NULL) == rows[i].unicast, "%s",
			      rows[i].host);
	}
	ck_assert_int_eq(bd_addr_parse("example.com", 1, &a), -EINVAL);
	ck_assert_int_eq(bd_addr_parse("1.2.3", 1, &a), -EINVAL);
	memset(&a, 0, sizeof(a));
	ck_assert(!bd_addr_is_unicast(&a)); /* family none */
}
END_TEST

START_TEST(port_usable_edges)
{
	ck_assert(!bd_port_is_usable(0));
	ck_assert(bd_port_is_usable(1));
	ck_assert(bd_port_is_usable(65534));
	ck_assert(!bd_port_is_usable(65535));
}
END_TEST

START_TEST(addr_format_and_sockaddr)
{
	struct sockaddr_storage ss;
	struct bd_addr a, b;
	char buf[BD_ADDR_STRLEN];
	socklen_t len;

	ck_assert_int_eq(bd_addr_parse("::1", 7001, &a), 0);
	ck_assert_str_eq(bd_addr_format(&a, buf, sizeof(buf)), "[::1]:7001");
	ck_assert_int_eq(bd_addr_to_sockaddr(&a, &ss, &len), 0);
	bd_addr_from_sockaddr(&ss, &b);
	ck_assert(bd_addr_equal(&a, &b));
	ck_assert_int_eq(bd_addr_parse("10.0.0.2", 9, &a), 0);
	ck_assert_str_eq(bd_addr_format(&a, buf, sizeof(buf)), "10.0.0.2:9");
	ck_assert_int_eq(bd_addr_to_sockaddr(&a, &ss, &len), 0);
	bd_addr_from_sockaddr(&ss, &b);
	ck_assert(bd_addr_equal(&a, &b));
	b.port = 10;
	ck_assert(!bd_addr_equal(&a, &b));
}
END_TEST

/* Each refused -Q argument, with its own message. */
START_TEST(mkfs_slot_validation)
{
	static const struct {
		const char *arg;
		const char *msg;
	} bad[] = {
		{ "15,127.0.0.1,7000", "out of range 0..14" },
		{ "-1,127.0.0.1,7000", "out of range 0..14" },
		{ "x,127.0.0.1,7000", "out of range 0..14" },
		{ "3,224.0.0.1,7000", "not unicast: it is multicast" },
		{ "3,255.255.255.255,7000", "not unicast: it is the broadcast address" },
		{ "3,0.0.0.0,7000", "not unicast: it is in the zero network" },
		{ "3,ff02::1,7000", "not unicast: it is multicast" },
		{ "3,::,7000", "not unicast: it is unspecified" },
		{ "3,127.0.0.1,0", "port 0 is not usable" },
		{ "3,127.0.0.1,65535", "port 65535 is not usable" },
		{ "3,127.0.0.1,70000", "not a number in 1..65534" },
		{ "3,host.example,7000", "not an IPv4 or IPv6 address" },
		{ "3,127.0.0.1", "expected NR,ADDR,PORT" },
		{ "3,127.0.0.1,1,2", "expected NR,ADDR,PORT" },
		{ "1,127.0.0.1,7005", "slot 1 is given twice" },
		{ "4,127.0.0.1,7001", "slots 1 and 4 have the same address 127.0.0.1:7001" },
	};
	struct bd_super s;
	char why[256];

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(bd_mkfs_add_slot(&s, "1,127.0.0.1,7001", why, sizeof(why)), 0);
	ck_assert_int_eq(bd_mkfs_add_slot(&s, "2,::1,7001", why, sizeof(why)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why[0] = '\0';
		ck_assert_msg(bd_mkfs_add_slot(&s, bad[i].arg, why, sizeof(why)) < 0, "%s",
			      bad[i].arg);
		ck_assert_msg(strstr(why, bad[i].msg) != NULL, "%s: got '%s'", bad[i].arg, why);
	}
	ck_assert_int_eq(bd_slots_present_count(&s), 2);
}
END_TEST

START_TEST(qconf_check_rules)
{
	struct bd_super s;
	char why[256];

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(bd_qconf_check(&s, why, sizeof(why)), -EINVAL);
	ck_assert(strstr(why, "no quorum slots") != NULL);
	ck_assert_int_eq(bd_addr_parse("127.0.0.1", 7000, &s.slots[0]), 0);
	ck_assert_int_eq(bd_qconf_check(&s, why, sizeof(why)), 0);
	s.slots[5] = s.slots[0];
	ck_assert_int_eq(bd_qconf_check(&s, why, sizeof(why)), -EINVAL);
	ck_assert(strstr(why, "slots 0 and 5 have the same address") != NULL);
	s.slots[5].port = 0;
	ck_assert_int_eq(bd_qconf_check(&s, why, sizeof(why)), -EINVAL);
	ck_assert(strstr(why, "port 0") != NULL);
	ck_assert_int_eq(bd_addr_parse("224.1.1.1", 7000, &s.slots[5]), 0);
	ck_assert_int_eq(bd_qconf_check(&s, why, sizeof(why)), -EINVAL);
	ck_assert(strstr(why, "multicast") != NULL);
}
END_TEST

/* ---- super and quorum block round trips and verification ---- */

static void make_super(struct bd_super *s)
{
	memset(s, 0, sizeof(*s));
	s->fsid = 0x1122334455667788ull;
	s->seq = 3;
	s->format_version = FUSEFS_FORMAT_VERSION;
	s->flags = FUSEFS_SUPER_FLAG_AUTH;
	s->total_blocks = 16384;
	s->quorum_blkno = FUSEFS_QUORUM_BLKNO;
	s->quorum_blocks = FUSEFS_QUORUM_BLOCKS;
	s->store_blkno = FUSEFS_STORE_BLKNO;
	s->store_blocks = 16384 - FUSEFS_STORE_BLKNO;
	s->mkfs_sec = 1700000000;
	for (int i = 0; i < FUSEFS_CLUSTER_SECRET_BYTES; i++)
		s->cluster_secret[i] = (uint8_t)(i * 7);
	s->qconf_version = 1;
	bd_addr_parse("127.0.0.1", 7000, &s->slots[0]);
	bd_addr_parse("::1", 7001, &s->slots[4]);
	bd_addr_parse("10.9.8.7", 65534, &s->slots[14]);
}

START_TEST(super_round_trip)
{
	struct fusefs_super_block *blk = bd_alloc(1);
	struct bd_super in, out;
	char why[256];

	make_super(&in);
	bd_super_encode(&in, blk);
	ck_assert_int_eq(bd_super_decode(blk, &out, why, sizeof(why)), 0);
	ck_assert_mem_eq(&in, &out, sizeof(in));
	ck_assert_int_eq(bd_slots_present_count(&out), 3);
	bd_free(blk);
}
END_TEST

static void expect_super_fail(struct fusefs_super_block *blk, const char *msg)
{
	struct bd_super out;
	char why[256] = "";

	ck_assert_int_eq(bd_super_decode(blk, &out, why, sizeof(why)), -EIO);
	ck_assert_msg(strstr(why, msg) != NULL, "wanted '%s', got '%s'", msg, why);
}

START_TEST(super_verify_failures)
{
	struct fusefs_super_block *blk = bd_alloc(1);
	struct bd_super s;

	make_super(&s);

	bd_super_encode(&s, blk);
	((uint8_t *)blk)[1000] ^= 0x01;
	expect_super_fail(blk, "crc check failed");

	bd_super_encode(&s, blk);
	bd_block_seal(blk, FUSEFS_MAGIC_QUORUM, s.fsid, FUSEFS_SUPER_BLKNO, 1);
	expect_super_fail(blk, "magic check failed");

	bd_super_encode(&s, blk);
	bd_block_seal(blk, FUSEFS_MAGIC_SUPER, s.fsid, FUSEFS_SUPER_BLKNO + 1, 1);
	expect_super_fail(blk, "blkno check failed");

	s.format_version = FUSEFS_FORMAT_VERSION + 1;
	bd_super_encode(&s, blk);
	expect_super_fail(blk, "made by a newer fusefs");
	/* the previous format is refused with the way out named */
	s.format_version = FUSEFS_FORMAT_VERSION - 1;
	bd_super_encode(&s, blk);
	expect_super_fail(blk, "run fusefs-mkfs --force");

	make_super(&s);
	s.store_blocks -= 1;
	bd_super_encode(&s, blk);
	expect_super_fail(blk, "layout check failed");

	make_super(&s);
	s.flags |= 0x80;
	bd_super_encode(&s, blk);
	expect_super_fail(blk, "flags check failed");

	make_super(&s);
	s.slots[3] = s.slots[0];
	bd_super_encode(&s, blk);
	expect_super_fail(blk, "quorum config check failed");
	bd_free(blk);
}
END_TEST

static void make_qblock(struct bd_qblock *qb)
{
	memset(qb, 0, sizeof(*qb));
	qb->seq = 9;
	qb->vote_slot = -1;
	for (int e = 0; e < FUSEFS_QEV_NR; e++)
		bd_qblock_set_event(qb, e, 0xabc0 + (uint64_t)e, 10 + (uint64_t)e, 1700000000 + e,
				    (uint32_t)e * 1000);
	qb->vote_term = 12;
	qb->vote_slot = 2;
	qb->hb_timeout_ms = 2500;
	qb->holder_rid = 0xfeed;
	qb->holder_pid = 4242;
	qb->holder_start_ticks = 987654;
	memset(qb->holder_boot_id, 0x5a, sizeof(qb->holder_boot_id));
	snprintf(qb->holder_host, sizeof(qb->holder_host), "host-a");
	qb->prev_holder_rid = 0xbeef;
	qb->holder_pidns = 4026531836ull;
	qb->seq_hwm = 1ull << 45;
}

START_TEST(qblock_round_trip)
{
	struct fusefs_quorum_block *blk = bd_alloc(1);
	struct bd_qblock in, out;
	char why[256];

	make_qblock(&in);
	ck_assert_uint_eq(in.write_nr, FUSEFS_QEV_NR);
	ck_assert_uint_eq(in.ev[FUSEFS_QEV_END].write_nr, FUSEFS_QEV_NR);
	bd_qblock_encode(&in, 77, bd_quorum_blkno(3), blk);
	ck_assert_int_eq(bd_qblock_decode(blk, 77, bd_quorum_blkno(3), &out, why, sizeof(why)), 0);
	ck_assert_mem_eq(&in, &out, sizeof(in));
	ck_assert_uint_eq(bd_qblock_greatest_term(&out), 15);

	in.vote_slot = -1;
	bd_qblock_encode(&in, 77, bd_quorum_blkno(3), blk);
	ck_assert_uint_eq(blk->vote_slot, FUSEFS_NO_VOTE);
	ck_assert_int_eq(bd_qblock_decode(blk, 77, bd_quorum_blkno(3), &out, why, sizeof(why)), 0);
	ck_assert_int_eq(out.vote_slot, -1);
	bd_free(blk);
}
END_TEST

START_TEST(qblock_verify_failures)
{
	struct fusefs_quorum_block *blk = bd_alloc(1);
	struct bd_qblock qb, out;
	char why[256];

	make_qblock(&qb);
	bd_qblock_encode(&qb, 77, 20, blk);
	((uint8_t *)blk)[4095] ^= 0x80;
	ck_assert_int_eq(bd_qblock_decode(blk, 77, 20, &out, why, sizeof(why)), -EIO);
	ck_assert(strstr(why, "block 20: crc check failed") != NULL);

	bd_qblock_encode(&qb, 77, 20, blk);
	bd_block_seal(blk, FUSEFS_MAGIC_SUPER, 77, 20, 1);
	ck_assert_int_eq(bd_qblock_decode(blk, 77, 20, &out, why, sizeof(why)), -EIO);
	ck_assert(strstr(why, "magic check failed") != NULL);

	bd_qblock_encode(&qb, 78, 20, blk);
	ck_assert_int_eq(bd_qblock_decode(blk, 77, 20, &out, why, sizeof(why)), -EIO);
	ck_assert(strstr(why, "fsid check failed") != NULL);

	bd_qblock_encode(&qb, 77, 21, blk);
	ck_assert_int_eq(bd_qblock_decode(blk, 77, 20, &out, why, sizeof(why)), -EIO);
	ck_assert(strstr(why, "blkno check failed") != NULL);

	/* canonical: a crc that verifies does not make non-zero padding acceptable */
	{
		static const size_t pads[] = {
			offsetof(struct fusefs_quorum_block, events[0].pad),
			offsetof(struct fusefs_quorum_block, events[FUSEFS_QEV_NR - 1].pad) + 3,
			offsetof(struct fusefs_quorum_block, pad1),
			offsetof(struct fusefs_quorum_block, pad2),
			FUSEFS_BLOCK_SIZE - 1,
		};

		for (size_t i = 0; i < ARRAY_SIZE(pads); i++) {
			bd_qblock_encode(&qb, 77, 20, blk);
			((uint8_t *)blk)[pads[i]] = 0x10;
			bd_block_seal(blk, FUSEFS_MAGIC_QUORUM, 77, 20, qb.seq);
			ck_assert_int_eq(bd_qblock_decode(blk, 77, 20, &out, why, sizeof(why)), -EIO);
			ck_assert_msg(strstr(why, "padding check failed") != NULL, "%s", why);
		}
		bd_qblock_encode(&qb, 77, 20, blk);
		blk->vote_slot = FUSEFS_QUORUM_MAX_SLOTS;
		bd_block_seal(blk, FUSEFS_MAGIC_QUORUM, 77, 20, qb.seq);
		ck_assert_int_eq(bd_qblock_decode(blk, 77, 20, &out, why, sizeof(why)), -EIO);
		ck_assert(strstr(why, "vote check failed") != NULL);
		blk->vote_slot = FUSEFS_NO_VOTE;
		bd_block_seal(blk, FUSEFS_MAGIC_QUORUM, 77, 20, qb.seq);
		ck_assert_int_eq(bd_qblock_decode(blk, 77, 20, &out, why, sizeof(why)), 0);
		ck_assert_int_eq(out.vote_slot, -1);
	}
	bd_free(blk);
}
END_TEST

/* ---- device I/O ---- */

START_TEST(dev_aligned_io)
{
	const char *path = test_make_file("io.img", 1 << 20);
	uint8_t *wbuf, *rbuf;
	struct bd_dev *dev;
	char why[256];
	int fd;

	if (path == NULL)
		return; /* skipped; test_tmpdir() said why */
	ck_assert_int_eq(bd_open(path, true, &dev, why, sizeof(why)), 0);
	ck_assert_uint_eq(bd_size_blocks(dev), 256);
	wbuf = bd_alloc(3);
	rbuf = bd_alloc(3);
	for (unsigned i = 0; i < 3 * FUSEFS_BLOCK_SIZE; i++)
		wbuf[i] = (uint8_t)(i * 31 + 7);
	ck_assert_int_eq(bd_write(dev, 100, wbuf, 3, BD_WRITE_DURABLE), 0);
	ck_assert_int_eq(bd_read(dev, 100, rbuf, 3), 0);
	ck_assert_mem_eq(wbuf, rbuf, 3 * FUSEFS_BLOCK_SIZE);

	/* what was written is on the device: read it through a separate O_DIRECT open */
	memset(rbuf, 0, 3 * FUSEFS_BLOCK_SIZE);
	fd = open(path, O_RDONLY | O_DIRECT);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, rbuf, 3 * FUSEFS_BLOCK_SIZE, 100 * FUSEFS_BLOCK_SIZE),
			 3 * FUSEFS_BLOCK_SIZE);
	close(fd);
	ck_assert_mem_eq(wbuf, rbuf, 3 * FUSEFS_BLOCK_SIZE);

	/* any buffer alignment works (the device copies through its own); out-of-range
	 * blocks and empty transfers are refused, not attempted */
	memset(rbuf, 0, 3 * FUSEFS_BLOCK_SIZE);
	ck_assert_int_eq(bd_read(dev, 100, rbuf + 1, 1), 0);
	ck_assert_mem_eq(wbuf, rbuf + 1, FUSEFS_BLOCK_SIZE);
	ck_assert_int_eq(bd_read(dev, 256, rbuf, 1), -ERANGE);
	ck_assert_int_eq(bd_write(dev, 255, wbuf, 2, 0), -ERANGE);
	ck_assert_int_eq(bd_read(dev, 0, rbuf, 0), -EINVAL);

	/* the file shrinks under us: the read comes back short, which is -EIO */
	ck_assert_int_eq(truncate(path, 100 * FUSEFS_BLOCK_SIZE + 2048), 0);
	ck_assert_int_eq(bd_read(dev, 100, rbuf, 1), -EIO);

	bd_free(wbuf);
	bd_free(rbuf);
	bd_close(dev);
}
END_TEST

START_TEST(dev_open_errors)
{
	struct bd_dev *dev;
	char why[256];

	ck_assert_int_eq(bd_open("/nonexistent/dev.img", false, &dev, why, sizeof(why)), -ENOENT);
	ck_assert(strstr(why, "/nonexistent/dev.img: open failed") != NULL);
	ck_assert_int_eq(bd_open("/dev/null", false, &dev, why, sizeof(why)) < 0, 1);
}
END_TEST

static struct bd_dev *make_fs(const char *name, size_t bytes, struct bd_super *s)
{
	struct bd_mkfs_opts opts = { 0 };
	const char *path = test_make_file(name, bytes);
	struct bd_dev *dev;
	char why[256];

	if (path == NULL)
		return NULL;
	ck_assert_int_eq(bd_open(path, true, &dev, why, sizeof(why)), 0);
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(bd_mkfs_add_slot(s, "0,127.0.0.1,7000", why, sizeof(why)), 0);
	ck_assert_int_eq(bd_mkfs_add_slot(s, "1,127.0.0.1,7001", why, sizeof(why)), 0);
	ck_assert_int_eq(bd_mkfs_add_slot(s, "2,127.0.0.1,7002", why, sizeof(why)), 0);
	ck_assert_int_eq(bd_mkfs(dev, s, &opts, why, sizeof(why)), 0);
	return dev;
}

START_TEST(mkfs_writes_valid_fs)
{
	struct bd_mkfs_opts opts = { 0 };
	struct bd_super s, r, again;
	struct bd_qblock qb;
	struct bd_dev *dev = make_fs("mkfs.img", 64 << 20, &s);
	char why[256];

	if (dev == NULL)
		return;
	ck_assert_int_eq(bd_read_super(dev, &r, why, sizeof(why)), 0);
	ck_assert_uint_eq(r.fsid, s.fsid);
	ck_assert_uint_ne(r.fsid, 0);
	ck_assert_uint_eq(r.total_blocks, 16384);
	ck_assert(r.flags & FUSEFS_SUPER_FLAG_AUTH);
	ck_assert_int_eq(bd_slots_present_count(&r), 3);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		ck_assert_int_eq(bd_read_qblock(dev, &r, i, &qb, why, sizeof(why)), 0);
		ck_assert_uint_eq(qb.write_nr, 0);
		ck_assert_int_eq(qb.vote_slot, -1);
	}

	/* an existing filesystem is refused without --force, replaced with it */
	memset(&again, 0, sizeof(again));
	ck_assert_int_eq(bd_mkfs_add_slot(&again, "0,127.0.0.1,8000", why, sizeof(why)), 0);
	ck_assert_int_eq(bd_mkfs(dev, &again, &opts, why, sizeof(why)), -EEXIST);
	ck_assert(strstr(why, "already holds a fusefs filesystem") != NULL);
	ck_assert(strstr(why, "--force") != NULL);
	opts.force = true;
	opts.no_auth = true;
	ck_assert_int_eq(bd_mkfs(dev, &again, &opts, why, sizeof(why)), 0);
	ck_assert_int_eq(bd_read_super(dev, &r, why, sizeof(why)), 0);
	ck_assert_uint_eq(r.fsid, again.fsid);
	ck_assert_uint_ne(r.fsid, s.fsid);
	ck_assert(!(r.flags & FUSEFS_SUPER_FLAG_AUTH));
	ck_assert_int_eq(bd_slots_present_count(&r), 1);
	bd_close(dev);
}
END_TEST

START_TEST(mkfs_refuses_small_device)
{
	struct bd_mkfs_opts opts = { 0 };
	const char *path = test_make_file("small.img", (FUSEFS_MIN_TOTAL_BLOCKS - 1) * 4096);
	struct bd_super s;
	struct bd_dev *dev;
	char why[256];

	if (path == NULL)
		return;
	ck_assert_int_eq(bd_open(path, true, &dev, why, sizeof(why)), 0);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(bd_mkfs_add_slot(&s, "0,127.0.0.1,7000", why, sizeof(why)), 0);
	ck_assert_int_eq(bd_mkfs(dev, &s, &opts, why, sizeof(why)), -ENOSPC);
	ck_assert(strstr(why, "the layout needs at least") != NULL);
	bd_close(dev);
}
END_TEST

START_TEST(print_names_corrupt_block)
{
	struct bd_super s;
	struct bd_dev *dev = make_fs("print.img", 64 << 20, &s);
	char *text = NULL;
	size_t len = 0;
	uint8_t byte;
	FILE *f;
	int fd;

	if (dev == NULL)
		return;
	f = open_memstream(&text, &len);
	ck_assert_int_eq(bd_print(dev, f), 0);
	fclose(f);
	ck_assert(strstr(text, "slot 2   127.0.0.1:7002") != NULL);
	ck_assert(strstr(text, "quorum block of slot 1 (blkno 18): write_nr 0") != NULL);
	free(text);

	/* flip one byte in slot 1's quorum block, behind the device's back */
	fd = open(bd_path(dev), O_RDWR);
	ck_assert_int_eq(pread(fd, &byte, 1, 18 * 4096 + 300), 1);
	byte ^= 0x01;
	ck_assert_int_eq(pwrite(fd, &byte, 1, 18 * 4096 + 300), 1);
	fsync(fd);
	close(fd);

	f = open_memstream(&text, &len);
	ck_assert_int_eq(bd_print(dev, f), 1);
	fclose(f);
	ck_assert(strstr(text, "quorum block of slot 1 (blkno 18): BAD: quorum block of slot 1: "
			       "block 18: crc check failed") != NULL);
	/* and the blocks after it are still printed */
	ck_assert(strstr(text, "quorum block of slot 2 (blkno 19): write_nr 0") != NULL);
	free(text);
	bd_close(dev);
}
END_TEST

Suite *suite_blockdev(void)
{
	Suite *s = suite_create("blockdev");
	TCase *tc = tcase_create("format");

	tcase_add_test(tc, crc32c_vectors);
	tcase_add_test(tc, crc32c_hw_sw_agree);
	tcase_add_test(tc, crc32c_update_continues);
	tcase_add_test(tc, slot_nr_valid_edges);
	tcase_add_test(tc, addr_unicast_table);
	tcase_add_test(tc, port_usable_edges);
	tcase_add_test(tc, addr_format_and_sockaddr);
	tcase_add_test(tc, mkfs_slot_validation);
	tcase_add_test(tc, qconf_check_rules);
	tcase_add_test(tc, super_round_trip);
	tcase_add_test(tc, super_verify_failures);
	tcase_add_test(tc, qblock_round_trip);
	tcase_add_test(tc, qblock_verify_failures);
	suite_add_tcase(s, tc);

	tc = tcase_create("device");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, dev_aligned_io);
	tcase_add_test(tc, dev_open_errors);
	tcase_add_test(tc, mkfs_writes_valid_fs);
	tcase_add_test(tc, mkfs_refuses_small_device);
	tcase_add_test(tc, print_names_corrupt_block);
	suite_add_tcase(s, tc);
	return s;
}
