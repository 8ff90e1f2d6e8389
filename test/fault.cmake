# Fault-injection sweep (test/test_fault.c): meaningful only in a build whose
# library routes syscalls and allocations through the injector (the `fault`
# preset).  Elsewhere the binary exits 77 and CTest reports it as skipped.
if(TARGET test_fault)
  set_tests_properties(test_fault PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900
                       LABELS "fault")
  if(IOA_FAULT_INJECTION)
    target_compile_definitions(test_fault PRIVATE IOA_FAULT_INJECTION)
    # Scenarios for modules that have landed (their sources are no longer
    # one-line placeholders).
    file(READ ${PROJECT_SOURCE_DIR}/src/connect.c IOA_LAB_CONNECT_SRC)
    string(FIND "${IOA_LAB_CONNECT_SRC}" "placeholder until the module lands" IOA_LAB_PH)
    if(IOA_LAB_PH EQUAL -1)
      target_compile_definitions(test_fault PRIVATE IOA_LAB_HAVE_CONNECT)
    endif()
  endif()
endif()
