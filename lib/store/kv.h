/* kv.h: Coffer's small key-value API over a transactional Berkeley DB environment. Nothing
 * outside lib/store/kv.c includes db.h, so the engine can change without touching callers.
 *
 * The environment is a directory (configdir/db). cofferd runs recovery once at start, before
 * any worker opens it (kv_env_recover); everybody else opens it without recovery. */
#ifndef COFFER_STORE_KV_H
#define COFFER_STORE_KV_H

/* kv_env_recover: run Berkeley DB normal recovery on the environment in dir (created, mode
 * 0700, if missing). Must run with no other process using the environment. 0 or CF_E_IO
 * (logged with the reason). */
int kv_env_recover(const char *dir);

#endif
