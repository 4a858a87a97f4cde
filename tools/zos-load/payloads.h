/*
 * zos-load's requests: the method the calls go to and the packed request
 * bodies they send, all built before the run from --data (proto3 JSON,
 * packed through the method's input descriptor by pbjson), --data-hex (the
 * packed bytes as they are) or --data-file (one JSON request per line).
 * The method's descriptors come from the tools' resolver (resolve.h):
 * --protoset or --proto, else the server by reflection, else the tables
 * compiled into the tools; so --data works for any zrpc service.
 *
 * Packing once up front keeps JSON and protobuf-c out of the run: a call
 * only picks one of the packed bodies (run.h says which).
 */
#ifndef ZOS_LOAD_PAYLOADS_H
#define ZOS_LOAD_PAYLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "flags.h"
#include "resolve.h"

/* One packed request body. BYTES is malloc'd, or NULL when LEN is 0. */
struct load_payload {
	uint8_t *bytes;
	size_t   len;
};

/*
 * The requests of a run. PATH is the wire method name the calls go to ("" with
 * --echo); it points into the method tables, the resolver's descriptors
 * or argv (not owned by PATH).
 * ITEMS holds N bodies (at least 1 after a successful prepare): the one
 * request of --data or --data-hex, or the lines of --data-file in order.
 */
struct load_payloads {
	const char          *path;
	struct load_payload *items;
	size_t               n;
	zos_resolver        *resolver; /* owns the method's descriptors */
};

/*
 * Finds the method named by OPTS and packs the request(s) into OUT, which
 * need not be initialised. Asking the server by reflection opens a client
 * of its own (closed before this returns), so SIGINT and SIGTERM should be
 * blocked already (main.c). Returns 0; or LOAD_EXIT_USAGE (an unknown
 * method, a request that is not valid for its type, a --data-file that
 * cannot be read or does not split into --data-per-caller's blocks, a
 * --proto or --protoset that cannot be used) or LOAD_EXIT_FAILED (out of
 * memory, a server that cannot be reached to ask for a method zos-load
 * does not know), with a message on stderr. OUT is always to be freed
 * with load_payloads_finish, after failure too.
 */
int load_payloads_prepare(
    const struct load_options *opts, struct load_payloads *out);

/* Frees what load_payloads_prepare allocated in PAYLOADS. */
void load_payloads_finish(struct load_payloads *payloads);

#endif /* ZOS_LOAD_PAYLOADS_H */
