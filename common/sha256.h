/* SHA-256 through OpenSSL's EVP (uses SHA-NI where the CPU has it). */
#ifndef REGISTRYFS_SHA256_H
#define REGISTRYFS_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 64
#define DIGEST_PREFIX "sha256:"
#define DIGEST_STR_LEN (7 + SHA256_HEX_LEN) /* "sha256:" + hex, without NUL */

struct sha256 {
    void *md; /* EVP_MD_CTX */
};

int sha256_begin(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* Writes 64 lowercase hex digits and a NUL; frees the context. */
void sha256_end_hex(struct sha256 *h, char hex[SHA256_HEX_LEN + 1]);
void sha256_abort(struct sha256 *h);
int sha256_hex_of(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);
/* The first size bytes of fd (read with pread), streamed in 1 MiB pieces. */
int sha256_hex_of_fd(int fd, unsigned long long size, char hex[SHA256_HEX_LEN + 1]);

#endif
