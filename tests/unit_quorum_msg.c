/*
 * unit_quorum_msg.c - the quorum message codec: round trips, every
 * rejection reason with its counter, replay protection, authentication,
 * and random or truncated bytes (run under ASan by make asan, so a read
 * outside the buffer fails the test).
 */
#include "tests/unit.h"

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

#include <stdlib.h>

static void make_super(struct bd_super *s, bool auth)
{
	memset(s, 0, sizeof(*s));
	s->fsid = 0xabcdef0123456789ull;
	s->flags = auth ? FUSEFS_SUPER_FLAG_AUTH : 0;
	for (int i = 0; i < FUSEFS_CLUSTER_SECRET_BYTES; i++)
		s->cluster_secret[i] = (uint8_t)(i + 1);
	bd_addr_parse("127.0.0.1", 7000, &s->slots[0]);
	bd_addr_parse("127.0.0.1", 7001, &s->slots[1]);
	bd_addr_parse("127.0.0.1", 7002, &s->slots[2]);
}

struct pair {
	struct bd_super s;
	struct quorum_codec tx; /* slot 0 */
	struct quorum_codec rx; /* slot 1 */
};

static void pair_init(struct pair *p, bool auth)
{
	make_super(&p->s, auth);
	ck_assert_int_eq(quorum_codec_init(&p->tx, &p->s, 0, 0x1111, 1000), 0);
	ck_assert_int_eq(quorum_codec_init(&p->rx, &p->s, 1, 0x2222, 5000), 0);
}

static void pair_free(struct pair *p)
{
	quorum_codec_free(&p->tx);
	quorum_codec_free(&p->rx);
}

static int encode(struct pair *p, uint8_t type, uint8_t *buf)
{
	struct quorum_msg m = {
		.type = type, .from = 0, .to = 1, .flags = QMSG_F_GRANTED, .timeout_ms = 2000,
		.term = 77, .arg = 0x123456789ull,
	};

	return quorum_msg_encode(&p->tx, &m, buf, QUORUM_MSG_WIRE_BYTES);
}

START_TEST(round_trip_every_type)
{
	for (int auth = 0; auth < 2; auth++) {
		struct pair p;
		uint8_t buf[QUORUM_MSG_WIRE_BYTES];
		struct quorum_msg m;

		pair_init(&p, auth);
		for (uint8_t t = QMSG_REQUEST_VOTE; t < QMSG_TYPE_END; t++) {
			ck_assert_int_eq(encode(&p, t, buf), QUORUM_MSG_WIRE_BYTES);
			ck_assert_int_eq(quorum_msg_decode(&p.rx, buf, sizeof(buf), &m), 0);
			ck_assert_uint_eq(m.type, t);
			ck_assert_uint_eq(m.from, 0);
			ck_assert_uint_eq(m.term, 77);
			ck_assert_uint_eq(m.arg, 0x123456789ull);
			ck_assert_uint_eq(m.flags, QMSG_F_GRANTED);
			ck_assert_uint_eq(m.timeout_ms, 2000);
			ck_assert_uint_eq(m.rid, 0x1111);
			ck_assert_uint_gt(m.seq, 1000);
		}
		for (int r = 0; r < QINV_NR; r++)
			ck_assert_uint_eq(p.rx.invalid[r], 0);
		pair_free(&p);
	}
}
END_TEST

/* Corrupt one field of an encoded message, re-sealing what needs it. */
static void expect_reject(struct pair *p, uint8_t *buf, size_t len, int reason)
{
	struct quorum_msg m;
	uint64_t before = p->rx.invalid[reason];

	ck_assert_int_eq(quorum_msg_decode(&p->rx, buf, len, &m), -(reason + 1));
	ck_assert_uint_eq(p->rx.invalid[reason], before + 1);
}

static void reseal(struct pair *p, uint8_t *buf)
{
	struct le32 crc = cpu_to_le32(bd_crc32c(buf, 52));

	memcpy(buf + 52, &crc, 4);
	if (p->tx.auth)
		hmac_sha256(&p->tx.mac, buf, 56, buf + 56);
}

START_TEST(every_rejection_counted)
{
	uint8_t buf[QUORUM_MSG_WIRE_BYTES + 8];
	struct pair p;

	pair_init(&p, true);

	encode(&p, QMSG_HEARTBEAT, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES - 1, QINV_wrong_length);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES + 1, QINV_wrong_length);
	expect_reject(&p, buf, 0, QINV_wrong_length);

	encode(&p, QMSG_HEARTBEAT, buf);
	buf[9] ^= 1;
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_bad_crc);

	encode(&p, QMSG_HEARTBEAT, buf);
	buf[70] ^= 1;
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_bad_tag);

	/* a forged message: right crc, but the tag is not keyed by our secret */
	encode(&p, QMSG_HEARTBEAT, buf);
	buf[8] ^= 1;
	reseal(&p, buf);
	memset(buf + 56, 0, 32);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_bad_tag);

	encode(&p, QMSG_HEARTBEAT, buf);
	buf[44] = 9;
	reseal(&p, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_bad_version);

	encode(&p, QMSG_HEARTBEAT, buf);
	buf[0] ^= 1;
	reseal(&p, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_other_fsid);

	encode(&p, QMSG_HEARTBEAT, buf);
	buf[45] = QMSG_TYPE_END;
	reseal(&p, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_unknown_type);
	buf[45] = 0;
	reseal(&p, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_unknown_type);

	encode(&p, QMSG_HEARTBEAT, buf);
	buf[46] = FUSEFS_QUORUM_MAX_SLOTS;
	reseal(&p, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_bad_slot);
	buf[46] = 5; /* in range, not configured */
	reseal(&p, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_bad_slot);

	encode(&p, QMSG_HEARTBEAT, buf);
	buf[46] = 1; /* claims to be the receiver's own slot */
	reseal(&p, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_from_self);

	/* an authentic message for slot 2, delivered to slot 1 (a redirected VOTE) */
	encode(&p, QMSG_VOTE, buf);
	buf[48] = 2;
	reseal(&p, buf);
	expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_wrong_dest);
	pair_free(&p);
}
END_TEST

START_TEST(replay_and_old_sequence_rejected)
{
	uint8_t a[QUORUM_MSG_WIRE_BYTES], b[QUORUM_MSG_WIRE_BYTES];
	struct quorum_msg m;
	struct pair p;

	pair_init(&p, true);
	encode(&p, QMSG_HEARTBEAT, a);
	encode(&p, QMSG_HEARTBEAT, b);
	ck_assert_int_eq(quorum_msg_decode(&p.rx, b, sizeof(b), &m), 0);
	expect_reject(&p, b, sizeof(b), QINV_old_seq); /* replayed */
	expect_reject(&p, a, sizeof(a), QINV_old_seq); /* older, arriving late */
	/* a restarted sender starts above its old numbers (seq base = wall clock ns) */
	quorum_codec_free(&p.tx);
	ck_assert_int_eq(quorum_codec_init(&p.tx, &p.s, 0, 0x3333, 1000000), 0);
	encode(&p, QMSG_HEARTBEAT, a);
	ck_assert_int_eq(quorum_msg_decode(&p.rx, a, sizeof(a), &m), 0);
	ck_assert_uint_eq(m.rid, 0x3333);
	pair_free(&p);
}
END_TEST

START_TEST(auth_mismatch_rejected)
{
	uint8_t buf[QUORUM_MSG_WIRE_BYTES];
	struct quorum_codec other;
	struct bd_super s2;
	struct quorum_msg m;
	struct pair p;

	pair_init(&p, true);
	/* the same fsid, a different cluster secret */
	s2 = p.s;
	s2.cluster_secret[0] ^= 0xff;
	ck_assert_int_eq(quorum_codec_init(&other, &s2, 0, 0x9, 1), 0);
	m = (struct quorum_msg){ .type = QMSG_VOTE, .from = 0, .to = 1, .term = 3 };
	quorum_msg_encode(&other, &m, buf, sizeof(buf));
	expect_reject(&p, buf, sizeof(buf), QINV_bad_tag);
	quorum_codec_free(&other);
	/* and without auth on the sender, a receiver with auth refuses it */
	s2 = p.s;
	s2.flags = 0;
	ck_assert_int_eq(quorum_codec_init(&other, &s2, 0, 0x9, 1), 0);
	quorum_msg_encode(&other, &m, buf, sizeof(buf));
	expect_reject(&p, buf, sizeof(buf), QINV_bad_tag);
	quorum_codec_free(&other);
	pair_free(&p);
}
END_TEST

/*
 * Random and truncated bytes: the decoder never accepts garbage and never
 * reads outside the buffer (each buffer is exactly its length on the heap,
 * so ASan catches an over-read).
 */
START_TEST(random_and_truncated_bytes)
{
	uint8_t good[QUORUM_MSG_WIRE_BYTES];
	unsigned int seed = 424242;
	struct quorum_msg m;
	uint64_t rejected = 0;
	struct pair p;

	for (int auth = 0; auth < 2; auth++) {
		pair_init(&p, auth);
		for (int iter = 0; iter < 20000; iter++) {
			size_t len = (size_t)(rand_r(&seed) % (2 * QUORUM_MSG_WIRE_BYTES + 1));
			uint8_t *buf = malloc(len ? len : 1);

			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rand_r(&seed);
			ck_assert_int_lt(quorum_msg_decode(&p.rx, buf, len, &m), 0);
			free(buf);
		}
		/* every truncation of a valid message, and one bit flips */
		encode(&p, QMSG_VOTE, good);
		for (size_t len = 0; len < QUORUM_MSG_WIRE_BYTES; len++) {
			uint8_t *buf = malloc(len ? len : 1);

			memcpy(buf, good, len);
			ck_assert_int_lt(quorum_msg_decode(&p.rx, buf, len, &m), 0);
			free(buf);
		}
		for (size_t bit = 0; bit < QUORUM_MSG_WIRE_BYTES * 8; bit++) {
			uint8_t buf[QUORUM_MSG_WIRE_BYTES];

			memcpy(buf, good, sizeof(buf));
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			/* without auth a flip in the unused tag bytes is harmless */
			if (!auth && bit / 8 >= 56)
				continue;
			ck_assert_int_lt(quorum_msg_decode(&p.rx, buf, sizeof(buf), &m), 0);
		}
		for (int r = 0; r < QINV_NR; r++)
			rejected += p.rx.invalid[r];
		pair_free(&p);
	}
	ck_assert_uint_gt(rejected, 40000);
}
END_TEST

/* Without authentication the tag is all zero, and nothing else is accepted. */
START_TEST(unauthenticated_tag_must_be_zero)
{
	uint8_t buf[QUORUM_MSG_WIRE_BYTES];
	struct quorum_msg m;
	struct pair p;

	pair_init(&p, false);
	encode(&p, QMSG_HEARTBEAT, buf);
	for (int i = 56; i < QUORUM_MSG_WIRE_BYTES; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(quorum_msg_decode(&p.rx, buf, sizeof(buf), &m), 0);
	for (int i = 56; i < QUORUM_MSG_WIRE_BYTES; i += 7) {
		encode(&p, QMSG_HEARTBEAT, buf);
		buf[i] = 0x01;
		expect_reject(&p, buf, QUORUM_MSG_WIRE_BYTES, QINV_bad_tag);
	}
	/* and the canonical one still goes through afterwards */
	encode(&p, QMSG_HEARTBEAT, buf);
	ck_assert_int_eq(quorum_msg_decode(&p.rx, buf, sizeof(buf), &m), 0);
	pair_free(&p);
}
END_TEST

START_TEST(names)
{
	ck_assert_str_eq(quorum_msg_type_name(QMSG_PRE_VOTE), "pre_vote");
	ck_assert_str_eq(quorum_msg_type_name(0), "invalid");
	ck_assert_str_eq(quorum_msg_type_name(QMSG_TYPE_END), "invalid");
	ck_assert_str_eq(quorum_invalid_name(QINV_bad_tag), "bad_tag");
	ck_assert_str_eq(quorum_invalid_name(QINV_NR), "invalid");
	ck_assert_str_eq(quorum_role_name(QROLE_LEADER), "leader");
}
END_TEST

/*
 * Every name table at its edges: -1, the first, the last, one past the
 * last (the seed's off-by-one was "i > MAX" where "i >= MAX" was meant),
 * and every entry in between named and distinct.
 */
static void table_ok(const char *(*name)(int), int count, const char *first, const char *last,
		     const char *bad)
{
	ck_assert_str_eq(name(-1), bad);
	ck_assert_str_eq(name(count), bad);
	ck_assert_str_eq(name(count + 1), bad);
	ck_assert_str_eq(name(0), first);
	ck_assert_str_eq(name(count - 1), last);
	for (int i = 0; i < count; i++) {
		ck_assert_ptr_nonnull(name(i));
		ck_assert_str_ne(name(i), bad);
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(name(i), name(j));
	}
}

static const char *msg_type_name(int t)
{
	return quorum_msg_type_name((unsigned)(t + QMSG_REQUEST_VOTE));
}

START_TEST(name_tables_edges)
{
	table_ok(bd_qevent_name, FUSEFS_QEV_NR, "begin", "end", "invalid");
	table_ok(quorum_invalid_name, QINV_NR, "wrong_length", "old_seq", "invalid");
	table_ok(quorum_role_name, QROLE_LEADER + 1, "follower", "leader", "invalid");
	table_ok(quorum_server_state_name, QSRV_STOPPING + 1, "down", "stopping", "invalid");
	table_ok(quorum_note_text, QNOTE_NR, "started",
		 "our quorum block is written again: back in elections", "?");
	table_ok(msg_type_name, QMSG_TYPE_END - QMSG_REQUEST_VOTE, "request_vote", "heartbeat_ack",
		 "invalid");
	ck_assert_str_eq(quorum_msg_type_name(0), "invalid");
	ck_assert_str_eq(quorum_msg_type_name(QMSG_TYPE_END), "invalid");
}
END_TEST

Suite *suite_quorum_msg(void)
{
	Suite *s = suite_create("quorum_msg");
	TCase *tc = tcase_create("codec");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, round_trip_every_type);
	tcase_add_test(tc, every_rejection_counted);
	tcase_add_test(tc, replay_and_old_sequence_rejected);
	tcase_add_test(tc, auth_mismatch_rejected);
	tcase_add_test(tc, name_tables_edges);
	tcase_add_test(tc, unauthenticated_tag_must_be_zero);
	tcase_add_test(tc, random_and_truncated_bytes);
	tcase_add_test(tc, names);
	suite_add_tcase(s, tc);
	return s;
}
