/*
 * common.c - logging, clocks, bounded strings and number parsing shared by
 * every module.  The log destination is the only global state.
 */
#include "common/common.h"
#include "common/thread.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_max = LOG_LVL_INFO;
static bool log_muted;
static bool log_syslog;

mono_ns mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (mono_ns)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

void mono_deadline_ts(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void wall_now(uint64_t *sec, uint32_t *nsec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = (uint64_t)ts.tv_sec;
	*nsec = (uint32_t)ts.tv_nsec;
}

void log_set_level(enum log_level max)
{
	log_max = max;
}

void log_mute(bool mute)
{
	log_muted = mute;
}

void log_to_syslog(const char *ident)
{
	openlog(ident, LOG_PID, LOG_DAEMON);
	log_syslog = true;
}

void log_msg(enum log_level lvl, const char *subsys, const char *fmt, ...)
{
	static const int prio[] = {
		[LOG_LVL_ERR] = LOG_ERR, [LOG_LVL_WARN] = LOG_WARNING,
		[LOG_LVL_INFO] = LOG_INFO, [LOG_LVL_DEBUG] = LOG_DEBUG,
	};
	static const char *const tag[] = {
		[LOG_LVL_ERR] = "error: ", [LOG_LVL_WARN] = "warning: ",
		[LOG_LVL_INFO] = "", [LOG_LVL_DEBUG] = "debug: ",
	};
	int saved_errno = errno;
	char line[1024];
	va_list ap;

	if (lvl > log_max || log_muted)
		return;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	if (log_syslog) {
		syslog(prio[lvl], "%s: %s%s", subsys, tag[lvl], line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld fusefs[%d] %s: %s%s\n", when,
			ts.tv_nsec / 1000000, (int)getpid(), subsys, tag[lvl], line);
	}
	errno = saved_errno;
}

void strbuf_init(struct strbuf *sb, char *buf, size_t size)
{
	sb->buf = buf;
	sb->size = size;
	sb->len = 0;
	sb->truncated = false;
	if (size > 0)
		buf[0] = '\0';
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
	size_t room = sb->size - sb->len;
	va_list ap;
	int n;

	if (sb->truncated || room == 0) {
		sb->truncated = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		sb->truncated = true;
		sb->len = sb->size - 1;
	} else {
		sb->len += (size_t)n;
	}
}

const char *errstr(int neg_errno)
{
	return strerror(neg_errno < 0 ? -neg_errno : neg_errno);
}

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t block, saved;
	int ret;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	ret = -pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return ret;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}
