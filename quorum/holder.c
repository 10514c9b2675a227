/*
 * holder.c - which process holds a quorum slot, and whether a recorded
 * holder is still alive on this host.  A process is identified by pid and
 * start time (so a reused pid is not mistaken for it); its host by the
 * kernel's boot id (so another machine, or this one after a reboot, is
 * never mistaken for this one) and its pid namespace (so a process in
 * another container, whose pids we cannot see, is never judged by ours).
 */
#include "quorum/holder.h"

#include "quorum/glue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Field 22 of /proc/PID/stat (starttime, clock ticks after boot) and the
 * state, field 3.  The command name (field 2) may hold spaces and ')', so
 * parse from the last ')'.
 */
static int proc_stat(uint64_t pid, char *state, uint64_t *start_ticks)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%" PRIu64 "/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EIO;
	/* ") S ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 *  utime stime cutime cstime priority nice threads itrealvalue starttime" */
	if (sscanf(p + 2, "%c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
		   state, &ticks) != 2)
		return -EIO;
	*start_ticks = ticks;
	return 0;
}

static int read_boot_id(uint8_t out[FUSEFS_BOOT_ID_BYTES])
{
	char text[64];
	int fd, n, k = 0;

	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = (int)read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	text[n] = '\0';
	for (int i = 0; text[i] && k < FUSEFS_BOOT_ID_BYTES; i++) {
		unsigned v;

		if (text[i] == '-' || text[i] == '\n')
			continue;
		if (sscanf(text + i, "%2x", &v) != 1)
			return -EIO;
		out[k++] = (uint8_t)v;
		i++;
	}
	return k == FUSEFS_BOOT_ID_BYTES ? 0 : -EIO;
}

int quorum_holder_self(struct quorum_holder *h)
{
	char state;
	int ret;

	memset(h, 0, sizeof(*h));
	h->pid = (uint64_t)getpid();
	ret = proc_stat(h->pid, &state, &h->start_ticks);
	if (ret < 0)
		return ret;
	ret = read_boot_id(h->boot_id);
	if (ret < 0)
		return ret;
	if (gethostname(h->host, sizeof(h->host) - 1) < 0)
		snprintf(h->host, sizeof(h->host), "unknown");
	{
		struct stat st;

		if (stat("/proc/self/ns/pid", &st) < 0)
			return -errno;
		h->pidns = (uint64_t)st.st_ino;
	}
	return 0;
}

int quorum_process_start(uint64_t pid, uint64_t *start_ticks)
{
	char state;
	int ret;

	if (pid == 0)
		return -ESRCH;
	ret = proc_stat(pid, &state, start_ticks);
	if (ret == -ENOENT)
		return -ESRCH;
	if (ret == 0 && (state == 'Z' || state == 'X'))
		return -ESRCH;
	return ret;
}

bool quorum_process_matches(uint64_t pid, uint64_t start_ticks)
{
	uint64_t ticks;
	char state;

	if (pid == 0 || proc_stat(pid, &state, &ticks) < 0)
		return false;
	return state != 'Z' && state != 'X' && ticks == start_ticks;
}

bool quorum_holder_alive_here(const struct bd_qblock *qb, const struct quorum_holder *self)
{
	return quorum_holder_same_host(qb, self) &&
	       quorum_process_matches(qb->holder_pid, qb->holder_start_ticks);
}

bool quorum_holder_gone_here(const struct bd_qblock *qb, const struct quorum_holder *self)
{
	return quorum_holder_same_host(qb, self) && qb->holder_pid != 0 &&
	       !quorum_process_matches(qb->holder_pid, qb->holder_start_ticks);
}
