/*
 * The methods the command-line tools know how to encode: every method of
 * the zos.v1 services and of zrpc.v1's built-in services, found by name.
 */
#ifndef ZOS_TOOLS_METHODS_H
#define ZOS_TOOLS_METHODS_H

#include <stddef.h>

#include "zrpc/service.h"

/*
 * The method named NAME: its wire name ("/zos.v1.Skills/Get"), or the same
 * without the leading slash, or with a dot before the method
 * ("zos.v1.Skills.Get"). NULL when no known service has it.
 */
const struct zrpc_method *zos_tools_find_method(const char *name);

/* The known services, for listings; *N receives their number. */
const struct zrpc_service_desc *const *zos_tools_services(size_t *n);

#endif /* ZOS_TOOLS_METHODS_H */
