/* transport/ref.c: the reference grammar and registry addresses. */
#include <errno.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "transport/ref.h"

static void fill(char *s, char c, size_t n)
{
    memset(s, c, n);
    s[n] = '\0';
}

static void test_component(void)
{
    static const char *const good[] = {"a",   "abc",  "a0",    "0",     "a.b",     "a_b",    "a__b",
                                       "a-b", "a--b", "a---b", "a.b.c", "a_b-c.d", "busybox"};
    static const char *const bad[] = {"",     "A",   "aB",  ".a",   "a.",    "_a",
                                      "a_",   "-a",  "a-",  "a..b", "a___b", "a._b",
                                      "a-.b", "a b", "a/b", "a:b",  "a@b",   "é"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK(ref_valid_component(good[i], strlen(good[i])));
        if (!ref_valid_component(good[i], strlen(good[i])))
            fprintf(stderr, "    good component \"%s\"\n", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(!ref_valid_component(bad[i], strlen(bad[i])));
        if (ref_valid_component(bad[i], strlen(bad[i])))
            fprintf(stderr, "    bad component \"%s\"\n", bad[i]);
    }
    /* the length bounds the check, not the NUL */
    CHECK(ref_valid_component("ab/cd", 2));
    CHECK(!ref_valid_component("ab", 0));
    CHECK(!ref_valid_component(NULL, 3));
}

static void test_repo(void)
{
    char name[REF_NAME_MAX + 2];
    CHECK(ref_valid_repo("busybox"));
    CHECK(ref_valid_repo("library/busybox"));
    CHECK(ref_valid_repo("a/b/c/d"));
    CHECK(ref_valid_repo("my-org/my_app.v2"));
    CHECK(!ref_valid_repo(""));
    CHECK(!ref_valid_repo(NULL));
    CHECK(!ref_valid_repo("/a"));
    CHECK(!ref_valid_repo("a/"));
    CHECK(!ref_valid_repo("a//b"));
    CHECK(!ref_valid_repo("a/../b"));
    CHECK(!ref_valid_repo("a/./b"));
    CHECK(!ref_valid_repo(".."));
    CHECK(!ref_valid_repo("Library/busybox"));
    CHECK(!ref_valid_repo("localhost:5000/a"));
    CHECK(!ref_valid_repo("a:tag"));
    CHECK(!ref_valid_repo("a@sha256:00"));
    CHECK(!ref_valid_repo("a\nb"));
    fill(name, 'a', REF_NAME_MAX);
    CHECK(ref_valid_repo(name));
    fill(name, 'a', REF_NAME_MAX + 1);
    CHECK(!ref_valid_repo(name));
    fill(name, 'a', REF_NAME_MAX);
    name[100] = '/';
    CHECK(ref_valid_repo(name));
}

static void test_tag(void)
{
    char tag[REF_TAG_MAX + 2];
    CHECK(ref_valid_tag("latest"));
    CHECK(ref_valid_tag("1.0"));
    CHECK(ref_valid_tag("v1.2.3-rc.1_build"));
    CHECK(ref_valid_tag("_x"));
    CHECK(ref_valid_tag("A"));
    CHECK(ref_valid_tag("0"));
    CHECK(!ref_valid_tag(""));
    CHECK(!ref_valid_tag(NULL));
    CHECK(!ref_valid_tag(".hidden"));
    CHECK(!ref_valid_tag("-x"));
    CHECK(!ref_valid_tag("a:b"));
    CHECK(!ref_valid_tag("a/b"));
    CHECK(!ref_valid_tag("a b"));
    CHECK(!ref_valid_tag("a+b"));
    CHECK(!ref_valid_tag("sha256:aaaa"));
    fill(tag, 'a', REF_TAG_MAX);
    CHECK(ref_valid_tag(tag));
    fill(tag, 'a', REF_TAG_MAX + 1);
    CHECK(!ref_valid_tag(tag));
}

static void test_digest(void)
{
    char d[100];
    const char *hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    snprintf(d, sizeof(d), "sha256:%s", hex);
    CHECK(ref_valid_digest(d));
    CHECK(ref_valid_hex(hex));
    CHECK(!ref_valid_digest(hex));
    CHECK(!ref_valid_digest(NULL));
    CHECK(!ref_valid_digest(""));
    CHECK(!ref_valid_digest("sha256:"));
    snprintf(d, sizeof(d), "SHA256:%s", hex);
    CHECK(!ref_valid_digest(d));
    snprintf(d, sizeof(d), "sha512:%s", hex);
    CHECK(!ref_valid_digest(d));
    snprintf(d, sizeof(d), "sha256:%s0", hex); /* 65 digits */
    CHECK(!ref_valid_digest(d));
    snprintf(d, sizeof(d), "sha256:%.63s", hex);
    CHECK(!ref_valid_digest(d));
    snprintf(d, sizeof(d), "sha256:%.63sG", hex);
    CHECK(!ref_valid_digest(d));
    snprintf(d, sizeof(d), "sha256:%.63sA", hex); /* uppercase hex */
    CHECK(!ref_valid_digest(d));
    snprintf(d, sizeof(d), "sha256:%s\n", hex);
    CHECK(!ref_valid_digest(d));
    CHECK(!ref_valid_hex(NULL));
    CHECK(!ref_valid_hex(""));
}

static void test_hostport(void)
{
    static const char *const good[] = {"localhost",
                                       "localhost:5000",
                                       "registry.example.com",
                                       "a.b-c.d:443",
                                       "127.0.0.1",
                                       "127.0.0.1:5000",
                                       "[::1]",
                                       "[::1]:5000",
                                       "[2001:db8::1]:65535",
                                       "docker.io",
                                       "xn--bcher-kva.example",
                                       "a:1",
                                       "UPPER.example.com"};
    static const char *const bad[] = {"",
                                      ":5000",
                                      "localhost:",
                                      "localhost:0",
                                      "localhost:65536",
                                      "localhost:99999",
                                      "localhost:05000",
                                      "localhost:+50",
                                      "localhost:50a",
                                      "localhost:5000:1",
                                      "-host",
                                      "host-",
                                      "a..b",
                                      ".a",
                                      "a.",
                                      "a_b.com",
                                      "user@host",
                                      "host/path",
                                      "host name",
                                      "999.1.1.1",
                                      "1.2.3",
                                      "::1",
                                      "[::1",
                                      "[::1]x",
                                      "[::1]:",
                                      "[zzz]",
                                      "[fe80::1%eth0]",
                                      "[]",
                                      "http://host"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK(ref_valid_hostport(good[i]));
        if (!ref_valid_hostport(good[i])) fprintf(stderr, "    good hostport \"%s\"\n", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(!ref_valid_hostport(bad[i]));
        if (ref_valid_hostport(bad[i])) fprintf(stderr, "    bad hostport \"%s\"\n", bad[i]);
    }
    CHECK(!ref_valid_hostport(NULL));
    char longhost[400];
    fill(longhost, 'a', 300);
    CHECK(!ref_valid_hostport(longhost));
    fill(longhost, 'a', 64); /* one label over 63 */
    CHECK(!ref_valid_hostport(longhost));
    fill(longhost, 'a', 63);
    CHECK(ref_valid_hostport(longhost));
}

static void test_looks_like_host(void)
{
    CHECK(ref_looks_like_host("localhost"));
    CHECK(ref_looks_like_host("example.com"));
    CHECK(ref_looks_like_host("host:5000"));
    CHECK(!ref_looks_like_host("library"));
    CHECK(!ref_looks_like_host("localhost2"));
    CHECK(!ref_looks_like_host(""));
    CHECK(!ref_looks_like_host(NULL));
}

static void test_loopback(void)
{
    CHECK(ref_is_loopback("localhost"));
    CHECK(ref_is_loopback("LOCALHOST"));
    CHECK(ref_is_loopback("127.0.0.1"));
    CHECK(ref_is_loopback("127.1.2.3"));
    CHECK(ref_is_loopback("::1"));
    CHECK(ref_is_loopback("[::1]"));
    CHECK(ref_is_loopback("::ffff:127.0.0.1"));
    CHECK(!ref_is_loopback("128.0.0.1"));
    CHECK(!ref_is_loopback("10.0.0.1"));
    CHECK(!ref_is_loopback("localhost.example.com"));
    CHECK(!ref_is_loopback("[::2]"));
    CHECK(!ref_is_loopback("127.0.0.1:5000"));
    CHECK(!ref_is_loopback(""));
    CHECK(!ref_is_loopback(NULL));
}

static void test_parse_registry(void)
{
    struct registry_addr a;
    CHECK_INT(ref_parse_registry("localhost:5000", &a), 0);
    CHECK_STR(a.scheme, "https");
    CHECK(!a.scheme_given);
    CHECK_STR(a.host, "localhost");
    CHECK_STR(a.hostport, "localhost:5000");
    CHECK_STR(a.endpoint, "https://localhost:5000");
    CHECK(!a.docker_hub);

    CHECK_INT(ref_parse_registry("http://127.0.0.1:5000/", &a), 0);
    CHECK_STR(a.scheme, "http");
    CHECK(a.scheme_given);
    CHECK_STR(a.host, "127.0.0.1");
    CHECK_STR(a.hostport, "127.0.0.1:5000");
    CHECK_STR(a.endpoint, "http://127.0.0.1:5000");

    CHECK_INT(ref_parse_registry("HTTPS://Registry.Example.com", &a), 0);
    CHECK_STR(a.scheme, "https");
    CHECK_STR(a.hostport, "Registry.Example.com");

    CHECK_INT(ref_parse_registry("[::1]:5000", &a), 0);
    CHECK_STR(a.host, "[::1]");
    CHECK_STR(a.endpoint, "https://[::1]:5000");

    CHECK_INT(ref_parse_registry("docker.io", &a), 0);
    CHECK(a.docker_hub);
    CHECK_STR(a.hostport, "docker.io");
    CHECK_STR(a.endpoint, "https://registry-1.docker.io");
    CHECK_INT(ref_parse_registry("index.docker.io", &a), 0);
    CHECK(a.docker_hub);
    CHECK_STR(a.hostport, "index.docker.io");
    CHECK_INT(ref_parse_registry("registry-1.docker.io", &a), 0);
    CHECK(a.docker_hub);
    CHECK_INT(ref_parse_registry("docker.io:5000", &a), 0);
    CHECK(!a.docker_hub);
    CHECK_STR(a.endpoint, "https://docker.io:5000");

    CHECK_INT(ref_set_scheme(&a, "http"), 0);
    CHECK_STR(a.endpoint, "http://docker.io:5000");
    CHECK_INT(ref_set_scheme(&a, "ftp"), -EINVAL);

    static const char *const bad[] = {"",           "http://",         "https:///",
                                      "ftp://host", "user@host",       "http://user:pass@host",
                                      "host/path",  "http://host/v2/", "host//",
                                      " host",      "host ",           "host:0",
                                      "host:70000", "http:/host",      "http//host",
                                      "host?x=1",   "host#frag"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = ref_parse_registry(bad[i], &a);
        CHECK_INT(rc, -EINVAL);
        if (rc != -EINVAL) fprintf(stderr, "    accepted \"%s\"\n", bad[i]);
    }
    CHECK_INT(ref_parse_registry(NULL, &a), -EINVAL);
    char huge[1024];
    fill(huge, 'a', sizeof(huge) - 1);
    CHECK_INT(ref_parse_registry(huge, &a), -EINVAL);
}

static void test_wire_repo(void)
{
    struct registry_addr hub, own;
    char out[300];
    CHECK_INT(ref_parse_registry("docker.io", &hub), 0);
    CHECK_INT(ref_parse_registry("localhost:5000", &own), 0);
    CHECK_INT(ref_wire_repo(&hub, "busybox", out, sizeof(out)), 0);
    CHECK_STR(out, "library/busybox");
    CHECK_INT(ref_wire_repo(&hub, "someone/app", out, sizeof(out)), 0);
    CHECK_STR(out, "someone/app");
    CHECK_INT(ref_wire_repo(&own, "busybox", out, sizeof(out)), 0);
    CHECK_STR(out, "busybox");
    CHECK_INT(ref_wire_repo(&own, "Bad", out, sizeof(out)), -EINVAL);
    CHECK_INT(ref_wire_repo(&own, "../x", out, sizeof(out)), -EINVAL);
    CHECK_INT(ref_wire_repo(&hub, "busybox", out, 10), -ENAMETOOLONG);
}

int main(void)
{
    test_component();
    test_repo();
    test_tag();
    test_digest();
    test_hostport();
    test_looks_like_host();
    test_loopback();
    test_parse_registry();
    test_wire_repo();
    return unit_report();
}
