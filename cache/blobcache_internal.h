/* State shared by the files of cache/. */
#ifndef REGISTRYFS_BLOBCACHE_INTERNAL_H
#define REGISTRYFS_BLOBCACHE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>

#include "cache/blobcache.h"
#include "common/fsutil.h"
#include "common/strmap.h"
#include "common/sha256.h"

enum download_state { DL_RUNNING, DL_DONE, DL_FAILED };

/* One download of one blob, shared by every reader that opened it meanwhile. */
struct download {
    struct blobcache *bc;
    char hex[SHA256_HEX_LEN + 1];
    uint64_t size;
    struct blob_source src;
    int fd; /* the partial file; after a successful rename it is the stored blob */
    struct sha256 hash;

    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint64_t arrived; /* bytes written to fd */
    uint64_t hashed;  /* of those, hashed (by the hash thread only) */
    bool fetch_done;  /* no more bytes will arrive: the hash thread finishes */
    int hash_error;
    enum download_state state;
    int error;
    int refs; /* readers + the download thread */
    struct download *next;
};

struct blobcache {
    char root[PATH_MAX];
    char partial[PATH_MAX];
    char share[PATH_MAX];   /* a directory of other stores that may already hold a blob */
    bool foreign;           /* a storage tree written by others: verify, never delete */
    struct strmap verified; /* hex of blobs verified in this mount (foreign stores) */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct download *active; /* running downloads, by hex */
    int running;
};

int blobcache_partial_path(const struct blobcache *bc, const char *hex, char *out, size_t outlen);
int blobcache_commit_file(struct blobcache *bc, const char *tmp_path, const char *hex);
/* Hardlinks hex from a sibling store into this one; 0 when it is now here. */
int blobcache_link_sibling(struct blobcache *bc, const char *hex, uint64_t size);
int download_start(struct blobcache *bc, const char *hex, uint64_t size,
                   const struct blob_source *src, struct download **out);
void download_put(struct download *dl);

#endif
