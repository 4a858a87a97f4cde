/*
 * Fuzz target: the request head parser of zosd's metrics endpoint
 * (zos/zosd/http_request.h), on bytes as a client sends them. Besides
 * never crashing, it must keep its word: what it returns points into the
 * bytes and within the bounds, and a head it accepts is never refused
 * while only part of it has arrived (the server parses after each read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http_request.h"

#define FUZZ_PREFIX_CHECK_MAX 512 /* every prefix: quadratic */

static int
fuzz_inside(const uint8_t *data, size_t size, const char *p, size_t len)
{
	return (const uint8_t *) p >= data &&
	    (const uint8_t *) p + len <= data + size;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char             *buf = (const char *) data;
	struct zos_http_request req;

	if (zos_http_parse_request(buf, size, &req) != ZOS_HTTP_PARSE_OK) {
		return 0;
	}
	if (!fuzz_inside(data, size, req.method, req.method_len) ||
	    req.method_len == 0 || req.method_len > ZOS_HTTP_MAX_METHOD ||
	    !fuzz_inside(data, size, req.path, req.path_len) ||
	    req.path_len == 0 || req.path[0] != '/' ||
	    req.path_len > ZOS_HTTP_MAX_TARGET ||
	    memchr(req.path, '?', req.path_len) != NULL ||
	    (req.authorization != NULL &&
	        !fuzz_inside(
	            data, size, req.authorization, req.authorization_len))) {
		fprintf(stderr, "fuzz: an accepted head out of bounds\n");
		abort();
	}
	for (size_t n = 0; size <= FUZZ_PREFIX_CHECK_MAX && n < size; n++) {
		struct zos_http_request part;

		if (zos_http_parse_request(buf, n, &part) ==
		    ZOS_HTTP_PARSE_BAD) {
			fprintf(stderr,
			    "fuzz: a head accepted whole is refused after "
			    "%zu of its %zu bytes\n",
			    n, size);
			abort();
		}
	}
	return 0;
}
