/* SPDX-License-Identifier: MIT */
/* Buffered non-blocking byte streams.
 *
 * Read side: one growable buffer [rstart, rend) of unconsumed bytes, compacted
 * before a read when the free tail is short, grown only when compaction cannot
 * make read_size bytes of room.
 *
 * Write side: a queue (ioa__list) of segments.  Copied writes land in owned
 * chunks (a small write is appended to the tail chunk when it fits, so many
 * small writes cost one writev iovec); zero-copy writes reference the caller's
 * memory.  The queue is flushed by a deferred tick at the end of the loop
 * iteration, then by the write watcher while the socket pushes back.
 *
 * Transport: with one (TLS, see stream_internal.h) every byte goes through
 * its read/writev/shutdown instead of the fd's, which may want the other
 * direction's readiness (rd_want, wr_want); its handshake runs first (hs),
 * after bytes queued before it (plain_left) went out unencrypted.
 *
 * Re-entrancy: guard.h.  Every user callback runs between enter and leave,
 * and every entry point that can reach one (loop callbacks, set_callbacks,
 * pause/resume, free) holds a level too.  Freeing the stream inside a
 * callback only releases it; every caller up the stack sees that and
 * unwinds, and the outermost entry point destroys it on its way out
 * (outer_leave).
 */
#include "ioasync/stream.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>

#include "ioasync/error.h"

#include "abi.h"
#include "alloc.h"
#include "guard.h"
#include "list.h"
#include "stream_internal.h"
#include "sys.h"

#define STREAM_DEFAULT_READ_SIZE (64u * 1024u)
#define STREAM_MAX_READ_SIZE (64u * 1024u * 1024u)
#define STREAM_DEFAULT_HIGH_WATER (1024u * 1024u)
/* Copied data lives in chunks of this size (a write may span several);
 * the first chunk of a burst of small writes is small. */
#define STREAM_CHUNK_SIZE (64u * 1024u)
#define STREAM_SMALL_CHUNK_SIZE (4u * 1024u)
/* Spare full-size chunks kept for reuse while the stream is busy: freeing
 * and re-allocating 64 KiB blocks at the heap top makes malloc trim and
 * re-fault pages, which halved throughput.  Spares go when the stream idles. */
#define STREAM_MAX_SPARES 16u
/* Reads per readiness event: keeps a fast sender from starving other fds. */
#define STREAM_READS_PER_EVENT 4
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
#define STREAM_IOV_MAX (IOV_MAX < 1024 ? IOV_MAX : 1024)

typedef struct segment {
  ioa__list node;      /* in the write queue, a local batch, or the spares */
  const uint8_t *base; /* data start: owned[] for chunks, caller memory for zc */
  size_t len;          /* bytes of data at base */
  size_t off;          /* bytes already written */
  size_t cap;          /* owned capacity; 0 for zero-copy segments */
  void (*free_cb)(void *buf, void *free_data);
  void *free_data;
  uint8_t owned[];
} segment;

enum {
  PEND_FLUSH = 1u << 0,
  PEND_REOFFER = 1u << 1,
  PEND_HIGH = 1u << 2,
  PEND_ERROR = 1u << 3,
  PEND_CLOSED = 1u << 4,
  PEND_DISCARD = 1u << 5, /* hand queued zero-copy buffers back */
  PEND_READ = 1u << 6,    /* the transport holds bytes the fd will not announce */
  PEND_HANDSHAKE = 1u << 7,
  PEND_HS_CANCEL = 1u << 8, /* closed while handshaking: tell the handshake's owner */
};

/* Handshake states (hs). */
enum { HS_NONE = 0, HS_PLAIN, HS_RUNNING, HS_DONE, HS_FAILED };

struct ioa_stream {
  ioa_loop *loop;
  int fd;
  ioa_io io;
  ioa_defer tick;
  unsigned pending;

  ioa_stream_callbacks cbs;
  void *data;

  /* read side */
  uint8_t *rbuf;
  size_t rcap, rstart, rend;
  size_t read_size;
  int read_paused;
  int eof_seen;
  int eof_delivered;
  int delivering; /* inside on_read: rbuf is the callback's until it returns */
  int keep_open_on_eof;

  /* write side */
  ioa__list wq;     /* queued segments, oldest first */
  ioa__list spares; /* free full-size chunks, most recently freed first */
  unsigned nspares;
  size_t queued;
  size_t high_water, low_water;
  int above_high;    /* high water reached (or pending report), low not yet */
  int write_blocked; /* kernel pushed back: waiting for the write watcher */
  int shut_requested, shut_done;
  int close_requested; /* close_when_empty */
  int write_failed;    /* an error or a close stopped the write side */

  /* lifetime */
  int closed; /* fd closed */
  int error_reported;
  int err;
  const char *err_syscall;
  ioa__guard guard;

  /* transport (NULL: the fd itself) */
  ioa__transport *tr;
  unsigned rd_want, wr_want; /* readiness a blocked read/write waits for (0: the usual) */
  unsigned hs_want;          /* readiness the handshake waits for */
  int hs;                    /* HS_* */
  int tr_shut_done;          /* the transport's goodbye (close_notify) went out */
  size_t plain_left;         /* queued bytes still to go out before the handshake */
  ioa__stream_handshake_cb hs_cb;
  void *hs_data;
};

#define SEG(n) IOA__CONTAINER_OF(n, segment, node)

static void stream_io_cb(ioa_io *io, unsigned revents, void *data);
static void stream_tick_cb(ioa_defer *d, void *data);
static int call_event(ioa_stream *s, ioa_stream_event_cb cb);

/* ------------------------------------------------------------ callbacks */

static void trim_spares(ioa_stream *s, unsigned keep) {
  while (s->nspares > keep) {
    ioa__list *n = ioa__list_first(&s->spares);
    ioa__list_remove(n);
    s->nspares--;
    ioa__free(SEG(n));
  }
}

static void stream_destroy(ioa_stream *s) {
  trim_spares(s, 0);
  ioa__free(s->rbuf);
  if (s->tr)
    s->tr->ops->free(s->tr);
  ioa__free(s);
}

static void cb_enter(ioa_stream *s) { ioa__guard_enter(&s->guard); }
/* Non-zero if the stream was freed meanwhile: unwind, touch nothing. */
static int cb_leave(ioa_stream *s) { return ioa__guard_leave(&s->guard); }
static void outer_leave(ioa_stream *s) {
  if (ioa__guard_leave_last(&s->guard))
    stream_destroy(s);
}
static int freed(const ioa_stream *s) { return ioa__guard_released(&s->guard); }

/* ------------------------------------------------------------ helpers */

static void schedule(ioa_stream *s, unsigned what) {
  if (freed(s))
    return; /* a zero-copy free callback freed it mid-operation */
  s->pending |= what;
  ioa_defer_start(&s->tick);
}

static int want_read(const ioa_stream *s) {
  return s->cbs.on_read && !s->read_paused && !s->eof_seen && !s->closed &&
         (s->hs == HS_NONE || s->hs == HS_DONE);
}

static int tr_pending(const ioa_stream *s) {
  return s->tr && s->hs == HS_DONE && (s->tr->ops->pending(s->tr) & IOA__TR_IN);
}

/* Does revents satisfy a wait for want (IOA_READ or IOA_WRITE)?  Errors and
 * hang-ups wake every waiter: the retried call reports them. */
static int ready_for(unsigned want, unsigned revents) {
  return (revents & (want | IOA_ERROR | IOA_HUP)) != 0;
}

static void fail_later(ioa_stream *s, const char *syscall, int err);

static void update_io(ioa_stream *s) {
  if (s->closed)
    return;
  unsigned ev = 0;
  if (s->hs == HS_RUNNING) {
    ev = s->hs_want;
  } else if (s->hs != HS_FAILED) {
    if (want_read(s))
      ev |= s->rd_want ? s->rd_want : IOA_READ;
    if (s->write_blocked)
      ev |= s->wr_want ? s->wr_want : IOA_WRITE;
  }
  int r = ioa_io_start(&s->io, ev);
  if (r < 0)
    fail_later(s, "epoll_ctl", r);
}

/* Frees the segment, running a zero-copy free callback.  Returns non-zero if
 * that callback freed the stream. */
static int segment_release(ioa_stream *s, segment *seg) {
  if (seg->cap == STREAM_CHUNK_SIZE && s->nspares < STREAM_MAX_SPARES && !s->closed) {
    ioa__list_push_front(&s->spares, &seg->node);
    s->nspares++;
    return 0;
  }
  void (*free_cb)(void *, void *) = seg->free_cb;
  void *buf = (void *)(uintptr_t)seg->base;
  void *free_data = seg->free_data;
  ioa__free(seg);
  if (!free_cb)
    return 0;
  cb_enter(s);
  free_cb(buf, free_data);
  return cb_leave(s);
}

/* Drop every queued segment.  The queue is detached first so a free callback
 * that writes or frees sees a consistent (empty) stream. */
static int discard_queue(ioa_stream *s) {
  ioa__list q;
  ioa__list_init(&q);
  ioa__list_splice_back(&q, &s->wq);
  s->queued = 0;
  s->write_blocked = 0;
  /* A free callback may free the stream: the rest are still handed back
   * (the entry point's level keeps the memory), then the caller unwinds. */
  cb_enter(s);
  for (ioa__list *n; (n = ioa__list_first(&q));) {
    ioa__list_remove(n);
    (void)segment_release(s, SEG(n));
  }
  return cb_leave(s);
}

static void release_rbuf(ioa_stream *s) {
  ioa__free(s->rbuf);
  s->rbuf = NULL;
  s->rcap = s->rstart = s->rend = 0;
}

/* Close the fd and stop everything that could produce further callbacks
 * other than the ones already pending.  Queued writes are handed back from
 * the tick (zero-copy free callbacks are user code: never run from inside
 * the API call that closed), or at once by ioa_stream_free. */
static void close_fd(ioa_stream *s) {
  if (s->closed)
    return;
  s->closed = 1;
  s->write_failed = 1;
  s->write_blocked = 0;
  ioa_io_stop(&s->io);
  ioa__sys_close(s->fd);
  s->fd = -1;
  s->pending &= ~(unsigned)(PEND_FLUSH | PEND_REOFFER | PEND_HIGH | PEND_READ | PEND_HANDSHAKE);
  if (!s->delivering) /* else deliver() releases it once on_read returns */
    release_rbuf(s);
  trim_spares(s, 0);
  if (!ioa__list_empty(&s->wq))
    schedule(s, PEND_DISCARD);
  if (s->hs_cb)
    schedule(s, PEND_HS_CANCEL); /* its owner hears of it, deferred */
}

static void fail_later(ioa_stream *s, const char *syscall, int err) {
  if (s->error_reported || s->closed)
    return;
  s->error_reported = 1;
  s->err = err;
  s->err_syscall = syscall;
  /* Close at once so nothing more happens on the fd; on_error and on_closed
   * are deferred so whatever hit this returns normally. */
  close_fd(s);
  schedule(s, PEND_ERROR | PEND_CLOSED);
}

/* ------------------------------------------------------------ lifecycle */

void ioa_stream_options_init_size(ioa_stream_options *o, size_t size) {
  static const ioa_stream_options defaults = {.struct_size = sizeof defaults};
  IOA__INIT(o, size, &defaults);
}

void ioa_stream_callbacks_init_size(ioa_stream_callbacks *c, size_t size) {
  static const ioa_stream_callbacks defaults = {.struct_size = sizeof defaults};
  IOA__INIT(c, size, &defaults);
}

int ioa__stream_options_resolve(const ioa_stream_options *opts, ioa_stream_options *out) {
  ioa_stream_options o;
  ioa_stream_options_init(&o);
  if (opts && IOA__IMPORT(&o, opts) < 0)
    return IOA_EBADPARAM;
  if (!o.read_size)
    o.read_size = STREAM_DEFAULT_READ_SIZE;
  if (!o.high_water)
    o.high_water = STREAM_DEFAULT_HIGH_WATER;
  if (!o.low_water)
    o.low_water = o.high_water / 4;
  if (o.read_size > STREAM_MAX_READ_SIZE || o.low_water >= o.high_water)
    return IOA_EBADPARAM;
  *out = o;
  return 0;
}

int ioa_stream_new(ioa_loop *loop, int fd, const ioa_stream_options *opts, ioa_stream **out) {
  if (!out)
    return IOA_EBADPARAM;
  *out = NULL;
  ioa_stream_options o;
  if (!loop || fd < 0 || ioa__stream_options_resolve(opts, &o) < 0)
    return IOA_EBADPARAM;
  size_t read_size = o.read_size;
  size_t high = o.high_water;
  size_t low = o.low_water;
  int keep_open = o.keep_open_on_eof;
  if (ioa__sys_set_nonblock_cloexec(fd) < 0)
    return -errno;
  ioa_stream *s = ioa__calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->loop = loop;
  s->fd = fd;
  s->read_size = read_size;
  s->high_water = high;
  s->low_water = low;
  s->keep_open_on_eof = keep_open;
  ioa__list_init(&s->wq);
  ioa__list_init(&s->spares);
  ioa_io_init(loop, &s->io, fd, stream_io_cb, s);
  ioa_defer_init(loop, &s->tick, stream_tick_cb, s);
  *out = s;
  return 0;
}

int ioa_stream_set_callbacks(ioa_stream *s, const ioa_stream_callbacks *cbs, void *data) {
  ioa_stream_callbacks c;
  ioa_stream_callbacks_init(&c);
  if (cbs && IOA__IMPORT(&c, cbs) < 0)
    return IOA_EBADPARAM;
  s->cbs = c;
  s->data = data;
  if (want_read(s) && tr_pending(s))
    schedule(s, PEND_READ); /* bytes the handshake read ahead */
  cb_enter(s);
  update_io(s);
  outer_leave(s);
  return 0;
}

int ioa_stream_fd(const ioa_stream *s) { return s->fd; }
ioa_loop *ioa_stream_loop(const ioa_stream *s) { return s->loop; }
size_t ioa_stream_queued(const ioa_stream *s) { return s->queued; }

void ioa_stream_close(ioa_stream *s) {
  if (s->closed || freed(s))
    return;
  close_fd(s);
  schedule(s, PEND_CLOSED);
}

void ioa_stream_free(ioa_stream *s) {
  if (!s || freed(s))
    return;
  (void)ioa__guard_release(&s->guard); /* outer_leave below destroys it */
  ioa_defer_stop(&s->tick);
  s->pending = 0;
  close_fd(s);
  /* Queued zero-copy buffers come back now: nothing runs later.  The
   * level keeps the object alive while their callbacks run. */
  cb_enter(s);
  (void)discard_queue(s);
  /* A handshake's owner (an upgrade) learns that its stream is gone. */
  ioa__stream_handshake_cb hs_cb = s->hs_cb;
  s->hs_cb = NULL;
  if (hs_cb)
    hs_cb(s, -ECANCELED, "the stream was freed during the TLS handshake", s->hs_data);
  outer_leave(s);
}

/* ------------------------------------------------------------ writing */

static void note_queued(ioa_stream *s) {
  if (freed(s))
    return;
  if (!s->above_high && s->queued >= s->high_water) {
    s->above_high = 1;
    s->pending |= PEND_HIGH;
  }
  if (!s->write_blocked)
    s->pending |= PEND_FLUSH;
  ioa_defer_start(&s->tick);
}

static int write_check(const ioa_stream *s) {
  if (s->closed)
    return -EBADF;
  if (s->write_failed || s->shut_requested || s->close_requested)
    return -EPIPE;
  return 0;
}

/* The newest queued segment, or NULL. */
static segment *queue_tail(ioa_stream *s) {
  return ioa__list_empty(&s->wq) ? NULL : SEG(s->wq.prev);
}

static segment *chunk_get(ioa_stream *s, size_t cap) {
  segment *seg;
  ioa__list *spare = cap == STREAM_CHUNK_SIZE ? ioa__list_first(&s->spares) : NULL;
  if (spare) {
    ioa__list_remove(spare);
    s->nspares--;
    seg = SEG(spare);
  } else {
    seg = ioa__malloc(sizeof(segment) + cap);
    if (!seg)
      return NULL;
    ioa__list_init(&seg->node);
  }
  seg->base = seg->owned;
  seg->len = 0;
  seg->off = 0;
  seg->cap = cap;
  seg->free_cb = NULL;
  seg->free_data = NULL;
  return seg;
}

int ioa_stream_write(ioa_stream *s, const void *buf, size_t len) {
  int r = write_check(s);
  if (r < 0)
    return r;
  if (len == 0)
    return 0;
  if (!buf)
    return IOA_EBADPARAM;
  const uint8_t *p = buf;
  size_t left = len;
  segment *tail = queue_tail(s);
  size_t room = tail && tail->cap ? tail->cap - tail->len : 0;
  /* Get every chunk first so a failure queues nothing. */
  ioa__list fresh;
  ioa__list_init(&fresh);
  if (left > room) {
    size_t need = left - room;
    size_t cap = !tail && need <= STREAM_SMALL_CHUNK_SIZE && ioa__list_empty(&s->spares)
                     ? STREAM_SMALL_CHUNK_SIZE
                     : STREAM_CHUNK_SIZE;
    for (size_t got = 0; got < need; got += cap) {
      segment *seg = chunk_get(s, cap);
      if (!seg) {
        for (ioa__list *n; (n = ioa__list_first(&fresh));) {
          ioa__list_remove(n);
          (void)segment_release(s, SEG(n)); /* owned chunks: no callback */
        }
        return -ENOMEM;
      }
      ioa__list_push_back(&fresh, &seg->node);
    }
  }
  if (room) {
    size_t n = left < room ? left : room;
    memcpy(tail->owned + tail->len, p, n);
    tail->len += n;
    p += n;
    left -= n;
  }
  IOA__LIST_FOREACH(n, &fresh) {
    segment *seg = SEG(n);
    size_t k = left < seg->cap ? left : seg->cap;
    memcpy(seg->owned, p, k);
    seg->len = k;
    p += k;
    left -= k;
  }
  ioa__list_splice_back(&s->wq, &fresh);
  s->queued += len;
  note_queued(s);
  return 0;
}

int ioa_stream_write_zc(ioa_stream *s, const void *buf, size_t len,
                        void (*free_cb)(void *buf, void *free_data), void *free_data) {
  int r = write_check(s);
  if (r < 0)
    return r;
  if (len && !buf)
    return IOA_EBADPARAM;
  segment *seg = ioa__malloc(sizeof(segment));
  if (!seg)
    return -ENOMEM;
  seg->base = buf;
  seg->len = len;
  seg->off = 0;
  seg->cap = 0;
  seg->free_cb = free_cb;
  seg->free_data = free_data;
  ioa__list_push_back(&s->wq, &seg->node);
  s->queued += len;
  note_queued(s);
  return 0;
}

int ioa_stream_shutdown_write(ioa_stream *s) {
  if (s->closed)
    return -EBADF;
  if (s->shut_requested)
    return 0;
  s->shut_requested = 1;
  /* Done by the tick even when the queue is empty, so the syscall's failure
   * is reported like any other. */
  if (!s->write_blocked)
    schedule(s, PEND_FLUSH);
  return 0;
}

void ioa_stream_close_when_empty(ioa_stream *s) {
  if (s->closed || s->close_requested)
    return;
  s->close_requested = 1;
  if (!s->write_blocked)
    schedule(s, PEND_FLUSH);
}

/* Write as much of the queue as the kernel takes.  Runs only from the loop
 * (tick or write watcher), so it may call callbacks.  Returns non-zero if
 * the stream was freed. */
static void block_write(ioa_stream *s, unsigned want) {
  unsigned w = want == IOA_READ ? IOA_READ : 0;
  if (!s->write_blocked || s->wr_want != w) {
    s->write_blocked = 1;
    s->wr_want = w;
    update_io(s);
  }
}

/* One writev of iov through the transport or the fd: bytes written, or
 * -EAGAIN (write_blocked is then set), or another failure (already
 * reported). */
static ssize_t write_some(ioa_stream *s, const struct iovec *iov, int n) {
  ssize_t w;
  if (s->tr && s->hs == HS_DONE) {
    unsigned want = 0;
    w = s->tr->ops->writev(s->tr, iov, n, &want);
    if (w == -EAGAIN)
      block_write(s, want);
    else if (w < 0)
      fail_later(s, s->tr->err_syscall, (int)w);
    return w;
  }
  do
    w = ioa__sys_writev(s->fd, iov, n);
  while (w < 0 && errno == EINTR);
  if (w >= 0)
    return w;
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    block_write(s, IOA_WRITE);
    return -EAGAIN;
  }
  fail_later(s, "writev", -errno);
  return -errno;
}

static void handshake_begin(ioa_stream *s);

/* The transport's goodbye (close_notify) before a half-close or a close.
 * Returns 0 when it is out (or none is needed), -EAGAIN while it waits for
 * the socket, another code if it failed. */
static int transport_goodbye(ioa_stream *s) {
  if (!s->tr || s->hs != HS_DONE || s->tr_shut_done)
    return 0;
  unsigned want = 0;
  int r = s->tr->ops->shutdown(s->tr, &want);
  if (r == -EAGAIN) {
    block_write(s, want);
    return r;
  }
  s->tr_shut_done = 1;
  return r;
}

static int flush(ioa_stream *s) {
  if (s->hs == HS_RUNNING || s->hs == HS_FAILED)
    return 0; /* held until the handshake is over; the handshake owns the fd */
  int had_data = !ioa__list_empty(&s->wq);
  while (!ioa__list_empty(&s->wq) && !s->closed) {
    if (s->hs == HS_PLAIN && s->plain_left == 0)
      break;
    struct iovec iov[STREAM_IOV_MAX];
    int n = 0;
    size_t total = 0;
    /* Before a handshake only the bytes queued ahead of it go out. */
    size_t limit = s->hs == HS_PLAIN ? s->plain_left : SIZE_MAX;
    IOA__LIST_FOREACH(node, &s->wq) {
      segment *seg = SEG(node);
      if (n == STREAM_IOV_MAX || total == limit)
        break;
      if (seg->len == seg->off)
        continue;
      iov[n].iov_base = (void *)(uintptr_t)(seg->base + seg->off);
      iov[n].iov_len = seg->len - seg->off;
      if (iov[n].iov_len > limit - total)
        iov[n].iov_len = limit - total;
      total += iov[n].iov_len;
      n++;
    }
    ssize_t w = 0;
    if (n > 0) {
      w = write_some(s, iov, n);
      if (w < 0)
        return 0;
      if (s->hs == HS_PLAIN)
        s->plain_left -= (size_t)w;
    }
    /* Consume what was written; release finished segments (zero-length
     * zero-copy segments included). */
    size_t left = (size_t)w;
    s->queued -= left;
    for (ioa__list *node; (node = ioa__list_first(&s->wq));) {
      segment *seg = SEG(node);
      size_t avail = seg->len - seg->off;
      if (left < avail) {
        seg->off += left;
        break;
      }
      left -= avail;
      ioa__list_remove(node);
      if (segment_release(s, seg))
        return 1;
      if (s->closed)
        return 0;
    }
    if (s->above_high && s->queued <= s->low_water) {
      s->above_high = 0;
      if (s->pending & PEND_HIGH) {
        /* Never told about high water: no low water either. */
        s->pending &= ~(unsigned)PEND_HIGH;
      } else if (call_event(s, s->cbs.on_low_water)) {
        return 1;
      } else {
        if (s->closed)
          return 0;
      }
    }
    if ((size_t)w < total) {
      /* Partial write: the socket buffer is full; wait for the watcher. */
      block_write(s, IOA_WRITE);
      return 0;
    }
  }
  if (s->closed)
    return 0;
  if (s->hs == HS_PLAIN) {
    if (s->plain_left > 0)
      return 0;
    /* The plaintext ahead of the handshake is out: the rest waits for it. */
    if (s->write_blocked) {
      s->write_blocked = 0;
      s->wr_want = 0;
    }
    handshake_begin(s);
    return 0;
  }
  if (s->tr && s->hs == HS_DONE) {
    /* Bytes the transport gathered are on the wire before "drained". */
    unsigned want = 0;
    int r = s->tr->ops->flush(s->tr, &want);
    if (r == -EAGAIN) {
      block_write(s, want ? want : IOA_WRITE);
      return 0;
    }
    if (r < 0) {
      fail_later(s, s->tr->err_syscall, r);
      return 0;
    }
  }
  if (s->write_blocked) {
    s->write_blocked = 0;
    s->wr_want = 0;
    update_io(s);
  }
  if (had_data && s->cbs.on_drain) {
    if (call_event(s, s->cbs.on_drain))
      return 1;
    if (s->closed || !ioa__list_empty(&s->wq))
      return 0; /* more was written: the tick flushes it */
  }
  trim_spares(s, 0); /* idle: give the chunk cache back */
  if (s->shut_requested && !s->shut_done) {
    int r = transport_goodbye(s);
    if (r == -EAGAIN)
      return 0;
    if (r < 0) {
      fail_later(s, s->tr->err_syscall, r);
      return 0;
    }
    s->shut_done = 1;
    if (ioa__sys_shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
      fail_later(s, "shutdown", -errno);
      return 0;
    }
  }
  if (s->close_requested) {
    /* A failed goodbye does not stop the close (the peer may be gone). */
    if (transport_goodbye(s) == -EAGAIN)
      return 0;
    close_fd(s);
    schedule(s, PEND_CLOSED);
  }
  return 0;
}

/* ------------------------------------------------------------ reading */

/* Make room for read_size bytes after rend: compact first, grow only if
 * compaction is not enough.  Returns 0 or -ENOMEM. */
static int reserve_read(ioa_stream *s) {
  if (s->rcap - s->rend >= s->read_size)
    return 0;
  if (s->rstart > 0) {
    size_t live = s->rend - s->rstart;
    memmove(s->rbuf, s->rbuf + s->rstart, live);
    s->rstart = 0;
    s->rend = live;
    if (s->rcap - s->rend >= s->read_size)
      return 0;
  }
  size_t need = s->rend + s->read_size;
  if (need < s->rend)
    return -ENOMEM;
  size_t cap = s->rcap ? s->rcap : s->read_size;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  uint8_t *nb = ioa__realloc(s->rbuf, cap);
  if (!nb)
    return -ENOMEM;
  s->rbuf = nb;
  s->rcap = cap;
  return 0;
}

/* Offer buffered bytes to on_read, again and again while it consumes some
 * and bytes remain.  With eof, on_read runs at least once.  Returns non-zero
 * if the stream was freed. */
static int deliver(ioa_stream *s, int eof) {
  int first = 1;
  while (!s->closed && !s->read_paused && s->cbs.on_read) {
    size_t len = s->rend - s->rstart;
    if (len == 0 && !(eof && first))
      break;
    first = 0;
    cb_enter(s);
    s->delivering = 1;
    size_t used = s->cbs.on_read(s, s->rbuf ? s->rbuf + s->rstart : (const uint8_t *)"", len,
                                 eof, s->data);
    s->delivering = 0;
    if (cb_leave(s))
      return 1; /* freed: stream_destroy releases rbuf */
    if (s->closed) {
      release_rbuf(s); /* closed from on_read: kept until it returned */
      return 0;
    }
    if (used > len)
      used = len;
    s->rstart += used;
    if (s->rstart == s->rend)
      s->rstart = s->rend = 0;
    if (used == 0)
      break;
  }
  if (eof && !first && !s->read_paused && !s->closed) {
    s->eof_delivered = 1;
    s->rstart = s->rend = 0; /* what EOF left unconsumed can never complete */
    if (!s->keep_open_on_eof)
      ioa_stream_close_when_empty(s);
  }
  return 0;
}

/* One read into buf: bytes, 0 at EOF, -EAGAIN, or another failure
 * (already reported). */
static ssize_t read_some(ioa_stream *s, void *buf, size_t room) {
  ssize_t n;
  if (s->tr) {
    unsigned want = 0;
    n = s->tr->ops->read(s->tr, buf, room, &want);
    if (n == -EAGAIN) {
      unsigned w = want == IOA_WRITE ? IOA_WRITE : 0;
      if (w != s->rd_want) {
        s->rd_want = w;
        update_io(s);
      }
    } else if (n < 0) {
      fail_later(s, s->tr->err_syscall, (int)n);
    } else if (s->rd_want) {
      s->rd_want = 0;
      update_io(s);
    }
    /* Reading may have produced bytes to send (a TLS key update). */
    if (!s->closed && !s->write_blocked && (s->tr->ops->pending(s->tr) & IOA__TR_OUT))
      schedule(s, PEND_FLUSH);
    return n;
  }
  do
    n = ioa__sys_read(s->fd, buf, room);
  while (n < 0 && errno == EINTR);
  if (n >= 0)
    return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return -EAGAIN;
  fail_later(s, "read", -errno);
  return -errno;
}

static int do_read(ioa_stream *s) {
  /* A TLS record is at most 16 KiB: a transport gets more turns per event. */
  int turns = s->tr ? 4 * STREAM_READS_PER_EVENT : STREAM_READS_PER_EVENT;
  for (int i = 0; i < turns && want_read(s); i++) {
    int r = reserve_read(s);
    if (r < 0) {
      fail_later(s, "read", r);
      return 0;
    }
    size_t room = s->rcap - s->rend;
    if (room > s->read_size)
      room = s->read_size;
    ssize_t n = read_some(s, s->rbuf + s->rend, room);
    if (n < 0)
      return 0;
    if (n == 0) {
      s->eof_seen = 1;
      update_io(s);
      return deliver(s, 1);
    }
    s->rend += (size_t)n;
    if (deliver(s, 0))
      return 1;
    if (!s->tr && (size_t)n < room)
      break; /* drained what the kernel had */
  }
  /* Out of turns with bytes inside the transport: come back soon, after
   * the loop's other fds had theirs. */
  if (want_read(s) && tr_pending(s))
    schedule(s, PEND_READ);
  update_io(s);
  return 0;
}

void ioa_stream_pause_read(ioa_stream *s) {
  if (s->read_paused)
    return;
  s->read_paused = 1;
  cb_enter(s);
  update_io(s);
  outer_leave(s);
}

void ioa_stream_resume_read(ioa_stream *s) {
  if (!s->read_paused)
    return;
  s->read_paused = 0;
  if (s->closed)
    return;
  if (s->rend > s->rstart || (s->eof_seen && !s->eof_delivered))
    schedule(s, PEND_REOFFER);
  if (tr_pending(s))
    schedule(s, PEND_READ);
  cb_enter(s);
  update_io(s);
  outer_leave(s);
}

/* ------------------------------------------------------------ dispatch */

/* Report a pending socket error that neither read nor write will surface. */
static void take_socket_error(ioa_stream *s) {
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (ioa__sys_getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
    soerr = errno == ENOTSOCK ? EPIPE : errno;
  fail_later(s, "getsockopt", soerr ? -soerr : -EPIPE);
}

static int handshake_step(ioa_stream *s);

static void on_io(ioa_stream *s, unsigned revents) {
  if (s->hs == HS_RUNNING) {
    (void)handshake_step(s);
    return;
  }
  if (want_read(s)) {
    if (ready_for(s->rd_want ? s->rd_want : IOA_READ, revents) && do_read(s))
      return;
  } else if ((revents & IOA_ERROR) && !s->write_blocked && !s->closed) {
    take_socket_error(s);
  }
  if (s->closed)
    return;
  if (s->write_blocked && ready_for(s->wr_want ? s->wr_want : IOA_WRITE, revents))
    (void)flush(s);
}

/* Entry points from the loop and the API hold the object across the work:
 * a free inside (even from a zero-copy free callback reached through an
 * error path) then only marks it, and the memory goes on the way out. */
static void stream_io_cb(ioa_io *io, unsigned revents, void *data) {
  ioa_stream *s = data;
  (void)io;
  cb_enter(s);
  on_io(s, revents);
  outer_leave(s);
}

static int call_event(ioa_stream *s, ioa_stream_event_cb cb) {
  if (!cb)
    return 0;
  cb_enter(s);
  cb(s, s->data);
  return cb_leave(s);
}

/* Work found pending when the tick starts; anything a callback queues here
 * re-arms the defer for the next iteration, so a writer that refills the
 * queue from on_drain cannot starve other fds. */
static void on_tick(ioa_stream *s) {
  unsigned p = s->pending;
  s->pending = 0;
  /* High water before the flush, so on_low_water never precedes it. */
  if ((p & PEND_HIGH) && !s->closed && s->above_high) {
    if (call_event(s, s->cbs.on_high_water))
      return;
  }
  if ((p & PEND_FLUSH) && !s->closed && !s->write_blocked) {
    if (flush(s))
      return;
  }
  if ((p & PEND_HANDSHAKE) && !s->closed && s->hs == HS_RUNNING) {
    if (handshake_step(s))
      return;
  }
  if ((p & PEND_REOFFER) && !s->closed && !s->read_paused) {
    if (deliver(s, s->eof_seen && !s->eof_delivered))
      return;
    update_io(s);
  }
  if ((p & PEND_READ) && want_read(s)) {
    if (do_read(s))
      return;
  }
  if ((p & PEND_HS_CANCEL) && s->hs_cb) {
    ioa__stream_handshake_cb cb = s->hs_cb;
    s->hs_cb = NULL;
    cb_enter(s);
    /* An I/O error before the handshake (the plaintext ahead of it) is
     * the reason; otherwise the stream's owner closed it. */
    int err = s->error_reported ? s->err : -ECANCELED;
    cb(s, err,
       s->error_reported ? ioa_strerror(err) : "the stream was closed during the TLS handshake",
       s->hs_data);
    if (cb_leave(s))
      return;
  }
  if (p & PEND_DISCARD) {
    if (discard_queue(s))
      return;
  }
  if (p & PEND_ERROR) {
    if (s->cbs.on_error) {
      cb_enter(s);
      s->cbs.on_error(s, s->err_syscall, s->err, s->data);
      if (cb_leave(s))
        return;
    } else {
      ioa_loop_warn(s->loop, "ioa_stream: %s: %s (no on_error callback)", s->err_syscall,
                    ioa_strerror(s->err));
    }
  }
  if (p & PEND_CLOSED)
    (void)call_event(s, s->cbs.on_closed);
}

static void stream_tick_cb(ioa_defer *d, void *data) {
  ioa_stream *s = data;
  (void)d;
  cb_enter(s);
  on_tick(s);
  outer_leave(s);
}

/* ------------------------------------------------------------ transports */

/* The plaintext ahead of it is out: the handshake starts, from the tick
 * (never inside the call that asked for it). */
static void handshake_begin(ioa_stream *s) {
  s->hs = HS_RUNNING;
  s->hs_want = 0;
  update_io(s); /* nothing until the first step says what it waits for */
  schedule(s, PEND_HANDSHAKE);
}

/* Run the handshake as far as the socket lets it.  Returns non-zero if the
 * stream was freed by the callback. */
static int handshake_step(ioa_stream *s) {
  unsigned want = 0;
  int r = s->tr->ops->handshake(s->tr, &want);
  if (r == -EAGAIN) {
    s->hs_want = want == IOA_WRITE ? IOA_WRITE : IOA_READ;
    update_io(s);
    return 0;
  }
  s->hs_want = 0;
  const char *msg = NULL;
  if (r == 0) {
    s->hs = HS_DONE;
    update_io(s);
    if (!ioa__list_empty(&s->wq) || s->shut_requested || s->close_requested)
      schedule(s, PEND_FLUSH);
    if (want_read(s) && tr_pending(s))
      schedule(s, PEND_READ);
  } else {
    /* The fd stays open for the owner (a connect reports it with the
     * failure); nothing more is read or written. */
    s->hs = HS_FAILED;
    s->write_failed = 1;
    s->write_blocked = 0;
    ioa_io_stop(&s->io);
    msg = s->tr->err_message;
  }
  ioa__stream_handshake_cb cb = s->hs_cb;
  s->hs_cb = NULL;
  if (!cb)
    return 0;
  cb_enter(s);
  cb(s, r, msg, s->hs_data);
  return cb_leave(s);
}

int ioa__stream_start_transport(ioa_stream *s, ioa__transport *t, ioa__stream_handshake_cb cb,
                                void *data) {
  if (!t || s->tr || s->closed || s->write_failed || s->shut_requested || s->close_requested ||
      s->eof_seen || freed(s))
    return IOA_EBADPARAM;
  if (s->rend > s->rstart)
    return IOA_ETLSPROTO;
  s->tr = t;
  s->hs_cb = cb;
  s->hs_data = data;
  s->rd_want = 0;
  s->plain_left = s->queued;
  cb_enter(s);
  if (s->plain_left > 0) {
    s->hs = HS_PLAIN; /* flush() starts the handshake once they are out */
    update_io(s);     /* stop reading plaintext */
    if (!s->write_blocked)
      schedule(s, PEND_FLUSH);
  } else {
    handshake_begin(s);
  }
  outer_leave(s);
  return 0;
}

void ioa__stream_detach_handshake(ioa_stream *s) {
  s->hs_cb = NULL;
  s->pending &= ~(unsigned)PEND_HS_CANCEL;
}

ioa__transport *ioa__stream_transport(const ioa_stream *s) { return s->tr; }
int ioa__stream_established(const ioa_stream *s) { return s->hs == HS_DONE; }
int ioa__stream_freed(const ioa_stream *s) { return freed(s); }

void ioa__stream_release_fd(ioa_stream *s) {
  ioa_io_stop(&s->io);
  s->fd = -1;
}
