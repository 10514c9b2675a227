/*
 * hist.c - latency histograms (see hist.h).
 */
#include "common/hist.h"

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, idx;

	if (v < 4)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	idx = msb * 4 + (unsigned)((v >> (msb - 2)) & 3);
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The smallest value of bucket i, and the first of the next. */
static uint64_t bucket_lo(unsigned i)
{
	unsigned msb = i / 4;

	if (i < 8) /* 0..3 exact; 4..7 are never used */
		return i < 4 ? i : 4;
	return (1ull << msb) + (uint64_t)(i % 4) * (1ull << (msb - 2));
}

void hist_add(struct hist *h, int64_t ns)
{
	atomic_fetch_add_explicit(&h->b[bucket_of(ns > 0 ? (uint64_t)ns : 0)], 1,
				  memory_order_relaxed);
}

uint64_t hist_count(const struct hist *h)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		n += atomic_load_explicit(&h->b[i], memory_order_relaxed);
	return n;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t n = hist_count(h), want, seen = 0;

	if (n == 0)
		return 0;
	want = (uint64_t)(q * (double)n + 0.999999);
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += atomic_load_explicit(&h->b[i], memory_order_relaxed);
		if (seen >= want)
			return i + 1 < HIST_BUCKETS ? (bucket_lo(i) + bucket_lo(i + 1)) / 2 : bucket_lo(i);
	}
	return bucket_lo(HIST_BUCKETS - 1);
}
