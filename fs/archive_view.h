/*
 * The docker-archive view of a tag: REPO:TAG.tar beside REPO, a `docker save` file as
 * `skopeo copy docker://… docker-archive:…` writes one (manifest.json with Config, RepoTags and
 * Layers; the config as HEX.json; each layer as HEX.tar), described from the manifest alone
 * (fs/tar_layout.h) and read from the blob cache. Members: manifest.json, the config, then the
 * layers (the same set as skopeo's; metadata first so a reader finds it without passing the
 * layers). Layers are the registry's blobs as they are (compressed, named by their digest):
 * docker load, podman load and containers/image decompress them; skopeo's own writer stores
 * them decompressed, which would need every layer read to know the size. The legacy
 * per-layer directories and `repositories` file are left out (manifest.json supersedes them).
 * Views are immutable and refcounted.
 */
#ifndef REGISTRYFS_ARCHIVE_VIEW_H
#define REGISTRYFS_ARCHIVE_VIEW_H

#include <stdbool.h>
#include <time.h>

#include "fs/tar_layout.h"

struct host;
struct image_view;

#define ARCHIVE_SUFFIX ".tar"

struct archive_view {
    int refs;
    struct image_view *image; /* the single-platform image shown (held) */
    struct tar_layout layout;
    time_t mtime;
};

/* Whether ref (a tag) names an archive view: TAG.tar, with TAG a valid tag that is then
 * copied to tag. */
bool archive_view_name(const char *ref, char *tag, size_t tagsz);
/* The view of repo:tag of h (-o platform picks an index's instance). -ENOENT (with a log line)
 * for an index when no platform is chosen, or for an image that is no container image. */
int archive_view_get(struct host *h, const char *repo, const char *tag, struct archive_view **out);
/* The manifest.json of the archive: [{"Config", "RepoTags": [repo_tag], "Layers"}]; a string
 * to free. For fs/ and unit tests. */
char *archive_manifest_json(const char *config_hex, const char *const *layer_hexes, size_t n,
                            const char *repo_tag);
void archive_view_hold(struct archive_view *a);
void archive_view_put(struct archive_view *a);

#endif
