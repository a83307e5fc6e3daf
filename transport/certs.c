/* certs.d directories: extra CA certificates and a client certificate per registry. */
#include "transport/certs.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

struct tls_certs {
    X509 **cas;
    size_t n_cas;
    char *client_cert; /* absolute paths, or NULL */
    char *client_key;
    char where[PATH_MAX + 64]; /* the directories the material came from */
};

/* ---- directories ---- */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int push_dir(char **dirs, size_t *n, size_t max, const char *a, const char *b, const char *c)
{
    if (*n >= max) return 0;
    char path[PATH_MAX];
    int len = snprintf(path, sizeof(path), "%s%s%s", a, b, c);
    if (len < 0 || (size_t)len >= sizeof(path)) return 0; /* cannot exist */
    dirs[*n] = strdup(path);
    if (!dirs[*n]) return -ENOMEM;
    (*n)++;
    return 0;
}

char **certs_dirs(const char *cert_dir, const char *hostport)
{
    enum { MAX_DIRS = 4 };
    char **dirs = calloc(MAX_DIRS + 1, sizeof(*dirs));
    size_t n = 0;
    int rc = 0;
    if (!dirs) return NULL;
    if (cert_dir && *cert_dir) {
        rc = push_dir(dirs, &n, MAX_DIRS, cert_dir, "", "");
        if (!rc) rc = push_dir(dirs, &n, MAX_DIRS, cert_dir, "/", hostport);
    } else {
        const char *home = getenv("HOME");
        if (geteuid() != 0 && home && *home)
            rc = push_dir(dirs, &n, MAX_DIRS, home, "/.config/containers/certs.d/", hostport);
        if (!rc) rc = push_dir(dirs, &n, MAX_DIRS, "/etc/containers/certs.d/", hostport, "");
        if (!rc) rc = push_dir(dirs, &n, MAX_DIRS, "/etc/docker/certs.d/", hostport, "");
    }
    if (rc) {
        certs_dirs_free(dirs);
        return NULL;
    }
    return dirs;
}

void certs_dirs_free(char **dirs)
{
    if (!dirs) return;
    for (size_t i = 0; dirs[i]; i++)
        free(dirs[i]);
    free(dirs);
}

/* ---- loading ---- */

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n > m && strcmp(name + n - m, suffix) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The certificate-related names in dir, sorted; *n of them. -errno when unreadable. */
static int list_dir(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return -errno;
    char **list = calloc(CERTS_MAX_FILES, sizeof(*list));
    if (!list) {
        closedir(d);
        return -ENOMEM;
    }
    size_t count = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!has_suffix(e->d_name, ".crt") && !has_suffix(e->d_name, ".cert") &&
            !has_suffix(e->d_name, ".key"))
            continue;
        if (count >= CERTS_MAX_FILES) {
            log_warn("certs %s: more than %d certificate files; ignoring the rest", dir,
                     CERTS_MAX_FILES);
            break;
        }
        list[count] = strdup(e->d_name);
        if (!list[count]) {
            rc = -ENOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    qsort(list, count, sizeof(*list), cmp_names);
    *names = list;
    *n = count;
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Appends every certificate of a PEM file. */
static int load_pem_cas(struct tls_certs *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CERTS_FILE_MAX_BYTES) {
        log_error("certs %s: not a readable certificate file (or over %u bytes)", path,
                  CERTS_FILE_MAX_BYTES);
        return -EINVAL;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        log_error("certs %s: %s", path, strerror(errno));
        return -EINVAL;
    }
    size_t before = c->n_cas;
    for (;;) {
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        if (!x) break;
        if (c->n_cas >= CERTS_MAX_CAS) {
            X509_free(x);
            log_warn("certs %s: more than %d CA certificates in all; ignoring the rest", path,
                     CERTS_MAX_CAS);
            break;
        }
        c->cas[c->n_cas++] = x;
    }
    fclose(f);
    unsigned long e = ERR_peek_last_error();
    /* the end of the file reads as "no start line": that is the normal end */
    bool eof = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    if (c->n_cas == before || (e && !eof)) {
        log_error("certs %s: no PEM certificate could be read from it", path);
        return -EINVAL;
    }
    return 0;
}

static int readable_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, R_OK) != 0) {
        log_error("certs %s: not a readable file", path);
        return -EINVAL;
    }
    return 0;
}

static void note_dir(struct tls_certs *c, const char *dir)
{
    size_t n = strlen(c->where);
    if (n + 1 < sizeof(c->where))
        snprintf(c->where + n, sizeof(c->where) - n, "%s%s", n ? ", " : "", dir);
}

/* The client pair NAME.cert + NAME.key, both required when either exists. */
static int load_client(struct tls_certs *c, const char *dir, char **names, size_t n,
                       const char *name)
{
    char base[NAME_MAX + 1], path[PATH_MAX], other[PATH_MAX];
    bool is_cert = has_suffix(name, ".cert");
    size_t stem = strlen(name) - (is_cert ? 5 : 4);
    snprintf(base, sizeof(base), "%.*s", (int)stem, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char want[NAME_MAX + 8];
    snprintf(want, sizeof(want), "%s%s", base, is_cert ? ".key" : ".cert");
    bool found = bsearch(&(const char *){want}, names, n, sizeof(*names), cmp_names) != NULL;
    if (!found) {
        log_error("certs %s: missing %s/%s for it", path, dir, want);
        return -EINVAL;
    }
    if (!is_cert || c->client_cert)
        return 0; /* the pair is handled from its .cert; only the first pair is used */
    snprintf(other, sizeof(other), "%s/%s", dir, want);
    if (readable_file(path) || readable_file(other)) return -EINVAL;
    c->client_cert = strdup(path);
    c->client_key = strdup(other);
    return c->client_cert && c->client_key ? 0 : -ENOMEM;
}

static int load_dir(struct tls_certs *c, const char *dir, bool *used)
{
    char **names;
    size_t n;
    *used = false;
    int rc = list_dir(dir, &names, &n);
    if (rc) {
        if (rc != -ENOMEM) log_error("certs %s: %s", dir, strerror(-rc));
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if (has_suffix(names[i], ".crt")) {
            char path[PATH_MAX];
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            rc = load_pem_cas(c, path);
        } else {
            rc = load_client(c, dir, names, n, names[i]);
        }
        *used = true;
    }
    free_names(names, n);
    return rc;
}

int certs_load(const char *cert_dir, const char *hostport, struct tls_certs **out)
{
    *out = NULL;
    char absdir[PATH_MAX];
    if (cert_dir && *cert_dir) {
        /* the daemon runs in /: client key paths must be absolute */
        if (!realpath(cert_dir, absdir) || !is_dir(absdir)) {
            log_error("cert_dir %s: %s", cert_dir,
                      is_dir(cert_dir) ? strerror(errno) : "not a directory");
            return -EINVAL;
        }
        cert_dir = absdir;
    }
    char **dirs = certs_dirs(cert_dir, hostport);
    if (!dirs) return -ENOMEM;
    struct tls_certs *c = calloc(1, sizeof(*c));
    if (c) c->cas = calloc(CERTS_MAX_CAS, sizeof(*c->cas));
    if (!c || !c->cas) {
        certs_free(c);
        certs_dirs_free(dirs);
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; dirs[i] && !rc; i++) {
        if (!is_dir(dirs[i])) continue;
        bool used;
        rc = load_dir(c, dirs[i], &used);
        if (used) note_dir(c, dirs[i]);
        if (!cert_dir)
            break; /* the defaults: the first directory that exists, as containers does */
    }
    certs_dirs_free(dirs);
    if (rc || (c->n_cas == 0 && !c->client_cert)) {
        certs_free(c);
        return rc;
    }
    log_debug("registry %s: %zu CA certificate(s)%s from %s", hostport, c->n_cas,
              c->client_cert ? " and a client certificate" : "", c->where);
    *out = c;
    return 0;
}

void certs_free(struct tls_certs *c)
{
    if (!c) return;
    for (size_t i = 0; c->cas && i < c->n_cas; i++)
        X509_free(c->cas[i]);
    free(c->cas);
    free(c->client_cert);
    free(c->client_key);
    free(c);
}

size_t certs_ca_count(const struct tls_certs *c)
{
    return c ? c->n_cas : 0;
}

bool certs_have_client(const struct tls_certs *c)
{
    return c && c->client_cert;
}

const char *certs_describe(const struct tls_certs *c)
{
    return c ? c->where : "";
}

/* ---- curl ---- */

/* curl has loaded the system CAs into the context's store by now: ours are added to them. */
static CURLcode add_cas(CURL *curl, void *ssl_ctx, void *userp)
{
    (void)curl;
    const struct tls_certs *c = userp;
    X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)ssl_ctx);
    if (!store) return CURLE_SSL_CERTPROBLEM;
    for (size_t i = 0; i < c->n_cas; i++) {
        /* a certificate already there (a reused store) is not an error in OpenSSL >= 1.1.1 */
        if (X509_STORE_add_cert(store, c->cas[i]) != 1) {
            ERR_clear_error();
            return CURLE_SSL_CERTPROBLEM;
        }
    }
    return CURLE_OK;
}

int certs_apply(const struct tls_certs *c, CURL *h)
{
    if (!c) return 0;
    CURLcode cc = CURLE_OK;
    if (c->n_cas) {
        cc = curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, add_cas);
        if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, (void *)c);
    }
    if (cc == CURLE_OK && c->client_cert) {
        cc = curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
        if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
        if (cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    return cc == CURLE_OK ? 0 : -EIO;
}
