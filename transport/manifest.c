/* Manifest and index parsing with cJSON. Every field is checked before it is believed. */
#include "transport/manifest.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ref.h"

#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define PLATFORM_FIELD_MAX 32 /* sizeof descriptor.os/arch/variant */

struct parse_ctx {
    char *err;
    size_t errlen;
};

static int fail(struct parse_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse_ctx *c, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -EIO;
}

/* RFC 6838 restricted-name characters: what may sit on either side of the '/'. */
static bool is_media_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$&^_.+-", c) != NULL;
}

/* type/subtype of restricted-name characters, short enough for the descriptor field. */
static bool valid_media_type(const char *s)
{
    size_t len = strnlen(s, MEDIA_TYPE_MAX);
    if (len == 0 || len >= MEDIA_TYPE_MAX) return false;
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || slash[1] == '\0' || strchr(slash + 1, '/')) return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '/' && !is_media_char(s[i])) return false;
    return true;
}

/* Platform values may end up in names and logs: a short run of [A-Za-z0-9._-]. */
static bool valid_platform_value(const char *s)
{
    size_t len = strnlen(s, PLATFORM_FIELD_MAX);
    if (len == 0 || len >= PLATFORM_FIELD_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool is_image_type(const char *mt)
{
    return strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0;
}

static bool is_index_type(const char *mt)
{
    return strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0;
}

static bool is_schema1_type(const char *mt)
{
    return strcmp(mt, MT_DOCKER_V1) == 0 || strcmp(mt, MT_DOCKER_V1_SIGNED) == 0;
}

/* JSON numbers are doubles: a size must be integral, finite and within BLOB_MAX_SIZE, which is
 * exactly representable, so the conversion below is exact. */
static int parse_size(struct parse_ctx *c, const cJSON *item, const char *what, uint64_t *out)
{
    if (!cJSON_IsNumber(item)) return fail(c, "%s: size missing or not a number", what);
    double v = item->valuedouble;
    /* NaN fails both comparisons; in range, the cast is defined and exact for integers */
    if (!(v >= 0 && v <= (double)BLOB_MAX_SIZE) || (double)(uint64_t)v != v)
        return fail(c, "%s: size is not an integer in 0..2^44", what);
    *out = (uint64_t)v;
    return 0;
}

/* A string member of at most max-1 bytes, copied into out; NULL item is "missing". */
static int get_string(struct parse_ctx *c, const cJSON *obj, const char *key, const char *what,
                      char *out, size_t max, bool required)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item)) {
        out[0] = '\0';
        return required ? fail(c, "%s: %s missing", what, key) : 0;
    }
    if (!cJSON_IsString(item) || !item->valuestring)
        return fail(c, "%s: %s is not a string", what, key);
    size_t len = strlen(item->valuestring);
    if (len >= max) return fail(c, "%s: %s longer than %zu bytes", what, key, max - 1);
    memcpy(out, item->valuestring, len + 1);
    return 0;
}

static int parse_platform(struct parse_ctx *c, const cJSON *obj, const char *what,
                          struct descriptor *d)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "platform");
    if (!p || cJSON_IsNull(p)) return 0;
    if (!cJSON_IsObject(p)) return fail(c, "%s: platform is not an object", what);
    int rc = get_string(c, p, "os", what, d->os, sizeof(d->os), true);
    if (!rc) rc = get_string(c, p, "architecture", what, d->arch, sizeof(d->arch), true);
    if (!rc) rc = get_string(c, p, "variant", what, d->variant, sizeof(d->variant), false);
    if (rc) return rc;
    if (!valid_platform_value(d->os) || !valid_platform_value(d->arch) ||
        (d->variant[0] && !valid_platform_value(d->variant)))
        return fail(c, "%s: invalid platform value", what);
    d->has_platform = true;
    return 0;
}

static int parse_descriptor(struct parse_ctx *c, const cJSON *obj, const char *what,
                            bool with_platform, struct descriptor *d)
{
    memset(d, 0, sizeof(*d));
    if (!cJSON_IsObject(obj)) return fail(c, "%s is not an object", what);
    int rc = get_string(c, obj, "mediaType", what, d->media_type, sizeof(d->media_type), true);
    if (rc) return rc;
    if (!valid_media_type(d->media_type)) return fail(c, "%s: invalid mediaType", what);
    rc = get_string(c, obj, "digest", what, d->digest, sizeof(d->digest), true);
    if (rc) return rc;
    if (!ref_valid_digest(d->digest))
        return fail(c, "%s: digest is not sha256:<64 lowercase hex>", what);
    rc = parse_size(c, cJSON_GetObjectItemCaseSensitive(obj, "size"), what, &d->size);
    if (rc) return rc;
    return with_platform ? parse_platform(c, obj, what, d) : 0;
}

/* Parses obj[key], an array of descriptors, into a new array. */
static int parse_descriptor_array(struct parse_ctx *c, const cJSON *root, const char *key,
                                  bool with_platform, struct descriptor **out, size_t *n_out)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(arr)) return fail(c, "%s missing or not an array", key);
    int n = cJSON_GetArraySize(arr);
    if (n < 0 || n > MANIFEST_MAX_ENTRIES)
        return fail(c, "%d %s: more than %d", n, key, MANIFEST_MAX_ENTRIES);
    struct descriptor *ds = NULL;
    if (n > 0) {
        ds = calloc((size_t)n, sizeof(*ds));
        if (!ds) return fail(c, "out of memory");
    }
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        char what[48];
        snprintf(what, sizeof(what), "%s[%zu]", key, i);
        int rc = parse_descriptor(c, item, what, with_platform, &ds[i]);
        if (rc) {
            free(ds);
            return rc;
        }
        i++;
    }
    *out = ds;
    *n_out = i;
    return 0;
}

/* The media type of the document: its mediaType field, else the Content-Type, else "". */
static int document_media_type(struct parse_ctx *c, const cJSON *root, const char *content_type,
                               char out[MEDIA_TYPE_MAX])
{
    int rc = get_string(c, root, "mediaType", "manifest", out, MEDIA_TYPE_MAX, false);
    if (rc || out[0] || !content_type) return rc;
    /* "type/subtype; charset=..." → "type/subtype" */
    size_t len = strcspn(content_type, "; \t");
    if (len < MEDIA_TYPE_MAX) {
        memcpy(out, content_type, len);
        out[len] = '\0';
    }
    if (!is_image_type(out) && !is_index_type(out))
        out[0] = '\0'; /* a generic type like application/json says nothing */
    return 0;
}

static int detect_kind(struct parse_ctx *c, const cJSON *root, const char *content_type,
                       struct manifest *m)
{
    int rc = document_media_type(c, root, content_type, m->media_type);
    if (rc) return rc;
    if (m->media_type[0]) {
        if (is_image_type(m->media_type))
            m->kind = MANIFEST_IMAGE;
        else if (is_index_type(m->media_type))
            m->kind = MANIFEST_INDEX;
        else if (is_schema1_type(m->media_type))
            return fail(c, "schema1 manifests are not supported");
        else
            return fail(c, "unsupported manifest media type");
        return 0;
    }
    /* OCI lets mediaType be absent: go by structure */
    if (cJSON_GetObjectItemCaseSensitive(root, "manifests")) {
        m->kind = MANIFEST_INDEX;
        snprintf(m->media_type, sizeof(m->media_type), "%s", MT_OCI_INDEX);
    } else if (cJSON_GetObjectItemCaseSensitive(root, "config") &&
               cJSON_GetObjectItemCaseSensitive(root, "layers")) {
        m->kind = MANIFEST_IMAGE;
        snprintf(m->media_type, sizeof(m->media_type), "%s", MT_OCI_MANIFEST);
    } else {
        return fail(c, "neither an image manifest nor an index");
    }
    return 0;
}

static int check_schema_version(struct parse_ctx *c, const cJSON *root)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "schemaVersion");
    if (!cJSON_IsNumber(v)) return fail(c, "schemaVersion missing or not a number");
    if (v->valuedouble == 1) return fail(c, "schema1 manifests are not supported");
    if (v->valuedouble != 2) return fail(c, "unsupported schemaVersion");
    return 0;
}

/* cJSON stops at the end of the first value: anything but whitespace after it is garbage. */
static bool only_whitespace(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return false;
    return true;
}

static int parse_root(struct parse_ctx *c, const cJSON *root, const char *content_type,
                      struct manifest *m)
{
    if (!cJSON_IsObject(root)) return fail(c, "manifest is not a JSON object");
    int rc = check_schema_version(c, root);
    if (!rc) rc = detect_kind(c, root, content_type, m);
    if (rc) return rc;
    if (m->kind == MANIFEST_INDEX)
        return parse_descriptor_array(c, root, "manifests", true, &m->manifests, &m->n_manifests);
    rc = parse_descriptor(c, cJSON_GetObjectItemCaseSensitive(root, "config"), "config", false,
                          &m->config);
    if (!rc) rc = parse_descriptor_array(c, root, "layers", false, &m->layers, &m->n_layers);
    return rc;
}

int manifest_parse(const char *bytes, size_t len, const char *content_type, struct manifest *out,
                   char *err, size_t errlen)
{
    struct parse_ctx c = {err, errlen};
    if (err && errlen) err[0] = '\0';
    if (!out) return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!bytes || len == 0) return fail(&c, "empty manifest");
    if (len > MANIFEST_MAX_BYTES)
        return fail(&c, "manifest larger than %u bytes", MANIFEST_MAX_BYTES);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(bytes, len, &end, false);
    if (!root)
        return fail(&c, "invalid JSON near byte %zu",
                    end && end >= bytes ? (size_t)(end - bytes) : 0);
    int rc;
    if (!only_whitespace(end, bytes + len))
        rc = fail(&c, "trailing data after the JSON document");
    else
        rc = parse_root(&c, root, content_type, out);
    cJSON_Delete(root);
    if (rc) manifest_free(out);
    return rc;
}

void manifest_free(struct manifest *m)
{
    if (!m) return;
    free(m->layers);
    free(m->manifests);
    memset(m, 0, sizeof(*m));
}

/* arm64 without a variant means v8: the two spellings must match each other. */
static const char *normal_variant(const char *arch, const char *variant)
{
    if (!variant) return "";
    if (strcmp(arch, "arm64") == 0 && strcmp(variant, "v8") == 0) return "";
    return variant;
}

const struct descriptor *manifest_select_platform(const struct manifest *index, const char *os,
                                                  const char *arch, const char *variant)
{
    if (!index || index->kind != MANIFEST_INDEX || !os || !arch) return NULL;
    bool any_variant = !variant || !variant[0];
    const char *want = normal_variant(arch, variant);
    const struct descriptor *first = NULL;
    for (size_t i = 0; i < index->n_manifests; i++) {
        const struct descriptor *d = &index->manifests[i];
        if (!d->has_platform || strcmp(d->os, os) != 0 || strcmp(d->arch, arch) != 0) continue;
        const char *have = normal_variant(d->arch, d->variant);
        if (any_variant) {
            if (!have[0]) return d; /* the plain entry wins over variants */
            if (!first) first = d;
        } else if (strcmp(have, want) == 0) {
            return d;
        }
    }
    return first;
}
