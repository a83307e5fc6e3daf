/* Content: manifests (small, whole, hashed here) and blobs (streamed to a sink). */
#include "transport/registry_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/sha256.h"

static const char ACCEPT_MANIFESTS[] =
    "Accept: " MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST;

/* ---- manifests ---- */

static int manifest_body(void *ctx, const struct http_response *resp, const void *data, size_t len)
{
    struct buf *body = ctx;
    (void)resp;
    if (len > MANIFEST_MAX_BYTES - body->len) /* body->len never exceeds the maximum */
        return -EFBIG;
    return buf_append(body, data, len);
}

static void manifest_reset(void *ctx)
{
    buf_reset(ctx);
}

/* "type/subtype; charset=x" → "type/subtype"; "" when it does not fit. */
static void strip_media_type(const char *content_type, char out[MEDIA_TYPE_MAX])
{
    const char *p = content_type;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strcspn(p, "; \t");
    if (len >= MEDIA_TYPE_MAX) len = 0;
    memcpy(out, p, len);
    out[len] = '\0';
}

static int verify_digest(struct registry *r, const char *ref, const struct buf *body,
                         char digest[DIGEST_STR_LEN + 1])
{
    char hex[SHA256_HEX_LEN + 1];
    int rc = sha256_hex_of(body->data ? body->data : "", body->len, hex);
    if (rc) return rc < 0 ? rc : -EIO;
    snprintf(digest, DIGEST_STR_LEN + 1, DIGEST_PREFIX "%s", hex);
    if (ref_valid_digest(ref) && strcmp(ref, digest) != 0) {
        log_error("registry %s: manifest %s: content hashes to %s", r->addr.hostport, ref, digest);
        return -EIO;
    }
    return 0;
}

static int manifest_from(struct registry *r, const char *repo, const char *ref, struct buf *body,
                         char media_type[MEDIA_TYPE_MAX], char digest_out[DIGEST_STR_LEN + 1])
{
    char wire[WIRE_REPO_MAX + 1], url[REG_URL_MAX], scope[WIRE_REPO_MAX + 32], what[400];
    if (!r || !ref || !body || !(ref_valid_tag(ref) || ref_valid_digest(ref))) return -EINVAL;
    int rc = reg_wire_repo(r, repo, wire);
    if (!rc) rc = reg_url(r, url, sizeof(url), "/v2/%s/manifests/%s", wire, ref);
    if (rc) return rc;
    snprintf(scope, sizeof(scope), "repository:%s:pull", wire);
    const char *headers[] = {ACCEPT_MANIFESTS, NULL};
    struct reg_call call = {.url = url,
                            .scope = scope,
                            .headers = headers,
                            .cls = HTTP_META,
                            .max_attempts = HTTP_MAX_ATTEMPTS,
                            .on_body = manifest_body,
                            .ctx = body,
                            .on_attempt = manifest_reset};
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform(r, &call, &resp);
    if (!rc && resp.status != 200)
        rc = reg_status_errno(resp.status) ? reg_status_errno(resp.status) : -EIO;
    char digest[DIGEST_STR_LEN + 1];
    if (!rc) rc = verify_digest(r, ref, body, digest);
    if (rc == -EFBIG) {
        /* EFBIG ("File too large") would tell the user something about their own file */
        log_warn("registry %s: manifest %s:%s: manifest larger than %u bytes", r->addr.hostport,
                 wire, ref, MANIFEST_MAX_BYTES);
        rc = -EIO;
        buf_reset(body);
    } else if (rc) {
        snprintf(what, sizeof(what), "manifest %s:%s", wire, ref);
        if (rc != -EIO || resp.status != 200) /* a digest mismatch is logged already */
            reg_log_failure(r, what, &resp, rc);
        buf_reset(body);
    } else {
        if (media_type) strip_media_type(resp.content_type, media_type);
        if (digest_out) memcpy(digest_out, digest, sizeof(digest));
    }
    http_response_free(&resp);
    return rc;
}

/* ---- blobs ---- */

struct blob_rx {
    uint64_t offset;
    uint64_t end; /* 0: to the end of the blob */
    uint64_t delivered;
    uint64_t skip; /* leading bytes of a 200 to a ranged request, not ours to deliver */
    bool started;
    bool sink_failed;
    bool bad_range; /* a 206 that does not start where we asked */
    blob_sink_fn sink;
    void *ctx;
};

/* The first byte position of "bytes START-END/TOTAL". */
static int content_range_start(const char *value, uint64_t *start)
{
    if (strncasecmp(value, "bytes", 5) != 0) return -EIO;
    const char *p = value + 5;
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9') return -EIO;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (*end != '-') return -EIO;
    *start = v;
    return 0;
}

/* Decides, at the first body byte, what the response means for our offset. */
static int blob_start(struct blob_rx *b, const struct http_response *resp)
{
    if (resp->status == 200) {
        if (b->end) return -ERANGE; /* parts would each fetch the whole blob */
        b->skip = b->offset;        /* the server ignored Range: it sends from byte 0 */
        return 0;
    }
    uint64_t start;
    if (resp->status == 206 && content_range_start(resp->content_range, &start) == 0 &&
        start == b->offset)
        return 0;
    b->bad_range = true;
    return -EIO;
}

static int blob_body(void *ctx, const struct http_response *resp, const void *data, size_t len)
{
    struct blob_rx *b = ctx;
    const char *p = data;
    if (!b->started) {
        int rc = blob_start(b, resp);
        if (rc) return rc;
        b->started = true;
    }
    if (b->skip) {
        size_t n = b->skip < len ? (size_t)b->skip : len;
        b->skip -= n;
        p += n;
        len -= n;
    }
    if (!len) return 0;
    if (b->end && len > b->end - b->offset - b->delivered) return -EIO; /* more than asked */
    b->delivered += len;
    int rc = b->sink(p, len, b->ctx);
    if (rc) {
        b->sink_failed = true;
        return rc < 0 ? rc : -EIO;
    }
    return 0;
}

/* Only a 401 is ever retried (with a token), and its body never reached the sink. */
static void blob_reset(void *ctx)
{
    struct blob_rx *b = ctx;
    b->started = false;
    b->skip = 0;
    b->delivered = 0;
}

/* The outcome of a finished blob transfer. */
static int blob_result(const struct blob_rx *b, const struct http_response *resp, int rc)
{
    if (rc) return rc;
    if (resp->status == 200 || resp->status == 206) /* a 200 shorter than our offset, or a
                                                       part shorter than asked for */
        return b->skip || (b->end && b->delivered != b->end - b->offset) ? -EIO : 0;
    rc = reg_status_errno(resp->status);
    return rc ? rc : -EIO;
}

static int blob_from(struct registry *r, const char *repo, const char *digest, uint64_t offset,
                     uint64_t end, blob_sink_fn sink, void *ctx)
{
    char wire[WIRE_REPO_MAX + 1], url[REG_URL_MAX], scope[WIRE_REPO_MAX + 32], what[400];
    char range[64];
    if (!r || !sink || !ref_valid_digest(digest) || offset > BLOB_MAX_SIZE ||
        (end && (end <= offset || end > BLOB_MAX_SIZE)))
        return -EINVAL;
    int rc = reg_wire_repo(r, repo, wire);
    if (!rc) rc = reg_url(r, url, sizeof(url), "/v2/%s/blobs/%s", wire, digest);
    if (rc) return rc;
    snprintf(scope, sizeof(scope), "repository:%s:pull", wire);
    if (end)
        snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, offset, end - 1);
    else
        snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-", offset);
    const char *headers[] = {offset || end ? range : NULL, NULL};
    struct blob_rx b = {.offset = offset, .end = end, .sink = sink, .ctx = ctx};
    struct reg_call call = {.url = url,
                            .scope = scope,
                            .headers = headers,
                            .cls = HTTP_BLOB,
                            .max_attempts = 1,
                            .on_body = blob_body,
                            .ctx = &b,
                            .on_attempt = blob_reset};
    struct http_response resp;
    http_response_init(&resp);
    rc = blob_result(&b, &resp, reg_perform(r, &call, &resp));
    snprintf(what, sizeof(what), "blob %s@%s from byte %" PRIu64, wire, digest, offset);
    if (end) snprintf(what + strlen(what), sizeof(what) - strlen(what), " to %" PRIu64, end);
    if (rc == -ERANGE)
        log_debug("registry %s: %s: ranges not supported (HTTP 200)", r->addr.hostport, what);
    else if (b.bad_range)
        log_warn("registry %s: %s: HTTP %ld with Content-Range \"%.60s\"", r->addr.hostport, what,
                 resp.status, resp.content_range);
    else if (rc && resp.status == 200 && resp.curl_code == CURLE_OK && b.skip)
        log_warn("registry %s: %s: Range ignored and the whole body is shorter than that",
                 r->addr.hostport, what);
    else if (rc && !b.sink_failed) /* the sink's owner reports its own errors */
        reg_log_failure(r, what, &resp, rc);
    http_response_free(&resp);
    return rc;
}

/* ---- through the mirrors (registries.conf), then the registry itself ---- */

int registry_get_manifest(struct registry *r, const char *repo, const char *ref, struct buf *body,
                          char media_type[MEDIA_TYPE_MAX], char digest_out[DIGEST_STR_LEN + 1])
{
    struct reg_source src[REGISTRIES_CONF_MAX_MIRRORS];
    if (!r || !ref || !body) return -EINVAL;
    size_t n = reg_mirror_sources(
        r, repo, ref_valid_digest(ref) ? REG_READ_MANIFEST_DIGEST : REG_READ_MANIFEST_TAG, src,
        REGISTRIES_CONF_MAX_MIRRORS);
    for (size_t i = 0; i < n; i++) {
        int rc = manifest_from(src[i].reg, src[i].repo, ref, body, media_type, digest_out);
        if (rc == 0) return 0;
        log_debug("registry %s: manifest %s:%s not from mirror %s (%s)", r->addr.hostport, repo,
                  ref, src[i].reg->addr.hostport, strerror(-rc));
    }
    return manifest_from(r, repo, ref, body, media_type, digest_out);
}

struct counting_sink {
    blob_sink_fn sink;
    void *ctx;
    uint64_t bytes;
};

static int count_bytes(const void *data, size_t len, void *ctx)
{
    struct counting_sink *c = ctx;
    c->bytes += len;
    return c->sink(data, len, c->ctx);
}

int registry_get_blob(struct registry *r, const char *repo, const char *digest, uint64_t offset,
                      uint64_t end, blob_sink_fn sink, void *ctx)
{
    struct reg_source src[REGISTRIES_CONF_MAX_MIRRORS];
    if (!r || !sink) return -EINVAL;
    size_t n = reg_mirror_sources(r, repo, REG_READ_BLOB, src, REGISTRIES_CONF_MAX_MIRRORS);
    for (size_t i = 0; i < n; i++) {
        struct counting_sink c = {sink, ctx, 0};
        int rc = blob_from(src[i].reg, src[i].repo, digest, offset, end, count_bytes, &c);
        /* once bytes went to the sink, the caller resumes from where they stopped */
        if (rc == 0 || c.bytes) return rc;
        log_debug("registry %s: blob %s not from mirror %s (%s)", r->addr.hostport, digest,
                  src[i].reg->addr.hostport, strerror(-rc));
    }
    return blob_from(r, repo, digest, offset, end, sink, ctx);
}

void registry_set_max_transfers(struct registry *r, int n)
{
    if (r) http_pool_set_max_transfers(r->http, n);
}

void registry_set_limits(struct registry *r, int timeout_s, int retries)
{
    if (r) http_pool_set_limits(r->http, timeout_s, retries);
}
