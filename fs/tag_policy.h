/* What deleting a tag means to a registry (docs/write.md "Overwrite, retag, delete"): the
 * registry policy behind rm -r and mv of a tag, apart from the FUSE operations. */
#ifndef REGISTRYFS_TAG_POLICY_H
#define REGISTRYFS_TAG_POLICY_H

#include "fs/host.h"

/* Deletes a published tag: by tag where the registry can untag, else by the manifest's digest,
 * refused (-EBUSY, with a log line) when another tag of the repository shares that digest,
 * -EPERM when the registry refuses deletion. */
int tag_delete(struct host *h, const char *repo, const char *tag);

/* After a retag (mv) to NEW_REPO:NEW_TAG published, drops the old tag where the registry can
 * delete a tag alone; else keeps it, with a log line. */
void tag_drop_retagged(struct host *h, const char *repo, const char *tag, const char *new_repo,
                       const char *new_tag);

#endif
