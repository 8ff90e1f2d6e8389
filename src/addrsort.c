/* SPDX-License-Identifier: MIT */
/* Destination address selection in getaddrinfo()'s order (addrsort.h).
 *
 * glibc sorts with RFC 3484's tables as amended in glibc (not RFC 6724's
 * defaults: IPv4 private ranges are site-local, ULAs have no precedence
 * entry of their own), optionally replaced by /etc/gai.conf, and this
 * comparator, applied in a top-down merge sort (glibc's qsort_r for an array
 * of indexes):
 *   1 a destination with a source address first (the probe worked)
 *   2 destination scope equal to its source's scope
 *   3 source not deprecated (or optimistic)
 *   4 source a home address
 *   5 destination label equal to its source's label
 *   6 higher destination precedence
 *   7 source interface not a tunnel (only when the interfaces differ)
 *   8 smaller destination scope
 *   9 longer common prefix of destination and source (same family only;
 *     IPv4 only inside the source's subnet)
 *  10 arrival order.
 * Rules 2-5, 7 and 9 apply only when both have a source.  The merge sort is
 * the same algorithm as glibc's so that even rule 9, which is not
 * transitive for IPv6, gives the same order.  The differential test
 * (test/test_addrsort_diff.c) compares every order with getaddrinfo's on
 * generated address sets inside a private network namespace.
 */
#include "addrsort.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sys.h"

/* ----------------------------------------------------------- the tables */

typedef struct prefix_entry {
  uint8_t prefix[16];
  unsigned bits;
  int val;
} prefix_entry;

typedef struct scope_entry {
  uint32_t addr, netmask; /* host order */
  int scope;
} scope_entry;

#define P6(...) {__VA_ARGS__}
/* glibc's built-in tables, searched first match first (as listed). */
static const prefix_entry default_labels[] = {
    {P6(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), 128, 0},
    {P6(0x20, 0x02), 16, 2},
    {P6(0), 96, 3},
    {P6(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff), 96, 4},
    {P6(0xfe, 0xc0), 10, 5},
    {P6(0xfc), 7, 6},
    {P6(0x20, 0x01, 0, 0), 32, 7},
    {P6(0), 0, 1},
};
static const prefix_entry default_precedence[] = {
    {P6(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), 128, 50},
    {P6(0x20, 0x02), 16, 30},
    {P6(0), 96, 20},
    {P6(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff), 96, 10},
    {P6(0), 0, 40},
};
static const scope_entry default_scopes[] = {
    {0xa9fe0000u, 0xffff0000u, 2}, /* 169.254/16: link-local */
    {0x7f000000u, 0xff000000u, 2}, /* 127/8: as ::1 */
    {0, 0, 14},                    /* the rest, private ranges too (RFC 6724) */
};

/* ------------------------------------------------------------ the state */

/* One entry of the kernel's address list (glibc's in6addrinfo). */
typedef struct if_entry {
  uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
  uint8_t prefixlen;
  uint8_t flags; /* IFE_* */
  uint32_t index;
} if_entry;
enum { IFE_DEPRECATED = 1, IFE_HOME = 2 };

typedef struct link_entry {
  uint32_t index;
  int native; /* not an IPv6-in-IPv4 or other tunnel */
} link_entry;

/* What a probe found for one destination. */
typedef struct probe {
  int family;      /* of the source: AF_INET or AF_INET6 */
  uint8_t src[16]; /* IPv4 as ::ffff:a.b.c.d */
  uint8_t flags, prefixlen;
  uint32_t index;
} probe;

typedef struct probe_slot {
  socklen_t dstlen;
  struct sockaddr_in6 dst; /* large enough for both families */
  probe p;
} probe_slot;

#define PROBE_CACHE 32
#define DRAIN_MAX 64

struct ioa__addrsort {
  int nl_fd;       /* subscribed to changes, or -1 */
  int known;       /* the cached kernel state below is current */
  int have_ifs;    /* if_list was read (else glibc's "no information") */
  if_entry *ifs;   /* sorted by address, as glibc's bsearch needs */
  size_t nifs;
  int seen_v4, seen_v6;
  link_entry *links; /* NULL until rule 7 first needs it */
  size_t nlinks;
  int have_links;
  probe_slot probes[PROBE_CACHE];
  unsigned nprobes;
  /* /etc/gai.conf */
  int exact;
  prefix_entry *labels, *precedence; /* NULL: the defaults */
  size_t nlabels, nprecedence;
  scope_entry *scopes;
  size_t nscopes;
  uint32_t seq;
};

int ioa__addrsort_new(ioa__addrsort **out) {
  ioa__addrsort *s = ioa__calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->nl_fd = -1;
  s->exact = 1;
  *out = s;
  return 0;
}

static void forget_kernel_state(ioa__addrsort *s) {
  s->known = 0;
  s->have_ifs = s->have_links = 0;
  ioa__free(s->ifs);
  ioa__free(s->links);
  s->ifs = NULL;
  s->links = NULL;
  s->nifs = s->nlinks = 0;
  s->nprobes = 0;
}

static void free_config(ioa__addrsort *s) {
  ioa__free(s->labels);
  ioa__free(s->precedence);
  ioa__free(s->scopes);
  s->labels = s->precedence = NULL;
  s->scopes = NULL;
  s->nlabels = s->nprecedence = s->nscopes = 0;
}

void ioa__addrsort_free(ioa__addrsort *s) {
  if (!s)
    return;
  forget_kernel_state(s);
  free_config(s);
  ioa__sys_close(s->nl_fd);
  ioa__free(s);
}

/* -------------------------------------------------------------- netlink */

/* A socket subscribed to every change that can move a source address. */
static int nl_subscribe(void) {
  int fd = ioa__sys_socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (fd < 0)
    return -1;
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
                 RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_RULE | (1u << (RTNLGRP_IPV6_RULE - 1));
  if (ioa__sys_bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    ioa__sys_close(fd);
    return -1;
  }
  return fd;
}

/* Whether nothing changed since the last look: reads every pending
 * notification (bounded), any of which means "changed". */
static int nl_quiet(int fd) {
  char buf[4096];
  int quiet = 1;
  for (int i = 0; i < DRAIN_MAX; i++) {
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = ioa__sys_recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0 && errno == EAGAIN)
      return quiet;
    if (n < 0 && errno == EINTR)
      continue;
    quiet = 0; /* a notification, an overflow (ENOBUFS) or another error */
    if (n < 0 && errno != ENOBUFS)
      return 0;
  }
  return 0;
}

typedef int (*nl_msg_fn)(ioa__addrsort *s, const struct nlmsghdr *h);

/* One dump request (RTM_GETADDR or RTM_GETLINK) on a socket of its own,
 * each reply message handed to fn.  0, or -1 if the dump failed. */
static int nl_dump(ioa__addrsort *s, int type, nl_msg_fn fn) {
  int fd = ioa__sys_socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (fd < 0)
    return -1;
  struct {
    struct nlmsghdr h;
    struct rtgenmsg g;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = (uint16_t)type;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = ++s->seq;
  req.g.rtgen_family = AF_UNSPEC;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  struct iovec iov = {.iov_base = &req, .iov_len = sizeof req};
  struct msghdr mh = {.msg_name = &kernel, .msg_namelen = sizeof kernel, .msg_iov = &iov,
                      .msg_iovlen = 1};
  int rc = -1;
  if (ioa__sys_sendmsg(fd, &mh, 0) < 0)
    goto out;
  /* The kernel fills each reply as the previous one is read, inside the
   * recv call: a non-blocking socket never waits here. */
  long buf[8192 / sizeof(long)];
  for (int rounds = 0; rounds < 100000; rounds++) {
    struct iovec riov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr rmh = {.msg_iov = &riov, .msg_iovlen = 1};
    ssize_t n = ioa__sys_recvmsg(fd, &rmh, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || (rmh.msg_flags & MSG_TRUNC))
      goto out;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != req.h.nlmsg_seq)
        continue;
      if (h->nlmsg_type == NLMSG_DONE) {
        rc = 0;
        goto out;
      }
      if (h->nlmsg_type == NLMSG_ERROR || fn(s, h) < 0)
        goto out;
    }
  }
out:
  ioa__sys_close(fd);
  return rc;
}

static int add_if(ioa__addrsort *s, const struct nlmsghdr *h) {
  if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
    return 0;
  const struct ifaddrmsg *ifa = NLMSG_DATA(h);
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
    return 0;
  size_t alen = ifa->ifa_family == AF_INET ? 4 : 16;
  /* IFA_ADDRESS wins over IFA_LOCAL, as in glibc's __check_pf. */
  const void *local = NULL, *address = NULL;
  int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifa));
  for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (RTA_PAYLOAD(a) < alen)
      continue;
    if (a->rta_type == IFA_ADDRESS && !address)
      address = RTA_DATA(a);
    else if (a->rta_type == IFA_LOCAL && !local)
      local = RTA_DATA(a);
  }
  if (!address)
    address = local;
  if (!address)
    return 0;
  if (s->nifs % 16 == 0) {
    if_entry *v = ioa__realloc(s->ifs, (s->nifs + 16) * sizeof *v);
    if (!v)
      return -1;
    s->ifs = v;
  }
  if_entry *e = &s->ifs[s->nifs++];
  memset(e, 0, sizeof *e);
  if (ifa->ifa_family == AF_INET) {
    uint32_t a4;
    memcpy(&a4, address, 4);
    if (a4 != htonl(INADDR_LOOPBACK))
      s->seen_v4 = 1;
    e->addr[10] = e->addr[11] = 0xff;
    memcpy(e->addr + 12, address, 4);
  } else {
    if (!IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)address))
      s->seen_v6 = 1;
    memcpy(e->addr, address, 16);
  }
  e->prefixlen = ifa->ifa_prefixlen;
  e->flags = (uint8_t)(((ifa->ifa_flags & (IFA_F_DEPRECATED | IFA_F_OPTIMISTIC)) ? IFE_DEPRECATED
                                                                                  : 0) |
                       ((ifa->ifa_flags & IFA_F_HOMEADDRESS) ? IFE_HOME : 0));
  e->index = ifa->ifa_index;
  return 0;
}

static int add_link(ioa__addrsort *s, const struct nlmsghdr *h) {
  if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
    return 0;
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  if (s->nlinks % 16 == 0) {
    link_entry *v = ioa__realloc(s->links, (s->nlinks + 16) * sizeof *v);
    if (!v)
      return -1;
    s->links = v;
  }
  s->links[s->nlinks].index = (uint32_t)ifi->ifi_index;
  s->links[s->nlinks].native = ifi->ifi_type != ARPHRD_TUNNEL6 &&
                               ifi->ifi_type != ARPHRD_TUNNEL && ifi->ifi_type != ARPHRD_SIT;
  s->nlinks++;
  return 0;
}

static int if_cmp(const void *a, const void *b) {
  return memcmp(((const if_entry *)a)->addr, ((const if_entry *)b)->addr, 16);
}

/* Bring the cached kernel state up to date (what cannot be read stays
 * unknown, as glibc treats it). */
static void refresh(ioa__addrsort *s) {
  if (s->nl_fd < 0)
    s->nl_fd = nl_subscribe(); /* before the dump: later changes are seen */
  if (s->known && s->nl_fd >= 0 && nl_quiet(s->nl_fd))
    return;
  forget_kernel_state(s);
  s->seen_v4 = s->seen_v6 = 0;
  if (nl_dump(s, RTM_GETADDR, add_if) == 0) {
    s->have_ifs = 1;
    if (!s->seen_v6) {
      /* glibc keeps the list only when an IPv6 address other than ::1
       * exists: without one, no source has flags, prefix or interface. */
      ioa__free(s->ifs);
      s->ifs = NULL;
      s->nifs = 0;
    }
    /* glibc's own qsort (a stable merge sort here) and bsearch: the same
     * entry is found when an address is configured twice. */
    if (s->nifs)
      qsort(s->ifs, s->nifs, sizeof *s->ifs, if_cmp);
  } else {
    /* As glibc when the kernel cannot be asked: no flags, both families. */
    ioa__free(s->ifs);
    s->ifs = NULL;
    s->nifs = 0;
    s->seen_v4 = s->seen_v6 = 1;
  }
  /* Without a subscription nothing may be kept for the next sort. */
  s->known = s->nl_fd >= 0 && s->have_ifs;
}

void ioa__addrsort_families(ioa__addrsort *s, int *v4, int *v6) {
  refresh(s);
  *v4 = s->seen_v4;
  *v6 = s->seen_v6;
}

/* ------------------------------------------------------------- gai.conf */

static int prefix_cmp(const void *a, const void *b) { /* longest first */
  unsigned x = ((const prefix_entry *)a)->bits, y = ((const prefix_entry *)b)->bits;
  return x < y ? 1 : x > y ? -1 : 0;
}
static int scope_cmp(const void *a, const void *b) { /* widest netmask first */
  uint32_t x = ((const scope_entry *)a)->netmask, y = ((const scope_entry *)b)->netmask;
  return x > y ? -1 : x < y ? 1 : 0;
}

/* strtoul(s, &end, 10) with *end == '\0' and a result of at most max, as
 * glibc checks gai.conf's numbers: a sign is allowed ("-0" is 0, any other
 * negative number wraps past max) and an empty string is 0. */
static int parse_num(const char *s, unsigned long max, unsigned long *out) {
  int neg = 0;
  const char *p = s;
  if (*p == '+' || *p == '-')
    neg = *p++ == '-';
  if (!*p) {
    *out = 0;
    return p == s; /* "" is 0; a lone sign stops strtoul at the sign */
  }
  unsigned long v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || v > (ULONG_MAX - 9) / 10)
      return 0;
    v = v * 10 + (unsigned long)(*p - '0');
  }
  if (neg && v)
    return 0;
  if (v > max)
    return 0;
  *out = v;
  return 1;
}

/* Append to a growable array of n elements of size sz. */
static void *grow(void *v, size_t n, size_t sz) {
  if (n % 8)
    return v;
  return ioa__realloc(v, (n + 8) * sz);
}

/* The isspace() of the C locale, which glibc's parsers see. */
static int is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* One "label"/"precedence" line's values into *list.  Returns 0, or
 * -ENOMEM; a malformed line is skipped, as glibc skips it. */
static int add_prefix(ioa__addrsort *s, prefix_entry **list, size_t *n, int *nullbits, char *v1,
                      const char *v2) {
  char *slash = strchr(v1, '/');
  unsigned long bits = 128, val;
  if (slash)
    *slash++ = '\0';
  uint8_t a[16];
  if (inet_pton(AF_INET6, v1, a) != 1)
    return 0;
  if (!slash) {
    /* glibc then reads an uninitialised end pointer (a crash, or garbage
     * accepted): nothing to model. */
    s->exact = 0;
    return 0;
  }
  if (!parse_num(slash, 128, &bits) || !parse_num(v2, INT_MAX, &val))
    return 0;
  prefix_entry *l = grow(*list, *n, sizeof **list);
  if (!l)
    return -ENOMEM;
  *list = l;
  memcpy(l[*n].prefix, a, 16);
  l[*n].bits = (unsigned)bits;
  l[*n].val = (int)val;
  (*n)++;
  *nullbits |= bits == 0;
  return 0;
}

static int add_scope(ioa__addrsort *s, int *nullbits, char *v1, const char *v2) {
  char *slash = strchr(v1, '/');
  unsigned long bits, val;
  if (slash)
    *slash++ = '\0';
  uint8_t a[16];
  uint32_t a4;
  int v6 = inet_pton(AF_INET6, v1, a) == 1;
  if (!v6 && inet_pton(AF_INET, v1, &a4) != 1)
    return 0;
  if (!slash && (!v6 || IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a))) {
    s->exact = 0; /* as in add_prefix (glibc crashes on "scopev4 10.0.0.0 5") */
    return 0;
  }
  if (v6) {
    if (!IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a) || !parse_num(slash, 128, &bits) ||
        bits < 96 || !parse_num(v2, INT_MAX, &val))
      return 0;
    bits -= 96;
    memcpy(&a4, a + 12, 4);
  } else if (!parse_num(slash, 32, &bits) || !parse_num(v2, INT_MAX, &val)) {
    return 0;
  }
  scope_entry *l = grow(s->scopes, s->nscopes, sizeof *l);
  if (!l)
    return -ENOMEM;
  s->scopes = l;
  uint32_t mask = bits ? 0xffffffffu << (32 - bits) : 0;
  l[s->nscopes].netmask = mask;
  l[s->nscopes].addr = ntohl(a4) & mask;
  l[s->nscopes].scope = (int)val;
  s->nscopes++;
  *nullbits |= bits == 0;
  return 0;
}

/* The catch-all entry glibc adds when the file gives none, then the list
 * most specific first (a stable sort keeps the file's order for ties). */
static int finish_prefixes(prefix_entry **list, size_t *n, int nullbits, int dflt) {
  if (*n == 0)
    return 0;
  if (!nullbits) {
    prefix_entry *l = grow(*list, *n, sizeof **list);
    if (!l)
      return -ENOMEM;
    *list = l;
    memset(&l[*n], 0, sizeof l[*n]);
    l[*n].val = dflt;
    (*n)++;
  }
  qsort(*list, *n, sizeof **list, prefix_cmp);
  return 0;
}

int ioa__addrsort_config(ioa__addrsort *s, const char *text, size_t len) {
  free_config(s);
  s->exact = 1;
  s->nprobes = 0;
  if (!text)
    return 1;
  char *copy = ioa__malloc(len + 1); /* tokenised in place */
  if (!copy) {
    s->exact = 0;
    return 0;
  }
  memcpy(copy, text, len);
  copy[len] = '\0';
  int lnull = 0, pnull = 0, snull = 0, rc = 0;
  for (size_t pos = 0; pos < len && rc == 0;) {
    char *line = copy + pos;
    char *nl = memchr(line, '\n', len - pos);
    pos = nl ? (size_t)(nl - copy) + 1 : len;
    if (nl)
      *nl = '\0'; /* a NUL byte before it ends the line early, as for glibc */
    char *hash = strchr(line, '#');
    if (hash)
      *hash = '\0';
    /* cmd, val1, val2: whitespace-separated; the rest is ignored, and so
     * are directives glibc does not know. */
    char *f[3];
    char *p = line;
    for (int i = 0; i < 3; i++) {
      while (is_space((unsigned char)*p))
        p++;
      f[i] = p;
      while (*p && !is_space((unsigned char)*p))
        p++;
      if (*p)
        *p++ = '\0';
    }
    if (*f[1] && strcmp(f[0], "label") == 0)
      rc = add_prefix(s, &s->labels, &s->nlabels, &lnull, f[1], f[2]);
    else if (*f[1] && strcmp(f[0], "precedence") == 0)
      rc = add_prefix(s, &s->precedence, &s->nprecedence, &pnull, f[1], f[2]);
    else if (*f[1] && strcmp(f[0], "scopev4") == 0)
      rc = add_scope(s, &snull, f[1], f[2]);
  }
  ioa__free(copy);
  if (rc == 0)
    rc = finish_prefixes(&s->labels, &s->nlabels, lnull, 1);
  if (rc == 0)
    rc = finish_prefixes(&s->precedence, &s->nprecedence, pnull, 40);
  if (rc == 0 && s->nscopes) {
    if (!snull) {
      scope_entry *l = grow(s->scopes, s->nscopes, sizeof *l);
      if (!l)
        rc = -ENOMEM;
      else {
        s->scopes = l;
        l[s->nscopes++] = (scope_entry){0, 0, 14};
      }
    }
    if (rc == 0)
      qsort(s->scopes, s->nscopes, sizeof *s->scopes, scope_cmp);
  }
  if (rc < 0) {
    free_config(s);
    s->exact = 0;
  }
  return s->exact;
}

int ioa__addrsort_exact(const ioa__addrsort *s) { return s->exact; }

/* --------------------------------------------------- the address classes */

static void v4mapped(uint8_t out[16], const void *a4) {
  memset(out, 0, 10);
  out[10] = out[11] = 0xff;
  memcpy(out + 12, a4, 4);
}

/* The first entry of list (terminated by a zero-bit entry) matching a. */
static int match_prefix(const prefix_entry *list, size_t n, const uint8_t a[16]) {
  for (size_t i = 0; i < n; i++) {
    unsigned bits = list[i].bits, k = 0;
    while (bits >= 8 && list[i].prefix[k] == a[k]) {
      k++;
      bits -= 8;
    }
    if (bits >= 8)
      continue;
    unsigned mask = (0xff00u >> bits) & 0xffu;
    if (bits == 0 || (list[i].prefix[k] & mask) == (a[k] & mask))
      return list[i].val;
  }
  return list[n - 1].val;
}

static int label_of(const ioa__addrsort *s, const uint8_t a[16]) {
  return s->labels ? match_prefix(s->labels, s->nlabels, a)
                   : match_prefix(default_labels,
                                  sizeof default_labels / sizeof default_labels[0], a);
}

static int precedence_of(const ioa__addrsort *s, const uint8_t a[16]) {
  return s->precedence ? match_prefix(s->precedence, s->nprecedence, a)
                       : match_prefix(default_precedence,
                                      sizeof default_precedence / sizeof default_precedence[0],
                                      a);
}

/* family: AF_INET (a is v4-mapped) or AF_INET6. */
static int scope_of(const ioa__addrsort *s, int family, const uint8_t a[16]) {
  if (family == AF_INET) {
    uint32_t v = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 | a[15];
    const scope_entry *t = s->scopes ? s->scopes : default_scopes;
    for (size_t i = 0;; i++)
      if ((v & t[i].netmask) == t[i].addr)
        return t[i].scope;
  }
  if (a[0] == 0xff) /* multicast: its own scope field */
    return a[1] & 0xf;
  if ((a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a))
    return 2;
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
    return 5;
  return 14;
}

/* ---------------------------------------------------------------- probes */

/* Per sort: the open probe socket of each family. */
typedef struct probe_socks {
  int fd4, fd6;
  int used4, used6; /* connected since the last reset */
} probe_socks;

static const if_entry *find_if(const ioa__addrsort *s, const uint8_t a[16]) {
  if_entry key;
  memcpy(key.addr, a, 16);
  return s->ifs ? bsearch(&key, s->ifs, s->nifs, sizeof *s->ifs, if_cmp) : NULL;
}

/* The source address the kernel picks for dst (glibc: a connected UDP
 * socket and getsockname).  1 and *p, or 0: unusable. */
static int probe_dst(ioa__addrsort *s, probe_socks *ps, const ioa_addr *dst, probe *p) {
  int fam = dst->family;
  int *fd = fam == AF_INET ? &ps->fd4 : &ps->fd6;
  int *used = fam == AF_INET ? &ps->used4 : &ps->used6;
  if (*fd < 0) {
    *fd = ioa__sys_socket(fam, SOCK_DGRAM, IPPROTO_IP);
    if (*fd < 0)
      return 0;
  } else if (*used) {
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    ioa__sys_connect(*fd, &unspec, sizeof unspec); /* dissolve the last association */
  }
  *used = 1;
  struct sockaddr_in6 src;
  socklen_t sl = sizeof src;
  if (ioa__sys_connect(*fd, (const struct sockaddr *)&dst->addr, dst->addrlen) < 0 ||
      ioa__sys_getsockname(*fd, (struct sockaddr *)&src, &sl) < 0)
    return 0;
  memset(p, 0, sizeof *p);
  p->family = fam;
  uint8_t key[16];
  if (fam == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&src;
    v4mapped(p->src, &s4->sin_addr);
    /* glibc: any 127/8 source is looked up as 127.0.0.1 (lo's address). */
    if (p->src[12] == 127) {
      static const uint8_t lo4[4] = {127, 0, 0, 1};
      v4mapped(key, lo4);
    } else {
      memcpy(key, p->src, 16);
    }
  } else {
    memcpy(p->src, &src.sin6_addr, 16);
    memcpy(key, p->src, 16);
  }
  const if_entry *e = find_if(s, key);
  p->flags = e ? e->flags : 0;
  p->prefixlen = e ? e->prefixlen : 0;
  p->index = e ? e->index : 0xffffffffu;
  return 1;
}

static probe_slot *cached_probe(ioa__addrsort *s, const ioa_addr *dst) {
  for (unsigned i = 0; i < s->nprobes; i++) {
    probe_slot *sl = &s->probes[i];
    if (sl->dstlen == dst->addrlen && memcmp(&sl->dst, &dst->addr, dst->addrlen) == 0)
      return sl;
  }
  return NULL;
}

static void remember_probe(ioa__addrsort *s, const ioa_addr *dst, const probe *p) {
  if (!s->known || dst->addrlen > sizeof s->probes[0].dst)
    return;
  if (s->nprobes == PROBE_CACHE)
    s->nprobes = 0; /* full: start over (answers rarely have this many) */
  probe_slot *sl = &s->probes[s->nprobes++];
  sl->dstlen = dst->addrlen;
  memcpy(&sl->dst, &dst->addr, dst->addrlen);
  sl->p = *p;
}

/* ------------------------------------------------------------- the sort */

typedef struct item {
  const ioa_addr *dst;
  size_t idx; /* arrival order */
  uint8_t d[16];
  int dfam;
  int got; /* has a source */
  probe p;
  int dscope, dlabel, dprec, sscope, slabel;
  int native; /* -1: not looked up yet */
} item;

typedef struct sort_ctx {
  ioa__addrsort *s;
} sort_ctx;

/* Rule 7's question, asked of the kernel's link list once per state. */
static int native_of(sort_ctx *c, uint32_t index) {
  ioa__addrsort *s = c->s;
  if (!s->have_links) {
    if (nl_dump(s, RTM_GETLINK, add_link) < 0) {
      ioa__free(s->links);
      s->links = NULL;
      s->nlinks = 0;
    }
    s->have_links = 1;
  }
  for (size_t i = 0; i < s->nlinks; i++)
    if (s->links[i].index == index)
      return s->links[i].native;
  return 0; /* glibc's default without the information */
}

static int leading_equal_bits(uint32_t x) { /* glibc's fls(): 32 for 0 */
  return x ? __builtin_clz(x) : 32;
}

static uint32_t word(const uint8_t *a, int i) {
  return (uint32_t)a[4 * i] << 24 | (uint32_t)a[4 * i + 1] << 16 | (uint32_t)a[4 * i + 2] << 8 |
         a[4 * i + 3];
}

/* Negative if a1 goes first. */
static int compare(sort_ctx *c, item *a1, item *a2) {
  if (a1->got != a2->got) /* rule 1 */
    return a1->got ? -1 : 1;
  if (a1->got) {
    int m1 = a1->dscope == a1->sscope, m2 = a2->dscope == a2->sscope; /* rule 2 */
    if (m1 != m2)
      return m1 ? -1 : 1;
    int d1 = a1->p.flags & IFE_DEPRECATED, d2 = a2->p.flags & IFE_DEPRECATED; /* rule 3 */
    if (!d1 != !d2)
      return d1 ? 1 : -1;
    int h1 = a1->p.flags & IFE_HOME, h2 = a2->p.flags & IFE_HOME; /* rule 4 */
    if (!h1 != !h2)
      return h1 ? -1 : 1;
    m1 = a1->dlabel == a1->slabel; /* rule 5 */
    m2 = a2->dlabel == a2->slabel;
    if (m1 != m2)
      return m1 ? -1 : 1;
  }
  if (a1->dprec != a2->dprec) /* rule 6 */
    return a1->dprec > a2->dprec ? -1 : 1;
  if (a1->got && a1->p.index != a2->p.index) { /* rule 7 */
    if (a1->native < 0)
      a1->native = native_of(c, a1->p.index);
    if (a2->native < 0)
      a2->native = native_of(c, a2->p.index);
    if (a1->native != a2->native)
      return a1->native ? -1 : 1;
  }
  if (a1->dscope != a2->dscope) /* rule 8 */
    return a1->dscope < a2->dscope ? -1 : 1;
  if (a1->got && a1->dfam == a2->dfam) { /* rule 9 */
    int b1 = 0, b2 = 0;
    if (a1->dfam == AF_INET) {
      uint32_t dst1 = word(a1->d, 3), src1 = word(a1->p.src, 3);
      uint32_t dst2 = word(a2->d, 3), src2 = word(a2->p.src, 3);
      /* glibc shifts by 32 - prefixlen; x86 takes a shift of 32 as 0. */
      uint32_t mask1 = 0xffffffffu << ((32 - a1->p.prefixlen) & 31);
      uint32_t mask2 = 0xffffffffu << ((32 - a2->p.prefixlen) & 31);
      if ((src1 & mask1) == (dst1 & mask1))
        b1 = leading_equal_bits(dst1 ^ src1);
      if ((src2 & mask2) == (dst2 & mask2))
        b2 = leading_equal_bits(dst2 ^ src2);
    } else {
      int i = 0;
      while (i < 4 && word(a1->d, i) == word(a1->p.src, i) && word(a2->d, i) == word(a2->p.src, i))
        i++;
      if (i < 4) {
        b1 = leading_equal_bits(word(a1->d, i) ^ word(a1->p.src, i));
        b2 = leading_equal_bits(word(a2->d, i) ^ word(a2->p.src, i));
      }
    }
    if (b1 != b2)
      return b1 > b2 ? -1 : 1;
  }
  return a1->idx < a2->idx ? -1 : 1; /* rule 10 */
}

/* glibc's msort: halves of n/2 and n - n/2, merged taking the left element
 * while it compares <= 0. */
static void msort(sort_ctx *c, item **b, size_t n, item **tmp) {
  if (n <= 1)
    return;
  size_t n1 = n / 2, n2 = n - n1;
  item **b1 = b, **b2 = b + n1;
  msort(c, b1, n1, tmp);
  msort(c, b2, n2, tmp);
  item **t = tmp;
  while (n1 > 0 && n2 > 0) {
    if (compare(c, *b1, *b2) <= 0) {
      *t++ = *b1++;
      n1--;
    } else {
      *t++ = *b2++;
      n2--;
    }
  }
  if (n1 > 0)
    memcpy(t, b1, n1 * sizeof *t);
  memcpy(b, tmp, (n - n2) * sizeof *b);
}

int ioa__addrsort_sort(ioa__addrsort *s, ioa_addr *v, size_t n) {
  if (n <= 1)
    return 1;
  for (size_t i = 0; i < n; i++)
    if (v[i].family != AF_INET && v[i].family != AF_INET6)
      return 1; /* not a getaddrinfo answer */
  if (!s->exact)
    return 0;
  /* One block: items, two pointer arrays, the sorted copy. */
  size_t bytes = n * (sizeof(item) + 2 * sizeof(item *) + sizeof(ioa_addr));
  char *mem = ioa__malloc(bytes);
  if (!mem)
    return -ENOMEM;
  item *items = (item *)(void *)mem;
  item **order = (item **)(void *)(items + n), **tmp = order + n;
  ioa_addr *out = (ioa_addr *)(void *)(tmp + n);
  refresh(s);
  probe_socks ps = {-1, -1, 0, 0};
  for (size_t i = 0; i < n; i++) {
    item *it = &items[i];
    memset(it, 0, sizeof *it);
    it->dst = &v[i];
    it->idx = i;
    it->native = -1;
    it->dfam = v[i].family;
    if (it->dfam == AF_INET)
      v4mapped(it->d, &((const struct sockaddr_in *)&v[i].addr)->sin_addr);
    else
      memcpy(it->d, &((const struct sockaddr_in6 *)&v[i].addr)->sin6_addr, 16);
    /* The same address again (another socktype): the same source. */
    if (i > 0 && v[i].addrlen == v[i - 1].addrlen &&
        memcmp(&v[i].addr, &v[i - 1].addr, v[i].addrlen) == 0) {
      it->got = items[i - 1].got;
      it->p = items[i - 1].p;
    } else {
      probe_slot *sl = cached_probe(s, &v[i]);
      if (sl) {
        it->got = 1;
        it->p = sl->p;
      } else if ((it->got = probe_dst(s, &ps, &v[i], &it->p))) {
        remember_probe(s, &v[i], &it->p);
      }
    }
    it->dscope = scope_of(s, it->dfam, it->d);
    it->dlabel = label_of(s, it->d);
    it->dprec = precedence_of(s, it->d);
    if (it->got) {
      it->sscope = scope_of(s, it->p.family, it->p.src);
      it->slabel = label_of(s, it->p.src);
    }
    order[i] = it;
  }
  ioa__sys_close(ps.fd4);
  ioa__sys_close(ps.fd6);
  sort_ctx c = {s};
  msort(&c, order, n, tmp);
  for (size_t i = 0; i < n; i++)
    out[i] = *order[i]->dst;
  memcpy(v, out, n * sizeof *v);
  ioa__free(mem);
  return 1;
}
