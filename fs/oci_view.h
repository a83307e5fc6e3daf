/*
 * The OCI image-layout view of a tag: REPO:TAG.oci/ (and REPO/TAG.oci/, a path without a colon
 * for skopeo's oci: transport), holding oci-layout, index.json (naming TAG) and
 * blobs/sha256/HEX for the registry's manifest bytes, instance manifests, configs and layers.
 * Built on the tag's image view; resolvable, never listed, read-only.
 */
#ifndef REGISTRYFS_OCI_VIEW_H
#define REGISTRYFS_OCI_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buf.h"

struct node;

#define OCI_VIEW_SUFFIX ".oci"
#define OCI_LAYOUT_TEXT "{\"imageLayoutVersion\":\"1.0.0\"}"

/* Where in the layout a node is (struct node's oci field); OCI_NONE outside any. */
enum oci_part { OCI_NONE, OCI_ROOT, OCI_BLOBS, OCI_SHA256, OCI_LAYOUT, OCI_INDEX, OCI_BLOB };

/* n->ref is TAG.oci and no real tag of that name exists (a real one wins): when TAG is a tag
 * of n->repo, n->ref becomes TAG and n->oci OCI_ROOT. -ENOENT otherwise. */
int oci_view_claim(struct node *n);
/* The path below the view root (count components): fills n's kind, oci part and entry,
 * loading its image view. */
int oci_view_resolve(struct node *n, const char *const *item, const size_t *len, size_t count);
/* The bytes of oci-layout or index.json (OCI_LAYOUT, OCI_INDEX). */
int oci_view_bytes(const struct node *n, struct buf *out);
/* Size and modification time of a file of the view. */
int oci_view_file_info(const struct node *n, uint64_t *size, time_t *mtime);

struct oci_child {
    const char *name;
    bool is_dir;
    uint64_t size;
    time_t mtime;
};
typedef int (*oci_list_fn)(void *ctx, const struct oci_child *c);
/* Calls fn for each entry of a directory of the view (OCI_ROOT, OCI_BLOBS, OCI_SHA256). */
int oci_view_list(const struct node *n, oci_list_fn fn, void *ctx);

#endif
