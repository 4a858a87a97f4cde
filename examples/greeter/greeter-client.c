/*
 * greeter-client URL [NAME]: calls greeter.v1.Greeter's two methods on the
 * server at URL with the blocking stubs protoc-gen-zrpc writes into
 * greeter.zrpc.h, and prints the replies:
 *
 *   Hello, NAME!
 *   20 + 22 = 42
 *
 * Exits 0 when both calls succeed, 1 (with CODE: message on stderr) when
 * one fails, 2 for bad usage.
 *
 * A client connects in the background and keeps trying, so it may be
 * opened before the server is up: a call waits for the connection up to
 * connect_timeout_ms, within its own timeout_ms.
 */
#include <stdio.h>

#include "greeter.zrpc.h"

#define GREETER_TIMEOUT_MS 10000 /* long enough for a server starting up */

int
main(int argc, char **argv)
{
	const zrpc_client_opts client_opts = {
		.connect_timeout_ms = GREETER_TIMEOUT_MS,
	};
	const zrpc_call_opts call_opts  = { .timeout_ms = GREETER_TIMEOUT_MS };
	Greeter__V1__HelloRequest hello = GREETER__V1__HELLO_REQUEST__INIT;
	Greeter__V1__AddRequest   add   = GREETER__V1__ADD_REQUEST__INIT;
	Greeter__V1__HelloReply  *hello_reply;
	Greeter__V1__AddReply    *add_reply;
	zrpc_client              *client;
	zrpc_status               status;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: greeter-client URL [NAME]\n");
		return 2;
	}
	hello.name = argc > 2 ? argv[2] : "";
	add.a      = 20;
	add.b      = 22;

	status = zrpc_client_open(&client, argv[1], &client_opts);
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}

	status = greeter_v1_greeter_say_hello(
	    client, &hello, &hello_reply, &call_opts);
	if (!zrpc_status_is_ok(&status)) {
		goto fail_close;
	}
	printf("%s\n", hello_reply->message);
	greeter__v1__hello_reply__free_unpacked(hello_reply, NULL);

	status = greeter_v1_greeter_add(client, &add, &add_reply, &call_opts);
	if (!zrpc_status_is_ok(&status)) {
		goto fail_close;
	}
	printf("%lld + %lld = %lld\n", (long long) add.a, (long long) add.b,
	    (long long) add_reply->sum);
	greeter__v1__add_reply__free_unpacked(add_reply, NULL);

	zrpc_client_close(client);
	return 0;

fail_close:
	zrpc_client_close(client);
fail:
	fprintf(stderr, "greeter-client: %s: %s\n",
	    zrpc_status_name(status.code), status.message);
	return 1;
}
