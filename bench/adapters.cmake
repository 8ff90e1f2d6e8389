# SPDX-License-Identifier: MIT
# ioasync on other loops: peer_ioa.c built once per foreign loop whose
# library is present (peer_ioa_libuv, _libev, _libevent, _glib; see
# peer_loop.h), and libevent's own connect (peer_libevent), for
# scripts/bench's adapter table.  Included by bench/CMakeLists.txt.
include(${PROJECT_SOURCE_DIR}/cmake/ioa_loops.cmake)
foreach(loop libuv libev libevent glib)
  string(TOUPPER ${loop} LOOP)
  if(IOA_HAVE_${LOOP})
    ioa_bench_add(peer_ioa_${loop} ${CMAKE_CURRENT_LIST_DIR}/peer_ioa.c)
    target_compile_definitions(peer_ioa_${loop} PRIVATE IOA_BENCH_LOOP_${LOOP}=1)
    target_link_libraries(peer_ioa_${loop} PRIVATE ioasync_static ioa_loop_${loop})
  else()
    message(STATUS "bench: ${loop} not found: ioasync-${loop} skipped")
  endif()
endforeach()
if(IOA_HAVE_LIBEVENT)
  ioa_bench_add(peer_libevent ${CMAKE_CURRENT_LIST_DIR}/peer_libevent.c)
  target_link_libraries(peer_libevent PRIVATE ioa_loop_libevent)
endif()
