/* SPDX-License-Identifier: MIT */
/* The connector's decision logic (see connect_core.h): no syscalls, no
 * clock.  Every event updates the state and settles it (timeouts, the start
 * of connecting, completion); ioa__cc_next() derives the next action from the
 * state, so nothing is queued and re-entrant events cannot be lost. */
#include "connect_core.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"

#define MS(x) ((uint64_t)(x) * 1000000u)

/* An attempt in flight: it counts in nactive and its deadline runs.  A TLS
 * handshake is part of the attempt. */
static int slot_in_flight(uint8_t st) {
  return st == IOA_CC_SLOT_CONNECTING || st == IOA_CC_SLOT_HS_START ||
         st == IOA_CC_SLOT_HANDSHAKING;
}

#ifndef NDEBUG
static int slot_holds_fd(uint8_t st) {
  return st == IOA_CC_SLOT_CONNECTING || st == IOA_CC_SLOT_FAILED || st == IOA_CC_SLOT_CLOSING ||
         st == IOA_CC_SLOT_WON || st == IOA_CC_SLOT_HS_START || st == IOA_CC_SLOT_HANDSHAKING;
}

/* What every event leaves true (checked in debug builds, so by the tests and
 * the fuzzers): slot states agree with the counters, every slot past OPENING
 * owns a distinct open fd, a winner exists only for a successful completion. */
static void check_invariants(const ioa__cc *cc) {
  unsigned active = 0, closing = 0, won = 0, hs_start = 0, handshaking = 0;
  for (unsigned i = 0; i < cc->nslots; i++) {
    const ioa__cc_slot *s = &cc->slots[i];
    assert(s->state <= IOA_CC_SLOT_HANDSHAKING);
    assert(s->state != IOA_CC_SLOT_OPENING || s->fd == -1);
    assert(!slot_holds_fd(s->state) || s->fd >= 0);
    active += s->state == IOA_CC_SLOT_OPENING || slot_in_flight(s->state);
    closing += s->state == IOA_CC_SLOT_CLOSING;
    hs_start += s->state == IOA_CC_SLOT_HS_START;
    handshaking += s->state == IOA_CC_SLOT_HANDSHAKING;
    assert(cc->tls || (s->state != IOA_CC_SLOT_HS_START && s->state != IOA_CC_SLOT_HANDSHAKING));
    won += s->state == IOA_CC_SLOT_WON;
    assert(s->state != IOA_CC_SLOT_WON || i == cc->winner);
    for (unsigned j = 0; slot_holds_fd(s->state) && j < i; j++)
      assert(!slot_holds_fd(cc->slots[j].state) || cc->slots[j].fd != s->fd);
  }
  assert(closing == cc->nclosing);
  assert(hs_start == cc->nhs_start);
  /* Handshakes are attempts in flight: only while connecting (a win, a
   * fatal failure, the deadline and a cancel end them all). */
  assert(cc->state == IOA_CC_CONNECTING || hs_start + handshaking == 0);
  assert(won <= 1);
  assert(active <= cc->max_inflight);
  assert(cc->ntried <= cc->ncands && cc->ncands <= cc->cand_cap);
  if (cc->state == IOA_CC_RESOLVING || cc->state == IOA_CC_CONNECTING)
    assert(active == cc->nactive && won == 0);
  else if (cc->state != IOA_CC_IDLE)
    assert(cc->nactive == 0);
  if (cc->state == IOA_CC_DONE)
    assert(won == (cc->outcome == IOA_CC_OK));
  assert(!cc->fails || (cc->fails->reported <= cc->fails->n && cc->fails->n <= cc->fails->cap));
}
#define CHECK_INVARIANTS(cc) check_invariants(cc)
#else
#define CHECK_INVARIANTS(cc) ((void)0)
#endif

void ioa__cc_configure(ioa__cc *cc, int race, unsigned attempt_delay_ms,
                      unsigned resolution_delay_ms, unsigned attempt_timeout_ms) {
  cc->race = race != 0;
  /* Callers check the ranges (10..2000 and up to 2000 ms). */
  cc->attempt_delay_ms = (uint16_t)(attempt_delay_ms > 0xffff ? 0xffff : attempt_delay_ms);
  cc->resolution_delay_ms =
      (uint16_t)(resolution_delay_ms ? (resolution_delay_ms > 0xffff ? 0xffff : resolution_delay_ms)
                                     : 50);
  cc->attempt_timeout_ms = attempt_timeout_ms;
  cc->first_family_count = 1;
  cc->max_inflight = IOA_CC_MAX_INFLIGHT;
  cc->state = IOA_CC_IDLE;
}

void ioa__cc_init(ioa__cc *cc, int race, unsigned attempt_delay_ms, unsigned resolution_delay_ms,
                 unsigned attempt_timeout_ms) {
  memset(cc, 0, sizeof *cc);
  ioa__cc_configure(cc, race, attempt_delay_ms, resolution_delay_ms, attempt_timeout_ms);
}

size_t ioa__cc_cands_needed(size_t nlocals, size_t npeers) {
  return (nlocals ? nlocals : 1) * npeers;
}

int ioa__cc_syscall_rank(ioa_syscall s) {
  switch (s) {
  case IOA_SYSCALL_TLS: return 5;
  case IOA_SYSCALL_CONNECT: return 4;
  case IOA_SYSCALL_BIND: return 3;
  case IOA_SYSCALL_SOCKOPT: return 2;
  case IOA_SYSCALL_SOCKET: return 1;
  default: return 0;
  }
}

void ioa__cc_dispose(ioa__cc *cc) {
  if (cc->fails)
    ioa__free(cc->fails->aux);
  ioa__free(cc->fails);
  cc->fails = NULL;
}


/* ------------------------------------------------------------ internals */

/* A local address fits a peer when families agree and socktype/protocol
 * agree where both name one (0 is "any"). */
static int pair_ok(const ioa__cc_meta *l, const ioa__cc_meta *p) {
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

/* Cross the peers not yet crossed with every local, local-major. */
static void add_cands(ioa__cc *cc) {
  if (cc->nlocals == 0) { /* the common case: every peer is a candidate */
    for (unsigned p = cc->cand_peers; p < cc->npeers && cc->ncands < cc->cand_cap; p++) {
      cc->cands[cc->ncands].peer = (uint16_t)p;
      cc->cands[cc->ncands].local = IOA_CC_NONE;
      cc->ncands++;
    }
    cc->cand_peers = cc->npeers;
    return;
  }
  unsigned nl = cc->nlocals ? cc->nlocals : 1;
  for (unsigned l = 0; l < nl; l++) {
    unsigned li = cc->nlocals ? l : IOA_CC_NONE;
    for (unsigned p = cc->cand_peers; p < cc->npeers; p++) {
      if (!pair_ok(ioa__cc_local(cc, li), ioa__cc_peer(cc, p)))
        continue;
      if (cc->ncands >= cc->cand_cap)
        return; /* the driver sized storage by ioa__cc_cands_needed: cannot happen */
      cc->cands[cc->ncands].peer = (uint16_t)p;
      cc->cands[cc->ncands].local = (uint16_t)li;
      cc->ncands++;
    }
  }
  cc->cand_peers = cc->npeers;
}

static int other_family(int f) {
  if (f == AF_INET6)
    return AF_INET;
  if (f == AF_INET)
    return AF_INET6;
  return 0;
}

static unsigned family_class(unsigned family) {
  return family == AF_INET ? 0 : family == AF_INET6 ? 1 : 2;
}

/* The first untried candidate of class c (ncands if none yet).  Candidates
 * are tried in list order within their class, so the cursor only moves
 * forward: over a whole request each cursor crosses the list once. */
static unsigned class_next(ioa__cc *cc, unsigned c) {
  unsigned i = cc->cursor[c];
  while (i < cc->ncands && ((cc->cands[i].local & IOA_CC_USED) ||
                            family_class(ioa__cc_peer(cc, cc->cands[i].peer)->family) != c))
    i++;
  cc->cursor[c] = (uint16_t)i;
  return i;
}

/* Next candidate: list order (sequential), or the first untried one of the
 * family wanted (Happy Eyeballs: the first family for the First Address
 * Family Count attempts, then the family not tried last), else the first
 * untried of any. */
static int pick_cand(ioa__cc *cc) {
  int want = 0;
  if (cc->race)
    want = cc->ntried < cc->first_family_count ? cc->first_family : other_family(cc->last_family);
  if (want) {
    unsigned i = class_next(cc, family_class((unsigned)want));
    if (i < cc->ncands)
      return (int)i;
  }
  unsigned best = cc->ncands;
  for (unsigned c = 0; c < IOA_CC_CLASSES; c++) {
    unsigned i = class_next(cc, c);
    if (i < best)
      best = i;
  }
  if (best >= cc->ncands)
    return -1;
  /* The first family is the first attempt's: one without candidates (its
   * peers pair with no local address, or came in a batch of their own
   * that paired with none) cannot go first. */
  if (cc->ntried == 0)
    cc->first_family = ioa__cc_peer(cc, cc->cands[best].peer)->family;
  return (int)best;
}

static int free_slot(const ioa__cc *cc) {
  for (unsigned i = 0; i < cc->nslots; i++)
    if (cc->slots[i].state == IOA_CC_SLOT_FREE)
      return (int)i;
  return -1;
}

/* Every slot state change goes through here so the CLOSING count stays
 * exact: ioa__cc_next() then skips the slot scan when nothing is closing. */
static void slot_set(ioa__cc *cc, ioa__cc_slot *s, uint8_t st) {
  cc->nclosing += (st == IOA_CC_SLOT_CLOSING) - (s->state == IOA_CC_SLOT_CLOSING);
  cc->nhs_start += (st == IOA_CC_SLOT_HS_START) - (s->state == IOA_CC_SLOT_HS_START);
  s->state = st;
}

static void finish(ioa__cc *cc, ioa__cc_outcome outcome, ioa_syscall sys, int err) {
  cc->state = IOA_CC_DONE;
  cc->outcome = (uint8_t)outcome;
  cc->done_syscall = (uint8_t)sys;
  cc->done_err = err;
}

static void record_failure(ioa__cc *cc, unsigned slot, ioa_syscall sys, int err) {
  ioa__cc_slot *s = &cc->slots[slot];
  assert(s->state == IOA_CC_SLOT_OPENING || slot_in_flight(s->state));
  if (err != IOA_EABANDONED &&
      ioa__cc_syscall_rank(sys) >= ioa__cc_syscall_rank((ioa_syscall)cc->best_syscall)) {
    cc->best_syscall = (uint8_t)sys;
    cc->best_err = err;
  }
  if (!cc->fails || cc->fails->n == cc->fails->cap) {
    uint32_t cap = cc->fails ? cc->fails->cap * 2 : 4;
    ioa__cc_fails *n = ioa__realloc(cc->fails, sizeof *n + cap * sizeof n->rec[0]);
    if (!n) {
      /* The ranking above still holds; only the detailed record is lost. */
      if (cc->fails)
        cc->fails->dropped++;
      slot_set(cc, s, s->fd >= 0 ? IOA_CC_SLOT_CLOSING : IOA_CC_SLOT_FREE);
      return;
    }
    if (!cc->fails)
      memset(n, 0, sizeof *n);
    cc->fails = n;
    cc->fails->cap = cap;
  }
  ioa__cc_failure *f = &cc->fails->rec[cc->fails->n++];
  f->start_ns = s->start_ns;
  f->end_ns = cc->now_ns;
  f->err = err;
  f->fd = s->fd;
  f->cand = s->cand;
  f->slot = (uint16_t)slot;
  f->syscall = (uint8_t)sys;
  /* The fd stays open while on_fail looks at it. */
  slot_set(cc, s, s->fd >= 0 ? IOA_CC_SLOT_FAILED : IOA_CC_SLOT_FREE);
}

/* The step an attempt in flight is at, for a timeout's failure record. */
static ioa_syscall attempt_step(const ioa__cc_slot *s) {
  return s->state == IOA_CC_SLOT_CONNECTING ? IOA_SYSCALL_CONNECT : IOA_SYSCALL_TLS;
}

static void attempt_failed(ioa__cc *cc, unsigned slot, ioa_syscall sys, int err) {
  assert(cc->nactive > 0);
  record_failure(cc, slot, sys, err);
  cc->nactive--;
  if (cc->race)
    cc->next_attempt_ns = cc->now_ns; /* RFC 8305: next attempt at once */
}

static void win(ioa__cc *cc, unsigned slot) {
  assert(cc->slots[slot].fd >= 0);
  slot_set(cc, &cc->slots[slot], IOA_CC_SLOT_WON);
  cc->winner = (uint16_t)slot;
  for (unsigned i = 0; i < cc->nslots; i++) {
    ioa__cc_slot *s = &cc->slots[i];
    if (i != slot && slot_in_flight(s->state)) /* losers: closed, not failures */
      slot_set(cc, s, IOA_CC_SLOT_CLOSING);
  }
  cc->nactive = 0;
  finish(cc, IOA_CC_OK, IOA_SYSCALL_NONE, 0);
}

static int have_untried(const ioa__cc *cc) { return cc->ntried < cc->ncands; }

/* The attempt just started waits ms before the next one (race). */
static void pace(ioa__cc *cc, unsigned ms) {
  cc->delay_ms = (uint16_t)(ms > 0xffff ? 0xffff : ms);
  cc->next_attempt_ns = cc->now_ns + MS(ms);
}

/* A connect completed: the winner, unless a TLS handshake comes first.  The
 * handshake is a round trip of its own: racing, it gets the attempt delay
 * again before the next address is tried, so that a working but distant
 * path (a learned delay of 2 x RTT) is not raced by a needless attempt. */
static void connect_done(ioa__cc *cc, unsigned slot) {
  if (!cc->tls) {
    win(cc, slot);
    return;
  }
  slot_set(cc, &cc->slots[slot], IOA_CC_SLOT_HS_START);
  if (cc->race && cc->next_attempt_ns < cc->now_ns + MS(cc->delay_ms))
    cc->next_attempt_ns = cc->now_ns + MS(cc->delay_ms);
}

static void begin_connecting(ioa__cc *cc) {
  cc->state = IOA_CC_CONNECTING;
  cc->ready_ns = 0;
  add_cands(cc);
  if (cc->partial_families) {
    /* Answers came per family, each in RFC 6724 order: the first family is
     * the one alone here, else the one whose head ranks first (see
     * ioa__cc_set_family_order). */
    int h6 = -1, h4 = -1;
    for (unsigned i = 0; i < cc->npeers && (h6 < 0 || h4 < 0); i++) {
      int f = ioa__cc_peer(cc, i)->family;
      if (f == AF_INET6 && h6 < 0)
        h6 = (int)i;
      else if (f == AF_INET && h4 < 0)
        h4 = (int)i;
    }
    cc->first_family = h6 < 0 ? AF_INET : AF_INET6;
    if (h6 >= 0 && h4 >= 0 && cc->race && cc->order &&
        cc->order(cc, ioa__cc_peer(cc, (unsigned)h6), ioa__cc_peer(cc, (unsigned)h4)))
      cc->first_family = AF_INET;
  } else if (cc->npeers) {
    cc->first_family = ioa__cc_peer(cc, 0)->family;
  }
  cc->next_attempt_ns = cc->now_ns;
}

/* Apply the clock and decide what follows from the state. */
static void settle(ioa__cc *cc) {
  uint64_t now = cc->now_ns;
  if (cc->state != IOA_CC_RESOLVING && cc->state != IOA_CC_CONNECTING)
    return;
  if (cc->deadline_ns && now >= cc->deadline_ns) {
    for (unsigned i = 0; i < cc->nslots; i++)
      if (slot_in_flight(cc->slots[i].state))
        record_failure(cc, i, attempt_step(&cc->slots[i]), -ETIMEDOUT);
    cc->nactive = 0;
    cc->timed_out = 1;
    finish(cc, IOA_CC_CONNECT_ERROR, IOA_SYSCALL_NONE, -ETIMEDOUT);
    return;
  }
  if (cc->state == IOA_CC_RESOLVING) {
    if (cc->need_locals)
      return;
    if (!cc->need_peers || (cc->ready_ns && now >= cc->ready_ns))
      begin_connecting(cc);
    else
      return;
  }
  if (cc->attempt_timeout_ms) {
    for (unsigned i = 0; i < cc->nslots; i++) {
      ioa__cc_slot *s = &cc->slots[i];
      if (slot_in_flight(s->state) && now >= s->start_ns + MS(cc->attempt_timeout_ms))
        attempt_failed(cc, i, attempt_step(s), -ETIMEDOUT);
    }
  }
  /* Peers still resolving (race started on a partial answer) may add more. */
  if (cc->nactive == 0 && !cc->need_peers && !have_untried(cc)) {
    if (cc->best_syscall)
      finish(cc, IOA_CC_CONNECT_ERROR, (ioa_syscall)cc->best_syscall, cc->best_err);
    else
      finish(cc, IOA_CC_CONNECT_ERROR, IOA_SYSCALL_NONE, IOA_ENOCANDIDATES);
  }
  CHECK_INVARIANTS(cc);
}

static void set_now(ioa__cc *cc, uint64_t now) {
  if (now > cc->now_ns)
    cc->now_ns = now; /* never backwards */
}

/* --------------------------------------------------------------- events */

void ioa__cc_start(ioa__cc *cc, uint64_t now, int need_peers, int need_locals,
                  unsigned timeout_ms) {
  if (cc->state != IOA_CC_IDLE)
    return;
  set_now(cc, now);
  cc->need_peers = need_peers != 0;
  cc->need_locals = need_locals != 0;
  cc->deadline_ns = timeout_ms ? cc->now_ns + MS(timeout_ms) : 0;
  cc->state = IOA_CC_RESOLVING;
  settle(cc);
}

void ioa__cc_peers_partial(ioa__cc *cc, uint64_t now, int family) {
  set_now(cc, now);
  if (family == AF_INET)
    cc->partial_families |= 1;
  else if (family == AF_INET6)
    cc->partial_families |= 2;
  if (cc->state == IOA_CC_RESOLVING && cc->race) {
    /* AAAA: go now.  A alone: give AAAA the resolution delay. */
    if (family == AF_INET6)
      cc->ready_ns = cc->now_ns;
    else if (!cc->ready_ns)
      cc->ready_ns = cc->now_ns + MS(cc->resolution_delay_ms);
  } else if (cc->state == IOA_CC_CONNECTING) {
    add_cands(cc);
  }
  settle(cc);
}

void ioa__cc_resolved(ioa__cc *cc, uint64_t now, int is_local, int err) {
  set_now(cc, now);
  if (cc->state != IOA_CC_RESOLVING && cc->state != IOA_CC_CONNECTING)
    return;
  if (is_local)
    cc->need_locals = 0;
  else
    cc->need_peers = 0;
  if (err < 0) {
    /* A failed second answer after attempts began on a first one is not
     * fatal: the attempts go on with what arrived. */
    if (cc->state == IOA_CC_RESOLVING) {
      finish(cc, IOA_CC_RESOLVE_ERROR, IOA_SYSCALL_NONE, err);
      return;
    }
  } else if (cc->state == IOA_CC_CONNECTING) {
    add_cands(cc);
  }
  settle(cc);
}

void ioa__cc_opened(ioa__cc *cc, uint64_t now, unsigned slot, int fd, ioa_syscall failed_at,
                   int err, int connected) {
  set_now(cc, now);
  if (slot >= cc->nslots)
    return;
  ioa__cc_slot *s = &cc->slots[slot];
  if (s->state != IOA_CC_SLOT_OPENING || cc->state != IOA_CC_CONNECTING) {
    /* Cancelled or decided while the attempt was being opened. */
    if (s->state == IOA_CC_SLOT_OPENING) {
      s->fd = fd;
      slot_set(cc, s, fd >= 0 ? IOA_CC_SLOT_CLOSING : IOA_CC_SLOT_FREE);
    }
    return;
  }
  s->fd = fd;
  if (failed_at != IOA_SYSCALL_NONE)
    attempt_failed(cc, slot, failed_at, err < 0 ? err : -EIO);
  else if (connected)
    connect_done(cc, slot);
  else
    slot_set(cc, s, IOA_CC_SLOT_CONNECTING);
  settle(cc);
}

void ioa__cc_attempt_start(ioa__cc *cc, uint64_t now, unsigned slot, uint32_t rtt_us) {
  set_now(cc, now);
  if (slot >= cc->nslots || cc->slots[slot].state != IOA_CC_SLOT_OPENING ||
      cc->state != IOA_CC_CONNECTING)
    return;
  cc->slots[slot].start_ns = cc->now_ns;
  if (cc->race) {
    pace(cc, cc->attempt_delay_ms ? cc->attempt_delay_ms
             : rtt_us            ? ioa__cc_learned_delay_ms(rtt_us)
                                 : IOA_CC_DEFAULT_DELAY_MS);
  }
}

void ioa__cc_grow_slots(ioa__cc *cc, ioa__cc_slot *slots, uint16_t n) {
  assert(n > cc->nslots);
  if (slots != cc->slots)
    memcpy(slots, cc->slots, cc->nslots * sizeof *slots);
  for (unsigned i = cc->nslots; i < n; i++)
    slots[i] = (ioa__cc_slot){.fd = -1, .state = IOA_CC_SLOT_FREE};
  cc->slots = slots;
  cc->nslots = n;
}

void ioa__cc_grow_failed(ioa__cc *cc) { cc->max_inflight = (uint8_t)cc->nslots; }

void ioa__cc_connected(ioa__cc *cc, uint64_t now, unsigned slot, int err) {
  set_now(cc, now);
  if (slot >= cc->nslots || cc->state != IOA_CC_CONNECTING ||
      cc->slots[slot].state != IOA_CC_SLOT_CONNECTING)
    return;
  if (err == 0)
    connect_done(cc, slot);
  else
    attempt_failed(cc, slot, IOA_SYSCALL_CONNECT, err < 0 ? err : -err);
  settle(cc);
}

void ioa__cc_handshaked(ioa__cc *cc, uint64_t now, unsigned slot, int result, int err) {
  set_now(cc, now);
  if (slot >= cc->nslots || cc->state != IOA_CC_CONNECTING ||
      cc->slots[slot].state != IOA_CC_SLOT_HANDSHAKING)
    return; /* decided, cancelled or timed out meanwhile */
  if (result == IOA_CC_HS_OK) {
    win(cc, slot);
  } else if (result == IOA_CC_HS_RETRY) {
    attempt_failed(cc, slot, IOA_SYSCALL_TLS, err < 0 ? err : -EIO);
  } else {
    /* Fatal: reported (its fd open for on_fail), the other attempts closed
     * without failures, as a winner's losers are. */
    record_failure(cc, slot, IOA_SYSCALL_TLS, err < 0 ? err : -EIO);
    for (unsigned i = 0; i < cc->nslots; i++)
      if (slot_in_flight(cc->slots[i].state))
        slot_set(cc, &cc->slots[i], IOA_CC_SLOT_CLOSING);
    cc->nactive = 0;
    finish(cc, IOA_CC_CONNECT_ERROR, IOA_SYSCALL_TLS, err < 0 ? err : -EIO);
    return;
  }
  settle(cc);
}

void ioa__cc_tick(ioa__cc *cc, uint64_t now) {
  set_now(cc, now);
  if (cc->timer_ns && cc->now_ns >= cc->timer_ns)
    cc->timer_ns = 0; /* it fired */
  settle(cc);
}

void ioa__cc_cancel(ioa__cc *cc, uint64_t now) { ioa__cc_abort(cc, now, -ECANCELED); }

void ioa__cc_abort(ioa__cc *cc, uint64_t now, int err) {
  set_now(cc, now);
  if (cc->state == IOA_CC_FINISHED)
    return;
  if (cc->fails)
    cc->fails->reported = cc->fails->n; /* nobody wants to hear about them now */
  for (unsigned i = 0; i < cc->nslots; i++) {
    ioa__cc_slot *s = &cc->slots[i];
    if (slot_in_flight(s->state) || s->state == IOA_CC_SLOT_FAILED || s->state == IOA_CC_SLOT_WON)
      slot_set(cc, s, IOA_CC_SLOT_CLOSING);
    /* OPENING slots are settled by ioa__cc_opened when the driver returns. */
  }
  cc->nactive = 0;
  finish(cc, IOA_CC_CONNECT_ERROR, IOA_SYSCALL_NONE, err);
}

/* -------------------------------------------------------------- actions */

static uint64_t want_timer(const ioa__cc *cc) {
  uint64_t t = 0;
#define CONSIDER(x)                                                                                \
  do {                                                                                             \
    uint64_t v_ = (x);                                                                             \
    if (v_ && (!t || v_ < t))                                                                      \
      t = v_;                                                                                      \
  } while (0)
  if (cc->state != IOA_CC_RESOLVING && cc->state != IOA_CC_CONNECTING)
    return 0;
  if (!cc->deadline_ns && !cc->attempt_timeout_ms && !cc->race)
    return 0; /* sequential without timeouts never needs the clock */
  CONSIDER(cc->deadline_ns);
  if (cc->state == IOA_CC_RESOLVING && !cc->need_locals)
    CONSIDER(cc->ready_ns);
  if (cc->state == IOA_CC_CONNECTING) {
    /* A free slot, a new one or the oldest attempt's: the next attempt
     * always starts when due. */
    if (cc->race && cc->nactive && have_untried(cc))
      CONSIDER(cc->next_attempt_ns);
    if (cc->attempt_timeout_ms)
      for (unsigned i = 0; i < cc->nslots; i++)
        if (slot_in_flight(cc->slots[i].state))
          CONSIDER(cc->slots[i].start_ns + MS(cc->attempt_timeout_ms));
  }
#undef CONSIDER
  return t;
}

/* Each next_* below fills *a and returns its kind, or NONE when it has
 * nothing to say (then the next one is asked).  Only the fields an action
 * kind documents are set. */

/* Closing is never a callback: always allowed, even after completion. */
static ioa__cc_action_kind next_close(ioa__cc *cc, ioa__cc_action *a) {
  for (unsigned i = 0; i < cc->nslots; i++) {
    ioa__cc_slot *s = &cc->slots[i];
    if (s->state == IOA_CC_SLOT_CLOSING) {
      assert(s->fd >= 0);
      slot_set(cc, s, IOA_CC_SLOT_FREE);
      a->slot = (uint16_t)i;
      a->fd = s->fd;
      a->cand = s->cand;
      s->fd = -1;
      return a->kind = IOA_CC_ACT_CLOSE;
    }
  }
  assert(!"nclosing counts a slot that is not closing");
  return IOA_CC_ACT_NONE;
}

static ioa__cc_action_kind next_fail(ioa__cc *cc, ioa__cc_action *a) {
  ioa__cc_failure *f = &cc->fails->rec[cc->fails->reported];
  a->failure = cc->fails->reported++;
  a->slot = f->slot;
  a->cand = f->cand;
  a->fd = f->fd;
  a->syscall = (ioa_syscall)f->syscall;
  a->err = f->err;
  /* Once reported, the failed attempt's fd goes. */
  if (f->fd >= 0 && cc->slots[f->slot].state == IOA_CC_SLOT_FAILED &&
      cc->slots[f->slot].fd == f->fd)
    slot_set(cc, &cc->slots[f->slot], IOA_CC_SLOT_CLOSING);
  return a->kind = IOA_CC_ACT_FAIL;
}

static ioa__cc_action_kind next_done(ioa__cc *cc, ioa__cc_action *a) {
  cc->state = IOA_CC_FINISHED;
  cc->timer_ns = 0; /* the driver stops its timer on completion */
  a->outcome = (ioa__cc_outcome)cc->outcome;
  a->err = cc->done_err;
  a->syscall = (ioa_syscall)cc->done_syscall;
  a->fd = -1;
  if (cc->outcome == IOA_CC_OK) {
    ioa__cc_slot *w = &cc->slots[cc->winner];
    assert(w->state == IOA_CC_SLOT_WON && w->fd >= 0);
    a->slot = cc->winner;
    a->fd = w->fd;
    a->cand = w->cand;
    slot_set(cc, w, IOA_CC_SLOT_FREE); /* the fd is the caller's now */
    w->fd = -1;
  }
  return a->kind = IOA_CC_ACT_DONE;
}

/* The attempt to abandon when every slot is in flight: the oldest still
 * connecting (its peer has not answered the SYN), else, with TLS, the
 * oldest handshake (peers that accept and never answer TLS must not stop
 * the race either).  -1 if there is none (attempts being opened only). */
static int oldest_in_flight(const ioa__cc *cc) {
  int old = -1;
  for (unsigned i = 0; i < cc->nslots; i++) {
    const ioa__cc_slot *s = &cc->slots[i];
    if (!slot_in_flight(s->state))
      continue;
    if (old < 0) {
      old = (int)i;
      continue;
    }
    const ioa__cc_slot *o = &cc->slots[old];
    int sc = s->state == IOA_CC_SLOT_CONNECTING, oc = o->state == IOA_CC_SLOT_CONNECTING;
    if (sc > oc || (sc == oc && s->start_ns < o->start_ns))
      old = (int)i;
  }
  return old;
}

static ioa__cc_action_kind next_action(ioa__cc *cc, unsigned flags, ioa__cc_action *a);

/* The next attempt, if one is due.  Without a free slot: more slots (GROW),
 * or at the limit the oldest attempt gives its slot up, reported as
 * abandoned — otherwise a list of black holes longer than the limit would
 * never reach its working address (RFC 8305 section 5: every address gets
 * its turn). */
static ioa__cc_action_kind next_open(ioa__cc *cc, unsigned flags, ioa__cc_action *a) {
  if (cc->ntried >= cc->ncands ||
      (cc->nactive != 0 && !(cc->race && cc->now_ns >= cc->next_attempt_ns)))
    return IOA_CC_ACT_NONE;
  int ci = pick_cand(cc);
  if (ci < 0)
    return IOA_CC_ACT_NONE;
  if (flags & IOA_CC_NO_OPEN)
    return a->kind = IOA_CC_ACT_DEFER;
  int si = cc->nactive < cc->max_inflight ? free_slot(cc) : -1;
  if (si < 0 && cc->nslots < cc->max_inflight) {
    unsigned want = cc->nslots * 2u;
    a->slot = (uint16_t)(want > cc->max_inflight ? cc->max_inflight : want ? want : 1);
    return a->kind = IOA_CC_ACT_GROW;
  }
  if (si < 0) {
    int old = cc->nactive >= cc->max_inflight ? oldest_in_flight(cc) : -1;
    if (old < 0)
      return IOA_CC_ACT_NONE; /* only attempts being opened: their results come first */
    record_failure(cc, (unsigned)old, attempt_step(&cc->slots[old]), IOA_EABANDONED);
    cc->nactive--;
    /* Its FAIL and CLOSE come first; the OPEN follows on a later pull. */
    return next_action(cc, flags, a);
  }
  ioa__cc_slot *s = &cc->slots[si];
  ioa__cc_cand *c = &cc->cands[ci];
  c->local |= IOA_CC_USED;
  cc->ntried++;
  slot_set(cc, s, IOA_CC_SLOT_OPENING);
  s->cand = (uint16_t)ci;
  s->fd = -1;
  s->start_ns = cc->now_ns;
  cc->nactive++;
  cc->started = 1;
  cc->last_family = ioa__cc_peer(cc, c->peer)->family;
  pace(cc, cc->attempt_delay_ms ? cc->attempt_delay_ms : IOA_CC_DEFAULT_DELAY_MS);
  a->slot = (uint16_t)si;
  a->cand = (uint16_t)ci;
  return a->kind = IOA_CC_ACT_OPEN;
}

/* TLS: a connected attempt's handshake, to start (the driver runs a hook). */
static ioa__cc_action_kind next_handshake(ioa__cc *cc, ioa__cc_action *a) {
  for (unsigned i = 0; i < cc->nslots; i++) {
    ioa__cc_slot *s = &cc->slots[i];
    if (s->state == IOA_CC_SLOT_HS_START) {
      slot_set(cc, s, IOA_CC_SLOT_HANDSHAKING);
      a->slot = (uint16_t)i;
      a->fd = s->fd;
      a->cand = s->cand;
      return a->kind = IOA_CC_ACT_HANDSHAKE;
    }
  }
  assert(!"nhs_start counts a slot that is not starting a handshake");
  return IOA_CC_ACT_NONE;
}

static ioa__cc_action_kind next_timer(ioa__cc *cc, ioa__cc_action *a) {
  uint64_t t = cc->state == IOA_CC_FINISHED ? 0 : want_timer(cc);
  if (t == cc->timer_ns)
    return IOA_CC_ACT_NONE;
  cc->timer_ns = t;
  a->at = t;
  return a->kind = IOA_CC_ACT_TIMER;
}

static ioa__cc_action_kind next_action(ioa__cc *cc, unsigned flags, ioa__cc_action *a) {
  uint8_t st = cc->state;
  if (st == IOA_CC_IDLE)
    return IOA_CC_ACT_NONE;
  if (cc->nclosing)
    return next_close(cc, a);
  if (st == IOA_CC_FINISHED)
    return next_timer(cc, a);
  if (cc->fails && cc->fails->reported < cc->fails->n)
    return flags & IOA_CC_NO_CALLBACKS ? (a->kind = IOA_CC_ACT_DEFER) : next_fail(cc, a);
  if (st == IOA_CC_DONE)
    return flags & IOA_CC_NO_CALLBACKS ? (a->kind = IOA_CC_ACT_DEFER) : next_done(cc, a);
  if (st == IOA_CC_CONNECTING && cc->nhs_start)
    return flags & IOA_CC_NO_CALLBACKS ? (a->kind = IOA_CC_ACT_DEFER) : next_handshake(cc, a);
  if (st == IOA_CC_CONNECTING && next_open(cc, flags, a) != IOA_CC_ACT_NONE)
    return a->kind;
  return next_timer(cc, a);
}

ioa__cc_action_kind ioa__cc_next(ioa__cc *cc, unsigned flags, ioa__cc_action *a) {
  CHECK_INVARIANTS(cc);
  ioa__cc_action_kind k = next_action(cc, flags, a);
  if (k == IOA_CC_ACT_NONE)
    a->kind = IOA_CC_ACT_NONE;
  CHECK_INVARIANTS(cc);
  return a->kind;
}
