/*
 * TLS configurations for nng, built from PEM files, shared by the client's
 * dialers and the server's listeners (internal to libzrpc).
 *
 * Both sides get the same floor: TLS 1.2 at least, and certificates read
 * by zrpc itself (not by nng's file helpers) so that every error names the
 * file at fault. A client always verifies the server: without a CA file it
 * uses the system's trust store, and there is no way to turn verification
 * off.
 */
#ifndef ZRPC_COMMON_TLS_H
#define ZRPC_COMMON_TLS_H

#include <stdbool.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "zrpc/status.h"

/* Largest PEM file read (the system store is about 200 KiB). */
#define ZRPC_TLS_PEM_MAX (16u * 1024 * 1024)

/*
 * What a TLS configuration is built from. CERT_FILE and KEY_FILE: our own
 * certificate chain (leaf first) and its unencrypted private key, both PEM;
 * both or neither. CA_FILE: PEM CA certificates the peer's certificate
 * must chain to.
 */
struct zrpc_tls_files {
	const char *cert_file;
	const char *key_file;
	const char *ca_file;
};

/*
 * A server configuration: FILES->cert_file and key_file are required
 * (INVALID_ARGUMENT without them); with FILES->ca_file every client must
 * present a certificate that chains to it (mTLS), without it clients are
 * not asked for one. On success *OUT holds one reference (free it with
 * nng_tls_config_free). Errors: INVALID_ARGUMENT naming the file that
 * cannot be read or parsed, INTERNAL for nng or memory failures.
 */
zrpc_status zrpc_tls_server_config(
    nng_tls_config **out, const struct zrpc_tls_files *files);

/*
 * A client configuration: the server's certificate is always verified,
 * against FILES->ca_file or, when that is NULL, the system store
 * (zrpc_tls_system_ca_file); SERVER_NAME (may be NULL or "") is the name
 * it must carry. FILES->cert_file and key_file, when set, are presented
 * to a server that asks for a client certificate. Errors as for the
 * server; FAILED_PRECONDITION when no CA file is given and the system has
 * no trust store.
 */
zrpc_status zrpc_tls_client_config(nng_tls_config **out,
    const struct zrpc_tls_files *files, const char *server_name);

/*
 * The system's CA bundle: $SSL_CERT_FILE when set (as OpenSSL does), else
 * the first readable one of the usual places (Debian's
 * /etc/ssl/certs/ca-certificates.crt first). NULL when there is none; a
 * set $SSL_CERT_FILE that cannot be read is returned as is, so that its
 * error names it.
 */
const char *zrpc_tls_system_ca_file(void);

/*
 * True when URL's scheme runs over TLS (tls+tcp://, tls+tcp4://,
 * tls+tcp6://, wss://, wss4://, wss6://).
 */
bool zrpc_tls_url(const char *url);

#endif /* ZRPC_COMMON_TLS_H */
