/*
 * The subset of TOML that containers-registries.conf(5) files use: tables, arrays of tables,
 * bare/quoted and dotted keys, basic and literal strings (no multi-line ones), booleans,
 * numbers/dates (skipped as tokens), arrays and inline tables. The document is handed to the
 * caller as a stream of table headers and key = value pairs; what they mean is the caller's.
 * Anything it cannot parse fails the whole text with "line N: why", so a typo is never read
 * as something else. Bounded: nesting, items per array or table, key and string lengths.
 */
#ifndef REGISTRYFS_TOML_SUBSET_H
#define REGISTRYFS_TOML_SUBSET_H

#include <stdbool.h>
#include <stddef.h>

enum toml_type { TOML_STRING, TOML_BOOL, TOML_OTHER, TOML_ARRAY, TOML_TABLE };

/* A parsed value; TOML_OTHER stands for numbers, dates, inf and nan, whose text is dropped. */
struct toml_value {
    enum toml_type type;
    char *s;                  /* TOML_STRING */
    bool b;                   /* TOML_BOOL */
    struct toml_value *items; /* TOML_ARRAY, TOML_TABLE */
    char **keys;              /* TOML_TABLE: the key of each item */
    size_t n, cap;
};

struct toml_parser;

/* What the caller does with the document. Each returns 0 or an error (-EINVAL through
 * toml_fail, so that the message carries the line), which ends the parse. */
struct toml_handler {
    /* "[name]" (array false) or "[[name]]" (array true); dotted names joined with '.' */
    int (*table)(void *ctx, struct toml_parser *ps, const char *name, bool array);
    /* "key = value" in the current table; v is freed after the call */
    int (*assign)(void *ctx, struct toml_parser *ps, const char *key, const struct toml_value *v);
};

/* Parses text (no NUL bytes), calling h with ctx. 0; -EINVAL with "line N: why" in err (a NUL
 * byte: "NUL byte in the file"); -ENOMEM; or what a handler returned. */
int toml_parse(const char *text, size_t len, const struct toml_handler *h, void *ctx, char *err,
               size_t errlen) __attribute__((warn_unused_result));

/* For handlers: the error "line N: " + fmt in err (the first one only). Returns -EINVAL. */
int toml_fail(struct toml_parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether toml_fail was called: -EINVAL, not -ENOMEM, is then the parse's result. */
bool toml_failed(const struct toml_parser *ps);

void toml_value_free(struct toml_value *v);

#endif
