/*
 * zos.v1.Skills. Get and Update only touch the state, so they run on
 * nng's completion threads; Reload reads the skills file and is declared
 * blocking, so it runs on the worker pool, and reads the file before it
 * takes the skills lock to swap the new vector in.
 *
 * On a node that is not the skill vector's home (cluster.h), each of the
 * three is forwarded to the home instead, asynchronously: the handler
 * suspends the call and starts a zrpc client call to the home with the
 * caller's deadline; its completion (on an nng thread, no zOS lock held)
 * copies the home's vector into the reply and resumes the call. No thread
 * waits for the home. The home's status (UNAVAILABLE when it cannot be
 * reached) is the caller's. This node's own vector is not read.
 */
#include <stdio.h>
#include <string.h>

#include "durable.h"
#include "services.h"
#include "zos/v1/zos.zrpc.h"

/* Request metadata of a call one node forwarded to the skills home. */
#define SKILLS_FORWARDED "x-zos-forwarded"

/* Fills REPLY from the snapshot V (names copied into the call's arena,
 * so the snapshot can be released before the reply is packed). */
static zrpc_status
skills_service_reply(zrpc_call *call, const struct zos_skill_vector *v,
    Zos__V1__SkillVector *reply)
{
	Zos__V1__Skill **list =
	    zrpc_call_alloc(call, v->n * sizeof(*list) + 1);
	Zos__V1__Skill *skills =
	    zrpc_call_alloc(call, v->n * sizeof(*skills) + 1);

	if (list == NULL || skills == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	for (size_t i = 0; i < v->n; i++) {
		zos__v1__skill__init(&skills[i]);
		skills[i].name = zrpc_call_strdup(call, v->skills[i].name);
		if (skills[i].name == NULL) {
			return zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		skills[i].level    = v->skills[i].level;
		skills[i].attempts = v->skills[i].attempts;
		list[i]            = &skills[i];
	}
	reply->n_skills = v->n;
	reply->skills   = list;
	reply->version  = v->version;
	return zrpc_status_ok();
}

struct skills_service_copy {
	zrpc_call            *call;
	Zos__V1__SkillVector *reply;
	zrpc_status           status;
};

/* Copies the vector into the reply under the read lock (arena copies
 * only), so that concurrent Gets share no written memory. */
static void
skills_service_copy(void *arg, const struct zos_skill_vector *v)
{
	struct skills_service_copy *copy = arg;

	copy->status = skills_service_reply(copy->call, v, copy->reply);
}

/* Copies the home's vector FROM into REPLY (the call's arena). */
static zrpc_status
skills_forward_copy(zrpc_call *call, const Zos__V1__SkillVector *from,
    Zos__V1__SkillVector *reply)
{
	Zos__V1__Skill **list =
	    zrpc_call_alloc(call, from->n_skills * sizeof(*list) + 1);
	Zos__V1__Skill *skills =
	    zrpc_call_alloc(call, from->n_skills * sizeof(*skills) + 1);

	if (list == NULL || skills == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	for (size_t i = 0; i < from->n_skills; i++) {
		zos__v1__skill__init(&skills[i]);
		skills[i].name = zrpc_call_strdup(call, from->skills[i]->name);
		if (skills[i].name == NULL) {
			return zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		skills[i].level    = from->skills[i]->level;
		skills[i].attempts = from->skills[i]->attempts;
		list[i]            = &skills[i];
	}
	reply->n_skills = from->n_skills;
	reply->skills   = list;
	reply->version  = from->version;
	return zrpc_status_ok();
}

/* One forwarded call, in the call's arena: the call, its reply to fill,
 * and who to blame when the home is unreachable. */
struct skills_forward_call {
	zrpc_call                *call;
	Zos__V1__SkillVector     *reply;
	const struct zos_cluster *cluster;
};

/*
 * The home answered (or the forwarded call failed): fill the reply and
 * answer the suspended call. Runs on an nng thread, with no zOS lock;
 * F is not touched after the resume (its arena may be gone).
 */
static void
skills_forward_done(
    void *arg, const zrpc_status *status, ProtobufCMessage *out)
{
	struct skills_forward_call *f = arg;
	zrpc_status                 result;

	if (zrpc_status_is_ok(status)) {
		result =
		    skills_forward_copy(f->call, (const void *) out, f->reply);
		protobuf_c_message_free_unpacked(out, NULL);
	} else if (status->code == ZRPC_UNAVAILABLE) {
		result = zrpc_status_make(ZRPC_UNAVAILABLE,
		    "the skills home %.200s: %s", f->cluster->skills_home_url,
		    status->message);
	} else {
		result = *status;
	}
	zrpc_call_resume(f->call, result);
}

/*
 * Sends CALL's REQUEST on to the skills home as METHOD, asynchronously:
 * the call is suspended, no thread waits for the home, and
 * skills_forward_done answers it with the home's vector copied into
 * REPLY. The forwarded call carries the caller's authorization (the home
 * checks the role again), request id and a child trace context, and the
 * caller's remaining time (none: the cluster's forward timeout). Holds no
 * lock. The returned status is the handler's: ignored once suspended.
 */
static zrpc_status
skills_forward(zrpc_call *call, const struct zrpc_method *method,
    const ProtobufCMessage *request, Zos__V1__SkillVector *reply)
{
	const struct zos_services  *services = zrpc_call_service_ctx(call);
	const struct zos_cluster   *cluster  = services->cluster;
	struct zrpc_metadata_entry  md[5];
	char                        traceparent[ZRPC_TRACEPARENT_LEN + 1];
	const char                 *value;
	int64_t                     left = zrpc_call_remaining_ms(call);
	zrpc_call_opts              opts = { .metadata = md };
	struct skills_forward_call *f;
	zrpc_status                 status;

	/* A call forwarded once is never forwarded again: --skills-home
	 * flags that point in a circle end here, not in a loop. */
	if (zrpc_call_metadata(call, SKILLS_FORWARDED) != NULL) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "a Skills call forwarded to node %u, which is not the "
		    "skills home either (its --skills-home is %.200s): the "
		    "nodes' --skills-home flags disagree",
		    cluster->node_id, cluster->skills_home_url);
	}
	if (left == 0) {
		return zrpc_status_make(ZRPC_DEADLINE_EXCEEDED,
		    "deadline exceeded before the skills home was asked");
	}
	if ((f = zrpc_call_alloc(call, sizeof(*f))) == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	*f = (struct skills_forward_call) { call, reply, cluster };
	md[opts.n_metadata++] =
	    (struct zrpc_metadata_entry) { SKILLS_FORWARDED, "1" };
	opts.timeout_ms = left > 0
	    ? (uint32_t) (left > UINT32_MAX ? UINT32_MAX : left)
	    : (cluster->forward_timeout_ms != 0 ? cluster->forward_timeout_ms
	                                        : 30000u);
	if ((value = zrpc_call_metadata(call, "authorization")) != NULL) {
		md[opts.n_metadata++] =
		    (struct zrpc_metadata_entry) { "authorization", value };
	}
	if ((value = zrpc_call_request_id(call)) != NULL && value[0] != '\0') {
		md[opts.n_metadata++] =
		    (struct zrpc_metadata_entry) { "x-request-id", value };
	}
	zrpc_call_child_traceparent(call, traceparent);
	md[opts.n_metadata++] =
	    (struct zrpc_metadata_entry) { "traceparent", traceparent };
	if ((value = zrpc_call_tracestate(call)) != NULL) {
		md[opts.n_metadata++] =
		    (struct zrpc_metadata_entry) { "tracestate", value };
	}
	zrpc_call_suspend(call);
	status = zrpc_client_call_async(cluster->skills_home, method, request,
	    &opts, zrpc_reply_invoke_generic,
	    (void (*)(void)) skills_forward_done, f);
	if (!zrpc_status_is_ok(&status)) {
		/* It never started: no callback will run. */
		skills_forward_done(f, &status, NULL);
	}
	return zrpc_status_ok(); /* ignored: the call is suspended */
}

/* True when this node is not the home: the call goes there. */
static bool
skills_elsewhere(zrpc_call *call)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);

	return services->cluster != NULL &&
	    services->cluster->skills_home != NULL;
}

static zrpc_status
skills_service_get(zrpc_call *call, const Zos__V1__GetSkillsRequest *request,
    Zos__V1__SkillVector *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_state          *state    = services->state;
	struct skills_service_copy copy = { call, reply, zrpc_status_ok() };

	if (skills_elsewhere(call)) {
		return skills_forward(
		    call, &zos_v1_skills_get_method, &request->base, reply);
	}
	(void) request;
	zos_skills_read(&state->skills, skills_service_copy, &copy);
	return copy.status;
}

static zrpc_status
skills_service_update(zrpc_call        *call,
    const Zos__V1__UpdateSkillsRequest *request, Zos__V1__SkillVector *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_state          *state    = services->state;
	struct zos_skill_delta    *deltas;
	struct zos_skill_vector   *v = NULL;
	enum zos_skills_result     result;
	zrpc_status                status;
	uint64_t                   seq;
	char                       error[160];

	if (skills_elsewhere(call)) {
		return skills_forward(
		    call, &zos_v1_skills_update_method, &request->base, reply);
	}
	if (request->n_deltas > ZOS_SKILLS_MAX) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "at most %d deltas", ZOS_SKILLS_MAX);
	}
	deltas =
	    zrpc_call_alloc(call, request->n_deltas * sizeof(*deltas) + 1);
	if (deltas == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	for (size_t i = 0; i < request->n_deltas; i++) {
		deltas[i].name  = request->deltas[i]->key;
		deltas[i].delta = request->deltas[i]->value;
	}
	result = zos_skills_update(&state->skills, deltas, request->n_deltas,
	    request->expected_version, &v, error, sizeof(error));
	if (result != ZOS_SKILLS_OK) {
		return zrpc_status_make((zrpc_code) result, "%s", error);
	}
	status = skills_service_reply(call, v, reply);
	seq    = v->change_seq;
	zos_skill_vector_unref(v);
	return zos_durable_reply(call, state, ZOS_STORE_SKILLS, seq, status);
}

static zrpc_status
skills_service_reload(zrpc_call        *call,
    const Zos__V1__ReloadSkillsRequest *request, Zos__V1__SkillVector *reply)
{
	const struct zos_services *services = zrpc_call_service_ctx(call);
	struct zos_state          *state    = services->state;
	struct zos_skill_vector   *fresh, *now;
	enum zos_skills_result     result;
	zrpc_status                status;
	uint64_t                   seq;
	char                       error[384];

	if (skills_elsewhere(call)) { /* on a worker already */
		return skills_forward(
		    call, &zos_v1_skills_reload_method, &request->base, reply);
	}
	if (state->skills_file == NULL) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "zosd was started without --skills-file: nothing to "
		    "reload");
	}
	/* Read outside every lock; swap under the write lock. */
	result = zos_skills_load_file(
	    &state->locks, state->skills_file, &fresh, error, sizeof(error));
	if (result != ZOS_SKILLS_OK) {
		return zrpc_status_make(result == ZOS_SKILLS_NOT_FOUND
		        ? ZRPC_FAILED_PRECONDITION
		        : (zrpc_code) result,
		    "%s", error);
	}
	zos_skills_replace(&state->skills, fresh, &now);
	status = skills_service_reply(call, now, reply);
	seq    = now->change_seq;
	zos_skill_vector_unref(now);
	return zos_durable_reply(call, state, ZOS_STORE_SKILLS, seq, status);
}

zrpc_status
zos_skills_service_register(
    zrpc_server *server, const struct zos_services *services)
{
	const struct zos_v1_skills_handlers handlers = {
		.get             = skills_service_get,
		.update          = skills_service_update,
		.reload          = skills_service_reload,
		.reload_blocking = true,
	};

	return zos_v1_skills_register(server, &handlers, (void *) services);
}
