/* SPDX-License-Identifier: MIT */
/* What other modules (the connector, TLS) need of streams and sockets. */
#ifndef IOA_STREAM_INTERNAL_H
#define IOA_STREAM_INTERNAL_H

#include <sys/types.h>
#include <sys/uio.h>

#include "ioasync/socket.h"
#include "ioasync/stream.h"

/* Check caller options and fill out with every default applied, so that a
 * later ioa_stream_new(out) / ioa_socket_new(out) cannot refuse them.
 * opts may be NULL.  Returns 0 or IOA_EBADPARAM. */
int ioa__stream_options_resolve(const ioa_stream_options *opts, ioa_stream_options *out);
int ioa__socket_options_resolve(const ioa_socket_options *opts, ioa_socket_options *out);

/* ---- transports: what a stream reads and writes through ----
 *
 * A stream without one uses its fd's read/writev/shutdown.  With one (TLS),
 * every byte goes through the transport's operations, so stream.c keeps one
 * code path: buffering, the on_read contract, back-pressure and closing are
 * the same.  Each operation returns >= 0 or a negative code; -EAGAIN means
 * "not now", and *want then says which readiness lets it go on (IOA_READ or
 * IOA_WRITE: a TLS read may have to write, and a write to read).  On any
 * other failure the transport sets err_syscall (the name on_error gets:
 * "read", "write", "tls") and err_message (the specific reason). */
typedef struct ioa__transport ioa__transport;
typedef struct ioa__transport_ops {
  /* 0: established. */
  int (*handshake)(ioa__transport *t, unsigned *want);
  /* Bytes read; 0 is a clean EOF (TLS: close_notify received). */
  ssize_t (*read)(ioa__transport *t, void *buf, size_t n, unsigned *want);
  /* Bytes written from the front of iov; less than all only when the
   * next byte would block (then the rest is offered again later, unchanged
   * at the front). */
  ssize_t (*writev)(ioa__transport *t, const struct iovec *iov, int iovcnt, unsigned *want);
  /* Say goodbye (TLS: send close_notify).  0: sent. */
  int (*shutdown)(ioa__transport *t, unsigned *want);
  /* Send what the transport holds back (TLS gathers records into one
   * syscall).  0: nothing left. */
  int (*flush)(ioa__transport *t, unsigned *want);
  /* IOA__TR_IN: read has bytes without the fd becoming readable;
   * IOA__TR_OUT: flush has bytes to send (a read may produce some). */
  unsigned (*pending)(const ioa__transport *t);
  void (*free)(ioa__transport *t);
} ioa__transport_ops;

enum { IOA__TR_IN = 1u << 0, IOA__TR_OUT = 1u << 1 };

struct ioa__transport {
  const ioa__transport_ops *ops;
  const char *err_syscall;
  const char *err_message;
};

/* The handshake ended: err 0 (established) or < 0 with a message.  Runs
 * exactly once per ioa__stream_start_transport, deferred, unless detached;
 * also when the stream is closed (-ECANCELED) or freed meanwhile (then from
 * inside ioa_stream_free, with ioa__stream_freed(s) true: only unwind).
 * After a failure the stream reads and writes nothing more but keeps its fd
 * open: its owner closes or frees it. */
typedef void (*ioa__stream_handshake_cb)(ioa_stream *s, int err, const char *message, void *data);

/* Put t under s (s owns it from then on) and run its handshake: bytes
 * queued before this go out first through the fd itself (STARTTLS), bytes
 * written later are held until the handshake is over; nothing is read for
 * on_read meanwhile.  Returns 0, or IOA_EBADPARAM (s closed, shut down for
 * writing, or already has a transport) or IOA_ETLSPROTO (unread plaintext
 * buffered: it could only be an injection); then t is still the caller's. */
int ioa__stream_start_transport(ioa_stream *s, ioa__transport *t, ioa__stream_handshake_cb cb,
                                void *data);
/* The callback will not run (the owner is about to close or free s). */
void ioa__stream_detach_handshake(ioa_stream *s);
/* The transport (NULL if none) and whether its handshake is complete. */
ioa__transport *ioa__stream_transport(const ioa_stream *s);
int ioa__stream_established(const ioa_stream *s);
/* Forget the fd without closing it (it goes back to whoever gave it). */
void ioa__stream_release_fd(ioa_stream *s);
/* Non-zero while ioa_stream_free is tearing s down. */
int ioa__stream_freed(const ioa_stream *s);

#endif
