/* SPDX-License-Identifier: MIT */
/* What the connector needs of TLS (src/tls.c). */
#ifndef IOA_TLS_INTERNAL_H
#define IOA_TLS_INTERNAL_H

#include <sys/socket.h>

#include "ioasync/tls.h"

#include "stream_internal.h"

/* A TLS transport for a connected fd (see stream_internal.h), with its own
 * reference to c.  server_name: the name to check and send as SNI; NULL =
 * peer's IP address (checked against IP SANs, no SNI).  peer: the address
 * connected to (its port keys the session cache).  Returns 0, IOA_EBADPARAM
 * (nothing to verify against, a malformed name), -ENOMEM or IOA_ENOTLS. */
int ioa__tls_transport_new(ioa_tls_config *c, int fd, const char *server_name,
                           const struct sockaddr *peer, socklen_t peerlen, ioa__transport **out);
/* A name usable as a server name (or NULL)?  0 or IOA_EBADPARAM. */
int ioa__tls_check_name(const char *name);
/* Was c built with insecure_skip_verify? */
int ioa__tls_insecure(const ioa_tls_config *c);

#endif
