/* The registry object, URL building, error mapping and the ping. */
#include "transport/registry_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* registries.conf: the entry for the host decides insecure and blocked. */
static int apply_conf(struct registry *r, const char *path)
{
    int rc = registries_conf_load_all(path, &r->conf);
    if (rc == -ENOMEM) return rc;
    if (rc) {
        if (rc == -ENOENT) log_debug("registry %s: no %s", r->addr.hostport, path);
        return 0; /* logged; the safe defaults apply */
    }
    r->conf_path = strdup(path);
    if (!r->conf_path) return -ENOMEM;
    const struct registries_conf_registry *e =
        registries_conf_match(&r->conf, r->addr.hostport, NULL);
    if (!e) return 0;
    r->insecure = e->insecure;
    r->blocked = e->blocked;
    if (e->insecure) {
        r->tls_verify = false;
        log_info("registry %s: insecure in %s: certificates are not verified, plain http is "
                 "allowed",
                 r->addr.hostport, path);
    }
    if (e->location[0] && strcmp(e->location, e->prefix) != 0)
        log_warn("registry %s: %s remaps it to %s; registryfs does not remap locations (only "
                 "its mirrors are used)",
                 r->addr.hostport, path, e->location);
    return 0;
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!src) return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

int registry_new(const struct registry_options *opt, struct registry **out)
{
    if (!opt || !out) return -EINVAL;
    int rc = transport_global_init();
    if (rc) return rc;
    struct registry *r = calloc(1, sizeof(*r));
    if (!r) return -ENOMEM;
    rc = ref_parse_registry(opt->address, &r->addr);
    if (rc) {
        free(r);
        return rc;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->deny_lock, NULL);
    r->tls_verify = r->tls_verify_opt = opt->tls_verify;
    rc = dup_opt(&r->authfile, opt->authfile);
    if (!rc) rc = dup_opt(&r->cert_dir, opt->cert_dir);
    if (!rc && opt->registries_conf && *opt->registries_conf)
        rc = apply_conf(r, opt->registries_conf);
    if (!rc) {
        /* a bad certificate directory is logged and leaves only the system's trust: the
         * connection then fails verification (loudly) rather than trusting less than asked */
        rc = certs_load(opt->cert_dir, r->addr.hostport, &r->certs);
        rc = rc == -ENOMEM ? rc : 0;
    }
    if (!rc) rc = http_pool_new(r->tls_verify, &r->http);
    if (!rc) http_pool_set_certs(r->http, r->certs);
    if (!rc) rc = auth_new(&r->auth);
    if (!rc) rc = reg_creds_new(opt->authfile, r->addr.hostport, r->addr.docker_hub, &r->creds);
    if (rc) {
        registry_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void registry_free(struct registry *r)
{
    if (!r) return;
    reg_mirrors_free(r);
    http_pool_free(r->http);
    certs_free(r->certs); /* after the pool: its handles point at it */
    auth_free(r->auth);
    reg_creds_free(r->creds);
    registries_conf_free(&r->conf);
    free(r->conf_path);
    free(r->authfile);
    free(r->cert_dir);
    pthread_mutex_destroy(&r->deny_lock);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const struct registry_addr *registry_addr(const struct registry *r)
{
    return &r->addr;
}

void reg_endpoint(struct registry *r, char *out, size_t outlen)
{
    pthread_mutex_lock(&r->lock);
    snprintf(out, outlen, "%s", r->addr.endpoint);
    pthread_mutex_unlock(&r->lock);
}

int reg_url(struct registry *r, char *out, size_t outlen, const char *fmt, ...)
{
    char endpoint[sizeof(r->addr.endpoint)];
    reg_endpoint(r, endpoint, sizeof(endpoint));
    size_t n = strlen(endpoint);
    if (n >= outlen) return -ENAMETOOLONG;
    memcpy(out, endpoint, n + 1);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(out + n, outlen - n, fmt, ap);
    va_end(ap);
    return m < 0 || (size_t)m >= outlen - n ? -ENAMETOOLONG : 0;
}

void reg_copy_printable(char *out, size_t outlen, const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] && n < max && n + 1 < outlen; n++)
        out[n] = (s[n] >= 0x20 && s[n] < 0x7f) ? s[n] : '?';
    out[n] = '\0';
}

int reg_wire_repo(struct registry *r, const char *repo, char out[WIRE_REPO_MAX + 1])
{
    int rc = ref_wire_repo(&r->addr, repo, out, WIRE_REPO_MAX + 1);
    if (rc) {
        char shown[80];
        reg_copy_printable(shown, sizeof(shown), repo ? repo : "(null)", sizeof(shown) - 1);
        log_debug("registry %s: refusing invalid repository name \"%s\"", r->addr.hostport, shown);
    }
    return rc ? -EINVAL : 0;
}

int reg_status_errno(long status)
{
    if (status >= 200 && status < 300) return 0;
    if (status == 404) return -ENOENT;
    if (status == 401 || status == 403) return -EACCES;
    return -EIO;
}

/* The first entry of {"errors":[{"code":..,"message":..}]}, or NULL. */
static const cJSON *first_error(const cJSON *root)
{
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
    const cJSON *first = cJSON_IsArray(errors) ? cJSON_GetArrayItem(errors, 0) : NULL;
    return cJSON_IsObject(first) ? first : NULL;
}

static void error_fields(const struct http_response *resp, char *code, size_t codelen, char *msg,
                         size_t msglen)
{
    code[0] = '\0';
    if (msg) msg[0] = '\0';
    if (!resp->error_body.len) return;
    cJSON *root = cJSON_ParseWithLength(resp->error_body.data, resp->error_body.len);
    const cJSON *e = first_error(root);
    const cJSON *c = e ? cJSON_GetObjectItemCaseSensitive(e, "code") : NULL;
    const cJSON *m = e ? cJSON_GetObjectItemCaseSensitive(e, "message") : NULL;
    if (cJSON_IsString(c) && c->valuestring) reg_copy_printable(code, codelen, c->valuestring, 64);
    if (msg && cJSON_IsString(m) && m->valuestring)
        reg_copy_printable(msg, msglen, m->valuestring, 160);
    cJSON_Delete(root);
}

void reg_error_code(const struct http_response *resp, char *out, size_t outlen)
{
    error_fields(resp, out, outlen, NULL, 0);
}

/* "HTTP 404 (NAME_UNKNOWN: repository name not known to registry)", or the transport failure,
 * or the local error rc. */
static void describe(const struct http_response *resp, int rc, char *out, size_t outlen)
{
    bool http_error = resp->status >= 300 && resp->body_error == 0;
    if (rc == -EFBIG) {
        snprintf(out, outlen, "response body over its size limit");
    } else if (resp->refused_scheme[0]) {
        /* curl stopped at the 3xx: "HTTP 307" would hide why */
        snprintf(out, outlen, "redirect to a non-HTTP(S) URL (%s:) refused", resp->refused_scheme);
    } else if (http_error) {
        char code[72], msg[168];
        error_fields(resp, code, sizeof(code), msg, sizeof(msg));
        if (code[0])
            snprintf(out, outlen, "HTTP %ld (%s: %s)", resp->status, code, msg);
        else
            snprintf(out, outlen, "HTTP %ld", resp->status);
    } else if (rc == -EIO && resp->curl_code != CURLE_OK && !resp->body_error) {
        snprintf(out, outlen, "%s", http_failure_reason(resp));
    } else {
        snprintf(out, outlen, "%s", strerror(rc < 0 ? -rc : EIO));
    }
}

void reg_log_failure(struct registry *r, const char *what, const struct http_response *resp, int rc)
{
    char reason[320];
    describe(resp, rc, reason, sizeof(reason));
    if (rc == -ENOENT || rc == -ENOTSUP || resp->auth_logged)
        log_debug("registry %s: %s: %s", r->addr.hostport, what, reason);
    else if (rc == -EIO && http_tls_verify_failed(resp))
        log_error("registry %s: %s: TLS certificate verification failed: %s. Trust the "
                  "registry's CA with a *.crt file in -o cert_dir=DIR or "
                  "/etc/containers/certs.d/%s/, or mount with -o tls_verify=false",
                  r->addr.hostport, what, reason, r->addr.hostport);
    else
        log_warn("registry %s: %s: %s", r->addr.hostport, what, reason);
}

/* ---- ping ---- */

static int ping_once(struct registry *r, int attempts, struct http_response *resp)
{
    char url[REG_URL_MAX];
    int rc = reg_url(r, url, sizeof(url), "/v2/");
    if (rc) return rc;
    struct reg_call call = {.url = url, .cls = HTTP_META, .max_attempts = attempts};
    return reg_perform(r, &call, resp);
}

static void set_scheme(struct registry *r, const char *scheme)
{
    pthread_mutex_lock(&r->lock);
    int rc = ref_set_scheme(&r->addr, scheme);
    (void)rc; /* "https" or "http": it cannot fail */
    pthread_mutex_unlock(&r->lock);
}

/* Docker's rule for loopback (and insecure) registries without a scheme: https, else plain
 * http -- but only when the server does not speak TLS at all. A certificate that fails
 * verification is an error, never a reason to drop TLS. */
static int ping_probe_scheme(struct registry *r, struct http_response *resp)
{
    int rc = ping_once(r, 1, resp);
    if (rc != -EIO || !http_tls_not_spoken(resp)) return rc;
    char https_reason[CURL_ERROR_SIZE];
    snprintf(https_reason, sizeof(https_reason), "%s", http_failure_reason(resp));
    set_scheme(r, "http");
    rc = ping_once(r, HTTP_MAX_ATTEMPTS, resp);
    if (rc == -EIO && http_failed_to_connect(resp)) {
        set_scheme(r, "https"); /* neither answered: keep the default */
    } else {
        log_info("registry %s: https failed (%s); using plain http://%s", r->addr.hostport,
                 https_reason, r->addr.hostport);
    }
    return rc;
}

static void remember_challenge(struct registry *r, const struct http_response *resp)
{
    struct auth_challenge ch;
    if (resp->cross_origin) { /* not the registry's: see challenge_for() in registry_auth.c */
        log_warn("registry %s: /v2/ redirected to %s, which asked for credentials; they are "
                 "not sent there",
                 r->addr.hostport, resp->origin);
        return;
    }
    if (resp->www_authenticate[0] && auth_parse_best_challenge(resp->www_authenticate, &ch) == 0)
        auth_remember_challenge(r->auth, &ch);
}

/* An explicit https:// address of a plain-http registry: OpenSSL's "wrong version number"
 * does not say what to change, so the one line says it. */
static bool answered_plain_http(const struct registry *r, const struct http_response *resp, int rc)
{
    return rc == -EIO && r->addr.scheme_given && strcmp(r->addr.scheme, "https") == 0 &&
           resp->curl_code == CURLE_SSL_CONNECT_ERROR && http_tls_not_spoken(resp);
}

int registry_ping(struct registry *r)
{
    if (r->blocked) {
        log_error("registry %s: blocked in %s", r->addr.hostport,
                  r->conf_path ? r->conf_path : "registries.conf");
        return -EACCES;
    }
    struct http_response resp;
    http_response_init(&resp);
    bool probe = !r->addr.scheme_given && !r->addr.docker_hub &&
                 (ref_is_loopback(r->addr.host) || r->insecure);
    int rc = probe ? ping_probe_scheme(r, &resp) : ping_once(r, HTTP_MAX_ATTEMPTS, &resp);
    if (!rc) {
        if (resp.status == 200 || resp.status == 401) {
            if (resp.status == 401) remember_challenge(r, &resp);
        } else {
            rc = resp.status == 403 ? -EACCES : -EIO; /* a 404 here: not a registry */
        }
    }
    if (rc && answered_plain_http(r, &resp, rc)) {
        log_error("registry %s: https://%s answered in plain HTTP: use http://%s", r->addr.hostport,
                  r->addr.hostport, r->addr.hostport);
    } else if (rc) {
        char what[320];
        char endpoint[sizeof(r->addr.endpoint)];
        reg_endpoint(r, endpoint, sizeof(endpoint));
        snprintf(what, sizeof(what), "ping %s/v2/", endpoint);
        reg_log_failure(r, what, &resp, rc);
    }
    http_response_free(&resp);
    return rc;
}
