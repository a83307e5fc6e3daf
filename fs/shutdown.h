/*
 * Ending a mount promptly. libfuse ends the session on unmount (fusermount3 -u, umount) and on
 * SIGTERM/SIGINT, then waits for the calls in progress; a call waiting for a stalled registry
 * would hold the daemon for as long as the network says. A watch thread notices the end of the
 * session and aborts every transfer and wait of the mount (rfs_abort), so those calls return at
 * once and the daemon exits within about a second whatever the network does.
 */
#ifndef REGISTRYFS_SHUTDOWN_H
#define REGISTRYFS_SHUTDOWN_H

#include <fuse.h>

#include "fs/rfs.h"

/* From the init callback: watches the session of fuse f. */
void shutdown_watch_start(struct rfs *fs, struct fuse *f);
/* After fuse_main returned: stops the watch and aborts what is still running. */
void shutdown_watch_stop(struct rfs *fs);

#endif
