/*
 * The tools' method resolver: see resolve.h.
 *
 * --proto is compiled by protoc itself, run as a child process (no shell:
 * posix_spawnp with the arguments as given) into a descriptor set in a
 * private temporary file, which is then read like --protoset: one code
 * path for both, and protoc's own diagnostics, which are better than any
 * re-statement, go straight to the user's stderr. Its stdout goes there
 * too, so that a tool's stdout holds only replies.
 *
 * Reflection fetches the files of the method's service (the symbol
 * before the method name), so that one round trip brings the method, its
 * types and their imports.
 */
#include "resolve.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "methods.h"

extern char **environ;

/* Largest descriptor set read (zosd's own is some 20 KiB). */
#define RESOLVE_MAX_SET_BYTES (64u * 1024 * 1024)
/* Longest symbol or method name handled. */
#define RESOLVE_MAX_NAME 1024

struct zos_resolver {
	zrpc_descriptor_pool *pool;
	bool                  files; /* the pool holds --proto/--protoset */
	bool builtin_added;          /* the compiled-in services are in it */
};

const char *
zos_resolve_source_name(enum zos_resolve_source source)
{
	switch (source) {
	case ZOS_RESOLVE_FILES:
		return "--protoset/--proto";
	case ZOS_RESOLVE_REFLECTION:
		return "reflection";
	case ZOS_RESOLVE_BUILTIN:
		return "compiled-in";
	case ZOS_RESOLVE_NONE:
		break;
	}
	return "none";
}

/* Reads all of PATH into *DATA (malloc'd) and *LEN. */
static zrpc_status
resolve_read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE       *f = fopen(path, "rb");
	struct stat st;
	uint8_t    *buf;

	*data = NULL;
	*len  = 0;
	if (f == NULL) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "cannot read %s: %s", path, strerror(errno));
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t) st.st_size > RESOLVE_MAX_SET_BYTES) {
		fclose(f);
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "%s is not a regular file of at most %u bytes", path,
		    RESOLVE_MAX_SET_BYTES);
	}
	buf = malloc(st.st_size > 0 ? (size_t) st.st_size : 1);
	if (buf == NULL) {
		fclose(f);
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	if (fread(buf, 1, (size_t) st.st_size, f) != (size_t) st.st_size) {
		free(buf);
		fclose(f);
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "cannot read %s", path);
	}
	fclose(f);
	*data = buf;
	*len  = (size_t) st.st_size;
	return zrpc_status_ok();
}

/* Adds the descriptor set in file PATH to R's pool. */
static zrpc_status
resolve_add_set_file(zos_resolver *r, const char *path, const char *what)
{
	uint8_t    *data;
	size_t      len;
	zrpc_status status = resolve_read_file(path, &data, &len);

	if (status.code != ZRPC_OK) {
		return status;
	}
	status = zrpc_descriptor_pool_add_set(r->pool, data, len);
	free(data);
	if (status.code != ZRPC_OK) {
		return zrpc_status_make(
		    status.code, "%.60s: %.180s", what, status.message);
	}
	return status;
}

/*
 * Runs protoc on OPTS->proto into the descriptor set file SET_PATH.
 * protoc's stdout and stderr go to ours (stderr).
 */
static zrpc_status
resolve_run_protoc(const struct zos_resolve_opts *opts, const char *set_path)
{
	size_t n = 0;
	/* protoc, 2 options, -I DIR per path (or of FILE), FILE, NULL */
	size_t                     max     = 8 + 2 * opts->n_import_paths;
	char                     **argv    = calloc(max, sizeof(*argv));
	char                      *out_arg = NULL, *dir_copy = NULL;
	posix_spawn_file_actions_t fa;
	pid_t                      pid;
	int                        rv, wstatus;
	zrpc_status                status = zrpc_status_ok();

	size_t out_len =
	    strlen("--descriptor_set_out=") + strlen(set_path) + 1;

	out_arg = malloc(out_len);
	if (argv == NULL || out_arg == NULL) {
		free(argv);
		free(out_arg);
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	snprintf(out_arg, out_len, "--descriptor_set_out=%s", set_path);
	argv[n++] = "protoc";
	argv[n++] = "--include_imports";
	argv[n++] = out_arg;
	if (opts->n_import_paths == 0) {
		/* protoc wants the file under an import path. */
		dir_copy = strdup(opts->proto);
		if (dir_copy == NULL) {
			status = zrpc_status_make(
			    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
			goto out;
		}
		argv[n++] = "-I";
		argv[n++] = dirname(dir_copy);
	}
	for (size_t i = 0; i < opts->n_import_paths; i++) {
		argv[n++] = "-I";
		argv[n++] = (char *) opts->import_paths[i];
	}
	argv[n++] = (char *) opts->proto;
	argv[n]   = NULL;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	rv = posix_spawnp(&pid, "protoc", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rv == ENOENT) {
		status = zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "--proto needs protoc, which is not in PATH (Debian: "
		    "apt install protobuf-compiler); or give --protoset");
		goto out;
	}
	if (rv != 0) {
		status = zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "cannot run protoc: %s", strerror(rv));
		goto out;
	}
	while (waitpid(pid, &wstatus, 0) < 0) {
		if (errno != EINTR) {
			status = zrpc_status_make(ZRPC_INTERNAL,
			    "waiting for protoc: %s", strerror(errno));
			goto out;
		}
	}
	if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
		status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "protoc failed on %s (%s %d; its messages are above)",
		    opts->proto, WIFEXITED(wstatus) ? "exit status" : "signal",
		    WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
		                       : WTERMSIG(wstatus));
	}
out:
	free(dir_copy);
	free(out_arg);
	free(argv);
	return status;
}

/* --proto: protoc into a temporary set, then that set. */
static zrpc_status
resolve_add_proto(zos_resolver *r, const struct zos_resolve_opts *opts)
{
	const char *tmp = getenv("TMPDIR");
	char        path[4096];
	int         fd;
	zrpc_status status;

	if (tmp == NULL || tmp[0] == '\0') {
		tmp = "/tmp";
	}
	if (snprintf(path, sizeof(path), "%s/zos-protoset-XXXXXX", tmp) >=
	    (int) sizeof(path)) {
		return zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "TMPDIR is too long");
	}
	fd = mkstemp(path);
	if (fd < 0) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "cannot create a temporary file in %s: %s", tmp,
		    strerror(errno));
	}
	close(fd);
	status = resolve_run_protoc(opts, path);
	if (status.code == ZRPC_OK) {
		status = resolve_add_set_file(r, path, opts->proto);
	}
	unlink(path);
	return status;
}

zrpc_status
zos_resolver_new(zos_resolver **out, const struct zos_resolve_opts *opts)
{
	zos_resolver *r = calloc(1, sizeof(*r));
	zrpc_status   status;

	*out = NULL;
	if (r == NULL) {
		return zrpc_status_make(
		    ZRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	status = zrpc_descriptor_pool_new(&r->pool);
	if (status.code != ZRPC_OK) {
		free(r);
		return status;
	}
	if (opts != NULL && opts->proto != NULL && opts->protoset != NULL) {
		status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "--proto and --protoset do not go together");
	} else if (opts != NULL && opts->protoset != NULL) {
		r->files = true;
		status = resolve_add_set_file(r, opts->protoset, "--protoset");
	} else if (opts != NULL && opts->proto != NULL) {
		r->files = true;
		status   = resolve_add_proto(r, opts);
	} else if (opts != NULL && opts->n_import_paths > 0) {
		status = zrpc_status_make(
		    ZRPC_INVALID_ARGUMENT, "-I goes with --proto");
	}
	if (status.code != ZRPC_OK) {
		zos_resolver_free(r);
		return status;
	}
	*out = r;
	return status;
}

void
zos_resolver_free(zos_resolver *r)
{
	if (r == NULL) {
		return;
	}
	zrpc_descriptor_pool_free(r->pool);
	free(r);
}

bool
zos_resolver_has_files(const zos_resolver *r)
{
	return r->files;
}

/*
 * The service part of NAME ("/pkg.Svc/M", "pkg.Svc/M", "pkg.Svc.M") into
 * OUT: what reflection is asked for.
 */
static void
resolve_service_of(const char *name, char *out, size_t len)
{
	const char *slash, *end;

	if (name[0] == '/') {
		name++;
	}
	slash = strchr(name, '/');
	end   = slash != NULL ? slash : strrchr(name, '.');
	if (end == NULL) {
		end = name + strlen(name);
	}
	snprintf(out, len, "%.*s", (int) (end - name), name);
}

/* Adds every compiled-in service to R's pool, once. */
static zrpc_status
resolve_add_builtin(zos_resolver *r)
{
	size_t                                 n;
	const struct zrpc_service_desc *const *services =
	    zos_tools_services(&n);

	if (r->builtin_added) {
		return zrpc_status_ok();
	}
	for (size_t i = 0; i < n; i++) {
		zrpc_status status =
		    zrpc_descriptor_pool_add_service(r->pool, services[i]);

		if (status.code != ZRPC_OK) {
			return status;
		}
	}
	r->builtin_added = true;
	return zrpc_status_ok();
}

/*
 * True when reflection's STATUS says the server could not be asked (it is
 * down, slow, or refused the caller): then its status is the answer, as
 * the call itself would fail the same way. Any other failure (no
 * descriptor reflection, an unknown name, descriptors that do not read)
 * sends the resolver on to the compiled-in tables.
 */
static bool
resolve_unreachable(const zrpc_status *status)
{
	switch (status->code) {
	case ZRPC_UNAVAILABLE:
	case ZRPC_DEADLINE_EXCEEDED:
	case ZRPC_CANCELLED:
	case ZRPC_UNAUTHENTICATED:
	case ZRPC_PERMISSION_DENIED:
	case ZRPC_RESOURCE_EXHAUSTED:
		return true;
	default:
		return false;
	}
}

/* True when reflection's STATUS says it does not know the name. */
static bool
resolve_unknown(const zrpc_status *status)
{
	return status->code == ZRPC_UNIMPLEMENTED ||
	    status->code == ZRPC_NOT_FOUND;
}

zrpc_status
zos_resolve_method(zos_resolver *r, zrpc_client *client,
    const zrpc_call_opts *call_opts, const char *name,
    const struct zrpc_method **out, enum zos_resolve_source *source)
{
	char                      service[RESOLVE_MAX_NAME];
	const struct zrpc_method *builtin;
	zrpc_status               status, reflection;

	*out = NULL;
	if (source != NULL) {
		*source = ZOS_RESOLVE_NONE;
	}
	if (r->files) {
		status = zrpc_descriptor_pool_find_method(r->pool, name, out);
		if (status.code == ZRPC_OK && source != NULL) {
			*source = ZOS_RESOLVE_FILES;
		} else if (status.code == ZRPC_NOT_FOUND) {
			status = zrpc_status_make(ZRPC_NOT_FOUND,
			    "unknown method '%s': not in the --proto or "
			    "--protoset files",
			    name);
		}
		return status;
	}
	if (client != NULL) {
		resolve_service_of(name, service, sizeof(service));
		reflection =
		    zrpc_reflection_fetch(client, service, r->pool, call_opts);
		if (reflection.code == ZRPC_OK) {
			status = zrpc_descriptor_pool_find_method(
			    r->pool, name, out);
			if (status.code == ZRPC_OK) {
				if (source != NULL) {
					*source = ZOS_RESOLVE_REFLECTION;
				}
				return status;
			}
			reflection = status;
		}
		if (resolve_unreachable(&reflection)) {
			return zrpc_status_make(reflection.code,
			    "reflection: %.230s", reflection.message);
		}
	} else {
		reflection = zrpc_status_make(ZRPC_UNIMPLEMENTED, "no server");
	}
	builtin = zos_tools_find_method(name);
	if (builtin != NULL) {
		*out = builtin;
		if (source != NULL) {
			*source = ZOS_RESOLVE_BUILTIN;
		}
		return zrpc_status_ok();
	}
	if (!resolve_unknown(&reflection)) {
		return zrpc_status_make(
		    reflection.code, "reflection: %.230s", reflection.message);
	}
	return zrpc_status_make(ZRPC_NOT_FOUND,
	    "unknown method '%s': the server's reflection does not describe "
	    "it (%s: %s), nor is it compiled in; give --proto or --protoset",
	    name, zrpc_status_name(reflection.code), reflection.message);
}

/*
 * Fetches SYMBOL by reflection or, when the server does not know it by
 * that name (NOT_FOUND), the symbol that encloses it: the service of
 * "pkg.Svc.M" or "pkg.Svc/M", the message of a nested "pkg.Msg.Inner",
 * one component at a time.
 */
static zrpc_status
resolve_fetch_enclosing(zrpc_client *client, const char *symbol,
    zrpc_descriptor_pool *pool, const zrpc_call_opts *call_opts)
{
	char        name[RESOLVE_MAX_NAME];
	zrpc_status status, first;
	char       *cut;

	snprintf(name, sizeof(name), "%s", symbol);
	first = status = zrpc_reflection_fetch(client, name, pool, call_opts);
	while (status.code == ZRPC_NOT_FOUND) {
		cut = strrchr(name, '/');
		if (cut == NULL) {
			cut = strrchr(name, '.');
		}
		if (cut == NULL || cut == name) {
			return first;
		}
		*cut   = '\0';
		status = zrpc_reflection_fetch(client, name, pool, call_opts);
	}
	return status;
}

/* True when POOL defines SYMBOL (a service, method, message or enum). */
static bool
resolve_pool_knows(zrpc_descriptor_pool *pool, const char *symbol)
{
	const ProtobufCServiceDescriptor *service;
	const ProtobufCMessageDescriptor *message;
	const ProtobufCEnumDescriptor    *enumeration;
	const struct zrpc_method         *method;

	return zrpc_descriptor_pool_find_service(pool, symbol, &service)
	           .code == ZRPC_OK ||
	    zrpc_descriptor_pool_find_method(pool, symbol, &method).code ==
	    ZRPC_OK ||
	    zrpc_descriptor_pool_find_message(pool, symbol, &message).code ==
	    ZRPC_OK ||
	    zrpc_descriptor_pool_find_enum(pool, symbol, &enumeration).code ==
	    ZRPC_OK;
}

zrpc_status
zos_resolve_symbol(zos_resolver *r, zrpc_client *client,
    const zrpc_call_opts *call_opts, const char *symbol,
    zrpc_descriptor_pool **pool, enum zos_resolve_source *source)
{
	zrpc_status reflection, status;

	*pool = r->pool;
	if (source != NULL) {
		*source = r->files ? ZOS_RESOLVE_FILES : ZOS_RESOLVE_NONE;
	}
	if (symbol == NULL || r->files) {
		return zrpc_status_ok();
	}
	if (client != NULL) {
		reflection = resolve_fetch_enclosing(
		    client, symbol, r->pool, call_opts);
		if (reflection.code == ZRPC_OK) {
			if (source != NULL) {
				*source = ZOS_RESOLVE_REFLECTION;
			}
			return reflection;
		}
		if (resolve_unreachable(&reflection)) {
			return zrpc_status_make(reflection.code,
			    "reflection: %.230s", reflection.message);
		}
	} else {
		reflection = zrpc_status_make(ZRPC_UNIMPLEMENTED, "no server");
	}
	status = resolve_add_builtin(r);
	if (status.code != ZRPC_OK) {
		return status;
	}
	if (resolve_pool_knows(r->pool, symbol)) {
		if (source != NULL) {
			*source = ZOS_RESOLVE_BUILTIN;
		}
		return zrpc_status_ok();
	}
	if (!resolve_unknown(&reflection)) {
		return zrpc_status_make(
		    reflection.code, "reflection: %.230s", reflection.message);
	}
	return zrpc_status_make(ZRPC_NOT_FOUND,
	    "unknown symbol '%s': the server's reflection does not describe "
	    "it (%s: %s), nor is it compiled in; give --proto or --protoset",
	    symbol, zrpc_status_name(reflection.code), reflection.message);
}
