#include "fs/oci_view.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/host.h"
#include "fs/resolve.h"
#include "transport/manifest.h"

#define OCI_REF_NAME "org.opencontainers.image.ref.name"

int oci_view_claim(struct node *n)
{
    size_t len = strlen(n->ref), suffix = strlen(OCI_VIEW_SUFFIX);
    if (len <= suffix || len - suffix > REF_TAG_MAX ||
        strcmp(n->ref + len - suffix, OCI_VIEW_SUFFIX) != 0)
        return -ENOENT;
    char tag[REF_TAG_MAX + 1];
    snprintf(tag, sizeof(tag), "%.*s", (int)(len - suffix), n->ref);
    if (!ref_valid_tag(tag)) return -ENOENT;
    int rc = host_has_tag(n->host, n->repo, tag);
    if (rc) return rc;
    snprintf(n->ref, sizeof(n->ref), "%s", tag);
    n->oci = OCI_ROOT;
    return 0;
}

static bool is_hex(const char *s, size_t len)
{
    if (len != SHA256_HEX_LEN) return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* The image view's entry holding the bytes of blob hex: the tag's manifest, an index
 * instance's manifest, a config or a layer. */
static const struct view_entry *blob_entry(const struct image_view *v, const char *hex)
{
    if (strcmp(hex, v->hex) == 0) return image_view_find(v, "manifest.json");
    const struct view_entry *e = image_view_find(v, hex);
    if (e && e->kind == VE_BLOB) return e;
    char name[VIEW_NAME_MAX];
    snprintf(name, sizeof(name), "%s.manifest.json", hex);
    e = image_view_find(v, name);
    return e && e->kind == VE_INSTANCE ? e : NULL;
}

static bool named(const char *item, size_t len, const char *name)
{
    return len == strlen(name) && memcmp(item, name, len) == 0;
}

static int set_part(struct node *n, enum node_kind kind, enum oci_part part)
{
    n->kind = kind;
    n->oci = part;
    return 0;
}

int oci_view_resolve(struct node *n, const char *const *item, const size_t *len, size_t count)
{
    int rc = image_view_get(n->host, n->repo, n->ref, &n->view);
    if (rc) return rc;
    if (count == 0) return set_part(n, NODE_OCI_DIR, OCI_ROOT);
    if (count == 1 && named(item[0], len[0], "oci-layout"))
        return set_part(n, NODE_OCI_FILE, OCI_LAYOUT);
    if (count == 1 && named(item[0], len[0], "index.json"))
        return set_part(n, NODE_OCI_FILE, OCI_INDEX);
    if (!named(item[0], len[0], "blobs")) return -ENOENT;
    if (count == 1) return set_part(n, NODE_OCI_DIR, OCI_BLOBS);
    if (!named(item[1], len[1], "sha256")) return -ENOENT;
    if (count == 2) return set_part(n, NODE_OCI_DIR, OCI_SHA256);
    if (count > 3 || !is_hex(item[2], len[2])) return -ENOENT;
    char hex[SHA256_HEX_LEN + 1];
    snprintf(hex, sizeof(hex), "%.*s", (int)len[2], item[2]);
    n->entry = blob_entry(n->view, hex);
    if (!n->entry) return -ENOENT;
    return set_part(n, NODE_OCI_FILE, OCI_BLOB);
}

/* index.json: one descriptor, the tag's manifest as the registry serves it, named TAG. */
static cJSON *index_object(const struct node *n, const char *media_type)
{
    char digest[DIGEST_STR_LEN + 1];
    snprintf(digest, sizeof(digest), DIGEST_PREFIX "%s", n->view->hex);
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "manifests");
    cJSON *d = cJSON_CreateObject();
    cJSON *notes = cJSON_AddObjectToObject(d, "annotations");
    bool ok = root && list && d && notes && cJSON_AddNumberToObject(root, "schemaVersion", 2) &&
              cJSON_AddStringToObject(root, "mediaType", MT_OCI_INDEX) &&
              cJSON_AddStringToObject(d, "mediaType", media_type) &&
              cJSON_AddStringToObject(d, "digest", digest) &&
              cJSON_AddNumberToObject(d, "size", (double)n->view->manifest.len) &&
              cJSON_AddStringToObject(notes, OCI_REF_NAME, n->ref);
    if (ok && cJSON_AddItemToArray(list, d)) return root;
    cJSON_Delete(d);
    cJSON_Delete(root);
    return NULL;
}

static int index_json(const struct node *n, struct buf *out)
{
    struct manifest m;
    char err[256];
    const struct image_view *v = n->view;
    if (manifest_parse(v->manifest.data, v->manifest.len, NULL, &m, err, sizeof(err))) {
        log_error("%s/%s:%s: malformed manifest: %s", n->host->name, n->repo, n->ref, err);
        return -EIO;
    }
    cJSON *root = index_object(n, m.media_type);
    manifest_free(&m);
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    int rc = text ? buf_set(out, text, strlen(text)) : -ENOMEM;
    free(text);
    return rc;
}

int oci_view_bytes(const struct node *n, struct buf *out)
{
    if (n->oci == OCI_LAYOUT) return buf_set(out, OCI_LAYOUT_TEXT, strlen(OCI_LAYOUT_TEXT));
    if (n->oci == OCI_INDEX) return index_json(n, out);
    return -EISDIR;
}

int oci_view_file_info(const struct node *n, uint64_t *size, time_t *mtime)
{
    if (n->oci == OCI_BLOB) {
        *size = n->entry->size;
        *mtime = n->entry->mtime;
        return 0;
    }
    struct buf bytes;
    buf_init(&bytes, MANIFEST_MAX_BYTES);
    int rc = oci_view_bytes(n, &bytes);
    *size = bytes.len;
    *mtime = n->view->mtime;
    buf_free(&bytes);
    return rc;
}

static int list_blobs(const struct image_view *v, oci_list_fn fn, void *ctx)
{
    struct oci_child c = {.name = v->hex, .size = v->manifest.len, .mtime = v->mtime};
    int rc = fn(ctx, &c);
    for (size_t i = 0; i < v->n_entries && rc == 0; i++) {
        const struct view_entry *e = &v->entries[i];
        if (e->kind != VE_BLOB && e->kind != VE_INSTANCE) continue;
        c = (struct oci_child){.name = e->hex, .size = e->size, .mtime = e->mtime};
        rc = fn(ctx, &c);
    }
    return rc;
}

int oci_view_list(const struct node *n, oci_list_fn fn, void *ctx)
{
    if (n->oci == OCI_SHA256) return list_blobs(n->view, fn, ctx);
    struct oci_child c = {.is_dir = true, .mtime = n->view->mtime};
    if (n->oci == OCI_BLOBS) {
        c.name = "sha256";
        return fn(ctx, &c);
    }
    if (n->oci != OCI_ROOT) return -ENOTDIR;
    c.name = "blobs";
    int rc = fn(ctx, &c);
    struct node file = *n;
    const struct {
        const char *name;
        enum oci_part part;
    } files[] = {{"index.json", OCI_INDEX}, {"oci-layout", OCI_LAYOUT}};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        file.oci = files[i].part;
        c = (struct oci_child){.name = files[i].name};
        rc = oci_view_file_info(&file, &c.size, &c.mtime);
        if (rc == 0) rc = fn(ctx, &c);
    }
    return rc;
}
