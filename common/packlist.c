#include "common/packlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int packlist_from(const struct strlist *sorted, struct packlist *out)
{
    size_t total = 0;
    for (size_t i = 0; i < sorted->len; i++)
        total += strlen(sorted->items[i]) + 1;
    if (total > UINT32_MAX) return -EFBIG;
    out->len = 0;
    out->chars_len = 0;
    out->chars = malloc(total ? total : 1);
    out->offs = malloc((sorted->len ? sorted->len : 1) * sizeof(*out->offs));
    if (!out->chars || !out->offs) {
        packlist_free(out);
        return -ENOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < sorted->len; i++) {
        size_t n = strlen(sorted->items[i]) + 1;
        memcpy(out->chars + at, sorted->items[i], n);
        out->offs[i] = (uint32_t)at;
        at += n;
    }
    out->len = sorted->len;
    out->chars_len = total;
    return 0;
}

const char *packlist_at(const struct packlist *p, size_t i)
{
    return p->chars + p->offs[i];
}

size_t packlist_lower_bound(const struct packlist *p, const char *key)
{
    size_t lo = 0, hi = p->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(packlist_at(p, mid), key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool packlist_contains(const struct packlist *p, const char *s)
{
    size_t i = packlist_lower_bound(p, s);
    return i < p->len && strcmp(packlist_at(p, i), s) == 0;
}

size_t packlist_bytes(const struct packlist *p)
{
    return p->chars_len + p->len * sizeof(*p->offs);
}

void packlist_free(struct packlist *p)
{
    free(p->chars);
    free(p->offs);
    p->chars = NULL;
    p->offs = NULL;
    p->len = 0;
    p->chars_len = 0;
}
