/*
 * emit: writes the C code of one model_file.
 *
 * The generated code is meant to be read: it is laid out as nng's
 * clang-format style would lay it out (tabs, 79 columns, continuation
 * lines indented by four spaces, return types of definitions on their own
 * line), and every declaration in the header says what it does and who
 * owns what. Proto comments are copied into C comments with anything that
 * could end or nest a C comment escaped.
 *
 * Both functions append to OUT; an allocation failure marks OUT failed
 * (strbuf_failed), which the caller checks once at the end.
 */
#ifndef ZRPC_GEN_EMIT_H
#define ZRPC_GEN_EMIT_H

#include "model.h"
#include "strbuf.h"

/* Appends the text of MODEL->header_name, "<stem>.zrpc.h". */
void emit_header(struct strbuf *out, const struct model_file *model);

/* Appends the text of MODEL->source_name, "<stem>.zrpc.c". */
void emit_source(struct strbuf *out, const struct model_file *model);

#endif /* ZRPC_GEN_EMIT_H */
