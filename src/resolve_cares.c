/* SPDX-License-Identifier: MIT */
/* c-ares resolver backend: no threads, c-ares's sockets watched by the
 * ioasync loop (ioa_io via the socket-state callback) and its retransmit
 * timeouts driven by one ioa_timer.
 *
 * AF_UNSPEC lookups run as two ares_getaddrinfo() calls, one per family, so
 * the A and AAAA answers are delivered separately as they arrive (on_partial)
 * — RFC 8305 §3 needs that; a single AF_UNSPEC ares_getaddrinfo() waits for
 * both.
 *
 * c-ares has no per-query cancel.  A cancelled or timed-out request detaches
 * its queries (query->req = NULL) and their late callbacks just free them;
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

typedef struct cares_sock {
  ioa__cares *c;
  int fd;
  ioa_io io;
  struct cares_sock *next;
} cares_sock;

struct ioa__cares {
  ioa_resolver *r;
  ares_channel channel;
  ioa_timer timer;
  cares_sock *socks;
  unsigned nqueries;  /* ares_getaddrinfo calls whose callback has not run */
  unsigned nattached; /* of those, the ones a request still waits for */
};

struct ioa__cares_query {
  ioa__cares *c;
  ioa_resolve_req *req; /* NULL once detached */
  unsigned slot;
};

/* ------------------------------------------------ sockets and the timer */

static void reschedule(ioa__cares *c) {
  struct timeval tv;
  if (c->nqueries == 0 || !ares_timeout(c->channel, NULL, &tv)) {
    ioa_timer_stop(&c->timer);
    return;
  }
  uint64_t ns = (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
  if (ioa_timer_start(&c->timer, ns, 0) < 0)
    ioa_loop_warn(c->r->loop, "c-ares: cannot start its timer; lookups may stall");
}

static void on_sock_io(ioa_io *io, unsigned revents, void *data) {
  cares_sock *s = data;
  ioa__cares *c = s->c;
  int fd = s->fd;
  /* s may be freed inside ares_process_fd (socket closed). */
  ares_process_fd(c->channel,
                  (revents & (IOA_READ | IOA_ERROR | IOA_HUP)) ? fd : ARES_SOCKET_BAD,
                  (revents & IOA_WRITE) ? fd : ARES_SOCKET_BAD);
  reschedule(c);
}

static void on_ares_timer(ioa_timer *t, void *data) {
  ioa__cares *c = data;
  ares_process_fd(c->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  reschedule(c);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable) {
  ioa__cares *c = data;
  cares_sock **pp = &c->socks;
  while (*pp && (*pp)->fd != fd)
    pp = &(*pp)->next;
  cares_sock *s = *pp;
  if (!readable && !writable) {
    if (s) {
      ioa_io_stop(&s->io); /* c-ares closes fd right after this */
      *pp = s->next;
      ioa__free(s);
    }
    return;
  }
  if (!s) {
    s = ioa__calloc(1, sizeof *s);
    if (!s) {
      ioa_loop_warn(c->r->loop, "c-ares: out of memory watching fd %d", fd);
      return; /* its queries end by timeout */
    }
    s->c = c;
    s->fd = fd;
    ioa_io_init(c->r->loop, &s->io, fd, on_sock_io, s);
    s->next = c->socks;
    c->socks = s;
  }
  int e = ioa_io_start(&s->io, (readable ? IOA_READ : 0u) | (writable ? IOA_WRITE : 0u));
  if (e < 0)
    ioa_loop_warn(c->r->loop, "c-ares: cannot watch fd %d: %s", fd, ioa_strerror(e));
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

/* Rank for choosing one status when both families failed: the most
 * informative wins (a definite "no such name" over a transient failure over
 * "no address of this family"). */
static int status_rank(int st) {
  if (st == IOA_EAI_NONAME)
    return 5;
  if (st == IOA_EAI_AGAIN)
    return 4;
  if (st == IOA_EAI_FAIL)
    return 3;
  if (st == IOA_EAI_NODATA)
    return 1;
  return 2;
}

static void on_cares_defer(ioa_defer *d, void *data) {
  ioa_resolve_req *req = data;
  unsigned arrived = 0;
  for (unsigned i = 0; i < req->nslots; i++) {
    ioa__resolve_family_slot *s = &req->slot[i];
    if (!s->arrived)
      continue;
    arrived++;
    if (s->delivered)
      continue;
    s->delivered = 1;
    if (s->status == 0 && !ioa__resolve_partial(req, s->family, s->addrs, s->naddrs))
      return; /* cancelled (or resolver freed) inside on_partial */
  }
  if (arrived < req->nslots)
    return;

  size_t total = 0;
  int status = 0, best = -1;
  const char *message = NULL;
  for (unsigned i = 0; i < req->nslots; i++) {
    ioa__resolve_family_slot *s = &req->slot[i];
    total += s->naddrs;
    if (s->status != 0 && status_rank(s->status) > best) {
      best = status_rank(s->status);
      status = s->status;
      message = s->message;
    }
  }
  if (total > 0) {
    /* Families in slot order: AAAA first, then A (RFC 6724's usual
     * preference; on_partial already gave arrival order). */
    req->addrs = ioa__malloc(total * sizeof *req->addrs);
    if (!req->addrs) {
      ioa__resolve_finish(req, IOA_EAI_MEMORY, 0, NULL, NULL, 0);
      return;
    }
    for (unsigned i = 0; i < req->nslots; i++) {
      if (req->slot[i].naddrs)
        memcpy(req->addrs + req->naddrs, req->slot[i].addrs,
               req->slot[i].naddrs * sizeof *req->addrs);
      req->naddrs += req->slot[i].naddrs;
    }
    status = 0;
    message = NULL;
  }
  ioa__resolve_finish(req, status, 0, message, req->addrs, req->naddrs);
}

static void on_addrinfo(void *arg, int st, int timeouts, struct ares_addrinfo *res) {
  ioa__cares_query *q = arg;
  ioa__cares *c = q->c;
  ioa_resolve_req *req = q->req;
  c->nqueries--;
  if (req) {
    c->nattached--;
    ioa__resolve_family_slot *s = &req->slot[q->slot];
    s->query = NULL;
    s->arrived = 1;
    s->status = status_from_ares(st);
    s->message = ares_strerror(st);
    if (st == ARES_SUCCESS && res) {
      size_t n = 0;
      for (struct ares_addrinfo_node *p = res->nodes; p; p = p->ai_next)
        if (p->ai_family == s->family && p->ai_addrlen <= sizeof(struct sockaddr_storage))
          n++;
      if (n) {
        s->addrs = ioa__calloc(n, sizeof *s->addrs);
        if (!s->addrs) {
          s->status = IOA_EAI_MEMORY;
          s->message = NULL;
        } else {
          for (struct ares_addrinfo_node *p = res->nodes; p; p = p->ai_next) {
            if (p->ai_family != s->family || p->ai_addrlen > sizeof(struct sockaddr_storage))
              continue;
            ioa_addr *a = &s->addrs[s->naddrs++];
            a->family = p->ai_family;
            a->socktype = p->ai_socktype;
            a->protocol = p->ai_protocol;
            a->addrlen = p->ai_addrlen;
            memcpy(&a->addr, p->ai_addr, p->ai_addrlen);
          }
        }
      } else {
        s->status = IOA_EAI_NODATA;
        s->message = ares_strerror(ARES_ENODATA);
      }
    }
    ioa_defer_start(&req->defer); /* deliver outside c-ares */
  }
  if (res)
    ares_freeaddrinfo(res);
  ioa__free(q);
}

/* ----------------------------------------------------------------- API */

int ioa__cares_new(ioa_resolver *r, const ioa_resolver_options *opts) {
  ioa__cares *c = ioa__calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->r = r;
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
  ioa_timer_init(r->loop, &c->timer, on_ares_timer, c);
  r->cares = c;
  return 0;
}

void ioa__cares_free(ioa_resolver *r) {
  ioa__cares *c = r->cares;
  if (!c)
    return;
  /* Every request is detached by now: the EDESTRUCTION callbacks only free
   * queries, and the socket-state callback stops the watchers. */
  ares_destroy(c->channel);
  ioa_timer_stop(&c->timer);
  while (c->socks) {
    cares_sock *s = c->socks;
    c->socks = s->next;
    ioa_io_stop(&s->io);
    ioa__free(s);
  }
  ioa__free(c);
  r->cares = NULL;
}

static int ares_flags(int ai_flags) {
  int f = ARES_AI_NOSORT; /* sorting would connect() UDP probes; we keep resolver order */
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
  return f;
}

int ioa__cares_start(ioa_resolve_req *req, const char *host, const char *service,
                     const ioa_resolve_hints *hints) {
  ioa__cares *c = req->r->cares;
  int fams[2];
  unsigned n;
  switch (hints->family) {
  case AF_UNSPEC:
    fams[0] = AF_INET6;
    fams[1] = AF_INET;
    n = 2;
    break;
  case AF_INET:
  case AF_INET6:
    fams[0] = hints->family;
    n = 1;
    break;
  default:
    return IOA_EAI_FAMILY;
  }
  ioa__cares_query *qs[2] = {NULL, NULL};
  for (unsigned i = 0; i < n; i++) {
    qs[i] = ioa__calloc(1, sizeof *qs[i]);
    if (!qs[i]) {
      ioa__free(qs[0]);
      return -ENOMEM;
    }
  }
  ioa_defer_init(req->r->loop, &req->defer, on_cares_defer, req);
  req->nslots = n;
  for (unsigned i = 0; i < n; i++) {
    req->slot[i].family = fams[i];
    req->slot[i].query = qs[i];
    qs[i]->c = c;
    qs[i]->req = req;
    qs[i]->slot = i;
  }
  c->nqueries += n;
  c->nattached += n;
  /* c-ares (1.18) looks every service up in /etc/services first, numbers
   * included: a scan of the whole file per query, most of a lookup's cost.
   * A decimal port (checked by ioa_resolve) means the same either way. */
  int flags = ares_flags(hints->flags);
  if (service && *service && service[strspn(service, "0123456789")] == '\0')
    flags |= ARES_AI_NUMERICSERV;
  for (unsigned i = 0; i < n; i++) {
    struct ares_addrinfo_hints h = {
        .ai_flags = flags,
        .ai_family = fams[i],
        .ai_socktype = hints->socktype,
        .ai_protocol = hints->protocol,
    };
    /* getaddrinfo's NULL host means the wildcard or loopback address. */
    const char *name = host;
    if (!name)
      name = (hints->flags & AI_PASSIVE) ? (fams[i] == AF_INET6 ? "::" : "0.0.0.0")
                                         : (fams[i] == AF_INET6 ? "::1" : "127.0.0.1");
    /* May call on_addrinfo at once (numeric, /etc/hosts, errors); that only
     * stores the answer and starts the defer. */
    ares_getaddrinfo(c->channel, name, service, &h, on_addrinfo, qs[i]);
  }
  reschedule(c);
  return 0;
}

void ioa__cares_detach(ioa_resolve_req *req) {
  ioa__cares *c = req->r->cares;
  for (unsigned i = 0; i < req->nslots; i++) {
    ioa__cares_query *q = req->slot[i].query;
    if (q) {
      q->req = NULL;
      req->slot[i].query = NULL;
      c->nattached--;
    }
  }
  if (c->nattached == 0 && c->nqueries > 0) {
    ares_cancel(c->channel); /* only detached queries: end them now */
    reschedule(c);
  }
}

#else /* !IOA_HAVE_CARES */

int ioa__cares_new(ioa_resolver *r, const ioa_resolver_options *opts) { return -ENOTSUP; }
void ioa__cares_free(ioa_resolver *r) {}
int ioa__cares_start(ioa_resolve_req *req, const char *host, const char *service,
                     const ioa_resolve_hints *hints) {
  return -ENOTSUP;
}
void ioa__cares_detach(ioa_resolve_req *req) {}

#endif
