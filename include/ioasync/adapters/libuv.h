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
 * ioasync's fd watchers live in an epoll set of the adapter's own, which
 * libuv watches as one fd (one uv_poll_t); ioasync's next deadline is one
 * uv_timer_t, and posts from other threads a uv_async_t (uv_async_send is
 * libuv's thread-safe wakeup).  Why one epoll set rather than a uv_poll_t
 * per fd: uv_poll_init() probes every new fd with two epoll_ctl calls and
 * an ioctl, and a uv_poll_t is freed only after an asynchronous uv_close(),
 * so a connect — a new socket each time — paid five syscalls and a
 * malloc/free more than on ioasync's own loop; here it pays one epoll_wait
 * per batch more.  A watcher for writing alone (a connect in progress,
 * mostly) is registered one-shot, as ioasync's own loop registers a
 * connect: once its event has been reported the kernel has disarmed it, so
 * stopping it before the fd is closed needs no epoll_ctl (if it is still
 * wanted after its callback, it is re-armed).  Other watchers are
 * level-triggered and removed when stopped.  Each registration carries a
 * generation number, so an fd closed and its number reused within one batch
 * never receives its predecessor's event.
 *
 * The uv_async_t holds a libuv reference exactly while ioasync has work
 * (watchers, timers, defers, references); the uv_poll_t and uv_timer_t
 * hold none.  So uv_run(UV_RUN_DEFAULT) keeps going while a lookup runs on
 * a resolver thread, and returns once ioasync has nothing left.
 *
 * Rules: call everything but ioa_loop_post on the thread that runs uv.
 * ioa_loop_free() stops everything at once (no callback runs after it; it
 * may be called from a libuv callback, not from an ioasync one); libuv then
 * needs one more turn of its loop to finish closing the adapter's handles
 * before uv_loop_close().  Link with libuv.
 */
#ifndef IOASYNC_ADAPTERS_LIBUV_H
#define IOASYNC_ADAPTERS_LIBUV_H

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

#include "../error.h"
#include "../loop.h"
#include "shared.h"

typedef struct ioa_uv_fd_ {
  uint32_t gen;    /* of the current registration; events of older ones are dropped */
  unsigned events; /* IOA_READ | IOA_WRITE watched; 0: none */
  unsigned char oneshot; /* registered with EPOLLONESHOT (IOA_WRITE alone) */
  unsigned char armed;   /* a one-shot registration that has not fired yet */
} ioa_uv_fd_;

/* Register (or change) fd's registration for rec->events under gen. */
static int ioa_uv_register_(int epfd, int fd, ioa_uv_fd_ *rec, int op) {
  struct epoll_event e;
  e.events = ((rec->events & IOA_READ) ? (uint32_t)(EPOLLIN | EPOLLRDHUP) : 0u) |
             ((rec->events & IOA_WRITE) ? (uint32_t)EPOLLOUT : 0u) |
             (rec->oneshot ? (uint32_t)EPOLLONESHOT : 0u);
  e.data.u64 = ((uint64_t)rec->gen << 32) | (uint32_t)fd;
  int r = epoll_ctl(epfd, op, fd, &e);
  /* A one-shot registration that fired was left in place, disarmed: the fd
   * is still open, so take it over. */
  if (r < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
    r = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e);
  if (r < 0)
    return -errno; /* EPERM: a regular file, as on ioasync's own loop */
  rec->armed = rec->oneshot;
  return 0;
}

typedef struct ioa_uv_adapter_ {
  uv_loop_t *uv;
  ioa_loop *loop;
  int epfd;        /* the epoll set of ioasync's fds */
  uv_poll_t poll;  /* libuv's watcher on epfd */
  uv_timer_t timer;
  uv_async_t async;
  ioa_slots_ fds;  /* ioa_uv_fd_ per fd number */
  uint32_t gen;
  ioa_host_timer_ deadline;
  int open_handles; /* freed when the last uv_close callback has run */
} ioa_uv_adapter_;

static void ioa_uv_handle_closed_(uv_handle_t *h) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)h->data;
  if (--a->open_handles > 0)
    return;
  if (a->epfd >= 0)
    close(a->epfd); /* after libuv has stopped watching it */
  ioa_slots_free_(&a->fds);
  free(a);
}

static void ioa_uv_poll_cb_(uv_poll_t *p, int status, int events) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)p->data;
  struct epoll_event ev[64];
  (void)status, (void)events;
  int n = epoll_wait(a->epfd, ev, 64, 0);
  for (int i = 0; i < n; i++) {
    int fd = (int)(uint32_t)ev[i].data.u64;
    ioa_uv_fd_ *rec = (ioa_uv_fd_ *)ioa_slots_get_(&a->fds, fd);
    /* Stopped (or stopped and started again) since epoll_wait: not this one's. */
    if (!rec || !rec->events || rec->gen != (uint32_t)(ev[i].data.u64 >> 32))
      continue;
    uint32_t e = ev[i].events, gen = rec->gen;
    unsigned rev = ((e & EPOLLIN) ? (unsigned)IOA_READ : 0u) |
                   ((e & EPOLLOUT) ? (unsigned)IOA_WRITE : 0u) |
                   ((e & EPOLLERR) ? (unsigned)IOA_ERROR : 0u) |
                   ((e & (EPOLLHUP | EPOLLRDHUP)) ? (unsigned)IOA_HUP : 0u);
    rec->armed = 0; /* a one-shot registration is disarmed now */
    ioa_loop_backend_io(a->loop, fd, rev);
    /* Still wanted, unchanged, one-shot: level-triggered means re-arm. */
    if (rec->events && rec->gen == gen && rec->oneshot && !rec->armed)
      (void)ioa_uv_register_(a->epfd, fd, rec, EPOLL_CTL_MOD);
  }
}

static int ioa_uv_io_update_(void *ctx, int fd, unsigned old_events, unsigned new_events) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)ctx;
  (void)old_events;
  if (fd < 0)
    return -EBADF;
  new_events &= IOA_READ | IOA_WRITE;
  ioa_uv_fd_ *rec = (ioa_uv_fd_ *)(new_events ? ioa_slots_make_(&a->fds, fd)
                                              : ioa_slots_get_(&a->fds, fd));
  if (!rec)
    return new_events ? -ENOMEM : 0;
  if (!new_events) {
    /* A registration that can still report must go (the fd may stay open,
     * or live on in another process); a one-shot one that fired is
     * disarmed and leaves with the fd's close. */
    if (rec->events && (!rec->oneshot || rec->armed)) {
      struct epoll_event e;
      /* Fails harmlessly (EBADF) if the fd was closed already. */
      (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, fd, &e);
    }
    rec->events = 0;
    return 0;
  }
  ioa_uv_fd_ next = *rec;
  int op = rec->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (!rec->events)
    next.gen = a->gen + 1;
  next.events = new_events;
  next.oneshot = new_events == IOA_WRITE;
  int r = ioa_uv_register_(a->epfd, fd, &next, op);
  if (r < 0)
    return r;
  if (!rec->events)
    a->gen = next.gen;
  *rec = next;
  return 0;
}

static void ioa_uv_timer_cb_(uv_timer_t *t) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)t->data;
  ioa_host_timer_fired_(&a->deadline);
  ioa_loop_backend_timeout(a->loop);
}

static void ioa_uv_timer_update_(void *ctx, int64_t timeout_ms) {
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)ctx;
  if (!ioa_host_timer_update_(&a->deadline, a->loop, timeout_ms))
    return;
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
  uv_handle_t *h[3] = {(uv_handle_t *)&a->poll, (uv_handle_t *)&a->timer,
                       (uv_handle_t *)&a->async};
  for (int i = 0; i < 3; i++)
    if (h[i]->data) /* initialised */
      uv_close(h[i], ioa_uv_handle_closed_);
}

/* Create an ioasync loop driven by uv.  Returns 0, IOA_EBADPARAM (uv or out
 * NULL, or opts not filled by ioa_loop_options_init), -ENOMEM, or the error
 * of epoll_create1() or libuv (negated errno values).  Free it with
 * ioa_loop_free(), then let uv run once more to finish the closes. */
static inline int ioa_uv_attach(uv_loop_t *uv, const ioa_loop_options *opts, ioa_loop **out) {
  if (!uv || !out)
    return IOA_EBADPARAM;
  ioa_uv_adapter_ *a = (ioa_uv_adapter_ *)calloc(1, sizeof *a);
  if (!a)
    return -ENOMEM;
  a->uv = uv;
  ioa_slots_init_(&a->fds, sizeof(ioa_uv_fd_));
  a->epfd = epoll_create1(EPOLL_CLOEXEC);
  int r = a->epfd < 0 ? -errno : uv_poll_init(uv, &a->poll, a->epfd);
  if (r < 0) {
    if (a->epfd >= 0)
      close(a->epfd);
    free(a);
    return r;
  }
  a->poll.data = a;
  a->open_handles = 1;
  uv_unref((uv_handle_t *)&a->poll); /* liveness is the async's job */
  r = uv_poll_start(&a->poll, UV_READABLE, ioa_uv_poll_cb_);
  if (r == 0)
    r = uv_timer_init(uv, &a->timer);
  if (r == 0) {
    a->timer.data = a;
    a->open_handles++;
    uv_unref((uv_handle_t *)&a->timer);
    r = uv_async_init(uv, &a->async, ioa_uv_async_cb_);
  }
  if (r < 0) {
    ioa_uv_cleanup_(a); /* the last close callback frees a */
    return r;
  }
  a->async.data = a;
  a->open_handles++;
  uv_unref((uv_handle_t *)&a->async);
  /* On failure the cleanup hook closes the handles; the last close frees a. */
  r = ioa_adapter_loop_new_(opts, a, ioa_uv_io_update_, ioa_uv_timer_update_, ioa_uv_wakeup_,
                            ioa_uv_cleanup_, ioa_uv_keepalive_, &a->loop);
  if (r == 0)
    *out = a->loop;
  return r;
}

#endif
