/*
 * Registry HTTP API V2 / OCI distribution client on libcurl. Knows URLs, status codes, headers,
 * pagination, retries; knows nothing about files or inodes. Thread-safe: any thread may call
 * any function; easy handles are pooled so connections are reused.
 *
 * Errors are negative errno values: -ENOENT (404 / NAME_UNKNOWN / MANIFEST_UNKNOWN / BLOB_UNKNOWN),
 * -EACCES (401/403 after auth), -ENOTSUP (no catalog on this registry), -EIO (network, 5xx, 429
 * after bounded retries, TLS failure, protocol violation), -EFBIG (a body over its limit). Each
 * failure logs one line saying why, never a credential or token.
 */
#ifndef REGISTRYFS_REGISTRY_H
#define REGISTRYFS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/strlist.h"
#include "transport/manifest.h"
#include "transport/ref.h"

/* Initialises libcurl once for the process (curl_global_init is not safe to race); call it
 * from main before any thread starts. Later calls are no-ops returning the first result.
 * registry_new calls it too, as a safety net. 0 or -EIO. */
int transport_global_init(void) __attribute__((warn_unused_result));
/* At exit, after every registry_free; optional (keeps leak checkers quiet). */
void transport_global_cleanup(void);

struct registry_options {
    const char *address;         /* [http://|https://]HOST[:PORT] */
    bool tls_verify;             /* default true */
    const char *cert_dir;        /* NULL: defaults (issue 4) */
    const char *authfile;        /* NULL: defaults (issue 4) */
    const char *registries_conf; /* containers-registries.conf(5) file for per-host settings
                                    (insecure, blocked, mirrors); NULL: none */
};

struct registry;

/* Parses the address, sets up libcurl, reads the registries.conf entry and the certs.d
 * directories of the host; does no network I/O. -EINVAL for a bad address. */
int registry_new(const struct registry_options *opt, struct registry **out)
    __attribute__((warn_unused_result));
void registry_free(struct registry *r);

const struct registry_addr *registry_addr(const struct registry *r);

/*
 * GET /v2/. Decides the scheme for a loopback host (or one registries.conf calls insecure)
 * given without one: https, falling back to http only when the server does not speak TLS at
 * all (never after a certificate verification failure), as docker does for 127.0.0.0/8; and
 * remembers the auth challenge. 0 when the registry answered like a registry (200 or 401),
 * else -EIO (a TLS verification failure is logged as such) / -EACCES (also: blocked in
 * registries.conf).
 */
int registry_ping(struct registry *r) __attribute__((warn_unused_result));

/* /v2/_catalog, following Link rel="next" until the end. Invalid names are skipped with a log
 * line. -ENOTSUP when the registry has no catalog (404, 401/403 on it, or UNSUPPORTED). */
int registry_catalog(struct registry *r, struct strlist *repos) __attribute__((warn_unused_result));

/* /v2/REPO/tags/list, paginated. -ENOENT when the repository does not exist. */
int registry_tags(struct registry *r, const char *repo, struct strlist *tags)
    __attribute__((warn_unused_result));

/*
 * GET /v2/REPO/manifests/REF (REF is a tag or a digest) with an Accept of OCI manifest+index
 * and Docker schema2 manifest+list. body: exact bytes, at most MANIFEST_MAX_BYTES.
 * media_type: the Content-Type (params stripped). digest_out (may be NULL): sha256 of the bytes,
 * "sha256:<hex>". When REF is a digest the bytes are verified against it (-EIO on mismatch).
 */
int registry_get_manifest(struct registry *r, const char *repo, const char *ref, struct buf *body,
                          char media_type[MEDIA_TYPE_MAX], char digest_out[DIGEST_STR_LEN + 1])
    __attribute__((warn_unused_result));

/* Receives blob bytes in order; returning non-zero (-errno) aborts the transfer with it. */
typedef int (*blob_sink_fn)(const void *data, size_t len, void *ctx);

/*
 * GET /v2/REPO/blobs/DIGEST from byte `offset` (Range) up to `end` (exclusive; 0: to the end of
 * the blob). Redirects are followed, without the Authorization header on another host. If the
 * server ignores an open-ended Range (200), the leading `offset` bytes are skipped here, so the
 * sink always starts at `offset`; a bounded range answered with 200 is -ERANGE (the caller
 * fetches the blob in one stream instead), and more bytes than asked for are -EIO. One attempt,
 * no retry (the caller knows how far it got and retries from there). Stalls (no byte for 10 s)
 * and connection failures give -EIO. Holds one of the registry's download slots while it runs.
 * Does not verify the digest: the caller hashes.
 */
int registry_get_blob(struct registry *r, const char *repo, const char *digest, uint64_t offset,
                      uint64_t end, blob_sink_fn sink, void *ctx)
    __attribute__((warn_unused_result));

/* Concurrent blob transfers per direction (-o max_transfers), 1..HTTP_MAX_TRANSFERS. */
void registry_set_max_transfers(struct registry *r, int n);
/* -o timeout (seconds a metadata request may take, retries included; a transfer's speed-floor
 * window) and -o retries (further attempts of a failed request). */
void registry_set_limits(struct registry *r, int timeout_s, int retries);
/* Whether the calling thread's last registry call failed because the registry did not answer
 * (down, stalled, overloaded), as opposed to answering wrongly. */
bool registry_last_unanswered(void);

/* The mount is ending: every request of the registry (and of its mirrors), running or to
 * come, fails with -ECANCELED at once. */
void registry_abort(struct registry *r);

#endif
