/* The cache bound's file side (counting by inode, removal with link files) and its LRU. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/evict.h"
#include "cache/evict_disk.h"
#include "cache/storage.h"
#include "common/fsutil.h"
#include "unit.h"

static char dir[256]; /* short: the paths built from it fit PATH_MAX */

/* "cccc...c": one buffer per character, so the pointers stay valid. */
static const char *hexof(char c)
{
    static char hex[256][65];
    char *h = hex[(unsigned char)c];
    memset(h, c, 64);
    h[64] = '\0';
    return h;
}

static void path_of(char *out, const char *store, const char *hex)
{
    snprintf(out, PATH_MAX, "%s/%s/docker/registry/v2/blobs/sha256/%.2s/%s/data", dir, store, hex,
             hex);
}

/* A blob of `size` bytes in store, last used `age` seconds ago. */
static void put_blob(const char *store, const char *hex, size_t size, int age)
{
    char path[PATH_MAX];
    path_of(path, store, hex);
    *strrchr(path, '/') = '\0';
    CHECK_INT(mkdir_p(path, 0755), 0);
    strcat(path, "/data");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *buf = calloc(1, size);
    CHECK(fd >= 0 && write(fd, buf, size) == (ssize_t)size);
    struct timespec t[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
    futimens(fd, t);
    close(fd);
    free(buf);
}

static bool exists(const char *store, const char *hex)
{
    char path[PATH_MAX];
    path_of(path, store, hex);
    return access(path, F_OK) == 0;
}

static bool link_exists(const char *store, const char *tail)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/docker/registry/v2/repositories/r/%s", dir, store, tail);
    return access(path, F_OK) == 0;
}

static void test_count_and_remove(void)
{
    const char *h1 = hexof('1'), *h2 = hexof('2'), *h3 = hexof('3'), *h4 = hexof('4');
    put_blob("a", h1, 1000, 0);
    put_blob("a", h2, 2000, 0);
    put_blob("a", h3, 3000, 0);
    char src[PATH_MAX], dst[PATH_MAX], foreign[PATH_MAX + 16];
    path_of(src, "a", h1);
    path_of(dst, "b", h1);
    *strrchr(dst, '/') = '\0';
    CHECK_INT(mkdir_p(dst, 0755), 0);
    strcat(dst, "/data");
    CHECK(link(src, dst) == 0); /* stored once, in two stores */
    path_of(src, "a", h3);
    snprintf(foreign, sizeof(foreign), "%s/foreign", dir);
    CHECK(link(src, foreign) == 0); /* someone else holds it too */

    struct strlist stores = STRLIST_INIT;
    CHECK_INT(evict_list_stores(dir, &stores), 0);
    CHECK_INT(stores.len, 2);
    CHECK_INT(evict_count(dir, &stores, h1), 1000);
    CHECK_INT(evict_count(dir, &stores, h2), 2000);
    CHECK_INT(evict_count(dir, &stores, h3), 0);

    char root_a[PATH_MAX + 4], root_b[PATH_MAX + 4];
    snprintf(root_a, sizeof(root_a), "%s/a", dir);
    snprintf(root_b, sizeof(root_b), "%s/b", dir);
    CHECK_INT(storage_link_layer(root_a, "r", h1), 0);
    CHECK_INT(storage_link_layer(root_a, "r", h3), 0);
    CHECK_INT(storage_link_tag(root_a, "r", "t", h2), 0);
    CHECK_INT(storage_link_tag(root_a, "r", "u", h2), 0);
    CHECK_INT(storage_link_tag(root_a, "r", "u", h4), 0); /* u moved on: h2 is history */
    CHECK_INT(storage_link_revision(root_b, "r", h1), 0);
    CHECK_INT(storage_link_layer(root_b, "r", h1), 0);

    struct strlist victims = STRLIST_INIT;
    strlist_push(&victims, h1);
    strlist_push(&victims, h2);
    strlist_sort_unique(&victims);
    evict_remove(dir, &stores, &victims);
    CHECK(!exists("a", h1) && !exists("b", h1) && !exists("a", h2) && exists("a", h3));
    CHECK(!link_exists("a", "_layers/sha256/1111111111111111111111111111111111111111111111111111"
                            "111111111111"));
    CHECK(link_exists("a", "_layers/sha256/3333333333333333333333333333333333333333333333333333"
                           "333333333333/link"));
    CHECK(!link_exists("a", "_manifests/tags/t"));
    CHECK(link_exists("a", "_manifests/tags/u/current/link"));
    CHECK(!link_exists("a", "_manifests/tags/u/index/sha256/"
                            "2222222222222222222222222222222222222222222222222222222222222222"));
    CHECK(!link_exists("a", "_manifests/revisions/sha256/"
                            "2222222222222222222222222222222222222222222222222222222222222222"));
    CHECK(!link_exists("b", "_manifests/revisions/sha256/"
                            "1111111111111111111111111111111111111111111111111111111111111111"));
    CHECK(!link_exists("b", "_layers/sha256/"
                            "1111111111111111111111111111111111111111111111111111111111111111"));
    strlist_free(&victims);
    strlist_free(&stores);
    unlink(foreign);
}

/* Polls for up to 5 s: the bound works in its own thread. */
static bool eventually(bool (*pred)(void))
{
    for (int i = 0; i < 500; i++) {
        if (pred()) return true;
        usleep(10000);
    }
    return false;
}

static bool b_gone(void)
{
    return !exists("c", hexof('b'));
}

static bool c_gone(void)
{
    return !exists("c", hexof('c'));
}

static void test_lru_and_pins(void)
{
    const char *a = hexof('a'), *b = hexof('b'), *c = hexof('c');
    put_blob("c", a, 1000, 300); /* the oldest, but pinned */
    put_blob("c", b, 1000, 200);
    put_blob("c", c, 1000, 100);
    struct cache_budget *bg;
    CHECK_INT(budget_new(dir, 3100, 0, 0, &bg), 0);
    budget_pin(bg, a);
    CHECK_INT(budget_start(bg), 0);
    const char *d = hexof('d');
    put_blob("c", d, 1050, 0);
    budget_changed(bg, d); /* 4050 > 3100: the oldest unpinned goes, b, and only b */
    CHECK(eventually(b_gone));
    CHECK(exists("c", a) && exists("c", c) && exists("c", d));
    budget_unpin(bg, a); /* a use: a is now newer than c */
    usleep(20000);
    const char *e = hexof('e');
    put_blob("c", e, 1000, 0);
    budget_changed(bg, e);
    CHECK(eventually(c_gone));
    CHECK(exists("c", a) && exists("c", d) && exists("c", e));
    budget_free(bg);
}

static int fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/registryfs-evict.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static void remove_dir(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    if (fresh_dir()) return 1;
    test_count_and_remove();
    remove_dir();
    if (fresh_dir()) return 1;
    test_lru_and_pins();
    remove_dir();
    return unit_report();
}
