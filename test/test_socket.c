/* SPDX-License-Identifier: MIT */
/* ioa_socket tests: loopback UDP and unix datagram sockets only. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A UDP socket bound to 127.0.0.1:0; *addr gets its address, filled field by
 * field (the address module is not needed for this). */
static int udp_bound(ioa_addr *addr) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  memset(addr, 0, sizeof *addr);
  addr->family = AF_INET;
  addr->socktype = SOCK_DGRAM;
  addr->addrlen = sizeof addr->addr;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&addr->addr, &addr->addrlen), 0);
  return fd;
}

static int addr_port(const ioa_addr *a) {
  return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
}

typedef struct rx_ctx {
  int packets;
  size_t bytes;
  char last[128];
  size_t lastlen;
  ioa_addr from;
  int have_from;
  int order_ok;
  int errors;
  int err;
  const char *syscall;
  int drains;
  int closed;
  int want; /* set done when packets reaches want */
  int done;
  int echo;  /* send each packet back to its sender */
  int free_in_recv;
  int freed;
  int after_free;
} rx_ctx;

static void rx_recv(ioa_socket *s, const uint8_t *buf, size_t len, const ioa_addr *from,
                    void *data) {
  rx_ctx *c = data;
  if (c->freed) {
    c->after_free++;
    return;
  }
  /* Packets carry their sequence number: check they arrive whole, in order. */
  char expect[32];
  snprintf(expect, sizeof expect, "packet %d", c->packets);
  if (len != strlen(expect) || memcmp(buf, expect, len) != 0)
    c->order_ok = 0;
  c->packets++;
  c->bytes += len;
  c->lastlen = len < sizeof c->last ? len : sizeof c->last;
  memcpy(c->last, buf, c->lastlen);
  c->have_from = from != NULL;
  if (from)
    c->from = *from;
  if (c->echo)
    assert_int_equal(ioa_socket_send(s, buf, len, from), 0);
  if (c->free_in_recv) {
    ioa_socket_free(s);
    c->freed = 1;
    return;
  }
  if (c->want && c->packets >= c->want)
    c->done = 1;
}

static void rx_error(ioa_socket *s, const char *syscall, int err, void *data) {
  (void)s;
  rx_ctx *c = data;
  c->errors++;
  c->err = err;
  c->syscall = syscall;
}

static void rx_drain(ioa_socket *s, void *data) {
  (void)s;
  ((rx_ctx *)data)->drains++;
}

static void rx_closed(ioa_socket *s, void *data) {
  (void)s;
  rx_ctx *c = data;
  c->closed++;
}

static const ioa_socket_callbacks rx_cbs = {.struct_size = sizeof(ioa_socket_callbacks),
    .on_recv = rx_recv, .on_error = rx_error, .on_drain = rx_drain, .on_closed = rx_closed};

static void test_new_errors(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_socket *s = (ioa_socket *)1;
  assert_int_equal(ioa_socket_new(loop, -1, NULL, &s), IOA_EBADPARAM);
  assert_null(s);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  assert_int_equal(ioa_socket_new(loop, sv[0], NULL, &s), IOA_EBADPARAM); /* a stream */
  close(sv[0]);
  close(sv[1]);
  int pfd[2];
  assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
  assert_int_equal(ioa_socket_new(loop, pfd[0], NULL, &s), -ENOTSOCK);
  close(pfd[0]);
  close(pfd[1]);
  ioa_addr a;
  int fd = udp_bound(&a);
  ioa_socket_options bad = {.struct_size = sizeof(ioa_socket_options), .batch = 5000};
  assert_int_equal(ioa_socket_new(loop, fd, &bad, &s), IOA_EBADPARAM);
  assert_int_equal(ioa_socket_new(loop, fd, NULL, &s), 0);
  ioa_addr broken = a;
  broken.addrlen = 0;
  assert_int_equal(ioa_socket_send(s, "x", 1, &broken), IOA_EBADPARAM);
  ioa_socket_close(s);
  assert_int_equal(ioa_socket_fd(s), -1);
  assert_int_equal(ioa_socket_send(s, "x", 1, &a), -EBADF);
  ioa_socket_free(s);
  ioa_loop_free(loop);
}

/* Many packets to an address and back, with batching (recvmmsg/sendmmsg) or
 * without (batch 1). */
static void udp_round_trip(unsigned batch) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_addr addr_a, addr_b;
  int fa = udp_bound(&addr_a);
  int fb = udp_bound(&addr_b);
  ioa_socket_options o = {.struct_size = sizeof(ioa_socket_options), .batch = batch};
  ioa_socket *a, *b;
  assert_int_equal(ioa_socket_new(loop, fa, &o, &a), 0);
  assert_int_equal(ioa_socket_new(loop, fb, &o, &b), 0);
  enum { N = 200 };
  rx_ctx ca = {.order_ok = 1, .want = N}, cb = {.order_ok = 1, .echo = 1};
  ioa_socket_set_callbacks(a, &rx_cbs, &ca);
  ioa_socket_set_callbacks(b, &rx_cbs, &cb);
  for (int i = 0; i < N; i++) {
    char msg[32];
    int n = snprintf(msg, sizeof msg, "packet %d", i);
    assert_int_equal(ioa_socket_send(a, msg, (size_t)n, &addr_b), 0);
  }
  assert_int_equal(ioa_socket_queued(a), N);
  assert_int_equal(ca.drains, 0); /* nothing from inside send */
  assert_int_equal(ioa_test_run_ticking(loop, &ca.done, 10000), 0);
  assert_int_equal(ca.packets, N);
  assert_int_equal(cb.packets, N);
  assert_true(ca.order_ok);
  assert_true(cb.order_ok);
  assert_int_equal(ca.errors + cb.errors, 0);
  assert_true(ca.drains >= 1);
  /* The sender address is b's, with the socket's type. */
  assert_true(ca.have_from);
  assert_int_equal(ca.from.family, AF_INET);
  assert_int_equal(ca.from.socktype, SOCK_DGRAM);
  assert_int_equal(addr_port(&ca.from), addr_port(&addr_b));
  assert_int_equal(addr_port(&cb.from), addr_port(&addr_a));
  ioa_socket_close(a);
  ioa_socket_close(b);
  ioa_test_run_for(loop, 30);
  assert_int_equal(ca.closed, 1);
  assert_int_equal(cb.closed, 1);
  ioa_socket_free(a);
  ioa_socket_free(b);
  ioa_loop_free(loop);
}

static void test_udp_round_trip_batched(void **state) {
  (void)state;
  udp_round_trip(0);
}

static void test_udp_round_trip_single(void **state) {
  (void)state;
  udp_round_trip(1);
}

/* Unix datagrams: a connected socketpair (to == NULL) and named sockets
 * addressed explicitly (abstract names, nothing on disk). */
static void test_unix_dgram_round_trip(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
  ioa_socket *a, *b;
  assert_int_equal(ioa_socket_new(loop, sv[0], NULL, &a), 0);
  assert_int_equal(ioa_socket_new(loop, sv[1], NULL, &b), 0);
  rx_ctx ca = {.order_ok = 1, .want = 3}, cb = {.order_ok = 1, .echo = 0};
  ioa_socket_set_callbacks(a, &rx_cbs, &ca);
  ioa_socket_set_callbacks(b, &rx_cbs, &cb);
  for (int i = 0; i < 3; i++) {
    char msg[32];
    int n = snprintf(msg, sizeof msg, "packet %d", i);
    assert_int_equal(ioa_socket_send(b, msg, (size_t)n, NULL), 0);
  }
  assert_int_equal(ioa_test_run_ticking(loop, &ca.done, 5000), 0);
  assert_true(ca.order_ok);
  assert_false(ca.have_from); /* an unnamed peer has no address */
  ioa_socket_free(a);
  ioa_socket_free(b);

  /* Named (abstract) sockets: send to an address, reply to the sender. */
  ioa_addr names[2];
  int fds[2];
  for (int i = 0; i < 2; i++) {
    memset(&names[i], 0, sizeof names[i]);
    struct sockaddr_un *sun = (struct sockaddr_un *)&names[i].addr;
    sun->sun_family = AF_UNIX;
    int n = snprintf(sun->sun_path + 1, sizeof sun->sun_path - 1, "ioa-test-%ld-%d",
                     (long)getpid(), i);
    names[i].family = AF_UNIX;
    names[i].socktype = SOCK_DGRAM;
    names[i].addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    fds[i] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fds[i] >= 0);
    assert_int_equal(bind(fds[i], (struct sockaddr *)&names[i].addr, names[i].addrlen), 0);
  }
  assert_int_equal(ioa_socket_new(loop, fds[0], NULL, &a), 0);
  assert_int_equal(ioa_socket_new(loop, fds[1], NULL, &b), 0);
  rx_ctx na = {.order_ok = 1, .want = 5}, nb = {.order_ok = 1, .echo = 1};
  ioa_socket_set_callbacks(a, &rx_cbs, &na);
  ioa_socket_set_callbacks(b, &rx_cbs, &nb);
  for (int i = 0; i < 5; i++) {
    char msg[32];
    int n = snprintf(msg, sizeof msg, "packet %d", i);
    assert_int_equal(ioa_socket_send(a, msg, (size_t)n, &names[1]), 0);
  }
  assert_int_equal(ioa_test_run_ticking(loop, &na.done, 5000), 0);
  assert_true(na.order_ok);
  assert_true(nb.have_from);
  assert_int_equal(nb.from.family, AF_UNIX);
  assert_int_equal(nb.from.addrlen, names[0].addrlen);
  assert_memory_equal(&nb.from.addr, &names[0].addr, names[0].addrlen);
  ioa_socket_free(a);
  ioa_socket_free(b);
  ioa_loop_free(loop);
}

/* A connected UDP socket to a port nobody listens on: ICMP port unreachable
 * comes back as ECONNREFUSED, reported without closing the socket. */
static void test_connected_udp_refused(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_addr closed;
  int tmp = udp_bound(&closed);
  close(tmp); /* nothing listens there now */
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&closed.addr, closed.addrlen), 0);
  ioa_socket *s;
  assert_int_equal(ioa_socket_new(loop, fd, NULL, &s), 0);
  rx_ctx c = {.order_ok = 1};
  ioa_socket_set_callbacks(s, &rx_cbs, &c);
  assert_int_equal(ioa_socket_send(s, "ping", 4, NULL), 0);
  assert_int_equal(ioa_test_run_ticking(loop, &c.errors, 5000), 0);
  assert_int_equal(c.err, -ECONNREFUSED);
  assert_non_null(c.syscall);
  assert_int_equal(c.closed, 0);
  assert_int_equal(ioa_socket_fd(s), fd); /* still open */
  /* And still usable: the next send meets the next refusal. */
  int before = c.errors;
  assert_int_equal(ioa_socket_send(s, "ping", 4, NULL), 0);
  for (int i = 0; i < 250 && c.errors == before; i++)
    ioa_test_run_for(loop, 20);
  assert_int_equal(c.errors, before + 1);
  assert_int_equal(c.err, -ECONNREFUSED);
  assert_int_equal(c.closed, 0);
  ioa_socket_free(s);
  ioa_loop_free(loop);
}

/* A packet larger than max_packet is reported, never handed over cut. */
static void test_oversized_packet_reported(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_addr addr_a, addr_b;
  int fa = udp_bound(&addr_a);
  int fb = udp_bound(&addr_b);
  ioa_socket_options small = {.struct_size = sizeof(ioa_socket_options), .max_packet = 16, .batch = 4};
  ioa_socket *a, *b;
  assert_int_equal(ioa_socket_new(loop, fa, NULL, &a), 0);
  assert_int_equal(ioa_socket_new(loop, fb, &small, &b), 0);
  rx_ctx ca = {.order_ok = 1}, cb = {.order_ok = 1, .want = 1};
  ioa_socket_set_callbacks(a, &rx_cbs, &ca);
  ioa_socket_set_callbacks(b, &rx_cbs, &cb);
  char big[100];
  memset(big, 'z', sizeof big);
  assert_int_equal(ioa_socket_send(a, big, sizeof big, &addr_b), 0);
  assert_int_equal(ioa_socket_send(a, "packet 0", 8, &addr_b), 0);
  assert_int_equal(ioa_test_run_ticking(loop, &cb.done, 5000), 0);
  assert_int_equal(cb.errors, 1);
  assert_int_equal(cb.err, -EMSGSIZE);
  assert_int_equal(cb.packets, 1);
  assert_true(cb.order_ok);
  ioa_socket_free(a);
  ioa_socket_free(b);
  ioa_loop_free(loop);
}

/* A seqpacket pair: packets keep their boundaries; the peer closing is EOF
 * and closes the socket once. */
static void test_seqpacket_eof_closes(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  ioa_socket *a;
  assert_int_equal(ioa_socket_new(loop, sv[0], NULL, &a), 0);
  rx_ctx c = {.order_ok = 1};
  ioa_socket_set_callbacks(a, &rx_cbs, &c);
  assert_int_equal(send(sv[1], "packet 0", 8, 0), 8);
  assert_int_equal(send(sv[1], "packet 1", 8, 0), 8);
  close(sv[1]);
  assert_int_equal(ioa_test_run_ticking(loop, &c.closed, 5000), 0);
  assert_int_equal(c.packets, 2);
  assert_true(c.order_ok);
  ioa_test_run_for(loop, 30);
  assert_int_equal(c.closed, 1);
  assert_int_equal(ioa_socket_fd(a), -1);
  ioa_socket_free(a);
  ioa_loop_free(loop);
}

/* More packets than the kernel takes at once: the queue waits for
 * writability (EAGAIN) and everything arrives, in order, once the reader
 * catches up. */
static void test_send_queue_waits_for_room(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
  ioa_socket *a, *b;
  assert_int_equal(ioa_socket_new(loop, sv[0], NULL, &a), 0);
  assert_int_equal(ioa_socket_new(loop, sv[1], NULL, &b), 0);
  enum { N = 3000 };
  rx_ctx ca = {.order_ok = 1}, cb = {.order_ok = 1, .want = N};
  ioa_socket_set_callbacks(a, &rx_cbs, &ca);
  ioa_socket_pause_recv(b);
  ioa_socket_set_callbacks(b, &rx_cbs, &cb);
  for (int i = 0; i < N; i++) {
    char msg[32];
    int n = snprintf(msg, sizeof msg, "packet %d", i);
    assert_int_equal(ioa_socket_send(a, msg, (size_t)n, NULL), 0);
  }
  ioa_test_run_for(loop, 50);
  size_t stuck = ioa_socket_queued(a);
  assert_true(stuck > 0); /* the reader is paused: the kernel is full */
  assert_int_equal(ca.drains, 0);
  assert_int_equal(ca.errors, 0);
  ioa_socket_resume_recv(b);
  assert_int_equal(ioa_test_run_ticking(loop, &cb.done, 10000), 0);
  assert_int_equal(cb.packets, N);
  assert_true(cb.order_ok);
  assert_int_equal(ioa_socket_queued(a), 0);
  assert_int_equal(ca.drains, 1);
  ioa_socket_free(a);
  ioa_socket_free(b);
  ioa_loop_free(loop);
}

/* Pausing stops delivery; packets wait in the kernel until resume. */
static void test_pause_resume(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
  ioa_socket *a;
  assert_int_equal(ioa_socket_new(loop, sv[0], NULL, &a), 0);
  rx_ctx c = {.order_ok = 1, .want = 2};
  ioa_socket_pause_recv(a);
  ioa_socket_set_callbacks(a, &rx_cbs, &c);
  assert_int_equal(send(sv[1], "packet 0", 8, 0), 8);
  assert_int_equal(send(sv[1], "packet 1", 8, 0), 8);
  ioa_test_run_for(loop, 50);
  assert_int_equal(c.packets, 0);
  ioa_socket_resume_recv(a);
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 5000), 0);
  assert_int_equal(c.packets, 2);
  assert_true(c.order_ok);
  ioa_socket_free(a);
  close(sv[1]);
  ioa_loop_free(loop);
}

/* Free from inside on_recv (with more packets in the same batch), on_error,
 * on_drain and on_closed: nothing runs afterwards, nothing leaks. */
typedef struct sfree_ctx {
  int where; /* 0 recv, 1 error, 2 drain, 3 closed */
  int freed;
  int after;
} sfree_ctx;

static void sfree_maybe(ioa_socket *s, sfree_ctx *c, int here) {
  if (c->freed) {
    c->after++;
    return;
  }
  if (c->where == here) {
    ioa_socket_free(s);
    c->freed = 1;
  }
}
static void sfree_recv(ioa_socket *s, const uint8_t *b, size_t l, const ioa_addr *f, void *d) {
  (void)b;
  (void)l;
  (void)f;
  sfree_maybe(s, d, 0);
}
static void sfree_error(ioa_socket *s, const char *sc, int e, void *d) {
  (void)sc;
  (void)e;
  sfree_maybe(s, d, 1);
}
static void sfree_drain(ioa_socket *s, void *d) { sfree_maybe(s, d, 2); }
static void sfree_closed(ioa_socket *s, void *d) { sfree_maybe(s, d, 3); }

static void test_free_in_each_callback(void **state) {
  (void)state;
  for (int w = 0; w < 4; w++) {
    ioa_loop *loop = ioa_test_new_loop();
    ioa_addr closed;
    int tmp = udp_bound(&closed);
    close(tmp);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    ioa_addr me;
    int peer = udp_bound(&me);
    ioa_socket *s;
    sfree_ctx c = {.where = w};
    if (w == 1)
      assert_int_equal(connect(fd, (struct sockaddr *)&closed.addr, closed.addrlen), 0);
    else
      assert_int_equal(connect(fd, (struct sockaddr *)&me.addr, me.addrlen), 0);
    assert_int_equal(ioa_socket_new(loop, fd, NULL, &s), 0);
    ioa_socket_callbacks cbs = {.struct_size = sizeof(ioa_socket_callbacks), .on_recv = sfree_recv, .on_error = sfree_error,
                                .on_drain = sfree_drain, .on_closed = sfree_closed};
    ioa_socket_set_callbacks(s, &cbs, &c);
    if (w == 0) {
      struct sockaddr_storage ss;
      socklen_t len = sizeof ss;
      assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
      for (int i = 0; i < 3; i++)
        assert_int_equal(sendto(peer, "abc", 3, 0, (struct sockaddr *)&ss, len), 3);
    } else if (w == 1 || w == 2) {
      assert_int_equal(ioa_socket_send(s, "ping", 4, NULL), 0);
    } else {
      ioa_socket_close(s);
    }
    assert_int_equal(ioa_test_run_ticking(loop, &c.freed, 5000), 0);
    ioa_test_run_for(loop, 30);
    assert_int_equal(c.after, 0);
    close(peer);
    ioa_loop_free(loop);
  }
}

#ifdef IOA_FAULT_INJECTION
#include "fault.h"

/* Fault sweep over a UDP exchange: every injected failure surfaces as a
 * return code or on_error, the sockets stay usable, nothing leaks. */
static void test_fault_sweep(void **state) {
  (void)state;
  static const struct {
    ioa__fault_op op;
    int err;
  } kinds[] = {{IOA_FOP_MALLOC, ENOMEM},     {IOA_FOP_RECVMSG, EIO},     {IOA_FOP_SENDMSG, EIO},
               {IOA_FOP_EPOLL_CTL, ENOMEM}, {IOA_FOP_GETSOCKOPT, EIO}, {IOA_FOP_FCNTL, EBADF}};
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    for (unsigned long nth = 1; nth < 400; nth++) {
      ioa_loop *loop = ioa_test_new_loop();
      ioa_timer wake;
      ioa_timer_init(loop, &wake, ioa_test_wake_cb, NULL);
      assert_int_equal(ioa_timer_start(&wake, 20000000, 20000000), 0);
      ioa_addr addr[2];
      int fds[2] = {udp_bound(&addr[0]), udp_bound(&addr[1])};
      rx_ctx ctx[2] = {{.order_ok = 1, .want = 3}, {.order_ok = 1, .want = 3}};
      ioa_socket *so[2] = {NULL, NULL};
      ioa__fault_arm(nth, 1ul << kinds[k].op, kinds[k].err);
      for (int i = 0; i < 2; i++) {
        if (ioa_socket_new(loop, fds[i], i ? &(ioa_socket_options){.struct_size = sizeof(ioa_socket_options), .batch = 1} : NULL,
                           &so[i]) < 0) {
          close(fds[i]);
          so[i] = NULL;
          continue;
        }
        ioa_socket_set_callbacks(so[i], &rx_cbs, &ctx[i]);
      }
      int queued = 0;
      for (int i = 0; i < 3 && so[0]; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "packet %d", i);
        if (ioa_socket_send(so[0], msg, (size_t)n, &addr[1]) == 0)
          queued++;
      }
      (void)ioa_test_run_until(loop, &ctx[1].done, 300);
      int fired = ioa__fault_fired();
      ioa__fault_arm(0, 0, 0);
      assert_true(ctx[1].packets <= queued);
      if (!fired) {
        assert_int_equal(ctx[1].packets, 3);
        assert_true(ctx[1].order_ok);
        assert_int_equal(ctx[0].errors + ctx[1].errors, 0);
      }
      for (int i = 0; i < 2; i++)
        ioa_socket_free(so[i]);
      ioa_timer_stop(&wake);
      ioa_loop_free(loop);
      if (!fired)
        break;
    }
  }
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_new_errors),
      IOA_TEST(test_udp_round_trip_batched),
      IOA_TEST(test_udp_round_trip_single),
      IOA_TEST(test_unix_dgram_round_trip),
      IOA_TEST(test_connected_udp_refused),
      IOA_TEST(test_oversized_packet_reported),
      IOA_TEST(test_seqpacket_eof_closes),
      IOA_TEST(test_send_queue_waits_for_room),
      IOA_TEST(test_pause_resume),
      IOA_TEST(test_free_in_each_callback),
#ifdef IOA_FAULT_INJECTION
      IOA_TEST(test_fault_sweep),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
