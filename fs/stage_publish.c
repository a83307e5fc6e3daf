/* Commits of staged files and publication of complete images. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/blobcache.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "fs/host.h"
#include "fs/publish_rule.h"
#include "fs/stage.h"
#include "fs/backend.h"
#include "fs/prefill.h"
#include "fs/progress.h"
#include "fs/upstream.h"
#include "transport/registry_write.h"

static int fail(struct stage *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records why the image cannot be published, logs it once, and returns rc for the tool. */
static int fail(struct stage *s, int rc, const char *fmt, ...)
{
    char reason[sizeof(s->reason)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap); /* fmt's arguments may be s->reason itself */
    va_end(ap);
    pthread_mutex_lock(&s->lock);
    memcpy(s->reason, reason, sizeof(reason));
    s->status = STAGE_FAILED;
    pthread_mutex_unlock(&s->lock);
    log_error("%s/%s:%s: not published: %s", s->host->name, s->repo, s->tag, reason);
    return rc;
}

static void note_waiting(struct stage *s, const char *fmt, const char *what)
{
    pthread_mutex_lock(&s->lock);
    snprintf(s->reason, sizeof(s->reason), fmt, what);
    pthread_mutex_unlock(&s->lock);
}

/* The content hash of a written file: the running hash when writes were sequential. */
static int content_hex(struct staged_file *f, char hex[SHA256_HEX_LEN + 1])
{
    int known = stage_known_verdict(f);
    if (known < 0) return known;
    if (known) { /* equal to a verified copy of the blob its name says */
        memcpy(hex, f->hex, SHA256_HEX_LEN + 1);
        return 0;
    }
    if (!f->hash_broken && f->hashed == f->size && f->hash.md) {
        sha256_end_hex(&f->hash, hex);
        sha256_begin(&f->hash); /* a later rewrite starts over */
        f->hashed = 0;
        f->hash_broken = f->size != 0;
        return 0;
    }
    return sha256_hex_of_fd(f->fd, f->size, hex);
}

static int read_small(struct staged_file *f, struct buf *out)
{
    if (f->size > MANIFEST_MAX_BYTES) return -EFBIG;
    buf_reset(out);
    out->limit = MANIFEST_MAX_BYTES;
    char chunk[65536];
    for (uint64_t off = 0; off < f->size;) {
        /* not f->fd: rsync's .HEX.manifest.json.XXXXXX may have been compared with a copy of
         * that blob at hand rather than spilled (fs/stage_known.c) */
        ssize_t n = stage_file_read(f, chunk, sizeof(chunk), off);
        if (n <= 0) return n < 0 ? (int)n : -EIO;
        int rc = buf_append(out, chunk, (size_t)n);
        if (rc) return rc;
        off += (uint64_t)n;
    }
    return 0;
}

/* Makes blob hex present in the stage's repository: already there, cross-mounted from a
 * repository known to hold it, or uploaded from fd (when fd >= 0). */
static int ensure_blob(struct stage *s, const char *hex, const char *from, int fd, uint64_t size)
{
    int rc = upstream_blob_present(s->host, s->repo, hex, from, size);
    if (rc != -ENOENT || fd < 0) return rc;
    char digest[DIGEST_STR_LEN + 1];
    snprintf(digest, sizeof(digest), DIGEST_PREFIX "%s", hex);
    struct xfer_label l = {.host = s->host->name, .repo = s->repo, .tag = s->tag, .hex = hex};
    struct xfer *x = progress_begin(s->host->progress, XFER_UPLOAD, &l, 0, size);
    struct upload_ctl ctl = {.sent = progress_counter(x)};
    rc = backend_upload_blob(s->host, s->repo, digest, fd, size, &ctl);
    progress_end(x, rc);
    return rc;
}

static int upload_failed(struct stage *s, const struct staged_file *f, int rc)
{
    return fail(s, rc == -ENOENT || rc == -EBADMSG ? -EIO : rc, "blob %s: upload failed: %s",
                f->hex, strerror(-rc));
}

/* A verified blob: into the cache, and on its way into the registry. A remote upload runs in
 * the background (the publication waits for it); a storage tree links it at once. */
/* A staged blob stays in the cache until the push is published (the stage is freed then):
 * pinned before it gets there, so eviction never sees it unpinned. */
static void pin_staged(struct stage *s, struct staged_file *f)
{
    if (f->pinned_in && strcmp(f->pinned_hex, f->hex) == 0) return;
    if (f->pinned_in) blobcache_unpin(f->pinned_in, f->pinned_hex); /* renamed to another blob */
    blobcache_pin(s->host->blobs, f->hex);
    f->pinned_in = s->host->blobs;
    memcpy(f->pinned_hex, f->hex, sizeof(f->pinned_hex));
}

/* Published: the pushed blobs are ordinary cache from now on (the stage itself may linger).
 * Called with s->commit held, like pin_staged. */
static void unpin_published(struct stage *s)
{
    pthread_mutex_lock(&s->lock);
    for (struct staged_file *f = s->files; f; f = f->next) {
        if (!f->pinned_in) continue;
        blobcache_unpin(f->pinned_in, f->pinned_hex);
        f->pinned_in = NULL;
    }
    pthread_mutex_unlock(&s->lock);
}

static int send_blob(struct stage *s, struct staged_file *f)
{
    pin_staged(s, f);
    /* Keep the verified bytes: the cache then serves them, and a re-push reads them there. */
    if (f->spill[0] && blobcache_adopt(s->host->blobs, f->spill, f->hex) == 0) f->spill[0] = '\0';
    if (!s->host->local_root && !upstream_hex(f) && prefill_covers(s, f->hex)) return 0;
    if (!s->host->local_root && upstream_release(s->host, s->repo, s->tag, f) == 0) return 0;
    int rc = ensure_blob(s, f->hex, NULL, f->fd, f->size);
    if (rc) return upload_failed(s, f, rc);
    host_blob_home_set(s->host, f->hex, s->repo);
    return 0;
}

static int commit_blob(struct stage *s, struct staged_file *f)
{
    if (f->is_ref) {
        if (strcmp(f->ref_hex, f->hex) != 0)
            return fail(s, -EIO, "%s was linked from blob %s", f->name, f->ref_hex);
        int rc = ensure_blob(s, f->hex, f->ref_repo, -1, f->size);
        return rc ? fail(s, rc == -ENOENT ? -EIO : rc, "blob %s: cannot mount it from %s: %s",
                         f->hex, f->ref_repo, strerror(-rc))
                  : 0;
    }
    const char *job_hex = upstream_hex(f);
    if (job_hex && strcmp(job_hex, f->hex) != 0) upstream_cancel(f); /* renamed to another blob */
    upstream_seal(f); /* before content_hex consumes the hash */
    char actual[SHA256_HEX_LEN + 1];
    int rc = content_hex(f, actual);
    if (rc) return fail(s, rc, "%s: cannot hash it: %s", f->name, strerror(-rc));
    if (strcmp(actual, f->hex) != 0) {
        log_error("%s/%s:%s: blob %s has content sha256:%s; dropped", s->host->name, s->repo,
                  s->tag, f->hex, actual);
        upstream_cancel(f);
        stage_unlink(s, f->name);
        return -EIO;
    }
    return send_blob(s, f);
}

/* Committed blobs with bytes of their own, referenced; *n of them. */
static struct staged_file **committed_blobs(struct stage *s, size_t *n)
{
    size_t cap = 0;
    pthread_mutex_lock(&s->lock);
    for (struct staged_file *f = s->files; f; f = f->next)
        cap++;
    struct staged_file **out = calloc(cap ? cap : 1, sizeof(*out));
    *n = 0;
    for (struct staged_file *f = s->files; f && out; f = f->next) {
        if (f->role != ROLE_BLOB || !f->committed || f->is_ref) continue;
        f->refs++;
        out[(*n)++] = f;
    }
    pthread_mutex_unlock(&s->lock);
    return out;
}

/* The upload a publication waits for: the blob's own job, or the prefill that sends it; what
 * failed is uploaded again from the verified file, so that a fault the transport could not
 * ride out fails the publication only when a second try fails too. */
static int await_blob(struct stage *s, struct staged_file *f)
{
    int rc = upstream_wait(f);
    if (rc == -ENOENT) rc = prefill_wait(s, f->hex);
    if (rc == 0 || rc == -ENOENT) return 0; /* sent at commit, or by a job now done */
    log_warn("%s/%s:%s: blob %s: background upload failed (%s); trying again", s->host->name,
             s->repo, s->tag, f->hex, strerror(-rc));
    rc = ensure_blob(s, f->hex, NULL, f->fd, f->size);
    if (rc == 0) {
        host_blob_home_set(s->host, f->hex, s->repo);
        return 0;
    }
    f->committed = false;
    return upload_failed(s, f, rc);
}

/* The publication needs every blob in the registry: waits for the background uploads. */
static int await_uploads(struct stage *s)
{
    size_t n;
    struct staged_file **files = committed_blobs(s, &n);
    if (!files) return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) rc = await_blob(s, files[i]);
        staged_file_put(s, files[i]);
    }
    free(files);
    return rc;
}

/* The second of version and manifest.json to be committed declares the image finished:
 * skopeo writes manifest.json last, rsync and tar --sort=name write version last. */
static bool is_committed(struct stage *s, const char *name)
{
    struct staged_file *f = staged_file_get(s, name);
    bool committed = f && f->committed;
    if (f) staged_file_put(s, f);
    return committed;
}

static int commit_locked(struct stage *s, struct staged_file *f, bool *declaring)
{
    struct buf bytes;
    buf_init(&bytes, MANIFEST_MAX_BYTES);
    int rc = 0;
    switch (f->role) {
    case ROLE_TEMP:
        break;
    case ROLE_VERSION:
        rc = read_small(f, &bytes);
        if (rc || bytes.len != strlen(DIR_VERSION_TEXT) ||
            memcmp(bytes.data, DIR_VERSION_TEXT, bytes.len) != 0)
            rc = fail(s, -EIO, "version is not \"Directory Transport Version: 1.1\"");
        else
            *declaring = is_committed(s, "manifest.json");
        break;
    case ROLE_MANIFEST:
    case ROLE_INSTANCE: {
        rc = read_small(f, &bytes);
        if (rc) {
            rc = fail(s, -EIO, "%s: %s", f->name, strerror(-rc));
            break;
        }
        char hex[SHA256_HEX_LEN + 1], err[200];
        struct manifest m;
        sha256_hex_of(bytes.data ? bytes.data : "", bytes.len, hex);
        if (f->role == ROLE_INSTANCE && strcmp(hex, f->hex) != 0) {
            rc = fail(s, -EIO, "%s has content sha256:%s", f->name, hex);
        } else if (manifest_parse(bytes.data ? bytes.data : "", bytes.len, NULL, &m, err,
                                  sizeof(err))) {
            rc = fail(s, -EIO, "%s: %s", f->name, err);
        } else {
            manifest_free(&m);
            if (f->role == ROLE_MANIFEST) *declaring = is_committed(s, "version");
        }
        break;
    }
    case ROLE_BLOB:
        rc = commit_blob(s, f);
        break;
    }
    buf_free(&bytes);
    if (rc == 0) {
        f->committed = true;
        f->dirty = false;
    }
    return rc;
}

/* A file committed into a published stage that lingers: the image is open again (the file may
 * change it; publish() sends nothing when it does not). Called with s->commit held. */
static void reopen_if_published(struct stage *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->status == STAGE_PUBLISHED) {
        s->status = STAGE_OPEN;
        __atomic_store_n(&s->linger_until_ms, 0, __ATOMIC_RELEASE); /* listed while open */
    }
    pthread_mutex_unlock(&s->lock);
}

int stage_commit(struct stage *s, struct staged_file *f)
{
    bool declaring = false;
    pthread_mutex_lock(&s->commit);
    if (f->dirty) reopen_if_published(s);
    int rc = f->dirty ? commit_locked(s, f, &declaring) : 0;
    pthread_mutex_unlock(&s->commit);
    if (rc) return rc;
    return stage_try_publish(s, declaring);
}

/* What the publication needs, gathered under the stage lock. */
struct snapshot {
    bool has_version;
    bool pending; /* a final-named file still open or not committed */
    bool open;    /* ... because a writer still has it open */
    char pending_name[NAME_MAX + 1];
    struct buf manifest; /* the staged, committed manifest.json */
    bool base_manifest;  /* the published manifest.json is still in place (not replaced) */
    bool base_names;     /* every staged file (temporaries aside) is a file of the published
                            image under the same name: blobs and instances are named by their
                            digest, so the image is unchanged */
};

static void take_snapshot(struct stage *s, struct snapshot *snap)
{
    memset(snap, 0, sizeof(*snap));
    buf_init(&snap->manifest, MANIFEST_MAX_BYTES);
    struct staged_file *manifest = NULL;
    pthread_mutex_lock(&s->lock);
    snap->base_names = s->base != NULL;
    for (struct staged_file *f = s->files; f; f = f->next) {
        if (f->role == ROLE_TEMP) continue;
        if (snap->base_names && (f->role == ROLE_MANIFEST || !image_view_find(s->base, f->name)))
            snap->base_names = false;
        if (f->writers || !f->committed) {
            snap->pending = true;
            snap->open = f->writers > 0;
            snprintf(snap->pending_name, sizeof(snap->pending_name), "%s", f->name);
        }
        if (f->role == ROLE_VERSION) snap->has_version = true;
        if (f->role == ROLE_MANIFEST) manifest = f;
    }
    /* The published version still counts; the published manifest does not: republishing it
     * would undo an overwrite in progress, and publishing it unchanged is pointless. */
    snap->has_version |= s->base && !strlist_contains_sorted(&s->hidden, "version");
    snap->base_manifest = s->base && !strlist_contains_sorted(&s->hidden, "manifest.json");
    if (manifest && manifest->committed) read_small(manifest, &snap->manifest);
    pthread_mutex_unlock(&s->lock);
}

/* A blob the manifest needs: committed here with the right size, or in the registry. */
static int check_blob(struct stage *s, const struct descriptor *d, bool *missing)
{
    const char *hex = d->digest + strlen(DIGEST_PREFIX);
    struct staged_file *f = staged_file_get(s, hex);
    if (f) {
        uint64_t size = f->size;
        staged_file_put(s, f);
        if (size != d->size)
            return fail(s, -EIO, "blob %s is %llu bytes, the manifest says %llu", hex,
                        (unsigned long long)size, (unsigned long long)d->size);
        return 0;
    }
    int rc = ensure_blob(s, hex, NULL, -1, d->size);
    if (rc == -ENOENT) {
        *missing = true;
        note_waiting(s, "waiting for blob %s", hex);
        return 0;
    }
    if (rc == -EBADMSG)
        return fail(s, -EIO, "blob %s has another size in the registry than the manifest says",
                    hex);
    return rc ? fail(s, rc, "blob %s: %s", hex, strerror(-rc)) : 0;
}

static int check_image_blobs(struct stage *s, const struct manifest *m, bool *missing)
{
    int rc = check_blob(s, &m->config, missing);
    for (size_t i = 0; i < m->n_layers && rc == 0; i++)
        rc = check_blob(s, &m->layers[i], missing);
    return rc;
}

/* Instance bytes: staged HEX.manifest.json, else the cache or the registry. */
static int instance_bytes(struct stage *s, const struct descriptor *d, struct buf *out,
                          bool *staged)
{
    char name[NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s.manifest.json", d->digest + strlen(DIGEST_PREFIX));
    struct staged_file *f = staged_file_get(s, name);
    *staged = f != NULL;
    if (f) {
        int rc = read_small(f, out);
        staged_file_put(s, f);
        return rc;
    }
    return host_manifest(s->host, s->repo, d->digest, out);
}

static int put_manifest(struct stage *s, const char *ref, const struct buf *bytes,
                        const char *media_type)
{
    int rc = backend_put_manifest(s->host, s->repo, ref, media_type, bytes->data, bytes->len);
    return rc ? fail(s, rc, "PUT manifest %s: %s", ref, strerror(-rc)) : 0;
}

/* Checks every instance of an index and publishes the staged ones by digest. */
static int publish_instances(struct stage *s, const struct manifest *index, bool check_only,
                             bool *missing)
{
    int rc = 0;
    for (size_t i = 0; i < index->n_manifests && rc == 0 && !*missing; i++) {
        const struct descriptor *d = &index->manifests[i];
        struct buf bytes;
        struct manifest m;
        char err[200];
        bool staged;
        buf_init(&bytes, MANIFEST_MAX_BYTES);
        rc = instance_bytes(s, d, &bytes, &staged);
        if (rc == -ENOENT) {
            *missing = true;
            note_waiting(s, "waiting for %s.manifest.json", d->digest + strlen(DIGEST_PREFIX));
            rc = 0;
        } else if (rc == 0 && manifest_parse(bytes.data ? bytes.data : "", bytes.len, NULL, &m, err,
                                             sizeof(err))) {
            rc = fail(s, -EIO, "instance %s: %s", d->digest, err);
        } else if (rc == 0) {
            if (m.kind != MANIFEST_IMAGE)
                rc = fail(s, -EIO, "instance %s is itself an index", d->digest);
            else if (check_only)
                rc = check_image_blobs(s, &m, missing);
            else if (staged)
                rc = put_manifest(s, d->digest, &bytes, m.media_type);
            manifest_free(&m);
        }
        buf_free(&bytes);
    }
    return rc;
}

/* Called with s->commit held. */
static int publish(struct stage *s, const struct buf *bytes, const struct manifest *m)
{
    bool missing = false;
    char digest[DIGEST_STR_LEN + 1] = DIGEST_PREFIX;
    sha256_hex_of(bytes->data, bytes->len, digest + strlen(DIGEST_PREFIX));
    /* a lingering stage completed again by a late file of its writer: already sent */
    bool again = strcmp(digest, s->published_digest) == 0;
    int rc = await_uploads(s);
    if (rc == 0 && !again && m->kind == MANIFEST_INDEX)
        rc = publish_instances(s, m, false, &missing);
    if (rc == 0 && !again) rc = put_manifest(s, s->tag, bytes, m->media_type);
    if (rc) return rc;
    pthread_mutex_lock(&s->lock);
    s->status = STAGE_PUBLISHED;
    s->reason[0] = '\0';
    pthread_mutex_unlock(&s->lock);
    memcpy(s->published_digest, digest, sizeof(digest));
    unpin_published(s);
    if (again) return 0;
    log_info("%s/%s:%s: published", s->host->name, s->repo, s->tag);
    host_invalidate_repo(s->host, s->repo, s->tag);
    if (s->base) { /* the registry's image is what the directory shows from now on */
        stage_forget(s);
        return 0;
    }
    __atomic_store_n(&s->linger_until_ms, monotonic_ms_now() + STAGE_LINGER_MS, __ATOMIC_RELEASE);
    return 0;
}

/* The writer rewrote files of a published tag but not its manifest.json (rsync -a or cp -rT of
 * the same image, after a publication by an earlier file): the directory still shows the
 * published image, so it is done without sending anything (a re-run is a clean no-op). */
static int keep_published(struct stage *s)
{
    pthread_mutex_lock(&s->lock);
    s->status = STAGE_PUBLISHED;
    s->reason[0] = '\0';
    pthread_mutex_unlock(&s->lock);
    log_debug("%s/%s:%s: unchanged, nothing to publish", s->host->name, s->repo, s->tag);
    stage_forget(s);
    return 0;
}

/* When the writer declares the image done, files whose commit failed earlier (the registry
 * was away) are committed again: a retry that finds nothing to re-send still publishes. */
static int recommit_failed(struct stage *s)
{
    for (;;) {
        struct staged_file *f = NULL;
        pthread_mutex_lock(&s->lock);
        for (struct staged_file *g = s->files; g && !f; g = g->next)
            if (g->role != ROLE_TEMP && !g->committed && !g->writers) f = g;
        if (f) f->refs++;
        pthread_mutex_unlock(&s->lock);
        if (!f) return 0;
        bool ignored;
        f->dirty = true;
        int rc = commit_locked(s, f, &ignored);
        staged_file_put(s, f);
        if (rc) return rc;
    }
}

/* STEP_CHECK_MANIFEST: the staged manifest parses, its blobs are looked for, and the image is
 * published, waits, or fails as publish_after_check says. */
static int check_and_publish(struct stage *s, const struct snapshot *snap, bool declaring)
{
    struct manifest m;
    char err[200];
    bool missing = false;
    if (manifest_parse(snap->manifest.data, snap->manifest.len, NULL, &m, err, sizeof(err)))
        return fail(s, -EIO, "manifest.json: %s", err);
    int rc = m.kind == MANIFEST_INDEX ? publish_instances(s, &m, true, &missing)
                                      : check_image_blobs(s, &m, &missing);
    if (rc == 0) {
        switch (publish_after_check(missing, snap->has_version, declaring)) {
        case AFTER_WAIT:
            if (!missing) note_waiting(s, "waiting for %s", "version");
            break;
        case AFTER_FAIL_MISSING:
            rc = fail(s, -EIO, "%s", s->reason);
            break;
        case AFTER_FAIL_NO_VERSION:
            rc = fail(s, -EIO, "the image has no version");
            break;
        case AFTER_PUBLISH:
            rc = publish(s, &snap->manifest, &m);
            break;
        }
    }
    manifest_free(&m);
    return rc;
}

int stage_try_publish(struct stage *s, bool declaring)
{
    pthread_mutex_lock(&s->commit);
    struct snapshot snap;
    int rc = declaring && s->status != STAGE_PUBLISHED ? recommit_failed(s) : 0;
    take_snapshot(s, &snap);
    struct publish_facts facts = {
        .published = s->status == STAGE_PUBLISHED,
        .pending = snap.pending,
        .has_manifest = snap.manifest.len > 0,
        .base_manifest = snap.base_manifest,
        .base_names = snap.base_names,
        .has_version = snap.has_version,
        .declaring = declaring,
    };
    switch (rc ? STEP_NONE : publish_first_step(&facts)) {
    case STEP_NONE:
        break;
    case STEP_FAIL_PENDING:
        rc = fail(s, -EIO, "%s %s", snap.pending_name,
                  snap.open ? "is still being written" : "was not committed");
        break;
    case STEP_FAIL_NO_MANIFEST:
        rc = fail(s, -EIO, "the image has no manifest.json");
        break;
    case STEP_KEEP_PUBLISHED:
        rc = keep_published(s);
        break;
    case STEP_CHECK_MANIFEST:
        rc = check_and_publish(s, &snap, declaring);
        break;
    }
    buf_free(&snap.manifest);
    pthread_mutex_unlock(&s->commit);
    return rc;
}
