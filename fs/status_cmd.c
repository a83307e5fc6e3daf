/*
 * `registryfs status [--watch] [--json] MOUNTPOINT`: the transfers of a mount, read from its
 * root's user.registryfs.transfers xattr (docs/status.md). It runs in the caller's process and
 * talks to the daemon only through the filesystem, so it needs no socket and no privileges
 * beyond reading the mount.
 */
#include "fs/status_cmd.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fs/status_print.h"
#include "fs/status_xattr.h"

#define VALUE_MAX 65536 /* the kernel's xattr limit: the daemon keeps below it */

struct status_opts {
    bool watch, json;
    const char *mountpoint;
};

static void status_usage(FILE *out)
{
    fprintf(out, "usage: registryfs status [-w|--watch] [--json] MOUNTPOINT\n"
                 "\n"
                 "Prints the transfers (downloads, uploads, copies between registries) running\n"
                 "and recently ended in the registryfs mount at MOUNTPOINT.\n"
                 "\n"
                 "  -w, --watch   redraw every second until nothing is running\n"
                 "  --json        print the daemon's JSON document instead of the table\n"
                 "  -h, --help    this text\n");
}

/* 0, 1 after --help, or -1 with a message. */
static int parse_args(int argc, char **argv, struct status_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-w") == 0 || strcmp(a, "--watch") == 0) {
            o->watch = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            status_usage(stdout);
            return 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "registryfs status: unknown option %s\n", a);
            return -1;
        } else if (o->mountpoint) {
            fprintf(stderr, "registryfs status: one MOUNTPOINT only\n");
            return -1;
        } else {
            o->mountpoint = a;
        }
    }
    if (!o->mountpoint) {
        status_usage(stderr);
        return -1;
    }
    return 0;
}

/* The JSON text (NUL-terminated) into buf, or -1 with a message. */
static int read_transfers(const char *mnt, char *buf, size_t buflen)
{
    ssize_t n = getxattr(mnt, TRANSFERS_XATTR, buf, buflen - 1);
    if (n >= 0) {
        buf[n] = '\0';
        return 0;
    }
    int err = errno;
    if (err == ENODATA || err == ENOTSUP)
        fprintf(stderr,
                "registryfs status: %s is not the mount point of a registryfs mount "
                "(it has no %s)\n",
                mnt, TRANSFERS_XATTR);
    else if (err == ENOTCONN)
        fprintf(stderr, "registryfs status: %s: the mount's daemon is gone (%s)\n", mnt,
                strerror(err));
    else
        fprintf(stderr, "registryfs status: %s: %s\n", mnt, strerror(err));
    return -1;
}

/* Prints one snapshot; *running gets the number of transfers still running. */
static int show_once(const struct status_opts *o, char *buf, bool redraw, int *running)
{
    if (read_transfers(o->mountpoint, buf, VALUE_MAX + 1)) return -1;
    cJSON *doc = cJSON_Parse(buf);
    const cJSON *r = doc ? cJSON_GetObjectItemCaseSensitive(doc, "running") : NULL;
    const cJSON *list = doc ? cJSON_GetObjectItemCaseSensitive(doc, "transfers") : NULL;
    if (!cJSON_IsNumber(r) || !cJSON_IsArray(list)) {
        fprintf(stderr, "registryfs status: %s: the daemon's answer is not a transfer table\n",
                o->mountpoint);
        cJSON_Delete(doc);
        return -1;
    }
    *running = r->valuedouble > 0 ? (int)r->valuedouble : 0;
    if (o->json) {
        printf("%s\n", buf);
    } else {
        if (redraw) fputs("\033[H\033[2J", stdout); /* home, clear: a redraw in place */
        status_print_table(stdout, doc);
    }
    fflush(stdout);
    cJSON_Delete(doc);
    return 0;
}

int status_main(int argc, char **argv)
{
    struct status_opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc > 0 ? 0 : 2;
    char *buf = malloc(VALUE_MAX + 1);
    if (!buf) return 1;
    bool tty = isatty(STDOUT_FILENO);
    int running = 0, status = 0;
    for (bool first = true;; first = false) {
        if (!first && !tty && !o.json) putchar('\n'); /* a log of snapshots, one after another */
        if (show_once(&o, buf, o.watch && tty && !o.json, &running)) {
            status = 1;
            break;
        }
        if (!o.watch || running == 0) break;
        struct timespec second = {1, 0};
        nanosleep(&second, NULL);
    }
    free(buf);
    return status;
}
