/* SPDX-License-Identifier: MIT */
/* A tiny DNS responder for tests: UDP on a loopback address, answered from a
 * fixed table by its own thread.  It never talks to anything but the
 * clients that query it.
 *
 * Names not in the table get NXDOMAIN.  A record can answer A and AAAA,
 * delay either family, drop either (never answer), or fail the whole name
 * with an rcode (2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED). */
#ifndef IOA_DNS_FIXTURE_H
#define IOA_DNS_FIXTURE_H

#include <stddef.h>

#define IOA_DNS_TYPE_A 1
#define IOA_DNS_TYPE_AAAA 28

typedef struct ioa_dns_record {
  const char *name;     /* without the trailing dot; matched case-insensitively */
  int rcode;            /* 0 = answer with the lists below */
  const char *a[4];     /* IPv4 literals, NULL-terminated */
  const char *aaaa[4];  /* IPv6 literals, NULL-terminated */
  unsigned delay_a_ms;  /* answer A this late */
  unsigned delay_aaaa_ms;
  int drop_a;           /* never answer A */
  int drop_aaaa;
  unsigned ttl_s;       /* the records' TTL: 0 = 60 s, IOA_DNS_TTL_ZERO = 0 s */
} ioa_dns_record;
#define IOA_DNS_TTL_ZERO 0xffffffffu

typedef struct ioa_dns_fixture ioa_dns_fixture;

/* Start answering on ip ("127.0.0.1") at port (0 = a free port).  records
 * (n of them) must stay valid until stop.  Returns 0 or -errno. */
int ioa_dns_fixture_start(ioa_dns_fixture **out, const char *ip, int port,
                          const ioa_dns_record *records, size_t n);
int ioa_dns_fixture_port(const ioa_dns_fixture *f);
/* Queries received so far for qtype (thread-safe). */
unsigned ioa_dns_fixture_queries(ioa_dns_fixture *f, int qtype);
/* Stop the thread, close the socket, free. */
void ioa_dns_fixture_stop(ioa_dns_fixture *f);

#endif
