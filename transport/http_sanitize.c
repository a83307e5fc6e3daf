/* URLs made fit for a log line: no userinfo, no secret-looking query values.
 *
 * Hand-rolled on purpose, unlike url.c: libcurl's CURLU rejects exactly the malformed URLs a
 * log most needs to show (a registry's broken Location, say) and rewrites those it accepts
 * (encoding, an added '/'), so the line would no longer show what was sent. This takes any
 * string, never allocates, and only ever removes: userinfo, query values, fragments. */
#include "transport/http.h"

#include <string.h>

static bool secret_param(const char *name, size_t len)
{
    /* "state": upload URLs (distribution's _state, cloud signed URLs) are capabilities */
    static const char *const words[] = {"token", "sig",    "key",     "cred", "auth",
                                        "pass",  "secret", "session", "state"};
    char lower[64];
    if (len >= sizeof(lower)) len = sizeof(lower) - 1;
    for (size_t i = 0; i < len; i++)
        lower[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    lower[len] = '\0';
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(lower, words[i])) return true;
    return false;
}

/* Appends s[0..len) to out at *pos, keeping a NUL; silently cuts when full. */
static void append(char *out, size_t outlen, size_t *pos, const char *s, size_t len)
{
    if (*pos + 1 >= outlen) return;
    size_t room = outlen - 1 - *pos;
    if (len > room) len = room;
    memcpy(out + *pos, s, len);
    *pos += len;
    out[*pos] = '\0';
}

static void append_query(char *out, size_t outlen, size_t *pos, const char *q)
{
    while (*q) {
        size_t seg = strcspn(q, "&#");
        size_t name = strcspn(q, "=&#");
        if (name < seg && secret_param(q, name)) {
            append(out, outlen, pos, q, name + 1);
            append(out, outlen, pos, "REDACTED", 8);
        } else {
            append(out, outlen, pos, q, seg);
        }
        q += seg;
        if (*q != '&') return; /* fragment or end: fragments never reach a log usefully */
        append(out, outlen, pos, "&", 1);
        q++;
    }
}

/* Length of a leading "scheme://" (RFC 3986 scheme characters), else 0: a "://" further on,
 * in a path or a query value, does not start an authority. */
static size_t scheme_len(const char *url)
{
    size_t n = 0;
    while ((url[n] >= 'a' && url[n] <= 'z') || (url[n] >= 'A' && url[n] <= 'Z') ||
           (n > 0 &&
            ((url[n] >= '0' && url[n] <= '9') || url[n] == '+' || url[n] == '-' || url[n] == '.')))
        n++;
    return n > 0 && strncmp(url + n, "://", 3) == 0 ? n + 3 : 0;
}

void http_sanitize_url(const char *url, char *out, size_t outlen)
{
    size_t pos = 0;
    if (!out || outlen == 0) return;
    out[0] = '\0';
    if (!url) return;
    const char *rest = url;
    size_t scheme = scheme_len(url);
    if (scheme) {
        append(out, outlen, &pos, url, scheme);
        rest = url + scheme;
        /* drop user:password@, up to the authority's last '@' (a password may hold one) */
        for (size_t auth = strcspn(rest, "/?#"); auth > 0; auth--)
            if (rest[auth - 1] == '@') {
                rest += auth;
                break;
            }
    }
    size_t path = strcspn(rest, "?#");
    append(out, outlen, &pos, rest, path);
    if (rest[path] == '?') {
        append(out, outlen, &pos, "?", 1);
        append_query(out, outlen, &pos, rest + path + 1);
    }
}
