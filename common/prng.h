/*
 * prng.h - the one pseudo-random generator: SplitMix64 (Steele, Lea and
 * Flood, "Fast splittable pseudorandom number generators", 2014).  Not for
 * secrets (OpenSSL's RAND_bytes is for those); for seeded, replayable
 * choices: jitter, simulated faults, torn writes.  Pure: the caller owns
 * the state.
 */
#ifndef FUSEFS_PRNG_H
#define FUSEFS_PRNG_H

#include <stdint.h>

/* The next value of the stream whose state is *state. */
static inline uint64_t prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); 0 when n is 0.  (Modulo bias is below 2^-40 for n < 2^24.) */
static inline uint64_t prng_below(uint64_t *state, uint64_t n)
{
	return n ? prng_next(state) % n : 0;
}

#endif
