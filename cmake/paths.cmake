# paths.cmake: where an installed Coffer lives (GNUInstallDirs, FHS). The programs are built
# with the configuration's default path and the way from cofferd to its workers compiled in
# (lib/core/paths.h.in); `make install PREFIX=... DESTDIR=...` and `make deb` use the same.
#
# With the prefix /usr (the package) or /usr/local (the default), configuration, state and
# runtime files go where the FHS puts them for any system package: /etc/coffer,
# /var/lib/coffer, /var/spool/coffer, /run/coffer. With any other prefix they go where
# GNUInstallDirs puts that prefix's (/opt/coffer: /etc/opt/coffer/coffer, /var/opt/coffer/...;
# /srv/coffer: /srv/coffer/etc/coffer, /srv/coffer/var/...).
include(GNUInstallDirs)
if(CMAKE_INSTALL_PREFIX MATCHES "^/usr(/local)?/?$")
  set(_sys /etc)
  set(_var /var)
  set(_run /run)
else()
  set(_sys ${CMAKE_INSTALL_FULL_SYSCONFDIR})
  set(_var ${CMAKE_INSTALL_FULL_LOCALSTATEDIR})
  set(_run ${CMAKE_INSTALL_FULL_RUNSTATEDIR})
endif()
# plain variables, not cache entries: they follow CMAKE_INSTALL_PREFIX when a build directory
# is configured again with another one (make install PREFIX=...)
set(COFFER_CONFDIR ${_sys}/coffer)        # coffer.conf, partitions.conf
set(COFFER_STATEDIR ${_var}/lib/coffer)   # configdir: databases, sasldb, Sieve scripts
set(COFFER_SPOOLDIR ${_var}/spool/coffer) # the default mail partition
set(COFFER_RUNDIR ${_run}/coffer)         # the pid file, the LMTP socket
set(COFFER_LIBEXECDIR ${CMAKE_INSTALL_FULL_LIBEXECDIR}/coffer)
# cofferd finds a worker named by a bare program name beside itself (the build tree), else by
# this path relative to its own directory: an installed tree can be moved as a whole (the
# package test runs one unpacked in a temporary directory).
file(RELATIVE_PATH COFFER_LIBEXEC_REL ${CMAKE_INSTALL_FULL_SBINDIR} ${COFFER_LIBEXECDIR})
