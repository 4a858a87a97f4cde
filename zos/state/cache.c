/*
 * The response cache; see cache.h for the contract.
 *
 * Shape. A chained hash table (a fixed power-of-two number of buckets, at
 * least the capacity, so chains stay short) finds an entry; a doubly
 * linked list threads every entry so that eviction, clear and finish can
 * walk them. Each entry owns a copy of its key (model and prompt, with
 * lengths) and one reference to an immutable response snapshot. The hash
 * only chooses the bucket: a match needs equal hash, equal lengths and
 * equal bytes for both model and prompt, so even a hash that returns a
 * constant (the collision test) costs speed, never correctness; chains
 * are bounded by the capacity, which bounds the damage of a hostile key
 * set too.
 *
 * Recency. DESIGN wants cache lookups that never wait on each other, so a
 * lookup takes response_cache for reading and cannot reorder a list.
 * Instead it stamps the entry with a value from a cache-wide atomic clock
 * (fetch-add, so stamps are unique and increasing). Eviction happens only
 * when a new key is stored at capacity, under the write lock, where no
 * lookup runs: it scans every entry for the smallest stamp, O(capacity),
 * which at the default capacity of 200 is a few hundred loads and cheaper
 * than making every lookup a writer. The order is exact LRU except that
 * two lookups racing on the clock may stamp in either order.
 *
 * Invariants, all under response_cache: an entry is in exactly one chain
 * and in the entry list; size counts the list; size <= capacity; entry
 * values are never NULL; a pending record is in the pending list from the
 * moment its computer claims the key until it has published the value to
 * the table (or given up on an error), so at most one compute per key is
 * in flight. The pending record's own mutex guards only its result; it is
 * never taken while response_cache is held, and no one waits on it while
 * holding any zOS lock.
 *
 * Short critical sections: everything that can be allocated is allocated
 * before the lock is taken, and everything replaced or evicted is freed
 * after it is released.
 */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* One cached (model, prompt) -> response. */
struct cache_entry {
	struct cache_entry         *chain; /* next in the bucket */
	struct cache_entry         *next;  /* entry list */
	struct cache_entry         *prev;
	uint64_t                    hash;
	atomic_uint_fast64_t        last_used; /* recency stamp */
	struct zos_cached_response *value;     /* guarded by: response_cache */
	size_t                      model_len;
	size_t                      prompt_len;
	char                        key[]; /* model NUL prompt NUL */
};

/* One compute in flight: its key, and the result its waiters receive. */
struct cache_pending {
	struct cache_pending       *next; /* guarded by: response_cache */
	struct cache_pending       *prev; /* guarded by: response_cache */
	uint64_t                    hash;
	atomic_uint                 refs; /* computer + waiters */
	pthread_mutex_t             mtx;
	pthread_cond_t              cv;
	bool                        done;   /* guarded by: mtx */
	int                         rv;     /* guarded by: mtx */
	struct zos_cached_response *result; /* guarded by: mtx; owned */
	size_t                      model_len;
	size_t                      prompt_len;
	char                        key[]; /* model NUL prompt NUL */
};

/* A validated key (borrowed strings) and its hash. */
struct cache_key {
	const char *model;
	size_t      model_len;
	const char *prompt;
	size_t      prompt_len;
	uint64_t    hash;
};

/* What a write section detached, to be freed after unlocking. */
struct cache_garbage {
	struct cache_entry         *entries; /* linked through chain */
	struct zos_cached_response *value;
};

static uint64_t
cache_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdu;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53u;
	x ^= x >> 33;
	return x;
}

uint64_t
zos_cache_default_hash(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t             h = seed ^ ((uint64_t) len * 0x9e3779b97f4a7c15u);
	uint64_t             v;

	while (len >= 8) {
		memcpy(&v, p, 8);
		h ^= cache_mix(v + 0x9e3779b97f4a7c15u);
		h = (h << 27 | h >> 37) * 0x9e3779b97f4a7c15u;
		p += 8;
		len -= 8;
	}
	v = 0;
	for (size_t i = 0; i < len; i++) {
		v |= (uint64_t) p[i] << (8 * i);
	}
	h ^= cache_mix(v ^ 0xa0761d6478bd642fu);
	return cache_mix(h);
}

/* A per-cache seed, so that keys colliding in one process do not in the
 * next. Not secret-grade when getrandom fails; chains are bounded anyway. */
static uint64_t
cache_seed(const struct zos_cache *cache)
{
	uint64_t        seed = 0;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed)) {
		return seed;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return cache_mix((uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 32) ^
	    (uint64_t) (uintptr_t) cache);
}

/* Validates MODEL and PROMPT and fills KEY. Returns 0, ZOS_CACHE_INVALID
 * or ZOS_CACHE_TOO_LARGE. */
static int
cache_key_make(const struct zos_cache *cache, const char *model,
    const char *prompt, struct cache_key *key)
{
	if (model == NULL || prompt == NULL) {
		return ZOS_CACHE_INVALID;
	}
	key->model_len  = strnlen(model, ZOS_CACHE_MAX_MODEL_BYTES + 1);
	key->prompt_len = strnlen(prompt, ZOS_CACHE_MAX_PROMPT_BYTES + 1);
	if (key->model_len > ZOS_CACHE_MAX_MODEL_BYTES ||
	    key->prompt_len > ZOS_CACHE_MAX_PROMPT_BYTES) {
		return ZOS_CACHE_TOO_LARGE;
	}
	key->model  = model;
	key->prompt = prompt;
	key->hash   = cache->hash(model, key->model_len, cache->seed);
	key->hash   = cache->hash(prompt, key->prompt_len, key->hash);
	return 0;
}

/* True when the stored key (lengths, then bytes of KEYBUF) equals KEY. */
static bool
cache_key_equal(const struct cache_key *key, uint64_t hash, size_t model_len,
    size_t prompt_len, const char *keybuf)
{
	return hash == key->hash && model_len == key->model_len &&
	    prompt_len == key->prompt_len &&
	    memcmp(keybuf, key->model, model_len) == 0 &&
	    memcmp(keybuf + model_len + 1, key->prompt, prompt_len) == 0;
}

/* Copies KEY into KEYBUF as model NUL prompt NUL. */
static void
cache_key_copy(const struct cache_key *key, char *keybuf)
{
	memcpy(keybuf, key->model, key->model_len);
	keybuf[key->model_len] = '\0';
	memcpy(keybuf + key->model_len + 1, key->prompt, key->prompt_len);
	keybuf[key->model_len + 1 + key->prompt_len] = '\0';
}

/* A new snapshot with one reference, or NULL. */
static struct zos_cached_response *
cache_response_new(int error, const char *text, size_t len)
{
	struct zos_cached_response *r;

	if ((r = malloc(sizeof(*r) + len + 1)) == NULL) {
		return NULL;
	}
	atomic_init(&r->refs, 1);
	r->error = error;
	r->len   = len;
	memcpy(r->text, text, len);
	r->text[len] = '\0';
	return r;
}

struct zos_cached_response *
zos_cache_response_ref(struct zos_cached_response *response)
{
	atomic_fetch_add_explicit(&response->refs, 1, memory_order_relaxed);
	return response;
}

void
zos_cache_response_unref(struct zos_cached_response *response)
{
	if (response != NULL &&
	    atomic_fetch_sub_explicit(
	        &response->refs, 1, memory_order_acq_rel) == 1) {
		free(response);
	}
}

/* A new, unlinked entry for KEY (no value yet), or NULL. */
static struct cache_entry *
cache_entry_new(const struct cache_key *key)
{
	struct cache_entry *e;

	e = malloc(sizeof(*e) + key->model_len + key->prompt_len + 2);
	if (e == NULL) {
		return NULL;
	}
	e->chain = e->next = e->prev = NULL;
	e->hash                      = key->hash;
	atomic_init(&e->last_used, 0);
	e->value      = NULL;
	e->model_len  = key->model_len;
	e->prompt_len = key->prompt_len;
	cache_key_copy(key, e->key);
	return e;
}

static void
cache_entry_free(struct cache_entry *e)
{
	zos_cache_response_unref(e->value);
	free(e);
}

/* Frees what a write section detached. Call without the lock. */
static void
cache_garbage_free(struct cache_garbage *g)
{
	while (g->entries != NULL) {
		struct cache_entry *e = g->entries;
		g->entries            = e->chain;
		cache_entry_free(e);
	}
	zos_cache_response_unref(g->value);
	g->value = NULL;
}

/* Marks E as used now. Safe under the read lock (atomic). */
static void
cache_touch(struct zos_cache *cache, struct cache_entry *e)
{
	uint64_t stamp;

	/* Already the most recent (and stamped at all): nothing to write,
	 * so lookups of a hot key from many threads share no written line. */
	uint64_t last =
	    atomic_load_explicit(&e->last_used, memory_order_relaxed);
	if (last != 0 &&
	    last ==
	        atomic_load_explicit(&cache->clock, memory_order_relaxed)) {
		return;
	}
	stamp =
	    atomic_fetch_add_explicit(&cache->clock, 1, memory_order_relaxed) +
	    1;
	atomic_store_explicit(&e->last_used, stamp, memory_order_relaxed);
}

/* Counts a hit or a miss in this thread's shard. */
static void
cache_count(struct zos_cache *cache, bool hit)
{
	struct zos_cache_counters *c =
	    &cache->counters[zos_lock_thread_slot(cache->domain)];

	atomic_fetch_add_explicit(
	    hit ? &c->hits : &c->misses, 1, memory_order_relaxed);
}

static struct cache_entry *
cache_find(struct zos_cache *cache, const struct cache_key *key)
    ZOS_REQUIRES_SHARED(&cache->lock)
{
	struct cache_entry *e =
	    cache->buckets[key->hash & (cache->n_buckets - 1)];

	for (; e != NULL; e = e->chain) {
		if (cache_key_equal(
		        key, e->hash, e->model_len, e->prompt_len, e->key)) {
			return e;
		}
	}
	return NULL;
}

/* Finds KEY and, on a hit, returns its value with a reference added and
 * marks it used. */
static struct zos_cached_response *
cache_find_ref(struct zos_cache *cache, const struct cache_key *key)
    ZOS_REQUIRES_SHARED(&cache->lock)
{
	struct cache_entry *e = cache_find(cache, key);

	if (e == NULL) {
		return NULL;
	}
	cache_touch(cache, e);
	return zos_cache_response_ref(e->value);
}

/* Unlinks E from its chain and the entry list. */
static void
cache_unlink(struct zos_cache *cache, struct cache_entry *e)
    ZOS_REQUIRES(&cache->lock)
{
	struct cache_entry **pp =
	    &cache->buckets[e->hash & (cache->n_buckets - 1)];

	while (*pp != e) {
		pp = &(*pp)->chain;
	}
	*pp = e->chain;
	if (e->prev != NULL) {
		e->prev->next = e->next;
	} else {
		cache->head = e->next;
	}
	if (e->next != NULL) {
		e->next->prev = e->prev;
	}
	e->chain = e->next = e->prev = NULL;
	cache->size--;
}

/* Detaches the entry with the oldest stamp into G. O(size). */
static void
cache_evict_lru(struct zos_cache *cache, struct cache_garbage *g)
    ZOS_REQUIRES(&cache->lock)
{
	struct cache_entry *oldest = NULL;
	uint64_t            best   = UINT64_MAX;

	for (struct cache_entry *e = cache->head; e != NULL; e = e->next) {
		uint64_t stamp =
		    atomic_load_explicit(&e->last_used, memory_order_relaxed);
		if (oldest == NULL || stamp < best) {
			oldest = e;
			best   = stamp;
		}
	}
	if (oldest == NULL) {
		return;
	}
	cache_unlink(cache, oldest);
	oldest->chain = g->entries;
	g->entries    = oldest;
	atomic_fetch_add_explicit(&cache->evictions, 1, memory_order_relaxed);
}

/*
 * Puts VALUE (the caller's reference moves to the cache) under KEY, using
 * FRESH (an unlinked entry for KEY) if the key is new. What is replaced,
 * evicted or left unused goes to G.
 */
static void
cache_insert(struct zos_cache *cache, const struct cache_key *key,
    struct cache_entry *fresh, struct zos_cached_response *value,
    struct cache_garbage *g) ZOS_REQUIRES(&cache->lock)
{
	struct cache_entry *e = cache_find(cache, key);
	size_t              b;

	if (e != NULL) {
		g->value = e->value;
		e->value = value;
		cache_touch(cache, e);
		fresh->chain = g->entries;
		g->entries   = fresh;
		return;
	}
	if (cache->size >= cache->capacity) {
		cache_evict_lru(cache, g);
	}
	b                 = key->hash & (cache->n_buckets - 1);
	fresh->value      = value;
	fresh->chain      = cache->buckets[b];
	cache->buckets[b] = fresh;
	fresh->prev       = NULL;
	fresh->next       = cache->head;
	if (cache->head != NULL) {
		cache->head->prev = fresh;
	}
	cache->head = fresh;
	cache->size++;
	cache_touch(cache, fresh);
}

int
zos_cache_init(struct zos_cache *cache, size_t capacity,
    zos_cache_hash_fn hash, struct zos_lock_domain *domain)
{
	int rv;

	if (cache == NULL || domain == NULL ||
	    capacity > ZOS_CACHE_MAX_CAPACITY) {
		return ZOS_CACHE_INVALID;
	}
	memset(cache, 0, sizeof(*cache));
	cache->capacity =
	    capacity != 0 ? capacity : ZOS_CACHE_DEFAULT_CAPACITY;
	cache->n_buckets = 1;
	while (cache->n_buckets < cache->capacity) {
		cache->n_buckets <<= 1;
	}
	cache->domain = domain;
	cache->hash   = hash != NULL ? hash : zos_cache_default_hash;
	cache->seed   = cache_seed(cache);
	atomic_init(&cache->clock, 0);
	for (size_t i = 0; i < ZOS_LOCK_SLOTS; i++) {
		atomic_init(&cache->counters[i].hits, 0);
		atomic_init(&cache->counters[i].misses, 0);
	}
	atomic_init(&cache->evictions, 0);
	cache->buckets = calloc(cache->n_buckets, sizeof(*cache->buckets));
	if (cache->buckets == NULL) {
		return ZOS_CACHE_NO_MEMORY;
	}
	rv = zos_lock_init(
	    &cache->lock, ZOS_RANK_RESPONSE_CACHE, "response_cache", domain);
	if (rv != 0) {
		free(cache->buckets);
		cache->buckets = NULL;
		return rv == ENOMEM ? ZOS_CACHE_NO_MEMORY : ZOS_CACHE_SYSTEM;
	}
	return 0;
}

void
zos_cache_finish(struct zos_cache *cache) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	struct cache_entry *e;

	if (cache == NULL || cache->buckets == NULL) {
		return;
	}
	while ((e = cache->head) != NULL) {
		cache->head = e->next;
		cache_entry_free(e);
	}
	free(cache->buckets);
	cache->buckets = NULL;
	cache->size    = 0;
	zos_lock_finish(&cache->lock);
}

struct zos_cached_response *
zos_cache_lookup(
    struct zos_cache *cache, const char *model, const char *prompt)
{
	struct zos_cached_response *r;
	struct cache_key            key;

	if (cache == NULL) {
		return NULL;
	}
	if (cache_key_make(cache, model, prompt, &key) != 0) {
		cache_count(cache, false);
		return NULL;
	}
	zos_lock_read(&cache->lock);
	r = cache_find_ref(cache, &key);
	zos_unlock_read(&cache->lock);
	cache_count(cache, r != NULL);
	return r;
}

static char *cache_lookup_copy(struct zos_cache *cache, const char *model,
    const char *prompt, void *(*alloc)(void *arg, size_t size), void *arg,
    size_t *len, bool count_miss) ZOS_EXCLUDES(&cache->lock);

char *
zos_cache_lookup_copy(struct zos_cache *cache, const char *model,
    const char *prompt, void *(*alloc)(void *arg, size_t size), void *arg,
    size_t *len)
{
	return cache_lookup_copy(cache, model, prompt, alloc, arg, len, true);
}

char *
zos_cache_peek_copy(struct zos_cache *cache, const char *model,
    const char *prompt, void *(*alloc)(void *arg, size_t size), void *arg,
    size_t *len)
{
	return cache_lookup_copy(cache, model, prompt, alloc, arg, len, false);
}

/* The lookup_copy and peek_copy: COUNT_MISS says whether a miss counts. */
static char *
cache_lookup_copy(struct zos_cache *cache, const char *model,
    const char *prompt, void *(*alloc)(void *arg, size_t size), void *arg,
    size_t *len, bool count_miss)
{
	struct cache_entry *e;
	struct cache_key    key;
	char               *copy = NULL;

	*len = 0;
	if (cache == NULL || cache_key_make(cache, model, prompt, &key) != 0) {
		if (cache != NULL && count_miss) {
			cache_count(cache, false);
		}
		return NULL;
	}
	zos_lock_read(&cache->lock);
	if ((e = cache_find(cache, &key)) != NULL) {
		cache_touch(cache, e);
		if ((copy = alloc(arg, e->value->len + 1)) != NULL) {
			memcpy(copy, e->value->text, e->value->len);
			copy[e->value->len] = '\0';
			*len                = e->value->len;
		}
	}
	zos_unlock_read(&cache->lock);
	if (e != NULL || count_miss) {
		cache_count(cache, e != NULL);
	}
	return copy;
}

int
zos_cache_store(struct zos_cache *cache, const char *model, const char *prompt,
    const char *response)
{
	struct cache_key            key;
	struct cache_entry         *fresh;
	struct zos_cached_response *value;
	struct cache_garbage        g = { NULL, NULL };
	size_t                      len;
	int                         rv;

	if (cache == NULL || response == NULL) {
		return ZOS_CACHE_INVALID;
	}
	if ((rv = cache_key_make(cache, model, prompt, &key)) != 0) {
		return rv;
	}
	len = strnlen(response, ZOS_CACHE_MAX_RESPONSE_BYTES + 1);
	if (len > ZOS_CACHE_MAX_RESPONSE_BYTES) {
		return ZOS_CACHE_TOO_LARGE;
	}
	if ((value = cache_response_new(0, response, len)) == NULL) {
		return ZOS_CACHE_NO_MEMORY;
	}
	if ((fresh = cache_entry_new(&key)) == NULL) {
		zos_cache_response_unref(value);
		return ZOS_CACHE_NO_MEMORY;
	}
	zos_lock_write(&cache->lock);
	cache_insert(cache, &key, fresh, value, &g);
	zos_unlock_write(&cache->lock);
	cache_garbage_free(&g);
	return 0;
}

void
zos_cache_stats(struct zos_cache *cache, struct zos_cache_stats *out)
{
	if (cache == NULL || out == NULL) {
		return;
	}
	zos_lock_read(&cache->lock);
	out->size = cache->size;
	zos_unlock_read(&cache->lock);
	out->capacity = cache->capacity;
	out->hits     = 0;
	out->misses   = 0;
	for (size_t i = 0; i < ZOS_LOCK_SLOTS; i++) {
		out->hits += atomic_load_explicit(
		    &cache->counters[i].hits, memory_order_relaxed);
		out->misses += atomic_load_explicit(
		    &cache->counters[i].misses, memory_order_relaxed);
	}
	out->evictions =
	    atomic_load_explicit(&cache->evictions, memory_order_relaxed);
}

void
zos_cache_clear(struct zos_cache *cache)
{
	struct cache_entry *list, *e;

	if (cache == NULL) {
		return;
	}
	zos_lock_write(&cache->lock);
	list        = cache->head;
	cache->head = NULL;
	cache->size = 0;
	memset(cache->buckets, 0, cache->n_buckets * sizeof(*cache->buckets));
	zos_unlock_write(&cache->lock);
	while ((e = list) != NULL) {
		list = e->next;
		cache_entry_free(e);
	}
}

/* A condition variable timed on CLOCK_MONOTONIC (the deadlines' clock). */
static int
cache_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	int                rv;

	if ((rv = pthread_condattr_init(&attr)) != 0) {
		return rv;
	}
	rv = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rv == 0) {
		rv = pthread_cond_init(cv, &attr);
	}
	pthread_condattr_destroy(&attr);
	return rv;
}

/* A new pending record for KEY with one reference (the caller's). */
static struct cache_pending *
cache_pending_new(const struct cache_key *key)
{
	struct cache_pending *p;

	p = malloc(sizeof(*p) + key->model_len + key->prompt_len + 2);
	if (p == NULL) {
		return NULL;
	}
	if (pthread_mutex_init(&p->mtx, NULL) != 0) {
		free(p);
		return NULL;
	}
	if (cache_cond_init(&p->cv) != 0) {
		pthread_mutex_destroy(&p->mtx);
		free(p);
		return NULL;
	}
	p->next = p->prev = NULL;
	p->hash           = key->hash;
	atomic_init(&p->refs, 1);
	p->done       = false;
	p->rv         = 0;
	p->result     = NULL;
	p->model_len  = key->model_len;
	p->prompt_len = key->prompt_len;
	cache_key_copy(key, p->key);
	return p;
}

static void
cache_pending_unref(struct cache_pending *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) !=
	    1) {
		return;
	}
	zos_cache_response_unref(p->result);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mtx);
	free(p);
}

static struct cache_pending *
cache_pending_find(struct zos_cache *cache, const struct cache_key *key)
    ZOS_REQUIRES(&cache->lock)
{
	for (struct cache_pending *p = cache->pending; p != NULL;
	     p                       = p->next) {
		if (cache_key_equal(
		        key, p->hash, p->model_len, p->prompt_len, p->key)) {
			return p;
		}
	}
	return NULL;
}

static void
cache_pending_link(struct zos_cache *cache, struct cache_pending *p)
    ZOS_REQUIRES(&cache->lock)
{
	p->prev = NULL;
	p->next = cache->pending;
	if (cache->pending != NULL) {
		cache->pending->prev = p;
	}
	cache->pending = p;
}

static void
cache_pending_unlink(struct zos_cache *cache, struct cache_pending *p)
    ZOS_REQUIRES(&cache->lock)
{
	if (p->prev != NULL) {
		p->prev->next = p->next;
	} else {
		cache->pending = p->next;
	}
	if (p->next != NULL) {
		p->next->prev = p->prev;
	}
	p->next = p->prev = NULL;
}

/*
 * Waits for P's result until DEADLINE_NS (zrpc_now_ns time; 0 = none);
 * returns its code and a reference to its value, or ZOS_CACHE_TIMED_OUT.
 */
static int
cache_pending_wait(struct cache_pending *p, uint64_t deadline_ns,
    struct zos_cached_response **out_value)
{
	struct timespec until = {
		.tv_sec  = (time_t) (deadline_ns / 1000000000u),
		.tv_nsec = (long) (deadline_ns % 1000000000u),
	};
	int rv;

	pthread_mutex_lock(&p->mtx);
	while (!p->done) {
		if (deadline_ns == 0) {
			pthread_cond_wait(&p->cv, &p->mtx);
		} else if (pthread_cond_timedwait(&p->cv, &p->mtx, &until) ==
		    ETIMEDOUT) {
			break;
		}
	}
	if (!p->done) {
		pthread_mutex_unlock(&p->mtx);
		return ZOS_CACHE_TIMED_OUT;
	}
	rv = p->rv;
	if (p->result != NULL) {
		*out_value = zos_cache_response_ref(p->result);
	}
	pthread_mutex_unlock(&p->mtx);
	return rv;
}

/* Runs COMPUTE for KEY (no lock held) and turns its outcome into a
 * code and a snapshot (NULL when there is none to share). */
static int
cache_compute(struct zos_cache *cache, const struct cache_key *key,
    zos_cache_compute_fn compute, void *compute_arg,
    struct zos_cached_response **out)
{
	char  *text = NULL;
	size_t len;
	int    code, rv;

	zos_assert_no_locks_held(cache->domain, "cache compute");
	code = compute(compute_arg, key->model, key->prompt, &text);
	*out = NULL;
	if (code == 0) {
		if (text == NULL) {
			return ZOS_CACHE_INVALID;
		}
		len = strnlen(text, ZOS_CACHE_MAX_RESPONSE_BYTES + 1);
		rv  = ZOS_CACHE_TOO_LARGE;
		if (len <= ZOS_CACHE_MAX_RESPONSE_BYTES) {
			*out = cache_response_new(0, text, len);
			rv   = *out != NULL ? 0 : ZOS_CACHE_NO_MEMORY;
		}
		free(text);
		return rv;
	}
	/* An error: its message (clipped to the response bound). */
	len  = text != NULL ? strnlen(text, ZOS_CACHE_MAX_RESPONSE_BYTES) : 0;
	*out = cache_response_new(code, text != NULL ? text : "", len);
	free(text);
	return *out != NULL ? ZOS_CACHE_COMPUTE_FAILED : ZOS_CACHE_NO_MEMORY;
}

/* The claimed-key path: compute, publish to the table and to waiters. */
static int
cache_compute_and_publish(struct zos_cache *cache, const struct cache_key *key,
    struct cache_pending *p, zos_cache_compute_fn compute, void *compute_arg,
    struct zos_cached_response **out_value)
{
	struct zos_cached_response *result;
	struct cache_entry         *fresh = NULL;
	struct cache_garbage        g     = { NULL, NULL };
	int                         rv;

	rv = cache_compute(cache, key, compute, compute_arg, &result);
	if (rv == 0) {
		/* No memory for the entry: still answer, just don't cache. */
		fresh = cache_entry_new(key);
	}
	zos_lock_write(&cache->lock);
	cache_pending_unlink(cache, p);
	if (fresh != NULL) {
		cache_insert(
		    cache, key, fresh, zos_cache_response_ref(result), &g);
	}
	zos_unlock_write(&cache->lock);
	cache_garbage_free(&g);

	pthread_mutex_lock(&p->mtx);
	p->rv     = rv;
	p->result = result; /* P's reference */
	p->done   = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);

	if (result != NULL) {
		*out_value = zos_cache_response_ref(result);
	}
	return rv;
}

int
zos_cache_get_or_compute(struct zos_cache *cache, const char *model,
    const char *prompt, zos_cache_compute_fn compute, void *compute_arg,
    struct zos_cached_response **out_value, bool *out_was_cached)
{
	return zos_cache_get_or_compute_until(cache, model, prompt, compute,
	    compute_arg, 0, out_value, out_was_cached);
}

int
zos_cache_get_or_compute_until(struct zos_cache *cache, const char *model,
    const char *prompt, zos_cache_compute_fn compute, void *compute_arg,
    uint64_t deadline_ns, struct zos_cached_response **out_value,
    bool *out_was_cached)
{
	struct cache_key            key;
	struct zos_cached_response *hit;
	struct cache_pending       *mine, *other;
	int                         rv;

	if (out_value != NULL) {
		*out_value = NULL;
	}
	if (out_was_cached != NULL) {
		*out_was_cached = false;
	}
	if (cache == NULL || compute == NULL || out_value == NULL ||
	    out_was_cached == NULL) {
		return ZOS_CACHE_INVALID;
	}
	if ((rv = cache_key_make(cache, model, prompt, &key)) != 0) {
		cache_count(cache, false);
		return rv;
	}

	/* The common case: a hit under the read lock. */
	zos_lock_read(&cache->lock);
	hit = cache_find_ref(cache, &key);
	zos_unlock_read(&cache->lock);
	if (hit != NULL) {
		goto hit;
	}

	/* A miss: claim the key or join its compute. */
	if ((mine = cache_pending_new(&key)) == NULL) {
		cache_count(cache, false);
		return ZOS_CACHE_NO_MEMORY;
	}
	zos_lock_write(&cache->lock);
	if ((hit = cache_find_ref(cache, &key)) != NULL) {
		zos_unlock_write(&cache->lock);
		cache_pending_unref(mine);
		goto hit;
	}
	if ((other = cache_pending_find(cache, &key)) != NULL) {
		atomic_fetch_add_explicit(
		    &other->refs, 1, memory_order_relaxed);
	} else {
		cache_pending_link(cache, mine);
	}
	zos_unlock_write(&cache->lock);
	cache_count(cache, false);

	if (other != NULL) {
		cache_pending_unref(mine);
		rv = cache_pending_wait(other, deadline_ns, out_value);
		cache_pending_unref(other);
		return rv;
	}
	rv = cache_compute_and_publish(
	    cache, &key, mine, compute, compute_arg, out_value);
	cache_pending_unref(mine);
	return rv;

hit:
	cache_count(cache, true);
	*out_value      = hit;
	*out_was_cached = true;
	return 0;
}
