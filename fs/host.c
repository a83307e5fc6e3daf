#include "fs/host.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/storage.h"
#include "common/log.h"
#include "fs/backend.h"
#include "fs/image_view.h"
#include "fs/stage.h"

struct tag_ref {
    char digest[DIGEST_STR_LEN + 1];
    time_t fetched_at;
};

static void free_cached_list(void *p)
{
    struct cached_list *cl = p;
    strlist_free(&cl->items);
    free(cl);
}

bool host_is_storage_path(const char *address)
{
    return address[0] == '/' || strncmp(address, "./", 2) == 0;
}

/* A remote registry caches into CACHE_DIR/HOST[:PORT], itself a storage root. */
static int open_remote(struct host *h, const char *address, const struct rfs_config *cfg)
{
    struct registry_options opt = {
        .address = address,
        .tls_verify = cfg->tls_verify,
        .cert_dir = cfg->cert_dir,
        .authfile = cfg->authfile,
        .registries_conf = cfg->registries_conf ? cfg->registries_conf
                           : cfg->registry      ? NULL
                                                : "/etc/containers/registries.conf",
    };
    int rc = registry_new(&opt, &h->reg);
    if (rc) return rc;
    registry_set_max_transfers(h->reg, cfg->max_transfers);
    registry_set_limits(h->reg, cfg->timeout, cfg->retries);
    snprintf(h->name, sizeof(h->name), "%s", registry_addr(h->reg)->hostport);
    char root[PATH_MAX], partial[PATH_MAX + 16];
    if (snprintf(root, sizeof(root), "%s/%s", cfg->cache_dir, h->name) >= (int)sizeof(root))
        return -ENAMETOOLONG;
    snprintf(partial, sizeof(partial), "%s/partial", root);
    rc = blobcache_new(root, partial, cfg->cache_dir, &h->blobs);
    if (rc == 0) blobcache_set_transfer(h->blobs, cfg->part_size, cfg->max_transfers);
    return rc;
}

/* A storage tree is its own blob store; blobs the cache holds are hardlinked in. */
static int open_storage_tree(struct host *h, const char *path)
{
    char resolved[PATH_MAX], partial[PATH_MAX + 32];
    if (!realpath(path, resolved)) return -errno;
    struct stat st;
    if (stat(resolved, &st) || !S_ISDIR(st.st_mode)) return -ENOTDIR;
    h->local_root = strdup(resolved);
    if (!h->local_root) return -ENOMEM;
    snprintf(h->name, sizeof(h->name), "%s", resolved);
    snprintf(partial, sizeof(partial), "%s/.registryfs-partial", resolved);
    int rc = blobcache_new(resolved, partial, h->cfg->cache_dir, &h->blobs);
    if (rc == 0) blobcache_set_foreign(h->blobs);
    return rc;
}

int host_new(const char *address, const struct rfs_config *cfg, struct host **out)
{
    struct host *h = calloc(1, sizeof(*h));
    if (!h) return -ENOMEM;
    h->cfg = cfg;
    int rc = host_is_storage_path(address) ? open_storage_tree(h, address)
                                           : open_remote(h, address, cfg);
    if (rc) {
        registry_free(h->reg);
        free(h->local_root);
        free(h);
        return rc;
    }
    pthread_mutex_init(&h->lock, NULL);
    strmap_init(&h->tags);
    strmap_init(&h->tag_refs);
    strmap_init(&h->views);
    strmap_init(&h->stages);
    strmap_init(&h->blob_homes);
    *out = h;
    return 0;
}

void host_drop_stages(struct host *h)
{
    pthread_mutex_lock(&h->lock);
    struct strmap stages = h->stages; /* freed outside the lock: their jobs may take it */
    strmap_init(&h->stages);
    pthread_mutex_unlock(&h->lock);
    strmap_clear(&stages, stage_put_void);
}

void host_free(struct host *h)
{
    if (!h) return;
    host_drop_stages(h);
    blobcache_free(h->blobs);
    if (h->local_root) { /* leave the tree as distribution would: no staging directory */
        char partial[PATH_MAX + 32];
        snprintf(partial, sizeof(partial), "%s/.registryfs-partial", h->local_root);
        rmdir(partial);
    }
    free(h->local_root);
    registry_free(h->reg);
    strlist_free(&h->catalog.items);
    strmap_clear(&h->tags, free_cached_list);
    strmap_clear(&h->tag_refs, free);
    strmap_clear(&h->views, image_view_put_void);
    strmap_clear(&h->stages, stage_put_void);
    strmap_clear(&h->blob_homes, free);
    strlist_free(&h->created_dirs);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static bool is_fresh(const struct host *h, time_t fetched_at)
{
    return time(NULL) - fetched_at < h->cfg->ttl;
}

/*
 * Brings a cached list up to date. The request runs unlocked (two threads may both fetch; the
 * later answer wins, which is harmless). A failure keeps a stale list when there is one.
 */
typedef int (*list_fetch_fn)(struct host *h, const char *arg, struct strlist *out);

static int fetch_catalog(struct host *h, const char *unused, struct strlist *out)
{
    (void)unused;
    return backend_catalog(h, out);
}

static int refresh_list(struct host *h, struct cached_list *cl, list_fetch_fn fetch,
                        const char *arg)
{
    pthread_mutex_lock(&h->lock);
    bool fresh = cl->valid && is_fresh(h, cl->fetched_at);
    int status = cl->status;
    pthread_mutex_unlock(&h->lock);
    if (fresh) return status;

    struct strlist items = STRLIST_INIT;
    int rc = fetch(h, arg, &items);
    strlist_sort_unique(&items);
    pthread_mutex_lock(&h->lock);
    bool keep_stale = rc && rc != -ENOENT && rc != -ENOTSUP && cl->valid && cl->status == 0;
    if (keep_stale) {
        log_warn("%s: refresh of %s failed (%s); serving the cached answer", h->name,
                 arg ? arg : "catalog", strerror(-rc));
        rc = 0;
    } else {
        strlist_free(&cl->items);
        cl->items = items;
        items = (struct strlist)STRLIST_INIT;
        cl->status = rc;
        cl->valid = true;
    }
    /* Transient failures are not remembered, so the next access asks again. */
    if (rc == 0 || rc == -ENOENT || rc == -ENOTSUP || keep_stale)
        cl->fetched_at = time(NULL);
    else
        cl->valid = false;
    pthread_mutex_unlock(&h->lock);
    strlist_free(&items);
    return rc;
}

static int refresh_catalog(struct host *h)
{
    return refresh_list(h, &h->catalog, fetch_catalog, NULL);
}

static struct cached_list *tag_list_of(struct host *h, const char *repo)
{
    pthread_mutex_lock(&h->lock);
    struct cached_list *cl = strmap_get(&h->tags, repo);
    if (!cl && (cl = calloc(1, sizeof(*cl))) && strmap_put(&h->tags, repo, cl, NULL)) {
        free(cl);
        cl = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    return cl;
}

static int refresh_tags(struct host *h, const char *repo, struct cached_list **out)
{
    struct cached_list *cl = tag_list_of(h, repo);
    if (!cl) return -ENOMEM;
    *out = cl;
    return refresh_list(h, cl, backend_tags, repo);
}

/* First index whose item is >= key in a sorted list. */
static size_t lower_bound(const struct strlist *l, const char *key)
{
    size_t lo = 0, hi = l->len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(l->items[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int catalog_flags_locked(const struct host *h, const char *path)
{
    const struct strlist *cat = &h->catalog.items;
    if (!*path) return DIR_IS_NAMESPACE;
    int flags = strlist_contains_sorted(cat, path) ? DIR_IS_REPO : 0;
    char prefix[REF_NAME_MAX + 2];
    snprintf(prefix, sizeof(prefix), "%s/", path);
    size_t i = lower_bound(cat, prefix);
    if (i < cat->len && strncmp(cat->items[i], prefix, strlen(prefix)) == 0)
        flags |= DIR_IS_NAMESPACE;
    return flags;
}

int host_dir_flags(struct host *h, const char *path)
{
    int rc = refresh_catalog(h);
    if (rc == -ENOTSUP) {
        /* No catalog (Docker Hub, GHCR): any valid name may be a namespace; a repository is
         * one whose tag list answers. */
        if (!*path) return DIR_IS_NAMESPACE;
        struct cached_list *cl;
        rc = refresh_tags(h, path, &cl);
        if (rc == 0) return DIR_IS_REPO | DIR_IS_NAMESPACE;
        return rc == -ENOENT ? DIR_IS_NAMESPACE : rc;
    }
    if (rc) return rc;
    pthread_mutex_lock(&h->lock);
    int flags = catalog_flags_locked(h, path);
    pthread_mutex_unlock(&h->lock);
    return flags;
}

int host_dir_children(struct host *h, const char *path, struct strlist *out)
{
    int rc = refresh_catalog(h);
    if (rc == -ENOTSUP) return 0;
    if (rc) return rc;
    char prefix[REF_NAME_MAX + 2];
    size_t plen = *path ? (size_t)snprintf(prefix, sizeof(prefix), "%s/", path) : 0;
    if (!*path) prefix[0] = '\0';
    pthread_mutex_lock(&h->lock);
    const struct strlist *cat = &h->catalog.items;
    for (size_t i = lower_bound(cat, prefix); i < cat->len && rc == 0; i++) {
        const char *item = cat->items[i];
        if (strncmp(item, prefix, plen) != 0) break;
        const char *rest = item + plen;
        rc = strlist_push_n(out, rest, strcspn(rest, "/"));
    }
    pthread_mutex_unlock(&h->lock);
    strlist_sort_unique(out);
    return rc;
}

int host_tags(struct host *h, const char *repo, struct strlist *out)
{
    struct cached_list *cl;
    int rc = refresh_tags(h, repo, &cl);
    if (rc) return rc;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < cl->items.len && rc == 0; i++)
        rc = strlist_push(out, cl->items.items[i]);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int host_has_tag(struct host *h, const char *repo, const char *tag)
{
    struct cached_list *cl;
    int rc = refresh_tags(h, repo, &cl);
    if (rc) return rc;
    pthread_mutex_lock(&h->lock);
    bool found = strlist_contains_sorted(&cl->items, tag);
    pthread_mutex_unlock(&h->lock);
    return found ? 0 : -ENOENT;
}

static int store_manifest(struct host *h, const char *digest, const struct buf *body)
{
    int rc = blobcache_put_small(h->blobs, digest + strlen(DIGEST_PREFIX), body->data, body->len);
    if (rc) log_warn("%s: cannot cache manifest %s: %s", h->name, digest, strerror(-rc));
    return rc;
}

int host_resolve_tag(struct host *h, const char *repo, const char *tag,
                     char digest[DIGEST_STR_LEN + 1])
{
    char key[REF_NAME_MAX + REF_TAG_MAX + 2];
    snprintf(key, sizeof(key), "%s:%s", repo, tag);
    pthread_mutex_lock(&h->lock);
    struct tag_ref *ref = strmap_get(&h->tag_refs, key);
    if (ref && is_fresh(h, ref->fetched_at)) {
        memcpy(digest, ref->digest, DIGEST_STR_LEN + 1);
        pthread_mutex_unlock(&h->lock);
        return 0;
    }
    pthread_mutex_unlock(&h->lock);

    struct buf body;
    buf_init(&body, MANIFEST_MAX_BYTES);
    int rc = backend_get_manifest(h, repo, tag, &body, digest);
    if (rc == 0 && !h->local_root && store_manifest(h, digest, &body) == 0)
        storage_link_tag(blobcache_root(h->blobs), repo, tag, digest + strlen(DIGEST_PREFIX));
    buf_free(&body);

    pthread_mutex_lock(&h->lock);
    ref = strmap_get(&h->tag_refs, key);
    if (rc == 0) {
        if (!ref && (ref = calloc(1, sizeof(*ref))) && strmap_put(&h->tag_refs, key, ref, NULL)) {
            free(ref);
            ref = NULL;
        }
        if (ref) {
            memcpy(ref->digest, digest, DIGEST_STR_LEN + 1);
            ref->fetched_at = time(NULL);
        }
    } else if (ref && rc != -ENOENT && rc != -EACCES) {
        log_warn("%s: cannot refresh %s (%s); serving the cached digest", h->name, key,
                 strerror(-rc));
        memcpy(digest, ref->digest, DIGEST_STR_LEN + 1);
        rc = 0;
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

int host_manifest(struct host *h, const char *repo, const char *digest, struct buf *out)
{
    const char *hex = digest + strlen(DIGEST_PREFIX);
    if (!h->local_root && blobcache_get_small(h->blobs, hex, MANIFEST_MAX_BYTES, out) == 0) {
        storage_link_revision(blobcache_root(h->blobs), repo, hex); /* best effort */
        return 0;
    }
    char actual[DIGEST_STR_LEN + 1];
    buf_reset(out);
    out->limit = MANIFEST_MAX_BYTES;
    int rc = backend_get_manifest(h, repo, digest, out, actual);
    if (rc == 0 && !h->local_root && store_manifest(h, digest, out) == 0)
        storage_link_revision(blobcache_root(h->blobs), repo, hex);
    return rc;
}

int host_created_dir_add(struct host *h, const char *path)
{
    pthread_mutex_lock(&h->lock);
    int rc = strlist_push(&h->created_dirs, path);
    strlist_sort_unique(&h->created_dirs);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

bool host_created_dir_has(struct host *h, const char *path)
{
    pthread_mutex_lock(&h->lock);
    bool found = strlist_contains_sorted(&h->created_dirs, path);
    pthread_mutex_unlock(&h->lock);
    return found;
}

void host_created_dir_remove(struct host *h, const char *path)
{
    pthread_mutex_lock(&h->lock);
    struct strlist *l = &h->created_dirs;
    for (size_t i = 0; i < l->len; i++) {
        if (strcmp(l->items[i], path) == 0) {
            free(l->items[i]);
            memmove(&l->items[i], &l->items[i + 1], (l->len - i - 1) * sizeof(*l->items));
            l->len--;
            break;
        }
    }
    pthread_mutex_unlock(&h->lock);
}

int host_created_children(struct host *h, const char *path, struct strlist *out)
{
    size_t plen = strlen(path);
    int rc = 0;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->created_dirs.len && rc == 0; i++) {
        const char *item = h->created_dirs.items[i];
        if (plen && (strncmp(item, path, plen) != 0 || item[plen] != '/')) continue;
        const char *rest = item + (plen ? plen + 1 : 0);
        rc = strlist_push_n(out, rest, strcspn(rest, "/"));
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

void host_blob_home_set(struct host *h, const char *hex, const char *repo)
{
    char *copy = strdup(repo);
    if (!copy) return;
    void *old = NULL;
    pthread_mutex_lock(&h->lock);
    if (strmap_put(&h->blob_homes, hex, copy, &old)) old = copy;
    pthread_mutex_unlock(&h->lock);
    free(old);
}

bool host_blob_home_get(struct host *h, const char *hex, char repo[REF_NAME_MAX + 1])
{
    pthread_mutex_lock(&h->lock);
    const char *home = strmap_get(&h->blob_homes, hex);
    if (home) snprintf(repo, REF_NAME_MAX + 1, "%s", home);
    pthread_mutex_unlock(&h->lock);
    if (home) return true;
    /* the cache remembers, across mounts, which repositories blobs were read from */
    if (h->local_root || storage_find_layer(blobcache_root(h->blobs), hex, repo, REF_NAME_MAX + 1))
        return false;
    host_blob_home_set(h, hex, repo);
    return true;
}

void host_invalidate_repo(struct host *h, const char *repo, const char *tag)
{
    char key[REF_NAME_MAX + REF_TAG_MAX + 2];
    snprintf(key, sizeof(key), "%s:%s", repo, tag);
    pthread_mutex_lock(&h->lock);
    h->catalog.valid = false;
    struct cached_list *cl = strmap_get(&h->tags, repo);
    if (cl) cl->valid = false;
    free(strmap_remove(&h->tag_refs, key));
    pthread_mutex_unlock(&h->lock);
}
