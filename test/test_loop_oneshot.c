/* SPDX-License-Identifier: MIT */
/* Loop internals the connector's fast path uses.
 *
 * One-shot fd watchers (ioa__io_start_oneshot): the event comes once,
 * stopping afterwards leaves the kernel's disarmed registration behind
 * without a syscall, and every way the fd can go on — restarted while open,
 * re-armed, closed and its number reused, dup'd and the original closed —
 * still gets exactly the events it asks for.
 *
 * The spare block (ioa__loop_spare_*): given back, taken only at the same
 * size, a second one freed, the kept one freed with the loop (ASan). */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_internal.h"

struct hits {
  int n;
  unsigned last;
  int stop_in_cb;
};

static void count_cb(ioa_io *io, unsigned revents, void *data) {
  struct hits *h = data;
  h->n++;
  h->last = revents;
  if (h->stop_in_cb)
    ioa_io_stop(io);
}

static void pair(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* A few bounded non-blocking iterations. */
static void spin(ioa_loop *loop) {
  for (int i = 0; i < 3; i++)
    assert_true(ioa_loop_run(loop, IOA_RUN_NOWAIT) >= 0);
}

/* A one-shot write watcher on fd that fired once and stopped itself in its
 * callback: the disarmed registration several tests start from. */
static void fire_oneshot_once(ioa_loop *loop, ioa_io *io, int fd, struct hits *h) {
  *h = (struct hits){.stop_in_cb = 1};
  ioa_io_init(loop, io, fd, count_cb, h);
  assert_int_equal(ioa__io_start_oneshot(io, IOA_WRITE), 0);
  spin(loop);
  assert_int_equal(h->n, 1);
}

static void test_oneshot_fires_once(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  pair(sv);
  struct hits h = {0};
  ioa_io io;
  ioa_io_init(loop, &io, sv[0], count_cb, &h);
  assert_int_equal(ioa__io_start_oneshot(&io, IOA_WRITE), 0);
  spin(loop);
  /* Level-triggered writability would fire every iteration; one-shot once. */
  assert_int_equal(h.n, 1);
  assert_true(h.last & IOA_WRITE);
  assert_true(ioa_io_active(&io));
  /* Starting it again re-arms it. */
  assert_int_equal(ioa__io_start_oneshot(&io, IOA_WRITE), 0);
  spin(loop);
  assert_int_equal(h.n, 2);
  ioa_io_stop(&io);
  assert_false(ioa_io_active(&io));
  close(sv[0]);
  close(sv[1]);
  ioa_loop_free(loop);
}

static void test_restart_after_fired_stop_on_open_fd(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  pair(sv);
  struct hits h;
  ioa_io io;
  fire_oneshot_once(loop, &io, sv[0], &h);
  assert_false(ioa_io_active(&io));
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0); /* nothing active */

  /* The fd stays open (as when a connected fd is handed to a stream): a new
   * watcher on it takes the disarmed registration over and gets events. */
  struct hits h2 = {0};
  ioa_io io2;
  ioa_io_init(loop, &io2, sv[0], count_cb, &h2);
  assert_int_equal(ioa_io_start(&io2, IOA_READ), 0);
  spin(loop);
  assert_int_equal(h2.n, 0);
  assert_int_equal(write(sv[1], "x", 1), 1);
  spin(loop);
  assert_true(h2.n >= 1);
  assert_true(h2.last & IOA_READ);
  ioa_io_stop(&io2);
  /* Stopped normally: the registration is gone, so no event reaches
   * anybody even though the fd is readable and writable. */
  h2.n = 0;
  spin(loop);
  assert_int_equal(h2.n, 0);
  assert_int_equal(h.n, 1);
  /* And a plain start after that adds it afresh. */
  assert_int_equal(ioa_io_start(&io2, IOA_WRITE), 0);
  spin(loop);
  assert_true(h2.n >= 1);
  ioa_io_stop(&io2);
  close(sv[0]);
  close(sv[1]);
  ioa_loop_free(loop);
}

static void test_stop_before_fire_removes_registration(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  pair(sv);
  struct hits h = {0};
  ioa_io io;
  ioa_io_init(loop, &io, sv[0], count_cb, &h);
  assert_int_equal(ioa__io_start_oneshot(&io, IOA_READ), 0);
  spin(loop);
  assert_int_equal(h.n, 0); /* nothing to read yet */
  ioa_io_stop(&io);
  assert_int_equal(write(sv[1], "x", 1), 1);
  spin(loop);
  assert_int_equal(h.n, 0);
  /* Not fired: stop removed it, so a plain start adds without conflict. */
  assert_int_equal(ioa_io_start(&io, IOA_READ), 0);
  spin(loop);
  assert_true(h.n >= 1);
  ioa_io_stop(&io);
  close(sv[0]);
  close(sv[1]);
  ioa_loop_free(loop);
}

static void test_fd_number_reused_after_fired_stop(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  pair(sv);
  struct hits h;
  ioa_io io;
  fire_oneshot_once(loop, &io, sv[0], &h);
  int old = sv[0];
  close(sv[0]); /* the connector's user closes the connected fd */
  close(sv[1]);
  int nv[2];
  pair(nv);
  assert_int_equal(nv[0], old); /* lowest free number: the same one */
  struct hits h2 = {0};
  ioa_io io2;
  ioa_io_init(loop, &io2, nv[0], count_cb, &h2);
  assert_int_equal(ioa__io_start_oneshot(&io2, IOA_WRITE), 0);
  spin(loop);
  assert_int_equal(h2.n, 1);
  assert_int_equal(h.n, 1); /* the old watcher heard nothing more */
  ioa_io_stop(&io2);
  close(nv[0]);
  close(nv[1]);
  ioa_loop_free(loop);
}

static void test_dup_then_close_original_stays_quiet(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  pair(sv);
  struct hits h;
  ioa_io io;
  fire_oneshot_once(loop, &io, sv[0], &h);
  /* The file outlives the fd number the registration was made under: a
   * disarmed registration must not turn into a stream of events. */
  int d = dup(sv[0]);
  assert_true(d >= 0);
  close(sv[0]);
  assert_int_equal(write(sv[1], "x", 1), 1);
  struct hits h2 = {0};
  ioa_io other;
  ioa_io_init(loop, &other, sv[1], count_cb, &h2);
  assert_int_equal(ioa_io_start(&other, IOA_WRITE), 0);
  for (int i = 0; i < 5; i++)
    assert_int_equal(ioa_loop_run(loop, IOA_RUN_ONCE), 1);
  assert_int_equal(h2.n, 5); /* every iteration woke for the live watcher only */
  assert_int_equal(h.n, 1);
  ioa_io_stop(&other);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_NOWAIT), 0);
  close(d);
  close(sv[1]);
  ioa_loop_free(loop);
}

static void test_spare_block(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  assert_null(ioa__loop_spare_take(loop, 64));
  void *a = malloc(64), *b = malloc(64);
  assert_non_null(a);
  assert_non_null(b);
  ioa__loop_spare_give(loop, a, 64);
  ioa__loop_spare_give(loop, b, 64); /* one is kept: b is freed */
  assert_null(ioa__loop_spare_take(loop, 72));
  assert_ptr_equal(ioa__loop_spare_take(loop, 64), a);
  assert_null(ioa__loop_spare_take(loop, 64)); /* taken: gone */
  ioa__loop_spare_give(loop, a, 64);            /* kept until the loop goes */
  ioa_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_oneshot_fires_once),
      IOA_TEST(test_restart_after_fired_stop_on_open_fd),
      IOA_TEST(test_stop_before_fire_removes_registration),
      IOA_TEST(test_fd_number_reused_after_fired_stop),
      IOA_TEST(test_dup_then_close_original_stays_quiet),
      IOA_TEST(test_spare_block),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
