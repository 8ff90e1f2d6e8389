/* SPDX-License-Identifier: MIT */
/* ioasync in bench_tls: ioa_connect with TLS (the same CA file and server
 * name as tlspeer_raw), k requests in flight.
 *
 *   tlspeer_ioa MODE PORT N K CAFILE LABEL      (MODE: hs | resume | bulk | idle)
 *
 * See tlspeer_raw.c for the modes.  resume: the config's session cache
 * (on by default); hs: a config with the cache disabled.
 */
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ioasync.h"

static ioa_loop *loop;
static ioa_tls_config *cfg;
static ioa_addr peer;
static int mode; /* 0 hs, 1 resume, 2 bulk, 3 idle */
static long n, k, started, finished, established;
static size_t bulk_mib, got_total;
static ioa_stream **idle;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start(void);

static size_t on_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)buf;
  (void)data;
  got_total += len;
  if (eof) { /* close_notify from the server: this connection is done */
    ioa_stream_free(s);
    finished++;
    if (started < n)
      start();
    else if (finished == n)
      ioa_loop_stop(loop);
  }
  return len;
}

static void on_error(ioa_stream *s, const char *sys, int err, void *data) {
  (void)s;
  (void)data;
  fprintf(stderr, "tlspeer_ioa: %s: %s\n", sys, ioa_strerror(err));
  exit(1);
}

static void on_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *p, void *data) {
  (void)req;
  (void)p;
  (void)data;
  ioa_stream_callbacks cb;
  ioa_stream_callbacks_init(&cb);
  cb.on_read = on_read;
  cb.on_error = on_error;
  ioa_stream_set_callbacks(s, &cb, NULL);
  if (mode == 3) {
    idle[established++] = s;
    if (established == n)
      ioa_loop_stop(loop);
    return;
  }
  char req_line[32];
  int len = mode == 2 ? snprintf(req_line, sizeof req_line, "bulk %zu\n", bulk_mib)
                      : snprintf(req_line, sizeof req_line, "ping\n");
  ioa_stream_write(s, req_line, (size_t)len);
}

static void on_connect_error(ioa_connect_req *req, ioa_syscall sys, int err, void *data) {
  (void)data;
  const ioa_attempt_failure *f;
  size_t nf = ioa_connect_failures(req, &f);
  fprintf(stderr, "tlspeer_ioa: %s: %s\n", ioa_syscall_name(sys),
          nf ? f[nf - 1].message : ioa_strerror(err));
  exit(1);
}

static void start(void) {
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.addr = &peer;
  p.tls = cfg;
  p.tls_server_name = "localhost";
  p.on_stream = on_stream;
  p.on_connect_error = on_connect_error;
  started++;
  if (ioa_connect(loop, &p, NULL) < 0)
    exit(1);
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: tlspeer_ioa hs|resume|bulk|idle PORT N K CAFILE LABEL\n");
    return 64;
  }
  mode = strcmp(argv[1], "resume") == 0 ? 1 : strcmp(argv[1], "bulk") == 0 ? 2
         : strcmp(argv[1], "idle") == 0 ? 3 : 0;
  n = atol(argv[3]);
  k = atol(argv[4]);
  bulk_mib = (size_t)n;
  if (mode == 2)
    n = k = 1;
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ioa_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, SOCK_STREAM, 0, &peer);
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.ca_file = argv[5];
  o.disable_session_cache = mode != 1;
  ioa_errinfo ei;
  if (ioa_tls_config_new(&o, &cfg, &ei) < 0 || ioa_loop_new(NULL, &loop) < 0) {
    fprintf(stderr, "tlspeer_ioa: %s\n", ei.message);
    return 1;
  }
  idle = calloc((size_t)n, sizeof *idle);
  struct mallinfo2 m0 = mallinfo2();
  double t0 = now_s();
  for (long i = 0; i < k && i < n; i++)
    start();
  ioa_loop_run(loop, IOA_RUN_DEFAULT);
  double dt = now_s() - t0;
  if (mode == 3) {
    struct mallinfo2 m1 = mallinfo2();
    printf("{\"contender\":\"ioasync\",\"workload\":\"%s\",\"idle_bytes_per_conn\":%.0f}\n",
           argv[6], (double)(m1.uordblks - m0.uordblks) / (double)n);
    for (long i = 0; i < established; i++)
      ioa_stream_free(idle[i]);
  } else if (mode == 2) {
    printf("{\"contender\":\"ioasync\",\"workload\":\"%s\",\"bulk_mb_s\":%.1f}\n", argv[6],
           (double)got_total / 1e6 / dt);
  } else {
    printf("{\"contender\":\"ioasync\",\"workload\":\"%s\",\"handshakes_per_s\":%.1f}\n", argv[6],
           (double)n / dt);
  }
  free(idle);
  ioa_loop_free(loop);
  ioa_tls_config_unref(cfg);
  return 0;
}
