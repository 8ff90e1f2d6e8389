# Sets IOA_CLI_LINKABLE: ON once every library module ioa-connect uses has
# replaced its placeholder (until then the tool is compiled, not linked).
set(IOA_CLI_LINKABLE ON)
foreach(_m addr resolve connect_core connect stream socket)
  # Re-run the check when a module lands (a merge replaces the file).
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${_m}.c)
  file(READ ${PROJECT_SOURCE_DIR}/src/${_m}.c _ioa_src LIMIT 200)
  if(_ioa_src MATCHES "placeholder until the module lands")
    set(IOA_CLI_LINKABLE OFF)
    list(APPEND IOA_CLI_MISSING ${_m})
  endif()
endforeach()
