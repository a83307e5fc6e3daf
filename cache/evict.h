/*
 * The size bound of the cache directory (docs/cache.md, "Bounded cache"): one budget per
 * mount for the whole CACHE_DIR, whose subdirectories are the stores of the registries (all
 * hosts of a root-mode mount share it, since they share the disk and, through hardlinks,
 * blobs). Blobs are counted by digest across stores, by inode (hardlinked copies once, a
 * copy someone else also links not at all: removing it frees nothing).
 *
 * The read path only pins and unpins digests (a hash lookup under a leaf lock); every file
 * system call of the bound (the start-up scan, counting a new blob, evicting) runs in the
 * budget's own thread. It evicts the least recently used blobs nobody pins until the stored
 * blobs and the running downloads fit `max_size` and the filesystem has `min_free` free.
 */
#ifndef REGISTRYFS_EVICT_H
#define REGISTRYFS_EVICT_H

#include <stdbool.h>
#include <stdint.h>

struct cache_budget;

/* max_size 0: no size limit. min_free_pct (0-100) is used when min_free is 0; both 0: no
 * free-space rule. No thread runs until budget_start. */
int budget_new(const char *cache_dir, uint64_t max_size, uint64_t min_free, int min_free_pct,
               struct cache_budget **out);
/* Starts the thread (after the daemon forked: threads do not survive a fork). */
int budget_start(struct cache_budget *b);
/* Stops the thread; the entries go. */
void budget_free(struct cache_budget *b);

/* A digest in use (open reader, running download, blob staged for a push): never evicted
 * while pinned. Both count as a use for the LRU order. NULL budget: no-ops. */
void budget_pin(struct cache_budget *b, const char *hex);
void budget_unpin(struct cache_budget *b, const char *hex);
/* A file of that digest was stored, linked or removed in one of the stores: the thread counts
 * it again. Counts as a use. */
void budget_changed(struct cache_budget *b, const char *hex);
/* Bytes about to be written by a download (positive at its start, negative at its end): the
 * thread makes room for them before they arrive. */
void budget_reserve(struct cache_budget *b, int64_t bytes);

#endif
