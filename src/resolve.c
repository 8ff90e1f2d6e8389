/* SPDX-License-Identifier: MIT */
/* Asynchronous name resolution: input checks, the numeric fast path, the
 * public dispatch, and the getaddrinfo() thread pool.
 *
 * Pool design (the libuv threadpool, made cancellable):
 *  - A job is separate from the request the caller holds, so a request can
 *    complete (cancel, timeout) while a thread still runs its getaddrinfo():
 *    the job is "detached" (job->req = NULL) and whoever touches it next —
 *    the worker when getaddrinfo returns, or the post callback — frees it.
 *  - Threads start lazily, one per queued job with no idle thread to take it,
 *    while fewer than max_threads run jobs somebody waits for.  A thread whose
 *    job was abandoned (cancelled or timed out while running) stops counting
 *    against max_threads, so a hung DNS server cannot starve the pool; the
 *    total stays under hard_cap = max_threads * IOA_RESOLVER_THREAD_FACTOR.
 *  - Results reach the loop through ioa_loop_post() with the ioa_post
 *    embedded in the job: nothing is allocated at post time.
 *  - Each request holds a loop reference (ioa_loop_ref) until on_done.
 *  - A lookup identical to one queued or running (same host, service and
 *    hints) joins that job instead of queueing another, as Go's resolver
 *    does (singleflight): connects to one name in flight at once cost one
 *    getaddrinfo(), whose answer is at most one lookup's duration older
 *    than the request.  An abandoned job is never joined.  job->req heads
 *    the list of requests waiting for the job (req->job_next); every one
 *    gets the answer.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "addr_internal.h"
#include "alloc.h"
#include "ioasync/error.h"
#include "loop_internal.h"
#include "resolve_internal.h"
#include "sys.h"

#define HOST_MAX 253
#define LABEL_MAX 63
#define SERVICE_MAX 255

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_POSTED };

/* How far back from the queue's tail a new lookup looks for a twin (all
 * running jobs are looked at; there are at most hard_cap of them). */
#define COALESCE_SCAN 4

struct ioa__gai_job {
  ioa_resolver *r;      /* NULL once the resolver is gone (posted jobs only) */
  ioa_resolve_req *req; /* first waiter; NULL once detached: nobody waits any more */
  ioa_resolve_req *req_tail; /* last waiter (loop thread only) */
  ioa__gai_job *prev, *next; /* queue or posted list, under r->lock */
  enum job_state state;
  struct addrinfo hints;
  const char *host, *service; /* into strings[], or NULL */
  int gai_rc, sys_errno;
  ioa_addr *addrs;
  size_t naddrs;
  ioa_post post;
  char strings[];
};

/* ------------------------------------------------------------- helpers */

/* Copy a getaddrinfo() list into an ioa_addr array.  Returns 0 or
 * EAI_MEMORY (an empty list gives *out = NULL, *n = 0). */
static int addrs_from_addrinfo(const struct addrinfo *ai, ioa_addr **out, size_t *n) {
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

/* Status and message for a getaddrinfo() return value. */
static int gai_status(int rc, int sys_errno, char *msg, size_t msgsize) {
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

static int all_digits(const char *s, size_t len) {
  if (len == 0)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

static int check_host(const char *host, size_t len) {
  if (len == 0 || memchr(host, '\0', len))
    return IOA_EHOSTNAME;
  size_t body = len;
  if (host[len - 1] == '.')
    body--; /* the root label's dot does not count */
  if (body == 0 || body > HOST_MAX)
    return IOA_EHOSTNAME;
  size_t label = 0;
  for (size_t i = 0; i < body; i++) {
    if (host[i] == '.') {
      if (label == 0)
        return IOA_EHOSTNAME;
      label = 0;
    } else if (++label > LABEL_MAX) {
      return IOA_EHOSTNAME;
    }
  }
  return label == 0 ? IOA_EHOSTNAME : 0;
}

static int check_service(const char *service, size_t len, int socktype) {
  if (len == 0 || len > SERVICE_MAX || memchr(service, '\0', len))
    return IOA_EAI_SERVICE;
  if (all_digits(service, len)) {
    unsigned long port = 0;
    for (size_t i = 0; i < len && port <= 65535; i++)
      port = port * 10 + (unsigned long)(service[i] - '0');
    /* getaddrinfo would silently truncate a larger number to 16 bits */
    return port <= 65535 ? 0 : IOA_EAI_SERVICE;
  }
  /* A name: /etc/services (nss "services") is a local lookup, cheap enough
   * for the loop thread, and catches typos without spending a thread. */
  struct servent se, *found = NULL;
  char buf[1024];
  char name[SERVICE_MAX + 1];
  memcpy(name, service, len);
  name[len] = '\0';
  if (getservbyname_r(name, ioa__service_proto(socktype), &se, buf, sizeof buf, &found) != 0 ||
      !found)
    return IOA_EAI_SERVICE;
  return 0;
}

/* --------------------------------------------------- request completion */

static void req_link(ioa_resolver *r, ioa_resolve_req *req) {
  req->prev = NULL;
  req->next = r->reqs;
  if (r->reqs)
    r->reqs->prev = req;
  r->reqs = req;
}

static void req_unlink(ioa_resolver *r, ioa_resolve_req *req) {
  if (req->prev)
    req->prev->next = req->next;
  else if (r->reqs == req)
    r->reqs = req->next;
  if (req->next)
    req->next->prev = req->prev;
  req->prev = req->next = NULL;
}

static void req_free(ioa_resolve_req *req) {
  /* Also reached when starting fails after c-ares answered synchronously
   * (its answer had started the defer). */
  ioa_timer_stop(&req->timer);
  ioa_defer_stop(&req->defer);
  for (unsigned i = 0; i < 2; i++)
    ioa__free(req->slot[i].addrs);
  ioa__free(req->addrs);
  ioa__free(req->cache_key);
  ioa__free(req);
}

void ioa__resolve_finish(ioa_resolve_req *req, int status, int sys_errno, const char *message,
                         const ioa_addr *addrs, size_t naddrs) {
  ioa_resolver *r = req->r;
  req_unlink(r, req);
  ioa_timer_stop(&req->timer);
  ioa_defer_stop(&req->defer);
  req->done = 1;
  if (req->cache_key && status == 0 && r->cache) /* before on_done: it may free r */
    ioa__rcache_put(r->cache, req->cache_key, req->cache_keylen, ioa_loop_now(r->loop), addrs,
                    naddrs);
  /* Before on_done: the callback may free the loop. */
  ioa_loop_unref(r->loop);
  ioa_resolve_result res = {
      .status = status,
      .sys_errno = sys_errno,
      .message = message ? message : ioa_strerror(status),
      .addrs = addrs,
      .naddrs = naddrs,
  };
  req->on_done(req, &res, req->data);
  if (!req->in_partial)
    req_free(req);
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

/* Deliver a complete answer: each family's run to on_partial (in order of
 * first appearance), then everything to on_done. */
static void deliver_all(ioa_resolve_req *req, int status, int sys_errno, const char *message,
                        const ioa_addr *addrs, size_t n) {
  if (status == 0 && req->on_partial && n > 0) {
    ioa_addr *grouped = ioa__malloc(n * sizeof *grouped);
    if (grouped) { /* on_partial is an optimisation: skip it without memory */
      int fams[2] = {0, 0};
      for (size_t i = 0; i < n; i++) {
        int f = addrs[i].family;
        if ((f == AF_INET || f == AF_INET6) && fams[0] != f && fams[1] != f)
          fams[fams[0] ? 1 : 0] = f;
      }
      int alive = 1;
      for (int k = 0; k < 2 && fams[k] && alive; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
          if (addrs[i].family == fams[k])
            grouped[m++] = addrs[i];
        alive = ioa__resolve_partial(req, fams[k], grouped, m);
      }
      ioa__free(grouped);
      if (!alive)
        return;
    }
  }
  ioa__resolve_finish(req, status, sys_errno, message, addrs, n);
}

/* ------------------------------------------------------------ the pool */

static void job_free(ioa__gai_job *job) {
  ioa__free(job->addrs);
  ioa__free(job);
}

/* Loop thread: a worker's result arrived. */
static void job_posted(ioa_post *post, void *data) {
  (void)post;
  ioa__gai_job *job = data;
  ioa_resolver *r = job->r;
  if (r) {
    pthread_mutex_lock(&r->lock);
    if (job->prev)
      job->prev->next = job->next;
    else
      r->posted = job->next;
    if (job->next)
      job->next->prev = job->prev;
    pthread_mutex_unlock(&r->lock);
  }
  /* Only the loop thread detaches a posted job, so no lock is needed.  Each
   * waiter leaves the list before its callbacks run; they may cancel other
   * waiters (which then leave it too) or free the resolver (which cancels
   * them all), and the job stays ours to free. */
  if (job->req) {
    char msg[192];
    int status = gai_status(job->gai_rc, job->sys_errno, msg, sizeof msg);
    int sys_errno = job->gai_rc == EAI_SYSTEM ? job->sys_errno : 0;
    ioa_resolve_req *req;
    while ((req = job->req) != NULL) {
      job->req = req->job_next;
      if (job->req)
        job->req->job_prev = NULL;
      req->job_next = NULL;
      req->job = NULL;
      deliver_all(req, status, sys_errno, msg, job->addrs, job->naddrs);
    }
  }
  job_free(job);
}

/* Under r->lock: take req off its job's waiter list.  Returns non-zero if
 * other requests still wait for the job. */
static int job_remove_waiter(ioa__gai_job *job, ioa_resolve_req *req) {
  if (req->job_prev)
    req->job_prev->job_next = req->job_next;
  else
    job->req = req->job_next;
  if (req->job_next)
    req->job_next->job_prev = req->job_prev;
  else
    job->req_tail = req->job_prev;
  req->job_next = req->job_prev = NULL;
  return job->req != NULL;
}

static int job_is_twin(const ioa__gai_job *job, const char *host, size_t hlen,
                       const char *service, size_t slen, const struct addrinfo *h) {
  if (!job->req) /* abandoned: nobody would take its result */
    return 0;
  if (job->hints.ai_family != h->ai_family || job->hints.ai_socktype != h->ai_socktype ||
      job->hints.ai_protocol != h->ai_protocol || job->hints.ai_flags != h->ai_flags)
    return 0;
  if (!host != !job->host || !service != !job->service)
    return 0;
  if (host && (strncmp(job->host, host, hlen) != 0 || job->host[hlen] != '\0'))
    return 0;
  if (service && (strncmp(job->service, service, slen) != 0 || job->service[slen] != '\0'))
    return 0;
  return 1;
}

/* Under r->lock: a queued (near the tail) or running job for exactly this
 * lookup. */
static ioa__gai_job *find_twin(ioa_resolver *r, const char *host, size_t hlen,
                              const char *service, size_t slen, const struct addrinfo *h) {
  ioa__gai_job *job = r->queue_tail;
  for (int i = 0; job && i < COALESCE_SCAN; job = job->prev, i++)
    if (job_is_twin(job, host, hlen, service, slen, h))
      return job;
  for (job = r->running; job; job = job->next)
    if (job_is_twin(job, host, hlen, service, slen, h))
      return job;
  return NULL;
}

static void *worker_main(void *arg) {
  ioa_resolver *r = arg;
  pthread_mutex_lock(&r->lock);
  for (;;) {
    while (!r->shutdown && (!r->queue_head || r->nbusy >= r->max_threads)) {
      r->nidle++;
      pthread_cond_wait(&r->cond, &r->lock);
      r->nidle--;
    }
    if (r->shutdown)
      break;
    ioa__gai_job *job = r->queue_head;
    r->queue_head = job->next;
    if (r->queue_head)
      r->queue_head->prev = NULL;
    else
      r->queue_tail = NULL;
    r->nqueued--;
    job->state = JOB_RUNNING;
    job->prev = NULL; /* onto r->running, where lookups may join it */
    job->next = r->running;
    if (r->running)
      r->running->prev = job;
    r->running = job;
    r->nbusy++;
    pthread_mutex_unlock(&r->lock);

    struct addrinfo *ai = NULL;
    errno = 0;
    int rc = ioa__sys_getaddrinfo(job->host, job->service, &job->hints, &ai);
    int e = errno;
    ioa_addr *addrs = NULL;
    size_t n = 0;
    if (rc == 0) {
      rc = addrs_from_addrinfo(ai, &addrs, &n);
      freeaddrinfo(ai);
    }

    pthread_mutex_lock(&r->lock);
    if (job->prev)
      job->prev->next = job->next;
    else
      r->running = job->next;
    if (job->next)
      job->next->prev = job->prev;
    job->gai_rc = rc;
    job->sys_errno = rc == EAI_SYSTEM ? (e ? e : EIO) : 0;
    job->addrs = addrs;
    job->naddrs = n;
    if (!job->req) {
      r->nabandoned--; /* detached while running: nobody wants this */
      job_free(job);
      continue;
    }
    r->nbusy--;
    job->state = JOB_POSTED;
    job->prev = NULL;
    job->next = r->posted;
    if (r->posted)
      r->posted->prev = job;
    r->posted = job;
    ioa_loop_post(r->loop, &job->post, job_posted, job);
  }
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

/* Under r->lock: start a thread if queued work has nobody to run it.
 * Returns 0 or an errno value. */
static int pool_maybe_spawn(ioa_resolver *r) {
  if (r->nqueued <= r->nidle || r->nthreads >= r->hard_cap ||
      r->nthreads - r->nabandoned >= r->max_threads)
    return 0;
  /* Workers get no signals: they belong to the application's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = ioa__sys_pthread_create(&r->threads[r->nthreads], NULL, worker_main, r);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e == 0)
    r->nthreads++;
  return e;
}

/* Returns 0 (a new job), 1 (joined a twin) or a negative code. */
static int pool_submit(ioa_resolve_req *req, const char *host, size_t hlen, const char *service,
                       size_t slen, const ioa_resolve_hints *hints) {
  ioa_resolver *r = req->r;
  struct addrinfo h = {.ai_family = hints->family,
                       .ai_socktype = hints->socktype,
                       .ai_protocol = hints->protocol,
                       .ai_flags = hints->flags & ~AI_CANONNAME};
  pthread_mutex_lock(&r->lock);
  ioa__gai_job *twin = find_twin(r, host, hlen, service, slen, &h);
  if (twin) {
    req->job_prev = twin->req_tail;
    req->job_next = NULL;
    twin->req_tail->job_next = req;
    twin->req_tail = req;
    pthread_mutex_unlock(&r->lock);
    req->job = twin;
    return 1;
  }
  pthread_mutex_unlock(&r->lock);

  size_t extra = (host ? hlen + 1 : 0) + (service ? slen + 1 : 0);
  /* malloc + memset, not calloc: glibc's calloc skips the per-thread cache. */
  ioa__gai_job *job = ioa__malloc(sizeof *job + extra);
  if (!job)
    return -ENOMEM;
  memset(job, 0, sizeof *job);
  char *p = job->strings;
  if (host) {
    memcpy(p, host, hlen);
    p[hlen] = '\0';
    job->host = p;
    p += hlen + 1;
  }
  if (service) {
    memcpy(p, service, slen);
    p[slen] = '\0';
    job->service = p;
  }
  job->hints = h;
  job->r = r;
  job->req = job->req_tail = req;
  req->job_prev = req->job_next = NULL;
  job->state = JOB_QUEUED;

  pthread_mutex_lock(&r->lock);
  job->prev = r->queue_tail;
  if (r->queue_tail)
    r->queue_tail->next = job;
  else
    r->queue_head = job;
  r->queue_tail = job;
  r->nqueued++;
  int e = pool_maybe_spawn(r);
  if (e && r->nthreads == 0) {
    /* No thread at all: this lookup cannot run.  Fail it here. */
    if (job->prev)
      job->prev->next = NULL;
    else
      r->queue_head = NULL;
    r->queue_tail = job->prev;
    r->nqueued--;
    pthread_mutex_unlock(&r->lock);
    ioa__free(job);
    return -e;
  }
  if (r->nidle)
    pthread_cond_signal(&r->cond);
  pthread_mutex_unlock(&r->lock);
  req->job = job;
  return 0;
}

/* Loop thread: nobody waits for req's job any more. */
static void pool_detach(ioa_resolve_req *req) {
  ioa__gai_job *job = req->job;
  ioa_resolver *r = req->r;
  if (!job)
    return;
  req->job = NULL;
  int free_now = 0;
  pthread_mutex_lock(&r->lock);
  if (job_remove_waiter(job, req)) {
    pthread_mutex_unlock(&r->lock); /* the job goes on for the others */
    return;
  }
  switch (job->state) {
  case JOB_QUEUED:
    if (job->prev)
      job->prev->next = job->next;
    else
      r->queue_head = job->next;
    if (job->next)
      job->next->prev = job->prev;
    else
      r->queue_tail = job->prev;
    r->nqueued--;
    free_now = 1;
    break;
  case JOB_RUNNING:
    /* The worker frees it when getaddrinfo returns.  Until then it no
     * longer counts as busy, so queued work may run on another thread. */
    job->req = NULL;
    r->nbusy--;
    r->nabandoned++;
    if (r->nqueued) {
      (void)pool_maybe_spawn(r); /* failure: an existing worker will do it */
      pthread_cond_broadcast(&r->cond);
    }
    break;
  case JOB_POSTED:
    job->req = NULL; /* job_posted frees it */
    break;
  }
  pthread_mutex_unlock(&r->lock);
  if (free_now)
    job_free(job);
}

/* loop_dying: free results already posted at once instead of leaving them to
 * their post callbacks.  ioa_loop_free() runs queued posts after freeing the
 * default resolver, so nothing passes 1 today; kept for a loop that cannot. */
static void pool_shutdown(ioa_resolver *r, int loop_dying) {
  pthread_mutex_lock(&r->lock);
  r->shutdown = 1;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
  for (unsigned i = 0; i < r->nthreads; i++)
    pthread_join(r->threads[i], NULL);
  /* Results still waiting in the loop's post queue free themselves when it
   * runs them; they must not look at the resolver. */
  ioa__gai_job *next;
  for (ioa__gai_job *job = r->posted; job; job = next) {
    next = job->next;
    job->r = NULL;
    if (loop_dying)
      job_free(job);
  }
  r->posted = NULL;
}

/* -------------------------------------------------------- public API */

int ioa_resolver_have_cares(void) { return IOA_HAVE_CARES; }

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
  ioa_resolver_options def;
  ioa_resolver_options_init(&def);
  if (!loop || !out || (user_opts && IOA__IMPORT(&def, user_opts) < 0))
    return IOA_EBADPARAM;
  const ioa_resolver_options *opts = &def;
  if (opts->backend != IOA_RESOLVER_GETADDRINFO && opts->backend != IOA_RESOLVER_CARES)
    return IOA_EBADPARAM;
  if (opts->backend == IOA_RESOLVER_CARES && !IOA_HAVE_CARES)
    return -ENOTSUP;
  unsigned max = opts->max_threads ? opts->max_threads : IOA_RESOLVER_DEFAULT_THREADS;
  if (max > UINT_MAX / IOA_RESOLVER_THREAD_FACTOR / 16)
    return IOA_EBADPARAM;
  ioa_resolver *r = ioa__calloc(1, sizeof *r);
  if (!r)
    return -ENOMEM;
  r->loop = loop;
  r->backend = opts->backend;
  if (opts->cache_ttl_ms) {
    int ce = ioa__rcache_new(opts->cache_ttl_ms, opts->cache_max, &r->cache);
    if (ce < 0) {
      ioa__free(r);
      return ce;
    }
  }
  r->default_timeout_ms = opts->default_timeout_ms;
  r->max_threads = max;
  r->hard_cap = max * IOA_RESOLVER_THREAD_FACTOR;
  int e = pthread_mutex_init(&r->lock, NULL);
  if (e) {
    ioa__rcache_free(r->cache);
    ioa__free(r);
    return -e;
  }
  e = pthread_cond_init(&r->cond, NULL);
  if (e) {
    pthread_mutex_destroy(&r->lock);
    ioa__rcache_free(r->cache);
    ioa__free(r);
    return -e;
  }
  int rc = 0;
  if (r->backend == IOA_RESOLVER_GETADDRINFO) {
    r->threads = ioa__calloc(r->hard_cap, sizeof *r->threads);
    if (!r->threads)
      rc = -ENOMEM;
  } else {
    rc = ioa__cares_new(r, opts);
  }
  if (rc < 0) {
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    ioa__free(r->threads);
    ioa__rcache_free(r->cache);
    ioa__free(r);
    return rc;
  }
  *out = r;
  return 0;
}

static void req_detach(ioa_resolve_req *req) {
  if (req->r->backend == IOA_RESOLVER_CARES)
    ioa__cares_detach(req);
  else
    pool_detach(req);
}

void ioa_resolve_cancel(ioa_resolve_req *req) {
  if (!req || req->done)
    return;
  req_detach(req);
  ioa__resolve_finish(req, IOA_EAI_CANCELED, 0, NULL, NULL, 0);
}

static void resolver_free(ioa_resolver *r, int loop_dying) {
  if (!r || r->freeing)
    return;
  r->freeing = 1; /* on_done(CANCELED) callbacks may not start new lookups */
  while (r->reqs)
    ioa_resolve_cancel(r->reqs);
  if (r->backend == IOA_RESOLVER_CARES)
    ioa__cares_free(r);
  else
    pool_shutdown(r, loop_dying);
  pthread_cond_destroy(&r->cond);
  pthread_mutex_destroy(&r->lock);
  ioa__free(r->threads);
  ioa__rcache_free(r->cache);
  ioa__free(r);
}

void ioa_resolver_free(ioa_resolver *r) { resolver_free(r, 0); }

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

void ioa_resolver_cache_flush(ioa_resolver *r) {
  if (r)
    ioa__rcache_flush(r->cache);
}

/* Only ever called by ioa_loop_free(), which then runs the posts still
 * queued: detached results free themselves there. */
static void default_free(void *obj) { resolver_free(obj, 0); }

int ioa_resolver_default(ioa_loop *loop, ioa_resolver **out) {
  if (!loop || !out)
    return IOA_EBADPARAM;
  ioa_resolver *r = ioa__loop_default_resolver(loop);
  if (!r) {
    int rc = ioa_resolver_new(loop, NULL, &r);
    if (rc < 0)
      return rc;
    ioa__loop_set_default_resolver(loop, r, default_free);
  }
  *out = r;
  return 0;
}

static void on_timeout(ioa_timer *t, void *data) {
  (void)t;
  ioa_resolve_req *req = data;
  req_detach(req);
  snprintf(req->message, sizeof req->message, "Name resolution timed out after %u ms",
           req->timeout_ms);
  ioa__resolve_finish(req, -ETIMEDOUT, 0, req->message, NULL, 0);
}

/* Fast path: deliver the answer computed in ioa_resolve(). */
static void on_fast_defer(ioa_defer *d, void *data) {
  (void)d;
  ioa_resolve_req *req = data;
  deliver_all(req, req->status, req->sys_errno, req->message, req->addrs, req->naddrs);
}

/* Returns 1 if answered (req->status etc. filled), 0 if a real lookup is
 * needed, or a negative code. */
static int try_numeric(ioa_resolve_req *req, const char *host, size_t hlen, const char *service,
                       size_t slen, const ioa_resolve_hints *hints) {
  char hbuf[HOST_MAX + 2], sbuf[SERVICE_MAX + 1];
  if (host) {
    memcpy(hbuf, host, hlen);
    hbuf[hlen] = '\0';
  }
  if (service) {
    memcpy(sbuf, service, slen);
    sbuf[slen] = '\0';
  }
  struct addrinfo h = {
      .ai_family = hints->family,
      .ai_socktype = hints->socktype,
      .ai_protocol = hints->protocol,
      /* Numeric-only never blocks: no NSS, no DNS, no /etc/services.  No
       * canonical name is reported, so never ask for one (a reverse lookup). */
      .ai_flags = (hints->flags & ~AI_CANONNAME) | AI_NUMERICHOST | AI_NUMERICSERV,
  };
  struct addrinfo *ai = NULL;
  errno = 0;
  int rc = ioa__sys_getaddrinfo(host ? hbuf : NULL, service ? sbuf : NULL, &h, &ai);
  int e = errno;
  if (rc == EAI_NONAME) {
    /* Not numeric — unless the caller asked for numeric-only anyway, in
     * which case this is the final answer. */
    /* A ':' never appears in a DNS name: a bad IPv6 literal (or scope)
     * must not become a DNS query. */
    int host_final = !host || (hints->flags & AI_NUMERICHOST) || memchr(host, ':', hlen);
    int serv_final = !service || (hints->flags & AI_NUMERICSERV) || all_digits(service, slen);
    if (!(host_final && serv_final))
      return 0;
  }
  if (rc == 0) {
    rc = addrs_from_addrinfo(ai, &req->addrs, &req->naddrs);
    freeaddrinfo(ai);
  }
  req->sys_errno = rc == EAI_SYSTEM ? (e ? e : EIO) : 0;
  req->status = gai_status(rc, req->sys_errno, req->message, sizeof req->message);
  return 1;
}

/* The answer cache: 1 if it answered key (req->addrs etc. filled). */
static int cache_lookup(ioa_resolve_req *req, const unsigned char *key, size_t klen) {
  ioa_resolver *r = req->r;
  if (ioa__rcache_get(r->cache, key, klen, ioa_loop_now(r->loop), &req->addrs, &req->naddrs) !=
      1)
    return 0;
  req->status = gai_status(0, 0, req->message, sizeof req->message);
  return 1;
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
  const char *host = p->host, *service = p->service;
  if (!host && !service)
    return IOA_EAI_NONAME;
  size_t hlen = 0, slen = 0;
  if (host) {
    hlen = p->host_len == IOA_NUL_TERMINATED ? strlen(host) : p->host_len;
    int rc = check_host(host, hlen);
    if (rc < 0)
      return rc;
  }
  if (service) {
    slen = p->service_len == IOA_NUL_TERMINATED ? strlen(service) : p->service_len;
    int rc = check_service(service, slen, p->hints.socktype);
    if (rc < 0)
      return rc;
  }

  ioa_resolve_req *req = ioa__malloc(sizeof *req); /* see pool_submit: not calloc */
  if (!req)
    return -ENOMEM;
  memset(req, 0, sizeof *req);
  req->r = r;
  req->on_done = p->on_done;
  req->on_partial = p->on_partial;
  req->data = p->data;
  req->timeout_ms = p->timeout_ms ? p->timeout_ms : r->default_timeout_ms;
  ioa_timer_init(r->loop, &req->timer, on_timeout, req);
  ioa_defer_init(r->loop, &req->defer, on_fast_defer, req);

  /* Where this lookup is answered.  The cache first: numeric lookups never
   * enter it, so a hit saves the numeric parse (a getaddrinfo() call). */
  uint64_t *counter = &r->stats.cache_hits;
  unsigned char key[IOA_RCACHE_KEY_MAX];
  size_t klen = 0;
  int rc = 0;
  if (r->cache) {
    klen = ioa__rcache_key(key, host, hlen, service, slen, &p->hints);
    rc = cache_lookup(req, key, klen);
  }
  if (rc == 0) {
    counter = &r->stats.numeric;
    rc = try_numeric(req, host, hlen, service, slen, &p->hints);
    if (rc == 0 && r->cache)
      cache_remember(req, key, klen);
  }
  if (rc == 1) {
    ioa_defer_start(&req->defer);
  } else {
    counter = &r->stats.sent;
    if (r->backend == IOA_RESOLVER_CARES) {
      char hbuf[HOST_MAX + 2], sbuf[SERVICE_MAX + 1];
      if (host) {
        memcpy(hbuf, host, hlen);
        hbuf[hlen] = '\0';
      }
      if (service) {
        memcpy(sbuf, service, slen);
        sbuf[slen] = '\0';
      }
      rc = ioa__cares_start(req, host ? hbuf : NULL, service ? sbuf : NULL, &p->hints);
    } else {
      rc = pool_submit(req, host, hlen, service, slen, &p->hints);
      if (rc == 1) {
        counter = &r->stats.joined;
        rc = 0;
      }
    }
    if (rc == 0 && req->timeout_ms) {
      rc = ioa_timer_start(&req->timer, (uint64_t)req->timeout_ms * 1000000u, 0);
      if (rc < 0)
        req_detach(req);
    }
    if (rc < 0) {
      req_free(req);
      return rc;
    }
  }
  req_link(r, req);
  ioa_loop_ref(r->loop);
  r->stats.lookups++;
  (*counter)++;
  if (out)
    *out = req;
  return 0;
}
