/* SPDX-License-Identifier: MIT */
/* ioasync — address descriptions.
 *
 * The C counterpart of IO::Async::OS's extract_addrinfo: one candidate
 * address with the shape of one getaddrinfo() result.  Families inet, inet6
 * and unix (filesystem path or, on Linux, abstract name).
 *
 * Text forms (parse and format):
 *   127.0.0.1:80   [::1]:80   [fe80::1%lo]:80   unix:/path/to/sock   unix:@abstract
 *
 * Every failure returns a negative code (IOA_EADDR*) and, when the caller
 * passes an ioa_errinfo, a specific message such as
 * "Expected 'path' for family unix" or "Unrecognised 'inet' address keys: host".
 * On success the ioa_errinfo is cleared (code 0, empty message).  The output
 * ioa_addr is written only on success.
 *
 * Nothing is ever truncated: a unix path longer than sun_path holds is an
 * error (IOA_EADDRPATHLEN) naming the limit.  No function here touches the
 * network: service names come from /etc/services (getservbyname_r) and scope
 * names from the local interface table (if_nametoindex).  All functions are
 * thread-safe and keep no global state.
 */
#ifndef IOASYNC_ADDR_H
#define IOASYNC_ADDR_H

#include <sys/socket.h>

#include "common.h"
#include "error.h"

IOA_BEGIN_DECLS

typedef struct ioa_addr {
  int family;   /* AF_INET, AF_INET6, AF_UNIX */
  int socktype; /* SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET, or 0 */
  int protocol; /* 0 for the family's default */
  socklen_t addrlen;
  struct sockaddr_storage addr;
} ioa_addr;

/* Longest text ioa_addr_format() can produce, including the NUL. */
#define IOA_ADDR_STRLEN 256

/* Longest unix filesystem path (bytes, without the NUL that sun_path must
 * also hold) and longest abstract name (bytes after the '@'). */
#define IOA_ADDR_UNIX_PATH_MAX 107
#define IOA_ADDR_UNIX_ABSTRACT_MAX 107

/* Family by name: "inet"/"ipv4", "inet6"/"ipv6", "unix", "unspec", or the
 * decimal number of one of those (e.g. "2", "10", "1", "0").  AF_UNSPEC is
 * accepted because it is a useful resolver hint; the address constructors
 * reject it.  Returns the AF_* value (>= 0) or IOA_EADDRFAMILY. */
IOA_EXPORT int ioa_family_from_name(const char *name);
/* "inet", "inet6", "unix", "unspec" (AF_UNSPEC), or NULL for others. */
IOA_EXPORT const char *ioa_family_name(int family);

/* Socktype by word: "stream", "dgram", "raw", "seqpacket" (lower case only:
 * words are compared exactly, as IO::Async does), or a decimal number 0..15
 * ("0" meaning no particular socktype).  Returns the SOCK_*
 * value (>= 0) or IOA_EADDRSOCKTYPE. */
IOA_EXPORT int ioa_socktype_from_name(const char *name);
/* "stream", "dgram", "raw", "seqpacket", or NULL for others (0 included). */
IOA_EXPORT const char *ioa_socktype_name(int socktype);

/* ---- building from fields ----
 * socktype must be 0..15 (IOA_EADDRSOCKTYPE), protocol 0..255
 * (IOA_EADDRPROTOCOL), port 0..65535 (IOA_EADDRPORT). */

/* inet: ip is an IPv4 literal (strict dotted quad; no "1.2" or "0x7f.1"
 * shorthands, no leading zeros). */
IOA_EXPORT int ioa_addr_inet(const char *ip, int port, int socktype, int protocol,
                             ioa_addr *out, ioa_errinfo *err);
/* inet6: ip is an IPv6 literal, optionally with "%scope"; scope may also be
 * given separately (NULL for none) as an interface name or a decimal number.
 * If both are given they must name the same interface (IOA_EADDRSCOPE).
 * flowinfo is stored as given (host order here, network order in the
 * sockaddr). */
IOA_EXPORT int ioa_addr_inet6(const char *ip, int port, const char *scope, uint32_t flowinfo,
                              int socktype, int protocol, ioa_addr *out, ioa_errinfo *err);
/* unix: a filesystem path, or, with a leading '@', a Linux abstract name.
 * len is the length of path (pass IOA_NUL_TERMINATED to use strlen), so embedded
 * NUL bytes are detected (IOA_EADDRNUL) rather than silently cutting the
 * path.  A filesystem path gets addrlen = offsetof(sun_path) + len + 1 (the
 * NUL included); an abstract name gets offsetof(sun_path) + 1 + len (no NUL).
 * Protocol is 0. */
IOA_EXPORT int ioa_addr_unix(const char *path, size_t len, int socktype, ioa_addr *out,
                             ioa_errinfo *err);

/* Key/value form, IO::Async's hash: keys "family", "socktype", "protocol",
 * "ip", "port", "scopeid", "flowinfo", "path".  kv is a NULL-terminated array
 * of alternating keys and values (all C strings).  "family" is required;
 * inet needs "ip" and "port"; inet6 needs "ip" and "port" and may have
 * "scopeid" and "flowinfo"; unix needs "path".  "socktype" and "protocol"
 * are optional (0).  Errors: missing keys (IOA_EADDRMISSING, "Expected 'port'
 * for family inet"), keys not valid for the family (IOA_EADDRUNKNOWNKEY,
 * "Unrecognised 'inet' address keys: host, path"), repeated keys
 * (IOA_EADDRDUPKEY), a key without a value (IOA_EADDRSYNTAX), and every
 * error of the field constructors above.  Ports are decimal only. */
IOA_EXPORT int ioa_addr_from_keys(const char *const *kv, ioa_addr *out, ioa_errinfo *err);

/* From a raw sockaddr (e.g. a getaddrinfo, accept or getsockname result).
 * AF_INET and AF_INET6 need len >= sizeof their sockaddr; AF_UNIX takes
 * anything from an unnamed address (len == sizeof(sa_family_t)) up to
 * sizeof(struct sockaddr_un), and a filesystem path's addrlen is normalised
 * to the form ioa_addr_unix() produces.  Returns 0, IOA_EADDRFAMILY,
 * IOA_EADDRSYNTAX (length does not fit the family), IOA_EADDRSOCKTYPE,
 * IOA_EADDRPROTOCOL or IOA_EBADPARAM (NULL). */
IOA_EXPORT int ioa_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, int socktype,
                                      int protocol, ioa_addr *out);

/* ---- text ---- */

enum {
  IOA_ADDR_PARSE_SERVICE = 1u << 0, /* allow a service name for the port (getservbyname_r,
                                       "tcp" for stream, "udp" for dgram, else any) */
  IOA_ADDR_PARSE_NO_UNIX = 1u << 1, /* reject unix: forms (IOA_EADDRFAMILY) */
};

/* Parse one of the text forms above.  len is the text's length, so embedded
 * NUL bytes are detected (pass IOA_NUL_TERMINATED for a C string).  socktype and
 * protocol are stored in the result (the text carries neither).  Ports are
 * decimal 0..65535 without sign or spaces; a port is required for inet and
 * inet6.  An IPv6 literal with a port must be bracketed; "::1:80" is
 * IOA_EADDRBRACKETS.  Host names are not accepted (use the resolver). */
IOA_EXPORT int ioa_addr_parse(const char *text, size_t len, unsigned flags, int socktype,
                              int protocol, ioa_addr *out, ioa_errinfo *err);

/* Canonical text: "127.0.0.1:80", "[::1]:80", "[fe80::1%lo]:80" (scope by
 * name when the interface exists, else by number; no "%" for scope 0),
 * "unix:/p", "unix:@name", and "unix:" for an unnamed unix socket (which
 * does not parse back).  Flowinfo is not part of the text.
 * Returns the length written (excluding NUL), -ENOSPC if size is too small
 * (buf then holds an empty string; IOA_ADDR_STRLEN always suffices),
 * IOA_EADDRFAMILY for a family other than inet, inet6 and unix, or
 * IOA_EADDRNUL for an abstract name containing a NUL byte (possible only via
 * ioa_addr_from_sockaddr), which has no text form. */
IOA_EXPORT int ioa_addr_format(const ioa_addr *a, char *buf, size_t size);

/* ---- helpers ---- */

/* Port in host order, or -1 for unix addresses. */
IOA_EXPORT int ioa_addr_port(const ioa_addr *a);
/* Non-zero if a and b have equal family, socktype, protocol and socket
 * address fields that matter (inet: ip, port; inet6: ip, port, scope id,
 * flowinfo; unix: addrlen and path bytes). */
IOA_EXPORT int ioa_addr_equal(const ioa_addr *a, const ioa_addr *b);
/* Non-zero for 0.0.0.0 and :: (connecting to them is non-portable; the
 * connector warns through its warning hook, this module never prints). */
IOA_EXPORT int ioa_addr_is_unspecified(const ioa_addr *a);
/* "Make an address suitable for a peer": copy in to out, turning 0.0.0.0 into
 * 127.0.0.1 and :: into ::1, as IO::Async does for a listener's address.
 * Port, scope, flowinfo, socktype and protocol are kept.  in and out may be
 * the same. */
IOA_EXPORT void ioa_addr_for_peer(const ioa_addr *in, ioa_addr *out);

IOA_END_DECLS

#endif
