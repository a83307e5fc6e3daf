/* Shared, verified, resumable downloads into the blob store. */
#include "cache/blobcache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/storage.h"
#include "common/log.h"

#define FETCH_ATTEMPTS 3

static void release_source(struct blob_source *src)
{
    if (src->free_arg) src->free_arg(src->arg);
    src->arg = NULL;
    src->free_arg = NULL;
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
    pthread_mutex_destroy(&dl->lock);
    pthread_cond_destroy(&dl->changed);
    free(dl);
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

/* Called from the fetch with each piece of the body, in order. */
static int download_sink(const void *data, size_t len, void *ctx)
{
    struct download *dl = ctx;
    /* arrived is only written by this thread, so reading it unlocked here is safe */
    if (dl->arrived + len > dl->size) {
        log_error("blob sha256:%s: registry sent more than the %llu bytes its descriptor says",
                  dl->hex, (unsigned long long)dl->size);
        return -EIO;
    }
    int rc = write_all(dl->fd, data, len, dl->arrived);
    if (rc) {
        log_error("blob sha256:%s: writing to the cache failed: %s", dl->hex, strerror(-rc));
        return rc;
    }
    pthread_mutex_lock(&dl->lock);
    dl->arrived += len;
    pthread_cond_broadcast(&dl->changed);
    pthread_mutex_unlock(&dl->lock);
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
    char *chunk = malloc(1 << 20);
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
            size_t want = left < (1 << 20) ? (size_t)left : (1 << 20);
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

static int fetch_with_retries(struct download *dl)
{
    static const int backoff_ms[FETCH_ATTEMPTS] = {0, 300, 1000};
    int rc = -EIO;
    for (int attempt = 0; attempt < FETCH_ATTEMPTS; attempt++) {
        if (backoff_ms[attempt]) {
            struct timespec ts = {0, backoff_ms[attempt] * 1000000L};
            nanosleep(&ts, NULL);
        }
        uint64_t before = dl->arrived;
        rc = dl->src.fetch(dl->src.arg, dl->arrived, download_sink, dl);
        if (rc == 0 || !retryable(rc)) break;
        if (dl->arrived > before)
            attempt = 0; /* progress was made: the failure is not a dead registry */
        log_warn("blob sha256:%s: download interrupted at %llu of %llu bytes (%s)%s", dl->hex,
                 (unsigned long long)dl->arrived, (unsigned long long)dl->size, strerror(-rc),
                 attempt + 1 < FETCH_ATTEMPTS ? ", resuming" : "");
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
    else if (dl->src.layer_repo)
        storage_link_layer(dl->bc->root, dl->src.layer_repo, dl->hex);
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
    if (!rc && dl->arrived < dl->size) rc = fetch_with_retries(dl);
    if (hashing) {
        pthread_mutex_lock(&dl->lock);
        dl->fetch_done = true;
        pthread_cond_broadcast(&dl->changed);
        pthread_mutex_unlock(&dl->lock);
        pthread_join(hasher, NULL);
    }
    if (!rc && dl->hash_error) rc = dl->hash_error;
    if (!rc)
        rc = verify_and_commit(dl);
    else if (rc != -EIO)
        log_error("blob sha256:%s: download failed: %s", dl->hex, strerror(-rc));

    /* Unlist before publishing the verdict, so a new open either sees the stored file or
     * starts a fresh download, never joins a finished one. */
    unlist(dl);
    pthread_mutex_lock(&dl->lock);
    dl->state = rc ? DL_FAILED : DL_DONE;
    dl->error = rc;
    pthread_cond_broadcast(&dl->changed);
    pthread_mutex_unlock(&dl->lock);
    release_source(&dl->src);
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
    dl->arrived = existing;

    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = -pthread_create(&thread, &attr, download_thread, dl);
    pthread_attr_destroy(&attr);
    if (rc) {
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
