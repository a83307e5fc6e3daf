/* The cache bound: last use and pins in memory, counting and eviction in a thread of its own. */
#include "cache/evict.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "cache/evict_disk.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/strlist.h"
#include "common/strmap.h"

#define IDLE_WAKE_MS 1000 /* free space is looked at this often even when nothing is added */
#define COUNT_BATCH 256   /* digests counted per hold of the lock */

/* One digest: stored in one or more stores, or pinned, or both. */
struct entry {
    uint64_t bytes;   /* what evicting it frees (evict_count); set by the thread */
    int64_t last_use; /* ms since the epoch: last pin or unpin, or the file's time */
    int pins;
    bool queued;   /* in `changed`: to be counted again */
    bool evicting; /* the thread is removing its files */
};

/*
 * Locking: `lock` guards entries (and every entry's fields), changed, stored, reserved and
 * stop. It is a leaf: nothing else is taken inside it, and no file system call runs under it.
 * The other fields are set before the thread starts, or are the thread's own (scanned).
 */
struct cache_budget {
    char dir[PATH_MAX];
    uint64_t max_size;
    uint64_t min_free;
    int min_free_pct;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t evicted; /* a round's victims are gone: pins waiting for them go on */
    struct strmap entries;  /* hex → struct entry */
    struct strlist changed; /* hexes to count again */
    uint64_t stored;        /* sum of the entries' bytes */
    uint64_t reserved;      /* bytes running downloads will write */
    bool stop;              /* atomic reads outside the lock (the scan) */
    bool scanned;           /* the thread's: the stores were scanned once */
    bool running;
    pthread_t thread;
    int64_t warned_ms; /* the thread's: when it last said it could not free enough */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int budget_new(const char *cache_dir, uint64_t max_size, uint64_t min_free, int min_free_pct,
               struct cache_budget **out)
{
    struct cache_budget *b = calloc(1, sizeof(*b));
    if (!b) return -ENOMEM;
    if (snprintf(b->dir, sizeof(b->dir), "%s", cache_dir) >= (int)sizeof(b->dir)) {
        free(b);
        return -ENAMETOOLONG;
    }
    b->max_size = max_size;
    b->min_free = min_free;
    b->min_free_pct = min_free_pct;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    pthread_cond_init(&b->evicted, NULL);
    strmap_init(&b->entries);
    *out = b;
    return 0;
}

/* Called with b->lock held. An entry made here is queued: its files are counted later. */
static struct entry *get_or_make(struct cache_budget *b, const char *hex)
{
    struct entry *e = strmap_get(&b->entries, hex);
    if (e) return e;
    e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    if (strmap_set(&b->entries, hex, e, NULL) || strlist_push(&b->changed, hex)) {
        strmap_remove(&b->entries, hex);
        free(e);
        return NULL;
    }
    e->queued = true;
    return e;
}

/* Called with b->lock held: an entry that holds nothing and is not in use is forgotten. */
static void forget_if_idle(struct cache_budget *b, const char *hex, struct entry *e)
{
    if (e->pins || e->bytes || e->queued || e->evicting) return;
    strmap_remove(&b->entries, hex);
    free(e);
}

/* A digest being evicted is waited for (its files and links are then gone; a download starts
 * afresh): so a pinned blob is whole, and stays whole, and a link written under a pin never
 * dangles. Only blobs nobody used for longest are evicted, so readers rarely wait. */
void budget_pin(struct cache_budget *b, const char *hex)
{
    if (!b) return;
    pthread_mutex_lock(&b->lock);
    struct entry *e = get_or_make(b, hex);
    while (e && e->evicting) {
        pthread_cond_wait(&b->evicted, &b->lock);
        e = get_or_make(b, hex); /* it may have been forgotten meanwhile */
    }
    if (e) {
        e->pins++;
        e->last_use = wall_ms();
    }
    pthread_mutex_unlock(&b->lock);
}

void budget_unpin(struct cache_budget *b, const char *hex)
{
    if (!b) return;
    pthread_mutex_lock(&b->lock);
    struct entry *e = strmap_get(&b->entries, hex);
    if (e && e->pins > 0) {
        e->pins--;
        e->last_use = wall_ms();
        forget_if_idle(b, hex, e);
    }
    pthread_mutex_unlock(&b->lock);
}

void budget_changed(struct cache_budget *b, const char *hex)
{
    if (!b) return;
    pthread_mutex_lock(&b->lock);
    struct entry *e = get_or_make(b, hex);
    if (e) {
        e->last_use = wall_ms();
        if (!e->queued && strlist_push(&b->changed, hex) == 0) e->queued = true;
    }
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
}

void budget_reserve(struct cache_budget *b, int64_t bytes)
{
    if (!b) return;
    pthread_mutex_lock(&b->lock);
    if (bytes < 0 && (uint64_t)-bytes > b->reserved)
        b->reserved = 0;
    else
        b->reserved += (uint64_t)bytes;
    if (bytes > 0) pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
}

/* Counts the queued digests again, a batch per hold of the lock (the counting itself, file
 * system calls, runs outside it). */
static void count_changed(struct cache_budget *b, const struct strlist *stores)
{
    for (;;) {
        struct strlist batch = STRLIST_INIT;
        pthread_mutex_lock(&b->lock);
        size_t n = b->changed.len < COUNT_BATCH ? b->changed.len : COUNT_BATCH;
        for (size_t i = 0; i < n; i++)
            if (strlist_push(&batch, b->changed.items[b->changed.len - 1 - i])) break;
        for (size_t i = 0; i < batch.len; i++)
            free(b->changed.items[--b->changed.len]);
        pthread_mutex_unlock(&b->lock);
        if (!batch.len) return;
        uint64_t *bytes = calloc(batch.len, sizeof(*bytes));
        for (size_t i = 0; bytes && i < batch.len; i++)
            bytes[i] = evict_count(b->dir, stores, batch.items[i]);
        pthread_mutex_lock(&b->lock);
        for (size_t i = 0; i < batch.len; i++) {
            struct entry *e = strmap_get(&b->entries, batch.items[i]);
            if (!e) continue;
            e->queued = false;
            b->stored -= e->bytes;
            e->bytes = bytes ? bytes[i] : 0;
            b->stored += e->bytes;
            forget_if_idle(b, batch.items[i], e);
        }
        pthread_mutex_unlock(&b->lock);
        free(bytes);
        strlist_free(&batch);
    }
}

static void found_at_scan(const char *hex, int64_t last_use_ms, void *ctx)
{
    struct cache_budget *b = ctx;
    pthread_mutex_lock(&b->lock);
    bool known = strmap_get(&b->entries, hex) != NULL;
    struct entry *e = known ? NULL : get_or_make(b, hex);
    if (e) e->last_use = last_use_ms; /* known ones were used in this mount: later */
    pthread_mutex_unlock(&b->lock);
}

/* Once per mount, when the bound first needs it: every stored blob gets an entry. */
static void scan_once(struct cache_budget *b, struct strlist *stores)
{
    if (b->scanned) return;
    b->scanned = true;
    evict_scan(b->dir, stores, found_at_scan, b, &b->stop);
    count_changed(b, stores);
    pthread_mutex_lock(&b->lock);
    log_info("cache: %zu blobs, %llu bytes stored in %s", b->entries.len,
             (unsigned long long)b->stored, b->dir);
    pthread_mutex_unlock(&b->lock);
}

/* Bytes to free now: over max_size (stored + downloading), or short of min_free. */
static uint64_t bytes_to_free(struct cache_budget *b, const char **why)
{
    uint64_t need = 0;
    *why = NULL;
    pthread_mutex_lock(&b->lock);
    uint64_t used = b->stored + b->reserved;
    pthread_mutex_unlock(&b->lock);
    if (b->max_size && used > b->max_size) {
        need = used - b->max_size;
        *why = "cache_max_size";
    }
    struct statvfs vfs;
    if ((b->min_free || b->min_free_pct) && statvfs(b->dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        uint64_t want =
            b->min_free ? b->min_free
                        : (uint64_t)vfs.f_blocks * vfs.f_frsize / 100 * (uint64_t)b->min_free_pct;
        if (want > avail && want - avail > need) {
            need = want - avail;
            *why = "cache_min_free";
        }
    }
    return need;
}

struct candidate {
    char hex[SHA256_HEX_LEN + 1];
    int64_t last_use;
    uint64_t bytes;
};

static int by_last_use(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    return x->last_use < y->last_use ? -1 : x->last_use > y->last_use;
}

/* The least recently used unpinned blobs that free `need` bytes (or all there are), marked
 * `evicting`; sorted by hex for evict_remove. The sort runs outside the lock. */
static void pick_victims(struct cache_budget *b, uint64_t need, struct strlist *victims,
                         uint64_t *freed)
{
    pthread_mutex_lock(&b->lock);
    size_t cap = b->entries.len, n = 0;
    struct candidate *c = calloc(cap ? cap : 1, sizeof(*c));
    struct strmap_iter it = strmap_iter(&b->entries);
    const char *hex;
    void *value;
    while (c && n < cap && strmap_next(&it, &hex, &value)) {
        const struct entry *e = value;
        if (e->pins || e->queued || e->evicting || !e->bytes) continue;
        snprintf(c[n].hex, sizeof(c[n].hex), "%s", hex);
        c[n].last_use = e->last_use;
        c[n++].bytes = e->bytes;
    }
    pthread_mutex_unlock(&b->lock);
    if (!c) return;
    qsort(c, n, sizeof(*c), by_last_use);
    pthread_mutex_lock(&b->lock);
    *freed = 0;
    for (size_t i = 0; i < n && *freed < need; i++) {
        struct entry *e = strmap_get(&b->entries, c[i].hex);
        if (!e || e->pins || e->queued || e->evicting) continue; /* in use meanwhile */
        if (strlist_push(victims, c[i].hex)) break;
        e->evicting = true;
        *freed += e->bytes;
    }
    pthread_mutex_unlock(&b->lock);
    free(c);
    strlist_sort_unique(victims);
}

/* After the files went: the victims are forgotten, and pins waiting for them go on. (A victim
 * cannot be pinned meanwhile: budget_pin waits; one changed meanwhile is counted again.) */
static void finish_victims(struct cache_budget *b, const struct strlist *victims)
{
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < victims->len; i++) {
        struct entry *e = strmap_get(&b->entries, victims->items[i]);
        if (!e) continue;
        e->evicting = false;
        b->stored -= e->bytes;
        e->bytes = 0;
        forget_if_idle(b, victims->items[i], e);
    }
    pthread_cond_broadcast(&b->evicted);
    pthread_mutex_unlock(&b->lock);
}

/* One round: count what changed, then evict what the bound asks for. */
static void round_once(struct cache_budget *b)
{
    struct strlist stores = STRLIST_INIT;
    evict_list_stores(b->dir, &stores);
    if (b->max_size) scan_once(b, &stores); /* the size bound needs the total from the start */
    count_changed(b, &stores);
    const char *why;
    uint64_t need = bytes_to_free(b, &why);
    if (need && !b->scanned) {
        scan_once(b, &stores);
        need = bytes_to_free(b, &why);
    }
    struct strlist victims = STRLIST_INIT;
    uint64_t freed = 0;
    if (need) pick_victims(b, need, &victims, &freed);
    if (victims.len) {
        evict_remove(b->dir, &stores, &victims);
        finish_victims(b, &victims);
        pthread_mutex_lock(&b->lock);
        log_info("cache: evicted %zu blobs (%llu bytes), least recently used first, for %s; "
                 "%llu bytes stored, %llu downloading",
                 victims.len, (unsigned long long)freed, why, (unsigned long long)b->stored,
                 (unsigned long long)b->reserved);
        pthread_mutex_unlock(&b->lock);
    }
    int64_t now = wall_ms();
    if (need > freed && now - b->warned_ms > 60000) {
        b->warned_ms = now;
        log_warn("cache: %s wants %llu bytes more freed, but the other blobs are in use", why,
                 (unsigned long long)(need - freed));
    }
    strlist_free(&victims);
    strlist_free(&stores);
}

static void *budget_thread(void *arg)
{
    struct cache_budget *b = arg;
    pthread_mutex_lock(&b->lock);
    while (!b->stop) {
        pthread_mutex_unlock(&b->lock);
        round_once(b);
        pthread_mutex_lock(&b->lock);
        if (b->stop || b->changed.len) continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IDLE_WAKE_MS / 1000;
        pthread_cond_timedwait(&b->wake, &b->lock, &until);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int budget_start(struct cache_budget *b)
{
    if (!b || b->running) return 0;
    int rc = pthread_create(&b->thread, NULL, budget_thread, b);
    if (rc) return -rc;
    b->running = true;
    return 0;
}

static void free_entry(void *e)
{
    free(e);
}

void budget_free(struct cache_budget *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->lock);
    __atomic_store_n(&b->stop, true, __ATOMIC_RELEASE);
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (b->running) pthread_join(b->thread, NULL);
    strmap_clear(&b->entries, free_entry);
    strlist_free(&b->changed);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
    pthread_cond_destroy(&b->evicted);
    free(b);
}
