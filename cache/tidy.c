/*
 * Temporaries of a mount (upload spill files, copies, small blobs being stored) live in a
 * directory of its own, PARTIAL/tmp.XXXXXX, which the mount holds an flock on until it ends.
 * A mount that is killed leaves its directory behind with the lock free: the next mount using
 * the same cache directory removes it. Two live mounts may share a cache directory; each
 * leaves the other's directory alone because its lock is held. Downloads (PARTIAL/HEX) are not
 * temporaries: an interrupted one is resumed.
 */
#include "cache/blobcache_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define TMP_PREFIX "tmp."
#define NEW_PREFIX ".new."
/* A directory still named .new.* is being set up by a starting mount (it is renamed once
 * locked); only one that old was left by a mount that died in between. */
#define NEW_DIR_GRACE_S 60

/* Removes the files of directory fd (no subdirectories are made there); the bytes freed. */
static unsigned long long empty_dir(int fd)
{
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (!d) {
        if (dup >= 0) close(dup);
        return 0;
    }
    unsigned long long freed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, ".."))) continue;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            unlinkat(fd, de->d_name, 0) == 0)
            freed += (unsigned long long)st.st_blocks * 512;
    }
    closedir(d);
    return freed;
}

/* A mount's temporaries directory whose lock is free: its mount ended without cleaning up. */
static void remove_if_dead(struct blobcache *bc, int partial_fd, const char *name, time_t now)
{
    int fd = openat(partial_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    struct stat st;
    bool young = strncmp(name, NEW_PREFIX, strlen(NEW_PREFIX)) == 0 &&
                 (fstat(fd, &st) || st.st_mtime + NEW_DIR_GRACE_S > now);
    if (young || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return; /* a live mount's */
    }
    unsigned long long freed = empty_dir(fd);
    unlinkat(partial_fd, name, AT_REMOVEDIR);
    close(fd);
    log_info("cache: removed %s/%s, left by a mount that ended (%llu bytes)", bc->partial, name,
             freed);
}

/* Temporaries that older versions put straight into PARTIAL (upload.*, copy.*, HEX.small.*)
 * carry no owner: those last written before this mount started are taken as left over. */
static void remove_loose(struct blobcache *bc, int partial_fd, const char *name,
                         const struct timespec *started)
{
    if (strncmp(name, "upload.", 7) != 0 && strncmp(name, "copy.", 5) != 0 &&
        !strstr(name, ".small."))
        return;
    struct stat st;
    if (fstatat(partial_fd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
        st.st_mtim.tv_sec > started->tv_sec ||
        (st.st_mtim.tv_sec == started->tv_sec && st.st_mtim.tv_nsec >= started->tv_nsec))
        return;
    if (unlinkat(partial_fd, name, 0) == 0)
        log_info("cache: removed %s/%s, left by a mount that ended (%llu bytes)", bc->partial, name,
                 (unsigned long long)st.st_blocks * 512);
}

static void remove_leftovers(struct blobcache *bc, const struct timespec *now)
{
    int fd = open(bc->partial, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int dup = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (!d) {
        if (dup >= 0) close(dup);
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0 ||
            strncmp(de->d_name, NEW_PREFIX, strlen(NEW_PREFIX)) == 0)
            remove_if_dead(bc, fd, de->d_name, now->tv_sec);
        else
            remove_loose(bc, fd, de->d_name, now);
    }
    closedir(d);
    close(fd);
}

/* Made as .new.XXXXXX, locked, then renamed to tmp.XXXXXX: a directory named tmp.* is always
 * locked while its mount lives, so a mount starting meanwhile never takes it for a leftover. */
static int make_tmp_dir(struct blobcache *bc)
{
    char made[PATH_MAX];
    int n = snprintf(made, sizeof(made), "%s/" NEW_PREFIX "XXXXXX", bc->partial);
    if (n < 0 || (size_t)n >= sizeof(made) || (size_t)n >= sizeof(bc->tmp)) return -ENAMETOOLONG;
    if (!mkdtemp(made)) return -errno;
    int fd = open(made, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : flock(fd, LOCK_EX | LOCK_NB) ? -errno : 0;
    const char *suffix = made + strlen(made) - 6;
    if (!rc && snprintf(bc->tmp, sizeof(bc->tmp), "%s/" TMP_PREFIX "%s", bc->partial, suffix) >=
                   (int)sizeof(bc->tmp))
        rc = -ENAMETOOLONG;
    if (!rc && rename(made, bc->tmp)) rc = -errno;
    if (rc) {
        if (fd >= 0) close(fd);
        rmdir(made);
        bc->tmp[0] = '\0';
        return rc;
    }
    bc->tmp_fd = fd;
    return 0;
}

int blobcache_tidy_start(struct blobcache *bc)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    remove_leftovers(bc, &now);
    int rc = make_tmp_dir(bc);
    if (rc) log_error("cache: cannot create a directory in %s: %s", bc->partial, strerror(-rc));
    return rc;
}

/* At the end of the mount nothing in its directory is in use any more. */
void blobcache_tidy_end(struct blobcache *bc)
{
    if (!bc->tmp[0]) return;
    empty_dir(bc->tmp_fd);
    rmdir(bc->tmp);
    close(bc->tmp_fd);
    bc->tmp_fd = -1;
}
