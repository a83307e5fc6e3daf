/* -o link_from=DIR[:DIR...]: storage trees whose verified blobs are hardlinked into the
 * mount's blob store instead of stored again (docs/packaging.md, "Selecting images"). */
#ifndef REGISTRYFS_LINK_FROM_H
#define REGISTRYFS_LINK_FROM_H

struct blobcache;

/* Checks every DIR of the option (it must exist and hold docker/registry/v2) and rewrites
 * *list with their absolute, resolved paths (the daemon changes directory to /). Prints
 * the error naming the option and returns -1 when one is unusable. */
int link_from_resolve(char **list);
/* Makes every DIR of the resolved list a link root of bc. */
int link_from_apply(struct blobcache *bc, const char *list);

#endif
