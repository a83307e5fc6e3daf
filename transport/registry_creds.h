/*
 * The credentials of one registry, as the authenticating code asks for them: from a credential
 * helper (credHelpers / credsStore), else from the auth file's entries (longest namespaced key).
 * The auth file is re-read when it changes (checked at most every 2 s, so `skopeo login` after
 * mounting works); a helper's answer is kept for 5 minutes (30 s when it had none). Thread-safe.
 * Private to transport/.
 */
#ifndef REGISTRYFS_REGISTRY_CREDS_H
#define REGISTRYFS_REGISTRY_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "transport/authfile.h"

struct reg_creds;

/* authfile: -o authfile= (NULL: the default search, redone when files appear). hostport: the
 * registry as named by the user; docker_hub: it is Docker Hub. No I/O yet. */
int reg_creds_new(const char *authfile, const char *hostport, bool docker_hub,
                  struct reg_creds **out) __attribute__((warn_unused_result));
void reg_creds_free(struct reg_creds *c);

/* Credentials for repo (wire name; NULL for the registry itself). 1 found (out filled, free
 * with credential_clear; source says where from, for log lines), 0 none (source says where we
 * looked), -ENOMEM. */
int reg_creds_get(struct reg_creds *c, const char *repo, struct credential *out, char *source,
                  size_t srclen) __attribute__((warn_unused_result));

/* The registry or its token service refused what reg_creds_get gave: the next request asks the
 * helper again (at most every 30 s). */
void reg_creds_refused(struct reg_creds *c);

/* An OAuth2 server rotated an identity token: use new_token wherever old_token was (in memory
 * only; the auth file is never written). */
void reg_creds_rotate(struct reg_creds *c, const char *old_token, const char *new_token);

#endif
