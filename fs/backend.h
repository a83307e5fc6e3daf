/*
 * What the filesystem asks of a registry, whichever kind it is: a remote one (transport/, over
 * HTTP) or a local distribution storage tree mounted as a registry (cache/storage.h), where the
 * blob store is the tree itself. Same conventions as transport/registry.h: negative errno.
 */
#ifndef REGISTRYFS_BACKEND_H
#define REGISTRYFS_BACKEND_H

#include <stdint.h>

#include "common/buf.h"
#include "common/strlist.h"
#include "transport/registry.h"

struct host;
struct upload_ctl;

int backend_ping(struct host *h);
int backend_catalog(struct host *h, struct strlist *out);
int backend_tags(struct host *h, const char *repo, struct strlist *out);
int backend_get_manifest(struct host *h, const char *repo, const char *ref, struct buf *body,
                         char digest_out[DIGEST_STR_LEN + 1]);
/* Bytes [offset, end) of a blob (end 0: to its end), as registry_get_blob. */
int backend_get_blob(struct host *h, const char *repo, const char *digest, uint64_t offset,
                     uint64_t end, blob_sink_fn sink, void *ctx);
/* 0 when repo has the blob; *size (may be NULL) gets its size. */
int backend_blob_exists(struct host *h, const char *repo, const char *digest, uint64_t *size);
int backend_blob_mount(struct host *h, const char *repo, const char *digest, const char *from);
/* ctl (may be NULL): a remote upload's cancel flag and byte counter (registry_write.h). */
int backend_upload_blob(struct host *h, const char *repo, const char *digest, int fd, uint64_t size,
                        const struct upload_ctl *ctl);
int backend_put_manifest(struct host *h, const char *repo, const char *ref, const char *media_type,
                         const void *bytes, size_t len);
int backend_head_manifest(struct host *h, const char *repo, const char *ref,
                          char digest[DIGEST_STR_LEN + 1]);
/* ref: a digest (removes every tag on it), or a tag (-ENOTSUP where the registry cannot). */
int backend_delete_manifest(struct host *h, const char *repo, const char *ref);

#endif
