/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the connector's sans-I/O core (src/connect_core.h)
 * driven by a fuzzed sequence of events.  The harness plays the kernel and
 * the clock: it hands out fds from a fake table (lowest free first, as the
 * kernel does, so a stale close of a reused number is caught), answers every
 * OPEN with a fuzzed socket/bind/connect outcome, delivers resolver answers
 * (whole or one family first), connect completions, clock ticks, cancels and
 * aborts, including cancels from inside on_fail and the socket-option hook.
 * Slot storage starts small and grows when the core asks (GROW), or is
 * refused; attempts report a fuzzed fresh start time and destination RTT
 * (ioa__cc_attempt_start).  With a configuration bit, the driver's
 * family-order hook (ioa__cc_set_family_order) answers with a fuzzed
 * ranking of the two families' heads.
 *
 * Input: 8 configuration bytes, the address metas, then events (see
 * decode_event).  No syscall is made; nothing touches a network.
 *
 * Invariants checked (abort on violation):
 *  - exactly one DONE, and nothing but CLOSE/TIMER after it;
 *  - with NO_CALLBACKS no FAIL/DONE, with NO_OPEN no OPEN (DEFER instead);
 *  - OPEN only for an untried, compatible candidate in a free slot; one
 *    attempt at a time when sequential; when racing, no new attempt before
 *    the attempt delay (given, learned from the RTT, or 250 ms) counted
 *    from the previous attempt's real start, unless one ended (RFC 8305);
 *  - at most max_inflight attempts in flight, handshakes included; GROW
 *    only below that limit; an abandoned attempt (IOA_EABANDONED) is a
 *    connect in flight, or a handshake when none is still connecting;
 *  - every candidate is eventually tried unless the request completed:
 *    racing, once the answers are in and with every attempt a black hole,
 *    running the clock out reaches them all;
 *  - FAIL and CLOSE only name fds that are open and belong to that slot;
 *    no FAIL after a cancel; a successful DONE hands over an open fd;
 *  - a cancel or abort before completion yields exactly that error;
 *  - after the final cancel every fd is closed and the failure list freed
 *    (LeakSanitizer);
 *  - no livelock: a bounded number of actions per drain;
 *  - the family-order hook is asked at most once, only when racing after
 *    a family came early, with the first IPv6 peer and the first IPv4 one;
 *    when the family it ranked first has a candidate, the first OPEN is of
 *    that family (RFC 8305 section 4);
 *  - TLS (a configuration bit): a connected attempt asks for a HANDSHAKE
 *    (never under NO_CALLBACKS) on its own open fd before it can win; the
 *    harness answers with fuzzed results (ok, network failure, fatal),
 *    also late or for slots that hold no handshake, which must be ignored;
 *    racing, a completed connect holds the next attempt for the attempt
 *    delay again (its handshake's turn) unless an attempt ends.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "connect_core.h"
#include "list.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MS 1000000ull
#define MAX_PEERS 12
#define MAX_LOCALS 3
#define MAX_SLOTS 4
#define NFD 64
#define FD_BASE 3

typedef struct ent {
  ioa__cc_meta meta;
  uint32_t label;
} ent;

typedef struct fz {
  const uint8_t *d;
  size_t n, i;

  ioa__cc cc;
  ioa__cc_slot slots[MAX_SLOTS];
  ioa__cc_cand cands[MAX_PEERS * MAX_LOCALS];
  ent peers[MAX_PEERS], locals[MAX_LOCALS];
  unsigned npeers, nlocals;  /* the final lists */
  unsigned peers_given;      /* how many peers the core has been shown */
  int need_peers, need_locals;
  int peers_resolved, locals_resolved;
  uint64_t now, timer;

  int fd_slot[NFD]; /* owning slot + 1, 0 = free */
  int connecting[MAX_SLOTS]; /* fd of a slot whose connect is in flight, or -1 */
  int handshaking[MAX_SLOTS]; /* TLS: fd of a slot whose handshake runs, or -1 */
  int tls;
  int race;
  unsigned given_delay_ms; /* 0: learned or the default */
  uint64_t attempt_delay_ns; /* the delay after the latest attempt */
  uint64_t last_open_ns;
  int black_holes; /* the end: every attempt stays in progress */
  int opens;
  int freed_since_open; /* an attempt ended (failed or timed out) since the last OPEN */
  unsigned ends;        /* attempts ended so far */
  uint64_t hold_ns;     /* TLS, racing: a connect completed; no OPEN before this */
  unsigned ends_at_hold; /* ... unless an attempt ended since */
  int ndone;
  int cancelled; /* cancel/abort reached the core before completion */
  int cancel_err;
  int finished_seen;
  int partials;    /* early families delivered (ioa__cc_peers_partial) */
  int order_first; /* the family the order hook ranked first; 0 = not asked */
} fz;

static unsigned byte(fz *f) { return f->i < f->n ? f->d[f->i++] : 0; }

static int fd_alloc(fz *f, unsigned slot) {
  for (int i = 0; i < NFD; i++)
    if (!f->fd_slot[i]) {
      f->fd_slot[i] = (int)slot + 1;
      return FD_BASE + i;
    }
  return -1; /* table full: the socket "fails" with EMFILE */
}

static int fd_is_open(const fz *f, int fd) {
  return fd >= FD_BASE && fd < FD_BASE + NFD && f->fd_slot[fd - FD_BASE] != 0;
}

static int fd_owner(const fz *f, int fd) { return f->fd_slot[fd - FD_BASE] - 1; }

static void fd_close(fz *f, int fd) {
  CHECK(fd_is_open(f, fd));
  f->fd_slot[fd - FD_BASE] = 0;
  for (int s = 0; s < MAX_SLOTS; s++) {
    if (f->connecting[s] == fd)
      f->connecting[s] = -1;
    if (f->handshaking[s] == fd)
      f->handshaking[s] = -1;
  }
}

static ioa__cc_meta decode_meta(unsigned b) {
  static const uint8_t fam[4] = {AF_INET, AF_INET6, AF_INET6, AF_UNIX};
  static const uint8_t st[4] = {0, SOCK_STREAM, SOCK_STREAM, SOCK_DGRAM};
  static const uint16_t pr[4] = {0, 0, IPPROTO_TCP, IPPROTO_UDP};
  ioa__cc_meta m = {fam[b & 3], st[(b >> 2) & 3], pr[(b >> 4) & 3]};
  return m;
}

static int compatible(const ioa__cc_meta *l, const ioa__cc_meta *p) {
  if (!l)
    return 1;
  if (l->family != p->family)
    return 0;
  if (l->socktype && p->socktype && l->socktype != p->socktype)
    return 0;
  if (l->protocol && p->protocol && l->protocol != p->protocol)
    return 0;
  return 1;
}

static void set_time(fz *f, uint64_t t) {
  if (t > f->now)
    f->now = t;
}

static void drain(fz *f, unsigned flags);

static void attempt_ended(fz *f) {
  f->freed_since_open = 1;
  f->ends++;
}

/* TLS, racing: a connect completed, its handshake gets the attempt delay
 * again before the next attempt (unless an attempt ends meanwhile). */
static void connect_succeeded(fz *f) {
  if (f->tls && f->race) {
    f->hold_ns = f->now + f->attempt_delay_ns;
    f->ends_at_hold = f->ends;
  }
}

static void do_cancel(fz *f, int err) {
  int before = f->cc.state != IOA_CC_FINISHED;
  if (err == -ECANCELED)
    ioa__cc_cancel(&f->cc, f->now);
  else
    ioa__cc_abort(&f->cc, f->now, err);
  if (before && !f->cancelled) {
    f->cancelled = 1;
    f->cancel_err = err;
  }
}

/* Answer an OPEN the way the driver would after socket/sockopt hook/bind/
 * connect, with a fuzzed outcome. */
static void answer_open(fz *f, const ioa__cc_action *a) {
  unsigned b = f->black_holes ? 6 : byte(f);
  unsigned slot = a->slot;
  /* The driver may tell the real start (a little later) and the RTT. */
  unsigned st = f->black_holes ? 0 : byte(f);
  if (st & 1) {
    static const uint32_t rtts[4] = {0, 30, 150000, 3000000};
    uint32_t rtt = rtts[(st >> 1) & 3];
    set_time(f, f->now + (uint64_t)((st >> 3) & 3) * MS);
    ioa__cc_attempt_start(&f->cc, f->now, slot, rtt);
    f->last_open_ns = f->now;
    unsigned ms = f->given_delay_ms ? f->given_delay_ms
                  : rtt            ? ioa__cc_learned_delay_ms(rtt)
                                   : IOA_CC_DEFAULT_DELAY_MS;
    f->attempt_delay_ns = (uint64_t)ms * MS;
    CHECK(ms >= 10 && ms <= 2000);
  }
  int fd = -1;
  ioa_syscall at = IOA_SYSCALL_NONE;
  int err = 0, connected = 0;
  switch (b & 7) {
  case 0:
    at = IOA_SYSCALL_SOCKET;
    err = -EMFILE;
    break;
  default:
    fd = fd_alloc(f, slot);
    if (fd < 0) {
      at = IOA_SYSCALL_SOCKET;
      err = -EMFILE;
      break;
    }
    switch (b & 7) {
    case 1: at = IOA_SYSCALL_BIND; err = -EADDRINUSE; break;
    case 2: at = IOA_SYSCALL_CONNECT; err = -ECONNREFUSED; break;
    case 3: connected = 1; break;
    case 4: at = IOA_SYSCALL_SOCKOPT; err = -EPERM; break;
    case 5: at = IOA_SYSCALL_CONNECT; err = -ENETUNREACH; break;
    default: break; /* in progress */
    }
  }
  /* The socket-option hook may cancel while the slot is still OPENING. */
  if ((b & 0x38) == 0x38)
    do_cancel(f, -ECANCELED);
  ioa__cc_opened(&f->cc, f->now, slot, fd, at, err, connected);
  if (connected)
    connect_succeeded(f);
  if (at != IOA_SYSCALL_NONE)
    attempt_ended(f);
  if (fd >= 0 && at == IOA_SYSCALL_NONE && !connected)
    f->connecting[slot] = fd;
}

/* The first peer of family in the core's list, or NULL. */
static const ioa__cc_meta *head_of(const fz *f, int family) {
  for (unsigned i = 0; i < f->cc.npeers; i++)
    if (ioa__cc_peer(&f->cc, i)->family == family)
      return ioa__cc_peer(&f->cc, i);
  return NULL;
}

/* The driver's family-order hook: a fuzzed ranking of the heads. */
static int order_hook(ioa__cc *cc, const ioa__cc_meta *a, const ioa__cc_meta *b) {
  fz *f = IOA__CONTAINER_OF(cc, fz, cc);
  CHECK(f->race && f->partials > 0 && f->order_first == 0);
  CHECK(a == head_of(f, AF_INET6) && b == head_of(f, AF_INET));
  f->order_first = byte(f) & 1 ? AF_INET : AF_INET6;
  return f->order_first == AF_INET;
}

/* RFC 8305 section 4: the first attempt is of the family the hook ranked
 * first, when that family has a candidate. */
static void check_first_family(const fz *f, const ioa__cc_action *a) {
  if (f->opens != 0 || f->order_first == 0)
    return;
  for (unsigned i = 0; i < f->cc.ncands; i++)
    if (ioa__cc_peer(&f->cc, f->cc.cands[i].peer)->family == f->order_first) {
      CHECK(ioa__cc_peer(&f->cc, f->cc.cands[a->cand].peer)->family == f->order_first);
      return;
    }
}

static void check_open(fz *f, const ioa__cc_action *a, unsigned flags) {
  CHECK(!(flags & IOA_CC_NO_OPEN));
  check_first_family(f, a);
  int in_flight = 0; /* a handshake is part of its attempt */
  for (int s = 0; s < MAX_SLOTS; s++)
    in_flight += f->connecting[s] >= 0 || f->handshaking[s] >= 0;
  if (f->hold_ns && f->ends == f->ends_at_hold)
    CHECK(f->now >= f->hold_ns);
  if (!f->race) {
    /* Sequential: one attempt at a time. */
    CHECK(in_flight == 0);
  } else if (f->opens && in_flight && !f->freed_since_open) {
    /* Happy Eyeballs: while an attempt is in flight and none has ended,
     * the next one waits for the connection attempt delay. */
    CHECK(f->now >= f->last_open_ns + f->attempt_delay_ns);
  }
  f->opens++;
  f->last_open_ns = f->now;
  f->attempt_delay_ns = (uint64_t)(f->given_delay_ms ? f->given_delay_ms : 250) * MS;
  f->freed_since_open = 0;
  CHECK(in_flight < f->cc.max_inflight); /* at most max_inflight, this one included */
  CHECK(f->ndone == 0 && !f->cancelled);
  CHECK(a->slot < MAX_SLOTS);
  CHECK(a->cand < f->cc.ncands);
  const ioa__cc_cand *c = &f->cc.cands[a->cand];
  CHECK(c->local & IOA_CC_USED); /* marked tried by this OPEN */
  CHECK(c->peer < f->cc.npeers);
  unsigned li = ioa__cc_cand_local(c);
  const ioa__cc_meta *l = li == IOA_CC_NONE ? NULL : ioa__cc_local(&f->cc, li);
  CHECK(li == IOA_CC_NONE || li < f->cc.nlocals);
  CHECK(compatible(l, ioa__cc_peer(&f->cc, c->peer)));
  /* The slot must be free: no fd of it still open, no connect in flight. */
  CHECK(f->connecting[a->slot] < 0);
  for (int i = 0; i < NFD; i++)
    CHECK(f->fd_slot[i] != (int)a->slot + 1);
}

static void drain(fz *f, unsigned flags) {
  for (int guard = 0;; guard++) {
    CHECK(guard < 10000); /* livelock */
    ioa__cc_action a;
    memset(&a, 0x5a, sizeof a);
    ioa__cc_action_kind k = ioa__cc_next(&f->cc, flags, &a);
    CHECK(k == a.kind);
    switch (k) {
    case IOA_CC_ACT_NONE:
      return;
    case IOA_CC_ACT_DEFER:
      CHECK(flags != 0);
      /* The driver comes back from a safe place: the deferred callback. */
      flags = 0;
      break;
    case IOA_CC_ACT_OPEN:
      check_open(f, &a, flags);
      answer_open(f, &a);
      break;
    case IOA_CC_ACT_FAIL: {
      CHECK(!(flags & IOA_CC_NO_CALLBACKS));
      attempt_ended(f);
      CHECK(f->ndone == 0 && !f->cancelled);
      size_t n;
      ioa__cc_failures(&f->cc, &n);
      CHECK(a.failure < n);
      CHECK(a.err < 0);
      CHECK(a.syscall >= IOA_SYSCALL_SOCKET && a.syscall <= IOA_SYSCALL_TLS);
      CHECK(f->tls || a.syscall != IOA_SYSCALL_TLS);
      if (a.err == IOA_EABANDONED) {
        /* Made room: a connect in flight, or with TLS, when no slot was
         * still connecting, a handshake.  (Reported late under
         * NO_CALLBACKS, a stale completion may have come meanwhile.) */
        CHECK(f->race && a.fd >= 0);
        CHECK(a.syscall == IOA_SYSCALL_CONNECT || a.syscall == IOA_SYSCALL_TLS);
        if (a.syscall == IOA_SYSCALL_CONNECT) {
          CHECK(f->connecting[a.slot] == a.fd || f->connecting[a.slot] < 0);
          CHECK(f->handshaking[a.slot] < 0);
        } else {
          CHECK(f->handshaking[a.slot] == a.fd || f->handshaking[a.slot] < 0);
          for (int s = 0; s < MAX_SLOTS; s++)
            CHECK(f->connecting[s] < 0);
        }
        f->connecting[a.slot] = f->handshaking[a.slot] = -1;
      }
      if (a.fd >= 0) {
        CHECK(fd_is_open(f, a.fd));
        CHECK(fd_owner(f, a.fd) == a.slot);
      } else {
        CHECK(a.syscall == IOA_SYSCALL_SOCKET);
      }
      /* on_fail may cancel the request. */
      if ((byte(f) & 0xf) == 0xf)
        do_cancel(f, -ECANCELED);
      break;
    }
    case IOA_CC_ACT_CLOSE:
      attempt_ended(f);
      CHECK(a.fd >= 0);
      CHECK(fd_is_open(f, a.fd));
      CHECK(fd_owner(f, a.fd) == a.slot);
      fd_close(f, a.fd);
      break;
    case IOA_CC_ACT_TIMER:
      f->timer = a.at;
      CHECK(a.at == 0 || f->ndone == 0);
      break;
    case IOA_CC_ACT_HANDSHAKE:
      CHECK(f->tls && !(flags & IOA_CC_NO_CALLBACKS));
      CHECK(f->ndone == 0 && a.slot < MAX_SLOTS);
      CHECK(fd_is_open(f, a.fd) && fd_owner(f, a.fd) == a.slot);
      CHECK(f->handshaking[a.slot] < 0);
      f->connecting[a.slot] = -1; /* connected (perhaps by a "bogus" completion) */
      f->handshaking[a.slot] = a.fd;
      break;
    case IOA_CC_ACT_GROW: {
      CHECK(a.slot > f->cc.nslots && a.slot <= f->cc.max_inflight && a.slot <= MAX_SLOTS);
      CHECK(f->race);
      if ((byte(f) & 7) == 7) {
        ioa__cc_grow_failed(&f->cc);
        CHECK(f->cc.max_inflight == f->cc.nslots);
      } else {
        ioa__cc_grow_slots(&f->cc, f->slots, a.slot);
      }
      break;
    }
    case IOA_CC_ACT_DONE:
      CHECK(!(flags & IOA_CC_NO_CALLBACKS));
      CHECK(f->ndone == 0);
      f->ndone++;
      if (f->cancelled) {
        CHECK(a.outcome == IOA_CC_CONNECT_ERROR);
        CHECK(a.err == f->cancel_err);
      }
      if (a.outcome == IOA_CC_OK) {
        CHECK(a.fd >= 0 && fd_is_open(f, a.fd));
        CHECK(fd_owner(f, a.fd) == a.slot);
        fd_close(f, a.fd); /* the user's now; it closes it */
      } else {
        CHECK(a.err < 0);
        CHECK(a.outcome == IOA_CC_CONNECT_ERROR || a.outcome == IOA_CC_RESOLVE_ERROR);
      }
      break;
    default:
      CHECK(0);
    }
  }
}

/* Reveal more peers: the first k of the final list (indices are stable). */
static void show_peers(fz *f, unsigned k) {
  if (k > f->npeers)
    k = f->npeers;
  if (k > f->peers_given)
    f->peers_given = k;
  ioa__cc_set_peers(&f->cc, f->peers, sizeof(ent), (uint16_t)f->peers_given);
}

static void decode_event(fz *f) {
  unsigned op = byte(f);
  unsigned arg = byte(f);
  unsigned flags = (op >> 4) & 3; /* NO_CALLBACKS / NO_OPEN on the drain */
  switch (op & 15) {
  case 0:
  case 1: /* time passes */
    set_time(f, f->now + (uint64_t)arg * 4 * MS);
    ioa__cc_tick(&f->cc, f->now);
    break;
  case 2:
  case 3: /* the armed timer fires */
    if (f->timer) {
      set_time(f, f->timer);
      ioa__cc_tick(&f->cc, f->now);
    }
    break;
  case 4: /* one family's peers first (c-ares) */
    if (f->need_peers && !f->peers_resolved && f->npeers) {
      unsigned k = f->peers_given + 1 + arg % 3;
      show_peers(f, k);
      f->partials++;
      ioa__cc_peers_partial(&f->cc, f->now, f->peers[f->peers_given - 1].meta.family);
    }
    break;
  case 5: /* peers resolved */
    if (f->need_peers && !f->peers_resolved) {
      f->peers_resolved = 1;
      show_peers(f, f->npeers);
      ioa__cc_resolved(&f->cc, f->now, 0, (arg & 7) == 7 ? IOA_EAI_NONAME : 0);
    }
    break;
  case 6: /* locals resolved */
    if (f->need_locals && !f->locals_resolved) {
      f->locals_resolved = 1;
      ioa__cc_set_locals(&f->cc, f->locals, sizeof(ent), (uint16_t)f->nlocals);
      ioa__cc_resolved(&f->cc, f->now, 1, (arg & 7) == 7 ? IOA_EAI_AGAIN : 0);
    }
    break;
  case 7:
  case 8:
  case 9: { /* a connect in flight finishes */
    unsigned s = arg % MAX_SLOTS;
    if (f->connecting[s] >= 0) {
      static const int errs[4] = {0, -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH};
      int e = errs[(arg >> 2) & 3];
      f->connecting[s] = -1;
      if (e)
        attempt_ended(f);
      ioa__cc_connected(&f->cc, f->now, s, e);
      if (!e)
        connect_succeeded(f);
    }
    break;
  }
  case 10: { /* a stale or bogus completion: ignored unless the slot connects */
    unsigned s = arg % (MAX_SLOTS + 2);
    int e = (arg & 1) ? -ECONNRESET : 0;
    int live = s < MAX_SLOTS && f->connecting[s] >= 0;
    if (live && e)
      attempt_ended(f);
    ioa__cc_connected(&f->cc, f->now, s, e);
    if (live && !e)
      connect_succeeded(f);
    break;
  }
  case 11:
    do_cancel(f, -ECANCELED);
    break;
  case 12:
    do_cancel(f, -ENOMEM);
    break;
  case 13: { /* TLS: a handshake ends: ok, network failure or fatal */
    unsigned s = arg % MAX_SLOTS, how = (arg >> 2) % 3;
    if (f->handshaking[s] >= 0) {
      f->handshaking[s] = -1;
      if (how != IOA_CC_HS_OK)
        attempt_ended(f);
      ioa__cc_handshaked(&f->cc, f->now, s, (int)how,
                         how == IOA_CC_HS_OK      ? 0
                         : how == IOA_CC_HS_RETRY ? -ECONNRESET
                                                  : IOA_ETLSVERIFY);
    }
    break;
  }
  case 14: { /* a stale or bogus handshake result: must be ignored */
    unsigned s = arg % (MAX_SLOTS + 2);
    if (s >= MAX_SLOTS || f->handshaking[s] < 0)
      ioa__cc_handshaked(&f->cc, f->now, s, (int)((arg >> 3) % 3), -EPIPE);
    break;
  }
  default: /* just pull */
    break;
  }
  drain(f, flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fz f;
  memset(&f, 0, sizeof f);
  f.d = data;
  f.n = size;
  for (int s = 0; s < MAX_SLOTS; s++)
    f.connecting[s] = f.handshaking[s] = -1;

  unsigned c0 = byte(&f), c1 = byte(&f), c2 = byte(&f), c3 = byte(&f);
  unsigned c4 = byte(&f), c5 = byte(&f), c6 = byte(&f), c7 = byte(&f);
  int race = c0 & 1;
  f.race = race;
  f.need_peers = (c0 >> 1) & 1;
  f.need_locals = (c0 >> 2) & 1;
  unsigned nslots = 1 + ((c0 >> 3) & 3);
  unsigned max_inflight = nslots + ((c0 >> 5) & 3);
  if (max_inflight > MAX_SLOTS)
    max_inflight = MAX_SLOTS;
  unsigned attempt_delay = (c1 & 3) ? 10u + (c1 >> 2) * 8u : 0;          /* 0 = default */
  unsigned resolution_delay = (c2 & 3) ? 1u + (c2 >> 2) : 0;             /* 0 = default */
  unsigned attempt_timeout = (c3 & 3) ? 1u + (c3 >> 2) * 10u : 0;         /* 0 = none */
  unsigned overall_timeout = (c4 & 3) ? 1u + (c4 >> 2) * 20u : 0;         /* 0 = none */
  f.npeers = c5 % (MAX_PEERS + 1);
  f.nlocals = c6 % (MAX_LOCALS + 1);
  f.now = 1000 * MS + (uint64_t)c7 * MS;
  f.given_delay_ms = attempt_delay;
  f.attempt_delay_ns = (attempt_delay ? attempt_delay : 250) * MS;

  for (unsigned i = 0; i < f.npeers; i++) {
    f.peers[i].meta = decode_meta(byte(&f));
    f.peers[i].label = 'P' << 8 | i;
  }
  for (unsigned i = 0; i < f.nlocals; i++) {
    f.locals[i].meta = decode_meta(byte(&f));
    f.locals[i].label = 'L' << 8 | i;
  }

  ioa__cc_init(&f.cc, race, attempt_delay, resolution_delay, attempt_timeout);
  f.tls = (c0 >> 7) & 1;
  ioa__cc_set_tls(&f.cc, f.tls);
  ioa__cc_set_slots(&f.cc, f.slots, (uint16_t)nslots);
  ioa__cc_set_max_inflight(&f.cc, max_inflight);
  ioa__cc_set_first_family_count(&f.cc, (c6 >> 4) & 3);
  if (c6 & 0x40)
    ioa__cc_set_family_order(&f.cc, order_hook);
  ioa__cc_set_cand_storage(&f.cc, f.cands, (uint16_t)(sizeof f.cands / sizeof f.cands[0]));
  if (f.need_peers)
    ioa__cc_set_peers(&f.cc, f.peers, sizeof(ent), 0);
  else
    show_peers(&f, f.npeers);
  /* No locals at all is "no local address"; resolved locals may be zero. */
  if (!f.need_locals)
    ioa__cc_set_locals(&f.cc, f.locals, sizeof(ent), (uint16_t)f.nlocals);
  else
    ioa__cc_set_locals(&f.cc, f.locals, sizeof(ent), 0);
  ioa__cc_start(&f.cc, f.now, f.need_peers, f.need_locals, overall_timeout);
  /* Inside ioa_connect: no callbacks, no opens. */
  drain(&f, IOA_CC_NO_CALLBACKS | IOA_CC_NO_OPEN);

  for (int ev = 0; ev < 2000 && f.i < f.n; ev++)
    decode_event(&f);

  /* Every candidate is eventually tried unless the request completed:
   * racing, with the answers in (whole) and every attempt a black hole,
   * the clock run out must reach them all. */
  if (race && f.ndone == 0 && !f.cancelled) {
    f.black_holes = 1;
    if (f.need_locals && !f.locals_resolved) {
      f.locals_resolved = 1;
      ioa__cc_set_locals(&f.cc, f.locals, sizeof(ent), (uint16_t)f.nlocals);
      ioa__cc_resolved(&f.cc, f.now, 1, 0);
    }
    if (f.need_peers && !f.peers_resolved) {
      f.peers_resolved = 1;
      show_peers(&f, f.npeers);
      ioa__cc_resolved(&f.cc, f.now, 0, 0);
    }
    drain(&f, 0);
    for (int i = 0; i < 2000 && f.ndone == 0 && f.cc.ntried < f.cc.ncands; i++) {
      CHECK(f.timer != 0); /* the next attempt must be scheduled */
      set_time(&f, f.timer > f.now ? f.timer : f.now + MS);
      ioa__cc_tick(&f.cc, f.now);
      drain(&f, 0);
    }
    CHECK(f.ndone == 1 || f.cc.ntried == f.cc.ncands);
  }

  /* The end: cancel whatever is left and settle. */
  do_cancel(&f, -ECANCELED);
  drain(&f, 0);
  CHECK(f.ndone == 1);
  for (int i = 0; i < NFD; i++)
    CHECK(f.fd_slot[i] == 0); /* every fd closed exactly once */
  /* Nothing happens after completion, whatever arrives. */
  ioa__cc_tick(&f.cc, f.now + 10000 * MS);
  ioa__cc_cancel(&f.cc, f.now + 10000 * MS);
  for (int s = 0; s < MAX_SLOTS; s++) {
    ioa__cc_connected(&f.cc, f.now + 10000 * MS, (unsigned)s, 0);
    ioa__cc_handshaked(&f.cc, f.now + 10000 * MS, (unsigned)s, IOA_CC_HS_OK, 0);
  }
  drain(&f, 0);
  CHECK(f.ndone == 1);
  ioa__cc_dispose(&f.cc);
  return 0;
}
