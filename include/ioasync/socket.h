/* ioasync — datagram and raw sockets (IO::Async::Socket's role).
 *
 * Wraps a datagram, raw or seqpacket fd, connected or not.  The connector's
 * on_socket callback hands one over.  See ioa_socket(3).
 */
#ifndef IOASYNC_SOCKET_H
#define IOASYNC_SOCKET_H

#include "addr.h"
#include "common.h"
#include "loop.h"

IOA_BEGIN_DECLS

typedef struct ioa_socket ioa_socket;

/* One packet; from is the sender (may be NULL for connected sockets where the
 * kernel gives none). */
typedef void (*ioa_socket_recv_cb)(ioa_socket *s, const uint8_t *buf, size_t len,
                                   const ioa_addr *from, void *data);
/* syscall: "recvmsg", "recvmmsg", "sendmsg", "sendmmsg"; err negative errno
 * (e.g. -ECONNREFUSED from ICMP on a connected UDP socket).  The socket stays
 * open unless the callback closes it. */
typedef void (*ioa_socket_error_cb)(ioa_socket *s, const char *syscall, int err, void *data);
typedef void (*ioa_socket_event_cb)(ioa_socket *s, void *data);

typedef struct ioa_socket_callbacks {
  ioa_socket_recv_cb on_recv;
  ioa_socket_error_cb on_error;
  ioa_socket_event_cb on_drain;  /* send queue became empty */
  ioa_socket_event_cb on_closed; /* exactly once */
} ioa_socket_callbacks;

typedef struct ioa_socket_options {
  size_t max_packet; /* receive buffer per packet; 0 = 65536 */
  unsigned batch;    /* packets per recvmmsg/sendmmsg; 0 = 16; 1 disables batching */
} ioa_socket_options;

/* Take ownership of fd.  On failure the fd is NOT closed. */
IOA_EXPORT int ioa_socket_new(ioa_loop *loop, int fd, const ioa_socket_options *opts,
                              ioa_socket **out);
IOA_EXPORT void ioa_socket_set_callbacks(ioa_socket *s, const ioa_socket_callbacks *cbs,
                                         void *data);
IOA_EXPORT int ioa_socket_fd(const ioa_socket *s);
/* Send to the connected peer (to == NULL) or to an address.  Copies buf. */
IOA_EXPORT int ioa_socket_send(ioa_socket *s, const void *buf, size_t len, const ioa_addr *to);
IOA_EXPORT void ioa_socket_pause_recv(ioa_socket *s);
IOA_EXPORT void ioa_socket_resume_recv(ioa_socket *s);
IOA_EXPORT void ioa_socket_close(ioa_socket *s);
/* Close if open and free; safe from inside any callback. */
IOA_EXPORT void ioa_socket_free(ioa_socket *s);

IOA_END_DECLS

#endif
