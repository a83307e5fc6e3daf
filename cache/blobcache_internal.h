/* State shared by the files of cache/. */
#ifndef REGISTRYFS_BLOBCACHE_INTERNAL_H
#define REGISTRYFS_BLOBCACHE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sys/types.h>

#include "cache/blobcache.h"
#include "cache/evict.h"
#include "common/fsutil.h"
#include "common/slots.h"
#include "common/strmap.h"
#include "common/sha256.h"

enum download_state { DL_RUNNING, DL_DONE, DL_FAILED };
enum part_state { PART_TODO, PART_RUNNING, PART_DONE };

/* One byte range of a download, fetched by one worker at a time. */
struct part {
    uint64_t start, end;   /* [start, end) of the blob */
    uint64_t received;     /* bytes of it written to the partial file (under dl->lock) */
    enum part_state state; /* under dl->lock */
};

/*
 * One download of one blob, shared by every reader that opened it meanwhile. Its bytes arrive
 * as parts fetched by up to bc->parallel workers at once (one part, unbounded, for a small blob
 * or a registry without ranges); `arrived` is the contiguous prefix readers and the hash may use.
 *
 * Locking: dl->lock guards every field below it; it is taken after bc->lock, never before.
 * Reference counts change only through download_hold / download_put.
 */
struct download {
    struct blobcache *bc;
    char hex[SHA256_HEX_LEN + 1];
    uint64_t size;
    struct blob_source src;
    int fd; /* the partial file; after a successful rename it is the stored blob */
    struct sha256 hash;
    uint64_t hashed; /* bytes hashed: owned by the hash thread until it is joined */

    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint64_t arrived;       /* the contiguous prefix written to fd */
    uint64_t got;           /* bytes in fd: arrived plus what parts beyond it received */
    int64_t parts_since_ms; /* when the current plan of parts started */
    uint64_t parts_from;    /* arrived at that moment */
    struct part *parts;
    size_t n_parts;
    size_t head;      /* first part not done: arrived ends inside it */
    size_t next_todo; /* next part a worker takes */
    bool stop;        /* a part failed for good: the other workers stop */
    int part_error;   /* the first part failure */
    bool fetch_done;  /* no more bytes will arrive: the hash thread finishes */
    int hash_error;
    enum download_state state;
    int error;
    int refs;           /* readers + the download thread */
    int readers;        /* blob_readers attached (download_add_reader) */
    int64_t checked_ms; /* when part_sink last asked whether it is still wanted */
    struct download *next;
};

/*
 * Locking: bc->lock guards `verified`, `active` (and each download's `next`), `running`,
 * `checks` (and each check's `next`) and `checking`;
 * it is the outer lock (a download's lock may be taken inside it, not the other way round).
 * The other fields are set before the cache is shared and read-only afterwards.
 */
struct blobcache {
    char root[PATH_MAX];
    char partial[PATH_MAX];
    char share[PATH_MAX];   /* a directory of other stores that may already hold a blob */
    bool foreign;           /* a storage tree written by others: verify, never delete */
    uint64_t part_size;     /* blobs larger than this are fetched as ranged parts */
    int parallel;           /* workers per download, and part fetches at once */
    long silence_ms;        /* a part silent this long over its attempts fails */
    struct slots parts;     /* part fetches under way: every download's first worker goes
                               before any download's second, so parallel blobs share fairly */
    struct strmap verified; /* hex of blobs verified in this mount (bounded: check.c) */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct download *active; /* running downloads, by hex */
    int running;
    int aborted; /* atomic: the mount is ending (blobcache_abort) */
    /* Stored blobs of the own store being hashed before their end is served (bc->lock): at
     * most one check per blob, shared by its readers; `checking` counts their threads, which
     * blobcache_free waits for like downloads. */
    struct check *checks;
    int checking;
    /* This mount's directory for temporaries (spill files, copies, small blobs): PARTIAL/
     * tmp.XXXXXX, flock'ed (tmp_fd) for the mount's lifetime, so a later mount can tell the
     * leftovers of a dead mount (lock free) from those of a live one. Set before sharing. */
    char tmp[PATH_MAX];
    int tmp_fd;
    /* The mount's bound of the cache directory (cache/evict.h), NULL for a storage tree (never
     * evicted): readers and downloads pin their blob, stored blobs are reported to it. Set
     * before sharing. */
    struct cache_budget *budget;
    /* -o link_from: storage roots of others whose blobs are hardlinked into this store
     * (cache/link_roots.c); never written to, nothing in them deleted. Set before sharing. */
    char **link_roots;
    size_t n_link_roots;
};

/*
 * The verification of one stored blob of the cache's own store, once per mount: a thread hashes
 * the data file sequentially while readers read it; the read reaching the end (and every read of
 * a small blob) waits for the verdict. On a mismatch the file is discarded (if it still is the
 * stored one) and readers fetch the blob again.
 *
 * Locking: ck->lock guards `verdict` and `refs`; it is taken after bc->lock, never before.
 */
struct check {
    struct blobcache *bc;
    char hex[SHA256_HEX_LEN + 1];
    uint64_t size;
    int fd; /* our own descriptor of the data file */
    pthread_mutex_t lock;
    pthread_cond_t done;
    int verdict; /* 1 while hashing, 0 matched, -EIO damaged */
    int refs;    /* readers + the thread */
    struct check *next;
};

int blobcache_partial_path(const struct blobcache *bc, const char *hex, char *out, size_t outlen);
int blobcache_commit_file(struct blobcache *bc, const char *tmp_path, const char *hex);
/* Hardlinks hex from a sibling store into this one; 0 when it is now here. */
int blobcache_link_sibling(struct blobcache *bc, const char *hex, uint64_t size);
/* The same, from the stores of the cache directory only (no link root). */
int blobcache_link_cache_sibling(struct blobcache *bc, const char *hex, uint64_t size);
/* Hardlinks hex from a link root (-o link_from) into this store after hashing that copy; 0
 * when it is now here (and verified in this mount). size UINT64_MAX: any size. */
int blobcache_link_root(struct blobcache *bc, const char *hex, uint64_t size);
/* Whether a link root holds a copy of that size (a stat only: not verified). */
bool blobcache_root_has(const struct blobcache *bc, const char *hex, uint64_t size);
/* Hashes a stored blob unless this mount verified it already: 0 when it matches, -EIO when
 * not (nothing is deleted). Called without bc->lock. */
int blobcache_verify_once(struct blobcache *bc, int fd, const char *hex, uint64_t size);
/* Whether a sibling store holds a copy of that size (not verified: a stat only). */
bool blobcache_sibling_has(const struct blobcache *bc, const char *hex, uint64_t size);
int download_start(struct blobcache *bc, const char *hex, uint64_t size,
                   const struct blob_source *src, struct download **out);
void download_hold(struct download *dl);
void download_put(struct download *dl);
/* A reader attaches (takes a reference) / detaches (drops it). */
void download_add_reader(struct download *dl);
void download_remove_reader(struct download *dl);

/* The set of blobs verified in this mount (own store or foreign): reads of those go straight
 * to the file. Take bc->lock themselves; the _locked forms expect it held. */
void blobcache_mark_verified(struct blobcache *bc, const char *hex);
void blobcache_mark_verified_locked(struct blobcache *bc, const char *hex);
bool blobcache_is_verified_locked(struct blobcache *bc, const char *hex);

/* Called with bc->lock held: joins the check of hex or starts one on fd (dup'ed). */
int check_start(struct blobcache *bc, const char *hex, uint64_t size, int fd, struct check **out);
/* 0 when the blob matched its digest, -EIO when it was damaged (and discarded). */
int check_wait(struct check *ck);
void check_put(struct check *ck);

/* Start-up and shutdown of the mount's temporaries directory (cache/tidy.c). */
int blobcache_tidy_start(struct blobcache *bc);
void blobcache_tidy_end(struct blobcache *bc);

#endif
