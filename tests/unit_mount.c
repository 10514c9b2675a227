/*
 * unit_mount.c - fusefs-mount's option parsing: every accepted form and
 * every refusal with its message; and the greeting frames.
 */
#include "tests/unit.h"

#include "fuse/calls.h"
#include "fuse/holds.h"
#include "fuse/opts.h"
#include "quorum/election.h"
#include "server/proto.h"

#include <errno.h>
#include <stdlib.h>

static int parse(struct mount_opts *o, char *why, size_t len, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	const char *a;

	argv[argc++] = (char *)"fusefs-mount";
	va_start(ap, len);
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return mount_opts_parse(argc, argv, o, why, len);
}

START_TEST(accepts_option_form)
{
	struct mount_opts o;
	char why[256];

	ck_assert_int_eq(parse(&o, why, sizeof(why), "-f", "-o",
			       "metadev_path=/dev/sdb,quorum_slot_nr=2,quorum_heartbeat_timeout_ms=2000,"
			       "fence_timeout_ms=5000,allow_other", "/mnt/x", NULL), 0);
	ck_assert_str_eq(o.device, "/dev/sdb");
	ck_assert_str_eq(o.mountpoint, "/mnt/x");
	ck_assert_int_eq(o.slot_nr, 2);
	ck_assert_uint_eq(o.hb_timeout_ms, 2000);
	ck_assert_uint_eq(o.fence_timeout_ms, 5000);
	ck_assert(o.foreground);
	ck_assert_ptr_null(o.fence_cmd);
	/* libfuse's own option is passed through */
	{
		bool found = false;

		for (int i = 0; i < o.fuse_args.argc; i++)
			found |= strstr(o.fuse_args.argv[i], "allow_other") != NULL;
		ck_assert(found);
	}
	mount_opts_free(&o);
}
END_TEST

START_TEST(accepts_mount8_form_and_defaults)
{
	struct mount_opts o;
	char why[256];

	ck_assert_int_eq(parse(&o, why, sizeof(why), "/dev/sdb", "/mnt/x", "-o", "rw", NULL), 0);
	ck_assert_str_eq(o.device, "/dev/sdb");
	ck_assert_str_eq(o.mountpoint, "/mnt/x");
	ck_assert_int_eq(o.slot_nr, -1);
	ck_assert_uint_eq(o.hb_timeout_ms, QUORUM_HB_TIMEOUT_DEFAULT_MS);
	ck_assert_uint_eq(o.fence_timeout_ms, FENCE_TIMEOUT_DEFAULT_MS);
	ck_assert(!o.foreground);
	mount_opts_free(&o);
	/* the same device twice is fine */
	ck_assert_int_eq(parse(&o, why, sizeof(why), "/dev/sdb", "/mnt/x", "-o",
			       "metadev_path=/dev/sdb", NULL), 0);
	mount_opts_free(&o);
	/* -d is foreground and debug */
	ck_assert_int_eq(parse(&o, why, sizeof(why), "-d", "-o", "metadev_path=a", "b", NULL), 0);
	ck_assert(o.foreground && o.debug);
	mount_opts_free(&o);
	/* fence_cmd must be an absolute executable */
	ck_assert_int_eq(parse(&o, why, sizeof(why), "-o", "metadev_path=a,fence_cmd=/bin/true",
			       "b", NULL), 0);
	ck_assert_str_eq(o.fence_cmd, "/bin/true");
	mount_opts_free(&o);
}
END_TEST

START_TEST(refusals_say_why)
{
	static const struct {
		const char *opts;
		const char *msg;
	} bad[] = {
		{ "metadev_path=a,quorum_slot_nr=15", "quorum_slot_nr=15: not a slot number 0..14" },
		{ "metadev_path=a,quorum_slot_nr=-1", "quorum_slot_nr=-1: not a slot number 0..14" },
		{ "metadev_path=a,quorum_slot_nr=x", "quorum_slot_nr=x: not a slot number" },
		{ "metadev_path=a,quorum_slot_nr=", "quorum_slot_nr=: not a slot number" },
		{ "metadev_path=a,quorum_slot_nr=1,quorum_slot_nr=1", "quorum_slot_nr given twice (1 and 1)" },
		{ "metadev_path=a,quorum_heartbeat_timeout_ms=499", "out of range 500..60000" },
		{ "metadev_path=a,quorum_heartbeat_timeout_ms=60001", "out of range 500..60000" },
		{ "metadev_path=a,quorum_heartbeat_timeout_ms=1e3", "out of range 500..60000" },
		{ "metadev_path=a,fence_timeout_ms=99", "fence_timeout_ms=99: out of range 100..600000" },
		{ "metadev_path=a,server_wait_ms=x", "server_wait_ms=x: out of range" },
		{ "metadev_path=a,failover_timeout_ms=0", "failover_timeout_ms=0: out of range" },
		{ "metadev_path=a,grace_ms=-5", "grace_ms=-5: out of range" },
		{ "metadev_path=a,fence_cmd=relative", "fence_cmd=relative: not an executable file" },
		{ "metadev_path=a,fence_cmd=/nonexistent", "fence_cmd=/nonexistent: not an executable" },
		{ "quorum_slot_nr=1", "no metadata device" },
	};
	struct mount_opts o;
	char why[256];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(parse(&o, why, sizeof(why), "-o", bad[i].opts, "/mnt", NULL), -EINVAL);
		ck_assert_msg(strstr(why, bad[i].msg) != NULL, "%s: got '%s'", bad[i].opts, why);
	}
	ck_assert_int_eq(parse(&o, why, sizeof(why), "-o", "metadev_path=a", NULL), -EINVAL);
	ck_assert(strstr(why, "no MOUNTPOINT") != NULL);
	ck_assert_int_eq(parse(&o, why, sizeof(why), "a", "b", "c", NULL), -EINVAL);
	ck_assert(strstr(why, "unexpected argument 'c'") != NULL);
	ck_assert_int_eq(parse(&o, why, sizeof(why), "/dev/a", "/mnt", "-o", "metadev_path=/dev/b",
			       NULL), -EINVAL);
	ck_assert(strstr(why, "two devices given") != NULL);
}
END_TEST

/* ---- frames ---- */

static void make_super(struct bd_super *s, bool auth)
{
	memset(s, 0, sizeof(*s));
	s->fsid = 0x77;
	s->flags = auth ? FUSEFS_SUPER_FLAG_AUTH : 0;
	memset(s->cluster_secret, 0x42, sizeof(s->cluster_secret));
}

START_TEST(greeting_round_trip_and_rejections)
{
	for (int auth = 0; auth < 2; auth++) {
		struct srv_greeting g = { .fsid = 0x77, .client_rid = 0x1234, .version = 1 }, g2;
		struct srv_greeting_reply r = { .fsid = 0x77, .server_rid = 9, .term = 5, .slot = 2,
						.status = SRV_GREET_OK, .version = 1 }, r2;
		struct srv_greeting_wire gw;
		struct srv_greeting_reply_wire rw;
		uint8_t frame[256];
		const uint8_t *p;
		uint32_t type, plen;
		struct srv_codec c, other;
		struct bd_super s;
		ssize_t n;

		make_super(&s, auth);
		ck_assert_int_eq(srv_codec_init(&c, &s), 0);
		srv_greeting_encode(&g, &gw);
		n = srv_frame_encode(&c, SRV_MSG_GREETING, &gw, sizeof(gw), frame, sizeof(frame));
		ck_assert_int_eq(n, (ssize_t)srv_frame_bytes(&c, sizeof(gw)));
		ck_assert_int_eq(srv_frame_total(&c, frame), n);
		/* incomplete frames ask for more, never read past the end */
		for (ssize_t len = 0; len < n; len++)
			ck_assert_int_eq(srv_frame_decode(&c, frame, (size_t)len, &type, &p, &plen), -EAGAIN);
		ck_assert_int_eq(srv_frame_decode(&c, frame, (size_t)n, &type, &p, &plen), n);
		ck_assert_uint_eq(type, SRV_MSG_GREETING);
		ck_assert_int_eq(srv_greeting_decode(p, plen, &g2), 0);
		ck_assert_uint_eq(g2.client_rid, 0x1234);
		ck_assert_int_eq(srv_greeting_decode(p, plen - 1, &g2), -EBADMSG);

		srv_greeting_reply_encode(&r, &rw);
		ck_assert_int_eq(srv_greeting_reply_decode(&rw, sizeof(rw), &r2), 0);
		/* reserved bytes must be zero: non-canonical input is refused */
		((uint8_t *)&rw)[offsetof(struct srv_greeting_reply_wire, reserved)] = 1;
		ck_assert_int_eq(srv_greeting_reply_decode(&rw, sizeof(rw), &r2), -EBADMSG);
		ck_assert(r2.fsid == r.fsid && r2.server_rid == r.server_rid && r2.term == r.term &&
			  r2.slot == r.slot && r2.status == r.status && r2.version == r.version);

		/* a flipped payload bit fails the crc; a bad magic or length is refused */
		frame[SRV_FRAME_HDR_BYTES + 3] ^= 1;
		ck_assert_int_eq(srv_frame_decode(&c, frame, (size_t)n, &type, &p, &plen), -EBADMSG);
		frame[SRV_FRAME_HDR_BYTES + 3] ^= 1;
		frame[0] ^= 1;
		ck_assert_int_eq(srv_frame_decode(&c, frame, (size_t)n, &type, &p, &plen), -EBADMSG);
		frame[0] ^= 1;
		frame[10] = 0xff; /* payload length far beyond the limit */
		ck_assert_int_eq(srv_frame_decode(&c, frame, (size_t)n, &type, &p, &plen), -EBADMSG);
		srv_codec_free(&c);

		/*
		 * Sessions: the client's frames decode in the server's session of
		 * the same nonces, in order, once; not replayed, not in another
		 * session, not reflected back the other way.
		 */
		if (auth) {
			uint8_t cn[SRV_NONCE_BYTES] = { 1 }, sn[SRV_NONCE_BYTES] = { 2 };
			uint8_t f2[256];
			struct srv_codec ctx, srx, stx, other_rx;
			ssize_t n2;

			ck_assert_int_eq(srv_codec_init(&c, &s), 0);
			ck_assert_int_eq(srv_codec_session(&ctx, &c, true, cn, sn), 0);
			ck_assert_int_eq(srv_codec_session(&srx, &c, true, cn, sn), 0);
			ck_assert_int_eq(srv_codec_session(&stx, &c, false, cn, sn), 0);
			sn[0] ^= 1;
			ck_assert_int_eq(srv_codec_session(&other_rx, &c, true, cn, sn), 0);
			n = srv_frame_encode(&ctx, SRV_MSG_BYE, "", 0, frame, sizeof(frame));
			n2 = srv_frame_encode(&ctx, SRV_MSG_BYE, "", 0, f2, sizeof(f2));
			ck_assert_int_eq(srv_frame_decode(&other_rx, frame, (size_t)n, &type, &p, &plen),
					 -EPERM); /* another connection's session */
			ck_assert_int_eq(srv_frame_decode(&srx, f2, (size_t)n2, &type, &p, &plen),
					 -EPERM); /* out of order */
			ck_assert_int_eq(srv_frame_decode(&srx, frame, (size_t)n, &type, &p, &plen), n);
			ck_assert_int_eq(srv_frame_decode(&srx, frame, (size_t)n, &type, &p, &plen),
					 -EPERM); /* replayed */
			ck_assert_int_eq(srv_frame_decode(&srx, f2, (size_t)n2, &type, &p, &plen), n2);
			n = srv_frame_encode(&stx, SRV_MSG_BYE, "", 0, frame, sizeof(frame));
			ck_assert_int_eq(srv_frame_decode(&srx, frame, (size_t)n, &type, &p, &plen),
					 -EPERM); /* the other direction's */
			ck_assert_int_eq(srv_frame_decode(&c, frame, (size_t)n, &type, &p, &plen),
					 -EPERM); /* and not the filesystem's key */
			srv_codec_free(&ctx);
			srv_codec_free(&srx);
			srv_codec_free(&stx);
			srv_codec_free(&other_rx);
			srv_codec_free(&c);
		}

		/* with auth, another cluster's key fails the tag */
		if (auth) {
			ck_assert_int_eq(srv_codec_init(&c, &s), 0);
			n = srv_frame_encode(&c, SRV_MSG_GREETING, &gw, sizeof(gw), frame, sizeof(frame));
			s.cluster_secret[0] ^= 1;
			ck_assert_int_eq(srv_codec_init(&other, &s), 0);
			ck_assert_int_eq(srv_frame_decode(&other, frame, (size_t)n, &type, &p, &plen), -EPERM);
			srv_codec_free(&other);
			srv_codec_free(&c);
		}
	}
}
END_TEST

/* A call's life in the calls table, and the rules a resend relies on. */
START_TEST(calls_keep_their_ids)
{
	static struct calls t;
	int a, b, c;
	uint64_t ida, idb;

	calls_init(&t);
	a = calls_take(&t);
	b = calls_take(&t);
	ck_assert_int_ge(a, 0);
	ck_assert_int_ne(a, b);
	ida = t.slot[a].req_id;
	idb = t.slot[b].req_id;
	ck_assert_uint_eq(ida & (CALLS_MAX - 1), (uint64_t)a); /* the low bits name the slot */
	ck_assert_uint_gt(idb, ida);
	ck_assert_uint_eq(t.nfree, CALLS_MAX - 2);
	/* each request carries the oldest id still waiting, its own or older */
	ck_assert_uint_eq(calls_sent(&t, (uint32_t)b, 7), ida);
	ck_assert_uint_eq(calls_sent(&t, (uint32_t)a, 7), ida);
	/* a reply counts only on its connection, for its id */
	ck_assert_int_eq(calls_for_reply(&t, idb, 7), b);
	ck_assert_int_eq(calls_for_reply(&t, idb, 8), -1);
	ck_assert_int_eq(calls_for_reply(&t, idb + CALLS_MAX, 7), -1);
	/* the connection is lost: both go again, with the same ids */
	ck_assert_int_eq(calls_after_loss(&t, (uint32_t)a, 8), CALL_SENT); /* (not that one) */
	calls_set(&t, (uint32_t)a, calls_after_loss(&t, (uint32_t)a, 7));
	calls_set(&t, (uint32_t)b, calls_after_loss(&t, (uint32_t)b, 7));
	ck_assert_int_eq(t.slot[a].state, CALL_WAITING);
	ck_assert_uint_eq(t.slot[a].req_id, ida);
	ck_assert_uint_eq(calls_sent(&t, (uint32_t)a, 9), ida);
	/* a abandoned (its deadline passed), then its connection lost: freed */
	calls_set(&t, (uint32_t)a, CALL_ABANDONED);
	ck_assert_int_eq(calls_after_loss(&t, (uint32_t)a, 9), CALL_FREE);
	calls_set(&t, (uint32_t)a, CALL_FREE);
	/* b still waits: what a new call's request says is b's id */
	c = calls_take(&t);
	ck_assert_uint_eq(calls_sent(&t, (uint32_t)c, 9), idb);
	ck_assert_uint_gt(t.slot[c].req_id, idb);
	/* done and freed: the oldest moves on */
	calls_sent(&t, (uint32_t)b, 9);
	calls_set(&t, (uint32_t)b, CALL_DONE);
	calls_set(&t, (uint32_t)b, CALL_FREE);
	ck_assert_uint_eq(calls_oldest(&t, UINT64_MAX), t.slot[c].req_id);
	ck_assert_uint_eq(t.nfree, CALLS_MAX - 1);
	/* every slot taken: none more */
	while (calls_take(&t) >= 0)
		;
	ck_assert_uint_eq(t.nfree, 0);
}
END_TEST

/* The open files a mount names again: taken, released, and all named after many. */
START_TEST(holds_named_again)
{
	struct holds h = { 0 };
	struct rpc_hold out[16];
	uint32_t cursor = 0, n, seen = 0;

	for (uint64_t fh = 1; fh <= 1000; fh++) {
		struct rpc_open o = { .ino = cpu_to_le64(100 + fh), .flags = cpu_to_le32(2),
				      .fh = cpu_to_le64(fh) };

		ck_assert_int_eq(holds_note(&h, RPC_OPEN, &o, NULL), 0);
	}
	for (uint64_t fh = 2; fh <= 1000; fh += 2) {
		struct rpc_release rl = { .ino = cpu_to_le64(100 + fh), .fh = cpu_to_le64(fh) };

		ck_assert_int_eq(holds_note(&h, RPC_RELEASE, &rl, NULL), 0);
	}
	{
		struct rpc_make mk = { .fh = cpu_to_le64(5000), .flags = cpu_to_le32(2) };
		struct rpc_created cr = { .entry.attr.ino = cpu_to_le64(7) };

		ck_assert_int_eq(holds_note(&h, RPC_CREATE, &mk, &cr), 0);
		ck_assert_int_eq(holds_note(&h, RPC_CREATE, &mk, NULL), 0); /* (no reply: nothing) */
	}
	ck_assert_uint_eq(h.used, 501);
	while ((n = holds_next(&h, &cursor, out, 16)) > 0)
		for (uint32_t i = 0; i < n; i++) {
			uint64_t fh = le64_to_cpu(out[i].fh), ino = le64_to_cpu(out[i].ino);

			ck_assert(fh == 5000 ? ino == 7 : (fh % 2 == 1 && ino == 100 + fh));
			seen++;
		}
	ck_assert_uint_eq(seen, 501);
	holds_free(&h);
}
END_TEST

Suite *suite_mount(void)
{
	Suite *s = suite_create("mount");
	TCase *tc = tcase_create("options");

	tcase_add_test(tc, accepts_option_form);
	tcase_add_test(tc, accepts_mount8_form_and_defaults);
	tcase_add_test(tc, refusals_say_why);
	tcase_add_test(tc, greeting_round_trip_and_rejections);
	suite_add_tcase(s, tc);
	tc = tcase_create("calls and open files");
	tcase_add_test(tc, calls_keep_their_ids);
	tcase_add_test(tc, holds_named_again);
	suite_add_tcase(s, tc);
	return s;
}
