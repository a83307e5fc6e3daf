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
int strmap_put(struct strmap *m, const char *key, void *value, void **old);
void *strmap_remove(struct strmap *m, const char *key);
/* Calls free_value on every value, frees keys and buckets. */
void strmap_clear(struct strmap *m, void (*free_value)(void *));
/* Calls fn with every value, in no particular order; fn must not change the map. */
void strmap_each(const struct strmap *m, void (*fn)(void *value));

#endif
