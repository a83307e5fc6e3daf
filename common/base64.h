/* Standard base64 (RFC 4648, with padding), by OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock. */
#ifndef REGISTRYFS_BASE64_H
#define REGISTRYFS_BASE64_H

#include <stddef.h>

/* The encoding of in[0..len) as a NUL-terminated string, malloc'd; NULL when out of memory. */
char *base64_encode(const void *in, size_t len);

/* Decodes in[0..inlen) into out (NUL-terminated); the decoded length, or -EINVAL when the
 * input is not padded base64 (as Go's StdEncoding, which containers/image uses) or does not
 * fit in outlen - 1 bytes. */
int base64_decode(const char *in, size_t inlen, char *out, size_t outlen);

#endif
