#include "fs/file_handle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/archive_file.h"
#include "fs/backend.h"
#include "fs/host.h"
#include "fs/readahead.h"

static int open_blob(const struct node *n, struct open_file *fh)
{
    struct blob_source src;
    int rc = readahead_blob_source(n->host, n->repo, n->ref, n->entry->hex, n->view, &src);
    if (rc) return rc;
    rc = blobcache_open(n->host->blobs, n->entry->hex, n->entry->size, &src, &fh->reader);
    /* remembered as being read (closed in file_handle_close) */
    if (rc == 0 && n->host->readahead)
        readahead_blob_opened(n->host->readahead, n->host, n->repo, n->ref, n->view);
    return rc;
}

static int open_published(const struct node *n, struct open_file *fh)
{
    fh->entry = n->entry;
    fh->view = n->view;
    image_view_hold(fh->view);
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

/* An empty handle of host and repo; bytes may hold up to limit (0: nothing is held). */
static struct open_file *new_handle(struct host *host, const char *repo, size_t limit)
{
    struct open_file *fh = calloc(1, sizeof(*fh));
    if (!fh) return NULL;
    buf_init(&fh->bytes, limit);
    fh->host = host;
    snprintf(fh->repo, sizeof(fh->repo), "%s", repo);
    return fh;
}

/* The handle of an open that went well, or closes it. */
static int handle_result(struct open_file *fh, int rc, struct open_file **out)
{
    if (rc) {
        file_handle_close(fh);
        return rc;
    }
    *out = fh;
    return 0;
}

int file_handle_open_staged(struct stage *s, struct staged_file *f, bool writable,
                            struct open_file **out)
{
    struct open_file *fh = new_handle(s->host, s->repo, 0);
    if (!fh) return -ENOMEM;
    fh->stage = s;
    stage_hold(s);
    fh->sfile = f;
    staged_file_hold(s, f);
    if ((fh->writable = writable)) staged_file_writer_begin(f);
    *out = fh;
    return 0;
}

bool file_handle_end_write(struct open_file *fh)
{
    if (!fh || !fh->sfile || !fh->writable) return false;
    fh->writable = false;
    staged_file_writer_end(fh->sfile);
    return true;
}

/* A staged reference (a blob copied or linked within the registry: no local bytes) is read
 * as the blob it names, through the cache (diff -r of a tag copied a moment ago). */
static int open_staged_ref(const struct node *n, const struct staged_file *f,
                           struct open_file **out)
{
    struct open_file *fh = new_handle(n->host, f->ref_repo, 0);
    if (!fh) return -ENOMEM;
    struct blob_source src;
    int rc = readahead_blob_source(n->host, f->ref_repo, NULL, f->ref_hex, NULL, &src);
    if (rc == 0) rc = blobcache_open(n->host->blobs, f->ref_hex, f->size, &src, &fh->reader);
    return handle_result(fh, rc, out);
}

static int open_staged_node(const struct node *n, bool writable, struct open_file **out)
{
    struct staged_file *f = staged_file_get(n->stage, n->sfile->name);
    if (!f) return -ENOENT;
    int rc = !writable && f->is_ref ? open_staged_ref(n, f, out)
                                    : file_handle_open_staged(n->stage, f, writable, out);
    staged_file_put(n->stage, f);
    return rc;
}

static int open_archive(const struct node *n, struct open_file **out)
{
    struct open_file *fh = new_handle(n->host, n->repo, 0);
    if (!fh) return -ENOMEM;
    int rc = archive_file_open(n->host, n->repo, n->ref, n->archive, &fh->archive);
    return handle_result(fh, rc, out);
}

int file_handle_open(const struct node *n, bool writable, struct open_file **out)
{
    if (n->sfile) return open_staged_node(n, writable, out);
    if (writable) return -EROFS;
    if (n->kind == NODE_ARCHIVE) return open_archive(n, out);
    struct open_file *fh = new_handle(n->host, n->repo, MANIFEST_MAX_BYTES);
    if (!fh) return -ENOMEM;
    int rc = n->kind == NODE_OCI_FILE && !n->entry ? oci_view_bytes(n, &fh->bytes)
                                                   : open_published(n, fh);
    return handle_result(fh, rc, out);
}

ssize_t file_handle_read(struct open_file *fh, char *buf, size_t size, uint64_t off)
{
    if (fh->sfile) return stage_file_read(fh->sfile, buf, size, off);
    if (fh->archive) return archive_file_read(fh->archive, buf, size, off);
    if (fh->reader) {
        /* the first read, not the open: cp within the mount and stat-like opens fetch nothing */
        if (!fh->read_started && fh->host->readahead) {
            fh->read_started = true;
            readahead_blob_read(fh->host->readahead, fh->host, fh->repo, fh->view);
        }
        return blobcache_pread(fh->reader, buf, size, off);
    }
    if (off >= fh->bytes.len) return 0;
    size_t n = fh->bytes.len - off < size ? fh->bytes.len - off : size;
    memcpy(buf, fh->bytes.data + off, n);
    return (ssize_t)n;
}

void file_handle_close(struct open_file *fh)
{
    if (!fh) return;
    if (fh->sfile) {
        file_handle_end_write(fh);
        staged_file_put(fh->stage, fh->sfile);
    }
    stage_put(fh->stage);
    archive_file_close(fh->archive);
    if (fh->reader && fh->host->readahead)
        readahead_blob_closed(fh->host->readahead, fh->host, fh->repo, fh->view);
    blobcache_close(fh->reader);
    image_view_put(fh->view);
    buf_free(&fh->bytes);
    free(fh);
}
