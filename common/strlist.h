/* A list of owned strings (repository names, tags). */
#ifndef REGISTRYFS_STRLIST_H
#define REGISTRYFS_STRLIST_H

#include <stdbool.h>
#include <stddef.h>

struct strlist {
    char **items;
    size_t len;
    size_t cap;
};

#define STRLIST_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

int strlist_push(struct strlist *l, const char *s);
int strlist_push_n(struct strlist *l, const char *s, size_t n);
void strlist_sort_unique(struct strlist *l);
/* Binary search; the list must be sorted. */
bool strlist_contains_sorted(const struct strlist *l, const char *s);
void strlist_free(struct strlist *l);

#endif
