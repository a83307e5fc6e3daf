#include "fs/archive_view.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/host.h"
#include "fs/image_view.h"
#include "transport/manifest.h"

bool archive_view_name(const char *ref, char *tag, size_t tagsz)
{
    size_t n = strlen(ref), s = strlen(ARCHIVE_SUFFIX);
    if (n <= s || n - s >= tagsz || strcmp(ref + n - s, ARCHIVE_SUFFIX) != 0) return false;
    snprintf(tag, tagsz, "%.*s", (int)(n - s), ref);
    return ref_valid_tag(tag);
}

static bool add_string(cJSON *array, const char *s)
{
    cJSON *item = cJSON_CreateString(s);
    return item && cJSON_AddItemToArray(array, item);
}

char *archive_manifest_json(const char *config_hex, const char *const *layer_hexes, size_t n,
                            const char *repo_tag)
{
    char name[TAR_NAME_MAX + 1];
    cJSON *root = cJSON_CreateArray(), *item = cJSON_CreateObject();
    bool ok = root && item && cJSON_AddItemToArray(root, item);
    if (!ok) cJSON_Delete(item);
    snprintf(name, sizeof(name), "%.64s.json", config_hex);
    ok = ok && cJSON_AddStringToObject(item, "Config", name);
    cJSON *tags = ok ? cJSON_AddArrayToObject(item, "RepoTags") : NULL;
    ok = tags && (!*repo_tag || add_string(tags, repo_tag));
    cJSON *layers = ok ? cJSON_AddArrayToObject(item, "Layers") : NULL;
    ok = layers != NULL;
    for (size_t i = 0; i < n && ok; i++) {
        snprintf(name, sizeof(name), "%.64s" ARCHIVE_SUFFIX, layer_hexes[i]);
        ok = add_string(layers, name);
    }
    char *out = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return out;
}

static const char *hex_of(const char *digest)
{
    return digest + strlen(DIGEST_PREFIX);
}

/* The name docker load tags the image with: HOST/REPO:TAG (docker.io for Docker Hub); a storage
 * tree mounted as a registry has no host, so REPO:TAG. */
static void repo_tag_of(const struct host *h, const char *repo, const char *tag, char *out,
                        size_t outsz)
{
    const char *host = h->name;
    if (strcmp(host, "registry-1.docker.io") == 0 || strcmp(host, "index.docker.io") == 0)
        host = "docker.io";
    if (h->local_root || strchr(host, '/'))
        snprintf(out, outsz, "%s:%s", repo, tag);
    else
        snprintf(out, outsz, "%.*s/%s:%s", REF_HOST_MAX + 7, host, repo, tag);
}

static int build_manifest_member(struct tar_layout *l, const struct manifest *m,
                                 const char *repo_tag)
{
    const char **hexes = calloc(m->n_layers ? m->n_layers : 1, sizeof(*hexes));
    if (!hexes) return -ENOMEM;
    for (size_t i = 0; i < m->n_layers; i++)
        hexes[i] = hex_of(m->layers[i].digest);
    char *json = archive_manifest_json(hex_of(m->config.digest), hexes, m->n_layers, repo_tag);
    free(hexes);
    if (!json) return -ENOMEM;
    int rc = tar_layout_add_bytes(l, "manifest.json", json, strlen(json));
    free(json);
    return rc;
}

/* manifest.json, the config, each distinct layer once (an image may repeat one). */
static int build_layout(struct tar_layout *l, const struct manifest *m, const char *repo_tag)
{
    char name[TAR_NAME_MAX + 1];
    int rc = build_manifest_member(l, m, repo_tag);
    snprintf(name, sizeof(name), "%.64s.json", hex_of(m->config.digest));
    if (rc == 0) rc = tar_layout_add_blob(l, name, hex_of(m->config.digest), m->config.size);
    for (size_t i = 0; i < m->n_layers && rc == 0; i++) {
        const char *hex = hex_of(m->layers[i].digest);
        snprintf(name, sizeof(name), "%.64s" ARCHIVE_SUFFIX, hex);
        if (!tar_layout_find(l, name)) rc = tar_layout_add_blob(l, name, hex, m->layers[i].size);
    }
    if (rc == 0) tar_layout_finish(l);
    return rc;
}

static bool is_image_config(const char *media_type)
{
    return strcmp(media_type, "application/vnd.docker.container.image.v1+json") == 0 ||
           strcmp(media_type, "application/vnd.oci.image.config.v1+json") == 0;
}

/* Whether the manifest can be shown as a docker-archive; logs why not. */
static int check_shown(const struct host *h, const char *repo, const char *tag,
                       const struct manifest *m)
{
    if (m->kind == MANIFEST_INDEX) {
        log_warn("%s/%s:%s" ARCHIVE_SUFFIX ": %s:%s is a multi-platform index; a docker archive "
                 "holds one image: choose its platform with -o platform=OS/ARCH[/VARIANT]",
                 h->name, repo, tag, repo, tag);
        return -ENOENT;
    }
    if (!is_image_config(m->config.media_type)) {
        log_warn("%s/%s:%s" ARCHIVE_SUFFIX ": not a container image (config %s): no docker "
                 "archive view",
                 h->name, repo, tag, m->config.media_type);
        return -ENOENT;
    }
    return 0;
}

static int build_view(struct host *h, const char *repo, const char *tag, struct image_view *iv,
                      struct archive_view *a)
{
    struct manifest m;
    char err[256];
    if (manifest_parse(iv->manifest.data, iv->manifest.len, NULL, &m, err, sizeof(err))) {
        log_error("%s/%s:%s: malformed manifest: %s", h->name, repo, tag, err);
        return -EIO;
    }
    int rc = check_shown(h, repo, tag, &m);
    char repo_tag[REF_HOST_MAX + 7 + REF_NAME_MAX + REF_TAG_MAX + 3];
    repo_tag_of(h, repo, tag, repo_tag, sizeof(repo_tag));
    if (rc == 0) rc = build_layout(&a->layout, &m, repo_tag);
    manifest_free(&m);
    return rc;
}

int archive_view_get(struct host *h, const char *repo, const char *tag, struct archive_view **out)
{
    struct archive_view *a = calloc(1, sizeof(*a));
    if (!a) return -ENOMEM;
    a->refs = 1;
    tar_layout_init(&a->layout);
    int rc = image_view_get(h, repo, tag, &a->image);
    if (rc == 0) rc = build_view(h, repo, tag, a->image, a);
    if (rc) {
        archive_view_put(a);
        return rc;
    }
    a->mtime = a->image->mtime;
    *out = a;
    return 0;
}

void archive_view_hold(struct archive_view *a)
{
    __atomic_add_fetch(&a->refs, 1, __ATOMIC_ACQ_REL);
}

void archive_view_put(struct archive_view *a)
{
    if (!a || __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    image_view_put(a->image);
    tar_layout_free(&a->layout);
    free(a);
}
