/*
 * Proof sessions; see sessions.h for the state machine and the contract.
 *
 * The table is an array of slots plus an open addressing index (id ->
 * slot) of at least twice max_sessions entries, so a lookup is O(1) and
 * the index never fills. A session keeps its slot for its life; a removed
 * session's slot goes on a free list and the next new session takes it,
 * so the array never holds more than max_sessions slots and nothing ever
 * moves (a page token, the id of a session, finds its place at once).
 * The index uses linear probing with backward-shift deletion, so it needs
 * no tombstones either.
 *
 * Expiry. Finished sessions (SOLVED, ABANDONED) are also on a doubly
 * linked list in the order they finished; since those states are
 * terminal (only a reset leaves them, and takes the session off the
 * list), the head is the one that expires first, and a sweep pops expired
 * heads, at most ZOS_SESSIONS_SWEEP_MAX per lock hold: the cost of a sweep
 * is the number of sessions it removes, never the size of the table.
 * Between sweeps an expired session is already NOT_FOUND to every read
 * (each checks the time), so how often sweeps run changes only memory and
 * what the store holds, never what a caller sees.
 *
 * Owners. With a per-owner cap, an open addressing map owner key ->
 * sessions held (backward-shift deletion as well) is kept beside the
 * index, at most one entry per session, so it is bounded as the table is.
 *
 * Ids are the node id, a dash and 32 hex digits of getrandom(2) output
 * (128 bits; the node and the dash left out without a node id), drawn
 * outside the lock; a draw that equals a live id (never expected, but cheap to
 * check under the lock) is drawn again. id_key, which keyed the serial
 * half of the 16-digit ids of earlier versions, is kept only so that the
 * store's format round-trips.
 *
 * Invariants, all under session_state: count <= max_sessions; capacity
 * (slots allocated) <= max_sessions; the index holds exactly the live
 * slots, each under its session's id; every slot below used is live or on
 * the free list; state_counts[st] is the number of live sessions in st;
 * the finished list holds exactly the live sessions in a terminal state;
 * owners[k] is the number of live sessions of owner k; a version changes
 * only by +1 in an accepted transition or reset; seq grows by one with
 * every accepted start, transition, reset and sweep that removed
 * something, so it is at least the sum of the live versions.
 * Critical sections copy values in or out and nothing else: allocation
 * for a page and randomness for an id happen before the lock is taken,
 * and no function here performs I/O.
 *
 * Change tracking (sessions.h, "Durability"), when a store persists the
 * table. Every change marks its slot: the first change since the slot
 * was last durable keeps the durable value in a buffer allocated before
 * the lock was taken (a new session keeps none: it is FRESH), and puts
 * the slot on the dirty list, once. Readers see the durable value of a
 * marked slot, and nothing of a fresh one. A take empties the dirty list
 * into rows (the latest values) and the removed ids; when the store
 * committed them, a slot not changed since (same change_seq) drops its
 * buffer, and one changed since keeps the committed value in it; when
 * the store failed, every marked slot, taken or changed since, gets its
 * durable value back (fresh ones are removed). Invariants: a slot has a
 * buffer exactly while its latest value is not durable, and is then on
 * the dirty list or in a take the store has not answered yet; n_fresh
 * counts the live fresh slots.
 *
 * Persistence (store.h) needs a number that says how far the table has
 * come: seq. It is changed only under the write lock, so a copy taken
 * under the read lock (zos_sessions_snapshot) holds exactly the changes
 * its seq counts; it is atomic so that a caller can read it after its own
 * change without taking the lock again.
 */
#include "sessions.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SESSIONS_TTL_MAX_MS (100LL * 366 * 24 * 3600 * 1000) /* 100 y */
#define SESSIONS_ID_DRAWS 4 /* fresh ids tried before giving up */

/* A slot of the table. Links are slot + 1; 0 is "none". */
struct sessions_slot {
	struct zos_session s; /* the latest value: what writers see */
	/* Non-NULL while S is not durable: the value that is (what readers
	 * see), or, when FRESH, a buffer for it (the session is new: there
	 * is none yet, and readers do not see it). */
	struct zos_session *durable;
	uint32_t            prev; /* finished list */
	uint32_t            next; /* finished list, or free list */
	bool                live;
	bool                fresh; /* started, not durable yet */
	bool                dirty; /* on the dirty list (kept while free) */
};

/* An owner's count; count 0 marks an empty entry of the map. */
struct sessions_owner {
	uint64_t key;
	uint32_t count;
};

struct zos_sessions {
	struct zos_lock lock;
	size_t          max_sessions; /* immutable */
	uint32_t        id_key;       /* set before sharing; format only */
	uint32_t        node;         /* set before sharing; 0 = none */
	size_t          index_mask;   /* immutable; index slots - 1 */
	/* Set by configure, before sharing; read-only afterwards. */
	int64_t         ttl_ms;
	size_t          max_per_owner; /* 0 = no cap */
	zos_clock_ms_fn clock;
	void           *clock_arg;

	/* guarded by: session_state */
	struct sessions_slot  *slots;
	size_t                 used;     /* slots ever taken */
	size_t                 capacity; /* slots allocated */
	size_t                 count;    /* live sessions */
	uint32_t               free_head;
	uint32_t               finished_head, finished_tail;
	uint32_t              *index;  /* slot + 1; 0 = empty */
	struct sessions_owner *owners; /* NULL without a cap */
	uint64_t               state_counts[ZOS_PROOF_STATE_COUNT];

	/* Change tracking for the store (sessions.h, "Durability"). TRACK
	 * is set before sharing. A slot is on DIRTY at most once (its flag
	 * says so, and stays while the slot is free), so DIRTY needs no more
	 * room than the slots allocated. */
	bool      track;
	uint32_t *dirty; /* slots changed since the last take */
	size_t    n_dirty;
	char (*removed)[ZOS_SESSION_ID_LEN + 1]; /* ids removed since */
	size_t n_removed, removed_cap;
	size_t n_fresh; /* live sessions not durable yet */

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

int64_t
zos_clock_realtime_ms(void *arg)
{
	struct timespec ts;

	(void) arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
sessions_now_ms(const struct zos_sessions *s)
{
	return s->clock(s->clock_arg);
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

/* Writes NODE's prefix ("<NODE>-", nothing for 0) and the 16 bytes of
 * RANDOM as 32 lowercase hex digits and a NUL. */
static void
sessions_format_id(
    char id[ZOS_SESSION_ID_LEN + 1], uint32_t node, const uint8_t random[16])
{
	static const char digits[]  = "0123456789abcdef";
	char              prefix[8] = "";
	size_t            n         = 0;

	if (node != 0) {
		/* node <= 65535: at most 6 bytes with the dash */
		n = (size_t) snprintf(prefix, sizeof(prefix), "%u-", node);
		memcpy(id, prefix, n);
	}
	for (size_t i = 0; i < 16; i++) {
		id[n + 2 * i]     = digits[random[i] >> 4];
		id[n + 2 * i + 1] = digits[random[i] & 0xf];
	}
	id[n + ZOS_SESSION_HEX_LEN] = '\0';
}

/* The number of lowercase hex digits ID starts with, counting at most
 * ZOS_SESSION_HEX_LEN + 1. */
static size_t
sessions_hex_run(const char *id)
{
	size_t n = 0;

	for (; n <= ZOS_SESSION_HEX_LEN; n++) {
		char c = id[n];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			break;
		}
	}
	return n;
}

bool
zos_session_id_node(const char *id, uint32_t *node)
{
	uint32_t v = 0;
	size_t   n = 0;

	if (id == NULL || id[0] < '1' || id[0] > '9') {
		return false;
	}
	for (; id[n] >= '0' && id[n] <= '9'; n++) {
		if (n == 5) {
			return false; /* more digits than 65535 has */
		}
		v = v * 10 + (uint32_t) (id[n] - '0');
	}
	if (v > ZOS_SESSION_NODE_MAX || id[n] != '-' ||
	    sessions_hex_run(id + n + 1) != ZOS_SESSION_HEX_LEN ||
	    id[n + 1 + ZOS_SESSION_HEX_LEN] != '\0') {
		return false;
	}
	if (node != NULL) {
		*node = v;
	}
	return true;
}

bool
zos_session_id_valid(const char *id)
{
	size_t n;

	if (id == NULL) {
		return false;
	}
	n = sessions_hex_run(id);
	if (id[n] == '\0') {
		return n == ZOS_SESSION_HEX_LEN ||
		    n == ZOS_SESSION_LEGACY_ID_LEN;
	}
	return zos_session_id_node(id, NULL);
}

/* True when ID has the shape of an id (sessions.h). */
static bool
sessions_id_valid(const char *id)
{
	return zos_session_id_valid(id);
}

/* FNV-1a over the id's digits (a valid id). */
static size_t
sessions_hash(const char *id)
{
	uint64_t h = 1469598103934665603u;

	for (; *id != '\0'; id++) {
		h ^= (unsigned char) *id;
		h *= 1099511628211u;
	}
	return (size_t) (h ^ (h >> 32));
}

/* A 64-bit mix (splitmix64's finaliser), for the owners' map. */
static size_t
sessions_owner_hash(uint64_t key)
{
	key ^= key >> 30;
	key *= 0xbf58476d1ce4e5b9u;
	key ^= key >> 27;
	key *= 0x94d049bb133111ebu;
	key ^= key >> 31;
	return (size_t) key;
}

static bool
sessions_finished(enum zos_proof_state state)
{
	return state == ZOS_PROOF_SOLVED || state == ZOS_PROOF_ABANDONED;
}

/* True when E is finished and its TTL has run out by NOW. */
static bool
sessions_expired(
    const struct zos_sessions *s, const struct zos_session *e, int64_t now)
{
	return sessions_finished(e->state) &&
	    e->updated_unix_ms <= now - s->ttl_ms;
}

/* What readers see of slot E: its durable value, or NULL for a session
 * that is not durable yet. */
static const struct zos_session *
sessions_visible(const struct sessions_slot *e)
{
	if (e->durable == NULL) {
		return &e->s;
	}
	return e->fresh ? NULL : e->durable;
}

/* Slot of session ID (well formed) in the table, or -1. */
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
		if (strcmp(s->slots[v - 1].s.id, id) == 0) {
			return (ptrdiff_t) v - 1;
		}
		slot = (slot + 1) & s->index_mask;
	}
}

/* Slot of the live, unexpired session ID as writers see it, or -1. */
static ptrdiff_t
sessions_find_visible(struct zos_sessions *s, const char *id, int64_t now)
    ZOS_REQUIRES_SHARED(s->lock)
{
	ptrdiff_t pos = sessions_find(s, id);

	if (pos >= 0 && sessions_expired(s, &s->slots[pos].s, now)) {
		return -1;
	}
	return pos;
}

/* The durable, unexpired value of session ID as readers see it, or
 * NULL. */
static const struct zos_session *
sessions_find_readable(struct zos_sessions *s, const char *id, int64_t now)
    ZOS_REQUIRES_SHARED(s->lock)
{
	ptrdiff_t                 pos = sessions_find(s, id);
	const struct zos_session *v;

	if (pos < 0 || (v = sessions_visible(&s->slots[pos])) == NULL ||
	    sessions_expired(s, v, now)) {
		return NULL;
	}
	return v;
}

/*
 * Records that slot POS is about to change: keeps its durable value (in
 * *SPARE, which is taken) the first time it changes since it was last
 * durable, and puts it on the dirty list. Nothing without tracking.
 */
static void
sessions_mark(struct zos_sessions *s, size_t pos, struct zos_session **spare)
    ZOS_REQUIRES(s->lock)
{
	struct sessions_slot *e = &s->slots[pos];

	if (!s->track) {
		return;
	}
	if (e->durable == NULL) {
		e->durable = *spare;
		*spare     = NULL;
		if (!e->fresh) {
			*e->durable = e->s;
		}
	}
	if (!e->dirty) {
		e->dirty               = true;
		s->dirty[s->n_dirty++] = (uint32_t) pos;
	}
}

/* A buffer for sessions_mark, allocated before the lock is taken; NULL
 * when not tracking. *FAILED when tracking and out of memory. */
static struct zos_session *
sessions_spare(const struct zos_sessions *s, bool *failed)
{
	struct zos_session *spare = NULL;

	*failed = false;
	if (s->track && (spare = malloc(sizeof(*spare))) == NULL) {
		*failed = true;
	}
	return spare;
}

/* Records slot POS under its session's id in the index. */
static void
sessions_index_insert(struct zos_sessions *s, size_t pos) ZOS_REQUIRES(s->lock)
{
	size_t slot = sessions_hash(s->slots[pos].s.id) & s->index_mask;

	while (s->index[slot] != 0) {
		slot = (slot + 1) & s->index_mask;
	}
	s->index[slot] = (uint32_t) pos + 1;
}

/* True when HOME lies cyclically in (HOLE, J]: the entry at J may not
 * move back to HOLE. */
static bool
sessions_probe_between(size_t hole, size_t home, size_t j)
{
	return hole <= j ? (hole < home && home <= j)
	                 : (hole < home || home <= j);
}

/* Takes slot POS out of the index (backward-shift deletion). */
static void
sessions_index_remove(struct zos_sessions *s, size_t pos) ZOS_REQUIRES(s->lock)
{
	size_t hole = sessions_hash(s->slots[pos].s.id) & s->index_mask;
	size_t j;

	while (s->index[hole] != (uint32_t) pos + 1) {
		hole = (hole + 1) & s->index_mask;
	}
	for (j = hole;;) {
		size_t home;

		s->index[hole] = 0;
		do {
			j = (j + 1) & s->index_mask;
			if (s->index[j] == 0) {
				return;
			}
			home = sessions_hash(s->slots[s->index[j] - 1].s.id) &
			    s->index_mask;
		} while (sessions_probe_between(hole, home, j));
		s->index[hole] = s->index[j];
		hole           = j;
	}
}

/* The map entry of owner KEY, or the empty entry where it would go. */
static size_t
sessions_owner_slot(const struct zos_sessions *s, uint64_t key)
    ZOS_REQUIRES_SHARED(s->lock)
{
	size_t slot = sessions_owner_hash(key) & s->index_mask;

	while (s->owners[slot].count != 0 && s->owners[slot].key != key) {
		slot = (slot + 1) & s->index_mask;
	}
	return slot;
}

/* Sessions held by owner KEY (0 without a cap). */
static size_t
sessions_owner_count(const struct zos_sessions *s, uint64_t key)
    ZOS_REQUIRES_SHARED(s->lock)
{
	if (s->owners == NULL) {
		return 0;
	}
	return s->owners[sessions_owner_slot(s, key)].count;
}

static void
sessions_owner_add(struct zos_sessions *s, uint64_t key) ZOS_REQUIRES(s->lock)
{
	size_t slot;

	if (s->owners == NULL) {
		return;
	}
	slot                  = sessions_owner_slot(s, key);
	s->owners[slot].key   = key;
	s->owners[slot].count = s->owners[slot].count + 1;
}

/* One session fewer for owner KEY; the entry goes at 0 (backward shift,
 * as in the index). */
static void
sessions_owner_sub(struct zos_sessions *s, uint64_t key) ZOS_REQUIRES(s->lock)
{
	size_t hole, j, home;

	if (s->owners == NULL) {
		return;
	}
	hole = sessions_owner_slot(s, key);
	if (s->owners[hole].count == 0 || --s->owners[hole].count > 0) {
		return;
	}
	for (j = hole;;) {
		s->owners[hole].count = 0;
		do {
			j = (j + 1) & s->index_mask;
			if (s->owners[j].count == 0) {
				return;
			}
			home = sessions_owner_hash(s->owners[j].key) &
			    s->index_mask;
		} while (sessions_probe_between(hole, home, j));
		s->owners[hole] = s->owners[j];
		hole            = j;
	}
}

/* Appends slot POS (just finished) to the finished list. */
static void
sessions_finished_push(struct zos_sessions *s, size_t pos)
    ZOS_REQUIRES(s->lock)
{
	struct sessions_slot *e = &s->slots[pos];

	e->next = 0;
	e->prev = s->finished_tail;
	if (s->finished_tail != 0) {
		s->slots[s->finished_tail - 1].next = (uint32_t) pos + 1;
	} else {
		s->finished_head = (uint32_t) pos + 1;
	}
	s->finished_tail = (uint32_t) pos + 1;
}

/* Takes slot POS off the finished list. */
static void
sessions_finished_unlink(struct zos_sessions *s, size_t pos)
    ZOS_REQUIRES(s->lock)
{
	struct sessions_slot *e = &s->slots[pos];

	if (e->prev != 0) {
		s->slots[e->prev - 1].next = e->next;
	} else {
		s->finished_head = e->next;
	}
	if (e->next != 0) {
		s->slots[e->next - 1].prev = e->prev;
	} else {
		s->finished_tail = e->prev;
	}
	e->prev = e->next = 0;
}

/*
 * Notes that the durable session ID is gone, for the next take. Out of
 * memory, the note is lost: the row then stays in the store, where it is
 * a finished session past its TTL, swept again after a restart.
 */
static void
sessions_record_removal(struct zos_sessions *s, const char *id)
    ZOS_REQUIRES(s->lock)
{
	if (s->n_removed == s->removed_cap) {
		size_t cap  = s->removed_cap < 64 ? 64 : 2 * s->removed_cap;
		void  *more = realloc(s->removed, cap * sizeof(*s->removed));

		if (more == NULL) {
			return;
		}
		s->removed     = more;
		s->removed_cap = cap;
	}
	memcpy(s->removed[s->n_removed++], id, ZOS_SESSION_ID_LEN + 1);
}

/* Removes the live session at slot POS from everything that holds it and
 * puts the slot on the free list. */
static void
sessions_remove(struct zos_sessions *s, size_t pos) ZOS_REQUIRES(s->lock)
{
	struct sessions_slot *e = &s->slots[pos];
	bool                  dirty;

	if (sessions_finished(e->s.state)) {
		sessions_finished_unlink(s, pos);
	}
	sessions_index_remove(s, pos);
	sessions_owner_sub(s, e->s.owner);
	s->state_counts[e->s.state]--;
	s->count--;
	if (e->fresh) {
		s->n_fresh--;
	}
	if (s->track) {
		/* Even a fresh one: a commit under way may be writing it. */
		sessions_record_removal(s, e->s.id);
	}
	free(e->durable);
	dirty = e->dirty;
	memset(e, 0, sizeof(*e));
	e->dirty     = dirty;
	e->next      = s->free_head;
	s->free_head = (uint32_t) pos + 1;
}

/* True when the oldest finished session has expired by NOW. */
static bool
sessions_sweep_pending(const struct zos_sessions *s, int64_t now)
    ZOS_REQUIRES_SHARED(s->lock)
{
	return s->finished_head != 0 &&
	    sessions_expired(s, &s->slots[s->finished_head - 1].s, now);
}

/* Removes up to MAX expired sessions, oldest first; one change of the
 * table when any was. Returns how many. */
static size_t
sessions_sweep(struct zos_sessions *s, int64_t now, size_t max)
    ZOS_REQUIRES(s->lock)
{
	size_t n = 0;

	while (n < max && sessions_sweep_pending(s, now)) {
		sessions_remove(s, s->finished_head - 1);
		n++;
	}
	if (n > 0) {
		atomic_fetch_add_explicit(&s->seq, 1, memory_order_release);
	}
	return n;
}

/* A slot for a new session: a freed one or a new one. Returns the slot,
 * or -1 (no memory). */
static ptrdiff_t
sessions_take_slot(struct zos_sessions *s) ZOS_REQUIRES(s->lock)
{
	struct sessions_slot *slots;
	size_t                capacity, pos;

	if (s->free_head != 0) {
		pos          = s->free_head - 1;
		s->free_head = s->slots[pos].next;
		return (ptrdiff_t) pos;
	}
	if (s->used == s->capacity) {
		capacity = s->capacity < 16 ? 16 : s->capacity * 2;
		if (capacity > s->max_sessions) {
			capacity = s->max_sessions;
		}
		if (s->track) {
			uint32_t *dirty =
			    realloc(s->dirty, capacity * sizeof(*dirty));
			if (dirty == NULL) {
				return -1;
			}
			s->dirty = dirty;
		}
		slots = realloc(s->slots, capacity * sizeof(*slots));
		if (slots == NULL) {
			return -1;
		}
		s->slots    = slots;
		s->capacity = capacity;
	}
	memset(&s->slots[s->used], 0, sizeof(s->slots[0]));
	return (ptrdiff_t) s->used++;
}

/* Sets E (at slot POS) to state TO, counting the change as one version
 * and one change of the table, and keeps the finished list and the
 * change tracking (SPARE: see sessions_mark). */
static void
sessions_apply(struct zos_sessions *s, size_t pos, enum zos_proof_state to,
    int64_t now, struct zos_session **spare) ZOS_REQUIRES(s->lock)
{
	struct zos_session *e = &s->slots[pos].s;

	sessions_mark(s, pos, spare);
	if (sessions_finished(e->state)) {
		sessions_finished_unlink(s, pos);
	}
	s->state_counts[e->state]--;
	s->state_counts[to]++;
	e->state = to;
	e->version++;
	if (now > e->updated_unix_ms) {
		e->updated_unix_ms = now;
	}
	if (sessions_finished(to)) {
		sessions_finished_push(s, pos);
	}
	e->change_seq =
	    atomic_fetch_add_explicit(&s->seq, 1, memory_order_release) + 1;
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
	s->ttl_ms       = ZOS_SESSIONS_DEFAULT_TTL_MS;
	s->clock        = zos_clock_realtime_ms;
	s->track        = false;
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

enum zos_session_code
zos_sessions_set_node(struct zos_sessions *s, uint32_t node)
{
	if (node > ZOS_SESSION_NODE_MAX) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	s->node = node;
	return ZOS_SESSION_OK;
}

uint32_t
zos_sessions_node(const struct zos_sessions *s)
{
	return s->node;
}

/* Not shared yet: no lock (which the analysis cannot know). */
enum zos_session_code
zos_sessions_configure(struct zos_sessions *s, int64_t ttl_ms,
    size_t max_per_owner, zos_clock_ms_fn clock,
    void *clock_arg) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	if (ttl_ms < 0 || ttl_ms > SESSIONS_TTL_MAX_MS) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	if (max_per_owner > 0 && s->owners == NULL) {
		s->owners = calloc(s->index_mask + 1, sizeof(*s->owners));
		if (s->owners == NULL) {
			return ZOS_SESSION_INTERNAL;
		}
		for (size_t i = 0; i < s->used; i++) {
			if (s->slots[i].live) {
				sessions_owner_add(s, s->slots[i].s.owner);
			}
		}
	}
	s->ttl_ms        = ttl_ms != 0 ? ttl_ms : ZOS_SESSIONS_DEFAULT_TTL_MS;
	s->max_per_owner = max_per_owner;
	s->clock         = clock != NULL ? clock : zos_clock_realtime_ms;
	s->clock_arg     = clock != NULL ? clock_arg : NULL;
	return ZOS_SESSION_OK;
}

void
zos_sessions_destroy(struct zos_sessions *s)
{
	if (s == NULL) {
		return;
	}
	zos_lock_finish(&s->lock);
	for (size_t i = 0; i < s->used; i++) {
		free(s->slots[i].durable);
	}
	free(s->slots);
	free(s->index);
	free(s->owners);
	free(s->dirty);
	free(s->removed);
	free(s);
}

/* Not shared yet: no lock (which the analysis cannot know). */
void
zos_sessions_track_changes(
    struct zos_sessions *s, bool track) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	s->track = track;
}

struct zos_lock *
zos_sessions_lock(struct zos_sessions *s)
{
	return &s->lock;
}

size_t
zos_sessions_max_per_owner(const struct zos_sessions *s)
{
	return s->max_per_owner;
}

size_t
zos_sessions_max(const struct zos_sessions *s)
{
	return s->max_sessions;
}

/*
 * One try at starting a session under the lock. Returns OK (filled *OUT),
 * a refusal, or -1 when the caller should try again: expired sessions
 * are still in the way (the lock is let go between sweep batches), or
 * the id drawn is taken (*REDRAW set).
 */
static int
sessions_try_start(struct zos_sessions *s, const char *problem_id, size_t len,
    uint64_t owner, const uint8_t random[16], bool *redraw,
    struct zos_session **spare, struct zos_session *out)
{
	struct zos_session *e;
	char                id[ZOS_SESSION_ID_LEN + 1];
	ptrdiff_t           pos;
	int64_t             now;
	bool                more;
	int                 rv;

	sessions_format_id(id, s->node, random);
	zos_lock_write(&s->lock);
	now = sessions_now_ms(s);
	sessions_sweep(s, now, ZOS_SESSIONS_SWEEP_MAX);
	more = sessions_sweep_pending(s, now);
	if (s->max_per_owner > 0 &&
	    sessions_owner_count(s, owner) >= s->max_per_owner) {
		rv = more ? -1 : ZOS_SESSION_OWNER_LIMIT;
		goto out;
	}
	if (s->count >= s->max_sessions) {
		rv = more ? -1 : ZOS_SESSION_RESOURCE_EXHAUSTED;
		goto out;
	}
	if (sessions_find(s, id) >= 0) {
		*redraw = true;
		rv      = -1;
		goto out;
	}
	if ((pos = sessions_take_slot(s)) < 0) {
		rv = ZOS_SESSION_INTERNAL;
		goto out;
	}
	s->slots[pos].live  = true;
	s->slots[pos].fresh = s->track;
	s->slots[pos].prev = s->slots[pos].next = 0;
	e                                       = &s->slots[pos].s;
	memcpy(e->id, id, sizeof(e->id));
	memcpy(e->problem_id, problem_id, len);
	e->problem_id[len] = '\0';
	e->state           = ZOS_PROOF_AWAITING_SOLUTION;
	e->version         = 1;
	e->created_unix_ms = now;
	e->updated_unix_ms = now;
	e->owner           = owner;
	sessions_index_insert(s, (size_t) pos);
	sessions_owner_add(s, owner);
	s->count++;
	s->n_fresh += s->track ? 1 : 0;
	s->state_counts[ZOS_PROOF_AWAITING_SOLUTION]++;
	sessions_mark(s, (size_t) pos, spare);
	e->change_seq =
	    atomic_fetch_add_explicit(&s->seq, 1, memory_order_release) + 1;
	*out = *e;
	rv   = ZOS_SESSION_OK;
out:
	zos_unlock_write(&s->lock);
	return rv;
}

enum zos_session_code
zos_sessions_start_owned(struct zos_sessions *s, const char *problem_id,
    uint64_t owner, struct zos_session *out)
{
	struct zos_session *spare;
	uint8_t             random[16];
	size_t              len;
	int                 draws = 0, rv;
	bool                no_memory;

	if (problem_id == NULL) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	len = strnlen(problem_id, ZOS_SESSION_PROBLEM_ID_MAX + 1);
	if (len == 0 || len > ZOS_SESSION_PROBLEM_ID_MAX) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	/* getrandom may block (early boot): never under the lock. */
	if (sessions_random(random, sizeof(random)) != 0) {
		return ZOS_SESSION_INTERNAL;
	}
	spare = sessions_spare(s, &no_memory);
	if (no_memory) {
		return ZOS_SESSION_INTERNAL;
	}
	/* Each retry either removed a batch of expired sessions or drew a
	 * fresh id, so the loop ends: after max_sessions / batch sweeps and
	 * SESSIONS_ID_DRAWS draws at most. */
	for (;;) {
		bool redraw = false;

		rv = sessions_try_start(
		    s, problem_id, len, owner, random, &redraw, &spare, out);
		if (rv >= 0) {
			free(spare);
			return (enum zos_session_code) rv;
		}
		if (redraw &&
		    (++draws >= SESSIONS_ID_DRAWS ||
		        sessions_random(random, sizeof(random)) != 0)) {
			free(spare);
			return ZOS_SESSION_INTERNAL;
		}
	}
}

enum zos_session_code
zos_sessions_start(
    struct zos_sessions *s, const char *problem_id, struct zos_session *out)
{
	return zos_sessions_start_owned(
	    s, problem_id, ZOS_SESSION_OWNER_ANONYMOUS, out);
}

size_t
zos_sessions_expire(struct zos_sessions *s, size_t max)
{
	size_t n;

	if (max == 0 || max > ZOS_SESSIONS_SWEEP_MAX) {
		max = ZOS_SESSIONS_SWEEP_MAX;
	}
	zos_lock_write(&s->lock);
	n = sessions_sweep(s, sessions_now_ms(s), max);
	zos_unlock_write(&s->lock);
	return n;
}

enum zos_session_code
zos_sessions_get(
    struct zos_sessions *s, const char *id, struct zos_session *out)
{
	const struct zos_session *v;

	if (!sessions_id_valid(id)) {
		return ZOS_SESSION_NOT_FOUND;
	}
	zos_lock_read(&s->lock);
	if ((v = sessions_find_readable(s, id, sessions_now_ms(s))) == NULL) {
		zos_unlock_read(&s->lock);
		return ZOS_SESSION_NOT_FOUND;
	}
	*out = *v;
	zos_unlock_read(&s->lock);
	return ZOS_SESSION_OK;
}

enum zos_session_code
zos_sessions_get_latest(
    struct zos_sessions *s, const char *id, struct zos_session *out)
{
	ptrdiff_t pos;

	if (!sessions_id_valid(id)) {
		return ZOS_SESSION_NOT_FOUND;
	}
	zos_lock_read(&s->lock);
	if ((pos = sessions_find_visible(s, id, sessions_now_ms(s))) < 0) {
		zos_unlock_read(&s->lock);
		return ZOS_SESSION_NOT_FOUND;
	}
	*out = s->slots[pos].s;
	zos_unlock_read(&s->lock);
	return ZOS_SESSION_OK;
}

enum zos_session_code
zos_sessions_transition(struct zos_sessions *s, const char *id,
    enum zos_proof_state to_state, uint64_t expected_version,
    struct zos_session *out)
{
	struct zos_session   *e, *spare;
	ptrdiff_t             pos;
	int64_t               now;
	enum zos_session_code rv;
	bool                  no_memory;

	if (to_state <= ZOS_PROOF_STATE_UNSPECIFIED ||
	    to_state >= ZOS_PROOF_STATE_COUNT) {
		return ZOS_SESSION_INVALID_ARGUMENT;
	}
	if (!sessions_id_valid(id)) {
		return ZOS_SESSION_NOT_FOUND;
	}
	spare = sessions_spare(s, &no_memory);
	if (no_memory) {
		return ZOS_SESSION_INTERNAL;
	}
	zos_lock_write(&s->lock);
	now = sessions_now_ms(s);
	if ((pos = sessions_find_visible(s, id, now)) < 0) {
		zos_unlock_write(&s->lock);
		free(spare);
		return ZOS_SESSION_NOT_FOUND;
	}
	e = &s->slots[pos].s;
	if (expected_version != 0 && expected_version != e->version) {
		rv = ZOS_SESSION_ABORTED;
	} else if (!zos_proof_transition_allowed(e->state, to_state)) {
		rv = ZOS_SESSION_FAILED_PRECONDITION;
	} else {
		sessions_apply(s, (size_t) pos, to_state, now, &spare);
		rv = ZOS_SESSION_OK;
	}
	if (out != NULL) {
		*out = *e;
	}
	zos_unlock_write(&s->lock);
	free(spare);
	return rv;
}

enum zos_session_code
zos_sessions_reset(
    struct zos_sessions *s, const char *id, struct zos_session *out)
{
	struct zos_session *spare;
	ptrdiff_t           pos;
	int64_t             now;
	bool                no_memory;

	if (!sessions_id_valid(id)) {
		return ZOS_SESSION_NOT_FOUND;
	}
	spare = sessions_spare(s, &no_memory);
	if (no_memory) {
		return ZOS_SESSION_INTERNAL;
	}
	zos_lock_write(&s->lock);
	now = sessions_now_ms(s);
	if ((pos = sessions_find_visible(s, id, now)) < 0) {
		zos_unlock_write(&s->lock);
		free(spare);
		return ZOS_SESSION_NOT_FOUND;
	}
	sessions_apply(
	    s, (size_t) pos, ZOS_PROOF_AWAITING_SOLUTION, now, &spare);
	if (out != NULL) {
		*out = s->slots[pos].s;
	}
	zos_unlock_write(&s->lock);
	free(spare);
	return ZOS_SESSION_OK;
}

enum zos_session_code
zos_sessions_list(struct zos_sessions *s, uint32_t page_size,
    const char *page_token, struct zos_session_page *page)
{
	struct zos_session *buf;
	size_t              pos = 0, n = 0;
	int64_t             now;
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
	now = sessions_now_ms(s);
	if (!from_start) {
		if (sessions_find_readable(s, page_token, now) == NULL) {
			zos_unlock_read(&s->lock);
			free(buf);
			return ZOS_SESSION_INVALID_ARGUMENT;
		}
		pos = (size_t) sessions_find(s, page_token);
	}
	for (; pos < s->used; pos++) {
		const struct sessions_slot *e = &s->slots[pos];
		const struct zos_session   *v;

		if (!e->live || (v = sessions_visible(e)) == NULL ||
		    sessions_expired(s, v, now)) {
			continue;
		}
		if (n == page_size) {
			memcpy(page->next_page_token, v->id,
			    sizeof(page->next_page_token));
			break;
		}
		buf[n++] = *v;
	}
	page->total = s->count - s->n_fresh;
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
	/* Allocate for the count last seen, then copy if it still fits;
	 * each retry asks for more than the count it saw, up to
	 * max_sessions, where it always fits. */
	for (;;) {
		zos_lock_read(&s->lock);
		want = s->count;
		if (want <= have) {
			size_t k = 0;

			for (size_t i = 0; i < s->used; i++) {
				if (s->slots[i].live) {
					buf[k++] = s->slots[i].s;
				}
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
		    "session %zu: id is not NODE-%d, %d or %d lowercase hex "
		    "digits",
		    i, ZOS_SESSION_HEX_LEN, ZOS_SESSION_HEX_LEN,
		    ZOS_SESSION_LEGACY_ID_LEN);
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

/* qsort_r comparison of finished slots (ARG: the slots) by when they
 * finished, then by slot, so that the order is total. */
static int
sessions_finished_compare(const void *a, const void *b, void *arg)
{
	const struct sessions_slot *slots = arg;
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	int64_t  tx = slots[x].s.updated_unix_ms;
	int64_t  ty = slots[y].s.updated_unix_ms;

	if (tx != ty) {
		return tx < ty ? -1 : 1;
	}
	return x < y ? -1 : x > y;
}

/* Empties S again after a failed restore. */
static void
sessions_restore_undo(struct zos_sessions *s) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	memset(s->index, 0, (s->index_mask + 1) * sizeof(*s->index));
	if (s->owners != NULL) {
		memset(s->owners, 0, (s->index_mask + 1) * sizeof(*s->owners));
	}
	free(s->slots);
	free(s->dirty);
	s->dirty     = NULL;
	s->slots     = NULL;
	s->capacity  = 0;
	s->used      = 0;
	s->count     = 0;
	s->free_head = s->finished_head = s->finished_tail = 0;
	memset(s->state_counts, 0, sizeof(s->state_counts));
}

/*
 * The table is not shared yet, so it is filled without the lock (which
 * the analysis cannot know).
 */
enum zos_session_code
zos_sessions_restore(struct zos_sessions *s,
    const struct zos_sessions_image *image, char *error,
    size_t error_len) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	struct sessions_slot *slots      = NULL;
	uint32_t             *finished   = NULL;
	size_t                n_finished = 0;
	uint64_t              changes    = 0;
	size_t                capacity;
	enum zos_session_code rv;

	if (s->count != 0 || s->used != 0 || atomic_load(&s->seq) != 0) {
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
	if (image->count == 0) {
		s->id_key = image->id_key;
		atomic_store(&s->seq, image->seq);
		return ZOS_SESSION_OK;
	}
	/* Room for the whole bound at once: the first start after a large
	 * restore would otherwise copy every slot to a bigger array under
	 * the lock. Pages never written cost no memory (calloc maps them
	 * on first touch). */
	capacity = s->max_sessions;
	if ((slots = calloc(capacity, sizeof(*slots))) == NULL ||
	    (finished = calloc(image->count, sizeof(*finished))) == NULL ||
	    (s->track &&
	        (s->dirty = calloc(capacity, sizeof(*s->dirty))) == NULL)) {
		free(slots);
		free(finished);
		snprintf(error, error_len, "out of memory");
		return ZOS_SESSION_INTERNAL;
	}
	s->slots    = slots;
	s->capacity = capacity;
	for (size_t i = 0; i < image->count; i++) {
		if (sessions_find(s, image->sessions[i].id) >= 0) {
			snprintf(error, error_len,
			    "session %zu: id %s is repeated", i,
			    image->sessions[i].id);
			free(finished);
			sessions_restore_undo(s);
			return ZOS_SESSION_INVALID_ARGUMENT;
		}
		slots[i].s    = image->sessions[i];
		slots[i].live = true;
		sessions_index_insert(s, i);
		sessions_owner_add(s, slots[i].s.owner);
		s->used  = i + 1;
		s->count = i + 1;
		s->state_counts[slots[i].s.state]++;
		if (sessions_finished(slots[i].s.state)) {
			finished[n_finished++] = (uint32_t) i;
		}
	}
	/* The finished list in the order they finished, so that its head is
	 * the first to expire. */
	qsort_r(finished, n_finished, sizeof(*finished),
	    sessions_finished_compare, slots);
	for (size_t i = 0; i < n_finished; i++) {
		sessions_finished_push(s, finished[i]);
	}
	free(finished);
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

enum zos_session_code
zos_sessions_take_changes(
    struct zos_sessions *s, struct zos_sessions_changes *out)
{
	struct zos_session_change *rows = NULL, *bigger;
	size_t                     have = 0, want, n = 0;

	memset(out, 0, sizeof(*out));
	/* Allocate for the count last seen, then take if it still fits. */
	for (;;) {
		zos_lock_write(&s->lock);
		want = s->n_dirty + s->n_removed;
		if (want <= have) {
			break;
		}
		zos_unlock_write(&s->lock);
		if ((bigger = realloc(rows, (want + 16) * sizeof(*rows))) ==
		    NULL) {
			free(rows);
			return ZOS_SESSION_INTERNAL;
		}
		rows = bigger;
		have = want + 16;
	}
	for (size_t i = 0; i < s->n_dirty; i++) {
		struct sessions_slot *e = &s->slots[s->dirty[i]];

		e->dirty = false;
		if (e->live) {
			rows[n].s       = e->s;
			rows[n].removed = false;
			rows[n].slot    = s->dirty[i];
			n++;
		}
	}
	for (size_t i = 0; i < s->n_removed; i++) {
		memset(&rows[n], 0, sizeof(rows[n]));
		memcpy(rows[n].s.id, s->removed[i], sizeof(rows[n].s.id));
		rows[n].removed = true;
		n++;
	}
	s->n_dirty   = 0;
	s->n_removed = 0;
	out->seq     = atomic_load_explicit(&s->seq, memory_order_relaxed);
	zos_unlock_write(&s->lock);
	out->rows  = rows;
	out->count = n;
	return ZOS_SESSION_OK;
}

/* The slot of row R of a take when it still holds R's session, or
 * NULL (removed since, and perhaps reused). */
static struct sessions_slot *
sessions_row_slot(struct zos_sessions *s, const struct zos_session_change *r)
    ZOS_REQUIRES(s->lock)
{
	struct sessions_slot *e;

	if (r->removed || r->slot >= s->used) {
		return NULL;
	}
	e = &s->slots[r->slot];
	if (!e->live || strcmp(e->s.id, r->s.id) != 0) {
		return NULL;
	}
	return e;
}

void
zos_sessions_changes_durable(
    struct zos_sessions *s, const struct zos_sessions_changes *changes)
{
	zos_lock_write(&s->lock);
	for (size_t i = 0; i < changes->count; i++) {
		const struct zos_session_change *r = &changes->rows[i];
		struct sessions_slot            *e = sessions_row_slot(s, r);

		if (e == NULL || e->durable == NULL) {
			continue;
		}
		if (e->fresh) {
			e->fresh = false;
			s->n_fresh--;
		}
		if (e->s.change_seq == r->s.change_seq) {
			free(e->durable); /* unchanged since: all durable */
			e->durable = NULL;
		} else {
			*e->durable = r->s; /* changed again: still dirty */
		}
	}
	zos_unlock_write(&s->lock);
}

/* Gives slot POS its durable value back, or removes it when it has none
 * (a new session). */
static void
sessions_undo(struct zos_sessions *s, size_t pos) ZOS_REQUIRES(s->lock)
{
	struct sessions_slot *e = &s->slots[pos];

	if (!e->live || e->durable == NULL) {
		return;
	}
	if (e->fresh) {
		sessions_remove(s, pos);
		return;
	}
	if (sessions_finished(e->s.state)) {
		sessions_finished_unlink(s, pos);
	}
	s->state_counts[e->s.state]--;
	e->s = *e->durable;
	s->state_counts[e->s.state]++;
	if (sessions_finished(e->s.state)) {
		sessions_finished_push(s, pos);
	}
	free(e->durable);
	e->durable = NULL;
}

uint64_t
zos_sessions_changes_failed(
    struct zos_sessions *s, const struct zos_sessions_changes *changes)
{
	uint64_t seq;

	zos_lock_write(&s->lock);
	for (size_t i = 0; i < changes->count; i++) {
		const struct zos_session_change *r = &changes->rows[i];

		if (r->removed) {
			sessions_record_removal(s, r->s.id);
		} else if (sessions_row_slot(s, r) != NULL) {
			sessions_undo(s, r->slot);
		}
	}
	for (size_t i = 0; i < s->n_dirty; i++) {
		sessions_undo(s, s->dirty[i]);
		s->slots[s->dirty[i]].dirty = false;
	}
	s->n_dirty = 0;
	seq        = atomic_load_explicit(&s->seq, memory_order_relaxed);
	zos_unlock_write(&s->lock);
	return seq;
}

void
zos_sessions_changes_finish(struct zos_sessions_changes *changes)
{
	free(changes->rows);
	memset(changes, 0, sizeof(*changes));
}
