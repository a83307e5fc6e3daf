/* Request execution on pooled easy handles: options, callbacks, retry policy, request log. */
#define _GNU_SOURCE /* strcasestr */
#include "transport/http_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/log.h"
#include "common/slots.h"
#include "transport/certs.h"

#ifndef REGISTRYFS_VERSION
#define REGISTRYFS_VERSION "dev"
#endif

#define CONNECT_TIMEOUT_MS 3000L
#define BLOB_SPEED_FLOOR 4096L /* bytes/s over the timeout window: slower is cut and retried */
#define UPLOAD_REPLY_MS 120000 /* after an upload, the registry may take a while to answer */
#define EXPECT_MIN_BODY (1u << 20)
#define BLOB_BUFFER_SIZE (512L << 10)
#define MAX_REDIRS 5L
#define BACKOFF_BASE_MS 100L
#define RETRY_AFTER_MAX_MS 10000L
#define BLOB_BACKOFF_TOTAL_MAX_MS 30000L /* transfers have no deadline: their retries have this */
#define ATTEMPT_MIN_MS 200L              /* less time than this left: no further attempt */

/* ---- responses ---- */

void http_response_init(struct http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    buf_init(&resp->error_body, HTTP_ERROR_BODY_MAX);
}

void http_response_free(struct http_response *resp)
{
    buf_free(&resp->error_body);
}

/* The fields take_headers fills. */
static void clear_header_fields(struct http_response *resp)
{
    resp->content_type[0] = '\0';
    resp->content_range[0] = '\0';
    resp->range[0] = '\0';
    resp->location[0] = '\0';
    resp->docker_content_digest[0] = '\0';
    resp->content_length = -1;
    resp->www_authenticate[0] = '\0';
    resp->www_authenticate_cut = false;
    resp->link_next[0] = '\0';
    resp->link_malformed = false;
}

/* Forget the previous response of a redirect chain or of an earlier attempt. */
static void response_clear_headers(struct http_response *resp)
{
    clear_header_fields(resp);
    resp->body_bytes = 0;
    buf_reset(&resp->error_body);
}

static void response_clear(struct http_response *resp)
{
    response_clear_headers(resp);
    resp->status = 0;
    resp->curl_code = CURLE_OK;
    resp->curl_error[0] = '\0';
    resp->retry_after = 0;
    resp->body_error = 0;
    resp->cross_origin = false;
    resp->origin[0] = '\0';
    resp->refused_scheme[0] = '\0';
}

const char *http_failure_reason(const struct http_response *resp)
{
    return resp->curl_error[0] ? resp->curl_error : curl_easy_strerror(resp->curl_code);
}

bool http_failed_to_connect(const struct http_response *resp)
{
    return resp->status == 0 && resp->curl_code != CURLE_OK && resp->body_error == 0;
}

bool http_tls_not_spoken(const struct http_response *resp)
{
    if (!http_failed_to_connect(resp)) return false;
    if (resp->curl_code == CURLE_COULDNT_CONNECT)
        return true; /* nothing listens there (e.g. :443 when the registry is on :80) */
    if (resp->curl_code != CURLE_SSL_CONNECT_ERROR) return false;
    /* what OpenSSL says when the other side answers a ClientHello with plain HTTP */
    static const char *const plain[] = {"wrong version number", "packet length too long",
                                        "unknown protocol", "http request"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (strcasestr(resp->curl_error, plain[i])) return true;
    return false;
}

bool http_tls_verify_failed(const struct http_response *resp)
{
    return http_failed_to_connect(resp) && resp->curl_code == CURLE_PEER_FAILED_VERIFICATION;
}

/* ---- callbacks ---- */

struct transfer {
    struct http_pool *pool;
    CURL *h;
    const struct http_request *req;
    struct http_response *resp;
    int64_t last_activity_ms; /* monotonic: when the last byte arrived or left */
    bool stalled;
    uint64_t upload_off; /* of the request body */
    long stall_ms;       /* the pool's timeout: this long without a byte is a stall */
    int64_t deadline_ms; /* monotonic; 0: none (transfers) */
};

/* Copies value (not NUL-terminated, len bytes) into out, trimmed, cut to fit, control
 * characters replaced. */
static void copy_value(char *out, size_t outlen, const char *value, size_t len)
{
    while (len && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
                   value[len - 1] == '\n'))
        len--;
    if (len >= outlen) len = outlen - 1;
    /* header values end up in logs: no control characters */
    for (size_t i = 0; i < len; i++)
        out[i] = (((unsigned char)value[i] < 0x20 && value[i] != '\t') || value[i] == 0x7f)
                     ? '?'
                     : value[i];
    out[len] = '\0';
}

static void on_link_header(struct http_response *resp, const char *value)
{
    if (resp->link_next[0]) return;
    int rc = link_find_next(value, resp->link_next, sizeof(resp->link_next));
    if (rc < 0) {
        resp->link_next[0] = '\0';
        resp->link_malformed = true;
    }
}

/* Several WWW-Authenticate headers are one comma-separated list (RFC 9110 5.3). When they do
 * not all fit, a Bearer challenge replaces the others, as it is the one we answer. */
static void on_auth_header(struct http_response *resp, const char *value)
{
    char *dst = resp->www_authenticate;
    size_t have = strlen(dst), n = strlen(value);
    if (n == 0) return;
    if (have == 0) {
        resp->www_authenticate_cut = n >= sizeof(resp->www_authenticate);
        copy_value(dst, sizeof(resp->www_authenticate), value, n);
        return;
    }
    if (have + 2 + n < sizeof(resp->www_authenticate)) {
        memcpy(dst + have, ", ", 2);
        copy_value(dst + have + 2, sizeof(resp->www_authenticate) - have - 2, value, n);
        return;
    }
    if (!strcasestr(dst, "bearer") && strncasecmp(value, "bearer", 6) == 0) {
        resp->www_authenticate_cut = n >= sizeof(resp->www_authenticate);
        copy_value(dst, sizeof(resp->www_authenticate), value, n);
    }
}

static void on_status_line(struct http_response *resp, const char *line)
{
    /* "HTTP/1.1 200 OK" or "HTTP/2 200" */
    const char *sp = strchr(line, ' ');
    long status = sp ? strtol(sp + 1, NULL, 10) : 0;
    resp->status = status >= 100 && status <= 999 ? status : 0;
    response_clear_headers(resp);
}

/* Decimal digits only, at most 2^62; -1 otherwise. */
static int64_t parse_content_length(const char *value)
{
    int64_t v = 0;
    if (!*value) return -1;
    for (const char *p = value; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_C(1) << 62) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* Header values we read are cut to this (as a whole header line used to be): a bound on the
 * work a hostile registry can ask of the parsers below. */
#define HEADER_VALUE_MAX (LINK_URL_MAX + 64)

/* The index-th header called name of the response being received (request -1: the latest of
 * a redirect chain; CURLH_HEADER: neither 1xx, CONNECT nor trailers), copied as copy_value
 * does; *amount: how many there are. false when there is none. */
static bool header_at(CURL *h, const char *name, size_t index, char *out, size_t outlen,
                      size_t *amount)
{
    struct curl_header *hdr;
    if (curl_easy_header(h, name, index, CURLH_HEADER, -1, &hdr) != CURLHE_OK) return false;
    if (amount) *amount = hdr->amount;
    copy_value(out, outlen, hdr->value, strnlen(hdr->value, HEADER_VALUE_MAX));
    return true;
}

/* The last header called name: of repeated single-valued headers, the last one counts. */
static bool header_last(CURL *h, const char *name, char *out, size_t outlen)
{
    size_t amount = 0;
    if (!header_at(h, name, 0, out, outlen, &amount)) return false;
    return amount <= 1 || header_at(h, name, amount - 1, out, outlen, NULL);
}

/* At the end of a response's header block: the headers we use, as curl parsed and keeps them
 * (curl_easy_header). Called again after trailers: the fields are filled afresh. */
static void take_headers(struct transfer *t)
{
    struct http_response *resp = t->resp;
    char value[HEADER_VALUE_MAX];
    clear_header_fields(resp);
    header_last(t->h, "Content-Type", resp->content_type, sizeof(resp->content_type));
    header_last(t->h, "Content-Range", resp->content_range, sizeof(resp->content_range));
    header_last(t->h, "Range", resp->range, sizeof(resp->range));
    header_last(t->h, "Location", resp->location, sizeof(resp->location));
    header_last(t->h, "Docker-Content-Digest", resp->docker_content_digest,
                sizeof(resp->docker_content_digest));
    if (header_last(t->h, "Content-Length", value, sizeof(value)))
        resp->content_length = parse_content_length(value);
    for (size_t i = 0, n = 1;
         i < n && header_at(t->h, "WWW-Authenticate", i, value, sizeof(value), &n); i++)
        on_auth_header(resp, value);
    for (size_t i = 0, n = 1; i < n && header_at(t->h, "Link", i, value, sizeof(value), &n); i++)
        on_link_header(resp, value);
}

/* Status lines start a response; the empty line ends its header block. The header lines in
 * between are curl's to parse. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    size_t len = size * nmemb;
    t->last_activity_ms = monotonic_ms_now();
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        char line[128];
        copy_value(line, sizeof(line), data, len);
        on_status_line(t->resp, line);
    } else if ((len == 2 && data[0] == '\r' && data[1] == '\n') || (len == 1 && data[0] == '\n')) {
        take_headers(t);
    }
    return len;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    struct http_response *resp = t->resp;
    size_t len = size * nmemb;
    t->last_activity_ms = monotonic_ms_now();
    resp->body_bytes += len;
    if (resp->status >= 200 && resp->status < 300) {
        if (!t->req->on_body) return len;
        int rc = t->req->on_body(t->req->ctx, resp, data, len);
        if (rc) {
            resp->body_error = rc;
            return CURL_WRITEFUNC_ERROR;
        }
        return len;
    }
    size_t room = resp->error_body.limit - resp->error_body.len;
    if (buf_append(&resp->error_body, data, len < room ? len : room) != 0)
        buf_reset(&resp->error_body); /* out of memory: the reason is optional */
    return len;
}

/* Feeds the request body; pread keeps the caller's file position out of it. */
static size_t on_read_stream(struct transfer *t, char *out, size_t len)
{
    ssize_t got = t->req->upload_stream(t->req->upload_stream_ctx, out, len);
    if (got < 0) {
        t->resp->body_error = (int)got;
        return CURL_READFUNC_ABORT;
    }
    t->upload_off += (uint64_t)got;
    t->last_activity_ms = monotonic_ms_now();
    return (size_t)got;
}

static size_t on_read(char *out, size_t size, size_t nitems, void *userp)
{
    struct transfer *t = userp;
    const struct http_request *req = t->req;
    if (req->upload_stream) return on_read_stream(t, out, size * nitems);
    uint64_t left = req->upload_len - t->upload_off;
    size_t n = size * nitems < left ? size * nitems : (size_t)left;
    if (n == 0) return 0;
    if (req->upload_data) {
        memcpy(out, (const char *)req->upload_data + t->upload_off, n);
    } else {
        ssize_t got;
        do
            got = pread(req->upload_fd, out, n, (off_t)(req->upload_base + t->upload_off));
        while (got < 0 && errno == EINTR);
        if (got <= 0) { /* an error, or the file shrank under us */
            t->resp->body_error = got < 0 ? -errno : -EIO;
            return CURL_READFUNC_ABORT;
        }
        n = (size_t)got;
    }
    t->upload_off += n;
    if (req->upload_progress && !req->upload_data)
        __atomic_store_n(req->upload_progress, req->upload_base + t->upload_off, __ATOMIC_RELAXED);
    t->last_activity_ms = monotonic_ms_now();
    return n;
}

/* curl rewinds the body to resend it (a redirect, an auth round). */
static int on_seek(void *userp, curl_off_t offset, int origin)
{
    struct transfer *t = userp;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->req->upload_len ||
        (t->req->upload_stream && (uint64_t)offset != t->upload_off))
        return CURL_SEEKFUNC_CANTSEEK;
    t->upload_off = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static bool has_upload(const struct http_request *req)
{
    const char *m = req->method;
    return m && (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0);
}

/* curl's low-speed check averages over a window, so a burst followed by silence runs on for
 * several seconds past the stall time; this watchdog counts from the last byte exactly. */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct transfer *t = userp;
    if ((t->req->cancel && __atomic_load_n(t->req->cancel, __ATOMIC_ACQUIRE)) ||
        http_pool_aborted(t->pool)) {
        t->resp->body_error = -ECANCELED;
        return 1;
    }
    if (t->req->cls != HTTP_BLOB) return 0; /* metadata has its timeout */
    bool awaiting_reply =
        has_upload(t->req) && !t->req->upload_stream && t->upload_off == t->req->upload_len;
    int64_t limit = awaiting_reply ? UPLOAD_REPLY_MS : t->stall_ms;
    if (monotonic_ms_now() - t->last_activity_ms < limit) return 0;
    t->stalled = true;
    return 1;
}

/* ---- one attempt ---- */

static int set_options(CURL *h, struct http_pool *pool, const struct http_request *req,
                       struct curl_slist *headers, struct transfer *t)
{
    CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK) cc = curl_easy_setopt(h, opt, val);                                    \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM-based DNS timeouts */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, MAX_REDIRS);
    SET(CURLOPT_UNRESTRICTED_AUTH, 0L); /* never send Authorization to a redirect's host */
    SET(CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, "registryfs/" REGISTRYFS_VERSION);
    SET(CURLOPT_SSL_VERIFYPEER, http_pool_tls_verify(pool) ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, http_pool_tls_verify(pool) ? 2L : 0L);
    if (cc == CURLE_OK && certs_apply(http_pool_certs(pool), h) != 0) cc = CURLE_SSL_CERTPROBLEM;
    SET(CURLOPT_ERRORBUFFER, t->resp->curl_error);
    SET(CURLOPT_NOPROGRESS, 0L); /* the progress check also notices an aborted pool */
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, t);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, t);
    if (has_upload(req)) {
        /* UPLOAD makes it a PUT with a streamed body; the method line is ours */
        SET(CURLOPT_UPLOAD, 1L);
        /* -1: unknown length, sent chunked */
        SET(CURLOPT_INFILESIZE_LARGE,
            req->upload_stream ? (curl_off_t)-1 : (curl_off_t)req->upload_len);
        SET(CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
        SET(CURLOPT_READFUNCTION, on_read);
        SET(CURLOPT_READDATA, t);
        SET(CURLOPT_SEEKFUNCTION, on_seek);
        SET(CURLOPT_SEEKDATA, t);
        SET(CURLOPT_CUSTOMREQUEST, req->method);
    } else if (req->method && strcmp(req->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (req->method && strcmp(req->method, "GET") != 0) {
        SET(CURLOPT_CUSTOMREQUEST, req->method); /* DELETE */
    }
    if (req->cls == HTTP_BLOB) {
        if (!has_upload(req)) {
            /* both directions count: it would fire while the registry digests an upload */
            SET(CURLOPT_LOW_SPEED_LIMIT, BLOB_SPEED_FLOOR);
            SET(CURLOPT_LOW_SPEED_TIME, t->stall_ms / 1000);
        }
        SET(CURLOPT_BUFFERSIZE, BLOB_BUFFER_SIZE);
    } else {
        int64_t left = t->deadline_ms - monotonic_ms_now();
        SET(CURLOPT_TIMEOUT_MS, (long)(left > ATTEMPT_MIN_MS ? left : ATTEMPT_MIN_MS));
    }
#undef SET
    return cc == CURLE_OK ? 0 : -EIO;
}

/* Header lines may carry credentials: wiped before they go back to the allocator. */
static void free_headers(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        if (l->data) explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

static struct curl_slist *build_headers(const char *const *lines, bool *oom)
{
    struct curl_slist *list = NULL;
    *oom = false;
    for (size_t i = 0; lines && lines[i]; i++) {
        struct curl_slist *next = curl_slist_append(list, lines[i]);
        if (!next) {
            free_headers(list);
            *oom = true;
            return NULL;
        }
        list = next;
    }
    return list;
}

static void log_request(CURL *h, const struct http_request *req, const struct http_response *resp)
{
    if (!log_debug_enabled()) return;
    char url[512];
    const char *method = req->method ? req->method : "GET";
    curl_off_t us = 0, sent = 0;
    long redirects = 0, connects = 0;
    http_sanitize_url(req->url, url, sizeof(url));
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &us);
    curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent);
    char up[48] = ""; /* only uploads say what they sent: a GET's line stays as it was */
    if (sent > 0) snprintf(up, sizeof(up), "%lld bytes sent, ", (long long)sent);
    if (resp->curl_code == CURLE_OK || resp->status)
        log_debug("http: %s %s -> %ld%s, %s%llu bytes, %lld ms%s%s%s", method, url, resp->status,
                  redirects ? " (after redirect)" : "", up, (unsigned long long)resp->body_bytes,
                  (long long)(us / 1000), connects ? ", new connection" : "",
                  resp->curl_code ? ", " : "", resp->curl_code ? http_failure_reason(resp) : "");
    else
        log_debug("http: %s %s -> failed: %s, %lld ms", method, url, http_failure_reason(resp),
                  (long long)(us / 1000));
}

static int perform_once(struct http_pool *pool, const struct http_request *req,
                        struct http_response *resp, int64_t deadline_ms)
{
    struct transfer t = {.pool = pool,
                         .req = req,
                         .resp = resp,
                         .last_activity_ms = monotonic_ms_now(),
                         .stall_ms = http_pool_timeout_ms(pool),
                         .deadline_ms = deadline_ms};
    if (http_pool_aborted(pool)) return -ECANCELED;
    bool oom;
    response_clear(resp);
    if (req->on_attempt) req->on_attempt(req->ctx);
    struct curl_slist *headers = build_headers(req->headers, &oom);
    /* curl asks "Expect: 100-continue" before any upload and waits a second for a server
     * that does not answer it: only worth it when the body is big enough to waste on a 401 */
    if (!oom && has_upload(req) && (req->upload_stream || req->upload_len < EXPECT_MIN_BODY)) {
        struct curl_slist *more = curl_slist_append(headers, "Expect:");
        oom = !more;
        headers = more ? more : headers;
    }
    CURL *h = oom ? NULL : http_pool_acquire(pool);
    if (!h) {
        free_headers(headers);
        return -ENOMEM;
    }
    t.h = h;
    int rc = set_options(h, pool, req, headers, &t);
    struct slots *slot =
        !rc && req->cls == HTTP_BLOB ? http_pool_transfer_slots(pool, has_upload(req)) : NULL;
    if (slot) slots_acquire(slot);
    if (!rc) {
        resp->curl_code = curl_easy_perform(h);
        if (t.stalled)
            snprintf(resp->curl_error, sizeof(resp->curl_error), "no data for %ld s (stalled)",
                     t.stall_ms / 1000);
        curl_off_t retry_after = 0;
        if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
            resp->retry_after = retry_after > 3600 ? 3600 : (long)retry_after;
        http_note_origin(h, req->url, resp);
        http_note_refused_redirect(resp);
        log_request(h, req, resp);
        if (resp->body_error)
            rc = resp->body_error;
        else if (resp->curl_code != CURLE_OK)
            rc = resp->curl_code == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
    }
    if (slot) slots_release(slot);
    resp->attempts++;
    /* a handle whose transfer curl aborted may keep state that fails the next setup (7.88
     * keeps its receive buffer after a refused redirect, and then rejects BUFFERSIZE): such
     * a handle is not reused; its connection is of no use either */
    if (resp->curl_code != CURLE_OK)
        curl_easy_cleanup(h);
    else
        http_pool_release(pool, h);
    free_headers(headers);
    return rc;
}

/* ---- retries ---- */

/* Failures that may well go away: the connection broke, not the request was wrong. A timeout
 * is not retried: it already cost its full budget. */
static bool transient_curl_error(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY: /* e.g. a proxy that answered early left a body unread */
        return true;
    default:
        return false;
    }
}

static bool should_retry(int rc, const struct http_response *resp)
{
    if (rc == -EIO && resp->body_error == 0) return transient_curl_error(resp->curl_code);
    if (rc) return false;
    long s = resp->status;
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

/* Sleeps ms, in short steps so that an aborted pool ends the wait. */
static void sleep_ms(struct http_pool *pool, long ms)
{
    int64_t end = monotonic_ms_now() + ms;
    for (int64_t left = ms; left > 0 && !http_pool_aborted(pool); left = end - monotonic_ms_now()) {
        long step = left < 100 ? (long)left : 100;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Exponential back-off with full jitter (so clients hit by one fault do not retry in step),
 * or the server's Retry-After, capped. */
static long backoff_ms(int attempt, const struct http_response *resp)
{
    static __thread unsigned seed;
    if (!seed) seed = (unsigned)monotonic_ms_now() ^ (unsigned)(uintptr_t)&seed;
    if (resp->retry_after > 0)
        return resp->retry_after * 1000 > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS
                                                             : resp->retry_after * 1000;
    long cap = BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
    return cap / 2 + (long)(rand_r(&seed) % (unsigned)(cap / 2 + 1));
}

void http_backoff_sleep(struct http_pool *pool, int attempt)
{
    struct http_response none = {0};
    sleep_ms(pool, backoff_ms(attempt, &none));
}

/* Whether the calling thread's last request ended without a usable answer (see http.h). */
static __thread bool last_unanswered;

bool http_last_unanswered(void)
{
    return last_unanswered;
}

static int finish(int rc, const struct http_response *resp)
{
    last_unanswered = rc && rc != -ECANCELED ? resp->status == 0 || resp->body_error == 0
                                             : resp->status == 429 || resp->status >= 500;
    return rc;
}

int http_perform(struct http_pool *pool, const struct http_request *req, struct http_response *resp)
{
    int max = req->max_attempts <= 1 || req->upload_stream ? 1 : http_pool_retries(pool) + 1;
    bool meta = req->cls == HTTP_META;
    int64_t start = monotonic_ms_now();
    int64_t deadline = start + (meta ? http_pool_timeout_ms(pool) : BLOB_BACKOFF_TOTAL_MAX_MS);
    resp->attempts = 0;
    for (int attempt = 0;; attempt++) {
        int rc = perform_once(pool, req, resp, meta ? deadline : 0);
        if (attempt + 1 >= max || !should_retry(rc, resp)) return finish(rc, resp);
        long wait = backoff_ms(attempt, resp);
        if (monotonic_ms_now() + wait + (meta ? ATTEMPT_MIN_MS : 0) > deadline)
            return finish(rc, resp);
        sleep_ms(pool, wait);
        if (http_pool_aborted(pool)) return finish(-ECANCELED, resp);
    }
}
