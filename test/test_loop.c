/* SPDX-License-Identifier: MIT */
/* The event loop: timers, defers, fd watchers, posts, run modes, dispatch
 * that survives callbacks stopping or freeing handles, foreign backends. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>

#define MS 1000000ull

/* ---------------------------------------------------------------- timers */

struct order {
  int seen[16];
  int n;
};
struct tagged_timer {
  ioa_timer t;
  struct order *order;
  int tag;
};

static void record_timer(ioa_timer *t, void *data) {
  struct tagged_timer *tt = data;
  (void)t;
  tt->order->seen[tt->order->n++] = tt->tag;
}

static void test_timers_fire_in_deadline_order(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct order order = {0};
  struct tagged_timer tt[5];
  const uint64_t delays[5] = {30, 10, 20, 10, 0};
  for (int i = 0; i < 5; i++) {
    tt[i].order = &order;
    tt[i].tag = i;
    ioa_timer_init(loop, &tt[i].t, record_timer, &tt[i]);
    assert_int_equal(ioa_timer_start(&tt[i].t, delays[i] * MS, 0), 0);
  }
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  /* Equal deadlines fire in start order (1 before 3). */
  const int want[5] = {4, 1, 3, 2, 0};
  assert_int_equal(order.n, 5);
  assert_memory_equal(order.seen, want, sizeof want);
  ioa_loop_free(loop);
}

struct repeat_ctx {
  ioa_timer t;
  int fired;
  int limit;
};
static void repeat_cb(ioa_timer *t, void *data) {
  struct repeat_ctx *c = data;
  if (++c->fired == c->limit)
    ioa_timer_stop(t);
}

static void test_repeating_timer_stops_itself(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct repeat_ctx c = {.limit = 5};
  ioa_timer_init(loop, &c.t, repeat_cb, &c);
  assert_int_equal(ioa_timer_start(&c.t, 1 * MS, 1 * MS), 0);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  assert_int_equal(c.fired, 5);
  assert_false(ioa_timer_active(&c.t));
  ioa_loop_free(loop);
}

struct stopper {
  ioa_timer a, b;
  int a_fired, b_fired;
};
static void stop_other(ioa_timer *t, void *data) {
  struct stopper *s = data;
  (void)t;
  s->a_fired++;
  ioa_timer_stop(&s->b);
}
static void count_b(ioa_timer *t, void *data) {
  struct stopper *s = data;
  (void)t;
  s->b_fired++;
}

static void test_timer_stops_another_due_in_same_iteration(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct stopper s = {0};
  ioa_timer_init(loop, &s.a, stop_other, &s);
  ioa_timer_init(loop, &s.b, count_b, &s);
  /* Both due at once: a was started first so runs first and stops b. */
  assert_int_equal(ioa_timer_start(&s.a, 0, 0), 0);
  assert_int_equal(ioa_timer_start(&s.b, 0, 0), 0);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  assert_int_equal(s.a_fired, 1);
  assert_int_equal(s.b_fired, 0);
  ioa_loop_free(loop);
}

static void free_self_timer(ioa_timer *t, void *data) {
  int *fired = data;
  (*fired)++;
  free(t); /* ASan reports any later touch */
}

static void test_timer_frees_itself(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int fired = 0;
  ioa_timer *t = malloc(sizeof *t);
  assert_non_null(t);
  ioa_timer_init(loop, t, free_self_timer, &fired);
  assert_int_equal(ioa_timer_start(t, 0, 0), 0);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  assert_int_equal(fired, 1);
  ioa_loop_free(loop);
}

static void test_restart_reschedules(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct order order = {0};
  struct tagged_timer a = {.order = &order, .tag = 1}, b = {.order = &order, .tag = 2};
  ioa_timer_init(loop, &a.t, record_timer, &a);
  ioa_timer_init(loop, &b.t, record_timer, &b);
  assert_int_equal(ioa_timer_start(&a.t, 1 * MS, 0), 0);
  assert_int_equal(ioa_timer_start(&b.t, 5 * MS, 0), 0);
  assert_int_equal(ioa_timer_start(&a.t, 10 * MS, 0), 0); /* now after b */
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  assert_int_equal(order.n, 2);
  assert_int_equal(order.seen[0], 2);
  assert_int_equal(order.seen[1], 1);
  ioa_loop_free(loop);
}

/* A timeout near UINT64_MAX means "practically never": now + timeout must
 * not wrap into the past and fire at once; nor may a huge repeat period. */
struct count_timer {
  ioa_timer t;
  int fired;
  int stop_after;
};

static void count_and_maybe_stop(ioa_timer *t, void *data) {
  struct count_timer *ct = data;
  ct->fired++;
  if (ct->stop_after && ct->fired >= ct->stop_after)
    ioa_timer_stop(t);
}

static void test_huge_timeouts_do_not_wrap(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct count_timer far = {0}, far_repeat = {.stop_after = 5}, near = {0};
  ioa_timer_init(loop, &far.t, count_and_maybe_stop, &far);
  ioa_timer_init(loop, &far_repeat.t, count_and_maybe_stop, &far_repeat);
  ioa_timer_init(loop, &near.t, count_and_maybe_stop, &near);
  assert_int_equal(ioa_timer_start(&far.t, UINT64_MAX, 0), 0);
  assert_int_equal(ioa_timer_start(&far_repeat.t, 0, UINT64_MAX - 10), 0);
  assert_int_equal(ioa_timer_start(&near.t, 5 * MS, 0), 0);
  for (int i = 0; i < 1000 && !near.fired; i++)
    assert_true(ioa_loop_run(loop, IOA_RUN_ONCE) >= 0);
  assert_int_equal(near.fired, 1);
  assert_int_equal(far.fired, 0);
  assert_int_equal(far_repeat.fired, 1); /* once at 0, the next period never comes */
  assert_true(ioa_timer_active(&far.t));
  assert_true(ioa_timer_active(&far_repeat.t));
  ioa_timer_stop(&far.t);
  ioa_timer_stop(&far_repeat.t);
  ioa_loop_free(loop);
}

/* A timer callback that re-arms its timer at 0 (retry "as soon as
 * possible") must not keep the loop inside one timer run: I/O, defers and
 * stop get their turn between the firings. */
struct rearm_timer {
  ioa_timer t;
  int fired, limit;
};

static void rearm_at_zero(ioa_timer *t, void *data) {
  struct rearm_timer *r = data;
  if (++r->fired < r->limit) /* the limit only bounds the test if this hangs */
    assert_int_equal(ioa_timer_start(t, 0, 0), 0);
}

static void test_timer_rearmed_at_zero_lets_loop_turn(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct rearm_timer r = {.limit = 100000};
  ioa_timer_init(loop, &r.t, rearm_at_zero, &r);
  assert_int_equal(ioa_timer_start(&r.t, 0, 0), 0);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_NOWAIT), 1);
  /* At most once per timer run (a loop iteration has two). */
  assert_in_range(r.fired, 1, 2);
  int before = r.fired;
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_NOWAIT), 1);
  assert_in_range(r.fired - before, 1, 2); /* and it keeps going, turn by turn */
  ioa_timer_stop(&r.t);
  ioa_loop_free(loop);
}

/* Many timers started and stopped in a scrambled order keep heap order. */
static void test_timer_heap_stress(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  enum { N = 2000 };
  struct tagged_timer *tt = calloc(N, sizeof *tt);
  struct order dummy;
  assert_non_null(tt);
  unsigned seed = 12345;
  for (int i = 0; i < N; i++) {
    tt[i].order = &dummy;
    ioa_timer_init(loop, &tt[i].t, record_timer, &tt[i]);
    seed = seed * 1103515245u + 12345u;
    assert_int_equal(ioa_timer_start_at(&tt[i].t, (seed >> 8) % 100000, 0), 0);
  }
  for (int i = 0; i < N; i += 3)
    ioa_timer_stop(&tt[i].t);
  /* Pop in order by checking the heap root through repeated stops. */
  uint64_t last = 0;
  size_t left = ioa_loop_active(loop);
  for (size_t k = 0; k < left; k++) {
    struct tagged_timer *min = NULL;
    for (int i = 0; i < N; i++)
      if (ioa_timer_active(&tt[i].t) && (!min || tt[i].t.due_ns_ < min->t.due_ns_))
        min = &tt[i];
    assert_non_null(min);
    assert_true(min->t.due_ns_ >= last);
    last = min->t.due_ns_;
    ioa_timer_stop(&min->t);
  }
  assert_int_equal(ioa_loop_active(loop), 0);
  free(tt);
  ioa_loop_free(loop);
}

/* ---------------------------------------------------------------- defers */

struct defer_ctx {
  ioa_defer d[3];
  struct order order;
  int requeue;
  int in_start;
};

static void defer_record(ioa_defer *d, void *data) {
  struct defer_ctx *c = data;
  assert_false(c->in_start);
  int tag = (int)(d - c->d);
  c->order.seen[c->order.n++] = tag;
  if (tag == 0 && c->requeue) {
    c->requeue--;
    ioa_defer_start(d);
  }
  if (tag == 1)
    ioa_defer_stop(&c->d[2]);
}

static void test_defers_run_later_in_fifo_order(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct defer_ctx c = {0};
  for (int i = 0; i < 3; i++)
    ioa_defer_init(loop, &c.d[i], defer_record, &c);
  c.in_start = 1;
  ioa_defer_start(&c.d[0]);
  ioa_defer_start(&c.d[1]);
  ioa_defer_start(&c.d[2]);
  ioa_defer_start(&c.d[0]); /* already queued: no-op */
  c.in_start = 0;
  assert_int_equal(c.order.n, 0); /* nothing ran inside start */
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  /* 0 then 1; 1 stopped 2 which was queued in the same batch. */
  assert_int_equal(c.order.n, 2);
  assert_int_equal(c.order.seen[0], 0);
  assert_int_equal(c.order.seen[1], 1);
  ioa_loop_free(loop);
}

static void test_requeued_defer_waits_for_next_iteration(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct defer_ctx c = {.requeue = 3};
  ioa_defer_init(loop, &c.d[0], defer_record, &c);
  ioa_defer_start(&c.d[0]);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_NOWAIT), 1);
  assert_int_equal(c.order.n, 1);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_NOWAIT), 1);
  assert_int_equal(c.order.n, 2);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  assert_int_equal(c.order.n, 4);
  ioa_loop_free(loop);
}

/* ----------------------------------------------------------- fd watchers */

struct pipe_w {
  ioa_io io;
  int rfd, wfd;
  int reads;
  struct pipe_w *victim; /* stop + free this one from our callback */
  int freed;
};

static void pipe_open(ioa_loop *loop, struct pipe_w *p, ioa_io_cb cb) {
  int fds[2];
  assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  p->rfd = fds[0];
  p->wfd = fds[1];
  ioa_io_init(loop, &p->io, p->rfd, cb, p);
}

static void pipe_close(struct pipe_w *p) {
  ioa_io_stop(&p->io);
  close(p->rfd);
  close(p->wfd);
}

static void on_pipe_read(ioa_io *io, unsigned revents, void *data) {
  struct pipe_w *p = data;
  assert_true(revents & IOA_READ);
  char buf[64];
  assert_true(read(ioa_io_fd(io), buf, sizeof buf) > 0);
  p->reads++;
  if (p->victim && !p->victim->freed) {
    pipe_close(p->victim);
    p->victim->freed = 1;
  }
  ioa_io_stop(io);
}

static void test_io_read_and_stop_other_in_same_batch(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct pipe_w a = {0}, b = {0};
  pipe_open(loop, &a, on_pipe_read);
  pipe_open(loop, &b, on_pipe_read);
  a.victim = &b;
  b.victim = &a;
  assert_int_equal(ioa_io_start(&a.io, IOA_READ), 0);
  assert_int_equal(ioa_io_start(&b.io, IOA_READ), 0);
  /* Both readable before the poll: whichever runs first closes the other,
   * which must then get no callback although its event is in the batch. */
  assert_int_equal(write(a.wfd, "x", 1), 1);
  assert_int_equal(write(b.wfd, "y", 1), 1);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  assert_int_equal(a.reads + b.reads, 1);
  if (!a.freed)
    pipe_close(&a);
  if (!b.freed)
    pipe_close(&b);
  ioa_loop_free(loop);
}

/* fd reuse inside one batch: the new watcher on a recycled fd number must not
 * receive the stale event meant for the old one. */
struct reuse_ctx {
  struct pipe_w a, b, c;
  int c_spurious, c_calls, swapped;
};
static void on_c(ioa_io *io, unsigned revents, void *data) {
  struct reuse_ctx *r = data;
  int avail = 0;
  r->c_calls++;
  assert_int_equal(ioctl(ioa_io_fd(io), FIONREAD, &avail), 0);
  if (avail == 0)
    r->c_spurious++;
  ioa_io_stop(io);
}
static void on_swap(ioa_io *io, unsigned revents, void *data) {
  struct reuse_ctx *r = data;
  struct pipe_w *self = io == &r->a.io ? &r->a : &r->b;
  struct pipe_w *other = self == &r->a ? &r->b : &r->a;
  char buf[8];
  (void)!read(ioa_io_fd(io), buf, sizeof buf);
  ioa_io_stop(io);
  if (r->swapped)
    return;
  r->swapped = 1;
  int old_rfd = other->rfd;
  pipe_close(other);
  other->freed = 1;
  int fds[2];
  assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  r->c.rfd = fds[0];
  r->c.wfd = fds[1];
  /* pipe2 takes the lowest free numbers: the ones just closed. */
  assert_int_equal(r->c.rfd, old_rfd);
  ioa_io_init(io->loop_, &r->c.io, r->c.rfd, on_c, r);
  assert_int_equal(ioa_io_start(&r->c.io, IOA_READ), 0);
}

static void test_io_fd_reuse_gets_no_stale_event(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct reuse_ctx *r = calloc(1, sizeof *r);
  assert_non_null(r);
  int fds[2];
  assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  r->a.rfd = fds[0];
  r->a.wfd = fds[1];
  ioa_io_init(loop, &r->a.io, r->a.rfd, on_swap, r);
  assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  r->b.rfd = fds[0];
  r->b.wfd = fds[1];
  ioa_io_init(loop, &r->b.io, r->b.rfd, on_swap, r);
  assert_int_equal(ioa_io_start(&r->a.io, IOA_READ), 0);
  assert_int_equal(ioa_io_start(&r->b.io, IOA_READ), 0);
  assert_int_equal(write(r->a.wfd, "x", 1), 1);
  assert_int_equal(write(r->b.wfd, "y", 1), 1);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_ONCE), 1); /* c still watched */
  assert_int_equal(r->c_spurious, 0);
  assert_int_equal(r->c_calls, 0); /* c's pipe never had data */
  assert_true(r->swapped);
  if (!r->a.freed)
    pipe_close(&r->a);
  if (!r->b.freed)
    pipe_close(&r->b);
  pipe_close(&r->c);
  free(r);
  ioa_loop_free(loop);
}

static void noop_io(ioa_io *io, unsigned revents, void *data) {
  (void)io;
  (void)revents;
  (void)data;
}

static void test_io_errors(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct pipe_w a = {0};
  pipe_open(loop, &a, noop_io);
  ioa_io second;
  ioa_io_init(loop, &second, a.rfd, noop_io, NULL);
  assert_int_equal(ioa_io_start(&a.io, IOA_READ), 0);
  assert_int_equal(ioa_io_start(&second, IOA_READ), -EEXIST);
  assert_int_equal(ioa_io_start(&a.io, IOA_READ | IOA_WRITE), 0); /* change interest */
  assert_int_equal(ioa_io_start(&a.io, 0), 0);                     /* 0 stops */
  assert_false(ioa_io_active(&a.io));
  ioa_io bad;
  ioa_io_init(loop, &bad, 1 << 20, noop_io, NULL); /* not an open fd */
  assert_int_equal(ioa_io_start(&bad, IOA_READ), -EBADF);
  assert_false(ioa_io_active(&bad));
  ioa_io_stop(&bad); /* harmless */
  pipe_close(&a);
  ioa_loop_free(loop);
}

struct writable_ctx {
  ioa_io io;
  int calls;
};
static void on_writable(ioa_io *io, unsigned revents, void *data) {
  struct writable_ctx *w = data;
  assert_true(revents & IOA_WRITE);
  assert_false(revents & IOA_READ); /* not asked for */
  if (++w->calls == 3)
    ioa_io_stop(io);
}

static void test_io_level_triggered_write(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
  assert_int_equal(write(sv[1], "data", 4), 4); /* sv[0] is readable too */
  struct writable_ctx w = {0};
  ioa_io_init(loop, &w.io, sv[0], on_writable, &w);
  assert_int_equal(ioa_io_start(&w.io, IOA_WRITE), 0);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  assert_int_equal(w.calls, 3);
  close(sv[0]);
  close(sv[1]);
  ioa_loop_free(loop);
}

/* ----------------------------------------------------------------- posts */

#define POST_THREADS 4
#define POSTS_PER_THREAD 2000

struct post_ctx {
  ioa_loop *loop;
  pthread_t loop_thread;
  ioa_post *posts;
  int ran;
  int wrong_thread;
};

static void on_post(ioa_post *p, void *data) {
  struct post_ctx *c = data;
  (void)p;
  if (!pthread_equal(pthread_self(), c->loop_thread))
    c->wrong_thread++;
  if (++c->ran == POST_THREADS * POSTS_PER_THREAD)
    ioa_loop_unref(c->loop);
}

struct poster {
  struct post_ctx *c;
  int idx;
};
static void *poster_main(void *arg) {
  struct poster *p = arg;
  for (int i = 0; i < POSTS_PER_THREAD; i++)
    ioa_loop_post(p->c->loop, &p->c->posts[p->idx * POSTS_PER_THREAD + i], on_post, p->c);
  return NULL;
}

static void test_post_from_threads(void **state) {
  (void)state;
  struct post_ctx c = {0};
  c.loop = ioa_test_new_loop();
  c.loop_thread = pthread_self();
  c.posts = calloc(POST_THREADS * POSTS_PER_THREAD, sizeof *c.posts);
  assert_non_null(c.posts);
  ioa_loop_ref(c.loop); /* keeps RUN_DEFAULT going until the last post */
  pthread_t th[POST_THREADS];
  struct poster ps[POST_THREADS];
  for (int i = 0; i < POST_THREADS; i++) {
    ps[i] = (struct poster){&c, i};
    assert_int_equal(pthread_create(&th[i], NULL, poster_main, &ps[i]), 0);
  }
  assert_int_equal(ioa_loop_run(c.loop, IOA_RUN_DEFAULT), 0);
  for (int i = 0; i < POST_THREADS; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(c.ran, POST_THREADS * POSTS_PER_THREAD);
  assert_int_equal(c.wrong_thread, 0);
  free(c.posts);
  ioa_loop_free(c.loop);
}

/* ------------------------------------------------------------- run modes */

struct stop_ctx {
  ioa_timer t;
  int fired;
  ioa_loop *loop;
};
static void stop_loop_cb(ioa_timer *t, void *data) {
  struct stop_ctx *s = data;
  (void)t;
  s->fired++;
  ioa_loop_stop(s->loop);
  assert_int_equal(ioa_loop_run(s->loop, IOA_RUN_NOWAIT), -EBUSY); /* not re-entrant */
}

/* ioa_loop_unref from another thread on a native loop: the loop may be
 * asleep in epoll_wait with that reference as its only work, so the unref
 * must wake it to notice it is done. */
struct unref_ctx {
  ioa_loop *loop;
  ioa_post post;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int post_ran;
  int watchdog_fired;
};

static void unref_post_cb(ioa_post *p, void *data) {
  struct unref_ctx *c = data;
  (void)p;
  pthread_mutex_lock(&c->mu);
  c->post_ran = 1;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

static void *unref_thread(void *arg) {
  struct unref_ctx *c = arg;
  ioa_loop_post(c->loop, &c->post, unref_post_cb, c);
  pthread_mutex_lock(&c->mu);
  while (!c->post_ran)
    pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  /* Give the loop time to go back to sleep, so the unref below finds it in
   * epoll_wait (the case that needs the wakeup); correctness does not
   * depend on it. */
  usleep(50 * 1000);
  ioa_loop_unref(c->loop);
  return NULL;
}

static void unref_watchdog_cb(ioa_timer *t, void *data) {
  (void)t;
  ((struct unref_ctx *)data)->watchdog_fired = 1;
}

static void test_unref_from_thread_wakes_loop(void **state) {
  (void)state;
  struct unref_ctx c = {.loop = ioa_test_new_loop()};
  pthread_mutex_init(&c.mu, NULL);
  pthread_cond_init(&c.cv, NULL);
  ioa_timer watchdog;
  ioa_timer_init(c.loop, &watchdog, unref_watchdog_cb, &c);
  assert_int_equal(ioa_timer_start(&watchdog, 10ull * 1000000000u, 0), 0);
  ioa_loop_ref(c.loop); /* on the loop thread, before the work is handed over */
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, unref_thread, &c), 0);
  /* Each RUN_ONCE sleeps until something happens: the post, the unref's
   * wakeup, or (without that wakeup) the 10 s watchdog. */
  int done = 0;
  for (int i = 0; i < 100 && !done && !c.watchdog_fired; i++) {
    assert_true(ioa_loop_run(c.loop, IOA_RUN_ONCE) >= 0);
    pthread_mutex_lock(&c.mu);
    done = c.post_ran && ioa_loop_active(c.loop) == 1; /* only the watchdog left */
    pthread_mutex_unlock(&c.mu);
  }
  pthread_join(th, NULL);
  assert_false(c.watchdog_fired);
  assert_true(done);
  ioa_timer_stop(&watchdog);
  assert_int_equal(ioa_loop_active(c.loop), 0);
  ioa_loop_free(c.loop);
  pthread_cond_destroy(&c.cv);
  pthread_mutex_destroy(&c.mu);
}

static void test_run_modes_and_stop(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_NOWAIT), 0);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_ONCE), 0);   /* nothing to wait for */
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  struct stop_ctx s = {.loop = loop};
  ioa_timer_init(loop, &s.t, stop_loop_cb, &s);
  assert_int_equal(ioa_timer_start(&s.t, 1 * MS, 1 * MS), 0);
  /* stop() ends RUN_DEFAULT although the repeating timer is still active */
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 1);
  assert_int_equal(s.fired, 1);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 1);
  assert_int_equal(s.fired, 2);
  ioa_timer_stop(&s.t);
  assert_int_equal(ioa_loop_active(loop), 0);
  ioa_loop_free(loop);
}

static void record_never_timer(ioa_timer *t, void *data) {
  (void)t;
  (*(int *)data)++;
}
static void count_defer(ioa_defer *d, void *data);
static void count_post(ioa_post *p, void *data);

static void test_free_with_live_handles(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  struct pipe_w a = {0};
  pipe_open(loop, &a, noop_io);
  assert_int_equal(ioa_io_start(&a.io, IOA_READ), 0);
  ioa_timer t;
  int never = 0;
  ioa_timer_init(loop, &t, (ioa_timer_cb)record_never_timer, &never);
  assert_int_equal(ioa_timer_start(&t, 1000 * MS, 0), 0);
  ioa_defer d;
  ioa_defer_init(loop, &d, count_defer, &never);
  ioa_defer_start(&d);
  ioa_post p;
  int posted = 0;
  ioa_loop_post(loop, &p, count_post, &posted);
  ioa_loop_free(loop);
  assert_int_equal(never, 0);  /* no timer, watcher or defer callback */
  assert_int_equal(posted, 1); /* queued posts run, so their memory is released */
  /* Detached: stopping afterwards is a harmless no-op. */
  assert_false(ioa_io_active(&a.io));
  assert_false(ioa_timer_active(&t));
  assert_false(ioa_defer_active(&d));
  ioa_io_stop(&a.io);
  ioa_timer_stop(&t);
  ioa_defer_stop(&d);
  close(a.rfd);
  close(a.wfd);
}

static void test_loop_fds_are_cloexec(void **state) {
  (void)state;
  int before = ioa_test_fd_count();
  ioa_loop *loop = ioa_test_new_loop();
  int after = ioa_test_fd_count();
  assert_int_equal(after - before, 2); /* epoll + eventfd */
  int checked = 0;
  for (int fd = 0; fd < 1024 && checked < 2; fd++) {
    char path[64], target[128];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = 0;
    if (strstr(target, "eventpoll") || strstr(target, "eventfd")) {
      assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
      checked++;
    }
  }
  assert_int_equal(checked, 2);
  ioa_loop_free(loop);
}

/* EINTR from a signal during epoll_wait is not an error. */
static void on_alarm(int sig) { (void)sig; }

static void test_eintr_is_retried(void **state) {
  (void)state;
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_alarm; /* no SA_RESTART: epoll_wait returns EINTR */
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
  ioa_loop *loop = ioa_test_new_loop();
  struct repeat_ctx c = {.limit = 1};
  ioa_timer_init(loop, &c.t, repeat_cb, &c);
  assert_int_equal(ioa_timer_start(&c.t, 60 * MS, 0), 0);
  struct itimerval it = {.it_value = {.tv_usec = 10000}};
  assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_DEFAULT), 0);
  assert_int_equal(c.fired, 1);
  struct itimerval off = {0};
  setitimer(ITIMER_REAL, &off, NULL);
  sigaction(SIGALRM, &old, NULL);
  ioa_loop_free(loop);
}

/* --------------------------------------------------------- foreign loops */

struct fake_backend {
  int io_updates;
  unsigned last_events[64];
  int64_t timeout_ms;
  int wakeups;
  int cleaned;
};
static int fb_io_update(void *ctx, int fd, unsigned old_events, unsigned new_events) {
  struct fake_backend *fb = ctx;
  (void)old_events;
  fb->io_updates++;
  if (fd >= 0 && fd < 64)
    fb->last_events[fd] = new_events;
  return 0;
}
static void fb_timer_update(void *ctx, int64_t ms) { ((struct fake_backend *)ctx)->timeout_ms = ms; }
static void fb_wakeup(void *ctx) { ((struct fake_backend *)ctx)->wakeups++; }
static void fb_cleanup(void *ctx) { ((struct fake_backend *)ctx)->cleaned++; }

static void count_defer(ioa_defer *d, void *data) {
  (void)d;
  (*(int *)data)++;
}
static void count_post(ioa_post *p, void *data) {
  (void)p;
  (*(int *)data)++;
}
static void count_io(ioa_io *io, unsigned revents, void *data) {
  (void)io;
  if (revents & IOA_READ)
    (*(int *)data)++;
}

static void test_foreign_backend(void **state) {
  (void)state;
  struct fake_backend fb = {.timeout_ms = -1};
  ioa_loop_backend be;
  ioa_loop *loop = NULL;
  /* Not initialised by ioa_loop_backend_init: refused, nothing made. */
  memset(&be, 0, sizeof be);
  be.io_update = fb_io_update;
  be.timer_update = fb_timer_update;
  be.wakeup = fb_wakeup;
  assert_int_equal(ioa_loop_new_with_backend(NULL, &be, &loop), IOA_EBADPARAM);
  ioa_loop_backend_init(&be);
  be.ctx = &fb;
  be.io_update = fb_io_update;
  be.timer_update = fb_timer_update;
  be.cleanup = fb_cleanup;
  /* wakeup is required */
  assert_int_equal(ioa_loop_new_with_backend(NULL, &be, &loop), IOA_EBADPARAM);
  assert_null(loop);
  be.wakeup = fb_wakeup;
  assert_int_equal(ioa_loop_new_with_backend(NULL, &be, &loop), 0);
  assert_int_equal(ioa_loop_run(loop, IOA_RUN_NOWAIT), -ENOTSUP);

  int io_hits = 0;
  ioa_io io;
  ioa_io_init(loop, &io, 7, count_io, &io_hits);
  assert_int_equal(ioa_io_start(&io, IOA_READ), 0);
  assert_int_equal(fb.last_events[7], IOA_READ);
  ioa_loop_backend_io(loop, 7, IOA_READ);
  assert_int_equal(io_hits, 1);
  ioa_io_stop(&io);
  assert_int_equal(fb.last_events[7], 0);
  ioa_loop_backend_io(loop, 7, IOA_READ); /* stopped: ignored */
  assert_int_equal(io_hits, 1);

  int defers = 0;
  ioa_defer d;
  ioa_defer_init(loop, &d, count_defer, &defers);
  ioa_defer_start(&d);
  assert_int_equal(fb.timeout_ms, 0); /* asks to be called back at once */
  ioa_loop_backend_timeout(loop);
  assert_int_equal(defers, 1);

  struct repeat_ctx c = {.limit = 1};
  ioa_timer_init(loop, &c.t, repeat_cb, &c);
  assert_int_equal(ioa_timer_start(&c.t, 0, 0), 0);
  assert_int_equal(fb.timeout_ms, 0);
  ioa_loop_backend_timeout(loop);
  assert_int_equal(c.fired, 1);
  assert_int_equal(fb.timeout_ms, -1); /* nothing left */

  int posts = 0;
  ioa_post p;
  ioa_loop_post(loop, &p, count_post, &posts);
  assert_int_equal(fb.wakeups, 1);
  ioa_loop_backend_wakeup(loop);
  assert_int_equal(posts, 1);

  ioa_loop_free(loop);
  assert_int_equal(fb.cleaned, 1);
}

static void keep_warning(const char *message, void *data) {
  snprintf(data, 128, "%s", message);
}

/* Run ioa_loop_warn(loop, "%s", text) with stderr redirected into a pipe;
 * returns what was printed. */
static void warn_captured(ioa_loop *loop, const char *text, char *out, size_t size) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(p[1], STDERR_FILENO) >= 0);
  ioa_loop_warn(loop, "%s", text);
  fflush(stderr);
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  close(p[1]);
  ssize_t n = read(p[0], out, size - 1);
  out[n > 0 ? n : 0] = '\0';
  close(p[0]);
}

static void test_warning_hook(void **state) {
  (void)state;
  char got[128] = "";
  ioa_loop *loop = ioa_test_new_loop();
  /* No hook: printed on stderr, as IO::Async warns. */
  warn_captured(loop, "no hook 1", got, sizeof got);
  assert_string_equal(got, "ioasync: warning: no hook 1\n");
  /* ioa_warn_discard silences it. */
  ioa_loop_set_warning_hook(loop, ioa_warn_discard, NULL);
  warn_captured(loop, "silenced", got, sizeof got);
  assert_string_equal(got, "");
  ioa_loop_set_warning_hook(loop, keep_warning, got);
  ioa_loop_warn(loop, "connecting to %s is non-portable", "0.0.0.0");
  assert_string_equal(got, "connecting to 0.0.0.0 is non-portable");
  ioa_loop_free(loop);

  ioa_loop_options opts;
  memset(&opts, 0, sizeof opts); /* not initialised by ioa_loop_options_init */
  opts.on_warning = keep_warning;
  loop = NULL;
  assert_int_equal(ioa_loop_new(&opts, &loop), IOA_EBADPARAM);
  assert_null(loop);
  assert_int_equal(ioa_loop_new(NULL, NULL), IOA_EBADPARAM);
  ioa_loop_options_init(&opts);
  opts.on_warning = keep_warning;
  opts.warning_data = got;
  assert_int_equal(ioa_loop_new(&opts, &loop), 0);
  ioa_loop_warn(loop, "w%d", 2);
  assert_string_equal(got, "w2");
  ioa_loop_free(loop);
}

/* A struct from a newer header (longer, with fields this library does not
 * know) is accepted when those are zero and refused otherwise; one from an
 * older, shorter layout than 1.0 is refused. */
static void test_options_struct_size(void **state) {
  (void)state;
  struct {
    ioa_loop_options o;
    uint64_t newer_field;
  } big;
  ioa_loop_options_init_size(&big.o, sizeof big);
  assert_int_equal(big.o.struct_size, sizeof big);
  ioa_loop *loop = NULL;
  assert_int_equal(ioa_loop_new(&big.o, &loop), 0);
  ioa_loop_free(loop);
  big.newer_field = 1;
  loop = NULL;
  assert_int_equal(ioa_loop_new(&big.o, &loop), IOA_EBADPARAM);
  assert_null(loop);
  ioa_loop_options small;
  ioa_loop_options_init(&small);
  small.struct_size = sizeof small - 1;
  assert_int_equal(ioa_loop_new(&small, &loop), IOA_EBADPARAM);
}

int main(void) {
  signal(SIGPIPE, SIG_DFL); /* the library must never need SIGPIPE ignored */
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_timers_fire_in_deadline_order),
      IOA_TEST(test_repeating_timer_stops_itself),
      IOA_TEST(test_timer_stops_another_due_in_same_iteration),
      IOA_TEST(test_timer_frees_itself),
      IOA_TEST(test_restart_reschedules),
      IOA_TEST(test_huge_timeouts_do_not_wrap),
      IOA_TEST(test_timer_rearmed_at_zero_lets_loop_turn),
      IOA_TEST(test_timer_heap_stress),
      IOA_TEST(test_defers_run_later_in_fifo_order),
      IOA_TEST(test_requeued_defer_waits_for_next_iteration),
      IOA_TEST(test_io_read_and_stop_other_in_same_batch),
      IOA_TEST(test_io_fd_reuse_gets_no_stale_event),
      IOA_TEST(test_io_errors),
      IOA_TEST(test_io_level_triggered_write),
      IOA_TEST(test_post_from_threads),
      IOA_TEST(test_unref_from_thread_wakes_loop),
      IOA_TEST(test_run_modes_and_stop),
      IOA_TEST(test_free_with_live_handles),
      IOA_TEST(test_loop_fds_are_cloexec),
      IOA_TEST(test_eintr_is_retried),
      IOA_TEST(test_foreign_backend),
      IOA_TEST(test_warning_hook),
      IOA_TEST(test_options_struct_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
