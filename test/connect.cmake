# test_connect carries weak stand-ins for modules that are still placeholders
# on this branch (addr, resolve, stream, socket); each disappears by itself
# once its module lands.
if(TARGET test_connect)
  foreach(m addr resolve stream socket)
    file(READ ${PROJECT_SOURCE_DIR}/src/${m}.c ioa_src_head LIMIT 200)
    if(ioa_src_head MATCHES "placeholder until the module lands")
      string(TOUPPER ${m} ioa_m)
      target_compile_definitions(test_connect PRIVATE IOA_TEST_SHIM_${ioa_m}=1)
    endif()
  endforeach()
endif()
# Happy Eyeballs end to end needs the DNS responder fixture (c-ares backend).
if(TARGET test_connect AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/dns_fixture.c)
  target_sources(test_connect PRIVATE dns_fixture.c)
  target_compile_definitions(test_connect PRIVATE IOA_TEST_HAVE_DNS_FIXTURE=1)
endif()
# The fault preset's sweep tests need to know the library injects faults.
if(TARGET test_connect AND IOA_FAULT_INJECTION)
  target_compile_definitions(test_connect PRIVATE IOA_FAULT_INJECTION)
endif()
