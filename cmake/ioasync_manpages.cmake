# SPDX-License-Identifier: MIT
# Build step for the man pages (cmake -P, run by the ioasync_man target):
#   cmake -DMAN_SRC=doc/man -DMAN_OUT=build/man -DVERSION=1.0.0 -P ioasync_manpages.cmake
#
# Writes MAN_OUT/manN/ ready to install:
#  - every doc/man/*.N page, its .TH footer naming this version (the sources
#    are not edited for each release);
#  - for every name in a section-3 page's NAME section that has no page of its
#    own, a link page "NAME.3" holding ".so man3/PAGE.3", as c-ares ships, so
#    `man ioa_connect_cancel` finds ioa_connect(3);
#  - MAN_OUT/names.txt: "name page" per line, what test/test_man_pages.py
#    checks against the IOA_EXPORT functions (and names listed twice).
cmake_minimum_required(VERSION 3.14...3.25)  # IN_LIST, continue()
foreach(_v MAN_SRC MAN_OUT VERSION)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "ioasync_manpages.cmake: -D${_v}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${MAN_OUT}")
file(GLOB _pages "${MAN_SRC}/*.[1-8]")
list(SORT _pages)

set(_own_pages "")   # every page's own name, e.g. ioa_connect
foreach(_page IN LISTS _pages)
  get_filename_component(_name "${_page}" NAME_WE)
  list(APPEND _own_pages "${_name}")
endforeach()

set(_index "")
set(_linked "")
foreach(_page IN LISTS _pages)
  get_filename_component(_file "${_page}" NAME)
  get_filename_component(_name "${_page}" NAME_WE)
  string(REGEX REPLACE "^.*\\.([1-8])$" "\\1" _section "${_file}")
  file(READ "${_page}" _text)

  # The footer: .TH TITLE SECTION DATE "ioasync X.Y" "manual"
  string(REGEX REPLACE "(\n\\.TH [^\n]*)\"ioasync [0-9.]*\"" "\\1\"ioasync ${VERSION}\"" _text "${_text}")
  file(WRITE "${MAN_OUT}/man${_section}/${_file}" "${_text}")

  # NAME section: from ".SH NAME" to the next ".SH", names before "\-".
  string(FIND "${_text}" "\n.SH NAME\n" _start)
  if(_start EQUAL -1)
    message(FATAL_ERROR "${_page}: no .SH NAME section")
  endif()
  math(EXPR _start "${_start} + 10")
  string(SUBSTRING "${_text}" ${_start} -1 _rest)
  string(FIND "${_rest}" "\n.SH " _end)
  string(SUBSTRING "${_rest}" 0 ${_end} _namesec)
  string(FIND "${_namesec}" "\\-" _dash)
  if(_dash EQUAL -1)
    message(FATAL_ERROR "${_page}: NAME section has no '\\-' before its description")
  endif()
  string(SUBSTRING "${_namesec}" 0 ${_dash} _names)
  string(REGEX REPLACE "[ \t\n]*,[ \t\n]*" ";" _names "${_names}")
  foreach(_fn IN LISTS _names)
    string(STRIP "${_fn}" _fn)
    if(_fn STREQUAL "")
      continue()
    endif()
    if(NOT _fn MATCHES "^[A-Za-z_][A-Za-z0-9_.-]*$")
      message(FATAL_ERROR "${_page}: cannot read NAME entry '${_fn}'")
    endif()
    string(APPEND _index "${_fn} ${_file}\n")
    if(NOT _section STREQUAL "3" OR _fn IN_LIST _own_pages OR _fn IN_LIST _linked)
      continue()  # a page of its own wins; a name listed twice keeps its first page
    endif()
    list(APPEND _linked "${_fn}")
    file(WRITE "${MAN_OUT}/man3/${_fn}.3" ".so man3/${_file}\n")
  endforeach()
endforeach()
file(WRITE "${MAN_OUT}/names.txt" "${_index}")
