#include "cluster.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpdir.h"
#include "zos/v1/zos.zrpc.h"

void
cluster_init(struct cluster *c, size_t n, const char *const *extra)
{
	size_t k = 0;

	cr_assert(n >= 1 && n <= CLUSTER_NODES_MAX, "%zu nodes", n);
	memset(c, 0, sizeof(*c));
	snprintf(c->root, sizeof(c->root), "/tmp/zos-cluster-XXXXXX");
	cr_assert_not_null(mkdtemp(c->root));
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(c->url[i], sizeof(c->url[i]), "ipc://%s/n%zu.sock",
		    c->root, i + 1);
		snprintf(c->data[i], sizeof(c->data[i]), "%s/data%zu", c->root,
		    i + 1);
	}
	for (; extra != NULL && extra[k] != NULL; k++) {
		cr_assert_lt(k, CLUSTER_EXTRA_MAX, "too many cluster flags");
		c->extra[k] = extra[k];
	}
	c->extra[k] = NULL;
}

void
cluster_start_node(
    struct cluster *c, size_t i, bool node_flag, const char *const *extra)
{
	char  node[8], peer[CLUSTER_NODES_MAX][160];
	char *argv[64];
	int   n = 0;

	snprintf(node, sizeof(node), "%zu", i + 1);
	argv[n++] = (char *) env_path("ZOSD");
	argv[n++] = "--data-dir";
	argv[n++] = c->data[i];
	argv[n++] = "--listen";
	argv[n++] = c->url[i];
	argv[n++] = "--log-format";
	argv[n++] = "text";
	argv[n++] = "--metrics-listen";
	argv[n++] = "off";
	if (node_flag) {
		argv[n++] = "--node-id";
		argv[n++] = node;
	}
	for (size_t j = 0; j < c->n; j++) {
		if (j == i) {
			continue;
		}
		snprintf(peer[j], sizeof(peer[j]), "%zu=%s", j + 1, c->url[j]);
		argv[n++] = "--peer";
		argv[n++] = peer[j];
	}
	if (i != 0) {
		argv[n++] = "--skills-home";
		argv[n++] = c->url[0];
	}
	for (size_t k = 0; c->extra[k] != NULL; k++) {
		argv[n++] = (char *) c->extra[k];
	}
	for (; extra != NULL && *extra != NULL && n < 62; extra++) {
		argv[n++] = (char *) *extra;
	}
	cr_assert(extra == NULL || *extra == NULL, "too many zosd flags");
	argv[n] = NULL;
	proc_start(&c->proc[i], argv);
	cr_assert(
	    proc_wait_for(&c->proc[i], "listening on"), "%s", c->proc[i].text);
	c->running[i] = true;
}

void
cluster_stop_node(struct cluster *c, size_t i)
{
	kill(c->proc[i].pid, SIGTERM);
	cr_assert_eq(proc_wait(&c->proc[i]), 0, "%s", c->proc[i].text);
	c->running[i] = false;
}

void
cluster_kill9_node(struct cluster *c, size_t i)
{
	proc_kill9(&c->proc[i]);
	c->running[i] = false;
}

void
cluster_start(struct cluster *c, size_t n, const char *const *extra)
{
	cluster_init(c, n, extra);
	for (size_t i = 0; i < n; i++) {
		cluster_start_node(c, i, true, NULL);
	}
}

void
cluster_stop(struct cluster *c)
{
	for (size_t i = 0; i < c->n; i++) {
		if (c->running[i]) {
			cluster_stop_node(c, i);
		}
	}
	test_tmpdir_remove(c->root);
}

zrpc_client *
cluster_client_of(const char *url)
{
	zrpc_client *client;

	cr_assert_eq(zrpc_client_open(&client, url,
	                 &(zrpc_client_opts) { .connect_timeout_ms = 1000 })
	                 .code,
	    ZRPC_OK);
	return client;
}

void
cluster_start_session(zrpc_client *client, const char *problem, char id[64])
{
	Zos__V1__StartSessionRequest req =
	    ZOS__V1__START_SESSION_REQUEST__INIT;
	Zos__V1__ProofSession *s = NULL;
	zrpc_status            st;

	req.problem_id = (char *) problem;
	st             = zos_v1_session_start(
	                client, &req, &s, &(zrpc_call_opts) { .timeout_ms = 5000 });
	cr_assert_eq(st.code, ZRPC_OK, "%s", st.message);
	snprintf(id, 64, "%s", s->id);
	zos__v1__proof_session__free_unpacked(s, NULL);
}
