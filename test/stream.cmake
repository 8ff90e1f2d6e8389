# SPDX-License-Identifier: MIT
# test_stream / test_socket: in the fault preset, compile their fault sweeps.
if(IOA_FAULT_INJECTION)
  foreach(t test_stream test_socket)
    if(TARGET ${t})
      target_compile_definitions(${t} PRIVATE IOA_FAULT_INJECTION)
    endif()
  endforeach()
endif()
