#include "fs/archive_file.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "fs/archive_view.h"
#include "fs/host.h"
#include "fs/readahead.h"

struct archive_file {
    struct host *host;
    char repo[REF_NAME_MAX + 1];
    char tag[REF_TAG_MAX + 1];
    struct archive_view *view;
    pthread_mutex_t lock; /* guards what follows: reads of one handle take turns */
    bool read_started;
    size_t member;              /* whose blob reader is open */
    struct blob_reader *reader; /* or NULL */
};

int archive_file_open(struct host *h, const char *repo, const char *tag, struct archive_view *a,
                      struct archive_file **out)
{
    struct archive_file *f = calloc(1, sizeof(*f));
    if (!f) return -ENOMEM;
    f->host = h;
    snprintf(f->repo, sizeof(f->repo), "%s", repo);
    snprintf(f->tag, sizeof(f->tag), "%s", tag);
    pthread_mutex_init(&f->lock, NULL);
    f->view = a;
    archive_view_hold(a);
    if (h->readahead) readahead_blob_opened(h->readahead, h, repo, tag, a->image);
    *out = f;
    return 0;
}

static int open_member(struct archive_file *f, size_t index)
{
    const struct tar_member *m = &f->view->layout.members[index];
    blobcache_close(f->reader);
    f->reader = NULL;
    struct blob_source src;
    int rc = readahead_blob_source(f->host, f->repo, f->tag, m->hex, f->view->image, &src);
    if (rc == 0) rc = blobcache_open(f->host->blobs, m->hex, m->size, &src, &f->reader);
    if (rc == 0) f->member = index;
    return rc;
}

/* tar_layout_read's blob reader: called with f->lock held. */
static ssize_t read_blob(void *ctx, size_t index, char *buf, size_t size, uint64_t off)
{
    struct archive_file *f = ctx;
    if (!f->reader || f->member != index) {
        int rc = open_member(f, index);
        if (rc) return rc;
    }
    if (!f->read_started && f->host->readahead) {
        f->read_started = true; /* the first blob read, not the open nor a header's */
        readahead_blob_read(f->host->readahead, f->host, f->repo, f->view->image);
    }
    return blobcache_pread(f->reader, buf, size, off);
}

ssize_t archive_file_read(struct archive_file *f, char *buf, size_t size, uint64_t off)
{
    pthread_mutex_lock(&f->lock);
    ssize_t n = tar_layout_read(&f->view->layout, buf, size, off, read_blob, f);
    pthread_mutex_unlock(&f->lock);
    return n;
}

void archive_file_close(struct archive_file *f)
{
    if (!f) return;
    blobcache_close(f->reader);
    if (f->host->readahead)
        readahead_blob_closed(f->host->readahead, f->host, f->repo, f->view->image);
    archive_view_put(f->view);
    pthread_mutex_destroy(&f->lock);
    free(f);
}
