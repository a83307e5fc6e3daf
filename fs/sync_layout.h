/*
 * -o sync_layout: directories list images the way `skopeo sync --dest dir` writes them and
 * `skopeo sync --src dir` reads them back, NAME:TAG beside each other, so a sync from the
 * mount pushes every image under its own name.
 */
#ifndef REGISTRYFS_SYNC_LAYOUT_H
#define REGISTRYFS_SYNC_LAYOUT_H

#include <stdbool.h>

#include "common/strlist.h"
#include "fs/host.h"

/*
 * The entries of directory dir ("" is the registry root): NAME:TAG for every tag of every
 * repository directly below it, NAME for every namespace below it. A repository's own
 * directory lists no tags (skopeo would take REPO/TAG for a repository named TAG); its tags
 * still resolve there by name. With push, tags being written and directories made by mkdir
 * are listed too.
 */
int sync_layout_list(struct host *h, const char *dir, bool push, struct strlist *out);

#endif
