/*
 * Repeated keys in a JSON text: see pbjson_keys.h.
 *
 * One pass over the text, which is known to be valid JSON, keeps a stack
 * of the open containers and, for the open objects, their keys decoded
 * into one array (an object's keys are a run at its end). When an object
 * closes, its run is sorted and neighbours compared, then dropped: every
 * key is sorted once, whatever the nesting, and memory holds only the
 * keys of the objects open at once.
 */
#include "pbjson_keys.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper than json-c's own limit (32), which the text has passed. */
#define PBJSON_KEYS_MAX_DEPTH 64

/* One key of an open object: decoded (malloc'd) and where it began. */
struct pbjson_key {
	char  *text;
	size_t len;
	size_t offset;
};

/* The keys of the open objects, in the order they came. */
struct pbjson_key_list {
	struct pbjson_key *items;
	size_t             n;
	size_t             cap;
};

/* Value of hex digit C (the text is valid JSON: C is one). */
static unsigned
pbjson_keys_hex(char c)
{
	if (c >= '0' && c <= '9') {
		return (unsigned) (c - '0');
	}
	return (unsigned) ((c | 0x20) - 'a' + 10);
}

/* Appends code point CP to OUT as UTF-8; returns the bytes written. */
static size_t
pbjson_keys_utf8(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char) (0xc0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char) (0xe0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char) (0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char) (0xf0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char) (0x80 | (cp & 0x3f));
	return 4;
}

/*
 * The string whose opening quote is at TEXT[*I]: moves *I past its closing
 * quote and, when OUT is not NULL, decodes it into *OUT (malloc'd; its
 * length in *OUT_LEN). False when out of memory.
 */
static bool
pbjson_keys_string(
    const char *text, size_t len, size_t *i, char **out, size_t *out_len)
{
	size_t start = *i + 1, end = start, n = 0;
	char  *decoded;

	while (end < len && text[end] != '"') {
		end += text[end] == '\\' ? 2 : 1;
	}
	*i = end + 1;
	if (out == NULL) {
		return true;
	}
	/* Decoding never makes the text longer (\uXXXX: 6 bytes, at most 3;
	 * a pair: 12 bytes, 4). */
	decoded = malloc(end - start + 1);
	if (decoded == NULL) {
		return false;
	}
	for (size_t k = start; k < end; k++) {
		uint32_t cp;

		if (text[k] != '\\') {
			decoded[n++] = text[k];
			continue;
		}
		k++;
		switch (text[k]) {
		case 'b':
			decoded[n++] = '\b';
			break;
		case 'f':
			decoded[n++] = '\f';
			break;
		case 'n':
			decoded[n++] = '\n';
			break;
		case 'r':
			decoded[n++] = '\r';
			break;
		case 't':
			decoded[n++] = '\t';
			break;
		case 'u':
			cp = 0;
			for (int d = 1; d <= 4 && k + d < end; d++) {
				cp = cp << 4 | pbjson_keys_hex(text[k + d]);
			}
			k += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && k + 6 < end &&
			    text[k + 1] == '\\' && text[k + 2] == 'u') {
				uint32_t low = 0;

				for (int d = 3; d <= 6; d++) {
					low = low << 4 |
					    pbjson_keys_hex(text[k + d]);
				}
				if (low >= 0xdc00 && low <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) +
					    (low - 0xdc00);
					k += 6;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd; /* a lone surrogate, as json-c */
			}
			n += pbjson_keys_utf8(cp, decoded + n);
			break;
		default: /* '"', '\\', '/' */
			decoded[n++] = text[k];
		}
	}
	decoded[n] = '\0';
	*out       = decoded;
	*out_len   = n;
	return true;
}

static int
pbjson_keys_compare(const void *a, const void *b)
{
	const struct pbjson_key *x = a, *y = b;
	size_t                   min = x->len < y->len ? x->len : y->len;
	int                      c   = memcmp(x->text, y->text, min);

	if (c != 0) {
		return c;
	}
	if (x->len != y->len) {
		return x->len < y->len ? -1 : 1;
	}
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Sorts the keys from FIRST on (one object's) and looks for a repeat. */
static const struct pbjson_key *
pbjson_keys_repeat(struct pbjson_key_list *keys, size_t first)
{
	struct pbjson_key *run;
	size_t             n = keys->n - first;

	if (n < 2) {
		return NULL; /* and ITEMS may be NULL: no offset from it */
	}
	run = keys->items + first;
	qsort(run, n, sizeof(*run), pbjson_keys_compare);
	for (size_t k = 1; k < n; k++) {
		if (run[k].len == run[k - 1].len &&
		    memcmp(run[k].text, run[k - 1].text, run[k].len) == 0) {
			return &run[k];
		}
	}
	return NULL;
}

/* Frees the keys from FIRST on. */
static void
pbjson_keys_drop(struct pbjson_key_list *keys, size_t first)
{
	while (keys->n > first) {
		free(keys->items[--keys->n].text);
	}
}

enum pbjson_keys_result
pbjson_duplicate_key(
    const char *text, size_t len, size_t *offset, char *key, size_t key_len)
{
	struct pbjson_key_list  keys = { 0 };
	size_t                  first[PBJSON_KEYS_MAX_DEPTH]; /* objects */
	bool                    object[PBJSON_KEYS_MAX_DEPTH];
	int                     depth      = 0;
	bool                    expect_key = false;
	enum pbjson_keys_result result     = PBJSON_KEYS_UNIQUE;
	size_t                  i          = 0;

	while (i < len && result == PBJSON_KEYS_UNIQUE) {
		char c = text[i];

		if (c == '{' || c == '[') {
			if (depth == PBJSON_KEYS_MAX_DEPTH) {
				break; /* cannot be: json-c stops at 32 */
			}
			object[depth] = c == '{';
			first[depth]  = keys.n;
			depth++;
			expect_key = c == '{';
			i++;
		} else if (c == '}' || c == ']') {
			if (depth == 0) {
				break;
			}
			depth--;
			if (object[depth]) {
				const struct pbjson_key *repeat =
				    pbjson_keys_repeat(&keys, first[depth]);

				if (repeat != NULL) {
					*offset = repeat->offset;
					snprintf(key, key_len, "%.*s",
					    (int) (repeat->len < 256
					            ? repeat->len
					            : 256),
					    repeat->text);
					result = PBJSON_KEYS_DUPLICATE;
				}
				pbjson_keys_drop(&keys, first[depth]);
			}
			expect_key = false;
			i++;
		} else if (c == ',') {
			expect_key = depth > 0 && object[depth - 1];
			i++;
		} else if (c == '"' && expect_key) {
			struct pbjson_key k = { .offset = i };

			if (keys.n == keys.cap) {
				size_t cap = keys.cap > 0 ? 2 * keys.cap : 16;
				struct pbjson_key *bigger =
				    realloc(keys.items, cap * sizeof(*bigger));

				if (bigger == NULL) {
					result = PBJSON_KEYS_OUT_OF_MEMORY;
					break;
				}
				keys.items = bigger;
				keys.cap   = cap;
			}
			if (!pbjson_keys_string(
			        text, len, &i, &k.text, &k.len)) {
				result = PBJSON_KEYS_OUT_OF_MEMORY;
				break;
			}
			keys.items[keys.n++] = k;
			expect_key           = false;
		} else if (c == '"') {
			pbjson_keys_string(text, len, &i, NULL, NULL);
		} else {
			i++;
		}
	}
	pbjson_keys_drop(&keys, 0);
	free(keys.items);
	return result;
}
