/*
 * A tar archive described, not stored: a list of members (regular files, mode 0444, mtime 0,
 * uid/gid 0, as containers/image's docker-archive writer makes them) whose content is either a
 * few bytes held here or a blob read through a callback. Its size is known from the member
 * sizes alone; any byte range is produced on demand (512-byte ustar header, content, zero
 * padding to 512, and two zero blocks at the end), so an archive of gigabytes costs a few
 * hundred bytes of memory per member.
 */
#ifndef REGISTRYFS_TAR_LAYOUT_H
#define REGISTRYFS_TAR_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/sha256.h"

#define TAR_BLOCK 512
#define TAR_NAME_MAX 99 /* ustar name field, without a prefix: every name here is short */
#define TAR_MEMBERS_MAX 8192

struct tar_member {
    char name[TAR_NAME_MAX + 1];
    uint64_t size;
    uint64_t offset;              /* of its header */
    char *bytes;                  /* content held in memory, or NULL: a blob */
    char hex[SHA256_HEX_LEN + 1]; /* the blob (when bytes is NULL) */
};

struct tar_layout {
    struct tar_member *members;
    size_t n, cap;
    uint64_t size; /* total, once tar_layout_finish ran */
};

/* Reads up to size bytes at off of the blob of member index; bytes read, 0 at its end, -errno. */
typedef ssize_t (*tar_blob_read_fn)(void *ctx, size_t index, char *buf, size_t size, uint64_t off);

void tar_layout_init(struct tar_layout *l);
void tar_layout_free(struct tar_layout *l);
/* Appends a member (the data is copied); -EINVAL for a name that does not fit, -E2BIG for too
 * many members, -ENOMEM. */
int tar_layout_add_bytes(struct tar_layout *l, const char *name, const void *data, size_t len);
int tar_layout_add_blob(struct tar_layout *l, const char *name, const char *hex, uint64_t size);
/* The member named name, or NULL. */
const struct tar_member *tar_layout_find(const struct tar_layout *l, const char *name);
/* Computes the offsets and the total size; after the last add. */
void tar_layout_finish(struct tar_layout *l);
/* The header block of member m. */
void tar_layout_header(const struct tar_member *m, unsigned char out[TAR_BLOCK]);
/* Fills buf with the archive's bytes [off, off + size), short only at its end; blob content
 * through read (a short blob read is an error: -EIO). Bytes produced, or -errno. */
ssize_t tar_layout_read(const struct tar_layout *l, char *buf, size_t size, uint64_t off,
                        tar_blob_read_fn read, void *ctx);

#endif
