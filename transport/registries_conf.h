/*
 * Per-registry settings from a containers-registries.conf(5) file: the `[[registry]]` tables
 * (prefix, location, insecure, blocked, mirror-by-digest-only) with their
 * `[[registry.mirror]]` tables (location, insecure, pull-from-mirror), also written as an
 * inline `mirror = [{...}]` array, and the version 1 `[registries.insecure]` /
 * `[registries.block]` lists. Everything else in the file (aliases, search registries,
 * short-name mode, credential helpers) is read and ignored.
 *
 * The text is read by the TOML-subset parser of toml_subset.h: anything it cannot parse makes
 * the whole file unusable (-EINVAL with the line), so a typo never silently turns TLS
 * verification off. Bounded: file size, tables, mirrors, nesting.
 * registries_conf.c builds and matches the tables, registries_conf_files.c reads the files.
 */
#ifndef REGISTRYFS_REGISTRIES_CONF_H
#define REGISTRYFS_REGISTRIES_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "transport/ref.h"

#define REGISTRIES_CONF_MAX_BYTES (1u << 20)
#define REGISTRIES_CONF_MAX_REGISTRIES 512
#define REGISTRIES_CONF_MAX_MIRRORS 16 /* per registry */
#define REGISTRIES_CONF_LOCATION_MAX (REF_HOST_MAX + 8 + REF_NAME_MAX + 2)

enum registries_conf_pull {
    REGISTRIES_CONF_PULL_ALL = 0,
    REGISTRIES_CONF_PULL_DIGEST_ONLY,
    REGISTRIES_CONF_PULL_TAG_ONLY
};

struct registries_conf_mirror {
    char location[REGISTRIES_CONF_LOCATION_MAX]; /* host[:port][/namespace] */
    bool insecure;
    enum registries_conf_pull pull; /* pull-from-mirror (or the registry's mirror-by-digest-only) */
};

struct registries_conf_registry {
    char prefix[REGISTRIES_CONF_LOCATION_MAX];   /* what it applies to: prefix, else location */
    char location[REGISTRIES_CONF_LOCATION_MAX]; /* "" when only a prefix was given */
    bool insecure;
    bool blocked;
    struct registries_conf_mirror mirrors[REGISTRIES_CONF_MAX_MIRRORS];
    size_t n_mirrors;
};

struct registries_conf {
    struct registries_conf_registry *regs;
    size_t n;
};

/* Parses text. 0, or -EINVAL with "line N: why" in err; -ENOMEM, -EFBIG. */
int registries_conf_parse(const char *text, size_t len, struct registries_conf *out, char *err,
                          size_t errlen) __attribute__((warn_unused_result));
/* Reads and parses path: -ENOENT when it does not exist (quietly), other errors logged. */
int registries_conf_load(const char *path, struct registries_conf *out)
    __attribute__((warn_unused_result));
/* registries_conf_load, then the drop-in files PATH.d/NAME.conf in name order (as
 * /etc/containers/registries.conf.d/), an entry with the prefix of an earlier one replacing it.
 * A drop-in that does not parse is skipped (logged). -ENOENT when none of them exists. */
int registries_conf_load_all(const char *path, struct registries_conf *out)
    __attribute__((warn_unused_result));
void registries_conf_free(struct registries_conf *c);

/*
 * The entry that applies to the image HOSTPORT/REPO (repo NULL: to the host itself): the
 * longest prefix that equals the reference or is a path prefix of it; "*.domain" prefixes
 * match any subdomain. Docker Hub's host names are matched as "docker.io". NULL when none.
 */
const struct registries_conf_registry *
registries_conf_match(const struct registries_conf *c, const char *hostport, const char *repo);

/*
 * Where mirror m of entry e holds the image HOSTPORT/REPO: the mirror's location with the part
 * of the reference after the entry's prefix appended, split into host and repository.
 * 0, or -EINVAL when that is not a valid host and repository name.
 */
int registries_conf_mirror_ref(const struct registries_conf_registry *e,
                               const struct registries_conf_mirror *m, const char *hostport,
                               const char *repo, char mhost[REF_HOST_MAX + 8],
                               char mrepo[REF_NAME_MAX + 1]) __attribute__((warn_unused_result));

#endif
