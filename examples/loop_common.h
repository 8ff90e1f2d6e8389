/* SPDX-License-Identifier: MIT */
/* Shared by the loop examples (embed_poll.c, loop_*.c): a listener on
 * 127.0.0.1 for them to connect to, and one ioa_connect() by host and
 * service whose result is printed.  Nothing leaves the machine. */
#ifndef IOA_EXAMPLE_LOOP_COMMON_H
#define IOA_EXAMPLE_LOOP_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioasync.h"

/* A listening socket on 127.0.0.1 at a free port (written to port as
 * text); the kernel completes connects to it without an accept().  Returns
 * the fd or -1. */
static int example_listen(char port[16]) {
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 8) < 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
    perror("listener");
    if (fd >= 0)
      close(fd);
    return -1;
  }
  snprintf(port, 16, "%u", (unsigned)ntohs(sin.sin_port));
  return fd;
}

static void example_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  char text[IOA_ADDR_STRLEN];
  (void)req;
  ioa_addr_format(peer, text, sizeof text);
  printf("%s: connected to %s\n", (const char *)data, text);
  close(fd);
}

static void example_failed(ioa_connect_req *req, ioa_syscall syscall, int err, void *data) {
  (void)req;
  fprintf(stderr, "%s: %s failed: %s\n", (const char *)data, ioa_syscall_name(syscall),
          ioa_strerror(err));
}

/* Connect to 127.0.0.1:port by host and service (the loop's resolver
 * answers, on a later iteration); the result is printed under label. */
static int example_connect(ioa_loop *loop, const char *port, const char *label) {
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.host = "127.0.0.1";
  p.service = port;
  p.socktype_name = "stream";
  p.on_connected = example_connected;
  p.on_connect_error = example_failed;
  p.data = (void *)label;
  int r = ioa_connect(loop, &p, NULL);
  if (r < 0)
    fprintf(stderr, "%s: ioa_connect: %s\n", label, ioa_strerror(r));
  return r;
}

#endif
