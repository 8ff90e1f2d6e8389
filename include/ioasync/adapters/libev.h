/* SPDX-License-Identifier: MIT */
/* ioasync on a libev loop — a header-only adapter.
 *
 *   struct ev_loop *ev = EV_DEFAULT;
 *   ioa_loop *loop;
 *   ioa_ev_attach(ev, NULL, &loop);    // ioasync objects now run on ev
 *   ... ioa_connect(loop, &params, NULL); ev_run(ev, 0); ...
 *   ioa_loop_free(loop);               // stops the adapter's watchers
 *   ev_loop_destroy(ev);               // (or keep running it)
 *
 * Every ioasync fd watcher becomes an ev_io (kept in per-fd records that are
 * allocated 64 at a time, never one per watcher), ioasync's next deadline
 * one ev_timer, and posts from other threads an ev_async (ev_async_send is
 * libev's thread-safe wakeup).  The ev_async holds a reference on the libev
 * loop exactly while ioasync has work (ev_ref/ev_unref, as libev's manual
 * does for watchers that should not keep ev_run alive), so ev_run(ev, 0)
 * keeps going while a lookup runs on a resolver thread and returns once
 * ioasync has nothing left.
 *
 * Rules: call everything but ioa_loop_post on the thread that runs ev.
 * ioa_loop_free() stops every watcher at once (no callback runs after it;
 * it may be called from a libev callback, not from an ioasync one); then
 * the ev loop may go on or be destroyed.  libev reports fd errors as
 * EV_ERROR after stopping the watcher; they arrive as IOA_ERROR and the
 * watcher is started again on ioasync's next change to it.  A start on a
 * closed fd is refused with -EBADF (checked with fcntl: libev itself would
 * abort).  Link with -lev.
 */
#ifndef IOASYNC_ADAPTERS_LIBEV_H
#define IOASYNC_ADAPTERS_LIBEV_H

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdlib.h>

#include "../error.h"
#include "../loop.h"
#include "shared.h"

#if !EV_MULTIPLICITY
#error "ioasync/adapters/libev.h needs libev built with EV_MULTIPLICITY (the default)"
#endif

typedef struct ioa_ev_adapter_ {
  struct ev_loop *ev;
  ioa_loop *loop;
  ev_timer timer;
  ev_async async;
  ioa_slots_ ios; /* one ev_io per fd number */
  ioa_host_timer_ deadline;
  int referenced; /* the ev_async holds a loop reference (ioasync has work) */
} ioa_ev_adapter_;

static void ioa_ev_io_cb_(struct ev_loop *ev, ev_io *w, int revents) {
  ioa_ev_adapter_ *a = (ioa_ev_adapter_ *)w->data;
  unsigned rev = 0;
  (void)ev;
  if (revents & EV_READ)
    rev |= IOA_READ;
  if (revents & EV_WRITE)
    rev |= IOA_WRITE;
  if (revents & EV_ERROR) /* libev stopped the watcher: let its owner find the error */
    rev |= IOA_ERROR | IOA_READ | IOA_WRITE;
  ioa_loop_backend_io(a->loop, w->fd, rev);
}

static int ioa_ev_io_update_(void *ctx, int fd, unsigned old_events, unsigned new_events) {
  ioa_ev_adapter_ *a = (ioa_ev_adapter_ *)ctx;
  int want = ((new_events & IOA_READ) ? EV_READ : 0) | ((new_events & IOA_WRITE) ? EV_WRITE : 0);
  (void)old_events;
  if (fd < 0)
    return -EBADF;
  ev_io *w = (ev_io *)(want ? ioa_slots_make_(&a->ios, fd) : ioa_slots_get_(&a->ios, fd));
  if (!w)
    return want ? -ENOMEM : 0;
  if (ev_is_active(w)) {
    if ((w->events & (EV_READ | EV_WRITE)) == want)
      return 0;
    ev_io_stop(a->ev, w);
    if (!want)
      return 0;
    /* Same fd, still open: change the events only (ev_io_set would tell
     * libev the fd may be a new one, a costlier re-registration). */
    ev_io_modify(w, want);
  } else {
    if (!want)
      return 0;
    /* libev asserts (aborts) on an fd epoll calls invalid: refuse a closed
     * one here, as ioasync's own loop does, with -EBADF. */
    if (fcntl(fd, F_GETFD) < 0)
      return -errno;
    /* A new start: the fd number may have been closed and reused since. */
    ev_io_init(w, ioa_ev_io_cb_, fd, want);
    w->data = a;
  }
  ev_io_start(a->ev, w);
  return 0;
}

static void ioa_ev_timer_cb_(struct ev_loop *ev, ev_timer *t, int revents) {
  ioa_ev_adapter_ *a = (ioa_ev_adapter_ *)t->data;
  (void)ev, (void)revents;
  ioa_host_timer_fired_(&a->deadline);
  ioa_loop_backend_timeout(a->loop);
}

static void ioa_ev_timer_update_(void *ctx, int64_t timeout_ms) {
  ioa_ev_adapter_ *a = (ioa_ev_adapter_ *)ctx;
  if (!ioa_host_timer_update_(&a->deadline, a->loop, timeout_ms))
    return;
  ev_timer_stop(a->ev, &a->timer);
  if (timeout_ms >= 0) {
    ev_timer_set(&a->timer, (ev_tstamp)timeout_ms / 1000., 0.);
    ev_timer_start(a->ev, &a->timer);
  }
}

static void ioa_ev_async_cb_(struct ev_loop *ev, ev_async *w, int revents) {
  (void)ev, (void)revents;
  ioa_loop_backend_wakeup(((ioa_ev_adapter_ *)w->data)->loop);
}

static void ioa_ev_wakeup_(void *ctx) {
  ioa_ev_adapter_ *a = (ioa_ev_adapter_ *)ctx;
  ev_async_send(a->ev, &a->async);
}

static void ioa_ev_keepalive_(void *ctx, int alive) {
  ioa_ev_adapter_ *a = (ioa_ev_adapter_ *)ctx;
  if (alive == a->referenced)
    return;
  a->referenced = alive;
  if (alive)
    ev_ref(a->ev);
  else
    ev_unref(a->ev);
}

static void ioa_ev_stop_io_(void *record, void *arg) {
  ev_io *w = (ev_io *)record;
  if (ev_is_active(w))
    ev_io_stop((struct ev_loop *)arg, w);
}

static void ioa_ev_cleanup_(void *ctx) {
  ioa_ev_adapter_ *a = (ioa_ev_adapter_ *)ctx;
  ioa_slots_each_(&a->ios, ioa_ev_stop_io_, a->ev);
  ioa_slots_free_(&a->ios);
  ev_timer_stop(a->ev, &a->timer);
  ioa_ev_keepalive_(a, 0);
  ev_ref(a->ev); /* give back the reference ev_unref took from the started ev_async */
  ev_async_stop(a->ev, &a->async);
  free(a);
}

/* Create an ioasync loop driven by ev.  Returns 0, IOA_EBADPARAM (ev or out
 * NULL, or opts not filled by ioa_loop_options_init) or -ENOMEM.  Free it
 * with ioa_loop_free(). */
static inline int ioa_ev_attach(struct ev_loop *ev, const ioa_loop_options *opts,
                                ioa_loop **out) {
  if (!ev || !out)
    return IOA_EBADPARAM;
  ioa_ev_adapter_ *a = (ioa_ev_adapter_ *)calloc(1, sizeof *a);
  if (!a)
    return -ENOMEM;
  a->ev = ev;
  ioa_slots_init_(&a->ios, sizeof(ev_io));
  ev_timer_init(&a->timer, ioa_ev_timer_cb_, 0., 0.);
  a->timer.data = a;
  ev_async_init(&a->async, ioa_ev_async_cb_);
  a->async.data = a;
  ev_async_start(ev, &a->async);
  ev_unref(ev); /* the ev_async alone must not keep ev_run going */
  int r = ioa_adapter_loop_new_(opts, a, ioa_ev_io_update_, ioa_ev_timer_update_, ioa_ev_wakeup_,
                                 ioa_ev_cleanup_, ioa_ev_keepalive_, &a->loop);
  if (r == 0)
    *out = a->loop;
  return r;
}

#endif
