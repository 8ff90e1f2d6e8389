/* SPDX-License-Identifier: MIT */
/* The connector's driver: the syscalls, watchers, timer, defer and resolver
 * around the decision core (connect_core.c).
 *
 * Footprint: a request in plain address mode is one allocation holding the
 * core, one attempt slot with its fd watcher, the defer, and the addresses in
 * a compact strided form (an 8-byte head plus only the socket address's own
 * bytes: 24 bytes for IPv4 rather than a 144-byte ioa_addr).  Optional parts
 * (hooks, timer, lookup state) are appended only when asked for; a TLS
 * request's state (the config's reference, the name, a stream per running
 * handshake) is an allocation of its own.  Sized to
 * what the request needs, not to what it might: more attempt slots come when
 * the core asks for them (GROW: 1, 2, 4, 8, 16), and a lookup's answer goes,
 * candidates and compact addresses together, into one block sized to it.
 *
 * Re-entrancy: every entry point (watcher, timer, defer, resolver callback,
 * cancel) runs the action pump inside the request's ioa__guard (guard.h); a
 * callback may cancel the request, completion releases it, and the memory is
 * freed by the outermost entry point only.
 *
 * ioa_connect() goes in named steps: validate (every parameter and address,
 * before anything is allocated), plan_layout (the one allocation's parts),
 * req_alloc (initialise them), req_start (warnings, lookups, the first
 * actions).  A single numeric address skips the last three (connect_fast).
 */
#include "ioasync/connect.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "abi.h"
#include "alloc.h"
#include "connect_core.h"
#include "guard.h"
#include "loop_internal.h"
#include "resolve_internal.h"
#include "rtt.h"
#include "stream_internal.h"
#include "sys.h"
#include "tls_internal.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* For the small checks on the single-address path, whose whole budget is a
 * few hundred instructions: a call and its spills cost more than the check. */
#define FAST_INLINE static inline __attribute__((always_inline))

/* The ranges ioa_addr(3)'s builders accept (IOA_EADDRSOCKTYPE,
 * IOA_EADDRPROTOCOL outside them). */
#define ADDR_SOCKTYPE_MAX 15
#define ADDR_PROTOCOL_MAX 255

/* One compact address: ioa__cc_meta, length, then the socket address bytes. */
typedef struct entry {
  ioa__cc_meta meta;
  uint16_t len;
  uint16_t pad_;
} entry;
#define ENTRY_SA(e) ((const struct sockaddr *)(const void *)((const unsigned char *)(e) + 8))

enum { OK_CONNECTED, OK_STREAM, OK_SOCKET };
enum { EXT_TIMER = 1, EXT_RES = 2 }; /* has_ext bits; EXT_RES comes with EXT_TIMER */
/* req->fast: which short cut a request is on (see "fast path"). */
enum {
  FAST_NO = 0,
  FAST_ADDR,         /* one numeric address: its attempt in flight, core not set up */
  FAST_NAME_WAIT,    /* by name: the lookup out, core set up but not started */
  FAST_NAME_ATTEMPT, /* by name, one candidate: its attempt in flight */
};

typedef struct hooks {
  ioa_connect_fail_cb on_fail;
  ioa_connect_resolved_cb on_resolved;
  ioa_connect_attempt_cb on_attempt;
  ioa_connect_sockopt_cb on_sockopt;
  ioa_connect_resolve_error_cb on_resolve_error;
  ioa_warn_cb on_warning;
  ioa_connect_attempt_cb on_handshake;
} hooks;

/* The options for the stream or socket handed over, resolved by ioa_connect
 * (kept only when the caller gave some). */
typedef union conn_opts {
  ioa_stream_options stream;
  ioa_socket_options socket;
} conn_opts;

/* Resolving mode state.  What the lookups gave lives in one block, laid
 * out by block_fit(): the candidates, then the resolved peers, then the
 * resolved locals (compact entries, each side at its own stride).  An
 * answer of one address (the commonest) fits in the request itself. */
#define INLINE_BLK 48 /* one candidate and one IPv6 entry */
typedef struct res_state {
  ioa_resolve_req *peer_req, *local_req;
  unsigned char *blk; /* NULL, inline_blk, or allocated */
  char *message;      /* the resolver's message for a resolve error */
  uint16_t cand_cap;  /* candidates the block has room for */
  uint8_t partial_families; /* families already taken from on_partial */
  uint8_t st_default;       /* socket type of a socktype-0 peer (see peer_socktype) */
  uint8_t own_peers, own_locals; /* that side is looked up: its entries are in blk */
  ioa_resolver *orderer; /* whose sorter ranks the families (heads_order) */
  unsigned char inline_blk[INLINE_BLK] __attribute__((aligned(8)));
} res_state;

/* Slots beyond the request's own slot0/io0, once the core asks (GROW).
 * The core's slot array is plain data and moves when it grows; a watcher
 * cannot move while the loop knows it, so watchers live in chunks that
 * never do: chunk k (from 1) holds slots [2^(k-1), 2^k). */
#define SLOT_CHUNKS 8 /* up to 256 slots */
typedef struct slot_store {
  ioa_io *chunk[SLOT_CHUNKS]; /* chunk[k - 1] */
  ioa__cc_slot slots[];       /* the core's array, nslots entries */
} slot_store;

/* TLS requests: each connected attempt's handshake runs on a stream (the
 * one handed over if it wins), and handshake failures keep their reason.
 * A handshake holds an attempt slot, so there are at most as many as the
 * core has attempts in flight. */
typedef struct tls_state {
  ioa_tls_config *cfg; /* the request's own reference */
  char *name;          /* verified and sent as SNI; NULL: each peer's address */
  char **msgs;         /* per failure record: a handshake failure's reason */
  size_t nmsgs;
  ioa_stream *hs[IOA_CC_MAX_INFLIGHT]; /* per slot: the stream whose handshake runs */
} tls_state;

typedef struct ext {
  ioa_timer timer;
  slot_store *more;   /* NULL while one slot does */
  ioa_rtt_cache *rtt; /* racing with a learned delay: where RTTs are kept; else NULL */
  tls_state *tls;     /* NULL without TLS */
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
  ioa__guard guard; /* released once the completion callback runs */
  /* hooks, opts and ext follow the request in its allocation when these are
   * set; flags rather than pointers keep the common request small. */
  uint8_t has_hooks; /* some optional callback is set */
  uint8_t has_opts;  /* stream or socket options were given */
  uint8_t has_ext;   /* EXT_*: a timer is needed (race, timeouts, resolving), lookups */
  uint8_t ok_kind;
  uint8_t in_sync; /* inside ioa_connect(): no callbacks */
  uint8_t fast;    /* FAST_*: the core not yet started (see "fast path", inflate) */
  uint16_t head;   /* head_size(has_hooks, has_opts): where the planned parts begin */
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
  case IOA_SYSCALL_TLS: return "tls";
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

/* Check an address as ioa_addr(3)'s builders would have made it: socktype
 * 0..15, protocol 0..255, family inet, inet6 or unix, and a socket address
 * of that family and its length.  Returns 0 or the address module's code.
 * (Unsigned compares fold "not negative" into "not too big".) */
FAST_INLINE int addr_check(const ioa_addr *a) {
  if ((unsigned)a->socktype > ADDR_SOCKTYPE_MAX)
    return IOA_EADDRSOCKTYPE;
  if ((unsigned)a->protocol > ADDR_PROTOCOL_MAX)
    return IOA_EADDRPROTOCOL;
  int len_ok;
  switch (a->family) {
  case AF_INET: len_ok = a->addrlen == sizeof(struct sockaddr_in); break;
  case AF_INET6: len_ok = a->addrlen == sizeof(struct sockaddr_in6); break;
  case AF_UNIX:
    len_ok = a->addrlen >= sizeof(sa_family_t) && a->addrlen <= sizeof(struct sockaddr_un);
    break;
  default: return IOA_EADDRFAMILY;
  }
  /* A length that does not fit, or a sockaddr of another family. */
  return len_ok && a->addr.ss_family == a->family ? 0 : IOA_EADDRSYNTAX;
}

/* The socket type a peer is connected with: its own, else the default
 * (the socktype hint, else SOCK_STREAM: IO::Async makes a socktype-0
 * address a stream socket). */
FAST_INLINE int peer_socktype(int socktype, int st_default) { return socktype ? socktype : st_default; }

/* Whether a socket of this type can be handed over as the caller asked:
 * on_stream takes stream sockets only, on_socket anything else (ioa_socket
 * refuses stream sockets), on_connected any fd. */
FAST_INLINE int kind_fits(unsigned ok_kind, int socktype) {
  if (ok_kind == OK_STREAM)
    return socktype == SOCK_STREAM;
  return ok_kind != OK_SOCKET || socktype != SOCK_STREAM;
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

/* The allocation: request | hooks? | opts? | then the parts the layout
 * plan (or the fast path) adds. */
#define REQ_SIZE align8(sizeof(ioa_connect_req))
static size_t head_size(int has_hooks, int has_opts) {
  return REQ_SIZE + (has_hooks ? align8(sizeof(hooks)) : 0) +
         (has_opts ? align8(sizeof(conn_opts)) : 0);
}
static const hooks *req_hooks(const ioa_connect_req *req) {
  return req->has_hooks ? (const hooks *)(const void *)((const unsigned char *)req + REQ_SIZE)
                        : NULL;
}
static conn_opts *req_opts(const ioa_connect_req *req) {
  if (!req->has_opts)
    return NULL;
  size_t off = REQ_SIZE + (req->has_hooks ? align8(sizeof(hooks)) : 0);
  return (conn_opts *)(void *)((unsigned char *)req + off);
}
static ext *req_ext(const ioa_connect_req *req) {
  if (!req->has_ext)
    return NULL;
  return (ext *)(void *)((unsigned char *)req + req->head);
}
/* The lookups' state follows ext (resolving mode only). */
static res_state *req_res(const ioa_connect_req *req) {
  if (!(req->has_ext & EXT_RES))
    return NULL;
  return (res_state *)(void *)((unsigned char *)req + req->head + align8(sizeof(ext)));
}

/* Slot i's watcher: io0, or its place in chunk k = bit length of i. */
static unsigned slot_chunk(unsigned slot) { return 32u - (unsigned)__builtin_clz(slot); }
static ioa_io *slot_io(ioa_connect_req *req, unsigned slot) {
  assert(slot < req->cc.nslots);
  if (slot == 0)
    return &req->io0;
  unsigned k = slot_chunk(slot);
  return &req_ext(req)->more->chunk[k - 1][slot - (1u << (k - 1))];
}
/* The slot an io_cb's watcher belongs to. */
static unsigned io_slot(const ioa_connect_req *req, const ioa_io *io) {
  if (io == &req->io0)
    return 0;
  const slot_store *st = req_ext(req)->more;
  for (unsigned k = 1; k <= SLOT_CHUNKS && st->chunk[k - 1]; k++) {
    const ioa_io *c = st->chunk[k - 1];
    if (io >= c && io < c + (1u << (k - 1)))
      return (1u << (k - 1)) + (unsigned)(io - c);
  }
  assert(!"a watcher of no slot");
  return 0;
}

static void io_cb(ioa_io *io, unsigned revents, void *data);

/* GROW: n slots instead of nslots.  A new slot array (the core copies its
 * slots over) and the chunks of watchers the new slots need; nothing moves
 * that the loop knows.  -ENOMEM leaves everything as it was. */
static int grow_slots(ioa_connect_req *req, unsigned n) {
  ext *x = req_ext(req);
  unsigned old = req->cc.nslots;
  assert(x && n > old && n <= (1u << SLOT_CHUNKS));
  slot_store *st = x->more;
  slot_store *ns = ioa__malloc(sizeof *ns + n * sizeof(ioa__cc_slot));
  if (!ns)
    return -ENOMEM;
  for (unsigned k = 1; k <= SLOT_CHUNKS; k++)
    ns->chunk[k - 1] = st ? st->chunk[k - 1] : NULL;
  for (unsigned k = slot_chunk(old); k <= slot_chunk(n - 1); k++) {
    if (ns->chunk[k - 1])
      continue;
    ioa_io *c = ioa__malloc((1u << (k - 1)) * sizeof *c);
    if (!c) {
      for (unsigned j = 1; j <= SLOT_CHUNKS; j++)
        if (ns->chunk[j - 1] && (!st || ns->chunk[j - 1] != st->chunk[j - 1]))
          ioa__free(ns->chunk[j - 1]);
      ioa__free(ns);
      return -ENOMEM;
    }
    for (unsigned i = 0; i < (1u << (k - 1)); i++)
      ioa_io_init(req->loop, &c[i], -1, io_cb, req);
    ns->chunk[k - 1] = c;
  }
  ioa__cc_grow_slots(&req->cc, ns->slots, (uint16_t)n);
  x->more = ns;
  ioa__free(st);
  return 0;
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

/* The allocation's size when it is nothing but the request's head, ext and
 * lookup state (a request by name without local addresses given), so that
 * the loop's spare block can serve the next such request; else 0. */
static size_t name_req_size(const ioa_connect_req *req) {
  const res_state *rs = req_res(req);
  if (!rs || !rs->own_peers || (!rs->own_locals && req->cc.nlocals))
    return 0;
  return (size_t)req->head + align8(sizeof(ext)) + align8(sizeof(res_state));
}

static void tls_state_free(tls_state *ts) {
  if (!ts)
    return;
  for (unsigned i = 0; i < IOA_CC_MAX_INFLIGHT; i++)
    if (ts->hs[i]) { /* every handshake's stream is closed before completion */
      ioa__stream_detach_handshake(ts->hs[i]);
      ioa_stream_free(ts->hs[i]);
    }
  for (size_t i = 0; i < ts->nmsgs; i++)
    ioa__free(ts->msgs[i]);
  ioa__free(ts->msgs);
  ioa__free(ts->name);
  ioa_tls_config_unref(ts->cfg);
  ioa__free(ts);
}

/* A fast request never gets here: it ends by fast_deliver or inflate. */
static void req_free(ioa_connect_req *req) {
  assert(!req->fast && req->guard.depth == 0 && ioa__guard_released(&req->guard));
  ext *x = req_ext(req);
  res_state *rs = req_res(req);
  if (x)
    ioa_timer_stop(&x->timer);
  if (rs) {
    if (rs->blk != rs->inline_blk)
      ioa__free(rs->blk);
    ioa__free(rs->message);
  }
  if (x)
    tls_state_free(x->tls);
  for (unsigned i = 0; i < req->cc.nslots; i++)
    ioa_io_stop(slot_io(req, i));
  if (x && x->more) {
    for (unsigned k = 0; k < SLOT_CHUNKS; k++)
      ioa__free(x->more->chunk[k]);
    ioa__free(x->more);
  }
  ioa_defer_stop(&req->defer);
  free_failure_views(req);
  ioa__cc_dispose(&req->cc);
  size_t size = name_req_size(req);
  if (size)
    ioa__loop_spare_give(req->loop, req, size); /* everything in it is stopped */
  else
    ioa__free(req);
}

/* Leave an entry point (entered with ioa__guard_enter); the outermost one
 * frees a completed request. */
static void guard_leave(ioa_connect_req *req) {
  if (ioa__guard_leave_last(&req->guard))
    req_free(req);
}

/* The completion callback has run (or is running): nothing more happens. */
static int finished(const ioa_connect_req *req) { return ioa__guard_released(&req->guard); }

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
  /* The attempt starts now, not at the loop's cached time (milliseconds old
   * when opened from a resolver's callback, say): the attempt delay and
   * timeout count from here.  Only where they can matter, and the RTT is
   * looked up only when a delay is to be learned. */
  if (cc->attempt_timeout_ms || ioa__cc_more_to_try(cc)) {
    uint64_t t = ioa_loop_update_time(req->loop);
    const ext *x = req_ext(req);
    uint32_t rtt = 0;
    if (x && x->rtt && !cc->attempt_delay_ms && ioa__cc_more_to_try(cc))
      rtt = ioa__rtt_get(x->rtt, ENTRY_SA(p), t);
    ioa__cc_attempt_start(cc, t, slot, rtt);
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

/* A failure's reason: a handshake's own, or the code's text. */
static const char *failure_message(const ioa_connect_req *req, const ioa__cc_failure *f) {
  const ext *x = req_ext(req);
  size_t i = (size_t)(f - req->cc.fails->rec);
  if (x && x->tls && i < x->tls->nmsgs && x->tls->msgs[i])
    return x->tls->msgs[i];
  if (f->syscall == IOA_SYSCALL_TLS && f->err == -ETIMEDOUT)
    return "the TLS handshake did not finish in time";
  return ioa_strerror(f->err);
}

/* One public record from a core record (its addresses go to peer/local). */
static void failure_view(const ioa_connect_req *req, const ioa__cc_failure *f,
                         ioa_attempt_failure *v, ioa_addr *peer, ioa_addr *local) {
  const unsigned char *pe = peer_entry(req, f->cand);
  const unsigned char *le = local_entry(req, f->cand);
  const entry *p = (const entry *)(const void *)pe;
  entry_load(peer, pe);
  if (le)
    entry_load(local, le);
  v->syscall = (ioa_syscall)f->syscall;
  v->err = f->err;
  v->fd = f->fd;
  v->family = p->meta.family;
  v->socktype = p->meta.socktype;
  v->protocol = p->meta.protocol;
  v->peer = peer;
  v->local = le ? local : NULL;
  v->start_ns = f->start_ns;
  v->end_ns = f->end_ns;
  v->message = failure_message(req, f);
}

static void report_failure(ioa_connect_req *req, const ioa__cc_action *a) {
  if (!req_hooks(req) || !req_hooks(req)->on_fail)
    return;
  ioa_addr peer, local;
  ioa_attempt_failure af;
  failure_view(req, &req->cc.fails->rec[a->failure], &af, &peer, &local);
  req_hooks(req)->on_fail(req, &af, req->data);
}

static void deliver(ioa_connect_req *req, int fd, const unsigned char *pe);

/* A racing request that learns feeds its winner's round-trip time (the
 * kernel's smoothed one, TCP_INFO) to the cache the next requests look up.
 * Read at completion: with TLS that is after the handshake, so the winner
 * is the connection that really served and the kernel's estimate has the
 * handshake's round trips besides the SYN's (the handshake itself, its
 * server's work included, is not measured: the delay is 2 x a network
 * RTT, for TLS as for TCP).  Only requests that had more than one
 * candidate: as the lookup is made only when a delay can matter, so is the
 * sample (a getsockopt and a cache update saved on every single-address
 * connect). */
static void learn_rtt(ioa_connect_req *req, int fd, const unsigned char *pe) {
  const ext *x = req_ext(req);
  const entry *e = (const entry *)(const void *)pe;
  if (!x || !x->rtt || e->meta.socktype != SOCK_STREAM ||
      (e->meta.family != AF_INET && e->meta.family != AF_INET6) ||
      (e->meta.protocol != 0 && e->meta.protocol != IPPROTO_TCP))
    return;
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (ioa__sys_getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
      len >= offsetof(struct tcp_info, tcpi_rtt) + sizeof ti.tcpi_rtt)
    ioa__rtt_note(x->rtt, ENTRY_SA(e), ti.tcpi_rtt, now_of(req));
}

static void complete(ioa_connect_req *req, const ioa__cc_action *a) {
  ext *x = req_ext(req);
  res_state *rs = req_res(req);
  int free_now = ioa__guard_release(&req->guard);
  assert(!free_now); /* the pump runs inside an entry point */
  (void)free_now;
  ioa_defer_stop(&req->defer);
  if (x)
    ioa_timer_stop(&x->timer);
  /* Cancelling calls our on_done at once; it sees the request finished. */
  if (rs && rs->peer_req)
    ioa_resolve_cancel(rs->peer_req);
  if (rs && rs->local_req)
    ioa_resolve_cancel(rs->local_req);
  if (a->outcome == IOA_CC_RESOLVE_ERROR) {
    const char *msg = rs && rs->message ? rs->message : ioa_strerror(a->err);
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
  if (req->cc.ncands > 1) /* only a choice between addresses needs the delay */
    learn_rtt(req, a->fd, peer_entry(req, a->cand));
  if (x && x->tls) {
    /* The winner's stream is established already: it is handed over. */
    ioa_stream *s = x->tls->hs[a->slot];
    x->tls->hs[a->slot] = NULL;
    ioa_addr peer;
    entry_load(&peer, peer_entry(req, a->cand));
    req->on_ok.stream(req, s, &peer, req->data);
    return;
  }
  deliver(req, a->fd, peer_entry(req, a->cand));
}

/* Hand the connected fd over through the success callback the caller chose,
 * with the options ioa_connect() resolved (so the wrapper cannot refuse
 * them). */
static void deliver(ioa_connect_req *req, int fd, const unsigned char *pe) {
  assert(fd >= 0 && ioa__guard_released(&req->guard));
  ioa_addr peer;
  entry_load(&peer, pe);
  const conn_opts *o = req_opts(req);
  if (req->ok_kind == OK_CONNECTED) {
    req->on_ok.connected(req, fd, &peer, req->data);
  } else if (req->ok_kind == OK_STREAM) {
    ioa_stream *s;
    int r = ioa_stream_new(req->loop, fd, o ? &o->stream : NULL, &s);
    if (r < 0) {
      ioa__sys_close(fd);
      req->on_error(req, IOA_SYSCALL_NONE, r, req->data);
      return;
    }
    req->on_ok.stream(req, s, &peer, req->data);
  } else {
    ioa_socket *s;
    int r = ioa_socket_new(req->loop, fd, o ? &o->socket : NULL, &s);
    if (r < 0) {
      ioa__sys_close(fd);
      req->on_error(req, IOA_SYSCALL_NONE, r, req->data);
      return;
    }
    req->on_ok.socket(req, s, &peer, req->data);
  }
}

static int close_handshake(ioa_connect_req *req, unsigned slot);
static void start_handshake(ioa_connect_req *req, unsigned slot, int fd, unsigned cand);

/* Perform actions until the core has none.  In ioa_connect() (in_sync) a
 * pending callback turns into a defer instead. */
static void pump(ioa_connect_req *req) {
  assert(req->guard.depth > 0 && !req->fast);
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
      assert(a.fd >= 0);
      ioa_io_stop(slot_io(req, a.slot));
      if (!close_handshake(req, a.slot))
        ioa__sys_close(a.fd);
      break;
    case IOA_CC_ACT_HANDSHAKE:
      start_handshake(req, a.slot, a.fd, a.cand);
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
    case IOA_CC_ACT_GROW:
      if (grow_slots(req, a.slot) < 0)
        ioa__cc_grow_failed(&req->cc); /* the oldest attempt makes room instead */
      break;
    }
  }
}

/* ------------------------------------------------------------ TLS */

static void handshake_done(ioa_stream *s, int err, const char *msg, void *data);

/* The attempt's stream, if a handshake ran on it, goes with its fd. */
static int close_handshake(ioa_connect_req *req, unsigned slot) {
  ext *x = req_ext(req);
  if (!x || !x->tls || !x->tls->hs[slot])
    return 0;
  ioa_stream *s = x->tls->hs[slot];
  x->tls->hs[slot] = NULL;
  ioa__stream_detach_handshake(s);
  ioa_stream_free(s);
  return 1;
}

/* Keep a handshake failure's reason with its record (index i). */
static void keep_message(ioa_connect_req *req, size_t i, const char *msg) {
  tls_state *ts = req_ext(req)->tls;
  if (!msg)
    return;
  if (i >= ts->nmsgs) {
    char **n = ioa__realloc(ts->msgs, (i + 1) * sizeof *n);
    if (!n)
      return; /* the record keeps the code's text */
    for (size_t k = ts->nmsgs; k <= i; k++)
      n[k] = NULL;
    ts->msgs = n;
    ts->nmsgs = i + 1;
  }
  size_t len = strlen(msg);
  char *copy = ioa__malloc(len + 1);
  if (copy) {
    memcpy(copy, msg, len + 1);
    ioa__free(ts->msgs[i]);
    ts->msgs[i] = copy;
  }
}

/* Tell the core how slot's handshake ended, keeping its reason. */
static void handshake_result(ioa_connect_req *req, unsigned slot, int err, const char *msg) {
  /* Verification, protocol and alerts would be the same at the next
   * address; a network failure (reset, EOF, no memory) may not be. */
  int result = err == 0 ? IOA_CC_HS_OK
               : ioa_err_is_tls(err) && err != IOA_ETLSEOF ? IOA_CC_HS_FATAL
                                                           : IOA_CC_HS_RETRY;
  size_t before = req->cc.fails ? req->cc.fails->n : 0;
  ioa__cc_handshaked(&req->cc, now_of(req), slot, result, err);
  if (req->cc.fails && req->cc.fails->n > before)
    keep_message(req, before, msg);
}

/* The HANDSHAKE action: the connected fd becomes a stream with a TLS
 * transport (stream options applied), whose handshake answers the core. */
static void start_handshake(ioa_connect_req *req, unsigned slot, int fd, unsigned cand) {
  tls_state *ts = req_ext(req)->tls;
  const hooks *h = req_hooks(req);
  const unsigned char *pe = peer_entry(req, cand);
  ioa_io_stop(slot_io(req, slot)); /* the stream watches the fd from now on */
  if (h && h->on_handshake) {
    ioa_addr peer, local;
    const unsigned char *le = local_entry(req, cand);
    entry_load(&peer, pe);
    if (le)
      entry_load(&local, le);
    h->on_handshake(req, &peer, le ? &local : NULL, req->data);
    if (req->cc.state != IOA_CC_CONNECTING)
      return; /* cancelled from the hook: the core closes fd */
  }
  const conn_opts *o = req_opts(req);
  ioa_stream *s;
  int r = ioa_stream_new(req->loop, fd, o ? &o->stream : NULL, &s);
  if (r < 0) {
    handshake_result(req, slot, r, "cannot set up the stream for the TLS handshake");
    return;
  }
  ioa__transport *tr;
  const entry *p = (const entry *)(const void *)pe;
  r = ioa__tls_transport_new(ts->cfg, fd, ts->name, ENTRY_SA(p), p->len, &tr);
  if (r == 0) {
    r = ioa__stream_start_transport(s, tr, handshake_done, req);
    if (r < 0)
      tr->ops->free(tr);
  }
  if (r < 0) {
    ioa__stream_release_fd(s); /* the fd stays the core's, closed by CLOSE */
    ioa_stream_free(s);
    handshake_result(req, slot, r, r == -ENOMEM ? "out of memory" : ioa_strerror(r));
    return;
  }
  ts->hs[slot] = s;
}

static void handshake_done(ioa_stream *s, int err, const char *msg, void *data) {
  ioa_connect_req *req = data;
  tls_state *ts = req_ext(req)->tls;
  unsigned slot = 0;
  while (slot < req->cc.nslots && ts->hs[slot] != s)
    slot++;
  if (slot == req->cc.nslots || finished(req))
    return; /* not ours any more (detached streams never call) */
  ioa__guard_enter(&req->guard);
  handshake_result(req, slot, err, msg);
  pump(req);
  guard_leave(req);
}

/* ---------------------------------------------------------- fast path
 *
 * The commonest requests — one numeric address, or a name whose answer is
 * one address; no local address, no timeouts, no attempt hooks — are a
 * single socket+connect whose success is the whole story.  The connector
 * then makes that attempt itself and leaves the core untouched; the moment
 * anything else happens (a failure, a result inside ioa_connect, a cancel,
 * an answer of another length, a resolver error) inflate() replays into
 * the core exactly the events it would have seen, and the core decides
 * everything from there:
 *  - FAST_ADDR (connect_fast): start, OPEN of candidate 0, the result.  The
 *    request's layout is the core's (one slot, one candidate), so this
 *    needs no memory.
 *  - FAST_NAME_WAIT (a lookup out): start.  The core was configured when
 *    the request was made; the start's time does not matter to it without
 *    a deadline, so the replay gives it the current one.
 *  - FAST_NAME_ATTEMPT (the answer's one candidate being tried): start, the
 *    answer (already in the block the core is pointed at), OPEN of
 *    candidate 0, the result.
 * fuzz_connect_paths runs each input both ways and requires the same
 * callbacks, syscalls and failure lists. */

static size_t fast_cands_off(const ioa_connect_req *req) { return req->head; }

static void inflate(ioa_connect_req *req, int fd, ioa_syscall failed_at, int err, int connected) {
  assert(req->fast);
  unsigned char *mem = (unsigned char *)req;
  uint64_t t0 = req->slot0.start_ns;
  ioa__cc *cc = &req->cc;
  int fast = req->fast;
  req->fast = FAST_NO;
  if (fast == FAST_NAME_WAIT) {
    ioa__cc_start(cc, now_of(req), 1, 0, 0);
    return;
  }
  if (fast == FAST_ADDR) {
    memset(cc, 0, sizeof *cc);
    ioa_defer_init(req->loop, &req->defer, defer_cb, req);
    ioa__cc_configure(cc, 0, 0, 0, 0);
    ioa__cc_set_slots(cc, &req->slot0, 1);
    size_t o_cands = fast_cands_off(req);
    const entry *pe = (const entry *)(const void *)(mem + o_cands + 8);
    ioa__cc_set_cand_storage(cc, (ioa__cc_cand *)(void *)(mem + o_cands), 1);
    ioa__cc_set_peers(cc, pe, (uint32_t)align8(8 + pe->len), 1);
    ioa__cc_start(cc, t0, 0, 0, 0);
  } else { /* FAST_NAME_ATTEMPT: t0 is when the answer came */
    ioa__cc_start(cc, t0, 1, 0, 0);
    ioa__cc_resolved(cc, t0, 0, 0);
  }
  ioa__cc_action a;
  ioa__cc_next(cc, 0, &a); /* OPEN slot 0, candidate 0: the attempt already made */
  assert(a.kind == IOA_CC_ACT_OPEN && a.slot == 0 && a.cand == 0);
  ioa__cc_opened(cc, failed_at != IOA_SYSCALL_NONE || connected ? now_of(req) : t0, a.slot, fd,
                failed_at, err, connected);
}

/* A fast request connected: what the core would decide (DONE, connected,
 * nothing to close), without setting the core up.  The watcher is stopped
 * and nothing else was started, so the block can serve the next fast
 * request of its size on this loop. */
static void fast_deliver(ioa_connect_req *req, int fd, const unsigned char *pe, size_t size) {
  ioa_loop *loop = req->loop;
  ioa__guard_enter(&req->guard);
  ioa__guard_release(&req->guard);
  deliver(req, fd, pe);
  int last = ioa__guard_leave_last(&req->guard);
  assert(last); /* nothing else can hold a released request */
  (void)last;
  ioa__loop_spare_give(loop, req, size);
}

/* The same for FAST_NAME_ATTEMPT, whose answer may have needed a block of
 * its own; nothing else was made (no timer, slots, failures), and with one
 * candidate there is no RTT to learn (see learn_rtt). */
static void fast_deliver_name(ioa_connect_req *req, int fd) {
  const unsigned char *pe = (const unsigned char *)ioa__cc_peer(&req->cc, 0);
  const res_state *rs = req_res(req);
  unsigned char *blk = rs->blk != rs->inline_blk ? rs->blk : NULL;
  fast_deliver(req, fd, pe, name_req_size(req));
  ioa__free(blk); /* after the hand-over: the peer passed to it lives there */
}

/* The fast request's one attempt: socket and connect.  Anything but "in
 * progress" goes to the core, which (in_sync: inside ioa_connect) defers
 * the news past ioa_connect(). */
FAST_INLINE void fast_attempt(ioa_connect_req *req, const entry *e, int in_sync) {
  ioa_syscall at = IOA_SYSCALL_NONE;
  int err = 0, connected = 0;
  int fd = ioa__sys_socket(e->meta.family, e->meta.socktype, e->meta.protocol);
  ioa_io_init(req->loop, &req->io0, fd, io_cb, req);
  if (fd < 0) {
    at = IOA_SYSCALL_SOCKET;
    err = -errno;
  } else if (ioa__sys_connect(fd, ENTRY_SA(e), e->len) == 0) {
    connected = 1;
  } else if (errno != EINPROGRESS && errno != EINTR) {
    at = IOA_SYSCALL_CONNECT;
    err = -errno;
  } else if ((err = ioa__io_start_oneshot(&req->io0, IOA_WRITE)) == 0) {
    return; /* the usual case: in progress, watched */
  } else {
    at = IOA_SYSCALL_CONNECT;
  }
  inflate(req, fd, at, err, connected);
  ioa__guard_enter(&req->guard);
  uint8_t was = req->in_sync; /* in ioa_connect() already: stays so */
  req->in_sync = (uint8_t)(in_sync || was);
  pump(req);
  req->in_sync = was;
  guard_leave(req);
}

/* Everything io_cb does but the numeric fast path's success, kept out of
 * line so that path stays short. */
static __attribute__((noinline)) void io_done(ioa_connect_req *req, ioa_io *io, int err) {
  if (req->fast) { /* FAST_NAME_ATTEMPT's success, or a fast attempt failed */
    if (err == 0) {
      fast_deliver_name(req, io->fd_);
      return;
    }
    inflate(req, io->fd_, IOA_SYSCALL_NONE, 0, 0);
  }
  unsigned slot = io_slot(req, io);
  ioa__guard_enter(&req->guard);
  ioa__cc_connected(&req->cc, now_of(req), slot, err);
  pump(req);
  guard_leave(req);
}

static void io_cb(ioa_io *io, unsigned revents, void *data) {
  ioa_connect_req *req = data;
  assert(io->fd_ >= 0);
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
  if (err == 0 && req->fast == FAST_ADDR) {
    const unsigned char *pe = (const unsigned char *)req + fast_cands_off(req) + 8;
    fast_deliver(req, io->fd_, pe,
                 fast_cands_off(req) + 8 + align8(8 + ((const entry *)(const void *)pe)->len));
    return;
  }
  io_done(req, io, err);
}

static void timer_cb(ioa_timer *t, void *data) {
  ioa_connect_req *req = data;
  (void)t;
  ioa__guard_enter(&req->guard);
  ioa__cc_tick(&req->cc, now_of(req));
  pump(req);
  guard_leave(req);
}

static void defer_cb(ioa_defer *d, void *data) {
  ioa_connect_req *req = data;
  (void)d;
  ioa__guard_enter(&req->guard);
  pump(req);
  guard_leave(req);
}

void ioa_connect_cancel(ioa_connect_req *req) {
  if (!req || finished(req))
    return;
  if (req->fast) {
    ioa_io_stop(&req->io0);
    inflate(req, req->io0.fd_, IOA_SYSCALL_NONE, 0, 0);
  }
  ioa__guard_enter(&req->guard);
  ioa__cc_cancel(&req->cc, now_of(req));
  pump(req);
  guard_leave(req);
}

size_t ioa_connect_failures(const ioa_connect_req *req_c, const ioa_attempt_failure **out) {
  ioa_connect_req *req = (ioa_connect_req *)req_c;
  size_t n;
  *out = NULL;
  if (req->fast)
    return 0; /* nothing has failed yet */
  const ioa__cc_failure *recs = ioa__cc_failures(&req->cc, &n);
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
  for (size_t i = 0; i < n; i++)
    failure_view(req, &recs[i], &v[i], &addrs[2 * i], &addrs[2 * i + 1]);
  req->cc.fails->aux = view;
  *out = v;
  return n;
}

/* ------------------------------------------------------------ resolving */

/* Whether a resolved address joins the candidates: well formed, of a family
 * not already taken from an early answer (skip_mask), and, for a peer, of a
 * socket type the completion callback can take (on_stream: stream only). */
static int resolved_keep(const ioa_connect_req *req, const ioa_addr *a, int is_local,
                         unsigned skip_mask) {
  unsigned bit = a->family == AF_INET ? 1u : a->family == AF_INET6 ? 2u : 0u;
  if (addr_check(a) < 0 || (bit & skip_mask))
    return 0;
  return is_local || kind_fits(req->ok_kind, peer_socktype(a->socktype, req_res(req)->st_default));
}

/* Copy n compact entries to another stride. */
static void restride(unsigned char *dst, size_t dstride, const unsigned char *src,
                     size_t sstride, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    const entry *e = (const entry *)(const void *)(src + i * sstride);
    memcpy(dst + i * dstride, e, 8u + e->len);
  }
}

/* Make the lookups' block hold the addresses resolved_keep() takes from
 * addrs (appended to side is_local, at a stride that fits the longest) and
 * room for every candidate the sides can then make.  Nothing moves when
 * nothing is added and the candidates fit.  The core is pointed at the new
 * block (entries and candidates keep their indices).  0, -E2BIG, -ENOMEM. */
static int block_fit(ioa_connect_req *req, int is_local, const ioa_addr *addrs, size_t n,
                     unsigned skip_mask) {
  res_state *rs = req_res(req);
  ioa__cc *cc = &req->cc;
  /* The commonest answer, one peer address and nothing before it or on the
   * local side: straight into the inline block (what the general case
   * below would do, in a few instructions). */
  if (n == 1 && !is_local && !rs->blk && cc->nlocals == 0 && rs->own_peers &&
      resolved_keep(req, addrs, 0, skip_mask)) {
    size_t stride = align8(8 + addrs->addrlen);
    if (8 + stride <= INLINE_BLK) {
      entry_store(rs->inline_blk + 8, addrs, peer_socktype(addrs->socktype, rs->st_default));
      ioa__cc_set_cand_storage(cc, (ioa__cc_cand *)(void *)rs->inline_blk, 1);
      ioa__cc_set_peers(cc, rs->inline_blk + 8, (uint32_t)stride, 1);
      rs->blk = rs->inline_blk;
      rs->cand_cap = 1;
      return 0;
    }
  }
  unsigned add = 0;
  size_t maxlen = 0;
  uint64_t keep = 0; /* which of the first 64 are kept (the rest are checked again) */
  for (size_t i = 0; i < n; i++)
    if (resolved_keep(req, &addrs[i], is_local, skip_mask)) {
      add++;
      keep |= i < 64 ? 1ull << i : 0;
      if (addrs[i].addrlen > maxlen)
        maxlen = addrs[i].addrlen;
    }
  size_t np = cc->npeers + (is_local ? 0 : add), nl = cc->nlocals + (is_local ? add : 0);
  size_t need = ioa__cc_cands_needed(nl, np);
  if (np > IOA_CC_MAX_ADDRS || nl > IOA_CC_MAX_ADDRS || need > IOA_CC_MAX_ADDRS)
    return -E2BIG;
  if (add == 0 && need <= rs->cand_cap)
    return 0;
  size_t ps = cc->npeers ? cc->peer_stride : 0, ls = cc->nlocals ? cc->local_stride : 0;
  size_t *grow = is_local ? &ls : &ps;
  if (add && align8(8 + maxlen) > *grow)
    *grow = align8(8 + maxlen);
  size_t cap = need > rs->cand_cap ? need : rs->cand_cap;
  size_t o_peers = align8(cap * sizeof(ioa__cc_cand));
  size_t o_locals = o_peers + (rs->own_peers ? np * ps : 0);
  size_t size = o_locals + (rs->own_locals ? nl * ls : 0);
  unsigned char *nb = rs->blk == NULL && size <= INLINE_BLK ? rs->inline_blk
                                                           : ioa__malloc(size ? size : 1);
  if (!nb)
    return -ENOMEM;
  if (cc->ncands)
    memcpy(nb, cc->cands, cc->ncands * sizeof(ioa__cc_cand));
  if (rs->own_peers)
    restride(nb + o_peers, ps, cc->peers, cc->peer_stride, cc->npeers);
  if (rs->own_locals)
    restride(nb + o_locals, ls, cc->locals, cc->local_stride, cc->nlocals);
  unsigned char *side = is_local ? nb + o_locals : nb + o_peers;
  size_t stride = is_local ? ls : ps;
  unsigned k = is_local ? cc->nlocals : cc->npeers;
  for (size_t i = 0; i < n && add; i++) {
    const ioa_addr *a = &addrs[i];
    if (i < 64 ? !(keep >> i & 1) : !resolved_keep(req, a, is_local, skip_mask))
      continue;
    int st = is_local ? a->socktype : peer_socktype(a->socktype, rs->st_default);
    entry_store(side + (size_t)k++ * stride, a, st);
  }
  ioa__cc_set_cand_storage(cc, (ioa__cc_cand *)(void *)nb, (uint16_t)cap);
  if (rs->own_peers)
    ioa__cc_set_peers(cc, nb + o_peers, (uint32_t)ps, (uint16_t)np);
  if (rs->own_locals)
    ioa__cc_set_locals(cc, nb + o_locals, (uint32_t)ls, (uint16_t)nl);
  if (rs->blk != rs->inline_blk)
    ioa__free(rs->blk);
  rs->blk = nb;
  rs->cand_cap = (uint16_t)cap;
  return 0;
}

static void warn_new_peers(ioa_connect_req *req, unsigned from) {
  const hooks *h = req_hooks(req);
  /* The hook may cancel the request: nothing of it is reported after that. */
  for (unsigned i = from; i < req->cc.npeers && !finished(req); i++) {
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
  unsigned have = is_local ? req->cc.nlocals : req->cc.npeers;
  int r = block_fit(req, is_local, addrs, n, skip);
  if (r < 0)
    return r;
  if (!is_local)
    warn_new_peers(req, have);
  if (!finished(req)) /* cancelled from the warning hook: completed, so silent */
    tell_resolved(req, is_local, have, is_local ? req->cc.nlocals : req->cc.npeers);
  return 0;
}

static void peer_partial(ioa_resolve_req *rr, int family, const ioa_addr *addrs, size_t n,
                         void *data) {
  ioa_connect_req *req = data;
  (void)rr;
  if (finished(req))
    return;
  ioa__guard_enter(&req->guard);
  if (req->fast) /* answers in parts: the core's business */
    inflate(req, -1, IOA_SYSCALL_NONE, 0, 0);
  int r = take_addrs(req, 0, addrs, n, 0);
  if (r < 0) {
    ioa__cc_abort(&req->cc, now_of(req), r);
  } else if (!finished(req)) {
    req_res(req)->partial_families |= family == AF_INET ? 1u : family == AF_INET6 ? 2u : 0u;
    ioa__cc_peers_partial(&req->cc, now_of(req), family);
  }
  if (!finished(req))
    pump(req);
  guard_leave(req);
}

/* One side's answer (r 0 with addrs) or failure (r < 0) into the request.
 * The caller pumps, unless the request finished or is still fast. */
static void side_answer(ioa_connect_req *req, int is_local, int r, const ioa_addr *addrs,
                        size_t n) {
  if (r == 0)
    r = take_addrs(req, is_local, addrs, n, is_local ? 0 : req_res(req)->partial_families);
  if (req->fast && !finished(req)) {
    /* One candidate: its attempt, as connect_fast makes it; anything
     * else is the core's. */
    if (r == 0 && req->cc.npeers == 1) {
      req->fast = FAST_NAME_ATTEMPT;
      req->slot0.start_ns = now_of(req);
      fast_attempt(req, (const entry *)(const void *)ioa__cc_peer(&req->cc, 0), 0);
      return;
    }
    inflate(req, -1, IOA_SYSCALL_NONE, 0, 0);
  }
  if (!finished(req))
    ioa__cc_resolved(&req->cc, now_of(req), is_local, r);
}

static void side_done(ioa_connect_req *req, int is_local, const ioa_resolve_result *res) {
  res_state *rs = req_res(req);
  if (finished(req))
    return;
  ioa__guard_enter(&req->guard);
  if (res->status < 0 && !rs->message && res->message) {
    size_t len = strlen(res->message);
    rs->message = ioa__malloc(len + 1);
    if (rs->message)
      memcpy(rs->message, res->message, len + 1);
  }
  side_answer(req, is_local, res->status, res->addrs, res->naddrs);
  if (!req->fast && !finished(req))
    pump(req);
  guard_leave(req);
}

static void peer_done(ioa_resolve_req *rr, const ioa_resolve_result *res, void *data) {
  ioa_connect_req *req = data;
  (void)rr;
  req_res(req)->peer_req = NULL;
  side_done(req, 0, res);
}

static void local_done(ioa_resolve_req *rr, const ioa_resolve_result *res, void *data) {
  ioa_connect_req *req = data;
  (void)rr;
  req_res(req)->local_req = NULL;
  side_done(req, 1, res);
}

/* The core's family-order hook (ioa__cc_set_family_order): whether the
 * IPv4 head b goes before the IPv6 head a in getaddrinfo's order, as the
 * lookup's resolver's sorter ranks them.  The resolver outlives the call:
 * the core asks while the lookup is out or from its on_done. */
static int heads_order(ioa__cc *cc, const ioa__cc_meta *a, const ioa__cc_meta *b) {
  ioa_resolver *r = req_res(IOA__CONTAINER_OF(cc, ioa_connect_req, cc))->orderer;
  ioa_addr v[2];
  entry_load(&v[0], (const unsigned char *)a);
  entry_load(&v[1], (const unsigned char *)b);
  ioa__resolver_order(r, v, 2);
  return v[0].family != a->family;
}

static int start_lookup(ioa_connect_req *req, ioa_resolver *r, int is_local, const char *host,
                        const char *service, const ioa_resolve_hints *hints, unsigned timeout_ms) {
  /* A designated initialiser rather than the _init call: on every by-name
   * connect, its defaults are these. */
  ioa_resolve_params rp = {.struct_size = sizeof rp,
                           .host = host,
                           .service = service,
                           .host_len = IOA_NUL_TERMINATED,
                           .service_len = IOA_NUL_TERMINATED,
                           .hints = *hints,
                           .timeout_ms = timeout_ms,
                           .on_done = is_local ? local_done : peer_done};
  if (is_local)
    rp.hints.flags |= AI_PASSIVE; /* a NULL local host means "any address" */
  /* Families are taken early only from a resolver that delivers them as
   * they arrive.  Otherwise they come with the complete answer, sorted by
   * RFC 6724 and /etc/gai.conf: taking them as early answers would put IPv6
   * first against that order, so the whole answer is waited for instead. */
  int early = (ioa_resolver_capabilities(r) & IOA_RESOLVER_CAP_EARLY_FAMILIES) != 0;
  rp.on_partial = !is_local && req->cc.race && early ? peer_partial : NULL;
  if (rp.on_partial) {
    req_res(req)->orderer = r;
    ioa__cc_set_family_order(&req->cc, heads_order);
  }
  rp.data = req;
  return ioa_resolve(r, &rp, is_local ? &req_res(req)->local_req : &req_res(req)->peer_req);
}

/* ----------------------------------------------------------- ioa_connect */

/* What ioa_connect() learns before it allocates: validate() fills the
 * checked input, plan_layout() the single allocation's parts. */
typedef struct plan {
  const ioa_connect_params *p;
  const ioa_addr *peers, *locals;
  size_t npeers, nlocals; /* given (0 for a side that is looked up) */
  size_t nfit;            /* peers whose socket type the completion can take */
  int socktype;            /* the socktype hint as given (IOA_HINT_UNSET or 0..15) */
  int st_hint, proto_hint; /* getaddrinfo hints (0: any) */
  int st_default;          /* socket type of a socktype-0 peer (peer_socktype) */
  uint8_t ok_kind, resolving, res_local, race, warn_hint, need_hooks, has_opts, need_ext;
  conn_opts *opts; /* resolved here if has_opts (the caller's storage) */
  /* the allocation: head_size() | ext | res | cands | peers | locals */
  size_t ncands, pstride, lstride;
  size_t o_res, o_cands, o_peers, o_locals, size;
  struct at_hand *ans; /* the peer side's answer, asked for once (start_connect's) */
} plan;

/* What the resolver had at hand for the peer side (ioa__resolve_at_hand),
 * asked once per ioa_connect(). */
typedef struct at_hand {
  int asked, have;
  ioa_addr buf[2], *v; /* a name is rarely on more lines */
  size_t n;
} at_hand;

static int ask_at_hand(at_hand *a, ioa_resolver *r, const ioa_connect_params *p,
                       const ioa_resolve_hints *hints) {
  if (!a->asked) {
    a->asked = 1;
    a->have = ioa__resolve_at_hand(r, p->host, p->service, hints, a->buf, 2, &a->v, &a->n) == 1;
  }
  return a->have;
}

static void at_hand_free(at_hand *a) {
  if (a->have && a->v != a->buf)
    ioa__free(a->v);
  a->have = 0;
}

/* Exactly one success callback, the error callback, mode and delays. */
FAST_INLINE int check_callbacks(const ioa_connect_params *p, plan *pl) {
  if (p->on_connected)
    pl->ok_kind = p->on_stream || p->on_socket ? 0xff : OK_CONNECTED;
  else if (p->on_stream)
    pl->ok_kind = p->on_socket ? 0xff : OK_STREAM;
  else
    pl->ok_kind = p->on_socket ? OK_SOCKET : 0xff;
  if (pl->ok_kind == 0xff || !p->on_connect_error || (unsigned)p->mode > IOA_CONNECT_RACE ||
      (p->attempt_delay_ms && p->attempt_delay_ms - 10u > 1990u) ||
      p->resolution_delay_ms > 2000 || p->first_family_count > 255 ||
      (unsigned)p->learned_delay > IOA_LEARNED_DELAY_OFF)
    return IOA_EBADPARAM;
  return 0;
}

/* The family names ioa_addr(3) knows (AF_UNSPEC included, as a hint). */
#define HINT_FAMILIES ((1u << AF_UNSPEC) | (1u << AF_UNIX) | (1u << AF_INET) | (1u << AF_INET6))

/* The getaddrinfo hints, in the ranges ioa_addr(3) allows, and what they
 * mean for the completion: on_stream wants SOCK_STREAM (and is its default),
 * on_socket cannot take it. */
FAST_INLINE int check_hints(const ioa_connect_params *p, plan *pl) {
  int st = p->socktype;
  if (p->socktype_name) {
    st = ioa_socktype_from_name(p->socktype_name);
    if (st < 0)
      return st;
  }
  if (p->protocol != IOA_HINT_UNSET && (unsigned)p->protocol > ADDR_PROTOCOL_MAX)
    return IOA_EADDRPROTOCOL;
  if (p->family != AF_UNSPEC && ((unsigned)p->family >= 32 || !(HINT_FAMILIES >> p->family & 1)))
    return IOA_EADDRFAMILY;
  pl->socktype = st;
  pl->proto_hint = p->protocol == IOA_HINT_UNSET ? 0 : p->protocol;
  pl->st_default = SOCK_STREAM;
  if (st == IOA_HINT_UNSET || st == 0) { /* none in particular */
    pl->st_hint = pl->ok_kind == OK_STREAM ? SOCK_STREAM : 0;
    return 0;
  }
  if ((unsigned)st > ADDR_SOCKTYPE_MAX)
    return IOA_EADDRSOCKTYPE;
  if (pl->ok_kind == OK_STREAM ? st != SOCK_STREAM : pl->ok_kind == OK_SOCKET && st == SOCK_STREAM)
    return IOA_EBADPARAM;
  pl->st_hint = pl->st_default = st;
  return 0;
}

/* Options for the stream or socket handed over: checked and resolved now, so
 * the hand-over cannot refuse them; only for the matching callback. */
FAST_INLINE int check_options(const ioa_connect_params *p, plan *pl) {
  pl->has_opts = ((uintptr_t)p->stream_options | (uintptr_t)p->socket_options) != 0;
  if (!pl->has_opts)
    return 0;
  if (p->stream_options && (pl->ok_kind != OK_STREAM ||
                            ioa__stream_options_resolve(p->stream_options, &pl->opts->stream) < 0))
    return IOA_EBADPARAM;
  if (p->socket_options && (pl->ok_kind != OK_SOCKET ||
                            ioa__socket_options_resolve(p->socket_options, &pl->opts->socket) < 0))
    return IOA_EBADPARAM;
  return 0;
}

/* A peer is stored (and tried) only if the completion can take its socket. */
FAST_INLINE int peer_fits(const plan *pl, const ioa_addr *a) {
  return kind_fits(pl->ok_kind, peer_socktype(a->socktype, pl->st_default));
}

/* What getaddrinfo is asked for (check_hints worked it out). */
static ioa_resolve_hints lookup_hints(const plan *pl) {
  return (ioa_resolve_hints){pl->p->family, pl->st_hint, pl->proto_hint, pl->p->flags};
}

/* IO::Async's warning for a lookup without socktype or protocol hints;
 * on_stream gives the socktype itself. */
static int hint_missing(const ioa_connect_params *p, const plan *pl) {
  return pl->socktype == IOA_HINT_UNSET && p->protocol == IOA_HINT_UNSET &&
         pl->ok_kind != OK_STREAM;
}

/* Every address (peers and locals) as ioa_addr(3) checks it; the counts;
 * and at least one peer the completion callback can take. */
static int check_addrs(const ioa_connect_params *p, plan *pl) {
  pl->resolving = p->host || p->service;
  pl->res_local = p->local_host || p->local_service;
  pl->peers = p->addrs ? p->addrs : p->addr;
  pl->locals = p->local_addrs ? p->local_addrs : p->local_addr;
  /* IO::Async: addresses are ignored for a side that is looked up. */
  pl->npeers = pl->resolving ? 0 : p->addrs ? p->naddrs : p->addr != NULL;
  pl->nlocals = pl->res_local ? 0 : p->local_addrs ? p->nlocal : p->local_addr != NULL;
  if (!pl->resolving && pl->npeers == 0)
    return IOA_EBADPARAM;
  if (pl->npeers > IOA_CC_MAX_ADDRS || pl->nlocals > IOA_CC_MAX_ADDRS)
    return -E2BIG;
  pl->nfit = 0;
  for (size_t i = 0; i < pl->npeers; i++) {
    int r = addr_check(&pl->peers[i]);
    if (r < 0)
      return r;
    pl->nfit += peer_fits(pl, &pl->peers[i]);
  }
  for (size_t i = 0; i < pl->nlocals; i++) {
    int r = addr_check(&pl->locals[i]);
    if (r < 0)
      return r;
  }
  if (!pl->resolving && pl->nfit == 0)
    return IOA_EBADPARAM; /* e.g. on_stream with only datagram addresses */
  if (ioa__cc_cands_needed(pl->nlocals, pl->nfit) > IOA_CC_MAX_ADDRS)
    return -E2BIG;
  pl->race = p->mode == IOA_CONNECT_RACE || (p->mode == IOA_CONNECT_AUTO && pl->resolving);
  pl->need_hooks = p->on_fail || p->on_resolved || p->on_attempt || p->on_sockopt ||
                   p->on_resolve_error || p->on_warning || p->on_handshake;
  pl->warn_hint = hint_missing(p, pl);
  return 0;
}

/* Anything beyond one connect per candidate: a local side, timeouts,
 * per-attempt hooks, TLS (whose handshake follows the connect).  Nonzero
 * if any is set; one test for "none of these" (all commonly NULL or 0). */
static uintptr_t connect_extras(const ioa_connect_params *p) {
  return (uintptr_t)p->local_host | (uintptr_t)p->local_service | (uintptr_t)p->local_addrs |
         (uintptr_t)p->local_addr | p->attempt_timeout_ms | p->timeout_ms |
         (uintptr_t)(p->on_attempt != NULL) | (uintptr_t)(p->on_sockopt != NULL) |
         (uintptr_t)p->tls | (uintptr_t)p->tls_server_name |
         (uintptr_t)(p->on_handshake != NULL);
}

/* One numeric address and nothing but a connect to make (connect_fast).
 * Checked on p itself, before the general plan is worked out. */
static int fast_shaped(const ioa_connect_params *p) {
  uintptr_t extra = connect_extras(p) | (uintptr_t)p->host | (uintptr_t)p->service;
  return !extra && p->mode != IOA_CONNECT_RACE && (p->addrs ? p->naddrs == 1 : p->addr != NULL);
}

/* The params other than the addresses (both paths). */
FAST_INLINE int check_params(const ioa_connect_params *p, plan *pl, conn_opts *opts) {
  int r;
  pl->p = p;
  pl->opts = opts;
  if ((r = check_callbacks(p, pl)) < 0 || (r = check_hints(p, pl)) < 0 ||
      (r = check_options(p, pl)) < 0)
    return r;
  return 0;
}

/* TLS: a stream to hand over, and a name to verify each peer against (the
 * server name, the host, or each peer's own IP address). */
static int check_tls(const ioa_connect_params *p, const plan *pl) {
  if (!p->tls)
    return p->tls_server_name || p->on_handshake ? IOA_EBADPARAM : 0;
  if (!ioa_tls_available())
    return IOA_ENOTLS;
  if (pl->ok_kind != OK_STREAM || ioa__tls_check_name(p->tls_server_name) < 0)
    return IOA_EBADPARAM;
  if (p->tls_server_name || p->host || ioa__tls_insecure(p->tls))
    return 0;
  for (size_t i = 0; i < pl->npeers; i++)
    if (pl->peers[i].family != AF_INET && pl->peers[i].family != AF_INET6)
      return IOA_EBADPARAM; /* a unix peer has no address to verify */
  return pl->resolving ? IOA_EBADPARAM : 0; /* a service without a host */
}

/* Step 1: everything the caller gave, checked before any work begins. */
static int validate(const ioa_connect_params *p, plan *pl, conn_opts *opts) {
  int r = check_params(p, pl, opts);
  if (r < 0 || (r = check_addrs(p, pl)) < 0)
    return r;
  return check_tls(p, pl);
}

static size_t max_addrlen(const ioa_addr *v, size_t n) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (v[i].addrlen > m)
      m = v[i].addrlen;
  return m;
}

/* Step 2: the parts of the one allocation and their offsets. */
static void plan_layout(plan *pl) {
  const ioa_connect_params *p = pl->p;
  int lookups = pl->resolving || pl->res_local;
  pl->need_ext = pl->race || p->attempt_timeout_ms || p->timeout_ms || lookups || p->tls;
  /* With a lookup the candidates go into the answer's block (block_fit). */
  pl->ncands = lookups ? 0 : ioa__cc_cands_needed(pl->nlocals, pl->nfit);
  pl->pstride = align8(8 + max_addrlen(pl->peers, pl->npeers));
  pl->lstride = align8(8 + max_addrlen(pl->locals, pl->nlocals));
  size_t off = head_size(pl->need_hooks, pl->has_opts);
  off += pl->need_ext ? align8(sizeof(ext)) : 0;
  pl->o_res = off; /* where req_res() finds it */
  off += lookups ? align8(sizeof(res_state)) : 0;
  pl->o_cands = off;
  off += align8(pl->ncands * sizeof(ioa__cc_cand));
  pl->o_peers = off;
  off += pl->nfit * pl->pstride;
  pl->o_locals = off;
  off += pl->nlocals * pl->lstride;
  pl->size = off;
}

static void req_init_hooks(ioa_connect_req *req, const ioa_connect_params *p) {
  hooks *h = (hooks *)(void *)((unsigned char *)req + REQ_SIZE);
  h->on_fail = p->on_fail;
  h->on_resolved = p->on_resolved;
  h->on_attempt = p->on_attempt;
  h->on_sockopt = p->on_sockopt;
  h->on_resolve_error = p->on_resolve_error;
  h->on_warning = p->on_warning;
  h->on_handshake = p->on_handshake;
}

/* The fields every request has: the loop, the user data, the one completion
 * callback the caller chose, the optional callbacks and options. */
static inline void req_init_head(ioa_connect_req *req, ioa_loop *loop, const plan *pl, int has_hooks,
                                 size_t head) {
  const ioa_connect_params *p = pl->p;
  req->loop = loop;
  req->data = p->data;
  req->on_error = p->on_connect_error;
  req->ok_kind = pl->ok_kind;
  if (pl->ok_kind == OK_CONNECTED)
    req->on_ok.connected = p->on_connected;
  else if (pl->ok_kind == OK_STREAM)
    req->on_ok.stream = p->on_stream;
  else
    req->on_ok.socket = p->on_socket;
  req->guard = (ioa__guard){0, 0};
  req->has_hooks = has_hooks != 0;
  req->has_opts = pl->has_opts;
  req->head = (uint16_t)head;
  req->has_ext = 0;
  req->in_sync = 0;
  req->fast = 0;
  if (has_hooks)
    req_init_hooks(req, p);
  if (pl->has_opts)
    *req_opts(req) = *pl->opts;
}

/* Store the peers the completion can take (compact entries, in order) and
 * the locals.  Returns where the peers went. */
static unsigned char *store_addrs(unsigned char *mem, const plan *pl) {
  unsigned char *pe = mem + pl->o_peers;
  for (size_t i = 0, k = 0; i < pl->npeers; i++) {
    const ioa_addr *a = &pl->peers[i];
    if (peer_fits(pl, a))
      entry_store(pe + k++ * pl->pstride, a, peer_socktype(a->socktype, pl->st_default));
  }
  for (size_t i = 0; i < pl->nlocals; i++) {
    const ioa_addr *l = &pl->locals[i];
    entry_store(mem + pl->o_locals + i * pl->lstride, l, l->socktype ? l->socktype : pl->st_hint);
  }
  return pe;
}

/* The core and its storage: the first slot (the core asks for more when
 * it races), candidates, addresses. */
static void req_init_core(ioa_connect_req *req, ioa_loop *loop, const plan *pl) {
  unsigned char *mem = (unsigned char *)req;
  const ioa_connect_params *p = pl->p;
  ioa__cc *cc = &req->cc;
  ioa__cc_configure(cc, pl->race, p->attempt_delay_ms, p->resolution_delay_ms,
                    p->attempt_timeout_ms);
  ioa__cc_set_first_family_count(cc, p->first_family_count);
  ioa__cc_set_tls(cc, p->tls != NULL);
  ioa__cc_set_slots(cc, &req->slot0, 1);
  /* The watcher is initialised (fd -1) before anything can stop it. */
  ioa_io_init(loop, &req->io0, -1, io_cb, req);
  ioa__cc_set_peers(cc, store_addrs(mem, pl), (uint32_t)pl->pstride, (uint16_t)pl->nfit);
  ioa__cc_set_locals(cc, mem + pl->o_locals, (uint32_t)pl->lstride, (uint16_t)pl->nlocals);
  if (!pl->resolving && !pl->res_local)
    ioa__cc_set_cand_storage(cc, (ioa__cc_cand *)(void *)(mem + pl->o_cands),
                             (uint16_t)pl->ncands);
}

/* A TLS request's state: the config's reference, the name to verify, a
 * stream pointer per slot.  NULL: out of memory. */
static tls_state *tls_state_new(const plan *pl) {
  const ioa_connect_params *p = pl->p;
  const char *name = p->tls_server_name ? p->tls_server_name : p->host;
  tls_state *ts = ioa__calloc(1, sizeof *ts);
  if (!ts)
    return NULL;
  if (name) {
    size_t n = strlen(name) + 1;
    if (!(ts->name = ioa__malloc(n))) {
      ioa__free(ts);
      return NULL;
    }
    memcpy(ts->name, name, n);
  }
  ts->cfg = ioa_tls_config_ref(p->tls);
  return ts;
}

/* Step 3: allocate and initialise the request (NULL: out of memory). */
static ioa_connect_req *req_alloc(ioa_loop *loop, const plan *pl) {
  /* malloc, not calloc: glibc's calloc bypasses the thread cache, and only
   * the request head needs zeroing; the rest is written (the core marks its
   * slots free itself). */
  /* The block of the last request of this size, if the loop keeps one
   * (by-name requests without local addresses all have one size). */
  unsigned char *mem = ioa__loop_spare_take(loop, pl->size);
  if (!mem)
    mem = ioa__malloc(pl->size);
  if (!mem)
    return NULL;
  ioa_connect_req *req = (ioa_connect_req *)(void *)mem;
  /* Only the core needs zeroing: req_init_head, the defer, set_slots and
   * the watcher's init write the rest. */
  memset(&req->cc, 0, sizeof req->cc);
  req_init_head(req, loop, pl, pl->need_hooks, head_size(pl->need_hooks, pl->has_opts));
  req->has_ext = pl->need_ext ? EXT_TIMER : 0;
  ext *x = req_ext(req);
  if (x) {
    x->more = NULL;
    x->rtt = NULL;
    x->tls = NULL;
    /* Without memory for the loop's cache the request just learns nothing. */
    if (pl->race && pl->p->learned_delay == IOA_LEARNED_DELAY_ON &&
        !(x->rtt = pl->p->rtt_cache))
      (void)ioa_rtt_cache_default(loop, &x->rtt);
    ioa_timer_init(loop, &x->timer, timer_cb, req);
  }
  if (pl->p->tls && !(x->tls = tls_state_new(pl))) {
    ioa__free(mem);
    return NULL;
  }
  if (pl->resolving || pl->res_local) {
    req->has_ext |= EXT_RES;
    res_state *rs = req_res(req);
    assert((unsigned char *)rs == mem + pl->o_res);
    memset(rs, 0, offsetof(res_state, inline_blk)); /* the inline block is written before use */
    rs->st_default = (uint8_t)pl->st_default;
    rs->own_peers = pl->resolving;
    rs->own_locals = pl->res_local;
  }
  ioa_defer_init(loop, &req->defer, defer_cb, req);
  req_init_core(req, loop, pl);
  return req;
}

/* One side's lookup, unless an earlier step failed (e < 0); a failure to
 * start completes that side through the core.  Returns e or the new code. */
static int start_side(ioa_connect_req *req, ioa_resolver *r, int is_local, const char *host,
                      const char *service, const ioa_resolve_hints *hints, uint64_t now, int e) {
  /* Lookups get no timeout from the overall deadline (0: the resolver's
   * default applies): the core's timer ends the request as a connect
   * timeout and cancels them.  The same deadline given to the resolver
   * fired first and turned into a resolve error. */
  if (e == 0)
    e = start_lookup(req, r, is_local, host, service, hints, 0);
  if (e < 0 && req->fast)
    inflate(req, -1, IOA_SYSCALL_NONE, 0, 0);
  if (e < 0)
    ioa__cc_resolved(&req->cc, now, is_local, e);
  return e;
}

/* The peer side answered at once, when the resolver has the name at hand
 * (hosts table, cache): no lookup request, no deferral, no second loop
 * iteration -- the attempts start inside ioa_connect(), as with addresses.
 * Not with an on_resolved hook, which may not run inside ioa_connect().
 * Returns 1 if answered. */
static int take_at_hand(ioa_connect_req *req, ioa_resolver *r, const plan *pl,
                        const ioa_resolve_hints *hints) {
  if (req_hooks(req) && req_hooks(req)->on_resolved)
    return 0;
  at_hand *a = pl->ans;
  if (!ask_at_hand(a, r, pl->p, hints))
    return 0;
  side_answer(req, 0, 0, a->v, a->n); /* take_addrs copies them */
  at_hand_free(a);
  return 1;
}

/* Start the lookups (resolving mode). */
static void start_lookups(ioa_connect_req *req, const plan *pl, uint64_t now) {
  const ioa_connect_params *p = pl->p;
  ioa_resolver *r = p->resolver;
  int e = r ? 0 : ioa_resolver_default(req->loop, &r);
  ioa_resolve_hints hints = lookup_hints(pl);
  if (pl->res_local)
    e = start_side(req, r, 1, p->local_host, p->local_service, &hints, now, e);
  /* The candidates' storage comes with the answers (block_fit). */
  if (pl->resolving && (req->fast || req->cc.state == IOA_CC_RESOLVING) &&
      !(e == 0 && take_at_hand(req, r, pl, &hints)))
    (void)start_side(req, r, 0, p->host, p->service, &hints, now, e);
}

static void warn_no_hint(ioa_connect_req *req, const ioa_connect_params *p) {
  warn(req, p->on_warning, p->data,
       "ioa_connect: neither socktype nor protocol hint given for the getaddrinfo lookup; "
       "pass socktype 0 for no particular socktype");
}

/* A request by name that may take the fast path once its answer is in
 * (validated: TLS's name and hook come only with TLS). */
static int name_fast_shaped(const plan *pl) {
  return pl->resolving && !connect_extras(pl->p);
}

/* Step 4: warnings, the core's start, lookups and the first actions (no
 * callback: those are deferred until ioa_connect() has returned). */
static void req_start(ioa_connect_req *req, const plan *pl, int allow_fast) {
  const ioa_connect_params *p = pl->p;
  uint64_t now = ioa_loop_now(req->loop);
  if (p->timeout_ms) /* the deadline counts from now, not from the loop's iteration time */
    now = ioa_loop_update_time(req->loop);
  /* IO::Async's warning: a getaddrinfo lookup without socktype or protocol
   * hints (an explicit socktype 0 says "none in particular" and is quiet). */
  if ((pl->resolving || pl->res_local) && pl->warn_hint)
    warn_no_hint(req, p);
  for (unsigned i = 0; i < req->cc.npeers; i++) {
    const unsigned char *e = (const unsigned char *)ioa__cc_peer(&req->cc, i);
    if (sa_unspecified(ENTRY_SA(e)))
      warn_unspecified(req, p->on_warning, p->data, e);
  }
  if (allow_fast && name_fast_shaped(pl))
    req->fast = FAST_NAME_WAIT; /* the core starts if the answer needs it (inflate) */
  else
    ioa__cc_start(&req->cc, now, pl->resolving, pl->res_local, p->timeout_ms);
  ioa__guard_enter(&req->guard);
  req->in_sync = 1;
  if (pl->resolving || pl->res_local)
    start_lookups(req, pl, now);
  if (!req->fast)
    pump(req);
  req->in_sync = 0;
  guard_leave(req);
}

FAST_INLINE int fast_start(ioa_loop *loop, const plan *pl, const ioa_addr *a, int warn_hint,
                      ioa_connect_req **out);

/* See "fast path" above: one address, nothing but a connect to make.  The
 * same checks as validate(), for the one address. */
static int connect_fast(ioa_loop *loop, const ioa_connect_params *p, ioa_connect_req **out) {
  plan fast;
  conn_opts opts;
  const plan *pl = &fast;
  const ioa_addr *a = p->addrs ? p->addrs : p->addr;
  int r = check_params(p, &fast, &opts);
  if (r < 0 || (r = addr_check(a)) < 0)
    return r;
  if (!peer_fits(pl, a))
    return IOA_EBADPARAM;
  return fast_start(loop, pl, a, 0, out);
}

/* The fast request for address a (checked), after the lookup's warning if
 * warn_hint. */
FAST_INLINE int fast_start(ioa_loop *loop, const plan *pl, const ioa_addr *a, int warn_hint,
                      ioa_connect_req **out) {
  const ioa_connect_params *p = pl->p;
  /* Without a lookup, on_fail is the only optional callback that can run
   * after ioa_connect() returns (on_resolved and on_resolve_error never do,
   * and the unspecified-address warning is given below, from p): callers
   * that set all of them alike keep the small request. */
  int need_hooks = p->on_fail != NULL;
  size_t o_cands = head_size(need_hooks, pl->has_opts);
  size_t size = o_cands + 8 + align8(8 + a->addrlen);
  /* The block of the last fast request that succeeded, if it fits. */
  unsigned char *mem = ioa__loop_spare_take(loop, size);
  if (!mem)
    mem = ioa__malloc(size);
  if (!mem)
    return -ENOMEM;
  ioa_connect_req *req = (ioa_connect_req *)(void *)mem;
  req_init_head(req, loop, pl, need_hooks, o_cands);
  req->fast = FAST_ADDR;
  unsigned char *pe = mem + o_cands + 8;
  entry_store(pe, a, peer_socktype(a->socktype, pl->st_default));
  if (warn_hint)
    warn_no_hint(req, p);
  if (sa_unspecified(ENTRY_SA(pe)))
    warn_unspecified(req, p->on_warning, p->data, pe);
  req->slot0.start_ns = ioa_loop_now(loop);
  if (out)
    *out = req;
  fast_attempt(req, (const entry *)(const void *)pe, 1);
  return 0;
}

/* By name with nothing but a connect to make, and no on_resolved (which
 * may not run inside ioa_connect()). */
static int name_lean_shaped(const ioa_connect_params *p) {
  return p->host && !(connect_extras(p) | (uintptr_t)(p->on_resolved != NULL));
}

/* A lean request by name whose answer the resolver has at hand and is one
 * address: the numeric fast path for that address, as if the caller had
 * given it (one candidate: nothing to race, nothing to learn).  Returns 1
 * if it took the request (*rc the result); 0 leaves it, and any answer in
 * ans, to the general path, which reports bad input as always. */
static int connect_named_fast(ioa_loop *loop, const ioa_connect_params *p, at_hand *ans,
                              ioa_connect_req **out, int *rc) {
  plan fast;
  conn_opts opts;
  ioa_resolver *r = p->resolver;
  if (check_params(p, &fast, &opts) < 0 || (!r && ioa_resolver_default(loop, &r) < 0))
    return 0;
  ioa_resolve_hints hints = lookup_hints(&fast);
  /* resolved_keep()'s test, for the one address */
  if (!ask_at_hand(ans, r, p, &hints) || ans->n != 1 || addr_check(ans->v) < 0 ||
      !peer_fits(&fast, ans->v))
    return 0;
  *rc = fast_start(loop, &fast, ans->v, hint_missing(p, &fast), out);
  at_hand_free(ans);
  return 1;
}

/* ioa_connect() once the params are in this library's layout.  allow_fast
 * 0 sends a single address through the core as well (the differential
 * fuzzer compares both). */
static int start_connect(ioa_loop *loop, const ioa_connect_params *p, int allow_fast,
                         ioa_connect_req **out) {
  if (allow_fast && fast_shaped(p))
    return connect_fast(loop, p, out);
  at_hand ans = {0};
  int r;
  if (allow_fast && name_lean_shaped(p) && connect_named_fast(loop, p, &ans, out, &r))
    return r;
  plan pl;
  conn_opts opts;
  r = validate(p, &pl, &opts);
  ioa_connect_req *req = NULL;
  if (r == 0) {
    plan_layout(&pl);
    pl.ans = &ans;
    req = req_alloc(loop, &pl);
    r = req ? 0 : -ENOMEM;
  }
  if (req)
    req_start(req, &pl, allow_fast);
  at_hand_free(&ans); /* if req_start did not take it */
  if (req && out)
    *out = req;
  return r;
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
  return start_connect(loop, p, 1, out);
}
