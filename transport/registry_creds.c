/* Where a registry's credentials come from, kept fresh. */
#include "transport/registry_creds.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/timeutil.h"
#include "common/log.h"
#include "transport/credhelper.h"

#define RECHECK_MS 2000       /* stat the auth file at most this often */
#define HELPER_KEEP_MS 300000 /* a helper's answer */
#define HELPER_RETRY_MS 30000 /* after a helper had nothing, failed, or was refused */
#define ROTATIONS_MAX 8

struct rotation {
    char *old_token;
    char *new_token;
};

/* The auth files of the search (or the one -o authfile=) and what stat said of each. */
struct candidates {
    size_t n;
    char path[AUTHFILE_SEARCH_MAX][PATH_MAX];
    struct stat st[AUTHFILE_SEARCH_MAX];
    bool exists[AUTHFILE_SEARCH_MAX];
};

struct reg_creds {
    pthread_mutex_t lock;
    char hostport[300];
    char helper_server[300]; /* what a helper gets on stdin */
    char *explicit_path;     /* -o authfile= */
    /* the files looked at, as last seen: a change to any of them redoes the search */
    struct candidates seen;
    /* the file in use: the first with an entry for the registry */
    char path[PATH_MAX];
    bool have_file;
    char looked[320]; /* where we looked, when no file had an entry (for log lines) */
    struct authfile *af;
    int64_t checked_ms;
    bool warned_missing;
    /* the helper's answer */
    struct credential helper_cred;
    int helper_rc; /* 1 have, 0 none, <0 failed */
    int64_t helper_at;
    bool helper_asked;
    char helper_name[CRED_HELPER_NAME_MAX + 1];
    struct rotation rotations[ROTATIONS_MAX];
};

int reg_creds_new(const char *authfile, const char *hostport, bool docker_hub,
                  struct reg_creds **out)
{
    struct reg_creds *c = calloc(1, sizeof(*c));
    if (!c) return -ENOMEM;
    if (authfile && *authfile) {
        c->explicit_path = strdup(authfile);
        if (!c->explicit_path) {
            free(c);
            return -ENOMEM;
        }
    }
    pthread_mutex_init(&c->lock, NULL);
    snprintf(c->hostport, sizeof(c->hostport), "%s", hostport);
    /* docker files Docker Hub's credentials under its v1 index URL */
    snprintf(c->helper_server, sizeof(c->helper_server), "%s",
             docker_hub ? "https://index.docker.io/v1/" : hostport);
    c->checked_ms = INT64_MIN / 2;
    *out = c;
    return 0;
}

static void forget_helper(struct reg_creds *c)
{
    credential_clear(&c->helper_cred);
    c->helper_asked = false;
    c->helper_rc = 0;
}

void reg_creds_free(struct reg_creds *c)
{
    if (!c) return;
    authfile_free(c->af);
    forget_helper(c);
    for (size_t i = 0; i < ROTATIONS_MAX; i++) {
        credential_clear(&(struct credential){.password = c->rotations[i].old_token});
        credential_clear(&(struct credential){.password = c->rotations[i].new_token});
    }
    free(c->explicit_path);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void look_at(const struct reg_creds *c, struct candidates *out)
{
    if (c->explicit_path) {
        snprintf(out->path[0], PATH_MAX, "%s", c->explicit_path);
        out->n = 1;
    } else {
        out->n = authfile_search_paths(out->path);
    }
    for (size_t i = 0; i < out->n; i++)
        out->exists[i] = stat(out->path[i], &out->st[i]) == 0;
}

static bool same_candidates(const struct candidates *a, const struct candidates *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++) {
        if (a->exists[i] != b->exists[i] || strcmp(a->path[i], b->path[i]) != 0) return false;
        if (a->exists[i] && !same_file(&a->st[i], &b->st[i])) return false;
    }
    return true;
}

/* Loads the files in order until one has an entry for the registry (containers-auth.json(5):
 * a file without one does not hide the next). -o authfile= is the only file, entry or not. */
static void search_files(struct reg_creds *c)
{
    const struct candidates *f = &c->seen;
    size_t used = 0;
    c->looked[0] = '\0';
    for (size_t i = 0; i < f->n && !c->have_file; i++) {
        if (!f->exists[i]) continue;
        struct authfile *af = NULL;
        if (authfile_load(f->path[i], c->hostport, &af) != 0) af = NULL;
        if (c->explicit_path || authfile_has_entry(af)) {
            c->af = af;
            c->have_file = true;
            snprintf(c->path, sizeof(c->path), "%s", f->path[i]);
            log_debug("registry %s: credentials from %s", c->hostport, f->path[i]);
            break;
        }
        authfile_free(af);
        int n = snprintf(c->looked + used, sizeof(c->looked) - used, "%s%s", used ? ", " : "",
                         f->path[i]);
        if (n > 0) used = strlen(c->looked);
    }
    const char *helper = authfile_helper(c->af);
    snprintf(c->helper_name, sizeof(c->helper_name), "%s", helper ? helper : "");
}

/* Which file, and (re)reads the files when one of them appeared, went or changed. Under the
 * lock. */
static void refresh_file(struct reg_creds *c)
{
    int64_t now = monotonic_ms_now();
    if (now - c->checked_ms < RECHECK_MS) return;
    c->checked_ms = now;
    struct candidates *found = malloc(sizeof(*found));
    if (!found) return; /* keep what we have; looked at again next time */
    look_at(c, found);
    bool unchanged = c->seen.n && same_candidates(found, &c->seen);
    if (c->explicit_path && !found->exists[0] && !c->warned_missing)
        log_warn("authfile %s: does not exist; no credentials for %s", c->explicit_path,
                 c->hostport);
    c->warned_missing = c->explicit_path && !found->exists[0];
    if (!unchanged) {
        c->seen = *found;
        authfile_free(c->af);
        c->af = NULL;
        c->have_file = false;
        forget_helper(c);
        search_files(c);
    }
    free(found);
}

/* Asks the helper when its last answer is too old. Under the lock. */
static void refresh_helper(struct reg_creds *c)
{
    if (!c->helper_name[0]) return;
    int64_t keep = c->helper_rc == 1 ? HELPER_KEEP_MS : HELPER_RETRY_MS;
    if (c->helper_asked && monotonic_ms_now() - c->helper_at < keep) return;
    credential_clear(&c->helper_cred);
    c->helper_rc = credhelper_get(c->helper_name, c->helper_server, &c->helper_cred);
    c->helper_at = monotonic_ms_now();
    c->helper_asked = true;
}

static void apply_rotation(struct reg_creds *c, struct credential *cred)
{
    if (!cred->identity_token) return;
    for (size_t i = 0; i < ROTATIONS_MAX; i++) {
        struct rotation *r = &c->rotations[i];
        if (r->old_token && strcmp(r->old_token, cred->identity_token) == 0) {
            char *copy = strdup(r->new_token);
            if (!copy) return;
            credential_clear(&(struct credential){.password = cred->identity_token});
            cred->identity_token = copy;
            return;
        }
    }
}

int reg_creds_get(struct reg_creds *c, const char *repo, struct credential *out, char *source,
                  size_t srclen)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->lock);
    refresh_file(c);
    refresh_helper(c);
    int rc = 0;
    if (c->helper_name[0] && c->helper_rc == 1) {
        rc = credential_copy(out, &c->helper_cred);
        rc = rc ? rc : 1;
        snprintf(source, srclen, "credential helper docker-credential-%s", c->helper_name);
    }
    if (rc == 0) {
        rc = authfile_lookup(c->af, repo, out);
        if (c->have_file)
            snprintf(source, srclen, "%s", c->path);
        else if (c->looked[0])
            snprintf(source, srclen, "%s", c->looked);
        else
            snprintf(source, srclen, "%s", c->explicit_path ? c->explicit_path : "no auth file");
    }
    if (rc == 1) apply_rotation(c, out);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void reg_creds_refused(struct reg_creds *c)
{
    pthread_mutex_lock(&c->lock);
    /* ask again, but not at once: the refusal may be for good */
    if (c->helper_asked && c->helper_rc == 1)
        c->helper_at = monotonic_ms_now() - HELPER_KEEP_MS + HELPER_RETRY_MS;
    c->checked_ms = INT64_MIN / 2; /* and look at the file again at the next need */
    pthread_mutex_unlock(&c->lock);
}

void reg_creds_rotate(struct reg_creds *c, const char *old_token, const char *new_token)
{
    if (!old_token || !new_token || strcmp(old_token, new_token) == 0) return;
    char *o = strdup(old_token), *n = strdup(new_token);
    if (!o || !n) {
        free(o);
        free(n);
        return;
    }
    pthread_mutex_lock(&c->lock);
    struct rotation *slot = NULL;
    for (size_t i = 0; i < ROTATIONS_MAX && !slot; i++) {
        struct rotation *r = &c->rotations[i];
        /* a chain a -> b -> c: whoever still holds a or b gets c */
        if (!r->old_token || strcmp(r->new_token, old_token) == 0 ||
            strcmp(r->old_token, old_token) == 0)
            slot = r;
    }
    if (!slot) slot = &c->rotations[0];
    if (slot->old_token && strcmp(slot->new_token, old_token) == 0) {
        /* keep the original old token, point it at the newest */
        credential_clear(&(struct credential){.password = slot->new_token});
        slot->new_token = n;
        credential_clear(&(struct credential){.password = o});
    } else {
        credential_clear(&(struct credential){.password = slot->old_token});
        credential_clear(&(struct credential){.password = slot->new_token});
        slot->old_token = o;
        slot->new_token = n;
    }
    pthread_mutex_unlock(&c->lock);
}
