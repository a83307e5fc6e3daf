/* A string-keyed hash map owning its keys (not its values). Not thread-safe: callers lock. */
#ifndef REGISTRYFS_STRMAP_H
#define REGISTRYFS_STRMAP_H

#include <stddef.h>

struct strmap_entry {
    char *key;
    void *value;
    struct strmap_entry *next;
};

struct strmap {
    struct strmap_entry **buckets;
    size_t n_buckets;
    size_t len;
};

void strmap_init(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Inserts or replaces; returns the previous value (NULL if none) through *old when old != NULL. */
int strmap_set(struct strmap *m, const char *key, void *value, void **old);
void *strmap_remove(struct strmap *m, const char *key);
/* Calls free_value on every value, frees keys and buckets. */
void strmap_clear(struct strmap *m, void (*free_value)(void *));
/* Calls fn with every value, in no particular order; fn must not change the map. */
void strmap_each(const struct strmap *m, void (*fn)(void *value));

/* Walks the entries in no particular order; the map must not change during the walk:
 *     struct strmap_iter it = strmap_iter(&map);
 *     const char *key; void *value;
 *     while (strmap_next(&it, &key, &value)) ...
 */
struct strmap_iter {
    const struct strmap *m;
    size_t bucket;
    const struct strmap_entry *next;
};
struct strmap_iter strmap_iter(const struct strmap *m);
/* 1 with the next entry's key and value (either pointer may be NULL), 0 at the end. */
int strmap_next(struct strmap_iter *it, const char **key, void **value);

#endif
