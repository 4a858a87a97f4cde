/*
 * Model routing; see routing.h for the contract and the file format.
 *
 * The routing table is built completely, file included, outside every
 * lock, and never changed once published: a reload builds a new table
 * and swaps the pointer under routing_metrics (write), then frees the old
 * one after letting go. Readers copy the route they need out under the
 * read lock (a route is a few hundred bytes), so no pointer into a table
 * ever escapes the lock and a swap never pulls a table out from under
 * anyone. The table is sorted by task type and searched with bsearch; it
 * always holds a "default" route (a built-in one that a file may
 * replace), so a lookup never fails. It also keeps the sorted, distinct
 * names of every model it routes to: the only models whose outcomes are
 * recorded.
 *
 * The metrics are an array of at most max_models entries, allocated in
 * full at creation (so recording never allocates under the lock) and kept
 * sorted by model name: recording is a binary search plus, for a new
 * model, a memmove; reading copies the array out as it stands, already in
 * the order GetMetrics answers in. Only models of the current table are
 * recorded, and a reload drops the metrics of models the new table no
 * longer names, so the array holds at most the table's models. Counters
 * saturate instead of wrapping.
 *
 * Invariants under routing_metrics: table is complete and sorted; count
 * <= max_models; models[0..count) are distinct, strictly increasing by
 * strcmp, and each is one of table's models.
 */
#include "routing.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct routing_model {
	char     model[ZOS_ROUTING_NAME_MAX + 1];
	uint64_t success_count;
	uint64_t failure_count;
	uint64_t total_latency_ms;
	uint64_t fallback_count;
};

/* A model name, as kept in a table's list of models. */
struct routing_name {
	char name[ZOS_ROUTING_NAME_MAX + 1];
};

/* An immutable routing table (once published). */
struct routing_table {
	struct zos_route    *routes; /* sorted by task type */
	size_t               count;
	size_t               default_index;
	struct routing_name *models; /* sorted, distinct */
	size_t               n_models;
};

/* --backend TASK=URL, remembered so that a reload applies it again. */
struct routing_override {
	char task_type[ZOS_ROUTING_NAME_MAX + 1];
	char primary_model[ZOS_ROUTING_NAME_MAX + 1];
};

struct zos_routing {
	size_t          max_models; /* immutable */
	char           *path;       /* immutable; the routes file or NULL */
	struct zos_lock lock;
	/* Set before sharing (zos_routing_set_primary); read-only after. */
	struct routing_override *overrides; /* ZOS_ROUTING_MAX_ROUTES */
	size_t                   n_overrides;

	/* guarded by: routing_metrics */
	struct routing_table *table;
	struct routing_model *models; /* sorted by name; max_models slots */
	size_t                count;
};

struct routing_builtin {
	const char *task_type;
	const char *primary_model;
	const char *fallback_model;
};

static const struct routing_builtin routing_builtins[] = {
	{ "proof_feedback", "builtin:echo-large", "builtin:echo-small" },
	{ "hint", "builtin:echo-small", "builtin:echo" },
	{ "grading", "builtin:echo-large", "builtin:echo" },
	{ ZOS_ROUTING_DEFAULT_TASK, "builtin:echo", "builtin:echo-small" },
};
#define ROUTING_N_BUILTINS \
	(sizeof(routing_builtins) / sizeof(routing_builtins[0]))

/* printf into ERROR if there is one. */
static void routing_error(char *error, size_t error_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
routing_error(char *error, size_t error_len, const char *fmt, ...)
{
	va_list ap;

	if (error == NULL || error_len == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(error, error_len, fmt, ap);
	va_end(ap);
}

/* Copies NAME (known to fit) into DST. */
static void
routing_copy_name(char dst[ZOS_ROUTING_NAME_MAX + 1], const char *name)
{
	size_t len = strlen(name);

	memcpy(dst, name, len + 1);
}

/* Position of TASK_TYPE among the first N routes (linear: only while
 * building, before sorting), or N. */
static size_t
routing_table_find_linear(
    const struct zos_route *routes, size_t n, const char *task_type)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(routes[i].task_type, task_type) == 0) {
			return i;
		}
	}
	return n;
}

static int
routing_route_compare(const void *a, const void *b)
{
	const struct zos_route *x = a;
	const struct zos_route *y = b;

	return strcmp(x->task_type, y->task_type);
}

/* bsearch key comparison: KEY is a task type string. */
static int
routing_route_key_compare(const void *key, const void *elem)
{
	const struct zos_route *route = elem;

	return strcmp(key, route->task_type);
}

/*
 * Parses the routes file PATH into ROUTES (room for ZOS_ROUTING_MAX_ROUTES,
 * already holding *N built-ins), replacing built-ins it names. Returns a
 * routing code and a message in ERROR on failure. Takes no lock.
 */
static enum zos_routing_code
routing_load_file(const char *path, struct zos_route *routes, size_t *n,
    char *error, size_t error_len)
{
	/* Which entries this file has set, to reject duplicates; the line
	 * of each, for the message. */
	unsigned              set_line[ZOS_ROUTING_MAX_ROUTES] = { 0 };
	FILE                 *f;
	char                 *line    = NULL;
	size_t                linecap = 0;
	ssize_t               len;
	unsigned              lineno = 0;
	enum zos_routing_code rv     = ZOS_ROUTING_OK;

	if ((f = fopen(path, "r")) == NULL) {
		routing_error(error, error_len, "%s: cannot open: %s", path,
		    strerror(errno));
		return errno == ENOMEM ? ZOS_ROUTING_INTERNAL
		                       : ZOS_ROUTING_NOT_FOUND;
	}
	while ((len = getline(&line, &linecap, f)) >= 0) {
		char  *fields[3];
		size_t nfields = 0;
		char  *save    = NULL;
		char  *tok;
		size_t i;

		lineno++;
		if ((size_t) len > ZOS_ROUTING_LINE_MAX) {
			routing_error(error, error_len,
			    "%s:%u: line longer than %d bytes", path, lineno,
			    ZOS_ROUTING_LINE_MAX);
			rv = ZOS_ROUTING_INVALID_ARGUMENT;
			goto done;
		}
		if (strlen(line) != (size_t) len) {
			routing_error(error, error_len,
			    "%s:%u: NUL byte in line", path, lineno);
			rv = ZOS_ROUTING_INVALID_ARGUMENT;
			goto done;
		}
		line[strcspn(line, "#")] = '\0';
		for (tok = strtok_r(line, " \t\r\n\v\f", &save); tok != NULL;
		     tok = strtok_r(NULL, " \t\r\n\v\f", &save)) {
			if (nfields < 3) {
				fields[nfields] = tok;
			}
			nfields++;
		}
		if (nfields == 0) {
			continue;
		}
		if (nfields != 3) {
			routing_error(error, error_len,
			    "%s:%u: expected 'task_type primary fallback', "
			    "got %zu field%s",
			    path, lineno, nfields, nfields == 1 ? "" : "s");
			rv = ZOS_ROUTING_INVALID_ARGUMENT;
			goto done;
		}
		for (i = 0; i < 3; i++) {
			if (strlen(fields[i]) > ZOS_ROUTING_NAME_MAX) {
				routing_error(error, error_len,
				    "%s:%u: field %zu longer than %d bytes",
				    path, lineno, i + 1, ZOS_ROUTING_NAME_MAX);
				rv = ZOS_ROUTING_INVALID_ARGUMENT;
				goto done;
			}
		}
		i = routing_table_find_linear(routes, *n, fields[0]);
		if (i < *n && set_line[i] != 0) {
			routing_error(error, error_len,
			    "%s:%u: task type '%s' already routed on line %u",
			    path, lineno, fields[0], set_line[i]);
			rv = ZOS_ROUTING_INVALID_ARGUMENT;
			goto done;
		}
		if (i == *n) {
			if (*n == ZOS_ROUTING_MAX_ROUTES) {
				routing_error(error, error_len,
				    "%s:%u: more than %d routes", path, lineno,
				    ZOS_ROUTING_MAX_ROUTES);
				rv = ZOS_ROUTING_INVALID_ARGUMENT;
				goto done;
			}
			(*n)++;
		}
		routing_copy_name(routes[i].task_type, fields[0]);
		routing_copy_name(routes[i].primary_model, fields[1]);
		routing_copy_name(routes[i].fallback_model, fields[2]);
		set_line[i] = lineno;
	}
	if (ferror(f)) {
		routing_error(
		    error, error_len, "%s:%u: read error", path, lineno + 1);
		rv = ZOS_ROUTING_INTERNAL;
	}
done:
	free(line);
	fclose(f);
	return rv;
}

/* Frees T. NULL is a no-op. */
static void
routing_table_free(struct routing_table *t)
{
	if (t == NULL) {
		return;
	}
	free(t->routes);
	free(t->models);
	free(t);
}

static int
routing_name_compare(const void *a, const void *b)
{
	return strcmp(a, b); /* a struct routing_name starts with its name */
}

/* The route of TASK_TYPE in T, or NULL. */
static const struct zos_route *
routing_table_find(const struct routing_table *t, const char *task_type)
{
	return bsearch(task_type, t->routes, t->count, sizeof(*t->routes),
	    routing_route_key_compare);
}

/* True when T routes to MODEL. */
static bool
routing_table_has_model(const struct routing_table *t, const char *model)
{
	return bsearch(model, t->models, t->n_models, sizeof(*t->models),
	           routing_name_compare) != NULL;
}

/* Sets PRIMARY as TASK_TYPE's primary model in the ROUTES being built (*N
 * of them, room for ZOS_ROUTING_MAX_ROUTES); a new task gets the default
 * route's fallback. Returns OK or RESOURCE_EXHAUSTED. */
static enum zos_routing_code
routing_apply_override(struct zos_route *routes, size_t *n,
    const struct routing_override *o, char *error, size_t error_len)
{
	size_t i = routing_table_find_linear(routes, *n, o->task_type);

	if (i == *n) {
		size_t d = routing_table_find_linear(
		    routes, *n, ZOS_ROUTING_DEFAULT_TASK);

		if (*n == ZOS_ROUTING_MAX_ROUTES) {
			routing_error(error, error_len, "more than %d routes",
			    ZOS_ROUTING_MAX_ROUTES);
			return ZOS_ROUTING_RESOURCE_EXHAUSTED;
		}
		routing_copy_name(routes[i].task_type, o->task_type);
		routing_copy_name(
		    routes[i].fallback_model, routes[d].fallback_model);
		(*n)++;
	}
	routing_copy_name(routes[i].primary_model, o->primary_model);
	return ZOS_ROUTING_OK;
}

/*
 * Builds a complete table: the built-ins, PATH (when not NULL) over them,
 * then the N_OVERRIDES OVERRIDES. Reads a file: no lock may be held
 * (asserted against DOMAIN). Returns OK and *OUT, or a code with ERROR.
 */
static enum zos_routing_code
routing_table_build(struct zos_lock_domain *domain, const char *path,
    const struct routing_override *overrides, size_t n_overrides,
    struct routing_table **out, char *error, size_t error_len)
{
	struct routing_table *t;
	size_t                n = 0, k = 0;
	enum zos_routing_code rv = ZOS_ROUTING_INTERNAL;

	routing_error(error, error_len, "out of memory");
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->routes = calloc(ZOS_ROUTING_MAX_ROUTES, sizeof(*t->routes))) ==
	        NULL ||
	    (t->models = calloc(
	         2 * ZOS_ROUTING_MAX_ROUTES, sizeof(*t->models))) == NULL) {
		goto fail;
	}
	for (; n < ROUTING_N_BUILTINS; n++) {
		routing_copy_name(
		    t->routes[n].task_type, routing_builtins[n].task_type);
		routing_copy_name(t->routes[n].primary_model,
		    routing_builtins[n].primary_model);
		routing_copy_name(t->routes[n].fallback_model,
		    routing_builtins[n].fallback_model);
	}
	if (path != NULL) {
		zos_assert_no_locks_held(domain, "read routes file");
		rv = routing_load_file(path, t->routes, &n, error, error_len);
		if (rv != ZOS_ROUTING_OK) {
			goto fail;
		}
	}
	for (size_t i = 0; i < n_overrides; i++) {
		rv = routing_apply_override(
		    t->routes, &n, &overrides[i], error, error_len);
		if (rv != ZOS_ROUTING_OK) {
			goto fail;
		}
	}
	qsort(t->routes, n, sizeof(*t->routes), routing_route_compare);
	t->count = n;
	t->default_index =
	    (size_t) (routing_table_find(t, ZOS_ROUTING_DEFAULT_TASK) -
	        t->routes);
	for (size_t i = 0; i < n; i++) {
		routing_copy_name(
		    t->models[k++].name, t->routes[i].primary_model);
		routing_copy_name(
		    t->models[k++].name, t->routes[i].fallback_model);
	}
	qsort(t->models, k, sizeof(*t->models), routing_name_compare);
	t->n_models = 0;
	for (size_t i = 0; i < k; i++) {
		if (t->n_models == 0 ||
		    strcmp(t->models[t->n_models - 1].name,
		        t->models[i].name) != 0) {
			t->models[t->n_models++] = t->models[i];
		}
	}
	if (error != NULL && error_len > 0) {
		error[0] = '\0';
	}
	*out = t;
	return ZOS_ROUTING_OK;

fail:
	routing_table_free(t);
	return rv;
}

/* Drops the metrics of models T does not route to. */
static void
routing_models_prune(struct zos_routing *r, const struct routing_table *t)
    ZOS_REQUIRES(r->lock)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->count; i++) {
		if (routing_table_has_model(t, r->models[i].model)) {
			r->models[kept++] = r->models[i];
		}
	}
	r->count = kept;
}

/* Publishes the new table T and frees the old one, outside the lock. */
static void
routing_swap(struct zos_routing *r, struct routing_table *t)
{
	struct routing_table *old;

	zos_lock_write(&r->lock);
	old      = r->table;
	r->table = t;
	routing_models_prune(r, t);
	zos_unlock_write(&r->lock);
	routing_table_free(old);
}

enum zos_routing_code
zos_routing_create(struct zos_routing **out, struct zos_lock_domain *domain,
    const char *routes_path, size_t max_models, char *error, size_t error_len)
{
	struct zos_routing   *r;
	struct routing_table *table;
	enum zos_routing_code rv;

	if (max_models == 0) {
		max_models = ZOS_ROUTING_DEFAULT_MAX_MODELS;
	}
	if (max_models > ZOS_ROUTING_LIMIT_MAX_MODELS) {
		routing_error(error, error_len, "max_models above %d",
		    ZOS_ROUTING_LIMIT_MAX_MODELS);
		return ZOS_ROUTING_INVALID_ARGUMENT;
	}
	if ((rv = routing_table_build(domain, routes_path, NULL, 0, &table,
	         error, error_len)) != ZOS_ROUTING_OK) {
		return rv;
	}
	routing_error(error, error_len, "out of memory");
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		goto fail_struct;
	}
	r->max_models = max_models;
	r->table      = table;
	if ((r->models = calloc(max_models, sizeof(*r->models))) == NULL ||
	    (r->overrides = calloc(
	         ZOS_ROUTING_MAX_ROUTES, sizeof(*r->overrides))) == NULL ||
	    (routes_path != NULL && (r->path = strdup(routes_path)) == NULL)) {
		goto fail_models;
	}
	if (zos_lock_init(&r->lock, ZOS_RANK_ROUTING_METRICS,
	        "routing_metrics", domain) != 0) {
		routing_error(error, error_len, "cannot initialise lock");
		goto fail_models;
	}
	if (error != NULL && error_len > 0) {
		error[0] = '\0';
	}
	*out = r;
	return ZOS_ROUTING_OK;

fail_models:
	free(r->path);
	free(r->overrides);
	free(r->models);
	free(r);
fail_struct:
	routing_table_free(table);
	return ZOS_ROUTING_INTERNAL;
}

enum zos_routing_code
zos_routing_set_primary(struct zos_routing *r, const char *task_type,
    const char *primary_model, char *error, size_t error_len)
{
	struct routing_override *o;
	struct routing_table    *table;
	enum zos_routing_code    rv;

	if (task_type == NULL || task_type[0] == '\0' ||
	    strlen(task_type) > ZOS_ROUTING_NAME_MAX ||
	    primary_model == NULL || primary_model[0] == '\0' ||
	    strlen(primary_model) > ZOS_ROUTING_NAME_MAX) {
		routing_error(error, error_len,
		    "task type and model must be 1 to %d bytes",
		    ZOS_ROUTING_NAME_MAX);
		return ZOS_ROUTING_INVALID_ARGUMENT;
	}
	if (r->n_overrides == ZOS_ROUTING_MAX_ROUTES) {
		routing_error(error, error_len, "more than %d routes",
		    ZOS_ROUTING_MAX_ROUTES);
		return ZOS_ROUTING_RESOURCE_EXHAUSTED;
	}
	o = &r->overrides[r->n_overrides];
	routing_copy_name(o->task_type, task_type);
	routing_copy_name(o->primary_model, primary_model);
	/* Rebuilt whole, file included, exactly as a reload will. */
	rv = routing_table_build(r->lock.domain, r->path, r->overrides,
	    r->n_overrides + 1, &table, error, error_len);
	if (rv != ZOS_ROUTING_OK) {
		return rv;
	}
	r->n_overrides++;
	routing_swap(r, table);
	return ZOS_ROUTING_OK;
}

enum zos_routing_code
zos_routing_reload(struct zos_routing *r, char *error, size_t error_len)
{
	struct routing_table *table;
	enum zos_routing_code rv;

	rv = routing_table_build(r->lock.domain, r->path, r->overrides,
	    r->n_overrides, &table, error, error_len);
	if (rv != ZOS_ROUTING_OK) {
		return rv; /* the old table stays */
	}
	routing_swap(r, table);
	return ZOS_ROUTING_OK;
}

const char *
zos_routing_path(const struct zos_routing *r)
{
	return r->path;
}

void
zos_routing_destroy(struct zos_routing *r)
{
	if (r == NULL) {
		return;
	}
	zos_lock_finish(&r->lock);
	routing_table_free(r->table);
	free(r->overrides);
	free(r->path);
	free(r->models);
	free(r);
}

struct zos_lock *
zos_routing_lock(struct zos_routing *r)
{
	return &r->lock;
}

void
zos_routing_route(
    struct zos_routing *r, const char *task_type, struct zos_route *out)
{
	const struct zos_route *route = NULL;

	zos_lock_read(&r->lock);
	if (task_type != NULL) {
		route = routing_table_find(r->table, task_type);
	}
	*out =
	    route != NULL ? *route : r->table->routes[r->table->default_index];
	zos_unlock_read(&r->lock);
}

size_t
zos_routing_route_count(struct zos_routing *r)
{
	size_t n;

	zos_lock_read(&r->lock);
	n = r->table->count;
	zos_unlock_read(&r->lock);
	return n;
}

bool
zos_routing_route_at(struct zos_routing *r, size_t i, struct zos_route *out)
{
	bool found;

	zos_lock_read(&r->lock);
	found = i < r->table->count;
	if (found) {
		*out = r->table->routes[i];
	}
	zos_unlock_read(&r->lock);
	return found;
}

/* Position of MODEL in the sorted models, or where it would go (then
 * *FOUND is false). */
static size_t
routing_models_search(struct zos_routing *r, const char *model, bool *found)
    ZOS_REQUIRES_SHARED(r->lock)
{
	size_t lo = 0;
	size_t hi = r->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int    c   = strcmp(model, r->models[mid].model);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	*found = false;
	return lo;
}

/* A + B, stopping at UINT64_MAX. */
static uint64_t
routing_add_saturating(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

enum zos_routing_code
zos_routing_record_outcome(struct zos_routing *r, const char *model,
    bool success, uint64_t latency_ms, bool fallback)
{
	struct routing_model *m;
	size_t                len;
	size_t                pos;
	bool                  found;

	if (model == NULL || latency_ms > ZOS_ROUTING_LATENCY_MAX_MS) {
		return ZOS_ROUTING_INVALID_ARGUMENT;
	}
	len = strnlen(model, ZOS_ROUTING_NAME_MAX + 1);
	if (len == 0 || len > ZOS_ROUTING_NAME_MAX) {
		return ZOS_ROUTING_INVALID_ARGUMENT;
	}

	zos_lock_write(&r->lock);
	if (!routing_table_has_model(r->table, model)) {
		zos_unlock_write(&r->lock);
		return ZOS_ROUTING_NOT_FOUND;
	}
	pos = routing_models_search(r, model, &found);
	if (!found) {
		if (r->count == r->max_models) {
			zos_unlock_write(&r->lock);
			return ZOS_ROUTING_RESOURCE_EXHAUSTED;
		}
		memmove(&r->models[pos + 1], &r->models[pos],
		    (r->count - pos) * sizeof(*r->models));
		r->count++;
		m = &r->models[pos];
		memset(m, 0, sizeof(*m));
		memcpy(m->model, model, len);
	}
	m = &r->models[pos];
	if (success) {
		m->success_count = routing_add_saturating(m->success_count, 1);
	} else {
		m->failure_count = routing_add_saturating(m->failure_count, 1);
	}
	m->total_latency_ms =
	    routing_add_saturating(m->total_latency_ms, latency_ms);
	if (fallback) {
		m->fallback_count =
		    routing_add_saturating(m->fallback_count, 1);
	}
	zos_unlock_write(&r->lock);
	return ZOS_ROUTING_OK;
}

/* How many models are tracked now. */
static size_t
routing_models_count(struct zos_routing *r)
{
	size_t n;

	zos_lock_read(&r->lock);
	n = r->count;
	zos_unlock_read(&r->lock);
	return n;
}

enum zos_routing_code
zos_routing_get_metrics(
    struct zos_routing *r, struct zos_model_metrics **out, size_t *count)
{
	struct zos_model_metrics *metrics = NULL;
	size_t                    room    = routing_models_count(r);
	size_t                    n;

	*out   = NULL;
	*count = 0;
	for (;;) {
		struct zos_model_metrics *grown;

		/* Allocate outside the lock for as many as there were;
		 * each retry asks for more than the last, so this loop ends
		 * by max_models at the latest. */
		if (room > 0) {
			grown = realloc(metrics, room * sizeof(*metrics));
			if (grown == NULL) {
				free(metrics);
				return ZOS_ROUTING_INTERNAL;
			}
			metrics = grown;
		}
		zos_lock_read(&r->lock);
		n = r->count;
		if (n <= room) {
			for (size_t i = 0; i < n; i++) {
				const struct routing_model *m = &r->models[i];
				struct zos_model_metrics   *o = &metrics[i];
				memcpy(o->model, m->model, sizeof(o->model));
				o->success_count    = m->success_count;
				o->failure_count    = m->failure_count;
				o->total_latency_ms = m->total_latency_ms;
				o->fallback_count   = m->fallback_count;
			}
			zos_unlock_read(&r->lock);
			break;
		}
		zos_unlock_read(&r->lock);
		room = n;
	}
	/* The means are work: outside the lock. */
	for (size_t i = 0; i < n; i++) {
		struct zos_model_metrics *o = &metrics[i];
		uint64_t                  calls =
		    routing_add_saturating(o->success_count, o->failure_count);
		o->mean_latency_ms = calls == 0
		    ? 0.0
		    : (double) o->total_latency_ms / (double) calls;
	}
	if (n == 0) {
		free(metrics);
		metrics = NULL;
	}
	*out   = metrics;
	*count = n;
	return ZOS_ROUTING_OK;
}
