# SPDX-License-Identifier: MIT
# Install rules (included from CMakeLists.txt when IOA_INSTALL is on):
# shared library with SONAME, static library, headers, man pages, ioasync.pc and
# the CMake package (find_package(ioasync 1.0 CONFIG): ioasync::ioasync and
# ioasync::ioasync_static).  ioa-connect installs itself (tools/).
include(CMakePackageConfigHelpers)
set(IOA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ioasync)

install(TARGETS ioasync ioasync_static EXPORT ioasyncTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES include/ioasync.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/ioasync DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

# CMake package: targets, a config that finds the static library's
# dependencies again, and a version file (1.x satisfies a request for 1.0).
install(EXPORT ioasyncTargets NAMESPACE ioasync:: DESTINATION ${IOA_CMAKE_DIR})
configure_package_config_file(cmake/ioasyncConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ioasyncConfig.cmake INSTALL_DESTINATION ${IOA_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ioasyncConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ioasyncConfig.cmake
              ${PROJECT_BINARY_DIR}/ioasyncConfigVersion.cmake
        DESTINATION ${IOA_CMAKE_DIR})

# pkg-config: `pkg-config --static --libs ioasync` adds c-ares (Requires.private)
# and -pthread.  The prefix is written at install time, so that
# `cmake --install build --prefix DIR` gets a .pc pointing at DIR.
foreach(_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
    set(IOA_PC_${_dir} "${CMAKE_INSTALL_${_dir}}")
  else()
    set(IOA_PC_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
  endif()
endforeach()
set(IOA_PC_REQUIRES_PRIVATE "")
if(IOA_HAVE_CARES)
  set(IOA_PC_REQUIRES_PRIVATE "libcares")
endif()
if(IOA_HAVE_TLS)
  string(APPEND IOA_PC_REQUIRES_PRIVATE " openssl")
endif()
set(IOA_PC_PREFIX "@IOA_PC_PREFIX@")  # kept for the install-time step below
configure_file(cmake/ioasync.pc.in ${PROJECT_BINARY_DIR}/ioasync.pc.stage @ONLY)
install(CODE "
  set(IOA_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/ioasync.pc.stage\" \"${PROJECT_BINARY_DIR}/ioasync.pc\" @ONLY)")
install(FILES ${PROJECT_BINARY_DIR}/ioasync.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Man pages, from the build tree (version footer, link pages): section 3 and
# the ioasync(7) overview with the library, ioa-connect(1) with the tool.
set(_ioa_man_exclude PATTERN names.txt EXCLUDE)
if(NOT IOA_BUILD_TOOLS)
  list(APPEND _ioa_man_exclude PATTERN man1 EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_BINARY_DIR}/man/ DESTINATION ${CMAKE_INSTALL_MANDIR}
  ${_ioa_man_exclude})
