/* SPDX-License-Identifier: MIT */
/* ioasync contender, with the common peer command line:
 *
 *   peer_ioa [-b gai|cares] [-c ttl_ms] [-s] [-l loop] [-d delay_ms] [-t s]
 *            HOST PORT N K WORKLOAD
 *
 * K connects in flight; each connected fd is closed and the next connect
 * starts from the completion callback, as in peer_raw and peer_libuv, and
 * the result line is measured the same way (bench_common.h).
 *
 *  - A numeric HOST goes through plain address mode (params.addr): the
 *    address is parsed once, as peer_raw and peer_libuv do.  Contender
 *    "ioasync".
 *  - A host name goes through resolving mode (host + service, socktype
 *    "stream") on every connect: with the loop's default resolver, the
 *    getaddrinfo pool ("ioasync"), or with -b cares a c-ares resolver
 *    ("ioasync-cares").  c-ares reads /etc/hosts and /etc/resolv.conf; the
 *    runner's namespace has a resolv.conf naming only 127.0.0.1, and with -b
 *    cares this program refuses to start unless every nameserver there is on
 *    loopback, so no query can leave the machine.
 *  - -c ttl_ms gives the resolver (either backend) an answer cache with that
 *    lifetime ("ioasync-cache", "ioasync-cares-cache"): the first connect
 *    resolves, the rest are answered from the cache, as curl's DNS cache
 *    does.
 *  - Happy Eyeballs ("he..." workloads): -d sets the connection attempt
 *    delay (racing, the default for host + service); -s uses sequential mode
 *    instead, one attempt at a time in resolver order — IO::Async's
 *    behaviour ("ioasync-seq").
 *  - -l embed runs the loop inside a poll() loop of the peer's own through
 *    the embedding calls ("ioasync-embed"); peer_ioa_libuv, _libev,
 *    _libevent and _glib are this program built to run ioasync on that
 *    library's loop through its adapter ("ioasync-libuv", ...; see
 *    peer_loop.h).
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ioasync.h"
#include "peer_loop.h"

typedef struct peer {
  bench_args a;
  const char *name;
  ioa_loop *loop;
  peer_loop host; /* what runs loop: ioasync's own, embedded, or a foreign one */
  ioa_resolver *resolver; /* c-ares or cached; NULL = the loop's default (getaddrinfo pool) */
  ioa_connect_params params;
  ioa_addr addr; /* numeric target */
  ioa_timer bound;
  ioa_defer refill; /* starts the next connects once the loop's batch of events is done */
  long started, done;
  int failed;
} peer;

static void start_one(peer *p);

/* As peer_raw does: completions of one epoll batch are handled first, then
 * the next connects start (from a defer, which runs after the batch).  With
 * nothing else in flight there is no batch to wait for: start at once. */
static void finish_one(peer *p) {
  if (++p->done == p->a.n) {
    peer_loop_stop(&p->host);
    return;
  }
  if (p->started >= p->a.n)
    return;
  if (p->started == p->done)
    start_one(p);
  else
    ioa_defer_start(&p->refill);
}

static void refill_cb(ioa_defer *d, void *data) {
  peer *p = data;
  (void)d;
  while (p->started - p->done < p->a.k && p->started < p->a.n && !p->failed)
    start_one(p);
}

static void on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer_addr, void *data) {
  (void)req, (void)peer_addr;
  close(fd);
  finish_one(data);
}

static void on_connect_error(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  peer *p = data;
  (void)req;
  fprintf(stderr, "%s: %s: %s\n", p->name, ioa_syscall_name(s), ioa_strerror(err));
  p->failed = 1;
  peer_loop_stop(&p->host);
}

static void on_resolve_error(ioa_connect_req *req, int err, const char *message, void *data) {
  peer *p = data;
  (void)req;
  fprintf(stderr, "%s: resolve %s: %s (%s)\n", p->name, p->a.host, message, ioa_err_name(err));
  p->failed = 1;
  peer_loop_stop(&p->host);
}

static void start_one(peer *p) {
  p->started++;
  int rc = ioa_connect(p->loop, &p->params, NULL);
  if (rc < 0) {
    fprintf(stderr, "%s: ioa_connect: %s\n", p->name, ioa_strerror(rc));
    p->failed = 1;
    peer_loop_stop(&p->host);
  }
}

static void on_bound(ioa_timer *t, void *data) {
  peer *p = data;
  (void)t;
  fprintf(stderr, "%s: time bound of %lds hit after %ld connects\n", p->name, p->a.max_secs,
          p->done);
  p->failed = 1;
  peer_loop_stop(&p->host);
}

/* c-ares would send queries for names /etc/hosts lacks to the servers in
 * /etc/resolv.conf: allow that only when every one of them is loopback. */
static int resolv_conf_is_loopback(void) {
  FILE *f = fopen("/etc/resolv.conf", "re");
  if (!f)
    return 0;
  char line[512];
  int ok = 1, servers = 0;
  while (fgets(line, sizeof line, f)) {
    char *s = line;
    while (isspace((unsigned char)*s))
      s++;
    if (strncmp(s, "nameserver", 10) != 0 || !isspace((unsigned char)s[10]))
      continue;
    s += 10;
    while (isspace((unsigned char)*s))
      s++;
    s[strcspn(s, " \t\r\n")] = '\0';
    servers++;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, s, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127)
      continue;
    if (inet_pton(AF_INET6, s, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))
      continue;
    ok = 0;
  }
  fclose(f);
  return ok && servers > 0;
}

static void parse_args(peer *p, int *cares, int *seq, long *cache_ms, const char **kind, int argc,
                       char **argv) {
  /* The common CLI (bench_common.h) plus -b and -s. */
  p->a.delay_ms = -1;
  p->a.max_secs = 60;
  int c;
  while ((c = getopt(argc, argv, "b:c:l:sd:t:")) != -1) {
    if (c == 'b' && !strcmp(optarg, "cares"))
      *cares = 1;
    else if (c == 'b' && !strcmp(optarg, "gai"))
      *cares = 0;
    else if (c == 's')
      *seq = 1;
    else if (c == 'l')
      *kind = optarg;
    else if (c == 'c')
      *cache_ms = bench_parse_long(argv[0], optarg, 1, 86400000);
    else if (c == 'd')
      p->a.delay_ms = bench_parse_long(argv[0], optarg, 0, 600000);
    else if (c == 't')
      p->a.max_secs = bench_parse_long(argv[0], optarg, 1, 3600);
    else {
      fprintf(stderr, "usage: %s [-b gai|cares] [-c ttl_ms] [-s] [-l loop] [-d delay_ms] [-t max_seconds] "
                      "HOST PORT N K WORKLOAD\n", argv[0]);
      exit(2);
    }
  }
  if (argc - optind != 5)
    bench_usage(argv[0]);
  p->a.host = argv[optind];
  p->a.port = argv[optind + 1];
  p->a.n = bench_parse_long(argv[0], argv[optind + 2], 1, 100000000);
  p->a.k = bench_parse_long(argv[0], argv[optind + 3], 1, 1000000);
  p->a.workload = argv[optind + 4];
  if (p->a.k > p->a.n)
    p->a.k = p->a.n;
}

int main(int argc, char **argv) {
  static peer p; /* zeroed */
  int cares = 0, seq = 0;
  long cache_ms = 0;
  const char *kind = peer_loop_default();
  parse_args(&p, &cares, &seq, &cache_ms, &kind, argc, argv);

  char text[300];
  int numeric = strchr(p.a.host, ':') != NULL;
  snprintf(text, sizeof text, numeric ? "[%s]:%s" : "%s:%s", p.a.host, p.a.port);
  numeric = ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &p.addr, NULL) == 0;
  static const char *const names[2][2] = {{"ioasync", "ioasync-cache"},
                                          {"ioasync-cares", "ioasync-cares-cache"}};
  p.name = seq ? "ioasync-seq" : names[cares && !numeric][cache_ms > 0 && !numeric];
  char loop_name[64];
  if (strcmp(kind, "native") != 0) {
    snprintf(loop_name, sizeof loop_name, "ioasync-%s", kind);
    p.name = loop_name;
  }

  int rc = peer_loop_open(&p.host, kind);
  if (rc < 0) {
    fprintf(stderr, "%s: loop %s: %s\n", p.name, kind, ioa_strerror(rc));
    return 1;
  }
  p.loop = p.host.loop;
  ioa_connect_params_init(&p.params);
  p.params.on_connected = on_connected;
  p.params.on_connect_error = on_connect_error;
  p.params.on_resolve_error = on_resolve_error;
  p.params.data = &p;
  if (numeric) {
    p.params.addr = &p.addr;
  } else {
    p.params.host = p.a.host;
    p.params.service = p.a.port;
    p.params.socktype = SOCK_STREAM;
    if (cares || cache_ms) {
      if (cares && !resolv_conf_is_loopback()) {
        fprintf(stderr, "%s: /etc/resolv.conf names a server off this machine; c-ares is "
                        "only run where it names loopback servers (scripts/bench's "
                        "namespace)\n", p.name);
        return 1;
      }
      ioa_resolver_options o = {.struct_size = sizeof(ioa_resolver_options), .backend = cares ? IOA_RESOLVER_CARES : IOA_RESOLVER_GETADDRINFO,
                                .cache_ttl_ms = (unsigned)cache_ms};
      rc = ioa_resolver_new(p.loop, &o, &p.resolver);
      if (rc < 0) {
        fprintf(stderr, "%s: resolver: %s\n", p.name, ioa_strerror(rc));
        return 1;
      }
      p.params.resolver = p.resolver;
    }
  }
  if (seq)
    p.params.mode = IOA_CONNECT_SEQUENTIAL;
  else if (p.a.delay_ms >= 0)
    p.params.attempt_delay_ms = (unsigned)p.a.delay_ms;

  ioa_timer_init(p.loop, &p.bound, on_bound, &p);
  ioa_defer_init(p.loop, &p.refill, refill_cb, &p);
  ioa_timer_start(&p.bound, (uint64_t)p.a.max_secs * 1000000000u, 0);

  double cpu0 = bench_cpu_s(), t0 = bench_now_s();
  for (long i = 0; i < p.a.k && !p.failed; i++)
    start_one(&p);
  /* Runs until the last connect completes (finish_one stops it), as
   * uv_run(UV_RUN_DEFAULT) does for the libuv peer. */
  if (!p.failed)
    peer_loop_run(&p.host);
  double wall = bench_now_s() - t0, cpu = bench_cpu_s() - cpu0;
  if (p.failed || p.done != p.a.n)
    return 1;
  bench_report(p.name, &p.a, wall, cpu);
  ioa_timer_stop(&p.bound);
  if (p.resolver)
    ioa_resolver_free(p.resolver);
  peer_loop_close(&p.host);
  return 0;
}
