# SPDX-License-Identifier: MIT
# bench_connect: ioasync numeric connects vs a hand-written epoll client and
# libuv (see the comment at the top of bench_connect.c).  Included by
# bench/CMakeLists.txt; self-contained so it also works on its own.
if(NOT PkgConfig_FOUND)
  find_package(PkgConfig REQUIRED)
endif()
if(NOT TARGET PkgConfig::LIBUV)
  pkg_check_modules(LIBUV IMPORTED_TARGET libuv)
endif()
add_executable(bench_connect ${CMAKE_CURRENT_LIST_DIR}/bench_connect.c)
target_compile_options(bench_connect PRIVATE ${IOA_WARNINGS})
target_compile_definitions(bench_connect PRIVATE _GNU_SOURCE)
target_link_libraries(bench_connect PRIVATE ioasync_static)
if(TARGET PkgConfig::LIBUV)
  target_compile_definitions(bench_connect PRIVATE IOA_BENCH_HAVE_LIBUV=1)
  target_link_libraries(bench_connect PRIVATE PkgConfig::LIBUV)
endif()
