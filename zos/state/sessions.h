/*
 * Proof sessions: a bounded table of proof state machines, guarded by the
 * rank-2 lock "session_state".
 *
 * A session moves through the proof states (numbers as in zos.v1.ProofState):
 *
 *   AWAITING_SOLUTION -> ANALYZING -> FEEDBACK_READY -> AWAITING_SOLUTION
 *                                                    -> SOLVED
 *   AWAITING_SOLUTION, ANALYZING, FEEDBACK_READY     -> ABANDONED
 *
 * SOLVED and ABANDONED are terminal: no transition leaves them (a solved
 * proof is not abandoned after the fact, and nothing is abandoned twice);
 * only zos_sessions_reset() brings such a session back to
 * AWAITING_SOLUTION. A move to the state the session is already in is not
 * a change and is illegal like any other move not listed.
 *
 * Every accepted change (transition or reset) adds exactly one to the
 * session's version and sets updated_unix_ms to the wall clock (never
 * backwards: it stays at the previous value if the clock stepped back).
 * Nothing else changes a version. A new session has version 1.
 *
 * Lifecycle. A finished session (SOLVED or ABANDONED) expires once its
 * updated_unix_ms is the session TTL (default 24 h) in the past: from
 * then on it is NOT_FOUND to every function, and it is removed from the
 * table (and so, at the next write, from the store) by a bounded sweep
 * that zos_sessions_start and zos_sessions_expire run. A session that is
 * not finished never expires. Removing a session is a change of the table
 * (seq grows), not of the session.
 *
 * Owners. Every session records an owner key (a 64-bit hash chosen by the
 * caller, never the credential itself; 0 is the anonymous caller). With a
 * per-owner cap, an owner holds at most that many sessions (finished ones
 * count until they expire): one caller cannot fill the table.
 *
 * Ids carry the node that made them: "<N>-<32 hex>", N the table's node
 * id (1..65535, decimal, no leading zero) and 128 bits from getrandom(2)
 * as 32 lowercase hex digits, e.g. "3-9f0c...". A table without a node id
 * (zos_sessions_set_node never called, or 0) makes plain 32-digit ids, as
 * earlier versions did. Ids of the old shapes, 32 or 16 hex digits, are
 * still accepted (restored, looked up): they name no node and belong to
 * the node that has them. zos_session_id_node() reads the node of an id.
 *
 * Every function hands out copies (struct zos_session is a plain value), so
 * callers never hold a pointer into the table and never need the lock.
 * Results are gRPC codes, so the service layer passes them through.
 */
#ifndef ZOS_SESSIONS_H
#define ZOS_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"

/* Result codes: the gRPC status codes of the same names and numbers. */
enum zos_session_code {
	ZOS_SESSION_OK                  = 0,
	ZOS_SESSION_INVALID_ARGUMENT    = 3,
	ZOS_SESSION_NOT_FOUND           = 5,
	ZOS_SESSION_RESOURCE_EXHAUSTED  = 8,
	ZOS_SESSION_FAILED_PRECONDITION = 9,
	ZOS_SESSION_ABORTED             = 10,
	ZOS_SESSION_INTERNAL            = 13, /* out of memory */
	/* RESOURCE_EXHAUSTED on the wire, because of the owner's cap
	 * rather than the table's bound (not a gRPC number). */
	ZOS_SESSION_OWNER_LIMIT = 0x108,
};

/* The proof states, with zos.v1.ProofState's numbers. */
enum zos_proof_state {
	ZOS_PROOF_STATE_UNSPECIFIED = 0,
	ZOS_PROOF_AWAITING_SOLUTION = 1,
	ZOS_PROOF_ANALYZING         = 2,
	ZOS_PROOF_FEEDBACK_READY    = 3,
	ZOS_PROOF_SOLVED            = 4,
	ZOS_PROOF_ABANDONED         = 5,
};
#define ZOS_PROOF_STATE_COUNT 6

#define ZOS_SESSIONS_DEFAULT_MAX 10000
#define ZOS_SESSIONS_LIMIT_MAX 1000000 /* largest max_sessions accepted */
#define ZOS_SESSION_HEX_LEN 32 /* hex digits in an id: 128 random bits */
/* The longest id: "65535-" and 32 hex digits (id buffers hold it + NUL). */
#define ZOS_SESSION_ID_LEN 38
#define ZOS_SESSION_LEGACY_ID_LEN 16 /* ids made before: still accepted */
#define ZOS_SESSION_NODE_MAX 65535   /* largest node id */
#define ZOS_SESSIONS_DEFAULT_TTL_MS (24 * 3600 * 1000LL)
#define ZOS_SESSIONS_SWEEP_MAX 256 /* removals per lock hold */
#define ZOS_SESSION_OWNER_ANONYMOUS 0
#define ZOS_SESSION_PROBLEM_ID_MAX 256 /* bytes, without the NUL */
#define ZOS_SESSIONS_PAGE_DEFAULT 50
#define ZOS_SESSIONS_PAGE_MAX 1000

/* One session, as a value (a copy of the table's entry). */
struct zos_session {
	char                 id[ZOS_SESSION_ID_LEN + 1];
	char                 problem_id[ZOS_SESSION_PROBLEM_ID_MAX + 1];
	enum zos_proof_state state;
	uint64_t             version;
	int64_t              created_unix_ms;
	int64_t              updated_unix_ms;
	uint64_t             owner; /* owner key; never sent to callers */
	/* The table's change number (zos_sessions_seq) of this session's
	 * last change: what a writer asks the store to make durable. 0 for
	 * a session restored and not changed since. */
	uint64_t change_seq;
};

/* Wall clock in milliseconds since the epoch; injectable for tests. */
typedef int64_t (*zos_clock_ms_fn)(void *arg);

/* The real wall clock (CLOCK_REALTIME), the default of every table. */
int64_t zos_clock_realtime_ms(void *arg);

/* One page of zos_sessions_list(). */
struct zos_session_page {
	struct zos_session *sessions; /* owned; zos_session_page_finish() */
	size_t              count;
	/* Token for the next page; "" when this page is the last. */
	char     next_page_token[ZOS_SESSION_ID_LEN + 1];
	uint64_t total; /* sessions in the table when the page was taken */
};

/* The table; opaque. */
struct zos_sessions;

/*
 * Creates an empty table in *OUT, bounded by MAX_SESSIONS (0 = the default
 * 10000; above ZOS_SESSIONS_LIMIT_MAX is INVALID_ARGUMENT). Its lock is
 * rank ZOS_RANK_SESSION_STATE in DOMAIN, which must outlive the table. The
 * id key is drawn from getrandom(2).
 * Returns OK, INVALID_ARGUMENT or INTERNAL (no memory, no randomness, lock
 * initialisation failed); *OUT is set only on OK.
 * Locking: none (the table is not shared yet).
 */
enum zos_session_code zos_sessions_create(struct zos_sessions **out,
    struct zos_lock_domain *domain, size_t max_sessions);

/*
 * Sets S's lifecycle before it is shared: finished sessions expire
 * TTL_MS after their last change (0 = the default 24 h); an owner holds
 * at most MAX_PER_OWNER sessions (0 = no cap but max_sessions); times
 * come from CLOCK(CLOCK_ARG) (NULL = zos_clock_realtime_ms).
 * Returns OK, INVALID_ARGUMENT (negative TTL) or INTERNAL (no memory for
 * the owners' counts).
 * Locking: none (the table is not shared yet; call before restore).
 */
enum zos_session_code zos_sessions_configure(struct zos_sessions *s,
    int64_t ttl_ms, size_t max_per_owner, zos_clock_ms_fn clock,
    void *clock_arg);

/*
 * Destroys S and everything it owns. S == NULL is a no-op. No other thread
 * may use S any more.
 * Locking: none.
 */
void zos_sessions_destroy(struct zos_sessions *s);

/*
 * The lock of S, for callers that need to check the order or read its
 * histograms. Owned by S.
 */
struct zos_lock *zos_sessions_lock(struct zos_sessions *s);

/*
 * Starts a session for PROBLEM_ID (NUL-terminated, 1..256 bytes) owned by
 * OWNER in state AWAITING_SOLUTION, version 1, and copies it to *OUT.
 * Expired sessions are swept first, so neither limit below is ever
 * reached because of them.
 * Returns OK; INVALID_ARGUMENT (empty or too long problem id);
 * OWNER_LIMIT (OWNER holds max_per_owner sessions); RESOURCE_EXHAUSTED
 * (the table holds max_sessions); INTERNAL (no memory, no randomness).
 * Locking: takes session_state (write), once per sweep batch of at most
 * ZOS_SESSIONS_SWEEP_MAX removals.
 */
enum zos_session_code zos_sessions_start_owned(struct zos_sessions *s,
    const char *problem_id, uint64_t owner, struct zos_session *out);

/* zos_sessions_start_owned for the anonymous owner. */
enum zos_session_code zos_sessions_start(
    struct zos_sessions *s, const char *problem_id, struct zos_session *out);

/*
 * Removes up to MAX (0 = ZOS_SESSIONS_SWEEP_MAX) expired finished
 * sessions, oldest first, and returns how many it removed; the table's
 * seq grows when any was. A caller that wants every expired session gone
 * calls it until it returns less than MAX.
 * Locking: takes session_state (write) once.
 */
size_t zos_sessions_expire(struct zos_sessions *s, size_t max);

/*
 * Sets the node id NODE (1..ZOS_SESSION_NODE_MAX; 0 = none) that S puts
 * into the ids it makes from now on ("<NODE>-<32 hex>"). Call before S is
 * shared. Returns OK or INVALID_ARGUMENT (NODE out of range).
 * Locking: none (the table is not shared yet).
 */
enum zos_session_code zos_sessions_set_node(
    struct zos_sessions *s, uint32_t node);

/* The node id set with zos_sessions_set_node (0 = none). */
uint32_t zos_sessions_node(const struct zos_sessions *s);

/*
 * True when ID is a well-formed session id of any shape (see the top of
 * this file). Pure; no lock.
 */
bool zos_session_id_valid(const char *id);

/*
 * The node an id names: true, with *NODE set, for a well-formed id of
 * the shape "<N>-<32 hex>"; false for every other string (an id of the
 * old shapes names no node). Pure; no lock.
 */
bool zos_session_id_node(const char *id, uint32_t *node);

/* The cap set by zos_sessions_configure (0 = none). */
size_t zos_sessions_max_per_owner(const struct zos_sessions *s);

/* The table's bound. */
size_t zos_sessions_max(const struct zos_sessions *s);

/*
 * Copies the session ID to *OUT.
 * Returns OK or NOT_FOUND (including an id of the wrong shape).
 * Locking: takes session_state (read).
 */
enum zos_session_code zos_sessions_get(
    struct zos_sessions *s, const char *id, struct zos_session *out);

/*
 * As zos_sessions_get, but the latest value, durable or not: for a caller
 * that reads in order to change the session (sessions.h, "Durability").
 * Locking: takes session_state (read).
 */
enum zos_session_code zos_sessions_get_latest(
    struct zos_sessions *s, const char *id, struct zos_session *out);

/*
 * Moves session ID to TO_STATE if the state machine above allows it and
 * EXPECTED_VERSION is 0 or the session's version. On OK, *OUT (may be
 * NULL) receives the changed session; on ABORTED and FAILED_PRECONDITION
 * it receives the unchanged one, so a caller can retry from it.
 * Returns OK; INVALID_ARGUMENT (TO_STATE is UNSPECIFIED or not a state);
 * NOT_FOUND; ABORTED (stale EXPECTED_VERSION, checked before legality);
 * FAILED_PRECONDITION (illegal move).
 * Locking: takes session_state (write).
 */
enum zos_session_code zos_sessions_transition(struct zos_sessions *s,
    const char *id, enum zos_proof_state to_state, uint64_t expected_version,
    struct zos_session *out);

/*
 * Puts session ID back to AWAITING_SOLUTION from any state (version + 1,
 * even when it was already awaiting a solution) and copies it to *OUT
 * (may be NULL).
 * Returns OK or NOT_FOUND.
 * Locking: takes session_state (write).
 */
enum zos_session_code zos_sessions_reset(
    struct zos_sessions *s, const char *id, struct zos_session *out);

/*
 * Copies up to PAGE_SIZE sessions (0 = 50, more than 1000 = 1000) in
 * table order, starting at PAGE_TOKEN (NULL or "" = the first session;
 * otherwise a next_page_token from an earlier page: the id of the first
 * session of that page), into *PAGE, which the caller releases with
 * zos_session_page_finish(). Table order is creation order until a
 * session is removed; a new session may then take a removed one's place.
 * A table restored from a store starts in the store's order (by id).
 * A session keeps its place for its life, so a walk from "" visits every
 * session that lives throughout it exactly once; when the session a
 * token names has expired, the token is refused and the walk starts
 * again. Expired sessions are not listed (but counted in total until
 * swept).
 * Returns OK; INVALID_ARGUMENT (a token this table did not hand out, or
 * whose session is gone);
 * INTERNAL (no memory). On failure *PAGE is empty.
 * Locking: takes session_state (read); allocates before taking it.
 */
enum zos_session_code zos_sessions_list(struct zos_sessions *s,
    uint32_t page_size, const char *page_token, struct zos_session_page *page);

/* Frees PAGE's sessions and empties it. Safe on an empty page. */
void zos_session_page_finish(struct zos_session_page *page);

/*
 * Fills COUNTS[state] with the number of sessions in each state
 * (COUNTS[0], UNSPECIFIED, is always 0) and returns the total; sessions
 * expired but not swept yet are still counted.
 * Locking: takes session_state (read).
 */
uint64_t zos_sessions_count_by_state(
    struct zos_sessions *s, uint64_t counts[ZOS_PROOF_STATE_COUNT]);

/*
 * Durability (store.h). The table records which sessions changed since
 * the store last took its changes, and keeps, for every session whose
 * latest value is not durable yet, the value that is (or that there is
 * none: a new session). Readers (zos_sessions_get, zos_sessions_list)
 * see only durable values: a session started, or a change made, becomes
 * visible to other callers once the store has committed it, so a crash
 * never takes back something another caller has read. Writers
 * (transition, reset, start) work on the latest value, so changes to one
 * session chain without waiting. zos_sessions_count_by_state counts
 * latest values (it feeds metrics, not callers). Tracking is off by
 * default (a table in memory only: every change is visible at once and
 * nothing is recorded); the state turns it on for a table it persists,
 * with zos_sessions_track_changes(s, true).
 */

/* One changed row, as the store writes it. */
struct zos_session_change {
	struct zos_session s;       /* the value at the take (id always set) */
	bool               removed; /* the session is gone: delete the row */
	uint32_t           slot;    /* private to the table */
};

/* The changes taken for one commit. */
struct zos_sessions_changes {
	uint64_t                   seq; /* they cover every change up to it */
	struct zos_session_change *rows;
	size_t                     count;
};

/*
 * Whether S records changes for a store (true) or shows every change at
 * once (false, the default: no store). Call before sharing S.
 * Locking: none (the table is not shared yet).
 */
void zos_sessions_track_changes(struct zos_sessions *s, bool track);

/*
 * Takes every change made since the last take into *OUT (released with
 * zos_sessions_changes_finish): the latest value of each session that
 * changed (once, however often it changed), and the ids of the sessions
 * removed. OUT->seq is the table's change count at the take.
 * Returns OK or INTERNAL (no memory; nothing taken).
 * Locking: takes session_state (write); allocates outside it.
 */
enum zos_session_code zos_sessions_take_changes(
    struct zos_sessions *s, struct zos_sessions_changes *out);

/*
 * The store committed CHANGES: their values become what readers see
 * (unless changed again since the take: then the committed value is what
 * readers see until the next commit).
 * Locking: takes session_state (write).
 */
void zos_sessions_changes_durable(
    struct zos_sessions *s, const struct zos_sessions_changes *changes);

/*
 * The store could not commit CHANGES: every change that is not durable
 * (those taken in CHANGES and any made since) is undone, so the table
 * holds what the store holds: new sessions go, changed ones get their
 * durable value back. Removals are kept, to be written by the next
 * commit. Returns the table's change count at the undo: every change
 * numbered above the last durable one and up to it is gone.
 * Locking: takes session_state (write).
 */
uint64_t zos_sessions_changes_failed(
    struct zos_sessions *s, const struct zos_sessions_changes *changes);

/* Frees CHANGES' rows and empties it. Safe on an empty one. */
void zos_sessions_changes_finish(struct zos_sessions_changes *changes);

/*
 * The whole table as a value: what the store (store.h) persists and
 * restores.
 */
struct zos_sessions_image {
	uint64_t            seq;      /* changes accepted so far */
	uint32_t            id_key;   /* kept for the format; unused now */
	struct zos_session *sessions; /* table order; owned */
	size_t              count;
};

/*
 * The table's change count: grows by one with every accepted start,
 * transition and reset (made under the write lock). A caller that changed
 * the table reads it afterwards to learn a number its change is covered by.
 * Locking: none (atomic).
 */
uint64_t zos_sessions_seq(struct zos_sessions *s);

/*
 * Copies the whole table, its change count and its id key into *OUT
 * (released with zos_sessions_image_finish). The copy is consistent: its
 * seq counts exactly the changes it contains.
 * Returns OK or INTERNAL (no memory; *OUT empty).
 * Locking: takes session_state (read); allocates before taking it.
 */
enum zos_session_code zos_sessions_snapshot(
    struct zos_sessions *s, struct zos_sessions_image *out);

/*
 * Fills the empty table S from IMAGE (copied): sessions (owners
 * included), change count and id key. A new id that happens to equal a
 * restored one is drawn again, so ids never collide. The owner cap is
 * not applied to restored sessions.
 * Returns OK; INVALID_ARGUMENT (S not empty, an id malformed or repeated, a
 * state or problem id out of range, a version of 0, a change count below
 * the sum of the versions: ERROR says which session); RESOURCE_EXHAUSTED
 * (more sessions than max_sessions); INTERNAL (no memory). On failure S
 * is left empty.
 * Locking: none (the table is not shared yet).
 */
enum zos_session_code zos_sessions_restore(struct zos_sessions *s,
    const struct zos_sessions_image *image, char *error, size_t error_len);

/* Frees IMAGE's sessions and empties it. Safe on an empty image. */
void zos_sessions_image_finish(struct zos_sessions_image *image);

/* True when the state machine allows FROM -> TO (pure; no lock). */
bool zos_proof_transition_allowed(
    enum zos_proof_state from, enum zos_proof_state to);

/* The proto name of STATE ("AWAITING_SOLUTION"), "UNKNOWN" if none. */
const char *zos_proof_state_name(enum zos_proof_state state);

#endif /* ZOS_SESSIONS_H */
