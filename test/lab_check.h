/* SPDX-License-Identifier: MIT */
/* What every lab scenario program shares: a check that records a failure
 * and goes on (a scenario reports every broken expectation of a run, not
 * just the first), the monotonic clock its timings are read on, and the
 * guard that keeps network scenarios inside the lab namespace. */
#ifndef IOA_TEST_LAB_CHECK_H
#define IOA_TEST_LAB_CHECK_H

#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Network scenarios run only inside the lab namespace (test/lab/netns-run
 * sets IOA_LAB_INSIDE, and only lo exists there): never on a real network. */
static inline int lab_inside_namespace(void) {
  if (!getenv("IOA_LAB_INSIDE"))
    return 0;
  struct if_nameindex *ifs = if_nameindex();
  if (!ifs)
    return 0;
  int only_lo = 1;
  for (struct if_nameindex *i = ifs; i->if_index; i++)
    if (strcmp(i->if_name, "lo") != 0)
      only_lo = 0;
  if_freenameindex(ifs);
  return only_lo;
}

#endif
