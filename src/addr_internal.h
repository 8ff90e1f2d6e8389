/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by addr.c (service-name ports) and resolve.c
 * (service checks): one mapping, so both reject and accept the same names. */
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

#endif
