/* fs/resolve.c resolve_alias_parse: REPO:TAG and REPO@sha256:HEX beside a repository. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fs/resolve.h"
#include "tests/unit/unit.h"

static int parse(const char *prefix, const char *comp, char *repo, char *ref, bool *by_digest)
{
    return resolve_alias_parse(prefix, comp, strlen(comp), repo, ref, by_digest);
}

static void test_aliases(void)
{
    char repo[REF_NAME_MAX + 1], ref[REF_TAG_MAX + DIGEST_STR_LEN + 2];
    bool by_digest;
    CHECK_INT(parse("", "app:v1", repo, ref, &by_digest), 0);
    CHECK_STR(repo, "app");
    CHECK_STR(ref, "v1");
    CHECK(!by_digest);
    CHECK_INT(parse("ns/sub", "app:1.0-rc_1", repo, ref, &by_digest), 0);
    CHECK_STR(repo, "ns/sub/app");
    const char *d = "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    CHECK_INT(parse("ns", d, repo, ref, &by_digest), 0);
    CHECK_STR(repo, "ns/app");
    CHECK_STR(ref, d + 4);
    CHECK(by_digest);
    /* the last ':' separates the tag; '@' wins over ':' */
    CHECK_INT(parse("", "app:v1:v2", repo, ref, &by_digest), -ENOENT);
    CHECK_INT(parse("", "v1", repo, ref, &by_digest), 1);
    CHECK_INT(parse("", "app/x", repo, ref, &by_digest), 1);
}

static void test_invalid(void)
{
    char repo[REF_NAME_MAX + 1], ref[REF_TAG_MAX + DIGEST_STR_LEN + 2];
    bool by_digest;
    CHECK_INT(parse("", "App:v1", repo, ref, &by_digest), -ENOENT);  /* upper-case repo */
    CHECK_INT(parse("", ":v1", repo, ref, &by_digest), -ENOENT);     /* no repository */
    CHECK_INT(parse("", "app:", repo, ref, &by_digest), -ENOENT);    /* no tag */
    CHECK_INT(parse("", "app:-v1", repo, ref, &by_digest), -ENOENT); /* tag grammar */
    CHECK_INT(parse("", "app@sha256:12", repo, ref, &by_digest), -ENOENT);
    CHECK_INT(parse("", "app@v1", repo, ref, &by_digest), -ENOENT);
    char long_tag[200] = "app:";
    memset(long_tag + 4, 't', 129);
    CHECK_INT(parse("", long_tag, repo, ref, &by_digest), -ENOENT); /* tags are <= 128 */
}

int main(void)
{
    test_aliases();
    test_invalid();
    return unit_report();
}
