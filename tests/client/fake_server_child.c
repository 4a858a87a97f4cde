/*
 * The fake server (fake_server.c) as a program, for tests that kill a
 * server's process: `fake-server-child URL RUN_LOG`. It serves URL with 8
 * workers, logs every Gate call to RUN_LOG (opts.run_log) before it waits,
 * prints "listening on URL" and then waits to be killed. It exits by
 * itself after CHILD_LIFETIME_S, so that a test that dies before killing
 * it leaves nothing running for long.
 */
#include <stdio.h>
#include <time.h>

#include "fake_server.h"

#define CHILD_LIFETIME_S 120

int
main(int argc, char **argv)
{
	struct fake_server     *server = NULL;
	struct fake_server_opts opts   = { .workers = 8 };
	struct timespec         second = { .tv_sec = 1 };

	if (argc != 3) {
		fprintf(stderr, "usage: fake-server-child URL RUN_LOG\n");
		return 2;
	}
	opts.run_log = argv[2];
	if (fake_server_start(&server, argv[1], &opts) != 0) {
		fprintf(stderr, "fake-server-child: cannot listen on %s\n",
		    argv[1]);
		return 1;
	}
	printf("listening on %s\n", fake_server_url(server));
	fflush(stdout);
	/* Not synchronisation: a bound on the life of a forgotten child. */
	for (int i = 0; i < CHILD_LIFETIME_S; i++) {
		nanosleep(&second, NULL);
	}
	fake_server_stop(server);
	return 0;
}
