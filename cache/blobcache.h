/*
 * The lazy blob cache of one registry: a distribution storage root
 * (ROOT/docker/registry/v2/blobs/sha256/XX/HEX/data) filled on first read.
 *
 * A blob is downloaded once, by a background thread, into ROOT/partial/HEX while any number
 * of readers read the bytes that have arrived; a large one as several ranged parts at once,
 * written with pwrite at their offsets. It is hashed as it arrives and renamed into the
 * store only when its digest matches; the read that reaches the end waits for that verdict, so a
 * corrupt blob gives the reader EIO and leaves nothing behind. An interrupted download keeps its
 * partial file and resumes from there (Range) the next time. A stored blob is verified again
 * once per mount before its end is served; a damaged one is discarded and fetched again.
 *
 * The cache knows digests and files only: it reaches the network through a fetch callback.
 */
#ifndef REGISTRYFS_BLOBCACHE_H
#define REGISTRYFS_BLOBCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"

struct blobcache;
struct blob_reader;
struct cache_budget;

typedef int (*blobcache_sink_fn)(const void *data, size_t len, void *sink_ctx);
/* Streams bytes [offset, end) of the blob into sink (end 0: to the end of the blob); 0 when
 * they all arrived, -ERANGE when the source cannot serve a bounded range, else -errno.
 * Called from several threads at once for one blob (one range each). */
typedef int (*blobcache_fetch_fn)(void *arg, uint64_t offset, uint64_t end, blobcache_sink_fn sink,
                                  void *sink_ctx);

struct blob_source {
    blobcache_fetch_fn fetch;
    void *arg;
    void (*free_arg)(void *arg); /* the cache owns arg once it is handed over */
    /* When set (it may point into arg): the repository whose _layers link the cache writes
     * once the blob is stored, so the cache stays a storage root distribution can serve. */
    const char *layer_repo;
    /* When set: whether the blob is still wanted although no reader waits for it (the image
     * it belongs to is being read). A download nobody reads and nobody wants is stopped; what
     * arrived stays in the partial file for a later resume. */
    bool (*wanted)(void *arg);
    /* When set: how far the download got, for progress displays. `done` counts the bytes of
     * the blob in the partial file (what an earlier attempt left included, every part's);
     * called at its start and as bytes arrive, from several threads, possibly out of order,
     * with no lock of the cache held. It must only record the numbers. */
    void (*progress)(void *arg, uint64_t done, uint64_t size);
    /* When set: the download ended (0: stored and verified; -ECANCELED: stopped because
     * nobody needs it; else -errno). Called once, after the last progress call. */
    void (*finished)(void *arg, int rc);
};

/* root: the storage root; partial: where downloads and uploads are staged (same filesystem);
 * share (may be NULL): a directory whose subdirectories are other stores, looked in before a
 * download so a blob shared by several registries is stored once. */
int blobcache_new(const char *root, const char *partial, const char *share, struct blobcache **out);
/* Waits for running downloads to finish or fail. */
void blobcache_free(struct blobcache *bc);
/* The mount is ending: running downloads stop, and every read waiting for bytes (now or
 * later) fails with EIO at once. The fetches themselves are stopped by the transport. */
void blobcache_abort(struct blobcache *bc);
/* Blobs larger than part_size are fetched as ranged parts, up to `parallel` at once; a part
 * that receives nothing for silence_ms, over all its attempts, fails (before the first
 * download; defaults BLOBCACHE_PART_SIZE, 8 and BLOBCACHE_SILENCE_MS). */
#define BLOBCACHE_PART_SIZE (32u << 20)
#define BLOBCACHE_SILENCE_MS 10000
void blobcache_set_transfer(struct blobcache *bc, uint64_t part_size, int parallel,
                            long silence_ms);
/* The store is a storage tree others write: each blob is hashed once per mount before it is
 * served (EIO when damaged), and nothing in it is ever deleted. */
void blobcache_set_foreign(struct blobcache *bc);
/* The cache directory's bound (cache/evict.h), shared by the stores of one mount; before the
 * first download. Without one nothing is ever evicted. */
void blobcache_set_budget(struct blobcache *bc, struct cache_budget *budget);
/* A blob the caller needs kept until it unpins it (a blob staged for a push, until it is
 * published; a manifest while its link files are written): never evicted meanwhile. Open
 * readers and running downloads pin their blob themselves. */
void blobcache_pin(struct blobcache *bc, const char *hex);
void blobcache_unpin(struct blobcache *bc, const char *hex);
/* -o link_from: a storage root of others whose blobs are hardlinked into this store rather
 * than stored again (before a download, an adoption or a small blob's write). Each copy is
 * hashed once per mount before it is linked; a damaged one is never linked, and nothing in the
 * root is written or deleted. Before the cache is shared. */
int blobcache_add_link_root(struct blobcache *bc, const char *root);
/* Opens the store's copy of hex verified in this mount (hashed now when it was not yet),
 * hardlinking one in from a link root or a sibling store when the store has none. -ENOENT
 * when no copy is at hand, -EIO when the stored one is damaged. */
int blobcache_open_verified(struct blobcache *bc, const char *hex, int *fd, uint64_t *size);
const char *blobcache_root(const struct blobcache *bc);
const char *blobcache_partial_dir(const struct blobcache *bc);

int blobcache_data_path(const struct blobcache *bc, const char *hex, char *out, size_t outlen);
bool blobcache_has(const struct blobcache *bc, const char *hex);

/* Moves a file whose content was verified to be blob hex into the store (or drops it when the
 * store has that blob already). Open descriptors of the file stay valid. */
int blobcache_adopt(struct blobcache *bc, const char *path, const char *hex);

/* Small blobs (manifests) held whole: stored after verifying hex, read back whole. */
int blobcache_put_small(struct blobcache *bc, const char *hex, const void *data, size_t len);
int blobcache_get_small(struct blobcache *bc, const char *hex, size_t limit, struct buf *out);

/*
 * Opens a reader of blob `hex` of `size` bytes. When it is not cached, starts (or joins) its
 * download from `src`. The cache takes ownership of src->arg in every case.
 */
int blobcache_open(struct blobcache *bc, const char *hex, uint64_t size,
                   const struct blob_source *src, struct blob_reader **out);
/*
 * Starts downloading blob hex in the background unless it is stored or downloading already,
 * or too many downloads are running (then it is fetched when read). Takes ownership of
 * src->arg in every case. For read-ahead: nothing waits for the result.
 */
void blobcache_prefetch(struct blobcache *bc, const char *hex, uint64_t size,
                        const struct blob_source *src);
/* Blocks until the requested bytes have arrived (and, for the last ones, are verified). */
ssize_t blobcache_pread(struct blob_reader *r, void *buf, size_t len, uint64_t off);
void blobcache_close(struct blob_reader *r);

#endif
