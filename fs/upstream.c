#include "fs/upstream.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/backend.h"
#include "fs/host.h"
#include "fs/stage.h"
#include "transport/registry_write.h"

struct upstream {
    struct host *host;
    struct staged_file *f; /* outlives the thread: free_file joins it first */
    char repo[REF_NAME_MAX + 1];
    char digest[DIGEST_STR_LEN + 1];
    pthread_t thread;
    pthread_cond_t more; /* signalled under f->io */
    uint64_t sent;
    uint64_t final_size;
    bool eof;
    bool cancelled;
    int result;
};

/* curl's read callback: the next bytes of the file, waiting for the writer when needed. */
static ssize_t stream_read(void *ctx, char *buf, size_t len)
{
    struct upstream *up = ctx;
    struct staged_file *f = up->f;
    pthread_mutex_lock(&f->io);
    uint64_t limit;
    for (;;) {
        limit = up->eof ? up->final_size : f->hashed;
        if (up->cancelled || f->hash_broken) {
            pthread_mutex_unlock(&f->io);
            return -ECANCELED;
        }
        if (up->sent < limit || up->eof) break;
        pthread_cond_wait(&up->more, &f->io);
    }
    pthread_mutex_unlock(&f->io);
    if (up->sent >= limit) return 0;
    size_t n = limit - up->sent < len ? (size_t)(limit - up->sent) : len;
    ssize_t got = pread(f->fd, buf, n, (off_t)up->sent);
    if (got <= 0) return got < 0 ? -errno : -EIO;
    up->sent += (uint64_t)got;
    return got;
}

static void *stream_thread(void *arg)
{
    struct upstream *up = arg;
    /* Nothing to stream when the registry has the blob or can mount it: the commit does that
     * (cheaply) once the content is verified. */
    char home[REF_NAME_MAX + 1];
    if (backend_blob_exists(up->host, up->repo, up->digest, NULL) != -ENOENT ||
        host_blob_home_get(up->host, up->digest + strlen(DIGEST_PREFIX), home)) {
        up->result = -EEXIST;
        return NULL;
    }
    up->result = registry_upload_blob_stream(up->host->reg, up->repo, up->digest, stream_read, up);
    return NULL;
}

void upstream_start(struct host *h, const char *repo, struct staged_file *f)
{
    if (h->local_root || f->role != ROLE_BLOB || f->up) return;
    struct upstream *up = calloc(1, sizeof(*up));
    if (!up) return;
    up->host = h;
    up->f = f;
    snprintf(up->repo, sizeof(up->repo), "%s", repo);
    snprintf(up->digest, sizeof(up->digest), DIGEST_PREFIX "%s", f->hex);
    pthread_cond_init(&up->more, NULL);
    if (pthread_create(&up->thread, NULL, stream_thread, up)) {
        pthread_cond_destroy(&up->more);
        free(up);
        return;
    }
    f->up = up;
}

void upstream_notify(struct staged_file *f)
{
    if (f->up) pthread_cond_broadcast(&f->up->more);
}

static int join(struct staged_file *f)
{
    struct upstream *up = f->up;
    pthread_join(up->thread, NULL);
    int rc = up->result;
    pthread_cond_destroy(&up->more);
    free(up);
    f->up = NULL;
    return rc;
}

int upstream_finish(struct staged_file *f)
{
    if (!f->up) return -ENOENT;
    pthread_mutex_lock(&f->io);
    if (!f->hash_broken && f->hashed == f->size) {
        f->up->final_size = f->size;
        f->up->eof = true;
    } else {
        f->up->cancelled = true;
    }
    pthread_cond_broadcast(&f->up->more);
    pthread_mutex_unlock(&f->io);
    int rc = join(f);
    if (rc && rc != -EEXIST)
        log_debug("blob %s: streamed upload did not complete (%s); uploading from the file", f->hex,
                  strerror(-rc));
    return rc;
}

void upstream_cancel(struct staged_file *f)
{
    if (!f->up) return;
    pthread_mutex_lock(&f->io);
    f->up->cancelled = true;
    pthread_cond_broadcast(&f->up->more);
    pthread_mutex_unlock(&f->io);
    join(f);
}
