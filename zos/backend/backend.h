/*
 * Model backends: where Assistant/Complete gets its text.
 *
 * A model name is either "builtin:NAME", answered in-process by the
 * built-in echo model, or the nng URL of a zrpc server implementing
 * zos.v1.ModelBackend/Generate ("tcp://10.0.0.5:7500", "ipc:///run/m.sock").
 * The set knows every remote URL it will be asked for from the start (the
 * routing table's models and the --backend flags) and keeps one shared
 * client per URL, dialled in the background: a backend that is down at
 * start-up becomes usable when it comes up.
 *
 * The echo model answers deterministic text derived from the model name
 * and the prompt, after an optional delay, and fails a configured fraction
 * of calls (drawn from a seeded sequence, so a run can be repeated).
 * Every "builtin:NAME" is the echo model under that name. Its text is
 * "[MODEL] PROMPT" with the full model name ("[builtin:echo] hello");
 * max_tokens > 0 keeps only the prompt's first max_tokens
 * whitespace-separated words (the bracketed name is not counted). A
 * failing call fails at once; a delay longer than the timeout sleeps the
 * timeout and answers DEADLINE_EXCEEDED. A remote is sent its URL as the
 * request's model. Built-in names among the configured URLs are skipped,
 * so a routing table's models can be passed as they are.
 *
 * zos_backends_generate blocks (delay, network): call it with no zOS lock
 * held. The set holds no zOS lock and takes none; it is safe to share
 * between threads.
 */
#ifndef ZOS_BACKEND_H
#define ZOS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "zrpc/status.h"

#define ZOS_BACKEND_BUILTIN_PREFIX "builtin:"
#define ZOS_BACKEND_TEXT_MAX (1u << 20) /* longest text accepted, bytes */
/*
 * A call to a remote model that is not connected fails UNAVAILABLE after
 * this long, rather than spending the caller's whole deadline on a server
 * that is down: the retry and the fallback need the time (gRPC's "fail
 * fast"). A server that comes up is connected within nng's redial time.
 */
#define ZOS_BACKEND_CONNECT_TIMEOUT_MS 250

struct zos_backends_config {
	uint32_t echo_delay_ms;  /* echo: pause before answering; 0 = none */
	double   echo_fail_rate; /* echo: fraction of calls failing, [0, 1] */
	uint64_t echo_seed;      /* echo: seeds the failure sequence */
	/* Remote model URLs to connect to (duplicates are fine). */
	const char *const *urls;
	size_t             n_urls;
	/*
	 * A call to a remote that is not connected fails after this long;
	 * 0 = ZOS_BACKEND_CONNECT_TIMEOUT_MS. Tests that start a model and
	 * call it at once raise it, so that a slow first connect on a loaded
	 * machine is waited for instead of failing fast.
	 */
	uint32_t connect_timeout_ms;
};

struct zos_backends; /* opaque */

/*
 * Creates the set: validates the echo settings and opens one client per
 * distinct URL (a URL nng cannot parse is an error; a server that is not
 * up is not). Returns 0 or -1 with ERROR saying why ("--backend
 * tcp://x:y: invalid URL").
 */
int zos_backends_create(const struct zos_backends_config *config,
    struct zos_backends **out, char *error, size_t error_len);

/*
 * Asks MODEL for the text for PROMPT, waiting at most TIMEOUT_MS (> 0).
 * On success returns OK and *OUT_TEXT, malloc'd, NUL-terminated, at most
 * ZOS_BACKEND_TEXT_MAX bytes (the caller frees it). Otherwise *OUT_TEXT is
 * NULL and the status says why: DEADLINE_EXCEEDED (TIMEOUT_MS ran out),
 * UNAVAILABLE (echo's simulated failure, a remote that is down or not
 * known: "no backend for model X"), or the remote's own status, with the
 * model named in the message.
 * Locking: none; blocks; no zOS lock may be held.
 */
zrpc_status zos_backends_generate(struct zos_backends *backends,
    const char *model, const char *prompt, uint32_t max_tokens,
    uint32_t timeout_ms, char **out_text);

/*
 * What a backend call carries of the call it is made for, so that the
 * model's logs can be joined with zosd's: sent to a remote model as
 * request metadata under these keys (the built-in echo model has no use
 * for it). Any field may be NULL (not sent); the strings are the
 * caller's and need only live during the call.
 */
struct zos_backend_context {
	const char *request_id;  /* x-request-id: the caller's request id */
	const char *traceparent; /* traceparent: zrpc_call_child_traceparent */
	const char *tracestate;  /* tracestate: as the caller sent it */
};

/*
 * zos_backends_generate for a call with CONTEXT (NULL = none): a remote
 * model's Generate carries its request id and trace context.
 * Locking: none; blocks; no zOS lock may be held.
 */
zrpc_status zos_backends_generate_for(struct zos_backends *backends,
    const struct zos_backend_context *context, const char *model,
    const char *prompt, uint32_t max_tokens, uint32_t timeout_ms,
    char **out_text);

/* Closes every client and frees BACKENDS; no call may be in progress. */
void zos_backends_destroy(struct zos_backends *backends);

#endif /* ZOS_BACKEND_H */
