/*
 * A sorted list of strings packed into two allocations (the characters back to back, and one
 * 32-bit offset per string): a cached tag list of 120 000 short tags takes ~2 MB instead of the
 * ~5 MB of a strlist (a pointer and a malloc'd chunk per string). Immutable once built.
 */
#ifndef REGISTRYFS_PACKLIST_H
#define REGISTRYFS_PACKLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/strlist.h"

struct packlist {
    char *chars;    /* every string with its NUL, in order */
    uint32_t *offs; /* where string i starts in chars */
    size_t len;
    size_t chars_len; /* bytes of chars */
};

/* Packs a sorted list (the caller sorts). -EFBIG beyond 4 GiB of characters, -ENOMEM. */
int packlist_from(const struct strlist *sorted, struct packlist *out)
    __attribute__((warn_unused_result));
const char *packlist_at(const struct packlist *p, size_t i);
/* First index whose string is >= key (len when none). */
size_t packlist_lower_bound(const struct packlist *p, const char *key);
bool packlist_contains(const struct packlist *p, const char *s);
/* Bytes allocated (what a memory budget charges). */
size_t packlist_bytes(const struct packlist *p);
void packlist_free(struct packlist *p);

#endif
