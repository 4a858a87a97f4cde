/*
 * plugin: one CodeGeneratorRequest in, one CodeGeneratorResponse out.
 *
 * Generation stops at the first file that cannot be generated: protoc
 * discards every file of a response that carries an error, so there is
 * nothing to gain from going on. The response owns what is added to it
 * (plain malloc'd strings and messages); plugin_response_finish frees it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "model.h"
#include "plugin.h"
#include "strbuf.h"

/* CodeGeneratorResponse.Feature.FEATURE_PROTO3_OPTIONAL, shorter. */
#define PLUGIN_FEATURE_PROTO3_OPTIONAL \
	GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__FEATURE__FEATURE_PROTO3_OPTIONAL

/*
 * Removes the files already in RESPONSE: once it reports an error, none
 * of them is of use (protoc writes no file of a failed response).
 */
static void
plugin_drop_files(Google__Protobuf__Compiler__CodeGeneratorResponse *response)
{
	for (size_t i = 0; i < response->n_file; i++) {
		free(response->file[i]->name);
		free(response->file[i]->content);
		free(response->file[i]);
	}
	free(response->file);
	response->file   = NULL;
	response->n_file = 0;
}

/*
 * Appends a file named NAME (copied) with CONTENT (taken, even on failure)
 * to RESPONSE. Returns 0 or ENOMEM.
 */
static int
plugin_add_file(Google__Protobuf__Compiler__CodeGeneratorResponse *response,
    const char *name, char *content)
{
	Google__Protobuf__Compiler__CodeGeneratorResponse__File  *file;
	Google__Protobuf__Compiler__CodeGeneratorResponse__File **files;

	files = reallocarray(
	    response->file, response->n_file + 1, sizeof(response->file[0]));
	if (files == NULL) {
		goto fail;
	}
	response->file = files;
	if ((file = malloc(sizeof(*file))) == NULL) {
		goto fail;
	}
	google__protobuf__compiler__code_generator_response__file__init(file);
	if ((file->name = strdup(name)) == NULL) {
		free(file);
		goto fail;
	}
	file->content                      = content;
	response->file[response->n_file++] = file;
	return 0;

fail:
	free(content);
	return ENOMEM;
}

/* The FileDescriptorProto of REQUEST named NAME, or NULL. */
static const Google__Protobuf__FileDescriptorProto *
plugin_find_file(
    const Google__Protobuf__Compiler__CodeGeneratorRequest *request,
    const char                                             *name)
{
	for (size_t i = 0; i < request->n_proto_file; i++) {
		const Google__Protobuf__FileDescriptorProto *file =
		    request->proto_file[i];

		if (file->name != NULL && strcmp(file->name, name) == 0) {
			return file;
		}
	}
	return NULL;
}

/*
 * Generates the two files of FILE into RESPONSE. Returns 0 (with
 * RESPONSE->error set when FILE cannot be generated) or ENOMEM.
 */
static int
plugin_generate_file(
    const Google__Protobuf__Compiler__CodeGeneratorRequest *request,
    const Google__Protobuf__FileDescriptorProto            *file,
    Google__Protobuf__Compiler__CodeGeneratorResponse      *response)
{
	struct model_file *model;
	struct strbuf      text;
	char              *error;
	int                rv;

	if ((rv = model_build(request, file, &model, &error)) != 0) {
		if (rv == EINVAL) {
			response->error = error;
			return 0;
		}
		return rv;
	}
	strbuf_init(&text);
	emit_header(&text, model);
	if ((rv = plugin_add_file(
	         response, model->header_name, strbuf_steal(&text))) == 0) {
		emit_source(&text, model);
		rv = plugin_add_file(
		    response, model->source_name, strbuf_steal(&text));
	}
	model_free(model);
	return rv;
}

int
plugin_generate(
    const Google__Protobuf__Compiler__CodeGeneratorRequest *request,
    Google__Protobuf__Compiler__CodeGeneratorResponse      *response)
{
	int rv;

	/* protoc may hand proto3 `optional` fields to this plugin. */
	response->has_supported_features = 1;
	response->supported_features     = PLUGIN_FEATURE_PROTO3_OPTIONAL;

	if (request->parameter != NULL && request->parameter[0] != '\0') {
		response->error = strbuf_format(
		    "protoc-gen-zrpc takes no options (got \"%s\")",
		    request->parameter);
		return response->error != NULL ? 0 : ENOMEM;
	}
	for (size_t i = 0; i < request->n_file_to_generate; i++) {
		const char *name = request->file_to_generate[i];
		const Google__Protobuf__FileDescriptorProto *file;

		if ((file = plugin_find_file(request, name)) == NULL) {
			response->error = strbuf_format(
			    "%s: not among the files protoc sent", name);
			return response->error != NULL ? 0 : ENOMEM;
		}
		if (file->n_service == 0) {
			continue; /* nothing to generate */
		}
		if ((rv = plugin_generate_file(request, file, response)) !=
		    0) {
			return rv;
		}
		if (response->error != NULL) {
			plugin_drop_files(response);
			return 0;
		}
	}
	return 0;
}

void
plugin_response_finish(
    Google__Protobuf__Compiler__CodeGeneratorResponse *response)
{
	plugin_drop_files(response);
	free(response->error);
	response->error = NULL;
}
