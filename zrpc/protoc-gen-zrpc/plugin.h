/*
 * plugin: turns protoc's CodeGeneratorRequest into a CodeGeneratorResponse.
 *
 * This is the generator without its I/O: main.c reads the request from
 * stdin and writes the response to stdout. For each file to generate that
 * declares services, the response gets "<stem>.zrpc.h" and
 * "<stem>.zrpc.c"; a file without services gets nothing. A file that
 * cannot be generated (a streaming method, a name collision, ...) sets
 * the response's error, which protoc prints before exiting non-zero.
 */
#ifndef ZRPC_GEN_PLUGIN_H
#define ZRPC_GEN_PLUGIN_H

#include "google/protobuf/compiler/plugin.pb-c.h"

/*
 * Fills RESPONSE (initialised by the caller with
 * GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT) for REQUEST.
 * Returns 0, also when RESPONSE->error reports a problem with the .proto
 * files, or ENOMEM. Either way, free what was added to RESPONSE with
 * plugin_response_finish.
 */
int plugin_generate(
    const Google__Protobuf__Compiler__CodeGeneratorRequest *request,
    Google__Protobuf__Compiler__CodeGeneratorResponse      *response);

/* Frees everything plugin_generate added to RESPONSE. */
void plugin_response_finish(
    Google__Protobuf__Compiler__CodeGeneratorResponse *response);

#endif /* ZRPC_GEN_PLUGIN_H */
