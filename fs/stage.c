/* Stages: the files of images being written, before and while they are published. */
#include "fs/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/blobcache.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "fs/host.h"
#include "fs/prefill.h"
#include "fs/upstream.h"

static void stage_key(const char *repo, const char *tag, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s:%s", repo, tag);
}

/* The stage listed under key, unless it is a published one whose lingering ended: that one
 * is taken out of the map and returned through *expired (the caller drops the map's
 * reference outside the lock). Called with h->stages_lock held. */
static struct stage *listed_locked(struct host *h, const char *key, struct stage **expired)
{
    struct stage *s = strmap_get(&h->stages, key);
    int64_t until = s ? __atomic_load_n(&s->linger_until_ms, __ATOMIC_ACQUIRE) : 0;
    if (until && monotonic_ms_now() >= until) {
        strmap_remove(&h->stages, key);
        *expired = s;
        return NULL;
    }
    return s;
}

struct stage *stage_find(struct host *h, const char *repo, const char *tag)
{
    char key[REF_NAME_MAX + REF_TAG_MAX + 2];
    stage_key(repo, tag, key, sizeof(key));
    struct stage *expired = NULL;
    pthread_mutex_lock(&h->stages_lock);
    struct stage *s = listed_locked(h, key, &expired);
    if (s) stage_hold(s);
    pthread_mutex_unlock(&h->stages_lock);
    stage_put(expired);
    return s;
}

int stage_open(struct host *h, const char *repo, const char *tag, struct image_view *base,
               struct stage **out)
{
    if (!ref_valid_repo(repo) || !ref_valid_tag(tag)) return -EINVAL;
    char key[REF_NAME_MAX + REF_TAG_MAX + 2];
    stage_key(repo, tag, key, sizeof(key));
    struct stage *expired = NULL;
    pthread_mutex_lock(&h->stages_lock);
    struct stage *s = listed_locked(h, key, &expired);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) {
            pthread_mutex_unlock(&h->stages_lock);
            stage_put(expired);
            return -ENOMEM;
        }
        s->host = h;
        snprintf(s->repo, sizeof(s->repo), "%s", repo);
        snprintf(s->tag, sizeof(s->tag), "%s", tag);
        pthread_mutex_init(&s->lock, NULL);
        pthread_mutex_init(&s->commit, NULL);
        s->refs = 1; /* the host's */
        if (base) {
            image_view_hold(base);
            s->base = base;
        }
        if (strmap_set(&h->stages, key, s, NULL)) {
            pthread_mutex_unlock(&h->stages_lock);
            stage_put(s);
            stage_put(expired);
            return -ENOMEM;
        }
        log_debug("%s/%s:%s: writing started", h->name, repo, tag);
    }
    stage_hold(s);
    pthread_mutex_unlock(&h->stages_lock);
    stage_put(expired);
    *out = s;
    return 0;
}

static void free_file(struct staged_file *f)
{
    upstream_cancel(f);
    if (f->pinned_in) blobcache_unpin(f->pinned_in, f->pinned_hex);
    stage_known_close(f);
    if (f->fd >= 0) close(f->fd);
    if (f->spill[0]) unlink(f->spill);
    if (f->hash.md) sha256_abort(&f->hash);
    pthread_mutex_destroy(&f->io);
    free(f);
}

void stage_hold(struct stage *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
}

void stage_put(struct stage *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    while (s->files) {
        struct staged_file *f = s->files;
        s->files = f->next;
        free_file(f);
    }
    prefill_stop_all(s);
    image_view_put(s->base);
    strlist_free(&s->hidden);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->commit);
    free(s);
}

void stage_put_void(void *s)
{
    stage_put(s);
}

bool stage_shows_published_tag(struct stage *s)
{
    pthread_mutex_lock(&s->lock);
    bool published = s->base || s->status == STAGE_PUBLISHED;
    pthread_mutex_unlock(&s->lock);
    return published;
}

void stage_forget(struct stage *s)
{
    char key[REF_NAME_MAX + REF_TAG_MAX + 2];
    stage_key(s->repo, s->tag, key, sizeof(key));
    pthread_mutex_lock(&s->host->stages_lock);
    struct stage *listed = strmap_get(&s->host->stages, key);
    if (listed == s) strmap_remove(&s->host->stages, key);
    pthread_mutex_unlock(&s->host->stages_lock);
    if (listed == s) stage_put(s);
}

static bool is_hex_name(const char *name, size_t len)
{
    if (len != SHA256_HEX_LEN) return false;
    char hex[SHA256_HEX_LEN + 1];
    memcpy(hex, name, SHA256_HEX_LEN);
    hex[SHA256_HEX_LEN] = '\0';
    return ref_valid_hex(hex);
}

int stage_role_of(const char *name, enum staged_role *role, char hex[SHA256_HEX_LEN + 1])
{
    size_t len = strlen(name);
    hex[0] = '\0';
    if (strcmp(name, "version") == 0) {
        *role = ROLE_VERSION;
    } else if (strcmp(name, "manifest.json") == 0) {
        *role = ROLE_MANIFEST;
    } else if (is_hex_name(name, len)) {
        *role = ROLE_BLOB;
        memcpy(hex, name, SHA256_HEX_LEN + 1);
    } else if (len == SHA256_HEX_LEN + 14 && strcmp(name + SHA256_HEX_LEN, ".manifest.json") == 0 &&
               is_hex_name(name, SHA256_HEX_LEN)) {
        *role = ROLE_INSTANCE;
        memcpy(hex, name, SHA256_HEX_LEN);
        hex[SHA256_HEX_LEN] = '\0';
    } else if (name[0] == '.' || strncmp(name, "dir-put-blob", 12) == 0 ||
               strncmp(name, "Cu", 2) == 0) {
        *role = ROLE_TEMP;
    } else {
        return -EINVAL;
    }
    return 0;
}

bool stage_temp_blob_hex(const char *name, char hex[SHA256_HEX_LEN + 1])
{
    size_t len = strlen(name);
    if (len < SHA256_HEX_LEN + 3 || name[0] != '.' || name[SHA256_HEX_LEN + 1] != '.' ||
        !is_hex_name(name + 1, SHA256_HEX_LEN))
        return false;
    memcpy(hex, name + 1, SHA256_HEX_LEN);
    hex[SHA256_HEX_LEN] = '\0';
    return true;
}

/* Called with s->lock held. */
static struct staged_file *find_locked(struct stage *s, const char *name)
{
    for (struct staged_file *f = s->files; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

struct staged_file *staged_file_get(struct stage *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    struct staged_file *f = find_locked(s, name);
    if (f) f->refs++;
    pthread_mutex_unlock(&s->lock);
    return f;
}

void staged_file_hold(struct stage *s, struct staged_file *f)
{
    pthread_mutex_lock(&s->lock);
    f->refs++;
    pthread_mutex_unlock(&s->lock);
}

void staged_file_put(struct stage *s, struct staged_file *f)
{
    pthread_mutex_lock(&s->lock);
    bool last = --f->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) free_file(f);
}

void staged_file_writer_begin(struct staged_file *f)
{
    __atomic_add_fetch(&f->writers, 1, __ATOMIC_ACQ_REL);
}

void staged_file_writer_end(struct staged_file *f)
{
    __atomic_sub_fetch(&f->writers, 1, __ATOMIC_ACQ_REL);
}

/* Called with s->lock held: takes f out of the list and drops the list's reference. */
static void unlist_locked(struct stage *s, struct staged_file *f)
{
    for (struct staged_file **p = &s->files; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            if (--f->refs == 0) free_file(f);
            return;
        }
    }
}

static void hide_locked(struct stage *s, const char *name)
{
    if (s->base && image_view_find(s->base, name) && !strlist_contains_sorted(&s->hidden, name)) {
        strlist_push(&s->hidden, name);
        strlist_sort_unique(&s->hidden);
    }
}

bool stage_is_hidden(struct stage *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    bool hidden = strlist_contains_sorted(&s->hidden, name);
    pthread_mutex_unlock(&s->lock);
    return hidden;
}

static struct staged_file *new_file(const char *name, mode_t mode)
{
    struct staged_file *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    snprintf(f->name, sizeof(f->name), "%s", name);
    char hex[SHA256_HEX_LEN + 1];
    if (stage_role_of(name, &f->role, hex) == 0) memcpy(f->hex, hex, sizeof(hex));
    f->fd = -1;
    f->known_fd = -1;
    pthread_mutex_init(&f->io, NULL);
    f->mode = mode & 07777;
    clock_gettime(CLOCK_REALTIME, &f->mtime);
    f->refs = 1;
    return f;
}

static int open_spill(struct stage *s, struct staged_file *f)
{
    int n = snprintf(f->spill, sizeof(f->spill), "%s/upload.XXXXXX",
                     blobcache_partial_dir(s->host->blobs));
    if (n < 0 || (size_t)n >= sizeof(f->spill)) return -ENAMETOOLONG;
    f->fd = mkstemp(f->spill);
    if (f->fd < 0) {
        f->spill[0] = '\0';
        return -errno;
    }
    return sha256_begin(&f->hash);
}

/* Replaces any file of that name, and hides the published one. */
static void insert_locked(struct stage *s, struct staged_file *f)
{
    struct staged_file *old = find_locked(s, f->name);
    if (old) unlist_locked(s, old);
    hide_locked(s, f->name);
    f->next = s->files;
    s->files = f;
}

int stage_file_create(struct stage *s, const char *name, mode_t mode, struct staged_file **out)
{
    struct staged_file *f = new_file(name, mode);
    if (!f) return -ENOMEM;
    int rc = open_spill(s, f);
    if (rc) {
        free_file(f);
        return rc;
    }
    f->dirty = true;
    f->refs = 2; /* the list's and the caller's */
    pthread_mutex_lock(&s->lock);
    insert_locked(s, f);
    pthread_mutex_unlock(&s->lock);
    /* temporary files are not sent before they are renamed onto a blob's name, but rsync's
     * name one: that is enough to start sending from the source of a copy */
    char hex[SHA256_HEX_LEN + 1];
    if (f->role == ROLE_BLOB)
        stage_known_open(s, f, f->hex);
    else if (f->role == ROLE_TEMP && stage_temp_blob_hex(name, hex))
        stage_known_open(s, f, hex);
    if (f->role == ROLE_BLOB && !prefill_covers(s, f->hex))
        upstream_start(s->host, s->repo, s->tag, f, f->hex);
    else if (f->role == ROLE_TEMP && stage_temp_blob_hex(name, hex))
        prefill_covers(s, hex);
    *out = f;
    return 0;
}

int stage_file_link_blob(struct stage *s, const char *name, const char *from_repo, const char *hex,
                         uint64_t size)
{
    struct staged_file *f = new_file(name, 0644);
    if (!f) return -ENOMEM;
    f->is_ref = true;
    f->size = size;
    f->dirty = true;
    snprintf(f->ref_repo, sizeof(f->ref_repo), "%s", from_repo);
    memcpy(f->ref_hex, hex, SHA256_HEX_LEN + 1);
    pthread_mutex_lock(&s->lock);
    insert_locked(s, f);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int stage_file_set_bytes(struct stage *s, const char *name, const void *data, size_t len)
{
    struct staged_file *f;
    int rc = stage_file_create(s, name, 0644, &f);
    if (rc) return rc;
    rc = stage_file_write(f, data, len, 0);
    staged_file_put(s, f);
    return rc < 0 ? rc : 0;
}

int stage_file_make_ref(struct staged_file *f, const char *from_repo, const char *hex,
                        uint64_t size)
{
    upstream_cancel(f);
    stage_known_close(f);
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->spill[0]) unlink(f->spill);
    f->spill[0] = '\0';
    f->is_ref = true;
    f->size = size;
    f->dirty = true;
    f->committed = false;
    snprintf(f->ref_repo, sizeof(f->ref_repo), "%s", from_repo);
    memcpy(f->ref_hex, hex, SHA256_HEX_LEN + 1);
    return 0;
}

int stage_file_write(struct staged_file *f, const char *buf, size_t len, uint64_t off)
{
    if (f->fd < 0) return -EBADF;
    if (stage_known_active(f)) {
        pthread_mutex_lock(&f->io);
        int rc = stage_known_write_locked(f, buf, len, off);
        pthread_mutex_unlock(&f->io);
        if (rc) return rc < 0 ? rc : (int)len;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(f->fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        done += (size_t)n;
    }
    pthread_mutex_lock(&f->io);
    if (off == f->hashed && !f->hash_broken) {
        sha256_update(&f->hash, buf, len);
        f->hashed += len;
    } else {
        f->hash_broken = true; /* the commit hashes the file instead */
    }
    if (off + len > f->size) f->size = off + len;
    f->dirty = true;
    f->committed = false;
    upstream_notify(f);
    pthread_mutex_unlock(&f->io);
    return (int)len;
}

ssize_t stage_file_read(struct staged_file *f, char *buf, size_t len, uint64_t off)
{
    if (f->fd < 0) return -EIO; /* references have no local bytes */
    if (stage_known_active(f)) {
        pthread_mutex_lock(&f->io);
        bool known = stage_known_active(f); /* not dropped meanwhile */
        ssize_t n = known ? stage_known_read_locked(f, buf, len, off) : 0;
        pthread_mutex_unlock(&f->io);
        if (known) return n;
    }
    ssize_t n = pread(f->fd, buf, len, (off_t)off);
    return n < 0 ? -errno : n;
}

int stage_file_truncate(struct staged_file *f, uint64_t size)
{
    if (size == f->size)
        return 0; /* rsync --inplace truncates to the size it wrote: nothing changes */
    if (f->is_ref) return -EINVAL;
    if (size != 0 && stage_known_active(f)) { /* to 0 (O_TRUNC): the comparison starts over */
        pthread_mutex_lock(&f->io);
        int rc = stage_known_drop_locked(f);
        pthread_mutex_unlock(&f->io);
        if (rc) return rc;
    }
    upstream_cancel(f); /* what it sent is no longer the file's beginning */
    if (ftruncate(f->fd, (off_t)size)) return -errno;
    pthread_mutex_lock(&f->io);
    if (size != f->size || size != f->hashed) f->hash_broken = size != f->hashed;
    if (size == 0 && f->hash.md) {
        /* O_TRUNC before rewriting: start the running hash over */
        sha256_abort(&f->hash);
        sha256_begin(&f->hash);
        f->hashed = 0;
        f->hash_broken = false;
    }
    f->size = size;
    f->dirty = true;
    f->committed = false;
    pthread_mutex_unlock(&f->io);
    return 0;
}

int stage_unlink(struct stage *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    struct staged_file *f = find_locked(s, name);
    bool in_base =
        s->base && image_view_find(s->base, name) && !strlist_contains_sorted(&s->hidden, name);
    if (f) unlist_locked(s, f);
    hide_locked(s, name);
    pthread_mutex_unlock(&s->lock);
    return f || in_base ? 0 : -ENOENT;
}

int stage_rename(struct stage *s, const char *from, const char *to)
{
    enum staged_role role;
    char hex[SHA256_HEX_LEN + 1];
    if (stage_role_of(to, &role, hex)) return -EINVAL;
    pthread_mutex_lock(&s->lock);
    struct staged_file *f = find_locked(s, from);
    if (!f) {
        pthread_mutex_unlock(&s->lock);
        return -ENOENT;
    }
    f->refs++;
    struct staged_file *old = find_locked(s, to);
    if (old && old != f) unlist_locked(s, old);
    hide_locked(s, to);
    snprintf(f->name, sizeof(f->name), "%s", to);
    f->role = role;
    memcpy(f->hex, hex, sizeof(hex));
    f->dirty = true;
    f->committed = false;
    pthread_mutex_unlock(&s->lock);
    int rc = role == ROLE_TEMP ? 0 : stage_commit(s, f);
    staged_file_put(s, f);
    return rc;
}

void stage_status_text(struct stage *s, char *out, size_t outlen)
{
    pthread_mutex_lock(&s->lock);
    size_t files = 0, committed = 0;
    for (struct staged_file *f = s->files; f; f = f->next) {
        files++;
        committed += f->committed;
    }
    switch (s->status) {
    case STAGE_OPEN:
        snprintf(out, outlen, "incomplete: %zu files written, %zu committed%s%s", files, committed,
                 s->reason[0] ? "; " : "", s->reason);
        break;
    case STAGE_FAILED:
        snprintf(out, outlen, "failed: %s", s->reason);
        break;
    case STAGE_PUBLISHED:
        snprintf(out, outlen, "published");
        break;
    }
    pthread_mutex_unlock(&s->lock);
}

int stage_tags_of(struct host *h, const char *repo, struct strlist *out)
{
    size_t len = strlen(repo);
    int rc = 0;
    pthread_mutex_lock(&h->stages_lock);
    struct strmap_iter it = strmap_iter(&h->stages);
    const char *key;
    while (rc == 0 && strmap_next(&it, &key, NULL))
        if (strncmp(key, repo, len) == 0 && key[len] == ':') rc = strlist_push(out, key + len + 1);
    pthread_mutex_unlock(&h->stages_lock);
    return rc;
}

int stage_repos_below(struct host *h, const char *dir, struct strlist *out)
{
    size_t len = strlen(dir);
    int rc = 0;
    pthread_mutex_lock(&h->stages_lock);
    struct strmap_iter it = strmap_iter(&h->stages);
    const char *key;
    while (rc == 0 && strmap_next(&it, &key, NULL)) {
        if (len && (strncmp(key, dir, len) != 0 || key[len] != '/')) continue;
        const char *rest = key + (len ? len + 1 : 0);
        size_t n = strcspn(rest, "/:"); /* keys are REPO:TAG; a repository has no ':' */
        if (rest[n] == ':') rc = strlist_push_n(out, rest, n);
    }
    pthread_mutex_unlock(&h->stages_lock);
    return rc;
}

int stage_names(struct stage *s, struct strlist *out)
{
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (struct staged_file *f = s->files; f && rc == 0; f = f->next)
        rc = strlist_push(out, f->name);
    for (size_t i = 0; s->base && i < s->base->n_entries && rc == 0; i++) {
        const char *name = s->base->entries[i].name;
        if (!strlist_contains_sorted(&s->hidden, name) && !find_locked(s, name))
            rc = strlist_push(out, name);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}
