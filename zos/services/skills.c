/*
 * zos.v1.Skills. Get and Update only touch the state, so they run on
 * nng's completion threads; Reload reads the skills file and is declared
 * blocking, so it runs on the worker pool, and reads the file before it
 * takes the skills lock to swap the new vector in.
 */
#include <stdio.h>

#include "durable.h"
#include "services.h"
#include "zos/v1/zos.zrpc.h"

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

static zrpc_status
skills_service_get(zrpc_call *call, const Zos__V1__GetSkillsRequest *request,
    Zos__V1__SkillVector *reply)
{
	struct zos_state          *state = zrpc_call_service_ctx(call);
	struct skills_service_copy copy  = { call, reply, zrpc_status_ok() };

	(void) request;
	zos_skills_read(&state->skills, skills_service_copy, &copy);
	return copy.status;
}

static zrpc_status
skills_service_update(zrpc_call        *call,
    const Zos__V1__UpdateSkillsRequest *request, Zos__V1__SkillVector *reply)
{
	struct zos_state        *state = zrpc_call_service_ctx(call);
	struct zos_skill_delta  *deltas;
	struct zos_skill_vector *v = NULL;
	enum zos_skills_result   result;
	zrpc_status              status;
	uint64_t                 seq;
	char                     error[160];

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
	struct zos_state        *state = zrpc_call_service_ctx(call);
	struct zos_skill_vector *fresh, *now;
	enum zos_skills_result   result;
	zrpc_status              status;
	uint64_t                 seq;
	char                     error[384];

	(void) request;
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
zos_skills_service_register(zrpc_server *server, struct zos_state *state)
{
	const struct zos_v1_skills_handlers handlers = {
		.get             = skills_service_get,
		.update          = skills_service_update,
		.reload          = skills_service_reload,
		.reload_blocking = true,
	};

	return zos_v1_skills_register(server, &handlers, state);
}
