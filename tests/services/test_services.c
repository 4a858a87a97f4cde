/*
 * The zOS services over a real server, through the generated client:
 * every method and every error code the design names.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "services.h"
#include "state.h"
#include "zos/v1/zos.zrpc.h"

struct svc {
	struct zos_state    *state;
	struct zos_backends *backends;
	struct zos_services  services;
	zrpc_server         *server;
	zrpc_client         *client;
	unsigned             checks; /* thread checks the runtime made */
	char                 url[64];
};

static void
svc_check(void *arg, const char *where)
{
	struct svc *s = arg;

	zos_assert_no_locks_held(&s->state->locks, where);
	__atomic_fetch_add(&s->checks, 1, __ATOMIC_RELAXED);
}

/* svc_start as a node of CLUSTER (NULL: alone), its sessions made with
 * CLUSTER's node id. */
static void
svc_start_node(struct svc *s, const struct zos_state_config *given,
    const struct zos_cluster *cluster)
{
	struct zos_state_config config = { .abort_on_violation = true };
	zrpc_server_config      sc     = { .workers = 2 };
	char                    error[256], url[64];
	zrpc_status             st;
	static int              counter;

	memset(s, 0, sizeof(*s));
	if (given != NULL) {
		config                    = *given;
		config.abort_on_violation = true;
	}
	s->state = zos_state_create(&config, error, sizeof(error));
	cr_assert_not_null(s->state, "%s", error);
	sc.thread_check     = svc_check;
	sc.thread_check_arg = s;
	cr_assert_eq(zrpc_server_create(&s->server, &sc).code, ZRPC_OK);
	cr_assert_eq(zos_backends_create(&(struct zos_backends_config) { 0 },
	                 &s->backends, error, sizeof(error)),
	    0, "%s", error);
	s->services = (struct zos_services) {
		.state = s->state, .backends = s->backends, .cluster = cluster
	};
	if (cluster != NULL) {
		cr_assert_eq(zos_sessions_set_node(
		                 s->state->sessions, cluster->node_id),
		    ZOS_SESSION_OK);
	}
	st = zos_services_register(s->server, &s->services);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	snprintf(url, sizeof(url), "inproc://zos-svc-%d-%d", (int) getpid(),
	    counter++);
	cr_assert_eq(zrpc_server_listen(s->server, url).code, ZRPC_OK);
	cr_assert_eq(zrpc_server_start(s->server).code, ZRPC_OK);
	cr_assert_eq(zrpc_client_open(&s->client, url, NULL).code, ZRPC_OK);
	snprintf(s->url, sizeof(s->url), "%s", url);
}

static void
svc_start(struct svc *s, const struct zos_state_config *given)
{
	svc_start_node(s, given, NULL);
}

static void
svc_stop(struct svc *s)
{
	zrpc_client_close(s->client);
	zrpc_server_destroy(s->server);
	zos_backends_destroy(s->backends);
	zos_state_destroy(s->state);
}

static const zrpc_call_opts opts = { .timeout_ms = 5000 };

static const Zos__V1__Skill *
skill(const Zos__V1__SkillVector *v, const char *name)
{
	for (size_t i = 0; i < v->n_skills; i++) {
		if (strcmp(v->skills[i]->name, name) == 0) {
			return v->skills[i];
		}
	}
	return NULL;
}

/* Calls Skills/Update with one delta. */
static zrpc_status
update_one(struct svc *s, const char *name, double delta, uint64_t expected,
    Zos__V1__SkillVector **out)
{
	Zos__V1__UpdateSkillsRequest req =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry e =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__DELTAS_ENTRY__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry *entries[1] = { &e };

	e.key                = (char *) name;
	e.value              = delta;
	req.n_deltas         = 1;
	req.deltas           = entries;
	req.expected_version = expected;
	return zos_v1_skills_update(s->client, &req, out, &opts);
}

Test(services, skills_get_update_and_their_errors)
{
	struct svc                s;
	Zos__V1__GetSkillsRequest get = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	zrpc_status               st;

	svc_start(&s, NULL);
	st = zos_v1_skills_get(s.client, &get, &v, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(v->n_skills, 6);
	cr_assert_eq(v->version, 0);
	cr_assert_eq(skill(v, "induction")->level, 0.5);
	zos__v1__skill_vector__free_unpacked(v, NULL);

	st = update_one(&s, "induction", 0.75, 0, &v);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(v->version, 1);
	cr_assert_eq(skill(v, "induction")->level, 1.0, "clamped");
	cr_assert_eq(skill(v, "induction")->attempts, 1);
	zos__v1__skill_vector__free_unpacked(v, NULL);

	st = update_one(&s, "telepathy", 0.1, 0, &v);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(st.message, "telepathy") != NULL, "%s", st.message);
	st = update_one(&s, "cases", NAN, 0, &v);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	st = update_one(&s, "cases", INFINITY, 0, &v);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	st = update_one(&s, "cases", 0.1, 7, &v);
	cr_assert_eq(st.code, ZRPC_ABORTED, "%s", st.message);
	st = update_one(&s, "cases", 0.1, 1, &v);
	cr_assert_eq(st.code, ZRPC_OK, "expected version matches");
	cr_assert_eq(v->version, 2);
	zos__v1__skill_vector__free_unpacked(v, NULL);

	Zos__V1__ReloadSkillsRequest reload =
	    ZOS__V1__RELOAD_SKILLS_REQUEST__INIT;
	st = zos_v1_skills_reload(s.client, &reload, &v, &opts);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION, "no skills file");
	cr_assert(s.checks > 0, "the runtime checked for held locks");
	svc_stop(&s);
}

Test(services, skills_reload_rereads_the_file)
{
	char                         path[] = "/tmp/zos-svc-skills-XXXXXX";
	int                          fd     = mkstemp(path);
	struct zos_state_config      config = { .skills_file = path };
	struct svc                   s;
	Zos__V1__ReloadSkillsRequest reload =
	    ZOS__V1__RELOAD_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector *v = NULL;
	zrpc_status           st;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "induction 0.1\n", 14), 14);
	close(fd);
	svc_start(&s, &config);
	fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_eq(write(fd, "induction 0.2\ncases 0.3\n", 24), 24);
	close(fd);
	st = zos_v1_skills_reload(s.client, &reload, &v, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(v->n_skills, 2);
	cr_assert_eq(v->version, 1);
	cr_assert_eq(skill(v, "cases")->level, 0.3);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_eq(write(fd, "cases 7\n", 8), 8);
	close(fd);
	st = zos_v1_skills_reload(s.client, &reload, &v, &opts);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(st.message, "line 1") != NULL, "%s", st.message);
	svc_stop(&s);
	unlink(path);
}

static zrpc_status
transition(struct svc *s, const char *id, Zos__V1__ProofState to,
    uint64_t expected, Zos__V1__ProofSession **out)
{
	Zos__V1__TransitionRequest req = ZOS__V1__TRANSITION_REQUEST__INIT;

	req.id               = (char *) id;
	req.to_state         = to;
	req.expected_version = expected;
	return zos_v1_session_transition(s->client, &req, out, &opts);
}

Test(services, sessions_move_through_the_proof_state_machine)
{
	struct svc                   s;
	struct zos_state_config      config = { .max_sessions = 3 };
	Zos__V1__StartSessionRequest start =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *p = NULL, *q = NULL;
	zrpc_status            st;
	char                   id[64];

	svc_start(&s, &config);
	start.problem_id = "pythagoras";
	st               = zos_v1_session_start(s.client, &start, &p, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(p->state, ZOS__V1__PROOF_STATE__AWAITING_SOLUTION);
	cr_assert_str_eq(p->problem_id, "pythagoras");
	snprintf(id, sizeof(id), "%s", p->id);
	uint64_t v0 = p->version;
	zos__v1__proof_session__free_unpacked(p, NULL);

	st = transition(&s, id, ZOS__V1__PROOF_STATE__ANALYZING, v0, &p);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(p->version, v0 + 1);
	zos__v1__proof_session__free_unpacked(p, NULL);
	st = transition(&s, id, ZOS__V1__PROOF_STATE__SOLVED, 0, &p);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION, "ANALYZING -> SOLVED");
	st = transition(&s, id, ZOS__V1__PROOF_STATE__FEEDBACK_READY, v0, &p);
	cr_assert_eq(st.code, ZRPC_ABORTED, "stale version");
	st = transition(
	    &s, "0123456789abcdef", ZOS__V1__PROOF_STATE__ANALYZING, 0, &p);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND);

	Zos__V1__GetSessionRequest get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	get.id                         = id;
	st = zos_v1_session_get(s.client, &get, &q, &opts);
	cr_assert_eq(st.code, ZRPC_OK);
	cr_assert_eq(q->state, ZOS__V1__PROOF_STATE__ANALYZING);
	zos__v1__proof_session__free_unpacked(q, NULL);

	Zos__V1__ResetSessionRequest reset =
	    ZOS__V1__RESET_SESSION_REQUEST__INIT;
	reset.id = id;
	st       = zos_v1_session_reset(s.client, &reset, &q, &opts);
	cr_assert_eq(st.code, ZRPC_OK);
	cr_assert_eq(q->state, ZOS__V1__PROOF_STATE__AWAITING_SOLUTION);
	zos__v1__proof_session__free_unpacked(q, NULL);

	/* max_sessions = 3 */
	for (int i = 0; i < 2; i++) {
		st = zos_v1_session_start(s.client, &start, &p, &opts);
		cr_assert_eq(st.code, ZRPC_OK);
		zos__v1__proof_session__free_unpacked(p, NULL);
	}
	st = zos_v1_session_start(s.client, &start, &p, &opts);
	cr_assert_eq(st.code, ZRPC_RESOURCE_EXHAUSTED);

	/* Paging: 2 then 1, total 3, stable order. */
	Zos__V1__ListSessionsRequest list =
	    ZOS__V1__LIST_SESSIONS_REQUEST__INIT;
	Zos__V1__ListSessionsResponse *page = NULL;
	list.page_size                      = 2;
	st = zos_v1_session_list(s.client, &list, &page, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(page->n_sessions, 2);
	cr_assert_eq(page->total, 3);
	cr_assert_str_eq(page->sessions[0]->id, id, "creation order");
	char token[64];
	snprintf(token, sizeof(token), "%s", page->next_page_token);
	cr_assert_neq(token[0], '\0');
	zos__v1__list_sessions_response__free_unpacked(page, NULL);
	list.page_token = token;
	st              = zos_v1_session_list(s.client, &list, &page, &opts);
	cr_assert_eq(st.code, ZRPC_OK);
	cr_assert_eq(page->n_sessions, 1);
	cr_assert_str_eq(page->next_page_token, "");
	zos__v1__list_sessions_response__free_unpacked(page, NULL);
	list.page_token = "garbage";
	st              = zos_v1_session_list(s.client, &list, &page, &opts);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	svc_stop(&s);
}

Test(services, routing_routes_and_counts_outcomes)
{
	struct svc                    s;
	Zos__V1__RouteRequest         route = ZOS__V1__ROUTE_REQUEST__INIT;
	Zos__V1__RouteResponse       *r     = NULL;
	Zos__V1__RecordOutcomeRequest rec =
	    ZOS__V1__RECORD_OUTCOME_REQUEST__INIT;
	Zos__V1__RecordOutcomeResponse   *ack = NULL;
	Zos__V1__GetRoutingMetricsRequest get =
	    ZOS__V1__GET_ROUTING_METRICS_REQUEST__INIT;
	Zos__V1__RoutingMetrics *m = NULL;
	zrpc_status              st;

	svc_start(&s, NULL);
	route.task_type = "no-such-task";
	st              = zos_v1_routing_route(s.client, &route, &r, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_str_eq(r->primary_model, "builtin:echo", "default route");
	zos__v1__route_response__free_unpacked(r, NULL);

	rec.model = "builtin:echo-large";
	for (int i = 0; i < 5; i++) {
		rec.success    = i != 0;
		rec.latency_ms = 10;
		rec.fallback   = i == 4;
		st =
		    zos_v1_routing_record_outcome(s.client, &rec, &ack, &opts);
		cr_assert_eq(st.code, ZRPC_OK);
		zos__v1__record_outcome_response__free_unpacked(ack, NULL);
	}
	rec.model = "";
	st        = zos_v1_routing_record_outcome(s.client, &rec, &ack, &opts);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	/* The 1e12 ms that once turned off retries for a model. */
	rec.model      = "builtin:echo-large";
	rec.latency_ms = 1000000000000u;
	st = zos_v1_routing_record_outcome(s.client, &rec, &ack, &opts);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(st.message, "600000") != NULL, "%s", st.message);
	/* 256 junk names: each NOT_FOUND, none tracked. */
	rec.latency_ms = 1;
	for (int i = 0; i < 256; i++) {
		char name[32];
		snprintf(name, sizeof(name), "junk-%d", i);
		rec.model = name;
		st =
		    zos_v1_routing_record_outcome(s.client, &rec, &ack, &opts);
		cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", name);
	}
	st = zos_v1_routing_get_metrics(s.client, &get, &m, &opts);
	cr_assert_eq(st.code, ZRPC_OK);
	cr_assert_eq(m->n_models, 1);
	cr_assert_eq(m->models[0]->success_count, 4);
	cr_assert_eq(m->models[0]->failure_count, 1);
	cr_assert_eq(m->models[0]->total_latency_ms, 50);
	cr_assert_eq(m->models[0]->fallback_count, 1);
	cr_assert_eq(m->models[0]->mean_latency_ms, 10.0);
	zos__v1__routing_metrics__free_unpacked(m, NULL);
	svc_stop(&s);
}

static zrpc_status
store(struct svc *s, const char *model, const char *prompt, const char *text)
{
	Zos__V1__StoreRequest   req = ZOS__V1__STORE_REQUEST__INIT;
	Zos__V1__StoreResponse *ack = NULL;
	zrpc_status             st;

	req.model    = (char *) model;
	req.prompt   = (char *) prompt;
	req.response = (char *) text;
	st           = zos_v1_cache_store(s->client, &req, &ack, &opts);
	if (ack != NULL) {
		zos__v1__store_response__free_unpacked(ack, NULL);
	}
	return st;
}

/* Looks up; returns the response (static buffer) or NULL on a miss. */
static const char *
lookup(struct svc *s, const char *model, const char *prompt)
{
	static char              text[256];
	Zos__V1__LookupRequest   req = ZOS__V1__LOOKUP_REQUEST__INIT;
	Zos__V1__LookupResponse *r   = NULL;
	const char              *out = NULL;

	req.model  = (char *) model;
	req.prompt = (char *) prompt;
	cr_assert_eq(
	    zos_v1_cache_lookup(s->client, &req, &r, &opts).code, ZRPC_OK);
	if (r->hit) {
		snprintf(text, sizeof(text), "%s", r->response);
		out = text;
	}
	zos__v1__lookup_response__free_unpacked(r, NULL);
	return out;
}

Test(services, cache_lookup_store_stats_clear_and_eviction)
{
	struct svc                   s;
	struct zos_state_config      config = { .cache_capacity = 2 };
	Zos__V1__CacheStatsRequest   sreq = ZOS__V1__CACHE_STATS_REQUEST__INIT;
	Zos__V1__CacheStats         *stats = NULL;
	Zos__V1__ClearCacheRequest   creq = ZOS__V1__CLEAR_CACHE_REQUEST__INIT;
	Zos__V1__ClearCacheResponse *cleared = NULL;
	static char                  big[70000];

	svc_start(&s, &config);
	cr_assert_null(lookup(&s, "m", "p1"));
	cr_assert_eq(store(&s, "m", "p1", "one").code, ZRPC_OK);
	cr_assert_eq(store(&s, "m", "p2", "two").code, ZRPC_OK);
	cr_assert_str_eq(lookup(&s, "m", "p1"), "one");
	cr_assert_eq(store(&s, "m", "p3", "three").code, ZRPC_OK);
	cr_assert_null(lookup(&s, "m", "p2"), "least recently used went");
	cr_assert_str_eq(lookup(&s, "m", "p1"), "one");
	cr_assert_null(lookup(&s, "other", "p1"), "the model is in the key");
	memset(big, 'x', sizeof(big) - 1);
	cr_assert_eq(store(&s, "m", big, "x").code, ZRPC_INVALID_ARGUMENT);

	cr_assert_eq(
	    zos_v1_cache_stats(s.client, &sreq, &stats, &opts).code, ZRPC_OK);
	cr_assert_eq(stats->size, 2);
	cr_assert_eq(stats->capacity, 2);
	cr_assert_eq(stats->hits, 2);
	cr_assert_eq(stats->misses, 3);
	cr_assert_eq(stats->evictions, 1);
	zos__v1__cache_stats__free_unpacked(stats, NULL);

	cr_assert_eq(zos_v1_cache_clear(s.client, &creq, &cleared, &opts).code,
	    ZRPC_OK);
	zos__v1__clear_cache_response__free_unpacked(cleared, NULL);
	cr_assert_null(lookup(&s, "m", "p1"));
	svc_stop(&s);
}

/* Session/Start with TOKEN (NULL: none); returns the status. */
static zrpc_status
start_as(struct svc *s, const char *token)
{
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *out = NULL;
	zrpc_call_opts         o   = { .timeout_ms = 5000, .token = token };
	zrpc_status            st;

	req.problem_id = "p";
	st             = zos_v1_session_start(s->client, &req, &out, &o);
	if (out != NULL) {
		cr_assert_eq(strlen(out->id), 32, "%s", out->id);
		zos__v1__proof_session__free_unpacked(out, NULL);
	}
	return st;
}

Test(services, a_token_holds_at_most_its_cap_then_the_table_is_full)
{
	struct svc              s;
	struct zos_state_config config = {
		.max_sessions           = 7,
		.max_sessions_per_owner = 3,
	};
	zrpc_status st;

	svc_start(&s, &config);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(start_as(&s, "alpha").code, ZRPC_OK);
	}
	st = start_as(&s, "alpha");
	cr_assert_eq(st.code, ZRPC_RESOURCE_EXHAUSTED);
	cr_assert(strstr(st.message, "--max-sessions-per-token") != NULL, "%s",
	    st.message);
	cr_assert(strstr(st.message, "3") != NULL, "%s", st.message);
	/* Another token, and the anonymous callers, have their own. */
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(start_as(&s, "beta").code, ZRPC_OK);
	}
	cr_assert_eq(start_as(&s, NULL).code, ZRPC_OK);
	/* 7 held: now the table is what is full. */
	st = start_as(&s, "gamma");
	cr_assert_eq(st.code, ZRPC_RESOURCE_EXHAUSTED);
	cr_assert(
	    strstr(st.message, "table is full (--max-sessions 7)") != NULL,
	    "%s", st.message);
	svc_stop(&s);
}

/* ---- several nodes (cluster.h) ---- */

Test(services, a_session_of_another_node_is_failed_precondition_naming_it)
{
	const struct zos_peer    peers[] = { { 1, "tcp://127.0.0.1:7001" } };
	const struct zos_cluster two     = {
		    .node_id = 2, .peers = peers, .n_peers = 1
	};
	struct svc                   s;
	Zos__V1__StartSessionRequest start =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__GetSessionRequest   get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__TransitionRequest   tr  = ZOS__V1__TRANSITION_REQUEST__INIT;
	Zos__V1__ResetSessionRequest reset =
	    ZOS__V1__RESET_SESSION_REQUEST__INIT;
	Zos__V1__CompleteRequest   complete = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__ProofSession     *sess = NULL, *got = NULL;
	Zos__V1__CompleteResponse *answer = NULL;
	zrpc_status                st;
	char                       other[64], unknown[64];

	svc_start_node(&s, NULL, &two);
	start.problem_id = "p";
	st = zos_v1_session_start(s.client, &start, &sess, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(strncmp(sess->id, "2-", 2), 0, "%s", sess->id);
	/* Its own session: served. */
	get.id = sess->id;
	st     = zos_v1_session_get(s.client, &get, &got, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	zos__v1__proof_session__free_unpacked(got, NULL);

	/* Node 1's session (a peer with a URL), node 9's (none known). */
	snprintf(other, sizeof(other), "1-%s", sess->id + 2);
	snprintf(unknown, sizeof(unknown), "9-%s", sess->id + 2);
	get.id = other;
	st     = zos_v1_session_get(s.client, &get, &got, &opts);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION);
	cr_assert_not_null(strstr(st.message,
	                       "lives on node 1 at "
	                       "tcp://127.0.0.1:7001"),
	    "%s", st.message);
	cr_assert_not_null(strstr(st.message, other), "%s", st.message);
	tr.id       = unknown;
	tr.to_state = ZOS__V1__PROOF_STATE__ANALYZING;
	st          = zos_v1_session_transition(s.client, &tr, &got, &opts);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION);
	cr_assert_not_null(
	    strstr(st.message, "lives on node 9"), "%s", st.message);
	cr_assert_null(strstr(st.message, " at "), "%s", st.message);
	reset.id = other;
	st       = zos_v1_session_reset(s.client, &reset, &got, &opts);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION);
	complete.session_id = other;
	complete.prompt     = "2+2";
	st = zos_v1_assistant_complete(s.client, &complete, &answer, &opts);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION);
	cr_assert_not_null(strstr(st.message, "node 1"), "%s", st.message);

	/* An old-shape id names no node: the table answers. */
	get.id = "0123456789abcdef0123456789abcdef";
	st     = zos_v1_session_get(s.client, &get, &got, &opts);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND);
	zos__v1__proof_session__free_unpacked(sess, NULL);
	svc_stop(&s);
}

Test(services, skills_calls_are_forwarded_to_the_skills_home)
{
	struct svc                   home, other;
	struct zos_cluster           cluster = { .node_id = 2 };
	zrpc_client                 *to_home = NULL;
	Zos__V1__GetSkillsRequest    get = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__ReloadSkillsRequest reload =
	    ZOS__V1__RELOAD_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector *v = NULL, *w = NULL;
	zrpc_status           st;

	svc_start(&home, NULL);
	cr_assert_eq(zrpc_client_open(&to_home, home.url,
	                 &(zrpc_client_opts) { .connect_timeout_ms = 300 })
	                 .code,
	    ZRPC_OK);
	cluster.skills_home     = to_home;
	cluster.skills_home_url = home.url;
	svc_start_node(&other, NULL, &cluster);

	/* An update through the other node lands on the home. */
	st = update_one(&other, "induction", 0.25, 0, &v);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(v->version, 1);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	st = zos_v1_skills_get(home.client, &get, &v, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(v->version, 1);
	cr_assert_float_eq(skill(v, "induction")->level, 0.75, 1e-9);
	st = zos_v1_skills_get(other.client, &get, &w, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(w->version, v->version);
	cr_assert_eq(w->n_skills, v->n_skills);
	cr_assert_float_eq(skill(w, "induction")->level, 0.75, 1e-9);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	zos__v1__skill_vector__free_unpacked(w, NULL);
	/* The home's errors come back as they are. */
	st = update_one(&other, "induction", 0.1, 99, &v);
	cr_assert_eq(st.code, ZRPC_ABORTED, "%s", st.message);
	st = zos_v1_skills_reload(other.client, &reload, &v, &opts);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION, "%s", st.message);
	cr_assert_not_null(strstr(st.message, "--skills-file"));

	/* The home gone: UNAVAILABLE naming it, within the deadline. */
	zrpc_client_close(home.client);
	home.client = NULL;
	zrpc_server_destroy(home.server);
	home.server = NULL;
	st          = zos_v1_skills_get(
	             other.client, &get, &v, &(zrpc_call_opts) { .timeout_ms = 3000 });
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%d %s", st.code, st.message);
	cr_assert_not_null(strstr(st.message, home.url), "%s", st.message);
	svc_stop(&other);
	zrpc_client_close(to_home);
	svc_stop(&home);
}

Test(services, skills_home_flags_in_a_circle_end_in_failed_precondition)
{
	struct svc                a, b;
	struct zos_cluster        ca = { .node_id = 1 }, cb = { .node_id = 2 };
	zrpc_client              *to_a = NULL, *to_b = NULL;
	Zos__V1__GetSkillsRequest get = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	zrpc_status               st;

	/* Each names the other as the home (set before any call). */
	svc_start_node(&a, NULL, &ca);
	svc_start_node(&b, NULL, &cb);
	cr_assert_eq(zrpc_client_open(&to_a, a.url, NULL).code, ZRPC_OK);
	cr_assert_eq(zrpc_client_open(&to_b, b.url, NULL).code, ZRPC_OK);
	ca.skills_home     = to_b;
	ca.skills_home_url = b.url;
	cb.skills_home     = to_a;
	cb.skills_home_url = a.url;
	st                 = zos_v1_skills_get(a.client, &get, &v, &opts);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION, "%s", st.message);
	cr_assert_not_null(strstr(st.message, "not the skills home either"),
	    "%s", st.message);
	svc_stop(&a);
	svc_stop(&b);
	zrpc_client_close(to_a);
	zrpc_client_close(to_b);
}
