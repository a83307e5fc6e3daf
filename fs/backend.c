/* Dispatch to the remote registry client, or to a local storage tree. */
#include "fs/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/blobcache.h"
#include "cache/storage.h"
#include "common/log.h"
#include "fs/host.h"
#include "transport/registry_write.h"

static const char *hex_of(const char *digest)
{
    return digest + strlen(DIGEST_PREFIX);
}

int backend_ping(struct host *h)
{
    if (!h->local_root) return registry_ping(h->reg);
    struct stat st;
    return stat(h->local_root, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -ENOENT;
}

int backend_catalog(struct host *h, struct strlist *out)
{
    return h->local_root ? storage_catalog(h->local_root, out) : registry_catalog(h->reg, out);
}

int backend_tags(struct host *h, const char *repo, struct strlist *out)
{
    return h->local_root ? storage_tags(h->local_root, repo, out)
                         : registry_tags(h->reg, repo, out);
}

/* A manifest of the tree: the tag's (or revision's) link, then its data, verified. */
static int local_manifest(struct host *h, const char *repo, const char *ref, struct buf *body,
                          char digest_out[DIGEST_STR_LEN + 1])
{
    char hex[SHA256_HEX_LEN + 1];
    int rc = 0;
    if (ref_valid_digest(ref)) {
        snprintf(hex, sizeof(hex), "%s", hex_of(ref));
        if (!storage_has_revision(h->local_root, repo, hex)) return -ENOENT;
    } else if ((rc = storage_tag_target(h->local_root, repo, ref, hex))) {
        return rc;
    }
    rc = blobcache_get_small(h->blobs, hex, MANIFEST_MAX_BYTES, body);
    if (rc) {
        log_error("%s: %s:%s links to manifest sha256:%s, which is missing or damaged", h->name,
                  repo, ref, hex);
        return -EIO;
    }
    if (digest_out) snprintf(digest_out, DIGEST_STR_LEN + 1, DIGEST_PREFIX "%s", hex);
    return 0;
}

int backend_get_manifest(struct host *h, const char *repo, const char *ref, struct buf *body,
                         char digest_out[DIGEST_STR_LEN + 1])
{
    if (h->local_root) return local_manifest(h, repo, ref, body, digest_out);
    char media_type[MEDIA_TYPE_MAX];
    return registry_get_manifest(h->reg, repo, ref, body, media_type, digest_out);
}

int backend_get_blob(struct host *h, const char *repo, const char *digest, uint64_t offset,
                     uint64_t end, blob_sink_fn sink, void *ctx)
{
    if (!h->local_root) return registry_get_blob(h->reg, repo, digest, offset, end, sink, ctx);
    /* The tree is the blob store: a blob that has to be fetched is not there. */
    log_error("%s: %s names blob %s, which the tree does not hold", h->name, repo, digest);
    return -EIO;
}

int backend_blob_exists(struct host *h, const char *repo, const char *digest, uint64_t *size)
{
    if (!h->local_root) return registry_blob_exists(h->reg, repo, digest, size);
    char path[PATH_MAX];
    struct stat st;
    if (!storage_has_layer(h->local_root, repo, hex_of(digest)) ||
        blobcache_data_path(h->blobs, hex_of(digest), path, sizeof(path)) || stat(path, &st))
        return -ENOENT;
    if (size) *size = (uint64_t)st.st_size;
    return 0;
}

int backend_blob_mount(struct host *h, const char *repo, const char *digest, const char *from)
{
    if (!h->local_root) return registry_blob_mount(h->reg, repo, digest, from);
    if (!blobcache_has(h->blobs, hex_of(digest))) return -ENOENT;
    return storage_link_layer(h->local_root, repo, hex_of(digest));
}

/* Copies fd into the tree's store (when the commit could not adopt the file itself). */
static int local_store_copy(struct host *h, const char *hex, int fd, uint64_t size)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/copy.XXXXXX", blobcache_partial_dir(h->blobs));
    int out = mkstemp(tmp);
    if (out < 0) return -errno;
    char *chunk = malloc(1 << 20);
    int rc = chunk ? 0 : -ENOMEM;
    for (uint64_t off = 0; rc == 0 && off < size;) {
        ssize_t n = pread(fd, chunk, 1 << 20, (off_t)off);
        if (n <= 0 || write(out, chunk, (size_t)n) != n) rc = -EIO;
        off += n > 0 ? (uint64_t)n : 0;
    }
    free(chunk);
    close(out);
    if (rc == 0) rc = blobcache_adopt(h->blobs, tmp, hex);
    if (rc) unlink(tmp);
    return rc;
}

int backend_upload_blob(struct host *h, const char *repo, const char *digest, int fd, uint64_t size,
                        const struct upload_ctl *ctl)
{
    if (!h->local_root) return registry_upload_blob(h->reg, repo, digest, fd, size, ctl);
    int rc =
        blobcache_has(h->blobs, hex_of(digest)) ? 0 : local_store_copy(h, hex_of(digest), fd, size);
    return rc ? rc : storage_link_layer(h->local_root, repo, hex_of(digest));
}

int backend_put_manifest(struct host *h, const char *repo, const char *ref, const char *media_type,
                         const void *bytes, size_t len)
{
    if (!h->local_root) return registry_put_manifest(h->reg, repo, ref, media_type, bytes, len);
    char hex[SHA256_HEX_LEN + 1];
    int rc = sha256_hex_of(bytes, len, hex);
    if (!rc) rc = blobcache_put_small(h->blobs, hex, bytes, len);
    if (!rc) rc = storage_link_revision(h->local_root, repo, hex);
    if (!rc && !ref_valid_digest(ref)) rc = storage_link_tag(h->local_root, repo, ref, hex);
    return rc;
}

int backend_head_manifest(struct host *h, const char *repo, const char *ref,
                          char digest[DIGEST_STR_LEN + 1])
{
    if (!h->local_root) return registry_head_manifest(h->reg, repo, ref, digest);
    char hex[SHA256_HEX_LEN + 1];
    int rc = storage_tag_target(h->local_root, repo, ref, hex);
    if (rc == 0) snprintf(digest, DIGEST_STR_LEN + 1, DIGEST_PREFIX "%s", hex);
    return rc;
}

int backend_delete_manifest(struct host *h, const char *repo, const char *ref)
{
    if (!h->local_root) return registry_delete_manifest(h->reg, repo, ref);
    if (!ref_valid_digest(ref)) return storage_untag(h->local_root, repo, ref);
    return storage_delete_manifest(h->local_root, repo, hex_of(ref));
}
