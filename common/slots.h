/*
 * A counting semaphore: at most N holders at once. Used to bound concurrent blob transfers
 * per registry and direction (-o max_transfers), so parallel downloads and uploads share a
 * fixed number of connections.
 */
#ifndef REGISTRYFS_SLOTS_H
#define REGISTRYFS_SLOTS_H

#include <pthread.h>

#define SLOTS_PRIORITIES 8

struct slots {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t freed;
    int free_slots;
    int total;
    int waiting[SLOTS_PRIORITIES]; /* holders-to-be, by priority (0 first) */
};

void slots_init(struct slots *s, int n);
void slots_destroy(struct slots *s);
/* Changes the number of slots; holders keep theirs (free_slots may go negative meanwhile). */
void slots_resize(struct slots *s, int n);
void slots_acquire(struct slots *s);
/* Waits until a slot is free and nobody of a more urgent priority (lower number) waits. */
void slots_acquire_prio(struct slots *s, int prio);
void slots_release(struct slots *s);

#endif
