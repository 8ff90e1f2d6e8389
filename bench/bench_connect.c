/* SPDX-License-Identifier: MIT */
/* bench_connect: numeric-address connects/s of ioasync against a hand-written
 * non-blocking socket+connect+epoll client (the physical limit) and libuv,
 * in one run, as ratios; plus instructions per connect (under callgrind) and
 * heap bytes per pending request.
 *
 *   bench_connect [-n N] [-r RUNS] [-k K]...     throughput table (K: 1 and 100)
 *   bench_connect -c raw|ioa|uv -n N [-k K]       one contender, for callgrind:
 *       valgrind --tool=callgrind --toggle-collect='run_*' bench_connect -c ioa -n 20000
 *       (user-space instructions inside run_<contender> / N)
 *   bench_connect -m M [-H NAME]                  heap bytes per pending request
 *       (-H: by name, host NAME and the listener's port, resolved through an
 *       answer cache warmed first, so every lookup is answered on the loop
 *       thread; NAME must resolve to 127.0.0.1, e.g. localhost, with AF_INET)
 *   bench_connect   (no arguments, IOA_BENCH_PORT set: run by scripts/bench)
 *       the footprint at 10,000 pending requests (2,000 with IOA_BENCH_QUICK=1)
 *       as JSON result lines: heap_bytes_per_request and fds_per_request for
 *       ioasync (numeric, and by name through "localhost") and libuv.
 *       Throughput is measured by the peer_* programs.
 *
 * Everything goes to 127.0.0.1.  The run first moves into a network namespace
 * of its own (unshare; root or user namespaces) with tcp_max_tw_buckets=0 and a
 * wide port range, so TIME_WAIT left by one contender cannot decide the next
 * one's result; without one it says so and goes on.  The listener is a
 * forked process on the other CPU that accepts and closes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ioasync.h"

#ifdef IOA_BENCH_HAVE_LIBUV
#include <uv.h>
#endif

static struct sockaddr_in g_sin;
static ioa_addr g_addr;
static long g_n, g_k;
static long g_started, g_done, g_errors;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double user_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "bench_connect: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ------------------------------------------------------------ environment */

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t w = write(fd, text, strlen(text));
  close(fd);
  return w == (ssize_t)strlen(text) ? 0 : -1;
}

/* A private network namespace with only lo, no TIME_WAIT buckets. */
static int enter_netns(void) {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWNET) < 0) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
      return -1;
    char map[64];
    (void)write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    if (write_file("/proc/self/uid_map", map) < 0)
      return -1;
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    if (write_file("/proc/self/gid_map", map) < 0)
      return -1;
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    return -1;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
    return -1;
  close(s);
  (void)write_file("/proc/sys/net/ipv4/tcp_max_tw_buckets", "0");
  (void)write_file("/proc/sys/net/ipv4/ip_local_port_range", "1024 65000");
  (void)write_file("/proc/sys/net/core/somaxconn", "65535");
  return 0;
}

static void pin_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* A forked listener that accepts and closes until killed. */
static pid_t start_listener(int backlog, int accept_them) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, backlog) < 0)
    die("listen");
  socklen_t len = sizeof g_sin;
  getsockname(lfd, (struct sockaddr *)&g_sin, &len);
  memset(&g_addr, 0, sizeof g_addr);
  g_addr.family = AF_INET;
  g_addr.socktype = SOCK_STREAM;
  g_addr.addrlen = sizeof g_sin;
  memcpy(&g_addr.addr, &g_sin, sizeof g_sin);
  if (!accept_them)
    return (pid_t)lfd; /* the caller keeps the fd: a black hole */
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {
    pin_cpu(1);
    for (;;) {
      int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (fd >= 0)
        close(fd);
    }
  }
  close(lfd);
  return pid;
}

/* -------------------------------------------------------------- raw */

static int raw_ep;

static void raw_start(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket");
  g_started++;
  if (connect(fd, (struct sockaddr *)&g_sin, sizeof g_sin) == 0) {
    close(fd);
    g_done++;
    return;
  }
  if (errno != EINPROGRESS) {
    g_errors++;
    g_done++;
    close(fd);
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
  if (epoll_ctl(raw_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
    die("epoll_ctl");
}

__attribute__((noinline)) void run_raw(void);
__attribute__((noinline)) void run_raw(void) {
  raw_ep = epoll_create1(EPOLL_CLOEXEC);
  for (long i = 0; i < g_k; i++)
    raw_start();
  struct epoll_event evs[256];
  while (g_done < g_n) {
    int n = epoll_wait(raw_ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd, err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err)
        g_errors++;
      close(fd); /* also leaves the epoll set */
      g_done++;
      if (g_started < g_n)
        raw_start();
    }
  }
  close(raw_ep);
}

/* ------------------------------------------------------------ ioasync */

static ioa_loop *ioa_lp;
static ioa_connect_params ioa_params;

static void ioa_start(void);

static void ioa_on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  (void)req, (void)peer, (void)data;
  close(fd);
  g_done++;
  if (g_started < g_n)
    ioa_start();
}

static void ioa_on_error(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  (void)req, (void)s, (void)err, (void)data;
  g_errors++;
  g_done++;
  if (g_started < g_n)
    ioa_start();
}

static void ioa_start(void) {
  g_started++;
  if (ioa_connect(ioa_lp, &ioa_params, NULL) < 0)
    die("ioa_connect");
}

__attribute__((noinline)) void run_ioa(void);
__attribute__((noinline)) void run_ioa(void) {
  if (ioa_loop_new(NULL, &ioa_lp) < 0)
    die("ioa_loop_new");
  ioa_connect_params_init(&ioa_params);
  ioa_params.addr = &g_addr;
  ioa_params.on_connected = ioa_on_connected;
  ioa_params.on_connect_error = ioa_on_error;
  for (long i = 0; i < g_k; i++)
    ioa_start();
  /* Runs until the last request completes, as uv_run(UV_RUN_DEFAULT) does. */
  ioa_loop_run(ioa_lp, IOA_RUN_DEFAULT);
  if (g_done < g_n)
    die("loop ended early");
  ioa_loop_free(ioa_lp);
}

/* --------------------------------------------------------------- libuv */

#ifdef IOA_BENCH_HAVE_LIBUV
typedef struct uv_conn {
  uv_tcp_t tcp;
  uv_connect_t req;
} uv_conn;

static uv_loop_t uv_lp;
static void uv_start(void);

static void uv_on_close(uv_handle_t *h) {
  free(h->data);
  g_done++;
  if (g_started < g_n)
    uv_start();
}

static void uv_on_connect(uv_connect_t *req, int status) {
  if (status < 0)
    g_errors++;
  if (!uv_is_closing((uv_handle_t *)req->handle)) /* not when cancelled by our own close */
    uv_close((uv_handle_t *)req->handle, uv_on_close);
}

static void uv_start(void) {
  uv_conn *c = malloc(sizeof *c);
  if (!c)
    die("malloc");
  g_started++;
  uv_tcp_init(&uv_lp, &c->tcp);
  c->tcp.data = c;
  if (uv_tcp_connect(&c->req, &c->tcp, (const struct sockaddr *)&g_sin, uv_on_connect) < 0)
    die("uv_tcp_connect");
}

__attribute__((noinline)) void run_uv(void);
__attribute__((noinline)) void run_uv(void) {
  uv_loop_init(&uv_lp);
  for (long i = 0; i < g_k; i++)
    uv_start();
  uv_run(&uv_lp, UV_RUN_DEFAULT);
  uv_loop_close(&uv_lp);
}
#endif

/* --------------------------------------------------------------- driver */

typedef struct contender {
  const char *name;
  void (*run)(void);
} contender;

static const contender contenders[] = {
    {"raw", run_raw},
    {"ioasync", run_ioa},
#ifdef IOA_BENCH_HAVE_LIBUV
    {"libuv", run_uv},
#endif
};
#define NCONT (sizeof contenders / sizeof contenders[0])

/* Run one contender in a child so each starts from the same process state. */
static double measure(const contender *c, double *cpu_us, double *user_us) {
  int pfd[2];
  if (pipe(pfd) < 0)
    die("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    close(pfd[0]);
    pin_cpu(0);
    g_started = g_done = g_errors = 0;
    double t0 = now_s(), c0 = cpu_s(), u0 = user_s();
    c->run();
    double res[4] = {now_s() - t0, cpu_s() - c0, (double)g_errors, user_s() - u0};
    if (write(pfd[1], res, sizeof res) != (ssize_t)sizeof res)
      _exit(1);
    _exit(0);
  }
  close(pfd[1]);
  double res[4] = {0, 0, 0, 0};
  ssize_t r = read(pfd[0], res, sizeof res);
  close(pfd[0]);
  waitpid(pid, NULL, 0);
  if (r != (ssize_t)sizeof res || res[0] <= 0) {
    fprintf(stderr, "bench_connect: %s run failed\n", c->name);
    return 0;
  }
  if (res[2] > 0)
    fprintf(stderr, "bench_connect: %s: %.0f failed connects\n", c->name, res[2]);
  *cpu_us = res[1] * 1e6 / (double)g_n;
  *user_us = res[3] * 1e6 / (double)g_n;
  return (double)g_n / res[0];
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void throughput(long runs, const long *ks, int nks) {
  printf("# connects/s to 127.0.0.1, N=%ld per run, median of %ld runs (interleaved)\n", g_n,
         runs);
  printf("%-8s %5s %10s %9s %9s %8s %8s %8s %8s\n", "contender", "K", "median/s", "min/s",
         "max/s", "cpu_us", "user_us", "vs raw", "max/max");
  for (int ki = 0; ki < nks; ki++) {
    g_k = ks[ki] < g_n ? ks[ki] : g_n;
    double rate[NCONT][64], cpu[NCONT][64], usr[NCONT][64];
    for (long r = 0; r < runs; r++)
      for (size_t c = 0; c < NCONT; c++)
        rate[c][r] = measure(&contenders[c], &cpu[c][r], &usr[c][r]);
    double med[NCONT], best[NCONT];
    for (size_t c = 0; c < NCONT; c++) {
      double cpus[64], users[64];
      memcpy(cpus, cpu[c], sizeof cpus);
      memcpy(users, usr[c], sizeof users);
      qsort(rate[c], (size_t)runs, sizeof(double), cmp_double);
      qsort(cpus, (size_t)runs, sizeof(double), cmp_double);
      qsort(users, (size_t)runs, sizeof(double), cmp_double);
      med[c] = rate[c][runs / 2];
      best[c] = rate[c][runs - 1];
      /* On a shared machine the best run is the least disturbed one: its
       * ratio is printed next to the medians'. */
      printf("%-8s %5ld %10.0f %9.0f %9.0f %8.2f %8.3f %8.3f %8.3f\n", contenders[c].name, g_k,
             med[c], rate[c][0], best[c], cpus[runs / 2], users[runs / 2], med[c] / med[0],
             best[c] / best[0]);
    }
    fflush(stdout);
  }
}

/* Bytes in use: arena chunks plus mmapped blocks (big tables such as a
 * loop's fd array end up there). */
static double heap_delta(const struct mallinfo2 *b, const struct mallinfo2 *a) {
  return (double)(a->uordblks + a->hblkhd) - (double)(b->uordblks + b->hblkhd);
}

/* Open fds of this process (the fds-per-request figure). */
static long count_fds(void) {
  long n = 0;
  for (int fd = 0; fd < 65536; fd++)
    if (fcntl(fd, F_GETFD) >= 0)
      n++;
  return n;
}

/* One footprint result, as a line scripts/bench reads, or as text. */
static void footprint_line(int json, const char *name, long m, long pending, double heap,
                           double fds, const char *what) {
  if (json)
    printf("{\"contender\":\"%s\",\"workload\":\"pending %ld\",\"n\":%ld,"
           "\"heap_bytes_per_request\":%.1f,\"fds_per_request\":%.3f}\n",
           name, m, pending, heap, fds);
  else
    printf("%-8s pending=%ld heap_bytes_per_request=%.1f fds_per_request=%.3f (%s)\n", name,
           pending, heap, fds, what);
  fflush(stdout);
}

/* p asks for host:service (stream, IPv4) through r instead of g_addr. */
static void by_name(ioa_connect_params *p, const char *host, const char *service,
                    ioa_resolver *r) {
  p->addr = NULL;
  p->host = host;
  p->service = service;
  p->socktype = SOCK_STREAM;
  p->family = AF_INET;
  p->resolver = r;
}

/* A resolver with an answer cache that already holds host's answer (NULL
 * if that could not be had within 2 s). */
static ioa_resolver *warm_resolver(const char *host, const char *service) {
  ioa_resolver *r;
  ioa_resolver_options o;
  ioa_resolver_options_init(&o);
  o.cache_ttl_ms = 600000;
  if (ioa_resolver_new(ioa_lp, &o, &r) < 0)
    return NULL;
  ioa_connect_params p = ioa_params;
  by_name(&p, host, service, r);
  ioa_connect_req *req;
  if (ioa_connect(ioa_lp, &p, &req) < 0)
    return NULL;
  /* It connects into the listener's full queue and waits: cancel it once
   * the answer is in the cache, or once the hosts table has answered (a
   * hosts-file name never enters the cache: the table answers first). */
  ioa_resolver_stats st = {0};
  for (int i = 0; i < 2000 && st.cache_entries == 0 && st.hosts == 0; i++) {
    ioa_loop_run(ioa_lp, IOA_RUN_NOWAIT);
    ioa_resolver_get_stats(r, &st);
    if (st.cache_entries == 0 && st.hosts == 0)
      usleep(1000);
  }
  ioa_connect_cancel(req);
  if (st.cache_entries == 0 && st.hosts == 0) {
    ioa_resolver_free(r);
    return NULL;
  }
  return r;
}

/* Heap bytes per pending request: M connects held in SYN_SENT by a
 * listener whose accept queue is full, mallinfo2() before and after.  By
 * name (host non-NULL) the answers come from the hosts table or a warmed
 * answer cache: no lookup is pending, only the connects. */
static void footprint(long m, int json, const char *host) {
  int lfd = (int)start_listener(0, 0);
  int filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  (void)connect(filler, (struct sockaddr *)&g_sin, sizeof g_sin);
  struct pollfd pfd = {.fd = filler, .events = POLLOUT};
  if (poll(&pfd, 1, 2000) != 1) {
    fprintf(stderr, "bench_connect: could not fill the listener's queue\n");
    exit(1);
  }
  if (ioa_loop_new(NULL, &ioa_lp) < 0)
    die("ioa_loop_new");
  ioa_connect_params_init(&ioa_params);
  ioa_params.addr = &g_addr;
  ioa_params.on_connected = ioa_on_connected;
  ioa_params.on_connect_error = ioa_on_error;
  ioa_connect_req **reqs = calloc((size_t)m, sizeof *reqs);
  g_n = 0; /* no restarts */
  char service[16];
  snprintf(service, sizeof service, "%d", ntohs(g_sin.sin_port));
  ioa_resolver *res = NULL;
  if (host) {
    res = warm_resolver(host, service);
    if (!res) {
      fprintf(stderr, "bench_connect: could not resolve %s into a cache\n", host);
      exit(1);
    }
    by_name(&ioa_params, host, service, res);
  }
  ioa_loop_run(ioa_lp, IOA_RUN_NOWAIT);
  long done0 = g_done;
  long fds0 = count_fds();
  struct mallinfo2 before = mallinfo2();
  for (long i = 0; i < m; i++)
    if (ioa_connect(ioa_lp, &ioa_params, &reqs[i]) < 0)
      die("ioa_connect (raise RLIMIT_NOFILE?)");
  /* By name the answers come on the next iteration, then the attempts;
   * a few turns (bounded) until every one holds its socket. */
  long fds = 0;
  for (int i = 0; i < (host ? 20 : 1); i++) {
    ioa_loop_run(ioa_lp, IOA_RUN_NOWAIT);
    if (host && (fds = count_fds() - fds0) >= m)
      break;
  }
  struct mallinfo2 after = mallinfo2();
  if (!host)
    fds = count_fds() - fds0;
  long pending = m - (g_done - done0);
  if (pending != m || fds != m) /* a completed request would flatter the figure */
    fprintf(stderr, "bench_connect: %ld of %ld requests pending, %ld sockets\n", pending, m,
            fds);
  footprint_line(json, host ? "ioasync-name" : "ioasync", m, pending,
                 heap_delta(&before, &after) / (double)m, (double)fds / (double)m,
                 host ? "by name, answers already known (hosts table or cache); includes the loop's fd table"
                      : "includes the loop's fd table");
  for (long i = 0; i < m; i++)
    ioa_connect_cancel(reqs[i]);
  if (res)
    ioa_resolver_free(res);
  ioa_loop_free(ioa_lp);
  free(reqs);
  if (host) { /* the numeric and libuv figures come from their own runs */
    close(filler);
    close(lfd);
    return;
  }
#ifdef IOA_BENCH_HAVE_LIBUV
  uv_loop_init(&uv_lp);
  uv_conn **cs = calloc((size_t)m, sizeof *cs);
  uv_run(&uv_lp, UV_RUN_NOWAIT);
  fds0 = count_fds();
  before = mallinfo2();
  for (long i = 0; i < m; i++) {
    cs[i] = malloc(sizeof *cs[i]);
    uv_tcp_init(&uv_lp, &cs[i]->tcp);
    cs[i]->tcp.data = cs[i];
    if (uv_tcp_connect(&cs[i]->req, &cs[i]->tcp, (const struct sockaddr *)&g_sin,
                       uv_on_connect) < 0)
      die("uv_tcp_connect");
  }
  uv_run(&uv_lp, UV_RUN_NOWAIT);
  after = mallinfo2();
  footprint_line(json, "libuv", m, m, heap_delta(&before, &after) / (double)m,
                 (double)(count_fds() - fds0) / (double)m, "uv_tcp_t+uv_connect_t+loop");
  for (long i = 0; i < m; i++)
    if (!uv_is_closing((uv_handle_t *)&cs[i]->tcp))
      uv_close((uv_handle_t *)&cs[i]->tcp, uv_on_close);
  g_n = 0;
  uv_run(&uv_lp, UV_RUN_DEFAULT);
  uv_loop_close(&uv_lp);
  free(cs);
#endif
  close(filler);
  close(lfd);
}

int main(int argc, char **argv) {
  long runs = 5, mem = 0;
  long ks[8];
  int nks = 0;
  const char *only = NULL, *name = NULL;
  g_n = 20000;
  int opt;
  while ((opt = getopt(argc, argv, "n:r:k:c:m:H:")) != -1) {
    switch (opt) {
    case 'n': g_n = atol(optarg); break;
    case 'r': runs = atol(optarg); break;
    case 'k':
      if (nks < 8)
        ks[nks++] = atol(optarg);
      break;
    case 'c': only = optarg; break;
    case 'm': mem = atol(optarg); break;
    case 'H': name = optarg; break;
    default:
      fprintf(stderr,
              "usage: %s [-n N] [-r runs] [-k K]... | -c raw|ioa|uv -n N | -m M [-H NAME]\n",
              argv[0]);
      return 2;
    }
  }
  if (g_n < 1 || runs < 1 || runs > 64) {
    fprintf(stderr, "bench_connect: N >= 1 and 1 <= runs <= 64\n");
    return 2;
  }
  /* Run by scripts/bench: only the footprint, as result lines (the peer_*
   * programs measure throughput under the runner's common conditions). */
  int runner = argc == 1 && getenv("IOA_BENCH_PORT") != NULL;
  if (runner) {
    const char *quick = getenv("IOA_BENCH_QUICK");
    mem = quick && !strcmp(quick, "1") ? 2000 : 10000;
  }
  if (nks == 0) {
    ks[nks++] = 1;
    ks[nks++] = 100;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  if (enter_netns() < 0)
    fprintf(stderr, "bench_connect: no private network namespace (%s): TIME_WAIT may skew "
                    "results\n", strerror(errno));
  if (mem > 0) {
    footprint(mem, runner, name);
    if (runner) /* and by name, in its own listener's namespace state */
      footprint(mem, runner, "localhost");
    return 0;
  }
  pid_t server = start_listener(65535, 1);
  if (only) {
    g_k = nks ? ks[0] : 1;
    if (g_k > g_n)
      g_k = g_n;
    pin_cpu(0);
    double t0 = now_s();
    if (!strcmp(only, "raw"))
      run_raw();
    else if (!strcmp(only, "ioa"))
      run_ioa();
#ifdef IOA_BENCH_HAVE_LIBUV
    else if (!strcmp(only, "uv"))
      run_uv();
#endif
    else
      fprintf(stderr, "bench_connect: unknown contender %s\n", only);
    printf("%s: %ld connects (K=%ld) in %.3f s, %ld failed\n", only, g_n, g_k, now_s() - t0,
           g_errors);
  } else {
    throughput(runs, ks, nks);
  }
  kill(server, SIGKILL);
  waitpid(server, NULL, 0);
  return 0;
}
