/* The table `registryfs status` prints from the daemon's JSON document (docs/status.md). */
#ifndef REGISTRYFS_STATUS_PRINT_H
#define REGISTRYFS_STATUS_PRINT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

/* A summary line, then one row per transfer. Fields of unexpected types print as "?". */
void status_print_table(FILE *out, const cJSON *doc);
/* 1536 → "1.5 KiB"; out holds at least 16 bytes. */
void status_human_bytes(uint64_t n, char *out, size_t outlen);

#endif
