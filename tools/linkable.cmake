# Sets IOA_CLI_LINKABLE: ON once every library module ioa-connect uses has
# replaced its placeholder (until then the tool is compiled, not linked).
set(IOA_CLI_LINKABLE ON)
foreach(_m addr resolve connect_core connect stream socket)
  file(READ ${PROJECT_SOURCE_DIR}/src/${_m}.c _ioa_src LIMIT 200)
  if(_ioa_src MATCHES "placeholder until the module lands")
    set(IOA_CLI_LINKABLE OFF)
    list(APPEND IOA_CLI_MISSING ${_m})
  endif()
endforeach()
