/*
 * names: how protoc-gen-zrpc spells C identifiers.
 *
 * Two sets of rules live here. The generated code names protobuf-c's types
 * and descriptors, so those names must be spelled exactly as protoc-c 1.4
 * spells them (names_pbc_type, names_pbc_lower), including its `c_package`
 * file option. The zrpc names of services and methods follow our own,
 * friendlier rules (names_snake: "HTTPServer" -> "http_server").
 *
 * Every function that returns a char * returns a new string that the
 * caller frees, or NULL when memory runs out.
 */
#ifndef ZRPC_GEN_NAMES_H
#define ZRPC_GEN_NAMES_H

#include <stdbool.h>

/*
 * protoc-c's C type name of the message FULL_NAME ("zos.v1.Outer.Inner",
 * no leading dot) declared in a file of package PACKAGE ("" for none):
 * "Zos__V1__Outer__Inner". C_PACKAGE is the file's
 * `option (pb_c_file).c_package`, or NULL when it has none.
 */
char *names_pbc_type(
    const char *full_name, const char *package, const char *c_package);

/*
 * protoc-c's lower-case name of the same message, the stem of its
 * descriptor and functions: "zos__v1__outer__inner".
 */
char *names_pbc_lower(
    const char *full_name, const char *package, const char *c_package);

/*
 * NAME in snake_case: "ListServices" -> "list_services", "HTTPServer" ->
 * "http_server", "GetV2" -> "get_v2"; names that are snake_case already
 * are kept.
 */
char *names_snake(const char *name);

/*
 * The symbol prefix of a package: "zos.v1" -> "zos_v1" (dots become
 * underscores, letters lower-case). "" gives "".
 */
char *names_package_prefix(const char *package);

/*
 * True when NAME cannot be used as a plain identifier in C code: a C
 * keyword (C11 or C23) or a name that the C library or the compiler
 * defines as a macro (bool, errno, linux, ...).
 */
bool names_is_reserved(const char *name);

/*
 * An include guard for the file PATH: "zrpc/v1/health.zrpc.h" ->
 * "ZRPC_V1_HEALTH_ZRPC_H".
 */
char *names_include_guard(const char *path);

/*
 * PATH without its ".proto" suffix (protoc-c also strips ".protodevel"),
 * the stem of every generated file name.
 */
char *names_strip_proto(const char *path);

#endif /* ZRPC_GEN_NAMES_H */
