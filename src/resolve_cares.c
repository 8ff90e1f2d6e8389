/* resolve_cares: placeholder until the module lands. */
typedef int ioa_placeholder_resolve_cares_;
