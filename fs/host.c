#include "fs/host.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/storage.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "fs/backend.h"
#include "fs/host_meta.h"
#include "fs/image_view.h"
#include "fs/link_from.h"
#include "fs/stage.h"

static bool is_storage_path(const char *address)
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
    struct stat st;
    h->cache_dir_made = stat(root, &st) != 0;
    rc = blobcache_new(root, partial, cfg->cache_dir, &h->blobs);
    if (rc == 0)
        blobcache_set_transfer(h->blobs, cfg->part_size, cfg->max_transfers, cfg->timeout * 1000L);
    if (rc == 0) blobcache_set_budget(h->blobs, cfg->budget); /* one bound for all hosts */
    return rc;
}

/* A storage tree is its own blob store; blobs the cache holds are hardlinked in. */
static int open_storage_tree(struct host *h, const char *path)
{
    char resolved[PATH_MAX], partial[PATH_MAX + 32];
    /* a writable mount of a package that does not exist yet makes it, as rsync makes its
     * destination; a read-only one would only show an empty tree */
    if (h->cfg->push && access(path, F_OK) != 0 && errno == ENOENT) {
        int rc = mkdir_p(path, 0755);
        if (rc) return rc;
        log_info("%s: created an empty storage tree", path);
    }
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

/* Removes the directories blobcache_new made under CACHE_DIR/HOST, deepest first. rmdir
 * leaves any that hold something: only an empty skeleton goes. */
static void remove_cache_skeleton(const char *cache_dir, const char *name)
{
    static const char *const made[] = {"/partial",
                                       "/docker/registry/v2/blobs/sha256",
                                       "/docker/registry/v2/blobs",
                                       "/docker/registry/v2",
                                       "/docker/registry",
                                       "/docker",
                                       ""};
    char path[2 * PATH_MAX + 64];
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s%s", cache_dir, name, made[i]);
        rmdir(path);
    }
}

int host_new(const char *address, const struct rfs_config *cfg, struct host **out)
{
    struct host *h = calloc(1, sizeof(*h));
    if (!h) return -ENOMEM;
    h->cfg = cfg;
    int rc =
        is_storage_path(address) ? open_storage_tree(h, address) : open_remote(h, address, cfg);
    if (rc == 0) rc = link_from_apply(h->blobs, cfg->link_from);
    if (rc) {
        blobcache_free(h->blobs);
        if (h->cache_dir_made) remove_cache_skeleton(cfg->cache_dir, h->name);
        registry_free(h->reg);
        free(h->local_root);
        free(h);
        return rc;
    }
    pthread_mutex_init(&h->stages_lock, NULL);
    pthread_mutex_init(&h->dirs_lock, NULL);
    meta_init(h);
    strmap_init(&h->stages);
    strmap_init(&h->blob_homes);
    *out = h;
    return 0;
}

void host_drop_stages(struct host *h)
{
    pthread_mutex_lock(&h->stages_lock);
    struct strmap stages = h->stages; /* freed outside the lock: their jobs may take it */
    strmap_init(&h->stages);
    pthread_mutex_unlock(&h->stages_lock);
    strmap_clear(&stages, stage_put_void);
}

void host_free(struct host *h)
{
    if (!h) return;
    host_drop_stages(h);
    meta_destroy(h); /* waits for background refreshes, which use the registry */
    blobcache_free(h->blobs);
    if (h->local_root) { /* leave the tree as distribution would: no staging directory */
        char partial[PATH_MAX + 32];
        snprintf(partial, sizeof(partial), "%s/.registryfs-partial", h->local_root);
        rmdir(partial);
    }
    free(h->local_root);
    registry_free(h->reg);
    strmap_clear(&h->stages, stage_put_void);
    strmap_clear(&h->blob_homes, free);
    strlist_free(&h->created_dirs);
    pthread_mutex_destroy(&h->stages_lock);
    pthread_mutex_destroy(&h->dirs_lock);
    free(h);
}

void host_discard(struct host *h)
{
    if (!h) return;
    bool made = h->cache_dir_made;
    const struct rfs_config *cfg = h->cfg;
    char name[PATH_MAX];
    snprintf(name, sizeof(name), "%s", h->name);
    host_free(h); /* first: its cache's working directory goes with it */
    if (made) remove_cache_skeleton(cfg->cache_dir, name);
}

/* ---- lookups: each reads its answer under h->meta.lock (see fs/host_meta.h) ---- */

struct flags_ctx {
    const char *path;
    int flags;
};

/* DIR_IS_REPO and DIR_IS_NAMESPACE of c->path from the catalog. */
static int use_catalog_flags(const struct meta *m, void *ctx)
{
    struct flags_ctx *c = ctx;
    if (m->status) return m->status;
    const struct packlist *cat = &m->list;
    c->flags = packlist_contains(cat, c->path) ? DIR_IS_REPO : 0;
    char prefix[REF_NAME_MAX + 2];
    snprintf(prefix, sizeof(prefix), "%s/", c->path);
    size_t i = packlist_lower_bound(cat, prefix);
    if (i < cat->len && strncmp(packlist_at(cat, i), prefix, strlen(prefix)) == 0)
        c->flags |= DIR_IS_NAMESPACE;
    return 0;
}

static int use_status(const struct meta *m, void *ctx)
{
    (void)ctx;
    return m->status;
}

int host_dir_flags(struct host *h, const char *path)
{
    if (!*path) return DIR_IS_NAMESPACE;
    struct meta_req r;
    struct flags_ctx c = {.path = path};
    meta_req_catalog(&r);
    int rc = meta_with(h, &r, use_catalog_flags, &c);
    if (rc == -ENOTSUP) {
        /* No catalog (Docker Hub, GHCR): any valid name may be a namespace; a repository is
         * one whose tag list answers. */
        meta_req_tags(&r, path);
        rc = meta_with(h, &r, use_status, NULL);
        if (rc == 0) return DIR_IS_REPO | DIR_IS_NAMESPACE | DIR_NO_CATALOG;
        return rc == -ENOENT ? DIR_IS_NAMESPACE | DIR_NO_CATALOG : rc;
    }
    return rc ? rc : c.flags;
}

struct children_ctx {
    const char *prefix;
    struct strlist *out;
};

static int use_children(const struct meta *m, void *ctx)
{
    struct children_ctx *c = ctx;
    if (m->status) return m->status;
    size_t plen = strlen(c->prefix);
    int rc = 0;
    for (size_t i = packlist_lower_bound(&m->list, c->prefix); i < m->list.len && rc == 0; i++) {
        const char *item = packlist_at(&m->list, i);
        if (strncmp(item, c->prefix, plen) != 0) break;
        const char *rest = item + plen;
        rc = strlist_push_n(c->out, rest, strcspn(rest, "/"));
    }
    return rc;
}

int host_dir_children(struct host *h, const char *path, struct strlist *out)
{
    char prefix[REF_NAME_MAX + 2] = "";
    if (*path) snprintf(prefix, sizeof(prefix), "%s/", path);
    struct children_ctx c = {.prefix = prefix, .out = out};
    struct meta_req r;
    meta_req_catalog(&r);
    int rc = meta_with(h, &r, use_children, &c);
    if (rc == -ENOTSUP) return 0;
    strlist_sort_unique(out);
    return rc;
}

static int use_copy(const struct meta *m, void *ctx)
{
    if (m->status) return m->status;
    if (m->list.len >= META_BIG_LISTING) meta_trim();
    int rc = 0;
    for (size_t i = 0; i < m->list.len && rc == 0; i++)
        rc = strlist_push(ctx, packlist_at(&m->list, i));
    return rc;
}

int host_tags(struct host *h, const char *repo, struct strlist *out)
{
    struct meta_req r;
    meta_req_tags(&r, repo);
    return meta_with(h, &r, use_copy, out);
}

static int use_contains(const struct meta *m, void *ctx)
{
    if (m->status) return m->status;
    return packlist_contains(&m->list, ctx) ? 0 : -ENOENT;
}

int host_has_tag(struct host *h, const char *repo, const char *tag)
{
    struct meta_req r;
    meta_req_tags(&r, repo);
    return meta_with(h, &r, use_contains, (void *)tag);
}

static int use_digest(const struct meta *m, void *ctx)
{
    memcpy(ctx, m->digest, DIGEST_STR_LEN + 1);
    return 0;
}

int host_resolve_tag(struct host *h, const char *repo, const char *tag,
                     char digest[DIGEST_STR_LEN + 1])
{
    struct meta_req r;
    meta_req_tag(&r, repo, tag);
    return meta_with(h, &r, use_digest, digest);
}

/* The link files are written under a pin: the manifest is not evicted in between (a link to
 * an evicted blob would dangle). */
static int manifest_pinned(struct host *h, const char *repo, const char *digest, struct buf *out);

int host_manifest(struct host *h, const char *repo, const char *digest, struct buf *out)
{
    const char *hex = digest + strlen(DIGEST_PREFIX);
    blobcache_pin(h->blobs, hex);
    int rc = manifest_pinned(h, repo, digest, out);
    blobcache_unpin(h->blobs, hex);
    return rc;
}

static int manifest_pinned(struct host *h, const char *repo, const char *digest, struct buf *out)
{
    const char *hex = digest + strlen(DIGEST_PREFIX);
    if (!h->local_root && blobcache_get_small(h->blobs, hex, MANIFEST_MAX_BYTES, out) == 0) {
        storage_link_revision(blobcache_root(h->blobs), repo, hex); /* best effort */
        return 0;
    }
    bool probe;
    int rc = meta_gate(h, &probe); /* within a back-off window: the remembered failure */
    if (rc) return rc;
    char actual[DIGEST_STR_LEN + 1];
    buf_reset(out);
    out->limit = MANIFEST_MAX_BYTES;
    rc = backend_get_manifest(h, repo, digest, out, actual);
    meta_record(h, digest, rc, probe);
    if (rc == 0 && !h->local_root && host_store_manifest(h, digest, out) == 0)
        storage_link_revision(blobcache_root(h->blobs), repo, hex);
    return rc;
}

int host_created_dir_add(struct host *h, const char *path)
{
    pthread_mutex_lock(&h->dirs_lock);
    int rc = strlist_push(&h->created_dirs, path);
    strlist_sort_unique(&h->created_dirs);
    pthread_mutex_unlock(&h->dirs_lock);
    return rc;
}

bool host_created_dir_has(struct host *h, const char *path)
{
    pthread_mutex_lock(&h->dirs_lock);
    bool found = strlist_contains_sorted(&h->created_dirs, path);
    pthread_mutex_unlock(&h->dirs_lock);
    return found;
}

void host_created_dir_remove(struct host *h, const char *path)
{
    pthread_mutex_lock(&h->dirs_lock);
    struct strlist *l = &h->created_dirs;
    for (size_t i = 0; i < l->len; i++) {
        if (strcmp(l->items[i], path) == 0) {
            free(l->items[i]);
            memmove(&l->items[i], &l->items[i + 1], (l->len - i - 1) * sizeof(*l->items));
            l->len--;
            break;
        }
    }
    pthread_mutex_unlock(&h->dirs_lock);
}

int host_created_children(struct host *h, const char *path, struct strlist *out)
{
    size_t plen = strlen(path);
    int rc = 0;
    pthread_mutex_lock(&h->dirs_lock);
    for (size_t i = 0; i < h->created_dirs.len && rc == 0; i++) {
        const char *item = h->created_dirs.items[i];
        if (plen && (strncmp(item, path, plen) != 0 || item[plen] != '/')) continue;
        const char *rest = item + (plen ? plen + 1 : 0);
        rc = strlist_push_n(out, rest, strcspn(rest, "/"));
    }
    pthread_mutex_unlock(&h->dirs_lock);
    return rc;
}

void host_blob_home_set(struct host *h, const char *hex, const char *repo)
{
    char *copy = strdup(repo);
    if (!copy) return;
    void *old = NULL;
    pthread_mutex_lock(&h->dirs_lock);
    if (strmap_set(&h->blob_homes, hex, copy, &old)) old = copy;
    pthread_mutex_unlock(&h->dirs_lock);
    free(old);
}

bool host_blob_home_get(struct host *h, const char *hex, char repo[REF_NAME_MAX + 1])
{
    pthread_mutex_lock(&h->dirs_lock);
    const char *home = strmap_get(&h->blob_homes, hex);
    if (home) snprintf(repo, REF_NAME_MAX + 1, "%s", home);
    pthread_mutex_unlock(&h->dirs_lock);
    if (home) return true;
    /* the cache remembers, across mounts, which repositories blobs were read from */
    if (h->local_root || storage_find_layer(blobcache_root(h->blobs), hex, repo, REF_NAME_MAX + 1))
        return false;
    host_blob_home_set(h, hex, repo);
    return true;
}

void host_invalidate_repo(struct host *h, const char *repo, const char *tag)
{
    struct meta_req r;
    meta_req_catalog(&r);
    meta_forget(h, r.key);
    meta_req_tags(&r, repo);
    meta_forget(h, r.key);
    meta_req_tag(&r, repo, tag);
    meta_forget(h, r.key);
}

struct image_view *host_view_get(struct host *h, const char *hex)
{
    return meta_view_get(h, hex);
}

struct image_view *host_view_keep(struct host *h, struct image_view *v, size_t bytes)
{
    return meta_view_keep(h, v, bytes);
}
