/*
 * Background uploads of staged blobs: one job per blob being written into a remote registry
 * makes it present there — an existence check (HEAD), a cross-repository mount from a
 * repository known to hold it, or an upload — without making the writer wait.
 *
 * A job started when the file is created (a final blob name, or rsync's .HEX.XXXXXX) streams
 * the writer's bytes from the spill file as they arrive. Anything unusual (writes out of
 * order, a refused stream) abandons the stream; once the commit has verified the content, the
 * job uploads from the file instead. Jobs run in parallel (bounded by the registry's upload
 * slots, -o max_transfers); the publication waits for all of them (upstream_wait) and reports
 * their failure to the writer, so close() of a blob returns as soon as it is verified.
 *
 * Locking: the job's sealed/final_size/stream_ok fields are guarded by f->io (the staged
 * file's lock), `more` is signalled under it; `cancel` is atomic. f->up is set and cleared
 * by the stage code only, never by the job.
 */
#ifndef REGISTRYFS_UPSTREAM_H
#define REGISTRYFS_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "common/sha256.h"

struct host;
struct staged_file;

/* Starts a streaming job for f (a blob being written into repo:tag of host h), named by hex.
 * Its upload is shown in the mount's transfer table (fs/progress.h). */
void upstream_start(struct host *h, const char *repo, const char *tag, struct staged_file *f,
                    const char hex[SHA256_HEX_LEN + 1]);
/* Wakes the stream: more sequential bytes were written. Called with f->io held. */
void upstream_notify(struct staged_file *f);
/* The hex f's job uploads as, or NULL when there is no job. */
const char *upstream_hex(const struct staged_file *f);
/* At commit, before the running hash is consumed: the bytes are final. */
void upstream_seal(struct staged_file *f);
/* After the commit verified the content: the job (started now if f has none) finishes in
 * the background. 0, or -errno when no job could be started. */
int upstream_release(struct host *h, const char *repo, const char *tag, struct staged_file *f);
/* Waits for f's job and drops it: 0 when the blob is in the registry, -ENOENT when there
 * was no job, else the job's error. */
int upstream_wait(struct staged_file *f);
/* Abandons a job (truncation, a failed verification, the file going away) and joins it. */
void upstream_cancel(struct staged_file *f);

/* 0 when repo of h has blob hex with `size` bytes already, or it was cross-mounted there from
 * `from` (or a repository known to hold it; from may be NULL). -ENOENT when it must be
 * uploaded, -EBADMSG when the registry holds it with another size, else -errno. */
int upstream_blob_present(struct host *h, const char *repo, const char *hex, const char *from,
                          uint64_t size);

#endif
