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
#include "fs/progress.h"
#include "fs/stage.h"
#include "transport/registry_write.h"

#define SIZE_UNKNOWN UINT64_MAX

struct upstream {
    struct host *host;
    struct staged_file *f; /* outlives the thread: the stage joins it before freeing f */
    char repo[REF_NAME_MAX + 1];
    char tag[REF_TAG_MAX + 1];
    char hex[SHA256_HEX_LEN + 1];
    char digest[DIGEST_STR_LEN + 1];
    pthread_t thread;
    struct xfer *xfer;   /* its entry in the mount's transfer table, the job thread's */
    pthread_cond_t more; /* signalled under f->io: bytes written, sealed, cancelled */
    uint64_t sent;       /* the stream's, owned by the job thread */
    /* under f->io */
    bool sealed;   /* the writer is done: final_size is the size */
    bool verified; /* the commit checked the content: the job may upload from the file */
    bool stream_ok;
    uint64_t final_size;
    int cancel; /* atomic: stop as soon as possible */
    int result; /* the job's outcome, read after the join */
};

/* ---- presence: HEAD, then a cross-repository mount ---- */

/* 0 when present (*have: its size, SIZE_UNKNOWN when mounted), -ENOENT when not, or -errno. */
static int head_or_mount(struct host *h, const char *repo, const char *hex, const char *from,
                         uint64_t *have)
{
    char digest[DIGEST_STR_LEN + 1], home[REF_NAME_MAX + 1];
    snprintf(digest, sizeof(digest), DIGEST_PREFIX "%s", hex);
    int rc = backend_blob_exists(h, repo, digest, have);
    if (rc != -ENOENT) return rc;
    if (from) snprintf(home, sizeof(home), "%s", from);
    if ((from || host_blob_home_get(h, hex, home)) && strcmp(home, repo) != 0) {
        rc = backend_blob_mount(h, repo, digest, home);
        *have = SIZE_UNKNOWN;
        /* Harbor and others refuse some mounts (EACCES), a registry may fail one (5xx after
         * the retries): uploading the bytes still works then, where we have them */
        return rc == 0 ? 0 : -ENOENT;
    }
    return -ENOENT;
}

static int check_size(struct host *h, const char *repo, const char *hex, uint64_t have,
                      uint64_t size)
{
    if (have == SIZE_UNKNOWN || have == size) return 0;
    log_error("%s/%s: blob %s is %llu bytes in the registry, the manifest says %llu", h->name, repo,
              hex, (unsigned long long)have, (unsigned long long)size);
    return -EBADMSG;
}

int upstream_blob_present(struct host *h, const char *repo, const char *hex, const char *from,
                          uint64_t size)
{
    uint64_t have = 0;
    int rc = head_or_mount(h, repo, hex, from, &have);
    return rc ? rc : check_size(h, repo, hex, have, size);
}

/* ---- the job ---- */

static bool cancelled(const struct upstream *up)
{
    return __atomic_load_n(&up->cancel, __ATOMIC_ACQUIRE) != 0;
}

/* curl's read callback: the next bytes of the file, waiting for the writer when needed. */
static ssize_t stream_read(void *ctx, char *buf, size_t len)
{
    struct upstream *up = ctx;
    struct staged_file *f = up->f;
    pthread_mutex_lock(&f->io);
    uint64_t limit;
    for (;;) {
        if (cancelled(up) || !up->stream_ok || (!up->sealed && f->hash_broken)) {
            pthread_mutex_unlock(&f->io);
            return -ECANCELED;
        }
        limit = up->sealed ? up->final_size : f->hashed;
        if (up->sent < limit || up->sealed) break;
        pthread_cond_wait(&up->more, &f->io);
    }
    pthread_mutex_unlock(&f->io);
    if (up->sealed) progress_set_total(up->xfer, up->final_size);
    if (up->sent >= limit) return 0;
    size_t n = limit - up->sent < len ? (size_t)(limit - up->sent) : len;
    ssize_t got = pread(f->fd, buf, n, (off_t)up->sent);
    if (got <= 0) return got < 0 ? -errno : -EIO;
    up->sent += (uint64_t)got;
    progress_set(up->xfer, up->sent);
    return got;
}

/* Waits for the commit's verdict: 0 once the content is verified, -ECANCELED when dropped. */
static int wait_verified(struct upstream *up, uint64_t *size)
{
    struct staged_file *f = up->f;
    pthread_mutex_lock(&f->io);
    while (!up->verified && !cancelled(up))
        pthread_cond_wait(&up->more, &f->io);
    *size = up->final_size;
    pthread_mutex_unlock(&f->io);
    return cancelled(up) ? -ECANCELED : 0;
}

static int upload(struct upstream *up)
{
    int rc = -ECANCELED;
    if (up->stream_ok && !cancelled(up)) {
        up->sent = 0;
        rc = registry_upload_blob_stream(up->host->reg, up->repo, up->digest, stream_read, up);
        if (rc == 0 || cancelled(up)) return rc;
        log_debug("blob %s: streamed upload did not complete (%s); uploading from the file",
                  up->hex, strerror(-rc));
    }
    uint64_t size;
    rc = wait_verified(up, &size);
    if (rc) return rc;
    progress_set(up->xfer, 0); /* starting over from the file */
    progress_set_total(up->xfer, size);
    struct upload_ctl ctl = {.cancel = &up->cancel, .sent = progress_counter(up->xfer)};
    return backend_upload_blob(up->host, up->repo, up->digest, up->f->fd, size, &ctl);
}

/* The upload, shown in the mount's transfer table while it runs. */
static int upload_shown(struct upstream *up)
{
    struct xfer_label l = {
        .host = up->host->name, .repo = up->repo, .tag = up->tag, .hex = up->hex};
    pthread_mutex_lock(&up->f->io);
    uint64_t total = up->sealed ? up->final_size : 0;
    pthread_mutex_unlock(&up->f->io);
    up->xfer = progress_begin(up->host->progress, XFER_UPLOAD, &l, 0, total);
    int rc = upload(up);
    progress_end(up->xfer, rc);
    up->xfer = NULL;
    return rc;
}

static void *job_thread(void *arg)
{
    struct upstream *up = arg;
    uint64_t have = 0, size;
    int rc = head_or_mount(up->host, up->repo, up->hex, NULL, &have);
    if (rc == 0) {
        rc = wait_verified(up, &size);
        if (rc == 0) rc = check_size(up->host, up->repo, up->hex, have, size);
    } else if (rc == -ENOENT) {
        rc = upload_shown(up);
    }
    if (rc == 0) host_blob_home_set(up->host, up->hex, up->repo);
    up->result = rc == -ENOENT ? -EIO : rc; /* -ENOENT is upstream_wait's "no job" */
    return NULL;
}

static struct upstream *job_new(struct host *h, const char *repo, const char *tag,
                                struct staged_file *f, const char *hex)
{
    struct upstream *up = calloc(1, sizeof(*up));
    if (!up) return NULL;
    up->host = h;
    up->f = f;
    snprintf(up->repo, sizeof(up->repo), "%s", repo);
    snprintf(up->tag, sizeof(up->tag), "%s", tag);
    snprintf(up->hex, sizeof(up->hex), "%s", hex);
    snprintf(up->digest, sizeof(up->digest), DIGEST_PREFIX "%s", hex);
    pthread_cond_init(&up->more, NULL);
    return up;
}

static int job_run(struct upstream *up)
{
    struct staged_file *f = up->f;
    pthread_mutex_lock(&f->io);
    f->up = up;
    pthread_mutex_unlock(&f->io);
    int rc = -pthread_create(&up->thread, NULL, job_thread, up);
    if (rc) {
        pthread_mutex_lock(&f->io);
        f->up = NULL;
        pthread_mutex_unlock(&f->io);
        pthread_cond_destroy(&up->more);
        free(up);
    }
    return rc;
}

void upstream_start(struct host *h, const char *repo, const char *tag, struct staged_file *f,
                    const char hex[SHA256_HEX_LEN + 1])
{
    if (h->local_root || f->up || !hex[0]) return;
    struct upstream *up = job_new(h, repo, tag, f, hex);
    if (!up) return;
    up->stream_ok = true;
    job_run(up);
}

void upstream_notify(struct staged_file *f)
{
    if (f->up) pthread_cond_broadcast(&f->up->more);
}

const char *upstream_hex(const struct staged_file *f)
{
    return f->up ? f->up->hex : NULL;
}

void upstream_seal(struct staged_file *f)
{
    pthread_mutex_lock(&f->io);
    if (!f->up) {
        pthread_mutex_unlock(&f->io);
        return;
    }
    f->up->sealed = true;
    f->up->final_size = f->size;
    f->up->stream_ok = f->up->stream_ok && !f->hash_broken && f->hashed == f->size;
    pthread_cond_broadcast(&f->up->more);
    pthread_mutex_unlock(&f->io);
}

int upstream_release(struct host *h, const char *repo, const char *tag, struct staged_file *f)
{
    if (!f->up) {
        struct upstream *up = job_new(h, repo, tag, f, f->hex);
        if (!up) return -ENOMEM;
        int rc = job_run(up);
        if (rc) return rc;
    }
    pthread_mutex_lock(&f->io);
    f->up->sealed = true;
    f->up->final_size = f->size;
    f->up->verified = true;
    pthread_cond_broadcast(&f->up->more);
    pthread_mutex_unlock(&f->io);
    return 0;
}

int upstream_wait(struct staged_file *f)
{
    pthread_mutex_lock(&f->io);
    struct upstream *up = f->up;
    f->up = NULL; /* one waiter joins it */
    pthread_mutex_unlock(&f->io);
    if (!up) return -ENOENT;
    pthread_join(up->thread, NULL);
    int rc = up->result;
    pthread_cond_destroy(&up->more);
    free(up);
    return rc;
}

void upstream_cancel(struct staged_file *f)
{
    pthread_mutex_lock(&f->io);
    if (f->up) {
        __atomic_store_n(&f->up->cancel, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&f->up->more);
    }
    pthread_mutex_unlock(&f->io);
    upstream_wait(f);
}
