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

/* The sequence number in the header of the data directory's file NAME. */
static uint64_t
file_seq(const char *name)
{
	unsigned char header[32];
	char          path[128];
	uint64_t      seq = 0;
	FILE         *f;

	snprintf(path, sizeof(path), "%s/%s", fx.root, name);
	cr_assert_not_null(f = fopen(path, "rb"), "%s", path);
	cr_assert_eq(fread(header, 1, sizeof(header), f), sizeof(header));
	fclose(f);
	for (int i = 7; i >= 0; i--) {
		seq = (seq << 8) | header[16 + i];
	}
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
		/* No wait: the answer came after the write. */
		cr_assert_geq(file_seq("sessions.snap"), i);
	}
	zos_store_stats(fx.state->store, &stats);
	cr_assert_geq(stats.commit_waiters, 3);
}

Test(durable_reply, a_change_that_cannot_be_made_durable_is_never_ok)
{
	char        tmp[128];
	uint64_t    version = 0;
	zrpc_status st;

	cr_assert_eq(start_session("first", &version).code, ZRPC_OK);
	/* A directory where the temporary file goes: the write fails
	 * (EISDIR), even for root. */
	snprintf(tmp, sizeof(tmp), "%s/sessions.snap.tmp", fx.root);
	cr_assert_eq(mkdir(tmp, 0755), 0);
	st = start_session("second", &version);
	cr_assert_eq(st.code, ZRPC_INTERNAL, "%d %s", st.code, st.message);
	cr_assert(strstr(st.message, "not durable") != NULL, "%s", st.message);
	cr_assert(strstr(st.message, tmp) != NULL, "%s", st.message);
	cr_assert_eq(file_seq("sessions.snap"), 1);

	/* Space again: the next change makes both durable. */
	cr_assert_eq(rmdir(tmp), 0);
	st = start_session("third", &version);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(file_seq("sessions.snap"), 3);
}
