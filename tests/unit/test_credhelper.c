/* transport/credhelper.c: the helper's answer, and real helper scripts on PATH. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/unit/unit.h"
#include "transport/credhelper.h"

static void test_parse(void)
{
    struct credential c;
    const char *j = "{\"ServerURL\":\"h.io\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}";
    CHECK_INT(credhelper_parse(j, strlen(j), &c), 1);
    CHECK_STR(c.username, "alice");
    CHECK_STR(c.password, "s3cret");
    CHECK(c.identity_token == NULL);
    credential_clear(&c);
    j = "{\"Username\":\"<token>\",\"Secret\":\"refresh-xyz\"}";
    CHECK_INT(credhelper_parse(j, strlen(j), &c), 1);
    CHECK(c.username == NULL && c.password == NULL);
    CHECK_STR(c.identity_token, "refresh-xyz");
    credential_clear(&c);
    j = "{\"Username\":\"\",\"Secret\":\"\"}";
    CHECK_INT(credhelper_parse(j, strlen(j), &c), 0);
    static const char *const bad[] = {"",
                                      "null",
                                      "[]",
                                      "{\"Username\":\"a\"}",
                                      "{\"Username\":1,\"Secret\":\"x\"}",
                                      "{\"Username\":\"a\",\"Secret\":\"x\\ny\"}",
                                      "{"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT(credhelper_parse(bad[i], strlen(bad[i]), &c), -EINVAL);
        CHECK(c.username == NULL && c.password == NULL && c.identity_token == NULL);
    }
}

static char dir[] = "/tmp/registryfs-unit-helperXXXXXX";

static void helper(const char *name, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/docker-credential-%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0755);
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0) n++;
    return n;
}

static void test_run(void)
{
    CHECK(mkdtemp(dir) != NULL);
    char path[1024];
    const char *old = getenv("PATH");
    snprintf(path, sizeof(path), "%s:%s", dir, old ? old : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    /* the server arrives on stdin without a newline; "get" is the argument */
    helper("echo", "[ \"$1\" = get ] || exit 3\nread -r server || true\n"
                   "printf '{\"ServerURL\":\"%s\",\"Username\":\"u-%s\",\"Secret\":\"pw\"}' "
                   "\"$server\" \"$server\"");
    helper("none", "echo 'credentials not found in native keychain'; exit 1");
    helper("broken", "echo 'something else went wrong' >&2; exit 2");
    helper("garbage", "echo 'not json'");
    helper("huge", "head -c 200000 /dev/zero | tr '\\0' x");
    helper("token", "cat >/dev/null; echo '{\"Username\":\"<token>\",\"Secret\":\"rt\"}'");

    struct credential c;
    CHECK_INT(credhelper_get("echo", "reg.example:5000", &c), 1);
    CHECK_STR(c.username, "u-reg.example:5000");
    CHECK_STR(c.password, "pw");
    credential_clear(&c);
    CHECK_INT(credhelper_get("token", "h", &c), 1);
    CHECK_STR(c.identity_token, "rt");
    credential_clear(&c);
    CHECK_INT(credhelper_get("none", "h", &c), 0);
    CHECK(!credential_present(&c));
    CHECK_INT(credhelper_get("broken", "h", &c), -EIO);
    CHECK_INT(credhelper_get("garbage", "h", &c), -EIO);
    CHECK_INT(credhelper_get("huge", "h", &c), -EIO);
    CHECK_INT(credhelper_get("missing", "h", &c), -ENOENT);
    CHECK_INT(credhelper_get("../x", "h", &c), -EINVAL);
    /* many runs leave no zombie and no descriptor behind */
    int fds_before = count_fds();
    for (int i = 0; i < 20; i++) {
        CHECK_INT(credhelper_get("echo", "h", &c), 1);
        credential_clear(&c);
    }
    CHECK(waitpid(-1, NULL, WNOHANG) < 0);
    CHECK_INT(count_fds(), fds_before);

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    log_init(false, "/dev/null"); /* the failure paths log; the checks say what matters */
    test_parse();
    test_run();
    return unit_report();
}
