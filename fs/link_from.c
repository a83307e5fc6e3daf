#include "fs/link_from.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/blobcache.h"

/* One DIR: resolved into out (PATH_MAX), or an error message on stderr. */
static int resolve_one(const char *dir, char *out)
{
    char tree[PATH_MAX + 32];
    struct stat st;
    if (!*dir) {
        fprintf(stderr, "registryfs: -o link_from: an empty directory name\n");
        return -1;
    }
    if (!realpath(dir, out) || stat(out, &st) != 0) {
        fprintf(stderr, "registryfs: -o link_from=%s: %s\n", dir, strerror(errno));
        return -1;
    }
    snprintf(tree, sizeof(tree), "%s/docker/registry/v2", out);
    if (!S_ISDIR(st.st_mode) || stat(tree, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr,
                "registryfs: -o link_from=%s: not a storage tree (no docker/registry/v2 in it)\n",
                dir);
        return -1;
    }
    return 0;
}

int link_from_resolve(char **list)
{
    if (!*list) return 0;
    size_t cap = strlen(*list) * 4 + PATH_MAX, len = 0;
    char *joined = calloc(1, cap);
    char *copy = strdup(*list);
    int rc = joined && copy ? 0 : -1;
    char *save = NULL;
    for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && rc == 0;
         dir = strtok_r(NULL, ":", &save)) {
        char resolved[PATH_MAX];
        rc = resolve_one(dir, resolved);
        if (rc == 0 && len + strlen(resolved) + 2 > cap) {
            fprintf(stderr, "registryfs: -o link_from: too many directories\n");
            rc = -1;
        }
        if (rc == 0)
            len += (size_t)snprintf(joined + len, cap - len, "%s%s", len ? ":" : "", resolved);
    }
    if (rc == 0 && len == 0) rc = resolve_one("", NULL);
    free(copy);
    if (rc) {
        free(joined);
        return -1;
    }
    free(*list);
    *list = joined;
    return 0;
}

int link_from_apply(struct blobcache *bc, const char *list)
{
    if (!list) return 0;
    char *copy = strdup(list);
    if (!copy) return -ENOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && rc == 0; dir = strtok_r(NULL, ":", &save))
        rc = blobcache_add_link_root(bc, dir);
    free(copy);
    return rc;
}
