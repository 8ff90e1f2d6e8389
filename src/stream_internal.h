/* SPDX-License-Identifier: MIT */
/* What other modules (the connector) need of streams and sockets. */
#ifndef IOA_STREAM_INTERNAL_H
#define IOA_STREAM_INTERNAL_H

#include "ioasync/socket.h"
#include "ioasync/stream.h"

/* Check caller options and fill out with every default applied, so that a
 * later ioa_stream_new(out) / ioa_socket_new(out) cannot refuse them.
 * opts may be NULL.  Returns 0 or IOA_EBADPARAM. */
int ioa__stream_options_resolve(const ioa_stream_options *opts, ioa_stream_options *out);
int ioa__socket_options_resolve(const ioa_socket_options *opts, ioa_socket_options *out);

#endif
