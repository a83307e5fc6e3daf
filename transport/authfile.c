/* Credential files: which one, which entry, and what it holds. */
#include "transport/authfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "transport/ref.h"

#define HOSTKEY_MAX (REF_HOST_MAX + 8)

struct af_entry {
    char *ns; /* "" for the host itself, else "a/b" */
    struct credential cred;
};

struct authfile {
    char host[HOSTKEY_MAX];
    struct af_entry entries[AUTHFILE_MAX_ENTRIES];
    size_t n;
    char helper[CRED_HELPER_NAME_MAX + 1]; /* credHelpers[host] */
    char store[CRED_HELPER_NAME_MAX + 1];  /* credsStore */
};

/* ---- credentials ---- */

static void wipe_free(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

void credential_clear(struct credential *c)
{
    if (!c) return;
    wipe_free(c->username);
    wipe_free(c->password);
    wipe_free(c->identity_token);
    c->username = c->password = c->identity_token = NULL;
}

bool credential_present(const struct credential *c)
{
    return c && ((c->username && c->password) || c->identity_token);
}

static int dup_field(char **dst, const char *src)
{
    *dst = NULL;
    if (!src) return 0;
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

int credential_copy(struct credential *dst, const struct credential *src)
{
    struct credential c = {0};
    if (dup_field(&c.username, src->username) || dup_field(&c.password, src->password) ||
        dup_field(&c.identity_token, src->identity_token)) {
        credential_clear(&c);
        return -ENOMEM;
    }
    *dst = c;
    return 0;
}

/* ---- which file ---- */

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* One candidate of the search order into out[*n] (skipped when its variable is unset or the
 * path too long). */
static void add_candidate(char out[][PATH_MAX], size_t *n, const char *a, const char *b)
{
    if (!a || !*a || *n >= AUTHFILE_SEARCH_MAX) return;
    int len = snprintf(out[*n], PATH_MAX, "%s%s", a, b);
    if (len > 0 && len < PATH_MAX) (*n)++;
}

size_t authfile_search_paths(char out[][PATH_MAX])
{
    const char *home = getenv("HOME");
    const char *docker_config = getenv("DOCKER_CONFIG");
    size_t n = 0;
    add_candidate(out, &n, getenv("REGISTRY_AUTH_FILE"), "");
    add_candidate(out, &n, getenv("XDG_RUNTIME_DIR"), "/containers/auth.json");
    add_candidate(out, &n, home, "/.config/containers/auth.json");
    /* docker itself reads only $DOCKER_CONFIG when it is set */
    if (docker_config && *docker_config)
        add_candidate(out, &n, docker_config, "/config.json");
    else
        add_candidate(out, &n, home, "/.docker/config.json");
    add_candidate(out, &n, home, "/.dockercfg");
    return n;
}

int authfile_default_path(char *out, size_t outlen)
{
    char paths[AUTHFILE_SEARCH_MAX][PATH_MAX];
    size_t n = authfile_search_paths(paths);
    for (size_t i = 0; i < n; i++) {
        if (file_exists(paths[i]) && strlen(paths[i]) < outlen) {
            snprintf(out, outlen, "%s", paths[i]);
            return 0;
        }
    }
    if (outlen) out[0] = '\0';
    return -ENOENT;
}

/* ---- keys ---- */

/* host[:port] (the part before any '/'), lower-cased, Docker Hub's names folded. */
static int normalize_hostpart(const char *s, size_t len, char *out, size_t outlen)
{
    if (len == 0 || len >= outlen) return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if ((unsigned char)c <= 0x20 || c == 0x7f) return -EINVAL;
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[len] = '\0';
    if (ref_is_docker_hub_host(out)) snprintf(out, outlen, "docker.io");
    return 0;
}

/* Splits an auths key into its host key and namespace ("" when none). legacy keys and keys
 * with a scheme are URLs: their path is not a namespace ("https://index.docker.io/v1/"). */
static int split_key(const char *key, bool legacy, char *host, size_t hostlen, const char **ns)
{
    const char *p = key;
    bool had_scheme = false;
    if (strncasecmp(p, "https://", 8) == 0) {
        p += 8;
        had_scheme = true;
    } else if (strncasecmp(p, "http://", 7) == 0) {
        p += 7;
        had_scheme = true;
    }
    size_t hl = strcspn(p, "/");
    int rc = normalize_hostpart(p, hl, host, hostlen);
    if (rc) return rc;
    *ns = (legacy || had_scheme || p[hl] == '\0') ? "" : p + hl + 1;
    return 0;
}

int authfile_normalize_host(const char *hostport, char *out, size_t outlen)
{
    const char *ns;
    if (!hostport) return -EINVAL;
    return split_key(hostport, true, out, outlen, &ns);
}

/* ---- parsing ---- */

static void set_err(char *err, size_t errlen, const char *fmt, const char *arg)
{
    if (err && errlen && !err[0]) snprintf(err, errlen, fmt, arg);
}

static const char *string_member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) && v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
}

bool credential_field_valid(const char *s)
{
    size_t n = strnlen(s, CRED_FIELD_MAX + 1);
    if (n > CRED_FIELD_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

/* The credential of one auths entry. 1 usable, 0 nothing usable (reason in err), -ENOMEM. */
static int parse_entry(const cJSON *e, const char *key, struct credential *out, char *err,
                       size_t errlen)
{
    struct credential c = {0};
    const char *auth = string_member(e, "auth");
    const char *user = string_member(e, "username");
    const char *pass = string_member(e, "password");
    const char *idt = string_member(e, "identitytoken");
    int rc = 0;
    if (auth) {
        size_t alen = strnlen(auth, CRED_FIELD_MAX * 2);
        char *dec = malloc(alen + 1);
        if (!dec) return -ENOMEM;
        int n = base64_decode(auth, alen, dec, alen + 1);
        char *colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
        if (n < 0 || (size_t)n != strlen(dec) || !colon) {
            set_err(err, errlen, "entry \"%.200s\": \"auth\" is not base64 of user:password", key);
        } else {
            *colon = '\0';
            if (dup_field(&c.username, dec) || dup_field(&c.password, colon + 1)) rc = -ENOMEM;
        }
        explicit_bzero(dec, alen + 1);
        free(dec);
    } else if (user && pass) {
        if (dup_field(&c.username, user) || dup_field(&c.password, pass)) rc = -ENOMEM;
    }
    if (!rc && idt && dup_field(&c.identity_token, idt)) rc = -ENOMEM;
    if (!rc && c.username && !c.username[0] && !c.identity_token) {
        /* ":" is docker's placeholder beside a credsStore */
        credential_clear(&c);
    }
    if (!rc && ((c.username && !credential_field_valid(c.username)) ||
                (c.password && !credential_field_valid(c.password)) ||
                (c.identity_token && !credential_field_valid(c.identity_token)))) {
        set_err(err, errlen, "entry \"%.200s\": control characters in a credential", key);
        credential_clear(&c);
    }
    if (rc) {
        credential_clear(&c);
        return rc;
    }
    if (!credential_present(&c)) {
        credential_clear(&c);
        return 0;
    }
    *out = c;
    return 1;
}

static bool valid_helper_name(const char *s)
{
    size_t n = strnlen(s, CRED_HELPER_NAME_MAX + 1);
    if (n == 0 || n > CRED_HELPER_NAME_MAX || s[0] == '-' || s[0] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool valid_namespace(const char *ns)
{
    size_t n = strlen(ns);
    /* a trailing slash is tolerated ("host/ns/") */
    while (n && ns[n - 1] == '/')
        n--;
    if (n == 0) return true;
    if (n > REF_NAME_MAX) return false;
    char tmp[REF_NAME_MAX + 1];
    memcpy(tmp, ns, n);
    tmp[n] = '\0';
    return ref_valid_repo(tmp);
}

static int add_entries(struct authfile *af, const cJSON *auths, bool legacy, char *err,
                       size_t errlen)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, auths)
    {
        char host[HOSTKEY_MAX];
        const char *ns;
        if (!e->string || !cJSON_IsObject(e)) continue;
        if (split_key(e->string, legacy, host, sizeof(host), &ns) != 0 ||
            strcmp(host, af->host) != 0)
            continue;
        if (!valid_namespace(ns)) {
            set_err(err, errlen, "entry \"%.200s\": not a repository namespace", e->string);
            continue;
        }
        if (af->n >= AUTHFILE_MAX_ENTRIES) {
            set_err(err, errlen, "more than %s entries for one registry", "64");
            break;
        }
        struct credential c;
        int rc = parse_entry(e, e->string, &c, err, errlen);
        if (rc < 0) return rc;
        if (rc == 0) continue;
        size_t nslen = strlen(ns);
        while (nslen && ns[nslen - 1] == '/')
            nslen--;
        /* the same key twice (with and without a scheme): the first one wins */
        bool dup = false;
        for (size_t i = 0; i < af->n; i++)
            if (strlen(af->entries[i].ns) == nslen && strncmp(af->entries[i].ns, ns, nslen) == 0)
                dup = true;
        if (dup) {
            credential_clear(&c);
            continue;
        }
        char *nscopy = strndup(ns, nslen);
        if (!nscopy) {
            credential_clear(&c);
            return -ENOMEM;
        }
        af->entries[af->n].ns = nscopy;
        af->entries[af->n].cred = c;
        af->n++;
    }
    return 0;
}

static void find_helper(struct authfile *af, const cJSON *root, char *err, size_t errlen)
{
    const cJSON *helpers = cJSON_GetObjectItemCaseSensitive(root, "credHelpers");
    const cJSON *h;
    if (cJSON_IsObject(helpers)) {
        cJSON_ArrayForEach(h, helpers)
        {
            char host[HOSTKEY_MAX];
            const char *ns;
            if (!h->string || split_key(h->string, true, host, sizeof(host), &ns) != 0 ||
                strcmp(host, af->host) != 0 || !cJSON_IsString(h) || !h->valuestring)
                continue;
            if (valid_helper_name(h->valuestring))
                snprintf(af->helper, sizeof(af->helper), "%s", h->valuestring);
            else
                set_err(err, errlen, "credHelpers \"%.200s\": not a helper name", h->string);
            break;
        }
    }
    const char *store = string_member(root, "credsStore");
    if (store && valid_helper_name(store))
        snprintf(af->store, sizeof(af->store), "%s", store);
    else if (store)
        set_err(err, errlen, "credsStore: not a helper %s", "name");
}

void credential_wipe_json(cJSON *node)
{
    for (; node; node = node->next) {
        if (cJSON_IsString(node) && node->valuestring)
            explicit_bzero(node->valuestring, strlen(node->valuestring));
        credential_wipe_json(node->child);
    }
}

int authfile_parse(const char *json, size_t len, bool legacy, const char *hostport,
                   struct authfile **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    *out = NULL;
    if (len > AUTHFILE_MAX_BYTES) return -EFBIG;
    struct authfile *af = calloc(1, sizeof(*af));
    if (!af) return -ENOMEM;
    if (authfile_normalize_host(hostport, af->host, sizeof(af->host)) != 0) {
        free(af);
        return -EINVAL;
    }
    /* an empty file is no credentials, as podman treats it */
    bool blank = true;
    for (size_t i = 0; i < len && blank; i++)
        blank = json[i] == ' ' || json[i] == '\n' || json[i] == '\t' || json[i] == '\r';
    if (blank) {
        *out = af;
        return 0;
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        free(af);
        set_err(err, errlen, "%s", "not a JSON object");
        return -EINVAL;
    }
    int rc = 0;
    if (legacy) {
        rc = add_entries(af, root, true, err, errlen);
    } else {
        const cJSON *auths = cJSON_GetObjectItemCaseSensitive(root, "auths");
        if (cJSON_IsObject(auths))
            rc = add_entries(af, auths, false, err, errlen);
        else if (auths && !cJSON_IsNull(auths))
            set_err(err, errlen, "%s", "\"auths\" is not an object");
        find_helper(af, root, err, errlen);
    }
    /* the parse tree holds every secret of the file, not only ours */
    credential_wipe_json(root);
    cJSON_Delete(root);
    if (rc) {
        authfile_free(af);
        return rc;
    }
    *out = af;
    return 0;
}

void authfile_free(struct authfile *af)
{
    if (!af) return;
    for (size_t i = 0; i < af->n; i++) {
        free(af->entries[i].ns);
        credential_clear(&af->entries[i].cred);
    }
    free(af);
}

int authfile_load(const char *path, const char *hostport, struct authfile **out)
{
    *out = NULL;
    char *data;
    size_t len;
    int rc = read_small_file(path, AUTHFILE_MAX_BYTES, &data, &len);
    if (rc) {
        if (rc != -ENOENT)
            log_warn("authfile %s: %s; using no credentials from it", path,
                     rc == -EINVAL  ? "not a regular file"
                     : rc == -EFBIG ? "too large"
                                    : strerror(-rc));
        return rc;
    }
    char err[320];
    const char *base = strrchr(path, '/');
    bool legacy = strcmp(base ? base + 1 : path, ".dockercfg") == 0;
    rc = authfile_parse(data, len, legacy, hostport, out, err, sizeof(err));
    if (rc == -EINVAL || rc == -EFBIG)
        log_warn("authfile %s: %s; using no credentials from it", path,
                 rc == -EFBIG ? "too large" : err);
    else if (!rc && err[0])
        log_warn("authfile %s: %s (skipped)", path, err);
    explicit_bzero(data, len);
    free(data);
    return rc;
}

/* ---- lookup ---- */

int authfile_lookup(const struct authfile *af, const char *repo, struct credential *out)
{
    const struct af_entry *best = NULL;
    size_t best_len = 0;
    memset(out, 0, sizeof(*out));
    if (!af) return 0;
    size_t rlen = repo ? strlen(repo) : 0;
    for (size_t i = 0; i < af->n; i++) {
        const struct af_entry *e = &af->entries[i];
        size_t n = strlen(e->ns);
        bool match = n == 0 || (n <= rlen && strncmp(repo, e->ns, n) == 0 &&
                                (repo[n] == '\0' || repo[n] == '/'));
        if (match && (!best || n > best_len)) {
            best = e;
            best_len = n;
        }
    }
    if (!best) return 0;
    int rc = credential_copy(out, &best->cred);
    return rc ? rc : 1;
}

bool authfile_has_entry(const struct authfile *af)
{
    return af && (af->n > 0 || authfile_helper(af) != NULL);
}

const char *authfile_helper(const struct authfile *af)
{
    if (!af) return NULL;
    if (af->helper[0]) return af->helper;
    return af->store[0] ? af->store : NULL;
}
