/*
 * ops.c - the FUSE low-level operations.  Until the metadata server serves
 * files, the filesystem is an empty root directory whose extended
 * attributes show the quorum:
 *
 *   user.fusefs.quorum.status     the seed's status text (members)
 *   user.fusefs.quorum.json       the same as one JSON object
 *   user.fusefs.quorum.is_leader  0 or 1
 *   user.fusefs.server            the server in use per the blocks, greeted
 *   user.fusefs.rid               this mount's rid
 *   user.fusefs.counters          "name value" lines
 *   user.fusefs.quorum_heartbeat_timeout_ms   read, and set with setfattr
 *
 * Every handler ends in exactly one reply; errors are positive errnos to
 * libfuse.
 */
#include "fuse/mount.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

#define XATTR_MAX (64 * 1024)
#define ROOT_INO FUSE_ROOT_ID

enum xattr_id {
	XA_STATUS, XA_JSON, XA_IS_LEADER, XA_SERVER, XA_RID, XA_COUNTERS, XA_HB_TIMEOUT, XA_NR,
};

static const char *const xattr_names[XA_NR] = {
	[XA_STATUS] = "user.fusefs.quorum.status",
	[XA_JSON] = "user.fusefs.quorum.json",
	[XA_IS_LEADER] = "user.fusefs.quorum.is_leader",
	[XA_SERVER] = "user.fusefs.server",
	[XA_RID] = "user.fusefs.rid",
	[XA_COUNTERS] = "user.fusefs.counters",
	[XA_HB_TIMEOUT] = "user.fusefs.quorum_heartbeat_timeout_ms",
};

static struct fs_ctx *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int xattr_find(const char *name)
{
	for (int i = 0; i < XA_NR; i++)
		if (strcmp(name, xattr_names[i]) == 0)
			return i;
	return -1;
}

static void root_attr(struct fs_ctx *fs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ROOT_INO;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = FUSEFS_BLOCK_SIZE;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mounted;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	root_attr(ctx_of(req), &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)name;
	fuse_reply_err(req, parent == ROOT_INO ? ENOENT : ENOTDIR);
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static const char *const names[] = { ".", ".." };
	char buf[512];
	size_t used = 0;
	struct stat st;

	(void)fi;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	root_attr(ctx_of(req), &st);
	for (off_t i = off; i < 2; i++) {
		size_t n = fuse_add_direntry(req, buf + used, MIN(size, sizeof(buf)) - used, names[i],
					     &st, i + 1);

		if (used + n > MIN(size, sizeof(buf)))
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = { .f_bsize = FUSEFS_BLOCK_SIZE, .f_frsize = FUSEFS_BLOCK_SIZE,
			      .f_namemax = 255 };

	(void)ino;
	fuse_reply_statfs(req, &sv);
}

static void fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)mask;
	fuse_reply_err(req, ino == ROOT_INO ? 0 : ENOENT);
}

/* The text of one of our xattrs, into buf.  Its length or -errno. */
static int xattr_value(struct fs_ctx *fs, int id, char *buf, size_t len)
{
	struct quorum_snapshot *snap = NULL;
	mono_ns now = mono_now();
	int n;

	if (fs->agent != NULL && (id == XA_STATUS || id == XA_JSON || id == XA_IS_LEADER ||
				  id == XA_COUNTERS)) {
		snap = malloc(sizeof(*snap));
		if (snap == NULL)
			return -ENOMEM;
		quorum_agent_snapshot(fs->agent, snap);
	}
	switch (id) {
	case XA_STATUS:
		n = snap ? quorum_status_text(snap, now, buf, len) :
			   snprintf(buf, len, "quorum_slot_nr none\nrole client\n");
		break;
	case XA_JSON:
		n = snap ? quorum_status_json(snap, now, buf, len) :
			   snprintf(buf, len, "{\"slot\":null,\"rid\":\"%016" PRIx64 "\",\"role\":\"client\","
				    "\"is_leader\":false}\n", fs->rid);
		break;
	case XA_IS_LEADER:
		n = snprintf(buf, len, "%d", snap && snap->st.role == QROLE_LEADER);
		break;
	case XA_SERVER:
		n = fsclient_server_text(fs, buf, len);
		break;
	case XA_RID:
		n = snprintf(buf, len, "%016" PRIx64, fs->rid);
		break;
	case XA_COUNTERS:
		n = snap ? quorum_counters_text(snap, buf, len) :
			   snprintf(buf, len, "plain_client 1\n");
		break;
	case XA_HB_TIMEOUT:
		n = fs->agent ? snprintf(buf, len, "%u", quorum_agent_hb_timeout(fs->agent)) : -ENODATA;
		break;
	default:
		n = -ENODATA;
		break;
	}
	free(snap);
	return n;
}

/*
 * Our values change all the time, yet callers ask for the size and then
 * fetch: a value computed for a size query is kept for the same caller's
 * fetch (for up to a second), so both see one value.
 */
#define XCACHE_SLOTS 8

static struct {
	pthread_mutex_t lock;
	struct xcache_entry {
		pid_t pid;
		int id;
		mono_ns at;
		int len;
		char *buf;
	} e[XCACHE_SLOTS];
	int next;
} xcache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int xcache_take(pid_t pid, int id, char *buf)
{
	int n = -1;

	pthread_mutex_lock(&xcache.lock);
	for (int i = 0; i < XCACHE_SLOTS; i++) {
		struct xcache_entry *e = &xcache.e[i];

		if (e->buf && e->pid == pid && e->id == id && mono_now() - e->at < NSEC_PER_SEC) {
			memcpy(buf, e->buf, (size_t)e->len);
			n = e->len;
			free(e->buf);
			e->buf = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&xcache.lock);
	return n;
}

static void xcache_put(pid_t pid, int id, const char *buf, int len)
{
	struct xcache_entry *e;
	char *copy = malloc((size_t)len + 1);

	if (copy == NULL)
		return;
	memcpy(copy, buf, (size_t)len);
	pthread_mutex_lock(&xcache.lock);
	e = &xcache.e[xcache.next];
	xcache.next = (xcache.next + 1) % XCACHE_SLOTS;
	free(e->buf);
	*e = (struct xcache_entry){ .pid = pid, .id = id, .at = mono_now(), .len = len, .buf = copy };
	pthread_mutex_unlock(&xcache.lock);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	pid_t pid = fuse_req_ctx(req)->pid;
	int id = xattr_find(name);
	char *buf;
	int n;

	if (ino != ROOT_INO || id < 0) {
		fuse_reply_err(req, ino == ROOT_INO ? ENODATA : ENOENT);
		return;
	}
	buf = malloc(XATTR_MAX);
	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = size > 0 ? xcache_take(pid, id, buf) : -1;
	if (n < 0)
		n = xattr_value(ctx_of(req), id, buf, XATTR_MAX);
	if (n >= 0 && size == 0)
		xcache_put(pid, id, buf, n);
	if (n < 0)
		fuse_reply_err(req, -n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if ((size_t)n > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_ctx *fs = ctx_of(req);
	char buf[1024];
	size_t used = 0;

	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	for (int i = 0; i < XA_NR; i++) {
		size_t n = strlen(xattr_names[i]) + 1;

		if (i == XA_HB_TIMEOUT && fs->agent == NULL)
			continue;
		memcpy(buf + used, xattr_names[i], n);
		used += n;
	}
	if (size == 0)
		fuse_reply_xattr(req, used);
	else if (used > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, used);
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct fs_ctx *fs = ctx_of(req);
	char text[32];
	uint64_t ms;
	int id = xattr_find(name);

	(void)flags;
	if (ino != ROOT_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (id != XA_HB_TIMEOUT) {
		fuse_reply_err(req, id < 0 ? ENOTSUP : EPERM);
		return;
	}
	if (fs->agent == NULL) {
		fuse_reply_err(req, ENOTSUP); /* a plain client has no heartbeat timeout */
		return;
	}
	if (fuse_req_ctx(req)->uid != 0 && fuse_req_ctx(req)->uid != fs->uid) {
		fuse_reply_err(req, EPERM); /* with allow_other, not for every user */
		return;
	}
	while (size > 0 && (value[size - 1] == '\n' || value[size - 1] == '\0'))
		size--;
	if (size == 0 || size >= sizeof(text)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(text, value, size);
	text[size] = '\0';
	if (parse_u64(text, 0, UINT32_MAX, &ms) < 0 || quorum_agent_set_hb_timeout(fs->agent,
										    (uint32_t)ms) < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	log_info("fuse", "quorum_heartbeat_timeout_ms set to %" PRIu64, ms);
	fuse_reply_err(req, 0);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)name;
	fuse_reply_err(req, ino == ROOT_INO ? EPERM : ENOENT);
}

const struct fuse_lowlevel_ops fs_ops = {
	.lookup = fs_lookup,
	.getattr = fs_getattr,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.access = fs_access,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
};
