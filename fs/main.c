/* registryfs: mount container-image registries as skopeo dir: directories. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "cache/evict.h"
#include "common/size.h"
#include "fs/backend.h"
#include "fs/link_from.h"
#include "fs/mount_checks.h"
#include "fs/ops.h"
#include "fs/rfs.h"
#include "fs/shutdown.h"
#include "fs/status_cmd.h"
#include "transport/http.h"
#include "transport/registry.h"

#define DEFAULT_TTL 30
#define PART_SIZE_MIN (64u << 10)
#define PART_SIZE_MAX (1u << 30)
#define DEFAULT_CACHE_MIN_FREE_PCT 5

enum {
    KEY_RW,
    KEY_RO,
    KEY_PUSH,
    KEY_ALLOW_DELETE,
    KEY_NONEMPTY,
    KEY_SYNC_LAYOUT,
    KEY_DEBUG,
    KEY_FOREGROUND,
    KEY_HELP,
    KEY_VERSION
};

struct cli {
    struct rfs_config *cfg;
    char *platform;
    char *tls_verify;
    char *max_transfers;
    char *part_size;
    char *cache_max_size;
    char *cache_min_free;
    char *log_level;
    char *positional[2];
    int n_positional;
    enum log_level level;
    bool rw_given; /* -o rw: mount(8)'s default, or the old spelling of -o push */
    bool ro_given; /* -o ro wins over push and allow_delete, wherever it stands */
    bool help;
    bool version;
};

#define CFG_OPT(templ, field)                                                                      \
    {                                                                                              \
        templ, offsetof(struct rfs_config, field), 0                                               \
    }

static const struct fuse_opt cfg_specs[] = {
    CFG_OPT("cache_dir=%s", cache_dir),
    CFG_OPT("log_file=%s", log_file),
    CFG_OPT("ttl=%d", ttl),
    CFG_OPT("timeout=%d", timeout),
    CFG_OPT("retries=%d", retries),
    CFG_OPT("authfile=%s", authfile),
    CFG_OPT("cert_dir=%s", cert_dir),
    CFG_OPT("registries_conf=%s", registries_conf),
    CFG_OPT("link_from=%s", link_from),
    FUSE_OPT_END,
};

#define CLI_OPT(templ, field)                                                                      \
    {                                                                                              \
        templ, offsetof(struct cli, field), 0                                                      \
    }

static const struct fuse_opt cli_specs[] = {
    CLI_OPT("platform=%s", platform),
    CLI_OPT("tls_verify=%s", tls_verify),
    CLI_OPT("max_transfers=%s", max_transfers),
    CLI_OPT("part_size=%s", part_size),
    CLI_OPT("cache_max_size=%s", cache_max_size),
    CLI_OPT("cache_min_free=%s", cache_min_free),
    CLI_OPT("log_level=%s", log_level),
    FUSE_OPT_KEY("rw", KEY_RW),
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("push", KEY_PUSH),
    FUSE_OPT_KEY("allow_delete", KEY_ALLOW_DELETE),
    FUSE_OPT_KEY("nonempty", KEY_NONEMPTY),
    FUSE_OPT_KEY("sync_layout", KEY_SYNC_LAYOUT),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("-f", KEY_FOREGROUND),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END,
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: registryfs [-f] [-d] [-o OPT[,OPT...]] REGISTRY MOUNTPOINT\n"
            "       registryfs [-f] [-d] [-o OPT[,OPT...]] PATH MOUNTPOINT\n"
            "       registryfs [-f] [-d] [-o OPT[,OPT...]] MOUNTPOINT\n"
            "       registryfs status [--watch] [--json] MOUNTPOINT   (its transfers)\n"
            "\n"
            "Mounts a container-image registry (or, without REGISTRY, a root whose entries are\n"
            "registry hosts) as skopeo dir: directories: REPO/TAG/{version,manifest.json,HEX...}.\n"
            "REGISTRY is [http://|https://]HOST[:PORT] (https when no scheme); PATH (absolute\n"
            "or ./relative) is a distribution storage tree (docker/registry/v2) mounted as one.\n"
            "\n"
            "  -f                     stay in the foreground\n"
            "  -d                     log one line per HTTP request (never credentials);\n"
            "                         the same as -o log_level=debug\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the versions of registryfs and its libraries\n"
            "  -o cache_dir=DIR       blob cache (default $XDG_CACHE_HOME/registryfs or\n"
            "                         ~/.cache/registryfs)\n"
            "  -o cache_max_size=SIZE evict least recently used blobs beyond this size\n"
            "                         (K/M/G/T suffixes; default: no limit)\n"
            "  -o cache_min_free=SIZE|N%%  evict so that the cache's filesystem keeps this\n"
            "                         free (default 5%%; 0 turns it off)\n"
            "  -o platform=OS/ARCH[/VARIANT]  show only that instance of multi-arch images\n"
            "  -o ttl=SECONDS         freshness of tags and listings (default %d)\n"
            "  -o log_file=FILE       log there (default: stderr with -f, else syslog);\n"
            "                         SIGHUP reopens it (logrotate)\n"
            "  -o log_level=LEVEL     error, warn, info or debug (default info)\n"
            "  -o tls_verify=false    do not verify TLS certificates (true|false|yes|no|1|0)\n"
            "  -o authfile=FILE       registry credentials (containers auth.json format; default:\n"
            "                         the first of skopeo's files with an entry for the host)\n"
            "  -o cert_dir=DIR        CA certificates and client keys (certs.d layout)\n"
            "  -o registries_conf=FILE  per-host insecure/blocked/mirrors (registries.conf(5);\n"
            "                         root mode default /etc/containers/registries.conf)\n"
            "  -o push                writable mount: new tags and retags are pushed\n"
            "  -o allow_delete        also let rm -r delete tags and mv drop the old tag\n"
            "                         (implies push)\n"
            "  -o link_from=DIR[:DIR...]  storage trees whose blobs are hardlinked into the\n"
            "                         tree (or cache) instead of stored again, once verified\n"
            "  -o nonempty            mount over a directory that is not empty\n"
            "  -o sync_layout         list images as NAME:TAG directories beside each other,\n"
            "                         as skopeo sync --dest dir writes them, so that\n"
            "                         skopeo sync --src dir MNT/NS REG/NS keeps their names\n"
            "  -o max_transfers=N     blob downloads (and uploads) at once per registry, 1-%d\n"
            "                         (default %d)\n"
            "  -o part_size=SIZE      larger blobs download as parallel ranged parts of this\n"
            "                         size (K/M/G suffixes, at least 64K; default 32M)\n"
            "  -o timeout=SECONDS     the most a registry request may take, retries included,\n"
            "                         and the window of a transfer's speed floor (default %d)\n"
            "  -o retries=N           further attempts of a failed request, 0-%d (default %d)\n"
            "  and the usual FUSE options (allow_other, ...).\n",
            DEFAULT_TTL, HTTP_MAX_TRANSFERS, HTTP_DEFAULT_TRANSFERS, HTTP_DEFAULT_TIMEOUT_S,
            HTTP_MAX_RETRIES, HTTP_DEFAULT_RETRIES);
}

static int process_arg(void *data, const char *arg, int key, struct fuse_args *out)
{
    (void)out;
    struct cli *cli = data;
    switch (key) {
    case KEY_RW:
        cli->rw_given = true;
        return 0;
    case KEY_RO:
        cli->ro_given = true;
        return 0;
    case KEY_PUSH:
        cli->cfg->push = true;
        return 0;
    case KEY_ALLOW_DELETE:
        cli->cfg->push = cli->cfg->allow_delete = true;
        return 0;
    case KEY_NONEMPTY:
        cli->cfg->nonempty = true;
        return 0;
    case KEY_SYNC_LAYOUT:
        cli->cfg->sync_layout = true;
        return 0;
    case KEY_DEBUG:
        cli->cfg->debug = true;
        return 0;
    case KEY_FOREGROUND:
        cli->cfg->foreground = true;
        return 1;
    case KEY_HELP:
        cli->help = true;
        return 0;
    case KEY_VERSION:
        cli->version = true;
        return 0;
    case FUSE_OPT_KEY_NONOPT:
        if (cli->n_positional == 2) {
            fprintf(stderr, "registryfs: unexpected argument '%s'\n", arg);
            return -1;
        }
        cli->positional[cli->n_positional++] = strdup(arg);
        return 0;
    default:
        return 1;
    }
}

static int parse_platform(const char *text, struct rfs_config *cfg)
{
    char copy[128];
    if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) return -1;
    char *save = NULL;
    char *os = strtok_r(copy, "/", &save);
    char *arch = strtok_r(NULL, "/", &save);
    char *variant = strtok_r(NULL, "/", &save);
    if (!os || !arch || strtok_r(NULL, "/", &save) || strlen(os) >= sizeof(cfg->os) ||
        strlen(arch) >= sizeof(cfg->arch) || (variant && strlen(variant) >= sizeof(cfg->variant)))
        return -1;
    snprintf(cfg->os, sizeof(cfg->os), "%s", os);
    snprintf(cfg->arch, sizeof(cfg->arch), "%s", arch);
    snprintf(cfg->variant, sizeof(cfg->variant), "%s", variant ? variant : "");
    cfg->platform_set = true;
    return 0;
}

/* The daemon changes directory to /: a relative path given on the command line must be made
 * absolute before that. */
static int make_absolute(char **path)
{
    if (!*path || (*path)[0] == '/') return 0;
    char cwd[PATH_MAX], joined[2 * PATH_MAX + 2];
    if (!getcwd(cwd, sizeof(cwd))) return -1;
    snprintf(joined, sizeof(joined), "%s/%s", cwd, *path);
    char *copy = strdup(joined);
    if (!copy) return -1;
    free(*path);
    *path = copy;
    return 0;
}

/* The daemon changes directory to /, so the cache path must be absolute. */
static int prepare_cache_dir(struct rfs_config *cfg)
{
    char path[PATH_MAX];
    if (cfg->cache_dir) {
        snprintf(path, sizeof(path), "%s", cfg->cache_dir);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (xdg && *xdg)
            snprintf(path, sizeof(path), "%s/registryfs", xdg);
        else
            snprintf(path, sizeof(path), "%s/.cache/registryfs", home && *home ? home : "/tmp");
    }
    char resolved[PATH_MAX];
    int rc = mkdir_p(path, 0755);
    if (rc || !realpath(path, resolved)) {
        fprintf(stderr, "registryfs: cannot use cache directory %s: %s\n", path,
                strerror(rc ? -rc : errno));
        return -1;
    }
    free(cfg->cache_dir);
    cfg->cache_dir = strdup(resolved);
    return 0;
}

/* -o max_transfers and -o part_size: a value we do not understand is an error, not ignored. */
static int parse_transfer_options(struct cli *cli)
{
    struct rfs_config *cfg = cli->cfg;
    if (cli->max_transfers) {
        char *end;
        long n = strtol(cli->max_transfers, &end, 10);
        if (*end || end == cli->max_transfers || n < 1 || n > HTTP_MAX_TRANSFERS) {
            fprintf(stderr, "registryfs: max_transfers must be a number from 1 to %d, not '%s'\n",
                    HTTP_MAX_TRANSFERS, cli->max_transfers);
            return -1;
        }
        cfg->max_transfers = (int)n;
    }
    if (cli->part_size && (parse_size(cli->part_size, &cfg->part_size) ||
                           cfg->part_size < PART_SIZE_MIN || cfg->part_size > PART_SIZE_MAX)) {
        fprintf(stderr, "registryfs: part_size must be a size from 64K to 1G (like 8M), not '%s'\n",
                cli->part_size);
        return -1;
    }
    return 0;
}

/* -o cache_max_size=SIZE and -o cache_min_free=SIZE|N%: refused when not understood. */
static int parse_cache_options(struct cli *cli)
{
    struct rfs_config *cfg = cli->cfg;
    if (cli->cache_max_size &&
        (parse_size(cli->cache_max_size, &cfg->cache_max_size) || cfg->cache_max_size == 0)) {
        fprintf(stderr,
                "registryfs: cache_max_size must be a size above 0 (like 10G, 512M), not '%s'\n",
                cli->cache_max_size);
        return -1;
    }
    const char *v = cli->cache_min_free;
    if (!v) return 0;
    size_t len = strlen(v);
    if (len > 1 && v[len - 1] == '%') {
        char *end;
        long pct = strtol(v, &end, 10);
        if (end == v + len - 1 && v[0] >= '0' && v[0] <= '9' && pct >= 0 && pct <= 100) {
            cfg->cache_min_free_pct = (int)pct;
            cfg->cache_min_free = 0;
            return 0;
        }
    } else if (parse_size(v, &cfg->cache_min_free) == 0) {
        cfg->cache_min_free_pct = 0;
        return 0;
    }
    fprintf(stderr,
            "registryfs: cache_min_free must be a size (like 2G) or a percentage from 0%% to "
            "100%%, not '%s'\n",
            v);
    return -1;
}

static void free_command_line(struct cli *cli)
{
    struct rfs_config *cfg = cli->cfg;
    free(cli->platform);
    free(cli->tls_verify);
    free(cli->max_transfers);
    free(cli->part_size);
    free(cli->cache_max_size);
    free(cli->cache_min_free);
    free(cli->log_level);
    for (int i = 0; i < cli->n_positional; i++)
        free(cli->positional[i]);
    free(cfg->cache_dir);
    free(cfg->log_file);
    free(cfg->authfile);
    free(cfg->cert_dir);
    free(cfg->registries_conf);
    free(cfg->link_from);
}

/* A given file or directory that is not there (or not of its kind) stops the mount: mounting
 * without the credentials or certificates asked for only fails later, less clearly. */
static int check_path_option(const char *option, const char *path, bool want_dir)
{
    struct stat st;
    if (!path) return 0;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "registryfs: -o %s=%s: %s\n", option, path, strerror(errno));
        return -1;
    }
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        fprintf(stderr, "registryfs: -o %s=%s: not a %s\n", option, path,
                want_dir ? "directory" : "regular file");
        return -1;
    }
    return 0;
}

/* -o tls_verify, -o authfile, -o cert_dir: a value we do not understand is an error, never a
 * silent default (tls_verify=no used to leave verification on). */
static int check_tls_auth_options(struct cli *cli)
{
    struct rfs_config *cfg = cli->cfg;
    const char *v = cli->tls_verify;
    if (v) {
        bool on = !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1");
        bool off = !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0");
        if (!on && !off) {
            fprintf(stderr,
                    "registryfs: tls_verify must be true or false (yes/no, 1/0), not '%s'\n", v);
            return -1;
        }
        cfg->tls_verify = on;
    }
    return check_path_option("authfile", cfg->authfile, false) ||
                   check_path_option("cert_dir", cfg->cert_dir, true)
               ? -1
               : 0;
}

/* Writes are an explicit choice: mount(8) passes "rw" for every fstab line, so "rw" enables
 * nothing there; typed on the command line it is the old spelling, refused so that nobody
 * gets a read-only mount (or, worse, deletion) they did not expect. */
static int check_write_options(struct cli *cli)
{
    if (cli->rw_given && !started_by_mount_helper()) {
        fprintf(stderr, "registryfs: -o rw is gone: use -o push to push new tags, and "
                        "-o allow_delete to also let rm -r delete tags\n");
        return -1;
    }
    if (cli->ro_given) cli->cfg->push = cli->cfg->allow_delete = false;
    return 0;
}

static int parse_command_line(struct fuse_args *args, struct cli *cli)
{
    struct rfs_config *cfg = cli->cfg;
    if (fuse_opt_parse(args, cfg, cfg_specs, NULL) ||
        fuse_opt_parse(args, cli, cli_specs, process_arg))
        return -1;
    if (cli->help || cli->version) return 0;
    if (cli->n_positional == 0) {
        usage(stderr);
        return -1;
    }
    if (cli->n_positional == 2) {
        cfg->registry = cli->positional[0];
        cfg->mountpoint = cli->positional[1];
    } else {
        cfg->mountpoint = cli->positional[0];
    }
    if (cli->platform && parse_platform(cli->platform, cfg)) {
        fprintf(stderr, "registryfs: platform must be OS/ARCH[/VARIANT], not '%s'\n",
                cli->platform);
        return -1;
    }
    if (check_tls_auth_options(cli)) return -1;
    if (cfg->ttl < 0) {
        fprintf(stderr, "registryfs: ttl must be >= 0\n");
        return -1;
    }
    if (cfg->timeout < 1 || cfg->timeout > 3600 || cfg->retries < 0 ||
        cfg->retries > HTTP_MAX_RETRIES) {
        fprintf(stderr, "registryfs: timeout must be 1-3600 seconds and retries 0-%d\n",
                HTTP_MAX_RETRIES);
        return -1;
    }
    if (parse_transfer_options(cli) || parse_cache_options(cli) || check_write_options(cli))
        return -1;
    if (cli->log_level && log_parse_level(cli->log_level, &cli->level)) {
        fprintf(stderr, "registryfs: log_level must be error, warn, info or debug, not '%s'\n",
                cli->log_level);
        return -1;
    }
    if (make_absolute(&cfg->authfile) || make_absolute(&cfg->cert_dir) ||
        make_absolute(&cfg->registries_conf) || make_absolute(&cfg->log_file) ||
        link_from_resolve(&cfg->link_from))
        return -1;
    return prepare_cache_dir(cfg);
}

/* The libraries' versions are those loaded at run time, not those built against: a bug report
 * needs what actually ran. */
static void print_versions(void)
{
    printf("registryfs %s\n", REGISTRYFS_VERSION);
    printf("libfuse %s\n", fuse_pkgversion());
    printf("libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("cJSON %s\n", cJSON_Version());
}

/* The bound of the cache directory; its thread starts in init (after the daemon forked). */
static int make_budget(struct rfs_config *cfg)
{
    if (!cfg->cache_max_size && !cfg->cache_min_free && !cfg->cache_min_free_pct) return 0;
    int rc = budget_new(cfg->cache_dir, cfg->cache_max_size, cfg->cache_min_free,
                        cfg->cache_min_free_pct, &cfg->budget);
    if (rc) fprintf(stderr, "registryfs: cannot set up the cache bound: %s\n", strerror(-rc));
    return rc ? -1 : 0;
}

/* Connect before mounting, so a wrong address or a dead registry is an error on the terminal
 * and a non-zero exit, not an empty mount. */
static int connect_single(struct rfs *fs)
{
    int rc = host_new(fs->cfg.registry, &fs->cfg, &fs->single);
    if (rc == 0) {
        fs->single->readahead = &fs->readahead;
        fs->single->progress = &fs->progress;
    }
    if (rc) {
        fprintf(stderr, "registryfs: %s: %s\n", fs->cfg.registry,
                rc == -EINVAL ? "not a registry address ([http://|https://]HOST[:PORT])"
                              : strerror(-rc));
        return -1;
    }
    rc = backend_ping(fs->single);
    if (rc) {
        fprintf(stderr, "registryfs: %s does not answer as a registry: %s\n", fs->cfg.registry,
                strerror(-rc));
        host_discard(fs->single); /* and its fresh cache directory */
        fs->single = NULL;
        return -1;
    }
    return 0;
}

int main(int argc, char *argv[])
{
    /* a subcommand, not a mount: before FUSE sees the arguments (a mount point named
     * "status" is written ./status) */
    if (argc >= 2 && strcmp(argv[1], "status") == 0) return status_main(argc - 1, argv + 1);
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    static struct rfs fs;
    struct cli cli = {.cfg = &fs.cfg, .level = RLOG_INFO};
    fs.cfg.ttl = DEFAULT_TTL;
    fs.cfg.max_transfers = HTTP_DEFAULT_TRANSFERS;
    fs.cfg.timeout = HTTP_DEFAULT_TIMEOUT_S;
    fs.cfg.retries = HTTP_DEFAULT_RETRIES;
    fs.cfg.part_size = BLOBCACHE_PART_SIZE;
    fs.cfg.cache_min_free_pct = DEFAULT_CACHE_MIN_FREE_PCT;
    fs.cfg.tls_verify = true;
    pthread_mutex_init(&fs.lock, NULL);
    strmap_init(&fs.hosts);
    readahead_init(&fs.readahead);
    progress_init(&fs.progress);

    int status = 1;
    if (parse_command_line(&args, &cli)) goto out;
    if (cli.help) {
        usage(stdout);
        status = 0;
        goto out;
    }
    if (cli.version) {
        print_versions();
        status = 0;
        goto out;
    }
    if (log_init(false, fs.cfg.log_file)) {
        fprintf(stderr, "registryfs: cannot open log file %s: %s\n", fs.cfg.log_file,
                strerror(errno));
        goto out;
    }
    log_set_level(fs.cfg.debug ? RLOG_DEBUG : cli.level); /* -d wins: it is the quick switch */
    if (transport_global_init()) {
        fprintf(stderr, "registryfs: cannot initialise libcurl\n");
        goto out;
    }
    if (check_mountpoint(fs.cfg.mountpoint, fs.cfg.nonempty)) goto out;
    if (make_budget(&fs.cfg)) goto out;
    if (fs.cfg.registry && connect_single(&fs)) goto out;

    char fsname[REF_HOST_MAX + 64];
    /* a path may hold commas, which would split the option: storage trees are "storage" */
    snprintf(fsname, sizeof(fsname), "-ofsname=registryfs:%.200s,subtype=registryfs",
             !fs.single              ? "root"
             : fs.single->local_root ? "storage"
                                     : fs.single->name);
    fuse_opt_add_arg(&args, fsname);
    if (!fs.cfg.push) fuse_opt_add_arg(&args, "-oro");
    fuse_opt_add_arg(&args, fs.cfg.mountpoint);
    status = fuse_main(args.argc, args.argv, &registryfs_ops, &fs) ? 1 : 0;
out:
    shutdown_watch_stop(&fs);
    rfs_free_hosts(&fs);
    budget_free(fs.cfg.budget); /* after the hosts: their readers unpin into it */
    readahead_destroy(&fs.readahead);
    progress_destroy(&fs.progress); /* after the hosts: their transfers have ended */
    transport_global_cleanup();
    fuse_opt_free_args(&args);
    free_command_line(&cli);
    return status;
}
