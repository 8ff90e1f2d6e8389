/* SPDX-License-Identifier: MIT */
/* Shared by the header-only adapters (libuv.h, libev.h, libevent.h, glib.h);
 * private to them, not an API.
 *
 * Per-fd records: records of one fixed size, found by fd number, kept in chunks of 64 that
 * never move once allocated: host loops hold pointers to a started ev_io or
 * an added struct event, so a table that realloc'ed its records would pull
 * them from under the host.  One allocation per 64 fd numbers (not one per
 * watcher), zero-filled, freed together with the table.
 *
 * The host timer: ioasync asks for its next deadline after every callback,
 * as a relative timeout; re-arming a host timer each time is a heap update
 * per event (GLib: a mutex, and a wakeup write outside dispatch).
 * ioa_host_timer_ keeps an armed host timer when the new deadline is the
 * same one seen from a later moment.
 *
 * ioa_adapter_loop_new_() is every adapter's last step of attaching.
 */
#ifndef IOASYNC_ADAPTERS_SHARED_H
#define IOASYNC_ADAPTERS_SHARED_H

#include <stdint.h>
#include <stdlib.h>

#include "../loop.h"

#define IOA_SLOTS_CHUNK_ 64u

typedef struct ioa_slots_ {
  unsigned char **chunks; /* chunks[fd / 64], each 64 records or NULL */
  size_t nchunks;
  size_t size; /* bytes per record */
} ioa_slots_;

static inline void ioa_slots_init_(ioa_slots_ *t, size_t record_size) {
  t->chunks = NULL;
  t->nchunks = 0;
  t->size = record_size;
}

/* fd's record, or NULL if none was ever made for it (fd >= 0). */
static inline void *ioa_slots_get_(const ioa_slots_ *t, int fd) {
  size_t c = (size_t)fd / IOA_SLOTS_CHUNK_;
  if (c >= t->nchunks || !t->chunks[c])
    return NULL;
  return t->chunks[c] + ((size_t)fd % IOA_SLOTS_CHUNK_) * t->size;
}

/* fd's record, made (zero-filled) if needed; NULL only when out of memory. */
static inline void *ioa_slots_make_(ioa_slots_ *t, int fd) {
  size_t c = (size_t)fd / IOA_SLOTS_CHUNK_;
  if (c >= t->nchunks) {
    size_t n = t->nchunks ? t->nchunks : 16;
    while (n <= c)
      n *= 2;
    unsigned char **nc = (unsigned char **)realloc(t->chunks, n * sizeof *nc);
    if (!nc)
      return NULL;
    for (size_t i = t->nchunks; i < n; i++)
      nc[i] = NULL;
    t->chunks = nc;
    t->nchunks = n;
  }
  if (!t->chunks[c]) {
    t->chunks[c] = (unsigned char *)calloc(IOA_SLOTS_CHUNK_, t->size);
    if (!t->chunks[c])
      return NULL;
  }
  return t->chunks[c] + ((size_t)fd % IOA_SLOTS_CHUNK_) * t->size;
}

/* Call fn(record, arg) for each record of every chunk made so far (records
 * never used are zero-filled: fn tells them apart). */
static inline void ioa_slots_each_(ioa_slots_ *t, void (*fn)(void *record, void *arg),
                                   void *arg) {
  for (size_t c = 0; c < t->nchunks; c++)
    if (t->chunks[c])
      for (size_t i = 0; i < IOA_SLOTS_CHUNK_; i++)
        fn(t->chunks[c] + i * t->size, arg);
}

static inline void ioa_slots_free_(ioa_slots_ *t) {
  for (size_t c = 0; c < t->nchunks; c++)
    free(t->chunks[c]);
  free(t->chunks);
  t->chunks = NULL;
  t->nchunks = 0;
}

/* ---- the host timer ---- */

typedef struct ioa_host_timer_ {
  uint64_t at_ns; /* deadline the host timer is armed for, on ioa_loop_now()'s clock */
  int armed;
} ioa_host_timer_;

/* For timer_update(timeout_ms): 1 if the host timer must be (re)armed for
 * timeout_ms, 0 if it may stay as it is (or stay stopped).  ioasync gives
 * whole milliseconds rounded up from ioa_loop_now(), so one deadline seen
 * from successive moments lands anywhere in [deadline, deadline + 1 ms):
 * an armed timer at most 1 ms earlier than asked stays (the early call runs
 * nothing and ioasync asks again); a later one is re-armed.  timeout_ms -1
 * returns 1 if the host timer is armed and must be stopped. */
static inline int ioa_host_timer_update_(ioa_host_timer_ *t, ioa_loop *loop,
                                         int64_t timeout_ms) {
  if (timeout_ms < 0) {
    int was = t->armed;
    t->armed = 0;
    return was;
  }
  uint64_t at = ioa_loop_now(loop) + (uint64_t)timeout_ms * 1000000u;
  if (t->armed && t->at_ns <= at && at - t->at_ns < 1000000u)
    return 0;
  t->at_ns = at;
  t->armed = 1;
  return 1;
}

/* The host timer fired. */

static inline void ioa_host_timer_fired_(ioa_host_timer_ *t) { t->armed = 0; }

/* ---- attaching ---- */

/* ioa_loop_new_with_backend() with these hooks on ctx.  On failure the
 * cleanup hook is called (it must release ctx and what the adapter made so
 * far) and the error returned; on success *out is the new loop. */
static inline int ioa_adapter_loop_new_(const ioa_loop_options *opts, void *ctx,
                                        int (*io_update)(void *, int, unsigned, unsigned),
                                        void (*timer_update)(void *, int64_t),
                                        void (*wakeup)(void *), void (*cleanup)(void *),
                                        void (*keepalive)(void *, int), ioa_loop **out) {
  ioa_loop_backend be;
  ioa_loop_backend_init(&be);
  be.ctx = ctx;
  be.io_update = io_update;
  be.timer_update = timer_update;
  be.wakeup = wakeup;
  be.cleanup = cleanup;
  be.keepalive = keepalive;
  int r = ioa_loop_new_with_backend(opts, &be, out);
  if (r < 0)
    cleanup(ctx);
  return r;
}

#endif
