/*
 * hist.h - latency histograms: counts in buckets a quarter of a power of two
 * wide (so a quantile is within 19% of the truth), safe to add to from one
 * thread while any other reads (relaxed atomics: they are statistics).
 */
#ifndef FUSEFS_COMMON_HIST_H
#define FUSEFS_COMMON_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define HIST_BUCKETS (44 * 4) /* up to 2^44 ns, about 4.9 hours */

struct hist {
	_Atomic uint32_t b[HIST_BUCKETS];
};

/* Count one duration (negative counts as 0). */
void hist_add(struct hist *h, int64_t ns);
/* How many durations were counted. */
uint64_t hist_count(const struct hist *h);
/* The q-quantile (0 < q <= 1) in ns: the middle of its bucket; 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
