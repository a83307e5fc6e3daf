/* Sizes given by users: "8M", "512K", "2G", "1048576". */
#ifndef REGISTRYFS_SIZE_H
#define REGISTRYFS_SIZE_H

#include <stdint.h>

/* A decimal number with an optional K, M, G or T suffix (powers of 1024, case-insensitive,
 * an optional trailing "B" or "iB"). 0, or -EINVAL for anything else or an overflow. */
int parse_size(const char *text, uint64_t *out) __attribute__((warn_unused_result));

#endif
