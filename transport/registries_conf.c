/* registries.conf: a TOML subset parser and the registry/mirror tables it feeds. */
#include "transport/registries_conf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"

#define MAX_DEPTH 8     /* arrays and inline tables inside each other */
#define MAX_ITEMS 4096  /* per array or inline table */
#define MAX_KEY_PARTS 8 /* a.b.c */
#define KEY_MAX 128
#define STRING_MAX 4096

/* ---- values ---- */

enum tv_type { TV_STRING, TV_BOOL, TV_OTHER, TV_ARRAY, TV_TABLE };

struct tv {
    enum tv_type type;
    char *s;          /* TV_STRING */
    bool b;           /* TV_BOOL */
    struct tv *items; /* TV_ARRAY, TV_TABLE */
    char **keys;      /* TV_TABLE: the key of each item */
    size_t n, cap;
};

static void tv_free(struct tv *v)
{
    free(v->s);
    for (size_t i = 0; i < v->n; i++) {
        tv_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof(*v));
}

/* A new empty item (and key slot for tables) at the end of v. */
static struct tv *tv_push(struct tv *v, const char *key)
{
    if (v->n >= MAX_ITEMS) return NULL;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        struct tv *items = realloc(v->items, cap * sizeof(*items));
        if (!items) return NULL;
        v->items = items;
        if (v->type == TV_TABLE) {
            char **keys = realloc(v->keys, cap * sizeof(*keys));
            if (!keys) return NULL;
            v->keys = keys;
        }
        v->cap = cap;
    }
    if (v->type == TV_TABLE) {
        v->keys[v->n] = strdup(key ? key : "");
        if (!v->keys[v->n]) return NULL;
    }
    struct tv *item = &v->items[v->n++];
    memset(item, 0, sizeof(*item));
    return item;
}

/* ---- the parser ---- */

struct parser {
    const char *p, *end;
    int line;
    char *err;
    size_t errlen;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *ps, const char *fmt, ...)
{
    if (!ps->failed && ps->err && ps->errlen) {
        int n = snprintf(ps->err, ps->errlen, "line %d: ", ps->line);
        va_list ap;
        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < ps->errlen)
            vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    ps->failed = true;
    return -EINVAL;
}

static bool at_end(const struct parser *ps)
{
    return ps->p >= ps->end;
}

static char peek(const struct parser *ps)
{
    return at_end(ps) ? '\0' : *ps->p;
}

static void skip_ws(struct parser *ps)
{
    while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

static void skip_comment(struct parser *ps)
{
    if (peek(ps) == '#')
        while (!at_end(ps) && *ps->p != '\n')
            ps->p++;
}

/* Whitespace, newlines and comments (between array items, before a key). */
static void skip_blank(struct parser *ps)
{
    for (;;) {
        skip_ws(ps);
        skip_comment(ps);
        if (peek(ps) == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n') ps->p++;
        if (peek(ps) != '\n') return;
        ps->p++;
        ps->line++;
    }
}

static int expect_eol(struct parser *ps)
{
    skip_ws(ps);
    skip_comment(ps);
    if (at_end(ps)) return 0;
    if (peek(ps) == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n') ps->p++;
    if (peek(ps) != '\n') return fail(ps, "unexpected '%c' after a value", peek(ps));
    ps->p++;
    ps->line++;
    return 0;
}

static bool bare_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Appends one UTF-8 encoded code point. */
static int put_utf8(struct parser *ps, char *out, size_t outlen, size_t *n, uint32_t cp)
{
    char tmp[4];
    size_t k;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return fail(ps, "invalid \\u escape");
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xC0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        tmp[0] = (char)(0xF0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    if (*n + k >= outlen) return fail(ps, "string too long");
    memcpy(out + *n, tmp, k);
    *n += k;
    return 0;
}

static int parse_escape(struct parser *ps, char *out, size_t outlen, size_t *n)
{
    char c = peek(ps);
    ps->p++;
    const char *simple = strchr("btnfr\"\\", c);
    if (c && simple) {
        static const char map[] = "\b\t\n\f\r\"\\";
        return put_utf8(ps, out, outlen, n, (unsigned char)map[simple - "btnfr\"\\"]);
    }
    int digits = c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (!digits) return fail(ps, "unknown escape \\%c", c ? c : ' ');
    uint32_t cp = 0;
    for (int i = 0; i < digits; i++) {
        char h = peek(ps);
        int v = (h >= '0' && h <= '9')   ? h - '0'
                : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                         : -1;
        if (v < 0) return fail(ps, "bad \\u escape");
        cp = cp * 16 + (uint32_t)v;
        ps->p++;
    }
    return put_utf8(ps, out, outlen, n, cp);
}

/* "basic" or 'literal' string at ps->p into out. */
static int parse_string(struct parser *ps, char *out, size_t outlen)
{
    char quote = peek(ps);
    if (ps->end - ps->p >= 3 && ps->p[1] == quote && ps->p[2] == quote)
        return fail(ps, "multi-line strings are not supported here");
    ps->p++;
    size_t n = 0;
    for (;;) {
        if (at_end(ps) || *ps->p == '\n') return fail(ps, "unterminated string");
        char c = *ps->p++;
        if (c == quote) break;
        if ((unsigned char)c < 0x20 && c != '\t') return fail(ps, "control character in a string");
        if (c == '\\' && quote == '"') {
            int rc = parse_escape(ps, out, outlen, &n);
            if (rc) return rc;
            continue;
        }
        if (n + 1 >= outlen) return fail(ps, "string too long");
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

/* a, "a", 'a', and dotted a.b.c, joined with '.' into out. */
static int parse_key(struct parser *ps, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (int part = 0;; part++) {
        char piece[KEY_MAX];
        if (part >= MAX_KEY_PARTS) return fail(ps, "key with too many parts");
        skip_ws(ps);
        char c = peek(ps);
        if (c == '"' || c == '\'') {
            int rc = parse_string(ps, piece, sizeof(piece));
            if (rc) return rc;
        } else {
            size_t k = 0;
            while (bare_key_char(peek(ps))) {
                if (k + 1 >= sizeof(piece)) return fail(ps, "key too long");
                piece[k++] = *ps->p++;
            }
            piece[k] = '\0';
            if (k == 0) return fail(ps, "expected a key, found '%c'", c ? c : ' ');
        }
        size_t plen = strlen(piece);
        if (n + plen + 2 >= outlen) return fail(ps, "key too long");
        if (part) out[n++] = '.';
        memcpy(out + n, piece, plen + 1);
        n += plen;
        skip_ws(ps);
        if (peek(ps) != '.') return 0;
        ps->p++;
    }
}

static int parse_value(struct parser *ps, struct tv *v, int depth);

static int parse_array(struct parser *ps, struct tv *v, int depth)
{
    v->type = TV_ARRAY;
    ps->p++; /* [ */
    for (;;) {
        skip_blank(ps);
        if (peek(ps) == ']') {
            ps->p++;
            return 0;
        }
        struct tv *item = tv_push(v, NULL);
        if (!item) return v->n >= MAX_ITEMS ? fail(ps, "array too long") : -ENOMEM;
        int rc = parse_value(ps, item, depth + 1);
        if (rc) return rc;
        skip_blank(ps);
        if (peek(ps) == ',') {
            ps->p++;
            continue;
        }
        if (peek(ps) != ']') return fail(ps, "expected ',' or ']' in an array");
    }
}

static int parse_inline_table(struct parser *ps, struct tv *v, int depth)
{
    v->type = TV_TABLE;
    ps->p++; /* { */
    for (;;) {
        skip_blank(ps); /* TOML wants one line; being lenient costs nothing */
        if (peek(ps) == '}') {
            ps->p++;
            return 0;
        }
        char key[KEY_MAX * 2];
        int rc = parse_key(ps, key, sizeof(key));
        if (rc) return rc;
        if (peek(ps) != '=') return fail(ps, "expected '=' after key \"%s\"", key);
        ps->p++;
        skip_ws(ps);
        struct tv *item = tv_push(v, key);
        if (!item) return v->n >= MAX_ITEMS ? fail(ps, "inline table too long") : -ENOMEM;
        rc = parse_value(ps, item, depth + 1);
        if (rc) return rc;
        skip_blank(ps);
        if (peek(ps) == ',') {
            ps->p++;
            continue;
        }
        if (peek(ps) != '}') return fail(ps, "expected ',' or '}' in an inline table");
    }
}

static bool word_at(const struct parser *ps, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0 &&
           (ps->p + n == ps->end || !bare_key_char(ps->p[n]));
}

static int parse_value(struct parser *ps, struct tv *v, int depth)
{
    if (depth > MAX_DEPTH) return fail(ps, "values nested too deeply");
    char c = peek(ps);
    if (c == '"' || c == '\'') {
        char buf[STRING_MAX];
        int rc = parse_string(ps, buf, sizeof(buf));
        if (rc) return rc;
        v->type = TV_STRING;
        v->s = strdup(buf);
        return v->s ? 0 : -ENOMEM;
    }
    if (c == '[') return parse_array(ps, v, depth);
    if (c == '{') return parse_inline_table(ps, v, depth);
    if (word_at(ps, "true") || word_at(ps, "false")) {
        v->type = TV_BOOL;
        v->b = c == 't';
        ps->p += v->b ? 4 : 5;
        return 0;
    }
    /* numbers, dates, inf, nan: not used by what we read; skipped as a token */
    if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || word_at(ps, "inf") ||
          word_at(ps, "nan")))
        return fail(ps, "expected a value");
    while (!at_end(ps) && (bare_key_char(*ps->p) || strchr(".:+", *ps->p)))
        ps->p++;
    v->type = TV_OTHER;
    return 0;
}

/* ---- the registries ---- */

enum ctx_kind { CTX_ROOT, CTX_REGISTRY, CTX_MIRROR, CTX_V1_INSECURE, CTX_V1_BLOCK, CTX_IGNORED };

struct builder {
    struct registries_conf *conf;
    size_t cap;
    bool *digest_only; /* mirror-by-digest-only, per registry */
    enum ctx_kind ctx;
};

static struct registries_conf_registry *new_registry(struct parser *ps, struct builder *b)
{
    struct registries_conf *c = b->conf;
    if (c->n >= REGISTRIES_CONF_MAX_REGISTRIES) {
        fail(ps, "more than %d registries", REGISTRIES_CONF_MAX_REGISTRIES);
        return NULL;
    }
    if (c->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        struct registries_conf_registry *regs = realloc(c->regs, cap * sizeof(*regs));
        if (!regs) return NULL;
        c->regs = regs;
        bool *d = realloc(b->digest_only, cap * sizeof(*d));
        if (!d) return NULL;
        b->digest_only = d;
        b->cap = cap;
    }
    b->digest_only[c->n] = false;
    struct registries_conf_registry *r = &c->regs[c->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

static struct registries_conf_mirror *new_mirror(struct parser *ps,
                                                 struct registries_conf_registry *r)
{
    if (r->n_mirrors >= REGISTRIES_CONF_MAX_MIRRORS) {
        fail(ps, "more than %d mirrors for one registry", REGISTRIES_CONF_MAX_MIRRORS);
        return NULL;
    }
    struct registries_conf_mirror *m = &r->mirrors[r->n_mirrors++];
    memset(m, 0, sizeof(*m));
    return m;
}

static int want_string(struct parser *ps, const struct tv *v, const char *key, char *out,
                       size_t outlen)
{
    if (v->type != TV_STRING) return fail(ps, "\"%s\" must be a string", key);
    if (strlen(v->s) >= outlen) return fail(ps, "\"%s\" is too long", key);
    snprintf(out, outlen, "%s", v->s);
    return 0;
}

static int want_bool(struct parser *ps, const struct tv *v, const char *key, bool *out)
{
    if (v->type != TV_BOOL) return fail(ps, "\"%s\" must be true or false", key);
    *out = v->b;
    return 0;
}

static int mirror_key(struct parser *ps, struct registries_conf_mirror *m, const char *key,
                      const struct tv *v)
{
    if (strcmp(key, "location") == 0)
        return want_string(ps, v, key, m->location, sizeof(m->location));
    if (strcmp(key, "insecure") == 0) return want_bool(ps, v, key, &m->insecure);
    if (strcmp(key, "pull-from-mirror") == 0) {
        char mode[32];
        int rc = want_string(ps, v, key, mode, sizeof(mode));
        if (rc) return rc;
        if (strcmp(mode, "all") == 0 || mode[0] == '\0')
            m->pull = REGISTRIES_CONF_PULL_ALL;
        else if (strcmp(mode, "digest-only") == 0)
            m->pull = REGISTRIES_CONF_PULL_DIGEST_ONLY;
        else if (strcmp(mode, "tag-only") == 0)
            m->pull = REGISTRIES_CONF_PULL_TAG_ONLY;
        else
            return fail(ps, "pull-from-mirror must be all, digest-only or tag-only");
        return 0;
    }
    return 0; /* unknown keys are ignored, as containers ignores fields it does not know */
}

static int registry_key(struct parser *ps, struct builder *b, struct registries_conf_registry *r,
                        const char *key, const struct tv *v)
{
    if (strcmp(key, "location") == 0)
        return want_string(ps, v, key, r->location, sizeof(r->location));
    if (strcmp(key, "prefix") == 0) return want_string(ps, v, key, r->prefix, sizeof(r->prefix));
    if (strcmp(key, "insecure") == 0) return want_bool(ps, v, key, &r->insecure);
    if (strcmp(key, "blocked") == 0) return want_bool(ps, v, key, &r->blocked);
    if (strcmp(key, "mirror-by-digest-only") == 0)
        return want_bool(ps, v, key, &b->digest_only[r - b->conf->regs]);
    if (strcmp(key, "mirror") == 0) {
        if (v->type != TV_ARRAY) return fail(ps, "\"mirror\" must be an array of tables");
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i].type != TV_TABLE)
                return fail(ps, "\"mirror\" must be an array of tables");
            struct registries_conf_mirror *m = new_mirror(ps, r);
            if (!m) return -EINVAL;
            for (size_t k = 0; k < v->items[i].n; k++) {
                int rc = mirror_key(ps, m, v->items[i].keys[k], &v->items[i].items[k]);
                if (rc) return rc;
            }
        }
        return 0;
    }
    return 0;
}

static int registry_from_table(struct parser *ps, struct builder *b, const struct tv *t)
{
    if (t->type != TV_TABLE) return fail(ps, "\"registry\" must be an array of tables");
    struct registries_conf_registry *r = new_registry(ps, b);
    if (!r) return ps->failed ? -EINVAL : -ENOMEM;
    for (size_t k = 0; k < t->n; k++) {
        int rc = registry_key(ps, b, r, t->keys[k], &t->items[k]);
        if (rc) return rc;
    }
    return 0;
}

/* A version 1 list entry: merged into an entry of the same location. */
static int v1_entry(struct parser *ps, struct builder *b, const char *location, bool block)
{
    struct registries_conf *c = b->conf;
    struct registries_conf_registry *r = NULL;
    for (size_t i = 0; i < c->n && !r; i++)
        if (strcmp(c->regs[i].location, location) == 0 && !c->regs[i].prefix[0]) r = &c->regs[i];
    if (!r) {
        r = new_registry(ps, b);
        if (!r) return ps->failed ? -EINVAL : -ENOMEM;
        if (strlen(location) >= sizeof(r->location)) return fail(ps, "location too long");
        snprintf(r->location, sizeof(r->location), "%s", location);
    }
    if (block)
        r->blocked = true;
    else
        r->insecure = true;
    return 0;
}

static int assign(struct parser *ps, struct builder *b, const char *key, const struct tv *v)
{
    struct registries_conf *c = b->conf;
    switch (b->ctx) {
    case CTX_ROOT:
        if (strcmp(key, "registry") == 0) {
            if (v->type != TV_ARRAY) return fail(ps, "\"registry\" must be an array of tables");
            for (size_t i = 0; i < v->n; i++) {
                int rc = registry_from_table(ps, b, &v->items[i]);
                if (rc) return rc;
            }
        }
        return 0;
    case CTX_REGISTRY:
        return registry_key(ps, b, &c->regs[c->n - 1], key, v);
    case CTX_MIRROR: {
        struct registries_conf_registry *r = &c->regs[c->n - 1];
        return mirror_key(ps, &r->mirrors[r->n_mirrors - 1], key, v);
    }
    case CTX_V1_INSECURE:
    case CTX_V1_BLOCK:
        if (strcmp(key, "registries") != 0) return 0;
        if (v->type != TV_ARRAY) return fail(ps, "\"registries\" must be an array of strings");
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i].type != TV_STRING)
                return fail(ps, "\"registries\" must be an array of strings");
            int rc = v1_entry(ps, b, v->items[i].s, b->ctx == CTX_V1_BLOCK);
            if (rc) return rc;
        }
        return 0;
    case CTX_IGNORED:
        return 0;
    }
    return 0;
}

static int table_header(struct parser *ps, struct builder *b)
{
    bool array = ps->p + 1 < ps->end && ps->p[1] == '[';
    ps->p += array ? 2 : 1;
    char name[KEY_MAX * 2];
    int rc = parse_key(ps, name, sizeof(name));
    if (rc) return rc;
    if (peek(ps) != ']' || (array && (ps->p + 1 >= ps->end || ps->p[1] != ']')))
        return fail(ps, "expected ']' after the table name");
    ps->p += array ? 2 : 1;
    if (array && strcmp(name, "registry") == 0) {
        if (!new_registry(ps, b)) return ps->failed ? -EINVAL : -ENOMEM;
        b->ctx = CTX_REGISTRY;
    } else if (array && strcmp(name, "registry.mirror") == 0) {
        if (b->conf->n == 0) return fail(ps, "[[registry.mirror]] before any [[registry]]");
        if (!new_mirror(ps, &b->conf->regs[b->conf->n - 1])) return -EINVAL;
        b->ctx = CTX_MIRROR;
    } else if (!array && (strcmp(name, "registry") == 0 || strcmp(name, "registry.mirror") == 0)) {
        return fail(ps, "[%s] must be written [[%s]]", name, name);
    } else if (!array && strcmp(name, "registries.insecure") == 0) {
        b->ctx = CTX_V1_INSECURE;
    } else if (!array && strcmp(name, "registries.block") == 0) {
        b->ctx = CTX_V1_BLOCK;
    } else {
        b->ctx = CTX_IGNORED;
    }
    return expect_eol(ps);
}

/* ---- validation ---- */

/* Lower-cases the host part and folds Docker Hub's names into "docker.io"; drops one trailing
 * '/'. false when it is not host[:port][/namespace] (or "*.domain" when wildcard). */
static bool normalize_location(char *loc, size_t size, bool wildcard_ok)
{
    size_t len = strlen(loc);
    if (len && loc[len - 1] == '/') loc[--len] = '\0';
    if (len == 0) return false;
    size_t hl = strcspn(loc, "/");
    char host[REF_HOST_MAX + 8];
    if (hl >= sizeof(host)) return false;
    for (size_t i = 0; i < hl; i++)
        host[i] = (loc[i] >= 'A' && loc[i] <= 'Z') ? (char)(loc[i] - 'A' + 'a') : loc[i];
    host[hl] = '\0';
    const char *path = loc[hl] ? loc + hl + 1 : "";
    if (wildcard_ok && strncmp(host, "*.", 2) == 0) {
        if (*path || strchr(host, ':') || !ref_valid_hostport(host + 2)) return false;
    } else {
        if (!ref_valid_hostport(host) || (*path && !ref_valid_repo(path))) return false;
        if (ref_is_docker_hub_host(host)) snprintf(host, sizeof(host), "docker.io");
    }
    char out[REGISTRIES_CONF_LOCATION_MAX];
    int n = snprintf(out, sizeof(out), "%s%s%s", host, *path ? "/" : "", path);
    if (n < 0 || (size_t)n >= size) return false;
    memcpy(loc, out, (size_t)n + 1);
    return true;
}

static int finish(struct builder *b, char *err, size_t errlen)
{
    struct registries_conf *c = b->conf;
    for (size_t i = 0; i < c->n; i++) {
        struct registries_conf_registry *r = &c->regs[i];
        if (!r->prefix[0] && !r->location[0]) {
            snprintf(err, errlen, "registry #%zu has neither location nor prefix", i + 1);
            return -EINVAL;
        }
        if (r->location[0] && !normalize_location(r->location, sizeof(r->location), false)) {
            snprintf(err, errlen, "invalid location \"%.200s\"", r->location);
            return -EINVAL;
        }
        if (!r->prefix[0])
            snprintf(r->prefix, sizeof(r->prefix), "%s", r->location);
        else if (!normalize_location(r->prefix, sizeof(r->prefix), true)) {
            snprintf(err, errlen, "invalid prefix \"%.200s\"", r->prefix);
            return -EINVAL;
        }
        for (size_t k = 0; k < r->n_mirrors; k++) {
            struct registries_conf_mirror *m = &r->mirrors[k];
            if (!normalize_location(m->location, sizeof(m->location), false)) {
                snprintf(err, errlen, "invalid mirror location \"%.200s\"", m->location);
                return -EINVAL;
            }
            if (b->digest_only[i] && m->pull == REGISTRIES_CONF_PULL_ALL)
                m->pull = REGISTRIES_CONF_PULL_DIGEST_ONLY;
        }
    }
    return 0;
}

int registries_conf_parse(const char *text, size_t len, struct registries_conf *out, char *err,
                          size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen) err[0] = '\0';
    if (len > REGISTRIES_CONF_MAX_BYTES) return -EFBIG;
    if (memchr(text, '\0', len)) {
        if (err && errlen) snprintf(err, errlen, "NUL byte in the file");
        return -EINVAL;
    }
    struct parser ps = {.p = text, .end = text + len, .line = 1, .err = err, .errlen = errlen};
    struct builder b = {.conf = out, .ctx = CTX_ROOT};
    int rc = 0;
    for (;;) {
        skip_blank(&ps);
        if (at_end(&ps)) break;
        if (peek(&ps) == '[') {
            rc = table_header(&ps, &b);
        } else {
            char key[KEY_MAX * 2];
            rc = parse_key(&ps, key, sizeof(key));
            if (!rc && peek(&ps) != '=') rc = fail(&ps, "expected '=' after key \"%s\"", key);
            if (!rc) {
                ps.p++;
                skip_ws(&ps);
                struct tv v = {0};
                rc = parse_value(&ps, &v, 0);
                if (!rc) rc = assign(&ps, &b, key, &v);
                tv_free(&v);
                if (!rc) rc = expect_eol(&ps);
            }
        }
        if (rc) break;
    }
    char tmp[1];
    if (!rc) rc = finish(&b, err && errlen ? err : tmp, err && errlen ? errlen : sizeof(tmp));
    free(b.digest_only);
    if (rc) {
        if (rc == -ENOMEM && err && errlen) snprintf(err, errlen, "out of memory");
        registries_conf_free(out);
    }
    return rc;
}

void registries_conf_free(struct registries_conf *c)
{
    if (!c) return;
    free(c->regs);
    c->regs = NULL;
    c->n = 0;
}

int registries_conf_load(const char *path, struct registries_conf *out)
{
    memset(out, 0, sizeof(*out));
    char *data;
    size_t len;
    char err[256];
    int rc = read_small_file(path, REGISTRIES_CONF_MAX_BYTES, &data, &len);
    if (rc == -ENOENT) return rc;
    if (rc == 0)
        rc = registries_conf_parse(data, len, out, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "%s",
                 rc == -EFBIG || rc == -EINVAL ? "not a regular file of a sane size"
                                               : strerror(-rc));
    free(data);
    if (rc) log_error("registries.conf %s: %s; ignoring the whole file", path, err);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds src's entries to dst, replacing those with the same prefix. */
static int merge(struct registries_conf *dst, const struct registries_conf *src)
{
    for (size_t i = 0; i < src->n; i++) {
        size_t k = 0;
        while (k < dst->n && strcmp(dst->regs[k].prefix, src->regs[i].prefix) != 0)
            k++;
        if (k == dst->n) {
            if (dst->n >= REGISTRIES_CONF_MAX_REGISTRIES) return -EFBIG;
            struct registries_conf_registry *regs =
                realloc(dst->regs, (dst->n + 1) * sizeof(*regs));
            if (!regs) return -ENOMEM;
            dst->regs = regs;
            dst->n++;
        }
        dst->regs[k] = src->regs[i];
    }
    return 0;
}

#define DROPINS_MAX 64

int registries_conf_load_all(const char *path, struct registries_conf *out)
{
    int rc = registries_conf_load(path, out);
    if (rc && rc != -ENOENT) return rc; /* a broken main file: ignored as a whole, drop-ins too */
    bool found = rc == 0;
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s.d", path) >= (int)sizeof(dir)) return found ? 0 : -ENOENT;
    DIR *d = opendir(dir);
    if (!d) return found ? 0 : -ENOENT;
    char *names[DROPINS_MAX];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < DROPINS_MAX) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".conf") == 0 && e->d_name[0] != '.') {
            names[n] = strdup(e->d_name);
            if (names[n]) n++;
        }
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        char file[PATH_MAX + NAME_MAX + 2];
        snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
        struct registries_conf more;
        if (!rc && registries_conf_load(file, &more) == 0) {
            found = true;
            rc = merge(out, &more);
            registries_conf_free(&more);
            if (rc) log_error("registries.conf %s: cannot merge it: %s", file, strerror(-rc));
        }
        free(names[i]);
    }
    if (rc) {
        registries_conf_free(out);
        return rc;
    }
    return found ? 0 : -ENOENT;
}

/* ---- matching ---- */

/* "host[:port]/repo" with the host normalized as the entries are. */
static int reference(const char *hostport, const char *repo, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s%s%s", hostport, repo && *repo ? "/" : "", repo ? repo : "");
    if (n < 0 || (size_t)n >= outlen) return -EINVAL;
    return normalize_location(out, outlen, false) ? 0 : -EINVAL;
}

static bool prefix_matches(const char *prefix, const char *ref, size_t *rank)
{
    if (strncmp(prefix, "*.", 2) == 0) {
        const char *dom = prefix + 1; /* ".example.com" */
        size_t hl = strcspn(ref, ":/");
        size_t dl = strlen(dom);
        *rank = strlen(prefix);
        return hl > dl && strncmp(ref + hl - dl, dom, dl) == 0;
    }
    size_t n = strlen(prefix);
    *rank = n;
    return strncmp(ref, prefix, n) == 0 && (ref[n] == '\0' || ref[n] == '/');
}

const struct registries_conf_registry *registries_conf_match(const struct registries_conf *c,
                                                             const char *hostport, const char *repo)
{
    char ref[REGISTRIES_CONF_LOCATION_MAX];
    if (!c || !hostport || reference(hostport, repo, ref, sizeof(ref)) != 0) return NULL;
    const struct registries_conf_registry *best = NULL;
    size_t best_rank = 0;
    for (size_t i = 0; i < c->n; i++) {
        size_t rank;
        if (prefix_matches(c->regs[i].prefix, ref, &rank) && (!best || rank > best_rank)) {
            best = &c->regs[i];
            best_rank = rank;
        }
    }
    return best;
}

int registries_conf_mirror_ref(const struct registries_conf_registry *e,
                               const struct registries_conf_mirror *m, const char *hostport,
                               const char *repo, char mhost[REF_HOST_MAX + 8],
                               char mrepo[REF_NAME_MAX + 1])
{
    char ref[REGISTRIES_CONF_LOCATION_MAX], mref[REGISTRIES_CONF_LOCATION_MAX * 2];
    size_t rank;
    if (!e || !m || !repo || reference(hostport, repo, ref, sizeof(ref)) != 0 ||
        !prefix_matches(e->prefix, ref, &rank))
        return -EINVAL;
    /* a wildcard entry maps the host; a prefix maps what follows it */
    const char *suffix =
        strncmp(e->prefix, "*.", 2) == 0 ? ref + strcspn(ref, "/") : ref + strlen(e->prefix);
    int n = snprintf(mref, sizeof(mref), "%s%s", m->location, suffix);
    if (n < 0 || (size_t)n >= sizeof(mref)) return -EINVAL;
    size_t hl = strcspn(mref, "/");
    if (hl >= REF_HOST_MAX + 8 || mref[hl] != '/') return -EINVAL;
    memcpy(mhost, mref, hl);
    mhost[hl] = '\0';
    const char *r = mref + hl + 1;
    if (strlen(r) > REF_NAME_MAX || !ref_valid_hostport(mhost) || !ref_valid_repo(r))
        return -EINVAL;
    snprintf(mrepo, REF_NAME_MAX + 1, "%s", r);
    return 0;
}
