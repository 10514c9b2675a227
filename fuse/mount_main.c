/*
 * fusefs-mount - mount a fusefs filesystem; with quorum_slot_nr, also join
 * the election and run the metadata server when elected.
 *
 * Without -f the process forks first and the parent waits: the child does
 * everything (opens the device, checks the slot, binds its address,
 * mounts, starts the quorum thread and records BEGIN) and only then tells
 * the parent, which exits 0; any failure is printed by the child and the
 * parent exits 1.  So a failed mount is never reported as success, and no
 * thread exists before the fork.
 *
 * SIGTERM, SIGINT and fusermount3 -u end the FUSE loop; then a leader stops
 * its server, resigns, and writes STOP and END before the process exits.
 */
#include "fuse/mount.h"

#include "fuse/client.h"
#include "common/u64map.h"
#include "fuse/opts.h"

#include "blockdev/blocks.h"
#include "blockdev/codec.h"
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* leaving takes at most a heartbeat timeout (a follower keeps its promises) */
#define SHUTDOWN_SLACK_MS 10000

static const char *const SUB = "mount";

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr, prefixed with the program name. */
static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fusefs-mount: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* ---- daemonizing ---- */

/*
 * Fork; the parent waits for the child's one-byte verdict and exits with
 * it.  Returns in the child with the pipe to write the verdict to.
 */
static int fork_and_wait(int *notify_fd)
{
	int pipefd[2];
	pid_t pid;
	char verdict;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		say("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		say("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(pipefd[1]);
		if (read(pipefd[0], &verdict, 1) != 1) {
			int status;

			waitpid(pid, &status, 0);
			say("the mount process exited during start-up");
			_exit(1);
		}
		_exit(verdict == 0 ? 0 : 1);
	}
	close(pipefd[0]);
	setsid();
	log_to_syslog("fusefs-mount"); /* a daemon logs there; say() still reaches the caller */
	*notify_fd = pipefd[1];
	return 0;
}

static void tell_parent(int *notify_fd, int status)
{
	char verdict = status == 0 ? 0 : 1;
	int devnull;

	if (*notify_fd < 0)
		return;
	if (status == 0) {
		/* detach from the terminal */
		if (chdir("/") < 0)
			log_warn(SUB, "chdir /: %s", strerror(errno));
		devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			if (devnull > 2)
				close(devnull);
		}
	}
	if (write(*notify_fd, &verdict, 1) != 1)
		log_err(SUB, "could not report to the parent process");
	close(*notify_fd);
	*notify_fd = -1;
}

/* ---- start-up ---- */

static int new_rid(uint64_t *rid)
{
	do {
		if (RAND_bytes((unsigned char *)rid, sizeof(*rid)) != 1)
			return -EIO;
	} while (*rid == 0);
	return 0;
}

static int open_fs(const struct mount_opts *o, struct mount_ctx *fs)
{
	char why[512], list[64];
	struct stat st;
	int ret;

	if (stat(o->mountpoint, &st) < 0) {
		ret = -errno;
		say("%s: %s", o->mountpoint, errstr(ret));
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		say("%s: not a directory", o->mountpoint);
		return -ENOTDIR;
	}
	ret = bd_open(o->device, o->slot_nr >= 0, &fs->dev, why, sizeof(why));
	if (ret < 0) {
		say("%s", why);
		return ret;
	}
	ret = bd_read_super(fs->dev, &fs->super, why, sizeof(why));
	if (ret < 0) {
		say("%s: not a fusefs filesystem: %s", o->device, why);
		return ret;
	}
	if (o->slot_nr >= 0 && !bd_slot_present(&fs->super, o->slot_nr)) {
		say("quorum_slot_nr=%d references a slot that is not configured on %s; configured "
		    "slots: %s", o->slot_nr, o->device,
		    bd_slots_present_list(&fs->super, list, sizeof(list)));
		return -EINVAL;
	}
	ret = new_rid(&fs->rid);
	if (ret < 0) {
		say("no randomness for a mount rid");
		return ret;
	}
	fs->slot = o->slot_nr;
	fs->uid = getuid();
	fs->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs->mounted);
	return 0;
}

/*
 * Bind the slot's UDP address.  A member restarted right after a SIGKILL
 * (as a supervisor does) can find it still held after the process is gone:
 * the kernel tears its io_uring down (and with it the socket a receive
 * was armed on) asynchronously.  When the slot's last holder was a process
 * here that no longer runs, wait, bounded, and say so once; anyone else
 * holding the address is an error at once.
 */
#define BIND_WAIT_MS 15000

static int bind_slot_waiting(const struct bd_super *super, int slot, const struct bd_qblock *qb,
			     const struct quorum_holder *self, int *udp_fd)
{
	mono_ns deadline = mono_now() + BIND_WAIT_MS * NSEC_PER_MSEC;
	struct timespec pause = { 0, 50 * 1000000L };
	bool said = false;
	char why[512];
	int ret;

	for (;;) {
		ret = quorum_bind_slot(super, slot, udp_fd, why, sizeof(why));
		/* only what the slot's own last holder here left behind is worth waiting for */
		if (ret != -EADDRINUSE || qb == NULL || !quorum_holder_gone_here(qb, self) ||
		    mono_now() >= deadline)
			break;
		if (!said)
			log_warn(SUB, "%s; waiting up to %d s for the process that held it to finish "
				 "going away", why, BIND_WAIT_MS / 1000);
		said = true;
		nanosleep(&pause, NULL);
	}
	if (ret < 0)
		say("%s", why);
	else if (said)
		log_info(SUB, "quorum slot %d: its address is free again", slot);
	return ret;
}

/* A quorum member: check the slot is free here, and bind its address. */
static int prepare_member(const struct mount_opts *o, struct mount_ctx *fs,
			  struct quorum_holder *self, int *udp_fd)
{
	struct bd_qblock qb;
	bool block_ok;
	char why[512];
	int ret;

	ret = quorum_holder_self(self);
	if (ret < 0) {
		say("cannot identify this process and host: %s", errstr(ret));
		return ret;
	}
	ret = bd_read_qblock(fs->dev, &fs->super, o->slot_nr, &qb, why, sizeof(why));
	if (ret == -EBADMSG && !o->repair) {
		say("%s: %s; mount with -o quorum_repair to rebuild it from the other slots' blocks "
		    "(fusefs-mount(8))", o->device, why);
		return ret;
	}
	if (ret < 0 && ret != -EBADMSG) {
		say("%s: %s", o->device, why);
		return ret;
	}
	/* a block that fails verification names no holder; binding the address checks */
	block_ok = ret == 0;
	ret = block_ok ? quorum_slot_check_free(&qb, o->slot_nr, self, why, sizeof(why)) : 0;
	if (ret < 0) {
		say("%s", why);
		return ret;
	}
	return bind_slot_waiting(&fs->super, o->slot_nr, block_ok ? &qb : NULL, self, udp_fd);
}

/*
 * So /proc/mounts shows "DEVICE MOUNTPOINT fuse.fusefs"; the kernel checks
 * permissions as a local filesystem would (default_permissions); and, when
 * root mounts, every user may use the filesystem (allow_other), as with
 * any other filesystem root mounts.
 */
static int add_fs_names(struct mount_opts *o)
{
	char *name = NULL, *opts = NULL;
	int ret = -1;

	if (asprintf(&name, "fsname=%s", o->device) < 0)
		return -1;
	if (fuse_opt_add_opt(&opts, "subtype=fusefs") == 0 &&
	    fuse_opt_add_opt(&opts, "default_permissions") == 0 &&
	    (getuid() != 0 || fuse_opt_add_opt(&opts, "allow_other") == 0) &&
	    fuse_opt_add_opt_escaped(&opts, name) == 0 &&
	    fuse_opt_add_arg(&o->fuse_args, "-o") == 0 && fuse_opt_add_arg(&o->fuse_args, opts) == 0)
		ret = 0;
	free(name);
	free(opts);
	return ret;
}

/* Everything a mount holds while it runs, for one teardown. */
struct mount_run {
	struct mount_opts o;
	struct mount_ctx fs;
	struct quorum_holder self;
	struct fuse_loop_config *loop_cfg;
	struct quorum_agent *agent;
	struct fuse_session *se;
	struct server *server;
	int notify_fd, udp_fd;
	bool mounted, handlers;
};

/*
 * The client to the server.  A plain client mounts once a server answers;
 * a member cannot wait: it may be the one that gets elected, and only
 * after it has mounted.
 */
static int start_client(struct mount_run *r)
{
	struct rpc_client_config ccfg = { .dev = r->fs.dev, .super = &r->fs.super, .rid = r->fs.rid,
					  .wait_ms = r->o.server_wait_ms, .inval = mount_inval,
					  .inval_arg = &r->fs, .soft = r->o.soft,
					  .lock_freed = mount_lock_freed, .lock_freed_arg = &r->fs,
					  .failover_ms = r->o.failover_timeout_ms,
					  .stall_ms = r->o.hb_timeout_ms };
	char why[512];
	int ret;

	if (u64map_create(&r->fs.nodes) < 0 || u64map_create(&r->fs.locked) < 0 ||
	    lock_waiters_create(mount_lock_try, &r->fs.lock_waiting, &r->fs.waiters) < 0 ||
	    rpc_client_create(&ccfg, &r->fs.client) < 0) {
		say("out of memory");
		return -ENOMEM;
	}
	if (r->o.slot_nr >= 0)
		return 0;
	ret = rpc_client_connect(r->fs.client, why, sizeof(why));
	if (ret < 0)
		say("no server answered within %u ms (server_wait_ms): %s", r->o.server_wait_ms, why);
	return ret;
}

/* The FUSE session, mounted. */
static int start_fuse(struct mount_run *r)
{
	if (add_fs_names(&r->o) < 0) {
		say("out of memory");
		return -ENOMEM;
	}
	r->se = fuse_session_new(&r->o.fuse_args, &mount_fuse_ops, sizeof(mount_fuse_ops), &r->fs);
	if (r->se == NULL) {
		say("cannot set up the FUSE session (see the message above)");
		return -EINVAL;
	}
	r->fs.se = r->se;
	if (fuse_set_signal_handlers(r->se) < 0) {
		say("cannot install signal handlers");
		return -EINVAL;
	}
	r->handlers = true;
	if (fuse_session_mount(r->se, r->o.mountpoint) < 0) {
		say("cannot mount on %s (see the message above)", r->o.mountpoint);
		return -EINVAL;
	}
	r->mounted = true;
	return 0;
}

/* A member's server thread and quorum agent (which records BEGIN). */
static int start_member(struct mount_run *r)
{
	struct server_config scfg = {
		.dev = r->fs.dev, .super = &r->fs.super, .slot = r->o.slot_nr, .rid = r->fs.rid,
		.fence_cmd = r->o.fence_cmd, .fence_timeout_ms = r->o.fence_timeout_ms,
		.grace_ms = r->o.grace_ms, .self = r->self,
	};
	struct quorum_agent_config acfg = {
		.dev = r->fs.dev, .super = &r->fs.super, .slot = r->o.slot_nr, .rid = r->fs.rid,
		.hb_timeout_ms = r->o.hb_timeout_ms, .udp_fd = r->udp_fd, .self = r->self,
		.repair = r->o.repair,
	};
	char why[512];
	int ret = server_create(&scfg, &r->server);

	if (ret < 0) {
		say("cannot start the server thread: %s", errstr(ret));
		return ret;
	}
	r->fs.server = r->server;
	acfg.server = server_ops(r->server);
	r->udp_fd = -1; /* the agent owns it now, even if it fails */
	ret = quorum_agent_start(&acfg, &r->agent, why, sizeof(why));
	if (ret < 0) {
		say("%s", why);
		return ret;
	}
	r->fs.agent = r->agent;
	return 0;
}

/* Serve the kernel until unmounted or signalled; then take the mount away.  The exit status. */
static int serve_fuse(struct mount_run *r)
{
	int ret;

	r->loop_cfg = fuse_loop_cfg_create();
	if (r->loop_cfg == NULL) {
		log_err(SUB, "out of memory");
		return 1;
	}
	fuse_loop_cfg_set_clone_fd(r->loop_cfg, 0);
	/* a handler waits for its reply: enough threads to keep many requests in flight */
	fuse_loop_cfg_set_max_threads(r->loop_cfg, 64);
	/* and keep them: a thread made and ended for every burst costs more than it saves */
	fuse_loop_cfg_set_idle_threads(r->loop_cfg, 64);
	ret = fuse_session_loop_mt(r->se, r->loop_cfg);
	log_info(SUB, "unmounting %s", r->o.mountpoint);
	/* nobody serves the mount any more: take it away before leaving the quorum */
	fuse_session_unmount(r->se);
	r->mounted = false;
	return ret < 0 ? 1 : 0;
}

/* Everything the run holds, released in the order that keeps the quorum's promises. */
static void teardown(struct mount_run *r)
{
	lock_waiters_destroy(r->fs.waiters); /* (they call through the client) */
	rpc_client_destroy(r->fs.client);
	r->fs.client = NULL;
	if (r->agent != NULL)
		quorum_agent_shutdown(r->agent,
				      (int)quorum_agent_hb_timeout(r->agent) + SHUTDOWN_SLACK_MS);
	server_destroy(r->server);
	quorum_agent_free(r->agent);
	if (r->udp_fd >= 0)
		close(r->udp_fd);
	if (r->loop_cfg != NULL)
		fuse_loop_cfg_destroy(r->loop_cfg);
	if (r->mounted)
		fuse_session_unmount(r->se);
	if (r->handlers)
		fuse_remove_signal_handlers(r->se);
	if (r->se != NULL)
		fuse_session_destroy(r->se);
	u64map_destroy(r->fs.nodes);
	u64map_destroy(r->fs.locked);
	bd_close(r->fs.dev);
	mount_opts_free(&r->o);
}

/* Everything up to a mounted filesystem whose parent has been told.  0 or -1 (said). */
static int start(struct mount_run *r)
{
	if (!r->o.foreground && fork_and_wait(&r->notify_fd) < 0)
		return -1;
	if (open_fs(&r->o, &r->fs) < 0)
		return -1;
	if (r->o.slot_nr >= 0 && prepare_member(&r->o, &r->fs, &r->self, &r->udp_fd) < 0)
		return -1;
	if (start_client(r) < 0 || start_fuse(r) < 0)
		return -1;
	if (r->o.slot_nr >= 0 && start_member(r) < 0)
		return -1;
	log_info(SUB, "mounted %s on %s as %s, rid %016" PRIx64, r->o.device, r->o.mountpoint,
		 r->o.slot_nr >= 0 ? "a quorum member" : "a plain client", r->fs.rid);
	if (r->o.slot_nr >= 0)
		log_info(SUB, "quorum slot %d, heartbeat timeout %u ms, fencing with %s", r->o.slot_nr,
			 r->o.hb_timeout_ms, r->o.fence_cmd ? r->o.fence_cmd : "the local fencer");
	tell_parent(&r->notify_fd, 0);
	return 0;
}

int main(int argc, char **argv)
{
	static struct mount_run r;
	int status = 1;
	char why[512];

	memset(&r, 0, sizeof(r));
	r.fs.slot = -1;
	pthread_mutex_init(&r.fs.root_lock, NULL);
	r.notify_fd = r.udp_fd = -1;
	/* fds 0..2 must be open, or a device or socket could land there */
	for (int fd = open("/dev/null", O_RDWR); fd >= 0 && fd <= 2; fd = open("/dev/null", O_RDWR))
		;
	if (mount_opts_parse(argc, argv, &r.o, why, sizeof(why)) < 0) {
		say("%s", why);
		return 1;
	}
	if (r.o.help || r.o.version) {
		if (r.o.help)
			mount_usage(stdout);
		else
			printf("fusefs-mount format %d, libfuse %s\n", FUSEFS_FORMAT_VERSION,
			       fuse_pkgversion());
		mount_opts_free(&r.o);
		return 0;
	}
	log_set_level(r.o.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (start(&r) == 0)
		status = serve_fuse(&r);
	teardown(&r);
	tell_parent(&r.notify_fd, 1); /* (only when start failed: the parent was told already) */
	return status;
}
