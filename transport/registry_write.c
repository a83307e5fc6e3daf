/* The write half of the registry client: blob HEAD / mount / upload, manifest PUT / HEAD /
 * DELETE. */
#include "transport/registry_write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "transport/registry_internal.h"

static const char ACCEPT_MANIFESTS[] =
    "Accept: " MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST;

/* Validates the name, builds the scope (pull,push: every call here may lead to a write) and
 * the URL endpoint + /v2/WIRE + suffix. */
int reg_target_of(struct registry *r, const char *repo, const char *suffix, struct target *t)
{
    int rc = reg_wire_repo(r, repo, t->wire);
    if (rc) return rc;
    snprintf(t->scope, sizeof(t->scope), "repository:%s:pull,push", t->wire);
    return reg_url(r, t->url, sizeof(t->url), "/v2/%s%s", t->wire, suffix);
}

/* /v2/WIRE/KIND/REF, described as "VERB KIND WIRE:REF" in logs. */
static int object_target(struct registry *r, const char *repo, const char *kind, const char *ref,
                         const char *verb, struct target *t)
{
    char suffix[REF_TAG_MAX + DIGEST_STR_LEN + 16];
    snprintf(suffix, sizeof(suffix), "/%s/%s", kind, ref);
    int rc = reg_target_of(r, repo, suffix, t);
    if (rc == 0) snprintf(t->what, sizeof(t->what), "%s %s %s:%s", verb, kind, t->wire, ref);
    return rc;
}

/* A metadata request of the target, with no body unless the caller adds one. */
struct reg_call reg_meta_call(const char *method, const struct target *t, int attempts)
{
    struct reg_call call = {.method = method,
                            .url = t->url,
                            .scope = t->scope,
                            .cls = HTTP_META,
                            .max_attempts = attempts,
                            .upload_fd = -1};
    return call;
}

/* One call, its errno and (on failure) one log line. expect: the success status. */
int reg_perform_expect(struct registry *r, struct reg_call *call, struct http_response *resp,
                       long expect, const char *what)
{
    int rc = reg_perform(r, call, resp);
    if (rc == 0 && resp->status != expect)
        rc = reg_status_errno(resp->status) ? reg_status_errno(resp->status) : -EIO;
    if (rc) reg_log_failure(r, what, resp, rc);
    return rc;
}

int registry_blob_exists(struct registry *r, const char *repo, const char *digest, uint64_t *size)
{
    struct target t;
    if (!ref_valid_digest(digest)) return -EINVAL;
    int rc = object_target(r, repo, "blobs", digest, "HEAD", &t);
    if (rc) return rc;
    struct reg_call call = reg_meta_call("HEAD", &t, HTTP_MAX_ATTEMPTS);
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform_expect(r, &call, &resp, 200, t.what);
    if (rc == 0 && size) *size = resp.content_length >= 0 ? (uint64_t)resp.content_length : 0;
    http_response_free(&resp);
    return rc;
}

/* The absolute upload URL the registry gave in Location (possibly relative). */
int reg_upload_location(struct registry *r, const struct http_response *resp, char *out,
                        size_t outlen)
{
    if (!resp->location[0]) return -EIO;
    char base[REG_URL_MAX];
    reg_endpoint(r, base, sizeof(base));
    return url_resolve(base, resp->location, out, outlen) ? -EIO : 0;
}

/* DELETE of an upload session, best effort. */
static void cancel_upload(struct registry *r, const char *scope, const char *location)
{
    struct reg_call call = {.method = "DELETE",
                            .url = location,
                            .scope = scope,
                            .cls = HTTP_META,
                            .max_attempts = 1,
                            .upload_fd = -1};
    struct http_response resp;
    http_response_init(&resp);
    int rc = reg_perform(r, &call, &resp);
    (void)rc; /* best effort: the registry expires stale uploads anyway */
    http_response_free(&resp);
}

int registry_blob_mount(struct registry *r, const char *repo, const char *digest, const char *from)
{
    struct target t;
    char from_wire[WIRE_REPO_MAX + 1], suffix[DIGEST_STR_LEN + WIRE_REPO_MAX + 64];
    char what[2 * WIRE_REPO_MAX + 100];
    if (!ref_valid_digest(digest)) return -EINVAL;
    int rc = reg_wire_repo(r, from, from_wire);
    if (rc) return rc;
    snprintf(suffix, sizeof(suffix), "/blobs/uploads/?mount=%s&from=%s", digest, from_wire);
    if ((rc = reg_target_of(r, repo, suffix, &t))) return rc;
    snprintf(what, sizeof(what), "mount %s from %s into %s", digest, from_wire, t.wire);
    char from_scope[WIRE_REPO_MAX + 32]; /* a mount reads the source: pull on it too */
    snprintf(from_scope, sizeof(from_scope), "repository:%s:pull", from_wire);
    struct reg_call call = {.method = "POST",
                            .url = t.url,
                            .scope = t.scope,
                            .scope2 = from_scope,
                            .cls = HTTP_META,
                            .max_attempts =
                                HTTP_MAX_ATTEMPTS, /* a 202 or 201 either way: safe to repeat */
                            .upload_fd = -1};
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform_expect(r, &call, &resp, 201, what);
    if (resp.status == 202) { /* "upload it yourself": not a failure */
        char location[REG_URL_MAX];
        if (reg_upload_location(r, &resp, location, sizeof(location)) == 0)
            cancel_upload(r, t.scope, location);
        rc = -ENOENT;
    }
    http_response_free(&resp);
    return rc;
}

int registry_put_manifest(struct registry *r, const char *repo, const char *ref,
                          const char *media_type, const void *bytes, size_t len)
{
    struct target t;
    char content_type[MEDIA_TYPE_MAX + 32];
    if (!(ref_valid_tag(ref) || ref_valid_digest(ref)) || !media_type || !*media_type ||
        strlen(media_type) >= MEDIA_TYPE_MAX || strpbrk(media_type, "\r\n"))
        return -EINVAL;
    int rc = object_target(r, repo, "manifests", ref, "PUT", &t);
    if (rc) return rc;
    snprintf(content_type, sizeof(content_type), "Content-Type: %s", media_type);
    const char *headers[] = {content_type, NULL};
    struct reg_call call = reg_meta_call("PUT", &t, HTTP_MAX_ATTEMPTS);
    call.headers = headers;
    call.upload_data = bytes;
    call.upload_len = len;
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform_expect(r, &call, &resp, 201, t.what);
    http_response_free(&resp);
    return rc;
}

int registry_head_manifest(struct registry *r, const char *repo, const char *ref,
                           char digest[DIGEST_STR_LEN + 1])
{
    struct target t;
    if (!(ref_valid_tag(ref) || ref_valid_digest(ref))) return -EINVAL;
    int rc = object_target(r, repo, "manifests", ref, "HEAD", &t);
    if (rc) return rc;
    const char *headers[] = {ACCEPT_MANIFESTS, NULL};
    struct reg_call call = reg_meta_call("HEAD", &t, HTTP_MAX_ATTEMPTS);
    call.headers = headers;
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform_expect(r, &call, &resp, 200, t.what);
    if (rc == 0 && !ref_valid_digest(resp.docker_content_digest)) {
        log_error("registry %s: %s: no valid Docker-Content-Digest", r->addr.hostport, t.what);
        rc = -EIO;
    }
    if (rc == 0)
        memcpy(digest, resp.docker_content_digest, DIGEST_STR_LEN + 1); /* validated length */
    http_response_free(&resp);
    return rc;
}

int registry_delete_manifest(struct registry *r, const char *repo, const char *ref)
{
    struct target t;
    if (!(ref_valid_tag(ref) || ref_valid_digest(ref))) return -EINVAL;
    int rc = object_target(r, repo, "manifests", ref, "DELETE", &t);
    if (rc) return rc;
    struct reg_call call = reg_meta_call("DELETE", &t, 1);
    struct http_response resp;
    http_response_init(&resp);
    rc = reg_perform(r, &call, &resp);
    if (rc == 0 && resp.status != 202 && resp.status != 200) {
        char code[64];
        reg_error_code(&resp, code, sizeof(code));
        /* distribution 2.x answers a tag reference with 400 DIGEST_INVALID */
        if (resp.status == 405 || strcmp(code, "UNSUPPORTED") == 0 ||
            (resp.status == 400 && !ref_valid_digest(ref)))
            rc = -ENOTSUP;
        else
            rc = reg_status_errno(resp.status) ? reg_status_errno(resp.status) : -EIO;
    }
    if (rc) reg_log_failure(r, t.what, &resp, rc);
    http_response_free(&resp);
    return rc;
}
