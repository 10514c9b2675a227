/*
 * glue.h - the one place where the pure election meets its quorum block:
 * used by the quorum agent (fusefs-mount) and by the simulator alike, so
 * the simulator runs exactly the daemon's block handling.
 *
 *  - At start, the blocks read from the device become the QIN_START input
 *    (our term, vote, events and promise; the greatest term anywhere; is a
 *    leader recorded; did our slot's last mount end cleanly) and the base
 *    of our message sequence numbers (the block's seq_hwm).
 *  - At every QACT_PERSIST, the block read back from the device becomes
 *    the block to write: the BEGIN rid is checked first (another mount
 *    that began on our slot since is an error, never overwritten), then
 *    the asked-for events are stamped with our rid and the wall-clock time
 *    the caller passes in, the vote and the promised heartbeat timeout are
 *    set, and a BEGIN also records the holder (rid, process, host) and
 *    reserves our first range of message sequence numbers by raising
 *    seq_hwm; the driver asks for more before they run out
 *    (quorum_glue_seq_low, then a write the election makes for QIN_RESERVE).
 *  - Repair (docs/quorum.md, "Repair"): the glue keeps a copy of our block
 *    as last written; a block that reads back bad is rebuilt from it, and a
 *    check that finds the block as we left it writes nothing.  At a mount
 *    over our own unreadable block, quorum_glue_rebuild() makes a new one
 *    from the other slots' blocks, such that we cannot vote twice in a term.
 *
 * Pure: no I/O, no clocks, no allocation.  The caller reads and writes the
 * block and passes the time in.
 */
#ifndef FUSEFS_QUORUM_GLUE_H
#define FUSEFS_QUORUM_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockdev/format.h"
#include "quorum/election.h"
#include "quorum/holder.h"

struct quorum_glue {
	int slot;
	uint64_t rid;
	struct quorum_holder self;  /* recorded as the holder on BEGIN */
	/* from the start */
	uint64_t begin_rid_seen;    /* our block's BEGIN rid when read at start */
	uint64_t prev_holder_rid;   /* the slot's last mount, when known to be gone */
	bool prev_holder_elsewhere; /* the last mount ended uncleanly on another host */
	uint64_t seq_base;          /* our message sequence numbers start above this */
	uint64_t seq_reserved;      /* durable: our numbers may go up to this (0 before BEGIN) */
	uint64_t seq_wanted;        /* the next write raises seq_hwm to this */
	uint64_t seq_range;         /* numbers per reservation: QUORUM_SEQ_RANGE (tests: less) */
	/* our block as we last wrote it, or read it at start */
	bool have_mem;
	struct bd_qblock mem;
};

/* What quorum_glue_persist() made of the block read back. */
enum quorum_glue_result {
	QGLUE_WRITE,     /* write the block */
	QGLUE_REPAIR,    /* ours failed verification: write the one rebuilt from memory */
	QGLUE_UNCHANGED, /* a check found the block as we left it: nothing to write */
};

/* Set up for our slot, rid and identity; nothing is read yet. */
void quorum_glue_init(struct quorum_glue *g, int slot, uint64_t rid,
		      const struct quorum_holder *self);

/*
 * From the blocks read at start (blocks[i] verified where readable has bit
 * i): fill in, the QIN_START input, and the glue's seq_base,
 * begin_rid_seen and prev_holder_rid.  Our own block must be readable:
 * -EIO otherwise (nothing is filled in).
 */
int quorum_glue_start(struct quorum_glue *g, const struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS],
		      uint16_t readable, struct quorum_input *in);

/*
 * Apply the persist action act to qb, our block as just read back from the
 * device (readable: it passed verification; if not, qb is replaced by our
 * copy in memory first), stamping events with the wall-clock time
 * ts_sec.ts_nsec; qb is then the block to write.  Returns a
 * quorum_glue_result, or -EEXIST when the block's BEGIN rid says another
 * mount has begun on our slot (qb is then unchanged, so the caller can name
 * that rid), or -EIO when the block is unreadable and we hold no copy.
 */
int quorum_glue_persist(const struct quorum_glue *g, const struct quorum_action *act,
			uint64_t ts_sec, uint32_t ts_nsec, bool readable, struct bd_qblock *qb);
/* qb is durable on the device: it is our copy from now on. */
void quorum_glue_written(struct quorum_glue *g, const struct bd_qblock *qb);
/*
 * tx_seq is the last sequence number we used: true when the reservation is
 * half used up (a reservation more is then wanted: write the block soon).
 */
bool quorum_glue_seq_low(struct quorum_glue *g, uint64_t tx_seq);

/*
 * Our own block failed verification at a mount: the block to write in its
 * place, from the other present slots' blocks (every one of them must be
 * readable: -ENODATA otherwise, as the argument needs them).  The term is
 * the greatest term G they hold, with our vote in G spent (a vote for
 * ourselves, so we vote for nobody in G); the promise is max_promise_ms,
 * the longest any mount may have promised, with BEGIN and no END, so the
 * mount keeps it; seq_hwm is above every readable block's and above
 * wall_ns, since the reservation it held is lost.  The rest is empty.
 */
int quorum_glue_rebuild(const struct quorum_glue *g,
			const struct bd_qblock blocks[FUSEFS_QUORUM_MAX_SLOTS], uint16_t readable,
			uint16_t present, uint32_t max_promise_ms, uint64_t wall_ns,
			struct bd_qblock *out);
/* The BEGIN rid our block must show before a persist of act. */
uint64_t quorum_glue_expected_begin_rid(const struct quorum_glue *g,
					const struct quorum_action *act);

/* The slot's last mount ended cleanly (END written after its BEGIN). */
bool quorum_block_ended(const struct bd_qblock *qb);
/* Did the block's holder run on this host (same boot id and pid namespace)? */
bool quorum_holder_same_host(const struct bd_qblock *qb, const struct quorum_holder *self);

#endif
