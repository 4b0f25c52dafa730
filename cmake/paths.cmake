# paths.cmake: where an installed Coffer lives (GNUInstallDirs, FHS). The programs are built
# with the configuration's default path and the way from cofferd to its workers compiled in
# (lib/core/paths.h.in); `make install PREFIX=... DESTDIR=...` and `make deb` use the same.
#
# With the prefix /usr (the package) or /usr/local (the default), configuration, state and
# runtime files go where the FHS puts them for any system package: /etc/coffer,
# /var/lib/coffer, /var/spool/coffer, /run/coffer. With any other prefix (/opt/coffer), they go
# under it (PREFIX/etc/coffer, PREFIX/var/...), so that such an install touches nothing else.
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
set(COFFER_CONFDIR ${_sys}/coffer CACHE PATH "configuration directory (coffer.conf, partitions.conf)")
set(COFFER_STATEDIR ${_var}/lib/coffer CACHE PATH "configdir: databases, sasldb, Sieve scripts")
set(COFFER_SPOOLDIR ${_var}/spool/coffer CACHE PATH "the default mail partition")
set(COFFER_RUNDIR ${_run}/coffer CACHE PATH "runtime files: pid file, the LMTP socket")
set(COFFER_LIBEXECDIR ${CMAKE_INSTALL_FULL_LIBEXECDIR}/coffer)
# cofferd finds a worker named by a bare program name beside itself (the build tree), else by
# this path relative to its own directory: an installed tree can be moved as a whole (the
# package test runs one unpacked in a temporary directory).
file(RELATIVE_PATH COFFER_LIBEXEC_REL ${CMAKE_INSTALL_FULL_SBINDIR} ${COFFER_LIBEXECDIR})
