/*
 * The durable store's faults, black-box: zosd as a program on a data
 * directory that fills up, turns read-only, is replaced under it, holds
 * something that is not a database (a FIFO, a symbolic link, a corrupt
 * file, a schema from the future), or holds the old snapshot files to
 * import (with a crash at each step of the import); and a backup taken
 * with the sqlite3 CLI from a running zosd, restored.
 *
 * Each test is one behaviour of issue 12 that fails without it. The
 * filesystems (a small tmpfs for a full disk, an ext4 image on a loop
 * device for a read-only one) are mounted by the test (it runs as root;
 * when mounting is not allowed the test is skipped, and says so) and
 * unmounted by the suite's fini whatever happened. Every zosd is stopped
 * by its test (or killed by the fini after a failed assertion); every wait
 * is a bounded poll.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "proc.h"
#include "tmpdir.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/v1/health.zrpc.h"

#define MAX_ACKED 512

static const zrpc_call_opts opts = { .timeout_ms = 10000 };

/* A test's directory: ROOT (mkdtemp), its data directory DATA =
 * ROOT/data (a mount point in some tests) and an ipc socket in ROOT. */
struct fdir {
	char root[64];
	char data[96];
	char url[128];
};

/* Mount points and temporary directories the running test made, for the
 * fini (test code: one test at a time runs in a Criterion worker). */
#define CLEANUP_MAX 8
static char cleanup_mounts[CLEANUP_MAX][96];
static char cleanup_dirs[CLEANUP_MAX][64];

static void
cleanup_dir_add(const char *path)
{
	for (int i = 0; i < CLEANUP_MAX; i++) {
		if (cleanup_dirs[i][0] == '\0') {
			snprintf(cleanup_dirs[i], sizeof(cleanup_dirs[i]),
			    "%s", path);
			return;
		}
	}
}

static void
cleanup_mount_add(const char *path)
{
	for (int i = 0; i < CLEANUP_MAX; i++) {
		if (cleanup_mounts[i][0] == '\0') {
			snprintf(cleanup_mounts[i], sizeof(cleanup_mounts[i]),
			    "%s", path);
			return;
		}
	}
}

/* Unmounts PATH (retried while busy for at most 1 s, then detached). */
static void
unmount_path(const char *path)
{
	for (int i = 0; i < 50; i++) {
		if (umount2(path, 0) == 0 || errno == EINVAL ||
		    errno == ENOENT) {
			return;
		}
		/* EBUSY: a zosd just killed may still hold it; retry. */
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	umount2(path, MNT_DETACH);
}

/* The suite's fini: kill what a failed test left running, unmount what
 * it mounted, remove its directories. */
static void
faults_fini(void)
{
	proc_kill_left();
	for (int i = 0; i < CLEANUP_MAX; i++) {
		if (cleanup_mounts[i][0] != '\0') {
			unmount_path(cleanup_mounts[i]);
			cleanup_mounts[i][0] = '\0';
		}
	}
	for (int i = 0; i < CLEANUP_MAX; i++) {
		if (cleanup_dirs[i][0] != '\0') {
			test_tmpdir_remove(cleanup_dirs[i]);
			cleanup_dirs[i][0] = '\0';
		}
	}
}

TestSuite(store_faults, .fini = faults_fini);

static void
fdir_make(struct fdir *d)
{
	snprintf(d->root, sizeof(d->root), "/tmp/zos-faults-XXXXXX");
	cr_assert_not_null(mkdtemp(d->root));
	cleanup_dir_add(d->root);
	snprintf(d->data, sizeof(d->data), "%s/data", d->root);
	snprintf(d->url, sizeof(d->url), "ipc://%s/zosd.sock", d->root);
}

/* A second listening address in D for another zosd on the same data. */
static void
fdir_url2(const struct fdir *d, char *url, size_t len)
{
	snprintf(url, len, "ipc://%s/zosd-b.sock", d->root);
}

/* Mounts a tmpfs of SIZE on D->data; skips the test when not allowed. */
static void
tmpfs_mount(const struct fdir *d, const char *size)
{
	char options[64];

	cr_assert_eq(mkdir(d->data, 0700), 0);
	snprintf(options, sizeof(options), "size=%s,mode=0700", size);
	if (mount("tmpfs", d->data, "tmpfs", 0, options) != 0) {
		cr_skip_test(
		    "cannot mount a tmpfs on %s (%s): this test needs "
		    "root and a mount namespace that allows it",
		    d->data, strerror(errno));
	}
	cleanup_mount_add(d->data);
}

/* Runs CMD through the shell; returns its exit status (-1 when it did
 * not exit). */
static int
run(const char *cmd)
{
	int status = system(cmd);

	if (status == -1 || !WIFEXITED(status)) {
		return -1;
	}
	return WEXITSTATUS(status);
}

/* Mounts a 16 MiB ext4 image (ROOT/ext4.img) on D->data through a loop
 * device; skips the test when that is not possible here. */
static void
ext4_mount(const struct fdir *d)
{
	char cmd[512];

	cr_assert_eq(mkdir(d->data, 0700), 0);
	snprintf(cmd, sizeof(cmd),
	    "truncate -s 16M '%s/ext4.img' && mkfs.ext4 -q -F '%s/ext4.img' "
	    ">/dev/null 2>&1",
	    d->root, d->root);
	if (run(cmd) != 0) {
		cr_skip_test("cannot make an ext4 image (mkfs.ext4 missing?)");
	}
	snprintf(cmd, sizeof(cmd),
	    "mount -o loop '%s/ext4.img' '%s' >/dev/null 2>&1", d->root,
	    d->data);
	if (run(cmd) != 0) {
		cr_skip_test("cannot mount an ext4 image on a loop device "
		             "here (needs root and loop devices)");
	}
	cleanup_mount_add(d->data);
	/* A fresh ext4 holds lost+found: zosd must not mind it. */
	cr_assert_eq(chmod(d->data, 0700), 0);
}

static bool
have_sqlite3(void)
{
	return run("command -v sqlite3 >/dev/null 2>&1") == 0;
}

/* Starts zosd on DATA listening on URL. Logs at warn: every call logged
 * at info would fill the pipe the test reads only at times. */
static void
zosd_start_on(struct proc *p, const char *data, const char *url)
{
	char *argv[] = { (char *) env_path("ZOSD"), "--data-dir",
		(char *) data, "--listen", (char *) url, "--log-format",
		"text", "--log-level", "warn", "--metrics-listen", "off",
		NULL };

	proc_start(p, argv);
}

static void
zosd_ready_on(struct proc *p, const char *data, const char *url)
{
	zosd_start_on(p, data, url);
	cr_assert(proc_wait_for(p, "listening on"), "zosd did not start:\n%s",
	    p->text);
}

static void
zosd_ready(struct proc *p, const struct fdir *d)
{
	zosd_ready_on(p, d->data, d->url);
}

/* zosd_ready with its metrics served on a TCP port of 127.0.0.1; the
 * port in *PORT. */
static void
zosd_ready_metrics(struct proc *p, const struct fdir *d, int *port)
{
	char metrics[64];

	*port = free_tcp_port();
	snprintf(
	    metrics, sizeof(metrics), "http://127.0.0.1:%d/metrics", *port);
	char *argv[] = { (char *) env_path("ZOSD"), "--data-dir",
		(char *) d->data, "--listen", (char *) d->url, "--log-format",
		"text", "--log-level", "warn", "--metrics-listen", metrics,
		NULL };
	proc_start(p, argv);
	cr_assert(proc_wait_for(p, "listening on"), "zosd did not start:\n%s",
	    p->text);
}

/* The value of SERIES in zosd's /metrics on PORT (-1 when missing). */
static double
metric(int port, const char *series)
{
	struct http_reply r;
	double            v = -1;

	cr_assert(http_request(port, "GET", "/metrics", &r), "no metrics");
	cr_assert_eq(r.status, 200);
	if (!metric_value(r.body, series, &v)) {
		v = -1;
	}
	http_reply_free(&r);
	return v;
}

/* What zosd P has written so far (read without waiting), for the
 * messages of failed assertions. */
static const char *
zosd_output(struct proc *p)
{
	for (int i = 0; i < 64; i++) {
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };
		ssize_t       n;

		if (p->len + 1 >= sizeof(p->text) || poll(&pfd, 1, 0) <= 0) {
			break;
		}
		n = read(
		    p->out, p->text + p->len, sizeof(p->text) - 1 - p->len);
		if (n <= 0) {
			break;
		}
		p->len += (size_t) n;
		p->text[p->len] = '\0';
	}
	return p->text;
}

static void
expect_metric(int port, const char *series, double want)
{
	double v = metric(port, series);

	cr_assert_eq(
	    v, want, "%s is %g (-1: missing), %g expected", series, v, want);
}

static void
zosd_stop(struct proc *p)
{
	int rc;

	kill(p->pid, SIGTERM);
	rc = proc_wait(p);
	cr_assert_eq(rc, 0, "zosd exited %d:\n%s", rc, p->text);
}

static zrpc_client *
client_open(const char *url)
{
	zrpc_client *c;

	cr_assert_eq(zrpc_client_open(&c, url, NULL).code, ZRPC_OK);
	return c;
}

/* Health/Check of SERVICE ("": the whole server): its status, or -1 when
 * the call itself failed. */
static int
health_of(zrpc_client *c, const char *service)
{
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	zrpc_status                    st;
	int                            status;

	req.service = (char *) service;
	st          = zrpc_v1_health_check(c, &req, &reply, &opts);
	if (st.code != ZRPC_OK) {
		return -1;
	}
	status = (int) reply->status;
	zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	return status;
}

static int
health(zrpc_client *c)
{
	return health_of(c, "");
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Polls Health every 50 ms for at most MS; returns the last status seen,
 * WANT as soon as it is seen. */
static int
health_wait(zrpc_client *c, int want, int ms)
{
	long end = now_ms() + ms;
	int  status;

	for (;;) {
		status = health(c);
		if (status == want || now_ms() >= end) {
			return status;
		}
		pause_ms(50);
	}
}

/* A session the test saw acknowledged, as the reply had it. */
struct acked {
	char     id[40];
	char     problem[32];
	uint64_t version;
	int      state;
};

struct ackset {
	pthread_mutex_t mtx;
	struct acked    s[MAX_ACKED];
	atomic_size_t   n;
};

static void
ackset_init(struct ackset *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mtx, NULL);
}

static void
ackset_add(struct ackset *a, const Zos__V1__ProofSession *s)
{
	pthread_mutex_lock(&a->mtx);
	size_t n = atomic_load(&a->n);
	if (n < MAX_ACKED) {
		snprintf(a->s[n].id, sizeof(a->s[n].id), "%s", s->id);
		snprintf(a->s[n].problem, sizeof(a->s[n].problem), "%s",
		    s->problem_id);
		a->s[n].version = s->version;
		a->s[n].state   = (int) s->state;
		atomic_store(&a->n, n + 1);
	}
	pthread_mutex_unlock(&a->mtx);
}

/* Session/Start of PROBLEM; on OK adds the session to A (when not NULL). */
static zrpc_status
start_session(zrpc_client *c, const char *problem, struct ackset *a)
{
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *s = NULL;
	zrpc_status            st;

	req.problem_id = (char *) problem;
	st             = zos_v1_session_start(c, &req, &s, &opts);
	if (st.code == ZRPC_OK) {
		if (a != NULL) {
			ackset_add(a, s);
		}
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	return st;
}

/* Session/Transition of S to TO; on OK records the reply in S. */
static zrpc_status
transition(zrpc_client *c, struct acked *s, int to)
{
	Zos__V1__TransitionRequest req   = ZOS__V1__TRANSITION_REQUEST__INIT;
	Zos__V1__ProofSession     *reply = NULL;
	zrpc_status                st;

	req.id       = s->id;
	req.to_state = (Zos__V1__ProofState) to;
	st           = zos_v1_session_transition(c, &req, &reply, &opts);
	if (st.code == ZRPC_OK) {
		s->version = reply->version;
		s->state   = (int) reply->state;
		zos__v1__proof_session__free_unpacked(reply, NULL);
	}
	return st;
}

/* Session/Get of ID: its code, and the session in *OUT on OK. */
static zrpc_status
get_session(zrpc_client *c, const char *id, Zos__V1__ProofSession **out)
{
	Zos__V1__GetSessionRequest req = ZOS__V1__GET_SESSION_REQUEST__INIT;

	req.id = (char *) id;
	*out   = NULL;
	return zos_v1_session_get(c, &req, out, &opts);
}

/* Every session (Session/List, all pages, bounded): their ids into IDS
 * (up to MAX); returns the count listed and the reply's total in *TOTAL. */
static size_t
list_ids(zrpc_client *c, char (*ids)[40], size_t max, uint64_t *total)
{
	Zos__V1__ListSessionsRequest req =
	    ZOS__V1__LIST_SESSIONS_REQUEST__INIT;
	char   token[256] = "";
	size_t n          = 0;

	*total = 0;
	for (int page = 0; page < 100; page++) {
		Zos__V1__ListSessionsResponse *r = NULL;
		zrpc_status                    st;

		req.page_size  = 1000;
		req.page_token = token;
		st             = zos_v1_session_list(c, &req, &r, &opts);
		cr_assert_eq(st.code, ZRPC_OK, "List: %s", st.message);
		*total = r->total;
		for (size_t i = 0; i < r->n_sessions; i++) {
			if (n < max) {
				snprintf(ids[n], sizeof(ids[n]), "%s",
				    r->sessions[i]->id);
			}
			n++;
		}
		snprintf(token, sizeof(token), "%s", r->next_page_token);
		zos__v1__list_sessions_response__free_unpacked(r, NULL);
		if (token[0] == '\0') {
			return n;
		}
	}
	cr_assert(false, "List did not end in 100 pages");
	return n;
}

/* The List total alone (one page). */
static uint64_t
list_total(zrpc_client *c, bool *ok)
{
	Zos__V1__ListSessionsRequest req =
	    ZOS__V1__LIST_SESSIONS_REQUEST__INIT;
	Zos__V1__ListSessionsResponse *r = NULL;
	uint64_t                       total;

	req.page_size = 1;
	*ok = zos_v1_session_list(c, &req, &r, &opts).code == ZRPC_OK;
	if (!*ok) {
		return 0;
	}
	total = r->total;
	zos__v1__list_sessions_response__free_unpacked(r, NULL);
	return total;
}

/*
 * What the server at C holds is exactly A: each acknowledged session with
 * its version and state (Get), and List names those and no others.
 */
static void
check_exactly(zrpc_client *c, struct ackset *a, const char *when)
{
	static char ids[MAX_ACKED + 64][40];
	size_t      n = atomic_load(&a->n);
	uint64_t    total;
	size_t      listed;

	for (size_t i = 0; i < n; i++) {
		Zos__V1__ProofSession *s;
		zrpc_status            st = get_session(c, a->s[i].id, &s);

		cr_assert_eq(st.code, ZRPC_OK, "%s: acknowledged %s: %s", when,
		    a->s[i].id, st.message);
		cr_assert_eq(s->version, a->s[i].version,
		    "%s: %s version %llu, acknowledged %llu", when, a->s[i].id,
		    (unsigned long long) s->version,
		    (unsigned long long) a->s[i].version);
		cr_assert_eq((int) s->state, a->s[i].state, "%s: %s state",
		    when, a->s[i].id);
		cr_assert_str_eq(s->problem_id, a->s[i].problem, "%s", when);
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	listed = list_ids(c, ids, MAX_ACKED + 64, &total);
	cr_assert_eq(total, n,
	    "%s: List total %llu, but %zu sessions were acknowledged", when,
	    (unsigned long long) total, n);
	cr_assert_eq(listed, n,
	    "%s: List named %zu sessions, %zu acknowledged", when, listed, n);
	for (size_t j = 0; j < listed && j < MAX_ACKED + 64; j++) {
		bool known = false;

		for (size_t i = 0; i < n && !known; i++) {
			known = strcmp(ids[j], a->s[i].id) == 0;
		}
		cr_assert(known, "%s: List shows %s, never acknowledged", when,
		    ids[j]);
	}
}

/* The skill vector's version, and the level and attempts of NAME. */
static uint64_t
skills_of(zrpc_client *c, const char *name, double *level, uint64_t *attempts)
{
	Zos__V1__GetSkillsRequest req = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	zrpc_status               st;
	uint64_t                  version;

	st = zos_v1_skills_get(c, &req, &v, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "Skills/Get: %s", st.message);
	*level    = -1;
	*attempts = 0;
	for (size_t i = 0; i < v->n_skills; i++) {
		if (strcmp(v->skills[i]->name, name) == 0) {
			*level    = v->skills[i]->level;
			*attempts = v->skills[i]->attempts;
		}
	}
	version = v->version;
	zos__v1__skill_vector__free_unpacked(v, NULL);
	return version;
}

static zrpc_status
skills_add(zrpc_client *c, const char *name, double delta)
{
	Zos__V1__UpdateSkillsRequest up = ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry e =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__DELTAS_ENTRY__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry *entries[1] = { &e };
	Zos__V1__SkillVector                      *v          = NULL;
	zrpc_status                                st;

	e.key       = (char *) name;
	e.value     = delta;
	up.n_deltas = 1;
	up.deltas   = entries;
	st          = zos_v1_skills_update(c, &up, &v, &opts);
	if (st.code == ZRPC_OK) {
		zos__v1__skill_vector__free_unpacked(v, NULL);
	}
	return st;
}

/* Whether MESSAGE names one of the causes in WORDS (NULL-ended),
 * case-insensitively. */
static bool
names_cause(const char *message, const char *const *words)
{
	char   lower[ZRPC_STATUS_MESSAGE_MAX];
	size_t i;

	for (i = 0; message[i] != '\0' && i + 1 < sizeof(lower); i++) {
		lower[i] = (char) tolower((unsigned char) message[i]);
	}
	lower[i] = '\0';
	for (; *words != NULL; words++) {
		if (strstr(lower, *words) != NULL) {
			return true;
		}
	}
	return false;
}

static const char *const full_causes[]     = { "full", "no space", NULL };
static const char *const readonly_causes[] = { "read-only", "readonly",
	"read only", "not permitted", "permission", "i/o error", NULL };
static const char *const replaced_causes[] = { "replaced", "moved", "removed",
	"deleted", "inode", "changed", "no longer", "stale", NULL };

/* Fills the filesystem of DIR with DIR/filler until a write fails with
 * ENOSPC (bounded by the tmpfs size: at most 64 MiB written). */
static void
fill(const char *dir, char *filler, size_t len)
{
	static const char block[4096] = { 0x5a };
	int               fd;
	size_t            written = 0;

	snprintf(filler, len, "%s/filler", dir);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert(fd >= 0, "%s: %s", filler, strerror(errno));
	for (;;) {
		ssize_t n = write(fd, block, sizeof(block));

		if (n < 0) {
			cr_assert_eq(
			    errno, ENOSPC, "filler: %s", strerror(errno));
			break;
		}
		written += (size_t) n;
		cr_assert_lt(
		    written, (size_t) 64 << 20, "the disk never filled");
	}
	close(fd);
}

/*
 * The failing phase of the disk-full and read-only tests: 4 writers start
 * sessions (20 each) while a reader lists; a strict store shows no session
 * that was not acknowledged, and every writer's call gets UNAVAILABLE with
 * the cause.
 */
#define PHASE_WRITERS 4
#define PHASE_CALLS 20

struct phase {
	const char        *url;
	struct ackset     *acked;
	const char *const *causes;
	atomic_int         writers_left;
	atomic_int         unavailable;
	atomic_int         ok;
	atomic_int         other; /* any other code, or a message without
	                           * the cause */
	char            other_message[ZRPC_STATUS_MESSAGE_MAX + 32];
	pthread_mutex_t mtx;
	/* The reader: the most the List total was above what was
	 * acknowledged when the reply came (0 when never above). */
	long excess;
	int  lists;
};

static void *
phase_writer(void *arg)
{
	struct phase *ph = arg;
	zrpc_client  *c;

	if (zrpc_client_open(&c, ph->url, NULL).code == ZRPC_OK) {
		for (int i = 0; i < PHASE_CALLS; i++) {
			zrpc_status st = start_session(c, "phase", ph->acked);

			if (st.code == ZRPC_OK) {
				atomic_fetch_add(&ph->ok, 1);
			} else if (st.code == ZRPC_UNAVAILABLE &&
			    names_cause(st.message, ph->causes)) {
				atomic_fetch_add(&ph->unavailable, 1);
			} else {
				atomic_fetch_add(&ph->other, 1);
				pthread_mutex_lock(&ph->mtx);
				snprintf(ph->other_message,
				    sizeof(ph->other_message), "code %d: %s",
				    (int) st.code, st.message);
				pthread_mutex_unlock(&ph->mtx);
			}
		}
		zrpc_client_close(c);
	} else {
		atomic_fetch_add(&ph->other, 1);
	}
	atomic_fetch_sub(&ph->writers_left, 1);
	return NULL;
}

static void *
phase_reader(void *arg)
{
	struct phase *ph = arg;
	zrpc_client  *c;

	if (zrpc_client_open(&c, ph->url, NULL).code != ZRPC_OK) {
		return NULL;
	}
	for (int i = 0; i < 100000 && atomic_load(&ph->writers_left) > 0;
	     i++) {
		bool     ok;
		uint64_t total = list_total(c, &ok);
		long     acked = (long) atomic_load(&ph->acked->n);

		if (ok) {
			ph->lists++;
			if ((long) total - acked > ph->excess) {
				ph->excess = (long) total - acked;
			}
		}
	}
	zrpc_client_close(c);
	return NULL;
}

static void
failing_phase(const char *url, struct ackset *a, const char *const *causes)
{
	struct phase ph;
	pthread_t    writers[PHASE_WRITERS], reader;

	memset(&ph, 0, sizeof(ph));
	ph.url    = url;
	ph.acked  = a;
	ph.causes = causes;
	pthread_mutex_init(&ph.mtx, NULL);
	atomic_store(&ph.writers_left, PHASE_WRITERS);
	for (int i = 0; i < PHASE_WRITERS; i++) {
		cr_assert_eq(
		    pthread_create(&writers[i], NULL, phase_writer, &ph), 0);
	}
	cr_assert_eq(pthread_create(&reader, NULL, phase_reader, &ph), 0);
	for (int i = 0; i < PHASE_WRITERS; i++) {
		pthread_join(writers[i], NULL);
	}
	pthread_join(reader, NULL);
	cr_log_info("failing phase: %d unavailable, %d ok, %d other; %d "
	            "lists, largest excess %ld",
	    atomic_load(&ph.unavailable), atomic_load(&ph.ok),
	    atomic_load(&ph.other), ph.lists, ph.excess);
	cr_assert_eq(atomic_load(&ph.other), 0,
	    "a write got something else than UNAVAILABLE with the cause: %s",
	    ph.other_message);
	cr_assert_eq(atomic_load(&ph.ok), 0,
	    "%d writes succeeded while the store could not commit",
	    atomic_load(&ph.ok));
	cr_assert_leq(ph.excess, 0,
	    "a reader saw %ld more sessions than were acknowledged (a change "
	    "visible before it was durable, or a failed one never undone)",
	    ph.excess);
	pthread_mutex_destroy(&ph.mtx);
}

/*
 * The checks of a store that cannot commit (disk full, read-only): the
 * writes get UNAVAILABLE with the cause and are undone in memory, Health
 * is NOT_SERVING and stays so while the fault lasts (across the store's
 * retries), reads work. On entry the fault has just been made; A holds
 * the acknowledged sessions (at least 3, the first ANALYZING, the second
 * AWAITING_SOLUTION).
 */
static void
check_cannot_commit(struct proc *p, zrpc_client *c, const char *url,
    struct ackset *a, const char *const *causes)
{
	zrpc_status  st;
	struct acked before;
	double       level, level_after;
	uint64_t     attempts, attempts_after, version, version_after;
	int          status;

	/* Starts until one fails: a commit may still find room in space
	 * its files already held (each one acknowledged is durable, and
	 * counted); the first failure must come soon. */
	version = skills_of(c, "induction", &level, &attempts);
	for (int i = 0; i < 200; i++) {
		st = start_session(c, "fault", a);
		if (st.code != ZRPC_OK) {
			break;
		}
	}
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE,
	    "no Start failed with UNAVAILABLE: code %d: %s; zosd:\n%s",
	    (int) st.code, st.message, zosd_output(p));
	cr_assert(names_cause(st.message, causes),
	    "UNAVAILABLE without its cause: \"%s\"", st.message);
	cr_log_info("the first failed commit: %s", st.message);

	/* Health says it. */
	status = health_wait(c,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
	    3000);
	cr_assert_eq(status,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
	    "Health is %d after a failed commit (zos.v1.Session's: %d); "
	    "zosd:\n%s",
	    status, health_of(c, "zos.v1.Session"), zosd_output(p));

	/* A transition and a skills update fail too, and are undone. */
	before = a->s[1];
	st     = transition(c, &a->s[1],
	        ZOS__V1__PROOF_STATE__ANALYZING); /* from AWAITING_SOLUTION */
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "Transition: %d %s",
	    (int) st.code, st.message);
	cr_assert_eq(a->s[1].version, before.version);
	st = skills_add(c, "induction", 0.125);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "Skills/Update: %d %s",
	    (int) st.code, st.message);
	version_after =
	    skills_of(c, "induction", &level_after, &attempts_after);
	cr_assert_eq(version_after, version,
	    "a failed skills update stayed: version %llu, then %llu after "
	    "an UNAVAILABLE update (induction %g -> %g, attempts %llu -> "
	    "%llu)",
	    (unsigned long long) version, (unsigned long long) version_after,
	    level, level_after, (unsigned long long) attempts,
	    (unsigned long long) attempts_after);
	cr_assert_float_eq(level_after, level, 1e-12);
	cr_assert_eq(attempts_after, attempts);

	/* Many callers at once, a reader listing all along. */
	failing_phase(url, a, causes);

	/* Reads work, and show exactly what was acknowledged. */
	check_exactly(c, a, "while the store cannot commit");

	/* Still NOT_SERVING after two of the store's retries (about 1 s
	 * each): a retry that writes nothing must not pass for a commit. */
	for (long end = now_ms() + 2500; now_ms() < end;) {
		status = health(c);
		cr_assert_eq(status,
		    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
		    "Health went %d while the fault lasts", status);
		pause_ms(100);
	}
}

/* After the fault is gone: SERVING again within 10 s, no restart, and
 * writes work; then a restart finds every acknowledged session. PORT:
 * zosd's metrics port (it serves them after the restart too), or NULL. */
static void
check_recovers(zrpc_client **c, struct proc *p, const struct fdir *d,
    struct ackset *a, int *port)
{
	int         status;
	zrpc_status st;
	uint64_t    skills_version, attempts, attempts_after;
	double      level, level_after;

	status = health_wait(*c,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING, 10000);
	cr_assert_eq(status,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
	    "Health is %d 10 s after the fault went", status);
	st = start_session(*c, "recovered", a);
	cr_assert_eq(st.code, ZRPC_OK, "Start after recovery: %s", st.message);
	st = transition(*c, &a->s[0], ZOS__V1__PROOF_STATE__FEEDBACK_READY);
	cr_assert_eq(
	    st.code, ZRPC_OK, "Transition after recovery: %s", st.message);
	cr_assert_eq(skills_add(*c, "cases", 0.0625).code, ZRPC_OK);
	check_exactly(*c, a, "after recovery");
	skills_version = skills_of(*c, "cases", &level, &attempts);
	zrpc_client_close(*c);
	if (port != NULL) {
		expect_metric(*port, "zos_store_healthy", 1);
	}
	zosd_stop(p);

	if (port != NULL) {
		zosd_ready_metrics(p, d, port);
	} else {
		zosd_ready(p, d);
	}
	*c = client_open(d->url);
	check_exactly(*c, a, "after a restart");
	cr_assert_eq(skills_of(*c, "cases", &level_after, &attempts_after),
	    skills_version, "the skill vector's version changed in a restart");
	cr_assert_float_eq(level_after, level, 1e-12);
	cr_assert_eq(attempts_after, attempts);
}

/* Starts N sessions, and moves the first to ANALYZING. */
static void
start_some(zrpc_client *c, struct ackset *a, int n)
{
	for (int i = 0; i < n; i++) {
		zrpc_status st = start_session(c, "before", a);

		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	}
	cr_assert_eq(
	    transition(c, &a->s[0], ZOS__V1__PROOF_STATE__ANALYZING).code,
	    ZRPC_OK);
}

Test(store_faults, disk_full_fails_writes_undone_and_recovers_without_restart,
    .timeout = 240)
{
	static struct ackset a;
	struct fdir          d;
	struct proc          p;
	zrpc_client         *c;
	char                 filler[128];
	int                  port;

	fdir_make(&d);
	tmpfs_mount(&d, "2m");
	ackset_init(&a);
	zosd_ready_metrics(&p, &d, &port);
	c = client_open(d.url);
	start_some(c, &a, 5);
	cr_assert_eq(skills_add(c, "induction", 0.25).code, ZRPC_OK);
	expect_metric(port, "zos_store_healthy", 1);
	expect_metric(port, "zos_store_commit_failures_total", 0);

	fill(d.data, filler, sizeof(filler));
	check_cannot_commit(&p, c, d.url, &a, full_causes);
	expect_metric(port, "zos_store_healthy", 0);
	cr_assert_geq(metric(port, "zos_store_commit_failures_total"), 1,
	    "zos_store_commit_failures_total did not count the failure");

	cr_assert_eq(unlink(filler), 0);
	check_recovers(&c, &p, &d, &a, &port);
	expect_metric(port, "zos_store_healthy", 1);
	zrpc_client_close(c);
	zosd_stop(&p);
}

/*
 * The disk filled by the store's own WAL: on a small disk the WAL grows
 * with each commit (SQLite checkpoints it only at 1000 pages, 4 MiB) until
 * the disk is full, though the database holds a few pages. Then an
 * operator frees some space (a ballast file laid down before zosd
 * started): writes work again with no restart, and nothing acknowledged
 * is lost.
 */
Test(store_faults, a_disk_filled_by_the_wal_recovers_once_space_is_freed,
    .timeout = 240)
{
	static struct ackset a;
	struct fdir          d;
	struct proc          p;
	zrpc_client         *c;
	zrpc_status          st;
	static const int     cycle[] = { ZOS__V1__PROOF_STATE__ANALYZING,
		    ZOS__V1__PROOF_STATE__FEEDBACK_READY,
		    ZOS__V1__PROOF_STATE__AWAITING_SOLUTION };
	int                  n, status, fd;
	char                 ballast[128];
	static const char    block[4096] = { 0x77 };

	fdir_make(&d);
	tmpfs_mount(&d, "1m");
	snprintf(ballast, sizeof(ballast), "%s/ballast", d.data);
	fd = open(ballast, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	for (int i = 0; i < 64; i++) { /* 256 KiB */
		cr_assert_eq(
		    write(fd, block, sizeof(block)), (ssize_t) sizeof(block));
	}
	close(fd);
	ackset_init(&a);
	zosd_ready(&p, &d);
	c  = client_open(d.url);
	st = start_session(c, "wal", &a);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	for (n = 0; n < 5000; n++) {
		st = transition(c, &a.s[0], cycle[n % 3]);
		if (st.code != ZRPC_OK) {
			break;
		}
	}
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE,
	    "after %d transitions: code %d: %s", n, (int) st.code, st.message);
	cr_log_info(
	    "the WAL filled the disk after %d commits: %s", n, st.message);

	cr_assert_eq(unlink(ballast), 0);
	/* Writes work again within 10 s (tried every 100 ms), then Health
	 * says so. */
	for (long end = now_ms() + 10000;;) {
		st = transition(c, &a.s[0], cycle[n % 3]);
		if (st.code == ZRPC_OK || now_ms() >= end) {
			break;
		}
		pause_ms(100);
	}
	cr_assert_eq(st.code, ZRPC_OK,
	    "writes still fail 10 s after space was freed: %s; "
	    "zosd:\n%s",
	    st.message, zosd_output(&p));
	status = health(c);
	cr_assert_eq(status,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
	    "Health is %d once writes work", status);
	check_exactly(c, &a, "after the WAL filled the disk");
	zrpc_client_close(c);
	zosd_stop(&p);
	zosd_ready(&p, &d);
	c = client_open(d.url);
	check_exactly(c, &a, "after a restart");
	zrpc_client_close(c);
	zosd_stop(&p);
}

/* Sets or clears the immutable flag of every file in DATA and of DATA:
 * on ext4 that fails writes through descriptors already open with EPERM,
 * root's included. */
static void
immutable(const char *data, bool on)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && for f in zos.db zos.db-wal; do [ -e \"$f\" ] && "
	    "chattr %ci \"$f\"; done; chattr %ci .",
	    data, on ? '+' : '-', on ? '+' : '-');
	cr_assert_eq(run(cmd), 0, "%s", cmd);
}

/*
 * Read-only. `mount -o remount,ro` is what the issue names, but Linux
 * refuses it (EBUSY) while a file on the filesystem is open for writing,
 * as zos.db and its WAL are while zosd runs (with a store that closes them
 * between commits it would succeed, and is used then). Otherwise the files
 * and the directory are made immutable on ext4 (chattr +i), whose writes
 * then fail with EPERM through descriptors already open, root's too: the
 * same refusal of every write a read-only filesystem gives.
 */
Test(store_faults, read_only_fails_writes_undone_and_recovers_without_restart,
    .timeout = 240)
{
	static struct ackset a;
	struct fdir          d;
	struct proc          p;
	zrpc_client         *c;
	bool                 remounted;

	fdir_make(&d);
	ext4_mount(&d);
	ackset_init(&a);
	zosd_ready(&p, &d);
	c = client_open(d.url);
	start_some(c, &a, 5);
	cr_assert_eq(skills_add(c, "induction", 0.25).code, ZRPC_OK);

	remounted =
	    mount(NULL, d.data, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0;
	if (!remounted) {
		cr_assert_eq(errno, EBUSY, "remount,ro: %s", strerror(errno));
		cr_log_info("remount,ro refused (EBUSY: zosd holds files "
		            "open for writing): chattr +i instead");
		immutable(d.data, true);
	}
	check_cannot_commit(&p, c, d.url, &a, readonly_causes);

	if (remounted) {
		cr_assert_eq(mount(NULL, d.data, NULL, MS_REMOUNT, NULL), 0,
		    "remount,rw: %s", strerror(errno));
	} else {
		immutable(d.data, false);
	}
	check_recovers(&c, &p, &d, &a, NULL);
	zrpc_client_close(c);
	zosd_stop(&p);
}

/*
 * The directory replaced: zosd A runs on DIR; DIR is removed (rm -rf) and
 * zosd B starts on the same path (a fresh lock). A must never write into
 * B's directory: its writes get UNAVAILABLE and its Health says
 * NOT_SERVING; what B acknowledged survives B's restart, and nothing of
 * A's appears there.
 */
Test(store_faults, a_replaced_directory_is_never_written, .timeout = 240)
{
	static struct ackset a_acked, b_acked;
	struct fdir          d;
	struct proc          pa, pb;
	zrpc_client         *ca, *cb;
	char                 url_b[128];
	zrpc_status          st;
	int                  status, rc;

	fdir_make(&d);
	fdir_url2(&d, url_b, sizeof(url_b));
	ackset_init(&a_acked);
	ackset_init(&b_acked);
	zosd_ready(&pa, &d);
	ca = client_open(d.url);
	start_some(ca, &a_acked, 3);

	cr_assert_eq(test_tmpdir_remove(d.data), 0);
	zosd_ready_on(&pb, d.data, url_b);
	cb = client_open(url_b);
	st = start_session(cb, "b", &b_acked);
	cr_assert_eq(st.code, ZRPC_OK, "B: %s", st.message);

	/* A: every write refused, the first with the cause. */
	st = start_session(ca, "a-after", NULL);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE,
	    "A acknowledged a write after its directory was replaced "
	    "(code %d: %s)",
	    (int) st.code, st.message);
	cr_assert(names_cause(st.message, replaced_causes),
	    "UNAVAILABLE without its cause: \"%s\"", st.message);
	st = transition(ca, &a_acked.s[1], ZOS__V1__PROOF_STATE__ANALYZING);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "A's Transition: %d %s",
	    (int) st.code, st.message);
	st = skills_add(ca, "induction", 0.5);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "A's Skills/Update: %d %s",
	    (int) st.code, st.message);
	status = health_wait(ca,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
	    3000);
	cr_assert_eq(status,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING,
	    "A's Health is %d (zos.v1.Session's: %d)", status,
	    health_of(ca, "zos.v1.Session"));
	/* A still reads what it had. */
	check_exactly(ca, &a_acked, "A after the replacement");
	/* And stays refused past its retries. */
	for (long end = now_ms() + 2500; now_ms() < end;) {
		cr_assert_eq(health(ca),
		    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
		pause_ms(100);
	}
	st = start_session(ca, "a-later", NULL);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "A later: %d %s",
	    (int) st.code, st.message);
	zrpc_client_close(ca);
	/* A ends (its exit status is its own business: it cannot write). */
	kill(pa.pid, SIGTERM);
	rc = proc_wait(&pa);
	cr_log_info("A exited %d", rc);

	/* B is unharmed, and holds only its own. */
	st = start_session(cb, "b2", &b_acked);
	cr_assert_eq(st.code, ZRPC_OK, "B: %s", st.message);
	check_exactly(cb, &b_acked, "B");
	zrpc_client_close(cb);
	zosd_stop(&pb);
	zosd_ready_on(&pb, d.data, url_b);
	cb = client_open(url_b);
	check_exactly(cb, &b_acked, "B after a restart");
	for (size_t i = 0; i < atomic_load(&a_acked.n); i++) {
		Zos__V1__ProofSession *s;

		st = get_session(cb, a_acked.s[i].id, &s);
		cr_assert_eq(st.code, ZRPC_NOT_FOUND,
		    "A's %s in B's directory", a_acked.s[i].id);
	}
	zrpc_client_close(cb);
	zosd_stop(&pb);
}

/* zosd on D must exit 1 within the bound of proc_wait (a hang is killed
 * and fails the test), naming FILE. */
static void
expect_refused(const struct fdir *d, const char *file)
{
	struct proc p;
	int         rc;

	zosd_start_on(&p, d->data, d->url);
	rc = proc_wait(&p);
	cr_assert_eq(rc, 1, "zosd exited %d (1 expected):\n%s", rc, p.text);
	cr_assert(strstr(p.text, file) != NULL, "the message names no %s:\n%s",
	    file, p.text);
}

/* A data directory made by zosd with N sessions, stopped. Its zos.db in
 * DB. The WAL is checkpointed so that zos.db alone holds every page. */
static void
make_db(const struct fdir *d, int n, char *db, size_t len)
{
	struct proc  p;
	zrpc_client *c;
	char         wal[160];
	struct stat  st;

	zosd_ready(&p, d);
	c = client_open(d->url);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(start_session(c, "db", NULL).code, ZRPC_OK);
	}
	zrpc_client_close(c);
	zosd_stop(&p);
	snprintf(db, len, "%s/zos.db", d->data);
	cr_assert_eq(stat(db, &st), 0, "%s: %s", db, strerror(errno));
	snprintf(wal, sizeof(wal), "%s-wal", db);
	if (stat(wal, &st) == 0 && st.st_size > 0) {
		char cmd[256];

		cr_assert(have_sqlite3(),
		    "%s is not empty after a clean stop, "
		    "and no sqlite3 to checkpoint it",
		    wal);
		snprintf(cmd, sizeof(cmd),
		    "sqlite3 '%s' 'PRAGMA wal_checkpoint(TRUNCATE);' "
		    ">/dev/null",
		    db);
		cr_assert_eq(run(cmd), 0);
	}
}

/* FNV-1a of the file at PATH (the whole of it), and its size in *SIZE. */
static uint64_t
file_hash(const char *path, off_t *size)
{
	unsigned char buf[8192];
	uint64_t      h  = 1469598103934665603ull;
	int           fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t       n;

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			h = (h ^ buf[i]) * 1099511628211ull;
		}
		*size += n;
	}
	close(fd);
	return h;
}

/* Writes LEN bytes of BYTE at OFFSET of PATH. */
static void
overwrite(const char *path, off_t offset, size_t len, unsigned char byte)
{
	unsigned char buf[65536];
	int           fd = open(path, O_WRONLY | O_CLOEXEC);

	cr_assert(fd >= 0 && len <= sizeof(buf));
	memset(buf, byte, len);
	cr_assert_eq(pwrite(fd, buf, len, offset), (ssize_t) len);
	cr_assert_eq(fsync(fd), 0);
	close(fd);
}

/* The page size in the database header (bytes 16-17, big endian; 1 means
 * 65536). */
static size_t
db_page_size(const char *db)
{
	unsigned char h[18];
	int           fd = open(db, O_RDONLY | O_CLOEXEC);
	unsigned      v;

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, h, sizeof(h), 0), (ssize_t) sizeof(h));
	close(fd);
	v = (unsigned) h[16] << 8 | h[17];
	return v == 1 ? 65536 : v;
}

/* zosd refuses DB (exit 1, naming it) and leaves its bytes as they were. */
static void
expect_refused_untouched(const struct fdir *d, const char *db)
{
	off_t    size_before, size_after;
	uint64_t before = file_hash(db, &size_before);

	expect_refused(d, db);
	cr_assert_eq(file_hash(db, &size_after), before,
	    "%s changed (%lld bytes before, %lld after)", db,
	    (long long) size_before, (long long) size_after);
	cr_assert_eq(size_after, size_before);
	/* And again: the refusal is not a one-off that repaired something. */
	expect_refused(d, db);
	cr_assert_eq(file_hash(db, &size_after), before);
}

Test(store_faults, a_fifo_as_the_database_is_refused_not_waited_on,
    .timeout = 120)
{
	struct fdir d;
	char        db[160];

	fdir_make(&d);
	cr_assert_eq(mkdir(d.data, 0700), 0);
	snprintf(db, sizeof(db), "%s/zos.db", d.data);
	cr_assert_eq(mkfifo(db, 0600), 0);
	expect_refused(&d, db);
}

Test(store_faults, a_dangling_symlink_as_the_database_is_refused,
    .timeout = 120)
{
	struct fdir d;
	char        db[160], target[160];
	struct stat st;

	fdir_make(&d);
	cr_assert_eq(mkdir(d.data, 0700), 0);
	snprintf(db, sizeof(db), "%s/zos.db", d.data);
	snprintf(target, sizeof(target), "%s/elsewhere.db", d.root);
	cr_assert_eq(symlink(target, db), 0);
	expect_refused(&d, db);
	/* Not followed and created either. */
	cr_assert_neq(lstat(target, &st), 0, "%s was created", target);
}

Test(store_faults, a_symlink_to_a_real_database_is_refused, .timeout = 120)
{
	struct fdir real, d;
	char        real_db[160], db[160];
	off_t       size;
	uint64_t    before;

	fdir_make(&real);
	make_db(&real, 3, real_db, sizeof(real_db));
	before = file_hash(real_db, &size);
	fdir_make(&d);
	cr_assert_eq(mkdir(d.data, 0700), 0);
	snprintf(db, sizeof(db), "%s/zos.db", d.data);
	cr_assert_eq(symlink(real_db, db), 0);
	expect_refused(&d, db);
	cr_assert_eq(file_hash(real_db, &size), before, "the target changed");
}

/* The old files to import: a FIFO or a dangling link in their place. */
Test(store_faults, a_fifo_or_a_symlink_as_a_snapshot_to_import_is_refused,
    .timeout = 120)
{
	struct fdir d;
	char        file[160], target[160];

	fdir_make(&d);
	cr_assert_eq(mkdir(d.data, 0700), 0);
	snprintf(file, sizeof(file), "%s/sessions.snap", d.data);
	cr_assert_eq(mkfifo(file, 0600), 0);
	expect_refused(&d, file);
	cr_assert_eq(unlink(file), 0);

	snprintf(file, sizeof(file), "%s/skills.snap", d.data);
	snprintf(target, sizeof(target), "%s/gone.snap", d.root);
	cr_assert_eq(symlink(target, file), 0);
	expect_refused(&d, file);
}

Test(store_faults, a_corrupt_page_2_is_refused_and_left_untouched,
    .timeout = 120)
{
	struct fdir d;
	char        db[160];
	size_t      page;

	fdir_make(&d);
	make_db(&d, 200, db, sizeof(db));
	page = db_page_size(db);
	overwrite(db, (off_t) page, page, 0xa5); /* page 2, whole */
	expect_refused_untouched(&d, db);
}

Test(store_faults, a_corrupt_page_in_the_middle_is_refused_and_left_untouched,
    .timeout = 120)
{
	struct fdir d;
	char        db[160];
	size_t      page;
	off_t       size;

	fdir_make(&d);
	make_db(&d, 400, db, sizeof(db));
	page = db_page_size(db);
	file_hash(db, &size);
	cr_assert_geq(
	    size / (off_t) page, 4, "zos.db has %lld bytes", (long long) size);
	/* Bytes in the middle of the middle page: a row's cells. */
	overwrite(db,
	    (size / (off_t) page / 2) * (off_t) page + (off_t) page / 4,
	    page / 2, 0x3c);
	expect_refused_untouched(&d, db);
}

Test(store_faults,
    a_file_of_junk_as_the_database_is_refused_and_left_untouched,
    .timeout = 120)
{
	struct fdir   d;
	char          db[160];
	unsigned char junk[8192];
	unsigned      seed = 12;
	int           fd;

	fdir_make(&d);
	cr_assert_eq(mkdir(d.data, 0700), 0);
	snprintf(db, sizeof(db), "%s/zos.db", d.data);
	for (size_t i = 0; i < sizeof(junk); i++) {
		junk[i] = (unsigned char) rand_r(&seed);
	}
	fd = open(db, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t) sizeof(junk));
	close(fd);
	expect_refused_untouched(&d, db);
}

Test(store_faults, a_schema_from_the_future_is_refused_and_left_untouched,
    .timeout = 120)
{
	struct fdir d;
	char        db[160], cmd[512];

	if (!have_sqlite3()) {
		cr_skip_test("no sqlite3 CLI (scripts/setup installs it)");
	}
	fdir_make(&d);
	make_db(&d, 3, db, sizeof(db));
	snprintf(cmd, sizeof(cmd),
	    "sqlite3 '%s' \"UPDATE meta SET value=2 WHERE "
	    "key='schema_version';\" && test \"$(sqlite3 '%s' \"SELECT value "
	    "FROM meta WHERE key='schema_version';\")\" = 2",
	    db, db);
	cr_assert_eq(run(cmd), 0, "%s", cmd);
	expect_refused_untouched(&d, db);
}

/* --- migration of the old snapshot files --------------------------- */

/* The fixture (tests/integration/fixtures/snap-v0/README.md). */
static const struct {
	const char *id, *problem;
	int         state;
	uint64_t    version;
	int64_t     created, updated;
} fixture_sessions[] = {
	{ "8735af27240f78ba4ed634f12ec1af92", "fixture-a",
	    ZOS__V1__PROOF_STATE__AWAITING_SOLUTION, 1, 1796615371400,
	    1796615371400 },
	{ "c8443ea3045fd99f909137c4f5780f68", "fixture-b",
	    ZOS__V1__PROOF_STATE__ANALYZING, 2, 1796615371407, 1796615373299 },
	{ "6537b57aedecaefeb24782d7dd960535", "fixture-c",
	    ZOS__V1__PROOF_STATE__SOLVED, 4, 1796615371416, 1796615373336 },
};
#define FIXTURE_SESSIONS 3
#define FIXTURE_SKILLS_VERSION 2

static void
copy_file(const char *from, const char *to)
{
	char    buf[65536];
	int     in  = open(from, O_RDONLY | O_CLOEXEC);
	int     out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ssize_t n;

	cr_assert(in >= 0, "%s: %s", from, strerror(errno));
	cr_assert(out >= 0, "%s: %s", to, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		cr_assert_eq(write(out, buf, (size_t) n), n);
	}
	cr_assert_eq(n, 0);
	cr_assert_eq(fsync(out), 0);
	close(in);
	close(out);
}

/* D->data: a copy of the old-format fixture directory. */
static void
fixture_copy(const struct fdir *d)
{
	static const char *const names[] = { "skills.snap", "sessions.snap" };
	char                     from[512], to[160];

	cr_assert_eq(mkdir(d->data, 0700), 0);
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof(from),
		    "%s/tests/integration/fixtures/snap-v0/%s",
		    env_path("ZOS_SOURCE_ROOT"), names[i]);
		snprintf(to, sizeof(to), "%s/%s", d->data, names[i]);
		copy_file(from, to);
	}
}

static bool
exists(const struct fdir *d, const char *name)
{
	char        path[192];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", d->data, name);
	return lstat(path, &st) == 0;
}

/* zosd on D (importing it, if it still holds old files) serves the
 * fixture's sessions and skill vector, and afterwards the directory is
 * fully imported: zos.db, both *.snap.imported, no *.snap. */
static void
check_imported(const struct fdir *d, const char *when)
{
	struct proc  p;
	zrpc_client *c;
	static char  ids[64][40];
	uint64_t     total, attempts, version;
	double       level;

	zosd_ready(&p, d);
	c = client_open(d->url);
	for (int i = 0; i < FIXTURE_SESSIONS; i++) {
		Zos__V1__ProofSession *s;
		zrpc_status st = get_session(c, fixture_sessions[i].id, &s);

		cr_assert_eq(st.code, ZRPC_OK, "%s: %s: %s", when,
		    fixture_sessions[i].id, st.message);
		cr_assert_str_eq(s->problem_id, fixture_sessions[i].problem);
		cr_assert_eq((int) s->state, fixture_sessions[i].state,
		    "%s: %s", when, s->id);
		cr_assert_eq(s->version, fixture_sessions[i].version, "%s: %s",
		    when, s->id);
		cr_assert_eq(s->created_unix_ms, fixture_sessions[i].created);
		cr_assert_eq(s->updated_unix_ms, fixture_sessions[i].updated);
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	cr_assert_eq(
	    list_ids(c, ids, 64, &total), FIXTURE_SESSIONS, "%s", when);
	cr_assert_eq(total, FIXTURE_SESSIONS, "%s", when);
	version = skills_of(c, "induction", &level, &attempts);
	cr_assert_eq(version, FIXTURE_SKILLS_VERSION, "%s: skills v%llu", when,
	    (unsigned long long) version);
	cr_assert_float_eq(level, 0.875, 1e-12, "%s", when);
	cr_assert_eq(attempts, 2, "%s", when);
	skills_of(c, "cases", &level, &attempts);
	cr_assert_float_eq(level, 0.375, 1e-12, "%s", when);
	cr_assert_eq(attempts, 1, "%s", when);
	skills_of(c, "construction", &level, &attempts);
	cr_assert_float_eq(level, 0.5, 1e-12, "%s", when);
	cr_assert_eq(attempts, 0, "%s", when);
	zrpc_client_close(c);
	zosd_stop(&p);
	cr_assert(exists(d, "zos.db"), "%s: no zos.db", when);
	cr_assert(exists(d, "skills.snap.imported"),
	    "%s: no skills.snap.imported", when);
	cr_assert(exists(d, "sessions.snap.imported"),
	    "%s: no sessions.snap.imported", when);
	cr_assert(!exists(d, "skills.snap"), "%s: skills.snap left", when);
	cr_assert(!exists(d, "sessions.snap"), "%s: sessions.snap left", when);
}

Test(store_faults, old_snapshot_files_are_imported_once, .timeout = 120)
{
	struct fdir  d;
	struct proc  p;
	zrpc_client *c;
	char         imported[192];
	off_t        size;
	uint64_t     hash_imported, version;
	double       level;
	uint64_t     attempts;
	struct acked s = { .version = 2,
		.state              = ZOS__V1__PROOF_STATE__ANALYZING };

	fdir_make(&d);
	fixture_copy(&d);
	check_imported(&d, "after the import");
	snprintf(
	    imported, sizeof(imported), "%s/sessions.snap.imported", d.data);
	hash_imported = file_hash(imported, &size);

	/* Changes after the import, then a restart: they stay (nothing is
	 * imported again over them), the old files stay as they were. */
	zosd_ready(&p, &d);
	c = client_open(d.url);
	snprintf(s.id, sizeof(s.id), "%s", fixture_sessions[1].id);
	cr_assert_eq(
	    transition(c, &s, ZOS__V1__PROOF_STATE__FEEDBACK_READY).code,
	    ZRPC_OK);
	cr_assert_eq(s.version, 3);
	cr_assert_eq(skills_add(c, "induction", -0.5).code, ZRPC_OK);
	zrpc_client_close(c);
	zosd_stop(&p);

	zosd_ready(&p, &d);
	c = client_open(d.url);
	{
		Zos__V1__ProofSession *got;

		cr_assert_eq(get_session(c, s.id, &got).code, ZRPC_OK);
		cr_assert_eq(got->version, 3);
		cr_assert_eq(got->state, ZOS__V1__PROOF_STATE__FEEDBACK_READY);
		zos__v1__proof_session__free_unpacked(got, NULL);
	}
	version = skills_of(c, "induction", &level, &attempts);
	cr_assert_eq(version, FIXTURE_SKILLS_VERSION + 1);
	cr_assert_float_eq(level, 0.375, 1e-12);
	cr_assert_eq(attempts, 3);
	zrpc_client_close(c);
	zosd_stop(&p);
	cr_assert_eq(file_hash(imported, &size), hash_imported);
	cr_assert(!exists(&d, "sessions.snap") && !exists(&d, "skills.snap"));
}

/* The import killed (SIGKILL, by zosd itself) at POINT, then zosd started
 * without it: fully imported, nothing lost, nothing twice. */
static void
crash_import_at(const char *point)
{
	struct fdir d;
	struct proc p;
	char        when[96];
	int         rc;

	fdir_make(&d);
	fixture_copy(&d);
	cr_assert_eq(setenv("ZOS_TEST_CRASH_POINT", point, 1), 0);
	zosd_start_on(&p, d.data, d.url);
	cr_assert_eq(unsetenv("ZOS_TEST_CRASH_POINT"), 0);
	rc = proc_wait(&p);
	cr_assert_eq(rc, -SIGKILL,
	    "ZOS_TEST_CRASH_POINT=%s: zosd exited %d, not killed:\n%s", point,
	    rc, p.text);
	/* Whatever the crash left, the old files are never deleted. */
	cr_assert(
	    exists(&d, "skills.snap") || exists(&d, "skills.snap.imported"),
	    "%s: skills.snap deleted", point);
	cr_assert(exists(&d, "sessions.snap") ||
	        exists(&d, "sessions.snap.imported"),
	    "%s: sessions.snap deleted", point);
	snprintf(when, sizeof(when), "after a crash at %s", point);
	check_imported(&d, when);
	/* A later start is the same (nothing imported twice). */
	snprintf(
	    when, sizeof(when), "the second start after a crash at %s", point);
	check_imported(&d, when);
	test_tmpdir_remove(d.root);
}

Test(store_faults, an_import_killed_at_each_step_leaves_old_or_new,
    .timeout = 300)
{
	static const char *const points[] = { "import-begun",
		"import-inserted", "import-committed", "import-renamed-one" };

	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		crash_import_at(points[i]);
	}
}

/* --- backup and restore ------------------------------------------- */

/* Restores BACKUP into a fresh directory and checks it holds A. */
static void
check_restore(const char *backup, struct ackset *a)
{
	struct fdir  d;
	struct proc  p;
	zrpc_client *c;
	char         db[160];
	double       level;
	uint64_t     attempts;

	fdir_make(&d);
	cr_assert_eq(mkdir(d.data, 0700), 0);
	snprintf(db, sizeof(db), "%s/zos.db", d.data);
	copy_file(backup, db);
	zosd_ready(&p, &d);
	c = client_open(d.url);
	check_exactly(c, a, backup);
	skills_of(c, "induction", &level, &attempts);
	cr_assert_float_eq(level, 0.75, 1e-12, "%s", backup);
	cr_assert_eq(attempts, 1);
	zrpc_client_close(c);
	zosd_stop(&p);
}

Test(store_faults, a_backup_of_a_running_zosd_restores, .timeout = 180)
{
	static struct ackset a;
	struct fdir          d;
	struct proc          p;
	zrpc_client         *c;
	char                 backup[128], vacuumed[128], cmd[512];

	if (!have_sqlite3()) {
		cr_skip_test("no sqlite3 CLI (scripts/setup installs it)");
	}
	fdir_make(&d);
	ackset_init(&a);
	snprintf(backup, sizeof(backup), "%s/backup.db", d.root);
	snprintf(vacuumed, sizeof(vacuumed), "%s/vacuumed.db", d.root);
	zosd_ready(&p, &d);
	c = client_open(d.url);
	start_some(c, &a, 40);
	cr_assert_eq(
	    transition(c, &a.s[0], ZOS__V1__PROOF_STATE__FEEDBACK_READY).code,
	    ZRPC_OK);
	cr_assert_eq(skills_add(c, "induction", 0.25).code, ZRPC_OK);

	/* Taken while zosd runs (and holds its lock). */
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s/zos.db' \".backup '%s'\"",
	    d.data, backup);
	cr_assert_eq(run(cmd), 0, "%s", cmd);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s/zos.db' \"VACUUM INTO '%s'\"",
	    d.data, vacuumed);
	cr_assert_eq(run(cmd), 0, "%s", cmd);
	/* zosd goes on writing meanwhile; the backups hold what they held. */
	cr_assert_eq(health(c),
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	cr_assert_eq(start_session(c, "after-backup", NULL).code, ZRPC_OK);
	zrpc_client_close(c);
	zosd_stop(&p);

	check_restore(backup, &a);
	check_restore(vacuumed, &a);
}
