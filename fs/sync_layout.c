#include "fs/sync_layout.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "fs/stage.h"
#include "transport/ref.h"

/* Adds NAME:TAG for each tag; a name too long for a directory entry is left out loudly, since
 * a sync from the mount would otherwise miss that image without a word. */
static int add_tagged(const char *name, const char *repo, const struct strlist *tags,
                      struct strlist *out)
{
    int rc = 0;
    for (size_t i = 0; i < tags->len && rc == 0; i++) {
        char entry[NAME_MAX + 1];
        int len = snprintf(entry, sizeof(entry), "%s:%s", name, tags->items[i]);
        if (len < 0 || (size_t)len >= sizeof(entry)) {
            log_warn("sync_layout: %s:%s is too long for a directory entry; not listed", repo,
                     tags->items[i]);
            continue;
        }
        rc = strlist_push(out, entry);
    }
    return rc;
}

/* One name below dir: its tags as NAME:TAG, and NAME itself when it holds further names (a
 * namespace) or is an empty directory made by mkdir. */
static int list_child(struct host *h, const char *dir, const char *name, bool push,
                      struct strlist *out)
{
    char path[REF_NAME_MAX + 1];
    int len = snprintf(path, sizeof(path), "%s%s%s", dir, *dir ? "/" : "", name);
    if (len < 0 || len > REF_NAME_MAX) return 0; /* not a repository name: nothing to list */
    int flags = host_dir_flags(h, path);
    if (flags < 0) return flags;
    struct strlist tags = STRLIST_INIT;
    int rc = 0;
    if (flags & DIR_IS_REPO) {
        rc = host_tags(h, path, &tags);
        if (rc == -ENOENT) rc = 0; /* in the catalog with no tag left: no image to list */
    }
    if (rc) /* failing the listing beats a sync that silently leaves an image out */
        log_warn("sync_layout: cannot list the tags of %s: %s", path, strerror(-rc));
    if (rc == 0 && push) rc = stage_tags_of(h, path, &tags);
    strlist_sort_unique(&tags);
    if (rc == 0) rc = add_tagged(name, path, &tags, out);
    bool holds_names = flags & DIR_IS_NAMESPACE;
    bool empty_made = push && !(flags & DIR_IS_REPO) && tags.len == 0; /* by mkdir */
    if (rc == 0 && (holds_names || empty_made)) rc = strlist_push(out, name);
    strlist_free(&tags);
    return rc;
}

int sync_layout_list(struct host *h, const char *dir, bool push, struct strlist *out)
{
    struct strlist names = STRLIST_INIT;
    int rc = host_dir_children(h, dir, &names);
    if (rc == 0 && push) rc = host_created_children(h, dir, &names);
    if (rc == 0 && push) rc = stage_repos_below(h, dir, &names);
    strlist_sort_unique(&names);
    for (size_t i = 0; i < names.len && rc == 0; i++)
        rc = list_child(h, dir, names.items[i], push, out);
    strlist_free(&names);
    return rc;
}
