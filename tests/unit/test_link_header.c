/* transport/link_header.c: pagination links and reference resolution. */
#include <errno.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "transport/link_header.h"
#include "transport/url.h"

static void test_find_next(void)
{
    char out[LINK_URL_MAX];
    CHECK_INT(link_find_next("</v2/_catalog?last=b&n=2>; rel=\"next\"", out, sizeof(out)), 1);
    CHECK_STR(out, "/v2/_catalog?last=b&n=2");
    CHECK_INT(
        link_find_next("<https://r.example/v2/x/tags/list?n=1&last=a>; rel=next", out, sizeof(out)),
        1);
    CHECK_STR(out, "https://r.example/v2/x/tags/list?n=1&last=a");
    CHECK_INT(link_find_next("<a>; rel=\"prev\", <b>; rel=\"next\"", out, sizeof(out)), 1);
    CHECK_STR(out, "b");
    CHECK_INT(link_find_next("<a>;rel=\"next last\"", out, sizeof(out)), 1);
    CHECK_STR(out, "a");
    CHECK_INT(link_find_next("<a> ; title=\"x, y; z\" ; REL = \"Next\"", out, sizeof(out)), 1);
    CHECK_STR(out, "a");
    CHECK_INT(link_find_next("<a,b>; rel=next", out, sizeof(out)), 1);
    CHECK_STR(out, "a,b");
    CHECK_INT(link_find_next("<a>; rel=\"prev\"", out, sizeof(out)), 0);
    CHECK_INT(link_find_next("<a>; rel=\"nextpage\"", out, sizeof(out)), 0);
    CHECK_INT(link_find_next("<a>", out, sizeof(out)), 0);
    CHECK_INT(link_find_next("", out, sizeof(out)), 0);
    CHECK_INT(link_find_next("  ,  ", out, sizeof(out)), 0);
    /* malformed */
    CHECK_INT(link_find_next("a; rel=next", out, sizeof(out)), -EINVAL);
    CHECK_INT(link_find_next("<a; rel=next", out, sizeof(out)), -EINVAL);
    CHECK_INT(link_find_next("<a>; rel=\"next", out, sizeof(out)), -EINVAL);
    CHECK_INT(link_find_next("<a> junk; rel=next", out, sizeof(out)), -EINVAL);
    CHECK_INT(link_find_next("<>; rel=next", out, sizeof(out)), -EINVAL);
    CHECK_INT(link_find_next("<abcdef>; rel=next", out, 4), -EINVAL);
    CHECK_INT(link_find_next(NULL, out, sizeof(out)), -EINVAL);
    /* a quoted value with an escaped quote */
    CHECK_INT(link_find_next("<a>; title=\"\\\"q\\\"\"; rel=next", out, sizeof(out)), 1);
}

static void test_resolve(void)
{
    char out[4096];
    const char *base = "http://127.0.0.1:5000/v2/_catalog?n=1000";
    CHECK_INT(url_resolve(base, "/v2/_catalog?last=x&n=1000", out, sizeof(out)), 0);
    CHECK_STR(out, "http://127.0.0.1:5000/v2/_catalog?last=x&n=1000");
    CHECK_INT(url_resolve(base, "https://other.example/v2/_catalog?x", out, sizeof(out)), 0);
    CHECK_STR(out, "https://other.example/v2/_catalog?x");
    CHECK_INT(url_resolve(base, "//cdn.example/p", out, sizeof(out)), 0);
    CHECK_STR(out, "http://cdn.example/p");
    CHECK_INT(url_resolve(base, "?last=y", out, sizeof(out)), 0);
    CHECK_STR(out, "http://127.0.0.1:5000/v2/_catalog?last=y");
    CHECK_INT(url_resolve(base, "tags?last=z", out, sizeof(out)), 0);
    CHECK_STR(out, "http://127.0.0.1:5000/v2/tags?last=z");
    CHECK_INT(url_resolve("https://h", "x", out, sizeof(out)), 0);
    CHECK_STR(out, "https://h/x");
    CHECK_INT(url_resolve("https://h?q", "?r", out, sizeof(out)), 0);
    CHECK_STR(out, "https://h/?r"); /* the empty path is "/" */
    CHECK_INT(url_resolve(base, "../a/./b", out, sizeof(out)), 0);
    CHECK_STR(out, "http://127.0.0.1:5000/a/b"); /* dot-segments removed */
    /* refused */
    CHECK_INT(url_resolve(base, "ftp://x/y", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve(base, "javascript:alert(1)", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve(base, "file:///etc/passwd", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve(base, "/a b", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve(base, "/a\r\nHost: x", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve(base, "", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve(base, "//", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve(base, "https://", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve("/relative", "/x", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve("http://", "/x", out, sizeof(out)), -EINVAL);
    CHECK_INT(url_resolve(base, "/0123456789", out, 20), -ENAMETOOLONG);
    CHECK_STR(out, "");
}

static void test_same_origin(void)
{
    CHECK(url_same_origin("http://h:5000/v2/a", "http://h:5000/v2/b?x"));
    CHECK(url_same_origin("https://h/a", "https://h:443/b")); /* default port */
    CHECK(url_same_origin("HTTP://H:5000/a", "http://h:5000"));
    CHECK(!url_same_origin("http://h:5000/a", "https://h:5000/a"));
    CHECK(!url_same_origin("http://h:5000/a", "http://h:5001/a"));
    CHECK(!url_same_origin("http://h/a", "http://h.evil/a"));
    CHECK(!url_same_origin("http://h/a", "/a"));
    CHECK(!url_same_origin(NULL, "http://h"));
}

int main(void)
{
    test_find_next();
    test_resolve();
    test_same_origin();
    return unit_report();
}
