/* SPDX-License-Identifier: MIT */
/* The connector's decision core, driven with injected syscall results and a
 * fake clock: list order, ranking, Happy Eyeballs timing, timeouts, cancel in
 * every state, exactly one completion.  No sockets are opened here. */
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "connect_core.h"
#include "list.h"

#define MSEC 1000000ull
#define T0 (1000 * MSEC) /* fake clock origin: any non-zero time */
#define TAG(a, b) ((uint32_t)(a) << 8 | (uint32_t)(b))

typedef struct ent {
  ioa__cc_meta meta;
  uint32_t tag; /* test label: TAG('P', '1'), TAG('L', '2')... */
} ent;

typedef struct harness {
  ioa__cc cc;
  ioa__cc_slot slots[16];
  ioa__cc_cand cands[256];
  ent peers[32], locals[8];
  unsigned npeers, nlocals;
  /* log of pulled actions */
  ioa__cc_action opens[64];
  int nopen;
  ioa__cc_action fails[64];
  int nfail;
  int closed[64];
  int nclose;
  ioa__cc_action done;
  int ndone;
  ioa__cc_action hss[64]; /* HANDSHAKE actions */
  int nhs;
  int ndefer;
  uint64_t timer;
  int order[128]; /* kinds in pull order */
  int norder;
  int next_fd;
  int ngrow;       /* GROW actions answered */
  int refuse_grow; /* answer GROW with ioa__cc_grow_failed */
  struct order_hook *ordering; /* fake_order's answers */
} harness;

static void h_init(harness *h, int race, unsigned delay, unsigned res_delay, unsigned att_to,
                   unsigned nslots) {
  memset(h, 0, sizeof *h);
  ioa__cc_init(&h->cc, race, delay, res_delay, att_to);
  ioa__cc_set_slots(&h->cc, h->slots, (uint16_t)nslots);
  ioa__cc_set_cand_storage(&h->cc, h->cands, 256);
  h->next_fd = 100;
}

static void add_peer(harness *h, int family, int socktype, int protocol, uint32_t tag) {
  ent *e = &h->peers[h->npeers++];
  e->meta.family = (uint8_t)family;
  e->meta.socktype = (uint8_t)socktype;
  e->meta.protocol = (uint16_t)protocol;
  e->tag = tag;
  ioa__cc_set_peers(&h->cc, h->peers, sizeof(ent), (uint16_t)h->npeers);
}

static void add_local(harness *h, int family, int socktype, int protocol, uint32_t tag) {
  ent *e = &h->locals[h->nlocals++];
  e->meta.family = (uint8_t)family;
  e->meta.socktype = (uint8_t)socktype;
  e->meta.protocol = (uint16_t)protocol;
  e->tag = tag;
  ioa__cc_set_locals(&h->cc, h->locals, sizeof(ent), (uint16_t)h->nlocals);
}

/* Pull actions until there are none; returns the last kind (NONE or DEFER). */
static int drain(harness *h, unsigned flags) {
  for (int guard = 0; guard < 1000; guard++) {
    ioa__cc_action a;
    memset(&a, 0xa5, sizeof a); /* fields an action does not set stay garbage */
    ioa__cc_next(&h->cc, flags, &a);
    if (h->norder < 128)
      h->order[h->norder++] = a.kind;
    switch (a.kind) {
    case IOA_CC_ACT_NONE:
      return a.kind;
    case IOA_CC_ACT_DEFER:
      h->ndefer++;
      return a.kind;
    case IOA_CC_ACT_OPEN:
      assert_true(h->nopen < 64);
      h->opens[h->nopen++] = a;
      break;
    case IOA_CC_ACT_FAIL:
      h->fails[h->nfail++] = a;
      break;
    case IOA_CC_ACT_CLOSE:
      assert_true(a.fd >= 0);
      h->closed[h->nclose++] = a.fd;
      break;
    case IOA_CC_ACT_TIMER:
      h->timer = a.at;
      break;
    case IOA_CC_ACT_DONE:
      h->done = a;
      h->timer = 0; /* the driver stops its timer on completion */
      h->ndone++;
      break;
    case IOA_CC_ACT_HANDSHAKE:
      assert_false(flags & IOA_CC_NO_CALLBACKS);
      assert_true(a.fd >= 0 && h->nhs < 64);
      h->hss[h->nhs++] = a;
      break;
    case IOA_CC_ACT_GROW:
      /* The harness's array has room for 16: grow in place. */
      assert_true(a.slot > h->cc.nslots && a.slot <= 16);
      h->ngrow++;
      if (h->refuse_grow)
        ioa__cc_grow_failed(&h->cc);
      else
        ioa__cc_grow_slots(&h->cc, h->slots, a.slot);
      break;
    }
  }
  fail_msg("the core never ran out of actions");
  return -1;
}

/* The timer fires (if due) and the clock moves, as the driver's timer does. */
static void h_tick(harness *h, uint64_t now) {
  if (h->timer && now >= h->timer)
    h->timer = 0;
  ioa__cc_tick(&h->cc, now);
}

/* Tag of the peer / local of the most recent OPEN's candidate. */
static uint32_t open_peer(const harness *h, int i) {
  return h->peers[h->cands[h->opens[i].cand].peer].tag;
}
static uint32_t open_local(const harness *h, int i) {
  unsigned l = ioa__cc_cand_local(&h->cands[h->opens[i].cand]);
  return l == IOA_CC_NONE ? 0 : h->locals[l].tag;
}

/* Feed the result of the latest OPEN. */
static int result(harness *h, uint64_t now, ioa_syscall failed_at, int err, int connected) {
  ioa__cc_action *o = &h->opens[h->nopen - 1];
  int fd = failed_at == IOA_SYSCALL_SOCKET ? -1 : h->next_fd++;
  ioa__cc_opened(&h->cc, now, o->slot, fd, failed_at, err, connected);
  drain(h, 0);
  return fd;
}

/* ---------------------------------------------------------------- tests */

static void seq_local_major_cross_product_skips_mismatches(void **state) {
  (void)state;
  harness h;
  h_init(&h, 0, 0, 0, 0, 1);
  add_local(&h, AF_INET, SOCK_STREAM, 0, TAG('L', '1'));
  add_local(&h, AF_INET6, SOCK_STREAM, 0, TAG('L', '2'));
  add_local(&h, AF_INET, SOCK_DGRAM, 0, TAG('L', '3')); /* socktype disagrees with every peer */
  add_local(&h, AF_INET, 0, 0, TAG('L', '4'));          /* socktype 0: any */
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '1'));
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('P', '2'));
  add_peer(&h, AF_INET, SOCK_STREAM, IPPROTO_SCTP, TAG('P', '3'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  static const uint32_t want[][2] = {
      {TAG('L', '1'), TAG('P', '1')}, {TAG('L', '1'), TAG('P', '3')}, {TAG('L', '2'), TAG('P', '2')}, {TAG('L', '4'), TAG('P', '1')}, {TAG('L', '4'), TAG('P', '3')}};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(h.nopen, i + 1);
    assert_int_equal(open_local(&h, i), want[i][0]);
    assert_int_equal(open_peer(&h, i), want[i][1]);
    int fd = result(&h, T0 + (uint64_t)i, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
    /* on_fail with the fd still open, then the close, then the next open */
    assert_int_equal(h.fails[i].syscall, IOA_SYSCALL_CONNECT);
    assert_int_equal(h.fails[i].err, -ECONNREFUSED);
    assert_int_equal(h.fails[i].fd, fd);
    assert_int_equal(h.closed[i], fd);
  }
  assert_int_equal(h.cc.ncands, 5);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_CONNECT_ERROR);
  assert_int_equal(h.done.syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(h.done.err, -ECONNREFUSED);
  size_t n;
  const ioa__cc_failure *f = ioa__cc_failures(&h.cc, &n);
  assert_int_equal(n, 5);
  assert_int_equal(f[4].start_ns, T0 + 3); /* opened when the 4th failed */
  assert_int_equal(f[4].end_ns, T0 + 4);
  ioa__cc_dispose(&h.cc);
}

static void seq_mixed_families_keep_list_order(void **state) {
  (void)state;
  harness h;
  h_init(&h, 0, 0, 0, 0, 1);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'A');
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'B');
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'C');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  const uint32_t want[] = {'A', 'B', 'C'};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(open_peer(&h, i), want[i]);
    assert_int_equal(h.timer, 0); /* sequential, no timeouts: no timer at all */
    if (i < 2)
      result(&h, T0, IOA_SYSCALL_CONNECT, -ENETUNREACH, 0);
  }
  ioa__cc_opened(&h.cc, T0, h.opens[2].slot, 7, IOA_SYSCALL_NONE, 0, 0); /* in progress */
  drain(&h, 0);
  assert_int_equal(h.ndone, 0);
  ioa__cc_connected(&h.cc, T0 + MSEC, h.opens[2].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_OK);
  assert_int_equal(h.done.fd, 7);
  assert_int_equal(h.nclose, 2); /* the two failures; the winner is handed over */
  ioa__cc_dispose(&h.cc);
}

/* connect > bind > socket, whatever the order they happened in. */
static void ranking(void **state) {
  (void)state;
  static const struct {
    ioa_syscall seq[3];
    ioa_syscall want;
  } cases[] = {
      {{IOA_SYSCALL_CONNECT, IOA_SYSCALL_BIND, IOA_SYSCALL_SOCKET}, IOA_SYSCALL_CONNECT},
      {{IOA_SYSCALL_SOCKET, IOA_SYSCALL_BIND, IOA_SYSCALL_SOCKET}, IOA_SYSCALL_BIND},
      {{IOA_SYSCALL_SOCKET, IOA_SYSCALL_SOCKET, IOA_SYSCALL_SOCKET}, IOA_SYSCALL_SOCKET},
      {{IOA_SYSCALL_SOCKOPT, IOA_SYSCALL_SOCKET, IOA_SYSCALL_SOCKET}, IOA_SYSCALL_SOCKOPT},
      {{IOA_SYSCALL_BIND, IOA_SYSCALL_SOCKOPT, IOA_SYSCALL_CONNECT}, IOA_SYSCALL_CONNECT},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    harness h;
    h_init(&h, 0, 0, 0, 0, 1);
    for (int i = 0; i < 3; i++)
      add_peer(&h, AF_INET, SOCK_STREAM, 0, (uint32_t)i);
    ioa__cc_start(&h.cc, T0, 0, 0, 0);
    drain(&h, 0);
    for (int i = 0; i < 3; i++) {
      int err = -(int)(10 + cases[c].seq[i]); /* a distinct code per syscall kind */
      result(&h, T0, cases[c].seq[i], err, 0);
    }
    assert_int_equal(h.ndone, 1);
    assert_int_equal(h.done.syscall, cases[c].want);
    assert_int_equal(h.done.err, -(int)(10 + cases[c].want));
    /* socket failures have no fd to close */
    int with_fd = 0;
    for (int i = 0; i < 3; i++)
      with_fd += cases[c].seq[i] != IOA_SYSCALL_SOCKET;
    assert_int_equal(h.nclose, with_fd);
    ioa__cc_dispose(&h.cc);
  }
}

static void zero_candidates_is_an_error(void **state) {
  (void)state;
  harness h;
  h_init(&h, 0, 0, 0, 0, 1);
  add_local(&h, AF_INET6, SOCK_STREAM, 0, 'L');
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'P');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  assert_int_equal(h.nopen, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_CONNECT_ERROR);
  assert_int_equal(h.done.syscall, IOA_SYSCALL_NONE);
  assert_int_equal(h.done.err, IOA_ENOCANDIDATES);
}

static void immediate_success_and_no_callbacks_flag(void **state) {
  (void)state;
  harness h;
  h_init(&h, 0, 0, 0, 0, 1);
  add_peer(&h, AF_INET, SOCK_DGRAM, 0, 'U');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  /* inside ioa_connect: the open may run, the completion must wait */
  assert_int_equal(drain(&h, IOA_CC_NO_CALLBACKS), IOA_CC_ACT_NONE);
  assert_int_equal(h.nopen, 1);
  ioa__cc_opened(&h.cc, T0, h.opens[0].slot, 9, IOA_SYSCALL_NONE, 0, 1);
  assert_int_equal(drain(&h, IOA_CC_NO_CALLBACKS), IOA_CC_ACT_DEFER);
  assert_int_equal(h.ndone, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_OK);
  assert_int_equal(h.done.fd, 9);
  /* a stray event afterwards changes nothing */
  ioa__cc_connected(&h.cc, T0, 0, 0);
  ioa__cc_cancel(&h.cc, T0);
  h_tick(&h, T0 + 10 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.nclose, 0);
}

static void immediate_failure_waits_for_callbacks(void **state) {
  (void)state;
  harness h;
  h_init(&h, 0, 0, 0, 0, 1);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'A');
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'B');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, IOA_CC_NO_CALLBACKS);
  ioa__cc_opened(&h.cc, T0, 0, 5, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
  assert_int_equal(drain(&h, IOA_CC_NO_CALLBACKS), IOA_CC_ACT_DEFER);
  assert_int_equal(h.nfail, 0);
  assert_int_equal(h.nclose, 0); /* fd stays open until on_fail has seen it */
  assert_int_equal(h.nopen, 1);
  drain(&h, 0);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.nclose, 1);
  assert_int_equal(h.nopen, 2);
  /* order: FAIL, CLOSE, OPEN */
  int seen = 0;
  for (int i = 0; i < h.norder; i++) {
    if (h.order[i] == IOA_CC_ACT_FAIL)
      assert_int_equal(seen++, 0);
    else if (h.order[i] == IOA_CC_ACT_CLOSE)
      assert_int_equal(seen++, 1);
    else if (h.order[i] == IOA_CC_ACT_OPEN && seen >= 2)
      seen++;
  }
  assert_int_equal(seen, 3);
  ioa__cc_cancel(&h.cc, T0);
  drain(&h, 0);
  ioa__cc_dispose(&h.cc);
}

/* RFC 8305: families interleaved starting with the resolver's first; next
 * attempt after the delay, or at once when one fails. */
static void race_interleaves_and_paces(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 0, 0, 0, 16);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'a'));
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'b'));
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'c'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'a'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'b'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  assert_int_equal(h.nopen, 1);
  assert_int_equal(open_peer(&h, 0), TAG('6', 'a'));
  result(&h, T0, IOA_SYSCALL_NONE, 0, 0); /* in progress */
  assert_int_equal(h.timer, T0 + 250 * MSEC);
  h_tick(&h, T0 + 249 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 1); /* not yet */
  h_tick(&h, T0 + 250 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 2);
  assert_int_equal(open_peer(&h, 1), TAG('4', 'a'));
  result(&h, T0 + 250 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 500 * MSEC);
  /* 4a fails at 260 ms: 6b starts at once, not at 500 ms */
  ioa__cc_connected(&h.cc, T0 + 260 * MSEC, h.opens[1].slot, -ECONNREFUSED);
  drain(&h, 0);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.nopen, 3);
  assert_int_equal(open_peer(&h, 2), TAG('6', 'b'));
  assert_int_equal(h.opens[2].slot != h.opens[0].slot, 1);
  result(&h, T0 + 260 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 510 * MSEC);
  h_tick(&h, T0 + 510 * MSEC);
  drain(&h, 0);
  assert_int_equal(open_peer(&h, 3), TAG('4', 'b'));
  int fd4b = result(&h, T0 + 510 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  /* 4b wins: 6a and 6b (still connecting) are closed, not reported */
  int closes_before = h.nclose;
  ioa__cc_connected(&h.cc, T0 + 520 * MSEC, h.opens[3].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.nclose - closes_before, 2);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.fd, fd4b);
  assert_int_equal(h.timer, 0);
  ioa__cc_dispose(&h.cc);
}

static void race_attempt_delay_is_configurable(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 10, 0, 0, 4);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'a');
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'b');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 10 * MSEC);
  h_tick(&h, T0 + 10 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 2);
  assert_int_equal(open_peer(&h, 1), 'b'); /* one family: list order */
  result(&h, T0 + 10 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, 0); /* nothing left to start */
  ioa__cc_cancel(&h.cc, T0 + 11 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nclose, 2);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.err, -ECANCELED);
}

/* A before AAAA: wait the resolution delay; AAAA within it goes first. */
static void resolution_delay_aaaa_in_time(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 0, 0, 0, 16);
  ioa__cc_start(&h.cc, T0, 1, 0, 0);
  drain(&h, 0);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'a'));
  ioa__cc_peers_partial(&h.cc, T0 + 5 * MSEC, AF_INET);
  drain(&h, 0);
  assert_int_equal(h.nopen, 0);
  assert_int_equal(h.timer, T0 + 55 * MSEC);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'a'));
  ioa__cc_peers_partial(&h.cc, T0 + 30 * MSEC, AF_INET6);
  drain(&h, 0);
  assert_int_equal(h.nopen, 1);
  assert_int_equal(open_peer(&h, 0), TAG('6', 'a')); /* IPv6 first once it is here */
  result(&h, T0 + 30 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_resolved(&h.cc, T0 + 31 * MSEC, 0, 0); /* the final answer adds nothing new */
  drain(&h, 0);
  h_tick(&h, T0 + 280 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 2);
  assert_int_equal(open_peer(&h, 1), TAG('4', 'a'));
  ioa__cc_cancel(&h.cc, T0 + 281 * MSEC);
  drain(&h, 0);
  ioa__cc_opened(&h.cc, T0 + 281 * MSEC, h.opens[1].slot, 77, IOA_SYSCALL_NONE, 0, 0);
  drain(&h, 0); /* cancelled while opening: the late fd is closed */
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.nclose, 2);
  assert_int_equal(h.closed[1], 77);
}

static void resolution_delay_expires_then_late_aaaa(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 0, 0, 0, 16);
  ioa__cc_start(&h.cc, T0, 1, 0, 0);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'a'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'b'));
  ioa__cc_peers_partial(&h.cc, T0, AF_INET);
  drain(&h, 0);
  h_tick(&h, T0 + 50 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 1);
  assert_int_equal(open_peer(&h, 0), TAG('4', 'a'));
  result(&h, T0 + 50 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  /* AAAA arrives late: it is next (interleaving), before 4b */
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'a'));
  ioa__cc_resolved(&h.cc, T0 + 100 * MSEC, 0, 0);
  drain(&h, 0);
  h_tick(&h, T0 + 300 * MSEC);
  drain(&h, 0);
  assert_int_equal(open_peer(&h, 1), TAG('6', 'a'));
  result(&h, T0 + 300 * MSEC, IOA_SYSCALL_CONNECT, -ENETUNREACH, 0);
  assert_int_equal(open_peer(&h, 2), TAG('4', 'b'));
  result(&h, T0 + 300 * MSEC, IOA_SYSCALL_NONE, 0, 1);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_OK);
  ioa__cc_dispose(&h.cc);
}

/* ---- RFC 8305 section 4: the first family when answers come per family
 *
 * The driver's hook ranks the two families' heads (RFC 6724, the
 * resolver's sorter); this one answers as told and logs what it was asked. */
typedef struct order_hook {
  int answer; /* non-zero: b (the IPv4 head) ranks first */
  int calls;
  uint32_t a_tag, b_tag;
} order_hook;

static int fake_order(ioa__cc *cc, const ioa__cc_meta *a, const ioa__cc_meta *b) {
  order_hook *o = IOA__CONTAINER_OF(cc, harness, cc)->ordering;
  o->calls++;
  o->a_tag = ((const ent *)(const void *)a)->tag;
  o->b_tag = ((const ent *)(const void *)b)->tag;
  return o->answer;
}

/* Let the attempts from the next one on fail at once, each opening the
 * next; their peers' tags as "6a 4a ...". */
static void tried_order(harness *h, char *out, size_t size) {
  out[0] = '\0';
  for (int i = 0; i < 16 && h->ndone == 0 && i < h->nopen; i++) {
    uint32_t t = open_peer(h, i);
    char w[4] = {(char)(t >> 8), (char)t, ' ', 0};
    if (strlen(out) + 4 <= size)
      strcat(out, w);
    result(h, h->cc.now_ns, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
  }
  size_t n = strlen(out);
  if (n)
    out[n - 1] = '\0';
}

/* A, then AAAA within the Resolution Delay (by on_partial, or with the
 * final answer): both are here as connecting begins, so the heads' ranking
 * picks the first family, and the families alternate from it. */
static void family_order_ranks_the_heads(void **state) {
  (void)state;
  for (int via_final = 0; via_final < 2; via_final++) {
    for (int answer = 0; answer < 2; answer++) {
      harness h;
      order_hook o = {.answer = answer};
      h_init(&h, 1, 0, 0, 0, 16);
      h.ordering = &o;
      ioa__cc_set_family_order(&h.cc, fake_order);
      ioa__cc_start(&h.cc, T0, 1, 0, 0);
      add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'a'));
      add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'b'));
      ioa__cc_peers_partial(&h.cc, T0, AF_INET);
      drain(&h, 0);
      assert_int_equal(h.nopen, 0); /* the Resolution Delay runs */
      assert_int_equal(o.calls, 0);
      add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'a'));
      add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'b'));
      if (via_final)
        ioa__cc_resolved(&h.cc, T0 + 30 * MSEC, 0, 0);
      else
        ioa__cc_peers_partial(&h.cc, T0 + 30 * MSEC, AF_INET6);
      drain(&h, 0);
      assert_int_equal(h.nopen, 1);
      assert_int_equal(o.calls, 1);
      assert_int_equal(o.a_tag, TAG('6', 'a')); /* the heads, IPv6 first */
      assert_int_equal(o.b_tag, TAG('4', 'a'));
      char got[64];
      tried_order(&h, got, sizeof got);
      assert_string_equal(got, answer ? "4a 6a 4b 6b" : "6a 4a 6b 4b");
      assert_int_equal(o.calls, 1); /* asked once, when connecting began */
      if (!via_final) { /* the final answer, nothing new in it: every attempt failed */
        ioa__cc_resolved(&h.cc, h.cc.now_ns, 0, 0);
        drain(&h, 0);
      }
      assert_int_equal(h.ndone, 1);
      assert_int_equal(h.done.err, -ECONNREFUSED);
      ioa__cc_dispose(&h.cc);
    }
  }
}

/* One family alone when connecting begins goes first, whatever the hook
 * would say: A alone at the end of the Resolution Delay, or AAAA first,
 * which starts at once (RFC 8305 section 3); the other family, later,
 * takes its turn in the alternation. */
static void family_order_one_family_alone(void **state) {
  (void)state;
  for (int aaaa_first = 0; aaaa_first < 2; aaaa_first++) {
    harness h;
    order_hook o = {.answer = aaaa_first}; /* the other family, were it asked */
    h_init(&h, 1, 0, 0, 0, 16);
    h.ordering = &o;
    ioa__cc_set_family_order(&h.cc, fake_order);
    ioa__cc_start(&h.cc, T0, 1, 0, 0);
    int first = aaaa_first ? AF_INET6 : AF_INET, second = aaaa_first ? AF_INET : AF_INET6;
    char f = aaaa_first ? '6' : '4', s2 = aaaa_first ? '4' : '6';
    add_peer(&h, first, SOCK_STREAM, 0, TAG(f, 'a'));
    add_peer(&h, first, SOCK_STREAM, 0, TAG(f, 'b'));
    ioa__cc_peers_partial(&h.cc, T0, first);
    drain(&h, 0);
    if (!aaaa_first) {
      assert_int_equal(h.nopen, 0);
      h_tick(&h, T0 + 50 * MSEC); /* the Resolution Delay ends, A alone */
      drain(&h, 0);
    }
    assert_int_equal(h.nopen, 1);
    assert_int_equal(open_peer(&h, 0), TAG(f, 'a'));
    result(&h, h.cc.now_ns, IOA_SYSCALL_NONE, 0, 0); /* in progress */
    add_peer(&h, second, SOCK_STREAM, 0, TAG(s2, 'a'));
    ioa__cc_peers_partial(&h.cc, T0 + 60 * MSEC, second);
    drain(&h, 0);
    h_tick(&h, h.timer);
    drain(&h, 0);
    assert_int_equal(h.nopen, 2);
    assert_int_equal(open_peer(&h, 1), TAG(s2, 'a')); /* alternation */
    assert_int_equal(o.calls, 0);
    ioa__cc_cancel(&h.cc, h.cc.now_ns);
    drain(&h, 0);
    ioa__cc_opened(&h.cc, h.cc.now_ns, h.opens[1].slot, 90, IOA_SYSCALL_NONE, 0, 0);
    drain(&h, 0);
    assert_int_equal(h.ndone, 1);
    assert_int_equal(h.nclose, 2);
    ioa__cc_dispose(&h.cc);
  }
}

/* An answer that came whole is in the resolver's order already: its first
 * address's family goes first and the hook is not asked. */
static void family_order_whole_answer_keeps_its_order(void **state) {
  (void)state;
  for (int v6_head = 0; v6_head < 2; v6_head++) {
    harness h;
    order_hook o = {.answer = v6_head}; /* the opposite of the list, were it asked */
    h_init(&h, 1, 0, 0, 0, 16);
    h.ordering = &o;
    ioa__cc_set_family_order(&h.cc, fake_order);
    ioa__cc_start(&h.cc, T0, 1, 0, 0);
    add_peer(&h, v6_head ? AF_INET6 : AF_INET, SOCK_STREAM, 0, TAG('h', 'd'));
    add_peer(&h, v6_head ? AF_INET : AF_INET6, SOCK_STREAM, 0, TAG('n', 'x'));
    ioa__cc_resolved(&h.cc, T0, 0, 0);
    drain(&h, 0);
    char got[64];
    tried_order(&h, got, sizeof got);
    assert_string_equal(got, "hd nx");
    assert_int_equal(o.calls, 0);
    assert_int_equal(h.ndone, 1);
    ioa__cc_dispose(&h.cc);
  }
}

static void sequential_waits_for_the_full_answer(void **state) {
  (void)state;
  harness h;
  h_init(&h, 0, 0, 0, 0, 1);
  ioa__cc_start(&h.cc, T0, 1, 1, 0);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'P');
  ioa__cc_peers_partial(&h.cc, T0, AF_INET);
  drain(&h, 0);
  assert_int_equal(h.nopen, 0);
  assert_int_equal(h.timer, 0);
  ioa__cc_resolved(&h.cc, T0, 0, 0);
  drain(&h, 0);
  assert_int_equal(h.nopen, 0); /* locals not here yet */
  add_local(&h, AF_INET, SOCK_STREAM, 0, 'L');
  ioa__cc_resolved(&h.cc, T0, 1, 0);
  drain(&h, 0);
  assert_int_equal(h.nopen, 1);
  assert_int_equal(open_local(&h, 0), 'L');
  result(&h, T0, IOA_SYSCALL_BIND, -EADDRNOTAVAIL, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.syscall, IOA_SYSCALL_BIND);
  assert_int_equal(h.done.err, -EADDRNOTAVAIL);
  ioa__cc_dispose(&h.cc);
}

static void resolve_error_completes(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 0, 0, 0, 16);
  ioa__cc_start(&h.cc, T0, 1, 0, 0);
  drain(&h, 0);
  ioa__cc_resolved(&h.cc, T0 + MSEC, 0, IOA_EAI_NONAME);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_RESOLVE_ERROR);
  assert_int_equal(h.done.err, IOA_EAI_NONAME);
  ioa__cc_resolved(&h.cc, T0 + MSEC, 1, 0); /* late: ignored */
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
}

static void attempt_timeout_moves_on(void **state) {
  (void)state;
  harness h;
  h_init(&h, 0, 0, 0, 100, 1);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'X'); /* black hole */
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'Y');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  int fd = result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 100 * MSEC);
  h_tick(&h, T0 + 100 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(h.fails[0].err, -ETIMEDOUT);
  assert_int_equal(h.fails[0].fd, fd);
  assert_int_equal(h.closed[0], fd);
  assert_int_equal(h.nopen, 2);
  assert_int_equal(open_peer(&h, 1), 'Y');
  result(&h, T0 + 100 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 200 * MSEC);
  ioa__cc_connected(&h.cc, T0 + 150 * MSEC, h.opens[1].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_OK);
  assert_int_equal(h.timer, 0);
  size_t n;
  const ioa__cc_failure *f = ioa__cc_failures(&h.cc, &n);
  assert_int_equal(n, 1);
  assert_int_equal(f[0].end_ns - f[0].start_ns, 100 * MSEC);
  ioa__cc_dispose(&h.cc);
}

static void overall_deadline(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 0, 0, 0, 16);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'a');
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'b');
  ioa__cc_start(&h.cc, T0, 0, 0, 400);
  drain(&h, 0);
  result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  h_tick(&h, T0 + 250 * MSEC);
  drain(&h, 0);
  result(&h, T0 + 250 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 400 * MSEC);
  h_tick(&h, T0 + 400 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nfail, 2); /* both in-flight attempts: ETIMEDOUT */
  assert_int_equal(h.fails[0].err, -ETIMEDOUT);
  assert_int_equal(h.nclose, 2);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.syscall, IOA_SYSCALL_NONE);
  assert_int_equal(h.done.err, -ETIMEDOUT);
  ioa__cc_dispose(&h.cc);
}

static void overall_deadline_while_resolving(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 0, 0, 0, 16);
  ioa__cc_start(&h.cc, T0, 1, 0, 300);
  drain(&h, 0);
  assert_int_equal(h.timer, T0 + 300 * MSEC);
  h_tick(&h, T0 + 300 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.err, -ETIMEDOUT);
  assert_int_equal(h.done.outcome, IOA_CC_CONNECT_ERROR);
}

/* Cancel in each state: exactly one completion, every fd closed once. */
static void cancel_everywhere(void **state) {
  (void)state;
  for (int when = 0; when < 7; when++) {
    harness h;
    h_init(&h, 1, 0, 0, 0, 16);
    add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'a');
    add_peer(&h, AF_INET, SOCK_STREAM, 0, 'b');
    add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'c');
    int opened_fds = 0;
    if (when == 0) { /* resolving */
      ioa__cc_start(&h.cc, T0, 1, 0, 0);
      drain(&h, 0);
    } else {
      ioa__cc_start(&h.cc, T0, 0, 0, 0);
      drain(&h, 0);
    }
    if (when >= 1) { /* one attempt connecting */
      result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
      opened_fds++;
    }
    if (when >= 2) { /* several in flight */
      h_tick(&h, T0 + 250 * MSEC);
      drain(&h, 0);
      result(&h, T0 + 250 * MSEC, IOA_SYSCALL_NONE, 0, 0);
      opened_fds++;
    }
    if (when == 3) { /* a failure not yet reported (inside ioa_connect) */
      ioa__cc_connected(&h.cc, T0 + 260 * MSEC, h.opens[0].slot, -ECONNREFUSED);
      drain(&h, IOA_CC_NO_CALLBACKS);
    }
    if (when == 4) { /* connected, completion not yet delivered */
      ioa__cc_connected(&h.cc, T0 + 260 * MSEC, h.opens[1].slot, 0);
      drain(&h, IOA_CC_NO_CALLBACKS);
    }
    if (when == 5) { /* between OPEN and its result */
      h_tick(&h, T0 + 500 * MSEC);
      drain(&h, 0);
      assert_int_equal(h.nopen, 3);
    }
    if (when == 6) { /* after completion: no-op */
      ioa__cc_connected(&h.cc, T0 + 260 * MSEC, h.opens[1].slot, 0);
      drain(&h, 0);
      assert_int_equal(h.ndone, 1);
    }
    ioa__cc_cancel(&h.cc, T0 + 600 * MSEC);
    drain(&h, 0);
    if (when == 5) {
      ioa__cc_opened(&h.cc, T0 + 600 * MSEC, h.opens[2].slot, 55, IOA_SYSCALL_NONE, 0, 0);
      drain(&h, 0);
      opened_fds++;
    }
    assert_int_equal(h.ndone, 1);
    if (when == 6) {
      assert_int_equal(h.done.outcome, IOA_CC_OK);
      assert_int_equal(h.nclose, 1); /* the loser; the winner is the caller's */
    } else {
      assert_int_equal(h.done.outcome, IOA_CC_CONNECT_ERROR);
      assert_int_equal(h.done.err, -ECANCELED);
      assert_int_equal(h.done.syscall, IOA_SYSCALL_NONE);
      assert_int_equal(h.nfail, 0); /* cancelled: no on_fail afterwards */
      assert_int_equal(h.nclose, opened_fds);
    }
    for (int i = 0; i < h.nclose; i++)
      for (int j = i + 1; j < h.nclose; j++)
        assert_int_not_equal(h.closed[i], h.closed[j]);
    assert_int_equal(h.timer, 0);
    ioa__cc_dispose(&h.cc);
  }
}

/* RFC 8305 section 5: at the in-flight limit the next attempt still starts
 * when due; the oldest attempt gives its slot up, reported as abandoned
 * (on_fail sees its fd open; the CLOSE follows the report). */
static void race_limit_abandons_oldest(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 10, 0, 0, 1);
  ioa__cc_set_max_inflight(&h.cc, 2);
  for (int i = 0; i < 4; i++)
    add_peer(&h, AF_INET, SOCK_STREAM, 0, (uint32_t)i);
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  int fd0 = result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 10 * MSEC);
  h_tick(&h, T0 + 10 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ngrow, 1); /* one slot to start with: it asked for a second */
  assert_int_equal(h.cc.nslots, 2);
  assert_int_equal(h.nopen, 2);
  result(&h, T0 + 10 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  /* Both slots busy, more to try: the timer is armed for the next attempt. */
  assert_int_equal(h.timer, T0 + 20 * MSEC);
  h_tick(&h, T0 + 20 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ngrow, 1); /* at the limit: no more slots */
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(h.fails[0].err, IOA_EABANDONED);
  assert_int_equal(h.fails[0].fd, fd0);
  assert_int_equal(h.nclose, 1);
  assert_int_equal(h.closed[0], fd0);
  assert_int_equal(h.nopen, 3);
  assert_int_equal(h.opens[2].slot, h.opens[0].slot);
  assert_int_equal(open_peer(&h, 2), 2);
  /* FAIL, then CLOSE, then OPEN */
  int i_fail = -1, i_close = -1, i_open = -1;
  for (int i = 0; i < h.norder; i++) {
    if (h.order[i] == IOA_CC_ACT_FAIL)
      i_fail = i;
    if (h.order[i] == IOA_CC_ACT_CLOSE)
      i_close = i;
    if (h.order[i] == IOA_CC_ACT_OPEN)
      i_open = i;
  }
  assert_true(i_fail >= 0 && i_fail < i_close && i_close < i_open);
  result(&h, T0 + 20 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  /* A refusal frees a slot the usual way: the last one starts at once. */
  ioa__cc_connected(&h.cc, T0 + 25 * MSEC, h.opens[1].slot, -ECONNREFUSED);
  drain(&h, 0);
  assert_int_equal(h.nopen, 4);
  assert_int_equal(open_peer(&h, 3), 3);
  ioa__cc_cancel(&h.cc, T0 + 40 * MSEC);
  drain(&h, 0);
  ioa__cc_opened(&h.cc, T0 + 40 * MSEC, h.opens[3].slot, -1, IOA_SYSCALL_SOCKET, -EMFILE, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.nclose, 3); /* fd0 (abandoned), 1 (refused), 2 (cancelled) */
  ioa__cc_dispose(&h.cc);
}

/* An abandoned attempt is the connector's decision, not the network's: it
 * never becomes the completion's error.  Also: a GROW that cannot be
 * served makes the slots there are the limit. */
static void abandoned_never_ranks(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 10, 0, 0, 1);
  h.refuse_grow = 1;
  for (int i = 0; i < 3; i++)
    add_peer(&h, AF_INET, SOCK_STREAM, 0, (uint32_t)i);
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  h_tick(&h, T0 + 10 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ngrow, 1);
  assert_int_equal(h.cc.max_inflight, 1);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].err, IOA_EABANDONED);
  assert_int_equal(h.nopen, 2);
  result(&h, T0 + 10 * MSEC, IOA_SYSCALL_SOCKET, -EMFILE, 0);
  assert_int_equal(h.nopen, 3);
  result(&h, T0 + 10 * MSEC, IOA_SYSCALL_SOCKET, -EMFILE, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_CONNECT_ERROR);
  assert_int_equal(h.done.syscall, IOA_SYSCALL_SOCKET);
  assert_int_equal(h.done.err, -EMFILE);
  ioa__cc_dispose(&h.cc);
}

/* 64 black holes before a live address, 10 ms attempt delay, at most 16 in
 * flight: the live address is tried 640 ms in and wins.  Every candidate is
 * tried once, never more than 16 at a time; the 49 attempts that had to
 * make room are reported as abandoned, the 15 still in flight at the win
 * are closed without a report. */
static void race_64_black_holes_then_live(void **state) {
  (void)state;
  enum { HOLES = 64, N = HOLES + 1 };
  static ioa__cc_slot slots[16];
  static ioa__cc_cand cands[N];
  static ent peers[N];
  static uint8_t fd_state[200]; /* 0 unused, 1 open, 2 closed, 3 handed over */
  ioa__cc cc;
  memset(fd_state, 0, sizeof fd_state);
  ioa__cc_init(&cc, 1, 10, 0, 0);
  ioa__cc_set_slots(&cc, slots, 1);
  ioa__cc_set_cand_storage(&cc, cands, N);
  for (int i = 0; i < N; i++)
    peers[i] = (ent){{AF_INET, SOCK_STREAM, 0}, (uint32_t)i};
  ioa__cc_set_peers(&cc, peers, sizeof(ent), N);
  uint64_t now = T0, timer = 0;
  int tried[N] = {0}, abandoned = 0, grows = 0, done = 0, live_slot = -1, next_fd = 10;
  ioa__cc_start(&cc, now, 0, 0, 0);
  for (int step = 0; step < 10000 && !done; step++) {
    ioa__cc_action a;
    switch (ioa__cc_next(&cc, 0, &a)) {
    case IOA_CC_ACT_NONE:
      if (live_slot >= 0) { /* the live address answers 1 ms after its SYN */
        ioa__cc_connected(&cc, now, (unsigned)live_slot, 0);
      } else {
        assert_true(timer != 0); /* the next attempt must be scheduled */
        now = timer > now ? timer : now;
        timer = 0;
        ioa__cc_tick(&cc, now);
      }
      break;
    case IOA_CC_ACT_OPEN: {
      unsigned peer = cc.cands[a.cand].peer;
      assert_int_equal(tried[peer]++, 0);
      assert_true(cc.nactive <= 16);
      int fd = next_fd++;
      fd_state[fd] = 1;
      ioa__cc_opened(&cc, now, a.slot, fd, IOA_SYSCALL_NONE, 0, 0); /* in progress */
      if (peer == HOLES) {
        live_slot = a.slot;
        assert_int_equal(now, T0 + HOLES * 10 * MSEC); /* its turn came on time */
        now += MSEC;
      }
      break;
    }
    case IOA_CC_ACT_FAIL:
      assert_int_equal(a.err, IOA_EABANDONED);
      assert_int_equal(fd_state[a.fd], 1);
      abandoned++;
      break;
    case IOA_CC_ACT_CLOSE:
      assert_int_equal(fd_state[a.fd], 1);
      fd_state[a.fd] = 2;
      break;
    case IOA_CC_ACT_TIMER:
      timer = a.at;
      break;
    case IOA_CC_ACT_GROW:
      assert_true(a.slot <= 16);
      grows++;
      ioa__cc_grow_slots(&cc, slots, a.slot);
      break;
    case IOA_CC_ACT_DONE:
      assert_int_equal(a.outcome, IOA_CC_OK);
      assert_int_equal(cc.peers == (const unsigned char *)peers, 1);
      assert_int_equal(cc.cands[a.cand].peer, HOLES);
      fd_state[a.fd] = 3;
      done = 1;
      break;
    default:
      fail_msg("unexpected action %d", a.kind);
    }
  }
  assert_true(done);
  /* Closes after DONE (the losers). */
  for (;;) {
    ioa__cc_action a;
    ioa__cc_action_kind k = ioa__cc_next(&cc, 0, &a);
    if (k == IOA_CC_ACT_NONE)
      break;
    if (k == IOA_CC_ACT_CLOSE) {
      assert_int_equal(fd_state[a.fd], 1);
      fd_state[a.fd] = 2;
    }
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(tried[i], 1);
  assert_int_equal(grows, 4); /* 1 -> 2 -> 4 -> 8 -> 16 */
  assert_int_equal(cc.nslots, 16);
  assert_int_equal(abandoned, HOLES - 15);
  for (int fd = 10; fd < next_fd; fd++)
    assert_true(fd_state[fd] == 2 || fd_state[fd] == 3);
  size_t n;
  ioa__cc_failures(&cc, &n);
  assert_int_equal(n, HOLES - 15);
  ioa__cc_dispose(&cc);
}

/* RFC 8305 section 4: First Address Family Count attempts of the first
 * family, then the families alternate; a count above what the first
 * family has falls through to the other. */
static void first_address_family_count(void **state) {
  (void)state;
  static const struct {
    unsigned count;
    const char *want;
  } cases[] = {{0, "6a 4a 6b 4b 6c"}, {1, "6a 4a 6b 4b 6c"}, {2, "6a 6b 4a 6c 4b"},
               {3, "6a 6b 6c 4a 4b"}, {9, "6a 6b 6c 4a 4b"}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    harness h;
    h_init(&h, 1, 10, 0, 0, 16);
    ioa__cc_set_first_family_count(&h.cc, cases[c].count);
    add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'a'));
    add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'b'));
    add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'c'));
    add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'a'));
    add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'b'));
    ioa__cc_start(&h.cc, T0, 0, 0, 0);
    drain(&h, 0);
    char got[64] = "";
    for (int i = 0; i < 5; i++) {
      assert_int_equal(h.nopen, i + 1);
      uint32_t t = open_peer(&h, i);
      char w[4] = {(char)(t >> 8), (char)t, i < 4 ? ' ' : 0, 0};
      strcat(got, w);
      result(&h, T0, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0); /* next at once */
    }
    assert_string_equal(got, cases[c].want);
    assert_int_equal(h.ndone, 1);
    ioa__cc_dispose(&h.cc);
  }
}

/* The first family must be one that has a candidate: here the resolver's
 * first address (a unix path) pairs with no local address, so the first
 * candidate's family (IPv4) goes first for the First Address Family Count,
 * not whatever candidate comes next in the list. */
static void first_family_has_a_candidate(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 10, 0, 0, 16);
  ioa__cc_set_first_family_count(&h.cc, 2);
  add_local(&h, AF_INET, SOCK_STREAM, 0, TAG('L', '4'));
  add_local(&h, AF_INET6, SOCK_STREAM, 0, TAG('L', '6'));
  add_local(&h, AF_INET, SOCK_STREAM, IPPROTO_TCP, TAG('L', 'T'));
  add_peer(&h, AF_UNIX, SOCK_STREAM, 0, TAG('P', 'u'));
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('P', '6'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '4'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  static const uint32_t want[3][2] = {
      {TAG('L', '4'), TAG('P', '4')}, {TAG('L', 'T'), TAG('P', '4')}, {TAG('L', '6'), TAG('P', '6')}};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(h.nopen, i + 1);
    assert_int_equal(open_local(&h, i), want[i][0]);
    assert_int_equal(open_peer(&h, i), want[i][1]);
    result(&h, T0, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
  }
  assert_int_equal(h.ndone, 1);
  ioa__cc_dispose(&h.cc);
}

/* The attempt delay counts from the attempt's real start (attempt_start's
 * fresh time), not from the older time the OPEN was pulled at: the loop's
 * cached time can be several ms stale when an attempt is opened. */
static void attempt_delay_counts_from_the_real_start(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 150, 0, 0, 16);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'a');
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'b');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0); /* OPEN pulled at T0 (the stale time) */
  ioa__cc_attempt_start(&h.cc, T0 + 4 * MSEC, h.opens[0].slot, 0);
  result(&h, T0 + 4 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 154 * MSEC);
  h_tick(&h, T0 + 153 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 1);
  h_tick(&h, T0 + 154 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 2);
  result(&h, T0 + 154 * MSEC, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
  size_t n;
  const ioa__cc_failure *f = ioa__cc_failures(&h.cc, &n);
  assert_int_equal(n, 1);
  assert_int_equal(f[0].start_ns, T0 + 154 * MSEC);
  /* Without attempt_start the OPEN's time is the start (older drivers). */
  ioa__cc_cancel(&h.cc, T0 + 200 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  ioa__cc_dispose(&h.cc);
}

/* RFC 8305 section 5 on historical RTT: with no attempt delay given, a
 * destination with a known RTT waits clamp(2 x RTT, 100 ms, 2 s); none
 * known: 250 ms; an explicit attempt_delay_ms always wins. */
static void learned_attempt_delay(void **state) {
  (void)state;
  static const struct {
    unsigned given_ms;
    uint32_t rtt_us;
    unsigned want_ms;
  } cases[] = {
      {0, 0, 250},          /* no history: the default */
      {0, 20, 100},         /* loopback: the floor */
      {0, 49000, 100},      /* 98 ms: still the floor */
      {0, 80000, 160},      /* LAN-ish */
      {0, 200000, 400},     /* 200 ms path */
      {0, 300000, 600},     /* satellite */
      {0, 1500000, 2000},   /* the ceiling */
      {0, 0xffffffffu, 2000},
      {150, 300000, 150},   /* given: wins */
      {150, 20, 150},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    harness h;
    h_init(&h, 1, cases[c].given_ms, 0, 0, 16);
    add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'a');
    add_peer(&h, AF_INET, SOCK_STREAM, 0, 'b');
    ioa__cc_start(&h.cc, T0, 0, 0, 0);
    drain(&h, 0);
    assert_true(ioa__cc_more_to_try(&h.cc));
    ioa__cc_attempt_start(&h.cc, T0, h.opens[0].slot, cases[c].rtt_us);
    result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
    assert_int_equal(h.timer, T0 + cases[c].want_ms * MSEC);
    h_tick(&h, T0 + cases[c].want_ms * MSEC - 1);
    drain(&h, 0);
    assert_int_equal(h.nopen, 1);
    h_tick(&h, T0 + cases[c].want_ms * MSEC);
    drain(&h, 0);
    assert_int_equal(h.nopen, 2);
    /* The last candidate: the delay after it no longer matters. */
    assert_false(ioa__cc_more_to_try(&h.cc));
    ioa__cc_cancel(&h.cc, T0 + 3000 * MSEC);
    drain(&h, 0);
    ioa__cc_opened(&h.cc, T0 + 3000 * MSEC, h.opens[1].slot, -1, IOA_SYSCALL_SOCKET, -EMFILE, 0);
    drain(&h, 0);
    assert_int_equal(h.ndone, 1);
    ioa__cc_dispose(&h.cc);
  }
  assert_int_equal(ioa__cc_learned_delay_ms(0), 100);
  assert_int_equal(ioa__cc_learned_delay_ms(200000), 400);
}

/* Long lists: the interleaving stays exact (each family in list order,
 * alternating while both last) at the documented maximum, with an uneven
 * split and a local-address cross product in between. */
static void race_interleaving_over_the_maximum_list(void **state) {
  (void)state;
  enum { N = IOA_CC_MAX_ADDRS };
  static ent peers[N];
  static ioa__cc_cand cands[N];
  static ioa__cc_slot slots[1];
  ioa__cc cc;
  ioa__cc_init(&cc, 1, 10, 0, 0);
  ioa__cc_set_slots(&cc, slots, 1);
  ioa__cc_set_cand_storage(&cc, cands, N);
  unsigned n6 = 0;
  for (unsigned i = 0; i < N; i++) {
    int v6 = i % 3 == 0; /* a third IPv6 */
    n6 += (unsigned)v6;
    peers[i] = (ent){{(uint8_t)(v6 ? AF_INET6 : AF_INET), SOCK_STREAM, 0}, i};
  }
  ioa__cc_set_peers(&cc, peers, sizeof(ent), N);
  ioa__cc_start(&cc, T0, 0, 0, 0);
  unsigned last6 = 0, last4 = 0, opens = 0, fam_prev = 0, repeats_ok = 1;
  int any6 = 0, any4 = 0, done = 0;
  for (unsigned long step = 0; step < 8ul * N && !done; step++) {
    ioa__cc_action a;
    switch (ioa__cc_next(&cc, 0, &a)) {
    case IOA_CC_ACT_OPEN: {
      unsigned p = cc.cands[a.cand].peer, fam = peers[p].meta.family;
      /* list order within each family */
      if (fam == AF_INET6) {
        assert_true(!any6 || p > last6);
        last6 = p, any6 = 1;
      } else {
        assert_true(!any4 || p > last4);
        last4 = p, any4 = 1;
      }
      /* alternate while the IPv6 ones last (the first third of the opens x2) */
      if (opens > 0 && opens < 2 * n6 && fam == fam_prev)
        repeats_ok = 0;
      fam_prev = fam;
      opens++;
      ioa__cc_opened(&cc, T0, a.slot, 7, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
      break;
    }
    case IOA_CC_ACT_DONE:
      done = 1;
      break;
    case IOA_CC_ACT_NONE:
      fail_msg("stalled after %u opens", opens);
      break;
    default:
      break;
    }
  }
  assert_true(done);
  assert_int_equal(opens, N);
  assert_true(repeats_ok);
  ioa__cc_dispose(&cc);
}

/* Random event sequences over random configurations (fixed seed, bounded):
 * one DONE, every fd handed in leaves once, on_fail sees its fd open, no
 * callback action under NO_CALLBACKS.  A miniature of the fuzz target. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (unsigned)(rng_state % n);
}

enum { FD_NONE, FD_OPEN, FD_CLOSED, FD_WON };

typedef struct rig {
  ioa__cc cc;
  ioa__cc_slot slots[4];
  ioa__cc_cand cands[64];
  ent peers[8], locals[2];
  uint8_t fd_state[4096];
  int next_fd, ndone, inflight_open;
  uint8_t handshaking[4]; /* TLS: a HANDSHAKE was handed out for the slot */
  int outcome;
  int black_holes; /* every attempt stays in progress */
  uint64_t now, timer;
} rig;

static void rig_drain(rig *r, unsigned flags) {
  for (int guard = 0; guard < 200; guard++) {
    ioa__cc_action a;
    switch (ioa__cc_next(&r->cc, flags, &a)) {
    case IOA_CC_ACT_NONE:
    case IOA_CC_ACT_DEFER:
      return;
    case IOA_CC_ACT_OPEN: {
      assert_false(flags & IOA_CC_NO_OPEN);
      assert_true(r->cc.nactive <= r->cc.max_inflight); /* at most N in flight */
      if (rnd(2))
        ioa__cc_attempt_start(&r->cc, r->now, a.slot, rnd(3) ? 0 : rnd(400000));
      unsigned what = r->black_holes ? 3 : rnd(5);
      int fd = what == 0 ? -1 : r->next_fd++;
      assert_true(r->next_fd < 4096);
      if (fd >= 0)
        r->fd_state[fd] = FD_OPEN;
      ioa_syscall at = what == 0   ? IOA_SYSCALL_SOCKET
                       : what == 1 ? (rnd(2) ? IOA_SYSCALL_BIND : IOA_SYSCALL_CONNECT)
                                   : IOA_SYSCALL_NONE;
      ioa__cc_opened(&r->cc, r->now, a.slot, fd, at, at ? -ECONNREFUSED : 0, what == 2);
      break;
    }
    case IOA_CC_ACT_FAIL:
      assert_false(flags & IOA_CC_NO_CALLBACKS);
      if (a.fd >= 0)
        assert_int_equal(r->fd_state[a.fd], FD_OPEN); /* open during on_fail */
      break;
    case IOA_CC_ACT_CLOSE:
      assert_true(a.fd >= 0);
      assert_int_equal(r->fd_state[a.fd], FD_OPEN);
      r->fd_state[a.fd] = FD_CLOSED;
      break;
    case IOA_CC_ACT_TIMER:
      r->timer = a.at;
      break;
    case IOA_CC_ACT_GROW:
      assert_true(a.slot > r->cc.nslots && a.slot <= r->cc.max_inflight && a.slot <= 4);
      if (rnd(4))
        ioa__cc_grow_slots(&r->cc, r->slots, a.slot);
      else
        ioa__cc_grow_failed(&r->cc);
      break;
    case IOA_CC_ACT_HANDSHAKE:
      assert_false(flags & IOA_CC_NO_CALLBACKS);
      assert_true(r->cc.tls);
      assert_int_equal(r->fd_state[a.fd], FD_OPEN);
      r->handshaking[a.slot] = 1;
      break;
    case IOA_CC_ACT_DONE:
      assert_false(flags & IOA_CC_NO_CALLBACKS);
      r->timer = 0;
      r->ndone++;
      r->outcome = a.outcome == IOA_CC_OK ? 0 : a.err == -ECANCELED ? 2 : 1;
      if (a.outcome == IOA_CC_OK) {
        assert_int_equal(r->fd_state[a.fd], FD_OPEN);
        r->fd_state[a.fd] = FD_WON;
      }
      break;
    }
  }
  fail_msg("no quiescence");
}

/* A random ranking of the families' heads, asked at most once per run
 * and only with an IPv6 head and an IPv4 one. */
static int rnd_order_calls;
static int rnd_order(ioa__cc *cc, const ioa__cc_meta *a, const ioa__cc_meta *b) {
  (void)cc;
  assert_int_equal(a->family, AF_INET6);
  assert_int_equal(b->family, AF_INET);
  assert_int_equal(rnd_order_calls++, 0);
  return (int)rnd(2);
}

static void random_event_sequences_keep_invariants(void **state) {
  (void)state;
  static rig r;
  int outcomes[3] = {0, 0, 0};
  long fds = 0;
  for (int iter = 0; iter < 3000; iter++) {
    memset(&r, 0, sizeof r);
    r.next_fd = 3;
    r.now = T0;
    int race = (int)rnd(2);
    ioa__cc_init(&r.cc, race, rnd(2) ? 10 + rnd(300) : 0, 0, rnd(2) ? 100 : 0);
    ioa__cc_set_slots(&r.cc, r.slots, 1);
    ioa__cc_set_max_inflight(&r.cc, 1 + rnd(4));
    ioa__cc_set_first_family_count(&r.cc, rnd(4));
    ioa__cc_set_tls(&r.cc, rnd(3) == 0);
    ioa__cc_set_cand_storage(&r.cc, r.cands, 64);
    rnd_order_calls = 0;
    if (rnd(2))
      ioa__cc_set_family_order(&r.cc, rnd_order);
    unsigned np = rnd(6), nl = rnd(3);
    for (unsigned i = 0; i < np; i++) {
      r.peers[i].meta.family = rnd(2) ? AF_INET : AF_INET6;
      r.peers[i].meta.socktype = (uint8_t)(rnd(4) ? SOCK_STREAM : SOCK_DGRAM);
    }
    for (unsigned i = 0; i < nl; i++) {
      r.locals[i].meta.family = rnd(2) ? AF_INET : AF_INET6;
      r.locals[i].meta.socktype = (uint8_t)(rnd(2) ? 0 : SOCK_STREAM);
    }
    int need_peers = (int)rnd(2), need_locals = nl && rnd(3) == 0;
    unsigned shown = need_peers ? 0 : np;
    ioa__cc_set_peers(&r.cc, r.peers, sizeof(ent), (uint16_t)shown);
    ioa__cc_set_locals(&r.cc, r.locals, sizeof(ent), (uint16_t)(need_locals ? 0 : nl));
    ioa__cc_start(&r.cc, r.now, need_peers, need_locals, rnd(2) ? 500 : 0);
    for (int step = 0; step < 40; step++) {
      switch (rnd(7)) {
      case 0:
        r.now += rnd(200) * MSEC;
        ioa__cc_tick(&r.cc, r.now);
        break;
      case 1: /* a connecting slot finishes */
        for (unsigned i = 0; i < r.cc.nslots; i++)
          if (r.slots[i].state == IOA_CC_SLOT_CONNECTING && rnd(2)) {
            ioa__cc_connected(&r.cc, r.now, i, rnd(3) ? -ECONNREFUSED : 0);
            break;
          }
        break;
      case 2:
        if (need_peers && shown < np && rnd(2)) {
          shown++;
          ioa__cc_set_peers(&r.cc, r.peers, sizeof(ent), (uint16_t)shown);
          ioa__cc_peers_partial(&r.cc, r.now, r.peers[shown - 1].meta.family);
        } else if (need_peers) {
          ioa__cc_set_peers(&r.cc, r.peers, sizeof(ent), (uint16_t)np);
          ioa__cc_resolved(&r.cc, r.now, 0, rnd(4) ? 0 : IOA_EAI_NONAME);
          need_peers = 0;
        }
        break;
      case 3:
        if (need_locals) {
          ioa__cc_set_locals(&r.cc, r.locals, sizeof(ent), (uint16_t)nl);
          ioa__cc_resolved(&r.cc, r.now, 1, 0);
          need_locals = 0;
        }
        break;
      case 4:
        if (rnd(8) == 0)
          ioa__cc_cancel(&r.cc, r.now);
        break;
      case 5: /* TLS: a handshake ends (perhaps late, for a slot long gone) */
        for (unsigned i = 0; i < r.cc.nslots; i++)
          if (r.handshaking[i] && rnd(2)) {
            r.handshaking[i] = 0;
            unsigned how = rnd(3);
            ioa__cc_handshaked(&r.cc, r.now, i, (int)how,
                               how == IOA_CC_HS_OK      ? 0
                               : how == IOA_CC_HS_RETRY ? -ECONNRESET
                                                        : IOA_ETLSVERIFY);
            break;
          }
        break;
      default:
        break;
      }
      rig_drain(&r, rnd(3) == 0 ? IOA_CC_NO_CALLBACKS : rnd(4) == 0 ? IOA_CC_NO_OPEN : 0);
    }
    /* Every candidate is eventually tried unless the request completes:
     * when racing, with the answers in and every attempt a black hole,
     * running the clock out must reach them all (bounded). */
    if (race && r.ndone == 0) {
      r.black_holes = 1;
      if (need_locals) {
        ioa__cc_set_locals(&r.cc, r.locals, sizeof(ent), (uint16_t)nl);
        ioa__cc_resolved(&r.cc, r.now, 1, 0);
      }
      if (need_peers) {
        ioa__cc_set_peers(&r.cc, r.peers, sizeof(ent), (uint16_t)np);
        ioa__cc_resolved(&r.cc, r.now, 0, 0);
      }
      rig_drain(&r, 0);
      for (int i = 0; i < 200 && r.ndone == 0 && r.cc.ntried < r.cc.ncands; i++) {
        assert_true(r.timer != 0); /* something must be waited for */
        r.now = r.timer > r.now ? r.timer : r.now + MSEC;
        ioa__cc_tick(&r.cc, r.now);
        rig_drain(&r, 0);
      }
      assert_true(r.ndone == 1 || r.cc.ntried == r.cc.ncands);
    }
    ioa__cc_cancel(&r.cc, r.now);
    rig_drain(&r, 0);
    assert_int_equal(r.ndone, 1);
    for (int fd = 3; fd < r.next_fd; fd++)
      assert_true(r.fd_state[fd] == FD_CLOSED || r.fd_state[fd] == FD_WON);
    outcomes[r.outcome]++;
    fds += r.next_fd - 3;
    ioa__cc_dispose(&r.cc);
  }
  print_message("# 3000 sequences: %d connected, %d failed, %d cancelled, %ld fds\n",
                outcomes[0], outcomes[1], outcomes[2], fds);
  /* the mix must reach every ending, or the test proves little */
  assert_true(outcomes[0] > 100 && outcomes[1] > 100 && outcomes[2] > 100);
}

/* ---- TLS: the handshake is part of the attempt ---- */

static void tls_setup(harness *h, int race, unsigned att_to) {
  h_init(h, race, 50, 0, att_to, race ? 4 : 1);
  ioa__cc_set_tls(&h->cc, 1);
}

/* A connect is not a win: the handshake decides, and a racing attempt
 * still connecting is closed (not a failure) when it does. */
static void tls_handshake_decides_the_winner(void **state) {
  (void)state;
  harness h;
  tls_setup(&h, 1, 0);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('P', '1'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '2'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  int fd1 = result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  h_tick(&h, T0 + 50 * MSEC);
  drain(&h, 0);
  int fd2 = result(&h, T0 + 50 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_connected(&h.cc, T0 + 60 * MSEC, h.opens[1].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 0); /* connected, not won */
  assert_int_equal(h.nhs, 1);
  assert_int_equal(h.hss[0].fd, fd2);
  assert_int_equal(h.hss[0].slot, h.opens[1].slot);
  ioa__cc_handshaked(&h.cc, T0 + 70 * MSEC, h.hss[0].slot, IOA_CC_HS_OK, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_OK);
  assert_int_equal(h.done.fd, fd2);
  assert_int_equal(h.nclose, 1);
  assert_int_equal(h.closed[0], fd1);
  assert_int_equal(h.nfail, 0);
  ioa__cc_dispose(&h.cc);
}

/* A reset during the handshake is reported ("tls", its fd open) and the
 * next address is tried, as after a refused connect. */
static void tls_network_failure_moves_on(void **state) {
  (void)state;
  harness h;
  tls_setup(&h, 0, 0);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '1'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '2'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  int fd1 = result(&h, T0, IOA_SYSCALL_NONE, 0, 1); /* connected at once */
  assert_int_equal(h.nhs, 1);
  ioa__cc_handshaked(&h.cc, T0 + 5 * MSEC, h.hss[0].slot, IOA_CC_HS_RETRY, -ECONNRESET);
  drain(&h, 0);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].syscall, IOA_SYSCALL_TLS);
  assert_int_equal(h.fails[0].err, -ECONNRESET);
  assert_int_equal(h.fails[0].fd, fd1);
  assert_int_equal(h.nclose, 1);
  assert_int_equal(h.closed[0], fd1);
  assert_int_equal(h.nopen, 2);
  assert_int_equal(open_peer(&h, 1), TAG('P', '2'));
  int fd2 = result(&h, T0 + 6 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_connected(&h.cc, T0 + 7 * MSEC, h.opens[1].slot, 0);
  drain(&h, 0);
  ioa__cc_handshaked(&h.cc, T0 + 8 * MSEC, h.hss[1].slot, IOA_CC_HS_OK, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.fd, fd2);
  ioa__cc_dispose(&h.cc);
}

/* A verification failure ends the request at once: reported, the other
 * attempts closed without failures, the untried never opened, and "tls"
 * is the completion's syscall. */
static void tls_fatal_failure_ends_at_once(void **state) {
  (void)state;
  harness h;
  tls_setup(&h, 1, 0);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('P', '1'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '2'));
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('P', '3'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  int fd1 = result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  h_tick(&h, T0 + 50 * MSEC);
  drain(&h, 0);
  int fd2 = result(&h, T0 + 50 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_connected(&h.cc, T0 + 60 * MSEC, h.opens[1].slot, 0);
  drain(&h, 0);
  ioa__cc_handshaked(&h.cc, T0 + 70 * MSEC, h.hss[0].slot, IOA_CC_HS_FATAL, IOA_ETLSVERIFY);
  drain(&h, 0);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].syscall, IOA_SYSCALL_TLS);
  assert_int_equal(h.fails[0].fd, fd2);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_CONNECT_ERROR);
  assert_int_equal(h.done.syscall, IOA_SYSCALL_TLS);
  assert_int_equal(h.done.err, IOA_ETLSVERIFY);
  assert_int_equal(h.nopen, 2); /* P3 never tried */
  assert_int_equal(h.nclose, 2);
  assert_true((h.closed[0] == fd1 && h.closed[1] == fd2) ||
              (h.closed[0] == fd2 && h.closed[1] == fd1));
  /* FAIL before the CLOSE of its fd. */
  int fail_at = -1, close2_at = -1, n_close = 0;
  for (int i = 0; i < h.norder; i++) {
    if (h.order[i] == IOA_CC_ACT_FAIL)
      fail_at = i;
    if (h.order[i] == IOA_CC_ACT_CLOSE && h.closed[n_close++] == fd2)
      close2_at = i;
  }
  assert_true(fail_at >= 0 && fail_at < close2_at);
  ioa__cc_dispose(&h.cc);
}

/* The attempt timeout counts the handshake: a silent TLS server times out
 * as a "tls" failure and the next address wins; a late result is ignored. */
static void tls_attempt_timeout_covers_the_handshake(void **state) {
  (void)state;
  harness h;
  tls_setup(&h, 0, 100);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '1'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '2'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  int fd1 = result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_connected(&h.cc, T0 + 40 * MSEC, h.opens[0].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.nhs, 1);
  assert_int_equal(h.timer, T0 + 100 * MSEC); /* from the attempt's start */
  h_tick(&h, T0 + 100 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].syscall, IOA_SYSCALL_TLS);
  assert_int_equal(h.fails[0].err, -ETIMEDOUT);
  assert_int_equal(h.closed[0], fd1);
  assert_int_equal(h.nopen, 2);
  ioa__cc_handshaked(&h.cc, T0 + 110 * MSEC, h.hss[0].slot, IOA_CC_HS_OK, 0); /* too late */
  drain(&h, 0);
  assert_int_equal(h.ndone, 0);
  int fd2 = result(&h, T0 + 110 * MSEC, IOA_SYSCALL_NONE, 0, 1);
  ioa__cc_handshaked(&h.cc, T0 + 120 * MSEC, h.hss[1].slot, IOA_CC_HS_OK, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.fd, fd2);
  ioa__cc_dispose(&h.cc);
}

/* The overall deadline too; and "tls" outranks "connect" in the verdict. */
static void tls_deadline_and_ranking(void **state) {
  (void)state;
  harness h;
  tls_setup(&h, 0, 0);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '1'));
  ioa__cc_start(&h.cc, T0, 0, 0, 300);
  drain(&h, 0);
  result(&h, T0, IOA_SYSCALL_NONE, 0, 1);
  h_tick(&h, T0 + 300 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.err, -ETIMEDOUT);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].syscall, IOA_SYSCALL_TLS);
  assert_int_equal(h.nclose, 1);
  ioa__cc_dispose(&h.cc);

  tls_setup(&h, 0, 0);
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '1'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('P', '2'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  result(&h, T0, IOA_SYSCALL_NONE, 0, 1);
  ioa__cc_handshaked(&h.cc, T0 + MSEC, h.hss[0].slot, IOA_CC_HS_RETRY, IOA_ETLSEOF);
  drain(&h, 0);
  result(&h, T0 + 2 * MSEC, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.syscall, IOA_SYSCALL_TLS);
  assert_int_equal(h.done.err, IOA_ETLSEOF);
  assert_true(ioa__cc_syscall_rank(IOA_SYSCALL_TLS) > ioa__cc_syscall_rank(IOA_SYSCALL_CONNECT));
  ioa__cc_dispose(&h.cc);
}

/* Cancel while handshaking: the fd closes, no FAIL; a connect completed
 * inside ioa_connect() defers its HANDSHAKE (the driver runs a hook). */
static void tls_cancel_and_no_callbacks(void **state) {
  (void)state;
  harness h;
  tls_setup(&h, 0, 0);
  add_peer(&h, AF_UNIX, SOCK_STREAM, 0, TAG('P', '1'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, IOA_CC_NO_CALLBACKS);
  ioa__cc_opened(&h.cc, T0, h.opens[0].slot, 7, IOA_SYSCALL_NONE, 0, 1);
  assert_int_equal(drain(&h, IOA_CC_NO_CALLBACKS), IOA_CC_ACT_DEFER);
  assert_int_equal(h.nhs, 0);
  drain(&h, 0);
  assert_int_equal(h.nhs, 1);
  ioa__cc_cancel(&h.cc, T0 + MSEC);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.err, -ECANCELED);
  assert_int_equal(h.nfail, 0);
  assert_int_equal(h.nclose, 1);
  assert_int_equal(h.closed[0], 7);
  ioa__cc_handshaked(&h.cc, T0 + 2 * MSEC, h.hss[0].slot, IOA_CC_HS_OK, 0); /* ignored */
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  ioa__cc_dispose(&h.cc);
}

/* ---- TLS with the racing policy ---- */

/* A handshaking attempt is in flight: it holds its slot (the next attempt
 * needs a new one: GROW), counts toward the limit, and at the limit the
 * oldest attempt still connecting is abandoned before it, however old the
 * handshake; only when every attempt in flight is handshaking is the
 * oldest handshake abandoned ("tls", IOA_EABANDONED), and its late result
 * is ignored. */
static void tls_race_handshakes_count_in_flight(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 10, 0, 0, 1);
  ioa__cc_set_tls(&h.cc, 1);
  ioa__cc_set_max_inflight(&h.cc, 2);
  for (int i = 0; i < 4; i++)
    add_peer(&h, AF_INET, SOCK_STREAM, 0, (uint32_t)i);
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  int fd0 = result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_connected(&h.cc, T0 + 5 * MSEC, h.opens[0].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.nhs, 1);
  assert_int_equal(h.hss[0].fd, fd0);
  assert_int_equal(h.cc.nactive, 1); /* the handshake is the attempt still */
  /* Its handshake gets the attempt delay again (a round trip of its own). */
  assert_int_equal(h.timer, T0 + 15 * MSEC);
  h_tick(&h, T0 + 10 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 1);
  h_tick(&h, T0 + 15 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ngrow, 1); /* the one slot is the handshake's */
  assert_int_equal(h.nopen, 2);
  assert_int_not_equal(h.opens[1].slot, h.opens[0].slot);
  int fd1 = result(&h, T0 + 15 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.cc.nactive, 2);
  assert_int_equal(h.timer, T0 + 25 * MSEC);
  /* At the limit: the attempt still connecting goes, not the older handshake. */
  h_tick(&h, T0 + 25 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.ngrow, 1);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].syscall, IOA_SYSCALL_CONNECT);
  assert_int_equal(h.fails[0].err, IOA_EABANDONED);
  assert_int_equal(h.fails[0].fd, fd1);
  assert_int_equal(h.closed[0], fd1);
  assert_int_equal(h.nopen, 3);
  assert_int_equal(open_peer(&h, 2), 2);
  int fd2 = result(&h, T0 + 25 * MSEC, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_connected(&h.cc, T0 + 27 * MSEC, h.opens[2].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.nhs, 2);
  assert_int_equal(h.hss[1].fd, fd2);
  assert_int_equal(h.timer, T0 + 37 * MSEC);
  /* Every attempt in flight handshaking: the oldest handshake goes. */
  h_tick(&h, T0 + 37 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nfail, 2);
  assert_int_equal(h.fails[1].syscall, IOA_SYSCALL_TLS);
  assert_int_equal(h.fails[1].err, IOA_EABANDONED);
  assert_int_equal(h.fails[1].fd, fd0);
  assert_int_equal(h.closed[1], fd0);
  assert_int_equal(h.nopen, 4);
  assert_int_equal(open_peer(&h, 3), 3);
  assert_int_equal(h.opens[3].slot, h.opens[0].slot);
  result(&h, T0 + 37 * MSEC, IOA_SYSCALL_CONNECT, -ECONNREFUSED, 0);
  assert_int_equal(h.nfail, 3);
  /* The abandoned handshake's late answer, for a slot since reused and freed. */
  ioa__cc_handshaked(&h.cc, T0 + 38 * MSEC, h.hss[0].slot, IOA_CC_HS_OK, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 0);
  ioa__cc_handshaked(&h.cc, T0 + 40 * MSEC, h.hss[1].slot, IOA_CC_HS_OK, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.outcome, IOA_CC_OK);
  assert_int_equal(h.done.fd, fd2);
  assert_int_equal(h.nclose, 3); /* fd1, fd0 (abandoned), fd3 (refused) */
  ioa__cc_dispose(&h.cc);
}

/* A handshake's network failure returns to the race at once, with the
 * untried candidates in their order (families alternating), and the
 * handshake's failure is reported even if a later one succeeds. */
static void tls_handshake_failure_returns_to_the_race(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 100, 0, 0, 1);
  ioa__cc_set_tls(&h.cc, 1);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'a'));
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, TAG('6', 'b'));
  add_peer(&h, AF_INET, SOCK_STREAM, 0, TAG('4', 'a'));
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  int fd0 = result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_connected(&h.cc, T0 + 2 * MSEC, h.opens[0].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.timer, T0 + 102 * MSEC);
  ioa__cc_handshaked(&h.cc, T0 + 4 * MSEC, h.hss[0].slot, IOA_CC_HS_RETRY, -ECONNRESET);
  drain(&h, 0);
  assert_int_equal(h.nfail, 1);
  assert_int_equal(h.fails[0].syscall, IOA_SYSCALL_TLS);
  assert_int_equal(h.fails[0].fd, fd0);
  assert_int_equal(h.nopen, 2); /* at once, not 100 ms after the first */
  assert_int_equal(open_peer(&h, 1), TAG('4', 'a')); /* the other family's turn */
  int fd1 = result(&h, T0 + 4 * MSEC, IOA_SYSCALL_NONE, 0, 1);
  assert_int_equal(h.nhs, 2);
  ioa__cc_handshaked(&h.cc, T0 + 6 * MSEC, h.hss[1].slot, IOA_CC_HS_OK, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.fd, fd1);
  assert_int_equal(h.nopen, 2); /* 6b never needed */
  ioa__cc_dispose(&h.cc);
}

/* The learned delay (2 x RTT) with TLS: a connect after one RTT leaves
 * its handshake the same delay again, so a distant working path gets no
 * needless second attempt; the handshake wins alone. */
static void tls_learned_delay_covers_the_handshake(void **state) {
  (void)state;
  harness h;
  h_init(&h, 1, 0, 0, 0, 1);
  ioa__cc_set_tls(&h.cc, 1);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'a');
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'b');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  ioa__cc_attempt_start(&h.cc, T0, h.opens[0].slot, 300000); /* a 300 ms path: 600 ms */
  int fd0 = result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  assert_int_equal(h.timer, T0 + 600 * MSEC);
  ioa__cc_connected(&h.cc, T0 + 300 * MSEC, h.opens[0].slot, 0);
  drain(&h, 0);
  assert_int_equal(h.timer, T0 + 900 * MSEC);
  h_tick(&h, T0 + 600 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 1);
  ioa__cc_handshaked(&h.cc, T0 + 620 * MSEC, h.hss[0].slot, IOA_CC_HS_OK, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.done.fd, fd0);
  assert_int_equal(h.nopen, 1);
  ioa__cc_dispose(&h.cc);
  /* A handshake that outlives that too: the next address is tried. */
  h_init(&h, 1, 0, 0, 0, 1);
  ioa__cc_set_tls(&h.cc, 1);
  add_peer(&h, AF_INET6, SOCK_STREAM, 0, 'a');
  add_peer(&h, AF_INET, SOCK_STREAM, 0, 'b');
  ioa__cc_start(&h.cc, T0, 0, 0, 0);
  drain(&h, 0);
  ioa__cc_attempt_start(&h.cc, T0, h.opens[0].slot, 300000);
  result(&h, T0, IOA_SYSCALL_NONE, 0, 0);
  ioa__cc_connected(&h.cc, T0 + 300 * MSEC, h.opens[0].slot, 0);
  drain(&h, 0);
  h_tick(&h, T0 + 900 * MSEC);
  drain(&h, 0);
  assert_int_equal(h.nopen, 2);
  assert_int_equal(open_peer(&h, 1), 'b');
  ioa__cc_cancel(&h.cc, T0 + 901 * MSEC);
  drain(&h, 0);
  ioa__cc_opened(&h.cc, T0 + 901 * MSEC, h.opens[1].slot, -1, IOA_SYSCALL_SOCKET, -EMFILE, 0);
  drain(&h, 0);
  assert_int_equal(h.ndone, 1);
  assert_int_equal(h.nfail, 0);
  ioa__cc_dispose(&h.cc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(seq_local_major_cross_product_skips_mismatches),
      IOA_TEST(seq_mixed_families_keep_list_order),
      IOA_TEST(ranking),
      IOA_TEST(zero_candidates_is_an_error),
      IOA_TEST(immediate_success_and_no_callbacks_flag),
      IOA_TEST(immediate_failure_waits_for_callbacks),
      IOA_TEST(race_interleaves_and_paces),
      IOA_TEST(race_attempt_delay_is_configurable),
      IOA_TEST(resolution_delay_aaaa_in_time),
      IOA_TEST(resolution_delay_expires_then_late_aaaa),
      IOA_TEST(family_order_ranks_the_heads),
      IOA_TEST(family_order_one_family_alone),
      IOA_TEST(family_order_whole_answer_keeps_its_order),
      IOA_TEST(sequential_waits_for_the_full_answer),
      IOA_TEST(resolve_error_completes),
      IOA_TEST(attempt_timeout_moves_on),
      IOA_TEST(overall_deadline),
      IOA_TEST(overall_deadline_while_resolving),
      IOA_TEST(cancel_everywhere),
      IOA_TEST(race_limit_abandons_oldest),
      IOA_TEST(abandoned_never_ranks),
      IOA_TEST(race_64_black_holes_then_live),
      IOA_TEST(first_address_family_count),
      IOA_TEST(first_family_has_a_candidate),
      IOA_TEST(attempt_delay_counts_from_the_real_start),
      IOA_TEST(learned_attempt_delay),
      IOA_TEST(race_interleaving_over_the_maximum_list),
      IOA_TEST(random_event_sequences_keep_invariants),
      IOA_TEST(tls_handshake_decides_the_winner),
      IOA_TEST(tls_network_failure_moves_on),
      IOA_TEST(tls_fatal_failure_ends_at_once),
      IOA_TEST(tls_attempt_timeout_covers_the_handshake),
      IOA_TEST(tls_deadline_and_ranking),
      IOA_TEST(tls_cancel_and_no_callbacks),
      IOA_TEST(tls_race_handshakes_count_in_flight),
      IOA_TEST(tls_handshake_failure_returns_to_the_race),
      IOA_TEST(tls_learned_delay_covers_the_handshake),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
