/* SPDX-License-Identifier: MIT */
/* connect_local: IO::Async::Connector's synopsis in C, against servers on this machine.
 *
 * It starts an echo listener on 127.0.0.1, then asks ioasync to connect to
 * "localhost" at that port and, separately, to an address list whose first
 * entry refuses.  It prints every individual failure (on_fail), then talks to
 * the echo server over the ioa_stream it was handed.  Nothing leaves the
 * machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ioasync.h>

struct echo_server {
  ioa_io io;
  int fd;
};

struct client {
  ioa_loop *loop;
  const char *label;
  int done;
};

/* Server side: echo one line back, then close once it is written. */
static size_t echo_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)data;
  const uint8_t *nl = memchr(buf, '\n', len);
  if (nl) {
    ioa_stream_write(s, buf, (size_t)(nl - buf) + 1);
    ioa_stream_close_when_empty(s);
    return (size_t)(nl - buf) + 1;
  }
  if (eof)
    ioa_stream_close(s);
  return 0;
}

static void echo_closed(ioa_stream *s, void *data) {
  (void)data;
  ioa_stream_free(s);
}

static void on_accept(ioa_io *io, unsigned revents, void *data) {
  ioa_loop *loop = data;
  (void)revents;
  int c = accept4(ioa_io_fd(io), NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0)
    return;
  ioa_stream *s;
  if (ioa_stream_new(loop, c, NULL, &s) < 0) {
    close(c);
    return;
  }
  ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = echo_read, .on_closed = echo_closed};
  ioa_stream_set_callbacks(s, &cbs, NULL);
}

static void on_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  struct client *cl = data;
  char addr[IOA_ADDR_STRLEN] = "";
  (void)req;
  if (f->peer)
    ioa_addr_format(f->peer, addr, sizeof addr);
  printf("[%s] %s(%s) failed: %s (%s) - trying the next address\n", cl->label,
         ioa_syscall_name(f->syscall), addr, ioa_strerror(f->err), ioa_err_name(f->err));
}

static size_t on_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  struct client *cl = data;
  if (len)
    printf("[%s] echo server said: %.*s", cl->label, (int)len, (const char *)buf);
  if (eof) {
    cl->done = 1;
    ioa_stream_free(s);
  }
  return len;
}

static void on_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer, void *data) {
  struct client *cl = data;
  char addr[IOA_ADDR_STRLEN];
  (void)req;
  ioa_addr_format(peer, addr, sizeof addr);
  printf("[%s] connected to %s\n", cl->label, addr);
  ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_read = on_read};
  ioa_stream_set_callbacks(s, &cbs, cl);
  char line[64];
  snprintf(line, sizeof line, "hello from %s\n", cl->label);
  ioa_stream_write(s, line, strlen(line));
}

static void on_connect_error(ioa_connect_req *req, ioa_syscall sc, int err, void *data) {
  struct client *cl = data;
  (void)req;
  printf("[%s] cannot connect - %s failed: %s\n", cl->label, ioa_syscall_name(sc),
         ioa_strerror(err));
  cl->done = 1;
}

static void on_resolve_error(ioa_connect_req *req, int err, const char *msg, void *data) {
  struct client *cl = data;
  (void)req;
  printf("[%s] cannot resolve - %s (%s)\n", cl->label, msg, ioa_err_name(err));
  cl->done = 1;
}

static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
    perror("listener");
    exit(1);
  }
  *port = ntohs(sin.sin_port);
  return fd;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  ioa_loop *loop;
  if (ioa_loop_new(NULL, &loop) < 0)
    return 1;

  struct echo_server srv;
  int port;
  srv.fd = listen_loopback(&port);
  ioa_io_init(loop, &srv.io, srv.fd, on_accept, loop);
  ioa_io_start(&srv.io, IOA_READ);
  printf("echo server listening on 127.0.0.1:%d\n", port);

  /* 1. Resolving mode, as IO::Async::Connector's synopsis: host + service + socktype. */
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  struct client by_name = {loop, "localhost", 0};
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.host = "localhost";
  p.service = service;
  p.socktype_name = "stream";
  p.on_stream = on_stream;
  p.on_fail = on_fail;
  p.on_connect_error = on_connect_error;
  p.on_resolve_error = on_resolve_error;
  p.data = &by_name;
  int r = ioa_connect(loop, &p, NULL);
  if (r < 0)
    fprintf(stderr, "ioa_connect: %s\n", ioa_strerror(r));

  /* 2. Plain address mode: the first address refuses, the second answers. */
  ioa_addr addrs[2];
  ioa_errinfo err;
  char text[64];
  int closed = port == 65535 ? port - 1 : port + 1; /* nothing listens there */
  snprintf(text, sizeof text, "127.0.0.1:%d", closed);
  if (ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &addrs[0], &err) < 0 ||
      ioa_addr_inet("127.0.0.1", port, SOCK_STREAM, 0, &addrs[1], &err) < 0) {
    fprintf(stderr, "address: %s\n", err.message);
    return 1;
  }
  struct client by_list = {loop, "addrs", 0};
  ioa_stream_options so; /* for the stream on_stream gets; copied by ioa_connect */
  ioa_stream_options_init(&so);
  so.read_size = 4096;
  ioa_connect_params_init(&p);
  p.addrs = addrs;
  p.naddrs = 2;
  p.on_stream = on_stream;
  p.stream_options = &so;
  p.on_fail = on_fail;
  p.on_connect_error = on_connect_error;
  p.data = &by_list;
  r = ioa_connect(loop, &p, NULL);
  if (r < 0)
    fprintf(stderr, "ioa_connect: %s\n", ioa_strerror(r));

  /* Bounded: a few seconds at most, then give up. */
  for (int i = 0; i < 500 && !(by_name.done && by_list.done); i++)
    ioa_loop_run(loop, IOA_RUN_ONCE);
  ioa_io_stop(&srv.io);
  close(srv.fd);
  ioa_loop_free(loop);
  return by_name.done && by_list.done ? 0 : 1;
}
