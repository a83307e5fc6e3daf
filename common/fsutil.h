/* Small filesystem helpers. */
#ifndef REGISTRYFS_FSUTIL_H
#define REGISTRYFS_FSUTIL_H

#include <sys/types.h>

/* mkdir -p; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

#endif
