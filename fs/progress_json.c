/* The transfer table as JSON (the format is documented in docs/status.md). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "fs/progress_internal.h"

#define RATE_WINDOW_MS 5000 /* the rate of a running transfer: over about the last 5 s */
#define SAMPLE_EVERY_MS 500

static const char *const dir_names[] = {"download", "upload", "copy"};
static const char *const state_names[] = {"running", "done", "failed", "stopped"};

/* Called with the table's lock held: remembers (now, done) for later snapshots. */
static void sample(struct xfer *x, int64_t now, uint64_t done)
{
    unsigned last = (x->n_samples + RATE_SAMPLES - 1) % RATE_SAMPLES;
    if (x->n_samples && now - x->sample_ms[last] < SAMPLE_EVERY_MS) return;
    unsigned slot = x->n_samples % RATE_SAMPLES;
    x->sample_ms[slot] = now;
    x->sample_done[slot] = done;
    x->n_samples++;
}

/* Bytes per second: a finished transfer's average; a running one's over the samples of the
 * last RATE_WINDOW_MS (snapshots taken every second, as --watch does), else since its start. */
static double rate_of(struct xfer *x, int64_t now, uint64_t done)
{
    if (x->state != XFER_RUNNING) {
        int64_t ms = x->end_ms - x->start_ms;
        return ms > 0 && done > x->start_done ? (double)(done - x->start_done) * 1000.0 / ms : 0;
    }
    int64_t from_ms = x->start_ms;
    uint64_t from_done = x->start_done;
    unsigned n = x->n_samples < RATE_SAMPLES ? x->n_samples : RATE_SAMPLES;
    for (unsigned i = 0; i < n; i++) {
        unsigned slot = (x->n_samples - n + i) % RATE_SAMPLES; /* oldest first */
        if (now - x->sample_ms[slot] <= RATE_WINDOW_MS && now - x->sample_ms[slot] >= 900) {
            from_ms = x->sample_ms[slot];
            from_done = x->sample_done[slot];
            break;
        }
    }
    sample(x, now, done);
    int64_t ms = now - from_ms;
    return ms > 0 && done > from_done ? (double)(done - from_done) * 1000.0 / ms : 0;
}

static void add_label(cJSON *o, const struct xfer *x)
{
    char digest[DIGEST_STR_LEN + 1];
    snprintf(digest, sizeof(digest), DIGEST_PREFIX "%s", x->hex);
    cJSON_AddNumberToObject(o, "id", (double)x->id);
    cJSON_AddStringToObject(o, "direction", dir_names[x->dir]);
    cJSON_AddStringToObject(o, "host", x->host);
    cJSON_AddStringToObject(o, "repo", x->repo);
    if (x->tag[0])
        cJSON_AddStringToObject(o, "tag", x->tag);
    else
        cJSON_AddNullToObject(o, "tag");
    cJSON_AddStringToObject(o, "digest", digest);
    if (x->from[0]) cJSON_AddStringToObject(o, "from", x->from);
}

/* Called with the table's lock held. */
static cJSON *entry_json(struct xfer *x, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    uint64_t done = __atomic_load_n(&x->done, __ATOMIC_RELAXED);
    uint64_t total = __atomic_load_n(&x->total, __ATOMIC_RELAXED);
    double rate = rate_of(x, now, done);
    add_label(o, x);
    cJSON_AddNumberToObject(o, "done", (double)done);
    if (total == PROGRESS_UNKNOWN)
        cJSON_AddNullToObject(o, "total");
    else
        cJSON_AddNumberToObject(o, "total", (double)total);
    cJSON_AddNumberToObject(o, "rate", (double)(uint64_t)rate);
    if (x->state == XFER_RUNNING && total != PROGRESS_UNKNOWN && rate >= 1 && total >= done)
        cJSON_AddNumberToObject(o, "eta", (double)(uint64_t)((double)(total - done) / rate + 0.5));
    else
        cJSON_AddNullToObject(o, "eta");
    cJSON_AddStringToObject(o, "state", state_names[x->state]);
    if (x->state == XFER_FAILED) cJSON_AddStringToObject(o, "error", strerror(-x->error));
    cJSON_AddNumberToObject(o, "started", (double)x->start_wall);
    int64_t end = x->state == XFER_RUNNING ? now : x->end_ms;
    cJSON_AddNumberToObject(o, "seconds", (double)(end - x->start_ms) / 1000.0);
    return o;
}

/* Adds o to arr unless that would take the document past `room` bytes (then frees it). */
static bool add_bounded(cJSON *arr, cJSON *o, size_t *room)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    size_t len = text ? strlen(text) + 1 : 0; /* and a comma */
    free(text);
    if (!text || len > *room) {
        cJSON_Delete(o);
        return false;
    }
    *room -= len;
    cJSON_AddItemToArray(arr, o);
    return true;
}

/* Running entries in the order they began, then finished ones, the latest first. */
static void add_entries(struct progress *p, cJSON *doc, cJSON *arr, int64_t now)
{
    size_t room = PROGRESS_JSON_MAX - 200, omitted = 0, running = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->items[i]->state != XFER_RUNNING) continue;
        running++;
        omitted += !add_bounded(arr, entry_json(p->items[i], now), &room);
    }
    for (size_t i = p->n; i-- > 0;)
        if (p->items[i]->state != XFER_RUNNING)
            omitted += !add_bounded(arr, entry_json(p->items[i], now), &room);
    cJSON_AddNumberToObject(doc, "running", (double)running);
    cJSON_AddNumberToObject(doc, "omitted", (double)omitted);
}

char *progress_json(struct progress *p)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    if (!doc || !arr) {
        cJSON_Delete(doc);
        cJSON_Delete(arr);
        return NULL;
    }
    cJSON_AddNumberToObject(doc, "version", 1);
    int64_t now = monotonic_ms_now();
    pthread_mutex_lock(&p->lock);
    progress_expire_locked(p, now, false);
    add_entries(p, doc, arr, now);
    pthread_mutex_unlock(&p->lock);
    cJSON_AddItemToObject(doc, "transfers", arr);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return text;
}
