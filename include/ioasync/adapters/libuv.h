/* SPDX-License-Identifier: MIT */
/* ioasync on a libuv loop — a header-only adapter in the hiredis style.
 *
 *   uv_loop_t *uv = uv_default_loop();
 *   ioa_loop *loop;
 *   ioa_uv_attach(uv, NULL, &loop);   // ioasync objects now run on uv
 *   ... ioa_connect(loop, &params, NULL); uv_run(uv, UV_RUN_DEFAULT); ...
 *   ioa_loop_free(loop);              // closes the adapter's uv handles
 *   uv_run(uv, UV_RUN_DEFAULT);       // lets libuv finish those closes
 *
 * Every ioasync fd watcher becomes a uv_poll_t, ioasync's next deadline one
 * uv_timer_t, and cross-thread posts a uv_async_t, which holds a libuv
 * reference exactly while ioasync has work (so uv_run(UV_RUN_DEFAULT) keeps
 * going while a lookup runs on a resolver thread, and returns when all is
 * done).  Link with libuv.
 */
#ifndef IOASYNC_ADAPTERS_LIBUV_H
#define IOASYNC_ADAPTERS_LIBUV_H

#include <errno.h>
#include <stdlib.h>
#include <uv.h>

#include "../error.h"
#include "../loop.h"

typedef struct ioa_uv_adapter_ {
  uv_loop_t *uv;
  ioa_loop *loop;
  uv_timer_t timer;
  uv_async_t async;
  uv_poll_t **polls; /* indexed by fd */
  size_t npolls;
  int open_handles; /* freed when the last uv_close callback has run */
} ioa_uv_adapter_;

static void ioa_uv_handle_closed_(uv_handle_t *h) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)h->data;
  if (h != (uv_handle_t *)&a->timer && h != (uv_handle_t *)&a->async)
    free(h);
  if (--a->open_handles == 0) {
    free(a->polls);
    free(a);
  }
}

static void ioa_uv_poll_cb_(uv_poll_t *p, int status, int events) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)p->data;
  unsigned rev = 0;
  if (status < 0)
    rev |= IOA_ERROR | IOA_READ | IOA_WRITE; /* let the watcher find the error */
  if (events & UV_READABLE)
    rev |= IOA_READ;
  if (events & UV_WRITABLE)
    rev |= IOA_WRITE;
  if (events & UV_DISCONNECT)
    rev |= IOA_HUP;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)p, &fd) == 0)
    ioa_loop_backend_io(a->loop, (int)fd, rev);
}

static int ioa_uv_io_update_(void *ctx, int fd, unsigned old_events, unsigned new_events) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)ctx;
  (void)old_events;
  if (fd < 0)
    return -EBADF;
  if ((size_t)fd >= a->npolls) {
    if (new_events == 0)
      return 0;
    size_t n = a->npolls ? a->npolls : 64;
    while (n <= (size_t)fd)
      n *= 2;
    uv_poll_t **np = (uv_poll_t **)realloc(a->polls, n * sizeof *np);
    if (!np)
      return -ENOMEM;
    for (size_t i = a->npolls; i < n; i++)
      np[i] = NULL;
    a->polls = np;
    a->npolls = n;
  }
  uv_poll_t *p = a->polls[fd];
  if (new_events == 0) {
    if (p) {
      a->polls[fd] = NULL;
      uv_close((uv_handle_t *)p, ioa_uv_handle_closed_);
    }
    return 0;
  }
  if (!p) {
    p = (uv_poll_t *)malloc(sizeof *p);
    if (!p)
      return -ENOMEM;
    int r = uv_poll_init(a->uv, p, fd);
    if (r < 0) {
      free(p);
      return r; /* libuv errors are negated errno values on Unix */
    }
    p->data = a;
    a->open_handles++;
    a->polls[fd] = p;
  }
  int ev = ((new_events & IOA_READ) ? UV_READABLE : 0) | ((new_events & IOA_WRITE) ? UV_WRITABLE : 0);
  return uv_poll_start(p, ev, ioa_uv_poll_cb_);
}

static void ioa_uv_timer_cb_(uv_timer_t *t) {
  ioa_loop_backend_timeout(((ioa_uv_adapter_ *)t->data)->loop);
}

static void ioa_uv_timer_update_(void *ctx, int64_t timeout_ms) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)ctx;
  if (timeout_ms < 0)
    uv_timer_stop(&a->timer);
  else
    uv_timer_start(&a->timer, ioa_uv_timer_cb_, (uint64_t)timeout_ms, 0);
}

static void ioa_uv_async_cb_(uv_async_t *h) {
  ioa_loop_backend_wakeup(((ioa_uv_adapter_ *)h->data)->loop);
}

static void ioa_uv_wakeup_(void *ctx) { uv_async_send(&((ioa_uv_adapter_ *)ctx)->async); }

static void ioa_uv_keepalive_(void *ctx, int alive) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)ctx;
  if (alive)
    uv_ref((uv_handle_t *)&a->async);
  else
    uv_unref((uv_handle_t *)&a->async);
}

static void ioa_uv_cleanup_(void *ctx) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)ctx;
  for (size_t i = 0; i < a->npolls; i++)
    if (a->polls[i]) {
      uv_close((uv_handle_t *)a->polls[i], ioa_uv_handle_closed_);
      a->polls[i] = NULL;
    }
  uv_close((uv_handle_t *)&a->timer, ioa_uv_handle_closed_);
  uv_close((uv_handle_t *)&a->async, ioa_uv_handle_closed_);
}

/* Create an ioasync loop driven by uv.  Returns 0, IOA_EBADPARAM (uv or out
 * NULL, or opts not filled by ioa_loop_options_init), or a libuv error (a
 * negated errno).  Free it with ioa_loop_free(), then let uv run once more
 * to finish the closes. */
static inline int ioa_uv_attach(uv_loop_t *uv, const ioa_loop_options *opts, ioa_loop **out) {
  if (!uv || !out)
    return IOA_EBADPARAM;
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)calloc(1, sizeof *a);
  if (!a)
    return -ENOMEM;
  a->uv = uv;
  int r = uv_timer_init(uv, &a->timer);
  if (r < 0) {
    free(a);
    return r;
  }
  r = uv_async_init(uv, &a->async, ioa_uv_async_cb_);
  if (r < 0) {
    a->open_handles = 1;
    a->timer.data = a;
    uv_close((uv_handle_t *)&a->timer, ioa_uv_handle_closed_);
    return r;
  }
  a->timer.data = a->async.data = a;
  a->open_handles = 2;
  uv_unref((uv_handle_t *)&a->async);
  ioa_loop_backend be;
  ioa_loop_backend_init(&be);
  be.ctx = a;
  be.io_update = ioa_uv_io_update_;
  be.timer_update = ioa_uv_timer_update_;
  be.wakeup = ioa_uv_wakeup_;
  be.cleanup = ioa_uv_cleanup_;
  be.keepalive = ioa_uv_keepalive_;
  r = ioa_loop_new_with_backend(opts, &be, &a->loop);
  if (r < 0) {
    ioa_uv_cleanup_(a);
    return r;
  }
  *out = a->loop;
  return 0;
}

#endif
