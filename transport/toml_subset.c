/* The TOML-subset parser (toml_subset.h): a recursive descent over the text, values built as
 * struct toml_value trees, the document handed out as table headers and assignments. */
#include "transport/toml_subset.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 8     /* arrays and inline tables inside each other */
#define MAX_ITEMS 4096  /* per array or inline table */
#define MAX_KEY_PARTS 8 /* a.b.c */
#define KEY_MAX 128
#define STRING_MAX 4096

/* ---- values ---- */

void toml_value_free(struct toml_value *v)
{
    free(v->s);
    for (size_t i = 0; i < v->n; i++) {
        toml_value_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof(*v));
}

/* A new empty item (and key slot for tables) at the end of v. */
static struct toml_value *value_push(struct toml_value *v, const char *key)
{
    if (v->n >= MAX_ITEMS) return NULL;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        struct toml_value *items = realloc(v->items, cap * sizeof(*items));
        if (!items) return NULL;
        v->items = items;
        if (v->type == TOML_TABLE) {
            char **keys = realloc(v->keys, cap * sizeof(*keys));
            if (!keys) return NULL;
            v->keys = keys;
        }
        v->cap = cap;
    }
    if (v->type == TOML_TABLE) {
        v->keys[v->n] = strdup(key ? key : "");
        if (!v->keys[v->n]) return NULL;
    }
    struct toml_value *item = &v->items[v->n++];
    memset(item, 0, sizeof(*item));
    return item;
}

/* ---- the parser ---- */

struct toml_parser {
    const char *p, *end;
    int line;
    char *err;
    size_t errlen;
    bool failed;
};

bool toml_failed(const struct toml_parser *ps)
{
    return ps->failed;
}

int toml_fail(struct toml_parser *ps, const char *fmt, ...)
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

static bool at_end(const struct toml_parser *ps)
{
    return ps->p >= ps->end;
}

static char peek(const struct toml_parser *ps)
{
    return at_end(ps) ? '\0' : *ps->p;
}

static void skip_ws(struct toml_parser *ps)
{
    while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

static void skip_comment(struct toml_parser *ps)
{
    if (peek(ps) == '#')
        while (!at_end(ps) && *ps->p != '\n')
            ps->p++;
}

/* Whitespace, newlines and comments (between array items, before a key). */
static void skip_blank(struct toml_parser *ps)
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

static int expect_eol(struct toml_parser *ps)
{
    skip_ws(ps);
    skip_comment(ps);
    if (at_end(ps)) return 0;
    if (peek(ps) == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n') ps->p++;
    if (peek(ps) != '\n') return toml_fail(ps, "unexpected '%c' after a value", peek(ps));
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
static int put_utf8(struct toml_parser *ps, char *out, size_t outlen, size_t *n, uint32_t cp)
{
    char tmp[4];
    size_t k;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return toml_fail(ps, "invalid \\u escape");
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
    if (*n + k >= outlen) return toml_fail(ps, "string too long");
    memcpy(out + *n, tmp, k);
    *n += k;
    return 0;
}

static int parse_escape(struct toml_parser *ps, char *out, size_t outlen, size_t *n)
{
    char c = peek(ps);
    ps->p++;
    const char *simple = strchr("btnfr\"\\", c);
    if (c && simple) {
        static const char map[] = "\b\t\n\f\r\"\\";
        return put_utf8(ps, out, outlen, n, (unsigned char)map[simple - "btnfr\"\\"]);
    }
    int digits = c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (!digits) return toml_fail(ps, "unknown escape \\%c", c ? c : ' ');
    uint32_t cp = 0;
    for (int i = 0; i < digits; i++) {
        char h = peek(ps);
        int v = (h >= '0' && h <= '9')   ? h - '0'
                : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                         : -1;
        if (v < 0) return toml_fail(ps, "bad \\u escape");
        cp = cp * 16 + (uint32_t)v;
        ps->p++;
    }
    return put_utf8(ps, out, outlen, n, cp);
}

/* "basic" or 'literal' string at ps->p into out. */
static int parse_string(struct toml_parser *ps, char *out, size_t outlen)
{
    char quote = peek(ps);
    if (ps->end - ps->p >= 3 && ps->p[1] == quote && ps->p[2] == quote)
        return toml_fail(ps, "multi-line strings are not supported here");
    ps->p++;
    size_t n = 0;
    for (;;) {
        if (at_end(ps) || *ps->p == '\n') return toml_fail(ps, "unterminated string");
        char c = *ps->p++;
        if (c == quote) break;
        if ((unsigned char)c < 0x20 && c != '\t')
            return toml_fail(ps, "control character in a string");
        if (c == '\\' && quote == '"') {
            int rc = parse_escape(ps, out, outlen, &n);
            if (rc) return rc;
            continue;
        }
        if (n + 1 >= outlen) return toml_fail(ps, "string too long");
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

/* a, "a", 'a', and dotted a.b.c, joined with '.' into out. */
static int parse_key(struct toml_parser *ps, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (int part = 0;; part++) {
        char piece[KEY_MAX];
        if (part >= MAX_KEY_PARTS) return toml_fail(ps, "key with too many parts");
        skip_ws(ps);
        char c = peek(ps);
        if (c == '"' || c == '\'') {
            int rc = parse_string(ps, piece, sizeof(piece));
            if (rc) return rc;
        } else {
            size_t k = 0;
            while (bare_key_char(peek(ps))) {
                if (k + 1 >= sizeof(piece)) return toml_fail(ps, "key too long");
                piece[k++] = *ps->p++;
            }
            piece[k] = '\0';
            if (k == 0) return toml_fail(ps, "expected a key, found '%c'", c ? c : ' ');
        }
        size_t plen = strlen(piece);
        if (n + plen + 2 >= outlen) return toml_fail(ps, "key too long");
        if (part) out[n++] = '.';
        memcpy(out + n, piece, plen + 1);
        n += plen;
        skip_ws(ps);
        if (peek(ps) != '.') return 0;
        ps->p++;
    }
}

static int parse_value(struct toml_parser *ps, struct toml_value *v, int depth);

/* Consumes c when it comes next. */
static bool take(struct toml_parser *ps, char c)
{
    if (peek(ps) != c) return false;
    ps->p++;
    return true;
}

static int parse_array(struct toml_parser *ps, struct toml_value *v, int depth)
{
    v->type = TOML_ARRAY;
    ps->p++; /* [ */
    for (;;) {
        skip_blank(ps);
        if (take(ps, ']')) return 0;
        struct toml_value *item = value_push(v, NULL);
        if (!item) return v->n >= MAX_ITEMS ? toml_fail(ps, "array too long") : -ENOMEM;
        int rc = parse_value(ps, item, depth + 1);
        if (rc) return rc;
        skip_blank(ps);
        if (take(ps, ',')) continue;
        if (peek(ps) != ']') return toml_fail(ps, "expected ',' or ']' in an array");
    }
}

/* "key =" and the blanks after it: the start of an assignment and of an inline table item. */
static int parse_key_equals(struct toml_parser *ps, char *key, size_t keylen)
{
    int rc = parse_key(ps, key, keylen);
    if (rc) return rc;
    if (peek(ps) != '=') return toml_fail(ps, "expected '=' after key \"%s\"", key);
    ps->p++;
    skip_ws(ps);
    return 0;
}

static int parse_inline_table(struct toml_parser *ps, struct toml_value *v, int depth)
{
    v->type = TOML_TABLE;
    ps->p++; /* { */
    for (;;) {
        skip_blank(ps); /* TOML wants one line; being lenient costs nothing */
        if (take(ps, '}')) return 0;
        char key[KEY_MAX * 2];
        int rc = parse_key_equals(ps, key, sizeof(key));
        if (rc) return rc;
        struct toml_value *item = value_push(v, key);
        if (!item) return v->n >= MAX_ITEMS ? toml_fail(ps, "inline table too long") : -ENOMEM;
        rc = parse_value(ps, item, depth + 1);
        if (rc) return rc;
        skip_blank(ps);
        if (take(ps, ',')) continue;
        if (peek(ps) != '}') return toml_fail(ps, "expected ',' or '}' in an inline table");
    }
}

static bool word_at(const struct toml_parser *ps, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0 &&
           (ps->p + n == ps->end || !bare_key_char(ps->p[n]));
}

static int parse_value(struct toml_parser *ps, struct toml_value *v, int depth)
{
    if (depth > MAX_DEPTH) return toml_fail(ps, "values nested too deeply");
    char c = peek(ps);
    if (c == '"' || c == '\'') {
        char buf[STRING_MAX];
        int rc = parse_string(ps, buf, sizeof(buf));
        if (rc) return rc;
        v->type = TOML_STRING;
        v->s = strdup(buf);
        return v->s ? 0 : -ENOMEM;
    }
    if (c == '[') return parse_array(ps, v, depth);
    if (c == '{') return parse_inline_table(ps, v, depth);
    if (word_at(ps, "true") || word_at(ps, "false")) {
        v->type = TOML_BOOL;
        v->b = c == 't';
        ps->p += v->b ? 4 : 5;
        return 0;
    }
    /* numbers, dates, inf, nan: not used by what we read; skipped as a token */
    if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || word_at(ps, "inf") ||
          word_at(ps, "nan")))
        return toml_fail(ps, "expected a value");
    while (!at_end(ps) && (bare_key_char(*ps->p) || strchr(".:+", *ps->p)))
        ps->p++;
    v->type = TOML_OTHER;
    return 0;
}

/* "[name]" or "[[name]]", then the rest of its line. */
static int table_header(struct toml_parser *ps, const struct toml_handler *h, void *ctx)
{
    bool array = ps->p + 1 < ps->end && ps->p[1] == '[';
    ps->p += array ? 2 : 1;
    char name[KEY_MAX * 2];
    int rc = parse_key(ps, name, sizeof(name));
    if (rc) return rc;
    if (peek(ps) != ']' || (array && (ps->p + 1 >= ps->end || ps->p[1] != ']')))
        return toml_fail(ps, "expected ']' after the table name");
    ps->p += array ? 2 : 1;
    rc = h->table(ctx, ps, name, array);
    return rc ? rc : expect_eol(ps);
}

/* "key = value", then the rest of its line. */
static int assignment(struct toml_parser *ps, const struct toml_handler *h, void *ctx)
{
    char key[KEY_MAX * 2];
    int rc = parse_key_equals(ps, key, sizeof(key));
    if (rc) return rc;
    struct toml_value v = {0};
    rc = parse_value(ps, &v, 0);
    if (!rc) rc = h->assign(ctx, ps, key, &v);
    toml_value_free(&v);
    return rc ? rc : expect_eol(ps);
}

int toml_parse(const char *text, size_t len, const struct toml_handler *h, void *ctx, char *err,
               size_t errlen)
{
    if (memchr(text, '\0', len)) {
        if (err && errlen) snprintf(err, errlen, "NUL byte in the file");
        return -EINVAL;
    }
    struct toml_parser ps = {.p = text, .end = text + len, .line = 1, .err = err, .errlen = errlen};
    for (;;) {
        skip_blank(&ps);
        if (at_end(&ps)) return 0;
        int rc = peek(&ps) == '[' ? table_header(&ps, h, ctx) : assignment(&ps, h, ctx);
        if (rc) return rc;
    }
}
