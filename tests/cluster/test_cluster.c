/*
 * Several zosd nodes as programs (issue 14, sessions sharded by id): node
 * ids in session ids and in the data directory, the wrong node naming the
 * right one, the skill vector forwarded to its home, and the zos client
 * routing each session's calls to its node while another node is down.
 *
 * Every node listens on an ipc socket in the test's directory, so that a
 * node restarted comes back at the same URL, and its peers' URLs are
 * known before any starts. Every zosd is a child of the test, stopped by
 * it (and, after a failed assertion, by the suite's .fini).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "proc.h"
#include "run_tool.h"
#include "tmpdir.h"
#include "zos/v1/zos.zrpc.h"
#include "zos_client.h"
#include "zrpc/client.h"
#include "zrpc/v1/health.zrpc.h"

#define NODES_MAX CLUSTER_NODES_MAX

static const zrpc_call_opts opts = { .timeout_ms = 5000 };

/* The node a server says it is (x-zrpc-node of Health/Check). */
static unsigned
health_node(zrpc_client *client)
{
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	struct zrpc_metadata          *md    = NULL;
	zrpc_call_opts o = { .timeout_ms = 5000, .reply_metadata = &md };
	const char    *node;
	unsigned       v;

	cr_assert_eq(
	    zrpc_v1_health_check(client, &req, &reply, &o).code, ZRPC_OK);
	node = zrpc_metadata_get(md, "x-zrpc-node");
	cr_assert_not_null(node);
	v = (unsigned) atoi(node);
	zrpc_metadata_free(md);
	zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	return v;
}

TestSuite(cluster, .fini = proc_kill_left, .timeout = 120);

Test(cluster, ids_carry_the_node_id_and_the_wrong_node_names_the_right_one)
{
	struct cluster             c;
	zrpc_client               *one, *two;
	Zos__V1__GetSessionRequest get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession     *s   = NULL;
	char                       id1[64], id2[64], want[256];
	zrpc_status                st;

	cluster_start(&c, 2, NULL);
	one = cluster_client_of(c.url[0]);
	two = cluster_client_of(c.url[1]);
	cluster_start_session(one, "p", id1);
	cluster_start_session(two, "p", id2);
	cr_assert_eq(strncmp(id1, "1-", 2), 0, "%s", id1);
	cr_assert_eq(strncmp(id2, "2-", 2), 0, "%s", id2);
	cr_assert_eq(strlen(id1), 2 + 32);

	/* Node 2 asked for node 1's session: names node 1 and its URL. */
	get.id = id1;
	st     = zos_v1_session_get(two, &get, &s, &opts);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION, "%s", st.message);
	snprintf(want, sizeof(want), "session %s lives on node 1 at %s", id1,
	    c.url[0]);
	cr_assert_str_eq(st.message, want);
	/* And the right node serves it. */
	st = zos_v1_session_get(one, &get, &s, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	zos__v1__proof_session__free_unpacked(s, NULL);
	cr_assert_eq(health_node(one), 1);
	cr_assert_eq(health_node(two), 2);

	zrpc_client_close(one);
	zrpc_client_close(two);
	cluster_stop(&c);
}

Test(cluster, the_node_id_is_kept_in_the_data_directory_and_a_mismatch_refused)
{
	struct cluster c;
	zrpc_client   *client;
	char           id[64], path[192], text[16] = "";
	FILE          *f;
	const char    *other[] = { "--node-id", "9", NULL };

	cluster_init(&c, 1, NULL);
	/* First run as node 5... */
	const char *five[] = { "--node-id", "5", NULL };
	cluster_start_node(&c, 0, false, five);
	snprintf(path, sizeof(path), "%s/node-id", c.data[0]);
	cr_assert_not_null(f = fopen(path, "r"));
	cr_assert_not_null(fgets(text, sizeof(text), f));
	fclose(f);
	cr_assert_str_eq(text, "5\n");
	client = cluster_client_of(c.url[0]);
	cluster_start_session(client, "p", id);
	cr_assert_eq(strncmp(id, "5-", 2), 0, "%s", id);
	zrpc_client_close(client);
	cluster_stop_node(&c, 0);

	/* ...then without the flag: still node 5. */
	cluster_start_node(&c, 0, false, NULL);
	client = cluster_client_of(c.url[0]);
	cr_assert_eq(health_node(client), 5);
	cluster_start_session(client, "q", id);
	cr_assert_eq(strncmp(id, "5-", 2), 0, "%s", id);
	zrpc_client_close(client);
	cluster_stop_node(&c, 0);

	/* Another id for that directory: refused, exit 1, saying why. */
	char *argv[] = { (char *) env_path("ZOSD"), "--data-dir", c.data[0],
		"--listen", c.url[0], "--metrics-listen", "off",
		"--log-format", "text", (char *) other[0], (char *) other[1],
		NULL };
	proc_start(&c.proc[0], argv);
	cr_assert_eq(proc_wait(&c.proc[0]), 1, "%s", c.proc[0].text);
	cr_assert_not_null(
	    strstr(c.proc[0].text, "--node-id 9, but the data directory"),
	    "%s", c.proc[0].text);
	cr_assert_not_null(
	    strstr(c.proc[0].text, "belongs to node 5"), "%s", c.proc[0].text);
	cluster_stop(&c);
}

Test(cluster, skills_are_forwarded_to_the_home_and_read_alike_everywhere)
{
	struct cluster               c;
	zrpc_client                 *client[NODES_MAX];
	Zos__V1__UpdateSkillsRequest up = ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry e =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__DELTAS_ENTRY__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry *entries[1] = { &e };
	Zos__V1__GetSkillsRequest get = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v = NULL, *r[NODES_MAX] = { NULL };
	zrpc_status               st;

	cluster_start(&c, 3, NULL);
	for (size_t i = 0; i < 3; i++) {
		client[i] = cluster_client_of(c.url[i]);
	}
	/* An update on node 2 ... */
	e.key       = "induction";
	e.value     = 0.125;
	up.n_deltas = 1;
	up.deltas   = entries;
	st          = zos_v1_skills_update(client[1], &up, &v, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	/* ... is what nodes 1 and 3 read, and 2 itself. */
	for (size_t i = 0; i < 3; i++) {
		st = zos_v1_skills_get(client[i], &get, &r[i], &opts);
		cr_assert_eq(
		    st.code, ZRPC_OK, "node %zu: %s", i + 1, st.message);
		cr_assert_eq(r[i]->version, v->version, "node %zu", i + 1);
		cr_assert_eq(r[i]->n_skills, v->n_skills);
		for (size_t k = 0; k < v->n_skills; k++) {
			cr_assert_str_eq(
			    r[i]->skills[k]->name, v->skills[k]->name);
			cr_assert_float_eq(r[i]->skills[k]->level,
			    v->skills[k]->level, 1e-12);
		}
		zos__v1__skill_vector__free_unpacked(r[i], NULL);
	}
	zos__v1__skill_vector__free_unpacked(v, NULL);

	/* The home down: the others answer UNAVAILABLE, naming it. */
	cluster_stop_node(&c, 0);
	st = zos_v1_skills_get(client[2], &get, &v, &opts);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
	cr_assert_not_null(strstr(st.message, c.url[0]), "%s", st.message);
	/* Back: served again. */
	cluster_start_node(&c, 0, true, NULL);
	st = zos_v1_skills_get(client[2], &get, &v, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	zos__v1__skill_vector__free_unpacked(v, NULL);
	for (size_t i = 0; i < 3; i++) {
		zrpc_client_close(client[i]);
	}
	cluster_stop(&c);
}

Test(cluster, the_zos_client_routes_sessions_and_a_node_down_is_only_its_own)
{
	struct cluster               c;
	struct zos_client           *zc;
	const char                  *urls[NODES_MAX];
	char                         ids[NODES_MAX][64];
	zrpc_client                 *direct[NODES_MAX];
	Zos__V1__GetSessionRequest   get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__TransitionRequest   tr  = ZOS__V1__TRANSITION_REQUEST__INIT;
	Zos__V1__StartSessionRequest start =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__CompleteRequest   complete = ZOS__V1__COMPLETE_REQUEST__INIT;
	Zos__V1__CompleteResponse *answer   = NULL;
	Zos__V1__ProofSession     *s        = NULL;
	zrpc_status                st;

	cluster_start(&c, 3, NULL);
	for (size_t i = 0; i < 3; i++) {
		urls[i]   = c.url[i];
		direct[i] = cluster_client_of(c.url[i]);
		cluster_start_session(direct[i], "p", ids[i]);
		zrpc_client_close(direct[i]);
	}
	cr_assert_eq(zos_client_open(&zc, urls, 3,
	                 &(zrpc_client_opts) { .connect_timeout_ms = 1000 })
	                 .code,
	    ZRPC_OK);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(zos_client_server_node(zc, i), i + 1);
	}
	/* Every session's calls reach its node, many times over (a call
	 * sent anywhere would hit a wrong node two times in three). */
	for (int round = 0; round < 10; round++) {
		for (size_t i = 0; i < 3; i++) {
			get.id = ids[i];
			st     = zos_client_session_get(zc, &get, &s, &opts);
			cr_assert_eq(
			    st.code, ZRPC_OK, "%s: %s", ids[i], st.message);
			cr_assert_str_eq(s->id, ids[i]);
			zos__v1__proof_session__free_unpacked(s, NULL);
		}
	}
	tr.id       = ids[1];
	tr.to_state = ZOS__V1__PROOF_STATE__ANALYZING;
	st          = zos_client_session_transition(zc, &tr, &s, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	zos__v1__proof_session__free_unpacked(s, NULL);
	complete.session_id = ids[2];
	complete.prompt     = "is 7 prime?";
	st = zos_client_assistant_complete(zc, &complete, &answer, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(
	    answer->session->state, ZOS__V1__PROOF_STATE__FEEDBACK_READY);
	zos__v1__complete_response__free_unpacked(answer, NULL);

	/* Node 2 down: its session UNAVAILABLE, the others fine, and new
	 * sessions start elsewhere. */
	cluster_stop_node(&c, 1);
	get.id = ids[1];
	st     = zos_client_session_get(zc, &get, &s, &opts);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
	for (int round = 0; round < 5; round++) {
		get.id = ids[0];
		st     = zos_client_session_get(zc, &get, &s, &opts);
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
		zos__v1__proof_session__free_unpacked(s, NULL);
		get.id = ids[2];
		st     = zos_client_session_get(zc, &get, &s, &opts);
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
		zos__v1__proof_session__free_unpacked(s, NULL);
		start.problem_id = "while 2 is down";
		st = zos_client_session_start(zc, &start, &s, &opts);
		cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
		cr_assert_neq(strncmp(s->id, "2-", 2), 0, "%s", s->id);
		zos__v1__proof_session__free_unpacked(s, NULL);
	}

	/* Back, with its session as it was (durable). */
	cluster_start_node(&c, 1, true, NULL);
	get.id = ids[1];
	st     = zos_client_session_get(zc, &get, &s, &opts);
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_eq(s->state, ZOS__V1__PROOF_STATE__ANALYZING);
	zos__v1__proof_session__free_unpacked(s, NULL);

	zos_client_close(zc);
	cluster_stop(&c);
}

Test(cluster, a_node_down_from_the_start_is_learned_when_it_comes_up)
{
	struct cluster             c;
	struct zos_client         *zc;
	const char                *urls[2];
	char                       id[64];
	zrpc_client               *direct;
	Zos__V1__GetSessionRequest get = ZOS__V1__GET_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession     *s   = NULL;
	zrpc_status                st;

	cluster_start(&c, 2, NULL);
	direct = cluster_client_of(c.url[1]);
	cluster_start_session(direct, "p", id);
	zrpc_client_close(direct);
	cluster_stop_node(&c, 1);
	urls[0] = c.url[0];
	urls[1] = c.url[1];
	cr_assert_eq(zos_client_open(&zc, urls, 2,
	                 &(zrpc_client_opts) { .connect_timeout_ms = 500 })
	                 .code,
	    ZRPC_OK);
	cr_assert_eq(zos_client_server_node(zc, 0), 1);
	cr_assert_eq(zos_client_server_node(zc, 1), 0, "down: not known");
	get.id = id;
	st     = zos_client_session_get(zc, &get, &s, &opts);
	cr_assert_eq(st.code, ZRPC_UNAVAILABLE, "%s", st.message);
	cr_assert_not_null(strstr(st.message, "node 2"), "%s", st.message);

	cluster_start_node(&c, 1, true, NULL);
	/* The zrpc client finds the server again in the background; a
	 * bounded number of tries (each bounded by the probe's timeout). */
	for (int i = 0; i < 50; i++) {
		st = zos_client_session_get(zc, &get, &s, &opts);
		if (st.code == ZRPC_OK) {
			break;
		}
	}
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	cr_assert_str_eq(s->id, id);
	zos__v1__proof_session__free_unpacked(s, NULL);
	cr_assert_eq(zos_client_server_node(zc, 1), 2);
	zos_client_close(zc);
	cluster_stop(&c);
}

Test(cluster, zosctl_with_several_urls_sends_session_commands_to_their_node)
{
	struct cluster c;
	zrpc_client   *direct;
	char           ids[2][64], urls[300], needle[160];
	struct run     r;

	cluster_start(&c, 2, NULL);
	for (size_t i = 0; i < 2; i++) {
		direct = cluster_client_of(c.url[i]);
		cluster_start_session(direct, "p", ids[i]);
		zrpc_client_close(direct);
	}
	snprintf(urls, sizeof(urls), "%s,%s", c.url[0], c.url[1]);
	/* Each several times: a command sent anywhere would miss. */
	for (int round = 0; round < 4; round++) {
		for (size_t i = 0; i < 2; i++) {
			run_tool(&r, env_path("ZOSCTL"), NULL, "--url", urls,
			    "session", "get", ids[i], NULL);
			cr_assert_eq(r.status, 0, "%s", r.err);
			snprintf(
			    needle, sizeof(needle), "\"id\": \"%s\"", ids[i]);
			cr_assert_not_null(strstr(r.out, needle), "%s", r.out);
		}
	}
	/* --url given once per server works alike. */
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < 2; i++) {
			run_tool(&r, env_path("ZOSCTL"), NULL, "--url",
			    c.url[0], "--url", c.url[1], "session", "get",
			    ids[i], NULL);
			cr_assert_eq(r.status, 0, "%s", r.err);
		}
	}
	run_tool(&r, env_path("ZOSCTL"), NULL, "--url", urls, "session",
	    "transition", ids[1], "ANALYZING", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "ANALYZING"), "%s", r.out);
	run_tool(&r, env_path("ZOSCTL"), NULL, "--url", urls, "complete",
	    "--session", ids[0], "is 2 even?", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "FEEDBACK_READY"), "%s", r.out);
	run_tool(&r, env_path("ZOSCTL"), NULL, "--url", urls, "session",
	    "reset", ids[0], NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);

	/* Node 2 down: its session is UNAVAILABLE, node 1's is served. */
	cluster_stop_node(&c, 1);
	run_tool(&r, env_path("ZOSCTL"), NULL, "--url", urls, "--timeout-ms",
	    "2000", "session", "get", ids[1], NULL);
	cr_assert_neq(r.status, 0);
	cr_assert_not_null(strstr(r.err, "UNAVAILABLE"), "%s", r.err);
	run_tool(&r, env_path("ZOSCTL"), NULL, "--url", urls, "--timeout-ms",
	    "2000", "session", "get", ids[0], NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cluster_stop(&c);
}
