/* SPDX-License-Identifier: MIT */
/* Fault-injection sweep (curl's torture idea): run each scenario once per
 * failure point, N = 1, 2, 3, ..., with the Nth injectable call (syscall or
 * allocation) failing, until a run completes without reaching N.  Every run
 * must end with each started operation completed exactly once through its
 * normal callbacks (an error or a success), the fd count back to where it
 * was, and (under ASan/LSan) no leaked bytes.  A failure reported while no
 * fault fired is a bug too.
 *
 * Built only meaningfully in the `fault` preset (IOA_FAULT_INJECTION, see
 * test/CMakeLists.txt); elsewhere it exits 77, which CTest reports as skipped.
 *
 * Each scenario is swept three times: with every op's natural errno (ENOMEM
 * for malloc, EMFILE for socket, EINTR for epoll_wait, EAI_AGAIN for
 * getaddrinfo...); with EIO everywhere, which takes the paths natural errnos
 * never reach (a poller failing hard, getaddrinfo's EAI_SYSTEM); and sticky
 * (every call from the Nth on fails: a resource that stays exhausted).
 * Output lines "FAULT-SWEEP scenario=<name> errno=<mode> points=<N>" are what
 * scripts/lab collects into its report.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifdef IOA_FAULT_INJECTION
#include "fault.h"

#if defined(__SANITIZE_ADDRESS__)
#define LAB_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LAB_HAVE_LSAN 1
#endif
#endif
#ifdef LAB_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* ------------------------------------------------------------ the sweep */

/* What one run of a scenario did. */
typedef struct run_stats {
  int started;     /* operations whose start call returned 0 */
  int completions; /* completion callbacks seen (success or error) */
  int successes;   /* completions that were successes */
  int start_errors; /* start calls that returned a negative code */
  int duplicates;  /* a second completion for one operation: a bug */
  int hung;        /* the bounded loop run ended with work still pending */
  int bad_error;   /* an error surfaced although no fault was injected */
  char why[160];   /* first problem, for the failure message */
} run_stats;

typedef void (*scenario_fn)(run_stats *st);

typedef struct scenario {
  const char *name;
  scenario_fn fn;
  unsigned long mask;
  unsigned flags; /* IOA_FAULT_* */
} scenario;

#define SWEEP_MAX_POINTS 20000u
#define RUN_MAX_MS 5000u

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void note(run_stats *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(run_stats *st, const char *fmt, ...) {
  if (st->why[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->why, sizeof st->why, fmt, ap);
  va_end(ap);
}

/* A failure code seen by a scenario: fine if a fault fired, a bug if not. */
static void saw_error(run_stats *st, const char *what, int err) {
  if (!ioa__fault_fired()) {
    st->bad_error++;
    note(st, "%s failed with %s (%s) but no fault was injected", what, ioa_err_name(err),
         ioa_strerror(err));
  }
}

/* Run the loop (blocking iterations) until *remaining is 0, the loop has
 * nothing left, or RUN_MAX_MS passed.  An injected poller failure makes
 * ioa_loop_run return an error: a caller retries, so do we (bounded). */
static void on_alarm(int sig) { (void)sig; }

/* A lost completion can leave the loop blocked in epoll_wait with no timer:
 * a periodic SIGALRM (no SA_RESTART) interrupts it so the deadline is seen.
 * It bypasses the injector, so failure points stay the same. */
static void watchdog(int on) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on ? on_alarm : SIG_DFL;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it;
  memset(&it, 0, sizeof it);
  if (on)
    it.it_interval.tv_usec = it.it_value.tv_usec = 200000;
  setitimer(ITIMER_REAL, &it, NULL);
}

static void drive(ioa_loop *loop, const int *remaining, run_stats *st) {
  uint64_t end = mono_ms() + RUN_MAX_MS;
  int errors = 0;
  while (*remaining > 0) {
    if (mono_ms() > end) {
      st->hung++;
      note(st, "%d operations still pending after %u ms", *remaining, RUN_MAX_MS);
      return;
    }
    watchdog(1);
    int r = ioa_loop_run(loop, IOA_RUN_ONCE);
    watchdog(0);
    if (r < 0) {
      saw_error(st, "ioa_loop_run", r);
      if (++errors > 1000) {
        st->hung++;
        note(st, "ioa_loop_run kept failing: %s", ioa_err_name(r));
        return;
      }
      continue;
    }
    if (r == 0 && *remaining > 0) {
      st->hung++;
      note(st, "loop ran out of work with %d operations never completed", *remaining);
      return;
    }
  }
}

static int leak_check(void) {
#ifdef LAB_HAVE_LSAN
  static int enabled = -1;
  if (enabled < 0) {
    const char *e = getenv("IOA_FAULT_LEAKCHECK");
    enabled = !(e && strcmp(e, "0") == 0);
  }
  return enabled ? __lsan_do_recoverable_leak_check() : 0;
#else
  return 0;
#endif
}

/* Sweep one scenario with one errno mode, failing the Nth call for N = 1,
 * 1 + stride, 1 + 2 stride, ... (stride 1: every point).  Returns the
 * number of failure points exercised (runs in which the injected failure
 * fired). */
static unsigned long sweep_mode_stride(const scenario *sc, int err, const char *mode,
                                       unsigned long stride) {
  /* Dry run: how many injectable calls does a clean run make? */
  int fd0 = ioa_test_fd_count();
  run_stats st;
  memset(&st, 0, sizeof st);
  ioa__fault_arm_ex(IOA_FAULT_COUNT_ONLY, sc->mask, err, sc->flags);
  sc->fn(&st);
  unsigned long clean_calls = ioa__fault_calls();
  ioa__fault_arm(0, 0, 0);
  if (st.started == 0 || st.successes != st.started || st.completions != st.started || st.why[0])
    fail_msg("%s: the clean run did not succeed (started %d, completed %d, ok %d): %s", sc->name,
             st.started, st.completions, st.successes, st.why);
  assert_int_equal(ioa_test_fd_count(), fd0);
  if (leak_check())
    fail_msg("%s: the clean run leaked (report above)", sc->name);

  unsigned long points = 0;
  unsigned long per_op[IOA_FOP_COUNT_] = {0};
  /* IOA_FAULT_N=N: run that failure point alone (with IOA_FAULT_TRACE=1 and
   * IOA_FAULT_FILTER=test_name, the way to study one failing run). */
  const char *only = getenv("IOA_FAULT_N");
  unsigned long only_n = only ? strtoul(only, NULL, 10) : 0;
  for (unsigned long n = only_n ? only_n : 1;; n += stride) {
    if (n > SWEEP_MAX_POINTS)
      fail_msg("%s: more than %u failure points: runaway scenario", sc->name, SWEEP_MAX_POINTS);
    memset(&st, 0, sizeof st);
    fd0 = ioa_test_fd_count();
    ioa__fault_arm_ex(n, sc->mask, err, sc->flags);
    sc->fn(&st);
    int fired = ioa__fault_fired();
    int op = ioa__fault_fired_op();
    ioa__fault_arm(0, 0, 0);
    const char *opname = op >= 0 ? ioa__fault_op_name((ioa__fault_op)op) : "none";
    int fds = ioa_test_fd_count();
    if (st.duplicates || st.hung || st.bad_error || st.completions != st.started || fds != fd0)
      fail_msg("%s [%s] N=%lu (%s failed): started %d, completions %d, duplicates %d, "
               "hung %d, fds %d -> %d: %s",
               sc->name, mode, n, opname, st.started, st.completions, st.duplicates, st.hung,
               fd0, fds, st.why[0] ? st.why : "-");
    if (leak_check())
      fail_msg("%s [%s] N=%lu (%s failed): LeakSanitizer found leaks (report above)", sc->name,
               mode, n, opname);
    if (only_n) {
      print_message("IOA_FAULT_N=%lu: %s failed, run passed its checks\n", n, opname);
      return fired;
    }
    if (!fired) {
      if (st.successes != st.started)
        fail_msg("%s [%s] N=%lu: no fault fired but %d of %d operations failed: %s", sc->name,
                 mode, n, st.started - st.successes, st.started, st.why);
      break;
    }
    points++;
    per_op[op]++;
  }
  char ops[512] = "";
  size_t used = 0;
  for (int i = 0; i < IOA_FOP_COUNT_; i++)
    if (per_op[i] && used < sizeof ops)
      used += (size_t)snprintf(ops + used, sizeof ops - used, "%s%s=%lu", used ? "," : "",
                               ioa__fault_op_name((ioa__fault_op)i), per_op[i]);
  print_message("FAULT-SWEEP scenario=%s errno=%s points=%lu clean_calls=%lu ops=%s%s\n",
                sc->name, mode, points, clean_calls, ops,
                stride > 1 ? " (sampled: one point in stride)" : "");
  return points;
}

static unsigned long sweep_mode(const scenario *sc, int err, const char *mode) {
  return sweep_mode_stride(sc, err, mode, 1);
}

static void sweep(const scenario *sc) {
  sweep_mode(sc, 0, "natural");
  sweep_mode(sc, EIO, "EIO");
  /* Sticky: from the Nth call on, everything fails (memory or fds that stay
   * exhausted).  epoll_wait is left out: a poller that fails forever leaves
   * a caller nothing to do but give up, which is not the library's call. */
  scenario sticky = *sc;
  sticky.mask &= ~IOA_FAULT_MASK(IOA_FOP_EPOLL_WAIT);
  sticky.flags |= IOA_FAULT_STICKY;
  sweep_mode(&sticky, 0, "sticky");
}

/* ------------------------------------------------------- loop scenarios */

static void sc_loop_new(run_stats *st) {
  ioa_loop *loop = NULL;
  st->started = 1;
  int r = ioa_loop_new(NULL, &loop);
  st->completions = 1;
  if (r < 0) {
    saw_error(st, "ioa_loop_new", r);
    return;
  }
  st->successes = 1;
  ioa_loop_free(loop);
}

/* Timers, some repeating, enough of them to grow the heap twice; each
 * completion is deferred from its timer callback so defers are exercised. */
#define NTIMERS 40
typedef struct timer_op {
  ioa_timer t;
  ioa_defer d;
  run_stats *st;
  int fires, want_fires, completed;
  int *remaining;
} timer_op;

static void timer_op_done(ioa_defer *d, void *data) {
  timer_op *op = data;
  if (op->completed++) {
    op->st->duplicates++;
    note(op->st, "timer completed twice");
    return;
  }
  op->st->completions++;
  op->st->successes++;
  --*op->remaining;
}

static void timer_op_fire(ioa_timer *t, void *data) {
  timer_op *op = data;
  if (++op->fires == op->want_fires) {
    ioa_timer_stop(t);
    ioa_defer_start(&op->d);
  } else if (op->fires > op->want_fires) {
    op->st->duplicates++;
    note(op->st, "timer fired after it was stopped");
  }
}

static void sc_timers(run_stats *st) {
  ioa_loop *loop;
  int r = ioa_loop_new(NULL, &loop);
  if (r < 0) {
    /* Nothing started: the error itself is the clear outcome. */
    saw_error(st, "ioa_loop_new", r);
    st->started = st->completions = 1;
    return;
  }
  static timer_op ops[NTIMERS];
  memset(ops, 0, sizeof ops);
  int remaining = 0;
  for (int i = 0; i < NTIMERS; i++) {
    timer_op *op = &ops[i];
    op->st = st;
    op->remaining = &remaining;
    op->want_fires = i % 5 == 0 ? 3 : 1;
    ioa_timer_init(loop, &op->t, timer_op_fire, op);
    ioa_defer_init(loop, &op->d, timer_op_done, op);
    uint64_t ms = (uint64_t)(i % 4);
    r = ioa_timer_start(&op->t, ms * 1000000u, op->want_fires > 1 ? 1000000u : 0);
    if (r < 0) {
      saw_error(st, "ioa_timer_start", r);
      st->start_errors++;
      continue;
    }
    st->started++;
    remaining++;
  }
  drive(loop, &remaining, st);
  for (int i = 0; i < NTIMERS; i++) {
    ioa_timer_stop(&ops[i].t);
    ioa_defer_stop(&ops[i].d);
  }
  ioa_loop_free(loop);
}

/* Posts from another thread (test-owned, not injected) plus a reference
 * that keeps the loop alive while the thread runs. */
#define NPOSTS 64
typedef struct post_ctx {
  ioa_loop *loop;
  ioa_post posts[NPOSTS];
  int got[NPOSTS];
  int pending;
  run_stats *st;
} post_ctx;

static void post_cb(ioa_post *p, void *data) {
  post_ctx *c = data;
  size_t i = (size_t)(p - c->posts);
  if (c->got[i]++) {
    c->st->duplicates++;
    note(c->st, "post %zu ran twice", i);
    return;
  }
  c->pending--;
  c->st->completions++;
  c->st->successes++;
}

static void *post_thread(void *arg) {
  post_ctx *c = arg;
  for (int i = 0; i < NPOSTS; i++) {
    ioa_loop_post(c->loop, &c->posts[i], post_cb, c);
    if (i % 8 == 0)
      usleep(100);
  }
  return NULL;
}

static void sc_posts(run_stats *st) {
  static post_ctx c;
  memset(&c, 0, sizeof c);
  c.st = st;
  int r = ioa_loop_new(NULL, &c.loop);
  if (r < 0) {
    saw_error(st, "ioa_loop_new", r);
    st->started = st->completions = 1;
    return;
  }
  st->started = c.pending = NPOSTS;
  ioa_loop_ref(c.loop);
  pthread_t t;
  if (pthread_create(&t, NULL, post_thread, &c) != 0)
    fail_msg("pthread_create failed in the test itself");
  drive(c.loop, &c.pending, st);
  pthread_join(t, NULL);
  ioa_loop_unref(c.loop);
  ioa_loop_free(c.loop);
}

/* fd watchers on socket pairs; one fd is moved high so the fd table grows. */
#define NPAIRS 6
typedef struct io_op {
  ioa_io io;
  int fds[2];
  int completed;
  run_stats *st;
  int *remaining;
} io_op;

static void io_op_cb(ioa_io *io, unsigned revents, void *data) {
  io_op *op = data;
  char b;
  if (read(op->fds[0], &b, 1) != 1)
    note(op->st, "readable watcher but nothing to read");
  ioa_io_stop(io);
  if (op->completed++) {
    op->st->duplicates++;
    note(op->st, "watcher fired after stop");
    return;
  }
  op->st->completions++;
  op->st->successes++;
  --*op->remaining;
}

static void sc_io(run_stats *st) {
  ioa_loop *loop;
  int r = ioa_loop_new(NULL, &loop);
  if (r < 0) {
    saw_error(st, "ioa_loop_new", r);
    st->started = st->completions = 1;
    return;
  }
  io_op ops[NPAIRS];
  memset(ops, 0, sizeof ops);
  int remaining = 0;
  for (int i = 0; i < NPAIRS; i++) {
    io_op *op = &ops[i];
    op->st = st;
    op->remaining = &remaining;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, op->fds) < 0)
      fail_msg("socketpair: %s", strerror(errno));
    if (i == NPAIRS - 1) {
      /* Past the table's initial 64 slots: the table must grow. */
      int high = fcntl(op->fds[0], F_DUPFD_CLOEXEC, 200);
      if (high < 0)
        fail_msg("F_DUPFD: %s", strerror(errno));
      close(op->fds[0]);
      op->fds[0] = high;
    }
    ioa_io_init(loop, &op->io, op->fds[0], io_op_cb, op);
    r = ioa_io_start(&op->io, IOA_READ);
    if (r < 0) {
      saw_error(st, "ioa_io_start", r);
      st->start_errors++;
      continue;
    }
    st->started++;
    remaining++;
    if (write(op->fds[1], "x", 1) != 1)
      fail_msg("write: %s", strerror(errno));
  }
  drive(loop, &remaining, st);
  for (int i = 0; i < NPAIRS; i++) {
    ioa_io_stop(&ops[i].io);
    close(ops[i].fds[0]);
    close(ops[i].fds[1]);
  }
  ioa_loop_free(loop);
}

static const scenario loop_scenarios[] = {
    {"loop_new", sc_loop_new, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"loop_timers_defers", sc_timers, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"loop_posts", sc_posts, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"loop_io", sc_io, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
};

static void test_loop_new(void **state) { sweep(&loop_scenarios[0]); }
static void test_loop_timers(void **state) { sweep(&loop_scenarios[1]); }
static void test_loop_posts(void **state) { sweep(&loop_scenarios[2]); }
static void test_loop_io(void **state) { sweep(&loop_scenarios[3]); }

/* The injector itself: counting without failing, per-op errno, thread
 * filtering. */
static void test_injector(void **state) {
  ioa__fault_arm(IOA_FAULT_COUNT_ONLY, IOA_FAULT_ALL, 0);
  ioa_loop *loop;
  assert_int_equal(ioa_loop_new(NULL, &loop), 0);
  assert_false(ioa__fault_fired());
  assert_int_equal(ioa__fault_op_calls(IOA_FOP_MALLOC), 1);
  assert_int_equal(ioa__fault_op_calls(IOA_FOP_EPOLL_CREATE), 1);
  assert_int_equal(ioa__fault_op_calls(IOA_FOP_EVENTFD), 1);
  assert_int_equal(ioa__fault_op_calls(IOA_FOP_EPOLL_CTL), 1);
  assert_int_equal(ioa__fault_calls(), 4);
  ioa_loop_free(loop);

  /* Per-op errno: eventfd fails with the chosen code. */
  ioa__fault_set_errno(IOA_FOP_EVENTFD, ENFILE);
  ioa__fault_arm(1, IOA_FAULT_MASK(IOA_FOP_EVENTFD), 0);
  assert_int_equal(ioa_loop_new(NULL, &loop), -ENFILE);
  assert_true(ioa__fault_fired());
  assert_int_equal(ioa__fault_fired_op(), IOA_FOP_EVENTFD);
  ioa__fault_set_errno(IOA_FOP_EVENTFD, 0);
  assert_int_equal(ioa__fault_errno(IOA_FOP_EVENTFD), EMFILE);

  /* An explicit errno wins over the per-op one. */
  ioa__fault_arm(1, IOA_FAULT_MASK(IOA_FOP_EPOLL_CREATE), EPERM);
  assert_int_equal(ioa_loop_new(NULL, &loop), -EPERM);

  /* getaddrinfo: natural errno is an EAI value (negative), returned as is. */
  assert_true(ioa__fault_errno(IOA_FOP_GETADDRINFO) < 0);
  ioa__fault_arm(0, 0, 0);
}

/* ---------------------------------------------------- connect scenarios */

typedef struct conn_op {
  run_stats *st;
  int completed;
  int remaining;
  int fails;
  int cancel_on_fail; /* cancel from inside the first on_fail */
  int cancel_on_sockopt; /* cancel from inside the nth socket-option hook */
  int sockopts;
  int cancel_on_attempt; /* cancel from inside the nth on_attempt hook */
  int attempts;
  int cancel_on_resolved; /* cancel from inside on_resolved */
  ioa_connect_req *req;
} conn_op;

static void conn_complete(conn_op *c, int ok, const char *what, int err) {
  if (c->completed++) {
    c->st->duplicates++;
    note(c->st, "second completion (%s %s)", what, ioa_err_name(err));
    return;
  }
  c->st->completions++;
  c->remaining--;
  if (ok)
    c->st->successes++;
  else if (err != -ECANCELED)
    saw_error(c->st, what, err);
}

static void conn_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  close(fd);
  conn_complete(data, 1, "connect", 0);
}
static void conn_error(ioa_connect_req *req, ioa_syscall sys, int err, void *data) {
  conn_op *c = data;
  /* A cancel the scenario asked for is its expected outcome. */
  conn_complete(c,
                err == -ECANCELED && (c->cancel_on_fail || c->cancel_on_sockopt ||
                                      c->cancel_on_attempt || c->cancel_on_resolved),
                ioa_syscall_name(sys), err);
}
static int conn_sockopt(ioa_connect_req *req, int fd, const ioa_addr *peer, const ioa_addr *local,
                        void *data) {
  conn_op *c = data;
  if (++c->sockopts == c->cancel_on_sockopt)
    ioa_connect_cancel(req);
  return 0;
}
static void conn_attempt(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                         void *data) {
  conn_op *c = data;
  if (++c->attempts == c->cancel_on_attempt)
    ioa_connect_cancel(req);
}
static void conn_resolved(ioa_connect_req *req, const ioa_addr *addrs, size_t n, int is_local,
                          void *data) {
  conn_op *c = data;
  if (c->cancel_on_resolved)
    ioa_connect_cancel(req);
}
static void conn_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer, void *data) {
  ioa_stream_free(s);
  conn_complete(data, 1, "connect", 0);
}
static void conn_resolve_error(ioa_connect_req *req, int err, const char *msg, void *data) {
  conn_complete(data, 0, "resolve", err);
}
static void conn_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  conn_op *c = data;
  c->fails++;
  if (c->cancel_on_fail && c->fails == 1)
    ioa_connect_cancel(req);
}

/* Fixture: a listener and a closed port on 127.0.0.1 (raw syscalls: the
 * injector must not hit the test's own plumbing). */
typedef struct conn_fixture {
  int lfd, port, closed_port, closed6;
  int bh_lfd, bh_filler, bh_port; /* loopback black hole */
} conn_fixture;

static void fixture_open(conn_fixture *fx) {
  fx->lfd = ioa_test_listen_tcp(AF_INET, 128, &fx->port);
  if (fx->lfd < 0)
    fail_msg("listen: %s", strerror(-fx->lfd));
  fx->closed_port = ioa_test_closed_port(AF_INET);
  fx->closed6 = ioa_test_have_ipv6() ? ioa_test_closed_port(AF_INET6) : -1;
  /* A listener whose one-slot accept queue is full and never drained: SYNs
   * to it are dropped, so attempts stay pending (SYN_SENT). */
  fx->bh_lfd = ioa_test_listen_tcp(AF_INET, 0, &fx->bh_port);
  if (fx->bh_lfd < 0)
    fail_msg("listen: %s", strerror(-fx->bh_lfd));
  fx->bh_filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->bh_port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fx->bh_filler < 0 || connect(fx->bh_filler, (struct sockaddr *)&sin, sizeof sin) < 0)
    fail_msg("black hole filler: %s", strerror(errno));
}

static void fixture_close(conn_fixture *fx) {
  /* Drop whatever connected (the accept queue) with the listener. */
  close(fx->lfd);
  close(fx->bh_filler);
  close(fx->bh_lfd);
}

static ioa_addr addr_of(const char *ip, int port) {
  ioa_addr a;
  char text[80];
  snprintf(text, sizeof text, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
  if (ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &a, NULL) < 0)
    fail_msg("cannot build address %s", text);
  return a;
}

#include "dns_fixture.h"

enum {
  CONN_RESOLVE_CARES_DNS,
  CONN_SEQ,
  CONN_RACE_BIND,
  CONN_CANCEL,
  CONN_RESOLVE,
  CONN_RESOLVE_CARES,
  CONN_RACE_HOLES,
  CONN_SOCKOPT_CANCEL,
  CONN_STREAM,
  CONN_ATTEMPT_CANCEL,
  CONN_RESOLVED_CANCEL,
  CONN_RESOLVE_CACHED
};

/* A resolver for a scenario; if it cannot be made, that is the run's clear
 * outcome: the loop and fixture are released and -1 returned. */
static int open_resolver(run_stats *st, ioa_loop *loop, conn_fixture *fx,
                         const ioa_resolver_options *ro, ioa_resolver **res) {
  int r = ioa_resolver_new(loop, ro, res);
  if (r >= 0)
    return 0;
  saw_error(st, "ioa_resolver_new", r);
  st->started = st->completions = 1;
  ioa_loop_free(loop);
  fixture_close(fx);
  return -1;
}

static void sc_connect_common(run_stats *st, int kind) {
  conn_fixture fx;
  fixture_open(&fx);
  ioa_loop *loop;
  int r = ioa_loop_new(NULL, &loop);
  if (r < 0) {
    saw_error(st, "ioa_loop_new", r);
    st->started = st->completions = 1;
    fixture_close(&fx);
    return;
  }
  ioa_resolver *res = NULL;
  ioa_dns_fixture *dns = NULL;
  conn_op c;
  memset(&c, 0, sizeof c);
  c.st = st;
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.on_connected = conn_connected;
  p.on_connect_error = conn_error;
  p.on_resolve_error = conn_resolve_error;
  p.on_fail = conn_fail;
  p.data = &c;
  ioa_addr peers[4], local;
  size_t n = 0;
  char port[16];
  snprintf(port, sizeof port, "%d", fx.port);
  switch (kind) {
  case CONN_SEQ:
  case CONN_CANCEL:
    if (fx.closed6 > 0)
      peers[n++] = addr_of("::1", fx.closed6);
    peers[n++] = addr_of("127.0.0.1", fx.closed_port);
    peers[n++] = addr_of("127.0.0.1", fx.port);
    p.addrs = peers;
    p.naddrs = n;
    p.mode = IOA_CONNECT_SEQUENTIAL;
    c.cancel_on_fail = kind == CONN_CANCEL;
    break;
  case CONN_RACE_BIND:
    peers[n++] = addr_of("127.0.0.1", fx.closed_port);
    peers[n++] = addr_of("127.0.0.1", fx.port);
    local = addr_of("127.0.0.1", 0);
    p.addrs = peers;
    p.naddrs = n;
    p.local_addrs = &local;
    p.nlocal = 1;
    p.mode = IOA_CONNECT_RACE;
    p.attempt_delay_ms = 10;
    break;
  case CONN_RACE_HOLES:
  case CONN_SOCKOPT_CANCEL:
  case CONN_ATTEMPT_CANCEL:
  case CONN_STREAM:
    /* Two attempts left pending in SYN_SENT, one refused, one that
     * connects: the losers must be closed when it wins (or on cancel). */
    peers[n++] = addr_of("127.0.0.1", fx.bh_port);
    peers[n++] = addr_of("127.0.0.1", fx.bh_port);
    peers[n++] = addr_of("127.0.0.1", fx.closed_port);
    peers[n++] = addr_of("127.0.0.1", fx.port);
    p.addrs = peers;
    p.naddrs = n;
    p.mode = IOA_CONNECT_RACE;
    p.attempt_delay_ms = 10;
    /* When the live attempt is the one that fails, the black holes would
     * otherwise wait out the kernel's SYN retries (minutes). */
    p.timeout_ms = 150;
    p.on_sockopt = conn_sockopt;
    c.cancel_on_sockopt = kind == CONN_SOCKOPT_CANCEL ? 2 : 0;
    p.on_attempt = conn_attempt;
    c.cancel_on_attempt = kind == CONN_ATTEMPT_CANCEL ? 3 : 0;
    if (kind == CONN_STREAM) {
      p.on_connected = NULL;
      p.on_stream = conn_stream;
    }
    break;
  case CONN_RESOLVE_CARES_DNS: {
    /* Real DNS answers from the in-process responder: A at once, AAAA
     * (a refused ::1 port) 20 ms later, so partial answers, the resolution
     * delay and the race all run under injection. */
    static ioa_dns_record recs[1];
    static char v6port[8];
    (void)v6port;
    recs[0] = (ioa_dns_record){.name = "lab.test",
                               .a = {"127.0.0.1", NULL},
                               .aaaa = {"::1", NULL},
                               .delay_aaaa_ms = 20};
    if (ioa_dns_fixture_start(&dns, "127.0.0.1", 0, recs, 1) < 0)
      fail_msg("DNS fixture did not start");
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", ioa_dns_fixture_port(dns));
    ioa_resolver_options ro = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_CARES, .servers = servers};
    r = ioa_resolver_new(loop, &ro, &res);
    if (r < 0) {
      saw_error(st, "ioa_resolver_new", r);
      st->started = st->completions = 1;
      ioa_loop_free(loop);
      ioa_dns_fixture_stop(dns);
      fixture_close(&fx);
      return;
    }
    p.resolver = res;
    p.host = "lab.test";
    p.service = port;
    p.socktype = SOCK_STREAM;
    p.mode = IOA_CONNECT_RACE;
    p.attempt_delay_ms = 10;
    p.timeout_ms = 2000;
    break;
  }
  case CONN_RESOLVE_CACHED:
  case CONN_RESOLVE_CARES: {
    /* "localhost" comes from /etc/hosts.  c-ares: the server is a closed
     * loopback port in case it asks it anything.  Cached: two connects by
     * name through a pool with the answer cache, the second answered from
     * the first's answer. */
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", fx.closed_port);
    ioa_resolver_options ro = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_CARES, .servers = servers};
    if (kind == CONN_RESOLVE_CACHED)
      ro = (ioa_resolver_options){.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_GETADDRINFO, .cache_ttl_ms = 60000};
    if (open_resolver(st, loop, &fx, &ro, &res) < 0)
      return;
    p.resolver = res;
  } /* fall through */
  case CONN_RESOLVE:
  case CONN_RESOLVED_CANCEL:
    if (kind == CONN_RESOLVED_CANCEL) {
      p.on_resolved = conn_resolved;
      c.cancel_on_resolved = 1;
    }
    p.host = "localhost";
    p.service = port;
    p.socktype = SOCK_STREAM;
    p.mode = IOA_CONNECT_RACE;
    p.attempt_delay_ms = 10;
    break;
  }
  int rounds = kind == CONN_RESOLVE_CACHED ? 2 : 1;
  for (int round = 0; round < rounds; round++) {
    conn_op fresh = c;
    fresh.completed = fresh.remaining = fresh.fails = fresh.sockopts = fresh.attempts = 0;
    c = fresh;
    int before = st->completions;
    r = ioa_connect(loop, &p, &c.req);
    if (r < 0) {
      saw_error(st, "ioa_connect", r);
      st->start_errors++;
      /* A refusal to start is a complete, clear outcome. */
      st->started++;
      st->completions++;
    } else {
      st->started++;
      c.remaining = 1;
      if (st->completions != before)
        note(st, "a callback ran inside ioa_connect");
      drive(loop, &c.remaining, st);
    }
  }
  if (res)
    ioa_resolver_free(res);
  ioa_loop_free(loop);
  if (dns)
    ioa_dns_fixture_stop(dns);
  fixture_close(&fx);
}

static void sc_connect_seq(run_stats *st) { sc_connect_common(st, CONN_SEQ); }
static void sc_connect_race_bind(run_stats *st) { sc_connect_common(st, CONN_RACE_BIND); }
static void sc_connect_cancel(run_stats *st) { sc_connect_common(st, CONN_CANCEL); }
static void sc_resolve_race(run_stats *st) { sc_connect_common(st, CONN_RESOLVE); }
static void sc_resolve_race_cares(run_stats *st) { sc_connect_common(st, CONN_RESOLVE_CARES); }
static void sc_race_holes(run_stats *st) { sc_connect_common(st, CONN_RACE_HOLES); }
static void sc_cares_dns(run_stats *st) { sc_connect_common(st, CONN_RESOLVE_CARES_DNS); }
static void sc_attempt_cancel(run_stats *st) { sc_connect_common(st, CONN_ATTEMPT_CANCEL); }
static void sc_resolved_cancel(run_stats *st) { sc_connect_common(st, CONN_RESOLVED_CANCEL); }
static void sc_sockopt_cancel(run_stats *st) { sc_connect_common(st, CONN_SOCKOPT_CANCEL); }
static void sc_connect_stream(run_stats *st) { sc_connect_common(st, CONN_STREAM); }
static void sc_resolve_cached(run_stats *st) { sc_connect_common(st, CONN_RESOLVE_CACHED); }

static const scenario connect_scenarios[] = {
    {"connect_sequential_3_candidates", sc_connect_seq, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"connect_race_bind", sc_connect_race_bind, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"connect_cancel_in_on_fail", sc_connect_cancel, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    /* Loop thread only: deterministic, covers pthread_create and the pool's
     * loop-side allocations. */
    {"resolve_race_gai", sc_resolve_race, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    /* Worker side: getaddrinfo itself failing, from any thread. */
    {"resolve_race_gai_worker", sc_resolve_race,
     IOA_FAULT_MASK(IOA_FOP_GETADDRINFO) | IOA_FAULT_MASK(IOA_FOP_PTHREAD_CREATE), 0},
    {"resolve_race_cares", sc_resolve_race_cares, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    /* getaddrinfo alone, for the EAI_* codes (not for pthread_create). */
    {"resolve_race_gai_eai", sc_resolve_race, IOA_FAULT_MASK(IOA_FOP_GETADDRINFO), 0},
    {"connect_race_4_with_black_holes", sc_race_holes, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"connect_cancel_in_sockopt_hook", sc_sockopt_cancel, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"connect_on_stream", sc_connect_stream, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"resolve_race_cares_dns_partial", sc_cares_dns, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"connect_cancel_in_on_attempt", sc_attempt_cancel, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"resolve_cancel_in_on_resolved", sc_resolved_cancel, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    /* Allocations on every thread (pool workers too): the count may differ
     * from run to run, each run is still checked. */
    {"resolve_race_gai_malloc_any_thread", sc_resolve_race, IOA_FAULT_MASK(IOA_FOP_MALLOC), 0},
    {"resolve_cached_twice", sc_resolve_cached, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
};

static void test_connect_seq(void **state) { sweep(&connect_scenarios[0]); }
static void test_connect_race_bind(void **state) { sweep(&connect_scenarios[1]); }
static void test_connect_cancel(void **state) { sweep(&connect_scenarios[2]); }
static void test_resolve_race(void **state) { sweep(&connect_scenarios[3]); }
static void test_resolve_race_worker(void **state) {
  sweep(&connect_scenarios[4]);
  /* And the other resolver failures getaddrinfo can give. */
  const int eai[] = {EAI_NONAME, EAI_FAIL, EAI_MEMORY, EAI_SERVICE};
  for (size_t i = 0; i < sizeof eai / sizeof eai[0]; i++)
    sweep_mode(&connect_scenarios[6], eai[i], gai_strerror(eai[i]));
}
static void test_resolve_race_cares(void **state) {
  if (!ioa_resolver_have_cares())
    skip();
  sweep(&connect_scenarios[5]);
}

static void test_race_holes(void **state) { sweep(&connect_scenarios[7]); }
static void test_sockopt_cancel(void **state) { sweep(&connect_scenarios[8]); }
static void test_connect_stream(void **state) { sweep(&connect_scenarios[9]); }
static void test_attempt_cancel(void **state) { sweep(&connect_scenarios[11]); }
static void test_resolved_cancel(void **state) { sweep(&connect_scenarios[12]); }
static void test_malloc_any_thread(void **state) { sweep(&connect_scenarios[13]); }
static void test_resolve_cached(void **state) { sweep(&connect_scenarios[14]); }
static void test_cares_dns(void **state) {
  if (!ioa_resolver_have_cares())
    skip();
  sweep(&connect_scenarios[10]);
}

#define IOA_LAB_CONNECT_TESTS                                                                      \
  IOA_TEST(test_connect_seq), IOA_TEST(test_connect_race_bind), IOA_TEST(test_connect_cancel),    \
      IOA_TEST(test_resolve_race), IOA_TEST(test_resolve_race_worker),                            \
      IOA_TEST(test_resolve_race_cares), IOA_TEST(test_race_holes),                               \
      IOA_TEST(test_sockopt_cancel), IOA_TEST(test_connect_stream), IOA_TEST(test_cares_dns),       \
      IOA_TEST(test_attempt_cancel), IOA_TEST(test_resolved_cancel),                             \
      IOA_TEST(test_malloc_any_thread), IOA_TEST(test_resolve_cached),

/* ----------------------------------------------------- stream echo */

#define ECHO_BYTES (256u * 1024u)
typedef struct echo_ctx {
  run_stats *st;
  ioa_stream *client, *server;
  size_t echoed; /* bytes the client got back */
  int completed;
  int remaining;
  int client_closed, server_closed;
} echo_ctx;

static void echo_complete(echo_ctx *e, int ok, const char *what, int err) {
  if (e->completed++)
    return; /* later errors after completion (EOF, reset) are expected noise */
  e->st->completions++;
  e->remaining--;
  if (ok)
    e->st->successes++;
  else
    saw_error(e->st, what, err);
}

static size_t server_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  echo_ctx *e = data;
  if (len) {
    int r = ioa_stream_write(s, buf, len);
    if (r < 0) {
      saw_error(e->st, "server write", r);
      ioa_stream_close(s);
    }
  }
  if (eof)
    ioa_stream_close_when_empty(s);
  return len;
}
static void server_error(ioa_stream *s, const char *sys, int err, void *data) {
  echo_ctx *e = data;
  saw_error(e->st, sys, err);
  ioa_stream_close(s);
}
static void server_closed(ioa_stream *s, void *data) { ((echo_ctx *)data)->server_closed++; }

static size_t client_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  echo_ctx *e = data;
  for (size_t i = 0; i < len; i++)
    if (buf[i] != (uint8_t)((e->echoed + i) * 7u))
      note(e->st, "echo corrupted at byte %zu", e->echoed + i);
  e->echoed += len;
  if (e->echoed == ECHO_BYTES)
    echo_complete(e, 1, "echo", 0);
  else if (eof)
    echo_complete(e, 0, "echo EOF early", -ECONNRESET);
  return len;
}
static void client_error(ioa_stream *s, const char *sys, int err, void *data) {
  echo_complete(data, 0, sys, err);
}
static void client_closed(ioa_stream *s, void *data) { ((echo_ctx *)data)->client_closed++; }

/* The loop and unix socketpair (of type) an echo scenario runs on: 0, or
 * -1 once a failed ioa_loop_new is recorded as the run's one completion. */
static int echo_setup(run_stats *st, int type, ioa_loop **loop, int sv[2]) {
  st->started = 1;
  int r = ioa_loop_new(NULL, loop);
  if (r < 0) {
    saw_error(st, "ioa_loop_new", r);
    st->completions = 1;
    return -1;
  }
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
    fail_msg("socketpair: %s", strerror(errno));
  return 0;
}

static void sc_stream_echo(run_stats *st) {
  static uint8_t payload[ECHO_BYTES];
  for (size_t i = 0; i < ECHO_BYTES; i++)
    payload[i] = (uint8_t)(i * 7u);
  echo_ctx e;
  memset(&e, 0, sizeof e);
  e.st = st;
  e.remaining = 1;
  ioa_loop *loop;
  int sv[2];
  if (echo_setup(st, SOCK_STREAM, &loop, sv) < 0)
    return;
  int r = ioa_stream_new(loop, sv[0], NULL, &e.client);
  if (r < 0) {
    saw_error(st, "ioa_stream_new", r);
    close(sv[0]);
    close(sv[1]);
    st->completions = 1;
    ioa_loop_free(loop);
    return;
  }
  r = ioa_stream_new(loop, sv[1], NULL, &e.server);
  if (r < 0) {
    saw_error(st, "ioa_stream_new", r);
    close(sv[1]);
    ioa_stream_free(e.client);
    st->completions = 1;
    ioa_loop_free(loop);
    return;
  }
  ioa_stream_callbacks sc = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = server_read, .on_error = server_error,
                             .on_closed = server_closed};
  ioa_stream_callbacks cc = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = client_read, .on_error = client_error,
                             .on_closed = client_closed};
  ioa_stream_set_callbacks(e.server, &sc, &e);
  ioa_stream_set_callbacks(e.client, &cc, &e);
  /* Several writes: chunk coalescing and the writev path. */
  for (size_t off = 0; off < ECHO_BYTES; off += ECHO_BYTES / 8) {
    r = ioa_stream_write(e.client, payload + off, ECHO_BYTES / 8);
    if (r < 0) {
      echo_complete(&e, 0, "client write", r);
      break;
    }
  }
  drive(loop, &e.remaining, st);
  ioa_stream_free(e.client);
  ioa_stream_free(e.server);
  /* Let deferred closes run before the loop goes. */
  for (int i = 0; i < 3; i++)
    ioa_loop_run(loop, IOA_RUN_NOWAIT);
  ioa_loop_free(loop);
}

/* ------------------------------------------------- datagram socket echo */

#define DGRAMS 48
typedef struct dgram_ctx {
  run_stats *st;
  ioa_socket *client, *server;
  int got;
  int completed;
  int remaining;
} dgram_ctx;

static void dgram_complete(dgram_ctx *e, int ok, const char *what, int err) {
  if (e->completed++)
    return;
  e->st->completions++;
  e->remaining--;
  if (ok)
    e->st->successes++;
  else
    saw_error(e->st, what, err);
}

static void dgram_server_recv(ioa_socket *s, const uint8_t *buf, size_t len,
                              const ioa_addr *from, void *data) {
  dgram_ctx *e = data;
  int r = ioa_socket_send(s, buf, len, NULL);
  if (r < 0)
    dgram_complete(e, 0, "server send", r);
}
static void dgram_client_recv(ioa_socket *s, const uint8_t *buf, size_t len,
                              const ioa_addr *from, void *data) {
  dgram_ctx *e = data;
  if (len != 100 || buf[0] != buf[99])
    note(e->st, "datagram corrupted");
  if (++e->got == DGRAMS)
    dgram_complete(e, 1, "echo", 0);
}
static void dgram_error(ioa_socket *s, const char *sys, int err, void *data) {
  /* A send error drops its packet: the echo cannot finish, so this is the
   * run's clear error outcome. */
  dgram_complete(data, 0, sys, err);
}

static void sc_dgram_echo_common(run_stats *st, unsigned batch) {
  dgram_ctx e;
  memset(&e, 0, sizeof e);
  e.st = st;
  e.remaining = 1;
  ioa_loop *loop;
  int sv[2];
  if (echo_setup(st, SOCK_DGRAM, &loop, sv) < 0)
    return;
  ioa_socket_options o = {.struct_size = sizeof(ioa_socket_options), .max_packet = 2048, .batch = batch};
  int r = ioa_socket_new(loop, sv[0], &o, &e.client);
  if (r < 0) {
    saw_error(st, "ioa_socket_new", r);
    close(sv[0]);
    close(sv[1]);
    st->completions = 1;
    ioa_loop_free(loop);
    return;
  }
  r = ioa_socket_new(loop, sv[1], &o, &e.server);
  if (r < 0) {
    saw_error(st, "ioa_socket_new", r);
    close(sv[1]);
    ioa_socket_free(e.client);
    st->completions = 1;
    ioa_loop_free(loop);
    return;
  }
  ioa_socket_callbacks scb = {.struct_size = sizeof(ioa_socket_callbacks), .on_recv = dgram_server_recv, .on_error = dgram_error};
  ioa_socket_callbacks ccb = {.struct_size = sizeof(ioa_socket_callbacks), .on_recv = dgram_client_recv, .on_error = dgram_error};
  ioa_socket_set_callbacks(e.server, &scb, &e);
  ioa_socket_set_callbacks(e.client, &ccb, &e);
  uint8_t pkt[100];
  for (int i = 0; i < DGRAMS && !e.completed; i++) {
    memset(pkt, i, sizeof pkt);
    r = ioa_socket_send(e.client, pkt, sizeof pkt, NULL);
    if (r < 0)
      dgram_complete(&e, 0, "client send", r);
  }
  drive(loop, &e.remaining, st);
  ioa_socket_free(e.client);
  ioa_socket_free(e.server);
  for (int i = 0; i < 3; i++)
    ioa_loop_run(loop, IOA_RUN_NOWAIT);
  ioa_loop_free(loop);
}

static void sc_dgram_batched(run_stats *st) { sc_dgram_echo_common(st, 16); }
static void sc_dgram_single(run_stats *st) { sc_dgram_echo_common(st, 1); }

static const scenario stream_scenarios[] = {
    {"stream_echo_256k", sc_stream_echo, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"socket_dgram_echo_mmsg", sc_dgram_batched, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"socket_dgram_echo_msg", sc_dgram_single, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
};
static void test_stream_echo(void **state) { sweep(&stream_scenarios[0]); }
static void test_dgram_mmsg(void **state) { sweep(&stream_scenarios[1]); }
static void test_dgram_msg(void **state) { sweep(&stream_scenarios[2]); }
#define IOA_LAB_STREAM_TESTS                                                                       \
  IOA_TEST(test_stream_echo), IOA_TEST(test_dgram_mmsg), IOA_TEST(test_dgram_msg),


/* ------------------------------------------------------------- TLS */

#if IOA_HAVE_TLS
#include <netinet/in.h>

#include "tls_fixture.h"

/* A TLS server on a thread (not injected: the sweep counts this thread's
 * calls only) and its PKI, made once for every TLS sweep. */
static tls_pki tls_fx_pki;
static tls_srv *tls_fx_srv;
static int tls_fx_connects; /* connections made to the fixture so far */

static void tls_fixture_need(void) {
  if (tls_fx_srv)
    return;
  if (tls_pki_create(&tls_fx_pki) < 0)
    fail_msg("TLS fixture: no PKI");
  tls_srv_opts o = {.mode = TLS_SRV_ECHO, .cert = tls_fx_pki.leaf, .key = tls_fx_pki.leaf_key,
                    .alpn = "http/1.1"};
  tls_fx_srv = tls_srv_start(&o);
  tls_fx_connects = 0;
  if (!tls_fx_srv)
    fail_msg("TLS fixture: no server");
}

static void tls_fixture_drop(void) {
  if (!tls_fx_srv)
    return;
  tls_srv_stop(tls_fx_srv);
  tls_fx_srv = NULL;
  tls_pki_destroy(&tls_fx_pki);
}

#define TLS_ECHO_BYTES (64u * 1024u)
typedef struct tls_op {
  run_stats *st;
  int completed;
  int remaining;
  size_t echoed;
  ioa_stream *s;
  ioa_tls_upgrade *up;
} tls_op;

static void tls_complete(tls_op *t, int ok, const char *what, int err) {
  if (t->completed++)
    return; /* an error after the verdict (EOF, reset) is noise */
  t->st->completions++;
  t->remaining--;
  if (ok)
    t->st->successes++;
  else
    saw_error(t->st, what, err);
}

static size_t tls_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  tls_op *t = data;
  for (size_t i = 0; i < len; i++)
    if (buf[i] != (uint8_t)((t->echoed + i) * 13u))
      note(t->st, "TLS echo corrupted at byte %zu", t->echoed + i);
  t->echoed += len;
  if (t->echoed == TLS_ECHO_BYTES)
    ioa_stream_close_when_empty(s); /* close_notify, then the verdict */
  else if (eof)
    tls_complete(t, 0, "TLS echo EOF early", -ECONNRESET);
  return len;
}
static void tls_error(ioa_stream *s, const char *sys, int err, void *data) {
  (void)s;
  tls_complete(data, 0, sys, err);
}
static void tls_closed(ioa_stream *s, void *data) {
  tls_op *t = data;
  (void)s;
  if (t->echoed == TLS_ECHO_BYTES)
    tls_complete(t, 1, "TLS echo", 0);
  else
    tls_complete(t, 0, "TLS stream closed early", -ECONNRESET);
}

static void tls_done(ioa_tls_upgrade *u, ioa_stream *s, int err, const char *msg, void *data) {
  tls_op *t = data;
  (void)u;
  t->up = NULL;
  if (err < 0) {
    if (!msg || !*msg)
      note(t->st, "TLS failure %s without a message", ioa_err_name(err));
    tls_complete(t, 0, "TLS handshake", err);
    return;
  }
  t->s = s;
  ioa_stream_callbacks cb = {.struct_size = sizeof cb, .on_read = tls_read,
                             .on_error = tls_error, .on_closed = tls_closed};
  if (ioa_stream_set_callbacks(s, &cb, t) < 0)
    note(t->st, "set_callbacks refused");
  static uint8_t payload[TLS_ECHO_BYTES];
  for (size_t i = 0; i < TLS_ECHO_BYTES; i++)
    payload[i] = (uint8_t)(i * 13u);
  /* Small and large writes: the gathering stage and direct records. */
  size_t off = 0;
  for (size_t n = 100; off < TLS_ECHO_BYTES; n = n < 16384 ? n * 4 : 16384) {
    size_t k = TLS_ECHO_BYTES - off < n ? TLS_ECHO_BYTES - off : n;
    int r = ioa_stream_write(s, payload + off, k);
    if (r < 0) {
      tls_complete(t, 0, "TLS write", r);
      break;
    }
    off += k;
  }
}

/* The config the connection scenarios share, made outside the sweep (its
 * own allocations are swept by tls_config_new). */
static ioa_tls_config *tls_fx_cfg;

static void tls_connect_fixture(int *fd) {
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)tls_srv_port(tls_fx_srv))};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0 || connect(*fd, (struct sockaddr *)&sin, sizeof sin) < 0)
    fail_msg("TLS fixture connect: %s", strerror(errno));
  tls_fx_connects++;
}

/* The server is done with every connection (and closed its fd) before
 * the run's fds are counted. */
static void tls_fixture_settle(void) {
  if (tls_srv_wait_done(tls_fx_srv, tls_fx_connects, 5000) < 0)
    fail_msg("TLS fixture: the server did not finish its connections");
}

/* Two TLS connections, each echoing 64 KiB: a full handshake that stores a
 * ticket, then a resumed one. */
static void sc_tls_upgrade(run_stats *st) {
  ioa_loop *loop;
  int r = ioa_loop_new(NULL, &loop);
  if (r < 0) {
    saw_error(st, "ioa_loop_new", r);
    st->started = st->completions = 1;
    return;
  }
  ioa_tls_config_flush_sessions(tls_fx_cfg); /* every run starts with a full handshake */
  for (int round = 0; round < 2; round++) {
    tls_op t;
    memset(&t, 0, sizeof t);
    t.st = st;
    int fd;
    tls_connect_fixture(&fd);
    ioa_tls_upgrade_params p;
    ioa_tls_upgrade_params_init(&p);
    p.config = tls_fx_cfg;
    p.server_name = "localhost";
    p.timeout_ms = RUN_MAX_MS - 1000;
    p.on_done = tls_done;
    p.data = &t;
    st->started++;
    r = ioa_tls_upgrade_fd(loop, fd, NULL, &p, &t.up);
    if (r < 0) {
      close(fd);
      saw_error(st, "ioa_tls_upgrade_fd", r);
      st->start_errors++;
      st->completions++;
      tls_fixture_settle();
      continue;
    }
    t.remaining = 1;
    drive(loop, &t.remaining, st);
    if (t.up)
      ioa_tls_upgrade_cancel(t.up);
    if (t.s)
      ioa_stream_free(t.s);
    tls_fixture_settle(); /* the server finishes with this connection first */
  }
  for (int i = 0; i < 3; i++)
    ioa_loop_run(loop, IOA_RUN_NOWAIT);
  ioa_loop_free(loop);
}

/* ioa_connect with TLS: a refused port first (the race moves on), then the
 * fixture; the winner's stream echoes 64 KiB and closes with close_notify. */
static void tls_conn_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer,
                            void *data) {
  (void)req;
  (void)peer;
  tls_done(NULL, s, 0, NULL, data);
}
static void tls_conn_error(ioa_connect_req *req, ioa_syscall sys, int err, void *data) {
  (void)req;
  tls_complete(data, 0, ioa_syscall_name(sys), err);
}
static void tls_conn_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  (void)req;
  tls_op *t = data;
  if (!f->message || !*f->message)
    note(t->st, "on_fail %s without a message", ioa_syscall_name(f->syscall));
}

static void sc_tls_connect(run_stats *st) {
  ioa_loop *loop;
  int r = ioa_loop_new(NULL, &loop);
  if (r < 0) {
    saw_error(st, "ioa_loop_new", r);
    st->started = st->completions = 1;
    return;
  }
  ioa_tls_config_flush_sessions(tls_fx_cfg);
  tls_op t;
  memset(&t, 0, sizeof t);
  t.st = st;
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ioa_addr peers[2];
  int closed = ioa_test_closed_port(AF_INET);
  sin.sin_port = htons((uint16_t)closed);
  ioa_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, SOCK_STREAM, 0, &peers[0]);
  sin.sin_port = htons((uint16_t)tls_srv_port(tls_fx_srv));
  ioa_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, SOCK_STREAM, 0, &peers[1]);
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.addrs = peers;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 10;
  p.tls = tls_fx_cfg;
  p.tls_server_name = "localhost";
  p.on_stream = tls_conn_stream;
  p.on_connect_error = tls_conn_error;
  p.on_fail = tls_conn_fail;
  p.data = &t;
  st->started = 1;
  r = ioa_connect(loop, &p, NULL);
  if (r < 0) {
    saw_error(st, "ioa_connect", r);
    st->completions = 1;
  } else {
    t.remaining = 1;
    drive(loop, &t.remaining, st);
    if (t.s)
      ioa_stream_free(t.s);
  }
  for (int i = 0; i < 3; i++)
    ioa_loop_run(loop, IOA_RUN_NOWAIT);
  ioa_loop_free(loop);
  /* The fixture may have this connection queued or in hand (none if the
   * race never got to it): its fd is closed before the run's are counted. */
  if (tls_srv_quiesce(tls_fx_srv, 5000) < 0)
    fail_msg("TLS fixture: the server did not finish its connections");
  tls_fx_connects = tls_srv_accepted(tls_fx_srv);
}

/* A configuration with every file: trust store, client certificate and
 * key, ALPN, key log. */
static void sc_tls_config(run_stats *st) {
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.ca_file = tls_fx_pki.ca;
  o.cert_file = tls_fx_pki.client;
  o.key_file = tls_fx_pki.client_key;
  o.alpn = "h2,http/1.1";
  o.keylog_file = "/dev/null";
  ioa_tls_config *cfg = NULL;
  ioa_errinfo ei;
  st->started = st->completions = 1;
  int r = ioa_tls_config_new(&o, &cfg, &ei);
  if (r < 0) {
    if (!ei.message[0])
      note(st, "ioa_tls_config_new %s without a message", ioa_err_name(r));
    saw_error(st, "ioa_tls_config_new", r);
    return;
  }
  st->successes = 1;
  ioa_tls_config_unref(cfg);
}

/* The library's own calls (syscalls, its allocations) at every point:
 * natural errnos, EIO for syscalls (a failed allocation is NULL whatever
 * the errno), sticky.  Then OpenSSL's allocations alone, alone and sticky,
 * one point in IOA_FAULT_SSL_STRIDE (default 100; scripts/lab full sets 5):
 * SSL_CTX_new alone makes some 7,500 allocations inside OpenSSL's provider
 * fetches, two connections with their echoes some 3,000, and every point
 * under ASan with a leak check after each run would take hours. */
static void sweep_tls(const scenario *sc) {
  const unsigned long ssl = IOA_FAULT_MASK(IOA_FOP_SSL_MALLOC);
  scenario own = *sc;
  own.mask &= ~ssl;
  sweep_mode(&own, 0, "natural");
  scenario eio = own;
  eio.mask &= ~IOA_FAULT_MASK(IOA_FOP_MALLOC);
  sweep_mode(&eio, EIO, "EIO");
  scenario sticky = own;
  sticky.mask &= ~IOA_FAULT_MASK(IOA_FOP_EPOLL_WAIT);
  sticky.flags |= IOA_FAULT_STICKY;
  sweep_mode(&sticky, 0, "sticky");
  const char *env = getenv("IOA_FAULT_SSL_STRIDE");
  unsigned long stride = env ? strtoul(env, NULL, 10) : 100;
  if (stride < 1)
    stride = 1;
  scenario ossl = *sc;
  ossl.mask = ssl;
  sweep_mode_stride(&ossl, 0, "ssl_malloc", stride);
  ossl.flags |= IOA_FAULT_STICKY;
  sweep_mode_stride(&ossl, 0, "ssl_malloc_sticky", stride);
}

static const scenario tls_scenarios[] = {
    {"tls_config_new", sc_tls_config, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"tls_upgrade_echo_resume", sc_tls_upgrade, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
    {"tls_connect_race_echo", sc_tls_connect, IOA_FAULT_ALL, IOA_FAULT_THIS_THREAD},
};
static void test_tls_config(void **state) {
  tls_fixture_need(); /* its fds and thread exist before the sweep counts */
  sweep_tls(&tls_scenarios[0]);
  tls_fixture_drop();
}
static void test_tls_upgrade(void **state) {
  tls_fixture_need();
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.ca_file = tls_fx_pki.ca;
  o.alpn = "h2,http/1.1";
  assert_int_equal(ioa_tls_config_new(&o, &tls_fx_cfg, NULL), 0);
  sweep_tls(&tls_scenarios[1]);
  sweep_tls(&tls_scenarios[2]);
  ioa_tls_config_unref(tls_fx_cfg);
  tls_fx_cfg = NULL;
  tls_fixture_drop();
}
#define IOA_LAB_TLS_TESTS IOA_TEST(test_tls_config), IOA_TEST(test_tls_upgrade),
#else
#define IOA_LAB_TLS_TESTS
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_injector),
      IOA_TEST(test_loop_new),
      IOA_TEST(test_loop_timers),
      IOA_TEST(test_loop_posts),
      IOA_TEST(test_loop_io),
      IOA_LAB_CONNECT_TESTS
      IOA_LAB_STREAM_TESTS
      IOA_LAB_TLS_TESTS
  };
  const char *filter = getenv("IOA_FAULT_FILTER");
  if (filter)
    cmocka_set_test_filter(filter);
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* !IOA_FAULT_INJECTION */

int main(void) {
  printf("test_fault: skipped: this build has no fault injection (use the `fault` preset)\n");
  return 77;
}

#endif
