/*
 * Pagination links (RFC 8288 "Link: <url>; rel=next"): finding the next page's URI reference
 * (transport/url.h resolves it). Pure string work, private to transport/.
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
int link_find_next(const char *value, char *out, size_t outlen) __attribute__((warn_unused_result));

#endif
