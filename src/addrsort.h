/* SPDX-License-Identifier: MIT */
/* Destination address selection: the order getaddrinfo() gives its
 * answers (RFC 6724 section 6, with glibc's tables and rules), for answers
 * that do not come sorted from the system's getaddrinfo (c-ares, the hosts
 * table, two per-family getaddrinfo calls joined into one answer).
 *
 * The source address the kernel would use for each destination is found as
 * glibc finds it: a UDP socket connect()ed to the destination (no packet
 * leaves) and getsockname().  Those probes and the interface list (netlink)
 * are kept between sorts and thrown away as soon as the kernel reports an
 * address, route, rule or link change on a netlink socket subscribed to
 * them, so a steady state costs one non-blocking recv per sort.
 *
 * Loop thread only (one sorter per resolver). */
#ifndef IOA_ADDRSORT_H
#define IOA_ADDRSORT_H

#include <stddef.h>

#include "ioasync/addr.h"

typedef struct ioa__addrsort ioa__addrsort;

/* A sorter; it opens no socket until it is first used.  0 or -ENOMEM. */
int ioa__addrsort_new(ioa__addrsort **out);
void ioa__addrsort_free(ioa__addrsort *s);

/* The contents of /etc/gai.conf (text, len bytes; NULL for no file).  The
 * sorter models glibc's label, precedence and scopev4 directives; returns 1
 * if it now sorts exactly as getaddrinfo would, 0 if the file has something
 * it does not model (a malformed line, say): ioa__addrsort_sort then
 * declines until the file changes. */
int ioa__addrsort_config(ioa__addrsort *s, const char *text, size_t len);
/* Whether ioa__addrsort_sort reproduces getaddrinfo's order. */
int ioa__addrsort_exact(const ioa__addrsort *s);

/* Sort v[0..n) in place into the order getaddrinfo() gives a list that
 * arrives in this order (its rule 10 keeps the arrival order for ties).
 * Lists of one address, and non-inet ones, are left as they are, as glibc
 * does.  Returns 1 if sorted, 0 if left as is because the configuration is
 * not modelled (see above), -ENOMEM (left as is).  A failing probe makes
 * its destination "unusable", as in glibc. */
int ioa__addrsort_sort(ioa__addrsort *s, ioa_addr *v, size_t n);

/* AI_ADDRCONFIG as glibc decides it: whether an IPv4 address other than
 * 127.0.0.1 / an IPv6 address other than ::1 is configured.  Both are
 * reported present when the kernel cannot be asked (as glibc does). */
void ioa__addrsort_families(ioa__addrsort *s, int *v4, int *v6);

#endif
