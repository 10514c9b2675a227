/*
 * common.h - the few helpers every module uses: logging, monotonic and
 * wall time, little-endian on-disk integers, bounded string building.
 *
 * Guarantees: nothing here allocates or keeps global state except the
 * log destination, which is set once at start-up.
 */
#ifndef FUSEFS_COMMON_H
#define FUSEFS_COMMON_H

#include <endian.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define NSEC_PER_MSEC ((int64_t)1000000)
#define NSEC_PER_SEC ((int64_t)1000000000)

/*
 * Little-endian integers as they sit on disk and on the wire.  Wrapping
 * them in structs makes mixing host and disk byte order a compile error:
 * the only way in or out is through the helpers below.
 */
struct le16 { uint16_t v; };
struct le32 { uint32_t v; };
struct le64 { uint64_t v; };

static inline struct le16 cpu_to_le16(uint16_t x) { return (struct le16){ htole16(x) }; }
static inline struct le32 cpu_to_le32(uint32_t x) { return (struct le32){ htole32(x) }; }
static inline struct le64 cpu_to_le64(uint64_t x) { return (struct le64){ htole64(x) }; }
static inline uint16_t le16_to_cpu(struct le16 x) { return le16toh(x.v); }
static inline uint32_t le32_to_cpu(struct le32 x) { return le32toh(x.v); }
static inline uint64_t le64_to_cpu(struct le64 x) { return le64toh(x.v); }

/*
 * Monotonic time in nanoseconds, CLOCK_BOOTTIME: unlike CLOCK_MONOTONIC it
 * keeps counting while the machine is suspended, so a lease or a promise
 * never outlives a suspend.  A separate name so a wall-clock value is never
 * passed where a monotonic one is meant.
 */
typedef int64_t mono_ns;

mono_ns mono_now(void);
struct timespec;
/*
 * ms from now on CLOCK_MONOTONIC, for pthread_cond_timedwait on a
 * condition variable made with that clock (pthread_condattr_setclock).
 */
void mono_deadline_ts(struct timespec *ts, int64_t ms);
/* Wall-clock time as seconds and nanoseconds since the epoch. */
void wall_now(uint64_t *sec, uint32_t *nsec);

/*
 * Logging.  One line per call: "fusefs[pid] subsys: message".  Lines go to
 * stderr until log_to_syslog() is called (daemon mode).
 */
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level max);
/* Silence every line (tests that make errors on purpose, by the thousand). */
void log_mute(bool mute);
void log_to_syslog(const char *ident);
void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(sub, ...) log_msg(LOG_LVL_ERR, sub, __VA_ARGS__)
#define log_warn(sub, ...) log_msg(LOG_LVL_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...) log_msg(LOG_LVL_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) log_msg(LOG_LVL_DEBUG, sub, __VA_ARGS__)

/*
 * A bounded text buffer: appends never overflow, and a truncated result
 * is remembered so callers can report -ENOSPC instead of silently
 * shortening output.
 */
struct strbuf {
	char *buf;
	size_t size;
	size_t len;
	bool truncated;
};

void strbuf_init(struct strbuf *sb, char *buf, size_t size);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* strerror for a negative errno, as our functions return them. */
const char *errstr(int neg_errno);

/* Parse a decimal unsigned integer in [min, max]; 0 or -EINVAL/-ERANGE. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
