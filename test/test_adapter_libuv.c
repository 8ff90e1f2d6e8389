/* SPDX-License-Identifier: MIT */
/* The same ioasync loop core driven by libuv through the header-only adapter:
 * timers, defers, fd watchers and cross-thread posts all fire from uv_run. */
#include "testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "ioasync/adapters/libuv.h"

struct ctx {
  ioa_timer t;
  ioa_defer d;
  ioa_io io;
  ioa_post post;
  int timer_fired, defer_ran, io_reads, posted;
  int rfd, wfd;
};

static void on_timer(ioa_timer *t, void *data) {
  struct ctx *c = data;
  (void)t;
  c->timer_fired++;
  ioa_defer_start(&c->d); /* a defer queued from a timer runs from uv too */
}
static void on_defer(ioa_defer *d, void *data) {
  struct ctx *c = data;
  (void)d;
  c->defer_ran++;
  assert_int_equal(write(c->wfd, "x", 1), 1);
}
static void on_read(ioa_io *io, unsigned revents, void *data) {
  struct ctx *c = data;
  char b[8];
  assert_true(revents & IOA_READ);
  assert_true(read(c->rfd, b, sizeof b) > 0);
  c->io_reads++;
  ioa_io_stop(io);
}
static void on_post(ioa_post *p, void *data) {
  struct ctx *c = data;
  (void)p;
  c->posted++;
}
static void *poster(void *arg) {
  struct ctx *c = arg;
  ioa_loop_post(c->t.loop_, &c->post, on_post, c);
  return NULL;
}

static void test_loop_core_on_libuv(void **state) {
  (void)state;
  uv_loop_t uv;
  assert_int_equal(uv_loop_init(&uv), 0);
  ioa_loop *loop = NULL;
  assert_int_equal(ioa_uv_attach(&uv, NULL, &loop), 0);

  struct ctx c = {0};
  int fds[2];
  assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  c.rfd = fds[0];
  c.wfd = fds[1];
  ioa_timer_init(loop, &c.t, on_timer, &c);
  ioa_defer_init(loop, &c.d, on_defer, &c);
  ioa_io_init(loop, &c.io, c.rfd, on_read, &c);
  assert_int_equal(ioa_io_start(&c.io, IOA_READ), 0);
  assert_int_equal(ioa_timer_start(&c.t, 2000000, 0), 0);

  /* Bounded: each uv_run(ONCE) handles at least one event. */
  for (int i = 0; i < 100 && c.io_reads == 0; i++)
    uv_run(&uv, UV_RUN_ONCE);
  assert_int_equal(c.timer_fired, 1);
  assert_int_equal(c.defer_ran, 1);
  assert_int_equal(c.io_reads, 1);

  /* A reference (as a resolver holds while its thread works) keeps uv_run
   * alive until the post arrives; without one uv_run returns at once. */
  assert_int_equal(uv_run(&uv, UV_RUN_NOWAIT), 0);
  ioa_loop_ref(loop);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, poster, &c), 0);
  for (int i = 0; i < 100 && c.posted == 0; i++)
    uv_run(&uv, UV_RUN_ONCE);
  pthread_join(th, NULL);
  assert_int_equal(c.posted, 1);
  ioa_loop_unref(loop);
  assert_int_equal(uv_run(&uv, UV_RUN_NOWAIT), 0); /* nothing keeps uv alive now */

  ioa_loop_free(loop);
  uv_run(&uv, UV_RUN_DEFAULT); /* finish the adapter's uv_close calls */
  assert_int_equal(uv_loop_close(&uv), 0);
  close(c.rfd);
  close(c.wfd);
}

int main(void) {
  /* libuv opens a process-wide signal pipe with its first loop and keeps it;
   * open it here, outside the fd-count window of the test. */
  uv_loop_t warm;
  if (uv_loop_init(&warm) == 0)
    uv_loop_close(&warm);
  const struct CMUnitTest tests[] = {IOA_TEST(test_loop_core_on_libuv)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
