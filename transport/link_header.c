/* RFC 8288 Link header values, just enough for pagination, and RFC 3986 reference resolution
 * for the forms registries actually send. */
#include "transport/link_header.h"

#include "transport/http_token.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PARAM_MAX 256

/* A token or quoted-string at p into out (truncated to PARAM_MAX-1); NULL when malformed. */
static const char *parse_param_value(const char *p, char out[PARAM_MAX])
{
    size_t n = 0;
    if (*p != '"') {
        while (is_token_char(*p)) {
            if (n < PARAM_MAX - 1) out[n++] = *p;
            p++;
        }
        out[n] = '\0';
        return p;
    }
    for (p++; *p != '"'; p++) {
        if (*p == '\0') return NULL;
        if (*p == '\\' && p[1]) p++;
        if (n < PARAM_MAX - 1) out[n++] = *p;
    }
    out[n] = '\0';
    return p + 1;
}

/* rel may hold several relation types separated by spaces: "next last". */
static bool rel_has_next(const char *rel)
{
    const char *p = rel;
    while (*p) {
        p = skip_ws(p);
        size_t n = strcspn(p, " \t");
        if (n == 4 && strncasecmp(p, "next", 4) == 0) return true;
        p += n;
    }
    return false;
}

/* Parses the ";name=value" list after one link's <uri>; sets *is_next. NULL when malformed. */
static const char *parse_link_params(const char *p, bool *is_next)
{
    char name[PARAM_MAX], value[PARAM_MAX];
    *is_next = false;
    for (;;) {
        p = skip_ws(p);
        if (*p == ',' || *p == '\0') return p;
        if (*p != ';') return NULL;
        p = skip_ws(p + 1);
        size_t n = 0;
        while (is_token_char(*p)) {
            if (n < PARAM_MAX - 1) name[n++] = *p;
            p++;
        }
        name[n] = '\0';
        if (n == 0) return NULL;
        p = skip_ws(p);
        value[0] = '\0';
        if (*p == '=') {
            p = parse_param_value(skip_ws(p + 1), value);
            if (!p) return NULL;
        }
        if (strcasecmp(name, "rel") == 0 && rel_has_next(value)) *is_next = true;
    }
}

int link_find_next(const char *value, char *out, size_t outlen)
{
    if (!value || !out || outlen == 0) return -EINVAL;
    const char *p = value;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0') return 0;
        if (*p != '<') return -EINVAL;
        const char *uri = p + 1;
        const char *gt = strchr(uri, '>');
        if (!gt) return -EINVAL;
        bool is_next;
        p = parse_link_params(gt + 1, &is_next);
        if (!p) return -EINVAL;
        if (is_next) {
            size_t len = (size_t)(gt - uri);
            if (len == 0 || len >= outlen) return -EINVAL;
            memcpy(out, uri, len);
            out[len] = '\0';
            return 1;
        }
    }
}

/* Length of "http://" or "https://" at the start of url (any case), else 0. */
static size_t http_scheme_len(const char *url)
{
    if (strncasecmp(url, "http://", 7) == 0) return 7;
    if (strncasecmp(url, "https://", 8) == 0) return 8;
    return 0;
}

/* Length of scheme://authority of an absolute http(s) URL; 0 when it is not one. */
static size_t origin_len(const char *url)
{
    size_t s = http_scheme_len(url);
    if (!s) return 0;
    size_t auth = strcspn(url + s, "/?#");
    return auth ? s + auth : 0;
}

/* RFC 3986: a scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ':'. */
static bool has_scheme(const char *ref)
{
    const char *p = ref;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    return *p == ':';
}

static bool has_control_or_space(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f) return true;
    return false;
}

/* out = the first prefix_len bytes of prefix, then mid, then ref. */
static int join3(const char *prefix, size_t prefix_len, const char *mid, const char *ref, char *out,
                 size_t outlen)
{
    if (prefix_len > LINK_URL_MAX) return -ENAMETOOLONG;
    int n = snprintf(out, outlen, "%.*s%s%s", (int)prefix_len, prefix, mid, ref);
    if (n < 0) return -EINVAL;
    return (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* out = the first prefix_len bytes of prefix, then ref. */
static int join(const char *prefix, size_t prefix_len, const char *ref, char *out, size_t outlen)
{
    return join3(prefix, prefix_len, "", ref, out, outlen);
}

static int resolve(const char *base, const char *ref, char *out, size_t outlen)
{
    if (!base || !ref || !out || outlen == 0 || !ref[0]) return -EINVAL;
    size_t origin = origin_len(base);
    if (!origin || has_control_or_space(base) || has_control_or_space(ref)) return -EINVAL;
    if (has_scheme(ref)) return origin_len(ref) ? join(ref, 0, ref, out, outlen) : -EINVAL;
    if (ref[0] == '/' && ref[1] == '/') return join(base, strcspn(base, ":") + 1, ref, out, outlen);
    if (ref[0] == '/') return join(base, origin, ref, out, outlen);
    /* end of the base's path, where its query or fragment starts */
    size_t path_end = origin + strcspn(base + origin, "?#");
    if (ref[0] == '?') return join(base, path_end, ref, out, outlen);
    if (ref[0] == '#') return join(base, origin + strcspn(base + origin, "#"), ref, out, outlen);
    /* relative path: replace the last segment of the base's path */
    size_t dir_end = path_end;
    while (dir_end > origin && base[dir_end - 1] != '/')
        dir_end--;
    if (dir_end == origin) /* "http://host" has the empty path: resolve against "/" */
        return join3(base, origin, "/", ref, out, outlen);
    return join(base, dir_end, ref, out, outlen);
}

int link_resolve(const char *base, const char *ref, char *out, size_t outlen)
{
    int rc = resolve(base, ref, out, outlen);
    /* "//" alone, or "https://?x", has no host to talk to */
    if (!rc && !origin_len(out)) rc = -EINVAL;
    if (rc && out && outlen) out[0] = '\0';
    return rc;
}

bool link_same_origin(const char *a, const char *b)
{
    if (!a || !b) return false;
    size_t la = origin_len(a), lb = origin_len(b);
    return la && la == lb && strncasecmp(a, b, la) == 0;
}
