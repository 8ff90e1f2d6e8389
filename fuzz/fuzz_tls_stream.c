/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary "server" bytes into a TLS stream.
 *
 * Each input is what a server sends: it is written into one end of a unix
 * socket pair (then that end is shut for writing, as a server that stops
 * talking), and the other end is upgraded to TLS with
 * ioa_tls_upgrade_fd().  The loop runs until the handshake ends; if it
 * succeeds (it cannot with random bytes, but the fuzzer may find a way),
 * the stream reads until it closes.  Checked: exactly one on_done, a
 * message with every failure, no crash, no leak (libFuzzer's leak check),
 * no fd left open.  The first byte picks verification on or off.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ioasync.h"

static ioa_loop *loop;
static ioa_tls_config *insecure, *verifying;

typedef struct run {
  int done;
  int closed;
  ioa_stream *s;
} run;

static void die(const char *what) {
  fprintf(stderr, "fuzz_tls_stream: invariant violated: %s\n", what);
  abort();
}

static size_t on_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)s;
  (void)buf;
  (void)eof;
  (void)data;
  return len;
}

static void on_closed(ioa_stream *s, void *data) {
  (void)s;
  ((run *)data)->closed = 1;
}

static void on_done(ioa_tls_upgrade *u, ioa_stream *s, int err, const char *msg, void *data) {
  run *r = data;
  (void)u;
  if (r->done++)
    die("on_done ran twice");
  if (err < 0 && (!msg || !*msg))
    die("a failure without a message");
  if (err == 0) {
    if (!s)
      die("success without a stream");
    r->s = s;
    ioa_stream_callbacks cb;
    ioa_stream_callbacks_init(&cb);
    cb.on_read = on_read;
    cb.on_closed = on_closed;
    ioa_stream_set_callbacks(s, &cb, r);
  } else if (s) {
    die("the _fd variant's stream outlived a failure");
  }
}

static int setup(void) {
  if (ioa_loop_new(NULL, &loop) < 0)
    return -1;
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.insecure_skip_verify = 1;
  o.alpn = "h2,http/1.1";
  if (ioa_tls_config_new(&o, &insecure, NULL) < 0)
    return -1;
  /* Verifying against a trust store with nothing the fuzzer can sign. */
  ioa_tls_options_init(&o);
  o.ca_file = "/dev/null";
  if (ioa_tls_config_new(&o, &verifying, NULL) < 0)
    verifying = ioa_tls_config_ref(insecure); /* /dev/null has no certificates */
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!loop && setup() < 0)
    die("setup failed");
  if (size > 256 * 1024)
    return 0;
  ioa_tls_config *cfg = size && (data[0] & 1) ? verifying : insecure;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return 0;
  /* The whole server side at once (a socket buffer holds it). */
  int big = 512 * 1024;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  size_t off = 0;
  while (off < size) {
    ssize_t n = send(sv[1], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  shutdown(sv[1], SHUT_WR);
  run r = {0};
  ioa_tls_upgrade_params p;
  ioa_tls_upgrade_params_init(&p);
  p.config = cfg;
  p.server_name = "fuzz.test";
  p.timeout_ms = 2000;
  p.on_done = on_done;
  p.data = &r;
  ioa_tls_upgrade *u;
  if (ioa_tls_upgrade_fd(loop, sv[0], NULL, &p, &u) < 0) {
    close(sv[0]);
    close(sv[1]);
    return 0;
  }
  if (r.done)
    die("on_done inside ioa_tls_upgrade_fd");
  for (int i = 0; i < 10000 && !r.done; i++)
    ioa_loop_run(loop, IOA_RUN_ONCE);
  if (!r.done)
    die("no on_done");
  for (int i = 0; i < 10000 && r.s && !r.closed; i++)
    ioa_loop_run(loop, IOA_RUN_ONCE);
  if (r.s)
    ioa_stream_free(r.s);
  close(sv[1]);
  ioa_loop_run(loop, IOA_RUN_NOWAIT);
  return 0;
}
