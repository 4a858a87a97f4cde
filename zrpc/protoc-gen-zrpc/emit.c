/*
 * emit: the C text of the generated .zrpc.h and .zrpc.c files.
 *
 * Layout is done by two small writers. emit_line lays out one declaration
 * or statement from unbreakable atoms, breaking between atoms when the
 * next one would pass column 79 and indenting continuation lines by four
 * spaces, as clang-format does with nng's style. emit_comment wraps the
 * generator's own prose and copies proto comments line by line. Nothing
 * here decides a name: every identifier comes from the model, so that the
 * names checked for collisions are the names written.
 *
 * The generated code never calls through a function pointer of the wrong
 * type: the runtime stores handlers and callbacks as void (*)(void), and
 * the per-method trampolines written here cast them back to their real
 * types before calling them.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "emit.h"

#define EMIT_WIDTH 79       /* last column a line may reach */
#define EMIT_TAB_WIDTH 8    /* columns per indenting tab */
#define EMIT_CONTINUATION 4 /* extra indent of continuation lines */

/* A line being laid out from atoms. */
struct emit_line {
	struct strbuf *out;
	struct strbuf  atom;   /* scratch for the atom being added */
	unsigned       indent; /* tabs before the line */
	size_t         column; /* columns used on the current output line */
	bool           empty;  /* no atom yet */
};

/* Starts a line at INDENT tabs in OUT. */
static void
emit_line_begin(struct emit_line *line, struct strbuf *out, unsigned indent)
{
	line->out = out;
	strbuf_init(&line->atom);
	line->indent = indent;
	line->column = (size_t) indent * EMIT_TAB_WIDTH;
	line->empty  = true;
	strbuf_append_repeat(out, '\t', indent);
}

/*
 * Adds a formatted atom, after a space when SPACE is true. When the atom
 * does not fit in the columns left, the line breaks before it (and the
 * space is dropped); an atom too long for any line stands alone.
 */
static void emit_line_add(struct emit_line *line, bool space, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
emit_line_add(struct emit_line *line, bool space, const char *fmt, ...)
{
	const char *text;
	size_t      width;
	size_t      gap;
	va_list     ap;

	strbuf_clear(&line->atom);
	va_start(ap, fmt);
	strbuf_vprintf(&line->atom, fmt, ap);
	va_end(ap);
	if ((text = strbuf_str(&line->atom)) == NULL) {
		strbuf_fail(line->out);
		return;
	}
	width = line->atom.len;
	gap   = space && !line->empty ? 1 : 0;
	if (!line->empty && line->column + gap + width > EMIT_WIDTH) {
		strbuf_append_char(line->out, '\n');
		strbuf_append_repeat(line->out, '\t', line->indent);
		strbuf_append_repeat(line->out, ' ', EMIT_CONTINUATION);
		line->column =
		    (size_t) line->indent * EMIT_TAB_WIDTH + EMIT_CONTINUATION;
		gap = 0;
	}
	strbuf_append_repeat(line->out, ' ', gap);
	strbuf_append(line->out, text);
	line->column += gap + width;
	line->empty = false;
}

/* Ends the line and frees its scratch memory. */
static void
emit_line_end(struct emit_line *line)
{
	strbuf_append_char(line->out, '\n');
	strbuf_finish(&line->atom);
}

/* ---- comments ---- */

/*
 * Appends the LEN bytes of comment text at S so that they cannot end the
 * C comment ("*" "/"), open a nested one ("/" "*", which -Wcomment
 * rejects) or form a trigraph ("??/" and friends, which -Wtrigraphs
 * rejects); a backslash goes in before the second character of each.
 * Control characters other than tabs become spaces.
 */
static void
emit_comment_text(struct strbuf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c    = s[i];
		char next = i + 1 < len ? s[i + 1] : '\0';

		if ((unsigned char) c < 0x20 && c != '\t') {
			c = ' ';
		}
		strbuf_append_char(out, c);
		if ((c == '*' && next == '/') || (c == '/' && next == '*') ||
		    (c == '?' && next == '?')) {
			strbuf_append_char(out, '\\');
		}
	}
}

/* Appends INDENT tabs and the " *" that starts a comment line. */
static void
emit_comment_margin(struct strbuf *out, unsigned indent)
{
	strbuf_append_repeat(out, '\t', indent);
	strbuf_append(out, " *");
}

/*
 * Appends the paragraphs of PROSE ("\n" separates them) as comment lines,
 * words wrapped at EMIT_WIDTH.
 */
static void
emit_comment_prose(struct strbuf *out, unsigned indent, const char *prose)
{
	const char *p = prose;

	while (*p != '\0') {
		size_t len    = strcspn(p, "\n");
		size_t column = (size_t) indent * EMIT_TAB_WIDTH + 2;
		size_t i      = 0;

		emit_comment_margin(out, indent);
		while (i < len) {
			size_t word;

			while (i < len && p[i] == ' ') {
				i++;
			}
			word = i;
			while (word < len && p[word] != ' ') {
				word++;
			}
			word -= i;
			if (word == 0) {
				break;
			}
			if (column > (size_t) indent * EMIT_TAB_WIDTH + 2 &&
			    column + 1 + word > EMIT_WIDTH) {
				strbuf_append_char(out, '\n');
				emit_comment_margin(out, indent);
				column = (size_t) indent * EMIT_TAB_WIDTH + 2;
			}
			strbuf_append_char(out, ' ');
			emit_comment_text(out, p + i, word);
			column += 1 + word;
			i += word;
		}
		strbuf_append_char(out, '\n');
		p += len;
		if (*p == '\n') {
			p++;
			if (*p != '\0') {
				emit_comment_margin(out, indent);
				strbuf_append_char(out, '\n');
			}
		}
	}
}

/*
 * Appends the lines of a proto comment (as protoc reports it: lines that
 * usually start with a space, each ending in "\n") as comment lines,
 * dropping blank lines at either end.
 */
static void
emit_comment_proto(struct strbuf *out, unsigned indent, const char *comment)
{
	const char *p       = comment;
	size_t      pending = 0; /* blank lines not yet written */
	bool        started = false;

	while (*p != '\0') {
		size_t len = strcspn(p, "\n");
		size_t end = len;

		while (end > 0 &&
		    (p[end - 1] == ' ' || p[end - 1] == '\t' ||
		        p[end - 1] == '\r')) {
			end--;
		}
		if (end == 0) {
			pending += started ? 1 : 0;
		} else {
			for (; pending > 0; pending--) {
				emit_comment_margin(out, indent);
				strbuf_append_char(out, '\n');
			}
			emit_comment_margin(out, indent);
			if (p[0] != ' ') {
				strbuf_append_char(out, ' ');
			}
			emit_comment_text(out, p, end);
			strbuf_append_char(out, '\n');
			started = true;
		}
		p += len;
		if (*p == '\n') {
			p++;
		}
	}
}

/* True when COMMENT has a line that is not blank. */
static bool
emit_comment_has_text(const char *comment)
{
	if (comment == NULL) {
		return false;
	}
	for (const char *p = comment; *p != '\0'; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			return true;
		}
	}
	return false;
}

/*
 * Appends a comment at INDENT: the generator's PROSE (formatted, wrapped)
 * and then, when there is one, the proto comment PROTO. A short comment
 * without PROTO goes on one line.
 */
static void emit_comment(struct strbuf *out, unsigned indent,
    const char *proto, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
emit_comment(struct strbuf *out, unsigned indent, const char *proto,
    const char *fmt, ...)
{
	struct strbuf prose;
	const char   *text;
	bool          has_proto = emit_comment_has_text(proto);
	va_list       ap;

	strbuf_init(&prose);
	va_start(ap, fmt);
	strbuf_vprintf(&prose, fmt, ap);
	va_end(ap);
	if ((text = strbuf_str(&prose)) == NULL) {
		strbuf_fail(out);
		goto done;
	}
	if (!has_proto && strchr(text, '\n') == NULL &&
	    (size_t) indent * EMIT_TAB_WIDTH + prose.len + 6 <= EMIT_WIDTH) {
		strbuf_append_repeat(out, '\t', indent);
		strbuf_append(out, "/* ");
		emit_comment_text(out, text, prose.len);
		strbuf_append(out, " */\n");
		goto done;
	}
	strbuf_append_repeat(out, '\t', indent);
	strbuf_append(out, "/*\n");
	emit_comment_prose(out, indent, text);
	if (has_proto) {
		emit_comment_margin(out, indent);
		strbuf_append_char(out, '\n');
		emit_comment_proto(out, indent, proto);
	}
	strbuf_append_repeat(out, '\t', indent);
	strbuf_append(out, " */\n");
done:
	strbuf_finish(&prose);
}

/* The banner at the top of both files, on one line when it fits. */
static void
emit_banner(struct strbuf *out, const struct model_file *model)
{
	const char *start = "/* Generated by protoc-gen-zrpc from ";
	const char *end   = ". Do not edit. */";
	size_t      len   = strlen(model->proto_name);

	if (strlen(start) + len + strlen(end) <= EMIT_WIDTH) {
		strbuf_append(out, start);
		emit_comment_text(out, model->proto_name, len);
		strbuf_printf(out, "%s\n", end);
		return;
	}
	strbuf_append(out, "/*\n * Generated by protoc-gen-zrpc from ");
	emit_comment_text(out, model->proto_name, len);
	strbuf_append(out, ". Do not edit.\n */\n");
}

/* ---- the header ---- */

/* The table in the overview comment of every header, line by line. */
static const char *const emit_overview_rows[] = {
	"  S_service          the service: its full name and its methods,",
	"                     S_methods[], in .proto order; S_M_method is",
	"                     the entry of M;",
	"  S_M()              calls M and waits for its reply;",
	"  S_M_async()        starts M; the S_M_cb callback gets the reply;",
	"  S_M_fn             the type of M's server handler;",
	"  struct S_handlers  the service's handlers, which its",
	"                     implementation fills in for S_register().",
};

/* The comment that explains the generated API once per header. */
static void
emit_header_overview(struct strbuf *out, const struct model_file *model)
{
	size_t n_rows =
	    sizeof(emit_overview_rows) / sizeof(emit_overview_rows[0]);
	struct strbuf prose;

	strbuf_init(&prose);
	strbuf_printf(&prose,
	    "zrpc client stubs and server bindings for the services of %s. "
	    "For each service, with S its prefix and M a method's name in "
	    "snake_case:",
	    model->proto_name);
	if (strbuf_failed(&prose)) {
		strbuf_fail(out);
		goto done;
	}
	strbuf_append(out, "/*\n");
	emit_comment_prose(out, 0, strbuf_str(&prose));
	strbuf_append(out, " *\n");
	for (size_t i = 0; i < n_rows; i++) {
		strbuf_printf(out, " * %s\n", emit_overview_rows[i]);
	}
	strbuf_append(out, " */\n");
done:
	strbuf_finish(&prose);
}

/* The declarations of one method. */
static void
emit_header_method(struct strbuf *out, const struct model_service *s,
    const struct model_method *m, size_t index)
{
	struct emit_line line;
	struct strbuf    scratch;

	strbuf_init(&scratch);
	strbuf_append_char(out, '\n');
	if (m->role_name[0] != '\0') {
		emit_comment(out, 0, m->comment,
		    "%s, called as %s; the caller needs role %s.",
		    m->full_name, m->path, m->role_name);
	} else {
		emit_comment(out, 0, m->comment, "%s, called as %s.",
		    m->full_name, m->path);
	}
	/*
	 * A macro, so that it names the table entry itself. A directive
	 * cannot wrap like code: a long one continues with a backslash.
	 */
	strbuf_printf(&scratch, "#define %s (%s[%zu])", m->method_macro,
	    s->methods, index);
	if (strbuf_failed(&scratch)) {
		strbuf_fail(out);
	} else if (scratch.len <= EMIT_WIDTH) {
		strbuf_printf(out, "%s\n", strbuf_str(&scratch));
	} else {
		strbuf_printf(out, "#define %s \\\n    (%s[%zu])\n",
		    m->method_macro, s->methods, index);
	}
	strbuf_finish(&scratch);

	strbuf_append_char(out, '\n');
	emit_comment(out, 0, NULL,
	    "Calls %s and waits for its reply. On OK, *REPLY is a new message "
	    "that the caller frees with protobuf_c_message_free_unpacked(); "
	    "otherwise it is NULL.",
	    m->name);
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "zrpc_status %s(", m->call);
	emit_line_add(&line, false, "zrpc_client *client,");
	emit_line_add(&line, true, "const %s *request,", m->input.c_type);
	emit_line_add(&line, true, "%s **reply,", m->output.c_type);
	emit_line_add(&line, true, "const zrpc_call_opts *opts);");
	emit_line_end(&line);

	strbuf_append_char(out, '\n');
	emit_comment(out, 0, NULL,
	    "Completion of %s(): runs once, on an nng thread, and owns REPLY "
	    "(NULL unless STATUS is OK).",
	    m->call_async);
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "typedef void (*%s)(", m->callback_type);
	emit_line_add(&line, false, "void *arg,");
	emit_line_add(&line, true, "const zrpc_status *status,");
	emit_line_add(&line, true, "%s *reply);", m->output.c_type);
	emit_line_end(&line);

	strbuf_append_char(out, '\n');
	emit_comment(out, 0, NULL,
	    "Starts %s without waiting. Returns OK when the call has "
	    "started, and then CB(ARG, status, reply) runs exactly once; "
	    "returns an error, and CB never runs, when it could not start.",
	    m->name);
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "zrpc_status %s(", m->call_async);
	emit_line_add(&line, false, "zrpc_client *client,");
	emit_line_add(&line, true, "const %s *request,", m->input.c_type);
	emit_line_add(&line, true, "const zrpc_call_opts *opts,");
	emit_line_add(&line, true, "%s cb,", m->callback_type);
	emit_line_add(&line, true, "void *arg);");
	emit_line_end(&line);

	strbuf_append_char(out, '\n');
	emit_comment(out, 0, NULL,
	    "Serves %s: reads REQUEST and fills REPLY, whose strings, "
	    "repeated fields and sub-messages come from "
	    "zrpc_call_alloc().",
	    m->name);
	emit_line_begin(&line, out, 0);
	emit_line_add(
	    &line, false, "typedef zrpc_status (*%s)(", m->handler_type);
	emit_line_add(&line, false, "zrpc_call *call,");
	emit_line_add(&line, true, "const %s *request,", m->input.c_type);
	emit_line_add(&line, true, "%s *reply);", m->output.c_type);
	emit_line_end(&line);
}

/*
 * Appends a struct member or initialiser "TYPE NAME;" with NAME aligned at
 * column ALIGN (when that fits) at INDENT.
 */
static void
emit_aligned(struct strbuf *out, unsigned indent, size_t align,
    const char *left, const char *right)
{
	size_t start = (size_t) indent * EMIT_TAB_WIDTH;
	size_t pad   = 1;

	if (start + align + strlen(right) <= EMIT_WIDTH &&
	    align > strlen(left)) {
		pad = align - strlen(left);
	}
	strbuf_append_repeat(out, '\t', indent);
	strbuf_append(out, left);
	strbuf_append_repeat(out, ' ', pad);
	strbuf_append(out, right);
	strbuf_append_char(out, '\n');
}

/* The handler table and the register function of service S. */
static void
emit_header_handlers(struct strbuf *out, const struct model_service *s)
{
	struct emit_line line;
	struct strbuf    field;
	size_t           align = strlen("bool") + 1;

	strbuf_init(&field);
	for (size_t i = 0; i < s->n_methods; i++) {
		size_t len = strlen(s->method[i].handler_type) + 1;

		align = len > align ? len : align;
	}

	strbuf_append_char(out, '\n');
	if (s->n_methods == 0) {
		emit_comment(out, 0, NULL,
		    "How %s is served: it has no methods, so there is nothing "
		    "to fill in.",
		    s->full_name);
	} else {
		emit_comment(out, 0, NULL,
		    "How %s is served: a handler per method (NULL answers "
		    "UNIMPLEMENTED) and whether it may block (true: it "
		    "runs on the worker pool; false: on nng's completion "
		    "thread, so it must not block).",
		    s->full_name);
	}
	strbuf_printf(out, "struct %s {\n", s->handlers);
	if (s->n_methods == 0) {
		emit_aligned(
		    out, 1, align, "char", "unused; /* no methods */");
	}
	for (size_t i = 0; i < s->n_methods; i++) {
		const struct model_method *m = &s->method[i];

		strbuf_clear(&field);
		strbuf_printf(&field, "%s;", m->field);
		if (strbuf_failed(&field)) {
			strbuf_fail(out);
			break;
		}
		emit_aligned(
		    out, 1, align, m->handler_type, strbuf_str(&field));
		strbuf_clear(&field);
		strbuf_printf(&field, "%s;", m->blocking_field);
		if (strbuf_failed(&field)) {
			strbuf_fail(out);
			break;
		}
		emit_aligned(out, 1, align, "bool", strbuf_str(&field));
	}
	strbuf_append(out, "};\n");
	strbuf_finish(&field);

	strbuf_append_char(out, '\n');
	emit_comment(out, 0, NULL,
	    "Registers HANDLERS (copied) with SERVER, before it starts; CTX "
	    "reaches every handler through zrpc_call_service_ctx(). Fails as "
	    "zrpc_server_register() does, or with INVALID_ARGUMENT when "
	    "HANDLERS is NULL.");
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "zrpc_status %s(", s->register_fn);
	emit_line_add(&line, false, "zrpc_server *server,");
	emit_line_add(&line, true, "const struct %s *handlers,", s->handlers);
	emit_line_add(&line, true, "void *ctx);");
	emit_line_end(&line);
}

/* Everything the header declares for service S. */
static void
emit_header_service(struct strbuf *out, const struct model_service *s)
{
	struct emit_line line;

	strbuf_append_char(out, '\n');
	emit_comment(out, 0, s->comment, "Service %s.", s->full_name);
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "extern const struct zrpc_service_desc");
	emit_line_add(&line, true, "%s;", s->desc);
	emit_line_end(&line);
	if (s->n_methods > 0) {
		strbuf_append_char(out, '\n');
		emit_comment(out, 0, NULL,
		    "The methods of %s, in .proto order.", s->full_name);
		emit_line_begin(&line, out, 0);
		emit_line_add(&line, false, "extern const struct zrpc_method");
		emit_line_add(
		    &line, true, "%s[%zu];", s->methods, s->n_methods);
		emit_line_end(&line);
	}
	for (size_t i = 0; i < s->n_methods; i++) {
		emit_header_method(out, s, &s->method[i], i);
	}
	emit_header_handlers(out, s);
}

/*
 * The #include of protoc-c's header for the .proto file. When protoc-c
 * names members of its service structs after C keywords or macros
 * (methods called Default, Bool, Linux, ...), those names are defined
 * away while its header is read, and restored after.
 */
static void
emit_header_pbc_include(struct strbuf *out, const struct model_file *model)
{
	if (model->n_pbc_hidden > 0) {
		emit_comment(out, 0, NULL,
		    "protoc-c names a member of its service struct after each "
		    "method, and some of these names are C keywords or "
		    "macros: rename them while its header is read.");
	}
	for (size_t i = 0; i < model->n_pbc_hidden; i++) {
		const char *name = model->pbc_hidden[i];

		strbuf_printf(out,
		    "#pragma push_macro(\"%s\")\n"
		    "#undef %s\n"
		    "#define %s protoc_c_%s\n",
		    name, name, name, name);
	}
	strbuf_printf(out, "#include \"%s\"\n", model->pbc_header);
	for (size_t i = 0; i < model->n_pbc_hidden; i++) {
		const char *name = model->pbc_hidden[i];

		strbuf_printf(out,
		    "#undef %s\n"
		    "#pragma pop_macro(\"%s\")\n",
		    name, name);
	}
}

/*
 * The header includes what its declarations name and no more: the client
 * API for the stubs, and service.h for the method tables and for zrpc_call
 * and zrpc_server, which the handler types and the register function take
 * only by pointer. Code that only calls never pulls in the server runtime;
 * a service implementation includes zrpc/server.h itself. The
 * declarations are extern "C", so that C++ can call and implement them.
 */
void
emit_header(struct strbuf *out, const struct model_file *model)
{
	emit_banner(out, model);
	emit_header_overview(out, model);
	strbuf_printf(out,
	    "#ifndef %s\n"
	    "#define %s\n"
	    "\n"
	    "#include <stdbool.h>\n"
	    "\n"
	    "#include <protobuf-c/protobuf-c.h>\n"
	    "\n"
	    "#include \"zrpc/client.h\"\n"
	    "#include \"zrpc/service.h\"\n"
	    "\n",
	    model->guard, model->guard);
	emit_header_pbc_include(out, model);
	strbuf_append(out,
	    "\n"
	    "#ifdef __cplusplus\n"
	    "extern \"C\" {\n"
	    "#endif\n");
	for (size_t i = 0; i < model->n_services; i++) {
		emit_header_service(out, &model->service[i]);
	}
	strbuf_append(out,
	    "\n"
	    "#ifdef __cplusplus\n"
	    "}\n"
	    "#endif\n");
	strbuf_printf(out, "\n#endif /* %s */\n", model->guard);
}

/* ---- the source ---- */

/* An initialiser line "\t\t.FIELD = VALUE," with VALUE aligned. */
static void emit_initializer(struct strbuf *out, unsigned indent, size_t align,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
emit_initializer(struct strbuf *out, unsigned indent, size_t align,
    const char *field, const char *fmt, ...)
{
	struct emit_line line;
	struct strbuf    value;
	size_t           pad;
	va_list          ap;

	strbuf_init(&value);
	va_start(ap, fmt);
	strbuf_vprintf(&value, fmt, ap);
	va_end(ap);
	if (strbuf_failed(&value)) {
		strbuf_fail(out);
		goto done;
	}
	pad = align > strlen(field) ? align - strlen(field) : 0;
	emit_line_begin(&line, out, indent);
	emit_line_add(&line, false, ".%s%*s=", field, (int) pad, "");
	emit_line_add(&line, true, "%s,", strbuf_str(&value));
	emit_line_end(&line);
done:
	strbuf_finish(&value);
}

/* The method table and the service description of S. */
static void
emit_source_tables(
    struct strbuf *out, const struct model_service *s, const char *file_symbol)
{
	if (s->n_methods > 0) {
		strbuf_printf(out, "\nconst struct zrpc_method %s[%zu] = {\n",
		    s->methods, s->n_methods);
		for (size_t i = 0; i < s->n_methods; i++) {
			const struct model_method *m = &s->method[i];

			strbuf_append(out, "\t{\n");
			emit_initializer(out, 2, 7, "name", "\"%s\"", m->name);
			emit_initializer(out, 2, 7, "path", "\"%s\"", m->path);
			emit_initializer(
			    out, 2, 7, "input", "&%s", m->input.descriptor);
			emit_initializer(
			    out, 2, 7, "output", "&%s", m->output.descriptor);
			emit_initializer(out, 2, 7, "role", "%s", m->role);
			strbuf_append(out, "\t},\n");
		}
		strbuf_append(out, "};\n");
	}
	strbuf_printf(
	    out, "\nconst struct zrpc_service_desc %s = {\n", s->desc);
	emit_initializer(out, 1, 10, "name", "\"%s\"", s->full_name);
	emit_initializer(out, 1, 10, "n_methods", "%zu", s->n_methods);
	emit_initializer(out, 1, 10, "methods", "%s",
	    s->n_methods > 0 ? s->methods : "NULL");
	emit_initializer(out, 1, 10, "file", "&%s", file_symbol);
	strbuf_append(out, "};\n");
}

/* The client stubs of method M and their callback trampoline. */
static void
emit_source_client(struct strbuf *out, const struct model_method *m)
{
	struct emit_line line;

	/* Blocking stub. */
	strbuf_append(out, "\nzrpc_status\n");
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "%s(", m->call);
	emit_line_add(&line, false, "zrpc_client *client,");
	emit_line_add(&line, true, "const %s *request,", m->input.c_type);
	emit_line_add(&line, true, "%s **reply,", m->output.c_type);
	emit_line_add(&line, true, "const zrpc_call_opts *opts)");
	emit_line_end(&line);
	strbuf_append(out,
	    "{\n"
	    "\tProtobufCMessage *message = NULL;\n"
	    "\tzrpc_status       status;\n"
	    "\n");
	emit_line_begin(&line, out, 1);
	emit_line_add(&line, false, "status = zrpc_client_call(");
	emit_line_add(&line, false, "client,");
	emit_line_add(&line, true, "&%s,", m->method_macro);
	emit_line_add(&line, true, "(const ProtobufCMessage *) request,");
	emit_line_add(&line, true, "reply != NULL ? &message : NULL,");
	emit_line_add(&line, true, "opts);");
	emit_line_end(&line);
	strbuf_append(out, "\tif (reply != NULL) {\n");
	emit_line_begin(&line, out, 2);
	emit_line_add(&line, false, "*reply =");
	emit_line_add(&line, true, "(%s *) message;", m->output.c_type);
	emit_line_end(&line);
	strbuf_append(out,
	    "\t}\n"
	    "\treturn status;\n"
	    "}\n");

	/* Callback trampoline. */
	strbuf_append_char(out, '\n');
	emit_comment(out, 0, NULL, "Hands a %s reply to CB, a %s.", m->name,
	    m->callback_type);
	strbuf_append(out, "static void\n");
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "%s(", m->invoke_callback);
	emit_line_add(&line, false, "void (*cb)(void),");
	emit_line_add(&line, true, "void *arg,");
	emit_line_add(&line, true, "const zrpc_status *status,");
	emit_line_add(&line, true, "ProtobufCMessage *reply)");
	emit_line_end(&line);
	strbuf_append(out, "{\n");
	emit_line_begin(&line, out, 1);
	emit_line_add(&line, false, "%s callback =", m->callback_type);
	emit_line_add(&line, true, "(%s) cb;", m->callback_type);
	emit_line_end(&line);
	strbuf_append_char(out, '\n');
	emit_line_begin(&line, out, 1);
	emit_line_add(&line, false, "callback(");
	emit_line_add(&line, false, "arg,");
	emit_line_add(&line, true, "status,");
	emit_line_add(&line, true, "(%s *) reply);", m->output.c_type);
	emit_line_end(&line);
	strbuf_append(out, "}\n");

	/* Asynchronous stub. */
	strbuf_append(out, "\nzrpc_status\n");
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "%s(", m->call_async);
	emit_line_add(&line, false, "zrpc_client *client,");
	emit_line_add(&line, true, "const %s *request,", m->input.c_type);
	emit_line_add(&line, true, "const zrpc_call_opts *opts,");
	emit_line_add(&line, true, "%s cb,", m->callback_type);
	emit_line_add(&line, true, "void *arg)");
	emit_line_end(&line);
	strbuf_append(out,
	    "{\n"
	    "\tif (cb == NULL) {\n");
	emit_line_begin(&line, out, 2);
	emit_line_add(&line, false, "return zrpc_status_make(");
	emit_line_add(&line, false, "ZRPC_INVALID_ARGUMENT,");
	emit_line_add(&line, true, "\"%%s: no callback\",");
	emit_line_add(&line, true, "%s.path);", m->method_macro);
	emit_line_end(&line);
	strbuf_append(out, "\t}\n");
	emit_line_begin(&line, out, 1);
	emit_line_add(&line, false, "return zrpc_client_call_async(");
	emit_line_add(&line, false, "client,");
	emit_line_add(&line, true, "&%s,", m->method_macro);
	emit_line_add(&line, true, "(const ProtobufCMessage *) request,");
	emit_line_add(&line, true, "opts,");
	emit_line_add(&line, true, "%s,", m->invoke_callback);
	emit_line_add(&line, true, "(void (*)(void)) cb,");
	emit_line_add(&line, true, "arg);");
	emit_line_end(&line);
	strbuf_append(out, "}\n");
}

/* The handler trampoline of method M. */
static void
emit_source_server(struct strbuf *out, const struct model_method *m)
{
	struct emit_line line;

	strbuf_append_char(out, '\n');
	emit_comment(out, 0, NULL, "Calls FN, a %s, with typed messages.",
	    m->handler_type);
	strbuf_append(out, "static zrpc_status\n");
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "%s(", m->invoke_handler);
	emit_line_add(&line, false, "void (*fn)(void),");
	emit_line_add(&line, true, "zrpc_call *call,");
	emit_line_add(&line, true, "const ProtobufCMessage *request,");
	emit_line_add(&line, true, "ProtobufCMessage *reply)");
	emit_line_end(&line);
	strbuf_append(out, "{\n");
	emit_line_begin(&line, out, 1);
	emit_line_add(&line, false, "%s handler =", m->handler_type);
	emit_line_add(&line, true, "(%s) fn;", m->handler_type);
	emit_line_end(&line);
	strbuf_append_char(out, '\n');
	emit_line_begin(&line, out, 1);
	emit_line_add(&line, false, "return handler(");
	emit_line_add(&line, false, "call,");
	emit_line_add(&line, true, "(const %s *) request,", m->input.c_type);
	emit_line_add(&line, true, "(%s *) reply);", m->output.c_type);
	emit_line_end(&line);
	strbuf_append(out, "}\n");
}

/* The register function of service S. */
static void
emit_source_register(struct strbuf *out, const struct model_service *s)
{
	struct emit_line line;

	strbuf_append(out, "\nzrpc_status\n");
	emit_line_begin(&line, out, 0);
	emit_line_add(&line, false, "%s(", s->register_fn);
	emit_line_add(&line, false, "zrpc_server *server,");
	emit_line_add(&line, true, "const struct %s *handlers,", s->handlers);
	emit_line_add(&line, true, "void *ctx)");
	emit_line_end(&line);
	strbuf_append(out, "{\n");
	if (s->n_methods > 0) {
		strbuf_printf(out,
		    "\tstruct zrpc_method_binding bindings[%zu];\n\n",
		    s->n_methods);
	}
	strbuf_append(out, "\tif (handlers == NULL) {\n");
	emit_line_begin(&line, out, 2);
	emit_line_add(&line, false, "return zrpc_status_make(");
	emit_line_add(&line, false, "ZRPC_INVALID_ARGUMENT,");
	emit_line_add(&line, true, "\"%%s: no handlers\",");
	emit_line_add(&line, true, "%s.name);", s->desc);
	emit_line_end(&line);
	strbuf_append(out, "\t}\n");
	for (size_t i = 0; i < s->n_methods; i++) {
		const struct model_method *m = &s->method[i];

		emit_line_begin(&line, out, 1);
		emit_line_add(&line, false, "bindings[%zu].invoke   =", i);
		emit_line_add(&line, true, "%s;", m->invoke_handler);
		emit_line_end(&line);
		emit_line_begin(&line, out, 1);
		emit_line_add(&line, false, "bindings[%zu].fn       =", i);
		emit_line_add(
		    &line, true, "(void (*)(void)) handlers->%s;", m->field);
		emit_line_end(&line);
		emit_line_begin(&line, out, 1);
		emit_line_add(&line, false, "bindings[%zu].blocking =", i);
		emit_line_add(&line, true, "handlers->%s;", m->blocking_field);
		emit_line_end(&line);
	}
	emit_line_begin(&line, out, 1);
	emit_line_add(&line, false, "return zrpc_server_register(");
	emit_line_add(&line, false, "server,");
	emit_line_add(&line, true, "&%s,", s->desc);
	emit_line_add(
	    &line, true, "%s,", s->n_methods > 0 ? "bindings" : "NULL");
	emit_line_add(&line, true, "ctx);");
	emit_line_end(&line);
	strbuf_append(out, "}\n");
}

/* The bytes, imports and descriptor of the embedded file E. */
static void
emit_source_embedded(struct strbuf *out, const struct model_file *model,
    const struct model_embedded *e)
{
	strbuf_printf(out, "\n/* %s */\n", e->name);
	strbuf_printf(out, "static const uint8_t %s_bytes[%zu] = {", e->symbol,
	    e->len != 0 ? e->len : 1);
	for (size_t i = 0; i < e->len; i++) {
		strbuf_append(out, i % 11 == 0 ? "\n\t" : " ");
		strbuf_printf(out, "0x%02x,", e->data[i]);
	}
	strbuf_append(out, e->len != 0 ? "\n};\n" : "0 };\n");
	if (e->n_deps > 0) {
		strbuf_printf(out,
		    "static const struct zrpc_file_descriptor *const "
		    "%s_deps[%zu] = {\n",
		    e->symbol, e->n_deps);
		for (size_t i = 0; i < e->n_deps; i++) {
			strbuf_printf(out, "\t&%s,\n",
			    model->embedded[e->deps[i]].symbol);
		}
		strbuf_append(out, "};\n");
	}
	strbuf_printf(out, "static const struct zrpc_file_descriptor %s = {\n",
	    e->symbol);
	emit_initializer(out, 1, 7, "name", "\"%s\"", e->name);
	emit_initializer(out, 1, 7, "data", "%s_bytes", e->symbol);
	emit_initializer(out, 1, 7, "len", "%zu", e->len);
	emit_initializer(out, 1, 7, "n_deps", "%zu", e->n_deps);
	if (e->n_deps > 0) {
		emit_initializer(out, 1, 7, "deps", "%s_deps", e->symbol);
	} else {
		emit_initializer(out, 1, 7, "deps", "NULL");
	}
	strbuf_append(out, "};\n");
}

void
emit_source(struct strbuf *out, const struct model_file *model)
{
	emit_banner(out, model);
	/* The register functions call zrpc_server_register. */
	strbuf_printf(out,
	    "#include <stddef.h>\n"
	    "#include <stdint.h>\n"
	    "\n"
	    "#include \"%s\"\n"
	    "#include \"zrpc/server.h\"\n",
	    model->header_name);
	strbuf_append_char(out, '\n');
	emit_comment(out, 0, NULL,
	    "The descriptors of %s and of every file it imports, for "
	    "reflection (zrpc/descriptor.h), each after its imports. Every "
	    "generated file carries its own copy of its imports' "
	    "descriptors, so that it links without their generated code; "
	    "the copies are duplicates, and a reader keeps one per file "
	    "name.",
	    model->proto_name);
	for (size_t i = 0; i < model->n_embedded; i++) {
		emit_source_embedded(out, model, &model->embedded[i]);
	}
	for (size_t i = 0; i < model->n_services; i++) {
		const struct model_service *s = &model->service[i];

		strbuf_append_char(out, '\n');
		emit_comment(out, 0, NULL, "---- %s ----", s->full_name);
		emit_source_tables(
		    out, s, model->embedded[model->n_embedded - 1].symbol);
		for (size_t j = 0; j < s->n_methods; j++) {
			emit_source_client(out, &s->method[j]);
			emit_source_server(out, &s->method[j]);
		}
		emit_source_register(out, s);
	}
}
