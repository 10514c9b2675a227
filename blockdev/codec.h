/*
 * codec.h - pure encode, decode and verify of the on-disk blocks
 * (format.h), and the slot address helpers.  No I/O, no clocks.
 *
 * Verification failures return -EIO and, given a reason buffer, fill it
 * with one line naming the block and the check that failed, with expected
 * and actual values.
 */
#ifndef FUSEFS_CODEC_H
#define FUSEFS_CODEC_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "blockdev/format.h"

/* ---- quorum slot addresses ---- */

bool bd_addr_is_unicast(const struct bd_addr *a);
/* Why a is not unicast ("multicast", ...), or NULL when it is. */
const char *bd_addr_why_not_unicast(const struct bd_addr *a);
bool bd_port_is_usable(uint16_t port);
bool bd_addr_equal(const struct bd_addr *a, const struct bd_addr *b);
/* Parse "1.2.3.4" or "::1" (brackets allowed) plus a port. */
int bd_addr_parse(const char *host, uint16_t port, struct bd_addr *out);
/* "1.2.3.4:7000" or "[::1]:7000"; returns buf. */
char *bd_addr_format(const struct bd_addr *a, char *buf, size_t len);
/* Host-only text, without port. */
char *bd_addr_host(const struct bd_addr *a, char *buf, size_t len);
#define BD_ADDR_STRLEN 64

/*
 * Check the slot configuration: at least one slot, every address unicast,
 * every port usable, no two slots with the same address and port.
 */
int bd_qconf_check(const struct bd_super *s, char *why, size_t whylen);
/* The mask of a super block's present slots. */
uint16_t bd_present_mask(const struct bd_super *s);

/* ---- blocks ---- */

/* Fill the header and compute the crc; the block is ready to write. */
void bd_block_seal(void *block, uint32_t magic, uint64_t fsid, uint64_t blkno, uint64_t seq);

void bd_super_encode(const struct bd_super *s, struct fusefs_super_block *out);
/* Verify (crc, magic, blkno, version) and decode; then check the layout. */
int bd_super_decode(const struct fusefs_super_block *in, struct bd_super *out,
		    char *why, size_t whylen);

void bd_qblock_encode(const struct bd_qblock *qb, uint64_t fsid, uint64_t blkno,
		      struct fusefs_quorum_block *out);
int bd_qblock_decode(const struct fusefs_quorum_block *in, uint64_t fsid, uint64_t blkno,
		     struct bd_qblock *out, char *why, size_t whylen);

/* ---- the store header ---- */

/* The layout this version gives a store of the super block's size. */
void bd_store_layout(const struct bd_super *s, struct bd_store_layout *out);
void bd_store_header_encode(const struct bd_super *s, const struct bd_store_layout *l,
			    struct fusefs_store_header *out);
/* Verify (crc, magic, fsid, blkno, then the layout this version gives) and decode. */
int bd_store_header_decode(const struct fusefs_store_header *in, const struct bd_super *s,
			   struct bd_store_layout *out, char *why, size_t whylen);

#endif
