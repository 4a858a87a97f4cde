/*
 * zos.v1.Routing: routes from the routing table (copied out: a reload may
 * replace it), outcomes into the per-model metrics. State only:
 * completion threads.
 */
#include <stdlib.h>

#include "services.h"
#include "zos/v1/zos.zrpc.h"

static zrpc_status
routing_service_route(zrpc_call *call, const Zos__V1__RouteRequest *request,
    Zos__V1__RouteResponse *reply)
{
	struct zos_state *state = zrpc_call_service_ctx(call);
	struct zos_route  route;

	zos_routing_route(state->routing, request->task_type, &route);
	reply->primary_model  = zrpc_call_strdup(call, route.primary_model);
	reply->fallback_model = zrpc_call_strdup(call, route.fallback_model);
	if (reply->primary_model == NULL || reply->fallback_model == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	return zrpc_status_ok();
}

static zrpc_status
routing_service_record(zrpc_call        *call,
    const Zos__V1__RecordOutcomeRequest *request,
    Zos__V1__RecordOutcomeResponse      *reply)
{
	struct zos_state     *state = zrpc_call_service_ctx(call);
	enum zos_routing_code code;

	(void) reply;
	code = zos_routing_record_outcome(state->routing, request->model,
	    request->success, request->latency_ms, request->fallback);
	switch (code) {
	case ZOS_ROUTING_OK:
		return zrpc_status_ok();
	case ZOS_ROUTING_RESOURCE_EXHAUSTED:
		return zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED,
		    "too many models have outcomes recorded");
	case ZOS_ROUTING_NOT_FOUND:
		return zrpc_status_make(ZRPC_NOT_FOUND,
		    "model '%.64s' is not in the routing table",
		    request->model);
	case ZOS_ROUTING_INVALID_ARGUMENT:
		if (request->latency_ms > ZOS_ROUTING_LATENCY_MAX_MS) {
			return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
			    "latency_ms %llu is above the bound of %u (10 "
			    "minutes)",
			    (unsigned long long) request->latency_ms,
			    ZOS_ROUTING_LATENCY_MAX_MS);
		}
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "model must be 1 to %d bytes", ZOS_ROUTING_NAME_MAX);
	default:
		return zrpc_status_make(ZRPC_INTERNAL, "recording failed");
	}
}

static zrpc_status
routing_service_metrics(zrpc_call           *call,
    const Zos__V1__GetRoutingMetricsRequest *req,
    Zos__V1__RoutingMetrics                 *reply)
{
	struct zos_state         *state   = zrpc_call_service_ctx(call);
	struct zos_model_metrics *metrics = NULL;
	size_t                    count   = 0;
	Zos__V1__ModelMetrics   **list, *items;
	zrpc_status               status = zrpc_status_ok();

	(void) req;
	if (zos_routing_get_metrics(state->routing, &metrics, &count) !=
	    ZOS_ROUTING_OK) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	list  = zrpc_call_alloc(call, count * sizeof(*list) + 1);
	items = zrpc_call_alloc(call, count * sizeof(*items) + 1);
	if (list == NULL || items == NULL) {
		status =
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		zos__v1__model_metrics__init(&items[i]);
		items[i].model = zrpc_call_strdup(call, metrics[i].model);
		if (items[i].model == NULL) {
			status = zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
			goto out;
		}
		items[i].success_count    = metrics[i].success_count;
		items[i].failure_count    = metrics[i].failure_count;
		items[i].total_latency_ms = metrics[i].total_latency_ms;
		items[i].fallback_count   = metrics[i].fallback_count;
		items[i].mean_latency_ms  = metrics[i].mean_latency_ms;
		list[i]                   = &items[i];
	}
	reply->n_models = count;
	reply->models   = list;
out:
	free(metrics);
	return status;
}

zrpc_status
zos_routing_service_register(zrpc_server *server, struct zos_state *state)
{
	const struct zos_v1_routing_handlers handlers = {
		.route          = routing_service_route,
		.record_outcome = routing_service_record,
		.get_metrics    = routing_service_metrics,
	};

	return zos_v1_routing_register(server, &handlers, state);
}
