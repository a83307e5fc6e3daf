/*
 * The skopeo dir: view of one manifest: the file set `skopeo copy [--all] docker://… dir:` writes.
 * Views are immutable (they are keyed by the digest of the manifest they show) and refcounted.
 */
#ifndef REGISTRYFS_IMAGE_VIEW_H
#define REGISTRYFS_IMAGE_VIEW_H

#include <stdint.h>
#include <time.h>

#include "common/buf.h"
#include "common/sha256.h"

struct host;

#define DIR_VERSION_TEXT "Directory Transport Version: 1.1\n"
#define VIEW_NAME_MAX (SHA256_HEX_LEN + 16)

enum view_entry_kind { VE_VERSION, VE_MANIFEST, VE_INSTANCE, VE_BLOB };

struct view_entry {
    char name[VIEW_NAME_MAX];
    enum view_entry_kind kind;
    char hex[SHA256_HEX_LEN + 1]; /* blob or instance manifest digest */
    uint64_t size;
    time_t mtime;
};

struct image_view {
    int refs;
    char hex[SHA256_HEX_LEN + 1]; /* digest of the bytes shown as manifest.json */
    struct buf manifest;
    time_t mtime;
    struct view_entry *entries; /* sorted by name */
    size_t n_entries;
};

/* ref is a tag or "sha256:<hex>"; -o platform picks an index's instance. */
int image_view_get(struct host *h, const char *repo, const char *ref, struct image_view **out);
const struct view_entry *image_view_find(const struct image_view *v, const char *name);
/* References: taken and dropped only through these (atomic, any thread). */
void image_view_hold(struct image_view *v);
void image_view_put(struct image_view *v);
void image_view_put_void(void *v);

#endif
