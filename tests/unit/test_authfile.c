/* transport/authfile.c: which file, which entry, what it holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/unit/unit.h"
#include "common/base64.h"
#include "transport/authfile.h"

static struct authfile *parse(const char *json, bool legacy, const char *host, int want_rc)
{
    struct authfile *af = NULL;
    char err[256];
    int rc = authfile_parse(json, strlen(json), legacy, host, &af, err, sizeof(err));
    CHECK_INT(rc, want_rc);
    return af;
}

/* 1 and user:password, or 0 */
static int lookup(const struct authfile *af, const char *repo, char *out, size_t outlen)
{
    struct credential c;
    int rc = authfile_lookup(af, repo, &c);
    out[0] = '\0';
    if (rc == 1)
        snprintf(out, outlen, "%s:%s%s%s", c.username ? c.username : "",
                 c.password ? c.password : "", c.identity_token ? "|" : "",
                 c.identity_token ? c.identity_token : "");
    credential_clear(&c);
    return rc;
}

static void test_base64(void)
{
    char out[64];
    CHECK_INT(base64_decode("YWxpY2U6c2VjcmV0", 16, out, sizeof(out)), 12);
    CHECK_STR(out, "alice:secret");
    CHECK_INT(base64_decode("YQ==", 4, out, sizeof(out)), 1);
    CHECK_STR(out, "a");
    CHECK_INT(base64_decode("YWI=", 4, out, sizeof(out)), 2);
    CHECK_STR(out, "ab");
    /* padding is required, as by Go's StdEncoding (containers/image, docker) */
    CHECK_INT(base64_decode("YQ", 2, out, sizeof(out)), -EINVAL);
    CHECK_INT(base64_decode("Y", 1, out, sizeof(out)), -EINVAL);
    CHECK_INT(base64_decode("Y$==", 4, out, sizeof(out)), -EINVAL);
    CHECK_INT(base64_decode("YQ==YQ==", 8, out, sizeof(out)), -EINVAL);
    CHECK_INT(base64_decode("Y===", 4, out, sizeof(out)), -EINVAL);
    CHECK_INT(base64_decode(" YQ=", 4, out, sizeof(out)), -EINVAL);
    CHECK_INT(base64_decode("YWxpY2U6c2VjcmV0", 16, out, 5), -EINVAL);
    CHECK_INT(base64_decode("", 0, out, sizeof(out)), 0);
    char *enc = base64_encode("alice:secret", 12);
    CHECK_STR(enc, "YWxpY2U6c2VjcmV0");
    free(enc);
    enc = base64_encode("ab", 2);
    CHECK_STR(enc, "YWI=");
    free(enc);
}

static void test_normalize(void)
{
    char h[300];
    CHECK_INT(authfile_normalize_host("Registry.Example.COM:5000", h, sizeof(h)), 0);
    CHECK_STR(h, "registry.example.com:5000");
    CHECK_INT(authfile_normalize_host("https://index.docker.io/v1/", h, sizeof(h)), 0);
    CHECK_STR(h, "docker.io");
    CHECK_INT(authfile_normalize_host("registry-1.docker.io", h, sizeof(h)), 0);
    CHECK_STR(h, "docker.io");
    CHECK_INT(authfile_normalize_host("", h, sizeof(h)), -EINVAL);
}

static void test_entries(void)
{
    char got[256];
    /* base64 auth, host:port key */
    struct authfile *af = parse("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"YWxpY2U6c2VjcmV0\"}}}",
                                false, "127.0.0.1:5000", 0);
    CHECK_INT(lookup(af, "any/repo", got, sizeof(got)), 1);
    CHECK_STR(got, "alice:secret");
    CHECK_INT(lookup(af, NULL, got, sizeof(got)), 1);
    authfile_free(af);
    /* another port is another registry */
    af = parse("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"YWxpY2U6c2VjcmV0\"}}}", false,
               "127.0.0.1:5001", 0);
    CHECK_INT(lookup(af, "r", got, sizeof(got)), 0);
    authfile_free(af);
    /* with a scheme and a path (docker's legacy keys); password containing ':' */
    af = parse("{\"auths\":{\"https://reg.example.com/v1/\":{\"auth\":\"dTpwOnc=\"}}}", false,
               "reg.example.com", 0);
    CHECK_INT(lookup(af, "x", got, sizeof(got)), 1);
    CHECK_STR(got, "u:p:w");
    authfile_free(af);
    /* username/password fields, identity token */
    af = parse("{\"auths\":{\"r.io\":{\"username\":\"bob\",\"password\":\"pw\"},"
               "\"r.io/team\":{\"identitytoken\":\"rt-123\"}}}",
               false, "r.io", 0);
    CHECK_INT(lookup(af, "other", got, sizeof(got)), 1);
    CHECK_STR(got, "bob:pw");
    CHECK_INT(lookup(af, "team/app", got, sizeof(got)), 1);
    CHECK_STR(got, ":|rt-123");
    authfile_free(af);
    /* namespaced keys: the longest match wins; a prefix must end at a '/' */
    af = parse("{\"auths\":{"
               "\"h.io\":{\"auth\":\"aDpo\"},"
               "\"h.io/a\":{\"auth\":\"YTph\"},"
               "\"h.io/a/b\":{\"auth\":\"YWI6YWI=\"},"
               "\"h.io/a/b/c/\":{\"auth\":\"YWJjOmFiYw==\"},"
               "\"other.io/a\":{\"auth\":\"eDp4\"}}}",
               false, "H.IO", 0);
    CHECK_INT(lookup(af, "a/b/c/d", got, sizeof(got)), 1);
    CHECK_STR(got, "abc:abc");
    CHECK_INT(lookup(af, "a/b/x", got, sizeof(got)), 1);
    CHECK_STR(got, "ab:ab");
    CHECK_INT(lookup(af, "a/bb", got, sizeof(got)), 1);
    CHECK_STR(got, "a:a");
    CHECK_INT(lookup(af, "a", got, sizeof(got)), 1);
    CHECK_STR(got, "a:a");
    CHECK_INT(lookup(af, "ab", got, sizeof(got)), 1);
    CHECK_STR(got, "h:h");
    CHECK_INT(lookup(af, NULL, got, sizeof(got)), 1);
    CHECK_STR(got, "h:h");
    authfile_free(af);
    /* only namespaced entries: nothing for the registry itself */
    af = parse("{\"auths\":{\"h.io/a\":{\"auth\":\"YTph\"}}}", false, "h.io", 0);
    CHECK_INT(lookup(af, NULL, got, sizeof(got)), 0);
    CHECK_INT(lookup(af, "b", got, sizeof(got)), 0);
    authfile_free(af);
    /* Docker Hub's spellings */
    af = parse("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"ZDpk\"}}}", false,
               "docker.io", 0);
    CHECK_INT(lookup(af, "library/alpine", got, sizeof(got)), 1);
    CHECK_STR(got, "d:d");
    authfile_free(af);
    af = parse("{\"auths\":{\"docker.io/library\":{\"auth\":\"ZDpk\"}}}", false,
               "registry-1.docker.io", 0);
    CHECK_INT(lookup(af, "library/alpine", got, sizeof(got)), 1);
    authfile_free(af);
    /* legacy ~/.dockercfg: entries at the top level */
    af = parse("{\"https://old.example\":{\"auth\":\"bzpv\",\"email\":\"x@y\"}}", true,
               "old.example", 0);
    CHECK_INT(lookup(af, "r", got, sizeof(got)), 1);
    CHECK_STR(got, "o:o");
    authfile_free(af);
}

static void test_bad_files(void)
{
    char got[64];
    struct authfile *af;
    /* an empty file is no credentials */
    af = parse("", false, "h.io", 0);
    CHECK_INT(lookup(af, "r", got, sizeof(got)), 0);
    authfile_free(af);
    af = parse("  \n", false, "h.io", 0);
    authfile_free(af);
    af = parse("[1]", false, "h.io", -EINVAL);
    CHECK(af == NULL);
    af = parse("{\"auths\":", false, "h.io", -EINVAL);
    CHECK(af == NULL);
    /* unusable entries are skipped, the file stays usable */
    af = parse("{\"auths\":{\"h.io\":{\"auth\":\"!!!\"},\"h.io/a\":{\"auth\":\"bm9jb2xvbg==\"},"
               "\"h.io/b\":{\"auth\":\"\"},\"h.io/c\":5,\"h.io/UPPER\":{\"auth\":\"YTph\"},"
               "\"h.io/d\":{\"auth\":\"YQp4OmI=\"}}}",
               false, "h.io", 0);
    CHECK_INT(lookup(af, "a", got, sizeof(got)), 0);
    CHECK_INT(lookup(af, "b", got, sizeof(got)), 0);
    CHECK_INT(lookup(af, "d", got, sizeof(got)), 0); /* a newline in the user name */
    authfile_free(af);
    /* docker's placeholder beside a credsStore */
    af = parse("{\"auths\":{\"h.io\":{}},\"credsStore\":\"desktop\"}", false, "h.io", 0);
    CHECK_INT(lookup(af, "r", got, sizeof(got)), 0);
    CHECK_STR(authfile_helper(af), "desktop");
    authfile_free(af);
    /* over the size limit */
    char *big = malloc(AUTHFILE_MAX_BYTES + 2);
    memset(big, ' ', AUTHFILE_MAX_BYTES + 1);
    big[AUTHFILE_MAX_BYTES + 1] = '\0';
    char err[64];
    CHECK_INT(authfile_parse(big, AUTHFILE_MAX_BYTES + 1, false, "h.io", &af, err, sizeof(err)),
              -EFBIG);
    free(big);
    /* more entries than kept for one host: bounded, no failure */
    char json[16384];
    size_t n = (size_t)snprintf(json, sizeof(json), "{\"auths\":{");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s\"h.io/n%d\":{\"auth\":\"YTph\"}",
                              i ? "," : "", i);
    snprintf(json + n, sizeof(json) - n, "}}");
    af = parse(json, false, "h.io", 0);
    CHECK_INT(lookup(af, "n1", got, sizeof(got)), 1);
    authfile_free(af);
}

static void test_helpers(void)
{
    struct authfile *af =
        parse("{\"credHelpers\":{\"h.io\":\"pass\",\"x.io\":\"other\"},\"credsStore\":\"store\"}",
              false, "h.io", 0);
    CHECK_STR(authfile_helper(af), "pass");
    authfile_free(af);
    af = parse("{\"credHelpers\":{\"x.io\":\"other\"},\"credsStore\":\"store\"}", false, "h.io", 0);
    CHECK_STR(authfile_helper(af), "store");
    authfile_free(af);
    af = parse("{\"credHelpers\":{\"h.io\":\"../../bin/sh\"}}", false, "h.io", 0);
    CHECK(authfile_helper(af) == NULL);
    authfile_free(af);
    af = parse("{\"auths\":{}}", false, "h.io", 0);
    CHECK(authfile_helper(af) == NULL);
    authfile_free(af);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_default_path(void)
{
    char dir[] = "/tmp/registryfs-unit-authXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char home[256], path[512], got[512];
    snprintf(home, sizeof(home), "%s/home", dir);
    mkdir(home, 0700);
    setenv("HOME", home, 1);
    unsetenv("REGISTRY_AUTH_FILE");
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("DOCKER_CONFIG");
    CHECK_INT(authfile_default_path(got, sizeof(got)), -ENOENT);
    /* ~/.dockercfg, then ~/.docker/config.json, then ~/.config/containers/auth.json win */
    snprintf(path, sizeof(path), "%s/.dockercfg", home);
    write_file(path, "{}");
    CHECK_INT(authfile_default_path(got, sizeof(got)), 0);
    CHECK_STR(got, path);
    snprintf(path, sizeof(path), "%s/.docker", home);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/.docker/config.json", home);
    write_file(path, "{}");
    CHECK_INT(authfile_default_path(got, sizeof(got)), 0);
    CHECK_STR(got, path);
    /* DOCKER_CONFIG replaces ~/.docker */
    char dc[256];
    snprintf(dc, sizeof(dc), "%s/dc", dir);
    mkdir(dc, 0700);
    setenv("DOCKER_CONFIG", dc, 1);
    CHECK_INT(authfile_default_path(got, sizeof(got)), 0);
    snprintf(path, sizeof(path), "%s/.dockercfg", home);
    CHECK_STR(got, path);
    snprintf(path, sizeof(path), "%s/config.json", dc);
    write_file(path, "{}");
    CHECK_INT(authfile_default_path(got, sizeof(got)), 0);
    CHECK_STR(got, path);
    snprintf(path, sizeof(path), "%s/.config", home);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/.config/containers", home);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/.config/containers/auth.json", home);
    write_file(path, "{}");
    CHECK_INT(authfile_default_path(got, sizeof(got)), 0);
    CHECK_STR(got, path);
    /* XDG_RUNTIME_DIR, then REGISTRY_AUTH_FILE */
    char xdg[256];
    snprintf(xdg, sizeof(xdg), "%s/run", dir);
    mkdir(xdg, 0700);
    snprintf(path, sizeof(path), "%s/containers", xdg);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/containers/auth.json", xdg);
    write_file(path, "{}");
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    CHECK_INT(authfile_default_path(got, sizeof(got)), 0);
    CHECK_STR(got, path);
    snprintf(path, sizeof(path), "%s/explicit.json", dir);
    write_file(path, "{}");
    setenv("REGISTRY_AUTH_FILE", path, 1);
    CHECK_INT(authfile_default_path(got, sizeof(got)), 0);
    CHECK_STR(got, path);
    /* a REGISTRY_AUTH_FILE that does not exist is skipped */
    setenv("REGISTRY_AUTH_FILE", "/nonexistent/auth.json", 1);
    CHECK_INT(authfile_default_path(got, sizeof(got)), 0);
    snprintf(path, sizeof(path), "%s/containers/auth.json", xdg);
    CHECK_STR(got, path);

    /* authfile_load: legacy detection by name, a missing file */
    snprintf(path, sizeof(path), "%s/.dockercfg", home);
    write_file(path, "{\"h.io\":{\"auth\":\"YTph\"}}");
    struct authfile *af;
    CHECK_INT(authfile_load(path, "h.io", &af), 0);
    char got2[64];
    CHECK_INT(lookup(af, "r", got2, sizeof(got2)), 1);
    authfile_free(af);
    CHECK_INT(authfile_load("/nonexistent/x.json", "h.io", &af), -ENOENT);
    CHECK(af == NULL);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    log_init(false, "/dev/null"); /* the failure paths log; the checks say what matters */
    test_base64();
    test_normalize();
    test_entries();
    test_bad_files();
    test_helpers();
    test_default_path();
    return unit_report();
}
