#include "fs/tar_layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tar_layout_init(struct tar_layout *l)
{
    memset(l, 0, sizeof(*l));
}

void tar_layout_free(struct tar_layout *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->members[i].bytes);
    free(l->members);
    tar_layout_init(l);
}

static struct tar_member *add_member(struct tar_layout *l, const char *name, uint64_t size)
{
    if (!*name || strlen(name) > TAR_NAME_MAX) return NULL;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct tar_member *m = realloc(l->members, cap * sizeof(*m));
        if (!m) return NULL;
        l->members = m;
        l->cap = cap;
    }
    struct tar_member *m = &l->members[l->n];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->size = size;
    return m;
}

int tar_layout_add_bytes(struct tar_layout *l, const char *name, const void *data, size_t len)
{
    if (l->n >= TAR_MEMBERS_MAX) return -E2BIG;
    if (!*name || strlen(name) > TAR_NAME_MAX) return -EINVAL;
    char *copy = malloc(len ? len : 1);
    struct tar_member *m = copy ? add_member(l, name, len) : NULL;
    if (!m) {
        free(copy);
        return -ENOMEM;
    }
    memcpy(copy, data, len);
    m->bytes = copy;
    l->n++;
    return 0;
}

int tar_layout_add_blob(struct tar_layout *l, const char *name, const char *hex, uint64_t size)
{
    if (l->n >= TAR_MEMBERS_MAX) return -E2BIG;
    if (!*name || strlen(name) > TAR_NAME_MAX || strlen(hex) != SHA256_HEX_LEN) return -EINVAL;
    struct tar_member *m = add_member(l, name, size);
    if (!m) return -ENOMEM;
    memcpy(m->hex, hex, SHA256_HEX_LEN + 1);
    l->n++;
    return 0;
}

const struct tar_member *tar_layout_find(const struct tar_layout *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->members[i].name, name) == 0) return &l->members[i];
    return NULL;
}

static uint64_t padded(uint64_t size)
{
    return (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

void tar_layout_finish(struct tar_layout *l)
{
    uint64_t off = 0;
    for (size_t i = 0; i < l->n; i++) {
        l->members[i].offset = off;
        off += TAR_BLOCK + padded(l->members[i].size);
    }
    l->size = off + 2 * TAR_BLOCK;
}

/* A numeric field: width-1 octal digits and a NUL, or base-256 (GNU, read by Go and GNU tar)
 * when the value does not fit (a member over 8 GiB). */
static void put_number(unsigned char *field, size_t width, uint64_t v)
{
    if (width < 12 || v < (1ull << (3 * (width - 1)))) {
        snprintf((char *)field, width, "%0*llo", (int)(width - 1), (unsigned long long)v);
        return;
    }
    memset(field, 0, width);
    field[0] = 0x80;
    for (size_t i = width - 1; i > 0 && v; i--, v >>= 8)
        field[i] = (unsigned char)(v & 0xff);
}

void tar_layout_header(const struct tar_member *m, unsigned char out[TAR_BLOCK])
{
    memset(out, 0, TAR_BLOCK);
    memcpy(out, m->name, strlen(m->name)); /* name: 0..99 */
    put_number(out + 100, 8, 0444);        /* mode */
    put_number(out + 108, 8, 0);           /* uid */
    put_number(out + 116, 8, 0);           /* gid */
    put_number(out + 124, 12, m->size);    /* size */
    put_number(out + 136, 12, 0);          /* mtime: the epoch, as skopeo writes */
    out[156] = '0';                        /* regular file */
    memcpy(out + 257,
           "ustar\0"
           "00",
           8);                   /* magic, version */
    put_number(out + 329, 8, 0); /* devmajor */
    put_number(out + 337, 8, 0); /* devminor */
    memset(out + 148, ' ', 8);   /* checksum: over the header with this field blank */
    unsigned sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += out[i];
    snprintf((char *)out + 148, 8, "%06o", sum);
    out[155] = ' ';
}

/* The member whose header or content (with padding) holds off; l->n when off is in the end. */
static size_t member_at(const struct tar_layout *l, uint64_t off)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) { /* the first member starting after off, minus one */
        size_t mid = lo + (hi - lo) / 2;
        if (l->members[mid].offset <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return l->n;
    const struct tar_member *m = &l->members[lo - 1];
    return off < m->offset + TAR_BLOCK + padded(m->size) ? lo - 1 : l->n;
}

/* Produces bytes at off (inside member i) into buf: up to the end of its region. */
static ssize_t read_member(const struct tar_layout *l, size_t i, char *buf, size_t size,
                           uint64_t off, tar_blob_read_fn read, void *ctx)
{
    const struct tar_member *m = &l->members[i];
    uint64_t rel = off - m->offset;
    if (rel < TAR_BLOCK) {
        unsigned char header[TAR_BLOCK];
        tar_layout_header(m, header);
        size_t n = TAR_BLOCK - rel < size ? (size_t)(TAR_BLOCK - rel) : size;
        memcpy(buf, header + rel, n);
        return (ssize_t)n;
    }
    rel -= TAR_BLOCK;
    if (rel >= m->size) { /* padding */
        uint64_t left = padded(m->size) - rel;
        size_t n = left < size ? (size_t)left : size;
        memset(buf, 0, n);
        return (ssize_t)n;
    }
    size_t n = m->size - rel < size ? (size_t)(m->size - rel) : size;
    if (m->bytes) {
        memcpy(buf, m->bytes + rel, n);
        return (ssize_t)n;
    }
    ssize_t got = read(ctx, i, buf, n, rel);
    return got == 0 ? -EIO : got; /* a blob shorter than its descriptor says */
}

ssize_t tar_layout_read(const struct tar_layout *l, char *buf, size_t size, uint64_t off,
                        tar_blob_read_fn read, void *ctx)
{
    if (off >= l->size) return 0;
    if (size > l->size - off) size = (size_t)(l->size - off);
    size_t done = 0;
    while (done < size) {
        size_t i = member_at(l, off + done);
        ssize_t n;
        if (i == l->n) { /* the two zero blocks at the end */
            memset(buf + done, 0, size - done);
            n = (ssize_t)(size - done);
        } else {
            n = read_member(l, i, buf + done, size - done, off + done, read, ctx);
        }
        if (n < 0) return n; /* never short: the kernel takes a short read for the end */
        done += (size_t)n;
    }
    return (ssize_t)done;
}
