/* SPDX-License-Identifier: MIT */
/* The library's version at run time, which can be newer than the headers a
 * program was compiled with. */
#include "ioasync/common.h"

const char *ioa_version(void) {
  return IOA_VERSION_STRING;
}

unsigned ioa_version_number(void) {
  return IOA_VERSION_HEX;
}
