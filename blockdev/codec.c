/*
 * codec.c - encode, decode and verify the super and quorum blocks, and the
 * slot address helpers.  Pure: no I/O, no clocks.  Decoding checks every
 * rule of format.h in order and names the first that fails.
 */
#include "blockdev/codec.h"

#include "blockdev/crc32c.h"
#include "blockdev/sockaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>

static void why_set(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* ---- addresses ---- */

static bool ipv4_is_zeronet(const uint8_t *b)    { return b[0] == 0; }
static bool ipv4_is_multicast(const uint8_t *b)  { return (b[0] & 0xf0) == 0xe0; }
static bool ipv4_is_reserved(const uint8_t *b)   { return (b[0] & 0xf0) == 0xf0; }
static bool ipv4_is_broadcast(const uint8_t *b)
{
	return b[0] == 0xff && b[1] == 0xff && b[2] == 0xff && b[3] == 0xff;
}

static bool ipv6_is_multicast(const uint8_t *b) { return b[0] == 0xff; }
static bool ipv6_is_unspecified(const uint8_t *b)
{
	static const uint8_t zero[16];

	return memcmp(b, zero, 16) == 0;
}

/*
 * Why an address is not one a member can bind and others can send to, or
 * NULL when it is: for IPv4 not in 0/8, not multicast (224/4), not the
 * limited broadcast, not class E (240/4); for IPv6 neither multicast
 * (ff00::/8) nor unspecified (::).  Each test is named, and each rejects on
 * its own (the seed joined them with && and so accepted all of these).
 */
const char *bd_addr_why_not_unicast(const struct bd_addr *a)
{
	switch (a->family) {
	case FUSEFS_AF_IPV4:
		if (ipv4_is_zeronet(a->bytes))
			return "in the zero network 0.0.0.0/8";
		if (ipv4_is_multicast(a->bytes))
			return "multicast";
		if (ipv4_is_broadcast(a->bytes))
			return "the broadcast address";
		if (ipv4_is_reserved(a->bytes))
			return "reserved (240.0.0.0/4)";
		return NULL;
	case FUSEFS_AF_IPV6:
		if (ipv6_is_multicast(a->bytes))
			return "multicast";
		if (ipv6_is_unspecified(a->bytes))
			return "unspecified";
		return NULL;
	default:
		return "of an unknown family";
	}
}

bool bd_addr_is_unicast(const struct bd_addr *a)
{
	return bd_addr_why_not_unicast(a) == NULL;
}

bool bd_port_is_usable(uint16_t port)
{
	return port != 0 && port != UINT16_MAX;
}

bool bd_addr_equal(const struct bd_addr *a, const struct bd_addr *b)
{
	size_t n = a->family == FUSEFS_AF_IPV4 ? 4 : 16;

	return a->family == b->family && a->port == b->port && memcmp(a->bytes, b->bytes, n) == 0;
}

int bd_addr_parse(const char *host, uint16_t port, struct bd_addr *out)
{
	char tmp[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(host);

	memset(out, 0, sizeof(*out));
	out->port = port;
	if (inet_pton(AF_INET, host, out->bytes) == 1) {
		out->family = FUSEFS_AF_IPV4;
		return 0;
	}
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(tmp)) {
		memcpy(tmp, host + 1, len - 2);
		tmp[len - 2] = '\0';
		host = tmp;
	}
	if (inet_pton(AF_INET6, host, out->bytes) == 1) {
		out->family = FUSEFS_AF_IPV6;
		return 0;
	}
	return -EINVAL;
}

char *bd_addr_host(const struct bd_addr *a, char *buf, size_t len)
{
	if (a->family == FUSEFS_AF_IPV4)
		inet_ntop(AF_INET, a->bytes, buf, (socklen_t)len);
	else if (a->family == FUSEFS_AF_IPV6)
		inet_ntop(AF_INET6, a->bytes, buf, (socklen_t)len);
	else
		snprintf(buf, len, "none");
	return buf;
}

char *bd_addr_format(const struct bd_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	bd_addr_host(a, host, sizeof(host));
	if (a->family == FUSEFS_AF_IPV6)
		snprintf(buf, len, "[%s]:%u", host, a->port);
	else if (a->family == FUSEFS_AF_IPV4)
		snprintf(buf, len, "%s:%u", host, a->port);
	else
		snprintf(buf, len, "none");
	return buf;
}

int bd_addr_to_sockaddr(const struct bd_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == FUSEFS_AF_IPV4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, a->bytes, 4);
		*len = sizeof(*sin);
		return 0;
	}
	if (a->family == FUSEFS_AF_IPV6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		memcpy(&sin6->sin6_addr, a->bytes, 16);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EAFNOSUPPORT;
}

void bd_addr_from_sockaddr(const struct sockaddr_storage *ss, struct bd_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		a->family = FUSEFS_AF_IPV4;
		a->port = ntohs(sin->sin_port);
		memcpy(a->bytes, &sin->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		a->family = FUSEFS_AF_IPV6;
		a->port = ntohs(sin6->sin6_port);
		memcpy(a->bytes, &sin6->sin6_addr, 16);
	}
}

static void addr_encode(const struct bd_addr *a, struct fusefs_inet_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->family = cpu_to_le16(a->family);
	out->port = cpu_to_le16(a->port);
	memcpy(out->addr, a->bytes, a->family == FUSEFS_AF_IPV4 ? 4 : 16);
}

static void addr_decode(const struct fusefs_inet_addr *in, struct bd_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)le16_to_cpu(in->family);
	a->port = le16_to_cpu(in->port);
	memcpy(a->bytes, in->addr, 16);
}

/* ---- slots ---- */

int bd_slots_present_count(const struct bd_super *s)
{
	int count = 0;

	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		count += bd_slot_present(s, i);
	return count;
}

char *bd_slots_present_list(const struct bd_super *s, char *buf, size_t len)
{
	struct strbuf sb;

	strbuf_init(&sb, buf, len);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if (bd_slot_present(s, i))
			strbuf_addf(&sb, "%s%d", sb.len ? "," : "", i);
	return buf;
}

int bd_qconf_check(const struct bd_super *s, char *why, size_t whylen)
{
	char a1[BD_ADDR_STRLEN];
	int found = 0;

	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++) {
		const struct bd_addr *a = &s->slots[i];

		if (a->family == FUSEFS_AF_NONE)
			continue;
		if (a->family != FUSEFS_AF_IPV4 && a->family != FUSEFS_AF_IPV6) {
			why_set(why, whylen, "quorum slot %d has unknown address family %u", i,
				a->family);
			return -EINVAL;
		}
		if (!bd_addr_is_unicast(a)) {
			why_set(why, whylen, "quorum slot %d address %s is not unicast: it is %s", i,
				bd_addr_host(a, a1, sizeof(a1)), bd_addr_why_not_unicast(a));
			return -EINVAL;
		}
		if (!bd_port_is_usable(a->port)) {
			why_set(why, whylen, "quorum slot %d port %u is not usable (0 and 65535 are not)",
				i, a->port);
			return -EINVAL;
		}
		for (int j = i + 1; j < FUSEFS_QUORUM_MAX_SLOTS; j++) {
			if (s->slots[j].family != FUSEFS_AF_NONE && bd_addr_equal(a, &s->slots[j])) {
				why_set(why, whylen, "quorum slots %d and %d have the same address %s",
					i, j, bd_addr_format(a, a1, sizeof(a1)));
				return -EINVAL;
			}
		}
		found++;
	}
	if (found == 0) {
		why_set(why, whylen, "no quorum slots are configured");
		return -EINVAL;
	}
	return 0;
}

/* ---- block header ---- */

static uint32_t block_crc(const void *block)
{
	return bd_crc32c((const uint8_t *)block + sizeof(struct le32),
			 FUSEFS_BLOCK_SIZE - sizeof(struct le32));
}

void bd_block_seal(void *block, uint32_t magic, uint64_t fsid, uint64_t blkno, uint64_t seq)
{
	struct fusefs_block_header *hdr = block;

	hdr->magic = cpu_to_le32(magic);
	hdr->fsid = cpu_to_le64(fsid);
	hdr->seq = cpu_to_le64(seq);
	hdr->blkno = cpu_to_le64(blkno);
	hdr->crc = cpu_to_le32(block_crc(block));
}

/*
 * Check crc, magic, fsid (unless check_fsid is false) and blkno in that
 * order.  -EIO with the first failure described in why.
 */
static int block_check(const void *block, uint32_t magic, bool check_fsid, uint64_t fsid,
		       uint64_t blkno, char *why, size_t whylen)
{
	const struct fusefs_block_header *hdr = block;
	uint32_t crc = block_crc(block);

	if (le32_to_cpu(hdr->crc) != crc) {
		why_set(why, whylen, "block %" PRIu64 ": crc check failed: stored 0x%08x, computed 0x%08x",
			blkno, le32_to_cpu(hdr->crc), crc);
		return -EIO;
	}
	if (le32_to_cpu(hdr->magic) != magic) {
		why_set(why, whylen, "block %" PRIu64 ": magic check failed: 0x%08x, expected 0x%08x",
			blkno, le32_to_cpu(hdr->magic), magic);
		return -EIO;
	}
	if (check_fsid && le64_to_cpu(hdr->fsid) != fsid) {
		why_set(why, whylen,
			"block %" PRIu64 ": fsid check failed: %016" PRIx64 ", expected %016" PRIx64,
			blkno, le64_to_cpu(hdr->fsid), fsid);
		return -EIO;
	}
	if (le64_to_cpu(hdr->blkno) != blkno) {
		why_set(why, whylen, "block %" PRIu64 ": blkno check failed: block says %" PRIu64,
			blkno, le64_to_cpu(hdr->blkno));
		return -EIO;
	}
	return 0;
}

/* ---- super block ---- */

void bd_super_encode(const struct bd_super *s, struct fusefs_super_block *out)
{
	memset(out, 0, sizeof(*out));
	out->format_version = cpu_to_le64(s->format_version);
	out->flags = cpu_to_le64(s->flags);
	out->total_blocks = cpu_to_le64(s->total_blocks);
	out->quorum_blkno = cpu_to_le64(s->quorum_blkno);
	out->quorum_blocks = cpu_to_le64(s->quorum_blocks);
	out->store_blkno = cpu_to_le64(s->store_blkno);
	out->store_blocks = cpu_to_le64(s->store_blocks);
	out->mkfs_sec = cpu_to_le64(s->mkfs_sec);
	memcpy(out->cluster_secret, s->cluster_secret, sizeof(out->cluster_secret));
	out->qconf.version = cpu_to_le64(s->qconf_version);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		addr_encode(&s->slots[i], &out->qconf.slots[i]);
	bd_block_seal(out, FUSEFS_MAGIC_SUPER, s->fsid, FUSEFS_SUPER_BLKNO, s->seq);
}

/* The region layout this version writes; anything else is corrupt. */
static int super_layout_check(const struct bd_super *s, char *why, size_t whylen)
{
	if (s->quorum_blkno != FUSEFS_QUORUM_BLKNO || s->quorum_blocks != FUSEFS_QUORUM_BLOCKS) {
		why_set(why, whylen, "super block: layout check failed: quorum region %" PRIu64
			"+%" PRIu64 ", expected %d+%d", s->quorum_blkno, s->quorum_blocks,
			FUSEFS_QUORUM_BLKNO, FUSEFS_QUORUM_BLOCKS);
		return -EIO;
	}
	if (s->store_blkno != FUSEFS_STORE_BLKNO || s->store_blocks < FUSEFS_STORE_MIN_BLOCKS ||
	    s->store_blkno + s->store_blocks != s->total_blocks) {
		why_set(why, whylen, "super block: layout check failed: store region %" PRIu64
			"+%" PRIu64 " does not fit %" PRIu64 " total blocks", s->store_blkno,
			s->store_blocks, s->total_blocks);
		return -EIO;
	}
	if (s->flags & ~FUSEFS_SUPER_FLAGS_KNOWN) {
		why_set(why, whylen, "super block: flags check failed: unknown flags 0x%" PRIx64,
			s->flags & ~FUSEFS_SUPER_FLAGS_KNOWN);
		return -EIO;
	}
	return 0;
}

int bd_super_decode(const struct fusefs_super_block *in, struct bd_super *out, char *why,
		    size_t whylen)
{
	char qwhy[160];
	int ret;

	ret = block_check(in, FUSEFS_MAGIC_SUPER, false, 0, FUSEFS_SUPER_BLKNO, why, whylen);
	if (ret < 0)
		return ret;

	memset(out, 0, sizeof(*out));
	out->fsid = le64_to_cpu(in->hdr.fsid);
	out->seq = le64_to_cpu(in->hdr.seq);
	out->format_version = le64_to_cpu(in->format_version);
	if (out->format_version != FUSEFS_FORMAT_VERSION) {
		why_set(why, whylen, "super block: format version check failed: the device has "
			"format version %" PRIu64 ", this program reads version %d%s",
			out->format_version, FUSEFS_FORMAT_VERSION,
			out->format_version < FUSEFS_FORMAT_VERSION ?
			" (made by an older fusefs: run fusefs-mkfs --force on it to make a new "
			"filesystem, which erases everything on it)" : " (made by a newer fusefs)");
		return -EIO;
	}
	out->flags = le64_to_cpu(in->flags);
	out->total_blocks = le64_to_cpu(in->total_blocks);
	out->quorum_blkno = le64_to_cpu(in->quorum_blkno);
	out->quorum_blocks = le64_to_cpu(in->quorum_blocks);
	out->store_blkno = le64_to_cpu(in->store_blkno);
	out->store_blocks = le64_to_cpu(in->store_blocks);
	out->mkfs_sec = le64_to_cpu(in->mkfs_sec);
	memcpy(out->cluster_secret, in->cluster_secret, sizeof(out->cluster_secret));
	out->qconf_version = le64_to_cpu(in->qconf.version);
	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		addr_decode(&in->qconf.slots[i], &out->slots[i]);

	ret = super_layout_check(out, why, whylen);
	if (ret < 0)
		return ret;
	ret = bd_qconf_check(out, qwhy, sizeof(qwhy));
	if (ret < 0) {
		why_set(why, whylen, "super block: quorum config check failed: %s", qwhy);
		return -EIO;
	}
	return 0;
}

/* ---- quorum blocks ---- */

const char *bd_qevent_name(int ev)
{
	static const char *const names[FUSEFS_QEV_NR] = {
		[FUSEFS_QEV_BEGIN] = "begin", [FUSEFS_QEV_TERM] = "term",
		[FUSEFS_QEV_ELECT] = "elect", [FUSEFS_QEV_FENCE] = "fence",
		[FUSEFS_QEV_STOP] = "stop",   [FUSEFS_QEV_END] = "end",
	};

	return ev >= 0 && ev < FUSEFS_QEV_NR ? names[ev] : "invalid";
}

void bd_qblock_set_event(struct bd_qblock *qb, int ev, uint64_t rid, uint64_t term,
			 uint64_t ts_sec, uint32_t ts_nsec)
{
	struct bd_qevent *e = &qb->ev[ev];

	qb->write_nr++;
	e->write_nr = qb->write_nr;
	e->rid = rid;
	e->term = term;
	e->ts_sec = ts_sec;
	e->ts_nsec = ts_nsec;
}

uint64_t bd_qblock_greatest_term(const struct bd_qblock *qb)
{
	uint64_t term = qb->vote_term;

	for (int e = 0; e < FUSEFS_QEV_NR; e++)
		if (qb->ev[e].rid != 0)
			term = MAX(term, qb->ev[e].term);
	return term;
}

void bd_qblock_encode(const struct bd_qblock *qb, uint64_t fsid, uint64_t blkno,
		      struct fusefs_quorum_block *out)
{
	memset(out, 0, sizeof(*out));
	out->write_nr = cpu_to_le64(qb->write_nr);
	for (int e = 0; e < FUSEFS_QEV_NR; e++) {
		out->events[e].write_nr = cpu_to_le64(qb->ev[e].write_nr);
		out->events[e].rid = cpu_to_le64(qb->ev[e].rid);
		out->events[e].term = cpu_to_le64(qb->ev[e].term);
		out->events[e].ts_sec = cpu_to_le64(qb->ev[e].ts_sec);
		out->events[e].ts_nsec = cpu_to_le32(qb->ev[e].ts_nsec);
	}
	out->vote_term = cpu_to_le64(qb->vote_term);
	out->vote_slot = bd_slot_nr_valid(qb->vote_slot) ? (uint8_t)qb->vote_slot : FUSEFS_NO_VOTE;
	out->hb_timeout_ms = cpu_to_le32(qb->hb_timeout_ms);
	out->holder_rid = cpu_to_le64(qb->holder_rid);
	out->holder_pid = cpu_to_le64(qb->holder_pid);
	out->holder_start_ticks = cpu_to_le64(qb->holder_start_ticks);
	memcpy(out->holder_boot_id, qb->holder_boot_id, sizeof(out->holder_boot_id));
	memcpy(out->holder_host, qb->holder_host, sizeof(out->holder_host));
	out->holder_host[sizeof(out->holder_host) - 1] = '\0';
	out->prev_holder_rid = cpu_to_le64(qb->prev_holder_rid);
	out->holder_pidns = cpu_to_le64(qb->holder_pidns);
	out->seq_hwm = cpu_to_le64(qb->seq_hwm);
	bd_block_seal(out, FUSEFS_MAGIC_QUORUM, fsid, blkno, qb->seq);
}

/* The first non-zero byte of n bytes at p, or -1. */
static long first_nonzero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return (long)i;
	return -1;
}

/*
 * Canonical form (format.h promises it): every padding byte zero, and the
 * vote slot a slot number or FUSEFS_NO_VOTE.  A block whose crc verifies
 * but that breaks these was not written by us: refused like a bad crc.
 */
static int qblock_canonical(const struct fusefs_quorum_block *in, uint64_t blkno, char *why,
			    size_t whylen)
{
	struct {
		const char *name;
		const void *p;
		size_t n;
	} pads[FUSEFS_QEV_NR + 2];
	int count = 0;

	for (int e = 0; e < FUSEFS_QEV_NR; e++)
		pads[count++] = (typeof(pads[0])){ "event pad", in->events[e].pad,
						   sizeof(in->events[e].pad) };
	pads[count++] = (typeof(pads[0])){ "pad1", in->pad1, sizeof(in->pad1) };
	pads[count++] = (typeof(pads[0])){ "pad2", in->pad2, sizeof(in->pad2) };
	for (int i = 0; i < count; i++) {
		long at = first_nonzero(pads[i].p, pads[i].n);

		if (at >= 0) {
			why_set(why, whylen, "block %" PRIu64 ": padding check failed: byte %zu (%s) "
				"is 0x%02x, expected 0", blkno,
				(size_t)((const uint8_t *)pads[i].p - (const uint8_t *)in) + (size_t)at,
				pads[i].name, ((const uint8_t *)pads[i].p)[at]);
			return -EIO;
		}
	}
	if (!bd_slot_nr_valid(in->vote_slot) && in->vote_slot != FUSEFS_NO_VOTE) {
		why_set(why, whylen, "block %" PRIu64 ": vote check failed: slot %u is neither a slot "
			"nor none", blkno, in->vote_slot);
		return -EIO;
	}
	return 0;
}

int bd_qblock_decode(const struct fusefs_quorum_block *in, uint64_t fsid, uint64_t blkno,
		     struct bd_qblock *out, char *why, size_t whylen)
{
	int ret;

	ret = block_check(in, FUSEFS_MAGIC_QUORUM, true, fsid, blkno, why, whylen);
	if (ret < 0)
		return ret;
	ret = qblock_canonical(in, blkno, why, whylen);
	if (ret < 0)
		return ret;

	memset(out, 0, sizeof(*out));
	out->seq = le64_to_cpu(in->hdr.seq);
	out->write_nr = le64_to_cpu(in->write_nr);
	for (int e = 0; e < FUSEFS_QEV_NR; e++) {
		out->ev[e].write_nr = le64_to_cpu(in->events[e].write_nr);
		out->ev[e].rid = le64_to_cpu(in->events[e].rid);
		out->ev[e].term = le64_to_cpu(in->events[e].term);
		out->ev[e].ts_sec = le64_to_cpu(in->events[e].ts_sec);
		out->ev[e].ts_nsec = le32_to_cpu(in->events[e].ts_nsec);
	}
	out->vote_term = le64_to_cpu(in->vote_term);
	out->vote_slot = bd_slot_nr_valid(in->vote_slot) ? in->vote_slot : -1;
	out->hb_timeout_ms = le32_to_cpu(in->hb_timeout_ms);
	out->holder_rid = le64_to_cpu(in->holder_rid);
	out->holder_pid = le64_to_cpu(in->holder_pid);
	out->holder_start_ticks = le64_to_cpu(in->holder_start_ticks);
	memcpy(out->holder_boot_id, in->holder_boot_id, sizeof(out->holder_boot_id));
	memcpy(out->holder_host, in->holder_host, sizeof(out->holder_host));
	out->holder_host[sizeof(out->holder_host) - 1] = '\0';
	out->prev_holder_rid = le64_to_cpu(in->prev_holder_rid);
	out->holder_pidns = le64_to_cpu(in->holder_pidns);
	out->seq_hwm = le64_to_cpu(in->seq_hwm);
	return 0;
}

uint16_t bd_present_mask(const struct bd_super *s)
{
	uint16_t mask = 0;

	for (int i = 0; i < FUSEFS_QUORUM_MAX_SLOTS; i++)
		if (bd_slot_present(s, i))
			mask |= (uint16_t)(1u << i);
	return mask;
}

/* ---- store header ---- */

static bool mem_is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static bool layout_equal(const struct bd_store_layout *a, const struct bd_store_layout *b)
{
	return a->log_blkno == b->log_blkno && a->log_blocks == b->log_blocks &&
	       a->db_blkno == b->db_blkno && a->db_blocks == b->db_blocks &&
	       a->page_size == b->page_size;
}

void bd_store_layout(const struct bd_super *s, struct bd_store_layout *out)
{
	uint64_t log_blocks = bd_store_log_blocks(s->store_blocks);

	out->log_blkno = s->store_blkno + 1;
	out->log_blocks = log_blocks;
	out->db_blkno = out->log_blkno + log_blocks;
	out->db_blocks = s->store_blocks - 1 - log_blocks;
	out->page_size = FUSEFS_BLOCK_SIZE;
}

void bd_store_header_encode(const struct bd_super *s, const struct bd_store_layout *l,
			    struct fusefs_store_header *out)
{
	memset(out, 0, sizeof(*out));
	out->log_blkno = cpu_to_le64(l->log_blkno);
	out->log_blocks = cpu_to_le64(l->log_blocks);
	out->db_blkno = cpu_to_le64(l->db_blkno);
	out->db_blocks = cpu_to_le64(l->db_blocks);
	out->page_size = cpu_to_le32(l->page_size);
	bd_block_seal(out, FUSEFS_MAGIC_STORE, s->fsid, FUSEFS_STORE_HDR_BLKNO, 1);
}

int bd_store_header_decode(const struct fusefs_store_header *in, const struct bd_super *s,
			   struct bd_store_layout *out, char *why, size_t whylen)
{
	struct bd_store_layout want;
	int ret;

	ret = block_check(in, FUSEFS_MAGIC_STORE, true, s->fsid, FUSEFS_STORE_HDR_BLKNO, why, whylen);
	if (ret < 0)
		return ret;
	out->log_blkno = le64_to_cpu(in->log_blkno);
	out->log_blocks = le64_to_cpu(in->log_blocks);
	out->db_blkno = le64_to_cpu(in->db_blkno);
	out->db_blocks = le64_to_cpu(in->db_blocks);
	out->page_size = le32_to_cpu(in->page_size);
	bd_store_layout(s, &want);
	if (!layout_equal(out, &want) || le32_to_cpu(in->reserved) != 0 ||
	    !mem_is_zero(in->pad, sizeof(in->pad))) {
		why_set(why, whylen, "store header (block %d): layout check failed: log %" PRIu64
			"+%" PRIu64 " db %" PRIu64 "+%" PRIu64 " page %u, expected log %" PRIu64
			"+%" PRIu64 " db %" PRIu64 "+%" PRIu64 " page %u", FUSEFS_STORE_HDR_BLKNO,
			out->log_blkno, out->log_blocks, out->db_blkno, out->db_blocks, out->page_size,
			want.log_blkno, want.log_blocks, want.db_blkno, want.db_blocks, want.page_size);
		return -EIO;
	}
	return 0;
}
