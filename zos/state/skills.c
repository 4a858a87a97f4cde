/*
 * The skill vector; see skills.h.
 *
 * A vector is one allocation: the header, the array of skills, then their
 * names, so a snapshot is copied and freed as a unit. The vector that
 * `current` points to holds one reference for the state; readers add
 * their own. Updates build the next vector under the write lock (it is
 * small: ZOS_SKILLS_MAX entries at most), which keeps the check of names
 * and version and the swap one atomic step, as "all or none" requires.
 */
#include "skills.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const skills_default_names[] = { "direct_proof",
	"contradiction", "contrapositive", "induction", "cases",
	"construction" };

struct zos_skill_vector *
zos_skill_vector_new(size_t n, const char *const *names, const double *levels)
{
	struct zos_skill_vector *v;
	size_t                   size = sizeof(*v) + n * sizeof(v->skills[0]);
	char                    *text;

	for (size_t i = 0; i < n; i++) {
		size += strlen(names[i]) + 1;
	}
	if ((v = malloc(size)) == NULL) {
		return NULL;
	}
	atomic_init(&v->refs, 1);
	v->version    = 0;
	v->change_seq = 0;
	v->n          = n;
	text          = (char *) &v->skills[n];
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]) + 1;

		memcpy(text, names[i], len);
		v->skills[i].name     = text;
		v->skills[i].level    = levels[i];
		v->skills[i].attempts = 0;
		text += len;
	}
	return v;
}

struct zos_skill_vector *
zos_skill_vector_default(void)
{
	const size_t n =
	    sizeof(skills_default_names) / sizeof(skills_default_names[0]);
	double levels[sizeof(skills_default_names) /
	    sizeof(skills_default_names[0])];

	for (size_t i = 0; i < n; i++) {
		levels[i] = 0.5;
	}
	return zos_skill_vector_new(n, skills_default_names, levels);
}

/* A copy of V (refs 1), for copy-on-write. */
static struct zos_skill_vector *
skills_copy(const struct zos_skill_vector *v)
{
	const char              *names[ZOS_SKILLS_MAX];
	double                   levels[ZOS_SKILLS_MAX];
	struct zos_skill_vector *copy;

	for (size_t i = 0; i < v->n; i++) {
		names[i]  = v->skills[i].name;
		levels[i] = v->skills[i].level;
	}
	if ((copy = zos_skill_vector_new(v->n, names, levels)) == NULL) {
		return NULL;
	}
	copy->version    = v->version;
	copy->change_seq = v->change_seq;
	for (size_t i = 0; i < v->n; i++) {
		copy->skills[i].attempts = v->skills[i].attempts;
	}
	return copy;
}

struct zos_skill_vector *
zos_skill_vector_ref(struct zos_skill_vector *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	return v;
}

void
zos_skill_vector_unref(struct zos_skill_vector *v)
{
	if (v != NULL &&
	    atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) ==
	        1) {
		free(v);
	}
}

int
zos_skills_init(struct zos_skills *skills, struct zos_lock_domain *domain,
    struct zos_skill_vector *initial)
{
	int rv;

	if (initial == NULL &&
	    (initial = zos_skill_vector_default()) == NULL) {
		return ENOMEM;
	}
	if ((rv = zos_lock_init(
	         &skills->lock, ZOS_RANK_SKILLS, "skills", domain)) != 0) {
		zos_skill_vector_unref(initial);
		return rv;
	}
	skills->current     = initial;
	skills->durable     = NULL;
	skills->track       = false;
	skills->seq         = initial->version;
	initial->change_seq = skills->seq;
	return 0;
}

void
zos_skills_finish(struct zos_skills *skills)
{
	zos_skill_vector_unref(skills->current);
	zos_skill_vector_unref(skills->durable);
	skills->current = NULL;
	skills->durable = NULL;
	zos_lock_finish(&skills->lock);
}

/* Not shared yet: no lock (which the analysis cannot know). */
void
zos_skills_track(struct zos_skills *skills) ZOS_NO_THREAD_SAFETY_ANALYSIS
{
	skills->track = true;
}

/* What readers see. */
static struct zos_skill_vector *
skills_visible(struct zos_skills *skills) ZOS_REQUIRES_SHARED(skills->lock)
{
	return skills->durable != NULL ? skills->durable : skills->current;
}

/*
 * OLD, the vector a change replaced, is what readers keep seeing when it
 * is the newest durable one (tracking, and nothing newer pending);
 * otherwise its reference is returned to be dropped outside the lock.
 */
static struct zos_skill_vector *
skills_retire(struct zos_skills *skills, struct zos_skill_vector *old)
    ZOS_REQUIRES(skills->lock)
{
	if (skills->track && skills->durable == NULL) {
		skills->durable = old;
		return NULL;
	}
	return old;
}

void
zos_skills_durable(struct zos_skills *skills, const struct zos_skill_vector *v)
{
	struct zos_skill_vector *drop = NULL;

	zos_lock_write(&skills->lock);
	if (skills->durable != NULL) {
		if (v->change_seq >= skills->current->change_seq) {
			drop            = skills->durable;
			skills->durable = NULL;
		} else if (v->change_seq > skills->durable->change_seq) {
			drop            = skills->durable;
			skills->durable = zos_skill_vector_ref(
			    (struct zos_skill_vector *) v);
		}
	}
	zos_unlock_write(&skills->lock);
	zos_skill_vector_unref(drop);
}

uint64_t
zos_skills_undo(struct zos_skills *skills)
{
	struct zos_skill_vector *drop = NULL;
	uint64_t                 undone;

	zos_lock_write(&skills->lock);
	undone = skills->current->change_seq;
	if (skills->durable != NULL) {
		drop            = skills->current;
		skills->current = skills->durable; /* its reference moves */
		skills->durable = NULL;
	}
	zos_unlock_write(&skills->lock);
	zos_skill_vector_unref(drop);
	return undone;
}

struct zos_skill_vector *
zos_skills_get(struct zos_skills *skills)
{
	struct zos_skill_vector *v;

	zos_lock_read(&skills->lock);
	v = zos_skill_vector_ref(skills_visible(skills));
	zos_unlock_read(&skills->lock);
	return v;
}

struct zos_skill_vector *
zos_skills_latest(struct zos_skills *skills)
{
	struct zos_skill_vector *v;

	zos_lock_read(&skills->lock);
	v = zos_skill_vector_ref(skills->current);
	zos_unlock_read(&skills->lock);
	return v;
}

void
zos_skills_read(struct zos_skills *skills,
    void (*visit)(void *arg, const struct zos_skill_vector *v), void *arg)
{
	zos_lock_read(&skills->lock);
	visit(arg, skills_visible(skills));
	zos_unlock_read(&skills->lock);
}

/* Index of NAME in V, or -1. */
static long
skills_find(const struct zos_skill_vector *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->skills[i].name, name) == 0) {
			return (long) i;
		}
	}
	return -1;
}

static double
skills_clamp(double level)
{
	return level < 0.0 ? 0.0 : level > 1.0 ? 1.0 : level;
}

enum zos_skills_result
zos_skills_update(struct zos_skills *skills,
    const struct zos_skill_delta *deltas, size_t n, uint64_t expected_version,
    struct zos_skill_vector **out, char *error, size_t error_len)
{
	struct zos_skill_vector *next, *old;

	if (out != NULL) {
		*out = NULL;
	}
	/* What needs no state is checked before taking the lock. */
	if (n > ZOS_SKILLS_MAX) {
		snprintf(
		    error, error_len, "at most %d deltas", ZOS_SKILLS_MAX);
		return ZOS_SKILLS_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		if (deltas[i].name == NULL || !isfinite(deltas[i].delta)) {
			snprintf(error, error_len,
			    "delta for '%.64s' is not a finite number",
			    deltas[i].name != NULL ? deltas[i].name : "");
			return ZOS_SKILLS_INVALID;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(deltas[i].name, deltas[j].name) == 0) {
				snprintf(error, error_len,
				    "skill '%.64s' is named twice",
				    deltas[i].name);
				return ZOS_SKILLS_INVALID;
			}
		}
	}

	zos_lock_write(&skills->lock);
	old = skills->current;
	if (expected_version != 0 && expected_version != old->version) {
		zos_unlock_write(&skills->lock);
		snprintf(error, error_len,
		    "expected version %llu, current is %llu",
		    (unsigned long long) expected_version,
		    (unsigned long long) old->version);
		return ZOS_SKILLS_ABORTED;
	}
	for (size_t i = 0; i < n; i++) {
		if (skills_find(old, deltas[i].name) < 0) {
			zos_unlock_write(&skills->lock);
			snprintf(error, error_len, "unknown skill '%.64s'",
			    deltas[i].name);
			return ZOS_SKILLS_INVALID;
		}
	}
	if ((next = skills_copy(old)) == NULL) {
		zos_unlock_write(&skills->lock);
		snprintf(error, error_len, "out of memory");
		return ZOS_SKILLS_RESOURCE_EXHAUSTED;
	}
	for (size_t i = 0; i < n; i++) {
		struct zos_skill *s =
		    &next->skills[skills_find(next, deltas[i].name)];
		s->level = skills_clamp(s->level + deltas[i].delta);
		s->attempts++;
	}
	next->version    = old->version + 1;
	next->change_seq = ++skills->seq;
	skills->current  = next;
	old              = skills_retire(skills, old);
	if (out != NULL) {
		*out = zos_skill_vector_ref(next);
	}
	zos_unlock_write(&skills->lock);
	zos_skill_vector_unref(old); /* freed outside the lock */
	return ZOS_SKILLS_OK;
}

enum zos_skills_result
zos_skills_replace(struct zos_skills *skills, struct zos_skill_vector *fresh,
    struct zos_skill_vector **out)
{
	struct zos_skill_vector *old;

	zos_lock_write(&skills->lock);
	old               = skills->current;
	fresh->version    = old->version + 1;
	fresh->change_seq = ++skills->seq;
	skills->current   = fresh;
	old               = skills_retire(skills, old);
	if (out != NULL) {
		*out = zos_skill_vector_ref(fresh);
	}
	zos_unlock_write(&skills->lock);
	zos_skill_vector_unref(old);
	return ZOS_SKILLS_OK;
}

/* True when NAME is a valid skill name: [a-z0-9_], 1..ZOS_SKILL_NAME_MAX. */
static bool
skills_valid_name(const char *name, size_t len)
{
	if (len == 0 || len > ZOS_SKILL_NAME_MAX) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '_')) {
			return false;
		}
	}
	return true;
}

enum zos_skills_result
zos_skill_vector_restore(size_t n, const char *const *names,
    const double *levels, const uint64_t *attempts, uint64_t version,
    struct zos_skill_vector **out, char *error, size_t error_len)
{
	*out = NULL;
	if (n == 0 || n > ZOS_SKILLS_MAX) {
		snprintf(error, error_len, "%zu skills (1 to %d allowed)", n,
		    ZOS_SKILLS_MAX);
		return ZOS_SKILLS_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		if (names[i] == NULL ||
		    !skills_valid_name(
		        names[i], strnlen(names[i], ZOS_SKILL_NAME_MAX + 1))) {
			snprintf(error, error_len, "skill %zu: bad name", i);
			return ZOS_SKILLS_INVALID;
		}
		if (!isfinite(levels[i]) || levels[i] < 0.0 ||
		    levels[i] > 1.0) {
			snprintf(error, error_len,
			    "skill '%s': level is not in [0, 1]", names[i]);
			return ZOS_SKILLS_INVALID;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(names[i], names[j]) == 0) {
				snprintf(error, error_len,
				    "skill '%s' appears twice", names[i]);
				return ZOS_SKILLS_INVALID;
			}
		}
	}
	if ((*out = zos_skill_vector_new(n, names, levels)) == NULL) {
		snprintf(error, error_len, "out of memory");
		return ZOS_SKILLS_RESOURCE_EXHAUSTED;
	}
	(*out)->version = version;
	for (size_t i = 0; i < n; i++) {
		(*out)->skills[i].attempts = attempts[i];
	}
	return ZOS_SKILLS_OK;
}

enum zos_skills_result
zos_skills_parse(const char *text, size_t len, struct zos_skill_vector **out,
    char *error, size_t error_len)
{
	char        names[ZOS_SKILLS_MAX][ZOS_SKILL_NAME_MAX + 1];
	const char *name_ptrs[ZOS_SKILLS_MAX];
	double      levels[ZOS_SKILLS_MAX];
	size_t      n = 0, line_no = 0, pos = 0;

	*out = NULL;
	while (pos < len) {
		char   line[512];
		size_t end = pos, line_len;
		char   name[ZOS_SKILL_NAME_MAX + 2];
		char   extra[2];
		double level;
		int    fields;

		line_no++;
		while (end < len && text[end] != '\n') {
			end++;
		}
		line_len = end - pos;
		if (line_len >= sizeof(line)) {
			snprintf(
			    error, error_len, "line %zu: too long", line_no);
			return ZOS_SKILLS_INVALID;
		}
		memcpy(line, text + pos, line_len);
		line[line_len] = '\0';
		pos            = end + 1;
		if (memchr(line, '\0', line_len) != NULL) {
			snprintf(
			    error, error_len, "line %zu: a NUL byte", line_no);
			return ZOS_SKILLS_INVALID;
		}
		char *hash = strchr(line, '#');
		if (hash != NULL) {
			*hash = '\0';
		}
		fields = sscanf(line, " %65s %lf %1s", name, &level, extra);
		if (fields == EOF) {
			continue; /* blank, or only a comment */
		}
		if (fields != 2) {
			snprintf(error, error_len,
			    "line %zu: expected 'name level'", line_no);
			return ZOS_SKILLS_INVALID;
		}
		if (!skills_valid_name(name, strlen(name))) {
			snprintf(error, error_len,
			    "line %zu: bad skill name '%.64s' (use a-z, 0-9, "
			    "_; "
			    "at most %d characters)",
			    line_no, name, ZOS_SKILL_NAME_MAX);
			return ZOS_SKILLS_INVALID;
		}
		if (!isfinite(level) || level < 0.0 || level > 1.0) {
			snprintf(error, error_len,
			    "line %zu: level of '%s' must be in [0, 1]",
			    line_no, name);
			return ZOS_SKILLS_INVALID;
		}
		for (size_t i = 0; i < n; i++) {
			if (strcmp(names[i], name) == 0) {
				snprintf(error, error_len,
				    "line %zu: skill '%s' appears twice",
				    line_no, name);
				return ZOS_SKILLS_INVALID;
			}
		}
		if (n == ZOS_SKILLS_MAX) {
			snprintf(error, error_len,
			    "line %zu: more than %d skills", line_no,
			    ZOS_SKILLS_MAX);
			return ZOS_SKILLS_RESOURCE_EXHAUSTED;
		}
		/* skills_valid_name bounds the name's length, but NAME's
		 * buffer is one byte larger (to catch over-long names); a copy
		 * that does not fit is an error, never a silently shortened
		 * name. */
		int copied = snprintf(names[n], sizeof(names[n]), "%s", name);
		if (copied < 0 || (size_t) copied >= sizeof(names[n])) {
			snprintf(error, error_len,
			    "line %zu: skill name longer than %d characters",
			    line_no, ZOS_SKILL_NAME_MAX);
			return ZOS_SKILLS_INVALID;
		}
		name_ptrs[n] = names[n];
		levels[n]    = level;
		n++;
	}
	if (n == 0) {
		snprintf(error, error_len, "no skills");
		return ZOS_SKILLS_INVALID;
	}
	if ((*out = zos_skill_vector_new(n, name_ptrs, levels)) == NULL) {
		snprintf(error, error_len, "out of memory");
		return ZOS_SKILLS_RESOURCE_EXHAUSTED;
	}
	return ZOS_SKILLS_OK;
}

enum zos_skills_result
zos_skills_load_file(struct zos_lock_domain *domain, const char *path,
    struct zos_skill_vector **out, char *error, size_t error_len)
{
	char                  *text;
	char                   message[256];
	ssize_t                got;
	size_t                 len = 0;
	int                    fd;
	enum zos_skills_result result;

	*out = NULL;
	zos_assert_no_locks_held(domain, "read skills file");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(error, error_len, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? ZOS_SKILLS_NOT_FOUND
		                       : ZOS_SKILLS_INVALID;
	}
	if ((text = malloc(ZOS_SKILLS_FILE_MAX + 1)) == NULL) {
		close(fd);
		snprintf(error, error_len, "out of memory");
		return ZOS_SKILLS_RESOURCE_EXHAUSTED;
	}
	while (
	    (got = read(fd, text + len, ZOS_SKILLS_FILE_MAX + 1 - len)) > 0) {
		len += (size_t) got;
		if (len > ZOS_SKILLS_FILE_MAX) {
			break;
		}
	}
	close(fd);
	if (got < 0 || len > ZOS_SKILLS_FILE_MAX) {
		snprintf(error, error_len, "%s: %s", path,
		    got < 0 ? strerror(errno) : "larger than 64 KiB");
		free(text);
		return ZOS_SKILLS_INVALID;
	}
	result = zos_skills_parse(text, len, out, message, sizeof(message));
	free(text);
	if (result != ZOS_SKILLS_OK) {
		snprintf(error, error_len, "%s: %s", path, message);
	}
	return result;
}
