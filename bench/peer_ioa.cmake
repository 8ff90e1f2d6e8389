# SPDX-License-Identifier: MIT
# peer_ioa: the ioasync contender with the common peer command line
# (bench_common.h), run by scripts/bench in every connect workload as
# "ioasync", and with -b cares / -s as "ioasync-cares" / "ioasync-seq".
# Included by bench/CMakeLists.txt (ioa_bench_add comes from there).
ioa_bench_add(peer_ioa ${CMAKE_CURRENT_LIST_DIR}/peer_ioa.c)
target_link_libraries(peer_ioa PRIVATE ioasync_static)
