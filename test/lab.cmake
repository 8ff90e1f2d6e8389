# SPDX-License-Identifier: MIT
# Hostile-network lab (test/test_lab.c + test/lab/netns-run): the connector
# against refused ports, ICMP errors, unreachable/prohibit/blackhole routes,
# SYN black holes, Happy Eyeballs and a misbehaving DNS server, all inside a
# private network namespace; plus EMFILE in a child with a tiny fd limit.
# Scenarios needing root/unshare/nft exit 77 (skipped) when unavailable.
file(READ ${PROJECT_SOURCE_DIR}/src/connect.c IOA_LAB_CONNECT_SRC)
string(FIND "${IOA_LAB_CONNECT_SRC}" "placeholder until the module lands" IOA_LAB_PH)
if(IOA_LAB_PH EQUAL -1 AND NOT IOA_FAULT_INJECTION)
  add_executable(test_lab test_lab.c)
  target_link_libraries(test_lab PRIVATE ioa_testutil)
  target_compile_options(test_lab PRIVATE ${IOA_WARNINGS})
  foreach(sc errors blackhole he_gai he_cares he_partial dns dns_abandon)
    add_test(NAME lab_${sc}
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/lab/netns-run $<TARGET_FILE:test_lab> ${sc})
    set_tests_properties(lab_${sc} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "lab")
  endforeach()
  # Added latency: an NFQUEUE rule plus a small userspace delayer (no netem
  # here).  Without libnetfilter-queue the latency scenario skips.
  pkg_check_modules(NFQ IMPORTED_TARGET libnetfilter_queue)
  set(IOA_LAB_NFQ_ENV "")
  if(NFQ_FOUND)
    add_executable(nfq_delay lab/nfq_delay.c)
    target_link_libraries(nfq_delay PRIVATE PkgConfig::NFQ)
    target_compile_options(nfq_delay PRIVATE ${IOA_WARNINGS})
    target_compile_definitions(nfq_delay PRIVATE _GNU_SOURCE)
    set(IOA_LAB_NFQ_ENV "IOA_LAB_NFQ_DELAY=$<TARGET_FILE:nfq_delay>")
  endif()
  add_test(NAME lab_latency
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/lab/netns-run $<TARGET_FILE:test_lab> latency)
  set_tests_properties(lab_latency PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "lab"
                       ENVIRONMENT "${IOA_LAB_NFQ_ENV}")
  add_test(NAME lab_emfile COMMAND test_lab emfile)
  set_tests_properties(lab_emfile PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS "lab")
endif()
