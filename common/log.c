#define _GNU_SOURCE /* pipe2 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level max_level = RLOG_INFO;
static bool syslog_enabled;
static FILE *log_file;
static char *log_path; /* kept to reopen the file of that name after SIGHUP */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int hup_pipe[2] = {-1, -1};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static FILE *open_log(const char *path)
{
    FILE *f = fopen(path, "ae");
    if (f) setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

int log_init(bool debug, const char *file)
{
    if (debug) max_level = RLOG_DEBUG;
    tzset(); /* localtime_r need not read TZ itself; the offset of every line depends on it */
    if (file) {
        log_file = open_log(file);
        if (!log_file) return -1;
        free(log_path);
        log_path = strdup(file);
    }
    return 0;
}

void log_set_level(enum log_level level)
{
    max_level = level;
}

int log_parse_level(const char *text, enum log_level *level)
{
    for (int i = RLOG_ERROR; i <= RLOG_DEBUG; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_use_syslog(void)
{
    if (log_file) return; /* an explicit log file wins over syslog */
    openlog("registryfs", LOG_PID, LOG_DAEMON);
    syslog_enabled = true;
}

bool log_debug_enabled(void)
{
    return max_level >= RLOG_DEBUG;
}

/* A new file of the old name; if it cannot be opened the old stream stays, so lines still go
 * somewhere (the renamed file) rather than nowhere. */
static void reopen_log(void)
{
    FILE *fresh = open_log(log_path);
    int err = errno;
    pthread_mutex_lock(&log_lock);
    if (fresh) {
        fclose(log_file);
        log_file = fresh;
    }
    pthread_mutex_unlock(&log_lock);
    if (fresh)
        log_info("log file reopened (SIGHUP)");
    else
        log_error("cannot reopen log file %s: %s", log_path, strerror(err));
}

/* The handler may only do async-signal-safe things: one byte into the pipe. A full pipe means a
 * reopen is already pending, which is all a second SIGHUP asks for. */
static void on_sighup(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t n = write(hup_pipe[1], "h", 1);
    (void)n;
    errno = saved;
}

/* fopen and the lock are not safe in a handler, so the reopen happens here. */
static void *reopen_thread(void *arg)
{
    (void)arg;
    char buf[16];
    for (;;) {
        ssize_t n = read(hup_pipe[0], buf, sizeof(buf));
        if (n > 0)
            reopen_log();
        else if (n == 0 || errno != EINTR)
            return NULL;
    }
}

int log_reopen_on_sighup(void)
{
    struct sigaction sa = {.sa_handler = on_sighup, .sa_flags = SA_RESTART};
    pthread_t t;
    sigemptyset(&sa.sa_mask);
    /* On stderr (foreground) a hangup of the terminal should still end the mount, as libfuse
     * makes it; a daemon logging to syslog has no terminal, and a SIGHUP sent to reopen logs
     * must not unmount it. */
    if (!log_path && !syslog_enabled) return 0;
    if (!log_path) sa.sa_handler = SIG_IGN;
    if (log_path && hup_pipe[0] < 0) {
        if (pipe2(hup_pipe, O_CLOEXEC | O_NONBLOCK)) return -errno;
        /* the reader blocks; only the handler's end must never block */
        fcntl(hup_pipe[0], F_SETFL, 0);
        if (pthread_create(&t, NULL, reopen_thread, NULL)) return -EAGAIN;
        pthread_detach(t);
    }
    return sigaction(SIGHUP, &sa, NULL) ? -errno : 0;
}

/* 2026-12-01T15:04:05.123+00:00: local time, milliseconds and the offset, so lines of
 * different hosts and of logrotate's files compare without guessing the zone. */
static void format_time(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int off = (int)(tm.tm_gmtoff / 60) % (24 * 60);
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000), sign, off / 60, off % 60);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char line[2048], when[96];
    va_list ap;

    if (level > max_level) return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (syslog_enabled) {
        syslog(priorities[level], "%s", line);
        return;
    }
    format_time(when, sizeof(when));
    pthread_mutex_lock(&log_lock);
    fprintf(log_file ? log_file : stderr, "%s registryfs %s: %s\n", when, level_names[level], line);
    pthread_mutex_unlock(&log_lock);
}
