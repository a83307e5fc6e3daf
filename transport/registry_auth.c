/* Authenticated requests: Basic where the registry asks for it, bearer tokens (anonymous, with
 * Basic credentials to the realm, or from an identity token by OAuth2 refresh) cached per scope
 * in memory, and one clear log line when access is denied. No secret ever reaches a log. */
#include "transport/registry_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64.h"
#include "common/timeutil.h"
#include "common/log.h"

#define MAX_EXTRA_HEADERS 8
#define SCOPE_KEY_MAX (2 * (WIRE_REPO_MAX + 32) + 2)
#define OAUTH_CLIENT_ID "registryfs"
#define DENY_REPEAT_MS 60000 /* the same denial is logged again after this long */
#define SOURCE_MAX 320

/* ---- encoding ---- */

/* Appends the percent-encoding of s (RFC 3986 unreserved characters kept) at *pos. */
static int append_encoded(char *out, size_t outlen, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
        size_t need = keep ? 1 : 3;
        if (*pos + need >= outlen) return -ENAMETOOLONG;
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
    if (*pos + n >= outlen) return -ENAMETOOLONG;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return 0;
}

/* "name=value&" (value percent-encoded); nothing when value is NULL or empty. */
static int append_param(char *out, size_t outlen, size_t *pos, const char *name, const char *value)
{
    if (!value || !*value) return 0;
    int rc = append_raw(out, outlen, pos, name);
    if (!rc) rc = append_raw(out, outlen, pos, "=");
    if (!rc) rc = append_encoded(out, outlen, pos, value);
    if (!rc) rc = append_raw(out, outlen, pos, "&");
    return rc;
}

static void trim_amp(char *out, size_t *pos)
{
    if (*pos && out[*pos - 1] == '&') out[--*pos] = '\0';
}

/* The realm, checked to be an absolute http(s) URL (resolving it against itself does that). */
static int realm_url(const struct auth_challenge *ch, char *out, size_t outlen)
{
    return url_resolve(ch->realm, ch->realm, out, outlen);
}

/* Appends "name=value" to the URL's query, the value percent-encoded by curl; nothing when
 * value is NULL or empty. */
static int add_query(CURLU *u, const char *name, const char *value)
{
    if (!value || !*value) return 0;
    size_t len = strlen(name) + strlen(value) + 2;
    char *pair = malloc(len);
    if (!pair) return -ENOMEM;
    snprintf(pair, len, "%s=%s", name, value);
    CURLUcode uc = curl_url_set(u, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE);
    free(pair);
    return uc == CURLUE_OK ? 0 : uc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

/* realm?service=S&scope=A[&scope=B] (the distribution token spec repeats scope), keeping a
 * query the realm has. -ENAMETOOLONG when it does not fit out. */
static int token_get_url(const struct auth_challenge *ch, const char *scope, const char *scope2,
                         char *out, size_t outlen)
{
    int rc = realm_url(ch, out, outlen);
    if (rc) return rc;
    CURLU *u = curl_url();
    char *full = NULL;
    if (!u) return -ENOMEM;
    rc = curl_url_set(u, CURLUPART_URL, out, 0) == CURLUE_OK ? 0 : -EINVAL;
    if (!rc) rc = add_query(u, "service", ch->service);
    if (!rc) rc = add_query(u, "scope", scope);
    if (!rc) rc = add_query(u, "scope", scope2);
    if (!rc && curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) rc = -ENOMEM;
    if (!rc && strlen(full) >= outlen) rc = -ENAMETOOLONG;
    if (!rc) memcpy(out, full, strlen(full) + 1);
    curl_free(full);
    curl_url_cleanup(u);
    return rc;
}

/* "Authorization: Basic base64(user:password)", malloc'd (free with auth_token_free). */
static char *basic_header(const struct credential *cred)
{
    size_t ul = strlen(cred->username), pl = strlen(cred->password);
    size_t raw_len = ul + 1 + pl;
    char *raw = malloc(raw_len + 1);
    if (!raw) return NULL;
    memcpy(raw, cred->username, ul);
    raw[ul] = ':';
    memcpy(raw + ul + 1, cred->password, pl);
    char *b64 = base64_encode(raw, raw_len);
    explicit_bzero(raw, raw_len + 1);
    free(raw);
    if (!b64) return NULL;
    size_t out_len = sizeof("Authorization: Basic ") + strlen(b64);
    char *out = malloc(out_len);
    if (out) snprintf(out, out_len, "Authorization: Basic %s", b64);
    explicit_bzero(b64, strlen(b64));
    free(b64);
    return out;
}

static char *bearer_header(const char *token)
{
    size_t len = strlen(token) + sizeof("Authorization: Bearer ");
    char *line = malloc(len);
    if (line) snprintf(line, len, "Authorization: Bearer %s", token);
    return line;
}

/* ---- token requests ---- */

static int collect_body(void *ctx, const struct http_response *resp, const void *data, size_t len)
{
    (void)resp;
    return buf_append(ctx, data, len);
}

static void reset_body(void *ctx)
{
    struct buf *b = ctx;
    if (b->data) explicit_bzero(b->data, b->len);
    buf_reset(b);
}

/* The POST body of an OAuth2 refresh-token grant; malloc'd (it holds the token). */
static char *oauth_form(const struct auth_challenge *ch, const char *scope, const char *scope2,
                        const char *refresh_token)
{
    size_t cap = 3 * (strlen(refresh_token) + strlen(ch->service) + strlen(scope) +
                      (scope2 ? strlen(scope2) : 0)) +
                 256;
    char *form = malloc(cap);
    if (!form) return NULL;
    char scopes[SCOPE_KEY_MAX];
    snprintf(scopes, sizeof(scopes), "%s%s%s", scope, scope2 ? " " : "", scope2 ? scope2 : "");
    size_t pos = 0;
    form[0] = '\0';
    int rc = append_param(form, cap, &pos, "grant_type", "refresh_token");
    if (!rc) rc = append_param(form, cap, &pos, "service", ch->service);
    if (!rc) rc = append_param(form, cap, &pos, "client_id", OAUTH_CLIENT_ID);
    if (!rc) rc = append_param(form, cap, &pos, "scope", scopes);
    if (!rc) rc = append_param(form, cap, &pos, "refresh_token", refresh_token);
    trim_amp(form, &pos);
    if (rc) {
        explicit_bzero(form, cap);
        free(form);
        return NULL;
    }
    return form;
}

/* What the token service's answer means, for the log (never its body: it may echo secrets). */
static void token_failure(struct registry *r, const struct http_response *resp, int rc,
                          const char *how, const char *scope)
{
    if (rc == 0 && (resp->status == 401 || resp->status == 403))
        return; /* the caller says it with the credentials' source */
    char reason[CURL_ERROR_SIZE + 64];
    if (rc == 0)
        snprintf(reason, sizeof(reason), "HTTP %ld", resp->status);
    else if (rc == -EIO && resp->curl_code != CURLE_OK)
        snprintf(reason, sizeof(reason), "%s", http_failure_reason(resp));
    else
        snprintf(reason, sizeof(reason), "%s", strerror(rc < 0 ? -rc : EIO));
    log_warn("registry %s: %s token for %s: token service failed: %s", r->addr.hostport, how, scope,
             reason);
}

/* A bearer token from the challenge's realm for scope (and scope2 when not NULL), with the
 * credentials when cred is not NULL; a malloc'd token or NULL (logged; *refused set when the
 * token service answered 401/403). */
static char *fetch_token(struct registry *r, const struct auth_challenge *ch, const char *scope,
                         const char *scope2, const struct credential *cred, long *expires_in,
                         bool *refused)
{
    char url[REG_URL_MAX];
    *refused = false;
    bool oauth = cred && cred->identity_token;
    bool basic = cred && !oauth && cred->username && cred->password;
    int rc = oauth ? realm_url(ch, url, sizeof(url))
                   : token_get_url(ch, scope, scope2, url, sizeof(url));
    if (rc != 0) {
        if (rc == -ENAMETOOLONG)
            log_warn("registry %s: token URL too long (realm, service and scope over %d bytes)",
                     r->addr.hostport, REG_URL_MAX - 1);
        else
            log_warn("registry %s: %s", r->addr.hostport,
                     rc == -ENOMEM ? "out of memory for the token URL"
                                   : "unusable token realm (not an absolute http(s) URL)");
        return NULL;
    }
    char *auth_line = basic ? basic_header(cred) : NULL;
    char *form = oauth ? oauth_form(ch, scope, scope2, cred->identity_token) : NULL;
    if ((basic && !auth_line) || (oauth && !form)) {
        auth_token_free(auth_line);
        auth_token_free(form);
        return NULL;
    }
    const char *headers[] = {oauth ? "Content-Type: application/x-www-form-urlencoded" : auth_line,
                             NULL};
    struct buf body;
    buf_init(&body, AUTH_TOKEN_RESPONSE_MAX);
    struct http_request req = {.method = oauth ? "POST" : NULL,
                               .url = url,
                               .headers = headers[0] ? headers : NULL,
                               .cls = HTTP_META,
                               .max_attempts = HTTP_MAX_ATTEMPTS,
                               .on_body = collect_body,
                               .ctx = &body,
                               .on_attempt = reset_body,
                               .upload_data = form,
                               .upload_len = form ? strlen(form) : 0};
    struct http_response resp;
    http_response_init(&resp);
    char *token = NULL;
    const char *how = oauth ? "identity-token" : basic ? "authenticated" : "anonymous";
    rc = http_perform(r->http, &req, &resp);
    if (!rc && resp.status == 200) {
        char *refresh = NULL;
        token = auth_parse_token_reply(body.data, body.len, expires_in, oauth ? &refresh : NULL);
        if (!token)
            log_warn("registry %s: token service answered without a usable token",
                     r->addr.hostport);
        if (refresh && oauth) reg_creds_rotate(r->creds, cred->identity_token, refresh);
        auth_token_free(refresh);
    } else {
        *refused = rc == 0 && (resp.status == 401 || resp.status == 403);
        token_failure(r, &resp, rc, how, scope);
    }
    if (token)
        log_debug("registry %s: %s token for %s%s%s, valid %ld s", r->addr.hostport, how, scope,
                  scope2 ? " " : "", scope2 ? scope2 : "", *expires_in);
    reset_body(&body);
    buf_free(&body);
    http_response_free(&resp);
    auth_token_free(auth_line);
    auth_token_free(form);
    return token;
}

/* ---- requests ---- */

enum denial {
    DENY_NONE,
    DENY_NO_CREDENTIALS, /* Basic asked for, nothing to give */
    DENY_REFUSED,        /* our credentials refused (by the registry or the token service) */
    DENY_ANONYMOUS,      /* an anonymous token without the access */
    DENY_SCOPE,          /* credentials accepted, but no access to the scope */
    DENY_TOKEN_FAILED,   /* the token service failed (logged already) */
    DENY_UNSUPPORTED,    /* a scheme we do not speak */
    DENY_FORBIDDEN,      /* 403 */
    /* the other side misbehaves rather than denies: EIO */
    DENY_REDIRECT_TARGET, /* a redirect target on another origin asked for credentials */
    DENY_BAD_CHALLENGE,   /* a challenge that does not parse */
    DENY_LONG_CHALLENGE,  /* a challenge too long for our buffers */
};

/* The challenge to answer: the 401's own, else the one seen on /v2/; DENY_NONE when there is
 * one. A 401 that came, after a redirect, from another origin is never answered: credentials
 * go to the registry and to the realm the registry itself named, not to whoever a redirect
 * points at (that host could name any realm and collect the password there). */
static enum denial challenge_for(struct registry *r, const struct http_response *resp,
                                 struct auth_challenge *ch)
{
    if (resp->cross_origin) return DENY_REDIRECT_TARGET;
    int rc =
        resp->www_authenticate[0] ? auth_parse_best_challenge(resp->www_authenticate, ch) : -ENOENT;
    if (rc == 0 || auth_get_challenge(r->auth, ch)) return DENY_NONE;
    if (resp->www_authenticate_cut || rc == -ENAMETOOLONG) return DENY_LONG_CHALLENGE;
    return rc == -EINVAL ? DENY_BAD_CHALLENGE : DENY_UNSUPPORTED;
}

static bool denial_is_eio(enum denial why)
{
    return why == DENY_REDIRECT_TARGET || why == DENY_BAD_CHALLENGE || why == DENY_LONG_CHALLENGE;
}

/* The extra headers plus the authorization line when there is one. */
static int build_headers(const struct reg_call *call, const char *auth_line,
                         const char *list[MAX_EXTRA_HEADERS + 2])
{
    size_t n = 0;
    for (; call->headers && call->headers[n]; n++) {
        if (n >= MAX_EXTRA_HEADERS) return -EINVAL;
        list[n] = call->headers[n];
    }
    if (auth_line) list[n++] = auth_line;
    list[n] = NULL;
    return 0;
}

static int perform_with(struct registry *r, const struct reg_call *call, const char *auth_line,
                        struct http_response *resp)
{
    const char *headers[MAX_EXTRA_HEADERS + 2];
    int rc = build_headers(call, auth_line, headers);
    if (rc) return rc;
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
                               .upload_base = call->upload_base,
                               .upload_len = call->upload_len,
                               .upload_stream = call->upload_stream,
                               .upload_stream_ctx = call->upload_stream_ctx,
                               .cancel = call->cancel,
                               .upload_progress = call->upload_progress};
    return http_perform(r->http, &req, resp);
}

/* The repository of "repository:NAME:actions" (NULL for "registry:catalog:*" and the like). */
static const char *scope_repo(const char *scope, char *out, size_t outlen)
{
    static const char prefix[] = "repository:";
    if (!scope || strncmp(scope, prefix, sizeof(prefix) - 1) != 0) return NULL;
    const char *name = scope + sizeof(prefix) - 1;
    const char *colon = strrchr(name, ':');
    size_t n = colon ? (size_t)(colon - name) : strlen(name);
    if (n == 0 || n >= outlen) return NULL;
    memcpy(out, name, n);
    out[n] = '\0';
    return out;
}

/* What went wrong, in words, into line. */
static void denial_text(const struct reg_call *call, enum denial why, const char *source,
                        const struct auth_challenge *ch, const struct http_response *resp,
                        char *line, size_t linelen)
{
    char scope[SCOPE_KEY_MAX];
    snprintf(scope, sizeof(scope), "%s%s%s", call->scope, call->scope2 ? " " : "",
             call->scope2 ? call->scope2 : "");
    /* about the credentials, whatever the scope: said once, not once per repository */
    switch (why) {
    case DENY_NO_CREDENTIALS:
        snprintf(line, linelen,
                 "access denied: the registry wants credentials and there "
                 "are none for it (%s)",
                 source);
        break;
    case DENY_REFUSED:
        snprintf(line, linelen,
                 "access denied: the %s refused the credentials from %s "
                 "(wrong user name or password?)",
                 ch && ch->scheme == AUTH_BEARER ? "token service" : "registry", source);
        break;
    case DENY_ANONYMOUS:
        snprintf(line, linelen,
                 "access to %s denied to anonymous access (no credentials "
                 "for it: %s)",
                 scope, source);
        break;
    case DENY_SCOPE:
        snprintf(line, linelen, "access to %s denied for the credentials from %s%s%s%s", scope,
                 source, ch && ch->error[0] ? " (" : "", ch ? ch->error : "",
                 ch && ch->error[0] ? ")" : "");
        break;
    case DENY_TOKEN_FAILED:
        snprintf(line, linelen, "access to %s denied: no token could be obtained", scope);
        break;
    case DENY_UNSUPPORTED:
        snprintf(line, linelen, "access to %s denied: unsupported authentication scheme", scope);
        break;
    case DENY_REDIRECT_TARGET:
        snprintf(line, linelen,
                 "%s: the redirect target %s asked for credentials; they are not sent there", scope,
                 resp->origin);
        break;
    case DENY_BAD_CHALLENGE:
        snprintf(line, linelen, "%s: malformed authentication challenge", scope);
        break;
    case DENY_LONG_CHALLENGE:
        snprintf(line, linelen,
                 "%s: authentication challenge too long (a parameter or the header over "
                 "registryfs's limits)",
                 scope);
        break;
    case DENY_FORBIDDEN:
    case DENY_NONE:
        snprintf(line, linelen, "access to %s forbidden (HTTP 403)", scope);
        break;
    }
}

/* One line per distinct denial per minute: an `ls` retried in a loop must not flood the log. */
static void log_denial(struct registry *r, const struct reg_call *call, enum denial why,
                       const char *source, const struct auth_challenge *ch,
                       const struct http_response *resp)
{
    char line[1280];
    denial_text(call, why, source, ch, resp, line, sizeof(line));
    pthread_mutex_lock(&r->deny_lock);
    int64_t now = monotonic_ms_now();
    bool repeat = strcmp(line, r->deny_last) == 0 && now - r->deny_at_ms < DENY_REPEAT_MS;
    if (!repeat) {
        snprintf(r->deny_last, sizeof(r->deny_last), "%s", line);
        r->deny_at_ms = now;
    }
    pthread_mutex_unlock(&r->deny_lock);
    if (repeat)
        log_debug("registry %s: %s", r->addr.hostport, line);
    else
        log_warn("registry %s: %s", r->addr.hostport, line);
}

struct authn {
    struct registry *r;
    const struct reg_call *call;
    char key[SCOPE_KEY_MAX]; /* token cache key: the scopes */
    char repo_buf[WIRE_REPO_MAX + 1];
    const char *repo;
    struct credential cred;
    bool cred_loaded;
    bool have_cred;
    char source[SOURCE_MAX];
    char *line; /* the Authorization header line in use */
    bool sent_basic;
    bool token_cached; /* the token in line came from the cache */
    bool fetched;      /* a token was fetched during this call */
    bool refused;      /* the token service refused our credentials */
    bool token_failed;
};

static bool load_cred(struct authn *a)
{
    if (!a->cred_loaded) {
        a->cred_loaded = true;
        a->have_cred =
            reg_creds_get(a->r->creds, a->repo, &a->cred, a->source, sizeof(a->source)) == 1;
    }
    return a->have_cred;
}

static void set_line(struct authn *a, char *line)
{
    auth_token_free(a->line);
    a->line = line;
}

/* Fetches a token for the call's scopes (with credentials when there are) into a->line. */
static bool fetch_into(struct authn *a, const struct auth_challenge *ch)
{
    long expires_in = 60;
    bool refused = false;
    a->fetched = true;
    char *token = fetch_token(a->r, ch, a->call->scope, a->call->scope2,
                              load_cred(a) ? &a->cred : NULL, &expires_in, &refused);
    if (!token) {
        a->refused = refused;
        a->token_failed = !refused;
        set_line(a, NULL);
        return false;
    }
    auth_token_put(a->r->auth, a->key, token, expires_in);
    set_line(a, bearer_header(token));
    a->token_cached = false;
    auth_token_free(token);
    return a->line != NULL;
}

/* The Authorization line before the first attempt, when we know what the registry wants. */
static void authorize_first(struct authn *a)
{
    struct auth_challenge ch;
    if (!auth_get_challenge(a->r->auth, &ch))
        return; /* nothing seen yet (an open registry, or the ping has not run) */
    if (ch.scheme == AUTH_BASIC) {
        if (load_cred(a) && a->cred.username && a->cred.password) {
            set_line(a, basic_header(&a->cred));
            a->sent_basic = a->line != NULL;
        }
        return;
    }
    if (ch.scheme != AUTH_BEARER) return;
    char *token = auth_token_get(a->r->auth, a->key);
    if (token) {
        set_line(a, bearer_header(token));
        a->token_cached = true;
        auth_token_free(token);
        return;
    }
    /* no token, or it expired (expires_in): get one before asking, not after a 401 */
    fetch_into(a, &ch);
}

/* After a 401: what to send next; false when there is nothing more to try (*why set). */
static bool answer_401(struct authn *a, const struct http_response *resp, enum denial *why,
                       struct auth_challenge *ch)
{
    *why = challenge_for(a->r, resp, ch);
    if (*why != DENY_NONE) return false;
    if (ch->scheme == AUTH_BASIC) {
        if (a->sent_basic) {
            *why = DENY_REFUSED;
            reg_creds_refused(a->r->creds);
            return false;
        }
        auth_remember_challenge(a->r->auth, ch); /* send Basic at once from now on */
        if (!load_cred(a) || !a->cred.username || !a->cred.password) {
            *why = DENY_NO_CREDENTIALS;
            return false;
        }
        set_line(a, basic_header(&a->cred));
        a->sent_basic = a->line != NULL;
        return a->sent_basic;
    }
    if (ch->scheme != AUTH_BEARER) {
        *why = DENY_UNSUPPORTED;
        return false;
    }
    if (a->fetched) {
        /* a token fresh from the service and still refused */
        *why = a->have_cred ? DENY_SCOPE : DENY_ANONYMOUS;
        if (a->refused) {
            *why = DENY_REFUSED;
            reg_creds_refused(a->r->creds);
        } else if (a->token_failed) {
            *why = DENY_TOKEN_FAILED;
        }
        return false;
    }
    if (a->token_cached)
        auth_token_drop(a->r->auth, a->key); /* expired early or revoked: not again */
    if (fetch_into(a, ch)) return true;
    *why = a->refused ? DENY_REFUSED : DENY_TOKEN_FAILED;
    if (a->refused) reg_creds_refused(a->r->creds);
    return false;
}

int reg_perform(struct registry *r, const struct reg_call *call, struct http_response *resp)
{
    resp->auth_logged = false;
    if (r->blocked) {
        log_debug("registry %s: blocked in registries.conf", r->addr.hostport);
        return -EACCES;
    }
    struct authn a = {.r = r, .call = call};
    if (call->scope) {
        snprintf(a.key, sizeof(a.key), "%s%s%s", call->scope, call->scope2 ? " " : "",
                 call->scope2 ? call->scope2 : "");
        a.repo = scope_repo(call->scope, a.repo_buf, sizeof(a.repo_buf));
        authorize_first(&a);
    }
    enum denial why = DENY_NONE;
    struct auth_challenge ch = {0};
    bool have_ch = false;
    int rc;
    for (int round = 0;; round++) {
        rc = perform_with(r, call, a.line, resp);
        /* a streamed body is gone once sent: the caller retries with one it can replay */
        if (rc || resp->status != 401 || !call->scope || round >= 2 || call->upload_stream) break;
        have_ch = true;
        if (!answer_401(&a, resp, &why, &ch)) break;
    }
    if (!rc && call->scope && (resp->status == 401 || resp->status == 403)) {
        if (resp->status == 403)
            why = DENY_FORBIDDEN;
        else if (why == DENY_NONE)
            why = a.have_cred ? DENY_SCOPE : DENY_ANONYMOUS;
        if (!a.cred_loaded) load_cred(&a); /* for the source in the line */
        log_denial(r, call, why, a.source[0] ? a.source : "no auth file", have_ch ? &ch : NULL,
                   resp);
        resp->auth_logged = true;
        if (denial_is_eio(why)) rc = -EIO; /* not a denial: nothing the user's access can fix */
    }
    set_line(&a, NULL);
    credential_clear(&a.cred);
    return rc;
}
