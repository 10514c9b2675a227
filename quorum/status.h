/*
 * status.h - the status text of a quorum member, as the seed's sysfs
 * status file shows it, plus JSON and counters.
 */
#ifndef FUSEFS_QUORUM_STATUS_H
#define FUSEFS_QUORUM_STATUS_H

#include <stddef.h>

#include "common/common.h"
#include "quorum/agent.h"

/* ---- status text (status.c) ---- */

/* The seed's status file text, plus our lease and server lines. */
int quorum_status_text(const struct quorum_snapshot *snap, mono_ns now, char *buf, size_t len);
int quorum_status_json(const struct quorum_snapshot *snap, mono_ns now, char *buf, size_t len);
int quorum_counters_text(const struct quorum_snapshot *snap, char *buf, size_t len);

#endif
