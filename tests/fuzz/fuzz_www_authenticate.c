/*
 * WWW-Authenticate challenges (auth_parse_challenge, auth_parse_best_challenge) and, on the
 * same bytes, the token service's JSON reply (auth_parse_token_reply). Invariants: fields are
 * terminated and within their arrays; a failed parse leaves AUTH_NONE; best picks a Bearer
 * when the first challenge alone is one; a token is 1..AUTH_TOKEN_MAX visible ASCII bytes.
 */
#include <errno.h>

#include "tests/fuzz/fuzz.h"
#include "transport/auth.h"

static void check_challenge(const struct auth_challenge *ch)
{
    FUZZ_ASSERT(ch->scheme >= AUTH_BASIC && ch->scheme <= AUTH_OTHER);
    FUZZ_ASSERT(fuzz_terminated(ch->realm, sizeof(ch->realm)));
    FUZZ_ASSERT(fuzz_terminated(ch->service, sizeof(ch->service)));
    FUZZ_ASSERT(fuzz_terminated(ch->scope, sizeof(ch->scope)));
    FUZZ_ASSERT(fuzz_terminated(ch->error, sizeof(ch->error)));
}

static void check_token(const char *t)
{
    if (!t) return;
    size_t n = strlen(t);
    FUZZ_ASSERT(n >= 1 && n <= AUTH_TOKEN_MAX);
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(t[i] > ' ' && t[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    char *s = fuzz_cstr(data, size);
    struct auth_challenge first, best;
    memset(&first, 0x5a, sizeof(first));
    int rc1 = auth_parse_challenge(s, &first);
    if (rc1 == 0)
        check_challenge(&first);
    else
        FUZZ_ASSERT((rc1 == -EINVAL || rc1 == -ENAMETOOLONG) && first.scheme == AUTH_NONE);

    memset(&best, 0x5a, sizeof(best));
    int rc2 = auth_parse_best_challenge(s, &best);
    if (rc2 == 0) {
        check_challenge(&best);
        if (rc1 == 0 && first.scheme == AUTH_BEARER) FUZZ_ASSERT(best.scheme == AUTH_BEARER);
    } else {
        FUZZ_ASSERT(rc2 == -EINVAL || rc2 == -ENAMETOOLONG);
    }
    /* whatever parses as a first challenge makes the list parse too */
    if (rc1 == 0) FUZZ_ASSERT(rc2 == 0);
    free(s);

    /* the token endpoint's reply: exact-length bytes */
    char *json = fuzz_bytes(data, size);
    long expires = -1;
    char *refresh = NULL;
    char *tok = auth_parse_token_reply(json, size, &expires, &refresh);
    check_token(tok);
    check_token(refresh);
    if (tok) FUZZ_ASSERT(expires > 0);
    auth_token_free(tok);
    auth_token_free(refresh);
    free(json);
    return 0;
}
