/*
 * Child processes for integration tests: start a program with its stdout
 * and stderr on one pipe, wait (bounded) for a line in its output, and
 * reap it. Failures abort the test (cr_assert).
 */
#ifndef ZOS_TEST_PROC_H
#define ZOS_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct proc {
	pid_t  pid;
	int    out; /* read end of stdout+stderr */
	char   text[16384];
	size_t len;
};

/* The value of environment variable NAME, which meson sets. */
const char *env_path(const char *name);

/* Starts ARGV (ARGV[0] a path) with stdout and stderr on one pipe. */
void proc_start(struct proc *p, char *const argv[]);

/* Reads output until NEEDLE appears (true) or EOF / 10 s pass (false). */
bool proc_wait_for(struct proc *p, const char *needle);

/* Waits for exit (at most 10 s, then SIGKILL and a failed assertion);
 * returns the exit status, or -signal. Reads the rest of the output. */
int proc_wait(struct proc *p);

/* Kills P with SIGKILL and reaps it. */
void proc_kill9(struct proc *p);

/*
 * Kills (SIGKILL) and reaps every child proc_start started that was not
 * reaped yet: a suite's .fini, for what a failed assertion left running.
 */
void proc_kill_left(void);

/* Pulls the URL out of the first "listening on <url>" line. */
void proc_listen_url(const struct proc *p, char *url, size_t len);

#endif /* ZOS_TEST_PROC_H */
