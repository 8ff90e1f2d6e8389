/* SPDX-License-Identifier: MIT */
/* ioasync — asynchronous name resolution.
 *
 * getaddrinfo() off the loop thread on a small, lazily started thread pool
 * (the default backend; AF_UNSPEC lookups as two per-family calls where one
 * call would give the same answer), or c-ares driven by the loop itself (no
 * threads).  Both deliver A and AAAA answers separately as they arrive
 * (RFC 8305 section 3).  Names /etc/hosts holds are answered on the loop
 * thread from an in-memory copy, exactly as getaddrinfo() would answer them.
 * Every answer is in getaddrinfo()'s order (RFC 6724 destination address
 * selection with glibc's tables and /etc/gai.conf).  Results are always
 * delivered on the loop thread.
 *
 * Contract:
 *  - ioa_resolve() either returns a negative code and calls nothing, or
 *    returns 0 and later calls on_done exactly once — never from inside
 *    ioa_resolve() itself, even for numeric hosts answered without a thread.
 *  - on_partial (optional) is called before on_done, at most once per
 *    family, with that family's answers (sorted), for a family that arrives
 *    apart from the other (IOA_RESOLVER_CAP_EARLY_FAMILIES: A and AAAA as
 *    each lands).  It is never called for a family without answers, nor for
 *    an answer that comes whole (numeric, hosts table, cache, one
 *    getaddrinfo() call): that goes to on_done alone.  on_done always
 *    receives the complete list, so a caller may ignore on_partial entirely.
 *  - ioa_resolve_cancel() calls on_done with IOA_EAI_CANCELED before it
 *    returns; the request is gone after on_done returns.  Cancelling from
 *    inside on_partial is allowed; from inside on_done it is a no-op.
 *  - A per-lookup timeout completes the lookup with -ETIMEDOUT; a
 *    getaddrinfo() call still running is abandoned (its thread no longer
 *    counts against max_threads, so the pool is never starved) and its late
 *    result is freed when it returns.
 *  - ioa_resolver_free() cancels every outstanding lookup the same way and
 *    joins its threads (waiting for getaddrinfo() calls still running).
 *    Free the resolver before its loop.  Results a worker posted just
 *    before free release themselves when the loop runs its posts — on its
 *    next iteration or, at the latest, in ioa_loop_free().
 *  - Every function must be called on the loop's thread.
 */
#ifndef IOASYNC_RESOLVE_H
#define IOASYNC_RESOLVE_H

#include "addr.h"
#include "common.h"
#include "loop.h"

IOA_BEGIN_DECLS

typedef struct ioa_resolver ioa_resolver;
typedef struct ioa_resolve_req ioa_resolve_req;

typedef enum ioa_resolver_backend {
  IOA_RESOLVER_GETADDRINFO = 0, /* thread pool running getaddrinfo() */
  IOA_RESOLVER_CARES = 1,       /* c-ares, if built in (else -ENOTSUP) */
} ioa_resolver_backend;

typedef struct ioa_resolver_options {
  size_t struct_size; /* set by ioa_resolver_options_init() */
  ioa_resolver_backend backend;
  unsigned max_threads;    /* getaddrinfo pool size; 0 = default (4) */
  const char *servers;     /* c-ares: "127.0.0.1:5353,[::1]:53"; NULL = system */
  unsigned default_timeout_ms; /* per-lookup timeout when the request sets none; 0 = none */
  unsigned dns_timeout_ms; /* c-ares: first per-try timeout; 0 = c-ares default */
  unsigned dns_tries;      /* c-ares: tries per server; 0 = c-ares default */
  /* Answer cache (off by default, so every lookup asks the system as
   * getaddrinfo() would): with cache_ttl_ms set, a successful answer is kept
   * that long on the loop's clock and an identical lookup (same host,
   * compared without ASCII case, service and hints) is answered from it
   * without a thread or packet — still on a later loop iteration.  Failures
   * are never kept, nor answers one of whose families failed (timeout,
   * SERVFAIL).  Where the backend knows DNS TTLs (c-ares) an answer lives no
   * longer than its records' TTL.  cache_max bounds the answers kept; the
   * least recently used goes first.  Numeric lookups and answers of the
   * hosts table never enter it. */
  unsigned cache_ttl_ms;   /* 0 = no cache */
  unsigned cache_max;      /* 0 = IOA_RESOLVER_DEFAULT_CACHE_MAX */
} ioa_resolver_options;

/* Defaults: the getaddrinfo pool, 4 threads, no timeout, no cache. */
IOA_EXPORT void ioa_resolver_options_init_size(ioa_resolver_options *o, size_t size);
static inline void ioa_resolver_options_init(ioa_resolver_options *o) {
  ioa_resolver_options_init_size(o, sizeof *o);
}

#define IOA_RESOLVER_DEFAULT_CACHE_MAX 256

/* Default pool size, and the hard bound on threads including those abandoned
 * by timed-out or cancelled lookups (IOA_RESOLVER_THREAD_FACTOR * max). */
#define IOA_RESOLVER_DEFAULT_THREADS 4
#define IOA_RESOLVER_THREAD_FACTOR 4

/* opts may be NULL (defaults).  Returns 0, IOA_EBADPARAM, -ENOTSUP (the
 * backend is not built in), -ENOMEM, or c-ares's initialisation error. */
IOA_EXPORT int ioa_resolver_new(ioa_loop *loop, const ioa_resolver_options *opts,
                                ioa_resolver **out);
IOA_EXPORT void ioa_resolver_free(ioa_resolver *r);
/* The loop's default resolver (getaddrinfo pool), created on first use and
 * freed by ioa_loop_free().  Used by ioa_connect() when params give none. */
IOA_EXPORT int ioa_resolver_default(ioa_loop *loop, ioa_resolver **out);
/* Counters since ioa_resolver_new (a lookup counts once, where it was
 * answered or sent). */
typedef struct ioa_resolver_stats {
  uint64_t lookups;     /* ioa_resolve() calls that started a lookup */
  uint64_t numeric;     /* answered by the numeric fast path */
  uint64_t cache_hits;  /* answered from the answer cache */
  uint64_t joined;      /* joined an identical getaddrinfo() already queued or running */
  uint64_t sent;        /* handed to getaddrinfo() (a new pool job) or to c-ares */
  size_t cache_entries; /* answers in the cache now */
  uint64_t hosts;       /* answered by the hosts table (/etc/hosts, no thread) */
} ioa_resolver_stats;
/* Fills size bytes of out (the caller's sizeof: counters added later are
 * left out for an older caller). */
IOA_EXPORT void ioa_resolver_get_stats_size(const ioa_resolver *r, ioa_resolver_stats *out,
                                            size_t size);
static inline void ioa_resolver_get_stats(const ioa_resolver *r, ioa_resolver_stats *out) {
  ioa_resolver_get_stats_size(r, out, sizeof *out);
}
/* Forget every cached answer (after a network change, say).  Lookups in
 * flight are unaffected; their answers are cached when they arrive. */
IOA_EXPORT void ioa_resolver_cache_flush(ioa_resolver *r);

/* Non-zero if the c-ares backend was compiled in. */
IOA_EXPORT int ioa_resolver_have_cares(void);

/* What a resolver's backend does, for callers that adapt to it (their own
 * Happy Eyeballs, say).  Answers from the numeric fast path, the hosts table
 * and the answer cache come whole, to on_done alone.  Later versions may add
 * bits: ignore unknown ones. */
enum {
  /* on_partial gets each family as soon as its own answer arrives, possibly
   * well before the other family's (RFC 8305 section 3): worth acting on
   * at once.  Without it everything comes with on_done.  Both backends
   * have it (the pool for lookups it runs as two calls). */
  IOA_RESOLVER_CAP_EARLY_FAMILIES = 1u << 0,
  /* The answer is in getaddrinfo()'s destination-address order (RFC 6724,
   * /etc/gai.conf); without it the order is the backend's own.  Both
   * backends have it. */
  IOA_RESOLVER_CAP_SORTED = 1u << 1,
  /* Lookups run on worker threads: ioa_resolver_free() may wait for one
   * in progress.  Without it everything runs on the loop thread. */
  IOA_RESOLVER_CAP_THREADS = 1u << 2,
};
/* The IOA_RESOLVER_CAP_* bits of r's backend; 0 for NULL. */
IOA_EXPORT unsigned ioa_resolver_capabilities(const ioa_resolver *r);

typedef struct ioa_resolve_hints {
  int family;   /* AF_UNSPEC, AF_INET, AF_INET6 */
  int socktype; /* 0 = any */
  int protocol;
  int flags;    /* AI_* flags (AI_CANONNAME: ioa_resolve_result.canonname) */
} ioa_resolve_hints;

typedef struct ioa_resolve_result {
  int status;            /* 0, IOA_EAI_*, -ETIMEDOUT, or another negative code */
  int sys_errno;         /* errno when status is IOA_EAI_SYSTEM */
  const char *message;   /* the real message for status (gai_strerror text) */
  const ioa_addr *addrs; /* in getaddrinfo's order (RFC 6724 destination address
                            selection, as /etc/gai.conf sets it); valid only
                            during the callback */
  size_t naddrs;
  /* With AI_CANONNAME, the host's canonical name (getaddrinfo's
   * ai_canonname), else NULL; valid only during the callback. */
  const char *canonname;
} ioa_resolve_result;

typedef void (*ioa_resolve_cb)(ioa_resolve_req *req, const ioa_resolve_result *res, void *data);
/* One family's answers (family is AF_INET or AF_INET6). */
typedef void (*ioa_resolve_partial_cb)(ioa_resolve_req *req, int family, const ioa_addr *addrs,
                                       size_t naddrs, void *data);

typedef struct ioa_resolve_params {
  size_t struct_size;  /* set by ioa_resolve_params_init() */
  const char *host;    /* may be NULL if service is given (as getaddrinfo) */
  const char *service; /* may be NULL if host is given */
  size_t host_len;     /* IOA_NUL_TERMINATED (the default) or the exact length */
  size_t service_len;  /* likewise (an embedded NUL byte is an error) */
  ioa_resolve_hints hints;
  unsigned timeout_ms; /* 0 = resolver default */
  ioa_resolve_cb on_done;
  ioa_resolve_partial_cb on_partial; /* optional */
  void *data;
} ioa_resolve_params;

/* Defaults: lengths IOA_NUL_TERMINATED, hints AF_UNSPEC / any, no timeout. */
IOA_EXPORT void ioa_resolve_params_init_size(ioa_resolve_params *p, size_t size);
static inline void ioa_resolve_params_init(ioa_resolve_params *p) {
  ioa_resolve_params_init_size(p, sizeof *p);
}

/* Start a lookup.  *out (optional) receives a handle valid until on_done
 * returns.  Bad input fails here, before any thread or packet:
 *   IOA_EHOSTNAME    empty host, host over 253 bytes (254 with the root dot),
 *                    a label over 63 or empty, an embedded NUL byte
 *   IOA_EAI_SERVICE  empty service, embedded NUL, numeric port over 65535,
 *                    a name /etc/services does not know for the socktype
 *   IOA_EAI_OVERFLOW the services database has an entry over 64 KiB (the
 *                    bounded buffer of the service-name lookup)
 *   IOA_EAI_NONAME   neither host nor service
 *   IOA_EBADPARAM    no on_done, or p not initialised by ioa_resolve_params_init
 *   -ESHUTDOWN       called from a callback run by ioa_resolver_free(r)
 *   -EAGAIN          no worker thread could be started (and none exists)
 *   -ENOMEM, or another negated errno from reading the services database */
IOA_EXPORT int ioa_resolve(ioa_resolver *r, const ioa_resolve_params *p, ioa_resolve_req **out);
IOA_EXPORT void ioa_resolve_cancel(ioa_resolve_req *req);

IOA_END_DECLS

#endif
