/* FUSE operations of the writable mount (-o push): see fs/stage.h and docs/write.md. */
#ifndef REGISTRYFS_OPS_WRITE_H
#define REGISTRYFS_OPS_WRITE_H

#include <fuse.h>

#include "fs/file_handle.h"
#include "fs/rfs.h"

int rfs_open_for_write(const char *path, struct fuse_file_info *fi);
int rfs_mkdir(const char *path, mode_t mode);
int rfs_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int rfs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi);
int rfs_flush(const char *path, struct fuse_file_info *fi);
int rfs_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int rfs_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int rfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int rfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi);
int rfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi);
int rfs_rename(const char *from, const char *to, unsigned int flags);
int rfs_unlink(const char *path);
int rfs_rmdir(const char *path);
int rfs_link(const char *from, const char *to);
ssize_t rfs_copy_file_range(const char *path_in, struct fuse_file_info *fi_in, off_t off_in,
                            const char *path_out, struct fuse_file_info *fi_out, off_t off_out,
                            size_t len, int flags);
int rfs_getxattr(const char *path, const char *name, char *value, size_t size);
int rfs_listxattr(const char *path, char *list, size_t size);
int rfs_setxattr(const char *path, const char *name, const char *value, size_t size, int flags);
int rfs_removexattr(const char *path, const char *name);

/* A handle closed without a flush still commits its file (the error can only be logged). */
void rfs_release_commit(struct open_file *fh);

#endif
