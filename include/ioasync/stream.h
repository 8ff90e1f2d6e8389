/* SPDX-License-Identifier: MIT */
/* ioasync — buffered non-blocking byte streams (IO::Async::Stream's role).
 *
 * Wraps any connected stream fd (TCP, unix stream, a pipe).  The connector's
 * on_stream callback hands one over.  See ioa_stream(3).
 *
 * Reading: on_read gets every buffered byte and an EOF flag and returns how
 * many it consumed.  Unconsumed bytes stay buffered and are offered again,
 * with more data, when more arrives (or at EOF, or on resume).  While it
 * keeps consuming something and bytes remain, on_read is called again at
 * once, so a callback may consume one message per call.
 *
 * Writing: writes are queued and flushed with writev (sendmsg with
 * MSG_NOSIGNAL: a closed peer gives EPIPE, never SIGPIPE) when the current
 * loop iteration ends, so many small writes made in one callback become one
 * syscall.  Small copied writes are coalesced into shared chunks; zero-copy
 * writes reference the caller's memory until their free callback runs.
 *
 * Callbacks never run from inside the ioa_stream_* call that caused them
 * (they are deferred to the loop), and any callback may free the stream.
 * Errors close the stream: on_error once (with the failing syscall's name),
 * then on_closed.  on_closed runs exactly once per stream unless the stream
 * is freed first (ioa_stream_free suppresses every later callback).
 */
#ifndef IOASYNC_STREAM_H
#define IOASYNC_STREAM_H

#include "common.h"
#include "loop.h"

IOA_BEGIN_DECLS

typedef struct ioa_stream ioa_stream;

/* Bytes available (buf, len) and whether EOF has been seen.  Return how many
 * bytes were consumed; the rest stay buffered and are offered again with more
 * data (IO::Async's on_read contract).  A return larger than len counts as
 * len.  At EOF the callback runs at least once with eof = 1 (len may be 0);
 * bytes it leaves then are discarded. */
typedef size_t (*ioa_stream_read_cb)(ioa_stream *s, const uint8_t *buf, size_t len, int eof,
                                     void *data);
/* A syscall failed: syscall is "read", "writev", "shutdown", "epoll_ctl" or
 * "getsockopt" (a pending socket error seen while neither reading nor
 * writing); err is a negative errno (e.g. -ECONNRESET, -EPIPE) or -ENOMEM.
 * Reported once; the stream is closed and on_closed follows. */
typedef void (*ioa_stream_error_cb)(ioa_stream *s, const char *syscall, int err, void *data);
typedef void (*ioa_stream_event_cb)(ioa_stream *s, void *data);

typedef struct ioa_stream_callbacks {
  size_t struct_size; /* set by ioa_stream_callbacks_init() */
  ioa_stream_read_cb on_read;
  ioa_stream_error_cb on_error;
  ioa_stream_event_cb on_drain;      /* write queue became empty */
  ioa_stream_event_cb on_high_water; /* queued bytes reached high water: back off */
  ioa_stream_event_cb on_low_water;  /* fell back to low water: resume writing */
  ioa_stream_event_cb on_closed;     /* exactly once, after the fd is closed */
} ioa_stream_callbacks;

IOA_EXPORT void ioa_stream_callbacks_init_size(ioa_stream_callbacks *c, size_t size);
static inline void ioa_stream_callbacks_init(ioa_stream_callbacks *c) {
  ioa_stream_callbacks_init_size(c, sizeof *c);
}

typedef struct ioa_stream_options {
  size_t struct_size; /* set by ioa_stream_options_init() */
  size_t read_size;  /* bytes per read(); 0 = 64 KiB; at most 64 MiB */
  size_t high_water; /* 0 = 1 MiB */
  size_t low_water;  /* 0 = high_water / 4; must be below high_water */
  /* 0 (default, as IO::Async's close_on_read_eof): once EOF has been offered
   * to on_read, the stream closes when its write queue is empty.  Non-zero:
   * stay open for writing after EOF (the peer half-closed) until the caller
   * closes it. */
  int keep_open_on_eof;
} ioa_stream_options;

IOA_EXPORT void ioa_stream_options_init_size(ioa_stream_options *o, size_t size);
static inline void ioa_stream_options_init(ioa_stream_options *o) {
  ioa_stream_options_init_size(o, sizeof *o);
}

/* Take ownership of fd (made non-blocking and close-on-exec here).  opts may
 * be NULL.  Reading starts when callbacks with on_read are set.  Returns 0,
 * IOA_EBADPARAM (fd < 0, loop or out NULL, bad options), -ENOMEM, or fcntl's
 * error.  On failure the fd is NOT closed (still the caller's). */
IOA_EXPORT int ioa_stream_new(ioa_loop *loop, int fd, const ioa_stream_options *opts,
                              ioa_stream **out);
/* Replace the callbacks (cbs may be NULL: none).  Safe from callbacks.
 * Returns 0, or IOA_EBADPARAM (cbs not initialised by its _init: nothing
 * changes). */
IOA_EXPORT int ioa_stream_set_callbacks(ioa_stream *s, const ioa_stream_callbacks *cbs,
                                        void *data);
/* The fd, or -1 once closed. */
IOA_EXPORT int ioa_stream_fd(const ioa_stream *s);
IOA_EXPORT ioa_loop *ioa_stream_loop(const ioa_stream *s);

/* Copying write, queued.  Returns 0, -EBADF once closed, -EPIPE after
 * shutdown_write, close_when_empty or an error, or -ENOMEM.  len 0 is a
 * no-op.  Never calls a callback; high water is reported deferred. */
IOA_EXPORT int ioa_stream_write(ioa_stream *s, const void *buf, size_t len);
/* Zero-copy write: buf stays the caller's until free_cb(buf, free_data) runs
 * (after it is written, or from the loop after the stream closes, before
 * on_closed — at the latest inside ioa_stream_free).  free_cb may be NULL.  On a non-zero return
 * free_cb is not called and buf is still the caller's. */
IOA_EXPORT int ioa_stream_write_zc(ioa_stream *s, const void *buf, size_t len,
                                   void (*free_cb)(void *buf, void *free_data), void *free_data);
/* Bytes queued and not yet written. */
IOA_EXPORT size_t ioa_stream_queued(const ioa_stream *s);

/* Stop offering data (nothing more is read from the fd).  From inside
 * on_read it takes effect at once: on_read is not called again. */
IOA_EXPORT void ioa_stream_pause_read(ioa_stream *s);
/* Resume reading; bytes still buffered (and a pending EOF) are offered again
 * soon, deferred. */
IOA_EXPORT void ioa_stream_resume_read(ioa_stream *s);
/* Half-close: shutdown(SHUT_WR) once queued data is written; keep reading.
 * Returns 0 (also if already requested) or -EBADF once closed. */
IOA_EXPORT int ioa_stream_shutdown_write(ioa_stream *s);
/* Close once the write queue is empty (IO::Async's close_when_empty).
 * Reading continues until then. */
IOA_EXPORT void ioa_stream_close_when_empty(ioa_stream *s);
/* Close now, discarding queued writes; on_closed runs later (deferred). */
IOA_EXPORT void ioa_stream_close(ioa_stream *s);
/* Close if open and free.  Safe from inside any of the stream's callbacks;
 * no callback runs afterwards except the free callbacks of zero-copy writes
 * still queued, which run before this returns. */
IOA_EXPORT void ioa_stream_free(ioa_stream *s);

IOA_END_DECLS

#endif
