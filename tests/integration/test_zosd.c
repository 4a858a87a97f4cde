/*
 * zosd as a program: its ready line, exit codes, SIGTERM drain, and the
 * probe script against a live server. Every zosd a test starts is stopped
 * (SIGTERM, then SIGKILL if it hangs) by the test. The metrics endpoint is
 * off here (tests/metrics has its own suites): on its default port, zosd
 * processes of suites running side by side would take it from each other.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/v1/health.zrpc.h"

static void
start_zosd(struct proc *p, const char *listen)
{
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		(char *) listen, "--log-format", "text", "--shutdown-grace-ms",
		"2000", "--metrics-listen", "off", NULL };

	proc_start(p, argv);
	cr_assert(
	    proc_wait_for(p, "listening on"), "ready line:\n%s", p->text);
}

static void
stop_zosd(struct proc *p)
{
	kill(p->pid, SIGTERM);
	cr_assert_eq(
	    proc_wait(p), 0, "clean exit after SIGTERM:\n%s", p->text);
}

/* A failed assertion ends a test before its stops: reap what it left. */
TestSuite(zosd, .fini = proc_kill_left);

Test(zosd, ready_line_then_health_then_sigterm_exits_zero)
{
	struct proc                  p;
	char                         url[256];
	zrpc_client                 *client;
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	zrpc_status                    status;

	start_zosd(&p, "tcp://127.0.0.1:0");
	proc_listen_url(&p, url, sizeof(url));
	cr_assert(strncmp(url, "tcp://127.0.0.1:", 16) == 0, "%s", url);
	cr_assert_neq(strcmp(url, "tcp://127.0.0.1:0"), 0, "port resolved");

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	status = zrpc_v1_health_check(
	    client, &req, &reply, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_eq(reply->status,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	zrpc_client_close(client);

	stop_zosd(&p);
	cr_assert(strstr(p.text, "received SIGTERM") != NULL, "%s", p.text);
	cr_assert(strstr(p.text, "stopped") != NULL, "%s", p.text);
}

Test(zosd, ready_line_is_written_at_any_log_level)
{
	struct proc p;
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		"tcp://127.0.0.1:0", "--log-level", "error",
		"--metrics-listen", "off", NULL };

	proc_start(&p, argv);
	cr_assert(proc_wait_for(&p, "listening on"), "%s", p.text);
	kill(p.pid, SIGTERM);
	cr_assert_eq(proc_wait(&p), 0, "%s", p.text);
	cr_assert_null(strstr(p.text, "received SIGTERM"), "info is filtered");
}

Test(zosd, sigint_also_drains_and_exits_zero)
{
	struct proc p;
	char        sock[128], url[160];

	snprintf(sock, sizeof(sock), "/tmp/zosd-test-%d.sock", (int) getpid());
	snprintf(url, sizeof(url), "ipc://%s", sock);
	start_zosd(&p, url);
	kill(p.pid, SIGINT);
	cr_assert_eq(proc_wait(&p), 0, "%s", p.text);
	cr_assert(strstr(p.text, "received SIGINT") != NULL, "%s", p.text);
	unlink(sock);
}

Test(zosd, address_in_use_exits_one_with_a_clear_message)
{
	struct proc first, second;
	char        url[256];

	start_zosd(&first, "tcp://127.0.0.1:0");
	proc_listen_url(&first, url, sizeof(url));
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		url, "--metrics-listen", "off", NULL };
	proc_start(&second, argv);
	cr_assert_eq(proc_wait(&second), 1, "%s", second.text);
	cr_assert(strstr(second.text, "address already in use") != NULL, "%s",
	    second.text);
	cr_assert(strstr(second.text, url) != NULL, "names the address");
	stop_zosd(&first);
}

Test(zosd, bad_flags_print_usage_and_exit_two)
{
	struct proc p;
	char       *argv[] = { (char *) env_path("ZOSD"), "--workers", "none",
		      NULL };

	proc_start(&p, argv);
	cr_assert_eq(proc_wait(&p), 2);
	cr_assert(strstr(p.text, "--workers") != NULL, "%s", p.text);
	cr_assert(strstr(p.text, "usage: zosd") != NULL, "%s", p.text);
}

Test(zosd, help_and_version_exit_zero)
{
	struct proc p;
	char       *help[] = { (char *) env_path("ZOSD"), "--help", NULL };
	char *version[]    = { (char *) env_path("ZOSD"), "--version", NULL };

	proc_start(&p, help);
	cr_assert_eq(proc_wait(&p), 0);
	cr_assert(strstr(p.text, "--listen URL") != NULL, "%s", p.text);
	proc_start(&p, version);
	cr_assert_eq(proc_wait(&p), 0);
	cr_assert(strncmp(p.text, "zosd ", 5) == 0, "%s", p.text);
}

Test(zosd, json_logs_are_one_object_per_line)
{
	struct proc p;
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		"tcp://127.0.0.1:0", "--log-format", "json",
		"--metrics-listen", "off", NULL };

	proc_start(&p, argv);
	cr_assert(proc_wait_for(&p, "listening on"));
	kill(p.pid, SIGTERM);
	cr_assert_eq(proc_wait(&p), 0);
	for (char *line = strtok(p.text, "\n"); line != NULL;
	     line       = strtok(NULL, "\n")) {
		cr_assert_eq(line[0], '{', "%s", line);
		cr_assert_eq(line[strlen(line) - 1], '}', "%s", line);
		cr_assert(strstr(line, "\"level\":") != NULL, "%s", line);
	}
}

Test(zosd, probe_script_reports_serving_and_failure)
{
	struct proc z, probe;
	char        url[256];
	char        script[512];

	snprintf(script, sizeof(script), "%s/scripts/probe",
	    env_path("ZOS_SOURCE_ROOT"));
	start_zosd(&z, "tcp://127.0.0.1:0");
	proc_listen_url(&z, url, sizeof(url));

	char *ok[] = { script, url, NULL };
	proc_start(&probe, ok);
	cr_assert_eq(proc_wait(&probe), 0, "%s", probe.text);
	cr_assert(strstr(probe.text, "SERVING") != NULL, "%s", probe.text);
	stop_zosd(&z);

	/* Same address, nobody there now. */
	char *down[] = { script, url, NULL };
	proc_start(&probe, down);
	cr_assert_eq(proc_wait(&probe), 1, "%s", probe.text);
	cr_assert_null(strstr(probe.text, "\nSERVING"), "%s", probe.text);
}

Test(zosd, serves_the_zos_services)
{
	struct proc               p;
	char                      url[256];
	zrpc_client              *client;
	Zos__V1__GetSkillsRequest req = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	zrpc_status               st;

	start_zosd(&p, "tcp://127.0.0.1:0");
	proc_listen_url(&p, url, sizeof(url));
	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	st = zos_v1_skills_get(
	    client, &req, &v, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(v->n_skills, 6);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	zrpc_client_close(client);
	stop_zosd(&p);
}

Test(zosd, a_bad_skills_file_is_reported_with_its_path_and_exit_one)
{
	struct proc p;
	char        path[] = "/tmp/zosd-skills-XXXXXX";
	int         fd     = mkstemp(path);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "induction 2\n", 12), 12);
	close(fd);
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		"tcp://127.0.0.1:0", "--skills-file", path, NULL };
	proc_start(&p, argv);
	cr_assert_eq(proc_wait(&p), 1, "%s", p.text);
	cr_assert(strstr(p.text, path) != NULL, "%s", p.text);
	cr_assert(strstr(p.text, "line 1") != NULL, "%s", p.text);
	unlink(path);
}

/* A health call on URL; asserts it is answered SERVING. */
static void
assert_serving(const char *url)
{
	zrpc_client                 *client;
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	zrpc_status                    status;

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	status = zrpc_v1_health_check(
	    client, &req, &reply, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(status.code, ZRPC_OK, "%s", status.message);
	cr_assert_eq(reply->status,
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
	zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	zrpc_client_close(client);
}

/* Milliseconds on the monotonic clock. */
static long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

Test(zosd, hup_usr1_usr2_alrm_io_pwr_are_logged_and_leave_it_serving)
{
	static const struct {
		int         sig;
		const char *line;
	} signals[] = {
		{ SIGHUP, "SIGHUP: no --routing-file to reload" },
		{ SIGUSR1, "received SIGUSR1; ignored" },
		{ SIGUSR2, "received SIGUSR2; ignored" },
		{ SIGALRM, "received SIGALRM; ignored" },
		{ SIGIO, "received SIGIO; ignored" },
		{ SIGPWR, "received SIGPWR; ignored" },
		/* Ignored without a word; serving afterwards is the test. */
		{ SIGPIPE, NULL },
		{ SIGXFSZ, NULL },
	};
	struct proc p;
	char        url[256];

	start_zosd(&p, "tcp://127.0.0.1:0");
	proc_listen_url(&p, url, sizeof(url));
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		kill(p.pid, signals[i].sig);
		if (signals[i].line != NULL) {
			cr_assert(
			    proc_wait_for(&p, signals[i].line), "%s", p.text);
		}
		assert_serving(url);
	}
	stop_zosd(&p);
}

/* A FIFO as the skills file: zosd blocks opening it, in start-up, until
 * a writer comes, which none does. */
Test(zosd, sigterm_during_start_up_exits_at_once_with_143)
{
	struct proc p;
	char        fifo[128];
	long        sent;

	snprintf(fifo, sizeof(fifo), "/tmp/zosd-test-%d.fifo", (int) getpid());
	unlink(fifo);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		"tcp://127.0.0.1:0", "--skills-file", fifo, "--log-level",
		"debug", "--log-format", "text", "--metrics-listen", "off",
		NULL };
	proc_start(&p, argv);
	/* "starting" is logged once the signals are taken. */
	cr_assert(proc_wait_for(&p, "starting"), "%s", p.text);
	sent = now_ms();
	kill(p.pid, SIGTERM);
	cr_assert_eq(proc_wait(&p), 128 + SIGTERM, "%s", p.text);
	cr_assert_lt(now_ms() - sent, 2000, "promptly");
	cr_assert(strstr(p.text, "during start-up") != NULL, "%s", p.text);
	cr_assert_null(strstr(p.text, "listening on"), "%s", p.text);
	unlink(fifo);
}

/* Health on CLIENT: true when it is answered OK within 1 s. */
static bool
health_ok(zrpc_client *client)
{
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	zrpc_status                    st;

	st = zrpc_v1_health_check(
	    client, &req, &reply, &(zrpc_call_opts) { .timeout_ms = 1000 });
	if (reply != NULL) {
		zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	}
	return st.code == ZRPC_OK;
}

/*
 * zosd logs at warn only, so that the polls below do not fill the output
 * buffer with access-log lines.
 */
Test(zosd, second_sigterm_during_the_drain_exits_at_once)
{
	struct proc                  z, ctl;
	char                         url[256], id[64];
	zrpc_client                 *client;
	Zos__V1__StartSessionRequest start =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *s = NULL;
	zrpc_status            st;
	long                   deadline, sent;

	char *argv[] = { (char *) env_path("ZOSD"), "--in-memory", "--listen",
		"tcp://127.0.0.1:0", "--log-level", "warn", "--log-format",
		"text", "--shutdown-grace-ms", "60000", "--echo-delay-ms",
		"60000", "--metrics-listen", "off", NULL };
	proc_start(&z, argv);
	cr_assert(proc_wait_for(&z, "listening on"), "%s", z.text);
	proc_listen_url(&z, url, sizeof(url));

	cr_assert_eq(zrpc_client_open(&client, url, NULL).code, ZRPC_OK);
	start.problem_id = "p1";
	st               = zos_v1_session_start(
	                  client, &start, &s, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	snprintf(id, sizeof(id), "%s", s->id);
	zos__v1__proof_session__free_unpacked(s, NULL);

	/* A Complete on the session, held by the echo model's delay. */
	char *complete[] = { (char *) env_path("ZOSCTL"), "--url", url,
		"--timeout-ms", "60000", "complete", "--session", id, "hi",
		NULL };
	proc_start(&ctl, complete);

	/* It is in flight once the session is ANALYZING. */
	deadline = now_ms() + 10000;
	for (;;) {
		Zos__V1__GetSessionRequest get =
		    ZOS__V1__GET_SESSION_REQUEST__INIT;
		bool analyzing;

		get.id = id;
		st     = zos_v1_session_get(client, &get, &s,
		        &(zrpc_call_opts) { .timeout_ms = 5000 });
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
		analyzing = s->state == ZOS__V1__PROOF_STATE__ANALYZING;
		zos__v1__proof_session__free_unpacked(s, NULL);
		if (analyzing) {
			break;
		}
		cr_assert_lt(now_ms(), deadline, "the call never started");
	}

	/* The first SIGTERM is taken once new calls are refused: two
	 * pending ones would be one. */
	kill(z.pid, SIGTERM);
	deadline = now_ms() + 10000;
	while (health_ok(client)) {
		cr_assert_lt(now_ms(), deadline, "never began to drain");
	}
	zrpc_client_close(client);
	sent = now_ms();
	kill(z.pid, SIGTERM);
	cr_assert_eq(proc_wait(&z), 128 + SIGTERM, "%s", z.text);
	cr_assert_lt(now_ms() - sent, 2000, "at once, not after the grace");
	cr_assert(
	    strstr(z.text, "received SIGTERM again") != NULL, "%s", z.text);
	proc_wait(&ctl); /* its server is gone: it fails */
}
