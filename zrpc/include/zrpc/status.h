/*
 * zrpc status: the outcome of a call, as a gRPC status code and a message.
 *
 * A status is a plain value (no heap memory), so that every function in the
 * runtime and in generated code can return one by value and no caller ever
 * has to free it. The message is truncated to fit; OK carries an empty
 * message.
 */
#ifndef ZRPC_STATUS_H
#define ZRPC_STATUS_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes, with gRPC's numbers (they travel on the wire). */
typedef enum zrpc_code {
	ZRPC_OK                  = 0,
	ZRPC_CANCELLED           = 1,
	ZRPC_UNKNOWN             = 2,
	ZRPC_INVALID_ARGUMENT    = 3,
	ZRPC_DEADLINE_EXCEEDED   = 4,
	ZRPC_NOT_FOUND           = 5,
	ZRPC_ALREADY_EXISTS      = 6,
	ZRPC_PERMISSION_DENIED   = 7,
	ZRPC_RESOURCE_EXHAUSTED  = 8,
	ZRPC_FAILED_PRECONDITION = 9,
	ZRPC_ABORTED             = 10,
	ZRPC_OUT_OF_RANGE        = 11,
	ZRPC_UNIMPLEMENTED       = 12,
	ZRPC_INTERNAL            = 13,
	ZRPC_UNAVAILABLE         = 14,
	ZRPC_DATA_LOSS           = 15,
	ZRPC_UNAUTHENTICATED     = 16,
} zrpc_code;

/* Number of codes; valid codes are 0 .. ZRPC_CODE_COUNT - 1. */
#define ZRPC_CODE_COUNT 17

/* Longest message kept, including the terminating NUL. */
#define ZRPC_STATUS_MESSAGE_MAX 256

typedef struct zrpc_status {
	zrpc_code code;
	char      message[ZRPC_STATUS_MESSAGE_MAX];
} zrpc_status;

/* An OK status with an empty message. */
zrpc_status zrpc_status_ok(void);

/* A status with CODE and a printf-style message (truncated to fit). */
zrpc_status zrpc_status_make(zrpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True when STATUS is OK. */
static inline bool
zrpc_status_is_ok(const zrpc_status *status)
{
	return status->code == ZRPC_OK;
}

/*
 * The canonical upper-case name of CODE ("DEADLINE_EXCEEDED"); codes
 * outside the table give "UNKNOWN". The string is static.
 */
const char *zrpc_status_name(zrpc_code code);

/*
 * Parses a canonical name ("NOT_FOUND", case-insensitive) into *CODE.
 * Returns false, leaving *CODE alone, when NAME is not a code name.
 */
bool zrpc_status_from_name(const char *name, zrpc_code *code);

/*
 * Maps an nng error number to the status a caller should see (NNG_ETIMEDOUT
 * -> DEADLINE_EXCEEDED, NNG_ECONNREFUSED -> UNAVAILABLE, ...), with WHAT
 * and nng's own text in the message.
 */
zrpc_status zrpc_status_from_nng(int nng_error, const char *what);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_STATUS_H */
