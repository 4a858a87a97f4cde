/*
 * zrpc status values: gRPC codes with a bounded, inline message.
 */
#include "zrpc/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include <nng/nng.h>

static const char *const status_names[ZRPC_CODE_COUNT] = {
	[ZRPC_OK]                  = "OK",
	[ZRPC_CANCELLED]           = "CANCELLED",
	[ZRPC_UNKNOWN]             = "UNKNOWN",
	[ZRPC_INVALID_ARGUMENT]    = "INVALID_ARGUMENT",
	[ZRPC_DEADLINE_EXCEEDED]   = "DEADLINE_EXCEEDED",
	[ZRPC_NOT_FOUND]           = "NOT_FOUND",
	[ZRPC_ALREADY_EXISTS]      = "ALREADY_EXISTS",
	[ZRPC_PERMISSION_DENIED]   = "PERMISSION_DENIED",
	[ZRPC_RESOURCE_EXHAUSTED]  = "RESOURCE_EXHAUSTED",
	[ZRPC_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
	[ZRPC_ABORTED]             = "ABORTED",
	[ZRPC_OUT_OF_RANGE]        = "OUT_OF_RANGE",
	[ZRPC_UNIMPLEMENTED]       = "UNIMPLEMENTED",
	[ZRPC_INTERNAL]            = "INTERNAL",
	[ZRPC_UNAVAILABLE]         = "UNAVAILABLE",
	[ZRPC_DATA_LOSS]           = "DATA_LOSS",
	[ZRPC_UNAUTHENTICATED]     = "UNAUTHENTICATED",
};

zrpc_status
zrpc_status_ok(void)
{
	zrpc_status status;
	status.code       = ZRPC_OK;
	status.message[0] = '\0';
	return status;
}

zrpc_status
zrpc_status_make(zrpc_code code, const char *fmt, ...)
{
	zrpc_status status;
	va_list     ap;

	status.code = code;
	va_start(ap, fmt);
	(void) vsnprintf(status.message, sizeof(status.message), fmt, ap);
	va_end(ap);
	return status;
}

const char *
zrpc_status_name(zrpc_code code)
{
	if ((unsigned) code >= ZRPC_CODE_COUNT) {
		return "UNKNOWN";
	}
	return status_names[code];
}

bool
zrpc_status_from_name(const char *name, zrpc_code *code)
{
	for (unsigned i = 0; i < ZRPC_CODE_COUNT; i++) {
		if (strcasecmp(name, status_names[i]) == 0) {
			*code = (zrpc_code) i;
			return true;
		}
	}
	return false;
}

zrpc_status
zrpc_status_from_nng(int nng_error, const char *what)
{
	zrpc_code code;

	switch (nng_error) {
	case 0:
		return zrpc_status_ok();
	case NNG_ETIMEDOUT:
		code = ZRPC_DEADLINE_EXCEEDED;
		break;
	case NNG_ECANCELED:
	case NNG_ECLOSED:
		code = ZRPC_CANCELLED;
		break;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNABORTED:
	case NNG_ECONNSHUT:
	case NNG_EUNREACHABLE:
	case NNG_EADDRINUSE:
	case NNG_EPEERAUTH:
	case NNG_ECRYPTO:
		code = ZRPC_UNAVAILABLE;
		break;
	case NNG_ENOMEM:
	case NNG_EMSGSIZE:
		code = ZRPC_RESOURCE_EXHAUSTED;
		break;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
		code = ZRPC_INVALID_ARGUMENT;
		break;
	case NNG_EPERM:
		code = ZRPC_PERMISSION_DENIED;
		break;
	default:
		code = ZRPC_INTERNAL;
		break;
	}
	return zrpc_status_make(code, "%s: %s", what, nng_strerror(nng_error));
}
