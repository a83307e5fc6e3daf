/* What the registry_*.c files share: the registry object and the authenticated request. */
#ifndef REGISTRYFS_REGISTRY_INTERNAL_H
#define REGISTRYFS_REGISTRY_INTERNAL_H

#include <pthread.h>

#include "transport/auth.h"
#include "transport/http.h"
#include "transport/registry.h"

#define REG_URL_MAX LINK_URL_MAX
#define WIRE_REPO_MAX (REF_NAME_MAX + 9) /* + "library/" */

struct registry {
    struct registry_addr addr; /* scheme/endpoint change once, in ping: read under lock */
    pthread_mutex_t lock;
    struct http_pool *http;
    struct auth *auth;
};

struct reg_call {
    const char *method; /* NULL: GET */
    const char *url;
    const char *scope;          /* token scope ("repository:x:pull"); NULL: never authenticate */
    const char *const *headers; /* extra header lines, NULL-terminated, may be NULL */
    enum http_class cls;
    int max_attempts;
    http_body_fn on_body;
    void *ctx;
    void (*on_attempt)(void *ctx);
    /* request body, as in struct http_request */
    const void *upload_data;
    int upload_fd;
    uint64_t upload_len;
};

/*
 * Performs the call; on a 401 with a Bearer challenge (from the response, else the one the
 * ping saw) fetches an anonymous token for the scope and tries once more with it. Returns
 * what http_perform returns; resp holds the final response.
 */
int reg_perform(struct registry *r, const struct reg_call *call, struct http_response *resp);

/* Anonymous bearer token from the challenge's realm; a malloc'd token or NULL (logged). */
char *reg_fetch_token(struct registry *r, const struct auth_challenge *ch, const char *scope,
                      long *expires_in);

/* endpoint + path (printf-style). 0 or -ENAMETOOLONG. */
int reg_url(struct registry *r, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The endpoint as it is now (copied under the lock). */
void reg_endpoint(struct registry *r, char *out, size_t outlen);

/* The wire name of repo; -EINVAL (logged at debug) when it is not a valid name. */
int reg_wire_repo(struct registry *r, const char *repo, char out[WIRE_REPO_MAX + 1]);

/* -ENOENT for 404, -EACCES for 401/403, 0 for 2xx, else -EIO. */
int reg_status_errno(long status);

/* "HTTP 404 (NAME_UNKNOWN: repository name not known to registry)", or the transport failure,
 * or the local error rc. */
void reg_describe(const struct http_response *resp, int rc, char *out, size_t outlen);

/* One line for a failed operation: debug for -ENOENT and -ENOTSUP (answers, not faults),
 * else warn. */
void reg_log_failure(struct registry *r, const char *what, const struct http_response *resp,
                     int rc);

/* First "code" of a registry error body ({"errors":[{"code":..}]}), "" when none. */
void reg_error_code(const struct http_response *resp, char *out, size_t outlen);

#endif
