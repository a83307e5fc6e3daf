#include "fs/status_xattr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/host.h"
#include "fs/progress.h"

/* The value changes between a caller's size probe and its read (bytes keep arriving), so the
 * probe answers this much more than the current length: the read that follows fits, and
 * returns the exact length of what it renders then. */
#define PROBE_SLACK 4096
#define XATTR_VALUE_MAX 65536 /* the kernel's limit (XATTR_SIZE_MAX) */

int status_transfers_xattr(struct progress *p, char *value, size_t size)
{
    char *json = progress_json(p);
    if (!json) return -ENOMEM;
    size_t len = strlen(json);
    int rc;
    if (size == 0) {
        size_t probe = len + PROBE_SLACK;
        rc = (int)(probe < XATTR_VALUE_MAX ? probe : XATTR_VALUE_MAX);
    } else if (size < len) {
        rc = -ERANGE;
    } else {
        memcpy(value, json, len);
        rc = (int)len;
    }
    free(json);
    return rc;
}

void status_tag_bytes(struct host *h, const char *repo, const char *tag, bool staged, char *text,
                      size_t textlen)
{
    struct xfer_sum sum;
    progress_tag_sum(h->progress, h->name, repo, tag, &sum);
    if (!sum.running && (!staged || (!sum.finished && !sum.failed))) return;
    size_t used = strlen(text);
    if (used >= textlen) return;
    int n = snprintf(
        text + used, textlen - used, "; blobs sent: %llu of %llu bytes, %u running, %u done",
        (unsigned long long)sum.done, (unsigned long long)sum.total, sum.running, sum.finished);
    if (n < 0 || (size_t)n >= textlen - used || !sum.failed) return;
    used += (size_t)n;
    snprintf(text + used, textlen - used, ", %u failed", sum.failed);
}
