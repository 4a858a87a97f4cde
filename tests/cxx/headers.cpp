/*
 * zrpc's public headers from C++: every header in zrpc/include/zrpc and the
 * generated zrpc.v1 headers compile as C++17, and calls into libzrpc link
 * (their declarations are extern "C"). main() then uses a little of each
 * module, ending with a Health check over inproc through the generated C
 * stub, served by a server whose Health handler table a C++ file could
 * fill in just as well. Exits 0 when all is well, 1 with a message when
 * not.
 */
#include "zrpc/auth.h"
#include "zrpc/client.h"
#include "zrpc/clock.h"
#include "zrpc/descriptor.h"
#include "zrpc/histogram.h"
#include "zrpc/log.h"
#include "zrpc/logq.h"
#include "zrpc/server.h"
#include "zrpc/service.h"
#include "zrpc/status.h"
#include "zrpc/v1/envelope.pb-c.h"
#include "zrpc/v1/health.pb-c.h"
#include "zrpc/v1/health.zrpc.h"
#include "zrpc/v1/reflection.pb-c.h"
#include "zrpc/v1/reflection.zrpc.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace {

int failures = 0;

void
check(bool ok, const char *what)
{
	if (!ok) {
		std::fprintf(stderr, "cxx-headers: %s\n", what);
		failures++;
	}
}

/* A handler with the generated type, written in C++. */
zrpc_status
cxx_check(zrpc_call *call, const Zrpc__V1__HealthCheckRequest *request,
    Zrpc__V1__HealthCheckResponse *reply)
{
	(void) call;
	(void) request;
	reply->status =
	    ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	return zrpc_status_ok();
}

void
cxx_log(void *arg, zrpc_log_level level, const char *message)
{
	(void) arg;
	(void) level;
	(void) message;
}

} // namespace

int
main()
{
	zrpc_status status       = zrpc_status_make(ZRPC_NOT_FOUND, "%s", "x");
	zrpc_code   code         = ZRPC_OK;
	struct zrpc_histogram *h = nullptr;

	check(std::string(zrpc_status_name(ZRPC_DEADLINE_EXCEEDED)) ==
	        "DEADLINE_EXCEEDED",
	    "zrpc_status_name");
	check(!zrpc_status_is_ok(&status), "zrpc_status_make");
	check(zrpc_status_from_name("unavailable", &code) &&
	        code == ZRPC_UNAVAILABLE,
	    "zrpc_status_from_name");

	{
		zrpc_descriptor_pool     *pool   = nullptr;
		const struct zrpc_method *method = nullptr;

		check(zrpc_status_is_ok(
		          &(status = zrpc_descriptor_pool_new(&pool))) &&
		        zrpc_status_is_ok(
		            &(status = zrpc_descriptor_pool_add_service(
		                  pool, &zrpc_v1_health_service))) &&
		        zrpc_status_is_ok(
		            &(status = zrpc_descriptor_pool_find_method(
		                  pool, "/zrpc.v1.Health/Check", &method))) &&
		        method->input->sizeof_message ==
		            sizeof(Zrpc__V1__HealthCheckRequest),
		    "zrpc_descriptor_pool_find_method");
		zrpc_descriptor_pool_free(pool);
	}
	check(zrpc_histogram_create(&h, 5) == 0, "zrpc_histogram_create");
	zrpc_histogram_record(h, zrpc_now_ns() % 1000 + 1);
	check(zrpc_histogram_count(h) == 1, "zrpc_histogram_count");
	zrpc_histogram_destroy(h);

	check(zrpc_metadata_get(nullptr, "x-request-id") == nullptr,
	    "zrpc_metadata_get");
	check(std::strcmp(zrpc_v1_health_methods[0].path,
	          "/zrpc.v1.Health/Check") == 0,
	    "generated method table");

	/* The generated handler table takes a C++ function. */
	struct zrpc_v1_health_handlers handlers = {};
	handlers.check                          = cxx_check;
	check(handlers.check != nullptr, "handler table");

	/* A built-in Health check through the generated stub. */
	zrpc_server_config config = {};
	zrpc_server       *server = nullptr;
	zrpc_client       *client = nullptr;
	config.log                = cxx_log;
	status                    = zrpc_server_create(&server, &config);
	check(zrpc_status_is_ok(&status), "zrpc_server_create");
	if (zrpc_status_is_ok(&status)) {
		status =
		    zrpc_server_listen(server, "inproc://zrpc-cxx-headers");
		check(zrpc_status_is_ok(&status), "zrpc_server_listen");
		status = zrpc_server_start(server);
		check(zrpc_status_is_ok(&status), "zrpc_server_start");
		status = zrpc_client_open(
		    &client, "inproc://zrpc-cxx-headers", nullptr);
		check(zrpc_status_is_ok(&status), "zrpc_client_open");
	}
	if (client != nullptr) {
		Zrpc__V1__HealthCheckRequest request =
		    ZRPC__V1__HEALTH_CHECK_REQUEST__INIT;
		Zrpc__V1__HealthCheckResponse *reply    = nullptr;
		struct zrpc_metadata          *metadata = nullptr;
		zrpc_call_opts                 opts     = {};

		opts.timeout_ms     = 10000;
		opts.reply_metadata = &metadata;
		request.service     = const_cast<char *>("");
		status = zrpc_v1_health_check(client, &request, &reply, &opts);
		check(zrpc_status_is_ok(&status), status.message);
		check(reply != nullptr &&
		        reply->status ==
		            ZRPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING,
		    "Health/Check answers SERVING");
		check(zrpc_metadata_get(metadata, "x-request-id") != nullptr,
		    "the reply carries x-request-id");
		zrpc_metadata_free(metadata);
		if (reply != nullptr) {
			zrpc__v1__health_check_response__free_unpacked(
			    reply, nullptr);
		}
	}
	zrpc_client_close(client);
	zrpc_server_destroy(server);

	if (failures == 0) {
		std::printf("cxx-headers: ok\n");
	}
	return failures == 0 ? 0 : 1;
}
