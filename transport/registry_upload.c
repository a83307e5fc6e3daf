/* Blob uploads: monolithic (POST + PUT) for small blobs, chunked and resumable (POST, PATCH with
 * Content-Range, PUT) for large ones, streamed (chunked transfer) while a file is written. */
#include "transport/registry_write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "transport/registry_internal.h"

/* location?digest=DIGEST, or location&digest=DIGEST when it has a query already. */
static int put_url(const char *location, const char *digest, char *out, size_t outlen)
{
    const char *colon = strchr(digest, ':');
    int n = snprintf(out, outlen, "%s%cdigest=%.*s%%3A%s", location,
                     strchr(location, '?') ? '&' : '?', (int)(colon - digest), digest, colon + 1);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* POST /v2/REPO/blobs/uploads/ and the PUT URL that completes it with DIGEST. */
static int start_upload(struct registry *r, const char *repo, const char *digest, struct target *t,
                        char *put, size_t putlen)
{
    if (!ref_valid_digest(digest)) return -EINVAL;
    int rc = reg_target_of(r, repo, "/blobs/uploads/", t);
    if (rc) return rc;
    snprintf(t->what, sizeof(t->what), "upload %s to %s", digest, t->wire);
    struct reg_call call = reg_meta_call("POST", t, HTTP_MAX_ATTEMPTS);
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform_expect(r, &call, &resp, 202, t->what);
    char location[REG_URL_MAX];
    if (rc == 0 && (reg_upload_location(r, &resp, location, sizeof(location)) ||
                    put_url(location, digest, put, putlen))) {
        log_error("registry %s: %s: no usable Location for the upload", r->addr.hostport, t->what);
        rc = -EIO;
    }
    http_response_free(&resp);
    return rc;
}

static int finish_upload(struct registry *r, struct target *t, struct reg_call *put)
{
    static const char *const headers[] = {"Content-Type: application/octet-stream", NULL};
    put->method = "PUT";
    put->scope = t->scope;
    put->headers = headers;
    put->cls = HTTP_BLOB;
    put->max_attempts = 1;
    struct http_response resp;
    http_response_init(&resp);
    int rc = reg_perform_expect(r, put, &resp, 201, t->what);
    http_response_free(&resp);
    return rc;
}

static bool cancelled(const struct upload_ctl *ctl)
{
    return ctl->cancel && __atomic_load_n(ctl->cancel, __ATOMIC_ACQUIRE);
}

/* One POST + PUT of a file body. *transient: the failure may go away (connection, 5xx, 429). */
static int upload_once(struct registry *r, const char *repo, const char *digest, int fd,
                       uint64_t size, const struct upload_ctl *ctl, bool *transient)
{
    struct target t;
    char url[REG_URL_MAX + DIGEST_STR_LEN + 32];
    int rc = start_upload(r, repo, digest, &t, url, sizeof(url));
    if (rc) return rc; /* the POST was retried already */
    static const char *const headers[] = {"Content-Type: application/octet-stream", NULL};
    struct reg_call put = {.method = "PUT",
                           .url = url,
                           .scope = t.scope,
                           .headers = headers,
                           .cls = HTTP_BLOB,
                           .max_attempts = 1,
                           .upload_fd = fd,
                           .upload_len = size,
                           .cancel = ctl->cancel,
                           .upload_progress = ctl->sent};
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform(r, &put, &resp);
    long s = resp.status;
    *transient = rc == -EIO ? resp.body_error == 0 : s == 429 || s >= 500;
    if (rc == 0 && s != 201) rc = reg_status_errno(s) ? reg_status_errno(s) : -EIO;
    if (rc) reg_log_failure(r, t.what, &resp, rc);
    http_response_free(&resp);
    return rc;
}

/* ---- chunked, resumable: POST, PATCH per chunk with Content-Range, PUT ?digest= ---- */

#define CHUNKED_MIN (32u << 20) /* larger blobs go in chunks, so a failure costs one chunk */
#define CHUNK_SIZE (16u << 20)

struct session {
    struct target t;
    char location[REG_URL_MAX]; /* the upload's URL, as the registry last gave it */
    const char *digest;
};

static int open_session(struct registry *r, const char *repo, const char *digest, struct session *u)
{
    u->digest = digest;
    if (!ref_valid_digest(digest)) return -EINVAL;
    int rc = reg_target_of(r, repo, "/blobs/uploads/", &u->t);
    if (rc) return rc;
    snprintf(u->t.what, sizeof(u->t.what), "upload %s to %s", digest, u->t.wire);
    struct reg_call call = reg_meta_call("POST", &u->t, HTTP_MAX_ATTEMPTS);
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform_expect(r, &call, &resp, 202, u->t.what);
    if (rc == 0 && reg_upload_location(r, &resp, u->location, sizeof(u->location))) {
        log_error("registry %s: %s: no usable Location for the upload", r->addr.hostport,
                  u->t.what);
        rc = -EIO;
    }
    http_response_free(&resp);
    return rc;
}

/* PATCH of [off, off + len) of fd; the session's URL moves on to the registry's next one. */
static int patch_chunk(struct registry *r, struct session *u, int fd, uint64_t off, uint64_t len,
                       const struct upload_ctl *ctl, bool *transient)
{
    char range[64];
    snprintf(range, sizeof(range), "Content-Range: %" PRIu64 "-%" PRIu64, off, off + len - 1);
    const char *headers[] = {"Content-Type: application/octet-stream", range, NULL};
    struct reg_call patch = {.method = "PATCH",
                             .url = u->location,
                             .scope = u->t.scope,
                             .headers = headers,
                             .cls = HTTP_BLOB,
                             .max_attempts = 1,
                             .upload_fd = fd,
                             .upload_base = off,
                             .upload_len = len,
                             .cancel = ctl->cancel,
                             .upload_progress = ctl->sent};
    struct http_response resp;
    http_response_init(&resp);
    int rc = reg_perform(r, &patch, &resp);
    long s = resp.status;
    *transient = rc == -EIO ? resp.body_error == 0 : s == 429 || s >= 500;
    if (rc == 0 && s != 202) rc = reg_status_errno(s) ? reg_status_errno(s) : -EIO;
    if (rc == 0 && reg_upload_location(r, &resp, u->location, sizeof(u->location))) rc = -EIO;
    if (rc) reg_log_failure(r, u->t.what, &resp, rc);
    http_response_free(&resp);
    return rc;
}

/* GET of the upload: how many bytes the registry has (its Range "0-LAST"). */
static int session_offset(struct registry *r, struct session *u, uint64_t *have)
{
    struct reg_call call = reg_meta_call(NULL, &u->t, HTTP_MAX_ATTEMPTS);
    call.url = u->location;
    struct http_response resp;
    http_response_init(&resp);
    int rc = reg_perform_expect(r, &call, &resp, 204, u->t.what);
    long long last = -2;
    if (rc == 0 && (sscanf(resp.range, "0-%lld", &last) != 1 || last < -1)) {
        log_warn("registry %s: %s: the upload's status has no usable Range (\"%.40s\")",
                 r->addr.hostport, u->t.what, resp.range);
        rc = -EIO;
    }
    if (rc == 0) *have = (uint64_t)(last + 1);
    http_response_free(&resp);
    return rc;
}

static int close_session(struct registry *r, struct session *u)
{
    char url[REG_URL_MAX + DIGEST_STR_LEN + 32];
    int rc = put_url(u->location, u->digest, url, sizeof(url));
    if (rc) return rc;
    struct reg_call put = {.url = url, .upload_fd = -1};
    return finish_upload(r, &u->t, &put);
}

/* A large blob in chunks; a chunk cut off is resumed where the registry says it got to. */
static int upload_chunked(struct registry *r, const char *repo, const char *digest, int fd,
                          uint64_t size, const struct upload_ctl *ctl, bool *transient)
{
    struct session u;
    int rc = open_session(r, repo, digest, &u), failures = 0;
    uint64_t off = 0;
    while (rc == 0 && off < size) {
        uint64_t n = size - off < CHUNK_SIZE ? size - off : CHUNK_SIZE;
        rc = patch_chunk(r, &u, fd, off, n, ctl, transient);
        if (rc == 0) {
            off += n;
            failures = 0;
            continue;
        }
        if (!*transient || ++failures > http_pool_retries(r->http) || cancelled(ctl)) break;
        http_backoff_sleep(r->http, failures - 1);
        uint64_t have;
        if (session_offset(r, &u, &have) || have > size) break; /* rc: the PATCH's error */
        log_warn("registry %s: %s interrupted; resuming at byte %" PRIu64 " of %" PRIu64,
                 r->addr.hostport, u.t.what, have, size);
        off = have;
        rc = 0;
    }
    if (rc == 0) rc = close_session(r, &u);
    return rc;
}

int registry_upload_blob(struct registry *r, const char *repo, const char *digest, int fd,
                         uint64_t size, const struct upload_ctl *ctl)
{
    static const struct upload_ctl none;
    if (!ctl) ctl = &none;
    if (fd < 0) return -EINVAL;
    int attempts = http_pool_retries(r->http) + 1;
    int rc = -EIO;
    for (int i = 0; i < attempts; i++) {
        bool transient = false;
        if (i) http_backoff_sleep(r->http, i - 1);
        rc = size > CHUNKED_MIN ? upload_chunked(r, repo, digest, fd, size, ctl, &transient)
                                : upload_once(r, repo, digest, fd, size, ctl, &transient);
        if (rc == 0 || !transient || cancelled(ctl)) break;
        log_warn("registry %s: upload of %s failed (%s); trying again from the start",
                 r->addr.hostport, digest, strerror(-rc));
    }
    return rc;
}

int registry_upload_blob_stream(struct registry *r, const char *repo, const char *digest,
                                ssize_t (*read)(void *ctx, char *buf, size_t len), void *ctx)
{
    struct target t;
    char url[REG_URL_MAX + DIGEST_STR_LEN + 32];
    int rc = start_upload(r, repo, digest, &t, url, sizeof(url));
    if (rc) return rc;
    struct reg_call put = {
        .url = url, .upload_fd = -1, .upload_stream = read, .upload_stream_ctx = ctx};
    return finish_upload(r, &t, &put);
}
