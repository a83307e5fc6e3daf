/*
 * Parsing of image manifests and indexes (OCI and Docker schema2) into descriptors. Input is
 * untrusted network data: every field is type-checked, digests are validated, sizes bounded.
 * A malformed manifest gives -EIO and a reason string, never a crash.
 */
#ifndef REGISTRYFS_MANIFEST_H
#define REGISTRYFS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sha256.h"

#define MANIFEST_MAX_BYTES (4u << 20) /* distribution's own limit is 4 MiB */
#define MANIFEST_MAX_ENTRIES 4096     /* layers or index entries */
#define BLOB_MAX_SIZE (1ull << 44)    /* 16 TiB: anything larger is a lie */
#define MEDIA_TYPE_MAX 128

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

enum manifest_kind { MANIFEST_IMAGE, MANIFEST_INDEX };

struct descriptor {
    char media_type[MEDIA_TYPE_MAX];
    char digest[DIGEST_STR_LEN + 1]; /* validated "sha256:<hex>" */
    uint64_t size;
    /* index entries only */
    bool has_platform;
    char os[32];
    char arch[32];
    char variant[32];
};

struct manifest {
    enum manifest_kind kind;
    char media_type[MEDIA_TYPE_MAX]; /* the mediaType field, or inferred for OCI */
    /* MANIFEST_IMAGE */
    struct descriptor config;
    struct descriptor *layers;
    size_t n_layers;
    /* MANIFEST_INDEX */
    struct descriptor *manifests;
    size_t n_manifests;
};

/* 0, or -EIO with a one-line reason in err. content_type (may be NULL) is the HTTP
 * Content-Type, used only when the JSON has no mediaType. */
int manifest_parse(const char *bytes, size_t len, const char *content_type, struct manifest *out,
                   char *err, size_t errlen) __attribute__((warn_unused_result));
void manifest_free(struct manifest *m);

/* The index entry for os/arch[/variant] (variant NULL or "" matches any, preferring none or
 * the first); NULL when no entry matches. */
const struct descriptor *manifest_select_platform(const struct manifest *index, const char *os,
                                                  const char *arch, const char *variant);

#endif
