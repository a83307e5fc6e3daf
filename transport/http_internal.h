/* Between the pool (http_pool.c) and request execution (http.c). */
#ifndef REGISTRYFS_HTTP_INTERNAL_H
#define REGISTRYFS_HTTP_INTERNAL_H

#include "transport/http.h"

/* An easy handle carrying the pool's share, idle or new; NULL when out of memory. */
CURL *http_pool_acquire(struct http_pool *pool);
/* Resets the handle (keeping its live connection) and parks it for reuse. */
void http_pool_release(struct http_pool *pool, CURL *h);
bool http_pool_tls_verify(const struct http_pool *pool);
const struct tls_certs *http_pool_certs(const struct http_pool *pool);
/* The slots a blob transfer holds while it runs: uploads and downloads count apart. */
struct slots *http_pool_transfer_slots(struct http_pool *pool, bool upload);

/* After a transfer: whether its last response came from another origin than request_url
 * (resp->cross_origin, resp->origin). */
void http_note_origin(CURL *h, const char *request_url, struct http_response *resp);
/* After a failed transfer: the scheme of a redirect curl refused to follow (not http/https)
 * into resp->refused_scheme. */
void http_note_refused_redirect(struct http_response *resp);

#endif
