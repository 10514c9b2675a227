/*
 * store_vfs.h - inside the store module: the SQLite VFS that puts the
 * database and its write-ahead log on the device's store regions
 * (store_vfs.c).  Only store.c uses it.
 */
#ifndef FUSEFS_STORE_VFS_H
#define FUSEFS_STORE_VFS_H

#include <stdbool.h>
#include <stdint.h>

#include "blockdev/dev.h"
#include "blockdev/format.h"

struct svfs;

struct svfs_stats {
	uint64_t log_writes;   /* device writes into the log region */
	uint64_t log_bytes;
	uint64_t db_writes;    /* device writes into the database region */
	uint64_t db_bytes;
	uint64_t syncs;        /* flushes */
	uint64_t log_reads;    /* device reads from the log region */
	uint64_t db_reads;     /* device reads from the database region */
	uint64_t refused;      /* writes refused: fenced, or the lease was gone */
};

/*
 * Register a VFS (a fresh unique name) over the store regions l of dev.
 * may_write (NULL: always) is asked before every device write and flush;
 * when it says no, the write fails and the VFS is fenced for good.
 */
int svfs_create(struct bd_dev *dev, const struct bd_store_layout *l, bool read_only,
		bool (*may_write)(void *arg), void *arg, struct svfs **out);
void svfs_destroy(struct svfs *v);
/* The name to pass to sqlite3_open_v2. */
const char *svfs_name(const struct svfs *v);
/* Refuse every write from now on. */
void svfs_fence(struct svfs *v);
bool svfs_fenced(const struct svfs *v);
/* Has the device failed a read (since the open)?  Not a corrupt page: the device. */
bool svfs_read_failed(const struct svfs *v);
void svfs_get_stats(const struct svfs *v, struct svfs_stats *out);

/* The file names the VFS knows. */
#define SVFS_DB_NAME "fusefs.db"

#endif
