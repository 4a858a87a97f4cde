/*
 * names: identifier spelling for protoc-gen-zrpc.
 *
 * The protobuf-c rules are restated from protoc-c 1.4 (c_helpers.cc) so
 * that generated code names the very symbols protoc-c emits:
 *
 *   - a full name is first rewritten by the file's `c_package` option,
 *     which replaces the package part;
 *   - it is split at dots, empty pieces are dropped, and the pieces are
 *     joined with "__";
 *   - for type names each piece is camel-cased: underscores are dropped
 *     and the letter after one (and the first letter) is upper-cased
 *     ("my_pkg" -> "MyPkg");
 *   - for lower-case names each piece gets an underscore before an upper
 *     case letter that follows a non-upper-case character, and is
 *     lower-cased ("HTTPRequest" -> "httprequest", "Foo_Bar" ->
 *     "foo__bar").
 *
 * Character classes are ASCII only, as in the C locale protoc-c runs in;
 * protobuf identifiers are ASCII anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "strbuf.h"

/* Appends one converted piece of a dotted name. */
typedef void (*names_piece_fn)(
    struct strbuf *out, const char *piece, size_t len);

static bool
names_is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool
names_is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool
names_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char
names_to_upper(char c)
{
	return names_is_lower(c) ? (char) (c - 'a' + 'A') : c;
}

static char
names_to_lower(char c)
{
	return names_is_upper(c) ? (char) (c - 'A' + 'a') : c;
}

/* protoc-c's ToCamel: "foo_bar" -> "FooBar". */
static void
names_piece_camel(struct strbuf *out, const char *piece, size_t len)
{
	bool next_upper = true;

	for (size_t i = 0; i < len; i++) {
		if (piece[i] == '_') {
			next_upper = true;
		} else if (next_upper) {
			strbuf_append_char(out, names_to_upper(piece[i]));
			next_upper = false;
		} else {
			strbuf_append_char(out, piece[i]);
		}
	}
}

/* protoc-c's CamelToLower: "GetHTTPThing" -> "get_httpthing". */
static void
names_piece_lower(struct strbuf *out, const char *piece, size_t len)
{
	bool was_upper = true; /* no underscore before the first letter */

	for (size_t i = 0; i < len; i++) {
		bool is_upper = names_is_upper(piece[i]);

		if (is_upper && !was_upper) {
			strbuf_append_char(out, '_');
		}
		strbuf_append_char(out, names_to_lower(piece[i]));
		was_upper = is_upper;
	}
}

/*
 * protoc-c's FullNameToC / FullNameToLower: applies the c_package
 * override, then converts and joins the dotted pieces with PIECE.
 */
static char *
names_pbc_join(const char *full_name, const char *package,
    const char *c_package, names_piece_fn piece)
{
	struct strbuf name;
	struct strbuf out;
	const char   *p;
	char         *result;

	strbuf_init(&name);
	strbuf_init(&out);

	/* OverrideFullName: the c_package replaces the package prefix. */
	if (c_package != NULL) {
		size_t skip = strlen(package);

		strbuf_append(&name, c_package);
		if (package[0] == '\0') {
			strbuf_append_char(&name, '.');
		}
		strbuf_append(
		    &name, strlen(full_name) >= skip ? full_name + skip : "");
	} else {
		strbuf_append(&name, full_name);
	}
	if ((p = strbuf_str(&name)) == NULL) {
		goto fail;
	}

	while (*p != '\0') {
		size_t len = strcspn(p, ".");

		if (len > 0) {
			if (out.len > 0) {
				strbuf_append(&out, "__");
			}
			piece(&out, p, len);
		}
		p += len;
		if (*p == '.') {
			p++;
		}
	}
	result = strbuf_steal(&out);
	strbuf_finish(&name);
	return result;

fail:
	strbuf_finish(&out);
	strbuf_finish(&name);
	return NULL;
}

char *
names_pbc_type(
    const char *full_name, const char *package, const char *c_package)
{
	return names_pbc_join(
	    full_name, package, c_package, names_piece_camel);
}

char *
names_pbc_lower(
    const char *full_name, const char *package, const char *c_package)
{
	return names_pbc_join(
	    full_name, package, c_package, names_piece_lower);
}

char *
names_snake(const char *name)
{
	struct strbuf out;
	size_t        len = strlen(name);

	strbuf_init(&out);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (names_is_upper(c) && i > 0 && name[i - 1] != '_') {
			char prev = name[i - 1];
			char next = name[i + 1]; /* '\0' at the end */

			/*
			 * A word starts at an upper-case letter after a
			 * lower-case letter or digit ("getThing", "V2Thing"),
			 * and at the last letter of an acronym that is
			 * followed by a lower-case one ("HTTPServer").
			 */
			if (names_is_lower(prev) || names_is_digit(prev) ||
			    (names_is_upper(prev) && names_is_lower(next))) {
				strbuf_append_char(&out, '_');
			}
		}
		strbuf_append_char(&out, names_to_lower(c));
	}
	return strbuf_steal(&out);
}

char *
names_package_prefix(const char *package)
{
	struct strbuf out;

	strbuf_init(&out);
	for (const char *p = package; *p != '\0'; p++) {
		strbuf_append_char(&out, *p == '.' ? '_' : names_to_lower(*p));
	}
	return strbuf_steal(&out);
}

/*
 * Words a generated identifier must not be: C11 and C23 keywords, GNU C
 * keywords, and lower-case macros of the C library or of gcc in GNU mode.
 */
static const char *const names_reserved[] = { "_Alignas", "_Alignof",
	"_Atomic", "_BitInt", "_Bool", "_Complex", "_Decimal128", "_Decimal32",
	"_Decimal64", "_Generic", "_Imaginary", "_Noreturn", "_Static_assert",
	"_Thread_local", "alignas", "alignof", "asm", "assert", "auto", "bool",
	"break", "case", "char", "complex", "const", "constexpr", "continue",
	"default", "do", "double", "else", "enum", "errno", "extern", "false",
	"float", "for", "goto", "i386", "if", "imaginary", "inline", "int",
	"linux", "long", "noreturn", "nullptr", "offsetof", "register",
	"restrict", "return", "setjmp", "short", "signed", "sizeof", "static",
	"static_assert", "stderr", "stdin", "stdout", "struct", "switch",
	"thread_local", "true", "typedef", "typeof", "typeof_unqual", "union",
	"unix", "unsigned", "va_arg", "va_copy", "va_end", "va_start", "void",
	"volatile", "while" };

bool
names_is_reserved(const char *name)
{
	size_t n = sizeof(names_reserved) / sizeof(names_reserved[0]);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(name, names_reserved[i]) == 0) {
			return true;
		}
	}
	return false;
}

char *
names_include_guard(const char *path)
{
	struct strbuf out;

	strbuf_init(&out);
	if (names_is_digit(path[0])) {
		strbuf_append(&out, "ZRPC_");
	}
	for (const char *p = path; *p != '\0'; p++) {
		char c = *p;

		if (names_is_upper(c) || names_is_digit(c)) {
			strbuf_append_char(&out, c);
		} else if (names_is_lower(c)) {
			strbuf_append_char(&out, names_to_upper(c));
		} else {
			strbuf_append_char(&out, '_');
		}
	}
	return strbuf_steal(&out);
}

/* True when S ends with SUFFIX. */
static bool
names_has_suffix(const char *s, const char *suffix)
{
	size_t len        = strlen(s);
	size_t suffix_len = strlen(suffix);

	return len >= suffix_len && strcmp(s + len - suffix_len, suffix) == 0;
}

char *
names_strip_proto(const char *path)
{
	size_t len = strlen(path);

	if (names_has_suffix(path, ".protodevel")) {
		len -= strlen(".protodevel");
	} else if (names_has_suffix(path, ".proto")) {
		len -= strlen(".proto");
	}
	return strndup(path, len);
}
