/* SPDX-License-Identifier: MIT */
/* ioasync — datagram and raw sockets (IO::Async::Socket's role).
 *
 * Wraps a datagram, raw or seqpacket fd, connected or not.  The connector's
 * on_socket callback hands one over.  See ioa_socket(3).
 *
 * Receiving uses recvmmsg (batch packets per syscall) and delivers each packet
 * with its sender.  Sends are copied into a queue and flushed with sendmmsg
 * when the current loop iteration ends, so packets sent together from one
 * callback share a syscall.  A packet is never truncated: one larger than
 * max_packet is dropped and reported as -EMSGSIZE.
 *
 * On a SOCK_SEQPACKET socket an empty read is the peer's EOF: the socket
 * closes (on_closed follows).
 *
 * Errors do not close the socket: on_error reports them (e.g. -ECONNREFUSED
 * that ICMP left on a connected UDP socket) and the socket carries on.
 * Callbacks never run from inside the ioa_socket_* call that caused them, and
 * any callback may close or free the socket.
 */
#ifndef IOASYNC_SOCKET_H
#define IOASYNC_SOCKET_H

#include "addr.h"
#include "common.h"
#include "loop.h"

IOA_BEGIN_DECLS

typedef struct ioa_socket ioa_socket;

/* One packet; from is the sender (NULL when the kernel gives none, e.g. an
 * unnamed unix peer).  from->socktype and ->protocol are the socket's. */
typedef void (*ioa_socket_recv_cb)(ioa_socket *s, const uint8_t *buf, size_t len,
                                   const ioa_addr *from, void *data);
/* syscall: "recvmsg", "recvmmsg", "sendmsg", "sendmmsg", "getsockopt" (a
 * pending error seen while not receiving) or "epoll_ctl"; err negative errno
 * (e.g. -ECONNREFUSED from ICMP on a connected UDP socket, -EMSGSIZE for a
 * packet too big to receive or send).  A send error drops the packet that
 * met it.  The socket stays open unless the callback closes it.  -ENOMEM for
 * the receive buffers also pauses receiving (ioa_socket_resume_recv retries). */
typedef void (*ioa_socket_error_cb)(ioa_socket *s, const char *syscall, int err, void *data);
typedef void (*ioa_socket_event_cb)(ioa_socket *s, void *data);

typedef struct ioa_socket_callbacks {
  size_t struct_size; /* set by ioa_socket_callbacks_init() */
  ioa_socket_recv_cb on_recv;
  ioa_socket_error_cb on_error;
  ioa_socket_event_cb on_drain;  /* send queue became empty */
  ioa_socket_event_cb on_closed; /* exactly once, after the fd is closed */
} ioa_socket_callbacks;

IOA_EXPORT void ioa_socket_callbacks_init_size(ioa_socket_callbacks *c, size_t size);
static inline void ioa_socket_callbacks_init(ioa_socket_callbacks *c) {
  ioa_socket_callbacks_init_size(c, sizeof *c);
}

typedef struct ioa_socket_options {
  size_t struct_size; /* set by ioa_socket_options_init() */
  size_t max_packet; /* receive buffer per packet; 0 = 65536; at most 16 MiB */
  unsigned batch;    /* packets per recvmmsg/sendmmsg; 0 = 16; 1 disables
                        batching (recvmsg/sendmsg); at most 1024.  Receive
                        memory is batch * max_packet, allocated on first use. */
} ioa_socket_options;

IOA_EXPORT void ioa_socket_options_init_size(ioa_socket_options *o, size_t size);
static inline void ioa_socket_options_init(ioa_socket_options *o) {
  ioa_socket_options_init_size(o, sizeof *o);
}

/* Take ownership of fd (made non-blocking and close-on-exec).  opts may be
 * NULL.  Receiving starts when callbacks with on_recv are set.  Returns 0,
 * IOA_EBADPARAM (fd < 0, loop or out NULL, bad options, or a SOCK_STREAM
 * socket: use ioa_stream), -ENOTSOCK, -ENOMEM.  On failure the fd is NOT
 * closed. */
IOA_EXPORT int ioa_socket_new(ioa_loop *loop, int fd, const ioa_socket_options *opts,
                              ioa_socket **out);
/* Replace the callbacks (cbs may be NULL).  Safe from callbacks.  Returns
 * 0, or IOA_EBADPARAM (cbs not initialised by its _init: nothing changes). */
IOA_EXPORT int ioa_socket_set_callbacks(ioa_socket *s, const ioa_socket_callbacks *cbs,
                                        void *data);
/* The fd, or -1 once closed. */
IOA_EXPORT int ioa_socket_fd(const ioa_socket *s);
IOA_EXPORT ioa_loop *ioa_socket_loop(const ioa_socket *s);
/* Queue one packet to the connected peer (to == NULL) or to an address (its
 * addr/addrlen are used).  Copies buf; len 0 sends an empty datagram.
 * Returns 0, -EBADF once closed, IOA_EBADPARAM (bad to, or buf NULL with
 * len > 0), or -ENOMEM.  Send errors
 * come later through on_error. */
IOA_EXPORT int ioa_socket_send(ioa_socket *s, const void *buf, size_t len, const ioa_addr *to);
/* Packets queued and not yet sent. */
IOA_EXPORT size_t ioa_socket_queued(const ioa_socket *s);
IOA_EXPORT void ioa_socket_pause_recv(ioa_socket *s);
IOA_EXPORT void ioa_socket_resume_recv(ioa_socket *s);
/* Close now, dropping queued packets; on_closed runs later (deferred). */
IOA_EXPORT void ioa_socket_close(ioa_socket *s);
/* Close if open and free; safe from inside any callback; no callback runs
 * afterwards. */
IOA_EXPORT void ioa_socket_free(ioa_socket *s);

IOA_END_DECLS

#endif
