/*
 * What `registryfs status` and scripts read through the mount (docs/status.md): the mount
 * root's user.registryfs.transfers (the transfer table as JSON) and, appended to a tag
 * directory's user.registryfs.status, the bytes of that tag's uploads.
 */
#ifndef REGISTRYFS_STATUS_XATTR_H
#define REGISTRYFS_STATUS_XATTR_H

#include <stdbool.h>
#include <stddef.h>

struct progress;
struct host;

#define TRANSFERS_XATTR "user.registryfs.transfers"

/* getxattr of TRANSFERS_XATTR: the length, the value, or -ERANGE / -ENOMEM. */
int status_transfers_xattr(struct progress *p, char *value, size_t size);
/* Appends "; blobs sent: D of T bytes, N running, M done[, F failed]" to text when the
 * transfer table holds uploads into h's REPO:TAG and the tag is still being written (staged)
 * or some of them still run: a published tag whose uploads are over stays "published". */
void status_tag_bytes(struct host *h, const char *repo, const char *tag, bool staged, char *text,
                      size_t textlen);

#endif
