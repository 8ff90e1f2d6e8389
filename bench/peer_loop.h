/* SPDX-License-Identifier: MIT */
/* The loop a bench peer runs ioasync on (peer_ioa -l KIND):
 *
 *   native   ioa_loop_run() on ioasync's own epoll loop
 *   embed    a poll() loop around ioa_loop_fd() / ioa_loop_timeout() /
 *            ioa_loop_run(IOA_RUN_NOWAIT), as a program with its own loop
 *   libuv, libev, libevent, glib
 *            the host library's loop through include/ioasync/adapters/
 *            (one per program, chosen at build time with
 *            IOA_BENCH_LOOP_<NAME>: libev exports libevent's names too, so
 *            the two cannot share a program)
 *
 * Used by peer_ioa.c only; scripts/bench compares each with native. */
#ifndef IOA_BENCH_PEER_LOOP_H
#define IOA_BENCH_PEER_LOOP_H

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "ioasync.h"

#if IOA_BENCH_LOOP_LIBUV
#include "ioasync/adapters/libuv.h"
#define PEER_LOOP_FOREIGN "libuv"
#elif IOA_BENCH_LOOP_LIBEV
#include "ioasync/adapters/libev.h"
#define PEER_LOOP_FOREIGN "libev"
#elif IOA_BENCH_LOOP_LIBEVENT
#include "ioasync/adapters/libevent.h"
#define PEER_LOOP_FOREIGN "libevent"
#elif IOA_BENCH_LOOP_GLIB
#include "ioasync/adapters/glib.h"
#define PEER_LOOP_FOREIGN "glib"
#else
#define PEER_LOOP_FOREIGN NULL
#endif

typedef struct peer_loop {
  const char *kind;
  ioa_loop *loop;
  int stop;
#if IOA_BENCH_LOOP_LIBUV
  uv_loop_t uv;
#elif IOA_BENCH_LOOP_LIBEV
  struct ev_loop *ev;
#elif IOA_BENCH_LOOP_LIBEVENT
  struct event_base *base;
#elif IOA_BENCH_LOOP_GLIB
  GMainContext *context;
#endif
} peer_loop;

/* The kind this program runs when -l is not given. */
static inline const char *peer_loop_default(void) {
  return PEER_LOOP_FOREIGN ? PEER_LOOP_FOREIGN : "native";
}

/* 0, or a negative code (-ENOTSUP: kind not built into this program). */
static inline int peer_loop_open(peer_loop *l, const char *kind) {
  memset(l, 0, sizeof *l);
  l->kind = kind;
  if (!strcmp(kind, "native") || !strcmp(kind, "embed"))
    return ioa_loop_new(NULL, &l->loop);
#if IOA_BENCH_LOOP_LIBUV || IOA_BENCH_LOOP_LIBEV || IOA_BENCH_LOOP_LIBEVENT || IOA_BENCH_LOOP_GLIB
  if (strcmp(kind, PEER_LOOP_FOREIGN) != 0)
    return -ENOTSUP;
#endif
#if IOA_BENCH_LOOP_LIBUV
  int r = uv_loop_init(&l->uv);
  return r < 0 ? r : ioa_uv_attach(&l->uv, NULL, &l->loop);
#elif IOA_BENCH_LOOP_LIBEV
  l->ev = ev_loop_new(EVFLAG_AUTO);
  return l->ev ? ioa_ev_attach(l->ev, NULL, &l->loop) : -ENOMEM;
#elif IOA_BENCH_LOOP_LIBEVENT
  l->base = event_base_new();
  return l->base ? ioa_event_attach(l->base, NULL, &l->loop) : -ENOMEM;
#elif IOA_BENCH_LOOP_GLIB
  l->context = g_main_context_new();
  return ioa_glib_attach(l->context, NULL, &l->loop);
#else
  return -ENOTSUP;
#endif
}

/* Run until peer_loop_stop(). */
static inline void peer_loop_run(peer_loop *l) {
  if (!strcmp(l->kind, "native")) {
    ioa_loop_run(l->loop, IOA_RUN_DEFAULT);
    return;
  }
  if (!strcmp(l->kind, "embed")) {
    while (!l->stop) {
      struct pollfd p = {.fd = ioa_loop_fd(l->loop), .events = POLLIN};
      if (poll(&p, 1, ioa_loop_timeout(l->loop)) < 0 && errno != EINTR)
        return;
      if (ioa_loop_run(l->loop, IOA_RUN_NOWAIT) <= 0)
        return;
    }
    return;
  }
#if IOA_BENCH_LOOP_LIBUV
  uv_run(&l->uv, UV_RUN_DEFAULT);
#elif IOA_BENCH_LOOP_LIBEV
  ev_run(l->ev, 0);
#elif IOA_BENCH_LOOP_LIBEVENT
  event_base_dispatch(l->base);
#elif IOA_BENCH_LOOP_GLIB
  while (!l->stop)
    g_main_context_iteration(l->context, TRUE);
#endif
}

static inline void peer_loop_stop(peer_loop *l) {
  l->stop = 1;
  if (!strcmp(l->kind, "native")) {
    ioa_loop_stop(l->loop);
    return;
  }
  if (!strcmp(l->kind, "embed"))
    return;
#if IOA_BENCH_LOOP_LIBUV
  uv_stop(&l->uv);
#elif IOA_BENCH_LOOP_LIBEV
  ev_break(l->ev, EVBREAK_ALL);
#elif IOA_BENCH_LOOP_LIBEVENT
  event_base_loopbreak(l->base);
#endif
}

/* ioa_loop_free(), then whatever the host loop needs to finish. */
static inline void peer_loop_close(peer_loop *l) {
  ioa_loop_free(l->loop);
  if (!strcmp(l->kind, "native") || !strcmp(l->kind, "embed"))
    return;
#if IOA_BENCH_LOOP_LIBUV
  uv_run(&l->uv, UV_RUN_DEFAULT);
  uv_loop_close(&l->uv);
#elif IOA_BENCH_LOOP_LIBEV
  ev_loop_destroy(l->ev);
#elif IOA_BENCH_LOOP_LIBEVENT
  event_base_free(l->base);
#elif IOA_BENCH_LOOP_GLIB
  g_main_context_unref(l->context);
#endif
}

#endif
