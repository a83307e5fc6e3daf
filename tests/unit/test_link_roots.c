/* cache/link_roots.c: blobs hardlinked from -o link_from trees after one hash, never from a
 * damaged copy, never from another filesystem; nothing in a link root changes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/blobcache.h"
#include "common/fsutil.h"
#include "common/sha256.h"
#include "tests/unit/unit.h"

static char base[256];

static void blob_path(const char *root, const char *hex, char *out, size_t len)
{
    if (snprintf(out, len, "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", root, hex, hex) >=
        (int)len)
        out[0] = '\0';
}

/* Stores content under ROOT as blob hex (its own digest unless hex is given). */
static void put_blob(const char *root, const char *content, const char *hex_or_null,
                     char hex[SHA256_HEX_LEN + 1])
{
    if (hex_or_null && hex_or_null != hex)
        memcpy(hex, hex_or_null, SHA256_HEX_LEN + 1);
    else if (!hex_or_null)
        sha256_hex_of(content, strlen(content), hex);
    char path[PATH_MAX];
    blob_path(root, hex, path, sizeof(path));
    *strrchr(path, '/') = '\0';
    CHECK_INT(mkdir_p(path, 0755), 0);
    strcat(path, "/data");
    FILE *f = fopen(path, "w");
    fputs(content, f);
    fclose(f);
}

static ino_t inode_of(const char *root, const char *hex)
{
    char path[PATH_MAX];
    struct stat st;
    blob_path(root, hex, path, sizeof(path));
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static struct blobcache *new_tree(const char *name, char *root, size_t len)
{
    if (snprintf(root, len, "%s/%s", base, name) >= (int)len) return NULL;
    char partial[PATH_MAX + 16];
    snprintf(partial, sizeof(partial), "%s/.partial", root);
    struct blobcache *bc = NULL;
    CHECK_INT(blobcache_new(root, partial, NULL, &bc), 0);
    if (bc) blobcache_set_foreign(bc);
    return bc;
}

static void test_open_verified_links_from_the_root(const char *big)
{
    char root[PATH_MAX], hex[SHA256_HEX_LEN + 1];
    struct blobcache *bc = new_tree("new1", root, sizeof(root));
    put_blob(big, "layer one\n", NULL, hex);
    CHECK_INT(blobcache_add_link_root(bc, big), 0);
    int fd = -1;
    uint64_t size = 0;
    CHECK_INT(blobcache_open_verified(bc, hex, &fd, &size), 0);
    CHECK_INT(size, strlen("layer one\n"));
    CHECK(inode_of(root, hex) != 0 && inode_of(root, hex) == inode_of(big, hex));
    if (fd >= 0) close(fd);
    /* the second time the tree's own copy, verified already */
    CHECK_INT(blobcache_open_verified(bc, hex, &fd, &size), 0);
    if (fd >= 0) close(fd);
    char other[SHA256_HEX_LEN + 1];
    sha256_hex_of("nowhere", 7, other);
    CHECK_INT(blobcache_open_verified(bc, other, &fd, &size), -ENOENT);
    blobcache_free(bc);
}

static void test_damaged_copy_is_not_linked_nor_touched(const char *big)
{
    char root[PATH_MAX], hex[SHA256_HEX_LEN + 1], path[PATH_MAX];
    sha256_hex_of("the real layer", 14, hex);
    put_blob(big, "not the real layer", hex, hex);
    blob_path(big, hex, path, sizeof(path));
    struct stat before, after;
    stat(path, &before);
    struct blobcache *bc = new_tree("new2", root, sizeof(root));
    CHECK_INT(blobcache_add_link_root(bc, big), 0);
    int fd = -1;
    uint64_t size;
    CHECK_INT(blobcache_open_verified(bc, hex, &fd, &size), -ENOENT);
    CHECK_INT(inode_of(root, hex), 0);
    /* an adoption (the commit of a written copy) stores the verified copy instead */
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s/upload", root);
    FILE *f = fopen(tmp, "w");
    fputs("the real layer", f);
    fclose(f);
    CHECK_INT(blobcache_adopt(bc, tmp, hex), 0);
    CHECK(inode_of(root, hex) != 0 && inode_of(root, hex) != inode_of(big, hex));
    CHECK_INT(stat(path, &after), 0);
    CHECK(after.st_ino == before.st_ino && after.st_size == before.st_size &&
          after.st_nlink == before.st_nlink);
    blobcache_free(bc);
}

static void test_root_on_another_filesystem_is_skipped(const char *big)
{
    char shm[] = "/dev/shm/link-roots.XXXXXX";
    struct stat a, b;
    if (!mkdtemp(shm)) return;
    if (stat(shm, &a) == 0 && stat(base, &b) == 0 && a.st_dev != b.st_dev) {
        char root[PATH_MAX], hex[SHA256_HEX_LEN + 1];
        put_blob(shm, "elsewhere\n", NULL, hex);
        struct blobcache *bc = new_tree("new3", root, sizeof(root));
        CHECK_INT(blobcache_add_link_root(bc, shm), 0); /* a warning, not an error */
        int fd = -1;
        uint64_t size;
        CHECK_INT(blobcache_open_verified(bc, hex, &fd, &size), -ENOENT);
        blobcache_free(bc);
    }
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", shm);
    CHECK_INT(system(cmd), 0);
    (void)big;
}

int main(void)
{
    snprintf(base, sizeof(base), "/tmp/test_link_roots.XXXXXX");
    if (!mkdtemp(base)) return 1;
    char big[PATH_MAX + 8];
    snprintf(big, sizeof(big), "%s/big", base);
    test_open_verified_links_from_the_root(big);
    test_damaged_copy_is_not_linked_nor_touched(big);
    test_root_on_another_filesystem_is_skipped(big);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    CHECK_INT(system(cmd), 0);
    return unit_report();
}
