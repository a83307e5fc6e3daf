/* What the registry_*.c files share: the registry object and the authenticated request. */
#ifndef REGISTRYFS_REGISTRY_INTERNAL_H
#define REGISTRYFS_REGISTRY_INTERNAL_H

#include <pthread.h>

#include "transport/auth.h"
#include "transport/certs.h"
#include "transport/http.h"
#include "transport/registries_conf.h"
#include "transport/registry.h"
#include "transport/registry_creds.h"
#include "transport/url.h"

#define REG_URL_MAX LINK_URL_MAX
#define WIRE_REPO_MAX (REF_NAME_MAX + 9) /* + "library/" */
#define REG_MIRRORS_MAX 32               /* distinct mirror hosts per registry */

/* A mirror host (registries.conf), with its own connection pool, credentials and TLS. */
struct reg_mirror {
    char hostport[REF_HOST_MAX + 8];
    bool insecure;
    struct registry *reg; /* created on first use */
    bool pinged;
    int ping_rc;
    int64_t ping_at_ms;
};

struct registry {
    struct registry_addr addr; /* scheme/endpoint change once, in ping: read under lock */
    pthread_mutex_t lock;
    struct http_pool *http;
    struct auth *auth;
    struct reg_creds *creds;
    struct tls_certs *certs; /* NULL: system trust only */
    bool tls_verify;
    bool insecure;   /* registries.conf: plain http allowed, certificates not verified */
    bool blocked;    /* registries.conf: every request refused */
    char *conf_path; /* registries.conf in use (for log lines), NULL when none */
    struct registries_conf conf; /* its entries; empty for a mirror */
    /* what a mirror's registry object is created with */
    char *authfile;
    char *cert_dir;
    bool tls_verify_opt;
    /* mirrors in use, under lock */
    struct reg_mirror mirrors[REG_MIRRORS_MAX];
    size_t n_mirrors;
    /* the last access-denied line, so that repeats stay out of the log (under deny_lock) */
    pthread_mutex_t deny_lock;
    char deny_last[1280];
    int64_t deny_at_ms;
};

struct reg_call {
    const char *method; /* NULL: GET */
    const char *url;
    const char *scope;          /* token scope ("repository:x:pull"); NULL: never authenticate */
    const char *scope2;         /* a second scope asked for in the same token, e.g. the source
                                   of a cross-repository mount ("repository:from:pull");
                                   NULL when none */
    const char *const *headers; /* extra header lines, NULL-terminated, may be NULL */
    enum http_class cls;
    int max_attempts;
    http_body_fn on_body;
    void *ctx;
    void (*on_attempt)(void *ctx);
    /* request body, as in struct http_request */
    const void *upload_data;
    int upload_fd;
    uint64_t upload_base;
    uint64_t upload_len;
    http_stream_fn upload_stream; /* as in struct http_request */
    void *upload_stream_ctx;
    const int *cancel;         /* as in struct http_request */
    uint64_t *upload_progress; /* as in struct http_request */
};

/*
 * Performs the call, authenticated as the registry wants it (call->scope NULL: never):
 * - Basic (challenge seen): the credentials for the scope's repository on every request;
 * - Bearer: a cached token for scope (+ scope2), else one fetched before the request (with
 *   the credentials: Basic to the realm, or an OAuth2 refresh-token POST for an identity
 *   token; anonymous without), and on a 401 with a token that was cached (it expired early,
 *   or was revoked) one more fetch and try.
 * When access is finally denied (401/403) one log line says why (no credentials, refused
 * credentials, insufficient scope) and resp->auth_logged is set, so callers log theirs at
 * debug level. Returns what http_perform returns (-EACCES without a request when the registry
 * is blocked); resp holds the final response.
 */
int reg_perform(struct registry *r, const struct reg_call *call, struct http_response *resp)
    __attribute__((warn_unused_result));

/* endpoint + path (printf-style). 0 or -ENAMETOOLONG. */
int reg_url(struct registry *r, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5))) __attribute__((warn_unused_result));
/* Registry text reaches our log: at most max bytes of s into out, anything but printable
 * ASCII replaced by '?'. */
void reg_copy_printable(char *out, size_t outlen, const char *s, size_t max);
/* The endpoint as it is now (copied under the lock). */
void reg_endpoint(struct registry *r, char *out, size_t outlen);

/* The wire name of repo; -EINVAL (logged at debug) when it is not a valid name. */
int reg_wire_repo(struct registry *r, const char *repo, char out[WIRE_REPO_MAX + 1])
    __attribute__((warn_unused_result));

/* -ENOENT for 404, -EACCES for 401/403, 0 for 2xx, else -EIO. */
int reg_status_errno(long status);

/* One line for a failed operation: debug for -ENOENT and -ENOTSUP (answers, not faults),
 * else warn. */
void reg_log_failure(struct registry *r, const char *what, const struct http_response *resp,
                     int rc);

/* First "code" of a registry error body ({"errors":[{"code":..}]}), "" when none. */
void reg_error_code(const struct http_response *resp, char *out, size_t outlen);

/* ---- the write half's shared pieces (registry_write.c) ---- */

struct target {
    char wire[WIRE_REPO_MAX + 1];
    char scope[WIRE_REPO_MAX + 32];
    char url[REG_URL_MAX];
    char what[2 * WIRE_REPO_MAX + 200]; /* names the operation in log lines */
};

/* Validates the name, builds the scope (pull,push) and the URL endpoint + /v2/WIRE + suffix. */
int reg_target_of(struct registry *r, const char *repo, const char *suffix, struct target *t)
    __attribute__((warn_unused_result));
/* A metadata request of the target, with no body unless the caller adds one. */
struct reg_call reg_meta_call(const char *method, const struct target *t, int attempts);
/* One call, its errno and (on failure) one log line. expect: the success status. */
int reg_perform_expect(struct registry *r, struct reg_call *call, struct http_response *resp,
                       long expect, const char *what) __attribute__((warn_unused_result));
/* The absolute upload URL the registry gave in Location (possibly relative). */
int reg_upload_location(struct registry *r, const struct http_response *resp, char *out,
                        size_t outlen) __attribute__((warn_unused_result));

/* ---- mirrors (registry_mirror.c) ---- */

enum reg_read_kind {
    REG_READ_BLOB,
    REG_READ_TAGS,
    REG_READ_MANIFEST_TAG,
    REG_READ_MANIFEST_DIGEST
};

struct reg_source {
    struct registry *reg;
    char repo[REF_NAME_MAX + 1];
};

/* The mirrors to try, in order, before the registry itself for a read of repo (user name, as
 * given to registry_get_*): at most max, each ready (pinged). The count. */
size_t reg_mirror_sources(struct registry *r, const char *repo, enum reg_read_kind kind,
                          struct reg_source *out, size_t max);
void reg_mirrors_free(struct registry *r);

#endif
