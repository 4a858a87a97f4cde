/*
 * model: one .proto file as protoc-gen-zrpc sees it, with every name the
 * generated code will use already spelled out.
 *
 * model_build() does all the thinking, emit does none: it resolves input
 * and output types across imports to protoc-c's names, derives the zrpc
 * symbol of every service and method, finds the proto comments, and
 * rejects what the generator cannot support (streaming methods) or would
 * get wrong (two things with one generated name). Keeping every name in
 * the model also means the collision check sees exactly the names that
 * emit writes.
 */
#ifndef ZRPC_GEN_MODEL_H
#define ZRPC_GEN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/compiler/plugin.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"

/* A message type used as a method's input or output. */
struct model_type {
	char *full_name;  /* "zos.v1.GetSkillsRequest" */
	char *c_type;     /* protoc-c's type, "Zos__V1__GetSkillsRequest" */
	char *descriptor; /* "zos__v1__get_skills_request__descriptor" */
};

/* One unary method. Strings are owned by the model unless noted. */
struct model_method {
	const char       *name;      /* "Get" (borrowed from the request) */
	const char       *comment;   /* leading comment (borrowed) or NULL */
	char             *full_name; /* "zos.v1.Skills.Get" */
	char             *path;      /* "/zos.v1.Skills/Get" */
	char             *method_macro;    /* "zos_v1_skills_get_method" */
	char             *call;            /* "zos_v1_skills_get" */
	char             *call_async;      /* "zos_v1_skills_get_async" */
	char             *callback_type;   /* "zos_v1_skills_get_cb" */
	char             *handler_type;    /* "zos_v1_skills_get_fn" */
	char             *invoke_handler;  /* static server trampoline */
	char             *invoke_callback; /* static client trampoline */
	char             *field; /* handler field, "get", "default_" */
	char             *blocking_field; /* "get_blocking" */
	const char       *role;           /* "ZRPC_ROLE_READ", ... (static) */
	const char       *role_name; /* "read", ... or "" for none (static) */
	struct model_type input;
	struct model_type output;
};

/* One service. */
struct model_service {
	const char *name;        /* "Skills" (borrowed) */
	const char *comment;     /* leading comment (borrowed) or NULL */
	char       *full_name;   /* "zos.v1.Skills" */
	char       *prefix;      /* "zos_v1_skills" */
	char       *desc;        /* "zos_v1_skills_service" */
	char       *methods;     /* "zos_v1_skills_methods" */
	char       *handlers;    /* struct tag "zos_v1_skills_handlers" */
	char       *register_fn; /* "zos_v1_skills_register" */
	size_t      n_methods;
	struct model_method *method;
};

/*
 * One file descriptor that the generated source embeds: a serialized
 * FileDescriptorProto without source_code_info.
 */
struct model_embedded {
	const char *name;   /* "zos/v1/zos.proto" (borrowed) */
	char       *symbol; /* its static variable, "zrpc_file_2" */
	uint8_t    *data;
	size_t      len;
	size_t      n_deps;
	size_t     *deps; /* indices in model_file.embedded, import order */
};

/* One .proto file with at least one service. */
struct model_file {
	const char *proto_name;  /* "zos/v1/skills.proto" (borrowed) */
	char       *pbc_header;  /* "zos/v1/skills.pb-c.h" */
	char       *header_name; /* "zos/v1/skills.zrpc.h" */
	char       *source_name; /* "zos/v1/skills.zrpc.c" */
	char       *guard;       /* "ZOS_V1_SKILLS_ZRPC_H" */
	size_t      n_services;
	struct model_service *service;
	/*
	 * protoc-c 1.4 names a member of its own service struct after each
	 * method (lower-cased, "default" for Default). The names here are C
	 * keywords or macros, which the header hides while it includes
	 * pbc_header.
	 */
	size_t n_pbc_hidden;
	char **pbc_hidden;
	/*
	 * The descriptors of the file and of every file it imports,
	 * directly or not, each after its imports: the file itself is the
	 * last one.
	 */
	size_t                 n_embedded;
	struct model_embedded *embedded;
};

/*
 * Builds the model of FILE, one of REQUEST's files to generate, which must
 * have at least one service; REQUEST supplies the imported files. Returns
 * 0 and the model in *OUT (free it with model_free); EINVAL with a
 * message for the user in *ERROR (the caller frees it) when the file
 * cannot be generated; ENOMEM when memory runs out. The model borrows
 * strings from REQUEST, which must outlive it.
 */
int model_build(
    const Google__Protobuf__Compiler__CodeGeneratorRequest *request,
    const Google__Protobuf__FileDescriptorProto *file, struct model_file **out,
    char **error);

/* Frees MODEL. NULL is a no-op. */
void model_free(struct model_file *model);

#endif /* ZRPC_GEN_MODEL_H */
