/* SPDX-License-Identifier: MIT */
/* The one intrusive list: circular, doubly linked, with a sentinel head (as
 * Linux's list_head and libuv's queue).  A node embedded in an object links
 * it into at most one list per node; IOA__CONTAINER_OF gets the object back.
 * Unlinking is O(1) and needs no knowledge of which list holds the node, and
 * a removed node points at itself, so removing it again is harmless.
 */
#ifndef IOA_LIST_H
#define IOA_LIST_H

#include <stddef.h>

#include "ioasync/common.h" /* struct ioa__list: handle structs embed it */

typedef struct ioa__list ioa__list;

#define IOA__CONTAINER_OF(ptr, type, member)                                                       \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* A head (or a node not in any list) points at itself. */
static inline void ioa__list_init(ioa__list *h) { h->prev = h->next = h; }
static inline int ioa__list_empty(const ioa__list *h) { return h->next == h; }
/* Non-zero if node n is in some list. */
static inline int ioa__list_linked(const ioa__list *n) { return n->next != n; }

static inline void ioa__list_insert_after(ioa__list *at, ioa__list *n) {
  n->prev = at;
  n->next = at->next;
  at->next->prev = n;
  at->next = n;
}
static inline void ioa__list_push_front(ioa__list *h, ioa__list *n) { ioa__list_insert_after(h, n); }
static inline void ioa__list_push_back(ioa__list *h, ioa__list *n) {
  ioa__list_insert_after(h->prev, n);
}

static inline void ioa__list_remove(ioa__list *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  ioa__list_init(n);
}

/* The first node, or NULL if the list is empty. */
static inline ioa__list *ioa__list_first(const ioa__list *h) {
  return h->next == h ? NULL : h->next;
}

/* Move every node of src to the end of dst; src becomes empty. */
static inline void ioa__list_splice_back(ioa__list *dst, ioa__list *src) {
  if (ioa__list_empty(src))
    return;
  src->next->prev = dst->prev;
  dst->prev->next = src->next;
  src->prev->next = dst;
  dst->prev = src->prev;
  ioa__list_init(src);
}

/* Iterate; the _safe form allows removing the current node. */
#define IOA__LIST_FOREACH(n, h) for (ioa__list *n = (h)->next; n != (h); n = n->next)
#define IOA__LIST_FOREACH_SAFE(n, h)                                                               \
  for (ioa__list *n = (h)->next, *n##_next_ = n->next; n != (h); n = n##_next_, n##_next_ = n->next)

#endif
