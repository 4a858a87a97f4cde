/*
 * Child processes for integration tests; see proc.h.
 */
#include "proc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/*
 * Children started and not yet reaped, so that a suite's fini can stop
 * what a failed assertion left running (proc_kill_left). Test code only:
 * one test runs at a time in a Criterion worker.
 */
#define PROC_LIVE_MAX 32
static pid_t proc_live[PROC_LIVE_MAX];

static void
proc_track(pid_t pid, pid_t replace)
{
	for (int i = 0; i < PROC_LIVE_MAX; i++) {
		if (proc_live[i] == replace) {
			proc_live[i] = pid;
			return;
		}
	}
}

void
proc_kill_left(void)
{
	for (int i = 0; i < PROC_LIVE_MAX; i++) {
		if (proc_live[i] > 0) {
			kill(proc_live[i], SIGKILL);
			waitpid(proc_live[i], NULL, 0);
			proc_live[i] = 0;
		}
	}
}

const char *
env_path(const char *name)
{
	const char *v = getenv(name);

	cr_assert_not_null(v, "%s is set by meson", name);
	return v;
}

/* Starts ARGV with stdout and stderr on one pipe. */
void
proc_start(struct proc *p, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	int                        fds[2];

	memset(p, 0, sizeof(*p));
	cr_assert_eq(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	cr_assert_eq(posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ),
	    0, "spawn %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	proc_track(p->pid, 0);
	close(fds[1]);
	p->out = fds[0];
}

/* Reads output until NEEDLE appears (true) or EOF / 10 s pass. */
bool
proc_wait_for(struct proc *p, const char *needle)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = { .fd = p->out, .events = POLLIN };
		ssize_t       n;

		if (strstr(p->text, needle) != NULL) {
			return true;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = 10000 -
		    ((now.tv_sec - start.tv_sec) * 1000 +
		        (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pfd, 1, (int) left) <= 0) {
			return false;
		}
		n = read(
		    p->out, p->text + p->len, sizeof(p->text) - 1 - p->len);
		if (n <= 0) {
			return strstr(p->text, needle) != NULL;
		}
		p->len += (size_t) n;
		p->text[p->len] = '\0';
	}
}

/* Waits for exit (at most 10 s, then SIGKILL); returns the exit status,
 * or -signal. Reads the rest of the output first. */
int
proc_wait(struct proc *p)
{
	struct pollfd pfd;
	int           status, pidfd, ready;

	proc_wait_for(p, "\x01never"); /* until EOF, at most 10 s */
	close(p->out);
	pidfd = (int) syscall(SYS_pidfd_open, p->pid, 0);
	cr_assert(pidfd >= 0, "pidfd_open");
	pfd   = (struct pollfd) { .fd = pidfd, .events = POLLIN };
	ready = poll(&pfd, 1, 10000);
	close(pidfd);
	if (ready <= 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		proc_track(0, p->pid);
		cr_assert(false, "process did not exit in 10 s:\n%s", p->text);
	}
	cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
	proc_track(0, p->pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/* Pulls the URL out of "listening on <url>". */
void
proc_listen_url(const struct proc *p, char *url, size_t len)
{
	const char *at = strstr(p->text, "listening on ");
	size_t      n  = 0;

	cr_assert_not_null(at);
	at += strlen("listening on ");
	while (at[n] != '\0' && at[n] != '"' && at[n] != '\n' && n + 1 < len) {
		n++;
	}
	memcpy(url, at, n);
	url[n] = '\0';
}

void
proc_kill9(struct proc *p)
{
	int status;

	kill(p->pid, SIGKILL);
	cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
	proc_track(0, p->pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "killed by SIGKILL");
	close(p->out);
}
