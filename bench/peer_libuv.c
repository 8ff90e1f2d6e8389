/* SPDX-License-Identifier: MIT */
/* libuv contender: uv_tcp_connect to a numeric address, or
 * uv_getaddrinfo(HOST) on libuv's thread pool and then uv_tcp_connect to the
 * first result, K connects in flight.  Each connected handle is closed
 * (uv_close) and its slot reused for the next connect. */
#include "bench_common.h"

#include <uv.h>

typedef struct slot {
  uv_tcp_t tcp;
  uv_connect_t req;
  uv_getaddrinfo_t gai;
  struct run *run;
} slot;

typedef struct run {
  uv_loop_t *loop;
  bench_args *a;
  struct sockaddr_storage addr; /* numeric target */
  int numeric;
  long started, done;
  uv_timer_t bound;
  int failed;
} run;

static void start_one(slot *s);

static void fail(run *r, const char *what, int status) {
  fprintf(stderr, "libuv: %s: %s\n", what, uv_strerror(status));
  r->failed = 1;
  uv_stop(r->loop);
}

static void on_close(uv_handle_t *h) {
  slot *s = h->data;
  if (s->run->started < s->run->a->n && !s->run->failed)
    start_one(s);
}

static void on_connect(uv_connect_t *req, int status) {
  slot *s = req->data;
  if (status < 0) {
    fail(s->run, "connect", status);
    return;
  }
  if (++s->run->done == s->run->a->n)
    uv_timer_stop(&s->run->bound);
  uv_close((uv_handle_t *)&s->tcp, on_close);
}

static void connect_to(slot *s, const struct sockaddr *sa) {
  int rc = uv_tcp_init(s->run->loop, &s->tcp);
  if (rc == 0) {
    s->tcp.data = s;
    s->req.data = s;
    rc = uv_tcp_connect(&s->req, &s->tcp, sa, on_connect);
  }
  if (rc < 0)
    fail(s->run, "uv_tcp_connect", rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  slot *s = req->data;
  if (status < 0) {
    fail(s->run, "uv_getaddrinfo", status);
    return;
  }
  connect_to(s, res->ai_addr);
  uv_freeaddrinfo(res);
}

static void start_one(slot *s) {
  run *r = s->run;
  r->started++;
  if (r->numeric) {
    connect_to(s, (struct sockaddr *)&r->addr);
    return;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
  s->gai.data = s;
  int rc = uv_getaddrinfo(r->loop, &s->gai, on_resolved, r->a->host, r->a->port, &hints);
  if (rc < 0)
    fail(r, "uv_getaddrinfo", rc);
}

static void on_bound(uv_timer_t *t) {
  run *r = t->data;
  fprintf(stderr, "libuv: time bound of %lds hit after %ld connects\n", r->a->max_secs, r->done);
  r->failed = 1;
  uv_stop(r->loop);
}

int main(int argc, char **argv) {
  bench_args a;
  bench_parse(&a, argc, argv);
  run r = {.loop = uv_default_loop(), .a = &a};
  int port = atoi(a.port);
  r.numeric = uv_ip4_addr(a.host, port, (struct sockaddr_in *)&r.addr) == 0 ||
              uv_ip6_addr(a.host, port, (struct sockaddr_in6 *)&r.addr) == 0;
  slot *slots = calloc((size_t)a.k, sizeof *slots);
  if (!slots)
    bench_fail("libuv", "calloc", ENOMEM);
  uv_timer_init(r.loop, &r.bound);
  r.bound.data = &r;
  uv_timer_start(&r.bound, on_bound, (uint64_t)a.max_secs * 1000, 0);

  double cpu0 = bench_cpu_s(), t0 = bench_now_s();
  for (long i = 0; i < a.k; i++) {
    slots[i].run = &r;
    start_one(&slots[i]);
  }
  uv_run(r.loop, UV_RUN_DEFAULT);
  double wall = bench_now_s() - t0, cpu = bench_cpu_s() - cpu0;
  if (r.failed || r.done != a.n)
    return 1;
  bench_report("libuv", &a, wall, cpu);
  uv_close((uv_handle_t *)&r.bound, NULL);
  uv_run(r.loop, UV_RUN_DEFAULT);
  uv_loop_close(r.loop);
  free(slots);
  return 0;
}
