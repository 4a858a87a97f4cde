/*
 * The skill vector: skill name -> level in [0, 1] and attempts, guarded by
 * the rank-1 lock `skills`.
 *
 * Readers take the current vector as an immutable, reference-counted
 * snapshot: the critical section is a pointer copy and an atomic
 * increment, and the reader builds its reply after unlocking. Writers
 * build a new vector (copy-on-write, a few dozen entries at most) and swap
 * it in, so a snapshot a reader holds never changes under it.
 */
#ifndef ZOS_SKILLS_H
#define ZOS_SKILLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lock.h"

#define ZOS_SKILLS_MAX 256        /* skills in one vector */
#define ZOS_SKILL_NAME_MAX 64     /* bytes in a skill name */
#define ZOS_SKILLS_FILE_MAX 65536 /* bytes in a skills file */

/* Results; the values are the gRPC codes the service answers with. */
enum zos_skills_result {
	ZOS_SKILLS_OK                 = 0,
	ZOS_SKILLS_INVALID            = 3,  /* INVALID_ARGUMENT */
	ZOS_SKILLS_NOT_FOUND          = 5,  /* NOT_FOUND (file) */
	ZOS_SKILLS_RESOURCE_EXHAUSTED = 8,  /* out of memory, too many */
	ZOS_SKILLS_ABORTED            = 10, /* stale expected_version */
};

struct zos_skill {
	const char *name; /* points into the vector's own allocation */
	double      level;
	uint64_t    attempts;
};

/* An immutable snapshot once published; free with zos_skill_vector_unref. */
struct zos_skill_vector {
	atomic_uint refs;
	uint64_t    version;
	/* The skills' change number when this vector became the latest
	 * (zos_skills.seq): what a writer asks the store to make durable.
	 * Unlike the version it never goes back, not even when an undo
	 * (zos_skills_undo) takes the version back. */
	uint64_t         change_seq;
	size_t           n;
	struct zos_skill skills[];
};

struct zos_skills {
	struct zos_lock          lock;    /* rank 1, "skills" */
	struct zos_skill_vector *current; /* guarded by: lock; writers' */
	/* With a store (zos_skills_track): while CURRENT is not durable,
	 * the newest durable vector, which readers get; NULL otherwise. */
	struct zos_skill_vector *durable; /* guarded by: lock */
	bool                     track;   /* set before sharing */
	uint64_t                 seq;     /* guarded by: lock; changes made */
};

/* One requested change: add DELTA to the level of skill NAME. */
struct zos_skill_delta {
	const char *name;
	double      delta;
};

/*
 * A new vector (refs 1, version 0) with N skills copied from NAMES and
 * LEVELS (attempts 0); NULL when out of memory.
 */
struct zos_skill_vector *zos_skill_vector_new(
    size_t n, const char *const *names, const double *levels);

/* The built-in default: six proof techniques at level 0.5. */
struct zos_skill_vector *zos_skill_vector_default(void);

/* Adds a reference to V and returns it. Lock-free. */
struct zos_skill_vector *zos_skill_vector_ref(struct zos_skill_vector *v);

/* Drops a reference; frees V with the last one. NULL is a no-op. */
void zos_skill_vector_unref(struct zos_skill_vector *v);

/*
 * A vector read back from storage (store.h): N skills with NAMES, LEVELS
 * and ATTEMPTS, at VERSION, kept as it is so that versions go on from
 * where they were before a restart. Checked as a skills file is: 1 to
 * ZOS_SKILLS_MAX skills, names [a-z0-9_] of 1 to ZOS_SKILL_NAME_MAX
 * bytes, each once, levels in [0, 1]. On OK *OUT is the vector (refs 1);
 * otherwise *OUT is NULL and ERROR says which skill is wrong. Takes no
 * lock.
 */
enum zos_skills_result zos_skill_vector_restore(size_t n,
    const char *const *names, const double *levels, const uint64_t *attempts,
    uint64_t version, struct zos_skill_vector **out, char *error,
    size_t error_len);

/*
 * Sets SKILLS up with INITIAL (taken over; NULL = the default) in DOMAIN.
 * INITIAL's version is kept: 0 for a new, parsed or default vector, the
 * stored one for a vector from zos_skill_vector_restore.
 * Returns 0 or an errno value.
 */
int zos_skills_init(struct zos_skills *skills, struct zos_lock_domain *domain,
    struct zos_skill_vector *initial);

/* Releases everything. */
void zos_skills_finish(struct zos_skills *skills);

/*
 * Durability (store.h). With tracking on, readers (zos_skills_get,
 * zos_skills_read) see a change only once the store has made it durable
 * and said so with zos_skills_durable; updates work on the latest
 * vector, so they chain without waiting. Without (the default, no
 * store), every change is visible at once. Call before sharing.
 */
void zos_skills_track(struct zos_skills *skills);

/*
 * The store made V durable: readers see it from now on (or a newer
 * durable one).
 * Locking: takes skills (write).
 */
void zos_skills_durable(struct zos_skills *skills,
    const struct zos_skill_vector         *v) ZOS_EXCLUDES(skills->lock);

/*
 * The store could not make the latest vector durable: it is undone, and
 * the newest durable vector is the latest again (its version too, so the
 * next accepted update takes the version after it, as on disk). Returns
 * the change number of the vector undone (every change number above the
 * durable one and up to it is undone; change numbers never go back).
 * Locking: takes skills (write).
 */
uint64_t zos_skills_undo(struct zos_skills *skills) ZOS_EXCLUDES(skills->lock);

/*
 * The vector readers see (the newest durable one when tracking), with a
 * reference the caller drops.
 * Locking: takes skills (read), for a pointer copy.
 */
struct zos_skill_vector *zos_skills_get(struct zos_skills *skills)
    ZOS_EXCLUDES(skills->lock);

/*
 * The latest vector (what writers see; the store writes it), with a
 * reference the caller drops.
 * Locking: takes skills (read), for a pointer copy.
 */
struct zos_skill_vector *zos_skills_latest(struct zos_skills *skills)
    ZOS_EXCLUDES(skills->lock);

/*
 * Runs VISIT(ARG, current vector) under the read lock, for readers that
 * copy what they need: no reference is taken, so concurrent readers write
 * no shared memory. VISIT must only copy (no I/O, no other lock).
 * Locking: takes skills (read) around VISIT.
 */
void zos_skills_read(struct zos_skills *skills,
    void (*visit)(void *arg, const struct zos_skill_vector *v), void *arg)
    ZOS_EXCLUDES(skills->lock);

/*
 * Applies N deltas all at once or not at all: every name must exist (and
 * appear once), every delta be finite; levels are clamped to [0, 1], each
 * named skill gets one more attempt, and the version grows by one.
 * EXPECTED_VERSION 0 means any; otherwise it must equal the current one
 * (else ABORTED). On OK *OUT (may be NULL) is the new vector, referenced.
 * ERROR gets a message for any other result.
 * Locking: takes skills (write).
 */
enum zos_skills_result zos_skills_update(struct zos_skills *skills,
    const struct zos_skill_delta *deltas, size_t n, uint64_t expected_version,
    struct zos_skill_vector **out, char *error, size_t error_len)
    ZOS_EXCLUDES(skills->lock);

/*
 * Swaps in FRESH (taken over), with the version after the current one.
 * On OK *OUT (may be NULL) is FRESH, referenced.
 * Locking: takes skills (write).
 */
enum zos_skills_result zos_skills_replace(struct zos_skills *skills,
    struct zos_skill_vector *fresh, struct zos_skill_vector **out)
    ZOS_EXCLUDES(skills->lock);

/*
 * Parses a skills file: one "name level" per line, '#' comments and blank
 * lines ignored; names are [a-z0-9_], levels in [0, 1], no duplicates. On
 * OK *OUT is a new vector; otherwise ERROR says what is wrong and on which
 * line. Takes no lock.
 */
enum zos_skills_result zos_skills_parse(const char *text, size_t len,
    struct zos_skill_vector **out, char *error, size_t error_len);

/*
 * Reads and parses the file at PATH (at most ZOS_SKILLS_FILE_MAX bytes).
 * A blocking call: asserts that the thread holds no zOS lock.
 */
enum zos_skills_result zos_skills_load_file(struct zos_lock_domain *domain,
    const char *path, struct zos_skill_vector **out, char *error,
    size_t error_len);

#endif /* ZOS_SKILLS_H */
