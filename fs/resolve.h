/* Path → what it names: a hosts list, a namespace/repository directory, an image, or a file. */
#ifndef REGISTRYFS_RESOLVE_H
#define REGISTRYFS_RESOLVE_H

#include <stdbool.h>

#include "fs/archive_view.h"
#include "fs/image_view.h"
#include "fs/oci_view.h"
#include "fs/rfs.h"
#include "fs/stage.h"
#include "transport/ref.h"

/* NODE_ARCHIVE: REPO:TAG.tar (fs/archive_view.h); NODE_OCI_DIR, NODE_OCI_FILE: a directory or
 * file of a tag's OCI layout view (fs/oci_view.h) */
enum node_kind {
    NODE_HOSTS,
    NODE_DIR,
    NODE_IMAGE,
    NODE_FILE,
    NODE_ARCHIVE,
    NODE_OCI_DIR,
    NODE_OCI_FILE
};

struct node {
    enum node_kind kind;
    struct host *host;
    char dir[REF_NAME_MAX + 1]; /* NODE_DIR: namespace path, "" for the registry root */
    int dir_flags;
    char repo[REF_NAME_MAX + 1];                /* NODE_IMAGE, NODE_FILE */
    char ref[REF_TAG_MAX + DIGEST_STR_LEN + 2]; /* tag or sha256:<hex> */
    struct image_view *view;                    /* NODE_FILE; NODE_IMAGE with want_view */
    const struct view_entry *entry;             /* NODE_FILE of a published image, OCI_BLOB */
    enum oci_part oci;                          /* NODE_OCI_*: where in the OCI layout view */
    struct stage *stage;       /* NODE_IMAGE, NODE_FILE: the image is being written (-o push) */
    struct staged_file *sfile; /* NODE_FILE: a file written into the stage */
    /* NODE_ARCHIVE: REPO:TAG.tar, the docker-archive view of tag ref (fs/archive_view.h) */
    struct archive_view *archive;
};

#define DIR_IS_CREATED 4 /* made by mkdir, unknown to the registry so far */

/*
 * Resolves an absolute path below the mount. want_view loads the image view for NODE_IMAGE
 * (for listing it); files always load it. -ENOENT for names that do not exist or break the
 * distribution grammar, -EIO/-EACCES from the registry.
 */
int resolve_path(struct rfs *fs, const char *path, bool want_view, struct node *out);
/* The syntax of an alias component beside a repository (no lookup): REPO:TAG or
 * REPO@sha256:HEX, REPO joined to prefix. 0 with repo, ref and by_digest set; 1 when comp is
 * no alias; -ENOENT when it is one but names no valid repository, tag or digest. */
int resolve_alias_parse(const char *prefix, const char *comp, size_t len,
                        char repo[REF_NAME_MAX + 1], char ref[REF_TAG_MAX + DIGEST_STR_LEN + 2],
                        bool *by_digest);
/* resolve_path for a file (-EISDIR for anything else), with its view loaded: NODE_FILE, or
 * NODE_OCI_FILE (read-only); an archive view is -EROFS (what opens a file to write it calls
 * this). */
int resolve_file(struct rfs *fs, const char *path, struct node *out);
/* resolve_file for reading: a file or an archive view (NODE_ARCHIVE). */
int resolve_readable(struct rfs *fs, const char *path, struct node *out);
void node_release(struct node *n);

#endif
