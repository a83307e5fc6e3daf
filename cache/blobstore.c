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

void blobcache_set_budget(struct blobcache *bc, struct cache_budget *budget)
{
    bc->budget = budget;
}

void blobcache_pin(struct blobcache *bc, const char *hex)
{
    budget_pin(bc->budget, hex);
}

void blobcache_unpin(struct blobcache *bc, const char *hex)
{
    budget_unpin(bc->budget, hex);
}

const char *blobcache_root(const struct blobcache *bc)
{
    return bc->root;
}

/* Temporaries go to the mount's own directory (see struct blobcache `tmp`), so a later mount
 * removes them if this one dies. */
const char *blobcache_partial_dir(const struct blobcache *bc)
{
    return bc->tmp;
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
    budget_changed(bc->budget, hex);
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
    int n = snprintf(tmp, sizeof(tmp), "%s/%s.small.XXXXXX", bc->tmp, hex);
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
    if (rc)
        unlink(tmp);
    else
        blobcache_mark_verified(bc, hex);
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
        budget_changed(bc->budget, hex);
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
    int rc = blobcache_commit_file(bc, path, hex);
    if (!rc) blobcache_mark_verified(bc, hex); /* the caller verified the content */
    return rc;
}

/* Path of sibling store `name`'s copy of hex; false when it is not a candidate (ours, a dot
 * entry, too long). */
static bool sibling_path(const struct blobcache *bc, const char *name, const char *hex,
                         const char *target, char *out, size_t outlen)
{
    if (name[0] == '.') return false;
    int n = snprintf(out, outlen, "%s/%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", bc->share,
                     name, hex, hex);
    return n > 0 && (size_t)n < outlen && strcmp(out, target) != 0;
}

bool blobcache_sibling_has(const struct blobcache *bc, const char *hex, uint64_t size)
{
    char target[PATH_MAX], candidate[PATH_MAX];
    if (!bc->share[0] || blobcache_data_path(bc, hex, target, sizeof(target))) return false;
    DIR *d = opendir(bc->share);
    if (!d) return false;
    struct dirent *de;
    bool found = false;
    while (!found && (de = readdir(d))) {
        struct stat st;
        found = sibling_path(bc, de->d_name, hex, target, candidate, sizeof(candidate)) &&
                stat(candidate, &st) == 0 && (uint64_t)st.st_size == size;
    }
    closedir(d);
    return found;
}

/* A sibling's copy may have been damaged since it was stored: it is hashed before it is
 * linked (once per mount: the linked blob is then verified here). A damaged copy is removed;
 * the stores under the cache directory are all registryfs's own. */
static bool sibling_is_sound(const char *candidate, const char *hex, uint64_t size)
{
    int fd = open(candidate, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char actual[SHA256_HEX_LEN + 1];
    int rc = sha256_hex_of_fd(fd, size, actual);
    if (rc == 0 && strcmp(actual, hex) != 0) {
        log_error("cache: %s hashes to sha256:%s; discarding it instead of linking it", candidate,
                  actual);
        struct stat mine, now;
        if (fstat(fd, &mine) == 0 && stat(candidate, &now) == 0 && mine.st_ino == now.st_ino &&
            mine.st_dev == now.st_dev)
            unlink(candidate);
        rc = -EIO;
    } else if (rc) {
        log_warn("cache: cannot read %s: %s", candidate, strerror(-rc));
    }
    close(fd);
    return rc == 0;
}

/* A blob is stored once per machine: the trees of -o link_from, then the stores of other
 * registries (and the cache, for a storage tree) are looked up first, and a verified copy
 * found there is hardlinked. Across filesystems link() fails and the caller copies. size
 * UINT64_MAX takes a copy of any size. Called without bc->lock (it hashes). */
int blobcache_link_sibling(struct blobcache *bc, const char *hex, uint64_t size)
{
    if (blobcache_link_root(bc, hex, size) == 0) return 0; /* the trees named come first */
    return blobcache_link_cache_sibling(bc, hex, size);
}

int blobcache_link_cache_sibling(struct blobcache *bc, const char *hex, uint64_t size)
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
        if (!sibling_path(bc, de->d_name, hex, target, candidate, sizeof(candidate)) ||
            stat(candidate, &st) || (size != UINT64_MAX && (uint64_t)st.st_size != size) ||
            !sibling_is_sound(candidate, hex, (uint64_t)st.st_size))
            continue;
        char *slash = strrchr(target, '/');
        *slash = '\0';
        int made = mkdir_p(target, 0755);
        *slash = '/';
        if (made == 0 && link(candidate, target) == 0) {
            closedir(d);
            blobcache_mark_verified(bc, hex);
            budget_changed(bc->budget, hex); /* the same inode: counted once */
            return 0;
        }
        if (made == 0 && errno == EEXIST) break; /* stored meanwhile: checked when opened */
    }
    closedir(d);
    return -ENOENT;
}
