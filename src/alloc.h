/* SPDX-License-Identifier: MIT */
/* Internal allocation wrappers: one place for fault injection to hook. */
#ifndef IOA_ALLOC_H
#define IOA_ALLOC_H

#include <stdlib.h>

#include "fault.h"

static inline void *ioa__malloc(size_t n) {
  IOA_FAULT_ALLOC(IOA_FOP_MALLOC);
  return malloc(n);
}
static inline void *ioa__calloc(size_t n, size_t size) {
  IOA_FAULT_ALLOC(IOA_FOP_MALLOC);
  return calloc(n, size);
}
static inline void *ioa__realloc(void *p, size_t n) {
  IOA_FAULT_ALLOC(IOA_FOP_MALLOC);
  return realloc(p, n);
}
static inline void ioa__free(void *p) { free(p); }

#endif
