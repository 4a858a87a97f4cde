/*
 * test_auth_zosd: tokens, roles and exposure over a real zosd: each role
 * boundary of the zos.v1 methods (roles from zos.proto), the check before
 * the payload is decoded, the denials in /metrics, the role in the access
 * log (and no token anywhere in the output), SIGHUP reloading the tokens
 * file, a bad file at start-up, the refusal of a non-loopback listener
 * without tokens, and zosctl's message for a denial. Every zosd a test
 * starts is stopped by it (or by the suite's fini when an assertion ends
 * the test early).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "proc.h"
#include "tmpdir.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/v1/health.zrpc.h"
#include "zrpc/v1/reflection.zrpc.h"

#define READ_TOKEN "zt-read-4f1c9a0e7b"
#define WRITE_TOKEN "zt-write-8d2e6b1f3c"
#define ADMIN_TOKEN "zt-admin-0a7c5e9d2b"
#define NEW_TOKEN "zt-new-admin-93b0c1d7"

TestSuite(auth_zosd, .fini = leftover_kill_all);

struct zosd {
	struct proc p;
	char        dir[64];
	char        tokens[128];
	char        url[256];
	int         metrics_port;
};

/* Writes TEXT to Z's tokens file with MODE (a fresh directory first). */
static void
write_tokens(struct zosd *z, const char *text, mode_t mode)
{
	char tmp[160];
	int  fd;

	if (z->dir[0] == '\0') {
		snprintf(z->dir, sizeof(z->dir), "/tmp/zos-auth.XXXXXX");
		cr_assert_not_null(mkdtemp(z->dir));
		snprintf(z->tokens, sizeof(z->tokens), "%s/tokens", z->dir);
	}
	/* Written aside and renamed in, as an operator's tool would. */
	snprintf(tmp, sizeof(tmp), "%s/tokens.new", z->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
	cr_assert_eq(rename(tmp, z->tokens), 0);
}

/* Starts zosd on tcp://127.0.0.1:0 with the tokens file and metrics. */
static void
start_zosd(struct zosd *z)
{
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		"tcp://127.0.0.1:0", "--log-format", "text", "--auth-tokens",
		z->tokens, "--metrics-listen", "http://127.0.0.1:0/metrics",
		"--access-log", "all", NULL };

	tracked_start(&z->p, argv);
	cr_assert(proc_wait_for(&z->p, "metrics on"), "%s", z->p.text);
	proc_listen_url(&z->p, z->url, sizeof(z->url));
	z->metrics_port = metrics_port_of(z->p.text);
	cr_assert_gt(z->metrics_port, 0, "%s", z->p.text);
}

static void
stop_zosd(struct zosd *z)
{
	kill(z->p.pid, SIGTERM);
	cr_assert_eq(tracked_wait(&z->p), 0, "%s", z->p.text);
	/* Tokens are secrets: never in the output. */
	cr_assert_null(strstr(z->p.text, READ_TOKEN), "%s", z->p.text);
	cr_assert_null(strstr(z->p.text, WRITE_TOKEN), "%s", z->p.text);
	cr_assert_null(strstr(z->p.text, ADMIN_TOKEN), "%s", z->p.text);
	cr_assert_null(strstr(z->p.text, NEW_TOKEN), "%s", z->p.text);
	if (z->dir[0] != '\0') {
		cr_assert_eq(test_tmpdir_remove(z->dir), 0);
	}
}

static const char good_tokens[] =
    "# the auth tests' tokens\n" READ_TOKEN " read\n" WRITE_TOKEN
    " write\n" ADMIN_TOKEN " admin\n";

static zrpc_call_opts
with_token(const char *token)
{
	return (zrpc_call_opts) { .timeout_ms = 5000, .token = token };
}

static zrpc_code
clear_cache(zrpc_client *c, const char *token)
{
	Zos__V1__ClearCacheRequest   req = ZOS__V1__CLEAR_CACHE_REQUEST__INIT;
	Zos__V1__ClearCacheResponse *reply = NULL;
	zrpc_call_opts               opts  = with_token(token);
	zrpc_status status = zos_v1_cache_clear(c, &req, &reply, &opts);

	zos__v1__clear_cache_response__free_unpacked(reply, NULL);
	return status.code;
}

static zrpc_code
store_answer(zrpc_client *c, const char *token)
{
	Zos__V1__StoreRequest   req   = ZOS__V1__STORE_REQUEST__INIT;
	Zos__V1__StoreResponse *reply = NULL;
	zrpc_call_opts          opts  = with_token(token);
	zrpc_status             status;

	req.model    = "builtin:echo";
	req.prompt   = "what is 2+2";
	req.response = "5";
	status       = zos_v1_cache_store(c, &req, &reply, &opts);
	zos__v1__store_response__free_unpacked(reply, NULL);
	return status.code;
}

static zrpc_code
start_session(zrpc_client *c, const char *token)
{
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *reply = NULL;
	zrpc_call_opts         opts  = with_token(token);
	zrpc_status            status;

	req.problem_id = "p1";
	status         = zos_v1_session_start(c, &req, &reply, &opts);
	zos__v1__proof_session__free_unpacked(reply, NULL);
	return status.code;
}

static zrpc_code
lookup_cache(zrpc_client *c, const char *token)
{
	Zos__V1__LookupRequest   req   = ZOS__V1__LOOKUP_REQUEST__INIT;
	Zos__V1__LookupResponse *reply = NULL;
	zrpc_call_opts           opts  = with_token(token);
	zrpc_status              status;

	req.model  = "builtin:echo";
	req.prompt = "what is 2+2";
	status     = zos_v1_cache_lookup(c, &req, &reply, &opts);
	zos__v1__lookup_response__free_unpacked(reply, NULL);
	return status.code;
}

static zrpc_code
health(zrpc_client *c, const char *token)
{
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	zrpc_call_opts                 opts  = with_token(token);
	zrpc_status status = zrpc_v1_health_check(c, &req, &reply, &opts);

	zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	return status.code;
}

static zrpc_code
list_services(zrpc_client *c, const char *token)
{
	Zrpc__V1__ListServicesRequest req =
	    ZRPC__V1__LIST_SERVICES_REQUEST__INIT;
	Zrpc__V1__ListServicesResponse *reply = NULL;
	zrpc_call_opts                  opts  = with_token(token);
	zrpc_status                     status =
	    zrpc_v1_reflection_list_services(c, &req, &reply, &opts);

	zrpc__v1__list_services_response__free_unpacked(reply, NULL);
	return status.code;
}

static double
scrape(const struct zosd *z, const char *series)
{
	struct http_reply reply;
	double            value = -1;

	cr_assert(http_request(z->metrics_port, "GET", "/metrics", &reply));
	cr_assert_eq(reply.status, 200);
	cr_assert(metric_value(reply.body, series, &value), "no %s in\n%s",
	    series, reply.body);
	http_reply_free(&reply);
	return value;
}

Test(auth_zosd, each_role_reaches_its_methods_and_denials_are_counted)
{
	struct zosd  z = { 0 };
	zrpc_client *c;

	write_tokens(&z, good_tokens, 0600);
	start_zosd(&z);
	cr_assert_eq(zrpc_client_open(&c, z.url, NULL).code, ZRPC_OK);

	cr_assert_eq(health(c, NULL), ZRPC_OK, "Health/Check is open");
	cr_assert_eq(clear_cache(c, NULL), ZRPC_UNAUTHENTICATED);
	cr_assert_eq(
	    clear_cache(c, "zt-unknown-0123456789"), ZRPC_UNAUTHENTICATED);
	cr_assert_eq(clear_cache(c, READ_TOKEN), ZRPC_PERMISSION_DENIED);
	cr_assert_eq(clear_cache(c, WRITE_TOKEN), ZRPC_PERMISSION_DENIED);
	cr_assert_eq(clear_cache(c, ADMIN_TOKEN), ZRPC_OK);
	cr_assert_eq(start_session(c, NULL), ZRPC_UNAUTHENTICATED);
	cr_assert_eq(start_session(c, READ_TOKEN), ZRPC_PERMISSION_DENIED);
	cr_assert_eq(start_session(c, WRITE_TOKEN), ZRPC_OK);
	cr_assert_eq(start_session(c, ADMIN_TOKEN), ZRPC_OK);
	cr_assert_eq(lookup_cache(c, READ_TOKEN), ZRPC_OK);
	cr_assert_eq(list_services(c, NULL), ZRPC_UNAUTHENTICATED);
	cr_assert_eq(list_services(c, READ_TOKEN), ZRPC_OK);

	/* 4 unauthenticated (Clear x2, Start, ListServices); 3 denied. */
	cr_assert(
	    scrape(&z,
	        "zrpc_auth_denials_total{reason=\"unauthenticated\"}") == 4.0);
	cr_assert(
	    scrape(
	        &z, "zrpc_auth_denials_total{reason=\"permission_denied\"}") ==
	    3.0);
	zrpc_client_close(c);
	stop_zosd(&z);
	/* The access log names the caller's role. */
	cr_assert(
	    strstr(z.p.text, "method=/zos.v1.Cache/Clear code=OK") != NULL,
	    "%s", z.p.text);
	cr_assert(strstr(z.p.text, "role=admin") != NULL, "%s", z.p.text);
	cr_assert(strstr(z.p.text, "role=write") != NULL, "%s", z.p.text);
}

Test(auth_zosd, a_write_token_cannot_plant_a_cached_answer)
{
	struct zosd  z = { 0 };
	zrpc_client *c;

	write_tokens(&z, good_tokens, 0600);
	start_zosd(&z);
	cr_assert_eq(zrpc_client_open(&c, z.url, NULL).code, ZRPC_OK);
	cr_assert_eq(store_answer(c, NULL), ZRPC_UNAUTHENTICATED);
	cr_assert_eq(store_answer(c, READ_TOKEN), ZRPC_PERMISSION_DENIED);
	cr_assert_eq(store_answer(c, WRITE_TOKEN), ZRPC_PERMISSION_DENIED);
	cr_assert_eq(store_answer(c, ADMIN_TOKEN), ZRPC_OK);
	zrpc_client_close(c);
	stop_zosd(&z);
}

Test(auth_zosd, the_token_is_checked_before_the_payload_is_decoded)
{
	static const uint8_t junk[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct zosd          z      = { 0 };
	zrpc_client         *c;
	uint8_t             *reply = NULL;
	size_t               len;
	zrpc_call_opts       opts = with_token(NULL);
	zrpc_status          status;

	write_tokens(&z, good_tokens, 0600);
	start_zosd(&z);
	cr_assert_eq(zrpc_client_open(&c, z.url, NULL).code, ZRPC_OK);
	status = zrpc_client_call_raw(c, "/zos.v1.Session/Start", junk,
	    sizeof(junk), &reply, &len, &opts);
	cr_assert_eq(status.code, ZRPC_UNAUTHENTICATED, "%s", status.message);
	opts.token = READ_TOKEN;
	status     = zrpc_client_call_raw(c, "/zos.v1.Session/Start", junk,
	        sizeof(junk), &reply, &len, &opts);
	cr_assert_eq(
	    status.code, ZRPC_PERMISSION_DENIED, "%s", status.message);
	opts.token = WRITE_TOKEN;
	status     = zrpc_client_call_raw(c, "/zos.v1.Session/Start", junk,
	        sizeof(junk), &reply, &len, &opts);
	cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT, "%s", status.message);
	free(reply);
	zrpc_client_close(c);
	stop_zosd(&z);
}

Test(auth_zosd, sighup_reloads_the_tokens_and_keeps_them_when_the_file_is_bad)
{
	struct zosd  z = { 0 };
	zrpc_client *c;

	write_tokens(&z, READ_TOKEN " read\n", 0600);
	start_zosd(&z);
	cr_assert_eq(zrpc_client_open(&c, z.url, NULL).code, ZRPC_OK);
	cr_assert_eq(clear_cache(c, NEW_TOKEN), ZRPC_UNAUTHENTICATED);

	write_tokens(&z, "# rotated\n" NEW_TOKEN " admin\n", 0600);
	kill(z.p.pid, SIGHUP);
	cr_assert(proc_wait_for(&z.p, "SIGHUP: reloaded 1 tokens from"), "%s",
	    z.p.text);
	cr_assert_eq(clear_cache(c, NEW_TOKEN), ZRPC_OK, "new token works");
	cr_assert_eq(lookup_cache(c, READ_TOKEN), ZRPC_UNAUTHENTICATED,
	    "the old one is gone");

	write_tokens(&z, WRITE_TOKEN " write\n" ADMIN_TOKEN " sudo\n", 0600);
	kill(z.p.pid, SIGHUP);
	cr_assert(proc_wait_for(&z.p, "keeping the previous tokens"), "%s",
	    z.p.text);
	cr_assert(strstr(z.p.text, "tokens:2:") != NULL, "names the line:\n%s",
	    z.p.text);
	cr_assert_eq(clear_cache(c, NEW_TOKEN), ZRPC_OK, "kept");
	cr_assert_eq(start_session(c, WRITE_TOKEN), ZRPC_UNAUTHENTICATED);

	write_tokens(&z, WRITE_TOKEN " write\n", 0644);
	kill(z.p.pid, SIGHUP);
	cr_assert(proc_wait_for(&z.p, "group or others"), "%s", z.p.text);
	cr_assert_eq(clear_cache(c, NEW_TOKEN), ZRPC_OK, "kept");
	zrpc_client_close(c);
	stop_zosd(&z);
}

/* Starts zosd with ARGS after the program and waits for it to exit. */
static int
run_zosd(struct proc *p, const char **args)
{
	char  *argv[16];
	size_t n = 0;

	argv[n++] = (char *) env_path("ZOSD");
	for (; *args != NULL && n < 15; args++) {
		argv[n++] = (char *) *args;
	}
	argv[n] = NULL;
	tracked_start(p, argv);
	return tracked_wait(p);
}

Test(auth_zosd, a_bad_tokens_file_stops_start_up_naming_file_and_line)
{
	struct zosd z = { 0 };
	struct proc p;
	char        want[160];
	const char *args[] = { "--in-memory", "--listen", "tcp://127.0.0.1:0",
		"--metrics-listen", "off", "--auth-tokens", NULL, NULL };

	write_tokens(&z, READ_TOKEN " read\n\n" ADMIN_TOKEN "\n", 0600);
	args[6] = z.tokens;
	cr_assert_eq(run_zosd(&p, args), 1, "%s", p.text);
	snprintf(want, sizeof(want), "%s:3:", z.tokens);
	cr_assert(strstr(p.text, want) != NULL, "%s", p.text);
	cr_assert_null(strstr(p.text, ADMIN_TOKEN), "%s", p.text);
	cr_assert_null(strstr(p.text, "listening on"), "%s", p.text);

	write_tokens(&z, good_tokens, 0640);
	cr_assert_eq(run_zosd(&p, args), 1, "%s", p.text);
	cr_assert(strstr(p.text, z.tokens) != NULL, "%s", p.text);
	cr_assert(strstr(p.text, "group or others") != NULL, "%s", p.text);
	cr_assert_eq(test_tmpdir_remove(z.dir), 0);
}

Test(auth_zosd, without_tokens_a_non_loopback_listener_is_refused)
{
	struct proc p;
	const char *any[]  = { "--in-memory", "--listen", "tcp://0.0.0.0:0",
		 "--metrics-listen", "off", NULL };
	const char *star[] = { "--in-memory", "--listen", "ws://*:0/zos",
		"--metrics-listen", "off", NULL };

	cr_assert_eq(run_zosd(&p, any), 2, "%s", p.text);
	cr_assert(strstr(p.text, "tcp://0.0.0.0:0") != NULL, "%s", p.text);
	cr_assert(
	    strstr(p.text, "--allow-unauthenticated") != NULL, "%s", p.text);
	cr_assert_eq(run_zosd(&p, star), 2, "%s", p.text);
	cr_assert(strstr(p.text, "ws://*:0/zos") != NULL, "%s", p.text);
}

Test(auth_zosd, allow_unauthenticated_starts_with_a_warning)
{
	struct proc  p;
	char         url[256], local[300];
	zrpc_client *c;
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		"tcp://0.0.0.0:0", "--allow-unauthenticated", "--log-format",
		"text", "--metrics-listen", "off", NULL };

	tracked_start(&p, argv);
	cr_assert(proc_wait_for(&p, "listening on"), "%s", p.text);
	cr_assert(strstr(p.text,
	              "warn --allow-unauthenticated: "
	              "tcp://0.0.0.0:0 is reachable") != NULL,
	    "%s", p.text);
	/* Every caller is admin: Cache/Clear with no token, over loopback. */
	proc_listen_url(&p, url, sizeof(url));
	cr_assert(strncmp(url, "tcp://0.0.0.0:", 14) == 0, "%s", url);
	snprintf(local, sizeof(local), "tcp://127.0.0.1:%s", url + 14);
	cr_assert_eq(zrpc_client_open(&c, local, NULL).code, ZRPC_OK);
	cr_assert_eq(clear_cache(c, NULL), ZRPC_OK);
	zrpc_client_close(c);
	kill(p.pid, SIGTERM);
	cr_assert_eq(tracked_wait(&p), 0, "%s", p.text);
}

/* zosctl ARGS... against URL; returns its exit status, output in P. */
static int
run_zosctl(struct proc *p, const char *url, const char *token, const char *a,
    const char *b, const char *c)
{
	char *argv[12];
	int   n = 0;

	argv[n++] = (char *) env_path("ZOSCTL");
	argv[n++] = "--url";
	argv[n++] = (char *) url;
	if (token != NULL) {
		argv[n++] = "--token";
		argv[n++] = (char *) token;
	}
	argv[n++] = (char *) a;
	argv[n++] = (char *) b;
	if (c != NULL) {
		argv[n++] = (char *) c;
	}
	argv[n] = NULL;
	tracked_start(p, argv);
	return tracked_wait(p);
}

Test(auth_zosd, zosctl_names_a_denial_by_its_code)
{
	struct zosd z = { 0 };
	struct proc p;

	write_tokens(&z, good_tokens, 0600);
	start_zosd(&z);
	/* zosctl's exit status is 64 + the code: 80 UNAUTHENTICATED. */
	cr_assert_eq(run_zosctl(&p, z.url, NULL, "skills", "get", NULL), 80,
	    "%s", p.text);
	cr_assert(strstr(p.text,
	              "UNAUTHENTICATED: /zos.v1.Skills/Get needs a "
	              "token") != NULL,
	    "%s", p.text);
	cr_assert_eq(
	    run_zosctl(&p, z.url, READ_TOKEN, "session", "start", "p1"), 71,
	    "%s", p.text);
	cr_assert(strstr(p.text,
	              "PERMISSION_DENIED: /zos.v1.Session/Start "
	              "needs role write; the token has role "
	              "read") != NULL,
	    "%s", p.text);
	cr_assert_eq(
	    run_zosctl(&p, z.url, WRITE_TOKEN, "session", "start", "p1"), 0,
	    "%s", p.text);
	stop_zosd(&z);
}
