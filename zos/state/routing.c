/*
 * Model routing; see routing.h for the contract and the file format.
 *
 * The routing table is built completely, file included, before the object
 * is published, and is never written again: routing needs no lock, and a
 * route pointer handed out stays valid for the life of the object. The
 * table is sorted by task type and searched with bsearch; it always holds
 * a "default" route (a built-in one that a file may replace), so a lookup
 * never fails.
 *
 * The metrics are an array of at most max_models entries, allocated in
 * full at creation (so recording never allocates under the lock) and kept
 * sorted by model name: recording is a binary search plus, for a new
 * model, a memmove; reading copies the array out as it stands, already in
 * the order GetMetrics answers in. Models are never removed, so the count
 * only grows, which bounds the allocate-outside-the-lock retry in
 * zos_routing_get_metrics(). Counters saturate instead of wrapping.
 *
 * Invariants under routing_metrics: count <= max_models; models[0..count)
 * are distinct and strictly increasing by strcmp.
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

struct zos_routing {
	struct routing_table {
		struct zos_route *routes; /* immutable; sorted by task type */
		size_t            count;
		size_t            default_index;
	} table;
	size_t          max_models; /* immutable */
	struct zos_lock lock;

	/* guarded by: routing_metrics */
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

enum zos_routing_code
zos_routing_create(struct zos_routing **out, struct zos_lock_domain *domain,
    const char *routes_path, size_t max_models, char *error, size_t error_len)
{
	struct zos_routing   *r;
	struct zos_route     *routes;
	size_t                n = 0;
	enum zos_routing_code rv;

	if (max_models == 0) {
		max_models = ZOS_ROUTING_DEFAULT_MAX_MODELS;
	}
	if (max_models > ZOS_ROUTING_LIMIT_MAX_MODELS) {
		routing_error(error, error_len, "max_models above %d",
		    ZOS_ROUTING_LIMIT_MAX_MODELS);
		return ZOS_ROUTING_INVALID_ARGUMENT;
	}
	rv = ZOS_ROUTING_INTERNAL;
	routing_error(error, error_len, "out of memory");
	if ((routes = calloc(ZOS_ROUTING_MAX_ROUTES, sizeof(*routes))) ==
	    NULL) {
		goto fail_routes;
	}
	for (; n < ROUTING_N_BUILTINS; n++) {
		routing_copy_name(
		    routes[n].task_type, routing_builtins[n].task_type);
		routing_copy_name(routes[n].primary_model,
		    routing_builtins[n].primary_model);
		routing_copy_name(routes[n].fallback_model,
		    routing_builtins[n].fallback_model);
	}
	if (routes_path != NULL) {
		zos_assert_no_locks_held(domain, "read routes file");
		rv = routing_load_file(
		    routes_path, routes, &n, error, error_len);
		if (rv != ZOS_ROUTING_OK) {
			goto fail_file;
		}
		rv = ZOS_ROUTING_INTERNAL;
		routing_error(error, error_len, "out of memory");
	}
	qsort(routes, n, sizeof(*routes), routing_route_compare);

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		goto fail_struct;
	}
	r->table.routes = routes;
	r->table.count  = n;
	r->table.default_index =
	    (size_t) ((struct zos_route *) bsearch(ZOS_ROUTING_DEFAULT_TASK,
	                  routes, n, sizeof(*routes),
	                  routing_route_key_compare) -
	        routes);
	r->max_models = max_models;
	if ((r->models = calloc(max_models, sizeof(*r->models))) == NULL) {
		goto fail_models;
	}
	if (zos_lock_init(&r->lock, ZOS_RANK_ROUTING_METRICS,
	        "routing_metrics", domain) != 0) {
		routing_error(error, error_len, "cannot initialise lock");
		goto fail_lock;
	}
	if (error != NULL && error_len > 0) {
		error[0] = '\0';
	}
	*out = r;
	return ZOS_ROUTING_OK;

fail_lock:
	free(r->models);
fail_models:
	free(r);
fail_struct:
fail_file:
	free(routes);
fail_routes:
	return rv;
}

enum zos_routing_code
zos_routing_set_primary(struct zos_routing *r, const char *task_type,
    const char *primary_model, char *error, size_t error_len)
{
	struct routing_table *t = &r->table;
	struct zos_route     *route;
	size_t                i;

	if (task_type == NULL || task_type[0] == '\0' ||
	    strlen(task_type) > ZOS_ROUTING_NAME_MAX ||
	    primary_model == NULL || primary_model[0] == '\0' ||
	    strlen(primary_model) > ZOS_ROUTING_NAME_MAX) {
		routing_error(error, error_len,
		    "task type and model must be 1 to %d bytes",
		    ZOS_ROUTING_NAME_MAX);
		return ZOS_ROUTING_INVALID_ARGUMENT;
	}
	i = routing_table_find_linear(t->routes, t->count, task_type);
	if (i == t->count) {
		if (t->count == ZOS_ROUTING_MAX_ROUTES) {
			routing_error(error, error_len, "more than %d routes",
			    ZOS_ROUTING_MAX_ROUTES);
			return ZOS_ROUTING_RESOURCE_EXHAUSTED;
		}
		/* A new task: the default route's fallback backs it up. */
		route = &t->routes[t->count++];
		routing_copy_name(route->task_type, task_type);
		routing_copy_name(route->fallback_model,
		    t->routes[t->default_index].fallback_model);
	}
	routing_copy_name(t->routes[i].primary_model, primary_model);
	qsort(t->routes, t->count, sizeof(*t->routes), routing_route_compare);
	t->default_index =
	    (size_t) ((struct zos_route *) bsearch(ZOS_ROUTING_DEFAULT_TASK,
	                  t->routes, t->count, sizeof(*t->routes),
	                  routing_route_key_compare) -
	        t->routes);
	return ZOS_ROUTING_OK;
}

void
zos_routing_destroy(struct zos_routing *r)
{
	if (r == NULL) {
		return;
	}
	zos_lock_finish(&r->lock);
	free(r->models);
	free(r->table.routes);
	free(r);
}

struct zos_lock *
zos_routing_lock(struct zos_routing *r)
{
	return &r->lock;
}

const struct zos_route *
zos_routing_route(const struct zos_routing *r, const char *task_type)
{
	const struct zos_route *route = NULL;

	if (task_type != NULL) {
		route = bsearch(task_type, r->table.routes, r->table.count,
		    sizeof(*r->table.routes), routing_route_key_compare);
	}
	return route != NULL ? route
	                     : &r->table.routes[r->table.default_index];
}

size_t
zos_routing_route_count(const struct zos_routing *r)
{
	return r->table.count;
}

const struct zos_route *
zos_routing_route_at(const struct zos_routing *r, size_t i)
{
	return i < r->table.count ? &r->table.routes[i] : NULL;
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

	if (model == NULL) {
		return ZOS_ROUTING_INVALID_ARGUMENT;
	}
	len = strnlen(model, ZOS_ROUTING_NAME_MAX + 1);
	if (len == 0 || len > ZOS_ROUTING_NAME_MAX) {
		return ZOS_ROUTING_INVALID_ARGUMENT;
	}

	zos_lock_write(&r->lock);
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

/* How many models are tracked now (they may only grow). */
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

		/* Allocate outside the lock; models only ever get added,
		 * so this loop ends by max_models at the latest. */
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
