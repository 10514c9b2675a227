/*
 * unit_proto.c - the RPC message catalogue: sizes, request and reply
 * round trips through sealed frames, every length rule of the request
 * decoder, READDIR entries, and random or truncated bytes fed to every
 * decoder (under ASan a read outside the input is a failure).
 */
#include "tests/unit.h"

#include "common/prng.h"
#include "server/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h>

static void make_super(struct bd_super *s, bool auth)
{
	memset(s, 0, sizeof(*s));
	s->fsid = 0x99;
	s->flags = auth ? FUSEFS_SUPER_FLAG_AUTH : 0;
	memset(s->cluster_secret, 0x17, sizeof(s->cluster_secret));
}

/* Build a REQUEST payload in buf; returns its length. */
static uint32_t build(uint8_t *buf, uint32_t op, uint32_t ngroups, const void *fixed,
		      uint32_t fixed_len, const void *t1, uint32_t l1, const void *t2, uint32_t l2)
{
	struct rpc_req r = { .req_id = 7, .client_rid = 0xabc, .oldest_req_id = 3, .op = op,
			     .uid = 1000, .gid = 100, .pid = 42, .ngroups = ngroups,
			     .tail1_len = l1, .tail2_len = l2 };
	struct le32 groups[RPC_GROUPS_MAX];
	struct rpc_req_hdr h;
	uint32_t n = 0;

	for (uint32_t i = 0; i < ngroups && i < RPC_GROUPS_MAX; i++)
		r.groups[i] = 500 + i;
	rpc_req_hdr_encode(&r, &h, groups);
	memcpy(buf, &h, sizeof(h));
	n += sizeof(h);
	memcpy(buf + n, groups, 4 * ngroups);
	n += 4 * ngroups;
	memcpy(buf + n, fixed, fixed_len);
	n += fixed_len;
	if (l1 > 0)
		memcpy(buf + n, t1, l1);
	n += l1;
	if (l2 > 0)
		memcpy(buf + n, t2, l2);
	return n + l2;
}

START_TEST(every_op_has_sizes)
{
	for (uint32_t op = RPC_LOOKUP; op < RPC_OP_END; op++) {
		ck_assert(rpc_op_valid(op));
		ck_assert_uint_gt(rpc_op_fixed_bytes(op), 0);
		ck_assert_str_ne(rpc_op_name(op), "unknown");
	}
	ck_assert(!rpc_op_valid(0));
	ck_assert(!rpc_op_valid(RPC_OP_END));
	ck_assert_ptr_null(rpc_op_info(RPC_OP_END));
	ck_assert_uint_eq(rpc_op_fixed_bytes(RPC_OP_END), 0);
	/* the wire numbers are the rows' places: the first and a later one pinned */
	ck_assert_uint_eq(RPC_LOOKUP, 1);
	ck_assert_uint_eq(RPC_ACCESS, 24);
}
END_TEST

/* The rules the op table's rows must keep between them (proto.h's column notes). */
START_TEST(op_table_rules)
{
	for (uint32_t op = RPC_LOOKUP; op < RPC_OP_END; op++) {
		const struct rpc_op_info *o = rpc_op_info(op);

		ck_assert_ptr_nonnull(o);
		/* a replayed op may write, and keeps its whole answer in the table */
		if (o->replay) {
			ck_assert_msg(o->store != RPC_STORE_READS, "%s: replayed but not writing", o->name);
			ck_assert_msg(o->reply_tail_max == 0, "%s: replayed with a reply tail", o->name);
			ck_assert_msg(o->handle != RPC_HANDLE_DROPS, "%s: replayed, dropping a handle",
				      o->name);
		}
		/* retake and holds_note know where OPEN's and CREATE's handles are, no other op's */
		ck_assert_msg(o->handle != RPC_HANDLE_TAKES || op == RPC_OPEN || op == RPC_CREATE,
			      "%s: takes a handle: teach retake (dispatch.c) and holds_note (holds.c)",
			      o->name);
		/* every op that may write is replayed: a resend after a failover must not redo it */
		ck_assert_msg(o->store == RPC_STORE_READS || o->replay, "%s: writes, not replayed",
			      o->name);
		/* TRUNCS reads its flags from an rpc_open, DATA its length from an rpc_io */
		if (o->store == RPC_STORE_TRUNCS)
			ck_assert_uint_eq(o->fixed_bytes, sizeof(struct rpc_open));
		if (o->tail1 == RPC_TAIL_DATA)
			ck_assert_uint_eq(o->fixed_bytes, sizeof(struct rpc_io));
		ck_assert_uint_eq(o->tail2 == RPC_TAIL_DATA, 0);
		/* an asked-for reply tail names a le32 inside the request */
		if (o->reply_tail_asked)
			ck_assert_uint_le(o->reply_tail_asked - 1 + 4, o->fixed_bytes);
		ck_assert_uint_le(o->reply_tail_max + o->reply_fixed_bytes + 64, SRV_FRAME_MAX_PAYLOAD);
	}
}
END_TEST

/* Whether a request writes, as the executor asks it, from the table alone. */
START_TEST(which_requests_write)
{
	struct rpc_open open_ro = { .flags = cpu_to_le32(O_RDONLY) };
	struct rpc_open open_tr = { .flags = cpu_to_le32(O_WRONLY | O_TRUNC) };
	struct rpc_io io = { .size = cpu_to_le32(1 << 30) };
	struct rpc_req q = { .op = RPC_OPEN, .fixed = &open_ro };

	ck_assert(!rpc_req_writes(&q));
	q.fixed = &open_tr;
	ck_assert(rpc_req_writes(&q));
	q = (struct rpc_req){ .op = RPC_RELEASE, .fixed = &io };
	ck_assert(!rpc_req_writes(&q));
	q.op = RPC_CREATE;
	ck_assert(rpc_req_writes(&q));
	q.op = RPC_WRITE;
	ck_assert(rpc_req_writes(&q));
	q.op = RPC_READ;
	ck_assert(!rpc_req_writes(&q));
	/* a read asks for more than the wire carries: its reply is held to the limit */
	ck_assert_uint_eq(rpc_req_reply_tail_max(&q), RPC_IO_MAX);
	io.size = cpu_to_le32(100);
	ck_assert_uint_eq(rpc_req_reply_tail_max(&q), 100);
	ck_assert_uint_ge(rpc_req_reply_budget(&q), 100 + sizeof(struct rpc_reply_hdr));
	q.op = RPC_GETATTR;
	ck_assert_uint_eq(rpc_req_reply_tail_max(&q), 0);
	ck_assert(!rpc_req_writes(&q));
}
END_TEST

/* What a sender is told about a request the wire would refuse. */
START_TEST(request_check_errnos)
{
	static char big[RPC_XATTR_SIZE_MAX + 2];
	struct rpc_io io = { .size = cpu_to_le32(3) };

	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(rpc_req_check(RPC_LOOKUP, NULL, big, RPC_NAME_MAX, NULL, 0), 0);
	ck_assert_int_eq(rpc_req_check(RPC_LOOKUP, NULL, big, RPC_NAME_MAX + 1, NULL, 0),
			 -ENAMETOOLONG);
	ck_assert_int_eq(rpc_req_check(RPC_SYMLINK, NULL, "l", 1, big, RPC_PATH_MAX + 1),
			 -ENAMETOOLONG);
	ck_assert_int_eq(rpc_req_check(RPC_GETXATTR, NULL, big, RPC_XATTR_NAME_MAX + 1, NULL, 0),
			 -ERANGE);
	ck_assert_int_eq(rpc_req_check(RPC_SETXATTR, NULL, "user.a", 6, big, RPC_XATTR_SIZE_MAX + 1),
			 -E2BIG);
	ck_assert_int_eq(rpc_req_check(RPC_WRITE, &io, "abc", 3, NULL, 0), 0);
	ck_assert_int_eq(rpc_req_check(RPC_WRITE, &io, "ab", 2, NULL, 0), -EINVAL);
	ck_assert_int_eq(rpc_req_check(RPC_LOOKUP, NULL, "a/b", 3, NULL, 0), -EINVAL);
	ck_assert_int_eq(rpc_req_check(RPC_LOOKUP, NULL, "", 0, NULL, 0), -EINVAL);
	ck_assert_int_eq(rpc_req_check(RPC_OP_END, NULL, NULL, 0, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(request_round_trip)
{
	static uint8_t buf[4096];
	struct rpc_rename rn = { .parent = cpu_to_le64(1), .newparent = cpu_to_le64(9),
				 .flags = cpu_to_le32(RPC_RENAME_NOREPLACE) };
	struct rpc_rename got;
	struct rpc_req r;
	uint32_t n = build(buf, RPC_RENAME, 3, &rn, sizeof(rn), "old", 3, "new-name", 8);

	ck_assert_int_eq(rpc_req_decode(buf, n, &r), 0);
	ck_assert_uint_eq(r.req_id, 7);
	ck_assert_uint_eq(r.client_rid, 0xabc);
	ck_assert_uint_eq(r.oldest_req_id, 3);
	ck_assert_uint_eq(r.op, RPC_RENAME);
	ck_assert_uint_eq(r.uid, 1000);
	ck_assert_uint_eq(r.ngroups, 3);
	ck_assert_uint_eq(r.groups[2], 502);
	memcpy(&got, r.fixed, sizeof(got));
	ck_assert_uint_eq(le64_to_cpu(got.newparent), 9);
	ck_assert_uint_eq(r.tail1_len, 3);
	ck_assert_mem_eq(r.tail1, "old", 3);
	ck_assert_uint_eq(r.tail2_len, 8);
	ck_assert_mem_eq(r.tail2, "new-name", 8);
	/* every shorter or longer length is refused */
	for (uint32_t len = 0; len < n; len++)
		ck_assert_int_eq(rpc_req_decode(buf, len, &r), -EBADMSG);
	ck_assert_int_eq(rpc_req_decode(buf, n + 1, &r), -EBADMSG);
}
END_TEST

START_TEST(request_rules)
{
	static uint8_t buf[RPC_IO_MAX + 8192];
	static char big[RPC_IO_MAX + 2];
	struct rpc_ino ino = { .ino = cpu_to_le64(1) };
	struct rpc_io io = { .ino = cpu_to_le64(5), .size = cpu_to_le32(10) };
	struct rpc_req r;
	uint32_t n;

	memset(big, 'a', sizeof(big));
	/* names: 1..255 bytes, no '/', no NUL */
	n = build(buf, RPC_LOOKUP, 0, &ino, sizeof(ino), big, 255, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), 0);
	n = build(buf, RPC_LOOKUP, 0, &ino, sizeof(ino), big, 256, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	n = build(buf, RPC_LOOKUP, 0, &ino, sizeof(ino), "a/b", 3, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	n = build(buf, RPC_LOOKUP, 0, &ino, sizeof(ino), "a\0b", 3, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	n = build(buf, RPC_LOOKUP, 0, &ino, sizeof(ino), "", 0, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	/* a tail the op does not take */
	n = build(buf, RPC_GETATTR, 0, &ino, sizeof(ino), "x", 1, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	/* symlink targets up to 4095, with '/' */
	n = build(buf, RPC_SYMLINK, 0, &ino, sizeof(ino), "l", 1, "/a/b", 4);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), 0);
	n = build(buf, RPC_SYMLINK, 0, &ino, sizeof(ino), "l", 1, big, 4096);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	/* writes: the size field equals the data, at most 1 MiB */
	n = build(buf, RPC_WRITE, 0, &io, sizeof(io), big, 10, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), 0);
	n = build(buf, RPC_WRITE, 0, &io, sizeof(io), big, 11, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	io.size = cpu_to_le32(RPC_IO_MAX);
	n = build(buf, RPC_WRITE, 0, &io, sizeof(io), big, RPC_IO_MAX, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), 0);
	io.size = cpu_to_le32(RPC_IO_MAX + 1);
	n = build(buf, RPC_WRITE, 0, &io, sizeof(io), big, RPC_IO_MAX + 1, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	/* too many groups; an unknown op; reserved bits */
	n = build(buf, RPC_GETATTR, RPC_GROUPS_MAX, &ino, sizeof(ino), NULL, 0, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), 0);
	((struct rpc_req_hdr *)buf)->ngroups = cpu_to_le32(RPC_GROUPS_MAX + 1);
	ck_assert_int_eq(rpc_req_decode(buf, n + 4, &r), -EBADMSG);
	n = build(buf, RPC_OP_END, 0, &ino, sizeof(ino), NULL, 0, NULL, 0);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	n = build(buf, RPC_GETATTR, 0, &ino, sizeof(ino), NULL, 0, NULL, 0);
	((struct rpc_req_hdr *)buf)->reserved = cpu_to_le32(1);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
	/* tail lengths near 2^32 cannot wrap the sum */
	n = build(buf, RPC_GETATTR, 0, &ino, sizeof(ino), NULL, 0, NULL, 0);
	((struct rpc_req_hdr *)buf)->tail1_len = cpu_to_le32(0xffffffffu);
	((struct rpc_req_hdr *)buf)->tail2_len = cpu_to_le32(n + 1);
	ck_assert_int_eq(rpc_req_decode(buf, n, &r), -EBADMSG);
}
END_TEST

START_TEST(reply_round_trip)
{
	uint8_t buf[256];
	struct rpc_reply_hdr h = { .req_id = cpu_to_le64(11), .status = cpu_to_le32(0),
				   .op = cpu_to_le32(RPC_GETATTR) };
	struct rpc_attr a = { .ino = cpu_to_le64(77), .mode = cpu_to_le32(0100644) };
	struct rpc_reply r;

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &a, sizeof(a));
	ck_assert_int_eq(rpc_reply_decode(buf, sizeof(h) + sizeof(a), &r), 0);
	ck_assert_uint_eq(r.req_id, 11);
	ck_assert_uint_eq(r.tail_len, 0);
	ck_assert_int_eq(rpc_reply_decode(buf, sizeof(h) + sizeof(a) - 1, &r), -EBADMSG);
	/* an error reply carries nothing */
	h.status = cpu_to_le32(ENOENT);
	memcpy(buf, &h, sizeof(h));
	ck_assert_int_eq(rpc_reply_decode(buf, sizeof(h), &r), 0);
	ck_assert_uint_eq(r.status, ENOENT);
	ck_assert_int_eq(rpc_reply_decode(buf, sizeof(h) + 1, &r), -EBADMSG);
	h.status = cpu_to_le32(70000);
	memcpy(buf, &h, sizeof(h));
	ck_assert_int_eq(rpc_reply_decode(buf, sizeof(h), &r), -EBADMSG);
}
END_TEST

START_TEST(frames_sealed_from_pieces)
{
	for (int auth = 0; auth < 2; auth++) {
		static uint8_t data[100000], frame[sizeof(data) + 256];
		struct srv_codec c;
		struct bd_super s;
		struct srv_frame_hdr h;
		uint8_t tag[HMAC_SHA256_BYTES];
		struct iovec pieces[2] = { { (void *)"head", 4 }, { data, sizeof(data) } };
		const uint8_t *pl;
		uint32_t type, plen;
		ssize_t n;

		for (size_t i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)(i * 7);
		make_super(&s, auth);
		ck_assert_int_eq(srv_codec_init(&c, &s), 0);
		n = srv_frame_seal(&c, SRV_MSG_REQUEST, pieces, 2, &h, tag);
		ck_assert_int_eq(n, (ssize_t)srv_frame_bytes(&c, 4 + sizeof(data)));
		memcpy(frame, &h, sizeof(h));
		memcpy(frame + sizeof(h), "head", 4);
		memcpy(frame + sizeof(h) + 4, data, sizeof(data));
		if (auth)
			memcpy(frame + sizeof(h) + 4 + sizeof(data), tag, sizeof(tag));
		ck_assert_int_eq(srv_frame_decode(&c, frame, (size_t)n, &type, &pl, &plen), n);
		ck_assert_uint_eq(type, SRV_MSG_REQUEST);
		ck_assert_uint_eq(plen, 4 + sizeof(data));
		ck_assert_mem_eq(pl + 4, data, sizeof(data));
		/* one flipped bit anywhere is refused: crc, or the tag */
		frame[sizeof(h) + 5000] ^= 0x10;
		ck_assert_int_lt(srv_frame_decode(&c, frame, (size_t)n, &type, &pl, &plen), 0);
		srv_codec_free(&c);
	}
}
END_TEST

START_TEST(readdir_entries)
{
	uint8_t tail[512];
	uint32_t len = 0, pos = 0;
	struct rpc_dirent d, got;
	const struct rpc_attr *ap;
	struct rpc_attr a = { .ino = cpu_to_le64(12) };
	const char *name;

	d = (struct rpc_dirent){ .ino = cpu_to_le64(12), .cookie = cpu_to_le64(3),
				 .mode = cpu_to_le32(0040000), .namelen = cpu_to_le16(5),
				 .has_attr = cpu_to_le16(1) };
	memset(tail, 0, sizeof(tail));
	memcpy(tail, &d, sizeof(d));
	memcpy(tail + sizeof(d), "hello", 5);
	memcpy(tail + rpc_dirent_bytes(5, true) - sizeof(a), &a, sizeof(a));
	len = rpc_dirent_bytes(5, true);
	d.namelen = cpu_to_le16(1);
	d.has_attr = cpu_to_le16(0);
	memcpy(tail + len, &d, sizeof(d));
	memcpy(tail + len + sizeof(d), "x", 1);
	len += rpc_dirent_bytes(1, false);

	ck_assert_int_eq(rpc_dirent_next(tail, len, &pos, &got, &name, &ap), 0);
	ck_assert_mem_eq(name, "hello", 5);
	ck_assert_ptr_nonnull(ap);
	ck_assert_int_eq(rpc_dirent_next(tail, len, &pos, &got, &name, &ap), 0);
	ck_assert_ptr_null(ap);
	ck_assert_int_eq(rpc_dirent_next(tail, len, &pos, &got, &name, &ap), 1);
	/* a truncated entry is refused, never read past */
	pos = 0;
	ck_assert_int_eq(rpc_dirent_next(tail, len - 1, &pos, &got, &name, &ap), 0);
	ck_assert_int_eq(rpc_dirent_next(tail, len - 1, &pos, &got, &name, &ap), -EBADMSG);
}
END_TEST

/* Random and mutated bytes at every decoder: no crash, no read outside. */
START_TEST(decoders_survive_garbage)
{
	struct rpc_ino ino = { .ino = cpu_to_le64(1) };
	uint64_t rng = 12345;
	struct srv_codec c;
	struct bd_super s;
	static uint8_t good[512];
	uint32_t glen = build(good, RPC_LOOKUP, 2, &ino, sizeof(ino), "name", 4, NULL, 0);

	make_super(&s, true);
	ck_assert_int_eq(srv_codec_init(&c, &s), 0);
	for (int iter = 0; iter < 20000; iter++) {
		uint32_t len = (uint32_t)prng_below(&rng, 300);
		uint8_t *buf = malloc(len ? len : 1);
		struct rpc_req r;
		struct rpc_reply rp;
		struct rpc_dirent d;
		const struct rpc_attr *ap;
		const char *name;
		const uint8_t *pl;
		uint32_t type, plen, pos = 0;

		if (iter % 2 == 0) {
			for (uint32_t i = 0; i < len; i++)
				buf[i] = (uint8_t)prng_next(&rng);
		} else {
			/* a valid request with a few bytes changed, cut anywhere */
			len = MIN(len, glen);
			memcpy(buf, good, len);
			for (int k = 0; k < 3 && len > 0; k++)
				buf[prng_below(&rng, len)] ^= (uint8_t)(1u << prng_below(&rng, 8));
		}
		(void)rpc_req_decode(buf, len, &r);
		(void)rpc_reply_decode(buf, len, &rp);
		while (rpc_dirent_next(buf, len, &pos, &d, &name, &ap) == 0)
			;
		if (len >= SRV_FRAME_HDR_BYTES)
			(void)srv_frame_total(&c, buf);
		(void)srv_frame_decode(&c, buf, len, &type, &pl, &plen);
		free(buf);
	}
	srv_codec_free(&c);
}
END_TEST

Suite *suite_proto(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("rpc");

	tcase_add_test(tc, every_op_has_sizes);
	tcase_add_test(tc, op_table_rules);
	tcase_add_test(tc, which_requests_write);
	tcase_add_test(tc, request_check_errnos);
	tcase_add_test(tc, request_round_trip);
	tcase_add_test(tc, request_rules);
	tcase_add_test(tc, reply_round_trip);
	tcase_add_test(tc, frames_sealed_from_pieces);
	tcase_add_test(tc, readdir_entries);
	tcase_add_test(tc, decoders_survive_garbage);
	suite_add_tcase(s, tc);
	return s;
}
