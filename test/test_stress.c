/* SPDX-License-Identifier: MIT */
/* Stress: thousands of concurrent connects to loopback listeners, a
 * pseudo-random third of them cancelled at random moments — right after
 * ioa_connect() returns, from a timer, from inside their own on_fail, from
 * inside another request's on_fail or success callback — repeated for a
 * few rounds.  Every request must complete exactly once, the fd count must
 * return to its baseline after each round, and (asan preset) nothing leaks.
 *
 * The resolver variant does the same through host "localhost" and the
 * getaddrinfo thread pool: that is the one to run under the tsan preset.
 *
 * Sizes: IOA_STRESS_N (default 10000), IOA_STRESS_ROUNDS
 * (default 3), IOA_STRESS_SEED.  The soft RLIMIT_NOFILE is raised to the
 * hard limit; if that is too low for N the test scales N down and says so.
 * Output lines "STRESS ..." are collected by scripts/lab.
 */
#include "testutil.h"

#ifdef IOA_FAULT_INJECTION
#include "fault.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NLISTEN 8
#define ROUND_MAX_MS 60000u

enum kind { K_LIVE, K_REFUSED_THEN_LIVE, K_REFUSED };
enum cancel_at {
  C_NONE,
  C_AT_ONCE,      /* right after ioa_connect returns */
  C_TIMER,        /* from a timer, 0-5 ms later */
  C_OWN_FAIL,     /* from inside its own on_fail */
  C_OTHER_FAIL,   /* from inside another request's on_fail */
  C_OTHER_SUCCESS /* from inside another request's on_connected */
};

typedef struct stress stress;
typedef struct req {
  stress *s;
  ioa_connect_req *h;
  ioa_timer timer;
  int kind, cancel_at;
  int completions;
  int done;
  int err;
  int fails;
} req;

struct stress {
  ioa_loop *loop;
  req *reqs;
  size_t n;
  size_t remaining;
  /* requests waiting to be cancelled from someone else's callback */
  size_t *victims;
  size_t nvictims;
  uint64_t rng;
  /* figures */
  size_t ok, refused, cancelled, other_err, cancels_issued, resolve_err;
  int duplicate;
  int use_resolver;
  int chaos; /* fault build: random injected failures; errors are allowed */
  int emfile; /* fd limit far below n */
  size_t start_errors;
  int lfd[NLISTEN];
  int lport[NLISTEN];
  int closed_port;
};

static uint64_t rnd(stress *s) {
  /* xorshift64*: reproducible per seed */
  s->rng ^= s->rng >> 12;
  s->rng ^= s->rng << 25;
  s->rng ^= s->rng >> 27;
  return s->rng * 2685821657736338717ull;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void complete(req *r, int err) {
  stress *s = r->s;
  if (r->completions++) {
    s->duplicate++;
    return;
  }
  r->done = 1;
  r->err = err;
  ioa_timer_stop(&r->timer);
  s->remaining--;
  if (err == 0)
    s->ok++;
  else if (err == -ECANCELED)
    s->cancelled++;
  else if (err == -ECONNREFUSED)
    s->refused++;
  else
    s->other_err++;
}

static void cancel_req(req *r) {
  if (r->done)
    return; /* the handle is gone once the completion ran */
  r->s->cancels_issued++;
  ioa_connect_cancel(r->h);
}

/* Cancel a few of the requests queued for cancellation by others. */
static void cancel_victims(stress *s, unsigned upto) {
  while (upto-- && s->nvictims) {
    size_t pick = (size_t)(rnd(s) % s->nvictims);
    size_t v = s->victims[pick];
    s->victims[pick] = s->victims[--s->nvictims];
    cancel_req(&s->reqs[v]);
  }
}

static void on_connected(ioa_connect_req *h, int fd, const ioa_addr *peer, void *data) {
  req *r = data;
  /* RST instead of FIN: no TIME_WAIT pile-up across rounds. */
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  complete(r, 0);
  if (rnd(r->s) % 4 == 0)
    cancel_victims(r->s, 2);
}

static void on_error(ioa_connect_req *h, ioa_syscall sys, int err, void *data) {
  complete(data, err);
}

static void on_resolve_error(ioa_connect_req *h, int err, const char *msg, void *data) {
  req *r = data;
  r->s->resolve_err++;
  complete(r, err);
}

static void on_fail(ioa_connect_req *h, const ioa_attempt_failure *f, void *data) {
  req *r = data;
  r->fails++;
  if (r->cancel_at == C_OWN_FAIL) {
    cancel_req(r);
    return;
  }
  if (rnd(r->s) % 3 == 0)
    cancel_victims(r->s, 1);
}

static void on_timer(ioa_timer *t, void *data) { cancel_req(data); }

static ioa_addr loop4(int port) {
  ioa_addr a;
  char text[32];
  snprintf(text, sizeof text, "127.0.0.1:%d", port);
  if (ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &a, NULL) < 0)
    fail_msg("ioa_addr_parse(%s)", text);
  return a;
}

static size_t raise_fd_limit(size_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  size_t avail = rl.rlim_cur == RLIM_INFINITY ? want + 1000 : (size_t)rl.rlim_cur;
  /* Room for what is open, the listeners and the loop. */
  size_t headroom = (size_t)ioa_test_fd_count() + NLISTEN + 64;
  return avail > headroom ? avail - headroom : 0;
}

static size_t env_size(const char *name, size_t dflt) {
  const char *v = getenv(name);
  return v && *v ? (size_t)strtoull(v, NULL, 10) : dflt;
}

static void run_round(stress *s, unsigned round) {
  for (int i = 0; i < NLISTEN; i++) {
    s->lfd[i] = ioa_test_listen_tcp(AF_INET, 4096, &s->lport[i]);
    assert_true(s->lfd[i] >= 0);
  }
  s->closed_port = ioa_test_closed_port(AF_INET);
  int fd0 = ioa_test_fd_count();
  /* The loop is the test's plumbing: create it before chaos starts. */
  assert_int_equal(ioa_loop_new(NULL, &s->loop), 0);
#ifdef IOA_FAULT_INJECTION
  if (s->chaos && !s->emfile) {
    /* One call in IOA_STRESS_CHAOS (default 50) of every kind fails with its natural errno (ENOMEM,
     * EMFILE, EINTR, EAI_AGAIN...), on every thread. */
    ioa__fault_seed(s->rng);
    ioa__fault_arm_ex(env_size("IOA_STRESS_CHAOS", 50), IOA_FAULT_ALL, 0, IOA_FAULT_RANDOM);
  }
#endif
  s->remaining = s->n;
  s->nvictims = 0;
  s->ok = s->refused = s->cancelled = s->other_err = s->cancels_issued = s->resolve_err = 0;
  s->start_errors = 0;
  uint64_t t0 = now_ms();
  char service[NLISTEN][8];
  for (int i = 0; i < NLISTEN; i++)
    snprintf(service[i], sizeof service[i], "%d", s->lport[i]);

  for (size_t i = 0; i < s->n; i++) {
    req *r = &s->reqs[i];
    memset(r, 0, sizeof *r);
    r->s = s;
    ioa_timer_init(s->loop, &r->timer, on_timer, r);
    r->kind = s->use_resolver ? K_LIVE : (int)(rnd(s) % 3);
    if (rnd(s) % 3 == 0) {
      static const int moments[] = {C_AT_ONCE, C_TIMER, C_OWN_FAIL, C_OTHER_FAIL,
                                    C_OTHER_SUCCESS};
      r->cancel_at = moments[rnd(s) % 5];
      if (r->cancel_at == C_OWN_FAIL && r->kind == K_LIVE)
        r->cancel_at = C_OTHER_SUCCESS; /* it has no on_fail of its own */
    }
    ioa_connect_params p;
    ioa_connect_params_init(&p);
    ioa_addr v[2];
    int li = (int)(rnd(s) % NLISTEN);
    if (s->use_resolver) {
      p.host = "localhost";
      p.service = service[li];
      p.socktype = SOCK_STREAM;
    } else if (r->kind == K_LIVE) {
      v[0] = loop4(s->lport[li]);
      p.addrs = v;
      p.naddrs = 1;
    } else if (r->kind == K_REFUSED_THEN_LIVE) {
      v[0] = loop4(s->closed_port);
      v[1] = loop4(s->lport[li]);
      p.addrs = v;
      p.naddrs = 2;
      p.mode = rnd(s) % 2 ? IOA_CONNECT_RACE : IOA_CONNECT_SEQUENTIAL;
      p.attempt_delay_ms = 10;
    } else {
      v[0] = loop4(s->closed_port);
      p.addrs = v;
      p.naddrs = 1;
    }
    p.on_connected = on_connected;
    p.on_connect_error = on_error;
    p.on_resolve_error = on_resolve_error;
    p.on_fail = on_fail;
    p.data = r;
    int rc = ioa_connect(s->loop, &p, &r->h);
    if (rc < 0 && s->chaos) {
      /* Refused before starting (an injected ENOMEM): no callback comes. */
      s->start_errors++;
      r->completions = 1;
      r->done = 1;
      r->err = rc;
      r->cancel_at = C_NONE;
      s->remaining--;
      s->other_err++;
      continue;
    }
    if (rc < 0)
      fail_msg("ioa_connect #%zu: %s", i, ioa_err_name(rc));
    assert_int_equal(r->completions, 0); /* never from inside ioa_connect */
    switch (r->cancel_at) {
    case C_AT_ONCE:
      cancel_req(r);
      break;
    case C_TIMER:
      if (ioa_timer_start(&r->timer, (rnd(s) % 6) * 1000000u, 0) < 0) {
        assert_true(s->chaos);
        cancel_req(r); /* no timer (injected ENOMEM): cancel now instead */
      }
      break;
    case C_OTHER_FAIL:
    case C_OTHER_SUCCESS:
      s->victims[s->nvictims++] = i;
      break;
    default:
      break;
    }
  }
  uint64_t t_started = now_ms();

  uint64_t end = now_ms() + ROUND_MAX_MS;
  while (s->remaining > 0 && now_ms() < end) {
    int rc = ioa_loop_run(s->loop, IOA_RUN_ONCE);
    if (rc < 0 && s->chaos)
      continue; /* an injected poller failure: run again */
    if (rc < 0)
      fail_msg("ioa_loop_run: %s", ioa_err_name(rc));
    if (rc == 0 && s->remaining > 0)
      break; /* nothing left to wait for: lost completions */
  }
  /* Victims whose chance never came (nobody failed or succeeded after
   * them): they completed on their own. */
  uint64_t t_done = now_ms();
  unsigned long injected = 0;
#ifdef IOA_FAULT_INJECTION
  injected = ioa__fault_fires();
  ioa__fault_arm(0, 0, 0);
#endif
  size_t never = 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->reqs[i].completions != 1)
      never++;
  print_message("STRESS variant=%s%s%s round=%u n=%zu ok=%zu refused=%zu cancelled=%zu "
                "cancel_calls=%zu other_err=%zu resolve_err=%zu start_errors=%zu injected=%lu "
                "start_ms=%llu total_ms=%llu duplicates=%d incomplete=%zu\n",
                s->use_resolver ? "resolver" : "addrs", s->emfile ? "_emfile" : "",
                s->chaos && !s->emfile ? "_chaos" : "", round, s->n,
                s->ok, s->refused, s->cancelled, s->cancels_issued, s->other_err, s->resolve_err,
                s->start_errors, injected, (unsigned long long)(t_started - t0),
                (unsigned long long)(t_done - t0), s->duplicate, never);
  assert_int_equal(s->duplicate, 0);
  assert_int_equal(never, 0);
  assert_int_equal(s->remaining, 0);
  /* Every completion is accounted for by kind. */
  assert_int_equal(s->ok + s->refused + s->cancelled + s->other_err, s->n);
  for (size_t i = 0; i < s->n && !s->chaos; i++) {
    req *r = &s->reqs[i];
    if (r->err == 0)
      assert_int_not_equal(r->kind, K_REFUSED);
    if (r->cancel_at == C_AT_ONCE)
      assert_int_equal(r->err, -ECANCELED);
    if (r->kind == K_REFUSED && r->err != -ECANCELED)
      assert_int_equal(r->err, -ECONNREFUSED);
  }
  for (size_t i = 0; i < s->n; i++)
    ioa_timer_stop(&s->reqs[i].timer);
  ioa_loop_free(s->loop);
  s->loop = NULL;
  int fd1 = ioa_test_fd_count();
  if (fd1 != fd0)
    fail_msg("round %u: fd count %d before, %d after", round, fd0, fd1);
  for (int i = 0; i < NLISTEN; i++)
    close(s->lfd[i]);
}

static void stress_run(int use_resolver, int chaos) {
  size_t n = env_size("IOA_STRESS_N", 10000);
  size_t rounds = env_size("IOA_STRESS_ROUNDS", 3);
  size_t cap = raise_fd_limit(n);
  if (cap < n) {
    print_message("STRESS note: RLIMIT_NOFILE allows only %zu concurrent sockets; scaling N "
                  "from %zu down to %zu\n",
                  cap, n, cap);
    n = cap;
  }
  if (n < 10)
    skip();
  stress *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->n = n;
  s->use_resolver = use_resolver;
  s->chaos = chaos;
  s->rng = env_size("IOA_STRESS_SEED", 0x9e3779b97f4a7c15ull) | 1;
  s->reqs = calloc(n, sizeof *s->reqs);
  s->victims = calloc(n, sizeof *s->victims);
  assert_non_null(s->reqs);
  assert_non_null(s->victims);
  for (unsigned r = 0; r < rounds; r++)
    run_round(s, r);
  free(s->reqs);
  free(s->victims);
  free(s);
}

/* EMFILE storm: the fd limit set far below N, so most socket() calls fail
 * with EMFILE; every request must still complete once, nothing may spin. */
static void stress_emfile(void **state) {
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit rl = old;
  rl.rlim_cur = (rlim_t)ioa_test_fd_count() + NLISTEN + 200;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
  stress *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->n = env_size("IOA_STRESS_N", 10000);
  s->chaos = 1; /* errors (EMFILE) are expected outcomes here */
  s->rng = env_size("IOA_STRESS_SEED", 0x9e3779b97f4a7c15ull) | 1;
  s->reqs = calloc(s->n, sizeof *s->reqs);
  s->victims = calloc(s->n, sizeof *s->victims);
  assert_non_null(s->reqs);
  assert_non_null(s->victims);
  s->emfile = 1;
  run_round(s, 0);
  free(s->reqs);
  free(s->victims);
  free(s);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
}

static void stress_addrs(void **state) { stress_run(0, 0); }
static void stress_resolver(void **state) { stress_run(1, 0); }
#ifdef IOA_FAULT_INJECTION
/* Fault build: the same with one injectable call in 50 failing at random. */
static void stress_addrs_chaos(void **state) { stress_run(0, 1); }
static void stress_resolver_chaos(void **state) { stress_run(1, 1); }
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(stress_addrs),
      IOA_TEST(stress_resolver),
      IOA_TEST(stress_emfile),
#ifdef IOA_FAULT_INJECTION
      IOA_TEST(stress_addrs_chaos),
      IOA_TEST(stress_resolver_chaos),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
