#include "common/strlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int strlist_push_n(struct strlist *l, const char *s, size_t n)
{
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **items = realloc(l->items, cap * sizeof(*items));
        if (!items) return -ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    char *copy = strndup(s, n);
    if (!copy) return -ENOMEM;
    l->items[l->len++] = copy;
    return 0;
}

int strlist_push(struct strlist *l, const char *s)
{
    return strlist_push_n(l, s, strlen(s));
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void strlist_sort_unique(struct strlist *l)
{
    if (l->len < 2) return;
    qsort(l->items, l->len, sizeof(*l->items), compare_strings);
    size_t out = 1;
    for (size_t i = 1; i < l->len; i++) {
        if (strcmp(l->items[i], l->items[out - 1]) == 0)
            free(l->items[i]);
        else
            l->items[out++] = l->items[i];
    }
    l->len = out;
}

bool strlist_contains_sorted(const struct strlist *l, const char *s)
{
    return l->len && bsearch(&s, l->items, l->len, sizeof(*l->items), compare_strings) != NULL;
}

void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->len = l->cap = 0;
}
