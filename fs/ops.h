/* The FUSE operations (high-level, path-based API). */
#ifndef REGISTRYFS_OPS_H
#define REGISTRYFS_OPS_H

#include <fuse.h>

extern const struct fuse_operations registryfs_ops;

#endif
