/* Stores, counting by inode, the start-up scan and removal for the cache bound. */
#include "cache/evict_disk.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/storage.h"
#include "common/sha256.h"

#define BLOBS "docker/registry/v2/blobs/sha256"
#define MAX_INODES 32 /* distinct copies of one digest we tell apart; beyond, each counts */

int evict_list_stores(const char *dir, struct strlist *out)
{
    DIR *d = opendir(dir);
    if (!d) return -errno;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        char path[PATH_MAX];
        struct stat st;
        if (de->d_name[0] == '.' ||
            snprintf(path, sizeof(path), "%s/%s/" BLOBS, dir, de->d_name) >= (int)sizeof(path) ||
            stat(path, &st) || !S_ISDIR(st.st_mode))
            continue;
        rc = strlist_push(out, de->d_name);
    }
    closedir(d);
    return rc;
}

static int data_path(char *out, size_t len, const char *dir, const char *store, const char *hex)
{
    int n = snprintf(out, len, "%s/%s/" BLOBS "/%.2s/%s/data", dir, store, hex, hex);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct inode_seen {
    dev_t dev;
    ino_t ino;
    nlink_t nlink;
    uint64_t size;
    nlink_t ours; /* links found in the stores */
};

uint64_t evict_count(const char *dir, const struct strlist *stores, const char *hex)
{
    struct inode_seen seen[MAX_INODES];
    size_t n = 0;
    uint64_t extra = 0;
    for (size_t i = 0; i < stores->len; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (data_path(path, sizeof(path), dir, stores->items[i], hex) || stat(path, &st) ||
            !S_ISREG(st.st_mode))
            continue;
        size_t j = 0;
        while (j < n && (seen[j].dev != st.st_dev || seen[j].ino != st.st_ino))
            j++;
        if (j < n) {
            seen[j].ours++;
        } else if (n < MAX_INODES) {
            seen[n++] =
                (struct inode_seen){st.st_dev, st.st_ino, st.st_nlink, (uint64_t)st.st_size, 1};
        } else {
            extra += (uint64_t)st.st_size;
        }
    }
    uint64_t bytes = extra;
    for (size_t j = 0; j < n; j++)
        if (seen[j].nlink <= seen[j].ours) bytes += seen[j].size;
    return bytes;
}

static bool is_hex(const char *s, size_t len)
{
    if (strlen(s) != len) return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", s[i])) return false;
    return true;
}

/* The blobs of one XX directory of a store. */
static void scan_prefix(const char *prefix_dir, void (*found)(const char *, int64_t, void *),
                        void *ctx)
{
    DIR *d = opendir(prefix_dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[PATH_MAX];
        struct stat st;
        if (!is_hex(de->d_name, SHA256_HEX_LEN) ||
            snprintf(path, sizeof(path), "%s/%s/data", prefix_dir, de->d_name) >=
                (int)sizeof(path) ||
            stat(path, &st) || !S_ISREG(st.st_mode))
            continue;
        int64_t a = (int64_t)st.st_atim.tv_sec * 1000 + st.st_atim.tv_nsec / 1000000;
        int64_t m = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        found(de->d_name, a > m ? a : m, ctx);
    }
    closedir(d);
}

void evict_scan(const char *dir, const struct strlist *stores,
                void (*found)(const char *hex, int64_t last_use_ms, void *ctx), void *ctx,
                const bool *stop)
{
    for (size_t i = 0; i < stores->len && !__atomic_load_n(stop, __ATOMIC_ACQUIRE); i++) {
        char blobs[PATH_MAX];
        if (snprintf(blobs, sizeof(blobs), "%s/%s/" BLOBS, dir, stores->items[i]) >=
            (int)sizeof(blobs))
            continue;
        DIR *d = opendir(blobs);
        if (!d) continue;
        struct dirent *de;
        while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE) && (de = readdir(d))) {
            char prefix[PATH_MAX];
            if (!is_hex(de->d_name, 2) ||
                snprintf(prefix, sizeof(prefix), "%s/%s", blobs, de->d_name) >= (int)sizeof(prefix))
                continue;
            scan_prefix(prefix, found, ctx);
        }
        closedir(d);
    }
}

static bool in_victims(const char *hex, void *ctx)
{
    return strlist_contains_sorted(ctx, hex);
}

void evict_remove(const char *dir, const struct strlist *stores, const struct strlist *victims)
{
    for (size_t i = 0; i < stores->len; i++) {
        char root[PATH_MAX];
        if (snprintf(root, sizeof(root), "%s/%s", dir, stores->items[i]) >= (int)sizeof(root))
            continue;
        /* Links first: a registry serving the store never finds a link whose blob is gone. */
        storage_prune(root, in_victims, (void *)victims);
        for (size_t v = 0; v < victims->len; v++) {
            char path[PATH_MAX];
            if (data_path(path, sizeof(path), dir, stores->items[i], victims->items[v]) ||
                unlink(path))
                continue;
            /* Its own directory goes too; the XX directory stays (a download of another blob
             * may be creating its directory there right now). */
            *strrchr(path, '/') = '\0';
            rmdir(path);
        }
    }
}
