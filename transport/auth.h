/*
 * Registry authentication state: WWW-Authenticate challenges, the bearer token service's
 * answer, and an in-memory token cache keyed by scope. Tokens never leave memory and never
 * reach a log. Private to transport/.
 */
#ifndef REGISTRYFS_AUTH_H
#define REGISTRYFS_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_MAX 16384 /* JWTs from big registries run to a few KiB */
#define AUTH_TOKEN_RESPONSE_MAX (256u << 10)

enum auth_scheme { AUTH_NONE = 0, AUTH_BASIC, AUTH_BEARER, AUTH_OTHER };

struct auth_challenge {
    enum auth_scheme scheme;
    char realm[1024];
    char service[256];
    char scope[512];
    char error[64]; /* e.g. insufficient_scope */
};

/* Parses the first challenge of a WWW-Authenticate value (scheme, then comma-separated
 * name=value or name="quoted value" parameters). 0, -EINVAL when malformed, -ENAMETOOLONG when
 * a parameter does not fit its field. */
int auth_parse_challenge(const char *value, struct auth_challenge *out)
    __attribute__((warn_unused_result));

/* Parses every challenge of a value that may hold several ("Basic realm=a, Bearer realm=b",
 * or several WWW-Authenticate headers joined with ", ") and keeps the most useful one: Bearer,
 * else Basic, else the first. Stops at the first malformed challenge, keeping what it found
 * before. 0, or when no challenge parsed the error of the first (-EINVAL, -ENAMETOOLONG). */
int auth_parse_best_challenge(const char *value, struct auth_challenge *out)
    __attribute__((warn_unused_result));

/* Extracts "token" (or "access_token") and "expires_in" (default 60 s) from a token
 * service's JSON. The token must be 1..AUTH_TOKEN_MAX visible ASCII characters (it goes
 * into a header). Returns a malloc'd token or NULL (bad JSON / no usable token). */
char *auth_parse_token_response(const char *json, size_t len, long *expires_in)
    __attribute__((warn_unused_result));

/* The same, plus an OAuth2 "refresh_token" (a rotated identity token) when the reply has one:
 * *refresh_token is then a malloc'd string (free with auth_token_free), else NULL. */
char *auth_parse_token_reply(const char *json, size_t len, long *expires_in, char **refresh_token)
    __attribute__((warn_unused_result));

struct auth;

int auth_new(struct auth **out) __attribute__((warn_unused_result));
void auth_free(struct auth *a);

/* The challenge seen on /v2/, used when a later 401 comes without one. */
void auth_remember_challenge(struct auth *a, const struct auth_challenge *ch);
bool auth_get_challenge(struct auth *a, struct auth_challenge *out);

/* A malloc'd copy of an unexpired token for scope, or NULL. A token is kept until shortly
 * before its expires_in (10 s early, or a fifth of its lifetime when that is shorter). */
char *auth_token_get(struct auth *a, const char *scope) __attribute__((warn_unused_result));
void auth_token_put(struct auth *a, const char *scope, const char *token, long expires_in);
/* Forgets a token the registry refused. */
void auth_token_drop(struct auth *a, const char *scope);

/* Frees a token after wiping it. NULL is fine. */
void auth_token_free(char *token);

#endif
