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
