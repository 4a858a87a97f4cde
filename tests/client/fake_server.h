/*
 * A fake zrpc server for the client tests: raw nng rep0, no server runtime.
 *
 * N worker threads each own a rep0 context, unpack zrpc.v1.Request and
 * answer by method (service "zrpc.test.Fake"; payloads are
 * zrpc.v1.HealthCheckRequest, whose one string field carries test data):
 *
 *   Echo        OK, the request payload back
 *   Fail        payload "CODE:MESSAGE": that code and message
 *   Gate        waits until the test releases it, then echoes
 *   Never       never replies
 *   Garbage     a reply that is not a zrpc.v1.Response
 *   BadPayload  OK with a payload that is not a HealthCheckRequest
 *   Big         payload "N": OK with a HealthCheckRequest of N bytes
 *   Drop        counts, then closes the connection without replying
 *   Metadata    payload "CODE" (or ""): that code (OK echoes the payload),
 *               with reply metadata x-request-id (the request's, else
 *               "fake-request-id") and x-fake-custom: "custom value"
 *   MetadataFlood  payload "N": OK with N reply metadata entries
 *               "k<i>": "v" (a hostile server)
 *   /zrpc.v1.Health/Check  OK, SERVING (NOT_SERVING after
 *               fake_server_serving(server, false))
 *   other       UNIMPLEMENTED
 *
 * The server counts what it sees (fake_server_wait blocks, bounded, until
 * a counter reaches a value) and records the last request's method,
 * timeout and metadata. Nothing here sleeps to synchronise.
 */
#ifndef ZRPC_TESTS_CLIENT_FAKE_SERVER_H
#define ZRPC_TESTS_CLIENT_FAKE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_ECHO "/zrpc.test.Fake/Echo"
#define FAKE_FAIL "/zrpc.test.Fake/Fail"
#define FAKE_GATE "/zrpc.test.Fake/Gate"
#define FAKE_NEVER "/zrpc.test.Fake/Never"
#define FAKE_GARBAGE "/zrpc.test.Fake/Garbage"
#define FAKE_BAD_PAYLOAD "/zrpc.test.Fake/BadPayload"
#define FAKE_BIG "/zrpc.test.Fake/Big"
#define FAKE_DROP "/zrpc.test.Fake/Drop"
#define FAKE_METADATA "/zrpc.test.Fake/Metadata"
#define FAKE_METADATA_FLOOD "/zrpc.test.Fake/MetadataFlood"
#define FAKE_HEALTH "/zrpc.v1.Health/Check"

/* Counters, for fake_server_count and fake_server_wait. */
enum fake_counter {
	FAKE_RECEIVED,     /* requests received (any method) */
	FAKE_GATED,        /* Gate calls that reached the gate */
	FAKE_GATE_REPLIED, /* Gate replies handed to nng after release */
	FAKE_DROPPED,      /* Drop calls executed */
	FAKE_REFUSED,      /* connections refused (opts.refuse) */
	FAKE_ECHOED,       /* Echo calls answered */
	FAKE_HEALTHS,      /* Health/Check calls answered */
	FAKE_COUNTERS,
};

/* Longest key, value or method recorded. */
#define FAKE_TEXT_MAX 128
/* Metadata entries recorded from the last request. */
#define FAKE_METADATA_MAX 8

/* What the server saw in the last request it received. */
struct fake_record {
	char     method[FAKE_TEXT_MAX];
	uint32_t timeout_ms;
	size_t   n_metadata;
	char     keys[FAKE_METADATA_MAX][FAKE_TEXT_MAX];
	char     values[FAKE_METADATA_MAX][FAKE_TEXT_MAX];
};

struct fake_server;

/* Options; NULL means 4 workers, no TLS. */
struct fake_server_opts {
	int         workers;      /* 0 = 4 */
	const char *tls_cert_pem; /* with tls+tcp:// URLs */
	const char *tls_key_pem;
	/* Closes every connection as soon as it is made, as a zrpc server
	 * at its max_connections does (in nng's ADD_PRE notification),
	 * until fake_server_refuse(server, false). */
	bool refuse;
	/* When set, every Gate call appends "gate <payload>\n" to this
	 * file before it waits (tests that kill the server's process). */
	const char *run_log;
	/* Health/Check answers NOT_SERVING from the start (see
	 * fake_server_serving). */
	bool not_serving;
};

/*
 * Starts a server listening on URL (a tcp or tls+tcp URL may use port 0;
 * fake_server_url then gives the real one). Returns 0 or an nng error.
 */
int fake_server_start(struct fake_server **out, const char *url,
    const struct fake_server_opts *opts);

/* The URL clients should dial (port 0 resolved). */
const char *fake_server_url(const struct fake_server *server);

/*
 * "Kills" the server: closes its socket (dropping every connection), then
 * lets gated calls go so that the workers finish. Idempotent.
 */
void fake_server_kill(struct fake_server *server);

/* Kills the server, joins its workers and frees it. NULL is a no-op. */
void fake_server_stop(struct fake_server *server);

/*
 * A server started with opts.refuse: whether it goes on refusing new
 * connections (true) or serves them (false).
 */
void fake_server_refuse(struct fake_server *server, bool refuse);

/* Whether Health/Check answers SERVING (the default) or NOT_SERVING. */
void fake_server_serving(struct fake_server *server, bool serving);

/* Lets N more Gate calls through. */
void fake_server_release(struct fake_server *server, int n);

/* Current value of COUNTER. */
int fake_server_count(struct fake_server *server, enum fake_counter counter);

/*
 * Waits until COUNTER reaches AT_LEAST, at most TIMEOUT_MS. Returns true
 * when it did.
 */
bool fake_server_wait(struct fake_server *server, enum fake_counter counter,
    int at_least, int timeout_ms);

/* Copies the record of the last request into *OUT. */
void fake_server_last(struct fake_server *server, struct fake_record *out);

#endif /* ZRPC_TESTS_CLIENT_FAKE_SERVER_H */
