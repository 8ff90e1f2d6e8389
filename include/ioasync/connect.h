/* SPDX-License-Identifier: MIT */
/* ioasync — non-blocking socket connections (IO::Async::Connector in C).
 *
 * Two modes, as in IO::Async:
 *  - plain address mode: addrs/naddrs (a list, tried in turn) or one address;
 *  - resolving mode: host + service, resolved asynchronously (getaddrinfo hints
 *    family/socktype/protocol/flags) into that list.
 * Optional local addresses (or local_host/local_service) are bound first.
 * Candidates are the cross product, local-major: (L1,P1) (L1,P2) (L2,P1)
 * (L2,P2), skipping pairs whose family differs or whose socktype or protocol
 * differ (0 matches any).  No candidate at all completes with
 * IOA_ENOCANDIDATES (IO::Async silently "succeeds" there).
 *
 * Socket types: a peer address with socktype 0 takes the socktype hint, else
 * SOCK_STREAM (IO::Async makes it a stream socket).  on_stream means
 * SOCK_STREAM: with no socktype hint (or 0) lookups ask for stream sockets,
 * and candidates of another socktype are never tried; on_socket never tries
 * stream candidates (ioa_socket takes datagram, raw and seqpacket sockets).
 *
 * Callbacks (each gets the params' data pointer):
 *  - on_fail: each individual socket/bind/connect failure, as IO::Async does.
 *  - exactly one completion: on_connected (fd) / on_stream / on_socket on
 *    success; on_connect_error (most significant error: connect > bind >
 *    socket) after every candidate failed, on timeout, or on cancel
 *    (-ECANCELED); on_resolve_error if resolution failed.
 *  - never called from inside ioa_connect(); any callback may cancel the
 *    request or stop/free the loop's other objects.
 *
 * Beyond IO::Async: Happy Eyeballs v2 racing (RFC 8305), per-attempt and
 * overall timeouts, cancellation at any moment, every attempt's failure kept,
 * a socket-option hook.  See ioa_connect(3).
 *
 * Racing (RFC 8305): families alternate, the first family's
 * first_family_count addresses first; the next attempt starts after the
 * connection attempt delay, or at once when one fails.  The delay is
 * attempt_delay_ms when given; otherwise, for a destination whose
 * round-trip time is known (an ioa_rtt_cache fed by earlier racing
 * connections, per /24 or /64 prefix), clamp(2 x RTT, 100 ms, 2 s); else
 * 250 ms.  At most 16 attempts are in flight (with TLS, an attempt whose
 * handshake runs is one of them): when the next one is due with 16 in
 * flight, the oldest still connecting is abandoned (on_fail "connect" with
 * IOA_EABANDONED; if every one is handshaking, the oldest handshake: on_fail
 * "tls"), so every address gets its turn.
 */
#ifndef IOASYNC_CONNECT_H
#define IOASYNC_CONNECT_H

#include <limits.h>

#include "addr.h"
#include "common.h"
#include "loop.h"
#include "resolve.h"
#include "socket.h"
#include "stream.h"
#include "tls.h"

IOA_BEGIN_DECLS

typedef struct ioa_connect_req ioa_connect_req;

/* "Not given" for the socktype and protocol hints; an explicit 0 means "no
 * particular socktype" and, as in IO::Async, silences the missing-hint warning. */
#define IOA_HINT_UNSET INT_MIN

typedef enum ioa_syscall {
  IOA_SYSCALL_NONE = 0, /* cancel, overall timeout, no candidates */
  IOA_SYSCALL_SOCKET,
  IOA_SYSCALL_BIND,
  IOA_SYSCALL_CONNECT,
  IOA_SYSCALL_SOCKOPT, /* the sockopt hook vetoed the attempt */
  IOA_SYSCALL_TLS,     /* the TLS handshake after the connect (params.tls) */
} ioa_syscall;

/* "socket", "bind", "connect", "setsockopt", "tls", or "none". */
IOA_EXPORT const char *ioa_syscall_name(ioa_syscall s);

typedef enum ioa_connect_mode {
  IOA_CONNECT_AUTO = 0,   /* race for host+service, in turn for address lists */
  IOA_CONNECT_SEQUENTIAL, /* one attempt at a time, list order (IO::Async) */
  IOA_CONNECT_RACE,       /* Happy Eyeballs v2: families interleaved, next attempt after
                             the attempt delay or at once on a failure, <= 16 in flight
                             (the oldest abandoned for the next) */
} ioa_connect_mode;

/* Attempts in flight at most when racing. */
#define IOA_CONNECT_MAX_INFLIGHT 16

/* Whether racing requests learn their attempt delay from round-trip times. */
typedef enum ioa_learned_delay {
  IOA_LEARNED_DELAY_ON = 0, /* look each destination's RTT up, and feed the cache with the
                               RTT (TCP_INFO) of each connection won (the default) */
  IOA_LEARNED_DELAY_OFF,    /* neither: attempt_delay_ms, else 250 ms */
} ioa_learned_delay;

/* Round-trip times per destination prefix (/24 for IPv4, /64 for IPv6),
 * for the learned attempt delay.  Bounded (max_entries, 4-way set
 * associative: a new prefix replaces the oldest of its set), entries expire
 * ttl_ms after their last sample, samples smoothed as TCP's SRTT (gain
 * 1/4).  Every ioa_rtt_cache_* function is thread-safe: one cache can serve
 * loops on several threads.  Each loop has its own, made on first use by a
 * racing connect (ioa_rtt_cache_default) and freed by ioa_loop_free; a
 * cache made with ioa_rtt_cache_new and named in the params can serve
 * several loops. */
typedef struct ioa_rtt_cache ioa_rtt_cache;

typedef struct ioa_rtt_cache_options {
  size_t struct_size; /* set by ioa_rtt_cache_options_init() */
  unsigned max_entries; /* prefixes kept; 0 = 256; at most 65536 (rounded up to a power of 2) */
  unsigned ttl_ms;      /* how long a prefix's RTT is used after its last sample;
                           0 = 600000 (10 minutes) */
} ioa_rtt_cache_options;

IOA_EXPORT void ioa_rtt_cache_options_init_size(ioa_rtt_cache_options *o, size_t size);
static inline void ioa_rtt_cache_options_init(ioa_rtt_cache_options *o) {
  ioa_rtt_cache_options_init_size(o, sizeof *o);
}
/* opts may be NULL (defaults).  0, IOA_EBADPARAM or -ENOMEM. */
IOA_EXPORT int ioa_rtt_cache_new(const ioa_rtt_cache_options *opts, ioa_rtt_cache **out);
/* No request may use it any more.  Never free a loop's default cache (its
 * loop does). */
IOA_EXPORT void ioa_rtt_cache_free(ioa_rtt_cache *c);
/* The loop's own cache, made on first use; 0, IOA_EBADPARAM or -ENOMEM.
 * Call it on the loop's thread. */
IOA_EXPORT int ioa_rtt_cache_default(ioa_loop *loop, ioa_rtt_cache **out);
/* Forget every RTT (after a network change, say). */
IOA_EXPORT void ioa_rtt_cache_clear(ioa_rtt_cache *c);
/* Add one RTT sample for peer's prefix (from a connection of your own).
 * 0, or IOA_EBADPARAM (no cache, not an inet/inet6 address, rtt_us 0). */
IOA_EXPORT int ioa_rtt_cache_note(ioa_rtt_cache *c, const ioa_addr *peer, uint32_t rtt_us);
/* What a racing connect would use for peer: 1 if its prefix has a live RTT
 * (*rtt_us; *delay_ms = clamp(2 x RTT, 100, 2000)), 0 if not (*rtt_us 0,
 * *delay_ms 250), IOA_EBADPARAM (no cache, not inet/inet6).  Either output
 * pointer may be NULL. */
IOA_EXPORT int ioa_rtt_cache_lookup(ioa_rtt_cache *c, const ioa_addr *peer, uint32_t *rtt_us,
                                    unsigned *delay_ms);

/* One failed attempt step.  IO::Async's on_fail arguments map to:
 *   ("socket", family, socktype, protocol, err)
 *   ("bind",   fd, local,  err)
 *   ("connect", fd, peer,  err)   (ETIMEDOUT for a per-attempt timeout)
 * With TLS, ("tls", fd, peer, err): the handshake failed (an IOA_ETLS* code,
 * a socket's errno such as -ECONNRESET, or -ETIMEDOUT), message says why. */
typedef struct ioa_attempt_failure {
  ioa_syscall syscall;
  int err; /* negative errno */
  int fd;  /* -1 for socket failures; otherwise open during on_fail, closed after */
  int family, socktype, protocol;
  const ioa_addr *peer;  /* the address being connected to */
  const ioa_addr *local; /* the local address bound (NULL if none) */
  uint64_t start_ns, end_ns; /* ioa_loop_now() times */
  /* What went wrong, never NULL: strerror's text, or for "tls" the reason
   * ("certificate has expired (server name \"x\")", "received alert
   * \"handshake failure\" ..."). */
  const char *message;
} ioa_attempt_failure;

typedef void (*ioa_connect_fail_cb)(ioa_connect_req *req, const ioa_attempt_failure *f,
                                    void *data);
/* fd is connected, non-blocking, close-on-exec and now the callee's; peer is
 * the address connected to (valid during the call). */
typedef void (*ioa_connected_cb)(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data);
/* The same, wrapped: the stream (or socket) is the callee's, made with the
 * params' stream_options (socket_options). */
typedef void (*ioa_connect_stream_cb)(ioa_connect_req *req, ioa_stream *stream,
                                      const ioa_addr *peer, void *data);
typedef void (*ioa_connect_socket_cb)(ioa_connect_req *req, ioa_socket *sock,
                                      const ioa_addr *peer, void *data);
/* No connection: syscall is the step of the most significant failure, or
 * IOA_SYSCALL_NONE (cancel, overall timeout, no candidates, a wrapper that
 * could not be made, a resolver error without on_resolve_error). */
typedef void (*ioa_connect_error_cb)(ioa_connect_req *req, ioa_syscall syscall, int err,
                                     void *data);
/* The lookup failed: err is the resolver's code, message its own text. */
typedef void (*ioa_connect_resolve_error_cb)(ioa_connect_req *req, int err, const char *message,
                                             void *data);
/* Tracing hooks (optional).  on_resolved gets each batch of new addresses
 * as the resolver delivers it (with c-ares, one family's answers may come
 * first); on_attempt runs as each attempt starts, before socket(). */
typedef void (*ioa_connect_resolved_cb)(ioa_connect_req *req, const ioa_addr *addrs,
                                        size_t naddrs, int is_local, void *data);
typedef void (*ioa_connect_attempt_cb)(ioa_connect_req *req, const ioa_addr *peer,
                                       const ioa_addr *local, void *data);
/* Called with each new socket before bind and connect; return 0 to go on or a
 * negative code to veto (reported as an IOA_SYSCALL_SOCKOPT failure). */
typedef int (*ioa_connect_sockopt_cb)(ioa_connect_req *req, int fd, const ioa_addr *peer,
                                      const ioa_addr *local, void *data);

typedef struct ioa_connect_params {
  size_t struct_size; /* set by ioa_connect_params_init() */
  /* plain address mode: addrs[0..naddrs) in turn, or one addr (IO::Async's
   * "addr" shortcut; used when addrs is NULL).  Copied by ioa_connect().
   * Each must be as ioa_addr(3) builds them (see ioa_connect below). */
  const ioa_addr *addrs;
  size_t naddrs;
  const ioa_addr *addr;
  /* resolving mode (used when host or service is set; addrs are then ignored) */
  const char *host;
  const char *service;
  /* local side: addresses, or a host/service to resolve */
  const ioa_addr *local_addrs;
  size_t nlocal;
  const ioa_addr *local_addr; /* one local address (used when local_addrs is NULL) */
  const char *local_host;
  const char *local_service;
  /* getaddrinfo hints (checked in plain address mode too) */
  int family;                /* AF_UNSPEC (0) by default; or AF_INET, AF_INET6, AF_UNIX */
  int socktype;              /* IOA_HINT_UNSET by default, else 0..15; also the socktype
                                of a socktype-0 peer address */
  const char *socktype_name; /* "stream", "dgram", "raw" or a number; overrides socktype */
  int protocol;              /* IOA_HINT_UNSET by default, else 0..255 */
  int flags;                 /* AI_* */
  ioa_resolver *resolver;    /* NULL = the loop's default (ioa_resolver_default) */

  ioa_connect_mode mode;
  unsigned attempt_delay_ms;    /* Happy Eyeballs; 0 = learned (see above), else 250;
                                   valid 10..2000; given, it always wins */
  unsigned resolution_delay_ms; /* wait for AAAA after A; 0 = 50; max 2000 */
  unsigned attempt_timeout_ms;  /* 0 = none; a timeout is on_fail "connect" ETIMEDOUT */
  unsigned timeout_ms;          /* overall, resolution included; 0 = none */

  /* exactly one of on_connected / on_stream / on_socket */
  ioa_connected_cb on_connected;
  ioa_connect_stream_cb on_stream;
  ioa_connect_socket_cb on_socket;
  ioa_connect_error_cb on_connect_error;
  ioa_connect_resolve_error_cb on_resolve_error; /* NULL: reported via on_connect_error */
  ioa_connect_fail_cb on_fail;                   /* optional */
  ioa_connect_resolved_cb on_resolved;           /* optional */
  ioa_connect_attempt_cb on_attempt;             /* optional */
  ioa_connect_sockopt_cb on_sockopt;             /* optional */
  /* Warnings (missing socktype/protocol hint for a lookup; connecting to
   * 0.0.0.0 or ::), called with data; NULL = the loop's warning hook, and
   * with none there either they are printed on stderr, as IO::Async warns.
   * To silence them: pass ioa_warn_discard here or to the loop, or (for the
   * hint warning) give socktype 0 or use on_stream.  The hint warning and a
   * plain address's are issued inside ioa_connect(). */
  ioa_warn_cb on_warning;
  void *data;
  /* Options for the ioa_stream handed to on_stream / the ioa_socket handed
   * to on_socket (read size, high and low water, ...); NULL = defaults.
   * Checked by ioa_connect() (IOA_EBADPARAM if invalid, or given for another
   * completion callback than the one they serve), copied, so they need not
   * outlive the call. */
  const ioa_stream_options *stream_options;
  const ioa_socket_options *socket_options;
  /* Racing only (ignored otherwise): */
  unsigned first_family_count; /* RFC 8305 section 4: addresses of the first family
                                  tried before the other family's first; 0 = 1; <= 255 */
  ioa_learned_delay learned_delay; /* IOA_LEARNED_DELAY_ON (default) or _OFF */
  ioa_rtt_cache *rtt_cache; /* NULL = the loop's (ioa_rtt_cache_default); must outlive the request */
  /* TLS (ioa_tls(3), IO::Async::SSL's SSL_connect): non-NULL = each
   * connected attempt runs a TLS handshake with this configuration before it
   * can win, and on_stream gets a TLS stream (on_connected and on_socket are
   * refused: IOA_EBADPARAM).  A verification, protocol or alert failure ends
   * the request at once ("tls" ranks above "connect"); a reset, EOF or
   * attempt timeout during the handshake moves on to the next address.  The
   * request holds its own reference. */
  ioa_tls_config *tls;
  /* The name to verify and send as SNI; NULL = host, or in address mode each
   * peer's IP address (checked against the certificate's IP SANs; a unix
   * socket then needs a name, or insecure_skip_verify). */
  const char *tls_server_name;
  /* Tracing hook: an attempt connected and its TLS handshake begins. */
  ioa_connect_attempt_cb on_handshake;
} ioa_connect_params;

/* Fill p with defaults (hints unset, AUTO mode, no callbacks).  Every
 * ioa_connect_params must be initialised by it before use. */
IOA_EXPORT void ioa_connect_params_init_size(ioa_connect_params *p, size_t size);
static inline void ioa_connect_params_init(ioa_connect_params *p) {
  ioa_connect_params_init_size(p, sizeof *p);
}

/* Start a connection.  Returns 0 (and *out, if non-NULL, a handle valid until
 * the completion callback returns) or a negative code for input refused
 * before any work begins; then no callback runs:
 *  - IOA_EBADPARAM: a params problem — not exactly one success callback, no
 *    on_connect_error, no address and no host, a mode or delay out of range,
 *    invalid stream/socket options or options for the other callback,
 *    on_stream with a socktype hint other than stream (or only non-stream
 *    addresses), on_socket with a stream socktype (or only stream addresses);
 *  - an address (peer or local, every one given) or hint that ioa_addr(3)
 *    would refuse, with its code: IOA_EADDRSOCKTYPE (socktype outside 0..15,
 *    unknown socktype word), IOA_EADDRPROTOCOL (protocol outside 0..255),
 *    IOA_EADDRFAMILY (family not inet, inet6 or unix), IOA_EADDRSYNTAX (an
 *    address length that does not fit its family, or a sockaddr of another
 *    family);
 *  - -E2BIG (more than 32767 addresses or candidates), -ENOMEM.
 * ioa_err_is_input() is true for all but the last line.  Failures that are
 * part of the work — none of the candidates usable, every address refused
 * at once — are reported through the callbacks, later. */
IOA_EXPORT int ioa_connect(ioa_loop *loop, const ioa_connect_params *p, ioa_connect_req **out);

/* Cancel: closes every fd, stops resolution and timers, and runs
 * on_connect_error(req, IOA_SYSCALL_NONE, -ECANCELED) before returning, in
 * any state (resolving, between attempts, several attempts in flight,
 * connected but not yet reported).  No on_fail follows a cancel.  From any
 * of the request's callbacks; from inside the completion callback it does
 * nothing.  The handle is invalid once the completion callback returned. */
IOA_EXPORT void ioa_connect_cancel(ioa_connect_req *req);

/* Every failure so far, in order (valid until the completion callback
 * returns). */
IOA_EXPORT size_t ioa_connect_failures(const ioa_connect_req *req,
                                       const ioa_attempt_failure **out);

IOA_END_DECLS

#endif
