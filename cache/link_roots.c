/*
 * -o link_from: storage roots of others (a big tree an image selection is taken from) whose
 * blobs this store hardlinks instead of storing a copy, and the verified stored copies a
 * writer's bytes are compared with (blobcache_open_verified).
 *
 * A link root is trusted like a mounted storage tree: a copy is hashed once per mount before
 * it is linked, a damaged one is reported and never linked, and nothing in a link root is ever
 * written or deleted. Across filesystems link() fails (EXDEV) and the caller stores a copy.
 */
#include "cache/blobcache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/* Whether a and b are on one filesystem (link() between them can work). */
static bool same_fs(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev;
}

int blobcache_add_link_root(struct blobcache *bc, const char *root)
{
    /* a copy there could only be hashed and then not linked (EXDEV), for every blob */
    if (!same_fs(root, bc->root)) {
        log_warn("link_from: %s is on another filesystem than %s: its blobs are copied, not "
                 "linked",
                 root, bc->root);
        return 0;
    }
    char **grown = realloc(bc->link_roots, (bc->n_link_roots + 1) * sizeof(*grown));
    if (!grown) return -ENOMEM;
    bc->link_roots = grown;
    grown[bc->n_link_roots] = strdup(root);
    if (!grown[bc->n_link_roots]) return -ENOMEM;
    bc->n_link_roots++;
    return 0;
}

/* Hashes the link root's copy (candidate, open as fd): true when it is blob hex. */
static bool root_copy_is_sound(int fd, const char *candidate, const char *hex, uint64_t size)
{
    char actual[SHA256_HEX_LEN + 1];
    int rc = sha256_hex_of_fd(fd, size, actual);
    if (rc) {
        log_warn("link_from: cannot read %s: %s", candidate, strerror(-rc));
        return false;
    }
    if (strcmp(actual, hex) != 0) {
        log_error("link_from: %s hashes to sha256:%s; not linking it (a copy is stored)", candidate,
                  actual);
        return false;
    }
    return true;
}

/* Whether path names the file open as fd (the one that was hashed). */
static bool same_file(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
           a.st_dev == b.st_dev;
}

/* Links root's copy of hex into the store; 0 when the store holds it now. */
static int link_from_root(struct blobcache *bc, const char *root, const char *hex, uint64_t size,
                          const char *target)
{
    char candidate[PATH_MAX];
    struct stat st;
    int n = snprintf(candidate, sizeof(candidate),
                     "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", root, hex, hex);
    if (n < 0 || (size_t)n >= sizeof(candidate) || strcmp(candidate, target) == 0) return -ENOENT;
    int fd = open(candidate, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -ENOENT;
    int rc = -ENOENT;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (size == UINT64_MAX || (uint64_t)st.st_size == size) &&
        root_copy_is_sound(fd, candidate, hex, (uint64_t)st.st_size)) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", target);
        *strrchr(dir, '/') = '\0';
        rc = mkdir_p(dir, 0755);
        if (rc == 0 && link(candidate, target) != 0)
            rc = errno == EEXIST ? 0 : -errno; /* stored meanwhile: verified when used */
        else if (rc == 0 && !same_file(fd, target))
            rc = unlink(target) ? -errno : -ENOENT; /* replaced after it was hashed */
        else if (rc == 0)
            blobcache_mark_verified(bc, hex);
        if (rc && rc != -EXDEV) log_warn("link_from: cannot link %s: %s", candidate, strerror(-rc));
    }
    close(fd);
    return rc;
}

bool blobcache_root_has(const struct blobcache *bc, const char *hex, uint64_t size)
{
    for (size_t i = 0; i < bc->n_link_roots; i++) {
        char path[PATH_MAX];
        struct stat st;
        int n = snprintf(path, sizeof(path), "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data",
                         bc->link_roots[i], hex, hex);
        if (n > 0 && (size_t)n < sizeof(path) && stat(path, &st) == 0 &&
            (uint64_t)st.st_size == size)
            return true;
    }
    return false;
}

int blobcache_link_root(struct blobcache *bc, const char *hex, uint64_t size)
{
    char target[PATH_MAX];
    if (!bc->n_link_roots || blobcache_data_path(bc, hex, target, sizeof(target))) return -ENOENT;
    for (size_t i = 0; i < bc->n_link_roots; i++)
        if (link_from_root(bc, bc->link_roots[i], hex, size, target) == 0) return 0;
    return -ENOENT;
}

int blobcache_open_verified(struct blobcache *bc, const char *hex, int *fd_out, uint64_t *size)
{
    char path[PATH_MAX];
    int rc = blobcache_data_path(bc, hex, path, sizeof(path));
    if (rc) return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    /* (the cache's stores only when a link can work: else the commit's adoption hashes them) */
    if (fd < 0 && (blobcache_link_root(bc, hex, UINT64_MAX) == 0 ||
                   (bc->share[0] && same_fs(bc->share, bc->root) &&
                    blobcache_link_cache_sibling(bc, hex, UINT64_MAX) == 0)))
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -ENOENT;
    struct stat st;
    rc = fstat(fd, &st) ? -errno : 0;
    /* the store's own copies are hashed once per mount too: a damaged one is not vouched for */
    if (rc == 0) rc = blobcache_verify_once(bc, fd, hex, (uint64_t)st.st_size);
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return 0;
}
