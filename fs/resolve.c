#include "fs/resolve.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_COMPONENTS 64

struct components {
    const char *item[MAX_COMPONENTS];
    size_t len[MAX_COMPONENTS];
    size_t n;
};

static int split_path(const char *path, struct components *c)
{
    c->n = 0;
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        if (!*p) break;
        size_t len = strcspn(p, "/");
        if (c->n == MAX_COMPONENTS || len > REF_NAME_MAX + DIGEST_STR_LEN + 2) return -ENOENT;
        c->item[c->n] = p;
        c->len[c->n++] = len;
        p += len;
    }
    return 0;
}

/* Joins prefix and a component into a repository path, checking the grammar. */
static int join_repo(const char *prefix, const char *name, size_t len, char out[REF_NAME_MAX + 1])
{
    int n = snprintf(out, REF_NAME_MAX + 1, "%s%s%.*s", prefix, *prefix ? "/" : "", (int)len, name);
    if (n < 0 || n > REF_NAME_MAX || !ref_valid_component(name, len)) return -ENOENT;
    return 0;
}

/* A file of an image being written: staged files first, then the unhidden published ones. */
static int resolve_staged(struct node *out, const char *name, size_t remaining)
{
    struct stage *s = out->stage;
    out->view = s->base;
    if (out->view) image_view_hold(out->view);
    if (remaining == 0) return 0;
    out->sfile = staged_file_get(s, name);
    if (!out->sfile && out->view && !stage_is_hidden(s, name))
        out->entry = image_view_find(out->view, name);
    if (!out->sfile && !out->entry) return -ENOENT;
    out->kind = NODE_FILE;
    return 0;
}

static int resolve_image(struct node *out, const struct components *c, size_t rest, bool want_view)
{
    if (out->oci) return oci_view_resolve(out, c->item + rest, c->len + rest, c->n - rest);
    out->kind = NODE_IMAGE;
    size_t remaining = c->n - rest;
    if (remaining > 1) return -ENOENT;
    if (!out->stage) out->stage = stage_find(out->host, out->repo, out->ref);
    if (out->stage) {
        char name[VIEW_NAME_MAX + 32];
        if (remaining && c->len[rest] >= sizeof(name)) return -ENOENT;
        snprintf(name, sizeof(name), "%.*s", remaining ? (int)c->len[rest] : 0,
                 remaining ? c->item[rest] : "");
        return resolve_staged(out, name, remaining);
    }
    bool by_digest = strncmp(out->ref, DIGEST_PREFIX, strlen(DIGEST_PREFIX)) == 0;
    if (remaining == 0 && !want_view && !by_digest) return 0;
    int rc = image_view_get(out->host, out->repo, out->ref, &out->view);
    if (rc || remaining == 0) return rc;
    char name[VIEW_NAME_MAX];
    if (c->len[rest] >= sizeof(name)) return -ENOENT;
    snprintf(name, sizeof(name), "%.*s", (int)c->len[rest], c->item[rest]);
    out->entry = image_view_find(out->view, name);
    if (!out->entry) return -ENOENT;
    out->kind = NODE_FILE;
    return 0;
}

int resolve_alias_parse(const char *prefix, const char *comp, size_t len,
                        char repo[REF_NAME_MAX + 1], char ref[REF_TAG_MAX + DIGEST_STR_LEN + 2],
                        bool *by_digest)
{
    const char *at = memchr(comp, '@', len);
    const char *colon = NULL;
    for (const char *p = comp; p < comp + len; p++)
        if (*p == ':') colon = p;
    const char *sep = at ? at : colon;
    if (!sep) return 1; /* not an alias */
    if (join_repo(prefix, comp, (size_t)(sep - comp), repo)) return -ENOENT;
    size_t ref_len = len - (size_t)(sep - comp) - 1;
    if (ref_len >= REF_TAG_MAX + DIGEST_STR_LEN + 2) return -ENOENT;
    snprintf(ref, REF_TAG_MAX + DIGEST_STR_LEN + 2, "%.*s", (int)ref_len, sep + 1);
    *by_digest = at != NULL;
    return (at ? ref_valid_digest(ref) : ref_valid_tag(ref)) ? 0 : -ENOENT;
}

/* REPO:TAG.tar when TAG.tar is no tag (a real tag wins): the docker-archive view of TAG. */
static int try_archive(struct node *out)
{
    char tag[REF_TAG_MAX + 1];
    if (!archive_view_name(out->ref, tag, sizeof(tag))) return -ENOENT;
    snprintf(out->ref, sizeof(out->ref), "%s", tag);
    out->kind = NODE_ARCHIVE;
    return archive_view_get(out->host, out->repo, out->ref, &out->archive);
}

/* REPO:TAG and REPO@sha256:HEX, resolvable beside REPO but never listed. */
/* REPO:TAG and REPO@sha256:HEX, resolvable beside REPO but never listed; so are REPO:TAG.tar
 * and REPO:TAG.oci when TAG.tar or TAG.oci is not itself a tag. */
static int try_alias(struct node *out, const char *prefix, const char *comp, size_t len)
{
    bool by_digest;
    int rc = resolve_alias_parse(prefix, comp, len, out->repo, out->ref, &by_digest);
    if (rc || by_digest) return rc;
    if ((out->stage = stage_find(out->host, out->repo, out->ref))) return 0;
    rc = host_has_tag(out->host, out->repo, out->ref);
    if (rc != -ENOENT) return rc;
    rc = try_archive(out);
    return rc == -ENOENT ? oci_view_claim(out) : rc;
}

/* Without a catalog, a name under a repository that is not one of its tags is ENOENT (a
 * mistyped tag must not look like an empty directory), unless it is itself a repository (its
 * tag list answers: GHCR nests them) or a directory made by mkdir for a push. */
static int nested_under_repo(struct host *h, const char *repo, const char *comp, size_t len)
{
    char next[REF_NAME_MAX + 1];
    if (join_repo(repo, comp, len, next)) return -ENOENT;
    if (h->cfg->push && host_created_dir_has(h, next)) return 0;
    int flags = host_dir_flags(h, next);
    if (flags < 0) return flags;
    return flags & DIR_IS_REPO ? 0 : -ENOENT;
}

static int resolve_in_host(struct node *out, const struct components *c, size_t first,
                           bool want_view)
{
    char prefix[REF_NAME_MAX + 1] = "";
    for (size_t k = first; k < c->n; k++) {
        const char *comp = c->item[k];
        size_t len = c->len[k];
        int rc = try_alias(out, prefix, comp, len);
        if (rc == 0 && out->kind == NODE_ARCHIVE) return k + 1 == c->n ? 0 : -ENOTDIR;
        if (rc <= 0) return rc ? rc : resolve_image(out, c, k + 1, want_view);

        if (*prefix && len <= REF_TAG_MAX) {
            snprintf(out->ref, sizeof(out->ref), "%.*s", (int)len, comp);
            if ((out->stage = stage_find(out->host, prefix, out->ref))) {
                snprintf(out->repo, sizeof(out->repo), "%s", prefix);
                return resolve_image(out, c, k + 1, want_view);
            }
            int flags = host_dir_flags(out->host, prefix);
            if (flags < 0) return flags;
            snprintf(out->ref, sizeof(out->ref), "%.*s", (int)len, comp);
            if ((flags & DIR_IS_REPO) && ref_valid_tag(out->ref)) {
                int has = host_has_tag(out->host, prefix, out->ref);
                if (has == 0) {
                    snprintf(out->repo, sizeof(out->repo), "%s", prefix);
                    return resolve_image(out, c, k + 1, want_view);
                }
                snprintf(out->repo, sizeof(out->repo), "%s", prefix);
                if (has == -ENOENT && oci_view_claim(out) == 0) /* REPO/TAG.oci, unlisted */
                    return resolve_image(out, c, k + 1, want_view);
                if (has != -ENOENT) return has; /* denied or unreachable: not "no such tag" */
            }
            if ((flags & DIR_NO_CATALOG) && (flags & DIR_IS_REPO)) {
                int rc = nested_under_repo(out->host, prefix, comp, len);
                if (rc) return rc;
            }
        }
        char next[REF_NAME_MAX + 1];
        if (join_repo(prefix, comp, len, next)) return -ENOENT;
        memcpy(prefix, next, sizeof(prefix));
    }
    int flags = host_dir_flags(out->host, prefix);
    if (flags < 0) return flags;
    if (out->host->cfg->push && host_created_dir_has(out->host, prefix)) flags |= DIR_IS_CREATED;
    if (!flags) return -ENOENT;
    out->kind = NODE_DIR;
    out->dir_flags = flags;
    snprintf(out->dir, sizeof(out->dir), "%s", prefix);
    return 0;
}

int resolve_path(struct rfs *fs, const char *path, bool want_view, struct node *out)
{
    memset(out, 0, sizeof(*out));
    struct components c;
    int rc = split_path(path, &c);
    if (rc) return rc;
    size_t first = 0;
    if (fs->single) {
        out->host = fs->single;
    } else if (c.n == 0) {
        out->kind = NODE_HOSTS;
        return 0;
    } else {
        char hostport[REF_HOST_MAX + 8];
        if (c.len[0] >= sizeof(hostport)) return -ENOENT;
        snprintf(hostport, sizeof(hostport), "%.*s", (int)c.len[0], c.item[0]);
        if ((rc = rfs_host(fs, hostport, &out->host))) return rc;
        first = 1;
    }
    rc = resolve_in_host(out, &c, first, want_view);
    if (rc) node_release(out);
    return rc;
}

int resolve_file(struct rfs *fs, const char *path, struct node *out)
{
    int rc = resolve_path(fs, path, true, out);
    if (rc == 0 && out->kind != NODE_FILE && out->kind != NODE_OCI_FILE) {
        rc = out->kind == NODE_ARCHIVE ? -EROFS : -EISDIR;
        node_release(out);
    }
    return rc;
}

int resolve_readable(struct rfs *fs, const char *path, struct node *out)
{
    int rc = resolve_path(fs, path, true, out);
    if (rc == 0 && out->kind != NODE_FILE && out->kind != NODE_ARCHIVE &&
        out->kind != NODE_OCI_FILE) {
        node_release(out);
        rc = -EISDIR;
    }
    return rc;
}

void node_release(struct node *n)
{
    image_view_put(n->view);
    n->view = NULL;
    n->entry = NULL;
    n->oci = OCI_NONE;
    if (n->sfile) staged_file_put(n->stage, n->sfile);
    n->sfile = NULL;
    stage_put(n->stage);
    n->stage = NULL;
    archive_view_put(n->archive);
    n->archive = NULL;
}
