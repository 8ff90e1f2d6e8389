/* SPDX-License-Identifier: MIT */
/* ioasync on a GLib main context — a header-only adapter.
 *
 *   ioa_loop *loop;
 *   ioa_glib_attach(NULL, NULL, &loop);   // NULL: the default GMainContext
 *   ... ioa_connect(loop, &params, NULL);
 *   g_main_loop_run(main_loop);            // the application's own loop, or
 *   ioa_glib_run(NULL, loop);              // iterate until ioasync is done
 *   ioa_loop_free(loop);                   // destroys the adapter's GSource
 *
 * The ioasync loop is one GSource, written the way GLib wants foreign
 * sources written: each fd watcher is a g_source_add_unix_fd() tag on it
 * (g_source_modify_unix_fd() when the interest changes), ioasync's next
 * deadline is the source's ready time (g_source_set_ready_time()), and a
 * post from another thread sets an atomic flag that the source's prepare
 * and check read, then calls g_main_context_wakeup() — GLib's thread-safe
 * way to make a context look at its sources again.
 *
 * A GMainContext does not stop by itself when it runs out of sources: a
 * GLib application quits its GMainLoop when it is done.  ioa_glib_run()
 * iterates the context while ioasync has work (a lookup on a resolver
 * thread included: it holds a reference) and returns once it has none —
 * the counterpart of uv_run(UV_RUN_DEFAULT) for a program whose context
 * serves ioasync alone.
 *
 * GLib cannot refuse an fd: a watcher started on an fd poll() cannot watch
 * (closed, say) is not refused by ioa_io_start() as on ioasync's own loop,
 * but reported through its callback as IOA_ERROR (poll's POLLNVAL).
 *
 * Rules: call everything but ioa_loop_post on the thread that iterates the
 * context (its owner).  ioa_loop_free() destroys the source at once (no
 * callback runs after it; from a GLib callback is fine, from an ioasync one
 * is not); the adapter holds a reference on the context until then.  Link
 * with `pkg-config --libs glib-2.0`.
 */
#ifndef IOASYNC_ADAPTERS_GLIB_H
#define IOASYNC_ADAPTERS_GLIB_H

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "../error.h"
#include "../loop.h"
#include "shared.h"

typedef struct ioa_glib_fd_ {
  gpointer tag; /* from g_source_add_unix_fd, NULL when not watched */
  GIOCondition cond;
  unsigned gen; /* which registration of this fd number the tag is */
  size_t idx;   /* position in the source's list of watched fds */
} ioa_glib_fd_;

typedef struct ioa_glib_watched_ {
  int fd;
  unsigned gen;
} ioa_glib_watched_;

typedef struct ioa_glib_source_ {
  GSource source; /* first: GLib allocates and frees the whole struct */
  GMainContext *context;
  ioa_loop *loop;
  ioa_slots_ fds;             /* ioa_glib_fd_ per fd number */
  ioa_glib_watched_ *watched; /* the fds with a tag, in no order */
  ioa_glib_watched_ *batch;   /* dispatch's copy of watched: same capacity */
  size_t nwatched, cap;
  unsigned gen;
  gint posted; /* atomic: a post is waiting */
  gint64 ready_us;
  ioa_host_timer_ deadline;
} ioa_glib_source_;

static gboolean ioa_glib_prepare_(GSource *source, gint *timeout) {
  *timeout = -1; /* GLib derives it from the ready time */
  return g_atomic_int_get(&((ioa_glib_source_ *)source)->posted) != 0;
}

static gboolean ioa_glib_check_(GSource *source) {
  /* Watched fds with events and a reached ready time make GLib dispatch
   * the source by themselves. */
  return g_atomic_int_get(&((ioa_glib_source_ *)source)->posted) != 0;
}

static gboolean ioa_glib_dispatch_(GSource *source, GSourceFunc cb, gpointer user_data) {
  ioa_glib_source_ *s = (ioa_glib_source_ *)source;
  (void)cb, (void)user_data;
  /* Callbacks may stop watchers and start new ones, on reused fd numbers
   * too: walk a copy, and skip any fd whose registration changed since
   * (a new registration has not been polled, so it has nothing to give). */
  size_t n = s->nwatched;
  if (n)
    memcpy(s->batch, s->watched, n * sizeof *s->batch);
  for (size_t i = 0; i < n; i++) {
    ioa_glib_fd_ *rec = (ioa_glib_fd_ *)ioa_slots_get_(&s->fds, s->batch[i].fd);
    if (!rec || !rec->tag || rec->gen != s->batch[i].gen)
      continue;
    GIOCondition c = g_source_query_unix_fd(source, rec->tag);
    unsigned rev = ((c & G_IO_IN) ? (unsigned)IOA_READ : 0u) |
                   ((c & G_IO_OUT) ? (unsigned)IOA_WRITE : 0u) |
                   ((c & (G_IO_ERR | G_IO_NVAL)) ? (unsigned)IOA_ERROR : 0u) |
                   ((c & G_IO_HUP) ? (unsigned)IOA_HUP : 0u);
    if (rev)
      ioa_loop_backend_io(s->loop, s->batch[i].fd, rev);
  }
  if (g_atomic_int_compare_and_exchange(&s->posted, 1, 0))
    ioa_loop_backend_wakeup(s->loop);
  if (s->deadline.armed && g_source_get_time(source) >= s->ready_us) {
    ioa_host_timer_fired_(&s->deadline);
    g_source_set_ready_time(source, -1);
    ioa_loop_backend_timeout(s->loop);
  }
  return G_SOURCE_CONTINUE;
}

static void ioa_glib_finalize_(GSource *source) {
  ioa_glib_source_ *s = (ioa_glib_source_ *)source;
  ioa_slots_free_(&s->fds);
  g_free(s->watched);
  g_free(s->batch);
  if (s->context)
    g_main_context_unref(s->context);
}

static int ioa_glib_io_update_(void *ctx, int fd, unsigned old_events, unsigned new_events) {
  ioa_glib_source_ *s = (ioa_glib_source_ *)ctx;
  GIOCondition cond = (GIOCondition)(((new_events & IOA_READ) ? G_IO_IN : 0) |
                                     ((new_events & IOA_WRITE) ? G_IO_OUT : 0));
  (void)old_events;
  if (fd < 0)
    return -EBADF;
  ioa_glib_fd_ *rec = (ioa_glib_fd_ *)(cond ? ioa_slots_make_(&s->fds, fd)
                                            : ioa_slots_get_(&s->fds, fd));
  if (!rec)
    return cond ? -ENOMEM : 0;
  if (!cond) {
    if (rec->tag) {
      g_source_remove_unix_fd(&s->source, rec->tag);
      rec->tag = NULL;
      ioa_glib_watched_ last = s->watched[--s->nwatched];
      s->watched[rec->idx] = last;
      ((ioa_glib_fd_ *)ioa_slots_get_(&s->fds, last.fd))->idx = rec->idx;
    }
    return 0;
  }
  if (rec->tag) {
    if (rec->cond != cond) {
      g_source_modify_unix_fd(&s->source, rec->tag, cond);
      rec->cond = cond;
    }
    return 0;
  }
  if (s->nwatched == s->cap) { /* grown here, so dispatch never allocates */
    size_t cap = s->cap ? 2 * s->cap : 64;
    ioa_glib_watched_ *w = (ioa_glib_watched_ *)g_try_realloc(s->watched, cap * sizeof *w);
    if (!w)
      return -ENOMEM;
    s->watched = w;
    ioa_glib_watched_ *b = (ioa_glib_watched_ *)g_try_realloc(s->batch, cap * sizeof *b);
    if (!b)
      return -ENOMEM;
    s->batch = b;
    s->cap = cap;
  }
  rec->tag = g_source_add_unix_fd(&s->source, fd, cond);
  rec->cond = cond;
  rec->gen = ++s->gen;
  rec->idx = s->nwatched;
  s->watched[s->nwatched].fd = fd;
  s->watched[s->nwatched].gen = rec->gen;
  s->nwatched++;
  return 0;
}

static void ioa_glib_timer_update_(void *ctx, int64_t timeout_ms) {
  ioa_glib_source_ *s = (ioa_glib_source_ *)ctx;
  if (!ioa_host_timer_update_(&s->deadline, s->loop, timeout_ms))
    return;
  s->ready_us = timeout_ms < 0 ? -1 : g_get_monotonic_time() + timeout_ms * 1000;
  g_source_set_ready_time(&s->source, s->ready_us);
}

static void ioa_glib_wakeup_(void *ctx) { /* any thread */
  ioa_glib_source_ *s = (ioa_glib_source_ *)ctx;
  g_atomic_int_set(&s->posted, 1);
  g_main_context_wakeup(s->context);
}

static void ioa_glib_cleanup_(void *ctx) {
  ioa_glib_source_ *s = (ioa_glib_source_ *)ctx;
  g_source_destroy(&s->source); /* removes its fds from the context */
  g_source_unref(&s->source);   /* finalize frees the rest */
}

/* Create an ioasync loop as a GSource attached to context (NULL: the
 * default main context).  Returns 0, IOA_EBADPARAM (out NULL, or opts not
 * filled by ioa_loop_options_init) or -ENOMEM.  Free it with
 * ioa_loop_free(). */
static inline int ioa_glib_attach(GMainContext *context, const ioa_loop_options *opts,
                                  ioa_loop **out) {
  static GSourceFuncs funcs = {ioa_glib_prepare_, ioa_glib_check_, ioa_glib_dispatch_,
                               ioa_glib_finalize_, NULL, NULL};
  if (!out)
    return IOA_EBADPARAM;
  if (!context)
    context = g_main_context_default();
  GSource *source = g_source_new(&funcs, sizeof(ioa_glib_source_));
  ioa_glib_source_ *s = (ioa_glib_source_ *)source;
  ioa_slots_init_(&s->fds, sizeof(ioa_glib_fd_));
  s->ready_us = -1;
  /* No keepalive: a GMainContext does not stop by itself (ioa_glib_run). */
  int r = ioa_adapter_loop_new_(opts, s, ioa_glib_io_update_, ioa_glib_timer_update_,
                                 ioa_glib_wakeup_, ioa_glib_cleanup_, NULL, &s->loop);
  if (r < 0) /* the cleanup hook destroyed (not yet attached) and unref'ed source */
    return r;
  s->context = g_main_context_ref(context);
  g_source_set_name(source, "ioasync");
  g_source_attach(source, context);
  *out = s->loop;
  return 0;
}

/* Iterate context (NULL: the default one) until loop has no work left:
 * watchers, timers, defers or references (ioa_loop_active() is 0).  The
 * calling thread must own context or be able to acquire it. */
static inline void ioa_glib_run(GMainContext *context, ioa_loop *loop) {
  while (ioa_loop_active(loop) > 0)
    g_main_context_iteration(context, TRUE);
}

#endif
