/*
 * http_sanitize_url, which makes URLs fit for a log line. Invariants, for several buffer
 * sizes: the output fits; no userinfo survives (no '@' before the path); every query
 * parameter with a secret-looking name has its value replaced by REDACTED; the output is a
 * prefix of what the full-size buffer gets.
 */
#include <ctype.h>
#include <strings.h>

#include "tests/fuzz/fuzz.h"
#include "transport/http.h"

static int secret_name(const char *p, size_t n)
{
    static const char *const words[] = {"token", "sig",    "key",     "cred", "auth",
                                        "pass",  "secret", "session", "state"};
    char lower[64];
    if (n >= sizeof(lower)) n = sizeof(lower) - 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)tolower((unsigned char)p[i]);
    lower[n] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(lower, words[i])) return 1;
    return 0;
}

/* Length of a leading "scheme://" in u (RFC 3986 scheme characters), else 0. */
static size_t scheme_len(const char *u)
{
    size_t n = 0;
    if (!isalpha((unsigned char)u[0])) return 0;
    while (isalnum((unsigned char)u[n]) || u[n] == '+' || u[n] == '-' || u[n] == '.')
        n++;
    return strncmp(u + n, "://", 3) == 0 ? n + 3 : 0;
}

/* Checks the output on its own terms, independently of how the sanitiser splits its input. */
static void check(const char *out)
{
    const char *rest = out + scheme_len(out);
    if (rest != out) {
        size_t auth = strcspn(rest, "/?#");
        FUZZ_ASSERT(memchr(rest, '@', auth) == NULL); /* no userinfo */
    }
    FUZZ_ASSERT(!strchr(out, '#'));
    const char *q = strchr(rest, '?');
    if (!q) return;
    for (q++; *q;) {
        size_t seg = strcspn(q, "&");
        size_t name = strcspn(q, "=&");
        if (name < seg && secret_name(q, name))
            FUZZ_ASSERT(seg - name - 1 == 8 && strncmp(q + name + 1, "REDACTED", 8) == 0);
        q += seg;
        if (*q == '&') q++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    char *s = fuzz_cstr(data, size);
    size_t full_len = 8 * size + 16; /* REDACTED may be longer than what it replaces */
    char *full = malloc(full_len);
    if (!full) abort();
    http_sanitize_url(s, full, full_len);
    FUZZ_ASSERT(strlen(full) < full_len);
    check(full);
    static const size_t sizes[] = {1, 2, 9, 64, 512};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *out = malloc(sizes[i]);
        if (!out) abort();
        http_sanitize_url(s, out, sizes[i]);
        size_t n = strlen(out);
        FUZZ_ASSERT(n < sizes[i]);
        FUZZ_ASSERT(strncmp(out, full, n) == 0);
        free(out);
    }
    free(full);
    free(s);
    return 0;
}
