#include "fs/file_handle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/backend.h"
#include "fs/host.h"

/* What the download thread needs to reach the registry; owned by the cache once handed over. */
struct blob_fetch {
    struct host *host;
    char repo[REF_NAME_MAX + 1];
    char digest[DIGEST_STR_LEN + 1];
};

static int fetch_blob(void *arg, uint64_t offset, blobcache_sink_fn sink, void *sink_ctx)
{
    struct blob_fetch *f = arg;
    return backend_get_blob(f->host, f->repo, f->digest, offset, sink, sink_ctx);
}

static int open_blob(const struct node *n, struct open_file *fh)
{
    struct blob_fetch *f = malloc(sizeof(*f));
    if (!f) return -ENOMEM;
    f->host = n->host;
    snprintf(f->repo, sizeof(f->repo), "%s", n->repo);
    snprintf(f->digest, sizeof(f->digest), DIGEST_PREFIX "%s", n->entry->hex);
    struct blob_source src = {.fetch = fetch_blob,
                              .arg = f,
                              .free_arg = free,
                              .layer_repo = n->host->local_root ? NULL : f->repo};
    return blobcache_open(n->host->blobs, n->entry->hex, n->entry->size, &src, &fh->reader);
}

static int open_published(const struct node *n, struct open_file *fh)
{
    fh->entry = n->entry;
    fh->view = n->view;
    __atomic_add_fetch(&fh->view->refs, 1, __ATOMIC_ACQ_REL);
    switch (n->entry->kind) {
    case VE_BLOB:
        return open_blob(n, fh);
    case VE_VERSION:
        return buf_set(&fh->bytes, DIR_VERSION_TEXT, strlen(DIR_VERSION_TEXT));
    case VE_MANIFEST:
        return buf_set(&fh->bytes, n->view->manifest.data, n->view->manifest.len);
    case VE_INSTANCE: {
        char digest[DIGEST_STR_LEN + 1];
        snprintf(digest, sizeof(digest), DIGEST_PREFIX "%s", n->entry->hex);
        return host_manifest(n->host, n->repo, digest, &fh->bytes);
    }
    }
    return -EIO;
}

int file_handle_open(const struct node *n, bool writable, struct open_file **out)
{
    struct open_file *fh = calloc(1, sizeof(*fh));
    if (!fh) return -ENOMEM;
    buf_init(&fh->bytes, MANIFEST_MAX_BYTES);
    fh->host = n->host;
    snprintf(fh->repo, sizeof(fh->repo), "%s", n->repo);
    int rc = 0;
    if (n->sfile) {
        fh->stage = n->stage;
        __atomic_add_fetch(&fh->stage->refs, 1, __ATOMIC_ACQ_REL);
        fh->sfile = stage_file_get(n->stage, n->sfile->name);
        if (!fh->sfile)
            rc = -ENOENT;
        else if ((fh->writable = writable))
            __atomic_add_fetch(&fh->sfile->writers, 1, __ATOMIC_ACQ_REL);
    } else if (writable) {
        rc = -EROFS;
    } else {
        rc = open_published(n, fh);
    }
    if (rc) {
        file_handle_close(fh);
        return rc;
    }
    *out = fh;
    return 0;
}

ssize_t file_handle_read(struct open_file *fh, char *buf, size_t size, uint64_t off)
{
    if (fh->sfile) return stage_file_read(fh->sfile, buf, size, off);
    if (fh->reader) return blobcache_pread(fh->reader, buf, size, off);
    if (off >= fh->bytes.len) return 0;
    size_t n = fh->bytes.len - off < size ? fh->bytes.len - off : size;
    memcpy(buf, fh->bytes.data + off, n);
    return (ssize_t)n;
}

void file_handle_close(struct open_file *fh)
{
    if (!fh) return;
    if (fh->sfile) {
        if (fh->writable) __atomic_sub_fetch(&fh->sfile->writers, 1, __ATOMIC_ACQ_REL);
        staged_file_put(fh->stage, fh->sfile);
    }
    stage_put(fh->stage);
    blobcache_close(fh->reader);
    image_view_put(fh->view);
    buf_free(&fh->bytes);
    free(fh);
}
