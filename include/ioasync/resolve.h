/* ioasync — asynchronous name resolution.
 *
 * getaddrinfo() off the loop thread on a small, lazily started thread pool
 * (the default backend), or c-ares driven by the loop itself (no threads,
 * A and AAAA answers delivered separately as they arrive).  Results are
 * always delivered on the loop thread.
 *
 * Contract:
 *  - ioa_resolve() either returns a negative code and calls nothing, or
 *    returns 0 and later calls on_done exactly once — never from inside
 *    ioa_resolve() itself, even for numeric hosts answered without a thread.
 *  - on_partial (optional, c-ares backend and numeric fast path) may be called
 *    before on_done with the answers of one family as they arrive.
 *  - ioa_resolve_cancel() calls on_done with IOA_EAI_CANCELED before it
 *    returns; the request is gone after on_done returns.
 *  - ioa_resolver_free() cancels every outstanding lookup the same way and
 *    joins its threads.  Free the resolver before its loop.
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
  ioa_resolver_backend backend;
  unsigned max_threads;    /* getaddrinfo pool size; 0 = default (4) */
  const char *servers;     /* c-ares: "127.0.0.1:5353,[::1]:53"; NULL = system */
  unsigned default_timeout_ms; /* per-lookup timeout when the request sets none; 0 = none */
} ioa_resolver_options;

/* Returns 0 or a negative code (-ENOTSUP if the backend is not built in). */
IOA_EXPORT int ioa_resolver_new(ioa_loop *loop, const ioa_resolver_options *opts,
                                ioa_resolver **out);
IOA_EXPORT void ioa_resolver_free(ioa_resolver *r);
/* The loop's default resolver (getaddrinfo pool), created on first use and
 * freed by ioa_loop_free().  Used by ioa_connect() when params give none. */
IOA_EXPORT int ioa_resolver_default(ioa_loop *loop, ioa_resolver **out);
/* Non-zero if the c-ares backend was compiled in. */
IOA_EXPORT int ioa_resolver_have_cares(void);

typedef struct ioa_resolve_hints {
  int family;   /* AF_UNSPEC, AF_INET, AF_INET6 */
  int socktype; /* 0 = any */
  int protocol;
  int flags;    /* AI_* flags */
} ioa_resolve_hints;

typedef struct ioa_resolve_result {
  int status;            /* 0, IOA_EAI_*, -ETIMEDOUT, or another negative code */
  int sys_errno;         /* errno when status is IOA_EAI_SYSTEM */
  const char *message;   /* the real message for status (gai_strerror text) */
  const ioa_addr *addrs; /* in resolver order; valid only during the callback */
  size_t naddrs;
} ioa_resolve_result;

typedef void (*ioa_resolve_cb)(ioa_resolve_req *req, const ioa_resolve_result *res, void *data);
/* One family's answers (family is AF_INET or AF_INET6). */
typedef void (*ioa_resolve_partial_cb)(ioa_resolve_req *req, int family, const ioa_addr *addrs,
                                       size_t naddrs, void *data);

typedef struct ioa_resolve_params {
  const char *host;    /* may be NULL if service is given (as getaddrinfo) */
  const char *service; /* may be NULL if host is given */
  ioa_resolve_hints hints;
  unsigned timeout_ms; /* 0 = resolver default */
  ioa_resolve_cb on_done;
  ioa_resolve_partial_cb on_partial; /* optional */
  void *data;
} ioa_resolve_params;

/* Start a lookup.  *out (optional) receives a handle valid until on_done
 * returns.  Bad input (host over 253 bytes, a label over 63, empty strings)
 * fails here with IOA_EHOSTNAME / IOA_EAI_NONAME / IOA_EAI_SERVICE. */
IOA_EXPORT int ioa_resolve(ioa_resolver *r, const ioa_resolve_params *p, ioa_resolve_req **out);
IOA_EXPORT void ioa_resolve_cancel(ioa_resolve_req *req);

IOA_END_DECLS

#endif
