/* SPDX-License-Identifier: MIT */
/* Hostile-network lab, Happy Eyeballs racing (RFC 8305): the in-flight
 * limit against many black holes, and the attempt delay learned from
 * round-trip times.  Runs inside test/lab/netns-run's private namespace
 * (see test_lab.c for the layout); like test_lab it refuses to run
 * anywhere else.
 *
 * Usage: test_lab_race SCENARIO
 *   race_holes        64 black holes (nft drop rules this test adds, for
 *                     127.0.1.1..64) before a live address: racing with a
 *                     10 ms attempt delay, at most 16 in flight, the oldest
 *                     abandoned for each new attempt: every address gets
 *                     its turn and the live one wins.
 *   learned_loopback  racing connects on loopback teach the cache an RTT of
 *                     microseconds: the attempt delay falls to the 100 ms
 *                     floor, and a black hole before a live address costs
 *                     100 ms rather than 250.
 *   learned_latency   200 ms added to IPv4 SYNs to 127.0.0.10 (nfq_delay):
 *                     the learned delay becomes ~400 ms, so racing that
 *                     path against a live ::1 makes no needless second
 *                     attempt.  Needs the delayer and IPv6, else skipped.
 * Exit 77 means skipped.  Every fd is checked closed at the end.
 */
#include "testutil.h"
#include "lab_check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LAB_MAX_MS 15000u
#define HOLES 64
#define MAX_RECORD 80

/* One racing request, recorded: attempts (family, time), abandoned and
 * other failures, every socket made, the completion. */
typedef struct run_rec {
  uint64_t start_ns, done_ns;
  int done, connected_fd, connected_family, err;
  int nattempt;
  int attempt_family[MAX_RECORD];
  uint64_t attempt_ns[MAX_RECORD];
  int nabandoned, nother_fail;
  int nsock;
  int sock_fd[MAX_RECORD];
  int losers_open;
} run_rec;

static void on_attempt(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                       void *data) {
  run_rec *r = data;
  (void)req, (void)local;
  if (r->nattempt < MAX_RECORD) {
    r->attempt_family[r->nattempt] = peer->family;
    r->attempt_ns[r->nattempt] = mono_ns();
  }
  r->nattempt++;
}

static int on_sockopt(ioa_connect_req *req, int fd, const ioa_addr *peer, const ioa_addr *local,
                      void *data) {
  run_rec *r = data;
  (void)req, (void)peer, (void)local;
  if (r->nsock < MAX_RECORD)
    r->sock_fd[r->nsock++] = fd;
  return 0;
}

static void on_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  run_rec *r = data;
  (void)req;
  CHECK(f->fd >= 0 && fcntl(f->fd, F_GETFD) >= 0, "on_fail's fd %d is not open", f->fd);
  if (f->syscall == IOA_SYSCALL_CONNECT && f->err == IOA_EABANDONED)
    r->nabandoned++;
  else
    r->nother_fail++;
}

static void on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  run_rec *r = data;
  (void)req;
  r->done++;
  r->done_ns = mono_ns();
  r->connected_fd = fd;
  r->connected_family = peer->family;
  for (int i = 0; i < r->nsock; i++) /* every loser closed before the hand-over */
    if (r->sock_fd[i] != fd && fcntl(r->sock_fd[i], F_GETFD) >= 0)
      r->losers_open++;
}

static void on_error(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  run_rec *r = data;
  (void)req, (void)s;
  r->done++;
  r->done_ns = mono_ns();
  r->err = err;
}

/* Race addrs (list order) to completion; cache NULL: learning off. */
static void race(ioa_loop *loop, const ioa_addr *addrs, size_t n, unsigned delay_ms,
                 ioa_rtt_cache *cache, run_rec *r) {
  memset(r, 0, sizeof *r);
  r->connected_fd = -1;
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.addrs = addrs;
  p.naddrs = n;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = delay_ms;
  p.rtt_cache = cache;
  p.learned_delay = cache ? IOA_LEARNED_DELAY_ON : IOA_LEARNED_DELAY_OFF;
  p.timeout_ms = 10000;
  p.on_connected = on_connected;
  p.on_connect_error = on_error;
  p.on_fail = on_fail;
  p.on_attempt = on_attempt;
  p.on_sockopt = on_sockopt;
  p.data = r;
  r->start_ns = mono_ns();
  int rc = ioa_connect(loop, &p, NULL);
  CHECK(rc == 0, "ioa_connect: %s", ioa_err_name(rc));
  if (rc < 0)
    return;
  if (ioa_test_run_until(loop, &r->done, LAB_MAX_MS) < 0)
    CHECK(0, "no completion within %u ms", LAB_MAX_MS);
  for (int i = 0; i < 3; i++)
    ioa_loop_run(loop, IOA_RUN_NOWAIT);
  CHECK(r->done == 1, "%d completions", r->done);
  fprintf(stderr, "  %d attempts, %d abandoned, %d other failures, %s at +%.1f ms\n",
          r->nattempt, r->nabandoned, r->nother_fail,
          r->connected_fd >= 0 ? (r->connected_family == AF_INET6 ? "connected over IPv6"
                                                                   : "connected over IPv4")
                               : ioa_err_name(r->err),
          (double)(r->done_ns - r->start_ns) / 1e6);
  for (int i = 1; i < r->nattempt && i < MAX_RECORD && i < 4; i++)
    fprintf(stderr, "  attempt %d at +%.1f ms\n", i + 1,
            (double)(r->attempt_ns[i] - r->start_ns) / 1e6);
  if (r->connected_fd >= 0)
    close(r->connected_fd);
}

static ioa_addr mk(const char *text) {
  ioa_addr a;
  ioa_errinfo ei;
  if (ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &a, &ei) < 0) {
    fprintf(stderr, "bad address %s: %s\n", text, ei.message);
    exit(2);
  }
  return a;
}

static int listen_on(const char *text) {
  ioa_addr a = mk(text);
  int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a.addr, a.addrlen) < 0 || listen(fd, 64) < 0) {
    fprintf(stderr, "listen %s: %s\n", text, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  return fd;
}

/* ------------------------------------------------------------- scenarios */

/* RFC 8305 section 5: every address gets its turn.  asyncio connected in
 * 194 ms with 18 such holes; ioasync before this change never reached the
 * live address (16 slots held by black holes, no attempt timeout). */
static void sc_race_holes(ioa_loop *loop) {
  FILE *nft = popen("nft -f -", "w");
  if (!nft) {
    fprintf(stderr, "SKIP: cannot run nft\n");
    exit(77);
  }
  fprintf(nft, "table inet race {\n chain out {\n  type filter hook output priority 0;\n"
               "  ip daddr 127.0.1.0/24 tcp dport 9500 drop\n }\n}\n");
  if (pclose(nft) != 0) {
    fprintf(stderr, "SKIP: nft refused the black-hole rule\n");
    exit(77);
  }
  int lfd = listen_on("127.0.0.1:9500");
  CHECK(lfd >= 0, "no live listener");
  if (lfd < 0)
    return;
  static ioa_addr addrs[HOLES + 1];
  char text[64];
  for (int i = 0; i < HOLES; i++) {
    snprintf(text, sizeof text, "127.0.1.%d:9500", i + 1);
    addrs[i] = mk(text);
  }
  addrs[HOLES] = mk("127.0.0.1:9500");
  fprintf(stderr, "%d black holes then a live address, racing, attempt delay 10 ms\n", HOLES);
  run_rec r;
  race(loop, addrs, HOLES + 1, 10, NULL, &r);
  CHECK(r.connected_fd >= 0 && r.connected_family == AF_INET, "the live address did not win");
  CHECK(r.nattempt == HOLES + 1, "%d attempts, want %d (every address once)", r.nattempt,
        HOLES + 1);
  CHECK(r.nabandoned == HOLES - (IOA_CONNECT_MAX_INFLIGHT - 1),
        "%d abandoned, want %d (one per attempt beyond the 16 in flight)", r.nabandoned,
        HOLES - (IOA_CONNECT_MAX_INFLIGHT - 1));
  CHECK(r.nother_fail == 0, "%d other failures", r.nother_fail);
  CHECK(r.losers_open == 0, "%d black-hole attempts still open at the win", r.losers_open);
  /* The live address's turn: 64 attempt delays in (a lower bound). */
  CHECK(r.done_ns - r.start_ns >= (uint64_t)HOLES * 10 * 1000000u,
        "connected before the live address's turn");
  close(lfd);
}

static void print_learned(ioa_rtt_cache *cache, const char *text) {
  ioa_addr a = mk(text);
  uint32_t rtt;
  unsigned delay;
  int known = ioa_rtt_cache_lookup(cache, &a, &rtt, &delay);
  fprintf(stderr, "  %s: %s, RTT %.3f ms, attempt delay %u ms\n", text,
          known ? "learned" : "nothing learned", rtt / 1000.0, delay);
}

static void sc_learned_loopback(ioa_loop *loop) {
  int lfd = listen_on("127.0.0.1:9600");
  CHECK(lfd >= 0, "no listener");
  if (lfd < 0)
    return;
  ioa_rtt_cache *cache;
  CHECK(ioa_rtt_cache_new(NULL, &cache) == 0, "cache");
  ioa_addr live = mk("127.0.0.1:9600");
  ioa_addr two[2] = {live, live};
  fprintf(stderr, "racing connects on loopback teach the cache\n");
  run_rec r;
  for (int i = 0; i < 3; i++)
    race(loop, two, 2, 0, cache, &r);
  print_learned(cache, "127.0.0.1:9600");
  uint32_t rtt;
  unsigned delay;
  CHECK(ioa_rtt_cache_lookup(cache, &live, &rtt, &delay) == 1, "nothing learned");
  CHECK(delay == 100, "attempt delay %u ms, want the 100 ms floor (RTT %u us)", delay, rtt);

  /* 127.0.0.5:9001 drops SYNs (netns-run) and shares the /24. */
  fprintf(stderr, "black hole then live, no attempt delay given\n");
  ioa_addr hole_live[2] = {mk("127.0.0.5:9001"), live};
  race(loop, hole_live, 2, 0, cache, &r);
  CHECK(r.connected_fd >= 0 && r.nattempt == 2, "did not connect on the second attempt");
  CHECK(r.nattempt < 2 || r.attempt_ns[1] - r.attempt_ns[0] >= 100000000u,
        "second attempt before the 100 ms learned delay");
  fprintf(stderr, "  the same without learning (the 250 ms default):\n");
  race(loop, hole_live, 2, 0, NULL, &r);
  CHECK(r.nattempt < 2 || r.attempt_ns[1] - r.attempt_ns[0] >= 250000000u,
        "second attempt before the 250 ms default delay");
  ioa_rtt_cache_free(cache);
  close(lfd);
}

static void sc_learned_latency(ioa_loop *loop) {
  const char *lat = getenv("IOA_LAB_LATENCY_MS");
  if (!lat) {
    fprintf(stderr, "SKIP: no latency fixture (needs iptables NFQUEUE and nfq_delay built with "
                    "libnetfilter-queue-dev)\n");
    exit(77);
  }
  if (!ioa_test_have_ipv6()) {
    fprintf(stderr, "SKIP: IPv6 unavailable (no ::1 in the lab namespace)\n");
    exit(77);
  }
  uint64_t added_us = strtoull(lat, NULL, 10) * 1000u;
  int slow = listen_on("127.0.0.10:9400"), fast = listen_on("[::1]:9400");
  CHECK(slow >= 0 && fast >= 0, "listeners");
  if (slow < 0 || fast < 0)
    return;
  ioa_rtt_cache *cache;
  CHECK(ioa_rtt_cache_new(NULL, &cache) == 0, "cache");
  ioa_addr s4 = mk("127.0.0.10:9400"), f6 = mk("[::1]:9400");
  ioa_addr two[2] = {s4, s4};
  fprintf(stderr, "racing connects to the slow IPv4 path (%s ms added) teach the cache\n", lat);
  run_rec r;
  race(loop, two, 2, 0, cache, &r);
  print_learned(cache, "127.0.0.10:9400");
  uint32_t rtt;
  unsigned delay;
  CHECK(ioa_rtt_cache_lookup(cache, &s4, &rtt, &delay) == 1, "nothing learned");
  CHECK(rtt >= added_us, "RTT %u us below the added %llu us", rtt, (unsigned long long)added_us);
  CHECK(delay >= 2 * added_us / 1000, "attempt delay %u ms, want >= 2 x the added latency", delay);

  fprintf(stderr, "slow IPv4 first, live ::1 second, the learned delay\n");
  ioa_addr mixed[2] = {s4, f6};
  race(loop, mixed, 2, 0, cache, &r);
  CHECK(r.connected_fd >= 0 && r.connected_family == AF_INET, "did not connect over IPv4");
  CHECK(r.nattempt == 1, "%d attempts: a needless second handshake", r.nattempt);
  CHECK(r.done_ns - r.start_ns >= added_us * 1000u, "connected before the added latency");
  fprintf(stderr, "  for contrast, a fixed 150 ms delay (shorter than this path's RTT):\n");
  race(loop, mixed, 2, 150, NULL, &r);
  ioa_rtt_cache_free(cache);
  close(slow);
  close(fast);
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s race_holes|learned_loopback|learned_latency\n", argv[0]);
    return 2;
  }
  const char *sc = argv[1];
  signal(SIGPIPE, SIG_IGN);
  if (!lab_inside_namespace()) {
    fprintf(stderr, "SKIP: %s must run inside test/lab/netns-run (a private network namespace "
                    "with only lo); refusing to touch a real network\n", sc);
    return 77;
  }
  int fd0 = ioa_test_fd_count();
  ioa_loop *loop;
  if (ioa_loop_new(NULL, &loop) < 0)
    return 1;
  if (strcmp(sc, "race_holes") == 0)
    sc_race_holes(loop);
  else if (strcmp(sc, "learned_loopback") == 0)
    sc_learned_loopback(loop);
  else if (strcmp(sc, "learned_latency") == 0)
    sc_learned_latency(loop);
  else {
    fprintf(stderr, "unknown scenario %s\n", sc);
    return 2;
  }
  ioa_loop_free(loop);
  int fd1 = ioa_test_fd_count();
  CHECK(fd1 == fd0, "fd count %d before, %d after", fd0, fd1);
  fprintf(stderr, "%s: %s\n", sc, failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
