/* SPDX-License-Identifier: MIT */
/* Round-trip times per destination prefix, for the connector's learned
 * Happy Eyeballs attempt delay (RFC 8305 section 5: "SHOULD use historical
 * RTT data").  The public half is in ioasync/connect.h (ioa_rtt_cache_*);
 * the connector uses these, with the loop's clock instead of a clock read. */
#ifndef IOA_RTT_H
#define IOA_RTT_H

#include <stdint.h>
#include <sys/socket.h>

#include "ioasync/connect.h"

/* The smoothed RTT in microseconds known for sa's prefix (/24 for IPv4,
 * /64 for IPv6) and not older than the cache's lifetime; 0 if none.  now_ns:
 * CLOCK_MONOTONIC (ioa_loop_now). */
uint32_t ioa__rtt_get(ioa_rtt_cache *c, const struct sockaddr *sa, uint64_t now_ns);
/* One sample for sa's prefix (ignored for other families and rtt_us 0). */
void ioa__rtt_note(ioa_rtt_cache *c, const struct sockaddr *sa, uint32_t rtt_us, uint64_t now_ns);

#endif
