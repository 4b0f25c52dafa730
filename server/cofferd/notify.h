/* notify.h: telling systemd how cofferd is doing (the sd_notify protocol of a Type=notify
 * service): READY, RELOADING, STOPPING and a STATUS line with worker counts. */
#ifndef COFFER_COFFERD_NOTIFY_H
#define COFFER_COFFERD_NOTIFY_H

/* notify_init: take NOTIFY_SOCKET from the environment (and remove it, so that neither the
 * workers nor anything they run can speak for the service). Without it every notify_send is
 * a no-op. Call once, before forking anything. */
void notify_init(void);

/* notify_send: send one datagram of "KEY=VALUE" lines (printf format) to the socket. Never
 * blocks (MSG_DONTWAIT); a failure is logged once and otherwise ignored: systemd then sees
 * the start time out, which is the honest outcome. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* notify_status: STATUS= with workers per service, sent only when it changed. */
void notify_status(void);

#endif
