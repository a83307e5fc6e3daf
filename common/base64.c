/* Standard base64 by OpenSSL: the library already links, and its decoder is the one
 * maintained against malformed input. */
#include "common/base64.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

char *base64_encode(const void *in, size_t len)
{
    if (len > (size_t)INT_MAX / 4 * 3 - 3) return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out) EVP_EncodeBlock((unsigned char *)out, in, (int)len); /* NUL-terminates */
    return out;
}

int base64_decode(const char *in, size_t inlen, char *out, size_t outlen)
{
    /* EVP_DecodeBlock skips surrounding blanks, does not check padding and counts it as
     * zero bytes: whole quads only, '=' only as the last one or two characters. */
    if (inlen % 4 || inlen > (size_t)INT_MAX / 4 * 3 || outlen == 0) return -EINVAL;
    size_t pad = inlen && in[inlen - 1] == '=' ? (inlen > 1 && in[inlen - 2] == '=' ? 2 : 1) : 0;
    if (memchr(in, '=', inlen - pad) || memchr(in, ' ', inlen) || memchr(in, '\t', inlen) ||
        memchr(in, '\n', inlen) || memchr(in, '\r', inlen))
        return -EINVAL;
    size_t max = inlen / 4 * 3;
    unsigned char *tmp = malloc(max + 1);
    if (!tmp) return -ENOMEM;
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)inlen);
    int rc = n < 0 || (size_t)n < pad || (size_t)n - pad >= outlen ? -EINVAL : n - (int)pad;
    if (rc >= 0) {
        memcpy(out, tmp, (size_t)rc);
        out[rc] = '\0';
    }
    OPENSSL_cleanse(tmp, max + 1); /* it held a password */
    free(tmp);
    return rc;
}
