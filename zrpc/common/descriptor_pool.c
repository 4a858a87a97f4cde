/*
 * descriptor_pool: files and symbols; the lookups of zrpc/descriptor.h.
 *
 * Adding a file does the checks that need only the file itself: that the
 * bytes unpack as a FileDescriptorProto, that every element has a name,
 * that field numbers are valid and unique, that labels, types and oneof
 * indices are in range, that nothing protobuf-c cannot represent (a
 * group) is there, and that no symbol is defined twice in the pool. Only
 * then are its symbols entered, so a file that fails leaves the pool as
 * it was. What needs other files (imports, field types) waits for a
 * lookup, because files may arrive in any order; descriptor_build.c does
 * that part.
 *
 * The symbol table is open addressing on an FNV-1a hash of the full name;
 * everything the pool hands out lives in its arena, a list of chunks
 * freed together.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor_pool.h"

/* Deepest nesting of message types accepted (protoc has no limit). */
#define POOL_MAX_NESTING 64

/* Largest field number (2^29 - 1). */
#define POOL_MAX_FIELD_NUMBER 536870911

/* Smallest arena chunk. */
#define POOL_CHUNK_SIZE 16384

/* ---- arena ---- */

void *
zrpc_dpool_alloc(zrpc_descriptor_pool *pool, size_t size)
{
	struct pool_chunk *chunk = pool->arena;
	size_t             align = sizeof(max_align_t);
	void              *p;

	size = (size + align - 1) / align * align;
	if (size == 0) {
		size = align;
	}
	if (chunk == NULL || chunk->size - chunk->used < size) {
		size_t want = size > POOL_CHUNK_SIZE ? size : POOL_CHUNK_SIZE;

		if ((chunk = malloc(sizeof(*chunk) + want)) == NULL) {
			return NULL;
		}
		chunk->size = want;
		chunk->used = 0;
		chunk->next = pool->arena;
		pool->arena = chunk;
	}
	p = (char *) chunk->data + chunk->used;
	chunk->used += size;
	memset(p, 0, size);
	return p;
}

char *
zrpc_dpool_strndup(zrpc_descriptor_pool *pool, const char *s, size_t len)
{
	char *copy = zrpc_dpool_alloc(pool, len + 1);

	if (copy != NULL) {
		memcpy(copy, s, len);
		copy[len] = '\0';
	}
	return copy;
}

/* ---- symbol table ---- */

/* The character of NAME at I, a '/' at DOT_AT read as a '.'. */
static char
pool_name_char(const char *name, size_t i, size_t dot_at)
{
	return i == dot_at ? '.' : name[i];
}

/* FNV-1a of NAME, the character at DOT_AT read as a '.'. */
static uint64_t
pool_hash(const char *name, size_t dot_at)
{
	uint64_t h = 14695981039346656037u;

	for (size_t i = 0; name[i] != '\0'; i++) {
		h ^= (unsigned char) pool_name_char(name, i, dot_at);
		h *= 1099511628211u;
	}
	return h;
}

/* True when the symbol name FULL is NAME, read as pool_hash does. */
static bool
pool_name_equal(const char *full, const char *name, size_t dot_at)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		if (full[i] != pool_name_char(name, i, dot_at)) {
			return false;
		}
	}
	return full[i] == '\0';
}

/* The symbol named NAME (its character at DOT_AT read as '.'), or NULL. */
static struct pool_symbol *
pool_lookup_at(
    const zrpc_descriptor_pool *pool, const char *name, size_t dot_at)
{
	size_t mask;
	size_t i;

	if (pool->table_cap == 0) {
		return NULL;
	}
	mask = pool->table_cap - 1;
	for (i = pool_hash(name, dot_at) & mask; pool->table[i] != NULL;
	     i = (i + 1) & mask) {
		if (pool_name_equal(pool->table[i]->name, name, dot_at)) {
			return pool->table[i];
		}
	}
	return NULL;
}

struct pool_symbol *
zrpc_dpool_lookup(const zrpc_descriptor_pool *pool, const char *name)
{
	return pool_lookup_at(pool, name, SIZE_MAX);
}

/* Enters SYM, whose name is not in the table; room was reserved. */
static void
pool_table_put(struct pool_symbol **table, size_t cap, struct pool_symbol *sym)
{
	size_t mask = cap - 1;
	size_t i;

	for (i = pool_hash(sym->name, SIZE_MAX) & mask; table[i] != NULL;
	     i = (i + 1) & mask) { }
	table[i] = sym;
}

/*
 * Makes room for N more symbols (the table stays at most half full).
 * Returns false when memory runs out.
 */
static bool
pool_table_reserve(zrpc_descriptor_pool *pool, size_t n)
{
	struct pool_symbol **table;
	size_t               cap = pool->table_cap != 0 ? pool->table_cap : 64;

	if (n > SIZE_MAX / 4 - pool->n_symbols) {
		return false;
	}
	while (cap < 2 * (pool->n_symbols + n)) {
		cap *= 2;
	}
	if (cap == pool->table_cap) {
		return true;
	}
	if ((table = calloc(cap, sizeof(table[0]))) == NULL) {
		return false;
	}
	for (size_t i = 0; i < pool->table_cap; i++) {
		if (pool->table[i] != NULL) {
			pool_table_put(table, cap, pool->table[i]);
		}
	}
	free(pool->table);
	pool->table     = table;
	pool->table_cap = cap;
	return true;
}

/* ---- pool ---- */

zrpc_status
zrpc_descriptor_pool_new(zrpc_descriptor_pool **out)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	return zrpc_status_ok();
}

void
zrpc_descriptor_pool_free(zrpc_descriptor_pool *pool)
{
	struct pool_chunk *chunk;

	if (pool == NULL) {
		return;
	}
	for (size_t i = 0; i < pool->n_files; i++) {
		struct pool_file *file = pool->files[i];

		google__protobuf__file_descriptor_proto__free_unpacked(
		    file->proto, NULL);
		free(file->owned);
		free(file);
	}
	free(pool->files);
	free(pool->table);
	while ((chunk = pool->arena) != NULL) {
		pool->arena = chunk->next;
		free(chunk);
	}
	free(pool);
}

struct pool_file *
zrpc_dpool_find_file(const zrpc_descriptor_pool *pool, const char *name)
{
	for (size_t i = 0; i < pool->n_files; i++) {
		if (strcmp(pool->files[i]->name, name) == 0) {
			return pool->files[i];
		}
	}
	return NULL;
}

/* ---- checks of one file ---- */

/* What a check of one file carries: the file, for messages. */
struct pool_check {
	const Google__Protobuf__FileDescriptorProto *proto;
	zrpc_status                                  status;
};

/* Records the first problem. Returns false, for `return pool_bad(...)`. */
static bool pool_bad(struct pool_check *check, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool
pool_bad(struct pool_check *check, const char *fmt, ...)
{
	char    text[ZRPC_STATUS_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	check->status = zrpc_status_make(
	    ZRPC_INVALID_ARGUMENT, "%s: %s", check->proto->name, text);
	return false;
}

/* True when S is a usable name: present, not empty, no NUL inside. */
static bool
pool_name_ok(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static int
pool_compare_int(const void *a, const void *b)
{
	int32_t x = *(const int32_t *) a;
	int32_t y = *(const int32_t *) b;

	return (x > y) - (x < y);
}

/* Checks the enum E. */
static bool
pool_check_enum(
    struct pool_check *check, const Google__Protobuf__EnumDescriptorProto *e)
{
	if (!pool_name_ok(e->name)) {
		return pool_bad(check, "an enum has no name");
	}
	if (e->n_value == 0) {
		return pool_bad(check, "enum %s has no values", e->name);
	}
	for (size_t i = 0; i < e->n_value; i++) {
		if (!pool_name_ok(e->value[i]->name)) {
			return pool_bad(
			    check, "enum %s: a value has no name", e->name);
		}
	}
	return true;
}

/* Checks the message M, nested DEPTH deep, and its nested types. */
static bool
pool_check_message(struct pool_check        *check,
    const Google__Protobuf__DescriptorProto *m, unsigned depth)
{
	int32_t *numbers;

	if (!pool_name_ok(m->name)) {
		return pool_bad(check, "a message has no name");
	}
	if (depth > POOL_MAX_NESTING) {
		return pool_bad(check,
		    "message %s: types nested more than %d deep", m->name,
		    POOL_MAX_NESTING);
	}
	for (size_t i = 0; i < m->n_oneof_decl; i++) {
		if (!pool_name_ok(m->oneof_decl[i]->name)) {
			return pool_bad(
			    check, "message %s: a oneof has no name", m->name);
		}
	}
	for (size_t i = 0; i < m->n_field; i++) {
		const Google__Protobuf__FieldDescriptorProto *f = m->field[i];

		if (!pool_name_ok(f->name)) {
			return pool_bad(
			    check, "message %s: a field has no name", m->name);
		}
		if (!f->has_number || f->number < 1 ||
		    f->number > POOL_MAX_FIELD_NUMBER) {
			return pool_bad(check,
			    "message %s: field %s: number %d is out of range",
			    m->name, f->name, f->number);
		}
		if (!f->has_label || f->label < 1 || f->label > 3) {
			return pool_bad(check,
			    "message %s: field %s: no valid label", m->name,
			    f->name);
		}
		if (f->has_type && (f->type < 1 || f->type > 18)) {
			return pool_bad(check,
			    "message %s: field %s: type %d is not a type",
			    m->name, f->name, (int) f->type);
		}
		if (f->has_type &&
		    f->type ==
		        GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP) {
			return pool_bad(check,
			    "message %s: field %s: groups are not supported",
			    m->name, f->name);
		}
		if ((!f->has_type ||
		        f->type ==
		            GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
		        f->type ==
		            GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM) &&
		    !pool_name_ok(f->type_name)) {
			return pool_bad(check,
			    "message %s: field %s: no type name", m->name,
			    f->name);
		}
		if (f->has_oneof_index &&
		    (f->oneof_index < 0 ||
		        (size_t) f->oneof_index >= m->n_oneof_decl)) {
			return pool_bad(check,
			    "message %s: field %s: oneof index %d is out of "
			    "range",
			    m->name, f->name, f->oneof_index);
		}
		if (f->has_oneof_index &&
		    f->label ==
		        GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED) {
			return pool_bad(check,
			    "message %s: field %s: a oneof member cannot be "
			    "repeated",
			    m->name, f->name);
		}
	}
	if (m->n_field > 1) {
		if ((numbers = calloc(m->n_field, sizeof(numbers[0]))) ==
		    NULL) {
			check->status = zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
			return false;
		}
		for (size_t i = 0; i < m->n_field; i++) {
			numbers[i] = m->field[i]->number;
		}
		qsort(
		    numbers, m->n_field, sizeof(numbers[0]), pool_compare_int);
		for (size_t i = 1; i < m->n_field; i++) {
			if (numbers[i] == numbers[i - 1]) {
				int32_t n = numbers[i];

				free(numbers);
				return pool_bad(check,
				    "message %s: field number %d is used "
				    "twice",
				    m->name, n);
			}
		}
		free(numbers);
	}
	for (size_t i = 0; i < m->n_nested_type; i++) {
		if (!pool_check_message(check, m->nested_type[i], depth + 1)) {
			return false;
		}
	}
	for (size_t i = 0; i < m->n_enum_type; i++) {
		if (!pool_check_enum(check, m->enum_type[i])) {
			return false;
		}
	}
	return true;
}

/* Checks FILE as a whole. */
static bool
pool_check_file(struct pool_check *check)
{
	const Google__Protobuf__FileDescriptorProto *file = check->proto;

	for (size_t i = 0; i < file->n_dependency; i++) {
		if (!pool_name_ok(file->dependency[i])) {
			return pool_bad(check, "an import has no name");
		}
	}
	for (size_t i = 0; i < file->n_message_type; i++) {
		if (!pool_check_message(check, file->message_type[i], 0)) {
			return false;
		}
	}
	for (size_t i = 0; i < file->n_enum_type; i++) {
		if (!pool_check_enum(check, file->enum_type[i])) {
			return false;
		}
	}
	for (size_t i = 0; i < file->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *s =
		    file->service[i];

		if (!pool_name_ok(s->name)) {
			return pool_bad(check, "a service has no name");
		}
		for (size_t j = 0; j < s->n_method; j++) {
			const Google__Protobuf__MethodDescriptorProto *m =
			    s->method[j];

			if (!pool_name_ok(m->name) ||
			    !pool_name_ok(m->input_type) ||
			    !pool_name_ok(m->output_type)) {
				return pool_bad(check,
				    "service %s: a method has no name, input "
				    "or output type",
				    s->name);
			}
		}
	}
	return true;
}

/* ---- symbols of one file ---- */

/* The symbols of a file being added, before they enter the table. */
struct pool_new_symbols {
	struct pool_symbol **symbols;
	size_t               n;
	size_t               cap;
};

/*
 * Creates a symbol SCOPE.NAME (NAME alone when SCOPE is "") and appends it
 * to LIST. Returns it, or NULL when memory runs out.
 */
static struct pool_symbol *
pool_new_symbol(zrpc_descriptor_pool *pool, struct pool_new_symbols *list,
    struct pool_file *file, const char *scope, const char *name,
    enum pool_kind kind, const void *proto)
{
	struct pool_symbol *sym;
	size_t              scope_len = strlen(scope);
	size_t              name_len  = strlen(name);
	char               *full;

	if (list->n == list->cap) {
		size_t               cap = list->cap != 0 ? list->cap * 2 : 32;
		struct pool_symbol **grown =
		    reallocarray(list->symbols, cap, sizeof(grown[0]));

		if (grown == NULL) {
			return NULL;
		}
		list->symbols = grown;
		list->cap     = cap;
	}
	sym  = zrpc_dpool_alloc(pool, sizeof(*sym));
	full = zrpc_dpool_alloc(pool, scope_len + name_len + 2);
	if (sym == NULL || full == NULL) {
		return NULL;
	}
	if (scope_len > 0) {
		memcpy(full, scope, scope_len);
		full[scope_len++] = '.';
	}
	memcpy(full + scope_len, name, name_len + 1);
	sym->name                = full;
	sym->kind                = kind;
	sym->file                = file;
	sym->proto               = proto;
	list->symbols[list->n++] = sym;
	return sym;
}

/* Collects the message M, in SCOPE, and its nested types. */
static bool
pool_collect_message(zrpc_descriptor_pool *pool, struct pool_new_symbols *list,
    struct pool_file *file, const char *scope,
    const Google__Protobuf__DescriptorProto *m)
{
	struct pool_symbol *sym =
	    pool_new_symbol(pool, list, file, scope, m->name, POOL_MESSAGE, m);

	if (sym == NULL) {
		return false;
	}
	for (size_t i = 0; i < m->n_nested_type; i++) {
		if (!pool_collect_message(
		        pool, list, file, sym->name, m->nested_type[i])) {
			return false;
		}
	}
	for (size_t i = 0; i < m->n_enum_type; i++) {
		if (pool_new_symbol(pool, list, file, sym->name,
		        m->enum_type[i]->name, POOL_ENUM,
		        m->enum_type[i]) == NULL) {
			return false;
		}
	}
	return true;
}

/* Collects every symbol of FILE into LIST. */
static bool
pool_collect_file(zrpc_descriptor_pool *pool, struct pool_new_symbols *list,
    struct pool_file *file)
{
	const Google__Protobuf__FileDescriptorProto *proto = file->proto;

	for (size_t i = 0; i < proto->n_message_type; i++) {
		if (!pool_collect_message(pool, list, file, file->package,
		        proto->message_type[i])) {
			return false;
		}
	}
	for (size_t i = 0; i < proto->n_enum_type; i++) {
		if (pool_new_symbol(pool, list, file, file->package,
		        proto->enum_type[i]->name, POOL_ENUM,
		        proto->enum_type[i]) == NULL) {
			return false;
		}
	}
	for (size_t i = 0; i < proto->n_service; i++) {
		const Google__Protobuf__ServiceDescriptorProto *s =
		    proto->service[i];
		struct pool_symbol *service = pool_new_symbol(
		    pool, list, file, file->package, s->name, POOL_SERVICE, s);

		if (service == NULL) {
			return false;
		}
		for (size_t j = 0; j < s->n_method; j++) {
			struct pool_symbol *method =
			    pool_new_symbol(pool, list, file, service->name,
			        s->method[j]->name, POOL_METHOD, s->method[j]);

			if (method == NULL) {
				return false;
			}
			method->parent = service;
		}
	}
	return true;
}

static int
pool_compare_symbols(const void *a, const void *b)
{
	const struct pool_symbol *const *x = a;
	const struct pool_symbol *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* ---- adding files ---- */

/*
 * Adds the file PROTO (taken: freed on failure) whose bytes are DATA
 * (LEN; OWNED is DATA when the pool must free it, taken too).
 */
static zrpc_status
pool_add_proto(zrpc_descriptor_pool       *pool,
    Google__Protobuf__FileDescriptorProto *proto, const uint8_t *data,
    size_t len, uint8_t *owned)
{
	struct pool_new_symbols list  = { 0 };
	struct pool_check       check = { .proto = proto };
	struct pool_file       *file  = NULL;
	zrpc_status             status;

	if (!pool_name_ok(proto->name)) {
		status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "a file descriptor without a file name");
		goto fail;
	}
	if (zrpc_dpool_find_file(pool, proto->name) != NULL) {
		status = zrpc_status_ok();
		goto fail; /* already there: skipped */
	}
	if (!pool_check_file(&check)) {
		status = check.status;
		goto fail;
	}
	if (pool->n_files == pool->files_cap) {
		size_t cap = pool->files_cap != 0 ? pool->files_cap * 2 : 8;
		struct pool_file **grown =
		    reallocarray(pool->files, cap, sizeof(grown[0]));

		if (grown == NULL) {
			goto oom;
		}
		pool->files     = grown;
		pool->files_cap = cap;
	}
	if ((file = calloc(1, sizeof(*file))) == NULL) {
		goto oom;
	}
	file->name    = proto->name;
	file->data    = data;
	file->len     = len;
	file->owned   = owned;
	file->proto   = proto;
	file->package = proto->package != NULL ? proto->package : "";
	file->proto3 =
	    proto->syntax != NULL && strcmp(proto->syntax, "proto3") == 0;
	if (!pool_collect_file(pool, &list, file)) {
		goto oom;
	}
	/* No symbol twice, in the file or in the pool. */
	if (list.n > 1) {
		qsort(list.symbols, list.n, sizeof(list.symbols[0]),
		    pool_compare_symbols);
	}
	for (size_t i = 0; i < list.n; i++) {
		const struct pool_symbol *old =
		    zrpc_dpool_lookup(pool, list.symbols[i]->name);

		if (old != NULL ||
		    (i > 0 &&
		        strcmp(list.symbols[i]->name,
		            list.symbols[i - 1]->name) == 0)) {
			status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
			    "%s: %s is already defined%s%s", proto->name,
			    list.symbols[i]->name, old != NULL ? " in " : "",
			    old != NULL ? old->file->name : "");
			goto fail;
		}
	}
	if (!pool_table_reserve(pool, list.n)) {
		goto oom;
	}
	for (size_t i = 0; i < list.n; i++) {
		pool_table_put(pool->table, pool->table_cap, list.symbols[i]);
	}
	pool->n_symbols += list.n;
	pool->files[pool->n_files++] = file;
	pool->services               = NULL; /* the list changes */
	free(list.symbols);
	return zrpc_status_ok();

oom:
	status = zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "out of memory");
fail:
	free(list.symbols);
	free(file);
	google__protobuf__file_descriptor_proto__free_unpacked(proto, NULL);
	free(owned);
	return status;
}

/*
 * protobuf-c's allocator, which says when it failed (*DATA, a bool), so
 * that an unpack that ran out of memory is not taken for bad bytes. The
 * blocks are malloc's: free_unpacked with the default allocator frees
 * them.
 */
static void *
pool_unpack_alloc(void *data, size_t size)
{
	void *p = malloc(size);

	if (p == NULL) {
		*(bool *) data = true;
	}
	return p;
}

static void
pool_unpack_free(void *data, void *p)
{
	(void) data;
	free(p);
}

/*
 * Adds the file in DATA (LEN bytes), copying the bytes when COPY.
 */
static zrpc_status
pool_add_bytes(
    zrpc_descriptor_pool *pool, const uint8_t *data, size_t len, bool copy)
{
	Google__Protobuf__FileDescriptorProto *proto;
	uint8_t                               *owned         = NULL;
	bool                                   out_of_memory = false;
	ProtobufCAllocator                     allocator     = {
		                        .alloc          = pool_unpack_alloc,
		                        .free           = pool_unpack_free,
		                        .allocator_data = &out_of_memory,
	};

	if (data == NULL && len > 0) {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "no file descriptor bytes");
	}
	proto = google__protobuf__file_descriptor_proto__unpack(
	    &allocator, len, data);
	if (proto == NULL && out_of_memory) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (proto == NULL) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "%zu bytes that are not a google.protobuf."
		    "FileDescriptorProto",
		    len);
	}
	if (proto->name != NULL &&
	    zrpc_dpool_find_file(pool, proto->name) != NULL) {
		google__protobuf__file_descriptor_proto__free_unpacked(
		    proto, NULL);
		return zrpc_status_ok();
	}
	if (copy) {
		if ((owned = malloc(len != 0 ? len : 1)) == NULL) {
			google__protobuf__file_descriptor_proto__free_unpacked(
			    proto, NULL);
			return zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		if (len > 0) {
			memcpy(owned, data, len);
		}
		data = owned;
	}
	return pool_add_proto(pool, proto, data, len, owned);
}

zrpc_status
zrpc_descriptor_pool_add_file(
    zrpc_descriptor_pool *pool, const uint8_t *data, size_t len)
{
	return pool_add_bytes(pool, data, len, true);
}

/*
 * FileDescriptorSet is `repeated FileDescriptorProto file = 1`: the set is
 * walked as wire format, so that each file keeps its own bytes (what
 * reflection hands out) without packing it again.
 */
zrpc_status
zrpc_descriptor_pool_add_set(
    zrpc_descriptor_pool *pool, const uint8_t *data, size_t len)
{
	size_t pos = 0;

	if (data == NULL && len > 0) {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "no descriptor set bytes");
	}
	while (pos < len) {
		uint64_t    key  = 0;
		uint64_t    size = 0;
		unsigned    shift;
		zrpc_status status;

		for (shift = 0;; shift += 7) {
			if (pos >= len || shift > 63) {
				goto bad;
			}
			key |= (uint64_t) (data[pos] & 0x7f) << shift;
			if ((data[pos++] & 0x80) == 0) {
				break;
			}
		}
		if (key != ((1 << 3) | PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)) {
			goto bad;
		}
		for (shift = 0;; shift += 7) {
			if (pos >= len || shift > 63) {
				goto bad;
			}
			size |= (uint64_t) (data[pos] & 0x7f) << shift;
			if ((data[pos++] & 0x80) == 0) {
				break;
			}
		}
		if (size > len - pos) {
			goto bad;
		}
		status = pool_add_bytes(pool, data + pos, (size_t) size, true);
		if (!zrpc_status_is_ok(&status)) {
			return status;
		}
		pos += (size_t) size;
	}
	return zrpc_status_ok();

bad:
	return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
	    "malformed google.protobuf.FileDescriptorSet at byte %zu", pos);
}

zrpc_status
zrpc_descriptor_pool_add_embedded(
    zrpc_descriptor_pool *pool, const struct zrpc_file_descriptor *file)
{
	zrpc_status status;

	if (file == NULL) {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "no embedded file descriptor");
	}
	if (file->name != NULL &&
	    zrpc_dpool_find_file(pool, file->name) != NULL) {
		return zrpc_status_ok(); /* and so are its imports */
	}
	/* Imports form a DAG of const data, no deeper than its size. */
	for (size_t i = 0; i < file->n_deps; i++) {
		status =
		    zrpc_descriptor_pool_add_embedded(pool, file->deps[i]);
		if (!zrpc_status_is_ok(&status)) {
			return status;
		}
	}
	return pool_add_bytes(pool, file->data, file->len, false);
}

zrpc_status
zrpc_descriptor_pool_add_service(
    zrpc_descriptor_pool *pool, const struct zrpc_service_desc *service)
{
	if (service->file == NULL) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "service %s has no embedded descriptor (generate it with "
		    "protoc-gen-zrpc)",
		    service->name);
	}
	return zrpc_descriptor_pool_add_embedded(pool, service->file);
}

/* ---- lookups ---- */

zrpc_status
zrpc_dpool_check_imports(zrpc_descriptor_pool *pool, struct pool_file *file)
{
	struct pool_file **stack;
	bool              *seen;
	size_t             n      = 0;
	zrpc_status        status = zrpc_status_ok();

	if (file->imports_ok) {
		return status;
	}
	/* Depth first; SEEN marks, by index, the files already pushed. */
	stack = calloc(pool->n_files, sizeof(stack[0]));
	seen  = calloc(pool->n_files, sizeof(seen[0]));
	if (stack == NULL || seen == NULL) {
		status =
		    zrpc_status_make(ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < pool->n_files; i++) {
		seen[i] = pool->files[i] == file;
	}
	stack[n++] = file;
	while (n > 0) {
		struct pool_file *f = stack[--n];

		for (size_t i = 0; i < f->proto->n_dependency; i++) {
			const char *name  = f->proto->dependency[i];
			size_t      index = 0;

			while (index < pool->n_files &&
			    strcmp(pool->files[index]->name, name) != 0) {
				index++;
			}
			if (index == pool->n_files) {
				status =
				    zrpc_status_make(ZRPC_FAILED_PRECONDITION,
				        "%s imports %s, which is not in the "
				        "descriptor pool",
				        f->name, name);
				goto done;
			}
			if (!seen[index] && !pool->files[index]->imports_ok) {
				seen[index] = true;
				stack[n++]  = pool->files[index];
			}
		}
	}
	file->imports_ok = true;
done:
	free(seen);
	free(stack);
	return status;
}

/* True when FULL is SCOPE (its first SCOPE_LEN bytes) "." NAME. */
static bool
pool_scoped_equal(
    const char *full, const char *scope, size_t scope_len, const char *name)
{
	if (scope_len > 0) {
		if (strncmp(full, scope, scope_len) != 0 ||
		    full[scope_len] != '.') {
			return false;
		}
		full += scope_len + 1;
	}
	return strcmp(full, name) == 0;
}

/*
 * protoc writes every type name fully qualified (".pkg.Msg"): that is one
 * lookup. A relative name (a descriptor made by other means) is tried in
 * each enclosing scope by scanning the table, which allocates nothing.
 */
struct pool_symbol *
zrpc_dpool_resolve(
    const zrpc_descriptor_pool *pool, const char *scope, const char *type_name)
{
	size_t scope_len;

	if (type_name[0] == '.') {
		return zrpc_dpool_lookup(pool, type_name + 1);
	}
	scope_len = strlen(scope);
	for (;;) {
		for (size_t i = 0; i < pool->table_cap; i++) {
			if (pool->table[i] != NULL &&
			    pool_scoped_equal(pool->table[i]->name, scope,
			        scope_len, type_name)) {
				return pool->table[i];
			}
		}
		if (scope_len == 0) {
			return NULL;
		}
		while (scope_len > 0 && scope[scope_len - 1] != '.') {
			scope_len--;
		}
		if (scope_len > 0) {
			scope_len--; /* the dot */
		}
	}
}

struct pool_symbol *
zrpc_dpool_lookup_any(const zrpc_descriptor_pool *pool, const char *symbol)
{
	struct pool_symbol *sym;
	const char         *slash;

	if (symbol[0] == '/' || symbol[0] == '.') {
		symbol++;
	}
	if ((slash = strrchr(symbol, '/')) == NULL) {
		return zrpc_dpool_lookup(pool, symbol);
	}
	/* "pkg.Svc/M" is the method "pkg.Svc.M": no copy to make. */
	sym = pool_lookup_at(pool, symbol, (size_t) (slash - symbol));
	return sym != NULL && sym->kind == POOL_METHOD ? sym : NULL;
}

/* The kind of symbol KIND in words, for NOT_FOUND messages. */
static const char *
pool_kind_name(enum pool_kind kind)
{
	switch (kind) {
	case POOL_MESSAGE:
		return "message";
	case POOL_ENUM:
		return "enum";
	case POOL_SERVICE:
		return "service";
	case POOL_METHOD:
		return "method";
	}
	return "symbol";
}

/* Finds NAME as a symbol of KIND and builds it into *OUT. */
static zrpc_status
pool_find_kind(zrpc_descriptor_pool *pool, const char *name,
    enum pool_kind kind, void **out)
{
	struct pool_symbol *sym;

	*out = NULL;
	if (name == NULL) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT, "no name");
	}
	sym = kind == POOL_METHOD
	    ? zrpc_dpool_lookup_any(pool, name)
	    : zrpc_dpool_lookup(pool, name[0] == '.' ? name + 1 : name);
	if (sym == NULL || sym->kind != kind) {
		return zrpc_status_make(ZRPC_NOT_FOUND, "%s %s not found",
		    pool_kind_name(kind), name);
	}
	return zrpc_dpool_build(pool, sym, out);
}

zrpc_status
zrpc_descriptor_pool_find_message(zrpc_descriptor_pool *pool, const char *name,
    const ProtobufCMessageDescriptor **out)
{
	void       *built;
	zrpc_status status = pool_find_kind(pool, name, POOL_MESSAGE, &built);

	*out = built;
	return status;
}

zrpc_status
zrpc_descriptor_pool_find_enum(zrpc_descriptor_pool *pool, const char *name,
    const ProtobufCEnumDescriptor **out)
{
	void       *built;
	zrpc_status status = pool_find_kind(pool, name, POOL_ENUM, &built);

	*out = built;
	return status;
}

zrpc_status
zrpc_descriptor_pool_find_service(zrpc_descriptor_pool *pool, const char *name,
    const ProtobufCServiceDescriptor **out)
{
	void       *built;
	zrpc_status status = pool_find_kind(pool, name, POOL_SERVICE, &built);

	*out = built;
	return status;
}

zrpc_status
zrpc_descriptor_pool_find_method(zrpc_descriptor_pool *pool, const char *name,
    const struct zrpc_method **out)
{
	void       *built;
	zrpc_status status = pool_find_kind(pool, name, POOL_METHOD, &built);

	*out = built;
	return status;
}

static int
pool_compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

zrpc_status
zrpc_descriptor_pool_services(
    zrpc_descriptor_pool *pool, const char *const **names, size_t *n)
{
	if (pool->services == NULL) {
		size_t       count = 0;
		const char **list;

		for (size_t i = 0; i < pool->table_cap; i++) {
			if (pool->table[i] != NULL &&
			    pool->table[i]->kind == POOL_SERVICE) {
				count++;
			}
		}
		if ((list = zrpc_dpool_alloc(
		         pool, (count + 1) * sizeof(*list))) == NULL) {
			return zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
		}
		count = 0;
		for (size_t i = 0; i < pool->table_cap; i++) {
			if (pool->table[i] != NULL &&
			    pool->table[i]->kind == POOL_SERVICE) {
				list[count++] = pool->table[i]->name;
			}
		}
		if (count > 1) {
			qsort(
			    list, count, sizeof(*list), pool_compare_strings);
		}
		pool->services   = list;
		pool->n_services = count;
	}
	*names = pool->services;
	*n     = pool->n_services;
	return zrpc_status_ok();
}

zrpc_status
zrpc_descriptor_pool_file_closure(zrpc_descriptor_pool *pool,
    const char *symbol, ProtobufCBinaryData **files, size_t *n)
{
	struct pool_file    *file;
	struct pool_file   **order;
	ProtobufCBinaryData *out;
	size_t               count = 0;
	zrpc_status          status;

	*files = NULL;
	*n     = 0;
	if (symbol == NULL) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT, "no symbol");
	}
	if ((file = zrpc_dpool_find_file(pool, symbol)) == NULL) {
		struct pool_symbol *sym = zrpc_dpool_lookup_any(pool, symbol);

		if (sym == NULL) {
			return zrpc_status_make(
			    ZRPC_NOT_FOUND, "symbol %s not found", symbol);
		}
		file = sym->file;
	}
	status = zrpc_dpool_check_imports(pool, file);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	order = calloc(pool->n_files, sizeof(order[0]));
	out   = calloc(pool->n_files, sizeof(out[0]));
	if (order == NULL || out == NULL) {
		free(order);
		free(out);
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	/* Breadth first from FILE: each file once, FILE first. */
	order[count++] = file;
	for (size_t i = 0; i < count; i++) {
		const Google__Protobuf__FileDescriptorProto *proto =
		    order[i]->proto;

		for (size_t d = 0; d < proto->n_dependency; d++) {
			struct pool_file *dep =
			    zrpc_dpool_find_file(pool, proto->dependency[d]);
			size_t j;

			for (j = 0; j < count && order[j] != dep; j++) { }
			if (j == count && dep != NULL) {
				order[count++] = dep;
			}
		}
	}
	for (size_t i = 0; i < count; i++) {
		out[i].data = (uint8_t *) order[i]->data;
		out[i].len  = order[i]->len;
	}
	free(order);
	*files = out;
	*n     = count;
	return zrpc_status_ok();
}

/* ---- the role option, message init ---- */

/* zrpc.v1.role: `extend google.protobuf.MethodOptions { string role =
 * 50711; }` (zrpc/v1/options.proto), among the unknown fields. */
#define POOL_ROLE_EXTENSION 50711

enum zrpc_role
zrpc_dpool_method_role(
    const Google__Protobuf__MethodOptions *options, const char **name)
{
	static const struct {
		const char    *name;
		enum zrpc_role role;
	} roles[] = {
		{ "read", ZRPC_ROLE_READ },
		{ "write", ZRPC_ROLE_WRITE },
		{ "admin", ZRPC_ROLE_ADMIN },
	};
	const ProtobufCMessage *message = (const ProtobufCMessage *) options;
	enum zrpc_role          role    = ZRPC_ROLE_NONE;

	*name = "";
	if (message == NULL) {
		return role;
	}
	for (unsigned i = 0; i < message->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *field =
		    &message->unknown_fields[i];
		const uint8_t *p    = field->data;
		size_t         left = field->len;
		uint64_t       size = 0;
		unsigned       shift;

		if (field->tag != POOL_ROLE_EXTENSION ||
		    field->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
			continue;
		}
		for (shift = 0; left > 0 && shift < 64; shift += 7) {
			left--;
			size |= (uint64_t) (*p & 0x7f) << shift;
			if ((*p++ & 0x80) == 0) {
				break;
			}
		}
		if (size > left) {
			continue;
		}
		role  = ZRPC_ROLE_NONE;
		*name = "";
		for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
			if (strlen(roles[r].name) == size &&
			    memcmp(roles[r].name, p, size) == 0) {
				role  = roles[r].role;
				*name = roles[r].name;
			}
		}
	}
	return role;
}

/*
 * As protobuf-c's own generic init (used by unpack when message_init is
 * NULL): zeroes, sets the descriptor, copies each default value in.
 */
void
zrpc_message_init(const ProtobufCMessageDescriptor *desc, void *message)
{
	ProtobufCMessage *m = message;

	if (desc->message_init != NULL) {
		desc->message_init(m);
		return;
	}
	memset(m, 0, desc->sizeof_message);
	m->descriptor = desc;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f     = &desc->fields[i];
		char                           *field = (char *) m + f->offset;

		if (f->default_value == NULL ||
		    f->label == PROTOBUF_C_LABEL_REPEATED) {
			continue;
		}
		switch (f->type) {
		case PROTOBUF_C_TYPE_INT32:
		case PROTOBUF_C_TYPE_SINT32:
		case PROTOBUF_C_TYPE_SFIXED32:
		case PROTOBUF_C_TYPE_UINT32:
		case PROTOBUF_C_TYPE_FIXED32:
		case PROTOBUF_C_TYPE_FLOAT:
		case PROTOBUF_C_TYPE_ENUM:
			memcpy(field, f->default_value, 4);
			break;
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
		case PROTOBUF_C_TYPE_DOUBLE:
			memcpy(field, f->default_value, 8);
			break;
		case PROTOBUF_C_TYPE_BOOL:
			memcpy(field, f->default_value,
			    sizeof(protobuf_c_boolean));
			break;
		case PROTOBUF_C_TYPE_BYTES:
			memcpy(field, f->default_value,
			    sizeof(ProtobufCBinaryData));
			break;
		case PROTOBUF_C_TYPE_STRING:
		case PROTOBUF_C_TYPE_MESSAGE:
			memcpy(field, &f->default_value, sizeof(void *));
			break;
		}
	}
}
