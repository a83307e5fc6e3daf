/*
 * registries.conf (the TOML subset of transport/toml_subset.c): registries_conf_parse from
 * memory, then registries_conf_match and registries_conf_mirror_ref for references derived from
 * each entry's own prefix and for fixed ones. Invariants: bounded counts, terminated strings; an
 * entry's own prefix finds an entry; a mirror reference is a valid host and repository name.
 */
#include <errno.h>

#include "tests/fuzz/fuzz.h"
#include "transport/ref.h"
#include "transport/registries_conf.h"

static void try_ref(const struct registries_conf *c, const char *host, const char *repo,
                    int must_match)
{
    const struct registries_conf_registry *e = registries_conf_match(c, host, repo);
    if (!e) {
        FUZZ_ASSERT(!must_match);
        return;
    }
    FUZZ_ASSERT(e >= c->regs && e < c->regs + c->n);
    if (!repo) return;
    for (size_t i = 0; i < e->n_mirrors; i++) {
        char mhost[REF_HOST_MAX + 8], mrepo[REF_NAME_MAX + 1];
        if (registries_conf_mirror_ref(e, &e->mirrors[i], host, repo, mhost, mrepo) == 0) {
            FUZZ_ASSERT(ref_valid_hostport(mhost));
            FUZZ_ASSERT(ref_valid_repo(mrepo));
        }
    }
}

/* A reference under the entry's prefix ("*.d" → "x.d"), or 0 when none is made from it. */
static int ref_under(const char *prefix, char *host, size_t hostlen, char *repo, size_t repolen)
{
    const char *p = prefix;
    char buf[REGISTRIES_CONF_LOCATION_MAX + 2];
    if (strncmp(p, "*.", 2) == 0) {
        snprintf(buf, sizeof(buf), "x%s", p + 1);
        p = buf;
    }
    size_t hl = strcspn(p, "/");
    if (hl >= hostlen) return 0;
    memcpy(host, p, hl);
    host[hl] = '\0';
    int n = snprintf(repo, repolen, "%s%sapp", p[hl] ? p + hl + 1 : "library/", p[hl] ? "/" : "");
    return n > 0 && (size_t)n < repolen && ref_valid_hostport(host) && ref_valid_repo(repo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0; /* the limit is checked by a unit test; keep runs fast */
    char *text = fuzz_bytes(data, size);
    struct registries_conf c;
    char err[256];
    memset(&c, 0x5a, sizeof(c));
    int rc = registries_conf_parse(text, size, &c, err, sizeof(err));
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)));
    if (rc != 0) {
        FUZZ_ASSERT(rc == -EINVAL || rc == -ENOMEM || rc == -EFBIG);
        FUZZ_ASSERT(err[0] || rc != -EINVAL);
        registries_conf_free(&c); /* must be harmless after a failed parse */
        free(text);
        return 0;
    }
    FUZZ_ASSERT(c.n <= REGISTRIES_CONF_MAX_REGISTRIES);
    for (size_t i = 0; i < c.n; i++) {
        const struct registries_conf_registry *e = &c.regs[i];
        FUZZ_ASSERT(fuzz_terminated(e->prefix, sizeof(e->prefix)) && e->prefix[0]);
        FUZZ_ASSERT(fuzz_terminated(e->location, sizeof(e->location)));
        FUZZ_ASSERT(e->n_mirrors <= REGISTRIES_CONF_MAX_MIRRORS);
        for (size_t j = 0; j < e->n_mirrors; j++)
            FUZZ_ASSERT(fuzz_terminated(e->mirrors[j].location, sizeof(e->mirrors[j].location)));
    }
    for (size_t i = 0; i < c.n && i < 16; i++) {
        char host[REF_HOST_MAX + 8], repo[REF_NAME_MAX + 1];
        if (ref_under(c.regs[i].prefix, host, sizeof(host), repo, sizeof(repo)))
            try_ref(&c, host, repo, 1);
    }
    try_ref(&c, "docker.io", "library/alpine", 0);
    try_ref(&c, "registry-1.docker.io", "library/alpine", 0);
    try_ref(&c, "127.0.0.1:5000", "team/app", 0);
    try_ref(&c, "127.0.0.1:5000", NULL, 0);
    try_ref(&c, "a.corp.example", "x/y", 0);
    registries_conf_free(&c);
    free(text);
    return 0;
}
