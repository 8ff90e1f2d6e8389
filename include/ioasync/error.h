/* SPDX-License-Identifier: MIT */
/* ioasync — error codes.
 *
 * Every function that can fail returns 0 (or a non-negative count) on success
 * and a negative code on failure.  A code is either a negated errno value
 * (-ECONNREFUSED, -ENOMEM, ...) or one of the project's own codes below, all of
 * which lie at or below IOA_ERR_BASE so they never collide with errno values.
 *
 * ioa_strerror() gives a human message and ioa_err_name() the symbolic name
 * ("ECONNREFUSED", "EAI_NONAME", "IOA_EADDRSYNTAX") of any code.  Both return
 * static strings and touch no global mutable state, so they are thread-safe.
 */
#ifndef IOASYNC_ERROR_H
#define IOASYNC_ERROR_H

#include "common.h"

IOA_BEGIN_DECLS

#define IOA_ERR_BASE (-3000)

/* X-macro tables of the project's own codes: XX(NAME, offset, message).
 * Resolver codes (one per getaddrinfo EAI_* value) are spelled IOA_EAI_*;
 * ioa_strerror() gives gai_strerror()'s text for them when the C library
 * knows the value, else the message here. */
#define IOA_GAI_ERRORS(XX)                                                         \
  XX(EAI_ADDRFAMILY, 0, "Address family for hostname not supported")             \
  XX(EAI_AGAIN, 1, "Temporary failure in name resolution")                       \
  XX(EAI_BADFLAGS, 2, "Bad value for ai_flags")                                  \
  XX(EAI_FAIL, 3, "Non-recoverable failure in name resolution")                  \
  XX(EAI_FAMILY, 4, "ai_family not supported")                                   \
  XX(EAI_MEMORY, 5, "Memory allocation failure")                                 \
  XX(EAI_NODATA, 6, "No address associated with hostname")                       \
  XX(EAI_NONAME, 7, "Name or service not known")                                 \
  XX(EAI_SERVICE, 8, "Servname not supported for ai_socktype")                   \
  XX(EAI_SOCKTYPE, 9, "ai_socktype not supported")                               \
  XX(EAI_SYSTEM, 10, "System error")                                             \
  XX(EAI_OVERFLOW, 11, "Argument buffer overflow")                               \
  XX(EAI_CANCELED, 12, "Request canceled")

/* Address errors (ioa_addr(3)), one per way an address can be malformed. */
#define IOA_ADDR_ERRORS(XX)                                                        \
  XX(IOA_EADDRFAMILY, 40, "Unknown or unsupported address family")               \
  XX(IOA_EADDRSOCKTYPE, 41, "Unknown socket type")                               \
  XX(IOA_EADDRIP, 42, "Invalid IP address literal")                              \
  XX(IOA_EADDRPORT, 43, "Invalid port number")                                   \
  XX(IOA_EADDRPATHLEN, 44, "Unix socket path too long for sun_path")             \
  XX(IOA_EADDRNUL, 45, "Embedded NUL byte in address")                           \
  XX(IOA_EADDREMPTY, 46, "Empty address")                                        \
  XX(IOA_EADDRBRACKETS, 47, "IPv6 address with a port must be in brackets")      \
  XX(IOA_EADDRSCOPE, 48, "Unknown IPv6 scope (interface)")                       \
  XX(IOA_EADDRSYNTAX, 49, "Malformed address")                                   \
  XX(IOA_EADDRMISSING, 50, "Required address field missing")                     \
  XX(IOA_EADDRUNKNOWNKEY, 51, "Unrecognised address field")                      \
  XX(IOA_EADDRSERVICE, 52, "Unknown service name")                               \
  XX(IOA_EADDRDUPKEY, 53, "Address field given twice")                           \
  XX(IOA_EADDRPROTOCOL, 54, "Invalid protocol number")                           \
  XX(IOA_EADDRFLOWINFO, 55, "Invalid IPv6 flowinfo")

/* TLS errors (ioa_tls(3)), one per class of failure.  The specific reason
 * (X509's "certificate has expired", the alert's name, OpenSSL's reason
 * string) comes with them as a message: ioa_attempt_failure.message, the
 * upgrade's on_done, ioa_tls_stream_error(). */
#define IOA_TLS_ERRORS(XX)                                                         \
  XX(IOA_ETLSVERIFY, 80, "TLS peer certificate verification failed")             \
  XX(IOA_ETLSPROTO, 81, "TLS protocol error")                                    \
  XX(IOA_ETLSALERT, 82, "TLS alert received from the peer")                      \
  XX(IOA_ETLSEOF, 83, "Connection closed without TLS close_notify")              \
  XX(IOA_ETLSCONFIG, 84, "Unusable TLS configuration (CA, certificate or key)")  \
  XX(IOA_ENOTLS, 85, "TLS support is not built into this library")

#define IOA_OWN_ERRORS(XX)                                                         \
  IOA_ADDR_ERRORS(XX)                                                            \
  XX(IOA_EHOSTNAME, 60, "Invalid host name")                                     \
  XX(IOA_ENOCANDIDATES, 70, "No usable address candidates")                      \
  XX(IOA_EBADPARAM, 71, "Invalid parameter or parameter combination")            \
  XX(IOA_EABANDONED, 72, "Connection attempt abandoned for a newer one")         \
  IOA_TLS_ERRORS(XX)

enum ioa_errcode {
#define IOA_GAI_ENUM_(name, off, msg) IOA_##name = IOA_ERR_BASE - (off),
#define IOA_OWN_ENUM_(name, off, msg) name = IOA_ERR_BASE - (off),
  IOA_GAI_ERRORS(IOA_GAI_ENUM_)
  IOA_OWN_ERRORS(IOA_OWN_ENUM_)
#undef IOA_GAI_ENUM_
#undef IOA_OWN_ENUM_
  IOA_ERR_LAST_ = IOA_ERR_BASE - 99
};

/* Message for any code: project codes from the table (resolver codes use
 * gai_strerror's text), errno codes from the C library.  0 gives "Success";
 * an unknown code gives "Unknown error". Never NULL. */
IOA_EXPORT const char *ioa_strerror(int err);

/* Symbolic name: "ECONNREFUSED", "EAI_NONAME", "IOA_EADDRIP", "OK" for 0,
 * "UNKNOWN" otherwise.  Never NULL. */
IOA_EXPORT const char *ioa_err_name(int err);

/* Map a getaddrinfo()/getnameinfo() return value to an ioasync code
 * (EAI_NONAME -> IOA_EAI_NONAME, 0 -> 0). */
IOA_EXPORT int ioa_err_from_gai(int gai_error);

/* The native EAI_* value for a resolver code, or 0 if err is not one. */
IOA_EXPORT int ioa_err_to_gai(int err);

/* Non-zero if err is one of the resolver (EAI_*) codes. */
IOA_EXPORT int ioa_err_is_resolver(int err);

/* Non-zero if err is one of the TLS codes (IOA_ETLS*, IOA_ENOTLS). */
IOA_EXPORT int ioa_err_is_tls(int err);

/* Non-zero if err says the caller's input was refused before any work
 * began: IOA_EBADPARAM, any IOA_EADDR* code (a malformed address),
 * IOA_EHOSTNAME (a malformed host name) or IOA_ETLSCONFIG (a CA,
 * certificate or key file that cannot be used).  A program maps these to "usage
 * error"; every other code is something that happened. */
IOA_EXPORT int ioa_err_is_input(int err);

/* A code plus a specific message, for functions whose failures deserve more
 * than the code's generic text ("Expected 'path' for family unix"). */
typedef struct ioa_errinfo {
  int code;
  char message[192];
} ioa_errinfo;

IOA_END_DECLS

#endif
