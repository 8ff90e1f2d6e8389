/* SPDX-License-Identifier: MIT */
/* ioasync — common definitions shared by every public header. */
#ifndef IOASYNC_COMMON_H
#define IOASYNC_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The library is built with -fvisibility=hidden; only IOA_EXPORT symbols are
 * part of the ABI. */
#if defined(__GNUC__) || defined(__clang__)
#define IOA_EXPORT __attribute__((visibility("default")))
#else
#define IOA_EXPORT
#endif

#ifdef __cplusplus
#define IOA_BEGIN_DECLS extern "C" {
#define IOA_END_DECLS }
#else
#define IOA_BEGIN_DECLS
#define IOA_END_DECLS
#endif

#define IOA_VERSION_MAJOR 0
#define IOA_VERSION_MINOR 1
#define IOA_VERSION_PATCH 0

#endif
