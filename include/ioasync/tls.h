/* SPDX-License-Identifier: MIT */
/* ioasync — TLS on streams (IO::Async::SSL's role), through OpenSSL 3.
 *
 * A configuration object (ioa_tls_config) is built once — trust store,
 * client certificate, ALPN, minimum version, session cache — and shared by
 * any number of connections, on any number of loops and threads.  Two ways
 * to use it:
 *
 *  - ioa_connect() with params.tls set (IO::Async::SSL's SSL_connect): the
 *    connector races TCP as usual, the winner's TLS handshake follows, and
 *    on_stream receives an ioa_stream that reads and writes plaintext with
 *    the same stream API as any other.  See ioa_connect(3).
 *  - ioa_tls_upgrade_stream() on a connected stream (SSL_upgrade, STARTTLS): after
 *    some plaintext exchange, the same stream continues encrypted.
 *
 * Verification is on by default: the peer's chain against the system trust
 * store (or the given CA file/directory, loaded once when the config is
 * built: nothing blocks per connection), and its name against the host
 * connected to (or an explicit server name); an IP address is checked
 * against the certificate's IP SANs and sends no SNI.  Turning it off is a
 * field called insecure_skip_verify.
 *
 * After the handshake, a TLS stream behaves as any stream: on_read's
 * contract, queued writes, back-pressure; close_when_empty and
 * shutdown_write send close_notify first (ioa_stream_close, an abrupt close,
 * does not: the peer must not mistake discarded data for a clean end).  A
 * received close_notify is EOF; a TCP EOF without it is an error
 * ("tls", IOA_ETLSEOF: the data may have been truncated).  TLS errors after
 * the handshake reach on_error with the syscall name "tls" and an IOA_ETLS*
 * code; ioa_tls_stream_error() gives the reason.  No TLS write raises
 * SIGPIPE.  See ioa_tls(3).
 */
#ifndef IOASYNC_TLS_H
#define IOASYNC_TLS_H

#include "common.h"
#include "error.h"
#include "loop.h"
#include "stream.h"

IOA_BEGIN_DECLS

typedef struct ioa_tls_config ioa_tls_config;
typedef struct ioa_tls_upgrade ioa_tls_upgrade;

/* Non-zero if this library was built with TLS (OpenSSL).  Without it every
 * function below fails with IOA_ENOTLS, and so does a connect with tls set.
 * Thread-safe. */
IOA_EXPORT int ioa_tls_available(void);

/* Protocol versions, as on the wire. */
#define IOA_TLS_VERSION_1_2 0x0303
#define IOA_TLS_VERSION_1_3 0x0304

typedef struct ioa_tls_options {
  size_t struct_size; /* set by ioa_tls_options_init() */
  /* Trust store.  Both NULL (default): the system's (OpenSSL's default CA
   * file, SSL_CERT_FILE overrides it; else its default directory).  Given:
   * only these.  A directory's certificates are all read when the config is
   * built, so no verification reads a file later. */
  const char *ca_file; /* PEM file with one or more CA certificates */
  const char *ca_path; /* directory of PEM files (each with CA certificates) */
  /* Client certificate (chain, PEM) and its private key (PEM); both or
   * neither. */
  const char *cert_file;
  const char *key_file;
  /* ALPN protocols offered, in preference order, comma-separated
   * ("h2,http/1.1"); each 1..255 bytes.  NULL = no ALPN. */
  const char *alpn;
  /* Lowest version accepted: IOA_TLS_VERSION_1_2 (0 = this) or _1_3.
   * max_version: 0 = the highest the library knows; otherwise one of the
   * two and not below min_version. */
  int min_version;
  int max_version;
  /* Sessions kept for resumption (TLS 1.3 tickets, TLS 1.2 sessions), one
   * per server name and port, the least recently used dropped first.
   * 0 = 256; disable_session_cache = 1: no resumption at all. */
  unsigned session_cache_size;
  int disable_session_cache;
  /* Append the session secrets, NSS key log format (what SSLKEYLOGFILE
   * means to curl and browsers), to this file, for a packet analyser.  Off
   * (NULL) by default; anyone who reads the file can decrypt the traffic.
   * Written from the loop thread (a local file, one line per secret). */
  const char *keylog_file;
  /* Non-zero: accept any certificate and any name (no verification at
   * all).  For tests against self-signed servers; never in production. */
  int insecure_skip_verify;
} ioa_tls_options;

IOA_EXPORT void ioa_tls_options_init_size(ioa_tls_options *o, size_t size);
static inline void ioa_tls_options_init(ioa_tls_options *o) {
  ioa_tls_options_init_size(o, sizeof *o);
}

/* Build a configuration (reference count 1).  opts may be NULL (system
 * trust store, verification on, TLS 1.2+, no ALPN, no client certificate).
 * Every file is read here.  Returns 0, IOA_EBADPARAM (out NULL, a bad
 * field: versions, ALPN syntax, cert_file without key_file...),
 * IOA_ETLSCONFIG (a file that cannot be read or used; err->message says
 * which and why: "ca_file /x.pem: No such file or directory", "key_file
 * does not match cert_file"), -ENOMEM, or IOA_ENOTLS.  err may be NULL. */
IOA_EXPORT int ioa_tls_config_new(const ioa_tls_options *opts, ioa_tls_config **out,
                                  ioa_errinfo *err);
/* Reference counting; both thread-safe.  A connect or stream using a config
 * holds its own reference, so it may be released right after use.  ref
 * returns c. */
IOA_EXPORT ioa_tls_config *ioa_tls_config_ref(ioa_tls_config *c);
IOA_EXPORT void ioa_tls_config_unref(ioa_tls_config *c);
/* Forget every cached session (the next connects do full handshakes).
 * Thread-safe. */
IOA_EXPORT void ioa_tls_config_flush_sessions(ioa_tls_config *c);

/* What the handshake established.  Fill struct_size with
 * ioa_tls_info_init(); the library writes only what that size holds.
 * Strings belong to the stream and live as long as it does. */
typedef struct ioa_tls_info {
  size_t struct_size;
  const char *version;        /* "TLSv1.3" */
  const char *cipher;         /* "TLS_AES_128_GCM_SHA256" */
  const char *alpn;           /* the protocol the server chose; NULL if none */
  int resumed;                /* a cached session was resumed */
  int verified;               /* chain and name verified (0 only when insecure) */
  long verify_result;         /* X509_V_OK (0) or X509's code */
  const char *verify_message; /* "ok", or X509's reason when insecure let it pass */
  const char *server_name;    /* the name checked (and sent as SNI unless an IP) */
  const char *peer_subject;   /* the peer certificate's subject, RFC 2253; NULL if none */
  const char *peer_issuer;    /* its issuer */
  const char *const *peer_sans; /* its subject alternative names: "DNS:localhost",
                                   "IP:127.0.0.1", "IP:::1", "email:...", "URI:..." */
  size_t npeer_sans;
} ioa_tls_info;

IOA_EXPORT void ioa_tls_info_init_size(ioa_tls_info *i, size_t size);
static inline void ioa_tls_info_init(ioa_tls_info *i) { ioa_tls_info_init_size(i, sizeof *i); }

/* Non-zero if s runs TLS (established or handshaking). */
IOA_EXPORT int ioa_tls_stream_is_tls(const ioa_stream *s);
/* Fill info for a TLS stream whose handshake completed.  Returns 0, or
 * IOA_EBADPARAM (not a TLS stream, handshake not complete, info NULL or
 * struct_size 0). */
IOA_EXPORT int ioa_tls_stream_info(const ioa_stream *s, ioa_tls_info *info);
/* The reason of the last TLS failure on s ("certificate has expired",
 * "sslv3 alert handshake failure", ...), or NULL if none. */
IOA_EXPORT const char *ioa_tls_stream_error(const ioa_stream *s);

/* ---- STARTTLS: upgrade a connected stream ---- */

/* The handshake finished: err 0 and s encrypted from now on; or err < 0
 * ("message" says why, never NULL then) and s closed (its on_closed
 * follows; free it as usual).  For ioa_tls_upgrade_fd, s is the new stream
 * on success and NULL on failure (the fd was closed).  Exactly once per
 * started upgrade, never from inside ioa_tls_upgrade_stream() / _fd(); u is invalid after
 * it returns. */
typedef void (*ioa_tls_done_cb)(ioa_tls_upgrade *u, ioa_stream *s, int err, const char *message,
                                void *data);

typedef struct ioa_tls_upgrade_params {
  size_t struct_size; /* set by ioa_tls_upgrade_params_init() */
  ioa_tls_config *config; /* required; referenced for the stream's life */
  /* Name to verify and send as SNI.  NULL: the peer's IP address (checked
   * against IP SANs; no SNI); a unix-socket peer then needs a name or
   * insecure_skip_verify. */
  const char *server_name;
  unsigned timeout_ms; /* 0 = none; else on_done(-ETIMEDOUT) */
  ioa_tls_done_cb on_done; /* required */
  void *data;
} ioa_tls_upgrade_params;

IOA_EXPORT void ioa_tls_upgrade_params_init_size(ioa_tls_upgrade_params *p, size_t size);
static inline void ioa_tls_upgrade_params_init(ioa_tls_upgrade_params *p) {
  ioa_tls_upgrade_params_init_size(p, sizeof *p);
}

/* Start TLS on a connected stream after a plaintext exchange.  Bytes
 * written before this call go out in plaintext first; bytes written after it
 * are held and sent encrypted once the handshake completes.  No on_read runs
 * until then.  Returns 0 (*out, if non-NULL, valid until on_done returns)
 * or, with nothing started and s untouched: IOA_EBADPARAM (a bad
 * parameter; s already TLS, closed or shut down for writing), IOA_ETLSPROTO
 * (plaintext bytes already buffered unread on s: after STARTTLS they could
 * only be an injection), -ENOMEM, IOA_ENOTLS. */
IOA_EXPORT int ioa_tls_upgrade_stream(ioa_stream *s, const ioa_tls_upgrade_params *p,
                                      ioa_tls_upgrade **out);
/* The same on a connected fd (taken, as by ioa_stream_new, with opts for
 * the stream; on a non-zero return it is still the caller's). */
IOA_EXPORT int ioa_tls_upgrade_fd(ioa_loop *loop, int fd, const ioa_stream_options *opts,
                                  const ioa_tls_upgrade_params *p, ioa_tls_upgrade **out);
/* Cancel: on_done(-ECANCELED) runs before this returns, in any handshake
 * state; the stream is closed (the _fd variant's is freed).  From inside
 * on_done it does nothing. */
IOA_EXPORT void ioa_tls_upgrade_cancel(ioa_tls_upgrade *u);

IOA_END_DECLS

#endif
