/* SPDX-License-Identifier: MIT */
/* The shared internals every module builds on: src/list.h (the one
 * intrusive list) and src/guard.h (the one re-entrancy guard). */
#include "testutil.h"

#include "guard.h"
#include "list.h"

typedef struct item {
  int value;
  ioa__list node;
} item;

#define ITEM(n) IOA__CONTAINER_OF(n, item, node)

/* The values of h's items, front to back, into out; returns the count.
 * Also checks every back link on the way. */
static size_t values(const ioa__list *h, int *out, size_t max) {
  size_t k = 0;
  const ioa__list *prev = h;
  IOA__LIST_FOREACH(n, h) {
    assert_ptr_equal(n->prev, prev);
    assert_true(k < max);
    out[k++] = ITEM(n)->value;
    prev = n;
  }
  assert_ptr_equal(h->prev, prev);
  return k;
}

static void list_push_remove_order(void **state) {
  (void)state;
  item it[5];
  ioa__list h;
  ioa__list_init(&h);
  assert_true(ioa__list_empty(&h));
  assert_null(ioa__list_first(&h));
  for (int i = 0; i < 5; i++) {
    it[i].value = i;
    ioa__list_init(&it[i].node);
    assert_false(ioa__list_linked(&it[i].node));
  }
  ioa__list_push_back(&h, &it[1].node);
  ioa__list_push_back(&h, &it[2].node);
  ioa__list_push_front(&h, &it[0].node);
  ioa__list_insert_after(&it[2].node, &it[4].node);
  ioa__list_insert_after(&it[2].node, &it[3].node);
  int v[8];
  assert_int_equal(values(&h, v, 8), 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(v[i], i);
  assert_ptr_equal(ioa__list_first(&h), &it[0].node);
  assert_true(ioa__list_linked(&it[3].node));

  /* Unlinking needs no list; a removed node is unlinked and removing it
   * again changes nothing. */
  ioa__list_remove(&it[2].node);
  assert_false(ioa__list_linked(&it[2].node));
  ioa__list_remove(&it[2].node);
  ioa__list_remove(&it[0].node);
  assert_int_equal(values(&h, v, 8), 3);
  assert_int_equal(v[0], 1);
  assert_int_equal(v[1], 3);
  assert_int_equal(v[2], 4);
  assert_ptr_equal(ioa__list_first(&h), &it[1].node);
}

static void list_foreach_safe_removes(void **state) {
  (void)state;
  item it[6];
  ioa__list h;
  ioa__list_init(&h);
  for (int i = 0; i < 6; i++) {
    it[i].value = i;
    ioa__list_push_back(&h, &it[i].node);
  }
  int visited = 0;
  IOA__LIST_FOREACH_SAFE(n, &h) {
    visited++;
    if (ITEM(n)->value % 2 == 0)
      ioa__list_remove(n); /* the current node: allowed here */
  }
  assert_int_equal(visited, 6);
  int v[8];
  assert_int_equal(values(&h, v, 8), 3);
  assert_int_equal(v[0], 1);
  assert_int_equal(v[1], 3);
  assert_int_equal(v[2], 5);
  IOA__LIST_FOREACH_SAFE(n, &h) ioa__list_remove(n);
  assert_true(ioa__list_empty(&h));
}

static void list_splice(void **state) {
  (void)state;
  item it[5];
  ioa__list a, b;
  ioa__list_init(&a);
  ioa__list_init(&b);
  for (int i = 0; i < 5; i++)
    it[i].value = i;
  /* Empty into empty, then empty into non-empty: nothing moves. */
  ioa__list_splice_back(&a, &b);
  assert_true(ioa__list_empty(&a));
  ioa__list_push_back(&a, &it[0].node);
  ioa__list_push_back(&a, &it[1].node);
  ioa__list_splice_back(&a, &b);
  int v[8];
  assert_int_equal(values(&a, v, 8), 2);
  /* Non-empty into non-empty: appended in order, the source emptied. */
  for (int i = 2; i < 5; i++)
    ioa__list_push_back(&b, &it[i].node);
  ioa__list_splice_back(&a, &b);
  assert_true(ioa__list_empty(&b));
  assert_int_equal(values(&a, v, 8), 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(v[i], i);
  /* Into an empty list: the source's nodes and order, unchanged. */
  ioa__list_splice_back(&b, &a);
  assert_true(ioa__list_empty(&a));
  assert_int_equal(values(&b, v, 8), 5);
  assert_int_equal(v[4], 4);
}

/* guard.h: an object freed from inside its own callbacks, at any depth. */
typedef struct obj {
  ioa__guard guard;
  int destroyed;
} obj;

static void obj_release(obj *o) {
  if (ioa__guard_release(&o->guard))
    o->destroyed++;
}

static void guard_release_outside(void **state) {
  (void)state;
  obj o = {0};
  assert_false(ioa__guard_released(&o.guard));
  obj_release(&o); /* nobody inside: destroyed at once */
  assert_int_equal(o.destroyed, 1);
  assert_true(ioa__guard_released(&o.guard));
}

static void guard_release_nested(void **state) {
  (void)state;
  obj o = {0};
  ioa__guard_enter(&o.guard); /* an entry point (a loop callback) */
  ioa__guard_enter(&o.guard); /* a user callback it runs */
  ioa__guard_enter(&o.guard); /* a callback that one runs */
  obj_release(&o);            /* freed from the innermost */
  assert_int_equal(o.destroyed, 0);
  assert_true(ioa__guard_leave(&o.guard)); /* every level sees it and unwinds */
  assert_true(ioa__guard_leave(&o.guard));
  assert_true(ioa__guard_leave_last(&o.guard)); /* the outermost destroys */
  assert_int_equal(o.guard.depth, 0);
}

static void guard_no_release(void **state) {
  (void)state;
  obj o = {0};
  ioa__guard_enter(&o.guard);
  ioa__guard_enter(&o.guard);
  assert_false(ioa__guard_leave(&o.guard));
  assert_false(ioa__guard_leave_last(&o.guard));
  /* A second entry point after the first finished: still alive. */
  ioa__guard_enter(&o.guard);
  assert_false(ioa__guard_leave_last(&o.guard));
  assert_false(ioa__guard_released(&o.guard));
}

static void guard_inner_leave_last_is_not_last(void **state) {
  (void)state;
  obj o = {0};
  ioa__guard_enter(&o.guard);
  ioa__guard_enter(&o.guard);
  obj_release(&o);
  /* An inner entry point (an API call made from a callback) leaving with
   * leave_last must not destroy: the outer one is still on the stack. */
  assert_false(ioa__guard_leave_last(&o.guard));
  assert_true(ioa__guard_leave_last(&o.guard));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(list_push_remove_order),
      IOA_TEST(list_foreach_safe_removes),
      IOA_TEST(list_splice),
      IOA_TEST(guard_release_outside),
      IOA_TEST(guard_release_nested),
      IOA_TEST(guard_no_release),
      IOA_TEST(guard_inner_leave_last_is_not_last),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
