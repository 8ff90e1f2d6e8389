/* SPDX-License-Identifier: MIT */
/* The event loop: a core of fd table, timer heap, defer queue and post queue,
 * driven either by epoll (native) or by a foreign loop through
 * ioa_loop_backend. */
#include "ioasync/loop.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "abi.h"
#include "alloc.h"
#include "list.h"
#include "loop_internal.h"
#include "sys.h"

#define IOA_MAX_EVENTS 256
/* epoll data for the wakeup eventfd; real watchers carry (gen << 32 | fd). */
#define IOA_WAKE_TOKEN UINT64_MAX

struct fd_slot {
  ioa_io *io;
  uint32_t gen;
};

struct ioa_loop {
  int native;
  int epfd;
  int wakefd;
  ioa_loop_backend backend;
  int64_t backend_timeout_ms; /* last value given to backend.timer_update */
  int backend_alive;          /* last value given to backend.keepalive */

  struct fd_slot *fds;
  size_t nfds;
  uint32_t gen;
  size_t active_io;

  ioa_timer **heap;
  size_t heap_len, heap_cap;
  uint64_t timer_seq;

  ioa__list defers; /* active ioa_defer handles, in start order */
  size_t active_defer;

  /* Posts from any thread: a lock-free stack (a push is one
   * compare-and-swap, no lock shared with the loop thread), which the loop
   * takes whole with one exchange and turns into FIFO order.  ioa_post has
   * room for one link only (its size is ABI), which is all this needs. */
  _Atomic(ioa_post *) post_stack;
  atomic_size_t refs;

  uint64_t now;
  int running;
  int stop_flag;

  ioa_warn_cb warn_cb;
  void *warn_data;

  struct {
    void *obj;
    void (*free_fn)(void *);
  } slots[IOA__LOOP_NSLOTS]; /* ioa__loop_slot_* */

  void *spare; /* one freed block kept for reuse (ioa__loop_spare_*) */
  size_t spare_size;

  struct epoll_event events[IOA_MAX_EVENTS];
};

/* Deadlines saturate: a timeout near UINT64_MAX means "never", not a wrap
 * into the past. */
static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ioa_loop_now(const ioa_loop *loop) { return loop->now; }
uint64_t ioa_loop_update_time(ioa_loop *loop) { return loop->now = mono_ns(); }

/* ---------------------------------------------------------------- lifetime */

void ioa_loop_options_init_size(ioa_loop_options *o, size_t size) {
  static const ioa_loop_options defaults = {sizeof defaults, NULL, NULL};
  IOA__INIT(o, size, &defaults);
}

void ioa_loop_backend_init_size(ioa_loop_backend *b, size_t size) {
  static const ioa_loop_backend defaults = {.struct_size = sizeof defaults};
  IOA__INIT(b, size, &defaults);
}

static int loop_init_common(const ioa_loop_options *opts, ioa_loop **out) {
  ioa_loop_options o;
  ioa_loop_options_init(&o);
  if (!out || (opts && IOA__IMPORT(&o, opts) < 0))
    return IOA_EBADPARAM;
  ioa_loop *loop = ioa__calloc(1, sizeof *loop);
  if (!loop)
    return -ENOMEM;
  loop->epfd = -1;
  loop->wakefd = -1;
  loop->backend_timeout_ms = -1;
  ioa__list_init(&loop->defers);
  loop->warn_cb = o.on_warning;
  loop->warn_data = o.warning_data;
  atomic_init(&loop->refs, 0);
  atomic_init(&loop->post_stack, NULL);
  loop->now = mono_ns();
  *out = loop;
  return 0;
}

int ioa_loop_new(const ioa_loop_options *opts, ioa_loop **out) {
  if (!out)
    return IOA_EBADPARAM;
  ioa_loop *loop = NULL;
  int r = loop_init_common(opts, &loop);
  if (r < 0)
    return r;
  loop->native = 1;
  loop->epfd = ioa__sys_epoll_create();
  if (loop->epfd < 0)
    goto fail;
  loop->wakefd = ioa__sys_eventfd();
  if (loop->wakefd < 0)
    goto fail;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = IOA_WAKE_TOKEN};
  if (ioa__sys_epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0)
    goto fail;
  *out = loop;
  return 0;
fail:
  r = -errno;
  ioa__sys_close(loop->wakefd);
  ioa__sys_close(loop->epfd);
  ioa__free(loop);
  return r;
}

int ioa_loop_new_with_backend(const ioa_loop_options *opts, const ioa_loop_backend *backend,
                              ioa_loop **out) {
  ioa_loop_backend be;
  ioa_loop_backend_init(&be);
  if (!out || !backend || IOA__IMPORT(&be, backend) < 0 || !be.io_update || !be.timer_update ||
      !be.wakeup)
    return IOA_EBADPARAM;
  ioa_loop *loop = NULL;
  int r = loop_init_common(opts, &loop);
  if (r < 0)
    return r;
  loop->backend = be;
  *out = loop;
  return 0;
}

static void run_posts(ioa_loop *loop);

void ioa_loop_free(ioa_loop *loop) {
  if (!loop)
    return;
  for (int i = 0; i < IOA__LOOP_NSLOTS; i++) {
    void (*fn)(void *) = loop->slots[i].free_fn;
    if (fn) {
      loop->slots[i].free_fn = NULL;
      fn(loop->slots[i].obj);
      loop->slots[i].obj = NULL;
    }
  }
  /* Posts carry memory their owners free in the callback (a resolver's late
   * results, say): run them rather than leak it. */
  run_posts(loop);
  /* Detach whatever is still active so later stops are harmless no-ops. */
  for (size_t i = 0; i < loop->nfds; i++) {
    ioa_io *io = loop->fds[i].io;
    if (io) {
      io->active_ = 0;
      io->registered_ = 0;
    }
  }
  for (size_t i = 0; i < loop->heap_len; i++)
    loop->heap[i]->heap_idx_ = SIZE_MAX;
  IOA__LIST_FOREACH_SAFE(n, &loop->defers) {
    ioa__list_remove(n);
    IOA__CONTAINER_OF(n, ioa_defer, node_)->active_ = 0;
  }
  if (!loop->native && loop->backend.cleanup)
    loop->backend.cleanup(loop->backend.ctx);
  ioa__sys_close(loop->wakefd);
  ioa__sys_close(loop->epfd);
  ioa__free(loop->fds);
  ioa__free(loop->heap);
  ioa__free(loop->spare);
  ioa__free(loop);
}

void *ioa__loop_spare_take(ioa_loop *loop, size_t size) {
  void *p = loop->spare;
  if (!p || loop->spare_size != size)
    return NULL;
  loop->spare = NULL;
  return p;
}

void ioa__loop_spare_give(ioa_loop *loop, void *p, size_t size) {
  if (loop->spare) {
    ioa__free(p);
    return;
  }
  loop->spare = p;
  loop->spare_size = size;
}

void *ioa__loop_slot_get(const ioa_loop *loop, ioa__loop_slot which) {
  return loop->slots[which].obj;
}

void ioa__loop_slot_set(ioa_loop *loop, ioa__loop_slot which, void *obj,
                        void (*free_fn)(void *)) {
  loop->slots[which].obj = obj;
  loop->slots[which].free_fn = free_fn;
}

void ioa_loop_set_warning_hook(ioa_loop *loop, ioa_warn_cb cb, void *data) {
  loop->warn_cb = cb;
  loop->warn_data = data;
}

void ioa_warn_discard(const char *message, void *data) {
  (void)message;
  (void)data;
}

void ioa_loop_warn(ioa_loop *loop, const char *fmt, ...) {
  if (loop->warn_cb == ioa_warn_discard)
    return; /* silenced: not even the formatting */
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (loop->warn_cb)
    loop->warn_cb(buf, loop->warn_data);
  else
    fprintf(stderr, "ioasync: warning: %s\n", buf); /* IO::Async warns on stderr too */
}

static void backend_resched(ioa_loop *loop);
static void wake(ioa_loop *loop);

/* The native loop this thread is running, if any: an unref from any other
 * thread must wake the loop (it may be asleep in epoll_wait with nothing
 * but that reference keeping it there); one from inside the loop's own
 * callbacks need not, as the loop re-checks before it sleeps. */
static _Thread_local ioa_loop *running_here;

void ioa_loop_ref(ioa_loop *loop) {
  atomic_fetch_add(&loop->refs, 1);
  backend_resched(loop);
}
void ioa_loop_unref(ioa_loop *loop) {
  size_t before = atomic_fetch_sub(&loop->refs, 1);
  assert(before > 0 && "ioa_loop_unref without a matching ioa_loop_ref");
  if (loop->native) {
    if (before == 1 && running_here != loop)
      wake(loop);
    return;
  }
  backend_resched(loop);
}

/* The run loop's liveness test: posts are queued. */
static int posts_pending(ioa_loop *loop) { return atomic_load(&loop->post_stack) != NULL; }

size_t ioa_loop_active(const ioa_loop *loop) {
  return loop->active_io + loop->heap_len + loop->active_defer + atomic_load(&loop->refs);
}

/* --------------------------------------------------- backend rescheduling */

/* Milliseconds from now until the loop must run again: 0 with defers
 * queued or a timer due, -1 with no timer. */
static int64_t timeout_ms_from(const ioa_loop *loop, uint64_t now) {
  if (loop->active_defer)
    return 0;
  if (loop->heap_len == 0)
    return -1;
  uint64_t due = loop->heap[0]->due_ns_;
  if (due <= now)
    return 0;
  uint64_t left = due - now;
  uint64_t ms = left / 1000000u + (left % 1000000u != 0); /* round up: never wake early */
  return ms > INT_MAX ? INT_MAX : (int64_t)ms;
}

static int64_t next_timeout_ms(const ioa_loop *loop) { return timeout_ms_from(loop, loop->now); }

/* For foreign loops: tell the adapter when ioasync next needs a callback. */
static void backend_resched(ioa_loop *loop) {
  if (loop->native)
    return;
  int64_t t = next_timeout_ms(loop);
  /* Timeouts are relative, so equal values may still mean new deadlines;
   * only a repeated "none" is skipped. */
  if (t != -1 || loop->backend_timeout_ms != -1) {
    loop->backend_timeout_ms = t;
    loop->backend.timer_update(loop->backend.ctx, t);
  }
  int alive = ioa_loop_active(loop) > 0;
  if (loop->backend.keepalive && alive != loop->backend_alive) {
    loop->backend_alive = alive;
    loop->backend.keepalive(loop->backend.ctx, alive);
  }
}

/* -------------------------------------------------------------- watchers */

void ioa_io_init(ioa_loop *loop, ioa_io *io, int fd, ioa_io_cb cb, void *data) {
  memset(io, 0, sizeof *io);
  io->loop_ = loop;
  io->cb_ = cb;
  io->data_ = data;
  io->fd_ = fd;
}

static int grow_fds(ioa_loop *loop, int fd) {
  size_t want = loop->nfds ? loop->nfds : 64;
  while (want <= (size_t)fd)
    want *= 2;
  struct fd_slot *n = ioa__realloc(loop->fds, want * sizeof *n);
  if (!n)
    return -ENOMEM;
  memset(n + loop->nfds, 0, (want - loop->nfds) * sizeof *n);
  loop->fds = n;
  loop->nfds = want;
  return 0;
}

static uint32_t to_epoll(unsigned ev) {
  uint32_t e = 0;
  if (ev & IOA_READ)
    e |= EPOLLIN | EPOLLRDHUP;
  if (ev & IOA_WRITE)
    e |= EPOLLOUT;
  return e;
}

/* ioa_io.registered_ holds the events the poller has, plus these (private):
 * a one-shot registration (ioa__io_start_oneshot), and one whose event the
 * kernel has reported, which EPOLLONESHOT has therefore disarmed. */
#define IO_EVENTS (IOA_READ | IOA_WRITE)
#define IO_ONESHOT (1u << 8)
#define IO_FIRED (1u << 9)

/* A handle's loop pointer is set by its _init function: a zero-filled handle
 * (never initialised) would otherwise look idle or, for a timer, active. */
#define ASSERT_INITIALISED(h) assert((h)->loop_ != NULL && "handle used before its _init()")

static int io_start(ioa_io *io, unsigned events, int oneshot) {
  ASSERT_INITIALISED(io);
  events &= IO_EVENTS;
  if (events == 0) {
    ioa_io_stop(io);
    return 0;
  }
  ioa_loop *loop = io->loop_;
  int fd = io->fd_;
  if (!loop || fd < 0)
    return -EBADF;
  if ((size_t)fd >= loop->nfds) {
    int r = grow_fds(loop, fd);
    if (r < 0)
      return r;
  }
  struct fd_slot *slot = &loop->fds[fd];
  if (slot->io && slot->io != io)
    return -EEXIST;
  unsigned want = events | (oneshot && loop->native ? IO_ONESHOT : 0);
  if (io->active_ && io->registered_ == want)
    return 0; /* a fired one-shot differs (IO_FIRED) and is re-armed below */
  int add = !io->active_;
  if (loop->native) {
    uint32_t gen = add ? loop->gen + 1 : slot->gen;
    struct epoll_event ev = {.events = to_epoll(events) | (want & IO_ONESHOT ? EPOLLONESHOT : 0),
                             .data.u64 = ((uint64_t)gen << 32) | (uint32_t)fd};
    int r = ioa__sys_epoll_ctl(loop->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
    /* A watcher stopped after its one-shot event left the kernel's disarmed
     * registration in place (see ioa_io_stop); the fd is still open, so take
     * that registration over. */
    if (r < 0 && add && errno == EEXIST)
      r = ioa__sys_epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (r < 0)
      return -errno;
    if (add)
      loop->gen = gen;
    slot->gen = gen;
  } else {
    int r = loop->backend.io_update(loop->backend.ctx, fd, io->registered_ & IO_EVENTS, events);
    if (r < 0)
      return r;
  }
  if (add) {
    slot->io = io;
    io->active_ = 1;
    loop->active_io++;
  }
  io->events_ = events;
  io->registered_ = want;
  if (add)
    backend_resched(loop);
  return 0;
}

int ioa_io_start(ioa_io *io, unsigned events) { return io_start(io, events, 0); }

int ioa__io_start_oneshot(ioa_io *io, unsigned events) { return io_start(io, events, 1); }

void ioa_io_stop(ioa_io *io) {
  ASSERT_INITIALISED(io);
  if (!io->active_)
    return;
  ioa_loop *loop = io->loop_;
  int fd = io->fd_;
  if (loop->native) {
    /* After a one-shot event the registration is disarmed: it reports
     * nothing more and goes away when the fd is closed, so the usual
     * stop-then-close of a finished connect needs no syscall here.  If the
     * fd stays open, the next start on it takes the registration over. */
    if (!(io->registered_ & IO_FIRED)) {
      struct epoll_event ev = {0};
      /* Fails harmlessly with EBADF/ENOENT if the fd was already closed. */
      (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, &ev);
    }
  } else {
    (void)loop->backend.io_update(loop->backend.ctx, fd, io->registered_ & IO_EVENTS, 0);
  }
  loop->fds[fd].io = NULL;
  loop->fds[fd].gen = 0;
  io->active_ = 0;
  io->registered_ = 0;
  io->events_ = 0;
  loop->active_io--;
  backend_resched(loop);
}

int ioa_io_active(const ioa_io *io) {
  ASSERT_INITIALISED(io);
  return io->active_;
}
int ioa_io_fd(const ioa_io *io) { return io->fd_; }

static void dispatch_io(ioa_loop *loop, int fd, uint32_t gen, unsigned revents, int check_gen) {
  if (fd < 0 || (size_t)fd >= loop->nfds)
    return;
  struct fd_slot *slot = &loop->fds[fd];
  ioa_io *io = slot->io;
  /* A watcher stopped (or replaced on a reused fd number) earlier in this
   * batch gets nothing: the generation no longer matches. */
  if (!io || (check_gen && slot->gen != gen))
    return;
  if (io->registered_ & IO_ONESHOT)
    io->registered_ |= IO_FIRED; /* the kernel disarmed it as it reported this */
  revents &= io->events_ | IOA_ERROR | IOA_HUP;
  if (revents)
    io->cb_(io, revents, io->data_);
}

void ioa_loop_backend_io(ioa_loop *loop, int fd, unsigned revents) {
  loop->now = mono_ns();
  dispatch_io(loop, fd, 0, revents, 0);
  backend_resched(loop);
}

/* ---------------------------------------------------------------- timers */

static int timer_less(const ioa_timer *a, const ioa_timer *b) {
  return a->due_ns_ < b->due_ns_ || (a->due_ns_ == b->due_ns_ && a->seq_ < b->seq_);
}

static void heap_set(ioa_loop *loop, size_t i, ioa_timer *t) {
  loop->heap[i] = t;
  t->heap_idx_ = i;
}

static void heap_up(ioa_loop *loop, size_t i) {
  ioa_timer *t = loop->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!timer_less(t, loop->heap[p]))
      break;
    heap_set(loop, i, loop->heap[p]);
    i = p;
  }
  heap_set(loop, i, t);
}

static void heap_down(ioa_loop *loop, size_t i) {
  ioa_timer *t = loop->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= loop->heap_len)
      break;
    if (c + 1 < loop->heap_len && timer_less(loop->heap[c + 1], loop->heap[c]))
      c++;
    if (!timer_less(loop->heap[c], t))
      break;
    heap_set(loop, i, loop->heap[c]);
    i = c;
  }
  heap_set(loop, i, t);
}

static void heap_remove(ioa_loop *loop, ioa_timer *t) {
  size_t i = t->heap_idx_;
  ioa_timer *last = loop->heap[--loop->heap_len];
  t->heap_idx_ = SIZE_MAX;
  if (last == t)
    return;
  heap_set(loop, i, last);
  if (i > 0 && timer_less(last, loop->heap[(i - 1) / 2]))
    heap_up(loop, i);
  else
    heap_down(loop, i);
}

void ioa_timer_init(ioa_loop *loop, ioa_timer *t, ioa_timer_cb cb, void *data) {
  memset(t, 0, sizeof *t);
  t->loop_ = loop;
  t->cb_ = cb;
  t->data_ = data;
  t->heap_idx_ = SIZE_MAX;
}

int ioa_timer_start_at(ioa_timer *t, uint64_t deadline_ns, uint64_t repeat_ns) {
  ASSERT_INITIALISED(t);
  ioa_loop *loop = t->loop_;
  if (t->heap_idx_ != SIZE_MAX)
    heap_remove(loop, t);
  if (loop->heap_len == loop->heap_cap) {
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
    ioa_timer **n = ioa__realloc(loop->heap, cap * sizeof *n);
    if (!n)
      return -ENOMEM;
    loop->heap = n;
    loop->heap_cap = cap;
  }
  t->due_ns_ = deadline_ns;
  t->repeat_ns_ = repeat_ns;
  t->seq_ = loop->timer_seq++;
  loop->heap[loop->heap_len] = t;
  t->heap_idx_ = loop->heap_len++;
  heap_up(loop, t->heap_idx_);
  backend_resched(loop);
  return 0;
}

int ioa_timer_start(ioa_timer *t, uint64_t timeout_ns, uint64_t repeat_ns) {
  ASSERT_INITIALISED(t);
  return ioa_timer_start_at(t, add_sat(t->loop_->now, timeout_ns), repeat_ns);
}

void ioa_timer_stop(ioa_timer *t) {
  ASSERT_INITIALISED(t);
  if (t->heap_idx_ == SIZE_MAX)
    return;
  heap_remove(t->loop_, t);
  backend_resched(t->loop_);
}

int ioa_timer_active(const ioa_timer *t) {
  ASSERT_INITIALISED(t);
  return t->heap_idx_ != SIZE_MAX;
}

static void run_timers(ioa_loop *loop) {
  uint64_t now = loop->now;
  /* Timers (re)started from these callbacks wait for the next run even when
   * already due: one re-arming itself at 0 must not keep the loop from
   * polling (the heap's top may then hide older due timers until then). */
  uint64_t started_before = loop->timer_seq;
  while (loop->heap_len && loop->heap[0]->due_ns_ <= now &&
         loop->heap[0]->seq_ < started_before) {
    ioa_timer *t = loop->heap[0];
    heap_remove(loop, t);
    if (t->repeat_ns_) {
      uint64_t due = add_sat(t->due_ns_, t->repeat_ns_);
      if (due <= now) /* fell behind: skip missed periods rather than spin */
        due = add_sat(now, t->repeat_ns_);
      /* The slot was just freed, so re-inserting cannot need memory. */
      (void)ioa_timer_start_at(t, due, t->repeat_ns_);
    }
    t->cb_(t, t->data_);
  }
}

/* ---------------------------------------------------------------- defers */

void ioa_defer_init(ioa_loop *loop, ioa_defer *d, ioa_defer_cb cb, void *data) {
  memset(d, 0, sizeof *d);
  d->loop_ = loop;
  d->cb_ = cb;
  d->data_ = data;
  ioa__list_init(&d->node_);
}

void ioa_defer_start(ioa_defer *d) {
  ASSERT_INITIALISED(d);
  if (d->active_)
    return;
  ioa_loop *loop = d->loop_;
  ioa__list_push_back(&loop->defers, &d->node_);
  d->active_ = 1;
  loop->active_defer++;
  backend_resched(loop);
}

void ioa_defer_stop(ioa_defer *d) {
  ASSERT_INITIALISED(d);
  if (!d->active_)
    return;
  ioa__list_remove(&d->node_);
  d->active_ = 0;
  d->loop_->active_defer--;
}

int ioa_defer_active(const ioa_defer *d) {
  ASSERT_INITIALISED(d);
  return d->active_;
}

/* Run the defers queued so far; ones queued by these callbacks wait for the
 * next iteration, so a defer that re-queues itself cannot starve I/O. */
static void run_defers(ioa_loop *loop) {
  if (ioa__list_empty(&loop->defers))
    return;
  ioa__list batch;
  ioa__list_init(&batch);
  ioa__list_splice_back(&batch, &loop->defers);
  for (ioa__list *n; (n = ioa__list_first(&batch));) {
    ioa_defer *d = IOA__CONTAINER_OF(n, ioa_defer, node_);
    ioa_defer_stop(d);
    d->cb_(d, d->data_);
  }
}

/* ----------------------------------------------------------------- posts */

void ioa_loop_post(ioa_loop *loop, ioa_post *post, ioa_post_cb cb, void *data) {
  post->cb_ = cb;
  post->data_ = data;
  ioa_post *head = atomic_load_explicit(&loop->post_stack, memory_order_relaxed);
  do
    post->next_ = head;
  while (!atomic_compare_exchange_weak_explicit(&loop->post_stack, &head, post,
                                                memory_order_release, memory_order_relaxed));
  /* Only the post that found the stack empty wakes the loop: the others
   * ride on that wakeup, which has not taken the stack yet. */
  if (!head)
    wake(loop);
}

/* From any thread: make the loop run its posts and re-check its liveness. */
static void wake(ioa_loop *loop) {
  if (loop->native) {
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: a wakeup is pending. */
    ssize_t w;
    do
      w = write(loop->wakefd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
  } else {
    loop->backend.wakeup(loop->backend.ctx);
  }
}

static void run_posts(ioa_loop *loop) {
  if (loop->native) {
    uint64_t v;
    ssize_t r;
    do
      r = read(loop->wakefd, &v, sizeof v);
    while (r < 0 && errno == EINTR);
  }
  /* After the eventfd read: a post that finds the stack empty from now on
   * writes the eventfd again. */
  ioa_post *stack = atomic_exchange_explicit(&loop->post_stack, NULL, memory_order_acquire);
  ioa_post *p = NULL;
  while (stack) { /* newest first: reverse into posting order */
    ioa_post *next = stack->next_;
    stack->next_ = p;
    p = stack;
    stack = next;
  }
  while (p) {
    ioa_post *next = p->next_; /* p may be freed by its callback */
    p->cb_(p, p->data_);
    p = next;
  }
}

void ioa_loop_backend_wakeup(ioa_loop *loop) {
  loop->now = mono_ns();
  run_posts(loop);
  backend_resched(loop);
}

void ioa_loop_backend_timeout(ioa_loop *loop) {
  loop->now = mono_ns();
  run_timers(loop);
  run_defers(loop);
  backend_resched(loop);
}

/* ------------------------------------------------------------------ run */

void ioa_loop_stop(ioa_loop *loop) { loop->stop_flag = 1; }

static int loop_alive(ioa_loop *loop) { return ioa_loop_active(loop) > 0 || posts_pending(loop); }

static unsigned from_epoll(uint32_t e) {
  unsigned r = 0;
  if (e & EPOLLIN)
    r |= IOA_READ;
  if (e & EPOLLOUT)
    r |= IOA_WRITE;
  if (e & EPOLLERR)
    r |= IOA_ERROR;
  if (e & (EPOLLHUP | EPOLLRDHUP))
    r |= IOA_HUP;
  return r;
}

static int poll_once(ioa_loop *loop, int timeout_ms) {
  int n;
  do
    n = ioa__sys_epoll_wait(loop->epfd, loop->events, IOA_MAX_EVENTS, timeout_ms);
  while (n < 0 && errno == EINTR && (timeout_ms = 0, 1));
  if (n < 0)
    return -errno;
  loop->now = mono_ns();
  int woken = 0;
  for (int i = 0; i < n; i++) {
    uint64_t tok = loop->events[i].data.u64;
    if (tok == IOA_WAKE_TOKEN) {
      woken = 1;
      continue;
    }
    dispatch_io(loop, (int)(uint32_t)tok, (uint32_t)(tok >> 32),
                from_epoll(loop->events[i].events), 1);
  }
  if (woken)
    run_posts(loop);
  return 0;
}

int ioa_loop_run(ioa_loop *loop, ioa_run_mode mode) {
  if (!loop->native)
    return -ENOTSUP; /* a foreign loop drives this one */
  if (loop->running)
    return -EBUSY;
  loop->running = 1;
  loop->stop_flag = 0;
  ioa_loop *outer = running_here; /* another loop's run may enclose this one */
  running_here = loop;
  int rc = 0;
  for (;;) {
    loop->now = mono_ns();
    run_timers(loop);
    int alive = loop_alive(loop);
    if (loop->stop_flag)
      break;
    int timeout = 0;
    if (mode != IOA_RUN_NOWAIT && alive)
      timeout = (int)next_timeout_ms(loop);
    if (!alive && mode == IOA_RUN_DEFAULT)
      break;
    rc = poll_once(loop, timeout);
    if (rc < 0)
      break;
    run_timers(loop);
    run_defers(loop);
    if (mode != IOA_RUN_DEFAULT || loop->stop_flag)
      break;
  }
  loop->running = 0;
  running_here = outer;
  if (rc < 0)
    return rc;
  return loop_alive(loop) ? 1 : 0;
}

/* ------------------------------------------------------------- embedding */

int ioa_loop_fd(const ioa_loop *loop) {
  if (!loop)
    return IOA_EBADPARAM;
  return loop->native ? loop->epfd : -ENOTSUP;
}

int ioa_loop_timeout(const ioa_loop *loop) {
  if (!loop)
    return IOA_EBADPARAM;
  if (!loop->native)
    return -ENOTSUP;
  /* The cached time is from the last iteration: the host loop may have done
   * other work since, so measure from the clock's current reading. */
  return (int)timeout_ms_from(loop, mono_ns());
}
