#include "common/slots.h"

#include <stdbool.h>

void slots_init(struct slots *s, int n)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->free_slots = s->total = n > 0 ? n : 1;
    for (int i = 0; i < SLOTS_PRIORITIES; i++)
        s->waiting[i] = 0;
}

void slots_destroy(struct slots *s)
{
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->lock);
}

void slots_resize(struct slots *s, int n)
{
    if (n < 1) n = 1;
    pthread_mutex_lock(&s->lock);
    s->free_slots += n - s->total;
    s->total = n;
    pthread_cond_broadcast(&s->freed);
    pthread_mutex_unlock(&s->lock);
}

/* Called with s->lock held. */
static bool more_urgent_waiting(const struct slots *s, int prio)
{
    for (int q = 0; q < prio; q++)
        if (s->waiting[q]) return true;
    return false;
}

void slots_acquire_prio(struct slots *s, int prio)
{
    if (prio < 0) prio = 0;
    if (prio >= SLOTS_PRIORITIES) prio = SLOTS_PRIORITIES - 1;
    pthread_mutex_lock(&s->lock);
    s->waiting[prio]++;
    while (s->free_slots <= 0 || more_urgent_waiting(s, prio))
        pthread_cond_wait(&s->freed, &s->lock);
    s->waiting[prio]--;
    s->free_slots--;
    if (s->free_slots > 0) pthread_cond_broadcast(&s->freed); /* a less urgent one may go */
    pthread_mutex_unlock(&s->lock);
}

void slots_acquire(struct slots *s)
{
    slots_acquire_prio(s, 0);
}

void slots_release(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    s->free_slots++;
    pthread_cond_broadcast(&s->freed); /* the most urgent waiter may not be the first woken */
    pthread_mutex_unlock(&s->lock);
}
