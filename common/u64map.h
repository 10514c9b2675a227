/*
 * u64map.h - a count for each 64-bit key (never 0), kept only while it is
 * above zero.  Thread-safe.  Used for the kernel's lookup counts on each
 * node id (fuse/) and the open handles on each inode (server/).
 */
#ifndef FUSEFS_U64MAP_H
#define FUSEFS_U64MAP_H

#include <stdint.h>

struct u64map;

int u64map_create(struct u64map **out);
void u64map_destroy(struct u64map *m);
/* One more for key.  0, -EINVAL (key 0) or -ENOMEM. */
int u64map_add(struct u64map *m, uint64_t key);
/*
 * count fewer for key: 0, or -ENOENT (absent) / -ERANGE (it had fewer; it
 * is gone now).
 */
int u64map_sub(struct u64map *m, uint64_t key, uint64_t count);
/* The count of key (0 when absent). */
uint64_t u64map_get(struct u64map *m, uint64_t key);
/* How many keys have a count. */
uint64_t u64map_size(struct u64map *m);
/* Up to max of the keys (in no order) into out: how many. */
uint64_t u64map_keys(struct u64map *m, uint64_t *out, uint64_t max);

#endif
