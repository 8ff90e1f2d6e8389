/* SPDX-License-Identifier: MIT */
/* Stream throughput on loopback TCP: ioa_stream against a plain blocking
 * read/write loop on the same kind of sockets, plus the 64-byte message rate.
 *
 *   bench_stream [-m MiB] [-r rounds] [-n messages] [-t max_seconds]
 *
 * Each side runs on its own thread in both cases (a blocking writer thread
 * and a blocking reader thread; or two threads each running an ioa_loop with
 * one stream), so the comparison is like for like.  Best of `rounds` runs.
 * Prints readable lines and one JSON line:
 *   {"contender":"ioasync","workload":"stream","plain_mb_s":..,"stream_mb_s":..,
 *    "stream_zc_mb_s":..,"ratio":..,"ratio_zc":..,"msg64_per_s":..,"plain_msg64_per_s":..}
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ioasync.h"

#define CHUNK (64u * 1024u)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void die(const char *what) {
  fprintf(stderr, "bench_stream: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* A connected loopback TCP pair (blocking fds). */
static void tcp_pair(int *a, int *b) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0)
    die("socket");
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  if (bind(l, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(l, 1) < 0 ||
      getsockname(l, (struct sockaddr *)&sin, &len) < 0)
    die("listen");
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof sin) < 0)
    die("connect");
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  if (s < 0)
    die("accept");
  close(l);
  *a = c;
  *b = s;
}

/* ------------------------------------------------------------ plain */

typedef struct plain_job {
  int fd;
  size_t total;
  size_t msg; /* write size */
} plain_job;

static void *plain_writer(void *arg) {
  plain_job *j = arg;
  static uint8_t buf[CHUNK];
  memset(buf, 'p', sizeof buf);
  size_t sent = 0;
  while (sent < j->total) {
    size_t n = j->total - sent < j->msg ? j->total - sent : j->msg;
    ssize_t w = send(j->fd, buf, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      die("write");
    }
    sent += (size_t)w;
  }
  shutdown(j->fd, SHUT_WR);
  return NULL;
}

static void *plain_reader(void *arg) {
  plain_job *j = arg;
  static uint8_t buf[CHUNK];
  size_t got = 0;
  for (;;) {
    ssize_t r = read(j->fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      die("read");
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  if (got != j->total) {
    fprintf(stderr, "bench_stream: plain reader got %zu of %zu\n", got, j->total);
    exit(1);
  }
  return NULL;
}

static double run_plain(size_t total, size_t msg) {
  int a, b;
  tcp_pair(&a, &b);
  plain_job w = {a, total, msg}, r = {b, total, msg};
  pthread_t tw, tr;
  double t0 = now_s();
  if (pthread_create(&tr, NULL, plain_reader, &r) || pthread_create(&tw, NULL, plain_writer, &w))
    die("pthread_create");
  pthread_join(tw, NULL);
  pthread_join(tr, NULL);
  double dt = now_s() - t0;
  close(a);
  close(b);
  return dt;
}

/* ------------------------------------------------------------ ioa_stream */

typedef struct stream_job {
  int fd;
  size_t total;
  size_t msg;    /* bytes per ioa_stream_write */
  int zero_copy; /* writer: ioa_stream_write_zc from one static buffer */
  int writer;
  ioa_loop *loop;
  ioa_stream *s;
  size_t done;
  int finished;
} stream_job;

static uint8_t stream_src[CHUNK];

static void pump(stream_job *j) {
  /* Keep about 1 MiB queued: below the default high water. */
  while (j->done < j->total && ioa_stream_queued(j->s) < 512u * 1024u) {
    size_t n = j->total - j->done < j->msg ? j->total - j->done : j->msg;
    int r = j->zero_copy ? ioa_stream_write_zc(j->s, stream_src, n, NULL, NULL)
                         : ioa_stream_write(j->s, stream_src, n);
    if (r < 0) {
      fprintf(stderr, "bench_stream: write: %s\n", ioa_strerror(r));
      exit(1);
    }
    j->done += n;
  }
  if (j->done == j->total && !j->finished) {
    j->finished = 1;
    ioa_stream_close_when_empty(j->s);
  }
}

static void on_drain(ioa_stream *s, void *data) {
  (void)s;
  pump(data);
}

static size_t on_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  (void)buf;
  stream_job *j = data;
  j->done += len;
  if (eof)
    ioa_stream_close(s);
  return len;
}

static void on_error(ioa_stream *s, const char *syscall, int err, void *data) {
  (void)s;
  (void)data;
  fprintf(stderr, "bench_stream: %s: %s\n", syscall, ioa_strerror(err));
  exit(1);
}

static void on_closed(ioa_stream *s, void *data) {
  (void)s;
  stream_job *j = data;
  ioa_loop_stop(j->loop);
}

static void *stream_thread(void *arg) {
  stream_job *j = arg;
  if (ioa_loop_new(NULL, &j->loop) < 0 || ioa_stream_new(j->loop, j->fd, NULL, &j->s) < 0) {
    fprintf(stderr, "bench_stream: setup failed\n");
    exit(1);
  }
  ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks), .on_error = on_error, .on_closed = on_closed};
  if (j->writer)
    cbs.on_drain = on_drain;
  else
    cbs.on_read = on_read;
  ioa_stream_set_callbacks(j->s, &cbs, j);
  if (j->writer)
    pump(j);
  int r = ioa_loop_run(j->loop, IOA_RUN_DEFAULT);
  if (r < 0) {
    fprintf(stderr, "bench_stream: loop: %s\n", ioa_strerror(r));
    exit(1);
  }
  ioa_stream_free(j->s);
  ioa_loop_free(j->loop);
  return NULL;
}

static double run_stream(size_t total, size_t msg, int zero_copy) {
  int a, b;
  tcp_pair(&a, &b);
  stream_job w = {.fd = a, .total = total, .msg = msg, .zero_copy = zero_copy, .writer = 1};
  stream_job r = {.fd = b, .total = total, .msg = msg};
  pthread_t tw, tr;
  double t0 = now_s();
  if (pthread_create(&tr, NULL, stream_thread, &r) ||
      pthread_create(&tw, NULL, stream_thread, &w))
    die("pthread_create");
  pthread_join(tw, NULL);
  pthread_join(tr, NULL);
  double dt = now_s() - t0;
  if (r.done != total) {
    fprintf(stderr, "bench_stream: stream reader got %zu of %zu\n", r.done, total);
    exit(1);
  }
  return dt; /* both fds were closed by their streams */
}

static long parse(const char *s, long lo, long hi) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) {
    fprintf(stderr, "bench_stream: bad number '%s' (want %ld..%ld)\n", s, lo, hi);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  long mib = 512, rounds = 3, messages = 2000000, max_s = 60;
  int opt;
  while ((opt = getopt(argc, argv, "m:r:n:t:")) != -1) {
    switch (opt) {
    case 'm': mib = parse(optarg, 1, 65536); break;
    case 'r': rounds = parse(optarg, 1, 100); break;
    case 'n': messages = parse(optarg, 1, 1000000000); break;
    case 't': max_s = parse(optarg, 1, 3600); break;
    default:
      fprintf(stderr, "usage: %s [-m MiB] [-r rounds] [-n messages64] [-t max_seconds]\n",
              argv[0]);
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  size_t total = (size_t)mib << 20;
  size_t msgbytes = (size_t)messages * 64u;
  double start = now_s();
  double best_plain = 1e9, best_stream = 1e9, best_zc = 1e9, best_msg = 1e9,
         best_plain_msg = 1e9;
  for (long i = 0; i < rounds && now_s() - start < (double)max_s; i++) {
    double t;
    if ((t = run_plain(total, CHUNK)) < best_plain)
      best_plain = t;
    if ((t = run_stream(total, CHUNK, 0)) < best_stream)
      best_stream = t;
    if ((t = run_stream(total, CHUNK, 1)) < best_zc)
      best_zc = t;
    if ((t = run_stream(msgbytes, 64, 0)) < best_msg)
      best_msg = t;
    if ((t = run_plain(msgbytes, 64)) < best_plain_msg)
      best_plain_msg = t;
  }
  double mb = (double)total / 1e6;
  double plain = mb / best_plain, stream = mb / best_stream, zc = mb / best_zc;
  double msg_rate = (double)messages / best_msg;
  double plain_msg_rate = (double)messages / best_plain_msg;
  printf("loopback TCP, %ld MiB per run, best of %ld, 64 KiB writes:\n", mib, rounds);
  printf("  plain blocking read/write : %9.1f MB/s\n", plain);
  printf("  ioa_stream (copying write): %9.1f MB/s  ratio %.2fx\n", stream, stream / plain);
  printf("  ioa_stream (zero-copy)    : %9.1f MB/s  ratio %.2fx\n", zc, zc / plain);
  printf("64-byte messages (%ld):\n", messages);
  printf("  ioa_stream_write          : %9.0f msg/s (%.1f MB/s)\n", msg_rate,
         msg_rate * 64 / 1e6);
  printf("  plain write() per message : %9.0f msg/s\n", plain_msg_rate);
  printf("{\"contender\":\"ioasync\",\"workload\":\"stream\",\"plain_mb_s\":%.1f,"
         "\"stream_mb_s\":%.1f,\"stream_zc_mb_s\":%.1f,\"ratio\":%.3f,\"ratio_zc\":%.3f,"
         "\"msg64_per_s\":%.0f,\"plain_msg64_per_s\":%.0f}\n",
         plain, stream, zc, stream / plain, zc / plain, msg_rate, plain_msg_rate);
  return 0;
}
