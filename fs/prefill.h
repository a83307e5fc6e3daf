/*
 * Registry to registry within one mount: when a blob starts arriving in a tag directory of one
 * registry and the mount is reading an image that has this blob from another registry (a
 * `cp -r` or `rsync -a` between two host directories), every blob of that image is sent to
 * this repository straight from the source's cache while it downloads, all in parallel
 * (bounded by the upload slots), instead of one file after another at the writer's pace. The
 * writer's own bytes are still verified at commit; the publication waits for these uploads
 * (prefill_wait) like for any other.
 *
 * Such a blob may reach the registry before the writer gets to it, or even when the writer
 * stops early: a blob is not an image, nothing is published until the image is complete.
 *
 * Locking: the stage's prefill list is guarded by s->lock; a job's result is read after its
 * join, which happens once, under s->commit (the publication) or when the stage is freed.
 */
#ifndef REGISTRYFS_PREFILL_H
#define REGISTRYFS_PREFILL_H

#include <stdbool.h>

#include "common/sha256.h"

struct stage;

/* Blob hex starts arriving in s: starts the prefill of its image when the mount is reading
 * one from another registry. True when a prefill job sends hex (no job of its own needed). */
bool prefill_covers(struct stage *s, const char hex[SHA256_HEX_LEN + 1]);
/* Waits for the prefill of hex: 0 when the blob is in the registry, -ENOENT when there is
 * none, else its error. */
int prefill_wait(struct stage *s, const char hex[SHA256_HEX_LEN + 1]);
/* Stops every prefill job of s and frees them (the stage is going away). */
void prefill_stop_all(struct stage *s);

#endif
