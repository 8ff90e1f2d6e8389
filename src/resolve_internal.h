/* SPDX-License-Identifier: MIT */
/* The resolver's inside: the dispatch (resolve.c) and its backends
 * (resolve_pool.c: getaddrinfo on threads; resolve_cares.c: c-ares on the
 * loop) meet here, and only here.
 *
 * Dependencies point one way.  resolve.c owns the resolver and every
 * request's lifecycle (input checks, numeric fast path, answer cache,
 * timeouts, the loop reference) and calls a backend only through its
 * ioa__resolver_ops.  A backend calls back only the completion helpers
 * below.  Each backend keeps its own state: the resolver's r->backend (made
 * by ops->init) and a per-request area of ops->req_size bytes that trails
 * the request (ioa__resolve_req_state). */
#ifndef IOA_RESOLVE_INTERNAL_H
#define IOA_RESOLVE_INTERNAL_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>

#include "ioasync/error.h"
#include "ioasync/resolve.h"
#include "list.h"

typedef struct ioa__rcache ioa__rcache;
typedef struct ioa__hosts ioa__hosts;

/* start()'s answer when the lookup joined an identical one in flight. */
#define IOA__RESOLVE_JOINED 1

typedef struct ioa__resolver_ops {
  unsigned caps;   /* IOA_RESOLVER_CAP_* this backend has */
  size_t req_size; /* per-request state (zeroed before start) */
  /* Make the backend's state for r (r->loop is set) into *out.  Returns 0,
   * IOA_EBADPARAM for options it cannot take, or another negative code. */
  int (*init)(ioa_resolver *r, const ioa_resolver_options *opts, void **out);
  /* Free it.  Every request has been detached and completed. */
  void (*free)(void *backend);
  /* Send a lookup: host and service are NUL-terminated (or NULL; not both)
   * and checked.  Returns 0, IOA__RESOLVE_JOINED, or a negative code (then
   * nothing was sent).  Never calls back from inside start: an answer goes
   * through ioa__resolve_partial / _finish later. */
  int (*start)(ioa_resolve_req *req, const char *host, const char *service,
               const ioa_resolve_hints *hints);
  /* Forget a sent request that is completing early (cancel, timeout, the
   * resolver's free): no completion helper may be called for it any more.
   * Work in flight may go on; its late answer is the backend's to free. */
  void (*detach)(ioa_resolve_req *req);
  /* Optional: free the per-request state's memory.  Runs as the request is
   * freed, after on_done, when the resolver or the loop may already be
   * gone: memory only. */
  void (*release)(ioa_resolve_req *req);
} ioa__resolver_ops;

extern const ioa__resolver_ops ioa__resolver_pool_ops;
#if IOA_HAVE_CARES
extern const ioa__resolver_ops ioa__resolver_cares_ops;
#endif

/* The last one-address answer the hosts table gave ioa__resolve_at_hand:
 * a client reconnecting to the same name is answered with two string
 * compares (valid while the table's generation holds). */
typedef struct ioa__hosts_memo {
  int valid;
  uint32_t generation;
  ioa_resolve_hints hints;
  char host[64];   /* shorter names only */
  char service[8]; /* a port number, or "" for none */
  ioa_addr addr;
} ioa__hosts_memo;

struct ioa_resolver {
  ioa_loop *loop;
  const ioa__resolver_ops *ops;
  void *backend; /* ops->init's state */
  unsigned default_timeout_ms;
  ioa__list reqs;           /* outstanding requests; loop thread only */
  int freeing;              /* inside ioa_resolver_free */
  ioa__rcache *cache;       /* answer cache, or NULL (off) */
  ioa__hosts *hosts;        /* the hosts table and the sorter */
  int no_hosts_table;       /* tests: /etc/hosts names go to the backend too */
  ioa__hosts_memo memo;     /* the hosts table's last one-address answer */
  ioa_resolver_stats stats; /* loop thread only; cache_entries filled on read */
};

/* An answer found without a backend: numeric, the hosts table or the
 * cache.  The arrays are the finder's to free. */
typedef struct ioa__found {
  int status, sys_errno;
  const char *message; /* NULL: ioa_strerror(status) */
  ioa_addr *addrs;
  size_t naddrs;
  char *canonname;
} ioa__found;

struct ioa_resolve_req {
  ioa_resolver *r;
  ioa_resolve_cb on_done;
  ioa_resolve_partial_cb on_partial;
  void *data;
  ioa__list link; /* r->reqs */
  ioa_timer timer;
  ioa_defer defer; /* delivers an answer found without a backend */
  void (*release)(ioa_resolve_req *req); /* ops->release, kept past r's life */
  unsigned timeout_ms;
  int sent;       /* the backend has it: detach before completing early */
  int done;       /* on_done has been called */
  int in_partial; /* inside on_partial: free after it returns */
  /* The dispatch found the two families may be looked up apart (AF_UNSPEC,
   * an on_partial, no flag needing one answer, a name the hosts file lacks,
   * gai.conf modelled): a backend may resolve them separately and join them with
   * ioa__resolve_sort, giving each family's lookup the flags flags_apart. */
  int families_apart;
  int flags_apart;

  ioa__found found;     /* an answer found without a backend */
  char message[192];    /* found.message's storage, or the timeout's */

  unsigned char *cache_key; /* sent to the backend with the cache on: store the answer */
  size_t cache_keylen;

  max_align_t state[]; /* ops->req_size bytes for the backend */
};

static inline void *ioa__resolve_req_state(ioa_resolve_req *req) { return req->state; }
static inline ioa_resolve_req *ioa__resolve_req_of(void *state) {
  return IOA__CONTAINER_OF(state, ioa_resolve_req, state);
}

/* A complete answer: what a backend (or the dispatch) hands to on_done. */
typedef struct ioa__answer {
  int status;            /* 0, IOA_EAI_*, or another negative code */
  int sys_errno;         /* with IOA_EAI_SYSTEM */
  const char *message;   /* NULL: ioa_strerror(status) */
  const ioa_addr *addrs; /* in the order getaddrinfo would give them */
  size_t naddrs;
  const char *canonname; /* with AI_CANONNAME (else NULL) */
  uint32_t ttl_s;        /* the smallest DNS TTL of its records, or IOA__TTL_UNKNOWN */
  int incomplete;        /* a family failed (timeout, SERVFAIL): not cached */
} ioa__answer;
#define IOA__TTL_UNKNOWN UINT32_MAX

/* Completion helpers (resolve.c), for backends.
 *
 * ioa__resolve_finish calls on_done and frees req (unless inside its
 * on_partial); nothing may touch req or its resolver afterwards.
 * ioa__resolve_fail is ioa__resolve_finish with an error alone.
 * ioa__resolve_partial gives on_partial one family's answers, for a
 * family that arrives apart from the other (an answer that comes whole goes
 * to ioa__resolve_finish alone); it returns 0 if req ended (cancelled, or
 * its resolver freed) meanwhile. */
void ioa__resolve_finish(ioa_resolve_req *req, const ioa__answer *a);
void ioa__resolve_fail(ioa_resolve_req *req, int status, const char *message);
int ioa__resolve_partial(ioa_resolve_req *req, int family, const ioa_addr *addrs,
                         size_t naddrs);
/* Sort v into getaddrinfo's order (addrsort.h) with req's resolver's
 * sorter; v arrives in the order getaddrinfo's sources would give it (A
 * answers before AAAA ones, as glibc's DNS source).  Left as is when the
 * sorter cannot model /etc/gai.conf or lacks memory. */
void ioa__resolve_sort(ioa_resolve_req *req, ioa_addr *v, size_t n);
/* The same for callers outside the resolver (the connector, ordering the
 * first addresses of two families that arrived apart, RFC 8305 section 4):
 * getaddrinfo's order with r's sorter; loop thread. */
void ioa__resolver_order(ioa_resolver *r, ioa_addr *v, size_t n);
/* The connector's shortcut: the answer for host and service when the
 * resolver has it at hand (the hosts table or the cache), without a
 * request, a deferral or a callback -- what ioa_resolve() would deliver on
 * the next loop iteration.  Returns 1 with *addrs and *n: buf when it has
 * room for the answer, else memory the caller frees with ioa__free; 0 when only ioa_resolve() can tell (a lookup, a
 * numeric host, a failure, input it would refuse: it reports those);
 * counted in the statistics as ioa_resolve() counts it.  Loop thread. */
int ioa__resolve_at_hand(ioa_resolver *r, const char *host, const char *service,
                         const ioa_resolve_hints *hints, ioa_addr *buf, size_t cap,
                         ioa_addr **addrs, size_t *n);
/* Of two failed families, the status that describes the name best (a
 * definite "no such name" over a transient failure over "no address of
 * this family"). */
int ioa__resolve_worse_status(int a, int b);
/* Whether a family's failure leaves the other family's answer complete
 * (it has no such records) or not (it timed out or failed). */
static inline int ioa__resolve_definite(int status) {
  return status == 0 || status == IOA_EAI_NODATA || status == IOA_EAI_NONAME;
}

/* getaddrinfo() helpers (resolve.c), for every caller of getaddrinfo. */
/* Copy a list into an ioa_addr array: 0, or EAI_MEMORY (an empty list gives
 * *out = NULL, *n = 0). */
int ioa__resolve_addrs_from_ai(const struct addrinfo *ai, ioa_addr **out, size_t *n);
/* The status for a getaddrinfo() return value, and its message into msg. */
int ioa__resolve_gai_status(int rc, int sys_errno, char *msg, size_t msgsize);

/* Tests: with on 0, names /etc/hosts has go to the backend like any other
 * (so that pool tests can use "localhost"). */
void ioa__resolver_set_hosts_table(ioa_resolver *r, int on);

/* White-box hooks of the getaddrinfo pool (resolve_pool.c) for
 * test_resolve_coalesce; r must use the pool.  Workers run only while fewer
 * than max jobs run (0 holds every job queued). */
void ioa__pool_set_max_threads(ioa_resolver *r, unsigned max);
unsigned ioa__pool_queued(ioa_resolver *r);
const void *ioa__pool_job_of(ioa_resolve_req *req); /* NULL if none */

/* The hosts table (resolve_hosts.c): /etc/hosts names answered on the
 * loop thread exactly as getaddrinfo() would, from an in-memory copy kept
 * in step with the files (checked at most every IOA__HOSTS_CHECK_NS), and
 * the destination-address sorter it keeps in step with /etc/gai.conf.
 * Loop thread only. */
struct ioa__addrsort;
#define IOA__HOSTS_CHECK_NS (5ull * 1000000000ull) /* as Go's resolver */
enum {
  IOA__HOSTS_DECLINE = 0,  /* not answered here: the backend's (also when unsure) */
  IOA__HOSTS_ANSWERED = 1, /* *addrs (and *canonname with AI_CANONNAME), malloc'd */
  IOA__HOSTS_ABSENT = 2,   /* the file does not name host at all */
};
int ioa__hosts_new(ioa__hosts **out);
void ioa__hosts_free(ioa__hosts *h);
struct ioa__addrsort *ioa__hosts_sorter(ioa__hosts *h);
/* Look at the files again if the last look is older than the interval. */
void ioa__hosts_refresh(ioa__hosts *h, uint64_t now_ns);
/* Make the next refresh look at every file (tests; ioa_resolver_cache_flush). */
void ioa__hosts_expire(ioa__hosts *h);
/* Changes with every refresh that looks at the files (at most every
 * IOA__HOSTS_CHECK_NS), every load and every expiry: between two changes,
 * an answer that needs no sorting (one address) and no interface state
 * (no AI_ADDRCONFIG) is a function of the name, service and hints alone. */
uint32_t ioa__hosts_generation(const ioa__hosts *h);
/* Tests and fuzzers: use text as the hosts file, nsswitch "files" first,
 * and host.conf's multi as given; the files are not looked at until
 * ioa__hosts_expire.  0 or -ENOMEM. */
int ioa__hosts_load(ioa__hosts *h, const char *text, size_t len, int multi);
/* host NUL-terminated (checked), service NULL or checked.  Returns an
 * IOA__HOSTS_* or -ENOMEM. */
int ioa__hosts_lookup(ioa__hosts *h, const char *host, const char *service,
                      const ioa_resolve_hints *hints, ioa_addr **addrs, size_t *naddrs,
                      char **canonname);
/* The same, the answer in buf when it has room for it (*addrs == buf then:
 * not to be freed); port: service's number if the caller parsed it, or -1. */
int ioa__hosts_lookup_into(ioa__hosts *h, const char *host, const char *service, int port,
                           const ioa_resolve_hints *hints, ioa_addr *buf, size_t cap,
                           ioa_addr **addrs, size_t *naddrs, char **canonname);

/* Answer cache (resolve_cache.c); loop thread only.  Keys are at most
 * IOA_RCACHE_KEY_MAX bytes (ioa__rcache_key writes one into buf). */
#define IOA_RCACHE_KEY_MAX (16 + 1 + 255 + 1 + 1 + 256)
int ioa__rcache_new(unsigned ttl_ms, unsigned max, ioa__rcache **out);
void ioa__rcache_free(ioa__rcache *c);
void ioa__rcache_flush(ioa__rcache *c);
size_t ioa__rcache_count(const ioa__rcache *c);
size_t ioa__rcache_key(unsigned char *buf, const char *host, size_t hlen, const char *service,
                       size_t slen, const ioa_resolve_hints *h);
/* 1 and malloc'd copies of a live answer (*canon NULL if it has none), 0
 * for a miss, or -ENOMEM. */
int ioa__rcache_get(ioa__rcache *c, const unsigned char *key, size_t keylen, uint64_t now,
                    ioa_addr **addrs, size_t *n, char **canon);
/* Keep a complete successful answer (replacing one for the same key) for
 * the cache's lifetime or its ttl_s, whichever is shorter; a TTL of 0 keeps
 * nothing.  Silent without memory. */
void ioa__rcache_put(ioa__rcache *c, const unsigned char *key, size_t keylen, uint64_t now,
                     const ioa__answer *a);

#endif
