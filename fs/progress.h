/*
 * The mount's transfer table: every blob download, upload and registry-to-registry copy that
 * is running or ended a moment ago, for `registryfs status` (docs/status.md). The thread
 * doing a transfer begins an entry, moves its byte counter (atomics: cheap enough for every
 * chunk) and ends it once; readers get a JSON snapshot through the mount root's
 * user.registryfs.transfers xattr.
 *
 * Memory stays bounded: at most PROGRESS_MAX entries; finished ones are kept PROGRESS_KEEP_MS
 * and dropped oldest first when room is needed. A transfer begun while the table is full of
 * running ones is simply not shown (progress_begin returns NULL, and every call accepts NULL).
 *
 * Locking: p->lock guards the entry list and each entry's state, end time and rate samples.
 * It is a leaf lock: nothing is called with it held but allocation. The byte counters and
 * totals are atomics, written without any lock by the transfer's threads.
 */
#ifndef REGISTRYFS_PROGRESS_H
#define REGISTRYFS_PROGRESS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PROGRESS_MAX 128
#define PROGRESS_KEEP_MS 60000
/* The JSON value stays below the kernel's xattr limit (64 KiB). */
#define PROGRESS_JSON_MAX 60000

enum xfer_dir { XFER_DOWNLOAD, XFER_UPLOAD, XFER_COPY };

struct xfer;

struct progress {
    pthread_mutex_t lock;
    struct xfer *items[PROGRESS_MAX]; /* in the order they began */
    size_t n;
    uint64_t next_id;
};

/* What a transfer is about: HOST/REPO:TAG (tag may be NULL or "") and the blob's hex; a copy
 * also names its source (from_host/from_repo, else NULL). */
struct xfer_label {
    const char *host, *repo, *tag, *hex;
    const char *from_host, *from_repo;
};

void progress_init(struct progress *p);
void progress_destroy(struct progress *p);

/* A new running entry with `done` bytes of `total` (0: not known yet); NULL when p is NULL
 * or the table is full of running transfers. */
struct xfer *progress_begin(struct progress *p, enum xfer_dir dir, const struct xfer_label *l,
                            uint64_t done, uint64_t total);
/* The byte counter: set (an upload starting over), or moved forward only (several threads
 * report one download out of order). */
void progress_set(struct xfer *x, uint64_t done);
void progress_advance(struct xfer *x, uint64_t done);
void progress_add(struct xfer *x, uint64_t n);
void progress_set_total(struct xfer *x, uint64_t total);
/* The counter itself, for code that keeps it up to date with atomic stores (NULL for NULL). */
uint64_t *progress_counter(struct xfer *x);
/* The transfer ended: 0 done, -ECANCELED stopped (nobody needs it), else failed. x belongs to
 * the table afterwards: the caller forgets it. */
void progress_end(struct xfer *x, int rc);

/* The table as a JSON document (docs/status.md), malloc'ed, at most PROGRESS_JSON_MAX bytes:
 * running entries first, then the most recent finished ones. NULL when out of memory. */
char *progress_json(struct progress *p);

/* Bytes of the uploads (and copies) into HOST/REPO:TAG still in the table. */
struct xfer_sum {
    uint64_t done, total;
    unsigned running, finished, failed;
};
void progress_tag_sum(struct progress *p, const char *host, const char *repo, const char *tag,
                      struct xfer_sum *out);

#endif
