/*
 * protobuf text format: zos_pbtext_print (see pbtext.h).
 *
 * Written to a memory stream (open_memstream) along the descriptors, with
 * the presence rules of pbjson (pbjson_descriptor.h), so that JSON and
 * text show the same fields.
 */
#include "pbtext.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson_descriptor.h"

/* Writes BYTES (LEN) quoted and escaped as protoc's CEscape. */
static void
pbtext_string(FILE *out, const uint8_t *bytes, size_t len)
{
	fputc('"', out);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = bytes[i];

		switch (c) {
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		case '"':
			fputs("\\\"", out);
			break;
		case '\'':
			fputs("\\'", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		default:
			if (c < 0x20 || c >= 0x7f) {
				fprintf(out, "\\%03o", c);
			} else {
				fputc(c, out);
			}
		}
	}
	fputc('"', out);
}

/* A float or double: the shortest that reads back, or inf/-inf/nan. */
static void
pbtext_real(FILE *out, double value, bool single)
{
	char text[40];

	if (isnan(value)) {
		fputs("nan", out);
		return;
	}
	if (isinf(value)) {
		fputs(value > 0 ? "inf" : "-inf", out);
		return;
	}
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(text, sizeof(text), "%.*g", precision, value);
		if (single ? strtof(text, NULL) == (float) value
		           : strtod(text, NULL) == value) {
			break;
		}
	}
	fputs(text, out);
}

static void pbtext_message(
    FILE *out, const ProtobufCMessage *message, bool emit_defaults, int depth);

/* One value of FIELD (held at MEMBER), after "name: " or as "name {". */
static void
pbtext_value(FILE *out, const ProtobufCFieldDescriptor *field,
    const void *member, bool emit_defaults, int depth)
{
	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%s: %" PRId32 "\n", field->name,
		    *(const int32_t *) member);
		return;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%s: %" PRIu32 "\n", field->name,
		    *(const uint32_t *) member);
		return;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "%s: %" PRId64 "\n", field->name,
		    *(const int64_t *) member);
		return;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(out, "%s: %" PRIu64 "\n", field->name,
		    *(const uint64_t *) member);
		return;
	case PROTOBUF_C_TYPE_FLOAT:
		fprintf(out, "%s: ", field->name);
		pbtext_real(out, *(const float *) member, true);
		fputc('\n', out);
		return;
	case PROTOBUF_C_TYPE_DOUBLE:
		fprintf(out, "%s: ", field->name);
		pbtext_real(out, *(const double *) member, false);
		fputc('\n', out);
		return;
	case PROTOBUF_C_TYPE_BOOL:
		fprintf(out, "%s: %s\n", field->name,
		    *(const protobuf_c_boolean *) member ? "true" : "false");
		return;
	case PROTOBUF_C_TYPE_ENUM: {
		int                       number = *(const int *) member;
		const ProtobufCEnumValue *known =
		    protobuf_c_enum_descriptor_get_value(
		        field->descriptor, number);

		if (known != NULL) {
			fprintf(out, "%s: %s\n", field->name, known->name);
		} else {
			fprintf(out, "%s: %d\n", field->name, number);
		}
		return;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *) member;

		fprintf(out, "%s: ", field->name);
		if (s == NULL) {
			s = "";
		}
		pbtext_string(out, (const uint8_t *) s, strlen(s));
		fputc('\n', out);
		return;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = member;

		fprintf(out, "%s: ", field->name);
		pbtext_string(out, b->data, b->len);
		fputc('\n', out);
		return;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub =
		    *(ProtobufCMessage *const *) member;

		fprintf(out, "%s {\n", field->name);
		if (sub != NULL) {
			pbtext_message(out, sub, emit_defaults, depth + 1);
		}
		fprintf(out, "%*s}\n", 2 * depth, "");
		return;
	}
	}
}

static void
pbtext_message(
    FILE *out, const ProtobufCMessage *message, bool emit_defaults, int depth)
{
	const ProtobufCMessageDescriptor *desc = message->descriptor;

	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *field = &desc->fields[i];
		const char *member = (const char *) message + field->offset;

		if (!pbjson_field_present(message, field, emit_defaults)) {
			continue;
		}
		if (field->label != PROTOBUF_C_LABEL_REPEATED) {
			fprintf(out, "%*s", 2 * depth, "");
			pbtext_value(out, field, member, emit_defaults, depth);
			continue;
		}
		size_t      count = *(const size_t *) ((const char *) message +
                    field->quantifier_offset);
		const char *array = *(char *const *) member;
		size_t      size  = pbjson_element_size(field->type);

		for (size_t k = 0; k < count; k++) {
			fprintf(out, "%*s", 2 * depth, "");
			pbtext_value(out, field, array + k * size,
			    emit_defaults, depth);
		}
	}
}

char *
zos_pbtext_print(const ProtobufCMessage *message, bool emit_defaults,
    char *error, size_t error_len)
{
	char  *text = NULL;
	size_t len  = 0;
	FILE  *out  = open_memstream(&text, &len);

	if (out == NULL) {
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	pbtext_message(out, message, emit_defaults, 0);
	if (ferror(out)) {
		fclose(out);
		free(text);
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	if (fclose(out) != 0) {
		free(text);
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	return text;
}
