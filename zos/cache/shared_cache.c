/*
 * The shared second level of the response cache over Redis (the design,
 * its rules and why it is shaped so are at the top of shared_cache.h).
 *
 * The pool: POOL_SIZE slots, each a blocking hiredis connection or NULL,
 * handed out one caller at a time. The mutex guards only which slots are
 * free; a caller takes a slot, unlocks, connects if it must and runs one
 * command, then gives the slot back. No caller holds a slot across a
 * compute or a wait, so a pool of a few connections serves any number of
 * workers (they wait for a slot at most the I/O timeout, then go on
 * without Redis).
 *
 * Up and down: DOWN and RETRY_AT_NS are atomics read on every call with
 * no lock. The generation counts outages; a slot connected in an older
 * generation is reconnected before use, so that connections that died
 * with a Redis restart fail none of the calls after it is back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "shared_cache.h"
#include "zrpc/clock.h"

/* Fixed seeds: every node must name a prompt with the same key. */
#define SHARED_SEED_A 0x7a6f732d63616368u
#define SHARED_SEED_B 0x652d7368617265u
#define SHARED_VALUE_MAGIC "Z1"
#define SHARED_VALUE_HEADER 10 /* magic, model length, prompt length */
#define SHARED_BACKOFF_FIRST_MS 1
#define SHARED_BACKOFF_MAX_MS 25
#define SHARED_LOCK_MIN_MS 1000
#define SHARED_LOCK_MAX_MS 600000
/* Compare-and-delete: the lock goes only if this caller still holds it. */
#define SHARED_UNLOCK_SCRIPT                             \
	"if redis.call('get', KEYS[1]) == ARGV[1] then " \
	"return redis.call('del', KEYS[1]) else return 0 end"

struct shared_slot {
	redisContext *ctx;        /* NULL = not connected */
	uint64_t      generation; /* of ctx's connect */
};

struct zos_shared_cache {
	/* Set by create, read-only after. */
	char                    url[ZOS_SHARED_CACHE_URL_MAX];
	char                    host[ZOS_SHARED_CACHE_URL_MAX];
	int                     port;     /* 0 = unix socket at host */
	char                   *user;     /* NULL = none (password only) */
	char                   *password; /* NULL = no AUTH */
	uint32_t                ttl_s;
	uint32_t                io_timeout_ms;
	uint32_t                retry_ms;
	zos_cache_hash_fn       hash;
	zrpc_log_fn             log;
	void                   *log_arg;
	struct zos_lock_domain *domain; /* NULL = no lock assertion */
	size_t                  pool_size;
	/* The pool. */
	pthread_mutex_t     mu;
	pthread_cond_t      freed;  /* a slot came back */
	struct shared_slot *slots;  /* owned by whoever took the slot */
	size_t             *free;   /* guarded by: mu */
	size_t              n_free; /* guarded by: mu */
	/* Atomics, never locked. */
	atomic_bool          down;
	atomic_uint_fast64_t retry_at_ns;
	atomic_uint_fast64_t generation;
	atomic_uint_fast64_t hits;
	atomic_uint_fast64_t misses;
	atomic_uint_fast64_t errors;
	atomic_uint_fast64_t outages;
	atomic_uint_fast64_t waits;
};

static void shared_logf(const struct zos_shared_cache *sc,
    zrpc_log_level level, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void
shared_logf(const struct zos_shared_cache *sc, zrpc_log_level level,
    const char *format, ...)
{
	char    message[1024];
	va_list ap;

	if (sc->log == NULL) {
		return;
	}
	va_start(ap, format);
	vsnprintf(message, sizeof(message), format, ap);
	va_end(ap);
	sc->log(sc->log_arg, level, message);
}

bool
zos_shared_cache_parse_url(const char *url, char *host, size_t host_len,
    int *port, char *why, size_t why_len)
{
	const char *rest;
	const char *colon;
	char       *end;
	long        p = 6379;
	size_t      n;

	if (url == NULL || strlen(url) >= ZOS_SHARED_CACHE_URL_MAX) {
		snprintf(why, why_len, "no URL, or one over %d bytes",
		    ZOS_SHARED_CACHE_URL_MAX - 1);
		return false;
	}
	if (strncmp(url, "unix://", 7) == 0) {
		rest = url + 7;
		if (rest[0] != '/' || strlen(rest) >= host_len) {
			snprintf(why, why_len,
			    "'%s': unix:// wants an absolute socket path",
			    url);
			return false;
		}
		strcpy(host, rest);
		*port = 0;
		return true;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		snprintf(why, why_len,
		    "'%s': want redis://HOST:PORT or unix://PATH", url);
		return false;
	}
	rest  = url + 8;
	colon = strrchr(rest, ':');
	n     = colon != NULL ? (size_t) (colon - rest) : strlen(rest);
	if (colon != NULL) {
		errno = 0;
		p     = strtol(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1 || *end != '\0' || p < 1 ||
		    p > 65535) {
			snprintf(why, why_len,
			    "'%s': the port must be a number from 1 to 65535",
			    url);
			return false;
		}
	}
	if (n == 0 || n >= host_len || memchr(rest, '/', n) != NULL ||
	    memchr(rest, '@', n) != NULL) {
		snprintf(why, why_len,
		    "'%s': want redis://HOST:PORT (no user, password or path; "
		    "--cache-auth-file has those)",
		    url);
		return false;
	}
	memcpy(host, rest, n);
	host[n] = '\0';
	*port   = (int) p;
	return true;
}

/* Reads "PASSWORD" or "USER PASSWORD" from PATH's first line. */
static int
shared_read_auth(struct zos_shared_cache *sc, const char *path, char *error,
    size_t error_len)
{
	char   line[1024];
	FILE  *f = fopen(path, "r");
	char  *space;
	size_t n;

	if (f == NULL) {
		snprintf(error, error_len, "--cache-auth-file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL) {
		line[0] = '\0';
	}
	fclose(f);
	n       = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0 || n == sizeof(line) - 1) {
		snprintf(error, error_len,
		    "--cache-auth-file %s: want one line, PASSWORD or USER "
		    "PASSWORD (under 1023 bytes)",
		    path);
		explicit_bzero(line, sizeof(line));
		return -1;
	}
	space = strchr(line, ' ');
	if (space != NULL) {
		*space       = '\0';
		sc->user     = strdup(line);
		sc->password = strdup(space + 1);
		if (sc->user != NULL &&
		    (sc->user[0] == '\0' || sc->password[0] == '\0' ||
		        strchr(space + 1, ' ') != NULL)) {
			explicit_bzero(line, sizeof(line));
			snprintf(error, error_len,
			    "--cache-auth-file %s: want PASSWORD or USER "
			    "PASSWORD, one space between",
			    path);
			return -1;
		}
	} else {
		sc->password = strdup(line);
	}
	explicit_bzero(line, sizeof(line));
	if (sc->password == NULL || (space != NULL && sc->user == NULL)) {
		snprintf(error, error_len, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * Marks one failure: counts it and, if it is the first of an outage,
 * marks Redis down, retires the connections of this generation and logs
 * one line.
 */
static void
shared_failed(struct zos_shared_cache *sc, const char *why)
{
	bool was_up = false;

	atomic_fetch_add(&sc->errors, 1);
	atomic_store(&sc->retry_at_ns,
	    zrpc_now_ns() + (uint64_t) sc->retry_ms * 1000000u);
	if (atomic_compare_exchange_strong(&sc->down, &was_up, true)) {
		atomic_fetch_add(&sc->generation, 1);
		atomic_fetch_add(&sc->outages, 1);
		shared_logf(sc, ZRPC_LOG_WARN,
		    "shared cache: redis at %s unavailable (%s); answering "
		    "from this node's cache until it answers again",
		    sc->url, why);
	}
}

static void
shared_succeeded(struct zos_shared_cache *sc)
{
	bool was_down = true;

	if (atomic_load(&sc->down) &&
	    atomic_compare_exchange_strong(&sc->down, &was_down, false)) {
		shared_logf(sc, ZRPC_LOG_INFO,
		    "shared cache: redis at %s is back", sc->url);
	}
}

/*
 * Whether this call may talk to Redis: always when up; when down, one
 * caller per retry period (the one that moves RETRY_AT_NS on) probes.
 */
static bool
shared_ready(struct zos_shared_cache *sc)
{
	uint64_t at;
	uint64_t now;

	if (!atomic_load(&sc->down)) {
		return true;
	}
	now = zrpc_now_ns();
	at  = atomic_load(&sc->retry_at_ns);
	if (now < at) {
		return false;
	}
	return atomic_compare_exchange_strong(
	    &sc->retry_at_ns, &at, now + (uint64_t) sc->retry_ms * 1000000u);
}

static struct timeval
shared_timeval(uint32_t ms)
{
	return (struct timeval) { .tv_sec = ms / 1000,
		.tv_usec                  = (long) (ms % 1000) * 1000 };
}

/*
 * Connects SLOT (in the current generation) and authenticates. Returns 0,
 * or -1 with the reason in WHY (the slot left unconnected). *REFUSED is
 * set when Redis answered AUTH with an error.
 */
static int
shared_connect(struct zos_shared_cache *sc, struct shared_slot *slot,
    char *why, size_t why_len, bool *refused)
{
	struct timeval tv = shared_timeval(sc->io_timeout_ms);
	redisContext  *ctx;
	redisReply    *reply = NULL;

	*refused = false;
	redisFree(slot->ctx);
	slot->ctx        = NULL;
	slot->generation = atomic_load(&sc->generation);
	ctx = sc->port == 0 ? redisConnectUnixWithTimeout(sc->host, tv)
	                    : redisConnectWithTimeout(sc->host, sc->port, tv);
	if (ctx == NULL) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	if (ctx->err != 0) {
		snprintf(why, why_len, "connect: %s", ctx->errstr);
		redisFree(ctx);
		return -1;
	}
	if (redisSetTimeout(ctx, tv) != REDIS_OK) {
		snprintf(why, why_len, "cannot set a timeout");
		redisFree(ctx);
		return -1;
	}
	if (sc->password != NULL) {
		reply = sc->user != NULL
		    ? redisCommand(ctx, "AUTH %s %s", sc->user, sc->password)
		    : redisCommand(ctx, "AUTH %s", sc->password);
		if (reply == NULL) {
			snprintf(why, why_len, "AUTH: %s", ctx->errstr);
			redisFree(ctx);
			return -1;
		}
		if (reply->type == REDIS_REPLY_ERROR) {
			snprintf(
			    why, why_len, "AUTH refused: %.200s", reply->str);
			*refused = true;
			freeReplyObject(reply);
			redisFree(ctx);
			return -1;
		}
		freeReplyObject(reply);
	}
	slot->ctx = ctx;
	return 0;
}

/* Takes a free slot, waiting at most the I/O timeout; -1 if none. */
static long
shared_take(struct zos_shared_cache *sc)
{
	struct timespec until;
	long            i  = -1;
	int             rv = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += sc->io_timeout_ms / 1000;
	until.tv_nsec += (long) (sc->io_timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sc->mu);
	while (sc->n_free == 0 && rv == 0) {
		rv = pthread_cond_timedwait(&sc->freed, &sc->mu, &until);
	}
	if (sc->n_free > 0) {
		i = (long) sc->free[--sc->n_free];
	}
	pthread_mutex_unlock(&sc->mu);
	return i;
}

static void
shared_give(struct zos_shared_cache *sc, long i)
{
	pthread_mutex_lock(&sc->mu);
	sc->free[sc->n_free++] = (size_t) i;
	pthread_cond_signal(&sc->freed);
	pthread_mutex_unlock(&sc->mu);
}

/*
 * Runs one command on a pooled connection. Returns the reply (the caller
 * frees it), or NULL when Redis could not answer (counted and logged by
 * shared_failed; the caller goes on without Redis). An error reply counts
 * as a failure too.
 */
static redisReply *
shared_command(struct zos_shared_cache *sc, const char *format, ...)
{
	struct shared_slot *slot;
	redisReply         *reply;
	char                why[256];
	bool                refused;
	long                i;
	va_list             ap;

	if (sc->domain != NULL) {
		zos_assert_no_locks_held(sc->domain, "redis command");
	}
	if ((i = shared_take(sc)) < 0) {
		return NULL; /* pool busy: not Redis's failure */
	}
	slot = &sc->slots[i];
	if (slot->ctx == NULL ||
	    slot->generation != atomic_load(&sc->generation)) {
		if (shared_connect(sc, slot, why, sizeof(why), &refused) !=
		    0) {
			shared_give(sc, i);
			shared_failed(sc, why);
			return NULL;
		}
	}
	va_start(ap, format);
	reply = redisvCommand(slot->ctx, format, ap);
	va_end(ap);
	if (reply == NULL) {
		snprintf(why, sizeof(why), "%s", slot->ctx->errstr);
		redisFree(slot->ctx);
		slot->ctx = NULL;
		shared_give(sc, i);
		shared_failed(sc, why);
		return NULL;
	}
	shared_give(sc, i);
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "%.200s", reply->str);
		freeReplyObject(reply);
		shared_failed(sc, why);
		return NULL;
	}
	shared_succeeded(sc);
	return reply;
}

static void
shared_hex64(char *out, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 15; i >= 0; i--) {
		out[i] = digits[v & 15];
		v >>= 4;
	}
}

void
zos_shared_cache_key(const struct zos_shared_cache *sc, const char *model,
    const char *prompt, char *key)
{
	uint64_t a = sc->hash(model, strlen(model), SHARED_SEED_A);
	uint64_t b = sc->hash(model, strlen(model), SHARED_SEED_B);

	a = sc->hash(prompt, strlen(prompt), a);
	b = sc->hash(prompt, strlen(prompt), b);
	memcpy(key, "zos:c1:", 7);
	shared_hex64(key + 7, a);
	shared_hex64(key + 23, b);
	key[39] = '\0';
}

static void
shared_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char) (v >> 24);
	p[1] = (unsigned char) (v >> 16);
	p[2] = (unsigned char) (v >> 8);
	p[3] = (unsigned char) v;
}

static uint32_t
shared_get_u32(const unsigned char *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
	    (uint32_t) p[2] << 8 | (uint32_t) p[3];
}

/* The value: magic, lengths, model, prompt, text. NULL without memory. */
static unsigned char *
shared_encode(
    const char *model, const char *prompt, const char *text, size_t *len)
{
	size_t         m = strlen(model), p = strlen(prompt), t = strlen(text);
	unsigned char *v = malloc(SHARED_VALUE_HEADER + m + p + t);

	if (v == NULL) {
		return NULL;
	}
	memcpy(v, SHARED_VALUE_MAGIC, 2);
	shared_put_u32(v + 2, (uint32_t) m);
	shared_put_u32(v + 6, (uint32_t) p);
	memcpy(v + SHARED_VALUE_HEADER, model, m);
	memcpy(v + SHARED_VALUE_HEADER + m, prompt, p);
	memcpy(v + SHARED_VALUE_HEADER + m + p, text, t);
	*len = SHARED_VALUE_HEADER + m + p + t;
	return v;
}

/*
 * The text in VALUE if it is (MODEL, PROMPT)'s, malloc'd; NULL when it is
 * another key's (a collision), malformed, or memory ran out.
 */
static char *
shared_decode(const char *model, const char *prompt,
    const unsigned char *value, size_t len)
{
	size_t m = strlen(model), p = strlen(prompt);
	char  *text;

	if (len < SHARED_VALUE_HEADER + m + p ||
	    memcmp(value, SHARED_VALUE_MAGIC, 2) != 0 ||
	    shared_get_u32(value + 2) != m || shared_get_u32(value + 6) != p ||
	    memcmp(value + SHARED_VALUE_HEADER, model, m) != 0 ||
	    memcmp(value + SHARED_VALUE_HEADER + m, prompt, p) != 0) {
		return NULL;
	}
	len -= SHARED_VALUE_HEADER + m + p;
	if (memchr(value + SHARED_VALUE_HEADER + m + p, '\0', len) != NULL ||
	    len > ZOS_CACHE_MAX_RESPONSE_BYTES ||
	    (text = malloc(len + 1)) == NULL) {
		return NULL;
	}
	memcpy(text, value + SHARED_VALUE_HEADER + m + p, len);
	text[len] = '\0';
	return text;
}

/* Result of one read of the value. */
enum shared_read { SHARED_READ_HIT, SHARED_READ_MISS, SHARED_READ_DOWN };

static enum shared_read
shared_read(struct zos_shared_cache *sc, const char *key, const char *model,
    const char *prompt, char **text)
{
	redisReply *reply = shared_command(sc, "GET %s", key);

	*text = NULL;
	if (reply == NULL) {
		return SHARED_READ_DOWN;
	}
	if (reply->type == REDIS_REPLY_STRING) {
		*text = shared_decode(model, prompt,
		    (const unsigned char *) reply->str, reply->len);
	}
	freeReplyObject(reply);
	return *text != NULL ? SHARED_READ_HIT : SHARED_READ_MISS;
}

static void
shared_store(struct zos_shared_cache *sc, const char *key, const char *model,
    const char *prompt, const char *text)
{
	size_t         len;
	unsigned char *value = shared_encode(model, prompt, text, &len);
	redisReply    *reply;

	if (value == NULL) {
		return;
	}
	reply = shared_command(
	    sc, "SET %s %b EX %u", key, value, len, (unsigned) sc->ttl_s);
	free(value);
	if (reply != NULL) {
		freeReplyObject(reply);
	}
}

static void
shared_token(char *token)
{
	unsigned char raw[16];
	uint64_t      v;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t) sizeof(raw)) {
		/* Unique enough for a lock's owner: time and an address. */
		v = zrpc_now_ns() ^ (uint64_t) (uintptr_t) token;
		memcpy(raw, &v, 8);
		memcpy(raw + 8, &v, 8);
	}
	memcpy(&v, raw, 8);
	shared_hex64(token, v);
	memcpy(&v, raw + 8, 8);
	shared_hex64(token + 16, v);
	token[32] = '\0';
}

/* Deletes LOCK if it still holds TOKEN (it may have expired, and another
 * caller may hold it now). */
static void
shared_unlock(struct zos_shared_cache *sc, const char *lock, const char *token)
{
	redisReply *reply = shared_command(
	    sc, "EVAL %s 1 %s %s", SHARED_UNLOCK_SCRIPT, lock, token);

	if (reply != NULL) {
		freeReplyObject(reply);
	}
}

/* The lock's lifetime: the holder's time left (it gives up then), and a
 * margin for storing the value. */
static uint32_t
shared_lock_ms(uint64_t deadline_ns)
{
	uint64_t now = zrpc_now_ns();
	uint64_t ms;

	if (deadline_ns == 0) {
		return ZOS_SHARED_CACHE_DEFAULT_LOCK_MS;
	}
	ms = deadline_ns > now ? (deadline_ns - now) / 1000000u : 0;
	ms += SHARED_LOCK_MIN_MS;
	return ms > SHARED_LOCK_MAX_MS ? SHARED_LOCK_MAX_MS : (uint32_t) ms;
}

static void
shared_pause_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t) (ms / 1000),
		.tv_nsec               = (long) (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

int
zos_shared_cache_get_or_compute(struct zos_shared_cache *sc, const char *model,
    const char *prompt, zos_cache_compute_fn compute, void *compute_arg,
    uint64_t deadline_ns, char **out_text, bool *out_shared)
{
	char        key[ZOS_SHARED_CACHE_KEY_LEN];
	char        lock[ZOS_SHARED_CACHE_KEY_LEN + 5];
	char        token[33];
	uint64_t    backoff = SHARED_BACKOFF_FIRST_MS;
	uint64_t    wait_until;
	uint64_t    now;
	bool        first  = true;
	bool        waited = false;
	redisReply *reply;
	int         rv;

	if (sc == NULL || model == NULL || prompt == NULL || compute == NULL ||
	    out_text == NULL || out_shared == NULL) {
		return ZOS_SHARED_CACHE_INVALID;
	}
	*out_text   = NULL;
	*out_shared = false;
	if (!shared_ready(sc)) {
		return compute(compute_arg, model, prompt, out_text);
	}
	zos_shared_cache_key(sc, model, prompt, key);
	snprintf(lock, sizeof(lock), "%s:lock", key);
	shared_token(token);
	wait_until = deadline_ns != 0 ? deadline_ns
	                              : zrpc_now_ns() +
	        (uint64_t) ZOS_SHARED_CACHE_MAX_WAIT_MS * 1000000u;
	/* Bounded by WAIT_UNTIL: every round that does not return waits
	 * at least 1 ms. */
	for (;;) {
		switch (shared_read(sc, key, model, prompt, out_text)) {
		case SHARED_READ_HIT:
			atomic_fetch_add(&sc->hits, 1);
			*out_shared = true;
			return 0;
		case SHARED_READ_DOWN:
			return compute(compute_arg, model, prompt, out_text);
		case SHARED_READ_MISS:
			break;
		}
		if (first) {
			atomic_fetch_add(&sc->misses, 1);
			first = false;
		}
		reply = shared_command(sc, "SET %s %s NX PX %u", lock, token,
		    (unsigned) shared_lock_ms(deadline_ns));
		if (reply == NULL) {
			return compute(compute_arg, model, prompt, out_text);
		}
		if (reply->type == REDIS_REPLY_STATUS) {
			freeReplyObject(reply);
			break; /* the lock is ours */
		}
		freeReplyObject(reply);
		if (!waited) {
			atomic_fetch_add(&sc->waits, 1);
			waited = true;
		}
		now = zrpc_now_ns();
		if (now >= wait_until) {
			return ZOS_SHARED_CACHE_TIMED_OUT;
		}
		if (backoff * 1000000u > wait_until - now) {
			backoff = (wait_until - now + 999999u) / 1000000u;
		}
		shared_pause_ms(backoff);
		backoff = backoff * 2 > SHARED_BACKOFF_MAX_MS
		    ? SHARED_BACKOFF_MAX_MS
		    : backoff * 2;
	}
	/* The lock is ours, but the holder before us may have stored the
	 * value and unlocked between our read and our SET NX: read again
	 * (the holder stores before it unlocks, so this read sees it). */
	if (shared_read(sc, key, model, prompt, out_text) == SHARED_READ_HIT) {
		atomic_fetch_add(&sc->hits, 1);
		*out_shared = true;
		rv          = 0;
	} else {
		rv = compute(compute_arg, model, prompt, out_text);
		if (rv == 0 && *out_text != NULL) {
			shared_store(sc, key, model, prompt, *out_text);
		}
	}
	shared_unlock(sc, lock, token);
	return rv;
}

struct zos_shared_cache *
zos_shared_cache_create(const struct zos_shared_cache_config *config,
    char *error, size_t error_len)
{
	struct zos_shared_cache *sc;
	pthread_condattr_t       attr;
	char                     why[256];
	bool                     refused = false;

	if (config == NULL || config->url == NULL) {
		snprintf(error, error_len, "no --cache-url");
		return NULL;
	}
	if ((sc = calloc(1, sizeof(*sc))) == NULL) {
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	if (!zos_shared_cache_parse_url(config->url, sc->host,
	        sizeof(sc->host), &sc->port, error, error_len)) {
		free(sc);
		return NULL;
	}
	snprintf(sc->url, sizeof(sc->url), "%s", config->url);
	sc->ttl_s         = config->ttl_s != 0 ? config->ttl_s
	                                       : ZOS_SHARED_CACHE_DEFAULT_TTL_S;
	sc->io_timeout_ms = config->io_timeout_ms != 0
	    ? config->io_timeout_ms
	    : ZOS_SHARED_CACHE_DEFAULT_IO_TIMEOUT_MS;
	sc->retry_ms      = config->retry_ms != 0
	         ? config->retry_ms
	         : ZOS_SHARED_CACHE_DEFAULT_RETRY_MS;
	sc->hash =
	    config->hash != NULL ? config->hash : zos_cache_default_hash;
	sc->log       = config->log;
	sc->log_arg   = config->log_arg;
	sc->domain    = config->domain;
	sc->pool_size = config->pool_size != 0 ? config->pool_size
	                                       : ZOS_SHARED_CACHE_DEFAULT_POOL;
	if (sc->pool_size > ZOS_SHARED_CACHE_MAX_POOL) {
		sc->pool_size = ZOS_SHARED_CACHE_MAX_POOL;
	}
	atomic_init(&sc->down, false);
	atomic_init(&sc->retry_at_ns, 0);
	atomic_init(&sc->generation, 1);
	atomic_init(&sc->hits, 0);
	atomic_init(&sc->misses, 0);
	atomic_init(&sc->errors, 0);
	atomic_init(&sc->outages, 0);
	atomic_init(&sc->waits, 0);
	if (config->auth_file != NULL &&
	    shared_read_auth(sc, config->auth_file, error, error_len) != 0) {
		goto fail_auth;
	}
	sc->slots = calloc(sc->pool_size, sizeof(*sc->slots));
	sc->free  = calloc(sc->pool_size, sizeof(*sc->free));
	if (sc->slots == NULL || sc->free == NULL) {
		snprintf(error, error_len, "out of memory");
		goto fail_pool;
	}
	for (size_t i = 0; i < sc->pool_size; i++) {
		sc->free[i] = i;
	}
	sc->n_free = sc->pool_size;
	if (pthread_mutex_init(&sc->mu, NULL) != 0) {
		snprintf(error, error_len, "cannot make a mutex");
		goto fail_pool;
	}
	if (pthread_condattr_init(&attr) != 0 ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&sc->freed, &attr) != 0) {
		snprintf(error, error_len, "cannot make a condition variable");
		goto fail_cond;
	}
	pthread_condattr_destroy(&attr);
	/* One connection now: a refused password is a start-up error; an
	 * unreachable Redis is an outage like any other. */
	if (shared_connect(sc, &sc->slots[0], why, sizeof(why), &refused) !=
	    0) {
		if (refused) {
			snprintf(error, error_len, "--cache-url %s: %s",
			    sc->url, why);
			goto fail_connect;
		}
		shared_failed(sc, why);
	}
	return sc;

fail_connect:
	pthread_cond_destroy(&sc->freed);
fail_cond:
	pthread_mutex_destroy(&sc->mu);
fail_pool:
	free(sc->slots);
	free(sc->free);
fail_auth:
	if (sc->password != NULL) {
		explicit_bzero(sc->password, strlen(sc->password));
	}
	free(sc->password);
	free(sc->user);
	free(sc);
	return NULL;
}

void
zos_shared_cache_destroy(struct zos_shared_cache *sc)
{
	if (sc == NULL) {
		return;
	}
	for (size_t i = 0; i < sc->pool_size; i++) {
		redisFree(sc->slots[i].ctx);
	}
	pthread_cond_destroy(&sc->freed);
	pthread_mutex_destroy(&sc->mu);
	free(sc->slots);
	free(sc->free);
	if (sc->password != NULL) {
		explicit_bzero(sc->password, strlen(sc->password));
	}
	free(sc->password);
	free(sc->user);
	free(sc);
}

void
zos_shared_cache_stats(
    const struct zos_shared_cache *sc, struct zos_shared_cache_stats *out)
{
	struct zos_shared_cache *m = (struct zos_shared_cache *) sc;

	out->hits    = atomic_load(&m->hits);
	out->misses  = atomic_load(&m->misses);
	out->errors  = atomic_load(&m->errors);
	out->outages = atomic_load(&m->outages);
	out->waits   = atomic_load(&m->waits);
	out->up      = !atomic_load(&m->down);
}

const char *
zos_shared_cache_url(const struct zos_shared_cache *sc)
{
	return sc->url;
}
