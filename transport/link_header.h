/*
 * Pagination links (RFC 8288 "Link: <url>; rel=next") and resolving them against the URL of
 * the page that carried them. Pure string work, private to transport/.
 */
#ifndef REGISTRYFS_LINK_HEADER_H
#define REGISTRYFS_LINK_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#define LINK_URL_MAX 4096

/*
 * Finds the link whose rel (quoted or not, possibly one of several space-separated values)
 * is "next" in one Link header value, which may list several links separated by commas.
 * 1 with the URI reference in out, 0 when there is none, -EINVAL when malformed or too long.
 */
int link_find_next(const char *value, char *out, size_t outlen);

/*
 * Resolves a URI reference against an absolute http(s) base URL: absolute ("http[s]://..."),
 * scheme-relative ("//host/p"), absolute-path ("/p?q"), query-only ("?q") or path-relative.
 * 0, or -EINVAL (bad base, bad reference, control characters) / -ENAMETOOLONG.
 */
int link_resolve(const char *base, const char *ref, char *out, size_t outlen);

/* Whether two absolute URLs have the same scheme://authority (case-insensitive). */
bool link_same_origin(const char *a, const char *b);

#endif
