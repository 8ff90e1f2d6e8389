/* SPDX-License-Identifier: MIT */
/* Internal resolver state shared by resolve.c (dispatch, getaddrinfo pool)
 * and resolve_cares.c (c-ares backend). */
#ifndef IOA_RESOLVE_INTERNAL_H
#define IOA_RESOLVE_INTERNAL_H

#include <netdb.h>
#include <pthread.h>

#include "ioasync/resolve.h"

typedef struct ioa__gai_job ioa__gai_job;
typedef struct ioa__cares ioa__cares;
typedef struct ioa__cares_query ioa__cares_query;
typedef struct ioa__rcache ioa__rcache;

struct ioa_resolver {
  ioa_loop *loop;
  ioa_resolver_backend backend;
  unsigned default_timeout_ms;
  ioa_resolve_req *reqs; /* outstanding requests; loop thread only */
  int freeing;           /* inside ioa_resolver_free */
  ioa__rcache *cache;     /* answer cache, or NULL (off) */
  ioa_resolver_stats stats; /* loop thread only; cache_entries filled on read */

  /* getaddrinfo pool.  Everything below lock is guarded by it. */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned max_threads; /* workers allowed to run non-abandoned jobs */
  unsigned hard_cap;    /* threads in total, abandoned ones included */
  pthread_t *threads;
  unsigned nthreads;
  unsigned nidle;       /* waiting on cond */
  unsigned nbusy;       /* running a job someone still waits for */
  unsigned nabandoned;  /* running a job that was cancelled or timed out */
  unsigned nqueued;
  ioa__gai_job *queue_head, *queue_tail;
  ioa__gai_job *running; /* jobs whose getaddrinfo() a worker is running */
  ioa__gai_job *posted; /* results handed to ioa_loop_post, not yet run */
  int shutdown;

  ioa__cares *cares; /* c-ares backend state, or NULL */
};

/* Per-family slot used by the c-ares backend. */
typedef struct ioa__resolve_family_slot {
  ioa__cares_query *query; /* in flight, or NULL */
  int family;
  int arrived;   /* the answer (or failure) is in */
  int delivered; /* on_partial has been given it (or it had no answers) */
  int status;    /* ioasync code */
  const char *message;
  ioa_addr *addrs;
  size_t naddrs;
} ioa__resolve_family_slot;

struct ioa_resolve_req {
  ioa_resolver *r;
  ioa_resolve_cb on_done;
  ioa_resolve_partial_cb on_partial;
  void *data;
  ioa_resolve_req *prev, *next; /* r->reqs */
  ioa_timer timer;
  ioa_defer defer; /* fast-path and c-ares delivery */
  unsigned timeout_ms;
  int done;       /* on_done has been called */
  int in_partial; /* inside on_partial: free after it returns */

  /* fast path result */
  int status, sys_errno;
  ioa_addr *addrs;
  size_t naddrs;
  char message[192];

  ioa__gai_job *job; /* getaddrinfo pool: the attached job */
  ioa_resolve_req *job_prev, *job_next; /* other requests sharing job (see pool_submit) */

  ioa__resolve_family_slot slot[2]; /* c-ares: [0] AAAA, [1] A */
  unsigned nslots;

  unsigned char *cache_key; /* sent to the backend with the cache on: store the answer */
  size_t cache_keylen;
};

/* Completion helpers (resolve.c).  ioa__resolve_finish calls on_done and
 * frees req (unless inside its on_partial); nothing may touch req or its
 * resolver afterwards.  ioa__resolve_partial returns 0 if req ended (was
 * cancelled or its resolver freed) during on_partial. */
void ioa__resolve_finish(ioa_resolve_req *req, int status, int sys_errno, const char *message,
                         const ioa_addr *addrs, size_t naddrs);
int ioa__resolve_partial(ioa_resolve_req *req, int family, const ioa_addr *addrs,
                         size_t naddrs);

/* c-ares backend (resolve_cares.c).  start returns 0 or a negative code and
 * never calls back synchronously; detach forgets req's queries (their late
 * answers are freed). */
int ioa__cares_new(ioa_resolver *r, const ioa_resolver_options *opts);
void ioa__cares_free(ioa_resolver *r);
int ioa__cares_start(ioa_resolve_req *req, const char *host, const char *service,
                     const ioa_resolve_hints *hints);
void ioa__cares_detach(ioa_resolve_req *req);

/* Answer cache (resolve_cache.c); loop thread only.  Keys are at most
 * IOA_RCACHE_KEY_MAX bytes (ioa__rcache_key writes one into buf). */
#define IOA_RCACHE_KEY_MAX (16 + 1 + 255 + 1 + 1 + 256)
int ioa__rcache_new(unsigned ttl_ms, unsigned max, ioa__rcache **out);
void ioa__rcache_free(ioa__rcache *c);
void ioa__rcache_flush(ioa__rcache *c);
size_t ioa__rcache_count(const ioa__rcache *c);
size_t ioa__rcache_key(unsigned char *buf, const char *host, size_t hlen, const char *service,
                       size_t slen, const ioa_resolve_hints *h);
/* 1 and a malloc'd copy of a live answer, 0 for a miss, or -ENOMEM. */
int ioa__rcache_get(ioa__rcache *c, const unsigned char *key, size_t keylen, uint64_t now,
                    ioa_addr **addrs, size_t *n);
/* Keep addrs (replacing an answer for the same key); silent without memory. */
void ioa__rcache_put(ioa__rcache *c, const unsigned char *key, size_t keylen, uint64_t now,
                     const ioa_addr *addrs, size_t n);

#endif
