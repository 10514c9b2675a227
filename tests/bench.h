/*
 * bench.h - the benchmark program's parts (fusefs-bench).
 */
#ifndef FUSEFS_TESTS_BENCH_H
#define FUSEFS_TESTS_BENCH_H

#include <inttypes.h>

/* The store and the filesystem logic, without FUSE or TCP (bench_store.c). */
void bench_store(void);

#endif
