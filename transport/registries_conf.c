/* registries.conf: the registry and mirror tables built from the TOML subset parser's
 * stream (toml_subset.h), validated and normalized; and the matching of references against them. */
#include "transport/registries_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/toml_subset.h"

/* ---- the registries ---- */

enum ctx_kind { CTX_ROOT, CTX_REGISTRY, CTX_MIRROR, CTX_V1_INSECURE, CTX_V1_BLOCK, CTX_IGNORED };

struct builder {
    struct registries_conf *conf;
    size_t cap;
    bool *digest_only; /* mirror-by-digest-only, per registry */
    enum ctx_kind ctx;
};

static struct registries_conf_registry *new_registry(struct toml_parser *ps, struct builder *b)
{
    struct registries_conf *c = b->conf;
    if (c->n >= REGISTRIES_CONF_MAX_REGISTRIES) {
        toml_fail(ps, "more than %d registries", REGISTRIES_CONF_MAX_REGISTRIES);
        return NULL;
    }
    if (c->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        struct registries_conf_registry *regs = realloc(c->regs, cap * sizeof(*regs));
        if (!regs) return NULL;
        c->regs = regs;
        bool *d = realloc(b->digest_only, cap * sizeof(*d));
        if (!d) return NULL;
        b->digest_only = d;
        b->cap = cap;
    }
    b->digest_only[c->n] = false;
    struct registries_conf_registry *r = &c->regs[c->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

static struct registries_conf_mirror *new_mirror(struct toml_parser *ps,
                                                 struct registries_conf_registry *r)
{
    if (r->n_mirrors >= REGISTRIES_CONF_MAX_MIRRORS) {
        toml_fail(ps, "more than %d mirrors for one registry", REGISTRIES_CONF_MAX_MIRRORS);
        return NULL;
    }
    struct registries_conf_mirror *m = &r->mirrors[r->n_mirrors++];
    memset(m, 0, sizeof(*m));
    return m;
}

static int want_string(struct toml_parser *ps, const struct toml_value *v, const char *key,
                       char *out, size_t outlen)
{
    if (v->type != TOML_STRING) return toml_fail(ps, "\"%s\" must be a string", key);
    if (strlen(v->s) >= outlen) return toml_fail(ps, "\"%s\" is too long", key);
    snprintf(out, outlen, "%s", v->s);
    return 0;
}

static int want_bool(struct toml_parser *ps, const struct toml_value *v, const char *key, bool *out)
{
    if (v->type != TOML_BOOL) return toml_fail(ps, "\"%s\" must be true or false", key);
    *out = v->b;
    return 0;
}

static int mirror_key(struct toml_parser *ps, struct registries_conf_mirror *m, const char *key,
                      const struct toml_value *v)
{
    if (strcmp(key, "location") == 0)
        return want_string(ps, v, key, m->location, sizeof(m->location));
    if (strcmp(key, "insecure") == 0) return want_bool(ps, v, key, &m->insecure);
    if (strcmp(key, "pull-from-mirror") == 0) {
        char mode[32];
        int rc = want_string(ps, v, key, mode, sizeof(mode));
        if (rc) return rc;
        if (strcmp(mode, "all") == 0 || mode[0] == '\0')
            m->pull = REGISTRIES_CONF_PULL_ALL;
        else if (strcmp(mode, "digest-only") == 0)
            m->pull = REGISTRIES_CONF_PULL_DIGEST_ONLY;
        else if (strcmp(mode, "tag-only") == 0)
            m->pull = REGISTRIES_CONF_PULL_TAG_ONLY;
        else
            return toml_fail(ps, "pull-from-mirror must be all, digest-only or tag-only");
        return 0;
    }
    return 0; /* unknown keys are ignored, as containers ignores fields it does not know */
}

static int registry_key(struct toml_parser *ps, struct builder *b,
                        struct registries_conf_registry *r, const char *key,
                        const struct toml_value *v)
{
    if (strcmp(key, "location") == 0)
        return want_string(ps, v, key, r->location, sizeof(r->location));
    if (strcmp(key, "prefix") == 0) return want_string(ps, v, key, r->prefix, sizeof(r->prefix));
    if (strcmp(key, "insecure") == 0) return want_bool(ps, v, key, &r->insecure);
    if (strcmp(key, "blocked") == 0) return want_bool(ps, v, key, &r->blocked);
    if (strcmp(key, "mirror-by-digest-only") == 0)
        return want_bool(ps, v, key, &b->digest_only[r - b->conf->regs]);
    if (strcmp(key, "mirror") == 0) {
        if (v->type != TOML_ARRAY) return toml_fail(ps, "\"mirror\" must be an array of tables");
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i].type != TOML_TABLE)
                return toml_fail(ps, "\"mirror\" must be an array of tables");
            struct registries_conf_mirror *m = new_mirror(ps, r);
            if (!m) return -EINVAL;
            for (size_t k = 0; k < v->items[i].n; k++) {
                int rc = mirror_key(ps, m, v->items[i].keys[k], &v->items[i].items[k]);
                if (rc) return rc;
            }
        }
        return 0;
    }
    return 0;
}

static int registry_from_table(struct toml_parser *ps, struct builder *b,
                               const struct toml_value *t)
{
    if (t->type != TOML_TABLE) return toml_fail(ps, "\"registry\" must be an array of tables");
    struct registries_conf_registry *r = new_registry(ps, b);
    if (!r) return toml_failed(ps) ? -EINVAL : -ENOMEM;
    for (size_t k = 0; k < t->n; k++) {
        int rc = registry_key(ps, b, r, t->keys[k], &t->items[k]);
        if (rc) return rc;
    }
    return 0;
}

/* A version 1 list entry: merged into an entry of the same location. */
static int v1_entry(struct toml_parser *ps, struct builder *b, const char *location, bool block)
{
    struct registries_conf *c = b->conf;
    struct registries_conf_registry *r = NULL;
    for (size_t i = 0; i < c->n && !r; i++)
        if (strcmp(c->regs[i].location, location) == 0 && !c->regs[i].prefix[0]) r = &c->regs[i];
    if (!r) {
        r = new_registry(ps, b);
        if (!r) return toml_failed(ps) ? -EINVAL : -ENOMEM;
        if (strlen(location) >= sizeof(r->location)) return toml_fail(ps, "location too long");
        snprintf(r->location, sizeof(r->location), "%s", location);
    }
    if (block)
        r->blocked = true;
    else
        r->insecure = true;
    return 0;
}

static int on_assign(void *ctx, struct toml_parser *ps, const char *key, const struct toml_value *v)
{
    struct builder *b = ctx;
    struct registries_conf *c = b->conf;
    switch (b->ctx) {
    case CTX_ROOT:
        if (strcmp(key, "registry") == 0) {
            if (v->type != TOML_ARRAY)
                return toml_fail(ps, "\"registry\" must be an array of tables");
            for (size_t i = 0; i < v->n; i++) {
                int rc = registry_from_table(ps, b, &v->items[i]);
                if (rc) return rc;
            }
        }
        return 0;
    case CTX_REGISTRY:
        return registry_key(ps, b, &c->regs[c->n - 1], key, v);
    case CTX_MIRROR: {
        struct registries_conf_registry *r = &c->regs[c->n - 1];
        return mirror_key(ps, &r->mirrors[r->n_mirrors - 1], key, v);
    }
    case CTX_V1_INSECURE:
    case CTX_V1_BLOCK:
        if (strcmp(key, "registries") != 0) return 0;
        if (v->type != TOML_ARRAY)
            return toml_fail(ps, "\"registries\" must be an array of strings");
        for (size_t i = 0; i < v->n; i++) {
            if (v->items[i].type != TOML_STRING)
                return toml_fail(ps, "\"registries\" must be an array of strings");
            int rc = v1_entry(ps, b, v->items[i].s, b->ctx == CTX_V1_BLOCK);
            if (rc) return rc;
        }
        return 0;
    case CTX_IGNORED:
        return 0;
    }
    return 0;
}

static int on_table(void *ctx, struct toml_parser *ps, const char *name, bool array)
{
    struct builder *b = ctx;
    if (array && strcmp(name, "registry") == 0) {
        if (!new_registry(ps, b)) return toml_failed(ps) ? -EINVAL : -ENOMEM;
        b->ctx = CTX_REGISTRY;
    } else if (array && strcmp(name, "registry.mirror") == 0) {
        if (b->conf->n == 0) return toml_fail(ps, "[[registry.mirror]] before any [[registry]]");
        if (!new_mirror(ps, &b->conf->regs[b->conf->n - 1])) return -EINVAL;
        b->ctx = CTX_MIRROR;
    } else if (!array && (strcmp(name, "registry") == 0 || strcmp(name, "registry.mirror") == 0)) {
        return toml_fail(ps, "[%s] must be written [[%s]]", name, name);
    } else if (!array && strcmp(name, "registries.insecure") == 0) {
        b->ctx = CTX_V1_INSECURE;
    } else if (!array && strcmp(name, "registries.block") == 0) {
        b->ctx = CTX_V1_BLOCK;
    } else {
        b->ctx = CTX_IGNORED;
    }
    return 0;
}

/* ---- validation ---- */

/* Lower-cases the host part and folds Docker Hub's names into "docker.io"; drops one trailing
 * '/'. false when it is not host[:port][/namespace] (or "*.domain" when wildcard). */
static bool normalize_location(char *loc, size_t size, bool wildcard_ok)
{
    size_t len = strlen(loc);
    if (len && loc[len - 1] == '/') loc[--len] = '\0';
    if (len == 0) return false;
    size_t hl = strcspn(loc, "/");
    char host[REF_HOST_MAX + 8];
    if (hl >= sizeof(host)) return false;
    for (size_t i = 0; i < hl; i++)
        host[i] = (loc[i] >= 'A' && loc[i] <= 'Z') ? (char)(loc[i] - 'A' + 'a') : loc[i];
    host[hl] = '\0';
    const char *path = loc[hl] ? loc + hl + 1 : "";
    if (wildcard_ok && strncmp(host, "*.", 2) == 0) {
        if (*path || strchr(host, ':') || !ref_valid_hostport(host + 2)) return false;
    } else {
        if (!ref_valid_hostport(host) || (*path && !ref_valid_repo(path))) return false;
        if (ref_is_docker_hub_host(host)) snprintf(host, sizeof(host), "docker.io");
    }
    char out[REGISTRIES_CONF_LOCATION_MAX];
    int n = snprintf(out, sizeof(out), "%s%s%s", host, *path ? "/" : "", path);
    if (n < 0 || (size_t)n >= size) return false;
    memcpy(loc, out, (size_t)n + 1);
    return true;
}

static int finish(struct builder *b, char *err, size_t errlen)
{
    struct registries_conf *c = b->conf;
    for (size_t i = 0; i < c->n; i++) {
        struct registries_conf_registry *r = &c->regs[i];
        if (!r->prefix[0] && !r->location[0]) {
            snprintf(err, errlen, "registry #%zu has neither location nor prefix", i + 1);
            return -EINVAL;
        }
        if (r->location[0] && !normalize_location(r->location, sizeof(r->location), false)) {
            snprintf(err, errlen, "invalid location \"%.200s\"", r->location);
            return -EINVAL;
        }
        if (!r->prefix[0])
            snprintf(r->prefix, sizeof(r->prefix), "%s", r->location);
        else if (!normalize_location(r->prefix, sizeof(r->prefix), true)) {
            snprintf(err, errlen, "invalid prefix \"%.200s\"", r->prefix);
            return -EINVAL;
        }
        for (size_t k = 0; k < r->n_mirrors; k++) {
            struct registries_conf_mirror *m = &r->mirrors[k];
            if (!normalize_location(m->location, sizeof(m->location), false)) {
                snprintf(err, errlen, "invalid mirror location \"%.200s\"", m->location);
                return -EINVAL;
            }
            if (b->digest_only[i] && m->pull == REGISTRIES_CONF_PULL_ALL)
                m->pull = REGISTRIES_CONF_PULL_DIGEST_ONLY;
        }
    }
    return 0;
}

int registries_conf_parse(const char *text, size_t len, struct registries_conf *out, char *err,
                          size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen) err[0] = '\0';
    if (len > REGISTRIES_CONF_MAX_BYTES) return -EFBIG;
    static const struct toml_handler handler = {.table = on_table, .assign = on_assign};
    struct builder b = {.conf = out, .ctx = CTX_ROOT};
    int rc = toml_parse(text, len, &handler, &b, err, errlen);
    char tmp[1];
    if (!rc) rc = finish(&b, err && errlen ? err : tmp, err && errlen ? errlen : sizeof(tmp));
    free(b.digest_only);
    if (rc) {
        if (rc == -ENOMEM && err && errlen) snprintf(err, errlen, "out of memory");
        registries_conf_free(out);
    }
    return rc;
}

void registries_conf_free(struct registries_conf *c)
{
    if (!c) return;
    free(c->regs);
    c->regs = NULL;
    c->n = 0;
}

/* ---- matching ---- */

/* "host[:port]/repo" with the host normalized as the entries are. */
static int reference(const char *hostport, const char *repo, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s%s%s", hostport, repo && *repo ? "/" : "", repo ? repo : "");
    if (n < 0 || (size_t)n >= outlen) return -EINVAL;
    return normalize_location(out, outlen, false) ? 0 : -EINVAL;
}

static bool prefix_matches(const char *prefix, const char *ref, size_t *rank)
{
    if (strncmp(prefix, "*.", 2) == 0) {
        const char *dom = prefix + 1; /* ".example.com" */
        size_t hl = strcspn(ref, ":/");
        size_t dl = strlen(dom);
        *rank = strlen(prefix);
        return hl > dl && strncmp(ref + hl - dl, dom, dl) == 0;
    }
    size_t n = strlen(prefix);
    *rank = n;
    return strncmp(ref, prefix, n) == 0 && (ref[n] == '\0' || ref[n] == '/');
}

const struct registries_conf_registry *registries_conf_match(const struct registries_conf *c,
                                                             const char *hostport, const char *repo)
{
    char ref[REGISTRIES_CONF_LOCATION_MAX];
    if (!c || !hostport || reference(hostport, repo, ref, sizeof(ref)) != 0) return NULL;
    const struct registries_conf_registry *best = NULL;
    size_t best_rank = 0;
    for (size_t i = 0; i < c->n; i++) {
        size_t rank;
        if (prefix_matches(c->regs[i].prefix, ref, &rank) && (!best || rank > best_rank)) {
            best = &c->regs[i];
            best_rank = rank;
        }
    }
    return best;
}

int registries_conf_mirror_ref(const struct registries_conf_registry *e,
                               const struct registries_conf_mirror *m, const char *hostport,
                               const char *repo, char mhost[REF_HOST_MAX + 8],
                               char mrepo[REF_NAME_MAX + 1])
{
    char ref[REGISTRIES_CONF_LOCATION_MAX], mref[REGISTRIES_CONF_LOCATION_MAX * 2];
    size_t rank;
    if (!e || !m || !repo || reference(hostport, repo, ref, sizeof(ref)) != 0 ||
        !prefix_matches(e->prefix, ref, &rank))
        return -EINVAL;
    /* a wildcard entry maps the host; a prefix maps what follows it */
    const char *suffix =
        strncmp(e->prefix, "*.", 2) == 0 ? ref + strcspn(ref, "/") : ref + strlen(e->prefix);
    int n = snprintf(mref, sizeof(mref), "%s%s", m->location, suffix);
    if (n < 0 || (size_t)n >= sizeof(mref)) return -EINVAL;
    size_t hl = strcspn(mref, "/");
    if (hl >= REF_HOST_MAX + 8 || mref[hl] != '/') return -EINVAL;
    memcpy(mhost, mref, hl);
    mhost[hl] = '\0';
    const char *r = mref + hl + 1;
    if (strlen(r) > REF_NAME_MAX || !ref_valid_hostport(mhost) || !ref_valid_repo(r))
        return -EINVAL;
    snprintf(mrepo, REF_NAME_MAX + 1, "%s", r);
    return 0;
}
