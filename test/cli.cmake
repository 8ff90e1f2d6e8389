# SPDX-License-Identifier: MIT
# ioa-connect (issue 8): the JSON escaper unit test and the tests that run
# the built binary.  Included from test/CMakeLists.txt.

find_package(PkgConfig REQUIRED)
pkg_check_modules(JANSSON IMPORTED_TARGET jansson)

if(JANSSON_FOUND)
  add_executable(test_cli_json ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_json.c
                               ${PROJECT_SOURCE_DIR}/tools/json.c)
  target_include_directories(test_cli_json PRIVATE ${PROJECT_SOURCE_DIR}/tools)
  target_link_libraries(test_cli_json PRIVATE ioa_testutil PkgConfig::JANSSON)
  target_compile_options(test_cli_json PRIVATE ${IOA_WARNINGS})
  add_test(NAME test_cli_json COMMAND test_cli_json)
  set_tests_properties(test_cli_json PROPERTIES ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=STDOUT")
endif()

# One CTest test per `def test_<name>` in cli_test.py, each running the
# binary through python3 (standard library only).
find_package(Python3 COMPONENTS Interpreter)
if(IOA_BUILD_TOOLS AND Python3_Interpreter_FOUND)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
               ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.py)
  file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.py _cli_defs REGEX "^def test_[a-z0-9_]+\\(")
  foreach(_def ${_cli_defs})
    string(REGEX REPLACE "^def test_([a-z0-9_]+)\\(.*" "\\1" _name "${_def}")
    add_test(NAME cli_${_name}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.py
                     --bin $<TARGET_FILE:ioa-connect> ${_name})
    # 77: the test skipped itself (e.g. no IPv6, no unshare).
    set_tests_properties(cli_${_name} PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77)
  endforeach()
endif()
