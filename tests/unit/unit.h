/*
 * Minimal unit-test support: CHECK macros count passes and failures (printing each failure
 * with its location), and unit_report() prints "N passed, M failed" and gives the exit status.
 */
#ifndef REGISTRYFS_UNIT_H
#define REGISTRYFS_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed;
static int unit_failed;

static inline void unit_check(int ok, const char *file, int line, const char *expr)
{
    if (ok) {
        unit_passed++;
        return;
    }
    unit_failed++;
    fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, expr);
}

#define CHECK(cond) unit_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond)

#define CHECK_INT(actual, expected)                                                                \
    do {                                                                                           \
        long long unit_a_ = (long long)(actual), unit_e_ = (long long)(expected);                  \
        unit_check(unit_a_ == unit_e_, __FILE__, __LINE__, #actual " == " #expected);              \
        if (unit_a_ != unit_e_)                                                                    \
            fprintf(stderr, "    got %lld, expected %lld\n", unit_a_, unit_e_);                    \
    } while (0)

#define CHECK_STR(actual, expected)                                                                \
    do {                                                                                           \
        const char *unit_a_ = (actual), *unit_e_ = (expected);                                     \
        int unit_ok_ = unit_a_ && unit_e_ && strcmp(unit_a_, unit_e_) == 0;                        \
        unit_check(unit_ok_, __FILE__, __LINE__, #actual " == " #expected);                        \
        if (!unit_ok_)                                                                             \
            fprintf(stderr, "    got \"%s\", expected \"%s\"\n", unit_a_ ? unit_a_ : "(null)",     \
                    unit_e_ ? unit_e_ : "(null)");                                                 \
    } while (0)

/* Prints the summary line; the exit status for main. */
static inline int unit_report(void)
{
    printf("%d passed, %d failed\n", unit_passed, unit_failed);
    fflush(stdout);
    return unit_failed ? 1 : 0;
}

#endif
