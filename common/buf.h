/* A growable byte buffer with a hard size limit, for bodies read from the network. */
#ifndef REGISTRYFS_BUF_H
#define REGISTRYFS_BUF_H

#include <stddef.h>

struct buf {
    char *data; /* always NUL-terminated when non-NULL, so JSON parsers can take it */
    size_t len;
    size_t cap;
    size_t limit;
};

void buf_init(struct buf *b, size_t limit);
/* -EFBIG when the limit would be exceeded, -ENOMEM on allocation failure. */
int buf_append(struct buf *b, const void *data, size_t len) __attribute__((warn_unused_result));
int buf_set(struct buf *b, const void *data, size_t len) __attribute__((warn_unused_result));
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
