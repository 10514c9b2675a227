/*
 * format.h - the fusefs on-disk format.  This header is the specification:
 * every structure is fixed-width little-endian with explicit zeroed padding,
 * and the compiler checks every size and every offset readers depend on.
 *
 * Device layout, in 4096-byte blocks:
 *
 *   blkno 0..15    unused (left for partition tables and boot loaders)
 *   blkno 16       super block
 *   blkno 17..31   quorum blocks, one per quorum slot (slot N at 17 + N)
 *   blkno 32       the store header (struct fusefs_store_header)
 *   blkno 33..     the store's log region (SQLite's write-ahead log), log_blocks
 *   then ..end     the store's database region, db_blocks
 *
 * The store regions are owned by server/ (docs/store.md); blockdev/ only
 * lays them out.
 *
 * Every block begins with struct fusefs_block_header.  A block is valid
 * when, in this order:
 *   1. crc   == crc32c of bytes [4, 4096), the whole block after the crc;
 *   2. magic == the magic of the block type that was expected;
 *   3. fsid  == the filesystem's fsid (the super block defines it);
 *   4. blkno == the block number it was read from;
 *   5. (super block only) format_version == FUSEFS_FORMAT_VERSION.
 * Readers check them in that order and report the first that fails.
 * Nothing is ever written on the strength of a block that failed.
 */
#ifndef FUSEFS_FORMAT_H
#define FUSEFS_FORMAT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

#define FUSEFS_BLOCK_SHIFT 12
#define FUSEFS_BLOCK_SIZE (1u << FUSEFS_BLOCK_SHIFT)

/* 2: the store header and its log and database regions */
#define FUSEFS_FORMAT_VERSION 2

#define FUSEFS_SUPER_BLKNO 16
#define FUSEFS_QUORUM_BLKNO 17
#define FUSEFS_QUORUM_MAX_SLOTS 15
#define FUSEFS_QUORUM_BLOCKS FUSEFS_QUORUM_MAX_SLOTS
#define FUSEFS_STORE_BLKNO (FUSEFS_QUORUM_BLKNO + FUSEFS_QUORUM_BLOCKS)
/* The store needs room for its database and journal: 16 MiB at least. */
#define FUSEFS_STORE_MIN_BLOCKS 4096
#define FUSEFS_MIN_TOTAL_BLOCKS (FUSEFS_STORE_BLKNO + FUSEFS_STORE_MIN_BLOCKS)

/* The only comparison against the slot count. */
static inline bool bd_slot_nr_valid(long nr)
{
	return nr >= 0 && nr < FUSEFS_QUORUM_MAX_SLOTS;
}

/* Block magics: ASCII in the first bytes when dumped little-endian. */
#define FUSEFS_MAGIC_SUPER 0x52505553u  /* "SUPR" */
#define FUSEFS_MAGIC_QUORUM 0x4d524f51u /* "QORM" */
#define FUSEFS_MAGIC_STORE 0x524f5453u  /* "STOR" */

#define FUSEFS_CLUSTER_SECRET_BYTES 32

/* Super block flags. */
#define FUSEFS_SUPER_FLAG_AUTH ((uint64_t)1 << 0) /* messages and frames carry HMACs */
#define FUSEFS_SUPER_FLAGS_KNOWN FUSEFS_SUPER_FLAG_AUTH

struct fusefs_block_header {
	struct le32 crc;
	struct le32 magic;
	struct le64 fsid;
	struct le64 seq;   /* incremented on every write of this block */
	struct le64 blkno;
};

/* Address families as stored; not the host's AF_ values. */
enum {
	FUSEFS_AF_NONE = 0, /* slot not configured */
	FUSEFS_AF_IPV4 = 1,
	FUSEFS_AF_IPV6 = 2,
};

struct fusefs_inet_addr {
	struct le16 family;
	struct le16 port;  /* host order value, stored little-endian */
	uint8_t pad[4];
	uint8_t addr[16];  /* network byte order; IPv4 uses the first 4 */
};

struct fusefs_quorum_config {
	struct le64 version; /* bumped when the slot list changes */
	struct fusefs_inet_addr slots[FUSEFS_QUORUM_MAX_SLOTS];
};

struct fusefs_super_block {
	struct fusefs_block_header hdr;
	struct le64 format_version;
	struct le64 flags;
	struct le64 total_blocks;
	struct le64 quorum_blkno;
	struct le64 quorum_blocks;
	struct le64 store_blkno;
	struct le64 store_blocks;
	struct le64 mkfs_sec;
	uint8_t cluster_secret[FUSEFS_CLUSTER_SECRET_BYTES];
	struct fusefs_quorum_config qconf;
	uint8_t pad[3600];
};

/*
 * Quorum block events.  Each records which mount (rid) did it, in which
 * term, when (wall clock, for people), and the block's write_nr at the
 * time, which orders events within the block.
 */
enum fusefs_quorum_event_nr {
	FUSEFS_QEV_BEGIN = 0, /* a mount started using the slot */
	FUSEFS_QEV_TERM,      /* the greatest term this slot has used */
	FUSEFS_QEV_ELECT,     /* elected leader; a server may start */
	FUSEFS_QEV_FENCE,     /* that server fenced every earlier leader */
	FUSEFS_QEV_STOP,      /* that server stopped */
	FUSEFS_QEV_END,       /* the mount stopped using the slot cleanly */
	FUSEFS_QEV_NR,
};

struct fusefs_quorum_event {
	struct le64 write_nr;
	struct le64 rid;
	struct le64 term;
	struct le64 ts_sec;
	struct le32 ts_nsec;
	uint8_t pad[4];
};

#define FUSEFS_BOOT_ID_BYTES 16
#define FUSEFS_HOSTNAME_BYTES 64
#define FUSEFS_NO_VOTE 0xff

struct fusefs_quorum_block {
	struct fusefs_block_header hdr;
	struct le64 write_nr;
	struct fusefs_quorum_event events[FUSEFS_QEV_NR];
	/* The vote: in vote_term this slot voted for slot vote_slot. */
	struct le64 vote_term;
	uint8_t vote_slot;     /* FUSEFS_NO_VOTE if none */
	uint8_t pad1[3];
	/*
	 * The greatest heartbeat timeout this slot may have promised in its
	 * heartbeat acknowledgements: after a crash it refuses votes that long.
	 */
	struct le32 hb_timeout_ms;
	/* The mount holding the slot (rid, process, host), for the local fencer. */
	struct le64 holder_rid;
	struct le64 holder_pid;
	struct le64 holder_start_ticks; /* /proc/PID/stat starttime */
	uint8_t holder_boot_id[FUSEFS_BOOT_ID_BYTES];
	char holder_host[FUSEFS_HOSTNAME_BYTES];
	/* The mount before the holder, when the holder saw it was gone; else 0. */
	struct le64 prev_holder_rid;
	/* The holder's pid namespace (inode of /proc/self/ns/pid). */
	struct le64 holder_pidns;
	/*
	 * Quorum message sequence numbers below this are used up: each mount
	 * starts here and reserves the next range with its BEGIN, so a
	 * restarted member's numbers rise without trusting the wall clock.
	 */
	struct le64 seq_hwm;
	uint8_t pad2[3672];
};

/*
 * The store header: where the store's two regions are.  Written once by
 * mkfs; read (and verified like every block) when a store opens.
 */
struct fusefs_store_header {
	struct fusefs_block_header hdr;
	struct le64 log_blkno;   /* the write-ahead log region */
	struct le64 log_blocks;
	struct le64 db_blkno;    /* the database region */
	struct le64 db_blocks;
	struct le32 page_size;   /* the database page size in bytes */
	struct le32 reserved;
	uint8_t pad[4024];
};

#define FUSEFS_STORE_HDR_BLKNO FUSEFS_STORE_BLKNO
#define FUSEFS_STORE_LOG_MIN_BLOCKS 1024   /* 4 MiB */
#define FUSEFS_STORE_LOG_MAX_BLOCKS 16384  /* 64 MiB */

/* The log region's size for a store of store_blocks: an eighth, within bounds. */
static inline uint64_t bd_store_log_blocks(uint64_t store_blocks)
{
	uint64_t n = store_blocks / 8;

	return n < FUSEFS_STORE_LOG_MIN_BLOCKS ? FUSEFS_STORE_LOG_MIN_BLOCKS :
	       n > FUSEFS_STORE_LOG_MAX_BLOCKS ? FUSEFS_STORE_LOG_MAX_BLOCKS : n;
}

/* Every size and offset the format promises, checked. */
static_assert(sizeof(struct fusefs_block_header) == 32, "block header");
static_assert(offsetof(struct fusefs_block_header, crc) == 0, "crc first");
static_assert(sizeof(struct fusefs_inet_addr) == 24, "inet addr");
static_assert(sizeof(struct fusefs_quorum_config) == 8 + 24 * FUSEFS_QUORUM_MAX_SLOTS, "qconf");
static_assert(offsetof(struct fusefs_super_block, cluster_secret) == 96, "secret");
static_assert(offsetof(struct fusefs_super_block, qconf) == 128, "qconf offset");
static_assert(sizeof(struct fusefs_super_block) == FUSEFS_BLOCK_SIZE, "super size");
static_assert(sizeof(struct fusefs_quorum_event) == 40, "event");
static_assert(offsetof(struct fusefs_quorum_block, events) == 40, "events offset");
static_assert(offsetof(struct fusefs_quorum_block, vote_term) == 280, "vote offset");
static_assert(offsetof(struct fusefs_quorum_block, hb_timeout_ms) == 292, "hb offset");
static_assert(offsetof(struct fusefs_quorum_block, holder_rid) == 296, "holder offset");
static_assert(sizeof(struct fusefs_quorum_block) == FUSEFS_BLOCK_SIZE, "quorum block size");
static_assert(FUSEFS_QUORUM_MAX_SLOTS < FUSEFS_NO_VOTE, "vote slot sentinel");
static_assert(FUSEFS_QUORUM_BLKNO + FUSEFS_QUORUM_BLOCKS == FUSEFS_STORE_BLKNO, "layout");
static_assert(sizeof(struct fusefs_store_header) == FUSEFS_BLOCK_SIZE, "store header size");
static_assert(offsetof(struct fusefs_store_header, log_blkno) == 32, "store header offset");
static_assert(FUSEFS_STORE_MIN_BLOCKS > 1 + FUSEFS_STORE_LOG_MIN_BLOCKS + 1024, "store room");

/* ---- decoded (host order) views; encode/decode live in blockdev.h ---- */

struct bd_addr {
	uint8_t family;     /* FUSEFS_AF_* */
	uint16_t port;
	uint8_t bytes[16];  /* network order; IPv4 in the first 4 */
};

struct bd_super {
	uint64_t fsid;
	uint64_t seq;
	uint64_t format_version;
	uint64_t flags;
	uint64_t total_blocks;
	uint64_t quorum_blkno;
	uint64_t quorum_blocks;
	uint64_t store_blkno;
	uint64_t store_blocks;
	uint64_t mkfs_sec;
	uint8_t cluster_secret[FUSEFS_CLUSTER_SECRET_BYTES];
	uint64_t qconf_version;
	struct bd_addr slots[FUSEFS_QUORUM_MAX_SLOTS];
};

static inline bool bd_slot_present(const struct bd_super *s, long nr)
{
	return bd_slot_nr_valid(nr) && s->slots[nr].family != FUSEFS_AF_NONE;
}

int bd_slots_present_count(const struct bd_super *s);
/* "0,1,2" into buf. */
char *bd_slots_present_list(const struct bd_super *s, char *buf, size_t len);

struct bd_qevent {
	uint64_t write_nr;
	uint64_t rid;
	uint64_t term;
	uint64_t ts_sec;
	uint32_t ts_nsec;
};

struct bd_qblock {
	uint64_t seq;
	uint64_t write_nr;
	struct bd_qevent ev[FUSEFS_QEV_NR];
	uint64_t vote_term;
	int vote_slot;     /* -1 if none */
	uint32_t hb_timeout_ms;
	uint64_t holder_rid;
	uint64_t holder_pid;
	uint64_t holder_start_ticks;
	uint8_t holder_boot_id[FUSEFS_BOOT_ID_BYTES];
	char holder_host[FUSEFS_HOSTNAME_BYTES];
	uint64_t prev_holder_rid;
	uint64_t holder_pidns;
	uint64_t seq_hwm;
};

/* Where the store's regions are (absolute block numbers). */
struct bd_store_layout {
	uint64_t log_blkno;
	uint64_t log_blocks;
	uint64_t db_blkno;
	uint64_t db_blocks;
	uint32_t page_size;
};

const char *bd_qevent_name(int ev);
/* Record an event: bumps write_nr and stamps the event with it. */
void bd_qblock_set_event(struct bd_qblock *qb, int ev, uint64_t rid, uint64_t term,
			 uint64_t ts_sec, uint32_t ts_nsec);
/* The greatest term any event of the block (or its vote) records. */
uint64_t bd_qblock_greatest_term(const struct bd_qblock *qb);

static inline uint64_t bd_quorum_blkno(int slot_nr)
{
	return FUSEFS_QUORUM_BLKNO + (uint64_t)slot_nr;
}

#endif
