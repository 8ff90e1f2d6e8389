/* SPDX-License-Identifier: MIT */
/* bench_resolve: lookups per second through ioasync's resolvers versus
 * libuv's uv_getaddrinfo, in one run, with the ratio.
 *
 *   bench_resolve [numeric_lookups [localhost_lookups [in_flight]]]
 *   bench_resolve --seq pool|cares HOST N
 *
 * Run by scripts/bench (no arguments, IOA_BENCH_PORT set) it prints JSON
 * result lines instead: lookups_per_s for contenders ioasync (getaddrinfo
 * pool), ioasync-cares and libuv, workloads "resolve 127.0.0.1" and
 * "resolve localhost", with counts sized for IOA_BENCH_MAX_SECS (smaller
 * under IOA_BENCH_QUICK=1).
 *
 * Names: a numeric address (no thread: ioasync's fast path; libuv still uses
 * its pool) and "localhost" from /etc/hosts (ioasync: its hosts table, no
 * thread), AF_INET only so no lookup can ever leave the machine.  c-ares is
 * pointed at a closed loopback port for the same reason.  With
 * IOA_BENCH_DNS_HOST set (scripts/bench: a name its namespace's own DNS
 * server answers, not in /etc/hosts) that name too, c-ares then asking the
 * system's servers (that DNS server).  Both pools run 4 threads (libuv's
 * default).
 *
 * --seq: N lookups of HOST one after the other (AF_UNSPEC, as a connect by
 * name), for callgrind's instructions per lookup (scripts/bench
 * --callgrind); prints one result line. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "ioasync.h"

typedef struct run {
  double max_secs; /* wall-clock bound for this run */
  const char *host;
  long total, started, finished, failed;
  int in_flight;
} run;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- ioasync */

static int seq_family = AF_INET; /* --seq: AF_UNSPEC, as a connect by name */

typedef struct ioa_ctx {
  run *run;
  ioa_resolver *r;
  int done;
} ioa_ctx;

static void ioa_start_one(ioa_ctx *c);

static void ioa_cb(ioa_resolve_req *req, const ioa_resolve_result *res, void *data) {
  ioa_ctx *c = data;
  c->run->finished++;
  if (res->status != 0 || res->naddrs == 0)
    c->run->failed++;
  if (c->run->started < c->run->total)
    ioa_start_one(c);
  else if (c->run->finished == c->run->total)
    c->done = 1;
}

static void ioa_start_one(ioa_ctx *c) {
  ioa_resolve_params p = {
      .struct_size = sizeof(ioa_resolve_params),
      .host_len = IOA_NUL_TERMINATED,
      .service_len = IOA_NUL_TERMINATED,
      .host = c->run->host,
      .service = "80",
      .hints = {.family = seq_family, .socktype = SOCK_STREAM},
      .on_done = ioa_cb,
      .data = c,
  };
  c->run->started++;
  if (ioa_resolve(c->r, &p, NULL) != 0) {
    c->run->finished++;
    c->run->failed++;
  }
}

static double bench_ioa(ioa_resolver_backend backend, const char *servers, run *rn) {
  ioa_loop *loop;
  if (ioa_loop_new(NULL, &loop) != 0)
    return -1;
  ioa_resolver_options o = {.struct_size = sizeof(ioa_resolver_options), .backend = backend, .max_threads = 4, .servers = servers};
  ioa_ctx c = {.run = rn};
  if (ioa_resolver_new(loop, &o, &c.r) != 0) {
    ioa_loop_free(loop);
    return -1;
  }
  double t0 = now_s();
  for (int i = 0; i < rn->in_flight && rn->started < rn->total; i++)
    ioa_start_one(&c);
  /* bounded: stop after max_secs whatever happens */
  while (!c.done && now_s() - t0 < rn->max_secs && rn->finished < rn->total)
    ioa_loop_run(loop, IOA_RUN_ONCE);
  double dt = now_s() - t0;
  ioa_resolver_free(c.r);
  for (int i = 0; i < 100 && ioa_loop_run(loop, IOA_RUN_NOWAIT) > 0; i++)
    ;
  ioa_loop_free(loop);
  return rn->finished == rn->total ? (double)rn->finished / dt : -1;
}

/* ------------------------------------------------------------------ libuv */

typedef struct uv_ctx {
  run *run;
  uv_loop_t *loop;
} uv_ctx;

static void uv_start_one(uv_ctx *c);

static void uv_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  uv_ctx *c = req->data;
  c->run->finished++;
  if (status != 0 || !res)
    c->run->failed++;
  uv_freeaddrinfo(res);
  free(req);
  if (c->run->started < c->run->total)
    uv_start_one(c);
}

static void uv_start_one(uv_ctx *c) {
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
  uv_getaddrinfo_t *req = malloc(sizeof *req);
  c->run->started++;
  if (!req) {
    c->run->finished++;
    c->run->failed++;
    return;
  }
  req->data = c;
  if (uv_getaddrinfo(c->loop, req, uv_cb, c->run->host, "80", &hints) != 0) {
    free(req);
    c->run->finished++;
    c->run->failed++;
  }
}

static double bench_uv(run *rn) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return -1;
  uv_ctx c = {.run = rn, .loop = &loop};
  double t0 = now_s();
  for (int i = 0; i < rn->in_flight && rn->started < rn->total; i++)
    uv_start_one(&c);
  while (rn->finished < rn->total && now_s() - t0 < rn->max_secs)
    uv_run(&loop, UV_RUN_ONCE);
  double dt = now_s() - t0;
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rn->finished == rn->total ? (double)rn->finished / dt : -1;
}

/* ------------------------------------------------------------------- main */

static int closed_loopback_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
    if (fd >= 0)
      close(fd);
    return 9; /* discard: nothing listens on loopback here either way */
  }
  close(fd);
  return ntohs(sin.sin_port);
}

static void json_line(const char *contender, const char *host, double rate, const run *rn) {
  if (rate > 0 && !rn->failed)
    printf("{\"contender\":\"%s\",\"workload\":\"resolve %s\",\"n\":%ld,\"k\":%d,"
           "\"lookups_per_s\":%.1f}\n",
           contender, host, rn->total, rn->in_flight, rate);
  else
    fprintf(stderr, "bench_resolve: %s %s: %s\n", contender, host,
            rate > 0 ? "lookups failed" : "run failed or hit its time bound");
  fflush(stdout);
}

static void line(const char *what, double rate, long failed) {
  if (rate < 0)
    printf("%-34s %12s\n", what, "FAILED");
  else
    printf("%-34s %12.0f lookups/s%s\n", what, rate, failed ? "  (with failures!)" : "");
}

/* --seq BACKEND HOST N */
static int seq(const char *backend, const char *host, long n) {
  int cares = strcmp(backend, "cares") == 0;
  if ((!cares && strcmp(backend, "pool") != 0) || n <= 0 || (cares && !ioa_resolver_have_cares()))
    return 2;
  seq_family = AF_UNSPEC;
  run rn = {.max_secs = 250, .host = host, .total = n, .in_flight = 1};
  double rate = bench_ioa(cares ? IOA_RESOLVER_CARES : IOA_RESOLVER_GETADDRINFO, NULL, &rn);
  if (rate < 0 || rn.failed) {
    fprintf(stderr, "bench_resolve --seq: %ld of %ld lookups failed\n", rn.failed, n);
    return 1;
  }
  printf("{\"contender\":\"%s\",\"workload\":\"lookup %s\",\"n\":%ld,\"k\":1,"
         "\"lookups_per_s\":%.1f}\n",
         cares ? "ioasync-cares" : "ioasync", host, n, rate);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--seq") == 0)
    return seq(argv[2], argv[3], atol(argv[4]));
  long n_numeric = argc > 1 ? atol(argv[1]) : 50000;
  long n_local = argc > 2 ? atol(argv[2]) : 10000;
  int in_flight = argc > 3 ? atoi(argv[3]) : 64;
  double max_secs = 120;
  /* Under scripts/bench: six runs must fit in IOA_BENCH_MAX_SECS. */
  int runner = argc == 1 && getenv("IOA_BENCH_PORT") != NULL;
  if (runner) {
    const char *quick = getenv("IOA_BENCH_QUICK"), *secs = getenv("IOA_BENCH_MAX_SECS");
    if (quick && !strcmp(quick, "1")) {
      n_numeric = 20000;
      n_local = 2000;
    } else {
      n_numeric = 200000;
      n_local = 20000;
    }
    max_secs = (secs && atol(secs) > 0 ? (double)atol(secs) : 50) / 6;
  }
  if (n_numeric <= 0 || n_local <= 0 || in_flight <= 0 || n_numeric > 10000000 ||
      n_local > 10000000) {
    fprintf(stderr, "usage: bench_resolve [numeric_lookups [localhost_lookups [in_flight]]]\n");
    return 2;
  }
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", closed_loopback_port());
  if (!runner)
    printf("bench_resolve: %ld numeric + %ld localhost lookups, %d in flight, 4 threads\n",
           n_numeric, n_local, in_flight);

  const char *dns_host = runner ? getenv("IOA_BENCH_DNS_HOST") : NULL;
  struct {
    const char *host;
    long n;
  } names[] = {{"127.0.0.1", n_numeric}, {"localhost", n_local}, {dns_host, n_local / 4}};
  size_t nnames = dns_host && *dns_host ? 3 : 2;
  if (runner) /* six runs per name */
    max_secs = max_secs * 2 / (double)nnames;
  int status = 0;
  for (size_t k = 0; k < nnames; k++) {
    run a = {.max_secs = max_secs, .host = names[k].host, .total = names[k].n,
             .in_flight = in_flight};
    run b = a, u = a;
    double ra = bench_ioa(IOA_RESOLVER_GETADDRINFO, NULL, &a);
    /* c-ares: the namespace's DNS server for the DNS name, else nobody */
    double rb = ioa_resolver_have_cares()
                    ? bench_ioa(IOA_RESOLVER_CARES, k == 2 ? NULL : servers, &b)
                    : -1;
    double ru = bench_uv(&u);
    if (runner) {
      json_line("ioasync", names[k].host, ra, &a);
      if (ioa_resolver_have_cares())
        json_line("ioasync-cares", names[k].host, rb, &b);
      json_line("libuv", names[k].host, ru, &u);
      if (ra < 0 || ru < 0 || a.failed || u.failed ||
          (ioa_resolver_have_cares() && (rb < 0 || b.failed)))
        status = 1;
      continue;
    }
    char label[96];
    snprintf(label, sizeof label, "%s: ioasync getaddrinfo pool", names[k].host);
    line(label, ra, a.failed);
    snprintf(label, sizeof label, "%s: ioasync c-ares", names[k].host);
    line(label, rb, b.failed);
    snprintf(label, sizeof label, "%s: libuv uv_getaddrinfo", names[k].host);
    line(label, ru, u.failed);
    if (ra > 0 && ru > 0)
      printf("%-34s %12.2fx\n", "  ratio pool / libuv", ra / ru);
    if (rb > 0 && ru > 0)
      printf("%-34s %12.2fx\n", "  ratio c-ares / libuv", rb / ru);
    if (ra < 0 || ru < 0 || a.failed || u.failed)
      status = 1;
  }
  return status;
}
