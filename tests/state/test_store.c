/*
 * Tests for the store (zos/state/store.c over db.c and flusher.c): skills
 * and sessions that survive close and open in DIR/zos.db, one transaction
 * per group commit of only the rows that changed, a corrupt or strange
 * database that is reported (naming the file) and left alone, files that
 * are not regular refused without a hang, the import of an old directory
 * of snapshot files, and a failed commit that is undone in memory so
 * that readers only ever see what is durable.
 *
 * Everything runs in process, with real zos_skills and zos_sessions
 * tables tracking their changes as zosd's state makes them. What is on
 * disk is checked with SQLite's C API on zos.db once the store is
 * closed. Each test works in its own directory under /tmp, removed by the
 * fixture whether the test passes or not.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "codec.h"
#include "snapshot.h"
#include "state.h"
#include "store.h"
#include "tmpdir.h"

/* The parts a store copies from, as zosd would have them. */
struct parts {
	struct zos_lock_domain domain;
	struct zos_skills      skills;
	struct zos_sessions   *sessions;
	struct zos_store      *store;
};

/* What config.health was told. */
struct health_seen {
	pthread_mutex_t mtx;
	int             bad;  /* calls with ok = false */
	int             good; /* calls with ok = true */
	char            why[512];
};

/* What a test leaves for the fixture to clean up. */
struct store_fixture {
	char               root[64]; /* the test's directory */
	char               dir[128]; /* the data directory in it */
	pthread_mutex_t    log_mtx;
	char               log[8192]; /* everything logged, one line each */
	struct health_seen health;
};

static struct store_fixture fx;

static void
fixture_init(void)
{
	snprintf(fx.root, sizeof(fx.root), "/tmp/zos-store-XXXXXX");
	cr_assert_not_null(mkdtemp(fx.root));
	snprintf(fx.dir, sizeof(fx.dir), "%s/data", fx.root);
	pthread_mutex_init(&fx.log_mtx, NULL);
	pthread_mutex_init(&fx.health.mtx, NULL);
	fx.log[0]        = '\0';
	fx.health.bad    = 0;
	fx.health.good   = 0;
	fx.health.why[0] = '\0';
}

static void
fixture_fini(void)
{
	test_tmpdir_remove(fx.root);
}

TestSuite(store, .init = fixture_init, .fini = fixture_fini);

static void
test_log(void *arg, zrpc_log_level level, const char *message)
{
	size_t used;

	(void) arg;
	(void) level;
	pthread_mutex_lock(&fx.log_mtx);
	used = strlen(fx.log);
	snprintf(fx.log + used, sizeof(fx.log) - used, "%s\n", message);
	pthread_mutex_unlock(&fx.log_mtx);
}

/* The lock domain's reports: on stderr, since a violation aborts. */
static void
lock_log(void *arg, zrpc_log_level level, const char *message)
{
	(void) arg;
	(void) level;
	fprintf(stderr, "lock: %s\n", message);
}

static void
test_health(void *arg, bool ok, const char *why)
{
	struct health_seen *h = arg;

	pthread_mutex_lock(&h->mtx);
	if (ok) {
		h->good++;
	} else {
		h->bad++;
	}
	snprintf(h->why, sizeof(h->why), "%s", why);
	pthread_mutex_unlock(&h->mtx);
}

static void
path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", fx.dir, name);
}

/* Opens DIR, asserting success. */
static struct zos_store *
open_ok(const char *dir)
{
	struct zos_store_config config = {
		.dir        = dir,
		.log        = test_log,
		.health     = test_health,
		.health_arg = &fx.health,
	};
	struct zos_store *store = NULL;
	char              err[512];

	cr_assert_eq(zos_store_open(&config, &store, err, sizeof(err)), 0,
	    "open %s: %s", dir, err);
	return store;
}

/* Opens DIR, asserting failure; the message goes to ERR. */
static void
open_fails(const char *dir, char *err, size_t err_len)
{
	struct zos_store_config config = { .dir = dir, .log = test_log };
	struct zos_store       *store  = NULL;

	err[0] = '\0';
	cr_assert_eq(zos_store_open(&config, &store, err, err_len), -1,
	    "open %s succeeded", dir);
	cr_assert_null(store);
}

/* Opens DIR and builds the parts from what it holds (or the defaults),
 * tracking changes as zosd's state does; the flusher is not started. */
static void
parts_open(struct parts *p, const char *dir)
{
	struct zos_sessions_image image;
	char                      err[256];

	memset(p, 0, sizeof(*p));
	zos_lock_domain_init(&p->domain, true, lock_log, NULL);
	p->store = open_ok(dir);
	cr_assert_eq(zos_skills_init(&p->skills, &p->domain,
	                 zos_store_take_skills(p->store)),
	    0);
	zos_skills_track(&p->skills);
	cr_assert_eq(
	    zos_sessions_create(&p->sessions, &p->domain, 0), ZOS_SESSION_OK);
	zos_sessions_track_changes(p->sessions, true);
	if (zos_store_take_sessions(p->store, &image)) {
		cr_assert_eq(zos_sessions_restore(
		                 p->sessions, &image, err, sizeof(err)),
		    ZOS_SESSION_OK, "%s", err);
	}
	zos_sessions_image_finish(&image);
}

static void
parts_start(struct parts *p)
{
	cr_assert_eq(zos_store_start(p->store, &p->skills, p->sessions), 0);
}

/* parts_open and parts_start on fx.dir. */
static void
parts_up(struct parts *p)
{
	parts_open(p, fx.dir);
	parts_start(p);
}

/* Closes the store first (it may still read the parts), then the parts. */
static void
parts_down(struct parts *p)
{
	cr_assert_eq(zos_locks_held_mask(), 0u);
	zos_store_close(p->store);
	zos_sessions_destroy(p->sessions);
	zos_skills_finish(&p->skills);
}

/* Commits PART up to SEQ and asserts it worked. */
static void
commit_ok(struct zos_store *store, enum zos_store_part part, uint64_t seq)
{
	char err[512];

	cr_assert_eq(zos_store_commit_wait(store, part, seq, err, sizeof(err)),
	    0, "commit %d up to %llu: %s", (int) part,
	    (unsigned long long) seq, err);
}

/* Starts a session owned by OWNER and commits it; returns it in *OUT. */
static void
start_durable_owned(struct parts *p, const char *problem, uint64_t owner,
    struct zos_session *out)
{
	cr_assert_eq(
	    zos_sessions_start_owned(p->sessions, problem, owner, out),
	    ZOS_SESSION_OK);
	commit_ok(p->store, ZOS_STORE_SESSIONS, zos_sessions_seq(p->sessions));
}

static void
start_durable(struct parts *p, const char *problem, struct zos_session *out)
{
	start_durable_owned(p, problem, ZOS_SESSION_OWNER_ANONYMOUS, out);
}

/* Updates skill NAME by DELTA and commits it (a writer asks for the
 * vector's change number, skills.h); returns the new version. */
static uint64_t
skills_durable(struct parts *p, const char *name, double delta)
{
	struct zos_skill_delta   d = { name, delta };
	struct zos_skill_vector *v;
	uint64_t                 version, seq;
	char                     err[256];

	cr_assert_eq(
	    zos_skills_update(&p->skills, &d, 1, 0, &v, err, sizeof(err)),
	    ZOS_SKILLS_OK, "%s", err);
	version = v->version;
	seq     = v->change_seq;
	zos_skill_vector_unref(v);
	commit_ok(p->store, ZOS_STORE_SKILLS, seq);
	return version;
}

/* The level of skill NAME in V; -1 when V has none. */
static double
level_of(const struct zos_skill_vector *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->skills[i].name, name) == 0) {
			return v->skills[i].level;
		}
	}
	return -1;
}

/* The whole file at PATH (malloc'd) and its length. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	unsigned char *buf;
	struct stat    st;
	FILE          *f = fopen(path, "rb");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fileno(f), &st), 0);
	buf = malloc((size_t) st.st_size + 1);
	cr_assert_not_null(buf);
	*len = fread(buf, 1, (size_t) st.st_size, f);
	cr_assert_eq(*len, (size_t) st.st_size);
	fclose(f);
	return buf;
}

static void
spit(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* Asserts that the file at PATH holds exactly the LEN bytes at BUF. */
static void
same_bytes(const char *path, const unsigned char *buf, size_t len)
{
	size_t         now_len;
	unsigned char *now = slurp(path, &now_len);

	cr_assert_eq(
	    now_len, len, "%s: %zu bytes, was %zu", path, now_len, len);
	cr_assert_eq(memcmp(now, buf, len), 0, "%s changed", path);
	free(now);
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Entries of directory PATH other than . and .. */
static int
entries_in(const char *path)
{
	DIR           *d = opendir(path);
	struct dirent *e;
	int            n = 0;

	cr_assert_not_null(d, "%s: %s", path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0) {
			n++;
		}
	}
	closedir(d);
	return n;
}

/*
 * The integer SQL answers on the database at PATH, opened on its own
 * (no store may have it open). -1 when SQL gives no row.
 */
static int64_t
db_int(const char *path, const char *sql)
{
	sqlite3      *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t       v  = -1;
	int           rc;

	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
	    SQLITE_OK, "%s: %s", path, sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
	    "%s: %s", sql, sqlite3_errmsg(db));
	rc = sqlite3_step(st);
	cr_assert(rc == SQLITE_ROW || rc == SQLITE_DONE, "%s: %s", sql,
	    sqlite3_errmsg(db));
	if (rc == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Runs SQL on the database at PATH, opened on its own. */
static void
db_exec(const char *path, const char *sql)
{
	sqlite3 *db  = NULL;
	char    *msg = NULL;

	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
	    SQLITE_OK, "%s: %s", path, sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK,
	    "%s: %s", sql, msg != NULL ? msg : "?");
	sqlite3_close(db);
}

/* DIR/zos.db's rows of the sessions table. */
static int64_t
db_sessions(void)
{
	char path[256];

	path_in(path, sizeof(path), "zos.db");
	return db_int(path, "SELECT count(*) FROM sessions");
}

/* The value of meta KEY in DIR/zos.db; -1 when there is none. */
static int64_t
db_meta(const char *key)
{
	char path[256], sql[256];

	path_in(path, sizeof(path), "zos.db");
	snprintf(
	    sql, sizeof(sql), "SELECT value FROM meta WHERE key = '%s'", key);
	return db_int(path, sql);
}

/* Session ID of IMAGE (asserted to be there). Sessions started in the
 * same millisecond may come back in another order (the database orders
 * them by creation time, then id). */
static const struct zos_session *
image_find(const struct zos_sessions_image *image, const char *id)
{
	for (size_t i = 0; i < image->count; i++) {
		if (strcmp(image->sessions[i].id, id) == 0) {
			return &image->sessions[i];
		}
	}
	cr_assert_fail("session %s is not in the image", id);
	return NULL;
}

/* A data directory with a database: three sessions, skills at 1. */
static void
make_data(struct zos_sessions_image *saved)
{
	struct parts       p;
	struct zos_session s;

	parts_up(&p);
	cr_assert_eq(skills_durable(&p, "induction", 0.25), 1);
	start_durable(&p, "p-1", &s);
	start_durable(&p, "p-2", &s);
	start_durable(&p, "p-3", &s);
	if (saved != NULL) {
		cr_assert_eq(
		    zos_sessions_snapshot(p.sessions, saved), ZOS_SESSION_OK);
	}
	parts_down(&p);
}

/* ------------------------------------------------------------------ */
/* Round trips. */

Test(store, skills_and_sessions_survive_close_and_open_owners_included)
{
	struct parts              p;
	struct zos_sessions_image before, after;
	struct zos_skill_vector  *saved, *loaded;
	struct zos_skill_delta    d1[] = { { "induction", 0.25 },
		   { "cases", -0.125 } };
	struct zos_skill_delta    d2   = { "induction", 0.0625 };
	struct zos_session        s[4], fresh, got;
	char                      err[256];

	parts_up(&p);
	cr_assert_eq(
	    zos_skills_update(&p.skills, d1, 2, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	cr_assert_eq(
	    zos_skills_update(&p.skills, &d2, 1, 0, &saved, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	cr_assert_eq(saved->version, 2);
	commit_ok(p.store, ZOS_STORE_SKILLS, saved->change_seq);
	for (int i = 0; i < 4; i++) {
		char problem[16];

		snprintf(problem, sizeof(problem), "problem-%d", i);
		cr_assert_eq(
		    zos_sessions_start_owned(p.sessions, problem,
		        i == 3 ? UINT64_MAX : 0x1000u + (uint64_t) i, &s[i]),
		    ZOS_SESSION_OK);
	}
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, s[1].id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, s[2].id, ZOS_PROOF_ABANDONED, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_reset(p.sessions, s[2].id, NULL), ZOS_SESSION_OK);
	commit_ok(p.store, ZOS_STORE_SESSIONS, zos_sessions_seq(p.sessions));
	cr_assert_eq(
	    zos_sessions_snapshot(p.sessions, &before), ZOS_SESSION_OK);
	cr_assert_eq(before.seq, 7);
	parts_down(&p);

	p.store = open_ok(fx.dir);
	loaded  = zos_store_take_skills(p.store);
	cr_assert_not_null(loaded);
	cr_assert_null(zos_store_take_skills(p.store)); /* taken once */
	cr_assert_eq(loaded->version, 2);
	cr_assert_eq(loaded->n, saved->n);
	for (size_t i = 0; i < saved->n; i++) {
		const struct zos_skill *k = NULL;

		for (size_t j = 0; j < loaded->n; j++) {
			if (strcmp(loaded->skills[j].name,
			        saved->skills[i].name) == 0) {
				k = &loaded->skills[j];
			}
		}
		cr_assert_not_null(k, "%s was lost", saved->skills[i].name);
		cr_assert_eq(k->level, saved->skills[i].level);
		cr_assert_eq(k->attempts, saved->skills[i].attempts);
	}
	cr_assert(zos_store_take_sessions(p.store, &after));
	cr_assert_eq(after.seq, before.seq);
	cr_assert_eq(after.count, before.count);
	for (size_t i = 0; i < before.count; i++) {
		const struct zos_session *b = &before.sessions[i];
		const struct zos_session *a = image_find(&after, b->id);

		cr_assert_str_eq(a->problem_id, b->problem_id);
		cr_assert_eq(a->state, b->state, "session %zu", i);
		cr_assert_eq(a->version, b->version, "session %zu", i);
		cr_assert_eq(a->created_unix_ms, b->created_unix_ms);
		cr_assert_eq(a->updated_unix_ms, b->updated_unix_ms);
		cr_assert_eq(a->owner, b->owner, "session %zu: owner", i);
	}
	zos_skill_vector_unref(loaded);
	zos_sessions_image_finish(&after);
	zos_store_close(p.store);

	/* Built up again, the table goes on where it was. */
	parts_up(&p);
	cr_assert_eq(zos_sessions_seq(p.sessions), 7);
	cr_assert_eq(p.skills.current->version, 2);
	cr_assert_eq(
	    zos_sessions_get(p.sessions, s[1].id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_ANALYZING);
	cr_assert_eq(got.owner, 0x1001u);
	start_durable(&p, "after", &fresh);
	for (size_t i = 0; i < before.count; i++) {
		cr_assert_str_neq(fresh.id, before.sessions[i].id);
	}
	parts_down(&p);
	zos_skill_vector_unref(saved);
	zos_sessions_image_finish(&before);

	/* What operators see with sqlite3. */
	cr_assert_eq(db_sessions(), 5);
	cr_assert_eq(db_meta("schema_version"), 1);
	cr_assert_eq(db_meta("sessions_seq"), 8);
	cr_assert_eq(db_meta("skills_version"), 2);
}

/* Skills/Get lists the skills in the vector's order (the skills file's,
 * or the defaults'): a restart must not change it. */
Test(store, the_skills_keep_their_order_across_a_restart)
{
	struct parts             p;
	struct zos_skill_vector *before, *after;

	parts_up(&p);
	skills_durable(&p, "induction", 0.25);
	before = zos_skills_get(&p.skills);
	parts_down(&p);
	parts_up(&p);
	after = zos_skills_get(&p.skills);
	cr_assert_eq(after->n, before->n);
	for (size_t i = 0; i < before->n; i++) {
		cr_assert_str_eq(after->skills[i].name, before->skills[i].name,
		    "skill %zu", i);
	}
	zos_skill_vector_unref(after);
	zos_skill_vector_unref(before);
	parts_down(&p);
}

Test(store, a_missing_directory_is_created_with_its_parents)
{
	struct zos_store         *store;
	struct zos_sessions_image image;
	struct stat               st;
	char                      nested[256], lock[300];

	snprintf(nested, sizeof(nested), "%s/a/b/c", fx.dir);
	cr_assert_eq(stat(fx.dir, &st), -1);
	store = open_ok(nested);
	cr_assert_str_eq(zos_store_dir(store), nested);
	cr_assert_eq(stat(nested, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	snprintf(lock, sizeof(lock), "%s/LOCK", nested);
	cr_assert_eq(stat(lock, &st), 0);
	/* Nothing there yet: no skills, no session. */
	cr_assert_null(zos_store_take_skills(store));
	(void) zos_store_take_sessions(store, &image);
	cr_assert_eq(image.count, 0);
	cr_assert_eq(image.seq, 0);
	zos_sessions_image_finish(&image);
	zos_store_close(store);
	snprintf(lock, sizeof(lock), "%s/zos.db", nested);
	cr_assert_eq(db_int(lock, "SELECT count(*) FROM sessions"), 0);
}

Test(store, a_directory_that_cannot_be_made_is_an_error_naming_it)
{
	char file[256], below[300], err[512];

	snprintf(file, sizeof(file), "%s/plain-file", fx.root);
	spit(file, "x", 1);
	snprintf(below, sizeof(below), "%s/data", file);
	open_fails(below, err, sizeof(err));
	cr_assert(strstr(err, below) != NULL, "%s", err);
	cr_assert(strstr(err, strerror(ENOTDIR)) != NULL, "%s", err);
}

/* The sessions' clock in the TTL tests below. */
static int64_t
store_test_clock(void *arg)
{
	return *(const int64_t *) arg;
}

static struct zos_state *
state_with_clock(int64_t *now)
{
	struct zos_state_config config = {
		.abort_on_violation = true,
		.data_dir           = fx.dir,
		.log                = test_log,
		.session_ttl_ms     = 3600 * 1000,
		.clock              = store_test_clock,
		.clock_arg          = now,
	};
	struct zos_state *state;
	char              err[512];

	state = zos_state_create(&config, err, sizeof(err));
	cr_assert_not_null(state, "%s", err);
	return state;
}

Test(store, an_expired_session_is_gone_from_the_database_after_a_commit)
{
	struct zos_state  *state;
	struct zos_session done, active, got;
	uint64_t           counts[ZOS_PROOF_STATE_COUNT];
	int64_t            now = 1700000000000;
	char               err[256], sql[256], path[256];

	state = state_with_clock(&now);
	cr_assert_eq(zos_sessions_start(state->sessions, "done", &done),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(state->sessions, "active", &active),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(state->sessions, done.id,
	                 ZOS_PROOF_ABANDONED, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_store_commit_wait(state->store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(state->sessions), err, sizeof(err)),
	    0, "%s", err);
	now += 3600 * 1000;
	cr_assert_eq(zos_sessions_get(state->sessions, done.id, &got),
	    ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(zos_state_expire_sessions(state), 1);
	cr_assert_eq(zos_store_commit_wait(state->store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(state->sessions), err, sizeof(err)),
	    0, "%s", err);
	zos_state_destroy(state);

	path_in(path, sizeof(path), "zos.db");
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM sessions WHERE id = '%s'", done.id);
	cr_assert_eq(db_int(path, sql), 0, "the expired row is still there");
	snprintf(sql, sizeof(sql),
	    "SELECT count(*) FROM sessions WHERE id = '%s'", active.id);
	cr_assert_eq(db_int(path, sql), 1);

	/* Restarted years later, on the real clock's side of things. */
	now += 10LL * 365 * 24 * 3600 * 1000;
	state = state_with_clock(&now);
	cr_assert_eq(zos_sessions_count_by_state(state->sessions, counts), 1,
	    "the expired session is not in the store");
	cr_assert_eq(zos_sessions_get(state->sessions, done.id, &got),
	    ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(zos_sessions_get(state->sessions, active.id, &got),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_state_expire_sessions(state), 0);
	zos_state_destroy(state);
}

Test(store, an_owners_cap_holds_across_a_restart)
{
	struct zos_state_config config = {
		.abort_on_violation     = true,
		.data_dir               = fx.dir,
		.max_sessions_per_owner = 2,
	};
	struct zos_state  *state;
	struct zos_session s;
	char               err[512];

	state = zos_state_create(&config, err, sizeof(err));
	cr_assert_not_null(state, "%s", err);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(zos_sessions_start_owned(
		                 state->sessions, "p", 0xfeedu, &s),
		    ZOS_SESSION_OK);
	}
	cr_assert_eq(zos_store_commit_wait(state->store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(state->sessions), err, sizeof(err)),
	    0, "%s", err);
	zos_state_destroy(state);

	state = zos_state_create(&config, err, sizeof(err));
	cr_assert_not_null(state, "%s", err);
	cr_assert_eq(
	    zos_sessions_start_owned(state->sessions, "p", 0xfeedu, &s),
	    ZOS_SESSION_OWNER_LIMIT, "the owner's two sessions were kept");
	cr_assert_eq(
	    zos_sessions_start_owned(state->sessions, "p", 0xbeefu, &s),
	    ZOS_SESSION_OK);
	zos_state_destroy(state);
}

Test(store, ids_of_a_node_and_of_no_node_survive_a_restart)
{
	struct zos_state_config config = {
		.abort_on_violation = true,
		.data_dir           = fx.dir,
	};
	struct zos_state  *state;
	struct zos_session plain, noded, got;
	char               err[512];

	/* A session made before node ids, then one of node 4. */
	state = zos_state_create(&config, err, sizeof(err));
	cr_assert_not_null(state, "%s", err);
	cr_assert_eq(zos_sessions_start(state->sessions, "old", &plain),
	    ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_set_node(state->sessions, 4), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(state->sessions, "new", &noded),
	    ZOS_SESSION_OK);
	cr_assert_eq(strncmp(noded.id, "4-", 2), 0, "%s", noded.id);
	cr_assert_eq(zos_store_commit_wait(state->store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(state->sessions), err, sizeof(err)),
	    0, "%s", err);
	zos_state_destroy(state);

	state = zos_state_create(&config, err, sizeof(err));
	cr_assert_not_null(state, "%s", err);
	cr_assert_eq(
	    zos_sessions_get(state->sessions, plain.id, &got), ZOS_SESSION_OK);
	cr_assert_str_eq(got.problem_id, "old");
	cr_assert_eq(
	    zos_sessions_get(state->sessions, noded.id, &got), ZOS_SESSION_OK);
	cr_assert_str_eq(got.problem_id, "new");
	zos_state_destroy(state);
}

/* ------------------------------------------------------------------ */
/* Group commit: one transaction of the changed rows. */

#define GROUP_THREADS 64

struct group {
	struct parts     *p;
	pthread_barrier_t changed;
	atomic_int        failed;
};

static void *
group_worker(void *arg)
{
	struct group      *g = arg;
	struct zos_session s;
	uint64_t           seq;
	char               err[256];

	if (zos_sessions_start(g->p->sessions, "group", &s) !=
	    ZOS_SESSION_OK) {
		atomic_fetch_add(&g->failed, 1);
	}
	seq = zos_sessions_seq(g->p->sessions);
	/* Every change is made before anyone asks for durability, so one
	 * take of the changes covers them all. */
	pthread_barrier_wait(&g->changed);
	if (zos_store_commit_wait(
	        g->p->store, ZOS_STORE_SESSIONS, seq, err, sizeof(err)) != 0) {
		atomic_fetch_add(&g->failed, 1);
	}
	return NULL;
}

Test(store, concurrent_commits_share_one_transaction)
{
	struct parts              p;
	struct group              g;
	struct zos_store_stats    start, stats;
	struct zos_sessions_image image;
	pthread_t                 t[GROUP_THREADS];

	parts_up(&p);
	zos_store_stats(p.store, &start); /* open made the schema */
	g.p = &p;
	atomic_init(&g.failed, 0);
	cr_assert_eq(pthread_barrier_init(&g.changed, NULL, GROUP_THREADS), 0);
	for (int i = 0; i < GROUP_THREADS; i++) {
		cr_assert_eq(pthread_create(&t[i], NULL, group_worker, &g), 0);
	}
	for (int i = 0; i < GROUP_THREADS; i++) {
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	}
	pthread_barrier_destroy(&g.changed);
	cr_assert_eq(atomic_load(&g.failed), 0);
	zos_store_stats(p.store, &stats);
	cr_assert_eq(stats.commits - start.commits, 1,
	    "%llu transactions for one take",
	    (unsigned long long) (stats.commits - start.commits));
	cr_assert_eq(stats.commit_waiters, GROUP_THREADS);
	cr_assert_eq(stats.failures, 0);
	cr_assert(stats.healthy);
	cr_assert_gt(stats.bytes_written, 0);
	cr_assert_geq(stats.commit_ns_sum, stats.commit_ns_max);
	parts_down(&p);

	cr_assert_eq(db_sessions(), GROUP_THREADS);
	cr_assert_eq(db_meta("sessions_seq"), GROUP_THREADS);
	p.store = open_ok(fx.dir);
	cr_assert(zos_store_take_sessions(p.store, &image));
	cr_assert_eq(image.count, GROUP_THREADS);
	cr_assert_eq(image.seq, GROUP_THREADS);
	zos_sessions_image_finish(&image);
	zos_store_close(p.store);
}

/* Many callers, each changing and waiting in turn, with no barrier:
 * what arrives during a commit rides on the next one. */
#define CHURN_THREADS 16
#define CHURN_ROUNDS 20

struct churn {
	struct parts *p;
	atomic_int    failed;
	atomic_int    changes;
	char          first_error[256];
};

static void *
churn_worker(void *arg)
{
	struct churn      *c = arg;
	struct zos_session s;
	char               err[256];

	for (int i = 0; i < CHURN_ROUNDS; i++) {
		uint64_t seq;
		int      rv = 0;

		if (zos_sessions_start(c->p->sessions, "churn", &s) !=
		    ZOS_SESSION_OK) {
			atomic_fetch_add(&c->failed, 1);
			continue;
		}
		seq = zos_sessions_seq(c->p->sessions);
		rv  = zos_store_commit_wait(
		     c->p->store, ZOS_STORE_SESSIONS, seq, err, sizeof(err));
		if (rv == 0 &&
		    zos_sessions_transition(c->p->sessions, s.id,
		        ZOS_PROOF_ANALYZING, s.version,
		        NULL) == ZOS_SESSION_OK) {
			seq = zos_sessions_seq(c->p->sessions);
			rv  = zos_store_commit_wait(c->p->store,
			     ZOS_STORE_SESSIONS, seq, err, sizeof(err));
		} else if (rv == 0) {
			rv = -1;
			snprintf(err, sizeof(err), "transition refused");
		}
		atomic_fetch_add(&c->changes, 2);
		if (rv != 0 && atomic_fetch_add(&c->failed, 1) == 0) {
			snprintf(
			    c->first_error, sizeof(c->first_error), "%s", err);
		}
	}
	return NULL;
}

Test(store, many_callers_changing_at_once_need_far_fewer_commits)
{
	struct parts           p;
	struct churn           c = { 0 };
	struct zos_store_stats start, stats;
	pthread_t              t[CHURN_THREADS];
	const int              changes = CHURN_THREADS * CHURN_ROUNDS * 2;
	char                   path[256];

	parts_up(&p);
	zos_store_stats(p.store, &start);
	c.p = &p;
	for (int i = 0; i < CHURN_THREADS; i++) {
		cr_assert_eq(pthread_create(&t[i], NULL, churn_worker, &c), 0);
	}
	for (int i = 0; i < CHURN_THREADS; i++) {
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	}
	cr_assert_eq(atomic_load(&c.failed), 0, "%s", c.first_error);
	cr_assert_eq(atomic_load(&c.changes), changes);
	zos_store_stats(p.store, &stats);
	cr_assert_eq(
	    stats.commit_waiters - start.commit_waiters, (uint64_t) changes);
	cr_log_info("%d changes, %llu transactions", changes,
	    (unsigned long long) (stats.commits - start.commits));
	cr_assert_lt(stats.commits - start.commits, (uint64_t) changes / 2,
	    "%llu transactions for %d changes",
	    (unsigned long long) (stats.commits - start.commits), changes);
	cr_assert_eq(stats.failures, 0);
	parts_down(&p);

	path_in(path, sizeof(path), "zos.db");
	cr_assert_eq(db_sessions(), CHURN_THREADS * CHURN_ROUNDS);
	cr_assert_eq(db_int(path,
	                 "SELECT count(*) FROM sessions WHERE state = 2 "
	                 "AND version = 2"),
	    CHURN_THREADS * CHURN_ROUNDS);
	cr_assert_eq(db_meta("sessions_seq"), changes);
}

Test(store, a_session_changed_often_before_a_commit_is_one_row_of_it)
{
	struct parts           p;
	struct zos_session     a, b;
	struct zos_store_stats before, after;
	char                   sql[256], path[256];

	parts_up(&p);
	start_durable(&p, "a", &a);
	zos_store_stats(p.store, &before);
	/* Four changes of A and three of a new B, then one commit. */
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, a.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, a.id, ZOS_PROOF_FEEDBACK_READY, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(p.sessions, a.id,
	                 ZOS_PROOF_AWAITING_SOLUTION, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_reset(p.sessions, a.id, NULL), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(p.sessions, "b", &b), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, b.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, b.id, ZOS_PROOF_ABANDONED, 0, NULL),
	    ZOS_SESSION_OK);
	commit_ok(p.store, ZOS_STORE_SESSIONS, zos_sessions_seq(p.sessions));
	zos_store_stats(p.store, &after);
	cr_assert_eq(after.commits - before.commits, 1);
	/* A few pages at most, whatever the number of changes. */
	cr_assert_lt(after.bytes_written - before.bytes_written, 64u * 1024);
	parts_down(&p);

	path_in(path, sizeof(path), "zos.db");
	cr_assert_eq(db_sessions(), 2);
	snprintf(sql, sizeof(sql),
	    "SELECT version * 10 + state FROM sessions WHERE id = '%s'", a.id);
	cr_assert_eq(db_int(path, sql), 5 * 10 + ZOS_PROOF_AWAITING_SOLUTION);
	snprintf(sql, sizeof(sql),
	    "SELECT version * 10 + state FROM sessions WHERE id = '%s'", b.id);
	cr_assert_eq(db_int(path, sql), 3 * 10 + ZOS_PROOF_ABANDONED);
	cr_assert_eq(db_meta("sessions_seq"), 8);
}

/* A commit callback that counts its calls. */
struct counted {
	atomic_int calls;
	atomic_int error;
	char       message[256];
};

static void
counted_done(void *arg, int error, const char *message)
{
	struct counted *c = arg;

	snprintf(c->message, sizeof(c->message), "%s", message);
	atomic_store(&c->error, error);
	atomic_fetch_add(&c->calls, 1);
}

/* Waits (bounded: 10 s) until C was answered. */
static void
counted_wait(struct counted *c)
{
	for (int i = 0; i < 10000 && atomic_load(&c->calls) == 0; i++) {
		struct timespec ms = { 0, 1000000 };

		nanosleep(&ms, NULL);
	}
	cr_assert_eq(atomic_load(&c->calls), 1);
}

Test(store, a_request_already_covered_is_answered_at_once_without_a_commit)
{
	struct parts           p;
	struct zos_session     s;
	struct zos_store_stats before, stats;
	struct counted         c = { 0 };
	char                   err[256];

	parts_up(&p);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(
		    zos_sessions_start(p.sessions, "p", &s), ZOS_SESSION_OK);
	}
	commit_ok(p.store, ZOS_STORE_SESSIONS, 10);
	zos_store_stats(p.store, &before);

	/* Covered already: answered at once, on this thread, no write. */
	zos_store_commit(p.store, ZOS_STORE_SESSIONS, 5, counted_done, &c);
	cr_assert_eq(atomic_load(&c.calls), 1);
	cr_assert_eq(atomic_load(&c.error), 0);
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SESSIONS, 5, err, sizeof(err)),
	    0);
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SESSIONS, 10, err, sizeof(err)),
	    0);
	zos_store_stats(p.store, &stats);
	cr_assert_eq(stats.commits, before.commits);
	cr_assert_eq(stats.commit_waiters, before.commit_waiters + 3);
	parts_down(&p);
	cr_assert_eq(db_meta("sessions_seq"), 10);
}

Test(store, a_table_behind_the_database_never_writes_over_it)
{
	struct parts           p;
	struct zos_session     s;
	struct zos_store_stats stats;
	char                   err[256];

	make_data(NULL); /* sessions at change 3 */

	/* A table that was not restored from the database is behind it. */
	memset(&p, 0, sizeof(p));
	zos_lock_domain_init(&p.domain, true, lock_log, NULL);
	p.store = open_ok(fx.dir);
	cr_assert_eq(zos_skills_init(
	                 &p.skills, &p.domain, zos_store_take_skills(p.store)),
	    0);
	zos_skills_track(&p.skills);
	cr_assert_eq(
	    zos_sessions_create(&p.sessions, &p.domain, 0), ZOS_SESSION_OK);
	zos_sessions_track_changes(p.sessions, true);
	cr_assert_eq(zos_store_start(p.store, &p.skills, p.sessions), 0);
	cr_assert_eq(zos_sessions_start(p.sessions, "p", &s), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_seq(p.sessions), 1);
	/* Asks past the database, so it reaches the flusher, whose take (1)
	 * is older than the database (3): not written, and refused. */
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SESSIONS, 4, err, sizeof(err)),
	    EINVAL);
	zos_store_stats(p.store, &stats);
	parts_down(&p);
	/* Written, it would set the change count back below the versions
	 * stored, and the directory would no longer restore. */
	cr_assert_eq(db_meta("sessions_seq"), 3, "the change count went back");
	cr_assert_eq(db_sessions(), 3);
	parts_up(&p);
	parts_down(&p);
	cr_assert_eq(stats.commits, 0, "a take older than zos.db was written");
	cr_assert_eq(stats.failures, 0);
}

Test(store, a_commit_ahead_of_the_table_is_refused_not_left_hanging)
{
	struct parts       p;
	struct zos_session s;
	char               err[256];

	parts_up(&p);
	start_durable(&p, "p", &s);
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SESSIONS, 99, err, sizeof(err)),
	    EINVAL);
	cr_assert(strstr(err, "not reached") != NULL, "%s", err);
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SKILLS, 99, err, sizeof(err)),
	    EINVAL);
	parts_down(&p);
	cr_assert_eq(db_meta("sessions_seq"), 1);
}

/*
 * zosd's state is calloc'd, but the skills' init must not depend on it:
 * built on memory that held something else, the parts still commit.
 */
Test(store, skills_set_up_on_unzeroed_memory_commit_and_close_cleanly)
{
	struct parts              p;
	struct zos_sessions_image image;
	struct zos_skill_delta    d = { "induction", 0.25 };
	char                      err[256];

	memset(&p, 0xa5, sizeof(p));
	zos_lock_domain_init(&p.domain, true, lock_log, NULL);
	p.store = open_ok(fx.dir);
	cr_assert_eq(zos_skills_init(
	                 &p.skills, &p.domain, zos_store_take_skills(p.store)),
	    0);
	zos_skills_track(&p.skills);
	cr_assert_eq(
	    zos_sessions_create(&p.sessions, &p.domain, 0), ZOS_SESSION_OK);
	zos_sessions_track_changes(p.sessions, true);
	(void) zos_store_take_sessions(p.store, &image);
	zos_sessions_image_finish(&image);
	parts_start(&p);
	cr_assert_eq(
	    zos_skills_update(&p.skills, &d, 1, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	commit_ok(p.store, ZOS_STORE_SKILLS, 1);
	parts_down(&p);
	cr_assert_eq(db_meta("skills_version"), 1);
}

Test(store, a_request_before_start_is_cancelled_once_at_close)
{
	struct zos_store *store = open_ok(fx.dir);
	struct counted    c[2]  = { 0 };

	zos_store_commit(store, ZOS_STORE_SESSIONS, 1, counted_done, &c[0]);
	zos_store_commit(store, ZOS_STORE_SKILLS, 0, counted_done, &c[1]);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(atomic_load(&c[i].calls), 0);
	}
	zos_store_close(store);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(atomic_load(&c[i].calls), 1);
		cr_assert_eq(atomic_load(&c[i].error), ECANCELED);
		cr_assert_neq(c[i].message[0], '\0');
	}
}

Test(store, close_flushes_pending_requests_and_answers_each_once)
{
	enum { N = 32 };
	struct parts              p;
	struct zos_session        s;
	struct zos_sessions_image image;
	struct zos_skill_delta    d = { "cases", 0.5 };
	static struct counted     c[N];
	char                      err[128];

	parts_up(&p);
	for (int i = 0; i < N; i++) {
		atomic_init(&c[i].calls, 0);
		atomic_init(&c[i].error, -1);
		if (i % 2 == 0) {
			cr_assert_eq(zos_sessions_start(p.sessions, "p", &s),
			    ZOS_SESSION_OK);
			zos_store_commit(p.store, ZOS_STORE_SESSIONS,
			    zos_sessions_seq(p.sessions), counted_done, &c[i]);
		} else {
			struct zos_skill_vector *v;

			cr_assert_eq(zos_skills_update(&p.skills, &d, 1, 0, &v,
			                 err, sizeof(err)),
			    ZOS_SKILLS_OK);
			zos_store_commit(p.store, ZOS_STORE_SKILLS,
			    v->change_seq, counted_done, &c[i]);
			zos_skill_vector_unref(v);
		}
	}
	parts_down(&p); /* closes the store first */
	for (int i = 0; i < N; i++) {
		cr_assert_eq(atomic_load(&c[i].calls), 1, "request %d", i);
		cr_assert_eq(atomic_load(&c[i].error), 0, "request %d: %s", i,
		    c[i].message);
	}

	p.store = open_ok(fx.dir);
	cr_assert(zos_store_take_sessions(p.store, &image));
	cr_assert_eq(image.count, N / 2);
	zos_sessions_image_finish(&image);
	struct zos_skill_vector *v = zos_store_take_skills(p.store);
	cr_assert_not_null(v);
	cr_assert_eq(v->version, N / 2);
	zos_skill_vector_unref(v);
	zos_store_close(p.store);
}

/* ------------------------------------------------------------------ */
/* What readers see: only what is durable. */

/* zos_skills_read's visitor: the level of "induction". */
static void
read_induction(void *arg, const struct zos_skill_vector *v)
{
	*(double *) arg = level_of(v, "induction");
}

Test(store, readers_see_a_change_only_once_its_commit_is_durable)
{
	struct parts             p;
	struct zos_session       a, b, got;
	struct zos_session_page  page;
	struct zos_skill_vector *v;
	struct zos_skill_delta   d  = { "induction", 0.25 };
	struct counted           cs = { 0 }, ck = { 0 };
	double                   level, seen    = -1;
	char                     err[256];

	/* A durable session A, then the flusher is held back (a store
	 * opened but not started) while B starts and A moves on. */
	parts_up(&p);
	start_durable(&p, "a", &a);
	v     = zos_skills_get(&p.skills);
	level = level_of(v, "induction");
	zos_skill_vector_unref(v);
	parts_down(&p);

	parts_open(&p, fx.dir);
	cr_assert_eq(zos_sessions_start(p.sessions, "b", &b), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, a.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_skills_update(&p.skills, &d, 1, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	zos_store_commit(p.store, ZOS_STORE_SESSIONS,
	    zos_sessions_seq(p.sessions), counted_done, &cs);
	zos_store_commit(p.store, ZOS_STORE_SKILLS,
	    p.skills.current->change_seq, counted_done, &ck);
	cr_assert_eq(atomic_load(&cs.calls), 0);

	cr_assert_eq(zos_sessions_get(p.sessions, b.id, &got),
	    ZOS_SESSION_NOT_FOUND, "a session not durable yet was read");
	cr_assert_eq(zos_sessions_get(p.sessions, a.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_AWAITING_SOLUTION);
	cr_assert_eq(got.version, 1);
	cr_assert_eq(
	    zos_sessions_list(p.sessions, 0, NULL, &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 1);
	cr_assert_eq(page.total, 1);
	cr_assert_eq(page.sessions[0].state, ZOS_PROOF_AWAITING_SOLUTION);
	zos_session_page_finish(&page);
	v = zos_skills_get(&p.skills);
	cr_assert_eq(level_of(v, "induction"), level);
	zos_skill_vector_unref(v);
	zos_skills_read(&p.skills, read_induction, &seen);
	cr_assert_eq(seen, level, "the assistant's read saw it early");

	/* The flusher runs: both are durable, and then seen. */
	parts_start(&p);
	counted_wait(&cs);
	counted_wait(&ck);
	cr_assert_eq(atomic_load(&cs.error), 0, "%s", cs.message);
	cr_assert_eq(atomic_load(&ck.error), 0, "%s", ck.message);
	cr_assert_eq(zos_sessions_get(p.sessions, b.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_get(p.sessions, a.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_ANALYZING);
	cr_assert_eq(
	    zos_sessions_list(p.sessions, 0, NULL, &page), ZOS_SESSION_OK);
	cr_assert_eq(page.total, 2);
	zos_session_page_finish(&page);
	v = zos_skills_get(&p.skills);
	cr_assert_eq(level_of(v, "induction"), level + 0.25);
	zos_skill_vector_unref(v);
	zos_skills_read(&p.skills, read_induction, &seen);
	cr_assert_eq(seen, level + 0.25);
	parts_down(&p);
}

/* ------------------------------------------------------------------ */
/* Failure: undone in memory, reported, refused. */

/* Moves the data directory away and makes a new, empty one at its path
 * (what an rm -rf and a new zosd do): the store's device/inode check
 * then refuses to commit. */
static void
replace_dir(char *moved, size_t moved_len)
{
	snprintf(moved, moved_len, "%s/moved", fx.root);
	cr_assert_eq(rename(fx.dir, moved), 0, "%s", strerror(errno));
	cr_assert_eq(mkdir(fx.dir, 0700), 0);
}

Test(store, a_failed_commit_is_undone_reported_and_refused_after)
{
	struct parts             p;
	struct zos_session       a, b, got;
	struct zos_session_page  page;
	struct zos_store_stats   stats;
	struct zos_skill_vector *v;
	struct zos_skill_delta   d    = { "induction", 0.25 };
	struct counted           late = { 0 };
	uint64_t                 counts[ZOS_PROOF_STATE_COUNT];
	uint64_t                 seq, skills_version;
	double                   level;
	char                     moved[sizeof(fx.dir)], err[512];

	parts_up(&p);
	skills_durable(&p, "cases", 0.125);
	start_durable(&p, "a", &a);
	v     = zos_skills_get(&p.skills);
	level = level_of(v, "induction");
	zos_skill_vector_unref(v);

	/* A transition of A, a new B, a skill update: none durable. */
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, a.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_start(p.sessions, "b", &b), ZOS_SESSION_OK);
	seq = zos_sessions_seq(p.sessions);
	cr_assert_eq(
	    zos_skills_update(&p.skills, &d, 1, 0, &v, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	skills_version = v->change_seq;
	zos_skill_vector_unref(v);

	replace_dir(moved, sizeof(moved));
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SESSIONS, seq, err, sizeof(err)),
	    ESTALE, "%s", err);
	cr_assert(strstr(err, fx.dir) != NULL, "%s", err);
	cr_assert_eq(zos_store_commit_wait(p.store, ZOS_STORE_SKILLS,
	                 skills_version, err, sizeof(err)),
	    ESTALE, "%s", err);

	/* Undone: readers and writers see what is durable. */
	cr_assert_eq(
	    zos_sessions_get(p.sessions, b.id, &got), ZOS_SESSION_NOT_FOUND);
	cr_assert_eq(zos_sessions_transition(
	                 p.sessions, b.id, ZOS_PROOF_ABANDONED, 0, NULL),
	    ZOS_SESSION_NOT_FOUND, "a writer still sees the undone session");
	cr_assert_eq(zos_sessions_get(p.sessions, a.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_AWAITING_SOLUTION);
	cr_assert_eq(got.version, 1);
	cr_assert_eq(zos_sessions_count_by_state(p.sessions, counts), 1);
	cr_assert_eq(counts[ZOS_PROOF_AWAITING_SOLUTION], 1);
	cr_assert_eq(counts[ZOS_PROOF_ANALYZING], 0);
	cr_assert_eq(
	    zos_sessions_list(p.sessions, 0, NULL, &page), ZOS_SESSION_OK);
	cr_assert_eq(page.count, 1);
	cr_assert_eq(page.total, 1);
	zos_session_page_finish(&page);
	v = zos_skills_get(&p.skills);
	cr_assert_eq(level_of(v, "induction"), level);
	cr_assert_eq(level_of(v, "cases"), 0.5 + 0.125);
	zos_skill_vector_unref(v);
	v = zos_skills_latest(&p.skills);
	cr_assert_eq(level_of(v, "induction"), level, "writers see undone");
	zos_skill_vector_unref(v);

	/* Reported. */
	zos_store_stats(p.store, &stats);
	cr_assert_not(stats.healthy);
	cr_assert_geq(stats.failures, 2);
	pthread_mutex_lock(&fx.health.mtx);
	cr_assert_eq(fx.health.bad, 1);
	cr_assert_eq(fx.health.good, 0);
	cr_assert(strstr(fx.health.why, fx.dir) != NULL, "%s", fx.health.why);
	pthread_mutex_unlock(&fx.health.mtx);

	/* Asked again after the failure, the undone numbers are refused,
	 * and so is a new change: the directory is not the one locked. */
	zos_store_commit(
	    p.store, ZOS_STORE_SESSIONS, seq, counted_done, &late);
	counted_wait(&late);
	cr_assert_neq(atomic_load(&late.error), 0);
	cr_assert_neq(zos_store_commit_wait(p.store, ZOS_STORE_SKILLS,
	                  skills_version, err, sizeof(err)),
	    0);
	cr_assert_eq(
	    zos_sessions_start(p.sessions, "c", &got), ZOS_SESSION_OK);
	cr_assert_eq(zos_store_commit_wait(p.store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(p.sessions), err, sizeof(err)),
	    ESTALE, "%s", err);
	parts_down(&p);

	/* Nothing was written into the new directory, not even at close. */
	cr_assert_eq(entries_in(fx.dir), 0);
	/* And the old one holds what was durable. */
	snprintf(fx.dir, sizeof(fx.dir), "%s", moved);
	cr_assert_eq(db_sessions(), 1);
	cr_assert_eq(db_meta("skills_version"), 1);
}

Test(store, closing_a_replaced_store_leaves_the_new_directorys_files_alone)
{
	struct parts              old, now;
	struct zos_session        x, y;
	struct zos_sessions_image image;
	char           moved[256], wal[256], crash[256], from[300], to[300];
	const char    *names[] = { "zos.db", "zos.db-wal" };
	unsigned char *buf;
	size_t         len;
	bool           found = false;

	parts_up(&old);
	start_durable(&old, "x", &x);
	/* rm -rf of the directory, and a new zosd on the same path, which
	 * acknowledges Y (in its WAL: not checkpointed yet). */
	replace_dir(moved, sizeof(moved));
	cr_assert_eq(rmdir(fx.dir), 0);
	parts_up(&now);
	start_durable(&now, "y", &y);
	path_in(wal, sizeof(wal), "zos.db-wal");
	cr_assert(exists(wal));

	/* The old zosd stops: its database is elsewhere now. */
	parts_down(&old);
	cr_assert(exists(wal), "the old store's close removed %s", wal);

	/* The new zosd is killed now: what survives is its files. */
	snprintf(crash, sizeof(crash), "%s/crash", fx.root);
	cr_assert_eq(mkdir(crash, 0700), 0);
	for (size_t i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s/%s", fx.dir, names[i]);
		snprintf(to, sizeof(to), "%s/%s", crash, names[i]);
		if (exists(from)) {
			buf = slurp(from, &len);
			spit(to, buf, len);
			free(buf);
		}
	}
	parts_down(&now);
	old.store = open_ok(crash);
	cr_assert(zos_store_take_sessions(old.store, &image));
	for (size_t i = 0; i < image.count; i++) {
		found = found || strcmp(image.sessions[i].id, y.id) == 0;
	}
	zos_sessions_image_finish(&image);
	zos_store_close(old.store);
	cr_assert(found, "an acknowledged session of the new zosd was lost");
}

/* A replaced directory is never written again, even when the one the
 * store locked is put back at its path. */
Test(store, a_replaced_directory_is_never_written_again_even_put_back)
{
	struct parts           p;
	struct zos_session     a, b, got;
	struct zos_store_stats stats;
	char                   moved[256], err[512];

	parts_up(&p);
	start_durable(&p, "a", &a);
	replace_dir(moved, sizeof(moved));
	cr_assert_eq(zos_sessions_start(p.sessions, "b", &b), ZOS_SESSION_OK);
	cr_assert_eq(zos_store_commit_wait(p.store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(p.sessions), err, sizeof(err)),
	    ESTALE, "%s", err);
	cr_assert_eq(rmdir(fx.dir), 0);
	cr_assert_eq(rename(moved, fx.dir), 0);
	cr_assert_eq(
	    zos_sessions_start(p.sessions, "c", &got), ZOS_SESSION_OK);
	cr_assert_eq(zos_store_commit_wait(p.store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(p.sessions), err, sizeof(err)),
	    ESTALE, "%s", err);
	zos_store_stats(p.store, &stats);
	cr_assert_not(stats.healthy);
	parts_down(&p);
	cr_assert_eq(db_sessions(), 1);
}

/* Waits (bounded: 10 s) until the store's health is HEALTHY. */
static void
wait_healthy(struct zos_store *store, bool healthy)
{
	struct zos_store_stats stats;

	for (int i = 0; i < 1000; i++) {
		struct timespec ms = { 0, 10 * 1000000 };

		zos_store_stats(store, &stats);
		if (stats.healthy == healthy) {
			return;
		}
		nanosleep(&ms, NULL);
	}
	cr_assert_fail("the store's health stayed %d", !healthy);
}

/*
 * A write that fails (here: the process may not make files any bigger,
 * RLIMIT_FSIZE, which stands for a full disk without one) is undone and
 * reported; once the cause is gone, the store's own retry makes it
 * healthy and writes work again, with no restart.
 */
Test(store, commits_work_again_once_the_cause_of_a_failure_is_gone)
{
	struct parts             p;
	struct zos_session       a, b, c, got;
	struct zos_store_stats   stats;
	struct rlimit            lim, small;
	struct stat              st;
	struct zos_skill_vector *v;
	struct zos_skill_delta   d = { "induction", 0.25 };
	uint64_t                 b_seq, version, change;
	char                     wal[256], err[512];

	cr_assert_neq(signal(SIGXFSZ, SIG_IGN), SIG_ERR);
	parts_up(&p);
	start_durable(&p, "a", &a);
	path_in(wal, sizeof(wal), "zos.db-wal");
	cr_assert_eq(stat(wal, &st), 0);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
	small          = lim;
	small.rlim_cur = (rlim_t) st.st_size;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);

	cr_assert_eq(zos_sessions_start(p.sessions, "b", &b), ZOS_SESSION_OK);
	b_seq = zos_sessions_seq(p.sessions);
	cr_assert_neq(zos_store_commit_wait(p.store, ZOS_STORE_SESSIONS, b_seq,
	                  err, sizeof(err)),
	    0, "a commit past the file size limit worked");
	cr_assert(strstr(err, "zos.db") != NULL, "%s", err);
	cr_assert_eq(
	    zos_skills_update(&p.skills, &d, 1, 0, &v, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	version = v->version;
	change  = v->change_seq;
	zos_skill_vector_unref(v);
	cr_assert_neq(zos_store_commit_wait(
	                  p.store, ZOS_STORE_SKILLS, change, err, sizeof(err)),
	    0);
	v = zos_skills_get(&p.skills);
	cr_assert_eq(level_of(v, "induction"), 0.5);
	zos_skill_vector_unref(v);
	cr_assert_eq(
	    zos_sessions_get(p.sessions, b.id, &got), ZOS_SESSION_NOT_FOUND);
	zos_store_stats(p.store, &stats);
	cr_assert_not(stats.healthy);
	cr_assert_geq(stats.failures, 1);

	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	wait_healthy(p.store, true);
	pthread_mutex_lock(&fx.health.mtx);
	cr_assert_eq(fx.health.bad, 1);
	cr_assert_eq(fx.health.good, 1);
	pthread_mutex_unlock(&fx.health.mtx);
	/* Healthy again, the undone numbers stay refused: B never was. */
	cr_assert_neq(zos_store_commit_wait(p.store, ZOS_STORE_SESSIONS, b_seq,
	                  err, sizeof(err)),
	    0, "the undone session was answered durable");
	cr_assert_neq(zos_store_commit_wait(
	                  p.store, ZOS_STORE_SKILLS, change, err, sizeof(err)),
	    0, "the undone skill update was answered durable");
	start_durable(&p, "c", &c);
	cr_assert_eq(zos_sessions_get(p.sessions, c.id, &got), ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_get(p.sessions, b.id, &got), ZOS_SESSION_NOT_FOUND);
	/* The undone update gave its version back: the next takes it. */
	cr_assert_eq(skills_durable(&p, "induction", 0.125), version);
	v = zos_skills_get(&p.skills);
	cr_assert_eq(level_of(v, "induction"), 0.625);
	zos_skill_vector_unref(v);
	parts_down(&p);
	cr_assert_eq(db_sessions(), 2);
	cr_assert_eq(db_meta("skills_version"), (int64_t) version);
}

Test(store, commit_under_a_zos_lock_aborts, .signal = SIGABRT)
{
	struct parts p;
	char         err[128];

	parts_up(&p);
	fixture_fini(); /* the abort skips the fixture's own */
	zos_lock_read(&p.skills.lock);
	zos_store_commit_wait(p.store, ZOS_STORE_SKILLS, 0, err, sizeof(err));
}

/* ------------------------------------------------------------------ */
/* A corrupt, foreign or future database: refused, named, left alone. */

/* Opens fx.dir expecting failure naming DIR/zos.db (and WHAT, when not
 * NULL), twice, and checks zos.db holds BUF's LEN bytes after each. */
static void
check_refused(const unsigned char *buf, size_t len, const char *what)
{
	char path[256], err[512];

	path_in(path, sizeof(path), "zos.db");
	for (int i = 0; i < 2; i++) {
		open_fails(fx.dir, err, sizeof(err));
		cr_assert(strstr(err, path) != NULL, "%s", err);
		cr_assert(
		    what == NULL || strstr(err, what) != NULL, "%s", err);
		same_bytes(path, buf, len);
	}
}

Test(store, a_junk_file_in_place_of_the_database_is_refused_untouched)
{
	unsigned char junk[8192];
	char          path[256];

	cr_assert_eq(mkdir(fx.dir, 0700), 0);
	for (size_t i = 0; i < sizeof(junk); i++) {
		junk[i] = (unsigned char) ("not a database, honest "[i % 23]);
	}
	path_in(path, sizeof(path), "zos.db");
	spit(path, junk, sizeof(junk));
	check_refused(junk, sizeof(junk), "not a database");
}

Test(store, bytes_overwritten_in_the_middle_of_the_database_are_refused)
{
	struct parts       p;
	struct zos_session s;
	unsigned char     *buf;
	size_t             len;
	char               path[256];

	/* Enough sessions for several pages. */
	parts_up(&p);
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(zos_sessions_start(p.sessions,
		                 "a longer problem id "
		                 "to fill pages",
		                 &s),
		    ZOS_SESSION_OK);
	}
	commit_ok(p.store, ZOS_STORE_SESSIONS, zos_sessions_seq(p.sessions));
	parts_down(&p);
	path_in(path, sizeof(path), "zos.db");
	buf = slurp(path, &len);
	cr_assert_geq(len, 8 * 4096, "%zu bytes", len);
	/* A page and a half of junk across a page boundary. */
	memset(buf + (len / 2 / 4096) * 4096 - 2048, 0xa5, 6144);
	spit(path, buf, len);
	check_refused(buf, len, NULL);
	free(buf);
}

Test(store, a_truncated_database_is_refused_untouched)
{
	struct parts       p;
	struct zos_session s;
	unsigned char     *buf;
	size_t             len;
	char               path[256];

	parts_up(&p);
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(zos_sessions_start(p.sessions,
		                 "a longer problem id "
		                 "to fill pages",
		                 &s),
		    ZOS_SESSION_OK);
	}
	commit_ok(p.store, ZOS_STORE_SESSIONS, zos_sessions_seq(p.sessions));
	parts_down(&p);
	path_in(path, sizeof(path), "zos.db");
	buf = slurp(path, &len);
	len = (len / 2 / 4096) * 4096;
	spit(path, buf, len);
	check_refused(buf, len, NULL);
	free(buf);
}

Test(store, a_schema_from_the_future_is_refused_untouched)
{
	unsigned char *buf;
	size_t         len;
	char           path[256];

	make_data(NULL);
	path_in(path, sizeof(path), "zos.db");
	db_exec(
	    path, "UPDATE meta SET value = 2 WHERE key = 'schema_version'");
	buf = slurp(path, &len);
	check_refused(buf, len, "schema version 2");
	free(buf);
}

Test(store, another_programs_database_is_refused_untouched)
{
	unsigned char *buf;
	size_t         len;
	char           path[256];

	cr_assert_eq(mkdir(fx.dir, 0700), 0);
	path_in(path, sizeof(path), "zos.db");
	spit(path, "", 0);
	db_exec(path,
	    "CREATE TABLE notes (body TEXT);"
	    "INSERT INTO notes VALUES ('mine');");
	buf = slurp(path, &len);
	check_refused(buf, len, NULL);
	free(buf);
}

Test(store, the_state_refuses_to_start_on_a_corrupt_database)
{
	struct zos_state_config config = {
		.abort_on_violation = true,
		.data_dir           = fx.dir,
	};
	char path[256], err[512];

	cr_assert_eq(mkdir(fx.dir, 0700), 0);
	path_in(path, sizeof(path), "zos.db");
	spit(path, "SQLite format 3\0 and then nothing much", 38);
	cr_assert_null(zos_state_create(&config, err, sizeof(err)));
	cr_assert(strstr(err, path) != NULL, "%s", err);
}

Test(store, the_state_refuses_sessions_that_do_not_fit_its_bound)
{
	struct zos_state_config config = {
		.abort_on_violation = true,
		.data_dir           = fx.dir,
		.max_sessions       = 2,
	};
	char err[512];

	make_data(NULL); /* three sessions */
	cr_assert_null(zos_state_create(&config, err, sizeof(err)));
	cr_assert(strstr(err, "zos.db") != NULL, "%s", err);
	cr_assert(strstr(err, "3 sessions") != NULL, "%s", err);
	/* The failed start let go of the directory. */
	config.max_sessions     = 0;
	struct zos_state *state = zos_state_create(&config, err, sizeof(err));
	cr_assert_not_null(state, "%s", err);
	zos_state_destroy(state);
}

/* ------------------------------------------------------------------ */
/* Files that are not regular: refused at once, naming the file. */

/* Opens fx.dir expecting failure naming DIR/NAME. A FIFO that the store
 * opened for reading would block: the test's timeout would catch it. */
static void
check_not_regular(const char *name)
{
	char path[256], err[512];

	path_in(path, sizeof(path), name);
	open_fails(fx.dir, err, sizeof(err));
	cr_assert(strstr(err, path) != NULL, "%s", err);
}

static void
make_fifo(const char *name)
{
	char path[256];

	if (!exists(fx.dir)) {
		cr_assert_eq(mkdir(fx.dir, 0700), 0);
	}
	path_in(path, sizeof(path), name);
	cr_assert_eq(mkfifo(path, 0600), 0, "%s: %s", path, strerror(errno));
}

Test(
    store, a_fifo_in_place_of_the_database_fails_without_a_hang, .timeout = 20)
{
	make_fifo("zos.db");
	check_not_regular("zos.db");
}

Test(store, a_fifo_in_place_of_the_wal_fails_without_a_hang, .timeout = 20)
{
	make_data(NULL);
	make_fifo("zos.db-wal");
	check_not_regular("zos.db-wal");
}

Test(store, a_fifo_in_place_of_the_lock_fails_without_a_hang, .timeout = 20)
{
	make_fifo("LOCK");
	check_not_regular("LOCK");
}

Test(store, a_fifo_in_place_of_an_old_snapshot_fails_without_a_hang,
    .timeout = 20)
{
	make_fifo("sessions.snap");
	check_not_regular("sessions.snap");
}

Test(store, a_dangling_symlink_in_place_of_the_database_is_refused)
{
	char path[256];

	cr_assert_eq(mkdir(fx.dir, 0700), 0);
	path_in(path, sizeof(path), "zos.db");
	cr_assert_eq(symlink("/nonexistent/zos.db", path), 0);
	check_not_regular("zos.db");
	cr_assert(exists(path)); /* left as it was */
	cr_assert_eq(access("/nonexistent/zos.db", F_OK), -1);
}

Test(store, a_symlink_to_a_real_database_is_refused_and_it_is_untouched)
{
	unsigned char *buf;
	size_t         len;
	char           path[256], real[300], elsewhere[256];

	make_data(NULL);
	path_in(path, sizeof(path), "zos.db");
	snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", fx.root);
	cr_assert_eq(mkdir(elsewhere, 0700), 0);
	snprintf(real, sizeof(real), "%s/zos.db", elsewhere);
	cr_assert_eq(rename(path, real), 0);
	cr_assert_eq(symlink(real, path), 0);
	buf = slurp(real, &len);
	check_not_regular("zos.db");
	same_bytes(real, buf, len);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* The directory: lock and permissions. */

Test(store, a_second_open_of_the_same_directory_is_refused)
{
	struct zos_store *first, *second;
	char              err[512];

	first = open_ok(fx.dir);
	open_fails(fx.dir, err, sizeof(err));
	cr_assert(strstr(err, "in use") != NULL, "%s", err);
	cr_assert(strstr(err, fx.dir) != NULL, "%s", err);
	zos_store_close(first);
	second = open_ok(fx.dir); /* free again once closed */
	zos_store_close(second);
}

/* The mode bits of PATH. */
static unsigned
mode_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return (unsigned) (st.st_mode & 07777);
}

Test(store, the_directory_is_0700_and_every_file_0600)
{
	struct parts       p;
	struct zos_session s;
	char               path[256];
	const char *files[] = { "LOCK", "zos.db", "zos.db-wal", "zos.db-shm" };
	mode_t      old     = umask(0); /* what the store asks for is all */

	parts_up(&p);
	start_durable(&p, "p", &s);
	skills_durable(&p, "induction", 0.125);
	cr_assert_eq(
	    mode_of(fx.dir), 0700, "%s: %04o", fx.dir, mode_of(fx.dir));
	/* While open: SQLite's -wal and -shm are there too. */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		path_in(path, sizeof(path), files[i]);
		cr_assert_eq(
		    mode_of(path), 0600, "%s: %04o", path, mode_of(path));
	}
	parts_down(&p);
	path_in(path, sizeof(path), "zos.db");
	cr_assert_eq(mode_of(path), 0600, "%s: %04o", path, mode_of(path));
	umask(old);
}

/* A backup put back with cp (mode 0644 under the usual umask) must not
 * make the database, or the -wal and -shm SQLite gives its mode, readable
 * by others. */
Test(store, a_restored_database_readable_by_others_is_narrowed_to_0600)
{
	struct parts       p;
	struct zos_session s;
	char               path[256];
	const char        *files[] = { "zos.db", "zos.db-wal", "zos.db-shm" };
	mode_t             old     = umask(0);

	make_data(NULL);
	path_in(path, sizeof(path), "zos.db");
	cr_assert_eq(chmod(path, 0644), 0);
	parts_up(&p);
	start_durable(&p, "p", &s);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		path_in(path, sizeof(path), files[i]);
		cr_assert_eq(
		    mode_of(path), 0600, "%s: %04o", path, mode_of(path));
	}
	parts_down(&p);
	umask(old);
}

Test(store, an_open_directory_is_narrowed_to_0700_with_a_warning)
{
	struct zos_store *store;
	char              path[256];

	cr_assert_eq(mkdir(fx.dir, 0755), 0);
	cr_assert_eq(chmod(fx.dir, 0775), 0);
	path_in(path, sizeof(path), "LOCK");
	spit(path, "", 0);
	cr_assert_eq(chmod(path, 0644), 0);
	store = open_ok(fx.dir);
	cr_assert_eq(mode_of(fx.dir), 0700);
	cr_assert_eq(mode_of(path), 0600);
	cr_assert(strstr(fx.log, "had mode 0775") != NULL, "%s", fx.log);
	zos_store_close(store);
}

Test(store, leftover_temporary_snapshot_files_are_removed_and_logged)
{
	struct zos_sessions_image saved, image;
	struct zos_store         *store;
	char                      tmp[2][256];
	const char *names[2] = { "skills.snap.tmp", "sessions.snap.tmp" };

	make_data(&saved);
	for (int i = 0; i < 2; i++) {
		path_in(tmp[i], sizeof(tmp[i]), names[i]);
		spit(tmp[i], "half a write", 12);
	}
	fx.log[0] = '\0';
	store     = open_ok(fx.dir);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(access(tmp[i], F_OK), -1, "%s", tmp[i]);
		cr_assert_eq(errno, ENOENT);
		cr_assert(strstr(fx.log, tmp[i]) != NULL, "log: %s", fx.log);
	}
	cr_assert(zos_store_take_sessions(store, &image));
	cr_assert_eq(image.count, saved.count);
	cr_assert_eq(image.seq, saved.seq);
	zos_sessions_image_finish(&image);
	zos_sessions_image_finish(&saved);
	zos_store_close(store);
}

/* ------------------------------------------------------------------ */
/* Through the state, as zosd uses it. */

static struct zos_state *
state_ok(const char *skills_file)
{
	struct zos_state_config config = {
		.skills_file        = skills_file,
		.abort_on_violation = true,
		.data_dir           = fx.dir,
		.log                = test_log,
	};
	struct zos_state *state;
	char              err[512];

	state = zos_state_create(&config, err, sizeof(err));
	cr_assert_not_null(state, "%s", err);
	cr_assert_not_null(state->store);
	return state;
}

Test(store, the_state_seeds_an_empty_directory_and_then_keeps_its_skills)
{
	struct zos_state        *state;
	struct zos_skill_vector *v;
	struct zos_skill_delta   d = { "lemma", 0.25 };
	struct zos_session       s;
	char                     skills_file[256], path[256], err[256];

	snprintf(skills_file, sizeof(skills_file), "%s/skills.txt", fx.root);
	spit(skills_file, "lemma 0.5\n", 10);
	state = state_ok(skills_file);
	/* Durable before create returns, without any commit of ours. */
	path_in(path, sizeof(path), "zos.db");
	cr_assert_eq(db_int(path, "SELECT count(*) FROM skills"), 1);
	cr_assert_eq(db_meta("skills_version"), 0);
	cr_assert_eq(
	    zos_skills_update(&state->skills, &d, 1, 0, &v, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	cr_assert_eq(zos_store_commit_wait(state->store, ZOS_STORE_SKILLS,
	                 v->change_seq, err, sizeof(err)),
	    0, "%s", err);
	zos_skill_vector_unref(v);
	cr_assert_eq(
	    zos_sessions_start(state->sessions, "p", &s), ZOS_SESSION_OK);
	cr_assert_eq(zos_store_commit_wait(state->store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(state->sessions), err, sizeof(err)),
	    0, "%s", err);
	zos_state_destroy(state);

	/* A new skills file does not replace what the directory has. */
	spit(skills_file, "other 0.1\n", 10);
	state = state_ok(skills_file);
	v     = zos_skills_get(&state->skills);
	cr_assert_eq(v->version, 1);
	cr_assert_eq(v->n, 1);
	cr_assert_str_eq(v->skills[0].name, "lemma");
	cr_assert_eq(v->skills[0].level, 0.75);
	zos_skill_vector_unref(v);
	cr_assert_eq(
	    zos_sessions_get(state->sessions, s.id, &s), ZOS_SESSION_OK);
	cr_assert_str_eq(s.problem_id, "p");
	zos_state_destroy(state);
}

/* ------------------------------------------------------------------ */
/* The import of an old data directory (skills.snap, sessions.snap). */

/* Frames the payload in BUF (after its header room) as PART at SEQ and
 * writes it to DIR/NAME. */
static void
write_snapshot(
    const char *name, uint32_t part, uint8_t *buf, size_t len, uint64_t seq)
{
	char path[256];

	zos_snapshot_frame(buf, part, len, seq);
	path_in(path, sizeof(path), name);
	spit(path, buf, ZOS_SNAPSHOT_HEADER_LEN + len);
}

/*
 * Makes fx.dir an old data directory, as the zosd before zos.db left it:
 * skills at version 1 and two sessions (one owned, one moved on), in
 * skills.snap and sessions.snap. Returns what it wrote in *IMAGE and *V.
 */
static void
make_old_dir(struct zos_sessions_image *image, struct zos_skill_vector **v)
{
	struct zos_lock_domain domain;
	struct zos_skills      skills;
	struct zos_sessions   *sessions;
	struct zos_session     s;
	struct zos_skill_delta d = { "induction", 0.25 };
	uint8_t               *buf;
	size_t                 len;
	char                   err[256];

	cr_assert_eq(mkdir(fx.dir, 0700), 0);
	memset(&skills, 0, sizeof(skills));
	zos_lock_domain_init(&domain, true, lock_log, NULL);
	cr_assert_eq(zos_skills_init(&skills, &domain, NULL), 0);
	cr_assert_eq(
	    zos_sessions_create(&sessions, &domain, 0), ZOS_SESSION_OK);
	cr_assert_eq(zos_skills_update(&skills, &d, 1, 0, v, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	cr_assert_eq(zos_sessions_start_owned(sessions, "old-1", 0xabcdu, &s),
	    ZOS_SESSION_OK);
	cr_assert_eq(
	    zos_sessions_start(sessions, "old-2", &s), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_transition(
	                 sessions, s.id, ZOS_PROOF_ANALYZING, 0, NULL),
	    ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_snapshot(sessions, image), ZOS_SESSION_OK);

	cr_assert_eq(zos_codec_encode_skills(*v, ZOS_SNAPSHOT_HEADER_LEN, &buf,
	                 &len, err, sizeof(err)),
	    0, "%s", err);
	write_snapshot(
	    "skills.snap", ZOS_STORE_SKILLS, buf, len, (*v)->version);
	free(buf);
	cr_assert_eq(
	    zos_codec_encode_sessions(image, ZOS_SNAPSHOT_HEADER_LEN,
	        ZOS_SNAPSHOT_PAYLOAD_MAX, &buf, &len, err, sizeof(err)),
	    0, "%s", err);
	write_snapshot(
	    "sessions.snap", ZOS_STORE_SESSIONS, buf, len, image->seq);
	free(buf);
	zos_sessions_destroy(sessions);
	zos_skills_finish(&skills);
}

/* Asserts that STORE read exactly IMAGE and V. */
static void
check_imported(struct zos_store *store, const struct zos_sessions_image *image,
    const struct zos_skill_vector *v)
{
	struct zos_sessions_image got;
	struct zos_skill_vector  *skills = zos_store_take_skills(store);

	cr_assert_not_null(skills);
	cr_assert_eq(skills->version, v->version);
	cr_assert_eq(skills->n, v->n);
	for (size_t i = 0; i < v->n; i++) {
		cr_assert_eq(
		    level_of(skills, v->skills[i].name), v->skills[i].level);
	}
	zos_skill_vector_unref(skills);
	cr_assert(zos_store_take_sessions(store, &got));
	cr_assert_eq(got.seq, image->seq);
	cr_assert_eq(got.count, image->count);
	for (size_t i = 0; i < image->count; i++) {
		const struct zos_session *b = &image->sessions[i];
		const struct zos_session *a = image_find(&got, b->id);

		cr_assert_str_eq(a->problem_id, b->problem_id);
		cr_assert_eq(a->state, b->state);
		cr_assert_eq(a->version, b->version);
		cr_assert_eq(a->created_unix_ms, b->created_unix_ms);
		cr_assert_eq(a->updated_unix_ms, b->updated_unix_ms);
		cr_assert_eq(a->owner, b->owner);
	}
	zos_sessions_image_finish(&got);
}

/* The old files are renamed *.snap.imported, with their bytes. */
static void
check_retired(const unsigned char *skills, size_t skills_len,
    const unsigned char *sessions, size_t sessions_len)
{
	char path[256];

	path_in(path, sizeof(path), "skills.snap");
	cr_assert_not(exists(path), "%s is still there", path);
	path_in(path, sizeof(path), "sessions.snap");
	cr_assert_not(exists(path), "%s is still there", path);
	path_in(path, sizeof(path), "skills.snap.imported");
	same_bytes(path, skills, skills_len);
	path_in(path, sizeof(path), "sessions.snap.imported");
	same_bytes(path, sessions, sessions_len);
}

/* The bytes of the old files, for check_retired. */
struct old_files {
	unsigned char *skills, *sessions;
	size_t         skills_len, sessions_len;
};

static void
old_files_read(struct old_files *f)
{
	char path[256];

	path_in(path, sizeof(path), "skills.snap");
	f->skills = slurp(path, &f->skills_len);
	path_in(path, sizeof(path), "sessions.snap");
	f->sessions = slurp(path, &f->sessions_len);
}

static void
old_files_check_retired(const struct old_files *f)
{
	check_retired(f->skills, f->skills_len, f->sessions, f->sessions_len);
}

static void
old_files_free(struct old_files *f)
{
	free(f->skills);
	free(f->sessions);
}

/* After the import, a change made and committed by a started store: a
 * second open that imported again would lose it. */
static void
change_after_import(const struct zos_sessions_image *image)
{
	struct parts       p;
	struct zos_session s;

	parts_up(&p);
	cr_assert_eq(zos_sessions_transition(p.sessions, image->sessions[0].id,
	                 ZOS_PROOF_ABANDONED, 0, NULL),
	    ZOS_SESSION_OK);
	start_durable(&p, "new", &s);
	parts_down(&p);
}

/* A second open sees the change_after_import, not the old files. */
static void
check_not_imported_again(const struct zos_sessions_image *image)
{
	struct parts       p;
	struct zos_session got;

	parts_up(&p);
	cr_assert_eq(zos_sessions_get(p.sessions, image->sessions[0].id, &got),
	    ZOS_SESSION_OK);
	cr_assert_eq(got.state, ZOS_PROOF_ABANDONED);
	cr_assert_eq(zos_sessions_seq(p.sessions), image->seq + 2);
	parts_down(&p);
	cr_assert_eq(db_sessions(), 3);
}

Test(store, an_old_directory_is_imported_once_and_its_files_kept)
{
	struct zos_sessions_image image;
	struct zos_skill_vector  *v;
	struct zos_store         *store;
	struct old_files          old;

	make_old_dir(&image, &v);
	old_files_read(&old);
	store = open_ok(fx.dir);
	check_imported(store, &image, v);
	old_files_check_retired(&old);
	zos_store_close(store);
	cr_assert_eq(db_meta("imported_snapshots"), 1);
	cr_assert_eq(db_sessions(), 2);
	cr_assert_eq(db_meta("sessions_seq"), (int64_t) image.seq);
	cr_assert_eq(db_meta("skills_version"), 1);

	change_after_import(&image);
	check_not_imported_again(&image);
	old_files_check_retired(&old);
	old_files_free(&old);
	zos_skill_vector_unref(v);
	zos_sessions_image_finish(&image);
}

Test(store, an_old_directory_with_only_sessions_is_imported)
{
	struct zos_sessions_image image;
	struct zos_skill_vector  *v;
	struct zos_sessions_image got;
	struct zos_store         *store;
	char                      path[256];

	make_old_dir(&image, &v);
	path_in(path, sizeof(path), "skills.snap");
	cr_assert_eq(unlink(path), 0);
	store = open_ok(fx.dir);
	cr_assert_null(zos_store_take_skills(store));
	cr_assert(zos_store_take_sessions(store, &got));
	cr_assert_eq(got.count, image.count);
	cr_assert_eq(got.seq, image.seq);
	zos_sessions_image_finish(&got);
	zos_store_close(store);
	path_in(path, sizeof(path), "sessions.snap.imported");
	cr_assert(exists(path));
	zos_skill_vector_unref(v);
	zos_sessions_image_finish(&image);
}

Test(store, an_empty_database_left_by_a_crash_is_imported_again)
{
	struct zos_sessions_image image;
	struct zos_skill_vector  *v;
	struct zos_store         *store;
	struct old_files          old;
	char                      path[256];

	/* The crash came after SQLite made the file, before the import's
	 * transaction committed: an empty file beside the old ones. */
	make_old_dir(&image, &v);
	old_files_read(&old);
	path_in(path, sizeof(path), "zos.db");
	spit(path, "", 0);
	cr_assert_eq(chmod(path, 0600), 0);
	store = open_ok(fx.dir);
	check_imported(store, &image, v);
	old_files_check_retired(&old);
	zos_store_close(store);
	cr_assert_eq(db_meta("imported_snapshots"), 1);
	old_files_free(&old);
	zos_skill_vector_unref(v);
	zos_sessions_image_finish(&image);
}

Test(store, an_import_cut_short_before_its_renames_finishes_them)
{
	struct zos_sessions_image image;
	struct zos_skill_vector  *v;
	struct zos_store         *store;
	struct old_files          old;
	char                      from[256], to[256];

	make_old_dir(&image, &v);
	old_files_read(&old);
	store = open_ok(fx.dir);
	check_imported(store, &image, v);
	zos_store_close(store);
	change_after_import(&image);
	/* As a crash between the two renames leaves it. */
	path_in(from, sizeof(from), "sessions.snap.imported");
	path_in(to, sizeof(to), "sessions.snap");
	cr_assert_eq(rename(from, to), 0);

	check_not_imported_again(&image);
	old_files_check_retired(&old);
	old_files_free(&old);
	zos_skill_vector_unref(v);
	zos_sessions_image_finish(&image);
}

Test(store, an_import_cut_short_before_any_rename_finishes_both)
{
	struct zos_sessions_image image;
	struct zos_skill_vector  *v;
	struct zos_store         *store;
	struct old_files          old;
	const char               *names[] = { "skills.snap", "sessions.snap" };
	char                      from[300], to[256];

	make_old_dir(&image, &v);
	old_files_read(&old);
	store = open_ok(fx.dir);
	check_imported(store, &image, v);
	zos_store_close(store);
	change_after_import(&image);
	/* As a crash right after the import's commit leaves it. */
	for (size_t i = 0; i < 2; i++) {
		path_in(to, sizeof(to), names[i]);
		snprintf(from, sizeof(from), "%s.imported", to);
		cr_assert_eq(rename(from, to), 0);
	}

	check_not_imported_again(&image);
	old_files_check_retired(&old);
	old_files_free(&old);
	zos_skill_vector_unref(v);
	zos_sessions_image_finish(&image);
}

Test(store, a_corrupt_old_snapshot_fails_the_import_naming_it)
{
	struct zos_sessions_image image;
	struct zos_skill_vector  *v;
	struct zos_store         *store;
	struct old_files          old;
	unsigned char            *bad;
	char                      path[256], err[512];

	make_old_dir(&image, &v);
	old_files_read(&old);
	path_in(path, sizeof(path), "sessions.snap");
	bad = malloc(old.sessions_len);
	cr_assert_not_null(bad);
	memcpy(bad, old.sessions, old.sessions_len);
	bad[old.sessions_len - 1] ^= 0x40;
	spit(path, bad, old.sessions_len);
	open_fails(fx.dir, err, sizeof(err));
	cr_assert(strstr(err, path) != NULL, "%s", err);
	cr_assert(strstr(err, "corrupt") != NULL, "%s", err);
	/* Nothing renamed, nothing imported: the old files are as they
	 * were, and once mended the import runs. */
	same_bytes(path, bad, old.sessions_len);
	path_in(path, sizeof(path), "skills.snap");
	same_bytes(path, old.skills, old.skills_len);
	path_in(path, sizeof(path), "sessions.snap");
	spit(path, old.sessions, old.sessions_len);
	store = open_ok(fx.dir);
	check_imported(store, &image, v);
	zos_store_close(store);
	old_files_check_retired(&old);
	free(bad);
	old_files_free(&old);
	zos_skill_vector_unref(v);
	zos_sessions_image_finish(&image);
}

/* Size of fx.dir's NAME in bytes (0 when missing). */
static off_t
file_size(const char *name)
{
	struct stat st;
	char        path[PATH_MAX];

	path_in(path, sizeof(path), name);
	return stat(path, &st) == 0 ? st.st_size : 0;
}

Test(store, the_checkpointer_copies_the_wal_into_the_database_while_open)
{
	struct parts       p;
	struct zos_session s;
	off_t              db_before;
	int                polls = 0;

	parts_up(&p);
	db_before = file_size("zos.db");
	/* One commit per Start: each appends frames to the WAL, and past
	 * 1000 of them the checkpointer (not the commit) copies them into
	 * zos.db, which then grows while the store is still open. */
	for (int i = 0; i < 1500; i++) {
		cr_assert_eq(
		    zos_sessions_start(p.sessions, "p", &s), ZOS_SESSION_OK);
		commit_ok(p.store, ZOS_STORE_SESSIONS, s.change_seq);
	}
	while (file_size("zos.db") <= db_before && polls++ < 1000) {
		struct timespec ms = { 0, 10 * 1000 * 1000 };
		nanosleep(&ms, NULL); /* bounded poll: 10 s at most */
	}
	cr_assert_gt(file_size("zos.db"), db_before,
	    "zos.db still %lld bytes, the WAL %lld: nothing was checkpointed",
	    (long long) file_size("zos.db"),
	    (long long) file_size("zos.db-wal"));
	/* Bounded: far below what 1500 commits appended. */
	cr_assert_lt(file_size("zos.db-wal"), 64ll << 20);
	parts_down(&p);
}
