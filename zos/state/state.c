/*
 * The zOS state; see state.h for its parts and their lock order. Creation
 * reads the configured files first, before any lock exists, and builds
 * the parts in rank order; destruction undoes it in reverse.
 *
 * With a data directory the store is opened first: what it read wins over
 * the skills file and the defaults (those only seed a directory that has
 * no skills yet), and the restored sessions fill the new table. The
 * flusher starts once every part exists, and a seeded skill vector is made
 * durable before creation returns, so a first start with --skills-file
 * survives a crash right after it. Destruction closes the store first: it
 * writes what is still asked for, which needs the parts alive.
 */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Opens CONFIG's data directory into STATE->store and takes what it holds:
 * *SKILLS (NULL when it has none) and *SESSIONS (*HAVE_SESSIONS false when
 * it has none). Returns 0 or -1 with ERROR filled.
 */
static int
state_open_store(struct zos_state *state,
    const struct zos_state_config *config, struct zos_skill_vector **skills,
    struct zos_sessions_image *sessions, bool *have_sessions, char *error,
    size_t error_len)
{
	struct zos_store_config store_config = {
		.dir        = config->data_dir,
		.log        = config->log,
		.log_arg    = config->log_arg,
		.health     = config->store_health,
		.health_arg = config->store_health_arg,
	};
	char message[384];

	if (zos_store_open(
	        &store_config, &state->store, message, sizeof(message)) != 0) {
		snprintf(error, error_len, "data directory: %s", message);
		return -1;
	}
	*skills        = zos_store_take_skills(state->store);
	*have_sessions = zos_store_take_sessions(state->store, sessions);
	return 0;
}

struct zos_state *
zos_state_create(
    const struct zos_state_config *config, char *error, size_t error_len)
{
	struct zos_state         *state;
	struct zos_skill_vector  *initial       = NULL;
	struct zos_sessions_image image         = { 0 };
	bool                      have_sessions = false;
	bool                      seed;
	uint64_t                  skills_version;
	char                      message[384];
	int                       rv;

	if ((state = calloc(1, sizeof(*state))) == NULL) {
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	zos_lock_domain_init(&state->locks, config->abort_on_violation,
	    config->log, config->log_arg);

	if (config->data_dir != NULL &&
	    state_open_store(state, config, &initial, &image, &have_sessions,
	        error, error_len) != 0) {
		goto fail_state;
	}
	/* Skills from the data directory win; the file only seeds. */
	seed = initial == NULL;
	if (!seed && config->skills_file != NULL && config->log != NULL) {
		snprintf(message, sizeof(message),
		    "skills: version %llu from %s; %s is for Skills/Reload",
		    (unsigned long long) initial->version, config->data_dir,
		    config->skills_file);
		config->log(config->log_arg, ZRPC_LOG_INFO, message);
	}
	if (config->skills_file != NULL) {
		if (seed &&
		    zos_skills_load_file(&state->locks, config->skills_file,
		        &initial, message, sizeof(message)) != ZOS_SKILLS_OK) {
			snprintf(error, error_len, "skills file %s", message);
			goto fail_store;
		}
		if ((state->skills_file = strdup(config->skills_file)) ==
		    NULL) {
			snprintf(error, error_len, "out of memory");
			zos_skill_vector_unref(initial);
			goto fail_store;
		}
	}
	if (zos_skills_init(&state->skills, &state->locks, initial) != 0) {
		snprintf(error, error_len, "cannot set up the skills");
		goto fail_file;
	}
	if (state->store != NULL) {
		zos_skills_track(&state->skills); /* readers see durable */
	}
	skills_version =
	    state->skills.current->change_seq; /* not shared yet */
	if (zos_sessions_create(&state->sessions, &state->locks,
	        config->max_sessions) != ZOS_SESSION_OK) {
		snprintf(error, error_len, "cannot set up the sessions");
		goto fail_skills;
	}
	zos_sessions_track_changes(state->sessions, state->store != NULL);
	if (zos_sessions_configure(state->sessions, config->session_ttl_ms,
	        config->max_sessions_per_owner, config->clock,
	        config->clock_arg) != ZOS_SESSION_OK) {
		snprintf(error, error_len,
		    "cannot set up the sessions' lifecycle (TTL %lld ms)",
		    (long long) config->session_ttl_ms);
		goto fail_sessions;
	}
	if (have_sessions) {
		enum zos_session_code code = zos_sessions_restore(
		    state->sessions, &image, message, sizeof(message));

		zos_sessions_image_finish(&image);
		if (code != ZOS_SESSION_OK) {
			snprintf(error, error_len, "%s/zos.db: %s",
			    config->data_dir, message);
			goto fail_sessions;
		}
	}
	if (zos_routing_create(&state->routing, &state->locks,
	        config->routing_file, 0, message,
	        sizeof(message)) != ZOS_ROUTING_OK) {
		snprintf(error, error_len, "routing: %s", message);
		goto fail_sessions;
	}
	for (size_t i = 0; i < config->n_route_overrides; i++) {
		if (zos_routing_set_primary(state->routing,
		        config->route_tasks[i], config->route_primaries[i],
		        message, sizeof(message)) != ZOS_ROUTING_OK) {
			snprintf(error, error_len, "--backend %s=%s: %s",
			    config->route_tasks[i], config->route_primaries[i],
			    message);
			goto fail_routing;
		}
	}
	if (zos_cache_init(&state->cache,
	        config->cache_capacity != 0 ? config->cache_capacity
	                                    : ZOS_CACHE_DEFAULT_CAPACITY,
	        NULL, &state->locks) != 0) {
		snprintf(error, error_len, "cannot set up the cache");
		goto fail_routing;
	}
	if (state->store != NULL) {
		if ((rv = zos_store_start(state->store, &state->skills,
		         state->sessions)) != 0) {
			snprintf(error, error_len,
			    "data directory: cannot start the writer: %s",
			    strerror(rv));
			goto fail_cache;
		}
		/* A seeded directory has its skills on disk before any
		 * caller can see them. */
		if (seed &&
		    (rv = zos_store_commit_wait(state->store, ZOS_STORE_SKILLS,
		         skills_version, message, sizeof(message))) != 0) {
			snprintf(
			    error, error_len, "data directory: %s", message);
			goto fail_cache;
		}
	}
	return state;

fail_cache:
	/* Closed first: a started flusher reads the parts until joined. */
	zos_store_close(state->store);
	state->store = NULL;
	zos_cache_finish(&state->cache);
fail_routing:
	zos_routing_destroy(state->routing);
fail_sessions:
	zos_sessions_destroy(state->sessions);
fail_skills:
	zos_skills_finish(&state->skills);
fail_file:
	free(state->skills_file);
fail_store:
	zos_sessions_image_finish(&image);
	zos_store_close(state->store);
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

/* The store's answer to a commit nobody waits for (a failed one is
 * logged and counted by the store). */
static void
state_commit_soon_done(void *arg, int error, const char *message)
{
	(void) arg;
	(void) error;
	(void) message;
}

void
zos_state_commit_soon(
    struct zos_state *state, enum zos_store_part part, uint64_t seq)
{
	if (state->store != NULL) {
		zos_store_commit(
		    state->store, part, seq, state_commit_soon_done, NULL);
	}
}

size_t
zos_state_expire_sessions(struct zos_state *state)
{
	size_t total = 0, n;
	size_t rounds =
	    zos_sessions_max(state->sessions) / ZOS_SESSIONS_SWEEP_MAX + 1;

	/* Each round empties a batch; the table bounds how many there are. */
	do {
		n = zos_sessions_expire(
		    state->sessions, ZOS_SESSIONS_SWEEP_MAX);
		total += n;
	} while (n == ZOS_SESSIONS_SWEEP_MAX && rounds-- > 0);
	if (total > 0) {
		zos_state_commit_soon(state, ZOS_STORE_SESSIONS,
		    zos_sessions_seq(state->sessions));
	}
	return total;
}

void
zos_state_destroy(struct zos_state *state)
{
	if (state == NULL) {
		return;
	}
	zos_store_close(state->store); /* writes what is pending */
	zos_cache_finish(&state->cache);
	zos_routing_destroy(state->routing);
	zos_sessions_destroy(state->sessions);
	zos_skills_finish(&state->skills);
	free(state->skills_file);
	free(state);
}
