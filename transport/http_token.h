/* RFC 7230 lexical pieces shared by the header parsers (WWW-Authenticate, Link). */
#ifndef REGISTRYFS_HTTP_TOKEN_H
#define REGISTRYFS_HTTP_TOKEN_H

#include <stdbool.h>
#include <string.h>

static inline bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static inline const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

#endif
