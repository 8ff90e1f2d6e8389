/* SPDX-License-Identifier: MIT */
/* The round-trip-time cache (rtt.h, ioa_rtt_cache in connect.h).
 *
 * A fixed table, 4-way set associative: a destination prefix hashes to one
 * set of four entries; a new prefix takes an empty or expired entry of its
 * set, else the one sampled longest ago.  So memory is bounded, a lookup
 * touches four entries, and old entries leave by themselves.  Samples are
 * smoothed as TCP smooths its own (RFC 6298), with a gain of 1/4 rather
 * than 1/8: a sample here is one connection's handshake, much rarer than
 * per-segment samples, and a changed path should show within a few
 * connections.
 *
 * One lock per cache: a cache may be shared between loops on different
 * threads.  The critical sections are
 * a few dozen instructions, so the lock is a spin lock that yields after a
 * while (a pthread mutex cost as much as the rest of a lookup). */
#include "rtt.h"

#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "abi.h"
#include "alloc.h"
#include "connect_core.h"
#include "loop_internal.h"

#define WAYS 4
#define DEFAULT_ENTRIES 256
#define MAX_ENTRIES 65536
#define DEFAULT_TTL_MS 600000u /* 10 minutes */

typedef struct rtt_entry {
  uint64_t prefix;   /* the address's first 24 (IPv4) or 64 (IPv6) bits */
  uint64_t stamp_ns; /* last sample; 0 = empty */
  uint32_t srtt_us;
  uint8_t family;
  uint8_t pad_[3];
} rtt_entry;

struct ioa_rtt_cache {
  atomic_flag lock;
  uint32_t set_mask; /* sets - 1 (a power of two) */
  uint64_t ttl_ns;
  rtt_entry *e;
};

static void lock(ioa_rtt_cache *c) {
  for (unsigned spins = 0; atomic_flag_test_and_set_explicit(&c->lock, memory_order_acquire);)
    if (++spins % 64 == 0)
      sched_yield(); /* the holder was preempted */
}

static void unlock(ioa_rtt_cache *c) { atomic_flag_clear_explicit(&c->lock, memory_order_release); }

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The family and prefix of sa (IPv4-mapped IPv6 counts as IPv4); 0 for a
 * family without one. */
static int prefix_of(const struct sockaddr *sa, uint64_t *prefix) {
  if (sa->sa_family == AF_INET) {
    const unsigned char *b =
        (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    *prefix = (uint64_t)b[0] << 16 | (uint64_t)b[1] << 8 | b[2];
    return AF_INET;
  }
  if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    const unsigned char *b = a->s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
      *prefix = (uint64_t)b[12] << 16 | (uint64_t)b[13] << 8 | b[14];
      return AF_INET;
    }
    uint64_t p = 0;
    for (int i = 0; i < 8; i++)
      p = p << 8 | b[i];
    *prefix = p;
    return AF_INET6;
  }
  return 0;
}

static rtt_entry *set_of(const ioa_rtt_cache *c, int family, uint64_t prefix) {
  uint64_t h = (prefix ^ (uint64_t)family << 56) * 0x9e3779b97f4a7c15ull;
  return &c->e[((h >> 32) & c->set_mask) * WAYS];
}

static int live(const ioa_rtt_cache *c, const rtt_entry *e, uint64_t now_ns) {
  return e->stamp_ns && now_ns - e->stamp_ns < c->ttl_ns;
}

uint32_t ioa__rtt_get(ioa_rtt_cache *c, const struct sockaddr *sa, uint64_t now_ns) {
  uint64_t prefix;
  int family = prefix_of(sa, &prefix);
  if (!family)
    return 0;
  uint32_t rtt = 0;
  lock(c);
  rtt_entry *set = set_of(c, family, prefix);
  for (int i = 0; i < WAYS; i++)
    if (set[i].family == family && set[i].prefix == prefix && live(c, &set[i], now_ns))
      rtt = set[i].srtt_us;
  unlock(c);
  return rtt;
}

void ioa__rtt_note(ioa_rtt_cache *c, const struct sockaddr *sa, uint32_t rtt_us,
                   uint64_t now_ns) {
  uint64_t prefix;
  int family = prefix_of(sa, &prefix);
  if (!family || rtt_us == 0)
    return;
  if (now_ns == 0)
    now_ns = 1; /* 0 marks an empty entry */
  lock(c);
  rtt_entry *set = set_of(c, family, prefix), *victim = &set[0];
  for (int i = 0; i < WAYS; i++) {
    rtt_entry *e = &set[i];
    if (e->family == family && e->prefix == prefix && e->stamp_ns) {
      if (live(c, e, now_ns)) /* srtt += (sample - srtt) / 4 */
        e->srtt_us = (uint32_t)(((uint64_t)e->srtt_us * 3 + rtt_us + 2) / 4);
      else
        e->srtt_us = rtt_us;
      e->stamp_ns = now_ns;
      unlock(c);
      return;
    }
    /* Otherwise: an empty or expired entry, else the oldest sample. */
    if (victim->stamp_ns && (!live(c, e, now_ns) || e->stamp_ns < victim->stamp_ns))
      victim = e;
  }
  *victim = (rtt_entry){.prefix = prefix, .stamp_ns = now_ns, .srtt_us = rtt_us,
                        .family = (uint8_t)family};
  unlock(c);
}

/* ------------------------------------------------------------ public */

void ioa_rtt_cache_options_init_size(ioa_rtt_cache_options *o, size_t size) {
  static const ioa_rtt_cache_options defaults = {.struct_size = sizeof defaults};
  IOA__INIT(o, size, &defaults);
}

int ioa_rtt_cache_new(const ioa_rtt_cache_options *opts, ioa_rtt_cache **out) {
  if (!out)
    return IOA_EBADPARAM;
  *out = NULL;
  ioa_rtt_cache_options o;
  ioa_rtt_cache_options_init(&o);
  if (opts && IOA__IMPORT(&o, opts) < 0)
    return IOA_EBADPARAM;
  unsigned n = o.max_entries ? o.max_entries : DEFAULT_ENTRIES;
  if (n > MAX_ENTRIES)
    return IOA_EBADPARAM;
  unsigned entries = WAYS;
  while (entries < n)
    entries *= 2;
  ioa_rtt_cache *c = ioa__malloc(sizeof *c);
  rtt_entry *e = ioa__calloc(entries, sizeof *e);
  if (!c || !e) {
    ioa__free(c);
    ioa__free(e);
    return -ENOMEM;
  }
  atomic_flag_clear(&c->lock);
  c->set_mask = entries / WAYS - 1;
  c->ttl_ns = (uint64_t)(o.ttl_ms ? o.ttl_ms : DEFAULT_TTL_MS) * 1000000u;
  c->e = e;
  *out = c;
  return 0;
}

void ioa_rtt_cache_free(ioa_rtt_cache *c) {
  if (!c)
    return;
  ioa__free(c->e);
  ioa__free(c);
}

static void default_free(void *c) { ioa_rtt_cache_free(c); }

int ioa_rtt_cache_default(ioa_loop *loop, ioa_rtt_cache **out) {
  if (!loop || !out)
    return IOA_EBADPARAM;
  ioa_rtt_cache *c = ioa__loop_slot_get(loop, IOA__LOOP_SLOT_RTT_CACHE);
  if (!c) {
    int r = ioa_rtt_cache_new(NULL, &c);
    if (r < 0)
      return r;
    ioa__loop_slot_set(loop, IOA__LOOP_SLOT_RTT_CACHE, c, default_free);
  }
  *out = c;
  return 0;
}

void ioa_rtt_cache_clear(ioa_rtt_cache *c) {
  if (!c)
    return;
  lock(c);
  memset(c->e, 0, ((size_t)c->set_mask + 1) * WAYS * sizeof *c->e);
  unlock(c);
}

/* Only addresses that have a prefix (inet, inet6), well formed. */
static const struct sockaddr *ip_sockaddr(const ioa_addr *a) {
  if (!a || (a->family != AF_INET && a->family != AF_INET6) || a->addr.ss_family != a->family ||
      a->addrlen != (a->family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6)))
    return NULL;
  return (const struct sockaddr *)(const void *)&a->addr;
}

int ioa_rtt_cache_note(ioa_rtt_cache *c, const ioa_addr *peer, uint32_t rtt_us) {
  const struct sockaddr *sa = ip_sockaddr(peer);
  if (!c || !sa || rtt_us == 0)
    return IOA_EBADPARAM;
  ioa__rtt_note(c, sa, rtt_us, mono_ns());
  return 0;
}

int ioa_rtt_cache_lookup(ioa_rtt_cache *c, const ioa_addr *peer, uint32_t *rtt_us,
                         unsigned *delay_ms) {
  const struct sockaddr *sa = ip_sockaddr(peer);
  if (!c || !sa)
    return IOA_EBADPARAM;
  uint32_t rtt = ioa__rtt_get(c, sa, mono_ns());
  if (rtt_us)
    *rtt_us = rtt;
  if (delay_ms)
    *delay_ms = rtt ? ioa__cc_learned_delay_ms(rtt) : IOA_CC_DEFAULT_DELAY_MS;
  return rtt != 0;
}
