/*
 * zosd's command line; see options.h. Numbers are parsed strictly (the
 * whole argument, within range), and every error names the flag.
 */
#include "options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>

#include "shared_cache.h"

enum {
	OPT_LISTEN = 256,
	OPT_WORKERS,
	OPT_MAX_INFLIGHT,
	OPT_MAX_MESSAGE_BYTES,
	OPT_SHUTDOWN_GRACE_MS,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
	OPT_IN_MEMORY,
	OPT_CACHE_CAPACITY,
	OPT_MAX_SESSIONS,
	OPT_SKILLS_FILE,
	OPT_ROUTING_FILE,
	OPT_METRICS_LISTEN,
	OPT_DATA_DIR,
	OPT_BACKEND,
	OPT_BACKEND_TIMEOUT_MS,
	OPT_ECHO_DELAY_MS,
	OPT_ECHO_FAIL_RATE,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CLIENT_CA,
	OPT_IPC_SOCKET_MODE,
	OPT_AUTH_TOKENS,
	OPT_ALLOW_UNAUTHENTICATED,
	OPT_SESSION_TTL,
	OPT_MAX_SESSIONS_PER_TOKEN,
	/* bounds per peer */
	OPT_SEND_TIMEOUT_MS,
	OPT_MAX_INFLIGHT_PER_CONN,
	OPT_MAX_CONNECTIONS,
	OPT_IDLE_TIMEOUT_MS,
	OPT_MAX_BUFFERED_BYTES,
	OPT_MAX_METADATA_ENTRIES,
	OPT_MAX_METADATA_BYTES,
	OPT_WS_ALLOWED_ORIGIN,
	OPT_METRICS_TOKEN,
	/* the access log */
	OPT_ACCESS_LOG,
	OPT_ACCESS_LOG_SAMPLE,
	/* the shared response cache */
	OPT_CACHE_URL,
	OPT_CACHE_AUTH_FILE,
	OPT_CACHE_TTL_S,
	/* several nodes */
	OPT_NODE_ID,
	OPT_PEER,
	OPT_SKILLS_HOME,
	OPT_VERSION,
	OPT_HELP,
};

static const struct option options_long[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "max-message-bytes", required_argument, NULL,
	    OPT_MAX_MESSAGE_BYTES },
	{ "shutdown-grace-ms", required_argument, NULL,
	    OPT_SHUTDOWN_GRACE_MS },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "in-memory", no_argument, NULL, OPT_IN_MEMORY },
	{ "cache-capacity", required_argument, NULL, OPT_CACHE_CAPACITY },
	{ "max-sessions", required_argument, NULL, OPT_MAX_SESSIONS },
	{ "skills-file", required_argument, NULL, OPT_SKILLS_FILE },
	{ "routing-file", required_argument, NULL, OPT_ROUTING_FILE },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "backend-timeout-ms", required_argument, NULL,
	    OPT_BACKEND_TIMEOUT_MS },
	{ "echo-delay-ms", required_argument, NULL, OPT_ECHO_DELAY_MS },
	{ "echo-fail-rate", required_argument, NULL, OPT_ECHO_FAIL_RATE },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA },
	{ "ipc-socket-mode", required_argument, NULL, OPT_IPC_SOCKET_MODE },
	{ "auth-tokens", required_argument, NULL, OPT_AUTH_TOKENS },
	{ "allow-unauthenticated", no_argument, NULL,
	    OPT_ALLOW_UNAUTHENTICATED },
	{ "session-ttl", required_argument, NULL, OPT_SESSION_TTL },
	{ "max-sessions-per-token", required_argument, NULL,
	    OPT_MAX_SESSIONS_PER_TOKEN },
	/* bounds per peer */
	{ "send-timeout-ms", required_argument, NULL, OPT_SEND_TIMEOUT_MS },
	{ "max-inflight-per-conn", required_argument, NULL,
	    OPT_MAX_INFLIGHT_PER_CONN },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "idle-timeout-ms", required_argument, NULL, OPT_IDLE_TIMEOUT_MS },
	{ "max-buffered-bytes", required_argument, NULL,
	    OPT_MAX_BUFFERED_BYTES },
	{ "max-metadata-entries", required_argument, NULL,
	    OPT_MAX_METADATA_ENTRIES },
	{ "max-metadata-bytes", required_argument, NULL,
	    OPT_MAX_METADATA_BYTES },
	{ "ws-allowed-origin", required_argument, NULL,
	    OPT_WS_ALLOWED_ORIGIN },
	{ "metrics-token", required_argument, NULL, OPT_METRICS_TOKEN },
	/* the access log */
	{ "access-log", required_argument, NULL, OPT_ACCESS_LOG },
	{ "access-log-sample", required_argument, NULL,
	    OPT_ACCESS_LOG_SAMPLE },
	/* the shared response cache */
	{ "cache-url", required_argument, NULL, OPT_CACHE_URL },
	{ "cache-auth-file", required_argument, NULL, OPT_CACHE_AUTH_FILE },
	{ "cache-ttl-s", required_argument, NULL, OPT_CACHE_TTL_S },
	{ "node-id", required_argument, NULL, OPT_NODE_ID },
	{ "peer", required_argument, NULL, OPT_PEER },
	{ "skills-home", required_argument, NULL, OPT_SKILLS_HOME },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static const char options_usage[] =
    "usage: zosd [--listen URL]... [--workers N] [--max-inflight N]\n"
    "            [--max-message-bytes N] [--shutdown-grace-ms N]\n"
    "            [--log-level L] [--log-format json|text]\n"
    "            [--access-log all|errors|off] [--access-log-sample R]\n"
    "            [--data-dir DIR | --in-memory] [--metrics-listen URL|off]\n"
    "            [--cache-capacity N] [--max-sessions N] [--skills-file F]\n"
    "            [--routing-file F] [--backend TASK=URL]...\n"
    "            [--backend-timeout-ms N] [--echo-delay-ms N]\n"
    "            [--echo-fail-rate R]\n"
    "            [--tls-cert F --tls-key F [--tls-client-ca F]]\n"
    "            [--ipc-socket-mode MODE] [--auth-tokens FILE]\n"
    "            [--metrics-token FILE] [--allow-unauthenticated]\n"
    "            [--session-ttl DURATION] [--max-sessions-per-token N]\n"
    "            [--send-timeout-ms N] [--max-inflight-per-conn N]\n"
    "            [--max-connections N] [--idle-timeout-ms N]\n"
    "            [--max-buffered-bytes N] [--max-metadata-entries N]\n"
    "            [--max-metadata-bytes N] [--ws-allowed-origin ORIGIN]...\n"
    "            [--cache-url URL [--cache-auth-file F] [--cache-ttl-s N]]\n"
    "            [--node-id N] [--peer N=URL]... [--skills-home URL]\n"
    "            [--version] [--help]\n";

void
zos_options_help(FILE *out)
{
	fputs("zosd - the zos RPC server\n\n", out);
	fputs(options_usage, out);
	fputs(
	    "\n"
	    "Serves zrpc calls (protobuf over nng req/rep) on every --listen "
	    "URL.\n"
	    "\n"
	    "  --listen URL             listen on URL; repeatable; any nng "
	    "URL\n"
	    "                           (tcp://, ipc://, inproc://, ws://,\n"
	    "                           tls+tcp://, wss://: those two need "
	    "--tls-cert)\n"
	    "                           [default " ZOS_DEFAULT_LISTEN "]\n"
	    "  --workers N              threads for handlers that may block\n"
	    "                           [default 2 x cores]\n"
	    "  --max-inflight N         calls served at once; beyond it "
	    "calls get\n"
	    "                           RESOURCE_EXHAUSTED [default 1024]\n"
	    "  --max-message-bytes N    largest request accepted, refused "
	    "before\n"
	    "                           it is read [default 4194304]\n"
	    "  --shutdown-grace-ms N    on SIGINT/SIGTERM, time for calls in "
	    "flight\n"
	    "                           to finish [default 5000]; a second "
	    "one exits\n"
	    "                           at once (status 128+signal) after "
	    "writing\n"
	    "                           the store, as does one during "
	    "start-up;\n"
	    "                           if the drain is not over 2 s after "
	    "the grace,\n"
	    "                           zosd writes the store and exits "
	    "with status 3;\n"
	    "                           SIGHUP reloads --auth-tokens and "
	    "--routing-file\n"
	    "                           (a bad file keeps the one in use); "
	    "SIGUSR1, SIGUSR2,\n"
	    "                           SIGALRM, SIGIO, SIGPWR are logged "
	    "and ignored\n"
	    "  --log-level L            debug, info, warn or error "
	    "[default info]\n"
	    "  --log-format F           json or text [default json, text "
	    "on a tty]\n"
	    "  --access-log MODE        a line per call (msg \"call\": "
	    "method, "
	    "code,\n"
	    "                           latency_ms, request_id, peer, role; "
	    "message\n"
	    "                           on errors) for 'all' calls, only "
	    "'errors'\n"
	    "                           (code not OK), or 'off' [default "
	    "errors]\n"
	    "  --access-log-sample R    keep a fraction R (0 < R <= 1) of the "
	    "OK\n"
	    "                           lines, evenly: 0.01 keeps every "
	    "100th;\n"
	    "                           error lines are all kept [default 1]\n"
	    "                           Lines go through a queue (8192 lines, "
	    "1 MiB)\n"
	    "                           written by a thread of their own: a "
	    "slow\n"
	    "                           stderr never slows a call; when the "
	    "queue is\n"
	    "                           full a line is dropped and counted\n"
	    "                           (zos_log_lines_dropped_total)\n"
	    "  --data-dir DIR           keep skills and sessions in "
	    "DIR/zos.db "
	    "(SQLite),\n"
	    "                           created if missing; a call that "
	    "changes them\n"
	    "                           answers only once the change is "
	    "committed\n"
	    "                           [default " ZOS_DEFAULT_DATA_DIR "]\n"
	    "  --in-memory              keep everything in memory (lost at "
	    "exit)\n"
	    "  --cache-capacity N       responses kept in the cache "
	    "[default 200]\n"
	    "  --max-sessions N         proof sessions kept, up to 1000000 "
	    "[default\n"
	    "                           10000]\n"
	    "  --skills-file F          skills, one 'name level' per line; "
	    "seeds a\n"
	    "                           new data directory, re-read by "
	    "Skills/Reload\n"
	    "  --routing-file F         routes, one 'task primary fallback' "
	    "per line;\n"
	    "                           re-read on SIGHUP (remote models "
	    "must be\n"
	    "                           ones zosd connected to at start)\n"
	    "  --backend TASK=URL       TASK's primary model is the "
	    "zos.v1.ModelBackend\n"
	    "                           server at URL; repeatable\n"
	    "  --backend-timeout-ms N   backend call time for a Complete "
	    "call with\n"
	    "                           no deadline [default 30000]\n"
	    "  --echo-delay-ms N        the builtin:echo model's pause per "
	    "call [0]\n"
	    "  --echo-fail-rate R       fraction (0 to 1) of builtin:echo "
	    "calls that\n"
	    "                           fail, for tests and load scenarios "
	    "[0]\n"
	    "  --session-ttl DURATION   finished sessions (SOLVED, "
	    "ABANDONED) are\n"
	    "                           deleted, from the data directory "
	    "too, this\n"
	    "                           long after they finished; a number "
	    "and s, m\n"
	    "                           or h (90s, 30m, 24h) [default 24h]\n"
	    "  --max-sessions-per-token N  sessions one caller (one "
	    "authorization\n"
	    "                           value; callers without one share "
	    "one) may\n"
	    "                           hold, finished ones included until "
	    "they\n"
	    "                           expire; beyond it Start is "
	    "RESOURCE_EXHAUSTED\n"
	    "                           [default 0: no cap but "
	    "--max-sessions]\n"
	    "  --cache-url URL          share the response cache through "
	    "Redis at\n"
	    "                           redis://HOST:PORT or unix://PATH: "
	    "a second\n"
	    "                           level after the local one, and one "
	    "model\n"
	    "                           call per prompt across the nodes; "
	    "Redis down:\n"
	    "                           the local cache only, until it is "
	    "back\n"
	    "  --cache-auth-file F      Redis AUTH from F's first line: "
	    "PASSWORD or\n"
	    "                           USER PASSWORD (an ACL user)\n"
	    "  --cache-ttl-s N          seconds an answer stays in Redis "
	    "[default\n"
	    "                           3600]\n"
	    "  --metrics-listen URL     serve Prometheus metrics (text format "
	    "0.0.4)\n"
	    "                           at URL, http://HOST:PORT/PATH; port "
	    "0 picks\n"
	    "                           a free one; 'off' serves none\n"
	    "                           [default " ZOS_DEFAULT_METRICS_LISTEN
	    "]\n"
	    "  --tls-cert F             certificate chain (PEM, leaf first) "
	    "for the\n"
	    "                           tls+tcp:// and wss:// listeners; "
	    "TLS 1.2 at\n"
	    "                           least\n"
	    "  --tls-key F              its private key (PEM, unencrypted); "
	    "keep it\n"
	    "                           mode 0600: a key others can read is "
	    "warned of\n"
	    "  --tls-client-ca F        CA certificates (PEM) for client "
	    "certificates:\n"
	    "                           every TLS client must present one "
	    "(mTLS)\n"
	    "  --ipc-socket-mode MODE   octal mode of ipc:// socket files "
	    "[default 0600]\n"
	    "  --auth-tokens FILE       callers must send 'authorization: "
	    "Bearer T'\n"
	    "                           with a token T of FILE, one 'token "
	    "role' per\n"
	    "                           line (read, write or admin; '#' "
	    "comments);\n"
	    "                           FILE must be mode 0600 or 0400; "
	    "SIGHUP\n"
	    "                           re-reads it (a bad file keeps the "
	    "old tokens)\n"
	    "  --allow-unauthenticated  without --auth-tokens every caller "
	    "is admin,\n"
	    "                           so zosd refuses to listen on "
	    "anything but\n"
	    "                           loopback, ipc:// or inproc:// "
	    "(exit 2);\n"
	    "                           this flag allows it, with a "
	    "warning;\n"
	    "                           it also allows a non-loopback "
	    "--metrics-listen\n"
	    "                           without --metrics-token\n"
	    "  --send-timeout-ms N      a reply the peer does not take within "
	    "N ms\n"
	    "                           is dropped and the connection "
	    "closed\n"
	    "                           [default 10000]\n"
	    "  --max-inflight-per-conn N  requests one connection may have "
	    "held\n"
	    "                           (served or replies unsent); beyond "
	    "it\n"
	    "                           RESOURCE_EXHAUSTED, beyond twice it "
	    "the\n"
	    "                           connection is closed [default "
	    "--max-inflight]\n"
	    "  --max-connections N      connections at once; more are closed "
	    "on\n"
	    "                           arrival [default 1024]\n"
	    "  --idle-timeout-ms N      close a connection with nothing in "
	    "flight\n"
	    "                           that sent no complete request for N "
	    "ms;\n"
	    "                           this also bounds a half-sent "
	    "request\n"
	    "                           (nng sees only whole ones); 0 = "
	    "never\n"
	    "                           [default 300000]\n"
	    "  --max-buffered-bytes N   bytes held for calls (requests in "
	    "flight,\n"
	    "                           replies unsent); beyond it new calls "
	    "get\n"
	    "                           RESOURCE_EXHAUSTED, as do those of a "
	    "connection\n"
	    "                           holding a quarter of it [default "
	    "268435456]\n"
	    "  --max-metadata-entries N request metadata entries per call; "
	    "beyond\n"
	    "                           it RESOURCE_EXHAUSTED [default 64]\n"
	    "  --max-metadata-bytes N   request metadata bytes per call "
	    "[default\n"
	    "                           16384]\n"
	    "  --ws-allowed-origin O    a browser Origin accepted on ws:// "
	    "and\n"
	    "                           wss:// listeners; repeatable; others "
	    "are\n"
	    "                           closed; no Origin (not a browser) is "
	    "fine\n"
	    "                           [default: none]\n"
	    "  --metrics-token FILE     the metrics endpoint wants "
	    "'Authorization:\n"
	    "                           Bearer TOKEN', TOKEN being FILE's "
	    "first line\n"
	    "                           (a file, so that the token is not "
	    "in ps);\n"
	    "                           others get 401. Needed for a metrics "
	    "URL\n"
	    "                           whose host is not loopback\n"
	    "  --node-id N              this node's id, 1 to 65535, put into "
	    "the\n"
	    "                           ids of the sessions it starts; kept "
	    "in\n"
	    "                           DATA_DIR/node-id, and a different "
	    "one for\n"
	    "                           that directory is refused [default: "
	    "the\n"
	    "                           directory's, else 1]\n"
	    "  --peer N=URL             node N serves at URL; a call naming "
	    "one of\n"
	    "                           its sessions gets FAILED_PRECONDITION "
	    "with\n"
	    "                           that URL; repeatable\n"
	    "  --skills-home URL        the node that holds the skill "
	    "vector;\n"
	    "                           Skills calls are forwarded to it "
	    "[default:\n"
	    "                           this node]\n"
	    "  --version                print the version and exit\n"
	    "  --help                   print this help and exit\n"
	    "\n"
	    "Built-in services: zrpc.v1.Health/Check, "
	    "zrpc.v1.Reflection/ListServices.\n"
	    "When ready, zosd logs 'listening on URL' for each listener, "
	    "then\n"
	    "'metrics on URL' for the metrics endpoint.\n"
	    "Exit status: 0 after a clean shutdown, 1 when it cannot start "
	    "(an\n"
	    "address in use, say), 2 for bad usage, 3 when the shutdown "
	    "watchdog\n"
	    "ended a drain that overran (the store is written first), "
	    "128+signal\n"
	    "for a second SIGTERM/SIGINT or one during start-up.\n",
	    out);
}

/* Parses a whole decimal number in [MIN, MAX]. */
static bool
options_number(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	char              *end;
	unsigned long long v;

	if (text[0] < '0' || text[0] > '9') {
		return false;
	}
	errno = 0;
	v     = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		return false;
	}
	*out = v;
	return true;
}

static enum zos_options_result options_bad(FILE *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes "zosd: <message>" and the usage to ERR. */
static enum zos_options_result
options_bad(FILE *err, const char *fmt, ...)
{
	va_list ap;

	fputs("zosd: ", err);
	va_start(ap, fmt);
	vfprintf(err, fmt, ap);
	va_end(ap);
	fputs("\n", err);
	fputs(options_usage, err);
	return ZOS_OPTIONS_USAGE;
}

bool
zos_options_metrics_url_valid(const char *url, char *why, size_t why_len)
{
	static const char scheme[] = "http://";
	const char       *host     = url + strlen(scheme);
	const char       *path, *port;
	nng_url          *parsed;
	uint64_t          number;
	char              digits[8];
	size_t            n;

	if (strncmp(url, scheme, strlen(scheme)) != 0) {
		snprintf(why, why_len,
		    strncmp(url, "https://", 8) == 0 ? "https is not supported"
		                                     : "not an http:// URL");
		return false;
	}
	if ((path = strchr(host, '/')) == NULL) {
		snprintf(why, why_len, "no path");
		return false;
	}
	if (memchr(host, '@', (size_t) (path - host)) != NULL) {
		snprintf(why, why_len, "no user part allowed");
		return false;
	}
	/* The port follows the last ':' of the host part (after the ']'
	 * of an IPv6 address). */
	port = NULL;
	for (const char *c = host; c < path; c++) {
		if (*c == ':') {
			port = c + 1;
		} else if (*c == ']') {
			port = NULL;
		}
	}
	if (port == NULL || port - 1 == host) {
		snprintf(why, why_len, port == NULL ? "no port" : "no host");
		return false;
	}
	n = (size_t) (path - port);
	if (n == 0 || n >= sizeof(digits)) {
		snprintf(why, why_len, "bad port");
		return false;
	}
	memcpy(digits, port, n);
	digits[n] = '\0';
	if (!options_number(digits, 0, 65535, &number)) {
		snprintf(why, why_len, "port wants 0 to 65535");
		return false;
	}
	if (strpbrk(path, "?# \t\r\n") != NULL) {
		snprintf(why, why_len,
		    "the path may not have a query, fragment or space");
		return false;
	}
	if (nng_url_parse(&parsed, url) != 0) {
		snprintf(why, why_len, "not a valid URL");
		return false;
	}
	nng_url_free(parsed);
	return true;
}

bool
zos_options_duration(const char *text, int64_t *ms)
{
	static const char    units[]   = "smh";
	static const int64_t unit_ms[] = { 1000, 60 * 1000, 3600 * 1000 };
	char                 number[24];
	size_t               len = strlen(text);
	const char          *unit;
	uint64_t             v;

	if (len < 2 || len > sizeof(number) ||
	    (unit = strchr(units, text[len - 1])) == NULL) {
		return false;
	}
	memcpy(number, text, len - 1);
	number[len - 1] = '\0';
	/* 87600 h is ten years, the most a finished session is kept. */
	if (!options_number(number, 1,
	        (uint64_t) (87600LL * 3600 * 1000 / unit_ms[unit - units]),
	        &v)) {
		return false;
	}
	*ms = (int64_t) v * unit_ms[unit - units];
	return true;
}

bool
zos_options_metrics_url_loopback(const char *url)
{
	nng_url        *parsed;
	struct in_addr  v4;
	struct in6_addr v6;
	bool            loopback = false;

	if (nng_url_parse(&parsed, url) != 0) {
		return false;
	}
	if (strcasecmp(parsed->u_hostname, "localhost") == 0) {
		loopback = true;
	} else if (inet_pton(AF_INET, parsed->u_hostname, &v4) == 1) {
		loopback = (ntohl(v4.s_addr) >> 24) == 127;
	} else if (inet_pton(AF_INET6, parsed->u_hostname, &v6) == 1) {
		loopback = IN6_IS_ADDR_LOOPBACK(&v6) ||
		    (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	}
	nng_url_free(parsed);
	return loopback;
}

/* Parses a fraction in [0, 1] ("0.25"). */
static bool
options_rate(const char *text, double *out)
{
	char  *end;
	double v;

	errno = 0;
	v     = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(v >= 0.0) ||
	    v > 1.0) {
		return false;
	}
	*out = v;
	return true;
}

/* Parses an octal file mode in [1, 0777] ("0600", "660"); 0 would lock
 * out even the owner. */
static bool
options_mode(const char *text, unsigned *out)
{
	char         *end;
	unsigned long v;

	if (text[0] < '0' || text[0] > '7') {
		return false;
	}
	errno = 0;
	v     = strtoul(text, &end, 8);
	if (errno != 0 || *end != '\0' || v == 0 || v > 0777) {
		return false;
	}
	*out = (unsigned) v;
	return true;
}

/*
 * The TLS flags go together: a certificate with its key, a client CA only
 * with them, and a TLS listener only with them.
 */
static enum zos_options_result
options_tls(const struct zos_options *opts, FILE *err)
{
	bool tls = opts->tls_cert != NULL && opts->tls_key != NULL;

	if (opts->tls_cert != NULL && opts->tls_key == NULL) {
		return options_bad(err, "--tls-cert needs --tls-key");
	}
	if (opts->tls_key != NULL && opts->tls_cert == NULL) {
		return options_bad(err, "--tls-key needs --tls-cert");
	}
	if (opts->tls_client_ca != NULL && !tls) {
		return options_bad(
		    err, "--tls-client-ca needs --tls-cert and --tls-key");
	}
	for (size_t i = 0; i < opts->n_listen && !tls; i++) {
		const char *url = opts->listen[i];

		if (strncmp(url, "tls+", 4) == 0 ||
		    strncmp(url, "wss", 3) == 0) {
			return options_bad(err,
			    "--listen %s needs --tls-cert and --tls-key", url);
		}
	}
	return ZOS_OPTIONS_OK;
}

/* --backend TASK=URL */
static enum zos_options_result
options_backend(struct zos_options *opts, const char *arg, FILE *err)
{
	const char *eq = strchr(arg, '=');
	size_t      task_len;

	if (eq == NULL || eq == arg || eq[1] == '\0') {
		return options_bad(
		    err, "--backend wants TASK=URL, not '%s'", arg);
	}
	task_len = (size_t) (eq - arg);
	if (task_len >= sizeof(opts->backends[0].task)) {
		return options_bad(err, "--backend: task name over 256 bytes");
	}
	if (strstr(eq + 1, "://") == NULL) {
		return options_bad(err,
		    "--backend %.*s: '%s' is not a URL (tcp://, ipc://, ...)",
		    (int) task_len, arg, eq + 1);
	}
	for (size_t i = 0; i < opts->n_backends; i++) {
		if (strlen(opts->backends[i].task) == task_len &&
		    memcmp(opts->backends[i].task, arg, task_len) == 0) {
			return options_bad(err,
			    "--backend: task '%.*s' given twice",
			    (int) task_len, arg);
		}
	}
	if (opts->n_backends == ZOS_MAX_BACKENDS) {
		return options_bad(
		    err, "--backend: at most %d", ZOS_MAX_BACKENDS);
	}
	memcpy(opts->backends[opts->n_backends].task, arg, task_len);
	opts->backends[opts->n_backends].task[task_len] = '\0';
	opts->backends[opts->n_backends].url            = eq + 1;
	opts->n_backends++;
	return ZOS_OPTIONS_OK;
}

/* --node-id, --peer and --skills-home (flag C with value ARG). */
static enum zos_options_result
options_cluster(struct zos_options *opts, int c, const char *arg, FILE *err)
{
	const char *eq;
	uint64_t    v;
	char        node[8];
	size_t      len;

	switch (c) {
	case OPT_NODE_ID:
		if (!options_number(arg, 1, 65535, &v)) {
			return options_bad(err,
			    "--node-id wants a number from 1 to 65535, not "
			    "'%s'",
			    arg);
		}
		opts->node_id = (uint32_t) v;
		return ZOS_OPTIONS_OK;
	case OPT_PEER:
		eq  = strchr(arg, '=');
		len = eq != NULL ? (size_t) (eq - arg) : 0;
		if (eq == NULL || len == 0 || len >= sizeof(node) ||
		    strstr(eq + 1, "://") == NULL) {
			return options_bad(
			    err, "--peer wants N=URL, not '%s'", arg);
		}
		memcpy(node, arg, len);
		node[len] = '\0';
		if (!options_number(node, 1, 65535, &v)) {
			return options_bad(err,
			    "--peer %s: the node id must be 1 to 65535", arg);
		}
		for (size_t i = 0; i < opts->n_peers; i++) {
			if (opts->peers[i].node == v) {
				return options_bad(
				    err, "--peer: node %s given twice", node);
			}
		}
		if (opts->n_peers == ZOS_MAX_PEERS) {
			return options_bad(
			    err, "--peer: at most %d", ZOS_MAX_PEERS);
		}
		opts->peers[opts->n_peers].node = (uint32_t) v;
		opts->peers[opts->n_peers].url  = eq + 1;
		opts->n_peers++;
		return ZOS_OPTIONS_OK;
	default: /* OPT_SKILLS_HOME */
		if (strstr(arg, "://") == NULL) {
			return options_bad(err,
			    "--skills-home wants a URL (tcp://, ipc://, ...), "
			    "not '%s'",
			    arg);
		}
		opts->skills_home = arg;
		return ZOS_OPTIONS_OK;
	}
}

enum zos_options_result
zos_options_parse(struct zos_options *opts, int argc, char **argv, FILE *out,
    FILE *err, bool stderr_is_tty)
{
	int c;

	memset(opts, 0, sizeof(*opts));
	opts->max_inflight       = 1024;
	opts->max_message_bytes  = 4u * 1024 * 1024;
	opts->shutdown_grace_ms  = 5000;
	opts->cache_capacity     = 200;
	opts->max_sessions       = 10000;
	opts->log_level          = ZRPC_LOG_INFO;
	opts->log_format         = stderr_is_tty ? ZOS_LOG_TEXT : ZOS_LOG_JSON;
	opts->data_dir           = ZOS_DEFAULT_DATA_DIR;
	opts->backend_timeout_ms = 30000;
	opts->metrics_listen     = ZOS_DEFAULT_METRICS_LISTEN;
	opts->ipc_socket_mode    = 0600;
	opts->session_ttl_ms     = 24LL * 3600 * 1000;
	/* bounds per peer */
	opts->send_timeout_ms      = 10000;
	opts->max_connections      = 1024;
	opts->idle_timeout_ms      = 300000;
	opts->max_buffered_bytes   = (size_t) 256 * 1024 * 1024;
	opts->max_metadata_entries = 64;
	opts->max_metadata_bytes   = 16 * 1024;
	/* the access log */
	opts->access_log        = ZOS_ACCESS_LOG_ERRORS;
	opts->access_log_sample = 1.0;

	optind = 0; /* full reset, so that tests can parse many times */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", options_long, NULL)) != -1) {
		uint64_t v;

		switch (c) {
		case OPT_LISTEN:
			if (opts->n_listen == ZOS_MAX_LISTENERS) {
				return options_bad(
				    err, "--listen: at most 16 listeners");
			}
			opts->listen[opts->n_listen++] = optarg;
			break;
		case OPT_WORKERS:
			if (!options_number(optarg, 1, 1024, &v)) {
				return options_bad(err,
				    "--workers wants a number from 1 to 1024, "
				    "not '%s'",
				    optarg);
			}
			opts->workers = (unsigned) v;
			break;
		case OPT_MAX_INFLIGHT:
			if (!options_number(optarg, 1, 1000000, &v)) {
				return options_bad(err,
				    "--max-inflight wants a number from 1 to "
				    "1000000, not '%s'",
				    optarg);
			}
			opts->max_inflight = (unsigned) v;
			break;
		case OPT_MAX_MESSAGE_BYTES:
			if (!options_number(optarg, 64, 1u << 30, &v)) {
				return options_bad(err,
				    "--max-message-bytes wants a number of "
				    "bytes from 64 to 1073741824, not '%s'",
				    optarg);
			}
			opts->max_message_bytes = (size_t) v;
			break;
		case OPT_SHUTDOWN_GRACE_MS:
			if (!options_number(optarg, 0, 3600000, &v)) {
				return options_bad(err,
				    "--shutdown-grace-ms wants milliseconds "
				    "from 0 to 3600000, not '%s'",
				    optarg);
			}
			opts->shutdown_grace_ms = (unsigned) v;
			break;
		case OPT_LOG_LEVEL:
			if (!zos_log_parse_level(optarg, &opts->log_level)) {
				return options_bad(err,
				    "--log-level wants debug, info, warn or "
				    "error, not '%s'",
				    optarg);
			}
			break;
		case OPT_LOG_FORMAT:
			if (!zos_log_parse_format(optarg, &opts->log_format)) {
				return options_bad(err,
				    "--log-format wants json or text, not "
				    "'%s'",
				    optarg);
			}
			break;
		case OPT_IN_MEMORY:
			opts->in_memory = true;
			break;
		case OPT_CACHE_CAPACITY:
			if (!options_number(optarg, 1, 1u << 20, &v)) {
				return options_bad(err,
				    "--cache-capacity wants a number from 1 "
				    "to "
				    "1048576, not '%s'",
				    optarg);
			}
			opts->cache_capacity = (size_t) v;
			break;
		case OPT_MAX_SESSIONS:
			if (!options_number(optarg, 1, 1000000, &v)) {
				return options_bad(err,
				    "--max-sessions wants a number from 1 to "
				    "1000000, not '%s'",
				    optarg);
			}
			opts->max_sessions = (size_t) v;
			break;
		case OPT_SKILLS_FILE:
			opts->skills_file = optarg;
			break;
		case OPT_ROUTING_FILE:
			opts->routing_file = optarg;
			break;
		case OPT_METRICS_LISTEN: {
			char why[128];

			if (strcmp(optarg, "off") == 0) {
				opts->metrics_listen = NULL;
				opts->metrics_off    = true;
				break;
			}
			if (!zos_options_metrics_url_valid(
			        optarg, why, sizeof(why))) {
				return options_bad(err,
				    "--metrics-listen wants "
				    "http://HOST:PORT/PATH or off, not '%s' "
				    "(%s)",
				    optarg, why);
			}
			opts->metrics_listen = optarg;
			opts->metrics_off    = false;
			break;
		}
		case OPT_DATA_DIR:
			if (optarg[0] == '\0') {
				return options_bad(
				    err, "--data-dir wants a directory");
			}
			opts->data_dir     = optarg;
			opts->data_dir_set = true;
			break;
		case OPT_BACKEND:
			if (options_backend(opts, optarg, err) !=
			    ZOS_OPTIONS_OK) {
				return ZOS_OPTIONS_USAGE;
			}
			break;
		case OPT_BACKEND_TIMEOUT_MS:
			if (!options_number(optarg, 1, 3600000, &v)) {
				return options_bad(err,
				    "--backend-timeout-ms wants milliseconds "
				    "from 1 to 3600000, not '%s'",
				    optarg);
			}
			opts->backend_timeout_ms = (unsigned) v;
			break;
		case OPT_ECHO_DELAY_MS:
			if (!options_number(optarg, 0, 3600000, &v)) {
				return options_bad(err,
				    "--echo-delay-ms wants milliseconds from "
				    "0 "
				    "to 3600000, not '%s'",
				    optarg);
			}
			opts->echo_delay_ms = (unsigned) v;
			break;
		case OPT_ECHO_FAIL_RATE:
			if (!options_rate(optarg, &opts->echo_fail_rate)) {
				return options_bad(err,
				    "--echo-fail-rate wants a number from 0 "
				    "to "
				    "1, not '%s'",
				    optarg);
			}
			break;
		case OPT_TLS_CERT:
		case OPT_TLS_KEY:
		case OPT_TLS_CLIENT_CA:
			if (optarg[0] == '\0') {
				return options_bad(
				    err, "%s wants a file", argv[optind - 1]);
			}
			*(c == OPT_TLS_CERT        ? &opts->tls_cert
			        : c == OPT_TLS_KEY ? &opts->tls_key
			                           : &opts->tls_client_ca) =
			    optarg;
			break;
		case OPT_IPC_SOCKET_MODE:
			if (!options_mode(optarg, &opts->ipc_socket_mode)) {
				return options_bad(err,
				    "--ipc-socket-mode wants an octal mode "
				    "from 1 to 0777, not '%s'",
				    optarg);
			}
			break;
		case OPT_AUTH_TOKENS:
			if (optarg[0] == '\0') {
				return options_bad(
				    err, "--auth-tokens wants a file");
			}
			opts->auth_tokens = optarg;
			break;
		case OPT_METRICS_TOKEN:
			if (optarg[0] == '\0') {
				return options_bad(
				    err, "--metrics-token wants a file");
			}
			opts->metrics_token_file = optarg;
			break;
		case OPT_ALLOW_UNAUTHENTICATED:
			opts->allow_unauthenticated = true;
			break;
		case OPT_SESSION_TTL:
			if (!zos_options_duration(
			        optarg, &opts->session_ttl_ms)) {
				return options_bad(err,
				    "--session-ttl wants a duration from 1s "
				    "to "
				    "87600h, a number and s, m or h (90s, "
				    "30m, 24h), not '%s'",
				    optarg);
			}
			break;
		case OPT_MAX_SESSIONS_PER_TOKEN:
			if (!options_number(optarg, 0, 1000000, &v)) {
				return options_bad(err,
				    "--max-sessions-per-token wants a number "
				    "from 0 (no cap) to 1000000, not '%s'",
				    optarg);
			}
			opts->max_sessions_per_token = (size_t) v;
			break;
		/* bounds per peer */
		case OPT_SEND_TIMEOUT_MS:
			if (!options_number(optarg, 1, 3600000, &v)) {
				return options_bad(err,
				    "--send-timeout-ms wants milliseconds "
				    "from 1 to 3600000, not '%s'",
				    optarg);
			}
			opts->send_timeout_ms = (unsigned) v;
			break;
		case OPT_MAX_INFLIGHT_PER_CONN:
			if (!options_number(optarg, 1, 1000000, &v)) {
				return options_bad(err,
				    "--max-inflight-per-conn wants a number "
				    "from 1 to 1000000, not '%s'",
				    optarg);
			}
			opts->max_inflight_per_conn = (unsigned) v;
			break;
		case OPT_MAX_CONNECTIONS:
			if (!options_number(optarg, 1, 1000000, &v)) {
				return options_bad(err,
				    "--max-connections wants a number from 1 "
				    "to 1000000, not '%s'",
				    optarg);
			}
			opts->max_connections = (unsigned) v;
			break;
		case OPT_IDLE_TIMEOUT_MS:
			if (!options_number(optarg, 0, 86400000, &v)) {
				return options_bad(err,
				    "--idle-timeout-ms wants milliseconds "
				    "from 0 (never) to 86400000, not '%s'",
				    optarg);
			}
			opts->idle_timeout_ms = (unsigned) v;
			break;
		case OPT_MAX_BUFFERED_BYTES:
			if (!options_number(
			        optarg, 1u << 20, UINT64_C(1) << 40, &v)) {
				return options_bad(err,
				    "--max-buffered-bytes wants bytes from "
				    "1048576 to 1099511627776, not '%s'",
				    optarg);
			}
			opts->max_buffered_bytes = (size_t) v;
			break;
		case OPT_MAX_METADATA_ENTRIES:
			if (!options_number(optarg, 1, 100000, &v)) {
				return options_bad(err,
				    "--max-metadata-entries wants a number "
				    "from 1 to 100000, not '%s'",
				    optarg);
			}
			opts->max_metadata_entries = (unsigned) v;
			break;
		case OPT_MAX_METADATA_BYTES:
			if (!options_number(optarg, 64, 1u << 24, &v)) {
				return options_bad(err,
				    "--max-metadata-bytes wants bytes from 64 "
				    "to 16777216, not '%s'",
				    optarg);
			}
			opts->max_metadata_bytes = (size_t) v;
			break;
		case OPT_WS_ALLOWED_ORIGIN:
			if (optarg[0] == '\0' ||
			    strstr(optarg, "://") == NULL) {
				return options_bad(err,
				    "--ws-allowed-origin wants an origin "
				    "such as https://app.example, not '%s'",
				    optarg);
			}
			if (opts->n_ws_allowed_origins == ZOS_MAX_WS_ORIGINS) {
				return options_bad(err,
				    "--ws-allowed-origin: at most %d",
				    ZOS_MAX_WS_ORIGINS);
			}
			opts->ws_allowed_origins
			    [opts->n_ws_allowed_origins++] = optarg;
			break;
		/* the access log */
		case OPT_ACCESS_LOG:
			if (!zos_access_log_parse_mode(
			        optarg, &opts->access_log)) {
				return options_bad(err,
				    "--access-log wants all, errors or off, "
				    "not '%s'",
				    optarg);
			}
			break;
		case OPT_ACCESS_LOG_SAMPLE:
			if (!options_rate(optarg, &opts->access_log_sample) ||
			    opts->access_log_sample <= 0.0) {
				return options_bad(err,
				    "--access-log-sample wants a fraction "
				    "above 0 and at most 1, not '%s'",
				    optarg);
			}
			break;
		/* the shared response cache */
		case OPT_CACHE_URL: {
			char host[ZOS_SHARED_CACHE_URL_MAX];
			char why[ZOS_SHARED_CACHE_URL_MAX + 128];
			int  port;

			if (!zos_shared_cache_parse_url(optarg, host,
			        sizeof(host), &port, why, sizeof(why))) {
				return options_bad(
				    err, "--cache-url: %s", why);
			}
			opts->cache_url = optarg;
			break;
		}
		case OPT_CACHE_AUTH_FILE:
			if (optarg[0] == '\0') {
				return options_bad(
				    err, "--cache-auth-file wants a file");
			}
			opts->cache_auth_file = optarg;
			break;
		case OPT_CACHE_TTL_S:
			if (!options_number(
			        optarg, 1, ZOS_SHARED_CACHE_MAX_TTL_S, &v)) {
				return options_bad(err,
				    "--cache-ttl-s wants seconds from 1 to "
				    "%u, not '%s'",
				    ZOS_SHARED_CACHE_MAX_TTL_S, optarg);
			}
			opts->cache_ttl_s = (uint32_t) v;
			break;
		case OPT_NODE_ID:
		case OPT_PEER:
		case OPT_SKILLS_HOME:
			if (options_cluster(opts, c, optarg, err) !=
			    ZOS_OPTIONS_OK) {
				return ZOS_OPTIONS_USAGE;
			}
			break;
		case OPT_VERSION:
			opts->show_version = true;
			break;
		case OPT_HELP:
			opts->show_help = true;
			break;
		default:
			if (optopt != 0) {
				/* a known flag without its argument */
				const char *name = argv[optind - 1];
				return options_bad(
				    err, "%s needs a value", name);
			}
			return options_bad(
			    err, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		return options_bad(
		    err, "unexpected argument '%s'", argv[optind]);
	}
	if ((opts->cache_auth_file != NULL || opts->cache_ttl_s != 0) &&
	    opts->cache_url == NULL) {
		return options_bad(err,
		    "--cache-auth-file and --cache-ttl-s need --cache-url");
	}
	if (opts->cache_url != NULL && opts->cache_ttl_s == 0) {
		opts->cache_ttl_s = ZOS_SHARED_CACHE_DEFAULT_TTL_S;
	}
	if (opts->show_help) {
		zos_options_help(out);
		return ZOS_OPTIONS_EXIT;
	}
	if (opts->show_version) {
		fprintf(out, "zosd %s (nng %s, protobuf-c %s)\n", ZOS_VERSION,
		    nng_version(), protobuf_c_version());
		return ZOS_OPTIONS_EXIT;
	}
	if (opts->in_memory && opts->data_dir_set) {
		return options_bad(
		    err, "--data-dir and --in-memory exclude each other");
	}
	if (opts->n_listen == 0) {
		opts->listen[opts->n_listen++] = ZOS_DEFAULT_LISTEN;
	}
	if (options_tls(opts, err) != ZOS_OPTIONS_OK) {
		return ZOS_OPTIONS_USAGE;
	}
	if (opts->auth_tokens == NULL && !opts->allow_unauthenticated) {
		for (size_t i = 0; i < opts->n_listen; i++) {
			if (!zos_options_url_is_loopback(opts->listen[i])) {
				return options_bad(err,
				    "--listen %s is reachable from other "
				    "machines, and without --auth-tokens "
				    "every "
				    "caller is admin; give --auth-tokens "
				    "FILE, "
				    "or --allow-unauthenticated to serve it "
				    "anyway",
				    opts->listen[i]);
			}
		}
	}
	/* Metrics name every method and model: on an address others can
	 * reach, only with a token, unless asked for in so many words. */
	if (!opts->metrics_off && opts->metrics_token_file == NULL &&
	    !opts->allow_unauthenticated &&
	    !zos_options_metrics_url_loopback(opts->metrics_listen)) {
		return options_bad(err,
		    "--metrics-listen %s is not a loopback address: give "
		    "--metrics-token FILE (or --allow-unauthenticated, or "
		    "--metrics-listen off)",
		    opts->metrics_listen);
	}
	return ZOS_OPTIONS_OK;
}

bool
zos_options_url_is_loopback(const char *url)
{
	static const char *const local[]   = { "ipc://", "inproc://" };
	static const char *const network[] = { "tcp://", "tcp4://", "tcp6://",
		"tls+tcp://", "tls+tcp4://", "tls+tcp6://", "ws://", "wss://",
		"ws4://", "ws6://", "wss4://", "wss6://" };
	const char              *host      = NULL, *end;
	char                     text[INET6_ADDRSTRLEN + 1];
	unsigned char            addr[sizeof(struct in6_addr)];
	size_t                   len;

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		if (strncmp(url, local[i], strlen(local[i])) == 0) {
			return true;
		}
	}
	for (size_t i = 0; i < sizeof(network) / sizeof(network[0]); i++) {
		if (strncmp(url, network[i], strlen(network[i])) == 0) {
			host = url + strlen(network[i]);
			break;
		}
	}
	if (host == NULL) {
		return false; /* a transport of unknown reach */
	}
	if (host[0] == '[') {
		host++;
		if ((end = strchr(host, ']')) == NULL) {
			return false;
		}
	} else {
		/* Up to the port: the last ':' before the path. */
		const char *path = host + strcspn(host, "/");

		end = path;
		for (const char *c = host; c < path; c++) {
			if (*c == ':') {
				end = c;
			}
		}
	}
	len = (size_t) (end - host);
	if (len == 0 || len >= sizeof(text)) {
		return false; /* "tcp://:7447" is every interface */
	}
	memcpy(text, host, len);
	text[len] = '\0';
	if (strcasecmp(text, "localhost") == 0) {
		return true;
	}
	if (inet_pton(AF_INET, text, addr) == 1) {
		return addr[0] == 127;
	}
	if (inet_pton(AF_INET6, text, addr) == 1) {
		return memcmp(addr, &in6addr_loopback, sizeof(addr)) == 0;
	}
	return false; /* a name: it may resolve to anything */
}
