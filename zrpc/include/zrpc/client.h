/*
 * zrpc client runtime: a connection to one zrpc server, shared by any
 * number of threads.
 *
 * Every call opens its own nng context on the client's req0 socket, so
 * calls from many threads (or many asynchronous calls from one thread) are
 * in flight at once and each reply is matched to its own request. The req0
 * re-send timer is off: a call runs at most once, and its deadline (not a
 * re-send) decides when the caller stops waiting. Nothing here aborts or
 * exits: every failure comes back as a zrpc_status.
 */
#ifndef ZRPC_CLIENT_H
#define ZRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "zrpc/service.h"
#include "zrpc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options for zrpc_client_open; NULL means all defaults. */
typedef struct zrpc_client_opts {
	/*
	 * How long a call waits for a connection to the server when there is
	 * none, before it fails with UNAVAILABLE (the call's own deadline wins
	 * when it is sooner). 0 = default, 5000 ms.
	 */
	uint32_t connect_timeout_ms;
	/*
	 * Largest request sent and reply accepted, in envelope bytes (the
	 * zrpc.v1.Request or Response; nng's header is not counted); 0 =
	 * default, 4 MiB.
	 */
	size_t max_message_bytes;
	/*
	 * TLS (tls+tcp:// and wss:// URLs). The server's certificate is
	 * always verified; there is no way to turn that off. TLS_CA_FILE:
	 * PEM CA certificates it must chain to; NULL = the system store
	 * ($SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt or the
	 * distribution's equivalent; zrpc_client_open fails with
	 * FAILED_PRECONDITION when there is none). TLS 1.2 at least.
	 */
	const char *tls_ca_file;
	/* TLS: server name to verify; NULL = host part of the URL. */
	const char *tls_server_name;
	/*
	 * TLS: the client certificate (chain, PEM) and its unencrypted
	 * private key (PEM), for a server that requires one (mTLS); both or
	 * neither. NULL = none.
	 */
	const char *tls_cert_file;
	const char *tls_key_file;
	/*
	 * Precision bits (1..10) of the client's latency histograms
	 * (zrpc_client_stats): a bucket is at most 1/2^P of its value wide,
	 * and a method's histogram takes (45 - P) * 2^P * 8 bytes, from its
	 * first call. 0 = default, 5 (under 3.2 %, 10 KiB); zos-load uses
	 * 7 (under 1 %, 38 KiB). zrpc_client_open refuses values above 10.
	 */
	unsigned metrics_precision;
} zrpc_client_opts;

/*
 * Request ids. Every call carries metadata x-request-id: the caller's own
 * when zrpc_call_opts.metadata has that key (it is sent as given), else
 * one the client makes, "<16 hex digits>-<hex counter>", where the digits
 * are random per client and the counter counts the client's calls, so
 * ids differ between calls and between clients. A zrpc server logs the id
 * and sends it back in the reply metadata (zrpc_call_opts.reply_metadata),
 * which is how a caller reads the one the client made.
 */

/* Most servers one client takes. */
#define ZRPC_CLIENT_MAX_SERVERS 64

/*
 * Opens a client for URL (any nng URL: tcp://, ipc://, inproc://, ws://,
 * tls+tcp://) and starts connecting. URL may also be a comma-separated
 * list of URLs, "tcp://a:1,tcp://b:2" (spaces and tabs around each are
 * ignored; no URL may contain a comma): the same as zrpc_client_open_list
 * with them. A server that is not there yet is not an error: the client
 * keeps reconnecting and calls fail with UNAVAILABLE until it is up. On
 * success *OUT owns the client (close it with zrpc_client_close). Fails
 * with INVALID_ARGUMENT for a malformed URL (the message names it), an
 * empty item in a list, a URL listed twice, more than
 * ZRPC_CLIENT_MAX_SERVERS URLs or, for a TLS URL, a TLS file that cannot
 * be read or parsed (the message names it), and FAILED_PRECONDITION for a
 * TLS URL with no CA file when the system has no trust store. The TLS
 * files are read here, once.
 */
zrpc_status zrpc_client_open(
    zrpc_client **out, const char *url, const zrpc_client_opts *opts);

/*
 * Opens a client for N_URLS servers (1..ZRPC_CLIENT_MAX_SERVERS; URLS and
 * its strings are copied), each as zrpc_client_open does for one URL:
 * one req0 socket and dialer per server, OPTS for all of them (a TLS
 * server's name is its own URL's host unless OPTS->tls_server_name is
 * set). Errors as zrpc_client_open's.
 *
 * Calls go to one server each. A call with zrpc_call_opts.server_url set
 * goes to that server only; any other call goes to a healthy server: the
 * one with the fewest calls of this client in flight, ties taken in turn
 * (so one caller's calls alternate). A server is healthy from its first
 * connection until that connection drops; one that never connected stops
 * being tried first once a call found no connection to it within
 * connect_timeout_ms. A server that is not healthy is skipped until it
 * answers zrpc.v1.Health/Check (the client probes it in the background:
 * one call at a time, each bounded, with a back-off up to 0.5 s; a client
 * of one server never probes: its calls simply wait for its connection).
 * When no server is healthy, a call waits for a connection to one of them
 * (a server that comes up meanwhile takes it over), and fails with
 * UNAVAILABLE within connect_timeout_ms.
 *
 * A call is never run twice. It may go to another server than the one
 * first chosen only while its request provably never left the client
 * (no connection took it); once a connection took it, a drop of that
 * connection fails the call with UNAVAILABLE, and the call is not sent
 * again anywhere. Probes are not counted in zrpc_client_stats.
 */
zrpc_status zrpc_client_open_list(zrpc_client **out, const char *const *urls,
    size_t n_urls, const zrpc_client_opts *opts);

/* How many servers CLIENT has (0 for NULL). */
size_t zrpc_client_n_servers(const zrpc_client *client);

/*
 * The URL of CLIENT's server I (0 <= I < zrpc_client_n_servers), as given
 * (trimmed of surrounding spaces), in the order given; NULL when I is out
 * of range. Valid until zrpc_client_close.
 */
const char *zrpc_client_server_url(const zrpc_client *client, size_t i);

/*
 * Closes CLIENT: calls still in flight complete with CANCELLED (their
 * callbacks run before this returns). NULL is a no-op.
 */
void zrpc_client_close(zrpc_client *client);

/*
 * Blocking call of METHOD with REQUEST (of METHOD->input's type). On OK,
 * *REPLY is a newly unpacked METHOD->output message that the caller frees
 * with protobuf_c_message_free_unpacked(*REPLY, NULL); on error *REPLY is
 * NULL. Returns DEADLINE_EXCEEDED when OPTS->timeout_ms passes,
 * UNAVAILABLE when no server (or not the one OPTS->server_url names) can
 * be reached or the connection drops, INVALID_ARGUMENT when
 * OPTS->server_url is not one of the client's URLs,
 * and the server's own status otherwise. With OPTS->reply_metadata set,
 * the reply's metadata is stored there (see zrpc_call_opts). Safe from any
 * thread.
 */
zrpc_status zrpc_client_call(zrpc_client *client,
    const struct zrpc_method *method, const ProtobufCMessage *request,
    ProtobufCMessage **reply, const zrpc_call_opts *opts);

/*
 * Asynchronous call. Returns OK when the call has started: then INVOKE(CB,
 * ARG, status, reply) runs exactly once, on an nng thread, when it
 * completes (the callback owns the reply). Returns an error, without ever
 * running the callback, when the call could not start. With
 * OPTS->reply_metadata set, the reply's metadata is stored there before
 * the callback runs; the callback (or whoever it hands it to) frees it.
 */
zrpc_status zrpc_client_call_async(zrpc_client *client,
    const struct zrpc_method *method, const ProtobufCMessage *request,
    const zrpc_call_opts *opts, zrpc_reply_invoke_fn invoke, void (*cb)(void),
    void *arg);

/*
 * Raw-bytes call for generic tools (zosctl call, zos-load): PATH is the
 * wire method name, PAYLOAD the packed input. On OK, *REPLY (malloc'd,
 * caller frees with free) and *REPLY_LEN hold the packed output; on error
 * *REPLY is NULL.
 */
zrpc_status zrpc_client_call_raw(zrpc_client *client, const char *path,
    const uint8_t *payload, size_t payload_len, uint8_t **reply,
    size_t *reply_len, const zrpc_call_opts *opts);

/*
 * Completion of an asynchronous raw call: REPLY (NULL unless OK) is valid
 * only during the callback.
 */
typedef void (*zrpc_raw_cb)(void *arg, const zrpc_status *status,
    const uint8_t *reply, size_t reply_len);

/* Asynchronous raw call; same contract as zrpc_client_call_async. */
zrpc_status zrpc_client_call_raw_async(zrpc_client *client, const char *path,
    const uint8_t *payload, size_t payload_len, const zrpc_call_opts *opts,
    zrpc_raw_cb cb, void *arg);

/*
 * Metadata of a reply (zrpc_call_opts.reply_metadata): N_ENTRIES key/value
 * pairs in the order the server sent them, among them x-request-id, which
 * a zrpc server always sends. Keys and values are NUL-terminated. One
 * allocation holds the struct, the entries and their strings; the caller
 * that received it owns it and frees it with zrpc_metadata_free. It is
 * bounded by the client's max_message_bytes, like the reply it came in,
 * and to 1024 entries: a reply with more is refused (RESOURCE_EXHAUSTED)
 * before it is unpacked.
 */
struct zrpc_metadata {
	size_t                            n_entries;
	const struct zrpc_metadata_entry *entries;
};

/*
 * The value of KEY in MD (the first, when the server sent it more than
 * once), or NULL when it is absent or MD is NULL. Valid as long as MD.
 */
const char *zrpc_metadata_get(const struct zrpc_metadata *md, const char *key);

/* Frees MD. NULL is a no-op. */
void zrpc_metadata_free(struct zrpc_metadata *md);

/*
 * Client-side metrics. A client counts every call it makes, per method
 * path: by the status code the call ended with (the server's, or the
 * client's own: DEADLINE_EXCEEDED, UNAVAILABLE, a request too large...),
 * and its latency, in nanoseconds from the moment the call function was
 * entered to the moment the outcome is known (for an asynchronous call,
 * just before its callback runs, so a callback that counts its calls
 * never sees more than the metrics do). Typed, raw, blocking and
 * asynchronous calls alike; calls refused for their arguments (NULL
 * ones, a typed request of the wrong type) are not counted. Recording takes no
 * lock (atomic counters and a lock-free histogram, zrpc/histogram.h), and
 * reading never stops a call.
 *
 * A client keeps at most 96 paths apart; the calls of any further path,
 * or of a path longer than 256 bytes, are counted together under the
 * path "(other)". A method's histogram is allocated at its first call; a
 * call for which that allocation fails is not counted.
 */
struct zrpc_histogram;

/* The metrics of one method path of a client. */
struct zrpc_client_method_stats {
	const char *path;  /* wire name, "/pkg.Service/Method", or "(other)" */
	uint64_t    calls; /* calls that ended: the sum of CODES */
	uint64_t    errors;                 /* calls - codes[ZRPC_OK] */
	uint64_t    codes[ZRPC_CODE_COUNT]; /* calls by status code */
	/*
	 * Their latencies in nanoseconds (zrpc/histogram.h: quantiles,
	 * count, sum, max, buckets). Owned by the client: valid until
	 * zrpc_client_close. Its count can differ from CALLS while calls
	 * are completing (the two are not read at one instant).
	 */
	const struct zrpc_histogram *latency;
};

/* Called by zrpc_client_stats once per method; STATS valid during the call. */
typedef void (*zrpc_client_stats_fn)(
    void *arg, const struct zrpc_client_method_stats *stats);

/*
 * Calls FN(ARG, stats) for every method path CLIENT has counted a call of,
 * in the order of their paths (strcmp), and returns how many there were.
 * The counts of each are read one by one, atomically each, while calls
 * may go on. FN may call other client functions, but must not close the
 * client. NULL CLIENT or FN: returns 0.
 */
size_t zrpc_client_stats(
    zrpc_client *client, zrpc_client_stats_fn fn, void *arg);

/*
 * The metrics of PATH (the wire name as it was called) in *OUT. Returns
 * OK; NOT_FOUND when CLIENT has counted no call of PATH (*OUT then holds
 * zero counts and a NULL histogram); INVALID_ARGUMENT for NULL arguments.
 */
zrpc_status zrpc_client_method_stats(zrpc_client *client, const char *path,
    struct zrpc_client_method_stats *out);

/*
 * Sets every count and histogram of CLIENT back to zero (the paths stay
 * known). Not atomic as a whole: a call that ends meanwhile may be
 * counted or not, or in its code and not its latency; reset when no call
 * is in flight (after a warm-up, say) for exact counts. NULL is a no-op.
 */
void zrpc_client_stats_reset(zrpc_client *client);

/* A zrpc_reply_invoke_fn for untyped callbacks of type zrpc_call_cb. */
typedef void (*zrpc_call_cb)(
    void *arg, const zrpc_status *status, ProtobufCMessage *reply);
void zrpc_reply_invoke_generic(void (*cb)(void), void *arg,
    const zrpc_status *status, ProtobufCMessage *reply);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_CLIENT_H */
