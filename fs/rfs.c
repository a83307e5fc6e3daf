#include "fs/rfs.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "fs/backend.h"
#include "transport/ref.h"

int rfs_host(struct rfs *fs, const char *hostport, struct host **out)
{
    if (!ref_valid_hostport(hostport) || !ref_looks_like_host(hostport)) return -ENOENT;
    pthread_mutex_lock(&fs->lock);
    struct host *h = strmap_get(&fs->hosts, hostport);
    pthread_mutex_unlock(&fs->lock);
    if (h) {
        *out = h;
        return 0;
    }
    int rc = host_new(hostport, &fs->cfg, &h);
    if (rc) return rc == -EINVAL ? -ENOENT : rc;
    h->readahead = &fs->readahead;
    h->progress = &fs->progress;
    rc = backend_ping(h);
    if (rc) {
        log_error("%s: not reachable as a registry (%s)", hostport, strerror(-rc));
        host_discard(h); /* else the root would list it from its cache directory */
        return rc;
    }
    pthread_mutex_lock(&fs->lock);
    struct host *existing = strmap_get(&fs->hosts, hostport);
    if (!existing && strmap_set(&fs->hosts, hostport, h, NULL) == 0) {
        existing = h;
        h = NULL;
    }
    pthread_mutex_unlock(&fs->lock);
    host_free(h); /* lost a race, or out of memory */
    if (!existing) return -ENOMEM;
    *out = existing;
    return 0;
}

static void collect_name(struct strlist *out, const char *name)
{
    if (ref_valid_hostport(name) && ref_looks_like_host(name)) strlist_push(out, name);
}

int rfs_host_names(struct rfs *fs, struct strlist *out)
{
    pthread_mutex_lock(&fs->lock);
    struct strmap_iter it = strmap_iter(&fs->hosts);
    const char *name;
    while (strmap_next(&it, &name, NULL))
        collect_name(out, name);
    pthread_mutex_unlock(&fs->lock);
    DIR *d = opendir(fs->cfg.cache_dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_type == DT_DIR) collect_name(out, de->d_name);
        closedir(d);
    }
    strlist_sort_unique(out);
    return 0;
}

static void free_host(void *h)
{
    host_free(h);
}

static void abort_host(void *p)
{
    struct host *h = p;
    if (h->reg) registry_abort(h->reg);
    blobcache_abort(h->blobs);
}

void rfs_abort(struct rfs *fs)
{
    if (fs->single) abort_host(fs->single);
    pthread_mutex_lock(&fs->lock);
    strmap_each(&fs->hosts, abort_host);
    pthread_mutex_unlock(&fs->lock);
}

static void drop_stages(void *h)
{
    host_drop_stages(h);
}

void rfs_free_hosts(struct rfs *fs)
{
    /* every upload job first: one may be reading from another host's cache */
    strmap_each(&fs->hosts, drop_stages);
    if (fs->single) host_drop_stages(fs->single);
    strmap_clear(&fs->hosts, free_host);
    host_free(fs->single);
    fs->single = NULL;
}
