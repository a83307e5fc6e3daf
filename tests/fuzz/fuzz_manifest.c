/*
 * manifest_parse (OCI/Docker manifests, indexes, manifest lists) and, for an index, the
 * platform filter manifest_select_platform. Invariants: every descriptor it returns has a
 * digest that re-validates, a bounded size, terminated strings; the platform picked for an
 * entry's own os/arch[/variant] is an entry of the index with that os/arch.
 */
#include <errno.h>

#include "tests/fuzz/fuzz.h"
#include "transport/manifest.h"
#include "transport/ref.h"

static const char *const content_types[] = {
    NULL,
    MT_OCI_MANIFEST,
    MT_OCI_INDEX,
    MT_DOCKER_MANIFEST,
    MT_DOCKER_LIST "; charset=utf-8",
    "application/json",
};

static void check_descriptor(const struct descriptor *d, int in_index)
{
    FUZZ_ASSERT(fuzz_terminated(d->media_type, sizeof(d->media_type)));
    FUZZ_ASSERT(fuzz_terminated(d->digest, sizeof(d->digest)));
    FUZZ_ASSERT(ref_valid_digest(d->digest));
    FUZZ_ASSERT(d->size <= BLOB_MAX_SIZE);
    FUZZ_ASSERT(fuzz_terminated(d->os, sizeof(d->os)));
    FUZZ_ASSERT(fuzz_terminated(d->arch, sizeof(d->arch)));
    FUZZ_ASSERT(fuzz_terminated(d->variant, sizeof(d->variant)));
    if (!in_index) FUZZ_ASSERT(!d->has_platform);
}

static void check_select(const struct manifest *m, const char *os, const char *arch,
                         const char *variant)
{
    const struct descriptor *d = manifest_select_platform(m, os, arch, variant);
    if (!d) return;
    FUZZ_ASSERT(d >= m->manifests && d < m->manifests + m->n_manifests);
    FUZZ_ASSERT(d->has_platform && strcmp(d->os, os) == 0 && strcmp(d->arch, arch) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MANIFEST_MAX_BYTES + 16) return 0;
    char *bytes = fuzz_bytes(data, size);
    /* the Content-Type only matters when the JSON has no mediaType: pick one from the size so
     * the same document is seen with different ones across inputs */
    const char *ct = content_types[size % (sizeof(content_types) / sizeof(content_types[0]))];
    struct manifest m;
    char err[256];
    memset(&m, 0xa5, sizeof(m)); /* out must not depend on what was there before */
    int rc = manifest_parse(bytes, size, ct, &m, err, sizeof(err));
    if (rc != 0) {
        FUZZ_ASSERT(rc == -EIO);
        FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && err[0]);
        free(bytes);
        return 0;
    }
    FUZZ_ASSERT(fuzz_terminated(m.media_type, sizeof(m.media_type)));
    if (m.kind == MANIFEST_IMAGE) {
        FUZZ_ASSERT(m.n_manifests == 0);
        FUZZ_ASSERT(m.n_layers <= MANIFEST_MAX_ENTRIES);
        check_descriptor(&m.config, 0);
        for (size_t i = 0; i < m.n_layers; i++)
            check_descriptor(&m.layers[i], 0);
        FUZZ_ASSERT(manifest_select_platform(&m, "linux", "amd64", NULL) == NULL);
    } else {
        FUZZ_ASSERT(m.kind == MANIFEST_INDEX);
        FUZZ_ASSERT(m.n_layers == 0);
        FUZZ_ASSERT(m.n_manifests <= MANIFEST_MAX_ENTRIES);
        for (size_t i = 0; i < m.n_manifests; i++)
            check_descriptor(&m.manifests[i], 1);
        check_select(&m, "linux", "amd64", NULL);
        check_select(&m, "linux", "arm64", "v8");
        check_select(&m, "linux", "arm", "v7");
        check_select(&m, "windows", "amd64", "");
        /* every entry's own platform finds an entry for that os/arch */
        for (size_t i = 0; i < m.n_manifests && i < 8; i++) {
            const struct descriptor *e = &m.manifests[i];
            if (!e->has_platform) continue;
            FUZZ_ASSERT(manifest_select_platform(&m, e->os, e->arch, NULL) != NULL);
            check_select(&m, e->os, e->arch, e->variant);
        }
    }
    manifest_free(&m);
    free(bytes);
    return 0;
}
