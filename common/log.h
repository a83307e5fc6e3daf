/* Logging: stderr in the foreground, a file with -o log_file, syslog when daemonized. */
#ifndef REGISTRYFS_LOG_H
#define REGISTRYFS_LOG_H

#include <stdbool.h>

enum log_level { RLOG_ERROR = 0, RLOG_WARN, RLOG_INFO, RLOG_DEBUG };

/* file: NULL for stderr (or syslog once log_use_syslog() is called). debug: log_level=debug. */
int log_init(bool debug, const char *file);
/* Lines above level are dropped (default info; debug also turns on log_debug_enabled()). */
void log_set_level(enum log_level level);
/* "error", "warn", "info" or "debug" -> 0; anything else -> -1. */
int log_parse_level(const char *text, enum log_level *level) __attribute__((warn_unused_result));
void log_use_syslog(void);
bool log_debug_enabled(void);
/* SIGHUP reopens the log file (logrotate): from the init callback, i.e. after libfuse installed
 * its handlers, whose SIGHUP would end the session; a no-op without a log file. */
int log_reopen_on_sighup(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(RLOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(RLOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(RLOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_debug_enabled()) log_msg(RLOG_DEBUG, __VA_ARGS__);                                 \
    } while (0)

#endif
