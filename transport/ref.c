/* The distribution reference grammar (docker/distribution reference/regexp.go), by hand. */
#include "transport/ref.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/sha256.h"

/* Plain ASCII classes: the <ctype.h> ones depend on the locale. */
static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
    return is_alnum(c) || c == '_';
}

static bool is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* Length of the separator at s[i]: ".", "_", "__" or one or more "-"; 0 when none. */
static size_t separator_len(const char *s, size_t i, size_t len)
{
    if (s[i] == '.') return 1;
    if (s[i] == '_') return (i + 1 < len && s[i + 1] == '_') ? 2 : 1;
    size_t n = 0;
    while (i + n < len && s[i + n] == '-')
        n++;
    return n;
}

bool ref_valid_component(const char *s, size_t len)
{
    size_t i = 0;
    if (!s || len == 0) return false;
    for (;;) {
        /* an alphanumeric run, required after the start and after every separator */
        size_t start = i;
        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == start) return false;
        if (i == len) return true;
        size_t sep = separator_len(s, i, len);
        if (sep == 0) return false;
        i += sep;
    }
}

bool ref_valid_repo(const char *name)
{
    if (!name) return false;
    size_t total = strnlen(name, REF_NAME_MAX + 1);
    if (total == 0 || total > REF_NAME_MAX) return false;
    const char *p = name;
    for (;;) {
        const char *slash = memchr(p, '/', total - (size_t)(p - name));
        size_t len = slash ? (size_t)(slash - p) : total - (size_t)(p - name);
        if (!ref_valid_component(p, len)) return false;
        if (!slash) return true;
        p = slash + 1;
    }
}

bool ref_valid_tag(const char *tag)
{
    if (!tag || !is_word(tag[0])) return false;
    size_t i = 1;
    for (; tag[i]; i++) {
        if (i >= REF_TAG_MAX) return false;
        if (!is_word(tag[i]) && tag[i] != '.' && tag[i] != '-') return false;
    }
    return true;
}

bool ref_valid_hex(const char *hex)
{
    if (!hex) return false;
    for (size_t i = 0; i < SHA256_HEX_LEN; i++)
        if (!is_lower_hex(hex[i])) return false; /* also stops at a NUL before 64 */
    return hex[SHA256_HEX_LEN] == '\0';
}

bool ref_valid_digest(const char *digest)
{
    if (!digest || strncmp(digest, DIGEST_PREFIX, strlen(DIGEST_PREFIX)) != 0) return false;
    return ref_valid_hex(digest + strlen(DIGEST_PREFIX));
}

/* A DNS label: alphanumerics with inner hyphens, at most 63 bytes. */
static bool valid_label(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1])) return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '-') return false;
    return true;
}

static bool all_digits_and_dots(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_digit(s[i]) && s[i] != '.') return false;
    return true;
}

static bool valid_host(const char *s, size_t len)
{
    char tmp[REF_HOST_MAX + 1];
    unsigned char addr[16];

    if (len == 0 || len > REF_HOST_MAX) return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (s[0] == '[') {
        if (len < 3 || s[len - 1] != ']') return false;
        tmp[len - 1] = '\0';
        return inet_pton(AF_INET6, tmp + 1, addr) == 1;
    }
    /* something that looks numeric must be a real IPv4 address, not 999.1.1.1 */
    if (all_digits_and_dots(s, len)) return inet_pton(AF_INET, tmp, addr) == 1;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!valid_label(s + start, i - start)) return false;
            start = i + 1;
        }
    }
    return true;
}

/* Decimal 1..65535 without sign or leading zero, so that one port has one spelling. */
static bool valid_port(const char *s, size_t len)
{
    if (len == 0 || len > 5 || s[0] == '0') return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i])) return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/* Splits HOST[:PORT] at the port colon (the one after "]" for IPv6). host_len excludes it. */
static bool split_hostport(const char *hp, size_t len, size_t *host_len)
{
    const char *colon;
    if (len && hp[0] == '[') {
        const char *close = memchr(hp, ']', len);
        if (!close) return false;
        colon = (size_t)(close - hp) + 1 < len ? close + 1 : NULL;
        if (colon && *colon != ':') return false;
    } else {
        colon = memchr(hp, ':', len);
    }
    *host_len = colon ? (size_t)(colon - hp) : len;
    return true;
}

bool ref_valid_hostport(const char *hostport)
{
    if (!hostport) return false;
    size_t len = strnlen(hostport, REF_HOST_MAX + 8);
    size_t host_len;
    if (len == 0 || len > REF_HOST_MAX + 6 || !split_hostport(hostport, len, &host_len))
        return false;
    if (!valid_host(hostport, host_len)) return false;
    if (host_len == len) return true;
    return valid_port(hostport + host_len + 1, len - host_len - 1);
}

bool ref_looks_like_host(const char *component)
{
    if (!component) return false;
    return strchr(component, '.') || strchr(component, ':') || strcmp(component, "localhost") == 0;
}

bool ref_is_loopback(const char *host)
{
    char tmp[64];
    struct in_addr v4;
    struct in6_addr v6;

    if (!host) return false;
    if (strcasecmp(host, "localhost") == 0) return true;
    size_t len = strnlen(host, sizeof(tmp));
    if (len >= sizeof(tmp)) return false;
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        memcpy(tmp, host + 1, len - 2);
        tmp[len - 2] = '\0';
    } else {
        memcpy(tmp, host, len + 1);
    }
    if (inet_pton(AF_INET, tmp, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, tmp, &v6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
        /* ::ffff:127.x.y.z */
        return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
    }
    return false;
}

bool ref_is_docker_hub_host(const char *host)
{
    return strcasecmp(host, "docker.io") == 0 || strcasecmp(host, "index.docker.io") == 0 ||
           strcasecmp(host, "registry-1.docker.io") == 0;
}

/* Consumes "http://" or "https://" (any case) from *text into out->scheme. */
static void take_scheme(const char **text, struct registry_addr *out)
{
    static const char *const schemes[] = {"https", "http"};
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i]);
        if (strncasecmp(*text, schemes[i], n) == 0 && strncmp(*text + n, "://", 3) == 0) {
            snprintf(out->scheme, sizeof(out->scheme), "%s", schemes[i]);
            out->scheme_given = true;
            *text += n + 3;
            return;
        }
    }
    snprintf(out->scheme, sizeof(out->scheme), "https");
}

int ref_parse_registry(const char *text, struct registry_addr *out)
{
    if (!text || !out) return -EINVAL;
    memset(out, 0, sizeof(*out));
    take_scheme(&text, out);
    size_t len = strnlen(text, sizeof(out->hostport));
    if (len == sizeof(out->hostport)) return -EINVAL;
    if (len && text[len - 1] == '/') len--; /* one trailing slash, as in "https://host/" */
    memcpy(out->hostport, text, len);
    out->hostport[len] = '\0';
    if (!ref_valid_hostport(out->hostport)) return -EINVAL;

    size_t host_len;
    split_hostport(out->hostport, len, &host_len);
    memcpy(out->host, out->hostport, host_len);
    out->host[host_len] = '\0';

    /* only the port-less spelling is Docker Hub: docker.io:5000 is somebody's own registry */
    out->docker_hub = host_len == len && ref_is_docker_hub_host(out->host);
    return ref_set_scheme(out, out->scheme);
}

int ref_set_scheme(struct registry_addr *addr, const char *scheme)
{
    if (!addr || !scheme || (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0))
        return -EINVAL;
    if (scheme != addr->scheme) /* may be addr->scheme itself: no overlapping copy */
        snprintf(addr->scheme, sizeof(addr->scheme), "%s", scheme);
    int n = snprintf(addr->endpoint, sizeof(addr->endpoint), "%s://%s", addr->scheme,
                     addr->docker_hub ? "registry-1.docker.io" : addr->hostport);
    /* cannot happen: hostport was validated to fit; checked all the same */
    return n < 0 || (size_t)n >= sizeof(addr->endpoint) ? -EINVAL : 0;
}

int ref_wire_repo(const struct registry_addr *addr, const char *repo, char *out, size_t outlen)
{
    if (!addr || !ref_valid_repo(repo) || !out) return -EINVAL;
    const char *prefix = addr->docker_hub && !strchr(repo, '/') ? "library/" : "";
    int n = snprintf(out, outlen, "%s%s", prefix, repo);
    if (n < 0 || (size_t)n >= outlen) return -ENAMETOOLONG;
    return 0;
}
