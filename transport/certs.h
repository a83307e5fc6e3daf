/*
 * TLS material per registry, laid out as containers-certs.d(5) / docker's certs.d: in a
 * directory, every `*.crt` is a CA certificate (trusted in addition to the system's), and a
 * `NAME.cert` with its `NAME.key` is a client certificate. Directories searched for
 * HOST[:PORT]: with -o cert_dir=DIR, DIR itself and DIR/HOST[:PORT]/; else
 * /etc/containers/certs.d/HOST[:PORT]/, /etc/docker/certs.d/HOST[:PORT]/ and (not as root)
 * ~/.config/containers/certs.d/HOST[:PORT]/. Private to transport/.
 */
#ifndef REGISTRYFS_CERTS_H
#define REGISTRYFS_CERTS_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#define CERTS_MAX_FILES 64 /* files considered per directory */
#define CERTS_MAX_CAS 256  /* CA certificates kept */
#define CERTS_FILE_MAX_BYTES (1u << 20)

struct tls_certs;

/*
 * Collects the CA certificates and the client pair for hostport. No directory, or an empty
 * one: 0 with *out NULL (system trust only). A .cert without its .key (or the reverse), an
 * unreadable or unparsable file: -EINVAL with a log line naming the file.
 */
int certs_load(const char *cert_dir, const char *hostport, struct tls_certs **out)
    __attribute__((warn_unused_result));
void certs_free(struct tls_certs *c);

/* The directories certs_load searches for hostport, in order; NULL-terminated list of
 * malloc'd strings (free with certs_dirs_free). NULL when out of memory. */
char **certs_dirs(const char *cert_dir, const char *hostport);
void certs_dirs_free(char **dirs);

size_t certs_ca_count(const struct tls_certs *c);
bool certs_have_client(const struct tls_certs *c);
/* Where the CAs came from, for log lines ("" when none). */
const char *certs_describe(const struct tls_certs *c);

/* Sets the curl options on an easy handle: the extra CAs (added to the default store from an
 * SSL_CTX callback) and the client certificate and key. c may be NULL. 0 or -EIO. */
int certs_apply(const struct tls_certs *c, CURL *h) __attribute__((warn_unused_result));

#endif
