/* SPDX-License-Identifier: MIT */
/* Internal loop hooks for other modules. */
#ifndef IOA_LOOP_INTERNAL_H
#define IOA_LOOP_INTERNAL_H

#include "ioasync/loop.h"

/* Per-loop defaults that other modules create on first use and the loop
 * owns: its default resolver (resolve.c) and its RTT cache (rtt.c).  They
 * live in the loop rather than in globals, so two loops never share state
 * by accident.  ioa_loop_free() calls each free_fn(obj), in this order,
 * before it tears anything down. */
typedef enum ioa__loop_slot {
  IOA__LOOP_SLOT_RESOLVER,
  IOA__LOOP_SLOT_RTT_CACHE,
  IOA__LOOP_NSLOTS
} ioa__loop_slot;
void *ioa__loop_slot_get(const ioa_loop *loop, ioa__loop_slot which);
void ioa__loop_slot_set(ioa_loop *loop, ioa__loop_slot which, void *obj,
                        void (*free_fn)(void *));

/* Like ioa_io_start(), for a watcher that waits for one event (a connect's
 * completion): on the epoll loop the registration is EPOLLONESHOT, so once
 * that event was dispatched, ioa_io_stop() needs no syscall (the disarmed
 * registration leaves with the fd's close, and a later start on the still
 * open fd takes it over).  Starting it again re-arms it.  Foreign backends
 * get a plain start. */
int ioa__io_start_oneshot(ioa_io *io, unsigned events);

/* One spare block per loop, for objects made and freed at a high rate on
 * it (the connector's fast-path requests): give a block (from ioa__malloc)
 * back instead of freeing it, take it instead of allocating one of exactly
 * that size.  Take returns NULL if there is none of that size; give frees
 * the block if the loop already keeps one.  ioa_loop_free() frees it. */
void *ioa__loop_spare_take(ioa_loop *loop, size_t size);
void ioa__loop_spare_give(ioa_loop *loop, void *p, size_t size);

#endif
