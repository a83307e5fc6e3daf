/* Readers of cached or downloading blobs. */
#include "cache/blobcache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/storage.h"
#include "common/log.h"
#include "common/sha256.h"

struct blob_reader {
    struct blobcache *bc;
    char hex[SHA256_HEX_LEN + 1];
    uint64_t size;
    int fd;                 /* the stored blob */
    struct download *dl;    /* or the download filling it */
    struct blob_source src; /* until the first read starts the download, or the stored
                               blob is verified (a damaged one is fetched again) */
    pthread_mutex_t start;  /* several FUSE threads may read one handle at once: guards fd,
                               dl, ck and src changes after the open */
    struct check *ck;       /* the verification of fd, until its verdict */
    int damaged_fd;         /* fd after it failed verification: kept open until the close,
                               since a concurrent read may still be using it */
    uint64_t served;        /* end of the bytes read from fd before its verdict (atomic) */
    bool poisoned;          /* got damaged bytes: every later read is EIO (under start), or
                               the kernel's retry of a failed read-ahead would end the file
                               with bytes of the fetched copy after the damaged ones */
};

/* A blob up to this size is verified before its first byte is served, not behind the reader:
 * the hash takes a few milliseconds, and a damaged copy is then replaced before the reader
 * has seen any of it. */
#define CHECK_UPFRONT_MAX (8u << 20)

int blobcache_new(const char *root, const char *partial, const char *share, struct blobcache **out)
{
    struct blobcache *bc = calloc(1, sizeof(*bc));
    if (!bc) return -ENOMEM;
    if (snprintf(bc->root, sizeof(bc->root), "%s", root) >= (int)sizeof(bc->root) ||
        snprintf(bc->partial, sizeof(bc->partial), "%s", partial) >= (int)sizeof(bc->partial) ||
        snprintf(bc->share, sizeof(bc->share), "%s", share ? share : "") >=
            (int)sizeof(bc->share)) {
        free(bc);
        return -ENAMETOOLONG;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", partial);
    int rc = mkdir_p(path, 0700);
    if (!rc) {
        snprintf(path, sizeof(path), "%s/docker/registry/v2/blobs/sha256", root);
        rc = mkdir_p(path, 0755);
    }
    if (rc) {
        log_error("cache: cannot create %s: %s", path, strerror(-rc));
        free(bc);
        return rc;
    }
    rc = blobcache_tidy_start(bc);
    if (rc) {
        free(bc);
        return rc;
    }
    pthread_mutex_init(&bc->lock, NULL);
    pthread_cond_init(&bc->idle, NULL);
    strmap_init(&bc->verified);
    bc->part_size = BLOBCACHE_PART_SIZE;
    bc->parallel = 8;
    bc->silence_ms = BLOBCACHE_SILENCE_MS;
    slots_init(&bc->parts, bc->parallel);
    *out = bc;
    return 0;
}

void blobcache_free(struct blobcache *bc)
{
    if (!bc) return;
    pthread_mutex_lock(&bc->lock);
    while (bc->running || bc->checking)
        pthread_cond_wait(&bc->idle, &bc->lock);
    pthread_mutex_unlock(&bc->lock);
    blobcache_tidy_end(bc);
    pthread_mutex_destroy(&bc->lock);
    pthread_cond_destroy(&bc->idle);
    slots_destroy(&bc->parts);
    strmap_clear(&bc->verified, NULL);
    for (size_t i = 0; i < bc->n_link_roots; i++)
        free(bc->link_roots[i]);
    free(bc->link_roots);
    free(bc);
}

/* The stored copy of hex opened: its fd; -ENOENT when there is none (or it had the wrong size
 * and was deleted: fetch it again); -EIO when a storage tree's copy has the wrong size (not
 * ours to delete). A stored blob whose size disagrees with its descriptor is damaged, or a
 * different blob. */
static int open_stored(struct blobcache *bc, const char *hex, uint64_t size)
{
    char path[PATH_MAX];
    if (blobcache_data_path(bc, hex, path, sizeof(path))) return -ENOENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -ENOENT;
    struct stat st;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size == size) return fd;
    close(fd);
    if (bc->foreign) {
        log_error("storage: %s has %lld bytes, the manifest says %llu", path, (long long)st.st_size,
                  (unsigned long long)size);
        return -EIO; /* not ours to delete */
    }
    log_warn("cache: %s has %lld bytes, expected %llu; fetching it again", path,
             (long long)st.st_size, (unsigned long long)size);
    unlink(path);
    budget_changed(bc->budget, hex);
    return -ENOENT;
}

/* A storage tree is written by others: each blob is hashed once per mount before it is
 * served. Called without bc->lock. */
int blobcache_verify_once(struct blobcache *bc, int fd, const char *hex, uint64_t size)
{
    pthread_mutex_lock(&bc->lock);
    bool known = blobcache_is_verified_locked(bc, hex);
    pthread_mutex_unlock(&bc->lock);
    if (known) return 0;
    char actual[SHA256_HEX_LEN + 1];
    int rc = sha256_hex_of_fd(fd, size, actual);
    if (rc == 0 && strcmp(actual, hex) != 0) {
        log_error("storage: blob %s holds content sha256:%s", hex, actual);
        rc = -EIO;
    }
    if (rc == 0) blobcache_mark_verified(bc, hex);
    return rc;
}

/* Joins the running download of the blob, or opens the stored copy; a copy of the own store
 * not verified in this mount yet gets a check. Called with bc->lock held. 1 when neither
 * exists. */
static int attach_existing(struct blob_reader *r)
{
    struct blobcache *bc = r->bc;
    struct download *dl = bc->active;
    while (dl && strcmp(dl->hex, r->hex) != 0)
        dl = dl->next;
    if (dl) {
        download_add_reader(dl);
        r->dl = dl;
        return 0;
    }
    r->fd = open_stored(bc, r->hex, r->size);
    if (r->fd < 0) {
        int rc = r->fd == -EIO ? -EIO : 1; /* 1: neither exists */
        r->fd = -1;
        return rc;
    }
    if (bc->foreign || blobcache_is_verified_locked(bc, r->hex)) return 0;
    int rc = check_start(bc, r->hex, r->size, r->fd, &r->ck);
    if (rc) {
        close(r->fd);
        r->fd = -1;
    }
    return rc;
}

/*
 * attach_existing, after linking the blob from a sibling store when neither exists (that
 * verifies the sibling's copy first, so it runs without bc->lock); with `start`, a download
 * starts when the blob is nowhere. 1 when nothing was attached.
 */
static int attach(struct blob_reader *r, bool start)
{
    struct blobcache *bc = r->bc;
    pthread_mutex_lock(&bc->lock);
    int rc = attach_existing(r);
    pthread_mutex_unlock(&bc->lock);
    if (rc != 1) return rc;
    blobcache_link_sibling(bc, r->hex, r->size);
    pthread_mutex_lock(&bc->lock);
    rc = attach_existing(r);
    if (rc == 1 && start && !r->src.fetch) {
        log_error("cache: blob %s: damaged, and no source left to fetch it from", r->hex);
        rc = -EIO;
    } else if (rc == 1 && start) {
        rc = download_start(bc, r->hex, r->size, &r->src, &r->dl);
        r->src.free_arg = NULL; /* download_start owns it now, even on failure */
        if (rc == 0) {          /* the caller's reference becomes this reader's */
            download_add_reader(r->dl);
            download_put(r->dl);
        }
    }
    pthread_mutex_unlock(&bc->lock);
    return rc;
}

static void drop_source(struct blob_reader *r)
{
    if (r->src.free_arg) r->src.free_arg(r->src.arg);
    r->src.free_arg = NULL;
    r->src.arg = NULL;
    r->src.fetch = NULL;
}

int blobcache_open(struct blobcache *bc, const char *hex, uint64_t size,
                   const struct blob_source *src, struct blob_reader **out)
{
    struct blob_reader *r = calloc(1, sizeof(*r));
    if (!r) {
        if (src->free_arg) src->free_arg(src->arg);
        return -ENOMEM;
    }
    r->bc = bc;
    memcpy(r->hex, hex, SHA256_HEX_LEN + 1);
    r->fd = -1;
    r->damaged_fd = -1;
    r->size = size;
    r->src = *src;
    pthread_mutex_init(&r->start, NULL);
    budget_pin(bc->budget, hex); /* an open blob is never evicted; blobcache_close unpins */

    int rc = attach(r, false);
    if (rc == 1)
        rc = 0; /* the download starts with the first read: cp within the mount needs none */
    if (rc == 0 && r->fd >= 0 && bc->foreign) rc = blobcache_verify_once(bc, r->fd, hex, size);
    if (rc == 0 && r->fd >= 0 && r->src.layer_repo)
        storage_link_layer(bc->root, r->src.layer_repo, hex);
    if ((r->fd >= 0 && !r->ck) || r->dl) drop_source(r);
    if (rc) {
        blobcache_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* The first read of a blob that is neither stored nor downloading starts its download. */
static int ensure_started(struct blob_reader *r)
{
    int rc = 0;
    pthread_mutex_lock(&r->start);
    if (r->poisoned) {
        rc = -EIO;
    } else if (r->fd < 0 && !r->dl) {
        rc = attach(r, true);
        if (!r->ck) drop_source(r); /* a check's verdict may still need it */
    }
    pthread_mutex_unlock(&r->start);
    return rc;
}

/*
 * Waits until [off, off+len) has arrived. The final bytes of the blob are held back until the
 * digest is verified, so the reader that would see EOF sees EIO instead when it is wrong.
 */
static int wait_for_bytes(struct download *dl, uint64_t end)
{
    int rc = 0;
    pthread_mutex_lock(&dl->lock);
    for (;;) {
        if (__atomic_load_n(&dl->bc->aborted, __ATOMIC_ACQUIRE)) {
            rc = -EIO; /* the mount is ending */
            break;
        }
        if (dl->state == DL_FAILED) {
            rc = dl->error ? dl->error : -EIO;
            break;
        }
        if (dl->state == DL_DONE) break;
        if (end < dl->size && dl->arrived >= end) break;
        pthread_cond_wait(&dl->changed, &dl->lock);
    }
    pthread_mutex_unlock(&dl->lock);
    return rc == -ENOENT || rc == -EACCES ? rc : (rc ? -EIO : 0);
}

/*
 * A read of a stored blob whose check runs: bytes before the end are served at once (the hash
 * follows behind), the end (and all of a small blob) only after the verdict. A damaged copy is
 * replaced by a download, unless this reader already got bytes of it: those cannot be taken
 * back, so it gets EIO (later readers get the downloaded copy).
 */
static int settle_check(struct blob_reader *r, uint64_t end)
{
    pthread_mutex_lock(&r->start);
    struct check *ck = r->ck;
    pthread_mutex_unlock(&r->start);
    if (!ck) return 0;
    if (end < r->size && r->size > CHECK_UPFRONT_MAX) {
        uint64_t seen = __atomic_load_n(&r->served, __ATOMIC_RELAXED);
        while (seen < end && !__atomic_compare_exchange_n(&r->served, &seen, end, true,
                                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
        return 0;
    }
    int verdict = check_wait(ck);
    uint64_t served = 0;
    pthread_mutex_lock(&r->start);
    if (r->ck == ck) { /* the first of the handle's readers to see the verdict applies it */
        r->ck = NULL;
        if (verdict == 0) {
            drop_source(r);
        } else {
            r->damaged_fd = r->fd;
            r->fd = -1;
            served = __atomic_load_n(&r->served, __ATOMIC_RELAXED);
            r->poisoned = served > 0;
        }
        check_put(ck);
    }
    pthread_mutex_unlock(&r->start);
    if (verdict == 0) return 0;
    if (served)
        log_error("cache: blob %s: a reader got %llu bytes of a damaged cached copy before the "
                  "damage was found; it gets EIO, later opens get the blob fetched again",
                  r->hex, (unsigned long long)served);
    return served ? -EIO : ensure_started(r);
}

ssize_t blobcache_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off)
{
    if (off >= r->size) return 0;
    if (len > r->size - off) len = (size_t)(r->size - off);
    int rc = ensure_started(r);
    if (!rc) rc = settle_check(r, off + len);
    if (rc) return rc;
    pthread_mutex_lock(&r->start);
    int fd = r->fd;
    struct download *dl = r->dl;
    pthread_mutex_unlock(&r->start);
    if (dl) {
        rc = wait_for_bytes(dl, off + len);
        if (rc) return rc;
        fd = dl->fd;
    }
    if (fd < 0) return -EIO; /* a concurrent read of the handle found its copy damaged */
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

void blobcache_close(struct blob_reader *r)
{
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    if (r->damaged_fd >= 0) close(r->damaged_fd);
    if (r->ck) check_put(r->ck);
    if (r->dl) download_remove_reader(r->dl);
    budget_unpin(r->bc->budget, r->hex);
    drop_source(r);
    pthread_mutex_destroy(&r->start);
    free(r);
}

void blobcache_set_foreign(struct blobcache *bc)
{
    bc->foreign = true;
}

void blobcache_set_transfer(struct blobcache *bc, uint64_t part_size, int parallel, long silence_ms)
{
    bc->silence_ms = silence_ms > 0 ? silence_ms : BLOBCACHE_SILENCE_MS;
    bc->part_size = part_size ? part_size : BLOBCACHE_PART_SIZE;
    bc->parallel = parallel < 1 ? 1 : parallel > 64 ? 64 : parallel;
    slots_resize(&bc->parts, bc->parallel);
}

/* Read-ahead never runs more downloads than this at once; the rest are fetched when read. */
#define PREFETCH_MAX_RUNNING 16

void blobcache_prefetch(struct blobcache *bc, const char *hex, uint64_t size,
                        const struct blob_source *src)
{
    struct blob_source own = *src;
    struct download *dl = NULL;
    /* Pinned here, not under bc->lock: a pin waits while its blob is being evicted, and
     * download_start's own pin then never does. */
    budget_pin(bc->budget, hex);
    pthread_mutex_lock(&bc->lock);
    bool busy = bc->running >= PREFETCH_MAX_RUNNING;
    for (struct download *d = bc->active; d && !busy; d = d->next)
        busy = strcmp(d->hex, hex) == 0;
    char path[PATH_MAX];
    struct stat st;
    bool stored = blobcache_data_path(bc, hex, path, sizeof(path)) == 0 && stat(path, &st) == 0 &&
                  (uint64_t)st.st_size == size;
    /* A sibling's (or link root's) copy is linked by the reader (it is verified first,
     * which is not done under bc->lock); read-ahead only avoids downloading it. */
    if (!busy && !stored && !bc->foreign && !blobcache_sibling_has(bc, hex, size) &&
        !blobcache_root_has(bc, hex, size)) {
        download_start(bc, hex, size, &own, &dl);
        own.free_arg = NULL; /* download_start owns it now, even on failure */
    }
    pthread_mutex_unlock(&bc->lock);
    if (dl) download_put(dl); /* no reader: the thread holds the download */
    budget_unpin(bc->budget, hex);
    if (own.free_arg) own.free_arg(own.arg);
}
