/* libcurl's process-wide state, and the per-registry pool of easy handles sharing DNS and
 * TLS sessions. */
#include "transport/http_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/slots.h"
#include "transport/registry.h"

#define POOL_IDLE_MAX 32 /* idle handles kept; more than FUSE + download threads is waste */

/* Locks: lock guards idle/n_idle; share_locks are libcurl's, one per data kind; the slots
 * have their own locks. None is held while another is taken. */
struct http_pool {
    pthread_mutex_t lock;
    CURL *idle[POOL_IDLE_MAX];
    size_t n_idle;
    CURLSH *share;
    pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
    bool tls_verify;
    const struct tls_certs *certs;
    int aborted;            /* atomic: the mount is ending, every request stops */
    long timeout_ms;        /* -o timeout, read-only once requests run */
    int retries;            /* -o retries, likewise */
    struct slots downloads; /* blob GETs under way (-o max_transfers) */
    struct slots uploads;   /* blob upload bodies under way: separate, because an upload may
                               wait for the bytes of a download (registry to registry) */
};

/* ---- process-wide libcurl state ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init_once(void)
{
    CURLcode cc = curl_global_init(CURL_GLOBAL_ALL);
    if (cc != CURLE_OK) {
        log_error("libcurl initialisation failed: %s", curl_easy_strerror(cc));
        global_rc = -EIO;
    }
}

int transport_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

void transport_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- the pool ---- */

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userp)
{
    (void)handle;
    (void)access; /* one mutex per data kind: shared and exclusive locks alike */
    struct http_pool *pool = userp;
    if ((unsigned)data < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&pool->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userp)
{
    (void)handle;
    struct http_pool *pool = userp;
    if ((unsigned)data < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&pool->share_locks[data]);
}

static CURLSH *share_new(struct http_pool *pool)
{
    CURLSH *sh = curl_share_init();
    if (!sh) return NULL;
    /* the connection cache stays per handle: sharing it across threads serialises them */
    if (curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_USERDATA, pool) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        curl_share_cleanup(sh);
        return NULL;
    }
    return sh;
}

int http_pool_new(bool tls_verify, struct http_pool **out)
{
    int rc = transport_global_init();
    if (rc) return rc;
    struct http_pool *pool = calloc(1, sizeof(*pool));
    if (!pool) return -ENOMEM;
    pthread_mutex_init(&pool->lock, NULL);
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&pool->share_locks[i], NULL);
    pool->tls_verify = tls_verify;
    pool->timeout_ms = HTTP_DEFAULT_TIMEOUT_S * 1000L;
    pool->retries = HTTP_DEFAULT_RETRIES;
    slots_init(&pool->downloads, HTTP_DEFAULT_TRANSFERS);
    slots_init(&pool->uploads, HTTP_DEFAULT_TRANSFERS);
    pool->share = share_new(pool);
    if (!pool->share) {
        http_pool_free(pool);
        return -ENOMEM;
    }
    *out = pool;
    return 0;
}

void http_pool_free(struct http_pool *pool)
{
    if (!pool) return;
    /* handles first: the share cannot be cleaned up while handles use it */
    for (size_t i = 0; i < pool->n_idle; i++)
        curl_easy_cleanup(pool->idle[i]);
    if (pool->share) curl_share_cleanup(pool->share);
    for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&pool->share_locks[i]);
    slots_destroy(&pool->downloads);
    slots_destroy(&pool->uploads);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

CURL *http_pool_acquire(struct http_pool *pool)
{
    CURL *h = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->n_idle) h = pool->idle[--pool->n_idle];
    pthread_mutex_unlock(&pool->lock);
    if (h) return h;
    h = curl_easy_init();
    if (h && curl_easy_setopt(h, CURLOPT_SHARE, pool->share) != CURLE_OK) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

/* curl_easy_reset keeps the live connection, DNS and TLS caches and the share, and drops
 * every pointer into the finished request's stack frame. */
void http_pool_release(struct http_pool *pool, CURL *h)
{
    curl_easy_reset(h);
    pthread_mutex_lock(&pool->lock);
    if (pool->n_idle < POOL_IDLE_MAX) {
        pool->idle[pool->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    if (h) curl_easy_cleanup(h);
}

bool http_pool_tls_verify(const struct http_pool *pool)
{
    return pool->tls_verify;
}

void http_pool_set_certs(struct http_pool *pool, const struct tls_certs *certs)
{
    pool->certs = certs;
}

const struct tls_certs *http_pool_certs(const struct http_pool *pool)
{
    return pool->certs;
}

void http_pool_set_max_transfers(struct http_pool *pool, int n)
{
    slots_resize(&pool->downloads, n);
    slots_resize(&pool->uploads, n);
}

struct slots *http_pool_transfer_slots(struct http_pool *pool, bool upload)
{
    return upload ? &pool->uploads : &pool->downloads;
}

void http_pool_set_limits(struct http_pool *pool, int timeout_s, int retries)
{
    pool->timeout_ms = (timeout_s > 0 ? timeout_s : HTTP_DEFAULT_TIMEOUT_S) * 1000L;
    pool->retries = retries < 0 ? 0 : retries > HTTP_MAX_RETRIES ? HTTP_MAX_RETRIES : retries;
}

long http_pool_timeout_ms(const struct http_pool *pool)
{
    return pool->timeout_ms;
}

int http_pool_retries(const struct http_pool *pool)
{
    return pool->retries;
}

void http_pool_abort(struct http_pool *pool)
{
    __atomic_store_n(&pool->aborted, 1, __ATOMIC_RELEASE);
}

bool http_pool_aborted(const struct http_pool *pool)
{
    return __atomic_load_n(&pool->aborted, __ATOMIC_ACQUIRE) != 0;
}
