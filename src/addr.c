/* addr: placeholder until the module lands. */
typedef int ioa_placeholder_addr_;
