/*
 * Tests for model routing (zos/state/routing.c).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "routing.h"

struct routing_fixture {
	struct zos_lock_domain domain;
	struct zos_routing    *r;
	char                   error[512];
	char                   path[64];
};

/* Writes TEXT to a fresh temporary file; its name goes to F->path. */
static void
write_routes(struct routing_fixture *f, const char *text)
{
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/zos-routes-XXXXXX");
	fd = mkstemp(f->path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	close(fd);
}

static enum zos_routing_code
routing_fixture_init(
    struct routing_fixture *f, const char *file_text, size_t max_models)
{
	enum zos_routing_code rv;

	memset(f, 0, sizeof(*f));
	zos_lock_domain_init(&f->domain, true, NULL, NULL);
	if (file_text != NULL) {
		write_routes(f, file_text);
	}
	rv = zos_routing_create(&f->r, &f->domain,
	    file_text != NULL ? f->path : NULL, max_models, f->error,
	    sizeof(f->error));
	if (file_text != NULL) {
		unlink(f->path);
	}
	return rv;
}

static void
routing_fixture_fini(struct routing_fixture *f)
{
	cr_assert_eq(zos_locks_held_mask(), 0u);
	zos_routing_destroy(f->r);
}

static void
assert_route(const struct zos_routing *r, const char *task,
    const char *primary, const char *fallback)
{
	const struct zos_route *route = zos_routing_route(r, task);

	cr_assert_not_null(route);
	cr_assert_str_eq(route->primary_model, primary, "task %s", task);
	cr_assert_str_eq(route->fallback_model, fallback, "task %s", task);
}

Test(routing, builtin_routes_serve_the_known_task_types)
{
	struct routing_fixture f;

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	cr_assert_str_eq(f.error, "");
	assert_route(
	    f.r, "proof_feedback", "builtin:echo-large", "builtin:echo-small");
	assert_route(f.r, "hint", "builtin:echo-small", "builtin:echo");
	assert_route(f.r, "grading", "builtin:echo-large", "builtin:echo");
	assert_route(f.r, "default", "builtin:echo", "builtin:echo-small");
	cr_assert_eq(zos_routing_route_count(f.r), 4);
	/* Ordered by task type. */
	for (size_t i = 1; i < zos_routing_route_count(f.r); i++) {
		cr_assert_lt(
		    strcmp(zos_routing_route_at(f.r, i - 1)->task_type,
		        zos_routing_route_at(f.r, i)->task_type),
		    0);
	}
	cr_assert_null(zos_routing_route_at(f.r, 4));
	routing_fixture_fini(&f);
}

Test(routing, unknown_task_type_gets_the_default_route)
{
	struct routing_fixture f;

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	assert_route(
	    f.r, "no_such_task", "builtin:echo", "builtin:echo-small");
	assert_route(f.r, "", "builtin:echo", "builtin:echo-small");
	assert_route(f.r, NULL, "builtin:echo", "builtin:echo-small");
	cr_assert_str_eq(zos_routing_route(f.r, "no_such_task")->task_type,
	    ZOS_ROUTING_DEFAULT_TASK);
	routing_fixture_fini(&f);
}

Test(routing, file_overrides_builtins_and_adds_routes)
{
	struct routing_fixture f;

	cr_assert_eq(
	    routing_fixture_init(&f,
	        "# routes for the test\n"
	        "\n"
	        "hint  remote:big\tremote:small   # trailing comment\n"
	        "   summary m1 m2\n"
	        "default d1 d2\r\n"
	        "   # indented comment\n"
	        "proof_feedback pf1 pf2", /* no final newline */
	        0),
	    ZOS_ROUTING_OK, "%s", f.error);
	assert_route(f.r, "hint", "remote:big", "remote:small");
	assert_route(f.r, "summary", "m1", "m2");
	assert_route(f.r, "proof_feedback", "pf1", "pf2");
	assert_route(f.r, "grading", "builtin:echo-large", "builtin:echo");
	assert_route(f.r, "default", "d1", "d2");
	assert_route(f.r, "unknown", "d1", "d2");
	cr_assert_eq(zos_routing_route_count(f.r), 5);
	routing_fixture_fini(&f);
}

Test(routing, malformed_file_is_rejected_with_its_line_number)
{
	static const struct {
		const char *text;
		const char *where; /* ":LINE: " expected in the message */
		const char *what;  /* expected in the message */
	} cases[] = {
		{ "hint a b\nbroken line\n", ":2: ", "got 2 fields" },
		{ "# c\n\nx a b c\n", ":3: ", "got 4 fields" },
		{ "only\n", ":1: ", "got 1 field" },
		{ "a b c\nd e f\na g h\n",
		    ":3: ", "already routed on line 1" },
	};
	struct routing_fixture f;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(routing_fixture_init(&f, cases[i].text, 0),
		    ZOS_ROUTING_INVALID_ARGUMENT, "case %zu", i);
		cr_assert_null(f.r);
		cr_assert(strstr(f.error, f.path) != NULL, "%s", f.error);
		cr_assert(
		    strstr(f.error, cases[i].where) != NULL, "%s", f.error);
		cr_assert(
		    strstr(f.error, cases[i].what) != NULL, "%s", f.error);
	}
}

Test(routing, overlong_names_and_lines_in_a_file_are_rejected)
{
	struct routing_fixture f;
	char                   text[8192];
	char                   name[ZOS_ROUTING_NAME_MAX + 2];

	memset(name, 'm', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(text, sizeof(text), "ok a b\ntask %s b\n", name);
	cr_assert_eq(
	    routing_fixture_init(&f, text, 0), ZOS_ROUTING_INVALID_ARGUMENT);
	cr_assert(
	    strstr(f.error, ":2: field 2 longer") != NULL, "%s", f.error);

	name[ZOS_ROUTING_NAME_MAX] = '\0'; /* exactly the maximum: fine */
	snprintf(text, sizeof(text), "task %s b\n", name);
	cr_assert_eq(routing_fixture_init(&f, text, 0), ZOS_ROUTING_OK);
	assert_route(f.r, "task", name, "b");
	routing_fixture_fini(&f);

	memset(text, ' ', 5000);
	memcpy(text + 5000, "a b c\n", 7);
	cr_assert_eq(
	    routing_fixture_init(&f, text, 0), ZOS_ROUTING_INVALID_ARGUMENT);
	cr_assert(strstr(f.error, ":1: line longer") != NULL, "%s", f.error);
}

Test(routing, too_many_routes_in_a_file_are_rejected)
{
	struct routing_fixture f;
	size_t                 cap  = 64 * (ZOS_ROUTING_MAX_ROUTES + 8);
	char                  *text = malloc(cap);
	size_t                 used = 0;

	cr_assert_not_null(text);
	/* 4 built-ins + 252 new = 256 routes: fine; one more is not. */
	for (int i = 0; i < ZOS_ROUTING_MAX_ROUTES - 4; i++) {
		used += (size_t) snprintf(
		    text + used, cap - used, "task%d a b\n", i);
	}
	cr_assert_eq(routing_fixture_init(&f, text, 0), ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_route_count(f.r), ZOS_ROUTING_MAX_ROUTES);
	routing_fixture_fini(&f);
	snprintf(text + used, cap - used, "one_more a b\n");
	cr_assert_eq(
	    routing_fixture_init(&f, text, 0), ZOS_ROUTING_INVALID_ARGUMENT);
	cr_assert(strstr(f.error, ":253: more than 256 routes") != NULL, "%s",
	    f.error);
	free(text);
}

Test(routing, missing_file_is_not_found)
{
	struct zos_lock_domain domain;
	struct zos_routing    *r = NULL;
	char                   error[256];

	zos_lock_domain_init(&domain, true, NULL, NULL);
	cr_assert_eq(
	    zos_routing_create(&r, &domain, "/tmp/zos-no-such-routes-file", 0,
	        error, sizeof(error)),
	    ZOS_ROUTING_NOT_FOUND);
	cr_assert_null(r);
	cr_assert(strstr(error, "/tmp/zos-no-such-routes-file") != NULL);
	zos_routing_destroy(NULL);
}

Test(routing, metrics_are_recorded_exactly_and_sorted_by_model)
{
	struct routing_fixture    f;
	struct zos_model_metrics *m;
	size_t                    n;

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(n, 0);
	cr_assert_null(m);

	cr_assert_eq(zos_routing_record_outcome(f.r, "zeta", true, 10, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "alpha", false, 7, true),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "mid", true, 0, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "zeta", true, 20, true),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "zeta", false, 3, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "alpha", true, 8, false),
	    ZOS_ROUTING_OK);

	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(m[0].model, "alpha");
	cr_assert_str_eq(m[1].model, "mid");
	cr_assert_str_eq(m[2].model, "zeta");
	cr_assert_eq(m[0].success_count, 1);
	cr_assert_eq(m[0].failure_count, 1);
	cr_assert_eq(m[0].total_latency_ms, 15);
	cr_assert_eq(m[0].fallback_count, 1);
	cr_assert_float_eq(m[0].mean_latency_ms, 7.5, 1e-9);
	cr_assert_eq(m[1].success_count, 1);
	cr_assert_float_eq(m[1].mean_latency_ms, 0.0, 1e-9);
	cr_assert_eq(m[2].success_count, 2);
	cr_assert_eq(m[2].failure_count, 1);
	cr_assert_eq(m[2].total_latency_ms, 33);
	cr_assert_eq(m[2].fallback_count, 1);
	cr_assert_float_eq(m[2].mean_latency_ms, 11.0, 1e-9);
	free(m);
	routing_fixture_fini(&f);
}

Test(routing, latency_total_saturates_instead_of_wrapping)
{
	struct routing_fixture    f;
	struct zos_model_metrics *m;
	size_t                    n;

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	cr_assert_eq(
	    zos_routing_record_outcome(f.r, "m", true, UINT64_MAX - 1, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "m", true, 5, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(m[0].total_latency_ms, UINT64_MAX);
	free(m);
	routing_fixture_fini(&f);
}

Test(routing, model_names_are_bounded_and_not_empty)
{
	struct routing_fixture f;
	char                   name[ZOS_ROUTING_NAME_MAX + 2];

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	cr_assert_eq(zos_routing_record_outcome(f.r, name, true, 1, false),
	    ZOS_ROUTING_INVALID_ARGUMENT);
	name[ZOS_ROUTING_NAME_MAX] = '\0';
	cr_assert_eq(zos_routing_record_outcome(f.r, name, true, 1, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "", true, 1, false),
	    ZOS_ROUTING_INVALID_ARGUMENT);
	cr_assert_eq(zos_routing_record_outcome(f.r, NULL, true, 1, false),
	    ZOS_ROUTING_INVALID_ARGUMENT);
	routing_fixture_fini(&f);
}

Test(routing, models_beyond_the_bound_are_resource_exhausted)
{
	struct routing_fixture    f;
	struct zos_model_metrics *m;
	size_t                    n;
	char                      name[32];

	cr_assert_eq(routing_fixture_init(&f, NULL, 8), ZOS_ROUTING_OK);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "model-%d", 7 - i);
		cr_assert_eq(
		    zos_routing_record_outcome(f.r, name, true, 1, false),
		    ZOS_ROUTING_OK);
	}
	cr_assert_eq(
	    zos_routing_record_outcome(f.r, "model-8", true, 1, false),
	    ZOS_ROUTING_RESOURCE_EXHAUSTED);
	/* Known models still record. */
	cr_assert_eq(
	    zos_routing_record_outcome(f.r, "model-3", false, 1, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(n, 8);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "model-%d", i);
		cr_assert_str_eq(m[i].model, name);
	}
	cr_assert_eq(m[3].failure_count, 1);
	free(m);
	routing_fixture_fini(&f);
}

Test(routing, default_model_bound_is_256)
{
	struct routing_fixture f;
	char                   name[32];

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	for (int i = 0; i < ZOS_ROUTING_DEFAULT_MAX_MODELS; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		cr_assert_eq(
		    zos_routing_record_outcome(f.r, name, true, 1, false),
		    ZOS_ROUTING_OK);
	}
	cr_assert_eq(zos_routing_record_outcome(f.r, "extra", true, 1, false),
	    ZOS_ROUTING_RESOURCE_EXHAUSTED);
	routing_fixture_fini(&f);
}

Test(routing, create_rejects_a_model_bound_above_the_limit)
{
	struct routing_fixture f;

	cr_assert_eq(routing_fixture_init(
	                 &f, NULL, (size_t) ZOS_ROUTING_LIMIT_MAX_MODELS + 1),
	    ZOS_ROUTING_INVALID_ARGUMENT);
	cr_assert_null(f.r);
}

/* Concurrency: N threads record M outcomes each over a few models while
 * readers copy the metrics; the counts come out exact. */
enum { RT_THREADS = 16, RT_OUTCOMES = 5000, RT_MODELS = 5 };

struct rt_arg {
	struct zos_routing *r;
	int                 index;
	bool                failed;
};

static void *
rt_worker(void *p)
{
	struct rt_arg *a = p;
	char           name[32];

	for (int i = 0; i < RT_OUTCOMES; i++) {
		int model = (a->index + i) % RT_MODELS;
		snprintf(name, sizeof(name), "model-%d", model);
		if (zos_routing_record_outcome(a->r, name, i % 3 != 0,
		        (uint64_t) model + 1, i % 5 == 0) != ZOS_ROUTING_OK) {
			a->failed = true;
		}
		if (i % 500 == 0) {
			struct zos_model_metrics *m;
			size_t                    n;
			if (zos_routing_get_metrics(a->r, &m, &n) !=
			    ZOS_ROUTING_OK) {
				a->failed = true;
			}
			for (size_t j = 1; j < n; j++) {
				if (strcmp(m[j - 1].model, m[j].model) >= 0) {
					a->failed = true;
				}
			}
			free(m);
		}
	}
	if (zos_locks_held_mask() != 0) {
		a->failed = true;
	}
	return NULL;
}

Test(routing, concurrent_outcomes_are_all_counted)
{
	struct routing_fixture    f;
	struct rt_arg             args[RT_THREADS];
	pthread_t                 tid[RT_THREADS];
	struct zos_model_metrics *m;
	size_t                    n;
	uint64_t                  calls[RT_MODELS]     = { 0 };
	uint64_t                  successes[RT_MODELS] = { 0 };
	uint64_t                  fallbacks[RT_MODELS] = { 0 };

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	for (int t = 0; t < RT_THREADS; t++) {
		args[t] = (struct rt_arg) { .r = f.r, .index = t };
		cr_assert_eq(
		    pthread_create(&tid[t], NULL, rt_worker, &args[t]), 0);
		/* The expected counts, computed the same way. */
		for (int i = 0; i < RT_OUTCOMES; i++) {
			int model = (t + i) % RT_MODELS;
			calls[model]++;
			successes[model] += i % 3 != 0;
			fallbacks[model] += i % 5 == 0;
		}
	}
	for (int t = 0; t < RT_THREADS; t++) {
		cr_assert_eq(pthread_join(tid[t], NULL), 0);
		cr_assert_not(args[t].failed);
	}
	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(n, RT_MODELS);
	uint64_t total = 0;
	for (int k = 0; k < RT_MODELS; k++) {
		char name[32];
		snprintf(name, sizeof(name), "model-%d", k);
		cr_assert_str_eq(m[k].model, name);
		cr_assert_eq(m[k].success_count, successes[k]);
		cr_assert_eq(m[k].failure_count, calls[k] - successes[k]);
		cr_assert_eq(m[k].fallback_count, fallbacks[k]);
		cr_assert_eq(
		    m[k].total_latency_ms, calls[k] * (uint64_t) (k + 1));
		cr_assert_float_eq(
		    m[k].mean_latency_ms, (double) (k + 1), 1e-9);
		total += m[k].success_count + m[k].failure_count;
	}
	cr_assert_eq(total, (uint64_t) RT_THREADS * RT_OUTCOMES);
	free(m);
	routing_fixture_fini(&f);
}

/* Holding the cache lock (rank 4) while recording (rank 3) is an order
 * violation: the validator aborts. */
Test(routing, recording_while_holding_a_higher_rank_aborts, .signal = SIGABRT)
{
	struct routing_fixture f;
	struct zos_lock        cache;

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	cr_assert_eq(zos_lock_init(&cache, ZOS_RANK_RESPONSE_CACHE,
	                 "response_cache", &f.domain),
	    0);
	zos_lock_write(&cache);
	zos_routing_record_outcome(f.r, "m", true, 1, false);
	zos_unlock_write(&cache); /* not reached */
}

/* Reading a routes file while holding a lock is a blocking call under a
 * lock: the validator aborts. */
Test(routing, loading_a_file_while_holding_a_lock_aborts, .signal = SIGABRT)
{
	struct zos_lock_domain domain;
	struct zos_lock        skills;
	struct zos_routing    *r;

	zos_lock_domain_init(&domain, true, NULL, NULL);
	cr_assert_eq(
	    zos_lock_init(&skills, ZOS_RANK_SKILLS, "skills", &domain), 0);
	zos_lock_read(&skills);
	zos_routing_create(&r, &domain, "/dev/null", 0, NULL, 0);
	zos_unlock_read(&skills); /* not reached */
}

Test(routing, set_primary_replaces_a_route_or_adds_a_task)
{
	struct routing_fixture f;
	char                   long_name[ZOS_ROUTING_NAME_MAX + 2];

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_set_primary(f.r, "hint", "ipc:///tmp/m.sock",
	                 f.error, sizeof(f.error)),
	    ZOS_ROUTING_OK);
	assert_route(f.r, "hint", "ipc:///tmp/m.sock", "builtin:echo");
	/* A task the table did not have: the default's fallback backs it. */
	cr_assert_eq(zos_routing_set_primary(f.r, "translate",
	                 "tcp://127.0.0.1:7500", f.error, sizeof(f.error)),
	    ZOS_ROUTING_OK);
	assert_route(
	    f.r, "translate", "tcp://127.0.0.1:7500", "builtin:echo-small");
	cr_assert_str_eq(
	    zos_routing_route(f.r, "translate")->task_type, "translate");
	/* Everything else is as before, the default route included. */
	assert_route(
	    f.r, "unknown-task", "builtin:echo", "builtin:echo-small");
	assert_route(
	    f.r, "proof_feedback", "builtin:echo-large", "builtin:echo-small");
	cr_assert_eq(zos_routing_route_count(f.r), 5);

	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	cr_assert_eq(zos_routing_set_primary(
	                 f.r, "hint", long_name, f.error, sizeof(f.error)),
	    ZOS_ROUTING_INVALID_ARGUMENT);
	cr_assert_eq(
	    zos_routing_set_primary(f.r, "", "m", f.error, sizeof(f.error)),
	    ZOS_ROUTING_INVALID_ARGUMENT);
	routing_fixture_fini(&f);
}
