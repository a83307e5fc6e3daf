#include "fs/shutdown.h"

#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"

#define WATCH_INTERVAL_MS 100

struct watch_arg {
    struct rfs *fs;
    struct fuse_session *se;
};

static void *watch_thread(void *p)
{
    struct watch_arg arg = *(struct watch_arg *)p;
    free(p);
    struct timespec step = {0, WATCH_INTERVAL_MS * 1000000L};
    while (!__atomic_load_n(&arg.fs->watch_stop, __ATOMIC_ACQUIRE)) {
        if (fuse_session_exited(arg.se)) {
            log_info("%s: session ended; stopping transfers", arg.fs->cfg.mountpoint);
            rfs_abort(arg.fs);
            break;
        }
        nanosleep(&step, NULL);
    }
    return NULL;
}

void shutdown_watch_start(struct rfs *fs, struct fuse *f)
{
    struct watch_arg *arg = malloc(sizeof(*arg));
    if (!arg) return;
    arg->fs = fs;
    arg->se = fuse_get_session(f);
    fs->watching = pthread_create(&fs->watch, NULL, watch_thread, arg) == 0;
    if (!fs->watching) {
        log_warn("cannot watch the session: an unmount may wait for the network");
        free(arg);
    }
}

void shutdown_watch_stop(struct rfs *fs)
{
    __atomic_store_n(&fs->watch_stop, 1, __ATOMIC_RELEASE);
    if (fs->watching) pthread_join(fs->watch, NULL);
    fs->watching = false;
    rfs_abort(fs);
}
