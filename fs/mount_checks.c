/* Checks made before mounting that look at the system around the command line. */
#include "fs/mount_checks.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* The parent pid and command name of PID, from /proc/PID/stat ("pid (comm) state ppid ..."). */
static int proc_parent(pid_t pid, pid_t *ppid, char *comm, size_t commlen)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    char *open = got ? strchr(line, '(') : NULL;
    char *close = got ? strrchr(line, ')') : NULL; /* comm may itself hold ')' */
    int parent;
    if (!open || !close || close < open || sscanf(close + 1, " %*c %d", &parent) != 1) return -1;
    snprintf(comm, commlen, "%.*s", (int)(close - open - 1), open + 1);
    *ppid = parent;
    return 0;
}

/* mount(8) runs mount.fuse3 (or mount.fuse), which runs us through "sh -c": look a few
 * generations up. An environment variable would be simpler, but mount.fuse3 sets none. */
bool started_by_mount_helper(void)
{
    pid_t pid = getppid();
    for (int depth = 0; depth < 4 && pid > 1; depth++) {
        char comm[64];
        pid_t parent;
        if (proc_parent(pid, &parent, comm, sizeof(comm))) return false;
        if (!strcmp(comm, "mount.fuse3") || !strcmp(comm, "mount.fuse") || !strcmp(comm, "mount"))
            return true;
        pid = parent;
    }
    return false;
}

/* libfuse 3 mounts over anything; like libfuse 2 and rclone, we refuse a directory that
 * holds files, which the mount would hide (a typo in the mount point, a second mount). */
int check_mountpoint(const char *mountpoint, bool nonempty)
{
    DIR *d = opendir(mountpoint);
    if (!d) {
        fprintf(stderr, "registryfs: mount point %s: %s\n", mountpoint, strerror(errno));
        return -1;
    }
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    if (empty || nonempty) return 0;
    fprintf(stderr,
            "registryfs: mount point %s is not empty (its files would be hidden); "
            "use -o nonempty to mount over it anyway\n",
            mountpoint);
    return -1;
}
