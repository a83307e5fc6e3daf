#include "common/slots.h"

void slots_init(struct slots *s, int n)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->free_slots = s->total = n > 0 ? n : 1;
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

void slots_acquire(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->free_slots <= 0)
        pthread_cond_wait(&s->freed, &s->lock);
    s->free_slots--;
    pthread_mutex_unlock(&s->lock);
}

void slots_release(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    s->free_slots++;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->lock);
}
