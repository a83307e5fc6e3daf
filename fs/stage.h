/*
 * Images being written into a writable mount (-o push): the write state machine.
 *
 * A stage collects the files of one REPO:TAG directory as tools write them: version,
 * manifest.json, HEX.manifest.json, blobs named by hex, and the temporary names tools rename
 * onto those. A file is *committed* when its writer is done with it under its final name (the
 * flush of a directly written file, or the rename of a temporary one): blobs are then verified
 * against their name, kept in the blob cache and made present in the registry (already there,
 * cross-mounted, or uploaded). After every commit the stage checks whether the image is
 * complete; if so it publishes: instance manifests by digest, then manifest.json under the tag.
 * Errors of the commit (and of a publication it triggers) are returned to the tool by that
 * flush or rename, so cp, rsync, tar and skopeo exit non-zero.
 */
#ifndef REGISTRYFS_STAGE_H
#define REGISTRYFS_STAGE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/sha256.h"
#include "common/strlist.h"
#include "fs/image_view.h"
#include "transport/ref.h"

struct host;

enum staged_role { ROLE_TEMP, ROLE_VERSION, ROLE_MANIFEST, ROLE_INSTANCE, ROLE_BLOB };

struct staged_file {
    char name[NAME_MAX + 1];
    enum staged_role role;
    char hex[SHA256_HEX_LEN + 1]; /* ROLE_BLOB, ROLE_INSTANCE: from the name */
    int fd;                       /* spill file (in the cache's partial/), -1 for a reference */
    char spill[PATH_MAX];
    uint64_t size;
    /* Tools write sequentially, so the hash is computed as bytes arrive; any other pattern
     * sets hash_broken and the commit hashes the spill file instead. */
    pthread_mutex_t io; /* size and hash against concurrent writes of one file */
    struct sha256 hash;
    uint64_t hashed;
    bool hash_broken;
    struct upstream *up; /* the blob's upload job (fs/upstream.h), or NULL; under io */
    /* The cache blob this file keeps from eviction until it is freed (published, or the stage
     * dropped): set by the commit, under s->commit. NULL: none. */
    struct blobcache *pinned_in;
    char pinned_hex[SHA256_HEX_LEN + 1];
    /* A verified stored copy of the blob the writes are compared with instead of being
     * spilled (fs/stage_known.c): -1 when none. Set and cleared under io (atomic stores, so a
     * writer may test it before taking io); known_size and known_hex with it. */
    int known_fd;
    uint64_t known_size;
    char known_hex[SHA256_HEX_LEN + 1];
    /* A blob linked or copied from another repository of the same registry: no bytes. */
    bool is_ref;
    char ref_repo[REF_NAME_MAX + 1];
    char ref_hex[SHA256_HEX_LEN + 1];

    mode_t mode;
    struct timespec mtime;
    int writers;    /* open handles that may write: staged_file_writer_begin/_end (atomic) */
    bool dirty;     /* changed since the last commit */
    bool committed; /* verified (blobs: present in the registry) */
    int refs;       /* under the stage's lock: staged_file_hold / staged_file_put */
    struct staged_file *next;
};

enum stage_status { STAGE_OPEN, STAGE_FAILED, STAGE_PUBLISHED };

/*
 * Locks of the write path, in the order they may be taken (never the other way round):
 *   s->commit  one commit or publication of the image at a time (held across registry calls)
 *   h->stages_lock, h->dirs_lock, h->meta.lock   the host's maps (images being written; mkdir'ed
 *              directories and blob homes; metadata and views): leaves, taken briefly, one
 *              at a time, inside s->commit
 *   s->lock    the file list, hidden names, status/reason, prefills, staged files' refs
 *   f->io      one file's size, running hash and upload job pointer (fs/upstream.h)
 *   ra->lock   the mount's record of images being read (fs/readahead.h), a leaf
 *   p->lock    the mount's transfer table (fs/progress.h), a leaf taken under any of these
 * The host's locks and s->lock are never held together. Background jobs take f->io and the
 * host's locks only.
 * Reference counts: stages through stage_hold/stage_put, staged files through
 * staged_file_hold/staged_file_put (under s->lock), views through image_view_hold/put.
 */
struct stage {
    struct host *host;
    char repo[REF_NAME_MAX + 1];
    char tag[REF_TAG_MAX + 1];
    pthread_mutex_t lock;   /* files, hidden, status, prefills; taken after commit, before a
                               file's io lock and the mount's readahead lock */
    pthread_mutex_t commit; /* one commit/publication at a time per image */
    struct staged_file *files;
    struct image_view *base; /* the published image this stage overwrites, if any */
    struct strlist hidden;   /* base entries unlinked (sorted) */
    bool version_before_manifest;
    struct prefill *prefills; /* blobs sent straight from another registry (fs/prefill.h) */
    bool prefilled;           /* prefills were started (once per stage) */
    enum stage_status status;
    char reason[256];
    int refs; /* stage_hold / stage_put only */
    /* A new tag published while its writer may still be writing: cp -r writes files in the
     * source's inode order, so manifest.json and version can come before blobs the registry
     * already has, and the publication before those blobs' O_EXCL creates. The stage (which
     * lists what was written, not the registry's image) stays until then (CLOCK_MONOTONIC ms,
     * atomic; 0: not lingering); a later commit into it publishes again if it changes the
     * image. published_digest is what its last publication sent (under commit). */
    int64_t linger_until_ms;
    char published_digest[DIGEST_STR_LEN + 1];
};

/* How long a published new tag's stage lingers for the rest of its writer's files. */
#define STAGE_LINGER_MS 5000

/* Tags of repo that are being written (listed like published ones). */
int stage_tags_of(struct host *h, const char *repo, struct strlist *out);
/* Names of the repositories directly below dir ("" is the root) with tags being written. */
int stage_repos_below(struct host *h, const char *dir, struct strlist *out);
/* Visible file names of a stage: staged files and unhidden published ones. */
int stage_names(struct stage *s, struct strlist *out);

/* The stage of REPO:TAG, or NULL. Returned with a reference. */
struct stage *stage_find(struct host *h, const char *repo, const char *tag);
/* Finds or creates it; base (may be NULL) is the published view it overlays. */
int stage_open(struct host *h, const char *repo, const char *tag, struct image_view *base,
               struct stage **out);
/* References to a stage: taken and dropped only through these (atomic, any thread). */
void stage_hold(struct stage *s);
void stage_put(struct stage *s);
void stage_put_void(void *s);
/* Drops the stage from its host (rmdir of an unpublished directory, or publication). */
void stage_forget(struct stage *s);
/* Whether the tag the stage shows is in the registry: it overlays a published image, or it
 * was published and lingers (so rmdir of it deletes a tag). */
bool stage_shows_published_tag(struct stage *s);

/* The role a final name plays; -EINVAL for names a dir: image cannot hold. Temporary names of
 * rsync (.NAME.XXXXXX), skopeo (dir-put-blob*) and ln (Cu*) are ROLE_TEMP. */
int stage_role_of(const char *name, enum staged_role *role, char hex[SHA256_HEX_LEN + 1]);

/* Whether name is rsync's temporary name of a blob (.HEX.XXXXXX); hex gets HEX. */
bool stage_temp_blob_hex(const char *name, char hex[SHA256_HEX_LEN + 1]);

/* Files (referenced) by name; NULL if none. */
struct staged_file *staged_file_get(struct stage *s, const char *name);
void staged_file_hold(struct stage *s, struct staged_file *f);
void staged_file_put(struct stage *s, struct staged_file *f);
/* An open handle that may write starts or stops being one: a file with writers is not
 * committed or published (its content is still changing). */
void staged_file_writer_begin(struct staged_file *f);
void staged_file_writer_end(struct staged_file *f);
/* Creates (or truncates, when it exists) a file with spill storage. */
int stage_file_create(struct stage *s, const char *name, mode_t mode, struct staged_file **out);
/* A file whose content is a blob of another repository (ln, copy within the registry). */
int stage_file_link_blob(struct stage *s, const char *name, const char *from_repo, const char *hex,
                         uint64_t size);
/* A file with the given bytes (linking version or manifests from another tag). */
int stage_file_set_bytes(struct stage *s, const char *name, const void *data, size_t len);
/* Turns an empty written file into a reference to a blob of this registry. */
int stage_file_make_ref(struct staged_file *f, const char *from_repo, const char *hex,
                        uint64_t size);
int stage_file_write(struct staged_file *f, const char *buf, size_t len, uint64_t off);
ssize_t stage_file_read(struct staged_file *f, char *buf, size_t len, uint64_t off);
int stage_file_truncate(struct staged_file *f, uint64_t size);
int stage_unlink(struct stage *s, const char *name);
/* rename within one stage; commits the target when it has a final name. */
int stage_rename(struct stage *s, const char *from, const char *to);
bool stage_is_hidden(struct stage *s, const char *name);

/* Known blobs (fs/stage_known.c): a storage tree compares a blob's bytes with a verified copy
 * it has at hand (its own, or hardlinked from -o link_from or the cache) instead of storing
 * them. _locked: with f->io held. */
void stage_known_open(struct stage *s, struct staged_file *f, const char *hex);
bool stage_known_active(const struct staged_file *f);
void stage_known_close(struct staged_file *f);
/* Leaves the known mode, copying the bytes accepted so far into the spill file. */
int stage_known_drop_locked(struct staged_file *f);
/* 1 when the write matched the known copy (taken), 0 when the file is (now) an ordinary one. */
int stage_known_write_locked(struct staged_file *f, const char *buf, size_t len, uint64_t off);
ssize_t stage_known_read_locked(struct staged_file *f, char *buf, size_t len, uint64_t off);
/* At commit: 1 when the file is exactly the known copy of the blob its name says (verified,
 * nothing to hash), else 0 with the file materialised (or -errno). */
int stage_known_verdict(struct staged_file *f);

/* Commit + completeness check + publication. declaring: the writer says the image is done
 * (see docs/write.md), so missing blobs are an error rather than something to wait for. */
int stage_commit(struct stage *s, struct staged_file *f);
/* Checks completeness and publishes when complete; missing blobs fail when declaring. */
int stage_try_publish(struct stage *s, bool declaring);

/* "open: 3 files, waiting for ...", "failed: ...", for getxattr user.registryfs.status. */
void stage_status_text(struct stage *s, char *out, size_t outlen);

#endif
