/* transport/auth.c and the URL sanitiser of transport/http.c: pure string work. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/unit.h"
#include "transport/auth.h"
#include "transport/http.h"

static void test_challenge(void)
{
    struct auth_challenge ch;
    CHECK_INT(auth_parse_challenge("Bearer realm=\"https://auth.docker.io/token\","
                                   "service=\"registry.docker.io\","
                                   "scope=\"repository:library/alpine:pull\"",
                                   &ch),
              0);
    CHECK_INT(ch.scheme, AUTH_BEARER);
    CHECK_STR(ch.realm, "https://auth.docker.io/token");
    CHECK_STR(ch.service, "registry.docker.io");
    CHECK_STR(ch.scope, "repository:library/alpine:pull");

    CHECK_INT(auth_parse_challenge("bearer realm=https://h/t, error=\"insufficient_scope\"", &ch),
              0);
    CHECK_INT(ch.scheme, AUTH_BEARER);
    CHECK_STR(ch.realm, "https://h/t");
    CHECK_STR(ch.error, "insufficient_scope");

    CHECK_INT(auth_parse_challenge("Basic realm=\"Registry Realm\"", &ch), 0);
    CHECK_INT(ch.scheme, AUTH_BASIC);
    CHECK_STR(ch.realm, "Registry Realm");

    CHECK_INT(auth_parse_challenge("Basic", &ch), 0);
    CHECK_INT(ch.scheme, AUTH_BASIC);
    CHECK_INT(auth_parse_challenge("Negotiate", &ch), 0);
    CHECK_INT(ch.scheme, AUTH_OTHER);
    /* the first of two challenges */
    CHECK_INT(auth_parse_challenge("Basic realm=\"a\", Bearer realm=\"b\"", &ch), 0);
    CHECK_INT(ch.scheme, AUTH_BASIC);
    CHECK_STR(ch.realm, "a");
    /* escapes in quoted strings */
    CHECK_INT(auth_parse_challenge("Bearer realm=\"a\\\"b\"", &ch), 0);
    CHECK_STR(ch.realm, "a\"b");

    CHECK_INT(auth_parse_challenge("", &ch), -EINVAL);
    CHECK_INT(auth_parse_challenge(NULL, &ch), -EINVAL);
    CHECK_INT(auth_parse_challenge("\"Bearer\"", &ch), -EINVAL);
    CHECK_INT(auth_parse_challenge("Bearer realm=\"unterminated", &ch), -EINVAL);
    CHECK_INT(ch.scheme, AUTH_NONE);
    char huge[4096];
    snprintf(huge, sizeof(huge), "Bearer realm=\"%3000d\"", 1);
    CHECK_INT(auth_parse_challenge(huge, &ch), -ENAMETOOLONG);
    CHECK_INT(auth_parse_best_challenge(huge, &ch), -ENAMETOOLONG);
}

static void test_best_challenge(void)
{
    struct auth_challenge ch;
    CHECK_INT(auth_parse_best_challenge("Basic realm=\"a\", Bearer realm=\"https://t/x\","
                                        "service=\"s\",scope=\"repository:r:pull\"",
                                        &ch),
              0);
    CHECK_INT(ch.scheme, AUTH_BEARER);
    CHECK_STR(ch.realm, "https://t/x");
    CHECK_STR(ch.service, "s");
    CHECK_STR(ch.scope, "repository:r:pull");
    /* two headers joined, Bearer first */
    CHECK_INT(auth_parse_best_challenge("Bearer realm=b, Basic realm=a", &ch), 0);
    CHECK_INT(ch.scheme, AUTH_BEARER);
    CHECK_STR(ch.realm, "b");
    /* Basic beats an unknown scheme */
    CHECK_INT(auth_parse_best_challenge("Negotiate, Basic realm=\"r\"", &ch), 0);
    CHECK_INT(ch.scheme, AUTH_BASIC);
    CHECK_STR(ch.realm, "r");
    /* a malformed challenge after a good one keeps the good one */
    CHECK_INT(auth_parse_best_challenge("Basic realm=\"r\", Bearer realm=\"unterminated", &ch), 0);
    CHECK_INT(ch.scheme, AUTH_BASIC);
    CHECK_INT(auth_parse_best_challenge("Bearer realm=\"x\", error=\"insufficient_scope\"", &ch),
              0);
    CHECK_STR(ch.error, "insufficient_scope");
    CHECK_INT(auth_parse_best_challenge("", &ch), -EINVAL);
    CHECK_INT(auth_parse_best_challenge(NULL, &ch), -EINVAL);
    CHECK_INT(auth_parse_best_challenge("=x", &ch), -EINVAL);
}

static void test_token_reply(void)
{
    long exp;
    char *refresh;
    const char *j = "{\"access_token\":\"at\",\"refresh_token\":\"rt2\",\"expires_in\":2}";
    char *t = auth_parse_token_reply(j, strlen(j), &exp, &refresh);
    CHECK_STR(t, "at");
    CHECK_STR(refresh, "rt2");
    CHECK_INT(exp, 2);
    auth_token_free(t);
    auth_token_free(refresh);
    j = "{\"token\":\"t\",\"refresh_token\":\"bad token\"}";
    t = auth_parse_token_reply(j, strlen(j), &exp, &refresh);
    CHECK_STR(t, "t");
    CHECK(refresh == NULL);
    auth_token_free(t);
    t = auth_parse_token_reply("{}", 2, &exp, &refresh);
    CHECK(t == NULL && refresh == NULL);
}

static void test_token_response(void)
{
    long exp;
    char *t = auth_parse_token_response("{\"token\":\"abc.def\",\"expires_in\":300}", 36, &exp);
    CHECK_STR(t, "abc.def");
    CHECK_INT(exp, 300);
    auth_token_free(t);
    const char *j = "{\"access_token\":\"xyz\"}";
    t = auth_parse_token_response(j, strlen(j), &exp);
    CHECK_STR(t, "xyz");
    CHECK_INT(exp, 60);
    auth_token_free(t);
    j = "{\"token\":\"\",\"access_token\":\"xyz\"}";
    t = auth_parse_token_response(j, strlen(j), &exp);
    CHECK_STR(t, "xyz");
    auth_token_free(t);
    static const char *const bad[] = {"",
                                      "[]",
                                      "{}",
                                      "{\"token\":5}",
                                      "{\"token\":\"a b\"}",
                                      "{\"token\":\"a\\r\\nX-Evil: 1\"}",
                                      "{\"token\":\"\\u00e9\"}",
                                      "{\"token\":\"abc\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = auth_parse_token_response(bad[i], strlen(bad[i]), &exp);
        CHECK(t == NULL);
        auth_token_free(t);
    }
    j = "{\"token\":\"a\",\"expires_in\":-5}";
    t = auth_parse_token_response(j, strlen(j), &exp);
    CHECK_INT(exp, 60);
    auth_token_free(t);
}

static void test_cache(void)
{
    struct auth *a;
    CHECK_INT(auth_new(&a), 0);
    CHECK(auth_token_get(a, "repository:x:pull") == NULL);
    auth_token_put(a, "repository:x:pull", "T1", 300);
    char *t = auth_token_get(a, "repository:x:pull");
    CHECK_STR(t, "T1");
    auth_token_free(t);
    CHECK(auth_token_get(a, "repository:y:pull") == NULL);
    auth_token_put(a, "repository:x:pull", "T2", 300);
    t = auth_token_get(a, "repository:x:pull");
    CHECK_STR(t, "T2");
    auth_token_free(t);
    auth_token_drop(a, "repository:x:pull");
    CHECK(auth_token_get(a, "repository:x:pull") == NULL);
    /* a short-lived token is kept for four fifths of its life */
    auth_token_put(a, "s", "T", 1);
    t = auth_token_get(a, "s");
    CHECK_STR(t, "T");
    auth_token_free(t);
    struct timespec pause = {0, 850 * 1000000L};
    nanosleep(&pause, NULL);
    CHECK(auth_token_get(a, "s") == NULL);
    auth_token_put(a, "z", "T", 0);
    CHECK(auth_token_get(a, "z") == NULL);
    /* more scopes than slots: the cache stays bounded and keeps working */
    char scope[64];
    for (int i = 0; i < 200; i++) {
        snprintf(scope, sizeof(scope), "repository:r%d:pull", i);
        auth_token_put(a, scope, "T", 300 + i);
    }
    t = auth_token_get(a, "repository:r199:pull");
    CHECK_STR(t, "T");
    auth_token_free(t);
    struct auth_challenge ch = {.scheme = AUTH_BEARER}, got;
    CHECK(!auth_get_challenge(a, &got));
    snprintf(ch.realm, sizeof(ch.realm), "https://h/t");
    auth_remember_challenge(a, &ch);
    CHECK(auth_get_challenge(a, &got));
    CHECK_STR(got.realm, "https://h/t");
    auth_free(a);
}

static void test_sanitize(void)
{
    char out[256];
    http_sanitize_url("https://user:secret@h.example:5000/v2/?n=1", out, sizeof(out));
    CHECK_STR(out, "https://h.example:5000/v2/?n=1");
    http_sanitize_url("https://s3.example/b/o?X-Amz-Signature=abc&X-Amz-Credential=def&part=1", out,
                      sizeof(out));
    CHECK_STR(out, "https://s3.example/b/o?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED"
                   "&part=1");
    http_sanitize_url("https://a/t?service=s&scope=repository:x:pull&access_token=zzz", out,
                      sizeof(out));
    CHECK_STR(out, "https://a/t?service=s&scope=repository:x:pull&access_token=REDACTED");
    http_sanitize_url("http://h/v2/x/blobs/uploads/u?_state=abc&digest=sha256:00", out,
                      sizeof(out));
    CHECK_STR(out, "http://h/v2/x/blobs/uploads/u?_state=REDACTED&digest=sha256:00");
    http_sanitize_url("http://h/p#frag", out, sizeof(out));
    CHECK_STR(out, "http://h/p");
    http_sanitize_url("http://h/p@x", out, sizeof(out));
    CHECK_STR(out, "http://h/p@x");
    http_sanitize_url("http://h/0123456789", out, 10);
    CHECK_STR(out, "http://h/");
    /* found by tests/fuzz/fuzz_url_sanitize: a password with an '@' in it, and a "://" in
     * the query of a URL without a scheme, used to leak past the sanitiser */
    http_sanitize_url("https://user:p@ss@h.example/v2/", out, sizeof(out));
    CHECK_STR(out, "https://h.example/v2/");
    http_sanitize_url("/v2/x?token=abc&next=https://h/p", out, sizeof(out));
    CHECK_STR(out, "/v2/x?token=REDACTED&next=https://h/p");
    http_sanitize_url("https:x/y?sig=abc&u=s3://b", out, sizeof(out));
    CHECK_STR(out, "https:x/y?sig=REDACTED&u=s3://b");
    http_sanitize_url("HTTPS://u@H/p?q=1", out, sizeof(out));
    CHECK_STR(out, "HTTPS://H/p?q=1");
    http_sanitize_url(NULL, out, sizeof(out));
    CHECK_STR(out, "");
}

int main(void)
{
    test_challenge();
    test_best_challenge();
    test_token_response();
    test_token_reply();
    test_cache();
    test_sanitize();
    return unit_report();
}
