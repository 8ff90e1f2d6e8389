/* SPDX-License-Identifier: MIT */
/* ioa_connect on real loopback and unix sockets: IO::Async's behaviours,
 * deferred completion, local binds, timeouts against a simulated black hole,
 * cancellation from every callback.  Only 127.0.0.0/8, ::1 and unix paths. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <netdb.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* -------------------------------------------------------------- helpers */

/* A socket type ioa_addr accepts (0..15) but socket() refuses (EINVAL). */
#define BAD_SOCKTYPE 15

static ioa_addr inet4(const char *ip, int port, int socktype) {
  ioa_addr a;
  memset(&a, 0, sizeof a);
  struct sockaddr_in *s = (struct sockaddr_in *)&a.addr;
  s->sin_family = AF_INET;
  s->sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, ip, &s->sin_addr);
  a.family = AF_INET;
  a.socktype = socktype;
  a.addrlen = sizeof *s;
  return a;
}

static ioa_addr inet6(const char *ip, int port, int socktype) {
  ioa_addr a;
  memset(&a, 0, sizeof a);
  struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a.addr;
  s->sin6_family = AF_INET6;
  s->sin6_port = htons((uint16_t)port);
  inet_pton(AF_INET6, ip, &s->sin6_addr);
  a.family = AF_INET6;
  a.socktype = socktype;
  a.addrlen = sizeof *s;
  return a;
}

static ioa_addr unix_addr(const char *path, int socktype) {
  ioa_addr a;
  memset(&a, 0, sizeof a);
  struct sockaddr_un *s = (struct sockaddr_un *)&a.addr;
  s->sun_family = AF_UNIX;
  size_t len = strlen(path);
  assert_true(len < sizeof s->sun_path);
  memcpy(s->sun_path, path, len + 1);
  a.family = AF_UNIX;
  a.socktype = socktype;
  a.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  return a;
}

static int addr_port(const ioa_addr *a) {
  if (a->family == AF_INET)
    return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
  if (a->family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&a->addr)->sin6_port);
  return -1;
}

/* A listener whose accept queue is full and never drained: SYNs to it are
 * dropped, so connects hang in SYN_SENT (the loopback black hole). */
typedef struct blackhole {
  int lfd, filler, port;
} blackhole;

static int blackhole_open(blackhole *b) {
  b->lfd = ioa_test_listen_tcp(AF_INET, 0, &b->port);
  if (b->lfd < 0)
    return -1;
  b->filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ioa_addr a = inet4("127.0.0.1", b->port, SOCK_STREAM);
  (void)connect(b->filler, (struct sockaddr *)&a.addr, a.addrlen);
  struct pollfd pfd = {.fd = b->filler, .events = POLLOUT};
  if (poll(&pfd, 1, 2000) != 1) /* the one queued connection is established */
    return -1;
  return 0;
}

static void blackhole_close(blackhole *b) {
  close(b->filler);
  close(b->lfd);
}

typedef struct ctx {
  ioa_loop *loop;
  ioa_connect_req *req;
  int done; /* completions */
  int connected_fd;
  ioa_addr peer;
  ioa_syscall err_syscall;
  int err;
  int nfail;
  ioa_attempt_failure fails[16];
  ioa_addr fail_peers[16];
  int nattempt;
  int attempt_ports[16];
  int nwarn;
  char warn[512];
  int nresolved;
  /* cancel triggers */
  int cancel_in_fail, cancel_in_attempt, cancel_in_resolved, cancel_in_done;
  int cancel_at_attempt; /* cancel when this many attempts have started */
  int sockopt_veto;
  int nsockopt;
  size_t nfailures_at_end;
  ioa_syscall first_failure_syscall;
  int in_connect; /* set while ioa_connect() runs: no callback may see it */
  int called_inside;
} ctx;

static void on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  ctx *c = data;
  c->called_inside |= c->in_connect;
  c->done++;
  c->connected_fd = fd;
  c->peer = *peer;
  if (c->cancel_in_done)
    ioa_connect_cancel(req); /* a no-op once completing */
}

static void on_error(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  ctx *c = data;
  c->called_inside |= c->in_connect;
  c->done++;
  c->err_syscall = s;
  c->err = err;
  const ioa_attempt_failure *f;
  c->nfailures_at_end = ioa_connect_failures(req, &f);
  if (c->nfailures_at_end)
    c->first_failure_syscall = f[0].syscall;
  if (c->cancel_in_done)
    ioa_connect_cancel(req);
}

static void on_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  ctx *c = data;
  c->called_inside |= c->in_connect;
  if (c->nfail < 16) {
    c->fails[c->nfail] = *f;
    c->fail_peers[c->nfail] = *f->peer;
    c->fails[c->nfail].peer = &c->fail_peers[c->nfail];
    c->fails[c->nfail].local = NULL;
  }
  if (f->fd >= 0) /* open during on_fail */
    assert_int_not_equal(fcntl(f->fd, F_GETFD), -1);
  c->nfail++;
  if (c->cancel_in_fail)
    ioa_connect_cancel(req);
}

static void on_attempt(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                       void *data) {
  ctx *c = data;
  (void)local;
  c->called_inside |= c->in_connect;
  if (c->nattempt < 16)
    c->attempt_ports[c->nattempt] = addr_port(peer);
  c->nattempt++;
  if (c->cancel_in_attempt || (c->cancel_at_attempt && c->nattempt == c->cancel_at_attempt))
    ioa_connect_cancel(req);
}

static void on_resolved(ioa_connect_req *req, const ioa_addr *addrs, size_t n, int is_local,
                        void *data) {
  ctx *c = data;
  (void)addrs, (void)n, (void)is_local;
  c->nresolved++;
  if (c->cancel_in_resolved)
    ioa_connect_cancel(req);
}

static void on_warning(const char *msg, void *data) {
  ctx *c = data;
  c->nwarn++;
  snprintf(c->warn, sizeof c->warn, "%s", msg);
}

static int on_sockopt(ioa_connect_req *req, int fd, const ioa_addr *peer, const ioa_addr *local,
                      void *data) {
  ctx *c = data;
  (void)req, (void)peer, (void)local;
  c->nsockopt++;
  if (c->sockopt_veto)
    return -EACCES;
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ? -errno : 0;
}

static void params_for(ioa_connect_params *p, ctx *c) {
  ioa_connect_params_init(p);
  p->on_connected = on_connected;
  p->on_connect_error = on_error;
  p->on_fail = on_fail;
  p->on_warning = on_warning;
  p->data = c;
}

static ioa_loop *new_loop(ctx *c) {
  memset(c, 0, sizeof *c);
  c->connected_fd = -1;
  assert_int_equal(ioa_loop_new(NULL, &c->loop), 0);
  return c->loop;
}

static int start(ctx *c, const ioa_connect_params *p) {
  c->in_connect = 1;
  int r = ioa_connect(c->loop, p, &c->req);
  c->in_connect = 0;
  return r;
}

static void run(ctx *c) {
  assert_int_equal(ioa_test_run_until(c->loop, &c->done, 5000), 0);
  /* a few more turns: a second completion would show up here */
  for (int i = 0; i < 3; i++)
    ioa_loop_run(c->loop, IOA_RUN_NOWAIT);
  assert_int_equal(c->done, 1);
  assert_false(c->called_inside);
}

static void finish(ctx *c) {
  if (c->connected_fd >= 0)
    close(c->connected_fd);
  assert_int_equal(ioa_loop_active(c->loop), 0);
  ioa_loop_free(c->loop);
}

/* ---------------------------------------------------------------- tests */

static void refused_v6_then_listening_v4(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  assert_true(lfd >= 0);
  ioa_addr addrs[2];
  int v6 = ioa_test_have_ipv6();
  addrs[0] = v6 ? inet6("::1", ioa_test_closed_port(AF_INET6), SOCK_STREAM)
                : inet4("127.0.0.1", ioa_test_closed_port(AF_INET), SOCK_STREAM);
  addrs[1] = inet4("127.0.0.1", port, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addrs = addrs;
  p.naddrs = 2;
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.done, 0);
  run(&c);
  assert_true(c.connected_fd >= 0);
  assert_int_equal(c.nfail, 1);
  assert_int_equal(c.fails[0].syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(c.fails[0].err, -ECONNREFUSED);
  assert_true(c.fails[0].fd >= 0);
  assert_int_equal(c.fails[0].family, v6 ? AF_INET6 : AF_INET);
  assert_int_equal(c.fails[0].socktype, SOCK_STREAM);
  assert_int_equal(addr_port(c.fails[0].peer), addr_port(&addrs[0]));
  assert_int_equal(addr_port(&c.peer), port);
  /* really connected, non-blocking and close-on-exec */
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  assert_int_equal(getpeername(c.connected_fd, (struct sockaddr *)&sin, &len), 0);
  assert_int_equal(ntohs(sin.sin_port), port);
  assert_true(fcntl(c.connected_fd, F_GETFL) & O_NONBLOCK);
  assert_true(fcntl(c.connected_fd, F_GETFD) & FD_CLOEXEC);
  assert_int_equal(c.nwarn, 0);
  finish(&c);
  close(lfd);
}

static void address_list_in_turn(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  ioa_addr addrs[4];
  for (int i = 0; i < 3; i++)
    addrs[i] = inet4("127.0.0.1", ioa_test_closed_port(AF_INET), SOCK_STREAM);
  addrs[3] = inet4("127.0.0.1", port, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addrs = addrs;
  p.naddrs = 4;
  p.on_attempt = on_attempt;
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.nattempt, 0); /* on_attempt is a callback too: not inside */
  run(&c);
  assert_int_equal(c.nattempt, 4);
  for (int i = 0; i < 4; i++)
    assert_int_equal(c.attempt_ports[i], addr_port(&addrs[i]));
  assert_int_equal(c.nfail, 3);
  assert_true(c.connected_fd >= 0);
  finish(&c);
  close(lfd);
}

static void all_fail_reports_most_significant_later(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr addrs[3];
  addrs[0] = inet4("127.0.0.1", ioa_test_closed_port(AF_INET), SOCK_STREAM);
  addrs[1] = inet4("127.0.0.1", 9, BAD_SOCKTYPE); /* socket() refuses it */
  addrs[2] = unix_addr("/nonexistent-ioa-test/sock", SOCK_STREAM); /* ENOENT at once */
  ioa_connect_params p;
  params_for(&p, &c);
  p.addrs = addrs;
  p.naddrs = 3;
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.done, 0);
  assert_int_equal(c.nfail, 0);
  run(&c);
  assert_int_equal(c.nfail, 3);
  assert_int_equal(c.fails[1].syscall, IOA_SYSCALL_SOCKET);
  assert_int_equal(c.fails[1].fd, -1);
  assert_int_equal(c.fails[1].socktype, BAD_SOCKTYPE);
  assert_int_equal(c.fails[2].syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(c.fails[2].err, -ENOENT);
  /* connect beats socket; the last connect error is the one reported */
  assert_int_equal(c.err_syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(c.err, -ENOENT);
  assert_int_equal(c.nfailures_at_end, 3);
  assert_int_equal(c.first_failure_syscall, IOA_SYSCALL_CONNECT);
  finish(&c);
}

static void immediate_socket_failure_is_deferred(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr a = inet4("127.0.0.1", 9, BAD_SOCKTYPE);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &a;
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.done, 0);
  run(&c);
  assert_int_equal(c.err_syscall, IOA_SYSCALL_SOCKET);
  assert_true(c.err < 0);
  finish(&c);
}

static void no_candidates_is_an_error(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr peer = inet4("127.0.0.1", 9, SOCK_STREAM);
  ioa_addr local = inet6("::1", 0, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &peer;
  p.local_addr = &local;
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.done, 0);
  run(&c);
  assert_int_equal(c.err_syscall, IOA_SYSCALL_NONE);
  assert_int_equal(c.err, IOA_ENOCANDIDATES);
  assert_int_equal(c.nfail, 0);
  finish(&c);
}

static void unix_stream_and_dgram(void **state) {
  (void)state;
  char dir[] = "/tmp/ioa-connect-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char spath[128], dpath[128];
  snprintf(spath, sizeof spath, "%s/stream", dir);
  snprintf(dpath, sizeof dpath, "%s/dgram", dir);
  ioa_addr sa = unix_addr(spath, SOCK_STREAM), da = unix_addr(dpath, SOCK_DGRAM);
  int sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(sfd, (struct sockaddr *)&sa.addr, sa.addrlen), 0);
  assert_int_equal(listen(sfd, 8), 0);
  int dfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(dfd, (struct sockaddr *)&da.addr, da.addrlen), 0);

  for (int i = 0; i < 2; i++) {
    ctx c;
    new_loop(&c);
    ioa_connect_params p;
    params_for(&p, &c);
    p.addr = i == 0 ? &sa : &da;
    assert_int_equal(start(&c, &p), 0);
    assert_int_equal(c.done, 0); /* even a connect that succeeded at once */
    run(&c);
    assert_true(c.connected_fd >= 0);
    assert_int_equal(c.peer.family, AF_UNIX);
    assert_string_equal(((struct sockaddr_un *)&c.peer.addr)->sun_path, i == 0 ? spath : dpath);
    if (i == 1) {
      assert_int_equal(send(c.connected_fd, "x", 1, 0), 1);
      char b;
      assert_int_equal(recv(dfd, &b, 1, 0), 1);
    }
    finish(&c);
  }
  close(sfd);
  close(dfd);
  unlink(spath);
  unlink(dpath);
  rmdir(dir);
}

/* A UDP socket bound to 127.0.0.1:0 for a connect to aim at; *a gets its
 * address. */
static int udp_peer(ioa_addr *a) {
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ioa_addr any = inet4("127.0.0.1", 0, SOCK_DGRAM);
  assert_int_equal(bind(u, (struct sockaddr *)&any.addr, any.addrlen), 0);
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  getsockname(u, (struct sockaddr *)&sin, &len);
  *a = inet4("127.0.0.1", ntohs(sin.sin_port), SOCK_DGRAM);
  return u;
}

static void connected_udp(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr a;
  int u = udp_peer(&a);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &a;
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.done, 0);
  run(&c);
  assert_true(c.connected_fd >= 0);
  int type;
  socklen_t len = sizeof type;
  getsockopt(c.connected_fd, SOL_SOCKET, SO_TYPE, &type, &len);
  assert_int_equal(type, SOCK_DGRAM);
  assert_int_equal(send(c.connected_fd, "y", 1, 0), 1);
  char b;
  assert_int_equal(recv(u, &b, 1, 0), 1);
  finish(&c);
  close(u);
}

/* Raw sockets: EPERM unless privileged, reported as a socket failure.
 * (A raw connect only sets the default destination: nothing is sent.) */
static void raw_socket(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr a = inet4("127.0.0.1", 0, SOCK_RAW);
  a.protocol = IPPROTO_ICMP;
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &a;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  if (c.connected_fd < 0) {
    assert_int_equal(c.err_syscall, IOA_SYSCALL_SOCKET);
    assert_true(c.err == -EPERM || c.err == -EACCES);
    assert_int_equal(c.fails[0].protocol, IPPROTO_ICMP);
  }
  finish(&c);
}

static void local_bind(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  ioa_addr peer = inet4("127.0.0.1", port, SOCK_STREAM);
  ioa_addr local = inet4("127.0.0.2", 0, 0); /* port 0, specific address: NO_PORT path */
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &peer;
  p.local_addr = &local;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_true(c.connected_fd >= 0);
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  getsockname(c.connected_fd, (struct sockaddr *)&sin, &len);
  char ip[32];
  inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof ip);
  assert_string_equal(ip, "127.0.0.2");
  assert_int_not_equal(ntohs(sin.sin_port), 0);
  finish(&c);
  close(lfd);
}

static void local_bind_failure_ranks_bind(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  ioa_addr peer = inet4("127.0.0.1", port, SOCK_STREAM);
  ioa_addr locals[2] = {inet4("127.0.0.1", port, SOCK_STREAM), /* in use: EADDRINUSE */
                        inet4("127.0.0.1", 9, SOCK_DGRAM)};    /* never paired: socktype */
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &peer;
  p.local_addrs = locals;
  p.nlocal = 2;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.nfail, 1);
  assert_int_equal(c.fails[0].syscall, IOA_SYSCALL_BIND);
  assert_int_equal(c.err_syscall, IOA_SYSCALL_BIND);
  assert_int_equal(c.err, -EADDRINUSE);
  finish(&c);
  close(lfd);
}

static void sockopt_hook_and_veto(void **state) {
  (void)state;
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  for (int veto = 0; veto < 2; veto++) {
    ctx c;
    new_loop(&c);
    c.sockopt_veto = veto;
    ioa_addr peer = inet4("127.0.0.1", port, SOCK_STREAM);
    ioa_connect_params p;
    params_for(&p, &c);
    p.addr = &peer;
    p.on_sockopt = on_sockopt;
    assert_int_equal(start(&c, &p), 0);
    assert_int_equal(c.nsockopt, 0); /* hooks run later, not in ioa_connect */
    run(&c);
    assert_int_equal(c.nsockopt, 1);
    if (!veto) {
      int v = 0;
      socklen_t len = sizeof v;
      getsockopt(c.connected_fd, IPPROTO_TCP, TCP_NODELAY, &v, &len);
      assert_int_not_equal(v, 0);
    } else {
      assert_int_equal(c.fails[0].syscall, IOA_SYSCALL_SOCKOPT);
      assert_int_equal(c.err_syscall, IOA_SYSCALL_SOCKOPT);
      assert_int_equal(c.err, -EACCES);
    }
    finish(&c);
  }
  close(lfd);
}

/* ------------------------------------------------------ black hole, time */

/* A listener on 127.0.0.1 (its fd returned, its port in *port) and the
 * list {127.0.0.1:dead_port, the listener}: the first attempt fails, the
 * second connects.  dead_port 0 takes a closed port, picked while the
 * listener holds its own so the two cannot be the same. */
static int dead_then_live(int dead_port, ioa_addr addrs[2], int *port) {
  int lfd = ioa_test_listen_tcp(AF_INET, 8, port);
  if (dead_port == 0)
    dead_port = ioa_test_closed_port(AF_INET);
  addrs[0] = inet4("127.0.0.1", dead_port, SOCK_STREAM);
  addrs[1] = inet4("127.0.0.1", *port, SOCK_STREAM);
  return lfd;
}

static void attempt_timeout_on_black_hole(void **state) {
  (void)state;
  blackhole b;
  if (blackhole_open(&b) < 0)
    skip();
  ctx c;
  new_loop(&c);
  int port;
  ioa_addr addrs[2];
  int lfd = dead_then_live(b.port, addrs, &port);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addrs = addrs;
  p.naddrs = 2;
  p.attempt_timeout_ms = 100;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.nfail, 1);
  assert_int_equal(c.fails[0].syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(c.fails[0].err, -ETIMEDOUT);
  assert_true(c.fails[0].end_ns - c.fails[0].start_ns >= 100000000u);
  assert_true(c.connected_fd >= 0);
  finish(&c);
  close(lfd);
  blackhole_close(&b);
}

static void overall_timeout(void **state) {
  (void)state;
  blackhole b;
  if (blackhole_open(&b) < 0)
    skip();
  ctx c;
  new_loop(&c);
  ioa_addr a = inet4("127.0.0.1", b.port, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &a;
  p.timeout_ms = 80;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.err_syscall, IOA_SYSCALL_NONE);
  assert_int_equal(c.err, -ETIMEDOUT);
  assert_int_equal(c.nfail, 1);
  assert_int_equal(c.fails[0].err, -ETIMEDOUT);
  finish(&c);
  blackhole_close(&b);
}

/* Racing an address list: the black hole first, the live one wins after the
 * attempt delay and the loser is closed (fd count checks it). */
static void race_black_hole_then_live(void **state) {
  (void)state;
  blackhole b;
  if (blackhole_open(&b) < 0)
    skip();
  ctx c;
  new_loop(&c);
  int port;
  ioa_addr addrs[2];
  int lfd = dead_then_live(b.port, addrs, &port);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addrs = addrs;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 20;
  p.on_attempt = on_attempt;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.nattempt, 2);
  assert_int_equal(c.nfail, 0); /* the loser is not a failure */
  assert_int_equal(addr_port(&c.peer), port);
  finish(&c);
  close(lfd);
  blackhole_close(&b);
}

/* --------------------------------------------------------- cancellation */

static void cancel_from_on_fail(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  int port;
  ioa_addr addrs[2];
  int lfd = dead_then_live(0, addrs, &port);
  c.cancel_in_fail = 1;
  ioa_connect_params p;
  params_for(&p, &c);
  p.addrs = addrs;
  p.naddrs = 2;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.nfail, 1);
  assert_int_equal(c.connected_fd, -1);
  assert_int_equal(c.err, -ECANCELED);
  finish(&c);
  close(lfd);
}

static void cancel_from_on_attempt(void **state) {
  (void)state;
  for (int at = 1; at <= 2; at++) {
    ctx c;
    new_loop(&c);
    int port;
    ioa_addr addrs[2];
    int lfd = dead_then_live(0, addrs, &port);
    c.cancel_at_attempt = at;
    ioa_connect_params p;
    params_for(&p, &c);
    p.addrs = addrs;
    p.naddrs = 2;
    p.on_attempt = on_attempt;
    assert_int_equal(start(&c, &p), 0);
    run(&c);
    assert_int_equal(c.nattempt, at);
    assert_int_equal(c.err, -ECANCELED);
    assert_int_equal(c.connected_fd, -1);
    finish(&c);
    close(lfd);
  }
}

static void cancel_from_completion_is_harmless(void **state) {
  (void)state;
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  for (int ok = 0; ok < 2; ok++) {
    ctx c;
    new_loop(&c);
    c.cancel_in_done = 1;
    ioa_addr a = inet4("127.0.0.1", ok ? port : ioa_test_closed_port(AF_INET), SOCK_STREAM);
    ioa_connect_params p;
    params_for(&p, &c);
    p.addr = &a;
    assert_int_equal(start(&c, &p), 0);
    run(&c);
    if (ok)
      assert_true(c.connected_fd >= 0);
    else
      assert_int_equal(c.err, -ECONNREFUSED);
    finish(&c);
  }
  close(lfd);
}

static void cancel_right_after_start(void **state) {
  (void)state;
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  for (int kind = 0; kind < 3; kind++) {
    ctx c;
    new_loop(&c);
    ioa_addr a = kind == 0   ? inet4("127.0.0.1", port, SOCK_STREAM)     /* in progress */
                 : kind == 1 ? inet4("127.0.0.1", 9, BAD_SOCKTYPE)        /* failure pending */
                             : unix_addr("/nonexistent-ioa/x", SOCK_DGRAM); /* failed at once */
    ioa_connect_params p;
    params_for(&p, &c);
    p.addr = &a;
    assert_int_equal(start(&c, &p), 0);
    ioa_connect_cancel(c.req); /* completes before returning */
    assert_int_equal(c.done, 1);
    assert_int_equal(c.err, -ECANCELED);
    assert_int_equal(c.nfail, 0);
    run(&c);
    finish(&c);
  }
  close(lfd);
}

static void cancel_with_several_attempts_in_flight(void **state) {
  (void)state;
  blackhole b;
  if (blackhole_open(&b) < 0)
    skip();
  ctx c;
  new_loop(&c);
  ioa_addr addrs[4];
  for (int i = 0; i < 4; i++)
    addrs[i] = inet4("127.0.0.1", b.port, SOCK_STREAM);
  c.cancel_at_attempt = 0;
  ioa_connect_params p;
  params_for(&p, &c);
  p.addrs = addrs;
  p.naddrs = 4;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 10;
  p.on_attempt = on_attempt;
  assert_int_equal(start(&c, &p), 0);
  int base = ioa_test_fd_count();
  /* let three attempts start, then cancel with them all in flight */
  for (int i = 0; i < 200 && c.nattempt < 3; i++)
    ioa_loop_run(c.loop, IOA_RUN_ONCE);
  assert_int_equal(c.nattempt >= 3, 1);
  assert_true(ioa_test_fd_count() >= base + 2);
  ioa_connect_cancel(c.req);
  assert_int_equal(c.done, 1);
  assert_int_equal(c.err, -ECANCELED);
  run(&c);
  finish(&c);
  blackhole_close(&b);
}

/* ------------------------------------------------------------ warnings */

static void warning_rule(void **state) {
  (void)state;
  /* IO::Async: a lookup without socktype and protocol hints warns; an explicit
   * socktype 0, a socktype word or a protocol silences it.  Cancelled before
   * anything is looked up or sent. */
  for (int k = 0; k < 5; k++) {
    ctx c;
    new_loop(&c);
    ioa_connect_params p;
    params_for(&p, &c);
    p.host = "localhost";
    p.service = "9";
    if (k == 1)
      p.socktype = 0;
    if (k == 2)
      p.socktype_name = "stream";
    if (k == 3)
      p.protocol = IPPROTO_TCP;
    if (k == 4)
      p.socktype_name = "0";
    int r = start(&c, &p);
    assert_int_equal(r, 0);
    assert_int_equal(c.nwarn, k == 0 ? 1 : 0);
    if (k == 0)
      assert_non_null(strstr(c.warn, "socktype"));
    ioa_connect_cancel(c.req);
    run(&c);
    finish(&c);
  }
}

static void warning_unspecified_address(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr a = inet4("0.0.0.0", 9, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &a;
  p.on_attempt = on_attempt; /* no syscall before the first callback */
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.nwarn, 1);
  assert_non_null(strstr(c.warn, "non-portable"));
  ioa_connect_cancel(c.req);
  assert_int_equal(c.nattempt, 0);
  run(&c);
  finish(&c);
}

/* ioa_connect() refuses p; nothing was started and no callback runs. */
static void refused(ctx *c, const ioa_connect_params *p, int code) {
  c->req = (ioa_connect_req *)c; /* must be reset to NULL */
  int r = ioa_connect(c->loop, p, &c->req);
  assert_int_equal(r, code);
  assert_true(ioa_err_is_input(r) || r == -E2BIG);
  assert_null(c->req);
}

static void bad_params(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr a = inet4("127.0.0.1", 9, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  refused(&c, &p, IOA_EBADPARAM); /* no address */
  p.addr = &a;
  p.on_connect_error = NULL;
  refused(&c, &p, IOA_EBADPARAM);
  p.on_connect_error = on_error;
  p.on_socket = (ioa_connect_socket_cb)(void (*)(void))on_connected; /* two success callbacks */
  refused(&c, &p, IOA_EBADPARAM);
  p.on_socket = NULL;
  p.attempt_delay_ms = 5;
  refused(&c, &p, IOA_EBADPARAM);
  p.attempt_delay_ms = 2001;
  refused(&c, &p, IOA_EBADPARAM);
  p.attempt_delay_ms = 0;
  p.resolution_delay_ms = 2001;
  refused(&c, &p, IOA_EBADPARAM);
  p.resolution_delay_ms = 0;
  p.mode = (ioa_connect_mode)7;
  refused(&c, &p, IOA_EBADPARAM);
  p.mode = IOA_CONNECT_AUTO;
  p.naddrs = 40000; /* the count is refused before the array is read */
  p.addrs = &a;
  refused(&c, &p, -E2BIG);
  p.addrs = NULL;
  p.naddrs = 0;
  ioa_connect_params unset;
  memset(&unset, 0, sizeof unset); /* not filled by ioa_connect_params_init */
  refused(&c, &unset, IOA_EBADPARAM);
  assert_int_equal(c.done, 0);
  finish(&c);
}

/* What the address module says of an address with these fields
 * (ioa_addr_from_sockaddr checks socktype, protocol and family as every
 * builder does). */
static int addr_module_code(const ioa_addr *a) {
  ioa_addr tmp;
  return ioa_addr_from_sockaddr((const struct sockaddr *)&a->addr, a->addrlen, a->socktype,
                                a->protocol, &tmp);
}

/* Every address (peer and local) and every hint is checked at the start with
 * the address module's own codes, never found out later by a syscall. */
static void malformed_addresses_refused_at_start(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr good = inet4("127.0.0.1", 9, SOCK_STREAM);
  ioa_addr bad[8];
  int codes[8];
  int n = 0;
  bad[n] = inet4("127.0.0.1", 9, 77), codes[n++] = IOA_EADDRSOCKTYPE;
  bad[n] = inet4("127.0.0.1", 9, -1), codes[n++] = IOA_EADDRSOCKTYPE;
  bad[n] = inet4("127.0.0.1", 9, SOCK_STREAM), bad[n].protocol = 256,
  codes[n++] = IOA_EADDRPROTOCOL;
  bad[n] = inet4("127.0.0.1", 9, SOCK_STREAM), bad[n].family = 999,
  bad[n].addr.ss_family = 999, codes[n++] = IOA_EADDRFAMILY;
  bad[n] = inet4("127.0.0.1", 9, SOCK_STREAM), bad[n].addrlen = 0,
  codes[n++] = IOA_EADDRSYNTAX;
  bad[n] = inet4("127.0.0.1", 9, SOCK_STREAM), bad[n].addrlen = 17,
  codes[n++] = IOA_EADDRSYNTAX; /* not the length ioa_addr gives an inet address */
  bad[n] = inet6("::1", 9, SOCK_STREAM), bad[n].family = AF_INET,
  codes[n++] = IOA_EADDRSYNTAX; /* family field and sockaddr disagree */
  bad[n] = unix_addr("/x", SOCK_STREAM), bad[n].addrlen = sizeof(struct sockaddr_un) + 1,
  codes[n++] = IOA_EADDRSYNTAX;
  for (int i = 0; i < 4; i++) /* socktype, protocol, family: the address module's codes */
    assert_int_equal(addr_module_code(&bad[i]), codes[i]);
  for (int i = 0; i < n; i++) {
    ioa_connect_params p;
    params_for(&p, &c);
    p.addr = &bad[i]; /* alone (the fast path) */
    refused(&c, &p, codes[i]);
    ioa_addr list[2] = {good, bad[i]}; /* later in a list */
    p.addr = NULL;
    p.addrs = list;
    p.naddrs = 2;
    refused(&c, &p, codes[i]);
    p.addrs = NULL;
    p.addr = &good;
    p.local_addr = &bad[i]; /* as a local address */
    refused(&c, &p, codes[i]);
  }
  /* The hints, in the same ranges. */
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &good;
  p.socktype = 16;
  refused(&c, &p, IOA_EADDRSOCKTYPE);
  p.socktype = IOA_HINT_UNSET;
  p.socktype_name = "bogus";
  refused(&c, &p, IOA_EADDRSOCKTYPE);
  p.socktype_name = NULL;
  p.protocol = 256;
  refused(&c, &p, IOA_EADDRPROTOCOL);
  p.protocol = -5;
  refused(&c, &p, IOA_EADDRPROTOCOL);
  p.protocol = IOA_HINT_UNSET;
  p.family = 999;
  refused(&c, &p, IOA_EADDRFAMILY);
  p.family = AF_UNSPEC;
  p.host = "localhost"; /* resolving mode: the ignored addresses are not looked at */
  p.service = "9";
  p.socktype = SOCK_STREAM;
  p.addr = &bad[0];
  assert_int_equal(start(&c, &p), 0);
  ioa_connect_cancel(c.req);
  run(&c);
  finish(&c);
}

/* ----------------------------------------- modules merged in from others */

static void on_stream_cb(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer, void *data) {
  ctx *c = data;
  (void)req, (void)peer;
  c->called_inside |= c->in_connect;
  c->done++;
  c->connected_fd = -2;
  ioa_stream_free(s);
}

static void on_stream_hands_a_stream(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  ioa_addr a = inet4("127.0.0.1", port, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.on_connected = NULL;
  p.on_stream = on_stream_cb;
  p.addr = &a;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.connected_fd, -2);
  c.connected_fd = -1;
  finish(&c);
  close(lfd);
}

static void on_socket_cb(ioa_connect_req *req, ioa_socket *s, const ioa_addr *peer, void *data) {
  ctx *c = data;
  (void)req, (void)peer;
  c->called_inside |= c->in_connect;
  c->done++;
  c->connected_fd = -2;
  /* the socket's fd is the connected one (ioa_socket_send would queue, and
   * the free right after would drop the queue) */
  assert_int_equal(send(ioa_socket_fd(s), "z", 1, 0), 1);
  ioa_socket_free(s);
}

/* Connected UDP handed over as an ioa_socket; its first datagram arrives. */
static void on_socket_hands_a_socket(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr a;
  int u = udp_peer(&a);
  ioa_connect_params p;
  params_for(&p, &c);
  p.on_connected = NULL;
  p.on_socket = on_socket_cb;
  p.addr = &a;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.connected_fd, -2);
  c.connected_fd = -1;
  struct pollfd pfd = {.fd = u, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, 2000), 1);
  char b;
  assert_int_equal(recv(u, &b, 1, 0), 1);
  assert_int_equal(b, 'z');
  finish(&c);
  close(u);
}

/* IO::Async makes a socktype-0 address a stream socket. */
static void socktype_zero_is_stream(void **state) {
  (void)state;
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  for (int k = 0; k < 3; k++) {
    ctx c;
    new_loop(&c);
    ioa_addr a = inet4("127.0.0.1", port, 0);
    ioa_addr list[2] = {inet4("127.0.0.1", ioa_test_closed_port(AF_INET), 0), a};
    ioa_connect_params p;
    params_for(&p, &c);
    if (k == 0) {
      p.addr = &a; /* the fast path */
    } else {
      p.addrs = list; /* through the core */
      p.naddrs = 2;
    }
    if (k == 2)
      p.socktype = 0; /* "no particular socktype" */
    assert_int_equal(start(&c, &p), 0);
    run(&c);
    assert_true(c.connected_fd >= 0);
    int type = 0;
    socklen_t len = sizeof type;
    assert_int_equal(getsockopt(c.connected_fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
    assert_int_equal(type, SOCK_STREAM);
    assert_int_equal(c.peer.socktype, SOCK_STREAM);
    assert_int_equal(c.nfail, k == 0 ? 0 : 1);
    if (k > 0)
      assert_int_equal(c.fails[0].socktype, SOCK_STREAM);
    finish(&c);
  }
  for (int fd; (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;)
    close(fd);
  close(lfd);
}

/* on_stream means SOCK_STREAM: a refused TCP attempt must not fall through
 * to a UDP candidate (which "connects" at once) and hand that over as a
 * stream, by name or by address list; and no missing-hint warning. */
static void on_stream_never_takes_udp(void **state) {
  (void)state;
  ioa_addr udp, tcp;
  int u = -1, t = -1, port = 0;
  /* A UDP peer (a UDP candidate would connect to it at once) whose port is
   * closed for TCP: a TCP socket bound there without listen() makes sure.
   * Another program may hold that TCP port: take another pair then. */
  for (int tries = 0; tries < 50 && t < 0; tries++) {
    u = udp_peer(&udp);
    port = addr_port(&udp);
    tcp = inet4("127.0.0.1", port, SOCK_STREAM);
    t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(t, (struct sockaddr *)&tcp.addr, tcp.addrlen) < 0) {
      close(t);
      close(u);
      t = -1;
    }
  }
  assert_true(t >= 0);
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  for (int k = 0; k < 3; k++) {
    ctx c;
    new_loop(&c);
    ioa_connect_params p;
    params_for(&p, &c);
    p.on_connected = NULL;
    p.on_stream = on_stream_cb;
    p.on_attempt = on_attempt;
    ioa_addr list[3] = {inet4("127.0.0.1", port, 0), udp, inet4("127.0.0.1", port, SOCK_RAW)};
    if (k == 0) { /* by name, every hint unset */
      p.host = "127.0.0.1";
      p.service = service;
      p.mode = IOA_CONNECT_SEQUENTIAL;
    } else { /* by address list: the datagram and raw entries are skipped */
      p.addrs = list;
      p.naddrs = 3;
      if (k == 2)
        p.mode = IOA_CONNECT_RACE;
    }
    assert_int_equal(start(&c, &p), 0);
    run(&c);
    assert_int_equal(c.nwarn, 0);
    assert_int_equal(c.connected_fd, -1); /* no stream handed over */
    assert_int_equal(c.err_syscall, IOA_SYSCALL_CONNECT);
    assert_int_equal(c.err, -ECONNREFUSED);
    assert_int_equal(c.nattempt, 1);
    assert_int_equal(c.nfail, 1);
    assert_int_equal(c.fails[0].socktype, SOCK_STREAM);
    finish(&c);
  }
  /* Contradictions are refused at the start. */
  ctx c;
  new_loop(&c);
  ioa_connect_params p;
  params_for(&p, &c);
  p.on_connected = NULL;
  p.on_stream = on_stream_cb;
  p.addr = &udp; /* only a datagram address */
  refused(&c, &p, IOA_EBADPARAM);
  p.addr = &tcp;
  p.socktype = SOCK_DGRAM; /* an explicit socktype other than stream */
  refused(&c, &p, IOA_EBADPARAM);
  p.socktype = IOA_HINT_UNSET;
  p.socktype_name = "dgram";
  refused(&c, &p, IOA_EBADPARAM);
  p.socktype_name = NULL;
  p.on_stream = NULL;
  p.on_socket = on_socket_cb;
  p.addr = &tcp; /* ioa_socket cannot take a stream socket */
  refused(&c, &p, IOA_EBADPARAM);
  ioa_addr zero = inet4("127.0.0.1", port, 0); /* socktype 0 is a stream socket */
  p.addr = &zero;
  refused(&c, &p, IOA_EBADPARAM);
  p.addr = &udp;
  p.socktype = SOCK_STREAM;
  refused(&c, &p, IOA_EBADPARAM);
  finish(&c);
  close(t);
  close(u);
}

/* on_socket by name with no socktype hint: the stream answers are skipped,
 * the datagram one is connected and handed over. */
static void on_socket_by_name_skips_stream(void **state) {
  (void)state;
  ioa_addr udp;
  int u = udp_peer(&udp);
  char service[16];
  snprintf(service, sizeof service, "%d", addr_port(&udp));
  ctx c;
  new_loop(&c);
  ioa_connect_params p;
  params_for(&p, &c);
  p.on_connected = NULL;
  p.on_socket = on_socket_cb;
  p.on_attempt = on_attempt;
  p.host = "127.0.0.1";
  p.service = service;
  p.mode = IOA_CONNECT_SEQUENTIAL;
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.nwarn, 1); /* no hint: IO::Async's warning */
  run(&c);
  assert_int_equal(c.connected_fd, -2); /* a socket was handed over */
  c.connected_fd = -1;
  assert_int_equal(c.nfail, 0);
  assert_int_equal(c.nattempt, 1);
  struct pollfd pfd = {.fd = u, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, 2000), 1);
  finish(&c);
  close(u);
}
/* ---------------------------------------- stream and socket options */

typedef struct opt_ctx {
  ctx c;
  ioa_stream *stream;
  ioa_socket *sock;
  size_t max_read, total_read;
  int high_water, nrecv, msgsize;
  size_t recv_len;
} opt_ctx;

static size_t opt_on_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  opt_ctx *o = data;
  (void)s, (void)buf, (void)eof;
  if (len > o->max_read)
    o->max_read = len;
  o->total_read += len;
  return len;
}

static void opt_on_high_water(ioa_stream *s, void *data) {
  opt_ctx *o = data;
  (void)s;
  o->high_water++;
}

static void opt_on_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer, void *data) {
  opt_ctx *o = data;
  (void)req, (void)peer;
  o->c.done++;
  o->stream = s;
}

static void opt_on_recv(ioa_socket *s, const uint8_t *buf, size_t len, const ioa_addr *from,
                        void *data) {
  opt_ctx *o = data;
  (void)s, (void)buf, (void)from;
  o->nrecv++;
  o->recv_len = len;
}

static void opt_on_sock_error(ioa_socket *s, const char *syscall, int err, void *data) {
  opt_ctx *o = data;
  (void)s, (void)syscall;
  o->msgsize += err == -EMSGSIZE;
}

static void opt_on_socket(ioa_connect_req *req, ioa_socket *s, const ioa_addr *peer, void *data) {
  opt_ctx *o = data;
  (void)req, (void)peer;
  o->c.done++;
  o->sock = s;
}

/* A connector-made stream honours the caller's read_size and high_water:
 * 100 bytes already waiting come to on_read at most read_size at a time, and
 * queueing 100 bytes crosses a 64-byte high-water mark.  The defaults (64 KiB,
 * 1 MiB) are compared in the same way, through the fast path and the core. */
static void stream_options_reach_the_stream(void **state) {
  (void)state;
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  for (int k = 0; k < 4; k++) {
    int with_opts = k & 1, through_core = k & 2;
    opt_ctx o;
    memset(&o, 0, sizeof o);
    new_loop(&o.c);
    ioa_addr a = inet4("127.0.0.1", port, SOCK_STREAM);
    ioa_stream_options so;
    ioa_stream_options_init(&so);
    so.read_size = 4;
    so.high_water = 64;
    ioa_connect_params p;
    params_for(&p, &o.c);
    p.data = &o;
    p.on_connected = NULL;
    p.on_stream = opt_on_stream;
    p.addr = &a;
    p.stream_options = with_opts ? &so : NULL;
    p.timeout_ms = through_core ? 5000 : 0;
    assert_int_equal(start(&o.c, &p), 0);
    so.read_size = 1; /* copied by ioa_connect: later changes do not count */
    assert_int_equal(ioa_test_run_until(o.c.loop, &o.c.done, 5000), 0);
    assert_non_null(o.stream);
    int sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(sfd >= 0);
    char buf[100];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(send(sfd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    ioa_stream_callbacks cb;
    ioa_stream_callbacks_init(&cb);
    cb.on_read = opt_on_read;
    cb.on_high_water = opt_on_high_water;
    assert_int_equal(ioa_stream_set_callbacks(o.stream, &cb, &o), 0);
    assert_int_equal(ioa_stream_write(o.stream, buf, sizeof buf), 0);
    for (int i = 0; i < 500 && o.total_read < sizeof buf; i++)
      ioa_loop_run(o.c.loop, IOA_RUN_ONCE);
    ioa_loop_run(o.c.loop, IOA_RUN_NOWAIT);
    assert_int_equal(o.total_read, sizeof buf);
    assert_int_equal(o.max_read, with_opts ? 4 : sizeof buf);
    assert_int_equal(o.high_water, with_opts ? 1 : 0);
    ioa_stream_free(o.stream);
    close(sfd);
    finish(&o.c);
  }
  close(lfd);
}

/* The same for a connector-made socket: max_packet 16 drops a 40-byte
 * datagram (-EMSGSIZE) and delivers an 8-byte one. */
static void socket_options_reach_the_socket(void **state) {
  (void)state;
  ioa_addr udp;
  int u = udp_peer(&udp);
  opt_ctx o;
  memset(&o, 0, sizeof o);
  new_loop(&o.c);
  ioa_socket_options so;
  ioa_socket_options_init(&so);
  so.max_packet = 16;
  ioa_connect_params p;
  params_for(&p, &o.c);
  p.data = &o;
  p.on_connected = NULL;
  p.on_socket = opt_on_socket;
  p.addr = &udp;
  p.socket_options = &so;
  assert_int_equal(start(&o.c, &p), 0);
  assert_int_equal(ioa_test_run_until(o.c.loop, &o.c.done, 5000), 0);
  assert_non_null(o.sock);
  /* Tell the UDP peer where we are, then send it two datagrams back. */
  struct sockaddr_storage me;
  socklen_t len = sizeof me;
  assert_int_equal(getsockname(ioa_socket_fd(o.sock), (struct sockaddr *)&me, &len), 0);
  char big[40] = {0}, small[8] = {0};
  assert_int_equal(sendto(u, big, sizeof big, 0, (struct sockaddr *)&me, len), 40);
  assert_int_equal(sendto(u, small, sizeof small, 0, (struct sockaddr *)&me, len), 8);
  ioa_socket_callbacks cb;
  ioa_socket_callbacks_init(&cb);
  cb.on_recv = opt_on_recv;
  cb.on_error = opt_on_sock_error;
  assert_int_equal(ioa_socket_set_callbacks(o.sock, &cb, &o), 0);
  for (int i = 0; i < 500 && o.nrecv == 0; i++)
    ioa_loop_run(o.c.loop, IOA_RUN_ONCE);
  assert_int_equal(o.nrecv, 1);
  assert_int_equal(o.recv_len, 8);
  assert_int_equal(o.msgsize, 1);
  ioa_socket_free(o.sock);
  finish(&o.c);
  close(u);
}

/* Options are checked at the start and only for the callback they serve. */
static void bad_options_refused(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  ioa_addr a = inet4("127.0.0.1", 9, SOCK_STREAM);
  ioa_stream_options so;
  ioa_stream_options_init(&so);
  ioa_socket_options ko;
  ioa_socket_options_init(&ko);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &a;
  p.stream_options = &so; /* with on_connected */
  refused(&c, &p, IOA_EBADPARAM);
  p.on_connected = NULL;
  p.on_stream = on_stream_cb;
  so.low_water = so.high_water = 10; /* low water must be below high water */
  refused(&c, &p, IOA_EBADPARAM);
  ioa_stream_options_init(&so);
  so.struct_size = 0; /* not filled by its _init */
  refused(&c, &p, IOA_EBADPARAM);
  p.stream_options = NULL;
  p.socket_options = &ko; /* with on_stream */
  refused(&c, &p, IOA_EBADPARAM);
  ioa_addr d = inet4("127.0.0.1", 9, SOCK_DGRAM);
  p.addr = &d;
  p.on_stream = NULL;
  p.on_socket = on_socket_cb;
  ko.batch = 5000; /* at most 1024 */
  refused(&c, &p, IOA_EBADPARAM);
  finish(&c);
}

/* ----------------------------------------------------------- warnings */

/* Start p with stderr redirected into a pipe, cancel, and keep what was
 * printed in out. */
static void start_capturing_stderr(ctx *c, const ioa_connect_params *p, char *out, size_t size) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
  int r = start(c, p);
  fflush(stderr);
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  close(fds[1]);
  ssize_t n = read(fds[0], out, size - 1);
  out[n > 0 ? n : 0] = '\0';
  close(fds[0]);
  assert_int_equal(r, 0);
  ioa_connect_cancel(c->req);
  run(c);
}

/* The missing-hint warning with no hook anywhere goes to stderr (through the
 * loop's warning path, as IO::Async warns); socktype 0, a hook, or
 * ioa_warn_discard (per connect or per loop) silence it. */
static void warning_without_hook_goes_to_stderr(void **state) {
  (void)state;
  char got[512];
  for (int k = 0; k < 5; k++) {
    ctx c;
    new_loop(&c);
    ioa_connect_params p;
    params_for(&p, &c);
    p.on_warning = NULL;
    p.host = "localhost";
    p.service = "9";
    if (k == 1)
      p.socktype = 0;
    if (k == 2)
      p.on_warning = ioa_warn_discard;
    if (k == 3)
      ioa_loop_set_warning_hook(c.loop, ioa_warn_discard, NULL);
    if (k == 4)
      p.on_warning = on_warning;
    start_capturing_stderr(&c, &p, got, sizeof got);
    if (k == 0) {
      assert_non_null(strstr(got, "ioasync: warning: "));
      assert_non_null(strstr(got, "neither socktype nor protocol hint"));
    } else {
      assert_string_equal(got, "");
    }
    assert_int_equal(c.nwarn, k == 4 ? 1 : 0);
    finish(&c);
  }
  /* The unspecified-address warning takes the same path, fast path too. */
  ctx c;
  new_loop(&c);
  ioa_addr a = inet4("0.0.0.0", 9, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.on_warning = NULL;
  p.addr = &a;
  start_capturing_stderr(&c, &p, got, sizeof got);
  assert_non_null(strstr(got, "ioasync: warning: ioa_connect: connecting to the unspecified"));
  finish(&c);
}

static void resolve_localhost_and_cancel_in_on_resolved(void **state) {
  (void)state;
  for (int cancel = 0; cancel < 2; cancel++) {
    ctx c;
    new_loop(&c);
    int port;
    int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    c.cancel_in_resolved = cancel;
    ioa_connect_params p;
    params_for(&p, &c);
    p.host = "127.0.0.1";
    p.service = service;
    p.socktype = SOCK_STREAM;
    p.on_resolved = on_resolved;
    p.on_resolve_error = NULL;
    assert_int_equal(start(&c, &p), 0);
    run(&c);
    assert_int_equal(c.nresolved >= 1, 1);
    if (cancel) {
      assert_int_equal(c.err, -ECANCELED);
    } else {
      assert_true(c.connected_fd >= 0);
      assert_int_equal(addr_port(&c.peer), port);
    }
    finish(&c);
    close(lfd);
  }
}

static void on_resolve_error(ioa_connect_req *req, int err, const char *message, void *data) {
  ctx *c = data;
  (void)req;
  c->called_inside |= c->in_connect;
  c->done++;
  c->err = err;
  snprintf(c->warn, sizeof c->warn, "%s", message ? message : "(null)");
}

/* An over-long label fails inside the resolver's checks (no query leaves the
 * machine) and comes back through on_resolve_error, later. */
static void resolve_error_is_deferred_with_message(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  char host[80];
  memset(host, 'a', 70);
  memcpy(host + 70, ".invalid", 9);
  ioa_connect_params p;
  params_for(&p, &c);
  p.host = host;
  p.service = "80";
  p.socktype = SOCK_STREAM;
  p.on_resolve_error = on_resolve_error;
  assert_int_equal(start(&c, &p), 0);
  assert_int_equal(c.done, 0);
  run(&c);
  assert_true(c.err < 0);
  assert_true(strlen(c.warn) > 0);
  assert_int_equal(c.nfail, 0);
  finish(&c);
}

/* A name the hosts table holds is answered inside ioa_connect(): the
 * attempt's socket is open when it returns (no lookup request, no extra
 * loop turn), yet every callback still comes later; with an on_resolved
 * hook (which may not run inside ioa_connect) the answer is delivered as
 * before.  Cancelling right away leaks nothing.  Modes: 0 the lean request,
 * 1 with an overall timeout (the full connector), 2 with on_resolved,
 * 3 cancelled at once, 4 refused (a closed port). */
static void hosts_name_answered_inside_connect(void **state) {
  (void)state;
  for (int mode = 0; mode < 5; mode++) {
    ctx c;
    new_loop(&c);
    ioa_resolver *r;
    assert_int_equal(ioa_resolver_default(c.loop, &r), 0);
    ioa_resolver_stats before, after;
    ioa_resolver_get_stats(r, &before);
    int port;
    int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
    assert_true(lfd >= 0);
    char service[16];
    snprintf(service, sizeof service, "%d", mode == 4 ? ioa_test_closed_port(AF_INET) : port);
    ioa_connect_params p;
    params_for(&p, &c);
    p.host = "localhost";
    p.service = service;
    p.family = AF_INET; /* /etc/hosts may also map localhost to ::1 */
    p.socktype = SOCK_STREAM;
    p.on_fail = NULL; /* the lean request */
    if (mode == 1)
      p.timeout_ms = 5000;
    if (mode == 2)
      p.on_resolved = on_resolved;
    if (mode == 4)
      p.on_fail = on_fail;
    int fds = ioa_test_fd_count();
    assert_int_equal(start(&c, &p), 0);
    ioa_resolver_get_stats(r, &after);
    if (after.hosts != before.hosts + 1) {
      /* nsswitch.conf does not put files first: nothing to test here */
      ioa_connect_cancel(c.req);
      run(&c);
      finish(&c);
      close(lfd);
      skip();
    }
    assert_int_equal(after.sent, before.sent);
    /* The attempt started inside, except where on_resolved must come first. */
    assert_int_equal(ioa_test_fd_count(), mode == 2 ? fds : fds + 1);
    assert_int_equal(c.done, 0);
    if (mode == 3) {
      ioa_connect_cancel(c.req);
      assert_int_equal(ioa_test_fd_count(), fds);
    }
    run(&c);
    assert_int_equal(c.nresolved, mode == 2 ? 1 : 0);
    if (mode == 3) {
      assert_int_equal(c.err, -ECANCELED);
    } else if (mode == 4) {
      assert_int_equal(c.err, -ECONNREFUSED);
      assert_int_equal(c.err_syscall, IOA_SYSCALL_CONNECT);
      assert_int_equal(c.nfail, 1);
    } else {
      assert_true(c.connected_fd >= 0);
      assert_int_equal(addr_port(&c.peer), port);
    }
    finish(&c);
    close(lfd);
  }
}

/* host + service through the default resolver, racing and sequential, with
 * a local host to bind; "localhost" comes from /etc/hosts. */
static void host_service_modes_and_local_host(void **state) {
  (void)state;
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 16, &port);
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  for (int mode = 0; mode < 3; mode++) {
    ctx c;
    new_loop(&c);
    ioa_connect_params p;
    params_for(&p, &c);
    p.host = mode == 2 ? "127.0.0.1" : "localhost";
    p.service = service;
    p.socktype_name = "stream";
    p.family = AF_INET; /* /etc/hosts may also map localhost to ::1 */
    p.mode = mode == 1 ? IOA_CONNECT_SEQUENTIAL : IOA_CONNECT_AUTO;
    p.on_resolved = on_resolved;
    if (mode == 2)
      p.local_host = "127.0.0.3";
    assert_int_equal(start(&c, &p), 0);
    run(&c);
    assert_true(c.connected_fd >= 0);
    assert_int_equal(addr_port(&c.peer), port);
    assert_true(c.nresolved >= (mode == 2 ? 2 : 1));
    assert_int_equal(c.nwarn, 0);
    if (mode == 2) {
      struct sockaddr_in sin;
      socklen_t len = sizeof sin;
      getsockname(c.connected_fd, (struct sockaddr *)&sin, &len);
      assert_int_equal(ntohl(sin.sin_addr.s_addr), 0x7f000003);
    }
    finish(&c);
  }
  close(lfd);
}

/* The overall deadline also bounds resolution + connecting to a black hole
 * through host+service. */
static void host_service_black_hole_times_out(void **state) {
  (void)state;
  blackhole b;
  if (blackhole_open(&b) < 0)
    skip();
  ctx c;
  new_loop(&c);
  char service[16];
  snprintf(service, sizeof service, "%d", b.port);
  ioa_connect_params p;
  params_for(&p, &c);
  p.host = "127.0.0.1";
  p.service = service;
  p.socktype = SOCK_STREAM;
  p.timeout_ms = 100;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.err, -ETIMEDOUT);
  assert_int_equal(c.err_syscall, IOA_SYSCALL_NONE);
  finish(&c);
  blackhole_close(&b);
}

/* ------------------------------------------- Happy Eyeballs end to end */
#if IOA_TEST_HAVE_DNS_FIXTURE
#include "dns_fixture.h"

/* A live 127.0.0.1:P and a black-holed [::1]:P (same port, so one service
 * number names both). */
typedef struct dual {
  int v4, v6, filler, port;
} dual;

static int dual_open(dual *d) {
  d->v4 = ioa_test_listen_tcp(AF_INET, 16, &d->port);
  d->v6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  d->filler = -1;
  int one = 1;
  setsockopt(d->v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  ioa_addr a6 = inet6("::1", d->port, SOCK_STREAM);
  if (d->v4 < 0 || d->v6 < 0 || bind(d->v6, (struct sockaddr *)&a6.addr, a6.addrlen) < 0 ||
      listen(d->v6, 0) < 0)
    return -1;
  d->filler = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  (void)connect(d->filler, (struct sockaddr *)&a6.addr, a6.addrlen);
  struct pollfd pfd = {.fd = d->filler, .events = POLLOUT};
  return poll(&pfd, 1, 2000) == 1 ? 0 : -1;
}

static void dual_close(dual *d) {
  if (d->filler >= 0)
    close(d->filler);
  if (d->v6 >= 0)
    close(d->v6);
  if (d->v4 >= 0)
    close(d->v4);
}

static void he_case(int delay_aaaa_ms) {
  if (!ioa_resolver_have_cares() || !ioa_test_have_ipv6())
    skip();
  dual d;
  if (dual_open(&d) < 0) {
    dual_close(&d);
    skip();
  }
  ioa_dns_record rec = {.name = "he.test", .a = {"127.0.0.1"}, .aaaa = {"::1"}};
  rec.delay_aaaa_ms = (unsigned)delay_aaaa_ms;
  ioa_dns_fixture *fx;
  assert_int_equal(ioa_dns_fixture_start(&fx, "127.0.0.1", 0, &rec, 1), 0);
  char servers[64], service[16];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", ioa_dns_fixture_port(fx));
  snprintf(service, sizeof service, "%d", d.port);
  ctx c;
  new_loop(&c);
  ioa_resolver_options ro = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_CARES, .servers = servers};
  ioa_resolver *r;
  assert_int_equal(ioa_resolver_new(c.loop, &ro, &r), 0);
  ioa_connect_params p;
  params_for(&p, &c);
  p.host = "he.test";
  p.service = service;
  p.socktype = SOCK_STREAM;
  p.resolver = r;
  p.attempt_delay_ms = 50;
  p.on_attempt = on_attempt;
  p.on_resolve_error = on_resolve_error;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_true(c.connected_fd >= 0);
  assert_int_equal(c.peer.family, AF_INET);
  assert_int_equal(c.nfail, 0); /* the black-holed loser is closed, not failed */
  if (delay_aaaa_ms == 0) {
    /* both answers in time: IPv6 first, IPv4 after the attempt delay */
    assert_int_equal(c.nattempt, 2);
  } else {
    /* AAAA late: IPv4 starts after the resolution delay and wins alone */
    assert_int_equal(c.nattempt, 1);
  }
  close(c.connected_fd);
  c.connected_fd = -1;
  ioa_resolver_free(r);
  finish(&c);
  ioa_dns_fixture_stop(fx);
  dual_close(&d);
}

static void he_black_holed_ipv6_falls_back_to_ipv4(void **state) {
  (void)state;
  he_case(0);
}

static void he_late_aaaa_ipv4_after_resolution_delay(void **state) {
  (void)state;
  he_case(1500);
}

/* The overall deadline passing while the name is still resolving is the
 * connect's timeout (ioa_connect(3): on_connect_error, IOA_SYSCALL_NONE,
 * -ETIMEDOUT), not a resolver failure for on_resolve_error. */
static int resolve_errors;
static void on_resolve_error_counted(ioa_connect_req *req, int err, const char *message,
                                     void *data) {
  resolve_errors++;
  on_resolve_error(req, err, message, data);
}

static void overall_timeout_while_resolving(void **state) {
  (void)state;
  if (!ioa_resolver_have_cares())
    skip();
  ioa_dns_record rec = {.name = "silent.test", .drop_a = 1, .drop_aaaa = 1};
  ioa_dns_fixture *fx;
  assert_int_equal(ioa_dns_fixture_start(&fx, "127.0.0.1", 0, &rec, 1), 0);
  char servers[64];
  snprintf(servers, sizeof servers, "127.0.0.1:%d", ioa_dns_fixture_port(fx));
  ctx c;
  new_loop(&c);
  ioa_resolver_options ro = {.struct_size = sizeof(ioa_resolver_options), .backend = IOA_RESOLVER_CARES, .servers = servers};
  ioa_resolver *r;
  assert_int_equal(ioa_resolver_new(c.loop, &ro, &r), 0);
  ioa_connect_params p;
  params_for(&p, &c);
  p.host = "silent.test";
  p.service = "80";
  p.socktype = SOCK_STREAM;
  p.resolver = r;
  p.timeout_ms = 100;
  p.on_resolve_error = on_resolve_error_counted;
  resolve_errors = 0;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(resolve_errors, 0);
  assert_int_equal(c.err_syscall, IOA_SYSCALL_NONE);
  assert_int_equal(c.err, -ETIMEDOUT);
  assert_int_equal(c.nfail, 0);
  ioa_resolver_free(r);
  finish(&c);
  ioa_dns_fixture_stop(fx);
}
#endif

/* ioa_connect_failures() promises its list stays valid until the completion
 * callback returns: asking again (here from on_fail, then from the
 * completion) must not pull the first answer from under the caller. */
typedef struct failures_ctx {
  ctx c;
  const ioa_attempt_failure *early;
  size_t nearly;
  ioa_syscall early_syscall;
  int early_err;
} failures_ctx;

static void on_fail_keep_failures(ioa_connect_req *req, const ioa_attempt_failure *f,
                                  void *data) {
  failures_ctx *fc = data;
  (void)f;
  fc->c.nfail++;
  if (!fc->early) {
    fc->nearly = ioa_connect_failures(req, &fc->early);
    if (fc->nearly) {
      fc->early_syscall = fc->early[0].syscall;
      fc->early_err = fc->early[0].err;
    }
  }
}

static void on_error_rereads_failures(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  failures_ctx *fc = data;
  fc->c.done++;
  fc->c.err_syscall = s;
  fc->c.err = err;
  const ioa_attempt_failure *all;
  fc->c.nfailures_at_end = ioa_connect_failures(req, &all);
  (void)ioa_connect_failures(req, &all); /* and once more */
  /* The list fetched in the first on_fail is still the caller's to read. */
  assert_non_null(fc->early);
  assert_int_equal(fc->nearly, 1);
  assert_int_equal(fc->early[0].syscall, fc->early_syscall);
  assert_int_equal(fc->early[0].err, fc->early_err);
  assert_int_equal(fc->early[0].syscall, all[0].syscall);
  assert_int_equal(addr_port(fc->early[0].peer), addr_port(all[0].peer));
}

static void failures_list_stays_valid(void **state) {
  (void)state;
  failures_ctx fc;
  memset(&fc, 0, sizeof fc);
  new_loop(&fc.c);
  ioa_addr addrs[3];
  for (int i = 0; i < 3; i++)
    addrs[i] = inet4("127.0.0.1", ioa_test_closed_port(AF_INET), SOCK_STREAM);
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.addrs = addrs;
  p.naddrs = 3;
  p.on_connected = on_connected;
  p.on_connect_error = on_error_rereads_failures;
  p.on_fail = on_fail_keep_failures;
  p.data = &fc;
  assert_int_equal(ioa_connect(fc.c.loop, &p, &fc.c.req), 0);
  assert_int_equal(ioa_test_run_until(fc.c.loop, &fc.c.done, 5000), 0);
  assert_int_equal(fc.c.done, 1);
  assert_int_equal(fc.c.nfail, 3);
  assert_int_equal(fc.c.nfailures_at_end, 3);
  assert_int_equal(fc.early_syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(fc.early_err, -ECONNREFUSED);
  finish(&fc.c);
}

/* Cancelling from the warning hook (a caller treating "non-portable" as
 * fatal) completes the request: no callback of the request may follow,
 * on_resolved and further warnings included. */
typedef struct warn_cancel_ctx {
  ctx c;
  int after_done; /* callbacks seen after the completion */
} warn_cancel_ctx;

static void on_warning_cancels(const char *msg, void *data) {
  warn_cancel_ctx *w = data;
  (void)msg;
  w->after_done += w->c.done;
  w->c.nwarn++;
  if (w->c.req)
    ioa_connect_cancel(w->c.req);
}

static void on_resolved_after(ioa_connect_req *req, const ioa_addr *addrs, size_t n,
                              int is_local, void *data) {
  warn_cancel_ctx *w = data;
  (void)req, (void)addrs, (void)n, (void)is_local;
  w->after_done += w->c.done;
  w->c.nresolved++;
}

static void cancel_from_warning_ends_callbacks(void **state) {
  (void)state;
  warn_cancel_ctx w;
  memset(&w, 0, sizeof w);
  new_loop(&w.c);
  int port = ioa_test_closed_port(AF_INET);
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  ioa_connect_params p;
  params_for(&p, &w.c);
  p.data = &w;
  p.host = "0.0.0.0"; /* unspecified: the non-portable warning, from the resolution */
  p.service = service;
  p.socktype = SOCK_STREAM;
  p.on_fail = NULL;
  p.on_warning = on_warning_cancels;
  p.on_resolved = on_resolved_after;
  w.c.in_connect = 1;
  assert_int_equal(ioa_connect(w.c.loop, &p, &w.c.req), 0);
  w.c.in_connect = 0;
  assert_int_equal(w.c.nwarn, 0); /* nothing resolved yet */
  run(&w.c);
  assert_int_equal(w.c.nwarn, 1);
  assert_int_equal(w.c.err, -ECANCELED);
  assert_int_equal(w.after_done, 0);
  assert_int_equal(w.c.nresolved, 0);
  finish(&w.c);
}

/* --------------------------------------------- fault injection (fault preset) */
#ifdef IOA_FAULT_INJECTION
#include "fault.h"

/* Every allocation and syscall of a scenario fails once in turn (N = 1, 2,
 * ...): each run ends with exactly one completion, no fd left open (and no
 * byte, under ASan), until a run sees no failure point at all. */
static void sweep(const char *what, int scenario, unsigned long mask) {
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 64, &port);
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  int base = ioa_test_fd_count();
  unsigned long nth;
  for (nth = 1; nth < 500; nth++) {
    ctx c;
    new_loop(&c);
    ioa_addr addrs[3] = {inet4("127.0.0.1", ioa_test_closed_port(AF_INET), SOCK_STREAM),
                         inet4("127.0.0.1", 9, BAD_SOCKTYPE),
                         inet4("127.0.0.1", port, SOCK_STREAM)};
    ioa_addr local = inet4("127.0.0.2", 0, 0);
    ioa_stream_options so;
    ioa_stream_options_init(&so);
    so.read_size = 512;
    ioa_connect_params p;
    params_for(&p, &c);
    if (scenario == 0) { /* several candidates in turn, a local bind */
      p.addrs = addrs;
      p.naddrs = 3;
      p.local_addr = &local;
      p.on_sockopt = on_sockopt;
    } else if (scenario == 1) { /* the fast path */
      p.addr = &addrs[2];
    } else if (scenario == 3) { /* the fast path to a stream with options */
      p.addr = &addrs[2];
      p.on_connected = NULL;
      p.on_stream = on_stream_cb;
      p.stream_options = &so;
    } else { /* resolve + race */
      p.host = "127.0.0.1";
      p.service = service;
      p.socktype = SOCK_STREAM;
      p.timeout_ms = 3000;
    }
    ioa__fault_arm(nth, mask, ENOMEM);
    c.in_connect = 1;
    int rc = ioa_connect(c.loop, &p, &c.req);
    c.in_connect = 0;
    if (rc == 0)
      ioa_test_run_until(c.loop, &c.done, 5000);
    int fired = ioa__fault_fired();
    ioa__fault_arm(0, 0, 0);
    for (int i = 0; i < 5; i++)
      ioa_loop_run(c.loop, IOA_RUN_NOWAIT);
    assert_int_equal(c.done, rc == 0 ? 1 : 0);
    assert_false(c.called_inside);
    if (c.connected_fd >= 0)
      close(c.connected_fd);
    ioa_loop_free(c.loop);
    /* accepted-side connections queue on the listener; drain them */
    for (int fd; (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0;)
      close(fd);
    assert_int_equal(ioa_test_fd_count(), base);
    if (!fired)
      break;
  }
  print_message("# connect fault sweep %s: %lu failure points, each handled\n", what, nth - 1);
  assert_true(nth > 2);
  close(lfd);
}

#define FAULT_BIT(op) (1ul << (op))
static void fault_sweep_connect(void **state) {
  (void)state;
  unsigned long all = FAULT_BIT(IOA_FOP_MALLOC) | FAULT_BIT(IOA_FOP_SOCKET) |
                      FAULT_BIT(IOA_FOP_BIND) | FAULT_BIT(IOA_FOP_CONNECT) |
                      FAULT_BIT(IOA_FOP_GETSOCKOPT) | FAULT_BIT(IOA_FOP_SETSOCKOPT) |
                      FAULT_BIT(IOA_FOP_EPOLL_CTL);
  sweep("list+bind", 0, all);
  sweep("fast path", 1, all);
  sweep("fast path, stream with options", 3, all | FAULT_BIT(IOA_FOP_FCNTL));
  sweep("resolve+race", 2, all | FAULT_BIT(IOA_FOP_GETADDRINFO) |
                                FAULT_BIT(IOA_FOP_PTHREAD_CREATE));
}
#endif

/* ------------------------- Happy Eyeballs: the resolver's order counts
 *
 * getaddrinfo() sorts its answer (RFC 6724, tuned by /etc/gai.conf); Happy
 * Eyeballs must start with the family it put first.  Inside `unshare -n -m`
 * a gai.conf that ranks IPv4 above IPv6 and an /etc/hosts name with both
 * loopback addresses make getaddrinfo answer 127.0.0.1 before ::1: the first
 * attempt must then be IPv4 (a listener there, nothing on ::1). */

typedef struct he_order_ctx {
  ctx c;
  int first_family;
  unsigned seen;       /* families resolved so far: bit 0 IPv4, bit 1 IPv6 */
  unsigned seen_first; /* ... when the first attempt started */
} he_order_ctx;

static void on_attempt_family(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                              void *data) {
  he_order_ctx *h = data;
  (void)req, (void)local;
  if (h->c.nattempt++ == 0) {
    h->first_family = peer->family;
    h->seen_first = h->seen;
  }
}

/* A fresh loop and a race by name whose first attempt's family is kept. */
static void he_order_start(he_order_ctx *h, ioa_connect_params *p, const char *host,
                           const char *service) {
  memset(h, 0, sizeof *h);
  new_loop(&h->c);
  params_for(p, &h->c);
  p->data = h;
  p->host = host;
  p->service = service;
  p->socktype = SOCK_STREAM;
  p->on_attempt = on_attempt_family;
}

static int he_order_helper(void) {
  alarm(60);
  if (system("ip link set lo up") != 0)
    return IOA_TEST_NS_SETUP;
  char dir[] = "/tmp/ioa-connect-ns-XXXXXX";
  if (!mkdtemp(dir))
    return IOA_TEST_NS_SETUP;
  if (ioa_test_ns_hide_nscd() != 0)
    return IOA_TEST_NS_SETUP;
  if (ioa_test_ns_bind(dir, "hosts", "127.0.0.1 dual.ioa-test\n::1 dual.ioa-test\n",
                       "/etc/hosts") != 0 ||
      ioa_test_ns_bind(dir, "nsswitch.conf", "hosts: files\nservices: files\n",
                       "/etc/nsswitch.conf") != 0 ||
      ioa_test_ns_bind(dir, "gai.conf", "precedence ::ffff:0:0/96 100\n", "/etc/gai.conf") != 0)
    return IOA_TEST_NS_SETUP;
  if (!ioa_test_have_ipv6())
    return IOA_TEST_NS_SETUP;
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  if (lfd < 0)
    return IOA_TEST_NS_SETUP;
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  /* The premise: getaddrinfo itself puts IPv4 first here. */
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  if (getaddrinfo("dual.ioa-test", service, &hints, &ai) != 0 || !ai || !ai->ai_next ||
      ai->ai_family != AF_INET || ai->ai_next->ai_family != AF_INET6) {
    fprintf(stderr, "he order helper: getaddrinfo does not answer IPv4 first here\n");
    if (ai)
      freeaddrinfo(ai);
    return IOA_TEST_NS_SETUP;
  }
  freeaddrinfo(ai);

  he_order_ctx h;
  ioa_connect_params p;
  he_order_start(&h, &p, "dual.ioa-test", service);
  int failed = 0;
  if (ioa_connect(h.c.loop, &p, &h.c.req) != 0 ||
      ioa_test_run_until(h.c.loop, &h.c.done, 10000) != 0) {
    fprintf(stderr, "he order helper: connect did not complete\n");
    failed = 1;
  } else {
    if (h.first_family != AF_INET) {
      fprintf(stderr, "he order helper: first attempt family %d, want AF_INET\n", h.first_family);
      failed = 1;
    }
    if (h.c.connected_fd < 0 || h.c.nfail != 0) {
      fprintf(stderr, "he order helper: fd %d after %d failures\n", h.c.connected_fd, h.c.nfail);
      failed = 1;
    }
  }
  if (h.c.connected_fd >= 0)
    close(h.c.connected_fd);
  ioa_loop_free(h.c.loop);
  close(lfd);
  return failed ? IOA_TEST_NS_FAIL : 0;
}

#if IOA_TEST_HAVE_DNS_FIXTURE
/* The same with answers per family (c-ares hands each over as it comes):
 * A first, AAAA within the Resolution Delay, so both are in when
 * connecting begins; RFC 8305 section 4 then starts with the family whose
 * first address getaddrinfo ranks first (RFC 6724): IPv4 under a gai.conf
 * giving it precedence 100, IPv6 under the default table.  Live 127.0.0.1,
 * black-holed ::1 (dual), so a wrong start still connects, late. */
static void on_resolved_family(ioa_connect_req *req, const ioa_addr *addrs, size_t n,
                               int is_local, void *data) {
  he_order_ctx *h = data;
  (void)req, (void)is_local;
  for (size_t i = 0; i < n; i++)
    h->seen |= addrs[i].family == AF_INET ? 1u : addrs[i].family == AF_INET6 ? 2u : 0u;
}

/* One race by name through a fresh resolver (so /etc/gai.conf is read
 * again); 0 if it started with want_family and connected to IPv4. */
static int he_partial_case(const char *servers, const char *service, int want_family) {
  he_order_ctx h;
  ioa_connect_params p;
  he_order_start(&h, &p, "he.test", service);
  ioa_resolver_options ro = {.struct_size = sizeof(ioa_resolver_options),
                             .backend = IOA_RESOLVER_CARES,
                             .servers = servers};
  ioa_resolver *r = NULL;
  p.resolution_delay_ms = 2000; /* AAAA, 100 ms after A, comes well within it */
  p.attempt_delay_ms = 50;
  p.on_resolved = on_resolved_family;
  int failed = 1;
  if (ioa_resolver_new(h.c.loop, &ro, &r) != 0) {
    fprintf(stderr, "he partial helper: no c-ares resolver\n");
  } else if ((p.resolver = r, ioa_connect(h.c.loop, &p, &h.c.req)) != 0 ||
             ioa_test_run_until(h.c.loop, &h.c.done, 10000) != 0) {
    fprintf(stderr, "he partial helper: connect did not complete\n");
  } else if (h.seen_first != 3) {
    fprintf(stderr, "he partial helper: first attempt with families 0x%x resolved, want both\n",
            h.seen_first);
  } else if (h.first_family != want_family) {
    fprintf(stderr, "he partial helper: first attempt family %d, want %d\n", h.first_family,
            want_family);
  } else if (h.c.connected_fd < 0 || h.c.peer.family != AF_INET || h.c.nfail != 0) {
    fprintf(stderr, "he partial helper: fd %d, family %d, %d failures\n", h.c.connected_fd,
            h.c.peer.family, h.c.nfail);
  } else {
    failed = 0;
  }
  if (h.c.connected_fd >= 0)
    close(h.c.connected_fd);
  if (r)
    ioa_resolver_free(r);
  ioa_loop_free(h.c.loop);
  return failed;
}

static int he_partial_order_helper(void) {
  alarm(60);
  if (!ioa_resolver_have_cares() || system("ip link set lo up") != 0 || !ioa_test_have_ipv6())
    return IOA_TEST_NS_SETUP;
  char dir[] = "/tmp/ioa-connect-ns-XXXXXX";
  if (!mkdtemp(dir))
    return IOA_TEST_NS_SETUP;
  char gai[PATH_MAX];
  snprintf(gai, sizeof gai, "%s/gai.conf", dir);
  int rc = IOA_TEST_NS_SETUP;
  dual d = {.v4 = -1, .v6 = -1, .filler = -1};
  ioa_dns_record rec = {.name = "he.test", .a = {"127.0.0.1"}, .aaaa = {"::1"},
                        .delay_aaaa_ms = 100};
  ioa_dns_fixture *fx = NULL;
  if (ioa_test_ns_bind(dir, "gai.conf", "precedence ::ffff:0:0/96 100\n", "/etc/gai.conf") == 0 &&
      dual_open(&d) == 0 && ioa_dns_fixture_start(&fx, "127.0.0.1", 0, &rec, 1) == 0) {
    char servers[64], service[16];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", ioa_dns_fixture_port(fx));
    snprintf(service, sizeof service, "%d", d.port);
    rc = he_partial_case(servers, service, AF_INET) ? IOA_TEST_NS_FAIL : 0;
    /* The same file emptied (the bind mount shows the new contents): the
     * default table ranks ::1 above 127.0.0.1. */
    FILE *f = rc == 0 ? fopen(gai, "w") : NULL;
    if (f) {
      fclose(f);
      rc = he_partial_case(servers, service, AF_INET6) ? IOA_TEST_NS_FAIL : 0;
    } else if (rc == 0) {
      rc = IOA_TEST_NS_SETUP;
    }
  }
  if (fx)
    ioa_dns_fixture_stop(fx);
  dual_close(&d);
  umount("/etc/gai.conf");
  unlink(gai);
  rmdir(dir);
  return rc;
}
#endif

/* ------------------------------------------------ racing: RFC 8305 */

/* 20 black holes before a live address, racing with a 10 ms attempt delay:
 * with at most 16 in flight the oldest is abandoned for each new one, so the
 * live address gets its turn (on_fail "connect" IOA_EABANDONED for the 5
 * that made room; the 15 left in flight are closed at the win, unreported). */
static void race_more_black_holes_than_slots(void **state) {
  (void)state;
  blackhole b;
  if (blackhole_open(&b) < 0)
    skip();
  ctx c;
  new_loop(&c);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  ioa_addr addrs[21];
  for (int i = 0; i < 20; i++)
    addrs[i] = inet4("127.0.0.1", b.port, SOCK_STREAM);
  addrs[20] = inet4("127.0.0.1", port, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addrs = addrs;
  p.naddrs = 21;
  p.mode = IOA_CONNECT_RACE;
  p.attempt_delay_ms = 10;
  p.on_attempt = on_attempt;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_true(c.connected_fd >= 0);
  assert_int_equal(addr_port(&c.peer), port);
  assert_int_equal(c.nattempt, 21);
  assert_int_equal(c.nfail, 20 - (IOA_CONNECT_MAX_INFLIGHT - 1));
  for (int i = 0; i < c.nfail; i++) {
    assert_int_equal(c.fails[i].syscall, IOA_SYSCALL_CONNECT);
    assert_int_equal(c.fails[i].err, IOA_EABANDONED);
    assert_int_equal(addr_port(c.fails[i].peer), b.port);
  }
  finish(&c);
  close(lfd);
  blackhole_close(&b);
}

/* RFC 8305 section 4 on a list: two IPv6 addresses before the first IPv4
 * one with a First Address Family Count of 2, alternating with 1.  Every
 * address but the last refuses at once, so the order is the whole story. */
static void first_family_count_orders_attempts(void **state) {
  (void)state;
  if (!ioa_test_have_ipv6())
    skip();
  for (unsigned count = 1; count <= 2; count++) {
    ctx c;
    new_loop(&c);
    int port;
    int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
    int p6 = ioa_test_closed_port(AF_INET6), p4 = ioa_test_closed_port(AF_INET);
    ioa_addr addrs[4] = {inet6("::1", p6, SOCK_STREAM), inet6("::1", p6, SOCK_STREAM),
                         inet4("127.0.0.1", p4, SOCK_STREAM),
                         inet4("127.0.0.1", port, SOCK_STREAM)};
    ioa_connect_params p;
    params_for(&p, &c);
    p.addrs = addrs;
    p.naddrs = 4;
    p.mode = IOA_CONNECT_RACE;
    p.first_family_count = count;
    p.on_attempt = on_attempt;
    assert_int_equal(start(&c, &p), 0);
    run(&c);
    assert_int_equal(c.nattempt, 4);
    assert_int_equal(c.attempt_ports[0], p6);
    if (count == 2) { /* 6 6 4 (refused) 4 (live) */
      assert_int_equal(c.attempt_ports[1], p6);
      assert_int_equal(c.attempt_ports[2], p4);
    } else { /* 6 4 (refused) 6 4 (live) */
      assert_int_equal(c.attempt_ports[1], p4);
      assert_int_equal(c.attempt_ports[2], p6);
    }
    assert_int_equal(c.attempt_ports[3], port);
    assert_int_equal(addr_port(&c.peer), port);
    finish(&c);
    close(lfd);
  }
}

/* The new fields are checked at the start like the others, and a caller
 * built against 1.0 (a params struct ending before them) still works. */
static void new_params_checked_and_short_layout_refused(void **state) {
  (void)state;
  ctx c;
  new_loop(&c);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  ioa_addr a = inet4("127.0.0.1", port, SOCK_STREAM);
  ioa_connect_params p;
  params_for(&p, &c);
  p.addr = &a;
  p.first_family_count = 256;
  assert_int_equal(start(&c, &p), IOA_EBADPARAM);
  p.first_family_count = 255;
  p.learned_delay = (ioa_learned_delay)2;
  assert_int_equal(start(&c, &p), IOA_EBADPARAM);
  p.learned_delay = IOA_LEARNED_DELAY_OFF;
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_true(c.connected_fd >= 0);
  /* A layout shorter than this header's (the 1.0 layout every caller has at
   * least): refused, nothing started. */
  ioa_connect_params shorter = p;
  shorter.struct_size = sizeof shorter - sizeof(void *);
  assert_int_equal(start(&c, &shorter), IOA_EBADPARAM);
  finish(&c);
  close(lfd);
}

/* A name answered with one address takes the fast path (no core until
 * needed); every way out of it ends as the core path does: connected,
 * refused (on_fail, then the error), cancelled while the lookup is out,
 * cancelled while its attempt is in flight. */
static void by_name_single_address_every_exit(void **state) {
  (void)state;
  blackhole b;
  if (blackhole_open(&b) < 0)
    skip();
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  int closed = ioa_test_closed_port(AF_INET);
  for (int way = 0; way < 4; way++) {
    ctx c;
    new_loop(&c);
    char service[16];
    snprintf(service, sizeof service, "%d", way == 1 ? closed : way == 3 ? b.port : port);
    ioa_connect_params p;
    params_for(&p, &c);
    p.host = "127.0.0.1";
    p.service = service;
    p.socktype = SOCK_STREAM;
    assert_int_equal(start(&c, &p), 0);
    if (way == 2)
      ioa_connect_cancel(c.req); /* the lookup is out */
    if (way == 3) {
      ioa_test_run_for(c.loop, 30); /* its attempt is in flight to the black hole */
      assert_int_equal(c.done, 0);
      ioa_connect_cancel(c.req);
    }
    run(&c);
    switch (way) {
    case 0:
      assert_true(c.connected_fd >= 0);
      assert_int_equal(addr_port(&c.peer), port);
      assert_int_equal(c.nfail, 0);
      break;
    case 1:
      assert_int_equal(c.nfail, 1);
      assert_int_equal(c.fails[0].err, -ECONNREFUSED);
      assert_int_equal(c.err_syscall, IOA_SYSCALL_CONNECT);
      assert_int_equal(c.err, -ECONNREFUSED);
      assert_int_equal(c.nfailures_at_end, 1);
      break;
    default:
      assert_int_equal(c.err, -ECANCELED);
      assert_int_equal(c.nfail, 0);
      break;
    }
    finish(&c);
  }
  close(lfd);
  blackhole_close(&b);
}

/* The RTT cache's own rules, without a socket: prefixes (/24, /64, mapped
 * IPv4), smoothing, the delay rule, expiry, the bound, clearing, refusals. */
static void rtt_cache_rules(void **state) {
  (void)state;
  ioa_rtt_cache *c;
  assert_int_equal(ioa_rtt_cache_new(NULL, &c), 0);
  ioa_addr a = inet4("10.1.2.3", 443, SOCK_STREAM), same = inet4("10.1.2.200", 80, SOCK_STREAM),
           other = inet4("10.1.3.3", 443, SOCK_STREAM);
  uint32_t rtt = 1;
  unsigned delay = 0;
  assert_int_equal(ioa_rtt_cache_lookup(c, &a, &rtt, &delay), 0);
  assert_int_equal(rtt, 0);
  assert_int_equal(delay, 250);
  assert_int_equal(ioa_rtt_cache_note(c, &a, 200000), 0);
  assert_int_equal(ioa_rtt_cache_lookup(c, &same, &rtt, &delay), 1); /* same /24 */
  assert_int_equal(rtt, 200000);
  assert_int_equal(delay, 400);
  assert_int_equal(ioa_rtt_cache_lookup(c, &other, NULL, NULL), 0);
  /* smoothed: 200 ms then 100 ms -> 175 ms (gain 1/4) */
  assert_int_equal(ioa_rtt_cache_note(c, &same, 100000), 0);
  assert_int_equal(ioa_rtt_cache_lookup(c, &a, &rtt, &delay), 1);
  assert_int_equal(rtt, 175000);
  assert_int_equal(delay, 350);
  /* the floor and the ceiling */
  ioa_addr lo = inet4("127.0.0.1", 1, SOCK_STREAM);
  assert_int_equal(ioa_rtt_cache_note(c, &lo, 40), 0);
  assert_int_equal(ioa_rtt_cache_lookup(c, &lo, NULL, &delay), 1);
  assert_int_equal(delay, 100);
  ioa_addr far = inet4("10.9.9.9", 1, SOCK_STREAM);
  assert_int_equal(ioa_rtt_cache_note(c, &far, 5000000), 0);
  assert_int_equal(ioa_rtt_cache_lookup(c, &far, NULL, &delay), 1);
  assert_int_equal(delay, 2000);
  /* IPv6: /64; an IPv4-mapped address is its IPv4 prefix */
  ioa_addr s6a = inet6("2001:db8:1:2::1", 1, SOCK_STREAM),
           s6b = inet6("2001:db8:1:2:ffff::9", 1, SOCK_STREAM),
           s6c = inet6("2001:db8:1:3::1", 1, SOCK_STREAM),
           mapped = inet6("::ffff:10.1.2.77", 1, SOCK_STREAM);
  assert_int_equal(ioa_rtt_cache_note(c, &s6a, 30000), 0);
  assert_int_equal(ioa_rtt_cache_lookup(c, &s6b, &rtt, NULL), 1);
  assert_int_equal(rtt, 30000);
  assert_int_equal(ioa_rtt_cache_lookup(c, &s6c, NULL, NULL), 0);
  assert_int_equal(ioa_rtt_cache_lookup(c, &mapped, &rtt, NULL), 1);
  assert_int_equal(rtt, 175000);
  /* refusals */
  ioa_addr u = unix_addr("/tmp/x", SOCK_STREAM);
  assert_int_equal(ioa_rtt_cache_note(c, &u, 1000), IOA_EBADPARAM);
  assert_int_equal(ioa_rtt_cache_note(c, &a, 0), IOA_EBADPARAM);
  assert_int_equal(ioa_rtt_cache_note(NULL, &a, 1000), IOA_EBADPARAM);
  assert_int_equal(ioa_rtt_cache_lookup(c, &u, NULL, NULL), IOA_EBADPARAM);
  assert_int_equal(ioa_rtt_cache_lookup(c, NULL, NULL, NULL), IOA_EBADPARAM);
  ioa_rtt_cache_clear(c);
  assert_int_equal(ioa_rtt_cache_lookup(c, &a, NULL, NULL), 0);
  ioa_rtt_cache_free(c);

  /* Bounded: 4 entries keep at most 4 of 100 prefixes. */
  ioa_rtt_cache_options o;
  ioa_rtt_cache_options_init(&o);
  o.max_entries = 4;
  assert_int_equal(ioa_rtt_cache_new(&o, &c), 0);
  char ip[32];
  for (int i = 0; i < 100; i++) {
    snprintf(ip, sizeof ip, "10.0.%d.1", i);
    ioa_addr x = inet4(ip, 1, SOCK_STREAM);
    assert_int_equal(ioa_rtt_cache_note(c, &x, 1000 + (uint32_t)i), 0);
  }
  int kept = 0;
  for (int i = 0; i < 100; i++) {
    snprintf(ip, sizeof ip, "10.0.%d.1", i);
    ioa_addr x = inet4(ip, 1, SOCK_STREAM);
    kept += ioa_rtt_cache_lookup(c, &x, NULL, NULL);
  }
  assert_true(kept >= 1 && kept <= 4);
  ioa_rtt_cache_free(c);

  /* Expiry: with a 1 ms lifetime, a sample 5 ms old is no longer used. */
  o.max_entries = 0;
  o.ttl_ms = 1;
  assert_int_equal(ioa_rtt_cache_new(&o, &c), 0);
  assert_int_equal(ioa_rtt_cache_note(c, &a, 1000), 0);
  usleep(5000);
  assert_int_equal(ioa_rtt_cache_lookup(c, &a, NULL, NULL), 0);
  ioa_rtt_cache_free(c);

  o.max_entries = 65537;
  assert_int_equal(ioa_rtt_cache_new(&o, &c), IOA_EBADPARAM);
  assert_int_equal(ioa_rtt_cache_new(NULL, NULL), IOA_EBADPARAM);
  /* The default is the loop's own: made once, the same each time, one per
   * loop (no state shared by accident), freed by ioa_loop_free (ASan and
   * the fd/heap checks would see a leak). */
  ioa_loop *l1 = ioa_test_new_loop(), *l2 = ioa_test_new_loop();
  ioa_rtt_cache *d1 = NULL, *d1b = NULL, *d2 = NULL;
  assert_int_equal(ioa_rtt_cache_default(l1, &d1), 0);
  assert_int_equal(ioa_rtt_cache_default(l1, &d1b), 0);
  assert_int_equal(ioa_rtt_cache_default(l2, &d2), 0);
  assert_ptr_equal(d1, d1b);
  assert_ptr_not_equal(d1, d2);
  assert_int_equal(ioa_rtt_cache_note(d1, &other, 1000), 0);
  assert_int_equal(ioa_rtt_cache_lookup(d1, &other, NULL, NULL), 1);
  assert_int_equal(ioa_rtt_cache_lookup(d2, &other, NULL, NULL), 0);
  assert_int_equal(ioa_rtt_cache_default(NULL, &d1), IOA_EBADPARAM);
  ioa_loop_free(l1);
  ioa_loop_free(l2);
}

/* One cache shared by threads (as loops on several threads would): run
 * under TSan, this is the data-race check. */
static void *rtt_thread(void *arg) {
  ioa_rtt_cache *c = arg;
  char ip[32];
  for (int i = 0; i < 2000; i++) {
    snprintf(ip, sizeof ip, "10.%d.%d.1", i % 7, i % 50);
    ioa_addr x = inet4(ip, 1, SOCK_STREAM);
    (void)ioa_rtt_cache_note(c, &x, 1000 + (uint32_t)i);
    (void)ioa_rtt_cache_lookup(c, &x, NULL, NULL);
  }
  return NULL;
}

static void rtt_cache_shared_between_threads(void **state) {
  (void)state;
  ioa_rtt_cache *c;
  assert_int_equal(ioa_rtt_cache_new(NULL, &c), 0);
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, rtt_thread, c), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  int kept = 0; /* 350 prefixes noted, 256 entries: some kept, no more than fit */
  char ip[32];
  for (int i = 0; i < 350; i++) {
    snprintf(ip, sizeof ip, "10.%d.%d.1", i % 7, i % 50);
    ioa_addr x = inet4(ip, 1, SOCK_STREAM);
    kept += ioa_rtt_cache_lookup(c, &x, NULL, NULL);
  }
  assert_true(kept >= 1 && kept <= 256);
  ioa_rtt_cache_free(c);
}

/* A racing request with a choice of addresses feeds its winner's RTT
 * (TCP_INFO) to the cache it names; the next racing request to that prefix
 * uses clamp(2 x RTT, 100 ms, 2 s) — on loopback the floor, so its second
 * attempt waits at least 100 ms.  With learned_delay off nothing is fed;
 * a single-address request has no choice and feeds nothing either. */
static void racing_requests_learn_the_rtt(void **state) {
  (void)state;
  blackhole b;
  if (blackhole_open(&b) < 0)
    skip();
  ioa_rtt_cache *cache;
  assert_int_equal(ioa_rtt_cache_new(NULL, &cache), 0);
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  ioa_addr live = inet4("127.0.0.1", port, SOCK_STREAM);
  ioa_addr two[2] = {live, live};
  for (int round = 0; round < 4; round++) {
    ctx c;
    new_loop(&c);
    ioa_connect_params p;
    params_for(&p, &c);
    p.mode = IOA_CONNECT_RACE;
    p.rtt_cache = cache;
    p.addrs = round == 1 ? &live : two;
    p.naddrs = round == 1 ? 1 : 2;
    p.learned_delay = round == 0 ? IOA_LEARNED_DELAY_OFF : IOA_LEARNED_DELAY_ON;
    assert_int_equal(start(&c, &p), 0);
    run(&c);
    assert_true(c.connected_fd >= 0);
    uint32_t rtt;
    unsigned delay;
    int known = ioa_rtt_cache_lookup(cache, &live, &rtt, &delay);
    if (round < 2) { /* off, then a single address: nothing learned */
      assert_int_equal(known, 0);
    } else {
      assert_int_equal(known, 1);
      assert_true(rtt > 0);
      assert_true(delay >= 100 && delay <= 2000);
    }
    finish(&c);
  }
  /* Now a black hole then the live address, no attempt delay given: the
   * second attempt waits the learned delay (at least the 100 ms floor). */
  ctx c;
  new_loop(&c);
  ioa_addr hole_live[2] = {inet4("127.0.0.1", b.port, SOCK_STREAM), live};
  ioa_connect_params p;
  params_for(&p, &c);
  p.mode = IOA_CONNECT_RACE;
  p.rtt_cache = cache;
  p.addrs = hole_live;
  p.naddrs = 2;
  p.on_attempt = on_attempt;
  uint64_t t0 = ioa_loop_update_time(c.loop);
  assert_int_equal(start(&c, &p), 0);
  run(&c);
  assert_int_equal(c.nattempt, 2);
  assert_int_equal(addr_port(&c.peer), port);
  assert_true(ioa_loop_update_time(c.loop) - t0 >= 100 * 1000000ull);
  finish(&c);
  close(lfd);
  blackhole_close(&b);
  ioa_rtt_cache_free(cache);
}

static void he_starts_with_resolver_first_family(void **state) {
  (void)state;
  ioa_test_in_netns("--he-order-helper",
                    "Happy Eyeballs did not start with getaddrinfo's first family (see stderr)",
                    "unshare -n -m or the gai.conf premise unavailable");
}

#if IOA_TEST_HAVE_DNS_FIXTURE
static void he_partial_starts_with_rfc6724_first_family(void **state) {
  (void)state;
  ioa_test_in_netns("--he-partial-order-helper",
                    "Happy Eyeballs with answers per family did not start with the family "
                    "RFC 6724 ranks first (see stderr)",
                    "unshare -n -m, IPv6 or c-ares unavailable");
}
#endif

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--he-order-helper") == 0)
    return he_order_helper();
#if IOA_TEST_HAVE_DNS_FIXTURE
  if (argc > 1 && strcmp(argv[1], "--he-partial-order-helper") == 0)
    return he_partial_order_helper();
#endif

  const struct CMUnitTest tests[] = {
      IOA_TEST(refused_v6_then_listening_v4),
      IOA_TEST(address_list_in_turn),
      IOA_TEST(all_fail_reports_most_significant_later),
      IOA_TEST(immediate_socket_failure_is_deferred),
      IOA_TEST(no_candidates_is_an_error),
      IOA_TEST(unix_stream_and_dgram),
      IOA_TEST(connected_udp),
      IOA_TEST(raw_socket),
      IOA_TEST(local_bind),
      IOA_TEST(local_bind_failure_ranks_bind),
      IOA_TEST(sockopt_hook_and_veto),
      IOA_TEST(attempt_timeout_on_black_hole),
      IOA_TEST(overall_timeout),
      IOA_TEST(race_black_hole_then_live),
      IOA_TEST(cancel_from_on_fail),
      IOA_TEST(cancel_from_on_attempt),
      IOA_TEST(cancel_from_completion_is_harmless),
      IOA_TEST(cancel_right_after_start),
      IOA_TEST(cancel_with_several_attempts_in_flight),
      IOA_TEST(warning_rule),
      IOA_TEST(warning_unspecified_address),
      IOA_TEST(bad_params),
      IOA_TEST(malformed_addresses_refused_at_start),
      IOA_TEST(on_stream_hands_a_stream),
      IOA_TEST(on_socket_hands_a_socket),
      IOA_TEST(socktype_zero_is_stream),
      IOA_TEST(on_stream_never_takes_udp),
      IOA_TEST(on_socket_by_name_skips_stream),
      IOA_TEST(stream_options_reach_the_stream),
      IOA_TEST(socket_options_reach_the_socket),
      IOA_TEST(bad_options_refused),
      IOA_TEST(warning_without_hook_goes_to_stderr),
      IOA_TEST(resolve_localhost_and_cancel_in_on_resolved),
      IOA_TEST(hosts_name_answered_inside_connect),
      IOA_TEST(resolve_error_is_deferred_with_message),
      IOA_TEST(host_service_modes_and_local_host),
      IOA_TEST(host_service_black_hole_times_out),
      IOA_TEST(failures_list_stays_valid),
      IOA_TEST(cancel_from_warning_ends_callbacks),
      IOA_TEST(he_starts_with_resolver_first_family),
#if IOA_TEST_HAVE_DNS_FIXTURE
      IOA_TEST(he_partial_starts_with_rfc6724_first_family),
#endif
      IOA_TEST(race_more_black_holes_than_slots),
      IOA_TEST(first_family_count_orders_attempts),
      IOA_TEST(new_params_checked_and_short_layout_refused),
      IOA_TEST(by_name_single_address_every_exit),
      IOA_TEST(rtt_cache_rules),
      IOA_TEST(rtt_cache_shared_between_threads),
      IOA_TEST(racing_requests_learn_the_rtt),
#if IOA_TEST_HAVE_DNS_FIXTURE
      IOA_TEST(he_black_holed_ipv6_falls_back_to_ipv4),
      IOA_TEST(he_late_aaaa_ipv4_after_resolution_delay),
      IOA_TEST(overall_timeout_while_resolving),
#endif
#ifdef IOA_FAULT_INJECTION
      IOA_TEST(fault_sweep_connect),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
