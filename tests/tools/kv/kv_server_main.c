/*
 * kv-server URL [--no-reflection]: the tests' kv.v1.Store server
 * (kv_server.h) as a program, until SIGINT or SIGTERM. It prints
 * "kv-server: listening on URL" when ready. For trying the tools by hand
 * and for tests that want the server in a process of its own.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kv_server.h"

int
main(int argc, char **argv)
{
	struct kv_server_opts opts = { 0 };
	struct kv_server     *kv   = NULL;
	const char           *url  = NULL;
	sigset_t              signals;
	zrpc_status           status;
	int                   sig;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-reflection") == 0) {
			opts.no_reflection = true;
		} else if (url == NULL && argv[i][0] != '-') {
			url = argv[i];
		} else {
			url = NULL;
			break;
		}
	}
	if (url == NULL) {
		fprintf(stderr, "usage: kv-server URL [--no-reflection]\n");
		return 2;
	}
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	status = kv_server_start(&kv, url, &opts);
	if (status.code != ZRPC_OK) {
		fprintf(stderr, "kv-server: %s: %s\n",
		    zrpc_status_name(status.code), status.message);
		return 1;
	}
	fprintf(stderr, "kv-server: listening on %s\n", kv_server_url(kv));
	if (sigwait(&signals, &sig) != 0) {
		sig = SIGTERM;
	}
	kv_server_stop(kv);
	return 0;
}
