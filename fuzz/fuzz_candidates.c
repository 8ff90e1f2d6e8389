/* SPDX-License-Identifier: MIT */
/* libFuzzer target: resolver results -> candidate list.
 *
 * The input is a resolver's answer for each side: records of (family,
 * socktype, protocol, raw sockaddr bytes) as getaddrinfo()/c-ares hand them
 * over, converted with ioa_addr_from_sockaddr() as the resolver does, then
 * given to the connector core (src/connect_core.h) whole or one family
 * first, the way the c-ares backend delivers A and AAAA.  Checked:
 *  - ioa_addr_from_sockaddr never reads past the given length, and a
 *    success gives a well-formed address (family, length, port) that
 *    formats;
 *  - the candidates are exactly the compatible (local, peer) pairs, each
 *    once, local-major: (L1,P1) (L1,P2) (L2,P1) (L2,P2), and indices stay
 *    stable when more peers arrive;
 *  - the OPEN order: list order when sequential; when racing, every
 *    candidate is tried once, the first address's family first for the
 *    First Address Family Count (RFC 8305 section 4), then a family repeats
 *    only when the other one has no untried candidate left (RFC 8305
 *    interleaving).
 * No syscall, no network.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "connect_core.h"
#include "ioasync.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SIDE 16
#define MS 1000000ull

typedef struct ent {
  ioa__cc_meta meta;
  ioa_addr addr;
} ent;

typedef struct in_t {
  const uint8_t *d;
  size_t n, i;
} in_t;

static unsigned byte(in_t *in) { return in->i < in->n ? in->d[in->i++] : 0; }

/* One record: family selector, socktype/protocol selector, length, bytes. */
static int read_record(in_t *in, ent *e) {
  static const int fams[4] = {AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC};
  static const int sts[4] = {SOCK_STREAM, SOCK_DGRAM, 0, SOCK_RAW};
  static const int prs[4] = {0, IPPROTO_TCP, IPPROTO_UDP, 0};
  unsigned sel = byte(in);
  unsigned len = byte(in) % (sizeof(struct sockaddr_storage) + 8);
  uint8_t raw[sizeof(struct sockaddr_storage) + 8];
  memset(raw, 0, sizeof raw);
  for (unsigned k = 0; k < len; k++)
    raw[k] = (uint8_t)byte(in);
  /* Most records carry a plausible sa_family; some keep the fuzzed one. */
  if ((sel & 0xc0) != 0xc0 && len >= sizeof(sa_family_t)) {
    sa_family_t f = (sa_family_t)fams[sel & 3];
    memcpy(raw, &f, sizeof f);
  }
  /* Give the kernel-side length the real struct size most of the time. */
  if ((sel & 0x30) == 0 && len >= sizeof(sa_family_t)) {
    sa_family_t f;
    memcpy(&f, raw, sizeof f);
    if (f == AF_INET)
      len = sizeof(struct sockaddr_in);
    else if (f == AF_INET6)
      len = sizeof(struct sockaddr_in6);
  }
  int st = sts[(sel >> 2) & 3], pr = prs[(sel >> 4) & 3];
  /* The conversion under test gets a heap copy of exactly len bytes, so
   * ASan sees any read past the end. */
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, raw, len);
  memset(&e->addr, 0, sizeof e->addr);
  int r = ioa_addr_from_sockaddr((const struct sockaddr *)(const void *)copy,
                                 (socklen_t)len, st, pr, &e->addr);
  free(copy);
  if (r < 0)
    return 0;
  const ioa_addr *a = &e->addr;
  CHECK(a->family == AF_INET || a->family == AF_INET6 || a->family == AF_UNIX);
  CHECK(a->addrlen > 0 && a->addrlen <= sizeof a->addr);
  CHECK(a->addr.ss_family == a->family);
  CHECK(a->socktype == st && a->protocol == pr);
  if (a->family != AF_UNIX)
    CHECK(ioa_addr_port(a) >= 0 && ioa_addr_port(a) <= 65535);
  char text[IOA_ADDR_STRLEN];
  int fl = ioa_addr_format(a, text, sizeof text);
  CHECK(fl < 0 || (size_t)fl == strlen(text));
  e->meta.family = (uint8_t)a->family;
  e->meta.socktype = (uint8_t)a->socktype;
  e->meta.protocol = (uint16_t)a->protocol;
  return 1;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in_t in = {data, size, 0};
  unsigned cfg = byte(&in);
  int race = cfg & 1;
  int split = (cfg >> 1) & 1; /* peers delivered one family first */
  unsigned fafc = (cfg >> 2) & 3; /* First Address Family Count (0 is 1) */
  unsigned first_run = fafc ? fafc : 1;
  unsigned want_peers = byte(&in) % (MAX_SIDE + 1);
  unsigned want_locals = byte(&in) % 4;

  static ent peers[MAX_SIDE], locals[4];
  unsigned np = 0, nl = 0;
  for (unsigned k = 0; k < want_peers; k++)
    np += (unsigned)read_record(&in, &peers[np]);
  for (unsigned k = 0; k < want_locals; k++)
    nl += (unsigned)read_record(&in, &locals[nl]);

  /* c-ares order: one family's answers (a prefix after stable sorting by
   * arrival) then the rest.  Model: the first family seen comes first. */
  unsigned first_batch = np;
  if (split && np) {
    ent tmp[MAX_SIDE];
    unsigned t = 0;
    int fam = peers[0].meta.family;
    for (unsigned k = 0; k < np; k++)
      if (peers[k].meta.family == fam)
        tmp[t++] = peers[k];
    first_batch = t;
    for (unsigned k = 0; k < np; k++)
      if (peers[k].meta.family != fam)
        tmp[t++] = peers[k];
    memcpy(peers, tmp, np * sizeof peers[0]);
  }

  ioa__cc cc;
  ioa__cc_slot slots[1]; /* one slot: attempts are strictly one after another */
  static ioa__cc_cand cands[MAX_SIDE * 4];
  ioa__cc_init(&cc, race, 10, 10, 0);
  ioa__cc_set_first_family_count(&cc, fafc);
  ioa__cc_set_slots(&cc, slots, 1);
  ioa__cc_set_cand_storage(&cc, cands, (uint16_t)(sizeof cands / sizeof cands[0]));
  ioa__cc_set_locals(&cc, locals, sizeof(ent), (uint16_t)nl);
  ioa__cc_set_peers(&cc, peers, sizeof(ent), 0);
  uint64_t now = 1000 * MS;
  ioa__cc_start(&cc, now, 1, 0, 0);
  if (split && np) {
    ioa__cc_set_peers(&cc, peers, sizeof(ent), (uint16_t)first_batch);
    ioa__cc_peers_partial(&cc, now, peers[0].meta.family);
  }
  ioa__cc_set_peers(&cc, peers, sizeof(ent), (uint16_t)np);
  ioa__cc_resolved(&cc, now, 0, 0);

  /* Expected candidates, local-major, over the final lists. */
  unsigned expect = 0;
  unsigned nloc = nl ? nl : 1;
  for (unsigned l = 0; l < nloc; l++)
    for (unsigned p = 0; p < np; p++)
      if (compatible(nl ? &locals[l].meta : NULL, &peers[p].meta))
        expect++;

  /* Pull: every attempt fails at connect at once, so the next one follows.
   * Record the OPEN order. */
  unsigned order[MAX_SIDE * 4], nopen = 0;
  int done = 0, fd = 100;
  for (int guard = 0; guard < 10000 && !done; guard++) {
    ioa__cc_action a;
    ioa__cc_next(&cc, 0, &a);
    switch (a.kind) {
    case IOA_CC_ACT_OPEN:
      CHECK(nopen < sizeof order / sizeof order[0]);
      order[nopen++] = a.cand;
      ioa__cc_opened(&cc, now, a.slot, fd++, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
      break;
    case IOA_CC_ACT_TIMER:
      if (a.at > now) {
        now = a.at;
        ioa__cc_tick(&cc, now);
      }
      break;
    case IOA_CC_ACT_NONE:
      now += 50 * MS; /* nothing due: let time pass */
      ioa__cc_tick(&cc, now);
      break;
    case IOA_CC_ACT_DONE:
      done = 1;
      CHECK(a.outcome != IOA_CC_OK);
      break;
    case IOA_CC_ACT_GROW:
      CHECK(0); /* one attempt at a time: a slot is always free */
      break;
    default:
      break;
    }
  }
  CHECK(done);

  /* The candidate table: exactly the compatible pairs, local-major, once. */
  CHECK(cc.ncands == expect);
  unsigned k = 0;
  for (unsigned l = 0; l < nloc; l++)
    for (unsigned p = 0; p < np; p++) {
      if (!compatible(nl ? &locals[l].meta : NULL, &peers[p].meta))
        continue;
      /* With a split delivery the first batch's pairs were crossed first;
       * indices of earlier candidates never move, so check membership. */
      int found = 0;
      for (unsigned c = 0; c < cc.ncands; c++)
        if (cands[c].peer == p && ioa__cc_cand_local(&cands[c]) == (nl ? l : IOA_CC_NONE))
          found++;
      CHECK(found == 1);
      k++;
    }
  CHECK(k == expect);
  if (!split)
    for (unsigned c = 1; c < cc.ncands; c++) {
      unsigned l0 = ioa__cc_cand_local(&cands[c - 1]), l1 = ioa__cc_cand_local(&cands[c]);
      CHECK(l0 < l1 || (l0 == l1 && cands[c - 1].peer < cands[c].peer));
    }

  /* Every candidate tried exactly once. */
  CHECK(nopen == expect);
  for (unsigned c = 0; c < cc.ncands; c++) {
    unsigned seen = 0;
    for (unsigned o = 0; o < nopen; o++)
      seen += order[o] == c;
    CHECK(seen == 1);
  }
  if (!race) {
    for (unsigned o = 1; o < nopen; o++)
      CHECK(order[o] > order[o - 1]);
  } else if (nopen) {
    /* The first First-Address-Family-Count attempts have the first
     * address's family while it has candidates (the resolver's preference,
     * RFC 8305 section 4). */
    {
      /* Split: the first family is the one the core picked (IPv6 if the
       * first batch had it). */
      int f0 = split ? ioa__cc_peer(&cc, cands[order[0]].peer)->family : peers[0].meta.family;
      unsigned have = 0;
      for (unsigned c = 0; c < cc.ncands; c++)
        have += ioa__cc_peer(&cc, cands[c].peer)->family == f0;
      for (unsigned o = 0; o < nopen && o < first_run && o < have; o++)
        CHECK(ioa__cc_peer(&cc, cands[order[o]].peer)->family == f0);
    }
    /* Then interleaving: a family repeats only when the other has none
     * left. */
    for (unsigned o = first_run; o < nopen; o++) {
      int prev = ioa__cc_peer(&cc, cands[order[o - 1]].peer)->family;
      int cur = ioa__cc_peer(&cc, cands[order[o]].peer)->family;
      if (cur != prev)
        continue;
      int other = prev == AF_INET6 ? AF_INET : prev == AF_INET ? AF_INET6 : -1;
      for (unsigned r = o; r < nopen; r++)
        CHECK(ioa__cc_peer(&cc, cands[order[r]].peer)->family != other);
    }
  }
  ioa__cc_dispose(&cc);
  return 0;
}
