//
// zos-echo: the raw nng request/reply baseline for benchmarks.
//
// A rep0 socket with N contexts, each driven by its own aio: receive a
// message, send the same message straight back, receive again. That is the
// least any request/reply server over nng can do per call, so
// scripts/bench runs it beside zosd with the same request bytes and
// reports zosd as a fraction of it. Nothing is parsed or copied; the
// message received is the message sent.
//
// Each context's callback runs serially (one aio, one operation at a
// time), so a worker needs no lock. Shutdown closes the socket, which
// completes every pending operation with NNG_ECLOSED; the callbacks then
// stop re-arming and nng_aio_free waits for the last one to return.
//
// SIGINT and SIGTERM are blocked in main before nng starts its threads
// (which inherit the mask) and taken with sigwait, so there is no handler
// and no global flag.
//

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#define ECHO_DEFAULT_CONTEXTS 128
#define ECHO_MAX_CONTEXTS 65536

enum echo_state {
	ECHO_RECV,
	ECHO_SEND,
};

// One context and the aio that drives it. Touched only by its own
// callback once started, and by main after the socket is closed.
struct echo_worker {
	nng_ctx         ctx;
	nng_aio        *aio;
	enum echo_state state;
};

struct echo_server {
	nng_socket          sock;
	struct echo_worker *workers;
	size_t              nworkers;
};

static void
echo_usage(FILE *out)
{
	fprintf(out,
	    "usage: zos-echo --listen URL [--contexts N]\n"
	    "\n"
	    "A plain nng rep0 echo server, the baseline for scripts/bench.\n"
	    "Every request is sent back unchanged.\n"
	    "\n"
	    "  --listen URL    address to listen on (required)\n"
	    "  --contexts N    concurrent contexts (default %d)\n"
	    "  --help          this text\n",
	    ECHO_DEFAULT_CONTEXTS);
}

// echo_worker_cb advances one worker's receive/send cycle. It runs on an
// nng thread, one call at a time per worker.
static void
echo_worker_cb(void *arg)
{
	struct echo_worker *w = arg;
	int                 rv;

	rv = nng_aio_result(w->aio);
	switch (w->state) {
	case ECHO_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			return;
		}
		if (rv != 0) {
			nng_ctx_recv(w->ctx, w->aio);
			return;
		}
		// The received message stays on the aio: send it back.
		w->state = ECHO_SEND;
		nng_ctx_send(w->ctx, w->aio);
		return;
	case ECHO_SEND:
		if (rv != 0) {
			// A failed send leaves the message with us.
			nng_msg_free(nng_aio_get_msg(w->aio));
			nng_aio_set_msg(w->aio, NULL);
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				return;
			}
		}
		w->state = ECHO_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
}

// echo_server_stop closes the socket and frees every worker. Safe on a
// partly started server (workers whose aio is NULL are skipped).
static void
echo_server_stop(struct echo_server *server)
{
	nng_close(server->sock);
	for (size_t i = 0; i < server->nworkers; i++) {
		// Waits for a callback still running.
		nng_aio_free(server->workers[i].aio);
	}
	free(server->workers);
	server->workers  = NULL;
	server->nworkers = 0;
}

// echo_server_start opens a rep0 socket on url and starts ncontexts
// workers. Returns 0, or an nng error with the server left closed.
static int
echo_server_start(
    struct echo_server *server, const char *url, size_t ncontexts)
{
	int rv;

	server->nworkers = 0;
	server->workers  = calloc(ncontexts, sizeof(server->workers[0]));
	if (server->workers == NULL) {
		return (NNG_ENOMEM);
	}
	if ((rv = nng_rep0_open(&server->sock)) != 0) {
		free(server->workers);
		server->workers = NULL;
		return (rv);
	}
	for (size_t i = 0; i < ncontexts; i++) {
		struct echo_worker *w = &server->workers[i];

		if ((rv = nng_aio_alloc(&w->aio, echo_worker_cb, w)) != 0) {
			goto fail;
		}
		server->nworkers++;
		if ((rv = nng_ctx_open(&w->ctx, server->sock)) != 0) {
			goto fail;
		}
	}
	if ((rv = nng_listen(server->sock, url, NULL, 0)) != 0) {
		goto fail;
	}
	for (size_t i = 0; i < ncontexts; i++) {
		struct echo_worker *w = &server->workers[i];

		w->state = ECHO_RECV;
		nng_ctx_recv(w->ctx, w->aio);
	}
	return (0);

fail:
	echo_server_stop(server);
	return (rv);
}

// echo_parse_contexts reads a positive count no larger than the maximum.
static int
echo_parse_contexts(const char *text, size_t *out)
{
	char         *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value == 0 ||
	    value > ECHO_MAX_CONTEXTS || text[0] == '-') {
		return (-1);
	}
	*out = (size_t) value;
	return (0);
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "contexts", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct echo_server server;
	const char        *url       = NULL;
	size_t             ncontexts = ECHO_DEFAULT_CONTEXTS;
	sigset_t           signals;
	int                signal_number;
	int                opt;
	int                rv;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'l':
			url = optarg;
			break;
		case 'c':
			if (echo_parse_contexts(optarg, &ncontexts) != 0) {
				fprintf(stderr,
				    "zos-echo: --contexts wants 1..%d, not "
				    "'%s'\n",
				    ECHO_MAX_CONTEXTS, optarg);
				return (2);
			}
			break;
		case 'h':
			echo_usage(stdout);
			return (0);
		default:
			echo_usage(stderr);
			return (2);
		}
	}
	if (url == NULL || optind != argc) {
		echo_usage(stderr);
		return (2);
	}

	// Block the signals before nng creates any thread, so that every
	// thread inherits the mask and only sigwait below sees them.
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	if ((rv = pthread_sigmask(SIG_BLOCK, &signals, NULL)) != 0) {
		fprintf(
		    stderr, "zos-echo: pthread_sigmask: %s\n", strerror(rv));
		return (1);
	}

	if ((rv = echo_server_start(&server, url, ncontexts)) != 0) {
		fprintf(stderr, "zos-echo: cannot listen on %s: %s\n", url,
		    nng_strerror(rv));
		return (1);
	}
	printf("zos-echo: listening on %s (%zu contexts)\n", url, ncontexts);
	fflush(stdout);

	if ((rv = sigwait(&signals, &signal_number)) != 0) {
		fprintf(stderr, "zos-echo: sigwait: %s\n", strerror(rv));
		echo_server_stop(&server);
		return (1);
	}
	echo_server_stop(&server);
	printf("zos-echo: stopped by signal %d\n", signal_number);
	return (0);
}
