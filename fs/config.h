/* Mount-wide settings from the command line. */
#ifndef REGISTRYFS_CONFIG_H
#define REGISTRYFS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct rfs_config {
    char *registry; /* NULL in root mode */
    char *mountpoint;
    char *cache_dir;
    char *log_file;
    int ttl;            /* seconds that tag lists, catalogs and tag→digest answers stay fresh */
    int max_transfers;  /* blob transfers at once per registry and direction */
    int timeout;        /* seconds a registry request may take, retries included */
    int retries;        /* further attempts of a failed request */
    uint64_t part_size; /* blobs larger than this download as parallel ranged parts */
    /* The cache bound (docs/cache.md "Bounded cache"): -o cache_max_size (0: none) and
     * -o cache_min_free (bytes when not 0, else a percentage of the filesystem; both 0: off). */
    uint64_t cache_max_size;
    uint64_t cache_min_free;
    int cache_min_free_pct;
    /* Not a setting: the bound itself, made from the above once the cache directory is known,
     * shared by the blob caches of every host (fs/host.c). */
    struct cache_budget *budget;
    bool push;         /* -o push: new tags, retags (writes reach the registry) */
    bool allow_delete; /* -o allow_delete: rm -r deletes tags, mv drops the old tag */
    bool nonempty;     /* -o nonempty: mount over a directory that holds files */
    bool sync_layout;  /* -o sync_layout: list images as NAME:TAG (fs/sync_layout.h) */
    bool debug;
    bool foreground;
    bool tls_verify;
    char *authfile;
    char *cert_dir;
    char *registries_conf; /* -o registries_conf=FILE; NULL: the default in root mode only */
    char *link_from;       /* -o link_from=DIR[:DIR...], resolved (fs/link_from.h); or NULL */
    bool platform_set;
    char os[32];
    char arch[32];
    char variant[32];
};

#endif
