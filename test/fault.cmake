# SPDX-License-Identifier: MIT
# Fault-injection sweep (test/test_fault.c): meaningful only in a build whose
# library routes syscalls and allocations through the injector (the `fault`
# preset).  Elsewhere the binary exits 77 and CTest reports it as skipped.
if(TARGET test_fault)
  set_tests_properties(test_fault PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900
                       LABELS "fault"
                       ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=STDOUT;ASAN_OPTIONS=fast_unwind_on_malloc=0;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lab/lsan.supp:print_suppressions=0")
  # Full malloc stacks (fast_unwind_on_malloc=0) so the one c-ares leak in
  # lab/lsan.supp can be matched by function name: libcares has no frame
  # pointers, and a truncated stack would match nothing.
  if(IOA_FAULT_INJECTION)
    target_compile_definitions(test_fault PRIVATE IOA_FAULT_INJECTION)
    target_sources(test_fault PRIVATE dns_fixture.c)
    # Scenarios for modules that have landed (their sources are no longer
    # one-line placeholders).
    foreach(mod connect stream)
      file(READ ${PROJECT_SOURCE_DIR}/src/${mod}.c IOA_LAB_SRC)
      string(FIND "${IOA_LAB_SRC}" "placeholder until the module lands" IOA_LAB_PH)
      if(IOA_LAB_PH EQUAL -1)
        string(TOUPPER ${mod} IOA_LAB_MOD)
        target_compile_definitions(test_fault PRIVATE IOA_LAB_HAVE_${IOA_LAB_MOD})
      endif()
    endforeach()
  endif()
endif()
# In a fault build the stress test gains chaos variants (random failures).
if(TARGET test_stress AND IOA_FAULT_INJECTION)
  target_compile_definitions(test_stress PRIVATE IOA_FAULT_INJECTION)
endif()
