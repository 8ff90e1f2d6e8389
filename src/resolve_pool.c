/* SPDX-License-Identifier: MIT */
/* Resolver backend: getaddrinfo() on a thread pool (the libuv threadpool,
 * made cancellable).
 *
 *  - A job is separate from the requests waiting for it, so a request can
 *    complete (cancel, timeout) while a thread still runs its getaddrinfo():
 *    the job is then abandoned, and whoever touches it next — the worker
 *    when getaddrinfo returns, or the post callback — frees it.
 *  - Threads start lazily, one per queued job with no idle thread to take it,
 *    while fewer than max_threads run jobs somebody waits for.  A thread whose
 *    job was abandoned stops counting against max_threads, so a hung DNS
 *    server cannot starve the pool; the total stays under hard_cap =
 *    max_threads * IOA_RESOLVER_THREAD_FACTOR.
 *  - Results reach the loop through ioa_loop_post() with the ioa_post
 *    embedded in the job: nothing is allocated at post time.
 *  - A lookup identical to one queued or running (same host, service and
 *    hints) joins that job instead of queueing another, as Go's resolver
 *    does (singleflight): connects to one name in flight at once cost one
 *    getaddrinfo(), whose answer is at most one lookup's duration older
 *    than the request.  An abandoned job is never joined.  Every waiter
 *    gets the answer.
 *  - Where the dispatch allows it (req->families_apart), an AF_UNSPEC
 *    lookup runs as two jobs, AF_INET6 and AF_INET, on two threads, as Ruby
 *    3.4's Socket.tcp does: each family reaches on_partial as soon as its
 *    getaddrinfo() returns (RFC 8305 section 3: an AAAA query the DNS
 *    server answers late, or never, no longer holds back the A answers),
 *    and on_done gets both joined in getaddrinfo's order (addrsort).  Each
 *    family's job is shared like any other (a lookup of AF_INET alone joins
 *    the A half of another's).
 *
 * Locking: the queue and running lists, the counters, job->state and
 * job->abandoned are guarded by pool->lock, taken once per job by the loop
 * thread (to queue it, or join a twin) and twice by its worker (to take it,
 * and to post its result).  Delivering a result takes no lock: posted jobs
 * are only counted (nposted), and a pool freed while some are still in the
 * loop's post queue is freed by the last of them.  A job's waiters list is
 * the loop thread's alone (workers never look at it).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "alloc.h"
#include "ioasync/error.h"
#include "resolve_internal.h"
#include "sys.h"

/* How far back from the queue's tail a new lookup looks for a twin (all
 * running jobs are looked at; there are at most hard_cap of them). */
#define COALESCE_SCAN 4

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_POSTED };

typedef struct pool {
  ioa_loop *loop;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned max_threads; /* workers allowed to run non-abandoned jobs */
  unsigned hard_cap;    /* threads in total, abandoned ones included */
  pthread_t *threads;
  unsigned nthreads;
  unsigned nidle;      /* waiting on cond */
  unsigned nbusy;      /* running a job someone still waits for */
  unsigned nabandoned; /* running a job nobody waits for any more */
  unsigned nqueued;
  ioa__list queue;   /* jobs waiting for a worker, oldest first */
  ioa__list running; /* jobs whose getaddrinfo() a worker is running */
  atomic_uint nposted; /* results handed to ioa_loop_post, not yet run */
  int shutdown;
  int dead; /* loop thread: pool_free ran; the last posted result frees it */
} pool;

typedef struct gai_job {
  pool *p;
  ioa__list link; /* in p->queue or p->running (neither once posted) */
  ioa__list waiters; /* pool_wait.link: every request this job answers */
  enum job_state state;
  int abandoned; /* running, and nobody waits any more: the worker frees it */
  struct addrinfo hints;
  const char *host, *service; /* into strings[], or NULL */
  int gai_rc, sys_errno;
  ioa_addr *addrs;
  size_t naddrs;
  char *canonname; /* with AI_CANONNAME */
  ioa_post post;
  char strings[];
} gai_job;

/* One job a request waits for. */
typedef struct pool_wait {
  gai_job *job;   /* or NULL */
  ioa__list link; /* in job->waiters */
  unsigned slot;  /* its index in pool_req.w */
} pool_wait;

/* One family's outcome, when the families are apart. */
typedef struct family_part {
  int arrived;
  int gai_rc, sys_errno;
  ioa_addr *addrs;
  size_t n;
} family_part;

/* Per-request state (ioa__resolve_req_state).  w[0] is the whole lookup,
 * or its AF_INET6 half when apart; w[1] the AF_INET half. */
typedef struct pool_req {
  pool_wait w[2];
  int apart;
  family_part part[2];
  ioa_addr *all; /* the joined answer */
} pool_req;

static pool_req *req_of_wait(pool_wait *w) {
  return IOA__CONTAINER_OF(w - w->slot, pool_req, w);
}

static void job_free(gai_job *job) {
  ioa__free(job->addrs);
  ioa__free(job->canonname);
  ioa__free(job);
}

/* ------------------------------------------------------------ workers */

static int pool_maybe_spawn(pool *p);
static void job_posted(ioa_post *post, void *data);
static void pool_destroy(pool *p);

/* Under p->lock: the worker's result for job. */
static void job_done(pool *p, gai_job *job) {
  ioa__list_remove(&job->link);
  if (job->abandoned) {
    p->nabandoned--; /* nobody wants this */
    job_free(job);
    return;
  }
  p->nbusy--;
  job->state = JOB_POSTED;
  atomic_fetch_add(&p->nposted, 1);
  ioa_loop_post(p->loop, &job->post, job_posted, job);
}

static void run_job(gai_job *job) {
  struct addrinfo *ai = NULL;
  errno = 0;
  int rc = ioa__sys_getaddrinfo(job->host, job->service, &job->hints, &ai);
  int e = errno;
  if (rc == 0) {
    rc = ioa__resolve_addrs_from_ai(ai, &job->addrs, &job->naddrs);
    if (rc == 0 && ai->ai_canonname) {
      size_t cl = strlen(ai->ai_canonname) + 1;
      if ((job->canonname = ioa__malloc(cl)))
        memcpy(job->canonname, ai->ai_canonname, cl);
      else
        rc = EAI_MEMORY;
    }
    freeaddrinfo(ai);
  }
  job->gai_rc = rc;
  job->sys_errno = rc == EAI_SYSTEM ? (e ? e : EIO) : 0;
}

static void *worker_main(void *arg) {
  pool *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->shutdown && (ioa__list_empty(&p->queue) || p->nbusy >= p->max_threads)) {
      p->nidle++;
      pthread_cond_wait(&p->cond, &p->lock);
      p->nidle--;
    }
    if (p->shutdown)
      break;
    gai_job *job = IOA__CONTAINER_OF(ioa__list_first(&p->queue), gai_job, link);
    ioa__list_remove(&job->link);
    p->nqueued--;
    job->state = JOB_RUNNING;
    ioa__list_push_back(&p->running, &job->link); /* where lookups may join it */
    p->nbusy++;
    pthread_mutex_unlock(&p->lock);
    run_job(job); /* job's results are ours alone until job_done */
    pthread_mutex_lock(&p->lock);
    job_done(p, job);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* Under p->lock: start a thread if queued work has nobody to run it.
 * Returns 0 or an errno value. */
static int pool_maybe_spawn(pool *p) {
  if (p->nqueued <= p->nidle || p->nthreads >= p->hard_cap ||
      p->nthreads - p->nabandoned >= p->max_threads)
    return 0;
  /* Workers get no signals: they belong to the application's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = ioa__sys_pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e == 0)
    p->nthreads++;
  return e;
}

/* ------------------------------------------------------ the loop side */

/* Loop thread, families apart: one family's job answered.  Returns 0 if
 * req ended meanwhile (in on_partial or on_done). */
static int part_arrived(pool_req *pr, unsigned slot, const gai_job *job) {
  ioa_resolve_req *req = ioa__resolve_req_of(pr);
  family_part *f = &pr->part[slot];
  f->arrived = 1;
  f->gai_rc = job->gai_rc;
  f->sys_errno = job->sys_errno;
  if (job->gai_rc == 0 && job->naddrs) {
    f->addrs = ioa__malloc(job->naddrs * sizeof *f->addrs); /* the job goes before the other */
    if (!f->addrs) {
      f->gai_rc = EAI_MEMORY;
    } else {
      memcpy(f->addrs, job->addrs, job->naddrs * sizeof *f->addrs);
      f->n = job->naddrs;
      if (!ioa__resolve_partial(req, slot == 0 ? AF_INET6 : AF_INET, f->addrs, f->n))
        return 0;
    }
  }
  family_part *six = &pr->part[0], *four = &pr->part[1];
  if (!six->arrived || !four->arrived)
    return 1;
  /* Both in: A before AAAA, as glibc's DNS source hands them to its sort. */
  char msg[192];
  ioa__answer a = {.ttl_s = IOA__TTL_UNKNOWN};
  size_t total = four->n + six->n;
  if (total && !(pr->all = ioa__malloc(total * sizeof *pr->all))) {
    ioa__resolve_fail(req, IOA_EAI_MEMORY, NULL);
    return 0;
  }
  if (total) {
    memcpy(pr->all, four->addrs, four->n * sizeof *pr->all);
    memcpy(pr->all + four->n, six->addrs, six->n * sizeof *pr->all);
    ioa__resolve_sort(req, pr->all, total);
    a.addrs = pr->all;
    a.naddrs = total;
  }
  int st4 = ioa_err_from_gai(four->gai_rc), st6 = ioa_err_from_gai(six->gai_rc);
  /* One family's answers make a success; a family that failed for another
   * reason than having no such records keeps it out of the cache. */
  a.incomplete = !ioa__resolve_definite(st4) || !ioa__resolve_definite(st6);
  if (!total) { /* the message only now: formatting it costs as much as the rest */
    const family_part *why = ioa__resolve_worse_status(st4, st6) == st6 ? six : four;
    a.status = ioa__resolve_gai_status(why->gai_rc, why->sys_errno, msg, sizeof msg);
    a.sys_errno = why->sys_errno;
    a.message = msg;
  }
  ioa__resolve_finish(req, &a);
  return 0;
}

/* Loop thread: a worker's result arrived. */
static void job_posted(ioa_post *post, void *data) {
  (void)post;
  gai_job *job = data;
  pool *p = job->p;
  /* Each waiter leaves the list before its callbacks run; they may cancel
   * other waiters (which then leave it too) or free the resolver (which
   * cancels them all), and the job stays ours to free. */
  if (!ioa__list_empty(&job->waiters)) {
    char msg[192];
    ioa__answer a = {.sys_errno = job->sys_errno,
                     .message = msg,
                     .addrs = job->addrs,
                     .naddrs = job->naddrs,
                     .canonname = job->canonname,
                     .ttl_s = IOA__TTL_UNKNOWN};
    int formatted = 0; /* the message only for a waiter that takes the whole answer */
    ioa__list *n;
    while ((n = ioa__list_first(&job->waiters)) != NULL) {
      pool_wait *w = IOA__CONTAINER_OF(n, pool_wait, link);
      pool_req *pr = req_of_wait(w);
      ioa__list_remove(n);
      w->job = NULL;
      if (pr->apart) {
        (void)part_arrived(pr, w->slot, job);
        continue;
      }
      if (!formatted++)
        a.status = ioa__resolve_gai_status(job->gai_rc, job->sys_errno, msg, sizeof msg);
      ioa__resolve_finish(ioa__resolve_req_of(pr), &a);
    }
  }
  job_free(job);
  /* Loop thread, as pool_free: the last result of a freed pool frees it. */
  if (atomic_fetch_sub(&p->nposted, 1) == 1 && p->dead)
    pool_destroy(p);
}

static int job_is_twin(const gai_job *job, const char *host, const char *service,
                       const struct addrinfo *h) {
  if (job->abandoned) /* nobody would take its result */
    return 0;
  if (job->hints.ai_family != h->ai_family || job->hints.ai_socktype != h->ai_socktype ||
      job->hints.ai_protocol != h->ai_protocol || job->hints.ai_flags != h->ai_flags)
    return 0;
  if (!host != !job->host || !service != !job->service)
    return 0;
  if (host && strcmp(job->host, host) != 0)
    return 0;
  return !service || strcmp(job->service, service) == 0;
}

/* Under p->lock: a queued (near the tail) or running job for exactly this
 * lookup. */
static gai_job *find_twin(pool *p, const char *host, const char *service,
                          const struct addrinfo *h) {
  int i = 0;
  for (ioa__list *n = p->queue.prev; n != &p->queue && i < COALESCE_SCAN; n = n->prev, i++) {
    gai_job *job = IOA__CONTAINER_OF(n, gai_job, link);
    if (job_is_twin(job, host, service, h))
      return job;
  }
  IOA__LIST_FOREACH(n, &p->running) {
    gai_job *job = IOA__CONTAINER_OF(n, gai_job, link);
    if (job_is_twin(job, host, service, h))
      return job;
  }
  return NULL;
}

static gai_job *job_new(pool *p, const char *host, const char *service,
                        const struct addrinfo *h) {
  size_t hlen = host ? strlen(host) + 1 : 0, slen = service ? strlen(service) + 1 : 0;
  /* malloc + memset, not calloc: glibc's calloc skips the per-thread cache. */
  gai_job *job = ioa__malloc(sizeof *job + hlen + slen);
  if (!job)
    return NULL;
  memset(job, 0, sizeof *job);
  if (host)
    job->host = memcpy(job->strings, host, hlen);
  if (service)
    job->service = memcpy(job->strings + hlen, service, slen);
  job->hints = *h;
  job->p = p;
  job->state = JOB_QUEUED;
  ioa__list_init(&job->waiters);
  return job;
}


/* Make w wait for a job for this lookup: a twin's, or a new one (queued;
 * *wake counts the workers to wake).  Under p->lock.  Returns 0,
 * IOA__RESOLVE_JOINED, or a negative code. */
static int wait_for(pool *p, pool_wait *w, const char *host, const char *service,
                    const struct addrinfo *h, int *wake) {
  /* Joining touches the waiters list, the loop thread's alone: only this
   * thread frees a job nobody abandoned (job_posted). */
  gai_job *twin = find_twin(p, host, service, h);
  if (twin) {
    w->job = twin;
    ioa__list_push_back(&twin->waiters, &w->link);
    return IOA__RESOLVE_JOINED;
  }
  gai_job *job = job_new(p, host, service, h);
  if (!job)
    return -ENOMEM;
  ioa__list_push_back(&p->queue, &job->link);
  p->nqueued++;
  int e = pool_maybe_spawn(p);
  if (e && p->nthreads == 0) { /* this lookup cannot run: fail it here */
    ioa__list_remove(&job->link);
    p->nqueued--;
    job_free(job);
    return -e;
  }
  (*wake)++;
  w->job = job;
  ioa__list_push_back(&job->waiters, &w->link);
  return 0;
}

static void pool_detach(ioa_resolve_req *req);

static int pool_start(ioa_resolve_req *req, const char *host, const char *service,
                      const ioa_resolve_hints *hints) {
  pool *p = req->r->backend;
  pool_req *pr = ioa__resolve_req_state(req);
  for (unsigned i = 0; i < 2; i++) {
    pr->w[i].slot = i;
    ioa__list_init(&pr->w[i].link);
  }
  struct addrinfo h = {.ai_family = hints->family,
                       .ai_socktype = hints->socktype,
                       .ai_protocol = hints->protocol,
                       .ai_flags = hints->flags};
  int wake = 0, rc;
  /* One critical section for the lookup, both families' jobs included. */
  pthread_mutex_lock(&p->lock);
  if (!req->families_apart) {
    rc = wait_for(p, &pr->w[0], host, service, &h, &wake);
  } else {
    pr->apart = 1;
    h.ai_flags = req->flags_apart;
    h.ai_family = AF_INET6;
    int r6 = wait_for(p, &pr->w[0], host, service, &h, &wake);
    h.ai_family = AF_INET;
    int r4 = r6 < 0 ? r6 : wait_for(p, &pr->w[1], host, service, &h, &wake);
    rc = r4 < 0 ? r4 : r6 == IOA__RESOLVE_JOINED && r4 == IOA__RESOLVE_JOINED ? IOA__RESOLVE_JOINED : 0;
  }
  /* Idle workers to wake: one per new job, never more than wait; woken
   * after the unlock, so that they do not wake only to wait for the lock. */
  if ((unsigned)wake > p->nidle)
    wake = (int)p->nidle;
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < wake; i++)
    pthread_cond_signal(&p->cond);
  if (rc < 0 && pr->apart)
    pool_detach(req); /* the AAAA half went out: take it back */
  return rc;
}

/* Loop thread: w no longer waits for its job. */
static void wait_detach(pool_wait *w) {
  gai_job *job = w->job;
  if (!job)
    return;
  w->job = NULL;
  ioa__list_remove(&w->link);
  if (!ioa__list_empty(&job->waiters))
    return; /* the job goes on for the others */
  pool *p = job->p;
  int free_now = 0;
  pthread_mutex_lock(&p->lock);
  switch (job->state) {
  case JOB_QUEUED:
    ioa__list_remove(&job->link);
    p->nqueued--;
    free_now = 1;
    break;
  case JOB_RUNNING:
    /* The worker frees it when getaddrinfo returns.  Until then it no
     * longer counts as busy, so queued work may run on another thread. */
    job->abandoned = 1;
    p->nbusy--;
    p->nabandoned++;
    if (p->nqueued) {
      (void)pool_maybe_spawn(p); /* failure: an existing worker will do it */
      pthread_cond_broadcast(&p->cond);
    }
    break;
  case JOB_POSTED:
    break; /* job_posted frees it */
  }
  pthread_mutex_unlock(&p->lock);
  if (free_now)
    job_free(job);
}

static void pool_detach(ioa_resolve_req *req) {
  pool_req *pr = ioa__resolve_req_state(req);
  wait_detach(&pr->w[0]);
  wait_detach(&pr->w[1]);
}

static void pool_release(ioa_resolve_req *req) {
  pool_req *pr = ioa__resolve_req_state(req);
  ioa__free(pr->part[0].addrs);
  ioa__free(pr->part[1].addrs);
  ioa__free(pr->all);
}

/* -------------------------------------------------------- lifecycle */

static int pool_init(ioa_resolver *r, const ioa_resolver_options *opts, void **out) {
  unsigned max = opts->max_threads ? opts->max_threads : IOA_RESOLVER_DEFAULT_THREADS;
  if (max > UINT_MAX / IOA_RESOLVER_THREAD_FACTOR / 16)
    return IOA_EBADPARAM;
  pool *p = ioa__calloc(1, sizeof *p);
  if (!p)
    return -ENOMEM;
  p->loop = r->loop;
  p->max_threads = max;
  p->hard_cap = max * IOA_RESOLVER_THREAD_FACTOR;
  ioa__list_init(&p->queue);
  ioa__list_init(&p->running);
  atomic_init(&p->nposted, 0);
  p->threads = ioa__calloc(p->hard_cap, sizeof *p->threads);
  int e = p->threads ? pthread_mutex_init(&p->lock, NULL) : ENOMEM;
  if (e == 0) {
    e = pthread_cond_init(&p->cond, NULL);
    if (e)
      pthread_mutex_destroy(&p->lock);
  }
  if (e) {
    ioa__free(p->threads);
    ioa__free(p);
    return -e;
  }
  *out = p;
  return 0;
}

static void pool_destroy(pool *p) {
  pthread_cond_destroy(&p->cond);
  pthread_mutex_destroy(&p->lock);
  ioa__free(p->threads);
  ioa__free(p);
}

/* Every request has left: queued jobs are gone and running ones abandoned
 * (their workers free them).  Joins the workers.  Results still waiting in
 * the loop's post queue (the loop runs them on its next iteration, or in
 * ioa_loop_free) free the pool with the last of them. */
static void pool_free(void *backend) {
  pool *p = backend;
  pthread_mutex_lock(&p->lock);
  p->shutdown = 1;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->lock);
  for (unsigned i = 0; i < p->nthreads; i++)
    pthread_join(p->threads[i], NULL);
  if (atomic_load(&p->nposted) == 0)
    pool_destroy(p);
  else
    p->dead = 1;
}

const ioa__resolver_ops ioa__resolver_pool_ops = {
    /* Families apart where the dispatch allows it, each sorted by glibc,
     * joined by addrsort. */
    .caps = IOA_RESOLVER_CAP_EARLY_FAMILIES | IOA_RESOLVER_CAP_SORTED | IOA_RESOLVER_CAP_THREADS,
    .req_size = sizeof(pool_req),
    .init = pool_init,
    .free = pool_free,
    .start = pool_start,
    .detach = pool_detach,
    .release = pool_release,
};

/* ------------------------------------------------- white-box test hooks */

void ioa__pool_set_max_threads(ioa_resolver *r, unsigned max) {
  pool *p = r->backend;
  pthread_mutex_lock(&p->lock);
  p->max_threads = max;
  pthread_mutex_unlock(&p->lock);
}

unsigned ioa__pool_queued(ioa_resolver *r) {
  pool *p = r->backend;
  pthread_mutex_lock(&p->lock);
  unsigned n = p->nqueued;
  pthread_mutex_unlock(&p->lock);
  return n;
}

const void *ioa__pool_job_of(ioa_resolve_req *req) {
  return ((pool_req *)ioa__resolve_req_state(req))->w[0].job;
}
