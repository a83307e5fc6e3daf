/* fs/tar_layout.c: a synthesized tar archive, read in pieces and checked by tar itself. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/tar_layout.h"
#include "tests/unit/unit.h"

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Blob content: byte k of member i is (k * 7 + i) & 0xff. */
static ssize_t fake_blob(void *ctx, size_t index, char *buf, size_t size, uint64_t off)
{
    (void)ctx;
    size_t n = size > 1000 ? 1000 : size; /* short reads, as a blob reader may give */
    for (size_t k = 0; k < n; k++)
        buf[k] = (char)(((off + k) * 7 + index) & 0xff);
    return (ssize_t)n;
}

static ssize_t failing_blob(void *ctx, size_t index, char *buf, size_t size, uint64_t off)
{
    (void)ctx, (void)index, (void)buf, (void)size, (void)off;
    return -EIO;
}

static void build(struct tar_layout *l)
{
    tar_layout_init(l);
    const char *manifest = "[{\"Config\":\"" HEX_A ".json\"}]";
    CHECK_INT(tar_layout_add_bytes(l, "manifest.json", manifest, strlen(manifest)), 0);
    CHECK_INT(tar_layout_add_blob(l, HEX_A ".json", HEX_A, 512), 0);
    CHECK_INT(tar_layout_add_blob(l, HEX_B ".tar", HEX_B, 70001), 0);
    tar_layout_finish(l);
}

static void test_size_and_errors(void)
{
    struct tar_layout l;
    build(&l);
    /* headers 3 * 512, content 512 (json) + 1024 (manifest, padded) + 70144, end 1024 */
    CHECK_INT(l.size, 3 * 512 + 512 + 512 + 70144 + 1024);
    CHECK_INT(l.size % 512, 0);
    char name[120];
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    CHECK_INT(tar_layout_add_bytes(&l, name, "", 0), -EINVAL);
    CHECK_INT(tar_layout_add_blob(&l, "x", "short", 1), -EINVAL);
    CHECK(tar_layout_find(&l, "manifest.json") != NULL);
    CHECK(tar_layout_find(&l, "nope") == NULL);
    char buf[4096];
    CHECK_INT(tar_layout_read(&l, buf, sizeof(buf), 2048, failing_blob, NULL), -EIO);
    CHECK_INT(tar_layout_read(&l, buf, sizeof(buf), l.size, fake_blob, NULL), 0);
    CHECK_INT(tar_layout_read(&l, buf, sizeof(buf), l.size - 100, fake_blob, NULL), 100);
    tar_layout_free(&l);
}

static void test_base256_size(void)
{
    struct tar_member m = {.name = "big.tar", .size = 9ull << 30};
    unsigned char h[TAR_BLOCK];
    tar_layout_header(&m, h);
    CHECK_INT(h[124], 0x80);
    uint64_t v = 0;
    for (int i = 125; i < 136; i++)
        v = v << 8 | h[i];
    CHECK_INT(v, 9ull << 30);
}

/* The whole archive, read in odd-sized pieces, equals one read; tar lists and extracts it. */
static void test_with_tar(void)
{
    struct tar_layout l;
    build(&l);
    char *whole = malloc(l.size), *pieces = malloc(l.size);
    CHECK_INT(tar_layout_read(&l, whole, l.size, 0, fake_blob, NULL), (long long)l.size);
    for (uint64_t off = 0; off < l.size;) {
        ssize_t n = tar_layout_read(&l, pieces + off, 777, off, fake_blob, NULL);
        CHECK(n > 0);
        if (n <= 0) break;
        off += (uint64_t)n;
    }
    CHECK(memcmp(whole, pieces, l.size) == 0);
    char dir[] = "/tmp/tar_layout_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[160], cmd[512];
    snprintf(path, sizeof(path), "%s/a.tar", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(whole, 1, l.size, f) == l.size);
    if (f) fclose(f);
    snprintf(cmd, sizeof(cmd),
             "cd %s && tar -tvf a.tar > list && grep -c '^-r--r--r-- 0/0' list | grep -qx 3 && "
             "tar -xf a.tar && "
             "test $(stat -c %%s " HEX_B ".tar) = 70001 && grep -q Config manifest.json",
             dir);
    CHECK_INT(system(cmd), 0);
    /* the extracted blob holds what the callback gave */
    snprintf(path, sizeof(path), "%s/" HEX_B ".tar", dir);
    f = fopen(path, "rb");
    int ok = f != NULL;
    for (uint64_t k = 0; f && k < 70001; k++)
        if (fgetc(f) != (int)((k * 7 + 2) & 0xff)) ok = 0;
    if (f) fclose(f);
    CHECK(ok);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    free(whole);
    free(pieces);
    tar_layout_free(&l);
}

int main(void)
{
    test_size_and_errors();
    test_base256_size();
    test_with_tar();
    return unit_report();
}
