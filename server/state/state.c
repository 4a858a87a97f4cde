/*
 * The zOS state; see state.h for its parts and their lock order. Creation
 * reads the configured files first, before any lock exists, and builds
 * the parts in rank order; destruction undoes it in reverse.
 */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zos_state *
zos_state_create(
    const struct zos_state_config *config, char *error, size_t error_len)
{
	struct zos_state        *state;
	struct zos_skill_vector *initial = NULL;
	char                     message[384];

	if ((state = calloc(1, sizeof(*state))) == NULL) {
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	zos_lock_domain_init(&state->locks, config->abort_on_violation,
	    config->log, config->log_arg);

	if (config->skills_file != NULL) {
		if (zos_skills_load_file(&state->locks, config->skills_file,
		        &initial, message, sizeof(message)) != ZOS_SKILLS_OK) {
			snprintf(error, error_len, "skills file %s", message);
			goto fail_state;
		}
		if ((state->skills_file = strdup(config->skills_file)) ==
		    NULL) {
			snprintf(error, error_len, "out of memory");
			zos_skill_vector_unref(initial);
			goto fail_state;
		}
	}
	if (zos_skills_init(&state->skills, &state->locks, initial) != 0) {
		snprintf(error, error_len, "cannot set up the skills");
		goto fail_file;
	}
	if (zos_sessions_create(&state->sessions, &state->locks,
	        config->max_sessions) != ZOS_SESSION_OK) {
		snprintf(error, error_len, "cannot set up the sessions");
		goto fail_skills;
	}
	if (zos_routing_create(&state->routing, &state->locks,
	        config->routing_file, 0, message,
	        sizeof(message)) != ZOS_ROUTING_OK) {
		snprintf(error, error_len, "routing: %s", message);
		goto fail_sessions;
	}
	if (zos_cache_init(&state->cache,
	        config->cache_capacity != 0 ? config->cache_capacity
	                                    : ZOS_CACHE_DEFAULT_CAPACITY,
	        NULL, &state->locks) != 0) {
		snprintf(error, error_len, "cannot set up the cache");
		goto fail_routing;
	}
	return state;

fail_routing:
	zos_routing_destroy(state->routing);
fail_sessions:
	zos_sessions_destroy(state->sessions);
fail_skills:
	zos_skills_finish(&state->skills);
fail_file:
	free(state->skills_file);
fail_state:
	free(state);
	return NULL;
}

void
zos_state_locks(struct zos_state *state, struct zos_lock *out[4])
{
	out[0] = &state->skills.lock;
	out[1] = zos_sessions_lock(state->sessions);
	out[2] = zos_routing_lock(state->routing);
	out[3] = &state->cache.lock;
}

void
zos_state_destroy(struct zos_state *state)
{
	if (state == NULL) {
		return;
	}
	zos_cache_finish(&state->cache);
	zos_routing_destroy(state->routing);
	zos_sessions_destroy(state->sessions);
	zos_skills_finish(&state->skills);
	free(state->skills_file);
	free(state);
}
