/*
 * protoc-gen-zrpc: the protoc plugin that writes zrpc client stubs and
 * server bindings in C, next to protoc-c's message code.
 *
 *   protoc --plugin=protoc-gen-zrpc=PATH --zrpc_out=DIR --proto_path=P F.proto
 *
 * protoc runs the plugin with a CodeGeneratorRequest on stdin and reads a
 * CodeGeneratorResponse from stdout. Problems with the .proto files go
 * into the response (protoc prints them and fails); only a broken pipe, a
 * malformed request or lack of memory make the plugin itself exit 1.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "google/protobuf/compiler/plugin.pb-c.h"
#include "plugin.h"

#ifndef ZRPC_GEN_VERSION
#define ZRPC_GEN_VERSION "unknown"
#endif

/* Largest request accepted: protoc's own limit on a message is 2 GiB. */
#define MAIN_MAX_REQUEST ((size_t) 1 << 31)

/*
 * Reads all of FD into a new buffer, *DATA (the caller frees it), of *LEN
 * bytes. Returns 0, or an errno value (EFBIG past MAIN_MAX_REQUEST).
 */
static int
main_read_all(int fd, uint8_t **data, size_t *len)
{
	uint8_t *buf  = NULL;
	size_t   used = 0;
	size_t   cap  = 0;
	int      rv;

	for (;;) {
		ssize_t n;

		if (used == cap) {
			size_t   grow = cap != 0 ? cap * 2 : 64 * 1024;
			uint8_t *bigger;

			if (cap >= MAIN_MAX_REQUEST) {
				rv = EFBIG;
				goto fail;
			}
			if ((bigger = realloc(buf, grow)) == NULL) {
				rv = ENOMEM;
				goto fail;
			}
			buf = bigger;
			cap = grow;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			rv = errno;
			goto fail;
		}
		if (n == 0) {
			break;
		}
		used += (size_t) n;
	}
	*data = buf;
	*len  = used;
	return 0;

fail:
	free(buf);
	return rv;
}

/* Writes the LEN bytes of DATA to FD. Returns 0 or an errno value. */
static int
main_write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno;
		}
		data += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Packs RESPONSE and writes it to stdout. Returns 0 or an errno value. */
static int
main_write_response(
    const Google__Protobuf__Compiler__CodeGeneratorResponse *response)
{
	size_t   len;
	uint8_t *data;
	int      rv;

	len =
	    google__protobuf__compiler__code_generator_response__get_packed_size(
	        response);
	if ((data = malloc(len != 0 ? len : 1)) == NULL) {
		return ENOMEM;
	}
	google__protobuf__compiler__code_generator_response__pack(
	    response, data);
	rv = main_write_all(STDOUT_FILENO, data, len);
	free(data);
	return rv;
}

int
main(int argc, char **argv)
{
	Google__Protobuf__Compiler__CodeGeneratorRequest *request = NULL;
	Google__Protobuf__Compiler__CodeGeneratorResponse response =
	    GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
	uint8_t *input  = NULL;
	size_t   len    = 0;
	int      status = EXIT_FAILURE;
	int      rv;

	if (argc > 1) {
		if (strcmp(argv[1], "--version") == 0) {
			printf("protoc-gen-zrpc %s\n", ZRPC_GEN_VERSION);
			return EXIT_SUCCESS;
		}
		fprintf(stderr,
		    "usage: protoc --plugin=protoc-gen-zrpc=%s "
		    "--zrpc_out=DIR FILE.proto...\n"
		    "protoc-gen-zrpc is run by protoc: it reads a "
		    "CodeGeneratorRequest on stdin.\n",
		    argv[0]);
		return strcmp(argv[1], "--help") == 0 ? EXIT_SUCCESS : 2;
	}

	if ((rv = main_read_all(STDIN_FILENO, &input, &len)) != 0) {
		fprintf(stderr, "protoc-gen-zrpc: reading the request: %s\n",
		    strerror(rv));
		goto out;
	}
	request = google__protobuf__compiler__code_generator_request__unpack(
	    NULL, len, input);
	if (request == NULL) {
		fprintf(stderr,
		    "protoc-gen-zrpc: stdin is not a CodeGeneratorRequest "
		    "(run me through protoc)\n");
		goto out;
	}
	if ((rv = plugin_generate(request, &response)) != 0 ||
	    (rv = main_write_response(&response)) != 0) {
		fprintf(stderr, "protoc-gen-zrpc: %s\n", strerror(rv));
		goto out;
	}
	status = EXIT_SUCCESS;

out:
	plugin_response_finish(&response);
	if (request != NULL) {
		google__protobuf__compiler__code_generator_request__free_unpacked(
		    request, NULL);
	}
	free(input);
	return status;
}
