/*
 * base64 for pbjson's bytes fields; see pbjson_base64.h.
 *
 * Output is what protoc's JSON printer writes (standard alphabet, padded);
 * input is what its parser accepts (either alphabet, padding optional, but
 * padding that is there must be right). Both sides allocate their result
 * with one malloc of the exact size, computed up front, so there is no
 * growing buffer and exactly one allocation to fail.
 */
#include "pbjson_base64.h"

#include <stdlib.h>

static const char pbjson_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The value of one base64 digit, either alphabet; -1 for none. */
static int
pbjson_base64_digit(char c)
{
	if (c >= 'A' && c <= 'Z') {
		return c - 'A';
	}
	if (c >= 'a' && c <= 'z') {
		return c - 'a' + 26;
	}
	if (c >= '0' && c <= '9') {
		return c - '0' + 52;
	}
	if (c == '+' || c == '-') {
		return 62;
	}
	if (c == '/' || c == '_') {
		return 63;
	}
	return -1;
}

/*
 * Decodes base64 TEXT of LEN characters (standard or URL-safe alphabet,
 * padding optional) into OUT (malloc'd; NULL when empty). Returns 0, -1 when
 * TEXT is not base64, -2 when out of memory.
 */
int
pbjson_base64_decode(const char *text, size_t len, ProtobufCBinaryData *out)
{
	size_t   padding = 0, digits, size, at = 0;
	uint32_t bits = 0;
	uint8_t *data;

	while (len > 0 && text[len - 1] == '=' && padding < 2) {
		len--;
		padding++;
	}
	if (padding > 0 && (len + padding) % 4 != 0) {
		return -1;
	}
	digits = len;
	if (digits % 4 == 1) {
		return -1;
	}
	size      = digits / 4 * 3 + (digits % 4 == 0 ? 0 : digits % 4 - 1);
	out->len  = 0;
	out->data = NULL;
	if (size == 0) {
		return digits == 0 ? 0 : -1;
	}
	data = malloc(size);
	if (data == NULL) {
		return -2;
	}
	for (size_t i = 0; i < digits; i++) {
		int v = pbjson_base64_digit(text[i]);

		if (v < 0) {
			free(data);
			return -1;
		}
		bits = (bits << 6) | (uint32_t) v;
		if (i % 4 == 3) {
			data[at++] = (uint8_t) (bits >> 16);
			data[at++] = (uint8_t) (bits >> 8);
			data[at++] = (uint8_t) bits;
			bits       = 0;
		}
	}
	if (digits % 4 == 2) {
		data[at++] = (uint8_t) (bits >> 4);
	} else if (digits % 4 == 3) {
		data[at++] = (uint8_t) (bits >> 10);
		data[at++] = (uint8_t) (bits >> 2);
	}
	out->len  = size;
	out->data = data;
	return 0;
}

char *
pbjson_base64_encode(const uint8_t *data, size_t len, size_t *text_len)
{
	size_t at = 0;
	char  *text;

	text = malloc(4 * ((len + 2) / 3) + 1);
	if (text == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < len; i += 3) {
		uint32_t bits = (uint32_t) data[i] << 16;
		size_t   left = len - i;

		if (left > 1) {
			bits |= (uint32_t) data[i + 1] << 8;
		}
		if (left > 2) {
			bits |= data[i + 2];
		}
		text[at++] = pbjson_base64_alphabet[(bits >> 18) & 63];
		text[at++] = pbjson_base64_alphabet[(bits >> 12) & 63];
		text[at++] =
		    left > 1 ? pbjson_base64_alphabet[(bits >> 6) & 63] : '=';
		text[at++] =
		    left > 2 ? pbjson_base64_alphabet[bits & 63] : '=';
	}
	text[at]  = '\0';
	*text_len = at;
	return text;
}
