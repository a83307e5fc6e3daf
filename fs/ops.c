#include "fs/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache/evict.h"
#include "common/log.h"
#include "fs/file_handle.h"
#include "fs/ops_write.h"
#include "fs/resolve.h"
#include "fs/shutdown.h"
#include "fs/stage_report.h"
#include "fs/sync_layout.h"

static struct rfs *current_fs(void)
{
    return fuse_get_context()->private_data;
}

static void fill_dir_stat(const struct rfs *fs, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFDIR | (fs->cfg.push ? 0755 : 0555);
    st->st_nlink = 2;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_size = 4096;
}

/* A regular file of size bytes, mode and modification time given. */
static void fill_reg_stat(mode_t mode, uint64_t size, struct timespec mtime, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFREG | mode;
    st->st_nlink = 1;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_size = (off_t)size;
    st->st_blksize = 1 << 20;
    st->st_blocks = (blkcnt_t)((size + 511) / 512);
    st->st_mtim = st->st_ctim = st->st_atim = mtime;
}

static void fill_file_stat(const struct rfs *fs, const struct view_entry *e, struct stat *st)
{
    struct timespec mtime = {.tv_sec = e->mtime};
    fill_reg_stat(fs->cfg.push ? 0644 : 0444, e->size, mtime, st);
}

static void fill_staged_stat(const struct staged_file *f, struct stat *st)
{
    fill_reg_stat(f->mode, f->size, f->mtime, st);
}

/* A docker-archive view: read-only whatever the mount. */
static void fill_archive_stat(const struct archive_view *a, struct stat *st)
{
    fill_reg_stat(0444, a->layout.size, (struct timespec){.tv_sec = a->mtime}, st);
}

/* The OCI layout view is read-only, even with -o push. */
static int fill_oci_stat(const struct rfs *fs, const struct node *n, struct stat *st)
{
    fill_dir_stat(fs, st);
    st->st_mode = S_IFDIR | 0555;
    if (n->kind == NODE_OCI_DIR) return 0;
    uint64_t size;
    time_t mtime;
    int rc = oci_view_file_info(n, &size, &mtime);
    if (rc == 0) fill_reg_stat(0444, size, (struct timespec){.tv_sec = mtime}, st);
    return rc;
}

static void fill_node_stat(const struct rfs *fs, const struct node *n, struct stat *st)
{
    if (n->kind == NODE_ARCHIVE)
        fill_archive_stat(n->archive, st);
    else if (n->kind == NODE_FILE && n->sfile)
        fill_staged_stat(n->sfile, st);
    else if (n->kind == NODE_FILE)
        fill_file_stat(fs, n->entry, st);
    else
        fill_dir_stat(fs, st);
}

static int rfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    struct rfs *fs = current_fs();
    struct node n;
    int rc = resolve_path(fs, path, false, &n);
    if (rc) return rc;
    if (n.kind == NODE_OCI_DIR || n.kind == NODE_OCI_FILE)
        rc = fill_oci_stat(fs, &n, st);
    else
        fill_node_stat(fs, &n, st);
    node_release(&n);
    return rc;
}

/* A listing is built once at opendir, so readdir can hand out real, stable offsets (which
 * keeps READDIRPLUS attributes: no LOOKUP per entry). Entries share their attributes: a
 * directory of 120 000 tags holds one struct stat, not 120 000 (memory stays bounded). */
struct listing {
    size_t n, cap;
    struct listing_entry {
        char *name;
        uint32_t st; /* index into stats */
    } * items;
    size_t n_stats, cap_stats;
    struct stat *stats; /* distinct attributes, in the order first seen */
};

/* The index of st in l->stats, added when it differs from the last one. */
static int stat_index(struct listing *l, const struct stat *st, uint32_t *out)
{
    if (l->n_stats && memcmp(&l->stats[l->n_stats - 1], st, sizeof(*st)) == 0) {
        *out = (uint32_t)(l->n_stats - 1);
        return 0;
    }
    if (l->n_stats == l->cap_stats) {
        size_t cap = l->cap_stats ? l->cap_stats * 2 : 4;
        struct stat *stats = realloc(l->stats, cap * sizeof(*stats));
        if (!stats) return -ENOMEM;
        l->stats = stats;
        l->cap_stats = cap;
    }
    l->stats[l->n_stats] = *st;
    *out = (uint32_t)l->n_stats++;
    return 0;
}

static int listing_add(struct listing *l, const char *name, const struct stat *st)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct listing_entry *items = realloc(l->items, cap * sizeof(*items));
        if (!items) return -ENOMEM;
        l->items = items;
        l->cap = cap;
    }
    uint32_t index;
    int rc = stat_index(l, st, &index);
    if (rc) return rc;
    l->items[l->n].name = strdup(name);
    if (!l->items[l->n].name) return -ENOMEM;
    l->items[l->n++].st = index;
    return 0;
}

static void listing_free(struct listing *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i].name);
    free(l->items);
    free(l->stats);
    free(l);
}

static int add_dir_names(struct rfs *fs, struct listing *l, const struct strlist *names)
{
    struct stat st;
    fill_dir_stat(fs, &st);
    int rc = 0;
    for (size_t i = 0; i < names->len && rc == 0; i++)
        rc = listing_add(l, names->items[i], &st);
    return rc;
}

static int list_stage(struct rfs *fs, struct node *n, struct listing *l)
{
    struct strlist names = STRLIST_INIT;
    int rc = stage_names(n->stage, &names);
    for (size_t i = 0; i < names.len && rc == 0; i++) {
        struct staged_file *f = staged_file_get(n->stage, names.items[i]);
        struct stat st;
        if (f) {
            fill_staged_stat(f, &st);
            staged_file_put(n->stage, f);
        } else {
            const struct view_entry *e = image_view_find(n->view, names.items[i]);
            if (!e) continue;
            fill_file_stat(fs, e, &st);
        }
        rc = listing_add(l, names.items[i], &st);
    }
    strlist_free(&names);
    return rc;
}

struct oci_listing {
    const struct rfs *fs;
    struct listing *l;
};

static int add_oci_child(void *ctx, const struct oci_child *c)
{
    struct oci_listing *o = ctx;
    struct stat st;
    fill_dir_stat(o->fs, &st);
    st.st_mode = S_IFDIR | 0555;
    if (!c->is_dir) fill_reg_stat(0444, c->size, (struct timespec){.tv_sec = c->mtime}, &st);
    return listing_add(o->l, c->name, &st);
}

static int list_node(struct rfs *fs, struct node *n, struct listing *l)
{
    struct strlist names = STRLIST_INIT;
    int rc = 0;
    switch (n->kind) {
    case NODE_HOSTS:
        rc = rfs_host_names(fs, &names);
        break;
    case NODE_DIR:
        if (fs->cfg.sync_layout) {
            rc = sync_layout_list(n->host, n->dir, fs->cfg.push, &names);
            strlist_sort_unique(&names);
            break;
        }
        rc = host_dir_children(n->host, n->dir, &names);
        if (rc == 0 && (n->dir_flags & DIR_IS_REPO)) {
            rc = host_tags(n->host, n->dir, &names);
            if (rc == -ENOENT) rc = 0;
        }
        if (rc == 0 && fs->cfg.push) rc = host_created_children(n->host, n->dir, &names);
        if (rc == 0 && fs->cfg.push && *n->dir) rc = stage_tags_of(n->host, n->dir, &names);
        strlist_sort_unique(&names); /* a tag named like a sub-namespace is listed once */
        break;
    case NODE_IMAGE:
        if (n->stage) {
            rc = list_stage(fs, n, l);
            break;
        }
        for (size_t i = 0; i < n->view->n_entries && rc == 0; i++) {
            struct stat st;
            fill_file_stat(fs, &n->view->entries[i], &st);
            rc = listing_add(l, n->view->entries[i].name, &st);
        }
        break;
    case NODE_OCI_DIR:
        rc = oci_view_list(n, add_oci_child, &(struct oci_listing){fs, l});
        break;
    case NODE_FILE:
    case NODE_ARCHIVE:
    case NODE_OCI_FILE:
        rc = -ENOTDIR;
        break;
    }
    if (rc == 0) rc = add_dir_names(fs, l, &names);
    strlist_free(&names);
    return rc;
}

static int rfs_opendir(const char *path, struct fuse_file_info *fi)
{
    struct rfs *fs = current_fs();
    struct node n;
    int rc = resolve_path(fs, path, true, &n);
    if (rc) return rc;
    struct listing *l = calloc(1, sizeof(*l));
    struct stat self;
    fill_dir_stat(fs, &self);
    rc = l ? 0 : -ENOMEM;
    if (!rc) rc = listing_add(l, ".", &self);
    if (!rc) rc = listing_add(l, "..", &self);
    if (!rc) rc = list_node(fs, &n, l);
    node_release(&n);
    if (rc) {
        listing_free(l);
        return rc;
    }
    fi->fh = (uintptr_t)l;
    fi->cache_readdir = !fs->cfg.push; /* writable directories change under the kernel's feet */
    return 0;
}

static int rfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset,
                       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    (void)path;
    (void)flags;
    struct listing *l = (struct listing *)(uintptr_t)fi->fh;
    for (size_t i = (size_t)offset; i < l->n; i++)
        if (filler(buf, l->items[i].name, &l->stats[l->items[i].st], (off_t)(i + 1),
                   FUSE_FILL_DIR_PLUS))
            break;
    return 0;
}

static int rfs_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    listing_free((struct listing *)(uintptr_t)fi->fh);
    return 0;
}

static int rfs_open(const char *path, struct fuse_file_info *fi)
{
    struct rfs *fs = current_fs();
    bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
    if (writable && !fs->cfg.push) return -EROFS;
    if (writable) return rfs_open_for_write(path, fi);
    struct node n;
    int rc = resolve_readable(fs, path, &n);
    if (rc) return rc;
    struct open_file *fh;
    rc = file_handle_open(&n, false, &fh);
    if (rc == 0) {
        fi->fh = (uintptr_t)fh;
        /* Published files other than a tag's manifest.json are named by their digest and
         * never change, so the kernel may keep their pages across opens. */
        fi->keep_cache = n.entry && n.entry->kind != VE_MANIFEST;
    }
    node_release(&n);
    return rc;
}

static int rfs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    return (int)file_handle_read((struct open_file *)(uintptr_t)fi->fh, buf, size, (uint64_t)off);
}

static int rfs_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct open_file *fh = (struct open_file *)(uintptr_t)fi->fh;
    rfs_release_commit(fh);
    file_handle_close(fh);
    return 0;
}

static int rfs_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    memset(st, 0, sizeof(*st));
    st->f_bsize = 1 << 20;
    st->f_frsize = 4096;
    st->f_namemax = 255;
    return 0;
}

static void *rfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    struct rfs *fs = current_fs();
    if (!fs->cfg.foreground && !fs->cfg.log_file) log_use_syslog();
    /* here, not in main: libfuse installed its handlers (SIGHUP ends the session) just before */
    if (log_reopen_on_sighup()) log_warn("cannot handle SIGHUP: the log file will not reopen");
    /* Attributes change only when a tag moves, which we look at once per ttl anyway. */
    cfg->entry_timeout = fs->cfg.ttl;
    cfg->attr_timeout = fs->cfg.ttl;
    cfg->negative_timeout = fs->cfg.push ? 0 : 1;
    cfg->kernel_cache = 0;
    conn->max_readahead = 1 << 20;
    log_info("mounted %s on %s", fs->single ? fs->single->name : "registry root",
             fs->cfg.mountpoint);
    shutdown_watch_start(fs, fuse_get_context()->fuse);
    if (budget_start(fs->cfg.budget))
        log_warn("cannot start the cache bound's thread: the cache is not bounded");
    return fs;
}

static void rfs_destroy(void *data)
{
    struct rfs *fs = data;
    stage_report_unpublished(fs);
    log_info("unmounting %s", fs->cfg.mountpoint);
}

const struct fuse_operations registryfs_ops = {
    .init = rfs_init,
    .destroy = rfs_destroy,
    .getattr = rfs_getattr,
    .opendir = rfs_opendir,
    .readdir = rfs_readdir,
    .releasedir = rfs_releasedir,
    .open = rfs_open,
    .read = rfs_read,
    .release = rfs_release,
    .statfs = rfs_statfs,
    .mkdir = rfs_mkdir,
    .create = rfs_create,
    .write = rfs_write,
    .flush = rfs_flush,
    .fsync = rfs_fsync,
    .truncate = rfs_truncate,
    .chmod = rfs_chmod,
    .chown = rfs_chown,
    .utimens = rfs_utimens,
    .rename = rfs_rename,
    .unlink = rfs_unlink,
    .rmdir = rfs_rmdir,
    .link = rfs_link,
    .copy_file_range = rfs_copy_file_range,
    .getxattr = rfs_getxattr,
    .listxattr = rfs_listxattr,
    .setxattr = rfs_setxattr,
    .removexattr = rfs_removexattr,
};
