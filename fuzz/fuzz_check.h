/* SPDX-License-Identifier: MIT */
/* What every fuzz target uses to report a broken invariant: abort, so
 * libFuzzer keeps the input as a crash. */
#ifndef IOA_FUZZ_CHECK_H
#define IOA_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);              \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#endif
