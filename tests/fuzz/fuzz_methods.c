/*
 * Fuzz target: every zos.v1 method on a zOS state in memory. The first
 * byte picks the method (modulo their number, in registration order:
 * Skills, Session, Routing, Cache, Assistant, each in .proto order), the
 * rest is its request message; the harness wraps it in a request envelope
 * and serves it through the server's path (dispatch_host.h), so the
 * fuzzer spends its time in the handlers rather than in the envelope.
 */
#include <stdlib.h>

#include "dispatch_host.h"
#include "fuzz.h"
#include "zrpc/v1/envelope.pb-c.h"

#define FUZZ_ENVELOPE_MAX 8192

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_host                *host;
	static const struct zrpc_method *const *methods;
	static size_t                           n_methods;
	Zrpc__V1__Request request = ZRPC__V1__REQUEST__INIT;
	uint8_t          *body;
	size_t            len;

	if (host == NULL) {
		host    = fuzz_host_create();
		methods = fuzz_host_methods(host, "zos.v1.", &n_methods);
		if (n_methods == 0) {
			abort();
		}
	}
	if (size == 0) {
		return 0;
	}
	request.method       = (char *) methods[data[0] % n_methods]->path;
	request.payload.data = (uint8_t *) data + 1;
	request.payload.len  = size - 1;
	len                  = zrpc__v1__request__get_packed_size(&request);
	if ((body = malloc(len > 0 ? len : 1)) == NULL) {
		abort();
	}
	zrpc__v1__request__pack(&request, body);
	fuzz_host_serve(host, body, len);
	free(body);
	return 0;
}
