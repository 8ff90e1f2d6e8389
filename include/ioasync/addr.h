/* ioasync — address descriptions.
 *
 * The C counterpart of IO::Async::OS's extract_addrinfo: one candidate
 * address with the shape of one getaddrinfo() result.  Families inet, inet6
 * and unix (filesystem path or, on Linux, abstract name).
 *
 * Text forms (parse and format):
 *   127.0.0.1:80   [::1]:80   [fe80::1%lo]:80   unix:/path/to/sock   unix:@abstract
 *
 * Every failure returns a negative code (IOA_EADDR*, IOA_EADDRSERVICE) and,
 * when the caller passes an ioa_errinfo, a specific message such as
 * "Expected 'path' for family unix" or "Unrecognised 'inet' address keys: host".
 * Nothing is ever truncated: a unix path longer than sun_path holds is an
 * error (IOA_EADDRPATHLEN) naming the limit.
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

/* Family by name: "inet"/"ipv4", "inet6"/"ipv6", "unix", or a decimal number.
 * Returns the AF_* value or IOA_EADDRFAMILY. */
IOA_EXPORT int ioa_family_from_name(const char *name);
/* "inet", "inet6", "unix", or NULL for others. */
IOA_EXPORT const char *ioa_family_name(int family);

/* Socktype by word: "stream", "dgram", "raw", "seqpacket", or a decimal
 * number ("0" meaning no particular socktype).  Returns the SOCK_* value
 * (>= 0) or IOA_EADDRSOCKTYPE. */
IOA_EXPORT int ioa_socktype_from_name(const char *name);
/* "stream", "dgram", "raw", "seqpacket", or NULL for others (0 included). */
IOA_EXPORT const char *ioa_socktype_name(int socktype);

/* ---- building from fields ---- */

/* inet: ip is an IPv4 literal (dotted quad only; no "1.2" shorthands). */
IOA_EXPORT int ioa_addr_inet(ioa_addr *out, const char *ip, int port, int socktype,
                             int protocol, ioa_errinfo *err);
/* inet6: ip is an IPv6 literal, optionally with "%scope"; scope may also be
 * given separately as an interface name or number (scope wins if both are the
 * same; conflicting ones are an error). */
IOA_EXPORT int ioa_addr_inet6(ioa_addr *out, const char *ip, int port, const char *scope,
                              uint32_t flowinfo, int socktype, int protocol,
                              ioa_errinfo *err);
/* unix: a filesystem path, or, with a leading '@', a Linux abstract name.
 * Explicit length so abstract names may contain any byte but NUL-terminated
 * C strings work too (pass len = (size_t)-1 to use strlen). */
IOA_EXPORT int ioa_addr_unix(ioa_addr *out, const char *path, size_t len, int socktype,
                             ioa_errinfo *err);

/* Key/value form, the seed's hash: keys "family", "socktype", "protocol",
 * "ip", "port", "scopeid", "flowinfo", "path".  kv is a NULL-terminated array
 * of alternating keys and values.  Missing and unrecognised keys are
 * reported precisely. */
IOA_EXPORT int ioa_addr_from_keys(ioa_addr *out, const char *const *kv, ioa_errinfo *err);

/* From a raw sockaddr (e.g. a getaddrinfo or accept result). */
IOA_EXPORT int ioa_addr_from_sockaddr(ioa_addr *out, const struct sockaddr *sa, socklen_t len,
                                      int socktype, int protocol);

/* ---- text ---- */

enum {
  IOA_ADDR_PARSE_SERVICE = 1u << 0, /* allow a service name for the port (getservbyname) */
  IOA_ADDR_PARSE_NO_UNIX = 1u << 1, /* reject unix: forms */
};

/* Parse one of the text forms above.  len is the text's length, so embedded
 * NUL bytes are detected (pass (size_t)-1 for a C string).  socktype and
 * protocol are stored in the result (the text carries neither). */
IOA_EXPORT int ioa_addr_parse(ioa_addr *out, const char *text, size_t len, unsigned flags,
                              int socktype, int protocol, ioa_errinfo *err);

/* Canonical text: "127.0.0.1:80", "[::1]:80", "[fe80::1%lo]:80" (scope by
 * name when the interface exists, else by number), "unix:/p", "unix:@name".
 * Returns the length written (excluding NUL) or -ENOSPC if size is too small
 * (buf then holds an empty string); IOA_ADDR_STRLEN always suffices. */
IOA_EXPORT int ioa_addr_format(const ioa_addr *a, char *buf, size_t size);

/* ---- helpers ---- */

/* Port in host order, or -1 for unix addresses. */
IOA_EXPORT int ioa_addr_port(const ioa_addr *a);
/* Equal family, socktype, protocol and socket address bytes that matter. */
IOA_EXPORT int ioa_addr_equal(const ioa_addr *a, const ioa_addr *b);
/* Non-zero for 0.0.0.0 and :: (connecting to them is non-portable). */
IOA_EXPORT int ioa_addr_is_unspecified(const ioa_addr *a);
/* "Make an address suitable for a peer": copy in to out, turning 0.0.0.0 into
 * 127.0.0.1 and :: into ::1, as IO::Async does for a listener's address. */
IOA_EXPORT void ioa_addr_for_peer(ioa_addr *out, const ioa_addr *in);

IOA_END_DECLS

#endif
