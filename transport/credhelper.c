/* docker-credential-NAME get: run with a bounded time and output, never logged. */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np */
#include "transport/credhelper.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "common/log.h"

extern char **environ;

#define NOT_FOUND_TEXT "credentials not found"

static const char *member(const cJSON *root, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

int credhelper_parse(const char *json, size_t len, struct credential *out)
{
    memset(out, 0, sizeof(*out));
    if (!json || len == 0 || len > CREDHELPER_OUTPUT_MAX) return -EINVAL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -EINVAL;
    }
    const char *user = member(root, "Username");
    const char *secret = member(root, "Secret");
    int rc = 0;
    if (!user || !secret || !credential_field_valid(user) || !credential_field_valid(secret)) {
        rc = -EINVAL;
    } else if (secret[0]) {
        struct credential c = {0};
        if (strcmp(user, "<token>") == 0) {
            c.identity_token = strdup(secret);
            rc = c.identity_token ? 1 : -ENOMEM;
        } else {
            c.username = strdup(user);
            c.password = strdup(secret);
            rc = c.username && c.password ? 1 : -ENOMEM;
        }
        if (rc == 1)
            *out = c;
        else
            credential_clear(&c);
    }
    credential_wipe_json(root);
    cJSON_Delete(root);
    return rc;
}

/* Reads the child's stdout until EOF, the deadline or the size limit. */
static int read_output(int fd, char *buf, size_t cap, size_t *len, int64_t deadline)
{
    *len = 0;
    for (;;) {
        int64_t left = deadline - monotonic_ms_now();
        if (left <= 0) return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return -ETIMEDOUT;
        if (*len >= cap) return -EFBIG;
        ssize_t got = read(fd, buf + *len, cap - *len);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got < 0) return -errno;
        if (got == 0) return 0;
        *len += (size_t)got;
    }
}

/* Waits for pid until the deadline, then kills it. The exit status, or -1 when killed. */
static int reap(pid_t pid, int64_t deadline)
{
    int status;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (w < 0 && errno != EINTR) return -1;
        if (monotonic_ms_now() >= deadline) break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

static int spawn_helper(const char *prog, int in_fd, int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    char *const argv[] = {(char *)prog, "get", NULL};
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (posix_spawn_file_actions_init(&fa) != 0) return -ENOMEM;
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -ENOMEM;
    }
    int rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (!rc) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    /* the daemon's signal state (SIGPIPE ignored, masks) is not the helper's business */
    if (!rc) rc = posix_spawnattr_setsigmask(&attr, &none);
    if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!rc) rc = posix_spawnp(pid, prog, &fa, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

int credhelper_get(const char *name, const char *server, struct credential *out)
{
    char prog[CRED_HELPER_NAME_MAX + 32];
    memset(out, 0, sizeof(*out));
    if (!name || !server || strchr(name, '/') ||
        snprintf(prog, sizeof(prog), "docker-credential-%s", name) >= (int)sizeof(prog))
        return -EINVAL;
    int in[2], outp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return -errno;
    if (pipe2(outp, O_CLOEXEC) != 0) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        return -e;
    }
    pid_t pid;
    int64_t deadline = monotonic_ms_now() + CREDHELPER_TIMEOUT_MS;
    int rc = spawn_helper(prog, in[0], outp[1], &pid);
    close(in[0]);
    close(outp[1]);
    if (rc) {
        close(in[1]);
        close(outp[0]);
        if (rc == -ENOENT)
            log_warn("credential helper %s: not found on PATH", prog);
        else
            log_warn("credential helper %s: cannot run it: %s", prog, strerror(-rc));
        return rc;
    }
    /* the server name is short (< a socket buffer): this never blocks; no SIGPIPE */
    if (send(in[1], server, strlen(server), MSG_NOSIGNAL) < 0)
        log_debug("credential helper %s: it did not read its input", prog);
    close(in[1]);

    char *buf = malloc(CREDHELPER_OUTPUT_MAX);
    size_t len = 0;
    int read_rc = buf ? read_output(outp[0], buf, CREDHELPER_OUTPUT_MAX, &len, deadline) : -ENOMEM;
    close(outp[0]);
    if (read_rc) deadline = monotonic_ms_now(); /* no point waiting: it is killed now */
    int status = reap(pid, deadline + 1000);

    if (read_rc == -ETIMEDOUT) {
        log_warn("credential helper %s: no answer within %d s", prog, CREDHELPER_TIMEOUT_MS / 1000);
        rc = -ETIMEDOUT;
    } else if (read_rc) {
        log_warn("credential helper %s: reading its answer: %s", prog,
                 read_rc == -EFBIG ? "too long" : strerror(-read_rc));
        rc = read_rc == -ENOMEM ? -ENOMEM : -EIO;
    } else if (status != 0) {
        bool not_found = memmem(buf, len, NOT_FOUND_TEXT, strlen(NOT_FOUND_TEXT)) != NULL;
        if (not_found) {
            log_debug("credential helper %s: no credentials for %s", prog, server);
            rc = 0;
        } else {
            if (status < 0)
                log_warn("credential helper %s: killed by a signal", prog);
            else
                log_warn("credential helper %s: exit status %d", prog, status);
            rc = -EIO;
        }
    } else {
        rc = credhelper_parse(buf, len, out);
        if (rc == -EINVAL) {
            log_warn("credential helper %s: its answer is not the expected JSON", prog);
            rc = -EIO;
        } else if (rc == 0) {
            log_debug("credential helper %s: empty credentials for %s", prog, server);
        }
    }
    if (buf) {
        explicit_bzero(buf, CREDHELPER_OUTPUT_MAX);
        free(buf);
    }
    return rc;
}
