/* Checks made before mounting that look at the system around the command line. */
#ifndef REGISTRYFS_MOUNT_CHECKS_H
#define REGISTRYFS_MOUNT_CHECKS_H

#include <stdbool.h>

/* True when mount(8) started us (through mount.fuse3), which passes "rw" whatever the user
 * wrote: its "rw" must not mean "push". */
bool started_by_mount_helper(void);

/* 0 when MOUNTPOINT is an empty directory (or nonempty is set); else -1 with a message on
 * stderr naming the problem. */
int check_mountpoint(const char *mountpoint, bool nonempty);

#endif
