/* What deleting a tag means to a registry (docs/write.md "Overwrite, retag, delete"). */
#include "fs/tag_policy.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/strlist.h"
#include "fs/backend.h"

/* Deletes a published tag. The registry deletes manifests by digest, which removes every tag
 * pointing at it; when another tag shares the digest we refuse rather than take it along. */
int tag_delete(struct host *h, const char *repo, const char *tag)
{
    char digest[DIGEST_STR_LEN + 1], other[DIGEST_STR_LEN + 1];
    int rc = backend_delete_manifest(h, repo, tag); /* registries that can untag */
    if (rc != -ENOTSUP) {
        if (rc == 0) log_info("%s/%s:%s: tag deleted", h->name, repo, tag);
        host_invalidate_repo(h, repo, tag);
        return rc;
    }
    rc = backend_head_manifest(h, repo, tag, digest);
    if (rc) return rc;
    struct strlist tags = STRLIST_INIT;
    host_invalidate_repo(h, repo, tag);
    rc = host_tags(h, repo, &tags);
    for (size_t i = 0; i < tags.len && rc == 0; i++) {
        if (strcmp(tags.items[i], tag) == 0) continue;
        if (backend_head_manifest(h, repo, tags.items[i], other) == 0 &&
            strcmp(other, digest) == 0) {
            log_error("%s/%s:%s: not deleted: tag %s points at the same manifest %s, and the "
                      "registry can only delete both",
                      h->name, repo, tag, tags.items[i], digest);
            rc = -EBUSY;
        }
    }
    strlist_free(&tags);
    if (rc == 0) rc = backend_delete_manifest(h, repo, digest);
    if (rc == -ENOTSUP) {
        log_error("%s/%s:%s: the registry refuses deletion", h->name, repo, tag);
        rc = -EPERM;
    }
    if (rc == 0) log_info("%s/%s:%s: deleted (%s)", h->name, repo, tag, digest);
    host_invalidate_repo(h, repo, tag);
    return rc;
}

void tag_drop_retagged(struct host *h, const char *repo, const char *tag, const char *new_repo,
                       const char *new_tag)
{
    if (backend_delete_manifest(h, repo, tag) == 0) {
        host_invalidate_repo(h, repo, tag);
        return;
    }
    log_info("%s/%s:%s: retagged as %s:%s; the old tag stays (this registry deletes manifests by "
             "digest only, which would take the new tag too)",
             h->name, repo, tag, new_repo, new_tag);
}
