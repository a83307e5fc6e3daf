/*
 * Read-ahead of the blobs of an image being read, and the mount-wide record of the images
 * being read. When a reader starts on a blob of a tag directory (a read, never a stat, ls or
 * manifest read), the other blobs of that image start downloading in the background, so
 * cp -r, rsync and tar keep several connections busy although they read one file at a time.
 * The record lets a copy into another registry of the same mount find where the blobs it
 * receives come from and send them straight from the source (fs/prefill.h).
 *
 * Locking: ra->lock guards the ring of recent images; it is a leaf lock (nothing is called
 * with it held but reference counting of views).
 */
#ifndef REGISTRYFS_READAHEAD_H
#define REGISTRYFS_READAHEAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/blobcache.h"
#include "transport/ref.h"

struct host;
struct image_view;

#define READAHEAD_RECENT 16

struct read_image {
    struct host *host;
    char repo[REF_NAME_MAX + 1];
    char tag[REF_TAG_MAX + 1]; /* the tag it was first opened by, "" if by digest */
    struct image_view *view;   /* holds a reference */
    int64_t prefetched_ms;     /* when a read last started its read-ahead, 0: never */
    int open_blobs;            /* blob files of it open now */
    int64_t closed_ms;         /* when the last one was closed */
};

struct readahead {
    pthread_mutex_t lock;
    struct read_image recent[READAHEAD_RECENT]; /* most recent first */
    size_t n_recent;
};

void readahead_init(struct readahead *ra);
void readahead_destroy(struct readahead *ra);

/* A blob of view v (repository repo of h, opened as ref: a tag or a digest) was opened:
 * remembered as an image being read (tools open the source before they create the copy),
 * nothing is fetched. */
void readahead_blob_opened(struct readahead *ra, struct host *h, const char *repo, const char *ref,
                           struct image_view *v);
/* A blob of view v is being read: its other blobs start downloading (again only after a
 * while, so that every file of a cp -r does not rescan the image). */
void readahead_blob_read(struct readahead *ra, struct host *h, const char *repo,
                         struct image_view *v);
/* A blob file of view v was closed. */
void readahead_blob_closed(struct readahead *ra, struct host *h, const char *repo,
                           struct image_view *v);
/* Whether the image of view v on h is being read: a blob of it is open, or was closed a
 * moment ago (cp -r closes one file before it opens the next). */
bool readahead_image_wanted(struct readahead *ra, const struct host *h, const struct image_view *v);

/* An image being read on a host other than `not` that has blob hex: filled in with a new
 * reference to its view (release it with image_view_put). */
bool readahead_source_of(struct readahead *ra, const struct host * not, const char *hex,
                         struct read_image *out);

/* Where the cache of host h fetches blob hex of repo from (the cache owns it once handed
 * over); its download is shown in the mount's transfer table as of REPO:ref (ref: a tag, or
 * NULL or a digest when no tag is known). With image (may be NULL): the download goes on
 * while that image is being read, even when no reader waits for this blob. */
int readahead_blob_source(struct host *h, const char *repo, const char *ref, const char *hex,
                          const struct image_view *image, struct blob_source *out);

#endif
