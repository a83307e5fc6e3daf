/*
 * The reference grammar of transport/ref.c: names, path components, tags, digests, hex,
 * HOST[:PORT], loopback and registry addresses. Invariants: what validates has the lengths and
 * shape the grammar allows (a valid repo is valid components joined by '/', a valid digest is
 * "sha256:" + valid hex, ...); a parsed registry address is consistent with itself.
 */
#include <errno.h>

#include "tests/fuzz/fuzz.h"
#include "transport/ref.h"

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void check_repo(const char *s, size_t len)
{
    if (!ref_valid_repo(s)) return;
    FUZZ_ASSERT(len >= 1 && len <= REF_NAME_MAX);
    const char *p = s;
    for (;;) {
        size_t n = strcspn(p, "/");
        FUZZ_ASSERT(ref_valid_component(p, n));
        if (!p[n]) break;
        p += n + 1;
    }
}

static void check_registry(const char *s)
{
    struct registry_addr a;
    memset(&a, 0x5a, sizeof(a));
    int rc = ref_parse_registry(s, &a);
    if (rc) {
        FUZZ_ASSERT(rc == -EINVAL);
        return;
    }
    FUZZ_ASSERT(fuzz_terminated(a.scheme, sizeof(a.scheme)));
    FUZZ_ASSERT(fuzz_terminated(a.host, sizeof(a.host)));
    FUZZ_ASSERT(fuzz_terminated(a.hostport, sizeof(a.hostport)));
    FUZZ_ASSERT(fuzz_terminated(a.endpoint, sizeof(a.endpoint)));
    FUZZ_ASSERT(strcmp(a.scheme, "https") == 0 || strcmp(a.scheme, "http") == 0);
    FUZZ_ASSERT(a.scheme_given || strcmp(a.scheme, "https") == 0);
    FUZZ_ASSERT(ref_valid_hostport(a.hostport));
    FUZZ_ASSERT(strncmp(a.hostport, a.host, strlen(a.host)) == 0);
    FUZZ_ASSERT(strncmp(a.endpoint, a.scheme, strlen(a.scheme)) == 0);
    FUZZ_ASSERT(strstr(a.endpoint, "://") == a.endpoint + strlen(a.scheme));
    /* the host[:port] is a directory name: never a path */
    FUZZ_ASSERT(!strchr(a.hostport, '/') && strcmp(a.hostport, ".") && strcmp(a.hostport, ".."));
    /* re-parsing what it is filed under gives the same registry */
    struct registry_addr b;
    FUZZ_ASSERT(ref_parse_registry(a.hostport, &b) == 0);
    FUZZ_ASSERT(strcmp(a.host, b.host) == 0 && a.docker_hub == b.docker_hub);

    FUZZ_ASSERT(ref_set_scheme(&a, "http") == 0 && strncmp(a.endpoint, "http://", 7) == 0);
    FUZZ_ASSERT(ref_set_scheme(&a, "ftp") == -EINVAL);
    FUZZ_ASSERT(ref_set_scheme(&a, a.scheme) == 0);

    char wire[REF_NAME_MAX + 16];
    const char *repos[] = {"alpine", "team/app", s};
    for (size_t i = 0; i < sizeof(repos) / sizeof(repos[0]); i++) {
        rc = ref_wire_repo(&a, repos[i], wire, sizeof(wire));
        if (rc == 0) FUZZ_ASSERT(strlen(wire) < sizeof(wire) && ref_valid_repo(repos[i]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    /* the length-taking entry point sees the raw bytes, exactly size of them */
    char *raw = fuzz_bytes(data, size);
    bool comp = ref_valid_component(raw, size);
    free(raw);

    char *s = fuzz_cstr(data, size);
    size_t len = strlen(s);
    if (comp) FUZZ_ASSERT(len == size && size > 0);

    check_repo(s, len);

    if (ref_valid_tag(s)) FUZZ_ASSERT(len >= 1 && len <= REF_TAG_MAX && s[0] != '.' && s[0] != '-');

    if (ref_valid_hex(s)) {
        FUZZ_ASSERT(len == 64);
        for (size_t i = 0; i < len; i++)
            FUZZ_ASSERT(is_lower_hex(s[i]));
    }
    if (ref_valid_digest(s))
        FUZZ_ASSERT(len == 71 && strncmp(s, "sha256:", 7) == 0 && ref_valid_hex(s + 7));

    if (ref_valid_hostport(s)) FUZZ_ASSERT(len >= 1 && len <= REF_HOST_MAX + 7 && !strchr(s, '/'));
    (void)ref_looks_like_host(s);
    (void)ref_is_loopback(s);

    check_registry(s);
    free(s);
    return 0;
}
