/*
 * Tests for model routing (zos/state/routing.c).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
assert_route(struct zos_routing *r, const char *task, const char *primary,
    const char *fallback)
{
	struct zos_route route;

	zos_routing_route(r, task, &route);
	cr_assert_str_eq(route.primary_model, primary, "task %s", task);
	cr_assert_str_eq(route.fallback_model, fallback, "task %s", task);
}

/* The task type of TASK's route (a static copy). */
static const char *
route_task(struct zos_routing *r, const char *task)
{
	static struct zos_route route;

	zos_routing_route(r, task, &route);
	return route.task_type;
}

/* A routes file whose routes name every model of the tests below:
 * "zeta", "alpha", "mid", "m", "model-0" to "model-8". */
#define TEST_MODELS            \
	"t1 zeta alpha\n"      \
	"t2 mid m\n"           \
	"t3 model-0 model-1\n" \
	"t4 model-2 model-3\n" \
	"t5 model-4 model-5\n" \
	"t6 model-6 model-7\n" \
	"t7 model-8 model-8\n"

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
		struct zos_route a, b;
		cr_assert(zos_routing_route_at(f.r, i - 1, &a));
		cr_assert(zos_routing_route_at(f.r, i, &b));
		cr_assert_lt(strcmp(a.task_type, b.task_type), 0);
	}
	struct zos_route none;
	cr_assert_not(zos_routing_route_at(f.r, 4, &none));
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
	cr_assert_str_eq(
	    route_task(f.r, "no_such_task"), ZOS_ROUTING_DEFAULT_TASK);
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

	cr_assert_eq(routing_fixture_init(&f, TEST_MODELS, 0), ZOS_ROUTING_OK);
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

Test(routing, a_latency_above_ten_minutes_is_invalid_and_not_recorded)
{
	struct routing_fixture    f;
	struct zos_model_metrics *m;
	size_t                    n;

	cr_assert_eq(routing_fixture_init(&f, TEST_MODELS, 0), ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(
	                 f.r, "m", true, ZOS_ROUTING_LATENCY_MAX_MS, false),
	    ZOS_ROUTING_OK);
	const uint64_t bad[] = { ZOS_ROUTING_LATENCY_MAX_MS + 1,
		1000000000000u, UINT64_MAX, (uint64_t) -1 /* a negative */ };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(
		    zos_routing_record_outcome(f.r, "m", true, bad[i], false),
		    ZOS_ROUTING_INVALID_ARGUMENT, "%llu",
		    (unsigned long long) bad[i]);
	}
	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(m[0].success_count, 1);
	cr_assert_eq(m[0].total_latency_ms, ZOS_ROUTING_LATENCY_MAX_MS);
	free(m);
	routing_fixture_fini(&f);
}

Test(routing, junk_model_names_are_not_found_and_never_tracked)
{
	struct routing_fixture    f;
	struct zos_model_metrics *m;
	size_t                    n;
	char                      name[32];

	cr_assert_eq(routing_fixture_init(&f, NULL, 0), ZOS_ROUTING_OK);
	for (int i = 0; i < 256; i++) {
		snprintf(name, sizeof(name), "junk-%d", i);
		cr_assert_eq(
		    zos_routing_record_outcome(f.r, name, true, 1, false),
		    ZOS_ROUTING_NOT_FOUND);
	}
	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(n, 0);
	/* The table's own models are still recorded. */
	cr_assert_eq(zos_routing_record_outcome(
	                 f.r, "builtin:echo-small", true, 1, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(n, 1);
	free(m);
	routing_fixture_fini(&f);
}

Test(routing, model_names_are_bounded_and_not_empty)
{
	struct routing_fixture f;
	char                   name[ZOS_ROUTING_NAME_MAX + 2];

	char text[2 * ZOS_ROUTING_NAME_MAX + 16];

	memset(name, 'n', sizeof(name) - 1);
	name[ZOS_ROUTING_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), "t %s m\n", name);
	cr_assert_eq(routing_fixture_init(&f, text, 0), ZOS_ROUTING_OK);
	name[ZOS_ROUTING_NAME_MAX] = 'n';
	name[sizeof(name) - 1]     = '\0';
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

	cr_assert_eq(routing_fixture_init(&f, TEST_MODELS, 8), ZOS_ROUTING_OK);
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

Test(routing, the_default_model_bound_holds_every_model_of_a_full_table)
{
	struct routing_fixture f;
	char                  *text = malloc(ZOS_ROUTING_MAX_ROUTES * 40);
	size_t                 used = 0;
	char                   name[32];

	cr_assert_not_null(text);
	/* Every route, the built-in ones too, with two models of its own. */
	const char *builtins[] = { "proof_feedback", "hint", "grading",
		"default" };
	for (int i = 0; i < ZOS_ROUTING_MAX_ROUTES; i++) {
		if (i < 4) {
			used += (size_t) sprintf(
			    text + used, "%s p%d f%d\n", builtins[i], i, i);
		} else {
			used += (size_t) sprintf(
			    text + used, "t%d p%d f%d\n", i, i, i);
		}
	}
	cr_assert_eq(
	    routing_fixture_init(&f, text, 0), ZOS_ROUTING_OK, "%s", f.error);
	free(text);
	for (int i = 0; i < ZOS_ROUTING_MAX_ROUTES; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		cr_assert_eq(
		    zos_routing_record_outcome(f.r, name, true, 1, false),
		    ZOS_ROUTING_OK);
		snprintf(name, sizeof(name), "f%d", i);
		cr_assert_eq(
		    zos_routing_record_outcome(f.r, name, true, 1, false),
		    ZOS_ROUTING_OK);
	}
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

	cr_assert_eq(routing_fixture_init(&f, TEST_MODELS, 0), ZOS_ROUTING_OK);
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

	cr_assert_eq(routing_fixture_init(&f, TEST_MODELS, 0), ZOS_ROUTING_OK);
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
	cr_assert_str_eq(route_task(f.r, "translate"), "translate");
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

/* Replaces the file at F->path with TEXT (same name). */
static void
rewrite_routes(struct routing_fixture *f, const char *text)
{
	FILE *file = fopen(f->path, "w");

	cr_assert_not_null(file);
	cr_assert_eq(fputs(text, file) >= 0, true);
	cr_assert_eq(fclose(file), 0);
}

Test(routing, reload_swaps_the_table_keeps_overrides_and_prunes_metrics)
{
	struct routing_fixture    f;
	struct zos_model_metrics *m;
	size_t                    n;

	memset(&f, 0, sizeof(f));
	zos_lock_domain_init(&f.domain, true, NULL, NULL);
	write_routes(&f, "hint a1 a2\n");
	cr_assert_eq(zos_routing_create(
	                 &f.r, &f.domain, f.path, 0, f.error, sizeof(f.error)),
	    ZOS_ROUTING_OK, "%s", f.error);
	cr_assert_str_eq(zos_routing_path(f.r), f.path);
	cr_assert_eq(zos_routing_set_primary(f.r, "grading", "tcp://x:1",
	                 f.error, sizeof(f.error)),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "a1", true, 5, false),
	    ZOS_ROUTING_OK);
	cr_assert_eq(zos_routing_record_outcome(f.r, "a2", true, 5, false),
	    ZOS_ROUTING_OK);

	rewrite_routes(&f, "hint a1 b2\nsummary s1 s2\n");
	cr_assert_eq(zos_routing_reload(f.r, f.error, sizeof(f.error)),
	    ZOS_ROUTING_OK, "%s", f.error);
	assert_route(f.r, "hint", "a1", "b2");
	assert_route(f.r, "summary", "s1", "s2");
	assert_route(f.r, "grading", "tcp://x:1", "builtin:echo");
	/* a2 left the table: its metrics went, and it is NOT_FOUND now. */
	cr_assert_eq(zos_routing_get_metrics(f.r, &m, &n), ZOS_ROUTING_OK);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(m[0].model, "a1");
	cr_assert_eq(m[0].success_count, 1);
	free(m);
	cr_assert_eq(zos_routing_record_outcome(f.r, "a2", true, 5, false),
	    ZOS_ROUTING_NOT_FOUND);
	cr_assert_eq(zos_routing_record_outcome(f.r, "s2", true, 5, false),
	    ZOS_ROUTING_OK);

	/* A bad file keeps the table that works. */
	rewrite_routes(&f, "hint only-two\n");
	cr_assert_eq(zos_routing_reload(f.r, f.error, sizeof(f.error)),
	    ZOS_ROUTING_INVALID_ARGUMENT);
	cr_assert(strstr(f.error, ":1:") != NULL, "%s", f.error);
	assert_route(f.r, "hint", "a1", "b2");
	unlink(f.path);
	cr_assert_eq(zos_routing_reload(f.r, f.error, sizeof(f.error)),
	    ZOS_ROUTING_NOT_FOUND);
	assert_route(f.r, "summary", "s1", "s2");
	routing_fixture_fini(&f);
}

/* Readers route and record while another thread reloads: every route
 * read is one of the two tables whole, never a mix. */
struct reload_arg {
	struct zos_routing *r;
	atomic_bool         stop;
	bool                failed;
};

static void *
reload_reader(void *p)
{
	struct reload_arg *a = p;
	struct zos_route   route;

	for (int i = 0; i < 200000 && !atomic_load(&a->stop); i++) {
		zos_routing_route(a->r, "hint", &route);
		if (!((strcmp(route.primary_model, "x1") == 0 &&
		          strcmp(route.fallback_model, "x2") == 0) ||
		        (strcmp(route.primary_model, "y1") == 0 &&
		            strcmp(route.fallback_model, "y2") == 0))) {
			a->failed = true;
		}
		zos_routing_record_outcome(a->r, route.primary_model, true, 1,
		    false); /* NOT_FOUND when a reload came between */
	}
	return NULL;
}

Test(routing, reloads_under_concurrent_readers_are_atomic)
{
	struct routing_fixture f;
	struct reload_arg      a = { 0 };
	pthread_t              tid[2];

	cr_assert_eq(routing_fixture_init(&f, "hint x1 x2\n", 0),
	    ZOS_ROUTING_OK, "%s", f.error);
	write_routes(&f, "hint x1 x2\n");
	zos_routing_destroy(f.r);
	cr_assert_eq(zos_routing_create(
	                 &f.r, &f.domain, f.path, 0, f.error, sizeof(f.error)),
	    ZOS_ROUTING_OK);
	a.r = f.r;
	for (int t = 0; t < 2; t++) {
		cr_assert_eq(
		    pthread_create(&tid[t], NULL, reload_reader, &a), 0);
	}
	for (int i = 0; i < 200; i++) {
		rewrite_routes(
		    &f, i % 2 == 0 ? "hint y1 y2\n" : "hint x1 x2\n");
		cr_assert_eq(zos_routing_reload(f.r, f.error, sizeof(f.error)),
		    ZOS_ROUTING_OK, "%s", f.error);
	}
	atomic_store(&a.stop, true);
	for (int t = 0; t < 2; t++) {
		cr_assert_eq(pthread_join(tid[t], NULL), 0);
	}
	cr_assert_not(a.failed);
	unlink(f.path);
	routing_fixture_fini(&f);
}
