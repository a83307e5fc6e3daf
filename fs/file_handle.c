#include "fs/file_handle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/host.h"

struct file_handle {
    struct blob_reader *reader; /* VE_BLOB */
    struct buf bytes;           /* everything else */
};

/* What the download thread needs to reach the registry; owned by the cache once handed over. */
struct blob_fetch {
    struct host *host;
    char repo[REF_NAME_MAX + 1];
    char digest[DIGEST_STR_LEN + 1];
};

static int fetch_blob(void *arg, uint64_t offset, blobcache_sink_fn sink, void *sink_ctx)
{
    struct blob_fetch *f = arg;
    return registry_get_blob(f->host->reg, f->repo, f->digest, offset, sink, sink_ctx);
}

static int open_blob(const struct node *n, struct file_handle *fh)
{
    struct blob_fetch *f = malloc(sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->host = n->host;
    snprintf(f->repo, sizeof(f->repo), "%s", n->repo);
    snprintf(f->digest, sizeof(f->digest), DIGEST_PREFIX "%s", n->entry->hex);
    struct blob_source src = {.fetch = fetch_blob, .arg = f, .free_arg = free};
    return blobcache_open(n->host->blobs, n->entry->hex, n->entry->size, &src, &fh->reader);
}

int file_handle_open(const struct node *n, struct file_handle **out)
{
    struct file_handle *fh = calloc(1, sizeof(*fh));
    if (!fh)
        return -ENOMEM;
    buf_init(&fh->bytes, MANIFEST_MAX_BYTES);
    int rc = 0;
    switch (n->entry->kind) {
    case VE_BLOB:
        rc = open_blob(n, fh);
        break;
    case VE_VERSION:
        rc = buf_set(&fh->bytes, DIR_VERSION_TEXT, strlen(DIR_VERSION_TEXT));
        break;
    case VE_MANIFEST:
        rc = buf_set(&fh->bytes, n->view->manifest.data, n->view->manifest.len);
        break;
    case VE_INSTANCE: {
        char digest[DIGEST_STR_LEN + 1];
        snprintf(digest, sizeof(digest), DIGEST_PREFIX "%s", n->entry->hex);
        rc = host_manifest(n->host, n->repo, digest, &fh->bytes);
        break;
    }
    }
    if (rc) {
        file_handle_close(fh);
        return rc;
    }
    *out = fh;
    return 0;
}

ssize_t file_handle_read(struct file_handle *fh, char *buf, size_t size, uint64_t off)
{
    if (fh->reader)
        return blobcache_pread(fh->reader, buf, size, off);
    if (off >= fh->bytes.len)
        return 0;
    size_t n = fh->bytes.len - off < size ? fh->bytes.len - off : size;
    memcpy(buf, fh->bytes.data + off, n);
    return (ssize_t)n;
}

void file_handle_close(struct file_handle *fh)
{
    if (!fh)
        return;
    blobcache_close(fh->reader);
    buf_free(&fh->bytes);
    free(fh);
}
