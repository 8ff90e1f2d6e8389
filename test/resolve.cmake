# SPDX-License-Identifier: MIT
# test_resolve: the fault preset's tests need to know the library injects faults.
if(TARGET test_resolve AND IOA_FAULT_INJECTION)
  target_compile_definitions(test_resolve PRIVATE IOA_FAULT_INJECTION)
endif()
