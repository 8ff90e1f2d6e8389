/* SPDX-License-Identifier: MIT */
/* Shared helpers for the C contenders: one CLI, one result line.
 *
 * Every peer takes   [-d delay_ms] [-t seconds] HOST PORT N K WORKLOAD
 * and prints exactly one JSON line on stdout:
 *   {"contender":"raw","workload":"...","n":N,"k":K,
 *    "connects_per_s":..,"cpu_us_per_connect":..}
 * or, for a workload whose name starts with "he" (Happy Eyeballs, K=1),
 *   {...,"time_to_connect_ms":..}
 * scripts/bench treats every numeric key other than n and k as a metric. */
#ifndef IOA_BENCH_COMMON_H
#define IOA_BENCH_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct bench_args {
  const char *host;
  const char *port;
  long n;
  long k;
  const char *workload;
  long delay_ms;   /* -d: Happy Eyeballs attempt delay, -1 = library default */
  long max_secs;   /* -t: wall-clock bound for the whole run */
} bench_args;

static inline double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double bench_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static inline void bench_usage(const char *prog) {
  fprintf(stderr, "usage: %s [-d delay_ms] [-t max_seconds] HOST PORT N K WORKLOAD\n", prog);
  exit(2);
}

static inline long bench_parse_long(const char *prog, const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) {
    fprintf(stderr, "%s: bad number '%s' (want %ld..%ld)\n", prog, s, min, max);
    exit(2);
  }
  return v;
}

static inline void bench_parse(bench_args *a, int argc, char **argv) {
  a->delay_ms = -1;
  a->max_secs = 60;
  int c;
  while ((c = getopt(argc, argv, "d:t:")) != -1) {
    if (c == 'd')
      a->delay_ms = bench_parse_long(argv[0], optarg, 0, 600000);
    else if (c == 't')
      a->max_secs = bench_parse_long(argv[0], optarg, 1, 3600);
    else
      bench_usage(argv[0]);
  }
  if (argc - optind != 5)
    bench_usage(argv[0]);
  a->host = argv[optind];
  a->port = argv[optind + 1];
  a->n = bench_parse_long(argv[0], argv[optind + 2], 1, 100000000);
  a->k = bench_parse_long(argv[0], argv[optind + 3], 1, 1000000);
  a->workload = argv[optind + 4];
  if (a->k > a->n)
    a->k = a->n;
}

static inline int bench_is_he(const bench_args *a) { return strncmp(a->workload, "he", 2) == 0; }

/* Print the result line.  wall and cpu are seconds spent on the N connects. */
static inline void bench_report(const char *contender, const bench_args *a, double wall,
                                double cpu) {
  if (bench_is_he(a))
    printf("{\"contender\":\"%s\",\"workload\":\"%s\",\"n\":%ld,\"k\":%ld,"
           "\"time_to_connect_ms\":%.3f,\"cpu_us_per_connect\":%.2f}\n",
           contender, a->workload, a->n, a->k, wall * 1e3 / (double)a->n,
           cpu * 1e6 / (double)a->n);
  else
    printf("{\"contender\":\"%s\",\"workload\":\"%s\",\"n\":%ld,\"k\":%ld,"
           "\"connects_per_s\":%.1f,\"cpu_us_per_connect\":%.2f}\n",
           contender, a->workload, a->n, a->k, (double)a->n / wall, cpu * 1e6 / (double)a->n);
  fflush(stdout);
}

static inline void bench_fail(const char *contender, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s\n", contender, what, strerror(err));
  exit(1);
}

#endif
