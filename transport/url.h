/* URLs by libcurl's CURLU parser: the same parser that decides where curl connects, so what
 * is checked is what is used (lower-case scheme and host, default ports, dot-segments).
 * Private to transport/. */
#ifndef REGISTRYFS_URL_H
#define REGISTRYFS_URL_H

#include <stdbool.h>
#include <stddef.h>

/* "scheme://host:port" of an absolute http(s) URL (never its userinfo), with the default
 * port filled in. 0, or -EINVAL when it does not parse or is not http(s). */
int url_origin(const char *url, char *out, size_t outlen) __attribute__((warn_unused_result));

/* Whether two absolute http(s) URLs have the same origin (scheme, host and port). */
bool url_same_origin(const char *a, const char *b);

/* Resolves a URI reference against an absolute http(s) base URL (RFC 3986): absolute,
 * scheme-relative, absolute-path, query-only or path-relative. The result must be http(s)
 * with a host. 0, or -EINVAL (bad base or reference, control characters or spaces) /
 * -ENAMETOOLONG / -ENOMEM. */
int url_resolve(const char *base, const char *ref, char *out, size_t outlen)
    __attribute__((warn_unused_result));

#endif
