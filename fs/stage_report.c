/* At unmount, the images written but not published: one log line each (docs/write.md). */
#include "fs/stage_report.h"

#include <pthread.h>
#include <string.h>

#include "common/log.h"
#include "common/strlist.h"
#include "fs/stage.h"

static void report_host(struct host *h)
{
    struct strlist keys = STRLIST_INIT;
    pthread_mutex_lock(&h->stages_lock);
    struct strmap_iter it = strmap_iter(&h->stages);
    const char *key;
    while (strmap_next(&it, &key, NULL))
        strlist_push(&keys, key);
    pthread_mutex_unlock(&h->stages_lock);
    for (size_t i = 0; i < keys.len; i++) {
        char *colon = strrchr(keys.items[i], ':');
        *colon = '\0';
        struct stage *s = stage_find(h, keys.items[i], colon + 1);
        if (!s) continue;
        char text[512];
        stage_status_text(s, text, sizeof(text));
        if ((s->files && s->status != STAGE_PUBLISHED) || s->status == STAGE_FAILED)
            log_warn("%s/%s:%s was written but not published: %s", h->name, s->repo, s->tag, text);
        stage_put(s);
    }
    strlist_free(&keys);
}

static void report_host_void(void *h)
{
    report_host(h);
}

void stage_report_unpublished(struct rfs *fs)
{
    if (fs->single) {
        report_host(fs->single);
        return;
    }
    pthread_mutex_lock(&fs->lock);
    strmap_each(&fs->hosts, report_host_void);
    pthread_mutex_unlock(&fs->lock);
}
