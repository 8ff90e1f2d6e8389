/* SPDX-License-Identifier: MIT */
/* ioasync on a libevent 2.1 event_base — a header-only adapter.
 *
 *   struct event_base *base = event_base_new();
 *   ioa_loop *loop;
 *   ioa_event_attach(base, NULL, &loop);  // ioasync objects now run on base
 *   ... ioa_connect(loop, &params, NULL); event_base_dispatch(base); ...
 *   ioa_loop_free(loop);                   // deletes the adapter's events
 *   event_base_free(base);                 // (or keep running it)
 *
 * Every ioasync fd watcher becomes up to two persistent events (one for
 * EV_READ, one for EV_WRITE, so a change of interest is one epoll_ctl),
 * made with event_assign() in per-fd records allocated 64 at a time (sized
 * with event_get_struct_event_size(), so the adapter does not depend on
 * libevent's struct layout); ioasync's next deadline is one timer event.
 *
 * Posts from other threads (a resolver thread's answer) wake the loop
 * through an eventfd the adapter watches, so the application need not
 * enable libevent's threading (evthread_use_pthreads) — nor is it harmed if
 * it did: libevent is only ever called on the loop's thread.  That eventfd's
 * event is added exactly while ioasync has work, so event_base_dispatch()
 * keeps going while a lookup runs on a resolver thread and returns once
 * ioasync has nothing left.  (A post made while ioasync holds no work waits
 * until it has some again: take ioa_loop_ref() before handing work to a
 * thread, as ioa_loop(3) asks.)
 *
 * Errors: an event_add() that fails is returned by ioa_io_start() as a
 * negative errno (-EIO if libevent gave none); a timer or wakeup event that
 * cannot be added is reported through the loop's warning hook.
 *
 * Rules: call everything but ioa_loop_post on the thread that runs the
 * base.  ioa_loop_free() deletes every event at once (no callback runs after
 * it; it may be called from a libevent callback, not from an ioasync one);
 * then the base may go on or be freed.  Link with -levent_core (or -levent).
 */
#ifndef IOASYNC_ADAPTERS_LIBEVENT_H
#define IOASYNC_ADAPTERS_LIBEVENT_H

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../error.h"
#include "../loop.h"
#include "shared.h"

typedef struct ioa_event_adapter_ {
  struct event_base *base;
  ioa_loop *loop;
  size_t evsize;        /* event_get_struct_event_size(), rounded up to 16 */
  struct event *timer;  /* these two live right after this struct */
  struct event *wake;
  int wakefd;           /* eventfd written by ioa_loop_post's wakeup */
  int wake_added;       /* the wake event is added: ioasync has work */
  ioa_slots_ fds;       /* per fd: an ioa_event_fd_ then a read and a write event */
  ioa_host_timer_ deadline;
} ioa_event_adapter_;

/* Head of a per-fd record; the two events follow at IOA_EVENT_HEAD_. */
typedef struct ioa_event_fd_ {
  unsigned char assigned; /* the events were event_assign()ed for this fd number */
  unsigned char added;    /* bit 0: the read event is added, bit 1: the write event */
} ioa_event_fd_;
#define IOA_EVENT_HEAD_ 16u

static inline struct event *ioa_event_of_(const ioa_event_adapter_ *a, ioa_event_fd_ *rec,
                                          int which) {
  return (struct event *)((unsigned char *)rec + IOA_EVENT_HEAD_ + (size_t)which * a->evsize);
}

/* A libevent failure as a negative errno (libevent sets errno when a
 * syscall failed, and nothing otherwise). */
static inline int ioa_event_err_(void) { return errno ? -errno : -EIO; }

static void ioa_event_io_cb_(evutil_socket_t fd, short what, void *arg) {
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)arg;
  unsigned rev = ((what & EV_READ) ? (unsigned)IOA_READ : 0u) |
                 ((what & EV_WRITE) ? (unsigned)IOA_WRITE : 0u);
  ioa_loop_backend_io(a->loop, (int)fd, rev);
}

/* Add or delete one of fd's two events to match want; 0 or a negative code. */
static int ioa_event_set_(ioa_event_adapter_ *a, ioa_event_fd_ *rec, int which, int want) {
  unsigned bit = 1u << which;
  if (!want == !(rec->added & bit))
    return 0;
  errno = 0;
  struct event *ev = ioa_event_of_(a, rec, which);
  if (want ? event_add(ev, NULL) : event_del(ev))
    return ioa_event_err_();
  rec->added = (unsigned char)(rec->added ^ bit);
  return 0;
}

static int ioa_event_io_update_(void *ctx, int fd, unsigned old_events, unsigned new_events) {
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)ctx;
  int want_r = (new_events & IOA_READ) != 0, want_w = (new_events & IOA_WRITE) != 0;
  (void)old_events;
  if (fd < 0)
    return -EBADF;
  ioa_event_fd_ *rec = (ioa_event_fd_ *)(want_r || want_w ? ioa_slots_make_(&a->fds, fd)
                                                          : ioa_slots_get_(&a->fds, fd));
  if (!rec)
    return want_r || want_w ? -ENOMEM : 0;
  if (!rec->assigned) {
    /* The fd number is all an event keeps, so one assignment serves every
     * fd that number will name. */
    if (event_assign(ioa_event_of_(a, rec, 0), a->base, fd, EV_READ | EV_PERSIST,
                     ioa_event_io_cb_, a) < 0 ||
        event_assign(ioa_event_of_(a, rec, 1), a->base, fd, EV_WRITE | EV_PERSIST,
                     ioa_event_io_cb_, a) < 0)
      return -EINVAL;
    rec->assigned = 1;
  }
  unsigned before = rec->added;
  int r = ioa_event_set_(a, rec, 0, want_r);
  if (r == 0)
    r = ioa_event_set_(a, rec, 1, want_w);
  if (r < 0) { /* put back what this call changed */
    (void)ioa_event_set_(a, rec, 0, (before & 1u) != 0);
    (void)ioa_event_set_(a, rec, 1, (before & 2u) != 0);
  }
  return r;
}

static void ioa_event_timer_cb_(evutil_socket_t fd, short what, void *arg) {
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)arg;
  (void)fd, (void)what;
  ioa_host_timer_fired_(&a->deadline);
  ioa_loop_backend_timeout(a->loop);
}

static void ioa_event_timer_update_(void *ctx, int64_t timeout_ms) {
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)ctx;
  if (!ioa_host_timer_update_(&a->deadline, a->loop, timeout_ms))
    return;
  if (timeout_ms < 0) {
    event_del(a->timer);
    return;
  }
  struct timeval tv;
  tv.tv_sec = (time_t)(timeout_ms / 1000);
  tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
  errno = 0;
  if (event_add(a->timer, &tv) < 0) {
    int e = ioa_event_err_();
    ioa_host_timer_fired_(&a->deadline); /* not armed: the next update tries again */
    ioa_loop_warn(a->loop, "libevent adapter: event_add(timer) failed: %s", ioa_strerror(e));
  }
}

static void ioa_event_wake_cb_(evutil_socket_t fd, short what, void *arg) {
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)arg;
  uint64_t v;
  (void)what;
  while (read((int)fd, &v, sizeof v) < 0 && errno == EINTR)
    ;
  ioa_loop_backend_wakeup(a->loop);
}

static void ioa_event_wakeup_(void *ctx) { /* any thread */
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)ctx;
  uint64_t one = 1;
  /* EAGAIN: the counter is already non-zero, a wakeup is pending. */
  while (write(a->wakefd, &one, sizeof one) < 0 && errno == EINTR)
    ;
}

static void ioa_event_keepalive_(void *ctx, int alive) {
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)ctx;
  if (alive == a->wake_added)
    return;
  errno = 0;
  if (alive ? event_add(a->wake, NULL) : event_del(a->wake)) {
    ioa_loop_warn(a->loop, "libevent adapter: event_%s(wakeup) failed: %s", alive ? "add" : "del",
                  ioa_strerror(ioa_event_err_()));
    return;
  }
  a->wake_added = alive;
}

static void ioa_event_del_fd_(void *record, void *arg) {
  ioa_event_fd_ *rec = (ioa_event_fd_ *)record;
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)arg;
  for (int which = 0; which < 2; which++)
    if (rec->added & (1u << which))
      event_del(ioa_event_of_(a, rec, which));
  rec->added = 0;
}

static void ioa_event_cleanup_(void *ctx) {
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)ctx;
  ioa_slots_each_(&a->fds, ioa_event_del_fd_, a);
  ioa_slots_free_(&a->fds);
  event_del(a->timer);
  event_del(a->wake);
  if (a->wakefd >= 0)
    close(a->wakefd);
  free(a);
}

/* Create an ioasync loop driven by base.  Returns 0, IOA_EBADPARAM (base or
 * out NULL, or opts not filled by ioa_loop_options_init), -ENOMEM, or the
 * error of eventfd() or event_assign().  Free it with ioa_loop_free(). */
static inline int ioa_event_attach(struct event_base *base, const ioa_loop_options *opts,
                                   ioa_loop **out) {
  if (!base || !out)
    return IOA_EBADPARAM;
  size_t evsize = (event_get_struct_event_size() + 15u) & ~(size_t)15u;
  size_t head = (sizeof(ioa_event_adapter_) + 15u) & ~(size_t)15u;
  ioa_event_adapter_ *a = (ioa_event_adapter_ *)calloc(1, head + 2 * evsize);
  if (!a)
    return -ENOMEM;
  a->base = base;
  a->evsize = evsize;
  a->timer = (struct event *)((unsigned char *)a + head);
  a->wake = (struct event *)((unsigned char *)a + head + evsize);
  ioa_slots_init_(&a->fds, IOA_EVENT_HEAD_ + 2 * evsize);
  a->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (a->wakefd < 0) {
    int e = -errno;
    free(a);
    return e;
  }
  if (event_assign(a->timer, base, -1, 0, ioa_event_timer_cb_, a) < 0 ||
      event_assign(a->wake, base, a->wakefd, EV_READ | EV_PERSIST, ioa_event_wake_cb_, a) < 0) {
    close(a->wakefd);
    free(a);
    return -EINVAL;
  }
  int r = ioa_adapter_loop_new_(opts, a, ioa_event_io_update_, ioa_event_timer_update_,
                                 ioa_event_wakeup_, ioa_event_cleanup_, ioa_event_keepalive_,
                                 &a->loop);
  if (r == 0)
    *out = a->loop;
  return r;
}

#endif
