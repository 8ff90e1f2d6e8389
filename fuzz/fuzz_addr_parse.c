/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the address module.
 *
 * The first input byte picks what to exercise, the rest is the payload:
 *   top bits 00/01  ioa_addr_parse(payload); low bits pick the flags
 *                   (bit 0 SERVICE, bit 1 NO_UNIX), bits 2-3 the socktype,
 *                   bit 4 a protocol;
 *   top bits 10     ioa_addr_from_keys with the payload split on '\n' into
 *                   alternating keys and values;
 *   top bits 11     ioa_addr_from_sockaddr on the raw bytes, and
 *                   ioa_addr_unix on the payload with its explicit length.
 * Every success must format and parse back to an equal address with the same
 * text; every failure must carry its code and a message in ioa_errinfo.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "ioasync.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_failure(int r, const ioa_errinfo *err) {
  CHECK(r < 0);
  CHECK(err->code == r);
  CHECK(err->message[0] != '\0');
  CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
  CHECK((r <= IOA_EADDRFAMILY && r >= IOA_EADDRFLOWINFO) || r == IOA_EBADPARAM);
}

/* parse(format(a)) == a and format is stable. */
static void check_round_trip(const ioa_addr *a) {
  char t1[IOA_ADDR_STRLEN], t2[IOA_ADDR_STRLEN];
  int n = ioa_addr_format(a, t1, sizeof t1);
  CHECK(n > 0 && n < IOA_ADDR_STRLEN);
  CHECK(strlen(t1) == (size_t)n);
  ioa_addr b, want = *a;
  if (want.family == AF_INET6) /* the text carries no flowinfo */
    ((struct sockaddr_in6 *)&want.addr)->sin6_flowinfo = 0;
  ioa_errinfo err;
  int r = ioa_addr_parse(t1, (size_t)n, 0, a->socktype, a->protocol, &b, &err);
  if (r != 0)
    fprintf(stderr, "re-parse of '%s' failed: %s\n", t1, err.message);
  CHECK(r == 0);
  CHECK(ioa_addr_equal(&want, &b));
  CHECK(ioa_addr_format(&b, t2, sizeof t2) == n);
  CHECK(memcmp(t1, t2, (size_t)n) == 0);
  /* a buffer one byte short is refused whole, never truncated */
  CHECK(ioa_addr_format(a, t2, (size_t)n) == -ENOSPC && t2[0] == '\0');
}

static const int socktypes[4] = {0, SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};

static void fuzz_parse(uint8_t mode, const char *text, size_t len) {
  unsigned flags = mode & 3u;
  int socktype = socktypes[(mode >> 2) & 3];
  int protocol = (mode & 0x10) ? 6 : 0;
  ioa_addr a;
  ioa_errinfo err;
  int r = ioa_addr_parse(text, len, flags, socktype, protocol, &a, &err);
  if (r != 0) {
    check_failure(r, &err);
    return;
  }
  CHECK(err.code == 0 && err.message[0] == '\0');
  CHECK(a.socktype == socktype);
  check_round_trip(&a);
}

enum { MAX_TOKENS = 32 };

static void fuzz_keys(const char *payload, size_t len) {
  /* NUL-terminated copies of the '\n'-separated tokens */
  char *buf = malloc(len + 1);
  if (!buf)
    return;
  memcpy(buf, payload, len);
  buf[len] = '\0';
  const char *kv[MAX_TOKENS + 1];
  size_t n = 0;
  char *p = buf;
  while (n < MAX_TOKENS) {
    kv[n++] = p;
    char *nl = memchr(p, '\n', (size_t)(buf + len - p));
    if (!nl)
      break;
    *nl = '\0';
    p = nl + 1;
  }
  kv[n] = NULL;
  ioa_addr a;
  ioa_errinfo err;
  int r = ioa_addr_from_keys(kv, &a, &err);
  if (r != 0)
    check_failure(r, &err);
  else
    check_round_trip(&a);
  free(buf);
}

static void fuzz_raw(const uint8_t *payload, size_t len) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, payload, len < sizeof ss ? len : sizeof ss);
  ioa_addr a;
  socklen_t sl = len > 1024 ? 1024 : (socklen_t)len;
  if (ioa_addr_from_sockaddr((const struct sockaddr *)&ss, sl, 0, 0, &a) == 0) {
    char t[IOA_ADDR_STRLEN];
    int n = ioa_addr_format(&a, t, sizeof t);
    CHECK(n >= 0 || n == IOA_EADDRNUL);
    CHECK(n < 0 || strlen(t) == (size_t)n);
    CHECK(ioa_addr_equal(&a, &a));
  }

  ioa_errinfo err;
  int r = ioa_addr_unix((const char *)payload, len, SOCK_STREAM, &a, &err);
  if (r != 0)
    check_failure(r, &err);
  else
    check_round_trip(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t mode = data[0];
  const uint8_t *payload = data + 1;
  size_t len = size - 1;
  switch (mode >> 6) {
  case 2:
    fuzz_keys((const char *)payload, len);
    break;
  case 3:
    fuzz_raw(payload, len);
    break;
  default:
    fuzz_parse(mode, (const char *)payload, len);
    break;
  }
  return 0;
}
