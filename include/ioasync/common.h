/* SPDX-License-Identifier: MIT */
/* ioasync — common definitions shared by every public header.
 *
 * API rules (doc/design.md has them in full):
 *  - Public names start with ioa_ / IOA_; ioa__ marks the library's internals.
 *  - Functions return 0 (or a count) on success and a negative code on
 *    failure: a negated errno value or an IOA_* code (error.h).  A bad
 *    parameter is IOA_EBADPARAM in every module.
 *  - The object acted on comes first; a constructor's result is written
 *    through an output pointer that is its last parameter (followed only by
 *    an optional ioa_errinfo *).
 *  - Every callback takes a void *data user pointer, always last.
 *  - A string passed with a length takes IOA_NUL_TERMINATED to mean "up to
 *    its NUL byte"; any other length is exact (embedded NUL bytes are errors).
 *  - Every options, params and callbacks struct starts with struct_size and
 *    has an _init() function that must fill it first: fields can then be
 *    added at the end without breaking programs built against this header.
 */
#ifndef IOASYNC_COMMON_H
#define IOASYNC_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The library is built with -fvisibility=hidden; only IOA_EXPORT symbols are
 * part of the ABI. */
#if defined(__GNUC__) || defined(__clang__)
#define IOA_EXPORT __attribute__((visibility("default")))
#define IOA_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define IOA_EXPORT
#define IOA_PRINTF(fmt, args)
#endif

#ifdef __cplusplus
#define IOA_BEGIN_DECLS extern "C" {
#define IOA_END_DECLS }
#else
#define IOA_BEGIN_DECLS
#define IOA_END_DECLS
#endif

/* The version of these headers.  CMake's project(VERSION) must agree: configuring
 * stops if it does not (cmake/ioasync_version.cmake).  The library's own version,
 * which may be newer than the headers a program was built with, is
 * ioa_version() / ioa_version_number().  Minor and patch stay below 256. */
#define IOA_VERSION_MAJOR 1
#define IOA_VERSION_MINOR 0
#define IOA_VERSION_PATCH 0
#define IOA_VERSION_STRING "1.0.0"
/* 0xMMmmpp, for comparisons in #if: IOA_VERSION_HEX >= 0x010200 means 1.2.0 or later. */
#define IOA_VERSION_HEX ((IOA_VERSION_MAJOR << 16) | (IOA_VERSION_MINOR << 8) | IOA_VERSION_PATCH)

/* Length argument meaning "the string ends at its NUL byte". */
#define IOA_NUL_TERMINATED ((size_t)-1)

/* Private: the library's intrusive list node (src/list.h), declared here
 * because handle structs embed it (as libuv's public header declares its
 * uv__queue).  Never touch its fields. */
struct ioa__list {
  struct ioa__list *prev, *next;
};

IOA_BEGIN_DECLS

/* The version of the library the program is running with, as "MAJOR.MINOR.PATCH"
 * (a static string) and as 0xMMmmpp.  Any thread may call them.  A program built
 * against 1.x runs with any later 1.y (the SONAME changes only when the ABI
 * does); comparing ioa_version_number() with IOA_VERSION_HEX tells a newer
 * library from the headers it was built with. */
IOA_EXPORT const char *ioa_version(void);
IOA_EXPORT unsigned ioa_version_number(void);

IOA_END_DECLS

#endif
