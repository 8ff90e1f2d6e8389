/* SPDX-License-Identifier: MIT */
/* Caller structs that can grow without breaking the ABI (see common.h).
 *
 * Every options, params and callbacks struct starts with size_t struct_size:
 * the size the caller's header gave it, recorded by its _init function (an
 * inline wrapper passing sizeof, so the size is the caller's, not ours).  A
 * struct from an older header is shorter: the fields it lacks keep their
 * defaults.  One from a newer header is longer: accepted only if every byte
 * this library does not know is zero, so nothing the caller asked for is
 * silently dropped (the rule Linux's openat2 and clone3 use).
 */
#ifndef IOA_ABI_H
#define IOA_ABI_H

#include <string.h>

#include "ioasync/error.h"

/* Read the caller's struct src into dst (lib_size bytes, already holding the
 * defaults).  min_size is the struct's size in ioasync 1.0, the oldest layout
 * a caller can have: when a field is added, callers pass the offset of the
 * first new field instead of sizeof.  Returns 0 or IOA_EBADPARAM (struct_size
 * never set, or unknown non-zero fields). */
static inline int ioa__struct_import(void *dst, size_t lib_size, size_t min_size,
                                     const void *src) {
  size_t size;
  memcpy(&size, src, sizeof size);
  if (size < min_size)
    return IOA_EBADPARAM;
  if (size > lib_size) {
    const unsigned char *tail = (const unsigned char *)src + lib_size;
    for (size_t i = 0; i < size - lib_size; i++)
      if (tail[i])
        return IOA_EBADPARAM;
    size = lib_size;
  }
  memcpy(dst, src, size);
  memcpy(dst, &lib_size, sizeof lib_size);
  return 0;
}

/* The usual call: min_size is today's size (every struct is at its 1.0
 * layout). */
#define IOA__IMPORT(dst, src) ioa__struct_import((dst), sizeof *(dst), sizeof *(dst), (src))

/* For the _init_size functions: fill the caller's struct (size bytes) from
 * a complete struct of defaults (lib_size bytes): what both layouts have
 * is copied, anything newer than this library is zeroed, and struct_size
 * records the caller's size. */
static inline void ioa__struct_init(void *dst, size_t size, const void *defaults,
                                    size_t lib_size) {
  if (size < sizeof size)
    return; /* not a struct of ours: there is not even room for the size */
  memset(dst, 0, size);
  memcpy(dst, defaults, size < lib_size ? size : lib_size);
  memcpy(dst, &size, sizeof size);
}
#define IOA__INIT(dst, size, defaults)                                                            \
  ioa__struct_init((dst), (size), (defaults), sizeof *(defaults))

#endif
