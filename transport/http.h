/*
 * libcurl underneath the registry client: a pool of easy handles per registry (so keep-alive
 * connections are reused) sharing DNS and TLS sessions, one request at a time per handle,
 * bounded retries for metadata, one debug log line per request. Private to transport/.
 */
#ifndef REGISTRYFS_HTTP_H
#define REGISTRYFS_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "transport/link_header.h"

#define HTTP_ERROR_BODY_MAX (64u << 10) /* kept from non-2xx responses, for the reason */
#define HTTP_MAX_ATTEMPTS 3             /* in a request: "retry as the pool's limits allow" */
#define HTTP_DEFAULT_TRANSFERS 8        /* blob transfers at once per registry and direction */
#define HTTP_MAX_TRANSFERS 64
#define HTTP_ORIGIN_MAX 300 /* "scheme://host:port" */

struct http_pool;
struct tls_certs;

/* No network I/O. tls_verify false turns off peer and host verification. */
int http_pool_new(bool tls_verify, struct http_pool **out) __attribute__((warn_unused_result));
/* Extra CAs and a client certificate for every request of the pool (certs.h); NULL for none.
 * Not owned: it must outlive the pool. Set before the first request. */
void http_pool_set_certs(struct http_pool *pool, const struct tls_certs *certs);
/* Every request must have finished. */
void http_pool_free(struct http_pool *pool);
/* At most n (1..HTTP_MAX_TRANSFERS) HTTP_BLOB requests of the pool run at once in each
 * direction; the others wait for a slot. Default HTTP_DEFAULT_TRANSFERS. */
void http_pool_set_max_transfers(struct http_pool *pool, int n);

#define HTTP_DEFAULT_TIMEOUT_S 10
#define HTTP_DEFAULT_RETRIES 5 /* 6 attempts: a 15 % fault rate fails 1 request in 10^5 */
#define HTTP_MAX_RETRIES 10
/*
 * timeout_s: the most one metadata request may take, all its attempts and back-off included
 * (-o timeout), and the window of a blob transfer's speed floor; retries: how often a request
 * that may be retried is tried again (-o retries). Defaults HTTP_DEFAULT_TIMEOUT_S and
 * HTTP_DEFAULT_RETRIES. Set before the first request.
 */
void http_pool_set_limits(struct http_pool *pool, int timeout_s, int retries);
/* The pool's timeout in milliseconds, and its retries. */
long http_pool_timeout_ms(const struct http_pool *pool);
int http_pool_retries(const struct http_pool *pool);
/* Sleeps the back-off before retry number attempt+1 (exponential, with jitter); returns
 * early when the pool is aborted. */
void http_backoff_sleep(struct http_pool *pool, int attempt);
/* The mount is ending: every request of the pool, running or to come, stops with -ECANCELED
 * within about a second (curl calls the progress check at least once a second). */
void http_pool_abort(struct http_pool *pool);
bool http_pool_aborted(const struct http_pool *pool);

enum http_class {
    HTTP_META, /* small bodies: whole-request timeout, retries allowed */
    HTTP_BLOB, /* streams: stall detection instead of a timeout, big receive buffer; each
                  holds one of the pool's transfer slots while it runs */
};

struct http_response {
    long status; /* of the last response (after redirects); 0 when none arrived */
    CURLcode curl_code;
    char curl_error[CURL_ERROR_SIZE];
    char content_type[256];
    char content_range[128];
    char range[64];              /* Range of an upload's status ("0-N": the bytes it has) */
    char www_authenticate[2048]; /* every challenge (several headers joined by ", "); when
                                    they do not all fit, Bearer ones are kept first */
    bool www_authenticate_cut;   /* a challenge was cut to fit: it will not parse */
    /* The last response came, after redirects, from another origin (scheme, host, port) than
     * the request URL: its challenges are not the registry's and get no credentials. */
    bool cross_origin;
    char origin[HTTP_ORIGIN_MAX];   /* that origin when cross_origin, for the log */
    char refused_scheme[16];        /* a redirect not followed to this scheme (file, ftp...) */
    char link_next[LINK_URL_MAX];   /* rel="next" URI reference as sent, "" when none */
    bool link_malformed;            /* a Link header we could not parse */
    long retry_after;               /* seconds, 0 when absent */
    struct buf error_body;          /* body of a non-2xx response, cut at HTTP_ERROR_BODY_MAX */
    char location[LINK_URL_MAX];    /* Location as sent (uploads); "" when absent */
    char docker_content_digest[80]; /* Docker-Content-Digest as sent; "" when absent */
    int64_t content_length;         /* Content-Length of the last response, -1 when absent */
    uint64_t body_bytes;            /* body bytes of the last response */
    int body_error;                 /* what on_body returned to abort the transfer */
    int attempts;
    bool auth_logged; /* the registry layer already logged why access was denied */
};

void http_response_init(struct http_response *resp);
void http_response_free(struct http_response *resp);

/* Called with pieces of a 2xx body, in order; resp has the status and headers by then.
 * Returning -errno aborts the transfer with that error. */
typedef int (*http_body_fn)(void *ctx, const struct http_response *resp, const void *data,
                            size_t len);

typedef ssize_t (*http_stream_fn)(void *ctx, char *buf, size_t len);

struct http_request {
    const char *method; /* NULL or "GET"; "HEAD", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines, may be NULL */
    enum http_class cls;
    int max_attempts;     /* 1 for no retry; more: the pool's retries + 1 */
    http_body_fn on_body; /* NULL: 2xx bodies are discarded */
    void *ctx;
    void (*on_attempt)(void *ctx); /* before every attempt: drop what on_body collected */
    /* Request body of a POST/PUT/PATCH, upload_len bytes, sent from its start on every
     * attempt: from upload_data, or when that is NULL read with pread from upload_fd at
     * offsets 0..upload_len (its file position is not used). upload_len 0: empty body. */
    const void *upload_data;
    int upload_fd;
    uint64_t upload_base; /* upload_fd: the body starts at this file offset */
    uint64_t upload_len;
    /* Or a body of unknown length, sent chunked as it is produced: called for more bytes, it
     * returns how many it wrote (it may block until there are some), 0 at the end, -errno to
     * abort. Such a body cannot be replayed: one attempt. */
    http_stream_fn upload_stream;
    void *upload_stream_ctx;
    /* When set (HTTP_BLOB only): the transfer is aborted with -ECANCELED soon after *cancel
     * becomes non-zero (read atomically), e.g. when nobody needs the upload any more. */
    const int *cancel;
    /* When set (a body from upload_fd): the file offset the body was read up to, stored
     * atomically as curl takes the bytes, so a progress display can follow the upload. */
    uint64_t *upload_progress;
};

/*
 * Performs the request (with retries on connection errors, 500/502/503/504 and 429 when
 * max_attempts > 1: exponential back-off with jitter, Retry-After honoured; a metadata request
 * with all its attempts ends within the pool's timeout).
 * 0 when an HTTP response arrived, whatever its status; -EIO on a transport failure;
 * on_body's error when it aborted; -ENOMEM.
 */
int http_perform(struct http_pool *pool, const struct http_request *req, struct http_response *resp)
    __attribute__((warn_unused_result));

/* Whether the calling thread's last http_perform got no usable answer: no HTTP response at
 * all (refused, reset, timed out), or 429/5xx after its retries. A malformed or unexpected
 * answer is an answer. */
bool http_last_unanswered(void);

/* The transport failure in words (curl's message). */
const char *http_failure_reason(const struct http_response *resp);

/* Whether the failure happened before any HTTP was exchanged (refused, TLS handshake, ...). */
bool http_failed_to_connect(const struct http_response *resp);

/* Whether an https attempt failed because the server does not speak TLS at all (a plain HTTP
 * server answering the handshake, "wrong version number"), or nothing listens there: the only
 * failures after which plain http may be tried. Never true for a certificate problem. */
bool http_tls_not_spoken(const struct http_response *resp);

/* Whether the failure is the server's certificate failing verification. */
bool http_tls_verify_failed(const struct http_response *resp);

/* url without userinfo and with secret-looking query values replaced, for logs. */
void http_sanitize_url(const char *url, char *out, size_t outlen);

#endif
