/*
 * One registry as the filesystem sees it: its transport, its blob cache, and the TTL caches of
 * its catalog, tag lists, tag→digest answers and image views. Within the TTL nothing here makes
 * a request. After it, one refresh per item runs at a time (others get the stale answer); a
 * failed refresh starts a back-off window for the whole registry during which stale answers are
 * served at once and uncached ones fail at once, so cached images stay readable at local speed
 * while the registry is away or stalled. The caches are bounded in bytes (LRU eviction).
 */
#ifndef REGISTRYFS_HOST_H
#define REGISTRYFS_HOST_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "cache/blobcache.h"
#include "common/strlist.h"
#include "common/strmap.h"
#include "fs/config.h"
#include "transport/registry.h"

#define DIR_IS_REPO 1
#define DIR_IS_NAMESPACE 2
#define DIR_NO_CATALOG 8 /* the registry lists no catalog: the flags are guesses from tag lists */

/* Metadata kept per registry, whatever the registry lists: tag lists, catalog, tag answers
 * and views together, least recently used evicted first. */
#define HOST_META_BUDGET (16u << 20)

struct meta; /* one cached answer (fs/host.c) */
struct image_view;

/* One registry's metadata in memory (fs/host_meta.c owns it). lock guards every field; it is
 * a leaf: no other lock is taken while it is held, and no request runs under it (refreshes
 * fetch unlocked, then store under it). */
struct host_meta_cache {
    pthread_mutex_t lock;
    pthread_cond_t refreshed; /* with lock: a refresh ended (waiters look again) */
    struct strmap items;      /* key → struct meta *: catalog, tag lists, tags, views */
    struct meta *lru_newest;  /* the same entries, most recently used first */
    struct meta *lru_oldest;  /* evicted first */
    size_t bytes;             /* their total charge, kept <= HOST_META_BUDGET */
    struct strmap inflight;   /* keys with a refresh under way → (void *)1 */
    int jobs;                 /* background refreshes running; host_free waits for 0 */
    /* back-off after a failed refresh (the registry is down or stalls) */
    int64_t retry_at_ms; /* CLOCK_MONOTONIC: no request for metadata before this */
    int backoff_s;       /* the current window: 0 while healthy, then 5, 10, ... 60 */
    int outage_rc;       /* the remembered failure, answered for uncached items meanwhile */
    bool probing;        /* the one attempt after a window is under way */
    int slow;            /* refreshes still running after a caller stopped waiting for them */
};

struct host {
    char name[PATH_MAX]; /* HOST[:PORT] (the directory name), or the storage tree path */
    const struct rfs_config *cfg;
    struct registry *reg; /* a remote registry, or */
    char *local_root;     /* a storage tree mounted as a registry (its own blob store) */
    struct blobcache *blobs;
    struct readahead *readahead; /* the mount's (fs/readahead.h), set by its owner */
    struct progress *progress;   /* the mount's transfer table (fs/progress.h), likewise */
    bool cache_dir_made;         /* open_remote created CACHE_DIR/HOST: host_discard removes it */

    struct host_meta_cache meta; /* catalog, tag lists, tags, views: fs/host_meta.c */

    /* -o push. Each lock below guards the fields after it up to the next one; both are leaves
     * (nothing is called with them held) and never held together. */
    pthread_mutex_t stages_lock; /* fs/stage.c: the images being written */
    struct strmap stages;        /* "repo:tag" → struct stage * */
    pthread_mutex_t dirs_lock;   /* fs/host.c: what mkdir made and where blobs live */
    struct strlist created_dirs; /* directories made by mkdir, not (yet) in the registry */
    struct strmap blob_homes;    /* hex → a repository known to hold that blob (char *) */
};

/* address: [scheme://]HOST[:PORT], or a storage tree's path (absolute or ./relative). */
int host_new(const char *address, const struct rfs_config *cfg, struct host **out);
void host_free(struct host *h);
/* host_free for a host that never worked (its first ping failed): also removes the cache
 * directory host_new made for it, which root mode would otherwise list as a host. */
void host_discard(struct host *h);
/* Forgets every stage (and stops its upload jobs); before the hosts' caches go away. */
void host_drop_stages(struct host *h);

/* DIR_IS_REPO | DIR_IS_NAMESPACE for a namespace path ("" is the registry root), 0 if none. */
int host_dir_flags(struct host *h, const char *path);
/* The next path components below `path` (repositories and namespaces), sorted. */
int host_dir_children(struct host *h, const char *path, struct strlist *out);
/* A copy of the repository's tags. -ENOENT when it does not exist. */
int host_tags(struct host *h, const char *repo, struct strlist *out);
int host_has_tag(struct host *h, const char *repo, const char *tag);
/* The digest a tag points at, fetching (and caching) its manifest when the answer is stale. */
int host_resolve_tag(struct host *h, const char *repo, const char *tag,
                     char digest[DIGEST_STR_LEN + 1]);
/* A manifest by digest: from the blob store, else from the registry (then stored). */
int host_manifest(struct host *h, const char *repo, const char *digest, struct buf *out);

/* mkdir'd directories that the registry does not know yet. */
int host_created_dir_add(struct host *h, const char *path);
bool host_created_dir_has(struct host *h, const char *path);
void host_created_dir_remove(struct host *h, const char *path);
/* Next components below path among created directories. */
int host_created_children(struct host *h, const char *path, struct strlist *out);

/* Where a blob is known to live, for cross-repository mounts. */
void host_blob_home_set(struct host *h, const char *hex, const char *repo);
bool host_blob_home_get(struct host *h, const char *hex, char repo[REF_NAME_MAX + 1]);

/* After a push or delete: forget the cached catalog, tag list and tag answers of repo. */
void host_invalidate_repo(struct host *h, const char *repo, const char *tag);

/* The cached view of manifest hex (a new reference), or NULL. */
struct image_view *host_view_get(struct host *h, const char *hex);
/* Keeps v (the caller's reference stays the caller's); returns a reference to the view to use:
 * an equal one cached meanwhile, or v itself with a reference added. */
struct image_view *host_view_keep(struct host *h, struct image_view *v, size_t bytes);

#endif
