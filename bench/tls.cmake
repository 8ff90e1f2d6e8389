# SPDX-License-Identifier: MIT
# bench_tls: TLS 1.3 handshakes/s and bulk throughput against one OpenSSL
# server (tls_server), for ioasync, the hand-written OpenSSL client (the
# limit), GLib's GTlsConnection, Go's crypto/tls and Python asyncio's ssl.
# Included by bench/CMakeLists.txt; bench/bench_tls.py is the driver.
if(IOA_HAVE_TLS AND COMMAND ioa_bench_add)
  ioa_bench_add(tls_server ${CMAKE_CURRENT_LIST_DIR}/tls_server.c)
  target_link_libraries(tls_server PRIVATE PkgConfig::OPENSSL)
  ioa_bench_add(tlspeer_raw ${CMAKE_CURRENT_LIST_DIR}/tlspeer_raw.c)
  target_link_libraries(tlspeer_raw PRIVATE PkgConfig::OPENSSL)
  ioa_bench_add(tlspeer_ioa ${CMAKE_CURRENT_LIST_DIR}/tlspeer_ioa.c)
  target_link_libraries(tlspeer_ioa PRIVATE ioasync_static)
  if(IOA_BENCH_GIO)
    ioa_bench_add(tlspeer_glib ${CMAKE_CURRENT_LIST_DIR}/tlspeer_glib.c)
    target_link_libraries(tlspeer_glib PRIVATE PkgConfig::GIO)
  endif()
  # The driver, as an executable bench_* that scripts/bench runs.
  configure_file(${CMAKE_CURRENT_LIST_DIR}/bench_tls.py ${CMAKE_CURRENT_BINARY_DIR}/bench_tls
                 COPYONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                 GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endif()
