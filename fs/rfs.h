/* The mounted filesystem: one registry at the root, or (root mode) a directory per host. */
#ifndef REGISTRYFS_RFS_H
#define REGISTRYFS_RFS_H

#include <pthread.h>

#include "common/strmap.h"
#include "fs/config.h"
#include "fs/host.h"
#include "fs/progress.h"
#include "fs/readahead.h"

struct rfs {
    struct rfs_config cfg;
    struct host *single; /* NULL in root mode */
    pthread_mutex_t lock;
    struct strmap hosts;        /* root mode: HOST[:PORT] → struct host * */
    struct readahead readahead; /* images being read, across hosts */
    struct progress progress;   /* transfers running and recently ended, across hosts */
    pthread_t watch;            /* notices the end of the session (fs/shutdown.c) */
    bool watching;
    pthread_mutex_t watch_lock; /* guards watch_stop; with watch_wake, a leaf */
    pthread_cond_t watch_wake;  /* the watch thread's sleep, cut short by shutdown_watch_stop */
    int watch_stop;
};

/* Root mode: the host for a directory name, created (and pinged) on first use. */
int rfs_host(struct rfs *fs, const char *hostport, struct host **out);
/* Root mode: names of hosts in use or present in the cache directory. */
int rfs_host_names(struct rfs *fs, struct strlist *out);
void rfs_free_hosts(struct rfs *fs);
/* The mount is ending: every transfer and every wait for one, on every host, stops now. */
void rfs_abort(struct rfs *fs);

#endif
