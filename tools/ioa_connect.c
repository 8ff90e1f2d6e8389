/* SPDX-License-Identifier: MIT */
/* ioa-connect: connect like IO::Async::Connector, trace every attempt, then
 * copy stdin to the socket and the socket to stdout (a small netcat).
 *
 * Built on the public API only.  Exit status: see print_help (the one list,
 * which ioa-connect(1) repeats). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ioasync.h"
#include "trace.h"

#define EXIT_CONNECTED 0
#define EXIT_CONNECT_ERROR 1
#define EXIT_RESOLVE_ERROR 2
#define EXIT_USAGE 64
#define EXIT_SIGINT 130
#define EXIT_SIGTERM 143

#define STDIN_CHUNK 65536

static const char *progname = "ioa-connect";

/* ---------------------------------------------------------------- options */

typedef struct cli_opts {
  int family; /* AF_UNSPEC, AF_INET, AF_INET6 (-4 / -6) */
  const char *socktype_arg;
  int socktype; /* SOCK_* or IOA_HINT_UNSET ("-t unset") */
  const char *protocol_arg;
  int protocol; /* IOA_HINT_UNSET unless --protocol */
  const char **addr_args;
  size_t naddr_args;
  const char **local_args;
  size_t nlocal_args;
  const char *local_host, *local_service;
  const char *host, *service;
  const char *dns_servers; /* --dns-server: c-ares against these servers */
  ioa_connect_mode mode;
  unsigned attempt_delay_ms, resolution_delay_ms, attempt_timeout_ms, timeout_ms;
  unsigned first_family_count;
  int no_learned_delay;
  int numeric;
  int zero_io;
  int verbose;
  int trace_json;
  int quit_after_set;
  unsigned quit_after_ms;
  /* --tls and its options */
  int tls;
  const char *alpn, *cafile, *capath, *cert, *key, *servername;
  int tls_min; /* 0, IOA_TLS_VERSION_1_2 or _1_3 */
  int insecure;
} cli_opts;

/* Everything the run needs; no globals. */
typedef struct cli {
  cli_opts o;
  ioa_addr *addrs, *locals;
  size_t naddrs, nlocals;
  ioa_loop *loop;
  ioa_resolver *resolver; /* ours, for --dns-server; else the loop's default */
  ioa_tls_config *tls;    /* --tls */
  cli_trace trace;
  ioa_connect_req *req;
  int connecting;
  int exit_code;
  int finished;
  int signal_exit; /* set when SIGINT/SIGTERM decided the exit code */

  int sigfd;
  ioa_io sig_io;

  /* copy phase */
  ioa_stream *stream;
  ioa_socket *sock;
  ioa_io stdin_io;
  ioa_defer stdin_defer;
  int seqpacket;      /* 0-byte packets mean EOF */
  int stdin_pollable; /* epoll accepts fd 0 (pipes, ttys, sockets) */
  int stdin_running;
  int stdin_paused;
  int stdin_eof;
  char *line; /* datagram mode: the partial line so far */
  size_t line_len, line_cap;
  ioa_timer quit_timer;
  int quit_on_drain; /* start the -q countdown when the write queue drains */
  int sock_queued;   /* datagrams handed to ioa_socket_send not yet drained */
} cli;

static _Noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void usage_error(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", progname);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry '%s --help' for more information.\n", progname);
  exit(EXIT_USAGE);
}

static void print_help(void) {
  printf(
      "Usage: %s [OPTIONS] HOST SERVICE      resolve HOST/SERVICE and connect\n"
      "       %s [OPTIONS] --addr ADDR ...   try the given addresses, in order\n"
      "\n"
      "ADDR: 127.0.0.1:80  [::1]:80  [fe80::1%%lo]:80  unix:/path/to/sock  unix:@abstract\n"
      "\n"
      "  --addr ADDR             peer address to try (repeatable, in order)\n"
      "  -4, -6                  family inet / inet6 only (hint, or filter for --addr/--local)\n"
      "  -t, --socktype WORD     stream (default) | dgram | raw | seqpacket | a number |\n"
      "                          unset (pass no socktype hint)\n"
      "  --protocol N            protocol hint\n"
      "  --local ADDR            local address to bind before connecting (repeatable)\n"
      "  --local-host H          local bind address, resolved\n"
      "  --local-service S       local bind port/service, resolved\n"
      "  -n, --numeric           numeric host and service only (AI_NUMERICHOST|AI_NUMERICSERV)\n"
      "  --dns-server LIST       resolve with c-ares, asking only these servers\n"
      "                          (e.g. 127.0.0.1:5353,[::1]:53)\n"
      "  --tls                   TLS after the connect (verified against the system trust\n"
      "                          store and HOST, or each address's IP): the handshake is\n"
      "                          part of the attempt\n"
      "  --alpn LIST             ALPN protocols to offer (e.g. h2,http/1.1)\n"
      "  --cafile F, --capath D  trust these CA certificates instead of the system's\n"
      "  --cert F --key F        client certificate and key (PEM)\n"
      "  --servername N          name to verify and send as SNI (default: HOST)\n"
      "  --tls-min 1.2|1.3       lowest TLS version accepted (default 1.2)\n"
      "  --insecure              TLS without any certificate or name check\n"
      "  --sequential            one attempt at a time, in list order (IO::Async's behaviour)\n"
      "  --race                  Happy Eyeballs racing even for an --addr list\n"
      "  --attempt-delay MS      Happy Eyeballs connection attempt delay (10..2000; default:\n"
      "                          learned from round-trip times, else 250)\n"
      "  --first-family-count N  attempts of the first family before the other's first\n"
      "                          (RFC 8305 First Address Family Count, 1..255, default 1)\n"
      "  --no-learned-delay      do not learn the attempt delay from round-trip times\n"
      "  --resolution-delay MS   wait this long for AAAA answers after A (default 50)\n"
      "  --attempt-timeout S     per-attempt deadline in seconds (0 = none)\n"
      "  --timeout S             overall deadline in seconds (0 = none)\n"
      "  -z                      connect only: report the result, then close\n"
      "  -q S                    after EOF on stdin, quit after S seconds (default: streams\n"
      "                          wait for the peer to close, datagrams wait 1 s)\n"
      "  -v                      human trace on stderr, with a waterfall timeline\n"
      "  --trace json            one JSON object per event on stderr\n"
      "  -h, --help              this help\n"
      "  -V, --version           version\n"
      "\n"
      "Exit status:\n"
      "    0  connected; the copy ended normally (EOF from the peer, -q elapsed, -z, or\n"
      "       stdout closed by its reader: a closed pipe ends the tool quietly)\n"
      "    1  connect error (a TLS verification failure too), or an I/O error after\n"
      "       connecting (including a failing stdout\n"
      "       other than a closed pipe), or no memory/event loop\n"
      "    2  resolve error (the resolver's own code, or an invalid host name)\n"
      "   64  usage error (bad option, address or parameter combination)\n"
      "  130  interrupted (SIGINT)\n"
      "  143  terminated (SIGTERM)\n",
      progname, progname);
}

/* Strict unsigned decimal in [lo, hi]. */
static int parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out) {
  if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
    return -1;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

/* Seconds (decimal, e.g. "0.25") to milliseconds, rounded up so that a
 * non-zero value never becomes "none".  0 means none. */
static int parse_seconds(const char *s, unsigned *out_ms) {
  if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
    return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !isfinite(v) || v < 0 || v > (double)UINT_MAX / 1000.0)
    return -1;
  double ms = ceil(v * 1000.0);
  *out_ms = (unsigned)ms;
  if (v > 0 && *out_ms == 0)
    *out_ms = 1;
  return 0;
}

static void push_arg(const char ***arr, size_t *n, const char *arg) {
  const char **a = realloc(*arr, (*n + 1) * sizeof **arr);
  if (!a) {
    fprintf(stderr, "%s: out of memory\n", progname);
    exit(EXIT_CONNECT_ERROR);
  }
  a[(*n)++] = arg;
  *arr = a;
}

enum {
  OPT_ADDR = 256,
  OPT_PROTOCOL,
  OPT_LOCAL,
  OPT_LOCAL_HOST,
  OPT_LOCAL_SERVICE,
  OPT_SEQUENTIAL,
  OPT_RACE,
  OPT_ATTEMPT_DELAY,
  OPT_RESOLUTION_DELAY,
  OPT_ATTEMPT_TIMEOUT,
  OPT_TIMEOUT,
  OPT_TRACE,
  OPT_DNS_SERVER,
  OPT_FIRST_FAMILY_COUNT,
  OPT_NO_LEARNED_DELAY,
  OPT_TLS,
  OPT_ALPN,
  OPT_CAFILE,
  OPT_CAPATH,
  OPT_CERT,
  OPT_KEY,
  OPT_SERVERNAME,
  OPT_TLS_MIN,
  OPT_INSECURE,
};

static const struct option long_options[] = {
    {"addr", required_argument, NULL, OPT_ADDR},
    {"socktype", required_argument, NULL, 't'},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"local", required_argument, NULL, OPT_LOCAL},
    {"local-host", required_argument, NULL, OPT_LOCAL_HOST},
    {"local-service", required_argument, NULL, OPT_LOCAL_SERVICE},
    {"numeric", no_argument, NULL, 'n'},
    {"sequential", no_argument, NULL, OPT_SEQUENTIAL},
    {"race", no_argument, NULL, OPT_RACE},
    {"attempt-delay", required_argument, NULL, OPT_ATTEMPT_DELAY},
    {"first-family-count", required_argument, NULL, OPT_FIRST_FAMILY_COUNT},
    {"no-learned-delay", no_argument, NULL, OPT_NO_LEARNED_DELAY},
    {"resolution-delay", required_argument, NULL, OPT_RESOLUTION_DELAY},
    {"attempt-timeout", required_argument, NULL, OPT_ATTEMPT_TIMEOUT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"dns-server", required_argument, NULL, OPT_DNS_SERVER},
    {"tls", no_argument, NULL, OPT_TLS},
    {"alpn", required_argument, NULL, OPT_ALPN},
    {"cafile", required_argument, NULL, OPT_CAFILE},
    {"capath", required_argument, NULL, OPT_CAPATH},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"servername", required_argument, NULL, OPT_SERVERNAME},
    {"tls-min", required_argument, NULL, OPT_TLS_MIN},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* The option text as the user typed it, for messages. */
static const char *option_name(int c, int long_index) {
  static const char *short_names[] = {['4'] = "-4", ['6'] = "-6", ['t'] = "-t", ['n'] = "-n",
                                      ['z'] = "-z", ['q'] = "-q", ['v'] = "-v", ['h'] = "-h",
                                      ['V'] = "-V"};
  if (long_index >= 0)
    return long_options[long_index].name;
  if (c > 0 && c < (int)(sizeof short_names / sizeof *short_names) && short_names[c])
    return short_names[c];
  return "?";
}

/* A getopt error (':' missing argument, '?' unknown option), said precisely. */
static _Noreturn void option_error(int c, char **argv) {
  const char *bad = argv[optind - 1];
  if (c == ':') {
    /* A missing argument: long options are named as typed. */
    if (strncmp(bad, "--", 2) == 0)
      usage_error("option '%s' needs an argument", bad);
    usage_error("option '-%c' needs an argument", optopt);
  }
  if (strncmp(bad, "--", 2) != 0)
    usage_error("unknown option '-%c'", optopt ? optopt : '?');
  const char *eq = strchr(bad, '=');
  size_t n = eq ? (size_t)(eq - bad - 2) : strlen(bad + 2);
  for (const struct option *lo = long_options; lo->name; lo++)
    if (eq && lo->has_arg == no_argument && strlen(lo->name) >= n &&
        strncmp(lo->name, bad + 2, n) == 0)
      usage_error("option '--%s' takes no argument (got '%s')", lo->name, bad);
  usage_error("unknown or ambiguous option '%s'", bad);
}

/* The timing options.  Returns 0 if c is not one of them. */
static int parse_timing_option(cli_opts *o, int c) {
  unsigned long v;
  switch (c) {
  case OPT_ATTEMPT_DELAY:
    if (parse_uint(optarg, 10, 2000, &v) != 0)
      usage_error("--attempt-delay: '%s' is not a number of milliseconds in 10..2000", optarg);
    o->attempt_delay_ms = (unsigned)v;
    return 1;
  case OPT_FIRST_FAMILY_COUNT:
    if (parse_uint(optarg, 1, 255, &v) != 0)
      usage_error("--first-family-count: '%s' is not a count in 1..255", optarg);
    o->first_family_count = (unsigned)v;
    return 1;
  case OPT_NO_LEARNED_DELAY:
    o->no_learned_delay = 1;
    return 1;
  case OPT_RESOLUTION_DELAY:
    if (parse_uint(optarg, 1, 2000, &v) != 0)
      usage_error("--resolution-delay: '%s' is not a number of milliseconds in 1..2000", optarg);
    o->resolution_delay_ms = (unsigned)v;
    return 1;
  case OPT_ATTEMPT_TIMEOUT:
    if (parse_seconds(optarg, &o->attempt_timeout_ms) != 0)
      usage_error("--attempt-timeout: '%s' is not a number of seconds (e.g. 0.5; 0 = none)",
                  optarg);
    return 1;
  case OPT_TIMEOUT:
    if (parse_seconds(optarg, &o->timeout_ms) != 0)
      usage_error("--timeout: '%s' is not a number of seconds (e.g. 2.5; 0 = none)", optarg);
    return 1;
  case 'q':
    if (parse_seconds(optarg, &o->quit_after_ms) != 0)
      usage_error("-q: '%s' is not a number of seconds (e.g. 0.5)", optarg);
    o->quit_after_set = 1;
    return 1;
  default:
    return 0;
  }
}

/* What parse_option needs to remember across options. */
typedef struct opt_state {
  int seen_sequential, seen_race;
  const char *family_opt;
} opt_state;

/* One option from getopt_long (c, as typed: name). */
static void parse_option(cli_opts *o, opt_state *st, int c, const char *name) {
  unsigned long v;
  switch (c) {
  case '4':
  case '6': {
    int fam = c == '4' ? AF_INET : AF_INET6;
    if (st->family_opt && o->family != fam)
      usage_error("-4 and -6 cannot be combined");
    o->family = fam;
    st->family_opt = name;
    break;
  }
  case 't':
    o->socktype_arg = optarg;
    if (strcmp(optarg, "unset") == 0) {
      o->socktype = IOA_HINT_UNSET;
    } else {
      int type = ioa_socktype_from_name(optarg);
      if (type < 0)
        usage_error("--socktype: '%s' is not a socket type (stream, dgram, raw, seqpacket, "
                    "unset or a number; words are lower case)",
                    optarg);
      o->socktype = type;
    }
    break;
  case OPT_PROTOCOL:
    if (parse_uint(optarg, 0, INT_MAX, &v) != 0)
      usage_error("--protocol: '%s' is not a protocol number (0..%d)", optarg, INT_MAX);
    o->protocol = (int)v;
    o->protocol_arg = optarg;
    break;
  case OPT_ADDR: push_arg(&o->addr_args, &o->naddr_args, optarg); break;
  case OPT_LOCAL: push_arg(&o->local_args, &o->nlocal_args, optarg); break;
  case OPT_LOCAL_HOST: o->local_host = optarg; break;
  case OPT_LOCAL_SERVICE: o->local_service = optarg; break;
  case 'n': o->numeric = 1; break;
  case 'z': o->zero_io = 1; break;
  case 'v': o->verbose = 1; break;
  case OPT_DNS_SERVER:
    if (!*optarg)
      usage_error("--dns-server is empty");
    o->dns_servers = optarg;
    break;
  case OPT_TLS: o->tls = 1; break;
  case OPT_INSECURE: o->insecure = 1; break;
  case OPT_ALPN:
  case OPT_CAFILE:
  case OPT_CAPATH:
  case OPT_CERT:
  case OPT_KEY:
  case OPT_SERVERNAME:
    if (!*optarg)
      usage_error("--%s is empty", name);
    *(c == OPT_ALPN     ? &o->alpn
      : c == OPT_CAFILE ? &o->cafile
      : c == OPT_CAPATH ? &o->capath
      : c == OPT_CERT   ? &o->cert
      : c == OPT_KEY    ? &o->key
                        : &o->servername) = optarg;
    break;
  case OPT_TLS_MIN:
    if (strcmp(optarg, "1.2") == 0)
      o->tls_min = IOA_TLS_VERSION_1_2;
    else if (strcmp(optarg, "1.3") == 0)
      o->tls_min = IOA_TLS_VERSION_1_3;
    else
      usage_error("--tls-min: '%s' is not a TLS version (1.2 or 1.3)", optarg);
    break;
  case OPT_SEQUENTIAL:
    st->seen_sequential = 1;
    o->mode = IOA_CONNECT_SEQUENTIAL;
    break;
  case OPT_RACE:
    st->seen_race = 1;
    o->mode = IOA_CONNECT_RACE;
    break;
  case OPT_TRACE:
    if (strcmp(optarg, "json") != 0)
      usage_error("--trace: '%s' is not a trace format (the only one is 'json')", optarg);
    o->trace_json = 1;
    break;
  case 'h':
    print_help();
    exit(0);
  case 'V':
    printf("ioa-connect (ioasync) %d.%d.%d\n", IOA_VERSION_MAJOR, IOA_VERSION_MINOR,
           IOA_VERSION_PATCH);
    exit(0);
  default:
    if (!parse_timing_option(o, c))
      usage_error("unhandled option '%s'", name);
  }
}

/* After the options: HOST SERVICE (or none, with --addr), and the
 * combinations no single option can check. */
static void check_arguments(cli_opts *o, const opt_state *st, int argc, char **argv) {
  if (st->seen_sequential && st->seen_race)
    usage_error("--sequential and --race cannot be combined");
  if (o->verbose && o->trace_json)
    usage_error("-v and --trace json both write to stderr; choose one");
  int npos = argc - optind;
  if (o->naddr_args > 0) {
    if (npos > 0)
      usage_error("unexpected argument '%s': with --addr, give no HOST SERVICE", argv[optind]);
  } else {
    if (npos == 0)
      usage_error("missing HOST and SERVICE (or --addr ADDR)");
    if (npos == 1)
      usage_error("missing SERVICE after HOST '%s'", argv[optind]);
    if (npos > 2)
      usage_error("unexpected argument '%s' after HOST SERVICE", argv[optind + 2]);
    o->host = argv[optind];
    o->service = argv[optind + 1];
    if (!*o->host)
      usage_error("HOST is empty");
    if (!*o->service)
      usage_error("SERVICE is empty");
  }
  if (o->nlocal_args > 0 && (o->local_host || o->local_service))
    usage_error("--local cannot be combined with --local-host/--local-service");
  if (o->dns_servers && !o->host && !o->local_host && !o->local_service)
    usage_error("--dns-server '%s': nothing to resolve (give HOST SERVICE or --local-host)",
                o->dns_servers);
  if (o->local_host && !*o->local_host)
    usage_error("--local-host is empty");
  if (o->local_service && !*o->local_service)
    usage_error("--local-service is empty");
  const char *tls_opt = o->alpn         ? "--alpn"
                        : o->cafile     ? "--cafile"
                        : o->capath     ? "--capath"
                        : o->cert       ? "--cert"
                        : o->key        ? "--key"
                        : o->servername ? "--servername"
                        : o->tls_min    ? "--tls-min"
                        : o->insecure   ? "--insecure"
                                        : NULL;
  if (tls_opt && !o->tls)
    usage_error("%s needs --tls", tls_opt);
  if (o->tls && !o->cert != !o->key)
    usage_error("--cert and --key go together");
  if (o->tls && o->socktype != SOCK_STREAM && o->socktype != IOA_HINT_UNSET)
    usage_error("--tls needs stream sockets (not --socktype %s)", o->socktype_arg);
}

static void parse_options(cli_opts *o, int argc, char **argv) {
  memset(o, 0, sizeof *o);
  o->family = AF_UNSPEC;
  o->socktype = SOCK_STREAM;
  o->protocol = IOA_HINT_UNSET;
  o->mode = IOA_CONNECT_AUTO;
  opt_state st = {0};
  opterr = 0; /* our own messages name the bad argument precisely */
  for (;;) {
    int long_index = -1;
    int c = getopt_long(argc, argv, ":46t:nzq:vhV", long_options, &long_index);
    if (c == -1)
      break;
    if (c == ':' || c == '?')
      option_error(c, argv);
    parse_option(o, &st, c, option_name(c, long_index));
  }
  check_arguments(o, &st, argc, argv);
}

/* Parse one ADDR argument.  A unix path that does not fit sun_path is an
 * error naming the limit, never truncated. */
static void parse_addr_arg(const cli_opts *o, const char *opt, const char *text, ioa_addr *out) {
  ioa_errinfo ei;
  memset(&ei, 0, sizeof ei);
  int socktype = o->socktype == IOA_HINT_UNSET ? SOCK_STREAM : o->socktype;
  int protocol = o->protocol == IOA_HINT_UNSET ? 0 : o->protocol;
  int rc = ioa_addr_parse(text, IOA_NUL_TERMINATED, IOA_ADDR_PARSE_SERVICE, socktype, protocol, out, &ei);
  if (rc == 0)
    return;
  const char *msg = ei.message[0] ? ei.message : ioa_strerror(rc);
  if (rc == IOA_EADDRPATHLEN) {
    /* Name the limit, unless the library's message already does. */
    size_t limit = sizeof(((struct sockaddr_un *)0)->sun_path);
    char lim[2][24];
    snprintf(lim[0], sizeof lim[0], "%zu", limit);
    snprintf(lim[1], sizeof lim[1], "%zu", limit - 1);
    if (!strstr(msg, lim[0]) && !strstr(msg, lim[1]))
      usage_error("%s '%s': %s (%s; sun_path holds %zu bytes including the NUL)", opt, text, msg,
                  ioa_err_name(rc), limit);
  }
  usage_error("%s '%s': %s (%s)", opt, text, msg, ioa_err_name(rc));
}

/* -4/-6 with explicit addresses: keep that family only, and say so. */
static void filter_family(cli *c, const char *what, ioa_addr *list, size_t *n) {
  if (c->o.family == AF_UNSPEC || *n == 0)
    return;
  ioa_addr *dropped = calloc(*n, sizeof *dropped);
  if (!dropped) {
    fprintf(stderr, "%s: out of memory\n", progname);
    exit(EXIT_CONNECT_ERROR);
  }
  size_t kept = 0, ndropped = 0;
  for (size_t i = 0; i < *n; i++)
    kept += list[i].family == c->o.family;
  if (kept == 0) {
    free(dropped);
    usage_error("%s: none of the %s addresses is %s", c->o.family == AF_INET ? "-4" : "-6", what,
                c->o.family == AF_INET ? "inet (IPv4)" : "inet6 (IPv6)");
  }
  kept = 0;
  for (size_t i = 0; i < *n; i++) {
    if (list[i].family == c->o.family)
      list[kept++] = list[i];
    else
      dropped[ndropped++] = list[i];
  }
  if (ndropped > 0)
    cli_trace_filter(&c->trace, what, c->o.family, list, kept, dropped, ndropped);
  free(dropped);
  *n = kept;
}

/* ---------------------------------------------------------------- finishing */

static void finish(cli *c, int code) {
  if (c->finished)
    return;
  c->finished = 1;
  c->exit_code = code;
  ioa_loop_stop(c->loop);
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        /* Someone made our stdout non-blocking; wait rather than drop. */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        poll(&pfd, 1, -1);
        continue;
      }
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* An I/O error after connecting: trace it, say it (unless the trace is
 * JSON, which already did), exit 1.  what names it in the message. */
static void io_failed(cli *c, const char *syscall, const char *what, int err) {
  cli_trace_io_error(&c->trace, syscall, err);
  if (!(c->trace.mode & CLI_TRACE_JSON))
    fprintf(stderr, "%s: %s: %s\n", progname, what, ioa_strerror(err));
  finish(c, EXIT_CONNECT_ERROR);
}

static void stdout_failed(cli *c, int err) {
  if (err == -EPIPE) {
    /* Whoever read our stdout went away (`ioa-connect ... | head`): the
     * normal end of a pipeline, not a failure.  cat and nc die of SIGPIPE
     * there; we ignore SIGPIPE, so end quietly instead, with the status
     * of a copy that ended normally. */
    cli_trace_note(&c->trace, "stdout closed by its reader (EPIPE): done");
    finish(c, EXIT_CONNECTED);
    return;
  }
  io_failed(c, "write(stdout)", "stdout", err);
}

/* ---------------------------------------------------------------- stdin pump */

static void stdin_stop(cli *c) {
  if (c->stdin_pollable)
    ioa_io_stop(&c->stdin_io);
  else
    ioa_defer_stop(&c->stdin_defer);
  c->stdin_running = 0;
}

static void stdin_start(cli *c) {
  if (c->stdin_eof || c->stdin_paused || c->finished || c->stdin_running)
    return;
  if (c->stdin_pollable)
    c->stdin_running = ioa_io_start(&c->stdin_io, IOA_READ) == 0;
  else {
    ioa_defer_start(&c->stdin_defer);
    c->stdin_running = 1;
  }
}

static void quit_timer_cb(ioa_timer *t, void *data) {
  (void)t;
  cli *c = data;
  finish(c, EXIT_CONNECTED);
}

static void quit_countdown(cli *c) {
  unsigned quit_ms = c->o.quit_after_set ? c->o.quit_after_ms : 1000;
  c->quit_on_drain = 0;
  if (ioa_timer_start(&c->quit_timer, (uint64_t)quit_ms * 1000000u, 0) != 0)
    finish(c, EXIT_CONNECTED);
}

static void send_packet(cli *c, const char *buf, size_t len) {
  c->sock_queued = 1; /* until on_drain says the send queue is empty */
  int rc = ioa_socket_send(c->sock, buf, len, NULL);
  if (rc < 0)
    io_failed(c, "send", "send", rc);
}

static void stdin_got_eof(cli *c) {
  c->stdin_eof = 1;
  stdin_stop(c);
  if (c->stream) {
    int rc = ioa_stream_shutdown_write(c->stream);
    if (rc < 0 && rc != -EPIPE && rc != -ENOTCONN)
      cli_trace_io_error(&c->trace, "shutdown", rc);
  } else if (c->sock) {
    /* The last line may lack its newline: still one packet. */
    if (c->line_len > 0) {
      send_packet(c, c->line, c->line_len);
      c->line_len = 0;
    }
  }
  if (!c->finished && (c->o.quit_after_set || c->sock)) {
    /* The -q countdown starts once everything read is on the wire, so a
     * short -q never drops queued data. */
    size_t queued = c->stream ? ioa_stream_queued(c->stream) : 0;
    if (queued > 0 || (c->sock && c->sock_queued))
      c->quit_on_drain = 1;
    else
      quit_countdown(c);
  }
}

static void stdin_consume(cli *c, const char *buf, size_t len) {
  if (c->stream) {
    int rc = ioa_stream_write(c->stream, buf, len);
    if (rc < 0)
      io_failed(c, "write", "write", rc);
    return;
  }
  /* Datagrams: one line (without its newline) per packet. */
  for (size_t i = 0; i < len && !c->finished; i++) {
    if (buf[i] == '\n') {
      send_packet(c, c->line ? c->line : "", c->line_len);
      c->line_len = 0;
      continue;
    }
    if (c->line_len == c->line_cap) {
      size_t cap = c->line_cap ? c->line_cap * 2 : 1024;
      char *l = realloc(c->line, cap);
      if (!l) {
        cli_trace_io_error(&c->trace, "read(stdin)", -ENOMEM);
        finish(c, EXIT_CONNECT_ERROR);
        return;
      }
      c->line = l;
      c->line_cap = cap;
    }
    c->line[c->line_len++] = buf[i];
  }
}

static void stdin_read_once(cli *c) {
  char buf[STDIN_CHUNK];
  ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
  if (n > 0) {
    stdin_consume(c, buf, (size_t)n);
    return;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
    return;
  if (n < 0 && errno != EBADF) {
    int err = -errno;
    cli_trace_io_error(&c->trace, "read(stdin)", err);
  }
  stdin_got_eof(c);
}

static void stdin_io_cb(ioa_io *io, unsigned revents, void *data) {
  (void)io;
  (void)revents;
  stdin_read_once(data);
}

static void stdin_defer_cb(ioa_defer *d, void *data) {
  cli *c = data;
  c->stdin_running = 0;
  stdin_read_once(c);
  /* Regular files and /dev/null cannot be polled: read a chunk per loop
   * iteration instead, so socket traffic still interleaves. */
  if (!c->stdin_eof && !c->finished && !c->stdin_paused) {
    ioa_defer_start(d);
    c->stdin_running = 1;
  }
}

static void stdin_setup(cli *c) {
  ioa_io_init(c->loop, &c->stdin_io, STDIN_FILENO, stdin_io_cb, c);
  ioa_defer_init(c->loop, &c->stdin_defer, stdin_defer_cb, c);
  c->stdin_pollable = 1;
  int rc = ioa_io_start(&c->stdin_io, IOA_READ);
  if (rc == 0) {
    c->stdin_running = 1;
    return;
  }
  c->stdin_pollable = 0;
  if (rc == -EBADF) { /* stdin closed: nothing to send */
    stdin_got_eof(c);
    return;
  }
  stdin_start(c);
}

/* ---------------------------------------------------------------- copy phase */

static size_t stream_read_cb(ioa_stream *s, const uint8_t *buf, size_t len, int eof,
                             void *data) {
  (void)s;
  cli *c = data;
  if (c->finished)
    return len;
  if (len > 0) {
    int rc = write_all(STDOUT_FILENO, buf, len);
    if (rc < 0) {
      stdout_failed(c, rc);
      return len;
    }
  }
  if (eof)
    finish(c, EXIT_CONNECTED); /* the peer closed: like nc, we are done */
  return len;
}

static void stream_error_cb(ioa_stream *s, const char *syscall, int err, void *data) {
  (void)s;
  io_failed(data, syscall, syscall, err);
}

static void stream_drain_cb(ioa_stream *s, void *data) {
  (void)s;
  cli *c = data;
  if (c->quit_on_drain && !c->finished)
    quit_countdown(c);
}

static void socket_drain_cb(ioa_socket *s, void *data) {
  (void)s;
  cli *c = data;
  c->sock_queued = 0;
  if (c->quit_on_drain && !c->finished)
    quit_countdown(c);
}

static void stream_high_water_cb(ioa_stream *s, void *data) {
  (void)s;
  cli *c = data;
  c->stdin_paused = 1;
  stdin_stop(c);
}

static void stream_low_water_cb(ioa_stream *s, void *data) {
  (void)s;
  cli *c = data;
  c->stdin_paused = 0;
  stdin_start(c);
}

static void socket_recv_cb(ioa_socket *s, const uint8_t *buf, size_t len, const ioa_addr *from,
                           void *data) {
  (void)s;
  (void)from;
  cli *c = data;
  if (c->finished)
    return;
  if (len == 0 && c->seqpacket) {
    /* A seqpacket socket reads 0 bytes once the peer has closed. */
    finish(c, EXIT_CONNECTED);
    return;
  }
  int rc = write_all(STDOUT_FILENO, buf, len);
  if (rc == 0)
    rc = write_all(STDOUT_FILENO, "\n", 1);
  if (rc < 0)
    stdout_failed(c, rc);
}

static void socket_error_cb(ioa_socket *s, const char *syscall, int err, void *data) {
  (void)s;
  io_failed(data, syscall, syscall, err);
}

/* The copy's callbacks on c->stream (plain or TLS). */
static void stream_attach(cli *c) {
  ioa_stream_callbacks cbs = {.struct_size = sizeof(ioa_stream_callbacks),
      .on_read = stream_read_cb,
      .on_error = stream_error_cb,
      .on_drain = stream_drain_cb,
      .on_high_water = stream_high_water_cb,
      .on_low_water = stream_low_water_cb,
  };
  ioa_stream_set_callbacks(c->stream, &cbs, c);
}

static void start_copy(cli *c, int fd) {
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0)
    type = SOCK_STREAM;
  int rc;
  if (type == SOCK_STREAM) {
    rc = ioa_stream_new(c->loop, fd, NULL, &c->stream);
    if (rc == 0)
      stream_attach(c);
  } else {
    c->seqpacket = type == SOCK_SEQPACKET;
    rc = ioa_socket_new(c->loop, fd, NULL, &c->sock);
    if (rc == 0) {
      ioa_socket_callbacks cbs = {.struct_size = sizeof(ioa_socket_callbacks),
          .on_recv = socket_recv_cb, .on_error = socket_error_cb, .on_drain = socket_drain_cb};
      ioa_socket_set_callbacks(c->sock, &cbs, c);
    }
  }
  if (rc < 0) {
    close(fd);
    cli_trace_io_error(&c->trace, type == SOCK_STREAM ? "ioa_stream_new" : "ioa_socket_new", rc);
    fprintf(stderr, "%s: cannot set up the connection: %s\n", progname, ioa_strerror(rc));
    finish(c, EXIT_CONNECT_ERROR);
    return;
  }
  stdin_setup(c);
}

/* ---------------------------------------------------------------- connect callbacks */

/* The local address of fd for the trace (NULL: an unnamed unix socket). */
static const ioa_addr *local_of(int fd, const ioa_addr *peer, ioa_addr *local) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
      !(ss.ss_family == AF_UNIX && sl <= sizeof(sa_family_t)) &&
      ioa_addr_from_sockaddr((struct sockaddr *)&ss, sl, peer ? peer->socktype : 0,
                             peer ? peer->protocol : 0, local) == 0)
    return local;
  return NULL;
}

/* --tls: the stream is TLS already, its handshake done and verified. */
static void on_tls_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer,
                          void *data) {
  (void)req;
  cli *c = data;
  c->req = NULL;
  c->connecting = 0;
  ioa_addr local;
  cli_trace_connected(&c->trace, peer, local_of(ioa_stream_fd(s), peer, &local));
  ioa_tls_info info;
  ioa_tls_info_init(&info);
  if (ioa_tls_stream_info(s, &info) == 0)
    cli_trace_tls(&c->trace, &info);
  cli_trace_waterfall(&c->trace);
  c->stream = s;
  if (c->o.zero_io || c->finished) {
    finish(c, c->finished ? c->exit_code : EXIT_CONNECTED);
    return;
  }
  stream_attach(c);
  stdin_setup(c);
}

static void on_handshake(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                         void *data) {
  (void)req;
  cli_trace_handshake(&((cli *)data)->trace, peer, local);
}

static void on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  (void)req;
  cli *c = data;
  c->req = NULL; /* invalid once this callback returns */
  c->connecting = 0;
  ioa_addr local;
  cli_trace_connected(&c->trace, peer, local_of(fd, peer, &local));
  cli_trace_waterfall(&c->trace);
  if (c->o.zero_io || c->finished) {
    close(fd);
    finish(c, c->finished ? c->exit_code : EXIT_CONNECTED);
    return;
  }
  start_copy(c, fd);
}

static void on_connect_error(ioa_connect_req *req, ioa_syscall syscall, int err, void *data) {
  cli *c = data;
  c->req = NULL;
  c->connecting = 0;
  cli_trace_connect_error(&c->trace, syscall, err);
  cli_trace_waterfall(&c->trace);
  /* A TLS failure says why in its own words ("certificate has expired"). */
  const char *why = ioa_strerror(err);
  const ioa_attempt_failure *f;
  size_t n = ioa_connect_failures(req, &f);
  for (size_t i = n; syscall == IOA_SYSCALL_TLS && i-- > 0;)
    if (f[i].syscall == IOA_SYSCALL_TLS && f[i].err == err) {
      why = f[i].message;
      break;
    }
  if (!(c->trace.mode & CLI_TRACE_JSON) && !c->signal_exit)
    fprintf(stderr, "%s: cannot connect: %s%s%s (%s)\n", progname,
            syscall == IOA_SYSCALL_NONE ? "" : ioa_syscall_name(syscall),
            syscall == IOA_SYSCALL_NONE   ? ""
            : syscall == IOA_SYSCALL_TLS ? ": "
                                         : "() failed: ",
            why, ioa_err_name(err));
  finish(c, c->signal_exit ? c->exit_code : EXIT_CONNECT_ERROR);
}

static void on_resolve_error(ioa_connect_req *req, int err, const char *message, void *data) {
  (void)req;
  cli *c = data;
  c->req = NULL;
  c->connecting = 0;
  cli_trace_resolve_error(&c->trace, err, message);
  cli_trace_waterfall(&c->trace);
  if (!(c->trace.mode & CLI_TRACE_JSON))
    fprintf(stderr, "%s: cannot resolve: %s (%s)\n", progname,
            message && *message ? message : ioa_strerror(err), ioa_err_name(err));
  finish(c, EXIT_RESOLVE_ERROR);
}

static void on_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  (void)req;
  cli_trace_fail(&((cli *)data)->trace, f);
}

static void on_resolved(ioa_connect_req *req, const ioa_addr *addrs, size_t naddrs, int is_local,
                        void *data) {
  (void)req;
  cli_trace_resolved(&((cli *)data)->trace, addrs, naddrs, is_local);
}

static void on_attempt(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                       void *data) {
  (void)req;
  cli_trace_attempt(&((cli *)data)->trace, peer, local);
}

static void on_warning(const char *message, void *data) {
  cli *c = data;
  cli_trace_warning(&c->trace, message);
  if (!c->trace.mode)
    fprintf(stderr, "%s: warning: %s\n", progname, message);
}

/* ---------------------------------------------------------------- signals */

static void signal_cb(ioa_io *io, unsigned revents, void *data) {
  (void)io;
  (void)revents;
  cli *c = data;
  struct signalfd_siginfo si;
  ssize_t n = read(c->sigfd, &si, sizeof si);
  if (n != (ssize_t)sizeof si)
    return;
  int code = si.ssi_signo == SIGINT ? EXIT_SIGINT : EXIT_SIGTERM;
  cli_trace_note(&c->trace, "%s: cancelling", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
  if (c->finished)
    return;
  c->signal_exit = 1;
  c->exit_code = code;
  if (c->connecting && c->req) {
    /* Runs on_connect_error(-ECANCELED) before returning: every attempt's
     * fd is closed and the trace records the cancel. */
    ioa_connect_cancel(c->req);
  }
  finish(c, code);
}

static int signals_setup(cli *c) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  c->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (c->sigfd < 0)
    return -errno;
  ioa_io_init(c->loop, &c->sig_io, c->sigfd, signal_cb, c);
  return ioa_io_start(&c->sig_io, IOA_READ);
}

/* ---------------------------------------------------------------- main */

static const char *hints_text(const cli_opts *o, char *buf, size_t size) {
  const char *fam = o->family == AF_INET ? "inet" : o->family == AF_INET6 ? "inet6" : "any";
  char st[32];
  if (o->socktype == IOA_HINT_UNSET)
    snprintf(st, sizeof st, "unset");
  else if (ioa_socktype_name(o->socktype))
    snprintf(st, sizeof st, "%s", ioa_socktype_name(o->socktype));
  else
    snprintf(st, sizeof st, "%d", o->socktype);
  snprintf(buf, size, "family %s, socktype %s%s", fam, st, o->numeric ? ", numeric" : "");
  return buf;
}

static const char *mode_text(ioa_connect_mode m) {
  switch (m) {
  case IOA_CONNECT_SEQUENTIAL: return "sequential";
  case IOA_CONNECT_RACE: return "Happy Eyeballs race";
  default: return "auto";
  }
}

/* --addr and --local arguments, after all options so that -t/--protocol
 * apply wherever they appear.  Every usage error happens before any socket. */
static int parse_addresses(cli *c) {
  if (c->o.naddr_args > 0) {
    c->addrs = calloc(c->o.naddr_args, sizeof *c->addrs);
    if (!c->addrs)
      return -ENOMEM;
    for (size_t i = 0; i < c->o.naddr_args; i++)
      parse_addr_arg(&c->o, "--addr", c->o.addr_args[i], &c->addrs[i]);
    c->naddrs = c->o.naddr_args;
  }
  if (c->o.nlocal_args > 0) {
    c->locals = calloc(c->o.nlocal_args, sizeof *c->locals);
    if (!c->locals)
      return -ENOMEM;
    for (size_t i = 0; i < c->o.nlocal_args; i++)
      parse_addr_arg(&c->o, "--local", c->o.local_args[i], &c->locals[i]);
    c->nlocals = c->o.nlocal_args;
  }
  filter_family(c, "--addr", c->addrs, &c->naddrs);
  filter_family(c, "--local", c->locals, &c->nlocals);
  return 0;
}

/* The loop, the signal watcher and the -q timer.  Signals are blocked
 * before the loop (and any resolver thread) exists, so only the signalfd
 * sees them; SIGPIPE is ignored, so a closed pipe is an EPIPE we handle.
 * Returns 0 or an exit status (after saying why). */
static int setup_loop(cli *c) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  ioa_loop_options lo;
  ioa_loop_options_init(&lo);
  lo.on_warning = on_warning;
  lo.warning_data = c;
  int rc = ioa_loop_new(&lo, &c->loop);
  if (rc < 0) {
    fprintf(stderr, "%s: cannot create the event loop: %s\n", progname, ioa_strerror(rc));
    return EXIT_CONNECT_ERROR;
  }
  ioa_timer_init(c->loop, &c->quit_timer, quit_timer_cb, c);
  rc = signals_setup(c);
  if (rc < 0) {
    fprintf(stderr, "%s: cannot watch signals: %s\n", progname, ioa_strerror(rc));
    return EXIT_CONNECT_ERROR;
  }
  return 0;
}

/* --dns-server: our own c-ares resolver, so A and AAAA answers arrive
 * separately, as Happy Eyeballs expects, and only the given servers are
 * asked.  Returns 0 or an exit status. */
static int setup_resolver(cli *c) {
  if (!c->o.dns_servers)
    return 0;
  if (!ioa_resolver_have_cares()) {
    fprintf(stderr, "%s: --dns-server needs the c-ares resolver backend, which this build lacks\n",
            progname);
    return EXIT_USAGE;
  }
  ioa_resolver_options ro;
  ioa_resolver_options_init(&ro);
  ro.backend = IOA_RESOLVER_CARES;
  ro.servers = c->o.dns_servers;
  int rc = ioa_resolver_new(c->loop, &ro, &c->resolver);
  if (rc < 0) {
    fprintf(stderr, "%s: --dns-server '%s': %s (%s)\n", progname, c->o.dns_servers,
            ioa_strerror(rc), ioa_err_name(rc));
    return ioa_err_is_input(rc) ? EXIT_USAGE : EXIT_CONNECT_ERROR;
  }
  return 0;
}

/* --tls: the configuration, built (files read) before anything connects.
 * Returns 0 or an exit status. */
static int setup_tls(cli *c) {
  if (!c->o.tls)
    return 0;
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.ca_file = c->o.cafile;
  o.ca_path = c->o.capath;
  o.cert_file = c->o.cert;
  o.key_file = c->o.key;
  o.alpn = c->o.alpn;
  o.min_version = c->o.tls_min;
  o.insecure_skip_verify = c->o.insecure;
  ioa_errinfo ei;
  int rc = ioa_tls_config_new(&o, &c->tls, &ei);
  if (rc < 0) {
    fprintf(stderr, "%s: --tls: %s (%s)\n", progname, ei.message[0] ? ei.message : ioa_strerror(rc),
            ioa_err_name(rc));
    return ioa_err_is_input(rc) ? EXIT_USAGE : EXIT_CONNECT_ERROR;
  }
  return 0;
}

/* The connect parameters from the options, and the trace's first line. */
static void fill_params(cli *c, ioa_connect_params *p) {
  ioa_connect_params_init(p);
  p->resolver = c->resolver;
  p->family = c->o.family;
  p->socktype = c->o.socktype;
  p->protocol = c->o.protocol;
  if (c->o.numeric)
    p->flags |= AI_NUMERICHOST | AI_NUMERICSERV;
  p->mode = c->o.mode;
  p->attempt_delay_ms = c->o.attempt_delay_ms;
  p->first_family_count = c->o.first_family_count;
  p->learned_delay = c->o.no_learned_delay ? IOA_LEARNED_DELAY_OFF : IOA_LEARNED_DELAY_ON;
  p->resolution_delay_ms = c->o.resolution_delay_ms;
  p->attempt_timeout_ms = c->o.attempt_timeout_ms;
  p->timeout_ms = c->o.timeout_ms;
  p->on_connected = on_connected;
  p->on_connect_error = on_connect_error;
  p->on_resolve_error = on_resolve_error;
  p->on_fail = on_fail;
  p->on_resolved = on_resolved;
  p->on_attempt = on_attempt;
  p->on_warning = on_warning;
  p->data = c;
  if (c->tls) {
    p->on_connected = NULL;
    p->on_stream = on_tls_stream;
    p->tls = c->tls;
    p->tls_server_name = c->o.servername;
    p->on_handshake = on_handshake;
  }
  char hints[128];
  hints_text(&c->o, hints, sizeof hints);
  if (c->naddrs > 0) {
    p->addrs = c->addrs;
    p->naddrs = c->naddrs;
    cli_trace_note(&c->trace, "connecting to %zu address%s (%s, %s mode)", c->naddrs,
                   c->naddrs == 1 ? "" : "es", hints, mode_text(c->o.mode));
  } else {
    p->host = c->o.host;
    p->service = c->o.service;
    cli_trace_resolving(&c->trace, 0, c->o.host, c->o.service, hints);
  }
  if (c->nlocals > 0) {
    p->local_addrs = c->locals;
    p->nlocal = c->nlocals;
  } else if (c->o.local_host || c->o.local_service) {
    p->local_host = c->o.local_host;
    p->local_service = c->o.local_service;
    cli_trace_resolving(&c->trace, 1, c->o.local_host, c->o.local_service, hints);
  }
}

/* ioa_connect refused the request before any work: say why, and map the
 * code to an exit status. */
static int refused_status(cli *c, int rc) {
  int code = EXIT_CONNECT_ERROR;
  if (ioa_err_is_resolver(rc) || rc == IOA_EHOSTNAME)
    code = EXIT_RESOLVE_ERROR; /* an invalid host name is the resolver's kind of error */
  else if (ioa_err_is_input(rc))
    code = EXIT_USAGE;
  if (code == EXIT_RESOLVE_ERROR)
    cli_trace_resolve_error(&c->trace, rc, ioa_strerror(rc));
  else if (code == EXIT_CONNECT_ERROR)
    cli_trace_connect_error(&c->trace, IOA_SYSCALL_NONE, rc);
  fprintf(stderr, "%s: %s: %s (%s)\n", progname,
          code == EXIT_USAGE ? "invalid parameters" : "cannot connect", ioa_strerror(rc),
          ioa_err_name(rc));
  return code;
}

/* Start the connect and run the loop until a callback decides the exit
 * status.  Returns that status. */
static int connect_and_run(cli *c) {
  ioa_connect_params p;
  fill_params(c, &p);
  int rc = ioa_connect(c->loop, &p, &c->req);
  if (rc < 0) {
    c->finished = 1;
    return c->exit_code = refused_status(c, rc);
  }
  c->connecting = 1;
  rc = ioa_loop_run(c->loop, IOA_RUN_DEFAULT);
  if (c->finished)
    return c->exit_code;
  if (rc < 0)
    fprintf(stderr, "%s: event loop failed: %s\n", progname, ioa_strerror(rc));
  else /* the loop ran dry without a verdict: a library bug, not success */
    fprintf(stderr, "%s: the event loop stopped before the connection finished\n", progname);
  return c->exit_code = EXIT_CONNECT_ERROR;
}

/* The request first (its completion runs now if still live), then the
 * copy-phase objects, watchers, and the loop last.  Safe after a partial
 * setup. */
static void teardown(cli *c) {
  if (c->req && c->connecting) {
    c->signal_exit = 1; /* keep the exit code already decided */
    ioa_connect_cancel(c->req);
  }
  if (c->stream)
    ioa_stream_free(c->stream);
  if (c->sock)
    ioa_socket_free(c->sock);
  if (c->loop) {
    if (c->stdin_pollable)
      ioa_io_stop(&c->stdin_io);
    else if (c->stdin_running)
      ioa_defer_stop(&c->stdin_defer);
    ioa_timer_stop(&c->quit_timer);
  }
  if (c->resolver) {
    ioa_resolver_free(c->resolver);
    /* Late results free themselves on the loop: give them one turn. */
    ioa_loop_run(c->loop, IOA_RUN_NOWAIT);
  }
  if (c->sigfd >= 0) {
    ioa_io_stop(&c->sig_io);
    close(c->sigfd);
  }
  ioa_loop_free(c->loop);
  ioa_tls_config_unref(c->tls);
  cli_trace_free(&c->trace);
  free(c->line);
  free(c->addrs);
  free(c->locals);
  free(c->o.addr_args);
  free(c->o.local_args);
}

int main(int argc, char **argv) {
  cli c;
  memset(&c, 0, sizeof c);
  c.sigfd = -1;
  parse_options(&c.o, argc, argv);
  unsigned mode = (c.o.verbose ? CLI_TRACE_HUMAN : 0) | (c.o.trace_json ? CLI_TRACE_JSON : 0);
  cli_trace_init(&c.trace, mode, stderr);
  int code = parse_addresses(&c) < 0 ? EXIT_CONNECT_ERROR : 0;
  if (code == 0)
    code = setup_loop(&c);
  if (code == 0)
    code = setup_resolver(&c);
  if (code == 0)
    code = setup_tls(&c);
  if (code == 0)
    code = connect_and_run(&c);
  teardown(&c);
  fflush(stdout);
  return code;
}
