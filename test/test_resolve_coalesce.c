/* SPDX-License-Identifier: MIT */
/* The getaddrinfo pool joins a lookup to an identical one queued or running
 * (same host, service and hints): one getaddrinfo(), every request answered
 * once.  White-box (the pool's hooks in resolve_internal.h): with
 * max_threads set to 0 no worker starts, so jobs stay queued exactly as long
 * as the test wants; restoring it and starting one more lookup spawns the
 * worker.  Joining running jobs is exercised by
 * the burst test (and test_resolve's stress test, with cancels).  Only
 * "localhost" (/etc/hosts) is looked up. */
#include "testutil.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "resolve_internal.h"

typedef struct outcome {
  int calls;
  int status;
  size_t naddrs;
  ioa_resolve_req *req;
  ioa_resolve_req *cancel_other; /* cancelled from this one's on_done */
  ioa_resolver *free_resolver;   /* freed from this one's on_done */
  int *done_count;
  int cancelled; /* the test cancelled it before it completed */
} outcome;

static void on_done(ioa_resolve_req *req, const ioa_resolve_result *res, void *data) {
  outcome *o = data;
  assert_ptr_equal(o->req, req);
  o->calls++;
  o->status = res->status;
  o->naddrs = res->naddrs;
  if (res->status == 0)
    assert_true(res->naddrs > 0 && res->addrs != NULL);
  if (o->done_count)
    (*o->done_count)++;
  if (o->cancel_other)
    ioa_resolve_cancel(o->cancel_other);
  if (o->free_resolver)
    ioa_resolver_free(o->free_resolver);
}

/* A one-thread pool that starts no worker until release() is called. */
static ioa_resolver *held_pool(ioa_loop *loop) {
  ioa_resolver_options o = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_GETADDRINFO, .max_threads = 1};
  ioa_resolver *r = NULL;
  assert_int_equal(ioa_resolver_new(loop, &o, &r), 0);
  ioa__resolver_set_hosts_table(r, 0); /* "localhost" through the pool */
  ioa__pool_set_max_threads(r, 0);
  return r;
}

static void release(ioa_resolver *r) { ioa__pool_set_max_threads(r, 1); }

#define JOB(o) ioa__pool_job_of((o)->req)

static void start(ioa_resolver *r, const char *service, int socktype, outcome *o,
                  int *done_count) {
  ioa_resolve_params p = {
      .struct_size = sizeof(ioa_resolve_params),
      .host_len = IOA_NUL_TERMINATED,
      .service_len = IOA_NUL_TERMINATED,
      .host = "localhost",
      .service = service,
      .hints = {.family = AF_INET, .socktype = socktype},
      .on_done = on_done,
      .data = o,
  };
  o->done_count = done_count;
  assert_int_equal(ioa_resolve(r, &p, &o->req), 0);
}

static void run_until_count(ioa_loop *loop, int *count, int want) {
  for (int i = 0; i < 20000 && *count < want; i++)
    assert_true(ioa_loop_run(loop, IOA_RUN_ONCE) >= 0);
  assert_int_equal(*count, want);
}

static void drain(ioa_loop *loop) {
  for (int i = 0; i < 100 && ioa_loop_run(loop, IOA_RUN_NOWAIT) > 0; i++)
    ;
}

static void test_twins_share_one_job(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = held_pool(loop);
  int done = 0;
  outcome all[7];
  memset(all, 0, sizeof all);
  outcome *a = &all[0], *b = &all[1], *c = &all[2], *d = &all[3], *e = &all[4], *f = &all[5],
          *g = &all[6];
  start(r, "1", SOCK_STREAM, a, &done);
  start(r, "1", SOCK_STREAM, b, &done);
  start(r, "1", SOCK_STREAM, c, &done);
  start(r, "2", SOCK_STREAM, d, &done); /* another service: its own job */
  start(r, "1", SOCK_DGRAM, f, &done);  /* other hints: its own job */
  start(r, "1", SOCK_STREAM, e, &done); /* still near the tail: joins a's */
  assert_non_null(JOB(a));
  assert_ptr_equal(JOB(b), JOB(a));
  assert_ptr_equal(JOB(c), JOB(a));
  assert_ptr_equal(JOB(e), JOB(a));
  assert_ptr_not_equal(JOB(d), JOB(a));
  assert_ptr_not_equal(JOB(f), JOB(a));
  assert_ptr_not_equal(JOB(f), JOB(d));
  assert_int_equal(ioa__pool_queued(r), 3);

  /* Leaving a shared job early: only that request completes. */
  ioa_resolve_cancel(b->req);
  assert_int_equal(b->calls, 1);
  assert_int_equal(b->status, IOA_EAI_CANCELED);
  assert_ptr_equal(JOB(c), JOB(a));
  /* During delivery, a's callback cancels its sibling c. */
  a->cancel_other = c->req;

  release(r);
  start(r, "3", SOCK_STREAM, g, &done); /* spawns the worker */
  run_until_count(loop, &done, 7);
  for (int i = 0; i < 7; i++)
    assert_int_equal(all[i].calls, 1);
  assert_int_equal(a->status, 0);
  assert_int_equal(c->status, IOA_EAI_CANCELED);
  assert_int_equal(d->status, 0);
  assert_int_equal(e->status, 0);
  assert_int_equal(f->status, 0);
  assert_int_equal(g->status, 0);
  assert_int_equal(a->naddrs, e->naddrs);
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_cancel_every_twin(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = held_pool(loop);
  outcome o[3];
  memset(o, 0, sizeof o);
  for (int i = 0; i < 3; i++)
    start(r, "1", SOCK_STREAM, &o[i], NULL);
  /* Middle, head, tail: the job leaves the queue with its last waiter. */
  ioa_resolve_cancel(o[1].req);
  ioa_resolve_cancel(o[0].req);
  assert_int_equal(ioa__pool_queued(r), 1);
  ioa_resolve_cancel(o[2].req);
  assert_int_equal(ioa__pool_queued(r), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(o[i].calls, 1);
    assert_int_equal(o[i].status, IOA_EAI_CANCELED);
  }
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

static void test_free_resolver_from_twin_callback(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = held_pool(loop);
  int done = 0;
  outcome o[3];
  memset(o, 0, sizeof o);
  for (int i = 0; i < 3; i++)
    start(r, "1", SOCK_STREAM, &o[i], &done);
  o[0].free_resolver = r; /* the others are cancelled while the answer is delivered */
  release(r);
  outcome g = {0};
  start(r, "2", SOCK_STREAM, &g, &done); /* spawns the worker */
  run_until_count(loop, &done, 4);
  assert_int_equal(o[0].calls, 1);
  assert_int_equal(o[0].status, 0);
  for (int i = 1; i < 3; i++) {
    assert_int_equal(o[i].calls, 1);
    assert_int_equal(o[i].status, IOA_EAI_CANCELED);
  }
  assert_int_equal(g.calls, 1);
  drain(loop);
  ioa_loop_free(loop);
}

/* Bursts of identical lookups on a running pool: later ones join queued or
 * running jobs; every request completes exactly once, and cancelling every
 * third one (some while their job runs) leaves the rest answered. */
static void test_bursts_on_running_pool(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver_options opts = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_GETADDRINFO, .max_threads = 2};
  ioa_resolver *r = NULL;
  assert_int_equal(ioa_resolver_new(loop, &opts, &r), 0);
  ioa__resolver_set_hosts_table(r, 0);
  enum { N = 300 };
  static outcome o[N];
  memset(o, 0, sizeof o);
  int done = 0;
  for (int i = 0; i < N; i++) {
    start(r, "80", SOCK_STREAM, &o[i], &done);
    if (i % 3 == 2 && o[i - 1].calls == 0) { /* its job may be queued, running or posted */
      o[i - 1].cancelled = 1;
      ioa_resolve_cancel(o[i - 1].req);
    }
    if (i % 25 == 0)
      assert_true(ioa_loop_run(loop, IOA_RUN_NOWAIT) >= 0);
  }
  run_until_count(loop, &done, N);
  int cancelled = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(o[i].calls, 1);
    assert_int_equal(o[i].status, o[i].cancelled ? IOA_EAI_CANCELED : 0);
    cancelled += o[i].cancelled;
  }
  assert_true(cancelled > 0);
  ioa_resolver_free(r);
  drain(loop);
  ioa_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_twins_share_one_job),
      IOA_TEST(test_cancel_every_twin),
      IOA_TEST(test_free_resolver_from_twin_callback),
      IOA_TEST(test_bursts_on_running_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
