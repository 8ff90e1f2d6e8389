# SPDX-License-Identifier: MIT
# bench_resolve: ioasync resolvers vs libuv's uv_getaddrinfo.
# Included by bench/CMakeLists.txt; expects IOA_WARNINGS, the ioasync_static
# target and PkgConfig::LIBUV (pkg_check_modules(LIBUV IMPORTED_TARGET libuv)).
if(TARGET PkgConfig::LIBUV)
  add_executable(bench_resolve ${CMAKE_CURRENT_LIST_DIR}/bench_resolve.c)
  target_link_libraries(bench_resolve PRIVATE ioasync_static PkgConfig::LIBUV)
  target_compile_options(bench_resolve PRIVATE ${IOA_WARNINGS})
  target_compile_definitions(bench_resolve PRIVATE _GNU_SOURCE)
else()
  message(STATUS "bench_resolve: libuv not found (apt-get install libuv1-dev), skipped")
endif()
