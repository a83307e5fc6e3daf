/* The filesystem side of the cache bound (cache/evict.h): stores, counting, removal. Called
 * from the budget's thread only, without its lock. */
#ifndef REGISTRYFS_EVICT_DISK_H
#define REGISTRYFS_EVICT_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "common/strlist.h"

/* Names of the subdirectories of dir that are stores (hold docker/registry/v2/blobs). */
int evict_list_stores(const char *dir, struct strlist *out);
/* What removing every copy of hex from the stores would free: each inode's size once, and
 * nothing for an inode also linked from elsewhere (a storage tree, a person's hardlink). */
uint64_t evict_count(const char *dir, const struct strlist *stores, const char *hex);
/* Calls found(hex, last use in ms since the epoch: the later of atime and mtime) for every
 * stored blob; stops early when *stop becomes true. */
void evict_scan(const char *dir, const struct strlist *stores,
                void (*found)(const char *hex, int64_t last_use_ms, void *ctx), void *ctx,
                const bool *stop);
/* Removes every blob of `victims` (sorted hexes) from every store: the link files naming them
 * first, then the data. */
void evict_remove(const char *dir, const struct strlist *stores, const struct strlist *victims);

#endif
