/*
 * Registry credentials the way skopeo, podman and docker keep them: containers-auth.json(5) /
 * docker config.json ("auths", "credHelpers", "credsStore") and the legacy ~/.dockercfg.
 * Which file, which entry (host, host:port, with or without a scheme, namespaced keys with the
 * longest match winning) and what it holds (auth, username/password, identitytoken).
 * Secrets are kept in memory only, wiped when freed, and never logged. Private to transport/.
 */
#ifndef REGISTRYFS_AUTHFILE_H
#define REGISTRYFS_AUTHFILE_H

#include <stdbool.h>
#include <limits.h>
#include <stddef.h>

#define AUTHFILE_MAX_BYTES (1u << 20) /* real ones are a few KiB */
#define AUTHFILE_MAX_ENTRIES 64       /* entries kept for one host */
#define CRED_FIELD_MAX 8192           /* user name, password, identity token */
#define CRED_HELPER_NAME_MAX 64

/* One set of credentials; every field NULL when absent. */
struct credential {
    char *username;
    char *password;
    char *identity_token; /* OAuth2 refresh token ("identitytoken") */
};

/* Wipes and frees the fields; the struct is then empty. */
void credential_clear(struct credential *c);
bool credential_present(const struct credential *c);
/* A user name, password or token we accept: at most CRED_FIELD_MAX bytes, no control
 * characters (they would end a header line or a helper's protocol line). */
bool credential_field_valid(const char *s);
/* Zeroes every string value of a parsed JSON document that held secrets, before it is freed
 * (cJSON limits nesting to CJSON_NESTING_LIMIT, so the recursion is bounded). */
struct cJSON;
void credential_wipe_json(struct cJSON *node);
/* Deep copy; 0 or -ENOMEM. */
int credential_copy(struct credential *dst, const struct credential *src)
    __attribute__((warn_unused_result));

/*
 * The search order when no -o authfile= is given (containers-auth.json(5)):
 * $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json,
 * $DOCKER_CONFIG/config.json (else ~/.docker/config.json), ~/.dockercfg. Each file is looked
 * at in turn until one has an entry for the registry (authfile_has_entry).
 * authfile_search_paths: the candidates whose variables are set, existing or not; their count.
 * authfile_default_path: the first that exists; 0 with the path in out, -ENOENT when none.
 */
#define AUTHFILE_SEARCH_MAX 5
size_t authfile_search_paths(char out[][PATH_MAX]);
int authfile_default_path(char *out, size_t outlen) __attribute__((warn_unused_result));

/* The key under which a registry's entries are filed: the host[:port] without scheme or
 * path, lower-case host, Docker Hub's spellings (docker.io, index.docker.io,
 * registry-1.docker.io, https://index.docker.io/v1/) all as "docker.io". */
int authfile_normalize_host(const char *hostport, char *out, size_t outlen)
    __attribute__((warn_unused_result));

struct authfile;

/*
 * Parses a file's content, keeping only what applies to registry `hostport` (any spelling
 * authfile_normalize_host accepts). legacy: the ~/.dockercfg format (the entries at the top
 * level). 0, -EINVAL (not JSON / not an object: a reason in err), -EFBIG, -ENOMEM.
 * Unusable entries (bad base64, no password) are skipped with a reason in err too.
 */
int authfile_parse(const char *json, size_t len, bool legacy, const char *hostport,
                   struct authfile **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Reads and parses path (legacy when its name is .dockercfg). -ENOENT when it does not exist;
 * -EINVAL/-EFBIG/-EACCES as above (logged, without any secret). */
int authfile_load(const char *path, const char *hostport, struct authfile **out)
    __attribute__((warn_unused_result));
void authfile_free(struct authfile *af);

/*
 * The credentials for repository `repo` (wire name; NULL or "" for the registry itself): the
 * entry whose key is the host or host/NAMESPACE with the longest NAMESPACE that is repo or a
 * path prefix of it. 1 found (out filled), 0 none (out empty), -ENOMEM.
 */
int authfile_lookup(const struct authfile *af, const char *repo, struct credential *out)
    __attribute__((warn_unused_result));

/* The credential helper for the host: credHelpers[host], else credsStore; NULL when none. */
const char *authfile_helper(const struct authfile *af);
/* The file speaks for the registry: an auths entry for it (any namespace), or a helper. Ends
 * the search of the default files. */
bool authfile_has_entry(const struct authfile *af);

#endif
