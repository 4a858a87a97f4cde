/*
 * Hostile peers against a real zosd (issue 11, "One peer can stall or
 * bloat the server"): each test starts zosd, measures its RSS
 * (/proc/PID/status VmRSS) with a normal client being served, runs one
 * attack over raw TCP sockets that speak just enough of nng's SP framing,
 * and asserts that
 *   - the normal client's calls keep succeeding within their deadline
 *     while the attack runs, and
 *   - zosd's RSS stays under a stated bound during the attack and falls
 *     back to within ATTACK_RSS_BACK_KB of its baseline after it, polled
 *     with a bounded loop.
 * The numbers (KiB) are printed on stderr as
 *   "attack NAME: rss before=... during(max)=... after=..."
 * for the test log. Under AddressSanitizer RSS says little (shadow memory,
 * quarantine of freed blocks), so the RSS bounds are not asserted there;
 * the numbers are still printed.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../client/nng_lost_request.h"
#include "proc.h"
#include "sockio.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/client.h"
#include "zrpc/v1/envelope.pb-c.h"
#include "zrpc/v1/health.zrpc.h"

#if defined(__SANITIZE_ADDRESS__)
#define ATTACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTACK_ASAN 1
#endif
#endif
#ifndef ATTACK_ASAN
#define ATTACK_ASAN 0
#endif

/* After an attack RSS must come back within this of its baseline. */
#define ATTACK_RSS_BACK_KB (16 * 1024)
/* How long "falls back" may take (polled). */
#define ATTACK_SETTLE_MS 10000
/*
 * The normal client's deadline per call. Served or starved is what is
 * tested, not how fast: a starved client (the attacks as first found)
 * never gets an answer, while a loaded CI machine under ASan has taken
 * just over 2 s to answer one. 10 s tells the two apart without luck.
 */
#define ATTACK_CALL_TIMEOUT_MS 10000

TestSuite(attack, .fini = proc_kill_left);

/* ---- time, RSS ---- */

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* zosd's resident set in KiB (VmRSS). */
static long
rss_kb(pid_t pid)
{
	char  path[64], line[256];
	FILE *f;
	long  kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	cr_assert_not_null(f = fopen(path, "r"), "%s", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) {
			break;
		}
	}
	fclose(f);
	cr_assert_gt(kb, 0, "VmRSS of %d", (int) pid);
	return kb;
}

/* ---- zosd ---- */

struct zosd {
	struct proc proc;
	char        url[256];
	int         port;
};

/* Starts zosd in memory on tcp://127.0.0.1:0 (or LISTEN) with EXTRA. */
static void
zosd_start(struct zosd *z, const char *listen, const char *const *extra)
{
	char *argv[48];
	int   n = 0;

	argv[n++] = (char *) env_path("ZOSD");
	argv[n++] = "--in-memory";
	argv[n++] = "--listen";
	argv[n++] = (char *) (listen != NULL ? listen : "tcp://127.0.0.1:0");
	argv[n++] = "--metrics-listen";
	argv[n++] = "off";
	argv[n++] = "--log-format";
	argv[n++] = "text";
	/* Warnings only: the access log of thousands of attack calls would
	 * fill the pipe the test reads zosd's output from, and block it. */
	argv[n++] = "--log-level";
	argv[n++] = "warn";
	argv[n++] = "--shutdown-grace-ms";
	argv[n++] = "1000";
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		argv[n++] = (char *) extra[i];
	}
	argv[n] = NULL;
	proc_start(&z->proc, argv);
	cr_assert(proc_wait_for(&z->proc, "listening on"), "%s", z->proc.text);
	proc_listen_url(&z->proc, z->url, sizeof(z->url));
	cr_assert(sscanf(strrchr(z->url, ':') + 1, "%d", &z->port) == 1, "%s",
	    z->url);
}

static void
zosd_stop(struct zosd *z)
{
	kill(z->proc.pid, SIGTERM);
	cr_assert_eq(proc_wait(&z->proc), 0, "clean exit:\n%s", z->proc.text);
}

/*
 * Reads what zosd has written so far, waiting at most WAIT_MS for more;
 * true once NEEDLE is in its output. (proc_wait_for waits up to 10 s;
 * this lets a test go on probing meanwhile.)
 */
static bool
zosd_said(struct zosd *z, const char *needle, int wait_ms)
{
	struct proc  *p   = &z->proc;
	struct pollfd pfd = { .fd = p->out, .events = POLLIN };

	while (strstr(p->text, needle) == NULL) {
		ssize_t n;

		if (p->len + 1 >= sizeof(p->text) ||
		    poll(&pfd, 1, wait_ms) != 1) {
			return false;
		}
		n = read(
		    p->out, p->text + p->len, sizeof(p->text) - 1 - p->len);
		if (n <= 0) {
			return false;
		}
		p->len += (size_t) n;
		p->text[p->len] = '\0';
		wait_ms         = 0;
	}
	return true;
}

/* ---- the normal client ---- */

/* One Health/Check: true when OK within its deadline. */
static bool
client_probe(zrpc_client *client, double *took_ms)
{
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	double                         start = now_ms();
	zrpc_status                    status;

	status   = zrpc_v1_health_check(client, &req, &reply,
	      &(zrpc_call_opts) { .timeout_ms = ATTACK_CALL_TIMEOUT_MS });
	*took_ms = now_ms() - start;
	if (reply != NULL) {
		zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	}
	if (status.code != ZRPC_OK) {
		fprintf(stderr, "probe: %s\n", status.message);
	}
	return status.code == ZRPC_OK && *took_ms <= ATTACK_CALL_TIMEOUT_MS;
}

/* Probes and asserts; returns zosd's RSS right after. */
static long
client_served(zrpc_client *client, const struct zosd *z, const char *when)
{
	double took;

	cr_assert(client_probe(client, &took),
	    "normal client not served within %d ms %s (took %.0f ms)",
	    ATTACK_CALL_TIMEOUT_MS, when, took);
	return rss_kb(z->proc.pid);
}

/* The baseline: RSS after a few calls, the client connected. */
static long
baseline_rss(zrpc_client *client, const struct zosd *z)
{
	long kb = 0;

	for (int i = 0; i < 5; i++) {
		kb = client_served(client, z, "before the attack");
	}
	return kb;
}

/*
 * Polls (bounded) until RSS is within ATTACK_RSS_BACK_KB of BEFORE, the
 * client being served meanwhile; returns the last RSS read.
 */
static long
rss_settles(zrpc_client *client, const struct zosd *z, long before)
{
	double until = now_ms() + ATTACK_SETTLE_MS;
	long   kb;

	do {
		kb = client_served(client, z, "after the attack");
		/* Under ASan freed memory sits in its quarantine: RSS does
		 * not come back, and is not waited for. */
		if (kb <= before + ATTACK_RSS_BACK_KB || ATTACK_ASAN) {
			break;
		}
		usleep(50 * 1000); /* pacing of the poll, not a sync */
	} while (now_ms() < until);
	return kb;
}

/*
 * Writes a line of the attack log: on stderr, and appended to
 * meson-logs/attack-rss.txt in the build directory (meson keeps no stderr
 * of a passing TAP test), so that every run's numbers are kept.
 */
static void attack_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
attack_log(const char *fmt, ...)
{
	const char *root = getenv("ZOS_BUILD_ROOT");
	char        path[512];
	va_list     ap;
	FILE       *f;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (root == NULL) {
		return;
	}
	snprintf(path, sizeof(path), "%s/meson-logs/attack-rss.txt", root);
	if ((f = fopen(path, "a")) != NULL) {
		va_start(ap, fmt);
		vfprintf(f, fmt, ap);
		va_end(ap);
		fclose(f);
	}
}

static void
rss_report(const char *name, long before, long during, long after,
    long during_bound_kb)
{
	attack_log(
	    "attack %s: rss before=%ld kB during(max)=%ld kB after=%ld kB "
	    "(bounds: during < %ld kB, after < %ld kB)%s\n",
	    name, before, during, after, before + during_bound_kb,
	    before + ATTACK_RSS_BACK_KB,
	    ATTACK_ASAN ? " [ASan: RSS bounds not asserted]" : "");
	if (ATTACK_ASAN) {
		return;
	}
	cr_expect_lt(during, before + during_bound_kb,
	    "%s: RSS during %ld kB, baseline %ld kB", name, during, before);
	cr_expect_leq(after, before + ATTACK_RSS_BACK_KB,
	    "%s: RSS after %ld kB did not fall back near %ld kB", name, after,
	    before);
}

/* ---- raw SP over TCP ---- */

/* A TCP connection to PORT with the SP header of a req0 peer sent. */
static int
sp_connect(int port, int rcvbuf)
{
	static const unsigned char header[8] = { 0, 'S', 'P', 0, 0, 0x30, 0,
		0 };
	struct sockaddr_in         addr      = { .sin_family = AF_INET,
		             .sin_port = htons((uint16_t) port) };
	struct timeval             tv        = { .tv_sec = 5 };
	unsigned char              peer[8];
	int                        fd;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	if (rcvbuf > 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *) &addr, sizeof(addr)), 0,
	    "connect: %s", strerror(errno));
	cr_assert_eq(send(fd, header, sizeof(header), MSG_NOSIGNAL), 8);
	/* the server's SP header (a peer that reads nothing else) */
	cr_assert(recv_all(fd, peer, sizeof(peer)), "SP header");
	cr_assert_eq(peer[5], 0x31, "a rep0 peer");
	return fd;
}

/* Sends one request (the req0 header: request ID, then BODY). */
static bool
sp_send(int fd, uint32_t id, const uint8_t *body, size_t len)
{
	unsigned char head[12];
	uint64_t      total = (uint64_t) len + 4;

	for (int i = 0; i < 8; i++) {
		head[i] = (unsigned char) (total >> (56 - 8 * i));
	}
	id |= 0x80000000u;
	for (int i = 0; i < 4; i++) {
		head[8 + i] = (unsigned char) (id >> (24 - 8 * i));
	}
	return send_all(fd, head, sizeof(head)) && send_all(fd, body, len);
}

/* Reads one reply and returns its status code; -1 when none came. */
static int
sp_recv_code(int fd)
{
	unsigned char       head[8];
	uint64_t            total = 0;
	uint8_t            *buf;
	Zrpc__V1__Response *resp;
	int                 code = -1;

	if (!recv_all(fd, head, sizeof(head))) {
		return -1;
	}
	for (int i = 0; i < 8; i++) {
		total = total << 8 | head[i];
	}
	if (total < 4 || total > (64u << 20)) {
		return -1;
	}
	cr_assert_not_null(buf = malloc(total));
	if (recv_all(fd, buf, total) &&
	    (resp = zrpc__v1__response__unpack(NULL, total - 4, buf + 4)) !=
	        NULL) {
		code = (int) resp->code;
		zrpc__v1__response__free_unpacked(resp, NULL);
	}
	free(buf);
	return code;
}

/* True once the server has closed FD (FIN or RST), within WAIT_MS. */
static bool
closed_by_server(int fd, int wait_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

	return poll(&pfd, 1, wait_ms) == 1 &&
	    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Packs a zrpc.v1.Request for METHOD with PAYLOAD into *OUT (malloc). */
static size_t
pack_request(
    const char *method, const ProtobufCMessage *payload, uint8_t **out)
{
	Zrpc__V1__Request req = ZRPC__V1__REQUEST__INIT;
	size_t            len;

	req.method     = (char *) method;
	req.timeout_ms = 60000;
	if (payload != NULL) {
		req.payload.len  = protobuf_c_message_get_packed_size(payload);
		req.payload.data = malloc(req.payload.len + 1);
		cr_assert_not_null(req.payload.data);
		protobuf_c_message_pack(payload, req.payload.data);
	}
	len = zrpc__v1__request__get_packed_size(&req);
	cr_assert_not_null(*out = malloc(len));
	zrpc__v1__request__pack(&req, *out);
	free(req.payload.data);
	return len;
}

/* ---- attack 1: pipelined calls with 1 MB replies, never read ---- */

#define BIG_REPLY_BYTES (1000 * 1000)
#define PIPELINED_CALLS 1100

Test(attack, pipelined_big_replies_never_read, .timeout = 60)
{
	static const char *const extra[] = { "--send-timeout-ms", "2000",
		"--max-buffered-bytes", "67108864", NULL };
	struct zosd              z;
	zrpc_client             *client;
	Zos__V1__StoreRequest    store  = ZOS__V1__STORE_REQUEST__INIT;
	Zos__V1__StoreResponse  *stored = NULL;
	Zos__V1__LookupRequest   lookup = ZOS__V1__LOOKUP_REQUEST__INIT;
	char                    *big;
	uint8_t                 *body;
	size_t                   len;
	long                     before, during, after, kb;
	double                   until;
	int                      fd;
	bool                     closed = false;

	zosd_start(&z, NULL, extra);
	cr_assert_eq(zrpc_client_open(&client, z.url, NULL).code, ZRPC_OK);
	cr_assert_not_null(big = malloc(BIG_REPLY_BYTES + 1));
	memset(big, 'x', BIG_REPLY_BYTES);
	big[BIG_REPLY_BYTES] = '\0';
	store.model          = "m";
	store.prompt         = "big";
	store.response       = big;
	cr_assert_eq(zos_v1_cache_store(client, &store, &stored,
	                 &(zrpc_call_opts) { .timeout_ms = 5000 })
	                 .code,
	    ZRPC_OK);
	zos__v1__store_response__free_unpacked(stored, NULL);
	free(big);
	before = baseline_rss(client, &z);

	lookup.model  = "m";
	lookup.prompt = "big";
	len = pack_request("/zos.v1.Cache/Lookup", &lookup.base, &body);
	fd  = sp_connect(z.port, 4096);
	for (uint32_t i = 0; i < PIPELINED_CALLS; i++) {
		if (!sp_send(fd, i + 1, body, len)) {
			break; /* closed already: fine */
		}
	}
	free(body);

	/* While the attacker sits on its replies: served, and RSS bounded,
	 * until the send timeout has the server close the attacker. */
	during = before;
	until  = now_ms() + 2000 + 5000;
	while (now_ms() < until) {
		kb     = client_served(client, &z, "during the attack");
		during = kb > during ? kb : during;
		/* A FIN cannot reach a peer whose window is full: the log
		 * says when the server dropped it. */
		if ((closed = zosd_said(&z, "not sent within 2000 ms", 50))) {
			break;
		}
	}
	cr_assert(closed, "the server never closed the non-reading peer");
	close(fd);
	after = rss_settles(client, &z, before);
	/* 64 MiB of replies held at most, plus what nng holds. */
	rss_report("1 pipelined 1 MB replies never read", before, during,
	    after, 96 * 1024);
	zrpc_client_close(client);
	zosd_stop(&z);
}

/* ---- attack 2: 4 MiB declared, all but one byte sent, stall ---- */

#define PARTIAL_CONNS 24
#define PARTIAL_DECLARED (4u << 20)

Test(attack, half_sent_large_messages_stall, .timeout = 60)
{
	static const char *const extra[] = { "--idle-timeout-ms", "2000",
		NULL };
	struct zosd              z;
	zrpc_client             *client;
	int                      fds[PARTIAL_CONNS];
	unsigned char           *junk;
	long                     before, during, after, kb;
	double                   until;
	size_t                   n_closed              = 0;
	bool                     closed[PARTIAL_CONNS] = { false };

	zosd_start(&z, NULL, extra);
	cr_assert_eq(zrpc_client_open(&client, z.url, NULL).code, ZRPC_OK);
	before = baseline_rss(client, &z);

	cr_assert_not_null(junk = malloc(PARTIAL_DECLARED));
	memset(junk, 0x55, PARTIAL_DECLARED);
	for (size_t i = 0; i < PARTIAL_CONNS; i++) {
		unsigned char head[8] = { 0 };

		fds[i] = sp_connect(z.port, 0);
		for (int b = 0; b < 8; b++) {
			head[b] =
			    (unsigned char) ((uint64_t) PARTIAL_DECLARED >>
			        (56 - 8 * b));
		}
		cr_assert(send_all(fds[i], head, sizeof(head)));
		cr_assert(send_all(fds[i], junk, PARTIAL_DECLARED - 1),
		    "connection %zu: %s", i, strerror(errno));
	}
	free(junk);

	during = before;
	until  = now_ms() + 2000 + 6000;
	while (n_closed < PARTIAL_CONNS && now_ms() < until) {
		kb     = client_served(client, &z, "during the attack");
		during = kb > during ? kb : during;
		for (size_t i = 0; i < PARTIAL_CONNS; i++) {
			if (!closed[i] && closed_by_server(fds[i], 0)) {
				closed[i] = true;
				n_closed++;
			}
		}
		usleep(20 * 1000); /* pacing of the poll, not a sync */
	}
	for (size_t i = 0; i < PARTIAL_CONNS; i++) {
		close(fds[i]);
	}
	cr_assert_eq(n_closed, PARTIAL_CONNS,
	    "only %zu of %d stalled connections were closed", n_closed,
	    PARTIAL_CONNS);
	after = rss_settles(client, &z, before);
	/* Each stalled connection holds its 4 MiB buffer until closed. */
	rss_report("2 half-sent 4 MiB messages", before, during, after,
	    PARTIAL_CONNS * 4 * 1024 + 32 * 1024);
	zrpc_client_close(client);
	zosd_stop(&z);
}

/* ---- attack 3: idle and half-sent connections up to the cap ---- */

#define CAP_CONNS 16
#define CAP_ATTACKERS 24

Test(attack, idle_and_half_sent_connections_at_the_cap, .timeout = 60)
{
	static const char *const extra[] = { "--idle-timeout-ms", "2000",
		"--max-connections", "16", NULL };
	struct zosd              z;
	zrpc_client             *client, *late;
	int                      fds[CAP_ATTACKERS];
	long                     before, during, after, kb;
	double                   until, took;
	size_t                   n_closed              = 0;
	bool                     closed[CAP_ATTACKERS] = { false };

	/* The late client's connections are refused while it calls: nng
	 * 1.5.2 can lose a request then (tests/client/nng_lost_request.h;
	 * client::calls_to_a_server_refusing_every_connection_fail_cleanly
	 * reproduces it). */
	test_forgive_nng_lost_requests();
	zosd_start(&z, NULL, extra);
	cr_assert_eq(zrpc_client_open(&client, z.url, NULL).code, ZRPC_OK);
	before = baseline_rss(client, &z);

	during = before;
	for (size_t i = 0; i < CAP_ATTACKERS; i++) {
		fds[i] = sp_connect(z.port, 0);
		if (i % 2 == 1) {
			/* half-sent: 1000 bytes declared, 10 sent */
			unsigned char part[18] = { 0, 0, 0, 0, 0, 0, 0x03,
				0xe8 };
			(void) send_all(fds[i], part, sizeof(part));
		}
	}
	/* A client that connects now finds the cap full; it is served once
	 * the idle ones are closed, within its deadline. */
	cr_assert_eq(zrpc_client_open(&late, z.url, NULL).code, ZRPC_OK);
	{
		Zrpc__V1__HealthCheckRequest req =
		    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
		Zrpc__V1__HealthCheckResponse *reply = NULL;
		double                         start = now_ms();
		zrpc_status                    status;

		/* The client fails a call fast when its connection is
		 * closed under it (refused at the cap): retry, bounded.
		 * The first client goes on calling meanwhile, or it would
		 * be idle too, and rightly closed. */
		do {
			kb     = client_served(client, &z, "at the cap");
			during = kb > during ? kb : during;
			status = zrpc_v1_health_check(late, &req, &reply,
			    &(zrpc_call_opts) { .timeout_ms = 300 });
			if (status.code == ZRPC_OK) {
				break;
			}
			usleep(20 * 1000); /* pacing of the retry */
		} while (now_ms() - start < 8000);
		took = now_ms() - start;
		cr_assert_eq(status.code, ZRPC_OK,
		    "a new client at the cap: %s (%.0f ms)", status.message,
		    took);
		zrpc__v1__health_check_response__free_unpacked(reply, NULL);
		attack_log("attack 3: a new client at the cap was served "
		           "after %.0f ms\n",
		    took);
	}
	until = now_ms() + 6000;
	while (n_closed < CAP_ATTACKERS && now_ms() < until) {
		kb     = client_served(client, &z, "during the attack");
		during = kb > during ? kb : during;
		for (size_t i = 0; i < CAP_ATTACKERS; i++) {
			if (!closed[i] && closed_by_server(fds[i], 0)) {
				closed[i] = true;
				n_closed++;
			}
		}
		usleep(20 * 1000); /* pacing of the poll, not a sync */
	}
	for (size_t i = 0; i < CAP_ATTACKERS; i++) {
		close(fds[i]);
	}
	cr_assert_eq(n_closed, CAP_ATTACKERS,
	    "only %zu of %d idle or half-sent connections were closed",
	    n_closed, CAP_ATTACKERS);
	cr_assert(proc_wait_for(&z.proc, "connections open (max;"), "%s",
	    z.proc.text);
	after = rss_settles(client, &z, before);
	rss_report("3 idle and half-sent connections at the cap", before,
	    during, after, 16 * 1024);
	zrpc_client_close(late);
	zrpc_client_close(client);
	zosd_stop(&z);
}

/* ---- attack 4: millions of empty metadata entries ---- */

#define BOMB_CONNS 8
#define BOMB_BYTES ((4u << 20) - 64)

Test(attack, empty_metadata_entries_bomb, .timeout = 60)
{
	struct zosd    z;
	zrpc_client   *client;
	uint8_t       *bomb;
	size_t         len = 0;
	int            fds[BOMB_CONNS];
	long           before, during, after, kb;
	const uint32_t field = protobuf_c_message_descriptor_get_field_by_name(
	    &zrpc__v1__request__descriptor, "metadata")
	                           ->id;
	static const char method[] = "/zrpc.v1.Health/Check";

	zosd_start(&z, NULL, NULL);
	cr_assert_eq(zrpc_client_open(&client, z.url, NULL).code, ZRPC_OK);
	before = baseline_rss(client, &z);

	/* method (field 1), then empty metadata entries to 4 MiB */
	cr_assert_not_null(bomb = malloc(BOMB_BYTES));
	bomb[len++] = 0x0a;
	bomb[len++] = (uint8_t) strlen(method);
	memcpy(bomb + len, method, strlen(method));
	len += strlen(method);
	cr_assert_lt(field, 16u);
	while (len + 2 <= BOMB_BYTES) {
		bomb[len++] = (uint8_t) (field << 3 | 2);
		bomb[len++] = 0;
	}
	for (size_t i = 0; i < BOMB_CONNS; i++) {
		fds[i] = sp_connect(z.port, 0);
		cr_assert(sp_send(fds[i], 1, bomb, len));
	}
	free(bomb);
	during = before;
	for (size_t i = 0; i < BOMB_CONNS; i++) {
		cr_assert_eq(sp_recv_code(fds[i]), ZRPC_RESOURCE_EXHAUSTED,
		    "connection %zu", i);
		kb     = client_served(client, &z, "during the attack");
		during = kb > during ? kb : during;
		close(fds[i]);
	}
	after = rss_settles(client, &z, before);
	/* The 8 requests' 4 MiB messages at most; nothing decoded. */
	rss_report("4 2M empty metadata entries x 8", before, during, after,
	    BOMB_CONNS * 4 * 1024 + 32 * 1024);
	zrpc_client_close(client);
	zosd_stop(&z);
}

/* Metadata within the caps is served; one entry over is refused. */
Test(attack, metadata_caps_hold_at_the_limit, .timeout = 30)
{
	static const char *const extra[] = { "--max-metadata-entries", "4",
		NULL };
	struct zosd              z;
	uint8_t                  buf[512];
	size_t                   len;
	int                      fd;
	const uint32_t field = protobuf_c_message_descriptor_get_field_by_name(
	    &zrpc__v1__request__descriptor, "metadata")
	                           ->id;
	static const char method[] = "/zrpc.v1.Health/Check";

	zosd_start(&z, NULL, extra);
	fd = sp_connect(z.port, 0);
	for (int n = 4; n <= 5; n++) {
		len        = 0;
		buf[len++] = 0x0a;
		buf[len++] = (uint8_t) strlen(method);
		memcpy(buf + len, method, strlen(method));
		len += strlen(method);
		for (int i = 0; i < n; i++) {
			/* an entry {key: "k<i>", value: ""} */
			buf[len++] = (uint8_t) (field << 3 | 2);
			buf[len++] = 4;
			buf[len++] = 0x0a;
			buf[len++] = 2;
			buf[len++] = 'k';
			buf[len++] = (uint8_t) ('0' + i);
		}
		cr_assert(sp_send(fd, (uint32_t) n, buf, len));
		cr_assert_eq(sp_recv_code(fd),
		    n <= 4 ? ZRPC_OK : ZRPC_RESOURCE_EXHAUSTED, "%d entries",
		    n);
	}
	close(fd);
	zosd_stop(&z);
}

/* ---- ws Origin ---- */

/* A free loopback TCP port (bound, read back, released). */
static int
free_port(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t          alen = sizeof(addr);
	int                fd, port;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	cr_assert_eq(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *) &addr, &alen), 0);
	port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

/*
 * Opens a websocket to zosd's ws listener with ORIGIN (NULL: none) and
 * sends one Health/Check in a masked binary frame. Returns the reply's
 * status code, or -1 when the server closed the connection instead.
 */
static int
ws_health_check(int port, const char *origin)
{
	struct sockaddr_in  addr = { .sin_family = AF_INET,
		 .sin_port                       = htons((uint16_t) port) };
	struct timeval      tv   = { .tv_sec = 5 };
	char                req[512], resp[1024];
	size_t              got = 0;
	uint8_t            *body, frame[256], head[4];
	size_t              len, flen = 0;
	uint8_t             mask[4] = { 1, 2, 3, 4 };
	uint64_t            plen;
	uint8_t            *payload;
	Zrpc__V1__Response *r;
	int                 fd, code = -1;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
	snprintf(req, sizeof(req),
	    "GET /zos HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Protocol: rep.sp.nanomsg.org\r\n"
	    "%s%s%s\r\n",
	    port, origin != NULL ? "Origin: " : "",
	    origin != NULL ? origin : "", origin != NULL ? "\r\n" : "");
	cr_assert(send_all(fd, req, strlen(req)));
	/* the 101 response, up to its blank line */
	while (got < sizeof(resp) - 1 &&
	    (got < 4 || memcmp(resp + got - 4, "\r\n\r\n", 4) != 0)) {
		if (recv(fd, resp + got, 1, 0) != 1) {
			break;
		}
		got++;
	}
	resp[got] = '\0';
	cr_assert(strstr(resp, " 101 ") != NULL, "handshake: %s", resp);

	len = pack_request("/zrpc.v1.Health/Check", NULL, &body);
	cr_assert_lt(len + 4, 126u);
	frame[flen++] = 0x82;
	frame[flen++] = (uint8_t) (0x80 | (len + 4));
	memcpy(frame + flen, mask, 4);
	flen += 4;
	head[0] = 0x80;
	head[1] = head[2] = 0;
	head[3]           = 7;
	for (size_t i = 0; i < 4; i++) {
		frame[flen + i] = head[i] ^ mask[i % 4];
	}
	for (size_t i = 0; i < len; i++) {
		frame[flen + 4 + i] = body[i] ^ mask[(i + 4) % 4];
	}
	flen += 4 + len;
	free(body);
	if (!send_all(fd, frame, flen) || !recv_all(fd, head, 2)) {
		close(fd);
		return -1;
	}
	if ((head[0] & 0x0f) == 0x08) {
		/* a close frame: the server refused the connection */
		close(fd);
		return -1;
	}
	plen = head[1] & 0x7f;
	if (plen == 126) {
		cr_assert(recv_all(fd, head + 2, 2));
		plen = (uint64_t) head[2] << 8 | head[3];
	}
	cr_assert(plen >= 4 && plen < 4096, "frame %02x of %lu", head[0],
	    (unsigned long) plen);
	cr_assert_not_null(payload = malloc(plen));
	cr_assert(recv_all(fd, payload, plen));
	if ((r = zrpc__v1__response__unpack(NULL, plen - 4, payload + 4)) !=
	    NULL) {
		code = (int) r->code;
		zrpc__v1__response__free_unpacked(r, NULL);
	}
	free(payload);
	close(fd);
	return code;
}

/*
 * nng 1.5.2's ws transport never frees a message whose send fails: a
 * failed write leaves it on the transport's own aio (wstran_pipe_send_cb
 * passes the error on, the websocket layer frees only what it sent, and
 * rep0 frees only what is left on its aio). A peer that reads its reply
 * and closes at once can make nng see the write fail (NNG_ECLOSED: the
 * close is handled before the write's completion) although the bytes
 * went out, and zosd then loses that reply (in about 1 of 30 runs of
 * these tests under ASan; a probe in a rebuilt nng 1.5.2 showed the
 * failed write; zrpc cannot take it back). The ws tests below, whose
 * peers do just that, start zosd with a LeakSanitizer suppression of
 * leaked replies (zrpc_call_encode) in a file that lives until the test
 * ends; setenv changes this test's own process (Criterion gives each
 * test one) and the zosd it starts, whose LeakSanitizer reads the file
 * when it checks, at exit. Without ASan it does nothing.
 */
static void
ws_forgive_nng_lost_replies(char *path, size_t len)
{
	static const char supp[] = "leak:zrpc_call_encode\n";
	const char       *old    = getenv("LSAN_OPTIONS");
	char              options[512];
	int               fd;

	path[0] = '\0';
	if (!ATTACK_ASAN) {
		return;
	}
	snprintf(path, len, "/tmp/zos-attack-lsan-%d-XXXXXX", (int) getpid());
	cr_assert_geq(fd = mkstemp(path), 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, supp, strlen(supp)), (ssize_t) strlen(supp));
	close(fd);
	snprintf(options, sizeof(options), "%s%ssuppressions=%s",
	    old != NULL ? old : "", old != NULL && old[0] != '\0' ? ":" : "",
	    path);
	cr_assert_eq(setenv("LSAN_OPTIONS", options, 1), 0);
}

Test(attack, ws_origin_checked_against_the_allowed_list, .timeout = 30)
{
	static const char *const extra[] = { "--ws-allowed-origin",
		"http://good.example", NULL };
	struct zosd              z;
	char                     listen[64], supp[64];
	int                      port = free_port();

	ws_forgive_nng_lost_replies(supp, sizeof(supp));
	snprintf(listen, sizeof(listen), "ws://127.0.0.1:%d/zos", port);
	zosd_start(&z, listen, extra);
	/* not a browser: no Origin, served */
	cr_assert_eq(ws_health_check(port, NULL), ZRPC_OK);
	/* a page on an allowed origin, served */
	cr_assert_eq(ws_health_check(port, "http://good.example"), ZRPC_OK);
	/* any other page: the connection is closed, nothing served */
	cr_assert_eq(ws_health_check(port, "http://evil.example"), -1);
	cr_assert_eq(ws_health_check(port, "http://good.example.evil"), -1);
	cr_assert(proc_wait_for(&z.proc, "origin 'http://evil.example'"), "%s",
	    z.proc.text);
	zosd_stop(&z);
	if (supp[0] != '\0') {
		unlink(supp);
	}
}

/* Without --ws-allowed-origin no browser origin is accepted. */
Test(attack, ws_origin_none_allowed_by_default, .timeout = 30)
{
	struct zosd z;
	char        listen[64], supp[64];
	int         port = free_port();

	ws_forgive_nng_lost_replies(supp, sizeof(supp));
	snprintf(listen, sizeof(listen), "ws://127.0.0.1:%d/zos", port);
	zosd_start(&z, listen, NULL);
	cr_assert_eq(ws_health_check(port, NULL), ZRPC_OK);
	cr_assert_eq(ws_health_check(port, "http://localhost"), -1);
	zosd_stop(&z);
	if (supp[0] != '\0') {
		unlink(supp);
	}
}
