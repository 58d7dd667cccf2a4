# Install layout and the Debian package (CPack, DEB generator). See docs/operations.md.
#
#   cmake --install build/release --prefix /usr --component tokenwarden   # the daemon's files
#   (cd build/release && cpack -G DEB)                                     # tokenwarden_<v>_<arch>.deb
#
# Components:
# - "tokenwarden": everything an admin host needs and everything the .deb holds: the binary,
#   tokenwarden-sim (`tokenwarden demo` runs it; useful for staging too, docs/simulator.md),
#   /etc/tokenwarden (config, credentials/), the systemd unit, the man page and the docs.
# - "Unspecified" (the default): the same binaries plus tokenwarden-influxctl
#   (sim/CMakeLists.txt), a test tool that is not part of the package; a plain `cmake --install`
#   without --component installs it too.
#
# The configuration and the unit live outside the prefix (TW_SYSCONF_DIR, TW_SYSTEMD_UNIT_DIR,
# absolute), so the package has /etc and /lib/systemd/system whatever CMAKE_INSTALL_PREFIX is;
# the package itself installs under CPACK_PACKAGING_INSTALL_PREFIX=/usr.

set(TW_SYSCONF_DIR "/etc/tokenwarden" CACHE PATH
    "Absolute directory of tokenwarden.toml and credentials/ (the unit expects /etc/tokenwarden)")
set(TW_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH
    "Absolute directory for tokenwarden.service (Debian 12: /lib/systemd/system)")
set(TW_DOC_DIR "${CMAKE_INSTALL_DATAROOTDIR}/doc/tokenwarden")
set(tw_component tokenwarden)
set(tw_pkg_dir "${PROJECT_BINARY_DIR}/packaging")

# --- The binaries ------------------------------------------------------------------------------
# cli/ and sim/CMakeLists.txt install them in the default component; these rules put them in ours
# too. `tokenwarden demo` looks for tokenwarden-sim next to tokenwarden.
install(TARGETS tokenwarden tokenwarden-sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT ${tw_component})

# --- /etc/tokenwarden, the systemd unit, the man page -------------------------------------------
# Install-time logic (keep an existing config, rewrite ExecStart= for another prefix, gzip the man
# page) lives in cmake/InstallFiles.cmake.in, configured here and run as an install script.
configure_file("${PROJECT_SOURCE_DIR}/cmake/InstallFiles.cmake.in" "${tw_pkg_dir}/InstallFiles.cmake"
               @ONLY)
install(SCRIPT "${tw_pkg_dir}/InstallFiles.cmake" COMPONENT ${tw_component})

# credentials/: management tokens for LoadCredential=, root only (0700), shipped empty.
file(MAKE_DIRECTORY "${tw_pkg_dir}/credentials")
install(DIRECTORY "${tw_pkg_dir}/credentials" DESTINATION "${TW_SYSCONF_DIR}"
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
        COMPONENT ${tw_component})

# The journal catalog of the journald export sink's MESSAGE_IDs (docs/audit-export.md). Debian's
# systemd package has a dpkg trigger on this directory that runs `journalctl --update-catalog`.
install(FILES systemd/tokenwarden.catalog DESTINATION lib/systemd/catalog
        COMPONENT ${tw_component})

# --- Documentation and examples ----------------------------------------------------------------
file(GLOB tw_docs CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/docs/*.md" "${PROJECT_SOURCE_DIR}/docs/*.json")
install(FILES README.md ${tw_docs} DESTINATION ${TW_DOC_DIR} COMPONENT ${tw_component})
install(FILES config/tokenwarden.toml config/policies.toml
        DESTINATION ${TW_DOC_DIR}/examples COMPONENT ${tw_component})
file(GLOB tw_prometheus_examples CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/config/prometheus/*.yml")
install(FILES ${tw_prometheus_examples}
        DESTINATION ${TW_DOC_DIR}/examples/prometheus COMPONENT ${tw_component})

# --- Debian control files ----------------------------------------------------------------------
file(WRITE "${tw_pkg_dir}/debian/conffiles" "${TW_SYSCONF_DIR}/tokenwarden.toml\n")
foreach(script postinst prerm postrm)
  configure_file("${PROJECT_SOURCE_DIR}/cmake/debian/${script}" "${tw_pkg_dir}/debian/${script}"
                 COPYONLY)
endforeach()

# --- CPack -------------------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tokenwarden)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "tokenwarden")
set(CPACK_PACKAGE_CONTACT "tokenwarden maintainers <tokenwarden-maintainers@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "InfluxDB 3 database token auditor and policy enforcer")
set(CPACK_PACKAGE_DESCRIPTION
    "tokenwarden polls the database token lists of InfluxDB 3 Clustered and Cloud Dedicated "
    "clusters, records every change in a tamper-evident SQLite audit history, checks the tokens "
    "against policies (lifetime, rotation, forbidden grants), alerts on or remediates violations "
    "and exports Prometheus metrics. It runs as a hardened systemd service.")
string(JOIN "" CPACK_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})

# Only our component goes into the package (one .deb); see the top of this file.
set(CPACK_COMPONENTS_ALL ${tw_component})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
# Absolute destinations (/etc, /lib/systemd/system) are staged by the DEB generator itself
# (never written to the host); CPACK_SET_DESTDIR must stay OFF or the prefix becomes
# CMAKE_INSTALL_PREFIX instead of CPACK_PACKAGING_INSTALL_PREFIX.
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)          # tokenwarden_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)           # Depends: from dpkg-shlibdeps (dpkg-dev)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "sqlite3, prometheus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${tw_pkg_dir}/debian/conffiles;${tw_pkg_dir}/debian/postinst;${tw_pkg_dir}/debian/prerm;${tw_pkg_dir}/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(CPACK_SOURCE_GENERATOR TGZ)
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build/" "__pycache__")

include(CPack)
