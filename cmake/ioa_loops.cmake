# SPDX-License-Identifier: MIT
# The foreign loops ioasync has header-only adapters for
# (include/ioasync/adapters/): libuv, libev, libevent, GLib.  For each one
# found, IOA_HAVE_<LOOP> is 1 and ioa_loop_<loop> an imported target to link
# (include path and library); otherwise IOA_HAVE_<LOOP> is 0 and whatever
# needs it is skipped.  Included by test/, examples/ and bench/ (imported
# targets are per directory, so once in each).
include_guard(DIRECTORY)
find_package(PkgConfig)

set(IOA_HAVE_LIBUV 0)
set(IOA_HAVE_LIBEV 0)
set(IOA_HAVE_LIBEVENT 0)
set(IOA_HAVE_GLIB 0)

function(ioa__loop_alias loop from)
  add_library(ioa_loop_${loop} INTERFACE IMPORTED)
  target_link_libraries(ioa_loop_${loop} INTERFACE ${from})
endfunction()

if(PkgConfig_FOUND)
  pkg_check_modules(IOA_LOOP_LIBUV QUIET IMPORTED_TARGET libuv)
  if(IOA_LOOP_LIBUV_FOUND)
    ioa__loop_alias(libuv PkgConfig::IOA_LOOP_LIBUV)
    set(IOA_HAVE_LIBUV 1)
  endif()
  # event_base and events live in libevent_core (no HTTP/DNS extras needed).
  pkg_check_modules(IOA_LOOP_LIBEVENT QUIET IMPORTED_TARGET libevent_core)
  if(IOA_LOOP_LIBEVENT_FOUND)
    ioa__loop_alias(libevent PkgConfig::IOA_LOOP_LIBEVENT)
    set(IOA_HAVE_LIBEVENT 1)
  endif()
  pkg_check_modules(IOA_LOOP_GLIB QUIET IMPORTED_TARGET glib-2.0)
  if(IOA_LOOP_GLIB_FOUND)
    ioa__loop_alias(glib PkgConfig::IOA_LOOP_GLIB)
    set(IOA_HAVE_GLIB 1)
  endif()
endif()

# libev ships no pkg-config file (Debian's libev-dev: ev.h and libev.so).
find_path(IOA_LIBEV_INCLUDE_DIR ev.h)
find_library(IOA_LIBEV_LIBRARY ev)
if(IOA_LIBEV_INCLUDE_DIR AND IOA_LIBEV_LIBRARY)
  add_library(ioa_loop_libev INTERFACE IMPORTED)
  target_include_directories(ioa_loop_libev INTERFACE ${IOA_LIBEV_INCLUDE_DIR})
  target_link_libraries(ioa_loop_libev INTERFACE ${IOA_LIBEV_LIBRARY})
  set(IOA_HAVE_LIBEV 1)
endif()
