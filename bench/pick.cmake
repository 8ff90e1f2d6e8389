# SPDX-License-Identifier: MIT
# bench_pick: time per connection attempt as the candidate list grows (the
# decision core alone, and ioa_connect over refusing loopback addresses); see
# the comment at the top of bench_pick.c.  Included by bench/CMakeLists.txt.
add_executable(bench_pick ${CMAKE_CURRENT_LIST_DIR}/bench_pick.c)
target_compile_options(bench_pick PRIVATE ${IOA_WARNINGS})
target_compile_definitions(bench_pick PRIVATE _GNU_SOURCE)
target_include_directories(bench_pick PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(bench_pick PRIVATE ioasync_static)
