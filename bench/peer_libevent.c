/* SPDX-License-Identifier: MIT */
/* libevent contender: bufferevent_socket_connect() to a numeric address, K
 * connects in flight; each connected bufferevent is freed (closing its fd)
 * and the next connect starts from the event callback.  Numeric HOSTs only:
 * libevent's name path (evdns) is its own DNS client, not a getaddrinfo
 * one, so scripts/bench runs this peer in the `ip` workloads. */
#include "bench_common.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

typedef struct run {
  struct event_base *base;
  bench_args *a;
  struct sockaddr_storage addr;
  int addrlen;
  long started, done;
  int failed;
} run;

static void start_one(run *r);

static void on_event(struct bufferevent *bev, short what, void *data) {
  run *r = data;
  bufferevent_free(bev); /* BEV_OPT_CLOSE_ON_FREE: closes the fd */
  if (!(what & BEV_EVENT_CONNECTED)) {
    fprintf(stderr, "libevent: connect: %s\n",
            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    r->failed = 1;
    event_base_loopbreak(r->base);
    return;
  }
  if (++r->done == r->a->n) {
    event_base_loopbreak(r->base);
    return;
  }
  if (r->started < r->a->n)
    start_one(r);
}

static void start_one(run *r) {
  r->started++;
  struct bufferevent *bev = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!bev)
    bench_fail("libevent", "bufferevent_socket_new", ENOMEM);
  bufferevent_setcb(bev, NULL, NULL, on_event, r);
  if (bufferevent_socket_connect(bev, (struct sockaddr *)&r->addr, r->addrlen) < 0) {
    bufferevent_free(bev);
    bench_fail("libevent", "bufferevent_socket_connect", errno);
  }
}

static void on_bound(evutil_socket_t fd, short what, void *data) {
  run *r = data;
  (void)fd, (void)what;
  fprintf(stderr, "libevent: time bound of %lds hit after %ld connects\n", r->a->max_secs,
          r->done);
  r->failed = 1;
  event_base_loopbreak(r->base);
}

int main(int argc, char **argv) {
  bench_args a;
  bench_parse(&a, argc, argv);
  run r = {.a = &a};
  char text[300];
  snprintf(text, sizeof text, strchr(a.host, ':') ? "[%s]:%s" : "%s:%s", a.host, a.port);
  r.addrlen = (int)sizeof r.addr;
  if (evutil_parse_sockaddr_port(text, (struct sockaddr *)&r.addr, &r.addrlen) < 0) {
    fprintf(stderr, "libevent: %s is not a numeric address (this peer connects to numbers)\n",
            a.host);
    return 2;
  }
  r.base = event_base_new();
  if (!r.base)
    bench_fail("libevent", "event_base_new", ENOMEM);
  struct event *bound = evtimer_new(r.base, on_bound, &r);
  struct timeval tv = {.tv_sec = a.max_secs};
  evtimer_add(bound, &tv);

  double cpu0 = bench_cpu_s(), t0 = bench_now_s();
  for (long i = 0; i < a.k; i++)
    start_one(&r);
  event_base_dispatch(r.base);
  double wall = bench_now_s() - t0, cpu = bench_cpu_s() - cpu0;
  if (r.failed || r.done != a.n)
    return 1;
  bench_report("libevent", &a, wall, cpu);
  event_free(bound);
  event_base_free(r.base);
  return 0;
}
