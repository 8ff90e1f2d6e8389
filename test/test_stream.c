/* SPDX-License-Identifier: MIT */
/* ioa_stream tests: loopback TCP and unix socketpairs only. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------ fixtures */

/* A connected loopback TCP pair: *a from connect(), *b from accept(). */
static void tcp_pair(int *a, int *b) {
  int port = 0;
  int lfd = ioa_test_listen_tcp(AF_INET, 4, &port);
  assert_true(lfd >= 0);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(c >= 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof sin), 0);
  /* The handshake is complete on loopback once connect() returns. */
  struct pollfd pfd = {.fd = lfd, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, 5000), 1);
  int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  assert_true(s >= 0);
  close(lfd);
  *a = c;
  *b = s;
}

static void unix_pair(int *a, int *b) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  *a = sv[0];
  *b = sv[1];
}

/* Blocking read from a raw fd with a poll bound. */
static ssize_t read_some(int fd, void *buf, size_t len, int timeout_ms) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  if (poll(&pfd, 1, timeout_ms) != 1)
    return -ETIMEDOUT;
  ssize_t n = read(fd, buf, len);
  return n < 0 ? -errno : n;
}

/* Order-sensitive 64-bit checksum over a byte stream delivered in arbitrary
 * pieces (FNV-1a over 8-byte words, carrying partial words across calls). */
typedef struct cksum {
  uint64_t h;
  uint64_t total;
  uint8_t tail[8];
  size_t ntail;
} cksum;

static void cksum_init(cksum *c) { memset(c, 0, sizeof *c), c->h = 1469598103934665603ull; }

static void cksum_word(cksum *c, uint64_t w) { c->h = (c->h ^ w) * 1099511628211ull; }

static void cksum_feed(cksum *c, const uint8_t *p, size_t n) {
  c->total += n;
  while (n && c->ntail) {
    c->tail[c->ntail++] = *p++;
    n--;
    if (c->ntail == 8) {
      uint64_t w;
      memcpy(&w, c->tail, 8);
      cksum_word(c, w);
      c->ntail = 0;
    }
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    cksum_word(c, w);
    p += 8;
    n -= 8;
  }
  while (n--)
    c->tail[c->ntail++] = *p++;
}

static uint64_t cksum_final(cksum *c) {
  uint64_t w = 0;
  memcpy(&w, c->tail, c->ntail);
  cksum_word(c, w ^ (c->total << 3));
  return c->h;
}

/* Deterministic pseudo-random bytes (xorshift64*). */
static void fill_random(uint64_t *state, uint8_t *buf, size_t len) {
  uint64_t x = *state;
  for (size_t i = 0; i + 8 <= len; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t v = x * 2685821657736338717ull;
    memcpy(buf + i, &v, 8);
  }
  for (size_t i = len & ~(size_t)7; i < len; i++)
    buf[i] = (uint8_t)(x >> (8 * (i & 7)));
  *state = x;
}

/* ------------------------------------------------------------ basics */

static void test_new_errors(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  ioa_stream *s = (ioa_stream *)1;
  assert_int_equal(ioa_stream_new(loop, -1, NULL, &s), IOA_EBADPARAM);
  assert_null(s);
  int a, b;
  unix_pair(&a, &b);
  ioa_stream_options bad = {.struct_size = sizeof(ioa_stream_options), .high_water = 100, .low_water = 100};
  assert_int_equal(ioa_stream_new(loop, a, &bad, &s), IOA_EBADPARAM);
  ioa_stream_options huge = {.struct_size = sizeof(ioa_stream_options), .read_size = (size_t)1 << 40};
  assert_int_equal(ioa_stream_new(loop, a, &huge, &s), IOA_EBADPARAM);
  /* The fd is still ours after a failure. */
  assert_int_equal(ioa_stream_new(loop, a, NULL, &s), 0);
  assert_int_equal(ioa_stream_fd(s), a);
  assert_int_equal(ioa_stream_write(s, "x", 0), 0);
  assert_int_equal(ioa_stream_queued(s), 0);
  ioa_stream_close(s);
  assert_int_equal(ioa_stream_fd(s), -1);
  assert_int_equal(ioa_stream_write(s, "x", 1), -EBADF);
  assert_int_equal(ioa_stream_shutdown_write(s), -EBADF);
  ioa_stream_free(s);
  close(b);
  ioa_loop_free(loop);
}

typedef struct echo_ctx {
  char got[256];
  size_t ngot;
  int reads;
  int eofs;
  int closed;
  int drains;
  int errors;
  int err;
  const char *syscall;
  size_t consume_upto; /* 0: consume everything */
  int line_mode;
  int done;
} echo_ctx;

static size_t ctx_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)s;
  echo_ctx *c = data;
  c->reads++;
  if (eof)
    c->eofs++;
  if (c->line_mode) {
    const uint8_t *nl = memchr(buf, '\n', len);
    if (!nl)
      return 0;
    size_t n = (size_t)(nl - buf) + 1;
    if (c->ngot + n <= sizeof c->got) {
      memcpy(c->got + c->ngot, buf, n);
      c->ngot += n;
    }
    return n;
  }
  if (len && c->ngot + len <= sizeof c->got) {
    memcpy(c->got + c->ngot, buf, len);
    c->ngot += len;
  }
  return len;
}

static void ctx_error(ioa_stream *s, const char *syscall, int err, void *data) {
  (void)s;
  echo_ctx *c = data;
  c->errors++;
  c->err = err;
  c->syscall = syscall;
}

static void ctx_closed(ioa_stream *s, void *data) {
  (void)s;
  echo_ctx *c = data;
  c->closed++;
  c->done = 1;
}

static void ctx_drain(ioa_stream *s, void *data) {
  (void)s;
  ((echo_ctx *)data)->drains++;
}

static const ioa_stream_callbacks ctx_cbs = {.struct_size = sizeof(ioa_stream_callbacks),
    .on_read = ctx_read, .on_error = ctx_error, .on_drain = ctx_drain, .on_closed = ctx_closed};

/* A stream on fd (with o, or defaults) reporting into c through ctx_cbs. */
static ioa_stream *ctx_stream(ioa_loop *loop, int fd, const ioa_stream_options *o, echo_ctx *c) {
  ioa_stream *s;
  assert_int_equal(ioa_stream_new(loop, fd, o, &s), 0);
  ioa_stream_set_callbacks(s, &ctx_cbs, c);
  return s;
}

/* Writes are deferred: nothing reaches the socket inside ioa_stream_write,
 * and one loop iteration flushes thousands of small writes together. */
static void test_small_writes_coalesced(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  unix_pair(&a, &b);
  int big = 1 << 20;
  assert_int_equal(setsockopt(b, SOL_SOCKET, SO_RCVBUF, &big, sizeof big), 0);
  assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
  echo_ctx c = {0};
  ioa_stream *s = ctx_stream(loop, a, NULL, &c);
  char msg[10];
  for (int i = 0; i < 10000; i++) {
    snprintf(msg, sizeof msg, "%09d", i);
    assert_int_equal(ioa_stream_write(s, msg, 10), 0);
  }
  assert_int_equal(ioa_stream_queued(s), 100000);
  int avail = -1;
  assert_int_equal(ioctl(b, FIONREAD, &avail), 0);
  assert_int_equal(avail, 0); /* nothing written from inside write() */
  assert_int_equal(c.drains, 0);
  /* One iteration: the deferred flush writes everything. */
  assert_true(ioa_loop_run(loop, IOA_RUN_NOWAIT) >= 0);
  assert_int_equal(ioa_stream_queued(s), 0);
  assert_int_equal(ioctl(b, FIONREAD, &avail), 0);
  assert_int_equal(avail, 100000);
  assert_int_equal(c.drains, 1);
  static char buf[100000];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = read_some(b, buf + got, sizeof buf - got, 2000);
    assert_true(n > 0);
    got += (size_t)n;
  }
  for (int i = 0; i < 10000; i++) {
    snprintf(msg, sizeof msg, "%09d", i);
    assert_memory_equal(buf + 10 * i, msg, 10);
  }
  ioa_stream_free(s);
  close(b);
  ioa_loop_free(loop);
}

/* on_read is re-invoked while it consumes something: one message per call. */
static void test_read_one_message_per_call(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  unix_pair(&a, &b);
  echo_ctx c = {.line_mode = 1};
  ioa_stream *s = ctx_stream(loop, a, NULL, &c);
  assert_int_equal(write(b, "l1\nl2\nl3\npartial", 16), 16);
  close(b);
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 5000), 0);
  assert_int_equal(c.ngot, 9);
  assert_memory_equal(c.got, "l1\nl2\nl3\n", 9);
  assert_int_equal(c.eofs, 1);
  assert_int_equal(c.closed, 1);
  ioa_stream_free(s);
  ioa_loop_free(loop);
}

/* Unconsumed bytes stay and come back with more; at EOF they are offered
 * with eof = 1. */
typedef struct unconsumed_ctx {
  size_t lens[16];
  int eofs[16];
  char last[64];
  int calls;
  int closed;
} unconsumed_ctx;

static size_t keep_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)s;
  unconsumed_ctx *c = data;
  if (c->calls < 16) {
    c->lens[c->calls] = len;
    c->eofs[c->calls] = eof;
  }
  c->calls++;
  if (len < sizeof c->last) {
    memcpy(c->last, buf, len);
    c->last[len] = 0;
  }
  return 0;
}

static void keep_closed(ioa_stream *s, void *data) {
  (void)s;
  ((unconsumed_ctx *)data)->closed++;
}

static void test_eof_with_unconsumed(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  tcp_pair(&a, &b);
  ioa_stream *s;
  assert_int_equal(ioa_stream_new(loop, a, NULL, &s), 0);
  unconsumed_ctx c = {0};
  ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = keep_read, .on_closed = keep_closed};
  ioa_stream_set_callbacks(s, &cbs, &c);
  assert_int_equal(write(b, "ab", 2), 2);
  assert_int_equal(ioa_test_run_ticking(loop, &c.calls, 5000), 0);
  assert_int_equal(c.lens[0], 2);
  assert_int_equal(c.eofs[0], 0);
  /* Returning 0 consumed nothing: the callback is not called again until
   * more data arrives. */
  ioa_test_run_for(loop, 50);
  assert_int_equal(c.calls, 1);
  assert_int_equal(write(b, "cd", 2), 2);
  for (int i = 0; i < 250 && c.calls < 2; i++)
    ioa_test_run_for(loop, 20);
  assert_int_equal(c.calls, 2);
  assert_int_equal(c.lens[1], 4);
  assert_string_equal(c.last, "abcd");
  close(b);
  assert_int_equal(ioa_test_run_ticking(loop, &c.closed, 5000), 0);
  assert_int_equal(c.calls, 3);
  assert_int_equal(c.lens[2], 4);
  assert_int_equal(c.eofs[2], 1);
  assert_string_equal(c.last, "abcd");
  assert_int_equal(c.closed, 1);
  ioa_stream_free(s);
  ioa_loop_free(loop);
}

/* Pause inside on_read stops offers at once; resume re-offers what is
 * buffered plus what arrived meanwhile. */
typedef struct pause_ctx {
  int calls;
  size_t lastlen;
  char buf[64];
  int paused_once;
} pause_ctx;

static size_t pause_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)eof;
  pause_ctx *c = data;
  c->calls++;
  c->lastlen = len;
  if (len < sizeof c->buf) {
    memcpy(c->buf, buf, len);
    c->buf[len] = 0;
  }
  if (!c->paused_once) {
    c->paused_once = 1;
    ioa_stream_pause_read(s);
    return 0;
  }
  return len;
}

static void test_pause_resume(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  unix_pair(&a, &b);
  ioa_stream *s;
  ioa_stream_options o = {.struct_size = sizeof(ioa_stream_options), .keep_open_on_eof = 1};
  assert_int_equal(ioa_stream_new(loop, a, &o, &s), 0);
  pause_ctx c = {0};
  ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = pause_read};
  ioa_stream_set_callbacks(s, &cbs, &c);
  assert_int_equal(write(b, "abc", 3), 3);
  assert_int_equal(ioa_test_run_ticking(loop, &c.calls, 5000), 0);
  assert_int_equal(c.lastlen, 3);
  assert_int_equal(write(b, "def", 3), 3);
  ioa_test_run_for(loop, 60);
  assert_int_equal(c.calls, 1); /* paused: nothing offered */
  ioa_stream_resume_read(s);
  for (int i = 0; i < 100 && c.calls < 2; i++)
    ioa_test_run_for(loop, 10);
  assert_int_equal(c.calls, 2);
  assert_string_equal(c.buf, "abcdef");
  ioa_stream_free(s);
  close(b);
  ioa_loop_free(loop);
}

/* ------------------------------------------------------------ bulk */

/* 256 MiB each way (about 3 s under ASan on the dev machine);
 * IOA_TEST_STREAM_MB overrides it, e.g. for valgrind. */
static size_t bulk_size(void) {
  const char *env = getenv("IOA_TEST_STREAM_MB");
  size_t mb = 256;
  if (env && *env) {
    char *end;
    unsigned long v = strtoul(env, &end, 10);
    if (*end == 0 && v > 0 && v <= 4096)
      mb = v;
  }
  return mb << 20;
}

#define BULK_CHUNK (64u * 1024u)

typedef struct bulk_side {
  ioa_stream *s;
  int zero_copy;
  uint64_t rng;
  size_t to_send, sent;
  cksum sent_sum, recv_sum;
  int zc_outstanding;
  int eof;
  int write_done;
  int errors;
  int backed_off;
  int *done_count;
  int *finished;
} bulk_side;

static void zc_free(void *buf, void *data) {
  bulk_side *b = data;
  b->zc_outstanding--;
  free(buf);
}

static void bulk_pump(bulk_side *b) {
  while (!b->backed_off && b->sent < b->to_send) {
    size_t n = b->to_send - b->sent < BULK_CHUNK ? b->to_send - b->sent : BULK_CHUNK;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    fill_random(&b->rng, buf, n);
    cksum_feed(&b->sent_sum, buf, n);
    int r;
    if (b->zero_copy) {
      b->zc_outstanding++;
      r = ioa_stream_write_zc(b->s, buf, n, zc_free, b);
    } else {
      r = ioa_stream_write(b->s, buf, n);
      free(buf);
    }
    assert_int_equal(r, 0);
    b->sent += n;
    /* The writer's own back-off, ahead of the deferred high water report. */
    if (ioa_stream_queued(b->s) >= 4u * BULK_CHUNK)
      break;
  }
  if (b->sent == b->to_send && !b->write_done) {
    b->write_done = 1;
    assert_int_equal(ioa_stream_shutdown_write(b->s), 0);
  }
}

static size_t bulk_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)s;
  bulk_side *b = data;
  cksum_feed(&b->recv_sum, buf, len);
  if (eof && !b->eof) {
    b->eof = 1;
    if (++*b->done_count == 2)
      *b->finished = 1;
  }
  return len;
}

static void bulk_drain(ioa_stream *s, void *data) {
  (void)s;
  bulk_pump(data);
}
static void bulk_high(ioa_stream *s, void *data) {
  (void)s;
  ((bulk_side *)data)->backed_off = 1;
}
static void bulk_low(ioa_stream *s, void *data) {
  (void)s;
  bulk_side *b = data;
  b->backed_off = 0;
  bulk_pump(b);
}
static void bulk_error(ioa_stream *s, const char *syscall, int err, void *data) {
  (void)s;
  print_error("bulk stream error: %s: %s\n", syscall, ioa_strerror(err));
  bulk_side *b = data;
  b->errors++;
  *b->finished = 1;
}

static void test_bulk_both_ways(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int fa, fb;
  tcp_pair(&fa, &fb);
  size_t total = bulk_size();
  int done = 0, finished = 0;
  bulk_side side[2];
  memset(side, 0, sizeof side);
  ioa_stream_options o = {.struct_size = sizeof(ioa_stream_options), .keep_open_on_eof = 1};
  int fds[2] = {fa, fb};
  ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = bulk_read,
                              .on_error = bulk_error,
                              .on_drain = bulk_drain,
                              .on_high_water = bulk_high,
                              .on_low_water = bulk_low};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(ioa_stream_new(loop, fds[i], &o, &side[i].s), 0);
    side[i].zero_copy = i; /* one direction copies, the other is zero-copy */
    side[i].rng = 0x9e3779b97f4a7c15ull + (uint64_t)i;
    side[i].to_send = total + (size_t)i * 7; /* odd sizes: partial words */
    side[i].done_count = &done;
    side[i].finished = &finished;
    cksum_init(&side[i].sent_sum);
    cksum_init(&side[i].recv_sum);
    ioa_stream_set_callbacks(side[i].s, &cbs, &side[i]);
  }
  bulk_pump(&side[0]);
  bulk_pump(&side[1]);
  /* Bounded: a generous 240 s even for a slow machine. */
  assert_int_equal(ioa_test_run_ticking(loop, &finished, 240000), 0);
  assert_int_equal(done, 2);
  assert_int_equal(side[0].errors + side[1].errors, 0);
  for (int i = 0; i < 2; i++) {
    bulk_side *me = &side[i], *peer = &side[1 - i];
    assert_int_equal(peer->recv_sum.total, me->to_send);
    assert_true(cksum_final(&me->sent_sum) == cksum_final(&peer->recv_sum));
  }
  print_message("bulk: %zu + %zu bytes through loopback TCP, checksums equal\n", side[0].to_send,
                side[1].to_send);
  /* Every zero-copy buffer came back. */
  ioa_stream_free(side[0].s);
  ioa_stream_free(side[1].s);
  assert_int_equal(side[1].zc_outstanding, 0);
  ioa_loop_free(loop);
}

/* ------------------------------------------------------------ backpressure */

#define BP_HIGH (64u * 1024u)
#define BP_LOW (16u * 1024u)
#define BP_TOTAL (4u * 1024u * 1024u)
#define BP_CHUNK 4096u

typedef struct bp_ctx {
  ioa_stream *writer, *reader;
  uint64_t rng;
  size_t sent, received;
  cksum sent_sum, recv_sum;
  int backed_off;
  int highs, lows;
  char order[64];
  int norder;
  size_t queued_at_high, queued_at_low, max_queued;
  int done;
} bp_ctx;

static void bp_note(bp_ctx *c, char ev) {
  if (c->norder < (int)sizeof c->order - 1)
    c->order[c->norder++] = ev;
}

static void bp_pump(bp_ctx *c) {
  /* A well-behaved writer: keep writing until told to back off (writes
   * between the threshold and the deferred report still go in). */
  for (int i = 0; i < 8 && !c->backed_off && c->sent < BP_TOTAL; i++) {
    uint8_t buf[BP_CHUNK];
    fill_random(&c->rng, buf, sizeof buf);
    cksum_feed(&c->sent_sum, buf, sizeof buf);
    assert_int_equal(ioa_stream_write(c->writer, buf, sizeof buf), 0);
    c->sent += sizeof buf;
  }
  size_t q = ioa_stream_queued(c->writer);
  if (q > c->max_queued)
    c->max_queued = q;
}

static void bp_high(ioa_stream *s, void *data) {
  bp_ctx *c = data;
  c->highs++;
  c->backed_off = 1;
  c->queued_at_high = ioa_stream_queued(s);
  bp_note(c, 'H');
}

static void bp_low(ioa_stream *s, void *data) {
  bp_ctx *c = data;
  c->lows++;
  c->backed_off = 0;
  c->queued_at_low = ioa_stream_queued(s);
  bp_note(c, 'L');
  bp_pump(c);
}

static void bp_drain(ioa_stream *s, void *data) {
  (void)s;
  bp_pump(data);
}

static void bp_tick(ioa_timer *t, void *data) {
  (void)t;
  bp_pump(data);
}

static size_t bp_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)s;
  (void)eof;
  bp_ctx *c = data;
  cksum_feed(&c->recv_sum, buf, len);
  c->received += len;
  if (c->received == BP_TOTAL)
    c->done = 1;
  return len;
}

static void test_backpressure(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  tcp_pair(&a, &b);
  /* Small kernel buffers so the queue, not the kernel, holds the backlog. */
  int small = 16 * 1024;
  assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  assert_int_equal(setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  bp_ctx c = {.rng = 42};
  cksum_init(&c.sent_sum);
  cksum_init(&c.recv_sum);
  ioa_stream_options wo = {.struct_size = sizeof(ioa_stream_options), .high_water = BP_HIGH, .low_water = BP_LOW};
  assert_int_equal(ioa_stream_new(loop, a, &wo, &c.writer), 0);
  assert_int_equal(ioa_stream_new(loop, b, NULL, &c.reader), 0);
  ioa_stream_callbacks wcb = {.struct_size = sizeof(ioa_stream_callbacks), .on_high_water = bp_high, .on_low_water = bp_low,
                              .on_drain = bp_drain};
  ioa_stream_set_callbacks(c.writer, &wcb, &c);
  /* The slow reader: paused until high water has been seen. */
  ioa_stream_pause_read(c.reader);
  ioa_stream_callbacks rcb = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = bp_read};
  ioa_stream_set_callbacks(c.reader, &rcb, &c);
  ioa_timer t;
  ioa_timer_init(loop, &t, bp_tick, &c);
  assert_int_equal(ioa_timer_start(&t, 1000000, 1000000), 0);
  assert_int_equal(ioa_test_run_ticking(loop, &c.highs, 10000), 0);
  assert_true(c.queued_at_high >= BP_HIGH);
  /* Backed off: while the reader sleeps the queue may only shrink (the
   * kernel can still take bytes), and it grows again only after a low-water
   * report told the writer to resume.  No assumption about how fast the
   * kernel drains, so this holds under valgrind too. */
  size_t q = ioa_stream_queued(c.writer);
  ioa_test_run_for(loop, 50);
  if (c.lows == 0)
    assert_true(ioa_stream_queued(c.writer) <= q);
  ioa_stream_resume_read(c.reader);
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 60000), 0);
  ioa_timer_stop(&t);
  assert_true(c.highs >= 1);
  assert_true(c.lows >= 1);
  assert_true(c.queued_at_low <= BP_LOW);
  assert_int_equal(c.order[0], 'H');
  for (int i = 1; i < c.norder; i++)
    assert_true(c.order[i] != c.order[i - 1]); /* strictly alternating */
  /* Bounded by high water plus what a pump adds before the report. */
  assert_true(c.max_queued < BP_HIGH + 16 * BP_CHUNK);
  assert_int_equal(c.received, BP_TOTAL);
  assert_true(cksum_final(&c.sent_sum) == cksum_final(&c.recv_sum));
  ioa_stream_free(c.writer);
  ioa_stream_free(c.reader);
  ioa_loop_free(loop);
}

/* ------------------------------------------------------------ errors */

static void fill_zc_free(void *buf, void *data) {
  (void)buf;
  (*(int *)data)++;
}

/* The peer resets the connection while we write: one error (ECONNRESET or
 * EPIPE, from read or writev), then on_closed, and no SIGPIPE. */
static void test_peer_reset_mid_write(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  tcp_pair(&a, &b);
  echo_ctx c = {0};
  ioa_stream *s = ctx_stream(loop, a, NULL, &c);
  static uint8_t block[1 << 20];
  int zc_freed = 0;
  for (int i = 0; i < 8; i++)
    assert_int_equal(ioa_stream_write_zc(s, block, sizeof block, fill_zc_free, &zc_freed), 0);
  ioa_test_run_for(loop, 30); /* some of it goes out, the rest waits */
  assert_true(ioa_stream_queued(s) > 0);
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  assert_int_equal(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(b); /* RST */
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 10000), 0);
  assert_int_equal(c.errors, 1);
  assert_true(c.err == -ECONNRESET || c.err == -EPIPE);
  assert_true(strcmp(c.syscall, "read") == 0 || strcmp(c.syscall, "writev") == 0);
  assert_int_equal(c.closed, 1);
  assert_int_equal(zc_freed, 8); /* queued buffers were handed back */
  assert_int_equal(ioa_stream_fd(s), -1);
  assert_int_equal(ioa_stream_write(s, "x", 1), -EBADF);
  ioa_test_run_for(loop, 30);
  assert_int_equal(c.errors, 1);
  assert_int_equal(c.closed, 1);
  ioa_stream_free(s);
  ioa_loop_free(loop);
}

/* A stream may wrap a pipe (stream.h).  Writing to a pipe whose reader is
 * gone must give EPIPE through on_error, never a SIGPIPE: pipes have no
 * MSG_NOSIGNAL, so the library has to keep the signal away itself. */
static volatile sig_atomic_t sigpipes;
static void count_sigpipe(int sig) {
  (void)sig;
  sigpipes++;
}

static void test_pipe_reader_gone_no_sigpipe(void **state) {
  (void)state;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = count_sigpipe; /* counted rather than fatal, so the test can say so */
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);
  sigpipes = 0;
  ioa_loop *loop = ioa_test_new_loop();
  int p[2];
  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  close(p[0]); /* the reader is gone */
  ioa_stream *s;
  assert_int_equal(ioa_stream_new(loop, p[1], NULL, &s), 0);
  echo_ctx c = {0};
  ioa_stream_callbacks cbs = ctx_cbs;
  cbs.on_read = NULL; /* write-only end */
  ioa_stream_set_callbacks(s, &cbs, &c);
  assert_int_equal(ioa_stream_write(s, "hello", 5), 0);
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 5000), 0);
  assert_int_equal(c.errors, 1);
  assert_int_equal(c.err, -EPIPE);
  assert_string_equal(c.syscall, "writev");
  assert_int_equal(sigpipes, 0);
  /* A SIGPIPE the application itself has pending stays pending. */
  sigset_t block, prev, pending;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  assert_int_equal(pthread_sigmask(SIG_BLOCK, &block, &prev), 0);
  assert_int_equal(raise(SIGPIPE), 0);
  int q[2];
  assert_int_equal(pipe2(q, O_CLOEXEC), 0);
  close(q[0]);
  ioa_stream *s2;
  echo_ctx c2 = {0};
  assert_int_equal(ioa_stream_new(loop, q[1], NULL, &s2), 0);
  ioa_stream_set_callbacks(s2, &cbs, &c2);
  assert_int_equal(ioa_stream_write(s2, "x", 1), 0);
  assert_int_equal(ioa_test_run_ticking(loop, &c2.done, 5000), 0);
  assert_int_equal(c2.err, -EPIPE);
  assert_int_equal(sigpending(&pending), 0);
  assert_true(sigismember(&pending, SIGPIPE));
  assert_int_equal(sigpipes, 0);
  assert_int_equal(pthread_sigmask(SIG_SETMASK, &prev, NULL), 0); /* delivered now */
  assert_int_equal(sigpipes, 1);
  ioa_stream_free(s);
  ioa_stream_free(s2);
  ioa_loop_free(loop);
  assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

/* The peer half-closes: we see EOF, can still answer, and (by default) the
 * stream closes once the answer is written. */
static size_t answer_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  echo_ctx *c = data;
  if (!eof)
    return 0; /* wait for the whole request */
  c->eofs++;
  assert_int_equal(ioa_stream_write(s, "got:", 4), 0);
  assert_int_equal(ioa_stream_write(s, buf, len), 0);
  return len;
}

static void test_peer_half_close(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  tcp_pair(&a, &b);
  ioa_stream *s;
  assert_int_equal(ioa_stream_new(loop, a, NULL, &s), 0);
  echo_ctx c = {0};
  ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = answer_read, .on_error = ctx_error,
                              .on_closed = ctx_closed};
  ioa_stream_set_callbacks(s, &cbs, &c);
  assert_int_equal(write(b, "request", 7), 7);
  assert_int_equal(shutdown(b, SHUT_WR), 0);
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 5000), 0);
  assert_int_equal(c.eofs, 1);
  assert_int_equal(c.errors, 0);
  assert_int_equal(c.closed, 1);
  char buf[64];
  size_t got = 0;
  for (;;) {
    ssize_t n = read_some(b, buf + got, sizeof buf - got, 2000);
    assert_true(n >= 0);
    if (n == 0)
      break;
    got += (size_t)n;
  }
  assert_int_equal(got, 11);
  assert_memory_equal(buf, "got:request", 11);
  ioa_stream_free(s);
  close(b);
  ioa_loop_free(loop);
}

/* Our half-close: queued data goes first, then FIN; reading continues. */
static void test_shutdown_write_keeps_reading(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  tcp_pair(&a, &b);
  ioa_stream_options o = {.struct_size = sizeof(ioa_stream_options), .keep_open_on_eof = 1};
  echo_ctx c = {0};
  ioa_stream *s = ctx_stream(loop, a, &o, &c);
  assert_int_equal(ioa_stream_write(s, "abc", 3), 0);
  assert_int_equal(ioa_stream_shutdown_write(s), 0);
  assert_int_equal(ioa_stream_write(s, "x", 1), -EPIPE);
  char buf[16];
  size_t got = 0;
  for (int i = 0; i < 100; i++) {
    ioa_test_run_for(loop, 5);
    ssize_t n = recv(b, buf + got, sizeof buf - got, MSG_DONTWAIT);
    if (n == 0)
      break;
    if (n > 0)
      got += (size_t)n;
  }
  assert_int_equal(got, 3);
  assert_memory_equal(buf, "abc", 3);
  assert_int_equal(write(b, "xyz", 3), 3);
  for (int i = 0; i < 250 && c.ngot < 3; i++)
    ioa_test_run_for(loop, 20);
  assert_int_equal(c.ngot, 3);
  assert_memory_equal(c.got, "xyz", 3);
  assert_int_equal(c.closed, 0);
  ioa_stream_close(s);
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 2000), 0);
  assert_int_equal(c.closed, 1);
  ioa_stream_free(s);
  close(b);
  ioa_loop_free(loop);
}

static void test_close_when_empty(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  unix_pair(&a, &b);
  echo_ctx c = {0};
  ioa_stream *s = ctx_stream(loop, a, NULL, &c);
  static uint8_t data[3u << 20];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 7);
  assert_int_equal(ioa_stream_write(s, data, sizeof data), 0);
  ioa_stream_close_when_empty(s);
  assert_int_equal(ioa_stream_write(s, "x", 1), -EPIPE);
  static uint8_t got[sizeof data];
  size_t n = 0;
  int eof = 0;
  for (int i = 0; i < 200000 && !eof; i++) {
    (void)ioa_loop_run(loop, IOA_RUN_NOWAIT);
    for (;;) {
      ssize_t r = recv(b, got + n, sizeof got - n, MSG_DONTWAIT);
      if (r == 0)
        eof = 1;
      if (r <= 0)
        break;
      n += (size_t)r;
    }
  }
  assert_true(eof);
  assert_int_equal(n, sizeof data);
  assert_memory_equal(got, data, sizeof data);
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 2000), 0);
  assert_int_equal(c.closed, 1);
  assert_int_equal(c.errors, 0);
  ioa_stream_free(s);
  close(b);
  ioa_loop_free(loop);
}

/* ------------------------------------------------------------ free anywhere */

enum free_where {
  FREE_IN_READ,
  FREE_IN_EOF,
  FREE_IN_DRAIN,
  FREE_IN_HIGH,
  FREE_IN_LOW,
  FREE_IN_ERROR,
  FREE_IN_CLOSED,
  FREE_IN_ZC_FREE,
  FREE_IN_ZC_FREE_ON_ERROR, /* reached through the error path's discard */
  FREE_WHERE_COUNT
};

typedef struct free_ctx {
  enum free_where where;
  ioa_stream *s;
  int freed;
  int after_free; /* callbacks seen after the free: must stay 0 */
  int zc_freed;
} free_ctx;

static void maybe_free(free_ctx *c, enum free_where here) {
  if (c->freed) {
    c->after_free++;
    return;
  }
  if (c->where == here) {
    ioa_stream_free(c->s);
    ioa_stream_free(NULL); /* a no-op */
    c->freed = 1;
  }
}

static size_t free_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)s;
  (void)buf;
  free_ctx *c = data;
  maybe_free(c, eof ? FREE_IN_EOF : FREE_IN_READ);
  return c->freed ? 0 : len;
}
static void free_drain(ioa_stream *s, void *data) {
  (void)s;
  maybe_free(data, FREE_IN_DRAIN);
}
static void free_high(ioa_stream *s, void *data) {
  (void)s;
  maybe_free(data, FREE_IN_HIGH);
}
static void free_low(ioa_stream *s, void *data) {
  (void)s;
  maybe_free(data, FREE_IN_LOW);
}
static void free_error(ioa_stream *s, const char *syscall, int err, void *data) {
  (void)s;
  (void)syscall;
  (void)err;
  maybe_free(data, FREE_IN_ERROR);
}
static void free_closed(ioa_stream *s, void *data) {
  (void)s;
  maybe_free(data, FREE_IN_CLOSED);
}
static void free_zc(void *buf, void *data) {
  (void)buf;
  free_ctx *c = data;
  c->zc_freed++;
  if (!c->freed && (c->where == FREE_IN_ZC_FREE || c->where == FREE_IN_ZC_FREE_ON_ERROR)) {
    ioa_stream_free(c->s);
    c->freed = 1;
  }
}

/* on_read's bytes stay readable until it returns, even when it closes (or
 * frees) its stream first -- say, to log a bad request after rejecting it. */
typedef struct close_read_ctx {
  ioa_stream *s;
  int use_free;
  char got[64];
  size_t ngot;
  int done;
} close_read_ctx;

static size_t close_then_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof,
                              void *data) {
  close_read_ctx *c = data;
  (void)eof;
  if (c->use_free)
    ioa_stream_free(s);
  else
    ioa_stream_close(s);
  /* Had the read buffer been released, this allocation would likely reuse
   * it (and the byte check below fail) even without ASan. */
  void *reuse = malloc(256u * 1024u);
  assert_non_null(reuse);
  memset(reuse, 0xAA, 256u * 1024u);
  c->ngot = len < sizeof c->got ? len : sizeof c->got;
  memcpy(c->got, buf, c->ngot);
  free(reuse);
  c->done = 1;
  return len;
}

static void test_close_in_read_keeps_bytes(void **state) {
  (void)state;
  static const char msg[] = "a request the reader rejects";
  for (int use_free = 0; use_free < 2; use_free++) {
    ioa_loop *loop = ioa_test_new_loop();
    int a, b;
    tcp_pair(&a, &b);
    close_read_ctx c = {.use_free = use_free};
    assert_int_equal(ioa_stream_new(loop, a, NULL, &c.s), 0);
    ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = close_then_read};
    ioa_stream_set_callbacks(c.s, &cbs, &c);
    assert_int_equal(write(b, msg, sizeof msg - 1), (ssize_t)(sizeof msg - 1));
    assert_int_equal(ioa_test_run_ticking(loop, &c.done, 5000), 0);
    assert_int_equal(c.ngot, sizeof msg - 1);
    assert_memory_equal(c.got, msg, sizeof msg - 1);
    ioa_test_run_for(loop, 10);
    if (!use_free)
      ioa_stream_free(c.s);
    ioa_loop_free(loop);
    close(b);
  }
}

static void test_free_in_each_callback(void **state) {
  (void)state;
  for (int w = 0; w < FREE_WHERE_COUNT; w++) {
    ioa_loop *loop = ioa_test_new_loop();
    int a, b;
    tcp_pair(&a, &b);
    free_ctx c = {.where = (enum free_where)w};
    ioa_stream_options o = {.struct_size = sizeof(ioa_stream_options), .high_water = 1024, .low_water = 256};
    assert_int_equal(ioa_stream_new(loop, a, &o, &c.s), 0);
    ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = free_read,
                                .on_error = free_error,
                                .on_drain = free_drain,
                                .on_high_water = free_high,
                                .on_low_water = free_low,
                                .on_closed = free_closed};
    ioa_stream_set_callbacks(c.s, &cbs, &c);
    static uint8_t block[4096];
    switch (c.where) {
    case FREE_IN_READ:
      assert_int_equal(write(b, "x", 1), 1);
      break;
    case FREE_IN_EOF:
      shutdown(b, SHUT_WR);
      break;
    case FREE_IN_DRAIN:
      assert_int_equal(ioa_stream_write(c.s, "x", 1), 0);
      break;
    case FREE_IN_HIGH:
    case FREE_IN_LOW:
      assert_int_equal(ioa_stream_write(c.s, block, 2048), 0);
      break;
    case FREE_IN_ERROR: {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      assert_int_equal(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
      assert_int_equal(write(b, "y", 1), 1);
      close(b);
      b = -1;
      /* Our reply meets the reset. */
      assert_int_equal(ioa_stream_write(c.s, "x", 1), 0);
      break;
    }
    case FREE_IN_CLOSED:
      ioa_stream_close(c.s);
      break;
    case FREE_IN_ZC_FREE:
      /* Two buffers: the first one's free callback frees the stream, the
       * second must still be handed back. */
      assert_int_equal(ioa_stream_write_zc(c.s, block, 100, free_zc, &c), 0);
      assert_int_equal(ioa_stream_write_zc(c.s, block, 100, free_zc, &c), 0);
      break;
    case FREE_IN_ZC_FREE_ON_ERROR: {
      static uint8_t big[4u << 20];
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      assert_int_equal(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
      close(b);
      b = -1;
      assert_int_equal(ioa_stream_write_zc(c.s, big, sizeof big, free_zc, &c), 0);
      assert_int_equal(ioa_stream_write_zc(c.s, big, sizeof big, free_zc, &c), 0);
      break;
    }
    default:
      break;
    }
    int r = ioa_test_run_ticking(loop, &c.freed, 5000);
    if (r != 0)
      print_error("free case %d: callback never ran\n", w);
    assert_int_equal(r, 0);
    ioa_test_run_for(loop, 30);
    assert_int_equal(c.after_free, 0);
    if (c.where == FREE_IN_ZC_FREE || c.where == FREE_IN_ZC_FREE_ON_ERROR)
      assert_int_equal(c.zc_freed, 2);
    if (b >= 0)
      close(b);
    ioa_loop_free(loop);
  }
}

/* Freeing with zero-copy buffers still queued hands every one back. */
static void test_free_returns_zc_buffers(void **state) {
  (void)state;
  ioa_loop *loop = ioa_test_new_loop();
  int a, b;
  unix_pair(&a, &b);
  ioa_stream *s;
  assert_int_equal(ioa_stream_new(loop, a, NULL, &s), 0);
  int freed = 0;
  static uint8_t block[64];
  for (int i = 0; i < 5; i++)
    assert_int_equal(ioa_stream_write_zc(s, block, sizeof block, fill_zc_free, &freed), 0);
  ioa_stream_free(s);
  assert_int_equal(freed, 5);
  /* Closing hands them back from the loop, not from inside close. */
  int a2, b2;
  unix_pair(&a2, &b2);
  echo_ctx c = {0};
  s = ctx_stream(loop, a2, NULL, &c);
  freed = 0;
  for (int i = 0; i < 3; i++)
    assert_int_equal(ioa_stream_write_zc(s, block, sizeof block, fill_zc_free, &freed), 0);
  ioa_stream_close(s);
  assert_int_equal(freed, 0);
  assert_int_equal(ioa_test_run_ticking(loop, &c.done, 2000), 0);
  assert_int_equal(freed, 3); /* before on_closed */
  assert_int_equal(c.closed, 1);
  ioa_stream_free(s);
  close(b);
  close(b2);
  ioa_loop_free(loop);
}

#ifdef IOA_FAULT_INJECTION
#include "fault.h"

/* Fault sweep: fail the Nth allocation / syscall of each kind during a
 * write-shutdown-read-close exchange.  Every failure must surface as a
 * return code or one on_error, each stream closes at most once, nothing leaks
 * (ASan, fd count), and without a fault the exchange completes. */
typedef struct fault_side {
  size_t got;
  int errors, closed, eof;
  int *all_closed;
} fault_side;

static size_t fault_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)s;
  (void)buf;
  fault_side *f = data;
  f->got += len;
  if (eof)
    f->eof++;
  return len;
}
static void fault_error(ioa_stream *s, const char *syscall, int err, void *data) {
  (void)s;
  (void)syscall;
  (void)err;
  ((fault_side *)data)->errors++;
}
static void fault_closed(ioa_stream *s, void *data) {
  (void)s;
  fault_side *f = data;
  f->closed++;
  (*f->all_closed)++;
}
static void fault_zc_free(void *buf, void *data) {
  (void)buf;
  (*(int *)data)++;
}

static void test_fault_sweep(void **state) {
  (void)state;
  static const struct {
    ioa__fault_op op;
    int err;
  } kinds[] = {{IOA_FOP_MALLOC, ENOMEM}, {IOA_FOP_READ, EIO},     {IOA_FOP_WRITEV, EIO},
               {IOA_FOP_EPOLL_CTL, ENOMEM}, {IOA_FOP_SHUTDOWN, EIO}, {IOA_FOP_FCNTL, EBADF}};
  static uint8_t payload[100000];
  static uint8_t zc[10000];
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    for (unsigned long nth = 1; nth < 400; nth++) {
      ioa_loop *loop = ioa_test_new_loop();
      ioa_timer wake;
      ioa_timer_init(loop, &wake, ioa_test_wake_cb, NULL);
      assert_int_equal(ioa_timer_start(&wake, 20000000, 20000000), 0);
      int fds[2];
      unix_pair(&fds[0], &fds[1]);
      int all_closed = 0, zc_freed = 0, zc_queued = 0;
      fault_side side[2] = {{.all_closed = &all_closed}, {.all_closed = &all_closed}};
      ioa_stream *st[2] = {NULL, NULL};
      ioa__fault_arm(nth, 1ul << kinds[k].op, kinds[k].err);
      ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = fault_read, .on_error = fault_error,
                                  .on_closed = fault_closed};
      for (int i = 0; i < 2; i++) {
        if (ioa_stream_new(loop, fds[i], NULL, &st[i]) < 0) {
          close(fds[i]);
          st[i] = NULL;
          all_closed++;
          continue;
        }
        ioa_stream_set_callbacks(st[i], &cbs, &side[i]);
      }
      size_t sent = 0;
      if (st[0]) {
        if (ioa_stream_write(st[0], payload, sizeof payload) == 0)
          sent += sizeof payload;
        if (ioa_stream_write_zc(st[0], zc, sizeof zc, fault_zc_free, &zc_freed) == 0) {
          sent += sizeof zc;
          zc_queued++;
        }
        (void)ioa_stream_shutdown_write(st[0]);
      }
      int both = 0;
      for (int i = 0; i < 200 && all_closed < 2; i++)
        (void)ioa_test_run_until(loop, &both, 10);
      int fired = ioa__fault_fired();
      ioa__fault_arm(0, 0, 0);
      for (int i = 0; i < 2; i++) {
        assert_true(side[i].errors <= 1);
        assert_true(side[i].closed <= 1);
        assert_true(side[i].eof <= 1);
      }
      if (!fired) {
        /* No fault: the exchange must have completed cleanly. */
        assert_int_equal(all_closed, 2);
        assert_int_equal(side[1].got, sent);
        assert_int_equal(side[0].errors + side[1].errors, 0);
      }
      for (int i = 0; i < 2; i++)
        ioa_stream_free(st[i]);
      assert_int_equal(zc_freed, zc_queued);
      ioa_timer_stop(&wake);
      ioa_loop_free(loop);
      if (!fired) {
        print_message("fault sweep: op %d: %lu injection points\n", (int)kinds[k].op, nth - 1);
        break; /* past the last call of this kind */
      }
    }
  }
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_new_errors),
      IOA_TEST(test_small_writes_coalesced),
      IOA_TEST(test_read_one_message_per_call),
      IOA_TEST(test_eof_with_unconsumed),
      IOA_TEST(test_pause_resume),
      IOA_TEST(test_backpressure),
      IOA_TEST(test_peer_reset_mid_write),
      IOA_TEST(test_pipe_reader_gone_no_sigpipe),
      IOA_TEST(test_peer_half_close),
      IOA_TEST(test_shutdown_write_keeps_reading),
      IOA_TEST(test_close_when_empty),
      IOA_TEST(test_close_in_read_keeps_bytes),
      IOA_TEST(test_free_in_each_callback),
      IOA_TEST(test_free_returns_zc_buffers),
      IOA_TEST(test_bulk_both_ways),
#ifdef IOA_FAULT_INJECTION
      IOA_TEST(test_fault_sweep),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
