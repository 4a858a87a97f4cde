/*
 * The descriptor pool's insides, shared by its modules: descriptor_pool.c
 * (files, symbols, lookups), descriptor_build.c (protobuf-c structures
 * from the protos) and describe.c (.proto text). Not installed.
 *
 * A pool owns its files (each unpacked once with descriptor.pb-c) and a
 * table of symbols by full name. Everything a lookup builds is allocated
 * from the pool's arena and freed only with the pool, so a returned
 * pointer stays valid for the pool's lifetime.
 */
#ifndef ZRPC_DESCRIPTOR_POOL_H
#define ZRPC_DESCRIPTOR_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "zrpc/descriptor.h"

/* What a symbol names. */
enum pool_kind {
	POOL_MESSAGE,
	POOL_ENUM,
	POOL_SERVICE,
	POOL_METHOD,
};

/* One file of the pool. */
struct pool_file {
	const char    *name; /* the proto's name */
	const uint8_t *data; /* serialized FileDescriptorProto */
	size_t         len;
	uint8_t       *owned; /* data when the pool copied it, else NULL */
	Google__Protobuf__FileDescriptorProto *proto;
	const char                            *package; /* "" when none */
	bool                                   proto3;  /* syntax = "proto3" */
	bool imports_ok; /* every transitive import was found once */
};

/* One named type, service or method. */
struct pool_symbol {
	const char       *name; /* full name, no leading dot (arena) */
	enum pool_kind    kind;
	struct pool_file *file;
	/*
	 * DescriptorProto, EnumDescriptorProto, ServiceDescriptorProto or
	 * MethodDescriptorProto, inside FILE->proto.
	 */
	const void         *proto;
	struct pool_symbol *parent; /* a method's service; NULL otherwise */
	/*
	 * What was built, once a lookup asked: ProtobufCMessageDescriptor,
	 * ProtobufCEnumDescriptor, ProtobufCServiceDescriptor or struct
	 * zrpc_method. NULL until then.
	 */
	void *built;
};

/* One chunk of the arena. */
struct pool_chunk {
	struct pool_chunk *next;
	size_t             used;
	size_t             size;
	max_align_t        data[]; /* SIZE bytes */
};

struct zrpc_descriptor_pool {
	struct pool_file   **files;
	size_t               n_files;
	size_t               files_cap;
	struct pool_symbol **table; /* open addressing, TABLE_CAP slots */
	size_t               table_cap;
	size_t               n_symbols;
	struct pool_chunk   *arena;
	const char         **services; /* sorted names; NULL until asked */
	size_t               n_services;
};

/* Zeroed memory of SIZE bytes from POOL's arena, or NULL. */
void *zrpc_dpool_alloc(zrpc_descriptor_pool *pool, size_t size);

/* A copy of S (LEN bytes, NUL added) in POOL's arena, or NULL. */
char *zrpc_dpool_strndup(
    zrpc_descriptor_pool *pool, const char *s, size_t len);

/* The symbol named NAME (no leading dot), or NULL. */
struct pool_symbol *zrpc_dpool_lookup(
    const zrpc_descriptor_pool *pool, const char *name);

/* The file named NAME, or NULL. */
struct pool_file *zrpc_dpool_find_file(
    const zrpc_descriptor_pool *pool, const char *name);

/*
 * Resolves TYPE_NAME as protoc does from within SCOPE (a full name, ""
 * for the package root): ".a.B" is absolute; "B" is looked up in SCOPE,
 * then in each enclosing scope. Returns the symbol or NULL.
 */
struct pool_symbol *zrpc_dpool_resolve(const zrpc_descriptor_pool *pool,
    const char *scope, const char *type_name);

/*
 * Checks that every file FILE imports, directly or not, is in POOL.
 * FAILED_PRECONDITION naming the first missing import.
 */
zrpc_status zrpc_dpool_check_imports(
    zrpc_descriptor_pool *pool, struct pool_file *file);

/*
 * Builds (once) the protobuf-c descriptor of SYM, a message, enum or
 * service symbol, and of every type it reaches; *OUT is the descriptor.
 * Builds for a method symbol its struct zrpc_method. Statuses as the
 * lookups of zrpc/descriptor.h.
 */
zrpc_status zrpc_dpool_build(
    zrpc_descriptor_pool *pool, struct pool_symbol *sym, void **out);

/*
 * The symbol named by SYMBOL as the public lookups take it: a full name
 * with or without a leading dot, or a method as "/pkg.Svc/M" or
 * "pkg.Svc/M". NULL when there is none.
 */
struct pool_symbol *zrpc_dpool_lookup_any(
    const zrpc_descriptor_pool *pool, const char *symbol);

/*
 * The role named by option (zrpc.v1.role) in OPTIONS (NULL: none), as
 * protoc-gen-zrpc reads it; *NAME is "read", "write", "admin" or "".
 */
enum zrpc_role zrpc_dpool_method_role(
    const Google__Protobuf__MethodOptions *options, const char **name);

#endif /* ZRPC_DESCRIPTOR_POOL_H */
