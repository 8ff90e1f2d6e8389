/* SPDX-License-Identifier: MIT */
/* What every lab scenario program shares: a check that records a failure
 * and goes on (a scenario reports every broken expectation of a run, not
 * just the first), and the monotonic clock its timings are read on. */
#ifndef IOA_TEST_LAB_CHECK_H
#define IOA_TEST_LAB_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                             \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

static inline uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
