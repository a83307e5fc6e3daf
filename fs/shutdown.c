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

/* Sleeps one interval unless the watch is stopped meanwhile: an unmount's daemon exits at
 * once instead of after the rest of an interval. True when stopped. */
static bool wait_interval(struct rfs *fs)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WATCH_INTERVAL_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&fs->watch_lock);
    while (!fs->watch_stop && pthread_cond_timedwait(&fs->watch_wake, &fs->watch_lock, &until) == 0)
        ;
    bool stopped = fs->watch_stop;
    pthread_mutex_unlock(&fs->watch_lock);
    return stopped;
}

static void *watch_thread(void *p)
{
    struct watch_arg arg = *(struct watch_arg *)p;
    free(p);
    do {
        if (fuse_session_exited(arg.se)) {
            log_info("%s: session ended; stopping transfers", arg.fs->cfg.mountpoint);
            rfs_abort(arg.fs);
            break;
        }
    } while (!wait_interval(arg.fs));
    return NULL;
}

void shutdown_watch_start(struct rfs *fs, struct fuse *f)
{
    struct watch_arg *arg = malloc(sizeof(*arg));
    if (!arg) return;
    arg->fs = fs;
    arg->se = fuse_get_session(f);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&fs->watch_lock, NULL);
    pthread_cond_init(&fs->watch_wake, &attr);
    pthread_condattr_destroy(&attr);
    fs->watching = pthread_create(&fs->watch, NULL, watch_thread, arg) == 0;
    if (!fs->watching) {
        log_warn("cannot watch the session: an unmount may wait for the network");
        free(arg);
    }
}

void shutdown_watch_stop(struct rfs *fs)
{
    if (fs->watching) {
        pthread_mutex_lock(&fs->watch_lock);
        fs->watch_stop = 1;
        pthread_cond_signal(&fs->watch_wake);
        pthread_mutex_unlock(&fs->watch_lock);
        pthread_join(fs->watch, NULL);
    }
    fs->watching = false;
    rfs_abort(fs);
}
