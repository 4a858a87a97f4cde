/*
 * descriptor_build: protobuf-c descriptors from FileDescriptorProtos.
 *
 * What protoc-c 1.4 would generate for a type is rebuilt here at run
 * time, rule for rule (protoc-c/c_message.cc, c_field.cc, c_enum.cc):
 *
 * - The struct: ProtobufCMessage base, then every field that is in no
 *   oneof in declaration order, then, per oneof (proto3 `optional`
 *   fields are in synthetic oneofs, as protoc-c 1.4 sees them), an int
 *   sized case enum and a union of its members. A repeated field is
 *   `size_t n_x; T *x;`, a proto2 optional scalar, enum or bytes field
 *   outside a oneof `protobuf_c_boolean has_x; T x;`. Each member sits at
 *   the offset the C compiler gives it: aligned to its type, the struct
 *   padded to its largest alignment (measured with offsetof, so it holds
 *   on any ABI).
 * - The field descriptors, sorted by number: a proto3 singular field is
 *   LABEL_NONE; quantifier_offset points at n_x, has_x or the oneof's
 *   case (0 otherwise); repeated scalars are PACKED when the option says
 *   so or, in proto3, unless it says not; proto3 strings default to
 *   protobuf_c_empty_string; proto2 defaults are parsed from their text.
 * - fields_sorted_by_name, and field_ranges: runs of consecutive numbers
 *   with a sentinel { 0, n_fields } that int_range_lookup reads.
 * - Enums: distinct values sorted by number (an alias keeps the first
 *   name), every name sorted by name, value ranges with a sentinel.
 *
 * Building is lazy and iterative: a message type referred to by a field
 * gets its (zeroed) descriptor at once, so that cycles close, and is
 * filled from a work list, never by recursion. When anything fails, every
 * descriptor of that build is forgotten (its memory stays in the arena
 * until the pool is freed) and the symbols can be tried again once the
 * missing file is added.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor_pool.h"

/* Field types and labels of descriptor.proto, shorter. */
#define T(name) GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_##name
#define LABEL(name) \
	GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_##name

/* In-struct alignment of each C type protoc-c uses. */
struct build_align_int32 {
	char    c;
	int32_t v;
};
struct build_align_int64 {
	char    c;
	int64_t v;
};
struct build_align_float {
	char  c;
	float v;
};
struct build_align_double {
	char   c;
	double v;
};
struct build_align_bool {
	char               c;
	protobuf_c_boolean v;
};
struct build_align_enum {
	char c;
	enum { BUILD_ENUM_ZERO = 0, BUILD_ENUM_BIG = 0x7fffffff } v;
};
struct build_align_pointer {
	char  c;
	void *v;
};
struct build_align_size {
	char   c;
	size_t v;
};
struct build_align_bytes {
	char                c;
	ProtobufCBinaryData v;
};
#define BUILD_ALIGN(name) offsetof(struct build_align_##name, v)

/* One build: what is waiting to be filled, and what to undo on failure. */
struct build {
	zrpc_descriptor_pool *pool;
	struct pool_symbol  **pending; /* messages allocated, not filled */
	size_t                n_pending;
	size_t                pending_cap;
	struct pool_symbol  **touched; /* every symbol given `built` */
	size_t                n_touched;
	size_t                touched_cap;
	zrpc_status           status;
};

/* Records a failure (the first one wins). Returns false. */
static bool build_fail(struct build *b, zrpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
build_fail(struct build *b, zrpc_code code, const char *fmt, ...)
{
	char    text[ZRPC_STATUS_MESSAGE_MAX];
	va_list ap;

	if (!zrpc_status_is_ok(&b->status)) {
		return false;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	b->status = zrpc_status_make(code, "%s", text);
	return false;
}

static bool
build_oom(struct build *b)
{
	return build_fail(b, ZRPC_RESOURCE_EXHAUSTED, "out of memory");
}

/* Appends SYM to the list *LIST (*N of *CAP). */
static bool
build_push(struct build *b, struct pool_symbol ***list, size_t *n, size_t *cap,
    struct pool_symbol *sym)
{
	if (*n == *cap) {
		size_t               grow = *cap != 0 ? *cap * 2 : 16;
		struct pool_symbol **bigger =
		    reallocarray(*list, grow, sizeof(bigger[0]));

		if (bigger == NULL) {
			return build_oom(b);
		}
		*list = bigger;
		*cap  = grow;
	}
	(*list)[(*n)++] = sym;
	return true;
}

/* Gives SYM the object BUILT, to be forgotten if the build fails. */
static bool
build_claim(struct build *b, struct pool_symbol *sym, void *built)
{
	if (!build_push(b, &b->touched, &b->n_touched, &b->touched_cap, sym)) {
		return false;
	}
	sym->built = built;
	return true;
}

/* ---- names as protoc-c spells them ---- */

/* "foo_bar" -> "FooBar" (protoc-c's ToCamel) into the arena. */
static char *
build_camel(struct build *b, const char *name, size_t len)
{
	char  *out = zrpc_dpool_alloc(b->pool, len + 1);
	bool   up  = true;
	size_t n   = 0;

	if (out == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '_') {
			up = true;
		} else if (up) {
			out[n++] = (char) (name[i] >= 'a' && name[i] <= 'z'
			        ? name[i] - 32
			        : name[i]);
			up       = false;
		} else {
			out[n++] = name[i];
		}
	}
	out[n] = '\0';
	return out;
}

/* "zos.v1.Skill" -> "Zos__V1__Skill" (protoc-c's FullNameToC). */
static char *
build_c_name(struct build *b, const char *full, bool upper)
{
	size_t len = strlen(full);
	char  *out = zrpc_dpool_alloc(b->pool, 3 * len + 1);
	size_t n   = 0;

	if (out == NULL) {
		return NULL;
	}
	for (const char *p = full; *p != '\0';) {
		const char *dot = strchr(p, '.');
		size_t piece    = dot != NULL ? (size_t) (dot - p) : strlen(p);
		char  *camel;

		if (piece > 0) {
			if (n > 0) {
				out[n++] = '_';
				out[n++] = '_';
			}
			if (upper) {
				/* protoc-c's CamelToUpper: "ProofState" ->
				 * "PROOF_STATE". */
				bool was_upper = true;

				for (size_t i = 0; i < piece; i++) {
					char c        = p[i];
					bool is_upper = c >= 'A' && c <= 'Z';

					if (is_upper && !was_upper) {
						out[n++] = '_';
					}
					out[n++] = (char) (c >= 'a' && c <= 'z'
					        ? c - 32
					        : c);
					was_upper = is_upper;
				}
			} else {
				if ((camel = build_camel(b, p, piece)) ==
				    NULL) {
					return NULL;
				}
				memcpy(out + n, camel, strlen(camel));
				n += strlen(camel);
			}
		}
		p += piece;
		if (*p == '.') {
			p++;
		}
	}
	out[n] = '\0';
	return out;
}

/* ---- enums ---- */

struct build_value {
	const char *name;
	int32_t     number;
	size_t      index;  /* declaration order */
	unsigned    unique; /* index among distinct values */
};

static int
build_compare_value_number(const void *a, const void *b)
{
	const struct build_value *x = a;
	const struct build_value *y = b;

	if (x->number != y->number) {
		return x->number < y->number ? -1 : 1;
	}
	return (x->index > y->index) - (x->index < y->index);
}

static int
build_compare_value_name(const void *a, const void *b)
{
	return strcmp(((const struct build_value *) a)->name,
	    ((const struct build_value *) b)->name);
}

/* Builds the enum SYM completely. */
static bool
build_enum(struct build *b, struct pool_symbol *sym)
{
	const Google__Protobuf__EnumDescriptorProto *e = sym->proto;
	ProtobufCEnumDescriptor                     *d;
	struct build_value                          *v;
	ProtobufCEnumValue                          *values;
	ProtobufCEnumValueIndex                     *by_name;
	ProtobufCIntRange                           *ranges;
	char                                        *upper;
	size_t                                       n        = e->n_value;
	unsigned                                     n_unique = 0;
	unsigned                                     n_ranges = 0;

	d       = zrpc_dpool_alloc(b->pool, sizeof(*d));
	values  = zrpc_dpool_alloc(b->pool, n * sizeof(*values));
	by_name = zrpc_dpool_alloc(b->pool, n * sizeof(*by_name));
	ranges  = zrpc_dpool_alloc(b->pool, (n + 1) * sizeof(*ranges));
	upper   = build_c_name(b, sym->name, true);
	if ((v = calloc(n, sizeof(*v))) == NULL || d == NULL ||
	    values == NULL || by_name == NULL || ranges == NULL ||
	    upper == NULL) {
		free(v);
		return build_oom(b);
	}
	for (size_t i = 0; i < n; i++) {
		v[i].name   = e->value[i]->name;
		v[i].number = e->value[i]->number;
		v[i].index  = i;
	}
	qsort(v, n, sizeof(*v), build_compare_value_number);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || v[i].number != v[i - 1].number) {
			ProtobufCEnumValue *value = &values[n_unique];
			size_t c_len  = strlen(upper) + 2 + strlen(v[i].name);
			char  *c_name = zrpc_dpool_alloc(b->pool, c_len + 1);

			if (c_name == NULL) {
				free(v);
				return build_oom(b);
			}
			snprintf(
			    c_name, c_len + 1, "%s__%s", upper, v[i].name);
			value->name   = v[i].name;
			value->c_name = c_name;
			value->value  = v[i].number;
			/* A new range unless it continues the last one. */
			if (n_unique == 0 ||
			    (int64_t) v[i].number !=
			        (int64_t) values[n_unique - 1].value + 1) {
				ranges[n_ranges].start_value = v[i].number;
				ranges[n_ranges].orig_index  = n_unique;
				n_ranges++;
			}
			n_unique++;
		}
		v[i].unique = n_unique - 1;
	}
	ranges[n_ranges].start_value = 0;
	ranges[n_ranges].orig_index  = n_unique;
	qsort(v, n, sizeof(*v), build_compare_value_name);
	for (size_t i = 0; i < n; i++) {
		by_name[i].name  = v[i].name;
		by_name[i].index = v[i].unique;
	}
	free(v);

	d->magic          = PROTOBUF_C__ENUM_DESCRIPTOR_MAGIC;
	d->name           = sym->name;
	d->short_name     = e->name;
	d->c_name         = build_c_name(b, sym->name, false);
	d->package_name   = sym->file->package;
	d->n_values       = n_unique;
	d->values         = values;
	d->n_value_names  = (unsigned) n;
	d->values_by_name = by_name;
	d->n_value_ranges = n_ranges;
	d->value_ranges   = ranges;
	if (d->c_name == NULL) {
		return build_oom(b);
	}
	return build_claim(b, sym, d);
}

/* The descriptor of enum SYM, built now if needed; NULL on failure. */
static const ProtobufCEnumDescriptor *
build_ref_enum(struct build *b, struct pool_symbol *sym)
{
	zrpc_status status;

	if (sym->built != NULL) {
		return sym->built;
	}
	status = zrpc_dpool_check_imports(b->pool, sym->file);
	if (!zrpc_status_is_ok(&status)) {
		b->status = status;
		return NULL;
	}
	return build_enum(b, sym) ? sym->built : NULL;
}

/*
 * The descriptor of message SYM: allocated now (zeroed) and filled later
 * from the work list; NULL on failure.
 */
static const ProtobufCMessageDescriptor *
build_ref_message(struct build *b, struct pool_symbol *sym)
{
	ProtobufCMessageDescriptor *d;
	zrpc_status                 status;

	if (sym->built != NULL) {
		return sym->built;
	}
	status = zrpc_dpool_check_imports(b->pool, sym->file);
	if (!zrpc_status_is_ok(&status)) {
		b->status = status;
		return NULL;
	}
	if ((d = zrpc_dpool_alloc(b->pool, sizeof(*d))) == NULL) {
		build_oom(b);
		return NULL;
	}
	if (!build_push(b, &b->pending, &b->n_pending, &b->pending_cap, sym) ||
	    !build_claim(b, sym, d)) {
		return NULL;
	}
	return d;
}

/* ---- default values ---- */

/* Unescapes protoc's C-escaped bytes default TEXT into OUT. */
static bool
build_unescape(struct build *b, const char *text, ProtobufCBinaryData *out)
{
	size_t   len  = strlen(text);
	uint8_t *data = zrpc_dpool_alloc(b->pool, len + 1);
	size_t   n    = 0;

	if (data == NULL) {
		return build_oom(b);
	}
	for (size_t i = 0; i < len; i++) {
		unsigned value;

		if (text[i] != '\\' || i + 1 == len) {
			data[n++] = (uint8_t) text[i];
			continue;
		}
		switch (text[++i]) {
		case 'a':
			data[n++] = '\a';
			break;
		case 'b':
			data[n++] = '\b';
			break;
		case 'f':
			data[n++] = '\f';
			break;
		case 'n':
			data[n++] = '\n';
			break;
		case 'r':
			data[n++] = '\r';
			break;
		case 't':
			data[n++] = '\t';
			break;
		case 'v':
			data[n++] = '\v';
			break;
		case 'x':
			value = 0;
			for (unsigned k = 0; k < 2 && i + 1 < len; k++) {
				char c = text[i + 1];

				if (c >= '0' && c <= '9') {
					value =
					    value * 16 + (unsigned) (c - '0');
				} else if (c >= 'a' && c <= 'f') {
					value = value * 16 +
					    (unsigned) (c - 'a' + 10);
				} else if (c >= 'A' && c <= 'F') {
					value = value * 16 +
					    (unsigned) (c - 'A' + 10);
				} else {
					break;
				}
				i++;
			}
			data[n++] = (uint8_t) value;
			break;
		default:
			if (text[i] >= '0' && text[i] <= '7') {
				value = (unsigned) (text[i] - '0');
				for (unsigned k = 0; k < 2 && i + 1 < len &&
				     text[i + 1] >= '0' && text[i + 1] <= '7';
				     k++) {
					value = value * 8 +
					    (unsigned) (text[++i] - '0');
				}
				data[n++] = (uint8_t) value;
			} else {
				data[n++] =
				    (uint8_t) text[i]; /* \\ \' \" \? */
			}
			break;
		}
	}
	out->data = data;
	out->len  = n;
	return true;
}

/*
 * The default value of field F (FP in message M), as protoc-c would point
 * at it, in *OUT (NULL: none). ENUM_PROTO is the field's enum type.
 */
static bool
build_default(struct build *b, const struct pool_symbol *m,
    const Google__Protobuf__FieldDescriptorProto *fp,
    ProtobufCFieldDescriptor                     *f,
    const Google__Protobuf__EnumDescriptorProto  *enum_proto)
{
	const char *text = fp->default_value;
	char       *end  = NULL;
	void       *value;

	f->default_value = NULL;
	if (text == NULL && m->file->proto3 &&
	    f->type == PROTOBUF_C_TYPE_STRING) {
		/* Repeated ones too, as protoc-c (init skips those). */
		f->default_value = protobuf_c_empty_string;
		return true;
	}
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		return true; /* protoc refuses a default there */
	}
	if (text == NULL) {
		if (!m->file->proto3 && f->type == PROTOBUF_C_TYPE_ENUM &&
		    enum_proto != NULL && enum_proto->n_value > 0) {
			/* proto2: an enum defaults to its first value. */
			int32_t *number =
			    zrpc_dpool_alloc(b->pool, sizeof(*number));

			if (number == NULL) {
				return build_oom(b);
			}
			*number          = enum_proto->value[0]->number;
			f->default_value = number;
		}
		return true;
	}
	if ((value = zrpc_dpool_alloc(
	         b->pool, sizeof(ProtobufCBinaryData) + 8)) == NULL) {
		return build_oom(b);
	}
	errno = 0;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: {
		long long x = strtoll(text, &end, 10);

		if (x < INT32_MIN || x > INT32_MAX) {
			errno = ERANGE;
		}
		*(int32_t *) value = (int32_t) x;
		break;
	}
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: {
		unsigned long long x = strtoull(text, &end, 10);

		if (x > UINT32_MAX || text[0] == '-') {
			errno = ERANGE;
		}
		*(uint32_t *) value = (uint32_t) x;
		break;
	}
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *) value = strtoll(text, &end, 10);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (text[0] == '-') {
			errno = ERANGE;
		}
		*(uint64_t *) value = strtoull(text, &end, 10);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *) value = strtof(text, &end);
		errno = 0; /* overflow to inf is what protoc means */
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *) value = strtod(text, &end);
		errno             = 0;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
			*(protobuf_c_boolean *) value = text[0] == 't';
			end = (char *) text + strlen(text);
		}
		break;
	case PROTOBUF_C_TYPE_ENUM:
		for (size_t i = 0;
		     enum_proto != NULL && i < enum_proto->n_value; i++) {
			if (strcmp(enum_proto->value[i]->name, text) == 0) {
				*(int32_t *) value =
				    enum_proto->value[i]->number;
				end = (char *) text + strlen(text);
				break;
			}
		}
		break;
	case PROTOBUF_C_TYPE_STRING: {
		char *copy = zrpc_dpool_strndup(b->pool, text, strlen(text));

		if (copy == NULL) {
			return build_oom(b);
		}
		f->default_value = copy; /* the string itself, as protoc-c */
		return true;
	}
	case PROTOBUF_C_TYPE_BYTES:
		if (!build_unescape(b, text, value)) {
			return false;
		}
		end = (char *) text + strlen(text);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		return build_fail(b, ZRPC_INVALID_ARGUMENT,
		    "%s: message %s: field %s: a message field cannot have a "
		    "default",
		    m->file->name, m->name, fp->name);
	}
	if (end == NULL || end == text || *end != '\0' || errno != 0) {
		return build_fail(b, ZRPC_INVALID_ARGUMENT,
		    "%s: message %s: field %s: bad default value \"%.64s\"",
		    m->file->name, m->name, fp->name, text);
	}
	f->default_value = value;
	return true;
}

/* ---- messages ---- */

/* protobuf-c's type for descriptor.proto's TYPE (checked at add time). */
static ProtobufCType
build_type(Google__Protobuf__FieldDescriptorProto__Type type)
{
	switch (type) {
	case T(DOUBLE):
		return PROTOBUF_C_TYPE_DOUBLE;
	case T(FLOAT):
		return PROTOBUF_C_TYPE_FLOAT;
	case T(INT64):
		return PROTOBUF_C_TYPE_INT64;
	case T(UINT64):
		return PROTOBUF_C_TYPE_UINT64;
	case T(INT32):
		return PROTOBUF_C_TYPE_INT32;
	case T(FIXED64):
		return PROTOBUF_C_TYPE_FIXED64;
	case T(FIXED32):
		return PROTOBUF_C_TYPE_FIXED32;
	case T(BOOL):
		return PROTOBUF_C_TYPE_BOOL;
	case T(STRING):
		return PROTOBUF_C_TYPE_STRING;
	case T(BYTES):
		return PROTOBUF_C_TYPE_BYTES;
	case T(UINT32):
		return PROTOBUF_C_TYPE_UINT32;
	case T(ENUM):
		return PROTOBUF_C_TYPE_ENUM;
	case T(SFIXED32):
		return PROTOBUF_C_TYPE_SFIXED32;
	case T(SFIXED64):
		return PROTOBUF_C_TYPE_SFIXED64;
	case T(SINT32):
		return PROTOBUF_C_TYPE_SINT32;
	case T(SINT64):
		return PROTOBUF_C_TYPE_SINT64;
	default:
		return PROTOBUF_C_TYPE_MESSAGE;
	}
}

/* Whether protoc-c may pack a repeated field of TYPE. */
static bool
build_packable(ProtobufCType type)
{
	return type != PROTOBUF_C_TYPE_STRING &&
	    type != PROTOBUF_C_TYPE_BYTES && type != PROTOBUF_C_TYPE_MESSAGE;
}

/* Size and in-struct alignment of a singular member of TYPE. */
static void
build_member_size(ProtobufCType type, size_t *size, size_t *align)
{
	*size  = sizeof(void *); /* every type is below; for the compiler */
	*align = BUILD_ALIGN(pointer);
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*size  = sizeof(int32_t);
		*align = BUILD_ALIGN(int32);
		return;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*size  = sizeof(int64_t);
		*align = BUILD_ALIGN(int64);
		return;
	case PROTOBUF_C_TYPE_FLOAT:
		*size  = sizeof(float);
		*align = BUILD_ALIGN(float);
		return;
	case PROTOBUF_C_TYPE_DOUBLE:
		*size  = sizeof(double);
		*align = BUILD_ALIGN(double);
		return;
	case PROTOBUF_C_TYPE_BOOL:
		*size  = sizeof(protobuf_c_boolean);
		*align = BUILD_ALIGN(bool);
		return;
	case PROTOBUF_C_TYPE_ENUM:
		*size  = sizeof(((struct build_align_enum *) 0)->v);
		*align = BUILD_ALIGN(enum);
		return;
	case PROTOBUF_C_TYPE_BYTES:
		*size  = sizeof(ProtobufCBinaryData);
		*align = BUILD_ALIGN(bytes);
		return;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		*size  = sizeof(void *);
		*align = BUILD_ALIGN(pointer);
		return;
	}
}

/* The struct being laid out. */
struct build_layout {
	size_t offset;
	size_t align;
};

/* Places a member of SIZE and ALIGN; returns its offset. */
static size_t
build_place(struct build_layout *l, size_t size, size_t align)
{
	size_t at = (l->offset + align - 1) / align * align;

	l->offset = at + size;
	if (align > l->align) {
		l->align = align;
	}
	return at;
}

struct build_name_index {
	const char *name;
	unsigned    index;
};

static int
build_compare_fields(const void *a, const void *b)
{
	const ProtobufCFieldDescriptor *x = a;
	const ProtobufCFieldDescriptor *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static int
build_compare_name_index(const void *a, const void *b)
{
	return strcmp(((const struct build_name_index *) a)->name,
	    ((const struct build_name_index *) b)->name);
}

/*
 * Fills F from FP, a field of message M (not its offsets). Resolves its
 * type.
 */
static bool
build_field(struct build *b, const struct pool_symbol *m,
    const Google__Protobuf__FieldDescriptorProto *fp,
    ProtobufCFieldDescriptor                     *f)
{
	const Google__Protobuf__EnumDescriptorProto *enum_proto = NULL;
	const Google__Protobuf__FieldOptions        *options    = fp->options;
	bool                                         proto3 = m->file->proto3;

	f->name = fp->name;
	f->id   = (uint32_t) fp->number;
	switch (fp->label) {
	case LABEL(REQUIRED):
		f->label = PROTOBUF_C_LABEL_REQUIRED;
		break;
	case LABEL(REPEATED):
		f->label = PROTOBUF_C_LABEL_REPEATED;
		break;
	default:
		f->label =
		    proto3 ? PROTOBUF_C_LABEL_NONE : PROTOBUF_C_LABEL_OPTIONAL;
		break;
	}
	if (fp->has_type && fp->type != T(MESSAGE) && fp->type != T(ENUM)) {
		f->type = build_type(fp->type);
	} else {
		struct pool_symbol *type =
		    zrpc_dpool_resolve(b->pool, m->name, fp->type_name);

		if (type == NULL) {
			return build_fail(b, ZRPC_FAILED_PRECONDITION,
			    "%s: message %s: field %s: type %s is not in the "
			    "descriptor pool",
			    m->file->name, m->name, fp->name, fp->type_name);
		}
		if ((type->kind != POOL_MESSAGE && type->kind != POOL_ENUM) ||
		    (fp->has_type &&
		        (fp->type == T(MESSAGE)) !=
		            (type->kind == POOL_MESSAGE))) {
			return build_fail(b, ZRPC_INVALID_ARGUMENT,
			    "%s: message %s: field %s: %s is not a%s",
			    m->file->name, m->name, fp->name, type->name,
			    fp->has_type && fp->type == T(ENUM)
			        ? "n enum"
			        : " message or enum");
		}
		if (type->kind == POOL_MESSAGE) {
			f->type       = PROTOBUF_C_TYPE_MESSAGE;
			f->descriptor = build_ref_message(b, type);
		} else {
			f->type       = PROTOBUF_C_TYPE_ENUM;
			f->descriptor = build_ref_enum(b, type);
			enum_proto    = type->proto;
		}
		if (f->descriptor == NULL) {
			return false;
		}
	}
	f->flags = 0;
	if (f->label == PROTOBUF_C_LABEL_REPEATED && build_packable(f->type)) {
		if (options != NULL && options->has_packed) {
			if (options->packed) {
				f->flags |= PROTOBUF_C_FIELD_FLAG_PACKED;
			}
		} else if (proto3) {
			f->flags |= PROTOBUF_C_FIELD_FLAG_PACKED;
		}
	}
	if (options != NULL && options->has_deprecated &&
	    options->deprecated) {
		f->flags |= PROTOBUF_C_FIELD_FLAG_DEPRECATED;
	}
	if (fp->has_oneof_index) {
		f->flags |= PROTOBUF_C_FIELD_FLAG_ONEOF;
	}
	return build_default(b, m, fp, f, enum_proto);
}

/* Fills the message descriptor of SYM (allocated by build_ref_message). */
static bool
build_message(struct build *b, struct pool_symbol *sym)
{
	const Google__Protobuf__DescriptorProto *mp = sym->proto;
	ProtobufCMessageDescriptor              *d  = sym->built;
	ProtobufCFieldDescriptor                *fields;
	unsigned                                *by_name;
	ProtobufCIntRange                       *ranges;
	struct build_name_index                 *names;
	struct build_layout layout   = { sizeof(ProtobufCMessage),
		  BUILD_ALIGN(pointer) };
	size_t              n        = mp->n_field;
	unsigned            n_ranges = 0;

	fields  = zrpc_dpool_alloc(b->pool, n * sizeof(*fields));
	by_name = zrpc_dpool_alloc(b->pool, n * sizeof(*by_name));
	ranges  = zrpc_dpool_alloc(b->pool, (n + 1) * sizeof(*ranges));
	if (fields == NULL || by_name == NULL || ranges == NULL) {
		return build_oom(b);
	}
	/* Members outside oneofs, in declaration order. */
	for (size_t i = 0; i < n; i++) {
		const Google__Protobuf__FieldDescriptorProto *fp =
		    mp->field[i];
		ProtobufCFieldDescriptor *f = &fields[i];
		size_t                    size;
		size_t                    align;

		if (!build_field(b, sym, fp, f)) {
			return false;
		}
		if (fp->has_oneof_index) {
			continue;
		}
		build_member_size(f->type, &size, &align);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			f->quantifier_offset = (unsigned) build_place(
			    &layout, sizeof(size_t), BUILD_ALIGN(size));
			f->offset = (unsigned) build_place(
			    &layout, sizeof(void *), BUILD_ALIGN(pointer));
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
		    f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE) {
			f->quantifier_offset = (unsigned) build_place(&layout,
			    sizeof(protobuf_c_boolean), BUILD_ALIGN(bool));
		}
		f->offset = (unsigned) build_place(&layout, size, align);
	}
	/* Then each oneof: its case, and a union of its members. */
	for (size_t k = 0; k < mp->n_oneof_decl; k++) {
		size_t union_size  = 0;
		size_t union_align = 1;
		size_t case_offset;
		size_t union_offset;

		for (size_t i = 0; i < n; i++) {
			size_t size;
			size_t align;

			if (!mp->field[i]->has_oneof_index ||
			    (size_t) mp->field[i]->oneof_index != k) {
				continue;
			}
			build_member_size(fields[i].type, &size, &align);
			union_size = size > union_size ? size : union_size;
			union_align =
			    align > union_align ? align : union_align;
		}
		union_size =
		    (union_size + union_align - 1) / union_align * union_align;
		case_offset  = build_place(&layout,
		     sizeof(((struct build_align_enum *) 0)->v),
		     BUILD_ALIGN(enum));
		union_offset = build_place(&layout, union_size, union_align);
		for (size_t i = 0; i < n; i++) {
			if (mp->field[i]->has_oneof_index &&
			    (size_t) mp->field[i]->oneof_index == k) {
				fields[i].quantifier_offset =
				    (unsigned) case_offset;
				fields[i].offset = (unsigned) union_offset;
			}
		}
	}
	if (n > 1) {
		qsort(fields, n, sizeof(*fields), build_compare_fields);
	}
	/* By name, and the runs of consecutive numbers. */
	if (n > 0 && (names = calloc(n, sizeof(*names))) == NULL) {
		return build_oom(b);
	}
	for (size_t i = 0; i < n; i++) {
		names[i].name  = fields[i].name;
		names[i].index = (unsigned) i;
		if (i == 0 || fields[i].id != fields[i - 1].id + 1) {
			ranges[n_ranges].start_value = (int) fields[i].id;
			ranges[n_ranges].orig_index  = (unsigned) i;
			n_ranges++;
		}
	}
	ranges[n_ranges].start_value = 0;
	ranges[n_ranges].orig_index  = (unsigned) n;
	if (n > 0) {
		qsort(names, n, sizeof(*names), build_compare_name_index);
		for (size_t i = 0; i < n; i++) {
			by_name[i] = names[i].index;
		}
		free(names);
	}

	d->magic        = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
	d->name         = sym->name;
	d->short_name   = build_camel(b, mp->name, strlen(mp->name));
	d->c_name       = build_c_name(b, sym->name, false);
	d->package_name = sym->file->package;
	d->sizeof_message =
	    (layout.offset + layout.align - 1) / layout.align * layout.align;
	d->n_fields              = (unsigned) n;
	d->fields                = n > 0 ? fields : NULL;
	d->fields_sorted_by_name = n > 0 ? by_name : NULL;
	d->n_field_ranges        = n_ranges;
	d->field_ranges          = n > 0 ? ranges : NULL;
	d->message_init          = NULL; /* see zrpc_message_init */
	if (d->short_name == NULL || d->c_name == NULL) {
		return build_oom(b);
	}
	return true;
}

/* Fills every message waiting in the work list. */
static bool
build_drain(struct build *b)
{
	while (b->n_pending > 0) {
		if (!build_message(b, b->pending[--b->n_pending])) {
			return false;
		}
	}
	return true;
}

/* ---- services and methods ---- */

/* Resolves a method's TYPE_NAME (a message) from the service SERVICE. */
static const ProtobufCMessageDescriptor *
build_method_type(struct build *b, const struct pool_symbol *service,
    const char *method, const char *type_name)
{
	struct pool_symbol *type =
	    zrpc_dpool_resolve(b->pool, service->name, type_name);

	if (type == NULL || type->kind != POOL_MESSAGE) {
		build_fail(b,
		    type == NULL ? ZRPC_FAILED_PRECONDITION
		                 : ZRPC_INVALID_ARGUMENT,
		    "%s: method %s.%s: %s %s", service->file->name,
		    service->name, method, type_name,
		    type == NULL ? "is not in the descriptor pool"
		                 : "is not a message");
		return NULL;
	}
	return build_ref_message(b, type);
}

/* Builds the zrpc_method of method SYM. */
static bool
build_method(struct build *b, struct pool_symbol *sym)
{
	const Google__Protobuf__MethodDescriptorProto *mp = sym->proto;
	struct zrpc_method                            *m;
	const char                                    *role_name;
	size_t path_len = strlen(sym->parent->name) + strlen(mp->name) + 2;
	char  *path;

	m    = zrpc_dpool_alloc(b->pool, sizeof(*m));
	path = zrpc_dpool_alloc(b->pool, path_len + 1);
	if (m == NULL || path == NULL) {
		return build_oom(b);
	}
	snprintf(path, path_len + 1, "/%s/%s", sym->parent->name, mp->name);
	m->name  = mp->name;
	m->path  = path;
	m->input = build_method_type(b, sym->parent, mp->name, mp->input_type);
	m->output =
	    build_method_type(b, sym->parent, mp->name, mp->output_type);
	m->role = zrpc_dpool_method_role(mp->options, &role_name);
	if (m->input == NULL || m->output == NULL) {
		return false;
	}
	return build_claim(b, sym, m);
}

/* Builds the protobuf-c descriptor of service SYM. */
static bool
build_service(struct build *b, struct pool_symbol *sym)
{
	const Google__Protobuf__ServiceDescriptorProto *sp = sym->proto;
	ProtobufCServiceDescriptor                     *d;
	ProtobufCMethodDescriptor                      *methods;
	unsigned                                       *by_name;
	struct build_name_index                        *names = NULL;
	size_t                                          n     = sp->n_method;

	d       = zrpc_dpool_alloc(b->pool, sizeof(*d));
	methods = zrpc_dpool_alloc(b->pool, n * sizeof(*methods));
	by_name = zrpc_dpool_alloc(b->pool, n * sizeof(*by_name));
	if (d == NULL || methods == NULL || by_name == NULL ||
	    (n > 0 && (names = calloc(n, sizeof(*names))) == NULL)) {
		return build_oom(b);
	}
	for (size_t i = 0; i < n; i++) {
		const Google__Protobuf__MethodDescriptorProto *mp =
		    sp->method[i];

		methods[i].name = mp->name;
		methods[i].input =
		    build_method_type(b, sym, mp->name, mp->input_type);
		methods[i].output =
		    build_method_type(b, sym, mp->name, mp->output_type);
		if (methods[i].input == NULL || methods[i].output == NULL) {
			free(names);
			return false;
		}
		names[i].name  = mp->name;
		names[i].index = (unsigned) i;
	}
	if (n > 1) {
		qsort(names, n, sizeof(*names), build_compare_name_index);
	}
	for (size_t i = 0; i < n; i++) {
		by_name[i] = names[i].index;
	}
	free(names);
	d->magic                  = PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC;
	d->name                   = sym->name;
	d->short_name             = sp->name;
	d->c_name                 = build_c_name(b, sym->name, false);
	d->package                = sym->file->package;
	d->n_methods              = (unsigned) n;
	d->methods                = methods;
	d->method_indices_by_name = by_name;
	if (d->c_name == NULL) {
		return build_oom(b);
	}
	return build_claim(b, sym, d);
}

zrpc_status
zrpc_dpool_build(
    zrpc_descriptor_pool *pool, struct pool_symbol *sym, void **out)
{
	struct build b = { .pool = pool, .status = zrpc_status_ok() };
	bool         ok;

	*out = NULL;
	if (sym->built != NULL) {
		*out = sym->built;
		return zrpc_status_ok();
	}
	b.status = zrpc_dpool_check_imports(pool, sym->file);
	if (!zrpc_status_is_ok(&b.status)) {
		return b.status;
	}
	switch (sym->kind) {
	case POOL_MESSAGE:
		ok = build_ref_message(&b, sym) != NULL;
		break;
	case POOL_ENUM:
		ok = build_ref_enum(&b, sym) != NULL;
		break;
	case POOL_SERVICE:
		ok = build_service(&b, sym);
		break;
	case POOL_METHOD:
	default:
		ok = build_method(&b, sym);
		break;
	}
	ok = ok && build_drain(&b);
	if (!ok) {
		if (zrpc_status_is_ok(&b.status)) {
			b.status = zrpc_status_make(
			    ZRPC_INTERNAL, "building %s failed", sym->name);
		}
		for (size_t i = 0; i < b.n_touched; i++) {
			b.touched[i]->built = NULL;
		}
	} else {
		*out = sym->built;
	}
	free(b.pending);
	free(b.touched);
	return b.status;
}
