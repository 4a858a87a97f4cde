/*
 * Running a command-line tool from a test: its exit status, stdout and
 * stderr apart, stdin fed, every wait bounded (10 s, then SIGKILL and a
 * failed assertion). Shared by the tools' suites (zosctl-any; zos-load's
 * against the kv server).
 */
#ifndef ZOS_TESTS_RUN_TOOL_H
#define ZOS_TESTS_RUN_TOOL_H

#include <stddef.h>

/* One run of a tool: its exit status and what it wrote. */
struct run {
	int    status; /* exit status, or -signal */
	char   out[65536];
	size_t out_len;
	char   err[16384];
	size_t err_len;
	long   max_rss_kb; /* the child's peak resident set (ru_maxrss) */
};

/*
 * Runs PROGRAM with the NULL-terminated ARGS (at most 38), INPUT on its
 * stdin (NULL: /dev/null; under 32 KiB), in this process's environment,
 * and waits for it. Fills *R.
 */
void run_tool_argv(struct run *r, const char *program, const char *input,
    const char *const args[]);

/* run_tool_argv with the arguments listed after INPUT, up to a NULL. */
void run_tool(struct run *r, const char *program, const char *input, ...);

#endif /* ZOS_TESTS_RUN_TOOL_H */
