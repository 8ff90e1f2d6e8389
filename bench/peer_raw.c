/* SPDX-License-Identifier: MIT */
/* raw: the physical limit.  A hand-written non-blocking socket + connect +
 * epoll client with K connects in flight; each completed connect is checked
 * (SO_ERROR) and closed, then the next one starts.  Nothing here could be
 * removed by a library, so its connects/s is the ceiling for everyone.
 *
 * With a non-numeric HOST each connect first calls blocking getaddrinfo()
 * and the contender is "raw-gai": the "blocking getaddrinfo + connect"
 * baseline a library's asynchronous name path is compared with. */
#include "bench_common.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

typedef struct raw_target {
  struct sockaddr_storage ss;
  socklen_t len;
  int numeric;
  const char *host;
  const char *port;
} raw_target;

static int parse_numeric(raw_target *t) {
  struct sockaddr_in *sin = (struct sockaddr_in *)&t->ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->ss;
  int port = atoi(t->port);
  memset(&t->ss, 0, sizeof t->ss);
  if (inet_pton(AF_INET, t->host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    t->len = sizeof *sin;
    return 1;
  }
  if (inet_pton(AF_INET6, t->host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    t->len = sizeof *sin6;
    return 1;
  }
  return 0;
}

/* Resolve per connect, as a naive blocking client would. */
static void resolve(raw_target *t) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG}, *res;
  int rc = getaddrinfo(t->host, t->port, &hints, &res);
  if (rc) {
    fprintf(stderr, "raw: getaddrinfo(%s): %s\n", t->host, gai_strerror(rc));
    exit(1);
  }
  memcpy(&t->ss, res->ai_addr, res->ai_addrlen);
  t->len = res->ai_addrlen;
  freeaddrinfo(res);
}

/* Start one connect; returns 1 if it completed at once, 0 if in flight. */
static int start_one(int ep, raw_target *t) {
  if (!t->numeric)
    resolve(t);
  int fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    bench_fail("raw", "socket", errno);
  if (connect(fd, (struct sockaddr *)&t->ss, t->len) == 0) {
    close(fd);
    return 1;
  }
  if (errno != EINPROGRESS)
    bench_fail("raw", "connect", errno);
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
    bench_fail("raw", "epoll_ctl", errno);
  return 0;
}

int main(int argc, char **argv) {
  bench_args a;
  bench_parse(&a, argc, argv);
  raw_target t = {.host = a.host, .port = a.port};
  t.numeric = parse_numeric(&t);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    bench_fail("raw", "epoll_create1", errno);
  struct epoll_event events[256];
  long started = 0, done = 0, inflight = 0;
  double deadline = bench_now_s() + (double)a.max_secs;
  double cpu0 = bench_cpu_s(), t0 = bench_now_s();

  while (done < a.n) {
    while (inflight < a.k && started < a.n) {
      started++;
      if (start_one(ep, &t))
        done++;
      else
        inflight++;
    }
    if (done >= a.n)
      break;
    int n = epoll_wait(ep, events, 256, 1000);
    if (n < 0 && errno != EINTR)
      bench_fail("raw", "epoll_wait", errno);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd, err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
      if (err)
        bench_fail("raw", "connect completion", err);
      close(fd); /* also removes it from the epoll set */
      inflight--;
      done++;
    }
    if (bench_now_s() > deadline) {
      fprintf(stderr, "raw: time bound of %lds hit after %ld connects\n", a.max_secs, done);
      return 1;
    }
  }
  double wall = bench_now_s() - t0, cpu = bench_cpu_s() - cpu0;
  close(ep);
  bench_report(t.numeric ? "raw" : "raw-gai", &a, wall, cpu);
  return 0;
}
