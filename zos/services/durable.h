/*
 * The durable reply: how a handler that changed persisted state (skills,
 * sessions) answers its call only once the store has made the change
 * durable, without holding a thread while the disk works.
 *
 * Every service that changes persisted state shares this one rule, so it
 * lives here rather than in any one service, and services.c (which only
 * registers the services) and each service depend on it, never on each
 * other.
 */
#ifndef ZOS_DURABLE_H
#define ZOS_DURABLE_H

#include <stdint.h>

#include "state.h"
#include "zrpc/server.h"

/*
 * Answers CALL with STATUS once PART is durable up to SEQ (the call is
 * suspended until the store's group commit covers it), or at once when
 * the state is in memory only (STATE->store NULL). If the change cannot
 * be made durable the caller gets INTERNAL (the write failed) or
 * UNAVAILABLE (shutting down) instead, with the store's message. When the
 * call's arena has no room for the wait, it waits for the commit on this
 * thread instead. The handler returns what this returns.
 * Locking: the caller holds no zOS lock (the store asserts it); the
 * resume runs on the store's flusher thread with none held.
 */
zrpc_status zos_durable_reply(zrpc_call *call, struct zos_state *state,
    enum zos_store_part part, uint64_t seq, zrpc_status status);

#endif /* ZOS_DURABLE_H */
