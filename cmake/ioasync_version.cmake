# SPDX-License-Identifier: MIT
# The version is written twice: project(VERSION) in CMakeLists.txt (SONAME, the
# pkg-config and CMake package versions) and the IOA_VERSION_* macros in
# include/ioasync/common.h (the preprocessor, ioa_version()).  Stop configuring
# when they disagree, before a library can be built that reports one version and
# is installed as another.
file(STRINGS "${PROJECT_SOURCE_DIR}/include/ioasync/common.h" _ioa_version_lines
     REGEX "^#define IOA_VERSION_(MAJOR|MINOR|PATCH|STRING) ")
set(_ioa_header_version "")
foreach(_part MAJOR MINOR PATCH STRING)
  set(_ioa_${_part} "")
  foreach(_line IN LISTS _ioa_version_lines)
    if(_line MATCHES "^#define IOA_VERSION_${_part} +\"?([0-9.]+)\"?$")
      set(_ioa_${_part} "${CMAKE_MATCH_1}")
    endif()
  endforeach()
endforeach()
set(_ioa_header_version "${_ioa_MAJOR}.${_ioa_MINOR}.${_ioa_PATCH}")
if(NOT _ioa_header_version STREQUAL PROJECT_VERSION OR NOT _ioa_STRING STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "Version mismatch: CMakeLists.txt says ${PROJECT_VERSION}, "
    "include/ioasync/common.h says IOA_VERSION_MAJOR/MINOR/PATCH ${_ioa_header_version} and "
    "IOA_VERSION_STRING \"${_ioa_STRING}\".  Change both together.")
endif()
if(PROJECT_VERSION_MINOR GREATER 255 OR PROJECT_VERSION_PATCH GREATER 255)
  message(FATAL_ERROR "IOA_VERSION_HEX holds minor and patch numbers up to 255 only")
endif()
unset(_ioa_version_lines)
unset(_ioa_header_version)
