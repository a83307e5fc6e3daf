/* registries.conf mirrors: one registry object per mirror host, created and pinged on first
 * use; reads try them in order before the registry itself. Writes never go to a mirror. */
#include "transport/registry_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/timeutil.h"
#include "common/log.h"

#define MIRROR_RETRY_MS 30000 /* a mirror that did not answer its ping is skipped this long */

static bool pull_allowed(enum registries_conf_pull pull, enum reg_read_kind kind)
{
    switch (pull) {
    case REGISTRIES_CONF_PULL_DIGEST_ONLY:
        return kind == REG_READ_BLOB || kind == REG_READ_MANIFEST_DIGEST;
    case REGISTRIES_CONF_PULL_TAG_ONLY:
        return kind != REG_READ_MANIFEST_DIGEST;
    case REGISTRIES_CONF_PULL_ALL:
        break;
    }
    return true;
}

/* The mirror's slot, created on first use. Under r->lock. */
static struct reg_mirror *mirror_slot(struct registry *r, const char *hostport, bool insecure)
{
    for (size_t i = 0; i < r->n_mirrors; i++)
        if (strcmp(r->mirrors[i].hostport, hostport) == 0 && r->mirrors[i].insecure == insecure)
            return &r->mirrors[i];
    if (r->n_mirrors >= REG_MIRRORS_MAX) return NULL;
    struct registry_options opt = {.address = hostport,
                                   .tls_verify = r->tls_verify_opt && !insecure,
                                   .cert_dir = r->cert_dir,
                                   .authfile = r->authfile};
    struct registry *m;
    if (registry_new(&opt, &m) != 0) {
        log_warn("registry %s: mirror %s: cannot set it up", r->addr.hostport, hostport);
        return NULL;
    }
    m->insecure = insecure; /* plain http allowed, as for the registry's own entry */
    struct reg_mirror *slot = &r->mirrors[r->n_mirrors++];
    memset(slot, 0, sizeof(*slot));
    snprintf(slot->hostport, sizeof(slot->hostport), "%s", hostport);
    slot->insecure = insecure;
    slot->reg = m;
    return slot;
}

/* The mirror's registry once it has answered a ping; NULL while it is unusable. */
static struct registry *mirror_ready(struct registry *r, const char *hostport, bool insecure)
{
    pthread_mutex_lock(&r->lock);
    struct reg_mirror *slot = mirror_slot(r, hostport, insecure);
    struct registry *m = slot ? slot->reg : NULL;
    bool ping =
        slot && (!slot->pinged ||
                 (slot->ping_rc != 0 && monotonic_ms_now() - slot->ping_at_ms >= MIRROR_RETRY_MS));
    bool usable = slot && slot->pinged && slot->ping_rc == 0;
    pthread_mutex_unlock(&r->lock);
    if (!ping) return usable ? m : NULL;
    int rc = registry_ping(m); /* logs its failure */
    pthread_mutex_lock(&r->lock);
    slot->pinged = true;
    slot->ping_rc = rc;
    slot->ping_at_ms = monotonic_ms_now();
    pthread_mutex_unlock(&r->lock);
    if (rc)
        log_info("registry %s: mirror %s unavailable (%s); not trying it for %d s",
                 r->addr.hostport, hostport, strerror(-rc), MIRROR_RETRY_MS / 1000);
    return rc ? NULL : m;
}

size_t reg_mirror_sources(struct registry *r, const char *repo, enum reg_read_kind kind,
                          struct reg_source *out, size_t max)
{
    char wire[WIRE_REPO_MAX + 1];
    if (r->conf.n == 0 || ref_wire_repo(&r->addr, repo, wire, sizeof(wire)) != 0) return 0;
    const struct registries_conf_registry *e =
        registries_conf_match(&r->conf, r->addr.hostport, wire);
    if (!e) return 0;
    size_t n = 0;
    for (size_t k = 0; k < e->n_mirrors && n < max; k++) {
        const struct registries_conf_mirror *mc = &e->mirrors[k];
        if (!pull_allowed(mc->pull, kind)) continue;
        char mhost[REF_HOST_MAX + 8];
        if (registries_conf_mirror_ref(e, mc, r->addr.hostport, wire, mhost, out[n].repo) != 0) {
            log_debug("registry %s: mirror %s has no valid name for %s", r->addr.hostport,
                      mc->location, wire);
            continue;
        }
        out[n].reg = mirror_ready(r, mhost, mc->insecure);
        if (out[n].reg) n++;
    }
    return n;
}

void reg_mirrors_free(struct registry *r)
{
    for (size_t i = 0; i < r->n_mirrors; i++)
        registry_free(r->mirrors[i].reg);
    r->n_mirrors = 0;
}

void registry_abort(struct registry *r)
{
    if (!r) return;
    http_pool_abort(r->http);
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_mirrors; i++)
        if (r->mirrors[i].reg) http_pool_abort(r->mirrors[i].reg->http);
    pthread_mutex_unlock(&r->lock);
}

bool registry_last_unanswered(void)
{
    return http_last_unanswered();
}
