/*
 * Auth files (containers-auth.json / docker config.json with auths, credHelpers, credsStore,
 * and the legacy ~/.dockercfg): authfile_parse from memory, then authfile_lookup for a few
 * repositories and authfile_helper; authfile_normalize_host and base64_decode on the
 * raw bytes too. Input: the file, optionally preceded by one line "#HOSTPORT" or
 * "#HOSTPORT legacy" naming the registry (default docker.io). Invariants: a found credential
 * is usable and bounded; a helper name is short and has no '/'; decoded base64 fits.
 */
#include <errno.h>

#include "tests/fuzz/fuzz.h"
#include "common/base64.h"
#include "transport/authfile.h"

static void check_field(const char *f)
{
    if (f) FUZZ_ASSERT(strlen(f) <= CRED_FIELD_MAX);
}

static void lookup(const struct authfile *af, const char *repo)
{
    struct credential c;
    memset(&c, 0x5a, sizeof(c));
    int rc = authfile_lookup(af, repo, &c);
    if (rc == 1) {
        FUZZ_ASSERT(credential_present(&c));
        check_field(c.username);
        check_field(c.password);
        check_field(c.identity_token);
        struct credential copy;
        if (credential_copy(&copy, &c) == 0) {
            FUZZ_ASSERT(credential_present(&copy));
            credential_clear(&copy);
        }
    } else {
        FUZZ_ASSERT(rc == 0 && !c.username && !c.password && !c.identity_token);
    }
    credential_clear(&c);
    FUZZ_ASSERT(!credential_present(&c));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AUTHFILE_MAX_BYTES + 16) return 0;
    char host[512] = "docker.io";
    bool legacy = false;
    if (size && data[0] == '#') {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t n = nl ? (size_t)(nl - data) : size;
        if (n - 1 >= sizeof(host)) return 0;
        memcpy(host, data + 1, n - 1);
        host[n - 1] = '\0';
        char *sp = strchr(host, ' ');
        if (sp) {
            legacy = strcmp(sp + 1, "legacy") == 0;
            *sp = '\0';
        }
        data += nl ? n + 1 : n;
        size -= nl ? n + 1 : n;
    }

    char norm[300];
    int nrc = authfile_normalize_host(host, norm, sizeof(norm));
    if (nrc == 0) FUZZ_ASSERT(strlen(norm) < sizeof(norm) && !strchr(norm, '/'));

    char *json = fuzz_bytes(data, size);
    struct authfile *af = NULL;
    char err[256];
    int rc = authfile_parse(json, size, legacy, host, &af, err, sizeof(err));
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)));
    if (rc == 0) {
        FUZZ_ASSERT(af != NULL);
        lookup(af, NULL);
        lookup(af, "");
        lookup(af, "library/alpine");
        lookup(af, "team/app");
        lookup(af, "a/b/c/d");
        const char *helper = authfile_helper(af);
        if (helper) FUZZ_ASSERT(strlen(helper) <= CRED_HELPER_NAME_MAX && !strchr(helper, '/'));
        authfile_free(af);
    } else {
        FUZZ_ASSERT(rc == -EINVAL || rc == -EFBIG);
        FUZZ_ASSERT(af == NULL);
    }

    /* base64 on exact-length bytes, with a roomy and a tight buffer */
    char out[1024];
    if (size <= 1024) {
        int n = base64_decode(json, size, out, sizeof(out));
        if (n >= 0) {
            FUZZ_ASSERT((size_t)n < sizeof(out) && out[n] == '\0');
            FUZZ_ASSERT((size_t)n <= size * 3 / 4);
            if (n > 0) FUZZ_ASSERT(base64_decode(json, size, out, (size_t)n) == -EINVAL);
        } else {
            FUZZ_ASSERT(n == -EINVAL);
        }
    }
    free(json);
    return 0;
}
