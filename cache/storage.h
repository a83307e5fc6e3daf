/*
 * The repository side of a distribution storage root (ROOT/docker/registry/v2/repositories):
 * the link files distribution writes for tags, manifest revisions and layers. Together with the
 * blob store (blobcache.h) this makes a tree `docker-registry serve` can serve, and lets a
 * storage tree be mounted as a registry of its own.
 *
 *   repositories/REPO/_manifests/tags/TAG/current/link          "sha256:HEX" (the tag)
 *   repositories/REPO/_manifests/tags/TAG/index/sha256/HEX/link "sha256:HEX" (its history)
 *   repositories/REPO/_manifests/revisions/sha256/HEX/link      "sha256:HEX" (every manifest)
 *   repositories/REPO/_layers/sha256/HEX/link                   "sha256:HEX" (every blob)
 *
 * Names and digests are validated by the caller (fs/) before they get here.
 */
#ifndef REGISTRYFS_STORAGE_H
#define REGISTRYFS_STORAGE_H

#include <stdbool.h>

#include "common/sha256.h"
#include "common/strlist.h"

/* Repositories: directories below repositories/ that hold _manifests. Sorted. */
int storage_catalog(const char *root, struct strlist *out);
/* Tags with a current/link. -ENOENT when the repository does not exist. */
int storage_tags(const char *root, const char *repo, struct strlist *out);
/* The hex a tag points at. -ENOENT when there is no such tag, -EIO for a damaged link. */
int storage_tag_target(const char *root, const char *repo, const char *tag,
                       char hex[SHA256_HEX_LEN + 1]);
bool storage_has_revision(const char *root, const char *repo, const char *hex);
bool storage_has_layer(const char *root, const char *repo, const char *hex);
/* A repository whose _layers link names hex (first in name order), for cross-repository
 * mounts of blobs read in an earlier mount. -ENOENT when none. */
int storage_find_layer(const char *root, const char *hex, char *repo, size_t repolen);

int storage_link_revision(const char *root, const char *repo, const char *hex);
int storage_link_layer(const char *root, const char *repo, const char *hex);
/* current/link and index/sha256/HEX/link. */
int storage_link_tag(const char *root, const char *repo, const char *tag, const char *hex);
/* Removes one tag (its current link and history). */
int storage_untag(const char *root, const char *repo, const char *tag);
/* Removes every tag of repo pointing at hex, and the revision. */
int storage_delete_manifest(const char *root, const char *repo, const char *hex);

/* Removes, in every repository, the link files naming a blob for which gone(hex) is true:
 * its _layers link, its revision link, the history entries of tags, and whole tags whose
 * current link names it (cache/storage_prune.c). For blobs being evicted: no link is left
 * pointing at a blob that is not there. */
void storage_prune(const char *root, bool (*gone)(const char *hex, void *ctx), void *ctx);
/* rm -r of a directory of the link tree. */
void storage_remove_tree(const char *path);

#endif
