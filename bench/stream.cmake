# SPDX-License-Identifier: MIT
# bench_stream: ioa_stream throughput vs a plain blocking loop (loopback TCP)
# and the 64-byte message rate.  Included by bench/CMakeLists.txt.
if(COMMAND ioa_bench_add)
  ioa_bench_add(bench_stream ${CMAKE_CURRENT_LIST_DIR}/bench_stream.c)
else()
  add_executable(bench_stream ${CMAKE_CURRENT_LIST_DIR}/bench_stream.c)
  target_compile_options(bench_stream PRIVATE ${IOA_WARNINGS})
  target_compile_definitions(bench_stream PRIVATE _GNU_SOURCE)
endif()
target_link_libraries(bench_stream PRIVATE ioasync_static Threads::Threads)
