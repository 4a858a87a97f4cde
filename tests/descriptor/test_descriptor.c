/*
 * The descriptor pool (zrpc/descriptor.h): descriptors built at run time
 * from FileDescriptorProtos must be the ones protoc-c 1.4 compiles, field
 * for field and offset for offset, so that protobuf-c packs and unpacks
 * through either alike. Checked for every zos.v1 and zrpc.v1 message,
 * google/protobuf/descriptor.proto, and the zdesc.v1 test types (maps,
 * oneofs, proto3 optional, nesting, enums with aliases, proto2 defaults);
 * then reflection over a real server, and bad input.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "testserver.h"
#include "zdesc/v1/legacy.pb-c.h"
#include "zdesc/v1/types.zrpc.h"
#include "zos/v1/storage.pb-c.h"
#include "zos/v1/zos.zrpc.h"
#include "zrpc/descriptor.h"
#include "zrpc/v1/envelope.pb-c.h"
#include "zrpc/v1/health.zrpc.h"
#include "zrpc/v1/reflection.zrpc.h"

#define ASSERT_OK(expr)                                             \
	do {                                                        \
		zrpc_status st_ = (expr);                           \
		cr_assert_eq(st_.code, ZRPC_OK, "%s: %s %s", #expr, \
		    zrpc_status_name(st_.code), st_.message);       \
	} while (0)

/* ---- fixtures ---- */

/* The compiled services whose embedded files the tests read. */
static const struct zrpc_service_desc *const compiled_services[] = {
	&zos_v1_skills_service,
	&zos_v1_session_service,
	&zos_v1_routing_service,
	&zos_v1_cache_service,
	&zos_v1_assistant_service,
	&zos_v1_model_backend_service,
	&zrpc_v1_health_service,
	&zrpc_v1_reflection_service,
	&zdesc_v1_types_service,
};
#define N_COMPILED_SERVICES \
	(sizeof(compiled_services) / sizeof(compiled_services[0]))

/* Messages reached from no method, compiled in. */
static const ProtobufCMessageDescriptor *const compiled_roots[] = {
	&zrpc__v1__request__descriptor,
	&zrpc__v1__response__descriptor,
	&zos__storage__v1__skills_snapshot__descriptor,
	&zos__storage__v1__sessions_snapshot__descriptor,
	&google__protobuf__file_descriptor_set__descriptor,
	&zdesc__v1__legacy__descriptor,
};
#define N_COMPILED_ROOTS (sizeof(compiled_roots) / sizeof(compiled_roots[0]))

/* The bytes of the file at PATH (malloc'd) in *LEN. */
static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE    *f = fopen(path, "rb");
	uint8_t *data;
	long     size;

	cr_assert_not_null(f, "open %s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	cr_assert_geq(size, 0);
	cr_assert_eq(fseek(f, 0, SEEK_SET), 0);
	data = malloc((size_t) size + 1);
	cr_assert_not_null(data);
	cr_assert_eq(fread(data, 1, (size_t) size, f), (size_t) size);
	fclose(f);
	*len = (size_t) size;
	return data;
}

/* A pool with every compiled service's files and the test protoset. */
static zrpc_descriptor_pool *
full_pool(void)
{
	zrpc_descriptor_pool *pool;
	uint8_t              *set;
	size_t                len;

	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	for (size_t i = 0; i < N_COMPILED_SERVICES; i++) {
		ASSERT_OK(zrpc_descriptor_pool_add_service(
		    pool, compiled_services[i]));
	}
	set = read_file(ZDESC_PROTOSET, &len);
	ASSERT_OK(zrpc_descriptor_pool_add_set(pool, set, len));
	free(set);
	return pool;
}

/* ---- comparing descriptors ---- */

/* Compiled message descriptors already compared (cycles, repeats). */
struct seen {
	const void *items[512];
	size_t      n;
};

static bool
seen_add(struct seen *seen, const void *p)
{
	for (size_t i = 0; i < seen->n; i++) {
		if (seen->items[i] == p) {
			return false;
		}
	}
	cr_assert_lt(seen->n, 512);
	seen->items[seen->n++] = p;
	return true;
}

static void
compare_enum(
    const ProtobufCEnumDescriptor *c, const ProtobufCEnumDescriptor *d)
{
	cr_assert_eq(d->magic, PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC);
	cr_assert_str_eq(d->name, c->name);
	cr_assert_str_eq(d->short_name, c->short_name);
	cr_assert_str_eq(d->c_name, c->c_name, "%s", c->name);
	cr_assert_str_eq(d->package_name, c->package_name);
	cr_assert_eq(d->n_values, c->n_values, "%s", c->name);
	for (unsigned i = 0; i < c->n_values; i++) {
		cr_assert_str_eq(d->values[i].name, c->values[i].name);
		cr_assert_str_eq(d->values[i].c_name, c->values[i].c_name);
		cr_assert_eq(d->values[i].value, c->values[i].value);
	}
	cr_assert_eq(d->n_value_names, c->n_value_names);
	for (unsigned i = 0; i < c->n_value_names; i++) {
		cr_assert_str_eq(
		    d->values_by_name[i].name, c->values_by_name[i].name);
		cr_assert_eq(
		    d->values_by_name[i].index, c->values_by_name[i].index);
	}
	cr_assert_eq(d->n_value_ranges, c->n_value_ranges, "%s", c->name);
	for (unsigned i = 0; i <= c->n_value_ranges; i++) {
		cr_assert_eq(d->value_ranges[i].start_value,
		    c->value_ranges[i].start_value, "%s range %u", c->name, i);
		cr_assert_eq(d->value_ranges[i].orig_index,
		    c->value_ranges[i].orig_index, "%s range %u", c->name, i);
	}
}

/* Size of one value of a field of TYPE, for comparing defaults. */
static size_t
value_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static void
compare_default(const ProtobufCFieldDescriptor *c,
    const ProtobufCFieldDescriptor *d, const char *message)
{
	if (c->default_value == NULL) {
		/*
		 * protoc-c gives a proto2 enum without a default none, and
		 * its generated init the first value; a built descriptor
		 * says so in default_value, for the generic init.
		 */
		if (d->default_value != NULL &&
		    c->type == PROTOBUF_C_TYPE_ENUM) {
			const ProtobufCEnumDescriptor *e = c->descriptor;
			int32_t                        v;

			memcpy(&v, d->default_value, 4);
			cr_assert_eq(v, e->values_by_name != NULL ? v : 0);
			return;
		}
		cr_assert_null(d->default_value, "%s.%s", message, c->name);
		return;
	}
	cr_assert_not_null(d->default_value, "%s.%s", message, c->name);
	switch (c->type) {
	case PROTOBUF_C_TYPE_STRING:
		cr_assert_str_eq(d->default_value, c->default_value);
		if (c->default_value == protobuf_c_empty_string) {
			cr_assert_eq(
			    d->default_value, protobuf_c_empty_string);
		}
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *x = c->default_value;
		const ProtobufCBinaryData *y = d->default_value;

		cr_assert_eq(y->len, x->len, "%s.%s", message, c->name);
		cr_assert_eq(memcmp(y->data, x->data, x->len), 0);
		break;
	}
	case PROTOBUF_C_TYPE_DOUBLE:
		if (__builtin_isnan(*(const double *) c->default_value)) {
			cr_assert(__builtin_isnan(
			    *(const double *) d->default_value));
			break;
		}
		__attribute__((fallthrough));
	default:
		cr_assert_eq(memcmp(d->default_value, c->default_value,
		                 value_size(c->type)),
		    0, "%s.%s default", message, c->name);
		break;
	}
}

static void
compare_message(struct seen *seen, const ProtobufCMessageDescriptor *c,
    const ProtobufCMessageDescriptor *d)
{
	if (!seen_add(seen, c)) {
		return;
	}
	cr_assert_not_null(d, "%s", c->name);
	cr_assert_eq(d->magic, PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
	cr_assert_str_eq(d->name, c->name);
	cr_assert_str_eq(d->short_name, c->short_name);
	cr_assert_str_eq(d->c_name, c->c_name);
	cr_assert_str_eq(d->package_name, c->package_name);
	cr_assert_eq(d->sizeof_message, c->sizeof_message, "%s", c->name);
	cr_assert_eq(d->n_fields, c->n_fields, "%s", c->name);
	for (unsigned i = 0; i < c->n_fields; i++) {
		const ProtobufCFieldDescriptor *cf = &c->fields[i];
		const ProtobufCFieldDescriptor *df = &d->fields[i];

		cr_assert_str_eq(df->name, cf->name, "%s", c->name);
		cr_assert_eq(df->id, cf->id, "%s.%s", c->name, cf->name);
		cr_assert_eq(df->label, cf->label, "%s.%s", c->name, cf->name);
		cr_assert_eq(df->type, cf->type, "%s.%s", c->name, cf->name);
		cr_assert_eq(df->quantifier_offset, cf->quantifier_offset,
		    "%s.%s", c->name, cf->name);
		cr_assert_eq(
		    df->offset, cf->offset, "%s.%s", c->name, cf->name);
		cr_assert_eq(df->flags, cf->flags, "%s.%s", c->name, cf->name);
		compare_default(cf, df, c->name);
		if (cf->type == PROTOBUF_C_TYPE_MESSAGE) {
			compare_message(seen, cf->descriptor, df->descriptor);
		} else if (cf->type == PROTOBUF_C_TYPE_ENUM) {
			if (seen_add(seen, cf->descriptor)) {
				compare_enum(cf->descriptor, df->descriptor);
			}
		} else {
			cr_assert_null(df->descriptor);
		}
	}
	for (unsigned i = 0; i < c->n_fields; i++) {
		cr_assert_eq(d->fields_sorted_by_name[i],
		    c->fields_sorted_by_name[i], "%s", c->name);
	}
	cr_assert_eq(d->n_field_ranges, c->n_field_ranges, "%s", c->name);
	for (unsigned i = 0; c->n_fields > 0 && i <= c->n_field_ranges; i++) {
		cr_assert_eq(d->field_ranges[i].start_value,
		    c->field_ranges[i].start_value, "%s", c->name);
		cr_assert_eq(d->field_ranges[i].orig_index,
		    c->field_ranges[i].orig_index, "%s", c->name);
	}
}

/* The pool's descriptor of the compiled type C. */
static const ProtobufCMessageDescriptor *
built(zrpc_descriptor_pool *pool, const ProtobufCMessageDescriptor *c)
{
	const ProtobufCMessageDescriptor *d = NULL;

	ASSERT_OK(zrpc_descriptor_pool_find_message(pool, c->name, &d));
	return d;
}

Test(descriptor, every_compiled_message_is_built_identically)
{
	zrpc_descriptor_pool *pool = full_pool();
	struct seen           seen = { .n = 0 };

	for (size_t i = 0; i < N_COMPILED_SERVICES; i++) {
		const struct zrpc_service_desc *s = compiled_services[i];

		for (size_t m = 0; m < s->n_methods; m++) {
			compare_message(&seen, s->methods[m].input,
			    built(pool, s->methods[m].input));
			compare_message(&seen, s->methods[m].output,
			    built(pool, s->methods[m].output));
		}
	}
	for (size_t i = 0; i < N_COMPILED_ROOTS; i++) {
		compare_message(
		    &seen, compiled_roots[i], built(pool, compiled_roots[i]));
	}
	/* zos.v1, zrpc.v1, descriptor.proto and zdesc.v1, nested ones too. */
	cr_assert_geq(seen.n, 85, "only %zu types compared", seen.n);
	zrpc_descriptor_pool_free(pool);
}

/* ---- round trips ---- */

static char *
fill_string(unsigned seed)
{
	char *s = malloc(32);

	cr_assert_not_null(s);
	snprintf(s, 32, "s%u\xc3\xa9", seed);
	return s;
}

/* Sets the value at P of a field of type F->type, from SEED. */
static void fill_message(const ProtobufCMessageDescriptor *desc,
    ProtobufCMessage *m, unsigned depth, unsigned seed);

static void
fill_value(
    const ProtobufCFieldDescriptor *f, void *p, unsigned depth, unsigned seed)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *) p = -(int32_t) (seed * 7 + 1);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *) p = seed * 1000003u + 1;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *) p = -(int64_t) seed * 10000000007 - 1;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *) p = (uint64_t) seed * 10000000019u + 1;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *) p = (float) seed + 0.5f;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *) p = seed + 0.25;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *) p = 1;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;

		*(int32_t *) p = e->values[seed % e->n_values].value;
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		*(char **) p = fill_string(seed);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;

		b->len  = 3 + seed % 3;
		b->data = malloc(b->len);
		cr_assert_not_null(b->data);
		memset(b->data, (int) (0xf0 + seed), b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *sub = f->descriptor;
		ProtobufCMessage *m = malloc(sub->sizeof_message);

		cr_assert_not_null(m);
		zrpc_message_init(sub, m);
		fill_message(sub, m, depth + 1, seed + 1);
		*(ProtobufCMessage **) p = m;
		break;
	}
	}
}

/* Element size of a repeated field of TYPE. */
static size_t
element_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return value_size(type);
	}
}

/*
 * Sets every field of M (initialised) to a value from SEED: repeated
 * fields get two elements, each oneof its last member; messages nest two
 * deep. Everything is malloc'd, so free_unpacked frees it.
 */
static void
fill_message(const ProtobufCMessageDescriptor *desc, ProtobufCMessage *m,
    unsigned depth, unsigned seed)
{
	if (depth > 2) {
		return;
	}
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		char                           *p = (char *) m + f->offset;
		char *q = (char *) m + f->quantifier_offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t size     = element_size(f->type);
			char  *elements = calloc(2, size);

			cr_assert_not_null(elements);
			fill_value(f, elements, depth, seed + i);
			fill_value(f, elements + size, depth, seed + i + 1);
			*(size_t *) q = 2;
			*(void **) p  = elements;
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t *which = (uint32_t *) q;

			if (*which != 0) { /* free the member set before */
				for (unsigned j = 0; j < desc->n_fields; j++) {
					const ProtobufCFieldDescriptor *o =
					    &desc->fields[j];

					if (o->id != *which) {
						continue;
					}
					if (o->type ==
					    PROTOBUF_C_TYPE_STRING) {
						free(*(char **) p);
					} else if (o->type ==
					    PROTOBUF_C_TYPE_BYTES) {
						free(
						    ((ProtobufCBinaryData *) p)
						        ->data);
					} else if (o->type ==
					    PROTOBUF_C_TYPE_MESSAGE) {
						protobuf_c_message_free_unpacked(
						    *(ProtobufCMessage **) p,
						    NULL);
					}
				}
			}
			*which = f->id;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    f->quantifier_offset != 0) {
			*(protobuf_c_boolean *) q = 1;
		}
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth == 2) {
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				*(uint32_t *) q = 0;
			}
			continue;
		}
		fill_value(f, p, depth, seed + i);
	}
}

/*
 * Packs a populated message of the compiled type C, unpacks it with the
 * built D, packs it again and compares; and back.
 */
static void
round_trip(
    const ProtobufCMessageDescriptor *c, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = malloc(c->sizeof_message);
	ProtobufCMessage *dm;
	ProtobufCMessage *cm;
	uint8_t          *bytes;
	uint8_t          *again;
	size_t            len;

	cr_assert_not_null(m);
	zrpc_message_init(c, m);
	fill_message(c, m, 0, 3);
	len   = protobuf_c_message_get_packed_size(m);
	bytes = malloc(len + 1);
	again = malloc(len + 1);
	cr_assert(bytes != NULL && again != NULL);
	cr_assert_eq(protobuf_c_message_pack(m, bytes), len);

	dm = protobuf_c_message_unpack(d, NULL, len, bytes);
	cr_assert_not_null(dm, "%s: the built type cannot unpack", c->name);
	cr_assert_eq(dm->descriptor, d);
	cr_assert_eq(dm->n_unknown_fields, 0, "%s", c->name);
	cr_assert_eq(
	    protobuf_c_message_get_packed_size(dm), len, "%s", c->name);
	cr_assert_eq(protobuf_c_message_pack(dm, again), len);
	cr_assert_eq(
	    memcmp(bytes, again, len), 0, "%s: bytes differ", c->name);

	cm = protobuf_c_message_unpack(c, NULL, len, again);
	cr_assert_not_null(cm);
	cr_assert_eq(protobuf_c_message_pack(cm, again), len);
	cr_assert_eq(memcmp(bytes, again, len), 0);

	protobuf_c_message_free_unpacked(cm, NULL);
	protobuf_c_message_free_unpacked(dm, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
	free(bytes);
	free(again);
}

/* Round-trips C and every message type it reaches. */
static void
round_trip_all(zrpc_descriptor_pool *pool, struct seen *seen,
    const ProtobufCMessageDescriptor *c)
{
	if (!seen_add(seen, c)) {
		return;
	}
	round_trip(c, built(pool, c));
	for (unsigned i = 0; i < c->n_fields; i++) {
		if (c->fields[i].type == PROTOBUF_C_TYPE_MESSAGE) {
			round_trip_all(pool, seen, c->fields[i].descriptor);
		}
	}
}

Test(descriptor, every_message_round_trips_byte_for_byte)
{
	zrpc_descriptor_pool *pool = full_pool();
	struct seen           seen = { .n = 0 };

	for (size_t i = 0; i < N_COMPILED_SERVICES; i++) {
		const struct zrpc_service_desc *s = compiled_services[i];

		for (size_t m = 0; m < s->n_methods; m++) {
			round_trip_all(pool, &seen, s->methods[m].input);
			round_trip_all(pool, &seen, s->methods[m].output);
		}
	}
	for (size_t i = 0; i < N_COMPILED_ROOTS; i++) {
		round_trip_all(pool, &seen, compiled_roots[i]);
	}
	cr_assert_gt(seen.n, 75, "only %zu types", seen.n);
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, unpacks_defaults_of_an_empty_proto2_message)
{
	zrpc_descriptor_pool             *pool = full_pool();
	const ProtobufCMessageDescriptor *d =
	    built(pool, &zdesc__v1__legacy__descriptor);
	/* id = 1 only: required. */
	static const uint8_t wire[] = { 0x08, 0x05 };
	Zdesc__V1__Legacy   *c;
	Zdesc__V1__Legacy   *m;

	m = (Zdesc__V1__Legacy *) protobuf_c_message_unpack(
	    d, NULL, sizeof(wire), wire);
	c = zdesc__v1__legacy__unpack(NULL, sizeof(wire), wire);
	cr_assert(m != NULL && c != NULL);
	cr_assert_eq(m->id, 5);
	cr_assert_str_eq(m->name, "anon");
	cr_assert_eq(m->ratio, 0.5);
	cr_assert(__builtin_isinf(m->low) && m->low < 0);
	cr_assert_eq(m->big, -9000000000);
	cr_assert_eq(m->ubig, 18000000000000000000u);
	cr_assert_eq(m->flag, 1);
	cr_assert_eq(m->blob.len, 6);
	cr_assert_eq(memcmp(m->blob.data, "a\001\"\\z\xff", 6), 0);
	cr_assert_eq(m->color, ZDESC__V1__COLOR__GREEN);
	cr_assert_eq(m->first, c->first);
	cr_assert_eq(m->first, ZDESC__V1__COLOR__RED);
	cr_assert_eq(m->s32, -7);
	cr_assert_eq(m->fx, 42);
	cr_assert_eq(m->sfx, -42);
	cr_assert_eq(m->u32, 4000000000u);
	cr_assert_eq(m->quarter, 1.25f);
	cr_assert(__builtin_isnan(m->not_a_number));
	cr_assert_eq(m->has_big + m->has_ratio + m->has_color, 0);
	/* The defaults are not packed: they were not set. */
	cr_assert_eq(
	    protobuf_c_message_get_packed_size(&m->base), sizeof(wire));
	protobuf_c_message_free_unpacked(&m->base, NULL);
	zdesc__v1__legacy__free_unpacked(c, NULL);
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, zrpc_message_init_sets_the_defaults)
{
	zrpc_descriptor_pool             *pool = full_pool();
	const ProtobufCMessageDescriptor *d =
	    built(pool, &zdesc__v1__legacy__descriptor);
	Zdesc__V1__Legacy m;
	Zdesc__V1__Legacy c = ZDESC__V1__LEGACY__INIT;

	cr_assert_null(d->message_init);
	memset(&m, 0xa5, sizeof(m));
	zrpc_message_init(d, &m);
	cr_assert_eq(m.base.descriptor, d);
	cr_assert_eq(m.base.n_unknown_fields, 0);
	cr_assert_str_eq(m.name, c.name);
	cr_assert_eq(m.u32, c.u32);
	cr_assert_eq(m.first, c.first);
	cr_assert_eq(m.n_tags, 0);
	cr_assert_null(m.next);
	cr_assert_eq(m.choice_case, 0);
	zrpc_descriptor_pool_free(pool);
}

/* ---- lookups ---- */

Test(descriptor, finds_methods_in_every_spelling)
{
	zrpc_descriptor_pool     *pool = full_pool();
	const struct zrpc_method *m;
	const char *const         names[] = { "/zdesc.v1.Types/Echo",
		        "zdesc.v1.Types/Echo", "zdesc.v1.Types.Echo" };

	for (size_t i = 0; i < 3; i++) {
		ASSERT_OK(
		    zrpc_descriptor_pool_find_method(pool, names[i], &m));
		cr_assert_str_eq(m->name, "Echo");
		cr_assert_str_eq(m->path, "/zdesc.v1.Types/Echo");
		cr_assert_str_eq(m->input->name, "zdesc.v1.Everything");
		cr_assert_str_eq(m->output->name, "zdesc.v1.Everything");
		cr_assert_eq(m->role, ZRPC_ROLE_WRITE);
	}
	ASSERT_OK(
	    zrpc_descriptor_pool_find_method(pool, "zdesc.v1.Types/Old", &m));
	cr_assert_eq(m->role, ZRPC_ROLE_NONE);
	ASSERT_OK(
	    zrpc_descriptor_pool_find_method(pool, "/zos.v1.Cache/Clear", &m));
	cr_assert_eq(m->role, ZRPC_ROLE_ADMIN);
	cr_assert_eq(m->input->sizeof_message,
	    zos__v1__clear_cache_request__descriptor.sizeof_message);
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, unknown_symbols_are_not_found_by_name)
{
	zrpc_descriptor_pool             *pool = full_pool();
	const ProtobufCMessageDescriptor *m;
	const struct zrpc_method         *method;
	zrpc_status                       st;

	st = zrpc_descriptor_pool_find_message(pool, "zos.v1.Nope", &m);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND);
	cr_assert(strstr(st.message, "zos.v1.Nope") != NULL, "%s", st.message);
	cr_assert_null(m);
	/* A service is not a message, a message not a method. */
	st = zrpc_descriptor_pool_find_message(pool, "zos.v1.Skills", &m);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND);
	st = zrpc_descriptor_pool_find_method(pool, "zos.v1.Skill", &method);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND);
	st = zrpc_descriptor_pool_find_method(
	    pool, "zos.v1.Skills/Nope", &method);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND);
	cr_assert(strstr(st.message, "zos.v1.Skills/Nope") != NULL);
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, lists_the_services_sorted)
{
	zrpc_descriptor_pool *pool = full_pool();
	const char *const    *names;
	size_t                n;

	ASSERT_OK(zrpc_descriptor_pool_services(pool, &names, &n));
	cr_assert_eq(n, N_COMPILED_SERVICES);
	for (size_t i = 1; i < n; i++) {
		cr_assert_lt(strcmp(names[i - 1], names[i]), 0);
	}
	cr_assert_str_eq(names[0], "zdesc.v1.Types");
	cr_assert_str_eq(names[n - 1], "zrpc.v1.Reflection");
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, builds_enums_and_services)
{
	zrpc_descriptor_pool             *pool = full_pool();
	const ProtobufCEnumDescriptor    *e;
	const ProtobufCServiceDescriptor *s;
	struct seen                       seen = { .n = 0 };

	ASSERT_OK(zrpc_descriptor_pool_find_enum(pool, "zdesc.v1.Color", &e));
	compare_enum(&zdesc__v1__color__descriptor, e);
	cr_assert_str_eq(
	    protobuf_c_enum_descriptor_get_value_by_name(e, "CRIMSON")->name,
	    "RED");
	cr_assert_eq(protobuf_c_enum_descriptor_get_value(e, -3)->value, -3);
	ASSERT_OK(
	    zrpc_descriptor_pool_find_enum(pool, "zos.v1.ProofState", &e));
	compare_enum(&zos__v1__proof_state__descriptor, e);
	ASSERT_OK(
	    zrpc_descriptor_pool_find_service(pool, "zos.v1.Skills", &s));
	cr_assert_eq(s->n_methods, zos_v1_skills_service.n_methods);
	for (unsigned i = 0; i < s->n_methods; i++) {
		cr_assert_str_eq(
		    s->methods[i].name, zos_v1_skills_service.methods[i].name);
		compare_message(&seen, zos_v1_skills_service.methods[i].input,
		    s->methods[i].input);
	}
	cr_assert_not_null(
	    protobuf_c_service_descriptor_get_method_by_name(s, "Reload"));
	zrpc_descriptor_pool_free(pool);
}

/* ---- bad input ---- */

Test(descriptor, malformed_bytes_are_invalid_argument)
{
	zrpc_descriptor_pool *pool;
	static const uint8_t  junk[]    = { 0x0a, 0x10, 'x' };
	static const uint8_t  bad_set[] = { 0x0a, 0x05, 0x0a, 0x03 };
	zrpc_status           st;

	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	st = zrpc_descriptor_pool_add_file(pool, junk, sizeof(junk));
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT, "%s", st.message);
	st = zrpc_descriptor_pool_add_set(pool, junk, sizeof(junk));
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT, "%s", st.message);
	st = zrpc_descriptor_pool_add_set(pool, bad_set, sizeof(bad_set));
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT, "%s", st.message);
	/* An empty file has no name. */
	st = zrpc_descriptor_pool_add_file(pool, junk, 0);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT, "%s", st.message);
	zrpc_descriptor_pool_free(pool);
}

/* Packs FILE into a new buffer. */
static uint8_t *
pack_file(const Google__Protobuf__FileDescriptorProto *file, size_t *len)
{
	uint8_t *data;

	*len = google__protobuf__file_descriptor_proto__get_packed_size(file);
	data = malloc(*len + 1);
	cr_assert_not_null(data);
	google__protobuf__file_descriptor_proto__pack(file, data);
	return data;
}

/* A file "bad.proto" with one message M with FIELD. */
static zrpc_status
add_one_field_file(zrpc_descriptor_pool    *pool,
    Google__Protobuf__FieldDescriptorProto *field, size_t n_fields)
{
	Google__Protobuf__FileDescriptorProto file =
	    GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto message =
	    GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto      *messages[] = { &message };
	Google__Protobuf__FieldDescriptorProto *fields[4];
	uint8_t                                *data;
	size_t                                  len;
	zrpc_status                             st;

	for (size_t i = 0; i < n_fields; i++) {
		fields[i] = &field[i];
	}
	file.name           = "bad.proto";
	file.package        = "bad";
	file.n_message_type = 1;
	file.message_type   = messages;
	message.name        = "M";
	message.n_field     = n_fields;
	message.field       = fields;
	data                = pack_file(&file, &len);
	st                  = zrpc_descriptor_pool_add_file(pool, data, len);
	free(data);
	return st;
}

Test(descriptor, refuses_what_protobuf_c_cannot_represent)
{
	zrpc_descriptor_pool                  *pool;
	Google__Protobuf__FieldDescriptorProto f[2] = {
		GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT,
		GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT,
	};
	zrpc_status st;

	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	f[0].name       = "g";
	f[0].has_number = 1;
	f[0].number     = 1;
	f[0].has_label  = 1;
	f[0].label =
	    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_OPTIONAL;
	f[0].has_type = 1;
	f[0].type = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP;
	f[0].type_name = ".bad.G";
	st             = add_one_field_file(pool, f, 1);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(st.message, "group") != NULL, "%s", st.message);

	/* Two fields with one number. */
	f[0].type = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32;
	f[0].type_name = NULL;
	f[1]           = f[0];
	f[1].name      = "h";
	st             = add_one_field_file(pool, f, 2);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(strstr(st.message, "twice") != NULL, "%s", st.message);

	/* Field number 0. */
	f[0].number = 0;
	st          = add_one_field_file(pool, f, 1);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);

	/* A bad default shows when the type is built. */
	f[0].number        = 1;
	f[0].default_value = "12x";
	ASSERT_OK(add_one_field_file(pool, f, 1));
	{
		const ProtobufCMessageDescriptor *m;

		st = zrpc_descriptor_pool_find_message(pool, "bad.M", &m);
		cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT, "%s", st.message);
		cr_assert(strstr(st.message, "12x") != NULL, "%s", st.message);
	}
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, a_missing_import_is_failed_precondition)
{
	zrpc_descriptor_pool                *pool;
	const ProtobufCMessageDescriptor    *m;
	uint8_t                             *set;
	size_t                               len;
	zrpc_status                          st;
	Google__Protobuf__FileDescriptorSet *fds;

	/* zdesc/v1/types.proto alone, without legacy.proto. */
	set = read_file(ZDESC_PROTOSET, &len);
	fds = google__protobuf__file_descriptor_set__unpack(NULL, len, set);
	cr_assert_not_null(fds);
	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	for (size_t i = 0; i < fds->n_file; i++) {
		uint8_t *data;
		size_t   n;

		if (strcmp(fds->file[i]->name, "zdesc/v1/legacy.proto") == 0) {
			continue;
		}
		data = pack_file(fds->file[i], &n);
		ASSERT_OK(zrpc_descriptor_pool_add_file(pool, data, n));
		free(data);
	}
	st = zrpc_descriptor_pool_find_message(pool, "zdesc.v1.Scalars", &m);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION);
	cr_assert(strstr(st.message, "zdesc/v1/legacy.proto") != NULL, "%s",
	    st.message);
	/* Once the import is there, the same lookup works. */
	for (size_t i = 0; i < fds->n_file; i++) {
		uint8_t *data;
		size_t   n;

		data = pack_file(fds->file[i], &n);
		ASSERT_OK(zrpc_descriptor_pool_add_file(pool, data, n));
		free(data);
	}
	ASSERT_OK(
	    zrpc_descriptor_pool_find_message(pool, "zdesc.v1.Scalars", &m));
	google__protobuf__file_descriptor_set__free_unpacked(fds, NULL);
	free(set);
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, a_symbol_defined_twice_is_refused)
{
	zrpc_descriptor_pool                  *pool;
	Google__Protobuf__FieldDescriptorProto f =
	    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__FileDescriptorProto file =
	    GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto message =
	    GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto *messages[] = { &message };
	uint8_t                           *data;
	size_t                             len;
	zrpc_status                        st;

	(void) f;
	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	ASSERT_OK(
	    zrpc_descriptor_pool_add_service(pool, &zos_v1_skills_service));
	file.name           = "other.proto";
	file.package        = "zos.v1";
	file.n_message_type = 1;
	file.message_type   = messages;
	message.name        = "Skill";
	data                = pack_file(&file, &len);
	st                  = zrpc_descriptor_pool_add_file(pool, data, len);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT);
	cr_assert(
	    strstr(st.message, "zos.v1.Skill") != NULL, "%s", st.message);
	free(data);
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, a_service_without_an_embedded_file)
{
	zrpc_descriptor_pool          *pool;
	const struct zrpc_service_desc hand = { .name = "hand.Made" };
	zrpc_status                    st;

	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	st = zrpc_descriptor_pool_add_service(pool, &hand);
	cr_assert_eq(st.code, ZRPC_FAILED_PRECONDITION);
	zrpc_descriptor_pool_free(pool);
}

/* ---- the embedded files ---- */

Test(descriptor, generated_code_embeds_the_file_and_its_imports)
{
	const struct zrpc_file_descriptor *f = zdesc_v1_types_service.file;
	bool                               legacy  = false;
	bool                               options = false;

	cr_assert_not_null(f);
	cr_assert_str_eq(f->name, "zdesc/v1/types.proto");
	cr_assert_eq(f->n_deps, 2);
	for (size_t i = 0; i < f->n_deps; i++) {
		legacy |=
		    strcmp(f->deps[i]->name, "zdesc/v1/legacy.proto") == 0;
		options |=
		    strcmp(f->deps[i]->name, "zrpc/v1/options.proto") == 0;
	}
	cr_assert(legacy && options);
	cr_assert_eq(zos_v1_skills_service.file, zos_v1_cache_service.file);
	cr_assert_str_eq(zos_v1_skills_service.file->name, "zos/v1/zos.proto");
	{
		/* Without source_code_info: no comments were embedded. */
		Google__Protobuf__FileDescriptorProto *p =
		    google__protobuf__file_descriptor_proto__unpack(
		        NULL, f->len, f->data);

		cr_assert_not_null(p);
		cr_assert_null(p->source_code_info);
		cr_assert_str_eq(p->name, f->name);
		google__protobuf__file_descriptor_proto__free_unpacked(
		    p, NULL);
	}
}

/* ---- reflection over a server ---- */

Test(descriptor, reflection_serves_files_for_services_methods_and_types)
{
	struct test_server                ts;
	zrpc_client                      *client;
	zrpc_descriptor_pool             *pool;
	const struct zrpc_method         *m;
	const ProtobufCMessageDescriptor *d;
	const char *const symbols[] = { "ztest.v1.Echo", "/ztest.v1.Echo/Fail",
		"ztest.v1.Echo/Wait", "ztest.v1.EchoReply", "zrpc.v1.Health",
		"zrpc.v1.ServiceInfo" };
	struct seen       seen      = { .n = 0 };

	test_server_start(&ts, "inproc", NULL);
	ASSERT_OK(zrpc_client_open(&client, ts.url, NULL));
	for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
		Zrpc__V1__FileContainingSymbolRequest req =
		    ZRPC__V1__FILE_CONTAINING_SYMBOL_REQUEST__INIT;
		Zrpc__V1__FileDescriptorResponse *reply = NULL;

		req.symbol = (char *) symbols[i];
		ASSERT_OK(zrpc_v1_reflection_file_containing_symbol(
		    client, &req, &reply, NULL));
		cr_assert_geq(reply->n_file_descriptor_proto, 1);
		ASSERT_OK(zrpc_descriptor_pool_new(&pool));
		/* Each reply holds the file and all it needs. */
		for (size_t f = 0; f < reply->n_file_descriptor_proto; f++) {
			ASSERT_OK(zrpc_descriptor_pool_add_file(pool,
			    reply->file_descriptor_proto[f].data,
			    reply->file_descriptor_proto[f].len));
		}
		{
			ProtobufCBinaryData *files;
			size_t               n;

			ASSERT_OK(zrpc_descriptor_pool_file_closure(
			    pool, symbols[i], &files, &n));
			cr_assert_eq(n, reply->n_file_descriptor_proto);
			free(files);
		}
		zrpc__v1__file_descriptor_response__free_unpacked(reply, NULL);
		zrpc_descriptor_pool_free(pool);
	}

	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	ASSERT_OK(
	    zrpc_reflection_fetch(client, "ztest.v1.Echo/Echo", pool, NULL));
	ASSERT_OK(
	    zrpc_descriptor_pool_find_method(pool, "ztest.v1.Echo/Echo", &m));
	compare_message(&seen, &ztest__v1__echo_request__descriptor, m->input);
	compare_message(&seen, &ztest__v1__echo_reply__descriptor, m->output);
	{
		/* Call the server through the built descriptors. */
		ProtobufCMessage *req   = malloc(m->input->sizeof_message);
		ProtobufCMessage *reply = NULL;
		const ProtobufCFieldDescriptor *text =
		    protobuf_c_message_descriptor_get_field_by_name(
		        m->input, "text");

		zrpc_message_init(m->input, req);
		*(char **) ((char *) req + text->offset) =
		    "through descriptors";
		ASSERT_OK(zrpc_client_call(client, m, req, &reply, NULL));
		cr_assert_eq(reply->descriptor, m->output);
		text = protobuf_c_message_descriptor_get_field_by_name(
		    m->output, "text");
		cr_assert_str_eq(*(char **) ((char *) reply + text->offset),
		    "through descriptors");
		protobuf_c_message_free_unpacked(reply, NULL);
		free(req);
	}
	ASSERT_OK(zrpc_reflection_fetch(
	    client, "zrpc.v1.HealthCheckRequest", pool, NULL));
	ASSERT_OK(zrpc_descriptor_pool_find_message(
	    pool, "zrpc.v1.HealthCheckResponse", &d));
	zrpc_descriptor_pool_free(pool);

	zrpc_client_close(client);
	test_server_stop(&ts);
}

Test(descriptor, reflection_answers_not_found_for_junk)
{
	struct test_server              ts;
	zrpc_client                    *client;
	zrpc_descriptor_pool           *pool;
	zrpc_status                     st;
	Zrpc__V1__FileByFilenameRequest req =
	    ZRPC__V1__FILE_BY_FILENAME_REQUEST__INIT;
	Zrpc__V1__FileDescriptorResponse *reply = NULL;

	test_server_start(&ts, "inproc", NULL);
	ASSERT_OK(zrpc_client_open(&client, ts.url, NULL));
	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	st = zrpc_reflection_fetch(client, "no.such.Thing", pool, NULL);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", st.message);
	cr_assert(
	    strstr(st.message, "no.such.Thing") != NULL, "%s", st.message);
	st = zrpc_reflection_fetch(client, "ztest.v1.Echo/Nope", pool, NULL);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", st.message);
	st = zrpc_reflection_fetch(client, "", pool, NULL);
	cr_assert_eq(st.code, ZRPC_INVALID_ARGUMENT, "%s", st.message);

	req.filename = "ztest/v1/echo.proto";
	ASSERT_OK(
	    zrpc_v1_reflection_file_by_filename(client, &req, &reply, NULL));
	cr_assert_eq(reply->n_file_descriptor_proto, 1);
	zrpc__v1__file_descriptor_response__free_unpacked(reply, NULL);
	req.filename = "ztest.v1.Echo"; /* a symbol is not a file name */
	st = zrpc_v1_reflection_file_by_filename(client, &req, &reply, NULL);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", st.message);

	zrpc_descriptor_pool_free(pool);
	zrpc_client_close(client);
	test_server_stop(&ts);
}

/* ---- proto3 optional (synthetic oneofs) ---- */

Test(descriptor, lays_out_proto3_optional_as_protoc_c_sees_it)
{
	zrpc_descriptor_pool             *pool = full_pool();
	const ProtobufCMessageDescriptor *d;
	const ProtobufCFieldDescriptor   *maybe;
	const ProtobufCFieldDescriptor   *d_field;
	ProtobufCMessage                 *m;
	static const uint8_t              zero[] = { 0x08, 0x00 };
	uint8_t                           out[16];
	size_t                            base = sizeof(ProtobufCMessage);

	ASSERT_OK(
	    zrpc_descriptor_pool_find_message(pool, "zdesc.v1.Optionals", &d));
	/* plain; pick (case, union); _maybe; _maybe_text; _d. */
	cr_assert_eq(
	    protobuf_c_message_descriptor_get_field_by_name(d, "plain")
	        ->offset,
	    base);
	maybe = protobuf_c_message_descriptor_get_field(d, 1);
	cr_assert_eq(maybe->label, PROTOBUF_C_LABEL_NONE);
	cr_assert(maybe->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
	cr_assert_eq(
	    protobuf_c_message_descriptor_get_field(d, 4)->quantifier_offset,
	    base + 8);
	cr_assert_eq(
	    protobuf_c_message_descriptor_get_field(d, 5)->offset, base + 16);
	cr_assert_eq(maybe->quantifier_offset, base + 24);
	cr_assert_eq(maybe->offset, base + 28);
	d_field = protobuf_c_message_descriptor_get_field(d, 6);
	cr_assert_eq(d_field->quantifier_offset, base + 48);
	cr_assert_eq(d_field->offset, base + 56);
	cr_assert_eq(d->sizeof_message, base + 64);

	/* A zero that was set is sent: presence is the case. */
	m = protobuf_c_message_unpack(d, NULL, sizeof(zero), zero);
	cr_assert_not_null(m);
	cr_assert_eq(*(uint32_t *) ((char *) m + maybe->quantifier_offset), 1);
	cr_assert_eq(protobuf_c_message_get_packed_size(m), sizeof(zero));
	cr_assert_eq(protobuf_c_message_pack(m, out), sizeof(zero));
	cr_assert_eq(memcmp(out, zero, sizeof(zero)), 0);
	protobuf_c_message_free_unpacked(m, NULL);
	zrpc_descriptor_pool_free(pool);
}

/* ---- describe ---- */

/* Asserts that describing SYMBOL gives EXPECTED. */
static void
assert_describes(
    zrpc_descriptor_pool *pool, const char *symbol, const char *expected)
{
	char *text = NULL;

	ASSERT_OK(zrpc_descriptor_pool_describe(pool, symbol, &text));
	cr_assert_str_eq(text, expected);
	free(text);
}

Test(descriptor, describes_services_methods_messages_and_enums)
{
	zrpc_descriptor_pool *pool = full_pool();
	char                 *text = NULL;
	zrpc_status           st;

	assert_describes(pool, "zdesc.v1.Types",
	    "zdesc.v1.Types is a service:\n"
	    "service Types {\n"
	    "  rpc Echo ( .zdesc.v1.Everything ) returns ( "
	    ".zdesc.v1.Everything ) {\n"
	    "    option (zrpc.v1.role) = \"write\";\n"
	    "  }\n"
	    "  rpc Old ( .zdesc.v1.Legacy ) returns ( .zdesc.v1.Scalars );\n"
	    "}\n");
	assert_describes(pool, "/zos.v1.Skills/Get",
	    "zos.v1.Skills.Get is a method:\n"
	    "rpc Get ( .zos.v1.GetSkillsRequest ) returns ( "
	    ".zos.v1.SkillVector ) {\n"
	    "  option (zrpc.v1.role) = \"read\";\n"
	    "}\n");
	assert_describes(pool, "zdesc.v1.Color",
	    "zdesc.v1.Color is an enum:\n"
	    "enum Color {\n"
	    "  option allow_alias = true;\n"
	    "  RED = 1;\n"
	    "  CRIMSON = 1;\n"
	    "  GREEN = 2;\n"
	    "  BLUE = 4;\n"
	    "  NEGATIVE = -3;\n"
	    "}\n");
	assert_describes(pool, "zdesc.v1.Optionals",
	    "zdesc.v1.Optionals is a message:\n"
	    "message Optionals {\n"
	    "  optional int32 maybe = 1;\n"
	    "  string plain = 2;\n"
	    "  optional string maybe_text = 3;\n"
	    "  oneof pick {\n"
	    "    int64 a = 4;\n"
	    "    string b = 5;\n"
	    "  }\n"
	    "  optional double d = 6;\n"
	    "}\n");
	assert_describes(pool, "zdesc.v1.Everything",
	    "zdesc.v1.Everything is a message:\n"
	    "message Everything {\n"
	    "  enum Mood {\n"
	    "    MOOD_UNSPECIFIED = 0;\n"
	    "    HAPPY = 1;\n"
	    "    SAD = 2;\n"
	    "  }\n"
	    "  message Nested {\n"
	    "    string note = 1;\n"
	    "    .zdesc.v1.Everything.Mood mood = 2;\n"
	    "  }\n"
	    "  .zdesc.v1.Scalars scalars = 1;\n"
	    "  repeated int32 packed = 2;\n"
	    "  repeated int32 unpacked = 3 [packed = false];\n"
	    "  repeated double doubles = 4;\n"
	    "  repeated string names = 5;\n"
	    "  repeated bytes blobs = 6;\n"
	    "  repeated .zdesc.v1.Everything.Nested nested = 7;\n"
	    "  map<string, int64> counts = 8;\n"
	    "  map<int32, .zdesc.v1.Everything.Nested> by_id = 9;\n"
	    "  oneof pick {\n"
	    "    string word = 10;\n"
	    "    int64 num = 11;\n"
	    "    .zdesc.v1.Everything.Nested thing = 12;\n"
	    "    bytes data = 13;\n"
	    "  }\n"
	    "  .zdesc.v1.Everything.Mood mood = 16;\n"
	    "  repeated .zdesc.v1.Everything.Mood moods = 17;\n"
	    "  .zdesc.v1.Legacy legacy = 18;\n"
	    "  bool flag = 20 [deprecated = true];\n"
	    "  oneof other {\n"
	    "    bool yes = 30;\n"
	    "    float ratio = 31;\n"
	    "  }\n"
	    "  repeated .zdesc.v1.Scalars many = 32;\n"
	    "  uint64 last = 1000;\n"
	    "}\n");
	/* proto2: labels and defaults. */
	ASSERT_OK(
	    zrpc_descriptor_pool_describe(pool, "zdesc.v1.Legacy", &text));
	cr_assert(
	    strstr(text, "  required int32 id = 1;\n") != NULL, "%s", text);
	cr_assert(
	    strstr(text,
	        "  optional string name = 2 [default = \"anon\"];\n") != NULL);
	cr_assert(strstr(text,
	              "  optional bytes blob = 8 [default = "
	              "\"a\\001\\\"\\\\z\\377\"];\n") != NULL,
	    "%s", text);
	cr_assert(strstr(text,
	              "  repeated int32 packed_ints = 11 [packed = "
	              "true];\n") != NULL);
	free(text);
	/* A file: syntax, package, imports, then its definitions. */
	ASSERT_OK(zrpc_descriptor_pool_describe(
	    pool, "zdesc/v1/types.proto", &text));
	{
		const char *head = "zdesc/v1/types.proto is a file:\n"
		                   "syntax = \"proto3\";\n\n"
		                   "package zdesc.v1;\n\n"
		                   "import \"zdesc/v1/legacy.proto\";\n"
		                   "import \"zrpc/v1/options.proto\";\n\n"
		                   "message Scalars {\n";

		cr_assert(strncmp(text, head, strlen(head)) == 0, "%s", text);
	}
	cr_assert(strstr(text, "\nservice Types {\n") != NULL);
	free(text);
	st = zrpc_descriptor_pool_describe(pool, "zdesc.v1.Nope", &text);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND);
	cr_assert(strstr(st.message, "zdesc.v1.Nope") != NULL);
	cr_assert_null(text);
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, reflection_skips_services_described_by_hand)
{
	static const struct zrpc_method hand_methods[] = {
		{ "Do", "/hand.v1.Made/Do",
		    &ztest__v1__echo_request__descriptor,
		    &ztest__v1__echo_reply__descriptor, ZRPC_ROLE_NONE },
	};
	static const struct zrpc_service_desc hand = { "hand.v1.Made", 1,
		hand_methods, NULL };
	struct zrpc_method_binding            bindings[2];
	zrpc_server                          *server;
	zrpc_client                          *client;
	zrpc_descriptor_pool                 *pool;
	const char *const                    *names;
	size_t                                n;
	const struct zrpc_method             *m;
	char                                  url[256];
	zrpc_status                           st;

	memset(bindings, 0, sizeof(bindings)); /* no handlers: UNIMPLEMENTED */
	ASSERT_OK(zrpc_server_create(&server, NULL));
	ASSERT_OK(zrpc_server_listen(
	    server, test_unique_url("inproc", url, sizeof(url))));
	ASSERT_OK(zrpc_server_register(server, &hand, bindings, NULL));
	ASSERT_OK(zrpc_server_register(
	    server, &zdesc_v1_types_service, bindings, NULL));
	ASSERT_OK(zrpc_server_start(server));
	ASSERT_OK(zrpc_client_open(&client, url, NULL));
	ASSERT_OK(zrpc_descriptor_pool_new(&pool));

	st = zrpc_reflection_fetch(client, "hand.v1.Made", pool, NULL);
	cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", st.message);
	/* Every service with descriptors, the hand-made one left out. */
	ASSERT_OK(zrpc_reflection_fetch_all(client, pool, NULL));
	ASSERT_OK(zrpc_descriptor_pool_services(pool, &names, &n));
	cr_assert_eq(n, 3);
	cr_assert_str_eq(names[0], "zdesc.v1.Types");
	cr_assert_str_eq(names[1], "zrpc.v1.Health");
	cr_assert_str_eq(names[2], "zrpc.v1.Reflection");
	ASSERT_OK(
	    zrpc_descriptor_pool_find_method(pool, "zdesc.v1.Types/Echo", &m));
	cr_assert_eq(m->role, ZRPC_ROLE_WRITE);
	ASSERT_OK(zrpc_descriptor_pool_find_method(
	    pool, "zrpc.v1.Reflection/FileContainingSymbol", &m));
	cr_assert_eq(m->role, ZRPC_ROLE_READ);

	zrpc_descriptor_pool_free(pool);
	zrpc_client_close(client);
	zrpc_server_stop(server, 0);
	zrpc_server_destroy(server);
}

Test(descriptor, resolves_relative_type_names_from_the_inner_scope_out)
{
	zrpc_descriptor_pool                 *pool;
	Google__Protobuf__FileDescriptorProto file =
	    GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto outer =
	    GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto inner =
	    GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto top =
	    GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__FieldDescriptorProto f[3] = {
		GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT,
		GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT,
		GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT,
	};
	Google__Protobuf__FieldDescriptorProto *outer_fields[] = { &f[0],
		&f[1] };
	Google__Protobuf__FieldDescriptorProto *top_fields[]   = { &f[2] };
	Google__Protobuf__DescriptorProto      *messages[] = { &outer, &top };
	Google__Protobuf__DescriptorProto      *nested[]   = { &inner };
	const char *const names[] = { "inner", "other", "outer" };
	const char *const types[] = { "Inner", "Outer.Inner", "Outer" };
	const ProtobufCMessageDescriptor *o;
	const ProtobufCMessageDescriptor *t;
	uint8_t                          *data;
	size_t                            len;

	for (size_t i = 0; i < 3; i++) {
		f[i].name       = (char *) names[i];
		f[i].has_number = 1;
		f[i].number     = (int32_t) i + 1;
		f[i].has_label  = 1;
		f[i].label =
		    GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_OPTIONAL;
		f[i].type_name =
		    (char *) types[i]; /* no type: from the name */
	}
	file.name           = "rel.proto";
	file.package        = "rel.v1";
	file.n_message_type = 2;
	file.message_type   = messages;
	outer.name          = "Outer";
	outer.n_field       = 2;
	outer.field         = outer_fields;
	outer.n_nested_type = 1;
	outer.nested_type   = nested;
	inner.name          = "Inner";
	top.name            = "Top";
	top.n_field         = 1;
	top.field           = top_fields;
	data                = pack_file(&file, &len);
	ASSERT_OK(zrpc_descriptor_pool_new(&pool));
	ASSERT_OK(zrpc_descriptor_pool_add_file(pool, data, len));
	ASSERT_OK(zrpc_descriptor_pool_find_message(pool, "rel.v1.Outer", &o));
	ASSERT_OK(zrpc_descriptor_pool_find_message(pool, "rel.v1.Top", &t));
	cr_assert_str_eq(
	    ((const ProtobufCMessageDescriptor *) o->fields[0].descriptor)
	        ->name,
	    "rel.v1.Outer.Inner");
	cr_assert_eq(o->fields[0].descriptor, o->fields[1].descriptor);
	cr_assert_eq(t->fields[0].descriptor, o);
	cr_assert_eq(t->fields[0].type, PROTOBUF_C_TYPE_MESSAGE);
	free(data);
	zrpc_descriptor_pool_free(pool);
}

Test(descriptor, reflection_serves_the_rest_when_two_files_clash)
{
	Google__Protobuf__FileDescriptorProto file =
	    GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto message =
	    GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
	Google__Protobuf__DescriptorProto *messages[] = { &message };
	struct zrpc_file_descriptor        clash;
	struct zrpc_service_desc           copy = zos_v1_skills_service;
	struct zrpc_method_binding         bindings[8];
	zrpc_server                       *server;
	zrpc_client                       *client;
	zrpc_descriptor_pool              *pool;
	const struct zrpc_method          *m;
	char                               url[256];
	uint8_t                           *data;
	size_t                             len;
	zrpc_status                        st;

	/* "clash.proto" defines zos.v1.Skill, as zos/v1/zos.proto does. */
	file.name           = "clash.proto";
	file.package        = "zos.v1";
	file.n_message_type = 1;
	file.message_type   = messages;
	message.name        = "Skill";
	data                = pack_file(&file, &len);
	clash = (struct zrpc_file_descriptor) { "clash.proto", data, len, 0,
		NULL };
	copy.name      = "zos.v1.Clash"; /* another name, no methods */
	copy.n_methods = 0;
	copy.methods   = NULL;
	copy.file      = &clash;

	memset(bindings, 0, sizeof(bindings));
	ASSERT_OK(zrpc_server_create(&server, NULL));
	ASSERT_OK(zrpc_server_listen(
	    server, test_unique_url("inproc", url, sizeof(url))));
	ASSERT_OK(zrpc_server_register(server, &copy, bindings, NULL));
	ASSERT_OK(zrpc_server_register(
	    server, &zos_v1_skills_service, bindings, NULL));
	ASSERT_OK(zrpc_server_start(server));
	ASSERT_OK(zrpc_client_open(&client, url, NULL));
	ASSERT_OK(zrpc_descriptor_pool_new(&pool));

	/* Whichever file came second is left out; the rest is served. */
	ASSERT_OK(zrpc_reflection_fetch(client, "zrpc.v1.Health", pool, NULL));
	st = zrpc_reflection_fetch(client, "zos.v1.Skills", pool, NULL);
	if (zrpc_status_is_ok(&st)) {
		ASSERT_OK(zrpc_descriptor_pool_find_method(
		    pool, "zos.v1.Skills/Get", &m));
	} else {
		cr_assert_eq(st.code, ZRPC_NOT_FOUND, "%s", st.message);
	}
	ASSERT_OK(zrpc_descriptor_pool_find_method(
	    pool, "zrpc.v1.Health/Check", &m));

	zrpc_descriptor_pool_free(pool);
	zrpc_client_close(client);
	zrpc_server_stop(server, 0);
	zrpc_server_destroy(server);
	free(data);
}
