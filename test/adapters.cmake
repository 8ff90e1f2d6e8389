# SPDX-License-Identifier: MIT
# Foreign-loop adapters: built only when the foreign loop's library is present.
pkg_check_modules(LIBUV IMPORTED_TARGET libuv)
if(LIBUV_FOUND)
  ioa_test(test_adapter_libuv)
  if(TARGET test_adapter_libuv)
    target_link_libraries(test_adapter_libuv PRIVATE PkgConfig::LIBUV)
  endif()
endif()
