#include "fs/prefill.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/host.h"
#include "fs/image_view.h"
#include "fs/progress.h"
#include "fs/readahead.h"
#include "fs/stage.h"
#include "fs/upstream.h"
#include "transport/registry_write.h"

#define PREFILL_MAX_BLOBS 128 /* an image with more blobs is sent as the writer writes it */

struct prefill {
    struct prefill *next;
    struct host *dst;
    char repo[REF_NAME_MAX + 1];
    char tag[REF_TAG_MAX + 1];
    char hex[SHA256_HEX_LEN + 1];
    uint64_t size;
    struct host *src;
    char src_repo[REF_NAME_MAX + 1];
    char src_tag[REF_TAG_MAX + 1];
    pthread_t thread;
    bool joined;
    int cancel; /* atomic */
    int result;
    /* the stream, owned by the job thread */
    struct blob_reader *reader;
    uint64_t sent;
    struct xfer *xfer; /* its entry in the mount's transfer table */
};

/* The upload's body: the source blob as it arrives (its end held back until verified). */
static ssize_t read_source(void *ctx, char *buf, size_t len)
{
    struct prefill *p = ctx;
    if (__atomic_load_n(&p->cancel, __ATOMIC_ACQUIRE)) return -ECANCELED;
    ssize_t n = blobcache_pread(p->reader, buf, len, p->sent);
    if (n > 0) p->sent += (uint64_t)n;
    progress_set(p->xfer, p->sent);
    return n;
}

static int stream_from_source(struct prefill *p)
{
    struct blob_source src;
    int rc = readahead_blob_source(p->src, p->src_repo, p->src_tag, p->hex, NULL, &src);
    if (!rc) rc = blobcache_open(p->src->blobs, p->hex, p->size, &src, &p->reader);
    if (rc) return rc;
    char digest[DIGEST_STR_LEN + 1];
    snprintf(digest, sizeof(digest), DIGEST_PREFIX "%s", p->hex);
    struct xfer_label l = {.host = p->dst->name,
                           .repo = p->repo,
                           .tag = p->tag,
                           .hex = p->hex,
                           .from_host = p->src->name,
                           .from_repo = p->src_repo};
    p->xfer = progress_begin(p->dst->progress, XFER_COPY, &l, 0, p->size);
    rc = registry_upload_blob_stream(p->dst->reg, p->repo, digest, read_source, p);
    progress_end(p->xfer, rc);
    p->xfer = NULL;
    blobcache_close(p->reader);
    p->reader = NULL;
    return rc;
}

static void *prefill_thread(void *arg)
{
    struct prefill *p = arg;
    int rc = upstream_blob_present(p->dst, p->repo, p->hex, NULL, p->size);
    if (rc == -ENOENT) rc = stream_from_source(p);
    if (rc == -ENOENT) rc = -EIO; /* -ENOENT is prefill_wait's "no such job" */
    if (rc == 0)
        host_blob_home_set(p->dst, p->hex, p->repo);
    else if (!__atomic_load_n(&p->cancel, __ATOMIC_ACQUIRE))
        log_debug("%s/%s: blob %s not sent from %s/%s (%s); it goes with the writer's bytes",
                  p->dst->name, p->repo, p->hex, p->src->name, p->src_repo, strerror(-rc));
    p->result = rc;
    return NULL;
}

static struct prefill *prefill_start(struct stage *s, const struct read_image *from,
                                     const struct view_entry *e)
{
    struct prefill *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->dst = s->host;
    snprintf(p->repo, sizeof(p->repo), "%s", s->repo);
    snprintf(p->tag, sizeof(p->tag), "%s", s->tag);
    memcpy(p->hex, e->hex, sizeof(p->hex));
    p->size = e->size;
    p->src = from->host;
    snprintf(p->src_repo, sizeof(p->src_repo), "%s", from->repo);
    snprintf(p->src_tag, sizeof(p->src_tag), "%s", from->tag);
    if (pthread_create(&p->thread, NULL, prefill_thread, p)) {
        free(p);
        return NULL;
    }
    return p;
}

/* Called with s->lock held. */
static struct prefill *find_locked(struct stage *s, const char *hex)
{
    for (struct prefill *p = s->prefills; p; p = p->next)
        if (strcmp(p->hex, hex) == 0) return p;
    return NULL;
}

/* Starts a job for every blob of the source image (outside s->lock: creating threads). */
static void start_all(struct stage *s, const struct read_image *from)
{
    struct prefill *list = NULL;
    size_t n = 0;
    for (size_t i = 0; i < from->view->n_entries && n < PREFILL_MAX_BLOBS; i++) {
        const struct view_entry *e = &from->view->entries[i];
        struct prefill *p = e->kind == VE_BLOB ? prefill_start(s, from, e) : NULL;
        if (!p) continue;
        p->next = list;
        list = p;
        n++;
    }
    log_debug("%s/%s:%s: sending %zu blobs straight from %s/%s", s->host->name, s->repo, s->tag, n,
              from->host->name, from->repo);
    pthread_mutex_lock(&s->lock);
    while (list) {
        struct prefill *p = list;
        list = p->next;
        p->next = s->prefills;
        s->prefills = p;
    }
    pthread_mutex_unlock(&s->lock);
}

bool prefill_covers(struct stage *s, const char hex[SHA256_HEX_LEN + 1])
{
    struct host *h = s->host;
    if (h->local_root || !h->readahead) return false;
    pthread_mutex_lock(&s->lock);
    bool covered = find_locked(s, hex) != NULL;
    bool start = !covered && !s->prefilled;
    struct read_image from;
    if (start && readahead_source_of(h->readahead, h, hex, &from))
        s->prefilled = true; /* one source image per stage */
    else
        start = false;
    pthread_mutex_unlock(&s->lock);
    if (!start) return covered;
    start_all(s, &from);
    image_view_put(from.view);
    pthread_mutex_lock(&s->lock);
    covered = find_locked(s, hex) != NULL;
    pthread_mutex_unlock(&s->lock);
    return covered;
}

static int join_once(struct prefill *p)
{
    if (!p->joined) {
        pthread_join(p->thread, NULL);
        p->joined = true;
    }
    return p->result;
}

int prefill_wait(struct stage *s, const char hex[SHA256_HEX_LEN + 1])
{
    pthread_mutex_lock(&s->lock);
    struct prefill *p = find_locked(s, hex);
    pthread_mutex_unlock(&s->lock);
    return p ? join_once(p) : -ENOENT; /* the list only grows until the stage is freed */
}

void prefill_stop_all(struct stage *s)
{
    for (struct prefill *p = s->prefills; p; p = p->next)
        __atomic_store_n(&p->cancel, 1, __ATOMIC_RELEASE);
    while (s->prefills) {
        struct prefill *p = s->prefills;
        s->prefills = p->next;
        join_once(p);
        free(p);
    }
}
