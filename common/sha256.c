#include "common/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

int sha256_begin(struct sha256 *h)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) return -ENOMEM;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return -EIO;
    }
    h->md = md;
    return 0;
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->md, data, len);
}

void sha256_end_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char raw[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->md, raw, &n);
    for (unsigned int i = 0; i < 32; i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 15];
    }
    hex[SHA256_HEX_LEN] = '\0';
    sha256_abort(h);
}

void sha256_abort(struct sha256 *h)
{
    EVP_MD_CTX_free(h->md);
    h->md = NULL;
}

int sha256_hex_of(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
    struct sha256 h;
    int rc = sha256_begin(&h);
    if (rc) return rc;
    sha256_update(&h, data, len);
    sha256_end_hex(&h, hex);
    return 0;
}

int sha256_hex_of_fd(int fd, unsigned long long size, char hex[SHA256_HEX_LEN + 1])
{
    struct sha256 h;
    int rc = sha256_begin(&h);
    if (rc) return rc;
    char *chunk = malloc(1 << 20);
    if (!chunk) {
        sha256_abort(&h);
        return -ENOMEM;
    }
    for (unsigned long long off = 0; off < size;) {
        ssize_t n = pread(fd, chunk, 1 << 20, (off_t)off);
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        sha256_update(&h, chunk, (size_t)n);
        off += (unsigned long long)n;
    }
    free(chunk);
    if (rc)
        sha256_abort(&h);
    else
        sha256_end_hex(&h, hex);
    return rc;
}
