/*
 * One registry as the filesystem sees it: its transport, its blob cache, and the TTL caches of
 * its catalog, tag lists and tag→digest answers. Within the TTL nothing here makes a request;
 * after it, a failed refresh keeps serving the stale answer (with a log line) so cached images
 * stay readable while the registry is away.
 */
#ifndef REGISTRYFS_HOST_H
#define REGISTRYFS_HOST_H

#include <limits.h>
#include <pthread.h>
#include <time.h>

#include "cache/blobcache.h"
#include "common/strlist.h"
#include "common/strmap.h"
#include "fs/config.h"
#include "transport/registry.h"

#define DIR_IS_REPO 1
#define DIR_IS_NAMESPACE 2

struct cached_list {
    struct strlist items; /* sorted */
    time_t fetched_at;
    int status; /* 0, or the -errno of the last answer */
    bool valid;
};

struct host {
    char name[PATH_MAX]; /* HOST[:PORT] (the directory name), or the storage tree path */
    const struct rfs_config *cfg;
    struct registry *reg; /* a remote registry, or */
    char *local_root;     /* a storage tree mounted as a registry (its own blob store) */
    struct blobcache *blobs;
    struct readahead *readahead; /* the mount's (fs/readahead.h), set by its owner */

    pthread_mutex_t lock;
    struct cached_list catalog;
    struct strmap tags;     /* repo → struct cached_list * */
    struct strmap tag_refs; /* "repo:tag" → struct tag_ref * */
    struct strmap views;    /* view key → struct image_view * */

    /* -o rw */
    struct strmap stages;        /* "repo:tag" → struct stage * */
    struct strlist created_dirs; /* directories made by mkdir, not (yet) in the registry */
    struct strmap blob_homes;    /* hex → a repository known to hold that blob (char *) */
};

/* address: [scheme://]HOST[:PORT], or a storage tree's path (absolute or ./relative). */
int host_new(const char *address, const struct rfs_config *cfg, struct host **out);
bool host_is_storage_path(const char *address);
void host_free(struct host *h);
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

#endif
