/* SPDX-License-Identifier: MIT */
/* HTTPS GET with ioasync: connect by name (Happy Eyeballs), verified TLS,
 * print the reply.   https_get HOST PORT [CAFILE]
 * CAFILE: trust it instead of the system's CA store (a test server's CA). */
#include <stdio.h>
#include <string.h>

#include <ioasync.h>

typedef struct get { ioa_loop *loop; ioa_stream *s; const char *host; int status; } get;

static size_t on_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  get *g = data;
  (void)s;
  fwrite(buf, 1, len, stdout);
  if (eof) { /* the server's close_notify: the whole reply is here */
    g->status = 0;
    ioa_loop_stop(g->loop);
  }
  return len;
}

static void on_error(ioa_stream *s, const char *sys, int err, void *data) {
  const char *why = ioa_tls_stream_error(s);
  fprintf(stderr, "https_get: %s: %s\n", sys, why ? why : ioa_strerror(err));
  ioa_loop_stop(((get *)data)->loop);
}

static void on_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer, void *data) {
  get *g = data;
  (void)req, (void)peer;
  char request[512];
  int n = snprintf(request, sizeof request, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", g->host);
  ioa_stream_callbacks cb;
  ioa_stream_callbacks_init(&cb);
  cb.on_read = on_read;
  cb.on_error = on_error;
  ioa_stream_set_callbacks(s, &cb, g);
  ioa_stream_write(s, request, (size_t)n);
  g->s = s;
}

static void on_connect_error(ioa_connect_req *req, ioa_syscall sys, int err, void *data) {
  (void)err;
  const ioa_attempt_failure *f;
  size_t n = ioa_connect_failures(req, &f); /* the last failure says why in its own words */
  fprintf(stderr, "https_get: %s: %s\n", ioa_syscall_name(sys),
          n ? f[n - 1].message : ioa_strerror(err));
  ioa_loop_stop(((get *)data)->loop);
}

int main(int argc, char **argv) {
  if (argc < 3)
    return fprintf(stderr, "usage: https_get HOST PORT [CAFILE]\n"), 64;
  get g = {.host = argv[1], .status = 1};
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.ca_file = argc > 3 ? argv[3] : NULL;
  o.alpn = "http/1.1";
  ioa_tls_config *tls;
  ioa_errinfo ei;
  if (ioa_tls_config_new(&o, &tls, &ei) < 0)
    return fprintf(stderr, "https_get: %s\n", ei.message), 1;
  if (ioa_loop_new(NULL, &g.loop) < 0)
    return 1;
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.host = argv[1];
  p.service = argv[2];
  p.tls = tls; /* verified against HOST */
  p.on_stream = on_stream;
  p.on_connect_error = on_connect_error;
  p.timeout_ms = 10000;
  p.data = &g;
  if (ioa_connect(g.loop, &p, NULL) == 0)
    ioa_loop_run(g.loop, IOA_RUN_DEFAULT);
  ioa_tls_config_unref(tls); /* the request held its own reference */
  ioa_stream_free(g.s);
  ioa_loop_free(g.loop);
  return g.status;
}
