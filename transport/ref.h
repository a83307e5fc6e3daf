/*
 * Validation of names against the distribution reference grammar, before any of them reaches
 * a URL or a cache path. Everything here is pure string work: no network, no allocation.
 */
#ifndef REGISTRYFS_REF_H
#define REGISTRYFS_REF_H

#include <stdbool.h>
#include <stddef.h>

#define REF_NAME_MAX 255 /* whole repository name */
#define REF_TAG_MAX 128
#define REF_HOST_MAX 255

/* path-component: [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)* */
bool ref_valid_component(const char *s, size_t len);
/* components joined by '/', at most REF_NAME_MAX bytes */
bool ref_valid_repo(const char *name);
/* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
bool ref_valid_tag(const char *tag);
/* "sha256:" + 64 lowercase hex; other algorithms are rejected (we can only verify sha256) */
bool ref_valid_digest(const char *digest);
/* exactly 64 lowercase hex digits */
bool ref_valid_hex(const char *hex);

/*
 * HOST[:PORT] as it appears as a directory name in root mode and in references: a DNS name
 * (labels of [A-Za-z0-9-], dots between), an IPv4 address or a bracketed IPv6 address, with an
 * optional decimal port 1..65535.
 */
bool ref_valid_hostport(const char *hostport);
/* A first path component that is a registry host, the way docker decides it: it contains a '.'
 * or a ':', or is "localhost". */
bool ref_looks_like_host(const char *component);
/* localhost, 127.0.0.0/8, ::1 (with or without brackets; port not included) */
bool ref_is_loopback(const char *host);
/* One of Docker Hub's host names (docker.io, index.docker.io, registry-1.docker.io), in any
 * case (host names are case-insensitive); no port: docker.io:5000 is somebody else's. */
bool ref_is_docker_hub_host(const char *host);

struct registry_addr {
    char scheme[8]; /* "https" or "http"; "https" when none was given */
    bool scheme_given;
    char host[REF_HOST_MAX + 1];      /* without port; IPv6 keeps its brackets */
    char hostport[REF_HOST_MAX + 8];  /* host[:port] exactly as given: the cache/dir name */
    char endpoint[REF_HOST_MAX + 16]; /* scheme://host[:port] actually contacted */
    bool docker_hub;                  /* docker.io: endpoint registry-1.docker.io, library/ */
};

/* "[http://|https://]HOST[:PORT][/]" → addr. -EINVAL when malformed. */
int ref_parse_registry(const char *text, struct registry_addr *out)
    __attribute__((warn_unused_result));

/* Sets scheme ("https" or "http") and rebuilds endpoint from it; scheme_given is unchanged.
 * For the ping's http fallback. -EINVAL for any other scheme. */
int ref_set_scheme(struct registry_addr *addr, const char *scheme)
    __attribute__((warn_unused_result));

/* Docker Hub puts one-component names under library/. Writes the name to use on the wire. */
int ref_wire_repo(const struct registry_addr *addr, const char *repo, char *out, size_t outlen)
    __attribute__((warn_unused_result));

#endif
