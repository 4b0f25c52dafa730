/* master.h: cofferd's supervisor: services, their listeners and workers, signals and status. */
#ifndef COFFER_COFFERD_MASTER_H
#define COFFER_COFFERD_MASTER_H
#include "core/buf.h"
#include "core/config.h"

/* master_validate: checks coffer.conf needs beyond config_load: every listen address parses
 * and every program exists and is executable. Returns 0, or CF_E_PARSE with one
 * "file:line: ..." line per problem appended to err. Does not bind anything. */
int master_validate(const struct config *cfg, struct buf *err);

/* master_resolve_program: the path exec'd for a service's program: a bare name is looked up
 * in the directory of the running cofferd (/proc/self/exe), else in the installed workers'
 * directory relative to it (COFFER_LIBEXEC_REL, core/paths.h), a relative path with a slash is
 * taken from the directory of coffer.conf (like every other path setting), an absolute one
 * as is. Caller frees. */
char *master_resolve_program(const struct config *cfg, const char *program);

/* master_setup: take ownership of cfg (validated), create the status and signal pipes,
 * install the signal handlers and bind every service's listeners. conf_path (absolute) is
 * passed to workers and re-read on SIGHUP; debug pins the log level at debug across reloads.
 * Returns 0; CF_E_IO with "cannot listen on ADDR: ERRNO TEXT" in err; CF_E_INTERNAL when a
 * pipe cannot be made. On failure cfg is freed too. */
int master_setup(struct config *cfg, const char *conf_path, int debug, struct buf *err);

/* master_config: the configuration in force (owned by the master). */
const struct config *master_config(void);

/* master_run: start the workers and supervise them until SIGTERM/SIGINT, then shut down:
 * listeners closed, workers asked to finish, stragglers killed after shutdown_timeout.
 * Returns the exit code (0 after a clean stop). Blocks for the daemon's whole life. */
int master_run(void);

/* master_fini: free everything master_setup made (listeners closed). */
void master_fini(void);

#endif
