# Install rules and the Debian package (CPack DEB).
#
#   cmake --build build && (cd build && cpack -G DEB)   ->  build/ferry_<version>_<arch>.deb
#   scripts/package.sh                                   (the same, from a Release build)
#
# Each program installs itself with install(TARGETS ... RUNTIME DESTINATION
# ${CMAKE_INSTALL_BINDIR}) next to where it is defined (ferryd here,
# ferry-bench in src/bench, ferryctl in src/ctl), so a new program joins the
# package by adding that one line. Everything else the package holds is
# installed here:
#
#   /usr/bin/ferryd, /usr/bin/ferry-bench, ...
#   /etc/ferry/ferry.conf              etc/ferry.conf with the packaged paths (a conffile)
#   /lib/systemd/system/ferryd.service systemd/ferryd.service
#   /usr/share/doc/ferry/              README.md, docs/*.md, etc/examples/
#
# The maintainer scripts in packaging/debian create the `ferry` system user,
# /var/lib/ferry and /var/log/ferry, and enable and start the service.
include(GNUInstallDirs)

install(TARGETS ferryd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The packaged config: the shipped one, with state under /var/lib/ferry and
# the default listener on loopback until the administrator opens it up.
set(FERRY_CONF_IN ${PROJECT_SOURCE_DIR}/etc/ferry.conf)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${FERRY_CONF_IN})
file(READ ${FERRY_CONF_IN} FERRY_CONF)
foreach(pair "data_dir = data|data_dir = /var/lib/ferry"
             "bind = 0.0.0.0:1883|bind = 127.0.0.1:1883")
  string(REPLACE "|" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  string(FIND "${FERRY_CONF}" "\n${from}\n" found)
  if(found EQUAL -1)
    message(FATAL_ERROR "etc/ferry.conf has no line '${from}' to adapt for the package")
  endif()
  string(REPLACE "\n${from}\n" "\n${to}\n" FERRY_CONF "${FERRY_CONF}")
endforeach()
set(FERRY_CONF_HEADER "# As packaged: data_dir is /var/lib/ferry, and [listener.tcp.default]
# accepts clients on this machine only (bind = 127.0.0.1:1883). Set
# bind = 0.0.0.0:1883 (and think about allow_anonymous) to open it up, then
# `systemctl reload ferryd` does not suffice: `systemctl restart ferryd`.
#
")
file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/packaging/ferry.conf
     CONTENT "${FERRY_CONF_HEADER}${FERRY_CONF}" @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/packaging/ferry.conf DESTINATION /etc/ferry)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/ferryd.service DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/etc/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(CPACK_PACKAGE_NAME ferry)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR ferry)
set(CPACK_PACKAGE_CONTACT "ferry maintainers <ferry@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "MQTT 3.1.1 and 5.0 broker for edge sites and central clusters")
set(CPACK_PACKAGE_DESCRIPTION
    "ferryd is an MQTT broker written in C++ on libuv: TCP, TLS and WebSocket listeners, PROXY protocol for load balancers, persistent sessions and retained messages in SQLite. ferryctl is its admin tool (also an HTTP API with a health check and Prometheus metrics); ferry-bench is its load generator.")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
include(CPack)
