#include "cache/storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "transport/ref.h"

#define REPOS "docker/registry/v2/repositories"
#define MAX_DEPTH 16 /* a repository name has at most this many components we walk */

static int repo_path(char *out, size_t outlen, const char *root, const char *repo, const char *fmt,
                     const char *a, const char *b)
{
    char tail[512];
    int t = snprintf(tail, sizeof(tail), fmt, a ? a : "", b ? b : "");
    if (t < 0 || (size_t)t >= sizeof(tail)) return -ENAMETOOLONG;
    int n = snprintf(out, outlen, "%s/" REPOS "/%s/%s", root, repo, tail);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* Link files hold "sha256:HEX" without a newline; anything else is damage. */
static int read_link(const char *path, char hex[SHA256_HEX_LEN + 1])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -EIO;
    char text[DIGEST_STR_LEN + 2];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0) return -EIO;
    text[n] = '\0';
    if (!ref_valid_digest(text)) {
        log_error("storage: %s does not hold a sha256 digest", path);
        return -EIO;
    }
    memcpy(hex, text + strlen(DIGEST_PREFIX), SHA256_HEX_LEN + 1);
    return 0;
}

/* Writes "sha256:HEX" to dir/link atomically (distribution's readers never see half a link). */
static int write_link(const char *dir, const char *hex)
{
    int rc = mkdir_p(dir, 0755);
    if (rc) return rc;
    char tmp[PATH_MAX], path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/link", dir) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.link.XXXXXX", dir) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    char current[SHA256_HEX_LEN + 1];
    if (read_link(path, current) == 0 && strcmp(current, hex) == 0) return 0;
    int fd = mkstemp(tmp);
    if (fd < 0) return -errno;
    char text[DIGEST_STR_LEN + 1];
    int len = snprintf(text, sizeof(text), DIGEST_PREFIX "%s", hex);
    rc = write(fd, text, (size_t)len) == len ? 0 : -EIO;
    fchmod(fd, 0644);
    close(fd);
    if (rc == 0 && rename(tmp, path)) rc = -errno;
    if (rc) unlink(tmp);
    return rc;
}

static int walk_repositories(const char *base, const char *prefix, int depth, struct strlist *out)
{
    if (depth > MAX_DEPTH) return 0;
    DIR *d = opendir(base);
    if (!d) return depth == 0 && errno == ENOENT ? 0 : (depth == 0 ? -EIO : 0);
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.' || de->d_name[0] == '_') continue;
        char name[PATH_MAX], path[PATH_MAX], probe[PATH_MAX + 16];
        struct stat st;
        snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "/" : "", de->d_name);
        snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
        if (stat(path, &st) || !S_ISDIR(st.st_mode) || strlen(name) > REF_NAME_MAX) continue;
        snprintf(probe, sizeof(probe), "%s/_manifests", path);
        if (access(probe, F_OK) == 0 && ref_valid_repo(name)) rc = strlist_push(out, name);
        if (rc == 0) rc = walk_repositories(path, name, depth + 1, out);
    }
    closedir(d);
    return rc;
}

int storage_catalog(const char *root, struct strlist *out)
{
    char base[PATH_MAX];
    snprintf(base, sizeof(base), "%s/" REPOS, root);
    int rc = walk_repositories(base, "", 0, out);
    strlist_sort_unique(out);
    return rc;
}

int storage_tags(const char *root, const char *repo, struct strlist *out)
{
    char dir[PATH_MAX];
    int rc = repo_path(dir, sizeof(dir), root, repo, "_manifests/tags%s%s", NULL, NULL);
    if (rc) return rc;
    DIR *d = opendir(dir);
    if (!d) {
        char manifests[PATH_MAX];
        repo_path(manifests, sizeof(manifests), root, repo, "_manifests%s%s", NULL, NULL);
        return access(manifests, F_OK) == 0 ? 0 : -ENOENT;
    }
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        /* A damaged link still names a tag: listing it lets its lookup say EIO, not ENOENT */
        char hex[SHA256_HEX_LEN + 1];
        if (de->d_name[0] != '.' && ref_valid_tag(de->d_name) &&
            storage_tag_target(root, repo, de->d_name, hex) != -ENOENT)
            rc = strlist_push(out, de->d_name);
    }
    closedir(d);
    strlist_sort_unique(out);
    return rc;
}

int storage_tag_target(const char *root, const char *repo, const char *tag,
                       char hex[SHA256_HEX_LEN + 1])
{
    char path[PATH_MAX];
    int rc =
        repo_path(path, sizeof(path), root, repo, "_manifests/tags/%s/current/link%s", tag, NULL);
    return rc ? rc : read_link(path, hex);
}

static bool has_link(const char *root, const char *repo, const char *fmt, const char *hex)
{
    char path[PATH_MAX], target[SHA256_HEX_LEN + 1];
    return repo_path(path, sizeof(path), root, repo, fmt, hex, NULL) == 0 &&
           read_link(path, target) == 0 && strcmp(target, hex) == 0;
}

bool storage_has_revision(const char *root, const char *repo, const char *hex)
{
    return has_link(root, repo, "_manifests/revisions/sha256/%s/link%s", hex);
}

bool storage_has_layer(const char *root, const char *repo, const char *hex)
{
    return has_link(root, repo, "_layers/sha256/%s/link%s", hex);
}

int storage_link_revision(const char *root, const char *repo, const char *hex)
{
    char dir[PATH_MAX];
    int rc = repo_path(dir, sizeof(dir), root, repo, "_manifests/revisions/sha256/%s%s", hex, NULL);
    return rc ? rc : write_link(dir, hex);
}

int storage_link_layer(const char *root, const char *repo, const char *hex)
{
    char dir[PATH_MAX];
    int rc = repo_path(dir, sizeof(dir), root, repo, "_layers/sha256/%s%s", hex, NULL);
    return rc ? rc : write_link(dir, hex);
}

int storage_link_tag(const char *root, const char *repo, const char *tag, const char *hex)
{
    char dir[PATH_MAX];
    int rc = storage_link_revision(root, repo, hex); /* a tag always names a revision */
    if (!rc)
        rc =
            repo_path(dir, sizeof(dir), root, repo, "_manifests/tags/%s/index/sha256/%s", tag, hex);
    if (!rc) rc = write_link(dir, hex);
    if (!rc)
        rc = repo_path(dir, sizeof(dir), root, repo, "_manifests/tags/%s/current%s", tag, NULL);
    return rc ? rc : write_link(dir, hex);
}

/* rm -r of a directory we laid out ourselves (a tag's link tree). */
void storage_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            char child[PATH_MAX];
            struct stat st;
            if (snprintf(child, sizeof(child), "%s/%s", path, de->d_name) >= (int)sizeof(child) ||
                lstat(child, &st))
                continue;
            if (S_ISDIR(st.st_mode))
                storage_remove_tree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

int storage_delete_manifest(const char *root, const char *repo, const char *hex)
{
    struct strlist tags = STRLIST_INIT;
    int rc = storage_tags(root, repo, &tags);
    for (size_t i = 0; rc == 0 && i < tags.len; i++) {
        char target[SHA256_HEX_LEN + 1], dir[PATH_MAX];
        if (storage_tag_target(root, repo, tags.items[i], target) == 0 &&
            strcmp(target, hex) == 0 &&
            repo_path(dir, sizeof(dir), root, repo, "_manifests/tags/%s%s", tags.items[i], NULL) ==
                0)
            storage_remove_tree(dir);
    }
    strlist_free(&tags);
    char dir[PATH_MAX];
    if (rc == 0 &&
        repo_path(dir, sizeof(dir), root, repo, "_manifests/revisions/sha256/%s%s", hex, NULL) == 0)
        storage_remove_tree(dir);
    return rc;
}

int storage_untag(const char *root, const char *repo, const char *tag)
{
    char dir[PATH_MAX], hex[SHA256_HEX_LEN + 1];
    int rc = storage_tag_target(root, repo, tag, hex);
    if (rc == 0) rc = repo_path(dir, sizeof(dir), root, repo, "_manifests/tags/%s%s", tag, NULL);
    if (rc == 0) storage_remove_tree(dir);
    return rc;
}

int storage_find_layer(const char *root, const char *hex, char *repo, size_t repolen)
{
    struct strlist repos = STRLIST_INIT;
    int rc = storage_catalog(root, &repos);
    for (size_t i = 0; rc == 0 && i < repos.len; i++) {
        if (storage_has_layer(root, repos.items[i], hex)) {
            snprintf(repo, repolen, "%s", repos.items[i]);
            strlist_free(&repos);
            return 0;
        }
    }
    strlist_free(&repos);
    return -ENOENT;
}
