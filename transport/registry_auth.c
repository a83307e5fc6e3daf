/* Requests with bearer-token authentication: anonymous tokens for now (credentials come with
 * the authfile support). */
#include "transport/registry_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define MAX_EXTRA_HEADERS 8

/* Appends the percent-encoding of s (RFC 3986 unreserved characters kept) at *pos. */
static int append_encoded(char *out, size_t outlen, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
        size_t need = keep ? 1 : 3;
        if (*pos + need >= outlen)
            return -ENAMETOOLONG;
        if (keep) {
            out[(*pos)++] = (char)c;
        } else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[c >> 4];
            out[(*pos)++] = hex[c & 15];
        }
    }
    out[*pos] = '\0';
    return 0;
}

static int append_raw(char *out, size_t outlen, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n >= outlen)
        return -ENAMETOOLONG;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return 0;
}

/* realm?service=S&scope=SCOPE, the realm checked to be an absolute http(s) URL. */
static int token_url(const struct auth_challenge *ch, const char *scope, char *out, size_t outlen)
{
    /* resolving the realm against itself validates it (scheme, host, no spaces) */
    int rc = link_resolve(ch->realm, ch->realm, out, outlen);
    if (rc)
        return rc;
    size_t pos = strlen(out);
    rc = append_raw(out, outlen, &pos, strchr(out, '?') ? "&" : "?");
    if (!rc && ch->service[0]) {
        rc = append_raw(out, outlen, &pos, "service=");
        if (!rc)
            rc = append_encoded(out, outlen, &pos, ch->service);
        if (!rc)
            rc = append_raw(out, outlen, &pos, "&");
    }
    if (!rc)
        rc = append_raw(out, outlen, &pos, "scope=");
    if (!rc)
        rc = append_encoded(out, outlen, &pos, scope);
    return rc;
}

static int collect_body(void *ctx, const struct http_response *resp, const void *data, size_t len)
{
    (void)resp;
    return buf_append(ctx, data, len);
}

static void reset_body(void *ctx)
{
    buf_reset(ctx);
}

char *reg_fetch_token(struct registry *r, const struct auth_challenge *ch, const char *scope,
                      long *expires_in)
{
    char url[REG_URL_MAX];
    if (token_url(ch, scope, url, sizeof(url)) != 0) {
        log_warn("registry %s: unusable token realm in the auth challenge", r->addr.hostport);
        return NULL;
    }
    struct buf body;
    buf_init(&body, AUTH_TOKEN_RESPONSE_MAX);
    struct http_request req = {.url = url,
                               .cls = HTTP_META,
                               .max_attempts = HTTP_MAX_ATTEMPTS,
                               .on_body = collect_body,
                               .ctx = &body,
                               .on_attempt = reset_body};
    struct http_response resp;
    http_response_init(&resp);
    char *token = NULL;
    int rc = http_perform(r->http, &req, &resp);
    if (!rc && resp.status == 200) {
        token = auth_parse_token_response(body.data, body.len, expires_in);
        if (!token)
            log_warn("registry %s: token service answered without a usable token",
                     r->addr.hostport);
    } else {
        char reason[320];
        reg_describe(&resp, rc, reason, sizeof(reason));
        log_warn("registry %s: anonymous token for %s: %s", r->addr.hostport, scope, reason);
    }
    if (body.data)
        explicit_bzero(body.data, body.len);
    buf_free(&body);
    http_response_free(&resp);
    return token;
}

/* The challenge to answer: the 401's own, else the one seen on /v2/. */
static bool challenge_for(struct registry *r, const struct http_response *resp,
                          struct auth_challenge *ch)
{
    if (resp->www_authenticate[0] && auth_parse_challenge(resp->www_authenticate, ch) == 0)
        return true;
    return auth_get_challenge(r->auth, ch);
}

/* The extra headers plus "Authorization: Bearer T" when there is a token. *line must be
 * freed with auth_token_free. NULL list entry terminates. */
static int build_headers(const struct reg_call *call, const char *token,
                         const char *list[MAX_EXTRA_HEADERS + 2], char **line)
{
    size_t n = 0;
    *line = NULL;
    for (; call->headers && call->headers[n]; n++) {
        if (n >= MAX_EXTRA_HEADERS)
            return -EINVAL;
        list[n] = call->headers[n];
    }
    if (token) {
        size_t len = strlen(token) + sizeof("Authorization: Bearer ");
        *line = malloc(len);
        if (!*line)
            return -ENOMEM;
        snprintf(*line, len, "Authorization: Bearer %s", token);
        list[n++] = *line;
    }
    list[n] = NULL;
    return 0;
}

static int perform_with(struct registry *r, const struct reg_call *call, const char *token,
                        struct http_response *resp)
{
    const char *headers[MAX_EXTRA_HEADERS + 2];
    char *line;
    int rc = build_headers(call, token, headers, &line);
    if (rc)
        return rc;
    struct http_request req = {.method = call->method,
                               .url = call->url,
                               .headers = headers,
                               .cls = call->cls,
                               .max_attempts = call->max_attempts,
                               .on_body = call->on_body,
                               .ctx = call->ctx,
                               .on_attempt = call->on_attempt,
                               .upload_data = call->upload_data,
                               .upload_fd = call->upload_fd,
                               .upload_len = call->upload_len};
    rc = http_perform(r->http, &req, resp);
    auth_token_free(line);
    return rc;
}

int reg_perform(struct registry *r, const struct reg_call *call, struct http_response *resp)
{
    char *token = call->scope ? auth_token_get(r->auth, call->scope) : NULL;
    bool fetched = false;
    int rc;
    for (;;) {
        rc = perform_with(r, call, token, resp);
        if (rc || resp->status != 401 || !call->scope || fetched)
            break;
        if (token)
            auth_token_drop(r->auth, call->scope); /* refused: do not offer it again */
        auth_token_free(token);
        token = NULL;
        struct auth_challenge ch;
        if (!challenge_for(r, resp, &ch) || ch.scheme != AUTH_BEARER)
            break; /* Basic needs credentials we do not have yet */
        long expires_in;
        token = reg_fetch_token(r, &ch, call->scope, &expires_in);
        fetched = true;
        if (!token)
            break;
        auth_token_put(r->auth, call->scope, token, expires_in);
    }
    auth_token_free(token);
    return rc;
}
