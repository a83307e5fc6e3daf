/* Removing the link files that name blobs about to leave the store (cache/storage.h). */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cache/storage.h"

#define REPOS "docker/registry/v2/repositories"

/* Every DIR/HEX subdirectory (a link's directory) for which gone(HEX) is true goes. */
static void prune_digest_dirs(const char *dir, bool (*gone)(const char *hex, void *ctx), void *ctx)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[PATH_MAX];
        if (strlen(de->d_name) != SHA256_HEX_LEN || !gone(de->d_name, ctx) ||
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
            continue;
        storage_remove_tree(path);
    }
    closedir(d);
}

/* A tag whose current manifest goes is removed whole (distribution has no tag without a
 * current link); otherwise only its history entries of such manifests. */
static void prune_tags(const char *root, const char *repo, const char *tags_dir,
                       bool (*gone)(const char *hex, void *ctx), void *ctx)
{
    DIR *d = opendir(tags_dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[PATH_MAX], hex[SHA256_HEX_LEN + 1];
        if (de->d_name[0] == '.' ||
            snprintf(path, sizeof(path), "%s/%s", tags_dir, de->d_name) >= (int)sizeof(path))
            continue;
        if (storage_tag_target(root, repo, de->d_name, hex) == 0 && gone(hex, ctx)) {
            storage_remove_tree(path);
            continue;
        }
        char index[PATH_MAX + 16];
        snprintf(index, sizeof(index), "%s/index/sha256", path);
        prune_digest_dirs(index, gone, ctx);
    }
    closedir(d);
}

void storage_prune(const char *root, bool (*gone)(const char *hex, void *ctx), void *ctx)
{
    struct strlist repos = STRLIST_INIT;
    storage_catalog(root, &repos);
    for (size_t i = 0; i < repos.len; i++) {
        char base[PATH_MAX], dir[PATH_MAX + 32];
        if (snprintf(base, sizeof(base), "%s/" REPOS "/%s", root, repos.items[i]) >=
            (int)sizeof(base))
            continue;
        snprintf(dir, sizeof(dir), "%s/_layers/sha256", base);
        prune_digest_dirs(dir, gone, ctx);
        snprintf(dir, sizeof(dir), "%s/_manifests/tags", base);
        prune_tags(root, repos.items[i], dir, gone, ctx);
        snprintf(dir, sizeof(dir), "%s/_manifests/revisions/sha256", base);
        prune_digest_dirs(dir, gone, ctx);
    }
    strlist_free(&repos);
}
