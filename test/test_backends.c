/* SPDX-License-Identifier: MIT */
/* One integration suite, run against every loop ioasync can run on:
 *
 *   test_backends native     ioa_loop_run() on the epoll loop
 *   test_backends embed      a poll() loop of the test's own driving
 *                            ioa_loop_fd() / ioa_loop_timeout() /
 *                            ioa_loop_run(IOA_RUN_NOWAIT)
 *   test_backends libuv      include/ioasync/adapters/libuv.h
 *   test_backends libev      include/ioasync/adapters/libev.h
 *   test_backends libevent   include/ioasync/adapters/libevent.h
 *   test_backends glib       include/ioasync/adapters/glib.h
 *
 * Every backend passes the same assertions: connect success and refusal,
 * Happy Eyeballs racing past a black-holed first address, attempt and
 * overall timeouts, cancel from inside every callback, names through the
 * getaddrinfo pool (the answer is posted from a resolver thread while the
 * host loop runs in its "until idle" mode: the keepalive hook) and through
 * c-ares (its sockets are watchers of the host loop), an 8 MiB stream echo,
 * fds numbered above 1024, an fd closed and its number reused within one
 * iteration, freeing the ioasync loop with work in flight, and posts from
 * several threads.  A backend whose library was missing at build time exits
 * 77 (Skipped) with a message.  Only loopback addresses are used; names come
 * from /etc/hosts or from a DNS server of the test's own on 127.0.0.1. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns_fixture.h"

#if IOA_TEST_HAVE_LIBUV
#include "ioasync/adapters/libuv.h"
#endif
#if IOA_TEST_HAVE_LIBEV
#include "ioasync/adapters/libev.h"
#endif
#if IOA_TEST_HAVE_LIBEVENT
#include "ioasync/adapters/libevent.h"
#endif
#if IOA_TEST_HAVE_GLIB
#include "ioasync/adapters/glib.h"
#endif

/* ------------------------------------------------------------ backends */

typedef struct host {
  ioa_loop *loop;
#if IOA_TEST_HAVE_LIBUV
  uv_loop_t uv;
#endif
#if IOA_TEST_HAVE_LIBEV
  struct ev_loop *ev;
#endif
#if IOA_TEST_HAVE_LIBEVENT
  struct event_base *base;
#endif
#if IOA_TEST_HAVE_GLIB
  GMainContext *gctx;
#endif
} host;

typedef struct backend {
  const char *name;
  const char *package; /* what to install when it was not built in */
  int built;
  /* Make the host loop and an ioa_loop on it (h->loop); 0 or a code. */
  int (*open)(host *h, const ioa_loop_options *opts);
  /* One iteration of the host loop, blocking until something happens. */
  void (*step)(host *h);
  /* The host loop's own "run until there is nothing to do" (h->loop may be
   * NULL: freed already; then only the host's leftovers run). */
  void (*run)(host *h);
  /* Free h->loop (if not yet), settle and check the host, destroy it. */
  void (*close)(host *h);
} backend;

/* -- native: ioasync's own epoll loop */
static int native_open(host *h, const ioa_loop_options *opts) {
  return ioa_loop_new(opts, &h->loop);
}
static void native_step(host *h) { assert_true(ioa_loop_run(h->loop, IOA_RUN_ONCE) >= 0); }
static void native_run(host *h) {
  if (h->loop)
    assert_int_equal(ioa_loop_run(h->loop, IOA_RUN_DEFAULT), 0);
}
static void native_close(host *h) {
  ioa_loop_free(h->loop);
  h->loop = NULL;
}

/* -- embed: a hand-written poll() loop around the three embedding calls */
static void embed_poll(host *h) {
  struct pollfd p = {.fd = ioa_loop_fd(h->loop), .events = POLLIN};
  assert_true(p.fd >= 0);
  int timeout = ioa_loop_timeout(h->loop);
  assert_true(timeout >= -1);
  int n = poll(&p, 1, timeout);
  assert_true(n >= 0 || errno == EINTR);
}
static void embed_step(host *h) {
  embed_poll(h);
  assert_true(ioa_loop_run(h->loop, IOA_RUN_NOWAIT) >= 0);
}
static void embed_run(host *h) {
  if (!h->loop)
    return;
  /* A program's own loop: run what is ready; stop once nothing is left. */
  while (ioa_loop_run(h->loop, IOA_RUN_NOWAIT) > 0)
    embed_poll(h);
}

#if IOA_TEST_HAVE_LIBUV
static int uv_open(host *h, const ioa_loop_options *opts) {
  assert_int_equal(uv_loop_init(&h->uv), 0);
  int r = ioa_uv_attach(&h->uv, opts, &h->loop);
  if (r < 0) {
    uv_run(&h->uv, UV_RUN_DEFAULT); /* finish the failed attach's closes */
    assert_int_equal(uv_loop_close(&h->uv), 0);
  }
  return r;
}
static void uv_step(host *h) { uv_run(&h->uv, UV_RUN_ONCE); }
static void uv_run_idle(host *h) { assert_int_equal(uv_run(&h->uv, UV_RUN_DEFAULT), 0); }
static void uv_close_host(host *h) {
  ioa_loop_free(h->loop);
  h->loop = NULL;
  uv_run(&h->uv, UV_RUN_DEFAULT); /* the adapter's uv_close calls finish */
  assert_int_equal(uv_loop_close(&h->uv), 0); /* no handle left behind */
}
#endif

#if IOA_TEST_HAVE_LIBEV
static int ev_open(host *h, const ioa_loop_options *opts) {
  h->ev = ev_loop_new(EVFLAG_AUTO);
  assert_non_null(h->ev);
  int r = ioa_ev_attach(h->ev, opts, &h->loop);
  if (r < 0) {
    assert_int_equal(ev_run(h->ev, EVRUN_NOWAIT), 0);
    ev_loop_destroy(h->ev);
  }
  return r;
}
static void ev_step(host *h) { ev_run(h->ev, EVRUN_ONCE); }
static void ev_run_idle(host *h) { assert_int_equal(ev_run(h->ev, 0), 0); }
static void ev_close_host(host *h) {
  ioa_loop_free(h->loop);
  h->loop = NULL;
  assert_int_equal(ev_run(h->ev, EVRUN_NOWAIT), 0); /* no watcher left active */
  ev_loop_destroy(h->ev);
}
#endif

#if IOA_TEST_HAVE_LIBEVENT
static int event_open(host *h, const ioa_loop_options *opts) {
  h->base = event_base_new();
  assert_non_null(h->base);
  int r = ioa_event_attach(h->base, opts, &h->loop);
  if (r < 0) {
    assert_int_equal(event_base_get_num_events(h->base, EVENT_BASE_COUNT_ADDED), 0);
    event_base_free(h->base);
  }
  return r;
}
static void event_step(host *h) { assert_true(event_base_loop(h->base, EVLOOP_ONCE) >= 0); }
static void event_run_idle(host *h) {
  /* 1: returned because no event was left (0 would mean loopbreak/exit) */
  assert_int_equal(event_base_dispatch(h->base), 1);
}
static void event_close_host(host *h) {
  ioa_loop_free(h->loop);
  h->loop = NULL;
  assert_int_equal(event_base_get_num_events(h->base, EVENT_BASE_COUNT_ADDED), 0);
  event_base_free(h->base);
}
#endif

#if IOA_TEST_HAVE_GLIB
static int glib_open(host *h, const ioa_loop_options *opts) {
  h->gctx = g_main_context_new();
  int r = ioa_glib_attach(h->gctx, opts, &h->loop);
  if (r < 0)
    g_main_context_unref(h->gctx);
  return r;
}
static void glib_step(host *h) { g_main_context_iteration(h->gctx, TRUE); }
static void glib_run_idle(host *h) {
  if (h->loop)
    ioa_glib_run(h->gctx, h->loop);
  for (int i = 0; i < 100 && g_main_context_iteration(h->gctx, FALSE); i++)
    ;
}
static void glib_close_host(host *h) {
  ioa_loop_free(h->loop);
  h->loop = NULL;
  /* The source is gone: nothing of ioasync's is dispatched any more. */
  assert_false(g_main_context_iteration(h->gctx, FALSE));
  g_main_context_unref(h->gctx);
}
#endif

static const backend backends[] = {
    {"native", NULL, 1, native_open, native_step, native_run, native_close},
    {"embed", NULL, 1, native_open, embed_step, embed_run, native_close},
#if IOA_TEST_HAVE_LIBUV
    {"libuv", "libuv1-dev", 1, uv_open, uv_step, uv_run_idle, uv_close_host},
#else
    {"libuv", "libuv1-dev", 0, NULL, NULL, NULL, NULL},
#endif
#if IOA_TEST_HAVE_LIBEV
    {"libev", "libev-dev", 1, ev_open, ev_step, ev_run_idle, ev_close_host},
#else
    {"libev", "libev-dev", 0, NULL, NULL, NULL, NULL},
#endif
#if IOA_TEST_HAVE_LIBEVENT
    {"libevent", "libevent-dev", 1, event_open, event_step, event_run_idle, event_close_host},
#else
    {"libevent", "libevent-dev", 0, NULL, NULL, NULL, NULL},
#endif
#if IOA_TEST_HAVE_GLIB
    {"glib", "libglib2.0-dev", 1, glib_open, glib_step, glib_run_idle, glib_close_host},
#else
    {"glib", "libglib2.0-dev", 0, NULL, NULL, NULL, NULL},
#endif
};

static const backend *BE; /* the one this run tests */

static void host_open(host *h) {
  memset(h, 0, sizeof *h);
  assert_int_equal(BE->open(h, NULL), 0);
  assert_non_null(h->loop);
}

static int is_native(void) { return BE->open == native_open; }

/* ------------------------------------------------------------- running */

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Step the host loop until *flag is set or max_ms passed; an ioasync
 * timer ticking every 20 ms keeps each step short (and goes through the
 * adapter's timer like any other).  0 if *flag was set, else -ETIMEDOUT. */
static int run_until(host *h, const int *flag, unsigned max_ms) {
  ioa_timer tick;
  ioa_timer_init(h->loop, &tick, ioa_test_wake_cb, NULL);
  assert_int_equal(ioa_timer_start(&tick, 20000000u, 20000000u), 0);
  uint64_t end = wall_ms() + max_ms;
  while (!*flag && wall_ms() < end)
    BE->step(h);
  ioa_timer_stop(&tick);
  return *flag ? 0 : -ETIMEDOUT;
}

static void run_for(host *h, unsigned ms) {
  int never = 0;
  (void)run_until(h, &never, ms);
}

/* The host loop's own run-until-idle: it must keep going while ioasync has
 * work and return once it has none.  SIGALRM's default action ends the
 * test if it never returns. */
static void run_idle(host *h) {
  alarm(60);
  BE->run(h);
  alarm(0);
}

/* ------------------------------------------------------------- connect */

static ioa_addr inet4(int port) {
  ioa_addr a;
  memset(&a, 0, sizeof a);
  struct sockaddr_in *s = (struct sockaddr_in *)&a.addr;
  s->sin_family = AF_INET;
  s->sin_port = htons((uint16_t)port);
  s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.family = AF_INET;
  a.socktype = SOCK_STREAM;
  a.addrlen = sizeof *s;
  return a;
}

static int port_of(const ioa_addr *a) {
  return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
}

enum cancel_in { CANCEL_NONE, CANCEL_ATTEMPT, CANCEL_FAIL, CANCEL_RESOLVED, CANCEL_SOCKOPT,
                 CANCEL_WARNING, CANCEL_DONE };

typedef struct conn {
  ioa_connect_req *req;
  int done, fd, err, nfail, nattempt, nresolved, nwarn, fail_err;
  ioa_syscall err_syscall;
  ioa_addr peer;
  enum cancel_in cancel_in;
  int in_connect, called_inside;
  ioa_stream *stream; /* on_stream */
} conn;

static void c_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  conn *c = data;
  c->called_inside |= c->in_connect;
  c->done++;
  c->fd = fd;
  c->peer = *peer;
  if (c->cancel_in == CANCEL_DONE)
    ioa_connect_cancel(req); /* a no-op once completing */
}
static void c_error(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  conn *c = data;
  c->called_inside |= c->in_connect;
  c->done++;
  c->err = err;
  c->err_syscall = s;
  if (c->cancel_in == CANCEL_DONE)
    ioa_connect_cancel(req);
}
static void c_resolve_error(ioa_connect_req *req, int err, const char *msg, void *data) {
  (void)msg;
  c_error(req, IOA_SYSCALL_NONE, err, data);
}
static void c_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  conn *c = data;
  c->called_inside |= c->in_connect;
  if (c->nfail++ == 0)
    c->fail_err = f->err;
  if (c->cancel_in == CANCEL_FAIL)
    ioa_connect_cancel(req);
}
static void c_attempt(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                      void *data) {
  conn *c = data;
  (void)peer, (void)local;
  c->called_inside |= c->in_connect;
  c->nattempt++;
  if (c->cancel_in == CANCEL_ATTEMPT)
    ioa_connect_cancel(req);
}
static void c_resolved(ioa_connect_req *req, const ioa_addr *addrs, size_t n, int is_local,
                       void *data) {
  conn *c = data;
  (void)addrs, (void)n, (void)is_local;
  c->called_inside |= c->in_connect;
  c->nresolved++;
  if (c->cancel_in == CANCEL_RESOLVED)
    ioa_connect_cancel(req);
}
static int c_sockopt(ioa_connect_req *req, int fd, const ioa_addr *peer, const ioa_addr *local,
                     void *data) {
  conn *c = data;
  (void)fd, (void)peer, (void)local;
  if (c->cancel_in == CANCEL_SOCKOPT)
    ioa_connect_cancel(req);
  return 0;
}
static void c_warning(const char *msg, void *data) {
  conn *c = data;
  (void)msg;
  c->nwarn++;
  if (c->cancel_in == CANCEL_WARNING && c->req)
    ioa_connect_cancel(c->req);
}

static void conn_params(ioa_connect_params *p, conn *c) {
  memset(c, 0, sizeof *c);
  c->fd = -1;
  ioa_connect_params_init(p);
  p->on_connected = c_connected;
  p->on_connect_error = c_error;
  p->on_resolve_error = c_resolve_error;
  p->on_fail = c_fail;
  p->on_attempt = c_attempt;
  p->on_resolved = c_resolved;
  p->on_sockopt = c_sockopt;
  p->on_warning = c_warning;
  p->data = c;
}

static void conn_start(host *h, conn *c, const ioa_connect_params *p) {
  c->in_connect = 1;
  assert_int_equal(ioa_connect(h->loop, p, &c->req), 0);
  c->in_connect = 0;
}

/* Run until the completion, then a little more: a second completion would
 * show up; none ever runs from inside ioa_connect(). */
static void conn_finish(host *h, conn *c) {
  assert_int_equal(run_until(h, &c->done, 10000), 0);
  run_for(h, 30);
  assert_int_equal(c->done, 1);
  assert_false(c->called_inside);
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
}

static void connect_success(void **state) {
  (void)state;
  host h;
  host_open(&h);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  assert_true(lfd >= 0);
  ioa_addr a = inet4(port);
  ioa_connect_params p;
  conn c;
  conn_params(&p, &c);
  p.addr = &a;
  conn_start(&h, &c, &p);
  assert_int_equal(c.done, 0);
  /* The host loop's own run returns once the connect is done and nothing
   * else is left. */
  run_idle(&h);
  assert_int_equal(c.done, 1);
  assert_true(c.fd >= 0);
  assert_int_equal(port_of(&c.peer), port);
  assert_int_equal(c.nfail, 0);
  assert_false(c.called_inside);
  assert_int_equal(ioa_loop_active(h.loop), 0);
  close(c.fd);
  BE->close(&h);
  close(lfd);
}

static void connect_refused(void **state) {
  (void)state;
  host h;
  host_open(&h);
  ioa_addr a = inet4(ioa_test_closed_port(AF_INET));
  ioa_connect_params p;
  conn c;
  conn_params(&p, &c);
  p.addr = &a;
  conn_start(&h, &c, &p);
  conn_finish(&h, &c);
  assert_int_equal(c.err, -ECONNREFUSED);
  assert_int_equal(c.err_syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(c.nfail, 1);
  assert_int_equal(c.fail_err, -ECONNREFUSED);
  BE->close(&h);
}

/* The loopback black hole and a live listener on one host loop, with the
 * address list {black hole, live}. */
typedef struct hole_fixture {
  ioa_test_blackhole b;
  host h;
  int port, lfd;
  ioa_addr addrs[2];
} hole_fixture;

static void hole_open(hole_fixture *f) {
  if (ioa_test_blackhole_open(&f->b) < 0)
    skip();
  host_open(&f->h);
  f->lfd = ioa_test_listen_tcp(AF_INET, 8, &f->port);
  assert_true(f->lfd >= 0);
  f->addrs[0] = inet4(f->b.port);
  f->addrs[1] = inet4(f->port);
}

static void hole_close(hole_fixture *f) {
  BE->close(&f->h);
  close(f->lfd);
  ioa_test_blackhole_close(&f->b);
}

/* Happy Eyeballs over an address list: the black hole first, the live
 * listener wins after the attempt delay; the loser is closed, not failed. */
static void race_past_black_hole(void **state) {
  (void)state;
  hole_fixture f;
  hole_open(&f);
  ioa_connect_params p;
  conn c;
  conn_params(&p, &c);
  p.addrs = f.addrs;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 20;
  conn_start(&f.h, &c, &p);
  conn_finish(&f.h, &c);
  assert_int_equal(c.err, 0);
  assert_int_equal(c.nattempt, 2);
  assert_int_equal(c.nfail, 0);
  assert_int_equal(port_of(&c.peer), f.port);
  hole_close(&f);
}

/* Sequential: the black hole's attempt times out (on_fail ETIMEDOUT), then
 * the live address connects; alone, the overall deadline ends the connect. */
static void attempt_and_overall_timeouts(void **state) {
  (void)state;
  hole_fixture f;
  hole_open(&f);
  ioa_connect_params p;
  conn c;
  conn_params(&p, &c);
  p.addrs = f.addrs;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_SEQUENTIAL;
  p.attempt_timeout_ms = 60;
  conn_start(&f.h, &c, &p);
  conn_finish(&f.h, &c);
  assert_int_equal(c.nfail, 1);
  assert_int_equal(c.fail_err, -ETIMEDOUT);
  assert_int_equal(port_of(&c.peer), f.port);

  conn_params(&p, &c);
  p.addr = &f.addrs[0];
  p.timeout_ms = 60;
  conn_start(&f.h, &c, &p);
  conn_finish(&f.h, &c);
  assert_int_equal(c.err, -ETIMEDOUT);
  assert_int_equal(c.err_syscall, IOA_SYSCALL_NONE);
  hole_close(&f);
}

/* Every callback of a request may cancel it: the completion is then
 * -ECANCELED, exactly once, and every fd the request opened is closed (the
 * fd count check).  From the completion itself a cancel does nothing. */
static void cancel_from_every_callback(void **state) {
  (void)state;
  host h;
  host_open(&h);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  ioa_addr addrs[2] = {inet4(ioa_test_closed_port(AF_INET)), inet4(port)};
  for (enum cancel_in in = CANCEL_ATTEMPT; in <= CANCEL_DONE; in++) {
    ioa_connect_params p;
    conn c;
    conn_params(&p, &c);
    c.cancel_in = in;
    if (in == CANCEL_RESOLVED || in == CANCEL_WARNING) {
      /* by name (numeric, no thread); 0.0.0.0 warns as it resolves */
      p.host = in == CANCEL_WARNING ? "0.0.0.0" : "127.0.0.1";
      p.service = service;
      p.socktype = SOCK_STREAM;
    } else {
      p.addrs = addrs; /* the first is refused: on_fail runs */
      p.naddrs = 2;
    }
    conn_start(&h, &c, &p);
    conn_finish(&h, &c);
    if (in == CANCEL_DONE) {
      assert_int_equal(c.err, 0);
      assert_int_equal(c.nfail, 1);
    } else {
      assert_int_equal(c.err, -ECANCELED);
      assert_int_equal(c.err_syscall, IOA_SYSCALL_NONE);
    }
    if (in == CANCEL_WARNING)
      assert_int_equal(c.nwarn, 1);
  }
  assert_int_equal(ioa_loop_active(h.loop), 0);
  BE->close(&h);
  close(lfd);
}

/* A name through the default resolver while ioasync holds nothing but the
 * lookup: the host loop runs in its own until-idle mode and must keep
 * running until the answer arrives (the keepalive hook), then return once
 * the connect is done.  Returns the connected peer's port. */
static int connect_by_name_until_idle(host *h, const char *name, int port) {
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  ioa_connect_params p;
  conn c;
  conn_params(&p, &c);
  p.host = name;
  p.service = service;
  p.socktype = SOCK_STREAM;
  p.family = AF_INET;
  conn_start(h, &c, &p);
  run_idle(h); /* returns only after the answer and the connect */
  assert_int_equal(c.done, 1);
  assert_int_equal(c.err, 0);
  assert_true(c.fd >= 0);
  close(c.fd);
  return port_of(&c.peer);
}

static int hosts_has_localhost_v4(void) {
  FILE *f = fopen("/etc/hosts", "re");
  if (!f)
    return 0;
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    char *save = NULL, *ip = strtok_r(line, " \t\r\n", &save);
    if (!ip || strcmp(ip, "127.0.0.1") != 0)
      continue;
    for (char *n; !found && (n = strtok_r(NULL, " \t\r\n", &save));)
      found = !strcmp(n, "localhost");
  }
  fclose(f);
  return found;
}

/* "localhost" from /etc/hosts (on this system: a getaddrinfo pool thread). */
static void resolve_localhost(void **state) {
  (void)state;
  if (!hosts_has_localhost_v4()) {
    print_message("/etc/hosts does not map localhost to 127.0.0.1: skipped\n");
    skip();
  }
  host h;
  host_open(&h);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  assert_int_equal(connect_by_name_until_idle(&h, "localhost", port), port);
  BE->close(&h);
  close(lfd);
}

/* Inside `unshare -n -m` (the test's own network and mount namespaces):
 * nsswitch sends names to DNS only and resolv.conf to a DNS server of the
 * test's own on 127.0.0.1:53, so the answer can only come from getaddrinfo
 * on a pool thread, posted back to the loop. */
static void pool_ns_body(void **state) {
  (void)state;
  ioa_dns_record rec = {.name = "pool.ioa-test", .a = {"127.0.0.1"}};
  ioa_dns_fixture *fx;
  assert_int_equal(ioa_dns_fixture_start(&fx, "127.0.0.1", 53, &rec, 1), 0);
  host h;
  host_open(&h);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  assert_int_equal(connect_by_name_until_idle(&h, "pool.ioa-test", port), port);
  ioa_resolver *r;
  assert_int_equal(ioa_resolver_default(h.loop, &r), 0);
  ioa_resolver_stats st;
  ioa_resolver_get_stats(r, &st);
  assert_int_equal(st.sent, 1); /* handed to a pool thread */
  assert_true(ioa_dns_fixture_queries(fx, IOA_DNS_TYPE_A) >= 1);
  BE->close(&h);
  close(lfd);
  ioa_dns_fixture_stop(fx);
}

static int pool_ns_helper(void) {
  alarm(120);
  if (!ioa_test_in_own_namespaces()) {
    fprintf(stderr, "pool helper: not in namespaces of its own (run it through the test)\n");
    return IOA_TEST_NS_SETUP;
  }
  if (system("ip link set lo up") != 0)
    return IOA_TEST_NS_SETUP;
  char dir[] = "/tmp/ioa-backends-ns-XXXXXX";
  if (!mkdtemp(dir))
    return IOA_TEST_NS_SETUP;
  if (ioa_test_ns_hide_nscd() != 0)
    return IOA_TEST_NS_SETUP;
  if (ioa_test_ns_bind(dir, "nsswitch.conf", "hosts: dns\nservices: files\n",
                       "/etc/nsswitch.conf") != 0 ||
      ioa_test_ns_bind(dir, "resolv.conf", "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n",
                       "/etc/resolv.conf") != 0)
    return IOA_TEST_NS_SETUP;
  const struct CMUnitTest tests[] = {IOA_TEST(pool_ns_body)};
  return cmocka_run_group_tests_name("pool in a namespace", tests, NULL, NULL) ? IOA_TEST_NS_FAIL
                                                                               : 0;
}

static void resolve_through_pool(void **state) {
  (void)state;
  char arg[64];
  snprintf(arg, sizeof arg, "--pool-ns=%s", BE->name);
  ioa_test_in_netns(arg, "the lookup through the getaddrinfo pool failed (see above)",
                    "unshare -n -m, or a DNS server on 127.0.0.1:53 inside it, unavailable");
}

/* A name from a DNS server of the test's own (127.0.0.1) through c-ares,
 * whose sockets and retransmit timer are watchers of the host loop. */
static void resolve_through_cares(void **state) {
  (void)state;
  if (!ioa_resolver_have_cares()) {
    print_message("built without c-ares: skipped\n");
    skip();
  }
  ioa_dns_record rec = {.name = "backends.test", .a = {"127.0.0.1"}};
  ioa_dns_fixture *fx;
  assert_int_equal(ioa_dns_fixture_start(&fx, "127.0.0.1", 0, &rec, 1), 0);
  char servers[64], service[16];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", ioa_dns_fixture_port(fx));
  host h;
  host_open(&h);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  snprintf(service, sizeof service, "%d", port);
  ioa_resolver_options ro;
  ioa_resolver_options_init(&ro);
  ro.backend = IOA_RESOLVER_CARES;
  ro.servers = servers;
  ioa_resolver *r;
  assert_int_equal(ioa_resolver_new(h.loop, &ro, &r), 0);
  ioa_connect_params p;
  conn c;
  conn_params(&p, &c);
  p.host = "backends.test";
  p.service = service;
  p.socktype = SOCK_STREAM;
  p.family = AF_INET;
  p.resolver = r;
  conn_start(&h, &c, &p);
  conn_finish(&h, &c);
  assert_int_equal(c.err, 0);
  assert_int_equal(port_of(&c.peer), port);
  assert_true(ioa_dns_fixture_queries(fx, IOA_DNS_TYPE_A) >= 1);
  ioa_resolver_free(r);
  BE->close(&h);
  close(lfd);
  ioa_dns_fixture_stop(fx);
}

/* -------------------------------------------------------------- streams */

#define ECHO_BYTES (8u << 20)

static uint8_t pattern(size_t i) { return (uint8_t)((i * 131u) ^ (i >> 11)); }

typedef struct echo {
  host *h;
  int lfd;
  ioa_io accept_io;
  ioa_stream *server, *client;
  size_t received;
  int mismatch, client_closed, server_closed, errors;
} echo;

static size_t server_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  echo *e = data;
  (void)eof;
  if (len && ioa_stream_write(s, buf, len) < 0)
    e->errors++;
  return len; /* at EOF the stream closes once the echo is written */
}
static void server_closed(ioa_stream *s, void *data) {
  echo *e = data;
  e->server_closed = 1;
  ioa_stream_free(s);
  e->server = NULL;
}
static void stream_error(ioa_stream *s, const char *syscall, int err, void *data) {
  echo *e = data;
  (void)s;
  print_error("stream error: %s: %s\n", syscall, ioa_strerror(err));
  e->errors++;
}

static void on_accept(ioa_io *io, unsigned revents, void *data) {
  echo *e = data;
  (void)revents;
  int fd = accept4(e->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0)
    return;
  ioa_io_stop(io);
  assert_int_equal(ioa_stream_new(e->h->loop, fd, NULL, &e->server), 0);
  ioa_stream_callbacks cb;
  ioa_stream_callbacks_init(&cb);
  cb.on_read = server_read;
  cb.on_error = stream_error;
  cb.on_closed = server_closed;
  assert_int_equal(ioa_stream_set_callbacks(e->server, &cb, e), 0);
}

static size_t client_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  echo *e = data;
  (void)s, (void)eof;
  for (size_t i = 0; i < len && !e->mismatch; i++)
    if (buf[i] != pattern(e->received + i))
      e->mismatch = 1;
  e->received += len;
  return len;
}
static void client_closed(ioa_stream *s, void *data) {
  echo *e = data;
  e->client_closed = 1;
  ioa_stream_free(s);
  e->client = NULL;
}

static void on_client_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer,
                             void *data) {
  conn *c = data;
  (void)req, (void)peer;
  c->done++;
  c->stream = s;
}

/* Connect (optionally fd numbers above 1024 are in use) and echo bytes
 * through a server stream on the same loop: every byte comes back in order. */
static void echo_through(host *h, size_t bytes) {
  echo e;
  memset(&e, 0, sizeof e);
  e.h = h;
  int port;
  e.lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  assert_true(e.lfd >= 0);
  ioa_io_init(h->loop, &e.accept_io, e.lfd, on_accept, &e);
  assert_int_equal(ioa_io_start(&e.accept_io, IOA_READ), 0);
  ioa_addr a = inet4(port);
  ioa_connect_params p;
  conn c;
  conn_params(&p, &c);
  p.on_connected = NULL;
  p.on_stream = on_client_stream;
  p.addr = &a;
  conn_start(h, &c, &p);
  assert_int_equal(run_until(h, &c.done, 10000), 0);
  assert_non_null(c.stream);
  e.client = c.stream;
  ioa_stream_callbacks cb;
  ioa_stream_callbacks_init(&cb);
  cb.on_read = client_read;
  cb.on_error = stream_error;
  cb.on_closed = client_closed;
  assert_int_equal(ioa_stream_set_callbacks(e.client, &cb, &e), 0);
  uint8_t chunk[64 * 1024];
  for (size_t off = 0; off < bytes; off += sizeof chunk) {
    size_t n = bytes - off < sizeof chunk ? bytes - off : sizeof chunk;
    for (size_t i = 0; i < n; i++)
      chunk[i] = pattern(off + i);
    assert_int_equal(ioa_stream_write(e.client, chunk, n), 0);
  }
  assert_int_equal(ioa_stream_shutdown_write(e.client), 0);
  assert_int_equal(run_until(h, &e.client_closed, 60000), 0);
  assert_int_equal(run_until(h, &e.server_closed, 10000), 0);
  assert_int_equal(e.errors, 0);
  assert_false(e.mismatch);
  assert_int_equal(e.received, bytes);
  close(e.lfd);
}

static void stream_echo_8mib(void **state) {
  (void)state;
  host h;
  host_open(&h);
  echo_through(&h, ECHO_BYTES);
  BE->close(&h);
}

/* ------------------------------------------------------ fds above 1024 */

typedef struct high {
  ioa_io io;
  int reads;
} high;

static void high_read(ioa_io *io, unsigned revents, void *data) {
  high *x = data;
  char b[8];
  assert_true(revents & IOA_READ);
  assert_int_equal(read(ioa_io_fd(io), b, sizeof b), 1);
  x->reads++;
}

/* select()-based pollers break past FD_SETSIZE (1024); every backend here
 * must not: a pipe dup2()ed to 1500, and a connect + echo whose sockets get
 * numbers above 1100 because every lower one is taken. */
static void fds_above_1024(void **state) {
  (void)state;
  struct rlimit old, want;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < 1600) {
    print_message("RLIMIT_NOFILE hard limit %lu < 1600: skipped\n",
                  (unsigned long)old.rlim_max);
    skip();
  }
  want = old;
  if (want.rlim_cur == RLIM_INFINITY || want.rlim_cur < 1600)
    want.rlim_cur = 1600;
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  /* valgrind keeps the top of the fd range for itself and refuses both */
  if (setrlimit(RLIMIT_NOFILE, &want) < 0 || dup3(p[0], 1500, O_CLOEXEC) != 1500 ||
      dup3(p[1], 1501, O_CLOEXEC) != 1501) {
    print_message("cannot use fds 1500 and 1501 here (%s): skipped\n", strerror(errno));
    close(1500);
    close(1501);
    close(p[0]);
    close(p[1]);
    (void)setrlimit(RLIMIT_NOFILE, &old);
    skip();
  }
  close(p[0]);
  close(p[1]);
  host h;
  host_open(&h);
  high x = {0};
  ioa_io_init(h.loop, &x.io, 1500, high_read, &x);
  assert_int_equal(ioa_io_start(&x.io, IOA_READ), 0);
  assert_int_equal(write(1501, "h", 1), 1);
  assert_int_equal(run_until(&h, &x.reads, 5000), 0);
  ioa_io_stop(&x.io);

  /* Take every free number below 1100. */
  static int fill[1100];
  int nfill = 0;
  int base = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_true(base >= 0);
  for (int fd = base; nfill < 1100 && fd >= 0 && fd < 1100; nfill++)
    fd = fill[nfill] = fcntl(base, F_DUPFD_CLOEXEC, 0);
  assert_true(nfill > 0 && fill[nfill - 1] >= 1100);
  echo_through(&h, 256 * 1024);
  for (int i = 0; i < nfill; i++)
    close(fill[i]);
  close(base);
  close(1500);
  close(1501);
  BE->close(&h);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

/* --------------------------------------- an fd number reused in one turn */

typedef struct reuse {
  host *h;
  ioa_io io[2], fresh;
  int r[2], w[2];
  int calls[2], fresh_calls, replaced, fresh_w;
} reuse;

static void fresh_read(ioa_io *io, unsigned revents, void *data) {
  reuse *x = data;
  char b[8];
  (void)revents;
  x->fresh_calls++;
  /* A stale event for the closed predecessor would find nothing to read. */
  assert_int_equal(read(ioa_io_fd(io), b, sizeof b), 1);
}

/* Whichever of the two readable pipes is dispatched first stops the other's
 * watcher, closes its fd, puts a new (empty) pipe at the same number and
 * watches it: the event the old fd had in this same batch must not reach
 * the new watcher. */
static void reuse_read(ioa_io *io, unsigned revents, void *data) {
  reuse *x = data;
  int i = io == &x->io[0] ? 0 : 1, o = 1 - i;
  char b[8];
  (void)revents;
  x->calls[i]++;
  assert_int_equal(read(x->r[i], b, sizeof b), 1);
  if (x->replaced)
    return;
  x->replaced = 1;
  ioa_io_stop(&x->io[o]);
  int num = x->r[o];
  close(num);
  close(x->w[o]);
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  if (p[0] != num) {
    assert_int_equal(dup3(p[0], num, O_CLOEXEC), num);
    close(p[0]);
  }
  x->r[o] = num;
  x->w[o] = x->fresh_w = p[1];
  ioa_io_init(x->h->loop, &x->fresh, num, fresh_read, x);
  assert_int_equal(ioa_io_start(&x->fresh, IOA_READ), 0);
}

static void fd_reused_within_one_iteration(void **state) {
  (void)state;
  host h;
  host_open(&h);
  reuse x;
  memset(&x, 0, sizeof x);
  x.h = &h;
  for (int i = 0; i < 2; i++) {
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    x.r[i] = p[0];
    x.w[i] = p[1];
    ioa_io_init(h.loop, &x.io[i], x.r[i], reuse_read, &x);
    assert_int_equal(ioa_io_start(&x.io[i], IOA_READ), 0);
    assert_int_equal(write(x.w[i], "r", 1), 1);
  }
  assert_int_equal(run_until(&h, &x.replaced, 5000), 0);
  run_for(&h, 60);
  assert_int_equal(x.calls[0] + x.calls[1], 1);
  assert_int_equal(x.fresh_calls, 0);
  /* The new watcher works: its own data arrives. */
  assert_int_equal(write(x.fresh_w, "f", 1), 1);
  assert_int_equal(run_until(&h, &x.fresh_calls, 5000), 0);
  ioa_io_stop(&x.fresh);
  for (int i = 0; i < 2; i++) {
    ioa_io_stop(&x.io[i]);
    close(x.r[i]);
    close(x.w[i]);
  }
  BE->close(&h);
}

/* --------------------------------------------- level-triggered watchers */

typedef struct level {
  ioa_io io[2];
  int calls[2], done, both;
} level;

static void level_cb(ioa_io *io, unsigned revents, void *data) {
  level *x = data;
  int i = io == &x->io[0] ? 0 : 1;
  assert_true(revents & (i == 0 ? IOA_WRITE : IOA_READ));
  if (++x->calls[i] == 3) {
    ioa_io_stop(io);
    x->both = ++x->done == 2;
  }
}

/* Readiness is level-triggered on every backend: a watcher whose fd stays
 * ready (a pipe with room, a byte never read) is called again and again —
 * a write-only watcher too, which some adapters register one-shot and
 * re-arm. */
static void level_triggered_watchers(void **state) {
  (void)state;
  host h;
  host_open(&h);
  level x;
  memset(&x, 0, sizeof x);
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  assert_int_equal(write(p[1], "l", 1), 1);
  ioa_io_init(h.loop, &x.io[0], p[1], level_cb, &x);
  ioa_io_init(h.loop, &x.io[1], p[0], level_cb, &x);
  assert_int_equal(ioa_io_start(&x.io[0], IOA_WRITE), 0);
  assert_int_equal(ioa_io_start(&x.io[1], IOA_READ), 0);
  assert_int_equal(run_until(&h, &x.both, 5000), 0);
  assert_int_equal(x.calls[0], 3);
  assert_int_equal(x.calls[1], 3);
  BE->close(&h);
  close(p[0]);
  close(p[1]);
}

/* ------------------------------------------------ an fd that is closed */

typedef struct closed_fd {
  int calls, error;
} closed_fd;

static void closed_cb(ioa_io *io, unsigned revents, void *data) {
  closed_fd *x = data;
  x->calls++;
  x->error |= (revents & IOA_ERROR) != 0;
  ioa_io_stop(io);
}

/* A watcher on a closed fd: refused by ioa_io_start (-EBADF) where the
 * poller can tell at once (epoll), else reported through its callback as
 * IOA_ERROR (GLib's poll, libev) — never silently nothing. */
static void watch_closed_fd(void **state) {
  (void)state;
  host h;
  host_open(&h);
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  close(p[1]);
  close(p[0]);
  closed_fd x = {0};
  ioa_io io;
  ioa_io_init(h.loop, &io, p[0], closed_cb, &x);
  int r = ioa_io_start(&io, IOA_READ);
  if (r < 0) {
    assert_int_equal(r, -EBADF);
    assert_false(ioa_io_active(&io));
  } else {
    assert_int_equal(run_until(&h, &x.calls, 5000), 0);
    assert_true(x.error);
  }
  BE->close(&h);
}

/* ------------------------------------------- free with work in flight */

typedef struct inflight {
  ioa_io io;
  ioa_timer timer;
  ioa_defer defer;
  ioa_post post;
  ioa_loop *loop;
  int callbacks, posted;
} inflight;

static void inflight_io(ioa_io *io, unsigned revents, void *data) {
  (void)io, (void)revents;
  ((inflight *)data)->callbacks++;
}
static void inflight_timer(ioa_timer *t, void *data) {
  (void)t;
  ((inflight *)data)->callbacks++;
}
static void inflight_defer(ioa_defer *d, void *data) {
  (void)d;
  ((inflight *)data)->callbacks++;
}
static void noop_defer(ioa_defer *d, void *data) { (void)d, (void)data; }
static void inflight_post(ioa_post *p, void *data) {
  (void)p;
  ((inflight *)data)->posted++;
}
static void *inflight_poster(void *arg) {
  inflight *f = arg;
  ioa_loop_post(f->loop, &f->post, inflight_post, f);
  return NULL;
}

/* A readable watcher, a due timer, a queued defer, a reference and a post
 * from another thread, none run yet: ioa_loop_free() runs the post (its
 * owner may need it to release memory), drops the rest, and leaves the host
 * loop nothing — it returns at once, no ioasync callback runs, and (the
 * backend's close checks) no host handle is left. */
static void free_with_work_in_flight(void **state) {
  (void)state;
  host h;
  host_open(&h);
  inflight f;
  memset(&f, 0, sizeof f);
  f.loop = h.loop;
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  assert_int_equal(write(p[1], "x", 1), 1);
  ioa_io_init(h.loop, &f.io, p[0], inflight_io, &f);
  assert_int_equal(ioa_io_start(&f.io, IOA_READ), 0);
  ioa_timer_init(h.loop, &f.timer, inflight_timer, &f);
  assert_int_equal(ioa_timer_start(&f.timer, 0, 0), 0);
  ioa_defer_init(h.loop, &f.defer, inflight_defer, &f);
  ioa_defer_start(&f.defer);
  ioa_loop_ref(h.loop);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, inflight_poster, &f), 0);
  assert_int_equal(pthread_join(th, NULL), 0);

  ioa_loop_free(h.loop);
  h.loop = NULL;
  assert_int_equal(f.posted, 1);
  run_idle(&h); /* nothing of ioasync's keeps the host loop */
  assert_int_equal(f.callbacks, 0);
  /* The handles were detached: stopping them now is a harmless no-op. */
  ioa_io_stop(&f.io);
  ioa_timer_stop(&f.timer);
  ioa_defer_stop(&f.defer);
  assert_false(ioa_io_active(&f.io));
  BE->close(&h);
  close(p[0]);
  close(p[1]);
}

/* --------------------------------------------- posts from other threads */

#define POSTERS 4
#define POSTS_EACH 250

typedef struct posts {
  ioa_loop *loop;
  ioa_post post[POSTERS][POSTS_EACH];
  int last[POSTERS]; /* loop thread only */
  int received, out_of_order;
} posts;

typedef struct poster_arg {
  posts *ps;
  int id;
} poster_arg;

static void on_posted(ioa_post *p, void *data) {
  posts *ps = data;
  size_t idx = (size_t)(p - &ps->post[0][0]);
  int id = (int)(idx / POSTS_EACH), seq = (int)(idx % POSTS_EACH);
  if (seq != ps->last[id] + 1)
    ps->out_of_order++;
  ps->last[id] = seq;
  if (++ps->received == POSTERS * POSTS_EACH)
    ioa_loop_unref(ps->loop); /* the last one: ioasync has no work left */
}

static void *poster_main(void *arg) {
  poster_arg *pa = arg;
  for (int i = 0; i < POSTS_EACH; i++)
    ioa_loop_post(pa->ps->loop, &pa->ps->post[pa->id][i], on_posted, pa->ps);
  return NULL;
}

/* Four threads post 250 each while the host loop runs in its own
 * until-idle mode with nothing but a reference keeping ioasync alive: every
 * post arrives, each thread's in order, and the host loop returns after the
 * last one drops the reference. */
static void posts_from_threads(void **state) {
  (void)state;
  host h;
  host_open(&h);
  static posts ps;
  memset(&ps, 0, sizeof ps);
  ps.loop = h.loop;
  for (int i = 0; i < POSTERS; i++)
    ps.last[i] = -1;
  ioa_loop_ref(h.loop); /* on the loop thread, before handing work out */
  pthread_t th[POSTERS];
  poster_arg pa[POSTERS];
  for (int i = 0; i < POSTERS; i++) {
    pa[i].ps = &ps;
    pa[i].id = i;
    assert_int_equal(pthread_create(&th[i], NULL, poster_main, &pa[i]), 0);
  }
  run_idle(&h);
  for (int i = 0; i < POSTERS; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  assert_int_equal(ps.received, POSTERS * POSTS_EACH);
  assert_int_equal(ps.out_of_order, 0);
  assert_int_equal(ioa_loop_active(h.loop), 0);
  BE->close(&h);
}

/* ------------------------------------- construction and embedding calls */

/* Bad parameters are refused at the start, and a failed attach leaves
 * nothing behind (fd count, ASan); the embedding calls answer for the
 * native loop and refuse a foreign one. */
static void attach_and_embedding_calls(void **state) {
  (void)state;
  ioa_loop_options bad;
  memset(&bad, 0, sizeof bad); /* not filled by ioa_loop_options_init */
  host h;
  memset(&h, 0, sizeof h);
  assert_int_equal(BE->open(&h, &bad), IOA_EBADPARAM);
  assert_null(h.loop);
#if IOA_TEST_HAVE_LIBUV
  assert_int_equal(ioa_uv_attach(NULL, NULL, &h.loop), IOA_EBADPARAM);
#endif
#if IOA_TEST_HAVE_LIBEV
  assert_int_equal(ioa_ev_attach(NULL, NULL, &h.loop), IOA_EBADPARAM);
#endif
#if IOA_TEST_HAVE_LIBEVENT
  assert_int_equal(ioa_event_attach(NULL, NULL, &h.loop), IOA_EBADPARAM);
#endif
#if IOA_TEST_HAVE_GLIB
  assert_int_equal(ioa_glib_attach(NULL, NULL, NULL), IOA_EBADPARAM);
#endif
  assert_int_equal(ioa_loop_fd(NULL), IOA_EBADPARAM);
  assert_int_equal(ioa_loop_timeout(NULL), IOA_EBADPARAM);

  host_open(&h);
  if (!is_native()) {
    assert_int_equal(ioa_loop_fd(h.loop), -ENOTSUP);
    assert_int_equal(ioa_loop_timeout(h.loop), -ENOTSUP);
    BE->close(&h);
    return;
  }
  int fd = ioa_loop_fd(h.loop);
  assert_true(fd >= 0);
  assert_int_equal(ioa_loop_timeout(h.loop), -1); /* no timer */
  ioa_timer t;
  ioa_timer_init(h.loop, &t, ioa_test_wake_cb, NULL);
  assert_int_equal(ioa_timer_start(&t, 50000000u, 0), 0);
  int ms = ioa_loop_timeout(h.loop);
  assert_true(ms >= 0 && ms <= 50); /* rounded up, never more than asked */
  ioa_defer d;
  ioa_defer_init(h.loop, &d, noop_defer, NULL);
  ioa_defer_start(&d);
  assert_int_equal(ioa_loop_timeout(h.loop), 0); /* a defer is queued */
  ioa_defer_stop(&d);
  ioa_timer_stop(&t);
  /* A post makes the fd readable at once; NOWAIT runs it. */
  inflight f;
  memset(&f, 0, sizeof f);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 0), 0);
  ioa_loop_post(h.loop, &f.post, inflight_post, &f);
  assert_int_equal(poll(&p, 1, 0), 1);
  assert_int_equal(ioa_loop_run(h.loop, IOA_RUN_NOWAIT), 0);
  assert_int_equal(f.posted, 1);
  BE->close(&h);
}

/* ----------------------------------------------------------------- main */

/* Libraries that keep process-wide fds once used (libuv's signal pipe) are
 * used once here, outside every test's fd-count window. */
static void warm_up(void) {
#if IOA_TEST_HAVE_LIBUV
  uv_loop_t warm;
  if (uv_loop_init(&warm) == 0)
    uv_loop_close(&warm);
#endif
}

static const backend *find_backend(const char *name) {
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
    if (!strcmp(name, backends[i].name))
      return &backends[i];
  return NULL;
}

static int run_suite(const backend *be) {
  BE = be;
  if (!BE->built) {
    printf("SKIP: %s was not found when this was built (install %s): skipped\n", BE->name,
           BE->package);
    return 77;
  }
  const struct CMUnitTest tests[] = {
      IOA_TEST(attach_and_embedding_calls),
      IOA_TEST(connect_success),
      IOA_TEST(connect_refused),
      IOA_TEST(race_past_black_hole),
      IOA_TEST(attempt_and_overall_timeouts),
      IOA_TEST(cancel_from_every_callback),
      IOA_TEST(resolve_localhost),
      IOA_TEST(resolve_through_pool),
      IOA_TEST(resolve_through_cares),
      IOA_TEST(stream_echo_8mib),
      IOA_TEST(fds_above_1024),
      IOA_TEST(fd_reused_within_one_iteration),
      IOA_TEST(level_triggered_watchers),
      IOA_TEST(watch_closed_fd),
      IOA_TEST(free_with_work_in_flight),
      IOA_TEST(posts_from_threads),
  };
  char group[64];
  snprintf(group, sizeof group, "backend %s", BE->name);
  return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}

/* test_backends BACKEND runs the suite on one backend (CTest runs one per
 * backend); with no argument, on every backend built into this program. */
int main(int argc, char **argv) {
  if (argc == 2 && !strncmp(argv[1], "--pool-ns=", 10)) {
    BE = find_backend(argv[1] + 10);
    if (!BE || !BE->built)
      return IOA_TEST_NS_SETUP;
    warm_up();
    return pool_ns_helper();
  }
  if (argc > 2) {
    fprintf(stderr, "usage: %s [native|embed|libuv|libev|libevent|glib]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  warm_up();
  if (argc == 2) {
    const backend *be = find_backend(argv[1]);
    if (!be) {
      fprintf(stderr, "%s: unknown backend '%s'\n", argv[0], argv[1]);
      return 2;
    }
    return run_suite(be);
  }
  int failed = 0;
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
    if (backends[i].built)
      failed += run_suite(&backends[i]) != 0;
  return failed ? 1 : 0;
}
