/* SPDX-License-Identifier: MIT */
/* The limit for bench_tls: a hand-written non-blocking OpenSSL client on
 * epoll, verification on (CA file, "localhost"), k connections in flight.
 *
 *   tlspeer_raw MODE PORT N K CAFILE LABEL      (MODE: hs | resume | bulk | idle)
 *
 * hs/resume: N connections, each handshake + "ping\n" -> "pong\n" + the
 * server's close_notify; resume keeps the newest session and offers it.
 * bulk: one connection reads N MiB.  idle: N connections left idle after
 * their handshake, heap bytes per connection measured (mallinfo2).
 * Prints one JSON result line.
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

typedef struct conn {
  int fd;
  SSL *ssl;
  int state; /* 0 connecting+handshake, 1 writing request, 2 reading */
  size_t got;
} conn;

static SSL_CTX *ctx;
static SSL_SESSION *last;
static int ep, port, mode; /* 0 hs, 1 resume, 2 bulk, 3 idle */
static long n, k, started, finished, established;
static size_t bulk_bytes;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int new_session(SSL *ssl, SSL_SESSION *s) {
  (void)ssl;
  if (last)
    SSL_SESSION_free(last);
  last = s;
  return 1;
}

static void start(void) {
  conn *c = calloc(1, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1; /* as Go, curl and asyncio do for TLS */
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) < 0 && errno != EINPROGRESS) {
    perror("connect");
    exit(1);
  }
  c->ssl = SSL_new(ctx);
  SSL_set_fd(c->ssl, c->fd);
  SSL_set_connect_state(c->ssl);
  SSL_set_tlsext_host_name(c->ssl, "localhost");
  SSL_set1_host(c->ssl, "localhost");
  if (mode == 1 && last)
    SSL_set_session(c->ssl, last);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  started++;
}

static void done(conn *c) {
  /* The server's close_notify came; not answering it must not make OpenSSL
   * drop the session as "bad" (it would, and resume nothing). */
  SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  SSL_free(c->ssl);
  close(c->fd);
  free(c);
  finished++;
  if (started < n)
    start();
}

/* Returns 1 if the connection is finished. */
static int step(conn *c) {
  char buf[65536];
  if (c->state == 0) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
      ERR_print_errors_fp(stderr);
      exit(1);
    }
    established++;
    if (mode == 3)
      return 0; /* idle from here on */
    c->state = 1;
  }
  if (c->state == 1) {
    char req[32];
    int len = mode == 2 ? snprintf(req, sizeof req, "bulk %zu\n", bulk_bytes >> 20)
                        : snprintf(req, sizeof req, "ping\n");
    size_t w;
    if (SSL_write_ex(c->ssl, req, (size_t)len, &w) != 1)
      return 0; /* a 5-byte record: only ever WANT_WRITE */
    c->state = 2;
  }
  for (;;) {
    size_t got;
    int r = SSL_read_ex(c->ssl, buf, sizeof buf, &got);
    if (r == 1) {
      c->got += got;
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
      return 0;
    if (e == SSL_ERROR_ZERO_RETURN)
      return 1;
    ERR_print_errors_fp(stderr);
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: tlspeer_raw hs|resume|bulk|idle PORT N K CAFILE LABEL\n");
    return 64;
  }
  mode = strcmp(argv[1], "resume") == 0 ? 1 : strcmp(argv[1], "bulk") == 0 ? 2
         : strcmp(argv[1], "idle") == 0 ? 3 : 0;
  port = atoi(argv[2]);
  n = atol(argv[3]);
  k = atol(argv[4]);
  bulk_bytes = (size_t)n << 20;
  if (mode == 2)
    n = k = 1;
  ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  if (SSL_CTX_load_verify_locations(ctx, argv[5], NULL) != 1)
    return 1;
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_read_ahead(ctx, 1); /* as ioasync: read what the socket has */
  if (mode == 1) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session);
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct mallinfo2 m0 = mallinfo2();
  double t0 = now_s();
  for (long i = 0; i < k && i < n; i++)
    start();
  while (mode == 3 ? established < n : finished < n) {
    struct epoll_event evs[256];
    int m = epoll_wait(ep, evs, 256, 10000);
    if (m <= 0) {
      fprintf(stderr, "tlspeer_raw: stalled\n");
      return 1;
    }
    for (int i = 0; i < m; i++) {
      conn *c = evs[i].data.ptr;
      if (step(c)) {
        if (mode == 2)
          bulk_bytes = c->got;
        done(c);
      }
    }
  }
  double dt = now_s() - t0;
  if (mode == 3) {
    struct mallinfo2 m1 = mallinfo2();
    printf("{\"contender\":\"raw\",\"workload\":\"%s\",\"idle_bytes_per_conn\":%.0f}\n", argv[6],
           (double)(m1.uordblks - m0.uordblks) / (double)n);
  } else if (mode == 2) {
    printf("{\"contender\":\"raw\",\"workload\":\"%s\",\"bulk_mb_s\":%.1f}\n", argv[6],
           (double)bulk_bytes / 1e6 / dt);
  } else {
    printf("{\"contender\":\"raw\",\"workload\":\"%s\",\"handshakes_per_s\":%.1f}\n", argv[6],
           (double)n / dt);
  }
  return 0;
}
