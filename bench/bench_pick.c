/* SPDX-License-Identifier: MIT */
/* bench_pick: the cost of one connection attempt as the candidate list
 * grows, from 10 addresses to the documented maximum of 32,767.  Picking the
 * next candidate must cost the same whatever the list's length (O(1)
 * amortised), so the time per attempt must stay flat.
 *
 *   bench_pick [-r RUNS] [-s SECONDS] [-c] [-q]
 *
 * Two measures, each as time per attempt and its ratio to the 10-address
 * list, in one run:
 *  - core: the decision core (src/connect_core.h) alone, driven as the
 *    connector drives it, every attempt refused at once (the pick, the
 *    failure record, the close, the next pick): in race mode with one
 *    family (the worst case of a scan for the other family), with two
 *    families interleaved, and sequentially.
 *  - connect (-c, or always when run by scripts/bench): ioa_connect() in
 *    race mode over N loopback addresses that all refuse (a bound socket
 *    that does not listen), real syscalls included.
 * -q: smaller lists and fewer runs (a smoke run).
 *
 * Run by scripts/bench (no arguments, IOA_BENCH_PORT set) it prints JSON
 * result lines: contender "ioasync", workload "pick <mode> n=<N>", metrics
 * ns_per_attempt (core) and us_per_attempt (connect), one run each (the
 * runner repeats the program and takes medians).  Otherwise each list length
 * runs RUNS times (median reported).  Each mode is bounded by SECONDS of wall
 * time (by a third of IOA_BENCH_MAX_SECS under the runner).
 * Nothing leaves the machine: the connect measure only reaches 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "connect_core.h"
#include "ioasync.h"

#define MAXN 32767
#define MS 1000000ull

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ core */

typedef struct ent {
  ioa__cc_meta meta;
  uint32_t pad;
} ent;

static ent peers[MAXN];
static ioa__cc_cand cands[MAXN];
static ioa__cc_slot slots[16];

enum { M_RACE1, M_RACE2, M_SEQ, NMODES };
static const char *const mode_names[NMODES] = {"race one family", "race two families",
                                               "sequential"};

/* One request over n candidates, every attempt refused at once; returns the
 * seconds it took and the number of attempts made (which must be n). */
static double core_once(int mode, unsigned n, unsigned *attempts) {
  for (unsigned i = 0; i < n; i++) {
    int v6 = mode == M_RACE2 && (i & 1);
    peers[i].meta = (ioa__cc_meta){(uint8_t)(v6 ? AF_INET6 : AF_INET), SOCK_STREAM, 0};
  }
  ioa__cc cc;
  ioa__cc_init(&cc, mode != M_SEQ, 10, 0, 0);
  ioa__cc_set_slots(&cc, slots, 16);
  ioa__cc_set_cand_storage(&cc, cands, (uint16_t)n);
  ioa__cc_set_peers(&cc, peers, sizeof(ent), (uint16_t)n);
  uint64_t now = 1000 * MS;
  int fd = 100, done = 0;
  *attempts = 0;
  double t0 = now_s();
  ioa__cc_start(&cc, now, 0, 0, 0);
  /* Bounded: each attempt takes a handful of actions. */
  for (unsigned long guard = 0; !done && guard < 16ul * n + 64; guard++) {
    ioa__cc_action a;
    switch (ioa__cc_next(&cc, 0, &a)) {
    case IOA_CC_ACT_OPEN:
      (*attempts)++;
      ioa__cc_opened(&cc, now, a.slot, fd, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
      break;
    case IOA_CC_ACT_DONE:
      done = 1;
      break;
    case IOA_CC_ACT_NONE: /* nothing due: the clock moves (never happens here) */
      now += MS;
      ioa__cc_tick(&cc, now);
      break;
    default: /* FAIL, CLOSE, TIMER: nothing to do for them here */
      break;
    }
  }
  double t = now_s() - t0;
  ioa__cc_dispose(&cc);
  return done ? t : -1;
}

/* ---------------------------------------------------------------- connect */

static ioa_addr *addrs;
static int g_done;

static void on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  (void)req, (void)peer, (void)data;
  close(fd);
  g_done = 2; /* must not happen: nothing listens */
}

static void on_error(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  (void)req, (void)s, (void)err, (void)data;
  g_done = 1;
}

/* One racing request over n refusing addresses; seconds, or -1. */
static double connect_once(ioa_loop *loop, unsigned n, double max_s) {
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.addrs = addrs;
  p.naddrs = n;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 10;
  p.timeout_ms = (unsigned)(max_s * 1000) + 1000;
  p.on_connected = on_connected;
  p.on_connect_error = on_error;
  g_done = 0;
  double t0 = now_s();
  if (ioa_connect(loop, &p, NULL) < 0)
    return -1;
  while (!g_done && now_s() - t0 < max_s + 2)
    ioa_loop_run(loop, IOA_RUN_ONCE);
  return g_done == 1 ? now_s() - t0 : -1;
}

/* A loopback port where every connect is refused: bound, not listening. */
static int refusing_port(int *fd_out) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
    return -1;
  *fd_out = fd;
  return ntohs(sin.sin_port);
}

/* ------------------------------------------------------------------- main */

static void report(int json, const char *mode, unsigned n, const char *metric, double v,
                   double base) {
  if (json)
    printf("{\"contender\":\"ioasync\",\"workload\":\"pick %s n=%u\",\"n\":%u,\"%s\":%.1f}\n",
           mode, n, n, metric, v);
  else
    printf("%-18s %6u %12.1f %8.2f\n", mode, n, v, base > 0 ? v / base : 0);
  fflush(stdout);
}

int main(int argc, char **argv) {
  static const unsigned sizes_full[] = {10, 100, 1000, 10000, 32767};
  static const unsigned sizes_quick[] = {10, 100, 1000, 4000};
  long runs = 5;
  double max_s = 20;
  int with_connect = 0, quick = 0, opt;
  while ((opt = getopt(argc, argv, "r:s:cq")) != -1) {
    switch (opt) {
    case 'r': runs = atol(optarg); break;
    case 's': max_s = atof(optarg); break;
    case 'c': with_connect = 1; break;
    case 'q': quick = 1; break;
    default:
      fprintf(stderr, "usage: %s [-r RUNS] [-s SECONDS] [-c] [-q]\n", argv[0]);
      return 2;
    }
  }
  int json = argc == 1 && getenv("IOA_BENCH_PORT") != NULL;
  if (json) {
    const char *q = getenv("IOA_BENCH_QUICK"), *secs = getenv("IOA_BENCH_MAX_SECS");
    quick = q && !strcmp(q, "1");
    with_connect = 1;
    runs = 1;
    if (secs && atof(secs) > 0 && atof(secs) / 4 < max_s)
      max_s = atof(secs) / 4;
  }
  if (runs < 1 || runs > 64 || max_s <= 0) {
    fprintf(stderr, "bench_pick: 1 <= runs <= 64, seconds > 0\n");
    return 2;
  }
  if (quick && runs > 3)
    runs = 3;
  const unsigned *sizes = quick ? sizes_quick : sizes_full;
  size_t nsizes = quick ? sizeof sizes_quick / sizeof sizes_quick[0]
                        : sizeof sizes_full / sizeof sizes_full[0];

  if (!json)
    printf("# core: ns per attempt (every attempt refused at once), median of %ld runs\n"
           "%-18s %6s %12s %8s\n", runs, "mode", "n", "ns/attempt", "vs n=10");
  for (int m = 0; m < NMODES; m++) {
    double base = 0, t_mode = now_s();
    for (size_t si = 0; si < nsizes; si++) {
      unsigned n = sizes[si];
      double v[64];
      int ok = 1;
      /* Small lists repeat inside one sample so the clock can see them. */
      unsigned reps = n < 10000 ? 10000 / n : 1;
      for (long r = 0; r < runs && ok; r++) {
        double total = 0;
        unsigned attempts = 0;
        for (unsigned k = 0; k < reps && ok; k++) {
          double t = core_once(m, n, &attempts);
          ok = t >= 0 && attempts == n;
          total += t;
        }
        v[r] = total * 1e9 / ((double)n * reps);
      }
      if (!ok) {
        fprintf(stderr, "bench_pick: core %s n=%u did not try every candidate once\n",
                mode_names[m], n);
        return 1;
      }
      qsort(v, (size_t)runs, sizeof v[0], cmp_double);
      if (si == 0)
        base = v[runs / 2];
      report(json, mode_names[m], n, "ns_per_attempt", v[runs / 2], base);
      if (now_s() - t_mode > max_s) {
        fprintf(stderr, "bench_pick: %s: time bound of %.0f s reached after n=%u\n",
                mode_names[m], max_s, n);
        break;
      }
    }
  }

  if (!with_connect)
    return 0;
  int hold_fd;
  int port = refusing_port(&hold_fd);
  ioa_loop *loop;
  if (port < 0 || ioa_loop_new(NULL, &loop) < 0) {
    fprintf(stderr, "bench_pick: no refusing loopback port or loop\n");
    return 1;
  }
  unsigned maxn = sizes[nsizes - 1];
  addrs = calloc(maxn, sizeof *addrs);
  for (unsigned i = 0; i < maxn; i++)
    if (ioa_addr_inet("127.0.0.1", port, SOCK_STREAM, 0, &addrs[i], NULL) < 0)
      return 1;
  if (!json)
    printf("# connect: us per attempt, ioa_connect race mode, every address refused "
           "(127.0.0.1:%d), median of %ld runs\n%-18s %6s %12s %8s\n",
           port, runs, "mode", "n", "us/attempt", "vs n=10");
  double base = 0, t_mode = now_s();
  for (size_t si = 0; si < nsizes; si++) {
    unsigned n = sizes[si];
    double v[64];
    unsigned reps = n < 1000 ? 1000 / n : 1;
    for (long r = 0; r < runs; r++) {
      double total = 0;
      for (unsigned k = 0; k < reps; k++) {
        double t = connect_once(loop, n, max_s);
        if (t < 0) {
          fprintf(stderr, "bench_pick: connect n=%u did not end in refusal\n", n);
          return 1;
        }
        total += t;
      }
      v[r] = total * 1e6 / ((double)n * reps);
    }
    qsort(v, (size_t)runs, sizeof v[0], cmp_double);
    if (si == 0)
      base = v[runs / 2];
    report(json, "connect", n, "us_per_attempt", v[runs / 2], base);
    if (now_s() - t_mode > max_s) {
      fprintf(stderr, "bench_pick: connect: time bound of %.0f s reached after n=%u\n", max_s,
              n);
      break;
    }
  }
  ioa_loop_free(loop);
  free(addrs);
  close(hold_fd);
  return 0;
}
