#include "common/timeutil.h"
#include "fs/readahead.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/backend.h"
#include "fs/host.h"
#include "fs/image_view.h"
#include "fs/progress.h"

/* A second reader of the same image within this time starts nothing new. */
#define READAHEAD_REPEAT_MS 10000
/* An image whose last blob file was closed this long ago is no longer being read. */
#define READ_GRACE_MS 5000

void readahead_init(struct readahead *ra)
{
    pthread_mutex_init(&ra->lock, NULL);
    ra->n_recent = 0;
}

void readahead_destroy(struct readahead *ra)
{
    for (size_t i = 0; i < ra->n_recent; i++)
        image_view_put(ra->recent[i].view);
    ra->n_recent = 0;
    pthread_mutex_destroy(&ra->lock);
}

/* What the download threads need to reach the registry, and to show their progress. */
struct blob_fetch {
    struct host *host;
    char repo[REF_NAME_MAX + 1];
    char tag[REF_TAG_MAX + 1]; /* "" when the image was opened by digest */
    char digest[DIGEST_STR_LEN + 1];
    const struct image_view *image; /* compared, never dereferenced: may be gone */
    bool begun;        /* the first progress report came (even if the table had no room) */
    struct xfer *xfer; /* begun by the first progress report: the download thread's */
};

static bool image_wanted(void *arg)
{
    struct blob_fetch *f = arg;
    return f->image && f->host->readahead &&
           readahead_image_wanted(f->host->readahead, f->host, f->image);
}

static int fetch_blob(void *arg, uint64_t offset, uint64_t end, blobcache_sink_fn sink,
                      void *sink_ctx)
{
    struct blob_fetch *f = arg;
    return backend_get_blob(f->host, f->repo, f->digest, offset, end, sink, sink_ctx);
}

/* The first report comes from the download's thread before its part workers exist, so the
 * entry is begun before anyone else can look at f->xfer. */
static void fetch_progress(void *arg, uint64_t done, uint64_t size)
{
    struct blob_fetch *f = arg;
    if (f->begun) { /* once only: with a table full of running transfers xfer stays NULL */
        progress_advance(f->xfer, done);
        return;
    }
    f->begun = true;
    struct xfer_label l = {.host = f->host->name,
                           .repo = f->repo,
                           .tag = f->tag,
                           .hex = f->digest + strlen(DIGEST_PREFIX)};
    f->xfer = progress_begin(f->host->progress, XFER_DOWNLOAD, &l, done, size);
}

static void fetch_finished(void *arg, int rc)
{
    struct blob_fetch *f = arg;
    progress_end(f->xfer, rc);
    f->xfer = NULL;
}

int readahead_blob_source(struct host *h, const char *repo, const char *ref, const char *hex,
                          const struct image_view *image, struct blob_source *out)
{
    struct blob_fetch *f = calloc(1, sizeof(*f));
    if (!f) return -ENOMEM;
    f->host = h;
    snprintf(f->repo, sizeof(f->repo), "%s", repo);
    if (ref && !ref_valid_digest(ref)) snprintf(f->tag, sizeof(f->tag), "%s", ref);
    snprintf(f->digest, sizeof(f->digest), DIGEST_PREFIX "%s", hex);
    f->image = image;
    *out = (struct blob_source){.fetch = fetch_blob,
                                .arg = f,
                                .free_arg = free,
                                .layer_repo = h->local_root ? NULL : f->repo,
                                .wanted = image ? image_wanted : NULL,
                                .progress = fetch_progress,
                                .finished = fetch_finished};
    return 0;
}

/* Moves (or adds) the image to the front of the ring. With `prefetch`, true when its
 * read-ahead is due (and then it counts as done now). */
static bool remember(struct readahead *ra, struct host *h, const char *repo, const char *ref,
                     struct image_view *v, bool prefetch, int opened, char tag[REF_TAG_MAX + 1])
{
    int64_t now = monotonic_ms_now();
    pthread_mutex_lock(&ra->lock);
    size_t i = 0;
    while (i < ra->n_recent && !(ra->recent[i].host == h && ra->recent[i].view == v &&
                                 strcmp(ra->recent[i].repo, repo) == 0))
        i++;
    struct read_image item;
    if (i < ra->n_recent) {
        item = ra->recent[i];
    } else {
        if (ra->n_recent == READAHEAD_RECENT) image_view_put(ra->recent[--ra->n_recent].view);
        item = (struct read_image){.host = h, .view = v};
        snprintf(item.repo, sizeof(item.repo), "%s", repo);
        image_view_hold(v);
        i = ra->n_recent++;
    }
    /* the first tag it was opened by names it (views are shared by the tags of one digest) */
    if (ref && !ref_valid_digest(ref) && !item.tag[0])
        snprintf(item.tag, sizeof(item.tag), "%s", ref);
    bool due = prefetch && (!item.prefetched_ms || now - item.prefetched_ms >= READAHEAD_REPEAT_MS);
    if (due) item.prefetched_ms = now;
    item.open_blobs += opened;
    if (tag) memcpy(tag, item.tag, sizeof(item.tag));
    memmove(&ra->recent[1], &ra->recent[0], i * sizeof(ra->recent[0]));
    ra->recent[0] = item;
    pthread_mutex_unlock(&ra->lock);
    return due;
}

void readahead_blob_opened(struct readahead *ra, struct host *h, const char *repo, const char *ref,
                           struct image_view *v)
{
    remember(ra, h, repo, ref, v, false, 1, NULL);
}

/* Called with ra->lock held. */
static struct read_image *find_locked(struct readahead *ra, const struct host *h,
                                      const struct image_view *v)
{
    for (size_t i = 0; i < ra->n_recent; i++)
        if (ra->recent[i].host == h && ra->recent[i].view == v) return &ra->recent[i];
    return NULL;
}

void readahead_blob_closed(struct readahead *ra, struct host *h, const char *repo,
                           struct image_view *v)
{
    (void)repo;
    pthread_mutex_lock(&ra->lock);
    struct read_image *r = find_locked(ra, h, v);
    if (r && r->open_blobs > 0) r->open_blobs--;
    if (r) r->closed_ms = monotonic_ms_now();
    pthread_mutex_unlock(&ra->lock);
}

bool readahead_image_wanted(struct readahead *ra, const struct host *h, const struct image_view *v)
{
    pthread_mutex_lock(&ra->lock);
    const struct read_image *r = find_locked(ra, h, v);
    bool wanted = r && (r->open_blobs > 0 || monotonic_ms_now() - r->closed_ms < READ_GRACE_MS);
    pthread_mutex_unlock(&ra->lock);
    return wanted;
}

void readahead_blob_read(struct readahead *ra, struct host *h, const char *repo,
                         struct image_view *v)
{
    /* a storage tree is local: its blobs are read in place */
    char tag[REF_TAG_MAX + 1];
    if (h->local_root || !remember(ra, h, repo, NULL, v, true, 0, tag)) return;
    for (size_t i = 0; i < v->n_entries; i++) {
        const struct view_entry *e = &v->entries[i];
        struct blob_source src;
        if (e->kind == VE_BLOB && readahead_blob_source(h, repo, tag, e->hex, v, &src) == 0)
            blobcache_prefetch(h->blobs, e->hex, e->size, &src);
    }
}

bool readahead_source_of(struct readahead *ra, const struct host * not, const char *hex,
                         struct read_image *out)
{
    bool found = false;
    pthread_mutex_lock(&ra->lock);
    for (size_t i = 0; i < ra->n_recent && !found; i++) {
        const struct read_image *r = &ra->recent[i];
        const struct view_entry *e = r->host != not ? image_view_find(r->view, hex) : NULL;
        if (e && e->kind == VE_BLOB) {
            *out = *r;
            image_view_hold(out->view);
            found = true;
        }
    }
    pthread_mutex_unlock(&ra->lock);
    return found;
}
