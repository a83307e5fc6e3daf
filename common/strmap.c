#include "common/strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_string(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

void strmap_init(struct strmap *m)
{
    m->buckets = NULL;
    m->n_buckets = 0;
    m->len = 0;
}

static struct strmap_entry **find_slot(const struct strmap *m, const char *key)
{
    if (!m->n_buckets) return NULL;
    struct strmap_entry **slot = &m->buckets[hash_string(key) % m->n_buckets];
    while (*slot && strcmp((*slot)->key, key) != 0)
        slot = &(*slot)->next;
    return slot;
}

void *strmap_get(const struct strmap *m, const char *key)
{
    struct strmap_entry **slot = find_slot(m, key);
    return slot && *slot ? (*slot)->value : NULL;
}

static int grow(struct strmap *m)
{
    size_t n = m->n_buckets ? m->n_buckets * 2 : 64;
    struct strmap_entry **buckets = calloc(n, sizeof(*buckets));
    if (!buckets) return -ENOMEM;
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct strmap_entry *e = m->buckets[i];
        while (e) {
            struct strmap_entry *next = e->next;
            size_t b = hash_string(e->key) % n;
            e->next = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->n_buckets = n;
    return 0;
}

int strmap_set(struct strmap *m, const char *key, void *value, void **old)
{
    if (old) *old = NULL;
    if (m->len >= m->n_buckets && grow(m)) return -ENOMEM;
    struct strmap_entry **slot = find_slot(m, key);
    if (*slot) {
        if (old) *old = (*slot)->value;
        (*slot)->value = value;
        return 0;
    }
    struct strmap_entry *e = malloc(sizeof(*e));
    if (!e) return -ENOMEM;
    e->key = strdup(key);
    if (!e->key) {
        free(e);
        return -ENOMEM;
    }
    e->value = value;
    e->next = NULL;
    *slot = e;
    m->len++;
    return 0;
}

void *strmap_remove(struct strmap *m, const char *key)
{
    struct strmap_entry **slot = find_slot(m, key);
    if (!slot || !*slot) return NULL;
    struct strmap_entry *e = *slot;
    void *value = e->value;
    *slot = e->next;
    free(e->key);
    free(e);
    m->len--;
    return value;
}

void strmap_clear(struct strmap *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->n_buckets; i++) {
        struct strmap_entry *e = m->buckets[i];
        while (e) {
            struct strmap_entry *next = e->next;
            if (free_value) free_value(e->value);
            free(e->key);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    strmap_init(m);
}

void strmap_each(const struct strmap *m, void (*fn)(void *value))
{
    struct strmap_iter it = strmap_iter(m);
    void *value;
    while (strmap_next(&it, NULL, &value))
        fn(value);
}

struct strmap_iter strmap_iter(const struct strmap *m)
{
    struct strmap_iter it = {m, 0, NULL};
    return it;
}

int strmap_next(struct strmap_iter *it, const char **key, void **value)
{
    while (!it->next && it->bucket < it->m->n_buckets)
        it->next = it->m->buckets[it->bucket++];
    const struct strmap_entry *e = it->next;
    if (!e) return 0;
    it->next = e->next;
    if (key) *key = e->key;
    if (value) *value = e->value;
    return 1;
}
