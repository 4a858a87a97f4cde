/*
 * Stress for several nodes in one process, built to run under
 * ThreadSanitizer (a plain program: Criterion does not run under TSan).
 *
 * Three nodes (the services over their own state and data directory, on
 * inproc servers), node 1 the skills home of the other two (a zrpc client
 * of it each), and one zos client (zos/client) of all three shared by 12
 * threads. Each thread starts sessions through the zos client (they land
 * on any node) and walks each one a few steps with Get and Transition,
 * routed by the client to the session's node, while it also updates a
 * skill through a node picked in turn (2 and 3 forward to node 1). Every
 * call must be OK: a call that reached the wrong node would be
 * FAILED_PRECONDITION. After the join: every node holds sessions (the
 * starts were spread), each session's version is the one last
 * acknowledged, and the home's skills version grew by exactly the updates
 * acknowledged through all three nodes. Exit status 0 when all held.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services.h"
#include "stress_host.h"
#include "zos/v1/zos.zrpc.h"
#include "zos_client.h"

#define NODES 3
#define THREADS 12
#define SESSIONS 6 /* per thread */
#define STEPS 6    /* transitions per session */
#define WORKERS 4
#define CALL_TIMEOUT_MS 60000

struct stress {
	struct stress_host hosts[NODES];
	struct zos_cluster clusters[NODES];
	zrpc_client       *to_home[NODES]; /* [0] unused */
	char               urls[NODES][64];
	struct zos_client *zc;
	atomic_uint        failures;
	atomic_uint        skill_updates;
	atomic_uint        per_node[NODES + 1];
};

struct worker {
	struct stress *s;
	int            index;
};

static const Zos__V1__ProofState walk[] = {
	ZOS__V1__PROOF_STATE__ANALYZING,
	ZOS__V1__PROOF_STATE__FEEDBACK_READY,
	ZOS__V1__PROOF_STATE__AWAITING_SOLUTION,
};

static void
fail(struct stress *s, const char *what, const zrpc_status *st)
{
	if (atomic_fetch_add(&s->failures, 1) < 10) {
		fprintf(stderr, "FAIL: %s: %s (%d)\n", what, st->message,
		    (int) st->code);
	}
}

static void *
worker_main(void *arg)
{
	struct worker               *w    = arg;
	struct stress               *s    = w->s;
	const zrpc_call_opts         opts = { .timeout_ms = CALL_TIMEOUT_MS };
	Zos__V1__UpdateSkillsRequest up = ZOS__V1__UPDATE_SKILLS_REQUEST__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry e =
	    ZOS__V1__UPDATE_SKILLS_REQUEST__DELTAS_ENTRY__INIT;
	Zos__V1__UpdateSkillsRequest__DeltasEntry *entries[1] = { &e };

	e.key       = "induction";
	e.value     = 0.0001;
	up.n_deltas = 1;
	up.deltas   = entries;
	for (int k = 0; k < SESSIONS; k++) {
		Zos__V1__StartSessionRequest start =
		    ZOS__V1__START_SESSION_REQUEST__INIT;
		Zos__V1__TransitionRequest tr =
		    ZOS__V1__TRANSITION_REQUEST__INIT;
		Zos__V1__GetSessionRequest get =
		    ZOS__V1__GET_SESSION_REQUEST__INIT;
		Zos__V1__ProofSession *p = NULL;
		Zos__V1__SkillVector  *v = NULL;
		zrpc_client           *via;
		zrpc_status            st;
		char                   id[64];
		uint64_t               version;
		unsigned               node;

		start.problem_id = "stress";
		st = zos_client_session_start(s->zc, &start, &p, &opts);
		if (st.code != ZRPC_OK) {
			fail(s, "start", &st);
			continue;
		}
		snprintf(id, sizeof(id), "%s", p->id);
		version = p->version;
		node    = (unsigned) atoi(id);
		if (node >= 1 && node <= NODES) {
			atomic_fetch_add(&s->per_node[node], 1);
		}
		zos__v1__proof_session__free_unpacked(p, NULL);
		for (int step = 0; step < STEPS; step++) {
			tr.id               = id;
			tr.to_state         = walk[step % 3];
			tr.expected_version = version;
			st                  = zos_client_session_transition(
			                     s->zc, &tr, &p, &opts);
			if (st.code != ZRPC_OK) {
				fail(s, "transition", &st);
				break;
			}
			version = p->version;
			zos__v1__proof_session__free_unpacked(p, NULL);
			get.id = id;
			st = zos_client_session_get(s->zc, &get, &p, &opts);
			if (st.code != ZRPC_OK) {
				fail(s, "get", &st);
				break;
			}
			if (p->version != version) {
				zrpc_status bad =
				    zrpc_status_make(ZRPC_INTERNAL,
				        "%s: version %llu, acknowledged %llu",
				        id, (unsigned long long) p->version,
				        (unsigned long long) version);
				fail(s, "get", &bad);
			}
			zos__v1__proof_session__free_unpacked(p, NULL);
		}
		via = s->hosts[(w->index + k) % NODES].client;
		st  = zos_v1_skills_update(via, &up, &v, &opts);
		if (st.code != ZRPC_OK) {
			fail(s, "skills update", &st);
			continue;
		}
		atomic_fetch_add(&s->skill_updates, 1);
		zos__v1__skill_vector__free_unpacked(v, NULL);
	}
	return NULL;
}

int
main(void)
{
	static struct stress       s;
	struct zos_backends_config backend = { 0 };
	struct worker              workers[THREADS];
	pthread_t                  threads[THREADS];
	const char                *urls[NODES];
	char root[64] = "/tmp/zos-stress-cluster-XXXXXX", dir[96], cmd[128];
	Zos__V1__GetSkillsRequest get = ZOS__V1__GET_SKILLS_REQUEST__INIT;
	Zos__V1__SkillVector     *v   = NULL;
	uint64_t                  v0  = 0;
	zrpc_status               st;
	int                       rv = 1;

	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	/* Node 1 first: the others' clients of it. */
	for (int i = 0; i < NODES; i++) {
		snprintf(s.urls[i], sizeof(s.urls[i]),
		    "inproc://zos-stress-cluster-%d-%d", (int) getpid(),
		    i + 1);
		s.clusters[i].node_id = (uint32_t) i + 1;
		if (i > 0) {
			st = zrpc_client_open(&s.to_home[i], s.urls[0], NULL);
			if (st.code != ZRPC_OK) {
				fail(&s, "client of the home", &st);
				goto out;
			}
			s.clusters[i].skills_home     = s.to_home[i];
			s.clusters[i].skills_home_url = s.urls[0];
		}
		snprintf(dir, sizeof(dir), "%s/n%d", root, i + 1);
		if (!stress_host_start_node(&s.hosts[i], dir, s.urls[i], 16,
		        &backend, WORKERS, &s.clusters[i])) {
			goto out;
		}
		urls[i] = s.urls[i];
	}
	st = zos_client_open(&s.zc, urls, NODES, NULL);
	if (st.code != ZRPC_OK) {
		fail(&s, "zos client", &st);
		goto out;
	}
	st = zos_v1_skills_get(s.hosts[0].client, &get, &v,
	    &(zrpc_call_opts) { .timeout_ms = CALL_TIMEOUT_MS });
	if (st.code != ZRPC_OK) {
		fail(&s, "skills get", &st);
		goto out;
	}
	v0 = v->version;
	zos__v1__skill_vector__free_unpacked(v, NULL);

	for (int i = 0; i < THREADS; i++) {
		workers[i] = (struct worker) { &s, i };
		pthread_create(&threads[i], NULL, worker_main, &workers[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
	}

	for (int n = 1; n <= NODES; n++) {
		if (atomic_load(&s.per_node[n]) == 0) {
			fprintf(stderr,
			    "FAIL: no session started on node %d\n", n);
			atomic_fetch_add(&s.failures, 1);
		}
	}
	st = zos_v1_skills_get(s.hosts[0].client, &get, &v,
	    &(zrpc_call_opts) { .timeout_ms = CALL_TIMEOUT_MS });
	if (st.code != ZRPC_OK) {
		fail(&s, "skills get", &st);
		goto out;
	}
	if (v->version != v0 + atomic_load(&s.skill_updates)) {
		fprintf(stderr,
		    "FAIL: skills version %llu, want %llu + %u updates\n",
		    (unsigned long long) v->version, (unsigned long long) v0,
		    atomic_load(&s.skill_updates));
		atomic_fetch_add(&s.failures, 1);
	}
	zos__v1__skill_vector__free_unpacked(v, NULL);
	rv = atomic_load(&s.failures) == 0 ? 0 : 1;
	printf("stress-cluster: %u sessions on nodes 1/2/3: %u/%u/%u, %u "
	       "skill updates, %u failures\n",
	    atomic_load(&s.per_node[1]) + atomic_load(&s.per_node[2]) +
	        atomic_load(&s.per_node[3]),
	    atomic_load(&s.per_node[1]), atomic_load(&s.per_node[2]),
	    atomic_load(&s.per_node[3]), atomic_load(&s.skill_updates),
	    atomic_load(&s.failures));

out:
	zos_client_close(s.zc);
	/* The forwarding nodes first: their handlers use the home. */
	for (int i = NODES - 1; i >= 0; i--) {
		if (s.hosts[i].state != NULL) {
			stress_host_stop(&s.hosts[i]);
		}
		zrpc_client_close(s.to_home[i]);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", root);
	}
	return rv;
}
