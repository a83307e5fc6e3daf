#include "fs/status_print.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define FIELD_MAX 300 /* longest string printed from the document (a repository is ≤ 255) */

void status_human_bytes(uint64_t n, char *out, size_t outlen)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, outlen, "%llu B", (unsigned long long)n);
    else
        snprintf(out, outlen, "%.1f %s", v, units[u]);
}

static void human_seconds(double s, char *out, size_t outlen)
{
    unsigned long long t = (unsigned long long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, outlen, "%lluh%02llum", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(out, outlen, "%llum%02llus", t / 60, t % 60);
    else
        snprintf(out, outlen, "%llus", t);
}

/* A non-negative finite number of the object, or -1 (absent, null, anything else). */
static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) return -1;
    return v->valuedouble > 1e18 ? 1e18 : v->valuedouble;
}

static const char *str(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : dflt;
}

static void image_of(const cJSON *t, char *out, size_t outlen)
{
    const char *tag = str(t, "tag", NULL), *digest = str(t, "digest", "?");
    if (tag)
        snprintf(out, outlen, "%.*s/%.*s:%.*s", FIELD_MAX, str(t, "host", "?"), FIELD_MAX,
                 str(t, "repo", "?"), FIELD_MAX, tag);
    else
        snprintf(out, outlen, "%.*s/%.*s@%.19s", FIELD_MAX, str(t, "host", "?"), FIELD_MAX,
                 str(t, "repo", "?"), digest);
}

static void print_row(FILE *out, const cJSON *t)
{
    char image[1024], done[64], total[24] = "?", rate[32] = "-", eta[24] = "-";
    image_of(t, image, sizeof(image));
    double d = num(t, "done"), tot = num(t, "total"), r = num(t, "rate"), e = num(t, "eta");
    status_human_bytes(d > 0 ? (uint64_t)d : 0, done, sizeof(done));
    if (tot >= 0) status_human_bytes((uint64_t)tot, total, sizeof(total));
    if (r > 0) {
        status_human_bytes((uint64_t)r, rate, sizeof(rate) - 2);
        strcat(rate, "/s");
    }
    if (e >= 0) human_seconds(e, eta, sizeof(eta));
    const char *dir = str(t, "direction", "?"), *state = str(t, "state", "?");
    const char *digest = str(t, "digest", "");
    const char *hex = strchr(digest, ':') ? strchr(digest, ':') + 1 : digest;
    fprintf(out, "%-8.8s  %-40s  %-12.12s  %21s  %12s  %6s  %.20s", dir, image, hex,
            strcat(strcat(done, " / "), total), rate, eta, state);
    if (strcmp(state, "failed") == 0) fprintf(out, ": %.100s", str(t, "error", "?"));
    if (strcmp(dir, "copy") == 0) fprintf(out, "  (from %.*s)", 2 * FIELD_MAX, str(t, "from", "?"));
    fputc('\n', out);
}

struct totals {
    double done, total, rate, left;
    unsigned running, done_n, failed;
    bool total_known;
};

static void add_up(const cJSON *list, struct totals *s)
{
    const cJSON *t;
    s->total_known = true;
    cJSON_ArrayForEach(t, list)
    {
        double d = num(t, "done"), tot = num(t, "total");
        const char *state = str(t, "state", "?");
        bool running = strcmp(state, "running") == 0;
        s->done += d > 0 ? d : 0;
        s->total += tot >= 0 ? tot : (d > 0 ? d : 0);
        s->total_known = s->total_known && tot >= 0;
        s->running += running;
        s->done_n += strcmp(state, "done") == 0;
        s->failed += strcmp(state, "failed") == 0;
        if (running && num(t, "rate") > 0) s->rate += num(t, "rate");
        if (running && tot >= 0 && d >= 0 && tot > d) s->left += tot - d;
    }
}

void status_print_table(FILE *out, const cJSON *doc)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "transfers");
    if (!cJSON_GetArraySize(list)) {
        fprintf(out, "No transfers running or ended in the last minute.\n");
        return;
    }
    struct totals s = {0};
    add_up(list, &s);
    char done[24], total[24], rate[24], eta[24] = "-";
    status_human_bytes((uint64_t)s.done, done, sizeof(done));
    status_human_bytes((uint64_t)s.total, total, sizeof(total));
    status_human_bytes((uint64_t)s.rate, rate, sizeof(rate));
    if (s.rate > 0 && s.running) human_seconds(s.left / s.rate, eta, sizeof(eta));
    fprintf(out, "Transferred: %s / %s%s, %.0f%%, %s/s, ETA %s\n", done, total,
            s.total_known ? "" : " (so far)", s.total > 0 ? 100.0 * s.done / s.total : 100.0, rate,
            eta);
    fprintf(out, "Transfers:   %u running, %u done, %u failed\n\n", s.running, s.done_n, s.failed);
    fprintf(out, "%-8s  %-40s  %-12s  %21s  %12s  %6s  %s\n", "DIR", "IMAGE", "BLOB",
            "DONE / TOTAL", "RATE", "ETA", "STATE");
    const cJSON *t;
    cJSON_ArrayForEach(t, list) if (cJSON_IsObject(t)) print_row(out, t);
    double omitted = num(doc, "omitted");
    if (omitted > 0) fprintf(out, "(%.0f more not shown)\n", omitted);
}
