/*
 * zrpc log types: the level of an event and the sink that receives it.
 *
 * They have a header of their own because more than the server logs: an
 * application's own modules (zos's locks and store, say) take the same
 * zrpc_log_fn so that one sink serves the whole program, and they should
 * not have to include the server runtime to name it. Nothing here
 * allocates or locks; a sink is called on whatever thread logs and must
 * be safe to call from any thread.
 */
#ifndef ZRPC_LOG_H
#define ZRPC_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels, most verbose first. */
typedef enum zrpc_log_level {
	ZRPC_LOG_DEBUG = 0,
	ZRPC_LOG_INFO  = 1,
	ZRPC_LOG_WARN  = 2,
	ZRPC_LOG_ERROR = 3,
} zrpc_log_level;

/*
 * A log sink: receives one formatted event (no trailing newline). MESSAGE
 * is the caller's and valid only during the call.
 */
typedef void (*zrpc_log_fn)(
    void *arg, zrpc_log_level level, const char *message);

#ifdef __cplusplus
}
#endif

#endif /* ZRPC_LOG_H */
