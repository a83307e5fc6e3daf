/*
 * Streaming a staged blob to the registry while it is being written: a file created under
 * its final name (cp, tar, rsync --inplace) starts an upload at once, fed from its spill file as
 * the writer's bytes arrive, so the close only waits for the tail instead of the whole upload.
 * Anything unusual (writes out of order, a truncation, a refused stream) abandons the stream
 * and the commit uploads from the file as before.
 */
#ifndef REGISTRYFS_UPSTREAM_H
#define REGISTRYFS_UPSTREAM_H

#include <stdbool.h>

struct host;
struct staged_file;

/* Starts streaming f (a blob being written into repo of host h). */
void upstream_start(struct host *h, const char *repo, struct staged_file *f);
/* Wakes the stream: more sequential bytes were written. Called with f->io held. */
void upstream_notify(struct staged_file *f);
/* Called at commit, before the running hash is consumed: 0 when the stream put the blob
 * into the registry, else the commit uploads (or finds) it the ordinary way. Joins the
 * stream's thread. */
int upstream_finish(struct staged_file *f);
/* Abandons a stream (truncation, or the file is going away) and joins its thread. */
void upstream_cancel(struct staged_file *f);

#endif
