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

/* A quorum member: check the slot is free here, and bind its address. */
static int prepare_member(const struct mount_opts *o, struct mount_ctx *fs,
			  struct quorum_holder *self, int *udp_fd)
{
	struct bd_qblock qb;
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
	ret = ret == 0 ? quorum_slot_check_free(&qb, o->slot_nr, self, why, sizeof(why)) : 0;
	if (ret < 0) {
		say("%s", why);
		return ret;
	}
	ret = quorum_bind_slot(&fs->super, o->slot_nr, udp_fd, why, sizeof(why));
	if (ret < 0)
		say("%s", why);
	return ret;
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

int main(int argc, char **argv)
{
	struct fuse_loop_config *loop_cfg = NULL;
	struct quorum_agent *agent = NULL;
	struct fuse_session *se = NULL;
	struct server *server = NULL;
	struct quorum_holder self;
	struct mount_opts o;
	struct mount_ctx fs;
	int notify_fd = -1, udp_fd = -1, ret, status = 1;
	bool mounted = false, handlers = false;
	char why[512];

	memset(&fs, 0, sizeof(fs));
	fs.slot = -1;
	/* fds 0..2 must be open, or a device or socket could land there */
	for (int fd = open("/dev/null", O_RDWR); fd >= 0 && fd <= 2; fd = open("/dev/null", O_RDWR))
		;
	if (mount_opts_parse(argc, argv, &o, why, sizeof(why)) < 0) {
		say("%s", why);
		return 1;
	}
	if (o.help) {
		mount_usage(stdout);
		mount_opts_free(&o);
		return 0;
	}
	if (o.version) {
		printf("fusefs-mount format %d, libfuse %s\n", FUSEFS_FORMAT_VERSION, fuse_pkgversion());
		mount_opts_free(&o);
		return 0;
	}
	log_set_level(o.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (!o.foreground && fork_and_wait(&notify_fd) < 0)
		goto out;

	if (open_fs(&o, &fs) < 0)
		goto out;
	if (o.slot_nr >= 0 && prepare_member(&o, &fs, &self, &udp_fd) < 0)
		goto out;

	{
		struct rpc_client_config ccfg = { .dev = fs.dev, .super = &fs.super, .rid = fs.rid,
						  .wait_ms = o.server_wait_ms };

		if (u64map_create(&fs.nodes) < 0 || rpc_client_create(&ccfg, &fs.client) < 0) {
			say("out of memory");
			goto out;
		}
	}
	/*
	 * A plain client mounts once a server answers; a member cannot wait: it
	 * may be the one that gets elected, and only after it has mounted.
	 */
	if (o.slot_nr < 0) {
		ret = rpc_client_connect(fs.client, why, sizeof(why));
		if (ret < 0) {
			say("no server answered within %u ms (server_wait_ms): %s", o.server_wait_ms,
			    why);
			goto out;
		}
	}

	if (add_fs_names(&o) < 0) {
		say("out of memory");
		goto out;
	}
	se = fuse_session_new(&o.fuse_args, &mount_fuse_ops, sizeof(mount_fuse_ops), &fs);
	if (se == NULL) {
		say("cannot set up the FUSE session (see the message above)");
		goto out;
	}
	if (fuse_set_signal_handlers(se) < 0) {
		say("cannot install signal handlers");
		goto out;
	}
	handlers = true;
	if (fuse_session_mount(se, o.mountpoint) < 0) {
		say("cannot mount on %s (see the message above)", o.mountpoint);
		goto out;
	}
	mounted = true;

	if (o.slot_nr >= 0) {
		struct server_config scfg = {
			.dev = fs.dev, .super = &fs.super, .slot = o.slot_nr, .rid = fs.rid,
			.fence_cmd = o.fence_cmd, .fence_timeout_ms = o.fence_timeout_ms, .self = self,
		};
		struct quorum_agent_config acfg = {
			.dev = fs.dev, .super = &fs.super, .slot = o.slot_nr, .rid = fs.rid,
			.hb_timeout_ms = o.hb_timeout_ms, .udp_fd = udp_fd, .self = self,
			.repair = o.repair,
		};

		ret = server_create(&scfg, &server);
		if (ret < 0) {
			say("cannot start the server thread: %s", errstr(ret));
			goto out;
		}
		fs.server = server;
		acfg.server = server_ops(server);
		udp_fd = -1; /* the agent owns it now, even if it fails */
		ret = quorum_agent_start(&acfg, &agent, why, sizeof(why));
		if (ret < 0) {
			say("%s", why);
			goto out;
		}
		fs.agent = agent;
	}
	log_info(SUB, "mounted %s on %s as %s, rid %016" PRIx64, o.device, o.mountpoint,
		 o.slot_nr >= 0 ? "a quorum member" : "a plain client", fs.rid);
	if (o.slot_nr >= 0)
		log_info(SUB, "quorum slot %d, heartbeat timeout %u ms, fencing with %s", o.slot_nr,
			 o.hb_timeout_ms, o.fence_cmd ? o.fence_cmd : "the local fencer");
	tell_parent(&notify_fd, 0);

	loop_cfg = fuse_loop_cfg_create();
	if (loop_cfg == NULL) {
		log_err(SUB, "out of memory");
		goto out;
	}
	fuse_loop_cfg_set_clone_fd(loop_cfg, 0);
	/* a handler waits for its reply: enough threads to keep many requests in flight */
	fuse_loop_cfg_set_max_threads(loop_cfg, 64);
	/* and keep them: a thread made and ended for every burst costs more than it saves */
	fuse_loop_cfg_set_idle_threads(loop_cfg, 64);
	ret = fuse_session_loop_mt(se, loop_cfg);
	status = ret < 0 ? 1 : 0;
	log_info(SUB, "unmounting %s", o.mountpoint);
	/* nobody serves the mount any more: take it away before leaving the quorum */
	fuse_session_unmount(se);
	mounted = false;

out:
	rpc_client_destroy(fs.client);
	fs.client = NULL;
	if (agent != NULL)
		quorum_agent_shutdown(agent, (int)quorum_agent_hb_timeout(agent) + SHUTDOWN_SLACK_MS);
	server_destroy(server);
	quorum_agent_free(agent);
	if (udp_fd >= 0)
		close(udp_fd);
	if (loop_cfg != NULL)
		fuse_loop_cfg_destroy(loop_cfg);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se != NULL)
		fuse_session_destroy(se);
	u64map_destroy(fs.nodes);
	bd_close(fs.dev);
	tell_parent(&notify_fd, 1);
	mount_opts_free(&o);
	return status;
}
