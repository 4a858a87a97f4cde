/*
 * Running a command-line tool from a test: see run_tool.h.
 *
 * posix_spawn with a pipe each for stdout and stderr (and stdin when
 * there is input), read with poll until both close, then the child's exit
 * through a pidfd, all against one deadline.
 */
#include "run_tool.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Bound of every wait, in milliseconds. */
#define WAIT_MS 10000

/* Milliseconds left until DEADLINE (CLOCK_MONOTONIC), at least 0. */
static int
run_ms_left(const struct timespec *deadline)
{
	struct timespec now;
	long            ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int) ms;
}

/*
 * Runs PROGRAM with the NULL-terminated ARGS, INPUT on its stdin (NULL:
 * /dev/null), and waits for it (at most 10 s, then SIGKILL and a failed
 * assertion). Fills *R.
 */
void
run_tool_argv(struct run *r, const char *program, const char *input,
    const char *const args[])
{
	const char                *argv[40];
	int                        out[2], err[2], in[2] = { -1, -1 }, n = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t          attr;
	sigset_t                   defaults;
	pid_t                      pid;
	struct timespec            deadline;
	struct pollfd              pfd[2];
	int                        status, pidfd;
	struct rusage              usage;

	memset(r, 0, sizeof(*r));
	argv[n++] = program;
	for (int i = 0; args[i] != NULL; i++) {
		cr_assert_lt(n, 39);
		argv[n++] = args[i];
	}
	argv[n] = NULL;

	cr_assert_eq(pipe(out), 0);
	cr_assert_eq(pipe(err), 0);
	posix_spawn_file_actions_init(&fa);
	if (input != NULL) {
		cr_assert_eq(pipe(in), 0);
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
		posix_spawn_file_actions_addclose(&fa, in[1]);
	} else {
		posix_spawn_file_actions_addopen(
		    &fa, 0, "/dev/null", O_RDONLY, 0);
	}
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	posix_spawn_file_actions_addclose(&fa, err[0]);
	/* The test ignores SIGPIPE (zosctl may exit before reading all of
	 * its input); zosctl itself gets the default. */
	posix_spawnattr_init(&attr);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(
	    posix_spawn(&pid, argv[0], &fa, &attr, (char **) argv, environ), 0,
	    "spawn %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(out[1]);
	close(err[1]);
	if (input != NULL) {
		size_t len = strlen(input), done = 0;

		close(in[0]);
		/* Inputs are far below the pipe's buffer: no reader needed. */
		cr_assert_lt(len, 32768);
		while (done < len) {
			ssize_t w = write(in[1], input + done, len - done);

			if (w <= 0) {
				break; /* zosctl is gone: it did not want it */
			}
			done += (size_t) w;
		}
		close(in[1]);
	}

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += WAIT_MS / 1000;
	pfd[0] = (struct pollfd) { .fd = out[0], .events = POLLIN };
	pfd[1] = (struct pollfd) { .fd = err[0], .events = POLLIN };
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		int ready = poll(pfd, 2, run_ms_left(&deadline));

		if (ready <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert(false, "zosctl did not finish in 10 s");
		}
		for (int i = 0; i < 2; i++) {
			char   *buf = i == 0 ? r->out : r->err;
			size_t *len = i == 0 ? &r->out_len : &r->err_len;
			size_t  cap = i == 0 ? sizeof(r->out) : sizeof(r->err);
			ssize_t got;

			if (pfd[i].fd < 0 || pfd[i].revents == 0) {
				continue;
			}
			got = read(pfd[i].fd, buf + *len, cap - 1 - *len);
			if (got <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				continue;
			}
			*len += (size_t) got;
			buf[*len] = '\0';
		}
	}
	pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
	cr_assert(pidfd >= 0, "pidfd_open");
	pfd[0] = (struct pollfd) { .fd = pidfd, .events = POLLIN };
	if (poll(pfd, 1, run_ms_left(&deadline)) <= 0) {
		kill(pid, SIGKILL);
	}
	close(pidfd);
	cr_assert_eq(wait4(pid, &status, 0, &usage), pid);
	r->max_rss_kb = usage.ru_maxrss;
	r->status =
	    WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

void
run_tool(struct run *r, const char *program, const char *input, ...)
{
	const char *args[36];
	int         n = 0;
	va_list     ap;

	va_start(ap, input);
	while ((args[n] = va_arg(ap, const char *)) != NULL) {
		cr_assert_lt(++n, 35);
	}
	va_end(ap);
	run_tool_argv(r, program, input, args);
}
