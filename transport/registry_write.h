/*
 * The write half of the registry client: blob existence, cross-repository mounts, uploads,
 * manifest PUT and DELETE. Same conventions as registry.h: negative errno, one log line per
 * failure, never a credential in a log. Write calls ask for pull,push scope on the repository
 * (and pull on the source of a mount).
 */
#ifndef REGISTRYFS_REGISTRY_WRITE_H
#define REGISTRYFS_REGISTRY_WRITE_H

#include <stdint.h>
#include <sys/types.h>

#include "transport/registry.h"

/* HEAD /v2/REPO/blobs/DIGEST: 0 when the repository has it (*size set when size != NULL),
 * -ENOENT when it does not. */
int registry_blob_exists(struct registry *r, const char *repo, const char *digest, uint64_t *size)
    __attribute__((warn_unused_result));

/* POST /v2/REPO/blobs/uploads/?mount=DIGEST&from=FROM: 0 when mounted (201). -ENOENT when the
 * registry wants a normal upload instead (202; the upload it opened is cancelled). */
int registry_blob_mount(struct registry *r, const char *repo, const char *digest, const char *from)
    __attribute__((warn_unused_result));

/*
 * Uploads `size` bytes read from fd (from offset 0, with pread: the fd's position is not used)
 * as blob DIGEST: POST /v2/REPO/blobs/uploads/, then PUT LOCATION?digest=DIGEST streaming the
 * body (Content-Length: size). 0 when the registry answered 201. The registry verifies the
 * digest; a mismatch is -EIO. Never holds the blob in memory. One attempt per call. The body
 * holds one of the registry's upload slots while it is sent. ctl (may be NULL) follows and
 * steers it from another thread.
 */
struct upload_ctl {
    const int *cancel; /* may be NULL: the upload stops with -ECANCELED soon after *cancel
                          becomes non-zero */
    uint64_t *sent;    /* may be NULL: how far the body got (stored atomically; it moves back
                          when an attempt starts over) */
};
int registry_upload_blob(struct registry *r, const char *repo, const char *digest, int fd,
                         uint64_t size, const struct upload_ctl *ctl)
    __attribute__((warn_unused_result));

/* Like registry_upload_blob, with a body of unknown length produced while it is sent
 * (chunked): read(ctx, buf, len) returns bytes, 0 at the end, -errno to abort. One attempt,
 * no replay: on failure the caller uploads again from a file. */
int registry_upload_blob_stream(struct registry *r, const char *repo, const char *digest,
                                ssize_t (*read)(void *ctx, char *buf, size_t len), void *ctx)
    __attribute__((warn_unused_result));

/* PUT /v2/REPO/manifests/REF (tag or digest) with Content-Type: media_type and the exact bytes.
 * digest_out (may be NULL) gets the Docker-Content-Digest the registry answered. */
int registry_put_manifest(struct registry *r, const char *repo, const char *ref,
                          const char *media_type, const void *bytes, size_t len)
    __attribute__((warn_unused_result));

/* HEAD /v2/REPO/manifests/REF: the digest (Docker-Content-Digest) of what REF points at. */
int registry_head_manifest(struct registry *r, const char *repo, const char *ref,
                           char digest[DIGEST_STR_LEN + 1]) __attribute__((warn_unused_result));

/* DELETE /v2/REPO/manifests/REF (a digest; or a tag, which newer registries untag). -ENOTSUP
 * when the registry refuses (405, UNSUPPORTED, or 400 for a tag reference). */
int registry_delete_manifest(struct registry *r, const char *repo, const char *ref)
    __attribute__((warn_unused_result));

#endif
