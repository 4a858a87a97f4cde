/*
 * Fuzz target: the --auth-tokens file, as zosd reads it at start-up and on
 * SIGHUP: zrpc_auth_parse on the input as the file's contents, then, when
 * it is a good table, a lookup of every whitespace-separated word of the
 * input (each must give a role or none, never a crash) and of the whole
 * input as one bearer header.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "zrpc/auth.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	zrpc_auth  *auth = NULL;
	zrpc_status status;
	char       *header;

	status = zrpc_auth_parse(&auth, "fuzz-tokens", text, size);
	if (!zrpc_status_is_ok(&status)) {
		if (auth != NULL || status.message[0] == '\0') {
			abort(); /* a failure names its cause, and builds
			            nothing */
		}
		return 0;
	}
	for (size_t i = 0; i < size;) {
		size_t n = 0;

		while (i + n < size && text[i + n] != ' ' &&
		    text[i + n] != '\n' && text[i + n] != '\t') {
			n++;
		}
		(void) zrpc_auth_lookup(auth, text + i, n);
		i += n + 1;
	}
	if ((header = malloc(size + 8)) != NULL) {
		memcpy(header, "Bearer ", 7);
		memcpy(header + 7, data, size);
		header[size + 7] = '\0';
		(void) zrpc_auth_lookup_header(auth, header);
		free(header);
	}
	zrpc_auth_destroy(auth);
	return 0;
}
