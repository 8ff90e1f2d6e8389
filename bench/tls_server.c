/* SPDX-License-Identifier: MIT */
/* The one TLS server every TLS contender talks to (bench_tls): OpenSSL,
 * non-blocking, one epoll thread, on 127.0.0.1.
 *
 *   tls_server [-t max_seconds] [--tickets] CERT KEY
 *
 * Prints "ready PORT" when listening.  Per connection, after the handshake:
 * a line "ping\n" gets "pong\n"; a line "bulk N\n" gets N MiB; either way
 * the server then sends close_notify and closes.  Session tickets are off
 * unless --tickets (full handshakes every time; with them a client that
 * keeps its session resumes).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define CHUNK (64 * 1024)

typedef struct conn {
  int fd;
  SSL *ssl;
  int established;
  char line[64];
  size_t nline;
  size_t to_send;  /* bulk bytes left, or 5 for "pong\n" */
  int pong;
  int closing;
} conn;

static char bulk_buf[CHUNK];

static void conn_free(int ep, conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  SSL_free(c->ssl);
  close(c->fd);
  free(c);
  ERR_clear_error();
}

/* Drive one connection as far as it goes; returns -1 when it is done. */
static int step(conn *c) {
  if (!c->established) {
    int r = SSL_accept(c->ssl);
    if (r <= 0) {
      int e = SSL_get_error(c->ssl, r);
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    c->established = 1;
  }
  while (!c->to_send && !c->closing) {
    char ch;
    size_t got;
    int r = SSL_read_ex(c->ssl, &ch, 1, &got);
    if (r <= 0) {
      int e = SSL_get_error(c->ssl, r);
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    if (c->nline < sizeof c->line - 1)
      c->line[c->nline++] = ch;
    if (ch != '\n')
      continue;
    c->line[c->nline] = '\0';
    if (strncmp(c->line, "bulk ", 5) == 0) {
      c->to_send = strtoul(c->line + 5, NULL, 10) << 20;
    } else {
      c->pong = 1;
      c->to_send = 5;
    }
  }
  while (c->to_send) {
    size_t n = c->pong ? 5 : c->to_send < CHUNK ? c->to_send : CHUNK;
    size_t w;
    int r = SSL_write_ex(c->ssl, c->pong ? "pong\n" : bulk_buf, n, &w);
    if (r <= 0) {
      int e = SSL_get_error(c->ssl, r);
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    c->to_send -= w;
    c->closing = c->to_send == 0;
  }
  if (c->closing) {
    int r = SSL_shutdown(c->ssl);
    if (r < 0) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_WRITE)
        return 0;
    }
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  int tickets = 0;
  long max_s = 600;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--tickets") == 0)
      tickets = 1;
    else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
      max_s = atol(argv[++i]);
  }
  if (argc - i != 2) {
    fprintf(stderr, "usage: tls_server [-t secs] [--tickets] CERT KEY\n");
    return 64;
  }
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)max_s);
  memset(bulk_buf, 'b', sizeof bulk_buf);
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[i]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[i + 1], SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    return 1;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!tickets) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  if (bind(l, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(l, 4096) < 0 ||
      getsockname(l, (struct sockaddr *)&sin, &len) < 0) {
    perror("tls_server: listen");
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  printf("ready %d\n", ntohs(sin.sin_port));
  fflush(stdout);
  for (;;) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, -1);
    for (int k = 0; k < n; k++) {
      conn *c = evs[k].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0)
            break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          c = calloc(1, sizeof *c);
          c->fd = fd;
          c->ssl = SSL_new(ctx);
          SSL_set_fd(c->ssl, fd);
          struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
          if (step(c) < 0)
            conn_free(ep, c);
        }
        continue;
      }
      if (step(c) < 0)
        conn_free(ep, c);
    }
  }
}
