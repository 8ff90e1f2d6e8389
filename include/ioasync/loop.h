/* SPDX-License-Identifier: MIT */
/* ioasync — the event loop.
 *
 * A small epoll loop with fd watchers, monotonic timers, deferred callbacks
 * and a thread-safe post queue.  Watchers, timers, defers and posts are
 * caller-owned structures (as in libuv and libev): the loop never allocates
 * per handle, so starting one cannot fail for lack of memory except for the
 * timer heap's occasional growth.
 *
 * Callback contract:
 *  - Callbacks run on the loop thread, from ioa_loop_run() (or, with a foreign
 *    backend, from ioa_loop_backend_* calls made by that loop).
 *  - A callback may stop, restart or free any watcher, timer or defer,
 *    including the one being dispatched and ones with events pending in the
 *    same iteration: a stopped handle gets no further callbacks.
 *  - A handle must be stopped before its memory is freed or reused, and an
 *    fd's watcher must be stopped before the fd is closed.
 *
 * Foreign loops: the loop's core (timers, defers, posts, fd table) is separate
 * from the poller.  ioa_loop_new() uses epoll; ioa_loop_new_with_backend()
 * lets libuv, libev, libevent or GLib do the polling (see ioa_loop_backend).
 */
#ifndef IOASYNC_LOOP_H
#define IOASYNC_LOOP_H

#include "common.h"

IOA_BEGIN_DECLS

typedef struct ioa_loop ioa_loop;
typedef struct ioa_io ioa_io;
typedef struct ioa_timer ioa_timer;
typedef struct ioa_defer ioa_defer;
typedef struct ioa_post ioa_post;

/* Event bits for ioa_io. IOA_ERROR and IOA_HUP are always reported. */
enum {
  IOA_READ = 1u << 0,
  IOA_WRITE = 1u << 1,
  IOA_ERROR = 1u << 2,
  IOA_HUP = 1u << 3,
};

typedef void (*ioa_io_cb)(ioa_io *io, unsigned revents, void *data);
typedef void (*ioa_timer_cb)(ioa_timer *timer, void *data);
typedef void (*ioa_defer_cb)(ioa_defer *defer, void *data);
typedef void (*ioa_post_cb)(ioa_post *post, void *data);
/* Warnings (a connect without socktype hint, say).  With no hook set
 * anywhere the library prints them to stderr, as IO::Async's warn does;
 * install ioa_warn_discard to silence them. */
typedef void (*ioa_warn_cb)(const char *message, void *data);
/* A warning hook that drops every warning. */
IOA_EXPORT void ioa_warn_discard(const char *message, void *data);

/* ---- handle structures: fields are private; embed them, don't touch. ---- */
struct ioa_io {
  ioa_loop *loop_;
  ioa_io_cb cb_;
  void *data_;
  int fd_;
  unsigned events_;
  unsigned registered_; /* events the poller currently has */
  int active_;
};

struct ioa_timer {
  ioa_loop *loop_;
  ioa_timer_cb cb_;
  void *data_;
  uint64_t due_ns_;
  uint64_t repeat_ns_;
  uint64_t seq_;   /* tie-break: equal deadlines fire in start order */
  size_t heap_idx_; /* SIZE_MAX when inactive */
};

struct ioa_defer {
  ioa_loop *loop_;
  ioa_defer_cb cb_;
  void *data_;
  struct ioa__list node_; /* in the loop's defer queue while active */
  int active_;
};

struct ioa_post {
  ioa_post_cb cb_;
  void *data_;
  ioa_post *next_;
};

/* ---- loop lifetime ---- */

typedef struct ioa_loop_options {
  size_t struct_size;     /* set by ioa_loop_options_init() */
  ioa_warn_cb on_warning; /* default for objects on this loop; NULL = stderr */
  void *warning_data;
} ioa_loop_options;

IOA_EXPORT void ioa_loop_options_init_size(ioa_loop_options *o, size_t size);
static inline void ioa_loop_options_init(ioa_loop_options *o) {
  ioa_loop_options_init_size(o, sizeof *o);
}

/* Create an epoll loop.  opts may be NULL (defaults).  Returns 0,
 * IOA_EBADPARAM (out NULL, or opts not initialised by its _init), -ENOMEM,
 * or the error of epoll_create1/eventfd. */
IOA_EXPORT int ioa_loop_new(const ioa_loop_options *opts, ioa_loop **out);

/* Free the loop.  Posts already queued run first (their owners may need
 * them to release memory).  Handles still active are then detached: they get
 * no further callbacks and stopping them afterwards is a harmless no-op.  Objects that own threads or fds (ioa_resolver, connect
 * requests, streams) must be freed first; their documentation says so. */
IOA_EXPORT void ioa_loop_free(ioa_loop *loop);

typedef enum ioa_run_mode {
  IOA_RUN_DEFAULT = 0, /* until nothing is active or ioa_loop_stop() */
  IOA_RUN_ONCE = 1,    /* one iteration, blocking for events if none ready */
  IOA_RUN_NOWAIT = 2,  /* one iteration, never blocking */
} ioa_run_mode;

/* Run the loop.  Returns 1 if active work remains, 0 if none, or a negative
 * code if the poller failed.  Not re-entrant: calling it from a callback
 * returns -EBUSY. */
IOA_EXPORT int ioa_loop_run(ioa_loop *loop, ioa_run_mode mode);

/* Make ioa_loop_run() return after the current iteration. Loop thread only. */
IOA_EXPORT void ioa_loop_stop(ioa_loop *loop);

/* Monotonic time in ns, cached at the start of each iteration. */
IOA_EXPORT uint64_t ioa_loop_now(const ioa_loop *loop);
/* Refresh the cached time from CLOCK_MONOTONIC and return it. */
IOA_EXPORT uint64_t ioa_loop_update_time(ioa_loop *loop);

/* Count of active watchers, timers, defers and references.  The loop keeps
 * running in IOA_RUN_DEFAULT while this is non-zero. */
IOA_EXPORT size_t ioa_loop_active(const ioa_loop *loop);

/* Keep the loop alive without a handle (e.g. while a thread works for it).
 * Thread-safe on a native loop: an unref from another thread that drops the
 * last reference wakes the loop.  A ref from another thread cannot stop a
 * loop that already ran out of work, so take it on the loop thread before
 * handing the work over.  On a foreign backend call both on the loop thread
 * (they may call the adapter's keepalive hook). */
IOA_EXPORT void ioa_loop_ref(ioa_loop *loop);
IOA_EXPORT void ioa_loop_unref(ioa_loop *loop);

/* Emit a warning through the loop's hook; without one, print it to stderr
 * as "ioasync: warning: ...". */
IOA_EXPORT void ioa_loop_warn(ioa_loop *loop, const char *fmt, ...) IOA_PRINTF(2, 3);
/* Replace the loop's warning hook (NULL: back to stderr). */
IOA_EXPORT void ioa_loop_set_warning_hook(ioa_loop *loop, ioa_warn_cb cb, void *data);

/* ---- fd watchers ---- */

/* Prepare a watcher for fd (does not start it). */
IOA_EXPORT void ioa_io_init(ioa_loop *loop, ioa_io *io, int fd, ioa_io_cb cb, void *data);
/* Start or change interest (IOA_READ | IOA_WRITE); events 0 stops.  At most
 * one active watcher per fd: a second returns -EEXIST.  Returns 0 or a
 * negative code (the poller's error, e.g. -EBADF, -ENOMEM). */
IOA_EXPORT int ioa_io_start(ioa_io *io, unsigned events);
IOA_EXPORT void ioa_io_stop(ioa_io *io);
IOA_EXPORT int ioa_io_active(const ioa_io *io);
IOA_EXPORT int ioa_io_fd(const ioa_io *io);

/* ---- timers (monotonic) ---- */

IOA_EXPORT void ioa_timer_init(ioa_loop *loop, ioa_timer *t, ioa_timer_cb cb, void *data);
/* Fire after timeout_ns, then every repeat_ns if non-zero.  Restarting an
 * active timer reschedules it.  Deadlines saturate (a huge timeout means
 * never); a timer started from a timer callback fires at the earliest in the
 * next timer run, even if due.  Returns 0 or -ENOMEM. */
IOA_EXPORT int ioa_timer_start(ioa_timer *t, uint64_t timeout_ns, uint64_t repeat_ns);
/* Like ioa_timer_start but with an absolute ioa_loop_now()-based deadline. */
IOA_EXPORT int ioa_timer_start_at(ioa_timer *t, uint64_t deadline_ns, uint64_t repeat_ns);
IOA_EXPORT void ioa_timer_stop(ioa_timer *t);
IOA_EXPORT int ioa_timer_active(const ioa_timer *t);

/* ---- deferred callbacks: run on the next iteration, in FIFO order ---- */

IOA_EXPORT void ioa_defer_init(ioa_loop *loop, ioa_defer *d, ioa_defer_cb cb, void *data);
/* Queue d (no-op if already queued).  Never fails. */
IOA_EXPORT void ioa_defer_start(ioa_defer *d);
IOA_EXPORT void ioa_defer_stop(ioa_defer *d);
IOA_EXPORT int ioa_defer_active(const ioa_defer *d);

/* ---- cross-thread posting ---- */

/* Run cb(post, data) on the loop thread soon.  Thread-safe; post must stay
 * valid until its callback has run (or the loop is freed).  Never fails. */
IOA_EXPORT void ioa_loop_post(ioa_loop *loop, ioa_post *post, ioa_post_cb cb, void *data);

/* ---- embedding in a hand-written loop ----
 *
 * Three calls run a native loop inside a poll/select/epoll loop of the
 * program's own, as libuv's uv_backend_fd/uv_backend_timeout and c-ares's
 * ares_fds/ares_timeout do:
 *
 *   struct pollfd p = {.fd = ioa_loop_fd(loop), .events = POLLIN};
 *   poll(&p, 1, ioa_loop_timeout(loop));      // with the program's own fds
 *   ioa_loop_run(loop, IOA_RUN_NOWAIT);        // run what is ready, never block
 *
 * Ask for the timeout again after every ioa_loop_run(): callbacks start
 * timers and queue defers.  ioa_loop_run() returns 0 once the loop has no
 * work left.  Loop thread only.
 */

/* The native loop's pollable fd (its epoll fd), readable while a watched fd
 * has an event or a post is waiting.  Poll it for reading only; never read,
 * close or register fds with it.  Returns the fd, IOA_EBADPARAM (loop NULL)
 * or -ENOTSUP (a loop made by ioa_loop_new_with_backend has no fd: its host
 * loop does the polling). */
IOA_EXPORT int ioa_loop_fd(const ioa_loop *loop);
/* Milliseconds until the loop must run even if its fd stays quiet: until its
 * next timer (rounded up, so never early), 0 when deferred callbacks are
 * queued or a timer is due, -1 when it has no timer.  Returns that, or
 * IOA_EBADPARAM / -ENOTSUP as ioa_loop_fd() does. */
IOA_EXPORT int ioa_loop_timeout(const ioa_loop *loop);

/* ---- foreign loops (adapters) ----
 *
 * An adapter implements these hooks on top of another loop, then calls back
 * into ioasync when that loop sees activity.  All hooks run on the loop
 * thread except wakeup, which must be thread-safe.
 */
typedef struct ioa_loop_backend {
  size_t struct_size; /* set by ioa_loop_backend_init() */
  void *ctx;
  /* Change the events watched on fd from old_events to new_events (0 means
   * remove).  Return 0 or a negative code. */
  int (*io_update)(void *ctx, int fd, unsigned old_events, unsigned new_events);
  /* Arrange a call to ioa_loop_backend_timeout() after timeout_ms
   * (0 = as soon as possible; -1 = cancel). */
  void (*timer_update)(void *ctx, int64_t timeout_ms);
  /* From any thread: arrange a call to ioa_loop_backend_wakeup() soon. */
  void (*wakeup)(void *ctx);
  /* ioa_loop_free() is freeing the loop; release adapter resources. */
  void (*cleanup)(void *ctx);
  /* Optional: ioasync has (alive = 1) or no longer has (0) active work —
   * watchers, timers, defers or references.  Lets an adapter keep its host
   * loop running while, say, a lookup is in flight on a resolver thread:
   * a host loop that exits when idle (libuv) needs it, or such lookups
   * never complete. */
  void (*keepalive)(void *ctx, int alive);
} ioa_loop_backend;

IOA_EXPORT void ioa_loop_backend_init_size(ioa_loop_backend *b, size_t size);
static inline void ioa_loop_backend_init(ioa_loop_backend *b) {
  ioa_loop_backend_init_size(b, sizeof *b);
}

/* Create a loop driven by another loop through backend's hooks (copied).
 * Returns 0, IOA_EBADPARAM (io_update, timer_update or wakeup missing, or a
 * struct not initialised by its _init) or -ENOMEM. */
IOA_EXPORT int ioa_loop_new_with_backend(const ioa_loop_options *opts,
                                         const ioa_loop_backend *backend, ioa_loop **out);
/* Called by the adapter: fd became ready (IOA_READ/WRITE/ERROR/HUP bits). */
IOA_EXPORT void ioa_loop_backend_io(ioa_loop *loop, int fd, unsigned revents);
/* Called by the adapter when its timer fires: runs due timers and defers. */
IOA_EXPORT void ioa_loop_backend_timeout(ioa_loop *loop);
/* Called by the adapter after a wakeup: runs posted callbacks and defers. */
IOA_EXPORT void ioa_loop_backend_wakeup(ioa_loop *loop);

IOA_END_DECLS

#endif
