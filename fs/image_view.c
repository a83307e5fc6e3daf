#include "fs/image_view.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/host.h"
#include "transport/manifest.h"

static time_t mtime_of_digest(const char *hex)
{
    /* 2000-01-01 plus up to ~20 years: plausible dates, never in the future. */
    unsigned long v = strtoul(
        (char[9]){hex[0], hex[1], hex[2], hex[3], hex[4], hex[5], hex[6], hex[7], '\0'}, NULL, 16);
    return (time_t)(946684800ul + v % (20ul * 365 * 86400));
}

void image_view_hold(struct image_view *v)
{
    __atomic_add_fetch(&v->refs, 1, __ATOMIC_ACQ_REL);
}

void image_view_put(struct image_view *v)
{
    if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    buf_free(&v->manifest);
    free(v->entries);
    free(v);
}

void image_view_put_void(void *v)
{
    image_view_put(v);
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const struct view_entry *)a)->name, ((const struct view_entry *)b)->name);
}

const struct view_entry *image_view_find(const struct image_view *v, const char *name)
{
    struct view_entry key;
    if (snprintf(key.name, sizeof(key.name), "%s", name) >= (int)sizeof(key.name)) return NULL;
    return bsearch(&key, v->entries, v->n_entries, sizeof(key), compare_entries);
}

static int add_entry(struct image_view *v, size_t *cap, const char *name, enum view_entry_kind kind,
                     const char *hex, uint64_t size)
{
    for (size_t i = 0; i < v->n_entries; i++)
        if (strcmp(v->entries[i].name, name) == 0)
            return 0; /* a blob shared by several instances is one file */
    if (v->n_entries == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        struct view_entry *e = realloc(v->entries, n * sizeof(*e));
        if (!e) return -ENOMEM;
        v->entries = e;
        *cap = n;
    }
    struct view_entry *e = &v->entries[v->n_entries++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->kind = kind;
    if (hex) memcpy(e->hex, hex, SHA256_HEX_LEN + 1);
    e->size = size;
    e->mtime = hex ? mtime_of_digest(hex) : v->mtime;
    return 0;
}

static const char *hex_of(const char *digest)
{
    return digest + strlen(DIGEST_PREFIX);
}

static int add_image_blobs(struct image_view *v, size_t *cap, const struct manifest *m)
{
    int rc = add_entry(v, cap, hex_of(m->config.digest), VE_BLOB, hex_of(m->config.digest),
                       m->config.size);
    for (size_t i = 0; i < m->n_layers && rc == 0; i++)
        rc = add_entry(v, cap, hex_of(m->layers[i].digest), VE_BLOB, hex_of(m->layers[i].digest),
                       m->layers[i].size);
    return rc;
}

static int load_parsed(struct host *h, const char *repo, const char *digest, struct buf *bytes,
                       struct manifest *m)
{
    int rc = host_manifest(h, repo, digest, bytes);
    if (rc) return rc;
    char err[256];
    if (manifest_parse(bytes->data, bytes->len, NULL, m, err, sizeof(err))) {
        log_error("%s/%s@%s: malformed manifest: %s", h->name, repo, digest, err);
        return -EIO;
    }
    return 0;
}

/* Each instance of an index as HEX.manifest.json, and all instances' blobs beside them. */
static int add_index_instances(struct host *h, const char *repo, struct image_view *v, size_t *cap,
                               const struct manifest *index)
{
    int rc = 0;
    for (size_t i = 0; i < index->n_manifests && rc == 0; i++) {
        const struct descriptor *d = &index->manifests[i];
        struct buf bytes;
        struct manifest m;
        buf_init(&bytes, MANIFEST_MAX_BYTES);
        rc = load_parsed(h, repo, d->digest, &bytes, &m);
        if (rc == 0) {
            if (m.kind == MANIFEST_INDEX) {
                log_error("%s/%s@%s: nested index is not supported", h->name, repo, d->digest);
                rc = -EIO;
            } else {
                char name[VIEW_NAME_MAX];
                snprintf(name, sizeof(name), "%s.manifest.json", hex_of(d->digest));
                rc = add_entry(v, cap, name, VE_INSTANCE, hex_of(d->digest), bytes.len);
                if (rc == 0) rc = add_image_blobs(v, cap, &m);
            }
            manifest_free(&m);
        }
        buf_free(&bytes);
    }
    return rc;
}

static int build_view(struct host *h, const char *repo, const char *digest, struct buf *bytes,
                      const struct manifest *m, struct image_view **out)
{
    struct image_view *v = calloc(1, sizeof(*v));
    if (!v) return -ENOMEM;
    v->refs = 1;
    memcpy(v->hex, hex_of(digest), SHA256_HEX_LEN + 1);
    v->manifest = *bytes;
    buf_init(bytes, MANIFEST_MAX_BYTES);
    v->mtime = mtime_of_digest(v->hex);
    size_t cap = 0;
    int rc = add_entry(v, &cap, "version", VE_VERSION, NULL, strlen(DIR_VERSION_TEXT));
    if (!rc) rc = add_entry(v, &cap, "manifest.json", VE_MANIFEST, NULL, v->manifest.len);
    if (!rc)
        rc = m->kind == MANIFEST_INDEX ? add_index_instances(h, repo, v, &cap, m)
                                       : add_image_blobs(v, &cap, m);
    if (rc) {
        image_view_put(v);
        return rc;
    }
    qsort(v->entries, v->n_entries, sizeof(*v->entries), compare_entries);
    for (size_t i = 0; i < v->n_entries; i++) /* where to mount these blobs from later */
        if (v->entries[i].kind == VE_BLOB) host_blob_home_set(h, v->entries[i].hex, repo);
    *out = v;
    return 0;
}

/* With -o platform, an index shows only the matching instance, as skopeo copy without --all. */
static int pick_platform(struct host *h, const char *repo, char digest[DIGEST_STR_LEN + 1],
                         struct buf *bytes, struct manifest *m)
{
    const struct rfs_config *cfg = h->cfg;
    if (!cfg->platform_set || m->kind != MANIFEST_INDEX) return 0;
    const struct descriptor *d = manifest_select_platform(m, cfg->os, cfg->arch, cfg->variant);
    if (!d) {
        log_error("%s/%s@%s: no %s/%s%s%s instance in the index", h->name, repo, digest, cfg->os,
                  cfg->arch, *cfg->variant ? "/" : "", cfg->variant);
        return -ENOENT;
    }
    char chosen[DIGEST_STR_LEN + 1];
    memcpy(chosen, d->digest, sizeof(chosen));
    manifest_free(m);
    memset(m, 0, sizeof(*m));
    memcpy(digest, chosen, DIGEST_STR_LEN + 1);
    return load_parsed(h, repo, digest, bytes, m);
}

static struct image_view *cached_view(struct host *h, const char *hex)
{
    return host_view_get(h, hex);
}

/* What a view costs the host's metadata budget. */
static size_t view_bytes(const struct image_view *v)
{
    return sizeof(*v) + v->manifest.cap + v->n_entries * sizeof(*v->entries);
}

static struct image_view *remember_view(struct host *h, struct image_view *v)
{
    return host_view_keep(h, v, view_bytes(v));
}

int image_view_get(struct host *h, const char *repo, const char *ref, struct image_view **out)
{
    char digest[DIGEST_STR_LEN + 1];
    int rc = 0;
    if (strncmp(ref, DIGEST_PREFIX, strlen(DIGEST_PREFIX)) == 0)
        snprintf(digest, sizeof(digest), "%s", ref);
    else
        rc = host_resolve_tag(h, repo, ref, digest);
    if (rc) return rc;
    if (!h->cfg->platform_set && (*out = cached_view(h, hex_of(digest)))) return 0;

    struct buf bytes;
    struct manifest m;
    buf_init(&bytes, MANIFEST_MAX_BYTES);
    rc = load_parsed(h, repo, digest, &bytes, &m);
    if (rc) {
        buf_free(&bytes);
        return rc;
    }
    rc = pick_platform(h, repo, digest, &bytes, &m);
    if (rc == 0 && (*out = cached_view(h, hex_of(digest)))) {
        manifest_free(&m);
        buf_free(&bytes);
        return 0;
    }
    struct image_view *v = NULL;
    if (rc == 0) rc = build_view(h, repo, digest, &bytes, &m, &v);
    manifest_free(&m);
    buf_free(&bytes);
    if (rc) return rc;
    *out = remember_view(h, v);
    return 0;
}
