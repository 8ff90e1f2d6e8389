/* SPDX-License-Identifier: MIT */
/* Hostile-network lab: the connector against real kernel behaviour.
 *
 * Usage: test_lab SCENARIO
 *
 * Network scenarios run inside the private network+mount namespace that
 * test/lab/netns-run builds (loopback only, nftables rules, policy routes,
 * a DNS responder on 127.0.0.1:53 and 127.0.0.53:53, its own /etc/hosts and
 * resolv.conf); see that script for the layout.  As a guard against ever
 * touching a real network, they refuse to run unless the only interface
 * present is lo and IOA_LAB_INSIDE is set.  Exit 77 means skipped.
 *
 * "emfile*" scenarios need no namespace: they run in a child process with a
 * tiny RLIMIT_NOFILE and loopback addresses only.
 */
#include "testutil.h"
#include "lab_check.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LAB_MAX_MS 15000u

/* ---------------------------------------------------- one connect, recorded */

#define MAX_EVENTS 16
typedef struct lab_req {
  ioa_connect_req *req;
  int completions;
  int connected_fd;
  int connected_family;
  ioa_syscall err_syscall;
  int err;
  int resolve_err;
  char resolve_msg[160];
  int nfail;
  ioa_syscall fail_syscall[MAX_EVENTS];
  int fail_err[MAX_EVENTS];
  int fail_fd[MAX_EVENTS];
  int nattempt;
  int attempt_family[MAX_EVENTS];
  uint64_t attempt_ns[MAX_EVENTS];
  int nsock;
  int sock_fd[MAX_EVENTS];
  uint64_t start_ns;
  int losers_open; /* attempt fds still open when the winner was reported */
  int done;
} lab_req;

static int fd_open(int fd);

static void on_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  lab_req *r = data;
  /* IO::Async passes the socket to on_fail: it must still be open here. */
  CHECK(f->fd < 0 || fd_open(f->fd), "on_fail fd %d already closed", f->fd);
  char a[IOA_ADDR_STRLEN] = "-";
  if (f->peer)
    ioa_addr_format(f->peer, a, sizeof a);
  fprintf(stderr, "  on_fail(%s, fd %d, %s, %s)\n", ioa_syscall_name(f->syscall), f->fd, a,
          ioa_err_name(f->err));
  if (r->nfail < MAX_EVENTS) {
    r->fail_syscall[r->nfail] = f->syscall;
    r->fail_err[r->nfail] = f->err;
    r->fail_fd[r->nfail] = f->fd;
  }
  r->nfail++;
}

static void on_attempt(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                       void *data) {
  lab_req *r = data;
  char a[IOA_ADDR_STRLEN];
  ioa_addr_format(peer, a, sizeof a);
  uint64_t t = mono_ns();
  fprintf(stderr, "  attempt %s at +%.1f ms\n", a, (double)(t - r->start_ns) / 1e6);
  if (r->nattempt < MAX_EVENTS) {
    r->attempt_family[r->nattempt] = peer->family;
    r->attempt_ns[r->nattempt] = t;
  }
  r->nattempt++;
}

static int on_sockopt(ioa_connect_req *req, int fd, const ioa_addr *peer, const ioa_addr *local,
                      void *data) {
  lab_req *r = data;
  if (r->nsock < MAX_EVENTS)
    r->sock_fd[r->nsock++] = fd;
  return 0;
}

static int fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static void on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  lab_req *r = data;
  r->completions++;
  r->done = 1;
  r->connected_fd = fd;
  r->connected_family = peer->family;
  /* Every loser must already be closed when the winner is handed over. */
  for (int i = 0; i < r->nsock; i++)
    if (r->sock_fd[i] != fd && fd_open(r->sock_fd[i]))
      r->losers_open++;
  char a[IOA_ADDR_STRLEN];
  ioa_addr_format(peer, a, sizeof a);
  fprintf(stderr, "  connected to %s (fd %d) at +%.1f ms\n", a, fd,
          (double)(mono_ns() - r->start_ns) / 1e6);
}

static void on_connect_error(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  lab_req *r = data;
  r->completions++;
  r->done = 1;
  r->err_syscall = s;
  r->err = err;
  fprintf(stderr, "  connect error: %s %s (%s) at +%.1f ms\n", ioa_syscall_name(s),
          ioa_err_name(err), ioa_strerror(err), (double)(mono_ns() - r->start_ns) / 1e6);
}

static void on_resolve_error(ioa_connect_req *req, int err, const char *msg, void *data) {
  lab_req *r = data;
  r->completions++;
  r->done = 1;
  r->resolve_err = err;
  snprintf(r->resolve_msg, sizeof r->resolve_msg, "%s", msg ? msg : "(null)");
  fprintf(stderr, "  resolve error: %s: %s at +%.1f ms\n", ioa_err_name(err), r->resolve_msg,
          (double)(mono_ns() - r->start_ns) / 1e6);
}

static void lab_params(ioa_connect_params *p, lab_req *r) {
  memset(r, 0, sizeof *r);
  r->connected_fd = -1;
  ioa_connect_params_init(p);
  p->on_connected = on_connected;
  p->on_connect_error = on_connect_error;
  p->on_resolve_error = on_resolve_error;
  p->on_fail = on_fail;
  p->on_attempt = on_attempt;
  p->on_sockopt = on_sockopt;
  p->data = r;
}

/* Start, run to completion (bounded), settle the loop. Returns 0 if started. */
static int lab_run(ioa_loop *loop, const ioa_connect_params *p, lab_req *r) {
  r->start_ns = mono_ns();
  int rc = ioa_connect(loop, p, &r->req);
  if (rc < 0) {
    CHECK(0, "ioa_connect refused to start: %s", ioa_err_name(rc));
    return rc;
  }
  CHECK(r->completions == 0, "a callback ran inside ioa_connect");
  if (ioa_test_run_until(loop, &r->done, LAB_MAX_MS) < 0)
    CHECK(0, "no completion within %u ms", LAB_MAX_MS);
  /* Let anything stray (a second completion) show itself. */
  for (int i = 0; i < 5; i++)
    ioa_loop_run(loop, IOA_RUN_NOWAIT);
  CHECK(r->completions == 1, "%d completions", r->completions);
  if (r->connected_fd >= 0)
    close(r->connected_fd);
  return 0;
}

static ioa_addr mk(const char *text) {
  ioa_addr a;
  ioa_errinfo ei;
  int rc = ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &a, &ei);
  if (rc < 0) {
    fprintf(stderr, "bad address %s: %s\n", text, ei.message);
    exit(2);
  }
  return a;
}

/* ------------------------------------------------------------- scenarios */

/* One address whose connect fails with a known errno, immediately (route)
 * or by ICMP/RST. */
static void expect_errno(ioa_loop *loop, const char *addr, int want) {
  fprintf(stderr, "%s: expecting %s\n", addr, ioa_err_name(-want));
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  ioa_addr a = mk(addr);
  p.addrs = &a;
  p.naddrs = 1;
  p.attempt_timeout_ms = 5000;
  if (lab_run(loop, &p, &r) < 0)
    return;
  CHECK(r.nfail == 1, "%s: %d on_fail calls", addr, r.nfail);
  CHECK(r.fail_syscall[0] == IOA_SYSCALL_CONNECT, "%s: failed in %s", addr,
        ioa_syscall_name(r.fail_syscall[0]));
  CHECK(r.fail_err[0] == -want, "%s: on_fail got %s, want %s", addr,
        ioa_err_name(r.fail_err[0]), ioa_err_name(-want));
  CHECK(r.fail_fd[0] >= 0, "%s: on_fail fd %d", addr, r.fail_fd[0]);
  CHECK(r.err_syscall == IOA_SYSCALL_CONNECT && r.err == -want,
        "%s: completion %s %s, want connect %s", addr, ioa_syscall_name(r.err_syscall),
        ioa_err_name(r.err), ioa_err_name(-want));
}

static void sc_errors(ioa_loop *loop) {
  expect_errno(loop, "127.0.0.1:9001", ECONNREFUSED);  /* nothing listens: RST */
  expect_errno(loop, "127.0.0.6:9001", ECONNREFUSED);  /* nft: reject with tcp reset */
  expect_errno(loop, "127.0.0.2:9001", EHOSTUNREACH);  /* icmp host-unreachable */
  expect_errno(loop, "127.0.0.3:9001", EHOSTUNREACH);  /* icmp admin-prohibited */
  expect_errno(loop, "127.0.0.4:9001", ENETUNREACH);   /* icmp net-unreachable */
  expect_errno(loop, "127.0.0.66:9001", EHOSTUNREACH); /* route unreachable */
  expect_errno(loop, "127.0.0.67:9001", EACCES);       /* route prohibit */
  expect_errno(loop, "127.0.0.68:9001", EINVAL);       /* route blackhole */
}

/* Scenarios that need IPv6 (::1 in the namespace) are skipped (exit 77)
 * without it: reported as skipped, never as passed. */
static void need_ipv6(void) {
  if (!ioa_test_have_ipv6()) {
    fprintf(stderr, "SKIP: IPv6 unavailable (no ::1 in the lab namespace)\n");
    exit(77);
  }
}

static void sc_errors_v6(ioa_loop *loop) {
  need_ipv6();
  expect_errno(loop, "[::1]:9001", ECONNREFUSED);
  expect_errno(loop, "[::1]:9002", EHOSTUNREACH);        /* icmpv6 addr-unreachable */
  expect_errno(loop, "[::1]:9003", EACCES);              /* icmpv6 admin-prohibited */
  expect_errno(loop, "[::1]:9004", ENETUNREACH);         /* icmpv6 no-route */
  expect_errno(loop, "[::1]:9006", ECONNREFUSED);        /* icmpv6 port-unreachable */
  expect_errno(loop, "[fd00:1ab::66]:9001", EHOSTUNREACH); /* route unreachable */
  expect_errno(loop, "[fd00:1ab::67]:9001", EACCES);       /* route prohibit */
  expect_errno(loop, "[fd00:1ab::68]:9001", EINVAL);       /* route blackhole */
}

static int listen_fixed(int family, const char *ip, int port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &s6->sin6_addr);
    s6->sin6_port = htons((uint16_t)port);
    len = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &s4->sin_addr);
    s4->sin_port = htons((uint16_t)port);
    len = sizeof *s4;
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

/* Black hole (SYN dropped): the per-attempt timeout reports ETIMEDOUT
 * through on_fail and the next address connects; with only an overall
 * deadline the request completes with ETIMEDOUT. */
static void sc_blackhole(ioa_loop *loop) {
  int lfd = listen_fixed(AF_INET, "127.0.0.1", 9100);
  CHECK(lfd >= 0, "listen 127.0.0.1:9100: %s", strerror(-lfd));
  if (lfd < 0)
    return;
  fprintf(stderr, "black hole then live, sequential, attempt timeout 200 ms\n");
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  ioa_addr v[2] = {mk("127.0.0.5:9001"), mk("127.0.0.1:9100")};
  p.addrs = v;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_SEQUENTIAL;
  p.attempt_timeout_ms = 200;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.nfail == 1 && r.fail_syscall[0] == IOA_SYSCALL_CONNECT &&
              r.fail_err[0] == -ETIMEDOUT,
          "want one on_fail(connect, ETIMEDOUT), got %d (first %s %s)", r.nfail,
          ioa_syscall_name(r.fail_syscall[0]), ioa_err_name(r.fail_err[0]));
    CHECK(r.connected_family == AF_INET, "not connected");
    CHECK(r.nattempt == 2 && r.attempt_ns[1] - r.attempt_ns[0] >= 200000000u,
          "second attempt must wait for the 200 ms attempt timeout");
  }

  fprintf(stderr, "black hole only, overall timeout 300 ms\n");
  lab_params(&p, &r);
  p.addrs = v;
  p.naddrs = 1;
  p.timeout_ms = 300;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.connected_fd < 0 && r.err == -ETIMEDOUT, "want ETIMEDOUT, got %s",
          ioa_err_name(r.err));
    CHECK(mono_ns() - r.start_ns >= 300000000u, "deadline fired early");
  }

  fprintf(stderr, "black hole and live raced (Happy Eyeballs on a list)\n");
  lab_params(&p, &r);
  p.addrs = v;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 100;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.connected_family == AF_INET, "not connected");
    CHECK(r.losers_open == 0, "%d losing attempts still open at success", r.losers_open);
    CHECK(r.nattempt == 2 && r.attempt_ns[1] - r.attempt_ns[0] >= 100000000u,
          "second attempt before the 100 ms attempt delay");
  }
  close(lfd);
}

/* Added latency: SYNs to 127.0.0.10 are held 200 ms by nfq_delay.  A slow
 * path must still connect (and not before the delay); racing it against a
 * fast one with a 50 ms attempt delay, the fast one wins and the slow
 * socket is closed; sequentially with a 100 ms attempt timeout the slow
 * one times out (on_fail ETIMEDOUT) and the fast one connects. */
static void sc_latency(ioa_loop *loop) {
  const char *lat = getenv("IOA_LAB_LATENCY_MS");
  if (!lat) {
    fprintf(stderr, "SKIP: no latency fixture (needs iptables NFQUEUE and nfq_delay built with "
                    "libnetfilter-queue-dev)\n");
    exit(77);
  }
  uint64_t delay_ns = strtoull(lat, NULL, 10) * 1000000u;
  int slow = listen_fixed(AF_INET, "127.0.0.10", 9400);
  int fast = listen_fixed(AF_INET, "127.0.0.1", 9400);
  CHECK(slow >= 0 && fast >= 0, "listen 9400");
  ioa_addr v[2] = {mk("127.0.0.10:9400"), mk("127.0.0.1:9400")};
  ioa_connect_params p;
  lab_req r;

  fprintf(stderr, "slow path alone\n");
  lab_params(&p, &r);
  p.addrs = v;
  p.naddrs = 1;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.connected_fd >= 0 || r.connected_family == AF_INET, "slow path did not connect");
    CHECK(mono_ns() - r.start_ns >= delay_ns, "connected before the added latency");
  }

  fprintf(stderr, "slow raced against fast, attempt delay 50 ms\n");
  lab_params(&p, &r);
  p.addrs = v;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 50;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.nattempt == 2, "%d attempts", r.nattempt);
    CHECK(r.losers_open == 0, "slow loser still open");
    CHECK(r.nfail == 0, "a loser was reported as a failure");
  }

  fprintf(stderr, "slow then fast, sequential, attempt timeout 100 ms\n");
  lab_params(&p, &r);
  p.addrs = v;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_SEQUENTIAL;
  p.attempt_timeout_ms = 100;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.nfail == 1 && r.fail_err[0] == -ETIMEDOUT, "want on_fail ETIMEDOUT for the slow one");
    CHECK(r.nattempt == 2, "%d attempts", r.nattempt);
  }
  close(slow);
  close(fast);
}

/* Happy Eyeballs end to end with the getaddrinfo pool: hosts.test resolves
 * (namespace /etc/hosts) to ::1 and 127.0.0.1; ::1 port 9100 is black-holed
 * by nft, 127.0.0.1:9100 listens.  The IPv6 attempt goes first (RFC 6724
 * order), the IPv4 one after the attempt delay, IPv4 wins, the IPv6 socket
 * is closed before on_connected runs. */
static void sc_he_gai(ioa_loop *loop) {
  need_ipv6();
  int lfd = listen_fixed(AF_INET, "127.0.0.1", 9100);
  CHECK(lfd >= 0, "listen: %s", strerror(-lfd));
  if (lfd < 0)
    return;
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  p.host = "hosts.test";
  p.service = "9100";
  p.socktype = SOCK_STREAM;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 150;
  p.timeout_ms = 10000;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.connected_family == AF_INET, "did not connect over IPv4");
    CHECK(r.nattempt >= 2, "%d attempts", r.nattempt);
    CHECK(r.attempt_family[0] == AF_INET6, "first attempt was not IPv6");
    CHECK(r.attempt_family[1] == AF_INET, "second attempt was not IPv4");
    CHECK(r.nattempt < 2 || r.attempt_ns[1] - r.attempt_ns[0] >= 150000000u,
          "IPv4 attempt started before the 150 ms attempt delay");
    CHECK(r.losers_open == 0, "the IPv6 attempt was still open at success");
  }
  close(lfd);
}

/* c-ares scenarios are skipped (exit 77) in a build without the backend. */
static void need_cares(void) {
  if (!ioa_resolver_have_cares()) {
    fprintf(stderr, "SKIP: c-ares backend not built\n");
    exit(77);
  }
}

/* A c-ares resolver asking servers (default_timeout_ms 0: no per-lookup
 * timeout); NULL, counted as a failure, if it cannot be made. */
static ioa_resolver *lab_cares(ioa_loop *loop, const char *servers, unsigned default_timeout_ms) {
  ioa_resolver *res;
  ioa_resolver_options ro = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_CARES,
                             .servers = servers,
                             .default_timeout_ms = default_timeout_ms};
  int rc = ioa_resolver_new(loop, &ro, &res);
  CHECK(rc == 0, "ioa_resolver_new(c-ares): %s", ioa_err_name(rc));
  return rc < 0 ? NULL : res;
}

/* c-ares: the server at 127.0.0.53 answers A at once and AAAA 300 ms late.
 * Both addresses are live, so if the connector waited for AAAA it would try
 * ::1 first; it must instead start IPv4 once the 50 ms resolution delay has
 * passed. */
static void sc_he_cares(ioa_loop *loop) {
  need_cares();
  need_ipv6();
  ioa_resolver *res = lab_cares(loop, "127.0.0.53:53", 0);
  if (!res)
    return;
  int l4 = listen_fixed(AF_INET, "127.0.0.1", 9200);
  int l6 = listen_fixed(AF_INET6, "::1", 9200);
  CHECK(l4 >= 0 && l6 >= 0, "listen 9200");
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  p.host = "lab.test";
  p.service = "9200";
  p.socktype = SOCK_STREAM;
  p.resolver = res;
  p.mode = IOA_CONNECT_RACE;
  p.timeout_ms = 10000;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.nattempt >= 1 && r.attempt_family[0] == AF_INET,
          "first attempt was not IPv4: the connector waited for the late AAAA");
    CHECK(r.nattempt >= 1 && r.attempt_ns[0] - r.start_ns >= 50000000u,
          "IPv4 attempt started before the 50 ms resolution delay");
    CHECK(r.connected_family == AF_INET, "did not connect over IPv4");
  }
  ioa_resolver_free(res);
  if (l4 >= 0)
    close(l4);
  if (l6 >= 0)
    close(l6);
}

/* c-ares, one family misbehaving: the AAAA query is never answered
 * (noaaaa.test) or fails (badaaaa.test) while A is fine.  The connection
 * must go over IPv4 without waiting for the AAAA query to time out, and
 * nothing may be left behind when it completes. */
static void he_one_family(ioa_loop *loop, ioa_resolver *res, const char *host) {
  fprintf(stderr, "%s via c-ares\n", host);
  int l4 = listen_fixed(AF_INET, "127.0.0.1", 9300);
  CHECK(l4 >= 0, "listen 9300");
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  p.host = host;
  p.service = "9300";
  p.socktype = SOCK_STREAM;
  p.resolver = res;
  p.mode = IOA_CONNECT_RACE;
  p.timeout_ms = 10000;
  if (lab_run(loop, &p, &r) == 0) {
    CHECK(r.connected_family == AF_INET, "%s: did not connect over IPv4", host);
    CHECK(r.nattempt >= 1 && r.attempt_family[0] == AF_INET, "%s: first attempt not IPv4",
          host);
    /* The resolver's own timeout (1.5 s here) must not be waited for. */
    CHECK(mono_ns() - r.start_ns < 1400000000u,
          "%s: completion waited for the AAAA query to time out", host);
  }
  if (l4 >= 0)
    close(l4);
}

static void sc_he_partial(ioa_loop *loop) {
  need_cares();
  ioa_resolver *res = lab_cares(loop, "127.0.0.1:53", 1500);
  if (!res)
    return;
  he_one_family(loop, res, "noaaaa.test");
  he_one_family(loop, res, "badaaaa.test");
  /* Cancel while both queries are outstanding (drop.test: never answered),
   * then free the resolver with nothing pending. */
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  p.host = "drop.test";
  p.service = "9300";
  p.socktype = SOCK_STREAM;
  p.resolver = res;
  r.start_ns = mono_ns();
  int rc = ioa_connect(loop, &p, &r.req);
  CHECK(rc == 0, "ioa_connect: %s", ioa_err_name(rc));
  if (rc == 0) {
    for (int i = 0; i < 3; i++)
      ioa_loop_run(loop, IOA_RUN_NOWAIT);
    ioa_connect_cancel(r.req);
    CHECK(r.completions == 1 && r.err == -ECANCELED, "cancel during resolution: %d, %s",
          r.completions, ioa_err_name(r.err));
  }
  ioa_resolver_free(res);
}

/* DNS misbehaviour through both backends: NXDOMAIN, SERVFAIL, dropped
 * queries.  Each ends with exactly one on_resolve_error carrying a resolver
 * code (or a timeout) and no attempt. */
static void dns_case(ioa_loop *loop, ioa_resolver *res, const char *host, int want) {
  fprintf(stderr, "%s via %s\n", host, res ? "c-ares" : "getaddrinfo");
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  p.host = host;
  p.service = "9100";
  p.socktype = SOCK_STREAM;
  p.resolver = res;
  p.timeout_ms = 3000;
  if (lab_run(loop, &p, &r) < 0)
    return;
  CHECK(r.connected_fd < 0 && r.nattempt == 0, "%s: unexpected attempt", host);
  int code = r.resolve_err ? r.resolve_err : r.err;
  CHECK(ioa_err_is_resolver(code) || code == -ETIMEDOUT, "%s: not a resolver error: %s", host,
        ioa_err_name(code));
  if (want)
    CHECK(code == want, "%s: got %s, want %s", host, ioa_err_name(code), ioa_err_name(want));
}

/* The overall deadline must hold while a pool thread is still stuck in
 * getaddrinfo (drop.test: glibc waits its 1 s resolv.conf timeout). */
static void dns_deadline(ioa_loop *loop) {
  fprintf(stderr, "drop.test via getaddrinfo with a 300 ms deadline\n");
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  p.host = "drop.test";
  p.service = "9100";
  p.socktype = SOCK_STREAM;
  p.timeout_ms = 300;
  if (lab_run(loop, &p, &r) < 0)
    return;
  uint64_t took = mono_ns() - r.start_ns;
  int code = r.resolve_err ? r.resolve_err : r.err;
  CHECK(code == -ETIMEDOUT, "got %s, want ETIMEDOUT", ioa_err_name(code));
  CHECK(took >= 300000000u, "deadline fired early");
  CHECK(took < 900000000u, "completion waited for getaddrinfo (%.0f ms)", (double)took / 1e6);
}

/* The loop (and with it the getaddrinfo pool) freed while a worker is still
 * inside getaddrinfo for drop.test: the worker must finish on its own later
 * without touching freed memory (ASan/TSan) and leave nothing behind. */
static void sc_dns_abandon(void) {
  int fd0 = ioa_test_fd_count();
  ioa_loop *loop;
  if (ioa_loop_new(NULL, &loop) < 0) {
    failures++;
    return;
  }
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  p.host = "drop.test";
  p.service = "9100";
  p.socktype = SOCK_STREAM;
  p.timeout_ms = 100;
  if (lab_run(loop, &p, &r) == 0)
    CHECK(r.resolve_err == -ETIMEDOUT || r.err == -ETIMEDOUT, "want ETIMEDOUT");
  uint64_t t = mono_ns();
  ioa_loop_free(loop);
  fprintf(stderr, "ioa_loop_free with a worker inside getaddrinfo took %.1f ms\n",
          (double)(mono_ns() - t) / 1e6);
  usleep(1500 * 1000); /* glibc's 1 s timeout runs out; the worker exits */
  CHECK(ioa_test_fd_count() == fd0, "fd count %d before, %d after", fd0, ioa_test_fd_count());
#if defined(__SANITIZE_ADDRESS__)
  CHECK(__lsan_do_recoverable_leak_check() == 0, "leak after the abandoned lookup finished");
#endif
}

static void sc_dns(ioa_loop *loop) {
  dns_deadline(loop);
  dns_case(loop, NULL, "nx.test", IOA_EAI_NONAME);
  dns_case(loop, NULL, "fail.test", IOA_EAI_AGAIN);
  dns_case(loop, NULL, "drop.test", 0);
}

/* The same through c-ares. */
static void sc_dns_cares(ioa_loop *loop) {
  need_cares();
  ioa_resolver *res = lab_cares(loop, "127.0.0.1:53", 1500);
  if (!res)
    return;
  dns_case(loop, res, "nx.test", IOA_EAI_NONAME);
  dns_case(loop, res, "fail.test", 0);
  dns_case(loop, res, "drop.test", 0);
  ioa_resolver_free(res);
}

/* ------------------------------------------------------------------ EMFILE */

/* In a child with RLIMIT_NOFILE just above what is open: every socket()
 * fails with EMFILE.  The connector must report each as on_fail("socket",
 * EMFILE), move on through the list, complete once with the socket error,
 * and not spin (the loop iteration count and CPU time stay small). */
static int emfile_child(int mode) {
  ioa_loop *loop;
  if (ioa_loop_new(NULL, &loop) < 0)
    return 3;
  int port = 0;
  int lfd = ioa_test_listen_tcp(AF_INET, 64, &port);
  if (lfd < 0)
    return 3;
  char text[64];
  snprintf(text, sizeof text, "127.0.0.1:%d", port);
  ioa_addr v[5];
  for (int i = 0; i < 5; i++)
    v[i] = mk(text);
  /* mode 0: sequential, mode 2: racing, mode 3: host+service.
   * mode 1: one socket may be created (the listener's accept queue keeps
   * the connection), so the first attempt connects. */
  int open_now = ioa_test_fd_count();
  struct rlimit rl = {.rlim_cur = (rlim_t)(open_now + 4), .rlim_max = (rlim_t)(open_now + 64)};
  /* Fill the table up to the limit so only the intended number remains. */
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    return 3;
  int fill[64], nfill = 0;
  while (nfill < 64) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      break;
    fill[nfill++] = fd;
  }
  if (mode == 1 && nfill > 0)
    close(fill[--nfill]); /* exactly one fd free */
  ioa_connect_params p;
  lab_req r;
  lab_params(&p, &r);
  p.on_sockopt = NULL; /* it would record fds */
  char portstr[16];
  snprintf(portstr, sizeof portstr, "%d", port);
  if (mode == 3) {
    /* Resolving mode: the lookup itself may fail for want of an fd (glibc
     * opens /etc/hosts); whichever way, one completion and no spin. */
    p.host = "localhost";
    p.service = portstr;
    p.socktype = SOCK_STREAM;
  } else {
    p.addrs = v;
    p.naddrs = 5;
  }
  p.mode = mode == 2 ? IOA_CONNECT_RACE : IOA_CONNECT_SEQUENTIAL;
  p.attempt_delay_ms = 10;
  r.start_ns = mono_ns();
  int rc = ioa_connect(loop, &p, &r.req);
  if (rc < 0) {
    fprintf(stderr, "ioa_connect: %s\n", ioa_err_name(rc));
    return 4;
  }
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  int iterations = 0;
  uint64_t end = mono_ns() + 5000000000u;
  while (!r.done && mono_ns() < end) {
    ioa_loop_run(loop, IOA_RUN_ONCE);
    iterations++;
  }
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6;
  fprintf(stderr, "mode %d: %d loop iterations, %.3f s CPU, %d on_fail, completions %d\n", mode,
          iterations, cpu, r.nfail, r.completions);
  CHECK(r.completions == 1, "completions %d", r.completions);
  CHECK(iterations < 200, "%d loop iterations: spinning", iterations);
  if (mode == 1) {
    CHECK(r.connected_fd >= 0, "the one possible socket did not connect");
  } else if (mode == 3) {
    CHECK(r.connected_fd < 0, "connected without a free fd");
  } else {
    CHECK(r.nfail == 5, "%d on_fail calls, want 5 (one per candidate)", r.nfail);
    for (int i = 0; i < r.nfail && i < MAX_EVENTS; i++)
      CHECK(r.fail_syscall[i] == IOA_SYSCALL_SOCKET && r.fail_err[i] == -EMFILE,
            "on_fail %d: %s %s", i, ioa_syscall_name(r.fail_syscall[i]),
            ioa_err_name(r.fail_err[i]));
    CHECK(r.err_syscall == IOA_SYSCALL_SOCKET && r.err == -EMFILE, "completion %s %s",
          ioa_syscall_name(r.err_syscall), ioa_err_name(r.err));
  }
  if (r.connected_fd >= 0)
    close(r.connected_fd);
  while (nfill > 0)
    close(fill[--nfill]);
  close(lfd);
  ioa_loop_free(loop);
  return failures ? 1 : 0;
}

static int sc_emfile(void) {
  for (int mode = 0; mode < 4; mode++) {
    pid_t pid = fork();
    if (pid < 0)
      return 1;
    if (pid == 0) {
      alarm(20); /* a spinning connector dies here and fails the test */
      _exit(emfile_child(mode));
    }
    int st;
    if (waitpid(pid, &st, 0) < 0)
      return 1;
    if (WIFSIGNALED(st)) {
      fprintf(stderr, "FAIL: EMFILE mode %d: child killed by signal %d%s\n", mode, WTERMSIG(st),
              WTERMSIG(st) == SIGALRM ? " (spinning or hung)" : "");
      failures++;
    } else if (WEXITSTATUS(st) != 0) {
      fprintf(stderr, "FAIL: EMFILE mode %d: exit %d\n", mode, WEXITSTATUS(st));
      failures++;
    }
  }
  return failures ? 1 : 0;
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr,
            "usage: %s errors|errors_v6|blackhole|he_gai|he_cares|he_partial|latency|dns|"
            "dns_cares|dns_abandon|emfile\n",
            argv[0]);
    return 2;
  }
  const char *sc = argv[1];
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(sc, "emfile") == 0)
    return sc_emfile();
  if (!lab_inside_namespace()) {
    fprintf(stderr, "SKIP: %s must run inside test/lab/netns-run (a private network namespace "
                    "with only lo); refusing to touch a real network\n", sc);
    return 77;
  }
  if (strcmp(sc, "dns_abandon") == 0) {
    sc_dns_abandon();
    fprintf(stderr, "%s: %s\n", sc, failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
  }
  int fd0 = ioa_test_fd_count();
  ioa_loop *loop;
  int rc = ioa_loop_new(NULL, &loop);
  if (rc < 0) {
    fprintf(stderr, "ioa_loop_new: %s\n", ioa_err_name(rc));
    return 1;
  }
  if (strcmp(sc, "errors") == 0)
    sc_errors(loop);
  else if (strcmp(sc, "errors_v6") == 0)
    sc_errors_v6(loop);
  else if (strcmp(sc, "blackhole") == 0)
    sc_blackhole(loop);
  else if (strcmp(sc, "he_gai") == 0)
    sc_he_gai(loop);
  else if (strcmp(sc, "he_cares") == 0)
    sc_he_cares(loop);
  else if (strcmp(sc, "dns") == 0)
    sc_dns(loop);
  else if (strcmp(sc, "dns_cares") == 0)
    sc_dns_cares(loop);
  else if (strcmp(sc, "he_partial") == 0)
    sc_he_partial(loop);
  else if (strcmp(sc, "latency") == 0)
    sc_latency(loop);
  else {
    fprintf(stderr, "unknown scenario %s\n", sc);
    return 2;
  }
  uint64_t t_free = mono_ns();
  ioa_loop_free(loop);
  fprintf(stderr, "ioa_loop_free took %.1f ms\n", (double)(mono_ns() - t_free) / 1e6);
  int fd1 = ioa_test_fd_count();
  CHECK(fd1 == fd0, "fd count %d before, %d after", fd0, fd1);
  fprintf(stderr, "%s: %s\n", sc, failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
