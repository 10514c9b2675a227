/*
 * wsim_main.c - fusefs-wsim: the whole system under the simulator.
 *
 * One seed is one run of a small cluster, deterministic and single
 * threaded: servers that are the product's own store (through its VFS),
 * executor (group commit), dispatch, filesystem logic and term gate, each
 * over its own view of one shared in-memory device with seeded faults
 * (blockdev/dev_mem.c); and clients that issue a random mix of operations
 * over a simulated network, resending what a lost connection took with it
 * as fuse/client.c does (the same request id; the oldest id still
 * outstanding; the open files named again in HOLDS after every greeting).
 * The leadership is the simulator's to give: it writes each new term's
 * ELECT into a quorum block, as an elected member's quorum agent would
 * (the election itself is fusefs-sim's).
 *
 * Faults: connections cut (their frames in flight lost), frames delayed and
 * reordered between connections, servers crashed between batches or at a
 * device call inside a commit or a checkpoint (unsynced writes lost, kept
 * or torn), servers paused while a new leader is elected and woken later
 * with requests to run (a stale leader: its store's lease check passes, as
 * in the window between that check and the write, so the term gate is all
 * that stands in its way), clean stops, and the grace's purge of orphans.
 *
 * Checks, at every step and at the end:
 *   - nothing acknowledged is lost: a model filesystem applies every write
 *     in the order the servers committed it; every reply a client gets
 *     must be the model's, and a commit whose outcome a crash left unknown
 *     is settled by what the next server finds on the device, which must
 *     be the model with or without it, and must keep every reply given;
 *   - nothing is applied twice: an operation resent after a failover is
 *     answered with its first result, never applied again;
 *   - linearizable reads: a LOOKUP or GETATTR answer matches the model at
 *     some commit between its send and its reply;
 *   - one writer per term: no server writes the device once a newer term's
 *     ELECT is there;
 *   - open files: a file a client holds open keeps its inode (unlinked or
 *     not) until the client lets it go, unless the grace of a new server
 *     ran out before the client named it again;
 *   - liveness: once the faults end, every outstanding call completes
 *     within a bound of steps;
 *   - at the end, the store holds exactly the model.
 *
 * Break modes plant the bugs the checks exist for: no-term-gate,
 * no-reply-cache, reply-before-commit, purge-open-orphans, no-resend.
 *
 *   fusefs-wsim [--seeds N] [--first S] [--seed S] [--trace] [--break MODE]
 *               [--steps N] [--quiet]
 *
 * Exit status: 0 when every seed held (or, with --break, when some seed
 * caught the planted bug); 1 otherwise, with the seed and a replay line.
 */
#include "blockdev/dev.h"
#include "common/common.h"
#include "common/prng.h"
#include "fuse/calls.h"
#include "fuse/holds.h"
#include "server/fs.h"
#include "server/service.h"
#include "server/store.h"
#include "tests/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEV_BLOCKS 8192     /* 32 MiB: the smallest device mkfs takes, and a little */
#define NCLI 3              /* clients */
#define INFLIGHT 3          /* calls each may have outstanding */
#define NNAMES 4            /* names in the root directory the operations use */
#define HOLDS_MAX 8         /* files a client holds open */
#define FDATA 64            /* bytes of each file the model keeps (writes stay inside) */
#define NSRV 24             /* server incarnations in one run at most */
#define INBOX_MAX 32        /* requests a server takes in one batch */
#define NMSG 256            /* frames in flight */
#define HIST 512            /* model versions kept for the read checks */
#define GRACE_STEPS 40      /* a new server's grace, in steps */
#define LIVENESS_STEPS 600  /* after the faults, every call completes within this */

enum brk { BRK_NONE, BRK_NO_TERM_GATE, BRK_NO_REPLY_CACHE, BRK_REPLY_BEFORE_COMMIT,
	   BRK_PURGE_OPEN, BRK_NO_RESEND, BRK_NR };
static const char *const brk_names[BRK_NR] = {
	[BRK_NONE] = "none", [BRK_NO_TERM_GATE] = "no-term-gate",
	[BRK_NO_REPLY_CACHE] = "no-reply-cache", [BRK_REPLY_BEFORE_COMMIT] = "reply-before-commit",
	[BRK_PURGE_OPEN] = "purge-open-orphans", [BRK_NO_RESEND] = "no-resend",
};

static struct {
	uint64_t seeds, first;
	bool one, trace, quiet;
	enum brk brk;
	uint32_t steps;
} opt = { .seeds = 1000, .first = 1, .steps = 400 };

/* ---- the model ---- */

enum kind { K_NONE, K_FILE, K_DIR };

struct mname {
	enum kind kind;
	uint64_t ino;
};

struct mfile {
	uint64_t ino;                /* 0: the slot is free */
	uint32_t nlink;              /* names (0: an orphan, kept while held) */
	uint64_t size;
	uint8_t data[FDATA];
};

#define MFILES 32

struct model {
	struct mname names[NNAMES];
	struct mfile files[MFILES];
};

/* ---- operations, calls and their results ---- */

enum wop { W_MKDIR, W_RMDIR, W_CREATE, W_UNLINK, W_RENAME, W_WRITE, W_RELEASE, W_LOOKUP,
	   W_GETATTR, W_NR };
static const char *const wop_names[W_NR] = { "mkdir", "rmdir", "create", "unlink", "rename",
					     "write", "release", "lookup", "getattr" };

struct result {
	int status;                  /* 0 or a positive errno */
	uint64_t ino;                /* MKDIR, CREATE, LOOKUP, GETATTR */
	enum kind kind;              /* LOOKUP */
	uint64_t size;               /* GETATTR, WRITE */
};

struct call {
	bool used;
	uint64_t lid;                /* the logical operation (what "applied once" counts) */
	uint64_t req_id;             /* on the wire; the same when resent (calls.h gives it) */
	uint32_t slot;               /* its slot in the client's calls table */
	enum wop op;
	int a, b;                    /* names */
	uint64_t ino, fh;            /* WRITE, RELEASE, GETATTR: the held file; CREATE: its fh */
	uint64_t off;
	uint32_t len;
	uint8_t byte;
	uint64_t sent_ver;           /* the model version when it was first sent */
};

/* A logical write operation's fate, as the servers' commits decided it. */
struct fate {
	uint64_t lid;
	bool applied;                /* committed (or settled so) */
	bool acked_ok;               /* and the reply said it succeeded */
	bool acked;                  /* its client got a reply */
	struct result res;           /* the committed result */
};

struct hold_truth {
	uint64_t fh;                 /* 0: free */
	uint64_t ino;                /* the file (once its CREATE committed) */
	bool known;                  /* the client got the CREATE's reply: it names it in HOLDS */
	int named_srv;               /* the last server that took it (CREATE or HOLDS), or -1 */
	bool void_;                  /* a grace's purge ran before it was named to that server */
};

struct client {
	uint64_t rid;
	uint64_t next_lid, next_fh;
	struct calls ct;             /* its calls as client.c keeps them: states, ids, oldest */
	struct call calls[INFLIGHT];
	int srv;                     /* the server connected to, or -1 */
	uint64_t conn;               /* the connection's number (frames of older ones are lost) */
	struct holds table;          /* its handles as client.c keeps them, named in HOLDS */
	bool gone;                   /* a server declared it gone: every call fails, for good */
	uint64_t cut_off_until;      /* partitioned from every server until this step */
	struct hold_truth holds[HOLDS_MAX]; /* the checker's: what the servers did with them */
	struct fate *fates;          /* by the number in each logical operation's id (lid) */
	uint32_t capfates;
};

/* ---- servers ---- */

struct wdev;

struct server {
	bool alive;                  /* its process runs (paused or not) */
	bool paused;
	uint64_t term;
	int slot;
	struct wdev *dev;
	struct store *st;
	struct exec *ex;
	struct svc_stats *stats;
	uint64_t started;            /* the step it began serving at */
	bool purged;                 /* its grace's purge ran */
	uint64_t away_since[NCLI];   /* a client it served lost its connection then (0: it did not) */
	/* the requests delivered and not yet run */
	struct wreq *inbox[INBOX_MAX];
	uint32_t ninbox;
};

/* A request as a server holds it: the service's request and the memory it points into. */
struct wreq {
	struct svc_req sr;
	int cli;
	uint64_t conn;
	struct call call;            /* as sent */
	union rpc_req_fixed fixed;
	char name1[8], name2[8];
	uint8_t data[FDATA];
	struct rpc_hold holds[HOLDS_MAX];
};

/* A frame in flight: a request (or HOLDS) to a server, or a reply to a client. */
struct msg {
	bool used;
	bool to_server;
	int cli, srv;
	uint64_t conn;
	uint64_t seq;                /* order on its connection (TCP keeps it) */
	struct call call;            /* to_server: the call (or op -1: HOLDS) */
	bool holds;
	uint64_t oldest;             /* to_server: the oldest id its client still waited for */
	struct result res;           /* to a client */
	uint64_t req_id;
};

struct world {
	uint64_t seed, rng;
	uint64_t step;
	struct bd_dev *mem;          /* the one device */
	struct bd_super super;
	uint64_t max_term;           /* the newest ELECT written */
	struct server srv[NSRV];
	int nsrv;
	int leader;                  /* the server clients should reach, or -1 */
	struct client cli[NCLI];
	struct msg msgs[NMSG];
	uint64_t msg_seq;
	uint64_t conn_seq;
	struct model m;
	uint64_t ver;                /* commits applied to the model */
	struct model hist[HIST];     /* the model at versions ver-HIST+1..ver */
	/* a batch whose commit a crash left unknown, to settle at the next start */
	struct wreq *unsure[INBOX_MAX];
	uint32_t nunsure;
	int unsure_srv;              /* the server whose commit it was */
	int applying;                /* the server whose commit the model is applying */
	bool faults;                 /* faults still come */
	char violation[512];
	uint64_t stats_commits, stats_failovers, stats_crashes, stats_unsure, stats_replays;
};

static void trace(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct world *w, const char *fmt, ...)
{
	va_list ap;

	if (!opt.trace)
		return;
	printf("[%4" PRIu64 "] ", w->step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void violate(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violate(struct world *w, const char *fmt, ...)
{
	va_list ap;

	if (w->violation[0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->violation, sizeof(w->violation), fmt, ap);
	va_end(ap);
	trace(w, "VIOLATION: %s", w->violation);
}

static uint64_t rnd(struct world *w, uint64_t n)
{
	return prng_below(&w->rng, n);
}

/* ---- the device each server sees: writes checked against the newest term ---- */

struct wdev {
	struct bd_dev base;
	struct world *w;
	int srv;
};

static int wdev_read(struct bd_dev *d, uint64_t blkno, void *buf, unsigned n)
{
	return bd_read(((struct wdev *)d)->w->mem, blkno, buf, n);
}

static int wdev_write(struct bd_dev *d, uint64_t blkno, const void *buf, unsigned n,
		      unsigned flags)
{
	struct wdev *v = (struct wdev *)d;
	struct server *s = &v->w->srv[v->srv];

	if (v->w->max_term > s->term)
		violate(v->w, "one writer per term: the server of term %" PRIu64 " wrote block %" PRIu64
			" after term %" PRIu64 " was elected", s->term, blkno, v->w->max_term);
	return bd_write(v->w->mem, blkno, buf, n, flags);
}

static int wdev_flush(struct bd_dev *d)
{
	return bd_flush(((struct wdev *)d)->w->mem);
}

static void wdev_close(struct bd_dev *d)
{
	free(d);
}

static const struct bd_dev_ops wdev_ops = { .read = wdev_read, .write = wdev_write,
					    .flush = wdev_flush, .close = wdev_close };

/* ---- the model's rules ---- */

static struct mfile *mfile(struct model *m, uint64_t ino)
{
	for (int i = 0; i < MFILES; i++)
		if (m->files[i].ino == ino && ino != 0)
			return &m->files[i];
	return NULL;
}

static struct mfile *mfile_new(struct model *m, uint64_t ino)
{
	for (int i = 0; i < MFILES; i++)
		if (m->files[i].ino == 0) {
			m->files[i] = (struct mfile){ .ino = ino, .nlink = 1 };
			return &m->files[i];
		}
	return NULL;
}

/*
 * Does server si keep ino as an orphan at its last unlink?  In its start's
 * grace always (a mount may hold it without having named it yet); after,
 * while a handle named to it holds the file.
 */
static bool kept(const struct world *w, int si, uint64_t ino)
{
	if (si >= 0 && !w->srv[si].purged)
		return true;
	for (int c = 0; c < NCLI; c++)
		for (int h = 0; h < HOLDS_MAX; h++) {
			const struct hold_truth *ho = &w->cli[c].holds[h];

			if (ho->fh && ho->ino == ino && ino != 0 && !ho->void_ && ho->named_srv == si)
				return true;
		}
	return false;
}

/* A name loses its file: the file goes, unless the server keeps it as an orphan. */
static void unname(struct world *w, struct model *m, int n)
{
	struct mfile *f;

	if (m->names[n].kind == K_FILE && (f = mfile(m, m->names[n].ino)) != NULL) {
		f->nlink--;
		if (f->nlink == 0 && !kept(w, w->applying, f->ino))
			f->ino = 0;
	}
	m->names[n] = (struct mname){ K_NONE, 0 };
}

/*
 * Apply a write operation to m as the filesystem must: its result.  For
 * MKDIR and CREATE the new inode's number is the server's (got), checked to
 * be new.
 */
static struct result model_apply(struct world *w, struct model *m, const struct call *k,
				 const struct result *got, bool check_ino)
{
	struct result r = { 0 };
	struct mname *a = &m->names[k->a], *b = &m->names[k->b];
	struct mfile *f;

	switch (k->op) {
	case W_MKDIR:
	case W_CREATE:
		if (a->kind != K_NONE) {
			r.status = EEXIST;
			break;
		}
		r.ino = got ? got->ino : 0;
		if (!check_ino || got->status != 0)
			got = NULL;
		if (got && (mfile(m, got->ino) != NULL || got->ino == FS_ROOT_INO))
			violate(w, "%s %d got inode %" PRIu64 ", which is in use", wop_names[k->op],
				k->a, got->ino);
		for (int i = 0; got && i < NNAMES; i++)
			if (m->names[i].kind != K_NONE && m->names[i].ino == got->ino)
				violate(w, "%s %d got inode %" PRIu64 ", name %d's", wop_names[k->op],
					k->a, got->ino, i);
		*a = (struct mname){ k->op == W_MKDIR ? K_DIR : K_FILE, r.ino };
		if (k->op == W_CREATE && mfile_new(m, r.ino) == NULL)
			violate(w, "the model's file table is full");
		break;
	case W_RMDIR:
		if (a->kind == K_NONE)
			r.status = ENOENT;
		else if (a->kind != K_DIR)
			r.status = ENOTDIR;
		else
			*a = (struct mname){ K_NONE, 0 };
		break;
	case W_UNLINK:
		if (a->kind == K_NONE)
			r.status = ENOENT;
		else if (a->kind == K_DIR)
			r.status = EISDIR;
		else
			unname(w, m, k->a);
		break;
	case W_RENAME:
		if (a->kind == K_NONE) {
			r.status = ENOENT;
		} else if (k->a == k->b) {
			r.status = 0;
		} else if (a->kind == K_DIR && b->kind == K_FILE) {
			r.status = ENOTDIR;
		} else if (a->kind == K_FILE && b->kind == K_DIR) {
			r.status = EISDIR;
		} else {
			struct mname moved = *a;

			if (b->kind == K_FILE)
				unname(w, m, k->b);
			*b = moved;
			*a = (struct mname){ K_NONE, 0 };
		}
		break;
	case W_WRITE:
		f = mfile(m, k->ino);
		if (f == NULL) {
			r.status = ENOENT; /* (never asked: a client writes only what it holds) */
			break;
		}
		memset(f->data + k->off, k->byte, k->len);
		f->size = MAX(f->size, k->off + k->len);
		r.size = k->len;
		break;
	default:
		break;
	}
	return r;
}

/* What a read must answer against m. */
static struct result model_read(const struct model *m, const struct call *k)
{
	struct result r = { 0 };
	const struct mfile *f;

	if (k->op == W_LOOKUP) {
		if (m->names[k->a].kind == K_NONE)
			r.status = ENOENT;
		r.kind = m->names[k->a].kind;
		r.ino = m->names[k->a].ino;
	} else { /* GETATTR of a held file */
		f = mfile((struct model *)m, k->ino);
		if (f == NULL)
			r.status = ENOENT;
		else
			r.size = f->size;
	}
	return r;
}

static bool same_result(const struct result *a, const struct result *b, enum wop op)
{
	if (a->status != b->status)
		return false;
	if (a->status != 0)
		return true;
	switch (op) {
	case W_MKDIR:
	case W_CREATE:
		return a->ino == b->ino;
	case W_WRITE:
		return a->size == b->size;
	case W_LOOKUP:
		return a->kind == b->kind && a->ino == b->ino;
	case W_GETATTR:
		return a->size == b->size;
	default:
		return true;
	}
}

static void result_text(const struct result *r, char *buf, size_t len)
{
	if (r->status)
		snprintf(buf, len, "%s", strerror(r->status));
	else
		snprintf(buf, len, "ok ino %" PRIu64 " kind %d size %" PRIu64, r->ino, (int)r->kind,
			 r->size);
}

/* A logical operation's id: its client, and its number there (from 1). */
static struct client *lid_client(struct world *w, uint64_t lid, uint32_t *n)
{
	*n = (uint32_t)lid;
	return &w->cli[lid >> 32];
}

static struct fate *fate_of(struct world *w, uint64_t lid)
{
	uint32_t n;
	struct client *c = lid_client(w, lid, &n);

	return n < c->capfates && c->fates[n].lid == lid ? &c->fates[n] : NULL;
}

static struct fate *fate_add(struct world *w, uint64_t lid)
{
	static struct fate spare; /* (out of memory: the run is over anyway) */
	uint32_t n;
	struct client *c = lid_client(w, lid, &n);

	if (n >= c->capfates) {
		uint32_t cap = MAX(n + 1, c->capfates ? c->capfates * 2 : 256);
		struct fate *bigger = realloc(c->fates, cap * sizeof(*bigger));

		if (bigger == NULL) {
			violate(w, "out of memory");
			return &spare;
		}
		memset(bigger + c->capfates, 0, (cap - c->capfates) * sizeof(*bigger));
		c->fates = bigger;
		c->capfates = cap;
	}
	if (c->fates[n].lid != lid)
		c->fates[n] = (struct fate){ .lid = lid };
	return &c->fates[n];
}

static void model_commit_version(struct world *w)
{
	w->ver++;
	w->hist[w->ver % HIST] = w->m;
}

/* ---- building a request as a client sends it ---- */

static bool op_writes(enum wop op)
{
	return op <= W_WRITE;
}

static void build_req(struct world *w, struct wreq *q, int cli, const struct call *k,
		      uint64_t oldest)
{
	struct rpc_req *r = &q->sr.req;
	struct client *c = &w->cli[cli];

	memset(q, 0, sizeof(*q));
	q->cli = cli;
	q->conn = c->conn;
	q->call = *k;
	q->sr.kind = SVC_REQ_CALL;
	q->sr.rid = c->rid;
	r->req_id = k->req_id;
	r->client_rid = c->rid;
	r->oldest_req_id = oldest;
	r->fixed = &q->fixed;
	snprintf(q->name1, sizeof(q->name1), "n%d", k->a);
	snprintf(q->name2, sizeof(q->name2), "n%d", k->b);
	switch (k->op) {
	case W_MKDIR:
	case W_CREATE:
		r->op = k->op == W_MKDIR ? RPC_MKDIR : RPC_CREATE;
		q->fixed.mkdir = (struct rpc_make){
			.parent = cpu_to_le64(FS_ROOT_INO),
			.mode = cpu_to_le32(k->op == W_MKDIR ? (S_IFDIR | 0755) : (S_IFREG | 0644)),
			.flags = cpu_to_le32(k->op == W_CREATE ? (O_CREAT | O_EXCL | O_RDWR) : 0),
			.fh = cpu_to_le64(k->op == W_CREATE ? k->fh : 0) };
		r->tail1 = (const uint8_t *)q->name1;
		r->tail1_len = (uint32_t)strlen(q->name1);
		break;
	case W_RMDIR:
	case W_UNLINK:
	case W_LOOKUP:
		r->op = k->op == W_RMDIR ? RPC_RMDIR : k->op == W_UNLINK ? RPC_UNLINK : RPC_LOOKUP;
		q->fixed.lookup = (struct rpc_ino){ .ino = cpu_to_le64(FS_ROOT_INO) };
		r->tail1 = (const uint8_t *)q->name1;
		r->tail1_len = (uint32_t)strlen(q->name1);
		break;
	case W_RENAME:
		r->op = RPC_RENAME;
		q->fixed.rename = (struct rpc_rename){ .parent = cpu_to_le64(FS_ROOT_INO),
						       .newparent = cpu_to_le64(FS_ROOT_INO) };
		r->tail1 = (const uint8_t *)q->name1;
		r->tail1_len = (uint32_t)strlen(q->name1);
		r->tail2 = (const uint8_t *)q->name2;
		r->tail2_len = (uint32_t)strlen(q->name2);
		break;
	case W_WRITE:
		r->op = RPC_WRITE;
		memset(q->data, k->byte, k->len);
		q->fixed.write = (struct rpc_io){ .ino = cpu_to_le64(k->ino), .fh = cpu_to_le64(k->fh),
						  .offset = cpu_to_le64(k->off),
						  .size = cpu_to_le32(k->len),
						  .flags = cpu_to_le32(O_RDWR) };
		r->tail1 = q->data;
		r->tail1_len = k->len;
		break;
	case W_RELEASE:
		r->op = RPC_RELEASE;
		q->fixed.release = (struct rpc_release){ .ino = cpu_to_le64(k->ino),
							 .fh = cpu_to_le64(k->fh) };
		break;
	case W_GETATTR:
		r->op = RPC_GETATTR;
		q->fixed.getattr = (struct rpc_ino){ .ino = cpu_to_le64(k->ino) };
		break;
	default:
		break;
	}
}

/* The result a server's reply carries. */
static struct result reply_result(const struct wreq *q)
{
	const struct svc_reply *p = &q->sr.reply;
	struct result r = { .status = (int)p->status };

	if (p->status != 0)
		return r;
	switch (q->call.op) {
	case W_MKDIR:
	case W_LOOKUP:
		r.ino = le64_to_cpu(p->fixed.lookup.attr.ino);
		r.kind = S_ISDIR(le32_to_cpu(p->fixed.lookup.attr.mode)) ? K_DIR : K_FILE;
		break;
	case W_CREATE:
		r.ino = le64_to_cpu(p->fixed.create.entry.attr.ino);
		break;
	case W_WRITE:
		r.size = le32_to_cpu(p->fixed.write.size);
		break;
	case W_GETATTR:
		r.size = le64_to_cpu(p->fixed.getattr.size);
		break;
	default:
		break;
	}
	return r;
}

/* ---- the network ---- */

static struct msg *msg_new(struct world *w)
{
	for (int i = 0; i < NMSG; i++)
		if (!w->msgs[i].used) {
			memset(&w->msgs[i], 0, sizeof(w->msgs[i]));
			w->msgs[i].used = true;
			w->msgs[i].seq = ++w->msg_seq;
			return &w->msgs[i];
		}
	return NULL;
}

static void send_call(struct world *w, int ci, struct call *k)
{
	struct client *c = &w->cli[ci];
	struct msg *m;

	if (c->srv < 0 || c->ct.slot[k->slot].state != CALL_WAITING)
		return;
	m = msg_new(w);
	if (m == NULL)
		return; /* (the network is full: it goes with the next connection) */
	m->to_server = true;
	m->cli = ci;
	m->srv = c->srv;
	m->conn = c->conn;
	m->oldest = calls_sent(&c->ct, k->slot, c->conn);
	m->call = *k;
	m->req_id = k->req_id;
	trace(w, "c%d sends %s #%" PRIu64 " (op %" PRIu64 ", ino %" PRIu64 ") to s%d", ci,
	      wop_names[k->op], k->req_id, k->lid, k->ino, c->srv);
}

/* The connection of client ci is lost: its frames in flight with it. */
static void cut(struct world *w, int ci)
{
	struct client *c = &w->cli[ci];

	if (c->srv < 0)
		return;
	trace(w, "c%d's connection to s%d is cut", ci, c->srv);
	if (w->srv[c->srv].alive && w->srv[c->srv].away_since[ci] == 0)
		w->srv[c->srv].away_since[ci] = w->step; /* (its grace runs from now) */
	for (int i = 0; i < NMSG; i++)
		if (w->msgs[i].used && w->msgs[i].cli == ci && w->msgs[i].conn == c->conn)
			w->msgs[i].used = false;
	for (int i = 0; i < INFLIGHT; i++) { /* (sent again with the same ids, as client.c does) */
		struct call *k = &c->calls[i];
		enum call_state to;

		if (!k->used)
			continue;
		to = calls_after_loss(&c->ct, k->slot, c->conn);
		if (to != c->ct.slot[k->slot].state)
			calls_set(&c->ct, k->slot, to);
	}
	c->srv = -1;
}

/*
 * A server answered client ci's greeting GONE: it was away past its grace
 * holding open files, and was fenced.  Every call fails with EIO, for good
 * (what they did may or may not be on the device: they were never
 * acknowledged), and it holds nothing any more.
 */
static void client_gone(struct world *w, int ci)
{
	struct client *c = &w->cli[ci];

	trace(w, "c%d is gone: every call fails from now on", ci);
	c->gone = true;
	for (int i = 0; i < INFLIGHT; i++)
		c->calls[i].used = false;
	calls_init(&c->ct);
	for (int h = 0; h < HOLDS_MAX; h++)
		c->holds[h].void_ = true;
}

/* Client ci greets the leader: named holds first, then every call again (same ids). */
static void connect_client(struct world *w, int ci)
{
	struct client *c = &w->cli[ci];
	struct server *s;
	struct msg *m;

	if (c->srv >= 0 && c->srv == w->leader) { /* connected: what did not go yet goes */
		for (int i = 0; i < INFLIGHT; i++)
			if (c->calls[i].used)
				send_call(w, ci, &c->calls[i]);
		return;
	}
	if (c->srv >= 0) /* (its watcher saw a newer server in the quorum blocks) */
		cut(w, ci);
	if (w->leader < 0 || c->gone || w->step < c->cut_off_until)
		return;
	s = &w->srv[w->leader];
	if (!s->alive || s->paused)
		return;
	if (exec_mount_was_gone(s->ex, c->rid)) { /* the greeting says GONE */
		client_gone(w, ci);
		return;
	}
	s->away_since[ci] = 0;
	c->srv = w->leader;
	c->conn = ++w->conn_seq;
	trace(w, "c%d connects to s%d (term %" PRIu64 ")", ci, w->leader, s->term);
	m = msg_new(w);
	if (m != NULL) {
		m->to_server = true;
		m->holds = true;
		m->cli = ci;
		m->srv = c->srv;
		m->conn = c->conn;
	}
	for (int i = 0; i < INFLIGHT; i++) {
		struct call *k = &c->calls[i];

		if (!k->used)
			continue;
		if (opt.brk == BRK_NO_RESEND) { /* the planted bug: a new id for the same call */
			calls_set(&c->ct, k->slot, CALL_FREE);
			k->slot = (uint32_t)calls_take(&c->ct);
			k->req_id = c->ct.slot[k->slot].req_id;
		}
		send_call(w, ci, k);
	}
}

/* ---- servers ---- */

static void fs_clock(void *arg, struct fs_time *t)
{
	struct world *w = arg;

	*t = (struct fs_time){ 1700000000 + (int64_t)w->step, (uint32_t)(w->step % 1000) * 1000 };
}

/* The executor's lease: true while the server is the newest (a paused one is not). */
static bool lease_exec(void *arg)
{
	struct server *s = arg;

	return s->alive && !s->paused;
}

/*
 * The store's lease check, before each device write: it passes for a stale
 * server too (the window between the check and the write), so the term
 * gate alone must stop it.
 */
static bool lease_store(void *arg)
{
	return ((struct server *)arg)->alive;
}

static void server_stop(struct world *w, int si, bool abandon)
{
	struct server *s = &w->srv[si];

	if (!s->alive)
		return;
	for (uint32_t i = 0; i < s->ninbox; i++)
		free(s->inbox[i]);
	s->ninbox = 0;
	exec_destroy(s->ex);
	s->ex = NULL;
	if (abandon)
		store_abandon(s->st);
	else
		store_close(s->st);
	s->st = NULL;
	bd_close(&s->dev->base);
	s->dev = NULL;
	free(s->stats);
	s->stats = NULL;
	s->alive = false;
	s->paused = false;
	for (int c = 0; c < NCLI; c++)
		if (w->cli[c].srv == si)
			cut(w, c);
	if (w->leader == si)
		w->leader = -1;
}

/* Read through server si what the store holds of the names and the model's files. */
static int dump(struct world *w, int si, struct model *out)
{
	struct server *s = &w->srv[si];
	struct wreq *q = calloc(1, sizeof(*q));
	struct svc_req *one;
	bool rel;

	if (q == NULL)
		return -ENOMEM;
	memset(out, 0, sizeof(*out));
	one = &q->sr;
	for (int n = 0; n < NNAMES; n++) {
		struct call k = { .op = W_LOOKUP, .a = n, .req_id = 1 };
		struct result r;

		build_req(w, q, 0, &k, 1);
		q->sr.req.client_rid = q->sr.rid = 0xd0d0;
		exec_reads(s->ex, &one, 1, &rel);
		r = reply_result(q);
		free(q->sr.reply.tail);
		if (r.status == 0)
			out->names[n] = (struct mname){ r.kind, r.ino };
		else if (r.status != ENOENT) {
			free(q);
			return -(int)r.status;
		}
	}
	for (int i = 0; i < MFILES; i++) {
		/* the sizes of every file the model knows, and of what the names hold */
		uint64_t ino = w->m.files[i].ino;
		struct call k = { .op = W_GETATTR, .req_id = 1 };
		struct result r;

		if (ino == 0)
			continue;
		k.ino = ino;
		build_req(w, q, 0, &k, 1);
		q->sr.req.client_rid = q->sr.rid = 0xd0d0;
		exec_reads(s->ex, &one, 1, &rel);
		r = reply_result(q);
		if (r.status == 0) {
			struct mfile *f = &out->files[i];

			f->ino = ino;
			f->size = r.size;
		}
	}
	free(q);
	return 0;
}

/* Does what the store holds (d) agree with m: names, and the sizes of m's files? */
static bool agrees(const struct model *m, const struct model *d)
{
	for (int n = 0; n < NNAMES; n++) {
		if (m->names[n].kind != d->names[n].kind)
			return false;
		if (m->names[n].ino != 0 && m->names[n].ino != d->names[n].ino)
			return false;
	}
	for (int i = 0; i < MFILES; i++) {
		const struct mfile *f = &m->files[i];

		if (f->ino == 0)
			continue;
		for (int j = 0; j < MFILES; j++)
			if (d->files[j].ino == f->ino) {
				if (d->files[j].size != f->size)
					return false;
				break;
			}
	}
	return true;
}

/* A CREATE committed on server si (or was answered again): its handle holds the file. */
static void created(struct world *w, int cli, int si, const struct call *k, const struct result *r)
{
	struct client *c = &w->cli[cli];

	for (int h = 0; h < HOLDS_MAX; h++) {
		struct hold_truth *ho = &c->holds[h];

		if (ho->fh != k->fh)
			continue;
		if (r->status == 0) { /* (a failure is the client's to see: a resend may yet make it) */
			ho->ino = r->ino;
			ho->named_srv = si;
		}
		return;
	}
}

/*
 * When the names and sizes look the same with the unknown commit and
 * without it (say a mkdir and an rmdir of one name): did it commit?  Its
 * successful writes' replies are kept in the store in the same
 * transaction (the replies table), so they tell; a batch of failures
 * changed nothing and kept nothing, and is as good as not there.
 */
static bool replies_kept(struct world *w, int si, const struct result *got, const bool *fresh)
{
	struct fs_hooks hooks = { 0 };
	struct fs *fs;
	bool kept = false;

	if (fs_attach(store_db(w->srv[si].st), &hooks, &fs) < 0) {
		violate(w, "the new server's store cannot be read");
		return false;
	}
	for (uint32_t i = 0; i < w->nunsure && !kept; i++) {
		union rpc_reply_fixed fixed;
		uint32_t status;
		size_t len;
		struct wreq *q = w->unsure[i];

		if (fresh[i] && got[i].status == 0 &&
		    fs_reply_get(fs, w->cli[q->cli].rid, q->call.req_id, &status, &fixed, sizeof(fixed),
				 &len) == 0)
			kept = true;
	}
	fs_detach(fs);
	return kept;
}

/*
 * A batch whose commit a crash left unknown: the new server's store has it
 * or not, whole.  Settle it against what s holds; apply it to the model
 * when it is there.
 */
static void settle(struct world *w, int si)
{
	struct model d, with = w->m;
	struct result got[INBOX_MAX];
	bool fresh[INBOX_MAX] = { false }; /* (not a resend of what committed before) */
	bool with_ok, without_ok;

	if (w->nunsure == 0)
		return;
	w->applying = w->unsure_srv;
	if (dump(w, si, &d) < 0) {
		violate(w, "the new server could not read its store");
		return;
	}
	for (uint32_t i = 0; i < w->nunsure; i++) {
		struct wreq *q = w->unsure[i];
		struct fate *f = fate_of(w, q->call.lid);
		struct result seen = { 0 };

		if (f && f->applied) { /* a resend: it changes nothing */
			got[i] = f->res;
			continue;
		}
		fresh[i] = true;
		/* (its inode, if it made one, is what the store shows under the name now) */
		seen.ino = d.names[q->call.a].ino;
		got[i] = model_apply(w, &with, &q->call, &seen, false);
		trace(w, "  unknown: c%d's %s n%d n%d (op %" PRIu64 "): status %d if it is there", q->cli,
		      wop_names[q->call.op], q->call.a, q->call.b, q->call.lid, got[i].status);
	}
	without_ok = agrees(&w->m, &d);
	with_ok = agrees(&with, &d);
	if (with_ok && without_ok) /* (the names look the same either way: the kept replies tell) */
		with_ok = replies_kept(w, si, got, fresh);
	trace(w, "s%d settles the unknown commit of %u writes: %s", si, w->nunsure,
	      with_ok ? "it is there" : without_ok ? "it is not there" : "NEITHER");
	if (with_ok) {
		w->m = with;
		for (uint32_t i = 0; i < w->nunsure; i++) {
			struct fate *f = fate_add(w, w->unsure[i]->call.lid);

			if (!f->applied && got[i].status == 0) {
				f->applied = true;
				f->res = got[i];
				if (w->unsure[i]->call.op == W_CREATE)
					created(w, w->unsure[i]->cli, -1, &w->unsure[i]->call, &f->res);
			}
		}
		model_commit_version(w);
	} else if (!without_ok) {
		violate(w, "after a crash the store is neither the model with the unknown commit of "
			"%u writes nor without it (an acknowledged change lost, or half a batch)",
			w->nunsure);
	} else {
		for (uint32_t i = 0; i < w->nunsure; i++) {
			struct fate *f = fate_of(w, w->unsure[i]->call.lid);

			if (f && f->acked && f->acked_ok && !f->applied)
				violate(w, "c%d's %s (op %" PRIu64 ") was acknowledged but is not on "
					"the device", w->unsure[i]->cli, wop_names[w->unsure[i]->call.op],
					f->lid);
		}
	}
	for (uint32_t i = 0; i < w->nunsure; i++)
		free(w->unsure[i]);
	w->nunsure = 0;
}

/* A new leader in a new term: its ELECT on the device, its store opened (recovered). */
static void elect(struct world *w)
{
	struct server *s;
	struct wdev *v;
	struct store_config sc = { .super = &w->super, .lease_ok = lease_store };
	struct exec_config ec = { .lease_ok = lease_exec, .now = fs_clock, .now_arg = w };
	char why[256];
	int si = w->nsrv, ret;

	if (si == NSRV) {
		violate(w, "out of server slots (the simulator's own limit)");
		return;
	}
	if (si >= NSRV - 4)
		w->faults = false; /* (enough failovers for one run) */
	s = &w->srv[si];
	memset(s, 0, sizeof(*s));
	s->term = ++w->max_term;
	s->slot = (int)rnd(w, 3);
	harness_poke_elect(w->mem, w->super.fsid, s->slot, s->term);
	v = calloc(1, sizeof(*v));
	s->stats = calloc(1, sizeof(*s->stats));
	if (v == NULL || s->stats == NULL) {
		free(v);
		violate(w, "out of memory");
		return;
	}
	v->base = *w->mem;
	v->base.ops = &wdev_ops;
	v->w = w;
	v->srv = si;
	s->dev = v;
	sc.dev = &v->base;
	sc.term = opt.brk == BRK_NO_TERM_GATE ? 0 : s->term;
	sc.lease_arg = s;
	ec.lease_arg = s;
	ec.stats = s->stats;
	ec.breaks = opt.brk == BRK_NO_REPLY_CACHE ? SVC_BREAK_NO_REPLY_CACHE :
		    opt.brk == BRK_PURGE_OPEN ? SVC_BREAK_PURGE_OPEN : 0;
	w->nsrv++;
	ret = store_open(&sc, &s->st, why, sizeof(why));
	if (ret == 0) {
		ec.store = s->st;
		ret = exec_create(&ec, &s->ex);
		if (ret < 0)
			snprintf(why, sizeof(why), "exec_create: %s", errstr(ret));
	}
	if (ret < 0) {
		violate(w, "the server of term %" PRIu64 " cannot open the store: %s", s->term, why);
		if (s->st)
			store_abandon(s->st);
		bd_close(&v->base);
		free(s->stats);
		s->dev = NULL;
		s->st = NULL;
		s->stats = NULL;
		return;
	}
	s->alive = true;
	s->started = w->step;
	w->leader = si;
	w->stats_failovers++;
	trace(w, "s%d serves term %" PRIu64 " (slot %d)", si, s->term, s->slot);
	settle(w, si);
}

/* The replies of a batch go out (to connections still there). */
static void reply(struct world *w, struct wreq *q)
{
	struct client *c = &w->cli[q->cli];
	struct msg *m;

	if (c->srv < 0 || c->conn != q->conn)
		return;
	m = msg_new(w);
	if (m == NULL) { /* the network drops it: the connection goes */
		cut(w, q->cli);
		return;
	}
	m->cli = q->cli;
	m->conn = q->conn;
	m->call = q->call;
	m->req_id = q->call.req_id;
	m->res = reply_result(q);
}

/*
 * The writes of a batch committed in this order: the model applies them,
 * and each reply the server made must be the model's (a resend's, the
 * first result).
 */
static void commit_to_model(struct world *w, int si, struct wreq **wr, uint32_t n)
{
	w->applying = si;
	for (uint32_t i = 0; i < n; i++) {
		struct wreq *q = wr[i];
		struct result got = reply_result(q), want;
		struct fate *f = fate_add(w, q->call.lid);
		char a[96], b[96];

		bool replay = f->applied;

		if (f->applied) {
			want = f->res;
			w->stats_replays++;
		} else {
			/*
			 * (A failure changes nothing and the server keeps no reply
			 * for it: a resend is judged afresh, as if first sent then.)
			 */
			want = model_apply(w, &w->m, &q->call, &got, true);
			f->applied = want.status == 0;
			f->res = want;
		}
		if (q->call.op == W_CREATE)
			created(w, q->cli, si, &q->call, &f->res);
		if (opt.trace) {
			char txt[96];

			result_text(&got, txt, sizeof(txt));
			trace(w, "  s%d commits c%d's %s n%d n%d (op %" PRIu64 ", #%" PRIu64 "): %s%s", si,
			      q->cli, wop_names[q->call.op], q->call.a, q->call.b, q->call.lid,
			      q->call.req_id, txt, replay ? " (answered again)" : "");
		}
		if (!same_result(&got, &want, q->call.op)) {
			result_text(&got, a, sizeof(a));
			result_text(&want, b, sizeof(b));
			violate(w, "c%d's %s n%d n%d (op %" PRIu64 ", #%" PRIu64 ") got \"%s\", the "
				"model says \"%s\"%s", q->cli, wop_names[q->call.op], q->call.a, q->call.b,
				q->call.lid, q->call.req_id, a, b,
				want.status == 0 && f->res.status == 0 && got.status == EEXIST ?
					" (applied twice?)" : "");
		}
	}
	model_commit_version(w);
}

static void client_reply(struct world *w, int ci, uint64_t conn, uint64_t req_id,
			 const struct result *res);

/*
 * A mark (kind, about rid) run by server si in a commit of its own: true,
 * or false when the commit failed and si is gone (a new leader elected).
 */
static bool run_mark(struct world *w, int si, enum svc_req_kind kind, uint64_t rid, bool fenced)
{
	struct wreq *q = calloc(1, sizeof(*q));
	struct svc_req *one;
	int ret;

	if (q == NULL) {
		violate(w, "out of memory");
		return false;
	}
	one = &q->sr;
	q->sr.kind = kind;
	q->sr.rid = rid;
	q->sr.fenced = fenced;
	ret = exec_marks(w->srv[si].ex, &one, 1);
	free(q);
	if (ret < 0) {
		server_stop(w, si, true);
		elect(w);
		return false;
	}
	return true;
}

/* Orphans (past si's grace) that no handle named to si keeps any more go; a new version. */
static void drop_unkept_orphans(struct world *w, int si)
{
	for (int i = 0; i < MFILES; i++)
		if (w->m.files[i].ino && w->m.files[i].nlink == 0 && !kept(w, si, w->m.files[i].ino))
			w->m.files[i].ino = 0;
	model_commit_version(w);
}

/* Server si runs what it has: reads, then the writes in one commit, then marks. */
static void serve(struct world *w, int si)
{
	struct server *s = &w->srv[si];
	struct svc_req *rd[INBOX_MAX], *wrr[INBOX_MAX];
	struct wreq *rq[INBOX_MAX], *wq[INBOX_MAX];
	uint32_t nr = 0, nw = 0;
	bool release = false, crash = false;
	int ret;

	if (!s->alive || (s->ninbox == 0 && s->purged))
		return;
	for (uint32_t i = 0; i < s->ninbox; i++) {
		struct wreq *q = s->inbox[i];

		if (exec_req_writes(&q->sr)) {
			wq[nw] = q;
			wrr[nw++] = &q->sr;
		} else {
			rq[nr] = q;
			rd[nr++] = &q->sr;
		}
	}
	s->ninbox = 0;
	trace(w, "s%d runs %u reads and %u writes%s", si, nr, nw, s->paused ? " (stale: woken)" : "");
	ret = nr > 0 ? exec_reads(s->ex, rd, nr, &release) : 0;
	for (uint32_t i = 0; ret == 0 && release && i < nr; i++)
		if (rq[i]->sr.kind == SVC_REQ_CALL)
			reply(w, rq[i]);
	release = false;
	for (uint32_t i = 0; i < nr; i++) {
		free(rq[i]->sr.reply.tail);
		free(rq[i]);
	}
	if (ret < 0) { /* the store could not be read: the service stops */
		for (uint32_t i = 0; i < nw; i++)
			free(wq[i]);
		server_stop(w, si, true);
		if (w->leader < 0)
			elect(w);
		return;
	}
	if (nw > 0) {
		/* a crash at one of the device calls ahead (maybe after this commit) */
		if (w->faults && !s->paused && rnd(w, 8) == 0) {
			struct bd_mem_faults f = { .fail_nth = bd_mem_calls(w->mem) + 1 + rnd(w, 12),
						   .fail_after_nth = true };

			bd_mem_set_faults(w->mem, &f);
			crash = true;
		}
		ret = exec_writes(s->ex, wrr, nw, &release);
		if (crash) {
			struct bd_mem_faults none = { 0 };

			bd_mem_set_faults(w->mem, &none);
		}
		if (ret == 0) {
			w->stats_commits++;
			commit_to_model(w, si, wq, nw);
			for (uint32_t i = 0; release && i < nw; i++)
				reply(w, wq[i]);
		} else {
			trace(w, "s%d: the commit of %u writes failed (%s)", si, nw, errstr(ret));
			if (opt.brk == BRK_REPLY_BEFORE_COMMIT) /* the planted bug: replies went first */
				for (uint32_t i = 0; i < nw; i++) {
					struct result r = reply_result(wq[i]);

					client_reply(w, wq[i]->cli, wq[i]->conn, wq[i]->call.req_id, &r);
				}
			if (ret != -ESTALE) { /* the device failed: whether it is there is unknown */
				for (uint32_t i = 0; i < nw; i++) {
					w->unsure[w->nunsure++] = wq[i];
					wq[i] = NULL;
				}
				w->unsure_srv = si;
				w->stats_unsure++;
			}
		}
		for (uint32_t i = 0; i < nw; i++) {
			if (wq[i] == NULL)
				continue;
			free(wq[i]->sr.reply.tail);
			free(wq[i]);
		}
		if (ret < 0) {
			bool power_loss = ret != -ESTALE;

			if (power_loss) {
				uint64_t n = bd_mem_crash(w->mem, (enum bd_crash_mode)rnd(w, 4));

				trace(w, "s%d crashes (%" PRIu64 " unsynced blocks)", si, n);
				w->stats_crashes++;
			} else {
				trace(w, "s%d is fenced by the term gate", si);
			}
			server_stop(w, si, true);
			if (power_loss || w->leader < 0)
				elect(w);
			return;
		}
	}
	/* clients away past their grace are gone: fenced first when they hold files */
	for (int ci = 0; ci < NCLI && !s->paused; ci++) {
		struct client *c = &w->cli[ci];
		bool fenced;

		if (s->away_since[ci] == 0 || w->step < s->away_since[ci] + GRACE_STEPS)
			continue;
		s->away_since[ci] = 0;
		fenced = exec_mount_holds(s->ex, c->rid); /* (as net.c: nothing held, no fence) */
		if (!run_mark(w, si, SVC_REQ_GONE, c->rid, fenced))
			return;
		trace(w, "s%d: c%d was away past its grace: gone%s", si, ci, fenced ? ", fenced" : "");
		/* its handles on this server are closed: the orphans only it kept go */
		for (int h = 0; h < HOLDS_MAX; h++)
			if (c->holds[h].named_srv == si)
				c->holds[h].named_srv = -1;
		drop_unkept_orphans(w, si);
	}
	/* the grace is over: orphans nobody named again go */
	if (!s->purged && !s->paused && w->step >= s->started + GRACE_STEPS) {
		s->purged = true;
		if (!run_mark(w, si, SVC_REQ_PURGE, 0, false))
			return;
		trace(w, "s%d: the grace is over, orphans nobody named are purged", si);
		/* the holds not named to this server in time are void now */
		for (int c = 0; c < NCLI; c++)
			for (int h = 0; h < HOLDS_MAX; h++) {
				struct hold_truth *ho = &w->cli[c].holds[h];
				struct mfile *f = mfile(&w->m, ho->ino);

				if (ho->fh && ho->named_srv != si && f && f->nlink == 0)
					ho->void_ = true;
			}
		drop_unkept_orphans(w, si);
	}
	if (!s->paused && exec_marks(s->ex, NULL, 0) < 0) { /* (orphans a release let go) */
		server_stop(w, si, true);
		elect(w);
	}
}

/* Deliver the oldest frame of a random connection. */
static void deliver(struct world *w)
{
	struct msg *pick = NULL, *m;
	int inflight = 0, nth;

	for (int i = 0; i < NMSG; i++)
		inflight += w->msgs[i].used;
	if (inflight == 0)
		return;
	nth = (int)rnd(w, (uint64_t)inflight);
	for (int i = 0; i < NMSG && pick == NULL; i++)
		if (w->msgs[i].used && nth-- == 0)
			pick = &w->msgs[i];
	/* TCP: the oldest frame of its connection and direction first */
	m = pick;
	for (int i = 0; i < NMSG; i++) {
		struct msg *o = &w->msgs[i];

		if (o->used && o->conn == m->conn && o->to_server == m->to_server && o->seq < pick->seq)
			pick = o;
	}
	pick->used = false;
	if (pick->to_server) {
		struct server *s = &w->srv[pick->srv];
		struct client *c = &w->cli[pick->cli];
		struct wreq *q;

		if (!s->alive || s->ninbox == INBOX_MAX || c->conn != pick->conn) {
			if (s->alive && s->ninbox == INBOX_MAX)
				pick->used = true; /* (it waits: the server reads no more now) */
			return;
		}
		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return;
		if (pick->holds) {
			uint32_t n = 0;

			q->cli = pick->cli;
			q->conn = pick->conn;
			q->sr.kind = SVC_REQ_HOLDS;
			q->sr.rid = c->rid;
			uint32_t cursor = 0;

			n = holds_next(&c->table, &cursor, q->holds, HOLDS_MAX);
			for (uint32_t i = 0; i < n; i++)
				for (int h = 0; h < HOLDS_MAX; h++)
					if (c->holds[h].fh == le64_to_cpu(q->holds[i].fh))
						c->holds[h].named_srv = pick->srv; /* (after the grace too) */
			q->sr.payload = (uint8_t *)q->holds;
			q->sr.payload_len = n * (uint32_t)sizeof(struct rpc_hold);
			trace(w, "s%d takes c%d's HOLDS of %u files%s", pick->srv, pick->cli, n,
			      s->purged ? " (after its grace)" : "");
			q->call.op = W_NR;
		} else {
			build_req(w, q, pick->cli, &pick->call, pick->oldest);
		}
		s->inbox[s->ninbox++] = q;
		return;
	}
	client_reply(w, pick->cli, pick->conn, pick->req_id, &pick->res);
}

/* Client ci gets a reply on connection conn: checked, and its call is done. */
static void client_reply(struct world *w, int ci, uint64_t conn, uint64_t req_id,
			 const struct result *res)
{
	struct client *c = &w->cli[ci];
	struct call *k = NULL;
	int slot = calls_for_reply(&c->ct, req_id, conn);

	if (c->conn != conn || slot < 0)
		return;
	for (int i = 0; i < INFLIGHT; i++)
		if (c->calls[i].used && c->calls[i].slot == (uint32_t)slot)
			k = &c->calls[i];
	if (k == NULL)
		return;
	trace(w, "c%d gets %s #%" PRIu64 ": status %d", ci, wop_names[k->op], k->req_id,
	      res->status);
	if (op_writes(k->op)) {
		struct fate *f = fate_add(w, k->lid);
		char a[96], b[96];

		f->acked = true;
		f->acked_ok = res->status == 0;
		if (f->applied && !same_result(res, &f->res, k->op)) {
			result_text(res, a, sizeof(a));
			result_text(&f->res, b, sizeof(b));
			violate(w, "c%d's %s (op %" PRIu64 ") was answered \"%s\", but committed \"%s\"",
				ci, wop_names[k->op], k->lid, a, b);
		}
		for (int h = 0; k->op == W_CREATE && h < HOLDS_MAX; h++)
			if (c->holds[h].fh == k->fh) {
				if (res->status == 0)
					c->holds[h].known = true;
				else
					c->holds[h] = (struct hold_truth){ 0 }; /* (it made nothing to hold) */
			}
		if (k->op == W_CREATE && res->status == 0) {
			struct rpc_make mk = { .fh = cpu_to_le64(k->fh), .flags = cpu_to_le32(O_RDWR) };
			struct rpc_created cr = { .entry.attr.ino = cpu_to_le64(res->ino) };

			if (holds_note(&c->table, RPC_CREATE, &mk, &cr) < 0)
				violate(w, "out of memory");
		}
	} else if (k->op == W_LOOKUP || k->op == W_GETATTR) {
		/* linearizable: the model at some version from its send to now */
		bool ok = false;
		struct result want = { 0 };
		uint64_t from = k->sent_ver + HIST > w->ver + 1 ? k->sent_ver : w->ver + 1 - HIST;

		for (uint64_t v = from; v <= w->ver && !ok; v++) {
			want = model_read(&w->hist[v % HIST], k);
			ok = same_result(res, &want, k->op);
		}
		if (k->op == W_GETATTR && !ok) {
			struct hold_truth *ho = NULL;

			for (int h = 0; h < HOLDS_MAX; h++)
				if (c->holds[h].fh == k->fh)
					ho = &c->holds[h];
			if (ho && ho->void_)
				ok = true; /* (the grace purged it: ESTALE is its due) */
			else if (res->status != 0)
				violate(w, "c%d holds inode %" PRIu64 " open, but GETATTR says %s: an open "
					"file lost its inode", ci, k->ino, strerror(res->status));
		}
		if (!ok) {
			char a[96], b[96];

			result_text(res, a, sizeof(a));
			result_text(&want, b, sizeof(b));
			violate(w, "c%d's %s (#%" PRIu64 ") read \"%s\", no state between its send and "
				"reply had that (the latest: \"%s\")", ci, wop_names[k->op],
				k->req_id, a, b);
		}
	} else if (k->op == W_RELEASE) {
		struct rpc_release rl = { .ino = cpu_to_le64(k->ino), .fh = cpu_to_le64(k->fh) };

		holds_note(&c->table, RPC_RELEASE, &rl, NULL);
		for (int h = 0; h < HOLDS_MAX; h++)
			if (c->holds[h].fh == k->fh) {
				struct mfile *f = mfile(&w->m, c->holds[h].ino);

				c->holds[h] = (struct hold_truth){ 0 };
				if (f && f->nlink == 0 && !kept(w, c->srv, f->ino))
					f->ino = 0;
				break;
			}
	}
	calls_set(&c->ct, k->slot, CALL_DONE);
	calls_set(&c->ct, k->slot, CALL_FREE);
	k->used = false;
}

/* ---- clients ---- */

static struct hold_truth *some_hold(struct world *w, struct client *c)
{
	int n = 0, pick;

	for (int h = 0; h < HOLDS_MAX; h++)
		n += c->holds[h].fh != 0 && c->holds[h].known;
	if (n == 0)
		return NULL;
	pick = (int)rnd(w, (uint64_t)n);
	for (int h = 0; h < HOLDS_MAX; h++)
		if (c->holds[h].fh != 0 && c->holds[h].known && pick-- == 0)
			return &c->holds[h];
	return NULL;
}

/* Is a call on this handle outstanding (a client sends one call per handle at a time)? */
static bool handle_busy(const struct client *c, uint64_t fh)
{
	for (int i = 0; i < INFLIGHT; i++)
		if (c->calls[i].used && c->calls[i].fh == fh && c->calls[i].op >= W_WRITE)
			return true;
	return false;
}

static void issue(struct world *w, int ci)
{
	struct client *c = &w->cli[ci];
	struct call *k = NULL;
	struct hold_truth *ho;

	for (int i = 0; i < INFLIGHT; i++)
		if (!c->calls[i].used)
			k = &c->calls[i];
	if (k == NULL || c->gone)
		return;
	memset(k, 0, sizeof(*k));
	k->op = (enum wop)rnd(w, W_NR);
	k->a = (int)rnd(w, NNAMES);
	k->b = (int)rnd(w, NNAMES);
	if (k->op == W_CREATE) {
		int free_h = -1;

		for (int h = 0; h < HOLDS_MAX; h++)
			if (c->holds[h].fh == 0)
				free_h = h;
		if (free_h < 0)
			return;
		k->fh = ++c->next_fh;
		c->holds[free_h] = (struct hold_truth){ .fh = k->fh, .named_srv = -1 };
	} else if (k->op >= W_WRITE && k->op != W_LOOKUP) {
		ho = some_hold(w, c);
		if (ho == NULL || ho->void_ || handle_busy(c, ho->fh))
			return;
		k->fh = ho->fh;
		k->ino = ho->ino;
		if (k->op == W_WRITE) {
			k->off = rnd(w, FDATA / 2);
			k->len = 1 + (uint32_t)rnd(w, FDATA / 2);
			k->byte = (uint8_t)('a' + rnd(w, 26));
		}
	}
	k->used = true;
	k->lid = (uint64_t)ci << 32 | ++c->next_lid;
	k->slot = (uint32_t)calls_take(&c->ct);
	k->req_id = c->ct.slot[k->slot].req_id;
	k->sent_ver = w->ver;
	send_call(w, ci, k);
}

static bool quiet_now(const struct world *w)
{
	for (int c = 0; c < NCLI; c++)
		for (int i = 0; i < INFLIGHT; i++)
			if (w->cli[c].calls[i].used)
				return false;
	return true;
}

/* ---- one run ---- */

static struct bd_dev *template_dev;
static struct bd_super template_super;
static uint64_t *template_blocks;
static uint32_t template_nblocks;

static int make_template(void)
{
	struct fs_time now = { 1700000000, 0 };
	uint8_t *buf = bd_alloc(1), zero[FUSEFS_BLOCK_SIZE] = { 0 };
	char why[256];
	int ret = bd_mem_open(DEV_BLOCKS, 512, 1, &template_dev);

	if (ret == 0)
		ret = harness_mkfs(template_dev, &now, &template_super, why, sizeof(why));
	if (ret < 0 || buf == NULL) {
		fprintf(stderr, "fusefs-wsim: mkfs on the in-memory device: %s\n", ret < 0 ? why : "memory");
		bd_free(buf);
		return ret < 0 ? ret : -ENOMEM;
	}
	template_blocks = calloc(DEV_BLOCKS, sizeof(*template_blocks));
	if (template_blocks == NULL)
		return -ENOMEM;
	for (uint64_t b = 0; b < DEV_BLOCKS; b++) {
		bd_mem_peek(template_dev, b, buf, 1);
		if (memcmp(buf, zero, sizeof(zero)) != 0)
			template_blocks[template_nblocks++] = b;
	}
	bd_free(buf);
	return 0;
}

static int world_init(struct world *w, uint64_t seed)
{
	uint8_t *buf = bd_alloc(1);
	int ret;

	memset(w, 0, sizeof(*w));
	w->seed = seed;
	w->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	w->leader = -1;
	w->faults = true;
	ret = bd_mem_open(DEV_BLOCKS, 512, seed, &w->mem);
	if (ret < 0 || buf == NULL) {
		bd_free(buf);
		return ret < 0 ? ret : -ENOMEM;
	}
	for (uint32_t i = 0; i < template_nblocks; i++) {
		bd_mem_peek(template_dev, template_blocks[i], buf, 1);
		bd_mem_poke(w->mem, template_blocks[i], buf, 1);
	}
	bd_free(buf);
	w->super = template_super;
	for (int c = 0; c < NCLI; c++) {
		w->cli[c].rid = 0x1000 + (uint64_t)c;
		w->cli[c].srv = -1;
		calls_init(&w->cli[c].ct);
	}
	w->hist[0] = w->m;
	return 0;
}

static void world_free(struct world *w)
{
	for (int c = 0; c < NCLI; c++) {
		holds_free(&w->cli[c].table);
		free(w->cli[c].fates);
	}
	for (int i = 0; i < w->nsrv; i++)
		server_stop(w, i, true);
	for (uint32_t i = 0; i < w->nunsure; i++)
		free(w->unsure[i]);
	bd_close(w->mem);
}

/* One fault, or one step of the system. */
static void step(struct world *w)
{
	uint64_t r = rnd(w, 1000);
	int ci = (int)rnd(w, NCLI);

	w->step++;
	if (w->faults && r < 20) { /* a connection cut */
		cut(w, ci);
	} else if (w->faults && r < 23) { /* a client cut off from every server, past a grace */
		trace(w, "c%d is cut off for %d steps", ci, 2 * GRACE_STEPS);
		cut(w, ci);
		w->cli[ci].cut_off_until = w->step + 2 * GRACE_STEPS;
	} else if (w->faults && r < 30 && w->leader >= 0) { /* the leader crashes between batches */
		int si = w->leader;
		uint64_t n = bd_mem_crash(w->mem, (enum bd_crash_mode)rnd(w, 4));

		trace(w, "s%d crashes between batches (%" PRIu64 " unsynced blocks)", si, n);
		w->stats_crashes++;
		server_stop(w, si, true);
		elect(w);
	} else if (w->faults && r < 34 && w->leader >= 0) { /* paused, and replaced */
		int si = w->leader;

		trace(w, "s%d pauses; a new leader is elected", si);
		for (int i = 0; i < w->nsrv; i++) /* (one stale server at a time) */
			if (w->srv[i].alive && w->srv[i].paused)
				server_stop(w, i, true);
		w->srv[si].paused = true;
		w->leader = -1;
		elect(w);
	} else if (w->faults && r < 38 && w->leader >= 0) { /* a clean stop (an unmount) */
		int si = w->leader;

		trace(w, "s%d stops cleanly", si);
		server_stop(w, si, false);
		elect(w);
	} else if (r < 60) { /* a stale server wakes and runs what it has */
		for (int i = 0; i < w->nsrv; i++)
			if (w->srv[i].alive && w->srv[i].paused) {
				serve(w, i);
				if (w->srv[i].alive) /* (the gate fenced it, or it goes now) */
					server_stop(w, i, true);
			}
	} else if (r < 300) {
		issue(w, ci);
	} else if (r < 450) {
		connect_client(w, ci);
	} else if (r < 600) {
		if (w->leader >= 0)
			serve(w, w->leader);
	} else {
		deliver(w);
	}
	if (w->leader < 0 && !w->violation[0] && (!w->faults || rnd(w, 4) == 0))
		elect(w);
}

/* The end: the faults stop, every call completes, and the store is the model. */
static void finish(struct world *w)
{
	struct model d;

	w->faults = false;
	for (int c = 0; c < NCLI; c++)
		w->cli[c].cut_off_until = 0;
	for (int i = 0; i < w->nsrv; i++)
		if (w->srv[i].alive && w->srv[i].paused)
			server_stop(w, i, true);
	if (w->leader < 0)
		elect(w);
	for (int i = 0; i < LIVENESS_STEPS && !w->violation[0]; i++) {
		uint64_t r = rnd(w, 3);

		w->step++;
		if (quiet_now(w))
			break;
		if (r == 0)
			connect_client(w, (int)rnd(w, NCLI));
		else if (r == 1 && w->leader >= 0)
			serve(w, w->leader);
		else
			deliver(w);
		if (i == LIVENESS_STEPS - 1)
			violate(w, "liveness: calls still outstanding %d steps after the faults ended",
				LIVENESS_STEPS);
	}
	if (w->violation[0] || w->leader < 0)
		return;
	if (dump(w, w->leader, &d) < 0) {
		violate(w, "the last server could not read its store");
		return;
	}
	if (!agrees(&w->m, &d))
		violate(w, "at the end the store is not the model (names or file sizes differ)");
}

static bool run(uint64_t seed, struct world *w)
{
	if (world_init(w, seed) < 0) {
		fprintf(stderr, "fusefs-wsim: seed %" PRIu64 ": out of memory\n", seed);
		return false;
	}
	elect(w);
	for (uint32_t i = 0; i < opt.steps && !w->violation[0]; i++)
		step(w);
	if (!w->violation[0])
		finish(w);
	return w->violation[0] == '\0';
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fusefs-wsim [--seeds N] [--first S] [--seed S] [--trace] [--steps N]\n"
		"                   [--break MODE] [--quiet]\n"
		"  MODE: no-term-gate, no-reply-cache, reply-before-commit, purge-open-orphans,\n"
		"        no-resend (a planted bug: some seed must catch it)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seeds", required_argument, NULL, 'n' }, { "first", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 's' },  { "trace", no_argument, NULL, 't' },
		{ "break", required_argument, NULL, 'b' }, { "steps", required_argument, NULL, 'k' },
		{ "quiet", no_argument, NULL, 'q' },       { NULL, 0, NULL, 0 },
	};
	struct world *w = calloc(1, sizeof(*w));
	uint64_t caught = 0, held_seeds = 0, commits = 0, failovers = 0, crashes = 0, unsure = 0,
		 replays = 0;
	struct timespec t0, t1;
	double secs;
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			opt.seeds = strtoull(optarg, NULL, 10);
			break;
		case 'f':
			opt.first = strtoull(optarg, NULL, 10);
			break;
		case 's':
			opt.first = strtoull(optarg, NULL, 10);
			opt.seeds = 1;
			opt.one = true;
			break;
		case 't':
			opt.trace = true;
			break;
		case 'k':
			opt.steps = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'b':
			opt.brk = BRK_NR;
			for (int b = 0; b < BRK_NR; b++)
				if (strcmp(optarg, brk_names[b]) == 0)
					opt.brk = (enum brk)b;
			if (opt.brk == BRK_NR) {
				fprintf(stderr, "fusefs-wsim: --break %s: no such mode\n", optarg);
				usage();
			}
			break;
		default:
			usage();
		}
	}
	if (w == NULL || opt.seeds == 0 || opt.steps == 0)
		usage();
	log_mute(true);
	if (make_template() < 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t s = opt.first; s < opt.first + opt.seeds; s++) {
		bool ok = run(s, w);

		commits += w->stats_commits;
		failovers += w->stats_failovers;
		crashes += w->stats_crashes;
		unsure += w->stats_unsure;
		replays += w->stats_replays;
		if (ok) {
			held_seeds++;
		} else {
			caught++;
			if (opt.brk == BRK_NONE || !opt.quiet)
				printf("fusefs-wsim: seed %" PRIu64 ": %s\n  replay: fusefs-wsim --seed %" PRIu64
				       "%s%s --trace\n", s, w->violation, s,
				       opt.brk ? " --break " : "", opt.brk ? brk_names[opt.brk] : "");
		}
		world_free(w);
		if (opt.brk != BRK_NONE && caught > 0)
			break; /* (the planted bug is caught) */
		if (opt.brk == BRK_NONE && caught > 0 && !opt.one)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("fusefs-wsim: %" PRIu64 " seeds (%" PRIu64 " held) in %.1f s, %.0f seeds/min; %" PRIu64
	       " commits, %" PRIu64 " servers, %" PRIu64 " crashes, %" PRIu64 " unknown commits "
	       "settled, %" PRIu64 " resends answered from the replies%s%s\n",
	       held_seeds + caught, held_seeds, secs, secs > 0 ? (double)(held_seeds + caught) * 60 / secs : 0,
	       commits, failovers, crashes, unsure, replays, opt.brk ? "; break " : "",
	       opt.brk ? brk_names[opt.brk] : "");
	bd_close(template_dev);
	free(template_blocks);
	free(w);
	if (opt.brk != BRK_NONE) {
		if (caught == 0)
			printf("fusefs-wsim: --break %s was NOT caught in %" PRIu64 " seeds\n",
			       brk_names[opt.brk], opt.seeds);
		return caught > 0 ? 0 : 1;
	}
	return caught == 0 ? 0 : 1;
}
