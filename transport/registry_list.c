/* Paginated listings: /v2/_catalog and /v2/NAME/tags/list. */
#include "transport/registry_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"

#define LIST_PAGE_MAX_BYTES (16u << 20)
#define LIST_MAX_ENTRIES (1u << 20) /* over all pages */
#define LIST_MAX_PAGES 4096
#define INVALID_NAMES_LOGGED 10
#define PAGE_SIZE "1000" /* ECR refuses more */
#define LIST_TIMEOUTS 4  /* a whole listing may take this many request timeouts */

struct listing {
    struct registry *r;
    const char *what;  /* "catalog", "tags of NAME": for logs */
    const char *key;   /* the JSON array: "repositories" or "tags" */
    const char *scope; /* token scope */
    bool (*valid)(const char *);
    /* turns the failure into the listing's own error (catalog: -ENOTSUP) */
    int (*map_error)(struct listing *l, const struct http_response *resp, int rc);
    struct strlist items;
    size_t invalid;
    int pages;                     /* fetched and parsed */
    bool logged;                   /* the failure has had its log line already */
    uint64_t seen[LIST_MAX_PAGES]; /* hashes of the page URLs fetched: a Link loop ends */
};

/* FNV-1a: enough to tell page URLs apart. */
static uint64_t url_hash(const char *url)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* Records the page about to be fetched; false when the listing already fetched it. */
static bool first_visit(struct listing *l, const char *url)
{
    uint64_t h = url_hash(url);
    for (int i = 0; i < l->pages; i++)
        if (l->seen[i] == h) return false;
    l->seen[l->pages] = h;
    return true;
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

static int add_item(struct listing *l, const cJSON *item)
{
    if (!cJSON_IsString(item) || !item->valuestring || !l->valid(item->valuestring)) {
        if (l->invalid++ < INVALID_NAMES_LOGGED) {
            char shown[80] = "(not a string)";
            if (cJSON_IsString(item) && item->valuestring)
                reg_copy_printable(shown, sizeof(shown), item->valuestring, sizeof(shown) - 1);
            log_warn("registry %s: %s: skipping invalid name \"%s\"", l->r->addr.hostport, l->what,
                     shown);
        }
        return 0;
    }
    if (l->items.len >= LIST_MAX_ENTRIES) return -EFBIG;
    return strlist_push(&l->items, item->valuestring);
}

/* {"KEY": [names...]} where a null or absent array is an empty page. */
static int parse_page(struct listing *l, const struct buf *body)
{
    cJSON *root = cJSON_ParseWithLength(body->data ? body->data : "", body->len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        log_warn("registry %s: %s: response is not a JSON object", l->r->addr.hostport, l->what);
        l->logged = true;
        return -EIO;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, l->key);
    int rc = 0;
    if (arr && !cJSON_IsNull(arr) && !cJSON_IsArray(arr)) {
        log_warn("registry %s: %s: \"%s\" is not an array", l->r->addr.hostport, l->what, l->key);
        l->logged = true;
        rc = -EIO;
    }
    const cJSON *item;
    if (cJSON_IsArray(arr)) cJSON_ArrayForEach(item, arr)
        {
            rc = add_item(l, item);
            if (rc) break;
        }
    cJSON_Delete(root);
    return rc;
}

/* The URL of the next page from resp's Link header: 1 and next set, 0 at the end, -EIO. */
static int next_page(struct listing *l, const struct http_response *resp, const char *url,
                     char next[REG_URL_MAX])
{
    if (resp->link_malformed) {
        log_warn("registry %s: %s: malformed Link header", l->r->addr.hostport, l->what);
        l->logged = true;
        return -EIO;
    }
    if (!resp->link_next[0]) return 0;
    char endpoint[sizeof(l->r->addr.endpoint)];
    reg_endpoint(l->r, endpoint, sizeof(endpoint));
    /* our token must not go elsewhere, and a page pointing at itself would never end */
    if (url_resolve(url, resp->link_next, next, REG_URL_MAX) != 0 ||
        !url_same_origin(next, endpoint) || strcmp(next, url) == 0) {
        log_warn("registry %s: %s: unusable next-page link", l->r->addr.hostport, l->what);
        l->logged = true;
        return -EIO;
    }
    return 1;
}

/* 0 for a 200, else the error for the page's status or transport failure. */
static int page_status(const struct http_response *resp, int rc)
{
    if (rc) return rc;
    if (resp->status == 200) return 0;
    rc = reg_status_errno(resp->status);
    return rc ? rc : -EIO; /* a 2xx other than 200 */
}

/* Fetches every page from first_url into l->items; resp keeps the last response. */
static int list_all(struct listing *l, const char *first_url, struct http_response *resp)
{
    char url[REG_URL_MAX], next[REG_URL_MAX];
    struct buf body;
    int rc = 0;
    int64_t deadline = monotonic_ms_now() + LIST_TIMEOUTS * http_pool_timeout_ms(l->r->http);
    snprintf(url, sizeof(url), "%s", first_url);
    buf_init(&body, LIST_PAGE_MAX_BYTES);
    for (;;) {
        const char *why = l->pages >= LIST_MAX_PAGES      ? "too many pages"
                          : !first_visit(l, url)          ? "a next-page link leads back"
                          : monotonic_ms_now() > deadline ? "the listing takes too long"
                                                          : NULL;
        if (why) {
            log_warn("registry %s: %s: %s after %d pages; stopped", l->r->addr.hostport, l->what,
                     why, l->pages);
            l->logged = true;
            rc = -EIO;
            break;
        }
        struct reg_call call = {.url = url,
                                .scope = l->scope,
                                .cls = HTTP_META,
                                .max_attempts = HTTP_MAX_ATTEMPTS,
                                .on_body = collect_body,
                                .ctx = &body,
                                .on_attempt = reset_body};
        rc = page_status(resp, reg_perform(l->r, &call, resp));
        if (rc) break;
        l->pages++;
        rc = parse_page(l, &body);
        if (!rc) rc = next_page(l, resp, url, next);
        if (rc <= 0) break;
        memcpy(url, next, sizeof(url));
    }
    buf_free(&body);
    return rc;
}

/* Copies every string of src to the end of dst; on failure dst is as it was. */
static int strlist_take(struct strlist *dst, struct strlist *src)
{
    size_t before = dst->len;
    for (size_t i = 0; i < src->len; i++) {
        int rc = strlist_push(dst, src->items[i]);
        if (rc) {
            while (dst->len > before)
                free(dst->items[--dst->len]);
            return rc;
        }
    }
    return 0;
}

/* Lists everything into out (sorted, unique), or nothing at all on failure. */
static int run_listing(struct listing *l, const char *url, struct strlist *out)
{
    struct http_response resp;
    http_response_init(&resp);
    int rc = list_all(l, url, &resp);
    if (rc && l->map_error) rc = l->map_error(l, &resp, rc);
    if (rc && !l->logged)
        reg_log_failure(l->r, l->what, &resp, rc);
    else if (l->invalid > INVALID_NAMES_LOGGED)
        log_warn("registry %s: %s: %zu invalid names skipped in all", l->r->addr.hostport, l->what,
                 l->invalid);
    if (!rc) {
        strlist_sort_unique(&l->items);
        rc = strlist_take(out, &l->items);
    }
    strlist_free(&l->items);
    http_response_free(&resp);
    return rc;
}

/* A registry without a catalog says so on the first page, in one of several ways. */
static int catalog_error(struct listing *l, const struct http_response *resp, int rc)
{
    char code[72];
    if (l->pages > 0 || !resp->status) return rc;
    long s = resp->status;
    if (s == 404 || s == 401 || s == 403 || s == 405) return -ENOTSUP;
    reg_error_code(resp, code, sizeof(code));
    return strcmp(code, "UNSUPPORTED") == 0 ? -ENOTSUP : rc;
}

int registry_catalog(struct registry *r, struct strlist *repos)
{
    if (!r || !repos) return -EINVAL;
    if (r->addr.docker_hub) return -ENOTSUP; /* Docker Hub has no catalog: do not even ask */
    char url[REG_URL_MAX];
    int rc = reg_url(r, url, sizeof(url), "/v2/_catalog?n=" PAGE_SIZE);
    if (rc) return rc;
    struct listing l = {.r = r,
                        .what = "catalog",
                        .key = "repositories",
                        .scope = "registry:catalog:*",
                        .valid = ref_valid_repo,
                        .map_error = catalog_error};
    return run_listing(&l, url, repos);
}

/* A 404 on a later page is the registry losing track, not a missing repository. */
static int tags_error(struct listing *l, const struct http_response *resp, int rc)
{
    (void)resp;
    return rc == -ENOENT && l->pages > 0 ? -EIO : rc;
}

static int tags_from(struct registry *r, const char *repo, struct strlist *tags)
{
    char wire[WIRE_REPO_MAX + 1], url[REG_URL_MAX], scope[WIRE_REPO_MAX + 32], what[300];
    if (!r || !tags) return -EINVAL;
    int rc = reg_wire_repo(r, repo, wire);
    if (rc) return rc;
    rc = reg_url(r, url, sizeof(url), "/v2/%s/tags/list?n=" PAGE_SIZE, wire);
    if (rc) return rc;
    snprintf(scope, sizeof(scope), "repository:%s:pull", wire);
    snprintf(what, sizeof(what), "tags of %s", wire);
    struct listing l = {.r = r,
                        .what = what,
                        .key = "tags",
                        .scope = scope,
                        .valid = ref_valid_tag,
                        .map_error = tags_error};
    return run_listing(&l, url, tags);
}

int registry_tags(struct registry *r, const char *repo, struct strlist *tags)
{
    struct reg_source src[REGISTRIES_CONF_MAX_MIRRORS];
    if (!r || !tags) return -EINVAL;
    size_t n = reg_mirror_sources(r, repo, REG_READ_TAGS, src, REGISTRIES_CONF_MAX_MIRRORS);
    for (size_t i = 0; i < n; i++) {
        int rc = tags_from(src[i].reg, src[i].repo, tags);
        if (rc == 0) return 0;
        log_debug("registry %s: tags of %s not from mirror %s (%s)", r->addr.hostport, repo,
                  src[i].reg->addr.hostport, strerror(-rc));
    }
    return tags_from(r, repo, tags);
}
