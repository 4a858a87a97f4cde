/*
 * Fake zrpc server for the client tests (see fake_server.h).
 *
 * Each worker thread owns one rep0 context and one callback-less aio and
 * loops receive -> answer -> send, synchronously, until the socket is
 * closed. Several workers let several calls be in flight (a Gate call
 * blocks only its own worker). Every counter and the gate live under one
 * mutex with one condition variable that fake_server_wait waits on with a
 * deadline.
 */
#include "fake_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include "zrpc/v1/envelope.pb-c.h"
#include "zrpc/v1/health.pb-c.h"

#define FAKE_WORKERS_DEFAULT 4
#define FAKE_WORKERS_MAX 64
#define FAKE_URL_MAX 256

struct fake_server {
	nng_socket   socket;
	nng_listener listener;
	char         url[FAKE_URL_MAX];
	int          n_workers;
	pthread_t    workers[FAKE_WORKERS_MAX];

	pthread_mutex_t    mtx;
	pthread_cond_t     cv;        /* any change below */
	bool               killed;    /* guarded by: mtx */
	bool               closed;    /* guarded by: mtx: nng_close returned */
	bool               abandoned; /* guarded by: mtx: stop gave up on it */
	bool               refusing;  /* guarded by: mtx (opts.refuse) */
	bool               not_serving; /* guarded by: mtx (Health) */
	char               run_log[FAKE_URL_MAX];   /* opts.run_log; "" */
	int                released;                /* guarded by: mtx */
	int                passed;                  /* guarded by: mtx */
	int                counters[FAKE_COUNTERS]; /* guarded by: mtx */
	struct fake_record last;                    /* guarded by: mtx */
};

/* Adds one to COUNTER and wakes waiters. */
static void
fake_bump(struct fake_server *s, enum fake_counter counter)
{
	pthread_mutex_lock(&s->mtx);
	s->counters[counter]++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
}

/* opts.refuse: closes each new connection before nng adds it. */
static void
fake_refuse(nng_pipe pipe, nng_pipe_ev event, void *arg)
{
	struct fake_server *s = arg;
	bool                refusing;

	(void) event;
	pthread_mutex_lock(&s->mtx);
	refusing = s->refusing;
	pthread_mutex_unlock(&s->mtx);
	if (refusing) {
		nng_pipe_close(pipe);
		fake_bump(s, FAKE_REFUSED);
	}
}

void
fake_server_refuse(struct fake_server *s, bool refuse)
{
	pthread_mutex_lock(&s->mtx);
	s->refusing = refuse;
	pthread_mutex_unlock(&s->mtx);
}

/* Copies at most FAKE_TEXT_MAX - 1 bytes of SRC into DST. */
static void
fake_copy(char *dst, const char *src)
{
	snprintf(dst, FAKE_TEXT_MAX, "%s", src != NULL ? src : "");
}

/* Records REQUEST as the last one seen. */
static void
fake_record(struct fake_server *s, const Zrpc__V1__Request *request)
{
	size_t i;

	pthread_mutex_lock(&s->mtx);
	fake_copy(s->last.method, request->method);
	s->last.timeout_ms = request->timeout_ms;
	s->last.n_metadata = 0;
	for (i = 0; i < request->n_metadata && i < FAKE_METADATA_MAX; i++) {
		fake_copy(s->last.keys[i], request->metadata[i]->key);
		fake_copy(s->last.values[i], request->metadata[i]->value);
		s->last.n_metadata++;
	}
	pthread_mutex_unlock(&s->mtx);
}

/*
 * Builds a reply message with CODE, MESSAGE, PAYLOAD and the N_METADATA
 * entries of METADATA; NULL on error.
 */
static nng_msg *
fake_reply_metadata(uint32_t code, const char *message, const uint8_t *payload,
    size_t payload_len, Zrpc__V1__Response__MetadataEntry **metadata,
    size_t n_metadata)
{
	Zrpc__V1__Response response = ZRPC__V1__RESPONSE__INIT;
	nng_msg           *msg;

	response.code         = code;
	response.message      = (char *) (message != NULL ? message : "");
	response.payload.data = (uint8_t *) payload;
	response.payload.len  = payload_len;
	response.metadata     = metadata;
	response.n_metadata   = n_metadata;
	if (nng_msg_alloc(
	        &msg, zrpc__v1__response__get_packed_size(&response)) != 0) {
		return NULL;
	}
	zrpc__v1__response__pack(&response, nng_msg_body(msg));
	return msg;
}

/* Builds a reply message with CODE, MESSAGE and PAYLOAD; NULL on error. */
static nng_msg *
fake_reply(uint32_t code, const char *message, const uint8_t *payload,
    size_t payload_len)
{
	return fake_reply_metadata(
	    code, message, payload, payload_len, NULL, 0);
}

static Zrpc__V1__HealthCheckRequest *fake_payload(
    const Zrpc__V1__Request *request);

/* The value of REQUEST's metadata KEY, or NULL. */
static const char *
fake_request_metadata(const Zrpc__V1__Request *request, const char *key)
{
	for (size_t i = 0; i < request->n_metadata; i++) {
		if (strcmp(request->metadata[i]->key, key) == 0) {
			return request->metadata[i]->value;
		}
	}
	return NULL;
}

/* The Metadata method's reply (see fake_server.h). */
static nng_msg *
fake_reply_with_metadata(const Zrpc__V1__Request *request)
{
	Zrpc__V1__HealthCheckRequest     *payload    = fake_payload(request);
	Zrpc__V1__Response__MetadataEntry entries[2] = {
		ZRPC__V1__RESPONSE__METADATA_ENTRY__INIT,
		ZRPC__V1__RESPONSE__METADATA_ENTRY__INIT,
	};
	Zrpc__V1__Response__MetadataEntry *ptrs[2] = { &entries[0],
		&entries[1] };
	const char *id = fake_request_metadata(request, "x-request-id");
	uint32_t    code;
	nng_msg    *reply;

	if (payload == NULL) {
		return NULL;
	}
	code             = (uint32_t) strtoul(payload->service, NULL, 10);
	entries[0].key   = "x-request-id";
	entries[0].value = (char *) (id != NULL ? id : "fake-request-id");
	entries[1].key   = "x-fake-custom";
	entries[1].value = "custom value";
	reply =
	    fake_reply_metadata(code, code != 0 ? "failed with metadata" : "",
	        code != 0 ? NULL : request->payload.data,
	        code != 0 ? 0 : request->payload.len, ptrs, 2);
	zrpc__v1__health_check_request__free_unpacked(payload, NULL);
	return reply;
}

/* The MetadataFlood method's reply: N entries "k<i>": "v". */
static nng_msg *
fake_reply_metadata_flood(const Zrpc__V1__Request *request)
{
	Zrpc__V1__HealthCheckRequest       *payload = fake_payload(request);
	Zrpc__V1__Response__MetadataEntry  *entries = NULL;
	Zrpc__V1__Response__MetadataEntry **ptrs    = NULL;
	char                               *keys    = NULL;
	nng_msg                            *reply   = NULL;
	size_t                              n;

	if (payload == NULL) {
		return NULL;
	}
	n       = strtoul(payload->service, NULL, 10);
	entries = calloc(n + 1, sizeof(*entries));
	ptrs    = calloc(n + 1, sizeof(*ptrs));
	keys    = calloc(n + 1, 24);
	if (entries != NULL && ptrs != NULL && keys != NULL) {
		for (size_t i = 0; i < n; i++) {
			zrpc__v1__response__metadata_entry__init(&entries[i]);
			snprintf(keys + 24 * i, 24, "k%zu", i);
			entries[i].key   = keys + 24 * i;
			entries[i].value = "v";
			ptrs[i]          = &entries[i];
		}
		reply = fake_reply_metadata(0, "", NULL, 0, ptrs, n);
	}
	free(keys);
	free(ptrs);
	free(entries);
	zrpc__v1__health_check_request__free_unpacked(payload, NULL);
	return reply;
}

/* A reply whose payload is a HealthCheckRequest naming SERVICE. */
static nng_msg *
fake_reply_service(const char *service)
{
	Zrpc__V1__HealthCheckRequest payload =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	nng_msg *msg;
	uint8_t *buf;
	size_t   len;

	payload.service = (char *) service;
	len = zrpc__v1__health_check_request__get_packed_size(&payload);
	if ((buf = malloc(len + 1)) == NULL) {
		return NULL;
	}
	zrpc__v1__health_check_request__pack(&payload, buf);
	msg = fake_reply(0, "", buf, len);
	free(buf);
	return msg;
}

/* The service string of REQUEST's HealthCheckRequest payload, or NULL. */
static Zrpc__V1__HealthCheckRequest *
fake_payload(const Zrpc__V1__Request *request)
{
	return zrpc__v1__health_check_request__unpack(
	    NULL, request->payload.len, request->payload.data);
}

/*
 * opts.run_log: appends "gate <payload's service>" to the file, in one
 * write(2), so that a line is there even when the process is killed a
 * moment later.
 */
static void
fake_run_log(struct fake_server *s, const Zrpc__V1__Request *request)
{
	Zrpc__V1__HealthCheckRequest *payload;
	char                          line[FAKE_TEXT_MAX + 8];
	int                           fd, n;

	if (s->run_log[0] == '\0' ||
	    (payload = fake_payload(request)) == NULL) {
		return;
	}
	n = snprintf(line, sizeof(line), "gate %.*s\n", FAKE_TEXT_MAX - 1,
	    payload->service);
	zrpc__v1__health_check_request__free_unpacked(payload, NULL);
	if ((fd = open(s->run_log, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0) {
		return;
	}
	if (write(fd, line, (size_t) n) != n) {
		fprintf(
		    stderr, "fake server: writing %s failed\n", s->run_log);
	}
	(void) close(fd);
}

/* Waits at the gate until released or killed. Returns false if killed. */
static bool
fake_gate(struct fake_server *s)
{
	bool pass;

	pthread_mutex_lock(&s->mtx);
	s->counters[FAKE_GATED]++;
	pthread_cond_broadcast(&s->cv);
	while (!s->killed && s->released <= s->passed) {
		pthread_cond_wait(&s->cv, &s->mtx);
	}
	pass = !s->killed;
	if (pass) {
		s->passed++;
	}
	pthread_mutex_unlock(&s->mtx);
	return pass;
}

/*
 * Answers the request in MSG (which this consumes). Returns the reply to
 * send, or NULL for none.
 */
static nng_msg *
fake_answer(struct fake_server *s, nng_msg *msg, bool *gated)
{
	Zrpc__V1__Request            *request;
	Zrpc__V1__HealthCheckRequest *payload;
	nng_msg                      *reply = NULL;
	const char                   *method;
	static const uint8_t          garbage[]     = { 0x0f, 0xff, 0xff };
	static const uint8_t          bad_payload[] = { 0x0f };

	*gated  = false;
	request = zrpc__v1__request__unpack(
	    NULL, nng_msg_len(msg), nng_msg_body(msg));
	fake_bump(s, FAKE_RECEIVED);
	if (request == NULL) {
		nng_msg_free(msg);
		return fake_reply(3, "bad request", NULL, 0);
	}
	fake_record(s, request);
	method = request->method;

	if (strcmp(method, FAKE_ECHO) == 0) {
		fake_bump(s, FAKE_ECHOED);
		reply = fake_reply(
		    0, "", request->payload.data, request->payload.len);
	} else if (strcmp(method, FAKE_HEALTH) == 0) {
		/* zrpc.v1.HealthCheckResponse { status: SERVING (1) or
		 * NOT_SERVING (2) }, packed by hand. */
		uint8_t health[2] = { 0x08, 0x01 };
		pthread_mutex_lock(&s->mtx);
		health[1] = s->not_serving ? 0x02 : 0x01;
		pthread_mutex_unlock(&s->mtx);
		fake_bump(s, FAKE_HEALTHS);
		reply = fake_reply(0, "", health, sizeof(health));
	} else if (strcmp(method, FAKE_FAIL) == 0) {
		if ((payload = fake_payload(request)) != NULL) {
			char    *colon = strchr(payload->service, ':');
			uint32_t code =
			    (uint32_t) strtoul(payload->service, NULL, 10);
			reply =
			    fake_reply(code, colon ? colon + 1 : "", NULL, 0);
			zrpc__v1__health_check_request__free_unpacked(
			    payload, NULL);
		}
	} else if (strcmp(method, FAKE_GATE) == 0) {
		*gated = true;
		fake_run_log(s, request);
		if (fake_gate(s)) {
			reply = fake_reply(0, "", request->payload.data,
			    request->payload.len);
		}
	} else if (strcmp(method, FAKE_NEVER) == 0) {
		reply = NULL;
	} else if (strcmp(method, FAKE_GARBAGE) == 0) {
		if (nng_msg_alloc(&reply, 0) == 0 &&
		    nng_msg_append(reply, garbage, sizeof(garbage)) != 0) {
			nng_msg_free(reply);
			reply = NULL;
		}
	} else if (strcmp(method, FAKE_BAD_PAYLOAD) == 0) {
		reply = fake_reply(0, "", bad_payload, sizeof(bad_payload));
	} else if (strcmp(method, FAKE_BIG) == 0) {
		if ((payload = fake_payload(request)) != NULL) {
			size_t n = strtoul(payload->service, NULL, 10);
			char  *text;
			if ((text = malloc(n + 1)) != NULL) {
				memset(text, 'x', n);
				text[n] = '\0';
				reply   = fake_reply_service(text);
				free(text);
			}
			zrpc__v1__health_check_request__free_unpacked(
			    payload, NULL);
		}
	} else if (strcmp(method, FAKE_METADATA) == 0) {
		reply = fake_reply_with_metadata(request);
	} else if (strcmp(method, FAKE_METADATA_FLOOD) == 0) {
		reply = fake_reply_metadata_flood(request);
	} else if (strcmp(method, FAKE_DROP) == 0) {
		fake_bump(s, FAKE_DROPPED);
		(void) nng_pipe_close(nng_msg_get_pipe(msg));
	} else {
		reply = fake_reply(12, "no such method", NULL, 0);
	}
	zrpc__v1__request__free_unpacked(request, NULL);
	nng_msg_free(msg);
	return reply;
}

/*
 * Starts a receive (SEND false) or a send on CTX, unless the server was
 * killed: nng 1.5.2 panics on an operation started on a context whose
 * socket is closing, so operations start under the mutex that
 * fake_server_kill takes before it closes the socket.
 */
static bool
fake_issue(struct fake_server *s, nng_ctx ctx, nng_aio *aio, bool send)
{
	bool live;

	pthread_mutex_lock(&s->mtx);
	live = !s->killed;
	if (live) {
		if (send) {
			nng_ctx_send(ctx, aio);
		} else {
			nng_ctx_recv(ctx, aio);
		}
	}
	pthread_mutex_unlock(&s->mtx);
	return live;
}

/* One worker: its own context, receive -> answer -> send until closed. */
static void *
fake_worker(void *arg)
{
	struct fake_server *s = arg;
	nng_ctx             ctx;
	nng_aio            *aio;
	nng_msg            *reply;
	bool                gated;

	if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
		return NULL;
	}
	if (nng_ctx_open(&ctx, s->socket) != 0) {
		nng_aio_free(aio);
		return NULL;
	}
	for (;;) {
		if (!fake_issue(s, ctx, aio, false)) {
			break;
		}
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0) {
			/*
			 * The socket is closing and closes the context itself:
			 * closing it here as well races with nng_close, which
			 * nng 1.5 does not always survive (it can hang).
			 */
			nng_aio_free(aio);
			return NULL;
		}
		reply = fake_answer(s, nng_aio_get_msg(aio), &gated);
		nng_aio_set_msg(aio, NULL);
		if (reply == NULL) {
			continue;
		}
		nng_aio_set_msg(aio, reply);
		if (!fake_issue(s, ctx, aio, true)) {
			nng_msg_free(reply);
			nng_aio_set_msg(aio, NULL);
			break;
		}
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0) {
			nng_msg_free(nng_aio_get_msg(aio));
			nng_aio_set_msg(aio, NULL);
		}
		if (gated) {
			fake_bump(s, FAKE_GATE_REPLIED);
		}
	}
	/* Killed: the socket's close closes the context. */
	nng_aio_free(aio);
	return NULL;
}

/* Configures LISTENER for TLS with OPTS' certificate and key. */
static int
fake_listener_tls(nng_listener listener, const struct fake_server_opts *opts)
{
	nng_tls_config *config;
	int             rv;

	if ((rv = nng_tls_config_alloc(&config, NNG_TLS_MODE_SERVER)) != 0) {
		return rv;
	}
	if ((rv = nng_tls_config_own_cert(
	         config, opts->tls_cert_pem, opts->tls_key_pem, NULL)) == 0) {
		rv =
		    nng_listener_set_ptr(listener, NNG_OPT_TLS_CONFIG, config);
	}
	nng_tls_config_free(config);
	return rv;
}

/* Fills S->url: URL, with a port 0 replaced by the bound port. */
static int
fake_resolve_url(struct fake_server *s, const char *url)
{
	nng_sockaddr sa;
	size_t       len = strlen(url);
	int          rv;

	if (len < 2 || strcmp(url + len - 2, ":0") != 0) {
		snprintf(s->url, sizeof(s->url), "%s", url);
		return 0;
	}
	if ((rv = nng_listener_get_addr(s->listener, NNG_OPT_LOCADDR, &sa)) !=
	    0) {
		return rv;
	}
	if (sa.s_family != NNG_AF_INET) {
		return NNG_ENOTSUP;
	}
	snprintf(s->url, sizeof(s->url), "%.*s:%u", (int) (len - 2), url,
	    (unsigned) ntohs(sa.s_in.sa_port));
	return 0;
}

int
fake_server_start(struct fake_server **out, const char *url,
    const struct fake_server_opts *opts)
{
	struct fake_server *s;
	pthread_condattr_t  attr;
	int                 rv, i;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return NNG_ENOMEM;
	}
	s->n_workers = opts != NULL && opts->workers > 0
	    ? opts->workers
	    : FAKE_WORKERS_DEFAULT;
	if (s->n_workers > FAKE_WORKERS_MAX) {
		s->n_workers = FAKE_WORKERS_MAX;
	}
	pthread_mutex_init(&s->mtx, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &attr);
	pthread_condattr_destroy(&attr);

	if ((rv = nng_rep0_open(&s->socket)) != 0) {
		goto fail;
	}
	s->refusing    = opts != NULL && opts->refuse;
	s->not_serving = opts != NULL && opts->not_serving;
	if (opts != NULL && opts->run_log != NULL) {
		snprintf(s->run_log, sizeof(s->run_log), "%s", opts->run_log);
	}
	if (s->refusing &&
	    (rv = nng_pipe_notify(
	         s->socket, NNG_PIPE_EV_ADD_PRE, fake_refuse, s)) != 0) {
		goto fail_socket;
	}
	if ((rv = nng_listener_create(&s->listener, s->socket, url)) != 0) {
		goto fail_socket;
	}
	if (opts != NULL && opts->tls_cert_pem != NULL &&
	    (rv = fake_listener_tls(s->listener, opts)) != 0) {
		goto fail_socket;
	}
	if ((rv = nng_listener_start(s->listener, 0)) != 0) {
		goto fail_socket;
	}
	if ((rv = fake_resolve_url(s, url)) != 0) {
		goto fail_socket;
	}
	for (i = 0; i < s->n_workers; i++) {
		if (pthread_create(&s->workers[i], NULL, fake_worker, s) !=
		    0) {
			s->n_workers = i;
			fake_server_stop(s);
			return NNG_ENOMEM;
		}
	}
	*out = s;
	return 0;

fail_socket:
	nng_close(s->socket);
fail:
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
	return rv;
}

const char *
fake_server_url(const struct fake_server *s)
{
	return s->url;
}

/* Closes the socket on its own thread (see fake_close_bounded). */
static void *
fake_closer(void *arg)
{
	struct fake_server *s = arg;

	nng_close(s->socket);
	pthread_mutex_lock(&s->mtx);
	s->closed = true; /* an abandoned server is never freed: safe */
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

/*
 * nng 1.5.2 can hang in nng_close even over inproc (seen in the TSan
 * client stress on a fresh Debian root: main in nng_close, every nng
 * thread idle), as zrpc's own runtimes know. The fake server closes on a
 * helper thread and waits at most FAKE_CLOSE_WAIT_MS; past that it is
 * abandoned: fake_server_stop neither joins its workers nor frees it, and
 * the test goes on (a later start on the same URL then fails, loudly,
 * rather than the whole program hanging).
 */
#define FAKE_CLOSE_WAIT_MS 3000

static void
fake_close_bounded(struct fake_server *s)
{
	pthread_t       thread;
	struct timespec until;

	if (pthread_create(&thread, NULL, fake_closer, s) != 0) {
		nng_close(s->socket);
		s->closed = true;
		return;
	}
	pthread_detach(thread);
	/* The condition variable waits on CLOCK_MONOTONIC (see start). */
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += FAKE_CLOSE_WAIT_MS / 1000;
	pthread_mutex_lock(&s->mtx);
	while (!s->closed) {
		if (pthread_cond_timedwait(&s->cv, &s->mtx, &until) != 0) {
			break;
		}
	}
	if (!s->closed) {
		s->abandoned = true;
		fprintf(stderr,
		    "fake server %s: nng_close did not return in %d ms; "
		    "left behind\n",
		    s->url, FAKE_CLOSE_WAIT_MS);
	}
	pthread_mutex_unlock(&s->mtx);
}

void
fake_server_kill(struct fake_server *s)
{
	bool first;

	pthread_mutex_lock(&s->mtx);
	first     = !s->killed;
	s->killed = true;
	pthread_mutex_unlock(&s->mtx);
	if (!first) {
		return;
	}
	/*
	 * Let the calls held at the gate go first: KILLED makes them end
	 * without a reply and without a new receive (fake_issue), so no
	 * worker touches the socket while it closes. Closing first, with
	 * workers still parked on their contexts, hung nng_close about one
	 * run in a hundred under load.
	 */
	pthread_mutex_lock(&s->mtx);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	fake_close_bounded(s);
}

void
fake_server_stop(struct fake_server *s)
{
	bool abandoned;
	int  i;

	if (s == NULL) {
		return;
	}
	fake_server_kill(s);
	pthread_mutex_lock(&s->mtx);
	abandoned = s->abandoned;
	pthread_mutex_unlock(&s->mtx);
	if (abandoned) {
		return; /* its close may still return and touch it */
	}
	for (i = 0; i < s->n_workers; i++) {
		pthread_join(s->workers[i], NULL);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}

void
fake_server_release(struct fake_server *s, int n)
{
	pthread_mutex_lock(&s->mtx);
	s->released += n;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mtx);
}

int
fake_server_count(struct fake_server *s, enum fake_counter counter)
{
	int value;

	pthread_mutex_lock(&s->mtx);
	value = s->counters[counter];
	pthread_mutex_unlock(&s->mtx);
	return value;
}

bool
fake_server_wait(struct fake_server *s, enum fake_counter counter,
    int at_least, int timeout_ms)
{
	struct timespec deadline;
	bool            reached;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mtx);
	while (s->counters[counter] < at_least) {
		if (pthread_cond_timedwait(&s->cv, &s->mtx, &deadline) ==
		    ETIMEDOUT) {
			break;
		}
	}
	reached = s->counters[counter] >= at_least;
	pthread_mutex_unlock(&s->mtx);
	return reached;
}

void
fake_server_last(struct fake_server *s, struct fake_record *out)
{
	pthread_mutex_lock(&s->mtx);
	*out = s->last;
	pthread_mutex_unlock(&s->mtx);
}

void
fake_server_serving(struct fake_server *server, bool serving)
{
	pthread_mutex_lock(&server->mtx);
	server->not_serving = !serving;
	pthread_mutex_unlock(&server->mtx);
}
