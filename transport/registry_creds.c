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

struct reg_creds {
    pthread_mutex_t lock;
    char hostport[300];
    char helper_server[300]; /* what a helper gets on stdin */
    char *explicit_path;     /* -o authfile= */
    /* the file in use */
    char path[PATH_MAX];
    struct stat st;
    bool have_file;
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

/* Which file, and (re)reads it when it is another one or changed. Under the lock. */
static void refresh_file(struct reg_creds *c)
{
    int64_t now = monotonic_ms_now();
    if (now - c->checked_ms < RECHECK_MS) return;
    c->checked_ms = now;
    char path[PATH_MAX];
    if (c->explicit_path) {
        snprintf(path, sizeof(path), "%s", c->explicit_path);
    } else if (authfile_default_path(path, sizeof(path)) != 0) {
        path[0] = '\0';
    }
    struct stat st;
    bool exists = path[0] && stat(path, &st) == 0;
    if (!exists) {
        if (c->explicit_path && !c->warned_missing)
            log_warn("authfile %s: does not exist; no credentials for %s", c->explicit_path,
                     c->hostport);
        c->warned_missing = true;
        if (c->have_file) {
            authfile_free(c->af);
            c->af = NULL;
            c->have_file = false;
            forget_helper(c);
        }
        return;
    }
    c->warned_missing = false;
    if (c->have_file && strcmp(path, c->path) == 0 && same_file(&st, &c->st)) return;
    authfile_free(c->af);
    c->af = NULL;
    forget_helper(c);
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->st = st;
    c->have_file = true;
    if (authfile_load(path, c->hostport, &c->af) == 0)
        log_debug("registry %s: credentials from %s", c->hostport, path);
    const char *helper = authfile_helper(c->af);
    snprintf(c->helper_name, sizeof(c->helper_name), "%s", helper ? helper : "");
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
