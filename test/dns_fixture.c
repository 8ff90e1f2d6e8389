/* SPDX-License-Identifier: MIT */
/* DNS responder fixture: see dns_fixture.h. */
#include "dns_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 512
#define MSG_MAX 512

typedef struct pending {
  uint64_t due_ns;
  struct sockaddr_storage to;
  socklen_t tolen;
  size_t len;
  unsigned char buf[MSG_MAX];
} pending;

struct ioa_dns_fixture {
  int fd, stopfd, port;
  pthread_t thread;
  const ioa_dns_record *records;
  size_t nrecords;
  atomic_uint queries_a, queries_aaaa, queries_other;
  pending *pend; /* thread-owned */
  size_t npend;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Decode the question name at q (no compression in questions) into name.
 * Returns the offset just past QTYPE/QCLASS, or 0 if malformed. */
static size_t parse_question(const unsigned char *m, size_t len, char *name, size_t namesz,
                             int *qtype) {
  size_t off = 12, out = 0;
  while (off < len) {
    unsigned l = m[off++];
    if (l == 0)
      break;
    if (l > 63 || off + l > len || out + l + 2 > namesz)
      return 0;
    if (out)
      name[out++] = '.';
    memcpy(name + out, m + off, l);
    out += l;
    off += l;
  }
  name[out] = '\0';
  if (off + 4 > len)
    return 0;
  *qtype = (m[off] << 8) | m[off + 1];
  return off + 4;
}

static const ioa_dns_record *find(const ioa_dns_fixture *f, const char *name) {
  for (size_t i = 0; i < f->nrecords; i++)
    if (strcasecmp(f->records[i].name, name) == 0)
      return &f->records[i];
  return NULL;
}

/* Build the reply to query m.  Returns its length, 0 to drop; *delay_ms
 * gets the delay to apply. */
static size_t build_reply(ioa_dns_fixture *f, const unsigned char *m, size_t len,
                          unsigned char *out, unsigned *delay_ms) {
  *delay_ms = 0;
  if (len < 12 || (m[2] & 0x80))
    return 0; /* too short, or a response */
  if (((m[4] << 8) | m[5]) != 1)
    return 0;
  char name[256];
  int qtype = 0;
  size_t qend = parse_question(m, len, name, sizeof name, &qtype);
  if (!qend)
    return 0;
  if (qtype == IOA_DNS_TYPE_A)
    atomic_fetch_add(&f->queries_a, 1);
  else if (qtype == IOA_DNS_TYPE_AAAA)
    atomic_fetch_add(&f->queries_aaaa, 1);
  else
    atomic_fetch_add(&f->queries_other, 1);

  const ioa_dns_record *rec = find(f, name);
  int rcode = rec ? rec->rcode : 3;
  const char *const *list = NULL;
  if (rec && rcode == 0) {
    if (qtype == IOA_DNS_TYPE_A) {
      if (rec->drop_a)
        return 0;
      *delay_ms = rec->delay_a_ms;
      list = rec->a;
    } else if (qtype == IOA_DNS_TYPE_AAAA) {
      if (rec->drop_aaaa)
        return 0;
      *delay_ms = rec->delay_aaaa_ms;
      list = rec->aaaa;
    }
  }
  memcpy(out, m, qend); /* header + question */
  out[2] = (unsigned char)(0x80 | (m[2] & 0x79) | 0x04); /* QR, opcode, AA, RD */
  out[3] = (unsigned char)(0x80 | (rcode & 0x0f));         /* RA, rcode */
  memset(out + 6, 0, 6);                                   /* an/ns/ar counts */
  size_t off = qend;
  unsigned an = 0;
  for (size_t i = 0; list && i < 4 && list[i]; i++) {
    unsigned char rdata[16];
    int rdlen = qtype == IOA_DNS_TYPE_A ? 4 : 16;
    if (inet_pton(qtype == IOA_DNS_TYPE_A ? AF_INET : AF_INET6, list[i], rdata) != 1)
      continue;
    if (off + 12 + (size_t)rdlen > MSG_MAX)
      break;
    unsigned char *p = out + off;
    p[0] = 0xc0; /* name: pointer to the question */
    p[1] = 12;
    p[2] = (unsigned char)(qtype >> 8);
    p[3] = (unsigned char)qtype;
    p[4] = 0;
    p[5] = 1; /* IN */
    uint32_t ttl = rec->ttl_s ? rec->ttl_s : 60;
    if (ttl == IOA_DNS_TTL_ZERO)
      ttl = 0;
    p[6] = (unsigned char)(ttl >> 24);
    p[7] = (unsigned char)(ttl >> 16);
    p[8] = (unsigned char)(ttl >> 8);
    p[9] = (unsigned char)ttl;
    p[10] = 0;
    p[11] = (unsigned char)rdlen;
    memcpy(p + 12, rdata, (size_t)rdlen);
    off += 12 + (size_t)rdlen;
    an++;
  }
  out[6] = (unsigned char)(an >> 8);
  out[7] = (unsigned char)an;
  return off;
}

static void flush_due(ioa_dns_fixture *f) {
  uint64_t now = now_ns();
  size_t j = 0;
  for (size_t i = 0; i < f->npend; i++) {
    pending *p = &f->pend[i];
    if (p->due_ns <= now)
      (void)sendto(f->fd, p->buf, p->len, MSG_NOSIGNAL, (struct sockaddr *)&p->to, p->tolen);
    else
      f->pend[j++] = *p;
  }
  f->npend = j;
}

static void *fixture_main(void *arg) {
  ioa_dns_fixture *f = arg;
  unsigned char in[MSG_MAX], out[MSG_MAX];
  for (;;) {
    int timeout = -1;
    if (f->npend) {
      uint64_t now = now_ns(), next = UINT64_MAX;
      for (size_t i = 0; i < f->npend; i++)
        if (f->pend[i].due_ns < next)
          next = f->pend[i].due_ns;
      timeout = next <= now ? 0 : (int)((next - now) / 1000000u) + 1;
    }
    struct pollfd pfd[2] = {{.fd = f->fd, .events = POLLIN}, {.fd = f->stopfd, .events = POLLIN}};
    int n = poll(pfd, 2, timeout);
    if (n < 0 && errno != EINTR)
      break;
    if (pfd[1].revents)
      break;
    flush_due(f);
    if (n <= 0 || !(pfd[0].revents & POLLIN))
      continue;
    for (int burst = 0; burst < 64; burst++) {
      struct sockaddr_storage from;
      socklen_t fromlen = sizeof from;
      ssize_t r = recvfrom(f->fd, in, sizeof in, MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
      if (r < 0)
        break;
      unsigned delay = 0;
      size_t len = build_reply(f, in, (size_t)r, out, &delay);
      if (!len)
        continue;
      if (delay == 0 || f->npend == MAX_PENDING) {
        (void)sendto(f->fd, out, len, MSG_NOSIGNAL, (struct sockaddr *)&from, fromlen);
        continue;
      }
      pending *p = &f->pend[f->npend++];
      p->due_ns = now_ns() + (uint64_t)delay * 1000000u;
      p->to = from;
      p->tolen = fromlen;
      p->len = len;
      memcpy(p->buf, out, len);
    }
  }
  return NULL;
}

int ioa_dns_fixture_start(ioa_dns_fixture **out, const char *ip, int port,
                          const ioa_dns_record *records, size_t n) {
  ioa_dns_fixture *f = calloc(1, sizeof *f);
  if (!f)
    return -ENOMEM;
  f->pend = calloc(MAX_PENDING, sizeof *f->pend);
  f->records = records;
  f->nrecords = n;
  atomic_init(&f->queries_a, 0);
  atomic_init(&f->queries_aaaa, 0);
  atomic_init(&f->queries_other, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int e = 0;
  f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  f->stopfd = eventfd(0, EFD_CLOEXEC);
  if (!f->pend || f->fd < 0 || f->stopfd < 0 || inet_pton(AF_INET, ip, &sin.sin_addr) != 1 ||
      bind(f->fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    e = errno ? errno : EINVAL;
    goto fail;
  }
  /* Tests fire thousands of queries at once: a big buffer keeps the kernel
   * from dropping them (FORCE needs CAP_NET_ADMIN; plain is capped). */
  int rcvbuf = 8 << 20;
  if (setsockopt(f->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    (void)setsockopt(f->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  socklen_t len = sizeof sin;
  if (getsockname(f->fd, (struct sockaddr *)&sin, &len) < 0) {
    e = errno;
    goto fail;
  }
  f->port = ntohs(sin.sin_port);
  e = pthread_create(&f->thread, NULL, fixture_main, f);
  if (e)
    goto fail;
  *out = f;
  return 0;
fail:
  if (f->fd >= 0)
    close(f->fd);
  if (f->stopfd >= 0)
    close(f->stopfd);
  free(f->pend);
  free(f);
  return -e;
}

int ioa_dns_fixture_port(const ioa_dns_fixture *f) { return f->port; }

unsigned ioa_dns_fixture_queries(ioa_dns_fixture *f, int qtype) {
  if (qtype == IOA_DNS_TYPE_A)
    return atomic_load(&f->queries_a);
  if (qtype == IOA_DNS_TYPE_AAAA)
    return atomic_load(&f->queries_aaaa);
  return atomic_load(&f->queries_other);
}

void ioa_dns_fixture_stop(ioa_dns_fixture *f) {
  if (!f)
    return;
  uint64_t one = 1;
  ssize_t w = write(f->stopfd, &one, sizeof one);
  (void)w;
  pthread_join(f->thread, NULL);
  close(f->fd);
  close(f->stopfd);
  free(f->pend);
  free(f);
}
