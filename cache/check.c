/*
 * Verification of the cache's own stored blobs, once per mount. A file in the store was
 * verified when it was written, but the disk (or a person) may have changed it since: before a
 * reader sees the end of a blob this mount has not verified yet, its digest is checked again,
 * by a thread that hashes the file while the reader reads it (the first byte never waits for a
 * hash of the whole blob).
 */
#include "cache/blobcache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#define CHECK_CHUNK (256u << 10)
/* The verified set is forgotten when it grows beyond this (each blob is then hashed once
 * more): about 8 MiB of memory whatever the cache holds. */
#define VERIFIED_MAX 65536

void blobcache_mark_verified_locked(struct blobcache *bc, const char *hex)
{
    if (bc->verified.len >= VERIFIED_MAX) strmap_clear(&bc->verified, NULL);
    strmap_set(&bc->verified, hex, (void *)1, NULL);
}

void blobcache_mark_verified(struct blobcache *bc, const char *hex)
{
    pthread_mutex_lock(&bc->lock);
    blobcache_mark_verified_locked(bc, hex);
    pthread_mutex_unlock(&bc->lock);
}

bool blobcache_is_verified_locked(struct blobcache *bc, const char *hex)
{
    return strmap_get(&bc->verified, hex) != NULL;
}

void check_put(struct check *ck)
{
    pthread_mutex_lock(&ck->lock);
    int refs = --ck->refs;
    pthread_mutex_unlock(&ck->lock);
    if (refs) return;
    close(ck->fd);
    pthread_mutex_destroy(&ck->lock);
    pthread_cond_destroy(&ck->done);
    free(ck);
}

int check_wait(struct check *ck)
{
    pthread_mutex_lock(&ck->lock);
    while (ck->verdict == 1)
        pthread_cond_wait(&ck->done, &ck->lock);
    int v = ck->verdict;
    pthread_mutex_unlock(&ck->lock);
    return v;
}

/* Removes the damaged file, unless the store holds another file by now (a download of another
 * mount sharing the cache directory may have renamed a good copy over it). */
static void discard(struct check *ck, const char *actual)
{
    char path[PATH_MAX];
    struct stat mine, now;
    if (blobcache_data_path(ck->bc, ck->hex, path, sizeof(path))) return;
    if (actual)
        log_error("cache: %s hashes to sha256:%s; discarding it and fetching the blob again", path,
                  actual);
    if (fstat(ck->fd, &mine) == 0 && stat(path, &now) == 0 && mine.st_ino == now.st_ino &&
        mine.st_dev == now.st_dev) {
        unlink(path);
        budget_changed(ck->bc->budget, ck->hex);
    }
}

static int hash_file(struct check *ck, char actual[SHA256_HEX_LEN + 1])
{
    struct sha256 h;
    int rc = sha256_begin(&h);
    if (rc) return rc;
    char *chunk = malloc(CHECK_CHUNK);
    if (!chunk) rc = -ENOMEM;
    for (uint64_t off = 0; !rc && off < ck->size;) {
        uint64_t left = ck->size - off;
        ssize_t n =
            pread(ck->fd, chunk, left < CHECK_CHUNK ? (size_t)left : CHECK_CHUNK, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) rc = n < 0 ? -errno : -EIO;
        if (n > 0) {
            sha256_update(&h, chunk, (size_t)n);
            off += (uint64_t)n;
        }
    }
    free(chunk);
    if (rc)
        sha256_abort(&h);
    else
        sha256_end_hex(&h, actual);
    return rc;
}

static void *check_thread(void *arg)
{
    struct check *ck = arg;
    struct blobcache *bc = ck->bc;
    char actual[SHA256_HEX_LEN + 1];
    int rc = hash_file(ck, actual);
    if (rc == -ENOMEM) {
        log_error("cache: blob %s: no memory to verify it", ck->hex);
    } else if (rc) {
        char path[PATH_MAX];
        blobcache_data_path(bc, ck->hex, path, sizeof(path));
        log_error("cache: reading %s failed: %s; discarding it and fetching the blob again", path,
                  strerror(-rc));
        discard(ck, NULL);
    } else if (strcmp(actual, ck->hex) != 0) {
        discard(ck, actual);
        rc = -EIO;
    }
    /* Unlist and record the verdict under bc->lock together, so a new open either finds the
     * blob verified, or (after a mismatch) no stored file, never a finished check. */
    pthread_mutex_lock(&bc->lock);
    for (struct check **p = &bc->checks; *p; p = &(*p)->next) {
        if (*p == ck) {
            *p = ck->next;
            break;
        }
    }
    if (!rc) blobcache_mark_verified_locked(bc, ck->hex);
    bc->checking--;
    pthread_cond_broadcast(&bc->idle);
    pthread_mutex_unlock(&bc->lock);
    pthread_mutex_lock(&ck->lock);
    ck->verdict = rc ? -EIO : 0;
    pthread_cond_broadcast(&ck->done);
    pthread_mutex_unlock(&ck->lock);
    check_put(ck);
    return NULL;
}

int check_start(struct blobcache *bc, const char *hex, uint64_t size, int fd, struct check **out)
{
    struct check *ck = bc->checks;
    while (ck && strcmp(ck->hex, hex) != 0)
        ck = ck->next;
    if (ck) {
        pthread_mutex_lock(&ck->lock);
        ck->refs++;
        pthread_mutex_unlock(&ck->lock);
        *out = ck;
        return 0;
    }
    ck = calloc(1, sizeof(*ck));
    if (!ck) return -ENOMEM;
    ck->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (ck->fd < 0) {
        free(ck);
        return -errno;
    }
    ck->bc = bc;
    memcpy(ck->hex, hex, SHA256_HEX_LEN + 1);
    ck->size = size;
    ck->verdict = 1;
    ck->refs = 2; /* the caller's reader and the thread */
    pthread_mutex_init(&ck->lock, NULL);
    pthread_cond_init(&ck->done, NULL);
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = -pthread_create(&thread, &attr, check_thread, ck);
    pthread_attr_destroy(&attr);
    if (rc) {
        ck->refs = 1;
        check_put(ck);
        return rc;
    }
    ck->next = bc->checks;
    bc->checks = ck;
    bc->checking++;
    *out = ck;
    return 0;
}
