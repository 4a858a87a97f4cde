/*
 * Proof sessions; see sessions.h for the state machine and the contract.
 *
 * The table is an array of sessions in creation order plus an open
 * addressing index (id -> array position) of at least twice max_sessions
 * slots, so a lookup is O(1) and the index never fills. Sessions are never
 * removed, which keeps both simple: the array position of a session never
 * changes, the index needs no tombstones, and a page token (the id of the
 * first session of the next page) stays valid for the life of the table.
 * Per-state counts are kept as the states change, so counting for metrics
 * is O(1) under the read lock.
 *
 * An id is 16 hex digits: 8 from getrandom(2), drawn per session outside
 * the lock, then 8 from a keyed bijective mix of the session's serial
 * number. The mix makes ids unique by construction (serials are below
 * 2^32, max_sessions far less), the random half makes them hard to guess;
 * neither half is a cryptographic capability.
 *
 * Invariants, all under session_state: count <= max_sessions <= capacity
 * of the index / 2; index holds exactly the positions 0..count-1, each
 * under its session's id; state_counts[st] is the number of sessions in
 * st; a version changes only by +1 in an accepted transition or reset;
 * seq grows by one with every accepted start, transition and reset, so it
 * is at least the sum of the versions (equal to it unless restored from an
 * image that said otherwise).
 * Critical sections copy values in or out and nothing else: allocation for
 * a page and randomness for an id happen before the lock is taken, and no
 * function here performs I/O.
 *
 * Persistence (store.h) needs a number that says how far the table has
 * come: seq. It is changed only under the write lock, so a copy taken
 * under the read lock (zos_sessions_snapshot) holds exactly the changes
 * its seq counts; it is atomic so that a caller can read it after its own
 * change without taking the lock again. A restored table continues from
 * the image: the same seq, the same id key, and serials after the
 * restored sessions, so new ids never repeat restored ones.
 */
#include "sessions.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct zos_sessions {
	struct zos_lock lock;
	size_t          max_sessions; /* immutable */
	uint32_t        id_key;       /* set before sharing; keys the mix */
	size_t          index_mask;   /* immutable; index slots - 1 */

	/* guarded by: session_state */
	struct zos_session *entries; /* creation order */
	size_t              count;
	size_t              capacity; /* of entries */
	uint32_t           *index;    /* position + 1; 0 = empty slot */
	uint64_t            state_counts[ZOS_PROOF_STATE_COUNT];

	/* Written under session_state (write); read anywhere. */
	atomic_uint_fast64_t seq;
};

static const char *const sessions_state_names[ZOS_PROOF_STATE_COUNT] = {
	"PROOF_STATE_UNSPECIFIED",
	"AWAITING_SOLUTION",
	"ANALYZING",
	"FEEDBACK_READY",
	"SOLVED",
	"ABANDONED",
};

/* Wall clock in milliseconds since the epoch. */
static int64_t
sessions_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fills BUF with LEN random bytes. Returns 0 or an errno value. */
static int
sessions_random(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno;
		}
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/* A bijection of 32-bit integers (xorshift-multiply rounds, each one
 * invertible), keyed by KEY: distinct serials give distinct results. */
static uint32_t
sessions_mix(uint32_t serial, uint32_t key)
{
	uint32_t x = serial ^ key;

	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

/* True when ID has the shape of an id this module makes. */
static bool
sessions_id_valid(const char *id)
{
	if (id == NULL) {
		return false;
	}
	for (size_t i = 0; i < ZOS_SESSION_ID_LEN; i++) {
		char c = id[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return id[ZOS_SESSION_ID_LEN] == '\0';
}

/* FNV-1a over the id's digits. */
static size_t
sessions_hash(const char *id)
{
	uint64_t h = 1469598103934665603u;

	for (size_t i = 0; i < ZOS_SESSION_ID_LEN; i++) {
		h ^= (unsigned char) id[i];
		h *= 1099511628211u;
	}
	return (size_t) (h ^ (h >> 32));
}

/* Position of session ID (well formed) in entries, or -1. */
static ptrdiff_t
sessions_find(struct zos_sessions *s, const char *id)
    ZOS_REQUIRES_SHARED(s->lock)
{
	size_t slot = sessions_hash(id) & s->index_mask;

	for (;;) {
		uint32_t v = s->index[slot];
		if (v == 0) {
			return -1;
		}
		if (memcmp(s->entries[v - 1].id, id, ZOS_SESSION_ID_LEN) ==
		    0) {
			return (ptrdiff_t) v - 1;
		}
		slot = (slot + 1) & s->index_mask;
	}
}

/* Records position POS under its session's id in the index. */
static void
sessions_index_insert(struct zos_sessions *s, size_t pos) ZOS_REQUIRES(s->lock)
{
	size_t slot = sessions_hash(s->entries[pos].id) & s->index_mask;

	while (s->index[slot] != 0) {
		slot = (slot + 1) & s->index_mask;
	}
	s->index[slot] = (uint32_t) pos + 1;
}

/* Makes room for one more entry. Returns 0 or ENOMEM. */
static int
sessions_grow(struct zos_sessions *s) ZOS_REQUIRES(s->lock)
{
	struct zos_session *entries;
	size_t              capacity;

	if (s->count < s->capacity) {
		return 0;
	}
	capacity = s->capacity < 16 ? 16 : s->capacity * 2;
	if (capacity > s->max_sessions) {
		capacity = s->max_sessions;
	}
	entries = realloc(s->entries, capacity * sizeof(*entries));
	if (entries == NULL) {
		return ENOMEM;
	}
	s->entries  = entries;
	s->capacity = capacity;
	return 0;
}

/* Sets E's state to TO, counting the change as one version and one
 * change of the table. */
static void
sessions_apply(struct zos_sessions *s, struct zos_session *e,
    enum zos_proof_state to) ZOS_REQUIRES(s->lock)
{
	int64_t now = sessions_now_ms();

	s->state_counts[e->state]--;
	s->state_counts[to]++;
	e->state = to;
	e->version++;
	if (now > e->updated_unix_ms) {
		e->updated_unix_ms = now;
	}
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
}

bool
zos_proof_transition_allowed(
    enum zos_proof_state from, enum zos_proof_state to)
{
	switch (from) {
	case ZOS_PROOF_AWAITING_SOLUTION:
		return to == ZOS_PROOF_ANALYZING || to == ZOS_PROOF_ABANDONED;
	case ZOS_PROOF_ANALYZING:
		return to == ZOS_PROOF_FEEDBACK_READY ||
		    to == ZOS_PROOF_ABANDONED;
	case ZOS_PROOF_FEEDBACK_READY:
		return to == ZOS_PROOF_AWAITING_SOLUTION ||
		    to == ZOS_PROOF_SOLVED || to == ZOS_PROOF_ABANDONED;
	default:
		/* SOLVED and ABANDONED are terminal; others are no state. */
		return false;
	}
}

const char *
zos_proof_state_name(enum zos_proof_state state)
{
	if ((unsigned) state >= ZOS_PROOF_STATE_COUNT) {
		return "UNKNOWN";
	}
	return sessions_state_names[state];
}

enum zos_session_code
zos_sessions_create(struct zos_sessions **out, struct zos_lock_domain *domain,
    size_t max_sessions)
{
	struct zos_sessions *s;
	size_t               slots;

	if (max_sessions == 0) {
		max_sessions = ZOS_SESSIONS_DEFAULT_MAX;
	}
	if (max_sessions > ZOS_SESSIONS_LIMIT_MAX) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	for (slots = 16; slots < 2 * max_sessions; slots *= 2) { }
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		goto fail_struct;
	}
	s->max_sessions = max_sessions;
	s->index_mask   = slots - 1;
	atomic_init(&s->seq, 0);
	if ((s->index = calloc(slots, sizeof(*s->index))) == NULL) {
		goto fail_index;
	}
	if (sessions_random(&s->id_key, sizeof(s->id_key)) != 0) {
		goto fail_random;
	}
	if (zos_lock_init(&s->lock, ZOS_RANK_SESSION_STATE, "session_state",
	        domain) != 0) {
		goto fail_lock;
	}
	*out = s;
	return ZOS_SESSION_OK;

fail_lock:
fail_random:
	free(s->index);
fail_index:
	free(s);
fail_struct:
	return ZOS_SESSION_INTERNAL;
}

void
zos_sessions_destroy(struct zos_sessions *s)
{
	if (s == NULL) {
		return;
	}
	zos_lock_finish(&s->lock);
	free(s->entries);
	free(s->index);
	free(s);
}

struct zos_lock *
zos_sessions_lock(struct zos_sessions *s)
{
	return &s->lock;
}

enum zos_session_code
zos_sessions_start(
    struct zos_sessions *s, const char *problem_id, struct zos_session *out)
{
	struct zos_session *e;
	uint32_t            prefix;
	size_t              len;

	if (problem_id == NULL) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	len = strnlen(problem_id, ZOS_SESSION_PROBLEM_ID_MAX + 1);
	if (len == 0 || len > ZOS_SESSION_PROBLEM_ID_MAX) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	/* getrandom may block (early boot): never under the lock. */
	if (sessions_random(&prefix, sizeof(prefix)) != 0) {
		return ZOS_SESSION_INTERNAL;
	}

	zos_lock_write(&s->lock);
	if (s->count >= s->max_sessions) {
		zos_unlock_write(&s->lock);
		return ZOS_SESSION_RESOURCE_EXHAUSTED;
	}
	if (sessions_grow(s) != 0) {
		zos_unlock_write(&s->lock);
		return ZOS_SESSION_INTERNAL;
	}
	e = &s->entries[s->count];
	snprintf(e->id, sizeof(e->id), "%08x%08x", prefix,
	    sessions_mix((uint32_t) s->count, s->id_key));
	memcpy(e->problem_id, problem_id, len);
	e->problem_id[len] = '\0';
	e->state           = ZOS_PROOF_AWAITING_SOLUTION;
	e->version         = 1;
	e->created_unix_ms = sessions_now_ms();
	e->updated_unix_ms = e->created_unix_ms;
	sessions_index_insert(s, s->count);
	s->count++;
	s->state_counts[ZOS_PROOF_AWAITING_SOLUTION]++;
	atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
	*out = *e;
	zos_unlock_write(&s->lock);
	return ZOS_SESSION_OK;
}

enum zos_session_code
zos_sessions_get(
    struct zos_sessions *s, const char *id, struct zos_session *out)
{
	ptrdiff_t pos;

	if (!sessions_id_valid(id)) {
		return ZOS_SESSION_NOT_FOUND;
	}
	zos_lock_read(&s->lock);
	if ((pos = sessions_find(s, id)) < 0) {
		zos_unlock_read(&s->lock);
		return ZOS_SESSION_NOT_FOUND;
	}
	*out = s->entries[pos];
	zos_unlock_read(&s->lock);
	return ZOS_SESSION_OK;
}

enum zos_session_code
zos_sessions_transition(struct zos_sessions *s, const char *id,
    enum zos_proof_state to_state, uint64_t expected_version,
    struct zos_session *out)
{
	struct zos_session   *e;
	ptrdiff_t             pos;
	enum zos_session_code rv;

	if (to_state <= ZOS_PROOF_STATE_UNSPECIFIED ||
	    to_state >= ZOS_PROOF_STATE_COUNT) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	if (!sessions_id_valid(id)) {
		return ZOS_SESSION_NOT_FOUND;
	}
	zos_lock_write(&s->lock);
	if ((pos = sessions_find(s, id)) < 0) {
		zos_unlock_write(&s->lock);
		return ZOS_SESSION_NOT_FOUND;
	}
	e = &s->entries[pos];
	if (expected_version != 0 && expected_version != e->version) {
		rv = ZOS_SESSION_ABORTED;
	} else if (!zos_proof_transition_allowed(e->state, to_state)) {
		rv = ZOS_SESSION_FAILED_PRECONDITION;
	} else {
		sessions_apply(s, e, to_state);
		rv = ZOS_SESSION_OK;
	}
	if (out != NULL) {
		*out = *e;
	}
	zos_unlock_write(&s->lock);
	return rv;
}

enum zos_session_code
zos_sessions_reset(
    struct zos_sessions *s, const char *id, struct zos_session *out)
{
	ptrdiff_t pos;

	if (!sessions_id_valid(id)) {
		return ZOS_SESSION_NOT_FOUND;
	}
	zos_lock_write(&s->lock);
	if ((pos = sessions_find(s, id)) < 0) {
		zos_unlock_write(&s->lock);
		return ZOS_SESSION_NOT_FOUND;
	}
	sessions_apply(s, &s->entries[pos], ZOS_PROOF_AWAITING_SOLUTION);
	if (out != NULL) {
		*out = s->entries[pos];
	}
	zos_unlock_write(&s->lock);
	return ZOS_SESSION_OK;
}

enum zos_session_code
zos_sessions_list(struct zos_sessions *s, uint32_t page_size,
    const char *page_token, struct zos_session_page *page)
{
	struct zos_session *buf;
	size_t              first = 0;
	size_t              n;
	bool                from_start;

	memset(page, 0, sizeof(*page));
	if (page_size == 0) {
		page_size = ZOS_SESSIONS_PAGE_DEFAULT;
	} else if (page_size > ZOS_SESSIONS_PAGE_MAX) {
		page_size = ZOS_SESSIONS_PAGE_MAX;
	}
	from_start = page_token == NULL || page_token[0] == '\0';
	if (!from_start && !sessions_id_valid(page_token)) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	if ((buf = calloc(page_size, sizeof(*buf))) == NULL) {
		return ZOS_SESSION_INTERNAL;
	}

	zos_lock_read(&s->lock);
	if (!from_start) {
		ptrdiff_t pos = sessions_find(s, page_token);
		if (pos < 0) {
			zos_unlock_read(&s->lock);
			free(buf);
			return ZOS_SESSION_INVALID_ARGUMENT;
		}
		first = (size_t) pos;
	}
	n = s->count - first;
	if (n > page_size) {
		n = page_size;
	}
	if (n > 0) { /* entries is NULL while the table is empty */
		memcpy(buf, &s->entries[first], n * sizeof(*buf));
	}
	if (first + n < s->count) {
		memcpy(page->next_page_token, s->entries[first + n].id,
		    sizeof(page->next_page_token));
	}
	page->total = s->count;
	zos_unlock_read(&s->lock);

	page->sessions = buf;
	page->count    = n;
	return ZOS_SESSION_OK;
}

void
zos_session_page_finish(struct zos_session_page *page)
{
	free(page->sessions);
	memset(page, 0, sizeof(*page));
}

uint64_t
zos_sessions_count_by_state(
    struct zos_sessions *s, uint64_t counts[ZOS_PROOF_STATE_COUNT])
{
	uint64_t total;

	zos_lock_read(&s->lock);
	memcpy(counts, s->state_counts, sizeof(s->state_counts));
	total = s->count;
	zos_unlock_read(&s->lock);
	return total;
}

uint64_t
zos_sessions_seq(struct zos_sessions *s)
{
	return atomic_load_explicit(&s->seq, memory_order_acquire);
}

enum zos_session_code
zos_sessions_snapshot(struct zos_sessions *s, struct zos_sessions_image *out)
{
	struct zos_session *buf  = NULL, *bigger;
	size_t              have = 0, want, n;

	memset(out, 0, sizeof(*out));
	/* Allocate for the count last seen, then copy if it still fits; the
	 * table only grows, and each retry asks for more, up to
	 * max_sessions, where it always fits. */
	for (;;) {
		zos_lock_read(&s->lock);
		want = s->count;
		if (want <= have) {
			if (want > 0) {
				memcpy(buf, s->entries, want * sizeof(*buf));
			}
			out->seq = atomic_load_explicit(
			    &s->seq, memory_order_relaxed);
			out->id_key = s->id_key;
			zos_unlock_read(&s->lock);
			break;
		}
		zos_unlock_read(&s->lock);
		n = want + want / 8 + 16;
		if (n > s->max_sessions) {
			n = s->max_sessions;
		}
		if ((bigger = realloc(buf, n * sizeof(*buf))) == NULL) {
			free(buf);
			return ZOS_SESSION_INTERNAL;
		}
		buf  = bigger;
		have = n;
	}
	out->sessions = buf;
	out->count    = want;
	return ZOS_SESSION_OK;
}

/* Checks session number I of an image on its own (not against the
 * others). Returns OK or INVALID_ARGUMENT with ERROR filled. */
static enum zos_session_code
sessions_restore_check(
    const struct zos_session *e, size_t i, char *error, size_t error_len)
{
	size_t len;

	if (!sessions_id_valid(e->id)) {
		snprintf(error, error_len,
		    "session %zu: id is not %d lowercase hex digits", i,
		    ZOS_SESSION_ID_LEN);
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	len = strnlen(e->problem_id, sizeof(e->problem_id));
	if (len == 0 || len > ZOS_SESSION_PROBLEM_ID_MAX) {
		snprintf(error, error_len,
		    "session %zu (%s): problem id must be 1..%d bytes", i,
		    e->id, ZOS_SESSION_PROBLEM_ID_MAX);
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	if (e->state <= ZOS_PROOF_STATE_UNSPECIFIED ||
	    e->state >= ZOS_PROOF_STATE_COUNT) {
		snprintf(error, error_len, "session %zu (%s): bad state %d", i,
		    e->id, (int) e->state);
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	if (e->version == 0) {
		snprintf(
		    error, error_len, "session %zu (%s): version 0", i, e->id);
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	return ZOS_SESSION_OK;
}

/*
 * The table is not shared yet, so the index and entries are filled
 * without the lock (which the analysis cannot know).
 */
enum zos_session_code
zos_sessions_restore(struct zos_sessions *s,
    const struct zos_sessions_image *image, char *error,
    size_t error_len) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	struct zos_session   *entries = NULL;
	uint64_t              changes = 0;
	size_t                capacity;
	enum zos_session_code rv;

	if (s->count != 0 || atomic_load(&s->seq) != 0) {
		snprintf(error, error_len, "the table is not empty");
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	if (image->count > s->max_sessions) {
		snprintf(error, error_len,
		    "%zu sessions, more than the bound of %zu", image->count,
		    s->max_sessions);
		return ZOS_SESSION_RESOURCE_EXHAUSTED;
	}
	for (size_t i = 0; i < image->count; i++) {
		const struct zos_session *e = &image->sessions[i];

		if ((rv = sessions_restore_check(e, i, error, error_len)) !=
		    ZOS_SESSION_OK) {
			return rv;
		}
		if (e->version > UINT64_MAX - changes) {
			changes = UINT64_MAX;
		} else {
			changes += e->version;
		}
	}
	/* Every start and every change counted one: fewer is a lie. */
	if (image->seq < changes) {
		snprintf(error, error_len,
		    "change count %llu is below the %llu the sessions record",
		    (unsigned long long) image->seq,
		    (unsigned long long) changes);
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	if (image->count > 0) {
		capacity = image->count < 16 ? 16 : image->count;
		if (capacity > s->max_sessions) {
			capacity = s->max_sessions;
		}
		if ((entries = malloc(capacity * sizeof(*entries))) == NULL) {
			snprintf(error, error_len, "out of memory");
			return ZOS_SESSION_INTERNAL;
		}
		memcpy(
		    entries, image->sessions, image->count * sizeof(*entries));
	} else {
		capacity = 0;
	}
	s->entries  = entries;
	s->capacity = capacity;
	for (size_t i = 0; i < image->count; i++) {
		if (sessions_find(s, entries[i].id) >= 0) {
			snprintf(error, error_len,
			    "session %zu: id %s is repeated", i,
			    entries[i].id);
			memset(s->index, 0,
			    (s->index_mask + 1) * sizeof(*s->index));
			s->entries  = NULL;
			s->capacity = 0;
			s->count    = 0;
			memset(s->state_counts, 0, sizeof(s->state_counts));
			free(entries);
			return ZOS_SESSION_INVALID_ARGUMENT;
		}
		sessions_index_insert(s, i);
		s->count = i + 1;
		s->state_counts[entries[i].state]++;
	}
	s->id_key = image->id_key;
	atomic_store(&s->seq, image->seq);
	return ZOS_SESSION_OK;
}

void
zos_sessions_image_finish(struct zos_sessions_image *image)
{
	free(image->sessions);
	memset(image, 0, sizeof(*image));
}
