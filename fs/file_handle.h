/* An open file of an image view: a blob reader, or bytes held in memory (manifests, version). */
#ifndef REGISTRYFS_FILE_HANDLE_H
#define REGISTRYFS_FILE_HANDLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/resolve.h"

struct file_handle;

int file_handle_open(const struct node *n, struct file_handle **out);
ssize_t file_handle_read(struct file_handle *fh, char *buf, size_t size, uint64_t off);
void file_handle_close(struct file_handle *fh);

#endif
