/* log.h: one line per event, as key=value pairs, with the session id, user and mailbox of the
 * current session; to syslog (facility mail) or to stderr. */
#ifndef COFFER_CORE_LOG_H
#define COFFER_CORE_LOG_H
#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_NOTICE, LOG_LVL_WARNING, LOG_LVL_ERR };

/* log_init: ident is the program name; to_stderr chooses stderr over syslog. */
void log_init(const char *ident, int to_stderr, enum log_level min_level);
void log_set_level(enum log_level min_level);
int log_level_parse(const char *s, enum log_level *out); /* 0 or CF_E_PARSE */
int log_to_stderr(void);

/* Context added to every line until changed; NULL clears. Strings are copied. */
void log_set_session(const char *id);
void log_set_user(const char *user);
void log_set_mailbox(const char *mailbox);
const char *log_session(void);

/* log_new_session_id: a fresh random session id (12 chars of [a-z0-9]), also set as context. */
const char *log_new_session_id(void);

/* log_event: "event=NAME session=.. user=.. mailbox=.. " then the formatted key=value text. */
void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vevent(enum log_level lvl, const char *event, const char *fmt, va_list ap);

#define log_debug(ev, ...)  log_event(LOG_LVL_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...)   log_event(LOG_LVL_INFO, ev, __VA_ARGS__)
#define log_notice(ev, ...) log_event(LOG_LVL_NOTICE, ev, __VA_ARGS__)
#define log_warn(ev, ...)   log_event(LOG_LVL_WARNING, ev, __VA_ARGS__)
#define log_err(ev, ...)    log_event(LOG_LVL_ERR, ev, __VA_ARGS__)

/* log_quote: v as a log value: bare if it has no space, quote, '=' or control character, else
 * in double quotes with \" \\ and \xNN escapes, truncated at 200 bytes. Returns a static buffer
 * from a ring of 32 that log_event itself does not use: valid until 32 more calls, so one event
 * may quote up to 32 arguments. */
const char *log_quote(const char *v);

#endif
