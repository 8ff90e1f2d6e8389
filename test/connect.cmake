# SPDX-License-Identifier: MIT
# Happy Eyeballs end to end needs the DNS responder fixture (c-ares backend).
if(TARGET test_connect AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/dns_fixture.c)
  target_sources(test_connect PRIVATE dns_fixture.c)
  target_compile_definitions(test_connect PRIVATE IOA_TEST_HAVE_DNS_FIXTURE=1)
endif()
# The fault preset's sweep tests need to know the library injects faults.
if(TARGET test_connect AND IOA_FAULT_INJECTION)
  target_compile_definitions(test_connect PRIVATE IOA_FAULT_INJECTION)
endif()
