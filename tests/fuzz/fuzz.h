/* Helpers shared by the libFuzzer targets: inputs are untrusted bytes, not C strings. */
#ifndef REGISTRYFS_FUZZ_H
#define REGISTRYFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A violated invariant is a finding: say which, then abort so libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated malloc'd copy of data[0..size) (cut at an embedded NUL when read as a C
 * string); NULL only when out of memory, which libFuzzer's -rss_limit makes fatal anyway. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* An exact-size malloc'd copy (no terminator), so ASan sees any read past len. */
static inline char *fuzz_bytes(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    return s;
}

/* Whether s[0..n) holds a NUL, i.e. a fixed-size field is terminated. */
static inline int fuzz_terminated(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

#endif
