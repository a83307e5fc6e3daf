/* Small filesystem helpers. */
#ifndef REGISTRYFS_FSUTIL_H
#define REGISTRYFS_FSUTIL_H

#include <sys/types.h>

/* mkdir -p; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode) __attribute__((warn_unused_result));

/* Reads a regular file of at most max bytes whole into a malloc'd, NUL-terminated buffer.
 * -ENOENT, -EINVAL (not a regular file), -EFBIG (larger than max), -ENOMEM, -errno. The caller
 * frees *data (wiping it first when it holds secrets). */
int read_small_file(const char *path, size_t max, char **data, size_t *len)
    __attribute__((warn_unused_result));

#endif
