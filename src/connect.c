/* connect: placeholder until the module lands. */
typedef int ioa_placeholder_connect_;
