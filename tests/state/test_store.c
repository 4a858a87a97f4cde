/*
 * Tests for the store (zos/state/store.c): snapshot files that survive
 * close and open, corruption that is reported and left alone, the
 * directory lock, group commit, and the promise that every commit request
 * is answered exactly once.
 *
 * Each test works in its own directory under /tmp, removed by the fixture
 * whether the test passes or not.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* What a test leaves for the fixture to clean up. */
struct store_fixture {
	char            root[64]; /* the test's directory */
	char            dir[128]; /* the data directory in it */
	pthread_mutex_t log_mtx;
	char            log[4096]; /* everything logged, one line each */
};

static struct store_fixture fx;

static void
fixture_init(void)
{
	snprintf(fx.root, sizeof(fx.root), "/tmp/zos-store-XXXXXX");
	cr_assert_not_null(mkdtemp(fx.root));
	snprintf(fx.dir, sizeof(fx.dir), "%s/data", fx.root);
	pthread_mutex_init(&fx.log_mtx, NULL);
	fx.log[0] = '\0';
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

/* Opens DIR, asserting success. */
static struct zos_store *
open_ok(const char *dir)
{
	struct zos_store_config config = { .dir = dir, .log = test_log };
	struct zos_store       *store  = NULL;
	char                    err[512];

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

	cr_assert_eq(zos_store_open(&config, &store, err, err_len), -1,
	    "open %s succeeded", dir);
	cr_assert_null(store);
}

/* Opens fx.dir and builds the parts from what it holds (or the defaults),
 * then starts the flusher. */
static void
parts_up(struct parts *p)
{
	struct zos_sessions_image image;
	char                      err[256];

	zos_lock_domain_init(&p->domain, true, NULL, NULL);
	p->store = open_ok(fx.dir);
	cr_assert_eq(zos_skills_init(&p->skills, &p->domain,
	                 zos_store_take_skills(p->store)),
	    0);
	cr_assert_eq(
	    zos_sessions_create(&p->sessions, &p->domain, 0), ZOS_SESSION_OK);
	if (zos_store_take_sessions(p->store, &image)) {
		cr_assert_eq(zos_sessions_restore(
		                 p->sessions, &image, err, sizeof(err)),
		    ZOS_SESSION_OK, "%s", err);
		zos_sessions_image_finish(&image);
	}
	cr_assert_eq(zos_store_start(p->store, &p->skills, p->sessions), 0);
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

/* Starts a session and commits it; returns it in *OUT. */
static void
start_durable(struct parts *p, const char *problem, struct zos_session *out)
{
	cr_assert_eq(
	    zos_sessions_start(p->sessions, problem, out), ZOS_SESSION_OK);
	commit_ok(p->store, ZOS_STORE_SESSIONS, zos_sessions_seq(p->sessions));
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

/* The sequence number in the header of the snapshot at PATH. */
static uint64_t
file_seq(const char *path)
{
	size_t         len;
	unsigned char *buf = slurp(path, &len);
	uint64_t       seq = 0;

	cr_assert_geq(len, 32);
	cr_assert_eq(memcmp(buf, "ZOSSNAP1", 8), 0);
	for (int i = 7; i >= 0; i--) {
		seq = seq << 8 | buf[16 + i];
	}
	free(buf);
	return seq;
}

static void
path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", fx.dir, name);
}

/* A data directory with both snapshots: three sessions, skills at 1. */
static void
make_data(struct zos_sessions_image *saved)
{
	struct parts           p;
	struct zos_session     s;
	struct zos_skill_delta d = { "induction", 0.25 };
	char                   err[128];

	parts_up(&p);
	cr_assert_eq(
	    zos_skills_update(&p.skills, &d, 1, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	commit_ok(p.store, ZOS_STORE_SKILLS, 1);
	start_durable(&p, "p-1", &s);
	start_durable(&p, "p-2", &s);
	start_durable(&p, "p-3", &s);
	if (saved != NULL) {
		cr_assert_eq(
		    zos_sessions_snapshot(p.sessions, saved), ZOS_SESSION_OK);
	}
	parts_down(&p);
}

Test(store, skills_and_sessions_survive_close_and_open)
{
	struct parts              p;
	struct zos_sessions_image before, after;
	struct zos_skill_vector  *saved, *loaded;
	struct zos_skill_delta    d1[] = { { "induction", 0.25 },
		   { "cases", -0.125 } };
	struct zos_skill_delta    d2   = { "induction", 0.0625 };
	struct zos_session        s[4], fresh;
	char                      err[256];

	parts_up(&p);
	cr_assert_eq(
	    zos_skills_update(&p.skills, d1, 2, 0, NULL, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	cr_assert_eq(
	    zos_skills_update(&p.skills, &d2, 1, 0, &saved, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	cr_assert_eq(saved->version, 2);
	commit_ok(p.store, ZOS_STORE_SKILLS, saved->version);
	for (int i = 0; i < 4; i++) {
		char problem[16];

		snprintf(problem, sizeof(problem), "problem-%d", i);
		cr_assert_eq(zos_sessions_start(p.sessions, problem, &s[i]),
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
		cr_assert_str_eq(
		    loaded->skills[i].name, saved->skills[i].name);
		cr_assert_eq(loaded->skills[i].level, saved->skills[i].level);
		cr_assert_eq(
		    loaded->skills[i].attempts, saved->skills[i].attempts);
	}
	cr_assert(zos_store_take_sessions(p.store, &after));
	cr_assert_eq(after.seq, before.seq);
	cr_assert_eq(after.id_key, before.id_key);
	cr_assert_eq(after.count, before.count);
	for (size_t i = 0; i < before.count; i++) {
		const struct zos_session *a = &after.sessions[i];
		const struct zos_session *b = &before.sessions[i];

		/* Field by field: the bytes after a string's NUL are not
		 * part of it, and are not stored. */
		cr_assert_str_eq(a->id, b->id);
		cr_assert_str_eq(a->problem_id, b->problem_id);
		cr_assert_eq(a->state, b->state, "session %zu", i);
		cr_assert_eq(a->version, b->version, "session %zu", i);
		cr_assert_eq(a->created_unix_ms, b->created_unix_ms);
		cr_assert_eq(a->updated_unix_ms, b->updated_unix_ms);
	}
	zos_skill_vector_unref(loaded);
	zos_sessions_image_finish(&after);
	zos_store_close(p.store);

	/* Built up again, the table goes on where it was. */
	parts_up(&p);
	cr_assert_eq(zos_sessions_seq(p.sessions), 7);
	cr_assert_eq(p.skills.current->version, 2);
	start_durable(&p, "after", &fresh);
	for (size_t i = 0; i < before.count; i++) {
		cr_assert_str_neq(fresh.id, before.sessions[i].id);
		/* The serial half too: the key and the serial went on. */
		cr_assert_str_neq(fresh.id + 8, before.sessions[i].id + 8);
	}
	parts_down(&p);
	zos_skill_vector_unref(saved);
	zos_sessions_image_finish(&before);
}

Test(store, a_missing_directory_is_created_with_its_parents)
{
	struct zos_store *store;
	struct stat       st;
	char              nested[256], lock[300];

	snprintf(nested, sizeof(nested), "%s/a/b/c", fx.dir);
	cr_assert_eq(stat(fx.dir, &st), -1);
	store = open_ok(nested);
	cr_assert_str_eq(zos_store_dir(store), nested);
	cr_assert_eq(stat(nested, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	snprintf(lock, sizeof(lock), "%s/LOCK", nested);
	cr_assert_eq(stat(lock, &st), 0);
	/* Nothing there yet: nothing to take. */
	struct zos_sessions_image image;
	cr_assert_null(zos_store_take_skills(store));
	cr_assert_not(zos_store_take_sessions(store, &image));
	cr_assert_eq(image.count, 0);
	cr_assert_null(image.sessions);
	zos_store_close(store);
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

/*
 * Spoils the snapshot NAME of a fresh data directory with SPOIL, then
 * checks that open fails saying so, with the path, and leaves the file
 * byte for byte as it was spoiled.
 */
static void
check_corrupt(const char *name, void (*spoil)(unsigned char *, size_t *),
    const char           *expect)
{
	char           path[256], err[512];
	unsigned char *buf, *after;
	size_t         len, after_len;

	make_data(NULL);
	path_in(path, sizeof(path), name);
	buf = slurp(path, &len);
	spoil(buf, &len);
	spit(path, buf, len);

	open_fails(fx.dir, err, sizeof(err));
	cr_assert(strstr(err, path) != NULL, "%s", err);
	cr_assert(strstr(err, "corrupt") != NULL, "%s", err);
	cr_assert(strstr(err, expect) != NULL, "%s", err);
	/* Reported, never repaired: the same bytes, twice over. */
	open_fails(fx.dir, err, sizeof(err));
	after = slurp(path, &after_len);
	cr_assert_eq(after_len, len);
	cr_assert_eq(memcmp(after, buf, len), 0);
	free(after);
	free(buf);
}

static void
spoil_payload_byte(unsigned char *buf, size_t *len)
{
	cr_assert_gt(*len, 40);
	buf[32 + (*len - 32) / 2] ^= 0x01;
}

static void
spoil_truncate(unsigned char *buf, size_t *len)
{
	(void) buf;
	*len -= 3;
}

static void
spoil_header_only(unsigned char *buf, size_t *len)
{
	(void) buf;
	*len = 20;
}

static void
spoil_magic(unsigned char *buf, size_t *len)
{
	(void) len;
	buf[0] = 'X';
}

static void
spoil_huge_length(unsigned char *buf, size_t *len)
{
	(void) len;
	buf[12] = 0x01; /* 256 MiB + 1 */
	buf[13] = 0x00;
	buf[14] = 0x00;
	buf[15] = 0x10;
}

Test(store, one_flipped_payload_byte_is_a_checksum_mismatch)
{
	check_corrupt("sessions.snap", spoil_payload_byte, "checksum");
}

Test(store, a_flipped_skills_byte_is_found_as_well)
{
	check_corrupt("skills.snap", spoil_payload_byte, "checksum");
}

Test(store, a_truncated_file_is_corrupt)
{
	check_corrupt("sessions.snap", spoil_truncate, "truncated");
}

Test(store, a_truncated_header_is_corrupt)
{
	check_corrupt("skills.snap", spoil_header_only, "truncated header");
}

Test(store, a_bad_magic_is_corrupt)
{
	check_corrupt("sessions.snap", spoil_magic, "magic");
}

Test(store, a_payload_over_256_mib_is_refused_unread)
{
	check_corrupt("sessions.snap", spoil_huge_length, "256 MiB");
}

Test(store, leftover_temporary_files_are_removed_and_logged)
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
	/* What is read is the acknowledged snapshot, not the leftover. */
	cr_assert(zos_store_take_sessions(store, &image));
	cr_assert_eq(image.count, saved.count);
	cr_assert_eq(image.seq, saved.seq);
	zos_sessions_image_finish(&image);
	zos_sessions_image_finish(&saved);
	zos_store_close(store);
}

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

/* Group commit: 64 callers change sessions, then wait. */
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
	 * copy covers them all. */
	pthread_barrier_wait(&g->changed);
	if (zos_store_commit_wait(
	        g->p->store, ZOS_STORE_SESSIONS, seq, err, sizeof(err)) != 0) {
		atomic_fetch_add(&g->failed, 1);
	}
	return NULL;
}

Test(store, concurrent_commits_share_one_write)
{
	struct parts              p;
	struct group              g;
	struct zos_store_stats    start, stats;
	struct zos_sessions_image image;
	pthread_t                 t[GROUP_THREADS];
	char                      path[256];

	parts_up(&p);
	zos_store_stats(p.store, &start); /* open synced the new directory */
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
	cr_assert_lt(stats.commits, GROUP_THREADS);
	cr_assert_eq(stats.commits, 1, "%llu writes for one copy",
	    (unsigned long long) stats.commits);
	cr_assert_eq(stats.commit_waiters, GROUP_THREADS);
	cr_assert_eq(stats.failures, 0);
	cr_assert_gt(stats.bytes_written, 32);
	cr_assert_geq(stats.commit_ns_sum, stats.commit_ns_max);
	path_in(path, sizeof(path), "sessions.snap");
	cr_assert_eq(file_seq(path), GROUP_THREADS);
	parts_down(&p);

	/* All 64 are on disk. */
	p.store = open_ok(fx.dir);
	cr_assert(zos_store_take_sessions(p.store, &image));
	cr_assert_eq(image.count, GROUP_THREADS);
	cr_assert_eq(image.seq, GROUP_THREADS);
	zos_sessions_image_finish(&image);
	zos_store_close(p.store);
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

Test(store, an_older_snapshot_never_replaces_a_newer_one)
{
	struct parts           p;
	struct zos_session     s;
	struct zos_store_stats stats;
	struct counted         c = { 0 };
	unsigned char         *before, *after;
	size_t                 before_len, after_len;
	char                   path[256], err[256];

	parts_up(&p);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(
		    zos_sessions_start(p.sessions, "p", &s), ZOS_SESSION_OK);
	}
	commit_ok(p.store, ZOS_STORE_SESSIONS, 10);
	path_in(path, sizeof(path), "sessions.snap");
	cr_assert_eq(file_seq(path), 10);
	before = slurp(path, &before_len);

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
	cr_assert_eq(stats.commits, 1);
	cr_assert_eq(stats.commit_waiters, 4);
	after = slurp(path, &after_len);
	cr_assert_eq(after_len, before_len);
	cr_assert_eq(memcmp(after, before, before_len), 0);
	cr_assert_eq(file_seq(path), 10);
	free(after);
	free(before);
	parts_down(&p);
}

Test(store, a_copy_older_than_the_file_is_never_written_over_it)
{
	struct parts           p;
	struct zos_session     s;
	struct zos_store_stats stats;
	unsigned char         *before, *after;
	size_t                 before_len, after_len;
	char                   path[256], err[256];

	make_data(NULL); /* sessions at change 3 */
	path_in(path, sizeof(path), "sessions.snap");
	before = slurp(path, &before_len);

	/* A table that was not restored from the file is behind it. */
	zos_lock_domain_init(&p.domain, true, NULL, NULL);
	p.store = open_ok(fx.dir);
	cr_assert_eq(zos_skills_init(
	                 &p.skills, &p.domain, zos_store_take_skills(p.store)),
	    0);
	cr_assert_eq(
	    zos_sessions_create(&p.sessions, &p.domain, 0), ZOS_SESSION_OK);
	cr_assert_eq(zos_store_start(p.store, &p.skills, p.sessions), 0);
	cr_assert_eq(zos_sessions_start(p.sessions, "p", &s), ZOS_SESSION_OK);
	cr_assert_eq(zos_sessions_seq(p.sessions), 1);
	/* Asks past the file, so it reaches the flusher, whose copy (1)
	 * is older than the file (3): not written, and refused. */
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SESSIONS, 4, err, sizeof(err)),
	    EINVAL);
	zos_store_stats(p.store, &stats);
	cr_assert_eq(stats.commits, 0);
	cr_assert_eq(stats.failures, 0);
	after = slurp(path, &after_len);
	cr_assert_eq(after_len, before_len);
	cr_assert_eq(memcmp(after, before, before_len), 0);
	free(after);
	free(before);
	parts_down(&p);
}

Test(store, a_commit_ahead_of_the_table_is_refused_not_left_hanging)
{
	struct parts       p;
	struct zos_session s;
	char               path[256], err[256];

	parts_up(&p);
	start_durable(&p, "p", &s);
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SESSIONS, 99, err, sizeof(err)),
	    EINVAL);
	cr_assert(strstr(err, "not reached") != NULL, "%s", err);
	cr_assert_eq(zos_store_commit_wait(
	                 p.store, ZOS_STORE_SKILLS, 99, err, sizeof(err)),
	    EINVAL);
	path_in(path, sizeof(path), "sessions.snap");
	cr_assert_eq(file_seq(path), 1);
	parts_down(&p);
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
			zos_store_commit(p.store, ZOS_STORE_SKILLS, v->version,
			    counted_done, &c[i]);
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

Test(store, a_failed_write_is_reported_and_the_next_request_retries)
{
	struct parts              p;
	struct zos_session        s;
	struct zos_store_stats    stats;
	struct zos_sessions_image image;
	char                      tmp[256], path[256], err[512];

	/*
	 * Root ignores permissions, so the failure is made otherwise: a
	 * directory where the temporary file goes cannot be opened for
	 * writing (EISDIR), whoever runs the test.
	 */
	parts_up(&p);
	start_durable(&p, "first", &s);
	path_in(tmp, sizeof(tmp), "sessions.snap.tmp");
	path_in(path, sizeof(path), "sessions.snap");
	cr_assert_eq(mkdir(tmp, 0755), 0);
	cr_assert_eq(
	    zos_sessions_start(p.sessions, "second", &s), ZOS_SESSION_OK);
	fx.log[0] = '\0';
	cr_assert_eq(zos_store_commit_wait(p.store, ZOS_STORE_SESSIONS,
	                 zos_sessions_seq(p.sessions), err, sizeof(err)),
	    EISDIR);
	cr_assert(strstr(err, tmp) != NULL, "%s", err);
	cr_assert(strstr(fx.log, tmp) != NULL, "log: %s", fx.log);
	zos_store_stats(p.store, &stats);
	cr_assert_eq(stats.failures, 1);
	cr_assert_eq(stats.commits, 1);
	cr_assert_eq(file_seq(path), 1); /* the old file, untouched */

	/* Fixed, the next request writes both changes. */
	cr_assert_eq(rmdir(tmp), 0);
	commit_ok(p.store, ZOS_STORE_SESSIONS, zos_sessions_seq(p.sessions));
	cr_assert_eq(file_seq(path), 2);
	zos_store_stats(p.store, &stats);
	cr_assert_eq(stats.failures, 1);
	cr_assert_eq(stats.commits, 2);
	parts_down(&p);

	p.store = open_ok(fx.dir);
	cr_assert(zos_store_take_sessions(p.store, &image));
	cr_assert_eq(image.count, 2);
	cr_assert_str_eq(image.sessions[1].problem_id, "second");
	zos_sessions_image_finish(&image);
	zos_store_close(p.store);
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
	path_in(path, sizeof(path), "skills.snap");
	cr_assert_eq(file_seq(path), 0);
	cr_assert_eq(
	    zos_skills_update(&state->skills, &d, 1, 0, &v, err, sizeof(err)),
	    ZOS_SKILLS_OK);
	cr_assert_eq(zos_store_commit_wait(state->store, ZOS_STORE_SKILLS,
	                 v->version, err, sizeof(err)),
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

Test(store, the_state_refuses_to_start_on_a_corrupt_directory)
{
	struct zos_state_config config = {
		.abort_on_violation = true,
		.data_dir           = fx.dir,
	};
	unsigned char *buf;
	size_t         len;
	char           path[256], err[512];

	make_data(NULL);
	path_in(path, sizeof(path), "sessions.snap");
	buf = slurp(path, &len);
	buf[len - 1] ^= 0x80;
	spit(path, buf, len);
	free(buf);
	cr_assert_null(zos_state_create(&config, err, sizeof(err)));
	cr_assert(strstr(err, path) != NULL, "%s", err);
	cr_assert(strstr(err, "corrupt") != NULL, "%s", err);
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
	cr_assert(strstr(err, "sessions.snap") != NULL, "%s", err);
	cr_assert(strstr(err, "3 sessions") != NULL, "%s", err);
	/* The failed start let go of the directory. */
	config.max_sessions     = 0;
	struct zos_state *state = zos_state_create(&config, err, sizeof(err));
	cr_assert_not_null(state, "%s", err);
	zos_state_destroy(state);
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
	char path[256];

	umask(0); /* what the store asks for is all there is */
	make_data(NULL);
	cr_assert_eq(
	    mode_of(fx.dir), 0700, "%s: %04o", fx.dir, mode_of(fx.dir));
	const char *files[] = { "LOCK", "skills.snap", "sessions.snap" };
	for (size_t i = 0; i < 3; i++) {
		path_in(path, sizeof(path), files[i]);
		cr_assert_eq(
		    mode_of(path), 0600, "%s: %04o", path, mode_of(path));
	}
	umask(022);
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

/* The sessions' clock in the TTL test below. */
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

Test(store, an_expired_session_is_not_found_and_gone_after_a_restart)
{
	struct zos_state  *state;
	struct zos_session done, active, got;
	uint64_t           counts[ZOS_PROOF_STATE_COUNT];
	int64_t            now = 1700000000000;
	char               err[256];

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
	/* The sweep asked for the write; closing writes what was asked. */
	zos_state_destroy(state);

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
