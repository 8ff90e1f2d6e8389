/* SPDX-License-Identifier: MIT */
/* The connector's driver: the syscalls, watchers, timer, defer and resolver
 * around the decision core (connect_core.c).
 *
 * Footprint: a request in plain address mode is one allocation holding the
 * core, one attempt slot with its fd watcher, the defer, and the addresses in
 * a compact strided form (an 8-byte head plus only the socket address's own
 * bytes: 24 bytes for IPv4 rather than a 144-byte ioa_addr).  Optional parts
 * (hooks, timer, race slots) are appended only when asked for.
 *
 * Re-entrancy: every entry point (watcher, timer, defer, resolver callback,
 * cancel) runs the action pump inside enter()/leave(); a callback may cancel
 * the request, and the memory is freed by the outermost leave() only.
 */
#include "ioasync/connect.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "abi.h"
#include "alloc.h"
#include "connect_core.h"
#include "loop_internal.h"
#include "sys.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Race slots at most: attempts in flight at once under Happy Eyeballs. */
#define RACE_SLOTS 16
/* Resolved addresses are few: they use a roomy fixed stride. */
#define WIDE_STRIDE (8 + sizeof(struct sockaddr_storage))

/* One compact address: ioa__cc_meta, length, then the socket address bytes. */
typedef struct entry {
  ioa__cc_meta meta;
  uint16_t len;
  uint16_t pad_;
} entry;
#define ENTRY_SA(e) ((const struct sockaddr *)(const void *)((const unsigned char *)(e) + 8))

enum { OK_CONNECTED, OK_STREAM, OK_SOCKET };

typedef struct hooks {
  ioa_connect_fail_cb on_fail;
  ioa_connect_resolved_cb on_resolved;
  ioa_connect_attempt_cb on_attempt;
  ioa_connect_sockopt_cb on_sockopt;
  ioa_connect_resolve_error_cb on_resolve_error;
  ioa_warn_cb on_warning;
} hooks;

/* Resolving mode state. */
typedef struct res_state {
  ioa_resolve_req *peer_req, *local_req;
  unsigned char *peer_blob, *local_blob; /* WIDE_STRIDE entries */
  ioa__cc_cand *cands;
  size_t cand_cap;
  char *message; /* the resolver's message for a resolve error */
  uint8_t partial_families; /* families already taken from on_partial */
} res_state;

typedef struct ext {
  ioa_timer timer;
  res_state *res; /* NULL in plain address mode */
  ioa_io *ios;    /* race slots' watchers (when the core has more than one slot) */
} ext;

struct ioa_connect_req {
  ioa__cc cc;
  ioa_loop *loop;
  union {
    ioa_connected_cb connected;
    ioa_connect_stream_cb stream;
    ioa_connect_socket_cb socket;
  } on_ok;
  ioa_connect_error_cb on_error;
  void *data;
  /* hooks and ext follow the request in its allocation when these are set;
   * flags rather than pointers keep the common request 16 bytes smaller. */
  uint8_t has_hooks; /* some optional callback is set */
  uint8_t has_ext;   /* a timer is needed (race, timeouts, resolving) */
  uint8_t ok_kind;
  uint8_t depth;   /* nesting of entry points on the stack */
  uint8_t done;    /* completion callback has run (or is running) */
  uint8_t in_sync; /* inside ioa_connect(): no callbacks */
  uint8_t fast;    /* single in-flight connect, core not yet set up (see inflate) */
  ioa_defer defer;
  ioa__cc_slot slot0;
  ioa_io io0;
};

const char *ioa_syscall_name(ioa_syscall s) {
  switch (s) {
  case IOA_SYSCALL_SOCKET: return "socket";
  case IOA_SYSCALL_BIND: return "bind";
  case IOA_SYSCALL_CONNECT: return "connect";
  case IOA_SYSCALL_SOCKOPT: return "setsockopt";
  default: return "none";
  }
}

void ioa_connect_params_init_size(ioa_connect_params *p, size_t size) {
  static const ioa_connect_params defaults = {.struct_size = sizeof defaults,
                                              .family = AF_UNSPEC,
                                              .socktype = IOA_HINT_UNSET,
                                              .protocol = IOA_HINT_UNSET};
  IOA__INIT(p, size, &defaults);
}

/* ------------------------------------------------------------ addresses */

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

static void entry_store(unsigned char *dst, const ioa_addr *a, int socktype) {
  entry *e = (entry *)(void *)dst;
  e->meta.family = (uint8_t)a->family;
  e->meta.socktype = (uint8_t)socktype;
  e->meta.protocol = (uint16_t)a->protocol;
  e->len = (uint16_t)a->addrlen;
  e->pad_ = 0;
  /* Constant sizes let the compiler inline the copy (the connect fast path). */
  if (a->addrlen == sizeof(struct sockaddr_in))
    memcpy(dst + 8, &a->addr, sizeof(struct sockaddr_in));
  else
    memcpy(dst + 8, &a->addr, a->addrlen);
}

static void entry_load(ioa_addr *out, const unsigned char *src) {
  const entry *e = (const entry *)(const void *)src;
  out->family = e->meta.family;
  out->socktype = e->meta.socktype;
  out->protocol = e->meta.protocol;
  out->addrlen = e->len;
  memset(&out->addr, 0, sizeof out->addr);
  if (e->len == sizeof(struct sockaddr_in))
    memcpy(&out->addr, src + 8, sizeof(struct sockaddr_in));
  else
    memcpy(&out->addr, src + 8, e->len);
}

/* An address we can store compactly.  family/socktype must fit a byte and
 * the length the sockaddr_storage. */
static inline int addr_usable(const ioa_addr *a) {
  /* Unsigned compares fold "not negative" and "not too big" into one test. */
  return a && a->addrlen - 1u < sizeof(struct sockaddr_storage) &&
         (unsigned)a->family - 1u < 255u && (unsigned)a->socktype <= 255u &&
         (unsigned)a->protocol <= 65535u && a->addr.ss_family == (sa_family_t)a->family;
}

static int sa_unspecified(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr == 0;
  if (sa->sa_family == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
  return 0;
}

static int sa_port(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
  return -1;
}

/* ------------------------------------------------------------- warnings */

#define REQ_SIZE align8(sizeof(ioa_connect_req))
static const hooks *req_hooks(const ioa_connect_req *req) {
  return req->has_hooks ? (const hooks *)(const void *)((const unsigned char *)req + REQ_SIZE)
                        : NULL;
}
static ext *req_ext(const ioa_connect_req *req) {
  if (!req->has_ext)
    return NULL;
  size_t off = REQ_SIZE + (req->has_hooks ? align8(sizeof(hooks)) : 0);
  return (ext *)(void *)((unsigned char *)req + off);
}
static ioa_io *slot_io(ioa_connect_req *req, unsigned slot) {
  return req->cc.nslots == 1 ? &req->io0 : &req_ext(req)->ios[slot];
}

static void warn(ioa_connect_req *req, ioa_warn_cb cb, void *data, const char *msg) {
  if (cb)
    cb(msg, data);
  else
    ioa_loop_warn(req->loop, "%s", msg);
}

static void warn_unspecified(ioa_connect_req *req, ioa_warn_cb cb, void *data,
                             const unsigned char *e) {
  ioa_addr a;
  char text[IOA_ADDR_STRLEN];
  char msg[IOA_ADDR_STRLEN + 96];
  entry_load(&a, e);
  if (ioa_addr_format(&a, text, sizeof text) < 0)
    snprintf(text, sizeof text, "(family %d)", a.family);
  snprintf(msg, sizeof msg,
           "ioa_connect: connecting to the unspecified address %s is non-portable", text);
  warn(req, cb, data, msg);
}

/* ----------------------------------------------------------- lifecycle */

/* One answer of ioa_connect_failures(): n records follow, then their
 * addresses.  Kept in the core's fails->aux, newest first. */
typedef struct failures_view {
  struct failures_view *prev;
  size_t n;
} failures_view;

static void free_failure_views(ioa_connect_req *req) {
  if (!req->cc.fails)
    return;
  failures_view *v = req->cc.fails->aux;
  while (v) {
    failures_view *prev = v->prev;
    ioa__free(v);
    v = prev;
  }
  req->cc.fails->aux = NULL;
}

static void req_free(ioa_connect_req *req) {
  if (req->fast) { /* nothing but the watcher was ever started */
    ioa_io_stop(&req->io0);
    ioa__free(req);
    return;
  }
  ext *x = req_ext(req);
  if (x) {
    ioa_timer_stop(&x->timer);
    if (x->res) {
      ioa__free(x->res->peer_blob);
      ioa__free(x->res->local_blob);
      ioa__free(x->res->cands);
      ioa__free(x->res->message);
    }
  }
  for (unsigned i = 0; i < req->cc.nslots; i++)
    ioa_io_stop(slot_io(req, i));
  ioa_defer_stop(&req->defer);
  free_failure_views(req);
  ioa__cc_dispose(&req->cc);
  ioa__free(req);
}

static void enter(ioa_connect_req *req) { req->depth++; }

/* Returns non-zero if the request was freed. */
static int leave(ioa_connect_req *req) {
  if (--req->depth == 0 && req->done) {
    req_free(req);
    return 1;
  }
  return 0;
}

static uint64_t now_of(const ioa_connect_req *req) { return ioa_loop_now(req->loop); }

/* ---------------------------------------------------------- the attempt */

static const unsigned char *peer_entry(const ioa_connect_req *req, unsigned cand) {
  return (const unsigned char *)ioa__cc_peer(&req->cc, req->cc.cands[cand].peer);
}
static const unsigned char *local_entry(const ioa_connect_req *req, unsigned cand) {
  return (const unsigned char *)ioa__cc_local(&req->cc, ioa__cc_cand_local(&req->cc.cands[cand]));
}

static void io_cb(ioa_io *io, unsigned revents, void *data);
static void defer_cb(ioa_defer *d, void *data);

/* bind (if local) and connect fd; the result goes to the core. */
static void bind_and_connect(ioa_connect_req *req, unsigned slot, int fd, const entry *p,
                             const entry *l) {
  ioa__cc *cc = &req->cc;
  if (l) {
    if ((l->meta.family == AF_INET || l->meta.family == AF_INET6) &&
        sa_port(ENTRY_SA(l)) == 0 && !sa_unspecified(ENTRY_SA(l))) {
      /* Don't reserve an ephemeral port at bind time: connect picks one for
       * the 4-tuple, so many connections can share a local address.  Older
       * kernels say ENOPROTOOPT; the bind still works, so ignore failure. */
      int one = 1;
      (void)ioa__sys_setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    }
    if (ioa__sys_bind(fd, ENTRY_SA(l), l->len) < 0) {
      ioa__cc_opened(cc, now_of(req), slot, fd, IOA_SYSCALL_BIND, -errno, 0);
      return;
    }
  }
  if (ioa__sys_connect(fd, ENTRY_SA(p), p->len) == 0) {
    /* UDP, unix datagram, and sometimes unix stream: connected at once. */
    ioa__cc_opened(cc, now_of(req), slot, fd, IOA_SYSCALL_NONE, 0, 1);
    return;
  }
  int e = errno;
  /* EINTR: a non-blocking connect goes on asynchronously (POSIX). */
  if (e != EINPROGRESS && e != EINTR) {
    ioa__cc_opened(cc, now_of(req), slot, fd, IOA_SYSCALL_CONNECT, -e, 0);
    return;
  }
  ioa_io *io = slot_io(req, slot);
  ioa_io_init(req->loop, io, fd, io_cb, req);
  int r = ioa__io_start_oneshot(io, IOA_WRITE);
  ioa__cc_opened(cc, now_of(req), slot, fd, r < 0 ? IOA_SYSCALL_CONNECT : IOA_SYSCALL_NONE, r, 0);
}

/* socket, hooks, bind, connect for one slot. */
static void open_attempt(ioa_connect_req *req, unsigned slot, unsigned cand) {
  ioa__cc *cc = &req->cc;
  const unsigned char *pe = peer_entry(req, cand);
  const unsigned char *le = local_entry(req, cand);
  const entry *p = (const entry *)(const void *)pe;
  const entry *l = (const entry *)(const void *)le;
  const hooks *h = req_hooks(req);
  ioa_addr peer, local;

  if (h && (h->on_attempt || h->on_sockopt)) {
    entry_load(&peer, pe);
    if (le)
      entry_load(&local, le);
  }
  if (h && h->on_attempt) {
    h->on_attempt(req, &peer, le ? &local : NULL, req->data);
    if (cc->state != IOA_CC_CONNECTING) { /* cancelled from on_attempt */
      ioa__cc_opened(cc, now_of(req), slot, -1, IOA_SYSCALL_NONE, 0, 0);
      return;
    }
  }
  int fd = ioa__sys_socket(p->meta.family, p->meta.socktype, p->meta.protocol);
  if (fd < 0) {
    ioa__cc_opened(cc, now_of(req), slot, -1, IOA_SYSCALL_SOCKET, -errno, 0);
    return;
  }
  if (h && h->on_sockopt) {
    int r = h->on_sockopt(req, fd, &peer, le ? &local : NULL, req->data);
    if (cc->state != IOA_CC_CONNECTING) { /* cancelled from the hook: the core closes fd */
      ioa__cc_opened(cc, now_of(req), slot, fd, IOA_SYSCALL_NONE, 0, 0);
      return;
    }
    if (r < 0) {
      ioa__cc_opened(cc, now_of(req), slot, fd, IOA_SYSCALL_SOCKOPT, r, 0);
      return;
    }
  }
  bind_and_connect(req, slot, fd, p, l);
}

/* ----------------------------------------------------------- the pump */

static void report_failure(ioa_connect_req *req, const ioa__cc_action *a) {
  if (!req_hooks(req) || !req_hooks(req)->on_fail)
    return;
  const ioa__cc_failure *f = &req->cc.fails->rec[a->failure];
  const unsigned char *pe = peer_entry(req, f->cand);
  const unsigned char *le = local_entry(req, f->cand);
  const entry *p = (const entry *)(const void *)pe;
  ioa_addr peer, local;
  entry_load(&peer, pe);
  if (le)
    entry_load(&local, le);
  ioa_attempt_failure af;
  af.syscall = (ioa_syscall)f->syscall;
  af.err = f->err;
  af.fd = f->fd;
  af.family = p->meta.family;
  af.socktype = p->meta.socktype;
  af.protocol = p->meta.protocol;
  af.peer = &peer;
  af.local = le ? &local : NULL;
  af.start_ns = f->start_ns;
  af.end_ns = f->end_ns;
  req_hooks(req)->on_fail(req, &af, req->data);
}

static void deliver(ioa_connect_req *req, int fd, const unsigned char *pe);

static void complete(ioa_connect_req *req, const ioa__cc_action *a) {
  ext *x = req_ext(req);
  req->done = 1;
  ioa_defer_stop(&req->defer);
  if (x) {
    ioa_timer_stop(&x->timer);
    /* Cancelling calls our on_done at once; it sees the request finished. */
    if (x->res && x->res->peer_req)
      ioa_resolve_cancel(x->res->peer_req);
    if (x->res && x->res->local_req)
      ioa_resolve_cancel(x->res->local_req);
  }
  if (a->outcome == IOA_CC_RESOLVE_ERROR) {
    const char *msg = x && x->res && x->res->message ? x->res->message : ioa_strerror(a->err);
    if (req_hooks(req) && req_hooks(req)->on_resolve_error)
      req_hooks(req)->on_resolve_error(req, a->err, msg, req->data);
    else
      req->on_error(req, IOA_SYSCALL_NONE, a->err, req->data);
    return;
  }
  if (a->outcome != IOA_CC_OK) {
    req->on_error(req, a->syscall, a->err, req->data);
    return;
  }
  ioa_io_stop(slot_io(req, a->slot));
  deliver(req, a->fd, peer_entry(req, a->cand));
}

/* Hand the connected fd over through the success callback the caller chose. */
static void deliver(ioa_connect_req *req, int fd, const unsigned char *pe) {
  ioa_addr peer;
  entry_load(&peer, pe);
  if (req->ok_kind == OK_CONNECTED) {
    req->on_ok.connected(req, fd, &peer, req->data);
  } else if (req->ok_kind == OK_STREAM) {
    ioa_stream *s;
    int r = ioa_stream_new(req->loop, fd, NULL, &s);
    if (r < 0) {
      ioa__sys_close(fd);
      req->on_error(req, IOA_SYSCALL_NONE, r, req->data);
      return;
    }
    req->on_ok.stream(req, s, &peer, req->data);
  } else {
    ioa_socket *s;
    int r = ioa_socket_new(req->loop, fd, NULL, &s);
    if (r < 0) {
      ioa__sys_close(fd);
      req->on_error(req, IOA_SYSCALL_NONE, r, req->data);
      return;
    }
    req->on_ok.socket(req, s, &peer, req->data);
  }
}

/* Perform actions until the core has none.  In ioa_connect() (in_sync) a
 * pending callback turns into a defer instead. */
static void pump(ioa_connect_req *req) {
  unsigned flags = 0;
  if (req->in_sync) {
    flags |= IOA_CC_NO_CALLBACKS;
    if (req_hooks(req) && (req_hooks(req)->on_attempt || req_hooks(req)->on_sockopt))
      flags |= IOA_CC_NO_OPEN;
  }
  for (;;) {
    ioa__cc_action a;
    switch (ioa__cc_next(&req->cc, flags, &a)) {
    case IOA_CC_ACT_NONE:
      return;
    case IOA_CC_ACT_DEFER:
      ioa_defer_start(&req->defer);
      return;
    case IOA_CC_ACT_OPEN:
      open_attempt(req, a.slot, a.cand);
      break;
    case IOA_CC_ACT_FAIL:
      report_failure(req, &a);
      break;
    case IOA_CC_ACT_CLOSE:
      ioa_io_stop(slot_io(req, a.slot));
      ioa__sys_close(a.fd);
      break;
    case IOA_CC_ACT_TIMER:
      if (!req->has_ext)
        break; /* no timer was needed: the core only ever asks to stop one */
      if (a.at == 0) {
        ioa_timer_stop(&req_ext(req)->timer);
      } else if (ioa_timer_start_at(&req_ext(req)->timer, a.at, 0) < 0) {
        ioa__cc_abort(&req->cc, now_of(req), -ENOMEM);
      }
      break;
    case IOA_CC_ACT_DONE:
      complete(req, &a);
      break;
    }
  }
}

/* ---------------------------------------------------------- fast path
 *
 * The commonest request — one numeric address, no local address, no
 * timeouts, no attempt hooks — is a single socket+connect whose success is
 * the whole story.  ioa_connect() then starts that attempt itself and leaves
 * the core untouched; the moment anything else happens (a failure, a result
 * inside ioa_connect, a cancel) inflate() replays into the core exactly the
 * two events it would have seen — start, OPEN of candidate 0, and the
 * attempt's result — and the core decides everything from there.  The
 * request's layout is the core's (one slot, one candidate), so this needs
 * no memory. */

static size_t fast_cands_off(const ioa_connect_req *req) {
  return REQ_SIZE + (req->has_hooks ? align8(sizeof(hooks)) : 0);
}

static void inflate(ioa_connect_req *req, int fd, ioa_syscall failed_at, int err, int connected) {
  unsigned char *mem = (unsigned char *)req;
  uint64_t t0 = req->slot0.start_ns;
  ioa__cc *cc = &req->cc;
  req->fast = 0;
  memset(cc, 0, sizeof *cc);
  memset(&req->slot0, 0, sizeof req->slot0);
  ioa_defer_init(req->loop, &req->defer, defer_cb, req);
  ioa__cc_configure(cc, 0, 0, 0, 0);
  ioa__cc_set_slots(cc, &req->slot0, 1);
  size_t o_cands = fast_cands_off(req);
  const entry *pe = (const entry *)(const void *)(mem + o_cands + 8);
  ioa__cc_set_cand_storage(cc, (ioa__cc_cand *)(void *)(mem + o_cands), 1);
  ioa__cc_set_peers(cc, pe, (uint32_t)align8(8 + pe->len), 1);
  ioa__cc_start(cc, t0, 0, 0, 0);
  ioa__cc_action a;
  ioa__cc_next(cc, 0, &a); /* OPEN slot 0, candidate 0: the attempt already made */
  ioa__cc_opened(cc, failed_at != IOA_SYSCALL_NONE || connected ? now_of(req) : t0, a.slot, fd,
                failed_at, err, connected);
}

static void io_cb(ioa_io *io, unsigned revents, void *data) {
  ioa_connect_req *req = data;
  int soerr = 0;
  socklen_t len = sizeof soerr;
  int err;
  if (ioa__sys_getsockopt(io->fd_, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
    err = -errno;
  else
    err = -soerr;
  /* Writable with no error is connected; otherwise a spurious wakeup is
   * impossible for a connecting socket, but keep waiting if one comes. */
  if (err == 0 && !(revents & (IOA_WRITE | IOA_ERROR | IOA_HUP))) {
    int r = ioa__io_start_oneshot(io, IOA_WRITE); /* one-shot: re-arm */
    if (r == 0)
      return;
    err = r;
  }
  ioa_io_stop(io);
  if (req->fast) {
    if (err == 0) {
      /* The core would say: DONE, connected, nothing to close. */
      req->done = 1;
      req->depth = 1;
      const unsigned char *pe = (const unsigned char *)req + fast_cands_off(req) + 8;
      size_t size = fast_cands_off(req) + 8 + align8(8 + ((const entry *)(const void *)pe)->len);
      deliver(req, io->fd_, pe);
      /* The watcher is stopped and nothing else was started: the block (of
       * connect_fast's size) can serve the next fast request on this loop. */
      ioa__loop_spare_give(req->loop, req, size);
      return;
    }
    inflate(req, io->fd_, IOA_SYSCALL_NONE, 0, 0);
  }
  unsigned slot = req->cc.nslots == 1 ? 0 : (unsigned)(io - req_ext(req)->ios);
  enter(req);
  ioa__cc_connected(&req->cc, now_of(req), slot, err);
  pump(req);
  leave(req);
}

static void timer_cb(ioa_timer *t, void *data) {
  ioa_connect_req *req = data;
  (void)t;
  enter(req);
  ioa__cc_tick(&req->cc, now_of(req));
  pump(req);
  leave(req);
}

static void defer_cb(ioa_defer *d, void *data) {
  ioa_connect_req *req = data;
  (void)d;
  enter(req);
  pump(req);
  leave(req);
}

void ioa_connect_cancel(ioa_connect_req *req) {
  if (!req || req->done)
    return;
  if (req->fast) {
    ioa_io_stop(&req->io0);
    inflate(req, req->io0.fd_, IOA_SYSCALL_NONE, 0, 0);
  }
  enter(req);
  ioa__cc_cancel(&req->cc, now_of(req));
  pump(req);
  leave(req);
}

size_t ioa_connect_failures(const ioa_connect_req *req_c, const ioa_attempt_failure **out) {
  ioa_connect_req *req = (ioa_connect_req *)req_c;
  size_t n;
  if (req->fast) {
    *out = NULL;
    return 0; /* nothing has failed yet */
  }
  const ioa__cc_failure *recs = ioa__cc_failures(&req->cc, &n);
  *out = NULL;
  if (n == 0)
    return 0;
  /* Built on demand: the request itself keeps only compact records.  Every
   * list handed out stays valid until the request goes (the header's
   * promise), so a newer one is chained in front of the older ones. */
  failures_view *last = req->cc.fails->aux;
  if (last && last->n == n) {
    *out = (const ioa_attempt_failure *)(const void *)(last + 1);
    return n;
  }
  size_t each = sizeof(ioa_attempt_failure) + 2 * sizeof(ioa_addr);
  failures_view *view = ioa__malloc(sizeof *view + n * each);
  if (!view)
    return 0;
  view->prev = last;
  view->n = n;
  ioa_attempt_failure *v = (ioa_attempt_failure *)(void *)(view + 1);
  ioa_addr *addrs = (ioa_addr *)(void *)(v + n);
  for (size_t i = 0; i < n; i++) {
    const ioa__cc_failure *f = &recs[i];
    const unsigned char *pe = peer_entry(req, f->cand);
    const unsigned char *le = local_entry(req, f->cand);
    const entry *p = (const entry *)(const void *)pe;
    entry_load(&addrs[2 * i], pe);
    if (le)
      entry_load(&addrs[2 * i + 1], le);
    v[i].syscall = (ioa_syscall)f->syscall;
    v[i].err = f->err;
    v[i].fd = f->fd;
    v[i].family = p->meta.family;
    v[i].socktype = p->meta.socktype;
    v[i].protocol = p->meta.protocol;
    v[i].peer = &addrs[2 * i];
    v[i].local = le ? &addrs[2 * i + 1] : NULL;
    v[i].start_ns = f->start_ns;
    v[i].end_ns = f->end_ns;
  }
  req->cc.fails->aux = view;
  *out = v;
  return n;
}

/* ------------------------------------------------------------ resolving */

/* Append the usable addresses of family bit not in skip_mask to a wide blob.
 * Returns the new count or a negative code. */
static int blob_append(unsigned char **blob, unsigned have, const ioa_addr *addrs, size_t n,
                       unsigned skip_mask) {
  size_t add = 0;
  for (size_t i = 0; i < n; i++)
    if (addr_usable(&addrs[i]))
      add++;
  if (have + add > IOA_CC_MAX_ADDRS)
    return -E2BIG;
  if (add == 0)
    return (int)have;
  unsigned char *nb = ioa__realloc(*blob, (have + add) * WIDE_STRIDE);
  if (!nb)
    return -ENOMEM;
  *blob = nb;
  unsigned k = have;
  for (size_t i = 0; i < n; i++) {
    const ioa_addr *a = &addrs[i];
    if (!addr_usable(a))
      continue;
    unsigned bit = a->family == AF_INET ? 1u : a->family == AF_INET6 ? 2u : 0u;
    if (bit & skip_mask)
      continue;
    entry_store(nb + (size_t)k * WIDE_STRIDE, a, a->socktype);
    k++;
  }
  return (int)k;
}

static int ensure_cands(ioa_connect_req *req) {
  res_state *rs = req_ext(req)->res;
  size_t need = ioa__cc_cands_needed(req->cc.nlocals, req->cc.npeers);
  if (need > IOA_CC_MAX_ADDRS)
    return -E2BIG;
  if (need > rs->cand_cap) {
    ioa__cc_cand *n = ioa__realloc(rs->cands, need * sizeof *n);
    if (!n)
      return -ENOMEM;
    rs->cands = n;
    rs->cand_cap = need;
  }
  ioa__cc_set_cand_storage(&req->cc, rs->cands, (uint16_t)rs->cand_cap);
  return 0;
}

static void warn_new_peers(ioa_connect_req *req, unsigned from) {
  const hooks *h = req_hooks(req);
  /* The hook may cancel the request: nothing of it is reported after that. */
  for (unsigned i = from; i < req->cc.npeers && !req->done; i++) {
    const unsigned char *e = (const unsigned char *)ioa__cc_peer(&req->cc, i);
    if (sa_unspecified(ENTRY_SA(e)))
      warn_unspecified(req, h ? h->on_warning : NULL, req->data, e);
  }
}

/* Tell on_resolved about entries [from, to) of one side. */
static void tell_resolved(ioa_connect_req *req, int is_local, unsigned from, unsigned to) {
  if (!req_hooks(req) || !req_hooks(req)->on_resolved || to <= from)
    return;
  ioa_addr *v = ioa__malloc((to - from) * sizeof *v);
  if (!v)
    return; /* a tracing hook: losing one report beats failing the connect */
  for (unsigned i = from; i < to; i++)
    entry_load(&v[i - from], is_local ? (const unsigned char *)ioa__cc_local(&req->cc, i)
                                      : (const unsigned char *)ioa__cc_peer(&req->cc, i));
  req_hooks(req)->on_resolved(req, v, to - from, is_local, req->data);
  ioa__free(v);
}

static int take_addrs(ioa_connect_req *req, int is_local, const ioa_addr *addrs, size_t n,
                      unsigned skip) {
  res_state *rs = req_ext(req)->res;
  unsigned have = is_local ? req->cc.nlocals : req->cc.npeers;
  int k = blob_append(is_local ? &rs->local_blob : &rs->peer_blob, have, addrs, n, skip);
  if (k < 0)
    return k;
  if (is_local)
    ioa__cc_set_locals(&req->cc, rs->local_blob, WIDE_STRIDE, (uint16_t)k);
  else
    ioa__cc_set_peers(&req->cc, rs->peer_blob, WIDE_STRIDE, (uint16_t)k);
  int r = ensure_cands(req);
  if (r < 0)
    return r;
  if (!is_local)
    warn_new_peers(req, have);
  if (!req->done) /* cancelled from the warning hook: completed, so silent */
    tell_resolved(req, is_local, have, (unsigned)k);
  return 0;
}

static void peer_partial(ioa_resolve_req *rr, int family, const ioa_addr *addrs, size_t n,
                         void *data) {
  ioa_connect_req *req = data;
  (void)rr;
  if (req->done)
    return;
  enter(req);
  int r = take_addrs(req, 0, addrs, n, 0);
  if (r < 0) {
    ioa__cc_abort(&req->cc, now_of(req), r);
  } else if (!req->done) {
    req_ext(req)->res->partial_families |= family == AF_INET ? 1u : family == AF_INET6 ? 2u : 0u;
    ioa__cc_peers_partial(&req->cc, now_of(req), family);
  }
  if (!req->done)
    pump(req);
  leave(req);
}

static void side_done(ioa_connect_req *req, int is_local, const ioa_resolve_result *res) {
  res_state *rs = req_ext(req)->res;
  if (req->done)
    return;
  enter(req);
  int r = res->status;
  if (r < 0) {
    if (!rs->message && res->message) {
      size_t len = strlen(res->message);
      rs->message = ioa__malloc(len + 1);
      if (rs->message)
        memcpy(rs->message, res->message, len + 1);
    }
  } else {
    r = take_addrs(req, is_local, res->addrs, res->naddrs, is_local ? 0 : rs->partial_families);
  }
  if (!req->done)
    ioa__cc_resolved(&req->cc, now_of(req), is_local, r);
  if (!req->done)
    pump(req);
  leave(req);
}

static void peer_done(ioa_resolve_req *rr, const ioa_resolve_result *res, void *data) {
  ioa_connect_req *req = data;
  (void)rr;
  req_ext(req)->res->peer_req = NULL;
  side_done(req, 0, res);
}

static void local_done(ioa_resolve_req *rr, const ioa_resolve_result *res, void *data) {
  ioa_connect_req *req = data;
  (void)rr;
  req_ext(req)->res->local_req = NULL;
  side_done(req, 1, res);
}

static int start_lookup(ioa_connect_req *req, ioa_resolver *r, int is_local, const char *host,
                        const char *service, const ioa_resolve_hints *hints, unsigned timeout_ms) {
  ioa_resolve_params rp;
  ioa_resolve_params_init(&rp);
  rp.host = host;
  rp.service = service;
  rp.hints = *hints;
  if (is_local)
    rp.hints.flags |= AI_PASSIVE; /* a NULL local host means "any address" */
  rp.timeout_ms = timeout_ms;
  rp.on_done = is_local ? local_done : peer_done;
  /* Families are taken early only from a resolver that delivers them as
   * they arrive.  Otherwise they come with the complete answer, sorted by
   * RFC 6724 and /etc/gai.conf: taking them as early answers would put IPv6
   * first against that order, so the whole answer is waited for instead. */
  int early = (ioa_resolver_capabilities(r) & IOA_RESOLVER_CAP_EARLY_FAMILIES) != 0;
  rp.on_partial = !is_local && req->cc.race && early ? peer_partial : NULL;
  rp.data = req;
  return ioa_resolve(r, &rp, is_local ? &req_ext(req)->res->local_req : &req_ext(req)->res->peer_req);
}

/* ----------------------------------------------------------- ioa_connect */

static size_t max_addrlen(const ioa_addr *v, size_t n) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (v[i].addrlen > m)
      m = v[i].addrlen;
  return m;
}

static int socktype_of(const ioa_addr *a, int hint) {
  return a->socktype ? a->socktype : hint;
}

/* The fields both request layouts (fast and full) share: the loop, the
 * user data and the one completion callback the caller chose. */
static void req_init_completion(ioa_connect_req *req, ioa_loop *loop,
                                const ioa_connect_params *p) {
  req->loop = loop;
  req->data = p->data;
  req->on_error = p->on_connect_error;
  if (p->on_connected) {
    req->ok_kind = OK_CONNECTED;
    req->on_ok.connected = p->on_connected;
  } else if (p->on_stream) {
    req->ok_kind = OK_STREAM;
    req->on_ok.stream = p->on_stream;
  } else {
    req->ok_kind = OK_SOCKET;
    req->on_ok.socket = p->on_socket;
  }
}

/* See "fast path" above: one address, nothing but a connect to make. */
static int connect_fast(ioa_loop *loop, const ioa_connect_params *p, int st_hint,
                        ioa_connect_req **out) {
  const ioa_addr *a = p->addrs ? p->addrs : p->addr;
  if (!addr_usable(a))
    return IOA_EBADPARAM;
  /* Without a lookup, on_fail is the only optional callback that can run
   * after ioa_connect() returns (on_resolved and on_resolve_error never do,
   * and the unspecified-address warning is given below, from p): callers
   * that set all of them alike keep the small request. */
  int need_hooks = p->on_fail != NULL;
  size_t o_cands = REQ_SIZE + (need_hooks ? align8(sizeof(hooks)) : 0);
  size_t size = o_cands + 8 + align8(8 + a->addrlen);
  /* The block of the last fast request that succeeded, if it fits. */
  unsigned char *mem = ioa__loop_spare_take(loop, size);
  if (!mem)
    mem = ioa__malloc(size);
  if (!mem)
    return -ENOMEM;
  ioa_connect_req *req = (ioa_connect_req *)(void *)mem;
  req_init_completion(req, loop, p);
  req->has_hooks = need_hooks != 0;
  req->has_ext = 0;
  req->depth = 0;
  req->done = 0;
  req->in_sync = 0;
  req->fast = 1;
  if (need_hooks) {
    hooks *h = (hooks *)(void *)(mem + REQ_SIZE);
    memset(h, 0, sizeof *h);
    h->on_fail = p->on_fail;
    h->on_resolved = p->on_resolved;
    h->on_resolve_error = p->on_resolve_error;
    h->on_warning = p->on_warning;
  }
  unsigned char *pe = mem + o_cands + 8;
  entry_store(pe, a, socktype_of(a, st_hint));
  const entry *e = (const entry *)(const void *)pe;
  if (sa_unspecified(ENTRY_SA(pe)))
    warn_unspecified(req, p->on_warning, p->data, pe);
  req->slot0.start_ns = ioa_loop_now(loop);
  if (out)
    *out = req;

  ioa_syscall at = IOA_SYSCALL_NONE;
  int err = 0, connected = 0;
  int fd = ioa__sys_socket(e->meta.family, e->meta.socktype, e->meta.protocol);
  ioa_io_init(loop, &req->io0, fd, io_cb, req);
  if (fd < 0) {
    at = IOA_SYSCALL_SOCKET;
    err = -errno;
  } else if (ioa__sys_connect(fd, ENTRY_SA(e), e->len) == 0) {
    connected = 1;
  } else if (errno != EINPROGRESS && errno != EINTR) {
    at = IOA_SYSCALL_CONNECT;
    err = -errno;
  } else {
    int r = ioa__io_start_oneshot(&req->io0, IOA_WRITE);
    if (r == 0)
      return 0; /* the usual case: in progress, watched */
    at = IOA_SYSCALL_CONNECT;
    err = r;
  }
  /* Anything but "in progress": the core takes over and defers the news. */
  inflate(req, fd, at, err, connected);
  req->in_sync = 1;
  enter(req);
  pump(req);
  req->in_sync = 0;
  leave(req);
  return 0;
}

int ioa_connect(ioa_loop *loop, const ioa_connect_params *p, ioa_connect_req **out) {
  if (out)
    *out = NULL;
  if (!loop || !p)
    return IOA_EBADPARAM;
  ioa_connect_params copy;
  if (p->struct_size != sizeof *p) { /* another header's layout */
    ioa_connect_params_init(&copy);
    if (IOA__IMPORT(&copy, p) < 0)
      return IOA_EBADPARAM;
    p = &copy;
  }
  if ((p->on_connected != NULL) + (p->on_stream != NULL) + (p->on_socket != NULL) != 1 ||
      !p->on_connect_error || (unsigned)p->mode > IOA_CONNECT_RACE ||
      (p->attempt_delay_ms && p->attempt_delay_ms - 10u > 1990u) ||
      p->resolution_delay_ms > 2000)
    return IOA_EBADPARAM;

  int socktype = p->socktype;
  if (p->socktype_name) {
    socktype = ioa_socktype_from_name(p->socktype_name);
    if (socktype < 0)
      return socktype;
  }
  int st_hint = socktype == IOA_HINT_UNSET ? 0 : socktype;
  int proto_hint = p->protocol == IOA_HINT_UNSET ? 0 : p->protocol;
  if ((unsigned)st_hint > 255u || (unsigned)proto_hint > 65535u)
    return IOA_EBADPARAM;
  if (!p->host && !p->service && !p->local_host && !p->local_service && !p->local_addrs &&
      !p->local_addr && p->mode != IOA_CONNECT_RACE && !p->attempt_timeout_ms &&
      !p->timeout_ms && !p->on_attempt && !p->on_sockopt &&
      (p->addrs ? p->naddrs == 1 : p->addr != NULL))
    return connect_fast(loop, p, st_hint, out);

  int resolving = p->host || p->service;
  int res_local = p->local_host || p->local_service;
  const ioa_addr *peers = p->addrs ? p->addrs : p->addr;
  size_t npeers = p->addrs ? p->naddrs : p->addr ? 1 : 0;
  const ioa_addr *locals = p->local_addrs ? p->local_addrs : p->local_addr;
  size_t nlocals = p->local_addrs ? p->nlocal : p->local_addr ? 1 : 0;
  if (resolving)
    npeers = 0; /* IO::Async: addrs are ignored when resolving */
  if (res_local)
    nlocals = 0;
  if (!resolving && npeers == 0)
    return IOA_EBADPARAM;
  if (npeers > IOA_CC_MAX_ADDRS || nlocals > IOA_CC_MAX_ADDRS ||
      ioa__cc_cands_needed(nlocals, npeers) > IOA_CC_MAX_ADDRS)
    return -E2BIG;
  for (size_t i = 0; i < npeers; i++)
    if (!addr_usable(&peers[i]))
      return IOA_EBADPARAM;
  for (size_t i = 0; i < nlocals; i++)
    if (!addr_usable(&locals[i]))
      return IOA_EBADPARAM;

  int race = p->mode == IOA_CONNECT_RACE || (p->mode == IOA_CONNECT_AUTO && resolving);
  int need_ext = race || p->attempt_timeout_ms || p->timeout_ms || resolving || res_local;
  int need_hooks = p->on_fail || p->on_resolved || p->on_attempt || p->on_sockopt ||
                   p->on_resolve_error || p->on_warning;
  int plain_cands = !resolving && !res_local;
  size_t ncands = plain_cands ? ioa__cc_cands_needed(nlocals, npeers) : 0;
  size_t nslots = 1;
  if (race)
    nslots = plain_cands ? (ncands < RACE_SLOTS ? (ncands ? ncands : 1) : RACE_SLOTS) : RACE_SLOTS;
  size_t pstride = align8(8 + max_addrlen(peers, npeers));
  size_t lstride = align8(8 + max_addrlen(locals, nlocals));

  /* One allocation: request | hooks | ext | resolving | slots+ios | cands | peers | locals */
  size_t off = REQ_SIZE;
  size_t o_hooks = off;
  off += need_hooks ? align8(sizeof(hooks)) : 0;
  size_t o_ext = off;
  off += need_ext ? align8(sizeof(ext)) : 0;
  size_t o_res = off;
  off += resolving || res_local ? align8(sizeof(res_state)) : 0;
  size_t o_slots = off;
  off += nslots > 1 ? align8(nslots * sizeof(ioa__cc_slot)) + nslots * sizeof(ioa_io) : 0;
  size_t o_cands = off;
  off += align8(ncands * sizeof(ioa__cc_cand));
  size_t o_peers = off;
  off += npeers * pstride;
  size_t o_locals = off;
  off += nlocals * lstride;

  /* malloc, not calloc: glibc's calloc bypasses the thread cache, and only
   * the request head and the slot arrays need zeroing; the rest is written. */
  unsigned char *mem = ioa__malloc(off);
  if (!mem)
    return -ENOMEM;
  ioa_connect_req *req = (ioa_connect_req *)(void *)mem;
  memset(req, 0, sizeof *req);
  if (nslots > 1)
    memset(mem + o_slots, 0, o_cands - o_slots);
  if (resolving || res_local)
    memset(mem + o_res, 0, sizeof(res_state));
  req_init_completion(req, loop, p);
  if (need_hooks) {
    hooks *h = (hooks *)(void *)(mem + o_hooks);
    h->on_fail = p->on_fail;
    h->on_resolved = p->on_resolved;
    h->on_attempt = p->on_attempt;
    h->on_sockopt = p->on_sockopt;
    h->on_resolve_error = p->on_resolve_error;
    h->on_warning = p->on_warning;
    req->has_hooks = 1;
  }
  req->has_ext = need_ext != 0;
  ext *x = need_ext ? (ext *)(void *)(mem + o_ext) : NULL;
  if (x)
    x->ios = NULL;
  ioa_defer_init(loop, &req->defer, defer_cb, req);

  ioa__cc *cc = &req->cc;
  ioa__cc_configure(cc, race, p->attempt_delay_ms, p->resolution_delay_ms, p->attempt_timeout_ms);
  if (nslots > 1) {
    ioa__cc_slot *slots = (ioa__cc_slot *)(void *)(mem + o_slots);
    x->ios = (ioa_io *)(void *)(mem + o_slots + align8(nslots * sizeof(ioa__cc_slot)));
    ioa__cc_set_slots(cc, slots, (uint16_t)nslots);
  } else {
    ioa__cc_set_slots(cc, &req->slot0, 1);
  }
  /* Every watcher is initialised (fd -1) before anything can stop it. */
  for (size_t i = 0; i < nslots; i++)
    ioa_io_init(loop, slot_io(req, (unsigned)i), -1, io_cb, req);
  for (size_t i = 0; i < npeers; i++)
    entry_store(mem + o_peers + i * pstride, &peers[i], socktype_of(&peers[i], st_hint));
  for (size_t i = 0; i < nlocals; i++)
    entry_store(mem + o_locals + i * lstride, &locals[i], socktype_of(&locals[i], st_hint));
  ioa__cc_set_peers(cc, mem + o_peers, (uint32_t)pstride, (uint16_t)npeers);
  ioa__cc_set_locals(cc, mem + o_locals, (uint32_t)lstride, (uint16_t)nlocals);
  if (plain_cands)
    ioa__cc_set_cand_storage(cc, (ioa__cc_cand *)(void *)(mem + o_cands), (uint16_t)ncands);

  uint64_t now = ioa_loop_now(loop);
  if (x) {
    ioa_timer_init(loop, &x->timer, timer_cb, req);
    x->res = resolving || res_local ? (res_state *)(void *)(mem + o_res) : NULL;
    /* Deadlines count from now, not from the loop's cached iteration time. */
    now = ioa_loop_update_time(loop);
  }

  /* IO::Async's warning: a getaddrinfo lookup without socktype or protocol
   * hints (an explicit socktype 0 says "none in particular" and is quiet). */
  ioa_warn_cb wcb = p->on_warning;
  if ((resolving || res_local) && socktype == IOA_HINT_UNSET && p->protocol == IOA_HINT_UNSET)
    warn(req, wcb, p->data,
         "ioa_connect: neither socktype nor protocol hint given for the getaddrinfo lookup; "
         "pass socktype 0 for no particular socktype");
  for (size_t i = 0; i < npeers; i++)
    if (sa_unspecified(ENTRY_SA(mem + o_peers + i * pstride)))
      warn_unspecified(req, wcb, p->data, mem + o_peers + i * pstride);

  ioa__cc_start(cc, now, resolving, res_local, p->timeout_ms);
  enter(req);
  req->in_sync = 1;
  if (resolving || res_local) {
    ioa_resolver *r = p->resolver;
    int e = r ? 0 : ioa_resolver_default(loop, &r);
    ioa_resolve_hints hints = {p->family, st_hint, proto_hint, p->flags};
    /* Lookups get no timeout from the overall deadline (0: the resolver's
     * default applies): the core's timer ends the request as a connect
     * timeout and cancels them.  The same deadline given to the resolver
     * fired first and turned into a resolve error. */
    if (res_local) {
      if (e == 0)
        e = ensure_cands(req);
      if (e == 0)
        e = start_lookup(req, r, 1, p->local_host, p->local_service, &hints, 0);
      if (e < 0)
        ioa__cc_resolved(cc, now, 1, e);
    }
    if (resolving && cc->state == IOA_CC_RESOLVING) {
      if (e == 0)
        e = ensure_cands(req);
      if (e == 0)
        e = start_lookup(req, r, 0, p->host, p->service, &hints, 0);
      if (e < 0)
        ioa__cc_resolved(cc, now, 0, e);
    } else if (!resolving && plain_cands == 0 && e == 0) {
      e = ensure_cands(req);
      if (e < 0)
        ioa__cc_abort(cc, now, e);
    }
  }
  pump(req);
  req->in_sync = 0;
  leave(req);
  if (out)
    *out = req;
  return 0;
}
