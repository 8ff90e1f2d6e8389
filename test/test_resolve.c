/* SPDX-License-Identifier: MIT */
/* Resolver tests.
 *
 * NETWORK RULE: the getaddrinfo backend only ever sees numeric names and
 * "localhost" (AF_INET: /etc/hosts here has no ::1 entry, so an AAAA lookup
 * of localhost would reach the system DNS server).  Names that need DNS go
 * to our own responder on 127.0.0.1: c-ares is pointed at it, and glibc only
 * inside a private network+mount namespace (`unshare -n -m`) whose
 * /etc/resolv.conf is bind-mounted to name 127.0.0.1:53. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addrsort.h"
#include "dns_fixture.h"
#include "resolve_internal.h"

/* ------------------------------------------------------------- helpers */

/* Local formatter: addr.c belongs to another module. */
static const char *fmt(const ioa_addr *a, char *buf, size_t size) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (a->family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)&a->addr;
    inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
    port = ntohs(s->sin_port);
    snprintf(buf, size, "%s:%d", ip, port);
  } else if (a->family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->addr;
    inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
    port = ntohs(s->sin6_port);
    snprintf(buf, size, "[%s]:%d", ip, port);
  } else {
    snprintf(buf, size, "family-%d", a->family);
  }
  return buf;
}

static const ioa_addr *find_addr(const ioa_addr *addrs, size_t n, const char *text) {
  char buf[80];
  for (size_t i = 0; i < n; i++)
    if (strcmp(fmt(&addrs[i], buf, sizeof buf), text) == 0)
      return &addrs[i];
  return NULL;
}

static int has_addr(const ioa_addr *addrs, size_t n, const char *text) {
  return find_addr(addrs, n, text) != NULL;
}

typedef struct outcome {
  int calls;
  int status;
  int sys_errno;
  char message[256];
  char canonname[256]; /* "" when the result has none */
  size_t naddrs;
  ioa_addr addrs[32];
  int partials;
  int partial_family[4];
  size_t partial_n[4];
  int cancel_self_in_done;       /* call ioa_resolve_cancel(req) inside on_done */
  int cancel_in_partial;         /* cancel at the first on_partial */
  ioa_resolve_req *cancel_other; /* cancel this one inside on_done */
  ioa_resolver **free_in_done;   /* free this resolver inside on_done */
} outcome;

static void on_done(ioa_resolve_req *req, const ioa_resolve_result *res, void *data) {
  outcome *o = data;
  o->calls++;
  o->status = res->status;
  o->sys_errno = res->sys_errno;
  snprintf(o->message, sizeof o->message, "%s", res->message ? res->message : "(null)");
  snprintf(o->canonname, sizeof o->canonname, "%s", res->canonname ? res->canonname : "");
  o->naddrs = res->naddrs;
  for (size_t i = 0; i < res->naddrs && i < 32; i++)
    o->addrs[i] = res->addrs[i];
  if (o->cancel_self_in_done)
    ioa_resolve_cancel(req); /* a no-op: the request is completing */
  if (o->cancel_other) {
    ioa_resolve_req *other = o->cancel_other;
    o->cancel_other = NULL;
    ioa_resolve_cancel(other);
  }
  if (o->free_in_done && *o->free_in_done) {
    ioa_resolver_free(*o->free_in_done);
    *o->free_in_done = NULL;
  }
}

static void on_partial(ioa_resolve_req *req, int family, const ioa_addr *addrs, size_t n,
                       void *data) {
  outcome *o = data;
  assert_int_equal(o->calls, 0); /* partials come before on_done */
  if (o->partials < 4) {
    o->partial_family[o->partials] = family;
    o->partial_n[o->partials] = n;
  }
  o->partials++;
  for (size_t i = 0; i < n; i++)
    assert_int_equal(addrs[i].family, family);
  if (o->cancel_in_partial)
    ioa_resolve_cancel(req);
}

static int start(ioa_resolver *r, const char *host, const char *service, int family,
                 int socktype, int flags, unsigned timeout_ms, outcome *o,
                 ioa_resolve_req **req) {
  ioa_resolve_params p = {
      .struct_size = sizeof(ioa_resolve_params),
      .host_len = IOA_NUL_TERMINATED,
      .service_len = IOA_NUL_TERMINATED,
      .host = host,
      .service = service,
      .hints = {.family = family, .socktype = socktype, .flags = flags},
      .timeout_ms = timeout_ms,
      .on_done = on_done,
      .on_partial = on_partial,
      .data = o,
  };
  int rc = ioa_resolve(r, &p, req);
  if (rc == 0)
    assert_int_equal(o->calls, 0); /* never from inside ioa_resolve */
  return rc;
}

/* Threads of this process (from /proc/self/task); -1 where a sanitizer's
 * own threads come and go (TSan's background thread starts lazily). */
#if defined(__SANITIZE_THREAD__)
#define IOA_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IOA_TEST_TSAN 1
#endif
#endif
static int thread_count(void) {
#ifdef IOA_TEST_TSAN
  return -1;
#else
  return ioa_test_dir_entries("/proc/self/task");
#endif
}

/* The thread count once it reaches want, or what it is after 2 s: a joined
 * thread's /proc/self/task entry can outlive pthread_join() for a moment
 * (the kernel clears the tid before it reaps the task). */
static int thread_count_settled(int want) {
  int n = thread_count();
  for (int i = 0; i < 2000 && n != want; i++) {
    usleep(1000);
    n = thread_count();
  }
  return n;
}

/* Run until o->calls, bounded. */
static void wait_for(ioa_loop *loop, outcome *o, unsigned max_ms) {
  assert_int_equal(ioa_test_run_until(loop, &o->calls, max_ms), 0);
}

/* Run until o's on_done, one loop iteration at a time (at most 10 s, a
 * 20 ms tick keeping the loop awake): 1 if on_partial ran on an iteration
 * before on_done's, i.e. a family was handed over early. */
static int family_came_early(ioa_loop *loop, outcome *o) {
  ioa_timer tick;
  ioa_timer_init(loop, &tick, ioa_test_wake_cb, NULL);
  if (ioa_timer_start(&tick, 20u * 1000000u, 20u * 1000000u) < 0)
    return -1;
  int early = 0;
  for (int i = 0; i < 500 && !o->calls; i++) {
    if (ioa_loop_run(loop, IOA_RUN_ONCE) < 0)
      break;
    if (o->partials > 0 && !o->calls)
      early = 1;
  }
  ioa_timer_stop(&tick);
  return early;
}

/* Let posts of detached results run so they free themselves. */
static void drain(ioa_loop *loop) {
  for (int i = 0; i < 200 && ioa_loop_run(loop, IOA_RUN_NOWAIT) > 0; i++)
    usleep(1000);
}

/* A getaddrinfo pool that answers "localhost" through getaddrinfo too,
 * not from the hosts table, so that these tests reach its threads. */
static ioa_resolver *new_pool(ioa_loop *loop, unsigned max_threads) {
  ioa_resolver_options o = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_GETADDRINFO, .max_threads = max_threads};
  ioa_resolver *r = NULL;
  assert_int_equal(ioa_resolver_new(loop, &o, &r), 0);
  ioa__resolver_set_hosts_table(r, 0);
  return r;
}

/* ------------------------------------------------- getaddrinfo backend */

static void test_numeric_fast_path(void **state) {
  int threads = thread_count();
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 2);
  outcome o4 = {0}, o6 = {0};
  assert_int_equal(start(r, "127.0.0.1", "8080", AF_UNSPEC, SOCK_STREAM, 0, 0, &o4, NULL), 0);
  assert_int_equal(start(r, "::1", "53", AF_INET6, SOCK_DGRAM, 0, 0, &o6, NULL), 0);
  assert_int_equal(o4.calls + o6.calls, 0);
  wait_for(loop, &o4, 2000);
  wait_for(loop, &o6, 2000);
  assert_int_equal(o4.status, 0);
  assert_int_equal(o4.naddrs, 1);
  assert_int_equal(o4.addrs[0].family, AF_INET);
  assert_int_equal(o4.addrs[0].socktype, SOCK_STREAM);
  assert_true(has_addr(o4.addrs, o4.naddrs, "127.0.0.1:8080"));
  assert_int_equal(o4.partials, 0); /* a whole answer goes to on_done alone */
  assert_int_equal(o6.status, 0);
  assert_true(has_addr(o6.addrs, o6.naddrs, "[::1]:53"));
  assert_int_equal(o6.addrs[0].socktype, SOCK_DGRAM);
  if (threads >= 0)
    assert_int_equal(thread_count(), threads); /* no thread for numeric input */
  ioa_resolver_free(r);
  assert_int_equal(o4.calls, 1);
  ioa_loop_free(loop);
}

static void test_localhost_pool(void **state) {
  int threads = thread_count();
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 2);
  if (threads >= 0)
    assert_int_equal(thread_count(), threads); /* started lazily */
  outcome o = {0}, os = {0};
  assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &o, NULL), 0);
  /* numeric host, service by name: goes through the pool (service lookup) */
  assert_int_equal(start(r, "127.0.0.1", "http", AF_INET, SOCK_STREAM, 0, 0, &os, NULL), 0);
  wait_for(loop, &o, 5000);
  wait_for(loop, &os, 5000);
  assert_int_equal(o.calls, 1);
  assert_int_equal(o.status, 0);
  assert_true(has_addr(o.addrs, o.naddrs, "127.0.0.1:80"));
  assert_int_equal(o.partials, 0); /* one getaddrinfo call: whole, to on_done */
  assert_int_equal(os.status, 0);
  assert_true(has_addr(os.addrs, os.naddrs, "127.0.0.1:80"));
  /* no host: getaddrinfo's loopback (or wildcard with AI_PASSIVE) */
  outcome nh = {0}, pv = {0};
  assert_int_equal(start(r, NULL, "http", AF_INET, SOCK_STREAM, 0, 0, &nh, NULL), 0);
  assert_int_equal(start(r, NULL, "8080", AF_INET, SOCK_STREAM, AI_PASSIVE, 0, &pv, NULL), 0);
  wait_for(loop, &nh, 5000);
  wait_for(loop, &pv, 5000);
  assert_true(has_addr(nh.addrs, nh.naddrs, "127.0.0.1:80"));
  assert_true(has_addr(pv.addrs, pv.naddrs, "0.0.0.0:8080"));
  int grown = thread_count() - threads;
  if (threads >= 0)
    assert_true(grown >= 1 && grown <= 2); /* bounded by max_threads */
  ioa_resolver_free(r);
  if (threads >= 0)
    assert_int_equal(thread_count_settled(threads), threads); /* joined */
  drain(loop);
  ioa_loop_free(loop);
}

static void test_bad_input(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 1);
  outcome o = {0};
  char longhost[300];
  memset(longhost, 'a', sizeof longhost);
  /* 254 bytes in labels of 63: too long */
  for (int i = 63; i < 254; i += 64)
    longhost[i] = '.';
  longhost[254] = '\0';
  assert_int_equal(start(r, longhost, "80", AF_INET, SOCK_STREAM, 0, 0, &o, NULL), IOA_EHOSTNAME);
  char label[80];
  memset(label, 'b', 64);
  strcpy(label + 64, ".test");
  assert_int_equal(start(r, label, "80", AF_INET, 0, 0, 0, &o, NULL), IOA_EHOSTNAME);
  assert_int_equal(start(r, "", "80", AF_INET, 0, 0, 0, &o, NULL), IOA_EHOSTNAME);
  assert_int_equal(start(r, "a..b", "80", AF_INET, 0, 0, 0, &o, NULL), IOA_EHOSTNAME);
  assert_int_equal(start(r, ".a", "80", AF_INET, 0, 0, 0, &o, NULL), IOA_EHOSTNAME);
  assert_int_equal(start(r, ".", "80", AF_INET, 0, 0, 0, &o, NULL), IOA_EHOSTNAME);
  assert_int_equal(start(r, "localhost", "", AF_INET, 0, 0, 0, &o, NULL), IOA_EAI_SERVICE);
  assert_int_equal(start(r, "localhost", "65536", AF_INET, 0, 0, 0, &o, NULL), IOA_EAI_SERVICE);
  assert_int_equal(start(r, "localhost", "99999999999999999999", AF_INET, 0, 0, 0, &o, NULL),
                   IOA_EAI_SERVICE);
  assert_int_equal(start(r, "localhost", "no-such-service-ioa", AF_INET, SOCK_STREAM, 0, 0, &o,
                         NULL),
                   IOA_EAI_SERVICE);
  assert_int_equal(start(r, NULL, NULL, AF_INET, 0, 0, 0, &o, NULL), IOA_EAI_NONAME);

  /* Embedded NUL through explicit lengths. */
  ioa_resolve_params p;
  ioa_resolve_params_init(&p);
  p.host = "local\0host";
  p.host_len = 10;
  p.service = "80";
  p.on_done = on_done;
  p.data = &o;
  assert_int_equal(ioa_resolve(r, &p, NULL), IOA_EHOSTNAME);
  p.host = "localhost";
  p.host_len = IOA_NUL_TERMINATED;
  p.service = "8\0" "0";
  p.service_len = 3;
  assert_int_equal(ioa_resolve(r, &p, NULL), IOA_EAI_SERVICE);
  p.service_len = IOA_NUL_TERMINATED;
  p.on_done = NULL;
  assert_int_equal(ioa_resolve(r, &p, NULL), IOA_EBADPARAM);
  /* Explicit length shorter than the string is honoured, not truncated. */
  outcome ok = {0};
  p.on_done = on_done;
  p.data = &ok;
  p.host = "127.0.0.1garbage";
  p.host_len = 9;
  p.service = "443xyz";
  p.service_len = 3;
  assert_int_equal(ioa_resolve(r, &p, NULL), 0);
  wait_for(loop, &ok, 2000);
  assert_int_equal(ok.status, 0);
  assert_true(has_addr(ok.addrs, ok.naddrs, "127.0.0.1:443"));

  assert_int_equal(o.calls, 0);
  ioa_resolver_free(r);
  ioa_loop_free(loop);
}

/* Each EAI_* keeps its own code and gai_strerror's text. */
static void test_gai_errors(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 1);
  struct {
    const char *host, *service;
    int family, socktype, flags;
    int want, gai;
  } cases[] = {
      {"127.0.0.1", "80", 12345, SOCK_STREAM, 0, IOA_EAI_FAMILY, EAI_FAMILY},
      {"127.0.0.1", "80", AF_INET, 12345, 0, IOA_EAI_SOCKTYPE, EAI_SOCKTYPE},
      {"127.0.0.1", "80", AF_INET, SOCK_STREAM, 0x40000000, IOA_EAI_BADFLAGS, EAI_BADFLAGS},
      {"127.0.0.1", "80", AF_INET, SOCK_RAW, 0, IOA_EAI_SERVICE, EAI_SERVICE},
      {"localhost", "80", AF_INET, SOCK_STREAM, AI_NUMERICHOST, IOA_EAI_NONAME, EAI_NONAME},
      {"::1", "80", AF_INET, SOCK_STREAM, 0, IOA_EAI_ADDRFAMILY, EAI_ADDRFAMILY},
      /* a broken IPv6 literal is final on the loop thread, never a DNS query */
      {"fe80::1%no-such-if0", "80", AF_INET6, SOCK_STREAM, 0, IOA_EAI_NONAME, EAI_NONAME},
      {"1:2:3", "80", AF_UNSPEC, SOCK_STREAM, 0, IOA_EAI_NONAME, EAI_NONAME},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    outcome o = {0};
    assert_int_equal(start(r, cases[i].host, cases[i].service, cases[i].family,
                           cases[i].socktype, cases[i].flags, 0, &o, NULL),
                     0);
    wait_for(loop, &o, 5000);
    /* glibc spells "wrong family for a numeric host" either way */
    if (cases[i].want == IOA_EAI_ADDRFAMILY &&
        (o.status == IOA_EAI_NONAME || o.status == IOA_EAI_FAMILY))
      continue;
    if (o.status != cases[i].want)
      fail_msg("case %zu: got %s (%s), want %s", i, ioa_err_name(o.status), o.message,
               ioa_err_name(cases[i].want));
    assert_string_equal(o.message, gai_strerror(cases[i].gai));
    assert_int_equal(o.naddrs, 0);
    assert_int_equal(o.partials, 0);
  }
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_cancel(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 1);
  outcome o[6];
  memset(o, 0, sizeof o);
  ioa_resolve_req *req[6];
  for (int i = 0; i < 6; i++)
    assert_int_equal(start(r, i % 2 ? "localhost" : "127.0.0.1", "80", AF_INET, SOCK_STREAM, 0,
                           0, &o[i], &req[i]),
                     0);
  /* numeric, fast path: cancelled before its defer ran */
  ioa_resolve_cancel(req[0]);
  assert_int_equal(o[0].calls, 1);
  assert_int_equal(o[0].status, IOA_EAI_CANCELED);
  assert_string_equal(o[0].message, ioa_strerror(IOA_EAI_CANCELED));
  /* queued or running on the single thread */
  ioa_resolve_cancel(req[3]);
  ioa_resolve_cancel(req[5]);
  assert_int_equal(o[3].calls, 1);
  assert_int_equal(o[3].status, IOA_EAI_CANCELED);
  assert_int_equal(o[5].status, IOA_EAI_CANCELED);
  /* cancelling itself from inside on_done is a no-op */
  o[1].cancel_self_in_done = 1;
  wait_for(loop, &o[1], 5000);
  wait_for(loop, &o[2], 5000);
  wait_for(loop, &o[4], 5000);
  assert_int_equal(o[1].status, 0);
  assert_int_equal(o[4].status, 0);
  for (int i = 0; i < 6; i++)
    assert_int_equal(o[i].calls, 1);
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_cancel_other_from_callback(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 1);
  outcome a = {0}, b = {0};
  ioa_resolve_req *rb;
  /* Both on the fast path: deferred in FIFO order, so a completes first
   * and b is still pending.  (The stress test covers pool lookups.) */
  assert_int_equal(start(r, "127.0.0.1", "1", AF_INET, SOCK_STREAM, 0, 0, &a, NULL), 0);
  assert_int_equal(start(r, "127.0.0.2", "2", AF_INET, SOCK_STREAM, 0, 0, &b, &rb), 0);
  a.cancel_other = rb;
  wait_for(loop, &a, 5000);
  assert_int_equal(a.status, 0);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.status, IOA_EAI_CANCELED);
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}


static void test_free_with_lookups_in_flight(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 2);
  enum { N = 40 };
  outcome o[N];
  memset(o, 0, sizeof o);
  for (int i = 0; i < N; i++)
    assert_int_equal(start(r, i % 3 ? "localhost" : "127.0.0.1", "80", AF_INET, SOCK_STREAM, 0,
                           0, &o[i], NULL),
                     0);
  /* Let some complete or be posted, then free mid-flight. */
  ioa_loop_run(loop, IOA_RUN_NOWAIT);
  ioa_resolver_free(r);
  for (int i = 0; i < N; i++)
    assert_int_equal(o[i].calls, 1);
  drain(loop);
  for (int i = 0; i < N; i++)
    assert_int_equal(o[i].calls, 1);
  ioa_loop_free(loop);
}

static void test_free_from_callback(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 1);
  outcome a = {0}, b = {0};
  /* One thread: b runs after a and is posted after a, so when a's
   * callback frees the resolver b is queued, running or posted. */
  assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &a, NULL), 0);
  assert_int_equal(start(r, "localhost", "81", AF_INET, SOCK_STREAM, 0, 0, &b, NULL), 0);
  a.free_in_done = &r;
  wait_for(loop, &a, 5000);
  assert_null(r);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.status, IOA_EAI_CANCELED);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_default_resolver(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r1 = NULL, *r2 = NULL;
  assert_int_equal(ioa_resolver_default(loop, &r1), 0);
  assert_int_equal(ioa_resolver_default(loop, &r2), 0);
  assert_ptr_equal(r1, r2);
  outcome o = {0}, pending = {0};
  assert_int_equal(start(r1, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &o, NULL), 0);
  wait_for(loop, &o, 5000);
  assert_int_equal(o.status, 0);
  /* ioa_loop_free frees it, cancelling what is outstanding */
  assert_int_equal(start(r1, "127.0.0.1", "80", AF_INET, SOCK_STREAM, 0, 0, &pending, NULL), 0);
  ioa_loop_free(loop);
  assert_int_equal(pending.calls, 1);
  assert_int_equal(pending.status, IOA_EAI_CANCELED);
}

/* ioa_loop_free() right after a worker posted its result: the default
 * resolver frees the posted result itself (ASan's leak check would see it). */
static void test_default_resolver_posted_result(void **state) {
  for (int round = 0; round < 5; round++) {
    ioa_loop *loop = ioa_test_new_loop();
    ioa_resolver *r = NULL;
    assert_int_equal(ioa_resolver_default(loop, &r), 0);
    outcome o = {0};
    assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &o, NULL), 0);
    usleep(20000); /* make "already posted" likely; either way must not leak */
    ioa_loop_free(loop);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, IOA_EAI_CANCELED);
  }
}

static void test_backend_options(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = NULL;
  ioa_resolver_options bad = {.struct_size = sizeof(ioa_resolver_options), .backend = (ioa_resolver_backend)7};
  assert_int_equal(ioa_resolver_new(loop, &bad, &r), IOA_EBADPARAM);
  ioa_resolver_options ca = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_CARES, .servers = "127.0.0.1:1"};
  int rc = ioa_resolver_new(loop, &ca, &r);
  if (ioa_resolver_have_cares()) {
    assert_int_equal(rc, 0);
    ioa_resolver_free(r);
    ca.servers = "not an address list";
    assert_int_equal(ioa_resolver_new(loop, &ca, &r), IOA_EBADPARAM);
  } else {
    assert_int_equal(rc, -ENOTSUP);
  }
  ioa_loop_free(loop);
}

/* ------------------------------------------------------- answer cache */

static ioa_resolver *new_cached_pool(ioa_loop *loop, unsigned ttl_ms, unsigned max) {
  ioa_resolver_options o = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_GETADDRINFO,
                            .max_threads = 1,
                            .cache_ttl_ms = ttl_ms,
                            .cache_max = max};
  ioa_resolver *r = NULL;
  assert_int_equal(ioa_resolver_new(loop, &o, &r), 0);
  ioa__resolver_set_hosts_table(r, 0); /* "localhost" through the pool, as a DNS name */
  return r;
}

static ioa_resolver_stats stats_of(const ioa_resolver *r) {
  ioa_resolver_stats st;
  ioa_resolver_get_stats(r, &st);
  return st;
}

/* Resolve and wait; returns the outcome's status. */
static int resolve_wait(ioa_loop *loop, ioa_resolver *r, const char *host, const char *service,
                        int socktype, outcome *o) {
  memset(o, 0, sizeof *o);
  assert_int_equal(start(r, host, service, AF_INET, socktype, 0, 0, o, NULL), 0);
  wait_for(loop, o, 5000);
  assert_int_equal(o->calls, 1);
  return o->status;
}

/* The connector's shortcut (ioa__resolve_at_hand) answers from the hosts
 * table inside the call, and remembers a one-address answer: asked again,
 * the memo must give what the table gives -- the same answer for the same
 * question, a new one when the table changes, and never one for another
 * service, family or name, or with AI_ADDRCONFIG (interface state). */
static void test_at_hand_and_memo(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = NULL;
  assert_int_equal(ioa_resolver_new(loop, NULL, &r), 0);
  static const char v1[] = "127.0.0.1 memo.test\n::1 memo6.test\n";
  static const char v2[] = "127.0.0.2 memo.test\n";
  assert_int_equal(ioa__hosts_load(r->hosts, v1, sizeof v1 - 1, 0), 0);
  ioa_resolve_hints h = {AF_UNSPEC, SOCK_STREAM, 0, 0};
  ioa_addr buf[2], *v;
  size_t n;
  char text[IOA_ADDR_STRLEN];
  struct {
    const char *host, *service;
    int family, flags;
    const char *want; /* NULL: not at hand */
  } steps[] = {
      {"memo.test", "80", AF_UNSPEC, 0, "127.0.0.1:80"},
      {"memo.test", "80", AF_UNSPEC, 0, "127.0.0.1:80"}, /* the memo */
      {"memo.test", "81", AF_UNSPEC, 0, "127.0.0.1:81"},
      {"memo.test", "81", AF_INET6, 0, NULL},            /* no IPv6 line: the backend's */
      {"memo6.test", "81", AF_UNSPEC, 0, "[::1]:81"},
      {"memo.test", NULL, AF_UNSPEC, 0, "127.0.0.1:0"},
      {"memo.test", NULL, AF_UNSPEC, 0, "127.0.0.1:0"},
      {"absent.test", "80", AF_UNSPEC, 0, NULL},
      {"memo.test", "80", AF_UNSPEC, 0, "127.0.0.1:80"},
      {"v2", NULL, 0, 0, NULL}, /* the table changes here */
      {"memo.test", "80", AF_UNSPEC, 0, "127.0.0.2:80"},
      {"memo.test", "80", AF_UNSPEC, 0, "127.0.0.2:80"},
      {"memo.test", "http", AF_UNSPEC, 0, "127.0.0.2:80"}, /* a named service: never memoised */
      {"memo.test", "http", AF_UNSPEC, 0, "127.0.0.2:80"},
      {"bad..name", "80", AF_UNSPEC, 0, NULL},
      {"127.0.0.1", "80", AF_UNSPEC, 0, NULL}, /* numeric: ioa_resolve's own path */
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    if (strcmp(steps[i].host, "v2") == 0) {
      assert_int_equal(ioa__hosts_load(r->hosts, v2, sizeof v2 - 1, 0), 0);
      continue;
    }
    if (steps[i].service && strcmp(steps[i].service, "http") == 0 &&
        !getservbyname("http", "tcp"))
      continue; /* no /etc/services (netbase) on this machine */
    ioa_resolver_stats before, after;
    ioa_resolver_get_stats(r, &before);
    h.family = steps[i].family;
    h.flags = steps[i].flags;
    int rc = ioa__resolve_at_hand(r, steps[i].host, steps[i].service, &h, buf, 2, &v, &n);
    ioa_resolver_get_stats(r, &after);
    if (!steps[i].want) {
      assert_int_equal(rc, 0);
      assert_int_equal(after.lookups, before.lookups); /* ioa_resolve() counts it */
      continue;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(n, 1);
    assert_ptr_equal(v, buf);
    assert_true(ioa_addr_format(v, text, sizeof text) > 0);
    assert_string_equal(text, steps[i].want);
    assert_int_equal(after.hosts, before.hosts + 1);
    assert_int_equal(after.lookups, before.lookups + 1);
  }
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_cache_pool(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_cached_pool(loop, 60000, 0);
  outcome first, again, other;
  assert_int_equal(resolve_wait(loop, r, "localhost", "80", SOCK_STREAM, &first), 0);
  ioa_resolver_stats st = stats_of(r);
  assert_int_equal(st.lookups, 1);
  assert_int_equal(st.sent, 1);
  assert_int_equal(st.cache_hits, 0);
  assert_int_equal(st.cache_entries, 1);

  /* Same lookup, the host in other case: answered from the cache, not
   * from inside ioa_resolve (start() checks), with the same answer. */
  assert_int_equal(resolve_wait(loop, r, "LocalHost", "80", SOCK_STREAM, &again), 0);
  st = stats_of(r);
  assert_int_equal(st.cache_hits, 1);
  assert_int_equal(st.sent, 1);
  assert_int_equal(again.naddrs, first.naddrs);
  assert_memory_equal(again.addrs, first.addrs, first.naddrs * sizeof first.addrs[0]);
  assert_int_equal(again.partials, first.partials);
  assert_string_equal(again.message, first.message);

  /* Another service or socktype is another question. */
  assert_int_equal(resolve_wait(loop, r, "localhost", "81", SOCK_STREAM, &other), 0);
  assert_true(has_addr(other.addrs, other.naddrs, "127.0.0.1:81"));
  assert_int_equal(resolve_wait(loop, r, "localhost", "80", SOCK_DGRAM, &other), 0);
  assert_int_equal(other.addrs[0].socktype, SOCK_DGRAM);
  st = stats_of(r);
  assert_int_equal(st.sent, 3);
  assert_int_equal(st.cache_entries, 3);

  /* Numeric answers never enter it. */
  assert_int_equal(resolve_wait(loop, r, "127.0.0.1", "80", SOCK_STREAM, &other), 0);
  st = stats_of(r);
  assert_int_equal(st.numeric, 1);
  assert_int_equal(st.cache_entries, 3);

  /* A cache hit cancelled before its delivery completes once, cancelled. */
  outcome c = {0};
  ioa_resolve_req *req = NULL;
  assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &c, &req), 0);
  assert_int_equal(stats_of(r).cache_hits, 2);
  ioa_resolve_cancel(req);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.status, IOA_EAI_CANCELED);
  ioa_test_run_for(loop, 20);
  assert_int_equal(c.calls, 1);

  /* Flushed: asked again. */
  ioa_resolver_cache_flush(r);
  assert_int_equal(stats_of(r).cache_entries, 0);
  assert_int_equal(resolve_wait(loop, r, "localhost", "80", SOCK_STREAM, &other), 0);
  st = stats_of(r);
  assert_int_equal(st.sent, 4);
  assert_int_equal(st.cache_entries, 1);
  assert_int_equal(st.lookups, 7);

  /* Two identical lookups in flight (usually sharing one getaddrinfo(),
   * unless the first finished in between): both store the same answer,
   * which stays one entry and answers the next lookup. */
  outcome j1 = {0}, j2 = {0};
  assert_int_equal(start(r, "localhost", "82", AF_INET, SOCK_STREAM, 0, 0, &j1, NULL), 0);
  assert_int_equal(start(r, "localhost", "82", AF_INET, SOCK_STREAM, 0, 0, &j2, NULL), 0);
  wait_for(loop, &j1, 5000);
  wait_for(loop, &j2, 5000);
  assert_int_equal(j1.status, 0);
  assert_int_equal(j2.status, 0);
  st = stats_of(r);
  assert_int_equal(st.joined + st.sent, 6);
  assert_int_equal(st.cache_entries, 2);
  assert_int_equal(resolve_wait(loop, r, "localhost", "82", SOCK_STREAM, &other), 0);
  assert_int_equal(stats_of(r).cache_hits, 3);
  assert_memory_equal(other.addrs, j1.addrs, j1.naddrs * sizeof j1.addrs[0]);
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_cache_expiry_and_bound(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  outcome o;
  /* Expiry on the loop's clock. */
  ioa_resolver *r = new_cached_pool(loop, 1, 0);
  assert_int_equal(resolve_wait(loop, r, "localhost", "80", SOCK_STREAM, &o), 0);
  ioa_test_run_for(loop, 20); /* the 1 ms lifetime is over */
  assert_int_equal(resolve_wait(loop, r, "localhost", "80", SOCK_STREAM, &o), 0);
  ioa_resolver_stats st = stats_of(r);
  assert_int_equal(st.sent, 2);
  assert_int_equal(st.cache_hits, 0);
  ioa_resolver_free(r);

  /* At most two answers; the least recently used goes. */
  r = new_cached_pool(loop, 60000, 2);
  assert_int_equal(resolve_wait(loop, r, "localhost", "1", SOCK_STREAM, &o), 0);
  assert_int_equal(resolve_wait(loop, r, "localhost", "2", SOCK_STREAM, &o), 0);
  assert_int_equal(resolve_wait(loop, r, "localhost", "1", SOCK_STREAM, &o), 0); /* hit */
  assert_int_equal(resolve_wait(loop, r, "localhost", "3", SOCK_STREAM, &o), 0); /* evicts 2 */
  st = stats_of(r);
  assert_int_equal(st.cache_entries, 2);
  assert_int_equal(st.cache_hits, 1);
  assert_int_equal(st.sent, 3);
  assert_int_equal(resolve_wait(loop, r, "localhost", "1", SOCK_STREAM, &o), 0); /* hit */
  assert_int_equal(resolve_wait(loop, r, "localhost", "3", SOCK_STREAM, &o), 0); /* hit */
  assert_int_equal(stats_of(r).cache_hits, 3);
  assert_int_equal(resolve_wait(loop, r, "localhost", "2", SOCK_STREAM, &o), 0); /* gone */
  st = stats_of(r);
  assert_int_equal(st.sent, 4);
  assert_int_equal(st.cache_entries, 2);
  assert_true(has_addr(o.addrs, o.naddrs, "127.0.0.1:2"));
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

/* ------------------------------------------------------ c-ares backend */

static const ioa_dns_record records[] = {
    {.name = "both.ioa.test", .a = {"127.0.0.2", "127.0.0.3"}, .aaaa = {"::2"}},
    {.name = "slow6.ioa.test", .a = {"127.0.0.4"}, .aaaa = {"::4"}, .delay_aaaa_ms = 150},
    {.name = "slow4.ioa.test", .a = {"127.0.0.5"}, .aaaa = {"::5"}, .delay_a_ms = 150},
    {.name = "only4.ioa.test", .a = {"127.0.0.6"}},
    {.name = "fail.ioa.test", .rcode = 2},
    {.name = "refused.ioa.test", .rcode = 5},
    {.name = "drop.ioa.test", .drop_a = 1, .drop_aaaa = 1},
    {.name = "drop6.ioa.test", .a = {"127.0.0.7"}, .drop_aaaa = 1},
    {.name = "short.ioa.test", .a = {"127.0.0.9"}, .aaaa = {"::9"}, .ttl_s = 1},
    {.name = "nocache.ioa.test", .a = {"127.0.0.10"}, .ttl_s = IOA_DNS_TTL_ZERO},
};

typedef struct cares_env {
  ioa_dns_fixture *dns;
  ioa_loop *loop;
  ioa_resolver *r;
} cares_env;

/* A c-ares resolver against the fixture; cache_ttl_ms 0 = no answer cache. */
static void cares_open_cached(cares_env *env, unsigned dns_timeout_ms, unsigned tries,
                              unsigned cache_ttl_ms) {
  memset(env, 0, sizeof *env);
  assert_int_equal(ioa_dns_fixture_start(&env->dns, "127.0.0.1", 0, records,
                                         sizeof records / sizeof records[0]),
                   0);
  env->loop = ioa_test_new_loop();
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", ioa_dns_fixture_port(env->dns));
  ioa_resolver_options o = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_CARES,
                            .servers = servers,
                            .dns_timeout_ms = dns_timeout_ms,
                            .dns_tries = tries,
                            .cache_ttl_ms = cache_ttl_ms};
  assert_int_equal(ioa_resolver_new(env->loop, &o, &env->r), 0);
}

static void cares_open_tries(cares_env *env, unsigned dns_timeout_ms, unsigned tries) {
  cares_open_cached(env, dns_timeout_ms, tries, 0);
}

static void cares_open(cares_env *env, unsigned dns_timeout_ms) {
  cares_open_tries(env, dns_timeout_ms, 1);
}

static void cares_close(cares_env *env) {
  ioa_resolver_free(env->r);
  drain(env->loop);
  ioa_loop_free(env->loop);
  ioa_dns_fixture_stop(env->dns);
}

#define SKIP_WITHOUT_CARES()                                                              \
  do {                                                                                    \
    if (!ioa_resolver_have_cares()) {                                                     \
      print_message("c-ares backend not built in: skipped\n");                           \
      skip();                                                                             \
    }                                                                                     \
  } while (0)

static void test_cares_both_families(void **state) {
  SKIP_WITHOUT_CARES();
  cares_env env;
  cares_open(&env, 1000);
  outcome o = {0};
  assert_int_equal(start(env.r, "both.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &o, NULL),
                   0);
  wait_for(env.loop, &o, 5000);
  assert_int_equal(o.status, 0);
  assert_int_equal(o.naddrs, 3);
  assert_true(has_addr(o.addrs, o.naddrs, "127.0.0.2:80"));
  assert_true(has_addr(o.addrs, o.naddrs, "127.0.0.3:80"));
  assert_true(has_addr(o.addrs, o.naddrs, "[::2]:80"));
  /* on_done: getaddrinfo's order, which the sorter gives the answers in
   * glibc's DNS order (A, then AAAA): here, where ::2 has no route, IPv4
   * first (rule 1), else IPv6 (rule 6). */
  ioa_addr want[3];
  memcpy(&want[0], find_addr(o.addrs, o.naddrs, "127.0.0.2:80"), sizeof want[0]);
  memcpy(&want[1], find_addr(o.addrs, o.naddrs, "127.0.0.3:80"), sizeof want[0]);
  memcpy(&want[2], find_addr(o.addrs, o.naddrs, "[::2]:80"), sizeof want[0]);
  ioa__addrsort *sorter = NULL;
  assert_int_equal(ioa__addrsort_new(&sorter), 0);
  assert_int_equal(ioa__addrsort_sort(sorter, want, 3), 1);
  ioa__addrsort_free(sorter);
  assert_memory_equal(o.addrs, want, sizeof want);
  assert_int_equal(o.partials, 2);
  assert_int_not_equal(o.partial_family[0], o.partial_family[1]);
  assert_true(ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_A) >= 1);
  assert_true(ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_AAAA) >= 1);
  /* c-ares closes idle sockets: nothing keeps the loop running */
  assert_int_equal(ioa_loop_run(env.loop, IOA_RUN_NOWAIT), 0);
  cares_close(&env);
}

/* A and AAAA are delivered separately, in arrival order. */
/* A cancel from inside the first family's on_partial completes the lookup
 * once, cancelled (the pool's families apart: the netns helper). */
static void test_cancel_in_partial(void **state) {
  SKIP_WITHOUT_CARES();
  cares_env env;
  cares_open(&env, 2000);
  outcome o = {0};
  o.cancel_in_partial = 1;
  assert_int_equal(start(env.r, "slow6.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &o, NULL),
                   0);
  wait_for(env.loop, &o, 5000);
  assert_int_equal(o.partials, 1);
  assert_int_equal(o.calls, 1);
  assert_int_equal(o.status, IOA_EAI_CANCELED);
  ioa_test_run_for(env.loop, 50);
  assert_int_equal(o.calls, 1);
  cares_close(&env);
}

/* AI_CANONNAME: each path reports the canonical name getaddrinfo would
 * (numeric: the text itself; /etc/hosts through the pool: the line's
 * first name; c-ares: the name asked), none without the flag. */
static void test_canonical_names(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 1);
  outcome num = {0}, pool = {0}, none = {0};
  assert_int_equal(start(r, "127.0.0.1", "80", AF_INET, SOCK_STREAM, AI_CANONNAME, 0, &num, NULL),
                   0);
  assert_int_equal(start(r, "LocalHost", "80", AF_INET, SOCK_STREAM, AI_CANONNAME, 0, &pool, NULL),
                   0);
  assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &none, NULL), 0);
  wait_for(loop, &num, 5000);
  wait_for(loop, &pool, 5000);
  wait_for(loop, &none, 5000);
  assert_string_equal(num.canonname, "127.0.0.1");
  struct addrinfo h = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_CANONNAME};
  struct addrinfo *res = NULL;
  assert_int_equal(getaddrinfo("LocalHost", "80", &h, &res), 0);
  assert_string_equal(pool.canonname, res->ai_canonname);
  freeaddrinfo(res);
  assert_string_equal(none.canonname, "");
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
  if (!ioa_resolver_have_cares())
    return;
  cares_env env;
  cares_open(&env, 1000);
  outcome ca = {0};
  assert_int_equal(start(env.r, "both.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, AI_CANONNAME, 0,
                         &ca, NULL),
                   0);
  wait_for(env.loop, &ca, 5000);
  assert_int_equal(ca.status, 0);
  assert_true(strncmp(ca.canonname, "both.ioa.test", 13) == 0);
  cares_close(&env);
}

static void test_cares_partial_order(void **state) {
  SKIP_WITHOUT_CARES();
  cares_env env;
  cares_open(&env, 2000);
  outcome o6 = {0}, o4 = {0};
  assert_int_equal(start(env.r, "slow6.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &o6, NULL),
                   0);
  assert_int_equal(start(env.r, "slow4.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &o4, NULL),
                   0);
  wait_for(env.loop, &o6, 5000);
  wait_for(env.loop, &o4, 5000);
  assert_int_equal(o6.partials, 2);
  assert_int_equal(o6.partial_family[0], AF_INET);
  assert_int_equal(o6.partial_family[1], AF_INET6);
  assert_int_equal(o4.partials, 2);
  assert_int_equal(o4.partial_family[0], AF_INET6);
  assert_int_equal(o4.partial_family[1], AF_INET);
  assert_int_equal(o6.naddrs, 2);
  assert_int_equal(o4.naddrs, 2);
  cares_close(&env);
}

static void test_cares_errors(void **state) {
  SKIP_WITHOUT_CARES();
  cares_env env;
  cares_open(&env, 300);
  outcome nx = {0}, sf = {0}, only4 = {0}, one6 = {0}, drop = {0}, drop6 = {0}, num = {0};
  assert_int_equal(start(env.r, "nx.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &nx, NULL), 0);
  assert_int_equal(start(env.r, "fail.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &sf, NULL),
                   0);
  assert_int_equal(
      start(env.r, "only4.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &only4, NULL), 0);
  assert_int_equal(
      start(env.r, "only4.ioa.test.", "80", AF_INET6, SOCK_STREAM, 0, 0, &one6, NULL), 0);
  /* per-lookup timeout beats c-ares's own */
  assert_int_equal(
      start(env.r, "drop.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 100, &drop, NULL), 0);
  /* no AAAA answer ever: c-ares gives up on it (timeout) but A still wins */
  assert_int_equal(
      start(env.r, "drop6.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &drop6, NULL), 0);
  assert_int_equal(start(env.r, "::1", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &num, NULL), 0);
  outcome nohost = {0};
  assert_int_equal(start(env.r, NULL, "http", AF_UNSPEC, SOCK_STREAM, 0, 0, &nohost, NULL), 0);
  wait_for(env.loop, &nx, 5000);
  wait_for(env.loop, &sf, 5000);
  wait_for(env.loop, &only4, 5000);
  wait_for(env.loop, &one6, 5000);
  wait_for(env.loop, &drop, 5000);
  wait_for(env.loop, &drop6, 5000);
  wait_for(env.loop, &num, 5000);
  wait_for(env.loop, &nohost, 5000);
  assert_int_equal(nohost.status, 0);
  assert_true(has_addr(nohost.addrs, nohost.naddrs, "127.0.0.1:80"));
  assert_true(has_addr(nohost.addrs, nohost.naddrs, "[::1]:80"));
  assert_int_equal(nx.status, IOA_EAI_NONAME);
  assert_int_equal(sf.status, IOA_EAI_AGAIN);
  assert_int_equal(only4.status, 0);
  assert_int_equal(only4.naddrs, 1);
  assert_int_equal(only4.partials, 1);
  assert_int_equal(only4.partial_family[0], AF_INET);
  assert_int_equal(one6.status, IOA_EAI_NODATA);
  assert_int_equal(drop.status, -ETIMEDOUT);
  assert_non_null(strstr(drop.message, "timed out"));
  assert_int_equal(drop6.status, 0);
  assert_true(has_addr(drop6.addrs, drop6.naddrs, "127.0.0.7:80"));
  assert_int_equal(num.status, 0);
  assert_true(has_addr(num.addrs, num.naddrs, "[::1]:80"));
  printf("# c-ares messages: nx=\"%s\" servfail=\"%s\" nodata=\"%s\"\n", nx.message, sf.message,
         one6.message);
  cares_close(&env);
}

static void test_cares_cancel_and_free(void **state) {
  SKIP_WITHOUT_CARES();
  cares_env env;
  cares_open(&env, 2000);
  outcome a = {0}, b = {0}, c = {0}, d = {0};
  ioa_resolve_req *ra, *rb;
  assert_int_equal(start(env.r, "slow6.ioa.test.", "80", AF_UNSPEC, 0, 0, 0, &a, &ra), 0);
  assert_int_equal(start(env.r, "drop.ioa.test.", "80", AF_UNSPEC, 0, 0, 0, &b, &rb), 0);
  assert_int_equal(start(env.r, "slow4.ioa.test.", "80", AF_UNSPEC, 0, 0, 0, &c, NULL), 0);
  c.cancel_in_partial = 1;
  ioa_resolve_cancel(rb);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.status, IOA_EAI_CANCELED);
  wait_for(env.loop, &c, 5000);
  assert_int_equal(c.partials, 1);
  assert_int_equal(c.status, IOA_EAI_CANCELED);
  /* free from inside a's callback while d is still waiting */
  assert_int_equal(start(env.r, "drop.ioa.test.", "80", AF_UNSPEC, 0, 0, 0, &d, NULL), 0);
  a.free_in_done = &env.r;
  wait_for(env.loop, &a, 5000);
  assert_int_equal(a.status, 0);
  assert_int_equal(a.naddrs, 2); /* socktype 0: one entry per address, unlike glibc */
  assert_int_equal(a.addrs[0].socktype, 0);
  assert_null(env.r);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.status, IOA_EAI_CANCELED);
  assert_int_equal(ra == NULL, 0);
  drain(env.loop);
  ioa_loop_free(env.loop);
  ioa_dns_fixture_stop(env.dns);
}

/* ---------------------------------------------- 1,000 concurrent lookups */

enum { STRESS_N = 1000 };

typedef struct stress {
  ioa_resolve_req *req[STRESS_N];
  int calls[STRESS_N];
  int status[STRESS_N];
  int victim[STRESS_N]; /* cancel this index from my on_done, or -1 */
  ioa_timer timer[STRESS_N];
  int idx[STRESS_N];
  int completed;
  int all_done;
} stress;

static stress *g_stress; /* the callbacks' data is &idx[i]; this maps back */

static void stress_done(ioa_resolve_req *req, const ioa_resolve_result *res, void *data) {
  int i = *(int *)data;
  stress *s = g_stress;
  s->calls[i]++;
  s->status[i] = res->status;
  assert_ptr_equal(s->req[i], req);
  s->req[i] = NULL;
  if (res->status == 0)
    assert_true(res->naddrs > 0);
  int v = s->victim[i];
  if (v >= 0 && s->req[v])
    ioa_resolve_cancel(s->req[v]);
  if (++s->completed == STRESS_N)
    s->all_done = 1;
}

static void stress_timer(ioa_timer *t, void *data) {
  int i = *(int *)data;
  if (g_stress->req[i])
    ioa_resolve_cancel(g_stress->req[i]);
}

static void run_stress(ioa_loop *loop, ioa_resolver *r, const char *const *names, size_t nnames,
                       int family) {
  stress *s = calloc(1, sizeof *s);
  assert_non_null(s);
  g_stress = s;
  unsigned seed = 12345;
  int planned_cancel = 0;
  for (int i = 0; i < STRESS_N; i++) {
    s->idx[i] = i;
    s->victim[i] = -1;
    ioa_timer_init(loop, &s->timer[i], stress_timer, &s->idx[i]);
  }
  for (int i = 0; i < STRESS_N; i++) {
    ioa_resolve_params p = {
        .struct_size = sizeof(ioa_resolve_params),
        .host_len = IOA_NUL_TERMINATED,
        .service_len = IOA_NUL_TERMINATED,
        .host = names[(size_t)i % nnames],
        .service = (i & 1) ? "80" : "http",
        .hints = {.family = family, .socktype = SOCK_STREAM},
        .on_done = stress_done,
        .data = &s->idx[i],
    };
    assert_int_equal(ioa_resolve(r, &p, &s->req[i]), 0);
    seed = seed * 1103515245u + 12345u;
    unsigned pick = (seed >> 16) % 6;
    if (pick == 0) {
      ioa_resolve_cancel(s->req[i]); /* at once */
      assert_int_equal(s->calls[i], 1);
      planned_cancel++;
    } else if (pick == 1) {
      assert_int_equal(ioa_timer_start(&s->timer[i], (uint64_t)((seed >> 8) % 4000) * 1000u, 0), 0);
      planned_cancel++;
    } else if (pick == 2 && i > 0) {
      s->victim[(seed >> 4) % (unsigned)i] = i; /* someone's callback cancels me */
      planned_cancel++;
    }
    /* interleave: let the loop run now and then */
    if (i % 97 == 0)
      ioa_loop_run(loop, IOA_RUN_NOWAIT);
  }
  assert_int_equal(ioa_test_run_until(loop, &s->all_done, 60000), 0);
  int canceled = 0, ok = 0;
  for (int i = 0; i < STRESS_N; i++) {
    assert_int_equal(s->calls[i], 1);
    ioa_timer_stop(&s->timer[i]);
    if (s->status[i] == IOA_EAI_CANCELED)
      canceled++;
    else if (s->status[i] == 0)
      ok++;
    else
      fail_msg("lookup %d: %s", i, ioa_strerror(s->status[i]));
  }
  print_message("# %d planned cancels, %d cancelled, %d answered\n", planned_cancel, canceled,
                ok);
  /* half were targeted; some of those completed before their moment came */
  assert_true(planned_cancel > STRESS_N * 2 / 5 && planned_cancel < STRESS_N * 3 / 5);
  assert_true(canceled >= STRESS_N / 6);
  assert_int_equal(canceled + ok, STRESS_N);
  g_stress = NULL;
  free(s);
}

/* c-ares answers are cached too (both families, in on_done's order);
 * failures are asked again. */
static void test_cache_cares(void **state) {
  SKIP_WITHOUT_CARES();
  cares_env env;
  cares_open_cached(&env, 1000, 1, 60000);
  outcome a = {0}, b = {0};
  assert_int_equal(start(env.r, "both.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &a, NULL),
                   0);
  wait_for(env.loop, &a, 5000);
  assert_int_equal(a.status, 0);
  unsigned qa = ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_A);
  unsigned q6 = ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_AAAA);
  assert_int_equal(start(env.r, "BOTH.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &b, NULL),
                   0);
  wait_for(env.loop, &b, 5000);
  assert_int_equal(b.status, 0);
  assert_int_equal(b.naddrs, 3);
  assert_memory_equal(b.addrs, a.addrs, a.naddrs * sizeof a.addrs[0]);
  assert_int_equal(b.partials, 0); /* a cached answer is whole: on_done alone */
  assert_int_equal(ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_A), qa); /* no packet */
  assert_int_equal(ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_AAAA), q6);
  assert_int_equal(stats_of(env.r).cache_hits, 1);

  outcome nx1 = {0}, nx2 = {0};
  assert_int_equal(start(env.r, "nx.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &nx1, NULL),
                   0);
  wait_for(env.loop, &nx1, 5000);
  unsigned after1 = ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_A);
  assert_int_equal(start(env.r, "nx.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &nx2, NULL),
                   0);
  wait_for(env.loop, &nx2, 5000);
  assert_int_equal(nx1.status, IOA_EAI_NONAME);
  assert_int_equal(nx2.status, IOA_EAI_NONAME);
  assert_true(ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_A) > after1); /* asked again */
  ioa_resolver_stats st = stats_of(env.r);
  assert_int_equal(st.cache_entries, 1);
  assert_int_equal(st.sent, 3);
  cares_close(&env);
}

/* The cache keeps a c-ares answer no longer than its records' DNS TTL
 * (1 s here, against a 60 s cache_ttl_ms), a TTL of 0 not at all, and an
 * answer one of whose families failed (AAAA never answered: c-ares timed
 * it out) not at all either: the next lookup asks again. */
static void test_cache_ttl_and_incomplete(void **state) {
  SKIP_WITHOUT_CARES();
  cares_env env;
  cares_open_cached(&env, 200, 1, 60000);
  outcome a = {0}, b = {0}, c = {0};
  assert_int_equal(start(env.r, "short.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &a, NULL),
                   0);
  wait_for(env.loop, &a, 5000);
  assert_int_equal(a.status, 0);
  unsigned qa = ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_A);
  assert_int_equal(start(env.r, "short.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &b, NULL),
                   0);
  wait_for(env.loop, &b, 5000);
  assert_int_equal(stats_of(env.r).cache_hits, 1); /* within the TTL: from the cache */
  assert_int_equal(ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_A), qa);
  ioa_test_run_for(env.loop, 1100); /* past the records' TTL, far from cache_ttl_ms */
  assert_int_equal(start(env.r, "short.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &c, NULL),
                   0);
  wait_for(env.loop, &c, 5000);
  assert_int_equal(c.status, 0);
  assert_int_equal(stats_of(env.r).cache_hits, 1); /* expired: asked again */
  assert_true(ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_A) > qa);

  /* TTL 0: answered, never kept. */
  outcome z1 = {0}, z2 = {0};
  assert_int_equal(
      start(env.r, "nocache.ioa.test.", "80", AF_INET, SOCK_STREAM, 0, 0, &z1, NULL), 0);
  wait_for(env.loop, &z1, 5000);
  assert_int_equal(
      start(env.r, "nocache.ioa.test.", "80", AF_INET, SOCK_STREAM, 0, 0, &z2, NULL), 0);
  wait_for(env.loop, &z2, 5000);
  assert_int_equal(z1.status, 0);
  assert_int_equal(z2.status, 0);
  assert_int_equal(stats_of(env.r).cache_hits, 1);

  /* A answered, AAAA never: a success, but not a complete answer. */
  outcome d1 = {0}, d2 = {0};
  assert_int_equal(start(env.r, "drop6.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &d1, NULL),
                   0);
  wait_for(env.loop, &d1, 5000);
  assert_int_equal(d1.status, 0);
  assert_int_equal(d1.naddrs, 1);
  size_t entries = stats_of(env.r).cache_entries;
  unsigned q6 = ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_AAAA);
  assert_int_equal(start(env.r, "drop6.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &d2, NULL),
                   0);
  wait_for(env.loop, &d2, 5000);
  assert_int_equal(d2.status, 0);
  assert_int_equal(stats_of(env.r).cache_hits, 1);
  assert_true(ioa_dns_fixture_queries(env.dns, IOA_DNS_TYPE_AAAA) > q6); /* AAAA asked again */
  assert_int_equal(stats_of(env.r).cache_entries, entries);

  /* No AAAA record at all (NODATA) is a complete answer: kept. */
  outcome n1 = {0}, n2 = {0};
  assert_int_equal(start(env.r, "only4.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &n1, NULL),
                   0);
  wait_for(env.loop, &n1, 5000);
  assert_int_equal(start(env.r, "only4.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &n2, NULL),
                   0);
  wait_for(env.loop, &n2, 5000);
  assert_int_equal(n2.status, 0);
  assert_int_equal(stats_of(env.r).cache_hits, 2);
  cares_close(&env);
}

/* ------------------------------------------------------ capabilities */

/* Each backend's bits say what it does: the pool runs lookups on a thread
 * and hands families over only with on_done (the netns helper checks that
 * for two families); c-ares starts no thread and hands over the A answer
 * while the AAAA one is still on its way. */
static void test_capabilities(void **state) {
  assert_int_equal(ioa_resolver_capabilities(NULL), 0);
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = NULL;
  assert_int_equal(ioa_resolver_default(loop, &r), 0);
  assert_int_equal(ioa_resolver_capabilities(r), IOA_RESOLVER_CAP_EARLY_FAMILIES |
                                                     IOA_RESOLVER_CAP_SORTED |
                                                     IOA_RESOLVER_CAP_THREADS);
  ioa__resolver_set_hosts_table(r, 0); /* "localhost" by a thread, as a DNS name */
  int before = thread_count();
  outcome o = {0};
  assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &o, NULL), 0);
  wait_for(loop, &o, 5000);
  assert_int_equal(o.status, 0);
  if (before >= 0)
    assert_true(thread_count() > before);
  ioa_loop_free(loop); /* and its default resolver */
  if (!ioa_resolver_have_cares())
    return;

  cares_env env;
  cares_open(&env, 2000);
  assert_int_equal(ioa_resolver_capabilities(env.r),
                   IOA_RESOLVER_CAP_EARLY_FAMILIES | IOA_RESOLVER_CAP_SORTED);
  before = thread_count();
  outcome o6 = {0};
  assert_int_equal(start(env.r, "slow6.ioa.test.", "80", AF_UNSPEC, SOCK_STREAM, 0, 0, &o6, NULL),
                   0);
  assert_int_equal(family_came_early(env.loop, &o6), 1);
  assert_int_equal(o6.calls, 1);
  assert_int_equal(o6.partial_family[0], AF_INET);
  if (before >= 0)
    assert_true(thread_count() <= before); /* the pool's may still be leaving */
  cares_close(&env);
}

static void test_stress_pool(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 4);
  /* AF_INET: "localhost" must be answered by /etc/hosts, never by DNS */
  static const char *const names[] = {"localhost", "127.0.0.1", "localhost", "127.0.0.2"};
  run_stress(loop, r, names, 4, AF_INET);
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_stress_cares(void **state) {
  SKIP_WITHOUT_CARES();
  cares_env env;
  /* 2,000 datagrams at once may overflow a socket buffer (slowly, under
   * TSan): let c-ares retransmit instead of reporting EAI_AGAIN. */
  cares_open_tries(&env, 1000, 4);
  static const char *const names[] = {"both.ioa.test.", "slow6.ioa.test.", "127.0.0.1",
                                      "only4.ioa.test.", "slow4.ioa.test."};
  run_stress(env.loop, env.r, names, 5, AF_UNSPEC);
  cares_close(&env);
}

/* --------------------------------------------- fault injection (fault preset) */
#ifdef IOA_FAULT_INJECTION
#include "fault.h"

#define FAULT_BIT(op) (1ul << (op))

static void test_fault_eai_system(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 1);
  /* fast path: the first getaddrinfo() fails with EAI_SYSTEM/EMFILE */
  outcome o = {0};
  ioa__fault_arm(1, FAULT_BIT(IOA_FOP_GETADDRINFO), EMFILE);
  assert_int_equal(start(r, "127.0.0.1", "80", AF_INET, SOCK_STREAM, 0, 0, &o, NULL), 0);
  wait_for(loop, &o, 5000);
  assert_int_equal(o.status, IOA_EAI_SYSTEM);
  assert_int_equal(o.sys_errno, EMFILE);
  assert_non_null(strstr(o.message, gai_strerror(EAI_SYSTEM)));
  assert_non_null(strstr(o.message, strerror(EMFILE)));
  /* pool: a name skips the numeric parse, so the worker's call is the 1st */
  outcome p = {0};
  ioa__fault_arm(1, FAULT_BIT(IOA_FOP_GETADDRINFO), EAI_AGAIN);
  assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &p, NULL), 0);
  wait_for(loop, &p, 5000);
  assert_int_equal(p.status, IOA_EAI_AGAIN);
  assert_string_equal(p.message, gai_strerror(EAI_AGAIN));
  ioa__fault_arm(0, 0, 0);
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_fault_no_thread(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = new_pool(loop, 2);
  outcome o = {0};
  ioa__fault_arm(1, FAULT_BIT(IOA_FOP_PTHREAD_CREATE), EAGAIN);
  assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &o, NULL), -EAGAIN);
  ioa__fault_arm(0, 0, 0);
  assert_int_equal(ioa_loop_active(loop), 0);
  assert_int_equal(start(r, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &o, NULL), 0);
  wait_for(loop, &o, 5000);
  assert_int_equal(o.status, 0);
  assert_int_equal(o.calls, 1);
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

/* Every allocation and syscall on the way fails once in turn: the lookup
 * either fails to start (no callback) or calls back exactly once. */
static void fault_sweep(ioa_resolver_backend backend, const char *host, int family,
                        unsigned long mask) {
  ioa_dns_fixture *dns = NULL;
  char servers[64] = "";
  if (backend == IOA_RESOLVER_CARES) {
    assert_int_equal(ioa_dns_fixture_start(&dns, "127.0.0.1", 0, records,
                                           sizeof records / sizeof records[0]),
                     0);
    snprintf(servers, sizeof servers, "127.0.0.1:%d", ioa_dns_fixture_port(dns));
  }
  for (unsigned long nth = 1; nth < 200; nth++) {
    ioa_loop *loop = ioa_test_new_loop();
    ioa_resolver_options opts = {.struct_size = sizeof(ioa_resolver_options), .backend = backend, .max_threads = 1,
                                 .servers = servers[0] ? servers : NULL,
                                 .dns_timeout_ms = 200, .dns_tries = 1};
    ioa_resolver *r = NULL;
    assert_int_equal(ioa_resolver_new(loop, &opts, &r), 0);
    outcome o = {0};
    ioa__fault_arm(nth, mask, ENOMEM);
    int rc = start(r, host, "80", family, SOCK_STREAM, 0, 0, &o, NULL);
    if (rc == 0)
      ioa_test_run_until(loop, &o.calls, 5000);
    int fired = ioa__fault_fired();
    ioa__fault_arm(0, 0, 0);
    if (rc < 0)
      assert_int_equal(o.calls, 0);
    else
      assert_int_equal(o.calls, 1);
    ioa_resolver_free(r);
    drain(loop);
    ioa_loop_free(loop);
    if (!fired) {
      print_message("# %s %s: %lu failure points, each handled\n",
                    backend == IOA_RESOLVER_CARES ? "c-ares" : "pool", host, nth - 1);
      assert_true(nth > 2);
      break; /* past the last failure point */
    }
  }
  ioa_dns_fixture_stop(dns);
}

static void test_fault_sweep_pool(void **state) {
  fault_sweep(IOA_RESOLVER_GETADDRINFO, "localhost", AF_INET,
              FAULT_BIT(IOA_FOP_MALLOC) | FAULT_BIT(IOA_FOP_PTHREAD_CREATE) |
                  FAULT_BIT(IOA_FOP_GETADDRINFO));
  fault_sweep(IOA_RESOLVER_GETADDRINFO, "127.0.0.1", AF_INET, FAULT_BIT(IOA_FOP_MALLOC));
}

/* The hosts table and the sorter under every failure: reading the
 * system's files (open, stat, read, allocations), and sorting a name with
 * two addresses (netlink dump and subscription, UDP probes).  Each run
 * ends with one completion and nothing leaked; a failure in the table may
 * send "localhost" on to the pool, whose getaddrinfo() finds it in
 * /etc/hosts as well (never DNS). */
static void hosts_sweep(int loaded, unsigned long mask) {
  for (unsigned long nth = 1; nth < 400; nth++) {
    ioa_loop *loop = ioa_test_new_loop();
    ioa_resolver *r = NULL;
    assert_int_equal(ioa_resolver_new(loop, NULL, &r), 0);
    static const char two[] = "127.0.0.1 localhost\n::1 localhost\n";
    if (loaded)
      assert_int_equal(ioa__hosts_load(r->hosts, two, sizeof two - 1, 1), 0);
    outcome o = {0};
    ioa__fault_arm(nth, mask, 0);
    int rc = start(r, "localhost", "80", loaded ? AF_UNSPEC : AF_INET, SOCK_STREAM, 0, 0, &o,
                   NULL);
    if (rc == 0)
      ioa_test_run_until(loop, &o.calls, 5000);
    int fired = ioa__fault_fired();
    ioa__fault_arm(0, 0, 0);
    assert_int_equal(o.calls, rc == 0 ? 1 : 0);
    if (rc == 0 && o.status == 0)
      assert_true(has_addr(o.addrs, o.naddrs, "127.0.0.1:80"));
    ioa_resolver_free(r);
    drain(loop);
    ioa_loop_free(loop);
    if (!fired) {
      print_message("# hosts table (%s): %lu failure points, each handled\n",
                    loaded ? "two addresses, sorted" : "system files", nth - 1);
      assert_true(nth > 2);
      break;
    }
  }
}

static void test_fault_sweep_hosts(void **state) {
  hosts_sweep(0, FAULT_BIT(IOA_FOP_MALLOC) | FAULT_BIT(IOA_FOP_OPEN) | FAULT_BIT(IOA_FOP_STAT) |
                     FAULT_BIT(IOA_FOP_READ) | FAULT_BIT(IOA_FOP_GETADDRINFO) |
                     FAULT_BIT(IOA_FOP_PTHREAD_CREATE));
  if (ioa_test_have_ipv6())
    hosts_sweep(1, FAULT_BIT(IOA_FOP_MALLOC) | FAULT_BIT(IOA_FOP_SOCKET) |
                       FAULT_BIT(IOA_FOP_BIND) | FAULT_BIT(IOA_FOP_CONNECT) |
                       FAULT_BIT(IOA_FOP_GETSOCKNAME) | FAULT_BIT(IOA_FOP_SENDMSG) |
                       FAULT_BIT(IOA_FOP_RECVMSG) | FAULT_BIT(IOA_FOP_GETADDRINFO) |
                       FAULT_BIT(IOA_FOP_PTHREAD_CREATE));
}

static void test_fault_sweep_cares(void **state) {
  SKIP_WITHOUT_CARES();
  fault_sweep(IOA_RESOLVER_CARES, "both.ioa.test.", AF_UNSPEC,
              FAULT_BIT(IOA_FOP_MALLOC) | FAULT_BIT(IOA_FOP_SOCKET) |
                  FAULT_BIT(IOA_FOP_CONNECT) | FAULT_BIT(IOA_FOP_SENDMSG) |
                  FAULT_BIT(IOA_FOP_WRITEV) | FAULT_BIT(IOA_FOP_RECVMSG) |
                  FAULT_BIT(IOA_FOP_EPOLL_CTL));
}
#endif

/* ------------------------------------------ glibc inside a namespace */

static const ioa_dns_record ns_records[] = {
    {.name = "www.ioa-ns.test", .a = {"127.0.0.8"}, .aaaa = {"fd00:10a::8"}},
    {.name = "fail.ioa-ns.test", .rcode = 2},
    {.name = "drop.ioa-ns.test", .drop_a = 1, .drop_aaaa = 1},
    {.name = "drop6.ioa-ns.test", .a = {"127.0.0.9"}, .drop_aaaa = 1},
};

#define NS_CHECK(cond, ...)                                                                \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "netns helper: check failed: %s: ", #cond);                          \
      fprintf(stderr, __VA_ARGS__);                                                        \
      fprintf(stderr, "\n");                                                               \
      failed = 1;                                                                          \
    }                                                                                      \
  } while (0)

/* Runs inside `unshare -n -m`: private loopback, our resolv.conf. */
static int netns_helper(void) {
  alarm(60);
  if (system("ip link set lo up && ip addr add 10.254.254.1/32 dev lo && "
             "ip -6 addr add fd00:10a::1/128 dev lo") != 0) {
    fprintf(stderr, "netns helper: cannot configure lo\n");
    return IOA_TEST_NS_SETUP;
  }
  char dir[] = "/tmp/ioa-resolve-ns-XXXXXX";
  if (!mkdtemp(dir))
    return IOA_TEST_NS_SETUP;
  /* nscd would resolve in the outer namespace: hide its socket. */
  if (ioa_test_ns_hide_nscd() != 0)
    return IOA_TEST_NS_SETUP;
  if (ioa_test_ns_bind(dir, "resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
                       "/etc/resolv.conf") != 0 ||
      ioa_test_ns_bind(dir, "nsswitch.conf", "hosts: files dns\nservices: files\n",
                       "/etc/nsswitch.conf") != 0 ||
      ioa_test_ns_bind(dir, "hosts", "127.0.0.1 localhost\n", "/etc/hosts") != 0) {
    fprintf(stderr, "netns helper: bind mounts failed: %s\n", strerror(errno));
    return IOA_TEST_NS_SETUP;
  }
  ioa_dns_fixture *dns;
  if (ioa_dns_fixture_start(&dns, "127.0.0.1", 53, ns_records,
                            sizeof ns_records / sizeof ns_records[0]) != 0) {
    fprintf(stderr, "netns helper: cannot listen on 127.0.0.1:53\n");
    return IOA_TEST_NS_SETUP;
  }
  int failed = 0;
  ioa_loop *loop = NULL;
  ioa_loop_new(NULL, &loop);
  ioa_resolver_options opts = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_GETADDRINFO, .max_threads = 1};
  ioa_resolver *r = NULL;
  ioa_resolver_new(loop, &opts, &r);

  /* 1. A and AAAA through glibc, AI_ADDRCONFIG satisfied by lo's addresses.
   * 2. NXDOMAIN and SERVFAIL keep their own codes.
   * 3. Starvation: one thread; a lookup the server never answers times out,
   *    and a lookup queued behind it still completes. */
  outcome www = {0}, nx = {0}, sf = {0}, drop = {0}, after = {0};
  ioa_resolve_params p = {.struct_size = sizeof(ioa_resolve_params), .host_len = IOA_NUL_TERMINATED, .service_len = IOA_NUL_TERMINATED, .host = "www.ioa-ns.test",
                          .service = "80",
                          .hints = {.family = AF_UNSPEC, .socktype = SOCK_STREAM,
                                    .flags = AI_ADDRCONFIG},
                          .on_done = on_done,
                          .on_partial = on_partial,
                          .data = &www};
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start www");
  /* The families apart: each reaches on_partial as its own getaddrinfo()
   * returns (a whole answer would go to on_done alone). */
  ioa_test_run_until(loop, &www.calls, 10000);
  NS_CHECK(www.partials == 2, "www: %d partials", www.partials);
  NS_CHECK(www.status == 0, "www: %s", www.message);
  NS_CHECK(has_addr(www.addrs, www.naddrs, "127.0.0.8:80"), "www A");
  NS_CHECK(has_addr(www.addrs, www.naddrs, "[fd00:10a::8]:80"), "www AAAA");

  p.host = "nx.ioa-ns.test";
  p.data = &nx;
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start nx");
  ioa_test_run_until(loop, &nx.calls, 10000);
  NS_CHECK(nx.status == IOA_EAI_NONAME, "nx: %s %s", ioa_err_name(nx.status), nx.message);
  NS_CHECK(strcmp(nx.message, gai_strerror(EAI_NONAME)) == 0, "nx message %s", nx.message);

  p.host = "fail.ioa-ns.test";
  p.data = &sf;
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start fail");
  ioa_test_run_until(loop, &sf.calls, 10000);
  NS_CHECK(sf.status == IOA_EAI_AGAIN, "servfail: %s %s", ioa_err_name(sf.status), sf.message);

  p.host = "drop.ioa-ns.test";
  p.data = &drop;
  p.timeout_ms = 200;
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start drop");
  p.host = "www.ioa-ns.test";
  p.data = &after;
  p.timeout_ms = 0;
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start after");
  ioa_test_run_until(loop, &drop.calls, 10000);
  ioa_test_run_until(loop, &after.calls, 10000);
  NS_CHECK(drop.status == -ETIMEDOUT, "drop: %s", drop.message);
  NS_CHECK(after.status == 0, "after drop: %s %s", ioa_err_name(after.status), after.message);
  NS_CHECK(after.calls == 1 && drop.calls == 1, "calls");
  ioa_resolver_free(r); /* joins the thread still waiting for drop.ioa-ns.test */

  /* The pool's families apart, with the answer cache: A is handed over at
   * once while glibc waits for the AAAA answer that never comes; the
   * lookup succeeds with A alone (timed out AAAA: EAI_AGAIN), and is not
   * cached as a complete answer: the next lookup asks glibc again. */
  ioa_resolver_options copts = {.struct_size = sizeof(ioa_resolver_options),
                                .backend = IOA_RESOLVER_GETADDRINFO,
                                .max_threads = 2,
                                .cache_ttl_ms = 60000};
  NS_CHECK(ioa_resolver_new(loop, &copts, &r) == 0, "cached pool");
  outcome d1 = {0}, d2 = {0};
  p.host = "drop6.ioa-ns.test";
  p.hints.flags = 0;
  p.data = &d1;
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start drop6");
  NS_CHECK(family_came_early(loop, &d1) == 1, "drop6: A not handed over before on_done");
  NS_CHECK(d1.status == 0 && d1.naddrs == 1, "drop6: %s n=%zu", d1.message, d1.naddrs);
  NS_CHECK(d1.partials == 1 && d1.partial_family[0] == AF_INET, "drop6: %d partials",
           d1.partials);
  p.data = &d2;
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start drop6 again");
  ioa_test_run_until(loop, &d2.calls, 10000);
  ioa_resolver_stats cst;
  ioa_resolver_get_stats(r, &cst);
  NS_CHECK(d2.status == 0 && cst.cache_hits == 0 && cst.sent == 2,
           "drop6 again: %s, %llu cache hits, %llu sent", d2.message,
           (unsigned long long)cst.cache_hits, (unsigned long long)cst.sent);
  /* Cancelled from inside the first family's on_partial: one completion,
   * cancelled; the AAAA call still running is abandoned. */
  outcome cp = {0};
  cp.cancel_in_partial = 1;
  p.data = &cp;
  p.host = "drop6.ioa-ns.test";
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start drop6 (cancel in partial)");
  ioa_test_run_until(loop, &cp.calls, 10000);
  ioa_test_run_for(loop, 50);
  NS_CHECK(cp.calls == 1 && cp.status == IOA_EAI_CANCELED && cp.partials == 1,
           "cancel in partial: %d calls, %s, %d partials", cp.calls, ioa_err_name(cp.status),
           cp.partials);
  /* The same name of both families is a complete answer: kept. */
  outcome w1 = {0}, w2 = {0};
  p.host = "www.ioa-ns.test";
  p.data = &w1;
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start www (cached)");
  ioa_test_run_until(loop, &w1.calls, 10000);
  p.data = &w2;
  NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start www again");
  ioa_test_run_until(loop, &w2.calls, 10000);
  ioa_resolver_get_stats(r, &cst);
  NS_CHECK(w2.status == 0 && w2.naddrs == 2 && cst.cache_hits == 1, "www again: %s, %llu hits",
           w2.message, (unsigned long long)cst.cache_hits);
  ioa_resolver_free(r);

  /* A hosts file of 1 MiB or more is the backend's: the table declines
   * (no parse on the loop thread) and glibc finds the name in it. */
  {
    char path[64];
    snprintf(path, sizeof path, "%s/hosts", dir);
    FILE *f = fopen(path, "w"); /* the bind-mounted inode */
    for (int i = 0; f && i < 40000; i++)
      fprintf(f, "10.%d.%d.1 filler-%d.test\n", i / 250, i % 250, i);
    if (f) {
      fputs("127.0.0.1 localhost\n127.0.0.7 big.ioa-ns.test\n", f);
      fclose(f);
    }
    ioa_resolver *br = NULL;
    NS_CHECK(ioa_resolver_new(loop, NULL, &br) == 0, "resolver for the big file");
    outcome big = {0};
    p.host = "big.ioa-ns.test";
    p.data = &big;
    NS_CHECK(ioa_resolve(br, &p, NULL) == 0, "start big");
    ioa_test_run_until(loop, &big.calls, 10000);
    ioa_resolver_stats bst;
    ioa_resolver_get_stats(br, &bst);
    NS_CHECK(big.status == 0 && has_addr(big.addrs, big.naddrs, "127.0.0.7:80") &&
                 bst.hosts == 0 && bst.sent == 1,
             "big hosts file: %s, %llu from the table, %llu sent", big.message,
             (unsigned long long)bst.hosts, (unsigned long long)bst.sent);
    ioa_resolver_free(br);
  }

  /* c-ares with the system configuration reads the same resolv.conf. */
  if (ioa_resolver_have_cares()) {
    ioa_resolver_options co = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_CARES};
    outcome ca = {0};
    NS_CHECK(ioa_resolver_new(loop, &co, &r) == 0, "c-ares resolver");
    p.host = "www.ioa-ns.test";
    p.data = &ca;
    NS_CHECK(ioa_resolve(r, &p, NULL) == 0, "start c-ares");
    ioa_test_run_until(loop, &ca.calls, 10000);
    NS_CHECK(ca.status == 0 && ca.naddrs == 2, "c-ares: %s n=%zu", ca.message, ca.naddrs);
    ioa_resolver_free(r);
  }
  drain(loop);
  ioa_loop_free(loop);
  ioa_dns_fixture_stop(dns);
  fprintf(stderr, "netns helper: %s\n", failed ? "FAILED" : "all checks passed");
  return failed ? IOA_TEST_NS_FAIL : 0;
}

static void test_netns_getaddrinfo(void **state) {
  ioa_test_in_netns("--netns-helper", "checks inside the namespace failed (see stderr)",
                    "unshare -n -m unavailable here: namespace test");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--netns-helper") == 0)
    return netns_helper();
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_numeric_fast_path),
      IOA_TEST(test_localhost_pool),
      IOA_TEST(test_at_hand_and_memo),
      IOA_TEST(test_bad_input),
      IOA_TEST(test_gai_errors),
      IOA_TEST(test_cancel),
      IOA_TEST(test_cancel_other_from_callback),
      IOA_TEST(test_cancel_in_partial),
      IOA_TEST(test_free_with_lookups_in_flight),
      IOA_TEST(test_free_from_callback),
      IOA_TEST(test_default_resolver),
      IOA_TEST(test_default_resolver_posted_result),
      IOA_TEST(test_backend_options),
      IOA_TEST(test_cares_both_families),
      IOA_TEST(test_cares_partial_order),
      IOA_TEST(test_cares_errors),
      IOA_TEST(test_cares_cancel_and_free),
      IOA_TEST(test_cache_pool),
      IOA_TEST(test_cache_expiry_and_bound),
      IOA_TEST(test_cache_cares),
      IOA_TEST(test_cache_ttl_and_incomplete),
      IOA_TEST(test_canonical_names),
      IOA_TEST(test_capabilities),
      IOA_TEST(test_stress_pool),
      IOA_TEST(test_stress_cares),
      IOA_TEST(test_netns_getaddrinfo),
#ifdef IOA_FAULT_INJECTION
      IOA_TEST(test_fault_eai_system),
      IOA_TEST(test_fault_no_thread),
      IOA_TEST(test_fault_sweep_pool),
      IOA_TEST(test_fault_sweep_cares),
      IOA_TEST(test_fault_sweep_hosts),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
