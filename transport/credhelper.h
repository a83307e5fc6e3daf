/*
 * Docker credential helpers: `docker-credential-NAME get` with the registry host on stdin,
 * answering {"ServerURL":..,"Username":..,"Secret":..} on stdout, as docker runs them. The
 * helper's output is never logged (it holds the secret); it is bounded in size and time.
 * Private to transport/.
 */
#ifndef REGISTRYFS_CREDHELPER_H
#define REGISTRYFS_CREDHELPER_H

#include <stddef.h>

#include "transport/authfile.h"

#define CREDHELPER_OUTPUT_MAX (64u << 10)
#define CREDHELPER_TIMEOUT_MS 10000

/*
 * Runs docker-credential-NAME (found on PATH) with "get". 1 with the credentials in out,
 * 0 when the helper has none for server ("credentials not found"), else -errno (-ENOENT: no
 * such helper, -ETIMEDOUT, -EIO: it failed or answered garbage), logged without its output.
 */
int credhelper_get(const char *name, const char *server, struct credential *out)
    __attribute__((warn_unused_result));

/* Parses a helper's answer. Username "<token>" means Secret is an identity token.
 * 1 credentials, 0 empty ones, -EINVAL malformed, -ENOMEM. */
int credhelper_parse(const char *json, size_t len, struct credential *out)
    __attribute__((warn_unused_result));

#endif
