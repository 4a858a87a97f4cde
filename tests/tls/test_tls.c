/*
 * TLS: the zrpc server's listeners (certificate, key, client CA, TLS 1.2
 * floor, ipc socket mode), the client's verification (a CA file or the
 * system store, never none; a client certificate), zosd's flags, and the
 * tools' (zosctl, zos-load, scripts/probe with nngcat --cacert).
 *
 * Each test makes fresh certificates with openssl (tests/tls/make-certs)
 * in its own temporary directory, removed by the suite's .fini along with
 * any zosd a failed assertion left running. mbedTLS 2.28 checks DNS names,
 * not IP addresses, so servers listen and clients dial on localhost. A
 * refused handshake shows as a call that fails with UNAVAILABLE once the
 * client's short connect timeout passes; each such test also shows the
 * same call succeeding when the one thing at fault is put right.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"
#include "tmpdir.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/server.h"
#include "zrpc/v1/health.zrpc.h"

/* How long a client waits for a connection that a refused handshake
 * never gives it. */
#define TLS_REFUSED_MS 1500u
/* How long a call that should succeed may take, handshake included. */
#define TLS_SERVED_MS 10000u

/* Paths in the test are short: the directory and a file name. */
#define TLS_PATH_MAX 256

static char tls_dir[64]; /* /tmp/zos-tls-XXXXXX */

/* The path of file NAME in the certificate directory (a ring of
 * buffers, so a few can be used at once). */
static const char *
tls_file(const char *name)
{
	static char ring[8][TLS_PATH_MAX];
	static int  next;
	char       *p = ring[next++ % 8];

	snprintf(p, TLS_PATH_MAX, "%s/%s", tls_dir, name);
	return p;
}

static void
tls_setup(void)
{
	char        script[TLS_PATH_MAX];
	struct proc p;

	snprintf(tls_dir, sizeof(tls_dir), "/tmp/zos-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(tls_dir));
	snprintf(script, sizeof(script), "%s/tests/tls/make-certs",
	    env_path("ZOS_SOURCE_ROOT"));
	char *argv[] = { script, tls_dir, NULL };
	proc_start(&p, argv);
	cr_assert_eq(proc_wait(&p), 0, "make-certs:\n%s", p.text);
}

static void
tls_teardown(void)
{
	proc_kill_left();
	test_tmpdir_remove(tls_dir);
}

TestSuite(tls, .init = tls_setup, .fini = tls_teardown);

/* ---- an in-process zrpc server (only the built-in services) ---- */

/* Starts a server listening on URL (tls+tcp://localhost:0 when NULL)
 * with CONFIG; returns the listen status, and the bound URL in OUT_URL. */
static zrpc_status
tls_server_start(zrpc_server **server, const zrpc_server_config *config,
    const char *url, char *out_url, size_t len)
{
	zrpc_status status;

	status = zrpc_server_create(server, config);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	status = zrpc_server_listen(
	    *server, url != NULL ? url : "tls+tcp://localhost:0");
	if (status.code != ZRPC_OK) {
		return status;
	}
	snprintf(out_url, len, "%s", zrpc_server_listener_url(*server, 0));
	status = zrpc_server_start(*server);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	return status;
}

/* A TLS server with certificate NAME.crt/NAME.key and CLIENT_CA (NULL:
 * no client certificates). */
static zrpc_server *
tls_server(const char *name, const char *client_ca, char *url, size_t len)
{
	char               cert[TLS_PATH_MAX], key[TLS_PATH_MAX];
	zrpc_server       *server;
	zrpc_server_config config = { .workers = 2 };
	zrpc_status        status;

	snprintf(cert, sizeof(cert), "%s/%s.crt", tls_dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", tls_dir, name);
	config.tls.cert_file      = cert;
	config.tls.key_file       = key;
	config.tls.client_ca_file = client_ca;
	status = tls_server_start(&server, &config, NULL, url, len);
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert(strncmp(url, "tls+tcp://localhost:", 20) == 0, "%s", url);
	return server;
}

/*
 * One Health/Check through a client opened on URL with OPTS, which must
 * end with EXPECT. A refusal is waited for TLS_REFUSED_MS; a success gets
 * TLS_SERVED_MS, as a loaded machine (sanitizers, other suites) can make
 * a handshake slow.
 */
static void
tls_expect(const char *url, zrpc_client_opts opts, zrpc_code expect)
{
	zrpc_client                 *client;
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	zrpc_status                    status;
	uint32_t wait = expect == ZRPC_OK ? TLS_SERVED_MS : TLS_REFUSED_MS;

	opts.connect_timeout_ms = wait;
	status                  = zrpc_client_open(&client, url, &opts);
	cr_assert_eq(status.code, ZRPC_OK, "open: %s", status.message);
	status = zrpc_v1_health_check(
	    client, &req, &reply, &(zrpc_call_opts) { .timeout_ms = wait });
	cr_assert_eq(status.code, expect, "%s: %s (expected %s)", url,
	    status.message, zrpc_status_name(expect));
	if (status.code == ZRPC_OK) {
		cr_assert_eq(reply->status,
		    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
		zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	} else {
		cr_assert_null(reply);
	}
	zrpc_client_close(client);
}

Test(tls, the_client_calls_a_tls_server_its_ca_file_trusts)
{
	char         url[256];
	zrpc_server *server = tls_server("server", NULL, url, sizeof(url));

	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") }, ZRPC_OK);
	zrpc_server_destroy(server);
}

Test(tls, a_server_certificate_from_another_ca_is_refused)
{
	char         url[256];
	zrpc_server *server = tls_server("server", NULL, url, sizeof(url));

	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("other-ca.crt") },
	    ZRPC_UNAVAILABLE);
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") }, ZRPC_OK);
	zrpc_server_destroy(server);
}

Test(tls, an_expired_server_certificate_is_refused)
{
	char         url[256], good_url[256];
	zrpc_server *expired = tls_server("expired", NULL, url, sizeof(url));
	zrpc_server *good =
	    tls_server("server", NULL, good_url, sizeof(good_url));

	/* Same CA, same name: only the dates differ. */
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") },
	    ZRPC_UNAVAILABLE);
	tls_expect(good_url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") }, ZRPC_OK);
	zrpc_server_destroy(expired);
	zrpc_server_destroy(good);
}

Test(tls, a_certificate_for_another_name_is_refused)
{
	char         url[256];
	zrpc_server *server = tls_server("server", NULL, url, sizeof(url));

	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt"),
	        .tls_server_name              = "zos.example" },
	    ZRPC_UNAVAILABLE);
	zrpc_server_destroy(server);
}

Test(tls, mtls_serves_a_client_certificate_from_the_client_ca)
{
	char         url[256];
	zrpc_server *server =
	    tls_server("server", tls_file("ca.crt"), url, sizeof(url));

	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt"),
	        .tls_cert_file                = tls_file("client.crt"),
	        .tls_key_file                 = tls_file("client.key") },
	    ZRPC_OK);
	zrpc_server_destroy(server);
}

Test(tls, mtls_refuses_a_client_without_a_certificate_or_with_a_stranger)
{
	char         url[256];
	zrpc_server *server =
	    tls_server("server", tls_file("ca.crt"), url, sizeof(url));

	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") },
	    ZRPC_UNAVAILABLE);
	/* A certificate the client CA did not sign. */
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt"),
	        .tls_cert_file                = tls_file("other-server.crt"),
	        .tls_key_file                 = tls_file("other-server.key") },
	    ZRPC_UNAVAILABLE);
	zrpc_server_destroy(server);
}

Test(tls, without_a_ca_file_the_client_verifies_with_the_system_store)
{
	char         url[256];
	zrpc_server *server = tls_server("self", NULL, url, sizeof(url));

	/* The system store knows no self-signed test server: refused, not
	 * let through unverified. */
	cr_assert_eq(unsetenv("SSL_CERT_FILE"), 0);
	tls_expect(url, (zrpc_client_opts) { 0 }, ZRPC_UNAVAILABLE);
	/* It is the store that decides: one that holds the certificate
	 * trusts it. */
	cr_assert_eq(setenv("SSL_CERT_FILE", tls_file("self.crt"), 1), 0);
	tls_expect(url, (zrpc_client_opts) { 0 }, ZRPC_OK);
	zrpc_server_destroy(server);
}

Test(tls, a_missing_system_store_fails_the_open_with_its_name)
{
	zrpc_client *client = NULL;
	zrpc_status  status;

	cr_assert_eq(setenv("SSL_CERT_FILE", "/nonexistent/ca.pem", 1), 0);
	status = zrpc_client_open(&client, "tls+tcp://localhost:1", NULL);
	cr_assert_neq(status.code, ZRPC_OK);
	cr_assert_null(client);
	cr_assert(strstr(status.message, "/nonexistent/ca.pem") != NULL, "%s",
	    status.message);
}

Test(tls, the_client_names_a_bad_ca_certificate_or_key_file)
{
	static const struct {
		const char *ca, *cert, *key, *named;
	} cases[] = {
		{ "missing.crt", NULL, NULL, "missing.crt" },
		{ "ca.key", NULL, NULL, "ca.key" },
		{ "ca.crt", "client.crt", "missing.key", "missing.key" },
		{ "ca.crt", "client.crt", "client.crt", "client.crt" },
		{ "ca.crt", "client.key", "client.key", "client.key" },
		{ "ca.crt", "client.crt", NULL, "key" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		zrpc_client     *client = NULL;
		zrpc_client_opts opts   = {
			  .tls_ca_file   = tls_file(cases[i].ca),
			  .tls_cert_file = cases[i].cert != NULL
			      ? tls_file(cases[i].cert)
			      : NULL,
			  .tls_key_file  = cases[i].key != NULL
			       ? tls_file(cases[i].key)
			       : NULL,
		};
		zrpc_status status =
		    zrpc_client_open(&client, "tls+tcp://localhost:1", &opts);

		cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT,
		    "case %zu: %s", i, status.message);
		cr_assert_null(client);
		cr_assert(strstr(status.message, cases[i].named) != NULL,
		    "case %zu: %s", i, status.message);
	}
}

Test(tls, a_tls_listener_without_a_certificate_is_invalid_argument)
{
	const char *urls[] = { "tls+tcp://localhost:0",
		"wss://localhost:0/z" };

	for (size_t i = 0; i < 2; i++) {
		zrpc_server *server;
		char         url[256];
		zrpc_status  status =
		    tls_server_start(&server, NULL, urls[i], url, sizeof(url));

		cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT, "%s: %s",
		    urls[i], status.message);
		cr_assert(strstr(status.message, "certificate") != NULL, "%s",
		    status.message);
		cr_assert_null(zrpc_server_listener_url(server, 0));
		zrpc_server_destroy(server);
	}
}

Test(tls, the_server_names_a_bad_certificate_key_or_client_ca_file)
{
	static const struct {
		const char *cert, *key, *client_ca, *named;
	} cases[] = {
		{ "missing.crt", "server.key", NULL, "missing.crt" },
		{ "server.crt", "missing.key", NULL, "missing.key" },
		{ "server.key", "server.key", NULL, "server.key" },
		{ "server.crt", "server.crt", NULL, "server.crt" },
		{ "server.crt", "server.key", "missing-ca.crt",
		    "missing-ca.crt" },
		{ "server.crt", "server.key", "server.key", "server.key" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		zrpc_server *server;
		char         url[256];
		zrpc_server_config config = {
			.tls = {
			    .cert_file = tls_file(cases[i].cert),
			    .key_file  = tls_file(cases[i].key),
			    .client_ca_file = cases[i].client_ca != NULL
			        ? tls_file(cases[i].client_ca)
			        : NULL,
			},
		};
		zrpc_status status =
		    tls_server_start(&server, &config, NULL, url, sizeof(url));

		cr_assert_eq(status.code, ZRPC_INVALID_ARGUMENT,
		    "case %zu: %s", i, status.message);
		cr_assert(strstr(status.message, cases[i].named) != NULL,
		    "case %zu: %s", i, status.message);
		zrpc_server_destroy(server);
	}
}

Test(tls, a_wss_listener_serves_with_the_same_certificate)
{
	char               cert[TLS_PATH_MAX], key[TLS_PATH_MAX], url[256];
	zrpc_server       *server;
	zrpc_server_config config = { .workers = 2 };
	zrpc_status        status;

	snprintf(cert, sizeof(cert), "%s", tls_file("server.crt"));
	snprintf(key, sizeof(key), "%s", tls_file("server.key"));
	config.tls.cert_file = cert;
	config.tls.key_file  = key;
	status               = tls_server_start(
	                  &server, &config, "wss://localhost:0/zrpc", url, sizeof(url));
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("other-ca.crt") },
	    ZRPC_UNAVAILABLE);
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") }, ZRPC_OK);
	zrpc_server_destroy(server);
}

/* Runs COMMAND under sh with stdin from /dev/null; returns its status. */
static int
tls_sh(const char *command, struct proc *p)
{
	char *argv[] = { "/bin/sh", "-c", (char *) command, NULL };

	proc_start(p, argv);
	return proc_wait(p);
}

Test(tls, the_server_refuses_tls_1_1_and_accepts_1_2)
{
	char         url[256], command[1024];
	zrpc_server *server = tls_server("server", NULL, url, sizeof(url));
	const char  *port   = strrchr(url, ':') + 1;
	struct proc  p;

	/* SECLEVEL=0 lets openssl's client offer 1.1 at all, so that it is
	 * the server that says no. */
	snprintf(command, sizeof(command),
	    "openssl s_client -connect localhost:%s -CAfile %s -tls1_1 "
	    "-cipher DEFAULT@SECLEVEL=0 </dev/null",
	    port, tls_file("ca.crt"));
	cr_assert_neq(tls_sh(command, &p), 0, "%s", p.text);
	/* The server's alert, not a client that would not offer 1.1. */
	cr_assert(strstr(p.text, "alert protocol version") != NULL,
	    "the server refuses 1.1:\n%s", p.text);
	snprintf(command, sizeof(command),
	    "openssl s_client -connect localhost:%s -CAfile %s -tls1_2 "
	    "-verify_return_error </dev/null",
	    port, tls_file("ca.crt"));
	cr_assert_eq(tls_sh(command, &p), 0, "%s", p.text);
	cr_assert(strstr(p.text, "Protocol  : TLSv1.2") != NULL, "%s", p.text);
	cr_assert(strstr(p.text, "Verify return code: 0 (ok)") != NULL, "%s",
	    p.text);
	zrpc_server_destroy(server);
}

/* The mode bits of PATH's file. */
static unsigned
tls_file_mode(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	cr_assert(S_ISSOCK(st.st_mode), "%s is a socket", path);
	return (unsigned) (st.st_mode & 07777);
}

Test(tls, ipc_socket_files_are_0600_unless_the_config_says_otherwise)
{
	static const struct {
		unsigned config, expect;
	} cases[] = { { 0, 0600 }, { 0660, 0660 }, { 0666, 0666 } };

	for (size_t i = 0; i < 3; i++) {
		zrpc_server       *server;
		char               url[256], bound[256];
		zrpc_server_config config = { .ipc_permissions =
			                          cases[i].config };

		snprintf(url, sizeof(url), "ipc://%s/s%zu.sock", tls_dir, i);
		cr_assert_eq(tls_server_start(
		                 &server, &config, url, bound, sizeof(bound))
		                 .code,
		    ZRPC_OK);
		cr_assert_eq(tls_file_mode(url + 6), cases[i].expect,
		    "case %zu: %o", i, tls_file_mode(url + 6));
		zrpc_server_destroy(server);
	}
}

/* ---- zosd ---- */

/* Starts zosd with ARGS (NULL-terminated, after the common flags) and
 * waits for its ready line. */
static void
tls_zosd_start(struct proc *p, const char *const *args)
{
	char  *argv[32] = { (char *) env_path("ZOSD"), "--in-memory",
		 "--log-format", "text", "--metrics-listen", "off",
		 "--shutdown-grace-ms", "2000" };
	size_t n        = 8;

	while (*args != NULL && n < 31) {
		argv[n++] = (char *) *args++;
	}
	argv[n] = NULL;
	proc_start(p, argv);
	cr_assert(
	    proc_wait_for(p, "listening on"), "ready line:\n%s", p->text);
}

static void
tls_zosd_stop(struct proc *p)
{
	kill(p->pid, SIGTERM);
	cr_assert_eq(proc_wait(p), 0, "clean exit:\n%s", p->text);
}

/* zosd on tls+tcp://localhost:0 with the test server certificate. */
static void
tls_zosd_tls(struct proc *p, char *url, size_t len)
{
	const char *args[] = { "--listen", "tls+tcp://localhost:0",
		"--tls-cert", tls_file("server.crt"), "--tls-key",
		tls_file("server.key"), NULL };

	tls_zosd_start(p, args);
	proc_listen_url(p, url, len);
	cr_assert(strncmp(url, "tls+tcp://localhost:", 20) == 0, "%s", url);
}

Test(tls, zosd_serves_health_and_the_zos_services_over_tls)
{
	struct proc               p;
	char                      url[256];
	zrpc_client              *client;
	Zos__V1__GetSkillsRequest req = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	zrpc_status               st;

	tls_zosd_tls(&p, url, sizeof(url));
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") }, ZRPC_OK);
	st = zrpc_client_open(&client, url,
	    &(zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	st = zos_v1_skills_get(
	    client, &req, &v, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_gt(v->n_skills, 0);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	zrpc_client_close(client);
	/* And a client that does not trust it gets nothing. */
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("other-ca.crt") },
	    ZRPC_UNAVAILABLE);
	tls_zosd_stop(&p);
}

Test(tls, zosd_with_a_client_ca_requires_client_certificates)
{
	struct proc p;
	char        url[256];
	const char *args[] = { "--listen", "tls+tcp://localhost:0",
		"--tls-cert", tls_file("server.crt"), "--tls-key",
		tls_file("server.key"), "--tls-client-ca", tls_file("ca.crt"),
		NULL };

	tls_zosd_start(&p, args);
	proc_listen_url(&p, url, sizeof(url));
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt") },
	    ZRPC_UNAVAILABLE);
	tls_expect(url,
	    (zrpc_client_opts) { .tls_ca_file = tls_file("ca.crt"),
	        .tls_cert_file                = tls_file("client.crt"),
	        .tls_key_file                 = tls_file("client.key") },
	    ZRPC_OK);
	tls_zosd_stop(&p);
}

Test(tls, nngcat_with_cacert_gets_serving_from_zosd)
{
	struct proc z, probe;
	char        url[256], script[TLS_PATH_MAX];

	snprintf(script, sizeof(script), "%s/scripts/probe",
	    env_path("ZOS_SOURCE_ROOT"));
	tls_zosd_tls(&z, url, sizeof(url));

	/* scripts/probe --tls-ca F runs nngcat --cacert F. */
	char *show[] = { script, "--show", "--tls-ca",
		(char *) tls_file("ca.crt"), url, NULL };
	proc_start(&probe, show);
	cr_assert_eq(proc_wait(&probe), 0, "%s", probe.text);
	cr_assert(strstr(probe.text, "nngcat --req0") != NULL &&
	        strstr(probe.text, "--cacert") != NULL,
	    "%s", probe.text);

	char *ok[] = { script, "--tls-ca", (char *) tls_file("ca.crt"), url,
		NULL };
	proc_start(&probe, ok);
	cr_assert_eq(proc_wait(&probe), 0, "%s", probe.text);
	cr_assert(strstr(probe.text, "SERVING") != NULL, "%s", probe.text);

	char *wrong[] = { script, "--tls-ca",
		(char *) tls_file("other-ca.crt"), url, NULL };
	proc_start(&probe, wrong);
	cr_assert_eq(proc_wait(&probe), 1, "%s", probe.text);
	cr_assert_null(strstr(probe.text, "\nSERVING"), "%s", probe.text);
	tls_zosd_stop(&z);
}

Test(tls, zosctl_and_zos_load_take_tls_ca_cert_and_key)
{
	struct proc z, tool;
	char        url[256];
	const char *args[] = { "--listen", "tls+tcp://localhost:0",
		"--tls-cert", tls_file("server.crt"), "--tls-key",
		tls_file("server.key"), "--tls-client-ca", tls_file("ca.crt"),
		NULL };

	tls_zosd_start(&z, args);
	proc_listen_url(&z, url, sizeof(url));

	char *ctl_ok[] = { (char *) env_path("ZOSCTL"), "--url", url,
		"--tls-ca", (char *) tls_file("ca.crt"), "--cert",
		(char *) tls_file("client.crt"), "--key",
		(char *) tls_file("client.key"), "health", NULL };
	proc_start(&tool, ctl_ok);
	cr_assert_eq(proc_wait(&tool), 0, "%s", tool.text);
	cr_assert(strstr(tool.text, "SERVING") != NULL, "%s", tool.text);

	char *ctl_no_cert[] = { (char *) env_path("ZOSCTL"), "--url", url,
		"--timeout-ms", "1500", "--tls-ca",
		(char *) tls_file("ca.crt"), "health", NULL };
	proc_start(&tool, ctl_no_cert);
	cr_assert_eq(proc_wait(&tool), 78, "%s", tool.text); /* UNAVAILABLE */
	cr_assert(strstr(tool.text, "UNAVAILABLE") != NULL, "%s", tool.text);

	char *ctl_half[] = { (char *) env_path("ZOSCTL"), "--url", url,
		"--cert", (char *) tls_file("client.crt"), "health", NULL };
	proc_start(&tool, ctl_half);
	cr_assert_eq(proc_wait(&tool), 2, "%s", tool.text);
	cr_assert(strstr(tool.text, "--key") != NULL, "%s", tool.text);

	char *load_ok[] = { (char *) env_path("ZOS_LOAD"), "--url", url,
		"--tls-ca", (char *) tls_file("ca.crt"), "--cert",
		(char *) tls_file("client.crt"), "--key",
		(char *) tls_file("client.key"), "--method",
		"/zrpc.v1.Health/Check", "--concurrency", "2", "--requests",
		"20", NULL };
	proc_start(&tool, load_ok);
	cr_assert_eq(proc_wait(&tool), 0, "%s", tool.text);
	cr_assert(strstr(tool.text, "OK 20") != NULL, "%s", tool.text);

	char *load_half[] = { (char *) env_path("ZOS_LOAD"), "--url", url,
		"--key", (char *) tls_file("client.key"), "--method",
		"/zrpc.v1.Health/Check", "--concurrency", "1", "--requests",
		"1", NULL };
	proc_start(&tool, load_half);
	cr_assert_eq(proc_wait(&tool), 2, "%s", tool.text);
	tls_zosd_stop(&z);
}

Test(tls, zosd_exits_2_for_a_tls_listener_without_a_certificate)
{
	static const char *const cases[][8] = {
		{ "--listen", "tls+tcp://localhost:0", NULL },
		{ "--listen", "wss://localhost:0/z", NULL },
		{ "--listen", "tls+tcp://localhost:0", "--tls-cert", "c.pem",
		    NULL },
		{ "--tls-key", "k.pem", NULL },
		{ "--tls-client-ca", "ca.pem", NULL },
	};
	static const char *const messages[] = {
		"needs --tls-cert and --tls-key",
		"needs --tls-cert and --tls-key",
		"--tls-cert needs --tls-key",
		"--tls-key needs --tls-cert",
		"--tls-client-ca needs --tls-cert",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char  *argv[16] = { (char *) env_path("ZOSD"), "--in-memory",
			 "--metrics-listen", "off" };
		size_t n        = 4;
		struct proc p;

		for (size_t j = 0; cases[i][j] != NULL; j++) {
			argv[n++] = (char *) cases[i][j];
		}
		argv[n] = NULL;
		proc_start(&p, argv);
		cr_assert_eq(proc_wait(&p), 2, "case %zu:\n%s", i, p.text);
		cr_assert(strstr(p.text, messages[i]) != NULL, "case %zu:\n%s",
		    i, p.text);
		cr_assert(strstr(p.text, "usage: zosd") != NULL, "%s", p.text);
		cr_assert_null(strstr(p.text, "listening on"), "%s", p.text);
	}
}

Test(tls, zosd_exits_1_naming_a_bad_certificate_file)
{
	char       *argv[] = { (char *) env_path("ZOSD"), "--in-memory",
		      "--metrics-listen", "off", "--listen", "tls+tcp://localhost:0",
		      "--tls-cert", (char *) tls_file("missing.crt"), "--tls-key",
		      (char *) tls_file("server.key"), NULL };
	struct proc p;

	proc_start(&p, argv);
	cr_assert_eq(proc_wait(&p), 1, "%s", p.text);
	cr_assert(
	    strstr(p.text, tls_file("missing.crt")) != NULL, "%s", p.text);
	cr_assert_null(strstr(p.text, "listening on"), "%s", p.text);
}

Test(tls, zosd_warns_of_a_key_file_others_can_read)
{
	struct proc p;
	char        url[256];
	char        key[TLS_PATH_MAX];

	snprintf(key, sizeof(key), "%s", tls_file("server.key"));
	/* 0600 (as make-certs leaves it): no warning. */
	tls_zosd_tls(&p, url, sizeof(url));
	tls_zosd_stop(&p);
	cr_assert_null(
	    strstr(p.text, "accessible by group or others"), "%s", p.text);

	cr_assert_eq(chmod(key, 0644), 0);
	tls_zosd_tls(&p, url, sizeof(url));
	tls_zosd_stop(&p);
	cr_assert(strstr(p.text, "accessible by group or others") != NULL,
	    "%s", p.text);
	cr_assert(strstr(p.text, key) != NULL, "names the file:\n%s", p.text);
	cr_assert(strstr(p.text, "0644") != NULL, "%s", p.text);
}

Test(tls, zosd_ipc_socket_mode_is_0600_by_default_and_follows_the_flag)
{
	static const struct {
		const char *flag;
		unsigned    expect;
	} cases[] = { { NULL, 0600 }, { "0660", 0660 }, { "644", 0644 } };

	for (size_t i = 0; i < 3; i++) {
		struct proc p;
		char        url[TLS_PATH_MAX];
		const char *args[] = { "--listen", url, "--ipc-socket-mode",
			cases[i].flag, NULL };

		snprintf(
		    url, sizeof(url), "ipc://%s/zosd%zu.sock", tls_dir, i);
		if (cases[i].flag == NULL) {
			args[2] = NULL;
		}
		tls_zosd_start(&p, args);
		cr_assert_eq(tls_file_mode(url + 6), cases[i].expect,
		    "case %zu: %o", i, tls_file_mode(url + 6));
		tls_zosd_stop(&p);
	}

	char       *bad[] = { (char *) env_path("ZOSD"), "--in-memory",
		      "--metrics-listen", "off", "--ipc-socket-mode", "0800", NULL };
	struct proc p;
	proc_start(&p, bad);
	cr_assert_eq(proc_wait(&p), 2, "%s", p.text);
	cr_assert(strstr(p.text, "--ipc-socket-mode") != NULL, "%s", p.text);
}
