/*
 * greeter-server URL: serves greeter.v1.Greeter (greeter.proto) on URL,
 * any nng URL (tcp://127.0.0.1:7450, ipc:///tmp/greeter.sock), until
 * SIGINT or SIGTERM.
 *
 * The whole of a zrpc server: a handler per method with the typed
 * signature protoc-gen-zrpc writes into greeter.zrpc.h, the generated
 * handler table registered with the server, then listen and start. The
 * reply's strings come from the call's arena (zrpc_call_alloc), which the
 * runtime frees once the reply is sent. Both handlers are quick, so they
 * run on nng's completion thread (a handler that may block says so in its
 * _blocking flag and runs on the worker pool).
 *
 * Signals are blocked before the server starts any thread, so every thread
 * inherits the mask and main takes them with sigwait: no signal handler and
 * no global flag. Then a graceful stop lets calls in flight finish.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "greeter.zrpc.h"
#include "zrpc/server.h"

#define GREETER_GRACE_MS 2000 /* for calls in flight at a stop */

/* SayHello: "Hello, NAME!", or "Hello, world!" for an empty name. */
static zrpc_status
greeter_say_hello(zrpc_call *call, const Greeter__V1__HelloRequest *request,
    Greeter__V1__HelloReply *reply)
{
	const char *name = request->name[0] != '\0' ? request->name : "world";
	size_t      size = strlen("Hello, !") + strlen(name) + 1;

	reply->message = zrpc_call_alloc(call, size);
	if (reply->message == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	snprintf(reply->message, size, "Hello, %s!", name);
	return zrpc_status_ok();
}

/* Add: A + B, or OUT_OF_RANGE when the sum does not fit. */
static zrpc_status
greeter_add(zrpc_call *call, const Greeter__V1__AddRequest *request,
    Greeter__V1__AddReply *reply)
{
	(void) call;
	if (__builtin_add_overflow(request->a, request->b, &reply->sum)) {
		return zrpc_status_make(ZRPC_OUT_OF_RANGE,
		    "%lld + %lld does not fit in 64 bits",
		    (long long) request->a, (long long) request->b);
	}
	return zrpc_status_ok();
}

int
main(int argc, char **argv)
{
	const struct greeter_v1_greeter_handlers handlers = {
		.say_hello = greeter_say_hello,
		.add       = greeter_add,
	};
	zrpc_server *server = NULL;
	zrpc_status  status;
	sigset_t     signals;
	int          sig, exit_code = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: greeter-server URL\n");
		return 2;
	}

	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);

	status = zrpc_server_create(&server, NULL); /* default config */
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}
	status = greeter_v1_greeter_register(server, &handlers, NULL);
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}
	status = zrpc_server_listen(server, argv[1]);
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}
	status = zrpc_server_start(server);
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}
	fprintf(stderr, "greeter-server: listening on %s\n",
	    zrpc_server_listener_url(server, 0));

	if (sigwait(&signals, &sig) != 0) {
		sig = SIGTERM;
	}
	fprintf(stderr, "greeter-server: %s, stopping\n",
	    sig == SIGINT ? "SIGINT" : "SIGTERM");
	if (zrpc_server_stop(server, GREETER_GRACE_MS) > 0) {
		fprintf(stderr, "greeter-server: calls cut off at the stop\n");
	}
	exit_code = 0;
	goto out;

fail:
	fprintf(stderr, "greeter-server: %s: %s\n",
	    zrpc_status_name(status.code), status.message);
out:
	zrpc_server_destroy(server);
	return exit_code;
}
