/*
 * fence_run.c - fence one earlier leader, either by running the configured
 * fence agent or with the built-in local fencer.
 *
 * fence_cmd=PATH is run with the target in its environment:
 *   FUSEFS_FENCE_RID, _SLOT, _ADDR, _PORT, _TERM, _REASON, and, when the
 *   slot's quorum block names the target's process, _PID, _HOST, _BOOT_ID.
 *   A plain client mount that vanished holding locks or open files is
 *   fenced the same way with REASON "client", no SLOT, and the address it
 *   connected from (its greeting named its process);
 *   plus SCOUTFS_FENCED_REQ_RID and SCOUTFS_FENCED_REQ_IP so scripts written
 *   for scoutfs-fenced work unchanged.
 * It runs in its own process group, its output is logged line by line, and
 * exit status 0 means fenced.  At the deadline, or when the caller aborts,
 * the whole group is killed and the fence has failed.
 *
 * The local fencer handles a leader that ran on this host (same boot id):
 * if the recorded pid no longer has the recorded start time the process is
 * gone; otherwise it opens a pidfd, checks the start time again (so a
 * reused pid is never killed), sends SIGKILL through the pidfd and waits
 * until the process has exited.  A leader on another host cannot be fenced
 * locally: that is a failure that says to configure fence_cmd.
 *
 * A slot whose quorum block cannot be read names no process.  Every member
 * holds its slot's UDP address for as long as it runs (and its server runs
 * inside it), so the local fencer looks for that socket: the address must
 * belong to this host (binding it to port 0 works), the socket is found in
 * /proc/net/udp{,6} and its owner through /proc/PID/fd.  Nobody holding it
 * means no member of that slot runs here, and with the address here none
 * runs anywhere else: fenced.  (Members in other network namespaces are
 * invisible to this; use fence_cmd there.)
 */
#include "server/fence.h"

#include "blockdev/codec.h"
#include "blockdev/sockaddr.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *const SUB = "fence";

#define FENCE_ENV_MAX 20
#define FENCE_LINE 512

static int ms_left(mono_ns deadline)
{
	mono_ns left = deadline - mono_now();

	if (left <= 0)
		return 0;
	return (int)MIN(left / NSEC_PER_MSEC + 1, 1000);
}

static bool aborted(int abort_fd)
{
	struct pollfd p = { .fd = abort_fd, .events = POLLIN };

	return abort_fd >= 0 && poll(&p, 1, 0) == 1;
}

static void boot_id_text(const uint8_t *b, char *out, size_t len)
{
	for (int i = 0; i < FUSEFS_BOOT_ID_BYTES && (size_t)(2 * i + 2) < len; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* ---- fence_cmd ---- */

struct env_build {
	char *vars[FENCE_ENV_MAX];
	int count;
	char **envp;
};

static int env_add(struct env_build *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int env_add(struct env_build *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (e->count >= FENCE_ENV_MAX)
		return -ENOSPC;
	va_start(ap, fmt);
	n = vasprintf(&e->vars[e->count], fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	e->count++;
	return 0;
}

static void env_free(struct env_build *e)
{
	for (int i = 0; i < e->count; i++)
		free(e->vars[i]);
	free(e->envp);
}

/* Our environment minus any stale FUSEFS_FENCE_/SCOUTFS_FENCED_ vars, plus the request's. */
static int env_build(struct env_build *e, const struct quorum_fence_request *req)
{
	char host[BD_ADDR_STRLEN], boot[40];
	size_t n = 0, k = 0;
	int ret = 0;

	memset(e, 0, sizeof(*e));
	bd_addr_host(&req->addr, host, sizeof(host));
	ret |= env_add(e, "FUSEFS_FENCE_RID=%016" PRIx64, req->rid);
	if (req->slot >= 0) /* (a plain client mount has no slot) */
		ret |= env_add(e, "FUSEFS_FENCE_SLOT=%d", req->slot);
	ret |= env_add(e, "FUSEFS_FENCE_ADDR=%s", host);
	ret |= env_add(e, "FUSEFS_FENCE_PORT=%u", req->addr.port);
	ret |= env_add(e, "FUSEFS_FENCE_TERM=%" PRIu64, req->term);
	ret |= env_add(e, "FUSEFS_FENCE_REASON=%s", req->reason);
	if (req->detail != NULL)
		ret |= env_add(e, "FUSEFS_FENCE_DETAIL=%s", req->detail);
	ret |= env_add(e, "SCOUTFS_FENCED_REQ_RID=%016" PRIx64, req->rid);
	ret |= env_add(e, "SCOUTFS_FENCED_REQ_IP=%s", host);
	if (req->holder_known) {
		boot_id_text(req->holder.boot_id, boot, sizeof(boot));
		ret |= env_add(e, "FUSEFS_FENCE_PID=%" PRIu64, req->holder.pid);
		ret |= env_add(e, "FUSEFS_FENCE_HOST=%s", req->holder.host);
		ret |= env_add(e, "FUSEFS_FENCE_BOOT_ID=%s", boot);
	}
	if (ret != 0)
		return -ENOMEM;
	while (environ[n] != NULL)
		n++;
	e->envp = calloc(n + (size_t)e->count + 1, sizeof(char *));
	if (e->envp == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "FUSEFS_FENCE_", 13) && strncmp(environ[i], "SCOUTFS_FENCED_", 15))
			e->envp[k++] = environ[i];
	for (int i = 0; i < e->count; i++)
		e->envp[k++] = e->vars[i];
	return 0;
}

/*
 * Kill the agent's whole process group and reap it, waiting at most
 * REAP_MS: a process stuck in the kernel is left behind, not waited for.
 */
#define REAP_MS 5000

static bool kill_and_reap(pid_t pid, int pidfd, int *status)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	kill(-pid, SIGKILL);
	if (pidfd >= 0)
		poll(&p, 1, REAP_MS);
	if (waitpid(pid, status, WNOHANG) == pid)
		return true;
	log_err(SUB, "fence_cmd pid %d did not exit after SIGKILL; leaving it", (int)pid);
	return false;
}

/* Log complete lines from the agent's output; keep a partial line. */
static void log_output(char *buf, size_t *len, pid_t pid, bool flush)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', *len - (size_t)(start - buf))) != NULL) {
		*nl = '\0';
		log_info(SUB, "fence_cmd[%d]: %s", (int)pid, start);
		start = nl + 1;
	}
	*len -= (size_t)(start - buf);
	memmove(buf, start, *len);
	if ((flush && *len > 0) || *len == FENCE_LINE - 1) {
		buf[*len] = '\0';
		log_info(SUB, "fence_cmd[%d]: %s", (int)pid, buf);
		*len = 0;
	}
}

/*
 * Start the agent in a process group of its own, with default signal
 * handling, stdin from /dev/null and stdout and stderr into a pipe.  0
 * with its pid and the pipe's read end, or -errno with why.
 */
static int fence_spawn(const struct quorum_fence_request *req,
		       const struct quorum_fence_config *cfg, pid_t *pid, int *out_fd, char *why,
		       size_t whylen)
{
	char *argv[] = { (char *)cfg->fence_cmd, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct env_build env;
	sigset_t def, none;
	int pipefd[2] = { -1, -1 }, ret = env_build(&env, req);

	if (ret < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		ret = ret ? ret : -errno;
		snprintf(why, whylen, "cannot prepare fence_cmd: %s", errstr(ret));
		env_free(&env);
		return ret;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	posix_spawnattr_init(&attr);
	/* its own group, default signal handling, nothing blocked (libfuse ignores SIGPIPE) */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
					       POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setpgroup(&attr, 0);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGHUP);
	sigaddset(&def, SIGQUIT);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setsigmask(&attr, &none);
	ret = -posix_spawn(pid, cfg->fence_cmd, &fa, &attr, argv, env.envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	env_free(&env);
	close(pipefd[1]);
	if (ret < 0) {
		snprintf(why, whylen, "cannot run fence_cmd %s: %s", cfg->fence_cmd, errstr(ret));
		close(pipefd[0]);
		return ret;
	}
	*out_fd = pipefd[0];
	return 0;
}

/* A running agent: its process, its output, and what we wait for. */
struct fence_watch {
	pid_t pid;
	int pidfd;
	int out_fd;
	int abort_fd;
	mono_ns deadline;
	char line[FENCE_LINE];
	size_t line_len;
	int status;
};

/*
 * Wait for the agent to exit and its output to end, logging its lines,
 * until the deadline or an abort (then it is killed).  0 with w->status,
 * or -errno with why.
 */
static int fence_wait(struct fence_watch *w, const char *cmd, char *why, size_t whylen)
{
	bool exited = false, eof = false, stop;

	while (!(exited && eof)) {
		struct pollfd p[3] = {
			{ .fd = eof ? -1 : w->out_fd, .events = POLLIN },
			{ .fd = exited ? -1 : w->pidfd, .events = POLLIN },
			{ .fd = w->abort_fd, .events = POLLIN },
		};
		int ret;

		if (exited && mono_now() >= w->deadline) {
			/* it exited; something it left behind holds the pipe: end those */
			kill(-w->pid, SIGKILL);
			break;
		}
		stop = aborted(w->abort_fd);
		if (stop || mono_now() >= w->deadline) {
			kill_and_reap(w->pid, w->pidfd, &w->status);
			snprintf(why, whylen, "fence_cmd %s %s; killed it", cmd,
				 stop ? "was aborted (our server is stopping)" : "did not finish in time");
			return stop ? -ECANCELED : -ETIMEDOUT;
		}
		if (poll(p, 3, ms_left(w->deadline)) < 0 && errno != EINTR) {
			ret = -errno;
			kill_and_reap(w->pid, w->pidfd, &w->status);
			snprintf(why, whylen, "waiting for fence_cmd: %s", errstr(ret));
			return ret;
		}
		if (p[0].revents) {
			ssize_t n = read(w->out_fd, w->line + w->line_len,
					 sizeof(w->line) - 1 - w->line_len);

			if (n <= 0)
				eof = true;
			else
				w->line_len += (size_t)n;
			log_output(w->line, &w->line_len, w->pid, eof);
		}
		if ((p[1].revents || w->pidfd < 0) && waitpid(w->pid, &w->status, WNOHANG) == w->pid) {
			exited = true;
			w->deadline = MIN(w->deadline, mono_now() + 200 * NSEC_PER_MSEC);
		}
	}
	return 0;
}

static int fence_cmd(const struct quorum_fence_request *req, const struct quorum_fence_config *cfg,
		     int abort_fd, char *why, size_t whylen)
{
	struct fence_watch w = { .abort_fd = abort_fd, .pidfd = -1, .out_fd = -1,
				 .deadline = mono_now() + (mono_ns)cfg->timeout_ms * NSEC_PER_MSEC };
	int ret = fence_spawn(req, cfg, &w.pid, &w.out_fd, why, whylen);

	if (ret < 0)
		return ret;
	w.pidfd = pidfd_open(w.pid, 0);
	ret = fence_wait(&w, cfg->fence_cmd, why, whylen);
	if (ret == 0 && WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0) {
		ret = 0;
	} else if (ret == 0) {
		ret = -EIO;
		if (WIFEXITED(w.status))
			snprintf(why, whylen, "fence_cmd %s exited with status %d", cfg->fence_cmd,
				 WEXITSTATUS(w.status));
		else
			snprintf(why, whylen, "fence_cmd %s was killed by signal %d", cfg->fence_cmd,
				 WTERMSIG(w.status));
	}
	log_output(w.line, &w.line_len, w.pid, true);
	if (w.pidfd >= 0)
		close(w.pidfd);
	close(w.out_fd);
	return ret;
}

/* ---- the local fencer ---- */

/*
 * Kill the process pid if it still started at start_ticks, and wait until
 * it has exited (bounded by deadline, or abort_fd).  0 when it is gone.
 */
static int kill_and_wait(uint64_t pid, uint64_t start_ticks, mono_ns deadline, int abort_fd,
			 char *why, size_t whylen)
{
	int pidfd, ret;

	if (!quorum_process_matches(pid, start_ticks)) {
		snprintf(why, whylen, "pid %" PRIu64 " is already gone", pid);
		return 0;
	}
	pidfd = pidfd_open((pid_t)pid, 0);
	if (pidfd < 0) {
		ret = -errno;
		if (ret == -ESRCH) {
			snprintf(why, whylen, "pid %" PRIu64 " is already gone", pid);
			return 0;
		}
		snprintf(why, whylen, "pidfd_open(%" PRIu64 "): %s", pid, errstr(ret));
		return ret;
	}
	/* the pidfd pins the process: check it is still the one recorded */
	if (!quorum_process_matches(pid, start_ticks)) {
		close(pidfd);
		snprintf(why, whylen, "pid %" PRIu64 " is already gone (reused)", pid);
		return 0;
	}
	if (pidfd_send_signal(pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		ret = -errno;
		close(pidfd);
		snprintf(why, whylen, "kill pid %" PRIu64 ": %s", pid, errstr(ret));
		return ret;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN },
				       { .fd = abort_fd, .events = POLLIN } };

		if (mono_now() >= deadline) {
			ret = -ETIMEDOUT;
			snprintf(why, whylen, "pid %" PRIu64 " did not exit after SIGKILL", pid);
			break;
		}
		if (aborted(abort_fd)) {
			ret = -ECANCELED;
			snprintf(why, whylen, "aborted: our server is stopping");
			break;
		}
		if (poll(p, 2, ms_left(deadline)) > 0 && (p[0].revents & POLLIN)) {
			ret = 0;
			snprintf(why, whylen, "killed pid %" PRIu64 " (SIGKILL) and it exited", pid);
			break;
		}
	}
	close(pidfd);
	return ret;
}

/* Is the address one of this host's (in our network namespace)? */
static bool addr_is_here(const struct bd_addr *a)
{
	struct bd_addr any = *a;
	struct sockaddr_storage ss;
	socklen_t len;
	bool here;
	int fd;

	any.port = 0;
	if (bd_addr_to_sockaddr(&any, &ss, &len) < 0)
		return false;
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	here = bind(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return here;
}

/*
 * The inode of the UDP socket bound to exactly a (address and port), from
 * /proc/net/udp or udp6, whose addresses are 32-bit words in host order.
 * 0 and *inode, -ENOENT when no socket is bound there, or -errno.
 */
static int udp_socket_inode(const struct bd_addr *a, uint64_t *inode)
{
	const bool v6 = a->family == FUSEFS_AF_IPV6;
	FILE *f = fopen(v6 ? "/proc/net/udp6" : "/proc/net/udp", "re");
	char line[512];
	int ret = -ENOENT;

	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		uint32_t words[4] = { 0 };
		unsigned port;
		unsigned long long ino;
		char addr_hex[40];
		int n = 0;

		if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %*s %*s %*s %*s %*s %*s %*s %llu", addr_hex,
			   &port, &ino) != 3 || port != a->port)
			continue;
		for (int w = 0; w < (v6 ? 4 : 1); w++) {
			char word[9];

			memcpy(word, addr_hex + 8 * w, 8);
			word[8] = '\0';
			words[w] = (uint32_t)strtoul(word, NULL, 16);
			n += 4;
		}
		if (strlen(addr_hex) == (size_t)n * 2 && memcmp(words, a->bytes, (size_t)n) == 0) {
			*inode = ino;
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* The process (pid and start time) with a file descriptor on socket inode, or -ESRCH. */
static int socket_owner(uint64_t inode, uint64_t *pid_out, uint64_t *ticks_out)
{
	char want[64], path[600], link[64];
	struct dirent *pe, *fe;
	DIR *proc, *fds;
	int ret = -ESRCH;

	snprintf(want, sizeof(want), "socket:[%" PRIu64 "]", inode);
	proc = opendir("/proc");
	if (proc == NULL)
		return -errno;
	while (ret == -ESRCH && (pe = readdir(proc)) != NULL) {
		if (pe->d_name[0] < '1' || pe->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", pe->d_name);
		fds = opendir(path);
		if (fds == NULL)
			continue;
		while ((fe = readdir(fds)) != NULL) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s", pe->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want) == 0) {
				*pid_out = strtoull(pe->d_name, NULL, 10);
				ret = quorum_process_start(*pid_out, ticks_out);
				break;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return ret;
}

/* A slot whose block cannot be read: find its member by its UDP address. */
static int fence_local_unreadable(const struct quorum_fence_request *req, mono_ns deadline,
				  int abort_fd, char *why, size_t whylen)
{
	char addr[BD_ADDR_STRLEN];
	uint64_t inode = 0, pid = 0, ticks = 0;
	int ret;

	bd_addr_format(&req->addr, addr, sizeof(addr));
	if (!addr_is_here(&req->addr)) {
		snprintf(why, whylen, "slot %d's quorum block cannot be read and its address %s is "
			 "not on this host; the local fencer cannot find its member: configure "
			 "fence_cmd=PATH", req->slot, addr);
		return -EHOSTUNREACH;
	}
	ret = udp_socket_inode(&req->addr, &inode);
	if (ret == -ENOENT) {
		snprintf(why, whylen, "no process here holds slot %d's address %s (udp): no member "
			 "of the slot runs", req->slot, addr);
		return 0;
	}
	if (ret == 0)
		ret = socket_owner(inode, &pid, &ticks);
	if (ret < 0) {
		snprintf(why, whylen, "cannot tell who holds slot %d's address %s (udp): %s; configure "
			 "fence_cmd=PATH", req->slot, addr, errstr(ret));
		return -EHOSTUNREACH;
	}
	if (pid == (uint64_t)getpid()) {
		snprintf(why, whylen, "slot %d's address %s is held by this very process", req->slot,
			 addr);
		return -EINVAL;
	}
	ret = kill_and_wait(pid, ticks, deadline, abort_fd, why, whylen);
	if (ret == 0) {
		size_t n = strlen(why);

		snprintf(why + n, whylen - n, ", the holder of slot %d's address %s", req->slot, addr);
	}
	return ret;
}

static int fence_local(const struct quorum_fence_request *req, const struct quorum_fence_config *cfg,
		       int abort_fd, char *why, size_t whylen)
{
	mono_ns deadline = mono_now() + (mono_ns)cfg->timeout_ms * NSEC_PER_MSEC;
	const struct quorum_holder *h = &req->holder;

	if (req->rid == 0)
		return fence_local_unreadable(req, deadline, abort_fd, why, whylen);
	if (req->replaced) {
		snprintf(why, whylen, "slot %d was remounted since by a mount that saw rid %016" PRIx64
			 " gone", req->slot, req->rid);
		return 0;
	}
	if (!req->holder_known) {
		snprintf(why, whylen, "no record of rid %016" PRIx64 "'s process; the local fencer "
			 "cannot fence it: configure fence_cmd=PATH", req->rid);
		return -EHOSTUNREACH;
	}
	if (memcmp(h->boot_id, cfg->self.boot_id, FUSEFS_BOOT_ID_BYTES) != 0 ||
	    h->pidns != cfg->self.pidns) {
		snprintf(why, whylen, "rid %016" PRIx64 " ran on host %s%s, not here; the local "
			 "fencer only fences processes of this host: configure fence_cmd=PATH",
			 req->rid, h->host,
			 h->pidns != cfg->self.pidns ? " in another pid namespace" : "");
		return -EHOSTUNREACH;
	}
	if (h->pid == (uint64_t)getpid()) {
		snprintf(why, whylen, "rid %016" PRIx64 " is this very process", req->rid);
		return -EINVAL;
	}
	return kill_and_wait(h->pid, h->start_ticks, deadline, abort_fd, why, whylen);
}

int quorum_fence_run(const struct quorum_fence_request *req, const struct quorum_fence_config *cfg,
		     int abort_fd, char *why, size_t whylen)
{
	if (cfg->fence_cmd != NULL && cfg->fence_cmd[0] != '\0')
		return fence_cmd(req, cfg, abort_fd, why, whylen);
	return fence_local(req, cfg, abort_fd, why, whylen);
}
