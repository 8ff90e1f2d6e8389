/* SPDX-License-Identifier: MIT */
/* dns_responder: a DNS server for the benchmarks' namespace (loopback only).
 *
 *   dns_responder [-t max_seconds] IP PORT NAME=ADDRESS...
 *
 * Answers A and AAAA queries for the names given (an A-only name gets an
 * empty NOERROR answer for AAAA, as a real server does), anything else
 * NXDOMAIN, from the test suite's responder (test/dns_fixture.c) on its own
 * thread.  Prints "ready" once it listens, then serves until killed or the
 * time bound passes.  scripts/bench starts it on 127.0.0.1:53 inside its
 * private network namespace, where /etc/resolv.conf names that address, so
 * every contender's resolver (glibc, c-ares, Go) asks it. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns_fixture.h"

#define MAX_NAMES 8

int main(int argc, char **argv) {
  long max_secs = 900;
  int opt;
  while ((opt = getopt(argc, argv, "t:")) != -1) {
    if (opt == 't')
      max_secs = atol(optarg);
    else
      goto usage;
  }
  if (argc - optind < 3 || argc - optind - 2 > MAX_NAMES)
    goto usage;
  const char *ip = argv[optind];
  struct in_addr a4;
  if (inet_pton(AF_INET, ip, &a4) != 1 || (ntohl(a4.s_addr) >> 24) != 127) {
    fprintf(stderr, "dns_responder: listens on 127.0.0.0/8 only\n");
    return 2;
  }
  int port = atoi(argv[optind + 1]);
  static ioa_dns_record recs[MAX_NAMES];
  static char names[MAX_NAMES][256];
  size_t n = 0;
  for (int i = optind + 2; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof names[0])
      goto usage;
    size_t nl = (size_t)(eq - argv[i]);
    ioa_dns_record *r = NULL;
    for (size_t k = 0; k < n; k++)
      if (strlen(names[k]) == nl && strncmp(names[k], argv[i], nl) == 0)
        r = &recs[k];
    if (!r) {
      memcpy(names[n], argv[i], nl);
      names[n][nl] = '\0';
      r = &recs[n];
      r->name = names[n++];
    }
    const char **list = strchr(eq + 1, ':') ? r->aaaa : r->a;
    size_t k = 0;
    while (k < 3 && list[k])
      k++;
    list[k] = eq + 1;
  }
  ioa_dns_fixture *f = NULL;
  if (ioa_dns_fixture_start(&f, ip, port, recs, n) != 0) {
    perror("dns_responder: cannot listen");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  sleep((unsigned)max_secs);
  ioa_dns_fixture_stop(f);
  return 0;
usage:
  fprintf(stderr, "usage: %s [-t max_seconds] IP PORT NAME=ADDRESS...\n", argv[0]);
  return 2;
}
