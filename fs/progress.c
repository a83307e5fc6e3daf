#include "fs/progress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sha256.h"
#include "common/timeutil.h"
#include "fs/progress_internal.h"

void progress_init(struct progress *p)
{
    pthread_mutex_init(&p->lock, NULL);
    p->n = 0;
    p->next_id = 1;
}

void progress_destroy(struct progress *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->items[i]);
    p->n = 0;
    pthread_mutex_destroy(&p->lock);
}

/* Called with p->lock held: forgets entry i. */
static void drop_locked(struct progress *p, size_t i)
{
    free(p->items[i]);
    memmove(&p->items[i], &p->items[i + 1], (p->n - i - 1) * sizeof(p->items[0]));
    p->n--;
}

/* Called with p->lock held: drops finished entries older than PROGRESS_KEEP_MS, and when
 * `room` is asked for and the table is full, the one that finished first. */
void progress_expire_locked(struct progress *p, int64_t now, bool room)
{
    for (size_t i = p->n; i-- > 0;)
        if (p->items[i]->state != XFER_RUNNING && now - p->items[i]->end_ms >= PROGRESS_KEEP_MS)
            drop_locked(p, i);
    if (!room || p->n < PROGRESS_MAX) return;
    size_t oldest = p->n;
    for (size_t i = 0; i < p->n; i++)
        if (p->items[i]->state != XFER_RUNNING &&
            (oldest == p->n || p->items[i]->end_ms < p->items[oldest]->end_ms))
            oldest = i;
    if (oldest < p->n) drop_locked(p, oldest);
}

static void copy_label(struct xfer *x, const struct xfer_label *l)
{
    snprintf(x->host, sizeof(x->host), "%s", l->host ? l->host : "");
    snprintf(x->repo, sizeof(x->repo), "%s", l->repo ? l->repo : "");
    snprintf(x->tag, sizeof(x->tag), "%s", l->tag ? l->tag : "");
    snprintf(x->hex, sizeof(x->hex), "%s", l->hex ? l->hex : "");
    if (l->from_host && l->from_repo)
        snprintf(x->from, sizeof(x->from), "%.255s/%.255s", l->from_host, l->from_repo);
}

struct xfer *progress_begin(struct progress *p, enum xfer_dir dir, const struct xfer_label *l,
                            uint64_t done, uint64_t total)
{
    if (!p) return NULL;
    struct xfer *x = calloc(1, sizeof(*x));
    if (!x) return NULL;
    x->table = p;
    x->dir = dir;
    copy_label(x, l);
    x->done = x->start_done = done;
    x->total = total ? total : PROGRESS_UNKNOWN;
    x->start_ms = monotonic_ms_now();
    x->start_wall = time(NULL);
    x->state = XFER_RUNNING;
    pthread_mutex_lock(&p->lock);
    progress_expire_locked(p, x->start_ms, true);
    if (p->n == PROGRESS_MAX) {
        pthread_mutex_unlock(&p->lock);
        free(x); /* every slot is a running transfer: this one goes unseen */
        return NULL;
    }
    x->id = p->next_id++;
    p->items[p->n++] = x;
    pthread_mutex_unlock(&p->lock);
    return x;
}

void progress_set(struct xfer *x, uint64_t done)
{
    if (x) __atomic_store_n(&x->done, done, __ATOMIC_RELAXED);
}

void progress_advance(struct xfer *x, uint64_t done)
{
    if (!x) return;
    uint64_t old = __atomic_load_n(&x->done, __ATOMIC_RELAXED);
    while (old < done && !__atomic_compare_exchange_n(&x->done, &old, done, true, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
        ;
}

void progress_add(struct xfer *x, uint64_t n)
{
    if (x) __atomic_add_fetch(&x->done, n, __ATOMIC_RELAXED);
}

void progress_set_total(struct xfer *x, uint64_t total)
{
    if (x) __atomic_store_n(&x->total, total, __ATOMIC_RELAXED);
}

uint64_t *progress_counter(struct xfer *x)
{
    return x ? &x->done : NULL;
}

void progress_end(struct xfer *x, int rc)
{
    if (!x) return;
    struct progress *p = x->table;
    pthread_mutex_lock(&p->lock);
    x->end_ms = monotonic_ms_now();
    x->error = rc;
    x->state = rc == 0 ? XFER_DONE : rc == -ECANCELED ? XFER_STOPPED : XFER_FAILED;
    if (rc == 0 && x->total != PROGRESS_UNKNOWN) x->done = x->total;
    pthread_mutex_unlock(&p->lock);
}

void progress_tag_sum(struct progress *p, const char *host, const char *repo, const char *tag,
                      struct xfer_sum *out)
{
    memset(out, 0, sizeof(*out));
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n; i++) {
        const struct xfer *x = p->items[i];
        if (x->dir == XFER_DOWNLOAD || strcmp(x->host, host) || strcmp(x->repo, repo) ||
            strcmp(x->tag, tag))
            continue;
        uint64_t done = __atomic_load_n(&x->done, __ATOMIC_RELAXED);
        uint64_t total = __atomic_load_n(&x->total, __ATOMIC_RELAXED);
        out->done += done;
        out->total += total == PROGRESS_UNKNOWN ? done : total;
        out->running += x->state == XFER_RUNNING;
        out->finished += x->state == XFER_DONE;
        out->failed += x->state == XFER_FAILED || x->state == XFER_STOPPED;
    }
    pthread_mutex_unlock(&p->lock);
}
