/*
 * Pagination: link_find_next over a Link header value, then url_resolve of what it found (and
 * of the raw value) against a base URL, and url_same_origin. Input: "VALUE" or
 * "VALUE\nBASE" (the base defaults to a registry's catalog URL). Invariants: results fit the
 * buffer, a too-small buffer is an error and never a cut URL, a resolved URL is absolute
 * http(s) without spaces or control characters.
 */
#include <errno.h>
#include <strings.h>

#include "tests/fuzz/fuzz.h"
#include "transport/link_header.h"
#include "transport/url.h"

static void check_url(const char *u, size_t outlen)
{
    size_t n = strlen(u);
    FUZZ_ASSERT(n < outlen);
    FUZZ_ASSERT(strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0);
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT((unsigned char)u[i] > ' ' && (unsigned char)u[i] != 0x7f);
}

static void resolve(const char *base, const char *ref)
{
    char out[LINK_URL_MAX];
    int rc = url_resolve(base, ref, out, sizeof(out));
    if (rc == 0) {
        check_url(out, sizeof(out));
        (void)url_same_origin(base, out);
        /* the same with a buffer just too small: an error, not a cut URL */
        size_t n = strlen(out);
        char *small = malloc(n);
        if (!small) abort();
        if (n) FUZZ_ASSERT(url_resolve(base, ref, small, n) == -ENAMETOOLONG);
        free(small);
    } else {
        FUZZ_ASSERT(rc == -EINVAL || rc == -ENAMETOOLONG);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 3 * LINK_URL_MAX) return 0;
    char *s = fuzz_cstr(data, size);
    const char *base = "http://127.0.0.1:5000/v2/_catalog?n=100";
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        base = nl + 1;
    }
    char next[LINK_URL_MAX];
    int rc = link_find_next(s, next, sizeof(next));
    if (rc == 1) {
        size_t n = strlen(next);
        FUZZ_ASSERT(n >= 1 && n < sizeof(next));
        /* a buffer one byte short is refused */
        char *small = malloc(n);
        if (!small) abort();
        FUZZ_ASSERT(link_find_next(s, small, n) == -EINVAL);
        free(small);
        resolve(base, next);
    } else {
        FUZZ_ASSERT(rc == 0 || rc == -EINVAL);
    }
    resolve(base, s);
    (void)url_same_origin(s, base);
    free(s);
    return 0;
}
