#include "fs/host_meta.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/blobcache.h"
#include "cache/storage.h"
#include "common/log.h"
#include "fs/backend.h"
#include "fs/image_view.h"

#define BACKOFF_FIRST_S 5
#define BACKOFF_MAX_S 60
/* A caller that has a stale answer waits this long for a refresh before it is served the stale
 * answer: a healthy registry answers well within it, and a stalled one cannot hold a FUSE
 * request (and so the process that made it, even SIGKILLed) for the transport's timeouts. */
#define REFRESH_PATIENCE_MS 2000
/* What an entry costs beyond its strings: the map's entry, the key's and the struct's chunks */
#define META_OVERHEAD 96

static char sync_mark; /* h->meta.inflight value of a refresh run by its caller */

/* A refresh run in a thread of its own, so that its caller can stop waiting for it. */
struct job {
    struct host *h;
    struct meta_req r;
    bool probe;
    bool slow; /* under h->meta.lock: counted in h->meta.slow */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void meta_req_catalog(struct meta_req *r)
{
    memset(r, 0, sizeof(*r));
    r->kind = META_LIST;
    snprintf(r->key, sizeof(r->key), "C");
}

void meta_req_tags(struct meta_req *r, const char *repo)
{
    memset(r, 0, sizeof(*r));
    r->kind = META_LIST;
    snprintf(r->repo, sizeof(r->repo), "%s", repo);
    snprintf(r->key, sizeof(r->key), "T%s", repo);
}

void meta_req_tag(struct meta_req *r, const char *repo, const char *tag)
{
    memset(r, 0, sizeof(*r));
    r->kind = META_TAG;
    snprintf(r->repo, sizeof(r->repo), "%s", repo);
    snprintf(r->tag, sizeof(r->tag), "%s", tag);
    snprintf(r->key, sizeof(r->key), "R%s:%s", repo, tag);
}

/* ---- entries and their LRU order (h->meta.lock held) ---- */

static struct meta *meta_new(enum meta_kind kind, const char *key)
{
    struct meta *m = calloc(1, sizeof(*m));
    if (m && !(m->key = strdup(key))) {
        free(m);
        m = NULL;
    }
    if (m) {
        m->kind = kind;
        m->bytes = sizeof(*m) + strlen(key) + 1 + META_OVERHEAD;
    }
    return m;
}

static void meta_free(struct meta *m)
{
    if (!m) return;
    packlist_free(&m->list);
    image_view_put(m->view);
    free(m->key);
    free(m);
}

static void lru_unlink(struct host *h, struct meta *m)
{
    if (m->newer)
        m->newer->older = m->older;
    else
        h->meta.lru_newest = m->older;
    if (m->older)
        m->older->newer = m->newer;
    else
        h->meta.lru_oldest = m->newer;
    m->newer = m->older = NULL;
}

static void lru_push_newest(struct host *h, struct meta *m)
{
    m->newer = NULL;
    m->older = h->meta.lru_newest;
    if (h->meta.lru_newest) h->meta.lru_newest->newer = m;
    h->meta.lru_newest = m;
    if (!h->meta.lru_oldest) h->meta.lru_oldest = m;
}

static void touch_locked(struct host *h, struct meta *m)
{
    lru_unlink(h, m);
    lru_push_newest(h, m);
}

static void drop_locked(struct host *h, struct meta *m)
{
    strmap_remove(&h->meta.items, m->key);
    lru_unlink(h, m);
    h->meta.bytes -= m->bytes;
    meta_free(m);
}

static void evict_locked(struct host *h)
{
    while (h->meta.bytes > HOST_META_BUDGET && h->meta.lru_oldest)
        drop_locked(h, h->meta.lru_oldest);
}

/* Puts m in place of its key's entry. false (m not kept: the caller still owns it) when m
 * alone is over the budget: it serves the call that fetched it only. */
static bool insert_locked(struct host *h, struct meta *m)
{
    struct meta *old = strmap_get(&h->meta.items, m->key);
    if (old) drop_locked(h, old);
    if (m->bytes > HOST_META_BUDGET) {
        log_warn("%s: %s takes %zu KiB, more than the %u MiB metadata budget: not cached", h->name,
                 m->key + 1, m->bytes >> 10, HOST_META_BUDGET >> 20);
        return false;
    }
    if (strmap_set(&h->meta.items, m->key, m, NULL)) return false;
    lru_push_newest(h, m);
    h->meta.bytes += m->bytes;
    return true;
}

void meta_forget(struct host *h, const char *key)
{
    pthread_mutex_lock(&h->meta.lock);
    struct meta *m = strmap_get(&h->meta.items, key);
    if (m) drop_locked(h, m);
    pthread_mutex_unlock(&h->meta.lock);
}

/* ---- the back-off (h->meta.lock held) ---- */

/* The registry did not answer at all (as opposed to answering no, answering wrongly, or us
 * failing). Asked in the thread that made the call, right after it; a storage tree always
 * answers. */
static bool is_outage(const struct host *h, int rc)
{
    return rc && !h->local_root && registry_last_unanswered();
}

static bool is_answer(int rc)
{
    return rc == 0 || rc == -ENOENT || rc == -ENOTSUP || rc == -EACCES;
}

static int gate_locked(struct host *h, bool *probe)
{
    *probe = false;
    if (h->meta.slow > 0) return h->meta.outage_rc ? h->meta.outage_rc : -EIO;
    if (h->meta.backoff_s == 0) return 0;
    if (h->meta.probing || now_ms() < h->meta.retry_at_ms) return h->meta.outage_rc;
    h->meta.probing = true; /* the one attempt of this window: everyone else keeps waiting */
    *probe = true;
    return 0;
}

static void record_locked(struct host *h, const char *what, int rc, bool probe)
{
    if (probe) h->meta.probing = false;
    if (is_answer(rc)) {
        if (h->meta.backoff_s) log_info("%s: the registry answers again", h->name);
        h->meta.backoff_s = 0;
        h->meta.retry_at_ms = 0;
        return;
    }
    int64_t now = now_ms();
    if (!is_outage(h, rc) || now < h->meta.retry_at_ms)
        return; /* an answer, or a concurrent failure set the window */
    h->meta.backoff_s = h->meta.backoff_s ? h->meta.backoff_s * 2 : BACKOFF_FIRST_S;
    if (h->meta.backoff_s > BACKOFF_MAX_S) h->meta.backoff_s = BACKOFF_MAX_S;
    h->meta.retry_at_ms = now + h->meta.backoff_s * 1000;
    h->meta.outage_rc = rc;
    log_warn("%s: refresh of %s failed (%s); serving cached answers, no request for %d s", h->name,
             what, strerror(-rc), h->meta.backoff_s);
}

int meta_gate(struct host *h, bool *probe)
{
    pthread_mutex_lock(&h->meta.lock);
    int rc = gate_locked(h, probe);
    pthread_mutex_unlock(&h->meta.lock);
    return rc;
}

void meta_record(struct host *h, const char *what, int rc, bool probe)
{
    pthread_mutex_lock(&h->meta.lock);
    record_locked(h, what, rc, probe);
    pthread_mutex_unlock(&h->meta.lock);
}

/* ---- fetching (unlocked) ---- */

/*
 * glibc keeps freed chunks in per-thread arenas, and FUSE threads take turns listing: without
 * this each arena grows to a whole listing's peak (the transport's pages, our copy, readdir's
 * entries), and RSS to several of them. Called before each burst of a listing's allocations,
 * it gives back what the previous listing freed, wherever it was.
 */
void meta_trim(void)
{
    malloc_trim(0);
}

int host_store_manifest(struct host *h, const char *digest, const struct buf *body)
{
    int rc = blobcache_put_small(h->blobs, digest + strlen(DIGEST_PREFIX), body->data, body->len);
    if (rc) log_warn("%s: cannot cache manifest %s: %s", h->name, digest, strerror(-rc));
    return rc;
}

/* A registry's "no such repository" / "no catalog" is an answer, kept like a list. */
static int fetch_list(struct host *h, const struct meta_req *r, struct meta *m)
{
    struct strlist items = STRLIST_INIT;
    meta_trim(); /* before the transport's copies: see meta_trim */
    int rc = *r->repo ? backend_tags(h, r->repo, &items) : backend_catalog(h, &items);
    if (rc == 0) {
        strlist_sort_unique(&items);
        rc = packlist_from(&items, &m->list);
        m->bytes += packlist_bytes(&m->list);
    } else if (rc == -ENOENT || rc == -ENOTSUP) {
        m->status = rc;
        rc = 0;
    }
    strlist_free(&items);
    return rc;
}

static int fetch_tag(struct host *h, const struct meta_req *r, struct meta *m)
{
    struct buf body;
    buf_init(&body, MANIFEST_MAX_BYTES);
    int rc = backend_get_manifest(h, r->repo, r->tag, &body, m->digest);
    const char *hex = m->digest + strlen(DIGEST_PREFIX);
    if (rc == 0 && !h->local_root) {
        blobcache_pin(h->blobs, hex); /* not evicted between storing it and linking the tag */
        if (host_store_manifest(h, m->digest, &body) == 0)
            storage_link_tag(blobcache_root(h->blobs), r->repo, r->tag, hex);
        blobcache_unpin(h->blobs, hex);
    }
    buf_free(&body);
    return rc;
}

/* The answer to r in a new entry (*out), or an error and no entry. */
static int fetch(struct host *h, const struct meta_req *r, struct meta **out)
{
    *out = NULL;
    struct meta *m = meta_new(r->kind, r->key);
    if (!m) return -ENOMEM;
    int rc = r->kind == META_LIST ? fetch_list(h, r, m) : fetch_tag(h, r, m);
    if (rc)
        meta_free(m);
    else
        *out = m;
    return rc;
}

/*
 * Ends a refresh under h->meta.lock: wakes the waiters, records the outcome for the back-off, keeps
 * a fresh answer (*kept: it is in the map now). A registry that no longer knows the item drops
 * the stale entry; one that did not answer leaves it to be served meanwhile.
 */
static void finish_locked(struct host *h, const struct meta_req *r, struct meta *fresh, int rc,
                          bool probe, bool *kept)
{
    *kept = false;
    strmap_remove(&h->meta.inflight, r->key);
    pthread_cond_broadcast(&h->meta.refreshed);
    record_locked(h, r->key + 1, rc, probe);
    if (rc == 0) {
        fresh->fetched_at = time(NULL);
        *kept = insert_locked(h, fresh);
    } else if (!is_outage(h, rc)) {
        struct meta *old = strmap_get(&h->meta.items, r->key);
        if (old) drop_locked(h, old);
    }
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    struct host *h = j->h;
    struct meta *fresh;
    int rc = fetch(h, &j->r, &fresh);
    pthread_mutex_lock(&h->meta.lock);
    if (j->slow) h->meta.slow--;
    bool kept;
    finish_locked(h, &j->r, fresh, rc, j->probe, &kept);
    if (!kept) meta_free(fresh);
    evict_locked(h);
    h->meta.jobs--;
    pthread_cond_broadcast(&h->meta.refreshed); /* meta_destroy may be waiting for the last job */
    pthread_mutex_unlock(&h->meta.lock);
    free(j);
    return NULL;
}

/* Starts r's refresh in a thread and waits for it a little (h->meta.lock held). false when no
 * thread could be started. */
static bool refresh_in_background(struct host *h, const struct meta_req *r, bool probe)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j) return false;
    *j = (struct job){.h = h, .r = *r, .probe = probe};
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool started = strmap_set(&h->meta.inflight, r->key, j, NULL) == 0;
    if (started && pthread_create(&tid, &attr, job_main, j) != 0) {
        strmap_remove(&h->meta.inflight, r->key);
        started = false;
    }
    pthread_attr_destroy(&attr);
    if (!started) {
        free(j);
        return false;
    }
    h->meta.jobs++;
    int64_t deadline = now_ms() + REFRESH_PATIENCE_MS;
    struct timespec until = {deadline / 1000, (deadline % 1000) * 1000000L};
    while (strmap_get(&h->meta.inflight, r->key) == j &&
           pthread_cond_timedwait(&h->meta.refreshed, &h->meta.lock, &until) != ETIMEDOUT)
        ;
    if (strmap_get(&h->meta.inflight, r->key) == j && !j->slow) {
        j->slow = true; /* until it ends, nothing else asks: the registry is not answering */
        h->meta.slow++;
        log_warn("%s: no answer for %s within %d ms; serving cached answers until it comes",
                 h->name, r->key + 1, REFRESH_PATIENCE_MS);
    }
    return true;
}

/* Refreshes r in the caller's thread (h->meta.lock held, released meanwhile) and uses the answer.
 */
static int refresh_here(struct host *h, const struct meta_req *r, bool probe, meta_use_fn use,
                        void *ctx)
{
    strmap_set(&h->meta.inflight, r->key, &sync_mark, NULL); /* on ENOMEM, others just ask too */
    pthread_mutex_unlock(&h->meta.lock);
    struct meta *fresh;
    int rc = fetch(h, r, &fresh);
    pthread_mutex_lock(&h->meta.lock);
    bool kept;
    finish_locked(h, r, fresh, rc, probe, &kept);
    if (rc == 0) rc = use(fresh, ctx);
    if (!kept) meta_free(fresh);
    evict_locked(h);
    return rc;
}

int meta_with(struct host *h, const struct meta_req *r, meta_use_fn use, void *ctx)
{
    pthread_mutex_lock(&h->meta.lock);
    int rc;
    struct meta *m;
    bool refreshed = false; /* once: with ttl 0 even a fresh answer is stale at once */
    for (;;) {
        m = strmap_get(&h->meta.items, r->key);
        if (m && (refreshed || time(NULL) - m->fetched_at < h->cfg->ttl)) break;
        if (strmap_get(&h->meta.inflight, r->key)) {
            if (m) break; /* one refresh per item: the others get the stale answer */
            pthread_cond_wait(&h->meta.refreshed, &h->meta.lock);
            continue;
        }
        bool probe;
        rc = gate_locked(h, &probe);
        if (rc && m) break; /* within the back-off window: stale at local speed */
        if (rc) goto out;
        if (m && refresh_in_background(h, r, probe)) {
            refreshed = true;
            continue; /* look again */
        }
        rc = refresh_here(h, r, probe, use, ctx);
        goto out;
    }
    touch_locked(h, m);
    rc = use(m, ctx);
out:
    pthread_mutex_unlock(&h->meta.lock);
    return rc;
}

/* ---- views (immutable: no refresh, only eviction) ---- */

struct image_view *meta_view_get(struct host *h, const char *hex)
{
    char key[META_KEY_MAX];
    snprintf(key, sizeof(key), "V%s", hex);
    struct image_view *v = NULL;
    pthread_mutex_lock(&h->meta.lock);
    struct meta *m = strmap_get(&h->meta.items, key);
    if (m) {
        touch_locked(h, m);
        v = m->view;
        image_view_hold(v);
    }
    pthread_mutex_unlock(&h->meta.lock);
    return v;
}

struct image_view *meta_view_keep(struct host *h, struct image_view *v, size_t bytes)
{
    char key[META_KEY_MAX];
    snprintf(key, sizeof(key), "V%s", v->hex);
    struct meta *m = meta_new(META_VIEW, key);
    struct image_view *use = v;
    pthread_mutex_lock(&h->meta.lock);
    struct meta *existing = strmap_get(&h->meta.items, key);
    if (existing) {
        use = existing->view; /* built twice concurrently: everyone shares the first */
        image_view_hold(use);
    } else if (m) {
        image_view_hold(v); /* the entry's */
        m->view = v;
        m->bytes += bytes;
        if (insert_locked(h, m)) m = NULL;
        evict_locked(h);
    }
    pthread_mutex_unlock(&h->meta.lock);
    meta_free(m); /* not kept: drops the entry's reference */
    if (use != v) image_view_put(v);
    return use;
}

/* Listing memory is freed soon but in whichever thread's arena it was made: with one arena per
 * FUSE thread, RSS held several listings' peaks (12 x 120 000 tags: 97 MiB; 2 arenas: 69 MiB;
 * 1 arena: 54 MiB). Blob bytes never go through malloc (pages of the partial file), so one
 * arena costs little contention. Process-wide, set once, before the FUSE threads start. */
static void limit_arenas(void)
{
    mallopt(M_ARENA_MAX, 1);
}

void meta_init(struct host *h)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, limit_arenas);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&h->meta.lock, NULL);
    pthread_cond_init(&h->meta.refreshed, &attr);
    pthread_condattr_destroy(&attr);
    strmap_init(&h->meta.items);
    strmap_init(&h->meta.inflight);
}

void meta_destroy(struct host *h)
{
    pthread_mutex_lock(&h->meta.lock);
    while (h->meta.jobs > 0) /* they use h->reg: bounded by the transport's timeouts */
        pthread_cond_wait(&h->meta.refreshed, &h->meta.lock);
    while (h->meta.lru_oldest)
        drop_locked(h, h->meta.lru_oldest);
    pthread_mutex_unlock(&h->meta.lock);
    strmap_clear(&h->meta.items, NULL);
    strmap_clear(&h->meta.inflight, NULL);
    pthread_cond_destroy(&h->meta.refreshed);
    pthread_mutex_destroy(&h->meta.lock);
}
