/*
 * Tests for the durable reply (zos/services/durable.c) through a real
 * (inproc) server whose state has a data directory: a change is on disk
 * before its caller hears OK, and a change that cannot be made durable is
 * never answered OK.
 *
 * Each test works in its own directory under /tmp, removed by the fixture.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "services.h"
#include "state.h"
#include "tmpdir.h"
#include "zos/v1/zos.zrpc.h"

static struct {
	char                 root[64];
	struct zos_state    *state;
	struct zos_backends *backends;
	struct zos_services  services;
	zrpc_server         *server;
	zrpc_client         *client;
} fx;

static const zrpc_call_opts opts = { .timeout_ms = 5000 };

static void
fixture_init(void)
{
	struct zos_state_config config = { .abort_on_violation = true };
	zrpc_server_config      sc     = { .workers = 2 };
	char                    error[512], url[96];

	snprintf(fx.root, sizeof(fx.root), "/tmp/zos-durable-svc-XXXXXX");
	cr_assert_not_null(mkdtemp(fx.root));
	config.data_dir = fx.root;
	fx.state        = zos_state_create(&config, error, sizeof(error));
	cr_assert_not_null(fx.state, "%s", error);
	cr_assert_eq(zrpc_server_create(&fx.server, &sc).code, ZRPC_OK);
	cr_assert_eq(zos_backends_create(&(struct zos_backends_config) { 0 },
	                 &fx.backends, error, sizeof(error)),
	    0, "%s", error);
	fx.services = (struct zos_services) { .state = fx.state,
		.backends                            = fx.backends };
	cr_assert_eq(
	    zos_services_register(fx.server, &fx.services).code, ZRPC_OK);
	snprintf(url, sizeof(url), "inproc://zos-durable-%d", (int) getpid());
	cr_assert_eq(zrpc_server_listen(fx.server, url).code, ZRPC_OK);
	cr_assert_eq(zrpc_server_start(fx.server).code, ZRPC_OK);
	cr_assert_eq(zrpc_client_open(&fx.client, url, NULL).code, ZRPC_OK);
}

static void
fixture_fini(void)
{
	zrpc_client_close(fx.client);
	zrpc_server_destroy(fx.server);
	zos_backends_destroy(fx.backends);
	zos_state_destroy(fx.state);
	test_tmpdir_remove(fx.root);
}

TestSuite(durable_reply, .init = fixture_init, .fini = fixture_fini);

/* meta's sessions_seq in the data directory's zos.db (read by a
 * connection of the test's own, as an operator's sqlite3 would). */
static uint64_t
db_sessions_seq(void)
{
	sqlite3      *db;
	sqlite3_stmt *st;
	char          path[128];
	uint64_t      seq = 0;

	snprintf(path, sizeof(path), "%s/zos.db", fx.root);
	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK, "%s", path);
	cr_assert_eq(sqlite3_prepare_v2(db,
	                 "SELECT value FROM meta WHERE key = 'sessions_seq'",
	                 -1, &st, NULL),
	    SQLITE_OK, "%s", sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW) {
		seq = (uint64_t) sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return seq;
}

static zrpc_status
start_session(const char *problem_id, uint64_t *version)
{
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *s = NULL;
	zrpc_status            st;

	req.problem_id = (char *) problem_id;
	st             = zos_v1_session_start(fx.client, &req, &s, &opts);
	if (s != NULL) {
		*version = s->version;
		zos__v1__proof_session__free_unpacked(s, NULL);
	}
	return st;
}

Test(durable_reply, a_change_is_on_disk_before_its_caller_hears_ok)
{
	struct zos_store_stats stats;
	uint64_t               version = 0;
	zrpc_status            st;

	for (uint64_t i = 1; i <= 3; i++) {
		st = start_session("p", &version);
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
		cr_assert_eq(version, 1);
		/* No wait: the answer came after the commit. */
		cr_assert_geq(db_sessions_seq(), i);
	}
	zos_store_stats(fx.state->store, &stats);
	cr_assert_geq(stats.commit_waiters, 3);
}

Test(durable_reply, a_change_that_cannot_be_made_durable_is_never_ok)
{
	Zos__V1__GetSessionRequest get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession     *got = NULL;
	char                       moved[96];
	uint64_t                   version = 0;
	zrpc_status                st;

	cr_assert_eq(start_session("first", &version).code, ZRPC_OK);
	/* The directory is replaced under the store (removed and made
	 * again): it must not write on into a directory nobody reads. */
	snprintf(moved, sizeof(moved), "%s.moved", fx.root);
	cr_assert_eq(rename(fx.root, moved), 0);
	cr_assert_eq(mkdir(fx.root, 0700), 0);
	st = start_session("second", &version);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%d %s", st.code, st.message);
	cr_assert(strstr(st.message, "undone") != NULL, "%s", st.message);
	cr_assert(strstr(st.message, "replaced") != NULL, "%s", st.message);
	/* Nothing was written in either directory after the first. */
	cr_assert_eq(access(fx.root, F_OK), 0);
	test_tmpdir_remove(fx.root);
	cr_assert_eq(rename(moved, fx.root), 0);
	cr_assert_eq(db_sessions_seq(), 1);

	/* And the store stays refused: the change is undone each time, and
	 * nobody can read it meanwhile (a new session is not there). */
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *s = NULL;
	req.problem_id           = "third";
	st = zos_v1_session_start(fx.client, &req, &s, &opts);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
	cr_assert_null(s);
	get.id = "00000000000000000000000000000000";
	cr_assert_eq(zos_v1_session_get(fx.client, &get, &got, &opts).code,
	    ZRPC_NOT_FOUND);
}
