/* The transfer table's entries, shared by fs/progress.c and fs/progress_json.c. */
#ifndef REGISTRYFS_PROGRESS_INTERNAL_H
#define REGISTRYFS_PROGRESS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/sha256.h"
#include "fs/progress.h"
#include "transport/ref.h"

#define PROGRESS_UNKNOWN UINT64_MAX /* a total not known yet (a stream still being written) */
#define RATE_SAMPLES 8

enum xfer_state { XFER_RUNNING, XFER_DONE, XFER_FAILED, XFER_STOPPED };

struct xfer {
    struct progress *table;
    uint64_t id;
    enum xfer_dir dir;
    char host[REF_HOST_MAX + 8];
    char repo[REF_NAME_MAX + 1];
    char tag[REF_TAG_MAX + 1]; /* "" when not known */
    char hex[SHA256_HEX_LEN + 1];
    char from[2 * REF_NAME_MAX + 2]; /* a copy's source HOST/REPO, else "" */
    uint64_t done, total;            /* atomic, written by the transfer's threads */
    uint64_t start_done;             /* what was there already (a resumed download) */
    int64_t start_ms;                /* monotonic */
    time_t start_wall;
    /* under table->lock */
    enum xfer_state state;
    int error;
    int64_t end_ms;
    /* (monotonic ms, done) seen by earlier snapshots: the rate over the last seconds */
    int64_t sample_ms[RATE_SAMPLES];
    uint64_t sample_done[RATE_SAMPLES];
    unsigned n_samples;
};

void progress_expire_locked(struct progress *p, int64_t now, bool room);

#endif
