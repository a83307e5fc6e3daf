#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static bool debug_enabled;
static bool syslog_enabled;
static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

int log_init(bool debug, const char *file)
{
    debug_enabled = debug;
    if (file) {
        log_file = fopen(file, "a");
        if (!log_file) return -1;
        setvbuf(log_file, NULL, _IOLBF, 0);
    }
    return 0;
}

void log_use_syslog(void)
{
    if (log_file) return; /* an explicit log file wins over syslog */
    openlog("registryfs", LOG_PID, LOG_DAEMON);
    syslog_enabled = true;
}

bool log_debug_enabled(void)
{
    return debug_enabled;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char line[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (syslog_enabled) {
        syslog(priorities[level], "%s", line);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    pthread_mutex_lock(&log_lock);
    fprintf(log_file ? log_file : stderr, "%02d:%02d:%02d.%03ld registryfs %s: %s\n", tm.tm_hour,
            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level], line);
    pthread_mutex_unlock(&log_lock);
}
