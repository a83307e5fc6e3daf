/* transport/manifest.c: valid documents parse, malformed ones give -EIO, none crashes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "transport/manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static const char OCI_IMAGE[] =
    "{\"schemaVersion\":2,"
    "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/"
    "vnd.oci.image.config.v1+json\",\"digest\":\"" D1 "\",\"size\":123},"
    "\"layers\":[{\"mediaType\":\"application/"
    "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":4567},"
    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
    "\"digest\":\"" D3 "\",\"size\":17592186044416}],"
    "\"annotations\":{\"a\":\"b\"}}\n";

static const char DOCKER_IMAGE[] =
    "{\n  \"schemaVersion\": 2,\n"
    "  \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
    "  \"config\": {\"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
    "     \"size\": 1457, \"digest\": \"" D1 "\"},\n"
    "  \"layers\": [{\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "     \"size\": 0, \"digest\": \"" D2 "\"}]\n}";

static const char OCI_INDEX[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1
    "\",\"size\":500,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2
    "\",\"size\":501,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D3
    "\",\"size\":502,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}"
    ","
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1
    "\",\"size\":503,\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}},"
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2
    "\",\"size\":504}"
    "]}";

static const char DOCKER_LIST[] =
    "{\"schemaVersion\":2,"
    "\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D1
    "\",\"size\":528,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D2
    "\",\"size\":528,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D3
    "\",\"size\":528,\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\"}}"
    "]}";

static int parse(const char *json, const char *ct, struct manifest *m, char *err, size_t errlen)
{
    return manifest_parse(json, strlen(json), ct, m, err, errlen);
}

/* The document must be rejected with -EIO and a reason. */
static void expect_bad(const char *json, const char *ct, int line)
{
    struct manifest m;
    char err[256];
    int rc = parse(json, ct, &m, err, sizeof(err));
    unit_check(rc == -EIO && err[0] != '\0', __FILE__, line, "rejected with a reason");
    if (rc != -EIO) fprintf(stderr, "    accepted: %.200s\n", json);
    CHECK(m.layers == NULL && m.manifests == NULL && m.n_layers == 0);
    manifest_free(&m);
}
#define BAD(json) expect_bad((json), NULL, __LINE__)

static void test_oci_image(void)
{
    struct manifest m;
    char err[256];
    CHECK_INT(parse(OCI_IMAGE, NULL, &m, err, sizeof(err)), 0);
    CHECK_INT(m.kind, MANIFEST_IMAGE);
    CHECK_STR(m.media_type, MT_OCI_MANIFEST);
    CHECK_STR(m.config.digest, D1);
    CHECK_INT(m.config.size, 123);
    CHECK_STR(m.config.media_type, "application/vnd.oci.image.config.v1+json");
    CHECK_INT(m.n_layers, 2);
    CHECK_STR(m.layers[0].digest, D2);
    CHECK_INT(m.layers[0].size, 4567);
    CHECK(m.layers[1].size == (1ull << 44)); /* exactly BLOB_MAX_SIZE is allowed */
    CHECK(!m.layers[0].has_platform);
    manifest_free(&m);
    CHECK(m.layers == NULL);
    manifest_free(&m); /* twice is harmless */
}

static void test_docker_image(void)
{
    struct manifest m;
    char err[256];
    CHECK_INT(parse(DOCKER_IMAGE, NULL, &m, err, sizeof(err)), 0);
    CHECK_INT(m.kind, MANIFEST_IMAGE);
    CHECK_STR(m.media_type, MT_DOCKER_MANIFEST);
    CHECK_INT(m.n_layers, 1);
    CHECK_INT(m.layers[0].size, 0);
    manifest_free(&m);
}

static void test_indexes(void)
{
    struct manifest m;
    char err[256];
    CHECK_INT(parse(OCI_INDEX, NULL, &m, err, sizeof(err)), 0);
    CHECK_INT(m.kind, MANIFEST_INDEX);
    CHECK_STR(m.media_type, MT_OCI_INDEX);
    CHECK_INT(m.n_manifests, 5);
    CHECK(m.manifests[0].has_platform);
    CHECK_STR(m.manifests[0].os, "linux");
    CHECK_STR(m.manifests[0].arch, "amd64");
    CHECK_STR(m.manifests[1].variant, "v7");
    CHECK(!m.manifests[4].has_platform);
    CHECK_INT(m.manifests[4].size, 504);

    const struct descriptor *d = manifest_select_platform(&m, "linux", "amd64", NULL);
    CHECK(d == &m.manifests[0]);
    CHECK(manifest_select_platform(&m, "linux", "arm", "v7") == &m.manifests[1]);
    CHECK(manifest_select_platform(&m, "linux", "arm", "v6") == NULL);
    CHECK(manifest_select_platform(&m, "linux", "arm", "") == &m.manifests[1]);
    /* arm64 and arm64/v8 are the same platform */
    CHECK(manifest_select_platform(&m, "linux", "arm64", "v8") == &m.manifests[2]);
    CHECK(manifest_select_platform(&m, "linux", "arm64", NULL) == &m.manifests[2]);
    CHECK(manifest_select_platform(&m, "windows", "amd64", NULL) == NULL);
    CHECK(manifest_select_platform(&m, "linux", "s390x", NULL) == NULL);
    CHECK(manifest_select_platform(NULL, "linux", "amd64", NULL) == NULL);
    manifest_free(&m);

    CHECK_INT(parse(DOCKER_LIST, NULL, &m, err, sizeof(err)), 0);
    CHECK_INT(m.kind, MANIFEST_INDEX);
    CHECK_STR(m.media_type, MT_DOCKER_LIST);
    /* no variant asked: the entry without one wins over the earlier variants */
    CHECK(manifest_select_platform(&m, "linux", "arm", NULL) == &m.manifests[2]);
    CHECK(manifest_select_platform(&m, "linux", "arm", "v6") == &m.manifests[0]);
    manifest_free(&m);

    /* an image manifest is not an index */
    CHECK_INT(parse(OCI_IMAGE, NULL, &m, err, sizeof(err)), 0);
    CHECK(manifest_select_platform(&m, "linux", "amd64", NULL) == NULL);
    manifest_free(&m);
}

static void test_detection(void)
{
    struct manifest m;
    char err[256];
    /* no mediaType: structure decides, OCI types inferred */
    const char *idx = "{\"schemaVersion\":2,\"manifests\":[]}";
    CHECK_INT(parse(idx, NULL, &m, err, sizeof(err)), 0);
    CHECK_INT(m.kind, MANIFEST_INDEX);
    CHECK_STR(m.media_type, MT_OCI_INDEX);
    CHECK_INT(m.n_manifests, 0);
    manifest_free(&m);

    const char *img = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1
                      "\",\"size\":1},\"layers\":[]}";
    CHECK_INT(parse(img, NULL, &m, err, sizeof(err)), 0);
    CHECK_INT(m.kind, MANIFEST_IMAGE);
    CHECK_STR(m.media_type, MT_OCI_MANIFEST);
    manifest_free(&m);

    /* no mediaType: Content-Type decides, parameters stripped */
    CHECK_INT(parse(img, MT_DOCKER_MANIFEST "; charset=utf-8", &m, err, sizeof(err)), 0);
    CHECK_STR(m.media_type, MT_DOCKER_MANIFEST);
    manifest_free(&m);
    CHECK_INT(parse(img, "application/json", &m, err, sizeof(err)), 0);
    CHECK_STR(m.media_type, MT_OCI_MANIFEST);
    manifest_free(&m);

    /* the mediaType field wins over the Content-Type */
    CHECK_INT(parse(OCI_IMAGE, MT_DOCKER_LIST, &m, err, sizeof(err)), 0);
    CHECK_INT(m.kind, MANIFEST_IMAGE);
    manifest_free(&m);

    /* Content-Type says index but the document has no manifests */
    expect_bad(img, MT_OCI_INDEX, __LINE__);
    /* neither shape */
    BAD("{\"schemaVersion\":2}");
    BAD("{\"schemaVersion\":2,\"config\":{}}");
}

static void test_rejects(void)
{
    /* not JSON, not an object, empty, truncated, trailing garbage */
    BAD("");
    BAD(" ");
    BAD("null");
    BAD("[]");
    BAD("42");
    BAD("\"x\"");
    BAD("{");
    BAD("{\"schemaVersion\":2,\"manifests\":[");
    BAD("{\"schemaVersion\":2,\"manifests\":[]}x");
    BAD("{\"schemaVersion\":2,\"manifests\":[]}{}");
    /* schema versions */
    BAD("{\"manifests\":[]}");
    BAD("{\"schemaVersion\":\"2\",\"manifests\":[]}");
    BAD("{\"schemaVersion\":3,\"manifests\":[]}");
    BAD("{\"schemaVersion\":2.5,\"manifests\":[]}");
    BAD("{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"y\",\"fsLayers\":[]}");
    BAD("{\"schemaVersion\":2,\"mediaType\":"
        "\"application/vnd.docker.distribution.manifest.v1+prettyjws\",\"manifests\":[]}");
    /* media types */
    BAD("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.artifact.manifest.v1+json\"}");
    BAD("{\"schemaVersion\":2,\"mediaType\":7,\"manifests\":[]}");
    BAD("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "\",\"manifests\":[]}");
    /* wrong container types */
    BAD("{\"schemaVersion\":2,\"manifests\":{}}");
    BAD("{\"schemaVersion\":2,\"manifests\":null}");
    BAD("{\"schemaVersion\":2,\"manifests\":[1]}");
    BAD("{\"schemaVersion\":2,\"manifests\":[null]}");
    BAD("{\"schemaVersion\":2,\"config\":[],\"layers\":[]}");
    BAD("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1
        "\",\"size\":1},\"layers\":{}}");
}

/* An index entry with the given size/digest/media type JSON fragments. */
static void bad_entry(const char *mt, const char *digest, const char *size, int line)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":%s,\"digest\":%s,\"size\":%s}]}",
             mt, digest, size);
    expect_bad(json, NULL, line);
}

static void test_descriptors(void)
{
    const char *mt = "\"application/vnd.oci.image.manifest.v1+json\"";
    const char *dg = "\"" D1 "\"";
    /* sizes */
    bad_entry(mt, dg, "-1", __LINE__);
    bad_entry(mt, dg, "1.5", __LINE__);
    bad_entry(mt, dg, "0.1", __LINE__);
    bad_entry(mt, dg, "17592186044417", __LINE__); /* BLOB_MAX_SIZE + 1 */
    bad_entry(mt, dg, "1e300", __LINE__);
    bad_entry(mt, dg, "1e999", __LINE__);
    bad_entry(mt, dg, "-0.5", __LINE__);
    bad_entry(mt, dg, "\"12\"", __LINE__);
    bad_entry(mt, dg, "null", __LINE__);
    bad_entry(mt, dg, "true", __LINE__);
    bad_entry(mt, dg, "[]", __LINE__);
    /* digests */
    bad_entry(mt,
              "\"sha512:"
              "1111111111111111111111111111111111111111111111111111111111111111"
              "1111111111111111111111111111111111111111111111111111111111111111\"",
              "1", __LINE__);
    bad_entry(mt, "\"sha256:111\"", "1", __LINE__);
    bad_entry(mt, "\"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
              "1", __LINE__);
    bad_entry(mt, "\"1111111111111111111111111111111111111111111111111111111111111111\"", "1",
              __LINE__);
    bad_entry(mt, "\"sha256:../../../../etc/passwd\"", "1", __LINE__);
    bad_entry(mt, "1", "1", __LINE__);
    bad_entry(mt, "null", "1", __LINE__);
    bad_entry(mt, "\"\"", "1", __LINE__);
    /* media types */
    bad_entry("\"\"", dg, "1", __LINE__);
    bad_entry("\"noslash\"", dg, "1", __LINE__);
    bad_entry("\"a/b/c\"", dg, "1", __LINE__);
    bad_entry("\"a/b c\"", dg, "1", __LINE__);
    bad_entry("\"a/b\\n\"", dg, "1", __LINE__);
    bad_entry("5", dg, "1", __LINE__);
    /* missing fields */
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\",\"size\":1}]}");
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"size\":1}]}");
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\"}]}");
    BAD("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1
        "\",\"size\":1}}");
    BAD("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\",\"layers\":[]}");
    /* platforms */
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
        "\",\"size\":1,\"platform\":\"linux/amd64\"}]}");
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
        "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}");
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
        "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":5}}]}");
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
        "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}]}");
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
        "\",\"size\":1,\"platform\":{\"os\":\"li/nux\",\"architecture\":\"amd64\"}}]}");
    BAD("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"a/b\",\"digest\":\"" D1
        "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\","
        "\"variant\":[]}}]}");
}

static char *repeat_entries(size_t n)
{
    static const char head[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST
        "\",\"config\":{\"mediaType\":\"a/b\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[";
    static const char entry[] = "{\"mediaType\":\"a/b\",\"digest\":\"" D2 "\",\"size\":1},";
    size_t len = sizeof(head) + n * (sizeof(entry) - 1) + 8;
    char *s = malloc(len);
    char *p = s + sprintf(s, "%s", head);
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", entry);
    if (n) p--; /* the last comma */
    strcpy(p, "]}");
    return s;
}

static void test_limits(void)
{
    struct manifest m;
    char err[256];
    char *s = repeat_entries(MANIFEST_MAX_ENTRIES);
    CHECK_INT(parse(s, NULL, &m, err, sizeof(err)), 0);
    CHECK_INT(m.n_layers, MANIFEST_MAX_ENTRIES);
    manifest_free(&m);
    free(s);
    s = repeat_entries(MANIFEST_MAX_ENTRIES + 1);
    CHECK_INT(parse(s, NULL, &m, err, sizeof(err)), -EIO);
    free(s);

    /* over 4 MiB: refused before parsing, even if it were valid */
    size_t big = MANIFEST_MAX_BYTES + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    memcpy(huge, OCI_IMAGE, strlen(OCI_IMAGE));
    CHECK_INT(manifest_parse(huge, big, NULL, &m, err, sizeof(err)), -EIO);
    CHECK(err[0] != '\0');
    /* exactly the limit with trailing whitespace is fine */
    CHECK_INT(manifest_parse(huge, big - 1, NULL, &m, err, sizeof(err)), 0);
    manifest_free(&m);
    free(huge);

    /* deep nesting must not recurse without bound */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 1);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[depth * 2] = '\0';
    CHECK_INT(parse(deep, NULL, &m, err, sizeof(err)), -EIO);
    free(deep);
}

static void test_robustness(void)
{
    struct manifest m;
    char err[8];
    /* not NUL-terminated: only len bytes may be read */
    char *exact = malloc(strlen(OCI_IMAGE));
    memcpy(exact, OCI_IMAGE, strlen(OCI_IMAGE));
    CHECK_INT(manifest_parse(exact, strlen(OCI_IMAGE), NULL, &m, NULL, 0), 0);
    manifest_free(&m);
    /* every prefix of a valid document is handled (and all but the full one refused) */
    size_t len = strlen(OCI_IMAGE) - 1; /* without the trailing newline */
    int accepted = 0;
    for (size_t i = 0; i < len; i++) {
        if (manifest_parse(exact, i, NULL, &m, err, sizeof(err)) == 0) accepted++;
        manifest_free(&m);
    }
    CHECK_INT(accepted, 0);
    free(exact);
    /* an embedded NUL */
    char nul[] = "{\"schemaVersion\":2,\"manifests\":[]}";
    nul[5] = '\0';
    CHECK_INT(manifest_parse(nul, sizeof(nul) - 1, NULL, &m, err, sizeof(err)), -EIO);
    /* small error buffer, no error buffer, NULL input */
    CHECK_INT(manifest_parse("{}", 2, NULL, &m, err, sizeof(err)), -EIO);
    CHECK(strlen(err) < sizeof(err));
    CHECK_INT(manifest_parse("{}", 2, NULL, &m, NULL, 0), -EIO);
    CHECK_INT(manifest_parse(NULL, 10, NULL, &m, err, sizeof(err)), -EIO);
    /* every single-byte corruption of a valid index: no crash, no leak */
    char *copy = strdup(OCI_INDEX);
    size_t n = strlen(OCI_INDEX);
    static const char subst[] = {'"', '{', '}', '[', ']', ',', ':', '0', '-', '\\', 'x', '\0'};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof(subst); k++) {
            char saved = copy[i];
            copy[i] = subst[k];
            if (manifest_parse(copy, n, NULL, &m, err, sizeof(err)) == 0) manifest_free(&m);
            copy[i] = saved;
        }
    }
    free(copy);
    CHECK(1);
}

int main(void)
{
    test_oci_image();
    test_docker_image();
    test_indexes();
    test_detection();
    test_rejects();
    test_descriptors();
    test_limits();
    test_robustness();
    return unit_report();
}
