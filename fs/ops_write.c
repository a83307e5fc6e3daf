#define _GNU_SOURCE /* RENAME_NOREPLACE, RENAME_EXCHANGE */
#include "fs/ops_write.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/host.h"
#include "fs/backend.h"
#include "fs/status_xattr.h"
#include "fs/tag_policy.h"

#define STATUS_XATTR "user.registryfs.status"

static struct rfs *current_fs(void)
{
    return fuse_get_context()->private_data;
}

static struct open_file *handle_of(const struct fuse_file_info *fi)
{
    return fi ? (struct open_file *)(uintptr_t)fi->fh : NULL;
}

/* "/a/b/c" → parent "/a/b", name "c". */
static int split_parent(const char *path, char *parent, size_t plen, char *name, size_t nlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1]) return -EINVAL;
    size_t len = (size_t)(slash - path);
    if (len >= plen || strlen(slash + 1) >= nlen) return -ENAMETOOLONG;
    memcpy(parent, path, len);
    parent[len ? len : 1] = '\0';
    if (!len) parent[0] = '/';
    snprintf(name, nlen, "%s", slash + 1);
    return 0;
}

static bool is_digest_ref(const char *ref)
{
    return strncmp(ref, DIGEST_PREFIX, strlen(DIGEST_PREFIX)) == 0;
}

/*
 * The stage a file in directory `dir` belongs to, opening one when needed: over a published
 * tag (which it then overlays), or for a mkdir'd directory, whose parent becomes the repository.
 */
static int stage_for_dir(struct rfs *fs, const char *dir, struct node *n, struct stage **out)
{
    int rc = resolve_path(fs, dir, true, n);
    if (rc) return rc;
    if (n->oci) return -EROFS; /* the OCI layout view is read-only */
    if (n->kind == NODE_IMAGE) {
        if (n->stage) {
            *out = n->stage;
            stage_hold(*out);
            return 0;
        }
        if (is_digest_ref(n->ref)) return -EROFS; /* REPO@sha256:… views are immutable */
        return stage_open(n->host, n->repo, n->ref, n->view, out);
    }
    if (n->kind != NODE_DIR || !(n->dir_flags & DIR_IS_CREATED)) {
        log_error("%s: files go into tag directories (REPO/TAG/) only", dir);
        return -EINVAL;
    }
    const char *slash = strrchr(n->dir, '/');
    if (!slash) { /* a top-level directory is a namespace, never a tag */
        log_error("%s: a tag directory goes inside a repository (REPO/TAG/), not at the top", dir);
        return -EINVAL;
    }
    char repo[REF_NAME_MAX + 1];
    snprintf(repo, sizeof(repo), "%.*s", (int)(slash - n->dir), n->dir);
    if (!ref_valid_repo(repo) || !ref_valid_tag(slash + 1)) {
        log_error("%s: cannot hold an image: %s is not REPO/TAG", n->host->name, n->dir);
        return -EINVAL;
    }
    rc = stage_open(n->host, repo, slash + 1, NULL, out);
    if (rc == 0) host_created_dir_remove(n->host, n->dir);
    return rc;
}

static int new_write_handle(struct stage *s, struct staged_file *f, struct fuse_file_info *fi)
{
    struct open_file *fh;
    int rc = file_handle_open_staged(s, f, true, &fh);
    if (rc) return rc;
    fi->fh = (uintptr_t)fh;
    /* A blob compared with a verified copy at hand (fs/stage_known.c) is never read back
     * from the page cache: its writes skip it, which halves the copying of a selection
     * between two mounts (`cp` there moves 64 KiB splices: one request each). */
    fi->direct_io = stage_known_active(f);
    return 0;
}

int rfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    struct rfs *fs = current_fs();
    if (!fs->cfg.push) return -EROFS;
    char dir[PATH_MAX], name[NAME_MAX + 1];
    int rc = split_parent(path, dir, sizeof(dir), name, sizeof(name));
    if (rc) return rc;
    enum staged_role role;
    char hex[SHA256_HEX_LEN + 1];
    if (stage_role_of(name, &role, hex)) {
        log_error("%s: a dir: image holds no file named like that", path);
        return -EINVAL;
    }
    struct node n;
    struct stage *s = NULL;
    rc = stage_for_dir(fs, dir, &n, &s);
    node_release(&n);
    if (rc) return rc;
    struct staged_file *f;
    rc = stage_file_create(s, name, mode, &f);
    if (rc == 0) {
        rc = new_write_handle(s, f, fi);
        staged_file_put(s, f);
    }
    stage_put(s);
    return rc;
}

/* Published small files keep their bytes when opened for writing without O_TRUNC. */
static int copy_published_bytes(const struct node *n, struct staged_file *f)
{
    struct open_file *src;
    int rc = file_handle_open(n, false, &src);
    if (rc) return rc;
    if (src->reader)
        rc = 0; /* a blob rewritten in place is rewritten whole by every tool we know */
    else
        rc = stage_file_write(f, src->bytes.data, src->bytes.len, 0);
    file_handle_close(src);
    return rc < 0 ? rc : 0;
}

int rfs_open_for_write(const char *path, struct fuse_file_info *fi)
{
    struct rfs *fs = current_fs();
    struct node n;
    int rc = resolve_file(fs, path, &n);
    if (rc) return rc;
    if (n.sfile) {
        rc = new_write_handle(n.stage, n.sfile, fi);
        if (rc == 0 && (fi->flags & O_TRUNC)) rc = stage_file_truncate(n.sfile, 0);
        node_release(&n);
        return rc;
    }
    char dir[PATH_MAX], name[NAME_MAX + 1];
    struct stage *s = NULL;
    struct node parent;
    rc = split_parent(path, dir, sizeof(dir), name, sizeof(name));
    if (rc == 0) rc = stage_for_dir(fs, dir, &parent, &s);
    node_release(&parent);
    struct staged_file *f = NULL;
    if (rc == 0) rc = stage_file_create(s, name, 0644, &f);
    if (rc == 0 && !(fi->flags & O_TRUNC)) rc = copy_published_bytes(&n, f);
    if (rc == 0) rc = new_write_handle(s, f, fi);
    if (f) staged_file_put(s, f);
    stage_put(s);
    node_release(&n);
    return rc;
}

int rfs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    struct open_file *fh = handle_of(fi);
    if (!fh->sfile) return -EBADF;
    return stage_file_write(fh->sfile, buf, size, (uint64_t)off);
}

static bool has_final_name(const struct staged_file *f)
{
    return f->role != ROLE_TEMP;
}

/* The close() of a file under its final name commits it; the result is the tool's. */
int rfs_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct open_file *fh = handle_of(fi);
    if (!file_handle_end_write(fh)) return 0;
    if (!has_final_name(fh->sfile) || !fh->sfile->dirty) return 0;
    return stage_commit(fh->stage, fh->sfile);
}

void rfs_release_commit(struct open_file *fh)
{
    if (!file_handle_end_write(fh)) return;
    if (has_final_name(fh->sfile) && fh->sfile->dirty)
        stage_commit(fh->stage, fh->sfile); /* no one to tell: the failure is logged */
}

int rfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    (void)fi;
    return 0; /* nothing is durable before it is in the registry: the commit is the sync */
}

int rfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    struct open_file *fh = handle_of(fi);
    if (fh && fh->sfile) return stage_file_truncate(fh->sfile, (uint64_t)size);
    struct node n;
    int rc = resolve_path(current_fs(), path, false, &n);
    if (rc) return rc;
    if (n.sfile)
        rc = stage_file_truncate(n.sfile, (uint64_t)size);
    else if (n.kind == NODE_FILE && n.entry && (uint64_t)size == n.entry->size)
        rc = 0;
    else
        rc = current_fs()->cfg.push ? -EPERM : -EROFS;
    node_release(&n);
    return rc;
}

/* Modes and owners are not part of an image: accepted (rsync -a, cp -a, tar and skopeo
 * fail otherwise) and remembered only on files still being written. */
int rfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    struct open_file *fh = handle_of(fi);
    if (fh && fh->sfile) {
        fh->sfile->mode = mode & 07777;
        return 0;
    }
    struct node n;
    int rc = resolve_path(current_fs(), path, false, &n);
    if (rc == 0 && n.sfile) n.sfile->mode = mode & 07777;
    node_release(&n);
    return rc;
}

int rfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    (void)uid;
    (void)gid;
    if (fi) return 0;
    struct node n;
    int rc = resolve_path(current_fs(), path, false, &n);
    node_release(&n);
    return rc;
}

static void set_mtime(struct staged_file *f, const struct timespec *tv)
{
    if (!tv || tv->tv_nsec == UTIME_NOW)
        clock_gettime(CLOCK_REALTIME, &f->mtime);
    else if (tv->tv_nsec != UTIME_OMIT)
        f->mtime = *tv;
}

/*
 * Setting a tag directory's times is what rsync -a, cp -a and tar do after its last file: the
 * writer is done, so an image that still lacks something is reported now (and the tool fails).
 */
int rfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    struct open_file *fh = handle_of(fi);
    if (fh && fh->sfile) {
        set_mtime(fh->sfile, tv ? &tv[1] : NULL);
        return 0;
    }
    struct node n;
    int rc = resolve_path(current_fs(), path, false, &n);
    if (rc) return rc;
    if (n.sfile)
        set_mtime(n.sfile, tv ? &tv[1] : NULL);
    else if (n.kind == NODE_IMAGE && n.stage)
        rc = stage_try_publish(n.stage, true);
    node_release(&n);
    return rc;
}

int rfs_mkdir(const char *path, mode_t mode)
{
    (void)mode;
    struct rfs *fs = current_fs();
    if (!fs->cfg.push) return -EROFS;
    char dir[PATH_MAX], name[NAME_MAX + 1];
    int rc = split_parent(path, dir, sizeof(dir), name, sizeof(name));
    if (rc) return rc;
    struct node n;
    if (resolve_path(fs, path, false, &n) == 0) {
        node_release(&n);
        return -EEXIST;
    }
    if ((rc = resolve_path(fs, dir, false, &n))) return rc;
    if (n.oci) { /* the OCI layout view is read-only */
        node_release(&n);
        return -EROFS;
    }
    if (n.kind != NODE_DIR) {
        log_error("mkdir %s: %s", path,
                  n.kind == NODE_HOSTS ? "registry hosts appear when first used, not by mkdir"
                                       : "a tag directory holds files only");
        node_release(&n);
        return n.kind == NODE_HOSTS ? -EPERM : -EINVAL;
    }
    char *colon = strrchr(name, ':');
    bool component = ref_valid_component(name, strlen(name));
    struct stage *s = NULL;
    char full[REF_NAME_MAX + 2];
    if (colon) { /* REPO:TAG, as skopeo sync --dest dir and image lists name images */
        *colon = '\0';
        int len = snprintf(full, sizeof(full), "%s%s%s", n.dir, *n.dir ? "/" : "", name);
        rc = len > REF_NAME_MAX ? -EINVAL : stage_open(n.host, full, colon + 1, NULL, &s);
        if (rc == 0) /* REPO is listed (and REPO/TAG resolves) like any written repository */
            rc = host_created_dir_add(n.host, full);
    } else if (!component && ref_valid_tag(name) && *n.dir) {
        rc = stage_open(n.host, n.dir, name, NULL, &s);
    } else if (component) {
        int len = snprintf(full, sizeof(full), "%s%s%s", n.dir, *n.dir ? "/" : "", name);
        rc = len > REF_NAME_MAX ? -EINVAL : host_created_dir_add(n.host, full);
    } else {
        rc = -EINVAL;
    }
    if (rc == -EINVAL) log_error("mkdir %s: not a valid repository name, tag or REPO:TAG", path);
    stage_put(s);
    node_release(&n);
    return rc;
}

static int unlink_node(struct node *n)
{
    if (n->kind == NODE_ARCHIVE) return -EROFS; /* a read-only view */
    if (n->kind != NODE_FILE) return -EISDIR;
    if (n->stage) return stage_unlink(n->stage, n->sfile ? n->sfile->name : n->entry->name);
    if (is_digest_ref(n->ref)) return -EROFS;
    /* Unlinking a published file starts an overwrite (skopeo) or a removal (rm -r): the
     * registry changes only when the directory is rewritten or removed. */
    struct stage *s;
    int rc = stage_open(n->host, n->repo, n->ref, n->view, &s);
    if (rc) return rc;
    rc = stage_unlink(s, n->entry->name);
    stage_put(s);
    return rc;
}

/* What a modifying operation acts on; EROFS without -o push. */
static int resolve_for_write(const char *path, bool want_view, struct node *n)
{
    struct rfs *fs = current_fs();
    int rc = fs->cfg.push ? resolve_path(fs, path, want_view, n) : -EROFS;
    if (rc == 0 && n->oci) { /* the OCI layout view is read-only */
        node_release(n);
        rc = -EROFS;
    }
    return rc;
}

int rfs_unlink(const char *path)
{
    struct node n;
    int rc = resolve_for_write(path, true, &n);
    if (rc) return rc;
    rc = unlink_node(&n);
    node_release(&n);
    return rc;
}

static int rmdir_image(struct node *n)
{
    if (!n->stage) return -ENOTEMPTY;
    struct strlist names = STRLIST_INIT;
    int rc = stage_names(n->stage, &names);
    bool empty = names.len == 0;
    strlist_free(&names);
    if (rc) return rc;
    if (!empty) return -ENOTEMPTY;
    bool published = stage_shows_published_tag(n->stage);
    if (published && !current_fs()->cfg.allow_delete) {
        /* rm -r unlinked the files first: give the tag its published files back */
        log_error("%s/%s:%s: not deleted: deleting tags needs -o allow_delete", n->host->name,
                  n->repo, n->ref);
        stage_forget(n->stage);
        return -EPERM;
    }
    if (published) rc = tag_delete(n->host, n->repo, n->ref);
    /* deleted, or refused (EBUSY, EPERM...): either way the staged removals go, so a refused
     * delete lists the tag's files again, as the registry still has them */
    stage_forget(n->stage);
    return rc;
}

int rfs_rmdir(const char *path)
{
    struct node n;
    int rc = resolve_for_write(path, false, &n);
    if (rc) return rc;
    if (n.kind == NODE_IMAGE) {
        rc = rmdir_image(&n);
    } else if (n.kind == NODE_DIR && (n.dir_flags & DIR_IS_CREATED) &&
               !(n.dir_flags & DIR_IS_REPO) &&
               (!(n.dir_flags & DIR_IS_NAMESPACE) || (n.dir_flags & DIR_NO_CATALOG))) {
        struct strlist children = STRLIST_INIT;
        rc = host_created_children(n.host, n.dir, &children);
        if (rc == 0) rc = stage_tags_of(n.host, n.dir, &children);
        if (rc == 0 && children.len) rc = -ENOTEMPTY;
        if (rc == 0) host_created_dir_remove(n.host, n.dir);
        strlist_free(&children);
    } else {
        rc = n.kind == NODE_DIR ? -ENOTEMPTY : -ENOTDIR;
    }
    node_release(&n);
    return rc;
}

/* Puts a copy of a file of this registry into a stage without moving blob bytes: blobs
 * become references (a cross-repository mount at commit), small files are copied. */
static int stage_copy_of(struct stage *s, const char *name, const struct node *src)
{
    if (src->sfile) {
        struct staged_file *f = src->sfile;
        if (f->is_ref) return stage_file_link_blob(s, name, f->ref_repo, f->ref_hex, f->size);
        if (f->role == ROLE_BLOB && f->committed)
            return stage_file_link_blob(s, name, src->repo, f->hex, f->size);
        return -EXDEV;
    }
    if (src->entry->kind == VE_BLOB)
        return stage_file_link_blob(s, name, src->repo, src->entry->hex, src->entry->size);
    struct open_file *fh;
    int rc = file_handle_open(src, false, &fh);
    if (rc) return rc;
    rc = stage_file_set_bytes(s, name, fh->bytes.data, fh->bytes.len);
    file_handle_close(fh);
    return rc;
}

static int commit_named(struct stage *s, const char *name)
{
    struct staged_file *f = staged_file_get(s, name);
    if (!f) return -ENOENT;
    int rc = has_final_name(f) ? stage_commit(s, f) : 0;
    staged_file_put(s, f);
    return rc;
}

int rfs_link(const char *from, const char *to)
{
    struct rfs *fs = current_fs();
    if (!fs->cfg.push) return -EROFS;
    char dir[PATH_MAX], name[NAME_MAX + 1];
    enum staged_role role;
    char hex[SHA256_HEX_LEN + 1];
    int rc = split_parent(to, dir, sizeof(dir), name, sizeof(name));
    if (rc) return rc;
    if (stage_role_of(name, &role, hex)) {
        log_error("ln %s: a dir: image holds no file named like that", to);
        return -EINVAL;
    }
    struct node src, parent;
    if ((rc = resolve_path(fs, from, true, &src))) return rc;
    struct stage *s = NULL;
    rc = src.kind == NODE_FILE ? stage_for_dir(fs, dir, &parent, &s) : -EPERM;
    if (rc == 0 && s->host != src.host) rc = -EXDEV; /* a mount works within one registry only */
    if (rc == 0) rc = stage_copy_of(s, name, &src);
    if (rc == 0) rc = commit_named(s, name);
    if (s) node_release(&parent);
    stage_put(s);
    node_release(&src);
    return rc;
}

static int rename_image(struct rfs *fs, struct node *src, const char *to, unsigned int flags)
{
    (void)flags;
    if (src->stage || is_digest_ref(src->ref)) return -EXDEV; /* let mv copy instead */
    if (!fs->cfg.allow_delete) {
        /* a rename drops the old tag; copying (cp -r) is the way to retag without deleting */
        log_error("%s/%s:%s: not renamed: dropping the old tag needs -o allow_delete",
                  src->host->name, src->repo, src->ref);
        return -EPERM;
    }
    char dir[PATH_MAX], name[NAME_MAX + 1];
    struct node parent;
    int rc = split_parent(to, dir, sizeof(dir), name, sizeof(name));
    if (rc) return rc;
    if ((rc = resolve_path(fs, dir, false, &parent))) return rc;
    struct stage *s = NULL;
    if (parent.kind != NODE_DIR || parent.host != src->host || !*parent.dir)
        rc = -EXDEV;
    else
        rc = stage_open(parent.host, parent.dir, name, NULL, &s);
    /* A retag: the new tag gets the same manifest, its blobs mounted, no bytes moved. */
    for (size_t i = 0; rc == 0 && i < src->view->n_entries; i++) {
        struct node file = *src;
        file.kind = NODE_FILE;
        file.entry = &src->view->entries[i];
        rc = stage_copy_of(s, file.entry->name, &file);
        if (rc == 0) rc = commit_named(s, file.entry->name);
    }
    if (rc == 0) rc = stage_try_publish(s, true);
    if (rc == 0) tag_drop_retagged(src->host, src->repo, src->ref, parent.dir, name);
    stage_put(s);
    node_release(&parent);
    return rc;
}

int rfs_rename(const char *from, const char *to, unsigned int flags)
{
    struct rfs *fs = current_fs();
    if (!fs->cfg.push) return -EROFS;
    if (flags & RENAME_EXCHANGE) return -EINVAL;
    struct node src, dst;
    int rc = resolve_path(fs, from, true, &src);
    if (rc) return rc;
    bool exists = resolve_path(fs, to, false, &dst) == 0;
    if (exists) node_release(&dst);
    if (exists && (flags & RENAME_NOREPLACE)) {
        node_release(&src);
        return -EEXIST;
    }
    if (src.kind == NODE_IMAGE) {
        rc = exists ? -ENOTEMPTY : rename_image(fs, &src, to, flags);
        node_release(&src);
        return rc;
    }
    char dir_from[PATH_MAX], dir_to[PATH_MAX], name_from[NAME_MAX + 1], name_to[NAME_MAX + 1];
    rc = split_parent(from, dir_from, sizeof(dir_from), name_from, sizeof(name_from));
    if (rc == 0) rc = split_parent(to, dir_to, sizeof(dir_to), name_to, sizeof(name_to));
    if (rc == 0 && (src.kind != NODE_FILE || !src.sfile || strcmp(dir_from, dir_to) != 0))
        rc = -EXDEV; /* only temporary files are renamed, within their directory */
    if (rc == 0) rc = stage_rename(src.stage, name_from, name_to);
    node_release(&src);
    return rc;
}

ssize_t rfs_copy_file_range(const char *path_in, struct fuse_file_info *fi_in, off_t off_in,
                            const char *path_out, struct fuse_file_info *fi_out, off_t off_out,
                            size_t len, int flags)
{
    (void)path_in;
    (void)path_out;
    (void)flags;
    struct open_file *in = handle_of(fi_in), *out = handle_of(fi_out);
    if (!out->sfile) return -EBADF;
    /* A whole blob copied within one registry becomes a reference: cp -r of a tag inside the
     * mount moves no blob bytes. */
    if (in->reader && in->host == out->host && off_in == 0 && off_out == 0 &&
        out->sfile->size == 0 && len >= in->entry->size && !out->sfile->is_ref) {
        int rc = stage_file_make_ref(out->sfile, in->repo, in->entry->hex, in->entry->size);
        return rc ? rc : (ssize_t)in->entry->size;
    }
    char *chunk = malloc(1 << 20);
    if (!chunk) return -ENOMEM;
    size_t done = 0;
    ssize_t rc = 0;
    while (done < len) {
        size_t want = len - done < (1 << 20) ? len - done : (1 << 20);
        rc = file_handle_read(in, chunk, want, (uint64_t)off_in + done);
        if (rc <= 0) break;
        rc = stage_file_write(out->sfile, chunk, (size_t)rc, (uint64_t)off_out + done);
        if (rc < 0) break;
        done += (size_t)rc;
    }
    free(chunk);
    return rc < 0 && done == 0 ? rc : (ssize_t)done;
}

int rfs_getxattr(const char *path, const char *name, char *value, size_t size)
{
    if (strcmp(path, "/") == 0 && strcmp(name, TRANSFERS_XATTR) == 0)
        return status_transfers_xattr(&current_fs()->progress, value, size);
    if (strcmp(name, STATUS_XATTR) != 0) return -ENODATA;
    struct node n;
    int rc = resolve_path(current_fs(), path, false, &n);
    if (rc) return rc;
    char text[640] = "published";
    if (n.kind != NODE_IMAGE)
        rc = -ENODATA;
    else if (n.stage)
        stage_status_text(n.stage, text, sizeof(text));
    /* a published stage that lingers counts as published: no bytes of finished uploads */
    bool writing = n.stage && strcmp(text, "published") != 0;
    if (!rc) status_tag_bytes(n.host, n.repo, n.ref, writing, text, sizeof(text));
    node_release(&n);
    if (rc) return rc;
    size_t len = strlen(text);
    if (size == 0) return (int)len;
    if (size < len) return -ERANGE;
    memcpy(value, text, len);
    return (int)len;
}

int rfs_listxattr(const char *path, char *list, size_t size)
{
    if (strcmp(path, "/") == 0) {
        if (size == 0) return (int)sizeof(TRANSFERS_XATTR);
        if (size < sizeof(TRANSFERS_XATTR)) return -ERANGE;
        memcpy(list, TRANSFERS_XATTR, sizeof(TRANSFERS_XATTR));
        return (int)sizeof(TRANSFERS_XATTR);
    }
    struct node n;
    int rc = resolve_path(current_fs(), path, false, &n);
    if (rc) return rc;
    bool image = n.kind == NODE_IMAGE;
    node_release(&n);
    if (!image) return 0;
    size_t len = sizeof(STATUS_XATTR);
    if (size == 0) return (int)len;
    if (size < len) return -ERANGE;
    memcpy(list, STATUS_XATTR, len);
    return (int)len;
}

int rfs_setxattr(const char *path, const char *name, const char *value, size_t size, int flags)
{
    (void)path;
    (void)name;
    (void)value;
    (void)size;
    (void)flags;
    return -ENOTSUP; /* cp -a then falls back to chmod, as on filesystems without ACLs */
}

int rfs_removexattr(const char *path, const char *name)
{
    (void)path;
    (void)name;
    return -ENOTSUP;
}
