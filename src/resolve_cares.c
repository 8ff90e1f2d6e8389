/* SPDX-License-Identifier: MIT */
/* Resolver backend: c-ares.  No threads: c-ares's sockets are watched by
 * the ioasync loop (ioa_io via the socket-state callback) and its
 * retransmit timeouts driven by one ioa_timer.
 *
 * AF_UNSPEC lookups run as two ares_getaddrinfo() calls, one per family, so
 * the A and AAAA answers are delivered separately as they arrive (on_partial)
 * — RFC 8305 §3 needs that; a single AF_UNSPEC ares_getaddrinfo() waits for
 * both.  c-ares keeps the resolver's order, so each family's batch is sorted
 * as getaddrinfo would sort it (addrsort, RFC 6724 with glibc's tables) and
 * the complete answer again across both families.  Each answer carries the
 * smallest TTL of its records (and CNAMEs) for the answer cache.
 *
 * c-ares has no per-query cancel.  A cancelled or timed-out request detaches
 * its queries (query->cr = NULL) and their late callbacks just free them;
 * when no attached query remains, ares_cancel() ends the detached ones at
 * once so they do not keep the loop busy with retransmits.
 *
 * User callbacks never run inside c-ares: ares callbacks only store the
 * answer and start the request's ioa_defer, so a user may cancel requests or
 * free the resolver (ares_destroy) from any callback.
 */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "ioasync/error.h"
#include "resolve_internal.h"
#include "sys.h"

#if IOA_HAVE_CARES

#include <ares.h>

typedef struct cares {
  ioa_loop *loop;
  ares_channel channel;
  ioa_timer timer;
  ioa__list socks;    /* cares_sock.link */
  unsigned nqueries;  /* ares_getaddrinfo calls whose callback has not run */
  unsigned nattached; /* of those, the ones a request still waits for */
} cares;

typedef struct cares_sock {
  cares *c;
  int fd;
  ioa_io io;
  ioa__list link;
} cares_sock;

typedef struct cares_req cares_req;

typedef struct cares_query {
  cares *c;
  cares_req *cr; /* NULL once detached */
  unsigned slot;
} cares_query;

/* One family's query of a request. */
typedef struct family_slot {
  cares_query *query; /* in flight, or NULL */
  int family;
  int arrived;   /* the answer (or failure) is in */
  int delivered; /* on_partial has been given it (or it had no answers) */
  int status;    /* ioasync code */
  const char *message;
  ioa_addr *addrs;
  size_t naddrs;
  uint32_t ttl_s; /* smallest TTL of its records, or IOA__TTL_UNKNOWN */
  char *canonname;
} family_slot;

/* Per-request state (ioa__resolve_req_state). */
struct cares_req {
  cares *c;
  int want_canon; /* AI_CANONNAME */
  ioa_defer defer;     /* delivers what arrived, outside c-ares */
  family_slot slot[2]; /* AF_UNSPEC: [0] AAAA, [1] A */
  unsigned nslots;
  ioa_addr *all; /* on_done's list */
  size_t nall;
};

/* ------------------------------------------------ sockets and the timer */

static void reschedule(cares *c) {
  struct timeval tv;
  if (c->nqueries == 0 || !ares_timeout(c->channel, NULL, &tv)) {
    ioa_timer_stop(&c->timer);
    return;
  }
  uint64_t ns = (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
  if (ioa_timer_start(&c->timer, ns, 0) < 0)
    ioa_loop_warn(c->loop, "c-ares: cannot start its timer; lookups may stall");
}

static void on_sock_io(ioa_io *io, unsigned revents, void *data) {
  cares_sock *s = data;
  cares *c = s->c;
  int fd = s->fd;
  /* s may be freed inside ares_process_fd (socket closed). */
  ares_process_fd(c->channel,
                  (revents & (IOA_READ | IOA_ERROR | IOA_HUP)) ? fd : ARES_SOCKET_BAD,
                  (revents & IOA_WRITE) ? fd : ARES_SOCKET_BAD);
  reschedule(c);
}

static void on_ares_timer(ioa_timer *t, void *data) {
  cares *c = data;
  ares_process_fd(c->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  reschedule(c);
}

static cares_sock *find_sock(cares *c, int fd) {
  IOA__LIST_FOREACH(n, &c->socks) {
    cares_sock *s = IOA__CONTAINER_OF(n, cares_sock, link);
    if (s->fd == fd)
      return s;
  }
  return NULL;
}

static void sock_free(cares_sock *s) {
  ioa_io_stop(&s->io);
  ioa__list_remove(&s->link);
  ioa__free(s);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable) {
  cares *c = data;
  cares_sock *s = find_sock(c, fd);
  if (!readable && !writable) {
    if (s)
      sock_free(s); /* c-ares closes fd right after this */
    return;
  }
  if (!s) {
    s = ioa__calloc(1, sizeof *s);
    if (!s) {
      ioa_loop_warn(c->loop, "c-ares: out of memory watching fd %d", fd);
      return; /* its queries end by timeout */
    }
    s->c = c;
    s->fd = fd;
    ioa_io_init(c->loop, &s->io, fd, on_sock_io, s);
    ioa__list_push_front(&c->socks, &s->link);
  }
  int e = ioa_io_start(&s->io, (readable ? IOA_READ : 0u) | (writable ? IOA_WRITE : 0u));
  if (e < 0)
    ioa_loop_warn(c->loop, "c-ares: cannot watch fd %d: %s", fd, ioa_strerror(e));
}

/* c-ares creates its sockets through these, so they are non-blocking,
 * close-on-exec, SIGPIPE-free and fault-injectable like all of ours. */
static ares_socket_t sf_socket(int domain, int type, int protocol, void *data) {
  int fd = ioa__sys_socket(domain, type, protocol);
  return fd < 0 ? ARES_SOCKET_BAD : fd;
}
static int sf_close(ares_socket_t fd, void *data) {
  ioa__sys_close(fd);
  return 0;
}
static int sf_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len,
                      void *data) {
  return ioa__sys_connect(fd, sa, len);
}
static ares_ssize_t sf_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
                                struct sockaddr *from, ares_socklen_t *fromlen, void *data) {
  struct iovec iov = {.iov_base = buf, .iov_len = len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (from && fromlen) {
    mh.msg_name = from;
    mh.msg_namelen = *fromlen;
  }
  ssize_t n = ioa__sys_recvmsg(fd, &mh, flags);
  if (n >= 0 && from && fromlen)
    *fromlen = mh.msg_namelen;
  return n;
}
static ares_ssize_t sf_sendv(ares_socket_t fd, const struct iovec *iov, int n, void *data) {
  return ioa__sys_writev(fd, iov, n);
}
static const struct ares_socket_functions socket_functions = {
    sf_socket, sf_close, sf_connect, sf_recvfrom, sf_sendv,
};

/* -------------------------------------------------------------- answers */

static int status_from_ares(int st) {
  switch (st) {
  case ARES_SUCCESS:
    return 0;
  case ARES_ENOTFOUND:
  case ARES_EBADNAME:
  case ARES_ENONAME:
    return IOA_EAI_NONAME;
  case ARES_ENODATA:
    return IOA_EAI_NODATA;
  case ARES_ESERVFAIL:
  case ARES_EREFUSED:
  case ARES_ETIMEOUT:
  case ARES_ECONNREFUSED:
    return IOA_EAI_AGAIN; /* as glibc reports them */
  case ARES_ENOMEM:
    return IOA_EAI_MEMORY;
  case ARES_ESERVICE:
    return IOA_EAI_SERVICE;
  case ARES_EBADFAMILY:
    return IOA_EAI_FAMILY;
  case ARES_EBADFLAGS:
  case ARES_EBADHINTS:
    return IOA_EAI_BADFLAGS;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION:
    return IOA_EAI_CANCELED;
  default:
    return IOA_EAI_FAIL;
  }
}

/* Every slot is in: one answer for on_done, A before AAAA (as glibc's DNS
 * source hands them to its sort), sorted across both families.  One
 * family's answers make the lookup succeed. */
static void finish_all(cares_req *cr) {
  ioa_resolve_req *req = ioa__resolve_req_of(cr);
  size_t total = 0;
  int status = 0, incomplete = 0;
  const char *message = NULL;
  ioa__answer a = {.ttl_s = IOA__TTL_UNKNOWN};
  for (unsigned i = 0; i < cr->nslots; i++) {
    family_slot *s = &cr->slot[i];
    total += s->naddrs;
    incomplete |= !ioa__resolve_definite(s->status);
    if (s->ttl_s < a.ttl_s)
      a.ttl_s = s->ttl_s;
    if (!a.canonname)
      a.canonname = s->canonname;
    if (s->status != 0 && ioa__resolve_worse_status(status, s->status) == s->status) {
      status = s->status;
      message = s->message;
    }
  }
  if (total == 0) {
    ioa__resolve_fail(req, status, message);
    return;
  }
  cr->all = ioa__malloc(total * sizeof *cr->all);
  if (!cr->all) {
    ioa__resolve_fail(req, IOA_EAI_MEMORY, NULL);
    return;
  }
  for (unsigned k = cr->nslots; k-- > 0;) { /* slots are [AAAA, A] */
    family_slot *s = &cr->slot[k];
    if (s->naddrs)
      memcpy(cr->all + cr->nall, s->addrs, s->naddrs * sizeof *cr->all);
    cr->nall += s->naddrs;
  }
  ioa__resolve_sort(req, cr->all, cr->nall);
  a.addrs = cr->all;
  a.naddrs = cr->nall;
  a.incomplete = incomplete;
  ioa__resolve_finish(req, &a);
}

static void on_cares_defer(ioa_defer *d, void *data) {
  cares_req *cr = data;
  unsigned arrived = 0;
  for (unsigned i = 0; i < cr->nslots; i++) {
    family_slot *s = &cr->slot[i];
    if (!s->arrived)
      continue;
    arrived++;
    if (s->delivered)
      continue;
    s->delivered = 1;
    if (s->status != 0)
      continue;
    ioa__resolve_sort(ioa__resolve_req_of(cr), s->addrs, s->naddrs);
    if (!ioa__resolve_partial(ioa__resolve_req_of(cr), s->family, s->addrs, s->naddrs))
      return; /* cancelled (or resolver freed) inside on_partial */
  }
  if (arrived == cr->nslots)
    finish_all(cr);
}

/* The answers of the slot's family into s->addrs, with their smallest TTL
 * (CNAMEs on the way included) and the canonical name; the status if
 * none. */
static void slot_store(family_slot *s, const struct ares_addrinfo *res, int want_canon) {
  size_t n = 0;
  for (struct ares_addrinfo_node *p = res->nodes; p; p = p->ai_next)
    if (p->ai_family == s->family && p->ai_addrlen <= sizeof(struct sockaddr_storage))
      n++;
  if (n == 0) {
    s->status = IOA_EAI_NODATA;
    s->message = ares_strerror(ARES_ENODATA);
    return;
  }
  s->addrs = ioa__calloc(n, sizeof *s->addrs);
  if (!s->addrs) {
    s->status = IOA_EAI_MEMORY;
    s->message = NULL;
    return;
  }
  for (struct ares_addrinfo_node *p = res->nodes; p; p = p->ai_next) {
    if (p->ai_family != s->family || p->ai_addrlen > sizeof(struct sockaddr_storage))
      continue;
    ioa_addr *a = &s->addrs[s->naddrs++];
    a->family = p->ai_family;
    a->socktype = p->ai_socktype;
    a->protocol = p->ai_protocol;
    a->addrlen = p->ai_addrlen;
    memcpy(&a->addr, p->ai_addr, p->ai_addrlen);
    if (p->ai_ttl >= 0 && (uint32_t)p->ai_ttl < s->ttl_s)
      s->ttl_s = (uint32_t)p->ai_ttl;
  }
  for (struct ares_addrinfo_cname *c = res->cnames; c; c = c->next)
    if (c->ttl >= 0 && (uint32_t)c->ttl < s->ttl_s)
      s->ttl_s = (uint32_t)c->ttl;
  if (want_canon && res->name) {
    size_t cl = strlen(res->name) + 1;
    if ((s->canonname = ioa__malloc(cl)))
      memcpy(s->canonname, res->name, cl);
  }
}

static void on_addrinfo(void *arg, int st, int timeouts, struct ares_addrinfo *res) {
  cares_query *q = arg;
  cares *c = q->c;
  cares_req *cr = q->cr;
  c->nqueries--;
  if (cr) {
    c->nattached--;
    family_slot *s = &cr->slot[q->slot];
    s->query = NULL;
    s->arrived = 1;
    s->status = status_from_ares(st);
    s->message = ares_strerror(st);
    if (st == ARES_SUCCESS && res)
      slot_store(s, res, cr->want_canon);
    ioa_defer_start(&cr->defer); /* deliver outside c-ares */
  }
  if (res)
    ares_freeaddrinfo(res);
  ioa__free(q);
}

/* --------------------------------------------------------------- ops */

static int cares_init(ioa_resolver *r, const ioa_resolver_options *opts, void **out) {
  cares *c = ioa__calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->loop = r->loop;
  ioa__list_init(&c->socks);
  struct ares_options o;
  memset(&o, 0, sizeof o);
  int mask = ARES_OPT_SOCK_STATE_CB;
  o.sock_state_cb = sock_state_cb;
  o.sock_state_cb_data = c;
  if (opts->dns_timeout_ms) {
    o.timeout = (int)opts->dns_timeout_ms;
    mask |= ARES_OPT_TIMEOUTMS;
  }
  if (opts->dns_tries) {
    o.tries = (int)opts->dns_tries;
    mask |= ARES_OPT_TRIES;
  }
  int st = ares_init_options(&c->channel, &o, mask);
  if (st != ARES_SUCCESS) {
    ioa__free(c);
    return st == ARES_ENOMEM ? -ENOMEM : IOA_EAI_FAIL;
  }
  ares_set_socket_functions(c->channel, &socket_functions, c);
  if (opts->servers) {
    st = ares_set_servers_ports_csv(c->channel, opts->servers);
    if (st != ARES_SUCCESS) {
      ares_destroy(c->channel);
      ioa__free(c);
      return st == ARES_ENOMEM ? -ENOMEM : IOA_EBADPARAM;
    }
  }
  ioa_timer_init(c->loop, &c->timer, on_ares_timer, c);
  *out = c;
  return 0;
}

static void cares_free(void *backend) {
  cares *c = backend;
  /* Every request is detached by now: the EDESTRUCTION callbacks only free
   * queries, and the socket-state callback stops the watchers. */
  ares_destroy(c->channel);
  ioa_timer_stop(&c->timer);
  IOA__LIST_FOREACH_SAFE(n, &c->socks) /* any c-ares did not report closed */
    sock_free(IOA__CONTAINER_OF(n, cares_sock, link));
  ioa__free(c);
}

static int ares_flags(int ai_flags) {
  int f = ARES_AI_NOSORT; /* sorted by addrsort instead, with glibc's rules */
  if (ai_flags & AI_PASSIVE)
    f |= ARES_AI_PASSIVE;
  if (ai_flags & AI_NUMERICHOST)
    f |= ARES_AI_NUMERICHOST;
  if (ai_flags & AI_NUMERICSERV)
    f |= ARES_AI_NUMERICSERV;
  if (ai_flags & AI_V4MAPPED)
    f |= ARES_AI_V4MAPPED;
  if (ai_flags & AI_ALL)
    f |= ARES_AI_ALL;
  if (ai_flags & AI_ADDRCONFIG)
    f |= ARES_AI_ADDRCONFIG;
  if (ai_flags & AI_CANONNAME)
    f |= ARES_AI_CANONNAME;
  return f;
}

/* The families to ask for, one query each: their count, or 0. */
static unsigned families(int family, int fams[2]) {
  switch (family) {
  case AF_UNSPEC:
    fams[0] = AF_INET6;
    fams[1] = AF_INET;
    return 2;
  case AF_INET:
  case AF_INET6:
    fams[0] = family;
    return 1;
  default:
    return 0;
  }
}

static void send_query(cares_req *cr, unsigned i, const char *host, const char *service,
                       const ioa_resolve_hints *hints) {
  int fam = cr->slot[i].family;
  /* c-ares (1.18) looks every service up in /etc/services first, numbers
   * included: a scan of the whole file per query, most of a lookup's cost.
   * A decimal port (checked by ioa_resolve) means the same either way. */
  int flags = ares_flags(hints->flags);
  if (service && *service && service[strspn(service, "0123456789")] == '\0')
    flags |= ARES_AI_NUMERICSERV;
  struct ares_addrinfo_hints h = {
      .ai_flags = flags,
      .ai_family = fam,
      .ai_socktype = hints->socktype,
      .ai_protocol = hints->protocol,
  };
  /* getaddrinfo's NULL host means the wildcard or loopback address. */
  if (!host)
    host = (hints->flags & AI_PASSIVE) ? (fam == AF_INET6 ? "::" : "0.0.0.0")
                                       : (fam == AF_INET6 ? "::1" : "127.0.0.1");
  /* May call on_addrinfo at once (numeric, /etc/hosts, errors); that only
   * stores the answer and starts the defer. */
  ares_getaddrinfo(cr->c->channel, host, service, &h, on_addrinfo, cr->slot[i].query);
}

static int cares_start(ioa_resolve_req *req, const char *host, const char *service,
                       const ioa_resolve_hints *hints) {
  cares *c = req->r->backend;
  cares_req *cr = ioa__resolve_req_state(req);
  int fams[2];
  unsigned n = families(hints->family, fams);
  if (n == 0)
    return IOA_EAI_FAMILY;
  cares_query *qs[2] = {NULL, NULL};
  for (unsigned i = 0; i < n; i++) {
    qs[i] = ioa__calloc(1, sizeof *qs[i]);
    if (!qs[i]) {
      ioa__free(qs[0]);
      return -ENOMEM;
    }
  }
  cr->c = c;
  cr->want_canon = (hints->flags & AI_CANONNAME) != 0;
  ioa_defer_init(c->loop, &cr->defer, on_cares_defer, cr);
  cr->nslots = n;
  for (unsigned i = 0; i < n; i++) {
    cr->slot[i].ttl_s = IOA__TTL_UNKNOWN;
    cr->slot[i].family = fams[i];
    cr->slot[i].query = qs[i];
    *qs[i] = (cares_query){.c = c, .cr = cr, .slot = i};
  }
  c->nqueries += n;
  c->nattached += n;
  for (unsigned i = 0; i < n; i++)
    send_query(cr, i, host, service, hints);
  reschedule(c);
  return 0;
}

static void cares_detach(ioa_resolve_req *req) {
  cares_req *cr = ioa__resolve_req_state(req);
  cares *c = cr->c;
  ioa_defer_stop(&cr->defer); /* answers that arrived are not delivered */
  for (unsigned i = 0; i < cr->nslots; i++) {
    cares_query *q = cr->slot[i].query;
    if (q) {
      q->cr = NULL;
      cr->slot[i].query = NULL;
      c->nattached--;
    }
  }
  if (c->nattached == 0 && c->nqueries > 0) {
    ares_cancel(c->channel); /* only detached queries: end them now */
    reschedule(c);
  }
}

static void cares_release(ioa_resolve_req *req) {
  cares_req *cr = ioa__resolve_req_state(req);
  for (unsigned i = 0; i < cr->nslots; i++) {
    ioa__free(cr->slot[i].addrs);
    ioa__free(cr->slot[i].canonname);
  }
  ioa__free(cr->all);
}

const ioa__resolver_ops ioa__resolver_cares_ops = {
    .caps = IOA_RESOLVER_CAP_EARLY_FAMILIES | IOA_RESOLVER_CAP_SORTED,
    .req_size = sizeof(cares_req),
    .init = cares_init,
    .free = cares_free,
    .start = cares_start,
    .detach = cares_detach,
    .release = cares_release,
};

#endif
