/* SPDX-License-Identifier: MIT */
/* The connector's decision logic, without I/O (nghttp2's "sans-I/O" idea).
 *
 * ioa__cc decides which candidate to try next and when, what to close, what
 * failure to report and how the request completes.  It makes no syscall,
 * reads no clock and allocates only to grow its failure list: every event
 * carries the time ("now", ns on any monotonic scale) and every output is an
 * action the driver (connect.c) performs and answers with another event.
 * Tests and fuzzers drive it with injected results and a fake clock.
 *
 * Storage for addresses, candidates and attempt slots belongs to the driver;
 * the core is told where it is.  Address arrays are strided: each entry starts
 * with an ioa__cc_meta and the driver keeps whatever it likes after it (the
 * socket address), so the core never copies addresses.
 *
 * Driving it:
 *   ioa__cc_init(), ioa__cc_set_*(), ioa__cc_start(now)
 *   loop { act = ioa__cc_next(cc, flags); perform it; feed back results }
 * Slot storage starts as small as the driver likes (one slot): a racing
 * core that wants another attempt in flight asks for more with a GROW
 * action, up to max_inflight; at that limit the oldest attempt still
 * connecting is abandoned (a FAIL with IOA_EABANDONED) so that every
 * candidate gets its turn (RFC 8305 section 5).
 * Actions are pulled from the state (no queue), so an event arriving while
 * the driver is inside a callback (cancel from on_fail) simply changes what
 * the next pull returns.
 *
 * Invariants a fuzzer can check (test_connect_core.c drives the same way):
 *  - exactly one DONE per started core, whatever the event sequence;
 *  - at most max_inflight attempts in flight; when racing, every candidate
 *    is eventually tried unless the request completed;
 *  - every fd fed back through ioa__cc_opened() leaves through exactly one
 *    CLOSE, or as the DONE's winner, never both;
 *  - FAIL for an attempt comes before the CLOSE of its fd; no FAIL after a
 *    cancel; OPEN only while connecting and never with NO_OPEN;
 *  - with NO_CALLBACKS, neither FAIL nor DONE is returned (DEFER instead),
 *    nor HANDSHAKE (the driver's handshake may call back);
 *  - with TLS, a slot is handed to DONE only after its handshake answered
 *    ok, and every fd handed out by HANDSHAKE leaves as above.
 *
 * TLS (ioa__cc_set_tls): a connected attempt is not the winner yet.  Its slot
 * asks for a HANDSHAKE action, the driver runs the handshake on that fd and
 * answers with ioa__cc_handshaked(): ok (the winner), a network failure (as
 * a refused connect: the race goes on with the untried candidates) or a
 * fatal one (verification, protocol: the request ends at once, the next
 * address would present the same name).  The handshake is part of the
 * attempt: the attempt timeout and the overall deadline count it, and a
 * handshaking slot is in flight (nactive, the max_inflight limit, slot
 * growth).  At the limit the oldest attempt still connecting is abandoned;
 * only when every one in flight is handshaking is the oldest handshake
 * abandoned (its FAIL says "tls"): a peer that answered the SYN is likelier
 * to win than one that did not, yet a list of servers that accept and never
 * answer TLS must not stop the race.
 */
#ifndef IOA_CONNECT_CORE_H
#define IOA_CONNECT_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "ioasync/connect.h"

/* What the core needs to know of an address: enough to match local and peer
 * and to interleave families.  4 bytes, the head of every driver entry. */
typedef struct ioa__cc_meta {
  uint8_t family;
  uint8_t socktype;
  uint16_t protocol;
} ioa__cc_meta;

/* A candidate (local, peer) pair; IOA_CC_NONE for "no local address".
 * Bit 15 of local marks a candidate already tried. */
#define IOA_CC_NONE 0x7fffu
#define IOA_CC_USED 0x8000u
#define IOA_CC_MAX_ADDRS 0x7fffu /* per side, and candidates in all */
typedef struct ioa__cc_cand {
  uint16_t peer;
  uint16_t local;
} ioa__cc_cand;

/* Attempts in flight at once, at most (racing). */
#define IOA_CC_MAX_INFLIGHT 16
/* Happy Eyeballs connection attempt delay (RFC 8305 section 5): the default,
 * and the bounds of one learned from a destination's round-trip time. */
#define IOA_CC_DEFAULT_DELAY_MS 250
#define IOA_CC_LEARNED_MIN_MS 100
#define IOA_CC_LEARNED_MAX_MS 2000

/* The attempt delay for a destination whose smoothed round-trip time is
 * rtt_us: clamp(2 x RTT, 100 ms, 2 s).  One place for the rule, used by the
 * core and by ioa_rtt_cache_delay(). */
static inline unsigned ioa__cc_learned_delay_ms(uint32_t rtt_us) {
  uint64_t ms = ((uint64_t)rtt_us * 2 + 999) / 1000;
  return ms < IOA_CC_LEARNED_MIN_MS   ? IOA_CC_LEARNED_MIN_MS
         : ms > IOA_CC_LEARNED_MAX_MS ? IOA_CC_LEARNED_MAX_MS
                                      : (unsigned)ms;
}

enum ioa__cc_slot_state {
  IOA_CC_SLOT_FREE = 0,
  IOA_CC_SLOT_OPENING,    /* OPEN handed out; result not yet fed back */
  IOA_CC_SLOT_CONNECTING, /* connect in progress: waiting for writability */
  IOA_CC_SLOT_FAILED,     /* failed; fd stays open until the failure is reported */
  IOA_CC_SLOT_CLOSING,    /* fd to be closed by the next CLOSE action */
  IOA_CC_SLOT_WON,        /* connected; handed over by the DONE action */
  IOA_CC_SLOT_HS_START,   /* TLS: connected; the HANDSHAKE action is due */
  IOA_CC_SLOT_HANDSHAKING, /* TLS: the driver runs the handshake on fd */
};

typedef struct ioa__cc_slot {
  uint64_t start_ns;
  int fd;
  uint16_t cand;
  uint8_t state;
  uint8_t pad_;
} ioa__cc_slot;

/* One failed attempt step, as kept by the core (only once something failed,
 * so the request itself stays small). */
typedef struct ioa__cc_failure {
  uint64_t start_ns, end_ns;
  int err;
  int fd; /* -1 for socket failures */
  uint16_t cand;
  uint16_t slot;
  uint8_t syscall; /* ioa_syscall */
} ioa__cc_failure;

typedef struct ioa__cc_fails {
  uint32_t n, cap, reported;
  uint32_t dropped; /* failures not recorded for lack of memory */
  void *aux;        /* the driver's (its ioa_connect_failures view); freed by dispose */
  ioa__cc_failure rec[];
} ioa__cc_fails;

typedef enum ioa__cc_state {
  IOA_CC_IDLE = 0,
  IOA_CC_RESOLVING, /* waiting for peers and/or locals */
  IOA_CC_CONNECTING,
  IOA_CC_DONE, /* completion decided; DONE action not yet pulled */
  IOA_CC_FINISHED, /* DONE pulled: nothing more happens */
} ioa__cc_state;

typedef enum ioa__cc_outcome {
  IOA_CC_OK = 0,
  IOA_CC_CONNECT_ERROR, /* err/syscall: the most significant failure */
  IOA_CC_RESOLVE_ERROR, /* err: the resolver's code */
} ioa__cc_outcome;

/* RFC 8305 section 4 for answers that came per family (on_partial): which
 * of two peers getaddrinfo would put first (RFC 6724 destination address
 * selection, /etc/gai.conf).  Non-zero if b ranks above a.  See
 * ioa__cc_set_family_order. */
struct ioa__cc;
typedef int (*ioa__cc_order_fn)(struct ioa__cc *cc, const ioa__cc_meta *a, const ioa__cc_meta *b);

/* Family classes of the pick cursors: AF_INET, AF_INET6, anything else. */
#define IOA_CC_CLASSES 3

typedef struct ioa__cc {
  /* driver storage */
  const unsigned char *peers, *locals; /* strided entries, ioa__cc_meta first */
  ioa__cc_cand *cands;
  ioa__cc_slot *slots;
  struct ioa__cc_fails *fails; /* NULL until the first failure; grown by the core */
  uint16_t peer_stride, local_stride;
  uint16_t npeers, nlocals, ncands, cand_cap, nslots, nactive;
  uint16_t cand_peers; /* peers already crossed into cands */
  uint16_t ntried;     /* candidates handed out by OPEN */
  uint16_t nclosing;   /* slots in IOA_CC_SLOT_CLOSING */
  /* Per family class, the first candidate of that class not yet tried, as
   * far as known: every candidate of the class before it has been tried.
   * Picks only move them forward, so a pick is O(1) amortised. */
  uint16_t cursor[IOA_CC_CLASSES];

  /* configuration */
  uint16_t attempt_delay_ms; /* 0: not given (learned, else the default) */
  uint16_t resolution_delay_ms;
  uint32_t attempt_timeout_ms;
  uint8_t first_family_count; /* RFC 8305 section 4; >= 1 */
  uint8_t max_inflight;       /* slots the core may ask for (GROW) */
  uint16_t delay_ms;          /* race: the attempt delay of the latest attempt */
  uint64_t deadline_ns; /* overall; 0 = none */
  /* ranks the families' heads; NULL: IPv6 first.  No data pointer: the
   * driver finds its state around cc (every request carries this struct,
   * the numeric fast path's too, so each byte here is paid by all). */
  ioa__cc_order_fn order;

  /* progress */
  uint64_t now_ns;
  uint64_t next_attempt_ns; /* race: earliest start of the next attempt */
  uint64_t ready_ns;        /* race: resolution delay ends; 0 = not waiting */
  uint64_t timer_ns;        /* what the driver's timer is armed at; 0 = idle */
  int best_err;
  int done_err;
  uint16_t winner;
  uint8_t state;
  uint8_t race;
  uint8_t need_peers, need_locals; /* resolution still outstanding */
  uint8_t partial_families;        /* bit 0: AF_INET, bit 1: AF_INET6 given early */
  uint8_t first_family, last_family;
  uint8_t best_syscall, done_syscall, outcome;
  uint8_t started; /* first attempt scheduled */
  uint8_t timed_out;
  uint8_t tls; /* a handshake follows each connect (ioa__cc_set_tls) */
  uint8_t nhs_start; /* slots in IOA_CC_SLOT_HS_START (<= max_inflight) */
} ioa__cc;

typedef enum ioa__cc_action_kind {
  IOA_CC_ACT_NONE = 0, /* nothing to do until the next event */
  IOA_CC_ACT_OPEN,     /* slot, cand: socket, bind, connect; then ioa__cc_opened */
  IOA_CC_ACT_FAIL,     /* failure index: report it (its fd is still open) */
  IOA_CC_ACT_CLOSE,    /* slot, fd: stop watching and close */
  IOA_CC_ACT_TIMER,    /* at: (re)arm the one timer at this time; 0 = stop it */
  IOA_CC_ACT_DONE,     /* complete: outcome, err, syscall, slot/fd on success */
  IOA_CC_ACT_DEFER,    /* something needs a callback: come back from a safe place */
  IOA_CC_ACT_GROW,     /* slot: the slot count wanted (> nslots): ioa__cc_grow_slots,
                          or ioa__cc_grow_failed if the storage cannot grow */
  IOA_CC_ACT_HANDSHAKE, /* slot, fd, cand: start TLS on fd; then ioa__cc_handshaked */
} ioa__cc_action_kind;

typedef struct ioa__cc_action {
  ioa__cc_action_kind kind;
  ioa__cc_outcome outcome;
  ioa_syscall syscall;
  int err;
  int fd;
  uint16_t slot;
  uint16_t cand;
  uint32_t failure;
  uint64_t at;
} ioa__cc_action;

/* Flags for ioa__cc_next. */
enum {
  IOA_CC_NO_CALLBACKS = 1u << 0, /* FAIL and DONE become DEFER (inside ioa_connect) */
  IOA_CC_NO_OPEN = 1u << 1,      /* OPEN becomes DEFER (hooks would run too early) */
};

/* race: Happy Eyeballs; delays in ms (0 = default; an attempt delay of 0 is
 * learned per destination when the driver knows its RTT, see
 * ioa__cc_attempt_start); timeouts 0 = none.  First Address Family Count 1,
 * at most IOA_CC_MAX_INFLIGHT attempts in flight (see the setters below). */
void ioa__cc_init(ioa__cc *cc, int race, unsigned attempt_delay_ms, unsigned resolution_delay_ms,
                 unsigned attempt_timeout_ms);
/* The same for a cc the caller has already zeroed (saves a memset on the
 * connect fast path). */
void ioa__cc_configure(ioa__cc *cc, int race, unsigned attempt_delay_ms,
                      unsigned resolution_delay_ms, unsigned attempt_timeout_ms);

/* Storage.  Entries keep their index when an array is replaced by a longer
 * one (the driver re-lays them out); cands must hold nlocals*npeers entries
 * (ioa__cc_cands_needed) and slots at least one. */
static inline void ioa__cc_set_peers(ioa__cc *cc, const void *entries, uint32_t stride,
                                    uint16_t n) {
  cc->peers = (const unsigned char *)entries;
  cc->peer_stride = (uint16_t)stride;
  cc->npeers = n;
}
static inline void ioa__cc_set_locals(ioa__cc *cc, const void *entries, uint32_t stride,
                                     uint16_t n) {
  cc->locals = (const unsigned char *)entries;
  cc->local_stride = (uint16_t)stride;
  cc->nlocals = n;
}
static inline void ioa__cc_set_cand_storage(ioa__cc *cc, ioa__cc_cand *cands, uint16_t cap) {
  cc->cands = cands;
  cc->cand_cap = cap;
}
/* RFC 8305 section 4: attempts of the first family before the other one
 * gets its first (0 is taken as 1). */
static inline void ioa__cc_set_first_family_count(ioa__cc *cc, unsigned n) {
  cc->first_family_count = (uint8_t)(n == 0 ? 1 : n > 255 ? 255 : n);
}
/* Racing: how the first family is chosen when answers came per family and
 * both are here as connecting begins (AAAA within the Resolution Delay, by
 * on_partial or with the final answer): each family arrives in RFC 6724
 * order, so RFC 8305 section 4's sorted list starts with whichever of the
 * two heads order(IPv6 head, IPv4 head, data) ranks first; ties, and no
 * hook, keep IPv6.  One family alone goes first whatever the hook says, and
 * an answer that came whole starts with its own first address.
 * A hook rather than a value the driver sets: only the core knows when
 * connecting begins (an answer, the delay's end, the final answer), and
 * the driver's ranking needs the resolver's sorter, whose source-address
 * probes are syscalls the core must not make.  Called at most once, from
 * inside the event that begins connecting; it must not call the core. */
static inline void ioa__cc_set_family_order(ioa__cc *cc, ioa__cc_order_fn order) {
  cc->order = order;
}
/* Attempts in flight at most (1..255); the core asks for slots up to it. */
static inline void ioa__cc_set_max_inflight(ioa__cc *cc, unsigned n) {
  cc->max_inflight = (uint8_t)(n == 0 ? 1 : n > 255 ? 255 : n);
}
/* A TLS handshake is part of each attempt (before ioa__cc_start). */
static inline void ioa__cc_set_tls(ioa__cc *cc, int on) { cc->tls = on != 0; }
/* Marks every slot free: the storage may hold anything before. */
static inline void ioa__cc_set_slots(ioa__cc *cc, ioa__cc_slot *slots, uint16_t n) {
  for (uint16_t i = 0; i < n; i++)
    slots[i] = (ioa__cc_slot){.fd = -1, .state = IOA_CC_SLOT_FREE};
  cc->slots = slots;
  cc->nslots = n;
}
/* Answer to GROW: slots holds n > nslots entries; the first nslots are
 * copied from the current storage unless slots is that storage, the rest
 * marked free.  The driver may free the old storage afterwards. */
void ioa__cc_grow_slots(ioa__cc *cc, ioa__cc_slot *slots, uint16_t n);
/* Answer to GROW when no memory could be had: the slots there are become
 * the limit (the oldest attempt is abandoned instead). */
void ioa__cc_grow_failed(ioa__cc *cc);
/* Candidates that nlocals x npeers can give (1 local if nlocals is 0). */
size_t ioa__cc_cands_needed(size_t nlocals, size_t npeers);

static inline const ioa__cc_meta *ioa__cc_peer(const ioa__cc *cc, unsigned i) {
  return (const ioa__cc_meta *)(const void *)(cc->peers + (size_t)i * cc->peer_stride);
}
static inline const ioa__cc_meta *ioa__cc_local(const ioa__cc *cc, unsigned i) {
  return i == IOA_CC_NONE ? NULL
                          : (const ioa__cc_meta *)(const void *)(cc->locals +
                                                                (size_t)i * cc->local_stride);
}
static inline unsigned ioa__cc_cand_local(const ioa__cc_cand *c) { return c->local & ~IOA_CC_USED; }

/* ---- events ---- */

/* Start.  need_peers/need_locals: that side comes from a resolver later
 * (otherwise its storage is already set).  timeout_ms: overall, 0 = none. */
void ioa__cc_start(ioa__cc *cc, uint64_t now, int need_peers, int need_locals,
                  unsigned timeout_ms);
/* One family's peers arrived early (c-ares): the storage already holds them
 * (set_peers was called with the longer array). */
void ioa__cc_peers_partial(ioa__cc *cc, uint64_t now, int family);
/* A side is fully resolved (storage set) or failed (err < 0, message kept by
 * the driver). */
void ioa__cc_resolved(ioa__cc *cc, uint64_t now, int is_local, int err);
/* Optional, between an OPEN and its ioa__cc_opened: the driver is about to
 * make the attempt's syscalls.  now is a fresh clock reading (the attempt
 * and the delay before the next one count from it, not from the possibly
 * older time of the OPEN); rtt_us the smoothed round-trip time known for
 * the peer's destination (0 = none): with no attempt_delay_ms given, the
 * next attempt waits ioa__cc_learned_delay_ms(rtt_us) instead of the
 * default. */
void ioa__cc_attempt_start(ioa__cc *cc, uint64_t now, unsigned slot, uint32_t rtt_us);
/* Whether the delay after the attempt just opened can matter: racing with
 * another candidate, or more answers, to come (else the driver need not
 * look the RTT up). */
static inline int ioa__cc_more_to_try(const ioa__cc *cc) {
  return cc->race && (cc->ntried < cc->ncands || cc->need_peers);
}
/* The OPEN for slot went: fd (-1 if socket failed); failed_at is the step
 * that failed (IOA_SYSCALL_NONE if none), err its code; connected non-zero if
 * connect completed at once. */
void ioa__cc_opened(ioa__cc *cc, uint64_t now, unsigned slot, int fd, ioa_syscall failed_at,
                   int err, int connected);
/* The slot's connect finished: err from SO_ERROR (0 = connected). */
void ioa__cc_connected(ioa__cc *cc, uint64_t now, unsigned slot, int err);
/* TLS: the slot's handshake ended: ok, a network failure (reset, EOF,
 * out of memory: the next candidate is tried) or a fatal one (the request
 * ends with it).  err is its code (0 when ok). */
enum { IOA_CC_HS_OK = 0, IOA_CC_HS_RETRY, IOA_CC_HS_FATAL };
void ioa__cc_handshaked(ioa__cc *cc, uint64_t now, unsigned slot, int result, int err);
/* The timer fired (or any time passed). */
void ioa__cc_tick(ioa__cc *cc, uint64_t now);
/* Cancel: every fd closed, completes with -ECANCELED.  No-op once finished. */
void ioa__cc_cancel(ioa__cc *cc, uint64_t now);
/* The same with another code (the driver could not arm its timer: -ENOMEM). */
void ioa__cc_abort(ioa__cc *cc, uint64_t now, int err);

/* ---- actions ---- */
/* The next action into *a (only the fields its kind uses are set); returns
 * a->kind. */
ioa__cc_action_kind ioa__cc_next(ioa__cc *cc, unsigned flags, ioa__cc_action *a);

/* The failure list (for ioa_connect_failures). */
static inline const ioa__cc_failure *ioa__cc_failures(const ioa__cc *cc, size_t *n) {
  *n = cc->fails ? cc->fails->n : 0;
  return cc->fails ? cc->fails->rec : NULL;
}
/* Release the failure list and its aux pointer (the driver frees the rest). */
void ioa__cc_dispose(ioa__cc *cc);

/* Error ranking: tls > connect > bind > sockopt hook > socket > none (the
 * step reached furthest wins; among equals the latest).  An abandoned
 * attempt (IOA_EABANDONED) is the core's own decision and never ranks. */
int ioa__cc_syscall_rank(ioa_syscall s);

#endif
