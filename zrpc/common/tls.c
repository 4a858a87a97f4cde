/*
 * TLS configurations from PEM files; see tls.h.
 *
 * The files are read here rather than with nng_tls_config_ca_file and
 * nng_tls_config_cert_key_file: those want the key and the certificate in
 * one file and report every problem as a bare nng error, where a user
 * needs to know which of three files is missing, unreadable or not PEM.
 * When nng refuses a certificate and key pair, the certificate alone is
 * parsed again into a scratch configuration to tell which file it was.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where distributions keep the CA bundle, most common first. */
static const char *const tls_system_ca_files[] = {
	"/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine */
	"/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
	"/etc/ssl/ca-bundle.pem",             /* openSUSE */
	"/etc/ssl/cert.pem",                  /* BSDs, macOS */
};

bool
zrpc_tls_url(const char *url)
{
	return strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss", 3) == 0;
}

const char *
zrpc_tls_system_ca_file(void)
{
	const char *env = getenv("SSL_CERT_FILE");

	if (env != NULL && env[0] != '\0') {
		return env;
	}
	for (size_t i = 0;
	     i < sizeof(tls_system_ca_files) / sizeof(tls_system_ca_files[0]);
	     i++) {
		if (access(tls_system_ca_files[i], R_OK) == 0) {
			return tls_system_ca_files[i];
		}
	}
	return NULL;
}

/*
 * Reads PATH (a WHAT: "certificate", "key", "CA") into *OUT, malloc'd and
 * NUL-terminated, at most ZRPC_TLS_PEM_MAX bytes.
 */
static zrpc_status
tls_read_pem(const char *what, const char *path, char **out)
{
	char       *buf = NULL;
	size_t      len = 0, cap = 0;
	struct stat st;
	int         fd;
	int         e = 0;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "TLS %s file %s: %s", what, path, strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		e = errno;
	} else if (S_ISDIR(st.st_mode)) {
		e = EISDIR;
	}
	if (e != 0) {
		(void) close(fd);
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "TLS %s file %s: %s", what, path, strerror(e));
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 2) {
			size_t grown = cap == 0 ? 8192 : cap * 2;
			char  *p;

			if (cap > ZRPC_TLS_PEM_MAX) {
				free(buf);
				(void) close(fd);
				return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
				    "TLS %s file %s: larger than %u bytes",
				    what, path, ZRPC_TLS_PEM_MAX);
			}
			if ((p = realloc(buf, grown)) == NULL) {
				free(buf);
				(void) close(fd);
				return zrpc_status_make(ZRPC_INTERNAL,
				    "out of memory reading %s", path);
			}
			buf = p;
			cap = grown;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			e = errno;
			free(buf);
			(void) close(fd);
			return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
			    "TLS %s file %s: %s", what, path, strerror(e));
		}
		if (n == 0) {
			break;
		}
		len += (size_t) n;
	}
	(void) close(fd);
	buf[len] = '\0';
	if (strstr(buf, "-----BEGIN ") == NULL) {
		free(buf);
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "TLS %s file %s: no PEM data in it", what, path);
	}
	*out = buf;
	return zrpc_status_ok();
}

/* Loads the CA certificates of PATH into CONFIG. */
static zrpc_status
tls_load_ca(nng_tls_config *config, const char *path)
{
	char       *pem;
	zrpc_status status;
	int         rv;

	status = tls_read_pem("CA", path, &pem);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	if ((rv = nng_tls_config_ca_chain(config, pem, NULL)) != 0) {
		status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "TLS CA file %s: not valid PEM certificates (%s)", path,
		    nng_strerror(rv));
	}
	free(pem);
	return status;
}

/* Loads our own certificate chain and key into CONFIG. */
static zrpc_status
tls_load_own(
    nng_tls_config *config, const char *cert_file, const char *key_file)
{
	char           *cert = NULL, *key = NULL;
	nng_tls_config *scratch;
	zrpc_status     status;
	int             rv;

	status = tls_read_pem("certificate", cert_file, &cert);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	status = tls_read_pem("key", key_file, &key);
	if (!zrpc_status_is_ok(&status)) {
		goto out;
	}
	if ((rv = nng_tls_config_own_cert(config, cert, key, NULL)) == 0) {
		goto out;
	}
	/* Which one did nng refuse? Parse the certificate alone. */
	if (nng_tls_config_alloc(&scratch, NNG_TLS_MODE_CLIENT) == 0) {
		int cert_rv = nng_tls_config_ca_chain(scratch, cert, NULL);
		nng_tls_config_free(scratch);
		if (cert_rv != 0) {
			status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
			    "TLS certificate file %s: not a valid PEM "
			    "certificate (%s)",
			    cert_file, nng_strerror(cert_rv));
			goto out;
		}
	}
	status = zrpc_status_make(ZRPC_INVALID_ARGUMENT,
	    "TLS key file %s: not a valid unencrypted PEM private key (%s)",
	    key_file, nng_strerror(rv));

out:
	/* Key material is not left behind in freed memory. */
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
	}
	free(key);
	free(cert);
	return status;
}

/* An nng TLS configuration for MODE with the TLS 1.2 floor. */
static zrpc_status
tls_config_alloc(nng_tls_config **out, nng_tls_mode mode)
{
	int rv;

	if ((rv = nng_tls_config_alloc(out, mode)) != 0) {
		return zrpc_status_from_nng(rv, "TLS configuration");
	}
	/* nng 1.5 with mbedTLS 2.28 treats 1.3 as "up to 1.2". */
	if ((rv = nng_tls_config_version(*out, NNG_TLS_1_2, NNG_TLS_1_3)) !=
	    0) {
		nng_tls_config_free(*out);
		*out = NULL;
		return zrpc_status_from_nng(rv, "TLS 1.2 minimum");
	}
	return zrpc_status_ok();
}

zrpc_status
zrpc_tls_server_config(
    nng_tls_config **out, const struct zrpc_tls_files *files)
{
	nng_tls_config *config;
	zrpc_status     status;
	int             rv;

	*out = NULL;
	if (files->cert_file == NULL || files->key_file == NULL) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "a TLS listener needs a certificate and its key (%s is "
		    "not set)",
		    files->cert_file == NULL ? "the certificate file"
		                             : "the key file");
	}
	status = tls_config_alloc(&config, NNG_TLS_MODE_SERVER);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	status = tls_load_own(config, files->cert_file, files->key_file);
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}
	if (files->ca_file != NULL) {
		status = tls_load_ca(config, files->ca_file);
		if (!zrpc_status_is_ok(&status)) {
			goto fail;
		}
		rv = nng_tls_config_auth_mode(
		    config, NNG_TLS_AUTH_MODE_REQUIRED);
	} else {
		rv = nng_tls_config_auth_mode(config, NNG_TLS_AUTH_MODE_NONE);
	}
	if (rv != 0) {
		status = zrpc_status_from_nng(rv, "TLS authentication mode");
		goto fail;
	}
	*out = config;
	return zrpc_status_ok();

fail:
	nng_tls_config_free(config);
	return status;
}

zrpc_status
zrpc_tls_client_config(nng_tls_config **out,
    const struct zrpc_tls_files *files, const char *server_name)
{
	nng_tls_config *config;
	const char     *ca = files->ca_file;
	zrpc_status     status;
	int             rv;

	*out = NULL;
	if ((files->cert_file == NULL) != (files->key_file == NULL)) {
		return zrpc_status_make(ZRPC_INVALID_ARGUMENT,
		    "a TLS client certificate needs its key, and a key its "
		    "certificate");
	}
	if (ca == NULL && (ca = zrpc_tls_system_ca_file()) == NULL) {
		return zrpc_status_make(ZRPC_FAILED_PRECONDITION,
		    "no TLS CA file given and no system trust store found "
		    "(%s, or SSL_CERT_FILE): the server cannot be verified",
		    tls_system_ca_files[0]);
	}
	status = tls_config_alloc(&config, NNG_TLS_MODE_CLIENT);
	if (!zrpc_status_is_ok(&status)) {
		return status;
	}
	status = tls_load_ca(config, ca);
	if (!zrpc_status_is_ok(&status)) {
		goto fail;
	}
	/* Never NONE, whatever nng's default. */
	if ((rv = nng_tls_config_auth_mode(
	         config, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
		status = zrpc_status_from_nng(rv, "TLS authentication mode");
		goto fail;
	}
	if (files->cert_file != NULL) {
		status =
		    tls_load_own(config, files->cert_file, files->key_file);
		if (!zrpc_status_is_ok(&status)) {
			goto fail;
		}
	}
	if (server_name != NULL && server_name[0] != '\0' &&
	    (rv = nng_tls_config_server_name(config, server_name)) != 0) {
		status = zrpc_status_from_nng(rv, "TLS server name");
		goto fail;
	}
	*out = config;
	return zrpc_status_ok();

fail:
	nng_tls_config_free(config);
	return status;
}
