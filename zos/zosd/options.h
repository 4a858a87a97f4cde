/*
 * zosd's command line: parsed into a plain struct, so that tests can check
 * every flag without starting a server.
 */
#ifndef ZOS_OPTIONS_H
#define ZOS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define ZOS_MAX_LISTENERS 16
#define ZOS_DEFAULT_LISTEN "tcp://127.0.0.1:7447"
#define ZOS_DEFAULT_DATA_DIR "./zos-data"
#define ZOS_DEFAULT_METRICS_LISTEN "http://127.0.0.1:9447/metrics"
#define ZOS_MAX_BACKENDS 64
#define ZOS_MAX_WS_ORIGINS 16

#define ZOS_MAX_PEERS 64

/* --peer N=URL: node N serves at URL (named in FAILED_PRECONDITION). */
struct zos_peer_option {
	uint32_t    node;
	const char *url; /* points into argv */
};

/* --backend TASK=URL: TASK's primary model is the server at URL. */
struct zos_backend_option {
	char        task[257];
	const char *url; /* points into argv */
};

struct zos_options {
	const char         *listen[ZOS_MAX_LISTENERS]; /* point into argv */
	size_t              n_listen;
	unsigned            workers;           /* 0 = 2 x cores */
	unsigned            max_inflight;      /* default 1024 */
	size_t              max_message_bytes; /* default 4 MiB */
	unsigned            shutdown_grace_ms; /* default 5000 */
	zrpc_log_level      log_level;         /* default info */
	enum zos_log_format log_format;        /* default: json unless a tty */
	size_t              cache_capacity;    /* default 200 */
	size_t              max_sessions;      /* default 10000 */
	const char         *skills_file;       /* NULL = default skills */
	const char         *routing_file;      /* NULL = default routes */
	/* Session lifecycle: finished sessions expire after session_ttl_ms
	 * (--session-ttl, default 24 h); a token holds at most
	 * max_sessions_per_token sessions (0, the default: no cap but
	 * --max-sessions). */
	int64_t                   session_ttl_ms;
	size_t                    max_sessions_per_token;
	bool                      in_memory;
	const char               *data_dir;     /* default ./zos-data */
	bool                      data_dir_set; /* --data-dir given */
	struct zos_backend_option backends[ZOS_MAX_BACKENDS];
	size_t                    n_backends;
	unsigned backend_timeout_ms; /* calls without a deadline; 30000 */
	unsigned echo_delay_ms;      /* builtin:echo's pause; 0 */
	double   echo_fail_rate;     /* builtin:echo's failures; 0 */
	/* --metrics-listen: where the Prometheus endpoint serves, an
	 * http://HOST:PORT/PATH URL (port 0 picks a free one); NULL with
	 * "off", which also sets metrics_off. */
	const char *metrics_listen;
	bool        metrics_off;
	/* --auth-tokens FILE: the tokens and roles callers must present
	 * (zrpc/auth.h); NULL = none, every caller is admin, and then only
	 * loopback, ipc and inproc listeners are accepted unless
	 * --allow-unauthenticated. */
	const char *auth_tokens;
	bool        allow_unauthenticated;
	/* Bounds per peer (zrpc_server_config has what each means). */
	unsigned    send_timeout_ms;       /* default 10000 */
	unsigned    max_inflight_per_conn; /* 0 = max_inflight */
	unsigned    max_connections;       /* default 1024 */
	unsigned    idle_timeout_ms;       /* default 300000; 0 = off */
	size_t      max_buffered_bytes;    /* default 256 MiB */
	unsigned    max_metadata_entries;  /* default 64 */
	size_t      max_metadata_bytes;    /* default 16 KiB */
	const char *ws_allowed_origins[ZOS_MAX_WS_ORIGINS]; /* into argv */
	size_t      n_ws_allowed_origins;
	/* --metrics-token FILE: the endpoint's bearer token is FILE's first
	 * line (read by zosd at start-up); NULL = no token wanted. Without
	 * it, or --allow-unauthenticated, a metrics URL whose host is not
	 * loopback is a usage error. */
	const char *metrics_token_file;
	bool        show_help;
	bool        show_version;

	/* --tls-cert, --tls-key, --tls-client-ca: PEM files for the
	 * tls+tcp:// and wss:// listeners (point into argv; NULL = not
	 * given). A TLS listener needs the first two; the third makes
	 * client certificates required (mTLS). */
	const char *tls_cert;
	const char *tls_key;
	const char *tls_client_ca;
	/* --ipc-socket-mode: mode of ipc:// socket files; default 0600 */
	unsigned ipc_socket_mode;

	/* --access-log all|errors|off (default errors) and
	 * --access-log-sample R (0 < R <= 1, default 1: the fraction of OK
	 * lines kept); log.h says what each writes. */
	enum zos_access_log_mode access_log;
	double                   access_log_sample;

	/* --cache-url URL (redis://HOST:PORT or unix://PATH; NULL = no
	 * shared level), --cache-auth-file F (NULL = no AUTH) and
	 * --cache-ttl-s N (default 3600 with --cache-url): the response
	 * cache's shared second level (shared_cache.h). Point into argv. */
	const char *cache_url;
	const char *cache_auth_file;
	uint32_t    cache_ttl_s;
	/* Several nodes (sessions sharded by id). --node-id N (1..65535;
	 * 0 = not given: the data directory's, else 1); --peer N=URL,
	 * repeatable; --skills-home URL: the node that holds the skill
	 * vector (NULL = this one). */
	uint32_t               node_id;
	struct zos_peer_option peers[ZOS_MAX_PEERS];
	size_t                 n_peers;
	const char            *skills_home; /* points into argv */
};

enum zos_options_result {
	ZOS_OPTIONS_OK,    /* run the server */
	ZOS_OPTIONS_EXIT,  /* --help or --version handled; exit 0 */
	ZOS_OPTIONS_USAGE, /* bad usage, message written; exit 2 */
};

/*
 * Parses ARGV into *OPTS (defaults first). Help and version text go to
 * OUT, errors and usage to ERR. STDERR_IS_TTY picks the default log
 * format. getopt state is reset first, so it may be called repeatedly.
 */
enum zos_options_result zos_options_parse(struct zos_options *opts, int argc,
    char **argv, FILE *out, FILE *err, bool stderr_is_tty);

/*
 * True when URL is what --metrics-listen accepts: http://HOST:PORT/PATH
 * with a host, an explicit port (0 to 65535) and a path, and no user,
 * query or fragment. Otherwise false, with the reason in WHY.
 */
bool zos_options_metrics_url_valid(const char *url, char *why, size_t why_len);

/*
 * True when a listener on URL can only be reached from this machine
 * without going through a network interface: ipc://, inproc://, or a
 * tcp, tls+tcp or ws(s) URL whose host is in 127.0.0.0/8, ::1 or
 * localhost. tcp://0.0.0.0, a "*" host and an empty host are not.
 */
bool zos_options_url_is_loopback(const char *url);

/*
 * Parses a duration: a whole number and a unit, s, m or h ("90s", "30m",
 * "24h"), from 1 s to 87600 h (10 years), into *MS. False otherwise.
 */
bool zos_options_duration(const char *text, int64_t *ms);

/*
 * True when the host of URL (an http:// URL that
 * zos_options_metrics_url_valid accepts) is loopback: localhost,
 * 127.0.0.0/8, ::1 or ::ffff:127.x.x.x. Any other name or address is not.
 */
bool zos_options_metrics_url_loopback(const char *url);

/* Writes the full --help text to OUT. */
void zos_options_help(FILE *out);

#endif /* ZOS_OPTIONS_H */
