/* transport/certs.c: certs.d directories (CA files generated with openssl here). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/unit/unit.h"
#include "transport/certs.h"

static char dir[] = "/tmp/registryfs-unit-certsXXXXXX";

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), fmt, a, b);
    return system(cmd);
}

/* A self-signed certificate and key at DIR/NAME.crt / DIR/NAME.key. */
static void make_cert(const char *d, const char *name)
{
    char base[256];
    snprintf(base, sizeof(base), "%s/%s", d, name);
    CHECK_INT(sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=unit "
                 "-keyout '%s.key' -out '%s.crt' 2>/dev/null",
                 base, base),
              0);
}

static void write_file(const char *d, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", d, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_dirs(void)
{
    char **d = certs_dirs("/x/certs", "h.io:5000");
    CHECK(d && d[0] && d[1] && !d[2]);
    if (d && d[0] && d[1]) {
        CHECK_STR(d[0], "/x/certs");
        CHECK_STR(d[1], "/x/certs/h.io:5000");
    }
    certs_dirs_free(d);
    d = certs_dirs(NULL, "h.io:5000");
    CHECK(d != NULL);
    if (d && geteuid() == 0) {
        CHECK_STR(d[0], "/etc/containers/certs.d/h.io:5000");
        CHECK_STR(d[1], "/etc/docker/certs.d/h.io:5000");
        CHECK(d[2] == NULL);
    }
    certs_dirs_free(d);
}

static void test_load(void)
{
    CHECK(mkdtemp(dir) != NULL);
    struct tls_certs *c;
    /* nothing there: no material, no error */
    CHECK_INT(certs_load(dir, "h.io", &c), 0);
    CHECK(c == NULL);

    /* CA files (two in one), and a per-host subdirectory */
    char sub[200], other[200], tmp[200];
    snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
    mkdir(tmp, 0700);
    make_cert(tmp, "a");
    make_cert(tmp, "b");
    CHECK_INT(sh("cat '%s/a.crt' '%s/b.crt' > /dev/null", tmp, tmp), 0);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "cat '%s/a.crt' '%s/b.crt' > '%s/ab.crt'", tmp, tmp, dir);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(certs_load(dir, "h.io", &c), 0);
    CHECK_INT(certs_ca_count(c), 2);
    CHECK(!certs_have_client(c));
    CHECK(strstr(certs_describe(c), dir) != NULL);
    certs_free(c);

    snprintf(sub, sizeof(sub), "%s/h.io:5000", dir);
    mkdir(sub, 0700);
    snprintf(cmd, sizeof(cmd), "cp '%s/a.crt' '%s/ca.crt'", tmp, sub);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(certs_load(dir, "h.io:5000", &c), 0);
    CHECK_INT(certs_ca_count(c), 3);
    certs_free(c);
    CHECK_INT(certs_load(dir, "other.io", &c), 0);
    CHECK_INT(certs_ca_count(c), 2);
    certs_free(c);

    /* a client pair */
    snprintf(cmd, sizeof(cmd), "cp '%s/b.crt' '%s/client.cert' && cp '%s/b.key' '%s/client.key'",
             tmp, sub, tmp, sub);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(certs_load(dir, "h.io:5000", &c), 0);
    CHECK(certs_have_client(c));
    certs_free(c);
    /* a .cert without its .key is an error */
    snprintf(cmd, sizeof(cmd), "rm '%s/client.key'", sub);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(certs_load(dir, "h.io:5000", &c), -EINVAL);
    CHECK(c == NULL);
    /* and a .key without its .cert */
    snprintf(other, sizeof(other), "%s/k", dir);
    mkdir(other, 0700);
    snprintf(cmd, sizeof(cmd), "cp '%s/a.key' '%s/lonely.key'", tmp, other);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(certs_load(other, "x", &c), -EINVAL);
    /* a .crt that is not PEM */
    write_file(other, "lonely.cert", "x");
    write_file(other, "junk.crt", "not a certificate\n");
    CHECK_INT(certs_load(other, "x", &c), -EINVAL);
    CHECK(c == NULL);
    /* a cert_dir that does not exist */
    CHECK_INT(certs_load("/nonexistent/certs", "x", &c), -EINVAL);
    /* certs_apply on a NULL set is a no-op */
    CHECK_INT(certs_apply(NULL, NULL), 0);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    log_init(false, "/dev/null"); /* the failure paths log; the checks say what matters */
    test_dirs();
    test_load();
    return unit_report();
}
