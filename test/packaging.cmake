# SPDX-License-Identifier: MIT
# Versioning and man pages (the parts of the library that ship around the code).

# ioa_version() agrees with the headers and with CMake's project(VERSION).
ioa_test(test_version)
if(TARGET test_version)
  target_compile_definitions(test_version PRIVATE
    IOA_TEST_PROJECT_VERSION="${PROJECT_VERSION}"
    IOA_TEST_PROJECT_VERSION_MAJOR=${PROJECT_VERSION_MAJOR})
endif()

# Every IOA_EXPORT function has a man page: its own, or a link page made from
# the NAME section of the page that documents it (cmake/ioasync_manpages.cmake).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET ioasync_man)
  add_test(NAME test_man_pages
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_man_pages.py
                   ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/man)
endif()
