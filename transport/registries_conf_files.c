/* registries.conf files: the main file and its drop-ins (PATH.d/NAME.conf), read, parsed and
 * merged into one struct registries_conf, the way containers-registries.conf.d(5) says. */
#include "transport/registries_conf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/log.h"

int registries_conf_load(const char *path, struct registries_conf *out)
{
    memset(out, 0, sizeof(*out));
    char *data;
    size_t len;
    char err[256];
    int rc = read_small_file(path, REGISTRIES_CONF_MAX_BYTES, &data, &len);
    if (rc == -ENOENT) return rc;
    if (rc == 0)
        rc = registries_conf_parse(data, len, out, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "%s",
                 rc == -EFBIG || rc == -EINVAL ? "not a regular file of a sane size"
                                               : strerror(-rc));
    free(data);
    if (rc) log_error("registries.conf %s: %s; ignoring the whole file", path, err);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds src's entries to dst, replacing those with the same prefix. */
static int merge(struct registries_conf *dst, const struct registries_conf *src)
{
    for (size_t i = 0; i < src->n; i++) {
        size_t k = 0;
        while (k < dst->n && strcmp(dst->regs[k].prefix, src->regs[i].prefix) != 0)
            k++;
        if (k == dst->n) {
            if (dst->n >= REGISTRIES_CONF_MAX_REGISTRIES) return -EFBIG;
            struct registries_conf_registry *regs =
                realloc(dst->regs, (dst->n + 1) * sizeof(*regs));
            if (!regs) return -ENOMEM;
            dst->regs = regs;
            dst->n++;
        }
        dst->regs[k] = src->regs[i];
    }
    return 0;
}

#define DROPINS_MAX 64

int registries_conf_load_all(const char *path, struct registries_conf *out)
{
    int rc = registries_conf_load(path, out);
    if (rc && rc != -ENOENT) return rc; /* a broken main file: ignored as a whole, drop-ins too */
    bool found = rc == 0;
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s.d", path) >= (int)sizeof(dir)) return found ? 0 : -ENOENT;
    DIR *d = opendir(dir);
    if (!d) return found ? 0 : -ENOENT;
    char *names[DROPINS_MAX];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < DROPINS_MAX) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".conf") == 0 && e->d_name[0] != '.') {
            names[n] = strdup(e->d_name);
            if (names[n]) n++;
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        char file[PATH_MAX + NAME_MAX + 2];
        snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
        struct registries_conf more;
        if (!rc && registries_conf_load(file, &more) == 0) {
            found = true;
            rc = merge(out, &more);
            registries_conf_free(&more);
            if (rc) log_error("registries.conf %s: cannot merge it: %s", file, strerror(-rc));
        }
        free(names[i]);
    }
    if (rc) {
        registries_conf_free(out);
        return rc;
    }
    return found ? 0 : -ENOENT;
}
