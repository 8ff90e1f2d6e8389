/* SPDX-License-Identifier: MIT */
/* ioasync — non-blocking socket connections on an event loop.
 * Umbrella header: includes every public header. */
#ifndef IOASYNC_H
#define IOASYNC_H

#include "ioasync/common.h"
#include "ioasync/error.h"
#include "ioasync/loop.h"
#include "ioasync/addr.h"
#include "ioasync/resolve.h"
#include "ioasync/stream.h"
#include "ioasync/socket.h"
#include "ioasync/connect.h"
#include "ioasync/tls.h"

#endif
