/* SPDX-License-Identifier: MIT */
/* bench_loop: dispatch cost of the ioasync loop against libuv, in one run.
 *
 *   bench_loop [-r runs] [-s scale]
 *
 * Workloads (ns per event, lower is better), each measured for both loops
 * alternately, median of `runs` (default 5, at least 1) runs:
 *   loop timer       1000 timers, each re-armed with timeout 0 from its own
 *                    callback: heap insert + remove + dispatch.
 *   loop defer x1000 1000 deferred callbacks, each re-queued from its own
 *                    callback: one loop iteration (one epoll_wait(0)) per
 *                    batch of 1000, so this is the per-callback cost.
 *   loop defer x1    one deferred callback re-queued: the per-iteration cost.
 *   loop fd          one eventfd made readable again from its own read
 *                    callback: poller wait + dispatch (plus read/write).
 *
 * libuv analogue of ioa_defer: uv_idle, stopped and restarted from its
 * callback so it is one-shot like a defer.  An active idle handle makes the
 * next poll non-blocking and runs its callback once per iteration, which is
 * exactly what a queued ioa_defer does.  uv_check alone would let the poll
 * block; uv_async is a cross-thread wakeup (an eventfd write and read), the
 * analogue of ioa_loop_post, not of a same-thread deferral.
 *
 * Each event count is fixed and every loop is bounded by it: nothing here
 * waits on the clock.  Prints one JSON line per contender and workload, then
 * a human summary with ratios (ioasync / libuv) on stderr. */
#include "bench_common.h"

#include <ioasync/loop.h>
#include <sys/eventfd.h>
#include <uv.h>

#define MAX_RUNS 21
#define TIMERS 1000
#define DEFERS 1000

typedef struct counter {
  long count;
  long target;
} counter;

static double now_ns(void) { return bench_now_s() * 1e9; }

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "bench_loop: %s failed: %d\n", what, rc);
    exit(1);
  }
}

/* ------------------------------------------------------------ ioasync */

static void ioa_timer_fire(ioa_timer *t, void *data) {
  counter *c = data;
  if (++c->count < c->target)
    (void)ioa_timer_start(t, 0, 0);
}

static double ioa_timers(long events) {
  static ioa_timer timers[TIMERS];
  ioa_loop *loop;
  check(ioa_loop_new(NULL, &loop), "ioa_loop_new");
  counter c = {0, events};
  for (int i = 0; i < TIMERS; i++) {
    ioa_timer_init(loop, &timers[i], ioa_timer_fire, &c);
    check(ioa_timer_start(&timers[i], 0, 0), "ioa_timer_start");
  }
  double t0 = now_ns();
  while (c.count < c.target)
    check(ioa_loop_run(loop, IOA_RUN_ONCE), "ioa_loop_run");
  double dt = now_ns() - t0;
  for (int i = 0; i < TIMERS; i++)
    ioa_timer_stop(&timers[i]);
  ioa_loop_free(loop);
  return dt / (double)c.count;
}

static void ioa_defer_fire(ioa_defer *d, void *data) {
  counter *c = data;
  if (++c->count < c->target)
    ioa_defer_start(d);
}

static double ioa_defers(long events, int batch) {
  static ioa_defer defers[DEFERS];
  ioa_loop *loop;
  check(ioa_loop_new(NULL, &loop), "ioa_loop_new");
  counter c = {0, events};
  for (int i = 0; i < batch; i++) {
    ioa_defer_init(loop, &defers[i], ioa_defer_fire, &c);
    ioa_defer_start(&defers[i]);
  }
  double t0 = now_ns();
  while (c.count < c.target)
    check(ioa_loop_run(loop, IOA_RUN_ONCE), "ioa_loop_run");
  double dt = now_ns() - t0;
  for (int i = 0; i < batch; i++)
    ioa_defer_stop(&defers[i]);
  ioa_loop_free(loop);
  return dt / (double)c.count;
}

typedef struct fd_state {
  counter c;
  int fd;
} fd_state;

static void poke(int fd) {
  uint64_t one = 1;
  if (write(fd, &one, sizeof one) != sizeof one)
    bench_fail("bench_loop", "eventfd write", errno);
}

static void drain(int fd) {
  uint64_t v;
  if (read(fd, &v, sizeof v) != sizeof v)
    bench_fail("bench_loop", "eventfd read", errno);
}

static void ioa_fd_ready(ioa_io *io, unsigned revents, void *data) {
  fd_state *s = data;
  drain(s->fd);
  if (++s->c.count < s->c.target)
    poke(s->fd);
  else
    ioa_io_stop(io);
}

static double ioa_fd(long events) {
  ioa_loop *loop;
  check(ioa_loop_new(NULL, &loop), "ioa_loop_new");
  fd_state s = {{0, events}, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  if (s.fd < 0)
    bench_fail("bench_loop", "eventfd", errno);
  ioa_io io;
  ioa_io_init(loop, &io, s.fd, ioa_fd_ready, &s);
  check(ioa_io_start(&io, IOA_READ), "ioa_io_start");
  poke(s.fd);
  double t0 = now_ns();
  while (s.c.count < s.c.target)
    check(ioa_loop_run(loop, IOA_RUN_ONCE), "ioa_loop_run");
  double dt = now_ns() - t0;
  ioa_io_stop(&io);
  close(s.fd);
  ioa_loop_free(loop);
  return dt / (double)s.c.count;
}

/* -------------------------------------------------------------- libuv */

static void uv_timer_fire(uv_timer_t *t) {
  counter *c = t->data;
  if (++c->count < c->target)
    uv_timer_start(t, uv_timer_fire, 0, 0);
}


static void uv_close_handle(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void uv_finish(uv_loop_t *loop) {
  uv_walk(loop, uv_close_handle, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  check(uv_loop_close(loop), "uv_loop_close");
}

static double uv_timers(long events) {
  static uv_timer_t timers[TIMERS];
  uv_loop_t loop;
  check(uv_loop_init(&loop), "uv_loop_init");
  counter c = {0, events};
  for (int i = 0; i < TIMERS; i++) {
    uv_timer_init(&loop, &timers[i]);
    timers[i].data = &c;
    check(uv_timer_start(&timers[i], uv_timer_fire, 0, 0), "uv_timer_start");
  }
  double t0 = now_ns();
  while (c.count < c.target)
    uv_run(&loop, UV_RUN_ONCE);
  double dt = now_ns() - t0;
  uv_finish(&loop);
  return dt / (double)c.count;
}

static void uv_idle_fire(uv_idle_t *h) {
  counter *c = h->data;
  uv_idle_stop(h); /* one-shot, like a defer */
  if (++c->count < c->target)
    uv_idle_start(h, uv_idle_fire);
}

static double uv_defers(long events, int batch) {
  static uv_idle_t idles[DEFERS];
  uv_loop_t loop;
  check(uv_loop_init(&loop), "uv_loop_init");
  counter c = {0, events};
  for (int i = 0; i < batch; i++) {
    uv_idle_init(&loop, &idles[i]);
    idles[i].data = &c;
    uv_idle_start(&idles[i], uv_idle_fire);
  }
  double t0 = now_ns();
  while (c.count < c.target)
    uv_run(&loop, UV_RUN_ONCE);
  double dt = now_ns() - t0;
  uv_finish(&loop);
  return dt / (double)c.count;
}

static void uv_fd_ready(uv_poll_t *p, int status, int events) {
  fd_state *s = p->data;
  drain(s->fd);
  if (++s->c.count < s->c.target)
    poke(s->fd);
  else
    uv_poll_stop(p);
}

static double uv_fd(long events) {
  uv_loop_t loop;
  check(uv_loop_init(&loop), "uv_loop_init");
  fd_state s = {{0, events}, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  if (s.fd < 0)
    bench_fail("bench_loop", "eventfd", errno);
  uv_poll_t p;
  check(uv_poll_init(&loop, &p, s.fd), "uv_poll_init");
  p.data = &s;
  check(uv_poll_start(&p, UV_READABLE, uv_fd_ready), "uv_poll_start");
  poke(s.fd);
  double t0 = now_ns();
  while (s.c.count < s.c.target)
    uv_run(&loop, UV_RUN_ONCE);
  double dt = now_ns() - t0;
  uv_finish(&loop);
  close(s.fd);
  return dt / (double)s.c.count;
}

/* ------------------------------------------------------------- driver */

typedef struct workload {
  const char *name;
  double (*ioa)(long events, int batch);
  double (*uv)(long events, int batch);
  long events; /* at scale 1 */
  int batch;
} workload;

static double ioa_timers_w(long e, int b) { return ioa_timers(e); }
static double uv_timers_w(long e, int b) { return uv_timers(e); }
static double ioa_fd_w(long e, int b) { return ioa_fd(e); }
static double uv_fd_w(long e, int b) { return uv_fd(e); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  int runs = 5;
  long scale = 1;
  int c;
  while ((c = getopt(argc, argv, "r:s:")) != -1) {
    if (c == 'r')
      runs = (int)bench_parse_long(argv[0], optarg, 1, MAX_RUNS);
    else if (c == 's')
      scale = bench_parse_long(argv[0], optarg, 1, 100);
    else {
      fprintf(stderr, "usage: %s [-r runs (1..%d)] [-s scale]\n", argv[0], MAX_RUNS);
      return 2;
    }
  }
  static const workload work[] = {
      {"loop timer", ioa_timers_w, uv_timers_w, 1000000, 0},
      {"loop defer x1000", ioa_defers, uv_defers, 1000000, DEFERS},
      {"loop defer x1", ioa_defers, uv_defers, 200000, 1},
      {"loop fd", ioa_fd_w, uv_fd_w, 200000, 0},
  };
  fprintf(stderr, "%-18s %12s %12s %8s   (ns/event, median of %d)\n", "workload", "ioasync",
          "libuv", "ratio", runs);
  for (size_t w = 0; w < sizeof work / sizeof work[0]; w++) {
    const workload *wl = &work[w];
    long events = wl->events * scale;
    double ioa_ns[MAX_RUNS], uv_ns[MAX_RUNS];
    /* Warm caches and the allocator for both before timing. */
    (void)wl->ioa(events / 10, wl->batch);
    (void)wl->uv(events / 10, wl->batch);
    for (int r = 0; r < runs; r++) {
      /* Alternate the order so neither always runs on a warmer machine. */
      if (r % 2) {
        uv_ns[r] = wl->uv(events, wl->batch);
        ioa_ns[r] = wl->ioa(events, wl->batch);
      } else {
        ioa_ns[r] = wl->ioa(events, wl->batch);
        uv_ns[r] = wl->uv(events, wl->batch);
      }
    }
    double mi = median(ioa_ns, runs), mu = median(uv_ns, runs);
    printf("{\"contender\":\"ioasync\",\"workload\":\"%s\",\"ns_per_event\":%.2f}\n", wl->name, mi);
    printf("{\"contender\":\"libuv\",\"workload\":\"%s\",\"ns_per_event\":%.2f}\n", wl->name, mu);
    fprintf(stderr, "%-18s %12.2f %12.2f %8.2f\n", wl->name, mi, mu, mi / mu);
  }
  fflush(stdout);
  return 0;
}
