/* Shared, verified, resumable downloads into the blob store, in parallel ranged parts. */
#include "cache/blobcache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cache/storage.h"
#include "common/log.h"
#include "common/timeutil.h"

#define FETCH_ATTEMPTS 3
#define HASH_CHUNK (256u << 10)
#define EXTRA_WORKER_DELAY_MS 100
#define ONE_STREAM_ENOUGH (64u << 20) /* bytes/s: a link this fast gains nothing from more */
#define WANTED_CHECK_MS 250
#define PROGRESS_RESETS_ATTEMPTS (1u << 20)

static void release_source(struct blob_source *src)
{
    if (src->free_arg) src->free_arg(src->arg);
    src->arg = NULL;
    src->free_arg = NULL;
}

void download_hold(struct download *dl)
{
    pthread_mutex_lock(&dl->lock);
    dl->refs++;
    pthread_mutex_unlock(&dl->lock);
}

void download_put(struct download *dl)
{
    pthread_mutex_lock(&dl->lock);
    int refs = --dl->refs;
    pthread_mutex_unlock(&dl->lock);
    if (refs) return;
    if (dl->fd >= 0) close(dl->fd);
    if (dl->hash.md) sha256_abort(&dl->hash);
    release_source(&dl->src);
    free(dl->parts);
    pthread_mutex_destroy(&dl->lock);
    pthread_cond_destroy(&dl->changed);
    free(dl);
}

void download_add_reader(struct download *dl)
{
    pthread_mutex_lock(&dl->lock);
    dl->refs++;
    dl->readers++;
    pthread_mutex_unlock(&dl->lock);
}

void download_remove_reader(struct download *dl)
{
    pthread_mutex_lock(&dl->lock);
    dl->readers--;
    pthread_mutex_unlock(&dl->lock);
    download_put(dl);
}

/* Whether anyone still needs the blob: a reader, or the image it belongs to is being read. */
static bool still_wanted(struct download *dl)
{
    pthread_mutex_lock(&dl->lock);
    bool read = dl->readers > 0;
    pthread_mutex_unlock(&dl->lock);
    return read || (dl->src.wanted && dl->src.wanted(dl->src.arg));
}

/* Stops the download when nobody needs it any more (checked at most every WANTED_CHECK_MS). */
static bool give_up_unwanted(struct download *dl)
{
    int64_t now = monotonic_ms_now();
    if (now - dl->checked_ms < WANTED_CHECK_MS) return false;
    dl->checked_ms = now; /* a benign race between workers: one more check at most */
    if (still_wanted(dl)) return false;
    if (!__atomic_exchange_n(&dl->stop, true, __ATOMIC_ACQ_REL))
        log_info("blob sha256:%s: nobody reads it any more; stopped at %llu of %llu bytes "
                 "(kept for a later read)",
                 dl->hex, (unsigned long long)dl->arrived, (unsigned long long)dl->size);
    return true;
}

static int write_all(int fd, const void *data, size_t len, uint64_t off)
{
    const char *p = data;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Called with dl->lock held: moves `arrived` to the end of the contiguous prefix. */
static void advance_locked(struct download *dl)
{
    while (dl->head < dl->n_parts && dl->parts[dl->head].state == PART_DONE)
        dl->head++;
    const struct part *p = dl->head < dl->n_parts ? &dl->parts[dl->head] : NULL;
    uint64_t arrived = p ? p->start + p->received : dl->size;
    if (arrived > dl->arrived) {
        dl->arrived = arrived;
        pthread_cond_broadcast(&dl->changed);
    }
}

struct part_rx {
    struct download *dl;
    struct part *part;
};

/* Called from a fetch with each piece of one part's body, in order. */
static int part_sink(const void *data, size_t len, void *ctx)
{
    struct part_rx *rx = ctx;
    struct download *dl = rx->dl;
    struct part *p = rx->part;
    if (__atomic_load_n(&dl->stop, __ATOMIC_ACQUIRE) || give_up_unwanted(dl)) return -ECANCELED;
    /* received is only written by this worker, so reading it unlocked here is safe */
    if (p->received + len > p->end - p->start) {
        log_error("blob sha256:%s: registry sent more than the %llu bytes its descriptor says",
                  dl->hex, (unsigned long long)dl->size);
        return -EIO;
    }
    int rc = write_all(dl->fd, data, len, p->start + p->received);
    if (rc) {
        log_error("blob sha256:%s: writing to the cache failed: %s", dl->hex, strerror(-rc));
        return rc;
    }
    pthread_mutex_lock(&dl->lock);
    p->received += len;
    dl->got += len;
    uint64_t got = dl->got;
    advance_locked(dl);
    pthread_mutex_unlock(&dl->lock);
    if (dl->src.progress) dl->src.progress(dl->src.arg, got, dl->size);
    return 0;
}

/*
 * Hashes the partial file behind the download, in a thread of its own: receiving and writing
 * run on one core while hashing runs on the other, instead of one after the other per chunk.
 * The bytes come back from the page cache. It also covers what an interrupted earlier
 * download left, so a resumed download needs no separate pass.
 */
static void *hash_thread(void *arg)
{
    struct download *dl = arg;
    char *chunk = malloc(HASH_CHUNK);
    int rc = chunk ? 0 : -ENOMEM;
    for (;;) {
        pthread_mutex_lock(&dl->lock);
        while (!rc && dl->hashed == dl->arrived && !dl->fetch_done)
            pthread_cond_wait(&dl->changed, &dl->lock);
        uint64_t target = dl->arrived;
        bool last = dl->fetch_done;
        pthread_mutex_unlock(&dl->lock);
        while (!rc && dl->hashed < target) {
            uint64_t left = target - dl->hashed;
            size_t want = left < HASH_CHUNK ? (size_t)left : HASH_CHUNK;
            ssize_t n = pread(dl->fd, chunk, want, (off_t)dl->hashed);
            if (n <= 0) {
                rc = n < 0 ? -errno : -EIO;
                break;
            }
            sha256_update(&dl->hash, chunk, (size_t)n);
            dl->hashed += (uint64_t)n;
        }
        if (rc || (last && dl->hashed == target)) break;
    }
    free(chunk);
    dl->hash_error = rc;
    return NULL;
}

static bool retryable(int rc)
{
    return rc == -EIO || rc == -EAGAIN || rc == -ETIMEDOUT;
}

/* Sleeps ms in short steps, so that a stopped download does not wait out its back-off. */
static void sleep_unless_stopped(struct download *dl, long ms)
{
    for (long left = ms; left > 0 && !__atomic_load_n(&dl->stop, __ATOMIC_ACQUIRE); left -= 50) {
        struct timespec ts = {0, (left < 50 ? left : 50) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* One part, resumed from where it got to while attempts make progress. */
static int fetch_part(struct download *dl, struct part *p, bool bounded)
{
    static const long backoff_ms[FETCH_ATTEMPTS] = {0, 300, 1000};
    struct part_rx rx = {dl, p};
    int rc = -EIO;
    int64_t heard_ms = monotonic_ms_now(); /* when this part last received a byte */
    for (int attempt = 0; attempt < FETCH_ATTEMPTS; attempt++) {
        /* A registry silent for the whole window (stopped, or accepting and then mute) gets
         * no further attempt: the reader's EIO comes within the window, not after three. */
        if (attempt && monotonic_ms_now() - heard_ms + backoff_ms[attempt] >= dl->bc->silence_ms)
            break;
        if (backoff_ms[attempt]) sleep_unless_stopped(dl, backoff_ms[attempt]);
        uint64_t before = p->received;
        rc = dl->src.fetch(dl->src.arg, p->start + before, bounded ? p->end : 0, part_sink, &rx);
        if (rc == 0 && p->received != p->end - p->start) rc = -EIO; /* the body ended early */
        if (p->received != before) heard_ms = monotonic_ms_now();
        if (rc == 0 || !retryable(rc) || __atomic_load_n(&dl->stop, __ATOMIC_ACQUIRE)) break;
        if (p->received - before >= PROGRESS_RESETS_ATTEMPTS)
            attempt = 0; /* real progress: the failure is not a dead registry (a trickle that
                            the speed floor cut is, or the retries would never end) */
        log_warn("blob sha256:%s: download interrupted at %llu of %llu bytes (%s)%s", dl->hex,
                 (unsigned long long)(p->start + p->received), (unsigned long long)dl->size,
                 strerror(-rc), attempt + 1 < FETCH_ATTEMPTS ? ", resuming" : "");
    }
    return rc;
}

/* Whether the download's first stream alone runs at ONE_STREAM_ENOUGH or faster. */
static bool one_stream_enough(struct download *dl)
{
    pthread_mutex_lock(&dl->lock);
    uint64_t got = dl->arrived - dl->parts_from;
    int64_t ms = monotonic_ms_now() - dl->parts_since_ms;
    pthread_mutex_unlock(&dl->lock);
    return ms > 0 && got * 1000 / (uint64_t)ms >= ONE_STREAM_ENOUGH;
}

struct worker {
    struct download *dl;
    int index; /* 0 for the download's first worker: its slot priority */
};

/* Called with dl->lock held: the next part to fetch, or NULL. */
static struct part *claim_locked(struct download *dl)
{
    if (dl->stop || dl->next_todo >= dl->n_parts) return NULL;
    struct part *p = &dl->parts[dl->next_todo++];
    p->state = PART_RUNNING;
    return p;
}

/* Takes parts until none is left or one failed for good. A part is claimed only once a slot
 * is held, so the first worker of a download, which goes first, takes the parts in order. */
static void *part_worker(void *arg)
{
    const struct worker *w = arg;
    struct download *dl = w->dl;
    bool bounded = dl->n_parts > 1;
    /* A blob's extra connections queue a moment after its first, so that blobs started
     * together (read-ahead) each get a connection before any gets a second; and only when
     * one connection is slow (a distant registry): on a fast link more streams only add
     * contention for the two cores. */
    if (w->index > 0) {
        sleep_unless_stopped(dl, EXTRA_WORKER_DELAY_MS);
        if (one_stream_enough(dl)) return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&dl->lock);
        bool more = !dl->stop && dl->next_todo < dl->n_parts;
        pthread_mutex_unlock(&dl->lock);
        if (!more) return NULL;
        slots_acquire_prio(&dl->bc->parts, w->index);
        pthread_mutex_lock(&dl->lock);
        struct part *p = claim_locked(dl);
        pthread_mutex_unlock(&dl->lock);
        int rc = p ? fetch_part(dl, p, bounded) : 0;
        slots_release(&dl->bc->parts);
        if (!p) return NULL;
        pthread_mutex_lock(&dl->lock);
        if (rc) {
            if (!dl->part_error) dl->part_error = rc;
            __atomic_store_n(&dl->stop, true, __ATOMIC_RELEASE);
        } else {
            p->state = PART_DONE;
            advance_locked(dl);
        }
        pthread_mutex_unlock(&dl->lock);
    }
}

/* Cuts [from, size) into parts of about part_size (a short tail joins the part before it,
 * rather than cost a request of its own): one unbounded part when it is not worth splitting. */
static int plan_parts(struct download *dl, uint64_t from, bool split)
{
    uint64_t step = dl->bc->part_size, len = dl->size - from;
    size_t n = split && len > step + step / 2 ? (size_t)((len + step / 2) / step) : 1;
    struct part *parts = calloc(n, sizeof(*parts));
    if (!parts) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        parts[i].start = from + i * step;
        parts[i].end = i + 1 < n ? parts[i].start + step : dl->size;
    }
    pthread_mutex_lock(&dl->lock);
    free(dl->parts);
    dl->parts = parts;
    dl->n_parts = n;
    dl->head = dl->next_todo = 0;
    dl->parts_since_ms = monotonic_ms_now();
    dl->parts_from = dl->arrived;
    dl->got = dl->arrived; /* a new plan starts over from the contiguous prefix */
    dl->stop = __atomic_load_n(&dl->bc->aborted, __ATOMIC_ACQUIRE) != 0;
    dl->part_error = 0;
    pthread_mutex_unlock(&dl->lock);
    return 0;
}

/* Runs the planned parts with up to bc->parallel workers (this thread being one). */
static int run_parts(struct download *dl)
{
    pthread_t threads[64];
    struct worker workers[64];
    size_t want = dl->n_parts < (size_t)dl->bc->parallel ? dl->n_parts : (size_t)dl->bc->parallel;
    size_t started = 0;
    workers[0] = (struct worker){dl, 0};
    while (started + 1 < want && started + 1 < sizeof(workers) / sizeof(workers[0])) {
        workers[started + 1] = (struct worker){dl, (int)started + 1};
        if (pthread_create(&threads[started], NULL, part_worker, &workers[started + 1])) break;
        started++;
    }
    part_worker(&workers[0]);
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    return dl->part_error;
}

/* A download that failed because the disk is full (the error may arrive as EIO through the
 * fetch), or that could not finish there now: its partial file is not worth keeping. */
static bool out_of_room(struct download *dl, int rc)
{
    struct statvfs vfs;
    if (rc == -ENOSPC || rc == -EDQUOT) return true;
    return fstatvfs(dl->fd, &vfs) == 0 &&
           (uint64_t)vfs.f_bavail * vfs.f_frsize < dl->size - dl->arrived;
}

/* Everything from `arrived` on: in parts when the blob is large, in one stream when the
 * registry cannot serve ranges. Afterwards the partial file holds exactly the verified-to-be
 * prefix, so an interrupted download resumes from its end. */
static int fetch_rest(struct download *dl)
{
    int rc = plan_parts(dl, dl->arrived, true);
    if (!rc) rc = run_parts(dl);
    if (rc == -ERANGE) {
        log_debug("blob sha256:%s: no ranges; fetching from byte %llu in one stream", dl->hex,
                  (unsigned long long)dl->arrived);
        rc = plan_parts(dl, dl->arrived, false);
        if (!rc) rc = run_parts(dl);
    }
    if (rc && out_of_room(dl, rc)) {
        /* Kept, it would hold the disk full and fail every later download too: removed (its
         * blocks are freed when the last reader lets go of the download). */
        char path[PATH_MAX];
        if (blobcache_partial_path(dl->bc, dl->hex, path, sizeof(path)) == 0) unlink(path);
    } else if (rc && ftruncate(dl->fd, (off_t)dl->arrived) != 0) {
        log_warn("blob sha256:%s: cannot cut the partial file: %s", dl->hex, strerror(errno));
    }
    return rc;
}

static int verify_and_commit(struct download *dl)
{
    char partial[PATH_MAX];
    char actual[SHA256_HEX_LEN + 1];
    blobcache_partial_path(dl->bc, dl->hex, partial, sizeof(partial));
    if (dl->arrived != dl->size) {
        log_error("blob sha256:%s: got %llu bytes, descriptor says %llu; not cached", dl->hex,
                  (unsigned long long)dl->arrived, (unsigned long long)dl->size);
        unlink(partial);
        return -EIO;
    }
    sha256_end_hex(&dl->hash, actual);
    if (strcmp(actual, dl->hex) != 0) {
        log_error("blob sha256:%s: content hashes to sha256:%s; not cached", dl->hex, actual);
        unlink(partial);
        return -EIO;
    }
    fchmod(dl->fd, 0644);
    int rc = blobcache_commit_file(dl->bc, partial, dl->hex);
    if (rc)
        log_error("blob sha256:%s: cannot store it: %s", dl->hex, strerror(-rc));
    else
        blobcache_mark_verified(dl->bc, dl->hex); /* later opens in this mount need no check */
    if (!rc && dl->src.layer_repo) storage_link_layer(dl->bc->root, dl->src.layer_repo, dl->hex);
    return rc;
}

static void unlist(struct download *dl)
{
    struct blobcache *bc = dl->bc;
    pthread_mutex_lock(&bc->lock);
    for (struct download **p = &bc->active; *p; p = &(*p)->next) {
        if (*p == dl) {
            *p = dl->next;
            break;
        }
    }
    bc->running--;
    pthread_cond_broadcast(&bc->idle);
    pthread_mutex_unlock(&bc->lock);
}

static void *download_thread(void *arg)
{
    struct download *dl = arg;
    pthread_t hasher;
    bool hashing = pthread_create(&hasher, NULL, hash_thread, dl) == 0;
    int rc = hashing ? 0 : -EAGAIN;
    if (dl->src.progress) dl->src.progress(dl->src.arg, dl->arrived, dl->size);
    if (!rc && dl->arrived < dl->size) rc = fetch_rest(dl);
    if (hashing) {
        pthread_mutex_lock(&dl->lock);
        dl->fetch_done = true;
        pthread_cond_broadcast(&dl->changed);
        pthread_mutex_unlock(&dl->lock);
        pthread_join(hasher, NULL);
    }
    if (!rc && dl->hash_error) rc = dl->hash_error;
    /* No more bytes come: the room kept for them is given back before the commit, so the
     * bound never counts the blob twice (as reserved and as stored) and evicts for nothing. */
    budget_reserve(dl->bc->budget, -(int64_t)dl->size);
    if (!rc)
        rc = verify_and_commit(dl);
    else if (rc != -EIO && rc != -ECANCELED)
        log_error("blob sha256:%s: download failed: %s", dl->hex, strerror(-rc));

    /* Unlist before publishing the verdict, so a new open either sees the stored file or
     * starts a fresh download, never joins a finished one. */
    unlist(dl);
    pthread_mutex_lock(&dl->lock);
    dl->state = rc ? DL_FAILED : DL_DONE;
    dl->error = rc;
    pthread_cond_broadcast(&dl->changed);
    pthread_mutex_unlock(&dl->lock);
    if (dl->src.finished) dl->src.finished(dl->src.arg, rc);
    release_source(&dl->src);
    budget_unpin(dl->bc->budget, dl->hex);
    download_put(dl);
    return NULL;
}

static int open_partial(struct download *dl, uint64_t *existing)
{
    char path[PATH_MAX];
    int rc = blobcache_partial_path(dl->bc, dl->hex, path, sizeof(path));
    if (rc) return rc;
    dl->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (dl->fd < 0) return -errno;
    struct stat st;
    if (fstat(dl->fd, &st)) return -errno;
    *existing = (uint64_t)st.st_size;
    if (*existing > dl->size) { /* not a prefix of this blob: start over */
        if (ftruncate(dl->fd, 0)) return -errno;
        *existing = 0;
    }
    return 0;
}

/* Called with bc->lock held. */
int download_start(struct blobcache *bc, const char *hex, uint64_t size,
                   const struct blob_source *src, struct download **out)
{
    if (__atomic_load_n(&bc->aborted, __ATOMIC_ACQUIRE)) return -EIO; /* the mount is ending */
    struct download *dl = calloc(1, sizeof(*dl));
    if (!dl) return -ENOMEM;
    dl->bc = bc;
    memcpy(dl->hex, hex, SHA256_HEX_LEN + 1);
    dl->size = size;
    dl->src = *src;
    dl->fd = -1;
    dl->refs = 2; /* the caller's reader and the thread */
    pthread_mutex_init(&dl->lock, NULL);
    pthread_cond_init(&dl->changed, NULL);

    uint64_t existing = 0;
    int rc = open_partial(dl, &existing);
    if (!rc) rc = sha256_begin(&dl->hash);
    if (rc) {
        dl->refs = 1;
        download_put(dl);
        return rc;
    }
    dl->arrived = dl->got = existing;

    /* Pinned while it runs, and room made for all of it before its bytes arrive; the thread
     * gives both back when it ends. The caller holds a pin already (a reader's, or
     * blobcache_prefetch's), so this one never waits for an eviction under bc->lock. */
    budget_pin(bc->budget, hex);
    budget_reserve(bc->budget, (int64_t)size);
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = -pthread_create(&thread, &attr, download_thread, dl);
    pthread_attr_destroy(&attr);
    if (rc) {
        budget_reserve(bc->budget, -(int64_t)size);
        budget_unpin(bc->budget, hex);
        dl->refs = 1;
        download_put(dl);
        return rc;
    }
    dl->next = bc->active;
    bc->active = dl;
    bc->running++;
    *out = dl;
    return 0;
}

void blobcache_abort(struct blobcache *bc)
{
    pthread_mutex_lock(&bc->lock);
    __atomic_store_n(&bc->aborted, 1, __ATOMIC_RELEASE);
    for (struct download *dl = bc->active; dl; dl = dl->next) {
        pthread_mutex_lock(&dl->lock);
        __atomic_store_n(&dl->stop, true, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&dl->changed);
        pthread_mutex_unlock(&dl->lock);
    }
    pthread_mutex_unlock(&bc->lock);
}
