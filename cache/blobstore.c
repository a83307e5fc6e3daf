/* Paths and whole-file access in the distribution blob layout. */
#include "cache/blobcache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/sha256.h"

const char *blobcache_root(const struct blobcache *bc)
{
    return bc->root;
}

const char *blobcache_partial_dir(const struct blobcache *bc)
{
    return bc->partial;
}

int blobcache_data_path(const struct blobcache *bc, const char *hex, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", bc->root, hex,
                     hex);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int blobcache_partial_path(const struct blobcache *bc, const char *hex, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", bc->partial, hex);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

bool blobcache_has(const struct blobcache *bc, const char *hex)
{
    char path[PATH_MAX];
    return blobcache_data_path(bc, hex, path, sizeof(path)) == 0 && access(path, F_OK) == 0;
}

/* Moves a verified file into the store: mkdir -p its directory, then an atomic rename. */
int blobcache_commit_file(struct blobcache *bc, const char *tmp_path, const char *hex)
{
    char path[PATH_MAX];
    int rc = blobcache_data_path(bc, hex, path, sizeof(path));
    if (rc) return rc;
    char *slash = strrchr(path, '/');
    *slash = '\0';
    rc = mkdir_p(path, 0755);
    *slash = '/';
    if (rc) return rc;
    if (rename(tmp_path, path)) return -errno;
    return 0;
}

int blobcache_put_small(struct blobcache *bc, const char *hex, const void *data, size_t len)
{
    char actual[SHA256_HEX_LEN + 1];
    int rc = sha256_hex_of(data, len, actual);
    if (rc) return rc;
    if (strcmp(actual, hex) != 0) return -EIO;
    if (blobcache_has(bc, hex) || blobcache_link_sibling(bc, hex, len) == 0) return 0;
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s/%s.small.XXXXXX", bc->partial, hex);
    if (n < 0 || (size_t)n >= sizeof(tmp)) return -ENAMETOOLONG;
    int fd = mkstemp(tmp);
    if (fd < 0) return -errno;
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            rc = -errno;
            close(fd);
            unlink(tmp);
            return rc;
        }
        p += w;
        left -= (size_t)w;
    }
    fchmod(fd, 0644);
    close(fd);
    rc = blobcache_commit_file(bc, tmp, hex);
    if (rc) unlink(tmp);
    return rc;
}

int blobcache_get_small(struct blobcache *bc, const char *hex, size_t limit, struct buf *out)
{
    char path[PATH_MAX];
    int rc = blobcache_data_path(bc, hex, path, sizeof(path));
    if (rc) return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    buf_reset(out);
    out->limit = limit;
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        if ((rc = buf_append(out, chunk, (size_t)n))) break;
    }
    close(fd);
    if (rc) return rc;
    /* The store is on a disk others can touch: re-verify what we hand out as a manifest. */
    char actual[SHA256_HEX_LEN + 1];
    if ((rc = sha256_hex_of(out->data ? out->data : "", out->len, actual))) return rc;
    if (strcmp(actual, hex) != 0) {
        if (bc->foreign) { /* someone else's tree: report, never delete */
            log_error("storage: %s does not match its digest", path);
            return -EIO;
        }
        log_error("cache: %s does not match its digest; discarding it", path);
        unlink(path);
        return -ENOENT;
    }
    return 0;
}

int blobcache_adopt(struct blobcache *bc, const char *path, const char *hex)
{
    struct stat st;
    if (blobcache_has(bc, hex) ||
        (stat(path, &st) == 0 && blobcache_link_sibling(bc, hex, (uint64_t)st.st_size) == 0))
        return unlink(path) ? -errno : 0;
    chmod(path, 0644);
    return blobcache_commit_file(bc, path, hex);
}

/* A blob is stored once per machine: the stores of other registries (and the cache, for a
 * storage tree) are looked up first, and a verified copy found there is hardlinked. Across
 * filesystems link() fails and the caller copies. */
int blobcache_link_sibling(struct blobcache *bc, const char *hex, uint64_t size)
{
    if (!bc->share[0]) return -ENOENT;
    DIR *d = opendir(bc->share);
    if (!d) return -ENOENT;
    char target[PATH_MAX];
    int rc = blobcache_data_path(bc, hex, target, sizeof(target));
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        char candidate[PATH_MAX];
        struct stat st;
        if (de->d_name[0] == '.' ||
            snprintf(candidate, sizeof(candidate),
                     "%s/%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", bc->share, de->d_name,
                     hex, hex) >= (int)sizeof(candidate) ||
            strcmp(candidate, target) == 0 || stat(candidate, &st) || (uint64_t)st.st_size != size)
            continue;
        char *slash = strrchr(target, '/');
        *slash = '\0';
        int made = mkdir_p(target, 0755);
        *slash = '/';
        if (made == 0 && link(candidate, target) == 0) {
            closedir(d);
            return 0;
        }
    }
    closedir(d);
    return -ENOENT;
}
