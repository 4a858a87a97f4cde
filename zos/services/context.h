/*
 * What the zOS services work on: the state, and what only the Assistant
 * needs besides (its model backends and their timings).
 *
 * A header of its own, with no functions, so that services.h (which
 * registers every service) and assistant.h can both name the type
 * without either including the other.
 */
#ifndef ZOS_SERVICES_CONTEXT_H
#define ZOS_SERVICES_CONTEXT_H

#include <stdint.h>

#include "backend.h"
#include "cluster.h"
#include "shared_cache.h"
#include "state.h"

/* What the services work on; must outlive the server. */
struct zos_services {
	struct zos_state    *state;
	struct zos_backends *backends; /* Assistant's models */
	/* Backend calls of a Complete call without a deadline get this
	 * long; 0 = 30000. */
	uint32_t backend_timeout_ms;
	/* Pause before the retry of a failed primary call; 0 = 100. */
	uint32_t retry_pause_ms;
	/* The response cache's shared second level (--cache-url); NULL =
	 * none, the local cache only. */
	struct zos_shared_cache *shared_cache;
	/* The other nodes (cluster.h); NULL = this node is alone: every
	 * session is served here and the skill vector lives here. */
	const struct zos_cluster *cluster;
};

#endif /* ZOS_SERVICES_CONTEXT_H */
