/* SPDX-License-Identifier: MIT */
/* "Free me from inside my own callback": the re-entrancy guard shared by
 * streams, sockets and connect requests.
 *
 * Every entry point that can reach user code (a loop callback, or an API
 * call that runs callbacks) brackets its work with enter/leave.  Freeing the
 * object while anything is inside only marks it released; the code inside
 * sees that on its way out (ioa__guard_leave returns non-zero: touch nothing
 * more and unwind), and the outermost entry point destroys the memory.  So a
 * callback may free the object that called it, at any depth.
 */
#ifndef IOA_GUARD_H
#define IOA_GUARD_H

#include <assert.h>

typedef struct ioa__guard {
  unsigned depth;    /* entry points on the stack */
  unsigned released; /* the owner asked for the object to go */
} ioa__guard;

static inline void ioa__guard_enter(ioa__guard *g) { g->depth++; }

/* Leave an inner level.  Non-zero: the object was released meanwhile; the
 * caller must stop using it (its memory stays valid until the outermost
 * level leaves). */
static inline int ioa__guard_leave(ioa__guard *g) {
  assert(g->depth > 0);
  g->depth--;
  return g->released != 0;
}

/* Leave the outermost level of an entry point.  Non-zero: the object was
 * released and nothing else is inside: destroy it now. */
static inline int ioa__guard_leave_last(ioa__guard *g) {
  assert(g->depth > 0);
  return --g->depth == 0 && g->released;
}

/* Mark the object released.  Non-zero: nothing is inside, so the caller
 * destroys it at once; otherwise the outermost leave will. */
static inline int ioa__guard_release(ioa__guard *g) {
  g->released = 1;
  return g->depth == 0;
}

static inline int ioa__guard_released(const ioa__guard *g) { return g->released != 0; }

#endif
