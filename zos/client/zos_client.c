/*
 * The zos client (zos_client.h): node ids learned per server URL, calls
 * naming a session pinned to its node.
 *
 * nodes[i] is what server i of the zrpc client said it is (0: not known),
 * guarded by MUTEX. A probe copies the servers to ask under the mutex,
 * asks them with it released, and stores what they said under it again,
 * so no call ever runs with the mutex held; two threads probing the same
 * server at once both store the same answer.
 */
#include "zos_client.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "zrpc/v1/health.zrpc.h"

#define CLIENT_HEX_LEN 32     /* as ZOS_SESSION_HEX_LEN */
#define CLIENT_NODE_MAX 65535 /* as ZOS_SESSION_NODE_MAX */

struct zos_client {
	zrpc_client    *client;
	bool            owned; /* close CLIENT with C */
	size_t          n_servers;
	pthread_mutex_t mutex;
	uint32_t       *nodes; /* guarded by: mutex; n_servers of them */
};

/*
 * The node of a session id "<N>-<32 lowercase hex>" (sessions.h, whose
 * zos_session_id_node this mirrors, so that the client needs no state
 * library): true with *NODE set, false for any other string.
 */
static bool
client_id_node(const char *id, uint32_t *node)
{
	uint32_t v = 0;
	size_t   n = 0, k;

	if (id == NULL || id[0] < '1' || id[0] > '9') {
		return false;
	}
	for (; id[n] >= '0' && id[n] <= '9'; n++) {
		if (n == 5) {
			return false;
		}
		v = v * 10 + (uint32_t) (id[n] - '0');
	}
	if (v > CLIENT_NODE_MAX || id[n] != '-') {
		return false;
	}
	for (k = 0; k < CLIENT_HEX_LEN; k++) {
		char c = id[n + 1 + k];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	if (id[n + 1 + CLIENT_HEX_LEN] != '\0') {
		return false;
	}
	*node = v;
	return true;
}

/* Parses an x-zrpc-node value; 0 when it is not a node id. */
static uint32_t
client_parse_node(const char *text)
{
	uint32_t v = 0;

	if (text == NULL || text[0] < '1' || text[0] > '9') {
		return 0;
	}
	for (size_t n = 0; text[n] != '\0'; n++) {
		if (n == 5 || text[n] < '0' || text[n] > '9') {
			return 0;
		}
		v = v * 10 + (uint32_t) (text[n] - '0');
	}
	return v <= CLIENT_NODE_MAX ? v : 0;
}

/* Asks server I which node it is (within TIMEOUT_MS); 0 = no answer. */
static uint32_t
client_probe(struct zos_client *c, size_t i, uint32_t timeout_ms)
{
	Zrpc__V1__HealthCheckRequest req =
	    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
	Zrpc__V1__HealthCheckResponse *reply = NULL;
	struct zrpc_metadata          *md    = NULL;
	zrpc_call_opts                 opts  = {
		                 .timeout_ms     = timeout_ms,
		                 .reply_metadata = &md,
		                 .server_url = zrpc_client_server_url(c->client, i),
	};
	uint32_t    node = 0;
	zrpc_status status;

	req.service = "";
	status      = zrpc_v1_health_check(c->client, &req, &reply, &opts);
	if (zrpc_status_is_ok(&status)) {
		node = client_parse_node(zrpc_metadata_get(md, "x-zrpc-node"));
		zrpc__v1__health_check_response__free_unpacked(reply, NULL);
	}
	zrpc_metadata_free(md);
	return node;
}

/*
 * Asks every server whose node is not known yet (each within TIMEOUT_MS)
 * and records the answers. Returns the index of a server of node WANT
 * among them, or n_servers when none is (WANT 0: none wanted).
 */
static size_t
client_learn(struct zos_client *c, uint32_t want, uint32_t timeout_ms)
{
	bool   ask[ZRPC_CLIENT_MAX_SERVERS];
	size_t found = c->n_servers;

	pthread_mutex_lock(&c->mutex);
	for (size_t i = 0; i < c->n_servers; i++) {
		ask[i] = c->nodes[i] == 0;
	}
	pthread_mutex_unlock(&c->mutex);
	for (size_t i = 0; i < c->n_servers; i++) {
		uint32_t node;

		if (!ask[i] || (node = client_probe(c, i, timeout_ms)) == 0) {
			continue;
		}
		pthread_mutex_lock(&c->mutex);
		c->nodes[i] = node;
		pthread_mutex_unlock(&c->mutex);
		if (node == want && found == c->n_servers) {
			found = i;
		}
	}
	return found;
}

zrpc_status
zos_client_create(struct zos_client **out, zrpc_client *client)
{
	struct zos_client *c;
	size_t             n;

	if (out == NULL || client == NULL) {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "zos_client_create: NULL argument");
	}
	*out = NULL;
	n    = zrpc_client_n_servers(client);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->nodes = calloc(n + 1, sizeof(*c->nodes))) == NULL) {
		free(c);
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	c->client    = client;
	c->n_servers = n;
	pthread_mutex_init(&c->mutex, NULL);
	(void) client_learn(c, 0, ZOS_CLIENT_PROBE_MS);
	*out = c;
	return zrpc_status_ok();
}

zrpc_status
zos_client_open(struct zos_client **out, const char *const *urls,
    size_t n_urls, const zrpc_client_opts *opts)
{
	zrpc_client *client = NULL;
	zrpc_status  status;

	if (out != NULL) {
		*out = NULL;
	}
	status = zrpc_client_open_list(&client, urls, n_urls, opts);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	status = zos_client_create(out, client);
	if (!zrpc_status_is_ok(&status)) {
		zrpc_client_close(client);
		return status;
	}
	(*out)->owned = true;
	return status;
}

void
zos_client_close(struct zos_client *c)
{
	if (c == NULL) {
		return;
	}
	if (c->owned) {
		zrpc_client_close(c->client);
	}
	pthread_mutex_destroy(&c->mutex);
	free(c->nodes);
	free(c);
}

zrpc_client *
zos_client_zrpc(const struct zos_client *c)
{
	return c->client;
}

uint32_t
zos_client_server_node(struct zos_client *c, size_t i)
{
	uint32_t node = 0;

	pthread_mutex_lock(&c->mutex);
	if (i < c->n_servers) {
		node = c->nodes[i];
	}
	pthread_mutex_unlock(&c->mutex);
	return node;
}

zrpc_status
zos_client_route(struct zos_client *c, const char *session_id,
    const zrpc_call_opts *given, zrpc_call_opts *out)
{
	uint32_t node, timeout = ZOS_CLIENT_PROBE_MS;
	size_t   at = c->n_servers;

	if (given != NULL) {
		*out = *given;
	} else {
		memset(out, 0, sizeof(*out));
	}
	if (!client_id_node(session_id, &node)) {
		return zrpc_status_ok(); /* names no node: any server */
	}
	pthread_mutex_lock(&c->mutex);
	for (size_t i = 0; i < c->n_servers && at == c->n_servers; i++) {
		if (c->nodes[i] == node) {
			at = i;
		}
	}
	pthread_mutex_unlock(&c->mutex);
	if (at == c->n_servers) {
		if (out->timeout_ms != 0 && out->timeout_ms < timeout) {
			timeout = out->timeout_ms;
		}
		at = client_learn(c, node, timeout);
	}
	if (at == c->n_servers) {
		return zrpc_status_make(ZRPC_UNAVAILABLE,
		    "node %u of session %.64s is not reachable: none of the "
		    "%zu servers answered as it",
		    node, session_id, c->n_servers);
	}
	out->server_url = zrpc_client_server_url(c->client, at);
	return zrpc_status_ok();
}

zrpc_status
zos_client_call(struct zos_client *c, const char *session_id,
    const struct zrpc_method *method, const ProtobufCMessage *request,
    ProtobufCMessage **reply, const zrpc_call_opts *opts)
{
	zrpc_call_opts routed;
	zrpc_status    status;

	if (reply != NULL) {
		*reply = NULL;
	}
	status = zos_client_route(c, session_id, opts, &routed);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	return zrpc_client_call(c->client, method, request, reply, &routed);
}

zrpc_status
zos_client_session_get(struct zos_client *c,
    const Zos__V1__GetSessionRequest *request, Zos__V1__ProofSession **reply,
    const zrpc_call_opts *opts)
{
	return zos_client_call(c, request->id, &zos_v1_session_get_method,
	    &request->base, (ProtobufCMessage **) reply, opts);
}

zrpc_status
zos_client_session_transition(struct zos_client *c,
    const Zos__V1__TransitionRequest *request, Zos__V1__ProofSession **reply,
    const zrpc_call_opts *opts)
{
	return zos_client_call(c, request->id,
	    &zos_v1_session_transition_method, &request->base,
	    (ProtobufCMessage **) reply, opts);
}

zrpc_status
zos_client_session_reset(struct zos_client *c,
    const Zos__V1__ResetSessionRequest *request, Zos__V1__ProofSession **reply,
    const zrpc_call_opts *opts)
{
	return zos_client_call(c, request->id, &zos_v1_session_reset_method,
	    &request->base, (ProtobufCMessage **) reply, opts);
}

zrpc_status
zos_client_assistant_complete(struct zos_client *c,
    const Zos__V1__CompleteRequest *request, Zos__V1__CompleteResponse **reply,
    const zrpc_call_opts *opts)
{
	return zos_client_call(c, request->session_id,
	    &zos_v1_assistant_complete_method, &request->base,
	    (ProtobufCMessage **) reply, opts);
}

zrpc_status
zos_client_session_start(struct zos_client *c,
    const Zos__V1__StartSessionRequest *request, Zos__V1__ProofSession **reply,
    const zrpc_call_opts *opts)
{
	return zos_client_call(c, NULL, &zos_v1_session_start_method,
	    &request->base, (ProtobufCMessage **) reply, opts);
}
