/* URLs made fit for a log line: no userinfo, no secret-looking query values. */
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

void http_sanitize_url(const char *url, char *out, size_t outlen)
{
    size_t pos = 0;
    if (!out || outlen == 0) return;
    out[0] = '\0';
    if (!url) return;
    const char *rest = url;
    const char *sep = strstr(url, "://");
    if (sep) {
        append(out, outlen, &pos, url, (size_t)(sep + 3 - url));
        rest = sep + 3;
        size_t auth = strcspn(rest, "/?#");
        const char *at = memchr(rest, '@', auth);
        if (at) rest = at + 1; /* drop user:password@ */
    }
    size_t path = strcspn(rest, "?#");
    append(out, outlen, &pos, rest, path);
    if (rest[path] == '?') {
        append(out, outlen, &pos, "?", 1);
        append_query(out, outlen, &pos, rest + path + 1);
    }
}
