/* Where a response came from: the origin (scheme, host, port) of a redirect's target against
 * the request's, and the scheme of a redirect that was not followed. Parsed with libcurl's
 * CURLU, so what is compared is what curl connected to (lower-case scheme and host, the
 * default port filled in). */
#include "transport/http_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "transport/url.h"

void http_note_origin(CURL *h, const char *request_url, struct http_response *resp)
{
    long redirects = 0;
    char *effective = NULL;
    char want[HTTP_ORIGIN_MAX];
    resp->cross_origin = false;
    resp->origin[0] = '\0';
    if (curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects) != CURLE_OK || redirects == 0)
        return;
    if (curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective) != CURLE_OK || !effective) return;
    /* a target we cannot even name is treated as foreign: it gets no credentials either */
    if (url_origin(effective, resp->origin, sizeof(resp->origin)) != 0) {
        snprintf(resp->origin, sizeof(resp->origin), "(unparsable URL)");
        resp->cross_origin = true;
        return;
    }
    resp->cross_origin =
        url_origin(request_url, want, sizeof(want)) != 0 || strcmp(want, resp->origin) != 0;
}

void http_note_refused_redirect(struct http_response *resp)
{
    resp->refused_scheme[0] = '\0';
    if (resp->curl_code == CURLE_OK || resp->status < 300 || resp->status > 399 ||
        !resp->location[0])
        return;
    CURLU *u = curl_url();
    char *scheme = NULL;
    /* a relative Location has the request's scheme, http(s): only absolute ones matter */
    if (u &&
        curl_url_set(u, CURLUPART_URL, resp->location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
        snprintf(resp->refused_scheme, sizeof(resp->refused_scheme), "%.15s", scheme);
    curl_free(scheme);
    curl_url_cleanup(u);
}
