/* An open file: a blob reader or bytes held in memory (published images), or a staged file
 * (images being written). */
#ifndef REGISTRYFS_FILE_HANDLE_H
#define REGISTRYFS_FILE_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/resolve.h"

struct open_file {
    struct host *host;
    char repo[REF_NAME_MAX + 1];
    /* published file */
    const struct view_entry *entry; /* valid while view is held */
    struct image_view *view;
    struct blob_reader *reader; /* VE_BLOB */
    bool read_started;          /* the first read started the image's read-ahead */
    struct buf bytes;           /* VE_VERSION, VE_MANIFEST, VE_INSTANCE */
    /* a docker-archive view (fs/archive_file.h) */
    struct archive_file *archive;
    /* staged file */
    struct stage *stage;
    struct staged_file *sfile;
    bool writable;
};

/* Opens n (a NODE_FILE) for reading; staged files may also be opened for writing. */
int file_handle_open(const struct node *n, bool writable, struct open_file **out);
/* Opens staged file f of stage s (both held by the handle until it closes). */
int file_handle_open_staged(struct stage *s, struct staged_file *f, bool writable,
                            struct open_file **out);
/* The handle stops writing (the close() that commits); true when it was writing. */
bool file_handle_end_write(struct open_file *fh);
ssize_t file_handle_read(struct open_file *fh, char *buf, size_t size, uint64_t off);
void file_handle_close(struct open_file *fh);

#endif
