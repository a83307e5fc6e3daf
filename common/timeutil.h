/* Time for timeouts and back-off: the monotonic clock, which wall-clock changes do not move. */
#ifndef REGISTRYFS_TIMEUTIL_H
#define REGISTRYFS_TIMEUTIL_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t monotonic_ms_now(void);

#endif
