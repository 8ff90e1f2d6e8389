/* SPDX-License-Identifier: MIT */
/* Asynchronous name resolution: the dispatch.
 *
 * Input checks, the numeric fast path, the answer cache (resolve_cache.c),
 * the hosts table (resolve_hosts.c), every request's lifecycle (loop
 * reference, timeout, cancel, completion helpers) and the public API.  The
 * lookups themselves belong to a backend, chosen once in ioa_resolver_new()
 * and reached only through its ioa__resolver_ops (resolve_internal.h): the
 * getaddrinfo thread pool (resolve_pool.c) or c-ares (resolve_cares.c).
 *
 * Each request holds a loop reference (ioa_loop_ref) until on_done.  Answers
 * found here (numeric, cached, hosts) are delivered from req->defer, so no
 * callback ever runs inside ioa_resolve().
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "addr_internal.h"
#include "addrsort.h"
#include "alloc.h"
#include "ioasync/error.h"
#include "loop_internal.h"
#include "resolve_internal.h"
#include "sys.h"

#define HOST_MAX 253
#define LABEL_MAX 63
#define SERVICE_MAX 255

/* Every backend by ioa_resolver_backend; NULL if not built in.  The only
 * place that tells backends apart. */
static const ioa__resolver_ops *const backends[] = {
    [IOA_RESOLVER_GETADDRINFO] = &ioa__resolver_pool_ops,
#if IOA_HAVE_CARES
    [IOA_RESOLVER_CARES] = &ioa__resolver_cares_ops,
#else
    [IOA_RESOLVER_CARES] = NULL,
#endif
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

/* A lookup's host and service, checked and NUL-terminated. */
typedef struct lookup {
  const char *host, *service; /* NULL, the caller's string, or hbuf / sbuf */
  size_t hlen, slen;
  int port; /* the service's number, or -1 (a name, or none) */
  char hbuf[HOST_MAX + 2], sbuf[SERVICE_MAX + 1];
} lookup;

/* ------------------------------------------------------------- helpers */

int ioa__resolve_addrs_from_ai(const struct addrinfo *ai, ioa_addr **out, size_t *n) {
  size_t count = 0;
  for (const struct addrinfo *p = ai; p; p = p->ai_next)
    if (p->ai_addr && p->ai_addrlen <= sizeof(struct sockaddr_storage))
      count++;
  *out = NULL;
  *n = 0;
  if (count == 0)
    return 0;
  ioa_addr *a = ioa__calloc(count, sizeof *a);
  if (!a)
    return EAI_MEMORY;
  size_t i = 0;
  for (const struct addrinfo *p = ai; p; p = p->ai_next) {
    if (!p->ai_addr || p->ai_addrlen > sizeof(struct sockaddr_storage))
      continue;
    a[i].family = p->ai_family;
    a[i].socktype = p->ai_socktype;
    a[i].protocol = p->ai_protocol;
    a[i].addrlen = p->ai_addrlen;
    memcpy(&a[i].addr, p->ai_addr, p->ai_addrlen);
    i++;
  }
  *out = a;
  *n = count;
  return 0;
}

int ioa__resolve_gai_status(int rc, int sys_errno, char *msg, size_t msgsize) {
  if (rc == 0) { /* the common case: no formatting (snprintf costs as much as a cache hit) */
    const char *ok = ioa_strerror(0);
    size_t n = strlen(ok);
    if (n >= msgsize)
      n = msgsize - 1;
    memcpy(msg, ok, n);
    msg[n] = '\0';
    return 0;
  }
  int status = ioa_err_from_gai(rc);
  if (rc == EAI_SYSTEM)
    snprintf(msg, msgsize, "%s: %s", gai_strerror(rc), ioa_strerror(-sys_errno));
  else
    snprintf(msg, msgsize, "%s", gai_strerror(rc));
  return status;
}

/* ------------------------------------------------------- input checks */

/* nul_free: the caller gave no length (strlen found it), so no NUL byte can
 * hide inside.  Labels are found with memchr: a name is checked in a few
 * calls rather than a branch per byte (this runs on every by-name connect). */
static int check_host(const char *host, size_t len, int nul_free) {
  if (len == 0 || (!nul_free && memchr(host, '\0', len)))
    return IOA_EHOSTNAME;
  size_t body = len;
  if (host[len - 1] == '.')
    body--; /* the root label's dot does not count */
  if (body == 0 || body > HOST_MAX)
    return IOA_EHOSTNAME;
  const char *p = host, *end = host + body;
  for (;;) {
    const char *dot = memchr(p, '.', (size_t)(end - p));
    size_t label = (size_t)((dot ? dot : end) - p);
    if (label == 0 || label > LABEL_MAX)
      return IOA_EHOSTNAME;
    if (!dot)
      return 0;
    p = dot + 1;
    if (p == end)
      return IOA_EHOSTNAME; /* an empty label before the root's dot */
  }
}

static int check_service(const char *service, size_t len, int nul_free, int socktype,
                         int *port) {
  *port = -1;
  if (len == 0 || len > SERVICE_MAX || (!nul_free && memchr(service, '\0', len)))
    return IOA_EAI_SERVICE;
  unsigned long num = 0;
  size_t i = 0;
  for (; i < len; i++) {
    unsigned d = (unsigned)(unsigned char)service[i] - '0';
    if (d > 9)
      break;
    num = num > 65535 ? num : num * 10 + d;
  }
  if (i == len) { /* getaddrinfo would silently truncate a larger number to 16 bits */
    *port = (int)num;
    return num <= 65535 ? 0 : IOA_EAI_SERVICE;
  }
  /* A name: the services database is a local file, cheap enough for the
   * loop thread, and catches typos without spending a thread. */
  int named;
  int e = ioa__service_port(service, len, socktype, &named);
  if (e == -ENOENT)
    return IOA_EAI_SERVICE;
  if (e == -ERANGE)
    return IOA_EAI_OVERFLOW;
  return e;
}

/* A NUL-terminated s: the caller's own when given so, else a copy in buf
 * (len is checked to fit). */
static const char *terminated(const char *s, size_t len, size_t given_len, char *buf) {
  if (given_len == IOA_NUL_TERMINATED)
    return s;
  memcpy(buf, s, len);
  buf[len] = '\0';
  return buf;
}

/* host and service (either may be NULL) given with their lengths, or
 * IOA_NUL_TERMINATED. */
static int check_parts(const char *host, size_t host_len, const char *service,
                       size_t service_len, int socktype, lookup *lk) {
  lk->host = lk->service = NULL;
  lk->hlen = lk->slen = 0;
  lk->port = -1;
  if (!host && !service)
    return IOA_EAI_NONAME;
  if (host) {
    int nul_free = host_len == IOA_NUL_TERMINATED;
    lk->hlen = nul_free ? strlen(host) : host_len;
    int rc = check_host(host, lk->hlen, nul_free);
    if (rc < 0)
      return rc;
    lk->host = terminated(host, lk->hlen, host_len, lk->hbuf);
  }
  if (service) {
    int nul_free = service_len == IOA_NUL_TERMINATED;
    lk->slen = nul_free ? strlen(service) : service_len;
    int rc = check_service(service, lk->slen, nul_free, socktype, &lk->port);
    if (rc < 0)
      return rc;
    lk->service = terminated(service, lk->slen, service_len, lk->sbuf);
  }
  return 0;
}

static int check_lookup(const ioa_resolve_params *p, lookup *lk) {
  return check_parts(p->host, p->host_len, p->service, p->service_len, p->hints.socktype, lk);
}

/* --------------------------------------------------- request completion */

static void found_clear(ioa__found *f) {
  ioa__free(f->addrs);
  ioa__free(f->canonname);
  f->addrs = NULL;
  f->canonname = NULL;
}

static void req_free(ioa_resolve_req *req) {
  if (req->release)
    req->release(req);
  found_clear(&req->found);
  ioa__free(req->cache_key);
  ioa__free(req);
}

/* The backend forgets a request completing early. */
static void req_detach(ioa_resolve_req *req) {
  if (req->sent) {
    req->sent = 0;
    req->r->ops->detach(req);
  }
}

void ioa__resolve_finish(ioa_resolve_req *req, const ioa__answer *a) {
  ioa_resolver *r = req->r;
  ioa__list_remove(&req->link);
  ioa_timer_stop(&req->timer);
  ioa_defer_stop(&req->defer);
  req->sent = 0;
  req->done = 1;
  if (req->cache_key && r->cache) /* before on_done: it may free r */
    ioa__rcache_put(r->cache, req->cache_key, req->cache_keylen, ioa_loop_now(r->loop), a);
  /* Before on_done: the callback may free the loop. */
  ioa_loop_unref(r->loop);
  ioa_resolve_result res = {
      .status = a->status,
      .sys_errno = a->sys_errno,
      .message = a->message ? a->message : ioa_strerror(a->status),
      .addrs = a->addrs,
      .naddrs = a->naddrs,
      .canonname = a->status == 0 ? a->canonname : NULL,
  };
  req->on_done(req, &res, req->data);
  if (!req->in_partial)
    req_free(req);
}

void ioa__resolve_fail(ioa_resolve_req *req, int status, const char *message) {
  ioa__answer a = {.status = status, .message = message, .ttl_s = IOA__TTL_UNKNOWN};
  ioa__resolve_finish(req, &a);
}

int ioa__resolve_partial(ioa_resolve_req *req, int family, const ioa_addr *addrs,
                         size_t naddrs) {
  if (!req->on_partial || naddrs == 0)
    return 1;
  req->in_partial = 1;
  req->on_partial(req, family, addrs, naddrs, req->data);
  req->in_partial = 0;
  if (req->done) {
    req_free(req);
    return 0;
  }
  return 1;
}

void ioa__resolve_sort(ioa_resolve_req *req, ioa_addr *v, size_t n) {
  ioa__resolver_order(req->r, v, n);
}

void ioa__resolver_order(ioa_resolver *r, ioa_addr *v, size_t n) {
  if (r && n > 1)
    (void)ioa__addrsort_sort(ioa__hosts_sorter(r->hosts), v, n);
}

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

int ioa__resolve_worse_status(int a, int b) {
  if (a == 0)
    return b;
  if (b == 0)
    return a;
  return status_rank(b) > status_rank(a) ? b : a;
}

void ioa_resolve_cancel(ioa_resolve_req *req) {
  if (!req || req->done)
    return;
  req_detach(req);
  ioa__resolve_fail(req, IOA_EAI_CANCELED, NULL);
}

static void on_timeout(ioa_timer *t, void *data) {
  (void)t;
  ioa_resolve_req *req = data;
  req_detach(req);
  snprintf(req->message, sizeof req->message, "Name resolution timed out after %u ms",
           req->timeout_ms);
  ioa__resolve_fail(req, -ETIMEDOUT, req->message);
}

/* An answer found without a backend, on the loop iteration after it. */
static void on_local_defer(ioa_defer *d, void *data) {
  (void)d;
  ioa_resolve_req *req = data;
  const ioa__found *f = &req->found;
  ioa__answer a = {.status = f->status,
                   .sys_errno = f->sys_errno,
                   .message = f->message,
                   .addrs = f->addrs,
                   .naddrs = f->naddrs,
                   .canonname = f->canonname,
                   .ttl_s = IOA__TTL_UNKNOWN};
  ioa__resolve_finish(req, &a);
}

/* -------------------------------------------------------- public API */

int ioa_resolver_have_cares(void) { return backends[IOA_RESOLVER_CARES] != NULL; }

unsigned ioa_resolver_capabilities(const ioa_resolver *r) { return r ? r->ops->caps : 0; }

void ioa_resolver_options_init_size(ioa_resolver_options *o, size_t size) {
  static const ioa_resolver_options defaults = {.struct_size = sizeof defaults,
                                                .backend = IOA_RESOLVER_GETADDRINFO};
  IOA__INIT(o, size, &defaults);
}

void ioa_resolve_params_init_size(ioa_resolve_params *p, size_t size) {
  static const ioa_resolve_params defaults = {.struct_size = sizeof defaults,
                                              .host_len = IOA_NUL_TERMINATED,
                                              .service_len = IOA_NUL_TERMINATED,
                                              .hints = {.family = AF_UNSPEC}};
  IOA__INIT(p, size, &defaults);
}

int ioa_resolver_new(ioa_loop *loop, const ioa_resolver_options *user_opts, ioa_resolver **out) {
  ioa_resolver_options opts;
  ioa_resolver_options_init(&opts);
  if (!loop || !out || (user_opts && IOA__IMPORT(&opts, user_opts) < 0))
    return IOA_EBADPARAM;
  if ((unsigned)opts.backend >= NBACKENDS)
    return IOA_EBADPARAM;
  const ioa__resolver_ops *ops = backends[opts.backend];
  if (!ops)
    return -ENOTSUP;
  ioa_resolver *r = ioa__calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  r->loop = loop;
  r->ops = ops;
  r->default_timeout_ms = opts.default_timeout_ms;
  ioa__list_init(&r->reqs);
  int rc = ioa__hosts_new(&r->hosts);
  if (rc == 0 && opts.cache_ttl_ms)
    rc = ioa__rcache_new(opts.cache_ttl_ms, opts.cache_max, &r->cache);
  if (rc == 0)
    rc = ops->init(r, &opts, &r->backend);
  if (rc < 0) {
    ioa__rcache_free(r->cache);
    ioa__hosts_free(r->hosts);
    ioa__free(r);
    return rc;
  }
  *out = r;
  return 0;
}

void ioa_resolver_free(ioa_resolver *r) {
  if (!r || r->freeing)
    return;
  r->freeing = 1; /* on_done(CANCELED) callbacks may not start new lookups */
  ioa__list *n;
  while ((n = ioa__list_first(&r->reqs)) != NULL)
    ioa_resolve_cancel(IOA__CONTAINER_OF(n, ioa_resolve_req, link));
  r->ops->free(r->backend);
  ioa__rcache_free(r->cache);
  ioa__hosts_free(r->hosts);
  ioa__free(r);
}

void ioa_resolver_get_stats_size(const ioa_resolver *r, ioa_resolver_stats *out, size_t size) {
  if (!out)
    return;
  ioa_resolver_stats st;
  memset(&st, 0, sizeof st);
  if (r) {
    st = r->stats;
    st.cache_entries = ioa__rcache_count(r->cache);
  }
  memset(out, 0, size);
  memcpy(out, &st, size < sizeof st ? size : sizeof st);
}

void ioa__resolver_set_hosts_table(ioa_resolver *r, int on) { r->no_hosts_table = !on; }

void ioa_resolver_cache_flush(ioa_resolver *r) {
  if (!r)
    return;
  ioa__rcache_flush(r->cache);
  ioa__hosts_expire(r->hosts); /* and look at /etc/hosts and co. again */
}

/* Only ever called by ioa_loop_free(), which then runs the posts still
 * queued: detached results free themselves there. */
static void default_free(void *obj) { ioa_resolver_free(obj); }

int ioa_resolver_default(ioa_loop *loop, ioa_resolver **out) {
  if (!loop || !out)
    return IOA_EBADPARAM;
  ioa_resolver *r = ioa__loop_slot_get(loop, IOA__LOOP_SLOT_RESOLVER);
  if (!r) {
    int rc = ioa_resolver_new(loop, NULL, &r);
    if (rc < 0)
      return rc;
    ioa__loop_slot_set(loop, IOA__LOOP_SLOT_RESOLVER, r, default_free);
  }
  *out = r;
  return 0;
}

/* ----------------------------------------------------------- a lookup */

/* Whether host cannot be numeric: getaddrinfo's numeric forms (inet_aton's
 * "127.1" and "0x7f.1", IPv6 with ':', "*" for no host) use no other
 * characters.  Saves the numeric parse for names. */
static int surely_a_name(const char *host, size_t len) {
  if (memchr(host, ':', len))
    return 0; /* IPv6, perhaps with a scope name after '%' */
  for (size_t i = 0; i < len; i++) {
    char c = host[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
          c == 'x' || c == 'X' || c == '.' || c == ':' || c == '*'))
      return 1;
  }
  return 0;
}

/* Returns 1 if answered (req->found filled), 0 if a real lookup is
 * needed. */
static int try_numeric(ioa_resolve_req *req, const lookup *lk, const ioa_resolve_hints *hints) {
  if (lk->host && !(hints->flags & AI_NUMERICHOST) && surely_a_name(lk->host, lk->hlen))
    return 0;
  struct addrinfo h = {
      .ai_family = hints->family,
      .ai_socktype = hints->socktype,
      .ai_protocol = hints->protocol,
      /* Numeric-only never blocks: no NSS, no DNS, no /etc/services (and
       * AI_CANONNAME gives the text back, with no reverse lookup). */
      .ai_flags = hints->flags | AI_NUMERICHOST | AI_NUMERICSERV,
  };
  struct addrinfo *ai = NULL;
  errno = 0;
  int rc = ioa__sys_getaddrinfo(lk->host, lk->service, &h, &ai);
  int e = errno;
  if (rc == EAI_NONAME) {
    /* Not numeric — unless the caller asked for numeric-only anyway, in
     * which case this is the final answer.  A ':' never appears in a DNS
     * name: a bad IPv6 literal (or scope) must not become a DNS query. */
    int host_final = !lk->host || (hints->flags & AI_NUMERICHOST) || memchr(lk->host, ':', lk->hlen);
    int serv_final =
        !lk->service || (hints->flags & AI_NUMERICSERV) || lk->port >= 0;
    if (!(host_final && serv_final))
      return 0;
  }
  ioa__found *f = &req->found;
  if (rc == 0) {
    rc = ioa__resolve_addrs_from_ai(ai, &f->addrs, &f->naddrs);
    if (rc == 0 && ai->ai_canonname) {
      size_t cl = strlen(ai->ai_canonname) + 1;
      f->canonname = ioa__malloc(cl);
      if (f->canonname)
        memcpy(f->canonname, ai->ai_canonname, cl);
      else
        rc = EAI_MEMORY;
    }
    freeaddrinfo(ai);
  }
  f->sys_errno = rc == EAI_SYSTEM ? (e ? e : EIO) : 0;
  f->status = ioa__resolve_gai_status(rc, f->sys_errno, req->message, sizeof req->message);
  f->message = req->message;
  return 1;
}

/* The answer cache: 1 if it answered key (f filled). */
static int cache_lookup(ioa_resolver *r, const unsigned char *key, size_t klen, ioa__found *f) {
  return ioa__rcache_get(r->cache, key, klen, ioa_loop_now(r->loop), &f->addrs, &f->naddrs,
                         &f->canonname) == 1;
}

/* A lookup going to the backend keeps its key, so that its answer is
 * stored when it arrives; without memory for it, it just goes uncached. */
static void cache_remember(ioa_resolve_req *req, const unsigned char *key, size_t klen) {
  req->cache_key = ioa__malloc(klen);
  if (req->cache_key) {
    memcpy(req->cache_key, key, klen);
    req->cache_keylen = klen;
  }
}

/* The hosts table (refreshed by the caller): 1 if it answered (f filled),
 * 0 if the backend must, or -ENOMEM.  *absent: the hosts file lacks the
 * name. */
static int hosts_lookup(ioa_resolver *r, const lookup *lk, const ioa_resolve_hints *hints,
                        ioa_addr *buf, size_t cap, ioa__found *f, int *absent) {
  int rc = ioa__hosts_lookup_into(r->hosts, lk->host, lk->service, lk->port, hints, buf, cap,
                                  &f->addrs, &f->naddrs, &f->canonname);
  *absent = rc == IOA__HOSTS_ABSENT;
  if (rc != IOA__HOSTS_ANSWERED)
    return rc < 0 ? rc : 0;
  return 1;
}

/* The hosts table (refreshed by the caller), then the cache (the table is
 * cheaper, and never stale, so it goes first).  1 if one answered (f
 * filled, the hosts table's answer in buf if it fits; *counter the
 * statistic it counts in), 0 if neither did (the cache key in key[*klen]
 * when the cache is on), or -ENOMEM.  *absent: the hosts file lacks the
 * name. */
static int found_locally(ioa_resolver *r, const lookup *lk, const ioa_resolve_hints *hints,
                         ioa_addr *buf, size_t cap, ioa__found *f, unsigned char *key,
                         size_t *klen, int *absent, uint64_t **counter) {
  int rc = 0;
  *absent = 0;
  *klen = 0;
  if (lk->host && !r->no_hosts_table) {
    rc = hosts_lookup(r, lk, hints, buf, cap, f, absent);
    *counter = &r->stats.hosts;
    if (rc != 0)
      return rc;
  }
  if (r->cache) {
    *klen = ioa__rcache_key(key, lk->host, lk->hlen, lk->service, lk->slen, hints);
    rc = cache_lookup(r, key, *klen, f);
    *counter = &r->stats.cache_hits;
  }
  return rc;
}

/* RFC 8305 section 3 for every backend: may the two families be looked up
 * apart, each answer acted on as it arrives?  Only for a caller that acts
 * on them (on_partial), and only where one AF_UNSPEC
 * getaddrinfo() would give the same answer: no flag that needs one answer
 * (AI_CANONNAME: one canonical name; AI_V4MAPPED and AI_ALL, which glibc
 * ignores for AF_UNSPEC but another C library may not), a name the hosts
 * file does not have (else files would answer both families at once),
 * a gai.conf the sorter models (it orders the joined answer), and
 * AI_ADDRCONFIG narrowing to neither or both families (narrowing to one
 * is a lookup of that family alone, left as it is). */
static void decide_apart(ioa_resolve_req *req, const ioa_resolve_hints *hints, int absent) {
  int flags = hints->flags;
  /* Without on_partial nobody acts early: one call costs half as much. */
  if (!req->on_partial || hints->family != AF_UNSPEC || !absent ||
      (flags & (AI_CANONNAME | AI_V4MAPPED | AI_ALL)))
    return;
  ioa__addrsort *sorter = ioa__hosts_sorter(req->r->hosts);
  if (!ioa__addrsort_exact(sorter))
    return;
  if (flags & AI_ADDRCONFIG) {
    int v4, v6;
    ioa__addrsort_families(sorter, &v4, &v6);
    if (v4 != v6)
      return;
    flags &= ~AI_ADDRCONFIG; /* decided here, once for both */
  }
  req->families_apart = 1;
  req->flags_apart = flags;
}

/* Hand req to the backend, with its timeout.  Returns what start did. */
static int start_backend(ioa_resolve_req *req, const lookup *lk, const ioa_resolve_hints *hints) {
  int rc = req->r->ops->start(req, lk->host, lk->service, hints);
  if (rc < 0)
    return rc;
  req->sent = 1;
  if (req->timeout_ms) {
    int e = ioa_timer_start(&req->timer, (uint64_t)req->timeout_ms * 1000000u, 0);
    if (e < 0) {
      req_detach(req);
      return e;
    }
  }
  return rc;
}

/* Answer req from the numeric fast path, the hosts table or the cache
 * (delivered on the next loop iteration), else send it to the backend.
 * *counter gets the statistic the lookup counts in.  Returns 0 or a
 * negative code. */
static int answer(ioa_resolve_req *req, const lookup *lk, const ioa_resolve_hints *hints,
                  uint64_t **counter) {
  ioa_resolver *r = req->r;
  int absent = 0;
  unsigned char key[IOA_RCACHE_KEY_MAX];
  size_t klen = 0;
  /* Names skip the numeric parse (surely_a_name), so it goes first. */
  int rc = try_numeric(req, lk, hints);
  *counter = &r->stats.numeric;
  if (rc == 0 && lk->host && !r->no_hosts_table)
    ioa__hosts_refresh(r->hosts, ioa_loop_now(r->loop));
  if (rc == 0)
    rc = found_locally(r, lk, hints, NULL, 0, &req->found, key, &klen, &absent, counter);
  if (rc < 0)
    return rc;
  if (rc == 1) {
    ioa_defer_start(&req->defer);
    return 0;
  }
  decide_apart(req, hints, absent);
  if (r->cache)
    cache_remember(req, key, klen);
  rc = start_backend(req, lk, hints);
  *counter = rc == IOA__RESOLVE_JOINED ? &r->stats.joined : &r->stats.sent;
  return rc < 0 ? rc : 0;
}

static int same_hints(const ioa_resolve_hints *a, const ioa_resolve_hints *b) {
  return a->family == b->family && a->socktype == b->socktype && a->protocol == b->protocol &&
         a->flags == b->flags;
}

/* The memo answers if it holds exactly this question, asked since the
 * table last changed. */
static int memo_get(ioa_resolver *r, const char *host, const char *service,
                    const ioa_resolve_hints *hints, ioa_addr *out) {
  const ioa__hosts_memo *m = &r->memo;
  if (!m->valid || m->generation != ioa__hosts_generation(r->hosts) ||
      !same_hints(&m->hints, hints) || strcmp(m->host, host) != 0 ||
      strcmp(m->service, service ? service : "") != 0)
    return 0;
  *out = m->addr;
  return 1;
}

static void memo_put(ioa_resolver *r, const lookup *lk, const ioa_resolve_hints *hints,
                     const ioa_addr *a) {
  ioa__hosts_memo *m = &r->memo;
  m->valid = 0;
  /* Sorting and AI_ADDRCONFIG read interface state the generation does not
   * follow; a named service, /etc/services. */
  if ((hints->flags & AI_ADDRCONFIG) || lk->hlen >= sizeof m->host ||
      (lk->service && lk->port < 0) || lk->slen >= sizeof m->service)
    return;
  memcpy(m->host, lk->host, lk->hlen + 1);
  memcpy(m->service, lk->service ? lk->service : "", lk->slen + 1);
  m->hints = *hints;
  m->addr = *a;
  m->generation = ioa__hosts_generation(r->hosts);
  m->valid = 1;
}

int ioa__resolve_at_hand(ioa_resolver *r, const char *host, const char *service,
                         const ioa_resolve_hints *hints, ioa_addr *buf, size_t cap,
                         ioa_addr **addrs, size_t *n) {
  *addrs = NULL;
  *n = 0;
  if (!host || r->freeing || (r->no_hosts_table && !r->cache) || cap == 0)
    return 0;
  if (!r->no_hosts_table) {
    ioa__hosts_refresh(r->hosts, ioa_loop_now(r->loop)); /* may change the generation */
    if (memo_get(r, host, service, hints, buf)) {
      r->stats.lookups++;
      r->stats.hosts++;
      *addrs = buf;
      *n = 1;
      return 1;
    }
  }
  lookup lk;
  if (check_parts(host, IOA_NUL_TERMINATED, service, IOA_NUL_TERMINATED, hints->socktype, &lk) <
          0 ||
      (hints->flags & AI_NUMERICHOST) || !surely_a_name(lk.host, lk.hlen))
    return 0;
  ioa__found f = {0};
  unsigned char key[IOA_RCACHE_KEY_MAX];
  size_t klen;
  int absent;
  uint64_t *counter = NULL;
  if (found_locally(r, &lk, hints, buf, cap, &f, key, &klen, &absent, &counter) != 1)
    return 0; /* nothing was kept */
  ioa__free(f.canonname); /* the connector has no use for it */
  if (counter == &r->stats.hosts && f.naddrs == 1)
    memo_put(r, &lk, hints, f.addrs);
  r->stats.lookups++;
  (*counter)++;
  *addrs = f.addrs;
  *n = f.naddrs;
  return 1;
}

static ioa_resolve_req *req_new(ioa_resolver *r, const ioa_resolve_params *p) {
  size_t size = sizeof(ioa_resolve_req) + r->ops->req_size;
  /* malloc + memset, not calloc: glibc's calloc skips the per-thread cache. */
  ioa_resolve_req *req = ioa__malloc(size);
  if (!req)
    return NULL;
  memset(req, 0, size);
  req->r = r;
  req->on_done = p->on_done;
  req->on_partial = p->on_partial;
  req->data = p->data;
  req->release = r->ops->release;
  req->timeout_ms = p->timeout_ms ? p->timeout_ms : r->default_timeout_ms;
  ioa__list_init(&req->link);
  ioa_timer_init(r->loop, &req->timer, on_timeout, req);
  ioa_defer_init(r->loop, &req->defer, on_local_defer, req);
  return req;
}

int ioa_resolve(ioa_resolver *r, const ioa_resolve_params *user_p, ioa_resolve_req **out) {
  ioa_resolve_params copy;
  const ioa_resolve_params *p = user_p;
  if (!r || !p)
    return IOA_EBADPARAM;
  if (p->struct_size != sizeof *p) { /* another header's layout */
    ioa_resolve_params_init(&copy);
    if (IOA__IMPORT(&copy, p) < 0)
      return IOA_EBADPARAM;
    p = &copy;
  }
  if (!p->on_done)
    return IOA_EBADPARAM;
  if (r->freeing)
    return -ESHUTDOWN;
  lookup lk;
  int rc = check_lookup(p, &lk);
  if (rc < 0)
    return rc;
  ioa_resolve_req *req = req_new(r, p);
  if (!req)
    return -ENOMEM;
  uint64_t *counter = NULL;
  rc = answer(req, &lk, &p->hints, &counter);
  if (rc < 0) {
    req_free(req);
    return rc;
  }
  ioa__list_push_front(&r->reqs, &req->link);
  ioa_loop_ref(r->loop);
  r->stats.lookups++;
  (*counter)++;
  if (out)
    *out = req;
  return 0;
}
