/* Challenges, token responses and the token cache. */
#include "common/timeutil.h"
#include "transport/auth.h"

#include "transport/http_token.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CACHE_SLOTS 64            /* scopes in use at once: one per repository browsed */
#define TOKEN_MARGIN_MS 10000     /* renew a little before the registry would refuse */
#define TOKEN_LIFETIME_MAX_S 3600 /* do not trust a token forever, whatever it says */

struct token_slot {
    char *scope;
    char *token;
    int64_t expires; /* CLOCK_MONOTONIC milliseconds */
};

struct auth {
    pthread_mutex_t lock;
    struct auth_challenge challenge;
    bool have_challenge;
    struct token_slot slots[CACHE_SLOTS];
};

/* ---- challenges ---- */

/* token or quoted-string into out; NULL when malformed or longer than out (then *too_long:
 * the log says which, "malformed" would send users looking for the wrong problem). */
static const char *parse_value(const char *p, char *out, size_t outlen, bool *too_long)
{
    size_t n = 0;
    *too_long = false;
    if (*p != '"') {
        /* strictly a token, but registries send unquoted URLs: take all up to a separator */
        while ((unsigned char)*p > 0x20 && *p != ',' && *p != '"' && *p != 0x7f) {
            if (n + 1 >= outlen) {
                *too_long = true;
                return NULL;
            }
            out[n++] = *p++;
        }
        out[n] = '\0';
        return p;
    }
    for (p++; *p != '"'; p++) {
        if (*p == '\0') return NULL;
        if (*p == '\\' && p[1]) p++;
        if (n + 1 >= outlen) {
            *too_long = true;
            return NULL;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
    return p + 1;
}

static char *param_slot(struct auth_challenge *ch, const char *name, size_t *len)
{
    if (strcasecmp(name, "realm") == 0) {
        *len = sizeof(ch->realm);
        return ch->realm;
    }
    if (strcasecmp(name, "service") == 0) {
        *len = sizeof(ch->service);
        return ch->service;
    }
    if (strcasecmp(name, "scope") == 0) {
        *len = sizeof(ch->scope);
        return ch->scope;
    }
    if (strcasecmp(name, "error") == 0) {
        *len = sizeof(ch->error);
        return ch->error;
    }
    return NULL;
}

static enum auth_scheme scheme_of(const char *name)
{
    if (strcasecmp(name, "bearer") == 0) return AUTH_BEARER;
    if (strcasecmp(name, "basic") == 0) return AUTH_BASIC;
    return AUTH_OTHER;
}

/* name=value pairs after the scheme, up to the end or the start of the next challenge, whose
 * position goes to *next (NULL at the end). */
static int parse_params(const char *p, struct auth_challenge *out, const char **next)
{
    char name[64], scratch[1024];
    *next = NULL;
    for (;;) {
        p = skip_ws(p);
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0') return 0;
        const char *start = p;
        size_t n = 0;
        while (is_token_char(*p) && n + 1 < sizeof(name))
            name[n++] = *p++;
        name[n] = '\0';
        p = skip_ws(p);
        if (n == 0) return -EINVAL;
        if (*p != '=') { /* "Basic realm=x, Bearer ..." : the next challenge */
            *next = start;
            return 0;
        }
        size_t len;
        char *dst = param_slot(out, name, &len);
        if (!dst) {
            dst = scratch;
            len = sizeof(scratch);
        }
        bool too_long;
        p = parse_value(skip_ws(p + 1), dst, len, &too_long);
        if (!p) return too_long ? -ENAMETOOLONG : -EINVAL;
    }
}

/* One challenge from p; *next is where the following one starts (NULL: none). */
static int parse_one(const char *p, struct auth_challenge *out, const char **next)
{
    char scheme[32];
    memset(out, 0, sizeof(*out));
    *next = NULL;
    p = skip_ws(p);
    size_t n = 0;
    while (is_token_char(*p) && n + 1 < sizeof(scheme))
        scheme[n++] = *p++;
    scheme[n] = '\0';
    if (n == 0 || (*p && *p != ' ' && *p != '\t' && *p != ',')) return -EINVAL;
    out->scheme = scheme_of(scheme);
    int rc = parse_params(p, out, next);
    if (rc) memset(out, 0, sizeof(*out));
    return rc;
}

int auth_parse_challenge(const char *value, struct auth_challenge *out)
{
    const char *next;
    if (!value) {
        memset(out, 0, sizeof(*out));
        return -EINVAL;
    }
    return parse_one(value, out, &next);
}

static int scheme_rank(enum auth_scheme s)
{
    return s == AUTH_BEARER ? 3 : s == AUTH_BASIC ? 2 : 1;
}

int auth_parse_best_challenge(const char *value, struct auth_challenge *out)
{
    struct auth_challenge ch;
    bool found = false;
    memset(out, 0, sizeof(*out));
    if (!value) return -EINVAL;
    const char *p = value;
    int rc = -EINVAL;
    for (int i = 0; p && i < 16; i++) {
        const char *next;
        rc = parse_one(p, &ch, &next);
        if (rc != 0) break;
        if (!found || scheme_rank(ch.scheme) > scheme_rank(out->scheme)) *out = ch;
        found = true;
        p = next;
    }
    return found ? 0 : rc;
}

/* ---- token responses ---- */

static bool valid_token(const char *t)
{
    size_t len = strnlen(t, AUTH_TOKEN_MAX + 1);
    if (len == 0 || len > AUTH_TOKEN_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f) return false;
    return true;
}

/* Copies a string member when it is a usable token, and wipes it in the parse tree. */
static char *take_secret(const cJSON *item)
{
    if (!cJSON_IsString(item) || !item->valuestring) return NULL;
    char *copy = valid_token(item->valuestring) ? strdup(item->valuestring) : NULL;
    explicit_bzero(item->valuestring, strlen(item->valuestring));
    return copy;
}

char *auth_parse_token_reply(const char *json, size_t len, long *expires_in, char **refresh_token)
{
    *expires_in = 60;
    if (refresh_token) *refresh_token = NULL;
    if (!json || len == 0 || len > AUTH_TOKEN_RESPONSE_MAX) return NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NULL;
    }
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(root, "token");
    if (!cJSON_IsString(tok) || !tok->valuestring || !tok->valuestring[0])
        tok = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    if (cJSON_IsNumber(exp) && exp->valuedouble >= 1 && exp->valuedouble <= 1e9)
        *expires_in = (long)exp->valuedouble;
    char *token = take_secret(tok);
    if (refresh_token)
        *refresh_token = take_secret(cJSON_GetObjectItemCaseSensitive(root, "refresh_token"));
    /* the parse tree holds the tokens too */
    static const char *const secrets[] = {"token", "access_token", "refresh_token"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, secrets[i]);
        if (cJSON_IsString(s) && s->valuestring)
            explicit_bzero(s->valuestring, strlen(s->valuestring));
    }
    cJSON_Delete(root);
    return token;
}

char *auth_parse_token_response(const char *json, size_t len, long *expires_in)
{
    return auth_parse_token_reply(json, len, expires_in, NULL);
}

void auth_token_free(char *token)
{
    if (!token) return;
    explicit_bzero(token, strlen(token));
    free(token);
}

/* ---- the cache ---- */

static void slot_clear(struct token_slot *s)
{
    free(s->scope);
    auth_token_free(s->token);
    memset(s, 0, sizeof(*s));
}

int auth_new(struct auth **out)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (!a) return -ENOMEM;
    pthread_mutex_init(&a->lock, NULL);
    *out = a;
    return 0;
}

void auth_free(struct auth *a)
{
    if (!a) return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        slot_clear(&a->slots[i]);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void auth_remember_challenge(struct auth *a, const struct auth_challenge *ch)
{
    pthread_mutex_lock(&a->lock);
    a->challenge = *ch;
    a->have_challenge = true;
    pthread_mutex_unlock(&a->lock);
}

bool auth_get_challenge(struct auth *a, struct auth_challenge *out)
{
    pthread_mutex_lock(&a->lock);
    bool have = a->have_challenge;
    if (have) *out = a->challenge;
    pthread_mutex_unlock(&a->lock);
    return have;
}

static struct token_slot *find_slot(struct auth *a, const char *scope)
{
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        if (a->slots[i].scope && strcmp(a->slots[i].scope, scope) == 0) return &a->slots[i];
    return NULL;
}

char *auth_token_get(struct auth *a, const char *scope)
{
    char *copy = NULL;
    pthread_mutex_lock(&a->lock);
    struct token_slot *s = find_slot(a, scope);
    if (s && s->expires > monotonic_ms_now())
        copy = strdup(s->token);
    else if (s)
        slot_clear(s);
    pthread_mutex_unlock(&a->lock);
    return copy;
}

/* The slot for scope: its own, else an empty one, else the one expiring first. */
static struct token_slot *victim_slot(struct auth *a, const char *scope)
{
    struct token_slot *s = find_slot(a, scope);
    if (s) return s;
    struct token_slot *best = &a->slots[0];
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (!a->slots[i].scope) return &a->slots[i];
        if (a->slots[i].expires < best->expires) best = &a->slots[i];
    }
    return best;
}

void auth_token_put(struct auth *a, const char *scope, const char *token, long expires_in)
{
    if (expires_in > TOKEN_LIFETIME_MAX_S) expires_in = TOKEN_LIFETIME_MAX_S;
    if (expires_in < 1) return;
    /* renew early: by the margin, or by a fifth of a short lifetime */
    int64_t life = (int64_t)expires_in * 1000;
    int64_t margin = life / 5 < TOKEN_MARGIN_MS ? life / 5 : TOKEN_MARGIN_MS;
    char *scope_copy = strdup(scope);
    char *token_copy = strdup(token);
    if (!scope_copy || !token_copy) {
        free(scope_copy);
        auth_token_free(token_copy);
        return;
    }
    pthread_mutex_lock(&a->lock);
    struct token_slot *s = victim_slot(a, scope);
    slot_clear(s);
    s->scope = scope_copy;
    s->token = token_copy;
    s->expires = monotonic_ms_now() + life - margin;
    pthread_mutex_unlock(&a->lock);
}

void auth_token_drop(struct auth *a, const char *scope)
{
    pthread_mutex_lock(&a->lock);
    struct token_slot *s = find_slot(a, scope);
    if (s) slot_clear(s);
    pthread_mutex_unlock(&a->lock);
}
