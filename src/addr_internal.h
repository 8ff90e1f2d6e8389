/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by addr.c (service-name ports) and resolve.c
 * (service checks): one lookup, so both reject and accept the same names. */
#ifndef IOA_ADDR_INTERNAL_H
#define IOA_ADDR_INTERNAL_H

#include <stddef.h>
#include <sys/socket.h>

/* The /etc/services protocol for a socket type: "tcp", "udp", or NULL for
 * any protocol /etc/services lists. */
static inline const char *ioa__service_proto(int socktype) {
  switch (socktype) {
  case SOCK_STREAM:
    return "tcp";
  case SOCK_DGRAM:
    return "udp";
  default:
    return NULL;
  }
}

/* Longest service name looked up, and the bound on the buffer a services
 * database entry is read into (it grows from 1 KiB on ERANGE). */
#define IOA__SERVICE_NAME_MAX 255
#define IOA__SERVICE_BUF_MAX 65536

/* The port (host byte order) of service name (len bytes, no NUL needed) in
 * the services database (nss "services": /etc/services) for socktype's
 * protocol (ioa__service_proto).  Returns 0, -ENOENT if it is unknown or
 * cannot be a name (empty, over IOA__SERVICE_NAME_MAX, a byte outside
 * printable ASCII or a space), -ERANGE if an entry is larger than
 * IOA__SERVICE_BUF_MAX, -ENOMEM, or another negated errno from the
 * database.  Thread-safe; it reads a file, so a caller on the loop thread
 * relies on that file being local. */
int ioa__service_port(const char *name, size_t len, int socktype, int *port);

#endif
