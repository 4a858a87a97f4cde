/*
 * zos-load: a load generator for zrpc servers, as ghz is for gRPC (see
 * README.md, "zos-load", and zos-load(1)).
 *
 * main only strings the modules together, in an order that matters:
 * flags.h reads the command line; SIGINT and SIGTERM are blocked before
 * nng starts a thread (payloads.h may connect, to ask the server for the
 * method's descriptors), so that every thread inherits the mask and only
 * the run's signalfd sees them; payloads.h finds the method and packs the
 * requests (so that a bad request fails before the run connects); run.h
 * connects, drives the calls and waits for the end; report.h prints what
 * the run measured.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "flags.h"
#include "payloads.h"
#include "report.h"
#include "run.h"

int
main(int argc, char **argv)
{
	struct load_options  opts;
	struct load_payloads payloads;
	struct load_run      run;
	struct load_summary  summary;
	sigset_t             signals;
	bool                 interrupted;
	int                  sigfd, rv;

	if ((rv = load_flags_parse(argc, argv, &opts)) != 0) {
		load_flags_finish(&opts);
		return rv < 0 ? LOAD_EXIT_OK : rv;
	}

	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	if ((rv = pthread_sigmask(SIG_BLOCK, &signals, NULL)) != 0 ||
	    (sigfd = signalfd(-1, &signals, SFD_CLOEXEC)) < 0) {
		fprintf(stderr, "zos-load: signals: %s\n",
		    strerror(rv != 0 ? rv : errno));
		load_flags_finish(&opts);
		return LOAD_EXIT_FAILED;
	}
	if ((rv = load_payloads_prepare(&opts, &payloads)) != 0) {
		close(sigfd);
		load_payloads_finish(&payloads);
		load_flags_finish(&opts);
		return rv;
	}
	if ((rv = load_run_setup(&run, &opts, &payloads)) != 0) {
		goto out;
	}
	interrupted = load_run_execute(&run, sigfd);
	load_report_summarize(&run, &summary);

	rv = interrupted ? LOAD_EXIT_INTERRUPTED : LOAD_EXIT_OK;
	if (load_report_print(&run, &summary) != 0) {
		fprintf(stderr, "zos-load: out of memory\n");
		rv = LOAD_EXIT_FAILED;
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "zos-load: stdout: %s\n", strerror(errno));
		rv = LOAD_EXIT_FAILED;
	}
out:
	load_run_finish(&run);
	close(sigfd);
	load_payloads_finish(&payloads);
	load_flags_finish(&opts);
	return rv;
}
