/* URLs by libcurl's CURLU parser (see url.h). */
#include "transport/url.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool is_http(const char *scheme)
{
    return scheme && (!strcmp(scheme, "http") || !strcmp(scheme, "https"));
}

/* A URL handle set to url (absolute, or relative to what u already holds), http(s) only. */
static int set_url(CURLU *u, const char *url)
{
    char *scheme = NULL;
    int rc = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
                     curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK && is_http(scheme)
                 ? 0
                 : -EINVAL;
    curl_free(scheme);
    return rc;
}

int url_origin(const char *url, char *out, size_t outlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -EINVAL;
    if (u && url && set_url(u, url) == 0 &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        for (char *c = host; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
        rc = snprintf(out, outlen, "%s://%s:%s", scheme, host, port) < (int)outlen ? 0 : -EINVAL;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

bool url_same_origin(const char *a, const char *b)
{
    char oa[1024], ob[1024];
    return url_origin(a, oa, sizeof(oa)) == 0 && url_origin(b, ob, sizeof(ob)) == 0 &&
           strcmp(oa, ob) == 0;
}

/* Control characters and spaces never belong in a URL a server sent: refuse rather than let
 * a parser guess (a CR LF would split a request line). */
static bool has_control_or_space(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f) return true;
    return false;
}

int url_resolve(const char *base, const char *ref, char *out, size_t outlen)
{
    if (!base || !ref || !out || outlen == 0) return -EINVAL;
    out[0] = '\0';
    if (!ref[0] || has_control_or_space(base) || has_control_or_space(ref)) return -EINVAL;
    CURLU *u = curl_url();
    if (!u) return -ENOMEM;
    char *host = NULL, *full = NULL;
    int rc = set_url(u, base) == 0 && set_url(u, ref) == 0 &&
                     curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] &&
                     curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK
                 ? 0
                 : -EINVAL;
    if (rc == 0 && strlen(full) >= outlen) rc = -ENAMETOOLONG;
    if (rc == 0) memcpy(out, full, strlen(full) + 1);
    curl_free(host);
    curl_free(full);
    curl_url_cleanup(u);
    return rc;
}
