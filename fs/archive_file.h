/*
 * An open docker-archive view (fs/archive_view.h): reads at any offset, blob content from the
 * blob cache. One blob reader is open at a time (memory stays bounded whatever the image);
 * the first read starts the read-ahead of the image's blobs (fs/readahead.h), and the image
 * counts as being read while the file is open, so those downloads go on.
 */
#ifndef REGISTRYFS_ARCHIVE_FILE_H
#define REGISTRYFS_ARCHIVE_FILE_H

#include <stdint.h>
#include <sys/types.h>

struct archive_file;
struct archive_view;
struct host;

/* Opens view a of repo:tag of h (a is held until the close). */
int archive_file_open(struct host *h, const char *repo, const char *tag, struct archive_view *a,
                      struct archive_file **out);
ssize_t archive_file_read(struct archive_file *f, char *buf, size_t size, uint64_t off);
void archive_file_close(struct archive_file *f);

#endif
