/* SPDX-License-Identifier: MIT */
/* Datagram and raw sockets.
 *
 * Receive: batch buffers of max_packet bytes, filled by one recvmmsg per
 * round (or recvmsg when batch is 1).  Send: a FIFO of copied packets, each
 * with its optional destination, flushed by sendmmsg from a deferred tick and
 * then from the write watcher while the kernel pushes back.
 *
 * Re-entrancy: guard.h, as in stream.c.  Callbacks run between enter and
 * leave, the loop entry points hold a level, and a free inside a callback is
 * finished by the entry point's outer_leave.
 */
#include "ioasync/socket.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "ioasync/error.h"

#include "abi.h"
#include "alloc.h"
#include "guard.h"
#include "list.h"
#include "stream_internal.h"
#include "sys.h"

#define SOCKET_DEFAULT_MAX_PACKET 65536u
#define SOCKET_MAX_MAX_PACKET (16u * 1024u * 1024u)
#define SOCKET_DEFAULT_BATCH 16u
#define SOCKET_MAX_BATCH 1024u
/* recvmmsg rounds per readiness event: fairness towards other fds. */
#define SOCKET_RECV_ROUNDS 4

typedef struct packet {
  ioa__list node; /* in the send queue */
  size_t len;
  socklen_t tolen; /* 0: connected peer */
  struct sockaddr_storage to;
  uint8_t data[];
} packet;

enum {
  PEND_FLUSH = 1u << 0,
  PEND_ERROR = 1u << 1,
  PEND_CLOSED = 1u << 2,
};

struct ioa_socket {
  ioa_loop *loop;
  int fd;
  int socktype, protocol;
  ioa_io io;
  ioa_defer tick;
  unsigned pending;

  ioa_socket_callbacks cbs;
  void *data;

  size_t max_packet;
  unsigned batch;
  uint8_t *rbufs;
  struct iovec *riov;
  struct mmsghdr *rmsgs;
  struct sockaddr_storage *rnames;
  int recv_paused;

  ioa__list sq; /* packets to send, oldest first */
  size_t squeued;
  int write_blocked;

  int closed;
  int err;
  const char *err_syscall;
  ioa__guard guard;
};

#define PKT(n) IOA__CONTAINER_OF(n, packet, node)

static void socket_io_cb(ioa_io *io, unsigned revents, void *data);
static void socket_tick_cb(ioa_defer *d, void *data);

static void socket_destroy(ioa_socket *s) {
  ioa__free(s->rbufs);
  ioa__free(s->riov);
  ioa__free(s->rmsgs);
  ioa__free(s->rnames);
  ioa__free(s);
}

static void cb_enter(ioa_socket *s) { ioa__guard_enter(&s->guard); }
/* Non-zero if the socket was freed meanwhile: unwind, touch nothing. */
static int cb_leave(ioa_socket *s) { return ioa__guard_leave(&s->guard); }
static void outer_leave(ioa_socket *s) {
  if (ioa__guard_leave_last(&s->guard))
    socket_destroy(s);
}

static int want_recv(const ioa_socket *s) {
  return s->cbs.on_recv && !s->recv_paused && !s->closed;
}

static void update_io(ioa_socket *s);

/* Report an error from loop context (callbacks allowed).  Returns non-zero if
 * the socket was freed. */
static int report(ioa_socket *s, const char *syscall, int err) {
  if (!s->cbs.on_error) {
    ioa_loop_warn(s->loop, "ioa_socket: %s: %s (no on_error callback)", syscall,
                  ioa_strerror(err));
    return 0;
  }
  cb_enter(s);
  s->cbs.on_error(s, syscall, err, s->data);
  return cb_leave(s);
}

static void update_io(ioa_socket *s) {
  if (s->closed)
    return;
  unsigned ev = 0;
  if (want_recv(s))
    ev |= IOA_READ;
  if (s->write_blocked)
    ev |= IOA_WRITE;
  int r = ioa_io_start(&s->io, ev);
  if (r < 0 && !(s->pending & PEND_ERROR)) {
    /* Called from API functions too: report later. */
    s->err = r;
    s->err_syscall = "epoll_ctl";
    s->pending |= PEND_ERROR;
    ioa_defer_start(&s->tick);
  }
}

static void drop_queue(ioa_socket *s) {
  IOA__LIST_FOREACH_SAFE(n, &s->sq) {
    ioa__list_remove(n);
    ioa__free(PKT(n));
  }
  s->squeued = 0;
}

void ioa_socket_options_init_size(ioa_socket_options *o, size_t size) {
  static const ioa_socket_options defaults = {.struct_size = sizeof defaults};
  IOA__INIT(o, size, &defaults);
}

void ioa_socket_callbacks_init_size(ioa_socket_callbacks *c, size_t size) {
  static const ioa_socket_callbacks defaults = {.struct_size = sizeof defaults};
  IOA__INIT(c, size, &defaults);
}

int ioa__socket_options_resolve(const ioa_socket_options *opts, ioa_socket_options *out) {
  ioa_socket_options o;
  ioa_socket_options_init(&o);
  if (opts && IOA__IMPORT(&o, opts) < 0)
    return IOA_EBADPARAM;
  if (!o.max_packet)
    o.max_packet = SOCKET_DEFAULT_MAX_PACKET;
  if (!o.batch)
    o.batch = SOCKET_DEFAULT_BATCH;
  if (o.max_packet > SOCKET_MAX_MAX_PACKET || o.batch > SOCKET_MAX_BATCH)
    return IOA_EBADPARAM;
  *out = o;
  return 0;
}

int ioa_socket_new(ioa_loop *loop, int fd, const ioa_socket_options *opts, ioa_socket **out) {
  if (!out)
    return IOA_EBADPARAM;
  *out = NULL;
  ioa_socket_options o;
  if (!loop || fd < 0 || ioa__socket_options_resolve(opts, &o) < 0)
    return IOA_EBADPARAM;
  size_t max_packet = o.max_packet;
  unsigned batch = o.batch;
  int type = 0, proto = 0;
  socklen_t len = sizeof type;
  if (ioa__sys_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
    return -errno;
  if (type == SOCK_STREAM)
    return IOA_EBADPARAM;
  len = sizeof proto;
  if (ioa__sys_getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
    proto = 0;
  if (ioa__sys_set_nonblock_cloexec(fd) < 0)
    return -errno;
  ioa_socket *s = ioa__calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->loop = loop;
  s->fd = fd;
  s->socktype = type;
  s->protocol = proto;
  s->max_packet = max_packet;
  s->batch = batch;
  ioa__list_init(&s->sq);
  ioa_io_init(loop, &s->io, fd, socket_io_cb, s);
  ioa_defer_init(loop, &s->tick, socket_tick_cb, s);
  *out = s;
  return 0;
}

int ioa_socket_set_callbacks(ioa_socket *s, const ioa_socket_callbacks *cbs, void *data) {
  ioa_socket_callbacks c;
  ioa_socket_callbacks_init(&c);
  if (cbs && IOA__IMPORT(&c, cbs) < 0)
    return IOA_EBADPARAM;
  s->cbs = c;
  s->data = data;
  update_io(s);
  return 0;
}

int ioa_socket_fd(const ioa_socket *s) { return s->fd; }
ioa_loop *ioa_socket_loop(const ioa_socket *s) { return s->loop; }
size_t ioa_socket_queued(const ioa_socket *s) { return s->squeued; }

void ioa_socket_pause_recv(ioa_socket *s) {
  s->recv_paused = 1;
  update_io(s);
}

void ioa_socket_resume_recv(ioa_socket *s) {
  s->recv_paused = 0;
  update_io(s);
}

static void close_fd(ioa_socket *s) {
  s->closed = 1;
  ioa_io_stop(&s->io);
  ioa__sys_close(s->fd);
  s->fd = -1;
  s->write_blocked = 0;
  s->pending &= ~(unsigned)(PEND_FLUSH | PEND_ERROR);
  drop_queue(s);
}

void ioa_socket_close(ioa_socket *s) {
  if (s->closed || ioa__guard_released(&s->guard))
    return;
  close_fd(s);
  s->pending |= PEND_CLOSED;
  ioa_defer_start(&s->tick);
}

void ioa_socket_free(ioa_socket *s) {
  if (!s || ioa__guard_released(&s->guard))
    return;
  if (!s->closed)
    close_fd(s);
  ioa_defer_stop(&s->tick);
  s->pending = 0;
  if (ioa__guard_release(&s->guard))
    socket_destroy(s); /* else the outermost entry point does */
}

/* ------------------------------------------------------------ sending */

int ioa_socket_send(ioa_socket *s, const void *buf, size_t len, const ioa_addr *to) {
  if (s->closed)
    return -EBADF;
  if (len && !buf)
    return IOA_EBADPARAM;
  if (to && (to->addrlen == 0 || to->addrlen > sizeof to->addr))
    return IOA_EBADPARAM;
  if (len > SIZE_MAX - sizeof(packet))
    return -ENOMEM;
  packet *p = ioa__malloc(sizeof(packet) + len);
  if (!p)
    return -ENOMEM;
  p->len = len;
  if (len)
    memcpy(p->data, buf, len);
  p->tolen = to ? to->addrlen : 0;
  if (to)
    memcpy(&p->to, &to->addr, to->addrlen);
  ioa__list_push_back(&s->sq, &p->node);
  s->squeued++;
  if (!s->write_blocked) {
    s->pending |= PEND_FLUSH;
    ioa_defer_start(&s->tick);
  }
  return 0;
}

static void pop_packet(ioa_socket *s) {
  ioa__list *n = ioa__list_first(&s->sq);
  ioa__list_remove(n);
  s->squeued--;
  ioa__free(PKT(n));
}

static void set_blocked(ioa_socket *s, int blocked) {
  if (s->write_blocked == blocked)
    return;
  s->write_blocked = blocked;
  update_io(s);
}

/* Returns non-zero if the socket was freed. */
static int flush(ioa_socket *s) {
  int had_data = !ioa__list_empty(&s->sq);
  while (!ioa__list_empty(&s->sq) && !s->closed) {
    struct mmsghdr msgs[64];
    struct iovec iov[64];
    unsigned cap = s->batch < 64 ? s->batch : 64;
    unsigned n = 0;
    IOA__LIST_FOREACH(node, &s->sq) {
      if (n == cap)
        break;
      packet *p = PKT(node);
      iov[n].iov_base = p->data;
      iov[n].iov_len = p->len;
      memset(&msgs[n], 0, sizeof msgs[n]);
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      if (p->tolen) {
        msgs[n].msg_hdr.msg_name = &p->to;
        msgs[n].msg_hdr.msg_namelen = p->tolen;
      }
      n++;
    }
    const char *syscall;
    int sent;
    if (n == 1) {
      syscall = "sendmsg";
      ssize_t r;
      do
        r = ioa__sys_sendmsg(s->fd, &msgs[0].msg_hdr, 0);
      while (r < 0 && errno == EINTR);
      sent = r < 0 ? -1 : 1;
    } else {
      syscall = "sendmmsg";
      do
        sent = ioa__sys_sendmmsg(s->fd, msgs, n, 0);
      while (sent < 0 && errno == EINTR);
    }
    if (sent < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) {
        set_blocked(s, 1);
        return 0;
      }
      /* The head packet met the error: drop it so the rest can go. */
      pop_packet(s);
      if (report(s, syscall, -e))
        return 1;
      continue;
    }
    for (int i = 0; i < sent; i++)
      pop_packet(s);
  }
  if (s->closed)
    return 0;
  set_blocked(s, 0);
  if (had_data && ioa__list_empty(&s->sq) && s->cbs.on_drain) {
    cb_enter(s);
    s->cbs.on_drain(s, s->data);
    if (cb_leave(s))
      return 1;
  }
  return 0;
}

/* ------------------------------------------------------------ receiving */

static int alloc_recv(ioa_socket *s) {
  if (s->rbufs)
    return 0;
  size_t n = s->batch;
  /* 1024 x 16 MiB fits 64 bits, not 32: check before multiplying. */
  if (s->max_packet > SIZE_MAX / n)
    return -ENOMEM;
  s->rbufs = ioa__malloc(n * s->max_packet);
  s->riov = ioa__calloc(n, sizeof *s->riov);
  s->rmsgs = ioa__calloc(n, sizeof *s->rmsgs);
  s->rnames = ioa__calloc(n, sizeof *s->rnames);
  if (!s->rbufs || !s->riov || !s->rmsgs || !s->rnames) {
    ioa__free(s->rbufs);
    ioa__free(s->riov);
    ioa__free(s->rmsgs);
    ioa__free(s->rnames);
    s->rbufs = NULL;
    s->riov = NULL;
    s->rmsgs = NULL;
    s->rnames = NULL;
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    s->riov[i].iov_base = s->rbufs + i * s->max_packet;
    s->riov[i].iov_len = s->max_packet;
  }
  return 0;
}

static void prepare_recv(ioa_socket *s, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    struct msghdr *mh = &s->rmsgs[i].msg_hdr;
    memset(mh, 0, sizeof *mh);
    mh->msg_name = &s->rnames[i];
    mh->msg_namelen = sizeof s->rnames[i];
    mh->msg_iov = &s->riov[i];
    mh->msg_iovlen = 1;
    s->rmsgs[i].msg_len = 0;
  }
}

/* Deliver packet i of the last receive.  Returns non-zero if freed. */
static int deliver(ioa_socket *s, unsigned i, const char *syscall) {
  struct msghdr *mh = &s->rmsgs[i].msg_hdr;
  if (mh->msg_flags & MSG_TRUNC)
    return report(s, syscall, -EMSGSIZE); /* never hand over a cut packet */
  ioa_addr from;
  const ioa_addr *fromp = NULL;
  if (mh->msg_namelen > sizeof(sa_family_t) && mh->msg_namelen <= sizeof from.addr) {
    memset(&from, 0, sizeof from);
    memcpy(&from.addr, &s->rnames[i], mh->msg_namelen);
    from.family = from.addr.ss_family;
    from.socktype = s->socktype;
    from.protocol = s->protocol;
    from.addrlen = mh->msg_namelen;
    fromp = &from;
  }
  cb_enter(s);
  s->cbs.on_recv(s, s->riov[i].iov_base, s->rmsgs[i].msg_len, fromp, s->data);
  return cb_leave(s);
}

/* Returns non-zero if the socket was freed. */
static int do_recv(ioa_socket *s) {
  int r = alloc_recv(s);
  if (r < 0) {
    /* Without buffers every readable event would fail again: pause (the
     * level-triggered fd would otherwise spin) and say so once; the caller
     * may resume once memory is available. */
    s->recv_paused = 1;
    update_io(s);
    return report(s, s->batch > 1 ? "recvmmsg" : "recvmsg", r);
  }
  for (int round = 0; round < SOCKET_RECV_ROUNDS && want_recv(s); round++) {
    unsigned want = s->batch;
    prepare_recv(s, want);
    const char *syscall;
    int got;
    if (want == 1) {
      syscall = "recvmsg";
      ssize_t n;
      do
        n = ioa__sys_recvmsg(s->fd, &s->rmsgs[0].msg_hdr, 0);
      while (n < 0 && errno == EINTR);
      if (n >= 0)
        s->rmsgs[0].msg_len = (unsigned)n;
      got = n < 0 ? -1 : 1;
    } else {
      syscall = "recvmmsg";
      do
        got = ioa__sys_recvmmsg(s->fd, s->rmsgs, want, 0);
      while (got < 0 && errno == EINTR);
    }
    if (got < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK)
        return 0;
      /* ICMP errors (ECONNREFUSED...) are consumed by this call: report and
       * go on receiving. */
      if (report(s, syscall, -e))
        return 1;
      continue;
    }
    for (int i = 0; i < got; i++) {
      if (s->socktype == SOCK_SEQPACKET && s->rmsgs[i].msg_len == 0) {
        /* End of a seqpacket connection (the peer closed): without this,
         * level-triggered polling would offer empty packets forever. */
        ioa_socket_close(s);
        return 0;
      }
      if (deliver(s, (unsigned)i, syscall))
        return 1;
      if (!want_recv(s))
        return 0; /* paused, closed or on_recv removed: later packets wait */
    }
    if ((unsigned)got < want)
      return 0;
  }
  return 0;
}

/* ------------------------------------------------------------ dispatch */

static void on_io(ioa_socket *s, unsigned revents) {
  if (revents & (IOA_READ | IOA_ERROR | IOA_HUP)) {
    if (want_recv(s)) {
      if (do_recv(s))
        return;
    } else if ((revents & IOA_ERROR) && !s->closed) {
      /* Consume the pending error, or level-triggered polling spins. */
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (ioa__sys_getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
      if (soerr && report(s, "getsockopt", -soerr))
        return;
    }
  }
  if (s->closed)
    return;
  if (s->write_blocked && (revents & (IOA_WRITE | IOA_ERROR | IOA_HUP)))
    (void)flush(s);
}

static void socket_io_cb(ioa_io *io, unsigned revents, void *data) {
  ioa_socket *s = data;
  (void)io;
  cb_enter(s);
  on_io(s, revents);
  outer_leave(s);
}

static void on_tick(ioa_socket *s) {
  unsigned p = s->pending;
  s->pending = 0;
  if ((p & PEND_ERROR) && !s->closed) {
    if (report(s, s->err_syscall, s->err))
      return;
  }
  if ((p & PEND_FLUSH) && !s->closed && !s->write_blocked) {
    if (flush(s))
      return;
  }
  if ((p & PEND_CLOSED) && s->cbs.on_closed) {
    cb_enter(s);
    s->cbs.on_closed(s, s->data);
    (void)cb_leave(s);
  }
}

static void socket_tick_cb(ioa_defer *d, void *data) {
  ioa_socket *s = data;
  (void)d;
  cb_enter(s);
  on_tick(s);
  outer_leave(s);
}
