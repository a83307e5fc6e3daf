/*
 * The metadata cache of a host (fs/host.h): catalog, tag lists, tag → digest answers and image
 * views in one map, bounded in bytes (least recently used evicted first), with one refresh in
 * flight per item and a per-registry back-off after a failed refresh. Everything here is under
 * h->meta.lock (struct host_meta_cache, a leaf lock); requests run without it.
 */
#ifndef REGISTRYFS_HOST_META_H
#define REGISTRYFS_HOST_META_H

#include <stdbool.h>
#include <time.h>

#include "common/packlist.h"
#include "fs/host.h"
#include "transport/ref.h"

enum meta_kind { META_LIST, META_TAG, META_VIEW };

#define META_KEY_MAX (REF_NAME_MAX + REF_TAG_MAX + 8)

/* One cached answer: its key is its kind's letter, then the repository (and ":tag"). */
struct meta {
    enum meta_kind kind;
    char *key;
    struct meta *newer, *older; /* h->lru_newest ... h->lru_oldest */
    size_t bytes;               /* charged to h->meta_bytes */
    time_t fetched_at;
    int status;                      /* META_LIST: 0, or -ENOENT / -ENOTSUP as answered */
    struct packlist list;            /* META_LIST, sorted */
    char digest[DIGEST_STR_LEN + 1]; /* META_TAG */
    struct image_view *view;         /* META_VIEW: one reference */
};

/* What to look up: the catalog (repo ""), a repository's tags, or a tag's digest. */
struct meta_req {
    enum meta_kind kind;
    char key[META_KEY_MAX];
    char repo[REF_NAME_MAX + 1];
    char tag[REF_TAG_MAX + 1];
};

void meta_req_catalog(struct meta_req *r);
void meta_req_tags(struct meta_req *r, const char *repo);
void meta_req_tag(struct meta_req *r, const char *repo, const char *tag);

/* Reads an answer under h->meta.lock; returns what the lookup returns. */
typedef int (*meta_use_fn)(const struct meta *m, void *ctx);

/*
 * Calls use with the answer to r: a fresh one, or a stale one while the registry is failing
 * or another caller refreshes it; a refresh runs when the TTL has passed and the back-off
 * allows. With nothing cached, the refresh's error (or, within a back-off window, the
 * remembered failure at once).
 */
int meta_with(struct host *h, const struct meta_req *r, meta_use_fn use, void *ctx);

/* For requests outside these caches (manifests by digest): 0 when one may be made now, else
 * the remembered failure; then meta_record with its outcome. */
int meta_gate(struct host *h, bool *probe);
void meta_record(struct host *h, const char *what, int rc, bool probe);

void meta_init(struct host *h);
/* Waits for background refreshes, then frees every entry. */
void meta_destroy(struct host *h);
/* Forgets one entry (after a write). */
void meta_forget(struct host *h, const char *key);

struct image_view *meta_view_get(struct host *h, const char *hex);
struct image_view *meta_view_keep(struct host *h, struct image_view *v, size_t bytes);

/* Listings this long are copied only after meta_trim (see there). */
#define META_BIG_LISTING 10000
void meta_trim(void);

/* Stores a manifest's bytes as a blob of the cache (best effort, logged). */
int host_store_manifest(struct host *h, const char *digest, const struct buf *body);

#endif
