/* SPDX-License-Identifier: MIT */
/* libFuzzer target for the hosts table (src/resolve_hosts.c), differential:
 * every answer it gives must be exactly getaddrinfo()'s for the same file.
 *
 * Input: five selector bytes, then the hosts file.
 *   byte 0  family (AF_UNSPEC, AF_INET, AF_INET6)
 *   byte 1  socktype and protocol
 *   byte 2  AI_* flags (CANONNAME, ADDRCONFIG, V4MAPPED, ALL, NUMERICSERV, PASSIVE)
 *   byte 3  service (none, "80", "0", "http", "domain")
 *   byte 4  which whitespace-separated word of the file to look up (a name
 *           that cannot be a host name, or is numeric, becomes "a")
 *
 * At start-up, as root, the process moves into a mount and network
 * namespace of its own (unshare; lo up, nothing else) and bind-mounts temp
 * files over /etc/hosts, /etc/nsswitch.conf ("hosts: files"),
 * /etc/host.conf ("multi on"), /etc/gai.conf (empty) and /etc/resolv.conf:
 * getaddrinfo then reads exactly the fuzzed file and nothing can leave.
 * Each input rewrites the hosts file in place (no fork, no remount), so
 * thousands of comparisons run per second.  Without root the target still
 * fuzzes the table (parsing, lookups, sorting) but compares nothing, and
 * says so once.  A difference aborts with both answers printed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resolve_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int comparing;           /* the namespace is ours: compare with glibc */
static char hosts_path[64];     /* the file bind-mounted over /etc/hosts */
static ioa__hosts *table;

static int put(const char *dir, const char *name, const char *content, const char *target) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  size_t n = strlen(content);
  int ok = write(fd, content, n) == (ssize_t)n;
  close(fd);
  return ok && mount(path, target, NULL, MS_BIND, NULL) == 0 ? 0 : -1;
}

static int lo_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  close(fd);
  return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  if (ioa__hosts_new(&table) < 0)
    abort();
  char dir[] = "/tmp/ioa-fuzz-hosts.XXXXXX";
  if (geteuid() == 0 && unshare(CLONE_NEWNS | CLONE_NEWNET) == 0 &&
      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 && mkdtemp(dir) && lo_up() == 0 &&
      put(dir, "nsswitch.conf", "hosts: files\n", "/etc/nsswitch.conf") == 0 &&
      put(dir, "host.conf", "multi on\n", "/etc/host.conf") == 0 &&
      put(dir, "gai.conf", "", "/etc/gai.conf") == 0 &&
      put(dir, "resolv.conf", "nameserver 127.0.0.1\n", "/etc/resolv.conf") == 0 &&
      put(dir, "hosts", "", "/etc/hosts") == 0) {
    snprintf(hosts_path, sizeof hosts_path, "%s/hosts", dir);
    comparing = 1;
  } else {
    fprintf(stderr, "fuzz_hosts: no private namespace (needs root): fuzzing the table "
                    "without comparing it with getaddrinfo\n");
  }
  return 0;
}

/* check_host's rules (resolve.c): what reaches the table. */
static int valid_host(const char *s) {
  size_t len = strlen(s), body = len, label = 0;
  if (len == 0)
    return 0;
  if (s[len - 1] == '.')
    body--;
  if (body == 0 || body > 253)
    return 0;
  for (size_t i = 0; i < body; i++) {
    if (s[i] == '.') {
      if (label == 0)
        return 0;
      label = 0;
    } else if (++label > 63) {
      return 0;
    }
  }
  return label != 0;
}

/* The k-th word of the file (whitespace-separated, NUL-free). */
static void pick_name(const char *text, size_t len, unsigned k, char *out, size_t size) {
  snprintf(out, size, "a");
  unsigned i = 0;
  for (size_t p = 0; p < len;) {
    while (p < len && (text[p] == ' ' || (text[p] >= '\t' && text[p] <= '\r') || !text[p]))
      p++;
    size_t start = p;
    while (p < len && text[p] && !(text[p] == ' ' || (text[p] >= '\t' && text[p] <= '\r')))
      p++;
    if (p > start && i++ == k) {
      size_t n = p - start < size - 1 ? p - start : size - 1;
      memcpy(out, text + start, n);
      out[n] = '\0';
      break;
    }
  }
  /* Numeric names and IPv6-ish ones never reach the table ("*" is no
   * host at all to glibc: numeric too). */
  struct addrinfo h = {.ai_flags = AI_NUMERICHOST}, *res = NULL;
  if (!valid_host(out) || strchr(out, ':') || getaddrinfo(out, "0", &h, &res) == 0)
    snprintf(out, size, "a");
  if (res)
    freeaddrinfo(res);
}

static void show(const char *who, const ioa_addr *v, size_t n, const struct addrinfo *ai) {
  char b[INET6_ADDRSTRLEN];
  fprintf(stderr, "  %s:", who);
  for (size_t i = 0; v && i < n; i++) {
    const void *a = v[i].family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)&v[i].addr)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)&v[i].addr)->sin6_addr;
    fprintf(stderr, " %s/%d/%d", inet_ntop(v[i].family, a, b, sizeof b) ? b : "?",
            v[i].socktype, v[i].protocol);
  }
  for (; ai; ai = ai->ai_next) {
    const void *a = ai->ai_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    fprintf(stderr, " %s/%d/%d", inet_ntop(ai->ai_family, a, b, sizeof b) ? b : "?",
            ai->ai_socktype, ai->ai_protocol);
  }
  fprintf(stderr, "\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 5 || size > 8192)
    return 0;
  static const int fams[] = {AF_UNSPEC, AF_INET, AF_INET6};
  static const int types[][2] = {{0, 0},           {SOCK_STREAM, 0}, {SOCK_DGRAM, 0},
                                 {SOCK_RAW, 0},    {0, IPPROTO_TCP}, {SOCK_STREAM, IPPROTO_TCP},
                                 {0, IPPROTO_UDP}, {SOCK_DGRAM, IPPROTO_SCTP}};
  static const int bits[] = {AI_CANONNAME, AI_ADDRCONFIG, AI_V4MAPPED, AI_ALL, AI_NUMERICSERV,
                             AI_PASSIVE};
  static const char *const services[] = {NULL, "80", "0", "http", "domain"};
  ioa_resolve_hints hi = {fams[data[0] % 3], types[data[1] % 8][0], types[data[1] % 8][1], 0};
  for (unsigned i = 0; i < 6; i++)
    if (data[2] & (1u << i))
      hi.flags |= bits[i];
  const char *service = services[data[3] % 5];
  const char *text = (const char *)data + 5;
  size_t len = size - 5;
  char name[256];
  pick_name(text, len, data[4], name, sizeof name);

  if (ioa__hosts_load(table, text, len, 1) < 0)
    return 0;
  ioa_addr *v = NULL;
  size_t n = 0;
  char *canon = NULL;
  int rc = ioa__hosts_lookup(table, name, service, &hi, &v, &n, &canon);
  if (rc < 0 && rc != -ENOMEM)
    abort();
  if (comparing) {
    int fd = open(hosts_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len)
      abort();
    close(fd);
    struct addrinfo gh = {.ai_family = hi.family,
                          .ai_socktype = hi.socktype,
                          .ai_protocol = hi.protocol,
                          .ai_flags = hi.flags};
    struct addrinfo *res = NULL;
    int grc = getaddrinfo(name, service, &gh, &res);
    int bad = 0;
    if (rc == IOA__HOSTS_ANSWERED) {
      const struct addrinfo *p = grc == 0 ? res : NULL;
      size_t i = 0;
      for (; p && i < n; p = p->ai_next, i++)
        if (p->ai_family != v[i].family || p->ai_socktype != v[i].socktype ||
            p->ai_protocol != v[i].protocol || p->ai_addrlen != v[i].addrlen ||
            memcmp(p->ai_addr, &v[i].addr, p->ai_addrlen) != 0)
          break;
      bad = grc != 0 || p || i != n ||
            ((hi.flags & AI_CANONNAME) &&
             (!canon || !res->ai_canonname || strcmp(canon, res->ai_canonname) != 0));
    } else if (rc == IOA__HOSTS_ABSENT || rc == IOA__HOSTS_DECLINE) {
      /* nsswitch has "files" alone: an answer came from the file, which
       * the table then has to give too (gai.conf is empty, so it models
       * everything; AI_ADDRCONFIG with a family absent fails anyway). */
      bad = grc == 0;
    }
    if (bad) {
      fprintf(stderr, "fuzz_hosts: the table (%d) and getaddrinfo (%s) differ for '%s' "
                      "service %s family %d socktype %d protocol %d flags %#x, canonical "
                      "names '%s' / '%s'\n",
              rc, grc ? gai_strerror(grc) : "ok", name, service ? service : "(null)", hi.family,
              hi.socktype, hi.protocol, hi.flags, canon ? canon : "",
              grc == 0 && res->ai_canonname ? res->ai_canonname : "");
      show("table      ", v, n, NULL);
      show("getaddrinfo", NULL, 0, grc == 0 ? res : NULL);
      abort();
    }
    if (res)
      freeaddrinfo(res);
  }
  free(v);
  free(canon);
  return 0;
}
