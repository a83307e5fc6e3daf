/* transport/registries_conf.c: the TOML subset and the registry/mirror tables. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/unit/unit.h"
#include "transport/registries_conf.h"

static int parse(const char *text, struct registries_conf *c)
{
    char err[256];
    int rc = registries_conf_parse(text, strlen(text), c, err, sizeof(err));
    if (rc) printf("    (parse error: %s)\n", err);
    return rc;
}

static void test_full(void)
{
    static const char text[] =
        "# a real-looking file\n"
        "unqualified-search-registries = [\"registry.fedoraproject.org\", \"docker.io\"]\n"
        "short-name-mode = \"enforcing\"\n"
        "\n"
        "[aliases]\n"
        "  \"fedora\" = \"registry.fedoraproject.org/fedora\"\n"
        "\n"
        "[[registry]]\n"
        "location = \"127.0.0.1:5000\"   # the local one\n"
        "insecure = true\n"
        "\n"
        "[[registry]]\n"
        "prefix = \"Docker.io\"\n"
        "location = \"docker.io\"\n"
        "\n"
        "[[registry.mirror]]\n"
        "location = \"mirror.example.com:5000/hub\"\n"
        "\n"
        "[[registry.mirror]]\n"
        "location = 'second.example.com'\n"
        "insecure = true\n"
        "pull-from-mirror = \"digest-only\"\n"
        "\n"
        "[[registry]]\n"
        "location = \"docker.io/library/special\"\n"
        "mirror = [ { location = \"special.example.com/s\" },\n"
        "           { location = \"other.example.com\", insecure = true } ]\n"
        "\n"
        "[[registry]]\n"
        "location = \"evil.example.com\"\n"
        "blocked = true\n"
        "\n"
        "[[registry]]\n"
        "prefix = \"*.corp.example\"\n"
        "insecure = true\n";
    struct registries_conf c;
    CHECK_INT(parse(text, &c), 0);
    CHECK_INT(c.n, 5);
    const struct registries_conf_registry *e = registries_conf_match(&c, "127.0.0.1:5000", NULL);
    CHECK(e && e->insecure && !e->blocked);
    CHECK(registries_conf_match(&c, "127.0.0.1:5001", NULL) == NULL);
    e = registries_conf_match(&c, "127.0.0.1:5000", "any/repo");
    CHECK(e && e->insecure);

    e = registries_conf_match(&c, "docker.io", "library/alpine");
    CHECK(e != NULL);
    if (e) {
        CHECK_STR(e->prefix, "docker.io");
        CHECK_INT(e->n_mirrors, 2);
        CHECK_STR(e->mirrors[0].location, "mirror.example.com:5000/hub");
        CHECK(!e->mirrors[0].insecure);
        CHECK_INT(e->mirrors[0].pull, REGISTRIES_CONF_PULL_ALL);
        CHECK(e->mirrors[1].insecure);
        CHECK_INT(e->mirrors[1].pull, REGISTRIES_CONF_PULL_DIGEST_ONLY);
        char host[300], repo[300];
        CHECK_INT(registries_conf_mirror_ref(e, &e->mirrors[0], "docker.io", "library/alpine", host,
                                             repo),
                  0);
        CHECK_STR(host, "mirror.example.com:5000");
        CHECK_STR(repo, "hub/library/alpine");
        CHECK_INT(registries_conf_mirror_ref(e, &e->mirrors[1], "index.docker.io", "library/alpine",
                                             host, repo),
                  0);
        CHECK_STR(host, "second.example.com");
        CHECK_STR(repo, "library/alpine");
    }
    /* Docker Hub's other names match docker.io; the longer prefix wins */
    CHECK(registries_conf_match(&c, "registry-1.docker.io", "library/alpine") == e);
    e = registries_conf_match(&c, "docker.io", "library/special/app");
    CHECK(e != NULL);
    if (e) {
        CHECK_STR(e->prefix, "docker.io/library/special");
        CHECK_INT(e->n_mirrors, 2);
        CHECK(e->mirrors[1].insecure);
        char host[300], repo[300];
        CHECK_INT(registries_conf_mirror_ref(e, &e->mirrors[0], "docker.io", "library/special/app",
                                             host, repo),
                  0);
        CHECK_STR(host, "special.example.com");
        CHECK_STR(repo, "s/app");
        /* the prefix is the repository itself: the mirror location is its name there */
        CHECK_INT(registries_conf_mirror_ref(e, &e->mirrors[0], "docker.io", "library/special",
                                             host, repo),
                  0);
        CHECK_STR(repo, "s");
        /* no repository name on a host-only mirror location */
        CHECK_INT(registries_conf_mirror_ref(e, &e->mirrors[1], "docker.io", "library/special",
                                             host, repo),
                  -EINVAL);
    }
    /* a prefix is matched at path boundaries only */
    e = registries_conf_match(&c, "docker.io", "library/specialist");
    CHECK(e && strcmp(e->prefix, "docker.io") == 0);
    e = registries_conf_match(&c, "evil.example.com", NULL);
    CHECK(e && e->blocked);
    /* wildcards */
    e = registries_conf_match(&c, "a.corp.example:5000", NULL);
    CHECK(e && e->insecure);
    CHECK(registries_conf_match(&c, "a.b.corp.example", "x") != NULL);
    CHECK(registries_conf_match(&c, "corp.example", NULL) == NULL);
    CHECK(registries_conf_match(&c, "xcorp.example", NULL) == NULL);
    registries_conf_free(&c);
}

static void test_v1_and_digest_only(void)
{
    struct registries_conf c;
    CHECK_INT(parse("[registries.search]\nregistries = ['docker.io']\n"
                    "[registries.insecure]\nregistries = [\"a.example:5000\",\n"
                    "  \"b.example\", # trailing comma next\n]\n"
                    "[registries.block]\nregistries = [\"b.example\"]\n"
                    "[[registry]]\nlocation=\"m.example\"\nmirror-by-digest-only=true\n"
                    "[[registry.mirror]]\nlocation=\"mm.example\"\n",
                    &c),
              0);
    const struct registries_conf_registry *e = registries_conf_match(&c, "a.example:5000", NULL);
    CHECK(e && e->insecure && !e->blocked);
    e = registries_conf_match(&c, "b.example", "r");
    CHECK(e && e->insecure && e->blocked);
    e = registries_conf_match(&c, "docker.io", "r");
    CHECK(e == NULL);
    e = registries_conf_match(&c, "m.example", "r");
    CHECK(e && e->n_mirrors == 1 && e->mirrors[0].pull == REGISTRIES_CONF_PULL_DIGEST_ONLY);
    registries_conf_free(&c);
}

static void test_toml_details(void)
{
    struct registries_conf c;
    /* escapes, CRLF, dotted and quoted keys, numbers and dates skipped, empty file */
    CHECK_INT(parse("", &c), 0);
    CHECK_INT(c.n, 0);
    registries_conf_free(&c);
    CHECK_INT(parse("a.b = 1\r\n\"quoted key\" = -3.5e2\r\nd = 1979-05-27T07:32:00Z\r\n"
                    "[[registry]]\r\nlocation = \"h\\u0069.example\"\r\nx.y = { z = [1, [2]] }\r\n",
                    &c),
              0);
    CHECK(registries_conf_match(&c, "hi.example", NULL) != NULL);
    registries_conf_free(&c);
    /* a top-level inline array of registries */
    CHECK_INT(parse("registry = [{location = \"i.example\", insecure = true}]\n", &c), 0);
    const struct registries_conf_registry *e = registries_conf_match(&c, "i.example", NULL);
    CHECK(e && e->insecure);
    registries_conf_free(&c);

    static const char *const bad[] = {
        "[[registry]]\nlocation = \"unterminated\n",
        "[[registry]]\ninsecure = \"yes\"\nlocation=\"a\"\n",
        "[[registry]]\nlocation = \"a\" junk\n",
        "[registry]\nlocation = \"a\"\n",
        "[[registry.mirror]]\nlocation = \"a\"\n",
        "[[registry]]\ninsecure = true\n",
        "[[registry]]\nlocation = \"not a host\"\n",
        "[[registry]]\nlocation = \"http://a.example\"\n",
        "[[registry]]\nlocation = \"a.example/UPPER\"\n",
        "[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\nlocation = \"\"\n",
        "[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\nlocation = \"m\"\n"
        "pull-from-mirror = \"sometimes\"\n",
        "[[registry]]\nlocation = \"\"\"multi\"\"\"\n",
        "[[registry]]\nlocation = \"a\\q\"\n",
        "key\n",
        "= 1\n",
        "[[registry]\nlocation=\"a\"\n",
        "a = [1, 2\n",
        "a = [[[[[[[[[[[[1]]]]]]]]]]]]\n",
        "[[registry]]\nprefix = \"*.a.example/x\"\n",
        "a = tru\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        int rc = registries_conf_parse(bad[i], strlen(bad[i]), &c, err, sizeof(err));
        CHECK_INT(rc, -EINVAL);
        CHECK(err[0] != '\0');
        if (rc != -EINVAL) fprintf(stderr, "    accepted: %s", bad[i]);
        registries_conf_free(&c);
    }
    /* NUL bytes and oversized input */
    char err[64];
    CHECK_INT(registries_conf_parse("a=1\0b", 5, &c, err, sizeof(err)), -EINVAL);
    /* many registries: bounded */
    size_t cap = 64 * (REGISTRIES_CONF_MAX_REGISTRIES + 10);
    char *big = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < REGISTRIES_CONF_MAX_REGISTRIES + 5; i++)
        n += (size_t)snprintf(big + n, cap - n, "[[registry]]\nlocation = \"r%d.example\"\n", i);
    CHECK_INT(registries_conf_parse(big, n, &c, err, sizeof(err)), -EINVAL);
    free(big);
    /* too many mirrors */
    char mirrors[4096];
    n = (size_t)snprintf(mirrors, sizeof(mirrors), "[[registry]]\nlocation=\"a.example\"\n");
    for (int i = 0; i < REGISTRIES_CONF_MAX_MIRRORS + 1; i++)
        n += (size_t)snprintf(mirrors + n, sizeof(mirrors) - n,
                              "[[registry.mirror]]\nlocation=\"m%d.example\"\n", i);
    CHECK_INT(registries_conf_parse(mirrors, n, &c, err, sizeof(err)), -EINVAL);
}

static void test_load(void)
{
    struct registries_conf c;
    CHECK_INT(registries_conf_load("/nonexistent/registries.conf", &c), -ENOENT);
    char path[] = "/tmp/registryfs-unit-registries_confXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char text[] = "[[registry]]\nlocation = \"l.example\"\nblocked = true\n";
    CHECK_INT(write(fd, text, sizeof(text) - 1), (long)sizeof(text) - 1);
    close(fd);
    CHECK_INT(registries_conf_load(path, &c), 0);
    const struct registries_conf_registry *e = registries_conf_match(&c, "l.example", NULL);
    CHECK(e && e->blocked);
    registries_conf_free(&c);

    /* drop-ins: PATH.d/NAME.conf in name order, the same prefix replaced */
    char dropdir[64], file[128];
    snprintf(dropdir, sizeof(dropdir), "%s.d", path);
    CHECK_INT(mkdir(dropdir, 0700), 0);
    snprintf(file, sizeof(file), "%s/20-b.conf", dropdir);
    FILE *f = fopen(file, "w");
    fputs("[[registry]]\nlocation = \"l.example\"\ninsecure = true\n", f);
    fclose(f);
    snprintf(file, sizeof(file), "%s/10-a.conf", dropdir);
    f = fopen(file, "w");
    fputs("[[registry]]\nlocation = \"l.example\"\n[[registry]]\nlocation = \"n.example\"\n", f);
    fclose(f);
    snprintf(file, sizeof(file), "%s/30-broken.conf", dropdir);
    f = fopen(file, "w");
    fputs("[[registry]]\nlocation = \n", f);
    fclose(f);
    snprintf(file, sizeof(file), "%s/ignored.txt", dropdir);
    f = fopen(file, "w");
    fputs("garbage", f);
    fclose(f);
    CHECK_INT(registries_conf_load_all(path, &c), 0);
    CHECK_INT(c.n, 2);
    e = registries_conf_match(&c, "l.example", NULL);
    CHECK(e && e->insecure && !e->blocked); /* 20-b replaced 10-a, which replaced the file */
    CHECK(registries_conf_match(&c, "n.example", NULL) != NULL);
    registries_conf_free(&c);
    /* only drop-ins */
    unlink(path);
    CHECK_INT(registries_conf_load_all(path, &c), 0);
    CHECK_INT(c.n, 2);
    registries_conf_free(&c);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dropdir);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(registries_conf_load_all(path, &c), -ENOENT);
}

int main(void)
{
    log_init(false, "/dev/null"); /* the failure paths log; the checks say what matters */
    test_full();
    test_v1_and_digest_only();
    test_toml_details();
    test_load();
    return unit_report();
}
