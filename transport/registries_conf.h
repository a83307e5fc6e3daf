/*
 * Per-registry settings from a containers-registries.conf(5) file: the `[[registry]]` tables
 * (prefix, location, insecure, blocked, mirror-by-digest-only) with their
 * `[[registry.mirror]]` tables (location, insecure, pull-from-mirror), also written as an
 * inline `mirror = [{...}]` array, and the version 1 `[registries.insecure]` /
 * `[registries.block]` lists. Everything else in the file (aliases, search registries,
 * short-name mode, credential helpers) is read and ignored.
 *
 * A small TOML parser for exactly that much of TOML: tables, arrays of tables, bare/quoted
 * and dotted keys, basic and literal strings, booleans, numbers, arrays and inline tables.
 * Anything it cannot parse makes the whole file unusable (-EINVAL with the line), so a typo
 * never silently turns TLS verification off. Bounded: file size, tables, mirrors, nesting.
 */
#ifndef REGISTRYFS_REGISTRIES_CONF_H
#define REGISTRYFS_REGISTRIES_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "transport/ref.h"

#define REGCONF_MAX_BYTES (1u << 20)
#define REGCONF_MAX_REGISTRIES 512
#define REGCONF_MAX_MIRRORS 16 /* per registry */
#define REGCONF_LOCATION_MAX (REF_HOST_MAX + 8 + REF_NAME_MAX + 2)

enum regconf_pull { REGCONF_PULL_ALL = 0, REGCONF_PULL_DIGEST_ONLY, REGCONF_PULL_TAG_ONLY };

struct regconf_mirror {
    char location[REGCONF_LOCATION_MAX]; /* host[:port][/namespace] */
    bool insecure;
    enum regconf_pull pull; /* pull-from-mirror (or the registry's mirror-by-digest-only) */
};

struct regconf_registry {
    char prefix[REGCONF_LOCATION_MAX];   /* what it applies to: prefix, else location */
    char location[REGCONF_LOCATION_MAX]; /* "" when only a prefix was given */
    bool insecure;
    bool blocked;
    struct regconf_mirror mirrors[REGCONF_MAX_MIRRORS];
    size_t n_mirrors;
};

struct regconf {
    struct regconf_registry *regs;
    size_t n;
};

/* Parses text. 0, or -EINVAL with "line N: why" in err; -ENOMEM, -EFBIG. */
int regconf_parse(const char *text, size_t len, struct regconf *out, char *err, size_t errlen);
/* Reads and parses path: -ENOENT when it does not exist (quietly), other errors logged. */
int regconf_load(const char *path, struct regconf *out);
/* regconf_load, then the drop-in files PATH.d/NAME.conf in name order (as
 * /etc/containers/registries.conf.d/), an entry with the prefix of an earlier one replacing it.
 * A drop-in that does not parse is skipped (logged). -ENOENT when none of them exists. */
int regconf_load_all(const char *path, struct regconf *out);
void regconf_free(struct regconf *c);

/*
 * The entry that applies to the image HOSTPORT/REPO (repo NULL: to the host itself): the
 * longest prefix that equals the reference or is a path prefix of it; "*.domain" prefixes
 * match any subdomain. Docker Hub's host names are matched as "docker.io". NULL when none.
 */
const struct regconf_registry *regconf_match(const struct regconf *c, const char *hostport,
                                             const char *repo);

/*
 * Where mirror m of entry e holds the image HOSTPORT/REPO: the mirror's location with the part
 * of the reference after the entry's prefix appended, split into host and repository.
 * 0, or -EINVAL when that is not a valid host and repository name.
 */
int regconf_mirror_ref(const struct regconf_registry *e, const struct regconf_mirror *m,
                       const char *hostport, const char *repo, char mhost[REF_HOST_MAX + 8],
                       char mrepo[REF_NAME_MAX + 1]);

#endif
