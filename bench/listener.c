/* SPDX-License-Identifier: MIT */
/* listener: the server side of the connect benchmarks, and the black hole.
 *
 *   listener [-t max_seconds] PORT [BLACKHOLE6_PORT [BLACKHOLE4_PORT]]
 *
 * Accepts and closes as fast as possible on 127.0.0.1:PORT and [::1]:PORT
 * (one epoll loop, accept4 until EAGAIN).  PORT 0 picks a free port.
 *
 * With BLACKHOLE6_PORT it also builds the Happy Eyeballs fixture, on loopback
 * only: [::1]:BLACKHOLE6_PORT is a listen(fd, 0) socket whose accept queue is
 * filled by our own connects and never accepted, so further SYNs to it are
 * dropped and a client's connect stays in SYN_SENT; 127.0.0.1:BLACKHOLE6_PORT
 * accepts normally.  A name resolving to ::1 then 127.0.0.1 therefore has a
 * first address that never answers and a second one that does.
 * BLACKHOLE4_PORT is the mirror image (127.0.0.1 never answers, ::1 does), for
 * clients that try IPv4 first.
 *
 * Prints "ready PORT BLACKHOLE6_PORT BLACKHOLE4_PORT" on stdout once
 * listening (0 for a hole not asked for), then runs
 * until killed, its parent exits, or max_seconds (default 900) pass: it is
 * never left behind. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILLERS 64

static void die(const char *what) {
  fprintf(stderr, "listener: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* Bind a listening socket on loopback; returns fd or -1 (errno set). */
static int listen_on(int family, int port, int backlog) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_loopback;
    s6->sin6_port = htons((uint16_t)port);
    len = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s4->sin_port = htons((uint16_t)port);
    len = sizeof *s4;
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    die("getsockname");
  return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Listen on both families at one port; port 0 picks one free on both. */
static void listen_pair(int port, int backlog6, int backlog4, int *fd4, int *fd6) {
  for (int attempt = 0; attempt < 50; attempt++) {
    *fd6 = listen_on(AF_INET6, port, backlog6);
    int p = port;
    if (*fd6 >= 0)
      p = bound_port(*fd6);
    else if (port == 0 && errno == EADDRINUSE)
      continue;
    *fd4 = listen_on(AF_INET, p, backlog4);
    if (*fd4 >= 0)
      return;
    if (port != 0 || errno != EADDRINUSE)
      die("listen 127.0.0.1");
    if (*fd6 >= 0)
      close(*fd6);
  }
  die("no free port");
}

/* Connect to the hole until a connect stays pending: the accept queue is
 * then full.  The connected fillers stay open so the queue stays full. */
static int fill_backlog(int family, int port, int *fillers) {
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  s6.sin6_addr = in6addr_loopback;
  s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr *sa = family == AF_INET6 ? (struct sockaddr *)&s6 : (struct sockaddr *)&s4;
  socklen_t len = family == AF_INET6 ? sizeof s6 : sizeof s4;
  int n = 0;
  while (n < MAX_FILLERS) {
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      die("socket");
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS)
      die("connect to black hole");
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r = poll(&p, 1, 200);
    if (r == 0) { /* this SYN was dropped: the hole is ready */
      close(fd);
      return n;
    }
    fillers[n++] = fd;
  }
  fprintf(stderr, "listener: black hole backlog did not fill after %d connects\n", n);
  exit(1);
}

int main(int argc, char **argv) {
  long max_secs = 900;
  int argi = 1;
  if (argc > 2 && strcmp(argv[1], "-t") == 0) {
    max_secs = strtol(argv[2], NULL, 10);
    argi = 3;
  }
  if (argc - argi < 1 || argc - argi > 3) {
    fprintf(stderr, "usage: %s [-t max_seconds] PORT [BLACKHOLE6_PORT [BLACKHOLE4_PORT]]\n",
            argv[0]);
    return 2;
  }
  /* If the runner dies, so do we. */
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
    die("prctl");
  int port = atoi(argv[argi]);
  int want_hole6 = argc - argi >= 2, want_hole4 = argc - argi >= 3;
  int bh6_port = want_hole6 ? atoi(argv[argi + 1]) : 0;
  int bh4_port = want_hole4 ? atoi(argv[argi + 2]) : 0;

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1");
  int fds[4], nfds = 0, fd4, fd6;
  listen_pair(port, SOMAXCONN, SOMAXCONN, &fd4, &fd6);
  port = bound_port(fd4);
  fds[nfds++] = fd4;
  if (fd6 >= 0)
    fds[nfds++] = fd6;

  int fillers[2 * MAX_FILLERS]; /* stay open: they keep the holes full */
  if (want_hole6) { /* [::1] never answers, 127.0.0.1 accepts */
    int hole6;
    listen_pair(bh6_port, 0, SOMAXCONN, &fd4, &hole6);
    if (hole6 < 0)
      die("black hole needs IPv6 loopback: listen [::1]");
    bh6_port = bound_port(fd4);
    fds[nfds++] = fd4; /* hole6 is never polled */
    (void)fill_backlog(AF_INET6, bh6_port, fillers);
  }
  if (want_hole4) { /* 127.0.0.1 never answers, [::1] accepts */
    int hole4;
    listen_pair(bh4_port, SOMAXCONN, 0, &hole4, &fd6);
    if (fd6 < 0)
      die("black hole needs IPv6 loopback: listen [::1]");
    bh4_port = bound_port(hole4);
    fds[nfds++] = fd6; /* hole4 is never polled */
    (void)fill_backlog(AF_INET, bh4_port, fillers + MAX_FILLERS);
  }
  for (int i = 0; i < nfds; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
      die("epoll_ctl");
  }
  printf("ready %d %d %d\n", port, bh6_port, bh4_port);
  fflush(stdout);

  time_t end = time(NULL) + max_secs;
  struct epoll_event events[8];
  while (time(NULL) < end) {
    int n = epoll_wait(ep, events, 8, 1000);
    if (n < 0 && errno != EINTR)
      die("epoll_wait");
    for (int i = 0; i < n; i++) {
      for (;;) {
        int c = accept4(events[i].data.fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
          if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
            break;
          if (errno == EMFILE || errno == ENFILE) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            break;
          }
          die("accept4");
        }
        close(c);
      }
    }
  }
  return 0;
}
