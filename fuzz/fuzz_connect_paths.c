/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the connector's two decision paths must be
 * indistinguishable, for one numeric address and for a name.
 *
 * ioa_connect() takes a single address without the decision core
 * (connect_fast; io_cb's success; inflate() hands the core everything
 * else), and a name whose answer is one address the same way
 * (FAST_NAME_*), so the core's own fuzzer never sees the path most callers
 * take.
 * This target runs every input twice through src/connect.c — once as
 * ioa_connect() does, once with the fast path refused (start_connect with
 * allow_fast 0: the core from the start) — with the same injected syscall
 * results, the same fake clock and the same event sequence, and requires the
 * same observable trace: ioa_connect's result, each syscall and its answer,
 * every callback with its arguments (completion kind, error, syscall, fd,
 * peer), the failure list, warnings, and every fd closed and by whom.
 *
 * How: connect.c is compiled into this file with its seams replaced.  src/
 * sys.h (every syscall) is not included — the ioa__sys_* below answer from
 * the input — and the loop functions connect.c calls (watchers, defers,
 * timers, clock, spare block, warnings, the stream/socket wrappers) are
 * renamed by the preprocessor to fakes driven by the input; its public
 * names are renamed too, so they do not clash with the library's copy.  The
 * resolver is faked the same way (one lookup at a time, answered by an
 * event with 0-3 addresses or an error, or refused at the start), and each
 * run gets a fresh RTT cache, so one run's learning cannot steer the next.
 * The decision core (connect_core.c) and the RTT cache (rtt.c) are the
 * library's own.  No socket is opened.
 *
 * TLS requests (a configuration bit) never take a fast path: their
 * handshake is the core's HANDSHAKE action, so both runs must make the
 * same handshakes.  The TLS calls connect.c makes are faked too: the
 * configuration's references, the transport (made or refused by the
 * script), and the stream it runs on, whose handshake is a watcher the
 * events fire (ok, reset, EOF without close_notify, or a verification
 * failure).  Every handshake stream must be detached or finished before
 * it is freed, and every reference returned.
 *
 * Input: 4 configuration bytes (callbacks and what they do, the address or
 * a name, the hints, the length S of the syscall script), S script bytes
 * (one per syscall, wrapper or lookup call, in call order), then events:
 * run a deferred callback, fire a watcher with some revents, advance the
 * clock, cancel, fire a due timer, answer the lookup.
 *
 * Also checked on each run: exactly one completion, never inside
 * ioa_connect(); on_fail's fd is open; every fd the connector opened is
 * closed (by it, or by the caller it was handed to); nothing stays started
 * on the loop once the request is complete; no leak (LeakSanitizer).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------- the seams */

#define IOA_SYS_H 1 /* src/sys.h: replaced by the fake syscalls below */

#define ioa_io_init fz_io_init
#define ioa__io_start_oneshot fz_io_start_oneshot
#define ioa_io_stop fz_io_stop
#define ioa_defer_init fz_defer_init
#define ioa_defer_start fz_defer_start
#define ioa_defer_stop fz_defer_stop
#define ioa_timer_init fz_timer_init
#define ioa_timer_start_at fz_timer_start_at
#define ioa_timer_stop fz_timer_stop
#define ioa_loop_now fz_loop_now
#define ioa_loop_update_time fz_loop_update_time
#define ioa__loop_spare_take fz_spare_take
#define ioa__loop_spare_give fz_spare_give
#define ioa_loop_warn fz_loop_warn
#define ioa_stream_new fz_stream_new
#define ioa_socket_new fz_socket_new
#define ioa_connect fz_connect
#define ioa_connect_cancel fz_connect_cancel
#define ioa_connect_failures fz_connect_failures
#define ioa_syscall_name fz_syscall_name
#define ioa_connect_params_init_size fz_connect_params_init_size
#define ioa_resolve fz_resolve
#define ioa_resolve_cancel fz_resolve_cancel
#define ioa_resolver_default fz_resolver_default
#define ioa_resolver_capabilities fz_resolver_caps
#define ioa__resolve_at_hand fz_resolve_at_hand
#define ioa__resolver_order fz_resolver_order
#define ioa_rtt_cache_default fz_rtt_cache_default
#define ioa_tls_available fz_tls_available
#define ioa__tls_check_name fz_tls_check_name
#define ioa__tls_insecure fz_tls_insecure
#define ioa__tls_transport_new fz_tls_transport_new
#define ioa_tls_config_ref fz_tls_config_ref
#define ioa_tls_config_unref fz_tls_config_unref
#define ioa__stream_start_transport fz_stream_start_transport
#define ioa__stream_detach_handshake fz_stream_detach_handshake
#define ioa__stream_release_fd fz_stream_release_fd
#define ioa_stream_free fz_stream_free

static int fz_sys(int op, int a, int b, int c);
static int ioa__sys_socket(int domain, int type, int protocol) {
  return fz_sys('s', domain, type, protocol);
}
static int ioa__sys_bind(int fd, const struct sockaddr *sa, socklen_t len) {
  (void)sa, (void)len;
  return fz_sys('b', fd, 0, 0);
}
static int ioa__sys_connect(int fd, const struct sockaddr *sa, socklen_t len) {
  (void)sa, (void)len;
  return fz_sys('c', fd, 0, 0);
}
static int ioa__sys_getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
  (void)name;
  if (level == IPPROTO_TCP) { /* TCP_INFO: an RTT from the script (or a failure) */
    int r = fz_sys('t', fd, 0, 0);
    if (r < 0)
      return -1;
    memset(val, 0, *len);
    if (*len >= sizeof(struct tcp_info))
      ((struct tcp_info *)val)->tcpi_rtt = (uint32_t)r * 997u;
    return 0;
  }
  int r = fz_sys('g', fd, 0, 0); /* < 0: getsockopt failed; else SO_ERROR */
  if (r < 0)
    return -1;
  if (*len >= sizeof(int))
    memcpy(val, &r, sizeof r);
  return 0;
}
static int ioa__sys_setsockopt(int fd, int level, int name, const void *val, socklen_t len) {
  (void)level, (void)name, (void)val, (void)len;
  return fz_sys('o', fd, 0, 0);
}
static void fz_close(int fd, int by_user);
static void ioa__sys_close(int fd) { fz_close(fd, 0); }

#include "../src/connect.c"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------ the harness */

#define MS 1000000ull
#define T0 (1000 * MS)
#define NFD 16
#define FD_BASE 100
#define MAX_TRACE 512
#define MAX_HANDLES 8
#define MAX_EVENTS 64

typedef struct cursor {
  const uint8_t *d;
  size_t n, i;
} cursor;

static unsigned next_byte(cursor *c) { return c->i < c->n ? c->d[c->i++] : 0; }

#define MAX_WRAPPERS 4

/* What fz_stream_new / fz_socket_new hand over; a stream may carry a TLS
 * transport whose handshake is a watcher on its fd. */
typedef struct fake_wrapper {
  int used, fd, released;
  ioa__transport *tr;
  ioa__stream_handshake_cb on_hs; /* set while a handshake runs, not detached */
  void *hs_data;
  ioa_io hs_io;
} fake_wrapper;

typedef struct fake_lookup { /* the one lookup out (fz_resolve) */
  int active;
  ioa_resolve_cb on_done;
  ioa_resolve_partial_cb on_partial;
  void *data;
} fake_lookup;

/* One run's world: the fake loop, kernel and caller. */
typedef struct world {
  uint64_t now;
  cursor script, events;
  ioa_io *ios[MAX_HANDLES];
  ioa_defer *defers[MAX_HANDLES];
  ioa_timer *timers[MAX_HANDLES];
  void *spare;
  size_t spare_size;
  uint8_t fd_open[NFD];
  uint64_t trace[MAX_TRACE];
  size_t ntrace;
  /* the caller */
  ioa_connect_req *req;
  int in_connect, completions, cancel_in_fail, cancel_in_done, cancel_in_handshake;
  fake_wrapper wrappers[MAX_WRAPPERS];
  int tls_insecure;  /* what the fake configuration says */
  int tls_refs;      /* references the connector holds */
  int transports;    /* fake transports alive */
  fake_lookup lookup;
  ioa_rtt_cache *rtt; /* this run's: fz_rtt_cache_default */
} world;

static world W;

enum { /* trace tags */
  T_RETURN = 1, T_SYS, T_START, T_CLOSE, T_USER_CLOSE, T_FAIL, T_FAILURE, T_DONE, T_WRAP,
  T_WARN, T_HOOK_WARN, T_OUT, T_LOOKUP, T_ANSWER, T_TLS, T_HANDSHAKE, T_HS_DONE, T_HOOK_HS,
};

static void trace(uint64_t tag, uint64_t a, uint64_t b, uint64_t c) {
  if (W.ntrace + 4 > MAX_TRACE)
    return; /* both runs stop recording at the same point, or differ before */
  W.trace[W.ntrace++] = tag;
  W.trace[W.ntrace++] = a;
  W.trace[W.ntrace++] = b;
  W.trace[W.ntrace++] = c;
}

static uint64_t hash_text(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static int fd_is_open(int fd) {
  return fd >= FD_BASE && fd < FD_BASE + NFD && W.fd_open[fd - FD_BASE];
}

static void fz_close(int fd, int by_user) {
  CHECK(fd_is_open(fd));
  W.fd_open[fd - FD_BASE] = 0;
  trace(by_user ? T_USER_CLOSE : T_CLOSE, (uint64_t)fd, W.now, 0);
}

static int fail_with(int e) {
  errno = e;
  return -1;
}

/* A syscall's answer, from the script. */
static int fz_sys(int op, int a, int b, int c) {
  static const int socket_errs[] = {EMFILE, ENFILE, EACCES, ENOBUFS, EAFNOSUPPORT, EINVAL};
  static const int connect_errs[] = {ECONNREFUSED, ENOENT, ENETUNREACH, EADDRNOTAVAIL};
  static const int so_errors[] = {0, 0, 0, ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ECONNRESET};
  unsigned s = next_byte(&W.script);
  int r = 0;
  switch (op) {
  case 's':
    if (s % 5 == 4) {
      r = fail_with(socket_errs[(s / 5) % 6]);
      break;
    }
    r = fail_with(EMFILE);
    for (int i = 0; i < NFD; i++)
      if (!W.fd_open[i]) {
        W.fd_open[i] = 1;
        r = FD_BASE + i;
        break;
      }
    break;
  case 'c':
    CHECK(fd_is_open(a));
    if (s % 8 == 0)
      r = 0; /* connected at once (UDP, unix) */
    else if (s % 8 <= 3)
      r = fail_with(EINPROGRESS);
    else if (s % 8 == 4)
      r = fail_with(EINTR);
    else
      r = fail_with(connect_errs[(s / 8) % 4]);
    break;
  case 'g':
    CHECK(fd_is_open(a));
    r = s % 8 == 7 ? (errno = EBADF, -1) : so_errors[s % 8];
    break;
  case 't':
    CHECK(fd_is_open(a));
    r = s % 16 == 15 ? (errno = EOPNOTSUPP, -1) : (int)s;
    break;
  case 'b':
  case 'o':
    CHECK(fd_is_open(a));
    r = s % 4 == 3 ? fail_with(EADDRINUSE) : 0;
    break;
  default:
    CHECK(0);
  }
  trace(T_SYS, (uint64_t)op << 32 | (uint32_t)a, (uint64_t)(uint32_t)b << 32 | (uint32_t)c,
        (uint64_t)(int64_t)(r < 0 ? -errno : r));
  return r;
}

/* ------------------------------------------------- the loop, faked */

static int list_add(void **v, void *p) {
  for (int i = 0; i < MAX_HANDLES; i++)
    if (v[i] == p)
      return 0;
  for (int i = 0; i < MAX_HANDLES; i++)
    if (!v[i]) {
      v[i] = p;
      return 0;
    }
  CHECK(0); /* more handles than the connector ever starts */
  return -1;
}

static void list_del(void **v, void *p) {
  for (int i = 0; i < MAX_HANDLES; i++)
    if (v[i] == p)
      v[i] = NULL;
}

static int list_count(void **v) {
  int n = 0;
  for (int i = 0; i < MAX_HANDLES; i++)
    n += v[i] != NULL;
  return n;
}

void fz_io_init(ioa_loop *loop, ioa_io *io, int fd, ioa_io_cb cb, void *data) {
  memset(io, 0, sizeof *io);
  io->loop_ = loop;
  io->fd_ = fd;
  io->cb_ = cb;
  io->data_ = data;
}

int fz_io_start_oneshot(ioa_io *io, unsigned events) {
  CHECK(fd_is_open(io->fd_));
  unsigned s = next_byte(&W.script);
  int r = s % 6 == 5 ? -ENOMEM : 0;
  trace(T_START, (uint64_t)io->fd_, events, (uint64_t)(int64_t)r);
  if (r == 0) {
    io->events_ = events;
    io->active_ = 1;
    list_add((void **)W.ios, io);
  }
  return r;
}

void fz_io_stop(ioa_io *io) {
  io->active_ = 0;
  list_del((void **)W.ios, io);
}

void fz_defer_init(ioa_loop *loop, ioa_defer *d, ioa_defer_cb cb, void *data) {
  memset(d, 0, sizeof *d);
  d->loop_ = loop;
  d->cb_ = cb;
  d->data_ = data;
}

void fz_defer_start(ioa_defer *d) {
  d->active_ = 1;
  list_add((void **)W.defers, d);
}

void fz_defer_stop(ioa_defer *d) {
  d->active_ = 0;
  list_del((void **)W.defers, d);
}

void fz_timer_init(ioa_loop *loop, ioa_timer *t, ioa_timer_cb cb, void *data) {
  memset(t, 0, sizeof *t);
  t->loop_ = loop;
  t->cb_ = cb;
  t->data_ = data;
}

int fz_timer_start_at(ioa_timer *t, uint64_t due_ns, uint64_t repeat_ns) {
  t->due_ns_ = due_ns;
  t->repeat_ns_ = repeat_ns;
  list_add((void **)W.timers, t);
  return 0;
}

void fz_timer_stop(ioa_timer *t) { list_del((void **)W.timers, t); }

uint64_t fz_loop_now(const ioa_loop *loop) {
  (void)loop;
  return W.now;
}

uint64_t fz_loop_update_time(ioa_loop *loop) {
  (void)loop;
  return W.now;
}

void *fz_spare_take(ioa_loop *loop, size_t size) {
  (void)loop;
  if (!W.spare || W.spare_size != size)
    return NULL;
  void *p = W.spare;
  W.spare = NULL;
  return p;
}

void fz_spare_give(ioa_loop *loop, void *p, size_t size) {
  (void)loop;
  free(W.spare);
  W.spare = p;
  W.spare_size = size;
}

void fz_loop_warn(ioa_loop *loop, const char *fmt, ...) {
  (void)loop;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  trace(T_WARN, hash_text(buf), 0, 0);
}

/* The wrappers take the fd (or refuse, leaving it to the connector); the
 * options they were given are part of the trace. */
static fake_wrapper *fake_wrap(int fd, uint64_t opt1, uint64_t opt2) {
  CHECK(fd_is_open(fd));
  unsigned s = next_byte(&W.script);
  int r = s % 4 == 3 ? -ENOMEM : 0;
  trace(T_WRAP, (uint64_t)fd << 32 | (uint32_t)r, opt1, opt2);
  if (r < 0)
    return NULL;
  for (int i = 0; i < MAX_WRAPPERS; i++)
    if (!W.wrappers[i].used) {
      W.wrappers[i] = (fake_wrapper){.used = 1, .fd = fd};
      return &W.wrappers[i];
    }
  CHECK(0); /* more than the connector ever holds at once */
  return NULL;
}

static fake_wrapper *wrapper_of(const void *p) {
  for (int i = 0; i < MAX_WRAPPERS; i++)
    if (p == &W.wrappers[i]) {
      CHECK(W.wrappers[i].used);
      return &W.wrappers[i];
    }
  CHECK(0); /* not one of ours */
  return NULL;
}

static void fake_tr_free(ioa__transport *t) {
  CHECK(W.transports > 0);
  W.transports--;
  free(t);
}

static const ioa__transport_ops fake_tr_ops = {.free = fake_tr_free};

/* The end of a wrapper: its fd closed (by the callee, or by the connector
 * freeing a stream it kept), unless released; its transport freed. */
static void wrapper_end(fake_wrapper *w, int by_user) {
  CHECK(!w->on_hs && !w->hs_io.active_); /* a handshake is finished or detached first */
  if (!w->released)
    fz_close(w->fd, by_user);
  if (w->tr)
    w->tr->ops->free(w->tr);
  w->used = 0;
}

int fz_stream_new(ioa_loop *loop, int fd, const ioa_stream_options *o, ioa_stream **out) {
  (void)loop;
  fake_wrapper *w = fake_wrap(fd, o ? o->read_size : 0, o ? o->high_water : 0);
  *out = (ioa_stream *)(void *)w;
  return w ? 0 : -ENOMEM;
}

int fz_socket_new(ioa_loop *loop, int fd, const ioa_socket_options *o, ioa_socket **out) {
  (void)loop;
  fake_wrapper *w = fake_wrap(fd, o ? o->max_packet : 0, o ? o->batch : 0);
  *out = (ioa_socket *)(void *)w;
  return w ? 0 : -ENOMEM;
}

void fz_stream_free(ioa_stream *s) { wrapper_end(wrapper_of(s), 0); }

void fz_stream_release_fd(ioa_stream *s) { wrapper_of(s)->released = 1; }

/* ---------------------------------------------------- TLS, faked */

int fz_tls_available(void) { return 1; }

int fz_tls_check_name(const char *name) {
  (void)name;
  return 0;
}

int fz_tls_insecure(const ioa_tls_config *c) {
  (void)c;
  return W.tls_insecure;
}

ioa_tls_config *fz_tls_config_ref(ioa_tls_config *c) {
  W.tls_refs++;
  return c;
}

void fz_tls_config_unref(ioa_tls_config *c) {
  (void)c;
  CHECK(W.tls_refs > 0);
  W.tls_refs--;
}

int fz_tls_transport_new(ioa_tls_config *c, int fd, const char *server_name,
                         const struct sockaddr *peer, socklen_t peerlen, ioa__transport **out) {
  (void)c, (void)peer;
  CHECK(fd_is_open(fd) && W.tls_refs > 0);
  unsigned s = next_byte(&W.script);
  int r = s % 5 == 4 ? -ENOMEM : 0;
  ioa__transport *t = NULL;
  if (r == 0) {
    t = calloc(1, sizeof *t);
    CHECK(t != NULL);
    t->ops = &fake_tr_ops;
    W.transports++;
  }
  trace(T_TLS, (uint64_t)fd << 32 | (uint32_t)r, server_name ? hash_text(server_name) : 0,
        peerlen);
  *out = t;
  return r;
}

/* The handshake: a watcher on the stream's fd; fire_io's revents say how
 * it ends. */
static void fake_handshake_io(ioa_io *io, unsigned revents, void *data) {
  fake_wrapper *w = data;
  static const char *msgs[4] = {NULL, "fuzz: reset during the handshake",
                                "fuzz: closed without close_notify",
                                "fuzz: certificate has expired"};
  int k = revents == IOA_WRITE                 ? 0
          : revents == (IOA_WRITE | IOA_ERROR) ? 1
          : revents == (IOA_ERROR | IOA_HUP)   ? 2
                                               : 3;
  static const int errs[4] = {0, -ECONNRESET, IOA_ETLSEOF, IOA_ETLSVERIFY};
  CHECK(w->on_hs && io == &w->hs_io);
  fz_io_stop(io);
  ioa__stream_handshake_cb cb = w->on_hs;
  w->on_hs = NULL;
  trace(T_HS_DONE, (uint64_t)w->fd, (uint64_t)(int64_t)errs[k], W.now);
  cb((ioa_stream *)(void *)w, errs[k], msgs[k], w->hs_data);
}

int fz_stream_start_transport(ioa_stream *st, ioa__transport *t, ioa__stream_handshake_cb cb,
                              void *data) {
  fake_wrapper *w = wrapper_of(st);
  CHECK(t && !w->tr && !w->on_hs);
  unsigned s = next_byte(&W.script);
  int r = s % 6 == 5 ? -ENOMEM : 0;
  trace(T_HANDSHAKE, (uint64_t)w->fd << 32 | (uint32_t)r, W.now, 0);
  if (r < 0)
    return r;
  w->tr = t;
  w->on_hs = cb;
  w->hs_data = data;
  fz_io_init(NULL, &w->hs_io, w->fd, fake_handshake_io, w);
  w->hs_io.active_ = 1;
  list_add((void **)W.ios, &w->hs_io);
  return 0;
}

void fz_stream_detach_handshake(ioa_stream *s) {
  fake_wrapper *w = wrapper_of(s);
  w->on_hs = NULL;
  fz_io_stop(&w->hs_io);
}

/* The resolver: one lookup at a time, refused at the start when the script
 * says so, answered (or cancelled) later. */
int fz_resolver_default(ioa_loop *loop, ioa_resolver **out) {
  (void)loop;
  *out = (ioa_resolver *)(void *)&W.lookup;
  return 0;
}

unsigned fz_resolver_caps(const ioa_resolver *r) {
  (void)r;
  return IOA_RESOLVER_CAP_SORTED; /* families come whole: no on_partial */
}

/* The core asks for the families' order only when answers come per family,
 * which this resolver never does. */
void fz_resolver_order(ioa_resolver *r, ioa_addr *v, size_t n) {
  (void)r, (void)v, (void)n;
  CHECK(0);
}

int fz_resolve(ioa_resolver *r, const ioa_resolve_params *p, ioa_resolve_req **out) {
  (void)r;
  CHECK(!W.lookup.active);
  unsigned s = next_byte(&W.script);
  int rc = s % 8 == 7 ? -EAGAIN : 0;
  trace(T_LOOKUP, hash_text(p->host ? p->host : "") ^ hash_text(p->service ? p->service : ""),
        (uint64_t)(uint32_t)p->hints.socktype << 32 | (uint32_t)p->hints.family,
        (uint64_t)(int64_t)rc);
  if (rc < 0)
    return rc;
  W.lookup = (fake_lookup){1, p->on_done, p->on_partial, p->data};
  *out = (ioa_resolve_req *)(void *)&W.lookup;
  return 0;
}

static void lookup_done(const ioa_resolve_result *res) {
  W.lookup.active = 0; /* the request is gone once on_done ran */
  W.lookup.on_done((ioa_resolve_req *)(void *)&W.lookup, res, W.lookup.data);
}

void fz_resolve_cancel(ioa_resolve_req *rq) {
  CHECK(rq == (ioa_resolve_req *)(void *)&W.lookup);
  if (!W.lookup.active)
    return;
  ioa_resolve_result res = {.status = IOA_EAI_CANCELED, .message = "Request canceled"};
  lookup_done(&res);
}

static void make_addr(unsigned b, ioa_addr *a);

/* The answer: b < 224 gives b % 4 addresses (from the next event bytes),
 * else a resolver error. */
static void answer_lookup(unsigned b) {
  if (!W.lookup.active)
    return;
  ioa_addr v[3];
  ioa_resolve_result res = {0};
  if (b >= 224) {
    res.status = b & 1 ? IOA_EAI_NONAME : IOA_EAI_AGAIN;
    res.message = b & 1 ? "fuzz: no such name" : "fuzz: try again";
  } else {
    res.naddrs = b % 4;
    for (size_t i = 0; i < res.naddrs; i++)
      make_addr(next_byte(&W.events), &v[i]);
    res.addrs = v;
  }
  trace(T_ANSWER, (uint64_t)(int64_t)res.status, res.naddrs, 0);
  lookup_done(&res);
}

/* The answer the resolver has at hand (hosts table, cache), given inside
 * ioa_connect(): one script byte says whether, then 1-3 addresses from the
 * event bytes, in buf when they fit.  Both runs ask exactly once (else the
 * scripts part ways).  Not traced: when it is asked relative to the
 * lookup warning is no caller's business. */
int fz_resolve_at_hand(ioa_resolver *r, const char *host, const char *service,
                       const ioa_resolve_hints *hints, ioa_addr *buf, size_t cap,
                       ioa_addr **addrs, size_t *n) {
  (void)r;
  (void)host, (void)service, (void)hints;
  unsigned s = next_byte(&W.script);
  *addrs = NULL;
  *n = 0;
  if (s % 4 != 3)
    return 0;
  size_t k = 1 + (s >> 2) % 3;
  ioa_addr *v = k <= cap ? buf : malloc(k * sizeof *v);
  if (!v)
    return 0;
  for (size_t i = 0; i < k; i++)
    make_addr(next_byte(&W.events), &v[i]);
  *addrs = v;
  *n = k;
  return 1;
}

int fz_rtt_cache_default(ioa_loop *loop, ioa_rtt_cache **out) {
  (void)loop;
  *out = W.rtt;
  return 0;
}

/* ------------------------------------------------------- the caller */

static void trace_peer(const ioa_addr *a) {
  uint64_t port = a->family == AF_UNIX ? 0 : (uint64_t)(uint16_t)ioa_addr_port(a);
  trace(0, (uint64_t)a->family << 32 | (uint32_t)a->socktype,
        (uint64_t)a->protocol << 32 | a->addrlen, port);
}

static void trace_failures(ioa_connect_req *req) {
  const ioa_attempt_failure *f;
  size_t n = fz_connect_failures(req, &f);
  trace(T_FAILURE, n, 0, 0);
  for (size_t i = 0; i < n; i++) {
    trace(T_FAILURE, (uint64_t)f[i].syscall << 32 | (uint32_t)f[i].err,
          (uint64_t)(uint32_t)f[i].fd << 32 | (uint32_t)f[i].socktype, f[i].start_ns);
    trace(T_FAILURE, f[i].end_ns, (uint64_t)f[i].family << 32 | (uint32_t)f[i].protocol,
          f[i].local != NULL);
    CHECK(f[i].message != NULL);
    trace(T_FAILURE, hash_text(f[i].message), 0, 0);
    trace_peer(f[i].peer);
  }
}

static void completed(ioa_connect_req *req, uint64_t kind, uint64_t a, uint64_t b) {
  CHECK(!W.in_connect);
  W.completions++;
  trace(T_DONE, kind, a, b);
  trace_failures(req);
  if (W.cancel_in_done)
    fz_connect_cancel(req); /* a no-op once completing */
}

static void on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  (void)data;
  completed(req, 1, (uint64_t)fd, 0);
  trace_peer(peer);
  fz_close(fd, 1);
}

static void on_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer, void *data) {
  (void)data;
  fake_wrapper *w = wrapper_of(s);
  completed(req, 2, (uint64_t)w->fd, w->tr != NULL);
  trace_peer(peer);
  wrapper_end(w, 1);
}

static void on_socket(ioa_connect_req *req, ioa_socket *s, const ioa_addr *peer, void *data) {
  (void)data;
  fake_wrapper *w = wrapper_of(s);
  CHECK(!w->tr);
  completed(req, 3, (uint64_t)w->fd, 0);
  trace_peer(peer);
  wrapper_end(w, 1);
}

static void on_error(ioa_connect_req *req, ioa_syscall sys, int err, void *data) {
  (void)data;
  completed(req, 4, sys, (uint64_t)(int64_t)err);
}

static void on_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  (void)data;
  CHECK(!W.in_connect);
  CHECK(f->fd < 0 || fd_is_open(f->fd)); /* open while on_fail looks at it */
  trace(T_FAIL, (uint64_t)f->syscall << 32 | (uint32_t)f->err,
        (uint64_t)(uint32_t)f->fd << 32 | (uint32_t)f->socktype, f->start_ns);
  trace(T_FAIL, f->end_ns, (uint64_t)f->family << 32 | (uint32_t)f->protocol, f->local != NULL);
  CHECK(f->message != NULL);
  trace(T_FAIL, hash_text(f->message), 0, 0);
  trace_peer(f->peer);
  if (W.cancel_in_fail)
    fz_connect_cancel(req);
}

static void on_handshake(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                         void *data) {
  (void)data;
  CHECK(!W.in_connect);
  trace(T_HOOK_HS, local != NULL, W.now, 0);
  trace_peer(peer);
  if (W.cancel_in_handshake)
    fz_connect_cancel(req);
}

static void on_warning(const char *msg, void *data) {
  (void)data;
  trace(T_HOOK_WARN, hash_text(msg), 0, 0);
}

/* ------------------------------------------------------------ one run */

typedef struct config {
  ioa_connect_params p;
  ioa_addr addr;
  ioa_stream_options so;
  ioa_socket_options ko;
  int cancel_in_fail, cancel_in_done, tls_insecure;
} config;

static char fake_tls_config; /* ioa_tls_config is opaque: any address will do */

static void make_addr(unsigned b, ioa_addr *a) {
  static const int socktypes[8] = {0, SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW, 15, 0,
                                   SOCK_STREAM};
  static const int protocols[4] = {0, 6, 17, 0};
  int st = socktypes[(b >> 3) & 7], proto = protocols[(b >> 6) & 3];
  int r;
  switch (b & 7) {
  case 0: r = ioa_addr_inet("127.0.0.1", 8001, st, proto, a, NULL); break;
  case 1: r = ioa_addr_inet6("::1", 8001, NULL, 0, st, proto, a, NULL); break;
  case 2: r = ioa_addr_inet("0.0.0.0", 8001, st, proto, a, NULL); break;
  case 3: r = ioa_addr_inet6("::", 0, NULL, 0, st, proto, a, NULL); break;
  case 4: r = ioa_addr_unix("/tmp/ioa-fuzz.sock", IOA_NUL_TERMINATED, st, a, NULL); break;
  case 5: r = ioa_addr_unix("@ioa-fuzz", IOA_NUL_TERMINATED, st, a, NULL); break;
  case 6: /* malformed: both paths must refuse it alike */
    r = ioa_addr_inet("127.0.0.1", 8001, st, proto, a, NULL);
    a->addrlen = (socklen_t)(b >> 3);
    break;
  default:
    r = ioa_addr_inet("127.0.0.1", 8001, st, proto, a, NULL);
    a->socktype = 16 + (int)(b >> 3);
    break;
  }
  CHECK(r == 0);
}

static void decode_config(const uint8_t *d, config *c) {
  memset(c, 0, sizeof *c);
  ioa_connect_params *p = &c->p;
  fz_connect_params_init_size(p, sizeof *p);
  unsigned b0 = d[0], b2 = d[2];
  unsigned kind = b0 & 3;
  int tls = (b2 & 128) != 0;
  if (tls && kind == 3)
    kind = 1; /* TLS wants on_stream (the other kinds are refused) */
  if (kind == 1)
    p->on_stream = on_stream;
  else if (kind == 2)
    p->on_socket = on_socket;
  else
    p->on_connected = on_connected;
  p->on_connect_error = on_error;
  if (b0 & 4)
    p->on_fail = on_fail;
  c->cancel_in_fail = (b0 & 8) != 0;
  c->cancel_in_done = (b0 & 16) != 0;
  if (b0 & 32)
    p->on_warning = on_warning;
  if (b0 & 64) { /* options, for whichever wrapper the callback gets */
    ioa_stream_options_init(&c->so);
    c->so.read_size = 4 + (b2 >> 4);
    ioa_socket_options_init(&c->ko);
    c->ko.max_packet = 100 + (b2 >> 4);
    if (kind == 1)
      p->stream_options = &c->so;
    else if (kind == 2)
      p->socket_options = &c->ko;
  }
  make_addr(d[1], &c->addr);
  if ((b2 >> 5 & 3) == 3) { /* by name (a quarter of the inputs) */
    p->host = "fuzz.test";
    p->service = "8001";
  } else if (b0 & 128) {
    p->addrs = &c->addr;
    p->naddrs = 1;
  } else {
    p->addr = &c->addr;
  }
  static const int st_hints[4] = {IOA_HINT_UNSET, 0, SOCK_STREAM, SOCK_DGRAM};
  static const int proto_hints[4] = {IOA_HINT_UNSET, 0, 6, 300};
  p->socktype = st_hints[b2 & 3];
  p->protocol = proto_hints[(b2 >> 2) & 3];
  p->mode = (b2 >> 4) & 1 ? IOA_CONNECT_SEQUENTIAL : IOA_CONNECT_AUTO;
  if (tls) { /* the name and insecure bits share the protocol hint's */
    p->tls = (ioa_tls_config *)(void *)&fake_tls_config;
    p->tls_server_name = b2 & 4 ? "fuzz-name.test" : NULL;
    c->tls_insecure = (b2 & 8) != 0;
    if (b0 & 4)
      p->on_handshake = on_handshake;
  }
}

/* Nothing left that could call back: the request completed and released
 * everything, or (after the final cancel) must have. */
static int idle(void) {
  return list_count((void **)W.defers) == 0 && list_count((void **)W.ios) == 0 &&
         list_count((void **)W.timers) == 0 && !W.lookup.active;
}

static void run_defer(void) {
  for (int i = 0; i < MAX_HANDLES; i++) {
    ioa_defer *d = W.defers[i];
    if (d) {
      fz_defer_stop(d);
      d->cb_(d, d->data_);
      return;
    }
  }
}

static void fire_io(unsigned b) {
  static const unsigned revents[4] = {IOA_WRITE, IOA_WRITE | IOA_ERROR, IOA_ERROR | IOA_HUP, 0};
  /* With several attempts in flight (a name's answer), b picks one. */
  int n = list_count((void **)W.ios), k = n ? (int)((b >> 2) % (unsigned)n) : 0;
  for (int i = 0; i < MAX_HANDLES; i++) {
    ioa_io *io = W.ios[i];
    if (io && k-- == 0) {
      io->cb_(io, revents[b & 3], io->data_);
      return;
    }
  }
}

static void fire_timers(void) {
  for (int i = 0; i < MAX_HANDLES; i++) {
    ioa_timer *t = W.timers[i];
    if (t && t->due_ns_ <= W.now) {
      fz_timer_stop(t);
      t->cb_(t, t->data_);
      return;
    }
  }
}

/* One run: path 0 is ioa_connect() (fast path where it applies), path 1
 * the core from the start.  The trace is left in W. */
static void run(const uint8_t *d, size_t n, int path) {
  size_t slen = d[3];
  size_t script_at = 4, events_at = 4 + (slen < n - 4 ? slen : n - 4);
  config c;
  decode_config(d, &c);
  memset(&W, 0, sizeof W);
  W.now = T0;
  CHECK(ioa_rtt_cache_new(NULL, &W.rtt) == 0);
  W.script = (cursor){d + script_at, events_at - script_at, 0};
  W.events = (cursor){d + events_at, n - events_at, 0};
  W.cancel_in_fail = c.cancel_in_fail;
  W.cancel_in_done = c.cancel_in_done;
  W.cancel_in_handshake = c.cancel_in_fail && c.cancel_in_done;
  W.tls_insecure = c.tls_insecure;
  ioa_loop *loop = (ioa_loop *)(void *)&W; /* only ever handed to the fakes */

  W.in_connect = 1;
  ioa_connect_req *req = (ioa_connect_req *)(void *)&c; /* must be overwritten */
  int r = path == 0 ? fz_connect(loop, &c.p, &req) : start_connect(loop, &c.p, 0, &req);
  W.in_connect = 0;
  trace(T_RETURN, (uint64_t)(int64_t)r, 0, 0);
  CHECK(r == 0 ? req != NULL : path == 1 || req == NULL);
  if (r < 0) {
    CHECK(idle() && W.completions == 0 && W.tls_refs == 0);
    ioa_rtt_cache_free(W.rtt);
    return;
  }
  W.req = req;
  for (int i = 0; i < MAX_EVENTS && W.events.i < W.events.n && !(W.completions && idle()); i++) {
    unsigned e = next_byte(&W.events);
    switch (e % 6) {
    case 0: run_defer(); break;
    case 1: fire_io(e / 6); break;
    case 2: W.now += (uint64_t)(e / 6) * 5 * MS; break;
    case 3:
      if (!W.completions)
        fz_connect_cancel(req);
      break;
    case 4: fire_timers(); break;
    default: answer_lookup(next_byte(&W.events)); break;
    }
  }
  if (!W.completions)
    fz_connect_cancel(req); /* the request must end here, whatever its state */
  for (int i = 0; i < MAX_HANDLES && !idle(); i++)
    run_defer();
  CHECK(W.completions == 1);
  CHECK(idle());
  for (int i = 0; i < NFD; i++)
    CHECK(!W.fd_open[i]); /* closed by the connector or by the callee */
  for (int i = 0; i < MAX_WRAPPERS; i++)
    CHECK(!W.wrappers[i].used); /* every stream handed over or freed */
  CHECK(W.transports == 0 && W.tls_refs == 0);
  free(W.spare);
  W.spare = NULL;
  ioa_rtt_cache_free(W.rtt);
}

static void dump(const char *what, const uint64_t *t, size_t n) {
  fprintf(stderr, "%s (%zu words):\n", what, n);
  for (size_t i = 0; i + 3 < n; i += 4)
    fprintf(stderr, "  %2llu %#llx %#llx %lld\n", (unsigned long long)t[i],
            (unsigned long long)t[i + 1], (unsigned long long)t[i + 2], (long long)t[i + 3]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t in[1024];
  if (size > sizeof in)
    return 0;
  memset(in, 0, sizeof in);
  memcpy(in, data, size);
  size_t n = size < 4 ? 4 : size;
  static uint64_t fast[MAX_TRACE];
  run(in, n, 0);
  size_t nfast = W.ntrace;
  memcpy(fast, W.trace, nfast * sizeof fast[0]);
  run(in, n, 1);
  if (nfast != W.ntrace || memcmp(fast, W.trace, nfast * sizeof fast[0]) != 0) {
    dump("fast path", fast, nfast);
    dump("core path", W.trace, W.ntrace);
    CHECK(!"the fast path and the core disagree");
  }
  return 0;
}
