/*
 * zos-model-backend as a program, reached the way zosd reaches it: through
 * the backend set (zos_backends_generate) over ipc:// in a fresh temporary
 * directory. Also its flags, exit codes and signals. Every process a test
 * starts is stopped by the test (SIGTERM, or SIGKILL if it hangs, or by
 * the suite's fini when an assertion ended the test early), and every wait
 * is bounded.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "zrpc/clock.h"

#define WAIT_MS 10000 /* longest any wait for a child may take */

extern char **environ;

enum { CAPTURE_STDOUT = 1, CAPTURE_STDERR = 2 };

struct proc {
	pid_t  pid;
	int    out; /* read end of the captured streams */
	char   text[16384];
	size_t len;
};

/*
 * What this test started and has not yet stopped: an assertion that fails
 * half way through ends the test early, and the suite's fini then kills
 * and reaps these children and removes the directories. Criterion runs
 * each test in its own process, so this file-scope record is per test.
 */
static struct {
	pid_t  pids[8];
	size_t n_pids;
	char   dirs[4][64];
	size_t n_dirs;
} started;

static void
started_forget_pid(pid_t pid)
{
	for (size_t i = 0; i < started.n_pids; i++) {
		if (started.pids[i] == pid) {
			started.pids[i] = started.pids[--started.n_pids];
			return;
		}
	}
}

static void
suite_cleanup(void)
{
	char socket[128];

	for (size_t i = 0; i < started.n_pids; i++) {
		kill(started.pids[i], SIGKILL);
		waitpid(started.pids[i], NULL, 0);
	}
	started.n_pids = 0;
	for (size_t i = 0; i < started.n_dirs; i++) {
		snprintf(
		    socket, sizeof(socket), "%s/model.sock", started.dirs[i]);
		unlink(socket);
		rmdir(started.dirs[i]);
	}
	started.n_dirs = 0;
}

TestSuite(model_backend, .fini = suite_cleanup);

static double
now_ms(void)
{
	return (double) zrpc_now_ns() / 1e6;
}

static char *
program(void)
{
	char *path = getenv("ZOS_MODEL_BACKEND");

	cr_assert_not_null(path, "ZOS_MODEL_BACKEND is set by meson");
	return path;
}

/* Starts ARGV with the streams in CAPTURE on one pipe, the rest on
 * /dev/null. */
static void
proc_start(struct proc *p, char *const argv[], int capture)
{
	posix_spawn_file_actions_t fa;
	int                        fds[2];

	memset(p, 0, sizeof(*p));
	cr_assert_eq(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	for (int fd = 1; fd <= 2; fd++) {
		if (capture & fd) {
			posix_spawn_file_actions_adddup2(&fa, fds[1], fd);
		} else {
			posix_spawn_file_actions_addopen(
			    &fa, fd, "/dev/null", O_WRONLY, 0);
		}
	}
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	cr_assert_eq(posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ),
	    0, "spawn %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	p->out = fds[0];
	cr_assert(started.n_pids < sizeof(started.pids) / sizeof(pid_t));
	started.pids[started.n_pids++] = p->pid;
}

/* Reads output until NEEDLE appears (true), or EOF, or WAIT_MS pass. */
static bool
proc_wait_for(struct proc *p, const char *needle)
{
	double deadline = now_ms() + WAIT_MS;

	for (;;) {
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };
		double        left;
		ssize_t       n;

		if (strstr(p->text, needle) != NULL) {
			return true;
		}
		left = deadline - now_ms();
		if (left <= 0 || poll(&pfd, 1, (int) left + 1) <= 0) {
			return false;
		}
		n = read(
		    p->out, p->text + p->len, sizeof(p->text) - 1 - p->len);
		if (n <= 0) {
			return false;
		}
		p->len += (size_t) n;
		p->text[p->len] = '\0';
	}
}

/* Waits for the exit (at most WAIT_MS, then SIGKILL and fail); returns
 * the exit status, or -signal. Reads the rest of the output first. */
static int
proc_wait(struct proc *p)
{
	struct pollfd pfd;
	int           status, pidfd, ready;

	proc_wait_for(p, "\x01never"); /* until EOF, bounded */
	close(p->out);
	pidfd = (int) syscall(SYS_pidfd_open, p->pid, 0);
	cr_assert(pidfd >= 0, "pidfd_open");
	pfd   = (struct pollfd) { .fd = pidfd, .events = POLLIN };
	ready = poll(&pfd, 1, WAIT_MS);
	close(pidfd);
	if (ready <= 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		started_forget_pid(p->pid);
		cr_assert(false, "no exit in %d ms:\n%s", WAIT_MS, p->text);
	}
	cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
	started_forget_pid(p->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/* A zos-model-backend on ipc:// in its own temporary directory. */
struct model_server {
	struct proc proc;
	char        dir[64];
	char        socket[128];
	char        url[160];
};

/* Starts the program with --listen URL and EXTRA flags (NULL-ended) and
 * waits for its ready line. */
static void
model_server_start(struct model_server *m, char *const extra[])
{
	char  *argv[16];
	size_t n = 0;

	strcpy(m->dir, "/tmp/zos-model-backend-XXXXXX");
	cr_assert_not_null(mkdtemp(m->dir));
	cr_assert(
	    started.n_dirs < sizeof(started.dirs) / sizeof(started.dirs[0]));
	strcpy(started.dirs[started.n_dirs++], m->dir);
	snprintf(m->socket, sizeof(m->socket), "%s/model.sock", m->dir);
	snprintf(m->url, sizeof(m->url), "ipc://%s", m->socket);
	argv[n++] = program();
	argv[n++] = "--listen";
	argv[n++] = m->url;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		cr_assert(n < 15);
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	proc_start(&m->proc, argv, CAPTURE_STDOUT | CAPTURE_STDERR);
	cr_assert(proc_wait_for(&m->proc, "listening on"), "ready line:\n%s",
	    m->proc.text);
	cr_assert(strstr(m->proc.text, m->url) != NULL, "%s", m->proc.text);
}

/* Sends SIG, expects exit 0, and removes the directory. */
static void
model_server_stop(struct model_server *m, int sig)
{
	kill(m->proc.pid, sig);
	cr_assert_eq(proc_wait(&m->proc), 0, "clean exit:\n%s", m->proc.text);
	unlink(m->socket); /* if nng left it */
	cr_assert_eq(rmdir(m->dir), 0, "%s", m->dir);
	for (size_t i = 0; i < started.n_dirs; i++) {
		if (strcmp(started.dirs[i], m->dir) == 0) {
			started.n_dirs--;
			memmove(started.dirs[i], started.dirs[started.n_dirs],
			    sizeof(started.dirs[i]));
			break;
		}
	}
}

static struct zos_backends *
backends_for(const char *url)
{
	const char *urls[] = { url };
	/* The model was just started: its first connect may be slow on a
	 * loaded machine, and is waited for rather than failed fast. */
	struct zos_backends_config config = {
		.urls               = urls,
		.n_urls             = 1,
		.connect_timeout_ms = 10000,
	};
	struct zos_backends *b = NULL;
	char                 error[256];

	cr_assert_eq(zos_backends_create(&config, &b, error, sizeof(error)), 0,
	    "%s", error);
	return b;
}

Test(model_backend, answers_generate_through_the_backend_set)
{
	struct model_server m;
	char                want[256], *text = NULL;
	zrpc_status         st;

	model_server_start(&m, NULL);
	struct zos_backends *b = backends_for(m.url);

	st = zos_backends_generate(b, m.url, "one two three", 2, 5000, &text);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	snprintf(want, sizeof(want), "[%s] one two", m.url);
	cr_assert_str_eq(text, want, "max_tokens keeps two words");
	free(text);
	st = zos_backends_generate(b, m.url, "one two three", 0, 5000, &text);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	snprintf(want, sizeof(want), "[%s] one two three", m.url);
	cr_assert_str_eq(text, want, "deterministic, all of it");
	free(text);
	zos_backends_destroy(b);
	model_server_stop(&m, SIGTERM);
	cr_assert(strstr(m.proc.text, "received SIGTERM") != NULL, "%s",
	    m.proc.text);
	cr_assert(strstr(m.proc.text, "stopped after 2 calls") != NULL, "%s",
	    m.proc.text);
}

#define TRACEPARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

Test(model_backend, each_call_logs_its_request_id_and_traceparent)
{
	struct model_server              m;
	char                            *text = NULL;
	zrpc_status                      st;
	const struct zos_backend_context traced = {
		.request_id  = "req-model-1",
		.traceparent = TRACEPARENT,
		.tracestate  = "zos=1",
	};
	const struct zos_backend_context forged = {
		.request_id = "evil\nzos-model-backend: generate request_id=x",
		.traceparent = "00-not-a-valid-one",
	};

	model_server_start(&m, NULL);
	struct zos_backends *b = backends_for(m.url);

	st = zos_backends_generate_for(
	    b, &traced, m.url, "hello", 0, 5000, &text);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	free(text);
	cr_assert(proc_wait_for(&m.proc,
	              "zos-model-backend: generate request_id=req-model-1 "
	              "traceparent=" TRACEPARENT "\n"),
	    "%s", m.proc.text);

	/* An invalid traceparent is not passed to the handler; a request
	 * id cannot forge a second line. */
	st = zos_backends_generate_for(
	    b, &forged, m.url, "hello", 0, 5000, &text);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	free(text);
	cr_assert(proc_wait_for(&m.proc,
	              "generate request_id=evil?zos-model-backend: generate "
	              "request_id=x traceparent=-\n"),
	    "%s", m.proc.text);
	zos_backends_destroy(b);
	model_server_stop(&m, SIGTERM);
}

Test(model_backend, quiet_logs_no_line_per_call)
{
	struct model_server m;
	char               *extra[] = { "--quiet", NULL };
	char               *text    = NULL;
	zrpc_status         st;

	model_server_start(&m, extra);
	struct zos_backends *b = backends_for(m.url);

	st = zos_backends_generate(b, m.url, "hello", 0, 5000, &text);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	free(text);
	zos_backends_destroy(b);
	model_server_stop(&m, SIGTERM);
	cr_assert(strstr(m.proc.text, "stopped after 1 calls") != NULL, "%s",
	    m.proc.text);
	cr_assert_null(
	    strstr(m.proc.text, "generate request_id="), "%s", m.proc.text);
}

Test(model_backend, prefix_replaces_the_model_name)
{
	struct model_server m;
	char               *extra[] = { "--prefix", "[tiny]", NULL };
	char               *text    = NULL;
	zrpc_status         st;

	model_server_start(&m, extra);
	struct zos_backends *b = backends_for(m.url);

	st = zos_backends_generate(b, m.url, "hello", 0, 5000, &text);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_str_eq(text, "[tiny] hello");
	free(text);
	zos_backends_destroy(b);
	model_server_stop(&m, SIGTERM);
}

Test(model_backend, fail_first_one_fails_the_first_call_then_answers)
{
	struct model_server m;
	char               *extra[] = { "--fail-first", "1", NULL };
	char               *text    = NULL;
	zrpc_status         st;

	model_server_start(&m, extra);
	struct zos_backends *b = backends_for(m.url);

	st = zos_backends_generate(b, m.url, "hi", 0, 5000, &text);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
	cr_assert_null(text);
	cr_assert(strstr(st.message, m.url) != NULL, "%s", st.message);
	cr_assert(
	    strstr(st.message, "simulated failure") != NULL, "%s", st.message);
	st = zos_backends_generate(b, m.url, "hi", 0, 5000, &text);
	cr_assert_eq(st.code, ZRPC_OK, "the retry succeeds: %s", st.message);
	free(text);
	zos_backends_destroy(b);
	model_server_stop(&m, SIGTERM);
}

Test(model_backend, fail_rate_one_fails_every_call)
{
	struct model_server m;
	char               *extra[] = { "--fail-rate", "1", NULL };
	char               *text    = NULL;

	model_server_start(&m, extra);
	struct zos_backends *b = backends_for(m.url);

	for (int i = 0; i < 5; i++) {
		zrpc_status st =
		    zos_backends_generate(b, m.url, "hi", 0, 5000, &text);

		cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
		cr_assert_null(text);
	}
	zos_backends_destroy(b);
	model_server_stop(&m, SIGTERM);
}

Test(model_backend, delay_past_the_deadline_fails_at_once)
{
	struct model_server m;
	char               *extra[] = { "--delay-ms", "20000", NULL };
	char               *text    = NULL;
	double              start, took;
	zrpc_status         st;

	model_server_start(&m, extra);
	struct zos_backends *b = backends_for(m.url);

	start = now_ms();
	st    = zos_backends_generate(b, m.url, "hi", 0, 3000, &text);
	took  = now_ms() - start;
	cr_assert_eq(st.code, ZRPC_DEADLINE_EXCEEDED, "%s", st.message);
	cr_assert_null(text);
	/* The server's own answer, not the client giving up. */
	cr_assert(strstr(st.message, "sooner than the 20000 ms delay") != NULL,
	    "%s", st.message);
	cr_assert(took < 3000.0, "took %.1f ms", took);
	zos_backends_destroy(b);
	model_server_stop(&m, SIGTERM);
}

Test(model_backend, delay_shorter_than_the_deadline_is_waited_out)
{
	struct model_server m;
	char               *extra[] = { "--delay-ms", "100", NULL };
	char               *text    = NULL;
	double              start, took;
	zrpc_status         st;

	model_server_start(&m, extra);
	struct zos_backends *b = backends_for(m.url);

	start = now_ms();
	st    = zos_backends_generate(b, m.url, "hi", 0, 5000, &text);
	took  = now_ms() - start;
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert(
	    took >= 99.0, "answered after %.1f ms of a 100 ms delay", took);
	free(text);
	zos_backends_destroy(b);
	model_server_stop(&m, SIGTERM);
}

Test(model_backend, sigint_also_stops_it_with_exit_zero)
{
	struct model_server m;

	model_server_start(&m, NULL);
	model_server_stop(&m, SIGINT);
	cr_assert(
	    strstr(m.proc.text, "received SIGINT") != NULL, "%s", m.proc.text);
}

Test(model_backend, address_in_use_exits_one_with_a_clear_message)
{
	struct model_server first;
	struct proc         second;

	model_server_start(&first, NULL);
	char *argv[] = { program(), "--listen", first.url, NULL };
	proc_start(&second, argv, CAPTURE_STDERR);
	cr_assert_eq(proc_wait(&second), 1, "%s", second.text);
	cr_assert(strstr(second.text, "address already in use") != NULL, "%s",
	    second.text);
	cr_assert(strstr(second.text, first.url) != NULL, "names the address");
	model_server_stop(&first, SIGTERM);
}

Test(model_backend, help_exits_zero_and_explains_every_flag)
{
	const char *flags[] = { "--listen URL", "--delay-ms N",
		"--fail-first N", "--fail-rate R", "--prefix TEXT", "--quiet",
		"--version", "--help" };
	char       *argv[]  = { program(), "--help", NULL };
	struct proc p;

	proc_start(&p, argv, CAPTURE_STDOUT);
	cr_assert_eq(proc_wait(&p), 0, "%s", p.text);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		cr_assert(strstr(p.text, flags[i]) != NULL, "%s in:\n%s",
		    flags[i], p.text);
	}
	cr_assert(strstr(p.text, "tcp://127.0.0.1:7500") != NULL, "default");
}

Test(model_backend, version_exits_zero)
{
	char       *argv[] = { program(), "--version", NULL };
	struct proc p;

	proc_start(&p, argv, CAPTURE_STDOUT);
	cr_assert_eq(proc_wait(&p), 0, "%s", p.text);
	cr_assert(
	    strncmp(p.text, "zos-model-backend ", 18) == 0, "%s", p.text);
}

Test(model_backend, bad_flags_print_usage_on_stderr_and_exit_two)
{
	char *const cases[][4] = {
		{ "--no-such-flag", NULL },
		{ "--delay-ms", "soon", NULL },
		{ "--fail-rate", "1.5", NULL },
		{ "--fail-first", "-1", NULL },
		{ "--delay-ms", NULL },
		{ "stray", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { program(), cases[i][0], cases[i][1], NULL };
		struct proc p;

		proc_start(&p, argv, CAPTURE_STDERR);
		cr_assert_eq(proc_wait(&p), 2, "%s: %s", cases[i][0], p.text);
		cr_assert(strstr(p.text, "usage: zos-model-backend") != NULL,
		    "%s: %s", cases[i][0], p.text);
		cr_assert(strstr(p.text, cases[i][0]) != NULL,
		    "names the flag: %s", p.text);
	}
}
