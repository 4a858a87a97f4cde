/*
 * Fuzz target: a request's bytes as the server receives them, one nng
 * message body: envelope decode, method lookup, input decode, the handler
 * of whichever service the envelope names (built-in or zOS), and the
 * reply (dispatch_host.h). Every byte string must get one well-formed
 * reply: no crash, leak, hang or sanitizer report.
 */
#include "dispatch_host.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One host for the whole run: its state carries over between
	 * inputs, as a server's does between calls. */
	static struct fuzz_host *host;

	if (host == NULL) {
		host = fuzz_host_create();
	}
	fuzz_host_serve(host, data, size);
	return 0;
}
