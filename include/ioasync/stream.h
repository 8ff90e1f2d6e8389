/* ioasync — buffered non-blocking byte streams (IO::Async::Stream's role).
 *
 * Wraps any connected stream fd (TCP, unix stream).  The connector's
 * on_stream callback hands one over.  See ioa_stream(3).
 */
#ifndef IOASYNC_STREAM_H
#define IOASYNC_STREAM_H

#include "common.h"
#include "loop.h"

IOA_BEGIN_DECLS

typedef struct ioa_stream ioa_stream;

/* Bytes available (buf, len) and whether EOF has been seen.  Return how many
 * bytes were consumed; the rest stay buffered and are offered again with more
 * data (IO::Async's on_read contract). */
typedef size_t (*ioa_stream_read_cb)(ioa_stream *s, const uint8_t *buf, size_t len, int eof,
                                     void *data);
/* A read or write failed: syscall is "read", "write" or "writev"; err is a
 * negative errno (e.g. -ECONNRESET, -EPIPE).  Reported once. */
typedef void (*ioa_stream_error_cb)(ioa_stream *s, const char *syscall, int err, void *data);
typedef void (*ioa_stream_event_cb)(ioa_stream *s, void *data);

typedef struct ioa_stream_callbacks {
  ioa_stream_read_cb on_read;
  ioa_stream_error_cb on_error;
  ioa_stream_event_cb on_drain;      /* write queue became empty */
  ioa_stream_event_cb on_high_water; /* queued bytes reached high water: back off */
  ioa_stream_event_cb on_low_water;  /* fell back to low water: resume writing */
  ioa_stream_event_cb on_closed;     /* exactly once, after the fd is closed */
} ioa_stream_callbacks;

typedef struct ioa_stream_options {
  size_t read_size;  /* bytes per read(); 0 = 64 KiB */
  size_t high_water; /* 0 = 1 MiB */
  size_t low_water;  /* 0 = high_water / 4 */
} ioa_stream_options;

/* Take ownership of fd (made non-blocking and close-on-exec here).  opts may
 * be NULL.  Reading starts when callbacks with on_read are set.  On failure
 * the fd is NOT closed (still the caller's). */
IOA_EXPORT int ioa_stream_new(ioa_loop *loop, int fd, const ioa_stream_options *opts,
                              ioa_stream **out);
IOA_EXPORT void ioa_stream_set_callbacks(ioa_stream *s, const ioa_stream_callbacks *cbs,
                                         void *data);
IOA_EXPORT int ioa_stream_fd(const ioa_stream *s);

/* Copying write.  Returns 0 or a negative code (-EPIPE after shutdown). */
IOA_EXPORT int ioa_stream_write(ioa_stream *s, const void *buf, size_t len);
/* Zero-copy write: buf stays the caller's until free_cb(buf, free_data) runs
 * (after it is written, or when the stream closes). */
IOA_EXPORT int ioa_stream_write_zc(ioa_stream *s, const void *buf, size_t len,
                                   void (*free_cb)(void *buf, void *free_data), void *free_data);
IOA_EXPORT size_t ioa_stream_queued(const ioa_stream *s);

IOA_EXPORT void ioa_stream_pause_read(ioa_stream *s);
IOA_EXPORT void ioa_stream_resume_read(ioa_stream *s);
/* Half-close: shutdown(SHUT_WR) once queued data is written; keep reading. */
IOA_EXPORT int ioa_stream_shutdown_write(ioa_stream *s);
/* Close once the write queue is empty (IO::Async's close_when_empty). */
IOA_EXPORT void ioa_stream_close_when_empty(ioa_stream *s);
/* Close now, discarding queued writes; on_closed runs later (deferred). */
IOA_EXPORT void ioa_stream_close(ioa_stream *s);
/* Close if open and free.  Safe from inside any of the stream's callbacks;
 * no callback runs afterwards. */
IOA_EXPORT void ioa_stream_free(ioa_stream *s);

IOA_END_DECLS

#endif
