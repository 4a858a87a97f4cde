/*
 * Fuzz target: zosctl's proto3 JSON (tools/common/pbjson_parse.c) for
 * every zos.v1 request type. The first byte picks the type (modulo their
 * number, in the order of the known services' methods), the rest is the
 * JSON text. A message that parses must print (pbjson_print.c), and what
 * it prints must parse again: the round trip zosctl relies on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "methods.h"
#include "pbjson.h"

#define FUZZ_MAX_TYPES 64

/* The request types of the zos.v1 services, once. */
static size_t
fuzz_request_types(const ProtobufCMessageDescriptor **types)
{
	const struct zrpc_service_desc *const *services;
	size_t                                 n_services, n = 0;

	services = zos_tools_services(&n_services);
	for (size_t s = 0; s < n_services; s++) {
		if (strncmp(services[s]->name, "zos.v1.", 7) != 0) {
			continue;
		}
		for (size_t m = 0; m < services[s]->n_methods; m++) {
			if (n == FUZZ_MAX_TYPES) {
				abort();
			}
			types[n++] = services[s]->methods[m].input;
		}
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const ProtobufCMessageDescriptor *types[FUZZ_MAX_TYPES];
	static size_t                            n_types;
	const ProtobufCMessageDescriptor        *desc;
	ProtobufCMessage                        *message, *again;
	char                                     error[512];
	char                                    *json, *printed;

	if (n_types == 0 && (n_types = fuzz_request_types(types)) == 0) {
		abort();
	}
	if (size == 0) {
		return 0;
	}
	desc = types[data[0] % n_types];
	/* The text as zosctl has it: a C string (a NUL ends it early). */
	if ((json = malloc(size)) == NULL) {
		abort();
	}
	memcpy(json, data + 1, size - 1);
	json[size - 1] = '\0';
	message        = zos_pbjson_parse(desc, json, error, sizeof(error));
	free(json);
	if (message == NULL) {
		return 0;
	}
	printed = zos_pbjson_print(
	    message, (data[0] & 0x80) != 0, error, sizeof(error));
	if (printed == NULL) {
		fprintf(stderr, "fuzz: a parsed %s does not print: %s\n",
		    desc->name, error);
		abort();
	}
	again = zos_pbjson_parse(desc, printed, error, sizeof(error));
	if (again == NULL) {
		fprintf(stderr,
		    "fuzz: %s printed as\n%s\ndoes not parse: %s\n",
		    desc->name, printed, error);
		abort();
	}
	protobuf_c_message_free_unpacked(again, NULL);
	free(printed);
	protobuf_c_message_free_unpacked(message, NULL);
	return 0;
}
