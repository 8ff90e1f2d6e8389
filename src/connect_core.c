/* connect_core: placeholder until the module lands. */
typedef int ioa_placeholder_connect_core_;
